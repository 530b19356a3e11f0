//! The `vigie` command line: `serve`, `check-config`, `migrate`, `token`, `rules`, `hunt`,
//! `bench`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use vigie::auth::{Role, issue_token};
use vigie::config::{ConfigFile, read_config};
use vigie::hunt::EstateStore;
use vigie::server::{DetectionOptions, ServeOptions, database_url, sqlite_database, sqlite_url};
use vigie::store::Store;

#[derive(Parser)]
#[command(
    name = "vigie",
    version,
    about = "Supervision, detection, incidents and crisis cell for managed-services providers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the data lives; every command takes these.
#[derive(Args, Clone)]
struct StoreArgs {
    /// Server settings file (YAML); flags override it.
    #[arg(long, env = "VIGIE_CONFIG")]
    config: Option<PathBuf>,
    /// Directory of the embedded SQLite database [default: ./vigie-data].
    #[arg(long, env = "VIGIE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL (`postgres://user@host:port/db`); defaults to SQLite in the data directory.
    #[arg(long, env = "VIGIE_DATABASE")]
    database: Option<String>,
}

impl StoreArgs {
    fn config(&self) -> Result<ConfigFile> {
        match &self.config {
            Some(path) => read_config(path),
            None => Ok(ConfigFile::default()),
        }
    }

    fn data_dir(&self, config: &ConfigFile) -> PathBuf {
        self.data_dir
            .clone()
            .or_else(|| config.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("vigie-data"))
    }

    async fn open(&self) -> Result<Store> {
        let config = self.config()?;
        let url = database_url(
            self.database.as_deref().or(config.database.as_deref()),
            &self.data_dir(&config),
        )?;
        Store::open(&url).await
    }

    /// The store `open` would open, opened to be read only (`vigie hunt`): nothing is created
    /// or migrated. A store named by a flag, the environment or the config file must open;
    /// the default data directory's database may not exist, and then is `Absent`.
    async fn open_existing(&self) -> Result<EstateStore> {
        let config = self.config()?;
        if let Some(url) = self.database.as_deref().or(config.database.as_deref()) {
            let name = redact(url);
            let store = Store::open_existing(url)
                .await
                .with_context(|| format!("cannot read the database {name}"))?;
            return Ok(EstateStore::Open { store, name });
        }
        let named = self.data_dir.is_some() || config.data_dir.is_some();
        let path = sqlite_database(&self.data_dir(&config));
        if !path.exists() {
            if named {
                anyhow::bail!("cannot read the database {}: no such file", path.display());
            }
            return Ok(EstateStore::Absent(path));
        }
        let name = sqlite_url(&path);
        let store = Store::open_existing(&name)
            .await
            .with_context(|| format!("cannot read the database {}", path.display()))?;
        Ok(EstateStore::Open { store, name })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: HTTP API, syslog listeners, pipeline. With no argument it runs on the
    /// embedded SQLite store and the example estate.
    Serve {
        #[command(flatten)]
        store: StoreArgs,
        /// Address of the HTTP API [default: 127.0.0.1:8080].
        #[arg(long, env = "VIGIE_LISTEN")]
        listen: Option<SocketAddr>,
        /// Directory of estate YAML files [default: examples/estate].
        #[arg(long, env = "VIGIE_ESTATE")]
        estate: Option<PathBuf>,
        /// Alert rules file replacing the built-in set.
        #[arg(long)]
        alert_rules: Option<PathBuf>,
        /// A directory of Sigma rules to evaluate on every event (repeatable).
        #[arg(long = "sigma-rules")]
        sigma_rules: Vec<PathBuf>,
        /// A directory of Sigma filters: its files tune every client, `DIR/<client-id>/` one.
        #[arg(long = "sigma-filters")]
        sigma_filters: Option<PathBuf>,
        /// A logsource map consulted before the built-in one (see docs/logsources.md).
        #[arg(long)]
        logsource_map: Option<PathBuf>,
        /// Syslog UDP address [default: 127.0.0.1:5514].
        #[arg(long)]
        syslog_udp: Option<SocketAddr>,
        /// Syslog TCP address [default: 127.0.0.1:5514].
        #[arg(long)]
        syslog_tcp: Option<SocketAddr>,
        /// Do not listen for syslog.
        #[arg(long)]
        no_syslog: bool,
        /// SMTP relay for e-mail notifications: `smtp://host:25` (plain, local relay),
        /// `smtp://host:587?tls=starttls` or `smtps://host:465` (overrides notify.smtp.url).
        #[arg(long, env = "VIGIE_SMTP_URL")]
        smtp_url: Option<String>,
        /// Sender address of e-mail notifications (overrides notify.smtp.from).
        #[arg(long, env = "VIGIE_MAIL_FROM")]
        mail_from: Option<String>,
        /// Vigie's address as recipients reach it, for links in notifications (overrides
        /// notify.public_url).
        #[arg(long, env = "VIGIE_PUBLIC_URL")]
        public_url: Option<String>,
    },
    /// Check an estate directory or a server settings file, reporting every problem.
    CheckConfig {
        /// An estate directory, or a settings file (its estate is checked too).
        path: PathBuf,
    },
    /// Apply pending schema migrations and exit.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Detection rules (Sigma).
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Run detection rules over files (EVTX, JSON lines) and list what fires, like Hayabusa.
    ///
    /// With --estate, the estate is serve's: its files, and the clients and assets created
    /// through the API, read from serve's store (the store options, resolved as serve resolves
    /// them). The store is only read, never created or migrated; when none is named and the
    /// default data directory holds no database, the estate is its files alone.
    Hunt {
        #[command(flatten)]
        hunt: vigie::hunt::HuntArgs,
        #[command(flatten, next_help_heading = "Store (read with --estate)")]
        store: StoreArgs,
    },
    /// Measure this machine: see BENCHMARKS.md.
    Bench {
        #[command(subcommand)]
        command: vigie::bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Load every rule of a directory and report each rejected rule with its reason.
    Check {
        /// A directory of Sigma rule files (`*.yml`, `*.yaml`), searched recursively.
        dir: PathBuf,
        /// A directory of Sigma filters, as `vigie serve --sigma-filters` reads it.
        #[arg(long)]
        filters: Option<PathBuf>,
        /// An estate directory: its clients' placeholder values, and the client ids that
        /// filter directories may be named after.
        #[arg(long)]
        estate: Option<PathBuf>,
    },
    /// Run rule test files (cases of events with the rules expected to fire) against rules.
    Test {
        /// A directory of rule test files (`*.yaml`).
        tests: PathBuf,
        /// A directory of Sigma rules (repeatable).
        #[arg(long, required = true)]
        rules: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (the secret is shown only now).
    Create {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum)]
        role: Role,
        /// The client a client or ingest token belongs to.
        #[arg(long)]
        client: Option<String>,
        /// A name that says whose token it is; it appears in timelines.
        #[arg(long)]
        name: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token by its id.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VIGIE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    vigie::memory::tune_allocator();
    // ring, the one rustls provider, for every HTTP client of the process.
    vigie::notify::install_crypto_provider();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve {
            store,
            listen,
            estate,
            alert_rules,
            sigma_rules,
            sigma_filters,
            logsource_map,
            syslog_udp,
            syslog_tcp,
            no_syslog,
            smtp_url,
            mail_from,
            public_url,
        } => {
            let mut config = store.config()?;
            if smtp_url.is_some() || mail_from.is_some() {
                let smtp = config.notify.smtp.get_or_insert_with(Default::default);
                smtp.url = smtp_url.or(smtp.url.take());
                smtp.from = mail_from.or(smtp.from.take());
            }
            config.notify.public_url = public_url.or(config.notify.public_url.take());
            let delivery = config.notify.delivery_config().map_err(|problems| {
                anyhow::anyhow!("the notify settings are wrong:\n{}", problems.join("\n"))
            })?;
            let perfdata = config.perfdata.perfdata_config().map_err(|problems| {
                anyhow::anyhow!("the perfdata settings are wrong:\n{}", problems.join("\n"))
            })?;
            let syslog_on = !no_syslog && config.syslog.enabled != Some(false);
            let default_syslog: SocketAddr = "127.0.0.1:5514"
                .parse()
                .expect("invariant: literal address");
            let options = ServeOptions {
                listen: listen.or(config.listen).unwrap_or_else(|| {
                    "127.0.0.1:8080"
                        .parse()
                        .expect("invariant: literal address")
                }),
                data_dir: store.data_dir(&config),
                database: store.database.clone().or(config.database.clone()),
                estate_dir: estate
                    .or(config.estate.clone())
                    .unwrap_or_else(|| PathBuf::from("examples/estate")),
                alert_rules: alert_rules.or(config.alert_rules.clone()),
                syslog_udp: syslog_on
                    .then(|| syslog_udp.or(config.syslog.udp).unwrap_or(default_syslog)),
                syslog_tcp: syslog_on
                    .then(|| syslog_tcp.or(config.syslog.tcp).unwrap_or(default_syslog)),
                sigma_rules: if sigma_rules.is_empty() {
                    config.sigma_rules.clone()
                } else {
                    sigma_rules
                },
                max_queued_events: config
                    .max_queued_events
                    .unwrap_or(vigie::pipeline::DEFAULT_MAX_QUEUED_EVENTS),
            };
            let detection = DetectionOptions {
                sigma_filters: sigma_filters.or(config.sigma_filters.clone()),
                logsource_map: logsource_map.or(config.logsource_map.clone()),
            };
            let store_name = options.database_url()?;
            let smtp_line = delivery.smtp.as_ref().map_or_else(
                || "off (e-mail notifications fail until notify.smtp.url is set)".to_owned(),
                |smtp| redact(&smtp.url),
            );
            let server = vigie::server::start_with_perfdata(
                options.clone(),
                detection.clone(),
                delivery,
                perfdata,
            )
            .await?;
            let clients = server.state.estate.current().1.clients.len();
            println!(
                "vigie {} serving {}",
                env!("CARGO_PKG_VERSION"),
                server.url()
            );
            println!("  store:  {}", redact(&store_name));
            println!("  smtp:   {smtp_line}");
            println!(
                "  estate: {} ({clients} clients)",
                options.estate_dir.display()
            );
            if let Some(udp) = server.syslog_udp {
                println!(
                    "  syslog: udp {udp}, tcp {}",
                    server.syslog_tcp.map_or("off".into(), |a| a.to_string())
                );
            }
            if !options.sigma_rules.is_empty() {
                let mut tuning = String::new();
                if detection.sigma_filters.is_some() {
                    tuning.push_str(&format!(", {} filters", server.sigma_filters));
                }
                if server.sigma_notices > 0 {
                    tuning.push_str(&format!(", {} notices", server.sigma_notices));
                }
                println!(
                    "  sigma:  {} rules loaded, {} rejected{tuning} (each logged with its reason)",
                    server.sigma_loaded, server.sigma_rejected
                );
            }
            if let (Some(path), Some(entries)) =
                (&detection.logsource_map, server.logsource_map_entries)
            {
                println!("  logsource map: {entries} entries from {}", path.display());
            }
            println!("  admin token (new at each start): {}", server.admin_token);
            println!(
                "try: curl -H 'Authorization: Bearer {}' {}/api/v1/incidents",
                server.admin_token,
                server.url()
            );
            server.run_until_signalled().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { path } => check_config(&path),
        Command::Migrate { store } => {
            let opened = store.open().await?;
            println!("schema is up to date ({:?})", opened.engine());
            opened.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command } => token(command).await,
        Command::Rules {
            command: RulesCommand::Test { tests, rules },
        } => {
            let (failed, report) = vigie::rule::test_rules(&tests, &rules)?;
            print!("{report}");
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Rules {
            command:
                RulesCommand::Check {
                    dir,
                    filters,
                    estate,
                },
        } => {
            let (set, report) =
                vigie::rule::check_rules(&dir, filters.as_deref(), estate.as_deref())?;
            print!("{report}");
            Ok(if set.rejected.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Hunt { hunt, store } => {
            // Only a tuned hunt reads the store; one without an estate opens nothing.
            let estate_store = if hunt.estate.is_some() {
                Some(store.open_existing().await?)
            } else {
                None
            };
            vigie::hunt::run(hunt, estate_store).await
        }
        Command::Bench { command } => {
            vigie::bench::run(command).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Hides a password in a database URL before printing it.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if url[scheme + 3..at].contains(':') => {
            let user_end = url[scheme + 3..at]
                .find(':')
                .map(|i| scheme + 3 + i)
                .unwrap_or(at);
            format!("{}:***{}", &url[..user_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn check_config(path: &Path) -> Result<ExitCode> {
    let estate_dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        let config = read_config(path)?;
        if let Err(problems) = config.notify.delivery_config() {
            for problem in &problems {
                println!("{}: {problem}", path.display());
            }
            println!("{} problems in {}", problems.len(), path.display());
            return Ok(ExitCode::FAILURE);
        }
        if let Err(problems) = config.perfdata.perfdata_config() {
            for problem in &problems {
                println!("{}: {problem}", path.display());
            }
            println!("{} problems in {}", problems.len(), path.display());
            return Ok(ExitCode::FAILURE);
        }
        println!("{}: settings ok", path.display());
        config
            .estate
            .unwrap_or_else(|| PathBuf::from("examples/estate"))
    };
    let files = vigie::estate::read_estate_dir(&estate_dir)?;
    match vigie_core::estate::load_estate(&files) {
        Ok(estate) => {
            let assets: usize = estate.clients.values().map(|c| c.assets.len()).sum();
            let checks = vigie_core::estate::compile_checks(&estate).len();
            println!(
                "{}: estate ok: {} files, {} clients, {assets} assets, {checks} checks",
                estate_dir.display(),
                files.len(),
                estate.clients.len()
            );
            // The server runs the other checks; a check that does not read is still a mistake.
            let rejected = estate.check_rejections();
            for problem in rejected {
                println!("{problem}");
            }
            if rejected.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                match rejected.len() {
                    1 => println!("1 check does not read and would be left out"),
                    n => println!("{n} checks do not read and would be left out"),
                }
                Ok(ExitCode::FAILURE)
            }
        }
        Err(problems) => {
            for problem in &problems {
                println!("{problem}");
            }
            println!("{} problems in {}", problems.len(), estate_dir.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn token(command: TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Create {
            store,
            role,
            client,
            name,
        } => {
            let opened = store.open().await?;
            let name = name.unwrap_or_else(|| match &client {
                Some(client) => format!("{}-{client}", role.as_str()),
                None => role.as_str().to_owned(),
            });
            let issued = issue_token(
                &opened,
                &name,
                role,
                client.as_deref(),
                vigie::clock::now_ms(),
            )
            .await?;
            println!("{}", issued.token);
            eprintln!(
                "token {} ({}, role {}) created; keep it: it is not shown again",
                issued.record.id,
                name,
                role.as_str()
            );
            opened.close().await;
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List { store } => {
            let opened = store.open().await?;
            for token in opened.list_tokens().await? {
                println!(
                    "{}  {:<8} {:<20} {:<24} {}",
                    token.id,
                    token.role,
                    token.client.as_deref().unwrap_or("-"),
                    token.name,
                    if token.revoked_ms.is_some() {
                        "revoked"
                    } else {
                        "live"
                    }
                );
            }
            opened.close().await;
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { store, id } => {
            let opened = store.open().await?;
            let revoked = opened
                .revoke_token(&id, vigie::clock::now_ms())
                .await
                .context("cannot revoke")?;
            opened.close().await;
            if revoked {
                println!("token {id} revoked");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("error: no live token {id}");
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

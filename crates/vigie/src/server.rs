//! `vigie serve`: opens the store, loads the estate and the rules, starts the pipeline, the
//! supervision runtime (the estate's checks), the HTTP API and the syslog listeners, and
//! reloads the estate and the Sigma rules on SIGHUP (or `POST /api/v1/reload`, through the
//! same `reload`). The tests start the same server in-process through `start`.
//!
//! The Sigma rules depend on the estate: a rule with `expand` placeholders is compiled per
//! client with that client's values, and the filters of `--sigma-filters DIR/<client-id>/`
//! tune that client. So a reload reads the rule files first, then the estate, compiles the
//! rules against the new estate, and only then swaps both in.
//!
//! Invariant: a reload is all or nothing. If the estate does not validate, a Sigma rule or
//! filter directory cannot be read, or the logsource map is unreadable or invalid, the running
//! estate and rules stay and every problem is reported; a rule or filter rejected on its own is
//! reported and the others load.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::serve::ListenerExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{AppState, router};
use crate::auth::{Authenticator, Role, issue_token};
use crate::estate::{EstateHandle, load_estate};
use crate::ingest::syslog;
use crate::metrics::Metrics;
use crate::notify::DeliveryConfig;
use crate::pipeline::{Pipeline, Rules, SigmaRules};
use crate::rule::{DetectionFiles, DetectionSources, compile_detection, read_detection};
use crate::store::Store;
use crate::supervision::PerfdataConfig;
use vigie_core::estate::Estate;
use vigie_core::rule::sigma::{Notice, Rejection};

/// The name of the admin token that `vigie serve` prints; a new one replaces it at each start.
pub const STARTUP_TOKEN_NAME: &str = "serve-startup-admin";

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: Option<String>,
    pub estate_dir: PathBuf,
    pub alert_rules: Option<PathBuf>,
    pub syslog_udp: Option<SocketAddr>,
    pub syslog_tcp: Option<SocketAddr>,
    /// Events accepted and not yet committed, at most (see `pipeline`).
    pub max_queued_events: usize,
    /// Directories of Sigma rules evaluated on every event.
    pub sigma_rules: Vec<PathBuf>,
}

impl ServeOptions {
    /// The database URL: the explicit one, else SQLite in the data directory.
    pub fn database_url(&self) -> Result<String> {
        database_url(self.database.as_deref(), &self.data_dir)
    }
}

pub fn database_url(database: Option<&str>, data_dir: &std::path::Path) -> Result<String> {
    if let Some(url) = database {
        return Ok(url.to_owned());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    Ok(sqlite_url(&sqlite_database(data_dir)))
}

/// The embedded SQLite database file of a data directory.
pub fn sqlite_database(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("vigie.db")
}

/// The URL `Store::open` takes for a SQLite database file.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Detection settings of `vigie serve` beyond `ServeOptions::sigma_rules`: Sigma filters and
/// the operator's logsource map. Kept apart so that `start` keeps its signature.
#[derive(Debug, Clone, Default)]
pub struct DetectionOptions {
    /// Directory of Sigma filters: its files tune every client, those of `<client-id>/` one.
    pub sigma_filters: Option<PathBuf>,
    /// The operator's logsource map, consulted before the built-in one.
    pub logsource_map: Option<PathBuf>,
}

pub struct Server {
    pub addr: SocketAddr,
    pub admin_token: String,
    pub syslog_udp: Option<SocketAddr>,
    pub syslog_tcp: Option<SocketAddr>,
    /// Sigma rules loaded, and rejected (each rejection is logged with its reason).
    pub sigma_loaded: usize,
    pub sigma_rejected: usize,
    /// Sigma filters loaded, and notices (rules that run for some clients only…, each logged).
    pub sigma_filters: usize,
    pub sigma_notices: usize,
    /// Entries of the operator's logsource map, when one was given.
    pub logsource_map_entries: Option<usize>,
    pub state: AppState,
    stop: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    /// The notification deliverer; on shutdown it finishes and records what it is sending.
    deliverer: JoinHandle<()>,
    /// The check state writer; on shutdown it writes the statuses it holds.
    check_writer: JoinHandle<()>,
}

fn load_rules(path: Option<&PathBuf>) -> Result<Vec<vigie_core::alert::AlertRule>> {
    let Some(path) = path else {
        return Ok(vigie_core::alert::builtin_rules());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    vigie_core::alert::parse_rules(&path.display().to_string(), &text)
        .map_err(|problems| anyhow::anyhow!("{}", problems.join("\n")))
}

/// The Sigma rules and filters read from disk, compiled for the clients of `estate`; every
/// rejection and notice is logged.
fn load_sigma(files: DetectionFiles, estate: &Estate) -> (SigmaRules, Vec<Notice>, usize) {
    let set = compile_detection(files, Some(estate));
    for rejection in &set.rejected {
        tracing::warn!(
            path = %rejection.path,
            line = ?rejection.line,
            rule = ?rejection.rule_id,
            reason = %rejection.reason,
            "sigma rule rejected"
        );
    }
    for notice in &set.notices {
        tracing::warn!(
            path = %notice.path,
            line = ?notice.line,
            rule = ?notice.rule_id,
            notice = %notice.message,
            "sigma rule notice"
        );
    }
    let notices = set.notices.clone();
    let filters = set.filter_count();
    (SigmaRules::new(set), notices, filters)
}

/// Shows in `/metrics` how many Sigma rules are about to be in use, and how many were
/// rejected.
fn record_sigma(metrics: &Metrics, sigma: &SigmaRules) {
    let gauge = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
    metrics
        .sigma_rules_loaded
        .store(gauge(sigma.set.len()), Ordering::Relaxed);
    metrics
        .sigma_rules_rejected
        .store(gauge(sigma.rejected.len()), Ordering::Relaxed);
}

/// What a reload put in use.
#[derive(Debug)]
pub struct Reloaded {
    /// The estate's version and its number of clients.
    pub estate_version: u64,
    pub clients: usize,
    /// Sigma rules (correlations included) now in use, and those the load rejected.
    pub sigma_loaded: usize,
    pub sigma_rejected: Vec<Rejection>,
    /// Sigma filters now in use, and what the load noted (rules that do not run for some
    /// clients, filter directories of no client…).
    pub sigma_filters: usize,
    pub sigma_notices: Vec<Notice>,
    /// Entries of the operator's logsource map, re-read, when one is configured.
    pub logsource_map_entries: Option<usize>,
}

/// Re-reads the estate (files and API objects), the Sigma rule and filter directories and the
/// logsource map, compiles the rules for the new estate's clients and swaps both in, or — if
/// the estate does not validate or a directory or the map cannot be read — changes nothing and
/// returns every problem (the estate's first). Reloads run one at a time.
pub async fn reload(state: &AppState) -> Result<Reloaded, Vec<String>> {
    let _reloading = state.reloading.lock().await;
    let sources = Arc::clone(&state.detection);
    let files = tokio::task::spawn_blocking(move || read_detection(&sources))
        .await
        .map_err(|error| vec![format!("the sigma rule load failed: {error}")])?;
    let files = match files {
        Ok(files) => files,
        // The estate is still read, for its own problems; nothing is swapped.
        Err(error) => {
            return Err(state
                .estate
                .reload_unless(&state.store, vec![format!("{error:#}")])
                .await
                .err()
                .unwrap_or_default());
        }
    };
    let map_entries = files.logsource_map.as_ref().map(|(_, entries)| *entries);
    let (sigma, notices, filters) = state
        .estate
        .reload_with(&state.store, |estate| async move {
            // Compiling a large rule pack is seconds of CPU: off the async workers.
            tokio::task::spawn_blocking(move || load_sigma(files, &estate))
                .await
                .map_err(|error| vec![format!("the sigma rule load failed: {error}")])
        })
        .await?;
    let reloaded = {
        let (estate_version, estate) = state.estate.current();
        Reloaded {
            estate_version,
            clients: estate.clients.len(),
            sigma_loaded: sigma.set.len(),
            sigma_rejected: sigma.rejected.clone(),
            sigma_filters: filters,
            sigma_notices: notices,
            logsource_map_entries: map_entries,
        }
    };
    record_sigma(&state.metrics, &sigma);
    state.pipeline.rules().swap_sigma(sigma);
    tracing::info!(
        estate_version = reloaded.estate_version,
        clients = reloaded.clients,
        sigma_loaded = reloaded.sigma_loaded,
        sigma_rejected = reloaded.sigma_rejected.len(),
        sigma_filters = reloaded.sigma_filters,
        sigma_notices = reloaded.sigma_notices.len(),
        "estate and sigma rules reloaded"
    );
    Ok(reloaded)
}

/// `start_with` without Sigma filters or a logsource map of the operator's.
pub async fn start(options: ServeOptions) -> Result<Server> {
    start_with(options, DetectionOptions::default()).await
}

pub async fn start_with(options: ServeOptions, detection: DetectionOptions) -> Result<Server> {
    start_with_delivery(options, detection, DeliveryConfig::default()).await
}

/// `start_with`, delivering notifications as `delivery` says (SMTP relay, timeouts, retries).
pub async fn start_with_delivery(
    options: ServeOptions,
    detection: DetectionOptions,
    delivery: DeliveryConfig,
) -> Result<Server> {
    start_with_perfdata(options, detection, delivery, PerfdataConfig::default()).await
}

/// `start_with_delivery`, keeping check results' perfdata as `perfdata` says.
pub async fn start_with_perfdata(
    options: ServeOptions,
    detection: DetectionOptions,
    delivery: DeliveryConfig,
    perfdata: PerfdataConfig,
) -> Result<Server> {
    crate::notify::install_crypto_provider();
    let url = options.database_url()?;
    let store = Arc::new(Store::open(&url).await?);
    let sources = DetectionSources {
        rules: options.sigma_rules.clone(),
        filters: detection.sigma_filters.clone(),
        logsource_map: detection.logsource_map.clone(),
    };
    let files = read_detection(&sources)?;
    let logsource_map_entries = files.logsource_map.as_ref().map(|(_, entries)| *entries);
    let estate = load_estate(&options.estate_dir, &store)
        .await
        .map_err(|problems| {
            anyhow::anyhow!("the estate does not load:\n{}", problems.join("\n"))
        })?;
    let (sigma, notices, sigma_filters) = load_sigma(files, &estate);
    let estate = EstateHandle::new(options.estate_dir.clone(), estate);
    let (sigma_loaded, sigma_rejected) = (sigma.set.len(), sigma.rejected.len());
    let metrics = Arc::new(Metrics::default());
    record_sigma(&metrics, &sigma);
    let rules = Arc::new(Rules::new(load_rules(options.alert_rules.as_ref())?, sigma));
    // Bound before the pipeline starts: messages link to the address actually served.
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let addr = listener.local_addr()?;
    let pipeline = Pipeline::start(
        store.clone(),
        estate.clone(),
        rules,
        metrics.clone(),
        options.max_queued_events,
        delivery
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}")),
    )
    .await?;
    let (supervision, supervising, check_writer) = crate::supervision::start(
        store.clone(),
        estate.clone(),
        pipeline.clone(),
        metrics.clone(),
        perfdata,
    )
    .await?;
    let now = crate::clock::now_ms();
    store.revoke_tokens_named(STARTUP_TOKEN_NAME, now).await?;
    let admin = issue_token(&store, STARTUP_TOKEN_NAME, Role::Admin, None, now).await?;
    let state = AppState {
        store: store.clone(),
        pipeline: pipeline.clone(),
        auth: Authenticator::new(store.clone()),
        estate: estate.clone(),
        metrics,
        detection: Arc::new(sources),
        reloading: Arc::default(),
        supervision,
    };

    let resolver: syslog::Resolver = {
        let estate = estate.clone();
        Arc::new(move |address, hostname| {
            estate
                .current()
                .1
                .find_sender(Some(address), hostname)
                .map(|found| syslog::SenderMatch {
                    client: found.client,
                    asset: Some(found.asset),
                })
        })
    };
    let (stop, stopped) = watch::channel(false);
    spawn_until(stopped.clone(), supervising);
    let deliverer =
        crate::notify::deliver::spawn_until(store.clone(), delivery, Some(stopped.clone()));
    let mut syslog_udp = None;
    if let Some(addr) = options.syslog_udp {
        let socket = UdpSocket::bind(addr)
            .await
            .with_context(|| format!("cannot bind syslog UDP {addr}"))?;
        syslog_udp = Some(socket.local_addr()?);
        let task = syslog::serve_udp(
            socket,
            pipeline.event_sink(crate::clock::now_ms),
            resolver.clone(),
            crate::clock::now_ms,
        );
        spawn_until(stopped.clone(), task);
    }
    let mut syslog_tcp = None;
    if let Some(addr) = options.syslog_tcp {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot bind syslog TCP {addr}"))?;
        syslog_tcp = Some(listener.local_addr()?);
        let task = syslog::serve_tcp(
            listener,
            pipeline.event_sink(crate::clock::now_ms),
            resolver.clone(),
            crate::clock::now_ms,
        );
        spawn_until(stopped.clone(), task);
    }

    let app = router(state.clone());
    let mut http_stopped = stopped.clone();
    let http = tokio::spawn(async move {
        // Answers go out at once: with Nagle's algorithm a response written in two parts
        // waits for the client's delayed acknowledgement (40 ms on Linux).
        let listener = listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stopped.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(Server {
        addr,
        admin_token: admin.token,
        syslog_udp,
        syslog_tcp,
        sigma_loaded,
        sigma_rejected,
        sigma_filters,
        sigma_notices: notices.len(),
        logsource_map_entries,
        state,
        stop,
        http,
        deliverer,
        check_writer,
    })
}

fn spawn_until<F>(mut stopped: watch::Receiver<bool>, task: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        tokio::select! {
            _ = task => {}
            _ = stopped.wait_for(|stop| *stop) => {}
        }
    });
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Re-reads the estate files (and the objects created through the API) and the Sigma
    /// rules, and swaps them in if they load; on any problem both stay as they were.
    pub async fn reload(&self) -> Result<Reloaded, Vec<String>> {
        reload(&self.state).await
    }

    /// Stops accepting connections, lets requests in flight finish, and closes the store.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        // The deliverer finishes what it is sending (each attempt has its timeout).
        let mut deliverer = self.deliverer;
        if tokio::time::timeout(Duration::from_secs(30), &mut deliverer)
            .await
            .is_err()
        {
            deliverer.abort();
        }
        // The supervision task is gone with the stop; its writer writes what it holds.
        let mut check_writer = self.check_writer;
        if tokio::time::timeout(Duration::from_secs(30), &mut check_writer)
            .await
            .is_err()
        {
            check_writer.abort();
        }
        self.http.await.context("HTTP task failed")??;
        self.state.store.close().await;
        Ok(())
    }

    /// Serves until Ctrl-C or SIGTERM; reloads the estate and the Sigma rules on SIGHUP.
    pub async fn run_until_signalled(self) -> Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())?;
        let mut terminate = signal(SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = hangup.recv() => match self.reload().await {
                    Ok(_) => tracing::info!("reloaded on SIGHUP"),
                    Err(problems) => tracing::error!(problems = %problems.join("; "), "reload refused; the running estate and rules are kept"),
                },
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
            }
        }
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

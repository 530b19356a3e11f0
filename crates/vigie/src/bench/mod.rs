//! `vigie bench`: measurements of this machine, recorded in BENCHMARKS.md.
//!
//! `vigie bench ingest` starts a real server in-process (same code as `vigie serve`, on a
//! fresh data directory or the database given), and drives it over loopback HTTP with
//! concurrent clients posting NDJSON batches through an ingest token. An event counts once
//! its request got its 2xx, which the server sends only after the commit; at the end the
//! store is asked how many events it holds, and the run fails if that is not what was
//! acknowledged. Memory (RSS of the process, server and load generator together) is sampled
//! every second to show whether it stays flat under sustained load.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Subcommand;

mod checks;
mod correlation;
mod notify;
mod perfdata;
mod sigma;

use crate::auth::{Role, issue_token};
use crate::server::{ServeOptions, start};
use crate::store::Scope;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Durable ingest through HTTP NDJSON on loopback.
    Ingest {
        /// How long to load the server.
        #[arg(long, default_value = "20")]
        seconds: u64,
        /// Concurrent HTTP clients.
        #[arg(long, default_value = "8")]
        concurrency: usize,
        /// Events per request.
        #[arg(long, default_value = "1000")]
        batch: usize,
        /// Database URL; defaults to SQLite in a fresh temporary directory.
        #[arg(long)]
        database: Option<String>,
        /// Estate directory (the example estate by default).
        #[arg(long, default_value = "examples/estate")]
        estate: PathBuf,
        /// Gzip the request bodies.
        #[arg(long)]
        gzip: bool,
        /// Sigma rule directories evaluated on every event, as `vigie serve --sigma-rules`.
        #[arg(long = "sigma-rules")]
        sigma_rules: Vec<PathBuf>,
    },
    /// The correlation engine alone, on one thread, over many live group keys.
    Correlation {
        /// Distinct group keys the stream is spread over (all kept live).
        #[arg(long, default_value = "100000")]
        keys: usize,
        /// Events fed to the engine.
        #[arg(long, default_value = "5000000")]
        events: u64,
        /// Which correlation of the pack the stream feeds.
        #[arg(long, value_enum, default_value = "event_count")]
        kind: correlation::CorrelationBenchKind,
    },
    /// Sigma rules on one thread: events/s, start-up, memory and recall (see BENCHMARKS.md).
    Sigma {
        #[command(flatten)]
        args: sigma::SigmaBenchArgs,
    },
    /// Alert sent → notification delivered, idle and under load, on any product that takes
    /// Alertmanager's `POST /api/v2/alerts` (see bench/notify-vs-alertmanager.sh).
    Notify {
        #[command(flatten)]
        args: notify::NotifyBenchArgs,
    },
    /// Perfdata time series: points written per second, roll-ups, a 30-day graph's read time.
    Perfdata {
        #[command(flatten)]
        args: perfdata::PerfdataBenchArgs,
    },
    /// The supervision runtime at estate scale: native and plugin checks/s, schedule lag,
    /// memory per check, the fork ceiling (see bench/checks-vs-icinga2.sh).
    Checks {
        #[command(flatten)]
        args: checks::ChecksBenchArgs,
    },
}

pub async fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Ingest {
            seconds,
            concurrency,
            batch,
            database,
            estate,
            gzip,
            sigma_rules,
        } => {
            let load = Load {
                seconds,
                concurrency,
                batch,
                gzip,
            };
            ingest(load, database, estate, sigma_rules).await
        }
        BenchCommand::Correlation { keys, events, kind } => {
            correlation::run(keys, events, kind).await
        }
        BenchCommand::Sigma { args } => tokio::task::spawn_blocking(move || sigma::run(args))
            .await
            .context("the Sigma benchmark panicked")?,
        BenchCommand::Notify { args } => notify::run(args).await,
        BenchCommand::Perfdata { args } => perfdata::run(args).await,
        BenchCommand::Checks { args } => checks::run(args).await,
    }
}

/// Resident and peak memory of this process, in KiB, from /proc.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One NDJSON body of `batch` events for a client; one event in 500 is an error, so that the
/// rules, alerts and incidents run too.
fn body(client: &str, assets: &[String], batch: usize, round: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch * 260);
    for i in 0..batch {
        let n = round as usize * batch + i;
        let asset = &assets[n % assets.len()];
        let severity = if n.is_multiple_of(500) {
            "error"
        } else {
            "info"
        };
        let line = format!(
            "{{\"client\":\"{client}\",\"asset\":\"{asset}\",\"severity\":\"{severity}\",\"source\":\"bench\",\"kind\":\"auth\",\
             \"message\":\"sshd[{pid}]: Accepted publickey for svc{user} from 127.0.{a}.{b} port {port} ssh2\",\"user\":\"svc{user}\",\"seq\":{n}}}\n",
            pid = 1000 + n % 30_000,
            user = n % 97,
            a = n % 250,
            b = n % 251,
            port = 1024 + n % 60_000,
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// Distinct request bodies each load worker cycles through.
const BODIES_PER_WORKER: usize = 8;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// The shape of the load.
struct Load {
    seconds: u64,
    concurrency: usize,
    batch: usize,
    gzip: bool,
}

async fn ingest(
    load: Load,
    database: Option<String>,
    estate: PathBuf,
    sigma_rules: Vec<PathBuf>,
) -> Result<()> {
    let Load {
        seconds,
        concurrency,
        batch,
        gzip,
    } = load;
    ensure!(
        concurrency > 0 && batch > 0 && seconds > 0,
        "seconds, concurrency and batch must be positive"
    );
    let temp = std::env::temp_dir().join(format!("vigie-bench-{}", std::process::id()));
    let server = start(ServeOptions {
        listen: "127.0.0.1:0".parse()?,
        data_dir: temp.clone(),
        database: database.clone(),
        estate_dir: estate,
        alert_rules: None,
        syslog_udp: None,
        syslog_tcp: None,
        max_queued_events: crate::pipeline::DEFAULT_MAX_QUEUED_EVENTS,
        sigma_rules: sigma_rules.clone(),
    })
    .await?;
    let store_name =
        database.unwrap_or_else(|| format!("sqlite {}", temp.join("vigie.db").display()));
    let sigma_loaded = server.sigma_loaded;
    let estate_now = server.state.estate.current().1;
    let client = estate_now
        .clients
        .values()
        .next()
        .context("the estate has no client")?;
    let assets: Vec<String> = client.assets.iter().map(|a| a.id.clone()).collect();
    ensure!(!assets.is_empty(), "client {} has no asset", client.id);
    let token = issue_token(
        &server.state.store,
        "bench",
        Role::Ingest,
        Some(&client.id),
        crate::clock::now_ms(),
    )
    .await?
    .token;
    let before = server.state.store.count_events(&Scope::All).await?;
    let url = format!("{}/api/v1/events", server.url());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;

    let acknowledged = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Bodies are made before the clock starts, so that the load generator, which shares
    // the machine, spends its CPU on sending rather than on formatting.
    let all_bodies: Vec<Arc<Vec<Vec<u8>>>> = (0..concurrency)
        .map(|worker| {
            Arc::new(
                (0..BODIES_PER_WORKER)
                    .map(|i| {
                        body(
                            &client.id,
                            &assets,
                            batch,
                            (worker * BODIES_PER_WORKER + i) as u64,
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for bodies in all_bodies {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        let (acknowledged, refused, stop) = (acknowledged.clone(), refused.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut round = 0;
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                let mut payload = bodies[round % bodies.len()].clone();
                round += 1;
                let mut request = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/x-ndjson");
                if gzip {
                    use std::io::Write;
                    let mut encoder =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    encoder.write_all(&payload)?;
                    payload = encoder.finish()?;
                    request = request.header("content-encoding", "gzip");
                }
                let sent = Instant::now();
                let response = request.body(payload).send().await?;
                let status = response.status();
                let _ = response.bytes().await?;
                if status.is_success() {
                    latencies.push(sent.elapsed());
                    acknowledged.fetch_add(batch as u64, Ordering::Relaxed);
                } else if status.as_u16() == 503 || status.as_u16() == 429 {
                    refused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                } else {
                    bail!("the server answered {status}");
                }
            }
            anyhow::Ok(latencies)
        }));
    }

    // Sample memory and throughput every second while the load runs.
    let mut samples = Vec::new();
    let mut last = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = acknowledged.load(Ordering::Relaxed);
        let (rss, _) = memory_kib();
        samples.push((now - last, rss));
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.context("load worker panicked")??);
    }
    let elapsed = started.elapsed();
    let acknowledged = acknowledged.load(Ordering::Relaxed);
    let on_disk = server.state.store.count_events(&Scope::All).await? - before;
    let (_, peak) = memory_kib();
    let (commits, commit_mean) = server.state.store.metrics().commit_latency.summary();
    server.shutdown().await?;
    let _ = std::fs::remove_dir_all(&temp);

    latencies.sort();
    let rate = acknowledged as f64 / elapsed.as_secs_f64();
    let steady: Vec<u64> = samples
        .iter()
        .skip(samples.len() / 4)
        .map(|s| s.1)
        .collect();
    let (rss_min, rss_max) = (
        steady.iter().min().copied().unwrap_or(0),
        steady.iter().max().copied().unwrap_or(0),
    );
    println!(
        "vigie bench ingest: {} s, {concurrency} clients × {batch} events/request{}, store {store_name}",
        elapsed.as_secs(),
        if gzip { " (gzip)" } else { "" }
    );
    if !sigma_rules.is_empty() {
        println!("  Sigma rules evaluated on every event: {sigma_loaded}");
    }
    println!(
        "  per second (acknowledged events, RSS MiB): {}",
        samples
            .iter()
            .map(|(n, rss)| format!("{n}/{}", rss / 1024))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  acknowledged: {acknowledged} events ({rate:.0} events/s); in the store afterwards: {on_disk}"
    );
    println!(
        "  refused with 503 (backpressure): {} requests",
        refused.load(Ordering::Relaxed)
    );
    println!(
        "  request latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
    println!(
        "  store: {commits} commits, {:.0} events and {:.1} ms each on average",
        on_disk as f64 / commits.max(1) as f64,
        commit_mean.as_secs_f64() * 1000.0
    );
    println!(
        "  memory: steady-state RSS {} to {} MiB, peak {} MiB",
        rss_min / 1024,
        rss_max / 1024,
        peak / 1024
    );
    ensure!(
        on_disk as u64 >= acknowledged,
        "the store holds {on_disk} events but {acknowledged} were acknowledged: acknowledged events were lost"
    );
    Ok(())
}

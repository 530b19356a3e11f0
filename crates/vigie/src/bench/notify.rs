//! `vigie bench notify`: the latency from an alert sent to the notification delivered, measured
//! the same way on any product that takes Alertmanager's `POST /api/v2/alerts` and sends
//! Alertmanager's v4 webhook (Vigie's `alertmanager` channel, Alertmanager itself), so that
//! `bench/notify-vs-alertmanager.sh` compares the two in the same run.
//!
//! What is timed, and only that: for each probe, from the instant before its
//! `POST {target}/api/v2/alerts` is written to the instant this process has read the whole
//! webhook request that carries it. Each probe is a new alert with a new `alertname` (a new
//! group in Alertmanager, a new incident in Vigie) and a `bench_probe` label; probes go one at
//! a time, the next one `--spacing` after the previous was sent or once it was notified, so
//! that no probe waits behind another. The receiver and the probe sender run on their own
//! thread and runtime, so that the background load generator never delays a timestamp.
//!
//! Background load (`--background-rate`): re-sends of a fixed set of already-firing alerts,
//! what a Prometheus fleet sends all day, paced in batches over several connections. They are
//! sent once and their first notifications awaited before the clock starts; after that they
//! must not notify again, and the notifications that still carry them are counted. The rate
//! achieved is reported beside the rate asked, so a product that cannot keep up shows it.
//!
//! Memory (`--pid`, `--memory-alerts M`): the target's RSS (`/proc/<pid>/status`) before and
//! after M new distinct firing alerts are loaded, spread over `--memory-groups` alert names;
//! the difference divided by M is the memory per active alert.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::serve::ListenerExt;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Arguments of `vigie bench notify`.
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyBenchArgs {
    /// Base URL of the product under test; alerts go to `{target}/api/v2/alerts`.
    #[arg(long)]
    pub target: String,
    /// Bearer token sent with every alert (Vigie: a token of the bench client).
    #[arg(long, env = "VIGIE_BENCH_TOKEN")]
    pub token: Option<String>,
    /// Address the webhook receiver listens on; the product's webhook points there.
    #[arg(long, default_value = "127.0.0.1:9099")]
    pub receiver: SocketAddr,
    /// A name for the product in the output (e.g. `alertmanager`, `vigie`).
    #[arg(long, default_value = "target")]
    pub name: String,
    /// Probe alerts to send, one at a time.
    #[arg(long, default_value_t = 1000)]
    pub alerts: u64,
    /// Time from one probe's send to the next one's, at the least.
    #[arg(long, default_value = "20ms", value_parser = duration_arg)]
    pub spacing: Duration,
    /// Stop sending probes after this long even if fewer than `--alerts` were sent.
    #[arg(long, default_value = "2m", value_parser = duration_arg)]
    pub duration: Duration,
    /// How long to wait for a probe's notification before reporting it missing.
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub timeout: Duration,
    /// Stop probing after this many probes in a row got no notification or were refused.
    #[arg(long, default_value_t = 3)]
    pub give_up_after: u32,
    /// Background re-sends of already-firing alerts, in alerts per second (0: idle).
    #[arg(long, default_value_t = 0)]
    pub background_rate: u64,
    /// Distinct firing alerts the background load re-sends.
    #[arg(long, default_value_t = 10_000)]
    pub background_alerts: usize,
    /// Alert names the background alerts are spread over (groups, incidents).
    #[arg(long, default_value_t = 50)]
    pub background_groups: usize,
    /// Alerts per background POST.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Concurrent connections of the background load (and of the memory load).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Process id of the target, for its memory (`/proc/<pid>/status`).
    #[arg(long)]
    pub pid: Option<u32>,
    /// New distinct firing alerts loaded to measure the memory per active alert (needs `--pid`).
    #[arg(long, default_value_t = 0)]
    pub memory_alerts: usize,
    /// Alert names the memory alerts are spread over.
    #[arg(long, default_value_t = 100)]
    pub memory_groups: usize,
    /// How long to wait after loading the memory alerts before reading the RSS.
    #[arg(long, default_value = "10s", value_parser = duration_arg)]
    pub memory_settle: Duration,
}

fn duration_arg(text: &str) -> Result<Duration, String> {
    let ms = vigie_core::estate::parse_duration(text)?;
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| format!("invalid duration `{text}`: negative"))
}

/// Which part of the run an alert belongs to, from its `bench_role` label.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Probe,
    Background,
    Memory,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Probe => "probe",
            Role::Background => "background",
            Role::Memory => "memory",
        }
    }
}

/// One alert as Prometheus posts it. Every role has the same shape (five labels and an
/// annotation), so that they cost the products the same to take in.
fn alert(run: &str, role: Role, group: usize, instance: usize, starts_at: &str) -> Value {
    let alertname = match role {
        Role::Probe => format!("BenchProbe_{run}_{instance}"),
        Role::Background => format!("BenchBackground_{run}_{group}"),
        Role::Memory => format!("BenchMemory_{run}_{group}"),
    };
    let mut labels = json!({
        "alertname": alertname,
        "instance": format!("{}-{instance}:9100", role.label()),
        "job": "bench",
        "severity": "critical",
        "bench_run": run,
        "bench_role": role.label(),
    });
    if role == Role::Probe {
        labels["bench_probe"] = json!(instance.to_string());
    }
    json!({
        "labels": labels,
        "annotations": {"summary": format!("bench {} alert {instance}", role.label())},
        "startsAt": starts_at,
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=bench",
    })
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// POST bodies of `per_body` alerts each, for instances `0..count` spread over `groups` names.
fn bodies(run: &str, role: Role, count: usize, groups: usize, per_body: usize) -> Vec<Vec<u8>> {
    let starts_at = now_rfc3339();
    (0..count)
        .collect::<Vec<_>>()
        .chunks(per_body)
        .map(|chunk| {
            let alerts: Vec<Value> = chunk
                .iter()
                .map(|&i| alert(run, role, i % groups, i, &starts_at))
                .collect();
            serde_json::to_vec(&alerts).expect("invariant: a JSON value serialises")
        })
        .collect()
}

/// What the webhook receiver saw.
#[derive(Default)]
struct Received {
    /// Probes sent and not yet notified: the receiver hands each its receive instant.
    waiting: Mutex<HashMap<u64, oneshot::Sender<Instant>>>,
    /// Probes notified at least once.
    notified: Mutex<HashSet<u64>>,
    /// Whether the background load is running (its alerts must not notify then).
    load_running: AtomicBool,
    webhooks: AtomicU64,
    not_understood: AtomicU64,
    probe_duplicates: AtomicU64,
    /// Probe notifications that came after their timeout.
    probe_late: AtomicU64,
    background_before_load: AtomicU64,
    background_during_load: AtomicU64,
    memory_alerts: AtomicU64,
    resolved: AtomicU64,
    /// Alerts of other runs (left in the product by an earlier run).
    other_runs: AtomicU64,
    /// When the last webhook carrying a background or memory alert came.
    last_bulk: Mutex<Option<Instant>>,
}

struct Receiver {
    run: String,
    received: Received,
}

async fn webhook(State(receiver): State<Arc<Receiver>>, body: Bytes) -> StatusCode {
    // The request has been read whole: this is the instant the notification was delivered.
    let at = Instant::now();
    let received = &receiver.received;
    received.webhooks.fetch_add(1, Ordering::Relaxed);
    let Some(alerts) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|message| message.get("alerts")?.as_array().cloned())
    else {
        received.not_understood.fetch_add(1, Ordering::Relaxed);
        return StatusCode::OK;
    };
    let mut bulk = false;
    for alert in &alerts {
        let labels = &alert["labels"];
        if labels["bench_run"].as_str() != Some(receiver.run.as_str()) {
            received.other_runs.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if alert["status"].as_str() == Some("resolved") {
            received.resolved.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match labels["bench_role"].as_str() {
            Some("probe") => {
                let Some(probe) = labels["bench_probe"].as_str().and_then(|p| p.parse().ok())
                else {
                    received.not_understood.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let first = received
                    .notified
                    .lock()
                    .expect("invariant: no panic holding the lock")
                    .insert(probe);
                if !first {
                    received.probe_duplicates.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let waiting = received
                    .waiting
                    .lock()
                    .expect("invariant: no panic holding the lock")
                    .remove(&probe);
                match waiting {
                    Some(sender) => {
                        let _ = sender.send(at);
                    }
                    None => {
                        received.probe_late.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Some("background") => {
                bulk = true;
                if received.load_running.load(Ordering::Relaxed) {
                    received
                        .background_during_load
                        .fetch_add(1, Ordering::Relaxed);
                } else {
                    received
                        .background_before_load
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            Some("memory") => {
                bulk = true;
                received.memory_alerts.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                received.not_understood.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if bulk {
        *received
            .last_bulk
            .lock()
            .expect("invariant: no panic holding the lock") = Some(at);
    }
    StatusCode::OK
}

/// How each probe went.
#[derive(Default)]
struct ProbeResults {
    /// Send → webhook received, for the probes notified in time.
    delivered: Vec<Duration>,
    /// Send → the POST's answer, for the probes accepted.
    answered: Vec<Duration>,
    sent: u64,
    timed_out: u64,
    refused: u64,
    gave_up: Option<String>,
}

struct ProbeSettings {
    url: String,
    token: Option<String>,
    alerts: u64,
    spacing: Duration,
    duration: Duration,
    timeout: Duration,
    give_up_after: u32,
}

async fn send_probes(receiver: Arc<Receiver>, settings: ProbeSettings) -> Result<ProbeResults> {
    // Its own client, its own connection: probes never wait for a pooled connection that the
    // background load holds.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()?;
    let mut results = ProbeResults::default();
    let mut failures_in_a_row = 0;
    let started = Instant::now();
    let mut next = tokio::time::Instant::now();
    for probe in 1..=settings.alerts {
        if started.elapsed() >= settings.duration {
            break;
        }
        tokio::time::sleep_until(next).await;
        let body = serde_json::to_vec(&[alert(
            &receiver.run,
            Role::Probe,
            0,
            probe as usize,
            &now_rfc3339(),
        )])?;
        let (notify, notified) = oneshot::channel();
        receiver
            .received
            .waiting
            .lock()
            .expect("invariant: no panic holding the lock")
            .insert(probe, notify);
        let mut request = http
            .post(&settings.url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = &settings.token {
            request = request.bearer_auth(token);
        }
        results.sent += 1;
        let sent = Instant::now();
        next = tokio::time::Instant::from_std(sent + settings.spacing);
        let deadline = tokio::time::Instant::from_std(sent + settings.timeout);
        let answer = tokio::time::timeout_at(deadline, async {
            let response = request.send().await?;
            let status = response.status();
            let text = response.text().await?;
            anyhow::Ok((status, text))
        })
        .await;
        let failure = match answer {
            Ok(Ok((status, _))) if status.is_success() => {
                results.answered.push(sent.elapsed());
                match tokio::time::timeout_at(deadline, notified).await {
                    Ok(Ok(at)) => {
                        results.delivered.push(at - sent);
                        None
                    }
                    _ => {
                        results.timed_out += 1;
                        Some(format!(
                            "no notification received within the timeout ({} ms) for probe {probe}",
                            settings.timeout.as_millis()
                        ))
                    }
                }
            }
            Ok(Ok((status, text))) => {
                results.refused += 1;
                Some(format!(
                    "probe {probe} refused: {status} {}",
                    text.chars().take(300).collect::<String>()
                ))
            }
            Ok(Err(error)) => {
                results.refused += 1;
                Some(format!("probe {probe} not sent: {error:#}"))
            }
            Err(_) => {
                results.timed_out += 1;
                Some(format!(
                    "probe {probe}: no answer to the POST within the timeout ({} ms)",
                    settings.timeout.as_millis()
                ))
            }
        };
        match failure {
            None => failures_in_a_row = 0,
            Some(problem) => {
                // A notification that comes later is counted as late, not as a latency.
                receiver
                    .received
                    .waiting
                    .lock()
                    .expect("invariant: no panic holding the lock")
                    .remove(&probe);
                println!("  {problem}");
                failures_in_a_row += 1;
                if failures_in_a_row >= settings.give_up_after {
                    results.gave_up = Some(format!(
                        "gave up after {failures_in_a_row} probes in a row without a notification: {problem}"
                    ));
                    break;
                }
                next = tokio::time::Instant::now().max(next);
            }
        }
    }
    Ok(results)
}

/// The receiver's thread: a runtime of its own serving the webhooks, on which the probes are
/// sent too, so that both timestamps are taken on a thread the load generator does not share.
struct ReceiverThread {
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl ReceiverThread {
    fn start(receiver: Arc<Receiver>, address: SocketAddr) -> Result<ReceiverThread> {
        let listener = std::net::TcpListener::bind(address)
            .with_context(|| format!("cannot listen on {address} for the webhooks"))?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let app = Router::new().fallback(webhook).with_state(receiver);
        let thread = std::thread::Builder::new()
            .name("bench-receiver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?.tap_io(|stream| {
                        let _ = stream.set_nodelay(true);
                    });
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await?;
                    anyhow::Ok(())
                })
            })?;
        Ok(ReceiverThread {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("the receiver thread panicked"))??;
        }
        Ok(())
    }
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

/// Linux reports process and machine CPU time in units of 1/100 s (`USER_HZ`) on every
/// architecture, whatever the kernel's own tick.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time of a process so far, in ticks (`/proc/<pid>/stat`, `self` for this one).
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces; the fields after it are fixed:
    // utime and stime are the 14th and 15th of the line, the 12th and 13th after the name.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Busy and total CPU time of the machine so far, in ticks, with its number of cores.
fn machine_ticks() -> Option<(u64, u64, usize)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cores = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    let times: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    let total: u64 = times.iter().take(8).sum();
    let idle = times.get(3)? + times.get(4)?;
    Some((total - idle, total, cores))
}

struct CpuSnapshot {
    at: Instant,
    target: Option<u64>,
    harness: Option<u64>,
    machine: Option<(u64, u64, usize)>,
}

fn cpu_snapshot(pid: Option<u32>) -> CpuSnapshot {
    CpuSnapshot {
        at: Instant::now(),
        target: pid.and_then(|pid| process_ticks(&pid.to_string())),
        harness: process_ticks("self"),
        machine: machine_ticks(),
    }
}

/// CPU used between two snapshots: of the target and of this harness in percent of one core,
/// of the whole machine in percent of all its cores (other work on the machine shows there).
struct CpuShare {
    target: Option<f64>,
    harness: Option<f64>,
    machine_busy: Option<f64>,
    cores: usize,
}

fn cpu_share(before: &CpuSnapshot, after: &CpuSnapshot) -> CpuShare {
    let seconds = (after.at - before.at).as_secs_f64().max(1e-9);
    let of_a_core = |a: Option<u64>, b: Option<u64>| {
        Some(b?.saturating_sub(a?) as f64 / TICKS_PER_SECOND / seconds * 100.0)
    };
    let machine = before.machine.zip(after.machine);
    CpuShare {
        target: of_a_core(before.target, after.target),
        harness: of_a_core(before.harness, after.harness),
        machine_busy: machine.and_then(|((busy0, total0, _), (busy1, total1, _))| {
            (total1 > total0)
                .then(|| busy1.saturating_sub(busy0) as f64 / (total1 - total0) as f64 * 100.0)
        }),
        cores: machine.map_or(0, |(_, (_, _, cores))| cores),
    }
}

/// The target's memory and CPU around the probes.
struct TargetUsage {
    rss_start_kib: Option<u64>,
    rss_after_probes_kib: Option<u64>,
    cpu: CpuShare,
}

/// Counters of a bulk sender (background or memory load).
#[derive(Default)]
struct BulkCounters {
    accepted_alerts: AtomicU64,
    refused_requests: AtomicU64,
    failed_requests: AtomicU64,
    last_error: Mutex<Option<String>>,
}

async fn post_bulk(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Vec<u8>,
    alerts: usize,
    counters: &BulkCounters,
) {
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let outcome = async {
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::Ok((status, text))
    }
    .await;
    match outcome {
        Ok((status, _)) if status.is_success() => {
            counters
                .accepted_alerts
                .fetch_add(alerts as u64, Ordering::Relaxed);
        }
        Ok((status, text)) => {
            counters.refused_requests.fetch_add(1, Ordering::Relaxed);
            *counters
                .last_error
                .lock()
                .expect("invariant: no panic holding the lock") = Some(format!(
                "{status} {}",
                text.chars().take(300).collect::<String>()
            ));
        }
        Err(error) => {
            counters.failed_requests.fetch_add(1, Ordering::Relaxed);
            *counters
                .last_error
                .lock()
                .expect("invariant: no panic holding the lock") = Some(format!("{error:#}"));
        }
    }
}

/// Posts every body once over `connections` connections, as fast as the target takes them.
async fn post_all(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    bodies: Vec<(Vec<u8>, usize)>,
    connections: usize,
) -> BulkCounters {
    let counters = Arc::new(BulkCounters::default());
    let queue = Arc::new(Mutex::new(bodies.into_iter()));
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (http, url, token) = (http.clone(), url.to_owned(), token.map(str::to_owned));
        let (queue, counters) = (queue.clone(), counters.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let next = queue
                    .lock()
                    .expect("invariant: no panic holding the lock")
                    .next();
                let Some((body, alerts)) = next else { break };
                post_bulk(&http, &url, token.as_deref(), body, alerts, &counters).await;
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    Arc::try_unwrap(counters).unwrap_or_default()
}

/// Waits until no background or memory alert has been notified for `quiet`, at most `limit`.
async fn wait_until_quiet(received: &Received, quiet: Duration, limit: Duration) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let last = *received
            .last_bulk
            .lock()
            .expect("invariant: no panic holding the lock");
        let since = last.map_or(started.elapsed(), |at| at.elapsed());
        if since >= quiet || started.elapsed() >= limit {
            return;
        }
    }
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// p50, p90, p99 and max of sorted latencies, in ms.
fn quantiles(sorted: &[Duration]) -> Value {
    json!({
        "n": sorted.len(),
        "p50_ms": ms(super::percentile(sorted, 0.50)),
        "p90_ms": ms(super::percentile(sorted, 0.90)),
        "p99_ms": ms(super::percentile(sorted, 0.99)),
        "max_ms": ms(sorted.last().copied().unwrap_or_default()),
    })
}

pub async fn run(args: NotifyBenchArgs) -> Result<()> {
    ensure!(
        args.batch > 0 && args.connections > 0,
        "--batch and --connections must be positive"
    );
    ensure!(
        args.background_groups > 0 && args.memory_groups > 0,
        "--background-groups and --memory-groups must be positive"
    );
    ensure!(
        args.background_rate == 0 || args.background_alerts > 0,
        "a background load needs --background-alerts"
    );
    ensure!(
        args.memory_alerts == 0 || args.pid.is_some(),
        "--memory-alerts needs --pid, the target's process id"
    );
    let url = format!("{}/api/v2/alerts", args.target.trim_end_matches('/'));
    let token = args.token.as_deref();
    // Every run has its own alert names, so that nothing an earlier run left in the target
    // (an open group, an incident) makes a probe less new.
    let run = format!(
        "{:x}{:04x}",
        crate::clock::now_ms() / 1000,
        std::process::id() % 0x10000
    );
    let receiver = Arc::new(Receiver {
        run: run.clone(),
        received: Received::default(),
    });
    let receiver_thread = ReceiverThread::start(receiver.clone(), args.receiver)?;
    let rss_start = args.pid.map(rss_kib).transpose()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    println!(
        "vigie bench notify: {} at {url}, webhooks to http://{}/, run {run}",
        args.name, args.receiver
    );

    // Background: the alerts fire once, their first notifications go out, then the re-sends.
    let mut background = None;
    if args.background_rate > 0 {
        let bodies = bodies(
            &run,
            Role::Background,
            args.background_alerts,
            args.background_groups,
            args.batch,
        );
        let first: Vec<(Vec<u8>, usize)> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                (
                    body.clone(),
                    alerts_in(i, args.batch, args.background_alerts),
                )
            })
            .collect();
        let warm_up = post_all(&http, &url, token, first, args.connections).await;
        ensure!(
            warm_up.accepted_alerts.load(Ordering::Relaxed) == args.background_alerts as u64,
            "the target did not take the background alerts: {}",
            warm_up
                .last_error
                .lock()
                .expect("invariant: no panic holding the lock")
                .clone()
                .unwrap_or_default()
        );
        wait_until_quiet(
            &receiver.received,
            Duration::from_secs(2),
            Duration::from_secs(30),
        )
        .await;
        receiver
            .received
            .load_running
            .store(true, Ordering::Relaxed);
        background = Some(start_background(&args, &http, &url, bodies));
        // Let the load reach its pace before the first probe.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let settings = ProbeSettings {
        url: url.clone(),
        token: args.token.clone(),
        alerts: args.alerts,
        spacing: args.spacing,
        duration: args.duration,
        timeout: args.timeout,
        give_up_after: args.give_up_after,
    };
    let cpu_before = cpu_snapshot(args.pid);
    let probes = receiver_thread
        .handle
        .spawn(send_probes(receiver.clone(), settings))
        .await
        .context("the probe sender panicked")??;
    let cpu = cpu_share(&cpu_before, &cpu_snapshot(args.pid));

    let load = match background {
        Some(load) => Some(load.stop().await),
        None => None,
    };
    receiver
        .received
        .load_running
        .store(false, Ordering::Relaxed);
    let usage = TargetUsage {
        rss_start_kib: rss_start,
        rss_after_probes_kib: args.pid.map(rss_kib).transpose()?,
        cpu,
    };

    let memory = match args.pid {
        Some(pid) if args.memory_alerts > 0 => {
            Some(measure_memory(&args, pid, &http, &url, &run).await?)
        }
        _ => None,
    };
    // Late notifications of the last probes still count as late.
    tokio::time::sleep(Duration::from_millis(200)).await;
    receiver_thread.stop()?;

    report(&args, &run, &receiver.received, probes, load, memory, usage)
}

/// Alerts in body `i` of `per_body` alerts each, out of `count`.
fn alerts_in(i: usize, per_body: usize, count: usize) -> usize {
    per_body.min(count - i * per_body)
}

struct Background {
    asked_per_s: u64,
    stop: Arc<AtomicBool>,
    counters: Arc<BulkCounters>,
    started: Instant,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// What the background load achieved.
struct LoadResults {
    asked_per_s: u64,
    achieved_per_s: f64,
    seconds: f64,
    refused_requests: u64,
    failed_requests: u64,
    last_error: Option<String>,
}

fn start_background(
    args: &NotifyBenchArgs,
    http: &reqwest::Client,
    url: &str,
    bodies: Vec<Vec<u8>>,
) -> Background {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(BulkCounters::default());
    let bodies: Arc<Vec<(Vec<u8>, usize)>> = Arc::new(
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| (body, alerts_in(i, args.batch, args.background_alerts)))
            .collect(),
    );
    // Batch `i` is due at `started + i × interval`; connection `c` sends batches c, c + C, …
    // A connection that falls behind sends back to back: the achieved rate shows it.
    let interval = Duration::from_secs_f64(args.batch as f64 / args.background_rate as f64);
    let started = Instant::now();
    let connections = args.connections;
    let workers = (0..connections)
        .map(|connection| {
            let (http, url, token) = (http.clone(), url.to_owned(), args.token.clone());
            let (stop, counters, bodies) = (stop.clone(), counters.clone(), bodies.clone());
            tokio::spawn(async move {
                let mut batch = connection;
                while !stop.load(Ordering::Relaxed) {
                    let due = started + interval * batch as u32;
                    tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let (body, alerts) = &bodies[batch % bodies.len()];
                    post_bulk(
                        &http,
                        &url,
                        token.as_deref(),
                        body.clone(),
                        *alerts,
                        &counters,
                    )
                    .await;
                    batch += connections;
                }
            })
        })
        .collect();
    Background {
        asked_per_s: args.background_rate,
        stop,
        counters,
        started,
        workers,
    }
}

impl Background {
    async fn stop(self) -> LoadResults {
        // The rate is what was accepted while the probes ran, over that time.
        let seconds = self.started.elapsed().as_secs_f64();
        let accepted = self.counters.accepted_alerts.load(Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            let _ = worker.await;
        }
        LoadResults {
            asked_per_s: self.asked_per_s,
            achieved_per_s: accepted as f64 / seconds,
            seconds,
            refused_requests: self.counters.refused_requests.load(Ordering::Relaxed),
            failed_requests: self.counters.failed_requests.load(Ordering::Relaxed),
            last_error: self
                .counters
                .last_error
                .lock()
                .expect("invariant: no panic holding the lock")
                .clone(),
        }
    }
}

/// The target's memory before and after new distinct firing alerts.
struct MemoryResults {
    alerts: usize,
    accepted: u64,
    intake_per_s: f64,
    rss_before_kib: u64,
    rss_loaded_kib: u64,
    rss_after_kib: u64,
    rss_peak_kib: u64,
}

async fn measure_memory(
    args: &NotifyBenchArgs,
    pid: u32,
    http: &reqwest::Client,
    url: &str,
    run: &str,
) -> Result<MemoryResults> {
    // Let what the latency run left (queued notifications, garbage) settle first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before_kib = rss_kib(pid)?;
    let per_body = 1000;
    let bodies: Vec<(Vec<u8>, usize)> = bodies(
        run,
        Role::Memory,
        args.memory_alerts,
        args.memory_groups,
        per_body,
    )
    .into_iter()
    .enumerate()
    .map(|(i, body)| (body, alerts_in(i, per_body, args.memory_alerts)))
    .collect();
    let started = Instant::now();
    let counters = post_all(http, url, args.token.as_deref(), bodies, args.connections).await;
    let intake = started.elapsed();
    let accepted = counters.accepted_alerts.load(Ordering::Relaxed);
    if accepted < args.memory_alerts as u64 {
        println!(
            "  memory: the target took {accepted} of {} alerts (last error: {})",
            args.memory_alerts,
            counters
                .last_error
                .lock()
                .expect("invariant: no panic holding the lock")
                .clone()
                .unwrap_or_default()
        );
    }
    let rss_loaded_kib = rss_kib(pid)?;
    let mut rss_peak_kib = rss_loaded_kib;
    // The notifications of the new groups go out meanwhile; the last reading is the one kept.
    let settle_until = Instant::now() + args.memory_settle;
    let mut rss_after_kib = rss_loaded_kib;
    while Instant::now() < settle_until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_after_kib = rss_kib(pid)?;
        rss_peak_kib = rss_peak_kib.max(rss_after_kib);
    }
    Ok(MemoryResults {
        alerts: args.memory_alerts,
        accepted,
        intake_per_s: accepted as f64 / intake.as_secs_f64(),
        rss_before_kib,
        rss_loaded_kib,
        rss_after_kib,
        rss_peak_kib,
    })
}

fn report(
    args: &NotifyBenchArgs,
    run: &str,
    received: &Received,
    mut probes: ProbeResults,
    load: Option<LoadResults>,
    memory: Option<MemoryResults>,
    usage: TargetUsage,
) -> Result<()> {
    probes.delivered.sort();
    probes.answered.sort();
    let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    match &load {
        Some(load) => println!(
            "  background: {} alerts/s asked, {:.0} achieved over {:.1} s (re-sends of {} firing alerts \
             in {} groups, {} per POST, {} connections); {} requests refused, {} failed{}",
            load.asked_per_s,
            load.achieved_per_s,
            load.seconds,
            args.background_alerts,
            args.background_groups,
            args.batch,
            args.connections,
            load.refused_requests,
            load.failed_requests,
            load.last_error
                .as_deref()
                .map(|e| format!(" (last: {e})"))
                .unwrap_or_default()
        ),
        None => println!("  background: none (idle)"),
    }
    if load.is_some() {
        println!(
            "  background alerts in notifications: {} before the load (their first notifications), {} during it (re-sends must add none)",
            count(&received.background_before_load),
            count(&received.background_during_load)
        );
    }
    println!(
        "  probes: {} sent one at a time, at least {} ms apart; {} notified in time, {} timed out ({} ms), {} refused, {} notified late, {} notified twice",
        probes.sent,
        args.spacing.as_millis(),
        probes.delivered.len(),
        probes.timed_out,
        args.timeout.as_millis(),
        probes.refused,
        count(&received.probe_late),
        count(&received.probe_duplicates)
    );
    let delivered = quantiles(&probes.delivered);
    let answered = quantiles(&probes.answered);
    println!("  | {} | n | p50 | p90 | p99 | max |", args.name);
    println!("  |---|---|---|---|---|---|");
    for (what, q) in [
        ("send → webhook received", &delivered),
        ("send → POST answered", &answered),
    ] {
        if q["n"] == 0 {
            println!("  | {what} | 0 | – | – | – | – |");
        } else {
            println!(
                "  | {what} | {} | {} ms | {} ms | {} ms | {} ms |",
                q["n"], q["p50_ms"], q["p90_ms"], q["p99_ms"], q["max_ms"]
            );
        }
    }
    if let Some(problem) = &probes.gave_up {
        println!("  {problem}");
    }
    if let (Some(start), Some(after)) = (usage.rss_start_kib, usage.rss_after_probes_kib) {
        println!(
            "  target RSS: {} MiB at the start, {} MiB after the probes",
            start / 1024,
            after / 1024
        );
    }
    let percent = |share: Option<f64>| share.map_or("–".to_owned(), |p| format!("{p:.0} %"));
    println!(
        "  CPU while the probes ran: target {} of a core, this harness {} of a core, machine {} busy ({} cores)",
        percent(usage.cpu.target),
        percent(usage.cpu.harness),
        percent(usage.cpu.machine_busy),
        usage.cpu.cores
    );
    if let Some(memory) = &memory {
        println!(
            "  memory: {} new firing alerts in {} groups ({} taken, {:.0} alerts/s): RSS {} MiB before, \
             {} MiB loaded, {} MiB after {} s (peak {} MiB): {:.0} bytes per active alert; {} alert entries in their notifications",
            memory.alerts,
            args.memory_groups,
            memory.accepted,
            memory.intake_per_s,
            memory.rss_before_kib / 1024,
            memory.rss_loaded_kib / 1024,
            memory.rss_after_kib / 1024,
            args.memory_settle.as_secs(),
            memory.rss_peak_kib / 1024,
            per_alert_bytes(memory),
            count(&received.memory_alerts)
        );
    }
    println!(
        "  webhooks received: {}; not understood: {}; resolved alerts: {}; alerts of other runs: {}",
        count(&received.webhooks),
        count(&received.not_understood),
        count(&received.resolved),
        count(&received.other_runs)
    );
    let summary = json!({
        "name": args.name,
        "target": args.target,
        "run": run,
        "spacing_ms": args.spacing.as_millis() as u64,
        "timeout_ms": args.timeout.as_millis() as u64,
        "probes": {
            "sent": probes.sent,
            "notified": probes.delivered.len(),
            "timed_out": probes.timed_out,
            "refused": probes.refused,
            "late": count(&received.probe_late),
            "duplicates": count(&received.probe_duplicates),
            "gave_up": probes.gave_up,
        },
        "delivered": delivered,
        "answered": answered,
        "background": load.as_ref().map(|load| json!({
            "asked_per_s": load.asked_per_s,
            "achieved_per_s": load.achieved_per_s.round(),
            "seconds": load.seconds,
            "alerts": args.background_alerts,
            "groups": args.background_groups,
            "batch": args.batch,
            "connections": args.connections,
            "refused_requests": load.refused_requests,
            "failed_requests": load.failed_requests,
            "notified_before_load": count(&received.background_before_load),
            "notified_during_load": count(&received.background_during_load),
        })),
        "rss_start_kib": usage.rss_start_kib,
        "rss_after_probes_kib": usage.rss_after_probes_kib,
        "cpu_during_probes_percent": {
            "target": usage.cpu.target.map(f64::round),
            "harness": usage.cpu.harness.map(f64::round),
            "machine_busy": usage.cpu.machine_busy.map(f64::round),
            "cores": usage.cpu.cores,
        },
        "memory": memory.as_ref().map(|memory| json!({
            "alerts": memory.alerts,
            "groups": args.memory_groups,
            "accepted": memory.accepted,
            "intake_per_s": memory.intake_per_s.round(),
            "rss_before_kib": memory.rss_before_kib,
            "rss_loaded_kib": memory.rss_loaded_kib,
            "rss_after_kib": memory.rss_after_kib,
            "rss_peak_kib": memory.rss_peak_kib,
            "bytes_per_alert": per_alert_bytes(memory).round(),
            "notified_alerts": count(&received.memory_alerts),
        })),
    });
    println!("summary: {summary}");
    if probes.sent > 0 && probes.delivered.is_empty() {
        bail!(
            "{}: no probe was notified; is its webhook pointed at http://{}/ ?",
            args.name,
            args.receiver
        );
    }
    Ok(())
}

fn per_alert_bytes(memory: &MemoryResults) -> f64 {
    (memory.rss_after_kib as f64 - memory.rss_before_kib as f64) * 1024.0
        / memory.accepted.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_hold_every_alert_once_with_its_role_and_group() {
        let bodies = bodies("r1", Role::Background, 250, 50, 100);
        assert_eq!(bodies.len(), 3);
        let alerts: Vec<Value> = bodies
            .iter()
            .flat_map(|body| serde_json::from_slice::<Vec<Value>>(body).unwrap())
            .collect();
        assert_eq!(alerts.len(), 250);
        assert_eq!(alerts[0]["labels"]["alertname"], "BenchBackground_r1_0");
        assert_eq!(alerts[51]["labels"]["alertname"], "BenchBackground_r1_1");
        assert_eq!(alerts[249]["labels"]["instance"], "background-249:9100");
        assert_eq!(alerts[0]["labels"]["bench_role"], "background");
        assert_eq!(alerts_in(2, 100, 250), 50);
        let alerts = vigie_core::alert::alertmanager::parse_postable_alerts(
            &serde_json::from_slice(&bodies[0]).unwrap(),
            crate::clock::now_ms(),
        )
        .expect("Alertmanager's format");
        assert_eq!(alerts.len(), 100);
    }

    #[tokio::test]
    async fn the_receiver_hands_a_probe_its_receive_instant_once() {
        let receiver = Arc::new(Receiver {
            run: "r1".into(),
            received: Received::default(),
        });
        let (notify, notified) = oneshot::channel();
        receiver.received.waiting.lock().unwrap().insert(7, notify);
        let message = |run: &str| {
            json!({"version": "4", "status": "firing", "alerts": [
                {"status": "firing", "labels": alert(run, Role::Probe, 0, 7, "2026-01-01T00:00:00Z")["labels"]}
            ]})
            .to_string()
        };
        let before = Instant::now();
        webhook(State(receiver.clone()), Bytes::from(message("r1"))).await;
        assert!(notified.await.unwrap() >= before);
        webhook(State(receiver.clone()), Bytes::from(message("r1"))).await;
        webhook(State(receiver.clone()), Bytes::from(message("other"))).await;
        webhook(State(receiver.clone()), Bytes::from_static(b"not json")).await;
        let received = &receiver.received;
        assert_eq!(received.probe_duplicates.load(Ordering::Relaxed), 1);
        assert_eq!(received.other_runs.load(Ordering::Relaxed), 1);
        assert_eq!(received.not_understood.load(Ordering::Relaxed), 1);
        assert_eq!(received.webhooks.load(Ordering::Relaxed), 4);
    }
}

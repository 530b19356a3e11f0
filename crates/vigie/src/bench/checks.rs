//! `vigie bench checks`: the supervision runtime at estate scale, on this machine, so that
//! `bench/checks-vs-icinga2.sh` can set it beside Icinga 2 on the same estate.
//!
//! What runs is what `vigie serve` runs: the bench writes an estate directory (one YAML file
//! per client of `--hosts-per-client` hosts, one check rule giving every host `--services`
//! checks at `--interval`), starts the real server on it with SQLite in a temporary directory,
//! and lets the supervision task schedule, probe, apply the state machine and write every
//! state to the store. Nothing of the runtime is re-implemented here; the bench only reads
//! what the runtime already tells `/metrics` (checks run, the schedule lag's p50 and p99 over
//! its last 4,096 checks) and the process's own counters in /proc.
//!
//! - **Native** (the default): TCP checks against listeners the bench starts itself, one
//!   socket per address on `--hosts-per-client` addresses spread over 127.0.0.0/8 (Linux
//!   routes the whole block to the loopback, nothing to set up). Host `i` of every client has
//!   address number `i`: within a client an address names one asset, across clients they are
//!   shared. The listeners run on their own thread, so that their CPU is told apart. After
//!   `--warmup` seconds (the first round writes every new check, then the first interval
//!   settles), `--seconds` are measured: checks completed per second, lag, CPU time per check,
//!   the machine's CPU busy, and RSS growth per check from before the estate was loaded. At
//!   the end the store is read back: every check should hold a result from its last interval
//!   (the state writes kept up), and the states show whether the checks passed.
//! - **`--plugins`**: `check_dummy 0 ok` (Monitoring Plugins) as plugin checks, at each rate
//!   of `--rates` in turn (a fresh server and estate per step, `--plugin-interval` apart), to
//!   find the highest rate sustained: completed within 3 % of the rate offered, lag p99 under
//!   1 s.
//! - **`--fork-ceiling`**: the machine's raw rate of spawning `check_dummy 0 ok`, reading its
//!   output and waiting for it, in a tight loop on `--workers` threads: what no plugin runner
//!   can beat here.
//! - **`--listen-only`**: only the listeners, for `--seconds` (the Icinga 2 side of the peer
//!   script probes them with `check_tcp`).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::net::TcpListener;

use crate::metrics::Metrics;
use crate::notify::DeliveryConfig;
use crate::server::{DetectionOptions, ServeOptions, Server, start_with_perfdata};
use crate::supervision::PerfdataConfig;

/// The plugin the plugin mode and the fork ceiling run.
const CHECK_DUMMY: &str = "/usr/lib/nagios/plugins/check_dummy";
/// How often the lag quantiles are read: the runtime keeps the last 4,096 lags, about a
/// quarter of a second of checks at 16,700 checks/s, so every lag is in some sample.
const LAG_SAMPLE: Duration = Duration::from_millis(250);

/// Arguments of `vigie bench checks`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChecksBenchArgs {
    /// Hosts in the estate.
    #[arg(long, default_value_t = 100_000)]
    pub hosts: usize,
    /// Service checks per host.
    #[arg(long, default_value_t = 10)]
    pub services: usize,
    /// Interval of every check, in seconds (native mode).
    #[arg(long, default_value_t = 60)]
    pub interval: u64,
    /// Hosts per client (one estate file each); also the number of listener addresses.
    #[arg(long, default_value_t = 1_000)]
    pub hosts_per_client: usize,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 90)]
    pub warmup: u64,
    /// Seconds measured (per rate with `--plugins`; the run with `--fork-ceiling` and
    /// `--listen-only`).
    #[arg(long, default_value_t = 180)]
    pub seconds: u64,
    /// Plugin checks (`check_dummy 0 ok`) at increasing rates instead of native ones.
    #[arg(long, conflicts_with_all = ["fork_ceiling", "listen_only"])]
    pub plugins: bool,
    /// Plugin checks per second offered, in turn (with `--plugins`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "500,1000,1500,2000,2500,3000"
    )]
    pub rates: Vec<u64>,
    /// Interval of the plugin checks, in seconds (with `--plugins`).
    #[arg(long, default_value_t = 10)]
    pub plugin_interval: u64,
    /// Measure the machine's fork/exec/wait rate of check_dummy.
    #[arg(long, conflicts_with = "listen_only")]
    pub fork_ceiling: bool,
    /// Threads spawning check_dummy (with `--fork-ceiling`).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Only run the listeners (and print their port) for `--seconds`.
    #[arg(long)]
    pub listen_only: bool,
    /// Port of the listeners (0: the first free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Do not keep the results' perfdata as time series (kept by default, as `vigie serve`).
    #[arg(long)]
    pub no_perfdata: bool,
}

pub async fn run(args: ChecksBenchArgs) -> Result<()> {
    ensure!(
        args.hosts > 0 && args.services > 0 && args.hosts_per_client > 0,
        "--hosts, --services and --hosts-per-client must be positive"
    );
    ensure!(
        args.hosts_per_client <= 254 * 256 * 254,
        "--hosts-per-client is at most {} (the listener addresses)",
        254 * 256 * 254
    );
    if args.fork_ceiling {
        return tokio::task::spawn_blocking(move || fork_ceiling(args.workers, args.seconds))
            .await
            .context("the fork ceiling panicked")?;
    }
    if args.plugins {
        return plugins(&args).await;
    }
    let listeners = start_listeners(args.hosts_per_client.min(args.hosts), args.port)?;
    if args.listen_only {
        println!(
            "listening on port {} of {} addresses (127.1.0.1 …) for {} s",
            listeners.port,
            args.hosts_per_client.min(args.hosts),
            args.seconds
        );
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        return Ok(());
    }
    native(&args, &listeners).await
}

/// The listener address of host number `index` in its client: spread over 127.0.0.0/8,
/// the second octet turning fastest. The peer script computes the same.
pub fn listener_address(index: usize) -> Ipv4Addr {
    let a = 1 + index % 254;
    let b = (index / 254) % 256;
    let c = 1 + (index / (254 * 256)) % 254;
    Ipv4Addr::new(127, a as u8, b as u8, c as u8)
}

struct Listeners {
    port: u16,
    /// The listeners' thread, to read its CPU time in /proc/self/task.
    tid: u32,
}

/// Binds one listener per address on one port and accepts (then closes) every connection on
/// a thread of its own; returns once every socket is bound.
fn start_listeners(addresses: usize, port: u16) -> Result<Listeners> {
    let (ready, bound) = std::sync::mpsc::channel::<Result<(u16, u32)>>();
    std::thread::Builder::new()
        .name("bench-listen".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready.send(Err(error.into()));
                    return;
                }
            };
            runtime.block_on(async move {
                let tid = std::fs::read_link("/proc/thread-self")
                    .ok()
                    .and_then(|path| path.file_name()?.to_str()?.parse().ok())
                    .unwrap_or(0);
                let mut port = port;
                let mut sockets = Vec::with_capacity(addresses);
                for index in 0..addresses {
                    let address = SocketAddr::V4(SocketAddrV4::new(listener_address(index), port));
                    match TcpListener::bind(address).await {
                        Ok(socket) => {
                            if port == 0 {
                                port = socket.local_addr().map_or(0, |a| a.port());
                            }
                            sockets.push(socket);
                        }
                        Err(error) => {
                            let _ = ready.send(Err(anyhow::Error::from(error)
                                .context(format!("cannot listen on {address}"))));
                            return;
                        }
                    }
                }
                let _ = ready.send(Ok((port, tid)));
                let mut tasks = tokio::task::JoinSet::new();
                for socket in sockets {
                    tasks.spawn(async move {
                        loop {
                            if socket.accept().await.is_err() {
                                // Out of descriptors: let the probes' sockets close first.
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    });
                }
                while tasks.join_next().await.is_some() {}
            });
        })
        .context("cannot start the listeners' thread")?;
    let (port, tid) = bound
        .recv()
        .context("the listeners' thread stopped before binding")??;
    Ok(Listeners { port, tid })
}

/// What one estate's checks are.
#[derive(Clone, Copy)]
enum CheckShape {
    Tcp { port: u16 },
    Plugin,
}

/// Writes the estate: one file per client, one check rule giving every host its services.
fn write_estate(
    dir: &Path,
    hosts: usize,
    services: usize,
    hosts_per_client: usize,
    interval_s: u64,
    shape: CheckShape,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let clients = hosts.div_ceil(hosts_per_client);
    for client in 0..clients {
        let mut text = String::with_capacity(hosts_per_client * 64);
        writeln!(
            text,
            "id: bench-{client:04}\nname: Bench client {client}\ncheck_rules:\n  - match: {{}}\n    checks:"
        )?;
        for service in 0..services {
            match shape {
                CheckShape::Tcp { port } => writeln!(
                    text,
                    "      - {{ name: tcp-{service}, kind: tcp, port: {port}, interval: {interval_s}s, timeout: 10s }}"
                )?,
                CheckShape::Plugin => writeln!(
                    text,
                    "      - {{ name: dummy-{service}, kind: plugin, command: {CHECK_DUMMY}, args: [\"0\", \"ok\"], interval: {interval_s}s, timeout: 10s }}"
                )?,
            }
        }
        text.push_str("assets:\n");
        let first = client * hosts_per_client;
        for index in 0..hosts_per_client.min(hosts - first) {
            writeln!(
                text,
                "  - {{ id: h{:07}, kind: host, addresses: [{}] }}",
                first + index,
                listener_address(index)
            )?;
        }
        let path = dir.join(format!("bench-{client:04}.yaml"));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// CPU time of this process (its own, and that of its waited-for children), of one of its
/// threads, and of the whole machine (busy, total), all in clock ticks.
#[derive(Clone, Copy, Default)]
struct CpuTicks {
    process: u64,
    children: u64,
    thread: u64,
    machine_busy: u64,
    machine_total: u64,
}

fn cpu_ticks(tid: Option<u32>) -> CpuTicks {
    // Fields after the command name (which may hold spaces): utime is the 12th, cutime the
    // 14th (fields 14 and 16 of proc(5)).
    let fields = |path: &str| -> Vec<u64> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let rest = text.rsplit_once(')').map_or("", |(_, rest)| rest);
        rest.split_whitespace()
            .map(|field| field.parse().unwrap_or(0))
            .collect()
    };
    let own = fields("/proc/self/stat");
    let at = |values: &[u64], index: usize| values.get(index).copied().unwrap_or(0);
    let thread = tid.map_or(0, |tid| {
        let values = fields(&format!("/proc/self/task/{tid}/stat"));
        at(&values, 11) + at(&values, 12)
    });
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let machine: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let idle = at(&machine, 3) + at(&machine, 4);
    let total: u64 = machine.iter().take(8).sum();
    CpuTicks {
        process: at(&own, 11) + at(&own, 12),
        children: at(&own, 13) + at(&own, 14),
        thread,
        machine_busy: total.saturating_sub(idle),
        machine_total: total,
    }
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system; it has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// What a measured window saw.
struct Window {
    seconds: f64,
    checks: u64,
    per_second: Vec<u64>,
    /// The runtime's p50 and p99 (ms), read every `LAG_SAMPLE`.
    lag_p50: Vec<i64>,
    lag_p99: Vec<i64>,
    cpu: (CpuTicks, CpuTicks),
    /// Perfdata points written as series, and dropped because their writer was behind.
    perfdata_written: u64,
    perfdata_dropped: u64,
}

impl Window {
    fn rate(&self) -> f64 {
        self.checks as f64 / self.seconds
    }

    fn lag_summary(&self) -> (i64, i64, i64) {
        let mut p50 = self.lag_p50.clone();
        let mut p99 = self.lag_p99.clone();
        p50.sort_unstable();
        p99.sort_unstable();
        (
            percentile(&p50, 0.5),
            percentile(&p99, 0.5),
            p99.last().copied().unwrap_or(0),
        )
    }

    fn cpu_ms_per_check(&self, ticks: impl Fn(&CpuTicks) -> u64) -> f64 {
        let spent = ticks(&self.cpu.1).saturating_sub(ticks(&self.cpu.0));
        spent as f64 / ticks_per_second() * 1000.0 / self.checks.max(1) as f64
    }

    fn machine_busy_percent(&self) -> f64 {
        let busy = self.cpu.1.machine_busy - self.cpu.0.machine_busy;
        let total = self.cpu.1.machine_total - self.cpu.0.machine_total;
        100.0 * busy as f64 / total.max(1) as f64
    }
}

/// Measures `seconds` of the running server: checks completed (the runtime's counter), the
/// lag quantiles it publishes, and CPU.
async fn measure(metrics: &Metrics, seconds: u64, tid: Option<u32>) -> Window {
    let start_checks = metrics.checks_run.load(Ordering::Relaxed);
    let start_written = metrics.perfdata_points_written.load(Ordering::Relaxed);
    let start_dropped = metrics.perfdata_points_dropped.load(Ordering::Relaxed);
    let start_cpu = cpu_ticks(tid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let (mut lag_p50, mut lag_p99, mut per_second) = (Vec::new(), Vec::new(), Vec::new());
    let mut last_second = (started, start_checks);
    let mut interval = tokio::time::interval(LAG_SAMPLE);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while Instant::now() < deadline {
        interval.tick().await;
        lag_p50.push(metrics.check_lag_p50_us.load(Ordering::Relaxed) / 1_000);
        lag_p99.push(metrics.check_lag_p99_us.load(Ordering::Relaxed) / 1_000);
        if last_second.0.elapsed() >= Duration::from_secs(1) {
            let now = metrics.checks_run.load(Ordering::Relaxed);
            per_second.push(now - last_second.1);
            last_second = (Instant::now(), now);
        }
    }
    let checks = metrics.checks_run.load(Ordering::Relaxed) - start_checks;
    Window {
        seconds: started.elapsed().as_secs_f64(),
        checks,
        per_second,
        lag_p50,
        lag_p99,
        cpu: (start_cpu, cpu_ticks(tid)),
        perfdata_written: metrics.perfdata_points_written.load(Ordering::Relaxed) - start_written,
        perfdata_dropped: metrics.perfdata_points_dropped.load(Ordering::Relaxed) - start_dropped,
    }
}

/// The real server on the bench's estate, SQLite in `dir`.
async fn start_server(dir: &Path, perfdata: bool) -> Result<Server> {
    let perfdata = PerfdataConfig {
        enabled: perfdata,
        ..PerfdataConfig::default()
    };
    start_with_perfdata(
        serve_options(dir),
        DetectionOptions::default(),
        DeliveryConfig::default(),
        perfdata,
    )
    .await
}

fn serve_options(dir: &Path) -> ServeOptions {
    ServeOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.join("data"),
        database: None,
        estate_dir: dir.join("estate"),
        alert_rules: None,
        syslog_udp: None,
        syslog_tcp: None,
        max_queued_events: crate::pipeline::DEFAULT_MAX_QUEUED_EVENTS,
        sigma_rules: Vec::new(),
    }
}

/// Waits until the supervision task has scheduled `expected` checks.
async fn wait_scheduled(metrics: &Metrics, expected: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(900);
    while metrics.checks_scheduled.load(Ordering::Relaxed) < expected as i64 {
        ensure!(
            Instant::now() < deadline,
            "the supervision task scheduled {} checks of {expected} in 15 minutes",
            metrics.checks_scheduled.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn temp_dir(mode: &str) -> PathBuf {
    std::env::temp_dir().join(format!("vigie-bench-{mode}-{}", std::process::id()))
}

async fn native(args: &ChecksBenchArgs, listeners: &Listeners) -> Result<()> {
    let checks = args.hosts * args.services;
    let dir = temp_dir("checks");
    let _ = std::fs::remove_dir_all(&dir);
    let written = Instant::now();
    write_estate(
        &dir.join("estate"),
        args.hosts,
        args.services,
        args.hosts_per_client,
        args.interval,
        CheckShape::Tcp {
            port: listeners.port,
        },
    )?;
    let written = written.elapsed();
    let (rss_before, _) = super::memory_kib();
    let started = Instant::now();
    let server = start_server(&dir, !args.no_perfdata).await?;
    let metrics = server.state.metrics.clone();
    wait_scheduled(&metrics, checks).await?;
    let loaded = started.elapsed();
    let (rss_loaded, _) = super::memory_kib();
    println!(
        "vigie bench checks: {} hosts × {} TCP checks = {checks} checks every {} s ({:.0} checks/s offered), {} clients, listeners on port {} of {} addresses in 127.0.0.0/8, store sqlite {}, perfdata {}",
        args.hosts,
        args.services,
        args.interval,
        checks as f64 / args.interval as f64,
        args.hosts.div_ceil(args.hosts_per_client),
        listeners.port,
        args.hosts_per_client.min(args.hosts),
        dir.join("data/vigie.db").display(),
        if args.no_perfdata { "off" } else { "kept" }
    );
    println!(
        "  estate written in {:.1} s; server started and every check scheduled in {:.1} s",
        written.as_secs_f64(),
        loaded.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let (rss_warm, _) = super::memory_kib();
    let window = measure(&metrics, args.seconds, Some(listeners.tid)).await;
    let (rss_end, peak) = super::memory_kib();
    let end_ms = crate::clock::now_ms();

    // The state writes kept up when every check's stored state holds a result from its last
    // interval (and a little: the round in flight at the end).
    let records = server.state.store.load_checks().await?;
    let since = end_ms - args.interval as i64 * 1_000 - 5_000;
    let fresh = records
        .iter()
        .filter(|record| record.status.last_check_ms.is_some_and(|at| at >= since))
        .count();
    let mut states: std::collections::BTreeMap<&str, usize> = Default::default();
    for record in &records {
        *states.entry(record.status.state.as_str()).or_default() += 1;
    }
    let db_size = std::fs::metadata(dir.join("data/vigie.db")).map_or(0, |m| m.len());
    server.shutdown().await?;
    let _ = std::fs::remove_dir_all(&dir);

    let (p50, p99_median, p99_max) = window.lag_summary();
    let offered = checks as f64 / args.interval as f64;
    println!(
        "  measured {:.0} s after {} s of warm-up: {} checks completed, {:.0} checks/s ({:.1} % of the rate offered)",
        window.seconds,
        args.warmup,
        window.checks,
        window.rate(),
        100.0 * window.rate() / offered
    );
    println!(
        "  per second: {}",
        window
            .per_second
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  schedule lag (start − due), the runtime's quantiles over its last 4,096 checks read every {} ms: p50 {p50} ms (median), p99 {p99_median} ms (median), {p99_max} ms (max)",
        LAG_SAMPLE.as_millis()
    );
    let total = window.cpu_ms_per_check(|c| c.process);
    let listening = window.cpu_ms_per_check(|c| c.thread);
    println!(
        "  CPU per check: {:.1} µs in the process, of which {:.1} µs in the bench's listeners (Vigie alone: {:.1} µs); machine busy {:.0} % of {} CPUs",
        total * 1000.0,
        listening * 1000.0,
        (total - listening) * 1000.0,
        window.machine_busy_percent(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "  RSS: {} MiB before the estate, {} MiB once scheduled, {} MiB after warm-up, {} MiB at the end (peak {} MiB): {:.0} bytes per check",
        rss_before / 1024,
        rss_loaded / 1024,
        rss_warm / 1024,
        rss_end / 1024,
        peak / 1024,
        (rss_end.saturating_sub(rss_before) * 1024) as f64 / checks as f64
    );
    println!(
        "  perfdata: {} points/s written as series, {} points/s dropped (their writer behind)",
        (window.perfdata_written as f64 / window.seconds).round(),
        (window.perfdata_dropped as f64 / window.seconds).round(),
    );
    println!(
        "  store: {} checks stored ({} MiB database), {fresh} with a result from the last {} s (a result that changes nothing but output and times is written by the routine sweep, ~{} s for every check at its budget); states: {}",
        records.len(),
        db_size / (1024 * 1024),
        args.interval + 5,
        checks / crate::supervision::ROUTINE_ROWS_PER_SECOND,
        states
            .iter()
            .map(|(state, n)| format!("{state} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Plugin checks at each rate in turn, a fresh server for each.
async fn plugins(args: &ChecksBenchArgs) -> Result<()> {
    ensure!(
        Path::new(CHECK_DUMMY).is_file(),
        "{CHECK_DUMMY} is missing: apt-get install -y monitoring-plugins-basic"
    );
    ensure!(
        args.plugin_interval > 0,
        "--plugin-interval must be positive"
    );
    println!(
        "vigie bench checks --plugins: {CHECK_DUMMY} 0 ok, every {} s, {} s of warm-up and {} s measured per rate",
        args.plugin_interval, args.warmup, args.seconds
    );
    let mut sustained: Option<f64> = None;
    for &rate in &args.rates {
        let checks = (rate * args.plugin_interval) as usize;
        let hosts = checks.div_ceil(args.services);
        let dir = temp_dir(&format!("plugins-{rate}"));
        let _ = std::fs::remove_dir_all(&dir);
        write_estate(
            &dir.join("estate"),
            hosts,
            args.services,
            args.hosts_per_client,
            args.plugin_interval,
            CheckShape::Plugin,
        )?;
        let server = start_server(&dir, !args.no_perfdata).await?;
        let metrics = server.state.metrics.clone();
        wait_scheduled(&metrics, hosts * args.services).await?;
        tokio::time::sleep(Duration::from_secs(args.warmup)).await;
        let window = measure(&metrics, args.seconds, None).await;
        server.shutdown().await?;
        let _ = std::fs::remove_dir_all(&dir);
        let offered = (hosts * args.services) as f64 / args.plugin_interval as f64;
        let (p50, p99_median, p99_max) = window.lag_summary();
        let kept_up = window.rate() >= 0.97 * offered && p99_max < 1_000;
        println!(
            "  offered {offered:.0}/s: {:.0} checks/s, lag p50 {p50} ms, p99 {p99_median} ms (max {p99_max} ms), CPU per check {:.2} ms in Vigie + {:.2} ms in the plugins, machine busy {:.0} %: {}",
            window.rate(),
            window.cpu_ms_per_check(|c| c.process),
            window.cpu_ms_per_check(|c| c.children),
            window.machine_busy_percent(),
            if kept_up {
                "sustained"
            } else {
                "NOT sustained"
            }
        );
        if kept_up {
            sustained = Some(sustained.map_or(window.rate(), |best| best.max(window.rate())));
        } else {
            break;
        }
    }
    match sustained {
        Some(rate) => println!("  highest rate sustained: {rate:.0} plugin checks/s"),
        None => println!("  no rate sustained"),
    }
    Ok(())
}

/// Spawns `check_dummy 0 ok` and waits for it, as fast as `workers` threads can.
fn fork_ceiling(workers: usize, seconds: u64) -> Result<()> {
    ensure!(
        Path::new(CHECK_DUMMY).is_file(),
        "{CHECK_DUMMY} is missing: apt-get install -y monitoring-plugins-basic"
    );
    ensure!(
        workers > 0 && seconds > 0,
        "--workers and --seconds must be positive"
    );
    let done = Arc::new(AtomicU64::new(0));
    let start_cpu = cpu_ticks(None);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || -> Result<()> {
                while Instant::now() < deadline {
                    let output = std::process::Command::new(CHECK_DUMMY)
                        .args(["0", "ok"])
                        .output()
                        .context("cannot run check_dummy")?;
                    if !output.status.success() {
                        bail!("check_dummy answered {}", output.status);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("a spawning thread panicked"))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let end_cpu = cpu_ticks(None);
    let done = done.load(Ordering::Relaxed);
    let ms = |ticks: u64| ticks as f64 / ticks_per_second() * 1000.0 / done.max(1) as f64;
    let busy = end_cpu.machine_busy - start_cpu.machine_busy;
    let total = end_cpu.machine_total - start_cpu.machine_total;
    println!(
        "vigie bench checks --fork-ceiling: {workers} threads spawning {CHECK_DUMMY} 0 ok and waiting for it, {elapsed:.0} s: {done} runs, {:.0} runs/s; CPU per run {:.2} ms in the spawner + {:.2} ms in the child; machine busy {:.0} %",
        done as f64 / elapsed,
        ms(end_cpu.process - start_cpu.process),
        ms(end_cpu.children - start_cpu.children),
        100.0 * busy as f64 / total.max(1) as f64
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_addresses_are_distinct_and_spread_over_the_loopback_block() {
        let addresses: std::collections::HashSet<Ipv4Addr> =
            (0..100_000).map(listener_address).collect();
        assert_eq!(addresses.len(), 100_000);
        assert!(
            addresses
                .iter()
                .all(|a| a.is_loopback() && a.octets()[3] != 0)
        );
        assert_eq!(listener_address(0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(listener_address(254), Ipv4Addr::new(127, 1, 1, 1));
    }
}

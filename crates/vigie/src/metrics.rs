//! Counters, gauges and latency histograms for `/metrics`, in the Prometheus text format.
//! Plain atomics: recording is a relaxed add on the hot path, rendering reads them all.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Observations so far and their mean.
    pub fn summary(&self) -> (u64, Duration) {
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed);
        (
            count,
            Duration::from_micros(sum.checked_div(count).unwrap_or(0)),
        )
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

#[derive(Default)]
pub struct StoreMetrics {
    pub commit_latency: Histogram,
    pub commits: AtomicU64,
    pub events_written: AtomicU64,
}

impl StoreMetrics {
    pub fn record_commit(&self, elapsed: Duration, events: usize) {
        self.commit_latency.observe(elapsed);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.events_written
            .fetch_add(events as u64, Ordering::Relaxed);
    }
}

/// Process-wide pipeline and API counters.
#[derive(Default)]
pub struct Metrics {
    pub events_http: AtomicU64,
    pub events_syslog: AtomicU64,
    pub events_unparsed: AtomicU64,
    pub batches_rejected: AtomicU64,
    pub ingest_overloaded: AtomicU64,
    pub alerts_signalled: AtomicU64,
    /// Events accepted by a source but not yet committed.
    pub queue_events: AtomicI64,
    pub open_incidents: AtomicI64,
    pub live_alerts: AtomicI64,
    pub stream_subscribers: AtomicI64,
    pub correlation_groups: AtomicI64,
    pub correlation_evicted: AtomicU64,
    /// Sigma rules (correlations included) in use, and rejected, as of the last load.
    pub sigma_rules_loaded: AtomicI64,
    pub sigma_rules_rejected: AtomicI64,
    pub ingest_latency: Histogram,
    /// Time the single writer spends applying a group to the incident book and the responder,
    /// apart (`apply_tick_latency`) when the group held the one-second tick.
    pub apply_latency: Histogram,
    pub apply_tick_latency: Histogram,
    /// Supervision: checks scheduled, running now, left out of the estate as unreadable.
    pub checks_scheduled: AtomicI64,
    pub checks_running: AtomicI64,
    pub checks_rejected: AtomicI64,
    pub checks_run: AtomicU64,
    /// Perfdata points written as time series, and dropped because their writer was behind.
    pub perfdata_points_written: AtomicU64,
    pub perfdata_points_dropped: AtomicU64,
    /// Hard problems kept from paging because their host or a parent is down.
    pub checks_suppressed: AtomicU64,
    /// Schedule lag (start − due) over the last results, in microseconds.
    pub check_lag_p50_us: AtomicI64,
    pub check_lag_p99_us: AtomicI64,
}

fn counter(out: &mut String, name: &str, help: &str, labels: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name}{labels} {value}"
    );
}

/// SQLite's own count of the memory it has allocated and not freed, in bytes.
fn sqlite_memory_used() -> i64 {
    // SAFETY: `sqlite3_memory_used` reads a counter; it takes no argument and is thread-safe.
    unsafe { libsqlite3_sys::sqlite3_memory_used() }
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

impl Metrics {
    pub fn render(&self, store: &StoreMetrics) -> String {
        let mut out = String::with_capacity(4096);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP vigie_events_ingested_total Events accepted, by source.\n# TYPE vigie_events_ingested_total counter\n\
             vigie_events_ingested_total{{source=\"http\"}} {}\nvigie_events_ingested_total{{source=\"syslog\"}} {}",
            load(&self.events_http),
            load(&self.events_syslog)
        );
        counter(
            &mut out,
            "vigie_events_unparsed_total",
            "Syslog lines kept raw because they did not parse.",
            "",
            load(&self.events_unparsed),
        );
        counter(
            &mut out,
            "vigie_ingest_batches_rejected_total",
            "Ingest requests rejected as malformed.",
            "",
            load(&self.batches_rejected),
        );
        counter(
            &mut out,
            "vigie_ingest_overloaded_total",
            "Ingest requests refused with 503 because the queue was full.",
            "",
            load(&self.ingest_overloaded),
        );
        counter(
            &mut out,
            "vigie_alert_signals_total",
            "Rule matches turned into alert signals.",
            "",
            load(&self.alerts_signalled),
        );
        counter(
            &mut out,
            "vigie_store_commits_total",
            "Store transactions committed.",
            "",
            load(&store.commits),
        );
        counter(
            &mut out,
            "vigie_store_events_written_total",
            "Events written to the store.",
            "",
            load(&store.events_written),
        );
        gauge(
            &mut out,
            "vigie_ingest_queue_events",
            "Events accepted by a source and not yet committed.",
            self.queue_events.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "vigie_open_incidents",
            "Incidents not closed.",
            self.open_incidents.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "vigie_live_alerts",
            "Alerts of incidents not closed.",
            self.live_alerts.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "vigie_sqlite_memory_bytes",
            "Memory SQLite holds (page caches, statements, schema), over every connection.",
            sqlite_memory_used(),
        );
        gauge(
            &mut out,
            "vigie_stream_subscribers",
            "Live-stream connections.",
            self.stream_subscribers.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "vigie_correlation_groups",
            "Live group keys of the Sigma correlation rules.",
            self.correlation_groups.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "vigie_correlation_evicted_total",
            "Correlation groups evicted, stalest first, at the state cap.",
            "",
            load(&self.correlation_evicted),
        );
        gauge(
            &mut out,
            "vigie_sigma_rules_loaded",
            "Sigma rules in use, correlation rules included (set at start and on reload).",
            self.sigma_rules_loaded.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "vigie_sigma_rules_rejected",
            "Sigma rules the last load rejected (each logged with its reason).",
            self.sigma_rules_rejected.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "vigie_checks_scheduled",
            "Checks the supervision runtime schedules.",
            self.checks_scheduled.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "vigie_checks_running",
            "Checks running now (probes and plugin processes).",
            self.checks_running.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "vigie_checks_rejected",
            "Checks of the estate left out because they do not read (each logged with its file and line).",
            self.checks_rejected.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "vigie_checks_run_total",
            "Check results processed.",
            "",
            load(&self.checks_run),
        );
        counter(
            &mut out,
            "vigie_perfdata_points_written_total",
            "Perfdata points written as time series.",
            "",
            load(&self.perfdata_points_written),
        );
        counter(
            &mut out,
            "vigie_perfdata_points_dropped_total",
            "Perfdata points dropped because their writer was behind (the check results themselves are kept).",
            "",
            load(&self.perfdata_points_dropped),
        );
        counter(
            &mut out,
            "vigie_check_problems_suppressed_total",
            "Hard problems not paged because their host or a parent host is down or unreachable.",
            "",
            load(&self.checks_suppressed),
        );
        let lag = |us: &AtomicI64| us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "# HELP vigie_check_lag_seconds Schedule lag of recent checks (start minus due time), by quantile.\n\
             # TYPE vigie_check_lag_seconds gauge\n\
             vigie_check_lag_seconds{{quantile=\"0.5\"}} {}\n\
             vigie_check_lag_seconds{{quantile=\"0.99\"}} {}",
            lag(&self.check_lag_p50_us),
            lag(&self.check_lag_p99_us)
        );
        store.commit_latency.render(
            &mut out,
            "vigie_store_commit_seconds",
            "Latency of a store batch commit.",
        );
        self.ingest_latency.render(
            &mut out,
            "vigie_ingest_request_seconds",
            "Latency of an ingest request, from body read to durable.",
        );
        self.apply_latency.render(
            &mut out,
            "vigie_pipeline_apply_seconds",
            "Time the writer took to apply a group without the tick (book, responder).",
        );
        self.apply_tick_latency.render(
            &mut out,
            "vigie_pipeline_apply_tick_seconds",
            "Time the writer took to apply a group that held the one-second tick.",
        );
        out
    }
}

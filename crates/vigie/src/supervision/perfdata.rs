//! Performance data of check results into the store as time series, off the supervision
//! task's path: the task parses each result's perfdata into points (`Recorder::record`) and
//! hands a round's points to the writer task (`Recorder::flush`, never waiting); the writer
//! inserts what has queued in one transaction; the maintenance task, every 10 minutes, builds
//! the roll-ups of completed buckets and deletes what is older than its retention, a chunk
//! of series per transaction.
//!
//! Points are handed over in blocks (`FLUSH_POINTS`, or what gathered in `FLUSH_EVERY`, or
//! whatever is pending when the supervision task goes idle), so that the queue's bound is in
//! points, not in rounds of one result each.
//!
//! Invariants: the supervision task never waits for perfdata — a full queue drops the block's
//! points, counts them (`vigie_perfdata_points_dropped_total`) and says so in the log at most
//! every `DROP_LOG_EVERY`; memory is bounded by the queue; a point that arrives for a
//! bucket already rolled up (a passive result sent late) has that bucket rebuilt at the next
//! maintenance.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::{mpsc, oneshot};
use vigie_core::check::series::{FIVE_MINUTES_MS, HOUR_MS, Resolution, Retention, bucket_start};
use vigie_core::check::{CheckId, parse_perfdata};

use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::perfdata::{PerfdataPoint, SeriesIds};

/// Whether perfdata is kept, and how long each resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerfdataConfig {
    pub enabled: bool,
    pub retention: Retention,
}

impl Default for PerfdataConfig {
    fn default() -> Self {
        PerfdataConfig {
            enabled: true,
            retention: Retention::default(),
        }
    }
}

/// Blocks of points queued for the writer, at most; beyond it a block's points are dropped.
/// 16 blocks are ~65,000 points (~20 MB): seconds of the writer's pace on a million checks,
/// a minute and more on smaller estates. (64 held ~90 MB whenever the writer was behind.)
const QUEUED_BLOCKS: usize = 16;
/// A block is handed over once it holds this many points...
const FLUSH_POINTS: usize = 4_096;
/// ... or once this long passed since the last one.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Dropped points are logged at most this often, with their count.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);
/// The writer inserts at most this many points per transaction.
const POINTS_PER_TRANSACTION: usize = 50_000;
/// How often the maintenance task runs.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(600);
/// A bucket is rolled up once this long past its end: results in flight have landed.
const ROLLUP_GRACE_MS: i64 = 60_000;
/// Series per maintenance transaction.
const SERIES_PER_CHUNK: i64 = 500;
/// Roll-ups are built over at most this much time per transaction.
const ROLLUP_SPAN_MS: i64 = 6 * HOUR_MS;

/// The supervision task's side: parses results, queues points.
pub(super) struct Recorder {
    queue: Option<mpsc::Sender<Vec<PerfdataPoint>>>,
    pending: Vec<PerfdataPoint>,
    flushed: Instant,
    metrics: Arc<Metrics>,
    /// Points dropped since the last warning, and when it was.
    dropped: u64,
    warned: Option<Instant>,
}

impl Recorder {
    /// Starts the writer and the maintenance tasks (when enabled); they stop when the
    /// recorder is dropped.
    pub(super) fn start(
        store: Arc<Store>,
        config: PerfdataConfig,
        metrics: Arc<Metrics>,
    ) -> Recorder {
        let mut recorder = Recorder {
            queue: None,
            pending: Vec::new(),
            flushed: Instant::now(),
            metrics: metrics.clone(),
            dropped: 0,
            warned: None,
        };
        if !config.enabled {
            return recorder;
        }
        let (queue, inbox) = mpsc::channel(QUEUED_BLOCKS);
        let (stop, stopped) = oneshot::channel::<()>();
        let shared = Arc::new(Progress::default());
        tokio::spawn(write_points(
            store.clone(),
            inbox,
            shared.clone(),
            stop,
            metrics,
        ));
        tokio::spawn(maintain(store, config.retention, shared, stopped));
        recorder.queue = Some(queue);
        recorder
    }

    /// The points of one result's perfdata text; malformed items and `U` values are left out.
    pub(super) fn record(&mut self, id: &CheckId, perfdata: &str, time_ms: i64) {
        if self.queue.is_none() || perfdata.trim().is_empty() {
            return;
        }
        let check_id = id.to_string();
        for item in parse_perfdata(perfdata).into_iter().flatten() {
            let Some(value) = item.value.filter(|value| value.is_finite()) else {
                continue;
            };
            self.pending.push(PerfdataPoint {
                check_id: check_id.clone(),
                client: id.client().to_string(),
                label: item.label,
                unit: item.uom,
                time_ms,
                value,
                warn: item.warn.map(|range| range.to_string()),
                crit: item.crit.map(|range| range.to_string()),
                min: item.min.filter(|min| min.is_finite()),
                max: item.max.filter(|max| max.is_finite()),
            });
        }
    }

    /// Hands the pending points to the writer, without waiting, when a block is full or due.
    pub(super) fn flush(&mut self) {
        if self.pending.len() >= FLUSH_POINTS || self.flushed.elapsed() >= FLUSH_EVERY {
            self.flush_now();
        }
    }

    /// Hands whatever is pending to the writer without waiting (the supervision task is
    /// going idle).
    pub(super) fn flush_now(&mut self) {
        let Some(queue) = &self.queue else { return };
        self.flushed = Instant::now();
        if self.pending.is_empty() {
            return;
        }
        let points = std::mem::take(&mut self.pending);
        if let Err(error) = queue.try_send(points) {
            let (mpsc::error::TrySendError::Full(points)
            | mpsc::error::TrySendError::Closed(points)) = &error;
            let dropped = points.len() as u64;
            self.metrics
                .perfdata_points_dropped
                .fetch_add(dropped, Ordering::Relaxed);
            self.dropped += dropped;
            if self.warned.is_none_or(|at| at.elapsed() >= DROP_LOG_EVERY) {
                tracing::warn!(
                    dropped = self.dropped,
                    "perfdata points dropped: the perfdata writer is behind"
                );
                self.dropped = 0;
                self.warned = Some(Instant::now());
            }
        }
    }
}

/// What the writer and the maintenance task share: where the 5-minute roll-ups stand, and
/// the earliest point written behind it since the last maintenance.
struct Progress {
    rolled_until_ms: AtomicI64,
    late_from_ms: AtomicI64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            rolled_until_ms: AtomicI64::new(i64::MIN),
            late_from_ms: AtomicI64::new(i64::MAX),
        }
    }
}

async fn write_points(
    store: Arc<Store>,
    mut inbox: mpsc::Receiver<Vec<PerfdataPoint>>,
    progress: Arc<Progress>,
    _stop: oneshot::Sender<()>,
    metrics: Arc<Metrics>,
) {
    if let Ok(Some(until)) = store.perfdata_rolled_until(FIVE_MINUTES_MS).await {
        progress.rolled_until_ms.fetch_max(until, Ordering::Relaxed);
    }
    let mut ids = SeriesIds::default();
    while let Some(mut points) = inbox.recv().await {
        while points.len() < POINTS_PER_TRANSACTION {
            match inbox.try_recv() {
                Ok(more) => points.extend(more),
                Err(_) => break,
            }
        }
        let rolled = progress.rolled_until_ms.load(Ordering::Relaxed);
        if let Some(earliest) = points.iter().map(|p| p.time_ms).min()
            && earliest < rolled
        {
            progress.late_from_ms.fetch_min(earliest, Ordering::Relaxed);
        }
        match store.put_perfdata(&mut ids, &points).await {
            Ok(()) => {
                metrics
                    .perfdata_points_written
                    .fetch_add(points.len() as u64, Ordering::Relaxed);
            }
            Err(error) => tracing::error!(
                error = %format!("{error:#}"),
                dropped = points.len(),
                "perfdata points not written"
            ),
        }
    }
}

async fn maintain(
    store: Arc<Store>,
    retention: Retention,
    progress: Arc<Progress>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut every = tokio::time::interval(MAINTENANCE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = &mut stopped => return,
        }
        let late = progress.late_from_ms.swap(i64::MAX, Ordering::Relaxed);
        let now = crate::clock::now_ms();
        let mut stop = || stopping(&mut stopped);
        match run_maintenance(&store, &retention, now, late, &mut stop).await {
            Ok(report) => {
                progress
                    .rolled_until_ms
                    .fetch_max(report.rolled_until_ms, Ordering::Relaxed);
                tracing::debug!(
                    rollups = report.rollups,
                    deleted = report.deleted,
                    "perfdata maintained"
                );
            }
            Err(error) => {
                // Whatever was late stays to be rebuilt next time.
                progress.late_from_ms.fetch_min(late, Ordering::Relaxed);
                tracing::error!(error = %format!("{error:#}"), "perfdata maintenance failed; retrying at the next run");
            }
        }
    }
}

/// What one maintenance run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub rollups: usize,
    pub deleted: u64,
    /// Every 5-minute bucket before this is built.
    pub rolled_until_ms: i64,
}

/// One maintenance run at `now_ms`: the 5-minute roll-ups of the buckets completed since the
/// last run (and of those a late point, at `late_from_ms`, landed in; `i64::MAX` for none),
/// then the hourly ones of the completed hours, then retention. Each chunk of series is its
/// own transaction.
pub async fn maintain_perfdata(
    store: &Store,
    retention: &Retention,
    now_ms: i64,
    late_from_ms: i64,
) -> Result<MaintenanceReport> {
    run_maintenance(store, retention, now_ms, late_from_ms, &mut || false).await
}

/// `maintain_perfdata`, stopping between chunks when `stop` says so (the server stops).
async fn run_maintenance(
    store: &Store,
    retention: &Retention,
    now_ms: i64,
    late_from_ms: i64,
    stop: &mut (dyn FnMut() -> bool + Send),
) -> Result<MaintenanceReport> {
    let mut report = MaintenanceReport::default();
    let max_series = store.perfdata_max_series_id().await?;
    let oldest_raw = bucket_start(now_ms.saturating_sub(retention.raw_ms), FIVE_MINUTES_MS);
    // 5-minute roll-ups from the raw points.
    let done = store.perfdata_rolled_until(FIVE_MINUTES_MS).await?;
    let complete = bucket_start(now_ms.saturating_sub(ROLLUP_GRACE_MS), FIVE_MINUTES_MS);
    let from = done
        .unwrap_or(oldest_raw)
        .min(bucket_start(late_from_ms, FIVE_MINUTES_MS))
        .max(oldest_raw);
    let rebuilt_from = from;
    report.rollups += roll_up(
        store,
        Resolution::FiveMinutes,
        max_series,
        from,
        complete,
        stop,
    )
    .await?;
    let rolled_five = complete.max(done.unwrap_or(i64::MIN));
    report.rolled_until_ms = rolled_five;
    // Hourly roll-ups from the 5-minute ones, of the hours whose 5-minute buckets are built.
    let done_hours = store.perfdata_rolled_until(HOUR_MS).await?;
    let hours_complete = bucket_start(rolled_five, HOUR_MS);
    let hours_from = done_hours
        .unwrap_or(bucket_start(oldest_raw, HOUR_MS))
        .min(bucket_start(rebuilt_from, HOUR_MS));
    report.rollups += roll_up(
        store,
        Resolution::Hourly,
        max_series,
        hours_from,
        hours_complete,
        stop,
    )
    .await?;
    // Retention.
    for resolution in [Resolution::Raw, Resolution::FiveMinutes, Resolution::Hourly] {
        let before = now_ms.saturating_sub(retention.of(resolution));
        let mut after = 0;
        while after < max_series {
            if stop() {
                return Ok(report);
            }
            let up_to = after.saturating_add(SERIES_PER_CHUNK);
            report.deleted += store
                .expire_perfdata(resolution, (after, up_to), before)
                .await?;
            after = up_to;
        }
    }
    Ok(report)
}

/// Builds the roll-ups of `resolution` for the buckets in `[from_ms, to_ms)`, in spans of
/// time and chunks of series, recording the progress after each span.
async fn roll_up(
    store: &Store,
    resolution: Resolution,
    max_series: i64,
    from_ms: i64,
    to_ms: i64,
    stop: &mut (dyn FnMut() -> bool + Send),
) -> Result<usize> {
    let step_ms = resolution
        .step_ms()
        .expect("invariant: a roll-up has a step");
    let mut written = 0;
    let mut span_from = from_ms;
    while span_from < to_ms {
        let span_to = span_from.saturating_add(ROLLUP_SPAN_MS).min(to_ms);
        let mut after = 0;
        while after < max_series {
            if stop() {
                return Ok(written);
            }
            let up_to = after.saturating_add(SERIES_PER_CHUNK);
            written += store
                .rollup_perfdata(resolution, (after, up_to), span_from, span_to)
                .await?;
            after = up_to;
        }
        // Never move the mark back: a late point's rebuild redoes buckets already done.
        let done = store.perfdata_rolled_until(step_ms).await?;
        if done.is_none_or(|done| done < span_to) {
            store.set_perfdata_rolled_until(step_ms, span_to).await?;
        }
        span_from = span_to;
    }
    Ok(written)
}

fn stopping(stop: &mut oneshot::Receiver<()>) -> bool {
    !matches!(stop.try_recv(), Err(oneshot::error::TryRecvError::Empty))
}

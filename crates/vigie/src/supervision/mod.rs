//! The supervision runtime: one task that owns every check's `CheckStatus` and the
//! `Schedule`, takes the checks as they fall due, runs them with bounded concurrency, feeds the
//! results to the state machine, and turns what it says into alert signals and resolutions in
//! the incident pipeline.
//!
//! Data flow, one round:
//!
//! 1. **Estate.** When the estate's version changes (start, reload, API addition), the checks
//!    are compiled again (`compile_checks`); unchanged checks keep their status and their slot
//!    in the schedule, changed ones keep their status with the new settings, removed ones are
//!    forgotten (their open alert resolved). Checks that do not read are logged with file and
//!    line and counted in `/metrics`.
//! 2. **Dispatch.** `Schedule::due` hands out the checks due now, host checks first (parents
//!    before children); each waits for a permit — plugins (processes) and native probes
//!    (async, in process) have their own bound — and its lag (start − due) is recorded.
//! 3. **Results.** Host checks first, parents first. A check that just failed has the host
//!    checks it depends on run at once when they are UP (Icinga's on-demand parent check). A
//!    host check whose parent host is DOWN or UNREACHABLE (soft or hard: the parent may not
//!    have reached its last attempt) gets `parent_down`, so the state machine makes it
//!    UNREACHABLE, which never pages. A service whose host (or, without one, a parent host) is
//!    DOWN or UNREACHABLE does not page either: its problem is counted as suppressed and paged
//!    later if it outlives the host's outage. `NextCheckAt` goes back to the schedule (retry
//!    interval while soft).
//! 4. **Incidents.** A `Notify { Problem }` becomes an `AlertSignal` (the check, the asset, the
//!    state and the output as labels; a host names the hosts behind it, which its failure makes
//!    unreachable: "router down explains its 40 hosts"); every hard recovery resolves the
//!    check's alert, whatever the notification rules said (a resolution is never suppressed).
//!    They go to the pipeline in one `supervise` call, committed before the round goes on.
//! 5. **State.** The statuses changed by the round are handed to the state writer
//!    (`writer.rs`) after the pipeline committed the round's signals, without waiting for
//!    their write: after a crash a check may page twice (deduplicated by its fingerprint),
//!    never not at all. A result that changed only the output, perfdata and times waits for
//!    the next routine sweep (within a second on a small estate, a few minutes on a million
//!    checks: `ROUTINE_ROWS_PER_SECOND`). An operator's request and a passive result are
//!    answered once their status is written.
//!
//! Operators' acknowledgements and downtimes come in as requests on the same task, so every
//! change to a status is made by this one task, in order.

pub mod perfdata;
mod run;
mod writer;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use vigie_core::check::{
    CheckCommand, CheckEffect, CheckId, CheckKind, CheckState, CheckStatus, DowntimeKind,
    HostState, Millis, NotificationKind, ObjectState, PluginResult, Probe, RejectReason, Schedule,
};
use vigie_core::estate::{CheckDefinition, Estate, compile_checks, hosts_behind};
use vigie_core::event::Severity;
use vigie_core::incident::IncidentCommand;
use vigie_core::incident::model::AlertSignal;
use vigie_core::service::Status;

use crate::estate::EstateHandle;
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, PipelineError};
use crate::response::{CheckInDowntime, ResponseCommand};
use crate::store::{CheckRecord, Store};

pub use perfdata::PerfdataConfig;

/// Plugin processes running at once, at most.
const PLUGIN_SLOTS: usize = 64;
/// Native probes in flight at once, at most.
const NATIVE_SLOTS: usize = 4096;
/// The longest the task sleeps without looking at the estate's version.
const ESTATE_POLL: Duration = Duration::from_millis(200);
/// Lags kept for the quantiles in `/metrics`.
const LAG_WINDOW: usize = 4096;
/// A host's alert lists at most this many of the hosts behind it (and counts them all).
const HOSTS_BEHIND_LISTED: usize = 50;
/// The actor of timeline entries the supervision runtime writes.
const SUPERVISION_ACTOR: &str = "vigie";

/// How often the supervision task has the allocator's free memory handed back; the first
/// time with its first round, after a start's temporary structures are gone.
const TRIM_EVERY_MS: i64 = 20_000;

/// The dirty set's capacity kept once emptied.
const DIRTY_CAPACITY_KEPT: usize = 65_536;

/// Statuses handed to the state writer at once, at most (one transaction).
const WRITE_CHUNK: usize = 5_000;

/// The statuses whose last result changed nothing but their output, perfdata and times
/// (`routine`) are written by sweeps, at most this many a second: each sweep takes what
/// gathered since the last one and sets the next one as far as the budget says (at least
/// `ROUTINE_SWEEP_MIN_MS` away). A small estate is written within a second; 1,000,000 checks
/// at a 1-minute interval, every ~8 minutes. The state, its type, the attempt,
/// acknowledgements and downtimes are written with the round that changed them.
pub const ROUTINE_ROWS_PER_SECOND: usize = 2_000;
const ROUTINE_SWEEP_MIN_MS: i64 = 1_000;
/// A sweep's rows go to the writer at the budget's pace, at least this many at a time (or
/// what is left of the sweep), so that the store's one writer connection is left to the
/// pipeline and to perfdata between them.
const SWEEP_STEP: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum SupervisionError {
    #[error("no check {0}")]
    UnknownCheck(String),
    #[error("{0}")]
    Rejected(String),
    #[error("the store did not commit: {0}")]
    Store(String),
    #[error("supervision has stopped")]
    Stopped,
}

/// What an operator asks of a check.
#[derive(Debug, Clone)]
pub enum CheckRequest {
    Acknowledge {
        author: String,
        comment: String,
        sticky: bool,
        expires_ms: Option<i64>,
    },
    /// Fixed over `[start_ms, end_ms)`, or flexible: `duration_ms` from the first problem
    /// within that window.
    ScheduleDowntime {
        author: String,
        comment: String,
        start_ms: i64,
        end_ms: i64,
        duration_ms: Option<i64>,
        /// On a host check: the same downtime for the hosts behind it, recursively (Icinga's
        /// `child_options`).
        children: bool,
        /// On a host check: the same downtime for its services, and with `children` for
        /// theirs (Icinga's `all_services`).
        services: bool,
    },
    /// Clears the acknowledgement (Icinga's `remove-acknowledgement`).
    RemoveAcknowledgement,
    /// Removes a downtime by its id, active or not (Icinga's `remove-downtime`).
    RemoveDowntime { id: u64 },
    /// A result from outside (Icinga's process-check-result, NRDP, an external command),
    /// taken as if the check had run: for a passive check, or ahead of an active one's next
    /// run, as Icinga accepts it.
    PassiveResult {
        result: PluginResult,
        /// When the sender says the check ran; now when it does not (never in the future).
        time_ms: Option<i64>,
    },
}

struct Request {
    id: CheckId,
    request: CheckRequest,
    reply: oneshot::Sender<Result<CheckRecord, SupervisionError>>,
}

/// Talks to the supervision task.
#[derive(Clone)]
pub struct SupervisionHandle {
    requests: mpsc::Sender<Request>,
    perfdata: PerfdataConfig,
}

impl SupervisionHandle {
    /// Applies an operator's request to a check; answers with the check as stored after it.
    pub async fn request(
        &self,
        id: CheckId,
        request: CheckRequest,
    ) -> Result<CheckRecord, SupervisionError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { id, request, reply })
            .await
            .map_err(|_| SupervisionError::Stopped)?;
        answer.await.map_err(|_| SupervisionError::Stopped)?
    }

    /// Whether check results' perfdata is kept, and for how long.
    pub fn perfdata(&self) -> &PerfdataConfig {
        &self.perfdata
    }
}

/// Loads the stored check states and returns the handle, the task to spawn (the server runs
/// it until it stops) and the state writer's task, which ends once the first is dropped and
/// what it held is written (the server waits for it before closing the store).
pub async fn start(
    store: Arc<Store>,
    estate: EstateHandle,
    pipeline: Pipeline,
    metrics: Arc<Metrics>,
    perfdata: PerfdataConfig,
) -> anyhow::Result<(
    SupervisionHandle,
    impl std::future::Future<Output = ()> + Send + 'static,
    tokio::task::JoinHandle<()>,
)> {
    let mut stored = HashMap::new();
    for record in store.load_checks().await? {
        match record.id.parse::<CheckId>() {
            Ok(id) => {
                stored.insert(id, Box::new(record.status));
            }
            Err(error) => tracing::warn!(%error, "stored check with a malformed id ignored"),
        }
    }
    let (requests, inbox) = mpsc::channel(256);
    let (writer, writing) = writer::start(store.clone());
    let mut supervisor = Supervisor {
        recorder: perfdata::Recorder::start(store.clone(), perfdata, metrics.clone()),
        writer,
        estate,
        pipeline,
        metrics,
        estate_version: u64::MAX,
        current_estate: Arc::new(Estate::default()),
        checks: HashMap::new(),
        stored,
        behind: HashMap::new(),
        depth: HashMap::new(),
        dependents: HashMap::new(),
        schedule: Schedule::new(),
        plugin_backlog: VecDeque::new(),
        native_backlog: VecDeque::new(),
        running: JoinSet::new(),
        plugin_slots: Arc::new(Semaphore::new(PLUGIN_SLOTS)),
        native_slots: Arc::new(Semaphore::new(NATIVE_SLOTS)),
        lags: LagWindow::default(),
        dirty: HashSet::new(),
        timed: HashSet::new(),
        told_in_downtime: HashMap::new(),
        downtime_changes: Vec::new(),
        downtimes_told: false,
        routine: HashSet::new(),
        sweep: Vec::new(),
        next_sweep_ms: 0,
        sweep_tokens: 0.0,
        sweep_refilled_ms: crate::clock::now_ms(),
        unpaged: HashSet::new(),
        removed: Vec::new(),
        next_tick_ms: 0,
        next_trim_ms: 0,
        recurring: Vec::new(),
    };
    // The estate's checks are written before the server answers: the API lists and serves
    // every check it was started with from its first request, not after the first round.
    let mut commands = Vec::new();
    supervisor.sync_estate(crate::clock::now_ms(), &mut commands);
    // The responder learns what is in downtime before anything else of this run reaches it.
    supervisor.tell_downtimes().await;
    // A chunk at a time (`WRITE_CHUNK`), so that a first start over a large estate does not
    // hold every new row in memory at once.
    if supervisor.supervise(commands).await {
        while !supervisor.dirty.is_empty() || !supervisor.removed.is_empty() {
            let (done, written) = oneshot::channel();
            let batch = supervisor.take_changes(Some(done), false);
            if supervisor.writer.send(batch).await.is_err() {
                break;
            }
            if written.await != Ok(true) {
                tracing::warn!("the estate's checks were not written at start; retrying");
                break;
            }
        }
    }
    // That write takes a while on a first start over a large estate: the schedule starts
    // from now, so that no check starts overdue by the time it took.
    supervisor.schedule = Schedule::new();
    supervisor.schedule.apply_estate(
        supervisor.checks.values().map(|checked| {
            let definition = &checked.definition;
            (definition.id.clone(), schedule_interval(definition))
        }),
        crate::clock::now_ms(),
    );
    Ok((
        SupervisionHandle { requests, perfdata },
        supervisor.run(inbox),
        writing,
    ))
}

/// A recurring downtime of the estate, and the checks it covers.
struct Recurring {
    window: vigie_core::estate::BusinessHours,
    /// The downtimes' comment: the name, then the estate's comment.
    comment: String,
    checks: Vec<CheckId>,
    /// The start of the last occurrence given to its checks.
    started_ms: Option<i64>,
}

/// The author of the downtimes that recurring downtimes give.
const RECURRING_AUTHOR: &str = "vigie (recurring downtime)";

/// A check of the estate and its status.
struct Checked {
    definition: Arc<CheckDefinition>,
    status: CheckStatus,
}

/// Whether time alone can change a status: it has a downtime (to start or end) or an
/// acknowledgement that expires.
fn needs_tick(status: &CheckStatus) -> bool {
    !status.downtimes.is_empty()
        || status
            .acknowledgement
            .as_ref()
            .is_some_and(|ack| ack.expires_ms.is_some())
}

/// The state a check in an active downtime shows its business services: its hard state, when
/// it is a problem (a host DOWN counts CRITICAL, UNREACHABLE UNKNOWN, as its alerts do).
fn in_downtime_with_problem(status: &CheckStatus) -> Option<Status> {
    if !status.in_downtime() || status.last_hard_state.is_ok() {
        return None;
    }
    Some(Status::of_check_state(status.last_hard_state.as_str()))
}

/// A finished check, as the task that ran it hands it back.
struct Finished {
    definition: Arc<CheckDefinition>,
    result: PluginResult,
    finished_ms: i64,
}

struct Supervisor {
    /// The statuses' way to the store (`writer.rs`).
    writer: mpsc::Sender<writer::Batch>,
    estate: EstateHandle,
    pipeline: Pipeline,
    metrics: Arc<Metrics>,
    estate_version: u64,
    current_estate: Arc<Estate>,
    /// Every check of the estate, with its status. Boxed: the map keeps up to twice as many
    /// slots as entries, and a status is ~200 bytes.
    checks: HashMap<CheckId, Box<Checked>>,
    /// The statuses read from the store at start, taken up by the first `sync_estate` (what
    /// is left then belongs to checks gone from the estate).
    stored: HashMap<CheckId, Box<CheckStatus>>,
    /// For each host check, the host checks behind it.
    behind: HashMap<CheckId, Vec<CheckId>>,
    /// For each host check, how many host checks are above it: parents are handled first.
    depth: HashMap<CheckId, usize>,
    /// For each host check, the checks that depend on it directly.
    dependents: HashMap<CheckId, Vec<CheckId>>,
    schedule: Schedule,
    plugin_backlog: VecDeque<CheckId>,
    native_backlog: VecDeque<CheckId>,
    running: JoinSet<Finished>,
    plugin_slots: Arc<Semaphore>,
    native_slots: Arc<Semaphore>,
    lags: LagWindow,
    /// Statuses changed since they were last written.
    dirty: HashSet<CheckId>,
    /// The checks with a downtime or an expiring acknowledgement (`needs_tick`): the only
    /// ones the once-a-second tick looks at. Filled where those are given (a command, the
    /// estate's take-up); a check leaves it at the tick that finds it has neither.
    timed: HashSet<CheckId>,
    /// The checks in a downtime with a hard problem, as the responder was last told (its
    /// business services with `downtime: inherit` show them in downtime), and what it is to be
    /// told next (`refresh_downtime_view`).
    told_in_downtime: HashMap<CheckId, Status>,
    downtime_changes: Vec<CheckInDowntime>,
    /// Whether the responder has been told the view once (see `tell_downtimes`).
    downtimes_told: bool,
    /// Checks whose last results changed only their output, perfdata and times: written by
    /// the next sweep (`ROUTINE_ROWS_PER_SECOND`), or with a later change of theirs.
    routine: HashSet<CheckId>,
    /// The current sweep's checks, handed to the writer a chunk at a time after `dirty`.
    sweep: Vec<CheckId>,
    next_sweep_ms: i64,
    /// Sweep rows the budget allows now (a token bucket refilled at
    /// `ROUTINE_ROWS_PER_SECOND`, holding at most `WRITE_CHUNK`), and when it was refilled.
    sweep_tokens: f64,
    sweep_refilled_ms: i64,
    /// Services whose hard problem was kept quiet because their host was down: paged if it
    /// outlives the host's outage.
    unpaged: HashSet<CheckId>,
    /// Checks removed from the estate, to forget in the store.
    removed: Vec<String>,
    /// When timers (downtimes, acknowledgement expiries) are next looked at.
    next_tick_ms: i64,
    /// When the allocator's free memory is next handed back (`TRIM_EVERY_MS`).
    next_trim_ms: i64,
    /// The estate's recurring downtimes, with the checks each covers.
    recurring: Vec<Recurring>,
    /// The results' perfdata, on its way to the store as time series.
    recorder: perfdata::Recorder,
}

impl Supervisor {
    async fn run(mut self, mut inbox: mpsc::Receiver<Request>) {
        loop {
            let now = crate::clock::now_ms();
            let mut commands = Vec::new();
            self.sync_estate(now, &mut commands);
            self.tick_timers(now, &mut commands);
            self.trim_memory(now);
            let finished = self.dispatch(now);
            // New checks are written at once, so that the API lists them before they run.
            self.start_sweep(now);
            // (While the writer's queue is full, changes wait here for the next round.)
            let unwritten =
                (!self.dirty.is_empty() || !self.removed.is_empty() || self.sweep_ready(now))
                    && self.writer.capacity() > 0;
            if !finished.is_empty()
                || !commands.is_empty()
                || unwritten
                || !self.downtime_changes.is_empty()
                || !self.downtimes_told
            {
                self.process(finished, commands).await;
                continue;
            }
            // Going idle: the perfdata gathered so far goes to its writer.
            self.recorder.flush_now();
            let wait = match self.schedule.next_due_ms() {
                Some(due) => Duration::from_millis(due.saturating_sub(now).max(1) as u64),
                None => ESTATE_POLL,
            }
            .min(ESTATE_POLL);
            tokio::select! {
                Some(done) = self.running.join_next(), if !self.running.is_empty() => {
                    let mut finished = Vec::new();
                    match done {
                        Ok(done) => finished.push(done),
                        Err(error) => tracing::error!(%error, "a check task failed"),
                    }
                    while let Some(done) = self.running.try_join_next() {
                        match done {
                            Ok(done) => finished.push(done),
                            Err(error) => tracing::error!(%error, "a check task failed"),
                        }
                    }
                    self.metrics.checks_running.store(self.running.len() as i64, Ordering::Relaxed);
                    self.process(finished, Vec::new()).await;
                }
                request = inbox.recv() => match request {
                    Some(request) => self.handle_request(request).await,
                    // Every handle is gone: the server stopped.
                    None => return,
                },
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Hands the allocator's free memory back to the system now and then, off the async
    /// workers (`crate::memory::trim`).
    fn trim_memory(&mut self, now: i64) {
        if now < self.next_trim_ms {
            return;
        }
        self.next_trim_ms = now.saturating_add(TRIM_EVERY_MS);
        tokio::task::spawn_blocking(crate::memory::trim);
    }

    /// Gives each check a recurring downtime covers a fixed downtime over the occurrence
    /// under way, once per occurrence; one it already has (after a restart, say) is kept.
    fn start_recurring_downtimes(&mut self, now: i64, commands: &mut Vec<IncidentCommand>) {
        for index in 0..self.recurring.len() {
            let recurring = &mut self.recurring[index];
            let Some((start_ms, end_ms)) = recurring.window.occurrence(now) else {
                continue;
            };
            if recurring.started_ms == Some(start_ms) {
                continue;
            }
            recurring.started_ms = Some(start_ms);
            let comment = recurring.comment.clone();
            let covered = recurring.checks.clone();
            for id in covered {
                let Some(checked) = self.checks.get_mut(&id) else {
                    continue;
                };
                let status = &mut checked.status;
                let given = status.downtimes.iter().any(|downtime| {
                    downtime.author == RECURRING_AUTHOR
                        && downtime.start_ms == start_ms
                        && downtime.comment == comment
                });
                if given {
                    continue;
                }
                let definition = checked.definition.clone();
                let effects = status.apply(
                    CheckCommand::ScheduleDowntime {
                        id: status.next_downtime_id(),
                        author: RECURRING_AUTHOR.into(),
                        comment: comment.clone(),
                        start_ms,
                        end_ms,
                        kind: DowntimeKind::Fixed,
                    },
                    now,
                );
                if needs_tick(status) {
                    self.timed.insert(id.clone());
                }
                self.dirty.insert(id);
                self.take_effects(&definition, effects, now, commands);
            }
        }
    }

    /// Lets time pass for the checks with a downtime or an expiring acknowledgement, at most
    /// once a second: a downtime starts and ends, an acknowledgement expires, when it is due,
    /// not only at the check's next result.
    fn tick_timers(&mut self, now: i64, commands: &mut Vec<IncidentCommand>) {
        if now < self.next_tick_ms {
            return;
        }
        self.next_tick_ms = now.saturating_add(1_000);
        self.start_recurring_downtimes(now, commands);
        let timed: Vec<CheckId> = self.timed.iter().cloned().collect();
        for id in timed {
            let Some(checked) = self.checks.get_mut(&id) else {
                self.timed.remove(&id);
                continue;
            };
            let definition = checked.definition.clone();
            let status = &mut checked.status;
            let before = status.clone();
            let effects = status.apply(CheckCommand::Tick, now);
            if *status != before {
                self.dirty.insert(id.clone());
            }
            if !needs_tick(status) {
                self.timed.remove(&id);
            }
            self.take_effects(&definition, effects, now, commands);
        }
        self.refresh_downtime_view();
    }

    /// Compares the checks that may be in a downtime with a hard problem (those with a
    /// downtime, and those the responder was told of) with what it was told, and queues the
    /// differences for the next commit.
    fn refresh_downtime_view(&mut self) {
        let looked_at: Vec<CheckId> = self
            .timed
            .iter()
            .chain(self.told_in_downtime.keys())
            .cloned()
            .collect();
        for id in looked_at {
            let now_in = self
                .checks
                .get(&id)
                .and_then(|checked| in_downtime_with_problem(&checked.status));
            let told = self.told_in_downtime.get(&id).copied();
            if now_in == told {
                continue;
            }
            match now_in {
                Some(status) => self.told_in_downtime.insert(id.clone(), status),
                None => self.told_in_downtime.remove(&id),
            };
            self.downtime_changes.push(CheckInDowntime {
                client: id.client().to_string(),
                asset: id.asset().to_string(),
                check: id.check().to_string(),
                status: now_in,
            });
        }
    }

    /// Takes up a new version of the estate: compiles its checks, keeps what did not change.
    fn sync_estate(&mut self, now: i64, commands: &mut Vec<IncidentCommand>) {
        let (version, estate) = self.estate.current();
        if version == self.estate_version {
            return;
        }
        self.estate_version = version;
        for rejection in estate.check_rejections() {
            tracing::warn!(problem = %rejection, "check left out: it does not read");
        }
        self.metrics
            .checks_rejected
            .store(estate.check_rejections().len() as i64, Ordering::Relaxed);
        let definitions = compile_checks(&estate);
        self.behind = hosts_behind(&definitions);
        let mut checks = HashMap::with_capacity(definitions.len());
        let mut previous = std::mem::take(&mut self.checks);
        for definition in definitions {
            let id = definition.id.clone();
            let checked = match previous.remove(&id) {
                Some(mut checked) => {
                    if fit_status(&mut checked.status, &definition) {
                        self.dirty.insert(id.clone());
                    }
                    // An unchanged definition keeps its `Arc`, so that a result in flight
                    // still counts.
                    if *checked.definition != definition {
                        checked.definition = Arc::new(definition);
                    }
                    checked
                }
                None => {
                    // Read from the store (written again only if the estate changed its
                    // settings), or new.
                    let (mut status, new) = match self.stored.remove(&id) {
                        Some(status) => (*status, false),
                        None => (
                            CheckStatus::new(definition.kind, definition.config.clone()),
                            true,
                        ),
                    };
                    if fit_status(&mut status, &definition) || new {
                        self.dirty.insert(id.clone());
                    }
                    Box::new(Checked {
                        definition: Arc::new(definition),
                        status,
                    })
                }
            };
            checks.insert(id, checked);
        }
        let gone = previous
            .into_iter()
            .map(|(id, checked)| (id, checked.status))
            .chain(
                std::mem::take(&mut self.stored)
                    .into_iter()
                    .map(|(id, s)| (id, *s)),
            );
        for (id, status) in gone {
            if !status.last_hard_state.is_ok() {
                commands.push(resolve_command(&id));
            }
            self.dirty.remove(&id);
            self.routine.remove(&id);
            self.unpaged.remove(&id);
            self.removed.push(id.to_string());
        }
        self.plugin_backlog.retain(|id| checks.contains_key(id));
        self.native_backlog.retain(|id| checks.contains_key(id));
        self.schedule.apply_estate(
            checks.values().map(|checked| {
                let definition = &checked.definition;
                (definition.id.clone(), schedule_interval(definition))
            }),
            now,
        );
        self.dependents.clear();
        for checked in checks.values() {
            let definition = &checked.definition;
            for parent in definition
                .depends_on
                .iter()
                .chain(definition.check_dependencies.iter())
            {
                self.dependents
                    .entry(parent.clone())
                    .or_default()
                    .push(definition.id.clone());
            }
        }
        // Pushed one at a time: a host's ten services would keep room for sixteen.
        self.dependents.values_mut().for_each(Vec::shrink_to_fit);
        self.depth = host_depths(&checks);
        self.timed = checks
            .iter()
            .filter(|(_, checked)| needs_tick(&checked.status))
            .map(|(id, _)| id.clone())
            .collect();
        self.checks = checks;
        self.refresh_downtime_view();
        self.recurring = recurring_downtimes(&estate, &self.checks);
        self.current_estate = estate;
        self.metrics
            .checks_scheduled
            .store(self.schedule.len() as i64, Ordering::Relaxed);
        tracing::info!(
            estate_version = version,
            checks = self.checks.len(),
            "supervision took up the estate"
        );
    }

    /// Starts the checks due at `now` that a permit allows, host checks first; returns the
    /// passive checks judged without running anything.
    fn dispatch(&mut self, now: i64) -> Vec<Finished> {
        let mut due = self.schedule.due(now);
        due.sort_by_key(|id| self.order_key(id));
        let mut judged = Vec::new();
        for id in due {
            let Some(checked) = self.checks.get(&id) else {
                continue;
            };
            let definition = &checked.definition;
            match &*definition.probe {
                Probe::Passive {
                    freshness_ms,
                    stale_state,
                } => match checked.status.last_check_ms.get() {
                    Some(last) if now.saturating_sub(last) < *freshness_ms => {
                        self.schedule
                            .reschedule(&id, now, last.saturating_add(*freshness_ms));
                    }
                    _ => judged.push(Finished {
                        definition: definition.clone(),
                        result: PluginResult::new(
                            *stale_state,
                            format!(
                                "no passive result for {}",
                                vigie_core::estate::format_duration(*freshness_ms)
                            ),
                        ),
                        finished_ms: now,
                    }),
                },
                Probe::Plugin { .. } => self.plugin_backlog.push_back(id),
                _ => self.native_backlog.push_back(id),
            }
        }
        for plugin in [true, false] {
            loop {
                let (backlog, slots) = if plugin {
                    (&mut self.plugin_backlog, &self.plugin_slots)
                } else {
                    (&mut self.native_backlog, &self.native_slots)
                };
                if backlog.is_empty() {
                    break;
                }
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    break;
                };
                let id = backlog
                    .pop_front()
                    .expect("invariant: the backlog is not empty");
                let Some(definition) = self.checks.get(&id).map(|c| c.definition.clone()) else {
                    continue;
                };
                let due_ms = self.schedule.due_at(&id).unwrap_or(now);
                self.lags.record(now.saturating_sub(due_ms));
                self.running.spawn(async move {
                    let result = run::run_check(&definition).await;
                    drop(permit);
                    Finished {
                        definition,
                        result,
                        finished_ms: crate::clock::now_ms(),
                    }
                });
            }
        }
        self.metrics
            .checks_running
            .store(self.running.len() as i64, Ordering::Relaxed);
        if let Some((p50, p99)) = self.lags.quantiles() {
            self.metrics
                .check_lag_p50_us
                .store(p50.saturating_mul(1_000), Ordering::Relaxed);
            self.metrics
                .check_lag_p99_us
                .store(p99.saturating_mul(1_000), Ordering::Relaxed);
        }
        judged
    }

    /// Host checks before services; among host checks, parents before children.
    fn order_key(&self, id: &CheckId) -> (u8, usize) {
        match self.depth.get(id) {
            Some(depth) => (0, *depth),
            None => (1, 0),
        }
    }

    /// Feeds a round of results to the state machines, then hands the pipeline what they
    /// say, then writes the statuses.
    async fn process(&mut self, mut finished: Vec<Finished>, mut commands: Vec<IncidentCommand>) {
        finished.sort_by_key(|done| self.order_key(&done.definition.id));
        for done in finished {
            self.metrics.checks_run.fetch_add(1, Ordering::Relaxed);
            let id = done.definition.id.clone();
            // A result of a definition since replaced or removed says nothing of the new one.
            let current = self.checks.get(&id);
            if !current.is_some_and(|current| Arc::ptr_eq(&current.definition, &done.definition)) {
                if current.is_some() {
                    self.schedule.skip(&id, done.finished_ms);
                }
                continue;
            }
            let definition = done.definition;
            let parent_down =
                definition.kind == CheckKind::Host && self.any_down(&definition.depends_on);
            self.recorder
                .record(&id, &done.result.perfdata, done.finished_ms);
            let Some(status) = self.checks.get_mut(&id).map(|c| &mut c.status) else {
                continue;
            };
            let before = Significant::of(status);
            let effects = status.apply(
                CheckCommand::Result {
                    result: done.result,
                    parent_down,
                },
                done.finished_ms,
            );
            if Significant::of(status) == before {
                self.routine.insert(id.clone());
            } else {
                self.dirty.insert(id.clone());
            }
            let left_ok = effects.iter().any(|effect| {
                matches!(effect, CheckEffect::StateChanged { from, to, .. } if from.is_ok() && !to.is_ok())
            });
            if left_ok {
                self.check_parents_now(&definition, done.finished_ms);
            }
            self.take_effects(&definition, effects, done.finished_ms, &mut commands);
        }
        self.commit(commands).await;
        self.recorder.flush();
    }

    /// A check that just failed has the host checks it depends on run at once if they are
    /// UP, as Icinga checks parents on demand: a router's failure is then known before the
    /// hosts behind it reach their last attempt, and they turn UNREACHABLE, not DOWN.
    fn check_parents_now(&mut self, definition: &CheckDefinition, now: i64) {
        for parent in definition.depends_on.iter() {
            let up = self
                .status(parent)
                .is_some_and(|status| status.state == ObjectState::Host(HostState::Up));
            if up {
                self.schedule.hasten(parent, now);
            }
        }
    }

    /// What the state machine's effects mean for the schedule and the incidents.
    fn take_effects(
        &mut self,
        definition: &CheckDefinition,
        effects: Vec<CheckEffect>,
        now: i64,
        commands: &mut Vec<IncidentCommand>,
    ) {
        let id = &definition.id;
        for effect in effects {
            match effect {
                CheckEffect::NextCheckAt(at) => {
                    self.schedule.reschedule(id, now, at);
                }
                CheckEffect::Notify {
                    kind: NotificationKind::Problem,
                } => {
                    if (definition.kind == CheckKind::Service
                        && self.any_down(&definition.depends_on))
                        || self.any_failing(&definition.check_dependencies)
                    {
                        self.metrics
                            .checks_suppressed
                            .fetch_add(1, Ordering::Relaxed);
                        self.unpaged.insert(id.clone());
                        tracing::debug!(check = %id, "problem not paged: its host is down");
                    } else {
                        self.unpaged.remove(id);
                        commands.push(self.problem_signal(definition, now));
                    }
                }
                CheckEffect::Suppressed {
                    kind: NotificationKind::Problem,
                    reason,
                } => {
                    self.metrics
                        .checks_suppressed
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(check = %id, ?reason, "problem not paged");
                }
                CheckEffect::StateChanged { to, hard: true, .. } if to.is_ok() => {
                    self.unpaged.remove(id);
                    commands.push(resolve_command(id));
                    // A host, or a check others depend on, may have kept problems quiet.
                    self.page_what_the_host_kept_quiet(id, now, commands);
                }
                _ => {}
            }
        }
        // A service kept quiet by its host's outage pages once the host is back and the
        // problem still holds.
        if self.unpaged.contains(id) && !self.kept_quiet(definition) {
            self.page_if_still_a_problem(definition, now, commands);
        }
    }

    /// When a host (or a check others depend on) recovers, the checks it kept from paging
    /// that still hold a hard problem page now (unless acknowledged, in downtime or flapping,
    /// or still kept quiet by another of their dependencies).
    fn page_what_the_host_kept_quiet(
        &mut self,
        host: &CheckId,
        now: i64,
        commands: &mut Vec<IncidentCommand>,
    ) {
        let waiting: Vec<Arc<CheckDefinition>> = self
            .dependents
            .get(host)
            .into_iter()
            .flatten()
            .filter(|id| self.unpaged.contains(*id))
            .filter_map(|id| self.checks.get(id).map(|c| c.definition.clone()))
            .collect();
        for definition in waiting {
            if !self.kept_quiet(&definition) {
                self.page_if_still_a_problem(&definition, now, commands);
            }
        }
    }

    fn page_if_still_a_problem(
        &mut self,
        definition: &CheckDefinition,
        now: i64,
        commands: &mut Vec<IncidentCommand>,
    ) {
        self.unpaged.remove(&definition.id);
        let Some(status) = self.status(&definition.id) else {
            return;
        };
        let quiet = status.acknowledgement.is_some() || status.in_downtime() || status.flapping;
        if !status.last_hard_state.is_ok() && !status.state.is_ok() && !quiet {
            commands.push(self.problem_signal(definition, now));
        }
    }

    fn status(&self, id: &CheckId) -> Option<&CheckStatus> {
        self.checks.get(id).map(|checked| &checked.status)
    }

    /// Whether a check's problem is kept quiet by what it depends on: its host (or parent
    /// host) DOWN or UNREACHABLE, or one of its check dependencies failing.
    fn kept_quiet(&self, definition: &CheckDefinition) -> bool {
        self.any_down(&definition.depends_on) || self.any_failing(&definition.check_dependencies)
    }

    /// Whether any of these checks fails now (soft or hard), as Icinga's dependencies count
    /// it by default: CRITICAL or UNKNOWN, DOWN or UNREACHABLE.
    fn any_failing(&self, checks: &[CheckId]) -> bool {
        checks.iter().any(|check| {
            self.status(check).is_some_and(|status| {
                matches!(
                    status.state,
                    ObjectState::Service(CheckState::Critical | CheckState::Unknown)
                        | ObjectState::Host(HostState::Down | HostState::Unreachable)
                )
            })
        })
    }

    /// Whether any of these host checks is DOWN or UNREACHABLE now (soft or hard).
    fn any_down(&self, hosts: &[CheckId]) -> bool {
        hosts.iter().any(|host| {
            self.status(host).is_some_and(|status| {
                matches!(
                    status.state,
                    ObjectState::Host(HostState::Down | HostState::Unreachable)
                )
            })
        })
    }

    /// The alert signal of a check's hard problem: the check, the asset, the state and the
    /// output as labels; for a host, the hosts behind it.
    fn problem_signal(&self, definition: &CheckDefinition, now: i64) -> IncidentCommand {
        let id = &definition.id;
        let status = &self.checks[id].status;
        let asset = self.current_estate.asset(id.client(), id.asset());
        let asset_name = asset.map_or(id.asset(), |asset| asset.display_name());
        let state = status.state.as_str();
        let mut labels = Map::new();
        labels.insert("check".into(), json!(id.to_string()));
        labels.insert("check_name".into(), json!(id.check()));
        labels.insert("check_kind".into(), json!(definition.kind));
        labels.insert("probe".into(), json!(definition.probe.kind()));
        labels.insert("state".into(), json!(state));
        labels.insert("state_type".into(), json!(status.state_type));
        labels.insert("attempt".into(), json!(status.attempt));
        labels.insert("output".into(), json!(status.output));
        if !status.long_output.is_empty() {
            labels.insert("long_output".into(), json!(status.long_output));
        }
        if !status.perfdata.is_empty() {
            labels.insert("perfdata".into(), json!(status.perfdata));
        }
        let mut title = match definition.kind {
            CheckKind::Host => format!("{asset_name} is {state}"),
            CheckKind::Service => format!("{} {state} on {asset_name}", id.check()),
        };
        if let Some(behind) = self.behind.get(id) {
            let listed: Vec<Value> = behind
                .iter()
                .take(HOSTS_BEHIND_LISTED)
                .map(|host| json!(host.asset()))
                .collect();
            labels.insert("unreachable_children".into(), json!(behind.len()));
            labels.insert("unreachable_hosts".into(), Value::Array(listed));
            let hosts = if behind.len() == 1 { "host" } else { "hosts" };
            title.push_str(&format!(
                " ({} {hosts} behind it unreachable)",
                behind.len()
            ));
        }
        let severity = match status.state {
            ObjectState::Service(CheckState::Warning) => Severity::Warning,
            ObjectState::Service(CheckState::Unknown) => Severity::Error,
            _ => Severity::Critical,
        };
        IncidentCommand::Signal(AlertSignal {
            client: id.client().to_string(),
            fingerprint: fingerprint(id),
            rule: format!("check/{}", id.check()),
            title,
            severity,
            asset: Some(id.asset().to_string()),
            source: "supervision".into(),
            kind: "check".into(),
            criticality: asset.map(|asset| asset.criticality),
            event_id: None,
            time_ms: now,
            labels,
        })
    }

    async fn handle_request(&mut self, request: Request) {
        let Request { id, request, reply } = request;
        let now = crate::clock::now_ms();
        let Some(checked) = self.checks.get_mut(&id) else {
            let _ = reply.send(Err(SupervisionError::UnknownCheck(id.to_string())));
            return;
        };
        let definition = checked.definition.clone();
        // The other checks a host's downtime covers: its children and their services.
        let mut covered = Vec::new();
        if let CheckRequest::ScheduleDowntime {
            children, services, ..
        } = &request
            && (*children || *services)
        {
            if definition.kind != CheckKind::Host {
                let _ = reply.send(Err(SupervisionError::Rejected(
                    "`children` and `services` apply to a host check's downtime".into(),
                )));
                return;
            }
            covered = self.covered_by_downtime(&id, *children, *services);
        }
        let Some(status) = self.checks.get_mut(&id).map(|c| &mut c.status) else {
            return;
        };
        if let CheckRequest::PassiveResult { result, time_ms } = request {
            let finished_ms = time_ms.map_or(now, |t| t.min(now));
            self.process(
                vec![Finished {
                    definition,
                    result,
                    finished_ms,
                }],
                Vec::new(),
            )
            .await;
            // Its sender is told once the result is in the store, whatever it changed.
            self.dirty.insert(id.clone());
            let record = self.record(&id);
            self.answer_once_written(reply, Ok(record)).await;
            return;
        }
        let command = match request {
            // Taken above; a match must name every request.
            CheckRequest::PassiveResult { .. } => return,
            CheckRequest::Acknowledge {
                author,
                comment,
                sticky,
                expires_ms,
            } => CheckCommand::Acknowledge {
                author,
                comment,
                sticky,
                expires_ms,
            },
            CheckRequest::ScheduleDowntime {
                author,
                comment,
                start_ms,
                end_ms,
                duration_ms,
                ..
            } => CheckCommand::ScheduleDowntime {
                id: status.next_downtime_id(),
                author,
                comment,
                start_ms,
                end_ms,
                kind: duration_ms.map_or(DowntimeKind::Fixed, |duration_ms| {
                    DowntimeKind::Flexible { duration_ms }
                }),
            },
            CheckRequest::RemoveAcknowledgement => CheckCommand::RemoveAcknowledgement,
            CheckRequest::RemoveDowntime { id } => CheckCommand::RemoveDowntime { id },
        };
        let copy = covered_copy(&command);
        let effects = status.apply(command, now);
        let rejected = effects.iter().find_map(|effect| match effect {
            CheckEffect::Rejected { reason } => Some(*reason),
            _ => None,
        });
        if needs_tick(status) {
            self.timed.insert(id.clone());
        }
        self.dirty.insert(id.clone());
        let mut commands = Vec::new();
        self.take_effects(&definition, effects, now, &mut commands);
        if rejected.is_none()
            && let Some(copy) = copy
        {
            for other in covered {
                let Some(checked) = self.checks.get_mut(&other) else {
                    continue;
                };
                let definition = checked.definition.clone();
                let status = &mut checked.status;
                let mut command = copy.clone();
                if let CheckCommand::ScheduleDowntime { id, .. } = &mut command {
                    *id = status.next_downtime_id();
                }
                let effects = status.apply(command, now);
                if needs_tick(status) {
                    self.timed.insert(other.clone());
                }
                self.dirty.insert(other);
                self.take_effects(&definition, effects, now, &mut commands);
            }
        }
        self.refresh_downtime_view();
        self.commit(commands).await;
        let answer = match rejected {
            Some(reason) => Err(SupervisionError::Rejected(rejection_text(reason).into())),
            None => Ok(self.record(&id)),
        };
        self.answer_once_written(reply, answer).await;
    }

    /// The checks a downtime on host check `host` also covers: with `children`, the host
    /// checks behind it (recursively); with `services`, the services of the host (and of
    /// those children). Sorted, without `host`.
    fn covered_by_downtime(&self, host: &CheckId, children: bool, services: bool) -> Vec<CheckId> {
        let mut hosts = vec![host.clone()];
        if children {
            hosts.extend(self.behind.get(host).into_iter().flatten().cloned());
        }
        let mut covered: Vec<CheckId> = Vec::new();
        if services {
            for host in &hosts {
                covered.extend(
                    self.dependents
                        .get(host)
                        .into_iter()
                        .flatten()
                        .filter(|dependent| {
                            dependent.asset() == host.asset()
                                && self.checks.get(*dependent).is_some_and(|checked| {
                                    checked.definition.kind == CheckKind::Service
                                })
                        })
                        .cloned(),
                );
            }
        }
        covered.extend(hosts.into_iter().skip(1));
        covered.sort();
        covered.dedup();
        covered
    }

    /// Sends `answer` once every status changed so far is in the store, without holding up
    /// the task meanwhile; a store that fails turns a success into `Store` (the writer
    /// retries on its own).
    async fn answer_once_written(
        &mut self,
        reply: oneshot::Sender<Result<CheckRecord, SupervisionError>>,
        answer: Result<CheckRecord, SupervisionError>,
    ) {
        let (done, written) = oneshot::channel();
        let batch = self.take_changes(Some(done), true);
        if self.writer.send(batch).await.is_err() {
            let _ = reply.send(Err(SupervisionError::Stopped));
            return;
        }
        tokio::spawn(async move {
            let answer = match written.await {
                Ok(true) => answer,
                _ if answer.is_err() => answer,
                _ => Err(SupervisionError::Store(
                    "the check's state was not written".into(),
                )),
            };
            let _ = reply.send(answer);
        });
    }

    /// Tells the responder what changed among the checks in a downtime with a hard problem;
    /// the first time, even if nothing is in downtime, so that it knows it has the whole view
    /// (it computes no business service's health before).
    async fn tell_downtimes(&mut self) {
        if self.downtime_changes.is_empty() && self.downtimes_told {
            return;
        }
        let changes = std::mem::take(&mut self.downtime_changes);
        match self
            .pipeline
            .respond(ResponseCommand::CheckDowntimes(changes.clone()))
            .await
        {
            Ok(_) => self.downtimes_told = true,
            Err(error) => {
                // Told again at the next commit.
                tracing::error!(%error, "checks in downtime not handed to the responder");
                self.downtime_changes = changes;
            }
        }
    }

    /// Hands the round's commands to the pipeline (retrying while the store fails: a signal
    /// must not be lost), then hands the changed statuses to the writer without waiting (while
    /// its queue is full they stay dirty and go with a later round).
    async fn commit(&mut self, commands: Vec<IncidentCommand>) {
        if !self.supervise(commands).await {
            return;
        }
        self.tell_downtimes().await;
        if self.dirty.is_empty()
            && self.removed.is_empty()
            && !self.sweep_ready(crate::clock::now_ms())
        {
            return;
        }
        let writer = self.writer.clone();
        match writer.try_reserve() {
            Ok(slot) => slot.send(self.take_changes(None, false)),
            Err(mpsc::error::TrySendError::Full(())) => {}
            Err(mpsc::error::TrySendError::Closed(())) => {
                tracing::error!("the check state writer is gone; states are not written")
            }
        }
    }

    /// Hands the round's commands to the pipeline, retrying while the store fails; `false`
    /// when the pipeline stopped.
    async fn supervise(&mut self, commands: Vec<IncidentCommand>) -> bool {
        let mut wait = Duration::from_millis(100);
        loop {
            match self.pipeline.supervise(commands.clone()).await {
                Ok(()) => return true,
                Err(PipelineError::Stopped) => return false,
                Err(error) => {
                    tracing::error!(%error, "supervision signals not committed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Starts a sweep of the routine changes when one is due and the last one is done.
    fn start_sweep(&mut self, now: i64) {
        if now < self.next_sweep_ms || !self.sweep.is_empty() {
            return;
        }
        self.sweep = self.routine.drain().collect();
        let budget_ms = (self.sweep.len() * 1_000 / ROUTINE_ROWS_PER_SECOND) as i64;
        self.next_sweep_ms = now.saturating_add(budget_ms.max(ROUTINE_SWEEP_MIN_MS));
    }

    /// Refills the sweep's token bucket; the sweep rows allowed now.
    fn sweep_allowance(&mut self, now: i64) -> usize {
        let elapsed = now.saturating_sub(self.sweep_refilled_ms).max(0);
        self.sweep_refilled_ms = now;
        self.sweep_tokens = (self.sweep_tokens
            + elapsed as f64 * ROUTINE_ROWS_PER_SECOND as f64 / 1_000.0)
            .min(WRITE_CHUNK as f64);
        self.sweep_tokens as usize
    }

    /// Whether the sweep has rows the budget lets go now, a step's worth at least.
    fn sweep_ready(&mut self, now: i64) -> bool {
        !self.sweep.is_empty() && self.sweep_allowance(now) >= SWEEP_STEP.min(self.sweep.len())
    }

    /// A writer's batch: the removed checks, then the dirty statuses, then the sweep's as the
    /// budget allows, at most `WRITE_CHUNK` statuses (`all`: every dirty one); what it takes
    /// leaves the sets.
    fn take_changes(&mut self, done: Option<oneshot::Sender<bool>>, all: bool) -> writer::Batch {
        let limit = if all { usize::MAX } else { WRITE_CHUNK };
        let mut ids: Vec<CheckId> = if self.dirty.len() <= limit {
            let ids = self.dirty.drain().collect();
            // A first start marks every check dirty: that capacity is not kept for the
            // handful a round changes.
            if self.dirty.capacity() > DIRTY_CAPACITY_KEPT {
                self.dirty = HashSet::new();
            }
            ids
        } else {
            let ids: Vec<CheckId> = self.dirty.iter().take(limit).cloned().collect();
            for id in &ids {
                self.dirty.remove(id);
            }
            ids
        };
        let allowed = self
            .sweep_allowance(crate::clock::now_ms())
            .min(WRITE_CHUNK.saturating_sub(ids.len()));
        let swept = allowed.min(self.sweep.len());
        ids.extend(self.sweep.drain(self.sweep.len() - swept..));
        self.sweep_tokens -= swept as f64;
        for id in &ids {
            self.routine.remove(id);
        }
        let records = ids
            .iter()
            .filter(|id| self.checks.contains_key(*id))
            .map(|id| self.record(id))
            .collect();
        writer::Batch {
            records,
            removed: std::mem::take(&mut self.removed),
            done,
        }
    }

    /// A check as stored: its status, with the time the schedule will run it next.
    fn record(&self, id: &CheckId) -> CheckRecord {
        let mut status = self.checks[id].status.clone();
        if let Some(due) = self.schedule.due_at(id) {
            status.next_check_ms = Millis::at(due);
        }
        let probe = self
            .checks
            .get(id)
            .map_or("", |checked| checked.definition.probe.kind());
        CheckRecord {
            id: id.to_string(),
            client: id.client().to_string(),
            asset: id.asset().to_string(),
            check: id.check().to_string(),
            kind: status.kind,
            probe: probe.to_owned(),
            updated_ms: crate::clock::now_ms(),
            status,
        }
    }
}

/// A check's alert: one per check and client.
fn fingerprint(id: &CheckId) -> String {
    format!("check:{}:{}", id.asset(), id.check())
}

fn resolve_command(id: &CheckId) -> IncidentCommand {
    IncidentCommand::ResolveAlert {
        client: id.client().to_string(),
        fingerprint: fingerprint(id),
        actor: SUPERVISION_ACTOR.into(),
    }
}

/// The estate's recurring downtimes and the checks of `checks` each covers.
fn recurring_downtimes(estate: &Estate, checks: &HashMap<CheckId, Box<Checked>>) -> Vec<Recurring> {
    let mut recurring = Vec::new();
    for client in estate.clients.values() {
        for downtime in &client.recurring_downtimes {
            let mut covered: Vec<CheckId> = checks
                .keys()
                .filter(|id| {
                    id.client() == client.id
                        && client
                            .asset(id.asset())
                            .is_some_and(|asset| downtime.covers(asset, id.check()))
                })
                .cloned()
                .collect();
            covered.sort();
            let comment = if downtime.comment.is_empty() {
                downtime.name.clone()
            } else {
                format!("{}: {}", downtime.name, downtime.comment)
            };
            recurring.push(Recurring {
                window: downtime.window.clone(),
                comment,
                checks: covered,
                started_ms: None,
            });
        }
    }
    recurring
}

/// A downtime command to repeat on the checks it covers (its id is set per check).
fn covered_copy(command: &CheckCommand) -> Option<CheckCommand> {
    matches!(command, CheckCommand::ScheduleDowntime { .. }).then(|| command.clone())
}

/// Gives a status the kind and settings of its definition: reset when the kind changed (a
/// host check turned service), the new settings otherwise. Whether it changed.
fn fit_status(status: &mut CheckStatus, definition: &CheckDefinition) -> bool {
    if status.kind != definition.kind {
        *status = CheckStatus::new(definition.kind, definition.config.clone());
        true
    } else if status.config != definition.config {
        status.config = definition.config.clone();
        true
    } else {
        false
    }
}

/// A passive check is looked at once per freshness period; the others run at their interval.
fn schedule_interval(definition: &CheckDefinition) -> i64 {
    match *definition.probe {
        Probe::Passive { freshness_ms, .. } => freshness_ms,
        _ => definition.config.check_interval_ms,
    }
}

/// For each host check, the length of the longest chain of host checks above it.
fn host_depths(checks: &HashMap<CheckId, Box<Checked>>) -> HashMap<CheckId, usize> {
    fn depth(
        id: &CheckId,
        checks: &HashMap<CheckId, Box<Checked>>,
        known: &mut HashMap<CheckId, usize>,
        visiting: &mut HashSet<CheckId>,
    ) -> usize {
        if let Some(depth) = known.get(id) {
            return *depth;
        }
        // The estate is acyclic once validated; a cycle would count as depth 0 here.
        if !visiting.insert(id.clone()) {
            return 0;
        }
        let parents = checks
            .get(id)
            .map_or(&[][..], |c| &c.definition.depends_on[..]);
        let value = parents
            .iter()
            .map(|parent| depth(parent, checks, known, visiting) + 1)
            .max()
            .unwrap_or(0);
        visiting.remove(id);
        known.insert(id.clone(), value);
        value
    }
    let mut known = HashMap::new();
    let mut visiting = HashSet::new();
    for (id, check) in checks {
        if check.definition.kind == CheckKind::Host {
            depth(id, checks, &mut known, &mut visiting);
        }
    }
    known
}

fn rejection_text(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::NotAProblem => "the check is not in a problem state",
        RejectReason::AlreadyAcknowledged => "the check is already acknowledged",
        RejectReason::NotAcknowledged => "the check is not acknowledged",
        RejectReason::ExpiryInThePast => "the expiry is in the past",
        RejectReason::EmptyDowntimeWindow => {
            "the downtime window is empty: `end_ms` must be after `start_ms`, and a duration longer than zero"
        }
        RejectReason::DuplicateDowntime => "a downtime with this id already exists",
        RejectReason::UnknownDowntime => "no such downtime",
    }
}

/// The last lags (ms), for their quantiles.
#[derive(Default)]
struct LagWindow {
    lags: Vec<i64>,
    next: usize,
    changed: bool,
}

impl LagWindow {
    fn record(&mut self, lag_ms: i64) {
        if self.lags.len() < LAG_WINDOW {
            self.lags.push(lag_ms);
        } else {
            self.lags[self.next] = lag_ms;
        }
        self.next = (self.next + 1) % LAG_WINDOW;
        self.changed = true;
    }

    /// p50 and p99 in ms, when lags were recorded since the last call.
    fn quantiles(&mut self) -> Option<(i64, i64)> {
        if !self.changed || self.lags.is_empty() {
            return None;
        }
        self.changed = false;
        let mut sorted = self.lags.clone();
        sorted.sort_unstable();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        Some((at(0.5), at(0.99)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_quantiles_come_from_the_last_lags() {
        let mut window = LagWindow::default();
        assert_eq!(window.quantiles(), None);
        for lag in 0..100 {
            window.record(lag);
        }
        assert_eq!(window.quantiles(), Some((50, 98)));
        assert_eq!(window.quantiles(), None, "nothing new");
        for _ in 0..LAG_WINDOW {
            window.record(7);
        }
        assert_eq!(window.quantiles(), Some((7, 7)), "old lags age out");
    }
}

/// What of a status is written with the round that changed it (everything but the output,
/// the perfdata, the times and the flapping history, which wait for the routine sweep).
#[derive(PartialEq)]
struct Significant {
    state: ObjectState,
    state_type: vigie_core::check::StateType,
    attempt: u32,
    last_hard_state: ObjectState,
    problem_notified: bool,
    flapping: bool,
    acknowledged: bool,
    downtimes: usize,
}

impl Significant {
    fn of(status: &CheckStatus) -> Self {
        Significant {
            state: status.state,
            state_type: status.state_type,
            attempt: status.attempt,
            last_hard_state: status.last_hard_state,
            problem_notified: status.problem_notified,
            flapping: status.flapping,
            acknowledged: status.acknowledgement.is_some(),
            downtimes: status.downtimes.len(),
        }
    }
}

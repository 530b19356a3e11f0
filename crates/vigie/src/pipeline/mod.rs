//! The pipeline: the single writer between the sources and the store.
//!
//! Every source (HTTP ingest, syslog) and every incident command (ack, resolve, comment…)
//! becomes a `Job` on one bounded queue. One task drains it in groups — group commit — and for
//! each group: gives the events their ids, evaluates the alert rules, applies the resulting
//! signals and the commands to the `IncidentBook`, writes all of it in one store transaction,
//! and only then answers the callers and publishes the changes to the live stream. While a
//! group commits, the writer applies the next one (at most one commit in flight, in order).
//!
//! Invariants:
//! - a caller is answered `Ok` only after the transaction holding its events committed;
//! - the in-memory `IncidentBook` runs ahead of the store by at most the one group applied
//!   during the previous group's commit, and nothing of that group is answered or published
//!   before its own commit: when a commit fails, the group applied after it is not written
//!   (its callers get the error too), and the book, the responder and the id counters are
//!   rebuilt from what the store holds;
//! - memory is bounded: at most `max_queued` events (default `DEFAULT_MAX_QUEUED_EVENTS`) wait; beyond that, ingest is
//!   refused (`Overloaded`, a 503 at the HTTP edge) instead of queueing without end;
//! - the Sigma rules are swapped whole on reload (`Rules::swap_sigma`): a batch is evaluated
//!   against one generation, which it carries to the writer, so the rule indices it matched
//!   are only ever looked up in the set that produced them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot};
use vigie_core::alert::{AlertRule, evaluate};
use vigie_core::estate::Estate;
use vigie_core::event::{Event, StoredEvent};
use vigie_core::incident::model::{Alert, AlertSignal, Incident, TimelineEntry};
use vigie_core::incident::{CommandError, Effect, IncidentBook, IncidentCommand};
use vigie_core::rule::correlation::{CorrelationEngine, CorrelationLimits, CorrelationRule};
use vigie_core::rule::detect::{DetectionSet, correlation_signal};
use vigie_core::rule::sigma::{Rejection, RuleSet};

use crate::estate::{ClientHosts, EstateHandle};
use crate::metrics::Metrics;
use crate::response::{
    FeedItem, Reaction, Responder, ResponseCommand, ResponseError, ResponseOutcome,
};
use crate::store::{Change, Serialized, Store, WriteBatch};

/// Events waiting for their commit, at most, unless configured otherwise. Each holds a permit
/// of the pipeline's semaphore.
pub const DEFAULT_MAX_QUEUED_EVENTS: usize = 200_000;
/// Ingest requests reading or parsing their body at once, at most: bounds the memory that
/// bodies take before their events are admitted.
const BODY_SLOTS: usize = 8;
/// A group commit takes jobs until it holds this many events (or the queue is empty).
const GROUP_COMMIT_EVENTS: usize = 50_000;
/// How long an ingest call waits for queue room, or for a body slot, before it is refused.
const ADMISSION_WAIT: Duration = Duration::from_secs(2);
/// Time passes for the writer this often: escalation steps, Prometheus alerts' ends, closing
/// resolved incidents, correlation windows and digests are looked at on the tick.
const TICK_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the ingest queue is full: retry later")]
    Overloaded,
    #[error("a batch of {0} events is larger than the whole ingest queue ({1}): split it")]
    TooLarge(usize, usize),
    #[error("the store did not commit: {0}")]
    Store(String),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Response(#[from] ResponseError),
    #[error("the pipeline has stopped")]
    Stopped,
}

/// The rules every event is evaluated against: the built-in alert rules and the Sigma rules,
/// the latter swapped whole on reload.
#[derive(Default)]
pub struct Rules {
    pub alert: Vec<AlertRule>,
    sigma: RwLock<Arc<SigmaRules>>,
}

/// One generation of Sigma rules, as loaded: shared by every batch evaluated against it until
/// that batch's signals are made.
#[derive(Default)]
pub struct SigmaRules {
    pub set: DetectionSet,
    /// The rules the load rejected, each with its file and reason.
    pub rejected: Vec<Rejection>,
    correlation_inputs: CorrelationInputs,
}

/// What the correlation engine's behaviour depends on: the correlation rules, and the id and
/// name of every rule they may refer to, in order. A reload that leaves these equal keeps the
/// running correlation windows.
#[derive(Default, PartialEq)]
struct CorrelationInputs {
    correlations: Vec<CorrelationRule>,
    referenced: Vec<(Option<String>, Option<String>)>,
}

impl CorrelationInputs {
    fn of(set: &RuleSet) -> CorrelationInputs {
        let correlations: Vec<CorrelationRule> = set
            .correlations
            .iter()
            .map(|correlation| CorrelationRule {
                // Where the rule is written does not change what it does.
                path: String::new(),
                line: 0,
                ..correlation.clone()
            })
            .collect();
        let references: std::collections::HashSet<&str> = correlations
            .iter()
            .flat_map(|correlation| correlation.rules.iter().map(String::as_str))
            .collect();
        let referenced = set
            .rules
            .iter()
            .map(|compiled| (compiled.rule.id.clone(), compiled.rule.name.clone()))
            .filter(|(id, name)| {
                [id, name]
                    .into_iter()
                    .flatten()
                    .any(|reference| references.contains(reference.as_str()))
            })
            .collect();
        CorrelationInputs {
            correlations,
            referenced,
        }
    }
}

impl SigmaRules {
    pub fn new(set: RuleSet) -> SigmaRules {
        let correlation_inputs = CorrelationInputs::of(&set);
        let rejected = set.rejected.clone();
        SigmaRules {
            set: DetectionSet::new(set),
            rejected,
            correlation_inputs,
        }
    }
}

/// What an ingest call gets back once its events are durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestReceipt {
    pub first_id: i64,
    pub count: usize,
}

// Jobs are moved once through the queue; the command variant's size is not worth a box.
#[allow(clippy::large_enum_variant)]
enum Job {
    Ingest {
        events: Vec<Event>,
        /// Per event, the Sigma rules it matches (found before the writer), as indices into
        /// `sigma`.
        matched: Vec<Vec<u32>>,
        sigma: Arc<SigmaRules>,
        received_ms: i64,
        _permit: OwnedSemaphorePermit,
        reply: Option<oneshot::Sender<Result<IngestReceipt, PipelineError>>>,
    },
    Command {
        command: IncidentCommand,
        reply: oneshot::Sender<Result<Vec<Effect>, PipelineError>>,
    },
    /// What the supervision runtime concluded from a round of check results: signals of hard
    /// problems and resolutions of recovered alerts, applied in order.
    Supervision {
        commands: Vec<IncidentCommand>,
        reply: oneshot::Sender<Result<(), PipelineError>>,
    },
    /// An API action on silences or crises (see `response`).
    Respond {
        command: ResponseCommand,
        reply: oneshot::Sender<Result<ResponseOutcome, PipelineError>>,
    },
    Tick,
}

#[derive(Clone)]
pub struct Pipeline {
    jobs: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    body_slots: Arc<Semaphore>,
    max_queued: usize,
    changes: broadcast::Sender<Arc<Change>>,
    metrics: Arc<Metrics>,
    rules: Arc<Rules>,
}

/// Events with the Sigma rules each one matches (by index into `sigma`), found before the
/// writer.
pub struct Detected {
    pub events: Vec<Event>,
    pub matched: Vec<Vec<u32>>,
    /// The generation `matched` indexes: the writer makes the signals from this one, whatever
    /// was loaded since.
    sigma: Arc<SigmaRules>,
}

impl Rules {
    pub fn new(alert: Vec<AlertRule>, sigma: SigmaRules) -> Rules {
        Rules {
            alert,
            sigma: RwLock::new(Arc::new(sigma)),
        }
    }

    /// The Sigma rules in use.
    pub fn sigma(&self) -> Arc<SigmaRules> {
        self.sigma
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Puts a new generation of Sigma rules in use: batches detected from now on use it;
    /// batches already detected keep theirs; the writer picks it up before its next group.
    pub fn swap_sigma(&self, sigma: SigmaRules) {
        *self
            .sigma
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(sigma);
    }

    /// The stateless part of detection, for a batch: which Sigma rules each event matches,
    /// all against the same generation. CPU work proportional to the batch: run it off the
    /// async workers.
    pub fn detect_batch(&self, events: Vec<Event>) -> Detected {
        let sigma = self.sigma();
        let matched = events
            .iter()
            .map(|event| sigma.set.matching_rules(event))
            .collect();
        Detected {
            events,
            matched,
            sigma,
        }
    }
}

impl Pipeline {
    /// Loads the open incidents from the store and starts the writer task.
    pub async fn start(
        store: Arc<Store>,
        estate: EstateHandle,
        rules: Arc<Rules>,
        metrics: Arc<Metrics>,
        max_queued: usize,
        public_url: String,
    ) -> anyhow::Result<Pipeline> {
        let (jobs, queue) = mpsc::channel(4096);
        let (changes, _) = broadcast::channel(8192);
        let writer = Writer::restore(
            store,
            estate,
            rules.clone(),
            changes.clone(),
            metrics.clone(),
            public_url,
        )
        .await?;
        tokio::spawn(writer.run(queue));
        let ticker = jobs.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK_EVERY);
            loop {
                interval.tick().await;
                if ticker.send(Job::Tick).await.is_err() {
                    break;
                }
            }
        });
        Ok(Pipeline {
            jobs,
            permits: Arc::new(Semaphore::new(max_queued)),
            body_slots: Arc::new(Semaphore::new(BODY_SLOTS)),
            max_queued,
            changes,
            metrics,
            rules,
        })
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    async fn admit(&self, count: usize) -> Result<OwnedSemaphorePermit, PipelineError> {
        if count > self.max_queued {
            return Err(PipelineError::TooLarge(count, self.max_queued));
        }
        let count =
            u32::try_from(count).map_err(|_| PipelineError::TooLarge(count, self.max_queued))?;
        let acquire = self.permits.clone().acquire_many_owned(count);
        match tokio::time::timeout(ADMISSION_WAIT, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(PipelineError::Stopped),
            Err(_) => {
                self.metrics
                    .ingest_overloaded
                    .fetch_add(1, Ordering::Relaxed);
                Err(PipelineError::Overloaded)
            }
        }
    }

    /// A slot to read and parse one ingest body in, or `Overloaded` after a short wait.
    pub async fn body_slot(&self) -> Result<OwnedSemaphorePermit, PipelineError> {
        match tokio::time::timeout(ADMISSION_WAIT, self.body_slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(PipelineError::Stopped),
            Err(_) => {
                self.metrics
                    .ingest_overloaded
                    .fetch_add(1, Ordering::Relaxed);
                Err(PipelineError::Overloaded)
            }
        }
    }

    /// Queues events and waits until they are committed.
    /// `body_slot`, when given, is released once the events are admitted to the queue: a
    /// parsed batch waits for room holding its slot, so at most `BODY_SLOTS` parsed batches
    /// wait and no parsing is wasted on batches that would be refused.
    pub async fn ingest(
        &self,
        detected: Detected,
        received_ms: i64,
        body_slot: Option<OwnedSemaphorePermit>,
    ) -> Result<IngestReceipt, PipelineError> {
        let Detected {
            events,
            matched,
            sigma,
        } = detected;
        let permit = self.admit(events.len()).await?;
        drop(body_slot);
        let (reply, answer) = oneshot::channel();
        self.metrics
            .queue_events
            .fetch_add(events.len() as i64, Ordering::Relaxed);
        self.jobs
            .send(Job::Ingest {
                events,
                matched,
                sigma,
                received_ms,
                _permit: permit,
                reply: Some(reply),
            })
            .await
            .map_err(|_| PipelineError::Stopped)?;
        answer.await.map_err(|_| PipelineError::Stopped)?
    }

    /// Applies an incident command; answers with its effects once they are committed.
    pub async fn command(&self, command: IncidentCommand) -> Result<Vec<Effect>, PipelineError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Command { command, reply })
            .await
            .map_err(|_| PipelineError::Stopped)?;
        answer.await.map_err(|_| PipelineError::Stopped)?
    }

    /// Applies an action on silences or crises; answers once committed.
    pub async fn respond(
        &self,
        command: ResponseCommand,
    ) -> Result<ResponseOutcome, PipelineError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Respond { command, reply })
            .await
            .map_err(|_| PipelineError::Stopped)?;
        answer.await.map_err(|_| PipelineError::Stopped)?
    }

    /// Applies the supervision runtime's signals and alert resolutions (`Signal` and
    /// `ResolveAlert` commands) in order, in one group commit; answers once committed. A
    /// command the book refuses is logged and the others still apply.
    pub async fn supervise(&self, commands: Vec<IncidentCommand>) -> Result<(), PipelineError> {
        if commands.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Supervision { commands, reply })
            .await
            .map_err(|_| PipelineError::Stopped)?;
        answer.await.map_err(|_| PipelineError::Stopped)?
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// A sender for sources without acknowledgements (syslog): events are grouped and queued
    /// behind the same admission control; when the queue is full the sender waits, which
    /// pushes back on TCP senders and lets the kernel drop UDP datagrams.
    pub fn event_sink(&self, clock: fn() -> i64) -> mpsc::Sender<Event> {
        let (sink, mut events) = mpsc::channel::<Event>(8192);
        let pipeline = self.clone();
        tokio::spawn(async move {
            let mut group = Vec::with_capacity(1024);
            while events.recv_many(&mut group, 1024).await > 0 {
                let batch = std::mem::take(&mut group);
                let count = batch.len();
                let rules = pipeline.rules.clone();
                let Ok(Detected {
                    events: batch,
                    matched,
                    sigma,
                }) = tokio::task::spawn_blocking(move || rules.detect_batch(batch)).await
                else {
                    return;
                };
                let permit = loop {
                    match pipeline.admit(count).await {
                        Ok(permit) => break permit,
                        Err(PipelineError::Overloaded) => continue,
                        Err(_) => return,
                    }
                };
                pipeline
                    .metrics
                    .queue_events
                    .fetch_add(count as i64, Ordering::Relaxed);
                let job = Job::Ingest {
                    events: batch,
                    matched,
                    sigma,
                    received_ms: clock(),
                    _permit: permit,
                    reply: None,
                };
                if pipeline.jobs.send(job).await.is_err() {
                    return;
                }
            }
        });
        sink
    }
}

type IngestReply = oneshot::Sender<Result<IngestReceipt, PipelineError>>;
type CommandReply = oneshot::Sender<Result<Vec<Effect>, PipelineError>>;
type ResponseReply = oneshot::Sender<Result<ResponseOutcome, PipelineError>>;
type CommitOutcome = Result<(WriteBatch, anyhow::Result<()>), tokio::task::JoinError>;

/// A group of jobs applied to the book: what it writes, and whom it answers after its commit.
struct Group {
    started: Instant,
    batch: WriteBatch,
    /// Serialized into `batch` by the commit task.
    records: Records,
    ingest_replies: Vec<(Option<IngestReply>, IngestReceipt, OwnedSemaphorePermit)>,
    command_replies: Vec<(CommandReply, Result<Vec<Effect>, PipelineError>)>,
    supervision_replies: Vec<oneshot::Sender<Result<(), PipelineError>>>,
    response_replies: Vec<(ResponseReply, Result<ResponseOutcome, ResponseError>)>,
    http_events: u64,
    syslog_events: u64,
    /// The book's and the correlation engine's gauges once this group is applied.
    open_incidents: i64,
    live_alerts: i64,
    correlation_groups: i64,
    correlation_evicted: u64,
}

impl Group {
    /// Answers every caller of a group that will not commit.
    fn answer_failure(self, message: &str) {
        for (reply, _, _permit) in self.ingest_replies {
            if let Some(reply) = reply {
                let _ = reply.send(Err(PipelineError::Store(message.to_owned())));
            }
        }
        for (reply, _) in self.command_replies {
            let _ = reply.send(Err(PipelineError::Store(message.to_owned())));
        }
        for reply in self.supervision_replies {
            let _ = reply.send(Err(PipelineError::Store(message.to_owned())));
        }
        for (reply, _) in self.response_replies {
            let _ = reply.send(Err(PipelineError::Store(message.to_owned())));
        }
    }

    /// A group dropped before its commit started (the one before it failed, or the store
    /// closed): its events leave the queue and its callers get `message`.
    fn fail(self, metrics: &Metrics, message: &str) {
        metrics
            .queue_events
            .fetch_sub(self.batch.events.len() as i64, Ordering::Relaxed);
        self.answer_failure(message);
    }
}

/// The one group whose commit runs while the writer applies the next.
struct InFlight {
    group: Group,
    commit: tokio::task::JoinHandle<(WriteBatch, anyhow::Result<()>)>,
}

impl InFlight {
    fn start(store: Arc<Store>, mut group: Group) -> InFlight {
        let mut batch = std::mem::take(&mut group.batch);
        let records = std::mem::take(&mut group.records);
        let commit = tokio::spawn(async move {
            records.serialize_into(&mut batch);
            let result = store.write_batch(&batch).await;
            (batch, result)
        });
        InFlight { group, commit }
    }
}

/// The writer task's state: the only owner of the incident book and of the id counters.
struct Writer {
    store: Arc<Store>,
    estate: EstateHandle,
    estate_version: u64,
    rules: Arc<Rules>,
    changes: broadcast::Sender<Arc<Change>>,
    metrics: Arc<Metrics>,
    book: IncidentBook,
    /// Health, priority, escalation, crises and notifications, after the book.
    responder: Responder,
    public_url: String,
    /// The Sigma rules `correlation` was built for.
    sigma: Arc<SigmaRules>,
    /// Sliding-window state of the Sigma correlation rules (in memory: a restart starts the
    /// windows afresh, and so does a reload that changes the correlation rules).
    correlation: CorrelationEngine,
    /// Correlation groups evicted by the engines replaced on reload, so that the counter in
    /// `/metrics` never goes back.
    evicted_before: u64,
    /// Per client, its assets by host name and address, for the estate version
    /// `estate_version` (built on first need).
    hosts: HashMap<String, ClientHosts>,
    next_event_id: i64,
    next_timeline_id: i64,
    next_change_seq: i64,
}

impl Writer {
    async fn restore(
        store: Arc<Store>,
        estate: EstateHandle,
        rules: Arc<Rules>,
        changes: broadcast::Sender<Arc<Change>>,
        metrics: Arc<Metrics>,
        public_url: String,
    ) -> anyhow::Result<Writer> {
        let sigma = rules.sigma();
        let correlation = sigma.set.correlation_engine(CorrelationLimits::default());
        let mut writer = Writer {
            store,
            estate,
            estate_version: u64::MAX,
            rules,
            changes,
            metrics,
            book: IncidentBook::new(1, 1),
            responder: Responder::restore(Default::default(), 1, public_url.clone()),
            public_url,
            sigma,
            correlation,
            evicted_before: 0,
            hosts: HashMap::new(),
            next_event_id: 1,
            next_timeline_id: 1,
            next_change_seq: 1,
        };
        writer.reload_from_store().await?;
        Ok(writer)
    }

    async fn reload_from_store(&mut self) -> anyhow::Result<()> {
        let state = self.store.load_open_state().await?;
        self.book = IncidentBook::restore(
            state.incidents,
            state.alerts,
            state.next_alert_id,
            state.next_incident_id,
        );
        self.next_event_id = state.next_event_id;
        self.next_timeline_id = state.next_timeline_id;
        self.next_change_seq = state.next_change_seq;
        let response = self.store.load_response_state().await?;
        let next_notification_id = self.store.next_notification_id().await?;
        // What the supervision runtime told of its checks in downtime is not in the store:
        // the rebuilt responder keeps it.
        let view = self.responder.take_downtime_view();
        self.responder =
            Responder::restore(response, next_notification_id, self.public_url.clone());
        self.responder.adopt_downtime_view(view);
        self.responder.watch_expiries(&self.book);
        self.estate_version = u64::MAX;
        self.sync_policies();
        Ok(())
    }

    /// Hands the book each client's grouping policy when the estate changed (and forgets the
    /// host indexes of the old estate); returns the estate of this group.
    fn sync_policies(&mut self) -> Arc<Estate> {
        let (version, estate) = self.estate.current();
        if version == self.estate_version {
            return estate;
        }
        for (id, client) in &estate.clients {
            self.book
                .set_policy(id, crate::estate::grouping_policy(client));
        }
        self.responder.sync_estate(&estate, &mut self.book);
        self.hosts.clear();
        self.estate_version = version;
        estate
    }

    /// Takes up the Sigma rules in use when a reload swapped them. The correlation engine is
    /// rebuilt — every window starts afresh — unless the correlation rules and the rules they
    /// refer to are unchanged. Batches detected with the previous generation still make their
    /// signals from it; their matches feed the new engine by rule id or name.
    fn sync_sigma(&mut self) {
        let current = self.rules.sigma();
        if Arc::ptr_eq(&current, &self.sigma) {
            return;
        }
        if current.correlation_inputs != self.sigma.correlation_inputs {
            let dropped = self.correlation.live_groups();
            self.evicted_before += self.correlation.evicted();
            self.correlation = current.set.correlation_engine(CorrelationLimits::default());
            tracing::info!(
                dropped_groups = dropped,
                "sigma correlation rules changed on reload: their windows restart"
            );
        }
        self.sigma = current;
    }

    /// Adds to a lateral movement's label the assets of the event's client its source and
    /// target hosts designate (`source_asset`, `target_asset`: an asset id, or null when no
    /// asset of that client is known by that name or address).
    fn resolve_lateral_movement(&mut self, estate: &Estate, signal: &mut AlertSignal) {
        let Some(Value::Object(lateral)) = signal.labels.get_mut("lateral_movement") else {
            return;
        };
        let hosts = self.hosts.entry(signal.client.clone()).or_insert_with(|| {
            estate
                .client(&signal.client)
                .map(ClientHosts::build)
                .unwrap_or_default()
        });
        for (end, asset) in [("source", "source_asset"), ("target", "target_asset")] {
            let found = lateral
                .get(end)
                .and_then(Value::as_str)
                .and_then(|host| hosts.find(host))
                .map_or(Value::Null, |id| Value::String(id.to_owned()));
            lateral.insert(asset.to_owned(), found);
        }
    }

    /// Drains the queue in groups. A group is applied to the book while the previous one
    /// commits (one commit in flight at a time, in order); its callers are answered only after
    /// its own commit. When a commit fails, the group applied after it is not written: its
    /// callers get the error too, and the book is rebuilt from the store.
    async fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        let mut jobs = Vec::new();
        let mut in_flight: Option<InFlight> = None;
        loop {
            // One job first, then whatever else waits, up to the group bound: a group never
            // grows past `GROUP_COMMIT_EVENTS` by more than one job. A commit that ends while
            // the queue is empty is finished at once.
            let received = match in_flight.as_mut() {
                Some(flight) => {
                    tokio::select! {
                        biased;
                        outcome = &mut flight.commit => {
                            let flight = in_flight.take().expect("invariant: a flight is in the air");
                            self.land(flight.group, outcome).await;
                            if self.store.is_closed() {
                                return;
                            }
                            continue;
                        }
                        received = queue.recv_many(&mut jobs, 1) => received,
                    }
                }
                None => queue.recv_many(&mut jobs, 1).await,
            };
            if received == 0 {
                if let Some(flight) = in_flight.take() {
                    let outcome = flight.commit.await;
                    self.land(flight.group, outcome).await;
                }
                return;
            }
            // Group commit: take what else is waiting, up to a bound.
            let mut events: usize = jobs.iter().map(Job::event_count).sum();
            while events < GROUP_COMMIT_EVENTS {
                match queue.try_recv() {
                    Ok(job) => {
                        events += job.event_count();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let group = self.prepare(std::mem::take(&mut jobs));
            if let Some(flight) = in_flight.take() {
                let outcome = flight.commit.await;
                if !self.land(flight.group, outcome).await {
                    // The book was rebuilt from the store: this group's changes are gone.
                    group.fail(
                        &self.metrics,
                        "an earlier batch in the same commit pipeline failed to commit",
                    );
                    if self.store.is_closed() {
                        return;
                    }
                    continue;
                }
            }
            if self.store.is_closed() {
                // The server stopped and closed the store: nothing more can be committed.
                group.fail(&self.metrics, "the store is closed");
                return;
            }
            in_flight = Some(InFlight::start(self.store.clone(), group));
        }
    }

    /// Applies a group of jobs to the book and the responder, and gathers what the group
    /// writes and whom it answers.
    fn prepare(&mut self, jobs: Vec<Job>) -> Group {
        let started = Instant::now();
        let estate = self.sync_policies();
        self.sync_sigma();
        let now = crate::clock::now_ms();
        let mut batch = WriteBatch::default();
        let mut effects = Vec::new();
        let mut ingest_replies = Vec::new();
        let mut command_replies = Vec::new();
        let mut supervision_replies = Vec::new();
        let mut response_replies = Vec::new();
        let mut reaction = Reaction::default();
        let mut ticked = false;
        let mut syslog_events = 0u64;
        let mut http_events = 0u64;
        for job in jobs {
            match job {
                Job::Ingest {
                    events,
                    matched,
                    sigma,
                    received_ms,
                    _permit,
                    reply,
                } => {
                    let first_id = self.next_event_id;
                    let count = events.len();
                    for (event, matched) in events.into_iter().zip(matched) {
                        let id = self.next_event_id;
                        self.next_event_id += 1;
                        let criticality = event
                            .asset
                            .as_deref()
                            .and_then(|asset| estate.asset(&event.client, asset))
                            .map(|asset| asset.criticality);
                        let built_in = evaluate(&self.rules.alert, &event, Some(id), criticality);
                        let detected = sigma.set.signals(
                            &mut self.correlation,
                            &event,
                            &matched,
                            Some(id),
                            criticality,
                        );
                        for mut signal in built_in.into_iter().chain(detected) {
                            self.resolve_lateral_movement(&estate, &mut signal);
                            self.metrics
                                .alerts_signalled
                                .fetch_add(1, Ordering::Relaxed);
                            match self.book.apply(IncidentCommand::Signal(signal), now) {
                                Ok(out) => effects.extend(out),
                                Err(error) => {
                                    tracing::error!(%error, "signal refused by the incident book")
                                }
                            }
                        }
                        batch.events.push(StoredEvent {
                            id,
                            received_ms,
                            event,
                        });
                    }
                    match &reply {
                        Some(_) => http_events += count as u64,
                        None => syslog_events += count as u64,
                    }
                    ingest_replies.push((reply, IngestReceipt { first_id, count }, _permit));
                }
                Job::Command { command, reply } => match self.book.apply(command, now) {
                    Ok(out) => {
                        effects.extend(out.iter().cloned());
                        command_replies.push((reply, Ok(out)));
                    }
                    Err(error) => command_replies.push((reply, Err(PipelineError::Command(error)))),
                },
                Job::Supervision { commands, reply } => {
                    for command in commands {
                        if matches!(command, IncidentCommand::Signal(_)) {
                            self.metrics
                                .alerts_signalled
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        match self.book.apply(command, now) {
                            Ok(out) => effects.extend(out),
                            Err(error) => {
                                tracing::error!(%error, "supervision command refused by the incident book")
                            }
                        }
                    }
                    supervision_replies.push(reply);
                }
                Job::Respond { command, reply } => {
                    let outcome = self.responder.command(
                        command,
                        &estate,
                        &mut self.book,
                        now,
                        &mut batch.response,
                        &mut reaction,
                    );
                    response_replies.push((reply, outcome));
                }
                Job::Tick => {
                    ticked = true;
                    // Correlations checked when their window closes fire on the tick.
                    for matched in self.correlation.advance(now) {
                        let signal = correlation_signal(&matched, None, None, None);
                        match self.book.apply(IncidentCommand::Signal(signal), now) {
                            Ok(out) => effects.extend(out),
                            Err(error) => {
                                tracing::error!(%error, "signal refused by the incident book")
                            }
                        }
                    }
                    // Prometheus alerts not sent again before their end resolve.
                    for command in self.responder.expired_alerts(&self.book, now) {
                        match self.book.apply(command, now) {
                            Ok(out) => effects.extend(out),
                            Err(error) => {
                                tracing::error!(%error, "expiry refused by the incident book")
                            }
                        }
                    }
                    match self.book.apply(IncidentCommand::Tick, now) {
                        Ok(out) => effects.extend(out),
                        Err(error) => tracing::error!(%error, "tick refused by the incident book"),
                    }
                }
            }
        }
        self.responder.react(
            &estate,
            self.estate_version,
            &mut self.book,
            &effects,
            ticked,
            now,
            &mut batch.response,
            &mut reaction,
        );
        effects.append(&mut reaction.effects);
        batch.notifications.append(&mut reaction.notifications);
        let mut records = Records::default();
        self.collect_effects(
            effects,
            std::mem::take(&mut reaction.feed),
            now,
            &mut records,
        );
        if ticked {
            self.metrics.apply_tick_latency.observe(started.elapsed());
        } else {
            self.metrics.apply_latency.observe(started.elapsed());
        }
        Group {
            started,
            records,
            open_incidents: self.book.open_incidents() as i64,
            live_alerts: self.book.live_alerts() as i64,
            correlation_groups: self.correlation.live_groups() as i64,
            correlation_evicted: self.evicted_before + self.correlation.evicted(),
            batch,
            ingest_replies,
            command_replies,
            supervision_replies,
            response_replies,
            http_events,
            syslog_events,
        }
    }

    /// Ends a group's commit: on success, publishes its changes and answers its callers; on
    /// failure, answers them with the error and rebuilds the book from the store. Returns
    /// whether the group committed.
    async fn land(&mut self, mut group: Group, outcome: CommitOutcome) -> bool {
        let result = match outcome {
            Ok((batch, result)) => {
                group.batch = batch;
                result
            }
            Err(error) => Err(anyhow::anyhow!("the commit task failed: {error}")),
        };
        self.metrics
            .queue_events
            .fetch_sub(group.batch.events.len() as i64, Ordering::Relaxed);
        match result {
            Ok(()) => {
                let metrics = &self.metrics;
                metrics
                    .events_http
                    .fetch_add(group.http_events, Ordering::Relaxed);
                metrics
                    .events_syslog
                    .fetch_add(group.syslog_events, Ordering::Relaxed);
                let unparsed = group
                    .batch
                    .events
                    .iter()
                    .filter(|e| e.event.unparsed)
                    .count();
                metrics
                    .events_unparsed
                    .fetch_add(unparsed as u64, Ordering::Relaxed);
                metrics
                    .open_incidents
                    .store(group.open_incidents, Ordering::Relaxed);
                metrics
                    .live_alerts
                    .store(group.live_alerts, Ordering::Relaxed);
                metrics
                    .correlation_groups
                    .store(group.correlation_groups, Ordering::Relaxed);
                metrics
                    .correlation_evicted
                    .store(group.correlation_evicted, Ordering::Relaxed);
                for change in group.batch.changes {
                    // No subscriber is not an error: the feed is in the store for later.
                    let _ = self.changes.send(Arc::new(change));
                }
                for (reply, receipt, _permit) in group.ingest_replies {
                    if let Some(reply) = reply {
                        metrics.ingest_latency.observe(group.started.elapsed());
                        let _ = reply.send(Ok(receipt));
                    }
                }
                for (reply, result) in group.command_replies {
                    let _ = reply.send(result);
                }
                for reply in group.supervision_replies {
                    let _ = reply.send(Ok(()));
                }
                for (reply, outcome) in group.response_replies {
                    let _ = reply.send(outcome.map_err(PipelineError::Response));
                }
                true
            }
            Err(error) => {
                let message = format!("{error:#}");
                tracing::error!(error = %message, events = group.batch.events.len(), "batch commit failed; rebuilding state from the store");
                group.answer_failure(&message);
                self.recover().await;
                false
            }
        }
    }

    /// After a failed commit the book has applied changes the store does not have: rebuild
    /// it, retrying until the store answers.
    async fn recover(&mut self) {
        let mut wait = Duration::from_millis(100);
        while !self.store.is_closed() {
            match self.reload_from_store().await {
                Ok(()) => return,
                Err(error) => {
                    tracing::error!(error = %format!("{error:#}"), "cannot reload state from the store; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Turns the book's effects into rows: the last state of each alert and incident, every
    /// timeline entry, and one change-feed entry for each of them.
    fn collect_effects(
        &mut self,
        effects: Vec<Effect>,
        feed: Vec<FeedItem>,
        now: i64,
        records: &mut Records,
    ) {
        let mut alerts: BTreeMap<i64, Arc<Alert>> = BTreeMap::new();
        let mut incidents: BTreeMap<i64, Incident> = BTreeMap::new();
        for effect in effects {
            match effect {
                Effect::Alert(alert) => {
                    alerts.insert(alert.id, alert);
                }
                Effect::Incident(incident) => {
                    incidents.insert(incident.id, incident);
                }
                Effect::Timeline(entry) => {
                    records.timeline.push((self.next_timeline_id, entry));
                    self.next_timeline_id += 1;
                }
            }
        }
        records.incidents = incidents.into_values().collect();
        records.alerts = alerts.into_values().collect();
        records.feed = feed;
        records.time_ms = now;
        // Each record is one change: their numbers are given here, in the writer's order.
        records.first_seq = self.next_change_seq;
        self.next_change_seq += records.len() as i64;
    }
}

/// What a group's records are before its commit task serializes them: the single writer,
/// the one serial stage of the pipeline, only gathers them, and their JSON is written beside
/// its next group's apply.
#[derive(Default)]
struct Records {
    incidents: Vec<Incident>,
    alerts: Vec<Arc<Alert>>,
    timeline: Vec<(i64, TimelineEntry)>,
    feed: Vec<FeedItem>,
    /// The change number of the first record, in the order `serialize_into` writes them.
    first_seq: i64,
    time_ms: i64,
}

impl Records {
    fn len(&self) -> usize {
        self.incidents.len() + self.alerts.len() + self.timeline.len() + self.feed.len()
    }

    /// Fills `batch`'s rows and changes. Each record is serialized once: its row and its
    /// change carry the same text. Changes are numbered from `first_seq`: incidents, alerts,
    /// timeline entries, then the responder's feed.
    fn serialize_into(self, batch: &mut WriteBatch) {
        let mut changes = Vec::with_capacity(self.len());
        let mut seq = self.first_seq;
        let time_ms = self.time_ms;
        let mut change = |client: &str, topic: &str, body: String| {
            changes.push(Change {
                seq,
                client: client.to_owned(),
                time_ms,
                topic: topic.to_owned(),
                body,
            });
            seq += 1;
        };
        batch.incidents = self.incidents.into_iter().map(Serialized::new).collect();
        batch.alerts = self.alerts.into_iter().map(Serialized::new).collect();
        for row in &batch.incidents {
            change(&row.record.client, "incident", row.body.clone());
        }
        for row in &batch.alerts {
            change(&row.record.client, "alert", row.body.clone());
        }
        batch.timeline = self
            .timeline
            .into_iter()
            .map(|(id, entry)| (id, Serialized::new(entry)))
            .collect();
        for (_, row) in &batch.timeline {
            change(&row.record.client, "timeline", row.body.clone());
        }
        for item in self.feed {
            change(&item.client, item.topic, item.body.to_string());
        }
        batch.changes = changes;
    }
}

impl Job {
    fn event_count(&self) -> usize {
        match self {
            Job::Ingest { events, .. } => events.len(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap as Map;

    use serde_json::json;
    use vigie_core::event::event_from_json;

    use super::*;

    const RENAMED: &str = "title: File renamed\nname: file_renamed\nid: base-1\nlogsource: {category: file_rename}\n\
        detection:\n  selection:\n    TargetFilename|exists: true\n  condition: selection\n";
    const BURST: &str = "title: Mass file renaming\nid: corr-1\nlevel: critical\n\
        correlation:\n  type: event_count\n  rules: [file_renamed]\n  group-by: [asset]\n  timespan: 1m\n  condition: {gte: 5}\n";
    const MARKER: &str = "title: Marker\nid: marker-1\nlogsource: {category: test}\n\
        detection:\n  selection:\n    message|contains: marker\n  condition: selection\n";

    fn sigma(files: &[(&str, &str)]) -> SigmaRules {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(path, text)| ((*path).to_owned(), (*text).to_owned()))
            .collect();
        let set = vigie_core::rule::load_rules(&files, &Map::new());
        assert!(set.rejected.is_empty(), "{:?}", set.rejected);
        SigmaRules::new(set)
    }

    #[test]
    fn correlation_windows_survive_a_reload_that_leaves_their_rules_unchanged() {
        let running = sigma(&[("a.yml", RENAMED), ("b.yml", BURST)]);
        let keep = |other: SigmaRules| other.correlation_inputs == running.correlation_inputs;
        assert!(keep(sigma(&[("a.yml", RENAMED), ("b.yml", BURST)])));
        assert!(
            keep(sigma(&[
                ("0.yml", MARKER),
                ("a.yml", RENAMED),
                ("moved/b.yml", &format!("\n{BURST}"))
            ])),
            "a new unrelated rule, a moved file: the same correlations"
        );
        assert!(!keep(sigma(&[
            ("a.yml", RENAMED),
            ("b.yml", &BURST.replace("gte: 5", "gte: 6"))
        ])));
        assert!(
            !keep(sigma(&[
                ("a.yml", &RENAMED.replace("base-1", "base-2")),
                ("b.yml", BURST)
            ])),
            "the counted rule now reports another id"
        );
        assert!(!keep(sigma(&[("a.yml", RENAMED)])));
    }

    #[test]
    fn a_batch_keeps_the_rules_it_was_detected_with_across_a_swap() {
        let rules = Rules::new(Vec::new(), sigma(&[("m.yml", MARKER)]));
        let event = event_from_json(
            json!({"client": "acme", "asset": "srv-1", "message": "a marker"}),
            1_000,
            "http",
        )
        .unwrap();
        let before = rules.detect_batch(vec![event.clone()]);
        rules.swap_sigma(sigma(&[("a.yml", RENAMED), ("m.yml", MARKER)]));
        let after = rules.detect_batch(vec![event.clone()]);
        assert_eq!(before.matched, vec![vec![0]]);
        assert_eq!(after.matched, vec![vec![1]], "the marker rule moved");
        for detected in [before, after] {
            let mut engine = detected
                .sigma
                .set
                .correlation_engine(CorrelationLimits::default());
            let signals =
                detected
                    .sigma
                    .set
                    .signals(&mut engine, &event, &detected.matched[0], None, None);
            assert_eq!(signals.len(), 1);
            assert_eq!(signals[0].rule, "marker-1");
        }
    }
}

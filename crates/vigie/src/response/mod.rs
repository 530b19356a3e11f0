//! The responder: what happens to an incident after the book has grouped its alerts —
//! business-service health, the computed priority, routing to a team, the escalation policy's
//! timers, silences and inhibition, the crisis triggers, and the notifications all of that
//! sends.
//!
//! It runs inside the pipeline's single writer, after the incident book, on every batch:
//! `react` reads the book's effects, applies its own commands to the book (priority, timeline
//! notes) and adds its rows — escalation state, crises, health, outbox notifications — to the
//! same `WriteBatch`, so one transaction records a step as fired together with the message it
//! sends. A restart therefore neither pages twice nor loses a page: an overdue step fires once,
//! late, on the first tick (`vigie_core::escalation`).
//!
//! Health of a business service comes from the client's live, firing alerts: a check's state
//! from the alert of its hard problem, an asset's from the worst of its alerts (a security alert
//! of severity critical or worse counts CRITICAL, error counts WARNING). Soft states do not
//! page, so they do not turn a service red either. A check in downtime raises no alert: the
//! supervision runtime tells the responder which checks are in a downtime with a hard problem
//! (`ResponseCommand::CheckDowntimes`), and a service that inherits downtimes shows them, red
//! and in downtime, without raising any incident's priority. The runtime tells its whole view
//! first thing after a start, and no health is computed before: a restart does not make such
//! a service read OK for a moment.
//!
//! Priority: impact is the highest of the touched assets' criticality, the criticality of the
//! business services those assets make not OK, and the floor of the client's contract; urgency
//! is the highest of the alerts' severity, of an urgent category (ransomware…) and of the
//! spread (that many assets within that long). The client's matrix gives P1–P5; each change is
//! written in the timeline with its reasons.
//!
//! Silences and inhibition hold back the messages of firing alerts: a step whose incident has
//! only muted firing alerts fires without sending, and says so in the timeline; what it held
//! is kept in the escalation record and sent when the mute ends, if the incident is still new.
//! Resolutions are always told, to everyone told before.

pub mod records;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vigie_core::crisis::{self, CrisisFired, IncidentFacts, TriggerCondition, TriggerState};
use vigie_core::escalation::{self, Escalation, Phase, Target};
use vigie_core::estate::{
    AssetKind, BusinessServiceDef, ChannelKind, ChannelSpec, Client, Estate, RateLimit, RouteFacts,
};
use vigie_core::event::Severity;
use vigie_core::incident::model::{
    Alert, AlertStatus, Incident, IncidentStatus, Level, TimelineKind,
};
use vigie_core::incident::{Effect, IncidentBook, IncidentCommand, Matrix};
use vigie_core::notify::silence::{self, InhibitRule, Muted};
use vigie_core::notify::{self as core_notify, NotifiedAlert};
use vigie_core::service::{self, Indicator, IndicatorState, Status};

use crate::notify::{self, Context, Destination, HttpFormat, Kind, Notification, Request};
use crate::store::response::{ResponseRows, ResponseState};
use records::{
    Crisis, CrisisStatus, EscalationRecord, HeldMessages, Notified, ServiceHealth, SilenceRecord,
};

/// A change the feed carries besides incidents, alerts and timeline entries.
pub struct FeedItem {
    pub client: String,
    pub topic: &'static str,
    pub body: Value,
}

/// What an API action asks of the responder (through the pipeline's writer, like incident
/// commands, so that muting and crises see one consistent state).
#[derive(Debug, Clone)]
pub enum ResponseCommand {
    CreateSilence(SilenceRecord),
    /// Ends a silence now (Alertmanager's expire).
    ExpireSilence {
        client: Option<String>,
        id: String,
    },
    CloseCrisis {
        client: Option<String>,
        id: i64,
        actor: String,
    },
    /// From the supervision runtime: checks that entered or left a downtime with a hard
    /// problem (business services that inherit downtimes show them).
    CheckDowntimes(Vec<CheckInDowntime>),
}

/// A check in an active downtime with a hard problem (`status`), or no longer (`None`).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckInDowntime {
    pub client: String,
    pub asset: String,
    pub check: String,
    pub status: Option<Status>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResponseError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
}

/// What a response command changed, for the API's answer.
#[derive(Debug, Clone)]
pub enum ResponseOutcome {
    Silence(SilenceRecord),
    Crisis(Crisis),
    /// Taken in; nothing to answer with.
    Done,
}

/// At most this many messages to one destination per window, unless its channel says
/// otherwise (`rate_limit`); the rest wait for one digest.
pub const RATE_LIMIT: u32 = 5;
pub const RATE_WINDOW_MS: i64 = 60_000;
/// How often the time-based crisis triggers are evaluated over every open incident.
const TRIGGER_SCAN_MS: i64 = 15_000;
/// How often the tick looks at every held message (a silence may have ended).
const HELD_SCAN_MS: i64 = 5_000;
/// Held messages a digest lists in full (it counts them all).
const DIGEST_LISTED: usize = 100;

/// Per-destination rate limits, so that a storm of incidents is a few messages and a digest,
/// not a message each. Kept in the store (`response_state`), so held messages survive a
/// restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throttle {
    buckets: BTreeMap<String, Bucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Bucket {
    destination: Destination,
    recipient: String,
    client: String,
    client_name: String,
    window_start_ms: i64,
    sent: u32,
    held: Vec<Held>,
    held_total: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Held {
    kind: Kind,
    incident_id: Option<i64>,
    title: String,
    priority: Option<String>,
    reason: String,
    assets: Vec<String>,
    alerts: Vec<NotifiedAlert>,
}

pub struct Responder {
    throttle: Throttle,
    /// Firing alerts from Prometheus by when they end without a re-send (Alertmanager's
    /// `endsAt`, default `resolve_timeout` after the last send), and each one's current end.
    /// By alert id: an id outlives its alert's tracking only until that end, and is then
    /// checked against the book.
    expiry: BTreeSet<(i64, i64)>,
    ends: HashMap<i64, i64>,
    escalations: BTreeMap<i64, EscalationRecord>,
    health: HashMap<String, BTreeMap<String, ServiceHealth>>,
    /// Per client, the checks in a downtime with a hard problem, by (asset, check), as the
    /// supervision runtime tells them; and the clients whose health is to be computed again
    /// for it at the end of the batch.
    in_downtime: HashMap<String, BTreeMap<(String, String), Status>>,
    downtime_moved: BTreeSet<String>,
    /// Whether the supervision runtime has told its view of the checks in downtime since the
    /// process started. Until it has, no business service's health is computed: a service
    /// that inherits downtimes would read OK for want of that view, and write that into its
    /// history. The first view recomputes every client's.
    downtimes_known: bool,
    health_deferred: bool,
    triggers: TriggerState,
    crises: BTreeMap<i64, Crisis>,
    silences: Vec<SilenceRecord>,
    next_crisis_id: i64,
    next_history_id: i64,
    next_notification_id: i64,
    public_url: String,
    estate_version: u64,
    /// When the time-based crisis triggers last looked at every open incident.
    last_trigger_scan_ms: i64,
    /// When the held messages of every client were last looked at.
    last_held_scan_ms: i64,
    /// Clients whose held messages are to be looked at in the next batch (a silence expired).
    held_recheck: BTreeSet<String>,
    /// Each client's business services, as of `estate_version`.
    services: HashMap<String, Arc<Vec<BusinessServiceDef>>>,
    /// The channels' own rate limits, by client and `limit_key` of their destination.
    limits: HashMap<(String, String), RateLimit>,
    /// What priority and the crisis triggers read of each live alert (`alert_signature`),
    /// and of each open incident (`incident_signature`), as of their last look: an incident
    /// whose alerts were only sent again (count and times moved) is not looked at again.
    alert_signatures: HashMap<i64, AlertFacts>,
    incident_signatures: HashMap<i64, u64>,
    /// The categories of the live alerts that have some not known by name (`alert_categories`).
    custom_categories: HashMap<i64, Vec<String>>,
}

/// What the responder keeps of a live alert between batches (see `alert_signatures`).
#[derive(Clone, Copy, Debug, PartialEq)]
struct AlertFacts {
    incident: i64,
    signature: u64,
    /// Its categories known by name, as bits of `KNOWN_CATEGORIES`: an incident's categories
    /// are the union of its alerts', and re-reading every alert's labels for each new alert
    /// of a large incident cost more than the rest of its intake.
    categories: u8,
}

/// What the supervision runtime told of the checks in downtime (see `take_downtime_view`).
#[derive(Default)]
pub struct DowntimeView {
    known: bool,
    in_downtime: HashMap<String, BTreeMap<(String, String), Status>>,
}

/// The responder's outputs for one batch.
#[derive(Default)]
pub struct Reaction {
    pub effects: Vec<Effect>,
    pub feed: Vec<FeedItem>,
    pub notifications: Vec<Notification>,
    /// The throttle changed in a way worth writing (messages held or a digest sent).
    pub throttled: bool,
}

impl Responder {
    pub fn restore(state: ResponseState, next_notification_id: i64, public_url: String) -> Self {
        Responder {
            throttle: state.throttle,
            expiry: BTreeSet::new(),
            ends: HashMap::new(),
            escalations: state
                .escalations
                .into_iter()
                .map(|record| (record.incident_id, record))
                .collect(),
            health: state.health.into_iter().fold(HashMap::new(), |mut map, h| {
                map.entry(h.client.clone())
                    .or_default()
                    .insert(h.service.clone(), h);
                map
            }),
            in_downtime: HashMap::new(),
            downtime_moved: BTreeSet::new(),
            downtimes_known: false,
            health_deferred: false,
            triggers: state.trigger_state,
            crises: state
                .open_crises
                .into_iter()
                .map(|crisis| (crisis.id, crisis))
                .collect(),
            silences: state.silences,
            next_crisis_id: state.next_crisis_id,
            next_history_id: state.next_history_id,
            next_notification_id,
            public_url: public_url.trim_end_matches('/').to_owned(),
            estate_version: u64::MAX,
            last_trigger_scan_ms: 0,
            last_held_scan_ms: 0,
            held_recheck: BTreeSet::new(),
            services: HashMap::new(),
            limits: HashMap::new(),
            alert_signatures: HashMap::new(),
            custom_categories: HashMap::new(),
            incident_signatures: HashMap::new(),
        }
    }

    /// Takes up the firing Prometheus alerts of a restored book, so that they end on time.
    pub fn watch_expiries(&mut self, book: &IncidentBook) {
        self.expiry.clear();
        self.ends.clear();
        let alerts: Vec<Alert> = book
            .incidents()
            .flat_map(|incident| book.alerts_of(incident.id))
            .cloned()
            .collect();
        for alert in &alerts {
            self.track_expiry(alert);
        }
    }

    /// Keeps what priority and the triggers read of a changed alert; whether that moved.
    fn remember(&mut self, alert: &Alert) -> bool {
        let signature = alert_signature(alert);
        if let Some(kept) = self.alert_signatures.get(&alert.id)
            && kept.signature == signature
            && kept.incident == alert.incident_id
        {
            // The signature covers every label `alert_categories` reads: nothing moved.
            return false;
        }
        let (categories, custom) = alert_categories(alert);
        if custom.is_empty() {
            self.custom_categories.remove(&alert.id);
        } else {
            self.custom_categories.insert(alert.id, custom);
        }
        let facts = AlertFacts {
            incident: alert.incident_id,
            signature,
            categories,
        };
        self.alert_signatures.insert(alert.id, facts);
        true
    }

    /// The alerts' categories (sorted names), from what was kept of each as of its last
    /// change; an alert not seen since the start is read from its labels.
    fn categories(&self, alerts: &[&Alert]) -> Vec<String> {
        let mut known = 0;
        let mut custom = BTreeSet::new();
        for alert in alerts {
            match self.alert_signatures.get(&alert.id) {
                Some(facts) => {
                    known |= facts.categories;
                    if let Some(others) = self.custom_categories.get(&alert.id) {
                        custom.extend(others.iter().cloned());
                    }
                }
                None => {
                    let (bits, others) = alert_categories(alert);
                    known |= bits;
                    custom.extend(others);
                }
            }
        }
        category_names(known, custom)
    }

    fn track_expiry(&mut self, alert: &Alert) {
        if &*alert.source != "alertmanager" {
            return;
        }
        let ends = match alert.status {
            AlertStatus::Firing => alert.labels.get("ends_at_ms").and_then(|v| v.as_i64()),
            AlertStatus::Resolved => None,
        };
        let old = self.ends.get(&alert.id).copied();
        if old == ends {
            return;
        }
        if let Some(old) = old {
            self.expiry.remove(&(old, alert.id));
            self.ends.remove(&alert.id);
        }
        if let Some(ends) = ends {
            self.expiry.insert((ends, alert.id));
            self.ends.insert(alert.id, ends);
        }
    }

    /// The resolutions of the Prometheus alerts whose `endsAt` passed without a re-send (as
    /// Alertmanager resolves them), for the writer to apply on its tick.
    pub fn expired_alerts(&mut self, book: &IncidentBook, now: i64) -> Vec<IncidentCommand> {
        let mut commands = Vec::new();
        while let Some(&(ends, id)) = self.expiry.first() {
            if ends > now {
                break;
            }
            self.expiry.pop_first();
            self.ends.remove(&id);
            // Only an alert still in the book, firing, and still the live one of its
            // fingerprint (not replaced by a successor) is resolved.
            let Some(alert) = book.alert(id) else {
                continue;
            };
            if alert.status != AlertStatus::Firing
                || book.live_alert_id(&alert.client, &alert.fingerprint) != Some(id)
            {
                continue;
            }
            commands.push(IncidentCommand::ResolveAlert {
                client: alert.client.to_string(),
                fingerprint: alert.fingerprint.to_string(),
                actor: "vigie".into(),
            });
        }
        commands
    }

    /// Hands the book each client's priority matrix.
    pub fn sync_estate(&mut self, estate: &Estate, book: &mut IncidentBook) {
        self.services.clear();
        self.limits.clear();
        for (id, client) in &estate.clients {
            for channel in &client.channels {
                if let (Some(limit), Some(destination)) =
                    (channel.rate_limit, channel_destination(channel))
                {
                    self.limits
                        .insert((id.clone(), limit_key(&destination)), limit);
                }
            }
            book.set_matrix(id, matrix_of(client));
            self.services
                .insert(id.clone(), Arc::new(client.business_services()));
        }
    }

    fn services_of(&self, client: &Client) -> Arc<Vec<BusinessServiceDef>> {
        self.services
            .get(&client.id)
            .cloned()
            .unwrap_or_else(|| Arc::new(client.business_services()))
    }

    /// Applies an API action; the rows go into `rows`.
    pub fn command(
        &mut self,
        command: ResponseCommand,
        estate: &Estate,
        book: &mut IncidentBook,
        now: i64,
        rows: &mut ResponseRows,
        out: &mut Reaction,
    ) -> Result<ResponseOutcome, ResponseError> {
        match command {
            ResponseCommand::CreateSilence(record) => {
                if estate.client(&record.client).is_none() {
                    return Err(ResponseError::NotFound(format!(
                        "client `{}`",
                        record.client
                    )));
                }
                record.compile().map_err(ResponseError::Invalid)?;
                if let Some(existing) = self.silences.iter_mut().find(|s| s.id == record.id) {
                    *existing = record.clone();
                } else {
                    self.silences.push(record.clone());
                }
                rows.silences.push(record.clone());
                out.feed.push(FeedItem {
                    client: record.client.clone(),
                    topic: "silence",
                    body: json!(record),
                });
                Ok(ResponseOutcome::Silence(record))
            }
            ResponseCommand::ExpireSilence { client, id } => {
                let silence = self
                    .silences
                    .iter_mut()
                    .find(|s| s.id == id && client.as_ref().is_none_or(|c| *c == s.client))
                    .ok_or_else(|| ResponseError::NotFound(format!("silence `{id}`")))?;
                if silence.ends_at_ms > now {
                    silence.ends_at_ms = now.max(silence.starts_at_ms + 1);
                }
                // What it held back goes out with this batch.
                self.held_recheck.insert(silence.client.clone());
                rows.silences.push(silence.clone());
                out.feed.push(FeedItem {
                    client: silence.client.clone(),
                    topic: "silence",
                    body: json!(silence),
                });
                Ok(ResponseOutcome::Silence(silence.clone()))
            }
            ResponseCommand::CloseCrisis { client, id, actor } => {
                let crisis = self
                    .crises
                    .get(&id)
                    .filter(|c| client.as_ref().is_none_or(|own| *own == c.client))
                    .cloned()
                    .ok_or_else(|| ResponseError::NotFound(format!("open crisis {id}")))?;
                let mut crisis = crisis;
                crisis.status = CrisisStatus::Closed;
                crisis.closed_ms = Some(now);
                crisis.closed_by = Some(actor.clone());
                self.crises.remove(&id);
                rows.crises.push(crisis.clone());
                if let Some(client) = estate.client(&crisis.client) {
                    // The beacon goes off once no crisis of the client is open.
                    if !self.crises.values().any(|c| c.client == crisis.client) {
                        for channel in beacons(client) {
                            if let Some(destination) = beacon_destination(channel, false) {
                                let context = self.crisis_context(client, &crisis, book, now);
                                self.send(
                                    Kind::BeaconOff,
                                    destination,
                                    format!("beacon {}", channel.id),
                                    context,
                                    now,
                                    out,
                                );
                            }
                        }
                    }
                }
                for incident in &crisis.incidents {
                    let text = format!("crisis {id} closed by {actor}");
                    self.note(book, *incident, TimelineKind::Crisis, text, now, out);
                }
                out.feed.push(FeedItem {
                    client: crisis.client.clone(),
                    topic: "crisis",
                    body: json!(crisis),
                });
                Ok(ResponseOutcome::Crisis(crisis))
            }
            ResponseCommand::CheckDowntimes(changes) => {
                self.downtimes_known = true;
                for change in changes {
                    let checks = self.in_downtime.entry(change.client.clone()).or_default();
                    let key = (change.asset, change.check);
                    match change.status {
                        Some(status) => checks.insert(key, status),
                        None => checks.remove(&key),
                    };
                    if checks.is_empty() {
                        self.in_downtime.remove(&change.client);
                    }
                    self.downtime_moved.insert(change.client);
                }
                Ok(ResponseOutcome::Done)
            }
        }
    }

    /// The supervision runtime's view of the checks in downtime, as told so far: kept across
    /// a rebuild of the responder from the store (`adopt_downtime_view`), since the runtime
    /// tells only what changes.
    pub fn take_downtime_view(&mut self) -> DowntimeView {
        DowntimeView {
            known: self.downtimes_known,
            in_downtime: std::mem::take(&mut self.in_downtime),
        }
    }

    pub fn adopt_downtime_view(&mut self, view: DowntimeView) {
        self.downtimes_known = view.known;
        self.in_downtime = view.in_downtime;
        self.health_deferred = true;
    }

    /// Reacts to one batch of the book's effects. `tick`: the once-a-second job, when overdue
    /// steps fire and the cross-client triggers are evaluated.
    #[allow(clippy::too_many_arguments)]
    pub fn react(
        &mut self,
        estate: &Estate,
        estate_version: u64,
        book: &mut IncidentBook,
        effects: &[Effect],
        tick: bool,
        now: i64,
        rows: &mut ResponseRows,
        out: &mut Reaction,
    ) {
        let estate_changed = estate_version != self.estate_version;
        if estate_changed {
            self.sync_estate(estate, book);
            // Criticalities, contracts and the matrix may have moved: every incident is looked
            // at again when next touched.
            self.incident_signatures.clear();
        }
        // What the book did in this batch.
        let mut alert_clients: BTreeSet<String> = BTreeSet::new();
        let mut touched: BTreeMap<i64, &Incident> = BTreeMap::new();
        let mut created: BTreeSet<i64> = BTreeSet::new();
        let mut reopened: BTreeSet<i64> = BTreeSet::new();
        let mut acknowledged: BTreeSet<i64> = BTreeSet::new();
        // Incidents whose priority or trigger inputs moved in this batch.
        let mut moved: BTreeSet<i64> = BTreeSet::new();
        for effect in effects {
            match effect {
                Effect::Alert(alert) => {
                    if !alert_clients.contains(&*alert.client) {
                        alert_clients.insert(alert.client.to_string());
                    }
                    self.track_expiry(alert);
                    if self.remember(alert) {
                        moved.insert(alert.incident_id);
                    }
                }
                Effect::Incident(incident) => {
                    touched.insert(incident.id, incident);
                    if is_open(incident.status) {
                        let signature = incident_signature(incident);
                        if self.incident_signatures.insert(incident.id, signature)
                            != Some(signature)
                        {
                            moved.insert(incident.id);
                        }
                    } else {
                        self.incident_signatures.remove(&incident.id);
                        moved.insert(incident.id);
                    }
                }
                Effect::Timeline(entry) => match entry.kind {
                    TimelineKind::Created => {
                        created.insert(entry.incident_id);
                    }
                    TimelineKind::Reopened => {
                        reopened.insert(entry.incident_id);
                    }
                    TimelineKind::Acknowledged => {
                        acknowledged.insert(entry.incident_id);
                    }
                    _ => {}
                },
            }
        }

        // 1. Business-service health.
        let downtime_moved = std::mem::take(&mut self.downtime_moved);
        let clients: Vec<String> = if !self.downtimes_known {
            self.health_deferred = true;
            Vec::new()
        } else if estate_changed || std::mem::take(&mut self.health_deferred) {
            estate.clients.keys().cloned().collect()
        } else {
            alert_clients.union(&downtime_moved).cloned().collect()
        };
        let mut health_changed: BTreeSet<String> = BTreeSet::new();
        for id in &clients {
            if let Some(client) = estate.client(id)
                && self.compute_health(client, book, now, rows, out)
            {
                health_changed.insert(id.clone());
            }
        }
        self.estate_version = estate_version;

        // 2. Qualification: a new incident joins an open one of the same assets from the other
        // side (security and supervision); else, an open incident upstream in the topology is
        // named as its probable root cause.
        let mut merged_into: BTreeSet<i64> = BTreeSet::new();
        for id in created.clone() {
            if let Some(into) = self.qualify(estate, book, id, now, out) {
                created.remove(&id);
                merged_into.insert(into);
            }
        }

        // 3. Priority, for the incidents whose inputs moved and those of clients whose health
        // moved.
        let mut candidates: BTreeSet<i64> = touched
            .values()
            .filter(|i| is_open(i.status) && moved.contains(&i.id))
            .map(|i| i.id)
            .collect();
        if !health_changed.is_empty() {
            for incident in book.incidents() {
                if health_changed.contains(&incident.client) && is_open(incident.status) {
                    candidates.insert(incident.id);
                }
            }
        }
        candidates.extend(&merged_into);
        candidates.retain(|id| book.incident(*id).is_some_and(|i| is_open(i.status)));
        for id in &candidates {
            self.prioritize(estate, book, *id, created.contains(id), now, out);
        }

        // 4. Escalation.
        let mut due: BTreeSet<i64> = BTreeSet::new();
        for id in created.iter().chain(&reopened) {
            if let Some(incident) = book.incident(*id).cloned()
                && is_open(incident.status)
                && let Some(client) = estate.client(&incident.client)
            {
                self.start_escalation(client, book, &incident, now, rows, out);
                due.insert(*id);
            }
        }
        for id in &acknowledged {
            if let Some(record) = self.escalations.get_mut(id) {
                record
                    .escalation
                    .apply(escalation::Command::Acknowledge, now);
                // Someone has it: what was held back is no longer news.
                record.held = None;
                rows.escalations.push(record.clone());
            }
        }
        for incident in touched.values() {
            match incident.status {
                IncidentStatus::Resolved | IncidentStatus::Closed => {
                    self.resolve_escalation(estate, book, incident, now, rows, out);
                }
                _ => {
                    if let Some(record) = self.escalations.get_mut(&incident.id) {
                        let priority = incident.priority.level() as u8;
                        if record.escalation.priority != priority {
                            record
                                .escalation
                                .apply(escalation::Command::SetPriority(priority), now);
                            rows.escalations.push(record.clone());
                        }
                    }
                }
            }
        }
        if tick {
            due.extend(
                self.escalations
                    .values()
                    .filter(|r| r.escalation.next_at_ms.is_some_and(|at| at <= now))
                    .map(|r| r.incident_id),
            );
        }
        for id in due {
            self.advance(estate, book, id, now, rows, out);
        }
        // Held messages: looked at again for the clients whose alerts moved or whose silence
        // was expired, and on the tick (silences end with time) at most every `HELD_SCAN_MS`.
        let held_scan = tick && now.saturating_sub(self.last_held_scan_ms) >= HELD_SCAN_MS;
        if held_scan {
            self.last_held_scan_ms = now;
        }
        let mut recheck = std::mem::take(&mut self.held_recheck);
        recheck.extend(alert_clients.iter().cloned());
        self.release_held(estate, book, &recheck, held_scan, now, rows, out);

        // 5. Crisis triggers: the incidents of this batch at once, every incident on the tick.
        // The time-based triggers need every open incident: every 15 s is soon enough for
        // triggers written in minutes, and keeps the once-a-second tick cheap.
        let scan = tick && now.saturating_sub(self.last_trigger_scan_ms) >= TRIGGER_SCAN_MS;
        if scan {
            self.last_trigger_scan_ms = now;
            // Alerts and incidents the book no longer holds open are forgotten.
            self.incident_signatures
                .retain(|id, _| book.incident(*id).is_some_and(|i| is_open(i.status)));
            let open = &self.incident_signatures;
            self.alert_signatures
                .retain(|_, facts| open.contains_key(&facts.incident));
            let live = &self.alert_signatures;
            self.custom_categories.retain(|id, _| live.contains_key(id));
        }
        let facts: Vec<IncidentFacts> = if scan {
            // Only time tells for `unresolved` and `same_attack`: the tick looks at the
            // clients that have one (every client when a cross-client trigger exists).
            let timed = |client: &Client| {
                client
                    .crisis_triggers
                    .iter()
                    .any(|t| !matches!(t.compile().condition, TriggerCondition::Category { .. }))
            };
            let cross_client = estate.clients.values().any(|c| {
                c.crisis_triggers
                    .iter()
                    .any(|t| matches!(t.compile().condition, TriggerCondition::SameAttack { .. }))
            });
            let watched: BTreeSet<&str> = estate
                .clients
                .values()
                .filter(|c| cross_client || timed(c))
                .map(|c| c.id.as_str())
                .collect();
            book.incidents()
                .filter(|i| is_open(i.status) && watched.contains(i.client.as_str()))
                .map(|i| self.facts(estate, book, i))
                .collect()
        } else {
            // An incident whose alerts were only sent again has the facts it had: what time
            // changes in them is looked at by the scan.
            touched
                .keys()
                .filter(|id| moved.contains(id) || merged_into.contains(id))
                .filter_map(|id| book.incident(*id))
                .filter(|i| is_open(i.status))
                .map(|i| self.facts(estate, book, i))
                .collect()
        };
        if !facts.is_empty() {
            self.evaluate_triggers(estate, book, &facts, scan, now, rows, out);
        }
        if tick {
            self.flush_digests(now, out);
        }
        if out.throttled {
            rows.throttle = Some(self.throttle.clone());
            out.throttled = false;
        }
    }

    // ---- health -----------------------------------------------------------------------------

    /// Recomputes a client's business services; true when a status changed.
    fn compute_health(
        &mut self,
        client: &Client,
        book: &IncidentBook,
        now: i64,
        rows: &mut ResponseRows,
        out: &mut Reaction,
    ) -> bool {
        let definitions = self.services_of(client);
        if definitions.is_empty() && !self.health.contains_key(&client.id) {
            return false;
        }
        let states = indicator_states(book.live_alerts_of(&client.id));
        let no_downtimes = BTreeMap::new();
        let in_downtime = self.in_downtime.get(&client.id).unwrap_or(&no_downtimes);
        let services: Vec<service::BusinessService> =
            definitions.iter().map(|d| d.service.clone()).collect();
        let computed = match service::evaluate(&services, |indicator| {
            Some(match indicator {
                Indicator::Asset(asset) => {
                    let alerted = states.assets.get(asset).copied().unwrap_or(Status::Ok);
                    // The worst of its checks in downtime: the asset is in downtime when that
                    // is what makes it worse than its alerts do.
                    let quiet = in_downtime
                        .range((asset.clone(), String::new())..)
                        .take_while(|((a, _), _)| a == asset)
                        .map(|(_, status)| *status)
                        .max()
                        .unwrap_or(Status::Ok);
                    IndicatorState {
                        status: alerted.max(quiet),
                        in_downtime: quiet > alerted,
                    }
                }
                Indicator::Check { asset, check } => {
                    let key = (asset.clone(), check.clone());
                    let alerted = states.checks.get(&key).copied().unwrap_or(Status::Ok);
                    match in_downtime.get(&key) {
                        Some(quiet) => IndicatorState {
                            status: alerted.max(*quiet),
                            in_downtime: true,
                        },
                        None => IndicatorState {
                            status: alerted,
                            in_downtime: false,
                        },
                    }
                }
                // Computed by `evaluate` itself, children first.
                Indicator::Service(_) => return None,
            })
        }) {
            Ok(computed) => computed,
            Err(errors) => {
                // The estate validates services before it is accepted: this is a bug guard.
                tracing::error!(client = %client.id, ?errors, "business services do not compute");
                return false;
            }
        };
        let before = self.health.entry(client.id.clone()).or_default();
        let mut changed = false;
        for definition in definitions.iter() {
            let id = &definition.service.id;
            let Some(health) = computed.get(id) else {
                continue;
            };
            let causes: Vec<String> = health.causes.iter().map(Indicator::describe).collect();
            let previous = before.get(id);
            let status_changed = previous.is_none_or(|p| p.status != health.status);
            let record = ServiceHealth {
                client: client.id.clone(),
                service: id.clone(),
                name: definition.service.name.clone(),
                criticality: definition.criticality,
                status: health.status,
                health: health.health,
                in_downtime: health.in_downtime,
                causes,
                since_ms: if status_changed {
                    now
                } else {
                    previous.map_or(now, |p| p.since_ms)
                },
                updated_ms: now,
            };
            let same = previous.is_some_and(|p| {
                p.status == record.status
                    && p.causes == record.causes
                    && p.health == record.health
                    && p.in_downtime == record.in_downtime
                    && p.name == record.name
                    && p.criticality == record.criticality
            });
            if same {
                continue;
            }
            if status_changed {
                changed = true;
                rows.history.push((self.next_history_id, record.clone()));
                self.next_history_id += 1;
            }
            rows.health.push(record.clone());
            out.feed.push(FeedItem {
                client: client.id.clone(),
                topic: "business_service",
                body: json!(record),
            });
            before.insert(id.clone(), record);
        }
        changed
    }

    // ---- qualification ----------------------------------------------------------------------

    /// Merges a new incident into an open one of the client that shares an asset, signalled
    /// within the client's grouping window by the other side (a security alert joins the
    /// supervision incident of its asset, and the reverse); returns the incident it joined.
    /// Otherwise names the probable root cause: an open supervision incident on an asset the
    /// new incident's assets depend on.
    fn qualify(
        &mut self,
        estate: &Estate,
        book: &mut IncidentBook,
        id: i64,
        now: i64,
        out: &mut Reaction,
    ) -> Option<i64> {
        let incident = book.incident(id)?.clone();
        let client = estate.client(&incident.client)?;
        if incident.assets.is_empty() {
            return None;
        }
        let supervision =
            |book: &IncidentBook, id: i64| book.alerts_of(id).any(|a| &*a.source == "supervision");
        let side = supervision(book, id);
        let window = client.incident_grouping.window_ms;
        let partner = book
            .incidents()
            .filter(|other| {
                other.id != id
                    && other.client == incident.client
                    && is_open(other.status)
                    && other.last_signal_ms.abs_diff(incident.last_signal_ms)
                        <= window.unsigned_abs()
                    && other.assets.iter().any(|a| incident.assets.contains(a))
            })
            .map(|other| other.id)
            .filter(|other| supervision(book, *other) != side)
            .max();
        if let Some(into) = partner {
            let shared: Vec<&String> = incident
                .assets
                .iter()
                .filter(|a| book.incident(into).is_some_and(|i| i.assets.contains(a)))
                .collect();
            let merged = self.apply(
                book,
                IncidentCommand::Merge {
                    into,
                    from: id,
                    actor: "vigie".into(),
                },
                now,
                out,
            );
            if merged {
                let text = format!(
                    "qualified: {} alert on {} joined this {} incident (same asset within {})",
                    if side { "a supervision" } else { "a security" },
                    shared
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if side { "security" } else { "supervision" },
                    vigie_core::estate::format_duration(window)
                );
                self.note(book, into, TimelineKind::Merged, text, now, out);
                return Some(into);
            }
            return None;
        }
        // Root cause: the nearest open supervision incident upstream.
        let upstream = upstream_of(client, &incident.assets);
        let cause = book
            .incidents()
            .filter(|other| {
                other.id != id
                    && other.client == incident.client
                    && is_open(other.status)
                    && other.assets.iter().any(|a| upstream.contains_key(a))
            })
            .find(|other| supervision(book, other.id))
            .map(|other| (other.id, other.title.clone(), other.assets.clone()));
        if let Some((cause_id, title, assets)) = cause {
            let (asset, through) = assets
                .iter()
                .find_map(|a| upstream.get(a).map(|child| (a.clone(), child.clone())))
                .unwrap_or_default();
            let text = format!(
                "probable root cause: incident {cause_id} ({title}): {through} depends on {asset}"
            );
            self.note(book, id, TimelineKind::Merged, text, now, out);
            self.note(
                book,
                cause_id,
                TimelineKind::Merged,
                format!("probably causes incident {id} ({})", incident.title),
                now,
                out,
            );
        }
        None
    }

    // ---- priority ---------------------------------------------------------------------------

    fn prioritize(
        &mut self,
        estate: &Estate,
        book: &mut IncidentBook,
        id: i64,
        created: bool,
        now: i64,
        out: &mut Reaction,
    ) {
        let Some(incident) = book.incident(id).cloned() else {
            return;
        };
        let Some(client) = estate.client(&incident.client) else {
            return;
        };
        let policy = client.priority_policy();
        let alerts: Vec<&Alert> = book.alerts_of(id).collect();
        let mut impact = (Level::Low, Vec::new());
        let raise = |slot: &mut (Level, Vec<String>), level: Level, why: String| {
            if level < slot.0 {
                *slot = (level, vec![why]);
            } else if level == slot.0 && slot.1.len() < 4 {
                slot.1.push(why);
            }
        };
        // Impact: assets, business services they make not OK, contract.
        let mut any_asset = false;
        for asset_id in &incident.assets {
            if let Some(asset) = client.assets.iter().find(|a| a.id == *asset_id) {
                any_asset = true;
                raise(
                    &mut impact,
                    vigie_core::incident::impact_from_criticality(Some(asset.criticality)),
                    format!("asset {} criticality {}", asset.id, asset.criticality),
                );
            }
        }
        if !any_asset {
            raise(&mut impact, Level::Medium, "no known asset".into());
        }
        let services = self.services_of(client);
        if let Some(healths) = self.health.get(&client.id) {
            for health in healths.values() {
                // A service in an inherited downtime is planned work: it does not page.
                if health.status == Status::Ok || health.in_downtime {
                    continue;
                }
                let involved =
                    incident.assets.iter().any(|asset| {
                        health
                            .causes
                            .iter()
                            .any(|cause| cause.contains(&format!("`{asset}`")))
                    }) || service_depends_on(&services, &health.service, &incident.assets);
                if involved {
                    raise(
                        &mut impact,
                        vigie_core::incident::impact_from_criticality(Some(health.criticality)),
                        format!(
                            "business service {} is {} (criticality {})",
                            health.name,
                            health.status.as_str(),
                            health.criticality
                        ),
                    );
                }
            }
        }
        if let Some(floor) = policy.impact_floor(client.contract.as_deref()) {
            raise(
                &mut impact,
                floor,
                format!(
                    "contract {}",
                    client.contract.as_deref().unwrap_or_default()
                ),
            );
        }
        // Urgency: severity, categories, spread.
        let mut urgency = (Level::Low, Vec::new());
        let firing: Vec<&&Alert> = alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .collect();
        for alert in if firing.is_empty() {
            alerts.iter().collect::<Vec<_>>()
        } else {
            firing
        } {
            // Only what `raise` keeps is written out: an incident may hold thousands of alerts.
            let level = vigie_core::incident::urgency_from_severity(alert.severity);
            if level < urgency.0 || (level == urgency.0 && urgency.1.len() < 4) {
                raise(
                    &mut urgency,
                    level,
                    format!("{} ({})", alert.title, alert.severity.as_str()),
                );
            }
        }
        let categories = self.categories(&alerts);
        for category in &categories {
            if policy
                .urgent_categories
                .iter()
                .any(|c| c.eq_ignore_ascii_case(category))
            {
                raise(&mut urgency, Level::High, format!("category {category}"));
            }
        }
        let spread = spread_of(&alerts, policy.spread_window_ms);
        if policy.spread_assets > 0 && spread >= policy.spread_assets {
            raise(
                &mut urgency,
                Level::High,
                format!(
                    "{spread} assets within {}",
                    vigie_core::estate::format_duration(policy.spread_window_ms)
                ),
            );
        }
        let reason = format!(
            "impact {} ({}), urgency {} ({})",
            level_str(impact.0),
            impact.1.join(", "),
            level_str(urgency.0),
            urgency.1.join(", ")
        );
        let changed = self.apply(
            book,
            IncidentCommand::SetPriority {
                incident: id,
                impact: impact.0,
                urgency: urgency.0,
                reason: reason.clone(),
            },
            now,
            out,
        );
        if created && !changed {
            let priority = book.incident(id).map_or("?", |i| i.priority.as_str());
            self.note(
                book,
                id,
                TimelineKind::PriorityChanged,
                format!("priority {priority}: {reason}"),
                now,
                out,
            );
        }
    }

    // ---- escalation -------------------------------------------------------------------------

    fn start_escalation(
        &mut self,
        client: &Client,
        book: &mut IncidentBook,
        incident: &Incident,
        now: i64,
        rows: &mut ResponseRows,
        out: &mut Reaction,
    ) {
        let alerts: Vec<&Alert> = book.alerts_of(incident.id).collect();
        let categories = self.categories(&alerts);
        let sources: Vec<String> = alerts
            .iter()
            .map(|a| a.source.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let assets: Vec<_> = incident
            .assets
            .iter()
            .filter_map(|id| client.assets.iter().find(|a| a.id == *id))
            .collect();
        let facts = RouteFacts {
            categories: &categories,
            asset_tags: assets
                .iter()
                .flat_map(|a| a.tags.iter().map(String::as_str))
                .collect(),
            asset_kinds: assets.iter().map(|a| a.kind).collect::<Vec<AssetKind>>(),
            sources: &sources,
            priority: incident.priority.level() as u8,
        };
        let Some(route) = client.route(&facts) else {
            if !client.routing.is_empty() {
                self.note(
                    book,
                    incident.id,
                    TimelineKind::Notified,
                    "no routing rule matches: nobody is paged".into(),
                    now,
                    out,
                );
            }
            return;
        };
        let Some(policy) = client
            .escalation_policies
            .iter()
            .find(|p| p.id == route.policy)
        else {
            return;
        };
        let escalation = Escalation::start(policy.compile(), incident.priority.level() as u8, now);
        let record = EscalationRecord {
            incident_id: incident.id,
            client: client.id.clone(),
            team: route.team.clone(),
            policy: policy.id.clone(),
            level: 1,
            escalation,
            notified: self
                .escalations
                .get(&incident.id)
                .map(|r| r.notified.clone())
                .unwrap_or_default(),
            held: None,
        };
        self.note(
            book,
            incident.id,
            TimelineKind::Escalated,
            format!(
                "routed to team {} with escalation policy {}",
                route.team,
                policy.display_name()
            ),
            now,
            out,
        );
        rows.escalations.push(record.clone());
        self.escalations.insert(incident.id, record);
    }

    /// Fires what is due of an incident's escalation.
    fn advance(
        &mut self,
        estate: &Estate,
        book: &mut IncidentBook,
        id: i64,
        now: i64,
        rows: &mut ResponseRows,
        out: &mut Reaction,
    ) {
        let Some(mut record) = self.escalations.remove(&id) else {
            return;
        };
        let Some(client) = estate.client(&record.client) else {
            self.escalations.insert(id, record);
            return;
        };
        let in_hours = |t: i64| client.business_hours.as_ref().is_none_or(|h| h.contains(t));
        let effects = record
            .escalation
            .apply_with(escalation::Command::Tick, now, &in_hours);
        if effects.is_empty() {
            self.escalations.insert(id, record);
            return;
        }
        let Some(incident) = book.incident(id).cloned() else {
            self.escalations.insert(id, record);
            return;
        };
        for effect in effects {
            match effect {
                escalation::Effect::Notify {
                    step,
                    round,
                    targets,
                    reescalation,
                    due_ms,
                } => {
                    let late = now - due_ms;
                    let mut reason = if step == 0 && round == 0 && !reescalation {
                        format!(
                            "new {} incident, policy {} step 1",
                            incident.priority.as_str(),
                            record.policy
                        )
                    } else if reescalation {
                        format!(
                            "acknowledged but not resolved: re-escalated, policy {} step {}",
                            record.policy,
                            step + 1
                        )
                    } else {
                        format!(
                            "not acknowledged: policy {} step {}{}",
                            record.policy,
                            step + 1,
                            if round > 0 {
                                format!(", round {}", round + 1)
                            } else {
                                String::new()
                            }
                        )
                    };
                    if late > 2_000 {
                        reason.push_str(&format!(
                            " (due {} earlier)",
                            vigie_core::estate::format_duration(late / 1000 * 1000)
                        ));
                    }
                    let kind = if reescalation {
                        Kind::Reescalated
                    } else if step == 0 && round == 0 {
                        Kind::Triggered
                    } else {
                        Kind::Escalated
                    };
                    let muted = self.muted(client, book, &incident, now);
                    let mut names = Vec::new();
                    for target in &targets {
                        if let Target::Team(team) = target
                            && let Some(team) = client.teams.iter().find(|t| t.id == *team)
                        {
                            record.level = record.level.max(team.level);
                        }
                        let (name, destinations) = resolve_target(client, target, now);
                        if destinations.is_empty() {
                            self.note(
                                book,
                                id,
                                TimelineKind::Notified,
                                format!("{name}: nobody to notify"),
                                now,
                                out,
                            );
                            continue;
                        }
                        names.push(name.clone());
                        for (recipient, destination) in destinations {
                            if muted.is_some() {
                                let held = record.held.get_or_insert_with(|| HeldMessages {
                                    kind,
                                    reason: reason.clone(),
                                    since_ms: now,
                                    destinations: Vec::new(),
                                });
                                held.kind = kind;
                                held.reason.clone_from(&reason);
                                if !held
                                    .destinations
                                    .iter()
                                    .any(|n| n.destination == destination)
                                {
                                    held.destinations.push(Notified {
                                        recipient: recipient.clone(),
                                        destination: destination.clone(),
                                    });
                                }
                            } else {
                                let context = self
                                    .incident_context(client, book, &incident, &reason, &recipient);
                                self.send(
                                    kind,
                                    destination.clone(),
                                    recipient.clone(),
                                    context,
                                    now,
                                    out,
                                );
                                // Told now: not told again when the held messages go.
                                if let Some(held) = &mut record.held {
                                    held.destinations.retain(|n| n.destination != destination);
                                    if held.destinations.is_empty() {
                                        record.held = None;
                                    }
                                }
                            }
                            if !record.notified.iter().any(|n| n.destination == destination) {
                                record.notified.push(Notified {
                                    recipient,
                                    destination,
                                });
                            }
                        }
                    }
                    let text = match &muted {
                        None => format!("notified {}: {reason}", names.join(", ")),
                        Some(why) => format!(
                            "{reason}: {} not notified, {why} (held until it no longer is)",
                            names.join(", ")
                        ),
                    };
                    self.note(book, id, TimelineKind::Escalated, text, now, out);
                }
                escalation::Effect::Skipped { step, round } => {
                    let text = format!(
                        "policy {} step {} skipped (round {}): its condition does not hold",
                        record.policy,
                        step + 1,
                        round + 1
                    );
                    self.note(book, id, TimelineKind::Escalated, text, now, out);
                }
                escalation::Effect::Exhausted => {
                    let text = format!(
                        "policy {} exhausted: every step fired without an acknowledgement",
                        record.policy
                    );
                    self.note(book, id, TimelineKind::Escalated, text, now, out);
                }
                escalation::Effect::Stopped { .. } => {}
            }
        }
        rows.escalations.push(record.clone());
        self.escalations.insert(id, record);
    }

    /// Sends the held messages of the incidents no longer muted (of `clients`, or of every
    /// client with `all`), if they are still new: as Alertmanager sends an inhibited or
    /// silenced alert's notification once the mute ends. An incident acknowledged or resolved
    /// meanwhile drops them.
    #[allow(clippy::too_many_arguments)]
    fn release_held(
        &mut self,
        estate: &Estate,
        book: &mut IncidentBook,
        clients: &BTreeSet<String>,
        all: bool,
        now: i64,
        rows: &mut ResponseRows,
        out: &mut Reaction,
    ) {
        let ids: Vec<i64> = self
            .escalations
            .values()
            .filter(|r| r.held.is_some() && (all || clients.contains(&r.client)))
            .map(|r| r.incident_id)
            .collect();
        for id in ids {
            let Some(incident) = book.incident(id).cloned() else {
                continue;
            };
            let Some(client) = estate.client(&incident.client) else {
                continue;
            };
            if incident.status == IncidentStatus::New
                && self.muted(client, book, &incident, now).is_some()
            {
                continue;
            }
            let Some(mut record) = self.escalations.remove(&id) else {
                continue;
            };
            let held = record
                .held
                .take()
                .expect("invariant: selected for its held messages");
            if incident.status == IncidentStatus::New {
                let mut names: Vec<&str> = Vec::new();
                for notified in &held.destinations {
                    let context = self.incident_context(
                        client,
                        book,
                        &incident,
                        &held.reason,
                        &notified.recipient,
                    );
                    self.send(
                        held.kind,
                        notified.destination.clone(),
                        notified.recipient.clone(),
                        context,
                        now,
                        out,
                    );
                    if !names.contains(&notified.recipient.as_str()) {
                        names.push(&notified.recipient);
                    }
                }
                let text = format!(
                    "notified {}: {} (held back {} while muted)",
                    names.join(", "),
                    held.reason,
                    vigie_core::estate::format_duration((now - held.since_ms) / 1000 * 1000)
                );
                self.note(book, id, TimelineKind::Escalated, text, now, out);
            }
            rows.escalations.push(record.clone());
            self.escalations.insert(id, record);
        }
    }

    fn resolve_escalation(
        &mut self,
        estate: &Estate,
        book: &mut IncidentBook,
        incident: &Incident,
        now: i64,
        rows: &mut ResponseRows,
        out: &mut Reaction,
    ) {
        let closed = incident.status == IncidentStatus::Closed;
        let Some(mut record) = self.escalations.remove(&incident.id) else {
            return;
        };
        if record.escalation.phase != Phase::Resolved {
            record.escalation.apply(escalation::Command::Resolve, now);
            // Resolutions are always told, silenced or not, to everyone told before.
            if let Some(client) = estate.client(&incident.client) {
                let reason = "resolved".to_owned();
                for notified in record.notified.clone() {
                    let context =
                        self.incident_context(client, book, incident, &reason, &notified.recipient);
                    self.send(
                        Kind::Resolved,
                        notified.destination,
                        notified.recipient,
                        context,
                        now,
                        out,
                    );
                }
            }
        }
        if closed {
            rows.forget_escalations.push(incident.id);
        } else {
            rows.escalations.push(record.clone());
            self.escalations.insert(incident.id, record);
        }
    }

    /// Why the incident's messages are held back, if every firing alert of it is muted.
    fn muted(
        &self,
        client: &Client,
        book: &IncidentBook,
        incident: &Incident,
        now: i64,
    ) -> Option<String> {
        let mut silences: Vec<silence::Silence> = client.silences();
        silences.extend(
            self.silences
                .iter()
                .filter(|s| s.client == client.id)
                .filter_map(|s| s.compile().ok()),
        );
        let inhibit: Vec<InhibitRule> = client.inhibit_rules();
        if silences.is_empty() && inhibit.is_empty() {
            return None;
        }
        let firing_labels: Vec<BTreeMap<String, String>> = book
            .live_alerts_of(&client.id)
            .filter(|a| a.status == AlertStatus::Firing)
            .map(|a| alert_labels(a, client))
            .collect();
        let firing_refs: Vec<&BTreeMap<String, String>> = firing_labels.iter().collect();
        let mut reasons = BTreeSet::new();
        let mut any = false;
        for alert in book.alerts_of(incident.id) {
            if alert.status != AlertStatus::Firing {
                continue;
            }
            any = true;
            let labels = alert_labels(alert, client);
            match silence::muted(&labels, &silences, &inhibit, &firing_refs, now) {
                None => return None,
                Some(Muted::Silenced { silence }) => {
                    reasons.insert(format!("silenced by {silence}"));
                }
                Some(Muted::Inhibited) => {
                    reasons.insert("inhibited".to_owned());
                }
            }
        }
        any.then(|| reasons.into_iter().collect::<Vec<_>>().join(", "))
    }

    // ---- crisis -----------------------------------------------------------------------------

    fn facts(&self, estate: &Estate, book: &IncidentBook, incident: &Incident) -> IncidentFacts {
        let alerts: Vec<&Alert> = book.alerts_of(incident.id).collect();
        let client = estate.client(&incident.client);
        let max_criticality = incident
            .assets
            .iter()
            .filter_map(|id| client?.assets.iter().find(|a| a.id == *id))
            .map(|a| a.criticality)
            .max();
        IncidentFacts {
            client: incident.client.clone(),
            id: incident.id,
            priority: incident.priority.level() as u8,
            open: is_open(incident.status),
            opened_ms: incident.created_ms,
            level: self.escalations.get(&incident.id).map_or(1, |r| r.level),
            categories: self.categories(&alerts),
            rules: last_fired_rules(&alerts),
            max_criticality,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate_triggers(
        &mut self,
        estate: &Estate,
        book: &mut IncidentBook,
        facts: &[IncidentFacts],
        tick: bool,
        now: i64,
        rows: &mut ResponseRows,
        out: &mut Reaction,
    ) {
        let mut fired_any = false;
        let clients: BTreeSet<&str> = if tick {
            estate.clients.keys().map(String::as_str).collect()
        } else {
            facts.iter().map(|f| f.client.as_str()).collect()
        };
        for client_id in clients {
            let Some(client) = estate.client(client_id) else {
                continue;
            };
            let triggers: Vec<crisis::CrisisTrigger> = client
                .crisis_triggers
                .iter()
                .map(|t| t.compile())
                .filter(|t| tick || !matches!(t.condition, TriggerCondition::SameAttack { .. }))
                .collect();
            if triggers.is_empty() {
                continue;
            }
            // Single-client triggers see this client's incidents; the cross-client one all.
            let fired = crisis::evaluate(&triggers, facts, &mut self.triggers, now);
            for firing in fired.into_iter().filter(|f| f.client == client.id) {
                fired_any = true;
                self.open_crisis(client, &triggers, firing, book, now, rows, out);
            }
        }
        if fired_any {
            rows.trigger_state = Some(self.triggers.clone());
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn open_crisis(
        &mut self,
        client: &Client,
        triggers: &[crisis::CrisisTrigger],
        firing: CrisisFired,
        book: &mut IncidentBook,
        now: i64,
        rows: &mut ResponseRows,
        out: &mut Reaction,
    ) {
        // One open crisis per client gathers what fires while it is open.
        if let Some(open) = self
            .crises
            .values_mut()
            .find(|c| c.client == client.id && c.status == CrisisStatus::Open)
        {
            let mut added = Vec::new();
            for id in &firing.incidents {
                if !open.incidents.contains(id) {
                    open.incidents.push(*id);
                    added.push(*id);
                }
            }
            let crisis_id = open.id;
            rows.crises.push(open.clone());
            for id in added {
                let text = format!(
                    "joined crisis {crisis_id}: trigger {} — {}",
                    firing.trigger, firing.reason
                );
                self.note(book, id, TimelineKind::Crisis, text, now, out);
            }
            return;
        }
        let id = self.next_crisis_id;
        self.next_crisis_id += 1;
        let crisis = Crisis {
            id,
            client: client.id.clone(),
            trigger: firing.trigger.clone(),
            trigger_name: triggers
                .iter()
                .find(|t| t.id == firing.trigger)
                .map_or_else(|| firing.trigger.clone(), |t| t.name.clone()),
            reason: firing.reason.clone(),
            incidents: firing.incidents.clone(),
            status: CrisisStatus::Open,
            opened_ms: now,
            closed_ms: None,
            closed_by: None,
        };
        for incident in &crisis.incidents {
            let text = format!(
                "crisis {id} opened: {} — {}",
                crisis.trigger_name, crisis.reason
            );
            self.note(book, *incident, TimelineKind::Crisis, text, now, out);
        }
        for channel in beacons(client) {
            if let Some(destination) = beacon_destination(channel, true) {
                let context = self.crisis_context(client, &crisis, book, now);
                self.send(
                    Kind::BeaconOn,
                    destination,
                    format!("beacon {}", channel.id),
                    context,
                    now,
                    out,
                );
            }
        }
        let mut addressed: Vec<(String, Vec<(String, Destination)>)> = client
            .crisis
            .notify
            .iter()
            .map(|target| resolve_target(client, &target.target(), now))
            .collect();
        for channel_id in &client.crisis.channels {
            let name = format!("channel {channel_id}");
            let destinations = client
                .channels
                .iter()
                .filter(|c| c.id == *channel_id)
                .filter_map(channel_destination)
                .map(|d| (name.clone(), d))
                .collect();
            addressed.push((name, destinations));
        }
        for (name, destinations) in addressed {
            if destinations.is_empty() {
                tracing::warn!(client = %client.id, %name, "crisis: nobody to notify");
            }
            for (recipient, destination) in destinations {
                let context = self.crisis_context(client, &crisis, book, now);
                self.send(
                    Kind::CrisisOpened,
                    destination,
                    recipient,
                    context,
                    now,
                    out,
                );
            }
        }
        out.feed.push(FeedItem {
            client: client.id.clone(),
            topic: "crisis",
            body: json!(crisis),
        });
        rows.crises.push(crisis.clone());
        self.crises.insert(id, crisis);
    }

    // ---- messages ---------------------------------------------------------------------------

    fn send(
        &mut self,
        kind: Kind,
        destination: Destination,
        recipient: String,
        mut context: Context,
        now: i64,
        out: &mut Reaction,
    ) {
        context.recipient = recipient;
        let beacon = matches!(
            destination,
            Destination::Http {
                format: HttpFormat::Beacon,
                ..
            }
        );
        let limit = self.limit_of(&context.client, &destination);
        if let (
            false,
            RateLimit::Every {
                messages,
                window_ms,
            },
        ) = (beacon, limit)
        {
            let key = serde_json::to_string(&destination).unwrap_or_default();
            let bucket = self.throttle.buckets.entry(key).or_insert_with(|| Bucket {
                destination: destination.clone(),
                recipient: context.recipient.clone(),
                client: context.client.clone(),
                client_name: context.client_name.clone(),
                window_start_ms: now,
                sent: 0,
                held: Vec::new(),
                held_total: 0,
            });
            if now - bucket.window_start_ms >= window_ms && bucket.held.is_empty() {
                bucket.window_start_ms = now;
                bucket.sent = 0;
            }
            if bucket.sent >= messages {
                bucket.held_total += 1;
                if bucket.held.len() < DIGEST_LISTED {
                    bucket.held.push(Held {
                        kind,
                        incident_id: context.incident_id,
                        title: context.title,
                        priority: context.priority,
                        reason: context.reason,
                        assets: context.assets,
                        alerts: context.alerts,
                    });
                }
                out.throttled = true;
                return;
            }
            bucket.sent += 1;
        }
        let request = Request {
            kind,
            destination,
            context,
        };
        self.compose(&request, now, out);
    }

    fn compose(&mut self, request: &Request, now: i64, out: &mut Reaction) {
        let id = self.next_notification_id;
        self.next_notification_id += 1;
        out.notifications.push(notify::compose(request, id, now));
    }

    /// The rate limit of a client's destination: its channel's, or the default.
    fn limit_of(&self, client: &str, destination: &Destination) -> RateLimit {
        self.limits
            .get(&(client.to_owned(), limit_key(destination)))
            .copied()
            .unwrap_or(RateLimit::DEFAULT)
    }

    /// Sends one digest per destination whose window is over with messages held back, and
    /// forgets idle destinations.
    fn flush_digests(&mut self, now: i64, out: &mut Reaction) {
        let due: Vec<String> = self
            .throttle
            .buckets
            .iter()
            .filter(|(_, b)| match self.limit_of(&b.client, &b.destination) {
                RateLimit::Every { window_ms, .. } => now - b.window_start_ms >= window_ms,
                // No longer limited: what it held goes now.
                RateLimit::Off => true,
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            let Some(bucket) = self.throttle.buckets.remove(&key) else {
                continue;
            };
            if bucket.held.is_empty() {
                continue;
            }
            out.throttled = true;
            let listed: Vec<String> = bucket
                .held
                .iter()
                .map(|h| {
                    let id = h.incident_id.map_or(String::new(), |id| format!("#{id} "));
                    let priority = h.priority.as_deref().unwrap_or("");
                    format!(
                        "{priority} {id}{} ({}): {}",
                        h.title,
                        h.kind.as_str(),
                        h.reason
                    )
                })
                .collect();
            let more = bucket.held_total as usize - bucket.held.len();
            let mut reason = listed.join("\n");
            if more > 0 {
                reason.push_str(&format!("\n… and {more} more"));
            }
            let mut assets: BTreeSet<String> = BTreeSet::new();
            let mut alerts = Vec::new();
            for held in &bucket.held {
                assets.extend(held.assets.iter().cloned());
                alerts.extend(held.alerts.iter().cloned());
            }
            alerts.truncate(DIGEST_LISTED);
            let priority = bucket.held.iter().filter_map(|h| h.priority.clone()).min();
            let context = Context {
                client: bucket.client.clone(),
                client_name: bucket.client_name.clone(),
                incident_id: None,
                crisis_id: None,
                title: format!(
                    "{} messages held back by the rate limit ({})",
                    bucket.held_total,
                    self.limit_of(&bucket.client, &bucket.destination)
                ),
                priority,
                status: "digest".into(),
                reason,
                recipient: bucket.recipient.clone(),
                url: format!("{}/incidents", self.public_url),
                assets: assets.into_iter().collect(),
                alerts,
                group_key: format!("{}/digest/{}", bucket.client, bucket.window_start_ms),
            };
            let request = Request {
                kind: Kind::Digest,
                destination: bucket.destination.clone(),
                context,
            };
            self.compose(&request, now, out);
            // The digest counts as the first message of a new window.
            self.throttle.buckets.insert(
                key,
                Bucket {
                    window_start_ms: now,
                    sent: 1,
                    held: Vec::new(),
                    held_total: 0,
                    ..bucket
                },
            );
        }
    }

    fn incident_context(
        &self,
        client: &Client,
        book: &IncidentBook,
        incident: &Incident,
        reason: &str,
        recipient: &str,
    ) -> Context {
        let url = format!("{}/incidents/{}", self.public_url, incident.id);
        let alerts = book
            .alerts_of(incident.id)
            .map(|alert| notified_alert(alert, client, &url))
            .collect();
        Context {
            client: client.id.clone(),
            client_name: client.name.clone(),
            incident_id: Some(incident.id),
            crisis_id: None,
            title: incident.title.clone(),
            priority: Some(incident.priority.as_str().to_owned()),
            status: incident.status.as_str().to_owned(),
            reason: reason.to_owned(),
            recipient: recipient.to_owned(),
            url,
            assets: incident.assets.clone(),
            alerts,
            group_key: format!("{}/incident/{}", client.id, incident.id),
        }
    }

    fn crisis_context(
        &self,
        client: &Client,
        crisis: &Crisis,
        book: &IncidentBook,
        _now: i64,
    ) -> Context {
        let url = format!("{}/crises/{}", self.public_url, crisis.id);
        let mut alerts = Vec::new();
        let mut assets = BTreeSet::new();
        let mut priority = None;
        for id in &crisis.incidents {
            if let Some(incident) = book.incident(*id) {
                assets.extend(incident.assets.iter().cloned());
                priority = priority
                    .min(Some(incident.priority))
                    .or(Some(incident.priority));
            }
            alerts.extend(
                book.alerts_of(*id)
                    .map(|alert| notified_alert(alert, client, &url)),
            );
        }
        Context {
            client: client.id.clone(),
            client_name: client.name.clone(),
            incident_id: crisis.incidents.first().copied(),
            crisis_id: Some(crisis.id),
            title: format!("Crisis {}: {}", crisis.id, crisis.trigger_name),
            priority: priority.map(|p| p.as_str().to_owned()),
            status: crisis.status.as_str().to_owned(),
            reason: crisis.reason.clone(),
            recipient: String::new(),
            url,
            assets: assets.into_iter().collect(),
            alerts,
            group_key: format!("{}/crisis/{}", client.id, crisis.id),
        }
    }

    /// Applies a command of the responder's own to the book; true when it changed something.
    fn apply(
        &mut self,
        book: &mut IncidentBook,
        command: IncidentCommand,
        now: i64,
        out: &mut Reaction,
    ) -> bool {
        match book.apply(command, now) {
            Ok(effects) => {
                let changed = !effects.is_empty();
                out.effects.extend(effects);
                changed
            }
            Err(error) => {
                tracing::error!(%error, "responder command refused by the incident book");
                false
            }
        }
    }

    fn note(
        &mut self,
        book: &mut IncidentBook,
        incident: i64,
        kind: TimelineKind,
        text: String,
        now: i64,
        out: &mut Reaction,
    ) {
        self.apply(
            book,
            IncidentCommand::Note {
                incident,
                kind,
                text,
            },
            now,
            out,
        );
    }

    /// The escalation of an incident, as the API shows it.
    pub fn escalation(&self, incident: i64) -> Option<&EscalationRecord> {
        self.escalations.get(&incident)
    }
}

// ---- helpers --------------------------------------------------------------------------------

fn is_open(status: IncidentStatus) -> bool {
    matches!(status, IncidentStatus::New | IncidentStatus::Acknowledged)
}

fn level_str(level: Level) -> &'static str {
    match level {
        Level::High => "high",
        Level::Medium => "medium",
        Level::Low => "low",
    }
}

fn matrix_of(client: &Client) -> Matrix {
    let policy = client.priority_policy();
    let levels = [Level::High, Level::Medium, Level::Low];
    Matrix(levels.map(|impact| levels.map(|urgency| policy.priority(impact, urgency))))
}

/// Whether a business service depends, through its indicators and the services below it, on
/// one of these assets (or their checks).
fn service_depends_on(
    definitions: &[BusinessServiceDef],
    service: &str,
    assets: &[String],
) -> bool {
    let mut stack = vec![service.to_owned()];
    let mut seen = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(definition) = definitions.iter().find(|d| d.service.id == id) else {
            continue;
        };
        for weighted in &definition.service.indicators {
            match &weighted.indicator {
                Indicator::Asset(asset) | Indicator::Check { asset, .. } => {
                    if assets.contains(asset) {
                        return true;
                    }
                }
                Indicator::Service(child) => stack.push(child.clone()),
            }
        }
    }
    false
}

/// Every asset these assets depend on, directly or not, with the asset of `assets` whose
/// dependency leads there.
fn upstream_of(client: &Client, assets: &[String]) -> BTreeMap<String, String> {
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    let mut stack: Vec<(String, String)> = assets.iter().map(|a| (a.clone(), a.clone())).collect();
    while let Some((asset, origin)) = stack.pop() {
        for dependency in client.dependencies.iter().filter(|d| d.from == asset) {
            if !assets.contains(&dependency.to) && !found.contains_key(&dependency.to) {
                found.insert(dependency.to.clone(), origin.clone());
                stack.push((dependency.to.clone(), origin.clone()));
            }
        }
    }
    found
}

struct IndicatorStates {
    assets: HashMap<String, Status>,
    checks: HashMap<(String, String), Status>,
}

/// The state of each asset and check from the client's firing alerts.
fn indicator_states<'a>(alerts: impl Iterator<Item = &'a Alert>) -> IndicatorStates {
    let mut states = IndicatorStates {
        assets: HashMap::new(),
        checks: HashMap::new(),
    };
    for alert in alerts.filter(|a| a.status == AlertStatus::Firing) {
        let Some(asset) = &alert.asset else {
            continue;
        };
        let status = if &*alert.source == "supervision" {
            Status::of_check_state(
                alert
                    .labels
                    .get("state")
                    .as_ref()
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
        } else {
            match alert.severity {
                Severity::Critical | Severity::Alert | Severity::Emergency => Status::Critical,
                Severity::Error => Status::Warning,
                _ => Status::Ok,
            }
        };
        if let Some(Value::String(check)) = alert.labels.get("check_name") {
            let slot = states
                .checks
                .entry((asset.clone(), check))
                .or_insert(Status::Ok);
            *slot = (*slot).max(status);
        }
        let slot = states.assets.entry(asset.clone()).or_insert(Status::Ok);
        *slot = (*slot).max(status);
    }
    states
}

/// The categories `alert_categories` finds other than by a `category` label, as bits of a `u8`
/// by position.
const KNOWN_CATEGORIES: [&str; 5] = [
    "availability",
    "exfiltration",
    "lateral_movement",
    "ransomware",
    "spam",
];

fn known_category(name: &str) -> u8 {
    KNOWN_CATEGORIES
        .iter()
        .position(|known| *known == name)
        .map_or(0, |at| 1 << at)
}

/// Categories of alerts, from their labels and ATT&CK tags: `ransomware`, `exfiltration`,
/// `lateral_movement`, `availability` (supervision), plus any `category` label. Sorted. The
/// responder keeps each alert's instead (`Responder::categories`); this is what the tests
/// check that against.
#[cfg(test)]
pub fn categories_of<'a>(alerts: impl Iterator<Item = &'a Alert>) -> Vec<String> {
    let mut known = 0;
    let mut custom = BTreeSet::new();
    for alert in alerts {
        let (bits, others) = alert_categories(alert);
        known |= bits;
        custom.extend(others);
    }
    category_names(known, custom)
}

/// The sorted names of known categories (bits) and others.
fn category_names(known: u8, mut custom: BTreeSet<String>) -> Vec<String> {
    for (at, name) in KNOWN_CATEGORIES.iter().enumerate() {
        if known & (1 << at) != 0 {
            custom.insert((*name).to_owned());
        }
    }
    custom.into_iter().collect()
}

/// One alert's categories: those of `KNOWN_CATEGORIES` as bits, and its other `category`
/// labels (its own, or the Alertmanager alert's), lowercased.
fn alert_categories(alert: &Alert) -> (u8, Vec<String>) {
    let mut known = 0;
    let mut custom = Vec::new();
    let own = alert.labels.get("category");
    let prometheus = alert.labels.get_path(&["labels", "category"]);
    for category in [own, prometheus].iter().flatten().filter_map(Value::as_str) {
        let category = category.to_ascii_lowercase();
        match known_category(&category) {
            0 if !custom.contains(&category) => custom.push(category),
            0 => {}
            bit => known |= bit,
        }
    }
    if &*alert.source == "supervision" {
        known |= known_category("availability");
    }
    if alert.labels.contains_key("lateral_movement") {
        known |= known_category("lateral_movement");
    }
    let rule = alert.rule.to_ascii_lowercase();
    for (needle, category) in [
        ("ransomware", "ransomware"),
        ("exfiltration", "exfiltration"),
        ("lateral_movement", "lateral_movement"),
        ("lateral-movement", "lateral_movement"),
        ("spam", "spam"),
    ] {
        if rule.contains(needle) {
            known |= known_category(category);
        }
    }
    let tags = alert.labels.get("tags");
    let tags = tags
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    for tag in tags {
        known |= match tag.to_ascii_lowercase().as_str() {
            "attack.t1486" | "attack.t1490" | "attack.t1485" => known_category("ransomware"),
            "attack.exfiltration" | "attack.t1041" | "attack.t1048" | "attack.t1567" => {
                known_category("exfiltration")
            }
            "attack.lateral_movement" | "attack.lateral-movement" => {
                known_category("lateral_movement")
            }
            _ => 0,
        };
    }
    (known, custom)
}

/// What priority (`prioritize`) and the crisis triggers (`facts`) read of an alert, hashed:
/// not its count nor its last time, which every re-send moves.
fn alert_signature(alert: &Alert) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        alert.status,
        alert.severity,
        &alert.title,
        &alert.rule,
        &alert.source,
        &alert.asset,
        alert.first_seen_ms,
    )
        .hash(&mut hasher);
    for label in [
        alert.labels.get("category"),
        alert.labels.get_path(&["labels", "category"]),
        alert.labels.get("lateral_movement"),
        alert.labels.get("tags"),
    ] {
        hash_value(label.as_ref(), &mut hasher);
    }
    hasher.finish()
}

/// Hashes a JSON value without writing it out (`Value` has no `Hash`).
fn hash_value(value: Option<&Value>, hasher: &mut impl std::hash::Hasher) {
    use std::hash::Hash;
    match value {
        None => 0u8.hash(hasher),
        Some(Value::Null) => 1u8.hash(hasher),
        Some(Value::Bool(b)) => (2u8, b).hash(hasher),
        Some(Value::Number(n)) => (3u8, n.as_f64().map(f64::to_bits)).hash(hasher),
        Some(Value::String(text)) => (4u8, text).hash(hasher),
        Some(Value::Array(items)) => {
            (5u8, items.len()).hash(hasher);
            for item in items {
                hash_value(Some(item), hasher);
            }
        }
        Some(Value::Object(map)) => {
            (6u8, map.len()).hash(hasher);
            for (key, item) in map {
                key.hash(hasher);
                hash_value(Some(item), hasher);
            }
        }
    }
}

/// What priority reads of an open incident itself, hashed.
fn incident_signature(incident: &Incident) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    // Not `alert_count`, which counts signals: a new alert shows in its own signature.
    (incident.status, &incident.assets, &incident.client).hash(&mut hasher);
    hasher.finish()
}

/// Each detection rule of the alerts (not supervision's), once, with when it last fired.
fn last_fired_rules(alerts: &[&Alert]) -> Vec<(String, i64)> {
    let mut rules: BTreeMap<&str, i64> = BTreeMap::new();
    for alert in alerts.iter().filter(|a| &*a.source != "supervision") {
        let last = rules.entry(&alert.rule).or_insert(alert.last_seen_ms);
        *last = (*last).max(alert.last_seen_ms);
    }
    rules
        .into_iter()
        .map(|(rule, last)| (rule.to_owned(), last))
        .collect()
}

/// The most distinct assets whose alerts first fired within one window.
fn spread_of(alerts: &[&Alert], window_ms: i64) -> usize {
    let mut firsts: BTreeMap<&str, i64> = BTreeMap::new();
    for alert in alerts {
        if let Some(asset) = &alert.asset {
            let first = firsts.entry(asset).or_insert(alert.first_seen_ms);
            *first = (*first).min(alert.first_seen_ms);
        }
    }
    let mut times: Vec<i64> = firsts.into_values().collect();
    times.sort_unstable();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] > window_ms {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// An alert's labels as Alertmanager matchers see them: its own string labels (those of the
/// Prometheus alert it came from, flat), plus `client`, `asset`, `rule` (also as `alertname`
/// when it has none), `severity`, `source`, `kind`, and the asset's `criticality` and `site`.
fn alert_labels(alert: &Alert, client: &Client) -> BTreeMap<String, String> {
    // An alert from Prometheus keeps its label set under `labels`: matchers see it flat, as
    // in Alertmanager.
    let own = alert.labels.to_map();
    let prometheus = own
        .get("labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten();
    let mut labels: BTreeMap<String, String> = prometheus
        .chain(own.iter())
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k.clone(), s.clone())),
            Value::Number(n) => Some((k.clone(), n.to_string())),
            Value::Bool(b) => Some((k.clone(), b.to_string())),
            _ => None,
        })
        .collect();
    labels.insert("client".into(), alert.client.to_string());
    labels.insert("rule".into(), alert.rule.to_string());
    labels
        .entry("alertname".into())
        .or_insert_with(|| alert.rule.to_string());
    labels.insert("severity".into(), alert.severity.as_str().to_owned());
    labels.insert("source".into(), alert.source.to_string());
    labels.insert("kind".into(), alert.kind.to_string());
    if let Some(asset) = &alert.asset {
        labels.insert("asset".into(), asset.clone());
        if let Some(a) = client.assets.iter().find(|a| a.id == *asset) {
            labels.insert("criticality".into(), a.criticality.to_string());
            if let Some(site) = &a.site {
                labels.insert("site".into(), site.clone());
            }
        }
    }
    labels
}

fn notified_alert(alert: &Alert, client: &Client, url: &str) -> NotifiedAlert {
    let own = alert.labels.to_map();
    let mut annotations: BTreeMap<String, String> = own
        .get("annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    annotations
        .entry("summary".to_owned())
        .or_insert_with(|| alert.title.clone());
    if let Some(output) = own.get("output").and_then(Value::as_str) {
        annotations.insert("description".to_owned(), output.to_owned());
    }
    NotifiedAlert {
        fingerprint: alert.fingerprint.to_string(),
        status: match alert.status {
            AlertStatus::Firing => core_notify::AlertStatus::Firing,
            AlertStatus::Resolved => core_notify::AlertStatus::Resolved,
        },
        labels: alert_labels(alert, client),
        annotations,
        starts_at_ms: alert.first_seen_ms,
        ends_at_ms: (alert.status == AlertStatus::Resolved).then_some(alert.last_seen_ms),
        url: url.to_owned(),
    }
}

/// Who a step's target designates now, with a name for the timeline.
fn resolve_target(
    client: &Client,
    target: &Target,
    now: i64,
) -> (String, Vec<(String, Destination)>) {
    let person = |id: &str| -> Option<(String, Destination)> {
        let contact = client.contacts.iter().find(|c| c.id == id)?;
        Some((
            format!("person {}", contact.id),
            Destination::Email {
                to: vec![contact.email.clone()],
                language: contact.language().to_owned(),
            },
        ))
    };
    match target {
        Target::Team(id) => {
            let name = format!("team {id}");
            let Some(team) = client.teams.iter().find(|t| t.id == *id) else {
                return (name, Vec::new());
            };
            let mut destinations = Vec::new();
            match &team.email {
                Some(email) => destinations.push((
                    name.clone(),
                    Destination::Email {
                        to: vec![email.clone()],
                        language: client.language.clone().unwrap_or_else(|| "en".into()),
                    },
                )),
                None => destinations.extend(team.members.iter().filter_map(|m| person(m))),
            }
            for channel in &team.channels {
                destinations.extend(
                    client
                        .channels
                        .iter()
                        .filter(|c| c.id == *channel)
                        .filter_map(channel_destination)
                        .map(|d| (format!("channel {channel}"), d)),
                );
            }
            (name, destinations)
        }
        Target::Person(id) => (format!("person {id}"), person(id).into_iter().collect()),
        Target::Schedule(id) => {
            let name = format!("schedule {id}");
            let on_call = client
                .schedules
                .iter()
                .find(|s| s.id == *id)
                .and_then(|s| s.compile().ok())
                .and_then(|s| s.on_call(now).map(str::to_owned));
            match on_call {
                Some(person_id) => (
                    format!("{name} (on call: {person_id})"),
                    person(&person_id).into_iter().collect(),
                ),
                None => (name, Vec::new()),
            }
        }
        Target::ClientContact(Some(id)) => (
            format!("client contact {id}"),
            person(id).into_iter().collect(),
        ),
        Target::ClientContact(None) => {
            // The client's own contacts: those in no MSP team.
            let in_teams: BTreeSet<&str> = client
                .teams
                .iter()
                .flat_map(|t| t.members.iter().map(String::as_str))
                .collect();
            (
                "client contacts".to_owned(),
                client
                    .contacts
                    .iter()
                    .filter(|c| !in_teams.contains(c.id.as_str()))
                    .filter_map(|c| person(&c.id))
                    .collect(),
            )
        }
    }
}

/// What names a destination among a client's channels: an HTTP channel's id, an e-mail
/// channel's addresses.
fn limit_key(destination: &Destination) -> String {
    match destination {
        Destination::Http { channel, .. } => format!("channel {channel}"),
        Destination::Email { to, .. } => format!("email {}", to.join(",")),
    }
}

fn channel_destination(channel: &ChannelSpec) -> Option<Destination> {
    let format = match channel.kind {
        ChannelKind::Email => {
            return Some(Destination::Email {
                to: channel.to.clone(),
                language: channel.language.clone().unwrap_or_else(|| "en".into()),
            });
        }
        ChannelKind::Beacon => return None,
        ChannelKind::Webhook => HttpFormat::Generic,
        ChannelKind::Alertmanager => HttpFormat::Alertmanager,
        ChannelKind::Slack => HttpFormat::Slack,
        ChannelKind::Mattermost => HttpFormat::Mattermost,
        ChannelKind::Teams => HttpFormat::Teams,
    };
    Some(Destination::Http {
        channel: channel.id.clone(),
        format,
        url: channel.url.clone()?,
        method: "POST".into(),
        headers: channel.headers.clone(),
        body: None,
    })
}

fn beacons(client: &Client) -> impl Iterator<Item = &ChannelSpec> {
    client.crisis.beacon.iter().filter_map(|id| {
        client
            .channels
            .iter()
            .find(|c| c.id == *id && c.kind == ChannelKind::Beacon)
    })
}

fn beacon_destination(channel: &ChannelSpec, on: bool) -> Option<Destination> {
    let (url, call) = if on {
        channel.beacon_on()?
    } else {
        channel.beacon_off()?
    };
    Some(Destination::Http {
        channel: channel.id.clone(),
        format: HttpFormat::Beacon,
        url,
        method: call.method,
        headers: channel.headers.clone(),
        body: call.body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Transport;

    fn alert(asset: &str, first_seen_ms: i64) -> Alert {
        Alert {
            id: 1,
            client: "acme".into(),
            incident_id: 1,
            fingerprint: asset.into(),
            rule: "vigie-ransomware-note".into(),
            title: "t".into(),
            severity: Severity::Critical,
            asset: Some(asset.into()),
            source: "sigma".into(),
            kind: "log".into(),
            status: AlertStatus::Firing,
            count: 1,
            first_seen_ms,
            last_seen_ms: first_seen_ms,
            last_event_id: None,
            labels: vigie_core::incident::Labels::new(),
        }
    }

    fn context(incident: i64) -> Context {
        Context {
            client: "acme".into(),
            client_name: "ACME".into(),
            incident_id: Some(incident),
            crisis_id: None,
            title: format!("host {incident} down"),
            priority: Some("P2".into()),
            status: "new".into(),
            reason: "new P2 incident".into(),
            recipient: String::new(),
            url: String::new(),
            assets: vec![format!("host-{incident}")],
            alerts: Vec::new(),
            group_key: String::new(),
        }
    }

    /// A Prometheus alert's end is tracked by alert id: a re-send moves it, an alert resolved
    /// at its end leaves nothing behind, and each alert expires once.
    #[test]
    fn prometheus_alerts_expire_at_their_last_end_only_while_live_and_firing() {
        use vigie_core::event::Severity;
        use vigie_core::incident::model::AlertSignal;
        let mut book = IncidentBook::new(1, 1);
        let mut responder = Responder::restore(ResponseState::default(), 1, "http://vigie".into());
        let mut send = |book: &mut IncidentBook, fingerprint: &str, ends: i64, now: i64| {
            let mut labels = serde_json::Map::new();
            labels.insert("ends_at_ms".into(), json!(ends));
            let signal = AlertSignal {
                client: "acme".into(),
                fingerprint: fingerprint.into(),
                rule: "alertmanager/DiskFull".into(),
                title: "disk full".into(),
                severity: Severity::Warning,
                asset: None,
                source: "alertmanager".into(),
                kind: "alert".into(),
                criticality: None,
                event_id: None,
                time_ms: now,
                labels,
            };
            for effect in book.apply(IncidentCommand::Signal(signal), now).unwrap() {
                if let Effect::Alert(alert) = effect {
                    responder.track_expiry(&alert);
                }
            }
        };
        send(&mut book, "am-a", 10_000, 1_000);
        send(&mut book, "am-b", 12_000, 1_000);
        // Sent again: a's end moves past b's.
        send(&mut book, "am-a", 20_000, 5_000);
        let fingerprints = |commands: Vec<IncidentCommand>| -> Vec<String> {
            commands
                .into_iter()
                .map(|command| match command {
                    IncidentCommand::ResolveAlert { fingerprint, .. } => fingerprint,
                    other => panic!("unexpected {other:?}"),
                })
                .collect()
        };
        assert!(responder.expired_alerts(&book, 11_000).is_empty());
        let expired = responder.expired_alerts(&book, 12_000);
        assert_eq!(fingerprints(expired.clone()), ["am-b"]);
        for command in expired {
            for effect in book.apply(command, 12_000).unwrap() {
                if let Effect::Alert(alert) = effect {
                    responder.track_expiry(&alert);
                }
            }
        }
        // b is resolved: nothing of it is left to expire; a ends at its last end.
        assert!(responder.expired_alerts(&book, 19_999).is_empty());
        assert_eq!(
            fingerprints(responder.expired_alerts(&book, 20_000)),
            ["am-a"]
        );
        assert!(responder.expired_alerts(&book, 1_000_000).is_empty());
        assert!(responder.ends.is_empty() && responder.expiry.is_empty());
    }

    #[test]
    fn a_storm_is_a_few_messages_and_one_digest_per_destination() {
        let mut responder = Responder::restore(ResponseState::default(), 1, "http://vigie".into());
        let mail = Destination::Email {
            to: vec!["l1@msp.example".into()],
            language: "en".into(),
        };
        let beacon = Destination::Http {
            channel: "beacon".into(),
            format: HttpFormat::Beacon,
            url: "http://beacon".into(),
            method: "POST".into(),
            headers: BTreeMap::new(),
            body: None,
        };
        let mut out = Reaction::default();
        for incident in 1..=12 {
            responder.send(
                Kind::Triggered,
                mail.clone(),
                "team l1".into(),
                context(incident),
                0,
                &mut out,
            );
            responder.send(
                Kind::BeaconOn,
                beacon.clone(),
                "beacon".into(),
                context(incident),
                0,
                &mut out,
            );
        }
        // The rate limit holds the mails back, never the beacon.
        let mails = out
            .notifications
            .iter()
            .filter(|n| n.destination.starts_with("email"))
            .count();
        assert_eq!(mails, RATE_LIMIT as usize);
        assert_eq!(out.notifications.len(), RATE_LIMIT as usize + 12);
        assert!(out.throttled);
        // Nothing before the window is over; then one digest listing the 7 held messages.
        let mut later = Reaction::default();
        responder.flush_digests(RATE_WINDOW_MS - 1, &mut later);
        assert!(later.notifications.is_empty());
        responder.flush_digests(RATE_WINDOW_MS, &mut later);
        assert_eq!(later.notifications.len(), 1);
        let digest = &later.notifications[0];
        assert_eq!(digest.kind, Kind::Digest);
        let Transport::Email { subject, text, .. } = &digest.transport else {
            panic!("an e-mail digest");
        };
        assert!(subject.contains("7 messages held back"), "{subject}");
        assert!(text.contains("#12 host 12 down"), "{text}");
        // The digest opened a new window: 4 more go through, the next is held again.
        let mut next = Reaction::default();
        for incident in 13..=18 {
            responder.send(
                Kind::Triggered,
                mail.clone(),
                "team l1".into(),
                context(incident),
                RATE_WINDOW_MS + 10,
                &mut next,
            );
        }
        assert_eq!(next.notifications.len(), RATE_LIMIT as usize - 1);
        // And the throttle survives a restart through its JSON.
        let json = serde_json::to_string(&responder.throttle).unwrap();
        let back: Throttle = serde_json::from_str(&json).unwrap();
        assert_eq!(back, responder.throttle);
    }

    /// A channel's own `rate_limit`: `off` lets every message through, `2/10m` holds the
    /// third and the next ones for a digest at the end of its 10 minutes.
    #[test]
    fn a_channel_s_rate_limit_replaces_the_default() {
        let mut responder = Responder::restore(ResponseState::default(), 1, "http://vigie".into());
        let http = |channel: &str| Destination::Http {
            channel: channel.into(),
            format: HttpFormat::Generic,
            url: format!("http://{channel}"),
            method: "POST".into(),
            headers: BTreeMap::new(),
            body: None,
        };
        let (machine, people) = (http("machine"), http("people"));
        responder
            .limits
            .insert(("acme".into(), limit_key(&machine)), RateLimit::Off);
        let ten_minutes = RateLimit::parse("2/10m").unwrap();
        responder
            .limits
            .insert(("acme".into(), limit_key(&people)), ten_minutes);
        let mut out = Reaction::default();
        for incident in 1..=12 {
            for destination in [&machine, &people] {
                responder.send(
                    Kind::Triggered,
                    destination.clone(),
                    "channel".into(),
                    context(incident),
                    0,
                    &mut out,
                );
            }
        }
        let to = |url: &str, notifications: &[Notification]| {
            notifications
                .iter()
                .filter(|n| matches!(&n.transport, Transport::Http { url: u, .. } if u == url))
                .count()
        };
        assert_eq!(to("http://machine", &out.notifications), 12);
        assert_eq!(to("http://people", &out.notifications), 2);
        let mut later = Reaction::default();
        responder.flush_digests(RATE_WINDOW_MS, &mut later);
        assert!(later.notifications.is_empty(), "its window is 10 minutes");
        responder.flush_digests(10 * RATE_WINDOW_MS, &mut later);
        assert_eq!(later.notifications.len(), 1);
        assert_eq!(later.notifications[0].kind, Kind::Digest);
        let Transport::Http { url, body, .. } = &later.notifications[0].transport else {
            panic!("a webhook digest");
        };
        assert_eq!(url, "http://people");
        assert!(
            body.contains("10 messages held back by the rate limit (2/10m)"),
            "{body}"
        );
    }

    #[test]
    fn spread_counts_assets_within_one_window() {
        let alerts = [
            alert("a", 0),
            alert("b", 60_000),
            alert("c", 10 * 60_000),
            alert("a", 11 * 60_000),
        ];
        let refs: Vec<&Alert> = alerts.iter().collect();
        assert_eq!(spread_of(&refs, 5 * 60_000), 2);
        assert_eq!(spread_of(&refs, 15 * 60_000), 3);
        assert_eq!(spread_of(&[], 15 * 60_000), 0);
    }

    #[test]
    fn categories_come_from_rules_tags_and_sources() {
        let mut supervision = alert("a", 0);
        supervision.source = "supervision".into();
        supervision.rule = "check/postgres".into();
        let mut exfil = alert("b", 0);
        exfil.rule = "x".into();
        let tags = json!({"tags": ["attack.exfiltration", "attack.t1048"]});
        exfil.labels.merge(tags.as_object().cloned().unwrap());
        let ransomware = alert("c", 0);
        assert_eq!(categories_of([supervision].iter()), ["availability"]);
        assert_eq!(categories_of([exfil].iter()), ["exfiltration"]);
        assert_eq!(categories_of([ransomware].iter()), ["ransomware"]);
    }

    #[test]
    fn each_rule_is_listed_once_with_its_last_firing() {
        let mut alerts: Vec<Alert> = (0..3).map(|i| alert("a", i * 10)).collect();
        alerts[1].rule = "other".into();
        alerts[2].source = "supervision".into();
        alerts[2].last_seen_ms = 99;
        let mut late = alert("b", 50);
        late.id = 9;
        alerts.push(late);
        let refs: Vec<&Alert> = alerts.iter().collect();
        assert_eq!(
            last_fired_rules(&refs),
            [
                ("other".to_owned(), 10),
                ("vigie-ransomware-note".to_owned(), 50)
            ]
        );
    }

    #[test]
    fn kept_categories_follow_each_alert_change() {
        let mut responder = Responder::restore(ResponseState::default(), 1, String::new());
        let mut custom = alert("a", 0);
        custom.rule = "x".into();
        let labels = json!({"category": "Phishing", "labels": {"category": "spam"}});
        custom.labels = vigie_core::incident::Labels::from(labels.as_object().cloned().unwrap());
        let mut plain = alert("b", 0);
        plain.id = 2;
        plain.rule = "y".into();
        let never_seen = {
            let mut a = alert("c", 0);
            a.id = 3;
            a
        };
        assert!(responder.remember(&custom) && responder.remember(&plain));
        assert!(!responder.remember(&plain), "unchanged");
        let all = [&custom, &plain, &never_seen];
        assert_eq!(
            responder.categories(&all),
            ["phishing", "ransomware", "spam"]
        );
        assert_eq!(
            responder.categories(&all),
            categories_of(all.iter().copied())
        );

        // The custom category goes, a tag comes: the kept facts follow.
        custom.labels = vigie_core::incident::Labels::new();
        let tags = json!({"tags": ["attack.t1048"]});
        plain.labels = vigie_core::incident::Labels::from(tags.as_object().cloned().unwrap());
        assert!(responder.remember(&custom) && responder.remember(&plain));
        let all = [&custom, &plain, &never_seen];
        assert_eq!(responder.categories(&all), ["exfiltration", "ransomware"]);
        assert_eq!(
            responder.categories(&all),
            categories_of(all.iter().copied())
        );
        assert!(responder.custom_categories.is_empty());
    }

    #[test]
    fn supervision_alerts_give_check_and_asset_states() {
        let mut check = alert("db", 0);
        check.source = "supervision".into();
        let state = json!({"state": "WARNING", "check_name": "postgres"});
        check.labels.merge(state.as_object().cloned().unwrap());
        let mut resolved = alert("db", 0);
        resolved.status = AlertStatus::Resolved;
        let mut security = alert("mes", 0);
        security.severity = Severity::Error;
        let states = indicator_states([check, resolved, security].iter());
        assert_eq!(states.assets["db"], Status::Warning);
        assert_eq!(
            states.checks[&("db".to_owned(), "postgres".to_owned())],
            Status::Warning
        );
        assert_eq!(states.assets["mes"], Status::Warning);
    }
}

//! `IncidentBook`: the in-memory state of every incident not yet closed, and `apply`, the one
//! way to change it. Guards the invariants the module documentation lists: one live alert per
//! (client, fingerprint), alerts only ever join incidents of their own client, and every change
//! comes out as an `Effect` so the store can replay it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::model::{
    Alert, AlertId, AlertSignal, AlertStatus, Incident, IncidentId, IncidentStatus, Labels, Level,
    TimelineEntry, TimelineKind,
};
use super::priority::{Matrix, higher_level, impact_from_criticality, urgency_from_severity};

/// The actor named in timeline entries the engine writes on its own.
const ENGINE_ACTOR: &str = "vigie";

const HOUR_MS: i64 = 3_600_000;

/// One part of the key that decides which alerts share an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Asset,
    Rule,
    Source,
    Kind,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Asset => "asset",
            GroupBy::Rule => "rule",
            GroupBy::Source => "source",
            GroupBy::Kind => "kind",
        }
    }
}

/// How one client's alerts are grouped into incidents, and how long a resolved incident may
/// come back before it is closed for good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupingPolicy {
    /// The alert attributes that make up the group key, in this order. Empty: one group per
    /// client.
    pub by: Vec<GroupBy>,
    /// A new alert joins an open incident of its group whose last signal is at most this far
    /// from its own.
    pub window_ms: i64,
    /// A resolved incident reopens on a repeat at most this long after its resolution, and is
    /// closed by `Tick` once this has passed.
    pub reopen_window_ms: i64,
}

impl Default for GroupingPolicy {
    fn default() -> Self {
        GroupingPolicy {
            by: vec![GroupBy::Asset],
            window_ms: HOUR_MS,
            reopen_window_ms: HOUR_MS,
        }
    }
}

/// What `IncidentBook::apply` accepts: a signal from the rules, an operator's action, or the
/// passing of time.
// A command is built, moved once into `apply` and dropped: never stored in bulk, so the size
// of the signal variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum IncidentCommand {
    Signal(AlertSignal),
    Acknowledge {
        incident: IncidentId,
        actor: String,
    },
    Resolve {
        incident: IncidentId,
        actor: String,
    },
    Close {
        incident: IncidentId,
        actor: String,
    },
    Comment {
        incident: IncidentId,
        actor: String,
        text: String,
    },
    Reassign {
        incident: IncidentId,
        actor: String,
        assignee: Option<String>,
    },
    /// The problem behind a live alert is over (a check recovered): the alert is resolved,
    /// and its incident with it once every alert of the incident is resolved.
    ResolveAlert {
        client: String,
        fingerprint: String,
        actor: String,
    },
    /// The responder computed the incident's impact and urgency from everything it touches
    /// (business services, contract, categories, spread): sets them, and the priority the
    /// client's matrix gives, with `reason` in the timeline when the priority moves.
    SetPriority {
        incident: IncidentId,
        impact: Level,
        urgency: Level,
        reason: String,
    },
    /// A timeline entry written by the engine's own machinery (escalation, notification,
    /// crisis), actor `vigie`.
    Note {
        incident: IncidentId,
        kind: TimelineKind,
        text: String,
    },
    /// An operator merges `from` into `into`: `from`'s alerts move over and `from` closes.
    Merge {
        into: IncidentId,
        from: IncidentId,
        actor: String,
    },
    /// An operator moves some alerts of an incident into a new incident.
    Split {
        incident: IncidentId,
        alerts: Vec<AlertId>,
        actor: String,
    },
    /// Time passed: closes resolved incidents whose reopen window is over.
    Tick,
}

/// A record to persist (whole, as it now is) or a timeline entry to append. Records always come
/// before the timeline entries that describe them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The alert as it now is, shared with the book: the book copies it only if it changes
    /// the alert again while this effect is still held.
    Alert(Arc<Alert>),
    Incident(Incident),
    Timeline(TimelineEntry),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Closed incidents leave the book, so "closed" and "never existed" read the same here.
    #[error("incident {0} is not open (closed or unknown)")]
    UnknownIncident(IncidentId),
    #[error("cannot {action} incident {incident}: it is {}", .from.as_str())]
    InvalidTransition {
        incident: IncidentId,
        from: IncidentStatus,
        action: &'static str,
    },
    #[error("a comment needs some text")]
    EmptyComment,
    #[error("cannot merge incident {0} into itself")]
    MergeIntoItself(IncidentId),
    #[error("cannot merge incidents of different clients")]
    MergeAcrossClients,
    #[error("alert {alert} is not an alert of incident {incident}")]
    NotAMember {
        incident: IncidentId,
        alert: AlertId,
    },
    #[error("a split takes some but not all of the incident's alerts")]
    SplitNeedsSomeAlerts,
}

/// Every incident not closed, with its alerts, and the indexes signals are matched against.
#[derive(Clone, Debug)]
pub struct IncidentBook {
    next_alert_id: AlertId,
    next_incident_id: IncidentId,
    default_policy: GroupingPolicy,
    policies: HashMap<String, GroupingPolicy>,
    /// Each client's priority matrix; clients without one use the ITIL matrix.
    matrices: HashMap<String, Matrix>,
    /// Ordered by id so that `Tick` closes in a stable, replayable order.
    incidents: BTreeMap<IncidentId, Incident>,
    alerts: HashMap<AlertId, Arc<Alert>>,
    /// Each incident's alerts, in id order: the order `Resolve` and `Close` emit them in.
    members: HashMap<IncidentId, Vec<AlertId>>,
    /// client → fingerprint → the alert a repeat updates. Nested so lookups borrow the
    /// signal's strings instead of building a key. The keys are the alerts' own strings.
    live: HashMap<Arc<str>, HashMap<Arc<str>, AlertId>>,
    /// The strings alerts repeat (client, rule, source, kind), shared.
    names: Interner,
    /// client → group key → the New or Acknowledged incidents a new alert may join.
    joinable: HashMap<String, HashMap<String, Vec<IncidentId>>>,
}

impl IncidentBook {
    pub fn new(next_alert_id: AlertId, next_incident_id: IncidentId) -> Self {
        IncidentBook {
            next_alert_id,
            next_incident_id,
            default_policy: GroupingPolicy::default(),
            policies: HashMap::new(),
            matrices: HashMap::new(),
            incidents: BTreeMap::new(),
            alerts: HashMap::new(),
            members: HashMap::new(),
            live: HashMap::new(),
            names: Interner::default(),
            joinable: HashMap::new(),
        }
    }

    /// Rebuilds the in-memory state from what the store kept: every incident not closed and
    /// its alerts. Closed incidents and alerts of incidents not given are ignored. The id
    /// counters never go back below an id already in use.
    pub fn restore(
        incidents: Vec<Incident>,
        alerts: Vec<Alert>,
        next_alert_id: AlertId,
        next_incident_id: IncidentId,
    ) -> Self {
        let mut book = IncidentBook::new(next_alert_id, next_incident_id);
        for incident in incidents {
            if incident.status == IncidentStatus::Closed {
                continue;
            }
            book.next_incident_id = book.next_incident_id.max(incident.id + 1);
            if is_joinable(incident.status) {
                add_joinable(&mut book.joinable, &incident);
            }
            book.members.insert(incident.id, Vec::new());
            book.incidents.insert(incident.id, incident);
        }
        let mut alerts = alerts;
        // In id order, so that when a detached alert and its successor share a fingerprint
        // the successor (the newer id) is the one repeats find.
        alerts.sort_by_key(|alert| alert.id);
        for mut alert in alerts {
            let Some(members) = book.members.get_mut(&alert.incident_id) else {
                continue;
            };
            alert.client = book.names.share(&alert.client);
            alert.rule = book.names.share(&alert.rule);
            alert.source = book.names.share(&alert.source);
            alert.kind = book.names.share(&alert.kind);
            book.next_alert_id = book.next_alert_id.max(alert.id + 1);
            members.push(alert.id);
            book.live
                .entry(alert.client.clone())
                .or_default()
                .insert(alert.fingerprint.clone(), alert.id);
            book.alerts.insert(alert.id, Arc::new(alert));
        }
        book
    }

    /// Sets one client's grouping policy; clients without one use `GroupingPolicy::default()`.
    /// Applies to signals and ticks from now on: incidents keep the group key they have.
    pub fn set_policy(&mut self, client: &str, policy: GroupingPolicy) {
        self.policies.insert(client.to_owned(), policy);
    }

    /// Sets one client's priority matrix (from its contract); applies from the next signal.
    pub fn set_matrix(&mut self, client: &str, matrix: Matrix) {
        self.matrices.insert(client.to_owned(), matrix);
    }

    pub fn matrix(&self, client: &str) -> Matrix {
        self.matrices.get(client).copied().unwrap_or_default()
    }

    /// Every incident in memory (all statuses but closed), in id order.
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values()
    }

    /// The alerts of an incident in memory, in id order.
    pub fn alerts_of(&self, incident: IncidentId) -> impl Iterator<Item = &Alert> {
        self.members
            .get(&incident)
            .into_iter()
            .flatten()
            .filter_map(|id| self.alerts.get(id).map(|alert| &**alert))
    }

    /// An alert in memory (of an incident not closed).
    pub fn alert(&self, id: AlertId) -> Option<&Alert> {
        self.alerts.get(&id).map(|alert| &**alert)
    }

    /// The live alert of a client's fingerprint: the one a repeat of it updates.
    pub fn live_alert_id(&self, client: &str, fingerprint: &str) -> Option<AlertId> {
        self.live.get(client)?.get(fingerprint).copied()
    }

    /// A client's live alerts (one per fingerprint, firing or resolved, of incidents not
    /// closed).
    pub fn live_alerts_of(&self, client: &str) -> impl Iterator<Item = &Alert> {
        self.live
            .get(client)
            .into_iter()
            .flat_map(|by_fingerprint| by_fingerprint.values())
            .filter_map(|id| self.alerts.get(id).map(|alert| &**alert))
    }

    /// Applies one command at `now_ms` (the engine's clock, as the caller read it). On error
    /// nothing changed.
    pub fn apply(
        &mut self,
        command: IncidentCommand,
        now_ms: i64,
    ) -> Result<Vec<Effect>, CommandError> {
        match command {
            IncidentCommand::Signal(signal) => Ok(self.signal(signal, now_ms)),
            IncidentCommand::Acknowledge { incident, actor } => {
                let record = self.open_incident_mut(incident)?;
                if record.status != IncidentStatus::New {
                    return Err(invalid(record, "acknowledge"));
                }
                record.status = IncidentStatus::Acknowledged;
                record.acknowledged_ms = Some(now_ms);
                record.updated_ms = now_ms;
                let entry = timeline(
                    record,
                    now_ms,
                    &actor,
                    TimelineKind::Acknowledged,
                    "acknowledged".to_owned(),
                );
                Ok(vec![
                    Effect::Incident(record.clone()),
                    Effect::Timeline(entry),
                ])
            }
            IncidentCommand::Resolve { incident, actor } => self.resolve(incident, &actor, now_ms),
            IncidentCommand::Close { incident, actor } => {
                self.open_incident_mut(incident)?;
                Ok(self.close(incident, &actor, "closed".to_owned(), now_ms))
            }
            IncidentCommand::Comment {
                incident,
                actor,
                text,
            } => {
                let record = self.open_incident_mut(incident)?;
                let text = text.trim();
                if text.is_empty() {
                    return Err(CommandError::EmptyComment);
                }
                record.updated_ms = now_ms;
                let entry = timeline(
                    record,
                    now_ms,
                    &actor,
                    TimelineKind::Comment,
                    text.to_owned(),
                );
                Ok(vec![
                    Effect::Incident(record.clone()),
                    Effect::Timeline(entry),
                ])
            }
            IncidentCommand::Reassign {
                incident,
                actor,
                assignee,
            } => {
                let record = self.open_incident_mut(incident)?;
                // A blank name is how a form says "nobody".
                let assignee = assignee
                    .map(|name| name.trim().to_owned())
                    .filter(|name| !name.is_empty());
                let text = match &assignee {
                    Some(name) => format!("assigned to {name}"),
                    None => "unassigned".to_owned(),
                };
                record.assignee = assignee;
                record.updated_ms = now_ms;
                let entry = timeline(record, now_ms, &actor, TimelineKind::Reassigned, text);
                Ok(vec![
                    Effect::Incident(record.clone()),
                    Effect::Timeline(entry),
                ])
            }
            IncidentCommand::ResolveAlert {
                client,
                fingerprint,
                actor,
            } => Ok(self.resolve_alert(&client, &fingerprint, &actor, now_ms)),
            IncidentCommand::SetPriority {
                incident,
                impact,
                urgency,
                reason,
            } => {
                let matrix = self.matrix(&self.open_incident_ref(incident)?.client.clone());
                let record = self.open_incident_mut(incident)?;
                let priority = matrix.get(impact, urgency);
                if (record.impact, record.urgency, record.priority) == (impact, urgency, priority) {
                    return Ok(Vec::new());
                }
                let before = record.priority;
                record.impact = impact;
                record.urgency = urgency;
                record.priority = priority;
                record.updated_ms = now_ms;
                let mut effects = vec![Effect::Incident(record.clone())];
                if before != priority {
                    let text = format!(
                        "priority {} → {}: {reason}",
                        before.as_str(),
                        priority.as_str()
                    );
                    let entry = timeline(
                        record,
                        now_ms,
                        ENGINE_ACTOR,
                        TimelineKind::PriorityChanged,
                        text,
                    );
                    effects.push(Effect::Timeline(entry));
                }
                Ok(effects)
            }
            IncidentCommand::Note {
                incident,
                kind,
                text,
            } => {
                let record = self.open_incident_ref(incident)?;
                Ok(vec![Effect::Timeline(timeline(
                    record,
                    now_ms,
                    ENGINE_ACTOR,
                    kind,
                    text,
                ))])
            }
            IncidentCommand::Merge { into, from, actor } => self.merge(into, from, &actor, now_ms),
            IncidentCommand::Split {
                incident,
                alerts,
                actor,
            } => self.split(incident, &alerts, &actor, now_ms),
            IncidentCommand::Tick => Ok(self.tick(now_ms)),
        }
    }

    fn open_incident_ref(&self, id: IncidentId) -> Result<&Incident, CommandError> {
        self.incidents
            .get(&id)
            .ok_or(CommandError::UnknownIncident(id))
    }

    /// Moves every alert of `from` into `into` and closes `from`. Both must be open (new or
    /// acknowledged) incidents of one client; `into` keeps its status and group key, takes the
    /// higher impact and urgency of the two, and the union of their assets.
    fn merge(
        &mut self,
        into: IncidentId,
        from: IncidentId,
        actor: &str,
        now_ms: i64,
    ) -> Result<Vec<Effect>, CommandError> {
        if into == from {
            return Err(CommandError::MergeIntoItself(into));
        }
        let target = self.open_incident_ref(into)?;
        let source = self.open_incident_ref(from)?;
        if target.client != source.client {
            return Err(CommandError::MergeAcrossClients);
        }
        if !is_joinable(target.status) {
            return Err(invalid(target, "merge into"));
        }
        if !is_joinable(source.status) {
            return Err(invalid(source, "merge"));
        }
        let source = source.clone();
        let moved = self.members.remove(&from).unwrap_or_default();
        let mut effects = Vec::new();
        for alert_id in &moved {
            if let Some(alert) = self.alerts.get_mut(alert_id) {
                Arc::make_mut(alert).incident_id = into;
                effects.push(Effect::Alert(alert.clone()));
            }
        }
        self.members
            .entry(into)
            .or_default()
            .extend(moved.iter().copied());
        self.members.entry(into).or_default().sort_unstable();
        let matrix = self.matrix(&source.client);
        let target = self
            .incidents
            .get_mut(&into)
            .expect("invariant: checked open above");
        target.alert_count += moved.len() as u64;
        target.impact = higher_level(target.impact, source.impact);
        target.urgency = higher_level(target.urgency, source.urgency);
        target.priority = matrix.get(target.impact, target.urgency);
        target.last_signal_ms = target.last_signal_ms.max(source.last_signal_ms);
        target.updated_ms = now_ms;
        for asset in &source.assets {
            if let Err(at) = target.assets.binary_search(asset) {
                target.assets.insert(at, asset.clone());
            }
        }
        let merged_in = timeline(
            target,
            now_ms,
            actor,
            TimelineKind::Merged,
            format!(
                "incident {from} merged in: {} alert(s) ({})",
                moved.len(),
                source.title
            ),
        );
        effects.insert(0, Effect::Incident(target.clone()));
        let closed = self.close(from, actor, format!("merged into incident {into}"), now_ms);
        effects.extend(closed);
        effects.push(Effect::Timeline(merged_in));
        Ok(effects)
    }

    /// Moves `alerts` of `incident` into a new incident (same client, status new, same impact
    /// and urgency until the responder recomputes them), titled after the first moved alert.
    fn split(
        &mut self,
        incident: IncidentId,
        alerts: &[AlertId],
        actor: &str,
        now_ms: i64,
    ) -> Result<Vec<Effect>, CommandError> {
        let source = self.open_incident_ref(incident)?.clone();
        if !is_joinable(source.status) {
            return Err(invalid(&source, "split"));
        }
        let members = self.members.get(&incident).cloned().unwrap_or_default();
        let mut moving: Vec<AlertId> = alerts.to_vec();
        moving.sort_unstable();
        moving.dedup();
        if moving.is_empty() || moving.len() >= members.len() {
            return Err(CommandError::SplitNeedsSomeAlerts);
        }
        if let Some(stray) = moving.iter().find(|id| !members.contains(id)) {
            return Err(CommandError::NotAMember {
                incident,
                alert: *stray,
            });
        }
        let new_id = self.next_incident_id;
        self.next_incident_id += 1;
        let mut effects = Vec::new();
        let mut assets: Vec<String> = Vec::new();
        let mut title = String::new();
        let mut last_signal_ms = 0;
        for alert_id in &moving {
            let shared = self
                .alerts
                .get_mut(alert_id)
                .expect("invariant: an incident's members are in memory");
            Arc::make_mut(shared).incident_id = new_id;
            let alert = &*shared;
            if title.is_empty() {
                title = alert.title.clone();
            }
            last_signal_ms = last_signal_ms.max(alert.last_seen_ms);
            if let Some(asset) = &alert.asset
                && let Err(at) = assets.binary_search(asset)
            {
                assets.insert(at, asset.clone());
            }
            effects.push(Effect::Alert(shared.clone()));
        }
        let remaining: Vec<AlertId> = members
            .iter()
            .copied()
            .filter(|id| !moving.contains(id))
            .collect();
        let mut remaining_assets: Vec<String> = Vec::new();
        for id in &remaining {
            if let Some(asset) = &self.alerts[id].asset
                && let Err(at) = remaining_assets.binary_search(asset)
            {
                remaining_assets.insert(at, asset.clone());
            }
        }
        self.members.insert(incident, remaining.clone());
        self.members.insert(new_id, moving.clone());
        let new = Incident {
            id: new_id,
            client: source.client.clone(),
            title,
            status: IncidentStatus::New,
            priority: source.priority,
            impact: source.impact,
            urgency: source.urgency,
            group_key: format!("split-from={incident}"),
            assignee: None,
            assets,
            alert_count: moving.len() as u64,
            created_ms: now_ms,
            updated_ms: now_ms,
            last_signal_ms,
            acknowledged_ms: None,
            resolved_ms: None,
            closed_ms: None,
        };
        let old = self
            .incidents
            .get_mut(&incident)
            .expect("invariant: checked open above");
        old.alert_count = remaining.len() as u64;
        old.assets = remaining_assets;
        old.updated_ms = now_ms;
        let ids: Vec<String> = moving.iter().map(|id| id.to_string()).collect();
        let out = timeline(
            old,
            now_ms,
            actor,
            TimelineKind::Split,
            format!("alert(s) {} split into incident {new_id}", ids.join(", ")),
        );
        let created = timeline(
            &new,
            now_ms,
            actor,
            TimelineKind::Created,
            format!("split from incident {incident}: {} alert(s)", moving.len()),
        );
        effects.insert(0, Effect::Incident(old.clone()));
        effects.insert(1, Effect::Incident(new.clone()));
        effects.push(Effect::Timeline(out));
        effects.push(Effect::Timeline(created));
        self.incidents.insert(new_id, new);
        Ok(effects)
    }

    pub fn incident(&self, id: IncidentId) -> Option<&Incident> {
        self.incidents.get(&id)
    }

    /// Incidents in memory: every status but closed.
    pub fn open_incidents(&self) -> usize {
        self.incidents.len()
    }

    /// Alerts in memory: those of incidents not closed, detached ones included.
    pub fn live_alerts(&self) -> usize {
        self.alerts.len()
    }

    fn policy(&self, client: &str) -> &GroupingPolicy {
        self.policies.get(client).unwrap_or(&self.default_policy)
    }

    fn open_incident_mut(&mut self, id: IncidentId) -> Result<&mut Incident, CommandError> {
        self.incidents
            .get_mut(&id)
            .ok_or(CommandError::UnknownIncident(id))
    }

    fn signal(&mut self, signal: AlertSignal, now_ms: i64) -> Vec<Effect> {
        let reopen_window_ms = self.policy(&signal.client).reopen_window_ms;
        let existing = self
            .live
            .get(signal.client.as_str())
            .and_then(|by_fingerprint| by_fingerprint.get(signal.fingerprint.as_str()))
            .copied();
        if let Some(alert_id) = existing {
            let alert = self
                .alerts
                .get(&alert_id)
                .expect("invariant: the live index points at alerts in memory");
            let incident = &self.incidents[&alert.incident_id];
            match (incident.status, incident.resolved_ms) {
                (IncidentStatus::New | IncidentStatus::Acknowledged, _) => {
                    return self.repeat(alert_id, signal, now_ms, None);
                }
                (IncidentStatus::Resolved, Some(resolved_ms))
                    if now_ms <= resolved_ms.saturating_add(reopen_window_ms) =>
                {
                    return self.repeat(alert_id, signal, now_ms, Some(resolved_ms));
                }
                // Resolved too long ago: the old alert stays with its incident (which `Tick`
                // will close) and this signal starts afresh.
                _ => {}
            }
        }
        self.new_alert(signal, now_ms)
    }

    /// A repeat of a live alert. `reopen_from` is the resolution time when the alert's incident
    /// is resolved and still within its reopen window.
    fn repeat(
        &mut self,
        alert_id: AlertId,
        mut signal: AlertSignal,
        now_ms: i64,
        reopen_from: Option<i64>,
    ) -> Vec<Effect> {
        let matrix = self.matrix(&signal.client);
        let shared = self
            .alerts
            .get_mut(&alert_id)
            .expect("invariant: repeat is called with an alert in memory");
        let alert = Arc::make_mut(shared);
        alert.count += 1;
        alert.last_seen_ms = alert.last_seen_ms.max(signal.time_ms);
        if signal.event_id.is_some() {
            alert.last_event_id = signal.event_id;
        }
        alert.severity = alert.severity.max(signal.severity);
        alert.status = AlertStatus::Firing;
        // The latest signal's labels win (a check's current state and output, the end a
        // Prometheus re-send announces); labels it does not carry stay.
        alert.labels.merge(std::mem::take(&mut signal.labels));
        let incident = self
            .incidents
            .get_mut(&alert.incident_id)
            .expect("invariant: an alert's incident is in memory while the alert is");
        let mut entries = Vec::new();
        if let Some(resolved_ms) = reopen_from {
            incident.status = IncidentStatus::New;
            incident.acknowledged_ms = None;
            incident.resolved_ms = None;
            let text = format!(
                "reopened: alert {} fired again {} after resolution",
                alert.title,
                describe_duration(now_ms - resolved_ms)
            );
            entries.push(timeline(
                incident,
                now_ms,
                ENGINE_ACTOR,
                TimelineKind::Reopened,
                text,
            ));
        }
        entries.extend(fold_signal(incident, alert, &signal, matrix, now_ms));
        let mut effects = Vec::with_capacity(2 + entries.len());
        effects.push(Effect::Incident(incident.clone()));
        effects.push(Effect::Alert(Arc::clone(shared)));
        effects.extend(entries.into_iter().map(Effect::Timeline));
        if reopen_from.is_some() {
            add_joinable(&mut self.joinable, incident);
        }
        effects
    }

    /// A signal no live alert takes: a new alert, joining an incident of its group or opening
    /// one.
    fn new_alert(&mut self, mut signal: AlertSignal, now_ms: i64) -> Vec<Effect> {
        let matrix = self.matrix(&signal.client);
        let policy = self.policy(&signal.client);
        let window_ms = policy.window_ms;
        let group_key = group_key(&policy.by, &signal);
        let joined = self
            .joinable
            .get(&signal.client)
            .and_then(|by_key| by_key.get(&group_key))
            .and_then(|ids| {
                ids.iter()
                    .map(|id| &self.incidents[id])
                    .filter(|incident| {
                        signal.time_ms.abs_diff(incident.last_signal_ms) <= window_ms.unsigned_abs()
                    })
                    .max_by_key(|incident| (incident.last_signal_ms, incident.id))
                    .map(|incident| incident.id)
            });

        let alert_id = self.next_alert_id;
        self.next_alert_id += 1;
        let incident_id = joined.unwrap_or_else(|| {
            let id = self.next_incident_id;
            self.next_incident_id += 1;
            id
        });
        let fingerprint: Arc<str> = Arc::from(signal.fingerprint.as_str());
        let alert = Arc::new(Alert {
            id: alert_id,
            client: self.names.share(&signal.client),
            incident_id,
            fingerprint: fingerprint.clone(),
            rule: self.names.share(&signal.rule),
            title: signal.title.clone(),
            severity: signal.severity,
            asset: signal.asset.clone(),
            source: self.names.share(&signal.source),
            kind: self.names.share(&signal.kind),
            status: AlertStatus::Firing,
            count: 1,
            first_seen_ms: signal.time_ms,
            last_seen_ms: signal.time_ms,
            last_event_id: signal.event_id,
            labels: Labels::from(std::mem::take(&mut signal.labels)),
        });

        let mut effects = Vec::with_capacity(4);
        match joined {
            Some(incident_id) => {
                let incident = self
                    .incidents
                    .get_mut(&incident_id)
                    .expect("invariant: joinable incidents are in memory");
                incident.alert_count += 1;
                let text = match &alert.asset {
                    Some(asset) => format!("alert added: {} on {asset}", alert.title),
                    None => format!("alert added: {}", alert.title),
                };
                let added = timeline(
                    incident,
                    now_ms,
                    ENGINE_ACTOR,
                    TimelineKind::AlertAdded,
                    text,
                );
                let priority_changed = fold_signal(incident, &alert, &signal, matrix, now_ms);
                effects.push(Effect::Incident(incident.clone()));
                effects.push(Effect::Alert(alert.clone()));
                effects.push(Effect::Timeline(added));
                effects.extend(priority_changed.map(Effect::Timeline));
            }
            None => {
                let impact = impact_from_criticality(signal.criticality);
                let urgency = urgency_from_severity(signal.severity);
                let mut incident = Incident {
                    id: incident_id,
                    client: signal.client.clone(),
                    title: alert.title.clone(),
                    status: IncidentStatus::New,
                    priority: matrix.get(impact, urgency),
                    impact,
                    urgency,
                    group_key,
                    assignee: None,
                    assets: Vec::new(),
                    alert_count: 1,
                    created_ms: now_ms,
                    updated_ms: now_ms,
                    last_signal_ms: signal.time_ms,
                    acknowledged_ms: None,
                    resolved_ms: None,
                    closed_ms: None,
                };
                add_assets(&mut incident, &alert);
                let created = timeline(
                    &incident,
                    now_ms,
                    ENGINE_ACTOR,
                    TimelineKind::Created,
                    format!("created by alert {}", alert.title),
                );
                add_joinable(&mut self.joinable, &incident);
                effects.push(Effect::Incident(incident.clone()));
                effects.push(Effect::Alert(alert.clone()));
                effects.push(Effect::Timeline(created));
                self.incidents.insert(incident_id, incident);
            }
        }
        self.members.entry(incident_id).or_default().push(alert_id);
        self.live
            .entry(alert.client.clone())
            .or_default()
            .insert(fingerprint, alert_id);
        self.alerts.insert(alert_id, alert);
        effects
    }

    fn resolve(
        &mut self,
        id: IncidentId,
        actor: &str,
        now_ms: i64,
    ) -> Result<Vec<Effect>, CommandError> {
        let incident = self.open_incident_mut(id)?;
        if !is_joinable(incident.status) {
            return Err(invalid(incident, "resolve"));
        }
        incident.status = IncidentStatus::Resolved;
        incident.resolved_ms = Some(now_ms);
        incident.updated_ms = now_ms;
        let entry = timeline(
            incident,
            now_ms,
            actor,
            TimelineKind::Resolved,
            "resolved".to_owned(),
        );
        let incident = incident.clone();
        remove_joinable(&mut self.joinable, &incident);
        let mut effects = vec![Effect::Incident(incident)];
        self.resolve_alerts(id, &mut effects);
        effects.push(Effect::Timeline(entry));
        Ok(effects)
    }

    /// Closes an incident known to be open: its final records, then the timeline entry, and
    /// it leaves memory with its alerts.
    fn close(&mut self, id: IncidentId, actor: &str, text: String, now_ms: i64) -> Vec<Effect> {
        let mut incident = self
            .incidents
            .remove(&id)
            .expect("invariant: close is called with an open incident");
        if is_joinable(incident.status) {
            remove_joinable(&mut self.joinable, &incident);
        }
        incident.status = IncidentStatus::Closed;
        incident.closed_ms = Some(now_ms);
        incident.updated_ms = now_ms;
        let entry = timeline(&incident, now_ms, actor, TimelineKind::Closed, text);
        let mut effects = vec![Effect::Incident(incident)];
        // A closed incident has nothing firing: its alerts end resolved.
        self.resolve_alerts(id, &mut effects);
        for alert_id in self.members.remove(&id).unwrap_or_default() {
            let Some(alert) = self.alerts.remove(&alert_id) else {
                continue;
            };
            // Only if the key still points here: a detached alert's successor keeps it.
            if let Some(by_fingerprint) = self.live.get_mut(&*alert.client) {
                if by_fingerprint.get(&*alert.fingerprint) == Some(&alert_id) {
                    by_fingerprint.remove(&*alert.fingerprint);
                }
                if by_fingerprint.is_empty() {
                    self.live.remove(&*alert.client);
                }
            }
        }
        effects.push(Effect::Timeline(entry));
        effects
    }

    /// Resolves the live alert of that fingerprint if it is firing in an open (new or
    /// acknowledged) incident, then the incident if none of its alerts is still firing.
    /// Anything else — no such alert, already resolved — changes nothing: a recovery may come
    /// for a problem that never paged.
    fn resolve_alert(
        &mut self,
        client: &str,
        fingerprint: &str,
        actor: &str,
        now_ms: i64,
    ) -> Vec<Effect> {
        let Some(alert_id) = self
            .live
            .get(client)
            .and_then(|by_fingerprint| by_fingerprint.get(fingerprint))
            .copied()
        else {
            return Vec::new();
        };
        let alert = self
            .alerts
            .get_mut(&alert_id)
            .expect("invariant: the live index points at alerts in memory");
        let incident_id = alert.incident_id;
        if alert.status != AlertStatus::Firing || !is_joinable(self.incidents[&incident_id].status)
        {
            return Vec::new();
        }
        Arc::make_mut(alert).status = AlertStatus::Resolved;
        let alert = alert.clone();
        let still_firing = self.members[&incident_id]
            .iter()
            .any(|id| self.alerts[id].status == AlertStatus::Firing);
        if still_firing {
            return vec![Effect::Alert(alert)];
        }
        let incident = self
            .incidents
            .get_mut(&incident_id)
            .expect("invariant: an alert's incident is in memory while the alert is");
        incident.status = IncidentStatus::Resolved;
        incident.resolved_ms = Some(now_ms);
        incident.updated_ms = now_ms;
        let entry = timeline(
            incident,
            now_ms,
            actor,
            TimelineKind::Resolved,
            format!("resolved: {} recovered", alert.title),
        );
        let incident = incident.clone();
        remove_joinable(&mut self.joinable, &incident);
        vec![
            Effect::Incident(incident),
            Effect::Alert(alert),
            Effect::Timeline(entry),
        ]
    }

    /// Marks every alert of the incident resolved and pushes each one's record.
    fn resolve_alerts(&mut self, id: IncidentId, effects: &mut Vec<Effect>) {
        for alert_id in self.members.get(&id).into_iter().flatten() {
            let alert = self
                .alerts
                .get_mut(alert_id)
                .expect("invariant: an incident's members are in memory");
            Arc::make_mut(alert).status = AlertStatus::Resolved;
            effects.push(Effect::Alert(alert.clone()));
        }
    }

    fn tick(&mut self, now_ms: i64) -> Vec<Effect> {
        let expired: Vec<(IncidentId, i64)> = self
            .incidents
            .values()
            .filter_map(|incident| {
                let resolved_ms = incident.resolved_ms?;
                let window_ms = self.policy(&incident.client).reopen_window_ms;
                (incident.status == IncidentStatus::Resolved
                    && now_ms > resolved_ms.saturating_add(window_ms))
                .then_some((incident.id, window_ms))
            })
            .collect();
        let mut effects = Vec::new();
        for (id, window_ms) in expired {
            let text = format!(
                "closed: no repeat within {} of resolution",
                describe_duration(window_ms)
            );
            effects.extend(self.close(id, ENGINE_ACTOR, text, now_ms));
        }
        effects
    }
}

fn add_joinable(
    joinable: &mut HashMap<String, HashMap<String, Vec<IncidentId>>>,
    incident: &Incident,
) {
    let ids = joinable
        .entry(incident.client.clone())
        .or_default()
        .entry(incident.group_key.clone())
        .or_default();
    if !ids.contains(&incident.id) {
        ids.push(incident.id);
    }
}

fn remove_joinable(
    joinable: &mut HashMap<String, HashMap<String, Vec<IncidentId>>>,
    incident: &Incident,
) {
    let Some(by_key) = joinable.get_mut(&incident.client) else {
        return;
    };
    if let Some(ids) = by_key.get_mut(&incident.group_key) {
        ids.retain(|id| *id != incident.id);
        if ids.is_empty() {
            by_key.remove(&incident.group_key);
        }
    }
    if by_key.is_empty() {
        joinable.remove(&incident.client);
    }
}

fn is_joinable(status: IncidentStatus) -> bool {
    matches!(status, IncidentStatus::New | IncidentStatus::Acknowledged)
}

fn invalid(incident: &Incident, action: &'static str) -> CommandError {
    CommandError::InvalidTransition {
        incident: incident.id,
        from: incident.status,
        action,
    }
}

/// Adds the assets a signal touches to its incident's sorted set: the alert's asset and, for a
/// lateral movement, the source and target assets the pipeline resolved
/// (`labels.lateral_movement.source_asset` and `.target_asset`), so that the incident lists
/// every host the attack spread across, repeats from new sources included. Read from the
/// alert, which holds the latest signal's labels.
fn add_assets(incident: &mut Incident, alert: &Alert) {
    let lateral = alert.labels.get("lateral_movement");
    let ends = ["source_asset", "target_asset"]
        .into_iter()
        .filter_map(|end| lateral.as_ref()?.get(end)?.as_str());
    for asset in alert.asset.as_deref().into_iter().chain(ends) {
        if let Err(at) = incident.assets.binary_search_by(|a| a.as_str().cmp(asset)) {
            incident.assets.insert(at, asset.to_owned());
        }
    }
}

/// Folds a signal (already applied to `alert`) into its incident's derived fields, and returns
/// the PriorityChanged entry if the priority moved. Impact and urgency only ever rise, so the
/// running maximum kept on the incident is the maximum over its alerts, even after a restore.
fn fold_signal(
    incident: &mut Incident,
    alert: &Alert,
    signal: &AlertSignal,
    matrix: Matrix,
    now_ms: i64,
) -> Option<TimelineEntry> {
    let before = incident.priority;
    incident.impact = higher_level(incident.impact, impact_from_criticality(signal.criticality));
    incident.urgency = higher_level(incident.urgency, urgency_from_severity(alert.severity));
    incident.priority = matrix.get(incident.impact, incident.urgency);
    incident.last_signal_ms = incident.last_signal_ms.max(signal.time_ms);
    incident.updated_ms = now_ms;
    add_assets(incident, alert);
    if incident.priority == before {
        return None;
    }
    let mut text = format!(
        "priority {} → {}: alert {} ({})",
        before.as_str(),
        incident.priority.as_str(),
        alert.title,
        alert.severity.as_str()
    );
    if let Some(asset) = &alert.asset {
        text.push_str(" on ");
        text.push_str(asset);
    }
    if let Some(criticality) = signal.criticality {
        text.push_str(&format!(" (criticality {criticality})"));
    }
    Some(timeline(
        incident,
        now_ms,
        ENGINE_ACTOR,
        TimelineKind::PriorityChanged,
        text,
    ))
}

fn timeline(
    incident: &Incident,
    now_ms: i64,
    actor: &str,
    kind: TimelineKind,
    text: String,
) -> TimelineEntry {
    TimelineEntry {
        incident_id: incident.id,
        client: incident.client.clone(),
        time_ms: now_ms,
        actor: actor.to_owned(),
        kind,
        text,
    }
}

/// `asset=srv-1,rule=disk-full`: the policy's parts in its order; a missing asset reads `-`.
fn group_key(by: &[GroupBy], signal: &AlertSignal) -> String {
    let mut key = String::new();
    for (index, part) in by.iter().enumerate() {
        if index > 0 {
            key.push(',');
        }
        key.push_str(part.as_str());
        key.push('=');
        key.push_str(match part {
            GroupBy::Asset => signal.asset.as_deref().unwrap_or("-"),
            GroupBy::Rule => &signal.rule,
            GroupBy::Source => &signal.source,
            GroupBy::Kind => &signal.kind,
        });
    }
    key
}

/// A duration for people: the two largest units, floored ("1 h", "1 h 30 min", "45 s").
fn describe_duration(ms: i64) -> String {
    let ms = ms.max(0);
    let (hours, minutes, seconds) = (ms / HOUR_MS, ms % HOUR_MS / 60_000, ms % 60_000 / 1000);
    match (hours, minutes, seconds) {
        (0, 0, 0) => format!("{ms} ms"),
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(describe_duration(HOUR_MS), "1 h");
        assert_eq!(
            describe_duration(HOUR_MS + 30 * 60_000 + 5_000),
            "1 h 30 min"
        );
        assert_eq!(describe_duration(10 * 60_000), "10 min");
        assert_eq!(describe_duration(90_000), "1 min 30 s");
        assert_eq!(describe_duration(45_000), "45 s");
        assert_eq!(describe_duration(250), "250 ms");
        assert_eq!(describe_duration(0), "0 ms");
    }

    #[test]
    fn interned_names_are_shared_and_swept_once_no_alert_holds_them() {
        let mut names = Interner::default();
        let rule = names.share("rule/disk");
        assert!(Arc::ptr_eq(&rule, &names.share("rule/disk")));
        // 1,023 names nobody keeps, then the sweep at 1,024 keeps only the held one.
        for i in 0..1_023 {
            names.share(&format!("gone/{i}"));
        }
        assert_eq!(names.set.len(), 1_024);
        names.share("after");
        assert_eq!(names.swept_at, 1, "only `rule/disk` was still held");
        assert_eq!(names.set.len(), 2);
        assert!(Arc::ptr_eq(&rule, &names.share("rule/disk")));
    }
}

/// Shares the strings that many alerts repeat (client, rule, source, kind): one allocation
/// each instead of one per alert. Strings no alert holds any more are swept out once the set
/// has doubled since the last sweep, so rules that stop firing do not accumulate.
#[derive(Clone, Debug, Default)]
struct Interner {
    set: HashSet<Arc<str>>,
    swept_at: usize,
}

impl Interner {
    fn share(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.set.get(text) {
            return shared.clone();
        }
        if self.set.len() >= 2 * self.swept_at.max(512) {
            self.set.retain(|s| Arc::strong_count(s) > 1);
            self.swept_at = self.set.len();
        }
        let shared: Arc<str> = Arc::from(text);
        self.set.insert(shared.clone());
        shared
    }
}

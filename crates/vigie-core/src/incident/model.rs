//! The records the incident state machine owns: alerts (deduplicated by fingerprint),
//! incidents (alerts grouped per client), and the timeline of every change to an incident.
//! These are what the store persists and the API serves, field for field.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::Severity;

pub type AlertId = i64;
pub type IncidentId = i64;

/// What a rule says when an event matches it: the input of the state machine. The pipeline
/// fills `criticality` from the estate (the asset's criticality, 1–5); the computed business
/// impact of a later stage will take its place behind the same field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertSignal {
    pub client: String,
    /// Stable identity of "the same problem": repeats update one alert instead of piling up.
    pub fingerprint: String,
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    pub asset: Option<String>,
    pub source: String,
    pub kind: String,
    pub criticality: Option<u8>,
    pub event_id: Option<i64>,
    pub time_ms: i64,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub labels: Map<String, Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: AlertId,
    pub client: String,
    pub incident_id: IncidentId,
    pub fingerprint: String,
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    pub asset: Option<String>,
    pub source: String,
    pub kind: String,
    pub status: AlertStatus,
    /// How many signals this alert has absorbed (1 on creation).
    pub count: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub last_event_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub labels: Map<String, Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    New,
    Acknowledged,
    Resolved,
    Closed,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::New => "new",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<IncidentStatus> {
        Some(match text {
            "new" => IncidentStatus::New,
            "acknowledged" => IncidentStatus::Acknowledged,
            "resolved" => IncidentStatus::Resolved,
            "closed" => IncidentStatus::Closed,
            _ => return None,
        })
    }
}

/// P1 (most urgent) to P5. Serialised as "P1".."P5"; ordered so that P1 < P2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
    P5,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
            Priority::P5 => "P5",
        }
    }

    pub fn parse(text: &str) -> Option<Priority> {
        Some(match text.to_ascii_uppercase().as_str() {
            "P1" => Priority::P1,
            "P2" => Priority::P2,
            "P3" => Priority::P3,
            "P4" => Priority::P4,
            "P5" => Priority::P5,
            _ => return None,
        })
    }

    /// 1 for P1 … 5 for P5, as stored.
    pub fn level(self) -> i64 {
        self as i64 + 1
    }
}

/// Three levels for both axes of the priority matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    High,
    Medium,
    Low,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub client: String,
    pub title: String,
    pub status: IncidentStatus,
    pub priority: Priority,
    pub impact: Level,
    pub urgency: Level,
    /// The grouping key alerts of this incident share (e.g. `asset=srv-1`).
    pub group_key: String,
    pub assignee: Option<String>,
    /// Assets the incident's alerts touch, sorted, without duplicates.
    pub assets: Vec<String>,
    pub alert_count: u64,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Time (the signal's `time_ms`) of the latest alert signal that joined or updated the
    /// incident: the grouping window is measured from it. The reopen window is measured from
    /// `resolved_ms`.
    pub last_signal_ms: i64,
    pub acknowledged_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
    pub closed_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    Created,
    AlertAdded,
    Acknowledged,
    Resolved,
    Reopened,
    Closed,
    Comment,
    Reassigned,
    PriorityChanged,
    /// A step of the escalation policy notified someone.
    Escalated,
    /// A notification was held back (silence, inhibition) or could not be addressed.
    Notified,
    /// A crisis trigger fired on the incident.
    Crisis,
    /// Alerts moved in from another incident, or this incident went into another.
    Merged,
    /// Alerts moved out into a new incident.
    Split,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub incident_id: IncidentId,
    pub client: String,
    pub time_ms: i64,
    /// Who did it: a token's name for people and API clients, `vigie` for the engine itself.
    pub actor: String,
    pub kind: TimelineKind,
    pub text: String,
}

//! What the responder keeps and the API shows: escalations, crises, business-service health
//! and silences. Each is stored whole as JSON (see `store::response`).

use serde::{Deserialize, Serialize};
use vigie_core::escalation::Escalation;
use vigie_core::notify::silence::{Matcher, Silence};
use vigie_core::service::Status;

use crate::notify::Destination;

/// Where an incident is in its escalation policy, and who was told about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationRecord {
    pub incident_id: i64,
    pub client: String,
    /// The team the routing rule gave the incident.
    pub team: String,
    pub policy: String,
    /// The highest level of the teams notified so far (1 = supervision).
    pub level: u8,
    pub escalation: Escalation,
    /// Everyone a message went to, told again when the incident is resolved.
    #[serde(default)]
    pub notified: Vec<Notified>,
    /// The messages of steps that fired while the incident was muted (silence, inhibition):
    /// sent when the mute ends, if the incident is still new then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<HeldMessages>,
}

/// Messages held back while an incident was muted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldMessages {
    /// The latest muted step's kind and reason: what the message says when it goes.
    pub kind: crate::notify::Kind,
    pub reason: String,
    /// When the first of them was held.
    pub since_ms: i64,
    /// Every destination a muted step would have told, in order, once each.
    pub destinations: Vec<Notified>,
}

/// One destination already told about an incident, with the name the log shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notified {
    pub recipient: String,
    pub destination: Destination,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrisisStatus {
    Open,
    Closed,
}

impl CrisisStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CrisisStatus::Open => "open",
            CrisisStatus::Closed => "closed",
        }
    }
}

/// A crisis opened by a trigger: the record the crisis cell builds on (roles, clock, roadmap
/// and war room come later; they hang off this id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crisis {
    pub id: i64,
    pub client: String,
    pub trigger: String,
    pub trigger_name: String,
    pub reason: String,
    pub incidents: Vec<i64>,
    pub status: CrisisStatus,
    pub opened_ms: i64,
    pub closed_ms: Option<i64>,
    pub closed_by: Option<String>,
}

/// A business service's health as last computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceHealth {
    pub client: String,
    pub service: String,
    pub name: String,
    pub criticality: u8,
    pub status: Status,
    /// 0–100 (see `vigie_core::service::Health`).
    pub health: f64,
    pub in_downtime: bool,
    /// The indicators that make it not OK, worst first, as people read them.
    pub causes: Vec<String>,
    /// When it entered this status.
    pub since_ms: i64,
    pub updated_ms: i64,
}

/// A silence made through the API (or, with `source: config`, read from the estate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceRecord {
    pub id: String,
    pub client: String,
    /// `name=value`, `name!=value`, `name=~re`, `name!~re`.
    pub matchers: Vec<String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub created_by: String,
    pub comment: String,
    pub created_ms: i64,
    /// `api` or `config`.
    pub source: String,
}

impl SilenceRecord {
    /// The silence the muting logic reads; `Err` names the matcher or field at fault.
    pub fn compile(&self) -> Result<Silence, String> {
        let matchers = self
            .matchers
            .iter()
            .map(|text| Matcher::parse(text))
            .collect::<Result<Vec<_>, _>>()?;
        let silence = Silence {
            id: self.id.clone(),
            matchers,
            starts_at_ms: self.starts_at_ms,
            ends_at_ms: self.ends_at_ms,
            created_by: self.created_by.clone(),
            comment: self.comment.clone(),
        };
        silence.validate()?;
        Ok(silence)
    }

    /// `active`, `pending` or `expired`, as Alertmanager says.
    pub fn state(&self, now_ms: i64) -> &'static str {
        if now_ms < self.starts_at_ms {
            "pending"
        } else if now_ms < self.ends_at_ms {
            "active"
        } else {
            "expired"
        }
    }
}

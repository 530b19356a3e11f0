//! Crisis triggers: rules, written as code, that decide when an incident (or several) calls
//! for the crisis cell. Three kinds, after what an MSP's duty manager decides by hand today:
//!
//! - `Unresolved`: an open incident of a given priority or higher, escalated at least to a
//!   given level, still not resolved after a delay ("P1 not resolved at level 2 after 10
//!   minutes");
//! - `Category`: an open incident of a category (ransomware, exfiltration…) touching an asset
//!   of a criticality or higher ("ransomware on a criticality ≥ 4 asset");
//! - `SameAttack`: the same detection rule firing in open incidents of several clients within
//!   a window ("the same attack on two clients") — each client gets its own crisis.
//!
//! `evaluate` is pure and idempotent: a trigger fires once per incident (or, for `SameAttack`,
//! once per rule and client); `TriggerState` remembers what fired and is stored by the caller.
//! A firing names the client, the trigger, the incidents and why, so that the caller opens the
//! crisis record and sends the crisis event (the cell itself — roles, clock, roadmap — builds
//! on that record).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerCondition {
    Unresolved {
        /// 1 = P1; this priority or higher.
        max_priority: u8,
        /// Escalated to at least this level (1 = supervision, 2 = expert teams…).
        #[serde(default)]
        min_level: u8,
        for_ms: i64,
    },
    Category {
        category: String,
        min_criticality: u8,
    },
    SameAttack {
        min_clients: usize,
        within_ms: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrisisTrigger {
    pub id: String,
    pub name: String,
    pub condition: TriggerCondition,
}

/// What a trigger needs to know of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentFacts {
    pub client: String,
    pub id: i64,
    /// 1 = P1.
    pub priority: u8,
    pub open: bool,
    pub opened_ms: i64,
    /// The escalation level reached (1 = supervision).
    pub level: u8,
    /// Categories of its alerts (e.g. from ATT&CK tactics or the rule pack: `ransomware`).
    pub categories: Vec<String>,
    /// Detection rules of its alerts, with when each last fired.
    pub rules: Vec<(String, i64)>,
    /// The highest criticality of the assets it touches.
    pub max_criticality: Option<u8>,
}

/// A trigger that fired: open a crisis for `client`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrisisFired {
    pub trigger: String,
    pub client: String,
    pub incidents: Vec<i64>,
    pub reason: String,
}

/// What already fired, so that a trigger fires once per incident (per rule and client for
/// `SameAttack`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TriggerState {
    pub fired: BTreeSet<(String, String, String)>,
}

fn minutes(ms: i64) -> i64 {
    ms / 60_000
}

/// Evaluates every trigger over the incidents of every client at `now_ms`.
pub fn evaluate(
    triggers: &[CrisisTrigger],
    incidents: &[IncidentFacts],
    state: &mut TriggerState,
    now_ms: i64,
) -> Vec<CrisisFired> {
    let mut fired = Vec::new();
    let open = || incidents.iter().filter(|i| i.open);
    for trigger in triggers {
        match &trigger.condition {
            TriggerCondition::Unresolved {
                max_priority,
                min_level,
                for_ms,
            } => {
                for incident in open() {
                    let due = incident.priority <= *max_priority
                        && incident.level >= *min_level
                        && now_ms.saturating_sub(incident.opened_ms) >= *for_ms;
                    let key = (
                        trigger.id.clone(),
                        incident.client.clone(),
                        incident.id.to_string(),
                    );
                    if due && state.fired.insert(key) {
                        fired.push(CrisisFired {
                            trigger: trigger.id.clone(),
                            client: incident.client.clone(),
                            incidents: vec![incident.id],
                            reason: format!(
                                "incident {} is P{} at level {} and unresolved for {} min",
                                incident.id,
                                incident.priority,
                                incident.level,
                                minutes(now_ms - incident.opened_ms)
                            ),
                        });
                    }
                }
            }
            TriggerCondition::Category {
                category,
                min_criticality,
            } => {
                for incident in open() {
                    let due = incident
                        .categories
                        .iter()
                        .any(|c| c.eq_ignore_ascii_case(category))
                        && incident
                            .max_criticality
                            .is_some_and(|c| c >= *min_criticality);
                    let key = (
                        trigger.id.clone(),
                        incident.client.clone(),
                        incident.id.to_string(),
                    );
                    if due && state.fired.insert(key) {
                        fired.push(CrisisFired {
                            trigger: trigger.id.clone(),
                            client: incident.client.clone(),
                            incidents: vec![incident.id],
                            reason: format!(
                                "incident {} is {category} on an asset of criticality {}",
                                incident.id,
                                incident.max_criticality.unwrap_or(0)
                            ),
                        });
                    }
                }
            }
            TriggerCondition::SameAttack {
                min_clients,
                within_ms,
            } => {
                // rule → client → incidents where it fired within the window
                let mut by_rule: BTreeMap<&str, BTreeMap<&str, Vec<i64>>> = BTreeMap::new();
                for incident in open() {
                    for (rule, last_ms) in &incident.rules {
                        if now_ms.saturating_sub(*last_ms) <= *within_ms {
                            by_rule
                                .entry(rule)
                                .or_default()
                                .entry(&incident.client)
                                .or_default()
                                .push(incident.id);
                        }
                    }
                }
                for (rule, clients) in by_rule {
                    if clients.len() < (*min_clients).max(2) {
                        continue;
                    }
                    // The reason is shown to the client's own users: it counts the other
                    // clients, never names them.
                    for (client, ids) in &clients {
                        let key = (trigger.id.clone(), (*client).to_owned(), rule.to_owned());
                        if state.fired.insert(key) {
                            fired.push(CrisisFired {
                                trigger: trigger.id.clone(),
                                client: (*client).to_owned(),
                                incidents: ids.clone(),
                                reason: format!(
                                    "rule {rule} fired for {} clients (this one included) within {} min",
                                    clients.len(),
                                    minutes(*within_ms)
                                ),
                            });
                        }
                    }
                }
            }
        }
    }
    fired
}

#[cfg(test)]
mod tests;

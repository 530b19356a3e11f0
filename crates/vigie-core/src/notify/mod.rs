//! Notifications, the pure part: what is sent (the payload formats receivers already speak),
//! when it is sent again after a failure (`Backoff`), and how a storm becomes one message
//! (`Grouper`, Alertmanager's group_wait / group_interval). Sending — SMTP, HTTP — and the
//! delivery log live at the edge; a delivery is retried until it succeeds and is shown as
//! failing meanwhile, never dropped.

pub mod payload;
pub mod silence;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Firing or resolved, as Alertmanager says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// An alert as a notification carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifiedAlert {
    pub fingerprint: String,
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    /// `None` while firing.
    pub ends_at_ms: Option<i64>,
    /// A link to the alert in Vigie.
    pub url: String,
}

/// Retries after a failed delivery: `base × 2^(attempt−1)`, capped at `max`, with no last
/// attempt — the delivery stays failing and keeps being retried at `max` intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub base_ms: i64,
    pub max_ms: i64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 10_000,
            max_ms: 10 * 60_000,
        }
    }
}

impl Backoff {
    /// When to try again after the `attempt`-th failure (1 for the first), from `failed_ms`.
    pub fn retry_at(&self, attempt: u32, failed_ms: i64) -> i64 {
        let shift = attempt.saturating_sub(1).min(30);
        let delay = self
            .base_ms
            .max(1)
            .saturating_mul(1i64 << shift)
            .min(self.max_ms.max(self.base_ms));
        failed_ms.saturating_add(delay)
    }
}

/// Alertmanager's grouping: the first alert of a group waits `group_wait` for others to join;
/// after a message, changes wait `group_interval`; an unchanged firing group is repeated after
/// `repeat_interval`. A storm of a thousand alerts of one group is one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTiming {
    pub group_wait_ms: i64,
    pub group_interval_ms: i64,
    pub repeat_interval_ms: i64,
}

impl Default for GroupTiming {
    /// Alertmanager's defaults: 30 s, 5 min, 4 h.
    fn default() -> Self {
        GroupTiming {
            group_wait_ms: 30_000,
            group_interval_ms: 5 * 60_000,
            repeat_interval_ms: 4 * 3_600_000,
        }
    }
}

/// Why a group's message goes out (Alertmanager's `notification_reason` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    FirstNotification,
    NewAlertsAdded,
    SomeAlertsResolved,
    AllAlertsResolved,
    RepeatIntervalElapsed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::FirstNotification => "first notification",
            Reason::NewAlertsAdded => "new alerts added",
            Reason::SomeAlertsResolved => "some alerts resolved",
            Reason::AllAlertsResolved => "all alerts resolved",
            Reason::RepeatIntervalElapsed => "repeat interval elapsed",
        }
    }
}

/// One group's alerts and timers; the caller keeps one per (receiver, group key).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Grouper {
    /// The alerts of the group by fingerprint, as last seen.
    pub alerts: BTreeMap<String, NotifiedAlert>,
    /// What the last message said of each alert.
    pub sent: BTreeMap<String, AlertStatus>,
    pub last_sent_ms: Option<i64>,
    /// When the next message may go out, if something is pending.
    pub flush_at_ms: Option<i64>,
}

impl Grouper {
    /// An alert (new, repeated, or resolved) joins the group at `now`.
    pub fn add(&mut self, alert: NotifiedAlert, timing: &GroupTiming, now_ms: i64) {
        let changed = self.sent.get(&alert.fingerprint) != Some(&alert.status);
        self.alerts.insert(alert.fingerprint.clone(), alert);
        if !changed {
            return;
        }
        let earliest = match self.last_sent_ms {
            None => now_ms.saturating_add(timing.group_wait_ms),
            Some(last) => last.saturating_add(timing.group_interval_ms).max(now_ms),
        };
        self.flush_at_ms = Some(self.flush_at_ms.map_or(earliest, |at| at.min(earliest)));
    }

    /// The message due at `now`, if any: every alert of the group with the reason; resolved
    /// alerts leave the group once told. Resolved alerts are always told (a silenced or
    /// inhibited alert's resolution included: the caller does not filter those out).
    pub fn flush(
        &mut self,
        timing: &GroupTiming,
        now_ms: i64,
    ) -> Option<(Reason, Vec<NotifiedAlert>)> {
        let repeat_due = self.flush_at_ms.is_none()
            && self
                .last_sent_ms
                .is_some_and(|last| now_ms >= last.saturating_add(timing.repeat_interval_ms))
            && self
                .alerts
                .values()
                .any(|a| a.status == AlertStatus::Firing);
        let due = self.flush_at_ms.is_some_and(|at| now_ms >= at) || repeat_due;
        if !due || self.alerts.is_empty() {
            return None;
        }
        let new_firing = self.alerts.values().any(|a| {
            a.status == AlertStatus::Firing && self.sent.get(&a.fingerprint) != Some(&a.status)
        });
        let firing = self
            .alerts
            .values()
            .filter(|a| a.status == AlertStatus::Firing)
            .count();
        let reason = if self.last_sent_ms.is_none() {
            Reason::FirstNotification
        } else if new_firing {
            Reason::NewAlertsAdded
        } else if firing == 0 {
            Reason::AllAlertsResolved
        } else if repeat_due {
            Reason::RepeatIntervalElapsed
        } else {
            Reason::SomeAlertsResolved
        };
        let alerts: Vec<NotifiedAlert> = self.alerts.values().cloned().collect();
        self.sent = alerts
            .iter()
            .map(|a| (a.fingerprint.clone(), a.status))
            .collect();
        self.alerts.retain(|_, a| a.status == AlertStatus::Firing);
        self.sent.retain(|_, status| *status == AlertStatus::Firing);
        self.last_sent_ms = Some(now_ms);
        self.flush_at_ms = None;
        Some((reason, alerts))
    }
}

#[cfg(test)]
mod tests;

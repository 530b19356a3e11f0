//! Incidents: alert signals deduplicated into alerts, alerts grouped per client into incidents,
//! and the incident state machine (new → acknowledged → resolved → closed, with reopening).
//! `IncidentBook::apply` is the only way in; it reads no clock and draws ids from counters it
//! was given, so replaying the same commands gives the same effects.
//!
//! # Alerts
//!
//! - An alert is keyed by (client, fingerprint) while its incident is not closed. A signal whose
//!   key exists updates that alert: `count` + 1, `last_seen_ms`, `last_event_id`, severity the
//!   maximum of both, status firing, its labels overwritten by the signal's (the latest state,
//!   output or end wins; labels the signal lacks stay); emits the incident and the alert.
//! - If that alert's incident is resolved and the signal comes within the client's reopen
//!   window of the incident's `resolved_ms` (both on the engine's clock, `now_ms`: the sender's
//!   clock may be skewed), the incident reopens: status new, acknowledged and resolved times
//!   cleared, the alert firing again, timeline `Reopened` by `vigie`.
//! - If the incident is resolved and the reopen window has passed, the old alert is detached
//!   (it stays as it is, with its incident, until that one closes) and the signal is treated
//!   as new.
//!
//! # Grouping
//!
//! - A new alert joins the open (new or acknowledged) incident of the same client and group
//!   key whose `last_signal_ms` is within the client's window of the signal's `time_ms` (either
//!   side: late signals join too; the latest such incident if several); otherwise a new
//!   incident is created (timeline `Created`, naming the alert's title). Joining writes timeline
//!   `AlertAdded`.
//! - The group key is built from the policy's `by` list in order: `asset=srv-1`,
//!   `asset=srv-1,rule=disk-full`. A missing asset reads `asset=-`. Clients without a policy
//!   use `GroupingPolicy::default()`: by asset, window 1 h, reopen window 1 h.
//! - Clients never share anything: two clients with the same fingerprint or group key get
//!   their own alerts and incidents.
//!
//! # Incident fields
//!
//! - `title` is the first alert's title; `assets` the sorted set of its alerts' assets (and
//!   of the source and target assets of the lateral movements its signals report);
//!   `alert_count` the number of distinct alerts.
//! - `impact` is the highest `impact_from_criticality` over its alerts' signals, `urgency` the
//!   highest `urgency_from_severity` over its alerts (high beats medium beats low); `priority`
//!   comes from the matrix (`priority`), recomputed on every new or updated alert. Both only
//!   rise, so the incident carries its own maximum and a restore needs nothing else. When the
//!   priority of an existing incident changes, timeline `PriorityChanged` says why:
//!   `priority P4 → P1: alert RAID degraded (critical) on db-1 (criticality 5)`.
//! - `updated_ms` is `now_ms` on every change; `last_signal_ms` the latest signal `time_ms`.
//!
//! # Commands
//!
//! - Acknowledge: new → acknowledged, else `InvalidTransition`.
//! - Resolve: new or acknowledged → resolved; all its alerts become resolved.
//! - Close: any open status → closed; its alerts end resolved; the incident and its alerts
//!   leave memory once their final records are emitted. Any later command on it gets
//!   `UnknownIncident`.
//! - Comment: any open incident, text trimmed and not empty (else `EmptyComment`).
//! - Reassign: sets the assignee (a blank name unassigns): "assigned to X" or "unassigned".
//! - ResolveAlert (a recovered check): the live alert of that client and fingerprint, if
//!   firing in a new or acknowledged incident, becomes resolved; when none of the incident's
//!   alerts still fires, the incident is resolved too (timeline `Resolved`, naming the
//!   alert). Otherwise nothing happens: a recovery may come for a problem that never paged.
//!   A repeat of the alert reopens the incident as any repeat does.
//! - Each of these emits the updated incident (and, for resolve and close, every alert of it),
//!   then one timeline entry naming the actor.
//! - Tick closes resolved incidents whose reopen window has passed since `resolved_ms` (actor
//!   `vigie`, the text says why), and does nothing else.
//!
//! # Effects
//!
//! Records come whole, as they now are, and always before the timeline entries that describe
//! them; an incident's record comes before its alerts'. On error nothing changed and nothing
//! is emitted.

mod engine;
pub mod model;
mod priority;

pub use engine::{CommandError, Effect, GroupBy, GroupingPolicy, IncidentBook, IncidentCommand};
pub use model::{
    Alert, AlertId, AlertSignal, AlertStatus, Incident, IncidentId, IncidentStatus, Labels, Level,
    Priority, TimelineEntry, TimelineKind,
};
pub use priority::{Matrix, impact_from_criticality, priority, urgency_from_severity};

#[cfg(test)]
mod tests;

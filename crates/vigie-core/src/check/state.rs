//! The state machine of one checked object (a service or a host), with Icinga 2's semantics.
//! `CheckStatus::apply` is the only way in; it reads no clock, so replaying the same commands
//! gives the same effects. The invariant it guards: every notifiable event yields exactly one
//! `Notify` or one `Suppressed` effect saying why not.
//!
//! # Soft and hard states
//!
//! - Services take the plugin state as is. Hosts map OK and WARNING to UP, the rest to DOWN;
//!   DOWN becomes UNREACHABLE when the result says a parent is down.
//! - From a hard OK, a problem result makes a SOFT state, attempt 1, and the next check comes
//!   after `retry_interval_ms`. Each further problem result counts an attempt; at
//!   `max_check_attempts` the state turns HARD (with 1, at once). A hard problem stays hard
//!   through other problem states; its attempt reads `max_check_attempts` (as Nagios shows it,
//!   where Icinga 2 resets it to 1).
//! - An OK result is always HARD with attempt 1. After a soft problem it is a soft recovery: the
//!   hard state never left OK, so it does not notify. After a hard problem it is a hard recovery.
//! - `StateChanged { hard: true }` when the hard state changes (`from` is the previous hard
//!   state), `hard: false` for other changes of the current state (`from` the previous state).
//! - Next check: `retry_interval_ms` after a result while in a soft problem, else
//!   `check_interval_ms`.
//!
//! # Notifications
//!
//! A hard change to a problem state notifies `Problem`, a hard recovery `Recovery`. In order of
//! precedence, a notification is suppressed by: an UNREACHABLE host (problem), an active
//! downtime, flapping (problem and recovery), an acknowledgement (problem), or, for a recovery,
//! a problem that was never notified (Icinga 2 sends recoveries only to those who heard of the
//! problem).
//!
//! # Flapping
//!
//! Icinga 2's measure: the last 20 results, each marked when its state differs from the one
//! before (soft and hard alike); a change at position `i` (0 the oldest) weighs
//! `0.8 + 0.02·i`, so 0.8 to 1.18; the percentage is `100 · Σ weights / 20`. Flapping starts when
//! it rises above `flapping_threshold_high` and stops when it falls to `flapping_threshold_low`
//! or below; `FlappingStart` and `FlappingEnd` notify (unless in downtime).
//!
//! # Acknowledgements
//!
//! Only a problem can be acknowledged, once (remove it first to change it). A non-sticky
//! acknowledgement clears on any state change, a sticky one only on recovery to OK/UP; either
//! clears at `expires_ms` when set. Acknowledging notifies `Acknowledgement`.
//!
//! # Downtimes
//!
//! - Fixed: active over `[start_ms, end_ms)`.
//! - Flexible: starts at the first problem result within `[start_ms, end_ms)`, or when the
//!   window opens on an object already in a problem state, and lasts `duration_ms` from then
//!   (possibly past `end_ms`); never triggered, it is dropped at `end_ms` without a word.
//! - Start and end notify `DowntimeStart` and `DowntimeEnd`; removing an active one notifies
//!   `DowntimeEnd`.
//! - When the last active downtime ends, or flapping ends, what was kept quiet and still holds
//!   is told: a hard problem not yet notified (`Problem`, unless acknowledged), or a recovery
//!   from a notified problem (`Recovery`). Recurring downtimes are not the state machine's: the supervision
//!   runtime gives each occurrence as a fixed one (the estate's `recurring_downtimes`).
//!
//! Time-driven changes (acknowledgement expiry, downtime start and end) happen at the start of
//! every command, so `Tick` only needs to be sent when nothing else comes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::plugin::PluginResult;

/// The service states of the plugin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CheckState {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl CheckState {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Ok => "OK",
            CheckState::Warning => "WARNING",
            CheckState::Critical => "CRITICAL",
            CheckState::Unknown => "UNKNOWN",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HostState {
    Up,
    Down,
    Unreachable,
}

impl HostState {
    /// Icinga 2's mapping: OK and WARNING are UP; DOWN is UNREACHABLE behind a down parent.
    pub fn from_check_state(state: CheckState, parent_down: bool) -> Self {
        match state {
            CheckState::Ok | CheckState::Warning => HostState::Up,
            CheckState::Critical | CheckState::Unknown if parent_down => HostState::Unreachable,
            CheckState::Critical | CheckState::Unknown => HostState::Down,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Up => "UP",
            HostState::Down => "DOWN",
            HostState::Unreachable => "UNREACHABLE",
        }
    }
}

/// The state of a service or of a host; serialized as the bare state name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ObjectState {
    Service(CheckState),
    Host(HostState),
}

impl ObjectState {
    /// OK or UP: not a problem.
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            ObjectState::Service(CheckState::Ok) | ObjectState::Host(HostState::Up)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectState::Service(state) => state.as_str(),
            ObjectState::Host(state) => state.as_str(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StateType {
    Soft,
    Hard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Service,
    Host,
}

/// Per-object settings, Icinga 2's defaults except flapping detection, which is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckConfig {
    pub max_check_attempts: u32,
    pub check_interval_ms: i64,
    pub retry_interval_ms: i64,
    pub enable_flapping: bool,
    /// Percent; flapping starts above it.
    pub flapping_threshold_high: f64,
    /// Percent; flapping stops at or below it.
    pub flapping_threshold_low: f64,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            max_check_attempts: 3,
            check_interval_ms: 5 * 60_000,
            retry_interval_ms: 60_000,
            enable_flapping: true,
            flapping_threshold_high: 30.0,
            flapping_threshold_low: 25.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub author: String,
    pub comment: String,
    pub sticky: bool,
    pub set_ms: i64,
    pub expires_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum DowntimeKind {
    Fixed,
    Flexible { duration_ms: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downtime {
    pub id: u64,
    pub author: String,
    pub comment: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub kind: DowntimeKind,
    /// When it became active (for a flexible downtime, when it was triggered).
    pub started_ms: Option<i64>,
}

impl Downtime {
    pub fn is_active(&self) -> bool {
        self.started_ms.is_some()
    }

    /// When an active downtime ends.
    fn active_until(&self, started_ms: i64) -> i64 {
        match self.kind {
            DowntimeKind::Fixed => self.end_ms,
            DowntimeKind::Flexible { duration_ms } => started_ms.saturating_add(duration_ms),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CheckCommand {
    /// A check result; `parent_down` (hosts only) turns DOWN into UNREACHABLE.
    Result {
        result: PluginResult,
        parent_down: bool,
    },
    Acknowledge {
        author: String,
        comment: String,
        sticky: bool,
        expires_ms: Option<i64>,
    },
    RemoveAcknowledgement,
    /// `id` is chosen by the caller and must be unique among this object's downtimes.
    ScheduleDowntime {
        id: u64,
        author: String,
        comment: String,
        start_ms: i64,
        end_ms: i64,
        kind: DowntimeKind,
    },
    RemoveDowntime {
        id: u64,
    },
    /// Only lets time pass: expiries, downtime starts and ends.
    Tick,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotificationKind {
    Problem,
    Recovery,
    FlappingStart,
    FlappingEnd,
    Acknowledgement,
    DowntimeStart,
    DowntimeEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SuppressionReason {
    Unreachable,
    Downtime,
    Flapping,
    Acknowledged,
    ProblemNotNotified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AckClearReason {
    /// A non-sticky acknowledgement met a state change.
    StateChanged,
    Recovered,
    Expired,
    Removed,
}

/// Why a command changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    NotAProblem,
    AlreadyAcknowledged,
    NotAcknowledged,
    ExpiryInThePast,
    EmptyDowntimeWindow,
    DuplicateDowntime,
    UnknownDowntime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CheckEffect {
    StateChanged {
        from: ObjectState,
        to: ObjectState,
        hard: bool,
    },
    Notify {
        kind: NotificationKind,
    },
    Suppressed {
        kind: NotificationKind,
        reason: SuppressionReason,
    },
    NextCheckAt(i64),
    AcknowledgementCleared {
        reason: AckClearReason,
    },
    Rejected {
        reason: RejectReason,
    },
}

/// Results kept for flapping detection.
const FLAPPING_WINDOW: usize = 20;

/// Everything known about one checked object; the caller stores it whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub kind: CheckKind,
    /// Shared with the check's definition and the other checks made from the same rule.
    pub config: Arc<CheckConfig>,
    pub state: ObjectState,
    pub state_type: StateType,
    pub attempt: u32,
    pub last_hard_state: ObjectState,
    /// Boxed `str`s, here and below: no spare capacity, 8 bytes less each than a `String`.
    pub output: Box<str>,
    pub long_output: Box<str>,
    pub perfdata: Box<str>,
    pub last_check_ms: Millis,
    pub last_state_change_ms: Millis,
    pub last_hard_state_change_ms: Millis,
    pub next_check_ms: Millis,
    /// Whether the current hard problem was notified, so that its recovery may be.
    pub problem_notified: bool,
    /// One entry per recent result, oldest first, always `FLAPPING_WINDOW` long: whether its
    /// state differed from the previous result's.
    pub flapping_changes: FlappingWindow,
    pub flapping_percent: f64,
    pub flapping: bool,
    /// Boxed: rare, and a million statuses are kept in memory.
    pub acknowledgement: Option<Box<Acknowledgement>>,
    pub downtimes: Vec<Downtime>,
}

/// An optional instant, in milliseconds since the epoch, in 8 bytes where an `Option<i64>`
/// takes 16 (a million statuses keep four). Written and read as an optional integer;
/// `i64::MIN` stands for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Millis(i64);

impl Millis {
    pub const NONE: Millis = Millis(i64::MIN);

    /// `ms`, or none for `i64::MIN`.
    pub fn at(ms: i64) -> Millis {
        Millis(ms)
    }

    pub fn get(self) -> Option<i64> {
        (self.0 != i64::MIN).then_some(self.0)
    }

    pub fn is_some_and(self, test: impl FnOnce(i64) -> bool) -> bool {
        self.get().is_some_and(test)
    }
}

impl Default for Millis {
    fn default() -> Self {
        Millis::NONE
    }
}

impl From<Option<i64>> for Millis {
    fn from(ms: Option<i64>) -> Self {
        ms.map_or(Millis::NONE, Millis)
    }
}

impl Serialize for Millis {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<i64>::deserialize(deserializer).map(Millis::from)
    }
}

/// The last `FLAPPING_WINDOW` results, oldest first: whether each changed the state. One
/// bit each (bit 0 the oldest); written as a list of booleans, and read from a stored list of
/// any length (its last `FLAPPING_WINDOW`, older rows padded with "no change").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlappingWindow(u32);

impl FlappingWindow {
    const MASK: u32 = (1 << FLAPPING_WINDOW) - 1;

    /// Adds the latest result; the oldest leaves.
    pub fn push(&mut self, changed: bool) {
        self.0 = ((self.0 >> 1) | (u32::from(changed) << (FLAPPING_WINDOW - 1))) & Self::MASK;
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = bool> + '_ {
        (0..FLAPPING_WINDOW).map(|position| self.0 & (1 << position) != 0)
    }
}

impl Serialize for FlappingWindow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for FlappingWindow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Vec::<bool>::deserialize(deserializer)?;
        let mut window = FlappingWindow::default();
        let kept = stored.len().min(FLAPPING_WINDOW);
        for changed in &stored[stored.len() - kept..] {
            window.push(*changed);
        }
        Ok(window)
    }
}

impl CheckStatus {
    /// A new object, hard OK (UP for a host), never checked.
    pub fn new(kind: CheckKind, config: impl Into<Arc<CheckConfig>>) -> Self {
        let ok = match kind {
            CheckKind::Service => ObjectState::Service(CheckState::Ok),
            CheckKind::Host => ObjectState::Host(HostState::Up),
        };
        CheckStatus {
            kind,
            config: config.into(),
            state: ok,
            state_type: StateType::Hard,
            attempt: 1,
            last_hard_state: ok,
            output: Box::default(),
            long_output: Box::default(),
            perfdata: Box::default(),
            last_check_ms: Millis::NONE,
            last_state_change_ms: Millis::NONE,
            last_hard_state_change_ms: Millis::NONE,
            next_check_ms: Millis::NONE,
            problem_notified: false,
            flapping_changes: FlappingWindow::default(),
            flapping_percent: 0.0,
            flapping: false,
            acknowledgement: None,
            downtimes: Vec::new(),
        }
    }

    /// The id a new downtime of this object takes: one above the highest it has.
    pub fn next_downtime_id(&self) -> u64 {
        self.downtimes.iter().map(|d| d.id).max().unwrap_or(0) + 1
    }

    pub fn in_downtime(&self) -> bool {
        self.downtimes.iter().any(Downtime::is_active)
    }

    pub fn apply(&mut self, command: CheckCommand, now_ms: i64) -> Vec<CheckEffect> {
        let mut effects = Vec::new();
        self.advance_time(now_ms, &mut effects);
        match command {
            CheckCommand::Result {
                result,
                parent_down,
            } => self.process_result(result, parent_down, now_ms, &mut effects),
            CheckCommand::Acknowledge {
                author,
                comment,
                sticky,
                expires_ms,
            } => {
                let rejected = if self.state.is_ok() {
                    Some(RejectReason::NotAProblem)
                } else if self.acknowledgement.is_some() {
                    Some(RejectReason::AlreadyAcknowledged)
                } else if expires_ms.is_some_and(|expires| expires <= now_ms) {
                    Some(RejectReason::ExpiryInThePast)
                } else {
                    None
                };
                if let Some(reason) = rejected {
                    effects.push(CheckEffect::Rejected { reason });
                } else {
                    self.acknowledgement = Some(Box::new(Acknowledgement {
                        author,
                        comment,
                        sticky,
                        set_ms: now_ms,
                        expires_ms,
                    }));
                    self.notify(NotificationKind::Acknowledgement, &mut effects);
                }
            }
            CheckCommand::RemoveAcknowledgement => {
                if self.acknowledgement.take().is_some() {
                    effects.push(CheckEffect::AcknowledgementCleared {
                        reason: AckClearReason::Removed,
                    });
                } else {
                    effects.push(CheckEffect::Rejected {
                        reason: RejectReason::NotAcknowledged,
                    });
                }
            }
            CheckCommand::ScheduleDowntime {
                id,
                author,
                comment,
                start_ms,
                end_ms,
                kind,
            } => {
                let empty = end_ms <= start_ms
                    || matches!(kind, DowntimeKind::Flexible { duration_ms } if duration_ms <= 0);
                if empty {
                    effects.push(CheckEffect::Rejected {
                        reason: RejectReason::EmptyDowntimeWindow,
                    });
                } else if self.downtimes.iter().any(|d| d.id == id) {
                    effects.push(CheckEffect::Rejected {
                        reason: RejectReason::DuplicateDowntime,
                    });
                } else {
                    self.downtimes.push(Downtime {
                        id,
                        author,
                        comment,
                        start_ms,
                        end_ms,
                        kind,
                        started_ms: None,
                    });
                    self.advance_time(now_ms, &mut effects);
                }
            }
            CheckCommand::RemoveDowntime { id } => {
                match self.downtimes.iter().position(|d| d.id == id) {
                    Some(index) => {
                        if self.downtimes.remove(index).is_active() {
                            self.notify(NotificationKind::DowntimeEnd, &mut effects);
                            self.notify_what_was_suppressed(&mut effects);
                        }
                    }
                    None => effects.push(CheckEffect::Rejected {
                        reason: RejectReason::UnknownDowntime,
                    }),
                }
            }
            CheckCommand::Tick => {}
        }
        effects
    }

    /// Acknowledgement expiry, downtime starts and ends due at `now_ms`.
    fn advance_time(&mut self, now_ms: i64, effects: &mut Vec<CheckEffect>) {
        let expired = self
            .acknowledgement
            .as_ref()
            .and_then(|ack| ack.expires_ms)
            .is_some_and(|expires| expires <= now_ms);
        if expired {
            self.acknowledgement = None;
            effects.push(CheckEffect::AcknowledgementCleared {
                reason: AckClearReason::Expired,
            });
        }
        let problem = !self.state.is_ok();
        let mut notifications = Vec::new();
        self.downtimes.retain_mut(|downtime| {
            if let Some(started_ms) = downtime.started_ms {
                if now_ms >= downtime.active_until(started_ms) {
                    notifications.push(NotificationKind::DowntimeEnd);
                    return false;
                }
                return true;
            }
            if now_ms >= downtime.end_ms {
                // Its window passed while it never became active.
                return false;
            }
            let due =
                now_ms >= downtime.start_ms && (downtime.kind == DowntimeKind::Fixed || problem);
            if due {
                downtime.started_ms = Some(now_ms);
                notifications.push(NotificationKind::DowntimeStart);
            }
            true
        });
        let downtime_ended = notifications.contains(&NotificationKind::DowntimeEnd);
        for kind in notifications {
            self.notify(kind, effects);
        }
        if downtime_ended {
            self.notify_what_was_suppressed(effects);
        }
    }

    fn process_result(
        &mut self,
        result: PluginResult,
        parent_down: bool,
        now_ms: i64,
        effects: &mut Vec<CheckEffect>,
    ) {
        let new_state = match self.kind {
            CheckKind::Service => ObjectState::Service(result.state),
            CheckKind::Host => {
                ObjectState::Host(HostState::from_check_state(result.state, parent_down))
            }
        };
        let old_state = self.state;
        let max_attempts = self.config.max_check_attempts.max(1);

        let (state_type, attempt) = if new_state.is_ok() {
            (StateType::Hard, 1)
        } else if old_state.is_ok() || self.state_type == StateType::Soft {
            let attempt = if old_state.is_ok() {
                1
            } else {
                self.attempt + 1
            };
            if attempt >= max_attempts {
                (StateType::Hard, max_attempts)
            } else {
                (StateType::Soft, attempt)
            }
        } else {
            (StateType::Hard, max_attempts)
        };

        let state_change = new_state != old_state;
        let hard_change = state_type == StateType::Hard && new_state != self.last_hard_state;
        if hard_change {
            effects.push(CheckEffect::StateChanged {
                from: self.last_hard_state,
                to: new_state,
                hard: true,
            });
            self.last_hard_state = new_state;
            self.last_hard_state_change_ms = Millis::at(now_ms);
        } else if state_change {
            effects.push(CheckEffect::StateChanged {
                from: old_state,
                to: new_state,
                hard: false,
            });
        }
        if state_change {
            self.last_state_change_ms = Millis::at(now_ms);
        }
        self.state = new_state;
        self.state_type = state_type;
        self.attempt = attempt;
        self.output = result.output.into_boxed_str();
        self.long_output = result.long_output.into_boxed_str();
        self.perfdata = result.perfdata.into_boxed_str();
        self.last_check_ms = Millis::at(now_ms);

        let ack_cleared = match &self.acknowledgement {
            Some(_) if state_change && new_state.is_ok() => Some(AckClearReason::Recovered),
            Some(ack) if state_change && !ack.sticky => Some(AckClearReason::StateChanged),
            _ => None,
        };
        if let Some(reason) = ack_cleared {
            self.acknowledgement = None;
            effects.push(CheckEffect::AcknowledgementCleared { reason });
        }

        if !new_state.is_ok() {
            // Flexible downtimes whose window is open start at the first problem.
            self.advance_time(now_ms, effects);
        }

        let flapping_ended =
            self.config.enable_flapping && self.update_flapping(state_change, effects);

        if hard_change {
            let kind = if new_state.is_ok() {
                NotificationKind::Recovery
            } else {
                NotificationKind::Problem
            };
            // A recovery kept quiet by downtime or flapping leaves the problem notified, so
            // that it can be told when they end.
            if self.notify(kind, effects) {
                self.problem_notified = kind == NotificationKind::Problem;
            } else if kind == NotificationKind::Recovery && !self.in_downtime() && !self.flapping {
                self.problem_notified = false;
            }
        } else if flapping_ended {
            self.notify_what_was_suppressed(effects);
        }

        let interval = if state_type == StateType::Soft {
            self.config.retry_interval_ms
        } else {
            self.config.check_interval_ms
        };
        let next = now_ms.saturating_add(interval);
        self.next_check_ms = Millis::at(next);
        effects.push(CheckEffect::NextCheckAt(next));
    }

    /// Returns whether flapping just ended.
    fn update_flapping(&mut self, state_change: bool, effects: &mut Vec<CheckEffect>) -> bool {
        self.flapping_changes.push(state_change);
        let weighted: f64 = self
            .flapping_changes
            .iter()
            .enumerate()
            .filter(|(_, changed)| *changed)
            .map(|(position, _)| 0.8 + 0.02 * position as f64)
            .fold(0.0, |sum, weight| sum + weight);
        self.flapping_percent = 100.0 * weighted / FLAPPING_WINDOW as f64;
        let flapping = if self.flapping {
            self.flapping_percent > self.config.flapping_threshold_low
        } else {
            self.flapping_percent > self.config.flapping_threshold_high
        };
        if flapping != self.flapping {
            self.flapping = flapping;
            let kind = if flapping {
                NotificationKind::FlappingStart
            } else {
                NotificationKind::FlappingEnd
            };
            self.notify(kind, effects);
            return !flapping;
        }
        false
    }

    /// After a downtime or flapping ends: tell what was kept quiet if it still holds, a hard
    /// problem nobody heard of or a recovery from a problem they did hear of (as Icinga 2.11+).
    fn notify_what_was_suppressed(&mut self, effects: &mut Vec<CheckEffect>) {
        if self.in_downtime() || self.flapping {
            return;
        }
        let hard_problem = self.state_type == StateType::Hard && !self.state.is_ok();
        if hard_problem && !self.problem_notified {
            if self.notify(NotificationKind::Problem, effects) {
                self.problem_notified = true;
            }
        } else if self.state.is_ok()
            && self.problem_notified
            && self.notify(NotificationKind::Recovery, effects)
        {
            self.problem_notified = false;
        }
    }

    /// Pushes `Notify` or `Suppressed` for `kind`; returns whether it notified.
    fn notify(&self, kind: NotificationKind, effects: &mut Vec<CheckEffect>) -> bool {
        use NotificationKind as K;
        let unreachable = self.state == ObjectState::Host(HostState::Unreachable);
        let reason = match kind {
            K::Problem if unreachable => Some(SuppressionReason::Unreachable),
            K::Problem | K::Recovery | K::FlappingStart | K::FlappingEnd | K::Acknowledgement
                if self.in_downtime() =>
            {
                Some(SuppressionReason::Downtime)
            }
            K::Problem | K::Recovery if self.flapping => Some(SuppressionReason::Flapping),
            K::Problem if self.acknowledgement.is_some() => Some(SuppressionReason::Acknowledged),
            K::Recovery if !self.problem_notified => Some(SuppressionReason::ProblemNotNotified),
            _ => None,
        };
        match reason {
            Some(reason) => {
                effects.push(CheckEffect::Suppressed { kind, reason });
                false
            }
            None => {
                effects.push(CheckEffect::Notify { kind });
                true
            }
        }
    }
}

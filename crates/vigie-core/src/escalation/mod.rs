//! Escalation policies and on-call schedules, timer-driven and pure.
//!
//! A policy is a list of steps; each step notifies its targets (a team, a person, whoever is
//! on call in a schedule, the client's contact), then waits. When a step's wait is over and
//! the incident is not acknowledged, the next step fires; after the last step the policy
//! starts again from the first, `repeat` more times (PagerDuty's `num_loops`), then is
//! exhausted. An acknowledged incident stops the escalation; if `reescalate_after` is set and
//! the incident is still not resolved that long after the acknowledgement, the escalation
//! starts again at the step after the one that was acknowledged (the "ack without resolution"
//! that Grafana OnCall users keep asking for). A resolution ends it for good.
//!
//! `Escalation::apply(command, now)` returns the effects; the caller stores the new state and
//! the notifications it implies in one transaction, so that a restart neither pages twice nor
//! loses a page: a step is marked fired in the same state that carries its notification, and
//! a `Tick` after a restart fires each overdue step exactly once (late, never twice).
//!
//! Conditions: a step may require a minimum priority (P1 is the highest, so `max_priority:
//! 2` means P1 or P2) and may hold only within or outside the client's business hours
//! (`during`); a step whose condition does not hold when it comes due is skipped without
//! waiting. Business hours are the caller's to know (the core has no clock and no calendar):
//! `apply_with` asks a function, `apply` assumes business hours at every instant.

use serde::{Deserialize, Serialize};

/// Who a step notifies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Team(String),
    Person(String),
    /// Whoever is on call in this schedule when the step fires.
    Schedule(String),
    /// The client's contact of this id (or the client's contacts when `None`).
    ClientContact(Option<String>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub targets: Vec<Target>,
    /// How long to wait for an acknowledgement before the next step.
    pub wait_ms: i64,
    /// Fire only for incidents of this priority or higher (1 = P1); `None`: always.
    #[serde(default)]
    pub max_priority: Option<u8>,
    /// Fire only within, or only outside, the client's business hours; `None`: always.
    #[serde(default)]
    pub during: Option<Hours>,
}

/// When a step holds, against the client's business hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hours {
    BusinessHours,
    OutsideBusinessHours,
}

impl Hours {
    fn holds(self, in_business_hours: bool) -> bool {
        match self {
            Hours::BusinessHours => in_business_hours,
            Hours::OutsideBusinessHours => !in_business_hours,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub id: String,
    pub steps: Vec<Step>,
    /// How many times the whole policy runs again after its last step.
    #[serde(default)]
    pub repeat: u32,
    /// Acknowledged but not resolved this long: escalate again.
    #[serde(default)]
    pub reescalate_after_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for `next_at_ms` to fire step `step` of round `round`.
    Waiting,
    Acknowledged,
    /// Every step of every round fired without an acknowledgement.
    Exhausted,
    Resolved,
}

/// Where an incident is in its policy; the caller stores it whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    pub policy: Policy,
    pub priority: u8,
    pub phase: Phase,
    /// The next step to fire (index into the policy's steps).
    pub step: usize,
    /// 0 for the first run through the steps, then 1..=repeat.
    pub round: u32,
    /// When the next step fires (`Waiting`) or the re-escalation is due (`Acknowledged`).
    pub next_at_ms: Option<i64>,
    /// Steps fired so far, in all rounds.
    pub fired: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    Tick,
    Acknowledge,
    Resolve,
    /// The incident's priority changed (conditions are read when a step fires).
    SetPriority(u8),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    /// Notify these targets: step `step` (0-based) of round `round`; `reescalation` when
    /// an acknowledgement went unresolved too long.
    Notify {
        step: usize,
        round: u32,
        targets: Vec<Target>,
        reescalation: bool,
        /// When the step was due (a step fired late after a restart says so).
        due_ms: i64,
    },
    /// A step skipped because its condition (priority, business hours) does not hold.
    Skipped {
        step: usize,
        round: u32,
    },
    Exhausted,
    Stopped {
        reason: Phase,
    },
}

impl Escalation {
    /// Starts escalating at `now`: the first step is due at once.
    pub fn start(policy: Policy, priority: u8, now_ms: i64) -> Escalation {
        let phase = if policy.steps.is_empty() {
            Phase::Exhausted
        } else {
            Phase::Waiting
        };
        Escalation {
            next_at_ms: (phase == Phase::Waiting).then_some(now_ms),
            policy,
            priority,
            phase,
            step: 0,
            round: 0,
            fired: 0,
        }
    }

    /// `apply_with` for a client that is always within business hours: a step `during:
    /// outside_business_hours` is always skipped.
    pub fn apply(&mut self, command: Command, now_ms: i64) -> Vec<Effect> {
        self.apply_with(command, now_ms, &|_| true)
    }

    /// Applies `command` at `now`; `in_business_hours` says whether an instant (epoch ms) is
    /// within the client's business hours, and is asked for the instant each step comes due.
    pub fn apply_with(
        &mut self,
        command: Command,
        now_ms: i64,
        in_business_hours: &dyn Fn(i64) -> bool,
    ) -> Vec<Effect> {
        match command {
            Command::SetPriority(priority) => {
                self.priority = priority;
                Vec::new()
            }
            Command::Resolve => {
                if self.phase == Phase::Resolved {
                    return Vec::new();
                }
                self.phase = Phase::Resolved;
                self.next_at_ms = None;
                vec![Effect::Stopped {
                    reason: Phase::Resolved,
                }]
            }
            Command::Acknowledge => {
                if !matches!(self.phase, Phase::Waiting | Phase::Exhausted) {
                    return Vec::new();
                }
                self.phase = Phase::Acknowledged;
                self.next_at_ms = self
                    .policy
                    .reescalate_after_ms
                    .map(|after| now_ms.saturating_add(after));
                vec![Effect::Stopped {
                    reason: Phase::Acknowledged,
                }]
            }
            Command::Tick => self.tick(now_ms, in_business_hours),
        }
    }

    fn tick(&mut self, now_ms: i64, in_business_hours: &dyn Fn(i64) -> bool) -> Vec<Effect> {
        let mut effects = Vec::new();
        let mut reescalation = false;
        if self.phase == Phase::Acknowledged {
            match self.next_at_ms {
                Some(due) if due <= now_ms => {
                    self.phase = Phase::Waiting;
                    reescalation = true;
                    if self.step >= self.policy.steps.len() {
                        self.step = 0;
                    }
                }
                _ => return effects,
            }
        }
        // Fire every step that is due, each once; bounded by the steps of every round.
        let bound = self.policy.steps.len() * (self.policy.repeat as usize + 1) + 1;
        for _ in 0..bound {
            if self.phase != Phase::Waiting {
                break;
            }
            let Some(due) = self.next_at_ms.filter(|due| *due <= now_ms) else {
                break;
            };
            let Some(step) = self.policy.steps.get(self.step) else {
                self.phase = Phase::Exhausted;
                self.next_at_ms = None;
                effects.push(Effect::Exhausted);
                break;
            };
            let applies = step.max_priority.is_none_or(|max| self.priority <= max)
                && step
                    .during
                    .is_none_or(|hours| hours.holds(in_business_hours(due)));
            if applies {
                effects.push(Effect::Notify {
                    step: self.step,
                    round: self.round,
                    targets: step.targets.clone(),
                    reescalation,
                    due_ms: due,
                });
                self.fired += 1;
                reescalation = false;
            } else {
                effects.push(Effect::Skipped {
                    step: self.step,
                    round: self.round,
                });
            }
            let next_due = if applies {
                due.saturating_add(step.wait_ms)
            } else {
                due
            };
            self.step += 1;
            // After the last step of the last round, its wait still runs: an acknowledgement
            // can come; when it is over, the escalation is exhausted (`steps.get` above).
            if self.step == self.policy.steps.len() && self.round < self.policy.repeat {
                self.round += 1;
                self.step = 0;
            }
            self.next_at_ms = Some(next_due);
        }
        effects
    }
}

/// An on-call rotation: members take turns of `shift_ms`, starting at `start_ms` with the
/// first member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rotation {
    pub members: Vec<String>,
    pub start_ms: i64,
    pub shift_ms: i64,
}

/// Someone taking the schedule over for a while (a swap, a sick day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub person: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// An on-call schedule: layered rotations (the last layer with someone on call wins, as in
/// PagerDuty) and overrides above them all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: String,
    pub rotations: Vec<Rotation>,
    #[serde(default)]
    pub overrides: Vec<Override>,
}

impl Rotation {
    fn on_call(&self, now_ms: i64) -> Option<&str> {
        if self.members.is_empty() || self.shift_ms <= 0 || now_ms < self.start_ms {
            return None;
        }
        let turn = (now_ms - self.start_ms) / self.shift_ms;
        let index = usize::try_from(turn.rem_euclid(self.members.len() as i64)).ok()?;
        self.members.get(index).map(String::as_str)
    }
}

impl Schedule {
    /// Who is on call at `now`, if anyone.
    pub fn on_call(&self, now_ms: i64) -> Option<&str> {
        if let Some(cover) = self
            .overrides
            .iter()
            .rev()
            .find(|o| o.start_ms <= now_ms && now_ms < o.end_ms)
        {
            return Some(&cover.person);
        }
        self.rotations.iter().rev().find_map(|r| r.on_call(now_ms))
    }
}

#[cfg(test)]
mod tests;

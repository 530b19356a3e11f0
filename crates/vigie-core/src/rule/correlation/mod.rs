//! Sigma v2.1 correlation rules: their parsed form (`rule`) and the pure engine that keeps
//! sliding windows per group and reports when a correlation's condition holds (`engine`),
//! including absences (an `event_count` bounded from above, such as a sensor gone silent,
//! judged on the clock's ticks).
//! Invariant: the client is always part of a group's key, so events of two clients never
//! correlate, and the engine's state is bounded by `CorrelationLimits`.

mod engine;
mod rule;

pub use engine::{CorrelationEngine, CorrelationLimits, CorrelationMatch};
pub use rule::{CompareOp, CorrelationCondition, CorrelationKind, CorrelationRule, parse_timespan};

#[cfg(test)]
mod tests;

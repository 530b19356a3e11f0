//! Vigie's domain, free of IO and of the clock: events, the estate, alert rules, incidents and
//! their state machines. Time and ids are parameters; everything here is replayable.

pub mod alert;
pub mod check;
pub mod crisis;
pub mod escalation;
pub mod estate;
pub mod event;
pub mod incident;
pub mod notify;
pub mod rule;
pub mod service;
pub(crate) mod yaml;

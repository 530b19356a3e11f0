//! Checks in the Nagios lineage: what a monitoring plugin's exit status and output mean
//! (`plugin`), its performance data (`perfdata`) and threshold ranges (`range`), and the state
//! machine of a checked host or service (`state`): soft and hard states, flapping,
//! acknowledgements and downtimes, with the notifications they allow or suppress.
//!
//! Everything here is pure: the executor that runs plugins and the scheduler that honours
//! `CheckEffect::NextCheckAt` live at the edge; time is a parameter in epoch milliseconds.

pub mod passive;
pub mod perfdata;
pub mod plugin;
pub mod range;
pub mod schedule;
pub mod series;
pub mod spec;
pub mod state;

pub use perfdata::{PerfError, PerfValue, UnitOfMeasure, parse_perfdata, unit_of};
pub use plugin::{MAX_PLUGIN_OUTPUT_BYTES, PluginExit, PluginResult, interpret_plugin_result};
pub use range::{Range, RangeError, evaluate_thresholds, parse_range};
pub use schedule::{CheckId, CheckIdError, HOST_CHECK_NAME, Schedule, schedule_offset};
pub use spec::{DEFAULT_TIMEOUT, Probe, ProbeTarget, Thresholds};
pub use state::{
    AckClearReason, Acknowledgement, CheckCommand, CheckConfig, CheckEffect, CheckKind, CheckState,
    CheckStatus, Downtime, DowntimeKind, FlappingWindow, HostState, Millis, NotificationKind,
    ObjectState, RejectReason, StateType, SuppressionReason,
};

#[cfg(test)]
mod tests;

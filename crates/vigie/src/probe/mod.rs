//! Active checks: running Monitoring Plugins-compatible programs (and, as they land, the
//! native probes). A probe returns a `PluginResult` whatever happens; it never fails.

pub mod plugin;

//! Signals in: the HTTP ingest endpoint and the syslog listeners. Both turn their input into
//! `Event`s and hand them to the pipeline; neither writes to the store itself.

pub mod http;
pub mod syslog;

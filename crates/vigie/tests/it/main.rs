//! End-to-end tests: the real server on 127.0.0.1:0 (in-process, or the real binary where a
//! process must die), real HTTP, real sockets, a real SQLite file and a real PostgreSQL.

mod support;

mod cli;
mod detection;
mod durability;
mod hunt;
mod incidents;
mod ingest;
mod isolation;
mod notify;
mod notify_support;
mod perfdata;
mod probes;
mod response;
mod stream;
mod supervision;
mod syslog;

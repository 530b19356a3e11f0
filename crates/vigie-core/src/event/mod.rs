//! The normalised event: what every source (HTTP, syslog, later probes and EVTX) turns its
//! input into before it is stored and evaluated. Guards one invariant: an `Event` always has a
//! client, a message and a time; everything else a sender gave is kept in `fields`, never dropped.

mod json;
mod time;

pub use json::{
    EventError, LineError, event_from_json, event_from_json_slice, events_from_json_array,
};
pub use time::{format_rfc3339_ms, parse_rfc3339_ms};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Syslog's eight severities (RFC 5424 §6.2.1), ordered from least to most severe so that
/// `severity >= Severity::Error` reads as "error or worse".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl Severity {
    pub const ALL: [Severity; 8] = [
        Severity::Debug,
        Severity::Info,
        Severity::Notice,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
        Severity::Alert,
        Severity::Emergency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
            Severity::Alert => "alert",
            Severity::Emergency => "emergency",
        }
    }

    /// Accepts the canonical names and the usual spellings senders use (syslog keywords,
    /// log-library levels), case-insensitively.
    pub fn parse(text: &str) -> Option<Severity> {
        let lower = text.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "debug" | "trace" => Severity::Debug,
            "info" | "informational" | "information" => Severity::Info,
            "notice" => Severity::Notice,
            "warning" | "warn" => Severity::Warning,
            "error" | "err" => Severity::Error,
            "critical" | "crit" | "fatal" => Severity::Critical,
            "alert" => Severity::Alert,
            "emergency" | "emerg" | "panic" => Severity::Emergency,
            _ => return None,
        })
    }

    /// From a syslog numeric severity (0 = emergency … 7 = debug).
    pub fn from_syslog(code: u8) -> Option<Severity> {
        Some(match code {
            0 => Severity::Emergency,
            1 => Severity::Alert,
            2 => Severity::Critical,
            3 => Severity::Error,
            4 => Severity::Warning,
            5 => Severity::Notice,
            6 => Severity::Info,
            7 => Severity::Debug,
            _ => return None,
        })
    }

    /// Stored as a small integer so that "error or worse" is an index range in SQL.
    pub fn rank(self) -> i64 {
        self as i64
    }

    pub fn from_rank(rank: i64) -> Option<Severity> {
        Severity::ALL.get(usize::try_from(rank).ok()?).copied()
    }
}

/// A signal as Vigie keeps it. `time_ms` is the sender's time (epoch milliseconds, UTC);
/// the store adds its own id and reception time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub time_ms: i64,
    pub client: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    pub source: String,
    pub kind: String,
    pub severity: Severity,
    pub message: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// Set when the source could not parse the input (a syslog line in no known format):
    /// the event then carries the input as `raw` and `message`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unparsed: bool,
}

/// An event once stored: the store's id and the time it was received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: i64,
    pub received_ms: i64,
    #[serde(flatten)]
    pub event: Event,
}

//! What a check does, as the estate writes it: the probe and its options. Pure data, shared by
//! the estate parser (which validates it, with file, line and field) and the probes that run it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::range::Range;
use super::state::CheckState;

/// Where a probe points: the asset's address (`$HOSTADDRESS$`) and name (`$HOSTNAME$`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeTarget {
    pub address: String,
    pub hostname: String,
}

/// Warning and critical thresholds of one measured value (Monitoring Plugins ranges: the
/// state is WARNING or CRITICAL when the value falls outside the range).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Thresholds {
    pub warning: Option<Range>,
    pub critical: Option<Range>,
}

/// The probe of a check and its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Probe {
    /// ICMP echo: round-trip time (ms) and loss (%).
    Icmp {
        packets: u32,
        rtt_ms: Thresholds,
        loss_percent: Thresholds,
    },
    /// TCP connect, optionally sending a string and expecting a substring of the answer.
    Tcp {
        port: u16,
        send: Option<String>,
        expect: Option<String>,
        connect_ms: Thresholds,
    },
    /// HTTP or HTTPS request: status in one of the accepted ranges, optional body regex,
    /// redirects followed up to a limit, latency thresholds.
    Http {
        /// May hold `$HOSTADDRESS$` / `$HOSTNAME$`.
        url: String,
        method: String,
        /// Accepted statuses as inclusive ranges, e.g. `[(200, 299), (301, 302)]`.
        status: Vec<(u16, u16)>,
        body_regex: Option<String>,
        max_redirects: u32,
        /// Check the server's certificate (chain and name).
        verify_tls: bool,
        latency_ms: Thresholds,
    },
    /// TLS handshake: days until the certificate expires, chain and name validity.
    Tls {
        port: u16,
        /// The name to ask for (SNI) and to check; the target's hostname when absent.
        server_name: Option<String>,
        /// Days left before expiry: e.g. warning `30:` and critical `7:`.
        days_left: Thresholds,
    },
    /// DNS query to a given server: the name resolves, optionally to expected answers.
    Dns {
        /// The name to resolve (may hold `$HOSTNAME$`).
        query: String,
        /// `A`, `AAAA`, `CNAME`, `MX`, `TXT`, `NS`, `PTR`, `SOA`, `SRV`.
        record_type: String,
        /// `address[:port]` of the server to ask; the target's address when absent.
        server: Option<String>,
        /// Every listed answer must be among the answers (none listed: any answer is OK).
        expect: Vec<String>,
        latency_ms: Thresholds,
    },
    /// A Monitoring Plugins-compatible program.
    Plugin {
        command: String,
        /// Arguments, with macros (`$HOSTADDRESS$`, `$HOSTNAME$`, `$ARG1$`…).
        args: Vec<String>,
        env: Vec<(String, String)>,
    },
    /// Results come from outside; silence longer than `freshness_ms` gives `stale_state`.
    Passive {
        freshness_ms: i64,
        stale_state: CheckState,
    },
}

impl Probe {
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Icmp { .. } => "icmp",
            Probe::Tcp { .. } => "tcp",
            Probe::Http { .. } => "http",
            Probe::Tls { .. } => "tls",
            Probe::Dns { .. } => "dns",
            Probe::Plugin { .. } => "plugin",
            Probe::Passive { .. } => "passive",
        }
    }
}

/// The default timeout of a probe when the check does not set one (Icinga's is 60 s for
/// plugins; native probes answer much faster).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

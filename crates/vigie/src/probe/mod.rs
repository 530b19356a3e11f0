//! Active checks: the native probes (`icmp`, `tcp`, `http`, `tls`, `dns`), async and in-process,
//! and the runner of Monitoring Plugins-compatible programs (`plugin`). `run` is the one entry
//! point: it takes a check's `Probe` as the estate states it, the target and a timeout.
//!
//! Invariant: a probe never fails and never panics on what it meets. Whatever happens (refused,
//! timed out, a malformed answer, a missing permission, a bad option) becomes a `PluginResult`
//! with a state, a first line, long output and perfdata, exactly as a plugin would print them,
//! so that the check state machine treats native probes and plugins alike. The states follow
//! the plugins' conventions: a service that does not answer as it should is CRITICAL; UNKNOWN
//! is kept for a probe that could not do its job (bad options, no permission).

use std::collections::HashMap;
use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;
use vigie_core::check::{CheckState, PluginResult, Probe, ProbeTarget};

pub mod dns;
pub mod http;
pub mod icmp;
pub mod perf;
pub mod plugin;
pub mod tcp;
pub mod tls;

use perf::PerfItem;
use tls::TrustRoots;

/// Runs `probe` against `target`, giving up after `timeout`. Plugins time out as Icinga has
/// them do (UNKNOWN, their whole process group killed); a native probe that runs out of time is
/// CRITICAL ("timed out after Ns"): the service did not answer in time. Certificates are
/// checked against the system's trusted roots (`TrustRoots::system`).
pub async fn run(probe: &Probe, target: &ProbeTarget, timeout: Duration) -> PluginResult {
    match probe {
        Probe::Plugin { command, args, env } => {
            let macros = target_macros(target, false);
            let command = plugin::PluginCommand {
                program: command.into(),
                args: args
                    .iter()
                    .map(|arg| plugin::expand_macros(arg, &macros))
                    .collect(),
                env: env
                    .iter()
                    .map(|(name, value)| (name.clone(), plugin::expand_macros(value, &macros)))
                    .collect(),
                timeout,
            };
            plugin::run_plugin(&command).await
        }
        Probe::Passive { .. } => {
            PluginResult::new(CheckState::Unknown, "passive check: no active probe")
        }
        network => {
            // Reading the system's roots (once per process) is Vigie's setup, not the
            // service's time: it happens before the clock starts.
            let roots = match network {
                Probe::Http { .. } | Probe::Tls { .. } => TrustRoots::system().await,
                _ => TrustRoots::from_certificates(Vec::new()),
            };
            let deadline = Instant::now() + timeout;
            let label = label_of(network);
            // Each probe also watches `deadline` itself to say what it was waiting for; this
            // is the guard for everything else (connecting, resolving, a stalled handshake).
            let probe = run_network(network, target, deadline, &roots);
            match tokio::time::timeout_at(deadline, probe).await {
                Ok(result) => result,
                Err(_) => finish(
                    label,
                    CheckState::Critical,
                    format!("timed out after {}", seconds(timeout)),
                    Vec::new(),
                    &[],
                ),
            }
        }
    }
}

async fn run_network(
    probe: &Probe,
    target: &ProbeTarget,
    deadline: Instant,
    roots: &TrustRoots,
) -> PluginResult {
    match probe {
        Probe::Icmp {
            packets,
            rtt_ms,
            loss_percent,
        } => {
            let options = icmp::IcmpProbe {
                packets: *packets,
                rtt_ms,
                loss_percent,
            };
            icmp::check(&options, target, deadline).await
        }
        Probe::Tcp {
            port,
            send,
            expect,
            connect_ms,
        } => {
            let options = tcp::TcpProbe {
                port: *port,
                send: send.as_deref(),
                expect: expect.as_deref(),
                connect_ms,
            };
            tcp::check(&options, target, deadline).await
        }
        Probe::Http {
            url,
            method,
            status,
            body_regex,
            max_redirects,
            verify_tls,
            latency_ms,
        } => {
            let options = http::HttpProbe {
                url,
                method,
                status,
                body_regex: body_regex.as_deref(),
                max_redirects: *max_redirects,
                verify_tls: *verify_tls,
                latency_ms,
            };
            http::check(&options, target, deadline, roots).await
        }
        Probe::Tls {
            port,
            server_name,
            days_left,
        } => {
            let options = tls::TlsProbe {
                port: *port,
                server_name: server_name.as_deref(),
                days_left,
            };
            tls::check(&options, target, deadline, roots).await
        }
        Probe::Dns {
            query,
            record_type,
            server,
            expect,
            latency_ms,
        } => {
            let options = dns::DnsProbe {
                query,
                record_type,
                server: server.as_deref(),
                expect,
                latency_ms,
            };
            dns::check(&options, target, deadline).await
        }
        // `run` handles these itself.
        Probe::Plugin { .. } | Probe::Passive { .. } => {
            PluginResult::new(CheckState::Unknown, "not a network probe")
        }
    }
}

/// The word a probe's first line starts with, as the plugins have it (`TCP OK - …`).
fn label_of(probe: &Probe) -> &'static str {
    match probe {
        Probe::Icmp { .. } => "ICMP",
        Probe::Tcp { .. } => "TCP",
        Probe::Http { .. } => "HTTP",
        Probe::Tls { .. } => "TLS",
        Probe::Dns { .. } => "DNS",
        Probe::Plugin { .. } => "PLUGIN",
        Probe::Passive { .. } => "PASSIVE",
    }
}

/// A probe's result in the plugins' form: `LABEL STATE - summary`, then the long output lines
/// and the perfdata items. The first line stays one line whatever the summary holds.
fn finish(
    label: &str,
    state: CheckState,
    summary: impl Display,
    long_output: Vec<String>,
    perfdata: &[PerfItem],
) -> PluginResult {
    let summary = one_line(&summary.to_string());
    PluginResult {
        state,
        output: format!("{label} {} - {summary}", state.as_str()),
        long_output: long_output
            .iter()
            .map(|line| one_line(line))
            .collect::<Vec<_>>()
            .join("\n"),
        perfdata: perf::format_perfdata(perfdata),
        truncated: false,
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// The worse of two states, in the plugins' order of gravity: CRITICAL, WARNING, UNKNOWN, OK.
pub fn worst(a: CheckState, b: CheckState) -> CheckState {
    let rank = |state: CheckState| match state {
        CheckState::Ok => 0,
        CheckState::Unknown => 1,
        CheckState::Warning => 2,
        CheckState::Critical => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// The macros a probe's text may hold. In a URL an IPv6 address needs brackets.
fn target_macros(target: &ProbeTarget, for_url: bool) -> HashMap<String, String> {
    let address = match target.address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if for_url => format!("[{v6}]"),
        _ => target.address.clone(),
    };
    HashMap::from([
        ("HOSTADDRESS".to_owned(), address),
        ("HOSTNAME".to_owned(), target.hostname.clone()),
    ])
}

/// The socket addresses of `host` (an IP address, bracketed or not, or a name the system
/// resolves) on `port`. The reason is ready to be shown when there are none.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.is_empty() {
        return Err("the target has no address".to_owned());
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match tokio::net::lookup_host((bare, port)).await {
        Ok(addresses) => {
            let addresses: Vec<SocketAddr> = addresses.collect();
            if addresses.is_empty() {
                Err(format!("{bare} resolves to no address"))
            } else {
                Ok(addresses)
            }
        }
        Err(error) => Err(format!("cannot resolve {bare}: {error}")),
    }
}

/// Connects to the first of `addresses` that accepts, returning the stream, the address and
/// the time the successful attempt took.
async fn connect_tcp(
    addresses: &[SocketAddr],
) -> Result<(tokio::net::TcpStream, SocketAddr, Duration), String> {
    let mut failures = Vec::new();
    for &address in addresses {
        let attempt = Instant::now();
        match tokio::net::TcpStream::connect(address).await {
            Ok(stream) => return Ok((stream, address, attempt.elapsed())),
            Err(error) => failures.push(format!("{address}: {}", describe_io_error(&error))),
        }
    }
    Err(format!("cannot connect to {}", failures.join("; ")))
}

/// An IO error as an operator reads it: the common network failures in words, the rest as
/// the system says it.
fn describe_io_error(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ErrorKind::ConnectionReset => "connection reset by peer".to_owned(),
        ErrorKind::TimedOut => "connection timed out".to_owned(),
        ErrorKind::HostUnreachable => "host unreachable".to_owned(),
        ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        ErrorKind::UnexpectedEof => "connection closed by peer".to_owned(),
        _ => error.to_string(),
    }
}

/// The time left before `deadline`, rounded up to 100 ms: a probe's budget read a moment after
/// it started (name resolution, a busy machine) still reads as the timeout it was given (`0.5s`,
/// not `0.499s`).
fn time_left(deadline: Instant) -> String {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .as_millis();
    let rounded = left.div_ceil(100) * 100;
    seconds(Duration::from_millis(
        u64::try_from(rounded).unwrap_or(u64::MAX),
    ))
}

/// A duration as the first lines show it: `10s`, `0.5s`, `2.25s`.
fn seconds(duration: Duration) -> String {
    format!("{}s", perf::format_number(duration.as_secs_f64(), 3))
}

/// A duration in milliseconds for the first lines: `0.312 ms`, `12.4 ms`, `1500 ms`.
fn millis(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    let decimals = if ms < 10.0 { 3 } else { 1 };
    format!("{} ms", perf::format_number(ms, decimals))
}

/// A duration in milliseconds, the unit of the checks' latency thresholds.
fn as_ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_state_is_critical_then_warning_then_unknown() {
        use CheckState::*;
        assert_eq!(worst(Ok, Warning), Warning);
        assert_eq!(worst(Unknown, Warning), Warning);
        assert_eq!(worst(Critical, Warning), Critical);
        assert_eq!(worst(Ok, Unknown), Unknown);
        assert_eq!(worst(Ok, Ok), Ok);
    }

    #[test]
    fn the_first_line_names_the_probe_and_state_and_stays_one_line() {
        let result = finish(
            "TCP",
            CheckState::Warning,
            "slow\nreally",
            vec!["a\r\nb".to_owned(), "c".to_owned()],
            &[],
        );
        assert_eq!(result.output, "TCP WARNING - slow really");
        assert_eq!(result.long_output, "a  b\nc");
        assert_eq!(result.perfdata, "");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(seconds(Duration::from_secs(10)), "10s");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5s");
        assert_eq!(millis(Duration::from_micros(312)), "0.312 ms");
        assert_eq!(millis(Duration::from_micros(12_440)), "12.4 ms");
    }

    #[test]
    fn ipv6_addresses_are_bracketed_in_urls_only() {
        let target = ProbeTarget {
            address: "::1".to_owned(),
            hostname: "db1".to_owned(),
        };
        assert_eq!(target_macros(&target, true)["HOSTADDRESS"], "[::1]");
        assert_eq!(target_macros(&target, false)["HOSTADDRESS"], "::1");
        assert_eq!(target_macros(&target, true)["HOSTNAME"], "db1");
    }

    #[tokio::test]
    async fn a_passive_check_has_no_active_probe() {
        let probe = Probe::Passive {
            freshness_ms: 60_000,
            stale_state: CheckState::Unknown,
        };
        let target = ProbeTarget {
            address: "127.0.0.1".to_owned(),
            hostname: "localhost".to_owned(),
        };
        let result = run(&probe, &target, Duration::from_secs(1)).await;
        assert_eq!(
            (result.state, result.output.as_str()),
            (CheckState::Unknown, "passive check: no active probe")
        );
    }
}

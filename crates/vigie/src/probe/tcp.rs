//! The TCP probe: connect to the target's address on a port, optionally send a string and read
//! until an expected substring arrives. The connect time is measured and held against the
//! check's `connect_ms` thresholds. A refused or failed connection, or an answer that never
//! holds the expected text (closed, too long, or too late), is CRITICAL with the reason.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use vigie_core::check::{CheckState, PluginResult, ProbeTarget, Thresholds};

use super::perf::{self, PerfItem};
use super::{as_ms, connect_tcp, describe_io_error, finish, millis, resolve, time_left};

const LABEL: &str = "TCP";

/// How much of the answer is searched for the expected text; a service that talks longer
/// without saying it is not the one expected.
pub const MAX_EXPECT_BYTES: usize = 64 * 1024;

/// The options of `Probe::Tcp`.
#[derive(Debug, Clone, Copy)]
pub struct TcpProbe<'a> {
    pub port: u16,
    pub send: Option<&'a str>,
    pub expect: Option<&'a str>,
    pub connect_ms: &'a Thresholds,
}

pub async fn check(probe: &TcpProbe<'_>, target: &ProbeTarget, deadline: Instant) -> PluginResult {
    let within = time_left(deadline);
    let critical = |reason: String| finish(LABEL, CheckState::Critical, reason, Vec::new(), &[]);
    let addresses = match resolve(&target.address, probe.port).await {
        Ok(addresses) => addresses,
        Err(reason) => return critical(reason),
    };
    let (mut stream, address, connect_time) = match connect_tcp(&addresses).await {
        Ok(connected) => connected,
        Err(reason) => return critical(reason),
    };
    let perfdata = [PerfItem::new("time", Some(connect_time.as_secs_f64()), "s")
        .thresholds(probe.connect_ms, 1000.0)
        .min(0.0)];
    let connected = format!("{address} connected in {}", millis(connect_time));
    let mut long_output = Vec::new();

    if let Some(send) = probe.send
        && let Err(error) = stream.write_all(send.as_bytes()).await
    {
        let reason = format!(
            "{connected}, but sending failed: {}",
            describe_io_error(&error)
        );
        return finish(LABEL, CheckState::Critical, reason, long_output, &perfdata);
    }
    if let Some(expect) = probe.expect {
        let (received, failure) = read_until(&mut stream, expect.as_bytes(), deadline).await;
        if !received.is_empty() {
            long_output.push(format!("received: {}", printable(&received)));
        }
        if let Some(failure) = failure {
            let reason = match failure {
                ReadEnd::Closed => format!("connection closed before {expect:?} was received"),
                ReadEnd::TooLong => {
                    format!("{expect:?} not found in the first {MAX_EXPECT_BYTES} bytes")
                }
                ReadEnd::Deadline => format!("{expect:?} not received within {within}"),
                ReadEnd::Failed(error) => {
                    format!("reading the answer failed: {}", describe_io_error(&error))
                }
            };
            let summary = format!("{connected}, but {reason}");
            return finish(LABEL, CheckState::Critical, summary, long_output, &perfdata);
        }
    }

    let state = perf::evaluate(as_ms(connect_time), probe.connect_ms);
    let summary = match probe.expect {
        Some(expect) => format!("{connected}, {expect:?} received"),
        None => connected,
    };
    finish(LABEL, state, summary, long_output, &perfdata)
}

enum ReadEnd {
    Closed,
    TooLong,
    Deadline,
    Failed(std::io::Error),
}

/// Reads until `expect` is among the bytes received. Returns what was received (at most
/// `MAX_EXPECT_BYTES`) and, when the text was not found, why reading stopped.
async fn read_until(
    stream: &mut tokio::net::TcpStream,
    expect: &[u8],
    deadline: Instant,
) -> (Vec<u8>, Option<ReadEnd>) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if contains(&received, expect) {
            return (received, None);
        }
        if received.len() >= MAX_EXPECT_BYTES {
            return (received, Some(ReadEnd::TooLong));
        }
        let room = (MAX_EXPECT_BYTES - received.len()).min(buffer.len());
        let end = match tokio::time::timeout_at(deadline, stream.read(&mut buffer[..room])).await {
            Err(_) => ReadEnd::Deadline,
            Ok(Ok(0)) => ReadEnd::Closed,
            Ok(Ok(n)) => {
                received.extend_from_slice(&buffer[..n]);
                continue;
            }
            Ok(Err(error)) => ReadEnd::Failed(error),
        };
        return (received, Some(end));
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// The first bytes of an answer, as text an operator can read in the long output.
fn printable(received: &[u8]) -> String {
    const SHOWN: usize = 200;
    let text = String::from_utf8_lossy(&received[..received.len().min(SHOWN)]);
    let mut shown: String = text.escape_debug().collect();
    if received.len() > SHOWN {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_expected_text_anywhere_in_the_answer() {
        assert!(contains(b"SSH-2.0-OpenSSH", b"SSH-"));
        assert!(contains(b"220 mail ESMTP", b"ESMTP"));
        assert!(!contains(b"220 mail", b"ESMTP"));
        assert!(contains(b"", b""));
    }

    #[test]
    fn shows_answers_escaped_and_cut() {
        assert_eq!(printable(b"220 ok\r\n"), "220 ok\\r\\n");
        let long = vec![b'x'; 300];
        let shown = printable(&long);
        assert!(shown.ends_with('…'));
        assert_eq!(shown.chars().count(), 201);
    }
}

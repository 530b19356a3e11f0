//! The ICMP probe: N echo requests to the target's address, the replies' round-trip times and
//! the loss held against the check's thresholds (average RTT in ms, loss in %), perfdata as
//! `check_icmp` writes it (`rta`, `pl`, `rtmin`, `rtmax`).
//!
//! The socket is an unprivileged ICMP datagram socket when the system allows it
//! (`net.ipv4.ping_group_range`), else a raw socket (root or `CAP_NET_RAW`); when neither is
//! permitted the result is UNKNOWN with the reason, never a panic. Each probe has its own
//! socket: replies are matched by sequence number and a random token in the payload (and by
//! identifier on a raw socket, which sees every ICMP packet the host receives).
//!
//! Packets leave 100 ms apart (closer when the timeout is short); replies are awaited until
//! 90% of the timeout has passed, so that a lost packet is counted as lost rather than turning
//! the whole probe into a timeout. No reply at all is CRITICAL whatever the thresholds.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use vigie_core::check::{CheckState, PluginResult, ProbeTarget, Thresholds};

use super::perf::{self, PerfItem};
use super::{finish, resolve, worst};

const LABEL: &str = "ICMP";
const INTERVAL: Duration = Duration::from_millis(100);
const PAYLOAD_BYTES: usize = 32;
/// A check asking for more is capped: a probe is not a flood.
pub const MAX_PACKETS: u32 = 100;

/// The options of `Probe::Icmp`.
#[derive(Debug, Clone, Copy)]
pub struct IcmpProbe<'a> {
    pub packets: u32,
    pub rtt_ms: &'a Thresholds,
    pub loss_percent: &'a Thresholds,
}

/// Which kind of socket carried the echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketKind {
    /// `SOCK_DGRAM`: the kernel sets the identifier and strips the IP header.
    Datagram,
    /// `SOCK_RAW`: IPv4 replies come with their IP header.
    Raw,
}

pub async fn check(probe: &IcmpProbe<'_>, target: &ProbeTarget, deadline: Instant) -> PluginResult {
    let ip = match resolve(&target.address, 0).await {
        Ok(addresses) => addresses[0].ip(),
        Err(reason) => return finish(LABEL, CheckState::Critical, reason, Vec::new(), &[]),
    };
    let (socket, kind) = match open_socket(ip) {
        Ok(opened) => opened,
        Err(reason) => return finish(LABEL, CheckState::Unknown, reason, Vec::new(), &[]),
    };
    let packets = probe.packets.clamp(1, MAX_PACKETS) as usize;
    let identifier = u16::from_be_bytes(random_bytes::<2>());
    let token = random_bytes::<8>();
    let started = Instant::now();
    let budget = deadline.saturating_duration_since(started);
    let interval = INTERVAL.min(budget.mul_f64(0.5) / packets as u32);
    let wait_until = started + budget.mul_f64(0.9);

    let mut sent_at: Vec<Option<Instant>> = vec![None; packets];
    let mut rtts: Vec<Option<Duration>> = vec![None; packets];
    let mut send_errors = Vec::new();
    let mut next = 0usize;
    let mut next_send = started;
    let mut buffer = [0u8; 2048];
    loop {
        let all_sent = next == packets;
        if all_sent
            && sent_at
                .iter()
                .zip(&rtts)
                .all(|(s, r)| s.is_none() || r.is_some())
        {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(next_send), if !all_sent => {
                let sequence = next as u16;
                let request = echo_request(ip, identifier, sequence, &token);
                match socket.send(&request).await {
                    Ok(_) => sent_at[next] = Some(Instant::now()),
                    Err(error) => send_errors.push(format!("packet {sequence}: {error}")),
                }
                next += 1;
                next_send += interval;
            }
            received = socket.recv(&mut buffer) => {
                let Ok(length) = received else { continue };
                let now = Instant::now();
                let check_id = (kind == SocketKind::Raw).then_some(identifier);
                if let Some(sequence) = parse_echo_reply(ip, kind, &buffer[..length], check_id, &token)
                    && let Some(Some(sent)) = sent_at.get(usize::from(sequence))
                    && rtts[usize::from(sequence)].is_none()
                {
                    rtts[usize::from(sequence)] = Some(now - *sent);
                }
            }
            () = tokio::time::sleep_until(wait_until) => break,
        }
    }

    let replies: Vec<Duration> = rtts.iter().flatten().copied().collect();
    let loss = (packets - replies.len()) as f64 * 100.0 / packets as f64;
    let mut long_output = vec![format!(
        "{packets} echo request(s) to {ip} over {} socket",
        match kind {
            SocketKind::Datagram => "an unprivileged ICMP",
            SocketKind::Raw => "a raw ICMP",
        }
    )];
    long_output.extend(
        send_errors
            .iter()
            .map(|error| format!("send failed: {error}")),
    );
    for (sequence, rtt) in rtts.iter().enumerate() {
        long_output.push(match rtt {
            Some(rtt) => format!("seq {sequence}: {} ms", ms_text(*rtt)),
            None => format!("seq {sequence}: lost"),
        });
    }
    let loss_item = PerfItem::new("pl", Some(loss), "%")
        .thresholds(probe.loss_percent, 1.0)
        .min(0.0)
        .max(100.0);
    if replies.is_empty() {
        let summary = format!("{ip}: 100% packet loss (0/{packets} replies)");
        return finish(
            LABEL,
            CheckState::Critical,
            summary,
            long_output,
            &[loss_item],
        );
    }
    let as_ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let average = replies.iter().map(as_ms).sum::<f64>() / replies.len() as f64;
    let min = replies.iter().map(as_ms).fold(f64::INFINITY, f64::min);
    let max = replies.iter().map(as_ms).fold(0.0, f64::max);
    let state = worst(
        perf::evaluate(average, probe.rtt_ms),
        perf::evaluate(loss, probe.loss_percent),
    );
    let perfdata = [
        PerfItem::new("rta", Some(average), "ms")
            .thresholds(probe.rtt_ms, 1.0)
            .min(0.0),
        loss_item,
        PerfItem::new("rtmin", Some(min), "ms").min(0.0),
        PerfItem::new("rtmax", Some(max), "ms").min(0.0),
    ];
    let summary = format!(
        "{ip}: rta {} ms, lost {}% ({}/{packets} replies)",
        perf::format_number(average, 3),
        perf::format_number(loss, 1),
        replies.len()
    );
    finish(LABEL, state, summary, long_output, &perfdata)
}

/// An ICMP socket connected to `ip` (so that only its packets are read): datagram first, raw
/// when the system refuses unprivileged ICMP.
fn open_socket(ip: IpAddr) -> Result<(UdpSocket, SocketKind), String> {
    let (domain, protocol) = match ip {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let denied = |error: &std::io::Error| {
        matches!(error.kind(), ErrorKind::PermissionDenied)
            || error.raw_os_error() == Some(libc::EPERM)
    };
    let (socket, kind) = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
        Ok(socket) => (socket, SocketKind::Datagram),
        Err(datagram) if denied(&datagram) => {
            match Socket::new(domain, Type::from(libc::SOCK_RAW), Some(protocol)) {
                Ok(socket) => (socket, SocketKind::Raw),
                Err(raw) => {
                    return Err(format!(
                        "cannot open an ICMP socket: unprivileged ICMP is not allowed here \
                         (net.ipv4.ping_group_range: {datagram}) and raw sockets need root or \
                         CAP_NET_RAW ({raw})"
                    ));
                }
            }
        }
        Err(error) => return Err(format!("cannot open an ICMP socket: {error}")),
    };
    let setup = || -> std::io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        socket.connect(&SocketAddr::new(ip, 0).into())?;
        UdpSocket::from_std(std::net::UdpSocket::from(socket))
    };
    setup()
        .map(|socket| (socket, kind))
        .map_err(|error| format!("cannot set up the ICMP socket to {ip}: {error}"))
}

/// An echo request: type, code, checksum, identifier, sequence, then the token and padding.
/// The kernel computes ICMPv6 checksums itself.
fn echo_request(ip: IpAddr, identifier: u16, sequence: u16, token: &[u8; 8]) -> Vec<u8> {
    let kind = if ip.is_ipv4() { 8 } else { 128 };
    let mut packet = vec![kind, 0, 0, 0];
    packet.extend_from_slice(&identifier.to_be_bytes());
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(token);
    packet.resize(8 + PAYLOAD_BYTES, 0);
    if ip.is_ipv4() {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// The sequence number of an echo reply that belongs to this probe, else `None`.
fn parse_echo_reply(
    ip: IpAddr,
    kind: SocketKind,
    packet: &[u8],
    identifier: Option<u16>,
    token: &[u8; 8],
) -> Option<u16> {
    let icmp = match (ip, kind) {
        (IpAddr::V4(_), SocketKind::Raw) => {
            let header = usize::from(packet.first()? & 0x0f) * 4;
            packet.get(header..)?
        }
        _ => packet,
    };
    let reply_type = if ip.is_ipv4() { 0 } else { 129 };
    if icmp.len() < 16 || icmp[0] != reply_type || icmp[1] != 0 {
        return None;
    }
    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
    if identifier.is_some_and(|expected| expected != id) || icmp[8..16] != token[..] {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // Without the system's randomness the probe still works; only the matching of replies
    // loses its protection against another process's identical pings.
    let _ = getrandom::fill(&mut bytes);
    bytes
}

fn ms_text(duration: Duration) -> String {
    perf::format_number(duration.as_secs_f64() * 1000.0, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_requests_carry_a_valid_checksum() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let packet = echo_request(ip, 0x1234, 7, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(packet.len(), 8 + PAYLOAD_BYTES);
        assert_eq!(&packet[..2], &[8, 0]);
        assert_eq!(&packet[4..8], &[0x12, 0x34, 0, 7]);
        // A packet with its checksum sums to zero.
        assert_eq!(checksum(&packet), 0);
        // RFC 1071's example words.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2u16
        );
    }

    #[test]
    fn replies_are_matched_by_type_identifier_and_token() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let token = [9u8; 8];
        let mut reply = echo_request(ip, 42, 3, &token);
        reply[0] = 0;
        assert_eq!(
            parse_echo_reply(ip, SocketKind::Datagram, &reply, None, &token),
            Some(3)
        );
        // A raw IPv4 socket hands over the IP header too.
        let mut with_header = vec![0x45];
        with_header.resize(20, 0);
        with_header.extend_from_slice(&reply);
        assert_eq!(
            parse_echo_reply(ip, SocketKind::Raw, &with_header, Some(42), &token),
            Some(3)
        );
        assert_eq!(
            parse_echo_reply(ip, SocketKind::Raw, &with_header, Some(43), &token),
            None
        );
        assert_eq!(
            parse_echo_reply(ip, SocketKind::Datagram, &reply, None, &[0; 8]),
            None
        );
        // Our own request, seen by a raw socket on loopback, is not a reply.
        let request = echo_request(ip, 42, 3, &token);
        assert_eq!(
            parse_echo_reply(ip, SocketKind::Datagram, &request, None, &token),
            None
        );
        assert_eq!(
            parse_echo_reply(ip, SocketKind::Datagram, &[0, 0], None, &token),
            None
        );
    }
}

//! The DNS probe: one question to one given server (the check's `server`, else the target's
//! address, port 53), over UDP, again over TCP when the answer comes back truncated. No system
//! resolver configuration, no cache, no retry to another server: the probe judges that server.
//! Messages are built and read with `hickory-proto`; the sockets are the probe's own.
//!
//! The name must resolve (NXDOMAIN, a server failure, no record of the type asked, or no answer
//! in time are CRITICAL), every expected answer must be among the answers, and the response
//! time is held against the latency thresholds. Perfdata: `time` in seconds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;
use vigie_core::check::{CheckState, PluginResult, ProbeTarget, Thresholds};

use super::perf::{self, PerfItem};
use super::plugin::expand_macros;
use super::{as_ms, describe_io_error, finish, millis, resolve, target_macros, time_left};

const LABEL: &str = "DNS";

/// The record types a check may ask for.
pub const RECORD_TYPES: [&str; 9] = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "PTR", "SOA", "SRV"];

/// The options of `Probe::Dns`.
#[derive(Debug, Clone, Copy)]
pub struct DnsProbe<'a> {
    /// May hold `$HOSTNAME$` / `$HOSTADDRESS$`; for PTR an IP address is turned into its
    /// reverse name.
    pub query: &'a str,
    pub record_type: &'a str,
    /// `address[:port]`; the target's address on port 53 when absent.
    pub server: Option<&'a str>,
    pub expect: &'a [String],
    pub latency_ms: &'a Thresholds,
}

pub async fn check(probe: &DnsProbe<'_>, target: &ProbeTarget, deadline: Instant) -> PluginResult {
    let within = time_left(deadline);
    let unknown = |reason: String| finish(LABEL, CheckState::Unknown, reason, Vec::new(), &[]);
    let critical = |reason: String| finish(LABEL, CheckState::Critical, reason, Vec::new(), &[]);
    let record_type = probe.record_type.trim().to_ascii_uppercase();
    let record_type = match RECORD_TYPES
        .contains(&record_type.as_str())
        .then(|| RecordType::from_str(&record_type).ok())
        .flatten()
    {
        Some(record_type) => record_type,
        None => {
            return unknown(format!(
                "unsupported record type {:?} (one of {})",
                probe.record_type,
                RECORD_TYPES.join(", ")
            ));
        }
    };
    let query = expand_macros(probe.query, &target_macros(target, false));
    let name = match question_name(&query, record_type) {
        Ok(name) => name,
        Err(reason) => return unknown(reason),
    };
    let server_text = probe
        .server
        .filter(|server| !server.trim().is_empty())
        .unwrap_or(&target.address);
    let server = match server_address(server_text).await {
        Ok(server) => server,
        Err(reason) => return critical(reason),
    };

    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name.clone(), record_type));
    let request = match message.to_vec() {
        Ok(request) => request,
        Err(error) => return unknown(format!("cannot encode the query for {name}: {error}")),
    };
    let started = Instant::now();
    let mut response = match ask_udp(server, &request, &message, deadline, &within).await {
        Ok(response) => response,
        Err(reason) => return critical(format!("{server}: {reason}")),
    };
    let mut over = "UDP";
    if response.metadata.truncation {
        response = match ask_tcp(server, &request, &message, deadline, &within).await {
            Ok(response) => response,
            Err(reason) => {
                return critical(format!(
                    "{server}: truncated over UDP, then over TCP: {reason}"
                ));
            }
        };
        over = "TCP";
    }
    let elapsed = started.elapsed();
    let perfdata = [PerfItem::new("time", Some(elapsed.as_secs_f64()), "s")
        .thresholds(probe.latency_ms, 1000.0)
        .min(0.0)];
    let asked = format!("{name} {record_type} from {server} over {over}");
    let long_output: Vec<String> = response.answers.iter().map(Record::to_string).collect();

    match response.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => {
            let summary = format!("{name} does not exist (NXDOMAIN), {asked}");
            return finish(LABEL, CheckState::Critical, summary, long_output, &perfdata);
        }
        other => {
            let summary = format!(
                "the server answered {} ({other}), {asked}",
                rcode_name(other)
            );
            return finish(LABEL, CheckState::Critical, summary, long_output, &perfdata);
        }
    }
    let answers: Vec<&RData> = response
        .answers
        .iter()
        .filter(|record| record.record_type() == record_type)
        .map(|record| &record.data)
        .collect();
    if answers.is_empty() {
        let summary = format!("no {record_type} record for {name} (NODATA), {asked}");
        return finish(LABEL, CheckState::Critical, summary, long_output, &perfdata);
    }
    let rendered: Vec<String> = answers.iter().map(|data| data.to_string()).collect();
    let missing: Vec<&String> = probe
        .expect
        .iter()
        .filter(|expected| {
            !answers
                .iter()
                .any(|answer| answer_matches(answer, expected, record_type))
        })
        .collect();
    let mut summary = format!(
        "{name} {record_type} {} in {} (server {server})",
        rendered.join(", "),
        millis(elapsed)
    );
    if !missing.is_empty() {
        let missing: Vec<String> = missing.iter().map(|m| format!("{m:?}")).collect();
        summary = format!(
            "{name} {record_type} {} lacks the expected {} (server {server})",
            rendered.join(", "),
            missing.join(", ")
        );
        return finish(LABEL, CheckState::Critical, summary, long_output, &perfdata);
    }
    if over == "TCP" {
        summary.push_str(" over TCP");
    }
    let state = perf::evaluate(as_ms(elapsed), probe.latency_ms);
    finish(LABEL, state, summary, long_output, &perfdata)
}

/// The name to ask about: for PTR an address becomes its reverse name; a name is read as
/// UTF-8 (IDNA) and made absolute, since the probe has no search domains.
fn question_name(query: &str, record_type: RecordType) -> Result<Name, String> {
    let query = query.trim();
    if query.is_empty() {
        return Err("the query is empty".to_owned());
    }
    if record_type == RecordType::PTR
        && let Ok(ip) = query.parse::<IpAddr>()
    {
        return Ok(Name::from(ip));
    }
    let mut name =
        Name::from_utf8(query).map_err(|error| format!("invalid name {query:?}: {error}"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// `address`, `address:port`, `[v6]:port` or `name[:port]`; port 53 by default.
async fn server_address(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(port) => (host, port),
            Err(_) => return Err(format!("invalid DNS server {text:?}")),
        },
        None => (text, 53),
    };
    let addresses = resolve(host, port).await?;
    Ok(addresses[0])
}

/// Whether a response answers our question (and not a stray or spoofed one).
fn answers_question(response: &Message, request: &Message) -> bool {
    response.metadata.id == request.metadata.id && response.queries == request.queries
}

async fn ask_udp(
    server: SocketAddr,
    request: &[u8],
    message: &Message,
    deadline: Instant,
    within: &str,
) -> Result<Message, String> {
    let local = match server {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let io = |error: std::io::Error| describe_io_error(&error);
    let socket = UdpSocket::bind(local).await.map_err(io)?;
    socket.connect(server).await.map_err(io)?;
    socket.send(request).await.map_err(io)?;
    let mut buffer = vec![0u8; 65_535];
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv(&mut buffer))
            .await
            .map_err(|_| format!("no answer within {within}"))?
            .map_err(io)?;
        // Anything else arriving on the port is ignored; the deadline bounds the wait.
        if let Ok(response) = Message::from_vec(&buffer[..received])
            && answers_question(&response, message)
        {
            return Ok(response);
        }
    }
}

async fn ask_tcp(
    server: SocketAddr,
    request: &[u8],
    message: &Message,
    deadline: Instant,
    within: &str,
) -> Result<Message, String> {
    let exchange = async {
        let io = |error: std::io::Error| describe_io_error(&error);
        let mut stream = TcpStream::connect(server).await.map_err(io)?;
        let length = u16::try_from(request.len()).map_err(|_| "query too long".to_owned())?;
        let mut framed = length.to_be_bytes().to_vec();
        framed.extend_from_slice(request);
        stream.write_all(&framed).await.map_err(io)?;
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).await.map_err(io)?;
        let mut buffer = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut buffer).await.map_err(io)?;
        let response = Message::from_vec(&buffer)
            .map_err(|error| format!("malformed answer over TCP: {error}"))?;
        if answers_question(&response, message) {
            Ok(response)
        } else {
            Err("the answer over TCP is for another question".to_owned())
        }
    };
    tokio::time::timeout_at(deadline, exchange)
        .await
        .map_err(|_| format!("no answer within {within}"))?
}

/// Whether `answer` is the expected text: addresses compared as addresses, names without case
/// or final dot, the other records word by word (`10 mail.example.com`), TXT exactly.
fn answer_matches(answer: &RData, expected: &str, record_type: RecordType) -> bool {
    let expected = expected.trim();
    match (answer.ip_addr(), expected.parse::<IpAddr>()) {
        (Some(actual), Ok(wanted)) => return actual == wanted,
        (Some(_), Err(_)) => return false,
        _ => {}
    }
    if record_type == RecordType::TXT {
        let unquoted = expected
            .strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
            .unwrap_or(expected);
        return answer.to_string() == unquoted;
    }
    normalize(&answer.to_string()) == normalize(expected)
}

fn normalize(text: &str) -> String {
    text.split_whitespace()
        .map(|word| word.trim_end_matches('.').to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".to_owned(),
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::NXDomain => "NXDOMAIN".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        other => format!("RCODE {}", u16::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::rdata::{A, MX, TXT};

    use super::*;

    #[test]
    fn names_are_absolute_and_ptr_addresses_reversed() {
        let name = question_name("example.test", RecordType::A).unwrap();
        assert_eq!(name.to_string(), "example.test.");
        let reverse = question_name("192.0.2.7", RecordType::PTR).unwrap();
        assert_eq!(reverse.to_string(), "7.2.0.192.in-addr.arpa.");
        // Not a PTR question: an address is asked about as a name.
        assert!(question_name("", RecordType::A).is_err());
    }

    #[test]
    fn expected_answers_compare_by_meaning() {
        let a = RData::A(A::new(192, 0, 2, 1));
        assert!(answer_matches(&a, "192.0.2.1", RecordType::A));
        assert!(!answer_matches(&a, "192.0.2.2", RecordType::A));
        assert!(!answer_matches(&a, "host.example", RecordType::A));
        let mx = RData::MX(MX::new(10, Name::from_str("Mail.Example.test.").unwrap()));
        assert!(answer_matches(&mx, "10 mail.example.test", RecordType::MX));
        assert!(answer_matches(
            &mx,
            "10  mail.example.test.",
            RecordType::MX
        ));
        assert!(!answer_matches(&mx, "20 mail.example.test", RecordType::MX));
        let txt = RData::TXT(TXT::new(vec!["v=spf1 -all".to_owned()]));
        assert!(answer_matches(&txt, "v=spf1 -all", RecordType::TXT));
        assert!(answer_matches(&txt, "\"v=spf1 -all\"", RecordType::TXT));
        assert!(!answer_matches(&txt, "V=SPF1 -ALL", RecordType::TXT));
    }

    #[tokio::test]
    async fn servers_are_addresses_with_port_53_by_default() {
        let parse = |text: &'static str| async move { server_address(text).await.unwrap() };
        assert_eq!(parse("192.0.2.53").await, "192.0.2.53:53".parse().unwrap());
        assert_eq!(
            parse("192.0.2.53:5353").await,
            "192.0.2.53:5353".parse().unwrap()
        );
        assert_eq!(parse("[::1]:5353").await, "[::1]:5353".parse().unwrap());
        assert_eq!(parse("::1").await, "[::1]:53".parse().unwrap());
        assert!(server_address("192.0.2.53:port").await.is_err());
    }

    #[test]
    fn every_supported_record_type_is_known_to_hickory() {
        for name in RECORD_TYPES {
            assert!(RecordType::from_str(name).is_ok(), "{name}");
        }
    }
}

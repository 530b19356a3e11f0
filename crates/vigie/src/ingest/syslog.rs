//! Syslog ingest: RFC 3164 and RFC 5424 messages over UDP (one datagram, one message) and TCP
//! (RFC 6587 octet counting or newline framing, mixed freely on one connection), each turned
//! into one `Event` for the sink.
//!
//! Guards three invariants. No input is dropped for being malformed: a line in no known format
//! becomes an `unparsed` event that carries it. No input grows memory without bound: a message
//! is cut at `MAX_MESSAGE_BYTES`, whatever its framing claims. One sender never stops the
//! others: a broken connection is logged and the listener goes on. Backpressure
//! is the sink's: when it is full we wait, which pushes back on TCP senders through their window
//! and on UDP senders through the kernel's receive buffer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{Map, Value};
use syslog_loose::{IncompleteDate, Protocol, StructuredElement, Variant};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use vigie_core::event::{Event, Severity};

/// The largest message kept, in bytes; the rest of a longer one is discarded.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The client of events whose sender matches no known asset. Real client ids are slugs without
/// an underscore, so this one can never collide with them.
pub const UNMAPPED_CLIENT: &str = "_unmapped";

/// `kind` and `source` of every event made here.
const SYSLOG: &str = "syslog";

/// Big enough for any UDP datagram (65,507 bytes of payload over IPv4).
const DATAGRAM_BUFFER_BYTES: usize = 64 * 1024;

/// How much a TCP connection reads at a time.
const READ_CHUNK_BYTES: usize = 8 * 1024;

/// An octet count has at most this many digits (up to 999,999,999 bytes), so that a line
/// which merely starts with a long number is taken for a newline-framed line.
const MAX_OCTET_COUNT_DIGITS: usize = 9;

/// Longer messages are parsed off the runtime: a 64 KiB line dense in structured data takes
/// milliseconds to parse, well over what an async task may hold a worker thread.
const INLINE_PARSE_BYTES: usize = 4 * 1024;

/// Pause after a failed `accept` (typically out of file descriptors) so that the listener does
/// not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Who sent a message, as the estate knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderMatch {
    pub client: String,
    pub asset: Option<String>,
}

/// Finds the client (and asset) of a sender from its address and the hostname it gave. Called
/// on the runtime for every message, so it must be a lookup in memory, never IO.
pub type Resolver = Arc<dyn Fn(IpAddr, Option<&str>) -> Option<SenderMatch> + Send + Sync>;

/// Turns one syslog line into an event; never fails and never panics.
///
/// `fields` carries `facility`, `hostname`, `appname`, `procid`, `msgid`, the structured data
/// as `sd` (`{"sd": {"id": {"param": "value"}}}`, a repeated parameter becomes an array),
/// `peer` (the sender's address) and `protocol` (`rfc3164` or `rfc5424`); absent parts are left
/// out. An RFC 3164 timestamp has no year: we take the one that puts it closest to
/// `received_ms` (see `year_for_3164`). A line that starts with a valid PRI but whose header
/// does not parse is kept as RFC 3164 §4.3.3 says: that PRI, the reception time, and everything
/// after the PRI as the message. A line without a PRI is no syslog at all: it becomes an
/// `unparsed` event, severity notice, with the line as message and raw.
pub fn parse_syslog(
    line: &[u8],
    peer: IpAddr,
    received_ms: i64,
    resolve: &dyn Fn(IpAddr, Option<&str>) -> Option<SenderMatch>,
) -> Event {
    let text = lossy_capped(line);
    let trimmed = trim_blank(&text);
    let Some((pri, pri_len)) = leading_pri(trimmed) else {
        return unparsed_event(trimmed, peer, received_ms, resolve);
    };
    // A valid PRI (at most 191) always decomposes into a known facility and severity.
    let (facility, _) = syslog_loose::decompose_pri(pri);
    let severity = Severity::from_syslog(pri & 0x7).unwrap_or(Severity::Notice);

    let mut fields = Map::new();
    if let Some(facility) = facility {
        fields.insert("facility".into(), facility.as_str().into());
    }

    let parsed = syslog_loose::parse_message_with_year_exact_tz(
        trimmed,
        move |date| year_for_3164(date, received_ms),
        // RFC 3164 timestamps carry no zone; UTC keeps the result independent of the server's.
        Some(Utc),
        Variant::Either,
    );
    let Ok(message) = parsed else {
        fields.insert("protocol".into(), "rfc3164".into());
        fields.insert("peer".into(), peer.to_string().into());
        let sender = resolve(peer, None);
        return Event {
            time_ms: received_ms,
            message: trim_blank(&trimmed[pri_len..]).to_owned(),
            severity,
            fields,
            raw: Some(text),
            ..syslog_event(sender)
        };
    };

    let protocol = match message.protocol {
        Protocol::RFC3164 => "rfc3164",
        Protocol::RFC5424(_) => "rfc5424",
    };
    fields.insert("protocol".into(), protocol.into());
    if let Some(hostname) = message.hostname {
        fields.insert("hostname".into(), hostname.into());
    }
    if let Some(appname) = message.appname {
        fields.insert("appname".into(), appname.into());
    }
    if let Some(procid) = &message.procid {
        // Always a string: RFC 5424 defines PROCID as text, and rules compare one type.
        fields.insert("procid".into(), procid.to_string().into());
    }
    if let Some(msgid) = message.msgid {
        fields.insert("msgid".into(), msgid.into());
    }
    if !message.structured_data.is_empty() {
        let sd = structured_data_json(&message.structured_data);
        fields.insert("sd".into(), Value::Object(sd));
    }
    fields.insert("peer".into(), peer.to_string().into());

    // RFC 5424 §6.4: a UTF-8 MSG may open with a BOM, which is encoding, not content.
    let msg = message.msg.strip_prefix('\u{feff}').unwrap_or(message.msg);
    let sender = resolve(peer, message.hostname);
    Event {
        time_ms: message
            .timestamp
            .map_or(received_ms, |time| time.timestamp_millis()),
        message: msg.to_owned(),
        severity,
        fields,
        raw: Some(text),
        ..syslog_event(sender)
    }
}

/// Answers syslog over UDP until the sink is closed: one datagram is one message.
pub async fn serve_udp(
    socket: UdpSocket,
    sink: mpsc::Sender<Event>,
    resolve: Resolver,
    clock: fn() -> i64,
) {
    let mut datagram = vec![0u8; DATAGRAM_BUFFER_BYTES];
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut datagram) => received,
            () = sink.closed() => break,
        };
        let (len, sender) = match received {
            Ok(received) => received,
            Err(error) => {
                // Typically an ICMP error reported for an earlier datagram: it concerns one
                // sender, never the socket.
                tracing::warn!(%error, "syslog udp receive failed");
                continue;
            }
        };
        let event = event_from_frame(&datagram[..len], sender.ip(), &resolve, clock).await;
        let Some(event) = event else {
            continue;
        };
        if sink.send(event).await.is_err() {
            break;
        }
    }
    tracing::debug!("syslog udp ingest stopped: sink closed");
}

/// Answers syslog over TCP until the sink is closed, one task per connection. Connections still
/// open when it returns (or when this future is dropped) are aborted.
pub async fn serve_tcp(
    listener: TcpListener,
    sink: mpsc::Sender<Event>,
    resolve: Resolver,
    clock: fn() -> i64,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let connection =
                        serve_tcp_connection(stream, peer, sink.clone(), resolve.clone(), clock);
                    connections.spawn(connection);
                }
                Err(error) => {
                    tracing::warn!(%error, "syslog tcp accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(finished) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = finished {
                    tracing::error!(%error, "syslog tcp connection task failed");
                }
            }
            () = sink.closed() => break,
        }
    }
    tracing::debug!("syslog tcp ingest stopped: sink closed");
}

/// Reads one connection to its end, delivering each frame as it completes and a final
/// unterminated one at end of stream or on error.
async fn serve_tcp_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    sink: mpsc::Sender<Event>,
    resolve: Resolver,
    clock: fn() -> i64,
) {
    tracing::debug!(%peer, "syslog tcp connection opened");
    let mut buffer = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut decoder = FrameDecoder::default();
    loop {
        while let Some(frame) = decoder.next_frame(&mut buffer, false) {
            if !deliver(&frame, peer.ip(), &sink, &resolve, clock).await {
                return;
            }
        }
        buffer.reserve(READ_CHUNK_BYTES);
        let read = tokio::select! {
            read = stream.read_buf(&mut buffer) => read,
            () = sink.closed() => return,
        };
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%peer, %error, "syslog tcp connection failed");
                break;
            }
        }
    }
    while let Some(frame) = decoder.next_frame(&mut buffer, true) {
        if !deliver(&frame, peer.ip(), &sink, &resolve, clock).await {
            return;
        }
    }
    tracing::debug!(%peer, "syslog tcp connection closed");
}

/// Sends the event of one frame; false once the sink is closed.
async fn deliver(
    frame: &[u8],
    peer: IpAddr,
    sink: &mpsc::Sender<Event>,
    resolve: &Resolver,
    clock: fn() -> i64,
) -> bool {
    match event_from_frame(frame, peer, resolve, clock).await {
        Some(event) => sink.send(event).await.is_ok(),
        None => true,
    }
}

/// The event of one received frame, or none for a blank one (a stray terminator is no message).
async fn event_from_frame(
    frame: &[u8],
    peer: IpAddr,
    resolve: &Resolver,
    clock: fn() -> i64,
) -> Option<Event> {
    let end = frame
        .iter()
        .rposition(|byte| !matches!(byte, b'\n' | b'\r' | b'\0'))?;
    let line = &frame[..=end];
    if line
        .iter()
        .all(|byte| byte.is_ascii_whitespace() || *byte == 0)
    {
        return None;
    }
    // An IPv6 listener sees IPv4 senders as mapped addresses; the estate knows them as IPv4.
    let peer = peer.to_canonical();
    let received_ms = clock();
    if line.len() <= INLINE_PARSE_BYTES {
        return Some(parse_syslog(line, peer, received_ms, &**resolve));
    }
    let line = Bytes::copy_from_slice(line);
    let resolve = Arc::clone(resolve);
    let parsed =
        tokio::task::spawn_blocking(move || parse_syslog(&line, peer, received_ms, &*resolve));
    match parsed.await {
        Ok(event) => Some(event),
        Err(error) => {
            // Only when the runtime shuts down: parsing never panics.
            tracing::warn!(%peer, %error, "syslog message dropped");
            None
        }
    }
}

/// Splits a TCP byte stream into messages (RFC 6587). Each message chooses its framing: a
/// leading `LEN SP` is an octet count, anything else runs to LF, CRLF or NUL. Whatever the
/// framing, a message is cut at `MAX_MESSAGE_BYTES` and the rest of it discarded, so the buffer
/// never holds much more than one message and one read.
#[derive(Debug, Default)]
struct FrameDecoder {
    state: FrameState,
}

#[derive(Debug, Default)]
enum FrameState {
    /// Between messages.
    #[default]
    Start,
    /// In a newline-framed message whose first `scanned` bytes hold no terminator.
    Line { scanned: usize },
    /// In an octet-counted message of `len` bytes, its header consumed.
    Counted { len: usize },
    /// Dropping the rest of a newline-framed message longer than the cap.
    DiscardLine,
    /// Dropping the `remaining` bytes of an octet-counted message longer than the cap.
    DiscardCounted { remaining: usize },
}

/// What the start of a message says about its framing.
enum FrameHeader {
    Counted {
        len: usize,
        header_len: usize,
    },
    Line,
    /// Only digits so far: either framing is still possible.
    Incomplete,
}

impl FrameDecoder {
    /// The next complete message in `buffer`, consumed from it. At end of stream (`eof`), what
    /// is left is a message too, even without its terminator or short of its octet count.
    fn next_frame(&mut self, buffer: &mut BytesMut, eof: bool) -> Option<Bytes> {
        loop {
            match self.state {
                FrameState::Start => {
                    // Blank lines, and the LF some senders put after an octet-counted message.
                    let blank = buffer
                        .iter()
                        .take_while(|byte| matches!(byte, b'\n' | b'\r' | b'\0'))
                        .count();
                    buffer.advance(blank);
                    if buffer.is_empty() {
                        return None;
                    }
                    match frame_header(buffer) {
                        FrameHeader::Counted { len, header_len } => {
                            buffer.advance(header_len);
                            self.state = FrameState::Counted { len };
                        }
                        FrameHeader::Line => self.state = FrameState::Line { scanned: 0 },
                        FrameHeader::Incomplete if eof => {
                            self.state = FrameState::Line { scanned: 0 };
                        }
                        FrameHeader::Incomplete => return None,
                    }
                }
                FrameState::Line { scanned } => {
                    let terminator = buffer[scanned..]
                        .iter()
                        .position(|byte| matches!(byte, b'\n' | b'\0'));
                    if let Some(offset) = terminator {
                        let end = scanned + offset;
                        let mut frame = buffer.split_to(end).freeze();
                        buffer.advance(1);
                        frame.truncate(MAX_MESSAGE_BYTES);
                        if frame.last() == Some(&b'\r') {
                            frame.truncate(frame.len() - 1);
                        }
                        self.state = FrameState::Start;
                        return Some(frame);
                    }
                    if buffer.len() >= MAX_MESSAGE_BYTES {
                        self.state = FrameState::DiscardLine;
                        return Some(buffer.split_to(MAX_MESSAGE_BYTES).freeze());
                    }
                    if eof {
                        self.state = FrameState::Start;
                        return (!buffer.is_empty()).then(|| buffer.split().freeze());
                    }
                    self.state = FrameState::Line {
                        scanned: buffer.len(),
                    };
                    return None;
                }
                FrameState::Counted { len } => {
                    let keep = len.min(MAX_MESSAGE_BYTES);
                    if buffer.len() >= keep {
                        self.state = match len - keep {
                            0 => FrameState::Start,
                            remaining => FrameState::DiscardCounted { remaining },
                        };
                        return Some(buffer.split_to(keep).freeze());
                    }
                    if eof {
                        // The sender went away mid-message: what came is still worth keeping.
                        self.state = FrameState::Start;
                        return (!buffer.is_empty()).then(|| buffer.split().freeze());
                    }
                    return None;
                }
                FrameState::DiscardLine => {
                    match buffer.iter().position(|byte| matches!(byte, b'\n' | b'\0')) {
                        Some(end) => {
                            buffer.advance(end + 1);
                            self.state = FrameState::Start;
                        }
                        None => {
                            buffer.clear();
                            return None;
                        }
                    }
                }
                FrameState::DiscardCounted { remaining } => {
                    let dropped = remaining.min(buffer.len());
                    buffer.advance(dropped);
                    if dropped < remaining {
                        self.state = FrameState::DiscardCounted {
                            remaining: remaining - dropped,
                        };
                        return None;
                    }
                    self.state = FrameState::Start;
                }
            }
        }
    }
}

/// Reads the framing of the message at the start of `buffer` (which is not empty).
fn frame_header(buffer: &[u8]) -> FrameHeader {
    let digits = buffer
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    // RFC 6587: MSG-LEN = NONZERO-DIGIT *DIGIT.
    if digits == 0 || buffer[0] == b'0' || digits > MAX_OCTET_COUNT_DIGITS {
        return FrameHeader::Line;
    }
    match buffer.get(digits) {
        None => FrameHeader::Incomplete,
        Some(b' ') => FrameHeader::Counted {
            len: buffer[..digits]
                .iter()
                .fold(0, |len, digit| len * 10 + usize::from(digit - b'0')),
            header_len: digits + 1,
        },
        Some(_) => FrameHeader::Line,
    }
}

/// The year of an RFC 3164 timestamp, which has none: of the reception year and the ones either
/// side, the one that puts the timestamp closest to the reception time. So a December line
/// received in January is from last year, and a January line received on 31 December (a
/// sender's clock ahead, or its time zone) is from next year.
fn year_for_3164(date: IncompleteDate, received_ms: i64) -> i32 {
    let (month, day, hour, minute, second) = date;
    let received_year = DateTime::<Utc>::from_timestamp_millis(received_ms)
        .map_or(1970, |received| received.year());
    [received_year - 1, received_year, received_year + 1]
        .into_iter()
        .filter_map(|year| {
            let time = NaiveDate::from_ymd_opt(year, month, day)?
                .and_hms_opt(hour, minute, second)?
                .and_utc();
            Some((year, time.timestamp_millis().abs_diff(received_ms)))
        })
        .min_by_key(|&(_, distance)| distance)
        .map_or(received_year, |(year, _)| year)
}

/// The PRI opening `text`, `<0>` to `<191>` (RFC 5424 §6.2.1), and the length of its `<…>`.
fn leading_pri(text: &str) -> Option<(u8, usize)> {
    let rest = text.strip_prefix('<')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=3).contains(&digits) || rest.as_bytes().get(digits) != Some(&b'>') {
        return None;
    }
    let pri: u8 = rest[..digits].parse().ok()?;
    (pri <= 191).then_some((pri, digits + 2))
}

/// `[id name="value" …]` elements as `{"id": {"name": "value"}}`, escapes resolved. RFC 5424
/// lets a parameter repeat: its values then become an array, in order.
fn structured_data_json(elements: &[StructuredElement<&str>]) -> Map<String, Value> {
    let mut sd = Map::new();
    for element in elements {
        let mut params = match sd.remove(element.id) {
            Some(Value::Object(params)) => params,
            _ => Map::new(),
        };
        for (name, value) in element.params() {
            let value = Value::String(value);
            match params.get_mut(*name) {
                None => {
                    params.insert((*name).to_owned(), value);
                }
                Some(Value::Array(values)) => values.push(value),
                Some(first) => *first = Value::Array(vec![first.take(), value]),
            }
        }
        sd.insert(element.id.to_owned(), Value::Object(params));
    }
    sd
}

fn unparsed_event(
    line: &str,
    peer: IpAddr,
    received_ms: i64,
    resolve: &dyn Fn(IpAddr, Option<&str>) -> Option<SenderMatch>,
) -> Event {
    let mut fields = Map::new();
    fields.insert("peer".into(), peer.to_string().into());
    Event {
        time_ms: received_ms,
        message: line.to_owned(),
        severity: Severity::Notice,
        fields,
        raw: Some(line.to_owned()),
        unparsed: true,
        ..syslog_event(resolve(peer, None))
    }
}

/// An event from syslog for `sender`, the rest to be filled in.
fn syslog_event(sender: Option<SenderMatch>) -> Event {
    let (client, asset) = match sender {
        Some(SenderMatch { client, asset }) => (client, asset),
        None => (UNMAPPED_CLIENT.to_owned(), None),
    };
    Event {
        time_ms: 0,
        client,
        asset,
        source: SYSLOG.to_owned(),
        kind: SYSLOG.to_owned(),
        severity: Severity::Notice,
        message: String::new(),
        fields: Map::new(),
        raw: None,
        unparsed: false,
    }
}

/// `line` as text, invalid UTF-8 replaced, at most `MAX_MESSAGE_BYTES` long.
fn lossy_capped(line: &[u8]) -> String {
    let line = &line[..line.len().min(MAX_MESSAGE_BYTES)];
    let mut text = String::from_utf8_lossy(line).into_owned();
    // Each invalid byte became three, so the text may have outgrown the cap.
    text.truncate(text.floor_char_boundary(MAX_MESSAGE_BYTES));
    text
}

fn trim_blank(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || c == '\0')
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use serde_json::json;
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// 2003-10-12T00:00:00Z, a little after the RFC examples were sent.
    const RECEIVED_MS: i64 = 1_065_916_800_000;
    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    /// A guard against a hung test, never a timing assertion.
    const GUARD: Duration = Duration::from_secs(10);

    fn fixed_clock() -> i64 {
        RECEIVED_MS
    }

    fn no_match(_: IpAddr, _: Option<&str>) -> Option<SenderMatch> {
        None
    }

    fn acme(asset: Option<&str>) -> Option<SenderMatch> {
        Some(SenderMatch {
            client: "acme".to_owned(),
            asset: asset.map(str::to_owned),
        })
    }

    /// Parses `line` from `PEER`, received at `RECEIVED_MS`, with no sender known, and compares
    /// the event as JSON, `raw` aside (it is the line; see `raw_is_the_whole_line`).
    fn check(line: &[u8], expect: Value) {
        let event = parse_syslog(line, PEER, RECEIVED_MS, &no_match);
        let mut actual = serde_json::to_value(&event).expect("invariant: an event serialises");
        actual
            .as_object_mut()
            .expect("invariant: an event is an object")
            .remove("raw");
        assert_eq!(actual, expect);
    }

    #[test]
    fn parses_rfc5424_without_structured_data() {
        check(
            b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \
              \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
            json!({
                "time_ms": 1_065_910_455_003_i64,
                "client": "_unmapped",
                "source": "syslog",
                "kind": "syslog",
                "severity": "critical",
                "message": "'su root' failed for lonvick on /dev/pts/8",
                "fields": {
                    "facility": "auth",
                    "hostname": "mymachine.example.com",
                    "appname": "su",
                    "msgid": "ID47",
                    "peer": "192.0.2.10",
                    "protocol": "rfc5424",
                },
            }),
        );
    }

    #[test]
    fn parses_rfc5424_structured_data_into_nested_objects() {
        check(
            br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry..."#,
            json!({
                "time_ms": 1_065_910_455_003_i64,
                "client": "_unmapped",
                "source": "syslog",
                "kind": "syslog",
                "severity": "notice",
                "message": "An application event log entry...",
                "fields": {
                    "facility": "local4",
                    "hostname": "mymachine.example.com",
                    "appname": "evntslog",
                    "msgid": "ID47",
                    "sd": {
                        "exampleSDID@32473": {
                            "iut": "3",
                            "eventSource": "Application",
                            "eventID": "1011",
                        },
                    },
                    "peer": "192.0.2.10",
                    "protocol": "rfc5424",
                },
            }),
        );
    }

    #[test]
    fn keeps_repeated_structured_data_params_and_resolves_escapes() {
        check(
            br#"<14>1 - host app 42 - [a@1 x="1" x="2" q="say \"hi\" \]"][b@1][a@1 y=""] text"#,
            json!({
                "time_ms": RECEIVED_MS,
                "client": "_unmapped",
                "source": "syslog",
                "kind": "syslog",
                "severity": "info",
                "message": "text",
                "fields": {
                    "facility": "user",
                    "hostname": "host",
                    "appname": "app",
                    "procid": "42",
                    "sd": {
                        "a@1": {"x": ["1", "2"], "q": "say \"hi\" ]", "y": ""},
                        "b@1": {},
                    },
                    "peer": "192.0.2.10",
                    "protocol": "rfc5424",
                },
            }),
        );
    }

    #[test]
    fn parses_rfc3164_in_the_year_of_reception() {
        check(
            b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            json!({
                "time_ms": 1_065_910_455_000_i64,
                "client": "_unmapped",
                "source": "syslog",
                "kind": "syslog",
                "severity": "critical",
                "message": "'su root' failed for lonvick on /dev/pts/8",
                "fields": {
                    "facility": "auth",
                    "hostname": "mymachine",
                    "appname": "su",
                    "peer": "192.0.2.10",
                    "protocol": "rfc3164",
                },
            }),
        );
    }

    #[test]
    fn parses_rfc3164_procid_as_text() {
        let event = parse_syslog(
            b"<30>Oct 11 22:14:15 web1 nginx[323]: upstream timed out",
            PEER,
            RECEIVED_MS,
            &no_match,
        );
        assert_eq!(event.fields["appname"], "nginx");
        assert_eq!(event.fields["procid"], "323");
        assert_eq!(event.severity, Severity::Info);
        assert_eq!(event.fields["facility"], "daemon");
        assert_eq!(event.message, "upstream timed out");
    }

    #[test]
    fn puts_a_december_rfc3164_line_received_in_january_in_the_previous_year() {
        // Received 2004-01-01T00:10:00Z.
        let event = parse_syslog(
            b"<34>Dec 31 23:59:00 host app: late",
            PEER,
            1_072_915_800_000,
            &no_match,
        );
        // 2003-12-31T23:59:00Z.
        assert_eq!(event.time_ms, 1_072_915_140_000);
    }

    #[test]
    fn puts_a_january_rfc3164_line_received_on_new_years_eve_in_the_next_year() {
        // Received 2003-12-31T23:50:00Z from a sender whose clock is 15 minutes ahead.
        let event = parse_syslog(
            b"<34>Jan  1 00:05:00 host app: early",
            PEER,
            1_072_914_600_000,
            &no_match,
        );
        // 2004-01-01T00:05:00Z.
        assert_eq!(event.time_ms, 1_072_915_500_000);
    }

    #[test]
    fn chooses_the_rfc3164_year_closest_to_reception() {
        let received_2004_01_01 = 1_072_915_800_000;
        assert_eq!(
            year_for_3164((12, 31, 23, 59, 0), received_2004_01_01),
            2003
        );
        assert_eq!(year_for_3164((1, 1, 0, 5, 0), received_2004_01_01), 2004);
        assert_eq!(year_for_3164((3, 1, 0, 0, 0), received_2004_01_01), 2004);
        assert_eq!(year_for_3164((10, 11, 22, 14, 15), RECEIVED_MS), 2003);
        // 29 February exists only in 2004 among 2003 to 2005.
        assert_eq!(year_for_3164((2, 29, 12, 0, 0), RECEIVED_MS), 2004);
    }

    #[test]
    fn keeps_a_line_with_a_pri_but_no_header_as_rfc_3164_says() {
        check(
            b"<13>just some text",
            json!({
                "time_ms": RECEIVED_MS,
                "client": "_unmapped",
                "source": "syslog",
                "kind": "syslog",
                "severity": "notice",
                "message": "just some text",
                "fields": {"facility": "user", "peer": "192.0.2.10", "protocol": "rfc3164"},
            }),
        );
    }

    #[test]
    fn flags_a_line_without_pri_as_unparsed() {
        check(
            b"  hello, no syslog here \n",
            json!({
                "time_ms": RECEIVED_MS,
                "client": "_unmapped",
                "source": "syslog",
                "kind": "syslog",
                "severity": "notice",
                "message": "hello, no syslog here",
                "fields": {"peer": "192.0.2.10"},
                "unparsed": true,
            }),
        );
    }

    #[test]
    fn flags_a_pri_out_of_range_as_unparsed() {
        let lines: [&[u8]; 4] = [
            b"<192>Oct 11 22:14:15 host app: x",
            b"<1234>x",
            b"<>x",
            b"<3x",
        ];
        for line in lines {
            let event = parse_syslog(line, PEER, RECEIVED_MS, &no_match);
            assert!(event.unparsed, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn flags_binary_as_unparsed_and_decodes_it_lossily() {
        let event = parse_syslog(b"\x00\xff\xfeab\x01", PEER, RECEIVED_MS, &no_match);
        assert!(event.unparsed);
        assert_eq!(event.message, "\u{fffd}\u{fffd}ab\u{1}");
        assert_eq!(event.raw.as_deref(), Some("\u{fffd}\u{fffd}ab\u{1}"));
    }

    #[test]
    fn decodes_invalid_utf8_lossily() {
        let event = parse_syslog(
            b"<34>Oct 11 22:14:15 host app: caf\xe9 cr\xc3\xa8me",
            PEER,
            RECEIVED_MS,
            &no_match,
        );
        assert!(!event.unparsed);
        assert_eq!(event.message, "caf\u{fffd} cr\u{e8}me");
    }

    #[test]
    fn raw_is_the_whole_line() {
        let line = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed";
        let event = parse_syslog(line.as_bytes(), PEER, RECEIVED_MS, &no_match);
        assert_eq!(event.raw.as_deref(), Some(line));
    }

    #[test]
    fn caps_an_unparsed_line_at_64_kib_on_a_char_boundary() {
        let line = "é".repeat(MAX_MESSAGE_BYTES);
        let event = parse_syslog(line.as_bytes(), PEER, RECEIVED_MS, &no_match);
        assert!(event.unparsed);
        assert_eq!(event.message.len(), MAX_MESSAGE_BYTES);
        assert_eq!(event.raw.as_deref(), Some(event.message.as_str()));
    }

    #[test]
    fn maps_the_sender_by_hostname() {
        let resolve = |_: IpAddr, hostname: Option<&str>| {
            if hostname == Some("mymachine") {
                acme(Some("srv-mymachine"))
            } else {
                None
            }
        };
        let event = parse_syslog(
            b"<34>Oct 11 22:14:15 mymachine su: hello",
            PEER,
            RECEIVED_MS,
            &resolve,
        );
        assert_eq!(event.client, "acme");
        assert_eq!(event.asset.as_deref(), Some("srv-mymachine"));
        assert_eq!(event.fields["peer"], "192.0.2.10");
    }

    #[test]
    fn maps_the_sender_by_address_even_when_unparsed() {
        let resolve = |peer: IpAddr, _: Option<&str>| if peer == PEER { acme(None) } else { None };
        let event = parse_syslog(b"garbage", PEER, RECEIVED_MS, &resolve);
        assert!(event.unparsed);
        assert_eq!(event.client, "acme");
        assert_eq!(event.asset, None);
    }

    /// Pseudo-random bytes from a linear congruential generator, weighted towards the
    /// characters syslog parsers branch on.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn bytes(&mut self) -> Vec<u8> {
            const PIECES: [&[u8]; 16] = [
                b"<",
                b">",
                b"<34>",
                b"<165>1 ",
                b"1",
                b"9",
                b" ",
                b":",
                b"[",
                b"]",
                b"=\"",
                b"\"",
                b"\\",
                b"Oct 11 22:14:15",
                b"2003-10-11T22:14:15.003Z",
                b"\n",
            ];
            let len = self.next() % 24;
            let mut bytes = Vec::new();
            for _ in 0..len {
                let pick = self.next();
                if pick.is_multiple_of(3) {
                    bytes.push((pick >> 8) as u8);
                } else {
                    bytes.extend_from_slice(PIECES[(pick >> 8) as usize % PIECES.len()]);
                }
            }
            bytes
        }
    }

    #[test]
    fn never_panics_and_always_names_a_client() {
        let mut lcg = Lcg(7);
        for _ in 0..5_000 {
            let line = lcg.bytes();
            let event = parse_syslog(&line, PEER, RECEIVED_MS, &no_match);
            assert!(!event.client.is_empty());
            assert!(event.message.len() <= MAX_MESSAGE_BYTES);
        }
    }

    /// Feeds `input` to a decoder in chunks of `chunk` bytes, then ends the stream.
    fn decode(input: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut decoder = FrameDecoder::default();
        let mut buffer = BytesMut::new();
        let mut frames = Vec::new();
        for piece in input.chunks(chunk) {
            buffer.extend_from_slice(piece);
            while let Some(frame) = decoder.next_frame(&mut buffer, false) {
                frames.push(frame.to_vec());
            }
        }
        while let Some(frame) = decoder.next_frame(&mut buffer, true) {
            frames.push(frame.to_vec());
        }
        frames
    }

    #[test]
    fn decodes_mixed_framing_whatever_the_read_boundaries() {
        let input = b"5 <13>a<13>b\n\n<13>c\r\n4 <13>\n<13>d\0<13>tail";
        let expect: Vec<&[u8]> = vec![b"<13>a", b"<13>b", b"<13>c", b"<13>", b"<13>d", b"<13>tail"];
        for chunk in 1..=input.len() {
            assert_eq!(decode(input, chunk), expect, "chunk of {chunk}");
        }
    }

    #[test]
    fn takes_a_line_starting_with_a_number_for_a_newline_framed_one() {
        let frames = decode(b"2024-01-01 boot\n0 zero\n1234567890 long\n12", 3);
        let expect: Vec<&[u8]> = vec![b"2024-01-01 boot", b"0 zero", b"1234567890 long", b"12"];
        assert_eq!(frames, expect);
    }

    #[test]
    fn cuts_oversize_frames_at_the_cap_and_resumes_after_them() {
        let long = vec![b'a'; MAX_MESSAGE_BYTES + 1000];
        let mut input = long.clone();
        input.extend_from_slice(b"\n<13>next\n");
        input.extend_from_slice(format!("{} ", long.len()).as_bytes());
        input.extend_from_slice(&long);
        input.extend_from_slice(b"9 <13>after");
        for chunk in [1000, 7_000, input.len()] {
            let frames = decode(&input, chunk);
            assert_eq!(frames.len(), 4, "chunk of {chunk}");
            assert_eq!(frames[0], &long[..MAX_MESSAGE_BYTES]);
            assert_eq!(frames[1], b"<13>next");
            assert_eq!(frames[2], &long[..MAX_MESSAGE_BYTES]);
            assert_eq!(frames[3], b"<13>after");
        }
    }

    #[test]
    fn decoder_never_panics_nor_exceeds_the_cap() {
        let mut lcg = Lcg(11);
        for _ in 0..2_000 {
            let input = lcg.bytes();
            let chunk = usize::try_from(lcg.next() % 8).expect("invariant: below 8") + 1;
            for frame in decode(&input, chunk) {
                assert!(frame.len() <= MAX_MESSAGE_BYTES);
            }
        }
    }

    fn resolver(
        resolve: impl Fn(IpAddr, Option<&str>) -> Option<SenderMatch> + Send + Sync + 'static,
    ) -> Resolver {
        Arc::new(resolve)
    }

    async fn start_udp(resolve: Resolver) -> (SocketAddr, mpsc::Receiver<Event>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let address = socket.local_addr().expect("udp address");
        let (sink, events) = mpsc::channel(16);
        tokio::spawn(serve_udp(socket, sink, resolve, fixed_clock));
        (address, events)
    }

    async fn start_tcp(
        resolve: Resolver,
    ) -> (
        SocketAddr,
        mpsc::Receiver<Event>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
        let address = listener.local_addr().expect("tcp address");
        let (sink, events) = mpsc::channel(16);
        let server = tokio::spawn(serve_tcp(listener, sink, resolve, fixed_clock));
        (address, events, server)
    }

    async fn next_event(events: &mut mpsc::Receiver<Event>) -> Event {
        tokio::time::timeout(GUARD, events.recv())
            .await
            .expect("an event within the guard time")
            .expect("the sink still open")
    }

    async fn next_messages(events: &mut mpsc::Receiver<Event>, count: usize) -> Vec<String> {
        let mut messages = Vec::new();
        for _ in 0..count {
            messages.push(next_event(events).await.message);
        }
        messages
    }

    async fn send_tcp(address: SocketAddr, writes: &[&[u8]]) {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        for bytes in writes {
            stream.write_all(bytes).await.expect("write");
            stream.flush().await.expect("flush");
        }
        stream.shutdown().await.expect("shutdown");
    }

    #[tokio::test]
    async fn udp_delivers_rfc3164_and_rfc5424_datagrams() {
        let (address, mut events) = start_udp(resolver(no_match)).await;
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");

        client
            .send_to(
                b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed\n",
                address,
            )
            .await
            .expect("send 3164");
        let event = next_event(&mut events).await;
        assert_eq!(event.time_ms, 1_065_910_455_000);
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(event.message, "'su root' failed");
        assert_eq!(event.client, UNMAPPED_CLIENT);
        assert_eq!(event.fields["hostname"], "mymachine");
        assert_eq!(event.fields["appname"], "su");
        assert_eq!(event.fields["protocol"], "rfc3164");
        assert_eq!(event.fields["peer"], "127.0.0.1");
        assert_eq!(
            event.raw.as_deref(),
            Some("<34>Oct 11 22:14:15 mymachine su: 'su root' failed")
        );

        client
            .send_to(
                br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] An entry"#,
                address,
            )
            .await
            .expect("send 5424");
        let event = next_event(&mut events).await;
        assert_eq!(event.time_ms, 1_065_910_455_003);
        assert_eq!(event.severity, Severity::Notice);
        assert_eq!(event.message, "An entry");
        assert_eq!(event.fields["facility"], "local4");
        assert_eq!(event.fields["msgid"], "ID47");
        assert_eq!(
            event.fields["sd"],
            json!({"exampleSDID@32473": {"iut": "3"}})
        );
        assert_eq!(event.fields["protocol"], "rfc5424");
    }

    #[tokio::test]
    async fn udp_maps_senders_by_hostname_and_by_address() {
        let resolve = resolver(|peer, hostname| match hostname {
            Some("db1") => acme(Some("srv-db1")),
            _ if peer == IpAddr::V4(Ipv4Addr::LOCALHOST) => acme(None),
            _ => None,
        });
        let (address, mut events) = start_udp(resolve).await;
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");

        client
            .send_to(b"<34>Oct 11 22:14:15 db1 app: by name", address)
            .await
            .expect("send");
        let event = next_event(&mut events).await;
        assert_eq!(
            (event.client.as_str(), event.asset.as_deref()),
            ("acme", Some("srv-db1"))
        );

        client
            .send_to(b"<34>Oct 11 22:14:15 other app: by address", address)
            .await
            .expect("send");
        let event = next_event(&mut events).await;
        assert_eq!(
            (event.client.as_str(), event.asset.as_deref()),
            ("acme", None)
        );
    }

    #[tokio::test]
    async fn udp_flags_an_unparsable_datagram() {
        let (address, mut events) = start_udp(resolver(no_match)).await;
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
        client
            .send_to(b"not syslog\0", address)
            .await
            .expect("send");
        let event = next_event(&mut events).await;
        assert!(event.unparsed);
        assert_eq!(event.message, "not syslog");
        assert_eq!(event.time_ms, RECEIVED_MS);
        assert_eq!(event.client, UNMAPPED_CLIENT);
        assert_eq!(event.fields["peer"], "127.0.0.1");
    }

    #[tokio::test]
    async fn udp_stops_when_the_sink_is_closed() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let (sink, events) = mpsc::channel(1);
        let server = tokio::spawn(serve_udp(socket, sink, resolver(no_match), fixed_clock));
        drop(events);
        tokio::time::timeout(GUARD, server)
            .await
            .expect("stopped within the guard time")
            .expect("no panic");
    }

    #[tokio::test]
    async fn tcp_delivers_octet_counted_messages() {
        let (address, mut events, _server) = start_tcp(resolver(no_match)).await;
        let first = b"<34>Oct 11 22:14:15 host app: first";
        let second = br#"<165>1 2003-10-11T22:14:15.003Z host app - ID47 [x@1 a="1"] second"#;
        let mut bytes = format!("{} ", first.len()).into_bytes();
        bytes.extend_from_slice(first);
        bytes.extend_from_slice(format!("{} ", second.len()).as_bytes());
        bytes.extend_from_slice(second);
        send_tcp(address, &[&bytes]).await;

        let event = next_event(&mut events).await;
        assert_eq!(event.message, "first");
        assert_eq!(event.fields["protocol"], "rfc3164");
        let event = next_event(&mut events).await;
        assert_eq!(event.message, "second");
        assert_eq!(event.fields["sd"], json!({"x@1": {"a": "1"}}));
        assert_eq!(event.fields["peer"], "127.0.0.1");
    }

    #[tokio::test]
    async fn tcp_delivers_newline_framed_messages() {
        let (address, mut events, _server) = start_tcp(resolver(no_match)).await;
        send_tcp(address, &[b"<13>lf\n<13>crlf\r\n\n<13>nul\0<13>end\n"]).await;
        assert_eq!(
            next_messages(&mut events, 4).await,
            ["lf", "crlf", "nul", "end"]
        );
    }

    #[tokio::test]
    async fn tcp_delivers_mixed_framing_split_across_writes() {
        let (address, mut events, _server) = start_tcp(resolver(no_match)).await;
        let bytes = b"11 <13>counted<13>line one\r\n15 <13>counted two<13>line two\n";
        let writes: Vec<&[u8]> = bytes.chunks(5).collect();
        send_tcp(address, &writes).await;
        assert_eq!(
            next_messages(&mut events, 4).await,
            ["counted", "line one", "counted two", "line two"]
        );
    }

    #[tokio::test]
    async fn tcp_delivers_an_unterminated_last_line() {
        let (address, mut events, _server) = start_tcp(resolver(no_match)).await;
        send_tcp(address, &[b"<13>first\n<13>last words"]).await;
        assert_eq!(next_messages(&mut events, 2).await, ["first", "last words"]);
    }

    #[tokio::test]
    async fn tcp_flags_an_unparsable_line() {
        let (address, mut events, _server) = start_tcp(resolver(no_match)).await;
        send_tcp(address, &[b"\xffnot syslog at all\n<13>fine\n"]).await;
        let event = next_event(&mut events).await;
        assert!(event.unparsed);
        assert_eq!(event.message, "\u{fffd}not syslog at all");
        assert_eq!(event.severity, Severity::Notice);
        let event = next_event(&mut events).await;
        assert!(!event.unparsed);
        assert_eq!(event.message, "fine");
    }

    #[tokio::test]
    async fn tcp_maps_senders_by_hostname_and_by_address() {
        let resolve = resolver(|peer, hostname| match hostname {
            Some("db1") => acme(Some("srv-db1")),
            _ if peer == IpAddr::V4(Ipv4Addr::LOCALHOST) => acme(None),
            _ => None,
        });
        let (address, mut events, _server) = start_tcp(resolve).await;
        send_tcp(
            address,
            &[b"<34>Oct 11 22:14:15 db1 app: by name\n<34>Oct 11 22:14:15 other app: by address\n"],
        )
        .await;
        let event = next_event(&mut events).await;
        assert_eq!(
            (event.client.as_str(), event.asset.as_deref()),
            ("acme", Some("srv-db1"))
        );
        let event = next_event(&mut events).await;
        assert_eq!(
            (event.client.as_str(), event.asset.as_deref()),
            ("acme", None)
        );
    }

    #[tokio::test]
    async fn tcp_caps_an_oversize_line_and_goes_on() {
        let (address, mut events, _server) = start_tcp(resolver(no_match)).await;
        let mut bytes = b"<13>".to_vec();
        bytes.resize(MAX_MESSAGE_BYTES + 10_000, b'a');
        bytes.extend_from_slice(b"\n<13>next\n");
        send_tcp(address, &[&bytes]).await;

        let event = next_event(&mut events).await;
        assert!(!event.unparsed);
        assert_eq!(event.raw.as_deref().map(str::len), Some(MAX_MESSAGE_BYTES));
        assert_eq!(event.message, "a".repeat(MAX_MESSAGE_BYTES - 4));
        assert_eq!(next_event(&mut events).await.message, "next");
    }

    #[tokio::test]
    async fn tcp_caps_an_oversize_octet_count_and_goes_on() {
        let (address, mut events, _server) = start_tcp(resolver(no_match)).await;
        let mut message = b"<13>".to_vec();
        message.resize(MAX_MESSAGE_BYTES + 10_000, b'a');
        let mut bytes = format!("{} ", message.len()).into_bytes();
        bytes.extend_from_slice(&message);
        bytes.extend_from_slice(b"9 <13>after");
        send_tcp(address, &[&bytes]).await;

        let event = next_event(&mut events).await;
        assert_eq!(event.raw.as_deref().map(str::len), Some(MAX_MESSAGE_BYTES));
        assert_eq!(next_event(&mut events).await.message, "after");
    }

    #[tokio::test]
    async fn tcp_survives_a_reset_connection() {
        let (address, mut events, _server) = start_tcp(resolver(no_match)).await;
        let mut broken = TcpStream::connect(address).await.expect("connect");
        broken.set_zero_linger().expect("linger");
        broken.write_all(b"<13>partial").await.expect("write");
        drop(broken);

        send_tcp(address, &[b"<13>second\n"]).await;
        // The partial message may or may not have been read before the reset.
        let mut event = next_event(&mut events).await;
        if event.message == "partial" {
            event = next_event(&mut events).await;
        }
        assert_eq!(event.message, "second");
    }

    #[tokio::test]
    async fn tcp_stops_when_the_sink_is_closed_even_with_connections_open() {
        let (address, events, server) = start_tcp(resolver(no_match)).await;
        let mut idle = TcpStream::connect(address).await.expect("connect");
        idle.write_all(b"<13>half a li").await.expect("write");
        drop(events);
        tokio::time::timeout(GUARD, server)
            .await
            .expect("stopped within the guard time")
            .expect("no panic");
    }
}

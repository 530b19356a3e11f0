//! The HTTP probe: one request over HTTP/1.1, plain or TLS, on a fresh connection per request
//! (a probe measures the service, not a pool), redirects followed up to the check's limit, the
//! final status held against the accepted ranges, the body against an optional regex, the total
//! time against the latency thresholds. Perfdata: `time` (seconds, all requests and bodies
//! included) and `size` (bytes of the final body).
//!
//! Invariants: a body is read to its end but only its first `MAX_BODY_BYTES` are kept for the
//! regex, which runs on the linear-time `regex` engine with a size limit; the connection lives
//! in the probe's own task, so a timed-out probe leaves nothing behind.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONNECTION, HOST, LOCATION, USER_AGENT};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use regex::bytes::{Regex, RegexBuilder};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use url::Url;
use vigie_core::check::{CheckState, PluginResult, ProbeTarget, Thresholds};

use super::perf::{self, PerfItem};
use super::plugin::expand_macros;
use super::tls::{
    CertificatePolicy, TrustRoots, client_config, describe_handshake_error, server_name,
};
use super::{as_ms, connect_tcp, finish, resolve, target_macros, time_left, worst};

const LABEL: &str = "HTTP";

/// How much of a body the regex sees.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The accepted statuses when a check lists none: success and redirection.
pub const DEFAULT_STATUS: (u16, u16) = (200, 399);

const REGEX_SIZE_LIMIT: usize = 1024 * 1024;

/// The options of `Probe::Http`.
#[derive(Debug, Clone, Copy)]
pub struct HttpProbe<'a> {
    /// May hold `$HOSTADDRESS$` and `$HOSTNAME$`.
    pub url: &'a str,
    /// `GET` when empty.
    pub method: &'a str,
    /// Inclusive ranges; `DEFAULT_STATUS` when empty.
    pub status: &'a [(u16, u16)],
    pub body_regex: Option<&'a str>,
    pub max_redirects: u32,
    pub verify_tls: bool,
    pub latency_ms: &'a Thresholds,
}

/// One answered request.
struct Exchange {
    status: StatusCode,
    version: http::Version,
    reason: String,
    location: Option<String>,
    body: Vec<u8>,
    size: u64,
}

pub async fn check(
    probe: &HttpProbe<'_>,
    target: &ProbeTarget,
    deadline: Instant,
    roots: &TrustRoots,
) -> PluginResult {
    let unknown = |reason: String| finish(LABEL, CheckState::Unknown, reason, Vec::new(), &[]);
    let expanded = expand_macros(probe.url, &target_macros(target, true));
    let mut url = match Url::parse(&expanded) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => url,
        Ok(_) => return unknown(format!("{expanded:?} is not an http or https URL")),
        Err(error) => return unknown(format!("invalid URL {expanded:?}: {error}")),
    };
    let method_text = if probe.method.is_empty() {
        "GET".to_owned()
    } else {
        probe.method.to_ascii_uppercase()
    };
    let mut method = match Method::from_bytes(method_text.as_bytes()) {
        Ok(method) => method,
        Err(_) => return unknown(format!("invalid HTTP method {:?}", probe.method)),
    };
    let regex = match probe.body_regex.map(compile_regex).transpose() {
        Ok(regex) => regex,
        Err(reason) => return unknown(reason),
    };
    let policy = if probe.verify_tls {
        CertificatePolicy::Enforce
    } else {
        CertificatePolicy::AcceptAny
    };
    let tls = match client_config(roots, policy, &[b"http/1.1"]) {
        Ok(tls) => tls,
        Err(reason) => return unknown(reason),
    };

    let within = time_left(deadline);
    let started = Instant::now();
    let mut long_output = Vec::new();
    let mut redirects = 0u32;
    let exchange = loop {
        let exchange = match request(&url, &method, &tls, roots, deadline, &within).await {
            Ok(exchange) => exchange,
            Err(reason) => {
                long_output.push(format!("{method} {url}"));
                let summary = format!("{url}: {reason}");
                return finish(LABEL, CheckState::Critical, summary, long_output, &[]);
            }
        };
        let follow = exchange.status.is_redirection() && exchange.location.is_some();
        if !follow || redirects >= probe.max_redirects {
            break exchange;
        }
        let location = exchange.location.as_deref().unwrap_or_default();
        let next = match url.join(location) {
            Ok(next) if matches!(next.scheme(), "http" | "https") && next.host().is_some() => next,
            _ => {
                let summary = format!(
                    "{url} redirects ({}) to {location:?}, which is not an http or https URL",
                    exchange.status.as_u16()
                );
                return finish(LABEL, CheckState::Critical, summary, long_output, &[]);
            }
        };
        long_output.push(format!("{} {url} -> {next}", exchange.status.as_u16()));
        // As browsers do: 303 always, 301 and 302 after a POST, turn into a GET.
        if exchange.status == StatusCode::SEE_OTHER && method != Method::HEAD
            || matches!(exchange.status.as_u16(), 301 | 302) && method == Method::POST
        {
            method = Method::GET;
        }
        url = next;
        redirects += 1;
    };
    let elapsed = started.elapsed();

    let perfdata = [
        PerfItem::new("time", Some(elapsed.as_secs_f64()), "s")
            .thresholds(probe.latency_ms, 1000.0)
            .min(0.0),
        PerfItem::new("size", Some(exchange.size as f64), "B").min(0.0),
    ];
    let mut state = perf::evaluate(as_ms(elapsed), probe.latency_ms);
    let mut problems = Vec::new();
    let accepted: &[(u16, u16)] = if probe.status.is_empty() {
        &[DEFAULT_STATUS]
    } else {
        probe.status
    };
    let code = exchange.status.as_u16();
    if !accepted
        .iter()
        .any(|&(low, high)| (low..=high).contains(&code))
    {
        state = worst(state, CheckState::Critical);
        let mut problem = format!("status {code} not in {}", describe_ranges(accepted));
        if exchange.status.is_redirection() && exchange.location.is_some() && redirects > 0 {
            problem.push_str(&format!(
                " (redirect limit {} reached)",
                probe.max_redirects
            ));
        }
        problems.push(problem);
    }
    if let Some(regex) = &regex
        && !regex.is_match(&exchange.body)
    {
        state = worst(state, CheckState::Critical);
        problems.push(format!("body does not match {:?}", regex.as_str()));
    }
    let mut summary = format!(
        "{:?} {code} {} - {} bytes in {}",
        exchange.version,
        exchange.reason,
        exchange.size,
        seconds_precise(elapsed)
    );
    if redirects > 0 {
        summary.push_str(&format!(
            " after {redirects} redirect{}",
            if redirects == 1 { "" } else { "s" }
        ));
    }
    for problem in problems {
        summary.push_str(" - ");
        summary.push_str(&problem);
    }
    if redirects > 0 {
        long_output.push(format!("final URL {url}"));
    }
    finish(LABEL, state, summary, long_output, &perfdata)
}

fn compile_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|error| format!("invalid body regex {pattern:?}: {error}"))
}

/// `200-299, 301`.
fn describe_ranges(ranges: &[(u16, u16)]) -> String {
    ranges
        .iter()
        .map(|&(low, high)| {
            if low == high {
                low.to_string()
            } else {
                format!("{low}-{high}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Seconds with milliseconds, as `check_http` prints its response time.
fn seconds_precise(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

/// One request on a fresh connection.
async fn request(
    url: &Url,
    method: &Method,
    tls: &Arc<ClientConfig>,
    roots: &TrustRoots,
    deadline: Instant,
    within: &str,
) -> Result<Exchange, String> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses = resolve(host, port).await?;
    let (stream, address, _) = connect_tcp(&addresses).await?;
    let mut host_header = host.to_owned();
    if let Some(port) = url.port() {
        host_header.push_str(&format!(":{port}"));
    }
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let request = Request::builder()
        .method(method.clone())
        .uri(if target.is_empty() { "/" } else { target })
        .header(HOST, host_header)
        .header(
            USER_AGENT,
            concat!("vigie-probe/", env!("CARGO_PKG_VERSION")),
        )
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|error| format!("cannot build the request: {error}"))?;
    if url.scheme() == "https" {
        let name = server_name(host)?;
        let connector = tokio_rustls::TlsConnector::from(tls.clone());
        let stream = connector.connect(name, stream).await.map_err(|error| {
            let reason = describe_handshake_error(&error, roots);
            format!("TLS handshake with {address} failed: {reason}")
        })?;
        exchange(stream, request, deadline, within).await
    } else {
        exchange(stream, request, deadline, within).await
    }
}

/// Sends `request` over `io` and reads the answer. The connection is driven here, beside the
/// exchange, rather than in a task of its own.
async fn exchange<S>(
    io: S,
    request: Request<Empty<Bytes>>,
    deadline: Instant,
    within: &str,
) -> Result<Exchange, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|error| format!("HTTP handshake failed: {error}"))?;
    let drive = async {
        // A connection error reaches the exchange through the request or the body; this
        // branch must never end the select first.
        let _ = connection.await;
        std::future::pending::<()>().await;
    };
    let talk = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("no answer: {error}"))?;
        let status = response.status();
        let version = response.version();
        let reason = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|reason| String::from_utf8_lossy(reason.as_bytes()).into_owned())
            .or_else(|| status.canonical_reason().map(str::to_owned))
            .unwrap_or_default();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let mut exchange = Exchange {
            status,
            version,
            reason,
            location,
            body: Vec::new(),
            size: 0,
        };
        if status.is_redirection() && exchange.location.is_some() {
            // Its body is of no interest; the connection is dropped with it.
            return Ok(exchange);
        }
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| format!("reading the body failed: {error}"))?;
            if let Some(data) = frame.data_ref() {
                exchange.size += data.len() as u64;
                let room = MAX_BODY_BYTES.saturating_sub(exchange.body.len());
                exchange
                    .body
                    .extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        Ok(exchange)
    };
    let timed = tokio::time::timeout_at(deadline, async {
        tokio::select! {
            result = talk => result,
            () = drive => Err("the connection ended".to_owned()),
        }
    });
    match timed.await {
        Ok(result) => result,
        Err(_) => Err(format!("no complete answer within {within}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges_read_as_written() {
        assert_eq!(describe_ranges(&[(200, 299), (301, 301)]), "200-299, 301");
    }

    #[test]
    fn a_bad_regex_is_refused_with_its_reason() {
        assert!(compile_regex("^ok$").is_ok());
        let error = compile_regex("(unclosed").unwrap_err();
        assert!(
            error.starts_with("invalid body regex \"(unclosed\""),
            "{error}"
        );
        // Beyond the size limit: refused, not compiled into a huge automaton.
        assert!(compile_regex("(a{1000}){1000}").is_err());
    }
}

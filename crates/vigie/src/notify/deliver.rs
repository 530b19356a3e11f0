//! The deliverer: one task that sends what the outbox holds. It wakes when a commit inserted
//! notifications (`Store::outbox_waker`) or when the next retry falls due, takes the due rows
//! (pending, or failing with their next attempt past), sends up to `concurrency` of them at
//! once, and records every attempt in the row: delivered, or failing with the next attempt
//! from `Backoff`. Nothing is ever dropped: a row stays failing, retried at the backoff's
//! maximum interval, until it goes through; a restart resumes from the rows themselves.
//!
//! Senders: SMTP through lettre (plain for a local relay, implicit TLS with `smtps://`,
//! STARTTLS with `?tls=starttls`), HTTP through reqwest; TLS is rustls with the ring provider
//! only, and each attempt has its own timeout. Both keep their connections for the next
//! message (lettre's pool: a connection idle for a minute is closed, one the relay dropped is
//! replaced).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use vigie_core::notify::Backoff;

use super::{Attempt, Notification, Transport};
use crate::store::Store;

/// Rows fetched per look at the outbox, besides those in flight.
const FETCH: i64 = 64;
/// The longest the deliverer sleeps without looking at the outbox.
const IDLE_MS: i64 = 60_000;

/// The SMTP relay e-mails go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// `smtp://host:port` (plain, for a local relay), `smtp://host:port?tls=starttls`, or
    /// `smtps://host:port` (implicit TLS).
    pub url: String,
    /// The sender, `Vigie <vigie@example.com>` or `vigie@example.com`.
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// How notifications are delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    /// `None`: every e-mail attempt fails with "no SMTP server configured" (and is kept).
    pub smtp: Option<SmtpConfig>,
    /// Vigie's address as recipients reach it, for the links in messages.
    pub public_url: Option<String>,
    pub http_timeout: Duration,
    pub smtp_timeout: Duration,
    pub backoff: Backoff,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            smtp: None,
            public_url: None,
            http_timeout: Duration::from_secs(5),
            smtp_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            concurrency: 16,
        }
    }
}

pub const NO_SMTP: &str = "no SMTP server configured (notify.smtp.url)";

/// Makes ring the process's default rustls provider, for the HTTP clients built without an
/// explicit TLS configuration (reqwest's `rustls-no-provider` needs one). Idempotent.
pub fn install_crypto_provider() {
    // An error means a provider is installed already: ring is the only one compiled in.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Checks an SMTP configuration: every problem, each naming the key at fault.
pub fn check_smtp(config: &SmtpConfig) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    if let Err(problem) = smtp_endpoint(&config.url) {
        problems.push(problem);
    }
    if let Err(error) = config.from.parse::<Mailbox>() {
        problems.push(format!(
            "notify.smtp.from: {:?} is not an address: {error}",
            config.from
        ));
    }
    if config.password.is_some() && config.username.is_none() {
        problems.push("notify.smtp.password: given without notify.smtp.username".to_owned());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SmtpSecurity {
    Plain,
    StartTls,
    Implicit,
}

struct SmtpEndpoint {
    host: String,
    port: u16,
    security: SmtpSecurity,
    username: Option<String>,
    password: Option<String>,
}

fn smtp_endpoint(text: &str) -> Result<SmtpEndpoint, String> {
    let url = url::Url::parse(text)
        .map_err(|error| format!("notify.smtp.url: {text:?} is not a URL: {error}"))?;
    let tls = url
        .query_pairs()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned());
    let security = match (url.scheme(), tls.as_deref()) {
        ("smtp", None | Some("none")) => SmtpSecurity::Plain,
        ("smtp", Some("starttls" | "required")) => SmtpSecurity::StartTls,
        ("smtps", None) => SmtpSecurity::Implicit,
        ("smtp" | "smtps", Some(other)) => {
            return Err(format!(
                "notify.smtp.url: tls={other:?} is not understood: use smtp://host:port (plain), smtp://host:port?tls=starttls or smtps://host:port"
            ));
        }
        (scheme, _) => {
            return Err(format!(
                "notify.smtp.url: scheme {scheme:?} is not supported: use smtp:// or smtps://"
            ));
        }
    };
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| format!("notify.smtp.url: {text:?} names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port().unwrap_or(match security {
        SmtpSecurity::Plain => 25,
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::Implicit => 465,
    });
    let decode = |s: &str| {
        url::form_urlencoded::parse(s.as_bytes())
            .map(|(k, _)| k.into_owned())
            .next()
            .unwrap_or_default()
    };
    let username = (!url.username().is_empty()).then(|| decode(url.username()));
    let password = url.password().map(decode);
    Ok(SmtpEndpoint {
        host,
        port,
        security,
        username,
        password,
    })
}

/// What sends: built once per deliverer.
struct Senders {
    http: Result<reqwest::Client, String>,
    smtp: Option<Result<(AsyncSmtpTransport<Tokio1Executor>, Mailbox), String>>,
    http_timeout: Duration,
    smtp_timeout: Duration,
}

impl Senders {
    async fn new(config: &DeliveryConfig) -> Senders {
        Senders {
            http: http_client().await,
            smtp: config
                .smtp
                .as_ref()
                .map(|smtp| smtp_transport(smtp, config.smtp_timeout)),
            http_timeout: config.http_timeout,
            smtp_timeout: config.smtp_timeout,
        }
    }

    /// One attempt at `notification`; never fails, the outcome is in the attempt.
    async fn send(&self, notification: &Notification) -> Attempt {
        let time_ms = crate::clock::now_ms();
        let started = Instant::now();
        let (ok, detail) = match &notification.transport {
            Transport::Email {
                to,
                subject,
                text,
                html,
            } => self.send_email(to, subject, text, html).await,
            Transport::Http {
                method,
                url,
                headers,
                content_type,
                body,
            } => {
                self.send_http(method, url, headers, content_type, body)
                    .await
            }
        };
        Attempt {
            time_ms,
            ok,
            detail,
            took_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        }
    }

    async fn send_email(
        &self,
        to: &[String],
        subject: &str,
        text: &str,
        html: &str,
    ) -> (bool, String) {
        let (transport, from) = match &self.smtp {
            None => return (false, NO_SMTP.to_owned()),
            Some(Err(problem)) => return (false, problem.clone()),
            Some(Ok(smtp)) => smtp,
        };
        let mut builder = Message::builder().from(from.clone());
        if to.is_empty() {
            return (false, "no recipient address".to_owned());
        }
        for address in to {
            match address.parse::<Mailbox>() {
                Ok(mailbox) => builder = builder.to(mailbox),
                Err(error) => {
                    return (
                        false,
                        format!("invalid recipient address {address:?}: {error}"),
                    );
                }
            }
        }
        let message = match builder
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(
                text.to_owned(),
                html.to_owned(),
            )) {
            Ok(message) => message,
            Err(error) => return (false, format!("cannot build the message: {error}")),
        };
        match tokio::time::timeout(self.smtp_timeout, transport.send(message)).await {
            Err(_) => (
                false,
                format!("timed out after {}", seconds(self.smtp_timeout)),
            ),
            Ok(Ok(response)) => (
                true,
                format!(
                    "{} {}",
                    response.code(),
                    response.first_line().unwrap_or_default()
                )
                .trim()
                .to_owned(),
            ),
            Ok(Err(error)) => (false, format!("SMTP: {}", error_chain(&error))),
        }
    }

    async fn send_http(
        &self,
        method: &str,
        url: &str,
        headers: &std::collections::BTreeMap<String, String>,
        content_type: &str,
        body: &str,
    ) -> (bool, String) {
        let client = match &self.http {
            Ok(client) => client,
            Err(problem) => return (false, problem.clone()),
        };
        let Ok(method) = reqwest::Method::from_bytes(method.trim().as_bytes()) else {
            return (false, format!("invalid HTTP method {method:?}"));
        };
        let parsed = match reqwest::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => parsed,
            Ok(parsed) => {
                return (
                    false,
                    format!(
                        "unsupported URL scheme {:?}: use http or https",
                        parsed.scheme()
                    ),
                );
            }
            Err(error) => return (false, format!("invalid URL {url:?}: {error}")),
        };
        let mut request = client.request(method, parsed);
        if !content_type.is_empty() {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        for (name, value) in headers {
            let name = match reqwest::header::HeaderName::from_bytes(name.as_bytes()) {
                Ok(name) => name,
                Err(_) => return (false, format!("invalid header name {name:?}")),
            };
            let value = match reqwest::header::HeaderValue::from_str(value) {
                Ok(value) => value,
                Err(_) => return (false, format!("invalid value for header {name}")),
            };
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request.body(body.to_owned());
        }
        let exchange = async {
            let mut response = request.send().await?;
            let status = response.status();
            // A little of the answer helps an operator see why a receiver refused.
            let mut excerpt = Vec::new();
            while excerpt.len() < 512 {
                match response.chunk().await? {
                    Some(chunk) => excerpt.extend_from_slice(&chunk),
                    None => break,
                }
            }
            Ok::<_, reqwest::Error>((status, excerpt))
        };
        match tokio::time::timeout(self.http_timeout, exchange).await {
            Err(_) => (
                false,
                format!("timed out after {}", seconds(self.http_timeout)),
            ),
            Ok(Err(error)) if error.is_connect() => {
                (false, format!("cannot connect: {}", root_cause(&error)))
            }
            // Without the URL: a chat webhook's carries its secret, and the log is shown.
            Ok(Err(error)) => (false, error_chain(&error.without_url())),
            Ok(Ok((status, excerpt))) => {
                let mut detail = format!("HTTP {}", status.as_u16());
                if let Some(reason) = status.canonical_reason() {
                    detail.push(' ');
                    detail.push_str(reason);
                }
                if !status.is_success() {
                    let text = String::from_utf8_lossy(&excerpt);
                    let text: String = text.trim().chars().take(200).collect();
                    if !text.is_empty() {
                        detail.push_str(": ");
                        detail.push_str(&text);
                    }
                }
                (status.is_success(), detail)
            }
        }
    }
}

/// An HTTP client on rustls with ring and the system's roots; redirects are not followed (a
/// webhook that moved is a failed attempt that says so).
async fn http_client() -> Result<reqwest::Client, String> {
    let roots = crate::probe::tls::TrustRoots::system().await;
    let tls = crate::probe::tls::client_config(
        &roots,
        crate::probe::tls::CertificatePolicy::Enforce,
        &[b"http/1.1"],
    )?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(rustls::ClientConfig::clone(&tls))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vigie/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {}", error_chain(&error)))
}

fn smtp_transport(
    config: &SmtpConfig,
    timeout: Duration,
) -> Result<(AsyncSmtpTransport<Tokio1Executor>, Mailbox), String> {
    let endpoint = smtp_endpoint(&config.url)?;
    let from = config.from.parse::<Mailbox>().map_err(|error| {
        format!(
            "notify.smtp.from: {:?} is not an address: {error}",
            config.from
        )
    })?;
    let tls = match endpoint.security {
        SmtpSecurity::Plain => Tls::None,
        SmtpSecurity::StartTls | SmtpSecurity::Implicit => {
            let parameters = TlsParameters::new(endpoint.host.clone())
                .map_err(|error| format!("cannot configure TLS for SMTP: {error}"))?;
            if endpoint.security == SmtpSecurity::Implicit {
                Tls::Wrapper(parameters)
            } else {
                Tls::Required(parameters)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(endpoint.host)
        .port(endpoint.port)
        .tls(tls)
        .timeout(Some(timeout));
    let username = config.username.clone().or(endpoint.username);
    let password = config.password.clone().or(endpoint.password);
    if let Some(username) = username {
        builder = builder.credentials(Credentials::new(username, password.unwrap_or_default()));
    }
    Ok((builder.build(), from))
}

/// `5s`, `1500ms`.
fn seconds(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut last = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        last = cause.to_string();
        source = cause.source();
    }
    last
}

/// Starts the deliverer on `store`'s outbox. It runs until the handle is aborted; what it was
/// sending at that moment stays due and is sent again by the next deliverer.
pub fn spawn(store: Arc<Store>, config: DeliveryConfig) -> JoinHandle<()> {
    spawn_until(store, config, None)
}

/// `spawn`, stopping when `stop` turns true: deliveries in flight finish and their attempts
/// are recorded (each is bounded by its timeout), so a clean shutdown sends nothing twice.
pub fn spawn_until(
    store: Arc<Store>,
    config: DeliveryConfig,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
) -> JoinHandle<()> {
    install_crypto_provider();
    tokio::spawn(run(store, config, stop))
}

/// Resolves when a stop is asked for; never when there is no stop signal (or its sender left).
async fn stop_requested(stop: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    match stop {
        Some(receiver) => {
            if receiver.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

async fn run(
    store: Arc<Store>,
    config: DeliveryConfig,
    mut stop: Option<tokio::sync::watch::Receiver<bool>>,
) {
    let senders = Arc::new(Senders::new(&config).await);
    if let Some(Err(problem)) = &senders.smtp {
        tracing::error!(problem = %problem, "e-mail notifications cannot be sent");
    }
    let waker = store.outbox_waker();
    let finished = Arc::new(Notify::new());
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    // Rows being sent, and rows whose attempt was recorded since the last look at the outbox
    // began: that look may have read them before the record, and must not send them again.
    let in_flight: Arc<Mutex<Flight>> = Arc::default();
    // Dropping the set (when this task is aborted) aborts the deliveries in flight.
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let now = crate::clock::now_ms();
        let flying = in_flight.lock().map_or(0, |mut flight| {
            flight.recorded.clear();
            flight.sending.len()
        });
        let due = match store
            .due_notifications(now, FETCH + i64::try_from(flying).unwrap_or(0))
            .await
        {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot read the outbox; trying again in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let fetched = due.len();
        let mut started = 0usize;
        for notification in due {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            {
                let Ok(mut flight) = in_flight.lock() else {
                    break;
                };
                if flight.recorded.contains(&notification.id)
                    || !flight.sending.insert(notification.id)
                {
                    continue;
                }
            }
            started += 1;
            let (store, senders, in_flight, finished) = (
                store.clone(),
                senders.clone(),
                in_flight.clone(),
                finished.clone(),
            );
            let backoff = config.backoff;
            tasks.spawn(async move {
                let attempt = senders.send(&notification).await;
                record(&store, &notification, attempt, &backoff).await;
                if let Ok(mut flight) = in_flight.lock() {
                    flight.sending.remove(&notification.id);
                    flight.recorded.insert(notification.id);
                }
                drop(permit);
                finished.notify_one();
            });
        }
        if started > 0 && i64::try_from(fetched).unwrap_or(0) >= FETCH {
            continue;
        }
        let next_due = store.next_notification_due_ms().await.unwrap_or(None);
        let now = crate::clock::now_ms();
        let wait_ms = match next_due {
            Some(at) if at > now => (at - now).min(IDLE_MS),
            // Due but in flight, or waiting for a permit: a finished delivery wakes us.
            Some(_) => 1_000,
            None => IDLE_MS,
        };
        let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0));
        tokio::select! {
            _ = waker.notified() => {}
            _ = finished.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop_requested(&mut stop) => break,
        }
    }
    // Stopping: let what is in flight finish and be recorded.
    while tasks.join_next().await.is_some() {}
}

/// What the deliverer's tasks share with its loop (see `run`).
#[derive(Default)]
struct Flight {
    sending: HashSet<i64>,
    recorded: HashSet<i64>,
}

/// Writes the attempt into the row; a store failure is retried a few times, after which the
/// row stays due and is sent again (at least once, never lost).
async fn record(store: &Store, notification: &Notification, attempt: Attempt, backoff: &Backoff) {
    if attempt.ok {
        tracing::info!(notification_id = notification.id, destination = %notification.destination, detail = %attempt.detail, "notification delivered");
    } else {
        tracing::warn!(notification_id = notification.id, destination = %notification.destination, detail = %attempt.detail, "notification attempt failed");
    }
    for _ in 0..5 {
        match store
            .record_attempt(notification.id, attempt.clone(), backoff)
            .await
        {
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(notification_id = notification.id, error = %format!("{error:#}"), "cannot record a delivery attempt");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

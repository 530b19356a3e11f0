//! Notification delivery, the edge that sends what the rest of Vigie decided to send.
//!
//! The responder builds a `Request` (what happened, to whom, why) and `compose` renders it,
//! once, into a `Notification`: an outbox row holding the exact bytes to send (e-mail subject,
//! text and HTML, or an HTTP method, URL, headers and body). The row is committed in the same
//! transaction as the escalation state that caused it (`WriteBatch::notifications`), so a page
//! is neither lost nor sent twice by a crash between deciding and recording. `deliver` then
//! sends due rows, records every attempt, and retries failures with `Backoff`.
//!
//! Invariants: a notification is never dropped — a failed attempt leaves it `failing` with its
//! next attempt scheduled, and the delivery log shows it; a retry sends the same bytes as the
//! first attempt, because rendering happened once at `compose`.

pub mod deliver;
pub mod render;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vigie_core::notify::payload::{self, Group};
use vigie_core::notify::{AlertStatus, Backoff, NotifiedAlert, Reason};

pub use deliver::{DeliveryConfig, SmtpConfig, install_crypto_provider, spawn};

/// Attempts kept in a notification's `history`; older ones are dropped (the count stays in
/// `attempts`).
pub const HISTORY_LIMIT: usize = 20;

/// Why a message goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Triggered,
    Escalated,
    Reescalated,
    Acknowledged,
    Resolved,
    CrisisOpened,
    BeaconOn,
    BeaconOff,
    /// Several messages to one destination folded into one (a storm, over the rate limit).
    Digest,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Triggered => "triggered",
            Kind::Escalated => "escalated",
            Kind::Reescalated => "reescalated",
            Kind::Acknowledged => "acknowledged",
            Kind::Resolved => "resolved",
            Kind::CrisisOpened => "crisis_opened",
            Kind::BeaconOn => "beacon_on",
            Kind::BeaconOff => "beacon_off",
            Kind::Digest => "digest",
        }
    }
}

/// The body a webhook receiver speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpFormat {
    Generic,
    Alertmanager,
    Slack,
    Mattermost,
    Teams,
    Beacon,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    /// A person, a team mailbox or an e-mail channel.
    Email { to: Vec<String>, language: String },
    /// A webhook or a beacon. For `Beacon`, `method` and `body` are sent verbatim (body None =
    /// empty).
    Http {
        channel: String,
        format: HttpFormat,
        url: String,
        method: String,
        headers: BTreeMap<String, String>,
        body: Option<String>,
    },
}

/// What the message is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub client: String,
    pub client_name: String,
    pub incident_id: Option<i64>,
    pub crisis_id: Option<i64>,
    pub title: String,
    /// `P1`…`P5`.
    pub priority: Option<String>,
    /// `open`, `acknowledged`, `resolved`…
    pub status: String,
    /// Why this message: "step 2 of policy systems: not acknowledged after 5m".
    pub reason: String,
    /// "team l2-systems", "person thomas-petit", "channel ops-webhook".
    pub recipient: String,
    /// A link to the incident in Vigie.
    pub url: String,
    pub assets: Vec<String>,
    pub alerts: Vec<NotifiedAlert>,
    pub group_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub kind: Kind,
    pub destination: Destination,
    pub context: Context,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failing,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failing => "failing",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failing" => Some(DeliveryStatus::Failing),
            _ => None,
        }
    }
}

/// The rendered message: exactly what every attempt sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Transport {
    Email {
        to: Vec<String>,
        subject: String,
        text: String,
        html: String,
    },
    Http {
        method: String,
        url: String,
        headers: BTreeMap<String, String>,
        /// Empty when no `Content-Type` is sent.
        content_type: String,
        body: String,
    },
}

/// One delivery attempt, as the log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub time_ms: i64,
    pub ok: bool,
    /// "250 OK", "HTTP 500", "timed out after 5s".
    pub detail: String,
    pub took_ms: i64,
}

/// An outbox row and its delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: i64,
    pub client: String,
    pub incident_id: Option<i64>,
    pub crisis_id: Option<i64>,
    pub kind: Kind,
    pub recipient: String,
    /// `email:a@b,c@d` or `webhook:ops-webhook`, for the log.
    pub destination: String,
    pub transport: Transport,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// When the next attempt is due; `None` once delivered.
    pub next_attempt_ms: Option<i64>,
    pub last_error: Option<String>,
    /// The last `HISTORY_LIMIT` attempts, oldest first.
    pub history: Vec<Attempt>,
    pub created_ms: i64,
    pub delivered_ms: Option<i64>,
}

impl Notification {
    /// Records an attempt: delivered, or failing with the next attempt from `backoff` (never
    /// given up).
    pub fn record(&mut self, attempt: Attempt, backoff: &Backoff) {
        self.attempts = self.attempts.saturating_add(1);
        let finished_ms = attempt.time_ms.saturating_add(attempt.took_ms.max(0));
        if attempt.ok {
            self.status = DeliveryStatus::Delivered;
            self.delivered_ms = Some(finished_ms);
            self.next_attempt_ms = None;
            self.last_error = None;
        } else {
            self.status = DeliveryStatus::Failing;
            self.next_attempt_ms = Some(backoff.retry_at(self.attempts, finished_ms));
            self.last_error = Some(attempt.detail.clone());
        }
        self.history.push(attempt);
        if self.history.len() > HISTORY_LIMIT {
            let extra = self.history.len() - HISTORY_LIMIT;
            self.history.drain(..extra);
        }
    }
}

/// Renders a request into an outbox row (status pending, due now). Rendering happens once, so
/// a retry sends the same bytes.
pub fn compose(request: &Request, id: i64, now_ms: i64) -> Notification {
    let context = &request.context;
    let (destination, transport) = match &request.destination {
        Destination::Email { to, language } => {
            let email = render::email(request.kind, context, language);
            (
                format!("email:{}", to.join(",")),
                Transport::Email {
                    to: to.clone(),
                    subject: email.subject,
                    text: email.text,
                    html: email.html,
                },
            )
        }
        Destination::Http {
            channel,
            format,
            url,
            method,
            headers,
            body,
        } => {
            let prefix = match format {
                HttpFormat::Beacon => "beacon",
                _ => "webhook",
            };
            (
                format!("{prefix}:{channel}"),
                http_transport(
                    request.kind,
                    context,
                    channel,
                    *format,
                    url,
                    method,
                    headers,
                    body,
                    now_ms,
                ),
            )
        }
    };
    Notification {
        id,
        client: context.client.clone(),
        incident_id: context.incident_id,
        crisis_id: context.crisis_id,
        kind: request.kind,
        recipient: context.recipient.clone(),
        destination,
        transport,
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_ms: Some(now_ms),
        last_error: None,
        history: Vec::new(),
        created_ms: now_ms,
        delivered_ms: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn http_transport(
    kind: Kind,
    context: &Context,
    channel: &str,
    format: HttpFormat,
    url: &str,
    method: &str,
    headers: &BTreeMap<String, String>,
    body: &Option<String>,
    now_ms: i64,
) -> Transport {
    if format == HttpFormat::Beacon {
        let content_type = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        return Transport::Http {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: headers.clone(),
            content_type,
            body: body.clone().unwrap_or_default(),
        };
    }
    let alerts = group_alerts(kind, context, now_ms);
    let mut labels = BTreeMap::new();
    labels.insert("client".to_owned(), context.client.clone());
    if let Some(id) = context.incident_id {
        labels.insert("incident".to_owned(), id.to_string());
    }
    if let Some(id) = context.crisis_id {
        labels.insert("crisis".to_owned(), id.to_string());
    }
    let external_url = origin(&context.url);
    let group = Group {
        receiver: channel,
        key: &context.group_key,
        labels: &labels,
        alerts: &alerts,
        reason: reason(kind),
        external_url: &external_url,
    };
    let subject = render::subject(kind, context, "en");
    let body = match format {
        HttpFormat::Alertmanager => payload::alertmanager_v4(&group),
        HttpFormat::Slack | HttpFormat::Mattermost => {
            let mut body = payload::slack(&group);
            body["text"] = Value::String(format!("{subject} {}", context.url));
            body
        }
        HttpFormat::Teams => {
            let mut body = payload::teams(&group);
            body["title"] = Value::String(subject.clone());
            body["summary"] = Value::String(subject.clone());
            body
        }
        HttpFormat::Generic | HttpFormat::Beacon => {
            let mut body = payload::generic(&group);
            let extra = json!({
                "kind": kind,
                "client": context.client,
                "client_name": context.client_name,
                "incident_id": context.incident_id,
                "crisis_id": context.crisis_id,
                "title": context.title,
                "priority": context.priority,
                "incident_status": context.status,
                "notification_reason": context.reason,
                "recipient": context.recipient,
                "url": context.url,
                "assets": context.assets,
                "subject": subject,
            });
            if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
                body.extend(extra);
            }
            body
        }
    };
    Transport::Http {
        method: if method.trim().is_empty() {
            "POST".to_owned()
        } else {
            method.to_owned()
        },
        url: url.to_owned(),
        headers: headers.clone(),
        content_type: "application/json".to_owned(),
        body: body.to_string(),
    }
}

/// The alerts a webhook carries: the context's, all resolved for `Resolved`; a notification
/// without alerts (a crisis, a manual page) carries one made of the context, since receivers
/// such as Alertmanager consumers expect at least one.
fn group_alerts(kind: Kind, context: &Context, now_ms: i64) -> Vec<NotifiedAlert> {
    let mut alerts = context.alerts.clone();
    if alerts.is_empty() {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_owned(), context.title.clone());
        labels.insert("client".to_owned(), context.client.clone());
        if let Some(priority) = &context.priority {
            labels.insert("priority".to_owned(), priority.clone());
        }
        let mut annotations = BTreeMap::new();
        annotations.insert("summary".to_owned(), context.title.clone());
        annotations.insert("description".to_owned(), context.reason.clone());
        alerts.push(NotifiedAlert {
            fingerprint: fingerprint(&context.group_key),
            status: AlertStatus::Firing,
            labels,
            annotations,
            starts_at_ms: now_ms,
            ends_at_ms: None,
            url: context.url.clone(),
        });
    }
    if kind == Kind::Resolved {
        for alert in &mut alerts {
            alert.status = AlertStatus::Resolved;
            alert.ends_at_ms.get_or_insert(now_ms);
        }
    }
    alerts
}

fn reason(kind: Kind) -> Reason {
    match kind {
        Kind::Triggered | Kind::CrisisOpened | Kind::BeaconOn => Reason::FirstNotification,
        Kind::Escalated | Kind::Reescalated | Kind::Acknowledged | Kind::Digest => {
            Reason::RepeatIntervalElapsed
        }
        Kind::Resolved | Kind::BeaconOff => Reason::AllAlertsResolved,
    }
}

/// A stable 16-hex-digit fingerprint (FNV-1a), as Alertmanager writes them.
fn fingerprint(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// `https://vigie.example:8443` of `https://vigie.example:8443/incidents/42`: Alertmanager's
/// `externalURL`.
fn origin(link: &str) -> String {
    match url::Url::parse(link) {
        Ok(parsed) if parsed.has_host() => parsed.origin().ascii_serialization(),
        _ => link.to_owned(),
    }
}

#[cfg(test)]
mod tests;

//! Row ⇄ record conversions for the store. Records that the API serves whole (incidents,
//! alerts, timeline entries) are kept as their JSON body beside the columns used to filter;
//! the body is the truth and the columns are indexes of it.

use anyhow::{Context, Result, anyhow};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;
use vigie_core::event::{Event, Severity, StoredEvent};
use vigie_core::incident::model::AlertStatus;

use super::EstateObject;

/// One entry of the change feed: what the live stream carries and replays.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub seq: i64,
    pub client: String,
    pub time_ms: i64,
    /// `incident` or `alert`.
    pub topic: String,
    /// The record as JSON text: written to the store and to the stream as it is, so that the
    /// writer serializes each record once.
    pub body: String,
}

/// A record on its way to the store with its JSON body, serialized once: the same text goes
/// into its row and into its change-feed entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Serialized<T> {
    pub record: T,
    pub body: String,
}

impl<T: serde::Serialize> Serialized<T> {
    pub fn new(record: T) -> Serialized<T> {
        let body =
            serde_json::to_string(&record).expect("invariant: domain records serialise to JSON");
        Serialized { record, body }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: String,
    pub client: Option<String>,
    pub hash: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

pub fn alert_status_str(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
}

/// The parts of an event without a column of their own, as one JSON object (or NULL).
pub fn event_extra(event: &Event) -> Option<String> {
    #[derive(serde::Serialize)]
    struct Extra<'a> {
        #[serde(skip_serializing_if = "Map::is_empty")]
        fields: &'a Map<String, Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        raw: Option<&'a str>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        unparsed: bool,
    }
    if event.fields.is_empty() && event.raw.is_none() && !event.unparsed {
        return None;
    }
    let extra = Extra {
        fields: &event.fields,
        raw: event.raw.as_deref(),
        unparsed: event.unparsed,
    };
    Some(serde_json::to_string(&extra).expect("invariant: JSON values serialise"))
}

pub fn stored_event(row: &AnyRow) -> Result<StoredEvent> {
    let extra: Option<String> = row.try_get("extra")?;
    let mut extra: Map<String, Value> = match extra {
        Some(text) => serde_json::from_str(&text).context("corrupt event extra")?,
        None => Map::new(),
    };
    let severity: i64 = row.try_get("severity")?;
    Ok(StoredEvent {
        id: row.try_get("id")?,
        received_ms: row.try_get("received_ms")?,
        event: Event {
            time_ms: row.try_get("time_ms")?,
            client: row.try_get("client_id")?,
            asset: row.try_get("asset")?,
            source: row.try_get("source")?,
            kind: row.try_get("kind")?,
            severity: Severity::from_rank(severity)
                .ok_or_else(|| anyhow!("corrupt severity {severity}"))?,
            message: row.try_get("message")?,
            fields: match extra.remove("fields") {
                Some(Value::Object(fields)) => fields,
                _ => Map::new(),
            },
            raw: match extra.remove("raw") {
                Some(Value::String(raw)) => Some(raw),
                _ => None,
            },
            unparsed: extra.remove("unparsed") == Some(Value::Bool(true)),
        },
    })
}

pub fn from_body<T: DeserializeOwned>(row: &AnyRow) -> Result<T> {
    let body: String = row.try_get("body")?;
    serde_json::from_str(&body).context("corrupt stored record")
}

pub fn change(row: &AnyRow) -> Result<Change> {
    let body: String = row.try_get("body")?;
    Ok(Change {
        seq: row.try_get("seq")?,
        client: row.try_get("client_id")?,
        time_ms: row.try_get("time_ms")?,
        topic: row.try_get("topic")?,
        body,
    })
}

pub fn token(row: &AnyRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        client: row.try_get("client_id")?,
        hash: row.try_get("hash")?,
        created_ms: row.try_get("created_ms")?,
        revoked_ms: row.try_get("revoked_ms")?,
    })
}

pub fn estate_object(row: &AnyRow) -> Result<EstateObject> {
    let body: String = row.try_get("body")?;
    Ok(EstateObject {
        kind: row.try_get("kind")?,
        client_id: row.try_get("client_id")?,
        object_id: row.try_get("object_id")?,
        body: serde_json::from_str(&body).context("corrupt estate object")?,
    })
}

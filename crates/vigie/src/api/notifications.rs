//! The delivery log over the API: every notification Vigie decided to send, what it sends and
//! each attempt, read from the store through the caller's `Scope` (a client's token sees its
//! own client's rows only; another client's row answers 404, as an absent one). Operators can
//! make an undelivered notification due now.
//!
//! Secrets a webhook carries in its headers (authorisation, tokens, keys) or in its URL (a
//! chat webhook's path, a query's token) are never shown: only the URL's scheme, host and port.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::incidents::query_error;
use super::{ApiError, AppState, page_limit};
use crate::auth::{Caller, Role};
use crate::notify::{DeliveryStatus, Notification, Transport};
use crate::store::NotificationFilter;

const OPERATORS: &[Role] = &[Role::Admin, Role::Operator];

/// Header names whose values are secrets.
fn secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "authorization",
        "token",
        "key",
        "secret",
        "cookie",
        "signature",
        "password",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// A webhook URL as the API shows it: scheme, host and port; a path or query becomes `/***`.
/// Chat webhooks (Slack, Mattermost, Teams) carry their secret in the path, others often in
/// the query; the channel's id names the destination.
pub fn shown_url(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return "***".to_owned();
    };
    let mut shown = format!(
        "{}://{}",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default()
    );
    if let Some(port) = parsed.port() {
        shown.push_str(&format!(":{port}"));
    }
    if parsed.path() != "/" || parsed.query().is_some() {
        shown.push_str("/***");
    }
    shown
}

/// Masks, in place, the secret header values of a header map.
fn mask_headers<'a>(headers: impl Iterator<Item = (&'a String, &'a mut String)>) {
    for (name, value) in headers {
        if secret_header(name) {
            *value = "***".to_owned();
        }
    }
}

/// A notification as the API shows it: the row, with secret header values and the webhook
/// URL's path and query masked.
pub fn notification_view(notification: &Notification) -> Value {
    let mut shown = notification.clone();
    if let Transport::Http { headers, url, .. } = &mut shown.transport {
        mask_headers(headers.iter_mut());
        *url = shown_url(url);
    }
    serde_json::to_value(&shown).unwrap_or(Value::Null)
}

/// A client's definition as the API shows it: its channels' secret headers and URLs masked
/// as in the delivery log.
pub fn client_view(client: &vigie_core::estate::Client) -> Value {
    let mut shown = client.clone();
    for channel in &mut shown.channels {
        mask_headers(channel.headers.iter_mut());
        if let Some(url) = &mut channel.url {
            *url = shown_url(url);
        }
        for call in [&mut channel.on, &mut channel.off].into_iter().flatten() {
            if let Some(url) = &mut call.url {
                *url = shown_url(url);
            }
        }
    }
    serde_json::to_value(&shown).unwrap_or(Value::Null)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    client: Option<String>,
    /// `pending`, `delivered` or `failing`.
    status: Option<String>,
    incident: Option<i64>,
    /// Only notifications newer than this id.
    after: Option<i64>,
    /// Only notifications older than this id (the previous page's `next_before`).
    before: Option<i64>,
    limit: Option<i64>,
}

pub async fn list_notifications(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<NotificationQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let status = match query.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "parameter `status`: unknown value {text:?}: expected pending, delivered or failing"
            ))
        })?),
    };
    let filter = NotificationFilter {
        status,
        incident_id: query.incident,
        after_id: query.after,
        before_id: query.before,
        limit: page_limit(query.limit)?,
    };
    let scope = caller.scope().narrow(query.client.as_deref());
    let notifications = state.store.list_notifications(&scope, &filter).await?;
    let next = (notifications.len() as i64 == filter.limit)
        .then(|| notifications.last().map(|n| n.id))
        .flatten();
    let notifications: Vec<Value> = notifications.iter().map(notification_view).collect();
    Ok(Json(
        json!({"notifications": notifications, "next_before": next}),
    ))
}

pub async fn get_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let notification = state
        .store
        .get_notification(&caller.scope(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no notification {id}")))?;
    Ok(Json(notification_view(&notification)))
}

pub async fn retry_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    caller.require(OPERATORS, "retry a notification")?;
    let notification = state
        .store
        .retry_notification(&caller.scope(), id, crate::clock::now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no notification {id}")))?;
    if notification.status == DeliveryStatus::Delivered {
        return Err(ApiError::conflict(format!(
            "notification {id} is already delivered"
        )));
    }
    Ok(Json(notification_view(&notification)))
}

#[cfg(test)]
mod tests {
    use super::shown_url;

    #[test]
    fn a_webhook_url_shows_its_scheme_host_and_port_only() {
        assert_eq!(
            shown_url("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/***"
        );
        assert_eq!(shown_url("http://127.0.0.1:9095/"), "http://127.0.0.1:9095");
        assert_eq!(
            shown_url("http://user:password@relay.example:8080/?token=x"),
            "http://relay.example:8080/***"
        );
        assert_eq!(shown_url("not a url"), "***");
    }
}

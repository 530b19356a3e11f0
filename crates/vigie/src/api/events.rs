//! Reading stored events: newest first, filtered and paginated by id.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use vigie_core::event::{Severity, parse_rfc3339_ms};

use super::incidents::query_error;
use super::{ApiError, AppState, page_limit};
use crate::auth::{Caller, Role};
use crate::store::EventFilter;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    client: Option<String>,
    asset: Option<String>,
    /// Minimum severity: `error` returns error, critical, alert and emergency.
    severity: Option<String>,
    source: Option<String>,
    kind: Option<String>,
    /// RFC 3339 bounds on the event's time: `since` inclusive, `until` exclusive.
    since: Option<String>,
    until: Option<String>,
    /// Substring of the message.
    q: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

fn parse_time(field: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    text.map(|t| {
        parse_rfc3339_ms(t).ok_or_else(|| {
            ApiError::bad_request(format!(
                "parameter `{field}`: {t:?} is not an RFC 3339 timestamp"
            ))
        })
    })
    .transpose()
}

fn readers() -> &'static [Role] {
    &[Role::Admin, Role::Operator, Role::Client]
}

pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(readers(), "read events")?;
    let Query(query) = query.map_err(query_error)?;
    let min_severity = query
        .severity
        .as_deref()
        .map(|s| {
            Severity::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!("parameter `severity`: unknown severity {s:?}"))
            })
        })
        .transpose()?;
    let filter = EventFilter {
        asset: query.asset,
        min_severity,
        source: query.source,
        kind: query.kind,
        since_ms: parse_time("since", query.since.as_deref())?,
        until_ms: parse_time("until", query.until.as_deref())?,
        text: query.q,
        before_id: query.before,
        limit: page_limit(query.limit)?,
    };
    let scope = caller.scope().narrow(query.client.as_deref());
    let events = state.store.list_events(&scope, &filter).await?;
    let next = (events.len() as i64 == filter.limit)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(Json(json!({"events": events, "next_before": next})))
}

pub async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    caller.require(readers(), "read events")?;
    let filter = EventFilter {
        before_id: Some(id.saturating_add(1)),
        limit: 1,
        ..EventFilter::default()
    };
    let event = state
        .store
        .list_events(&caller.scope(), &filter)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no event {id}")))?;
    Ok(Json(json!(event)))
}

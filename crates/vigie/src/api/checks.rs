//! Checks over the API: their state as the supervision runtime last wrote it (read from the
//! store through the caller's `Scope`, like every client record), and the operator's
//! acknowledgements and downtimes, which go to the supervision task so that they are ordered
//! with the results. A check of another client answers 404, exactly as an absent one.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use vigie_core::check::CheckId;

use super::incidents::{json_error, query_error};
use super::{ApiError, AppState, page_limit};
use crate::auth::{Caller, Role};
use crate::store::{CheckFilter, CheckRecord};
use crate::supervision::{CheckRequest, SupervisionError};

const OPERATORS: &[Role] = &[Role::Admin, Role::Operator];

/// A check as the API shows it: its identity, then its status flattened.
fn check_view(record: &CheckRecord) -> Value {
    let status = &record.status;
    json!({
        "id": record.id,
        "client": record.client,
        "asset": record.asset,
        "check": record.check,
        "kind": record.kind,
        "probe": record.probe,
        "state": status.state,
        "state_type": status.state_type,
        "attempt": status.attempt,
        "max_check_attempts": status.config.max_check_attempts,
        "last_hard_state": status.last_hard_state,
        "output": status.output,
        "long_output": status.long_output,
        "perfdata": status.perfdata,
        "last_check_ms": status.last_check_ms,
        "next_check_ms": status.next_check_ms,
        "last_state_change_ms": status.last_state_change_ms,
        "last_hard_state_change_ms": status.last_hard_state_change_ms,
        "check_interval_ms": status.config.check_interval_ms,
        "retry_interval_ms": status.config.retry_interval_ms,
        "flapping": status.flapping,
        "flapping_percent": status.flapping_percent,
        "acknowledgement": status.acknowledgement,
        "in_downtime": status.in_downtime(),
        "downtimes": status.downtimes,
        "updated_ms": record.updated_ms,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    client: Option<String>,
    asset: Option<String>,
    /// Comma-separated states, e.g. `CRITICAL,DOWN`.
    state: Option<String>,
    /// The last id of the previous page.
    after: Option<String>,
    limit: Option<i64>,
}

const STATES: [&str; 7] = [
    "OK",
    "WARNING",
    "CRITICAL",
    "UNKNOWN",
    "UP",
    "DOWN",
    "UNREACHABLE",
];

pub async fn list_checks(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<CheckQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let mut states = Vec::new();
    for item in query
        .state
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let upper = item.to_ascii_uppercase();
        if !STATES.contains(&upper.as_str()) {
            return Err(ApiError::bad_request(format!(
                "parameter `state`: unknown value {item:?}: expected one of {}",
                STATES.join(", ")
            )));
        }
        states.push(upper);
    }
    let filter = CheckFilter {
        asset: query.asset,
        states,
        after_id: query.after,
        limit: page_limit(query.limit)?,
    };
    let scope = caller.scope().narrow(query.client.as_deref());
    let checks = state.store.list_checks(&scope, &filter).await?;
    let next = (checks.len() as i64 == filter.limit)
        .then(|| checks.last().map(|c| c.id.clone()))
        .flatten();
    let checks: Vec<Value> = checks.iter().map(check_view).collect();
    Ok(Json(json!({"checks": checks, "next_after": next})))
}

/// The check of that id if the caller may see it; else 404, as if it did not exist.
async fn visible_check(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<CheckRecord, ApiError> {
    let not_found = || ApiError::not_found(format!("no check {id:?}"));
    if id.parse::<CheckId>().is_err() {
        return Err(not_found());
    }
    state
        .store
        .get_check(&caller.scope(), id)
        .await?
        .ok_or_else(not_found)
}

pub async fn get_check(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = visible_check(&state, &caller, &id).await?;
    Ok(Json(check_view(&record)))
}

async fn run_request(
    state: &AppState,
    caller: &Caller,
    id: &str,
    request: CheckRequest,
) -> Result<Json<Value>, ApiError> {
    let record = visible_check(state, caller, id).await?;
    let check_id: CheckId = record
        .id
        .parse()
        .map_err(|_| ApiError::internal(format!("stored check id {:?} is malformed", record.id)))?;
    match state.supervision.request(check_id, request).await {
        Ok(record) => Ok(Json(check_view(&record))),
        Err(SupervisionError::UnknownCheck(_)) => {
            Err(ApiError::not_found(format!("no check {id:?}")))
        }
        Err(SupervisionError::Rejected(reason)) => {
            Err(ApiError::conflict(format!("check {id}: {reason}")))
        }
        Err(error) => Err(ApiError::internal(error.to_string())),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeBody {
    #[serde(default)]
    comment: String,
    /// Kept through other problem states until the check recovers (default false: cleared
    /// by any state change).
    #[serde(default)]
    sticky: bool,
    expires_ms: Option<i64>,
}

pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<AcknowledgeBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(OPERATORS, "acknowledge checks")?;
    let Json(body) = body.map_err(json_error)?;
    let request = CheckRequest::Acknowledge {
        author: caller.actor(),
        comment: body.comment,
        sticky: body.sticky,
        expires_ms: body.expires_ms,
    };
    run_request(&state, &caller, &id, request).await
}

/// Clears a check's acknowledgement: its problem pages again at its next notification.
pub async fn remove_acknowledgement(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(OPERATORS, "remove acknowledgements")?;
    run_request(&state, &caller, &id, CheckRequest::RemoveAcknowledgement).await
}

/// Removes a downtime of a check, ending it at once when active.
pub async fn remove_downtime(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, downtime)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(OPERATORS, "remove downtimes")?;
    let downtime: u64 = downtime.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "`{downtime}` is not a downtime id: expected the `id` of one of the check's `downtimes`"
        ))
    })?;
    run_request(
        &state,
        &caller,
        &id,
        CheckRequest::RemoveDowntime { id: downtime },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DowntimeBody {
    #[serde(default)]
    comment: String,
    /// Default: now.
    start_ms: Option<i64>,
    end_ms: i64,
    /// Makes the downtime flexible: it lasts this long from the first problem within
    /// `[start_ms, end_ms)`. Absent: fixed over the window.
    duration_ms: Option<i64>,
    /// On a host check: the same downtime for the hosts behind it.
    #[serde(default)]
    children: bool,
    /// On a host check: the same downtime for its services (and its children's).
    #[serde(default)]
    services: bool,
}

pub async fn schedule_downtime(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<DowntimeBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(OPERATORS, "schedule downtimes")?;
    let Json(body) = body.map_err(json_error)?;
    let request = CheckRequest::ScheduleDowntime {
        author: caller.actor(),
        comment: body.comment,
        start_ms: body.start_ms.unwrap_or_else(crate::clock::now_ms),
        end_ms: body.end_ms,
        duration_ms: body.duration_ms,
        children: body.children,
        services: body.services,
    };
    let check = run_request(&state, &caller, &id, request).await?;
    Ok((StatusCode::CREATED, check))
}

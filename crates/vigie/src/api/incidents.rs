//! Incidents, their alerts and timeline: listing with filters, and the operator's actions
//! (acknowledge, resolve, close, comment, reassign), which go through the pipeline so that
//! they are ordered with the signals and committed before the answer.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use vigie_core::incident::model::{AlertStatus, IncidentStatus, Priority};
use vigie_core::incident::{CommandError, IncidentCommand};

use super::{ApiError, AppState, page_limit};
use crate::auth::{Caller, Role};
use crate::pipeline::PipelineError;
use crate::store::{AlertFilter, IncidentFilter};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    client: Option<String>,
    /// Comma-separated statuses, e.g. `new,acknowledged`.
    status: Option<String>,
    /// Comma-separated priorities, e.g. `P1,P2`.
    priority: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

fn parse_list<T>(
    field: &str,
    text: Option<&str>,
    parse: fn(&str) -> Option<T>,
) -> Result<Vec<T>, ApiError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            parse(item).ok_or_else(|| {
                ApiError::bad_request(format!("parameter `{field}`: unknown value {item:?}"))
            })
        })
        .collect()
}

pub fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(rejection.body_text())
}

pub fn json_error(rejection: JsonRejection) -> ApiError {
    ApiError::bad_request(rejection.body_text())
}

pub async fn list_incidents(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<IncidentQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let filter = IncidentFilter {
        statuses: parse_list("status", query.status.as_deref(), IncidentStatus::parse)?,
        priorities: parse_list("priority", query.priority.as_deref(), Priority::parse)?,
        before_id: query.before,
        limit: page_limit(query.limit)?,
    };
    let scope = caller.scope().narrow(query.client.as_deref());
    let incidents = state.store.list_incidents(&scope, &filter).await?;
    let next = (incidents.len() as i64 == filter.limit)
        .then(|| incidents.last().map(|i| i.id))
        .flatten();
    Ok(Json(json!({"incidents": incidents, "next_before": next})))
}

pub async fn get_incident(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let incident = state
        .store
        .get_incident(&caller.scope(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    Ok(Json(json!(incident)))
}

pub async fn get_timeline(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.scope();
    if state.store.get_incident(&scope, id).await?.is_none() {
        return Err(ApiError::not_found(format!("no incident {id}")));
    }
    let timeline = state.store.timeline(&scope, id).await?;
    Ok(Json(json!({"incident_id": id, "timeline": timeline})))
}

pub async fn get_incident_alerts(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.scope();
    if state.store.get_incident(&scope, id).await?.is_none() {
        return Err(ApiError::not_found(format!("no incident {id}")));
    }
    let filter = AlertFilter {
        incident_id: Some(id),
        limit: 1000,
        ..AlertFilter::default()
    };
    let alerts = state.store.list_alerts(&scope, &filter).await?;
    Ok(Json(json!({"incident_id": id, "alerts": alerts})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    client: Option<String>,
    status: Option<String>,
    incident: Option<i64>,
    before: Option<i64>,
    limit: Option<i64>,
}

pub async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let status = match query.status.as_deref() {
        None => None,
        Some("firing") => Some(AlertStatus::Firing),
        Some("resolved") => Some(AlertStatus::Resolved),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "parameter `status`: {other:?} is not firing or resolved"
            )));
        }
    };
    let filter = AlertFilter {
        status,
        incident_id: query.incident,
        before_id: query.before,
        limit: page_limit(query.limit)?,
    };
    let scope = caller.scope().narrow(query.client.as_deref());
    let alerts = state.store.list_alerts(&scope, &filter).await?;
    let next = (alerts.len() as i64 == filter.limit)
        .then(|| alerts.last().map(|a| a.id))
        .flatten();
    Ok(Json(json!({"alerts": alerts, "next_before": next})))
}

pub async fn get_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let alert = state
        .store
        .get_alert(&caller.scope(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    Ok(Json(json!(alert)))
}

/// Runs an incident command for a caller: the incident must be visible to them (else 404)
/// and still open (else 409); answers with the incident as committed.
pub(super) async fn run_command(
    state: &AppState,
    caller: &Caller,
    id: i64,
    command: IncidentCommand,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.scope();
    let incident = state
        .store
        .get_incident(&scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    if incident.status == IncidentStatus::Closed {
        return Err(ApiError::conflict(format!("incident {id} is closed")));
    }
    match state.pipeline.command(command).await {
        Ok(_) => {}
        Err(PipelineError::Command(CommandError::UnknownIncident(_))) => {
            return Err(ApiError::conflict(format!("incident {id} is closed")));
        }
        Err(PipelineError::Command(CommandError::EmptyComment)) => {
            return Err(ApiError::bad_request(
                "field `text`: a comment cannot be empty",
            ));
        }
        Err(PipelineError::Command(error)) => return Err(ApiError::conflict(error.to_string())),
        Err(error) => return Err(ApiError::internal(error.to_string())),
    }
    let incident = state
        .store
        .get_incident(&scope, id)
        .await?
        .ok_or_else(|| ApiError::internal(format!("incident {id} vanished")))?;
    Ok(Json(json!(incident)))
}

const OPERATORS: &[Role] = &[Role::Admin, Role::Operator];

/// An operator's action without a body: the role check, then the command.
async fn operator_action(
    state: &AppState,
    caller: &Caller,
    id: i64,
    what: &str,
    command: fn(i64, String) -> IncidentCommand,
) -> Result<Json<Value>, ApiError> {
    caller.require(OPERATORS, what)?;
    run_command(state, caller, id, command(id, caller.actor())).await
}

pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    operator_action(
        &state,
        &caller,
        id,
        "acknowledge incidents",
        |incident, actor| IncidentCommand::Acknowledge { incident, actor },
    )
    .await
}

pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    operator_action(
        &state,
        &caller,
        id,
        "resolve incidents",
        |incident, actor| IncidentCommand::Resolve { incident, actor },
    )
    .await
}

pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    operator_action(&state, &caller, id, "close incidents", |incident, actor| {
        IncidentCommand::Close { incident, actor }
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    text: String,
}

pub async fn comment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Result<Json<CommentBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(
        &[Role::Admin, Role::Operator, Role::Client],
        "comment on incidents",
    )?;
    let Json(body) = body.map_err(json_error)?;
    let actor = caller.actor();
    run_command(
        &state,
        &caller,
        id,
        IncidentCommand::Comment {
            incident: id,
            actor,
            text: body.text,
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReassignBody {
    assignee: Option<String>,
}

pub async fn reassign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Result<Json<ReassignBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(OPERATORS, "reassign incidents")?;
    let Json(body) = body.map_err(json_error)?;
    let actor = caller.actor();
    let assignee = body.assignee.filter(|a| !a.trim().is_empty());
    run_command(
        &state,
        &caller,
        id,
        IncidentCommand::Reassign {
            incident: id,
            actor,
            assignee,
        },
    )
    .await
}

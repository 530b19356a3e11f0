//! Qualification, escalation and crisis over the API: business services with their health,
//! teams, on-call schedules, escalation policies, crisis triggers (all from the estate, scoped
//! to the caller's client), silences (created and expired here, as Alertmanager users do),
//! crises, an incident's escalation, and merging and splitting incidents.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use vigie_core::estate::{Client, parse_duration};
use vigie_core::incident::IncidentCommand;

use super::incidents::{json_error, query_error, run_command};
use super::{ApiError, AppState};
use crate::auth::{Caller, Role};
use crate::pipeline::PipelineError;
use crate::response::records::{CrisisStatus, SilenceRecord};
use crate::response::{ResponseCommand, ResponseError, ResponseOutcome};
use crate::store::Scope;

const OPERATORS: &[Role] = &[Role::Admin, Role::Operator];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientQuery {
    client: Option<String>,
}

/// The estate's clients the caller may see (narrowed by `?client=`).
/// Each object `field` lists, of every client given, as JSON with its `client`.
fn tagged_with_client<T: serde::Serialize>(
    clients: &[Client],
    field: impl Fn(&Client) -> &Vec<T>,
) -> Vec<Value> {
    clients
        .iter()
        .flat_map(|client| {
            field(client).iter().map(move |object| {
                let mut value = json!(object);
                value["client"] = json!(client.id);
                value
            })
        })
        .collect()
}

fn visible_clients(state: &AppState, scope: &Scope) -> Vec<Client> {
    let (_, estate) = state.estate.current();
    estate
        .clients
        .values()
        .filter(|c| scope.allows(&c.id))
        .cloned()
        .collect()
}

fn scope_of(
    caller: &Caller,
    query: Result<Query<ClientQuery>, QueryRejection>,
) -> Result<Scope, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    Ok(caller.scope().narrow(query.client.as_deref()))
}

pub async fn list_business_services(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ClientQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope_of(&caller, query)?;
    let health = state.store.list_service_health(&scope).await?;
    let mut services = Vec::new();
    for client in visible_clients(&state, &scope) {
        for definition in client.business_services() {
            let current = health
                .iter()
                .find(|h| h.client == client.id && h.service == definition.service.id);
            services.push(json!({
                "client": client.id,
                "id": definition.service.id,
                "name": definition.service.name,
                "kind": definition.kind,
                "criticality": definition.criticality,
                "method": definition.service.method,
                "downtime": definition.service.downtime,
                "indicators": definition.service.indicators,
                "status": current.map_or("OK", |h| h.status.as_str()),
                "health": current.map_or(100.0, |h| h.health),
                "in_downtime": current.is_some_and(|h| h.in_downtime),
                "causes": current.map(|h| h.causes.clone()).unwrap_or_default(),
                "since_ms": current.map(|h| h.since_ms),
            }));
        }
    }
    Ok(Json(json!({ "business_services": services })))
}

pub async fn get_business_service(
    State(state): State<AppState>,
    caller: Caller,
    Path((client_id, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.scope().narrow(Some(&client_id));
    let not_found = || ApiError::not_found(format!("no business service {client_id}/{id}"));
    let client = visible_clients(&state, &scope)
        .into_iter()
        .next()
        .ok_or_else(not_found)?;
    let definition = client
        .business_services()
        .into_iter()
        .find(|d| d.service.id == id)
        .ok_or_else(not_found)?;
    let history = state
        .store
        .service_history(&scope, &client_id, &id, 200)
        .await?;
    let current = history.first();
    Ok(Json(json!({
        "client": client.id,
        "id": id,
        "name": definition.service.name,
        "criticality": definition.criticality,
        "method": definition.service.method,
        "indicators": definition.service.indicators,
        "status": current.map_or("OK", |h| h.status.as_str()),
        "health": current.map_or(100.0, |h| h.health),
        "causes": current.map(|h| h.causes.clone()).unwrap_or_default(),
        "history": history,
    })))
}

pub async fn list_teams(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ClientQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope_of(&caller, query)?;
    let teams: Vec<Value> =
        tagged_with_client(&visible_clients(&state, &scope), |client| &client.teams);
    Ok(Json(json!({ "teams": teams })))
}

pub async fn list_schedules(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ClientQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope_of(&caller, query)?;
    let now = crate::clock::now_ms();
    let schedules: Vec<Value> = visible_clients(&state, &scope)
        .iter()
        .flat_map(|client| {
            client.schedules.iter().map(move |spec| {
                let on_call = spec
                    .compile()
                    .ok()
                    .and_then(|s| s.on_call(now).map(str::to_owned));
                let mut value = json!(spec);
                value["client"] = json!(client.id);
                value["on_call_now"] = json!(on_call);
                value
            })
        })
        .collect();
    Ok(Json(json!({ "schedules": schedules })))
}

pub async fn list_escalation_policies(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ClientQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope_of(&caller, query)?;
    let policies: Vec<Value> = tagged_with_client(&visible_clients(&state, &scope), |client| {
        &client.escalation_policies
    });
    let routing: Vec<Value> =
        tagged_with_client(&visible_clients(&state, &scope), |client| &client.routing);
    Ok(Json(
        json!({ "escalation_policies": policies, "routing": routing }),
    ))
}

pub async fn list_crisis_triggers(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ClientQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope_of(&caller, query)?;
    let triggers: Vec<Value> = tagged_with_client(&visible_clients(&state, &scope), |client| {
        &client.crisis_triggers
    });
    Ok(Json(json!({ "crisis_triggers": triggers })))
}

/// The inhibition rules of the estate, as Alertmanager's `inhibit_rules`: while an alert
/// matching `source_matchers` fires, the pages of alerts matching `target_matchers` (with the
/// same values of the `equal` labels) are held back.
pub async fn list_inhibition_rules(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ClientQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope_of(&caller, query)?;
    let rules: Vec<Value> = tagged_with_client(&visible_clients(&state, &scope), |client| {
        &client.inhibit_rules
    });
    Ok(Json(json!({ "inhibition_rules": rules })))
}

// ---- crises ---------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrisisQuery {
    client: Option<String>,
    status: Option<String>,
}

pub async fn list_crises(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<CrisisQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let status = match query.status.as_deref() {
        None => None,
        Some("open") => Some(CrisisStatus::Open),
        Some("closed") => Some(CrisisStatus::Closed),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "parameter `status`: unknown value {other:?}: expected open or closed"
            )));
        }
    };
    let scope = caller.scope().narrow(query.client.as_deref());
    let crises = state.store.list_crises(&scope, status).await?;
    Ok(Json(json!({ "crises": crises })))
}

pub async fn get_crisis(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let crisis = state
        .store
        .get_crisis(&caller.scope(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no crisis {id}")))?;
    Ok(Json(json!(crisis)))
}

pub async fn close_crisis(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    caller.require(OPERATORS, "close crises")?;
    let outcome = state
        .pipeline
        .respond(ResponseCommand::CloseCrisis {
            client: caller.client.clone(),
            id,
            actor: caller.actor(),
        })
        .await
        .map_err(response_error)?;
    match outcome {
        ResponseOutcome::Crisis(crisis) => Ok(Json(json!(crisis))),
        ResponseOutcome::Silence(_) | ResponseOutcome::Done => {
            Err(ApiError::internal("unexpected answer"))
        }
    }
}

// ---- silences -------------------------------------------------------------------------------

/// A matcher as Alertmanager's API writes it, or as text (`name=value`, `name=~re`…).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum MatcherBody {
    Text(String),
    Object {
        name: String,
        value: String,
        #[serde(default, rename = "isRegex")]
        is_regex: bool,
        #[serde(default = "yes", rename = "isEqual")]
        is_equal: bool,
    },
}

fn yes() -> bool {
    true
}

impl MatcherBody {
    fn text(&self) -> String {
        match self {
            MatcherBody::Text(text) => text.clone(),
            MatcherBody::Object {
                name,
                value,
                is_regex,
                is_equal,
            } => {
                let op = match (is_regex, is_equal) {
                    (false, true) => "=",
                    (false, false) => "!=",
                    (true, true) => "=~",
                    (true, false) => "!~",
                };
                format!("{name}{op}{value:?}")
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceBody {
    /// Required for a token not bound to a client.
    client: Option<String>,
    matchers: Vec<MatcherBody>,
    /// RFC 3339; default now.
    #[serde(alias = "startsAt")]
    starts_at: Option<String>,
    /// RFC 3339; or give `duration`.
    #[serde(alias = "endsAt")]
    ends_at: Option<String>,
    /// e.g. `2h`, instead of `ends_at`.
    duration: Option<String>,
    /// Default: the token's name.
    #[serde(alias = "createdBy")]
    created_by: Option<String>,
    comment: String,
    /// Alertmanager sends it when updating; ignored on creation.
    id: Option<String>,
}

fn parse_time(field: &str, text: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            ApiError::bad_request(format!(
                "field `{field}`: {text:?} is not an RFC 3339 time: {e}"
            ))
        })
}

static SILENCE_SEQ: AtomicU64 = AtomicU64::new(0);

pub async fn create_silence(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<SilenceBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(OPERATORS, "create silences")?;
    let Json(body) = body.map_err(json_error)?;
    let client = match (&caller.client, &body.client) {
        (Some(own), Some(asked)) if own != asked => {
            return Err(ApiError::not_found(format!("no client {asked}")));
        }
        (Some(own), _) => own.clone(),
        (None, Some(asked)) => asked.clone(),
        (None, None) => {
            return Err(ApiError::bad_request(
                "field `client`: required with a token not bound to a client",
            ));
        }
    };
    let now = crate::clock::now_ms();
    let starts_at_ms = match &body.starts_at {
        Some(text) => parse_time("starts_at", text)?,
        None => now,
    };
    let ends_at_ms = match (&body.ends_at, &body.duration) {
        (Some(text), None) => parse_time("ends_at", text)?,
        (None, Some(duration)) => {
            starts_at_ms
                + parse_duration(duration)
                    .map_err(|e| ApiError::bad_request(format!("field `duration`: {e}")))?
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give `ends_at` or `duration`, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "field `ends_at` (or `duration`): a silence needs an end",
            ));
        }
    };
    let _ = body.id;
    let record = SilenceRecord {
        id: format!("{now:x}-{:x}", SILENCE_SEQ.fetch_add(1, Ordering::Relaxed)),
        client,
        matchers: body.matchers.iter().map(MatcherBody::text).collect(),
        starts_at_ms,
        ends_at_ms,
        created_by: body
            .created_by
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| caller.actor()),
        comment: body.comment,
        created_ms: now,
        source: "api".into(),
    };
    let outcome = state
        .pipeline
        .respond(ResponseCommand::CreateSilence(record))
        .await
        .map_err(response_error)?;
    match outcome {
        ResponseOutcome::Silence(silence) => Ok(Json(silence_view(&silence, now))),
        ResponseOutcome::Crisis(_) | ResponseOutcome::Done => {
            Err(ApiError::internal("unexpected answer"))
        }
    }
}

fn silence_view(silence: &SilenceRecord, now: i64) -> Value {
    let mut value = json!(silence);
    value["state"] = json!(silence.state(now));
    value
}

pub async fn list_silences(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ClientQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope_of(&caller, query)?;
    let now = crate::clock::now_ms();
    let mut silences: Vec<Value> = state
        .store
        .list_silences(&scope)
        .await?
        .iter()
        .map(|s| silence_view(s, now))
        .collect();
    // Those of the estate, read-only here.
    for client in visible_clients(&state, &scope) {
        for (index, spec) in client.silences().into_iter().enumerate() {
            let record = SilenceRecord {
                id: spec.id.clone(),
                client: client.id.clone(),
                matchers: spec
                    .matchers
                    .iter()
                    .map(|m| {
                        let op = match m.op {
                            vigie_core::notify::silence::MatchOp::Equal => "=",
                            vigie_core::notify::silence::MatchOp::NotEqual => "!=",
                            vigie_core::notify::silence::MatchOp::Regex => "=~",
                            vigie_core::notify::silence::MatchOp::NotRegex => "!~",
                        };
                        format!("{}{op}{:?}", m.name, m.value)
                    })
                    .collect(),
                starts_at_ms: spec.starts_at_ms,
                ends_at_ms: spec.ends_at_ms,
                created_by: spec.created_by.clone(),
                comment: spec.comment.clone(),
                created_ms: 0,
                source: format!("config (silences[{index}])"),
            };
            silences.push(silence_view(&record, now));
        }
    }
    Ok(Json(json!({ "silences": silences })))
}

pub async fn expire_silence(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(OPERATORS, "expire silences")?;
    let outcome = state
        .pipeline
        .respond(ResponseCommand::ExpireSilence {
            client: caller.client.clone(),
            id,
        })
        .await
        .map_err(response_error)?;
    match outcome {
        ResponseOutcome::Silence(silence) => {
            Ok(Json(silence_view(&silence, crate::clock::now_ms())))
        }
        ResponseOutcome::Crisis(_) | ResponseOutcome::Done => {
            Err(ApiError::internal("unexpected answer"))
        }
    }
}

fn response_error(error: PipelineError) -> ApiError {
    match error {
        PipelineError::Response(ResponseError::Invalid(message)) => ApiError::bad_request(message),
        PipelineError::Response(ResponseError::NotFound(what)) => {
            ApiError::not_found(format!("no {what}"))
        }
        other => ApiError::internal(other.to_string()),
    }
}

// ---- incidents: escalation, merge, split -----------------------------------------------------

pub async fn get_escalation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.scope();
    state
        .store
        .get_incident(&scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    let escalation = state.store.get_escalation(&scope, id).await?;
    Ok(Json(json!({ "incident": id, "escalation": escalation })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The incident merged into this one (it closes).
    from: i64,
}

pub async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Result<Json<MergeBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(OPERATORS, "merge incidents")?;
    let Json(body) = body.map_err(json_error)?;
    // The other incident must be visible too: 404 as if absent otherwise.
    state
        .store
        .get_incident(&caller.scope(), body.from)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no incident {}", body.from)))?;
    let command = IncidentCommand::Merge {
        into: id,
        from: body.from,
        actor: caller.actor(),
    };
    run_command(&state, &caller, id, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitBody {
    /// Alert ids of the incident that move to a new incident.
    alerts: Vec<i64>,
}

pub async fn split(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Result<Json<SplitBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(OPERATORS, "split incidents")?;
    let Json(body) = body.map_err(json_error)?;
    let command = IncidentCommand::Split {
        incident: id,
        alerts: body.alerts,
        actor: caller.actor(),
    };
    run_command(&state, &caller, id, command).await
}

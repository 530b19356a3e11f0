//! Token administration over the API (admin only): list, create, revoke. Secrets are shown
//! once, in the creation answer.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::incidents::json_error;
use super::{ApiError, AppState};
use crate::auth::{Caller, Role, issue_token};
use crate::store::TokenRecord;

fn describe(token: &TokenRecord) -> Value {
    json!({
        "id": token.id, "name": token.name, "role": token.role, "client": token.client,
        "created_ms": token.created_ms, "revoked_ms": token.revoked_ms,
    })
}

pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin], "manage tokens")?;
    let tokens: Vec<Value> = state
        .store
        .list_tokens()
        .await?
        .iter()
        .map(describe)
        .collect();
    Ok(Json(json!({"tokens": tokens})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    role: Role,
    client: Option<String>,
}

pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateToken>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(&[Role::Admin], "manage tokens")?;
    let Json(body) = body.map_err(json_error)?;
    if let Some(client) = &body.client
        && state.estate.current().1.client(client).is_none()
    {
        return Err(ApiError::bad_request(format!(
            "field `client`: unknown client {client:?}"
        )));
    }
    let issued = issue_token(
        &state.store,
        &body.name,
        body.role,
        body.client.as_deref(),
        crate::clock::now_ms(),
    )
    .await
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut answer = describe(&issued.record);
    answer["token"] = Value::String(issued.token);
    Ok((StatusCode::CREATED, Json(answer)))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin], "manage tokens")?;
    if !state
        .store
        .revoke_token(&id, crate::clock::now_ms())
        .await?
    {
        return Err(ApiError::not_found(format!("no live token {id}")));
    }
    state.auth.forget(&id);
    Ok(Json(json!({"id": id, "revoked": true})))
}

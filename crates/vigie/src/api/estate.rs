//! Clients and assets over the API: reading is scoped like everything else; creating is for
//! admins and goes through the same validation as the estate files. The reload (estate and
//! Sigma rules) is here too.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use vigie_core::estate::{Asset, Client, Estate};

use super::incidents::{json_error, query_error};
use super::{ApiError, AppState};
use crate::auth::{Caller, Role};
use crate::estate::AddError;

/// A client without its nested objects, as listed.
fn summary(client: &Client) -> Value {
    json!({
        "id": client.id, "name": client.name, "contract": client.contract,
        "assets": client.assets.len(), "sites": client.sites.len(),
    })
}

pub async fn list_clients(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.scope();
    let estate = state.estate.current().1;
    let clients: Vec<Value> = estate
        .clients
        .values()
        .filter(|c| scope.allows(&c.id))
        .map(summary)
        .collect();
    Ok(Json(json!({"clients": clients})))
}

/// The client of that id if the caller may see it; else 404, as if it did not exist.
fn visible_client<'e>(
    estate: &'e Estate,
    caller: &Caller,
    id: &str,
) -> Result<&'e Client, ApiError> {
    estate
        .client(id)
        .filter(|c| caller.scope().allows(&c.id))
        .ok_or_else(|| ApiError::not_found(format!("no client {id:?}")))
}

pub async fn get_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let estate = state.estate.current().1;
    let client = visible_client(&estate, &caller, &id)?;
    Ok(Json(super::notifications::client_view(client)))
}

pub async fn list_client_assets(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let estate = state.estate.current().1;
    let client = visible_client(&estate, &caller, &id)?;
    Ok(Json(
        json!({"client": id, "assets": client.assets, "dependencies": client.dependencies}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetQuery {
    client: Option<String>,
    tag: Option<String>,
    kind: Option<String>,
}

pub async fn list_assets(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AssetQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let scope = caller.scope().narrow(query.client.as_deref());
    let estate = state.estate.current().1;
    let mut assets = Vec::new();
    for client in estate.clients.values().filter(|c| scope.allows(&c.id)) {
        for asset in &client.assets {
            if query.tag.as_ref().is_some_and(|t| !asset.tags.contains(t)) {
                continue;
            }
            if query
                .kind
                .as_ref()
                .is_some_and(|k| json!(asset.kind) != json!(k))
            {
                continue;
            }
            let mut value = json!(asset);
            value["client"] = Value::String(client.id.clone());
            assets.push(value);
        }
    }
    Ok(Json(json!({"assets": assets})))
}

fn add_error(error: AddError, client: &str) -> ApiError {
    match error {
        AddError::Exists(message) => ApiError::conflict(message),
        AddError::NoClient => ApiError::not_found(format!("no client {client:?}")),
        AddError::Invalid(problems) => ApiError::bad_request("the object does not validate")
            .with_details(problems.into_iter().map(|p| json!({"error": p})).collect()),
        AddError::Store(message) => ApiError::internal(message),
    }
}

pub async fn create_client(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Client>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(&[Role::Admin], "create clients")?;
    let Json(client) = body.map_err(json_error)?;
    let id = client.id.clone();
    state
        .estate
        .add_client(&state.store, client)
        .await
        .map_err(|e| add_error(e, &id))?;
    let estate = state.estate.current().1;
    Ok((StatusCode::CREATED, Json(json!(estate.client(&id)))))
}

pub async fn create_asset(
    State(state): State<AppState>,
    caller: Caller,
    Path(client): Path<String>,
    body: Result<Json<Asset>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(&[Role::Admin], "create assets")?;
    let Json(asset) = body.map_err(json_error)?;
    let id = asset.id.clone();
    state
        .estate
        .add_asset(&state.store, &client, asset)
        .await
        .map_err(|e| add_error(e, &client))?;
    let estate = state.estate.current().1;
    Ok((StatusCode::CREATED, Json(json!(estate.asset(&client, &id)))))
}

pub async fn reload(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin], "reload the estate and rules")?;
    let reloaded = crate::server::reload(&state).await.map_err(|problems| {
        ApiError::bad_request("the reload does not load; the running estate and rules are kept")
            .with_details(problems.into_iter().map(|p| json!({"error": p})).collect())
    })?;
    let rejected: Vec<Value> = reloaded
        .sigma_rejected
        .iter()
        .map(|rejection| {
            json!({
                "path": rejection.path, "line": rejection.line,
                "rule": rejection.rule_id, "reason": rejection.reason,
            })
        })
        .collect();
    let notices: Vec<Value> = reloaded
        .sigma_notices
        .iter()
        .map(|notice| {
            json!({
                "path": notice.path, "line": notice.line,
                "rule": notice.rule_id, "notice": notice.message,
            })
        })
        .collect();
    Ok(Json(json!({
        "reloaded": true,
        "version": reloaded.estate_version,
        "clients": reloaded.clients,
        "sigma": {"loaded": reloaded.sigma_loaded, "rejected": rejected},
        "sigma_tuning": {
            "filters": reloaded.sigma_filters,
            "notices": notices,
            "logsource_map_entries": reloaded.logsource_map_entries,
        },
    })))
}

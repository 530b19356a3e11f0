//! The HTTP API: JSON over HTTP under `/api/v1`, the OpenAPI description at
//! `/api/openapi.json`, `/metrics` and `/healthz`.
//!
//! Invariants: every `/api/v1` route but none of the public ones needs a bearer token; a
//! handler never filters client data itself — it hands the caller's `Scope` to the store —
//! and answers 404, not 403, for an object outside the caller's client, so that a client's
//! token cannot even learn that another client's object exists.

mod checks;
mod error;
mod estate;
mod events;
mod incidents;
mod notifications;
pub mod openapi;
mod passive;
mod perfdata;
mod response;
mod stream;
mod tokens;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

pub use error::ApiError;

use crate::auth::{Authenticator, Caller, Role};
use crate::estate::EstateHandle;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::store::Store;
use crate::supervision::SupervisionHandle;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub pipeline: Pipeline,
    pub auth: Authenticator,
    pub estate: EstateHandle,
    pub metrics: Arc<Metrics>,
    /// Where the Sigma rules, filters and logsource map are read from, again on reload.
    pub detection: Arc<crate::rule::DetectionSources>,
    /// Held by a reload, so that reloads (SIGHUP, the API) run one at a time.
    pub reloading: Arc<tokio::sync::Mutex<()>>,
    /// The supervision task: acknowledgements and downtimes of checks.
    pub supervision: SupervisionHandle,
}

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route(
            "/events",
            post(crate::ingest::http::post_events).get(events::list_events),
        )
        .route("/events/{id}", get(events::get_event))
        .route("/incidents", get(incidents::list_incidents))
        .route("/incidents/{id}", get(incidents::get_incident))
        .route("/incidents/{id}/timeline", get(incidents::get_timeline))
        .route(
            "/incidents/{id}/alerts",
            get(incidents::get_incident_alerts),
        )
        .route("/incidents/{id}/ack", post(incidents::acknowledge))
        .route("/incidents/{id}/resolve", post(incidents::resolve))
        .route("/incidents/{id}/close", post(incidents::close))
        .route("/incidents/{id}/comment", post(incidents::comment))
        .route("/incidents/{id}/reassign", post(incidents::reassign))
        .route("/alerts", get(incidents::list_alerts))
        .route("/alerts/{id}", get(incidents::get_alert))
        .route(
            "/clients",
            get(estate::list_clients).post(estate::create_client),
        )
        .route("/clients/{id}", get(estate::get_client))
        .route(
            "/clients/{id}/assets",
            get(estate::list_client_assets).post(estate::create_asset),
        )
        .route("/assets", get(estate::list_assets))
        .route("/checks", get(checks::list_checks))
        .route("/checks/{id}", get(checks::get_check))
        .route(
            "/checks/{id}/acknowledge",
            post(checks::acknowledge).delete(checks::remove_acknowledgement),
        )
        .route("/checks/{id}/downtimes", post(checks::schedule_downtime))
        .route(
            "/checks/{id}/downtimes/{downtime}",
            axum::routing::delete(checks::remove_downtime),
        )
        .route("/checks/{id}/perfdata", get(perfdata::get_perfdata))
        .route("/actions/process-check-result", post(passive::icinga))
        .route("/passive/nrdp", post(passive::nrdp))
        .route("/passive/commands", post(passive::commands))
        .route("/reload", post(estate::reload))
        .route(
            "/tokens",
            get(tokens::list_tokens).post(tokens::create_token),
        )
        .route("/tokens/{id}", axum::routing::delete(tokens::revoke_token))
        .route("/notifications", get(notifications::list_notifications))
        .route("/notifications/{id}", get(notifications::get_notification))
        .route(
            "/notifications/{id}/retry",
            post(notifications::retry_notification),
        )
        .route("/business-services", get(response::list_business_services))
        .route(
            "/business-services/{client}/{id}",
            get(response::get_business_service),
        )
        .route("/teams", get(response::list_teams))
        .route("/schedules", get(response::list_schedules))
        .route(
            "/escalation-policies",
            get(response::list_escalation_policies),
        )
        .route("/crisis-triggers", get(response::list_crisis_triggers))
        .route("/inhibition-rules", get(response::list_inhibition_rules))
        .route("/crises", get(response::list_crises))
        .route("/crises/{id}", get(response::get_crisis))
        .route("/crises/{id}/close", post(response::close_crisis))
        .route(
            "/silences",
            get(response::list_silences).post(response::create_silence),
        )
        .route(
            "/silences/{id}",
            axum::routing::delete(response::expire_silence),
        )
        .route("/incidents/{id}/escalation", get(response::get_escalation))
        .route("/incidents/{id}/merge", post(response::merge))
        .route("/incidents/{id}/split", post(response::split))
        .route("/stream", get(stream::stream))
        .fallback(|| async { ApiError::not_found("no such route") });
    Router::new()
        .nest("/api/v1", v1)
        .route("/api/openapi.json", get(openapi::serve))
        // Where Icinga 2 clients send passive results.
        .route("/v1/actions/process-check-result", post(passive::icinga))
        // Where Prometheus sends alerts to an Alertmanager.
        .route("/api/v2/alerts", post(passive::alertmanager))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/", get(index))
        // The ingest handler reads its body itself, with its own limits and a JSON 413.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(_) => Json(
            json!({"status": "ok", "store": format!("{:?}", state.store.engine()).to_lowercase()}),
        )
        .into_response(),
        Err(error) => ApiError::overloaded(format!("store unavailable: {error:#}")).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(state.store.metrics());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

async fn index() -> Json<serde_json::Value> {
    Json(json!({
        "name": "vigie",
        "version": env!("CARGO_PKG_VERSION"),
        "api": "/api/v1",
        "openapi": "/api/openapi.json",
    }))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("missing bearer token (Authorization: Bearer vg_…)")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must read `Bearer <token>`")
            })?;
        state
            .auth
            .verify(token)
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))
    }
}

impl Caller {
    /// Refuses the call unless the caller's role is one of `roles`.
    pub fn require(&self, roles: &[Role], action: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "a {} token may not {action}",
                self.role.as_str()
            )))
        }
    }
}

/// Bounds a page size: default 100, at most 1,000.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(format!(
            "parameter `limit`: {n} is not between 1 and 1000"
        ))),
    }
}

//! Passive check results in, in the formats existing senders speak, so that they can point at
//! Vigie unchanged: Icinga 2's `POST /v1/actions/process-check-result` (also served at that
//! path outside `/api/v1`, where Icinga clients send it), NRDP's JSON (`checkresults`), and
//! Nagios external command lines (`PROCESS_SERVICE_CHECK_RESULT;…`, one per line).
//!
//! A result names a host and, for a service, the check: the host is found among the assets of
//! the caller's client (of every client for an admin or operator token: a name that several
//! clients use is refused, use that client's token), by asset id, hostname, short name or
//! address; the service is the check's name, the host check without one. An unknown host or
//! check answers 404 with its name. A batch is parsed whole before anything is applied.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::Map;
use serde_json::{Value, json};
use vigie_core::alert::alertmanager::parse_postable_alerts;
use vigie_core::check::passive::{PassiveResult, parse_external_command, parse_icinga, parse_nrdp};
use vigie_core::check::{CheckId, HOST_CHECK_NAME};
use vigie_core::event::Severity;
use vigie_core::incident::IncidentCommand;
use vigie_core::incident::model::AlertSignal;

use super::{ApiError, AppState};
use crate::auth::{Caller, Role};
use crate::estate::ClientHosts;
use crate::supervision::{CheckRequest, SupervisionError};

const SENDERS: &[Role] = &[Role::Admin, Role::Operator, Role::Ingest];

/// Results of one request, at most.
const MAX_RESULTS: usize = 10_000;

/// The host indexes of the clients a caller may send for, built once per request.
fn visible_hosts(state: &AppState, caller: &Caller) -> Vec<(String, ClientHosts)> {
    let (_, estate) = state.estate.current();
    estate
        .clients
        .values()
        .filter(|client| caller.client.as_deref().is_none_or(|own| own == client.id))
        .map(|client| (client.id.clone(), ClientHosts::build(client)))
        .collect()
}

/// The check a result is for.
fn check_of(hosts: &[(String, ClientHosts)], result: &PassiveResult) -> Result<CheckId, ApiError> {
    let found: Vec<(&str, &str)> = hosts
        .iter()
        .filter_map(|(client, hosts)| Some((client.as_str(), hosts.find(&result.host)?)))
        .collect();
    let (client, asset) = match found.as_slice() {
        [] => return Err(ApiError::not_found(format!("no host {:?}", result.host))),
        [one] => *one,
        _ => {
            return Err(ApiError::conflict(format!(
                "host {:?} names assets of several clients: send it with that client's token",
                result.host
            )));
        }
    };
    let check = result.service.as_deref().unwrap_or(HOST_CHECK_NAME);
    Ok(CheckId::new(client, asset, check))
}

async fn apply(
    state: &AppState,
    caller: &Caller,
    results: Vec<PassiveResult>,
) -> Result<Vec<String>, ApiError> {
    if results.len() > MAX_RESULTS {
        return Err(ApiError::too_large(format!(
            "{} results in one request; at most {MAX_RESULTS}",
            results.len()
        )));
    }
    // Resolve every name first: a batch with an unknown host applies nothing.
    let hosts = visible_hosts(state, caller);
    let ids = results
        .iter()
        .map(|result| check_of(&hosts, result))
        .collect::<Result<Vec<_>, _>>()?;
    let mut applied = Vec::with_capacity(ids.len());
    for (id, passive) in ids.into_iter().zip(results) {
        let name = match &passive.service {
            Some(service) => format!("{}!{service}", passive.host),
            None => passive.host.clone(),
        };
        let request = CheckRequest::PassiveResult {
            result: passive.result,
            time_ms: passive.time_ms,
        };
        match state.supervision.request(id.clone(), request).await {
            Ok(_) => applied.push(name),
            Err(SupervisionError::UnknownCheck(_)) => {
                return Err(ApiError::not_found(format!(
                    "no check {:?} on host {:?}",
                    passive.service.as_deref().unwrap_or(HOST_CHECK_NAME),
                    passive.host
                )));
            }
            Err(error) => return Err(ApiError::internal(error.to_string())),
        }
    }
    Ok(applied)
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))
}

#[derive(Deserialize)]
pub struct IcingaTarget {
    host: Option<String>,
    service: Option<String>,
}

/// Icinga 2's `process-check-result`; answers as Icinga does.
pub async fn icinga(
    State(state): State<AppState>,
    caller: Caller,
    Query(target): Query<IcingaTarget>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(SENDERS, "submit check results")?;
    let body = json_body(&body)?;
    let result = parse_icinga(&body, target.host.as_deref(), target.service.as_deref())
        .map_err(ApiError::bad_request)?;
    let names = apply(&state, &caller, vec![result]).await?;
    Ok(Json(json!({"results": names.iter().map(|name| json!({
        "code": 200.0,
        "status": format!("Successfully processed check result for object '{name}'."),
    })).collect::<Vec<_>>()})))
}

/// NRDP's `JSONDATA` object, as the body.
pub async fn nrdp(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(SENDERS, "submit check results")?;
    let body = json_body(&body)?;
    let results = parse_nrdp(&body).map_err(|problems| {
        ApiError::bad_request(format!(
            "{} bad check results: {}",
            problems.len(),
            problems.join("; ")
        ))
    })?;
    let names = apply(&state, &caller, results).await?;
    Ok(Json(
        json!({"result": {"status": 0, "message": "OK", "meta": {
            "output": format!("{} checks processed", names.len())
        }}}),
    ))
}

/// External command lines, one per line (blank lines skipped).
pub async fn commands(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(SENDERS, "submit check results")?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the body is not UTF-8 text"))?;
    let mut results = Vec::new();
    let mut problems = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_external_command(line) {
            Ok(result) => results.push(result),
            Err(problem) => problems.push(format!("line {}: {problem}", number + 1)),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::bad_request(problems.join("; ")));
    }
    let names = apply(&state, &caller, results).await?;
    Ok(Json(json!({"processed": names.len()})))
}

/// Prometheus alerts as Alertmanager takes them (`POST /api/v2/alerts`), so that a Prometheus
/// can point at Vigie unchanged. The client is the token's, or the alert's `client` label
/// for an admin or operator token; the asset, when an `instance`, `host` or `asset` label
/// names one of the client's. A firing alert is an alert signal (repeats count up on the same
/// fingerprint: the label set); one whose `endsAt` has passed resolves it. A bad alert refuses
/// the batch with every problem listed.
pub async fn alertmanager(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<axum::http::StatusCode, ApiError> {
    caller.require(SENDERS, "submit alerts")?;
    let body = json_body(&body)?;
    let now = crate::clock::now_ms();
    let alerts = parse_postable_alerts(&body, now)
        .map_err(|problems| ApiError::bad_request(problems.join("; ")))?;
    if alerts.len() > MAX_RESULTS {
        return Err(ApiError::too_large(format!(
            "{} alerts in one request; at most {MAX_RESULTS}",
            alerts.len()
        )));
    }
    let (_, estate) = state.estate.current();
    let mut hosts_of: std::collections::HashMap<String, ClientHosts> =
        std::collections::HashMap::new();
    let mut commands = Vec::with_capacity(alerts.len());
    let mut problems = Vec::new();
    for (index, alert) in alerts.iter().enumerate() {
        let labelled = alert.labels.get("client").map(String::as_str);
        let client_id = match (caller.client.as_deref(), labelled) {
            (Some(own), Some(other)) if own != other => {
                problems.push(format!(
                    "[{index}]: labels.client {other:?} is not this token's client"
                ));
                continue;
            }
            (Some(own), _) => own,
            (None, Some(named)) => named,
            (None, None) => {
                problems.push(format!(
                    "[{index}]: labels.client is required with a token of no client"
                ));
                continue;
            }
        };
        let Some(client) = estate.clients.get(client_id) else {
            problems.push(format!("[{index}]: unknown client {client_id:?}"));
            continue;
        };
        let fingerprint = format!("am-{}", alert.fingerprint);
        if alert.is_resolved(now) {
            commands.push(IncidentCommand::ResolveAlert {
                client: client.id.clone(),
                fingerprint,
                actor: caller.actor(),
            });
            continue;
        }
        let hosts = hosts_of
            .entry(client.id.clone())
            .or_insert_with(|| ClientHosts::build(client));
        let asset = ["asset", "host", "instance"]
            .iter()
            .filter_map(|label| alert.labels.get(*label))
            .find_map(|value| {
                // `instance` is usually host:port.
                let host = value
                    .rsplit_once(':')
                    .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
                    .map_or(value.as_str(), |(host, _)| host);
                hosts.find(host).map(str::to_owned)
            });
        let severity = match alert.labels.get("severity").map(String::as_str) {
            Some("critical" | "page") => Severity::Critical,
            Some("warning") => Severity::Warning,
            Some("info" | "none") => Severity::Info,
            _ => Severity::Error,
        };
        let mut labels = Map::new();
        labels.insert("labels".into(), json!(alert.labels));
        labels.insert("annotations".into(), json!(alert.annotations));
        labels.insert("starts_at_ms".into(), json!(alert.starts_at_ms));
        labels.insert("ends_at_ms".into(), json!(alert.ends_at_ms));
        if let Some(url) = &alert.generator_url {
            labels.insert("generator_url".into(), json!(url));
        }
        commands.push(IncidentCommand::Signal(AlertSignal {
            client: client.id.clone(),
            fingerprint,
            rule: format!("alertmanager/{}", alert.alertname()),
            title: alert
                .annotations
                .get("summary")
                .cloned()
                .unwrap_or_else(|| alert.alertname().to_owned()),
            severity,
            criticality: asset
                .as_deref()
                .and_then(|a| client.assets.iter().find(|x| x.id == a))
                .map(|a| a.criticality),
            asset,
            source: "alertmanager".into(),
            kind: "alert".into(),
            event_id: None,
            time_ms: alert.starts_at_ms.min(now),
            labels,
        }));
    }
    if !problems.is_empty() {
        return Err(ApiError::bad_request(problems.join("; ")));
    }
    state
        .pipeline
        .supervise(commands)
        .await
        .map_err(|error| ApiError::internal(error.to_string()))?;
    Ok(axum::http::StatusCode::OK)
}

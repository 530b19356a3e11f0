//! `POST /api/v1/events`: a JSON array or NDJSON body, gzip accepted. The batch is all or
//! nothing: every line is checked first, and one bad line rejects the whole batch with 400
//! and the list of problems by line; a 200 means every event is committed to disk.

use std::io::Read;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use serde_json::{Value, json};
use vigie_core::estate::Estate;
use vigie_core::event::{Event, event_from_json_slice, events_from_json_array};

use crate::api::{ApiError, AppState};
use crate::auth::{Caller, Role};
use crate::pipeline::PipelineError;

/// The largest body accepted on the wire, and once decompressed.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
pub const MAX_DECODED_BYTES: usize = 128 * 1024 * 1024;
/// Problems listed in a 400 answer at most; the count says how many there were.
const MAX_REPORTED_PROBLEMS: usize = 100;

pub async fn post_events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin, Role::Operator, Role::Ingest], "send events")?;
    let received_ms = crate::clock::now_ms();
    let slot = match state.pipeline.body_slot().await {
        Ok(slot) => slot,
        Err(error) => {
            // Read the body away before answering: a client still sending when the answer
            // comes would see a broken connection instead of the 503 that tells it to retry.
            drain(body).await;
            return Err(pipeline_error(error));
        }
    };
    let body = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::too_large(format!(
            "the body is over {MAX_BODY_BYTES} bytes: split the batch"
        ))
    })?;
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?"))
    {
        None | Some("identity") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            return Err(ApiError::unsupported_media_type(format!(
                "content encoding {other:?} is not supported: send gzip or nothing"
            )));
        }
    };
    let estate = state.estate.current().1;
    let rules = state.pipeline.rules().clone();
    // Decoding and parsing are CPU work proportional to the body: off the async workers.
    let parsed = tokio::task::spawn_blocking(move || {
        let body = if gzip { gunzip(&body)? } else { body };
        // Single-event Sigma rules are evaluated here, in parallel across requests; the
        // writer keeps only the ordered part (signals, correlation windows).
        parse_batch(&body, received_ms, &caller, &estate).map(|events| rules.detect_batch(events))
    })
    .await
    .map_err(|e| ApiError::internal(format!("ingest task failed: {e}")))?
    .inspect_err(|_| {
        state
            .metrics
            .batches_rejected
            .fetch_add(1, Ordering::Relaxed);
    })?;
    let count = parsed.events.len();
    let receipt = state
        .pipeline
        .ingest(parsed, received_ms, Some(slot))
        .await
        .map_err(pipeline_error)?;
    Ok(Json(json!({
        "accepted": count,
        "first_id": receipt.first_id,
    })))
}

/// Reads and discards a body, up to the size limit.
async fn drain(body: Body) {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > MAX_BODY_BYTES {
            break;
        }
    }
}

fn pipeline_error(error: PipelineError) -> ApiError {
    match error {
        PipelineError::Overloaded => {
            ApiError::overloaded("the ingest queue is full: retry in a second")
        }
        error @ PipelineError::TooLarge(..) => ApiError::too_large(error.to_string()),
        error => ApiError::internal(error.to_string()),
    }
}

fn gunzip(body: &[u8]) -> Result<Bytes, ApiError> {
    let mut decoded = Vec::with_capacity(body.len() * 4);
    let mut reader = flate2::read::MultiGzDecoder::new(body).take(MAX_DECODED_BYTES as u64 + 1);
    reader
        .read_to_end(&mut decoded)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid gzip: {e}")))?;
    if decoded.len() > MAX_DECODED_BYTES {
        return Err(ApiError::too_large(format!(
            "the body decompresses to over {MAX_DECODED_BYTES} bytes: split the batch"
        )));
    }
    Ok(Bytes::from(decoded))
}

/// Parses a whole batch or reports every problem in it. A body whose first non-blank byte
/// is `[` is a JSON array (problems by `index`); anything else is NDJSON (problems by `line`,
/// counted from 1; blank lines are skipped).
pub fn parse_batch(
    body: &[u8],
    received_ms: i64,
    caller: &Caller,
    estate: &Estate,
) -> Result<Vec<Event>, ApiError> {
    let mut events = Vec::new();
    let mut problems = Vec::new();
    let mut problem_count = 0usize;
    let mut report = |place: Value, message: String| {
        problem_count += 1;
        if problems.len() < MAX_REPORTED_PROBLEMS {
            let mut problem = place;
            problem["error"] = Value::String(message);
            problems.push(problem);
        }
    };
    let check = |event: Event| {
        check_client(&event, caller, estate)?;
        Ok::<Event, String>(event)
    };
    let first = body.iter().position(|b| !b.is_ascii_whitespace());
    match first.map(|i| body[i]) {
        None => return Err(ApiError::bad_request("the body holds no events")),
        Some(b'[') => match events_from_json_array(body, received_ms, "http") {
            Ok(read) => {
                for (index, event) in read.into_iter().enumerate() {
                    match event.map_err(|e| e.to_string()).and_then(check) {
                        Ok(event) => events.push(event),
                        Err(message) => report(json!({ "index": index }), message),
                    }
                }
            }
            Err(error) => {
                return Err(ApiError::bad_request(format!(
                    "the body is not a JSON array of events: line {} column {}: {error}",
                    error.line(),
                    error.column()
                )));
            }
        },
        Some(_) => {
            for (number, line) in body.split(|b| *b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let event = event_from_json_slice(line, received_ms, "http")
                    .map_err(|e| e.to_string())
                    .and_then(check);
                match event {
                    Ok(event) => events.push(event),
                    Err(message) => report(json!({ "line": number + 1 }), message),
                }
            }
        }
    }
    if problem_count > 0 {
        return Err(ApiError::bad_request(format!(
            "{problem_count} of the batch's events are invalid; nothing was accepted"
        ))
        .with_details(problems));
    }
    if events.is_empty() {
        return Err(ApiError::bad_request("the body holds no events"));
    }
    Ok(events)
}

fn check_client(event: &Event, caller: &Caller, estate: &Estate) -> Result<(), String> {
    if let Some(own) = &caller.client
        && own != &event.client
    {
        return Err(format!(
            "field `client`: this token sends events for client {own:?} only, not {:?}",
            event.client
        ));
    }
    if estate.client(&event.client).is_none() {
        return Err(format!("field `client`: unknown client {:?}", event.client));
    }
    Ok(())
}

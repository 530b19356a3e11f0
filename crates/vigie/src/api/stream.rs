//! The live feed: server-sent events carrying incident, alert and timeline changes, scoped to
//! what the token may see. Each SSE message's id is the change's sequence number; a client
//! that reconnects with `Last-Event-ID` (or `?last_event_id=`) first gets what it missed from
//! the store, then the live changes, with neither gap nor duplicate.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::incidents::query_error;
use super::{ApiError, AppState};
use crate::auth::{Caller, Role};
use crate::store::{Change, Scope};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    last_event_id: Option<i64>,
}

const REPLAY_PAGE: i64 = 500;

fn sse_event(change: &Change) -> SseEvent {
    SseEvent::default()
        .id(change.seq.to_string())
        .event(change.topic.as_str())
        .data(change.body.as_str())
}

pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    caller.require(
        &[Role::Admin, Role::Operator, Role::Client],
        "read the live stream",
    )?;
    let Query(query) = query.map_err(query_error)?;
    let from_header = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "header `Last-Event-ID`: expected a change sequence number",
                    )
                })?,
        ),
    };
    let resume_after = from_header.or(query.last_event_id);
    // Subscribe before replaying, so that nothing committed in between is missed.
    let live = state.pipeline.subscribe();
    // Without a resume point the stream starts after the newest change, fixed here, before
    // the answer goes out: whatever the client does once it has the answer comes after it.
    let start = match resume_after {
        Some(after) => Start::Replay(after),
        None => Start::After(state.store.last_change_seq().await?),
    };
    let (out, events) = mpsc::channel(256);
    tokio::spawn(feed(state, caller.scope(), start, live, out));
    Ok(Sse::new(ReceiverStream::new(events))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Sends the changes after `last` from the store; returns the last sequence sent, or
/// `None` when the client went away.
async fn replay(
    state: &AppState,
    scope: &Scope,
    mut last: i64,
    out: &mpsc::Sender<Result<SseEvent, Infallible>>,
) -> Option<i64> {
    loop {
        let page = match state.store.changes_since(scope, last, REPLAY_PAGE).await {
            Ok(page) => page,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "cannot replay the change feed");
                return None;
            }
        };
        for change in &page {
            out.send(Ok(sse_event(change))).await.ok()?;
            last = change.seq;
        }
        if (page.len() as i64) < REPLAY_PAGE {
            return Some(last);
        }
    }
}

/// Where a stream starts.
enum Start {
    /// Replay from the store what came after this change, then follow live.
    Replay(i64),
    /// Follow live the changes after this one.
    After(i64),
}

async fn feed(
    state: AppState,
    scope: Scope,
    start: Start,
    mut live: broadcast::Receiver<Arc<crate::store::Change>>,
    out: mpsc::Sender<Result<SseEvent, Infallible>>,
) {
    let subscribers = state.metrics.clone();
    subscribers
        .stream_subscribers
        .fetch_add(1, Ordering::Relaxed);
    let mut last = match start {
        Start::Replay(after) => replay(&state, &scope, after, &out).await,
        Start::After(newest) => Some(newest),
    };
    while let Some(sent) = last {
        // A client that went away is noticed at once, not at the next change for it.
        let received = tokio::select! {
            received = live.recv() => received,
            _ = out.closed() => break,
        };
        last = match received {
            Ok(change) => {
                if change.seq <= sent || !scope.allows(&change.client) {
                    Some(sent)
                } else if out.send(Ok(sse_event(&change))).await.is_ok() {
                    Some(change.seq)
                } else {
                    None
                }
            }
            // Too slow to keep up with the broadcast: catch up from the store.
            Err(broadcast::error::RecvError::Lagged(_)) => replay(&state, &scope, sent, &out).await,
            Err(broadcast::error::RecvError::Closed) => None,
        };
    }
    subscribers
        .stream_subscribers
        .fetch_sub(1, Ordering::Relaxed);
}

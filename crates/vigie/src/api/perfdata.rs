//! A check's performance data as time series: `GET /api/v1/checks/{id}/perfdata`, one series
//! per label (and unit), raw points or roll-ups (see `store::perfdata`). Read through the
//! caller's `Scope` like every check route: a check of another client answers 404, exactly as
//! an absent one. Every bad parameter is a 400 that names it.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use vigie_core::check::CheckId;
use vigie_core::check::series::{Rollup, Step};
use vigie_core::event::parse_rfc3339_ms;

use super::incidents::query_error;
use super::{ApiError, AppState};
use crate::auth::Caller;
use crate::store::perfdata::{GraphPoints, SeriesGraph};

/// The range read when `from` is not given: the day before `to`.
const DEFAULT_RANGE_MS: i64 = 86_400_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerfdataQuery {
    /// One label; all of the check's when absent.
    label: Option<String>,
    /// RFC 3339 or epoch milliseconds; default `to` minus a day.
    from: Option<String>,
    /// RFC 3339 or epoch milliseconds, excluded; default now.
    to: Option<String>,
    /// `raw`, `5m`, `1h` or `auto` (the default).
    step: Option<String>,
}

pub async fn get_perfdata(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<PerfdataQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let now = crate::clock::now_ms();
    let to = parse_time("to", query.to.as_deref())?.unwrap_or(now);
    let from = match parse_time("from", query.from.as_deref())? {
        Some(from) => from,
        None => to.saturating_sub(DEFAULT_RANGE_MS),
    };
    if from >= to {
        return Err(ApiError::bad_request(format!(
            "parameter `from`: {from} is not before `to` ({to})"
        )));
    }
    let step = match query.step.as_deref() {
        None | Some("") => Step::Auto,
        Some(text) => Step::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "parameter `step`: unknown value {text:?}: expected raw, 5m, 1h or auto"
            ))
        })?,
    };
    let label = query.label.as_deref().filter(|label| !label.is_empty());
    let scope = caller.scope();
    let not_found = || ApiError::not_found(format!("no check {id:?}"));
    if id.parse::<CheckId>().is_err() {
        return Err(not_found());
    }
    state
        .store
        .get_check(&scope, &id)
        .await?
        .ok_or_else(not_found)?;
    let series = state
        .store
        .perfdata_graph(
            &scope,
            &id,
            label,
            from,
            to,
            step,
            &state.supervision.perfdata().retention,
            now,
        )
        .await?;
    let series: Vec<Value> = series.iter().map(series_view).collect();
    Ok(Json(json!({
        "check": id,
        "from": from,
        "to": to,
        "series": series,
    })))
}

/// RFC 3339 (`2026-01-01T10:00:00Z`) or epoch milliseconds.
fn parse_time(name: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(Some(ms));
    }
    parse_rfc3339_ms(text).map(Some).ok_or_else(|| {
        ApiError::bad_request(format!(
            "parameter `{name}`: {text:?} is neither an RFC 3339 time nor epoch milliseconds"
        ))
    })
}

fn series_view(series: &SeriesGraph) -> Value {
    let points: Vec<Value> = match &series.points {
        GraphPoints::Raw(points) => points.iter().map(|(t, v)| json!([t, v])).collect(),
        GraphPoints::Rollups(rollups) => rollups.iter().map(rollup_view).collect(),
    };
    json!({
        "label": series.label,
        "unit": series.unit,
        "resolution": series.resolution,
        "step_ms": series.step_ms,
        "truncated": series.truncated,
        "points": points,
    })
}

fn rollup_view(rollup: &Rollup) -> Value {
    json!({
        "t": rollup.bucket_ms,
        "min": rollup.min,
        "max": rollup.max,
        "avg": rollup.avg(),
        "last": rollup.last,
        "count": rollup.count,
    })
}

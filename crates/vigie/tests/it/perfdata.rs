//! Performance data as time series, end to end: passive results with perfdata sent as Icinga
//! and NRDP senders do become series readable through `GET /api/v1/checks/{id}/perfdata`,
//! scoped to the caller's client (another client's check is a 404, as an absent one), with
//! every bad parameter a 400 that names it; and, on the store with chosen timestamps, the
//! roll-ups (min, max, avg, last) of a bucket, a late point rebuilding its bucket, and
//! retention deleting what is old and keeping what is recent. Each test runs on SQLite and on
//! PostgreSQL.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vigie::store::Store;
use vigie::store::perfdata::{GraphPoints, PerfdataPoint, SeriesIds};
use vigie::store::scratch::ScratchDatabase;
use vigie::store::{Scope, perfdata::SeriesGraph};
use vigie::supervision::perfdata::maintain_perfdata;
use vigie_core::check::series::{FIVE_MINUTES_MS, HOUR_MS, Resolution, Retention, Rollup, Step};

use crate::support::{Engine, TestServer, database, serve_estate};

const DAY_MS: i64 = 86_400_000;

macro_rules! on_sqlite_and_postgres {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::support::Engine::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::support::Engine::Postgres).await;
                }
            )*
        }
    };
}

on_sqlite_and_postgres!(
    passive_perfdata_becomes_series_that_only_its_client_reads,
    bad_perfdata_parameters_answer_400_naming_the_parameter,
    rollups_keep_min_max_avg_and_last_of_each_bucket,
    a_late_point_rebuilds_its_bucket,
    points_with_and_without_bounds_are_written_in_any_order,
    retention_deletes_old_points_and_keeps_recent_ones,
);

/// The estate of the API tests: two clients, `acme` with a passive check.
const ESTATE: &str = "\
id: acme
name: acme
assets:
  - id: srv
    kind: host
    criticality: 4
    hostnames: [srv.acme.example]
    addresses: [127.0.40.1]
    checks:
      - name: ping
        kind: passive
        freshness: 1h
        max_check_attempts: 1
---
id: bellevue-clinic
name: bellevue-clinic
assets:
  - id: web
    kind: host
    criticality: 2
    addresses: [127.0.40.2]
    checks:
      - name: ping
        kind: passive
        freshness: 1h
";

/// The API tests' server over `ESTATE`.
async fn harness(engine: Engine) -> Option<TestServer> {
    serve_estate(engine, ESTATE).await
}

/// Polls the perfdata of a check until `wanted` holds (points are written by their own task,
/// just after the check's state); fails after 20 s with the last answer.
async fn perfdata_until(server: &TestServer, path: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = server.get(&server.admin, path).await;
        if status == StatusCode::OK && wanted(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {path}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn series<'a>(body: &'a Value, label: &str) -> &'a Value {
    body["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|series| series["label"] == label)
        .unwrap_or_else(|| panic!("no series {label} in {body}"))
}

async fn passive_perfdata_becomes_series_that_only_its_client_reads(engine: Engine) {
    let Some(harness) = harness(engine).await else {
        return;
    };
    let ingest = harness.token("ingest", Some("acme")).await;
    // Icinga 2's process-check-result with its performance_data array.
    let (status, body) = harness
        .post(
            &ingest,
            "/v1/actions/process-check-result?service=srv.acme.example!ping",
            json!({"exit_status": 0, "plugin_output": "PING OK",
                "performance_data": ["rta=5.5ms;100;200;0", "pl=0%;20;60;0;100"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let path = "/api/v1/checks/acme:srv:ping/perfdata?step=raw";
    let body = perfdata_until(&harness, path, |body| {
        // Series are created just before their points' transaction: wait for the points.
        body["series"].as_array().is_some_and(|s| {
            s.len() == 2
                && s.iter()
                    .all(|s| s["points"].as_array().is_some_and(|p| !p.is_empty()))
        })
    })
    .await;
    assert_eq!(body["check"], "acme:srv:ping");
    let rta = series(&body, "rta");
    assert_eq!(rta["unit"], "ms");
    assert_eq!(rta["resolution"], "raw");
    assert_eq!(rta["points"].as_array().unwrap().len(), 1);
    assert_eq!(rta["points"][0][1], 5.5);
    assert_eq!(series(&body, "pl")["unit"], "%");
    // NRDP: the perfdata after `|` in the output.
    let (status, body) = harness
        .post(
            &ingest,
            "/api/v1/passive/nrdp",
            json!({"checkresults": [{"checkresult": {"type": "service"}, "hostname": "srv",
                "servicename": "ping", "state": "0", "output": "PING OK | rta=7.5ms;100;200;0 pl=0%;20;60;0;100"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body = perfdata_until(&harness, &format!("{path}&label=rta"), |body| {
        body["series"][0]["points"]
            .as_array()
            .is_some_and(|p| p.len() == 2)
    })
    .await;
    assert_eq!(
        body["series"].as_array().unwrap().len(),
        1,
        "one label asked"
    );
    let values: Vec<f64> = body["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect();
    assert_eq!(values, [5.5, 7.5]);
    // `auto` over the last day: raw points are kept and few, so raw.
    let (status, body) = harness
        .get(
            &harness.admin,
            "/api/v1/checks/acme:srv:ping/perfdata?label=rta",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["series"][0]["resolution"], "raw");
    // 5-minute buckets reach the present before any roll-up is built.
    let (status, body) = harness
        .get(
            &harness.admin,
            "/api/v1/checks/acme:srv:ping/perfdata?label=rta&step=5m",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let buckets = body["series"][0]["points"].as_array().unwrap();
    let count: i64 = buckets.iter().map(|b| b["count"].as_i64().unwrap()).sum();
    assert_eq!(count, 2, "{body}");
    assert_eq!(buckets.last().unwrap()["last"], 7.5);

    // The check's own client reads it; another client's token gets the 404 of an absent check.
    let acme = harness.token("client", Some("acme")).await;
    let (status, body) = harness.get(&acme, path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["series"].as_array().unwrap().len(), 2);
    let other = harness.token("client", Some("bellevue-clinic")).await;
    let (status, hidden) = harness.get(&other, path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{hidden}");
    let (status, absent) = harness
        .get(&other, "/api/v1/checks/acme:srv:nope/perfdata?step=raw")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{absent}");
    assert_eq!(hidden["error"]["code"], absent["error"]["code"]);
    // Its own check, without perfdata, has no series.
    let (status, body) = harness
        .get(&other, "/api/v1/checks/bellevue-clinic:web:ping/perfdata")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["series"], json!([]));
    harness.stop().await;
}

async fn bad_perfdata_parameters_answer_400_naming_the_parameter(engine: Engine) {
    let Some(harness) = harness(engine).await else {
        return;
    };
    let base = "/api/v1/checks/acme:srv:ping/perfdata";
    for (query, named) in [
        ("step=10m", "`step`"),
        ("from=yesterday", "`from`"),
        ("to=2026-13-01T00:00:00Z", "`to`"),
        ("from=2000&to=1000", "`from`"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = harness
            .get(&harness.admin, &format!("{base}?{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{query}: {message}");
    }
    // Both time forms are accepted.
    let (status, body) = harness
        .get(
            &harness.admin,
            &format!("{base}?from=2026-01-01T00:00:00Z&to=1767261600000&step=1h"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["from"], 1_767_225_600_000_i64);
    assert_eq!(body["to"], 1_767_261_600_000_i64);
    harness.stop().await;
}

// ---- the store, with chosen timestamps ------------------------------------------------------

/// 2026-01-01T10:00:00Z, on the hour.
const T0: i64 = 1_767_261_600_000;

async fn store(engine: Engine) -> Option<(Store, ScratchDatabase)> {
    let db = database(engine).await?;
    let store = Store::open(&db.url).await.expect("the store opens");
    Some((store, db))
}

fn point(check: &str, label: &str, time_ms: i64, value: f64) -> PerfdataPoint {
    let client = check.split(':').next().unwrap().to_owned();
    PerfdataPoint {
        check_id: check.to_owned(),
        client,
        label: label.to_owned(),
        unit: "ms".to_owned(),
        time_ms,
        value,
        warn: Some("100".to_owned()),
        crit: Some("@10:200".to_owned()),
        min: Some(0.0),
        max: None,
    }
}

async fn graph(store: &Store, step: Step, from: i64, to: i64, now: i64) -> Vec<SeriesGraph> {
    store
        .perfdata_graph(
            &Scope::All,
            "acme:srv:ping",
            Some("rta"),
            from,
            to,
            step,
            &Retention::default(),
            now,
        )
        .await
        .unwrap()
}

fn rollups(graph: &[SeriesGraph]) -> Vec<Rollup> {
    match &graph[0].points {
        GraphPoints::Rollups(rollups) => rollups.clone(),
        other => panic!("roll-ups expected, got {other:?}"),
    }
}

async fn rollups_keep_min_max_avg_and_last_of_each_bucket(engine: Engine) {
    let Some((store, _db)) = store(engine).await else {
        return;
    };
    let mut ids = SeriesIds::default();
    // 10:00–10:05: 4, 10, -2 (the last by time is 10:04's 4); 10:05–10:10: 7.
    let points = vec![
        point("acme:srv:ping", "rta", T0 + 240_000, 4.0),
        point("acme:srv:ping", "rta", T0, 10.0),
        point("acme:srv:ping", "rta", T0 + 60_000, -2.0),
        point("acme:srv:ping", "rta", T0 + 300_000, 7.0),
        point("bellevue-clinic:web:ping", "rta", T0, 99.0),
    ];
    store.put_perfdata(&mut ids, &points).await.unwrap();
    // The 5-minute buckets of 10:00 and 10:05, by the roll-up function itself.
    let max_series = store.perfdata_max_series_id().await.unwrap();
    let written = store
        .rollup_perfdata(
            Resolution::FiveMinutes,
            (0, max_series),
            T0,
            T0 + 2 * FIVE_MINUTES_MS,
        )
        .await
        .unwrap();
    assert_eq!(written, 3, "two buckets of acme, one of bellevue-clinic");
    store
        .set_perfdata_rolled_until(FIVE_MINUTES_MS, T0 + 2 * FIVE_MINUTES_MS)
        .await
        .unwrap();
    let stored = store
        .perfdata_series(&Scope::Client("acme".into()), "acme:srv:ping", None)
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        1,
        "the other client's series is not in acme's scope"
    );
    let first = store
        .perfdata_rollups(stored[0].id, FIVE_MINUTES_MS, T0, T0 + HOUR_MS, 100)
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let bucket = first[0];
    assert_eq!(bucket.bucket_ms, T0);
    assert_eq!((bucket.min, bucket.max, bucket.avg()), (-2.0, 10.0, 4.0));
    assert_eq!(
        (bucket.count, bucket.last, bucket.last_ms),
        (3, 4.0, T0 + 240_000)
    );
    assert_eq!((first[1].bucket_ms, first[1].last), (T0 + 300_000, 7.0));

    // The hour, from the 5-minute roll-ups.
    store
        .rollup_perfdata(Resolution::Hourly, (0, max_series), T0, T0 + HOUR_MS)
        .await
        .unwrap();
    let hour = store
        .perfdata_rollups(stored[0].id, HOUR_MS, T0, T0 + HOUR_MS, 100)
        .await
        .unwrap();
    assert_eq!(hour.len(), 1);
    assert_eq!((hour[0].min, hour[0].max, hour[0].count), (-2.0, 10.0, 4));
    assert_eq!((hour[0].sum, hour[0].last), (19.0, 7.0));

    // Through the graph: stored buckets, then the not-yet-built 10:10 bucket from raw points.
    store
        .put_perfdata(
            &mut ids,
            &[point("acme:srv:ping", "rta", T0 + 660_000, 1.0)],
        )
        .await
        .unwrap();
    let now = T0 + 700_000;
    let five = rollups(&graph(&store, Step::Fixed(Resolution::FiveMinutes), T0, now, now).await);
    let buckets: Vec<(i64, i64)> = five.iter().map(|r| (r.bucket_ms, r.count)).collect();
    assert_eq!(buckets, [(T0, 3), (T0 + 300_000, 1), (T0 + 600_000, 1)]);
    // `auto` over a day that raw points no longer cover: 5-minute roll-ups.
    let day = graph(&store, Step::Auto, T0 - DAY_MS, now, T0 + 3 * DAY_MS).await;
    assert_eq!(day[0].resolution, "5m");
    assert_eq!(rollups(&day).len(), 3);
    store.close().await;
}

/// A point without `min`/`max` then one with them, through the same statement shape: on
/// PostgreSQL a statement prepared with a NULL there must not refuse the next call's number.
async fn points_with_and_without_bounds_are_written_in_any_order(engine: Engine) {
    let Some((store, _db)) = store(engine).await else {
        return;
    };
    let mut ids = SeriesIds::default();
    // Each of the pool's connections prepares the statement with NULLs first.
    for round in 0..16 {
        let mut unbounded = point("acme:srv:ping", "pl", T0 + round * 10, 0.0);
        unbounded.min = None;
        store.put_perfdata(&mut ids, &[unbounded]).await.unwrap();
    }
    for round in 0..16 {
        let mut bounded = point("acme:srv:ping", "pl", T0 + round * 10 + 5, 20.0);
        bounded.max = Some(100.0);
        store.put_perfdata(&mut ids, &[bounded]).await.unwrap();
    }
    let graph = store
        .perfdata_graph(
            &Scope::All,
            "acme:srv:ping",
            Some("pl"),
            T0 - 1,
            T0 + 2_000,
            Step::Fixed(Resolution::Raw),
            &Retention::default(),
            T0 + 2_000,
        )
        .await
        .unwrap();
    let values: Vec<f64> = match &graph[0].points {
        GraphPoints::Raw(points) => points.iter().map(|point| point.1).collect(),
        other => panic!("raw points expected, got {other:?}"),
    };
    assert_eq!(values, [0.0, 20.0].repeat(16));
    store.close().await;
}

async fn a_late_point_rebuilds_its_bucket(engine: Engine) {
    let Some((store, _db)) = store(engine).await else {
        return;
    };
    let mut ids = SeriesIds::default();
    store
        .put_perfdata(&mut ids, &[point("acme:srv:ping", "rta", T0 + 1_000, 5.0)])
        .await
        .unwrap();
    let now = T0 + HOUR_MS + 2 * FIVE_MINUTES_MS;
    let report = maintain_perfdata(&store, &Retention::default(), now, i64::MAX)
        .await
        .unwrap();
    assert!(
        report.rollups >= 2,
        "the 5-minute bucket and its hour: {report:?}"
    );
    assert_eq!(report.rolled_until_ms, T0 + HOUR_MS + FIVE_MINUTES_MS);
    // A passive result sent late lands in the built 10:00 bucket.
    store
        .put_perfdata(&mut ids, &[point("acme:srv:ping", "rta", T0 + 2_000, 1.0)])
        .await
        .unwrap();
    maintain_perfdata(&store, &Retention::default(), now, T0 + 2_000)
        .await
        .unwrap();
    let series = store
        .perfdata_series(&Scope::All, "acme:srv:ping", Some("rta"))
        .await
        .unwrap();
    let five = store
        .perfdata_rollups(series[0].id, FIVE_MINUTES_MS, T0, T0 + FIVE_MINUTES_MS, 10)
        .await
        .unwrap();
    assert_eq!((five[0].count, five[0].min, five[0].last), (2, 1.0, 1.0));
    let hour = store
        .perfdata_rollups(series[0].id, HOUR_MS, T0, T0 + HOUR_MS, 10)
        .await
        .unwrap();
    assert_eq!((hour[0].count, hour[0].max), (2, 5.0));
    store.close().await;
}

async fn retention_deletes_old_points_and_keeps_recent_ones(engine: Engine) {
    let Some((store, _db)) = store(engine).await else {
        return;
    };
    let mut ids = SeriesIds::default();
    let now = T0 + 10 * DAY_MS;
    // One point every 6 hours over 10 days.
    let points: Vec<PerfdataPoint> = (0..40)
        .map(|i| point("acme:srv:ping", "rta", T0 + i * 6 * HOUR_MS, i as f64))
        .collect();
    store.put_perfdata(&mut ids, &points).await.unwrap();
    // Roll-ups over the whole 10 days (the 2-day default would only see the last 2).
    let long = Retention {
        raw_ms: 11 * DAY_MS,
        ..Retention::default()
    };
    maintain_perfdata(&store, &long, now, i64::MAX)
        .await
        .unwrap();
    let series = store
        .perfdata_series(&Scope::All, "acme:srv:ping", None)
        .await
        .unwrap();
    let id = series[0].id;
    let hours = store
        .perfdata_rollups(id, HOUR_MS, 0, i64::MAX, 1_000)
        .await
        .unwrap();
    assert_eq!(hours.len(), 40);
    // Then the default retention, shortened for the roll-ups: raw 2 days, 5-minute 3 days,
    // hourly 5 days.
    let short = Retention {
        raw_ms: 2 * DAY_MS,
        five_minutes_ms: 3 * DAY_MS,
        hourly_ms: 5 * DAY_MS,
    };
    let report = maintain_perfdata(&store, &short, now, i64::MAX)
        .await
        .unwrap();
    assert_eq!(
        report.deleted,
        (40 - 8) + (40 - 12) + (40 - 20),
        "{report:?}"
    );
    let raw = store.perfdata_raw(id, 0, i64::MAX, 1_000).await.unwrap();
    assert_eq!(raw.len(), 8, "the last 2 days, every 6 hours");
    assert_eq!(raw[0].0, now - 2 * DAY_MS);
    let five = store
        .perfdata_rollups(id, FIVE_MINUTES_MS, 0, i64::MAX, 1_000)
        .await
        .unwrap();
    assert_eq!(five.len(), 12);
    let hours = store
        .perfdata_rollups(id, HOUR_MS, 0, i64::MAX, 1_000)
        .await
        .unwrap();
    assert_eq!(hours.len(), 20);
    assert_eq!(hours[0].bucket_ms, now - 5 * DAY_MS);
    store.close().await;
}

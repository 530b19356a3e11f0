//! `POST /api/v1/events`: what is accepted, what is refused, and that a refused batch keeps
//! nothing.

use std::io::Write;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_engines;
use crate::support::TestServer;

on_both_engines!(
    an_error_event_becomes_an_alert_and_an_incident,
    ndjson_and_gzip_bodies_are_accepted,
    a_malformed_batch_is_rejected_whole_with_each_problem,
    bad_tokens_and_bodies_get_clear_errors,
    a_batch_that_fails_to_commit_is_refused_and_the_pipeline_goes_on,
);

async fn event_count(server: &TestServer) -> usize {
    let (_, body) = server.get(&server.admin, "/api/v1/events?limit=1000").await;
    body["events"].as_array().unwrap().len()
}

async fn an_error_event_becomes_an_alert_and_an_incident(server: &TestServer) {
    let ingest = server.token("ingest", Some("acme-industrie")).await;
    let (status, body) = server
        .ingest(
            &ingest,
            json!([{"client": "acme-industrie", "asset": "lyo-erp-db01", "severity": "critical",
                    "message": "database lyo-erp-db01 is down", "dbname": "erp"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 1);

    // The answer comes after the commit: everything is readable at once.
    let (_, events) = server
        .get(&server.admin, "/api/v1/events?client=acme-industrie")
        .await;
    let event = &events["events"][0];
    assert_eq!(event["message"], "database lyo-erp-db01 is down");
    assert_eq!(event["severity"], "critical");
    assert_eq!(event["fields"]["dbname"], "erp");
    assert_eq!(event["source"], "http");

    let (_, incidents) = server
        .get(&server.admin, "/api/v1/incidents?client=acme-industrie")
        .await;
    let incidents = incidents["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1);
    let incident = &incidents[0];
    assert_eq!(incident["status"], "new");
    assert_eq!(incident["assets"], json!(["lyo-erp-db01"]));
    // Criticality 5 (high impact) × critical (high urgency) = P1.
    assert_eq!(incident["priority"], "P1");
    let id = incident["id"].as_i64().unwrap();

    let (_, alerts) = server
        .get(&server.admin, &format!("/api/v1/incidents/{id}/alerts"))
        .await;
    assert_eq!(alerts["alerts"][0]["rule"], "severity-error");
    assert_eq!(alerts["alerts"][0]["count"], 1);
    assert_eq!(alerts["alerts"][0]["last_event_id"], event["id"]);

    // The same problem again: the alert counts it, no new incident.
    let (status, _) = server
        .ingest(
            &ingest,
            json!([{"client": "acme-industrie", "asset": "lyo-erp-db01", "severity": "critical",
                    "message": "database lyo-erp-db01 is down"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, alerts) = server
        .get(&server.admin, &format!("/api/v1/incidents/{id}/alerts"))
        .await;
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(alerts["alerts"][0]["count"], 2);
    let (_, incidents) = server.get(&server.admin, "/api/v1/incidents").await;
    assert_eq!(incidents["incidents"].as_array().unwrap().len(), 1);

    let (_, timeline) = server
        .get(&server.admin, &format!("/api/v1/incidents/{id}/timeline"))
        .await;
    assert_eq!(timeline["timeline"][0]["kind"], "created");
    assert_eq!(timeline["timeline"][0]["actor"], "vigie");

    // An info event is stored and raises nothing.
    server
        .ingest(
            &ingest,
            json!({"client": "acme-industrie", "message": "backup finished"}),
        )
        .await;
    let (_, alerts) = server.get(&server.admin, "/api/v1/alerts").await;
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 1);
}

async fn ndjson_and_gzip_bodies_are_accepted(server: &TestServer) {
    let ndjson = "{\"client\":\"acme-industrie\",\"message\":\"one\"}\n\n{\"client\":\"acme-industrie\",\"message\":\"two\",\"time\":\"2026-11-27T10:00:00Z\"}\n";
    let (status, body) = server
        .ingest_raw(
            &server.admin,
            ndjson,
            &[("content-type", "application/x-ndjson")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 2);

    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..100 {
        writeln!(
            encoder,
            "{{\"client\":\"bellevue-clinic\",\"message\":\"gz {i}\"}}"
        )
        .unwrap();
    }
    let gz = encoder.finish().unwrap();
    let (status, body) = server
        .ingest_raw(&server.admin, gz, &[("content-encoding", "gzip")])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 100);
    assert_eq!(event_count(server).await, 102);
    let (_, timed) = server.get(&server.admin, "/api/v1/events?q=two").await;
    assert_eq!(timed["events"][0]["time_ms"], 1_795_773_600_000i64);
}

async fn a_malformed_batch_is_rejected_whole_with_each_problem(server: &TestServer) {
    let ndjson = [
        r#"{"client":"acme-industrie","message":"fine"}"#,
        r#"{"client":"acme-industrie"}"#,
        r#"{"client":"acme-industrie","message":"m","severity":"loud"}"#,
        r#"not json"#,
        r#"{"client":"no-such-client","message":"m"}"#,
        r#"{"client":"acme-industrie","message":"m","time":"yesterday"}"#,
    ]
    .join("\n");
    let (status, body) = server.ingest_raw(&server.admin, ndjson, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_request");
    assert_eq!(
        body["error"]["message"],
        "5 of the batch's events are invalid; nothing was accepted"
    );
    let details = body["error"]["details"].as_array().unwrap();
    let lines: Vec<i64> = details
        .iter()
        .map(|d| d["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6]);
    assert_eq!(details[0]["error"], "field `message`: is required");
    assert_eq!(
        details[3]["error"],
        "field `client`: unknown client \"no-such-client\""
    );
    assert!(
        details[2]["error"]
            .as_str()
            .unwrap()
            .starts_with("not JSON: "),
        "{}",
        details[2]
    );

    let (status, body) = server
        .ingest(
            &server.admin,
            json!([{"client": "acme-industrie", "message": "ok"}, {"message": 3}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["details"],
        json!([{"index": 1, "error": "field `client`: is required"}])
    );

    // An ingest token sends for its own client only.
    let ingest = server.token("ingest", Some("bellevue-clinic")).await;
    let (status, body) = server
        .ingest(
            &ingest,
            json!([{"client": "acme-industrie", "message": "spoof"}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["details"][0]["error"],
        "field `client`: this token sends events for client \"bellevue-clinic\" only, not \"acme-industrie\""
    );
    assert_eq!(
        event_count(server).await,
        0,
        "nothing of a rejected batch is kept"
    );
}

async fn bad_tokens_and_bodies_get_clear_errors(server: &TestServer) {
    let event = json!([{"client": "acme-industrie", "message": "m"}]);
    let (status, body) = server
        .ingest(
            "vg_000000000000_00000000000000000000000000000000",
            event.clone(),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("unauthorized"))
    );
    let (status, _) = server.ingest("garbage", event.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = server
        .http
        .post(format!("{}/api/v1/events", server.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // A revoked token stops working at once.
    let ingest = server.token("ingest", Some("acme-industrie")).await;
    assert_eq!(
        server.ingest(&ingest, event.clone()).await.0,
        StatusCode::OK
    );
    let id = &ingest[3..15];
    let response = server
        .http
        .delete(format!("{}/api/v1/tokens/{id}", server.url))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        server.ingest(&ingest, event.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );

    // A client's read-only token may not ingest.
    let reader = server.token("client", Some("acme-industrie")).await;
    let (status, body) = server.ingest(&reader, event.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );

    let (status, body) = server.ingest_raw(&server.admin, "   \n", &[]).await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (StatusCode::BAD_REQUEST, json!("the body holds no events"))
    );
    let (status, _) = server.ingest_raw(&server.admin, "[{\"client\":", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = server
        .ingest_raw(&server.admin, "not gzip", &[("content-encoding", "gzip")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = server
        .ingest_raw(&server.admin, "{}", &[("content-encoding", "br")])
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!("unsupported_media_type")
        )
    );

    // 33 MiB: over the 32 MiB limit.
    let line = format!(
        "{{\"client\":\"acme-industrie\",\"message\":\"{}\"}}\n",
        "x".repeat(1000)
    );
    let huge: String = line.repeat(33 * 1024 * 1024 / line.len() + 1);
    let (status, body) = server.ingest_raw(&server.admin, huge, &[]).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::PAYLOAD_TOO_LARGE, json!("payload_too_large"))
    );
    // A gzip bomb is cut at the decoded limit.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![b' '; 129 * 1024 * 1024]).unwrap();
    let bomb = encoder.finish().unwrap();
    let (status, _) = server
        .ingest_raw(&server.admin, bomb, &[("content-encoding", "gzip")])
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // The test server's queue holds 5,000 events: a bigger batch could never be admitted.
    let batch: String = (0..5_001)
        .map(|i| format!("{{\"client\":\"acme-industrie\",\"message\":\"{i}\"}}\n"))
        .collect();
    let (status, body) = server.ingest_raw(&server.admin, batch, &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body["error"]["message"],
        "a batch of 5001 events is larger than the whole ingest queue (5000): split it"
    );

    let (status, body) = server.get(&server.admin, "/api/v1/events?limit=5000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "parameter `limit`: 5000 is not between 1 and 1000"
    );
    let (status, _) = server.get(&server.admin, "/api/v1/events?color=blue").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let _: Value = body;
}

/// Makes the store refuse every event whose message is `poison`, as a failing disk or a
/// constraint would: a trigger aborts the transaction that inserts one.
async fn poison_the_store(server: &TestServer) {
    sqlx::any::install_default_drivers();
    let url = server.database_url();
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let statements: &[&str] = if url.starts_with("sqlite") {
        &[
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.message = 'poison' \
           BEGIN SELECT RAISE(ABORT, 'poisoned event'); END",
        ]
    } else {
        &[
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.message = 'poison' THEN RAISE EXCEPTION 'poisoned event'; END IF; \
             RETURN NEW; END $$",
            "CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION poison()",
        ]
    };
    for statement in statements {
        sqlx::Executor::execute(&mut connection, *statement)
            .await
            .unwrap();
    }
    sqlx::Connection::close(connection).await.unwrap();
}

/// A batch whose commit fails is answered with an error and keeps nothing — neither its
/// events nor what they did to the incidents — while the batches around it, sent at the same
/// time, are either kept whole (2xx) or refused whole; then the pipeline goes on.
async fn a_batch_that_fails_to_commit_is_refused_and_the_pipeline_goes_on(server: &TestServer) {
    poison_the_store(server).await;
    let ingest = server.token("ingest", Some("acme-industrie")).await;
    let send = |message: String| {
        let ingest = ingest.clone();
        async move {
            let body = json!([{"client": "acme-industrie", "asset": "lyo-erp-db01",
                "severity": "error", "message": message}]);
            let (status, answer) = server.ingest(&ingest, body).await;
            (message, status, answer)
        }
    };
    let messages: Vec<String> = (0..40)
        .map(|i| match i {
            20 => "poison".to_owned(),
            _ => format!("disk {i} failing"),
        })
        .collect();
    let results = futures_util::future::join_all(messages.into_iter().map(send)).await;
    let mut accepted = std::collections::BTreeSet::new();
    for (message, status, answer) in &results {
        match status.as_u16() {
            200 => {
                accepted.insert(message.clone());
            }
            500..=599 => {}
            other => panic!("{message}: unexpected status {other}: {answer}"),
        }
        if message == "poison" {
            assert!(
                status.is_server_error(),
                "the poisoned batch: {status} {answer}"
            );
        }
    }

    // What was acknowledged is stored, and nothing else.
    let (_, events) = server
        .get(
            &server.admin,
            "/api/v1/events?client=acme-industrie&limit=1000",
        )
        .await;
    let stored: std::collections::BTreeSet<String> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored, accepted);
    // The alert counts the accepted events only: the book was rebuilt from the store.
    let signals = |alerts: &Value| -> u64 {
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|alert| alert["asset"] == "lyo-erp-db01" && alert["source"] == "http")
            .map(|alert| alert["count"].as_u64().unwrap())
            .sum()
    };
    let (_, alerts) = server
        .get(
            &server.admin,
            "/api/v1/alerts?client=acme-industrie&limit=1000",
        )
        .await;
    assert_eq!(signals(&alerts), accepted.len() as u64, "{alerts}");

    // The pipeline goes on.
    let (_, status, answer) = send("disk 40 failing".to_owned()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, alerts) = server
        .get(
            &server.admin,
            "/api/v1/alerts?client=acme-industrie&limit=1000",
        )
        .await;
    assert_eq!(signals(&alerts), accepted.len() as u64 + 1, "{alerts}");
}

//! The operator's actions on incidents, the estate over the API, and the house endpoints.

use reqwest::StatusCode;
use serde_json::json;

use crate::on_both_engines;
use crate::support::TestServer;

on_both_engines!(
    acknowledge_comment_resolve_close_with_a_timeline,
    estate_additions_survive_a_reload,
    health_metrics_and_openapi_are_served,
);

async fn open_incident(server: &TestServer, client: &str, asset: &str) -> i64 {
    let (status, body) = server
        .ingest(&server.admin, json!([{"client": client, "asset": asset, "severity": "error", "message": format!("{asset} failing")}]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, incidents) = server
        .get(&server.admin, &format!("/api/v1/incidents?client={client}"))
        .await;
    incidents["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["assets"] == json!([asset]))
        .expect("an incident for the asset")["id"]
        .as_i64()
        .unwrap()
}

async fn acknowledge_comment_resolve_close_with_a_timeline(server: &TestServer) {
    let id = open_incident(server, "acme-industrie", "lyo-fs01").await;
    let operator = server.token("operator", None).await;
    let client = server.token("client", Some("acme-industrie")).await;

    let (status, body) = server
        .post(&client, &format!("/api/v1/incidents/{id}/ack"), json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );

    let (status, incident) = server
        .post(&operator, &format!("/api/v1/incidents/{id}/ack"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{incident}");
    assert_eq!(incident["status"], "acknowledged");
    let (status, body) = server
        .post(&operator, &format!("/api/v1/incidents/{id}/ack"), json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "acknowledging twice is refused: {body}"
    );

    let (status, _) = server
        .post(
            &client,
            &format!("/api/v1/incidents/{id}/comment"),
            json!({"text": "we see it too"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .post(
            &operator,
            &format!("/api/v1/incidents/{id}/comment"),
            json!({"text": "  "}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (
            StatusCode::BAD_REQUEST,
            json!("field `text`: a comment cannot be empty")
        )
    );
    let (status, _) = server
        .post(
            &operator,
            &format!("/api/v1/incidents/{id}/comment"),
            json!({"txt": "typo"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, incident) = server
        .post(
            &operator,
            &format!("/api/v1/incidents/{id}/reassign"),
            json!({"assignee": "l2-systems"}),
        )
        .await;
    assert_eq!(incident["assignee"], "l2-systems");
    let (_, incident) = server
        .post(
            &operator,
            &format!("/api/v1/incidents/{id}/resolve"),
            json!({}),
        )
        .await;
    assert_eq!(incident["status"], "resolved");
    let (_, alerts) = server
        .get(&operator, &format!("/api/v1/incidents/{id}/alerts"))
        .await;
    assert_eq!(alerts["alerts"][0]["status"], "resolved");
    let (_, incident) = server
        .post(
            &operator,
            &format!("/api/v1/incidents/{id}/close"),
            json!({}),
        )
        .await;
    assert_eq!(incident["status"], "closed");
    let (status, body) = server
        .post(
            &operator,
            &format!("/api/v1/incidents/{id}/resolve"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (
            StatusCode::CONFLICT,
            json!(format!("incident {id} is closed"))
        )
    );

    let (_, timeline) = server
        .get(&client, &format!("/api/v1/incidents/{id}/timeline"))
        .await;
    let kinds: Vec<&str> = timeline["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "created",
            // The responder: why this priority, the route to a team, the first page.
            "priority_changed",
            "escalated",
            "escalated",
            "acknowledged",
            "comment",
            "reassigned",
            "resolved",
            "closed"
        ]
    );
    let actors: Vec<&str> = timeline["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        actors,
        vec![
            "vigie",
            "vigie",
            "vigie",
            "vigie",
            "operator-all",
            "client-acme-industrie",
            "operator-all",
            "operator-all",
            "operator-all"
        ]
    );

    // The same problem after the close opens a new incident.
    let again = open_incident(server, "acme-industrie", "lyo-fs01").await;
    assert_ne!(again, id);

    let (status, _) = server
        .post(&operator, "/api/v1/incidents/999999/ack", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, filtered) = server
        .get(&operator, "/api/v1/incidents?status=closed")
        .await;
    assert_eq!(filtered["incidents"].as_array().unwrap().len(), 1);
    let (status, body) = server
        .get(&operator, "/api/v1/incidents?status=sleeping")
        .await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (
            StatusCode::BAD_REQUEST,
            json!("parameter `status`: unknown value \"sleeping\"")
        )
    );
}

async fn estate_additions_survive_a_reload(server: &TestServer) {
    let (status, asset) = server
        .post(
            &server.admin,
            "/api/v1/clients/bellevue-clinic/assets",
            json!({"id": "bel-pacs01", "kind": "application", "criticality": 5, "hostnames": ["bel-pacs01"], "tags": ["imaging"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{asset}");
    let (status, body) = server
        .post(
            &server.admin,
            "/api/v1/clients/bellevue-clinic/assets",
            json!({"id": "bel-pacs01", "kind": "application"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = server
        .post(
            &server.admin,
            "/api/v1/clients/bellevue-clinic/assets",
            json!({"id": "Bad Id", "kind": "host", "criticality": 9}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = server
        .post(
            &server.admin,
            "/api/v1/clients",
            json!({"id": "durand-logistique", "name": "Durand Logistique"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let operator = server.token("operator", None).await;
    let (status, _) = server
        .post(
            &operator,
            "/api/v1/clients",
            json!({"id": "x", "name": "X"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = server
        .post(&server.admin, "/api/v1/reload", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["clients"], 3);
    let (_, assets) = server
        .get(&server.admin, "/api/v1/assets?tag=imaging")
        .await;
    assert_eq!(assets["assets"][0]["id"], "bel-pacs01");
    assert_eq!(assets["assets"][0]["client"], "bellevue-clinic");
    // An event for the new client is accepted, and the new asset's criticality drives priority.
    let (status, _) = server
        .ingest(
            &server.admin,
            json!([{"client": "durand-logistique", "message": "hello"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _) = server
        .ingest(&server.admin, json!([{"client": "bellevue-clinic", "asset": "bel-pacs01", "severity": "critical", "message": "pacs down"}]))
        .await;
    let (_, incidents) = server
        .get(&server.admin, "/api/v1/incidents?client=bellevue-clinic")
        .await;
    assert_eq!(incidents["incidents"][0]["priority"], "P1");
}

async fn health_metrics_and_openapi_are_served(server: &TestServer) {
    let response = server
        .http
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server
        .ingest(
            &server.admin,
            json!([{"client": "acme-industrie", "message": "m"}]),
        )
        .await;
    let metrics = server
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("vigie_events_ingested_total{source=\"http\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE vigie_store_commit_seconds histogram"),
        "{metrics}"
    );
    assert!(metrics.contains("vigie_ingest_queue_events 0"), "{metrics}");
    // The ingested batch was applied by the writer: its time is in one of the two histograms.
    let applied: u64 = [
        "vigie_pipeline_apply_seconds_count ",
        "vigie_pipeline_apply_tick_seconds_count ",
    ]
    .iter()
    .map(|name| {
        let line = metrics
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}in {metrics}"));
        line[name.len()..].parse::<u64>().unwrap()
    })
    .sum();
    assert!(applied >= 1, "{metrics}");
    // On PostgreSQL no SQLite need be open; that SQLite's memory is counted is checked by
    // the store's tests.
    let sqlite_bytes: i64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("vigie_sqlite_memory_bytes "))
        .unwrap_or_else(|| panic!("no vigie_sqlite_memory_bytes in {metrics}"))
        .parse()
        .unwrap();
    assert!(sqlite_bytes >= 0, "{metrics}");
    let openapi: serde_json::Value = server
        .http
        .get(format!("{}/api/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    for path in [
        "/api/v1/events",
        "/api/v1/incidents",
        "/api/v1/incidents/{id}/ack",
        "/api/v1/stream",
        "/api/v1/tokens",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "{path} is described");
    }
    let (status, body) = server.get(&server.admin, "/api/v1/nowhere").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
}

//! Client isolation: a client's token sees its own client's data and nothing of another's,
//! not even whether it exists.

use reqwest::StatusCode;
use serde_json::json;

use crate::on_both_engines;
use crate::support::{SseReader, TestServer};

on_both_engines!(a_client_token_sees_only_its_client);

async fn a_client_token_sees_only_its_client(server: &TestServer) {
    for (client, asset) in [
        ("acme-industrie", "lyo-erp-db01"),
        ("bellevue-clinic", "bel-nas01"),
    ] {
        let (status, _) = server
            .ingest(&server.admin, json!([{"client": client, "asset": asset, "severity": "error", "message": format!("{client} secret")}]))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let bellevue = server.token("client", Some("bellevue-clinic")).await;
    let mut stream = SseReader::open(server, &bellevue, Some(0)).await;

    let (_, events) = server.get(&bellevue, "/api/v1/events").await;
    let clients: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["client"].as_str().unwrap())
        .collect();
    assert_eq!(clients, vec!["bellevue-clinic"]);
    let (_, events) = server
        .get(&bellevue, "/api/v1/events?client=acme-industrie")
        .await;
    assert_eq!(events["events"], json!([]));

    let (_, all) = server
        .get(&server.admin, "/api/v1/incidents?client=acme-industrie")
        .await;
    let acme_incident = all["incidents"][0]["id"].as_i64().unwrap();
    let (_, all) = server
        .get(&server.admin, "/api/v1/events?client=acme-industrie")
        .await;
    let acme_event = all["events"][0]["id"].as_i64().unwrap();
    let (_, all) = server
        .get(&server.admin, "/api/v1/alerts?client=acme-industrie")
        .await;
    let acme_alert = all["alerts"][0]["id"].as_i64().unwrap();

    let (_, incidents) = server.get(&bellevue, "/api/v1/incidents").await;
    let incidents = incidents["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["client"], "bellevue-clinic");
    let (_, alerts) = server.get(&bellevue, "/api/v1/alerts").await;
    assert!(
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["client"] == "bellevue-clinic")
    );

    // Everything of the other client answers 404, exactly as if it did not exist.
    for path in [
        format!("/api/v1/incidents/{acme_incident}"),
        format!("/api/v1/incidents/{acme_incident}/timeline"),
        format!("/api/v1/incidents/{acme_incident}/alerts"),
        format!("/api/v1/events/{acme_event}"),
        format!("/api/v1/alerts/{acme_alert}"),
        "/api/v1/clients/acme-industrie".to_owned(),
        "/api/v1/clients/acme-industrie/assets".to_owned(),
    ] {
        let (status, body) = server.get(&bellevue, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        let (missing, _) = server
            .get(
                &bellevue,
                &path.replace(&acme_incident.to_string(), "999999"),
            )
            .await;
        assert_eq!(missing, StatusCode::NOT_FOUND);
    }
    let (status, _) = server
        .post(
            &bellevue,
            &format!("/api/v1/incidents/{acme_incident}/comment"),
            json!({"text": "peek"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, clients) = server.get(&bellevue, "/api/v1/clients").await;
    assert_eq!(clients["clients"].as_array().unwrap().len(), 1);
    let (_, assets) = server.get(&bellevue, "/api/v1/assets").await;
    assert!(
        assets["assets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["client"] == "bellevue-clinic")
    );
    let (status, _) = server.get(&bellevue, "/api/v1/tokens").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The live stream replays and carries only this client's changes.
    server
        .ingest(&server.admin, json!([{"client": "acme-industrie", "asset": "lyo-fs01", "severity": "error", "message": "more acme"}]))
        .await;
    server
        .ingest(&server.admin, json!([{"client": "bellevue-clinic", "asset": "bel-fw01", "severity": "error", "message": "bellevue live"}]))
        .await;
    loop {
        let message = stream.next().await;
        assert_eq!(message.data["client"], "bellevue-clinic", "{message:?}");
        if message.event == "alert" && message.data["title"] == "bellevue live" {
            break;
        }
    }
}

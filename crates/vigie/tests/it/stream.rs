//! The live stream: changes arrive as they commit, and a reconnect with `Last-Event-ID`
//! resumes without gap or duplicate.

use reqwest::StatusCode;
use serde_json::json;

use crate::on_both_engines;
use crate::support::{SseReader, TestServer, eventually};

on_both_engines!(the_stream_carries_changes_and_resumes_after_a_reconnect);

async fn the_stream_carries_changes_and_resumes_after_a_reconnect(server: &TestServer) {
    let operator = server.token("operator", None).await;
    let mut live = SseReader::open(server, &operator, None).await;
    let (status, _) = server
        .ingest(&server.admin, json!([{"client": "acme-industrie", "asset": "lyo-mes01", "severity": "critical", "message": "MES down"}]))
        .await;
    assert_eq!(status, StatusCode::OK);
    let created = live.until("incident", |i| i["status"] == "new").await;
    let incident_id = created.data["id"].as_i64().unwrap();
    let alert = live.until("alert", |a| a["title"] == "MES down").await;
    assert_eq!(alert.data["incident_id"], incident_id);
    let timeline = live.until("timeline", |t| t["kind"] == "created").await;
    let last_seen = timeline.id.unwrap();
    drop(live);
    // The server notices the client left, without waiting for a change to send it.
    eventually("the stream's end to be noticed", || async {
        let metrics = server
            .http
            .get(format!("{}/metrics", server.url))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        metrics.contains("vigie_stream_subscribers 0").then_some(())
    })
    .await;

    // While nobody listens: an acknowledgement and a comment.
    server
        .post(
            &operator,
            &format!("/api/v1/incidents/{incident_id}/ack"),
            json!({}),
        )
        .await;
    server
        .post(
            &operator,
            &format!("/api/v1/incidents/{incident_id}/comment"),
            json!({"text": "on it"}),
        )
        .await;

    let mut resumed = SseReader::open(server, &operator, Some(last_seen)).await;
    let mut seen = Vec::new();
    loop {
        let message = resumed.next().await;
        assert!(message.id.unwrap() > last_seen, "no change is sent twice");
        let state = message
            .data
            .get("status")
            .or(message.data.get("kind"))
            .cloned();
        // What the responder wrote after the creation (priority, routing, first page, the
        // business service the MES server turns red, the incident still new) is not what
        // this test follows.
        let responder = message.event == "business_service"
            || (message.event == "timeline"
                && matches!(
                    message.data["kind"].as_str(),
                    Some("priority_changed" | "escalated" | "notified")
                ))
            || (message.event == "incident" && state == Some(json!("new")));
        if responder {
            continue;
        }
        seen.push((message.event.clone(), state));
        if seen.len() == 4 {
            break;
        }
    }
    assert_eq!(
        seen,
        vec![
            ("incident".into(), Some(json!("acknowledged"))),
            ("timeline".into(), Some(json!("acknowledged"))),
            ("incident".into(), Some(json!("acknowledged"))),
            ("timeline".into(), Some(json!("comment"))),
        ]
    );
    // And then live again, on the same connection.
    server
        .post(
            &operator,
            &format!("/api/v1/incidents/{incident_id}/resolve"),
            json!({}),
        )
        .await;
    let resolved = resumed
        .until("incident", |i| i["status"] == "resolved")
        .await;
    assert_eq!(resolved.data["id"], incident_id);

    let (status, body) = server
        .get(&operator, "/api/v1/stream?last_event_id=abc")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

//! Sigma rules in the running server: a detection becomes an alert carrying the rule's
//! metadata and author, and a lateral movement names both hosts.

use reqwest::StatusCode;
use serde_json::json;

use crate::on_both_engines;
use crate::support::TestServer;

on_both_engines!(sigma_detections_become_alerts_with_their_rule_and_author);

async fn sigma_detections_become_alerts_with_their_rule_and_author(server: &TestServer) {
    let ingest = server.token("ingest", Some("acme-industrie")).await;
    let shadow_delete = json!({
        "client": "acme-industrie", "asset": "lyo-erp-db01", "message": "process created",
        "Event": {"System": {"EventID": 1, "Computer": "lyo-erp-db01.acme.lan"},
                  "EventData": {"Image": "C:\\Windows\\System32\\vssadmin.exe",
                                "CommandLine": "vssadmin.exe Delete Shadows /All /Quiet"}}
    });
    let logon = json!({
        "client": "acme-industrie", "asset": "lyo-fs01", "message": "an account was logged on",
        "Event": {"System": {"EventID": 4624, "Computer": "lyo-fs01.acme.lan"},
                  "EventData": {"LogonType": 3, "IpAddress": "127.0.10.20", "TargetUserName": "adm-ops"}}
    });
    let harmless = json!({
        "client": "acme-industrie", "asset": "lyo-erp-db01", "message": "process created",
        "Event": {"System": {"EventID": 1}, "EventData": {"Image": "C:\\Windows\\System32\\vssadmin.exe", "CommandLine": "vssadmin list shadows"}}
    });
    let (status, body) = server
        .ingest(&ingest, json!([shadow_delete, logon, harmless]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (_, alerts) = server
        .get(&server.admin, "/api/v1/alerts?client=acme-industrie")
        .await;
    let alerts = alerts["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let ransomware = alerts
        .iter()
        .find(|a| a["title"] == "Shadow copies or backup catalog deleted")
        .expect("the ransomware alert");
    assert_eq!(ransomware["severity"], "critical");
    assert_eq!(ransomware["labels"]["author"], "Vigie");
    assert_eq!(ransomware["labels"]["level"], "critical");
    assert_eq!(
        ransomware["labels"]["tags"],
        json!(["attack.impact", "attack.t1490"])
    );
    assert_eq!(ransomware["asset"], "lyo-erp-db01");
    let lateral = alerts
        .iter()
        .find(|a| a["labels"]["lateral_movement"].is_object())
        .expect("the lateral-movement alert");
    assert_eq!(
        lateral["labels"]["lateral_movement"],
        json!({"source": "127.0.10.20", "target": "lyo-fs01.acme.lan"})
    );

    // A burst of renames on one host: one correlation alert, no alert per rename.
    let renames: Vec<serde_json::Value> = (0..120)
        .map(|i| json!({"client": "acme-industrie", "asset": "lyo-fs01", "category": "file_rename", "message": "file renamed",
                        "TargetFilename": format!("D:\\shares\\finance\\report-{i}.xlsx.lockbit")}))
        .collect();
    let (status, body) = server.ingest(&ingest, json!(renames)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, alerts) = server
        .get(&server.admin, "/api/v1/alerts?client=acme-industrie")
        .await;
    let alerts = alerts["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    let burst = alerts
        .iter()
        .find(|a| a["title"] == "Mass file renaming on one host")
        .expect("the burst alert");
    assert_eq!(burst["severity"], "critical");
    assert_eq!(burst["asset"], "lyo-fs01");
    assert_eq!(burst["labels"]["group"], json!({"asset": "lyo-fs01"}));
    assert_eq!(burst["labels"]["value"], json!(100.0));
    assert_eq!(burst["labels"]["author"], "Vigie");
    assert!(
        burst["last_event_id"].is_i64(),
        "the event that completed the burst is the evidence"
    );

    // Criticality-5 asset and a critical rule: the incident is P1.
    let (_, incidents) = server
        .get(
            &server.admin,
            "/api/v1/incidents?client=acme-industrie&priority=P1",
        )
        .await;
    let incident = &incidents["incidents"][0];
    assert_eq!(incident["title"], "Shadow copies or backup catalog deleted");
    assert_eq!(incident["assets"], json!(["lyo-erp-db01"]));
}

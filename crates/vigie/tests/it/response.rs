//! Qualify, escalate, notify, end to end: a check of a machine a business service depends on
//! goes CRITICAL through the real API; the service turns red and makes the incident P1 with
//! the reason in its timeline; level 1 gets the mail at once from a real SMTP server, level 2
//! after the policy's wait — also across a restart, exactly once; a ransomware alert on a
//! critical asset opens a crisis and calls the beacon receiver; a silence holds back the pages
//! of what it matches; another client's token sees none of it.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vigie::notify::{DeliveryConfig, SmtpConfig};
use vigie::server::{DetectionOptions, ServeOptions, start_with_delivery};
use vigie::store::scratch::{self, ScratchDatabase};
use vigie_core::notify::Backoff;

use super::notify_support::{SmtpSink, free_port, receiver, smtp_sink};
use super::support::{TestServer, eventually};

const ESTATE: &str = r#"
id: acme
name: ACME Industrie
contract: gold
incident_grouping: { by: [asset, rule], window: 30m }
assets:
  - { id: mes01, name: MES server, kind: host, criticality: 3, hostnames: [mes01],
      checks: [ { name: mes, kind: passive, freshness: 1h, max_check_attempts: 1 } ] }
  - { id: erp-db, name: ERP database, kind: host, criticality: 5, hostnames: [erp-db] }
  - { id: print01, name: Print server, kind: host, criticality: 1, hostnames: [print01],
      checks: [ { name: spooler, kind: passive, freshness: 1h, max_check_attempts: 1 } ] }
  - { id: line-2, name: Production line 2, kind: business_service, criticality: 5 }
dependencies:
  - { from: line-2, to: mes01 }
contacts:
  - { id: anna, name: Anna, email: anna@msp.example }
  - { id: tom, name: Tom, email: tom@msp.example, language: fr }
teams:
  - { id: l1, name: L1 supervision, level: 1, members: [anna] }
  - { id: l2-systems, name: L2 systems, level: 2, members: [tom] }
channels:
  - id: beacon
    kind: beacon
    url: RECEIVER/ok/beacon
    on: { method: POST, body: '{"state":"on"}' }
    off: { method: POST, body: '{"state":"off"}' }
escalation_policies:
  - id: systems
    name: Systems
    steps:
      - { notify: [ { team: l1 } ], wait: 3s }
      - { notify: [ { team: l2-systems } ], wait: 1h }
routing:
  - { match: {}, team: l1, policy: systems }
crisis: { beacon: [beacon] }
crisis_triggers:
  - id: ransomware-critical
    name: Ransomware on a critical asset
    when: { category: { category: ransomware, min_criticality: 4 } }
---
id: other
name: Other client
assets:
  - { id: line-9, name: Line 9, kind: business_service, criticality: 2 }
"#;

struct Cell {
    server: Option<TestServer>,
    estate_dir: PathBuf,
    delivery: DeliveryConfig,
    db_dir: PathBuf,
    db_url: String,
    _db: ScratchDatabase,
}

impl Cell {
    async fn start(receiver_url: &str, smtp: Option<&SmtpSink>) -> Cell {
        Cell::start_with(ESTATE, receiver_url, smtp).await
    }

    async fn start_with(estate: &str, receiver_url: &str, smtp: Option<&SmtpSink>) -> Cell {
        let db = scratch::sqlite();
        let estate_dir = db.dir.join("estate");
        std::fs::create_dir_all(&estate_dir).unwrap();
        std::fs::write(
            estate_dir.join("clients.yaml"),
            estate.replace("RECEIVER", receiver_url),
        )
        .unwrap();
        let delivery = DeliveryConfig {
            smtp: smtp.map(|smtp| SmtpConfig {
                url: smtp.url(),
                from: "Vigie <vigie@msp.example>".into(),
                username: None,
                password: None,
            }),
            backoff: Backoff {
                base_ms: 100,
                max_ms: 400,
            },
            http_timeout: Duration::from_secs(2),
            ..DeliveryConfig::default()
        };
        let mut cell = Cell {
            server: None,
            estate_dir,
            delivery,
            db_dir: db.dir.clone(),
            db_url: db.url.clone(),
            _db: db,
        };
        cell.boot().await;
        cell
    }

    async fn boot(&mut self) {
        let server = start_with_delivery(
            ServeOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                data_dir: self.db_dir.clone(),
                database: Some(self.db_url.clone()),
                estate_dir: self.estate_dir.clone(),
                alert_rules: None,
                syslog_udp: None,
                syslog_tcp: None,
                max_queued_events: 5_000,
                sigma_rules: vec![],
            },
            DetectionOptions::default(),
            self.delivery.clone(),
        )
        .await
        .expect("the server starts");
        self.server = Some(TestServer::over(server));
    }

    fn api(&self) -> &TestServer {
        self.server.as_ref().expect("running")
    }

    async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// A passive result in Icinga 2's format, at Icinga's own path.
    async fn result(&self, token: &str, service: &str, exit_status: i64, output: &str) {
        let (status, body) = self
            .api()
            .post(
                token,
                &format!("/v1/actions/process-check-result?service={service}"),
                json!({"exit_status": exit_status, "plugin_output": output}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn incident_of(&self, token: &str, asset: &str) -> Value {
        eventually(&format!("an incident on {asset}"), || async {
            let (_, body) = self.api().get(token, "/api/v1/incidents").await;
            body["incidents"]
                .as_array()?
                .iter()
                .find(|i| {
                    i["assets"]
                        .as_array()
                        .is_some_and(|a| a.contains(&json!(asset)))
                })
                .cloned()
        })
        .await
    }

    async fn timeline(&self, token: &str, incident: i64) -> Vec<String> {
        let (_, body) = self
            .api()
            .get(token, &format!("/api/v1/incidents/{incident}/timeline"))
            .await;
        body["timeline"]
            .as_array()
            .or_else(|| body.as_array())
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{}: {}",
                    e["kind"].as_str().unwrap_or(""),
                    e["text"].as_str().unwrap_or("")
                )
            })
            .collect()
    }
}

fn mails_to<'a>(messages: &'a [Value], address: &str) -> Vec<&'a Value> {
    messages
        .iter()
        .filter(|m| {
            m["rcpt_tos"]
                .as_array()
                .is_some_and(|r| r.contains(&json!(address)))
        })
        .collect()
}

#[tokio::test]
async fn a_stopped_service_pages_level_1_then_level_2_and_ransomware_opens_a_crisis() {
    let Some(smtp) = smtp_sink(free_port()).await else {
        return;
    };
    let (beacon, receiver_url) = receiver().await;
    let mut cell = Cell::start(&receiver_url, Some(&smtp)).await;
    let admin = cell.api().admin.clone();
    let ingest = cell.api().token("ingest", Some("acme")).await;
    let (status, services) = cell
        .api()
        .get(&admin, "/api/v1/business-services?client=acme")
        .await;
    assert_eq!(status, StatusCode::OK, "{services}");
    assert_eq!(services["business_services"][0]["id"], "line-2");
    assert_eq!(services["business_services"][0]["status"], "OK");

    // The MES service stops: its check goes CRITICAL.
    cell.result(
        &ingest,
        "mes01!mes",
        2,
        "CRITICAL - MES service is not running",
    )
    .await;
    let line = eventually("production line 2 turns red", || async {
        let (_, body) = cell
            .api()
            .get(&admin, "/api/v1/business-services?client=acme")
            .await;
        let line = body["business_services"][0].clone();
        (line["status"] == "CRITICAL").then_some(line)
    })
    .await;
    assert_eq!(line["causes"][0], "asset `mes01`", "{line}");
    let incident = cell.incident_of(&admin, "mes01").await;
    let id = incident["id"].as_i64().unwrap();
    // The MES server alone is of criticality 3 (medium impact): the business service makes it P1.
    let incident = eventually("the incident becomes P1", || async {
        let (_, body) = cell
            .api()
            .get(&admin, &format!("/api/v1/incidents/{id}"))
            .await;
        (body["priority"] == "P1").then_some(body)
    })
    .await;
    assert_eq!(incident["impact"], "high");
    let timeline = cell.timeline(&admin, id).await;
    assert!(
        timeline.iter().any(|e| e.starts_with("priority_changed")
            && e.contains("business service Production line 2 is CRITICAL (criticality 5)")),
        "{timeline:#?}"
    );

    // Level 1 is paged at once, by mail through the real SMTP server.
    let messages = smtp.wait_messages(1).await;
    let anna = mails_to(&messages, "anna@msp.example");
    assert_eq!(anna.len(), 1, "{messages:#?}");
    assert!(
        anna[0]["subject"].as_str().unwrap().contains("P1"),
        "{}",
        anna[0]["subject"]
    );
    assert!(anna[0]["html"].as_str().is_some() && anna[0]["text"].as_str().is_some());

    // Nobody acknowledges. The server is down when step 2 falls due; after the restart it
    // fires once, late, and says so.
    cell.stop().await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    cell.boot().await;
    let admin = cell.api().admin.clone();
    let messages = smtp.wait_messages(2).await;
    let tom = mails_to(&messages, "tom@msp.example");
    assert_eq!(tom.len(), 1, "{messages:#?}");
    // Tom reads French.
    assert!(
        tom[0]["text"].as_str().unwrap().contains("Priorité")
            || tom[0]["subject"].as_str().unwrap().contains("escalad"),
        "{}",
        tom[0]
    );
    let timeline = cell.timeline(&admin, id).await;
    assert!(
        timeline
            .iter()
            .any(|e| e.contains("notified team l2-systems") && e.contains("earlier")),
        "{timeline:#?}"
    );
    let (_, escalation) = cell
        .api()
        .get(&admin, &format!("/api/v1/incidents/{id}/escalation"))
        .await;
    assert_eq!(escalation["escalation"]["level"], 2, "{escalation}");
    // Acknowledged: the escalation stops.
    let (status, _) = cell
        .api()
        .post(&admin, &format!("/api/v1/incidents/{id}/ack"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, escalation) = cell
        .api()
        .get(&admin, &format!("/api/v1/incidents/{id}/escalation"))
        .await;
    assert_eq!(
        escalation["escalation"]["escalation"]["phase"],
        "acknowledged"
    );
    // The delivery log shows both mails delivered.
    let (_, log) = cell
        .api()
        .get(&admin, &format!("/api/v1/notifications?incident={id}"))
        .await;
    let delivered: Vec<&Value> = log["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["status"] == "delivered")
        .collect();
    assert_eq!(delivered.len(), 2, "{log}");

    // Ransomware on a criticality-5 asset: a crisis, and the beacon goes on.
    let (status, body) = cell
        .api()
        .post(
            &ingest,
            "/api/v2/alerts",
            json!([{"labels": {"alertname": "RansomNote", "instance": "erp-db", "severity": "critical", "category": "ransomware"},
                    "annotations": {"summary": "ransom note written on the ERP database"}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let calls = beacon.wait("ok/beacon", 1).await;
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].body, r#"{"state":"on"}"#);
    let (_, crises) = cell.api().get(&admin, "/api/v1/crises?status=open").await;
    let crisis = crises["crises"][0].clone();
    assert_eq!(crisis["client"], "acme", "{crises}");
    assert_eq!(crisis["trigger"], "ransomware-critical");
    let ransomware = cell.incident_of(&admin, "erp-db").await;
    assert_eq!(ransomware["priority"], "P1");
    assert!(
        crisis["incidents"]
            .as_array()
            .unwrap()
            .contains(&ransomware["id"])
    );
    // Closing the crisis switches the beacon off.
    let crisis_id = crisis["id"].as_i64().unwrap();
    let (status, closed) = cell
        .api()
        .post(
            &admin,
            &format!("/api/v1/crises/{crisis_id}/close"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    let calls = beacon.wait("ok/beacon", 2).await;
    assert_eq!(calls[1].body, r#"{"state":"off"}"#);

    // A silence on the print server: its incident's step fires, nobody is paged.
    let operator = cell.api().token("operator", None).await;
    let (status, silence) = cell
        .api()
        .post(
            &operator,
            "/api/v1/silences",
            json!({"client": "acme", "matchers": ["asset=\"print01\""], "duration": "2h", "comment": "printer replaced today"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{silence}");
    assert_eq!(silence["state"], "active");
    cell.result(&ingest, "print01!spooler", 2, "CRITICAL - spooler stopped")
        .await;
    let printer = cell.incident_of(&admin, "print01").await;
    let printer_id = printer["id"].as_i64().unwrap();
    let timeline = eventually("the held page in the timeline", || async {
        let timeline = cell.timeline(&admin, printer_id).await;
        timeline
            .iter()
            .any(|e| e.contains("not notified, silenced by"))
            .then_some(timeline)
    })
    .await;
    assert!(!timeline.is_empty());
    let (_, log) = cell
        .api()
        .get(
            &admin,
            &format!("/api/v1/notifications?incident={printer_id}"),
        )
        .await;
    assert_eq!(log["notifications"].as_array().unwrap().len(), 0, "{log}");
    assert!(
        !smtp
            .messages()
            .iter()
            .any(|m| m["subject"].as_str().unwrap_or("").contains("spooler")),
        "no mail about the silenced printer"
    );

    // Another client's token sees none of ACME's services, silences or crises.
    let other = cell.api().token("client", Some("other")).await;
    let (_, services) = cell.api().get(&other, "/api/v1/business-services").await;
    let ids: Vec<&Value> = services["business_services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["client"])
        .collect();
    assert!(ids.iter().all(|c| *c == "other"), "{services}");
    let (_, silences) = cell.api().get(&other, "/api/v1/silences").await;
    assert_eq!(
        silences["silences"].as_array().unwrap().len(),
        0,
        "{silences}"
    );
    let (_, crises) = cell.api().get(&other, "/api/v1/crises").await;
    assert_eq!(crises["crises"].as_array().unwrap().len(), 0, "{crises}");
    let (status, _) = cell
        .api()
        .get(&other, &format!("/api/v1/crises/{crisis_id}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = cell
        .api()
        .get(&other, &format!("/api/v1/incidents/{id}/escalation"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A malformed silence is refused with what is wrong.
    let (status, body) = cell
        .api()
        .post(
            &operator,
            "/api/v1/silences",
            json!({"client": "acme", "matchers": ["asset~print01"], "duration": "1h", "comment": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The silence is expired early while the printer still fails: its held page goes out.
    let silence_id = silence["id"].as_str().unwrap();
    let response = cell
        .api()
        .http
        .delete(format!("{}/api/v1/silences/{silence_id}", cell.api().url))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    // Level 1 at least (level 2 too if its step fell due while the silence held).
    eventually("the printer's held mail to level 1", || async {
        let messages = smtp.messages();
        mails_to(&messages, "anna@msp.example")
            .iter()
            .any(|m| m["subject"].as_str().unwrap_or("").contains("spooler"))
            .then_some(())
    })
    .await;
    cell.stop().await;
}

/// As Alertmanager does: a Prometheus alert not sent again before its `endsAt` resolves, and
/// so does its incident; a re-send moves the end.
#[tokio::test]
async fn a_prometheus_alert_not_sent_again_resolves_at_its_end() {
    let (_receiver, receiver_url) = receiver().await;
    let mut cell = Cell::start(&receiver_url, None).await;
    let admin = cell.api().admin.clone();
    let ingest = cell.api().token("ingest", Some("acme")).await;
    let ends = |seconds: i64| {
        chrono::Utc::now()
            .checked_add_signed(chrono::TimeDelta::seconds(seconds))
            .unwrap()
            .to_rfc3339()
    };
    let post = |ends_at: String| {
        let api = cell.api();
        let ingest = ingest.clone();
        async move {
            let (status, body) = api
                .post(
                    &ingest,
                    "/api/v2/alerts",
                    json!([{"labels": {"alertname": "DiskFull", "instance": "mes01:9100", "severity": "warning"},
                            "endsAt": ends_at}]),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    post(ends(2)).await;
    let incident = cell.incident_of(&admin, "mes01").await;
    let id = incident["id"].as_i64().unwrap();
    // Sent again before the end: the end moves, the alert stays firing past the first end.
    post(ends(5)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, body) = cell
        .api()
        .get(&admin, &format!("/api/v1/incidents/{id}"))
        .await;
    assert_eq!(body["status"], "new", "{body}");
    // Not sent again: resolved at its end.
    let resolved = eventually("the incident resolves at endsAt", || async {
        let (_, body) = cell
            .api()
            .get(&admin, &format!("/api/v1/incidents/{id}"))
            .await;
        (body["status"] == "resolved").then_some(body)
    })
    .await;
    assert_eq!(resolved["id"], id);
    cell.stop().await;
}

/// Priority is recomputed when what it reads changes, not on every re-send: a check going
/// from WARNING to CRITICAL raises its incident's urgency, with the reason in the timeline;
/// results that change nothing add no priority entry.
#[tokio::test]
async fn a_worse_state_of_the_same_alert_raises_its_incident_s_priority() {
    let (_receiver, receiver_url) = receiver().await;
    let mut cell = Cell::start(&receiver_url, None).await;
    let admin = cell.api().admin.clone();
    let ingest = cell.api().token("ingest", Some("acme")).await;
    cell.result(&ingest, "print01!spooler", 1, "WARNING - queue 40")
        .await;
    let incident = cell.incident_of(&admin, "print01").await;
    let id = incident["id"].as_i64().unwrap();
    let warned = incident["priority"].as_str().unwrap().to_owned();
    cell.result(&ingest, "print01!spooler", 2, "CRITICAL - spooler stopped")
        .await;
    let raised = eventually("the priority rises", || async {
        let (_, body) = cell
            .api()
            .get(&admin, &format!("/api/v1/incidents/{id}"))
            .await;
        let priority = body["priority"].as_str()?.to_owned();
        (priority < warned).then_some(priority)
    })
    .await;
    let priority_entries = |timeline: &[String]| {
        timeline
            .iter()
            .filter(|e| e.starts_with("priority"))
            .count()
    };
    let timeline = cell.timeline(&admin, id).await;
    assert!(
        timeline
            .iter()
            .any(|e| e.starts_with("priority") && e.contains("(critical)")),
        "{timeline:?}"
    );
    let before = priority_entries(&timeline);
    for _ in 0..3 {
        cell.result(&ingest, "print01!spooler", 2, "CRITICAL - spooler stopped")
            .await;
    }
    let (_, body) = cell
        .api()
        .get(&admin, &format!("/api/v1/incidents/{id}"))
        .await;
    assert_eq!(body["priority"], raised.as_str());
    assert_eq!(priority_entries(&cell.timeline(&admin, id).await), before);
    cell.stop().await;
}

const INHIBITION_ESTATE: &str = r#"
id: acme
name: ACME Industrie
incident_grouping: { by: [asset, rule], window: 30m }
assets:
  - { id: fw01, name: Firewall, kind: host, criticality: 3, hostnames: [fw01],
      checks: [ { name: ping, kind: passive, freshness: 1h, max_check_attempts: 1 } ] }
  - { id: db02, name: Database, kind: host, criticality: 3, hostnames: [db02],
      checks: [ { name: ping, kind: passive, freshness: 1h, max_check_attempts: 1 } ] }
  - { id: app03, name: Application, kind: host, criticality: 3, hostnames: [app03],
      checks: [ { name: ping, kind: passive, freshness: 1h, max_check_attempts: 1 } ] }
contacts:
  - { id: anna, name: Anna, email: anna@msp.example }
teams:
  - { id: l1, name: L1 supervision, level: 1, members: [anna] }
escalation_policies:
  - { id: l1, name: Level 1, steps: [ { notify: [ { team: l1 } ], wait: 1h } ] }
routing:
  - { match: {}, team: l1, policy: l1 }
inhibit_rules:
  - source_matchers: ['asset="fw01"']
    target_matchers: ['asset!="fw01"']
---
id: other
name: Other client
"#;

/// An inhibition rule as Alertmanager users know it: while the firewall's alert fires, the
/// pages of the assets behind it are held back, and the timeline says why; once the firewall
/// recovers, the held page goes out and a new problem pages again. The rules are listed by the
/// API, scoped to the client.
#[tokio::test]
async fn an_inhibition_rule_holds_back_pages_while_its_source_fires_then_sends_them() {
    let (_receiver, receiver_url) = receiver().await;
    let cell = Cell::start_with(INHIBITION_ESTATE, &receiver_url, None).await;
    let admin = cell.api().admin.clone();
    let ingest = cell.api().token("ingest", Some("acme")).await;
    let other = cell.api().token("client", Some("other")).await;

    let (status, rules) = cell.api().get(&admin, "/api/v1/inhibition-rules").await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    assert_eq!(
        rules["inhibition_rules"],
        json!([{
            "client": "acme",
            "source_matchers": ["asset=\"fw01\""],
            "target_matchers": ["asset!=\"fw01\""],
        }])
    );
    let (_, rules) = cell.api().get(&other, "/api/v1/inhibition-rules").await;
    assert_eq!(rules["inhibition_rules"], json!([]), "{rules}");

    let notifications = |incident: i64| {
        let cell = &cell;
        let admin = admin.clone();
        async move {
            let (_, log) = cell
                .api()
                .get(
                    &admin,
                    &format!("/api/v1/notifications?incident={incident}"),
                )
                .await;
            log["notifications"].as_array().unwrap().len()
        }
    };

    // The firewall goes down: its incident pages level 1.
    cell.result(&ingest, "fw01!ping", 2, "CRITICAL - no answer")
        .await;
    let firewall = cell.incident_of(&admin, "fw01").await["id"]
        .as_i64()
        .unwrap();
    eventually("the firewall's page", || async {
        (notifications(firewall).await == 1).then_some(())
    })
    .await;

    // The database behind it fails while the firewall's alert fires: held back.
    cell.result(&ingest, "db02!ping", 2, "CRITICAL - no answer")
        .await;
    let database = cell.incident_of(&admin, "db02").await["id"]
        .as_i64()
        .unwrap();
    let timeline = eventually("the database's step fires, muted", || async {
        let timeline = cell.timeline(&admin, database).await;
        timeline
            .iter()
            .any(|e| e.starts_with("escalated") && e.contains("not notified, inhibited"))
            .then_some(timeline)
    })
    .await;
    assert!(
        !timeline.iter().any(|e| e.contains("notified team")),
        "{timeline:#?}"
    );
    assert_eq!(notifications(database).await, 0);

    // The firewall recovers: the database's held page goes out, as Alertmanager sends an
    // inhibited alert once its source resolves, and the next problem pages at once.
    cell.result(&ingest, "fw01!ping", 0, "OK - rtt 1 ms").await;
    eventually("the firewall's alert resolves", || async {
        let (_, body) = cell
            .api()
            .get(&admin, &format!("/api/v1/incidents/{firewall}"))
            .await;
        (body["status"] == "resolved").then_some(())
    })
    .await;
    eventually("the database's held page", || async {
        (notifications(database).await == 1).then_some(())
    })
    .await;
    let timeline = cell.timeline(&admin, database).await;
    assert!(
        timeline
            .iter()
            .any(|e| e.starts_with("escalated: notified") && e.contains("while muted")),
        "{timeline:#?}"
    );
    cell.result(&ingest, "app03!ping", 2, "CRITICAL - no answer")
        .await;
    let application = cell.incident_of(&admin, "app03").await["id"]
        .as_i64()
        .unwrap();
    eventually("the application's page", || async {
        (notifications(application).await == 1).then_some(())
    })
    .await;
    // The other client sees none of it.
    let (_, incidents) = cell.api().get(&other, "/api/v1/incidents").await;
    assert_eq!(incidents["incidents"], json!([]), "{incidents}");
}

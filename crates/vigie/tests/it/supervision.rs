//! Supervision end to end: checks written in an estate directory, run by the real server with
//! Debian's Monitoring Plugins (`check_dummy`) as real processes on short intervals, their
//! hard states turned into incidents, a reload that fixes the check resolving them, a parent
//! host down making its child UNREACHABLE without paging, acknowledgements and downtimes,
//! check state surviving a restart, and client isolation. Each test runs on SQLite and on
//! PostgreSQL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vigie::server::Server;
use vigie::store::scratch::ScratchDatabase;

use crate::support::Engine;

const CHECK_DUMMY: &str = "/usr/lib/nagios/plugins/check_dummy";

/// A server over an estate directory of its own, which the test rewrites and reloads.
struct Supervised {
    server: Option<Server>,
    url: String,
    admin: String,
    http: reqwest::Client,
    estate_dir: PathBuf,
    db: ScratchDatabase,
}

impl Supervised {
    async fn start(engine: Engine, estate: &str) -> Option<Supervised> {
        assert!(
            Path::new(CHECK_DUMMY).is_file(),
            "{CHECK_DUMMY} is missing: install monitoring-plugins-basic (.ci/run does)"
        );
        let db = crate::support::database(engine).await?;
        let estate_dir = db.dir.join("estate");
        std::fs::create_dir_all(&estate_dir).unwrap();
        // reqwest's rustls needs the process's provider (ring) before a client is built.
        vigie::notify::install_crypto_provider();
        let mut supervised = Supervised {
            server: None,
            url: String::new(),
            admin: String::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            estate_dir,
            db,
        };
        supervised.write_estate(estate);
        supervised.boot().await;
        Some(supervised)
    }

    async fn boot(&mut self) {
        let server = crate::support::start_over(&self.db, self.estate_dir.clone()).await;
        self.url = server.url();
        self.admin = server.admin_token.clone();
        self.server = Some(server);
    }

    async fn restart(&mut self) {
        self.stop().await;
        self.boot().await;
    }

    async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
    }

    fn write_estate(&self, estate: &str) {
        std::fs::write(self.estate_dir.join("clients.yaml"), estate).unwrap();
    }

    async fn reload(&self) {
        self.server
            .as_ref()
            .expect("server running")
            .reload()
            .await
            .expect("the estate reloads");
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        crate::support::call(
            &self.http,
            reqwest::Method::GET,
            &self.url,
            path,
            token,
            None,
        )
        .await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        crate::support::call(
            &self.http,
            reqwest::Method::POST,
            &self.url,
            path,
            token,
            Some(&body),
        )
        .await
    }

    async fn delete(&self, token: &str, path: &str) -> (StatusCode, Value) {
        crate::support::call(
            &self.http,
            reqwest::Method::DELETE,
            &self.url,
            path,
            token,
            None,
        )
        .await
    }

    async fn token(&self, role: &str, client: Option<&str>) -> String {
        let (status, body) = self
            .post(
                &self.admin,
                "/api/v1/tokens",
                json!({"name": format!("{role}-{}", client.unwrap_or("all")), "role": role, "client": client}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Polls a check until `wanted` holds; fails after 20 s with the check's last state.
    async fn check_until(&self, id: &str, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, check) = self.get(&self.admin, &format!("/api/v1/checks/{id}")).await;
            if status == StatusCode::OK && wanted(&check) {
                return check;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {id} to be {what}: {status} {check}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn alerts(&self, client: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&self.admin, &format!("/api/v1/alerts?client={client}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["alerts"].as_array().unwrap().clone()
    }
}

fn is(state: &'static str, state_type: &'static str) -> impl Fn(&Value) -> bool {
    move |check| check["state"] == state && check["state_type"] == state_type
}

/// One client with one host and a plugin check running `check_dummy` with these arguments.
fn dummy_estate(client: &str, args: &str) -> String {
    format!(
        "\
id: {client}
name: {client}
assets:
  - id: srv
    kind: host
    criticality: 4
    addresses: [127.0.40.1]
    checks:
      - name: disk
        kind: plugin
        command: check_dummy
        args: [{args}]
        interval: 200ms
        retry_interval: 100ms
        max_check_attempts: 3
        timeout: 5s
"
    )
}

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
    a_failing_plugin_pages_once_hard_and_a_reload_that_fixes_it_resolves_the_incident,
    a_down_parent_makes_its_child_unreachable_without_paging_for_the_child,
    acknowledgements_downtimes_and_state_survive_a_restart,
    another_clients_token_cannot_see_or_touch_a_check,
    passive_results_arrive_in_icinga_nrdp_and_external_command_formats,
    prometheus_alerts_open_and_resolve_incidents,
    a_downtime_starts_and_ends_on_time_without_a_new_result,
    a_host_downtime_covers_its_children_and_services_when_asked,
    a_recurring_downtime_gives_its_checks_a_downtime_once_per_occurrence,
    a_check_whose_dependency_fails_pages_only_if_its_problem_outlives_it,
);

/// An application check that depends on its database's check (Icinga's service dependency).
fn dependent_estate(database: &str) -> String {
    format!(
        "\
id: acme
name: ACME
assets:
  - id: db
    kind: host
    checks:
      - {{ name: postgres, kind: plugin, command: {CHECK_DUMMY}, args: [{database}], interval: 200ms, retry_interval: 100ms }}
  - id: app
    kind: host
    checks:
      - {{ name: web, kind: plugin, command: {CHECK_DUMMY}, args: [2, no database], interval: 200ms, retry_interval: 100ms, depends_on: [db:postgres] }}
"
    )
}

async fn a_check_whose_dependency_fails_pages_only_if_its_problem_outlives_it(engine: Engine) {
    let Some(mut supervised) =
        Supervised::start(engine, &dependent_estate("2, \"connection refused\"")).await
    else {
        return;
    };
    supervised
        .check_until("acme:db:postgres", "HARD CRITICAL", is("CRITICAL", "HARD"))
        .await;
    supervised
        .check_until("acme:app:web", "HARD CRITICAL", is("CRITICAL", "HARD"))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paged = |alerts: &[Value]| -> Vec<String> {
        let mut checks: Vec<String> = alerts
            .iter()
            .filter(|alert| alert["status"] != "resolved")
            .filter_map(|alert| alert["labels"]["check"].as_str().map(str::to_owned))
            .collect();
        checks.sort();
        checks
    };
    assert_eq!(
        paged(&supervised.alerts("acme").await),
        ["acme:db:postgres"],
        "the database pages; the application, which depends on it, does not"
    );

    // The database comes back and the application is still down: now it pages.
    supervised.write_estate(&dependent_estate("0, ok"));
    supervised.reload().await;
    crate::support::eventually("the application paged", || async {
        let alerts = supervised.alerts("acme").await;
        paged(&alerts)
            .contains(&"acme:app:web".to_owned())
            .then_some(())
    })
    .await;
    supervised.stop().await;
}

async fn a_recurring_downtime_gives_its_checks_a_downtime_once_per_occurrence(engine: Engine) {
    // A window over the whole day, every day: under way whenever the test runs.
    let estate = format!(
        "{}  - id: other
    kind: host
    checks:
      - {{ name: disk, kind: plugin, command: {CHECK_DUMMY}, args: [2, full], interval: 200ms, retry_interval: 100ms }}
  - id: line-inherit
    kind: business_service
    criticality: 5
    service:
      method: worst
      downtime: inherit
      indicators:
        - {{ check: {{ asset: srv, check: disk }} }}
  - id: line-ignore
    kind: business_service
    criticality: 5
    service:
      method: worst
      indicators:
        - {{ check: {{ asset: srv, check: disk }} }}
recurring_downtimes:
  - name: patching
    match: {{ tags: [patched] }}
    window: {{ timezone: UTC, days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", to: \"24:00\" }}
    comment: every day
",
        dummy_estate("acme", "2, \"disk full\"").replace(
            "    criticality: 4\n",
            "    criticality: 4\n    tags: [patched]\n"
        )
    );
    let Some(mut supervised) = Supervised::start(engine, &estate).await else {
        return;
    };
    let id = "acme:srv:disk";
    let check = supervised
        .check_until(id, "in its recurring downtime", |check| {
            check["in_downtime"] == json!(true)
        })
        .await;
    let downtimes = check["downtimes"].as_array().unwrap();
    assert_eq!(downtimes.len(), 1, "{check}");
    assert_eq!(downtimes[0]["author"], "vigie (recurring downtime)");
    assert_eq!(downtimes[0]["comment"], "patching: every day");
    let (start, end) = (
        downtimes[0]["start_ms"].as_i64().unwrap(),
        downtimes[0]["end_ms"].as_i64().unwrap(),
    );
    assert_eq!(
        (start % 86_400_000, end - start),
        (0, 86_400_000),
        "midnight to midnight, UTC"
    );
    // The asset the rule does not match has none; the problem under the downtime does not page.
    let (_, other) = supervised
        .get(&supervised.admin, "/api/v1/checks/acme:other:disk")
        .await;
    assert_eq!(other["downtimes"], json!([]), "{other}");
    supervised
        .check_until(id, "HARD CRITICAL", is("CRITICAL", "HARD"))
        .await;
    supervised
        .check_until("acme:other:disk", "HARD CRITICAL", is("CRITICAL", "HARD"))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alerts = supervised.alerts("acme").await;
    let paged: Vec<&str> = alerts
        .iter()
        .filter_map(|alert| alert["labels"]["check"].as_str())
        .collect();
    assert_eq!(paged, ["acme:other:disk"], "{alerts:?}");
    // The business services over the check in downtime: one that inherits downtimes shows it
    // red and in downtime, one that ignores them stays OK (Centreon BAM's two options).
    business_services_see_the_downtime(&supervised).await;
    // A Prometheus alert on the same asset: its incident's priority counts the asset, not the
    // business service, which is in a planned downtime.
    let (status, body) = supervised
        .post(
            &supervised.admin,
            "/api/v2/alerts",
            json!([{
                "labels": {"alertname": "DiskSlow", "client": "acme", "asset": "srv", "severity": "warning"},
                "annotations": {"summary": "disk slow on srv"},
            }]),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let reasons = crate::support::eventually("the alert's incident prioritized", || async {
        let alert = supervised
            .alerts("acme")
            .await
            .into_iter()
            .find(|alert| alert["rule"] == "alertmanager/DiskSlow")?;
        let incident = alert["incident_id"].as_i64()?;
        let (_, body) = supervised
            .get(
                &supervised.admin,
                &format!("/api/v1/incidents/{incident}/timeline"),
            )
            .await;
        let texts: Vec<String> = body["timeline"]
            .as_array()?
            .iter()
            .filter(|entry| entry["kind"] == "priority_changed")
            .map(|entry| entry["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        (!texts.is_empty()).then_some(texts)
    })
    .await;
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("asset srv criticality 4")),
        "{reasons:#?}"
    );
    assert!(
        !reasons.iter().any(|r| r.contains("business service")),
        "{reasons:#?}"
    );

    // A restart gives no second downtime for the same occurrence (one straddling midnight UTC
    // would meet the next occurrence: a few seconds a day), and the inheriting service never
    // reads OK meanwhile: its history gains no entry.
    let before = inheriting_history(&supervised).await;
    supervised.restart().await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(inheriting_history(&supervised).await, before);
    let (_, check) = supervised
        .get(&supervised.admin, &format!("/api/v1/checks/{id}"))
        .await;
    assert_eq!(check["downtimes"].as_array().unwrap().len(), 1, "{check}");
    // And the responder is told again what is in downtime.
    business_services_see_the_downtime(&supervised).await;
    supervised.stop().await;
}

/// The status changes of the business service that inherits downtimes, newest first.
async fn inheriting_history(supervised: &Supervised) -> Value {
    let (status, body) = supervised
        .get(
            &supervised.admin,
            "/api/v1/business-services/acme/line-inherit",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["history"].clone()
}

async fn business_services_see_the_downtime(supervised: &Supervised) {
    let services = crate::support::eventually("the inheriting service in downtime", || async {
        let (_, body) = supervised
            .get(&supervised.admin, "/api/v1/business-services?client=acme")
            .await;
        let services = body["business_services"].as_array()?.clone();
        services
            .iter()
            .any(|s| s["id"] == "line-inherit" && s["in_downtime"] == json!(true))
            .then_some(services)
    })
    .await;
    let of = |id: &str| services.iter().find(|s| s["id"] == id).unwrap().clone();
    let inherit = of("line-inherit");
    assert_eq!(inherit["status"], "CRITICAL", "{inherit}");
    assert_eq!(
        inherit["causes"][0], "check `disk` of asset `srv`",
        "{inherit}"
    );
    let ignore = of("line-ignore");
    assert_eq!(ignore["status"], "OK", "{ignore}");
    assert_eq!(ignore["in_downtime"], json!(false), "{ignore}");
}

/// A check's downtimes: how many, and whether one is active.
async fn in_downtime(supervised: &Supervised, id: &str) -> (usize, bool) {
    let (status, check) = supervised
        .get(&supervised.admin, &format!("/api/v1/checks/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{check}");
    (
        check["downtimes"].as_array().unwrap().len(),
        check["in_downtime"] == json!(true),
    )
}

async fn a_host_downtime_covers_its_children_and_services_when_asked(engine: Engine) {
    // A router, a server behind it with a service, and another host beside the router.
    let estate = format!(
        "\
id: acme
name: ACME
assets:
  - id: rtr
    kind: network_device
    host_check: {{ kind: plugin, command: {CHECK_DUMMY}, args: [0, up] }}
    checks:
      - {{ name: bgp, kind: plugin, command: {CHECK_DUMMY}, args: [0, fine] }}
  - id: srv
    kind: host
    host_check: {{ kind: plugin, command: {CHECK_DUMMY}, args: [0, up] }}
    checks:
      - {{ name: http, kind: plugin, command: {CHECK_DUMMY}, args: [0, fine] }}
  - id: other
    kind: host
    host_check: {{ kind: plugin, command: {CHECK_DUMMY}, args: [0, up] }}
dependencies:
  - {{ from: srv, to: rtr }}
"
    );
    let Some(mut supervised) = Supervised::start(engine, &estate).await else {
        return;
    };
    let operator = supervised.token("operator", None).await;
    let end_ms = vigie::clock::now_ms() + 3_600_000;
    let (status, refused) = supervised
        .post(
            &operator,
            "/api/v1/checks/acme:rtr:bgp/downtimes",
            json!({"end_ms": end_ms, "children": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "check acme:rtr:bgp: `children` and `services` apply to a host check's downtime"
    );

    // The router alone: nothing else.
    let (status, router) = supervised
        .post(
            &operator,
            "/api/v1/checks/acme:rtr:host/downtimes",
            json!({"comment": "firmware", "end_ms": end_ms}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{router}");
    assert_eq!(in_downtime(&supervised, "acme:srv:host").await, (0, false));
    assert_eq!(in_downtime(&supervised, "acme:rtr:bgp").await, (0, false));

    // With children and services: the router's service, the server and its service, each
    // with a downtime of its own; not the host beside it.
    let (status, router) = supervised
        .post(
            &operator,
            "/api/v1/checks/acme:rtr:host/downtimes",
            json!({"comment": "move", "end_ms": end_ms, "children": true, "services": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{router}");
    assert_eq!(router["downtimes"].as_array().unwrap().len(), 2);
    for id in ["acme:rtr:bgp", "acme:srv:host", "acme:srv:http"] {
        assert_eq!(in_downtime(&supervised, id).await, (1, true), "{id}");
    }
    assert_eq!(
        in_downtime(&supervised, "acme:other:host").await,
        (0, false)
    );
    let (_, server) = supervised
        .get(&supervised.admin, "/api/v1/checks/acme:srv:http")
        .await;
    assert_eq!(server["downtimes"][0]["comment"], "move");
    assert_eq!(server["downtimes"][0]["author"], "operator-all");
    assert_eq!(server["downtimes"][0]["end_ms"], json!(end_ms));
    supervised.stop().await;
}

async fn a_failing_plugin_pages_once_hard_and_a_reload_that_fixes_it_resolves_the_incident(
    engine: Engine,
) {
    let Some(mut supervised) =
        Supervised::start(engine, &dummy_estate("acme", "2, \"disk full\"")).await
    else {
        return;
    };
    let id = "acme:srv:disk";
    let check = supervised
        .check_until(id, "HARD CRITICAL", is("CRITICAL", "HARD"))
        .await;
    assert_eq!(check["attempt"], 3);
    assert_eq!(check["max_check_attempts"], 3);
    assert_eq!(check["output"], "CRITICAL: disk full");
    assert_eq!(check["probe"], "plugin");
    assert!(check["last_check_ms"].is_i64());
    assert!(check["next_check_ms"].as_i64() > check["last_check_ms"].as_i64());

    // One alert for the hard problem, with the check, the asset and the output as evidence,
    // in one incident.
    let alert = crate::support::eventually("the check's alert", || async {
        supervised.alerts("acme").await.into_iter().next()
    })
    .await;
    assert_eq!(alert["asset"], "srv");
    assert_eq!(alert["source"], "supervision");
    assert_eq!(alert["rule"], "check/disk");
    assert_eq!(alert["title"], "disk CRITICAL on srv");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["labels"]["check"], id);
    assert_eq!(alert["labels"]["state"], "CRITICAL");
    assert_eq!(alert["labels"]["state_type"], "HARD");
    assert_eq!(alert["labels"]["output"], "CRITICAL: disk full");
    let (_, incidents) = supervised
        .get(&supervised.admin, "/api/v1/incidents?client=acme")
        .await;
    let incidents = incidents["incidents"].as_array().unwrap().clone();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["status"], "new");
    assert_eq!(incidents[0]["assets"], json!(["srv"]));
    let incident = incidents[0]["id"].as_i64().unwrap();

    // Staying hard CRITICAL pages no more.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let alerts = supervised.alerts("acme").await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["count"], 1, "a hard problem pages once");

    // The fix: the same check now passes. Its schedule is kept; it recovers and the
    // incident resolves.
    supervised.write_estate(&dummy_estate("acme", "0, \"disk ok\""));
    supervised.reload().await;
    let check = supervised.check_until(id, "OK", is("OK", "HARD")).await;
    assert_eq!(check["output"], "OK: disk ok");
    let resolved = crate::support::eventually("the incident resolved", || async {
        let (_, incident) = supervised
            .get(&supervised.admin, &format!("/api/v1/incidents/{incident}"))
            .await;
        (incident["status"] == "resolved").then_some(incident)
    })
    .await;
    assert!(resolved["resolved_ms"].is_i64());
    let alerts = supervised.alerts("acme").await;
    assert_eq!(alerts[0]["status"], "resolved");
    let (_, timeline) = supervised
        .get(
            &supervised.admin,
            &format!("/api/v1/incidents/{incident}/timeline"),
        )
        .await;
    let last = timeline["timeline"].as_array().unwrap().last().unwrap();
    assert_eq!(last["kind"], "resolved");
    assert_eq!(last["text"], "resolved: disk CRITICAL on srv recovered");

    // The lag is reported.
    let metrics = supervised
        .http
        .get(format!("{}/metrics", supervised.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("vigie_check_lag_seconds{quantile=\"0.99\"}"));
    assert!(metrics.contains("vigie_checks_scheduled 1"), "{metrics}");
    supervised.stop().await;
}

async fn a_down_parent_makes_its_child_unreachable_without_paging_for_the_child(engine: Engine) {
    // Every check on the same pace: the server's first failure has the router checked at
    // once (on demand, as Icinga), so the router is known down before the server's last
    // attempt.
    let estate = format!(
        "\
id: acme
name: ACME
assets:
  - id: rtr
    name: Core router
    kind: network_device
    criticality: 5
    host_check:
      {{ kind: plugin, command: {CHECK_DUMMY}, args: [2, router down], interval: 200ms, retry_interval: 200ms }}
  - id: srv
    kind: host
    host_check:
      {{ kind: plugin, command: {CHECK_DUMMY}, args: [2, no answer], interval: 200ms, retry_interval: 200ms }}
    checks:
      - {{ name: http, kind: plugin, command: {CHECK_DUMMY}, args: [2, no answer], interval: 200ms, retry_interval: 200ms }}
dependencies:
  - {{ from: srv, to: rtr }}
"
    );
    let Some(mut supervised) = Supervised::start(engine, &estate).await else {
        return;
    };
    supervised
        .check_until("acme:rtr:host", "HARD DOWN", is("DOWN", "HARD"))
        .await;
    let child = supervised
        .check_until(
            "acme:srv:host",
            "HARD UNREACHABLE",
            is("UNREACHABLE", "HARD"),
        )
        .await;
    assert_eq!(child["kind"], "host");
    supervised
        .check_until("acme:srv:http", "HARD CRITICAL", is("CRITICAL", "HARD"))
        .await;
    // A few more rounds, in case anything would page late.
    tokio::time::sleep(Duration::from_millis(700)).await;

    let alerts = supervised.alerts("acme").await;
    assert_eq!(alerts.len(), 1, "only the router pages: {alerts:#?}");
    let router = &alerts[0];
    assert_eq!(router["asset"], "rtr");
    assert_eq!(
        router["title"],
        "Core router is DOWN (1 host behind it unreachable)"
    );
    assert_eq!(router["labels"]["unreachable_children"], 1);
    assert_eq!(router["labels"]["unreachable_hosts"], json!(["srv"]));
    assert_eq!(router["labels"]["check_kind"], "host");
    let metrics = supervised
        .http
        .get(format!("{}/metrics", supervised.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let suppressed = metrics
        .lines()
        .find_map(|line| line.strip_prefix("vigie_check_problems_suppressed_total "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap();
    assert!(
        suppressed >= 2,
        "the child host and its service: {suppressed}"
    );
    supervised.stop().await;
}

async fn acknowledgements_downtimes_and_state_survive_a_restart(engine: Engine) {
    let Some(mut supervised) =
        Supervised::start(engine, &dummy_estate("acme", "2, \"disk full\"")).await
    else {
        return;
    };
    let id = "acme:srv:disk";
    supervised
        .check_until(id, "HARD CRITICAL", is("CRITICAL", "HARD"))
        .await;
    let operator = supervised.token("operator", None).await;
    let (status, acked) = supervised
        .post(
            &operator,
            &format!("/api/v1/checks/{id}/acknowledge"),
            json!({"comment": "replacing the disk", "sticky": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(acked["acknowledgement"]["author"], "operator-all");
    assert_eq!(acked["acknowledgement"]["comment"], "replacing the disk");
    let (status, again) = supervised
        .post(
            &operator,
            &format!("/api/v1/checks/{id}/acknowledge"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(
        again["error"]["message"],
        "check acme:srv:disk: the check is already acknowledged"
    );

    let now = vigie::clock::now_ms();
    let (status, with_downtime) = supervised
        .post(
            &operator,
            &format!("/api/v1/checks/{id}/downtimes"),
            json!({"comment": "maintenance", "end_ms": now + 3_600_000}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{with_downtime}");
    assert_eq!(with_downtime["in_downtime"], true);
    assert_eq!(with_downtime["downtimes"][0]["author"], "operator-all");
    let (status, empty) = supervised
        .post(
            &operator,
            &format!("/api/v1/checks/{id}/downtimes"),
            json!({"start_ms": now, "end_ms": now - 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{empty}");
    let client = supervised.token("client", Some("acme")).await;
    let (status, _) = supervised
        .post(
            &client,
            &format!("/api/v1/checks/{id}/acknowledge"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = supervised
        .post(
            &operator,
            "/api/v1/checks/acme:srv:nothing/acknowledge",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A restart keeps the hard state, the attempt, the acknowledgement and the downtime: the
    // check stays hard CRITICAL without paging again.
    let before_alerts = supervised.alerts("acme").await;
    supervised.restart().await;
    let (status, check) = supervised
        .get(&supervised.admin, &format!("/api/v1/checks/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (check["state"].clone(), check["state_type"].clone()),
        (json!("CRITICAL"), json!("HARD"))
    );
    assert_eq!(check["acknowledgement"]["comment"], "replacing the disk");
    assert_eq!(check["in_downtime"], true);
    let last_check = check["last_check_ms"].as_i64().unwrap();
    supervised
        .check_until(id, "checked again after the restart", |check| {
            check["last_check_ms"].as_i64() > Some(last_check)
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_alerts = supervised.alerts("acme").await;
    assert_eq!(after_alerts.len(), before_alerts.len());
    assert_eq!(after_alerts[0]["count"], before_alerts[0]["count"]);

    // Removing them, as Icinga's remove-downtime and remove-acknowledgement.
    let operator = supervised.token("operator", None).await;
    let downtime = check["downtimes"][0]["id"].as_u64().unwrap();
    let downtimes = format!("/api/v1/checks/{id}/downtimes");
    let (status, bad) = supervised
        .delete(&operator, &format!("{downtimes}/first"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    let (status, unknown) = supervised
        .delete(&operator, &format!("{downtimes}/{}", downtime + 99))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{unknown}");
    let client = supervised.token("client", Some("acme")).await;
    let (status, _) = supervised
        .delete(&client, &format!("{downtimes}/{downtime}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, without) = supervised
        .delete(&operator, &format!("{downtimes}/{downtime}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{without}");
    assert_eq!(without["in_downtime"], false);
    assert_eq!(without["downtimes"], json!([]));
    let acknowledge = format!("/api/v1/checks/{id}/acknowledge");
    let (status, unacked) = supervised.delete(&operator, &acknowledge).await;
    assert_eq!(status, StatusCode::OK, "{unacked}");
    assert_eq!(unacked["acknowledgement"], Value::Null);
    let (status, again) = supervised.delete(&operator, &acknowledge).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(
        again["error"]["message"],
        "check acme:srv:disk: the check is not acknowledged"
    );
    let (_, stored) = supervised
        .get(&supervised.admin, &format!("/api/v1/checks/{id}"))
        .await;
    assert_eq!(
        (
            stored["acknowledgement"].clone(),
            stored["in_downtime"].clone()
        ),
        (Value::Null, json!(false)),
        "written before the answer"
    );
    supervised.stop().await;
}

async fn another_clients_token_cannot_see_or_touch_a_check(engine: Engine) {
    let estate = format!(
        "{}---\n{}",
        dummy_estate("acme", "0, fine"),
        dummy_estate("globex", "0, fine")
    );
    let Some(mut supervised) = Supervised::start(engine, &estate).await else {
        return;
    };
    supervised
        .check_until("acme:srv:disk", "checked", |check| {
            check["last_check_ms"].is_i64()
        })
        .await;
    supervised
        .check_until("globex:srv:disk", "checked", |check| {
            check["last_check_ms"].is_i64()
        })
        .await;
    let globex = supervised.token("client", Some("globex")).await;
    let (status, list) = supervised.get(&globex, "/api/v1/checks").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["globex:srv:disk"]);
    let (_, list) = supervised.get(&globex, "/api/v1/checks?client=acme").await;
    assert_eq!(list["checks"], json!([]));
    let (status, body) = supervised
        .get(&globex, "/api/v1/checks/acme:srv:disk")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (missing, _) = supervised
        .get(&globex, "/api/v1/checks/acme:srv:nothing")
        .await;
    assert_eq!(
        missing,
        StatusCode::NOT_FOUND,
        "the same as an absent check"
    );
    let (status, all) = supervised.get(&supervised.admin, "/api/v1/checks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["checks"].as_array().unwrap().len(), 2);
    let (status, _) = supervised
        .get(&supervised.admin, "/api/v1/checks?state=BROKEN")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    supervised.stop().await;
}

/// A passive check fed by the formats Icinga, NRDP and Nagios senders use, unchanged.
async fn passive_results_arrive_in_icinga_nrdp_and_external_command_formats(engine: Engine) {
    let estate = "\
id: acme
name: acme
assets:
  - id: srv
    kind: host
    criticality: 4
    hostnames: [srv.acme.example]
    addresses: [127.0.40.1]
    checks:
      - name: backup
        kind: passive
        freshness: 1h
        max_check_attempts: 1
---
id: bellevue-clinic
name: bellevue-clinic
";
    let Some(supervised) = Supervised::start(engine, estate).await else {
        return;
    };
    let id = "acme:srv:backup";
    let ingest = supervised.token("ingest", Some("acme")).await;
    // Icinga 2, at the path its clients use, object named by the query.
    let (status, body) = supervised
        .post(
            &ingest,
            "/v1/actions/process-check-result?service=srv.acme.example!backup",
            json!({"exit_status": 2, "plugin_output": "backup failed", "performance_data": ["size=0B;;;0"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["results"][0]["status"],
        "Successfully processed check result for object 'srv.acme.example!backup'."
    );
    let check = supervised
        .check_until(id, "HARD CRITICAL", is("CRITICAL", "HARD"))
        .await;
    assert_eq!(check["output"], "backup failed");
    assert_eq!(check["perfdata"], "size=0B;;;0");
    // NRDP's JSON.
    let (status, body) = supervised
        .post(
            &ingest,
            "/api/v1/passive/nrdp",
            json!({"checkresults": [{"checkresult": {"type": "service"}, "hostname": "srv", "servicename": "backup", "state": "0", "output": "backup done"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["meta"]["output"], "1 checks processed");
    supervised.check_until(id, "OK", is("OK", "HARD")).await;
    // A Nagios external command line, over HTTP.
    let response = supervised
        .http
        .post(format!("{}/api/v1/passive/commands", supervised.url))
        .bearer_auth(&ingest)
        .body("PROCESS_SERVICE_CHECK_RESULT;127.0.40.1;backup;1;backup slow|time=900s\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let check = supervised
        .check_until(id, "HARD WARNING", is("WARNING", "HARD"))
        .await;
    assert_eq!(check["output"], "backup slow");
    // Unknown names answer 404 with the name; a bad line says which.
    let (status, body) = supervised
        .post(
            &ingest,
            "/api/v1/actions/process-check-result",
            json!({"filter": "host.name==\"nowhere\"", "exit_status": 0, "plugin_output": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.to_string().contains("nowhere"), "{body}");
    let (status, body) = supervised
        .post(
            &ingest,
            "/api/v1/passive/nrdp",
            json!({"checkresults": [{"hostname": "srv", "servicename": "restore", "state": 0, "output": "x"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.to_string().contains("restore"), "{body}");
    let response = supervised
        .http
        .post(format!("{}/api/v1/passive/commands", supervised.url))
        .bearer_auth(&ingest)
        .body("PROCESS_SERVICE_CHECK_RESULT;srv;backup;0;fine\nPROCESS_SERVICE_CHECK_RESULT;srv;backup;9;x\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("line 2"));
    // Another client's sender cannot reach this host.
    let other = supervised.token("ingest", Some("bellevue-clinic")).await;
    let (status, _) = supervised
        .post(
            &other,
            "/v1/actions/process-check-result?service=srv!backup",
            json!({"exit_status": 0, "plugin_output": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The bad batch applied nothing: still WARNING.
    let (_, check) = supervised
        .get(&supervised.admin, &format!("/api/v1/checks/{id}"))
        .await;
    assert_eq!(check["state"], "WARNING");
}

/// Prometheus pointed at Vigie as at an Alertmanager: a firing alert opens an incident on the
/// asset its `instance` names, a re-send counts up, an ended one resolves it.
async fn prometheus_alerts_open_and_resolve_incidents(engine: Engine) {
    let Some(supervised) = Supervised::start(engine, &dummy_estate("acme", "0")).await else {
        return;
    };
    let ingest = supervised.token("ingest", Some("acme")).await;
    let alert = json!({
        "labels": {"alertname": "DiskFull", "instance": "127.0.40.1:9100", "severity": "critical"},
        "annotations": {"summary": "disk full on srv"},
        "generatorURL": "http://prometheus:9090/graph"
    });
    for _ in 0..2 {
        let (status, body) = supervised
            .post(&ingest, "/api/v2/alerts", json!([alert.clone()]))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let alerts = supervised.alerts("acme").await;
    let posted: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["source"] == "alertmanager")
        .collect();
    assert_eq!(posted.len(), 1, "{alerts:?}");
    assert_eq!(posted[0]["asset"], "srv");
    assert_eq!(posted[0]["title"], "disk full on srv");
    assert_eq!(posted[0]["count"], 2, "{:?}", posted[0]);
    let mut ended = alert.clone();
    ended["startsAt"] = json!("2025-01-01T00:00:00Z");
    ended["endsAt"] = json!("2025-01-01T01:00:00Z");
    let (status, body) = supervised
        .post(&ingest, "/api/v2/alerts", json!([ended]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let alerts = supervised.alerts("acme").await;
    let posted = alerts
        .iter()
        .find(|a| a["source"] == "alertmanager")
        .unwrap();
    assert_ne!(posted["status"], "firing", "{posted}");
    // No alertname: refused whole, with the position.
    let (status, body) = supervised
        .post(
            &ingest,
            "/api/v2/alerts",
            json!([alert, {"labels": {"instance": "x"}}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.to_string()
            .contains("[1]: labels.alertname is required"),
        "{body}"
    );
    // Another client's label with this client's token: refused.
    let (status, _) = supervised
        .post(
            &ingest,
            "/api/v2/alerts",
            json!([{"labels": {"alertname": "X", "client": "bellevue-clinic"}}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Timers run without results: a passive check that hears nothing still enters and leaves its
/// downtime when due.
async fn a_downtime_starts_and_ends_on_time_without_a_new_result(engine: Engine) {
    let estate = "\
id: acme
name: acme
assets:
  - id: srv
    kind: host
    criticality: 4
    checks:
      - name: backup
        kind: passive
        freshness: 1h
";
    let Some(supervised) = Supervised::start(engine, estate).await else {
        return;
    };
    let id = "acme:srv:backup";
    supervised.check_until(id, "listed", |_| true).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (status, body) = supervised
        .post(
            &supervised.admin,
            &format!("/api/v1/checks/{id}/downtimes"),
            json!({"comment": "restore test", "start_ms": now + 1_000, "end_ms": now + 3_000}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["in_downtime"], false, "{body}");
    supervised
        .check_until(id, "in downtime", |check| check["in_downtime"] == true)
        .await;
    supervised
        .check_until(id, "out of downtime", |check| check["in_downtime"] == false)
        .await;
}

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
        json!({"source": "127.0.10.20", "target": "lyo-fs01.acme.lan",
               "source_asset": "lyo-erp-app01", "target_asset": "lyo-fs01"})
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
    let incident = incidents["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "Shadow copies or backup catalog deleted")
        .unwrap_or_else(|| panic!("the shadow-copy incident is P1: {incidents}"));
    assert_eq!(incident["assets"], json!(["lyo-erp-db01"]));
}

/// A lateral movement's hosts resolved to assets of the event's own client, and the incident
/// listing both ends so that the spread can be drawn.
mod lateral_movement_assets {
    use reqwest::StatusCode;
    use serde_json::{Value, json};

    use crate::support::TestServer;

    crate::on_both_engines!(a_lateral_movement_names_the_assets_of_its_own_client_only);

    fn remote_logon(client: &str, asset: &str, computer: &str, from: Value) -> Value {
        let mut data = json!({"LogonType": 3, "TargetUserName": "adm-ops"});
        data.as_object_mut()
            .unwrap()
            .extend(from.as_object().unwrap().clone());
        json!({
            "client": client, "asset": asset, "message": "an account was logged on",
            "Event": {"System": {"EventID": 4624, "Computer": computer}, "EventData": data}
        })
    }

    async fn lateral_alert(server: &TestServer, client: &str, asset: &str) -> Value {
        let (_, alerts) = server
            .get(&server.admin, &format!("/api/v1/alerts?client={client}"))
            .await;
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["asset"] == asset && a["labels"]["lateral_movement"].is_object())
            .unwrap_or_else(|| panic!("a lateral-movement alert on {asset}: {alerts}"))
            .clone()
    }

    async fn a_lateral_movement_names_the_assets_of_its_own_client_only(server: &TestServer) {
        let (status, body) = server
            .ingest(
                &server.admin,
                json!([
                    // From the MES server's address onto the Lyon domain controller (FQDN, caps).
                    remote_logon(
                        "acme-industrie",
                        "lyo-dc02",
                        "LYO-DC02.acme.lan",
                        json!({"IpAddress": "127.0.10.31"})
                    ),
                    // A workstation name only another client's asset has.
                    remote_logon(
                        "acme-industrie",
                        "lyo-fs01",
                        "lyo-fs01",
                        json!({"WorkstationName": "BEL-DPI01"})
                    ),
                    // The clinic's NAS, from an address only ACME's MES server has.
                    remote_logon(
                        "bellevue-clinic",
                        "bel-nas01",
                        "bel-nas01",
                        json!({"IpAddress": "127.0.10.31"})
                    ),
                ]),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let alert = lateral_alert(server, "acme-industrie", "lyo-dc02").await;
        assert_eq!(
            alert["labels"]["lateral_movement"],
            json!({"source": "127.0.10.31", "target": "LYO-DC02.acme.lan",
                   "source_asset": "lyo-mes01", "target_asset": "lyo-dc02"})
        );
        let (status, incident) = server
            .get(
                &server.admin,
                &format!("/api/v1/incidents/{}", alert["incident_id"]),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{incident}");
        assert_eq!(
            incident["assets"],
            json!(["lyo-dc02", "lyo-mes01"]),
            "both ends of the movement are assets of the incident"
        );

        let by_name = lateral_alert(server, "acme-industrie", "lyo-fs01").await;
        assert_eq!(
            by_name["labels"]["lateral_movement"],
            json!({"source": "BEL-DPI01", "target": "lyo-fs01",
                   "source_asset": null, "target_asset": "lyo-fs01"}),
            "another client's host name never resolves"
        );
        let across = lateral_alert(server, "bellevue-clinic", "bel-nas01").await;
        assert_eq!(
            across["labels"]["lateral_movement"],
            json!({"source": "127.0.10.31", "target": "bel-nas01",
                   "source_asset": null, "target_asset": "bel-nas01"}),
            "another client's address never resolves"
        );
        let (_, incident) = server
            .get(
                &server.admin,
                &format!("/api/v1/incidents/{}", across["incident_id"]),
            )
            .await;
        assert_eq!(incident["assets"], json!(["bel-nas01"]));
    }
}

/// Sigma rules reloaded without a restart: a new rule fires after `POST /api/v1/reload`, a
/// broken one is listed with its file and reason while the others keep working, and an
/// unreadable directory keeps the running rules.
mod sigma_reload {
    use std::path::Path;
    use std::time::Duration;

    use reqwest::StatusCode;
    use serde_json::{Value, json};
    use vigie::server::{ServeOptions, Server, start};
    use vigie::store::scratch;

    use crate::support::example_estate;

    fn rule(title: &str, id: &str, marker: &str) -> String {
        format!(
            "title: {title}\nid: {id}\nauthor: Vigie tests\nlevel: high\nlogsource: {{category: test}}\n\
             detection:\n  selection:\n    message|contains: '{marker}'\n  condition: selection\n"
        )
    }

    struct Harness {
        server: Server,
        http: reqwest::Client,
    }

    impl Harness {
        async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
            let response = self
                .http
                .post(format!("{}{path}", self.server.url()))
                .bearer_auth(&self.server.admin_token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status(),
                response.json().await.unwrap_or(Value::Null),
            )
        }

        async fn get_text(&self, path: &str) -> String {
            self.http
                .get(format!("{}{path}", self.server.url()))
                .bearer_auth(&self.server.admin_token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }

        /// Sends one event with `message` on `asset` and returns the titles of the alerts
        /// on that asset.
        async fn alerts_for(&self, asset: &str, message: &str) -> Vec<String> {
            let (status, body) = self
                .post(
                    "/api/v1/events",
                    json!([{"client": "acme-industrie", "asset": asset, "message": message}]),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let alerts: Value =
                serde_json::from_str(&self.get_text("/api/v1/alerts?client=acme-industrie").await)
                    .unwrap();
            let mut titles: Vec<String> = alerts["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["asset"] == asset)
                .map(|a| a["title"].as_str().unwrap().to_owned())
                .collect();
            titles.sort();
            titles
        }

        async fn rules_loaded_metric(&self) -> String {
            self.get_text("/metrics")
                .await
                .lines()
                .find(|line| line.starts_with("vigie_sigma_rules_loaded "))
                .expect("the metric is rendered")
                .to_owned()
        }
    }

    async fn serve_with_rules(rules: &Path, data: &Path) -> Harness {
        let server = start(ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.to_path_buf(),
            database: None,
            estate_dir: example_estate(),
            alert_rules: None,
            syslog_udp: None,
            syslog_tcp: None,
            max_queued_events: 5_000,
            sigma_rules: vec![rules.to_path_buf()],
        })
        .await
        .expect("the server starts");
        Harness {
            server,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    #[tokio::test]
    async fn sigma_rules_reload_without_a_restart_and_a_broken_rule_is_reported() {
        let rules = scratch::scratch_dir("vigie_reload_rules");
        let data = scratch::scratch_dir("vigie_reload_data");
        std::fs::write(
            rules.join("alpha.yml"),
            rule("Alpha marker seen", "reload-alpha", "alpha-marker"),
        )
        .unwrap();
        let harness = serve_with_rules(&rules, &data).await;
        assert_eq!(
            harness.rules_loaded_metric().await,
            "vigie_sigma_rules_loaded 1"
        );
        assert_eq!(
            harness.alerts_for("lyo-fs01", "beta-marker here").await,
            Vec::<String>::new(),
            "no rule for it yet"
        );

        // A new rule file goes live on reload.
        std::fs::write(
            rules.join("beta.yml"),
            rule("Beta marker seen", "reload-beta", "beta-marker"),
        )
        .unwrap();
        let (status, answer) = harness.post("/api/v1/reload", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["sigma"], json!({"loaded": 2, "rejected": []}));
        assert_eq!(answer["clients"], 2);
        assert_eq!(
            harness
                .alerts_for("lyo-erp-app01", "beta-marker again")
                .await,
            vec!["Beta marker seen"]
        );
        assert_eq!(
            harness.rules_loaded_metric().await,
            "vigie_sigma_rules_loaded 2"
        );

        // A broken rule is listed with its file and reason; the others keep working.
        std::fs::write(
            rules.join("broken.yml"),
            "title: Broken\nid: reload-broken\nlogsource: {category: test}\n\
             detection:\n  selection:\n    message|nosuchmodifier: x\n  condition: selection\n",
        )
        .unwrap();
        let (status, answer) = harness.post("/api/v1/reload", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["sigma"]["loaded"], 2, "{answer}");
        let rejected = answer["sigma"]["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), 1, "{answer}");
        assert!(
            rejected[0]["path"]
                .as_str()
                .unwrap()
                .ends_with("broken.yml"),
            "{answer}"
        );
        assert!(
            rejected[0]["reason"]
                .as_str()
                .unwrap()
                .contains("nosuchmodifier"),
            "{answer}"
        );
        assert_eq!(
            harness
                .alerts_for("lyo-dc02", "alpha-marker and beta-marker")
                .await,
            vec!["Alpha marker seen", "Beta marker seen"]
        );

        // A directory that cannot be read: nothing changes, and the answer says why.
        std::fs::remove_dir_all(&rules).unwrap();
        let (status, answer) = harness.post("/api/v1/reload", json!({})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let details = answer["error"]["details"].to_string();
        assert!(details.contains("vigie_reload_rules"), "{answer}");
        assert_eq!(
            harness
                .alerts_for("lyo-mes01", "beta-marker once more")
                .await,
            vec!["Beta marker seen"],
            "the running rules are kept"
        );
        assert_eq!(
            harness.rules_loaded_metric().await,
            "vigie_sigma_rules_loaded 2"
        );

        harness.server.shutdown().await.unwrap();
        let _ = std::fs::remove_dir_all(&data);
    }
}

/// Per-client tuning in the running server: a rule with `%Administrators%|expand` compiled per
/// client from the estate's `detection.placeholders`, filters of `--sigma-filters DIR` and
/// `DIR/<client-id>/`, the operator's logsource map, and reloads of all of them.
mod per_client_tuning {
    use std::path::PathBuf;
    use std::time::Duration;

    use reqwest::StatusCode;
    use serde_json::{Value, json};
    use vigie::server::{DetectionOptions, ServeOptions, Server, start_with};
    use vigie::store::scratch;

    const ADMIN_LOGON: &str = "title: Administrator logon\nid: admin-logon\nauthor: Vigie tests\nlevel: high\n\
        logsource: {category: test}\n\
        detection:\n  selection:\n    message|contains: logon\n    TargetUserName|expand: '%Administrators%'\n  condition: selection\n";
    const REMOTE_SHELL: &str = "title: Remote shell opened\nid: remote-shell\nauthor: Vigie tests\nlevel: high\n\
        logsource: {category: test}\n\
        detection:\n  selection:\n    message|contains: remote shell\n  condition: selection\n";

    fn jump_filter(host: &str) -> String {
        format!(
            "title: Remote shells from the jump host are the admins' work\nid: mf-alpha-jump\n\
             logsource: {{category: test}}\n\
             filter:\n  rules: [remote-shell]\n  jump:\n    WorkstationName: {host}\n  condition: not jump\n"
        )
    }

    fn client(id: &str, admins: Option<&str>) -> String {
        let assets: String = (1..=6)
            .map(|i| format!("  - {{ id: {id}-srv{i}, kind: host }}\n"))
            .collect();
        let detection = admins
            .map(|admins| format!("detection:\n  placeholders:\n    Administrators: [{admins}]\n"))
            .unwrap_or_default();
        format!("id: {id}\nname: {id}\nassets:\n{assets}{detection}")
    }

    struct Tuned {
        server: Server,
        http: reqwest::Client,
        root: PathBuf,
    }

    impl Tuned {
        /// A server over clients `alpha` and `beta` (each with its administrators) and
        /// `gamma` (none), the two rules above, and `filters` written under `filters/`.
        async fn start(filters: &[(&str, String)], logsource_map: Option<&str>) -> Tuned {
            let root = scratch::scratch_dir("vigie_tuning");
            let write = |path: &str, text: &str| {
                let path = root.join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            };
            write(
                "estate/alpha.yaml",
                &client("alpha", Some("adm-alpha, root-alpha")),
            );
            write("estate/beta.yaml", &client("beta", Some("adm-beta")));
            write("estate/gamma.yaml", &client("gamma", None));
            write("rules/admin_logon.yml", ADMIN_LOGON);
            write("rules/remote_shell.yml", REMOTE_SHELL);
            std::fs::create_dir_all(root.join("filters")).unwrap();
            for (path, text) in filters {
                write(&format!("filters/{path}"), text);
            }
            if let Some(map) = logsource_map {
                write("logsources.yaml", map);
            }
            let server = start_with(
                ServeOptions {
                    listen: "127.0.0.1:0".parse().unwrap(),
                    data_dir: root.join("data"),
                    database: None,
                    estate_dir: root.join("estate"),
                    alert_rules: None,
                    syslog_udp: None,
                    syslog_tcp: None,
                    max_queued_events: 5_000,
                    sigma_rules: vec![root.join("rules")],
                },
                DetectionOptions {
                    sigma_filters: Some(root.join("filters")),
                    logsource_map: logsource_map.map(|_| root.join("logsources.yaml")),
                },
            )
            .await
            .expect("the server starts");
            Tuned {
                server,
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap(),
                root,
            }
        }

        fn path(&self, path: &str) -> PathBuf {
            self.root.join(path)
        }

        async fn send(
            &self,
            method: reqwest::Method,
            path: &str,
            body: Option<Value>,
        ) -> (StatusCode, Value) {
            let mut request = self
                .http
                .request(method, format!("{}{path}", self.server.url()))
                .bearer_auth(&self.server.admin_token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            (
                response.status(),
                response.json().await.unwrap_or(Value::Null),
            )
        }

        async fn reload(&self) -> (StatusCode, Value) {
            self.send(reqwest::Method::POST, "/api/v1/reload", Some(json!({})))
                .await
        }

        /// Sends one event of `client` on `asset` and returns the titles of the alerts on
        /// that asset.
        async fn alerts_for(&self, client: &str, asset: &str, event: Value) -> Vec<String> {
            let mut event = event;
            event["client"] = json!(client);
            event["asset"] = json!(asset);
            let (status, body) = self
                .send(
                    reqwest::Method::POST,
                    "/api/v1/events",
                    Some(json!([event])),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let (_, alerts) = self
                .send(
                    reqwest::Method::GET,
                    &format!("/api/v1/alerts?client={client}"),
                    None,
                )
                .await;
            let mut titles: Vec<String> = alerts["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["asset"] == asset)
                .map(|a| a["title"].as_str().unwrap().to_owned())
                .collect();
            titles.sort();
            titles
        }

        async fn stop(self) {
            self.server.shutdown().await.unwrap();
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    fn logon(user: &str) -> Value {
        json!({"message": "logon of an account", "TargetUserName": user})
    }

    fn shell(from: &str) -> Value {
        json!({"message": "remote shell opened", "WorkstationName": from})
    }

    fn notices(answer: &Value) -> Vec<String> {
        answer["sigma_tuning"]["notices"]
            .as_array()
            .unwrap_or_else(|| panic!("notices in {answer}"))
            .iter()
            .map(|n| n["notice"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn each_clients_administrators_trigger_on_that_clients_events_only() {
        let tuned = Tuned::start(&[], None).await;
        assert_eq!(
            tuned.server.sigma_loaded, 2,
            "the per-client rule counts once"
        );
        assert_eq!(
            tuned.server.sigma_notices, 1,
            "gamma gives no administrators"
        );

        assert_eq!(
            tuned
                .alerts_for("alpha", "alpha-srv1", logon("ROOT-alpha"))
                .await,
            vec!["Administrator logon"]
        );
        assert_eq!(
            tuned
                .alerts_for("beta", "beta-srv1", logon("adm-beta"))
                .await,
            vec!["Administrator logon"]
        );
        assert_eq!(
            tuned
                .alerts_for("alpha", "alpha-srv2", logon("adm-beta"))
                .await,
            Vec::<String>::new(),
            "beta's administrator is nobody at alpha"
        );
        assert_eq!(
            tuned
                .alerts_for("beta", "beta-srv2", logon("adm-alpha"))
                .await,
            Vec::<String>::new()
        );
        assert_eq!(
            tuned
                .alerts_for("gamma", "gamma-srv1", logon("adm-alpha"))
                .await,
            Vec::<String>::new(),
            "the rule does not run for a client without administrators"
        );

        // The reload answer says so, once; giving gamma administrators makes it run there.
        let (status, answer) = tuned.reload().await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            notices(&answer),
            ["rule does not run for client `gamma` (no `%Administrators%`)"]
        );
        assert_eq!(answer["sigma_tuning"]["notices"][0]["rule"], "admin-logon");
        std::fs::write(
            tuned.path("estate/gamma.yaml"),
            client("gamma", Some("adm-gamma")),
        )
        .unwrap();
        let (status, answer) = tuned.reload().await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(notices(&answer), Vec::<String>::new());
        assert_eq!(answer["sigma"]["loaded"], 2);
        assert_eq!(
            tuned
                .alerts_for("gamma", "gamma-srv2", logon("adm-gamma"))
                .await,
            vec!["Administrator logon"]
        );

        // A bad placeholder is an estate problem: the reload is refused and nothing changes.
        std::fs::write(
            tuned.path("estate/gamma.yaml"),
            format!("{}    Servers: ['']\n", client("gamma", Some("adm-gamma"))),
        )
        .unwrap();
        let (status, answer) = tuned.reload().await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["error"]["details"].to_string().contains(
                "gamma.yaml:13: field `detection.placeholders.Servers[0]`: must not be empty"
            ),
            "{answer}"
        );
        assert_eq!(
            tuned
                .alerts_for("gamma", "gamma-srv3", logon("adm-gamma"))
                .await,
            vec!["Administrator logon"],
            "the running rules are kept"
        );
        tuned.stop().await;
    }

    #[tokio::test]
    async fn a_client_filter_suppresses_its_false_positive_and_reloads_with_its_changes() {
        let tuned = Tuned::start(
            &[
                ("alpha/jump_host.yml", jump_filter("JUMP01")),
                ("delta/anything.yml", jump_filter("X")),
            ],
            None,
        )
        .await;
        assert_eq!(
            tuned.server.sigma_filters, 1,
            "delta is no client: its filters are left out"
        );

        assert_eq!(
            tuned
                .alerts_for("alpha", "alpha-srv1", shell("jump01"))
                .await,
            Vec::<String>::new(),
            "alpha's admins working from their jump host are no alert"
        );
        assert_eq!(
            tuned.alerts_for("beta", "beta-srv1", shell("JUMP01")).await,
            vec!["Remote shell opened"],
            "the same event from beta still alerts"
        );
        assert_eq!(
            tuned
                .alerts_for("alpha", "alpha-srv2", shell("WKS-042"))
                .await,
            vec!["Remote shell opened"],
            "what the filter does not describe still alerts at alpha"
        );

        // The jump host changed: the filter is edited and reloaded.
        std::fs::write(
            tuned.path("filters/alpha/jump_host.yml"),
            jump_filter("JUMP02"),
        )
        .unwrap();
        let (status, answer) = tuned.reload().await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["sigma_tuning"]["filters"], 1, "{answer}");
        let notices = notices(&answer);
        assert!(
            notices.iter().any(|n| n
                == "no client `delta` in the estate: the filters of this directory are not applied"),
            "{answer}"
        );
        assert_eq!(
            tuned
                .alerts_for("alpha", "alpha-srv3", shell("JUMP01"))
                .await,
            vec!["Remote shell opened"],
            "the old jump host is no longer excused"
        );
        assert_eq!(
            tuned
                .alerts_for("alpha", "alpha-srv4", shell("JUMP02"))
                .await,
            Vec::<String>::new()
        );

        // A filter for every client, and one that names a rule nobody has.
        std::fs::write(
            tuned.path("filters/everyone.yml"),
            "title: Lab\nlogsource: {category: test}\nfilter:\n  rules: any\n  lab:\n    WorkstationName|startswith: lab-\n  condition: not lab\n",
        )
        .unwrap();
        std::fs::write(
            tuned.path("filters/alpha/typo.yml"),
            "title: Typo\nid: mf-typo\nlogsource: {category: test}\nfilter:\n  rules: [remote-shel]\n  s:\n    a: b\n  condition: not s\n",
        )
        .unwrap();
        let (status, answer) = tuned.reload().await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["sigma_tuning"]["filters"], 2, "{answer}");
        let rejected = answer["sigma"]["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), 1, "{answer}");
        assert_eq!(rejected[0]["rule"], "mf-typo");
        assert_eq!(
            rejected[0]["reason"],
            "filter: references unknown rule `remote-shel`"
        );
        assert_eq!(
            tuned.alerts_for("beta", "beta-srv2", shell("LAB-7")).await,
            Vec::<String>::new()
        );

        // An unreadable filter directory refuses the reload; the running filters stay.
        std::fs::remove_dir_all(tuned.path("filters")).unwrap();
        let (status, answer) = tuned.reload().await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["error"]["details"].to_string().contains("filters"),
            "{answer}"
        );
        assert_eq!(
            tuned
                .alerts_for("alpha", "alpha-srv5", shell("JUMP02"))
                .await,
            Vec::<String>::new(),
            "the running filters are kept"
        );
        tuned.stop().await;
    }

    const WAF_RULE: &str = "title: WAF blocked a request\nid: waf-blocked\nlevel: medium\n\
        logsource: {product: acme_waf}\n\
        detection:\n  selection:\n    message|contains: blocked\n  condition: selection\n";
    const WINDOWS_RULE: &str = "title: Something blocked on Windows\nid: windows-blocked\nlevel: medium\n\
        logsource: {product: windows}\n\
        detection:\n  selection:\n    message|contains: blocked\n  condition: selection\n";

    #[tokio::test]
    async fn the_operators_logsource_map_routes_events_and_is_re_read_on_reload() {
        let tuned = Tuned::start(
            &[],
            Some("mappings:\n  - when: {kind: waf}\n    product: acme_waf\n"),
        )
        .await;
        assert_eq!(tuned.server.logsource_map_entries, Some(1));
        std::fs::write(tuned.path("rules/waf.yml"), WAF_RULE).unwrap();
        std::fs::write(tuned.path("rules/windows.yml"), WINDOWS_RULE).unwrap();
        let (status, answer) = tuned.reload().await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["sigma_tuning"]["logsource_map_entries"], 1);
        let waf = json!({"kind": "waf", "message": "request blocked"});
        assert_eq!(
            tuned.alerts_for("beta", "beta-srv1", waf.clone()).await,
            vec!["WAF blocked a request"],
            "the map makes the event a WAF's: the Windows rule is not tested on it"
        );

        // A map that does not read refuses the reload, like an unreadable rule directory.
        let map = tuned.path("logsources.yaml");
        std::fs::write(
            &map,
            "mappings:\n  - when: {kind|regex: waf}\n    product: acme_waf\n",
        )
        .unwrap();
        let (status, answer) = tuned.reload().await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["error"]["details"]
                .to_string()
                .contains("logsources.yaml:2"),
            "{answer}"
        );
        assert_eq!(
            tuned.alerts_for("beta", "beta-srv2", waf.clone()).await,
            vec!["WAF blocked a request"],
            "the running map is kept"
        );

        // Without the entry, nothing says the event is a WAF's: both rules are tested.
        std::fs::write(&map, "# no entries\n").unwrap();
        let (status, answer) = tuned.reload().await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["sigma_tuning"]["logsource_map_entries"], 0);
        assert_eq!(
            tuned.alerts_for("beta", "beta-srv3", waf).await,
            vec!["Something blocked on Windows", "WAF blocked a request"]
        );
        tuned.stop().await;
    }
}

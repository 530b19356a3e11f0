//! `vigie hunt` as an analyst runs it: the real binary over the SigmaHQ regression samples (each
//! sample must fire its own rule), the JSON and CSV outputs on a handmade JSON lines file, the
//! error for a path that does not exist, and a hunt tuned for one client of an estate
//! (placeholders, filters) that matches what `vigie serve` alerts on for that client, the
//! clients and assets created through serve's API included.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use vigie::store::scratch;

fn hunt(args: &[&str]) -> Output {
    hunt_in(Path::new("."), args)
}

/// `vigie hunt` run in `dir`, where its default data directory `vigie-data` is looked for; the
/// store is what `args` name, never the environment's `VIGIE_*` settings.
fn hunt_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigie"))
        .current_dir(dir)
        .env_remove("VIGIE_CONFIG")
        .env_remove("VIGIE_DATA_DIR")
        .env_remove("VIGIE_DATABASE")
        .arg("hunt")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The SigmaHQ copy in `shared/`, beside the repository. Missing data fails under CI and only
/// skips elsewhere.
fn sigmahq() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sigmahq");
    if dir.join("regression_data").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and the SigmaHQ data is missing: {}",
        dir.display()
    );
    eprintln!("note: skipped, no SigmaHQ data at {}", dir.display());
    None
}

/// The rule id a regression sample tests: `rule_metadata[0].id` of its `info.yml`, else the
/// sample's file stem (SigmaHQ names samples after the rule id).
fn expected_rule_id(sample: &Path) -> String {
    let info = sample.with_file_name("info.yml");
    if let Ok(yaml) = std::fs::read_to_string(info) {
        let mut lines = yaml
            .lines()
            .skip_while(|l| !l.starts_with("rule_metadata:"));
        if let Some(id) = lines.nth(1).and_then(|l| l.trim().strip_prefix("- id:")) {
            return id.trim().to_owned();
        }
    }
    let stem = sample.file_stem().unwrap_or_default();
    stem.to_string_lossy().into_owned()
}

fn samples(dir: &Path, extension: &str, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            samples(&path, extension, found);
        } else if path.extension().is_some_and(|e| e == extension) {
            found.push(path);
        }
    }
}

#[test]
fn every_regression_sample_fires_its_own_rule() {
    let Some(sigmahq) = sigmahq() else { return };
    let regression = sigmahq.join("regression_data");
    // Not the sigmahq folder itself: its regression_data holds `info.yml` files, which the
    // loader reads and rejects as rules without a title.
    let rules: Vec<String> = ["rules", "rules-emerging-threats", "rules-threat-hunting"]
        .iter()
        .flat_map(|d| ["--rules".to_owned(), sigmahq.join(d).display().to_string()])
        .collect();
    let mut args = vec![regression.to_str().unwrap(), "--format", "json"];
    args.extend(rules.iter().map(String::as_str));
    let output = hunt(&args);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    let mut fired: HashMap<String, HashSet<String>> = HashMap::new();
    for line in text(&output.stdout).lines() {
        let found: Value = serde_json::from_str(line).unwrap();
        let file = found["file"].as_str().unwrap().to_owned();
        let rule_id = found["rule_id"].as_str().unwrap_or_default().to_owned();
        fired.entry(file).or_default().insert(rule_id);
    }
    let mut evtx = Vec::new();
    samples(&regression, "evtx", &mut evtx);
    let mut missed = Vec::new();
    let mut json_hits = 0;
    for sample in &evtx {
        let id = expected_rule_id(sample);
        let hit = |path: &Path| {
            fired
                .get(&path.display().to_string())
                .is_some_and(|ids| ids.contains(&id))
        };
        if !hit(sample) {
            missed.push(format!("{} ({id})", sample.display()));
        }
        // The evtx_dump twin of the sample, pretty-printed objects back to back.
        if hit(&sample.with_extension("json")) {
            json_hits += 1;
        }
    }
    let recall = evtx.len() - missed.len();
    eprintln!(
        "recall: {recall}/{} on EVTX, {json_hits}/{} on their JSON exports",
        evtx.len(),
        evtx.len()
    );
    eprintln!("{stderr}");
    assert_eq!(evtx.len(), 202, "the regression set changed");
    assert!(recall >= 195, "missed:\n{}", missed.join("\n"));
    assert!(json_hits >= 195, "JSON recall {json_hits}/{}", evtx.len());
    let loaded: usize = stderr
        .lines()
        .find_map(|l| l.split_once(" rules loaded, "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0);
    assert!(loaded > 3500, "{stderr}");
}

const RULE: &str = r#"title: Encoded "PowerShell", from a test
id: 0b4e3c7a-8f1d-4d2b-9a6e-5c3f2b1a0d9e
status: test
author: Vigie tests, QA team
level: high
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '\powershell.exe'
        CommandLine|contains: ' -enc '
    condition: selection
"#;

const LOW_RULE: &str = r#"title: Any whoami
id: 7d9c1b2e-3f4a-4b5c-8d6e-9f0a1b2c3d4e
author: Vigie tests
level: low
logsource:
    category: process_creation
detection:
    selection:
        Image|endswith: '\whoami.exe'
    condition: selection
"#;

const EVENTS: &str = concat!(
    r#"{"Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "CommandLine": "powershell -enc SQBFAFgA", "@timestamp": "2026-01-02T03:04:05Z"}"#,
    "\n",
    r#"{"Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all"}"#,
    "\n\n",
    "{not json\n",
    r#"{"Image": "C:\\Windows\\notepad.exe"}"#,
    "\n",
);

fn handmade_case() -> (PathBuf, String, String) {
    let dir = scratch::scratch_dir("vigie_hunt");
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/encoded.yml"), RULE).unwrap();
    std::fs::write(dir.join("rules/whoami.yml"), LOW_RULE).unwrap();
    std::fs::write(dir.join("events.jsonl"), EVENTS).unwrap();
    let events = dir.join("events.jsonl").display().to_string();
    let rules = dir.join("rules").display().to_string();
    (dir, events, rules)
}

#[test]
fn json_output_is_one_object_per_match_with_place_rule_and_author() {
    let (dir, events, rules) = handmade_case();
    let output = hunt(&[&events, "--rules", &rules, "--format", "json"]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let matches: Vec<Value> = text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        matches,
        vec![
            serde_json::json!({
                "file": events,
                "line": 1,
                "time": "2026-01-02T03:04:05Z",
                "rule_id": "0b4e3c7a-8f1d-4d2b-9a6e-5c3f2b1a0d9e",
                "title": "Encoded \"PowerShell\", from a test",
                "level": "high",
                "author": "Vigie tests, QA team",
            }),
            serde_json::json!({
                "file": events,
                "line": 2,
                "rule_id": "7d9c1b2e-3f4a-4b5c-8d6e-9f0a1b2c3d4e",
                "title": "Any whoami",
                "level": "low",
                "author": "Vigie tests",
            }),
        ]
    );
    assert!(stderr.contains("2 rules loaded, 0 rejected"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{events}: skipped 1 unreadable record(s): line 4:"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 files, 3 events, 2 matches (1 high, 1 low)"),
        "{stderr}"
    );

    let high = hunt(&[
        &events,
        "--rules",
        &rules,
        "--format=json",
        "--min-level=high",
    ]);
    assert!(high.status.success());
    assert_eq!(text(&high.stdout).lines().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn csv_output_has_a_header_and_quotes_what_needs_it() {
    let (dir, events, rules) = handmade_case();
    let output = hunt(&[&events, "--rules", &rules, "--format", "csv"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.split("\r\n").collect();
    assert_eq!(
        lines,
        vec![
            "file,record,line,item,time,computer,event_id,rule_id,title,level,author",
            &format!(
                "{events},,1,,2026-01-02T03:04:05Z,,,0b4e3c7a-8f1d-4d2b-9a6e-5c3f2b1a0d9e,\
                 \"Encoded \"\"PowerShell\"\", from a test\",high,\"Vigie tests, QA team\""
            ),
            &format!(
                "{events},,2,,,,,7d9c1b2e-3f4a-4b5c-8d6e-9f0a1b2c3d4e,Any whoami,low,Vigie tests"
            ),
            "",
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn table_output_aligns_its_columns() {
    let (dir, events, rules) = handmade_case();
    let output = hunt(&[&events, "--rules", &rules]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("TIME "), "{stdout}");
    let title_column = lines[0].find("TITLE").unwrap();
    assert_eq!(lines[1].find("Any whoami"), Some(title_column), "{stdout}");
    assert_eq!(lines[2].find("Encoded"), Some(title_column), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_path_or_rule_directory_is_an_error_naming_it() {
    let (dir, events, rules) = handmade_case();
    let missing = dir.join("no-such-disk").display().to_string();
    let output = hunt(&[&missing, "--rules", &rules]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot read {missing}")),
        "{stderr}"
    );

    let no_rules = dir.join("no-rules").display().to_string();
    let output = hunt(&[&events, "--rules", &no_rules]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot read rule directory {no_rules}")),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `vigie hunt --estate DIR --client ID --sigma-filters DIR`: the client's `expand` values and
/// filters apply as in `vigie serve`, and the events read are that client's.
mod tuned_for_a_client {
    use std::path::{Path, PathBuf};
    use std::process::Output;
    use std::time::Duration;

    use reqwest::StatusCode;
    use serde_json::{Value, json};
    use vigie::server::{DetectionOptions, ServeOptions, start_with};
    use vigie::store::scratch;

    use super::{hunt, hunt_in, text};

    const ADMIN_LOGON: &str = "title: Administrator logon\nid: admin-logon\nauthor: Vigie tests\nlevel: high\n\
        logsource: {category: test}\n\
        detection:\n  selection:\n    message|contains: logon\n    TargetUserName|expand: '%Administrators%'\n  condition: selection\n";
    const REMOTE_SHELL: &str = "title: Remote shell opened\nid: remote-shell\nauthor: Vigie tests\nlevel: high\n\
        logsource: {category: test}\n\
        detection:\n  selection:\n    message|contains: remote shell\n  condition: selection\n";
    const JUMP_FILTER: &str = "title: Remote shells from the jump host are the admins' work\nid: mf-alpha-jump\n\
        logsource: {category: test}\n\
        filter:\n  rules: [remote-shell]\n  jump:\n    WorkstationName: JUMP01\n  condition: not jump\n";

    /// The events of the hunt, one per line; the last says it is beta's, and is the hunted
    /// client's all the same (serve, too, takes the client from the ingest, not the fields).
    fn events() -> Vec<Value> {
        vec![
            json!({"message": "logon of an account", "TargetUserName": "ADM-alpha"}),
            json!({"message": "logon of an account", "TargetUserName": "adm-beta"}),
            json!({"message": "remote shell opened", "WorkstationName": "jump01"}),
            json!({"message": "remote shell opened", "WorkstationName": "WKS-042"}),
            json!({"message": "logon of an account", "TargetUserName": "adm-alpha", "client": "beta"}),
        ]
    }

    fn client(id: &str, admins: Option<&str>) -> String {
        let assets: String = (1..=5)
            .map(|i| format!("  - {{ id: {id}-srv{i}, kind: host }}\n"))
            .collect();
        let detection = admins
            .map(|admins| format!("detection:\n  placeholders:\n    Administrators: [{admins}]\n"))
            .unwrap_or_default();
        format!("id: {id}\nname: {id}\nassets:\n{assets}{detection}")
    }

    /// Clients `alpha` and `beta` (each with its administrators) and `gamma` (none), the two
    /// rules above, alpha's jump-host filter, `extra` files, and the events.
    struct Case {
        root: PathBuf,
    }

    impl Case {
        fn new(extra: &[(&str, &str)]) -> Case {
            let root = scratch::scratch_dir("vigie_hunt_tuned");
            let case = Case { root };
            case.write(
                "estate/alpha.yaml",
                &client("alpha", Some("adm-alpha, root-alpha")),
            );
            case.write("estate/beta.yaml", &client("beta", Some("adm-beta")));
            case.write("estate/gamma.yaml", &client("gamma", None));
            case.write("solo/alpha.yaml", &client("alpha", Some("adm-alpha")));
            case.write("rules/admin_logon.yml", ADMIN_LOGON);
            case.write("rules/remote_shell.yml", REMOTE_SHELL);
            case.write("filters/alpha/jump_host.yml", JUMP_FILTER);
            for (path, text) in extra {
                case.write(path, text);
            }
            let lines: Vec<String> = events().iter().map(Value::to_string).collect();
            case.write("events.jsonl", &lines.join("\n"));
            case
        }

        fn write(&self, path: &str, text: &str) {
            let path = self.root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }

        fn path(&self, path: &str) -> String {
            self.root.join(path).display().to_string()
        }

        /// The hunt over the events with the rules, in JSON, and `args`.
        fn hunt(&self, args: &[&str]) -> Output {
            let (events, rules) = (self.path("events.jsonl"), self.path("rules"));
            let mut all = vec![events.as_str(), "--rules", &rules, "--format", "json"];
            all.extend(args);
            hunt(&all)
        }

        /// The hunt tuned for `client` of the three-client estate, with the filters.
        fn hunt_for(&self, client: &str) -> Output {
            let (estate, filters) = (self.path("estate"), self.path("filters"));
            self.hunt(&[
                "--estate",
                &estate,
                "--client",
                client,
                "--sigma-filters",
                &filters,
            ])
        }
    }

    impl Drop for Case {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    /// `(line, rule title)` of each match of a successful JSON hunt, in order.
    fn fired(output: &Output) -> Vec<(u64, String)> {
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
            .lines()
            .map(|line| {
                let found: Value = serde_json::from_str(line).unwrap();
                let title = found["title"].as_str().unwrap().to_owned();
                (found["line"].as_u64().unwrap(), title)
            })
            .collect()
    }

    fn matches(expected: &[(u64, &str)]) -> Vec<(u64, String)> {
        expected
            .iter()
            .map(|(line, title)| (*line, (*title).to_owned()))
            .collect()
    }

    /// A failed hunt's stderr; the process exited non-zero, and did not panic.
    fn failure(output: &Output) -> String {
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }

    #[test]
    fn the_clients_administrators_and_filters_apply_to_its_events_only() {
        let case = Case::new(&[]);
        let alpha = case.hunt_for("alpha");
        assert_eq!(
            fired(&alpha),
            matches(&[
                (1, "Administrator logon"),
                (4, "Remote shell opened"),
                (5, "Administrator logon"),
            ]),
            "beta's administrator is nobody at alpha; alpha's jump host is filtered"
        );
        let stderr = text(&alpha.stderr);
        assert!(
            stderr.contains(&format!(
                "{}:1: rule admin-logon: notice: rule does not run for client `gamma` (no `%Administrators%`)",
                case.path("rules/admin_logon.yml")
            )),
            "the notice is serve's: {stderr}"
        );
        assert!(
            stderr.contains("2 rules loaded for client `alpha`, 0 rejected, 1 filters"),
            "{stderr}"
        );

        assert_eq!(
            fired(&case.hunt_for("beta")),
            matches(&[
                (2, "Administrator logon"),
                (3, "Remote shell opened"),
                (4, "Remote shell opened"),
            ]),
            "alpha's filter does not tune beta"
        );
        let gamma = case.hunt_for("gamma");
        assert_eq!(
            fired(&gamma),
            matches(&[(3, "Remote shell opened"), (4, "Remote shell opened")])
        );
        let stderr = text(&gamma.stderr);
        assert!(
            stderr.contains(
                "1 rules loaded for client `gamma` (1 with placeholders do not run for it), \
                 0 rejected, 0 filters"
            ),
            "{stderr}"
        );

        // An estate of one client needs no --client.
        let solo = case.path("solo");
        assert_eq!(
            fired(&case.hunt(&["--estate", &solo])),
            matches(&[
                (1, "Administrator logon"),
                (3, "Remote shell opened"),
                (4, "Remote shell opened"),
                (5, "Administrator logon"),
            ]),
            "no filters without --sigma-filters"
        );

        // Without an estate nothing changes: a rule with placeholders is rejected.
        let untuned = case.hunt(&[]);
        assert_eq!(
            fired(&untuned),
            matches(&[(3, "Remote shell opened"), (4, "Remote shell opened")])
        );
        assert!(
            text(&untuned.stderr).contains("1 rules loaded, 1 rejected"),
            "{}",
            text(&untuned.stderr)
        );
    }

    /// Sends each event to `vigie serve` as `client`'s (event `i` on asset `<client>-srv<i>`)
    /// and returns `(i, title)` of the alerts each one raised.
    async fn serve_alerts(
        http: &reqwest::Client,
        url: &str,
        token: &str,
        client: &str,
    ) -> Vec<(u64, String)> {
        let mut alerts = Vec::new();
        for (index, event) in events().into_iter().enumerate() {
            let line = index as u64 + 1;
            let asset = format!("{client}-srv{line}");
            let mut event = event;
            event["client"] = json!(client);
            event["asset"] = json!(asset);
            let response = http
                .post(format!("{url}/api/v1/events"))
                .bearer_auth(token)
                .json(&json!([event]))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value = http
                .get(format!("{url}/api/v1/alerts?client={client}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let mut titles: Vec<String> = body["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|alert| alert["asset"] == asset.as_str())
                .map(|alert| alert["title"].as_str().unwrap().to_owned())
                .collect();
            titles.sort();
            alerts.extend(titles.into_iter().map(|title| (line, title)));
        }
        alerts
    }

    // Several threads: the hunt (a child process) blocks one while the server runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hunt_and_serve_agree_on_the_same_events_and_tuning() {
        let case = Case::new(&[(
            "filters/everyone.yml",
            "title: The scanner workstation\nlogsource: {category: test}\nfilter:\n  rules: any\n  scanner:\n    WorkstationName|startswith: wks-\n  condition: not scanner\n",
        )]);
        let root = Path::new(&case.root);
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
                logsource_map: None,
            },
        )
        .await
        .expect("the server starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        for client in ["alpha", "beta", "gamma"] {
            let served = serve_alerts(&http, &server.url(), &server.admin_token, client).await;
            let hunted = tokio::task::block_in_place(|| fired(&case.hunt_for(client)));
            assert_eq!(hunted, served, "client {client}");
            // Line 4 (WKS-042) is filtered for everyone, line 3 (jump01) for alpha.
            let expected: &[(u64, &str)] = match client {
                "alpha" => &[(1, "Administrator logon"), (5, "Administrator logon")],
                "beta" => &[(2, "Administrator logon"), (3, "Remote shell opened")],
                _ => &[(3, "Remote shell opened")],
            };
            assert_eq!(hunted, matches(expected), "client {client}");
        }
        server.shutdown().await.unwrap();
    }

    #[test]
    fn tuning_that_cannot_apply_is_an_error_saying_why() {
        let case = Case::new(&[(
            "filters/beta/broken.yml",
            "title: Broken\nlogsource: {category: test}\nfilter:\n  rules: [remote-shell]\n  jump: [unclosed\n  condition: not jump\n",
        )]);
        let (estate, filters) = (case.path("estate"), case.path("filters"));

        let stderr = failure(&case.hunt_for("delta"));
        assert!(
            stderr.contains(&format!(
                "no client `delta` in the estate {estate}; its clients: `alpha`, `beta`, `gamma`"
            )),
            "{stderr}"
        );

        let stderr = failure(&case.hunt(&["--estate", &estate]));
        assert!(
            stderr.contains(&format!(
                "the estate {estate} has 3 clients: say whose tuning applies with --client \
                 (one of `alpha`, `beta`, `gamma`)"
            )),
            "{stderr}"
        );

        let stderr = failure(&case.hunt_for("beta"));
        let broken = case.path("filters/beta/broken.yml");
        assert!(
            stderr.contains("the filters tuning client `beta` do not all load"),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("  {broken}:6: invalid yaml")),
            "{stderr}"
        );
        assert_eq!(
            fired(&case.hunt_for("alpha")),
            matches(&[
                (1, "Administrator logon"),
                (4, "Remote shell opened"),
                (5, "Administrator logon"),
            ]),
            "beta's broken filter does not stop alpha's hunt"
        );

        let stderr = failure(&case.hunt(&["--client", "alpha", "--sigma-filters", &filters]));
        assert!(stderr.contains("--estate"), "{stderr}");
    }

    const WORKSTATION_LOGON: &str = "title: Logon on a workstation\nid: workstation-logon\nauthor: Vigie tests\nlevel: medium\n\
        logsource: {category: test}\n\
        detection:\n  selection:\n    message|contains: logon\n    Computer|expand: '%Workstations%'\n  condition: selection\n";

    /// Events for the clients created through the API: `delta`'s administrator, alpha's, a
    /// logon on the workstation added to `gamma` through the API, one on a server of gamma's.
    const API_EVENTS: &str = concat!(
        r#"{"message": "logon of an account", "TargetUserName": "ADM-delta"}"#,
        "\n",
        r#"{"message": "logon of an account", "TargetUserName": "adm-alpha"}"#,
        "\n",
        r#"{"message": "logon of an account", "Computer": "pc-0042"}"#,
        "\n",
        r#"{"message": "logon of an account", "Computer": "gamma-srv1"}"#,
        "\n",
    );

    impl Case {
        /// The hunt over `API_EVENTS`, run in the case's directory (which has no `vigie-data`),
        /// for `client` with the three-client estate and `store` options.
        fn hunt_api_events(&self, client: &str, store: &[&str]) -> Output {
            let (events, rules, estate) = (
                self.path("api_events.jsonl"),
                self.path("rules"),
                self.path("estate"),
            );
            let mut args = vec![
                events.as_str(),
                "--rules",
                &rules,
                "--format",
                "json",
                "--estate",
                &estate,
                "--client",
                client,
            ];
            args.extend(store);
            hunt_in(&self.root, &args)
        }
    }

    // Several threads: the hunt (a child process) blocks one while the server runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clients_and_assets_created_through_the_api_tune_the_hunt() {
        let case = Case::new(&[
            ("rules/workstation_logon.yml", WORKSTATION_LOGON),
            ("api_events.jsonl", API_EVENTS),
        ]);
        let data = case.path("data");
        let server = start_with(
            ServeOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                data_dir: case.root.join("data"),
                database: None,
                estate_dir: case.root.join("estate"),
                alert_rules: None,
                syslog_udp: None,
                syslog_tcp: None,
                max_queued_events: 5_000,
                sigma_rules: vec![case.root.join("rules")],
            },
            DetectionOptions::default(),
        )
        .await
        .expect("the server starts");
        let http = reqwest::Client::new();
        let created = [
            (
                "/api/v1/clients".to_owned(),
                json!({"id": "delta", "name": "Delta",
                       "detection": {"placeholders": {"Administrators": ["adm-delta"]}}}),
            ),
            (
                "/api/v1/clients/gamma/assets".to_owned(),
                json!({"id": "gamma-pc42", "kind": "host", "hostnames": ["PC-0042"],
                       "tags": ["workstation"]}),
            ),
        ];
        for (path, body) in created {
            let response = http
                .post(format!("{}{path}", server.url()))
                .bearer_auth(&server.admin_token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED, "{path}");
        }
        // Read while serve runs (and writes), then once it has stopped.
        let running =
            tokio::task::block_in_place(|| case.hunt_api_events("delta", &["--data-dir", &data]));
        assert_eq!(fired(&running), matches(&[(1, "Administrator logon")]));
        server.shutdown().await.unwrap();

        let delta = case.hunt_api_events("delta", &["--data-dir", &data]);
        assert_eq!(
            fired(&delta),
            matches(&[(1, "Administrator logon")]),
            "delta's administrator only, not alpha's"
        );
        let stderr = text(&delta.stderr);
        assert!(
            stderr.contains(&format!(
                "estate: the files of {}, and 1 clients and 1 assets created through the API \
                 (from sqlite://{data}/vigie.db)",
                case.path("estate")
            )),
            "{stderr}"
        );
        assert_eq!(
            fired(&case.hunt_api_events("gamma", &["--data-dir", &data])),
            matches(&[(3, "Logon on a workstation")]),
            "the workstation added through the API is gamma's `%Workstations%`"
        );
        let stderr = failure(&case.hunt_api_events("epsilon", &["--data-dir", &data]));
        assert!(
            stderr.contains(&format!(
                "no client `epsilon` in the estate {}; its clients: `alpha`, `beta`, `delta`, \
                 `gamma`",
                case.path("estate")
            )),
            "{stderr}"
        );
    }

    #[test]
    fn without_a_database_in_the_default_data_directory_the_estate_is_its_files() {
        let case = Case::new(&[
            ("rules/workstation_logon.yml", WORKSTATION_LOGON),
            ("api_events.jsonl", API_EVENTS),
        ]);
        let estate = case.path("estate");
        let gamma = case.hunt_api_events("gamma", &[]);
        assert_eq!(fired(&gamma), matches(&[]), "gamma has no workstation");
        let stderr = text(&gamma.stderr);
        assert!(
            stderr.contains(&format!(
                "estate: the files of {estate} alone, no database at vigie-data/vigie.db (no \
                 client or asset created through the API)"
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains(
                "rule workstation-logon: notice: rule runs for no client: no client gives values \
                 for `%Workstations%`"
            ),
            "{stderr}"
        );
        let stderr = failure(&case.hunt_api_events("delta", &[]));
        assert!(
            stderr.contains(&format!(
                "no client `delta` in the estate {estate}; its clients: `alpha`, `beta`, `gamma`"
            )),
            "{stderr}"
        );
        assert!(
            !case.root.join("vigie-data").exists(),
            "the hunt creates no data directory"
        );
    }

    #[test]
    fn a_named_store_that_does_not_open_is_an_error_naming_it() {
        let case = Case::new(&[("api_events.jsonl", API_EVENTS)]);
        let nowhere = case.path("nowhere");
        let url = format!("sqlite://{nowhere}/vigie.db");
        let stderr = failure(&case.hunt_api_events("alpha", &["--database", &url]));
        assert!(
            stderr.contains(&format!("cannot read the database {url}")),
            "{stderr}"
        );

        let stderr = failure(&case.hunt_api_events("alpha", &["--data-dir", &nowhere]));
        assert!(
            stderr.contains(&format!(
                "cannot read the database {nowhere}/vigie.db: no such file"
            )),
            "{stderr}"
        );
        assert!(!Path::new(&nowhere).exists(), "the hunt creates nothing");

        // An empty file is no vigie database, and a hunt does not make it one.
        case.write("empty/vigie.db", "");
        let empty = case.path("empty");
        let stderr = failure(&case.hunt_api_events("alpha", &["--data-dir", &empty]));
        assert!(
            stderr.contains(&format!(
                "cannot read the database {empty}/vigie.db: no vigie schema in this database"
            )),
            "{stderr}"
        );
        assert_eq!(
            std::fs::metadata(case.root.join("empty/vigie.db"))
                .unwrap()
                .len(),
            0
        );

        // A hunt without an estate reads no store, named or not.
        let (events, rules) = (case.path("api_events.jsonl"), case.path("rules"));
        let untuned = hunt_in(
            &case.root,
            &[&events, "--rules", &rules, "--database", &url],
        );
        assert!(untuned.status.success(), "{}", text(&untuned.stderr));
    }
}

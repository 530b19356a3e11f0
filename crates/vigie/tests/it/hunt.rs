//! `vigie hunt` as an analyst runs it: the real binary over the SigmaHQ regression samples (each
//! sample must fire its own rule), the JSON and CSV outputs on a handmade JSON lines file, and
//! the error for a path that does not exist.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use vigie::store::scratch;

fn hunt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigie"))
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

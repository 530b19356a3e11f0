//! Rule evaluation and rule-file loading, with exact expectations. Rules are written in YAML
//! as an operator would write them, so loading is exercised by every evaluation test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use serde_json::{Map, Value, json};

use super::*;

const TIME_MS: i64 = 1_700_000_000_000;

fn event(severity: Severity, message: &str, fields: Value) -> Event {
    let Value::Object(fields) = fields else {
        panic!("test fields must be a JSON object");
    };
    Event {
        time_ms: TIME_MS,
        client: "acme".to_owned(),
        asset: Some("srv-1".to_owned()),
        source: "syslog".to_owned(),
        kind: "log".to_owned(),
        severity,
        message: message.to_owned(),
        fields,
        raw: None,
        unparsed: false,
    }
}

fn rules(yaml: &str) -> Vec<AlertRule> {
    match parse_rules("rules.yaml", yaml) {
        Ok(rules) => rules,
        Err(problems) => panic!("rules do not load: {problems:#?}"),
    }
}

/// Which rules fire on the event, with the title and severity each signal gets.
fn check(yaml: &str, event: &Event, expected: &[(&str, &str, Severity)]) {
    let signals = evaluate(&rules(yaml), event, Some(1), None);
    let fired: Vec<(&str, &str, Severity)> = signals
        .iter()
        .map(|signal| (signal.rule.as_str(), signal.title.as_str(), signal.severity))
        .collect();
    assert_eq!(fired, expected, "on {event:?}");
}

#[test]
fn builtin_rule_alerts_on_error_or_worse() {
    let rules = builtin_rules();
    for severity in [Severity::Debug, Severity::Info, Severity::Warning] {
        let quiet = event(severity, "Disk full", json!({}));
        assert_eq!(evaluate(&rules, &quiet, Some(1), Some(4)), []);
    }
    let loud = event(Severity::Error, "Disk full", json!({"device": "sda"}));
    assert_eq!(
        evaluate(&rules, &loud, Some(42), Some(4)),
        [AlertSignal {
            client: "acme".to_owned(),
            fingerprint: reference_fingerprint(&[
                b"severity-error",
                b"\xffsrv-1",
                b"\xffsyslog",
                b"\xfflog",
                b"\xffDisk full",
            ]),
            rule: "severity-error".to_owned(),
            title: "Disk full".to_owned(),
            severity: Severity::Error,
            asset: Some("srv-1".to_owned()),
            source: "syslog".to_owned(),
            kind: "log".to_owned(),
            criticality: Some(4),
            event_id: Some(42),
            time_ms: TIME_MS,
            labels: Map::new(),
        }]
    );
    let worse = event(Severity::Emergency, "Disk full", json!({}));
    assert_eq!(evaluate(&rules, &worse, None, None).len(), 1);
}

#[test]
fn every_condition_of_a_rule_must_hold() {
    let yaml = r#"
- id: disk-full
  title: "Disk full on {asset}"
  min_severity: warning
  matches:
    - field: message
      contains: NO SPACE left
    - field: device.kind
      one_of: [disk, volume]
"#;
    let both = json!({"device": {"kind": "disk"}});
    let fired = [("disk-full", "Disk full on srv-1", Severity::Warning)];
    check(
        yaml,
        &event(
            Severity::Warning,
            "write: No space left on device",
            both.clone(),
        ),
        &fired,
    );
    // Below min_severity.
    check(
        yaml,
        &event(Severity::Notice, "No space left", both.clone()),
        &[],
    );
    // Only one condition holds.
    check(
        yaml,
        &event(Severity::Error, "Disk quota exceeded", both),
        &[],
    );
    check(
        yaml,
        &event(
            Severity::Error,
            "No space left",
            json!({"device": {"kind": "tape"}}),
        ),
        &[],
    );
    // The field is missing, or not an object on the way.
    check(
        yaml,
        &event(Severity::Error, "No space left", json!({})),
        &[],
    );
    check(
        yaml,
        &event(Severity::Error, "No space left", json!({"device": "sda"})),
        &[],
    );
}

#[test]
fn equals_is_exact_and_contains_ignores_case() {
    let yaml = r#"
- id: exact
  title: exact
  matches: [{field: source, equals: syslog}]
- id: exact-upper
  title: exact-upper
  matches: [{field: source, equals: SYSLOG}]
- id: contains-ascii
  title: contains-ascii
  matches: [{field: message, contains: "LINK DOWN"}]
- id: contains-accents
  title: contains-accents
  matches: [{field: message, contains: "ÉCHEC"}]
"#;
    check(
        yaml,
        &event(Severity::Info, "eth0: link down", json!({})),
        &[
            ("exact", "exact", Severity::Info),
            ("contains-ascii", "contains-ascii", Severity::Info),
        ],
    );
    check(
        yaml,
        &event(Severity::Info, "Sauvegarde : échec du job", json!({})),
        &[
            ("exact", "exact", Severity::Info),
            ("contains-accents", "contains-accents", Severity::Info),
        ],
    );
}

#[test]
fn fields_match_by_exact_key_then_dotted_path() {
    let yaml = r#"
- id: status
  title: "HTTP {field.http.status}"
  matches:
    - field: http.status
      one_of: ["502", "503"]
"#;
    let nested = event(Severity::Info, "GET /", json!({"http": {"status": 503}}));
    check(yaml, &nested, &[("status", "HTTP 503", Severity::Info)]);
    // A key holding the dots itself wins over the path.
    let flat = event(
        Severity::Info,
        "GET /",
        json!({"http.status": "502", "http": {"status": 200}}),
    );
    check(yaml, &flat, &[("status", "HTTP 502", Severity::Info)]);
    let fine = event(Severity::Info, "GET /", json!({"http": {"status": 200}}));
    check(yaml, &fine, &[]);
    let null = event(Severity::Info, "GET /", json!({"http": {"status": null}}));
    check(yaml, &null, &[]);
}

#[test]
fn numbers_booleans_and_lists_compare_through_their_text() {
    let yaml = r#"
- id: code
  title: code
  matches: [{field: code, equals: 4625}]
- id: degraded
  title: degraded
  matches: [{field: degraded, equals: true}]
- id: ratio
  title: ratio
  matches: [{field: ratio, contains: ".5"}]
- id: tags
  title: tags
  matches: [{field: tags, one_of: [prod, pci]}]
"#;
    check(
        yaml,
        &event(
            Severity::Info,
            "x",
            json!({"code": 4625, "degraded": true, "ratio": 0.5, "tags": ["web", "pci"]}),
        ),
        &[
            ("code", "code", Severity::Info),
            ("degraded", "degraded", Severity::Info),
            ("ratio", "ratio", Severity::Info),
            ("tags", "tags", Severity::Info),
        ],
    );
    check(
        yaml,
        &event(
            Severity::Info,
            "x",
            json!({"code": "4624", "degraded": false, "ratio": 1, "tags": ["web"]}),
        ),
        &[],
    );
}

#[test]
fn rule_severity_overrides_and_labels_keep_matched_fields() {
    let yaml = r#"
- id: failed-logon
  title: "Failed logon for {field.user.name} on {asset} ({source}/{kind})"
  severity: critical
  matches:
    - field: kind
      equals: auth
    - field: user.name
      contains: admin
    - field: missing.later
      one_of: [a]
"#;
    let auth = |fields| Event {
        kind: "auth".to_owned(),
        ..event(Severity::Notice, "logon failure", fields)
    };
    // The third condition fails: nothing fires.
    assert_eq!(
        evaluate(
            &rules(yaml),
            &auth(json!({"user": {"name": "Administrator"}})),
            None,
            None
        ),
        []
    );
    let signals = evaluate(
        &rules(yaml),
        &auth(
            json!({"user": {"name": "Administrator"}, "missing": {"later": "a"}, "ip": "10.0.0.1"}),
        ),
        None,
        None,
    );
    assert_eq!(signals.len(), 1);
    assert_eq!(
        signals[0].title,
        "Failed logon for Administrator on srv-1 (syslog/auth)"
    );
    assert_eq!(signals[0].severity, Severity::Critical);
    assert_eq!(
        Value::Object(signals[0].labels.clone()),
        json!({"kind": "auth", "user.name": "Administrator", "missing.later": "a"})
    );
}

#[test]
fn titles_render_placeholders_braces_and_missing_values() {
    let yaml = r#"
- id: t
  title: "{{{kind}}} {message} on {asset}: {field.nowhere} }}"
"#;
    let mut no_asset = event(Severity::Info, "ping lost", json!({}));
    no_asset.asset = None;
    check(
        yaml,
        &no_asset,
        &[("t", "{log} ping lost on -: - }", Severity::Info)],
    );
}

#[test]
fn fingerprints_tell_problems_apart_but_not_clients() {
    let rules = builtin_rules();
    let fingerprint = |event: &Event| evaluate(&rules, event, None, None)[0].fingerprint.clone();
    let disk = event(Severity::Error, "Disk full", json!({"free": 0}));
    let again = event(Severity::Critical, "Disk full", json!({"free": 1}));
    let other_client = Event {
        client: "globex".to_owned(),
        ..disk.clone()
    };
    let other_message = event(Severity::Error, "Disk almost full", json!({}));
    let no_asset = Event {
        asset: None,
        ..disk.clone()
    };
    let empty_asset = Event {
        asset: Some(String::new()),
        ..disk.clone()
    };
    assert_eq!(fingerprint(&disk).len(), 16);
    assert!(fingerprint(&disk).chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(fingerprint(&disk), fingerprint(&again));
    assert_eq!(fingerprint(&disk), fingerprint(&other_client));
    assert_ne!(fingerprint(&disk), fingerprint(&other_message));
    assert_ne!(fingerprint(&no_asset), fingerprint(&empty_asset));
    assert_eq!(
        fingerprint(&no_asset),
        reference_fingerprint(&[
            b"severity-error",
            b"\xfe",
            b"\xffsyslog",
            b"\xfflog",
            b"\xffDisk full"
        ])
    );
}

#[test]
fn fingerprint_keys_come_from_the_rule() {
    let yaml = r#"
- id: per-device
  title: "{message}"
  fingerprint: [asset, device]
- id: per-rule
  title: "{message}"
  fingerprint: []
"#;
    let signals = evaluate(
        &rules(yaml),
        &event(
            Severity::Info,
            "I/O error",
            json!({"device": "sda", "sector": 12}),
        ),
        None,
        None,
    );
    let fingerprints: Vec<&str> = signals.iter().map(|s| s.fingerprint.as_str()).collect();
    assert_eq!(
        fingerprints,
        [
            reference_fingerprint(&[b"per-device", b"\xffsrv-1", b"\xffsda"]),
            reference_fingerprint(&[b"per-rule"]),
        ]
    );
}

#[test]
fn fnv1a_matches_the_reference_vectors() {
    for (input, expected) in [
        ("", 0xcbf2_9ce4_8422_2325_u64),
        ("a", 0xaf63_dc4c_8601_ec8c),
        ("foobar", 0x8594_4171_f739_67e8),
    ] {
        let mut hasher = Fnv1a::default();
        hasher.write(input.as_bytes());
        assert_eq!(hasher.0, expected, "{input:?}");
    }
}

/// FNV-1a 64 written out independently of the code under test, over the given byte pieces.
fn reference_fingerprint(pieces: &[&[u8]]) -> String {
    let mut hash: u64 = 14_695_981_039_346_656_037;
    for byte in pieces.iter().flat_map(|piece| piece.iter()) {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(1_099_511_628_211);
    }
    format!("{hash:016x}")
}

#[test]
fn parses_a_rule_file() {
    let yaml = r#"
# Rules for the Windows estate.
- id: disk-full
  title: "Disk full on {asset}"
  min_severity: warn
  matches:
    - field: message
      contains: no space left
    - field: device.kind
      one_of: [disk, 7, on, 1.50]
    - field: enabled
      equals: y
  fingerprint: [asset, device.name]
  severity: critical
- id: any-error
  title: "{message}"
"#;
    assert_eq!(
        parse_rules("rules.yaml", yaml),
        Ok(vec![
            AlertRule {
                id: "disk-full".to_owned(),
                title: "Disk full on {asset}".to_owned(),
                min_severity: Some(Severity::Warning),
                matches: vec![
                    FieldMatch {
                        field: "message".to_owned(),
                        test: FieldTest::Contains("no space left".to_owned()),
                    },
                    FieldMatch {
                        field: "device.kind".to_owned(),
                        test: FieldTest::OneOf(
                            ["disk", "7", "on", "1.50"].map(str::to_owned).to_vec()
                        ),
                    },
                    FieldMatch {
                        field: "enabled".to_owned(),
                        test: FieldTest::Equals("y".to_owned()),
                    },
                ],
                fingerprint: vec!["asset".to_owned(), "device.name".to_owned()],
                severity: Some(Severity::Critical),
            },
            AlertRule {
                id: "any-error".to_owned(),
                title: "{message}".to_owned(),
                min_severity: None,
                matches: Vec::new(),
                fingerprint: default_fingerprint(),
                severity: None,
            },
        ])
    );
}

#[test]
fn empty_files_hold_no_rules() {
    assert_eq!(parse_rules("rules.yaml", ""), Ok(Vec::new()));
    assert_eq!(parse_rules("rules.yaml", "# nothing yet\n"), Ok(Vec::new()));
    assert_eq!(parse_rules("rules.yaml", "[]\n"), Ok(Vec::new()));
}

#[test]
fn reports_every_problem_with_file_line_and_field() {
    let yaml = r#"- id: ok
  title: "{message}"
- id: bad-severity
  title: "{message}"
  min_severity: loud
- title: {message}
- id: bad-template
  title: "{host} is down"
  colour: red
- id: bad-matches
  title: t
  matches:
    - field: message
    - field: message
      equals: a
      contains: b
    - equals: a
    - field: source
      one_of: []
    - field: kind
      starts_with: win
    - just text
- id: ok
  title: again
- id: bad-fingerprint
  title: t
  fingerprint: [asset, [nested]]
- "not a rule"
"#;
    assert_eq!(
        parse_rules("rules.yaml", yaml),
        Err(vec![
            "rules.yaml:5: field `min_severity`: unknown severity `loud`, expected one of \
             debug, info, notice, warning, error, critical, alert, emergency"
                .to_owned(),
            "rules.yaml:6: field `title`: expected text, found a mapping (quote a template \
             that starts with `{`)"
                .to_owned(),
            "rules.yaml:6: field `id`: is required".to_owned(),
            "rules.yaml:8: field `title`: unknown placeholder `{host}`: use {message}, \
             {asset}, {source}, {kind} or {field.NAME}"
                .to_owned(),
            "rules.yaml:9: field `colour`: unknown field, expected one of `id`, `title`, \
             `min_severity`, `matches`, `fingerprint`, `severity`"
                .to_owned(),
            "rules.yaml:13: field `matches[0]`: needs exactly one of `equals`, `contains`, \
             `one_of`"
                .to_owned(),
            "rules.yaml:14: field `matches[1]`: needs exactly one of `equals`, `contains`, \
             `one_of`"
                .to_owned(),
            "rules.yaml:17: field `matches[2].field`: is required".to_owned(),
            "rules.yaml:19: field `matches[3].one_of`: must list at least one text".to_owned(),
            "rules.yaml:21: field `matches[4].starts_with`: unknown field, expected one of \
             `field`, `equals`, `contains`, `one_of`"
                .to_owned(),
            "rules.yaml:22: field `matches[5]`: expected a mapping, found text".to_owned(),
            "rules.yaml:23: field `id`: duplicate rule id `ok` (first at line 1)".to_owned(),
            "rules.yaml:27: field `fingerprint[1]`: expected text, found a list".to_owned(),
            "rules.yaml:28: a rule must be a mapping, found text".to_owned(),
        ])
    );
}

#[test]
fn reports_yaml_syntax_errors_with_their_line() {
    assert_eq!(
        parse_rules("rules.yaml", "- id: a\n  title: [unclosed\n"),
        Err(vec!["rules.yaml:2: unclosed bracket '['".to_owned()])
    );
    assert_eq!(
        parse_rules("rules.yaml", "- id: a\n  id: b\n  title: t\n"),
        Err(vec![
            "rules.yaml:2: duplicate mapping key `id` is not allowed here".to_owned()
        ])
    );
    assert_eq!(
        parse_rules("rules.yaml", "id: a\ntitle: b\n"),
        Err(vec![
            "rules.yaml:1: expected a list of rules, found a mapping".to_owned()
        ])
    );
}

#[test]
fn rules_round_trip_through_json() {
    let yaml = r#"
- id: r
  title: t
  matches:
    - {field: a, equals: x}
    - {field: b, contains: y}
    - {field: c, one_of: [z]}
"#;
    let rules = rules(yaml);
    let json = serde_json::to_value(&rules).unwrap();
    assert_eq!(
        json,
        json!([{
            "id": "r",
            "title": "t",
            "matches": [
                {"field": "a", "equals": "x"},
                {"field": "b", "contains": "y"},
                {"field": "c", "one_of": ["z"]},
            ],
            "fingerprint": ["asset", "source", "kind", "message"],
        }])
    );
    assert_eq!(
        serde_json::from_value::<Vec<AlertRule>>(json).unwrap(),
        rules
    );
    let two_tests = json!({"id": "r", "title": "t", "matches": [{"field": "a", "equals": "x", "contains": "y"}]});
    assert!(serde_json::from_value::<AlertRule>(two_tests).is_err());
    let unknown = json!({"id": "r", "title": "t", "colour": "red"});
    assert!(serde_json::from_value::<AlertRule>(unknown).is_err());
}

/// Counts this thread's allocations, so a test can assert that a code path makes none.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator, which made `ptr`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations_during(work: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    work();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn events_no_rule_matches_cost_no_allocation() {
    let mut rules = builtin_rules();
    rules.extend(self::rules(
        r#"
- id: failed-logon
  title: t
  matches:
    - {field: message, contains: "LOGON FAILURE"}
    - {field: user.name, one_of: [admin, root]}
- id: accents
  title: t
  matches: [{field: message, contains: "échec"}]
- id: numbers
  title: t
  matches: [{field: code, equals: "4625"}, {field: ratio, contains: "9"}]
"#,
    ));
    let quiet = event(
        Severity::Info,
        "Logon failure for bob: Echec partiel",
        json!({"user": {"name": "bob"}, "code": 4625, "ratio": 0.5}),
    );
    let mut signals = Vec::new();
    let allocations = allocations_during(|| {
        signals = evaluate(&rules, &quiet, Some(1), None);
    });
    assert_eq!(signals, []);
    assert_eq!(allocations, 0);
}

//! Correlation behaviour on handcrafted event streams: rule files in, matches out.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;
use crate::rule::sigma::{SigmaLevel, load_rules, parse_rules, parse_rules_and_correlations};

const MINUTE: i64 = 60_000;

/// A base rule whose id is `{name}-id` and whose name is `name`.
fn base(name: &str) -> String {
    format!(
        "title: {name}\nid: {name}-id\nname: {name}\nlogsource:\n    product: test\ndetection:\n    sel:\n        kind: {name}\n    condition: sel\n"
    )
}

/// A rule file with the base rules `names` and one correlation whose `correlation:` section is
/// `section` (indented here).
fn file(names: &[&str], section: &str) -> String {
    let mut text: String = names.iter().map(|n| format!("{}---\n", base(n))).collect();
    let indented: String = section.lines().map(|l| format!("    {l}\n")).collect();
    text.push_str(&format!(
        "title: the correlation\nid: corr-id\nname: corr\nlevel: high\nauthor: soc\ntags: [attack.t1110]\ncorrelation:\n{indented}"
    ));
    text
}

fn engine_with(text: &str, limits: CorrelationLimits) -> CorrelationEngine {
    let set = load_rules(&[("c.yml".to_owned(), text.to_owned())], &HashMap::new());
    assert!(set.rejected.is_empty(), "{:#?}", set.rejected);
    CorrelationEngine::from_rule_set(&set, limits)
}

fn engine(text: &str) -> CorrelationEngine {
    engine_with(text, CorrelationLimits::default())
}

/// Feeds `(client, rule, event, time)` and returns `(index of the step, value)` per match.
fn run(engine: &mut CorrelationEngine, steps: &[(&str, &str, Value, i64)]) -> Vec<(usize, f64)> {
    steps
        .iter()
        .enumerate()
        .flat_map(|(i, (client, rule, event, time))| {
            engine
                .observe(client, rule, event, *time)
                .into_iter()
                .map(move |m| (i, m.value))
        })
        .collect()
}

fn rejections(text: &str) -> Vec<String> {
    load_rules(&[("c.yml".to_owned(), text.to_owned())], &HashMap::new())
        .rejected
        .into_iter()
        .map(|r| r.reason)
        .collect()
}

const COUNT_3_IN_5M: &str =
    "type: event_count\nrules: [login]\ngroup-by: [host]\ntimespan: 5m\ncondition:\n    gte: 3";

#[test]
fn event_count_fires_over_a_sliding_window_across_a_bucket_boundary() {
    let mut engine = engine(&file(&["login"], COUNT_3_IN_5M));
    let e = json!({"host": "srv1"});
    assert!(engine.observe("acme", "login", &e, 4 * MINUTE).is_empty());
    assert!(
        engine
            .observe("acme", "login-id", &e, 5 * MINUTE + 30_000)
            .is_empty()
    );
    let matches = engine.observe("acme", "login", &e, 6 * MINUTE);
    assert_eq!(
        matches,
        vec![CorrelationMatch {
            correlation_id: Some("corr-id".to_owned()),
            correlation_name: Some("corr".to_owned()),
            title: "the correlation".to_owned(),
            level: Some(SigmaLevel::High),
            author: Some("soc".to_owned()),
            tags: vec!["attack.t1110".to_owned()],
            client: "acme".to_owned(),
            group: vec![("host".to_owned(), "srv1".to_owned())],
            value: 3.0,
            first_ms: 4 * MINUTE,
            last_ms: 6 * MINUTE,
        }]
    );
}

#[test]
fn event_count_below_threshold_in_the_window_does_not_fire() {
    let mut engine = engine(&file(&["login"], COUNT_3_IN_5M));
    let e = json!({"host": "srv1"});
    let fired = run(
        &mut engine,
        &[
            ("acme", "login", e.clone(), 0),
            ("acme", "login", e.clone(), MINUTE),
            // The first event has left the window: only two remain.
            ("acme", "login", e.clone(), 5 * MINUTE + 1),
            ("acme", "login", json!({"host": "srv2"}), 5 * MINUTE + 2),
        ],
    );
    assert_eq!(fired, vec![]);
}

#[test]
fn fires_once_per_window_then_needs_fresh_events() {
    let mut engine = engine(&file(&["login"], COUNT_3_IN_5M));
    let e = json!({"host": "srv1"});
    let steps: Vec<_> = (0..7)
        .map(|i| ("acme", "login", e.clone(), i * 1_000))
        .collect();
    assert_eq!(run(&mut engine, &steps), vec![(2, 3.0), (5, 3.0)]);
}

#[test]
fn an_upper_bound_is_checked_when_the_window_closes() {
    // A range (not an absence, which is bounded from above only: see below).
    let mut engine = engine(&file(
        &["heartbeat"],
        "type: event_count\nrules: [heartbeat]\ngroup-by: [agent]\ntimespan: 5m\ncondition:\n    gte: 1\n    lt: 3",
    ));
    let agent = |a: &str| json!({"agent": a});
    // `quiet` sends two heartbeats in its window, `healthy` three: only `quiet` fires, when
    // its window (opened by its first heartbeat) closes.
    let fired = run(
        &mut engine,
        &[
            ("acme", "heartbeat", agent("quiet"), 0),
            ("acme", "heartbeat", agent("healthy"), 0),
            ("acme", "heartbeat", agent("quiet"), MINUTE),
            ("acme", "heartbeat", agent("healthy"), MINUTE),
            ("acme", "heartbeat", agent("healthy"), 2 * MINUTE),
        ],
    );
    assert_eq!(fired, vec![]);
    assert_eq!(engine.advance(5 * MINUTE), vec![]);
    let closed = engine.advance(5 * MINUTE + 1);
    assert_eq!(closed.len(), 1);
    assert_eq!(
        closed[0].group,
        vec![("agent".to_owned(), "quiet".to_owned())]
    );
    assert_eq!(
        (closed[0].value, closed[0].first_ms, closed[0].last_ms),
        (2.0, 0, MINUTE)
    );
    assert_eq!(engine.live_groups(), 0);
}

#[test]
fn two_clients_with_the_same_group_values_never_combine() {
    let mut engine = engine(&file(&["login"], COUNT_3_IN_5M));
    let e = json!({"host": "srv1"});
    let fired = run(
        &mut engine,
        &[
            ("acme", "login", e.clone(), 0),
            ("globex", "login", e.clone(), 1),
            ("acme", "login", e.clone(), 2),
            ("globex", "login", e.clone(), 3),
        ],
    );
    assert_eq!(fired, vec![]);
    assert_eq!(engine.live_groups(), 2);
}

#[test]
fn value_count_detects_a_spam_wave_of_distinct_recipients_per_sender() {
    let mut engine = engine(&file(
        &["mail_sent"],
        "type: value_count\nrules: [mail_sent]\ngroup-by: [sender]\ntimespan: 5m\ncondition:\n    field: recipient\n    gte: 50",
    ));
    let mut steps = Vec::new();
    for i in 0..60 {
        // A normal sender writes to the same three people over and over.
        steps.push((
            "acme",
            "mail_sent",
            json!({"sender": "alice@acme.test", "recipient": format!("r{}@x.test", i % 3)}),
            i * 1_000,
        ));
        if i < 50 {
            steps.push((
                "acme",
                "mail_sent",
                json!({"sender": "spam@acme.test", "recipient": format!("victim{i}@x.test")}),
                i * 1_000 + 500,
            ));
        }
    }
    let fired = run(&mut engine, &steps);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].1, 50.0);
    assert_eq!(steps[fired[0].0].2["sender"], "spam@acme.test");
}

#[test]
fn value_sum_of_bytes_per_host_detects_exfiltration() {
    let mut engine = engine(&file(
        &["upload"],
        "type: value_sum\nrules: [upload]\ngroup-by: [host]\ntimespan: 10m\ncondition:\n    field: bytes_sent\n    gt: 1000000",
    ));
    let fired = run(
        &mut engine,
        &[
            (
                "acme",
                "upload",
                json!({"host": "pc1", "bytes_sent": 400_000}),
                0,
            ),
            // Another host and an event without the field do not add up.
            (
                "acme",
                "upload",
                json!({"host": "pc2", "bytes_sent": 900_000}),
                MINUTE,
            ),
            ("acme", "upload", json!({"host": "pc1"}), MINUTE),
            (
                "acme",
                "upload",
                json!({"host": "pc1", "bytes_sent": "400000"}),
                5 * MINUTE,
            ),
            (
                "acme",
                "upload",
                json!({"host": "pc1", "bytes_sent": 300_000}),
                9 * MINUTE,
            ),
        ],
    );
    assert_eq!(fired, vec![(4, 1_100_000.0)]);
}

#[test]
fn value_avg_and_value_percentile_aggregate_the_window() {
    let mut avg = engine(&file(
        &["req"],
        "type: value_avg\nrules: [req]\ngroup-by: [host]\ntimespan: 1h\ncondition:\n    field: ms\n    gte: 200",
    ));
    let steps: Vec<_> = [100, 200, 400]
        .iter()
        .enumerate()
        .map(|(i, ms)| ("acme", "req", json!({"host": "h", "ms": ms}), i as i64))
        .collect();
    // The mean is 100, then 150, then 233.3.
    assert_eq!(run(&mut avg, &steps), vec![(2, 700.0 / 3.0)]);

    let mut p90 = engine(&file(
        &["req"],
        "type: value_percentile\nrules: [req]\ngroup-by: [host]\ntimespan: 1h\ncondition:\n    field: ms\n    percentile: 90\n    gt: 500",
    ));
    let steps: Vec<_> = [10, 20, 30, 40, 50, 60, 70, 80, 90, 900, 1000]
        .iter()
        .enumerate()
        .map(|(i, ms)| ("acme", "req", json!({"host": "h", "ms": ms}), i as i64))
        .collect();
    // Nearest rank: the 90th percentile of ten values is the 9th smallest (90), of eleven the
    // 10th (900).
    assert_eq!(run(&mut p90, &steps), vec![(10, 900.0)]);
}

#[test]
fn temporal_fires_in_any_order_but_temporal_ordered_needs_the_listed_order() {
    let section = |kind: &str| {
        format!("type: {kind}\nrules: [recon, exploit]\ngroup-by: [host]\ntimespan: 5m")
    };
    let e = json!({"host": "h"});
    let reversed = [
        ("acme", "exploit", e.clone(), 0),
        ("acme", "recon", e.clone(), MINUTE),
    ];
    let mut any_order = engine(&file(&["recon", "exploit"], &section("temporal")));
    assert_eq!(run(&mut any_order, &reversed), vec![(1, 2.0)]);

    let mut ordered = engine(&file(&["recon", "exploit"], &section("temporal_ordered")));
    assert_eq!(run(&mut ordered, &reversed), vec![]);
    assert_eq!(
        run(&mut ordered, &[("acme", "exploit", e.clone(), 2 * MINUTE)]),
        vec![(0, 2.0)]
    );
}

#[test]
fn temporal_needs_all_rules_within_the_timespan() {
    let mut engine = engine(&file(
        &["recon", "exploit"],
        "type: temporal\nrules: [recon, exploit]\ngroup-by: [host]\ntimespan: 5m",
    ));
    let e = json!({"host": "h"});
    let fired = run(
        &mut engine,
        &[
            ("acme", "recon", e.clone(), 0),
            ("acme", "exploit", e.clone(), 6 * MINUTE),
        ],
    );
    assert_eq!(fired, vec![]);
}

#[test]
fn aliases_join_fields_named_differently_in_each_rule() {
    let mut engine = engine(&file(
        &["inbound", "outbound"],
        "type: temporal\nrules: [inbound, outbound]\ngroup-by: [ip]\ntimespan: 5m\naliases:\n    ip:\n        inbound: destination.ip\n        outbound: source.ip",
    ));
    let matches = {
        assert!(
            engine
                .observe(
                    "acme",
                    "inbound",
                    &json!({"destination": {"ip": "10.0.0.5"}}),
                    0
                )
                .is_empty()
        );
        assert!(
            engine
                .observe(
                    "acme",
                    "outbound",
                    &json!({"source": {"ip": "10.0.0.6"}}),
                    1
                )
                .is_empty()
        );
        engine.observe(
            "acme",
            "outbound",
            &json!({"source": {"ip": "10.0.0.5"}}),
            2,
        )
    };
    assert_eq!(matches.len(), 1);
    assert_eq!(
        matches[0].group,
        vec![("ip".to_owned(), "10.0.0.5".to_owned())]
    );
}

#[test]
fn at_the_cap_the_stalest_group_is_evicted_and_counted() {
    let limits = CorrelationLimits {
        max_groups: 2,
        ..CorrelationLimits::default()
    };
    let mut engine = engine_with(&file(&["login"], COUNT_3_IN_5M), limits);
    let host = |h: &str| json!({"host": h});
    run(
        &mut engine,
        &[
            ("acme", "login", host("a"), 0),
            ("acme", "login", host("b"), 1),
            ("acme", "login", host("a"), 2),
            ("acme", "login", host("c"), 3),
        ],
    );
    assert_eq!(engine.live_groups(), 2);
    assert_eq!(engine.evicted(), 1);
    // `b` was the stalest: its count restarted, `a` kept its two events.
    assert_eq!(
        run(&mut engine, &[("acme", "login", host("a"), 4)]),
        vec![(0, 3.0)]
    );
    let fired = run(
        &mut engine,
        &[
            ("acme", "login", host("b"), 5),
            ("acme", "login", host("b"), 6),
        ],
    );
    assert_eq!(fired, vec![]);
}

#[test]
fn groups_are_pruned_once_their_window_has_passed() {
    let mut engine = engine(&file(&["login"], COUNT_3_IN_5M));
    engine.observe("acme", "login", &json!({"host": "a"}), 0);
    engine.observe("acme", "login", &json!({"host": "b"}), 2 * MINUTE);
    engine.advance(5 * MINUTE + 1);
    assert_eq!(engine.live_groups(), 1);
    engine.advance(7 * MINUTE + 1);
    assert_eq!(engine.live_groups(), 0);
    assert_eq!(engine.evicted(), 0);
}

#[test]
fn a_group_fed_again_lives_until_the_window_of_its_last_entry_has_passed() {
    let mut engine = engine(&file(&["login"], COUNT_3_IN_5M));
    let e = json!({"host": "a"});
    engine.observe("acme", "login", &e, 0);
    engine.observe("acme", "login", &e, 4 * MINUTE);
    // Past the first entry's window, not the second's: the group and its entry at 4 stay.
    engine.advance(5 * MINUTE + 1);
    assert_eq!(engine.live_groups(), 1);
    let fired = run(
        &mut engine,
        &[
            ("acme", "login", e.clone(), 6 * MINUTE),
            ("acme", "login", e.clone(), 7 * MINUTE),
        ],
    );
    assert_eq!(fired, vec![(1, 3.0)]);
    engine.observe("acme", "login", &e, 8 * MINUTE);
    engine.advance(13 * MINUTE + 1);
    assert_eq!(engine.live_groups(), 0);
}

#[test]
fn value_count_forgets_the_values_that_left_the_window() {
    let mut engine = engine(&file(
        &["mail_sent"],
        "type: value_count\nrules: [mail_sent]\ngroup-by: [sender]\ntimespan: 5m\ncondition:\n    field: recipient\n    gte: 3",
    ));
    let mail = |to: &str| json!({"sender": "s@acme.test", "recipient": to});
    let fired = run(
        &mut engine,
        &[
            ("acme", "mail_sent", mail("r1"), 0),
            ("acme", "mail_sent", mail("r2"), MINUTE),
            ("acme", "mail_sent", mail("r2"), MINUTE),
            // r1 and both r2 have left the window: one value.
            ("acme", "mail_sent", mail("r3"), 6 * MINUTE + 1),
            ("acme", "mail_sent", mail("r1"), 6 * MINUTE + 2),
            ("acme", "mail_sent", mail("r2"), 6 * MINUTE + 3),
        ],
    );
    assert_eq!(fired, vec![(5, 3.0)]);
}

#[test]
fn chained_correlations_are_fed_by_correlation_matches() {
    let text = format!(
        "{}---\ntitle: burst\nname: burst\ncorrelation:\n    type: event_count\n    rules: [login]\n    group-by: [host]\n    timespan: 1m\n    condition:\n        gte: 2\n---\ntitle: repeated bursts\nid: repeated-id\ncorrelation:\n    type: event_count\n    rules: [burst]\n    group-by: [host]\n    timespan: 1h\n    condition:\n        gte: 2\n",
        base("login")
    );
    let mut engine = engine(&text);
    let e = json!({"host": "h"});
    let mut titles = Vec::new();
    for time in [0, 1_000, 10 * MINUTE, 10 * MINUTE + 1_000] {
        for m in engine.observe("acme", "login", &e, time) {
            titles.push((m.title, m.last_ms));
        }
    }
    assert_eq!(
        titles,
        vec![
            ("burst".to_owned(), 1_000),
            ("burst".to_owned(), 10 * MINUTE + 1_000),
            ("repeated bursts".to_owned(), 10 * MINUTE + 1_000),
        ]
    );
}

#[test]
fn correlations_reference_rules_of_other_files() {
    let set = load_rules(
        &[
            ("base.yml".to_owned(), base("login")),
            (
                "corr.yml".to_owned(),
                "title: c\nid: c\ncorrelation:\n    type: event_count\n    rules: [login-id]\n    group-by: [host]\n    timespan: 5m\n    condition:\n        gte: 2\n".to_owned(),
            ),
        ],
        &HashMap::new(),
    );
    assert!(set.rejected.is_empty(), "{:#?}", set.rejected);
    let mut engine = CorrelationEngine::from_rule_set(&set, CorrelationLimits::default());
    let e = json!({"host": "h"});
    // Reported by name, referenced by id.
    let fired = run(
        &mut engine,
        &[("acme", "login", e.clone(), 0), ("acme", "login", e, 1)],
    );
    assert_eq!(fired, vec![(1, 2.0)]);
}

#[test]
fn parses_the_canonical_multi_document_layout() {
    let text = "\
title: Many failed logins
id: 0e95725d-7320-415d-80f7-004da920fc11
status: test
level: high
correlation:
    type: event_count
    rules:
        - failed_logon
    group-by:
        - ComputerName
    timespan: 1h
    condition:
        gte: 100
---
title: Failed logon
id: 53ba33fd-3a50-4468-a5ef-c583635cfa92
name: failed_logon
status: test
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4625
    condition: selection
";
    let set = load_rules(&[("c.yml".to_owned(), text.to_owned())], &HashMap::new());
    assert!(set.rejected.is_empty(), "{:#?}", set.rejected);
    assert_eq!(set.rules.len(), 1);
    assert_eq!(
        set.correlations,
        vec![CorrelationRule {
            title: "Many failed logins".to_owned(),
            id: Some("0e95725d-7320-415d-80f7-004da920fc11".to_owned()),
            name: None,
            status: Some("test".to_owned()),
            level: Some(SigmaLevel::High),
            description: None,
            author: None,
            tags: vec![],
            kind: CorrelationKind::EventCount,
            rules: vec!["failed_logon".to_owned()],
            group_by: vec!["ComputerName".to_owned()],
            aliases: Default::default(),
            timespan_ms: 3_600_000,
            condition: CorrelationCondition {
                criteria: vec![(CompareOp::Gte, 100.0)],
                field: None,
                percentile: None,
            },
            generate: false,
            path: "c.yml".to_owned(),
            line: 1,
        }]
    );
    // Without `generate: true`, the referenced rule only feeds the correlation.
    assert!(!set.alerts_alone(&set.rules[0]));
    let generating = text.replace(
        "    timespan: 1h\n",
        "    timespan: 1h\n    generate: true\n",
    );
    let set = load_rules(&[("c.yml".to_owned(), generating)], &HashMap::new());
    assert!(set.correlations[0].generate);
    assert!(set.alerts_alone(&set.rules[0]));

    let (rules, correlations) = parse_rules_and_correlations(text);
    assert_eq!((rules.len(), correlations.len()), (1, 1));
    let only_rules = parse_rules(text);
    assert_eq!(
        only_rules[0].as_ref().unwrap_err().1.reason,
        "correlation rule: use `parse_rules_and_correlations`"
    );
}

#[test]
fn rejects_unknown_references_bad_timespans_and_bad_chains() {
    let reasons = rejections(&file(
        &["login"],
        "type: event_count\nrules: [nope]\ntimespan: 5m\ncondition:\n    gte: 3",
    ));
    assert_eq!(reasons, vec!["correlation: references unknown rule `nope`"]);

    for (timespan, reason) in [
        (
            "5x",
            "invalid timespan `5x`: expected a number and one of s, m, h, d",
        ),
        (
            "5M",
            "invalid timespan `5M`: expected a number and one of s, m, h, d",
        ),
        (
            "m",
            "invalid timespan `m`: expected a number and one of s, m, h, d",
        ),
        (
            "1h30",
            "invalid timespan `1h30`: expected a number and one of s, m, h, d",
        ),
        ("0m", "invalid timespan `0m`: must be positive"),
        (
            "300",
            "invalid timespan: expected text such as `5m`, found a number",
        ),
    ] {
        let section = format!(
            "type: event_count\nrules: [login]\ntimespan: {timespan}\ncondition:\n    gte: 3"
        );
        assert_eq!(
            rejections(&file(&["login"], &section)),
            vec![format!("correlation: {reason}")]
        );
    }

    let cases = [
        (
            "type: event_count\nrules: [login]\ntimespan: 5m",
            "correlation: missing `condition` (required for event_count)",
        ),
        (
            "type: value_count\nrules: [login]\ntimespan: 5m\ncondition:\n    gte: 3",
            "correlation: `condition.field` is required for value_count",
        ),
        (
            "type: event_count\nrules: [login]\ntimespan: 5m\ncondition:\n    over: 3",
            "correlation: unknown condition operator `over`",
        ),
        (
            "type: sequence\nrules: [login]\ntimespan: 5m",
            "correlation: unsupported type `sequence`",
        ),
        (
            "type: event_count\nrules: [login]\ntimespan: 5m\nwindow: sliding\ncondition:\n    gte: 3",
            "correlation: unknown key `window`",
        ),
        (
            "type: temporal\nrules: [login]\ngroup-by: [ip]\ntimespan: 5m\naliases:\n    ip:\n        other: x",
            "correlation: alias `ip` names `other`, which is not in `rules`",
        ),
        (
            "type: event_count\nrules: [corr]\ntimespan: 5m\ncondition:\n    gte: 3",
            "correlation: chain through `corr` forms a cycle",
        ),
    ];
    for (section, reason) in cases {
        assert_eq!(
            rejections(&file(&["login"], section)),
            vec![reason.to_owned()],
            "{section}"
        );
    }

    let twice = format!(
        "{}---\n{}",
        file(&["login"], COUNT_3_IN_5M),
        "title: again\nname: corr\ncorrelation:\n    type: temporal\n    rules: [login]\n    timespan: 5m\n"
    );
    assert_eq!(
        rejections(&twice),
        vec!["correlation: id or name `corr` is already used by another rule"]
    );

    // A rejected rule is named as such, and so is a chain onto a rejected correlation.
    let text = "title: bad\nid: bad-id\nlogsource:\n    product: test\ndetection:\n    sel:\n        f|nope: x\n    condition: sel\n---\ntitle: c1\nid: c1\ncorrelation:\n    type: event_count\n    rules: [bad-id]\n    timespan: 5m\n    condition:\n        gte: 3\n---\ntitle: c2\nid: c2\ncorrelation:\n    type: event_count\n    rules: [c1]\n    timespan: 5m\n    condition:\n        gte: 3\n";
    assert_eq!(
        rejections(text),
        vec![
            "search `sel`, field `f|nope`: unknown modifier `nope`",
            "correlation: references rule `bad-id`, which was rejected",
            "correlation: references correlation `c1`, which was rejected",
        ]
    );
}

// --- absence: an event_count bounded from above, judged on ticks ---------------------------

/// A sensor gone silent: no heartbeat of a host for 15 minutes.
const SILENT_15M: &str =
    "type: event_count\nrules: [heartbeat]\ngroup-by: [host]\ntimespan: 15m\ncondition:\n    lt: 1";

fn heartbeat(host: &str) -> Value {
    json!({"host": host})
}

/// A step of a stream: a heartbeat of `(client, host)` at a time, or a tick of the clock.
enum Step<'a> {
    Beat(&'a str, &'a str, i64),
    Tick(i64),
}

/// Runs the steps; returns `(tick time, client, host)` per match, sorted within a tick.
fn silences(engine: &mut CorrelationEngine, steps: &[Step]) -> Vec<(i64, String, String)> {
    let mut fired = Vec::new();
    for step in steps {
        match *step {
            Step::Beat(client, host, time) => {
                let matches = engine.observe(client, "heartbeat", &heartbeat(host), time);
                assert_eq!(
                    matches,
                    vec![],
                    "an absence never fires on an arriving event"
                );
            }
            Step::Tick(now) => {
                let mut at_tick: Vec<_> = engine
                    .advance(now)
                    .into_iter()
                    .map(|m| (now, m.client, m.group[0].1.clone()))
                    .collect();
                at_tick.sort();
                fired.extend(at_tick);
            }
        }
    }
    fired
}

fn silent(client: &str, host: &str, at: i64) -> (i64, String, String) {
    (at, client.to_owned(), host.to_owned())
}

#[test]
fn absence_fires_once_a_full_timespan_has_passed_since_the_last_event() {
    for condition in ["lt: 1", "lte: 0", "eq: 0"] {
        let section = SILENT_15M.replace("lt: 1", condition);
        let mut engine = engine(&file(&["heartbeat"], &section));
        assert!(
            engine
                .observe("acme", "heartbeat", &heartbeat("fw1"), 0)
                .is_empty()
        );
        assert!(
            engine
                .observe("acme", "heartbeat", &heartbeat("fw1"), 5 * MINUTE)
                .is_empty()
        );
        assert_eq!(engine.advance(5 * MINUTE), vec![], "{condition}");
        assert_eq!(engine.advance(20 * MINUTE - 1), vec![], "{condition}");
        assert_eq!(
            engine.advance(20 * MINUTE),
            vec![CorrelationMatch {
                correlation_id: Some("corr-id".to_owned()),
                correlation_name: Some("corr".to_owned()),
                title: "the correlation".to_owned(),
                level: Some(SigmaLevel::High),
                author: Some("soc".to_owned()),
                tags: vec!["attack.t1110".to_owned()],
                client: "acme".to_owned(),
                group: vec![("host".to_owned(), "fw1".to_owned())],
                value: 0.0,
                // Last heard at 5 minutes, found silent at 20.
                first_ms: 5 * MINUTE,
                last_ms: 20 * MINUTE,
            }],
            "{condition}"
        );
    }
}

#[test]
fn absence_fires_once_then_rearms_when_the_sensor_comes_back() {
    let mut engine = engine(&file(&["heartbeat"], SILENT_15M));
    let hour = 60 * MINUTE;
    let fired = silences(
        &mut engine,
        &[
            Step::Beat("acme", "fw1", 0),
            Step::Tick(15 * MINUTE),
            // Still silent: no alert on every tick.
            Step::Tick(16 * MINUTE),
            Step::Tick(2 * hour),
            // Back, then silent again: a new alert, a full timespan after its last event.
            Step::Beat("acme", "fw1", 2 * hour + MINUTE),
            Step::Tick(2 * hour + 15 * MINUTE),
            Step::Tick(2 * hour + 16 * MINUTE),
            Step::Tick(3 * hour),
        ],
    );
    assert_eq!(
        fired,
        vec![
            silent("acme", "fw1", 15 * MINUTE),
            silent("acme", "fw1", 2 * hour + 16 * MINUTE),
        ]
    );
    // A silent sensor holds no state once its alert is out.
    assert_eq!(engine.live_groups(), 0);
}

#[test]
fn absence_is_judged_on_ticks_never_when_an_event_arrives() {
    let mut engine = engine(&file(&["heartbeat"], SILENT_15M));
    // fw1 has been silent for 30 minutes when fw2's event arrives: `silences` asserts that the
    // event fires nothing; the tick does.
    let fired = silences(
        &mut engine,
        &[
            Step::Beat("acme", "fw1", 0),
            Step::Beat("acme", "fw2", 30 * MINUTE),
            Step::Tick(30 * MINUTE),
        ],
    );
    assert_eq!(fired, vec![silent("acme", "fw1", 30 * MINUTE)]);
}

#[test]
fn absence_keeps_clients_and_hosts_apart() {
    let mut engine = engine(&file(&["heartbeat"], SILENT_15M));
    let fired = silences(
        &mut engine,
        &[
            Step::Beat("acme", "fw1", 0),
            Step::Beat("globex", "fw1", 0),
            Step::Beat("acme", "fw2", 0),
            // Only acme's fw1 keeps talking: globex's host of the same name and acme's other
            // host go silent.
            Step::Beat("acme", "fw1", 10 * MINUTE),
            Step::Tick(15 * MINUTE),
            Step::Tick(24 * MINUTE),
            Step::Tick(25 * MINUTE),
        ],
    );
    assert_eq!(
        fired,
        vec![
            silent("acme", "fw2", 15 * MINUTE),
            silent("globex", "fw1", 15 * MINUTE),
            silent("acme", "fw1", 25 * MINUTE),
        ]
    );
}

#[test]
fn absence_under_a_count_fires_once_per_drop() {
    // `lt: 5`: fewer than five heartbeats in the last 10 minutes, checked on ticks.
    let mut engine = engine(&file(
        &["heartbeat"],
        &SILENT_15M.replace("15m", "10m").replace("lt: 1", "lt: 5"),
    ));
    let mut steps = Vec::new();
    for minute in 0..=100 {
        // One a minute until 20, one every five minutes until 60 (two per window: low), one a
        // minute again from 61 to 70, then nothing.
        let beats =
            minute <= 20 || (minute <= 60 && minute % 5 == 0) || (61..=70).contains(&minute);
        if beats {
            steps.push(Step::Beat("acme", "fw1", minute * MINUTE));
        }
        steps.push(Step::Tick(minute * MINUTE));
    }
    // The window (17, 27] holds 18, 19, 20 and 25: four. Low until 63, when five heartbeats fit
    // in a window again (55, 60, 61, 62, 63); the last five (66 to 70) leave it from 76.
    assert_eq!(
        silences(&mut engine, &steps),
        vec![
            silent("acme", "fw1", 27 * MINUTE),
            silent("acme", "fw1", 76 * MINUTE),
        ]
    );
}

#[test]
fn absence_does_not_judge_a_new_group_before_a_full_timespan() {
    let mut engine = engine(&file(&["heartbeat"], &SILENT_15M.replace("lt: 1", "lt: 5")));
    // One heartbeat is fewer than five, but the sensor has only just become known.
    let fired = silences(
        &mut engine,
        &[
            Step::Beat("acme", "fw1", 0),
            Step::Tick(MINUTE),
            Step::Tick(15 * MINUTE - 1),
            Step::Tick(15 * MINUTE),
        ],
    );
    assert_eq!(fired, vec![silent("acme", "fw1", 15 * MINUTE)]);
}

#[test]
fn absence_goes_by_the_tick_clock_not_by_an_event_stamped_in_the_future() {
    let mut engine = engine(&file(&["heartbeat"], SILENT_15M));
    let day = 24 * 60 * MINUTE;
    let fired = silences(
        &mut engine,
        &[
            Step::Beat("acme", "fw1", 0),
            // A host whose clock is a day ahead: fw1 is not silent for it, and fw1's next
            // heartbeat still counts.
            Step::Beat("acme", "badclock", day),
            Step::Tick(10 * MINUTE),
            Step::Beat("acme", "fw1", 10 * MINUTE),
            Step::Tick(24 * MINUTE),
            Step::Tick(25 * MINUTE),
        ],
    );
    assert_eq!(fired, vec![silent("acme", "fw1", 25 * MINUTE)]);
}

#[test]
fn absence_groups_count_against_the_cap_and_an_evicted_one_never_fires() {
    let limits = CorrelationLimits {
        max_groups: 2,
        ..CorrelationLimits::default()
    };
    let mut engine = engine_with(&file(&["heartbeat"], SILENT_15M), limits);
    let fired = silences(
        &mut engine,
        &[
            Step::Beat("acme", "fw1", 0),
            Step::Beat("acme", "fw2", 1),
            Step::Beat("acme", "fw3", 2),
            Step::Tick(60 * MINUTE),
        ],
    );
    assert_eq!(engine.evicted(), 1);
    // fw1, the stalest, was forgotten.
    assert_eq!(
        fired,
        vec![
            silent("acme", "fw2", 60 * MINUTE),
            silent("acme", "fw3", 60 * MINUTE),
        ]
    );
    assert_eq!(engine.live_groups(), 0);
}

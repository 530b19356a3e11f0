//! Rule tests: files of cases, each a stream of events and the rules expected to fire on it,
//! run against a loaded rule set — how a rule pack proves what it catches and what it lets
//! pass. The format (YAML):
//!
//! ```yaml
//! cases:
//!   - name: vssadmin deletes the shadow copies
//!     events:                      # in order; `time` (epoch ms) defaults to 100 ms apart
//!       - {client: acme, asset: srv-1, message: m, Image: 'C:\vssadmin.exe', CommandLine: delete shadows}
//!     expect: [Shadow copies or backup catalog deleted]   # titles or ids; [] = nothing fires
//!   - name: a burst
//!     repeat: 120                  # the events, this many times; `{n}` in a text is the round
//!     events: [{client: acme, asset: srv-1, category: file_rename, message: m, TargetFilename: 'f{n}.locked'}]
//!     expect: [Mass file renaming on one host]
//!   - name: a sensor goes silent
//!     events: [{client: acme, message: m, Channel: 'Microsoft-Windows-Sysmon/Operational', Computer: pc1, time: 0}]
//!     then_clock: 900000           # then the clock reaches this time (epoch ms or RFC 3339)
//!     expect: [Security sensor gone silent]
//! ```
//!
//! Each case runs on a fresh correlation state; a case passes when the set of rules that fire
//! (single-event rules that alert alone, and correlations) is exactly `expect`. With
//! `then_clock`, after the events the clock ticks once at that time, as the pipeline's tick
//! does: correlations judged on ticks (absences) and those checked when their window closes
//! fire then.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use crate::event::{event_from_json, parse_rfc3339_ms};
use crate::rule::correlation::CorrelationLimits;
use crate::rule::detect::{DetectionSet, correlation_signal};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTestFile {
    pub cases: Vec<RuleTestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTestCase {
    pub name: String,
    pub events: Vec<Value>,
    pub expect: Vec<String>,
    /// How many times the events are sent; `{n}` in their texts is replaced by the round.
    #[serde(default = "once")]
    pub repeat: usize,
    /// After the events, the clock reaches this time (epoch ms or RFC 3339).
    #[serde(default)]
    pub then_clock: Option<Value>,
}

fn once() -> usize {
    1
}

/// `value` with every `{n}` of its texts replaced by `round`.
fn with_round(value: &Value, round: usize) -> Value {
    match value {
        Value::String(text) => Value::String(text.replace("{n}", &round.to_string())),
        Value::Array(items) => Value::Array(items.iter().map(|v| with_round(v, round)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), with_round(v, round)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct RuleTestOutcome {
    pub file: String,
    pub case: String,
    /// `None` when the case passed; else what went wrong.
    pub failure: Option<String>,
}

/// Parses a test file; the error names the file and, where known, the line.
pub fn parse_rule_tests(path: &str, text: &str) -> Result<RuleTestFile, String> {
    serde_saphyr::from_str(text).map_err(|e| format!("{path}: {e}"))
}

/// Runs every case of a file against the rules.
pub fn run_rule_tests(set: &DetectionSet, path: &str, file: &RuleTestFile) -> Vec<RuleTestOutcome> {
    file.cases
        .iter()
        .map(|case| RuleTestOutcome {
            file: path.to_owned(),
            case: case.name.clone(),
            failure: run_case(set, case).err(),
        })
        .collect()
}

fn run_case(set: &DetectionSet, case: &RuleTestCase) -> Result<(), String> {
    let mut correlation = set.correlation_engine(CorrelationLimits::default());
    let mut fired = BTreeSet::new();
    let stream = (0..case.repeat).flat_map(|round| {
        case.events
            .iter()
            .map(move |value| with_round(value, round))
    });
    for (index, value) in stream.enumerate() {
        let default_time = 100 * (index as i64 + 1);
        let event = event_from_json(value, default_time, "test")
            .map_err(|e| format!("event {}: {e}", index + 1))?;
        for signal in set.detect(&mut correlation, &event, Some(index as i64 + 1), None) {
            fired.insert((signal.title, signal.rule));
        }
    }
    if let Some(clock) = &case.then_clock {
        let now = match clock {
            Value::Number(n) => n.as_i64(),
            Value::String(text) => parse_rfc3339_ms(text),
            _ => None,
        }
        .ok_or_else(|| {
            format!("then_clock: expected epoch milliseconds or an RFC 3339 time, found {clock}")
        })?;
        for matched in correlation.advance(now) {
            let signal = correlation_signal(&matched, None, None, None);
            fired.insert((signal.title, signal.rule));
        }
    }
    let expected: BTreeSet<&str> = case.expect.iter().map(String::as_str).collect();
    let unexpected: Vec<&str> = fired
        .iter()
        .filter(|(title, id)| !expected.contains(title.as_str()) && !expected.contains(id.as_str()))
        .map(|(title, _)| title.as_str())
        .collect();
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|wanted| {
            !fired
                .iter()
                .any(|(title, id)| title == wanted || id == wanted)
        })
        .collect();
    match (missing.is_empty(), unexpected.is_empty()) {
        (true, true) => Ok(()),
        _ => Err(format!(
            "expected [{}], fired [{}]{}{}",
            case.expect.join(", "),
            fired
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if missing.is_empty() {
                String::new()
            } else {
                format!("; missing: {}", missing.join(", "))
            },
            if unexpected.is_empty() {
                String::new()
            } else {
                format!("; unexpected: {}", unexpected.join(", "))
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::rule::sigma::load_rules;

    #[test]
    fn a_case_passes_only_when_exactly_the_expected_rules_fire() {
        let rules = "title: Bad word\nid: r-1\nlogsource: {product: test}\ndetection:\n  selection:\n    message|contains: evil\n  condition: selection\n";
        let set = DetectionSet::new(load_rules(
            &[("r.yml".into(), rules.into())],
            &HashMap::new(),
        ));
        let file = parse_rule_tests(
            "t.yaml",
            "cases:\n  - name: fires\n    events: [{client: a, message: evil}]\n    expect: [Bad word]\n\
             \x20 - name: quiet\n    events: [{client: a, message: good}]\n    expect: []\n\
             \x20 - name: wrongly quiet\n    events: [{client: a, message: good}]\n    expect: [r-1]\n\
             \x20 - name: wrongly fires\n    events: [{client: a, message: evil}]\n    expect: []\n",
        )
        .unwrap();
        let outcomes = run_rule_tests(&set, "t.yaml", &file);
        let failures: Vec<Option<&str>> = outcomes.iter().map(|o| o.failure.as_deref()).collect();
        assert_eq!(
            failures,
            vec![
                None,
                None,
                Some("expected [r-1], fired []; missing: r-1"),
                Some("expected [], fired [Bad word]; unexpected: Bad word"),
            ]
        );
        assert!(
            parse_rule_tests("t.yaml", "cases: [{name: x}]")
                .unwrap_err()
                .starts_with("t.yaml: ")
        );
    }

    #[test]
    fn then_clock_ticks_once_after_the_events() {
        let rules = "title: Beat\nname: beat\nlogsource: {product: test}\ndetection:\n  selection:\n    kind: heartbeat\n  condition: selection\n---\n\
                     title: Silent\ncorrelation:\n  type: event_count\n  rules: [beat]\n  group-by: [asset]\n  timespan: 1m\n  condition: {lt: 1}\n";
        let set = DetectionSet::new(load_rules(
            &[("r.yml".into(), rules.into())],
            &HashMap::new(),
        ));
        let file = parse_rule_tests(
            "t.yaml",
            "cases:\n  - name: silent\n    events: [{client: a, asset: h, kind: heartbeat, message: m, time: 0}]\n    then_clock: 60000\n    expect: [Silent]\n\
             \x20 - name: not yet\n    events: [{client: a, asset: h, kind: heartbeat, message: m, time: 0}]\n    then_clock: '1970-01-01T00:00:59.999Z'\n    expect: []\n\
             \x20 - name: no clock, no tick\n    events: [{client: a, asset: h, kind: heartbeat, message: m, time: 0}]\n    expect: []\n\
             \x20 - name: bad clock\n    events: []\n    then_clock: soon\n    expect: []\n",
        )
        .unwrap();
        let failures: Vec<Option<String>> = run_rule_tests(&set, "t.yaml", &file)
            .into_iter()
            .map(|o| o.failure)
            .collect();
        assert_eq!(
            failures,
            vec![
                None,
                None,
                None,
                Some(
                    "then_clock: expected epoch milliseconds or an RFC 3339 time, found \"soon\""
                        .to_owned()
                ),
            ]
        );
    }
}

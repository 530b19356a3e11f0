//! Built-in alert rules: the small rule set that turns events into `AlertSignal`s until the
//! Sigma engine exists. A rule matches when the event is at least its `min_severity` and every
//! one of its `matches` holds; each matching rule gives one signal.
//!
//! Evaluation runs on every ingested event, so it guards one invariant: an event no rule
//! matches costs no allocation, and a rule whose `min_severity` excludes the event costs one
//! comparison. Strings are only built for the signals that come out.
//!
//! A rule's `fingerprint` lists the event keys that make "the same problem": the signal's
//! fingerprint is the 16-hex-digit FNV-1a 64 of the rule id and those keys' values. The client
//! is not part of it: the incident book keys alerts by client already.

pub mod alertmanager;
mod parse;
mod template;

pub use parse::parse_rules;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::event::{Event, Severity};
use crate::incident::AlertSignal;

/// One rule. In YAML:
///
/// ```yaml
/// - id: disk-full
///   title: "Disk full on {asset}: {message}"
///   min_severity: warning
///   matches:
///     - field: message
///       contains: no space left
///     - field: device.kind
///       one_of: [disk, volume]
///   fingerprint: [asset, device.name]
///   severity: critical
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    pub id: String,
    /// A template: `{message}`, `{asset}`, `{source}`, `{kind}` and `{field.NAME}` are
    /// replaced by the event's values (`-` when the event has none); `{{` and `}}` are braces.
    pub title: String,
    /// Events below this severity are not considered at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// Conditions that must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<FieldMatch>,
    /// Event keys whose values, with the rule id, identify "the same problem". Empty: every
    /// match of the rule is the same problem (per client).
    #[serde(default = "default_fingerprint")]
    pub fingerprint: Vec<String>,
    /// The alert's severity; the event's when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// The fingerprint keys of a rule that does not list its own: one alert per distinct message
/// from one asset, source and kind.
pub fn default_fingerprint() -> Vec<String> {
    ["asset", "source", "kind", "message"]
        .map(str::to_owned)
        .to_vec()
}

/// A condition on one event value. `field` is `message`, `source`, `kind`, `asset`, or a key of
/// the event's `fields`; a dotted path (`user.name`) reaches into nested objects when no key
/// has that exact name. A field the event lacks fails every test. Numbers and booleans are
/// compared through their JSON text; a list passes when one of its items does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FieldMatchForm", into = "FieldMatchForm")]
pub struct FieldMatch {
    pub field: String,
    pub test: FieldTest,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FieldTest {
    /// Exactly this text.
    Equals(String),
    /// This text anywhere in the value, ignoring case.
    Contains(String),
    /// Exactly one of these texts.
    OneOf(Vec<String>),
}

/// The serialised form of a `FieldMatch`: `field` and exactly one test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldMatchForm {
    field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    one_of: Option<Vec<String>>,
}

impl TryFrom<FieldMatchForm> for FieldMatch {
    type Error = String;

    fn try_from(form: FieldMatchForm) -> Result<Self, Self::Error> {
        let test = match (form.equals, form.contains, form.one_of) {
            (Some(text), None, None) => FieldTest::Equals(text),
            (None, Some(text), None) => FieldTest::Contains(text),
            (None, None, Some(texts)) => FieldTest::OneOf(texts),
            _ => return Err(ONE_TEST.to_owned()),
        };
        Ok(FieldMatch {
            field: form.field,
            test,
        })
    }
}

impl From<FieldMatch> for FieldMatchForm {
    fn from(field_match: FieldMatch) -> Self {
        let mut form = FieldMatchForm {
            field: field_match.field,
            equals: None,
            contains: None,
            one_of: None,
        };
        match field_match.test {
            FieldTest::Equals(text) => form.equals = Some(text),
            FieldTest::Contains(text) => form.contains = Some(text),
            FieldTest::OneOf(texts) => form.one_of = Some(texts),
        }
        form
    }
}

const ONE_TEST: &str = "needs exactly one of `equals`, `contains`, `one_of`";

/// The rules Vigie runs with when no rule file is configured: every event of severity error
/// or worse is an alert titled by its message.
pub fn builtin_rules() -> Vec<AlertRule> {
    vec![AlertRule {
        id: "severity-error".to_owned(),
        title: "{message}".to_owned(),
        min_severity: Some(Severity::Error),
        matches: Vec::new(),
        fingerprint: default_fingerprint(),
        severity: None,
    }]
}

/// Every rule the event matches gives one signal, in rule order. `event_id` is the store's id
/// of the event, `criticality` its asset's criticality from the estate.
pub fn evaluate(
    rules: &[AlertRule],
    event: &Event,
    event_id: Option<i64>,
    criticality: Option<u8>,
) -> Vec<AlertSignal> {
    let mut signals = Vec::new();
    for rule in rules {
        if let Some(min_severity) = rule.min_severity
            && event.severity < min_severity
        {
            continue;
        }
        if !rule
            .matches
            .iter()
            .all(|condition| passes(condition, event))
        {
            continue;
        }
        signals.push(signal(rule, event, event_id, criticality));
    }
    signals
}

fn signal(
    rule: &AlertRule,
    event: &Event,
    event_id: Option<i64>,
    criticality: Option<u8>,
) -> AlertSignal {
    let mut labels = Map::new();
    for condition in &rule.matches {
        if let Some(value) = lookup(event, &condition.field) {
            labels.insert(condition.field.clone(), value.to_json());
        }
    }
    AlertSignal {
        client: event.client.clone(),
        fingerprint: fingerprint(rule, event),
        rule: rule.id.clone(),
        title: template::render(&rule.title, event),
        severity: rule.severity.unwrap_or(event.severity),
        asset: event.asset.clone(),
        source: event.source.clone(),
        kind: event.kind.clone(),
        criticality,
        event_id,
        time_ms: event.time_ms,
        labels,
    }
}

/// A value found in an event, borrowed. `Json` never holds a string or null: strings are
/// `Text`, null is "absent".
#[derive(Clone, Copy, Debug)]
enum Found<'a> {
    Text(&'a str),
    Json(&'a Value),
}

impl<'a> Found<'a> {
    fn from_json(value: &'a Value) -> Option<Found<'a>> {
        match value {
            Value::Null => None,
            Value::String(text) => Some(Found::Text(text)),
            other => Some(Found::Json(other)),
        }
    }

    fn to_json(self) -> Value {
        match self {
            Found::Text(text) => Value::String(text.to_owned()),
            Found::Json(value) => value.clone(),
        }
    }
}

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Text(text) => f.write_str(text),
            Found::Json(value) => write!(f, "{value}"),
        }
    }
}

/// The event's value for a rule's field name: the event's own attributes first, then a key of
/// `fields`, then a dotted path into nested objects.
fn lookup<'a>(event: &'a Event, name: &str) -> Option<Found<'a>> {
    match name {
        "message" => Some(Found::Text(&event.message)),
        "source" => Some(Found::Text(&event.source)),
        "kind" => Some(Found::Text(&event.kind)),
        "asset" => event.asset.as_deref().map(Found::Text),
        _ => lookup_field(&event.fields, name),
    }
}

fn lookup_field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<Found<'a>> {
    if let Some(value) = fields.get(name) {
        return Found::from_json(value);
    }
    if !name.contains('.') {
        return None;
    }
    let mut parts = name.split('.');
    let mut value = fields.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Found::from_json(value)
}

fn passes(condition: &FieldMatch, event: &Event) -> bool {
    let Some(found) = lookup(event, &condition.field) else {
        return false;
    };
    match found {
        Found::Text(text) => passes_text(&condition.test, text),
        Found::Json(Value::Array(items)) => items
            .iter()
            .filter_map(Found::from_json)
            .any(|item| passes_scalar(&condition.test, item)),
        Found::Json(_) => passes_scalar(&condition.test, found),
    }
}

fn passes_text(test: &FieldTest, text: &str) -> bool {
    match test {
        FieldTest::Equals(expected) => text == expected,
        FieldTest::Contains(needle) => contains_ignoring_case(text, needle),
        FieldTest::OneOf(expected) => expected.iter().any(|candidate| candidate == text),
    }
}

/// Numbers and booleans are tested through their JSON text, written to the stack rather than
/// to a `String`. Objects (and anything too long to be a number) never pass.
fn passes_scalar(test: &FieldTest, found: Found<'_>) -> bool {
    match found {
        Found::Text(text) => passes_text(test, text),
        Found::Json(Value::Bool(flag)) => passes_text(test, if *flag { "true" } else { "false" }),
        Found::Json(Value::Number(number)) => {
            let mut text = NumberText::default();
            write_number(&mut text, number).is_ok() && passes_text(test, text.as_str())
        }
        Found::Json(_) => false,
    }
}

fn write_number(text: &mut NumberText, number: &Number) -> fmt::Result {
    fmt::Write::write_fmt(text, format_args!("{number}"))
}

/// A number's text without a heap allocation: JSON numbers fit in 40 bytes.
struct NumberText {
    bytes: [u8; 40],
    len: usize,
}

impl Default for NumberText {
    fn default() -> Self {
        NumberText {
            bytes: [0; 40],
            len: 0,
        }
    }
}

impl NumberText {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the bytes are valid UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for NumberText {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Case-insensitive substring search without allocating: byte windows for an ASCII needle
/// (the common case), char-wise lowercase folding otherwise.
fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if needle.is_ascii() {
        let needle = needle.as_bytes();
        return haystack
            .as_bytes()
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle));
    }
    haystack
        .char_indices()
        .any(|(start, _)| starts_with_ignoring_case(&haystack[start..], needle))
}

fn starts_with_ignoring_case(haystack: &str, needle: &str) -> bool {
    let mut haystack = haystack.chars().flat_map(char::to_lowercase);
    needle
        .chars()
        .flat_map(char::to_lowercase)
        .all(|wanted| haystack.next() == Some(wanted))
}

/// FNV-1a 64 of the rule id, then for each fingerprint key a 0xFF byte and the value's text,
/// or a 0xFE byte when the event has no value. Neither byte occurs in UTF-8, so no two
/// different sequences of values hash the same input, and "absent" differs from "empty".
fn fingerprint(rule: &AlertRule, event: &Event) -> String {
    let mut hasher = Fnv1a::default();
    hasher.write(rule.id.as_bytes());
    for key in &rule.fingerprint {
        match lookup(event, key) {
            Some(found) => {
                hasher.write(&[0xff]);
                // Writing into the hasher cannot fail.
                let _ = fmt::Write::write_fmt(&mut hasher, format_args!("{found}"));
            }
            None => hasher.write(&[0xfe]),
        }
    }
    format!("{:016x}", hasher.0)
}

/// FNV-1a 64, the fingerprint hash of every rule kind.
pub(crate) struct Fnv1a(pub(crate) u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

impl fmt::Write for Fnv1a {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.write(text.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests;

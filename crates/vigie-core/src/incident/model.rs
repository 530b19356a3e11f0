//! The records the incident state machine owns: alerts (deduplicated by fingerprint),
//! incidents (alerts grouped per client), and the timeline of every change to an incident.
//! These are what the store persists and the API serves, field for field.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::event::Severity;

pub type AlertId = i64;
pub type IncidentId = i64;

/// What a rule says when an event matches it: the input of the state machine. The pipeline
/// fills `criticality` from the estate (the asset's criticality, 1–5); the computed business
/// impact of a later stage will take its place behind the same field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertSignal {
    pub client: String,
    /// Stable identity of "the same problem": repeats update one alert instead of piling up.
    pub fingerprint: String,
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    pub asset: Option<String>,
    pub source: String,
    pub kind: String,
    pub criticality: Option<u8>,
    pub event_id: Option<i64>,
    pub time_ms: i64,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub labels: Map<String, Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: AlertId,
    pub client: std::sync::Arc<str>,
    pub incident_id: IncidentId,
    pub fingerprint: std::sync::Arc<str>,
    pub rule: std::sync::Arc<str>,
    pub title: String,
    pub severity: Severity,
    pub asset: Option<String>,
    pub source: std::sync::Arc<str>,
    pub kind: std::sync::Arc<str>,
    pub status: AlertStatus,
    /// How many signals this alert has absorbed (1 on creation).
    pub count: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub last_event_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
}

/// An alert's labels: a JSON object kept as its compact text, in one allocation. An active
/// alert lives in memory until it resolves, and most of it is labels (an Alertmanager alert
/// carries its label set and annotations as nested objects); as maps of `Value`s they took
/// four times the room. Readers parse what they need (`get`, `to_map`); the text is written
/// out as it is to the store and the API.
///
/// The text is always a JSON object: it is only ever made from a map (`Labels::from`, or
/// deserialized through one).
#[derive(Clone)]
pub struct Labels(Box<RawValue>);

impl Labels {
    pub fn new() -> Labels {
        Labels::from(&Map::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.get() == "{}"
    }

    /// The compact JSON text of the object.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The labels as a map, in their order.
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(self.0.get()).expect("invariant: labels are a JSON object")
    }

    /// One label's value, parsed from the text without building the others.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.get_path(&[name])
    }

    /// The value at a path of keys into nested objects (`["labels", "category"]`), parsed
    /// from the text without building anything else.
    pub fn get_path(&self, path: &[&str]) -> Option<Value> {
        let mut de = serde_json::Deserializer::from_str(self.0.get());
        serde::de::DeserializeSeed::deserialize(FindLabel(path), &mut de)
            .expect("invariant: labels are a JSON object")
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets the given labels, keeping the others (a label already there keeps its place).
    pub fn merge(&mut self, labels: Map<String, Value>) {
        if labels.is_empty() {
            return;
        }
        let mut map = self.to_map();
        for (name, value) in labels {
            map.insert(name, value);
        }
        *self = Labels::from(&map);
    }
}

impl Default for Labels {
    fn default() -> Labels {
        Labels::new()
    }
}

impl From<&Map<String, Value>> for Labels {
    fn from(map: &Map<String, Value>) -> Labels {
        Labels(
            serde_json::value::to_raw_value(map)
                .expect("invariant: a JSON map serializes (its keys are strings)"),
        )
    }
}

impl From<Map<String, Value>> for Labels {
    fn from(map: Map<String, Value>) -> Labels {
        Labels::from(&map)
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Labels) -> bool {
        self.0.get() == other.0.get()
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.get())
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Labels {
    /// Through a map, so that the text is an object and compact whatever the input's layout.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Labels, D::Error> {
        Map::<String, Value>::deserialize(deserializer).map(Labels::from)
    }
}

/// Reads the value at a path of keys out of nested JSON objects, skipping everything else:
/// nothing is allocated but the value found. Not an object where a key is looked for: none.
struct FindLabel<'a>(&'a [&'a str]);

impl<'de> serde::de::DeserializeSeed<'de> for FindLabel<'_> {
    type Value = Option<Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Option<Value>, D::Error> {
        match self.0 {
            [] => Value::deserialize(de).map(Some),
            _ => de.deserialize_any(self),
        }
    }
}

impl<'de> serde::de::Visitor<'de> for FindLabel<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<Option<Value>, A::Error> {
        let (first, rest) = self
            .0
            .split_first()
            .expect("a path reaches the visitor non-empty");
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if found.is_none() && key == *first {
                found = map.next_value_seed(FindLabel(rest))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> Result<Option<Value>, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Option<Value>, E> {
        Ok(None)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    New,
    Acknowledged,
    Resolved,
    Closed,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::New => "new",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<IncidentStatus> {
        Some(match text {
            "new" => IncidentStatus::New,
            "acknowledged" => IncidentStatus::Acknowledged,
            "resolved" => IncidentStatus::Resolved,
            "closed" => IncidentStatus::Closed,
            _ => return None,
        })
    }
}

/// P1 (most urgent) to P5. Serialised as "P1".."P5"; ordered so that P1 < P2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
    P5,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
            Priority::P5 => "P5",
        }
    }

    pub fn parse(text: &str) -> Option<Priority> {
        Some(match text.to_ascii_uppercase().as_str() {
            "P1" => Priority::P1,
            "P2" => Priority::P2,
            "P3" => Priority::P3,
            "P4" => Priority::P4,
            "P5" => Priority::P5,
            _ => return None,
        })
    }

    /// 1 for P1 … 5 for P5, as stored.
    pub fn level(self) -> i64 {
        self as i64 + 1
    }
}

/// Three levels for both axes of the priority matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    High,
    Medium,
    Low,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub client: String,
    pub title: String,
    pub status: IncidentStatus,
    pub priority: Priority,
    pub impact: Level,
    pub urgency: Level,
    /// The grouping key alerts of this incident share (e.g. `asset=srv-1`).
    pub group_key: String,
    pub assignee: Option<String>,
    /// Assets the incident's alerts touch, sorted, without duplicates.
    pub assets: Vec<String>,
    pub alert_count: u64,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Time (the signal's `time_ms`) of the latest alert signal that joined or updated the
    /// incident: the grouping window is measured from it. The reopen window is measured from
    /// `resolved_ms`.
    pub last_signal_ms: i64,
    pub acknowledged_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
    pub closed_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    Created,
    AlertAdded,
    Acknowledged,
    Resolved,
    Reopened,
    Closed,
    Comment,
    Reassigned,
    PriorityChanged,
    /// A step of the escalation policy notified someone.
    Escalated,
    /// A notification was held back (silence, inhibition) or could not be addressed.
    Notified,
    /// A crisis trigger fired on the incident.
    Crisis,
    /// Alerts moved in from another incident, or this incident went into another.
    Merged,
    /// Alerts moved out into a new incident.
    Split,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub incident_id: IncidentId,
    pub client: String,
    pub time_ms: i64,
    /// Who did it: a token's name for people and API clients, `vigie` for the engine itself.
    pub actor: String,
    pub kind: TimelineKind,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn labels_read_one_key_without_the_others_and_merge_in_place() {
        let mut labels = Labels::from(map(json!({
            "labels": {"alertname": "DiskFull", "job": "node"},
            "a\"quoted\\key": [1, {"x": null}],
            "state": "WARNING",
        })));
        assert_eq!(
            labels.get("labels"),
            Some(json!({"alertname": "DiskFull", "job": "node"}))
        );
        assert_eq!(labels.get("a\"quoted\\key"), Some(json!([1, {"x": null}])));
        assert_eq!(labels.get("alertname"), None, "only top-level keys");
        assert_eq!(labels.get_path(&["labels", "job"]), Some(json!("node")));
        assert_eq!(labels.get_path(&["labels", "nope"]), None);
        assert_eq!(labels.get_path(&["state", "x"]), None, "not an object");
        assert_eq!(labels.get_path(&["a\"quoted\\key", "x"]), None, "an array");
        assert!(labels.contains_key("state") && !labels.contains_key("output"));

        labels.merge(map(json!({"state": "CRITICAL", "output": "disk_99%"})));
        let text: Value = serde_json::from_str(labels.as_str()).unwrap();
        assert_eq!(
            text,
            json!({
                "labels": {"alertname": "DiskFull", "job": "node"},
                "a\"quoted\\key": [1, {"x": null}],
                "state": "CRITICAL",
                "output": "disk_99%",
            })
        );
        assert!(!labels.as_str().contains(char::is_whitespace), "compact");
        assert!(!labels.is_empty() && Labels::new().is_empty());
    }

    #[test]
    fn labels_deserialize_to_the_compact_text_and_refuse_non_objects() {
        let labels: Labels = serde_json::from_str("{ \"b\" : 1,\n \"a\": [ 2 ] }").unwrap();
        assert!(["{\"b\":1,\"a\":[2]}", "{\"a\":[2],\"b\":1}"].contains(&labels.as_str()));
        assert_eq!(labels, Labels::from(map(json!({"b": 1, "a": [2]}))));
        assert_eq!(serde_json::to_string(&labels).unwrap(), labels.as_str());
        assert_eq!(
            serde_json::to_value(&labels).unwrap(),
            json!({"b": 1, "a": [2]})
        );
        for bad in ["[1]", "\"text\"", "null", "{\"a\":"] {
            assert!(serde_json::from_str::<Labels>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_are_the_maps_compact_text() {
        for value in [
            json!({}),
            json!({"a": 1}),
            json!({"labels": {"alertname": "DiskFull"}, "n": -1.5, "ok": true, "none": null}),
            json!({"quote\"d": "line\nbreak\ttab \u{1} é 🚨", "list": [[], {}, "x"]}),
        ] {
            let map = map(value);
            assert_eq!(
                Labels::from(&map).as_str(),
                serde_json::to_string(&map).unwrap()
            );
        }
    }
}

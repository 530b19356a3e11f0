//! Prometheus alerts in, as Alertmanager takes them (`POST /api/v2/alerts`, a list of
//! `postableAlert`): so that a Prometheus can point at Vigie unchanged.
//!
//! Semantics kept from Alertmanager: the label set identifies the alert (its fingerprint);
//! `alertname` is required; a missing `startsAt` is now; a missing `endsAt` is now plus the
//! resolve timeout (5 minutes), and Prometheus re-sends firing alerts before that; an alert
//! whose `endsAt` has passed is resolved. A batch with a bad alert is refused whole, every
//! problem listed with the alert's position and the field.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Fnv1a;
use crate::event::parse_rfc3339_ms;

/// Alertmanager's default `resolve_timeout`.
pub const RESOLVE_TIMEOUT_MS: i64 = 5 * 60_000;

#[derive(Debug, Clone, PartialEq)]
pub struct PostedAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub generator_url: Option<String>,
    /// A hash of the label set, as hex: the same labels are the same alert.
    pub fingerprint: String,
}

impl PostedAlert {
    pub fn alertname(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    /// Whether the alert has ended at `now`.
    pub fn is_resolved(&self, now_ms: i64) -> bool {
        self.ends_at_ms <= now_ms
    }
}

fn label_set(value: Option<&Value>, field: &str) -> Result<BTreeMap<String, String>, String> {
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(format!("{field}.{k}: values are strings")),
            })
            .collect(),
        Some(_) => Err(format!("{field}: an object of strings")),
    }
}

fn time(value: Option<&Value>, field: &str) -> Result<Option<i64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        // Go's zero time, which some clients send for "unset".
        Some(Value::String(text)) if text.starts_with("0001-01-01T00:00:00") => Ok(None),
        Some(Value::String(text)) => parse_rfc3339_ms(text)
            .map(Some)
            .ok_or_else(|| format!("{field}: `{text}` is not an RFC 3339 time")),
        Some(_) => Err(format!("{field}: an RFC 3339 string")),
    }
}

fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut hasher = Fnv1a::default();
    hasher.write(b"alertmanager\xff");
    for (name, value) in labels {
        hasher.write(name.as_bytes());
        hasher.write(&[0xfe]);
        hasher.write(value.as_bytes());
        hasher.write(&[0xff]);
    }
    format!("{:016x}", hasher.0)
}

/// Parses the body of `POST /api/v2/alerts`.
pub fn parse_postable_alerts(body: &Value, now_ms: i64) -> Result<Vec<PostedAlert>, Vec<String>> {
    let Some(items) = body.as_array() else {
        return Err(vec!["the body must be a list of alerts".into()]);
    };
    let mut alerts = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let parsed = (|| -> Result<PostedAlert, String> {
            if !item.is_object() {
                return Err("an alert is an object".into());
            }
            let labels = label_set(item.get("labels"), "labels")?;
            if labels.get("alertname").is_none_or(String::is_empty) {
                return Err("labels.alertname is required".into());
            }
            let annotations = label_set(item.get("annotations"), "annotations")?;
            let starts_at_ms = time(item.get("startsAt"), "startsAt")?.unwrap_or(now_ms);
            let ends_at_ms = time(item.get("endsAt"), "endsAt")?
                .unwrap_or_else(|| now_ms.saturating_add(RESOLVE_TIMEOUT_MS));
            if ends_at_ms < starts_at_ms {
                return Err("endsAt is before startsAt".into());
            }
            let generator_url = match item.get("generatorURL") {
                None | Some(Value::Null) => None,
                Some(Value::String(url)) => Some(url.clone()),
                Some(_) => return Err("generatorURL: a string".into()),
            };
            Ok(PostedAlert {
                fingerprint: fingerprint(&labels),
                labels,
                annotations,
                starts_at_ms,
                ends_at_ms,
                generator_url,
            })
        })();
        match parsed {
            Ok(alert) => alerts.push(alert),
            Err(problem) => problems.push(format!("[{index}]: {problem}")),
        }
    }
    if problems.is_empty() {
        Ok(alerts)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_764_000_000_000;

    #[test]
    fn alerts_as_prometheus_posts_them() {
        let body = json!([
            {"labels": {"alertname": "InstanceDown", "instance": "web1:9100", "job": "node", "severity": "critical"},
             "annotations": {"summary": "web1 is down"},
             "startsAt": "2025-11-24T15:55:00Z",
             "generatorURL": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0"},
            {"labels": {"alertname": "DiskFull", "instance": "db1"}, "endsAt": "2025-11-24T15:00:00Z", "startsAt": "2025-11-24T14:00:00Z"}
        ]);
        let alerts = parse_postable_alerts(&body, NOW).unwrap();
        assert_eq!(alerts[0].alertname(), "InstanceDown");
        assert_eq!(alerts[0].ends_at_ms, NOW + RESOLVE_TIMEOUT_MS);
        assert!(!alerts[0].is_resolved(NOW));
        assert!(alerts[1].is_resolved(NOW));
        assert_eq!(alerts[0].annotations["summary"], "web1 is down");
        // the label set is the identity: same labels, same fingerprint, whatever the order
        let again = parse_postable_alerts(
            &json!([{"labels": {"severity": "critical", "job": "node", "instance": "web1:9100", "alertname": "InstanceDown"}}]),
            NOW + 60_000,
        )
        .unwrap();
        assert_eq!(again[0].fingerprint, alerts[0].fingerprint);
        assert_ne!(alerts[0].fingerprint, alerts[1].fingerprint);
    }

    #[test]
    fn a_bad_batch_is_refused_with_every_problem() {
        let body = json!([
            {"labels": {"instance": "x"}},
            {"labels": {"alertname": "A", "n": 1}},
            {"labels": {"alertname": "B"}, "startsAt": "yesterday"},
            {"labels": {"alertname": "C"}, "startsAt": "2025-11-24T15:00:00Z", "endsAt": "2025-11-24T14:00:00Z"},
            {"labels": {"alertname": "fine"}}
        ]);
        let problems = parse_postable_alerts(&body, NOW).unwrap_err();
        assert_eq!(
            problems,
            [
                "[0]: labels.alertname is required",
                "[1]: labels.n: values are strings",
                "[2]: startsAt: `yesterday` is not an RFC 3339 time",
                "[3]: endsAt is before startsAt",
            ]
        );
        assert!(parse_postable_alerts(&json!({"labels": {}}), NOW).is_err());
    }
}

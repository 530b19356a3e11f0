//! The bodies receivers already understand: Alertmanager's webhook (version "4"), so that
//! existing consumers work unchanged; Slack and Mattermost incoming webhooks; Microsoft Teams
//! (a MessageCard, which Teams' incoming webhooks and Power Automate flows accept); and
//! Vigie's own JSON.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{AlertStatus, NotifiedAlert, Reason};
use crate::event::format_rfc3339_ms;

/// Alertmanager writes this for an alert that has not ended.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A group of alerts about to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Group<'a> {
    pub receiver: &'a str,
    /// Stable key of the group (Alertmanager's `groupKey`).
    pub key: &'a str,
    /// The labels the group is made by (e.g. client and rule).
    pub labels: &'a BTreeMap<String, String>,
    pub alerts: &'a [NotifiedAlert],
    pub reason: Reason,
    /// Vigie's address, for backlinks.
    pub external_url: &'a str,
}

fn status(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
}

fn group_status(alerts: &[NotifiedAlert]) -> AlertStatus {
    if alerts.iter().any(|a| a.status == AlertStatus::Firing) {
        AlertStatus::Firing
    } else {
        AlertStatus::Resolved
    }
}

/// The labels (or annotations) every alert of the group shares, with the same value.
fn common(
    alerts: &[NotifiedAlert],
    pick: impl Fn(&NotifiedAlert) -> &BTreeMap<String, String>,
) -> Map<String, Value> {
    let Some((first, rest)) = alerts.split_first() else {
        return Map::new();
    };
    pick(first)
        .iter()
        .filter(|(k, v)| rest.iter().all(|a| pick(a).get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Alertmanager's webhook body, version "4": the eleven classic fields plus
/// `notification_reason` (consumers ignore what they do not know).
pub fn alertmanager_v4(group: &Group) -> Value {
    let alerts: Vec<Value> = group
        .alerts
        .iter()
        .map(|a| {
            json!({
                "status": status(a.status),
                "labels": string_map(&a.labels),
                "annotations": string_map(&a.annotations),
                "startsAt": format_rfc3339_ms(a.starts_at_ms),
                "endsAt": a.ends_at_ms.map_or_else(|| ZERO_TIME.to_owned(), format_rfc3339_ms),
                "generatorURL": a.url,
                "fingerprint": a.fingerprint,
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": group.key,
        "truncatedAlerts": 0,
        "status": status(group_status(group.alerts)),
        "receiver": group.receiver,
        "groupLabels": string_map(group.labels),
        "commonLabels": Value::Object(common(group.alerts, |a| &a.labels)),
        "commonAnnotations": Value::Object(common(group.alerts, |a| &a.annotations)),
        "externalURL": group.external_url,
        "notification_reason": group.reason.as_str(),
        "alerts": alerts,
    })
}

/// One line per alert: status, summary (or alert name), link.
fn lines(group: &Group) -> Vec<String> {
    group
        .alerts
        .iter()
        .map(|a| {
            let title = a
                .annotations
                .get("summary")
                .or_else(|| a.labels.get("alertname"))
                .map_or("alert", String::as_str);
            let client = a
                .labels
                .get("client")
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            format!(
                "[{}] {title}{client} {}",
                status(a.status).to_uppercase(),
                a.url
            )
        })
        .collect()
}

fn headline(group: &Group) -> String {
    let firing = group
        .alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .count();
    let resolved = group.alerts.len() - firing;
    format!(
        "[{}] {firing} firing, {resolved} resolved — {}",
        status(group_status(group.alerts)).to_uppercase(),
        group
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A Slack or Mattermost incoming-webhook message (both read `text` and `attachments`).
pub fn slack(group: &Group) -> Value {
    let color = match group_status(group.alerts) {
        AlertStatus::Firing => "#d00000",
        AlertStatus::Resolved => "#2eb67d",
    };
    json!({
        "text": headline(group),
        "attachments": [{
            "color": color,
            "text": lines(group).join("\n"),
            "fallback": headline(group),
        }],
    })
}

/// A Microsoft Teams MessageCard.
pub fn teams(group: &Group) -> Value {
    let color = match group_status(group.alerts) {
        AlertStatus::Firing => "D00000",
        AlertStatus::Resolved => "2EB67D",
    };
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": headline(group),
        "themeColor": color,
        "title": headline(group),
        "text": lines(group).join("\n\n"),
    })
}

/// Vigie's own JSON: the group and its alerts as Vigie names them.
pub fn generic(group: &Group) -> Value {
    json!({
        "receiver": group.receiver,
        "group_key": group.key,
        "group_labels": string_map(group.labels),
        "reason": group.reason.as_str(),
        "status": status(group_status(group.alerts)),
        "alerts": group.alerts,
    })
}

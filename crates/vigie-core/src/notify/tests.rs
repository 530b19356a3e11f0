use std::collections::BTreeMap;

use serde_json::Value;

use super::payload::{Group, alertmanager_v4, generic, slack, teams};
use super::*;
use crate::event::parse_rfc3339_ms;

const S: i64 = 1_000;

fn alert(fingerprint: &str, status: AlertStatus, host: &str) -> NotifiedAlert {
    NotifiedAlert {
        fingerprint: fingerprint.into(),
        status,
        labels: BTreeMap::from([
            ("alertname".into(), "HostDown".into()),
            ("client".into(), "acme".into()),
            ("host".into(), host.into()),
        ]),
        annotations: BTreeMap::from([("summary".into(), format!("{host} is down"))]),
        starts_at_ms: 1_764_000_000_000,
        ends_at_ms: (status == AlertStatus::Resolved).then_some(1_764_000_600_000),
        url: format!("https://vigie.example/alerts/{fingerprint}"),
    }
}

#[test]
fn a_storm_of_one_group_is_one_message() {
    let timing = GroupTiming::default();
    let mut group = Grouper::default();
    for i in 0..1000 {
        group.add(
            alert(&format!("f{i}"), AlertStatus::Firing, &format!("h{i}")),
            &timing,
            i,
        );
    }
    assert_eq!(group.flush(&timing, 29 * S), None, "group_wait not over");
    let (reason, alerts) = group.flush(&timing, 30 * S).expect("one message");
    assert_eq!(reason, Reason::FirstNotification);
    assert_eq!(alerts.len(), 1000);
    assert_eq!(group.flush(&timing, 31 * S), None, "nothing new");
}

#[test]
fn changes_wait_for_the_group_interval_and_resolutions_are_always_told() {
    let timing = GroupTiming::default();
    let mut group = Grouper::default();
    group.add(alert("a", AlertStatus::Firing, "h1"), &timing, 0);
    group.flush(&timing, 30 * S).unwrap();
    group.add(alert("b", AlertStatus::Firing, "h2"), &timing, 40 * S);
    assert_eq!(
        group.flush(&timing, 60 * S),
        None,
        "group_interval not over"
    );
    let (reason, alerts) = group.flush(&timing, 330 * S).unwrap();
    assert_eq!(reason, Reason::NewAlertsAdded);
    assert_eq!(alerts.len(), 2);
    // a repeat of a firing alert already told changes nothing
    group.add(alert("a", AlertStatus::Firing, "h1"), &timing, 400 * S);
    assert_eq!(group.flush(&timing, 700 * S), None);
    group.add(alert("a", AlertStatus::Resolved, "h1"), &timing, 700 * S);
    let (reason, _) = group.flush(&timing, 700 * S).unwrap();
    assert_eq!(reason, Reason::SomeAlertsResolved);
    group.add(alert("b", AlertStatus::Resolved, "h2"), &timing, 800 * S);
    let (reason, alerts) = group.flush(&timing, 1100 * S).unwrap();
    assert_eq!(reason, Reason::AllAlertsResolved);
    assert_eq!(alerts.len(), 1);
    assert!(
        group.alerts.is_empty(),
        "resolved alerts leave the group once told"
    );
}

#[test]
fn an_unchanged_firing_group_is_repeated_after_the_repeat_interval() {
    let timing = GroupTiming::default();
    let mut group = Grouper::default();
    group.add(alert("a", AlertStatus::Firing, "h1"), &timing, 0);
    group.flush(&timing, 30 * S).unwrap();
    assert_eq!(group.flush(&timing, 3 * 3600 * S), None);
    let (reason, _) = group.flush(&timing, 30 * S + 4 * 3600 * S).unwrap();
    assert_eq!(reason, Reason::RepeatIntervalElapsed);
}

#[test]
fn backoff_doubles_up_to_its_cap_and_never_gives_up() {
    let backoff = Backoff::default();
    assert_eq!(backoff.retry_at(1, 0), 10 * S);
    assert_eq!(backoff.retry_at(2, 0), 20 * S);
    assert_eq!(backoff.retry_at(4, 0), 80 * S);
    assert_eq!(backoff.retry_at(10, 0), 600 * S);
    assert_eq!(backoff.retry_at(10_000, 5), 600 * S + 5);
}

fn object_of_strings(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|m| m.values().all(Value::is_string))
}

/// The shape Alertmanager documents for its webhook body, version "4"
/// (docs/configuration.md, `<webhook_config>`), checked field by field.
fn assert_alertmanager_v4(body: &Value) {
    let top = body.as_object().expect("an object");
    for field in [
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    ] {
        assert!(top.contains_key(field), "missing {field}");
    }
    assert_eq!(body["version"], "4");
    assert!(body["groupKey"].is_string());
    assert!(body["truncatedAlerts"].is_u64());
    assert!(matches!(
        body["status"].as_str(),
        Some("firing" | "resolved")
    ));
    assert!(body["receiver"].is_string());
    assert!(body["externalURL"].is_string());
    for labels in ["groupLabels", "commonLabels", "commonAnnotations"] {
        assert!(
            object_of_strings(&body[labels]),
            "{labels} must map strings to strings"
        );
    }
    for alert in body["alerts"].as_array().expect("alerts is a list") {
        assert!(matches!(
            alert["status"].as_str(),
            Some("firing" | "resolved")
        ));
        assert!(object_of_strings(&alert["labels"]));
        assert!(object_of_strings(&alert["annotations"]));
        for time in ["startsAt", "endsAt"] {
            let text = alert[time].as_str().expect("a time");
            assert!(
                text == "0001-01-01T00:00:00Z" || parse_rfc3339_ms(text).is_some(),
                "{time} {text} is not RFC 3339"
            );
        }
        assert!(alert["generatorURL"].is_string());
        assert!(alert["fingerprint"].is_string());
    }
}

#[test]
fn payloads_speak_the_receivers_formats() {
    let alerts = [
        alert("a", AlertStatus::Firing, "lyo-fw01"),
        alert("b", AlertStatus::Resolved, "lyo-sw02"),
    ];
    let labels = BTreeMap::from([("client".to_owned(), "acme".to_owned())]);
    let group = Group {
        receiver: "acme-network",
        key: "{}:{client=\"acme\"}",
        labels: &labels,
        alerts: &alerts,
        reason: Reason::NewAlertsAdded,
        external_url: "https://vigie.example",
    };
    let body = alertmanager_v4(&group);
    assert_alertmanager_v4(&body);
    assert_eq!(body["status"], "firing");
    assert_eq!(body["commonLabels"]["alertname"], "HostDown");
    assert!(body["commonLabels"].get("host").is_none(), "hosts differ");
    assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(body["notification_reason"], "new alerts added");

    let text = slack(&group)["attachments"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("[FIRING] lyo-fw01 is down (acme)"), "{text}");
    assert!(text.contains("[RESOLVED] lyo-sw02 is down"), "{text}");
    assert_eq!(teams(&group)["@type"], "MessageCard");
    assert_eq!(generic(&group)["alerts"][1]["status"], "resolved");
}

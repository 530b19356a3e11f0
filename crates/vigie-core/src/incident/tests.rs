//! Scenario tests of the incident state machine: each scenario is a list of (now, command)
//! steps; the snapshot shows every step's effects, one line per record or timeline entry.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use serde_json::Map;

use super::*;
use crate::event::Severity;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

/// An error on `asset` from the built-in rule; the fingerprint is asset and title, the way the
/// default rule fingerprint would tell problems apart.
fn signal(client: &str, asset: &str, title: &str, time_ms: i64) -> AlertSignal {
    AlertSignal {
        client: client.to_owned(),
        fingerprint: format!("{asset}/{title}"),
        rule: "severity-error".to_owned(),
        title: title.to_owned(),
        severity: Severity::Error,
        asset: Some(asset.to_owned()),
        source: "syslog".to_owned(),
        kind: "log".to_owned(),
        criticality: None,
        event_id: None,
        time_ms,
        labels: Map::new(),
    }
}

fn acknowledge(incident: IncidentId) -> IncidentCommand {
    IncidentCommand::Acknowledge {
        incident,
        actor: "alice".to_owned(),
    }
}

fn resolve(incident: IncidentId) -> IncidentCommand {
    IncidentCommand::Resolve {
        incident,
        actor: "alice".to_owned(),
    }
}

fn close(incident: IncidentId) -> IncidentCommand {
    IncidentCommand::Close {
        incident,
        actor: "bob".to_owned(),
    }
}

fn comment(incident: IncidentId, text: &str) -> IncidentCommand {
    IncidentCommand::Comment {
        incident,
        actor: "bob".to_owned(),
        text: text.to_owned(),
    }
}

fn reassign(incident: IncidentId, assignee: Option<&str>) -> IncidentCommand {
    IncidentCommand::Reassign {
        incident,
        actor: "alice".to_owned(),
        assignee: assignee.map(str::to_owned),
    }
}

fn time(ms: i64) -> String {
    if ms % MIN == 0 {
        format!("{}m", ms / MIN)
    } else {
        format!("{ms}ms")
    }
}

fn optional_time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), time)
}

fn describe_command(command: &IncidentCommand) -> String {
    match command {
        IncidentCommand::Signal(s) => format!(
            "signal {} fp={} {} {:?} at {}{}{}",
            s.client,
            s.fingerprint,
            s.severity.as_str(),
            s.title,
            time(s.time_ms),
            s.criticality
                .map_or(String::new(), |c| format!(" criticality={c}")),
            s.event_id
                .map_or(String::new(), |id| format!(" event={id}")),
        ),
        IncidentCommand::Acknowledge { incident, actor } => {
            format!("acknowledge #{incident} by {actor}")
        }
        IncidentCommand::Resolve { incident, actor } => format!("resolve #{incident} by {actor}"),
        IncidentCommand::Close { incident, actor } => format!("close #{incident} by {actor}"),
        IncidentCommand::Comment {
            incident,
            actor,
            text,
        } => format!("comment #{incident} by {actor}: {text:?}"),
        IncidentCommand::Reassign {
            incident,
            actor,
            assignee,
        } => format!("reassign #{incident} by {actor} to {assignee:?}"),
        IncidentCommand::ResolveAlert {
            client,
            fingerprint,
            actor,
        } => format!("resolve alert {client} fp={fingerprint} by {actor}"),
        IncidentCommand::Tick => "tick".to_owned(),
        other => format!("{other:?}"),
    }
}

fn render(effect: &Effect) -> String {
    match effect {
        Effect::Incident(i) => format!(
            "incident #{} {} [{}] {} impact={:?} urgency={:?} key={} assets=[{}] alerts={} \
             assignee={} created={} updated={} last_signal={} ack={} resolved={} closed={} {:?}",
            i.id,
            i.client,
            i.status.as_str(),
            i.priority.as_str(),
            i.impact,
            i.urgency,
            i.group_key,
            i.assets.join(","),
            i.alert_count,
            i.assignee.as_deref().unwrap_or("-"),
            time(i.created_ms),
            time(i.updated_ms),
            time(i.last_signal_ms),
            optional_time(i.acknowledged_ms),
            optional_time(i.resolved_ms),
            optional_time(i.closed_ms),
            i.title,
        ),
        Effect::Alert(a) => format!(
            "alert #{} {} → #{} [{}] {} count={} seen={}..{} event={} fp={} rule={} asset={} {:?}",
            a.id,
            a.client,
            a.incident_id,
            match a.status {
                AlertStatus::Firing => "firing",
                AlertStatus::Resolved => "resolved",
            },
            a.severity.as_str(),
            a.count,
            time(a.first_seen_ms),
            time(a.last_seen_ms),
            a.last_event_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            a.fingerprint,
            a.rule,
            a.asset.as_deref().unwrap_or("-"),
            a.title,
        ),
        Effect::Timeline(t) => format!(
            "timeline #{} {} @{} {} {:?}: {}",
            t.incident_id,
            t.client,
            time(t.time_ms),
            t.actor,
            t.kind,
            t.text
        ),
    }
}

/// Applies every step and renders what came out: the step, then its effects or its error.
fn run(book: &mut IncidentBook, steps: &[(i64, IncidentCommand)]) -> String {
    let mut out = String::new();
    for (now_ms, command) in steps {
        writeln!(out, "@{} {}", time(*now_ms), describe_command(command)).unwrap();
        match book.apply(command.clone(), *now_ms) {
            Ok(effects) if effects.is_empty() => writeln!(out, "  (nothing)").unwrap(),
            Ok(effects) => {
                for effect in &effects {
                    writeln!(out, "  {}", render(effect)).unwrap();
                }
            }
            Err(error) => writeln!(out, "  error: {error}").unwrap(),
        }
    }
    out
}

fn resolve_alert(client: &str, fingerprint: &str) -> IncidentCommand {
    IncidentCommand::ResolveAlert {
        client: client.to_owned(),
        fingerprint: fingerprint.to_owned(),
        actor: "vigie".to_owned(),
    }
}

#[test]
fn a_recovered_alert_resolves_its_incident_once_no_alert_of_it_fires() {
    let mut book = IncidentBook::new(1, 1);
    let steps = [
        (
            0,
            IncidentCommand::Signal(signal("acme", "srv-1", "ssh CRITICAL", 0)),
        ),
        (
            MIN,
            IncidentCommand::Signal(signal("acme", "srv-1", "http CRITICAL", MIN)),
        ),
        (2 * MIN, resolve_alert("acme", "srv-1/ssh CRITICAL")),
        // Unknown, already resolved, another client's: nothing.
        (3 * MIN, resolve_alert("acme", "srv-1/disk CRITICAL")),
        (3 * MIN, resolve_alert("acme", "srv-1/ssh CRITICAL")),
        (3 * MIN, resolve_alert("bellevue", "srv-1/http CRITICAL")),
        (4 * MIN, resolve_alert("acme", "srv-1/http CRITICAL")),
        // The problem comes back within the reopen window: the incident reopens.
        (
            5 * MIN,
            IncidentCommand::Signal(signal("acme", "srv-1", "ssh CRITICAL", 5 * MIN)),
        ),
    ];
    insta::assert_snapshot!(run(&mut book, &steps));
}

#[test]
fn alerts_share_their_client_rule_source_and_kind_strings() {
    let mut book = IncidentBook::new(1, 1);
    book.apply(
        IncidentCommand::Signal(signal("acme", "web1", "down", 0)),
        0,
    )
    .unwrap();
    book.apply(
        IncidentCommand::Signal(signal("acme", "db1", "down", 10)),
        10,
    )
    .unwrap();
    let alerts: Vec<&Alert> = book.live_alerts_of("acme").collect();
    assert_eq!(alerts.len(), 2);
    let (a, b) = (alerts[0], alerts[1]);
    assert!(Arc::ptr_eq(&a.client, &b.client) && Arc::ptr_eq(&a.rule, &b.rule));
    assert!(Arc::ptr_eq(&a.source, &b.source) && Arc::ptr_eq(&a.kind, &b.kind));
    // Restored from the store (each string read on its own), they share again.
    let stored: Vec<Alert> = alerts
        .iter()
        .map(|a| serde_json::from_str(&serde_json::to_string(a).unwrap()).unwrap())
        .collect();
    assert!(!Arc::ptr_eq(&stored[0].rule, &stored[1].rule));
    let restored = IncidentBook::restore(book.incidents().cloned().collect(), stored, 1, 1);
    let alerts: Vec<&Alert> = restored.live_alerts_of("acme").collect();
    assert_eq!(alerts.len(), 2);
    assert!(Arc::ptr_eq(&alerts[0].rule, &alerts[1].rule));
}

#[test]
fn repeats_update_one_alert_with_a_count() {
    let mut book = IncidentBook::new(1, 1);
    let repeat = |at: i64, severity: Severity, event_id: i64| {
        IncidentCommand::Signal(AlertSignal {
            severity,
            event_id: Some(event_id),
            ..signal("acme", "srv-1", "Disk full", at)
        })
    };
    let steps = [
        (0, repeat(0, Severity::Error, 10)),
        (MIN, repeat(MIN, Severity::Warning, 11)),
        (2 * MIN, repeat(2 * MIN, Severity::Critical, 12)),
        // Late delivery: counted, but the last seen time does not go back.
        (3 * MIN, repeat(MIN + 30_000, Severity::Error, 13)),
    ];
    insta::assert_snapshot!(run(&mut book, &steps));
    assert_eq!(book.live_alerts(), 1);
    assert_eq!(book.open_incidents(), 1);
}

#[test]
fn alerts_on_two_assets_open_two_incidents() {
    let mut book = IncidentBook::new(1, 1);
    let steps = [
        (
            0,
            IncidentCommand::Signal(signal("acme", "srv-1", "Disk full", 0)),
        ),
        (
            MIN,
            IncidentCommand::Signal(signal("acme", "srv-2", "Disk full", MIN)),
        ),
    ];
    insta::assert_snapshot!(run(&mut book, &steps));
    assert_eq!(book.open_incidents(), 2);
}

#[test]
fn same_asset_joins_within_the_window_and_opens_a_new_incident_after_it() {
    let mut book = IncidentBook::new(1, 1);
    let steps = [
        (
            0,
            IncidentCommand::Signal(signal("acme", "srv-1", "Disk full", 0)),
        ),
        (
            30 * MIN,
            IncidentCommand::Signal(signal("acme", "srv-1", "CPU high", 30 * MIN)),
        ),
        // 70 min after the last signal of incident 1: past the 1 h window.
        (
            100 * MIN,
            IncidentCommand::Signal(signal("acme", "srv-1", "Service down", 100 * MIN)),
        ),
        // Incident 1 is still open but only incident 2 is within the window.
        (
            110 * MIN,
            IncidentCommand::Signal(signal("acme", "srv-1", "Swap full", 110 * MIN)),
        ),
        // No asset: its own group, `asset=-`.
        (
            111 * MIN,
            IncidentCommand::Signal(AlertSignal {
                asset: None,
                ..signal("acme", "-", "Backup failed", 111 * MIN)
            }),
        ),
    ];
    insta::assert_snapshot!(run(&mut book, &steps));
    assert_eq!(book.open_incidents(), 3);
    assert_eq!(book.incident(2).map(|i| i.alert_count), Some(2));
}

#[test]
fn repeat_within_the_reopen_window_reopens_a_resolved_incident() {
    let mut book = IncidentBook::new(1, 1);
    let steps = [
        (
            0,
            IncidentCommand::Signal(signal("acme", "srv-1", "Disk full", 0)),
        ),
        (
            MIN,
            IncidentCommand::Signal(signal("acme", "srv-1", "Inode full", MIN)),
        ),
        (5 * MIN, acknowledge(1)),
        (6 * MIN, reassign(1, Some("alice"))),
        (10 * MIN, resolve(1)),
        (
            40 * MIN,
            IncidentCommand::Signal(signal("acme", "srv-1", "Disk full", 40 * MIN)),
        ),
        (
            41 * MIN,
            comment(1, "  disk filled again: log rotation broken  "),
        ),
        (42 * MIN, reassign(1, Some("  "))),
        (43 * MIN, acknowledge(1)),
    ];
    insta::assert_snapshot!(run(&mut book, &steps));
}

#[test]
fn tick_closes_after_the_reopen_window_and_a_repeat_opens_a_new_incident() {
    let mut book = IncidentBook::new(1, 1);
    let steps = [
        (
            0,
            IncidentCommand::Signal(signal("acme", "srv-1", "Disk full", 0)),
        ),
        (10 * MIN, resolve(1)),
        // 60 min after resolution: still within the window, nothing to close.
        (70 * MIN, IncidentCommand::Tick),
        (71 * MIN, IncidentCommand::Tick),
        (
            75 * MIN,
            IncidentCommand::Signal(signal("acme", "srv-1", "Disk full", 75 * MIN)),
        ),
        (76 * MIN, acknowledge(1)),
    ];
    insta::assert_snapshot!(run(&mut book, &steps));
    assert_eq!(book.open_incidents(), 1);
    assert_eq!(book.live_alerts(), 1);
}

#[test]
fn repeat_after_the_reopen_window_detaches_the_old_alert() {
    let mut book = IncidentBook::new(1, 1);
    let steps = [
        (
            0,
            IncidentCommand::Signal(signal("acme", "srv-1", "Disk full", 0)),
        ),
        (10 * MIN, resolve(1)),
        // No tick ran yet: incident 1 is still resolved, but too long ago to reopen.
        (
            80 * MIN,
            IncidentCommand::Signal(signal("acme", "srv-1", "Disk full", 80 * MIN)),
        ),
        (81 * MIN, IncidentCommand::Tick),
        // The key now belongs to alert 2: closing incident 1 did not take it away.
        (
            82 * MIN,
            IncidentCommand::Signal(signal("acme", "srv-1", "Disk full", 82 * MIN)),
        ),
    ];
    insta::assert_snapshot!(run(&mut book, &steps));
    assert_eq!(book.live_alerts(), 1);
}

#[test]
fn priority_escalates_when_a_critical_alert_on_a_critical_asset_joins() {
    let mut book = IncidentBook::new(1, 1);
    book.set_policy(
        "acme",
        GroupingPolicy {
            by: vec![GroupBy::Rule],
            ..GroupingPolicy::default()
        },
    );
    let steps = [
        (
            0,
            IncidentCommand::Signal(AlertSignal {
                rule: "raid".to_owned(),
                criticality: Some(2),
                ..signal("acme", "web-3", "RAID rebuilding", 0)
            }),
        ),
        (
            5 * MIN,
            IncidentCommand::Signal(AlertSignal {
                rule: "raid".to_owned(),
                severity: Severity::Critical,
                criticality: Some(5),
                ..signal("acme", "db-1", "RAID degraded", 5 * MIN)
            }),
        ),
        // Already at the top: a repeat changes nothing about the priority.
        (
            6 * MIN,
            IncidentCommand::Signal(AlertSignal {
                rule: "raid".to_owned(),
                criticality: Some(2),
                ..signal("acme", "web-3", "RAID rebuilding", 6 * MIN)
            }),
        ),
    ];
    insta::assert_snapshot!(run(&mut book, &steps));
    assert_eq!(book.incident(1).map(|i| i.priority), Some(Priority::P1));
}

#[test]
fn invalid_transitions_return_the_error_and_change_nothing() {
    let mut book = IncidentBook::new(1, 1);
    let apply = |book: &mut IncidentBook, command| book.apply(command, 5 * MIN);
    apply(
        &mut book,
        IncidentCommand::Signal(signal("acme", "srv-1", "Disk full", 0)),
    )
    .unwrap();
    apply(&mut book, acknowledge(1)).unwrap();

    assert_eq!(
        apply(&mut book, acknowledge(1)),
        Err(CommandError::InvalidTransition {
            incident: 1,
            from: IncidentStatus::Acknowledged,
            action: "acknowledge",
        })
    );
    apply(&mut book, resolve(1)).unwrap();
    let before = book.incident(1).cloned();
    assert_eq!(
        apply(&mut book, resolve(1)),
        Err(CommandError::InvalidTransition {
            incident: 1,
            from: IncidentStatus::Resolved,
            action: "resolve",
        })
    );
    assert_eq!(
        apply(&mut book, acknowledge(1)),
        Err(CommandError::InvalidTransition {
            incident: 1,
            from: IncidentStatus::Resolved,
            action: "acknowledge",
        })
    );
    assert_eq!(
        apply(&mut book, comment(1, " \n ")),
        Err(CommandError::EmptyComment)
    );
    assert_eq!(book.incident(1).cloned(), before);

    apply(&mut book, close(1)).unwrap();
    assert_eq!(
        apply(&mut book, comment(1, "too late")),
        Err(CommandError::UnknownIncident(1))
    );
    assert_eq!(
        apply(&mut book, close(1)),
        Err(CommandError::UnknownIncident(1))
    );
    assert_eq!(
        apply(&mut book, reassign(42, None)),
        Err(CommandError::UnknownIncident(42))
    );
    assert_eq!(book.open_incidents(), 0);
    assert_eq!(book.live_alerts(), 0);

    assert_eq!(
        CommandError::InvalidTransition {
            incident: 7,
            from: IncidentStatus::Resolved,
            action: "acknowledge",
        }
        .to_string(),
        "cannot acknowledge incident 7: it is resolved"
    );
    assert_eq!(
        CommandError::UnknownIncident(7).to_string(),
        "incident 7 is not open (closed or unknown)"
    );
}

#[test]
fn clients_with_the_same_fingerprint_never_share_an_alert_or_incident() {
    let mut book = IncidentBook::new(1, 1);
    let steps = [
        (
            0,
            IncidentCommand::Signal(signal("acme", "srv-1", "Disk full", 0)),
        ),
        (
            MIN,
            IncidentCommand::Signal(signal("globex", "srv-1", "Disk full", MIN)),
        ),
        (
            2 * MIN,
            IncidentCommand::Signal(signal("globex", "srv-1", "Disk full", 2 * MIN)),
        ),
        (
            3 * MIN,
            IncidentCommand::Signal(signal("acme", "srv-1", "CPU high", 3 * MIN)),
        ),
        (4 * MIN, resolve(2)),
        (
            5 * MIN,
            IncidentCommand::Signal(signal("acme", "srv-1", "Disk full", 5 * MIN)),
        ),
    ];
    insta::assert_snapshot!(run(&mut book, &steps));
}

#[test]
fn policies_are_per_client() {
    let mut book = IncidentBook::new(1, 1);
    book.set_policy(
        "globex",
        GroupingPolicy {
            by: vec![GroupBy::Source, GroupBy::Kind],
            window_ms: 10 * MIN,
            reopen_window_ms: 5 * MIN,
        },
    );
    for client in ["acme", "globex"] {
        book.apply(
            IncidentCommand::Signal(signal(client, "srv-1", "Disk full", 0)),
            0,
        )
        .unwrap();
        book.apply(
            IncidentCommand::Signal(signal(client, "srv-2", "Disk full", 0)),
            0,
        )
        .unwrap();
    }
    let keys: Vec<_> = (1..=3)
        .filter_map(|id| book.incident(id))
        .map(|i| (i.client.as_str(), i.group_key.as_str(), i.alert_count))
        .collect();
    assert_eq!(
        keys,
        [
            ("acme", "asset=srv-1", 1),
            ("acme", "asset=srv-2", 1),
            ("globex", "source=syslog,kind=log", 2),
        ]
    );
    book.apply(resolve(1), MIN).unwrap();
    book.apply(resolve(3), MIN).unwrap();
    // Seven minutes after: past globex's 5 min reopen window, within acme's hour.
    let closed = book.apply(IncidentCommand::Tick, 8 * MIN).unwrap();
    let closed: Vec<_> = closed
        .iter()
        .filter_map(|effect| match effect {
            Effect::Timeline(entry) => Some((entry.incident_id, entry.text.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        closed,
        [(3, "closed: no repeat within 5 min of resolution")]
    );
}

/// The last record of every incident and alert the effects carry, as the store would hold
/// them, and the id counters it would derive.
fn stored_records(effects: &[Effect]) -> (Vec<Incident>, Vec<Alert>, AlertId, IncidentId) {
    let mut incidents = BTreeMap::new();
    let mut alerts = BTreeMap::new();
    for effect in effects {
        match effect {
            Effect::Incident(incident) => {
                incidents.insert(incident.id, incident.clone());
            }
            Effect::Alert(alert) => {
                alerts.insert(alert.id, Alert::clone(alert));
            }
            Effect::Timeline(_) => {}
        }
    }
    let next_alert = alerts.keys().max().map_or(1, |id| id + 1);
    let next_incident = incidents.keys().max().map_or(1, |id| id + 1);
    let open: Vec<Incident> = incidents
        .into_values()
        .filter(|incident| incident.status != IncidentStatus::Closed)
        .collect();
    let alerts = alerts
        .into_values()
        .filter(|alert| open.iter().any(|incident| incident.id == alert.incident_id))
        .collect();
    (open, alerts, next_alert, next_incident)
}

#[test]
fn restore_then_continue_gives_the_same_effects_as_never_restarting() {
    let policy = GroupingPolicy {
        by: vec![GroupBy::Asset, GroupBy::Rule],
        window_ms: 30 * MIN,
        reopen_window_ms: 20 * MIN,
    };
    let critical = |asset: &str, title: &str, at: i64| {
        IncidentCommand::Signal(AlertSignal {
            severity: Severity::Critical,
            criticality: Some(5),
            event_id: Some(at / MIN),
            ..signal("acme", asset, title, at)
        })
    };
    let error = |client: &str, asset: &str, title: &str, at: i64| {
        IncidentCommand::Signal(signal(client, asset, title, at))
    };
    let steps = vec![
        (0, error("acme", "srv-1", "Disk full", 0)),
        (MIN, error("globex", "srv-1", "Disk full", MIN)),
        (2 * MIN, critical("srv-1", "RAID degraded", 2 * MIN)),
        (3 * MIN, error("acme", "srv-1", "Disk full", 3 * MIN)),
        (4 * MIN, acknowledge(1)),
        (5 * MIN, reassign(1, Some("alice"))),
        (6 * MIN, error("acme", "srv-2", "CPU high", 6 * MIN)),
        (7 * MIN, resolve(1)),
        (8 * MIN, resolve(2)),
        (20 * MIN, critical("srv-1", "RAID degraded", 20 * MIN)),
        (30 * MIN, IncidentCommand::Tick),
        (40 * MIN, error("globex", "srv-1", "Disk full", 40 * MIN)),
        (45 * MIN, comment(3, "looking")),
        (50 * MIN, resolve(1)),
        (60 * MIN, error("acme", "srv-1", "Disk full", 60 * MIN)),
        (75 * MIN, IncidentCommand::Tick),
        (80 * MIN, error("acme", "srv-1", "Disk full", 80 * MIN)),
        (81 * MIN, error("acme", "srv-2", "CPU high", 81 * MIN)),
        (90 * MIN, close(3)),
        (95 * MIN, acknowledge(5)),
        (100 * MIN, IncidentCommand::Tick),
    ];
    let fresh_book = || {
        let mut book = IncidentBook::new(1, 1);
        book.set_policy("acme", policy.clone());
        book
    };
    let mut reference = fresh_book();
    let expected: Vec<Result<Vec<Effect>, CommandError>> = steps
        .iter()
        .map(|(now_ms, command)| reference.apply(command.clone(), *now_ms))
        .collect();

    for split in 0..=steps.len() {
        let mut before = fresh_book();
        let mut kept = Vec::new();
        for (now_ms, command) in &steps[..split] {
            if let Ok(effects) = before.apply(command.clone(), *now_ms) {
                kept.extend(effects);
            }
        }
        let (incidents, alerts, next_alert, next_incident) = stored_records(&kept);
        let mut after = IncidentBook::restore(incidents, alerts, next_alert, next_incident);
        after.set_policy("acme", policy.clone());
        for (index, (now_ms, command)) in steps.iter().enumerate().skip(split) {
            assert_eq!(
                after.apply(command.clone(), *now_ms),
                expected[index],
                "restored after step {split}, step {index} differs"
            );
        }
        assert_eq!(after.open_incidents(), reference.open_incidents());
        assert_eq!(after.live_alerts(), reference.live_alerts());
    }
}

#[test]
fn effects_serialize_with_their_kind() {
    let mut book = IncidentBook::new(7, 3);
    let effects = book
        .apply(
            IncidentCommand::Signal(signal("acme", "srv-1", "Disk full", 0)),
            0,
        )
        .unwrap();
    insta::assert_json_snapshot!(effects);
}

fn book_with(signals: &[AlertSignal]) -> IncidentBook {
    let mut book = IncidentBook::new(1, 1);
    for signal in signals {
        book.apply(IncidentCommand::Signal(signal.clone()), signal.time_ms)
            .expect("signal");
    }
    book
}

#[test]
fn merge_moves_every_alert_and_closes_the_merged_incident() {
    let mut book = book_with(&[
        signal("acme", "srv-1", "disk full", 0),
        signal("acme", "srv-2", "ransom note", MIN),
        signal("other", "srv-1", "disk full", MIN),
    ]);
    assert_eq!(book.open_incidents(), 3);
    let effects = book
        .apply(
            IncidentCommand::Merge {
                into: 1,
                from: 2,
                actor: "alice".into(),
            },
            2 * MIN,
        )
        .expect("merge");
    let merged = book.incident(1).expect("kept");
    assert_eq!(merged.alert_count, 2);
    assert_eq!(merged.assets, ["srv-1", "srv-2"]);
    assert!(book.incident(2).is_none(), "the merged incident closed");
    assert_eq!(book.alerts_of(1).count(), 2);
    assert!(effects.iter().any(|e| matches!(e,
        Effect::Timeline(t) if t.kind == TimelineKind::Closed && t.text == "merged into incident 1")));
    // Across clients, into itself, or from a closed incident: refused, nothing changed.
    let across = IncidentCommand::Merge {
        into: 1,
        from: 3,
        actor: "alice".into(),
    };
    assert_eq!(
        book.apply(across, 3 * MIN),
        Err(CommandError::MergeAcrossClients)
    );
    let itself = IncidentCommand::Merge {
        into: 1,
        from: 1,
        actor: "alice".into(),
    };
    assert_eq!(
        book.apply(itself, 3 * MIN),
        Err(CommandError::MergeIntoItself(1))
    );
    // A new signal of the merged alert updates it in its new incident.
    book.apply(
        IncidentCommand::Signal(signal("acme", "srv-2", "ransom note", 4 * MIN)),
        4 * MIN,
    )
    .expect("repeat");
    assert_eq!(book.open_incidents(), 2);
    assert_eq!(book.incident(1).expect("kept").alert_count, 2);
}

#[test]
fn split_moves_chosen_alerts_into_a_new_incident() {
    let mut book = IncidentBook::new(1, 1);
    book.set_policy(
        "acme",
        GroupingPolicy {
            by: vec![],
            window_ms: HOUR,
            reopen_window_ms: HOUR,
        },
    );
    for (asset, title) in [("srv-1", "disk full"), ("srv-2", "cpu"), ("srv-3", "ram")] {
        book.apply(IncidentCommand::Signal(signal("acme", asset, title, 0)), 0)
            .expect("signal");
    }
    assert_eq!(book.open_incidents(), 1);
    let split = |alerts: Vec<AlertId>| IncidentCommand::Split {
        incident: 1,
        alerts,
        actor: "alice".into(),
    };
    assert_eq!(
        book.apply(split(vec![1, 2, 3]), MIN),
        Err(CommandError::SplitNeedsSomeAlerts)
    );
    assert_eq!(
        book.apply(split(vec![9]), MIN),
        Err(CommandError::NotAMember {
            incident: 1,
            alert: 9
        })
    );
    book.apply(split(vec![2, 3]), MIN).expect("split");
    let old = book.incident(1).expect("old");
    let new = book.incident(2).expect("new");
    assert_eq!(
        (old.alert_count, old.assets.clone()),
        (1, vec!["srv-1".to_owned()])
    );
    assert_eq!(new.assets, ["srv-2", "srv-3"]);
    assert_eq!(new.title, "cpu");
    assert_eq!(book.alerts_of(2).map(|a| a.id).collect::<Vec<_>>(), [2, 3]);
}

#[test]
fn set_priority_uses_the_client_matrix_and_says_why() {
    let mut book = IncidentBook::new(1, 1);
    let mut stricter = Matrix::default();
    stricter.0[1][0] = Priority::P1; // medium impact × high urgency → P1
    book.set_matrix("acme", stricter);
    book.apply(IncidentCommand::Signal(signal("acme", "srv-1", "x", 0)), 0)
        .expect("signal");
    let set = |impact, urgency| IncidentCommand::SetPriority {
        incident: 1,
        impact,
        urgency,
        reason: "business service line-2 CRITICAL".into(),
    };
    let effects = book
        .apply(set(Level::Medium, Level::High), MIN)
        .expect("set");
    assert_eq!(book.incident(1).expect("open").priority, Priority::P1);
    assert!(effects.iter().any(|e| matches!(e,
        Effect::Timeline(t) if t.kind == TimelineKind::PriorityChanged
            && t.text.ends_with("business service line-2 CRITICAL"))));
    // Same inputs again: nothing to write.
    assert_eq!(
        book.apply(set(Level::Medium, Level::High), 2 * MIN),
        Ok(vec![])
    );
}

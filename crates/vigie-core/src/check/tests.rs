//! Scenario tests of the check state machine: each scenario is a list of (now, command) steps;
//! the snapshot shows every step's effects, one per line, then the status it left (`=`).

use std::fmt::Write;

use super::*;

const MIN: i64 = 60_000;

fn time(ms: i64) -> String {
    if ms % MIN == 0 {
        format!("{}m", ms / MIN)
    } else {
        format!("{ms}ms")
    }
}

fn result(state: CheckState) -> CheckCommand {
    CheckCommand::Result {
        result: PluginResult::new(state, format!("{} - disk /var", state.as_str())),
        parent_down: false,
    }
}

fn host_result(state: CheckState, parent_down: bool) -> CheckCommand {
    CheckCommand::Result {
        result: PluginResult::new(state, format!("PING {}", state.as_str())),
        parent_down,
    }
}

fn acknowledge(sticky: bool, expires_ms: Option<i64>) -> CheckCommand {
    CheckCommand::Acknowledge {
        author: "alice".to_owned(),
        comment: "looking into it".to_owned(),
        sticky,
        expires_ms,
    }
}

fn downtime(id: u64, start_ms: i64, end_ms: i64, kind: DowntimeKind) -> CheckCommand {
    CheckCommand::ScheduleDowntime {
        id,
        author: "bob".to_owned(),
        comment: "maintenance".to_owned(),
        start_ms,
        end_ms,
        kind,
    }
}

fn describe_command(command: &CheckCommand) -> String {
    match command {
        CheckCommand::Result {
            result,
            parent_down,
        } => format!(
            "result {} {:?}{}",
            result.state.as_str(),
            result.output,
            if *parent_down { " (parent down)" } else { "" }
        ),
        CheckCommand::Acknowledge {
            author,
            sticky,
            expires_ms,
            ..
        } => format!(
            "acknowledge by {author}{}{}",
            if *sticky { " sticky" } else { "" },
            expires_ms.map_or(String::new(), |ms| format!(" until {}", time(ms)))
        ),
        CheckCommand::RemoveAcknowledgement => "remove acknowledgement".to_owned(),
        CheckCommand::ScheduleDowntime {
            id,
            start_ms,
            end_ms,
            kind,
            ..
        } => format!(
            "schedule downtime #{id} {}..{}{}",
            time(*start_ms),
            time(*end_ms),
            match kind {
                DowntimeKind::Fixed => " fixed".to_owned(),
                DowntimeKind::Flexible { duration_ms } =>
                    format!(" flexible for {}", time(*duration_ms)),
            }
        ),
        CheckCommand::RemoveDowntime { id } => format!("remove downtime #{id}"),
        CheckCommand::Tick => "tick".to_owned(),
    }
}

fn render(effect: &CheckEffect) -> String {
    match effect {
        CheckEffect::StateChanged { from, to, hard } => format!(
            "state {} → {} ({})",
            from.as_str(),
            to.as_str(),
            if *hard { "hard" } else { "soft" }
        ),
        CheckEffect::Notify { kind } => format!("notify {kind:?}"),
        CheckEffect::Suppressed { kind, reason } => format!("suppressed {kind:?}: {reason:?}"),
        CheckEffect::NextCheckAt(ms) => format!("next check at {}", time(*ms)),
        CheckEffect::AcknowledgementCleared { reason } => {
            format!("acknowledgement cleared: {reason:?}")
        }
        CheckEffect::Rejected { reason } => format!("rejected: {reason:?}"),
    }
}

fn describe_status(status: &CheckStatus) -> String {
    let ack = status
        .acknowledgement
        .as_ref()
        .map_or("-".to_owned(), |ack| {
            format!(
                "{}{}",
                ack.author,
                if ack.sticky { " (sticky)" } else { "" }
            )
        });
    let downtimes: Vec<String> = status
        .downtimes
        .iter()
        .map(|d| {
            format!(
                "#{}{}",
                d.id,
                d.started_ms.map_or(" waiting".to_owned(), |ms| format!(
                    " active since {}",
                    time(ms)
                ))
            )
        })
        .collect();
    format!(
        "= {} {:?} {}/{} ack={} downtimes=[{}] flapping={}{:.1}%",
        status.state.as_str(),
        status.state_type,
        status.attempt,
        status.config.max_check_attempts,
        ack,
        downtimes.join(", "),
        if status.flapping { "yes " } else { "" },
        status.flapping_percent,
    )
}

/// Runs the steps and renders each with its effects and the status it left.
fn run(status: &mut CheckStatus, steps: &[(i64, CheckCommand)]) -> String {
    let mut out = String::new();
    for (now_ms, command) in steps {
        writeln!(out, "@{} {}", time(*now_ms), describe_command(command)).unwrap();
        for effect in status.apply(command.clone(), *now_ms) {
            writeln!(out, "  {}", render(&effect)).unwrap();
        }
        writeln!(out, "  {}", describe_status(status)).unwrap();
    }
    out
}

fn service() -> CheckStatus {
    CheckStatus::new(CheckKind::Service, CheckConfig::default())
}

/// Three CRITICAL results an attempt apart from `start`: the third one is hard.
fn hard_critical_from(start: i64) -> Vec<(i64, CheckCommand)> {
    (0..3)
        .map(|i| (start + i * MIN, result(CheckState::Critical)))
        .collect()
}

#[test]
fn soft_critical_turns_hard_after_three_attempts_with_retry_scheduling() {
    let mut steps = vec![(0, result(CheckState::Ok))];
    steps.extend(hard_critical_from(5 * MIN));
    steps.push((12 * MIN, result(CheckState::Critical)));
    insta::assert_snapshot!(run(&mut service(), &steps));
}

#[test]
fn soft_recovery_does_not_notify() {
    let steps = vec![
        (0, result(CheckState::Ok)),
        (5 * MIN, result(CheckState::Warning)),
        (6 * MIN, result(CheckState::Critical)),
        (7 * MIN, result(CheckState::Ok)),
        (12 * MIN, result(CheckState::Ok)),
    ];
    insta::assert_snapshot!(run(&mut service(), &steps));
}

#[test]
fn hard_recovery_notifies() {
    let mut steps = hard_critical_from(0);
    steps.push((7 * MIN, result(CheckState::Warning)));
    steps.push((12 * MIN, result(CheckState::Ok)));
    insta::assert_snapshot!(run(&mut service(), &steps));
}

#[test]
fn flapping_starts_above_thirty_percent_and_ends_at_twenty_five() {
    let config = CheckConfig {
        max_check_attempts: 1,
        ..CheckConfig::default()
    };
    let mut status = CheckStatus::new(CheckKind::Service, config);
    let mut steps = Vec::new();
    // Seven changes in a row: the sixth crosses 30%.
    for i in 0..7 {
        let state = if i % 2 == 0 {
            CheckState::Critical
        } else {
            CheckState::Ok
        };
        steps.push((i * MIN, result(state)));
    }
    // Then the state holds until the changes age out of the weight below 25%.
    for i in 7..24 {
        steps.push((i * MIN, result(CheckState::Critical)));
    }
    steps.push((24 * MIN, result(CheckState::Ok)));
    insta::assert_snapshot!(run(&mut status, &steps));
}

#[test]
fn non_sticky_acknowledgement_clears_on_any_state_change() {
    let mut steps = vec![(0, acknowledge(false, None))];
    steps.extend(hard_critical_from(MIN));
    steps.extend([
        (4 * MIN, acknowledge(false, None)),
        (5 * MIN, acknowledge(true, None)),
        (8 * MIN, result(CheckState::Critical)),
        (13 * MIN, result(CheckState::Warning)),
    ]);
    insta::assert_snapshot!(run(&mut service(), &steps));
}

#[test]
fn sticky_acknowledgement_holds_until_recovery() {
    let mut steps = hard_critical_from(0);
    steps.extend([
        (3 * MIN, acknowledge(true, None)),
        (7 * MIN, result(CheckState::Warning)),
        (12 * MIN, result(CheckState::Critical)),
        (17 * MIN, result(CheckState::Ok)),
        (18 * MIN, CheckCommand::RemoveAcknowledgement),
    ]);
    insta::assert_snapshot!(run(&mut service(), &steps));
}

#[test]
fn acknowledgement_expires_at_its_time() {
    let mut steps = hard_critical_from(0);
    steps.extend([
        (3 * MIN, acknowledge(true, Some(MIN))),
        (3 * MIN, acknowledge(true, Some(30 * MIN))),
        (29 * MIN, CheckCommand::Tick),
        (30 * MIN, CheckCommand::Tick),
        (32 * MIN, result(CheckState::Warning)),
    ]);
    insta::assert_snapshot!(run(&mut service(), &steps));
}

#[test]
fn fixed_downtime_suppresses_the_problem_and_notifies_its_start_and_end() {
    let mut steps = vec![
        (0, downtime(1, 10 * MIN, 70 * MIN, DowntimeKind::Fixed)),
        (0, downtime(1, 10 * MIN, 70 * MIN, DowntimeKind::Fixed)),
        (0, downtime(2, 10 * MIN, 10 * MIN, DowntimeKind::Fixed)),
        (10 * MIN, CheckCommand::Tick),
    ];
    steps.extend(hard_critical_from(20 * MIN));
    steps.extend([
        (23 * MIN, acknowledge(false, Some(60 * MIN))),
        (60 * MIN, CheckCommand::Tick),
        (70 * MIN, CheckCommand::Tick),
        (75 * MIN, result(CheckState::Ok)),
    ]);
    insta::assert_snapshot!(run(&mut service(), &steps));
}

#[test]
fn flexible_downtime_starts_at_the_first_problem_and_lasts_its_duration() {
    let flexible = DowntimeKind::Flexible {
        duration_ms: 30 * MIN,
    };
    let mut steps = vec![
        (0, downtime(1, 0, 60 * MIN, flexible)),
        (0, downtime(2, 0, 5 * MIN, flexible)),
        (5 * MIN, result(CheckState::Ok)),
    ];
    steps.extend(hard_critical_from(10 * MIN));
    steps.extend([
        (40 * MIN, CheckCommand::Tick),
        (41 * MIN, result(CheckState::Critical)),
        (46 * MIN, result(CheckState::Ok)),
    ]);
    insta::assert_snapshot!(run(&mut service(), &steps));
}

#[test]
fn flexible_downtime_starts_with_its_window_on_an_object_already_down() {
    let flexible = DowntimeKind::Flexible {
        duration_ms: 10 * MIN,
    };
    let mut steps = hard_critical_from(0);
    steps.extend([
        (3 * MIN, downtime(7, 5 * MIN, 60 * MIN, flexible)),
        (5 * MIN, CheckCommand::Tick),
        (6 * MIN, CheckCommand::RemoveDowntime { id: 7 }),
        (6 * MIN, CheckCommand::RemoveDowntime { id: 7 }),
    ]);
    insta::assert_snapshot!(run(&mut service(), &steps));
}

#[test]
fn host_down_behind_a_down_parent_is_unreachable_and_does_not_notify() {
    let mut host = CheckStatus::new(CheckKind::Host, CheckConfig::default());
    let steps = vec![
        (0, host_result(CheckState::Critical, true)),
        (MIN, host_result(CheckState::Critical, true)),
        (2 * MIN, host_result(CheckState::Critical, true)),
        (7 * MIN, host_result(CheckState::Critical, false)),
        (12 * MIN, host_result(CheckState::Unknown, true)),
        (17 * MIN, host_result(CheckState::Warning, false)),
    ];
    insta::assert_snapshot!(run(&mut host, &steps));
}

#[test]
fn acknowledging_an_ok_object_is_rejected() {
    let mut status = service();
    let effects = status.apply(acknowledge(false, None), 0);
    assert_eq!(
        effects,
        [CheckEffect::Rejected {
            reason: RejectReason::NotAProblem
        }]
    );
    assert_eq!(status.acknowledgement, None);
}

#[test]
fn status_and_effects_serialize_and_read_back() {
    let mut status = service();
    let mut effects = Vec::new();
    for (now, command) in hard_critical_from(0) {
        effects.extend(status.apply(command, now));
    }
    effects.extend(status.apply(downtime(1, 0, 10 * MIN, DowntimeKind::Fixed), 3 * MIN));
    let json = serde_json::to_value(&status).unwrap();
    let back: CheckStatus = serde_json::from_value(json).unwrap();
    assert_eq!(back, status);
    insta::assert_json_snapshot!(effects);
}

#[test]
fn a_status_is_stored_as_before_and_reads_older_flapping_histories() {
    let mut status = CheckStatus::new(CheckKind::Service, CheckConfig::default());
    for state in [CheckState::Critical, CheckState::Ok] {
        status.apply(result(state), 0);
    }
    let written = serde_json::to_value(&status).unwrap();
    let history = written["flapping_changes"].as_array().unwrap();
    assert_eq!(history.len(), 20, "a list of 20 booleans, oldest first");
    assert_eq!(history[18], serde_json::json!(true));
    assert_eq!(history[19], serde_json::json!(true));
    assert!(history[..18].iter().all(|changed| changed == false));
    let read: CheckStatus = serde_json::from_value(written.clone()).unwrap();
    assert_eq!(read, status);

    // A shorter stored history is padded with "no change" before it; a longer one keeps its
    // last 20 results.
    let mut short = written.clone();
    short["flapping_changes"] = serde_json::json!([true, false]);
    let read: CheckStatus = serde_json::from_value(short).unwrap();
    let bits: Vec<bool> = read.flapping_changes.iter().collect();
    assert_eq!(bits[..18], [false; 18]);
    assert_eq!(bits[18..], [true, false]);
    let mut long = written;
    let mut list = vec![true; 5];
    list.extend([false; 20]);
    long["flapping_changes"] = serde_json::json!(list);
    let read: CheckStatus = serde_json::from_value(long).unwrap();
    assert_eq!(read.flapping_changes, FlappingWindow::default());
}

#[test]
fn check_ids_compare_by_their_names_and_serialize_as_them() {
    let a = CheckId::new("acme", "web01", "http");
    let b = CheckId::new("acme", String::from("web01"), "http");
    assert_eq!(a, b, "two allocations of the same names");
    let mut set = std::collections::HashSet::new();
    set.insert(a.clone());
    assert!(set.contains(&b));
    assert!(a < CheckId::new("acme", "web02", "http"));
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"client": "acme", "asset": "web01", "check": "http"})
    );
    assert_eq!(serde_json::from_value::<CheckId>(json).unwrap(), a);
    assert_eq!(
        (a.client(), a.asset(), a.check()),
        ("acme", "web01", "http")
    );
}

/// A million statuses stay in memory: their size is watched (issue 4's under 1 KiB per check
/// counts on it; see BENCHMARKS.md).
#[test]
fn a_status_stays_small() {
    let size = std::mem::size_of::<CheckStatus>();
    eprintln!("CheckStatus: {size} bytes");
    assert!(size <= 144, "CheckStatus grew to {size} bytes");
}

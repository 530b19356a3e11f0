use super::*;

const MIN: i64 = 60_000;

fn step(target: &str, wait_minutes: i64) -> Step {
    Step {
        targets: vec![Target::Team(target.into())],
        wait_ms: wait_minutes * MIN,
        max_priority: None,
        during: None,
    }
}

fn policy(steps: Vec<Step>, repeat: u32, reescalate_minutes: Option<i64>) -> Policy {
    Policy {
        id: "standard".into(),
        steps,
        repeat,
        reescalate_after_ms: reescalate_minutes.map(|m| m * MIN),
    }
}

/// The teams notified, in order, by the effects.
fn paged(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify { targets, .. } => Some(format!("{targets:?}")),
            _ => None,
        })
        .collect()
}

#[test]
fn steps_fire_in_turn_until_acknowledged() {
    let mut e = Escalation::start(policy(vec![step("l1", 10), step("l2", 10)], 0, None), 2, 0);
    assert_eq!(paged(&e.apply(Command::Tick, 0)), ["[Team(\"l1\")]"]);
    assert!(
        e.apply(Command::Tick, 9 * MIN).is_empty(),
        "l2 is paged too early"
    );
    assert_eq!(paged(&e.apply(Command::Tick, 10 * MIN)), ["[Team(\"l2\")]"]);
    assert_eq!(
        e.apply(Command::Acknowledge, 12 * MIN),
        vec![Effect::Stopped {
            reason: Phase::Acknowledged
        }]
    );
    assert!(e.apply(Command::Tick, 60 * MIN).is_empty());
    assert_eq!(e.fired, 2);
}

#[test]
fn the_policy_repeats_then_is_exhausted_after_the_last_wait() {
    let mut e = Escalation::start(policy(vec![step("l1", 5), step("l2", 5)], 1, None), 3, 0);
    let mut all = Vec::new();
    for minute in 0..=30 {
        all.extend(e.apply(Command::Tick, minute * MIN));
    }
    assert_eq!(
        paged(&all),
        [
            "[Team(\"l1\")]",
            "[Team(\"l2\")]",
            "[Team(\"l1\")]",
            "[Team(\"l2\")]"
        ]
    );
    assert_eq!(all.last(), Some(&Effect::Exhausted));
    assert_eq!(e.phase, Phase::Exhausted);
    // the last step's wait ran before exhaustion: exhausted at 20 min, not at 15
    let mut e = Escalation::start(policy(vec![step("l1", 5), step("l2", 5)], 1, None), 3, 0);
    let early: Vec<Effect> = (0..=19)
        .flat_map(|m| e.apply(Command::Tick, m * MIN))
        .collect();
    assert!(!early.contains(&Effect::Exhausted));
    assert_eq!(e.apply(Command::Tick, 20 * MIN), vec![Effect::Exhausted]);
}

#[test]
fn a_restart_fires_each_overdue_step_once_late_and_never_twice() {
    let mut e = Escalation::start(
        policy(
            vec![step("l1", 10), step("l2", 10), step("crisis", 10)],
            0,
            None,
        ),
        1,
        0,
    );
    e.apply(Command::Tick, 0);
    // stored, the process dies, and comes back 25 minutes later
    let stored = serde_json::to_string(&e).unwrap();
    let mut restored: Escalation = serde_json::from_str(&stored).unwrap();
    let effects = restored.apply(Command::Tick, 25 * MIN);
    assert_eq!(paged(&effects), ["[Team(\"l2\")]", "[Team(\"crisis\")]"]);
    let due: Vec<i64> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify { due_ms, .. } => Some(*due_ms),
            _ => None,
        })
        .collect();
    assert_eq!(
        due,
        [10 * MIN, 20 * MIN],
        "late steps say when they were due"
    );
    assert!(paged(&restored.apply(Command::Tick, 25 * MIN)).is_empty());
    assert_eq!(restored.fired, 3);
}

#[test]
fn an_acknowledgement_without_resolution_escalates_again() {
    let mut e = Escalation::start(
        policy(vec![step("l1", 10), step("l2", 10)], 0, Some(30)),
        2,
        0,
    );
    e.apply(Command::Tick, 0);
    e.apply(Command::Acknowledge, 5 * MIN);
    assert!(e.apply(Command::Tick, 34 * MIN).is_empty());
    let effects = e.apply(Command::Tick, 35 * MIN);
    assert!(
        matches!(
            &effects[..],
            [Effect::Notify {
                step: 1,
                reescalation: true,
                ..
            }]
        ),
        "{effects:?}"
    );
    // resolved: nothing more, ever
    assert_eq!(
        e.apply(Command::Resolve, 36 * MIN),
        vec![Effect::Stopped {
            reason: Phase::Resolved
        }]
    );
    assert!(e.apply(Command::Tick, 500 * MIN).is_empty());
    assert!(e.apply(Command::Acknowledge, 501 * MIN).is_empty());
}

#[test]
fn a_step_for_higher_priorities_is_skipped_without_waiting() {
    let mut crisis = step("crisis-cell", 10);
    crisis.max_priority = Some(1);
    let steps = vec![step("l1", 10), crisis, step("l2", 10)];
    let mut p3 = Escalation::start(policy(steps.clone(), 0, None), 3, 0);
    p3.apply(Command::Tick, 0);
    let effects = p3.apply(Command::Tick, 10 * MIN);
    assert_eq!(effects[0], Effect::Skipped { step: 1, round: 0 });
    assert_eq!(paged(&effects), ["[Team(\"l2\")]"]);
    let mut p1 = Escalation::start(policy(steps, 0, None), 3, 0);
    p1.apply(Command::SetPriority(1), 0);
    p1.apply(Command::Tick, 0);
    assert_eq!(
        paged(&p1.apply(Command::Tick, 10 * MIN)),
        ["[Team(\"crisis-cell\")]"]
    );
}

#[test]
fn an_empty_policy_is_exhausted_from_the_start() {
    let mut e = Escalation::start(policy(vec![], 3, None), 1, 0);
    assert_eq!(e.phase, Phase::Exhausted);
    assert!(e.apply(Command::Tick, MIN).is_empty());
}

#[test]
fn on_call_follows_rotations_layers_and_overrides() {
    const DAY: i64 = 24 * 60 * MIN;
    let schedule = Schedule {
        id: "systems".into(),
        rotations: vec![
            Rotation {
                members: vec!["alice".into(), "bob".into(), "carol".into()],
                start_ms: 0,
                shift_ms: 7 * DAY,
            },
            // a second layer, from day 5 on: it wins over the first
            Rotation {
                members: vec!["dan".into()],
                start_ms: 5 * DAY,
                shift_ms: 2 * DAY,
            },
        ],
        overrides: vec![Override {
            person: "erin".into(),
            start_ms: 8 * DAY,
            end_ms: 9 * DAY,
        }],
    };
    assert_eq!(schedule.on_call(DAY), Some("alice"));
    assert_eq!(schedule.on_call(5 * DAY + 1), Some("dan"));
    assert_eq!(schedule.on_call(8 * DAY + 1), Some("erin"));
    let one_layer = Schedule {
        rotations: vec![schedule.rotations[0].clone()],
        overrides: vec![],
        ..schedule.clone()
    };
    assert_eq!(one_layer.on_call(8 * DAY), Some("bob"));
    assert_eq!(one_layer.on_call(22 * DAY), Some("alice"));
    assert_eq!(one_layer.on_call(-1), None);
}

#[test]
fn a_business_hours_step_is_skipped_at_night_and_an_outside_hours_step_by_day() {
    const HOUR: i64 = 60 * MIN;
    let mut by_day = step("client-desk", 10);
    by_day.during = Some(Hours::BusinessHours);
    let mut at_night = step("on-call", 10);
    at_night.during = Some(Hours::OutsideBusinessHours);
    let steps = vec![step("l1", 10), by_day, at_night, step("l2", 10)];
    // business hours: 08:00 to 18:00 of every day, counted from 0
    let office = |ms: i64| (8 * HOUR..18 * HOUR).contains(&ms.rem_euclid(24 * HOUR));

    let mut day = Escalation::start(policy(steps.clone(), 0, None), 2, 9 * HOUR);
    let mut effects = day.apply_with(Command::Tick, 9 * HOUR, &office);
    effects.extend(day.apply_with(Command::Tick, 9 * HOUR + 10 * MIN, &office));
    assert_eq!(
        paged(&effects),
        ["[Team(\"l1\")]", "[Team(\"client-desk\")]"]
    );
    let effects = day.apply_with(Command::Tick, 9 * HOUR + 20 * MIN, &office);
    assert_eq!(effects[0], Effect::Skipped { step: 2, round: 0 });
    assert_eq!(
        paged(&effects),
        ["[Team(\"l2\")]"],
        "skipped without waiting"
    );

    let mut night = Escalation::start(policy(steps.clone(), 0, None), 2, 22 * HOUR);
    night.apply_with(Command::Tick, 22 * HOUR, &office);
    let effects = night.apply_with(Command::Tick, 22 * HOUR + 10 * MIN, &office);
    assert_eq!(effects[0], Effect::Skipped { step: 1, round: 0 });
    assert_eq!(paged(&effects), ["[Team(\"on-call\")]"]);

    // the condition is read when the step comes due, not when the escalation started
    let mut evening = Escalation::start(policy(steps.clone(), 0, None), 2, 17 * HOUR + 55 * MIN);
    evening.apply_with(Command::Tick, 17 * HOUR + 55 * MIN, &office);
    let effects = evening.apply_with(Command::Tick, 18 * HOUR + 5 * MIN, &office);
    assert_eq!(effects[0], Effect::Skipped { step: 1, round: 0 });
    assert_eq!(paged(&effects), ["[Team(\"on-call\")]"]);

    // `apply` is always within business hours
    let mut plain = Escalation::start(policy(steps, 0, None), 2, 0);
    plain.apply(Command::Tick, 0);
    assert_eq!(
        paged(&plain.apply(Command::Tick, 10 * MIN)),
        ["[Team(\"client-desk\")]"]
    );
}

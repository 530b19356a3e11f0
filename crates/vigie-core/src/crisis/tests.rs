use super::*;

const MIN: i64 = 60_000;

fn incident(client: &str, id: i64, priority: u8, level: u8) -> IncidentFacts {
    IncidentFacts {
        client: client.into(),
        id,
        priority,
        open: true,
        opened_ms: 0,
        level,
        categories: vec![],
        rules: vec![],
        max_criticality: Some(3),
    }
}

fn trigger(id: &str, condition: TriggerCondition) -> CrisisTrigger {
    CrisisTrigger {
        id: id.into(),
        name: id.into(),
        condition,
    }
}

#[test]
fn a_p1_unresolved_at_level_2_fires_after_the_delay_and_once() {
    let triggers = [trigger(
        "p1-l2-10m",
        TriggerCondition::Unresolved {
            max_priority: 1,
            min_level: 2,
            for_ms: 10 * MIN,
        },
    )];
    let incidents = [
        incident("acme", 1, 1, 2),
        incident("acme", 2, 2, 2),
        incident("acme", 3, 1, 1),
    ];
    let mut state = TriggerState::default();
    assert!(evaluate(&triggers, &incidents, &mut state, 9 * MIN).is_empty());
    let fired = evaluate(&triggers, &incidents, &mut state, 10 * MIN);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].incidents, [1]);
    assert_eq!(fired[0].client, "acme");
    assert!(
        fired[0].reason.contains("unresolved for 10 min"),
        "{}",
        fired[0].reason
    );
    assert!(evaluate(&triggers, &incidents, &mut state, 11 * MIN).is_empty());
    let mut resolved = incidents.clone();
    resolved[0].open = false;
    assert!(evaluate(&triggers, &resolved, &mut TriggerState::default(), 20 * MIN).is_empty());
}

#[test]
fn ransomware_fires_only_on_a_critical_enough_asset() {
    let triggers = [trigger(
        "ransomware-crit4",
        TriggerCondition::Category {
            category: "ransomware".into(),
            min_criticality: 4,
        },
    )];
    let mut on_a_laptop = incident("acme", 1, 2, 1);
    on_a_laptop.categories = vec!["Ransomware".into()];
    on_a_laptop.max_criticality = Some(2);
    let mut on_the_erp = on_a_laptop.clone();
    on_the_erp.id = 2;
    on_the_erp.max_criticality = Some(5);
    let mut state = TriggerState::default();
    let fired = evaluate(&triggers, &[on_a_laptop, on_the_erp], &mut state, 0);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].incidents, [2]);
}

#[test]
fn the_same_attack_on_two_clients_opens_a_crisis_for_each_without_naming_the_other() {
    let triggers = [trigger(
        "same-attack",
        TriggerCondition::SameAttack {
            min_clients: 2,
            within_ms: 60 * MIN,
        },
    )];
    let mut acme = incident("acme", 1, 2, 1);
    acme.rules = vec![("vigie-ransomware-shadow-copy".into(), 50 * MIN)];
    let mut clinic = incident("bellevue-clinic", 7, 3, 1);
    clinic.rules = vec![("vigie-ransomware-shadow-copy".into(), 55 * MIN)];
    let mut alone = incident("acme", 2, 3, 1);
    alone.rules = vec![("other-rule".into(), 55 * MIN)];
    let mut state = TriggerState::default();
    let fired = evaluate(
        &triggers,
        &[acme.clone(), clinic.clone(), alone],
        &mut state,
        60 * MIN,
    );
    let clients: Vec<&str> = fired.iter().map(|f| f.client.as_str()).collect();
    assert_eq!(clients, ["acme", "bellevue-clinic"]);
    for f in &fired {
        assert!(f.reason.contains("2 clients"), "{}", f.reason);
        let other = if f.client == "acme" {
            "bellevue"
        } else {
            "acme"
        };
        assert!(
            !f.reason.contains(other),
            "a client's crisis names another: {}",
            f.reason
        );
    }
    assert!(
        evaluate(
            &triggers,
            &[acme.clone(), clinic.clone()],
            &mut state,
            61 * MIN
        )
        .is_empty()
    );
    // too far apart: no crisis
    let mut old = acme;
    old.rules[0].1 = 0;
    assert!(
        evaluate(
            &triggers,
            &[old, clinic],
            &mut TriggerState::default(),
            70 * MIN
        )
        .is_empty()
    );
}

#[test]
fn the_state_survives_serialisation() {
    let triggers = [trigger(
        "p2",
        TriggerCondition::Unresolved {
            max_priority: 2,
            min_level: 0,
            for_ms: 0,
        },
    )];
    let incidents = [incident("acme", 1, 2, 1)];
    let mut state = TriggerState::default();
    assert_eq!(evaluate(&triggers, &incidents, &mut state, 0).len(), 1);
    let mut restored: TriggerState =
        serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    assert!(evaluate(&triggers, &incidents, &mut restored, MIN).is_empty());
}

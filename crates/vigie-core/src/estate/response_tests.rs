//! The response settings as their users see them: the example estate compiled into
//! escalation policies, schedules, business services, crisis triggers, priority rules and
//! silences; routing order; and what a broken setting reports, with file, line and field.

use std::collections::BTreeMap;

use super::*;
use crate::crisis::TriggerCondition;
use crate::escalation::{Hours, Target};
use crate::incident::model::{Level, Priority};
use crate::service::{
    self, DowntimePolicy, Indicator, IndicatorState, Method, Propagation, Status,
};

const ACME: &str = include_str!("../../../../examples/estate/acme-industrie.yaml");
const BELLEVUE: &str = include_str!("../../../../examples/estate/bellevue-clinic.yaml");

/// Lines 1–6 of every broken document below; what a test adds starts on line 7.
const BASE: &str = "\
id: acme
name: ACME
contacts:
  - { id: thomas, name: Thomas, email: thomas@msp.example }
teams:
  - { id: l2-systems, name: L2 systems, members: [thomas] }
";

fn example() -> Estate {
    let files = [
        ("examples/estate/acme-industrie.yaml", ACME),
        ("examples/estate/bellevue-clinic.yaml", BELLEVUE),
    ]
    .map(|(path, text)| EstateFile {
        path: path.to_string(),
        text: text.to_string(),
    });
    match load_estate(&files) {
        Ok(estate) => estate,
        Err(diagnostics) => panic!("example estate is invalid: {diagnostics:#?}"),
    }
}

fn acme() -> Client {
    example()
        .client("acme-industrie")
        .expect("acme is defined")
        .clone()
}

/// Loads `BASE` followed by `rest` as `acme.yaml`: the client, or the diagnostics shown.
fn load(rest: &str) -> Result<Client, Vec<String>> {
    let file = EstateFile {
        path: "acme.yaml".to_string(),
        text: format!("{BASE}{rest}"),
    };
    match load_estate(&[file]) {
        Ok(estate) => Ok(estate.client("acme").expect("acme loads").clone()),
        Err(diagnostics) => Err(diagnostics.iter().map(ToString::to_string).collect()),
    }
}

fn check_errors(rest: &str, expect: &[&str]) {
    assert_eq!(load(rest).expect_err("estate should be refused"), expect);
}

fn ms(rfc3339: &str) -> i64 {
    rfc3339
        .parse::<jiff::Timestamp>()
        .expect("test time parses")
        .as_millisecond()
}

const MIN: i64 = 60_000;

#[test]
fn the_example_policies_compile_to_escalation_policies() {
    let acme = acme();
    let systems = acme
        .escalation_policy("systems")
        .expect("systems policy")
        .compile();
    assert_eq!(systems.id, "systems");
    assert_eq!(systems.repeat, 1);
    assert_eq!(systems.reescalate_after_ms, Some(60 * MIN));
    let targets: Vec<&[Target]> = systems.steps.iter().map(|s| &s.targets[..]).collect();
    assert_eq!(
        targets,
        [
            &[Target::Team("l1-supervision".into())][..],
            &[
                Target::Team("l2-systems".into()),
                Target::Schedule("l2-systems-oncall".into())
            ],
            &[Target::ClientContact(Some("jean-dupuis".into()))],
        ]
    );
    let waits: Vec<i64> = systems.steps.iter().map(|s| s.wait_ms).collect();
    assert_eq!(waits, [5 * MIN, 15 * MIN, 30 * MIN]);

    let security = acme.escalation_policy("security").unwrap().compile();
    assert_eq!(security.steps[1].targets, [Target::ClientContact(None)]);
    assert_eq!(security.steps[1].max_priority, Some(2));
    let network = acme.escalation_policy("network").unwrap().compile();
    assert_eq!(network.steps[2].during, Some(Hours::BusinessHours));
    // `client_contacts: all` is the client's own people: the contacts in no team
    let own: Vec<&str> = acme
        .client_contacts()
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(own, ["jean-dupuis", "claire-fontaine"]);
}

#[test]
fn teams_contacts_and_channels_carry_what_notification_needs() {
    let acme = acme();
    let l1 = acme.team("l1-supervision").unwrap();
    assert_eq!(
        (l1.level, l1.email.as_deref(), &l1.channels[..]),
        (
            1,
            Some("supervision@msp.example"),
            &["ops-chat".to_string()][..]
        )
    );
    assert_eq!(acme.team("l2-systems").unwrap().level, DEFAULT_TEAM_LEVEL);
    assert_eq!(acme.language(), "fr");
    assert_eq!(acme.contact("hugo-bernard").unwrap().language(), "fr");
    assert_eq!(acme.contact("thomas-petit").unwrap().language(), "en");

    let beacon = acme.channel("crisis-beacon").unwrap();
    assert_eq!(beacon.kind, ChannelKind::Beacon);
    let (url, on) = beacon.beacon_on().unwrap();
    assert_eq!(url, "http://127.0.0.1:9095/beacon");
    assert_eq!(
        (on.method.as_str(), on.body.as_deref()),
        ("POST", Some(r#"{"state":"on"}"#))
    );
    assert_eq!(
        acme.channel("ops-webhook").unwrap().kind,
        ChannelKind::Alertmanager
    );
    assert_eq!(acme.crisis.beacon, ["crisis-beacon"]);
    assert_eq!(acme.crisis.notify, [TargetSpec::Team("l2-security".into())]);
}

#[test]
fn a_schedule_compiles_local_times_in_its_zone() {
    let acme = acme();
    let schedule = acme
        .schedule("l2-systems-oncall")
        .unwrap()
        .compile()
        .unwrap();
    // 08:00 in Paris in November is 07:00 UTC
    assert_eq!(schedule.rotations[0].start_ms, ms("2026-11-02T07:00:00Z"));
    assert_eq!(schedule.rotations[0].shift_ms, 7 * 24 * 60 * MIN);
    assert_eq!(
        schedule.on_call(ms("2026-11-02T07:00:00Z")),
        Some("thomas-petit")
    );
    assert_eq!(
        schedule.on_call(ms("2026-11-09T07:30:00Z")),
        Some("sophie-leroy")
    );
    assert_eq!(
        schedule.on_call(ms("2026-11-16T07:30:00Z")),
        Some("thomas-petit")
    );
    // the override: Sophie, on Thomas's week
    assert_eq!(
        schedule.on_call(ms("2026-11-21T07:00:00Z")),
        Some("sophie-leroy")
    );
    assert_eq!(
        schedule.on_call(ms("2026-11-22T07:00:00Z")),
        Some("thomas-petit")
    );
    assert_eq!(schedule.on_call(ms("2026-11-01T12:00:00Z")), None);

    // Summer time: 08:00 in Paris is 06:00 UTC. Shifts are fixed lengths, so after the
    // change of 25 October the handover is at 07:00 local (documented).
    let summer = ScheduleSpec {
        rotations: vec![RotationSpec {
            start: "2026-10-19T08:00".into(),
            ..acme.schedules[0].rotations[0].clone()
        }],
        overrides: vec![],
        ..acme.schedules[0].clone()
    }
    .compile()
    .unwrap();
    assert_eq!(summer.rotations[0].start_ms, ms("2026-10-19T06:00:00Z"));
    assert_eq!(
        summer.on_call(ms("2026-10-26T06:30:00Z")),
        Some("sophie-leroy")
    );
}

#[test]
fn business_hours_follow_local_time_across_a_dst_change() {
    let hours = acme().business_hours.expect("acme has business hours");
    // Friday 27 March 2026, winter time (UTC+1)
    assert!(!hours.contains(ms("2026-03-27T06:30:00Z")), "07:30 local");
    assert!(hours.contains(ms("2026-03-27T07:30:00Z")), "08:30 local");
    assert!(hours.contains(ms("2026-03-27T16:59:00Z")), "17:59 local");
    assert!(!hours.contains(ms("2026-03-27T17:00:00Z")), "18:00 local");
    // Saturday and Sunday (the change, 29 March)
    assert!(!hours.contains(ms("2026-03-28T10:00:00Z")));
    assert!(!hours.contains(ms("2026-03-29T10:00:00Z")));
    // Monday 30 March 2026, summer time (UTC+2): the same local hours, other UTC hours
    assert!(hours.contains(ms("2026-03-30T06:30:00Z")), "08:30 local");
    assert!(!hours.contains(ms("2026-03-30T05:30:00Z")), "07:30 local");
    assert!(!hours.contains(ms("2026-03-30T16:30:00Z")), "18:30 local");
    assert!(hours.contains(ms("2026-03-30T15:30:00Z")), "17:30 local");
    // what an escalation step `during: business_hours` reads
    let acme = acme();
    assert!(acme.in_business_hours(ms("2026-03-30T06:30:00Z")));
    let bellevue = example().client("bellevue-clinic").unwrap().clone();
    assert!(
        bellevue.in_business_hours(ms("2026-03-29T03:00:00Z")),
        "no hours: always"
    );
}

#[test]
fn the_first_matching_route_wins_and_the_empty_match_is_the_default() {
    let acme = acme();
    let route = |categories: &[&str], asset: &str, priority: u8| -> (String, String) {
        let categories: Vec<String> = categories.iter().map(|c| c.to_string()).collect();
        let asset = acme.asset(asset).expect("asset exists");
        let facts = RouteFacts {
            categories: &categories,
            asset_tags: asset.tags.iter().map(String::as_str).collect(),
            asset_kinds: vec![asset.kind],
            sources: &[],
            priority,
        };
        let chosen = acme.route(&facts).expect("the default route matches");
        (chosen.team.clone(), chosen.policy.clone())
    };
    let pair = |team: &str, policy: &str| (team.to_string(), policy.to_string());
    // ransomware on the firewall: security, before network (first match wins)
    assert_eq!(
        route(&["Ransomware"], "lyo-fw01", 1),
        pair("l2-security", "security")
    );
    assert_eq!(route(&[], "lyo-fw01", 3), pair("l2-network", "network"));
    assert_eq!(
        route(&[], "lyo-erp-db01", 2),
        pair("l1-supervision", "systems")
    );

    let by_priority = RouteMatch {
        sources: vec!["sigma".into()],
        min_priority: Some(2),
        ..RouteMatch::default()
    };
    let sources = ["sigma".to_string()];
    let facts = |priority| RouteFacts {
        categories: &[],
        asset_tags: vec![],
        asset_kinds: vec![],
        sources: &sources,
        priority,
    };
    assert!(by_priority.matches(&facts(1)));
    assert!(by_priority.matches(&facts(2)));
    assert!(!by_priority.matches(&facts(3)));
    let none = Client {
        routing: vec![],
        ..acme.clone()
    };
    assert_eq!(none.route(&facts(1)), None);
}

#[test]
fn business_services_come_from_application_and_business_service_assets() {
    let acme = acme();
    let defs = acme.business_services();
    let ids: Vec<&str> = defs.iter().map(|d| d.service.id.as_str()).collect();
    assert_eq!(ids, ["erp", "production-line-2", "payroll"]);
    let erp = &defs[0];
    assert_eq!((erp.kind, erp.criticality), (AssetKind::Application, 4));
    assert_eq!(erp.service.method, Method::Worst);
    assert_eq!(erp.service.downtime, DowntimePolicy::Ignore);
    let indicators = |i: usize| -> Vec<Indicator> {
        defs[i]
            .service
            .indicators
            .iter()
            .map(|w| w.indicator.clone())
            .collect()
    };
    assert_eq!(
        indicators(0),
        [
            Indicator::Asset("lyo-erp-app01".into()),
            Indicator::Asset("lyo-erp-db01".into()),
            Indicator::Asset("lyo-dc02".into()),
        ]
    );
    assert_eq!(
        indicators(2),
        [
            Indicator::Asset("par-pay01".into()),
            Indicator::Service("erp".into())
        ]
    );
    let line = &defs[1].service;
    assert_eq!(line.name, "Production line 2");
    assert_eq!(line.downtime, DowntimePolicy::Inherit);
    assert_eq!(
        line.indicators[1].indicator,
        Indicator::Check {
            asset: "lyo-mes01".into(),
            check: "mes".into()
        }
    );
    assert_eq!(
        line.indicators[3].propagation,
        Propagation::Fixed(Status::Warning)
    );

    // the demo: the MES stops, production line 2 goes CRITICAL; the ERP failing alone only
    // makes it WARNING
    let services: Vec<_> = defs.iter().map(|d| d.service.clone()).collect();
    let state = |down: &'static str| {
        move |indicator: &Indicator| {
            let failing = match indicator {
                Indicator::Check { check, .. } => check == down,
                Indicator::Asset(asset) => asset == down,
                Indicator::Service(_) => false,
            };
            Some(IndicatorState {
                status: if failing {
                    Status::Critical
                } else {
                    Status::Ok
                },
                in_downtime: false,
            })
        }
    };
    let health = service::evaluate(&services, state("mes")).unwrap();
    assert_eq!(health["production-line-2"].status, Status::Critical);
    assert_eq!(health["erp"].status, Status::Ok);
    let health = service::evaluate(&services, state("lyo-erp-db01")).unwrap();
    assert_eq!(health["erp"].status, Status::Critical);
    assert_eq!(health["production-line-2"].status, Status::Warning);
    assert_eq!(health["payroll"].status, Status::Critical);
}

#[test]
fn ratio_and_impact_methods_read_as_written() {
    let client = load(
        "\
assets:
  - { id: srv1, kind: host }
  - { id: srv2, kind: host }
  - id: web
    kind: application
    service:
      method: { ratio: { warning: 1, critical: \"50%\" } }
  - id: shop
    kind: business_service
    service:
      method: { impact: { warning: 80, critical: 50 } }
      indicators:
        - { asset: srv1, impact: { critical: 60 } }
        - { service: web, propagation: { fixed: WARNING }, impact: { warning: 30 } }
dependencies:
  - { from: web, to: srv1 }
  - { from: web, to: srv2 }
",
    )
    .expect("loads");
    let defs = client.business_services();
    assert_eq!(
        defs[0].service.method,
        Method::Ratio {
            warning: service::RatioThreshold::Count(1),
            critical: service::RatioThreshold::Percent(50.0)
        }
    );
    assert_eq!(
        defs[1].service.method,
        Method::Impact {
            warning: 80.0,
            critical: 50.0
        }
    );
    assert_eq!(defs[1].service.indicators[0].impact.critical, 60.0);
    assert_eq!(
        defs[1].service.indicators[1].propagation,
        Propagation::Fixed(Status::Warning)
    );
    // written back, the ratio keeps its spelling
    let json = serde_json::to_value(&client.assets[2].service).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"method": {"ratio": {"warning": 1, "critical": "50%"}}})
    );
}

#[test]
fn crisis_triggers_priority_and_silences_compile() {
    let acme = acme();
    let triggers = acme.crisis_triggers();
    let conditions: Vec<&TriggerCondition> = triggers.iter().map(|t| &t.condition).collect();
    assert_eq!(
        conditions,
        [
            &TriggerCondition::Unresolved {
                max_priority: 1,
                min_level: 2,
                for_ms: 10 * MIN
            },
            &TriggerCondition::Category {
                category: "ransomware".into(),
                min_criticality: 4
            },
            &TriggerCondition::SameAttack {
                min_clients: 2,
                within_ms: 60 * MIN
            },
        ]
    );
    assert_eq!(triggers[1].name, "Ransomware on a critical asset");

    let policy = acme.priority_policy();
    assert_eq!(policy.priority(Level::High, Level::High), Priority::P1);
    assert_eq!(policy.priority(Level::Low, Level::Medium), Priority::P4);
    assert_eq!(policy.impact_floor(Some("gold")), Some(Level::Medium));
    assert_eq!(policy.impact_floor(Some("silver")), None);
    assert_eq!(policy.impact_floor(None), None);
    assert_eq!(
        (policy.spread_assets, policy.spread_window_ms),
        (3, 15 * MIN)
    );
    let bellevue = example().client("bellevue-clinic").unwrap().clone();
    assert_eq!(bellevue.priority_policy(), PriorityPolicy::default());
    assert_eq!(policy.matrix, PriorityPolicy::default().matrix);
    assert!(policy.is_urgent_category("Lateral_Movement"));

    let silences = acme.silences();
    assert_eq!(silences.len(), 1);
    assert_eq!(silences[0].id, "config:acme-industrie:0");
    assert_eq!(silences[0].starts_at_ms, ms("2026-11-28T07:00:00Z"));
    let labels = BTreeMap::from([("asset".to_string(), "par-print01".to_string())]);
    assert!(silences[0].mutes(&labels, ms("2026-11-28T12:00:00Z")));
    let rules = acme.inhibit_rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].equal, ["site"]);
}

#[test]
fn a_client_round_trips_through_json_and_an_old_one_gains_no_field() {
    let acme = acme();
    let json = serde_json::to_value(&acme).unwrap();
    let back: Client = serde_json::from_value(json).unwrap();
    assert_eq!(back, acme);

    let old = load("").expect("the base loads");
    let json = serde_json::to_value(&old).unwrap();
    // Sorted here: serde_json keeps insertion order when a crate of the build asks for it.
    let mut keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "assets",
            "contacts",
            "contract",
            "dependencies",
            "id",
            "incident_grouping",
            "name",
            "reopen_window",
            "sites",
            "teams"
        ]
    );
    assert_eq!(
        json["teams"][0],
        serde_json::json!({"id": "l2-systems", "name": "L2 systems", "members": ["thomas"]})
    );
}

#[test]
fn a_policy_naming_an_unknown_team_is_refused_with_file_line_and_field() {
    check_errors(
        "\
escalation_policies:
  - id: systems
    steps:
      - notify: [{ team: l2-systems }]
        wait: 5m
      - notify: [{ person: thomas }, { team: l2-sytems }]
        wait: 15m
      - notify: []
        wait: 15m
        during: business_hours
  - id: empty
    steps: []
",
        &[
            "acme.yaml:12: field `escalation_policies[0].steps[1].notify[1].team`: unknown team \
             `l2-sytems`",
            "acme.yaml:14: field `escalation_policies[0].steps[2].notify`: a step needs at least \
             one target",
            "acme.yaml:16: field `escalation_policies[0].steps[2].during`: the client has no \
             `business_hours` to compare with",
            "acme.yaml:18: field `escalation_policies[1].steps`: a policy needs at least one step",
        ],
    );
}

#[test]
fn a_cycle_in_business_services_is_refused_with_file_line_and_field() {
    check_errors(
        "\
assets:
  - { id: a, kind: business_service }
  - id: b
    kind: business_service
    service:
      indicators:
        - { service: a }
dependencies:
  - { from: a, to: b }
",
        &[
            "acme.yaml:13: field `assets[1].service.indicators[0].service`: business service \
           `a`: cycle: a → b → a",
        ],
    );
}

#[test]
fn business_service_indicators_must_name_what_the_client_has() {
    check_errors(
        "\
assets:
  - id: srv
    kind: host
    checks:
      - { name: web, kind: tcp, port: 80 }
    service: { method: best }
  - id: app
    kind: application
    service:
      method: { impact: { warning: 50, critical: 80 } }
      indicators:
        - { check: { asset: srv, check: web } }
        - { check: { asset: srv, check: db } }
        - { service: srv }
        - { asset: nowhere }
        - { asset: srv, service: app }
",
        &[
            "acme.yaml:12: field `assets[0].service`: only `application` and \
             `business_service` assets are business services",
            "acme.yaml:16: field `assets[1].service.method.impact.critical`: must be at or \
             below `warning` (50): the service is CRITICAL when its health falls to this",
            "acme.yaml:19: field `assets[1].service.indicators[1].check.check`: asset `srv` has \
             no check `db`",
            "acme.yaml:20: field `assets[1].service.indicators[2].service`: asset `srv` is not \
             an application or business service: name it with `asset:`",
            "acme.yaml:21: field `assets[1].service.indicators[3].asset`: unknown asset \
             `nowhere`",
            "acme.yaml:22: field `assets[1].service.indicators[4]`: name exactly one of \
             `asset`, `service` or `check`",
        ],
    );
}

#[test]
fn a_bad_time_zone_or_local_time_is_refused() {
    check_errors(
        "\
schedules:
  - id: oncall
    timezone: Europe/Pariss
    rotations:
      - { members: [thomas], start: \"2026-11-02T08:00\", shift: 1w }
  - id: other
    timezone: Europe/Paris
    rotations:
      - { members: [thomas, nobody], start: \"2026-11-02T08:00+01:00\", shift: 1w }
    overrides:
      - { person: thomas, start: \"2026-11-28T08:00\", end: \"2026-11-28T08:00\" }
business_hours:
  timezone: Mars/Olympus
  from: \"18:00\"
  to: \"08:00\"
",
        &[
            "acme.yaml:9: field `schedules[0].timezone`: unknown time zone `Europe/Pariss`: use \
             an IANA name such as `Europe/Paris`",
            "acme.yaml:15: field `schedules[1].rotations[0].members[1]`: unknown contact \
             `nobody`",
            "acme.yaml:15: field `schedules[1].rotations[0].start`: `2026-11-02T08:00+01:00`: \
             write the local time without an offset, the time zone gives it",
            "acme.yaml:17: field `schedules[1].overrides[0].end`: must be after `start`",
            "acme.yaml:19: field `business_hours.timezone`: unknown time zone `Mars/Olympus`: \
             use an IANA name such as `Europe/Paris`",
            "acme.yaml:21: field `business_hours.to`: must be after `from` (18:00): business \
             hours do not span midnight, write the night as `during: outside_business_hours`",
        ],
    );
    let bad_time = load("business_hours: { timezone: UTC, from: \"8h\", to: \"18:00\" }\n")
        .expect_err("refused");
    assert_eq!(bad_time.len(), 1);
    assert!(bad_time[0].starts_with("acme.yaml:7: "), "{bad_time:?}");
    assert!(bad_time[0].contains("is not a time of day"), "{bad_time:?}");
}

#[test]
fn a_matrix_that_is_not_monotonic_is_refused() {
    check_errors(
        "\
priority:
  matrix:
    high: [P1, P2, P3]
    medium: [P2, P3, P4]
    low: [P1, P4, P5]
",
        &[
            "acme.yaml:11: field `priority.matrix.low[0]`: not monotonic: impact low with \
           urgency high is P1, more urgent than P2 for impact medium; raising impact must never \
           lower the priority",
        ],
    );
    check_errors(
        "\
priority:
  matrix:
    high: [P1, P3, P2]
    medium: [P2, P3]
    low: [P3, P4, P5]
",
        &[
            "acme.yaml:10: field `priority.matrix.medium`: must give 3 priorities, for urgency \
           high, medium and low; found 2",
        ],
    );
    check_errors(
        "\
priority:
  matrix:
    high: [P1, P3, P2]
    medium: [P2, P3, P4]
    low: [P3, P4, P5]
",
        &[
            "acme.yaml:9: field `priority.matrix.high[2]`: not monotonic: urgency low is P2, \
           more urgent than P3 for urgency medium (impact high); raising urgency must never \
           lower the priority",
        ],
    );
}

#[test]
fn a_bad_matcher_or_silence_is_refused() {
    let errors = load(
        "\
silences:
  - matchers: ['asset=\"x\"', 'rule=~\"(\"']
    starts_at: \"2026-11-28T00:00:00Z\"
    ends_at: \"2026-11-28T01:00:00Z\"
    created_by: ops
    comment: test
  - matchers: ['asset=~\".*\"']
    starts_at: \"2026-11-28T00:00:00Z\"
    ends_at: \"yesterday\"
    created_by: ops
    comment: test
  - matchers: ['asset=x']
    starts_at: \"2026-11-28T00:00:00Z\"
    ends_at: \"2026-11-28T01:00:00Z\"
    created_by: ops
    comment: \" \"
inhibit_rules:
  - source_matchers: ['rule']
    target_matchers: []
",
    )
    .expect_err("refused");
    let located: Vec<&str> = errors
        .iter()
        .map(|e| e.split(": ").take(2).last().unwrap_or(""))
        .collect();
    assert_eq!(
        located,
        [
            "field `silences[0].matchers[1]`",
            "field `silences[1].ends_at`",
            "field `silences[2].comment`",
            "field `inhibit_rules[0].source_matchers[0]`",
            "field `inhibit_rules[0].target_matchers`",
        ],
        "{errors:#?}"
    );
    assert!(errors[0].starts_with("acme.yaml:8: "), "{errors:?}");
    assert!(errors[0].contains("bad regex"), "{errors:?}");
    assert!(errors[2].ends_with("comment is required"), "{errors:?}");
}

#[test]
fn a_channel_s_rate_limit_reads_as_count_per_duration_or_off() {
    let read = |text: &str| RateLimit::parse(text);
    assert_eq!(read("off"), Ok(RateLimit::Off));
    assert_eq!(
        read("10/5m"),
        Ok(RateLimit::Every {
            messages: 10,
            window_ms: 300_000
        })
    );
    assert_eq!(read("10/5m").unwrap().to_string(), "10/5m");
    for (bad, why) in [
        ("5", "no `/`"),
        ("0/1m", "0 messages"),
        ("many/1m", "`many` is not a count"),
        ("5/soon", "invalid duration `soon`"),
    ] {
        let error = read(bad).unwrap_err();
        assert!(error.contains(why), "{bad}: {error}");
    }
    let example = example();
    let acme = &example.clients["acme-industrie"];
    let limits: Vec<Option<RateLimit>> = acme.channels.iter().map(|c| c.rate_limit).collect();
    assert_eq!(limits[..2], [Some(RateLimit::Off), read("10/5m").ok()]);
    // A bare `off` reads as the word, not as YAML 1.1's false.
    let bare = load(
        "channels:\n  - { id: m, kind: webhook, url: \"http://m.example\", rate_limit: off }\n",
    );
    assert_eq!(
        bare.map(|c| c.channels[0].rate_limit),
        Ok(Some(RateLimit::Off))
    );
    check_errors(
        "\
channels:
  - { id: chat, kind: slack, url: \"http://127.0.0.1:9095\", rate_limit: 5 per minute }
",
        &[
            "acme.yaml:8: field `channels[0].rate_limit`: invalid rate limit `5 per minute`: no \
           `/`; expected `N/duration` (e.g. `5/1m`) or `off`",
        ],
    );
}

#[test]
fn channels_routes_and_crisis_settings_are_checked() {
    check_errors(
        "\
channels:
  - { id: chat, kind: slack }
  - { id: mail, kind: email, to: [nobody], headers: { X-Token: a } }
  - { id: hook, kind: webhook, url: \"ftp://example\", on: { method: POST } }
  - { id: light, kind: beacon, url: \"http://127.0.0.1:9095\", on: { method: PATCH } }
escalation_policies:
  - id: p
    steps:
      - { notify: [{ schedule: nobody }], wait: 5m }
routing:
  - { team: l2-systems, policy: p }
  - { match: { tags: [x] }, team: l3, policy: q }
crisis:
  beacon: [hook]
",
        &[
            "acme.yaml:8: field `channels[0].url`: a `slack` channel needs a `url`",
            "acme.yaml:9: field `channels[1].to[0]`: `nobody` is not an email address",
            "acme.yaml:9: field `channels[1].headers`: only HTTP channels take `headers`",
            "acme.yaml:10: field `channels[2].url`: `ftp://example` is not an http:// or \
             https:// URL",
            "acme.yaml:10: field `channels[2].on`: only `beacon` channels take `on`, not \
             `webhook`",
            "acme.yaml:11: field `channels[3].on.method`: `PATCH` is not one of POST, PUT, GET",
            "acme.yaml:15: field `escalation_policies[0].steps[0].notify[0].schedule`: unknown \
             schedule `nobody`",
            "acme.yaml:18: field `routing[1].team`: unknown team `l3`",
            "acme.yaml:18: field `routing[1].policy`: unknown escalation policy `q`",
            "acme.yaml:18: field `routing[1]`: never used: route 0 has an empty `match`, which \
             takes every incident; put the default route last",
            "acme.yaml:20: field `crisis.beacon[0]`: channel `hook` is of kind `webhook`, not \
             `beacon`",
        ],
    );
}

#[test]
fn a_recurring_downtime_gives_the_occurrence_under_way_in_its_zone() {
    let client = load(
        "\
assets:
  - { id: web, kind: host, tags: [linux] }
  - { id: dc, kind: host, tags: [windows] }
recurring_downtimes:
  - name: sunday-patching
    match: { tags: [linux] }
    checks: [http]
    window: { timezone: Europe/Paris, days: [sun], from: \"02:00\", to: \"04:00\" }
    comment: weekly patching
  - name: all-day
    window: { timezone: UTC, days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", to: \"24:00\" }
",
    )
    .expect("loads");
    let [patching, all_day] = &client.recurring_downtimes[..] else {
        panic!("two recurring downtimes")
    };
    // Sunday 2026-11-29, 02:30 in Paris (UTC+1): the occurrence is 01:00 to 03:00 UTC.
    assert_eq!(
        patching.window.occurrence(ms("2026-11-29T01:30:00Z")),
        Some((ms("2026-11-29T01:00:00Z"), ms("2026-11-29T03:00:00Z")))
    );
    assert_eq!(patching.window.occurrence(ms("2026-11-29T03:00:00Z")), None);
    assert_eq!(patching.window.occurrence(ms("2026-11-28T01:30:00Z")), None);
    // Summer time: 02:30 in Paris is 00:30 UTC.
    assert_eq!(
        patching.window.occurrence(ms("2026-06-28T00:30:00Z")),
        Some((ms("2026-06-28T00:00:00Z"), ms("2026-06-28T02:00:00Z")))
    );
    assert_eq!(
        all_day.window.occurrence(ms("2026-11-29T13:00:00Z")),
        Some((ms("2026-11-29T00:00:00Z"), ms("2026-11-30T00:00:00Z"))),
        "24:00 is the next midnight"
    );
    let web = client.asset("web").unwrap();
    let dc = client.asset("dc").unwrap();
    assert!(patching.covers(web, "http"));
    assert!(!patching.covers(web, "host"), "only the checks named");
    assert!(!patching.covers(dc, "http"), "only the assets matched");
    assert!(
        all_day.covers(dc, "host"),
        "no match, no checks: everything"
    );
}

#[test]
fn a_bad_recurring_downtime_is_refused_with_file_line_and_field() {
    check_errors(
        "\
recurring_downtimes:
  - name: night
    window: { timezone: Europe/Pariss, days: [sun], from: \"22:00\", to: \"02:00\" }
  - name: night
    window: { timezone: UTC, days: [], from: \"01:00\", to: \"02:00\" }
",
        &[
            "acme.yaml:9: field `recurring_downtimes[0].window.timezone`: unknown time zone \
             `Europe/Pariss`: use an IANA name such as `Europe/Paris`",
            "acme.yaml:9: field `recurring_downtimes[0].window.to`: must be after `from` \
             (22:00): a window does not span midnight, write it as two downtimes",
            "acme.yaml:10: field `recurring_downtimes[1].name`: recurring downtime `night` is \
             defined twice (first defined on line 8)",
            "acme.yaml:11: field `recurring_downtimes[1].window.days`: must name at least one day",
        ],
    );
}

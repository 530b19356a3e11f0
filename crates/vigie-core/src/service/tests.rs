use std::collections::BTreeMap;

use super::*;

fn asset(id: &str) -> Weighted {
    Weighted {
        indicator: Indicator::Asset(id.into()),
        propagation: Propagation::AsIs,
        impact: Impact::default(),
    }
}

fn child(id: &str) -> Weighted {
    Weighted {
        indicator: Indicator::Service(id.into()),
        ..asset("")
    }
}

fn service(id: &str, method: Method, indicators: Vec<Weighted>) -> BusinessService {
    BusinessService {
        id: id.into(),
        name: id.into(),
        method,
        indicators,
        downtime: DowntimePolicy::Ignore,
    }
}

fn states(list: &[(&str, Status, bool)]) -> impl Fn(&Indicator) -> Option<IndicatorState> {
    let map: BTreeMap<Indicator, IndicatorState> = list
        .iter()
        .map(|(id, status, in_downtime)| {
            (
                Indicator::Asset((*id).into()),
                IndicatorState {
                    status: *status,
                    in_downtime: *in_downtime,
                },
            )
        })
        .collect();
    move |indicator| map.get(indicator).copied()
}

#[test]
fn worst_and_best_follow_the_severity_order() {
    let services = [
        service(
            "worst",
            Method::Worst,
            vec![asset("a"), asset("b"), asset("c")],
        ),
        service(
            "best",
            Method::Best,
            vec![asset("a"), asset("b"), asset("c")],
        ),
    ];
    let health = evaluate(
        &services,
        states(&[
            ("a", Status::Ok, false),
            ("b", Status::Warning, false),
            ("c", Status::Unknown, false),
        ]),
    )
    .unwrap();
    assert_eq!(health["worst"].status, Status::Unknown);
    assert_eq!(
        health["worst"].causes,
        vec![Indicator::Asset("c".into()), Indicator::Asset("b".into())]
    );
    assert_eq!(health["best"].status, Status::Ok);
    assert_eq!(health["best"].health, 100.0);
}

#[test]
fn an_indicator_the_caller_does_not_know_counts_unknown() {
    let services = [service("s", Method::Worst, vec![asset("ghost")])];
    let health = evaluate(&services, states(&[])).unwrap();
    assert_eq!(health["s"].status, Status::Unknown);
}

#[test]
fn ratio_counts_critical_indicators_by_number_or_share() {
    let farm: Vec<Weighted> = (0..4).map(|i| asset(&format!("web{i}"))).collect();
    let by_count = service(
        "count",
        Method::Ratio {
            warning: RatioThreshold::Count(1),
            critical: RatioThreshold::Count(3),
        },
        farm.clone(),
    );
    let by_share = service(
        "share",
        Method::Ratio {
            warning: RatioThreshold::Percent(25.0),
            critical: RatioThreshold::Percent(50.0),
        },
        farm,
    );
    let services = [by_count, by_share];
    let one_down = states(&[
        ("web0", Status::Critical, false),
        ("web1", Status::Ok, false),
        ("web2", Status::Warning, false),
        ("web3", Status::Ok, false),
    ]);
    let health = evaluate(&services, one_down).unwrap();
    assert_eq!(health["count"].status, Status::Warning);
    assert_eq!(health["share"].status, Status::Warning);
    let two_down = states(&[
        ("web0", Status::Critical, false),
        ("web1", Status::Critical, false),
        ("web2", Status::Ok, false),
        ("web3", Status::Ok, false),
    ]);
    let health = evaluate(&services, two_down).unwrap();
    assert_eq!(health["count"].status, Status::Warning);
    assert_eq!(health["share"].status, Status::Critical);
}

#[test]
fn impact_subtracts_what_each_failing_indicator_weighs() {
    let weighted = |id: &str, critical: f64| Weighted {
        impact: Impact {
            warning: critical / 2.0,
            unknown: critical / 2.0,
            critical,
        },
        ..asset(id)
    };
    let services = [service(
        "payroll",
        Method::Impact {
            warning: 80.0,
            critical: 50.0,
        },
        vec![
            weighted("db", 60.0),
            weighted("app", 30.0),
            weighted("print", 5.0),
        ],
    )];
    let health = evaluate(
        &services,
        states(&[
            ("db", Status::Ok, false),
            ("app", Status::Warning, false),
            ("print", Status::Critical, false),
        ]),
    )
    .unwrap();
    assert_eq!(health["payroll"].health, 80.0);
    assert_eq!(health["payroll"].status, Status::Warning);
    let health = evaluate(
        &services,
        states(&[
            ("db", Status::Critical, false),
            ("app", Status::Critical, false),
            ("print", Status::Critical, false),
        ]),
    )
    .unwrap();
    assert_eq!(health["payroll"].health, 5.0);
    assert_eq!(health["payroll"].status, Status::Critical);
}

#[test]
fn downtime_is_ignored_or_inherited() {
    let mut ignoring = service("ignoring", Method::Worst, vec![asset("db")]);
    let mut inheriting = ignoring.clone();
    inheriting.id = "inheriting".into();
    inheriting.downtime = DowntimePolicy::Inherit;
    ignoring.downtime = DowntimePolicy::Ignore;
    let health = evaluate(
        &[ignoring, inheriting],
        states(&[("db", Status::Critical, true)]),
    )
    .unwrap();
    assert_eq!(health["ignoring"].status, Status::Ok);
    assert!(!health["ignoring"].in_downtime);
    assert_eq!(health["inheriting"].status, Status::Critical);
    assert!(health["inheriting"].in_downtime);
}

#[test]
fn services_nest_and_propagation_rules_change_what_a_child_passes_on() {
    let line = service("line2", Method::Worst, vec![asset("plc")]);
    let mut softened = child("line2");
    softened.propagation = Propagation::Decrease(1);
    let mut fixed = child("line2");
    fixed.propagation = Propagation::Fixed(Status::Warning);
    let mut ignored = child("line2");
    ignored.propagation = Propagation::Ignore;
    let services = [
        service("plant-soft", Method::Worst, vec![softened]),
        service("plant-fixed", Method::Worst, vec![fixed]),
        service("plant-ignore", Method::Worst, vec![ignored, asset("erp")]),
        line,
    ];
    let health = evaluate(
        &services,
        states(&[("plc", Status::Critical, false), ("erp", Status::Ok, false)]),
    )
    .unwrap();
    assert_eq!(health["line2"].status, Status::Critical);
    assert_eq!(health["plant-soft"].status, Status::Unknown);
    assert_eq!(health["plant-fixed"].status, Status::Warning);
    assert_eq!(health["plant-ignore"].status, Status::Ok);
}

#[test]
fn cycles_and_unknown_services_are_refused_with_the_service_named() {
    let cyclic = [
        service("a", Method::Worst, vec![child("b")]),
        service("b", Method::Worst, vec![child("c")]),
        service("c", Method::Worst, vec![child("a")]),
    ];
    let errors = validate(&cyclic).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.starts_with("cycle: "), "{errors:?}");
    assert!(errors[0].message.contains("a → b → c → a"), "{errors:?}");
    let dangling = [service("a", Method::Worst, vec![child("nowhere")])];
    let errors = validate(&dangling).unwrap_err();
    assert_eq!(errors[0].service, "a");
    assert!(errors[0].message.contains("`nowhere`"));
    let twice = [
        service("a", Method::Worst, vec![]),
        service("a", Method::Best, vec![]),
    ];
    assert_eq!(validate(&twice).unwrap_err()[0].message, "defined twice");
}

#[test]
fn transitions_name_what_changed() {
    let services = [service("s", Method::Worst, vec![asset("db")])];
    let ok = evaluate(&services, states(&[("db", Status::Ok, false)])).unwrap();
    let down = evaluate(&services, states(&[("db", Status::Critical, false)])).unwrap();
    assert_eq!(
        transitions(&BTreeMap::new(), &ok),
        vec![Transition {
            service: "s".into(),
            from: None,
            to: Status::Ok,
            health: 100.0
        }]
    );
    assert!(transitions(&ok, &ok).is_empty());
    assert_eq!(transitions(&ok, &down)[0].to, Status::Critical);
}

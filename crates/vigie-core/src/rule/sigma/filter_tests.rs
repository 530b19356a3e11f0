//! Per-client tuning as the pipeline sees it: rules with `expand` placeholders compiled per
//! client (each client's own values, its events only, the clients without values named once),
//! and Sigma filters (parsing, references, scope, logsource, and the condition ANDed with the
//! rule's).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{
    ClientPlaceholders, FilterFile, FilterTarget, RuleSet, load_rules, load_rules_per_client,
};
use crate::rule::detect::DetectionSet;

const ADMIN_LOGON: &str = "title: Admin logon from a workstation\nid: admin-logon\nlevel: high\n\
    logsource: {product: windows, service: security}\n\
    detection:\n  selection:\n    EventID: 4624\n    TargetUserName|expand: '%Administrators%'\n  condition: selection\n";

const PSEXEC: &str = "title: PsExec service installed\nid: psexec\nname: psexec_service\nlevel: high\n\
    logsource: {product: windows, service: system}\n\
    detection:\n  selection:\n    EventID: 7045\n    ServiceName: PSEXESVC\n  condition: selection\n";

/// One client's values as a test writes them: `(placeholder, values)`.
type Values<'a> = &'a [(&'a str, &'a [&'a str])];

fn placeholders(clients: &[(&str, Values<'_>)]) -> ClientPlaceholders {
    clients
        .iter()
        .map(|(client, values)| {
            let values: HashMap<String, Vec<String>> = values
                .iter()
                .map(|(name, list)| {
                    (
                        (*name).to_owned(),
                        list.iter().map(|v| (*v).to_owned()).collect(),
                    )
                })
                .collect();
            ((*client).to_owned(), values)
        })
        .collect()
}

fn two_clients() -> ClientPlaceholders {
    placeholders(&[
        ("acme", &[("Administrators", &["adm-acme"])]),
        ("bellevue", &[("Administrators", &["adm-bel", "root-bel"])]),
        ("durand", &[]),
    ])
}

fn load(rules: &[&str], filters: &[(Option<&str>, &str)], clients: &ClientPlaceholders) -> RuleSet {
    let files: Vec<(String, String)> = rules
        .iter()
        .enumerate()
        .map(|(i, text)| (format!("rules/{i}.yml"), (*text).to_owned()))
        .collect();
    let filter_files: Vec<FilterFile> = filters
        .iter()
        .enumerate()
        .map(|(i, (client, text))| FilterFile {
            path: match client {
                Some(client) => format!("filters/{client}/{i}.yml"),
                None => format!("filters/{i}.yml"),
            },
            text: (*text).to_owned(),
            client: client.map(str::to_owned),
        })
        .collect();
    load_rules_per_client(&files, &filter_files, clients)
}

fn logon(client: &str, user: &str) -> Value {
    json!({"client": client, "message": "logon", "EventID": 4624, "TargetUserName": user,
           "Channel": "Security", "product": "windows"})
}

fn service(client: &str, computer: &str) -> Value {
    json!({"client": client, "message": "service installed", "EventID": 7045,
           "ServiceName": "PSEXESVC", "Computer": computer, "product": "windows"})
}

/// The titles of the rules matching `document`, with the client a per-client copy belongs to.
fn fired(set: &DetectionSet, document: &Value) -> Vec<String> {
    set.matching_document(document)
        .into_iter()
        .map(|index| {
            let title = &set.rules()[index as usize].rule.title;
            match set.owner(index) {
                Some(client) => format!("{title} [{client}]"),
                None => title.clone(),
            }
        })
        .collect()
}

fn reasons(set: &RuleSet) -> Vec<String> {
    set.rejected
        .iter()
        .map(|r| {
            format!(
                "{}:{}: {}",
                r.path,
                r.line.map_or("-".to_owned(), |l| l.to_string()),
                r.reason
            )
        })
        .collect()
}

// ---- placeholders per client ----

#[test]
fn each_clients_own_administrators_fire_on_that_clients_events_only() {
    let set = load(&[ADMIN_LOGON, PSEXEC], &[], &two_clients());
    assert!(set.rejected.is_empty(), "{:?}", reasons(&set));
    assert_eq!(
        set.rules.len(),
        1,
        "the rule without placeholders: one copy"
    );
    assert_eq!(set.per_client.len(), 1);
    let variants: Vec<&str> = set.per_client[0]
        .variants
        .iter()
        .map(|(client, _)| client.as_str())
        .collect();
    assert_eq!(variants, ["acme", "bellevue"]);
    assert_eq!(set.loaded(), 2, "a per-client rule counts once");

    let detection = DetectionSet::new(set);
    assert_eq!(detection.len(), 2);
    assert_eq!(
        fired(&detection, &logon("acme", "ADM-ACME")),
        ["Admin logon from a workstation [acme]"],
        "values match as Sigma strings do: case-insensitively"
    );
    assert_eq!(
        fired(&detection, &logon("bellevue", "root-bel")),
        ["Admin logon from a workstation [bellevue]"]
    );
    assert!(
        fired(&detection, &logon("acme", "adm-bel")).is_empty(),
        "another client's administrator is nobody at acme"
    );
    assert!(fired(&detection, &logon("bellevue", "adm-acme")).is_empty());
    assert!(
        fired(&detection, &logon("durand", "adm-acme")).is_empty(),
        "a client without values runs no copy"
    );
    assert_eq!(
        fired(&detection, &service("durand", "dur-srv01")),
        ["PsExec service installed"],
        "rules without placeholders run for every client"
    );
}

#[test]
fn clients_without_values_are_named_once_and_are_no_error() {
    let clients = placeholders(&[
        ("acme", &[("Administrators", &["adm-acme"])]),
        ("bellevue", &[]),
        ("durand", &[("Administrators", &[])]),
        ("garage", &[("JumpServers", &["jump01"])]),
    ]);
    let set = load(&[ADMIN_LOGON], &[], &clients);
    assert!(set.rejected.is_empty(), "{:?}", reasons(&set));
    assert_eq!(set.notices.len(), 1, "{:?}", set.notices);
    let notice = &set.notices[0];
    assert_eq!(
        (notice.path.as_str(), notice.line, notice.rule_id.as_deref()),
        ("rules/0.yml", Some(1), Some("admin-logon"))
    );
    assert_eq!(
        notice.message,
        "rule does not run for clients `bellevue`, `durand`, `garage` (no `%Administrators%`)"
    );

    // No client at all: the rule stands (it is sound), and runs for nobody.
    let set = load(&[ADMIN_LOGON], &[], &ClientPlaceholders::new());
    assert!(set.rejected.is_empty(), "{:?}", reasons(&set));
    assert_eq!(set.loaded(), 1);
    assert_eq!(
        set.notices[0].message,
        "rule runs for no client: no client gives values for `%Administrators%`"
    );
}

#[test]
fn a_rule_broken_as_written_is_rejected_once_and_a_bad_value_for_its_client_only() {
    let broken = ADMIN_LOGON.replace("TargetUserName|expand", "TargetUserName|expand|sparkles");
    let set = load(&[&broken], &[], &two_clients());
    assert_eq!(
        reasons(&set),
        [
            "rules/0.yml:8: search `selection`, field `TargetUserName|expand|sparkles`: unknown modifier `sparkles`"
        ]
    );
    assert!(set.per_client.is_empty() && set.notices.is_empty());
    // Broken with no client to compile it for: still reported now.
    let set = load(&[&broken], &[], &ClientPlaceholders::new());
    assert_eq!(set.rejected.len(), 1, "{:?}", reasons(&set));

    let by_regex = ADMIN_LOGON.replace("TargetUserName|expand", "TargetUserName|expand|re");
    let clients = placeholders(&[
        ("acme", &[("Administrators", &["adm-.*"])]),
        ("bellevue", &[("Administrators", &["adm-(bel"])]),
    ]);
    let set = load(&[&by_regex], &[], &clients);
    assert_eq!(set.rejected.len(), 1, "{:?}", reasons(&set));
    assert!(
        set.rejected[0]
            .reason
            .starts_with("for client `bellevue`: search `selection`"),
        "{:?}",
        reasons(&set)
    );
    let detection = DetectionSet::new(set);
    assert_eq!(
        fired(&detection, &logon("acme", "adm-anyone")),
        ["Admin logon from a workstation [acme]"],
        "the client whose values compile keeps its copy"
    );
}

#[test]
fn placeholders_in_cidr_values_compile_per_client_and_stand_in_without_one() {
    let rule = "title: Logon from outside the client's networks\nid: outside\n\
        logsource: {product: windows, service: security}\n\
        detection:\n  selection:\n    EventID: 4624\n  inside:\n    IpAddress|expand|cidr: '%InternalNetworks%'\n  condition: selection and not inside\n";
    let clients = placeholders(&[
        ("acme", &[("InternalNetworks", &["10.1.0.0/16"])]),
        (
            "bellevue",
            &[("InternalNetworks", &["10.2.0.0/16", "192.168.0.0/24"])],
        ),
    ]);
    let detection = DetectionSet::new(load(&[rule], &[], &clients));
    let from = |client: &str, address: &str| json!({"client": client, "message": "logon", "EventID": 4624, "IpAddress": address, "Channel": "Security"});
    assert!(fired(&detection, &from("acme", "10.1.2.3")).is_empty());
    assert_eq!(fired(&detection, &from("acme", "10.2.2.3")).len(), 1);
    assert!(fired(&detection, &from("bellevue", "10.2.2.3")).is_empty());
    assert!(fired(&detection, &from("bellevue", "192.168.0.7")).is_empty());
    let set = load(&[rule], &[], &ClientPlaceholders::new());
    assert!(set.rejected.is_empty(), "{:?}", reasons(&set));
}

#[test]
fn a_single_global_map_still_rejects_a_rule_it_cannot_resolve() {
    let set = load_rules(
        &[("r.yml".to_owned(), ADMIN_LOGON.to_owned())],
        &HashMap::new(),
    );
    assert_eq!(set.rules.len(), 0);
    assert!(
        set.rejected[0]
            .reason
            .ends_with("unresolved placeholder `%Administrators%`"),
        "{:?}",
        set.rejected
    );
}

// ---- filters ----

const NOT_FROM_JUMP: &str = "title: PsExec from the jump host is expected\nid: mf-psexec-jump\n\
    logsource: {product: windows}\n\
    filter:\n  rules: [psexec]\n  selection:\n    Computer|startswith: 'jump'\n  condition: not selection\n";

#[test]
fn a_filter_drops_the_matches_its_condition_rejects_and_keeps_the_others() {
    let set = load(&[PSEXEC], &[(None, NOT_FROM_JUMP)], &two_clients());
    assert!(set.rejected.is_empty(), "{:?}", reasons(&set));
    assert_eq!(set.filter_count(), 1);
    assert_eq!(
        set.filters[0].target,
        FilterTarget::Rules(vec!["psexec".to_owned()])
    );
    let detection = DetectionSet::new(set);
    assert!(fired(&detection, &service("acme", "JUMP01")).is_empty());
    assert_eq!(
        fired(&detection, &service("acme", "lyo-fs01")),
        ["PsExec service installed"]
    );
}

#[test]
fn a_client_filter_tunes_that_client_only() {
    let set = load(&[PSEXEC], &[(Some("acme"), NOT_FROM_JUMP)], &two_clients());
    assert!(set.rejected.is_empty(), "{:?}", reasons(&set));
    assert_eq!(set.filters[0].client.as_deref(), Some("acme"));
    let detection = DetectionSet::new(set);
    assert!(fired(&detection, &service("acme", "jump01")).is_empty());
    assert_eq!(
        fired(&detection, &service("bellevue", "jump01")),
        ["PsExec service installed"],
        "the same event from another client still alerts"
    );
}

#[test]
fn a_filter_applies_only_to_events_its_logsource_admits() {
    let linux_only = NOT_FROM_JUMP.replace("product: windows", "product: linux");
    let detection = DetectionSet::new(load(&[PSEXEC], &[(None, &linux_only)], &two_clients()));
    assert_eq!(
        fired(&detection, &service("acme", "jump01")),
        ["PsExec service installed"],
        "a Windows event is outside a Linux filter"
    );
}

#[test]
fn a_filter_for_any_rule_is_anded_with_every_rule_and_references_take_names() {
    let any = "title: Lab hosts are noise\nlogsource: {product: windows}\n\
        filter:\n  rules: any\n  lab:\n    Computer|startswith: lab-\n  condition: not lab\n";
    let by_name = NOT_FROM_JUMP.replace("[psexec]", "psexec_service");
    let set = load(
        &[PSEXEC, ADMIN_LOGON],
        &[(None, any), (None, &by_name)],
        &two_clients(),
    );
    assert!(set.rejected.is_empty(), "{:?}", reasons(&set));
    assert_eq!(set.filters[0].target, FilterTarget::Any);
    assert_eq!(set.filter_count(), 2);
    let detection = DetectionSet::new(set);
    assert!(fired(&detection, &service("acme", "lab-01")).is_empty());
    assert!(fired(&detection, &service("acme", "jump01")).is_empty());
    let mut lab_logon = logon("acme", "adm-acme");
    lab_logon["Computer"] = json!("LAB-07");
    assert!(
        fired(&detection, &lab_logon).is_empty(),
        "per-client copies are filtered too"
    );
    assert_eq!(fired(&detection, &logon("acme", "adm-acme")).len(), 1);
}

#[test]
fn a_client_filter_uses_that_clients_placeholder_values() {
    let jump_hosts = "title: Admin work from the client's jump hosts\n\
        logsource: {product: windows}\n\
        filter:\n  rules: [psexec]\n  jump:\n    Computer|expand: '%JumpServers%'\n  condition: not jump\n";
    let clients = placeholders(&[
        ("acme", &[("JumpServers", &["acme-jump"])]),
        ("bellevue", &[("JumpServers", &["bel-jump"])]),
    ]);
    let set = load(
        &[PSEXEC],
        &[(Some("acme"), jump_hosts), (None, jump_hosts)],
        &clients,
    );
    assert!(set.rejected.is_empty(), "{:?}", reasons(&set));
    let scopes: Vec<Option<&str>> = set.filters.iter().map(|f| f.client.as_deref()).collect();
    assert_eq!(
        scopes,
        [Some("acme"), Some("acme"), Some("bellevue")],
        "a filter for every client with placeholders is compiled per client"
    );
    let detection = DetectionSet::new(set);
    assert!(fired(&detection, &service("acme", "acme-jump")).is_empty());
    assert!(fired(&detection, &service("bellevue", "bel-jump")).is_empty());
    assert_eq!(
        fired(&detection, &service("bellevue", "acme-jump")).len(),
        1
    );

    // A client's filter whose placeholders the client does not give: it does not apply, and
    // says so, like a rule.
    let set = load(&[PSEXEC], &[(Some("durand"), jump_hosts)], &clients);
    assert!(set.rejected.is_empty(), "{:?}", reasons(&set));
    assert!(set.filters.is_empty());
    let notices: Vec<&str> = set.notices.iter().map(|n| n.message.as_str()).collect();
    assert_eq!(
        notices,
        ["filter does not apply to client `durand` (no `%JumpServers%`)"]
    );
}

#[test]
fn filters_with_problems_are_rejected_with_file_line_and_reason() {
    let correlation = "title: Many PsExec\nid: many-psexec\ncorrelation:\n  type: event_count\n  rules: [psexec]\n  group-by: [Computer]\n  timespan: 1h\n  condition: {gte: 3}\n";
    let broken_rule = "title: Broken\nid: broken\nlogsource: {product: windows}\ndetection:\n  sel:\n    x|nope: 1\n  condition: sel\n";
    let filter = |rules: &str, body: &str| {
        format!(
            "title: f\nid: f-{rules}\nlogsource: {{product: windows}}\nfilter:\n  rules: {rules}\n{body}"
        )
    };
    let body = "  selection:\n    Computer: x\n  condition: not selection\n";
    let set = load(
        &[PSEXEC, correlation, broken_rule],
        &[
            (None, &filter("[nowhere]", body)),
            (None, &filter("[broken]", body)),
            (None, &filter("[many-psexec]", body)),
            (None, &filter("[]", body)),
            (
                None,
                &filter(
                    "[psexec]",
                    "  selection:\n    Computer|nope: x\n  condition: not selection\n",
                ),
            ),
            (None, &filter("[psexec]", "  condition: not selection\n")),
            (None, &filter("[psexec]", "  selection:\n    Computer: x\n")),
            (
                None,
                "title: no logsource\nfilter:\n  rules: any\n  s:\n    a: b\n  condition: s\n",
            ),
            (Some("acme"), PSEXEC),
        ],
        &two_clients(),
    );
    assert_eq!(
        reasons(&set),
        [
            "rules/2.yml:6: search `sel`, field `x|nope`: unknown modifier `nope`",
            "filters/3.yml:5: filter: `filter.rules` is empty (write `any` to tune every rule)",
            "filters/5.yml:5: filter: no search identifier under `filter` (a selection to test)",
            "filters/6.yml:5: filter: missing `filter.condition`",
            "filters/7.yml:1: filter: missing `logsource`",
            "filters/acme/8.yml:1: not a filter: a filter directory holds filter documents only",
            "filters/0.yml:1: filter: references unknown rule `nowhere`",
            "filters/1.yml:1: filter: references rule `broken`, which was rejected",
            "filters/2.yml:1: filter: `many-psexec` is a correlation rule; filters tune detection rules",
            "filters/4.yml:7: filter: search `selection`, field `Computer|nope`: unknown modifier `nope`",
        ]
    );
    assert!(set.filters.is_empty());
}

#[test]
fn filter_documents_among_the_rules_tune_every_client() {
    let set = load_rules(
        &[(
            "pack.yml".to_owned(),
            format!("{PSEXEC}---\n{NOT_FROM_JUMP}"),
        )],
        &HashMap::new(),
    );
    assert!(set.rejected.is_empty(), "{:?}", set.rejected);
    assert_eq!((set.rules.len(), set.filter_count()), (1, 1));
    let detection = DetectionSet::new(set);
    assert!(fired(&detection, &service("anyone", "jump02")).is_empty());
    assert_eq!(detection.filter_count(), 1);
}

#[test]
fn a_filtered_match_feeds_no_correlation() {
    let correlation = "title: Many PsExec\nid: many-psexec\nlevel: critical\ncorrelation:\n  type: event_count\n  rules: [psexec]\n  group-by: [Computer]\n  timespan: 1h\n  condition: {gte: 2}\n";
    let detection = DetectionSet::new(load(
        &[PSEXEC, correlation],
        &[(Some("acme"), NOT_FROM_JUMP)],
        &two_clients(),
    ));
    let mut engine =
        detection.correlation_engine(crate::rule::correlation::CorrelationLimits::default());
    let mut signals = Vec::new();
    for (i, client) in ["acme", "acme", "bellevue", "bellevue"].iter().enumerate() {
        let event =
            crate::event::event_from_json(service(client, "jump01"), 1_000 + i as i64, "http")
                .expect("the event reads");
        signals.extend(detection.detect(&mut engine, &event, None, None));
    }
    let titles: Vec<(&str, &str)> = signals
        .iter()
        .map(|s| (s.client.as_str(), s.title.as_str()))
        .collect();
    assert_eq!(titles, [("bellevue", "Many PsExec")]);
}

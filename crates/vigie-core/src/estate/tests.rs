//! The estate's behaviour as its users see it: the example estate, what a broken estate
//! reports, sender matching, and objects added through the API.

use super::*;

const ACME: &str = include_str!("../../../../examples/estate/acme-industrie.yaml");
const BELLEVUE: &str = include_str!("../../../../examples/estate/bellevue-clinic.yaml");

fn files(list: &[(&str, &str)]) -> Vec<EstateFile> {
    list.iter()
        .map(|(path, text)| EstateFile {
            path: path.to_string(),
            text: text.to_string(),
        })
        .collect()
}

fn example_estate() -> Estate {
    let example = files(&[
        ("examples/estate/acme-industrie.yaml", ACME),
        ("examples/estate/bellevue-clinic.yaml", BELLEVUE),
    ]);
    match load_estate(&example) {
        Ok(estate) => estate,
        Err(diagnostics) => panic!("example estate is invalid: {diagnostics:#?}"),
    }
}

/// Loads `list` and compares the diagnostics' Display with `expect`, one line each.
fn check_errors(list: &[(&str, &str)], expect: &[&str]) {
    let diagnostics = load_estate(&files(list)).expect_err("estate should be refused");
    let shown: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(shown, expect);
}

fn sender(client: &str, asset: &str) -> Option<SenderMatch> {
    Some(SenderMatch {
        client: client.to_string(),
        asset: asset.to_string(),
    })
}

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().expect("test address parses"))
}

#[test]
fn example_estate_loads() {
    let estate = example_estate();
    assert_eq!(
        estate.clients.keys().collect::<Vec<_>>(),
        ["acme-industrie", "bellevue-clinic"]
    );

    let acme = estate.client("acme-industrie").expect("acme is defined");
    assert_eq!(acme.contract.as_deref(), Some("gold"));
    assert_eq!(
        acme.incident_grouping,
        IncidentGrouping {
            by: vec![GroupingKey::Asset, GroupingKey::Rule],
            window_ms: 30 * 60_000,
        }
    );
    assert_eq!(acme.reopen_window_ms, 2 * 3_600_000);
    assert_eq!(
        acme.sites
            .iter()
            .map(|site| site.id.as_str())
            .collect::<Vec<_>>(),
        ["lyon-plant", "paris-hq"]
    );
    let mut criticalities: Vec<u8> = acme.assets.iter().map(|asset| asset.criticality).collect();
    criticalities.sort();
    criticalities.dedup();
    assert_eq!(criticalities, [1, 2, 3, 4, 5]);
    let line_2 = estate
        .asset("acme-industrie", "production-line-2")
        .expect("production line 2 is an asset");
    assert_eq!(line_2.kind, AssetKind::BusinessService);
    assert_eq!(
        acme.dependencies_of("production-line-2")
            .collect::<Vec<_>>(),
        ["lyo-scada-gw01", "lyo-mes01", "erp"]
    );
    assert_eq!(
        acme.dependents_of("erp").collect::<Vec<_>>(),
        ["production-line-2", "payroll"]
    );
    assert_eq!(
        acme.team("l2-network").map(|team| team.members.clone()),
        Some(vec!["sophie-leroy".to_string()])
    );

    let bellevue = estate
        .client("bellevue-clinic")
        .expect("bellevue is defined");
    assert_eq!(bellevue.incident_grouping, IncidentGrouping::default());
    assert_eq!(bellevue.reopen_window_ms, DEFAULT_REOPEN_WINDOW_MS);
    assert_eq!(bellevue.assets.len(), 5);
    assert!(estate.validate().is_empty());
}

#[test]
fn reports_every_problem_of_two_files_with_file_line_and_field() {
    let acme = "\
id: acme
name: ACME
sites:
  - id: lyon
    name: Lyon
assets:
  - id: srv-01
    kind: host
    site: lyon
  - id: srv-02
    kind: host
    criticality: 7
  - id: Srv_03
    kind: host
    site: paris
dependencies:
  - { from: srv-01, to: srv-09 }
contacts:
  - { id: jo, name: Jo, email: jo-at-example }
teams:
  - { id: ops, name: Ops, members: [jo, max] }
---
id: acme-labs
name: ACME labs
assets:
  - id: bench-01
    kind: router
";
    let bellevue = "\
id: bellevue
name: Bellevue
assets: [
---
id: acme
name: ACME again
assets:
  - id: x
    kind: host
    addresses: [127.0.0.1]
  - id: y
    kind: host
    addresses: [127.0.0.1]
    hostnames: [Y-01, y-01]
";
    check_errors(
        &[
            ("estate/acme.yaml", acme),
            ("estate/bellevue.yaml", bellevue),
        ],
        &[
            "estate/acme.yaml:12: field `assets[1].criticality`: must be between 1 and 5",
            "estate/acme.yaml:13: field `assets[2].id`: `Srv_03` is not a valid id: use lowercase \
             letters, digits and dashes, starting with a letter or digit",
            "estate/acme.yaml:15: field `assets[2].site`: unknown site `paris`",
            "estate/acme.yaml:17: field `dependencies[0].to`: unknown asset `srv-09`",
            "estate/acme.yaml:19: field `contacts[0].email`: `jo-at-example` is not an email address",
            "estate/acme.yaml:21: field `teams[0].members[1]`: unknown contact `max`",
            "estate/acme.yaml:27: field `assets[0].kind`: unknown variant `router`, expected one of \
             host, network_device, application, business_service",
            "estate/bellevue.yaml:3: unclosed bracket '['",
            "estate/bellevue.yaml:5: field `id`: client `acme` is already defined at \
             estate/acme.yaml:1",
            "estate/bellevue.yaml:13: field `assets[1].addresses[0]`: address `127.0.0.1` is \
             already used by asset `x`",
            "estate/bellevue.yaml:14: field `assets[1].hostnames[1]`: hostname `y-01` is listed \
             twice",
        ],
    );
}

#[test]
fn a_broken_document_does_not_hide_the_next_one_in_the_same_file() {
    let text = "\
id: one
name: [One
---
id: two
name: Two
assets:
  - { id: a, kind: host, criticality: 0 }
";
    check_errors(
        &[("estate/clients.yaml", text)],
        &[
            "estate/clients.yaml:2: unclosed bracket '['",
            "estate/clients.yaml:7: field `assets[0].criticality`: must be between 1 and 5",
        ],
    );
}

#[test]
fn reports_shape_errors_at_the_offending_field() {
    let text = "\
id: acme
name: ACME
reopen_window: 30
";
    check_errors(
        &[("acme.yaml", text)],
        &[
            "acme.yaml:3: field `reopen_window`: invalid duration `30`: a unit is required (ms, s, \
           m, h, d, w), e.g. `30m`",
        ],
    );
    let text = "\
id: acme
name: ACME
assets:
  - id: a
    kind: host
    criticality: 300
  - id: b
    kind: host
    adresses: [127.0.0.1]
";
    check_errors(
        &[("acme.yaml", text)],
        &["acme.yaml:6: field `assets[0].criticality`: must be between 1 and 5"],
    );
    check_errors(
        &[("acme.yaml", &text.replace("300", "3"))],
        &[
            "acme.yaml:9: field `assets[1].adresses`: unknown field `adresses`, expected one of \
           id, name, kind, criticality, tags, addresses, hostnames, site, host_check, checks, service",
        ],
    );
    check_errors(
        &[("acme.yaml", "name: ACME\nsites:\n  - name: Lyon\n")],
        &["acme.yaml:3: field `sites[0]`: missing field `id`"],
    );
}

#[test]
fn rejects_dependency_cycles_naming_them() {
    let text = "\
id: acme
name: ACME
assets:
  - { id: erp, kind: application }
  - { id: erp-app, kind: host }
  - { id: erp-db, kind: host }
  - { id: backup, kind: host }
dependencies:
  - { from: erp, to: erp-app }
  - { from: erp-app, to: erp-db }
  - { from: erp-db, to: erp }
  - { from: backup, to: erp-db }
  - { from: backup, to: backup }
";
    check_errors(
        &[("acme.yaml", text)],
        &[
            "acme.yaml:11: field `dependencies[2]`: dependencies form a cycle: erp -> erp-app -> \
             erp-db -> erp",
            "acme.yaml:13: field `dependencies[4]`: dependencies form a cycle: backup -> backup",
        ],
    );
}

#[test]
fn rejects_ids_defined_twice_within_a_client_and_across_files() {
    let first = "\
id: acme
name: ACME
assets:
  - { id: srv-01, kind: host }
  - { id: srv-02, kind: host }
  - { id: srv-01, kind: network_device }
";
    let second = "\
# The same client, copied by mistake.
id: acme
name: ACME
";
    check_errors(
        &[("a/acme.yaml", first), ("b/acme.yaml", second)],
        &[
            "a/acme.yaml:6: field `assets[2].id`: asset `srv-01` is defined twice (first defined \
             on line 4)",
            "b/acme.yaml:2: field `id`: client `acme` is already defined at a/acme.yaml:1",
        ],
    );
}

#[test]
fn finds_sender_by_hostname_case_insensitively() {
    let estate = example_estate();
    assert_eq!(
        estate.find_sender(None, Some("LYO-ERP-DB01")),
        sender("acme-industrie", "lyo-erp-db01")
    );
    assert_eq!(
        estate.find_sender(None, Some("par-dc01.acme.lan")),
        sender("acme-industrie", "par-dc01")
    );
    assert_eq!(estate.find_sender(None, Some("unknown-host")), None);
}

#[test]
fn finds_sender_by_the_first_label_of_an_fqdn() {
    let estate = example_estate();
    assert_eq!(
        estate.find_sender(None, Some("lyo-mes01.acme.lan.")),
        sender("acme-industrie", "lyo-mes01")
    );
    assert_eq!(
        estate.find_sender(None, Some("bel-nas01.bellevue.local")),
        sender("bellevue-clinic", "bel-nas01")
    );
}

#[test]
fn finds_sender_by_address_when_the_hostname_is_unknown() {
    let estate = example_estate();
    assert_eq!(
        estate.find_sender(ip("127.0.10.30"), Some("localhost")),
        sender("acme-industrie", "lyo-scada-gw01")
    );
    assert_eq!(
        estate.find_sender(ip("::ffff:127.0.30.1"), None),
        sender("bellevue-clinic", "bel-fw01")
    );
    assert_eq!(
        estate.find_sender(ip("2001:db8:be11::10"), None),
        sender("bellevue-clinic", "bel-dpi01")
    );
    assert_eq!(
        estate.find_sender(None, Some("127.0.20.30")),
        sender("acme-industrie", "par-print01")
    );
    assert_eq!(estate.find_sender(ip("127.0.99.99"), None), None);
}

#[test]
fn hostname_wins_over_address() {
    let estate = example_estate();
    assert_eq!(
        estate.find_sender(ip("127.0.10.1"), Some("lyo-fs01")),
        sender("acme-industrie", "lyo-fs01")
    );
}

#[test]
fn a_hostname_or_address_claimed_by_two_clients_matches_neither() {
    let text = "\
id: one
name: One
assets:
  - { id: dc01, kind: host, hostnames: [dc01], addresses: [10.0.0.10] }
---
id: two
name: Two
assets:
  - { id: dc01, kind: host, hostnames: [DC01], addresses: [10.0.0.10] }
  - { id: fw, kind: network_device, addresses: [10.0.0.1] }
";
    let estate = load_estate(&files(&[("clients.yaml", text)])).expect("estate is valid");
    assert_eq!(estate.find_sender(ip("10.0.0.10"), Some("dc01")), None);
    assert_eq!(
        estate.find_sender(ip("10.0.0.1"), Some("dc01")),
        sender("two", "fw")
    );
}

#[test]
fn merge_adds_api_objects_to_the_clients_the_files_define() {
    let mut estate = example_estate();
    let mut bellevue = estate
        .client("bellevue-clinic")
        .expect("bellevue is defined")
        .empty_copy();
    bellevue.assets.push(Asset {
        id: "bel-srv-imaging01".to_string(),
        name: Some("Imaging server".to_string()),
        kind: AssetKind::Host,
        criticality: 4,
        tags: vec![],
        addresses: vec!["127.0.30.30".parse().expect("address parses")],
        hostnames: vec!["bel-srv-imaging01".to_string()],
        site: Some("main-building".to_string()),
        host_check: None,
        checks: vec![],
        service: None,
    });
    bellevue.dependencies.push(Dependency {
        from: "patient-records".to_string(),
        to: "bel-srv-imaging01".to_string(),
    });
    // Bellevue's settings without its policies and routing, which name Bellevue's teams.
    let newcomer = Client {
        id: "garage-durand".to_string(),
        name: "Garage Durand".to_string(),
        escalation_policies: vec![],
        routing: vec![],
        ..bellevue.empty_copy()
    };
    let other = Estate::new(BTreeMap::from([
        (bellevue.id.clone(), bellevue),
        (newcomer.id.clone(), newcomer),
    ]));

    estate.merge(other).expect("merge is valid");

    assert!(estate.client("garage-durand").is_some());
    assert_eq!(
        estate.find_sender(ip("127.0.30.30"), None),
        sender("bellevue-clinic", "bel-srv-imaging01")
    );
    assert!(estate.validate().is_empty());
}

#[test]
fn merge_refuses_an_id_defined_twice_and_leaves_the_estate_unchanged() {
    let mut estate = example_estate();
    let before = estate.clone();
    let acme = estate.client("acme-industrie").expect("acme is defined");
    let mut incoming = acme.empty_copy();
    incoming.assets.push(acme.assets[0].clone());
    incoming.dependencies.push(Dependency {
        from: "lyo-fw01".to_string(),
        to: "nowhere".to_string(),
    });
    let mut renamed = acme.empty_copy();
    renamed.name = "ACME".to_string();

    let diagnostics = estate
        .merge(Estate::new(BTreeMap::from([(
            "acme-industrie".to_string(),
            incoming,
        )])))
        .expect_err("lyo-fw01 is already defined");
    let shown: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "clients/acme-industrie: field `assets[19].id`: asset `lyo-fw01` is defined twice \
             (first defined at `assets[0]`)",
            "clients/acme-industrie: field `dependencies[25].to`: unknown asset `nowhere`",
        ]
    );

    let diagnostics = estate
        .merge(Estate::new(BTreeMap::from([(
            "acme-industrie".to_string(),
            renamed,
        )])))
        .expect_err("the settings differ");
    assert_eq!(
        diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "clients/acme-industrie: field `name`: differs from the existing definition of client \
          `acme-industrie`"
        ]
    );
    assert_eq!(estate, before);
}

#[test]
fn estate_round_trips_through_json_with_its_sender_index() {
    let estate = example_estate();
    let json = serde_json::to_value(&estate).expect("estate serialises");
    assert_eq!(
        json["clients"]["acme-industrie"]["incident_grouping"],
        serde_json::json!({ "by": ["asset", "rule"], "window": "30m" })
    );
    assert_eq!(
        json["clients"]["acme-industrie"]["reopen_window"],
        serde_json::json!("2h")
    );
    let back: Estate = serde_json::from_value(json).expect("estate deserialises");
    assert_eq!(back, estate);
    assert_eq!(
        back.find_sender(None, Some("bel-dpi01")),
        sender("bellevue-clinic", "bel-dpi01")
    );
}

#[test]
fn validate_names_clients_by_resource_path_when_no_file_is_known() {
    let mut estate = example_estate();
    let acme = estate
        .clients
        .get_mut("acme-industrie")
        .expect("acme is defined");
    acme.assets[3].site = Some("marseille".to_string());
    acme.id = "acme".to_string();
    assert_eq!(
        estate
            .validate()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "clients/acme-industrie: field `id`: client is filed under `acme-industrie` but its \
             id is `acme`",
            "clients/acme-industrie: field `assets[3].site`: unknown site `marseille`",
        ]
    );
}

#[test]
fn diagnostic_display_escapes_control_characters() {
    let diagnostic = Diagnostic {
        path: "acme.yaml".to_string(),
        line: None,
        field: String::new(),
        message: "bad\u{1b}[2J".to_string(),
    };
    assert_eq!(diagnostic.to_string(), "acme.yaml: bad\\u{1b}[2J");
}

//! The logsource map as behaviour: what the built-in map derives for each kind of event, how
//! rules are admitted, how an operator's map overrides the built-in one, and how a bad map
//! file is reported.

use serde_json::{Value, json};

use super::{EventLogSource, LogsourceMap};
use crate::rule::sigma::LogSource;

/// The (product, category, service) the built-in map gives `document`.
fn derived(document: &Value) -> (Option<String>, Option<String>, Option<String>) {
    let logsource = EventLogSource::of(document);
    (logsource.product, logsource.category, logsource.service)
}

fn check(document: Value, expect: (Option<&str>, Option<&str>, Option<&str>)) {
    let (product, category, service) = derived(&document);
    assert_eq!(
        (product.as_deref(), category.as_deref(), service.as_deref()),
        expect,
        "{document}"
    );
}

fn evtx(channel: &str, id: Value) -> Value {
    json!({"Event": {"System": {"Channel": channel, "EventID": id}, "EventData": {}}})
}

fn syslog(appname: &str) -> Value {
    json!({"message": "m", "client": "acme", "source": "syslog", "kind": "syslog",
           "severity": "notice", "appname": appname, "facility": "daemon", "hostname": "web1"})
}

fn rule(product: Option<&str>, category: Option<&str>, service: Option<&str>) -> LogSource {
    LogSource {
        product: product.map(str::to_owned),
        category: category.map(str::to_owned),
        service: service.map(str::to_owned),
        definition: None,
    }
}

fn parse(text: &str) -> LogsourceMap {
    LogsourceMap::parse(text, "ops.yaml").unwrap_or_else(|problems| panic!("{problems:?}"))
}

/// The problems of a bad map file, as the operator reads them.
fn problems(text: &str) -> Vec<String> {
    match LogsourceMap::parse(text, "ops.yaml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

// --- The built-in map: Windows ----------------------------------------------------------------

const SYSMON: &str = "Microsoft-Windows-Sysmon/Operational";

/// Today's Windows tables, as they were hard-coded before the map: the map must give the same.
fn former_windows_category(channel: &str, id: i64, event_type: &str) -> Option<&'static str> {
    let sysmon = match id {
        1 => "process_creation",
        2 => "file_change",
        3 => "network_connection",
        4 | 16 => "sysmon_status",
        5 => "process_termination",
        6 => "driver_load",
        7 => "image_load",
        8 => "create_remote_thread",
        9 => "raw_access_thread",
        10 => "process_access",
        11 => "file_event",
        12 if event_type.contains("Delete") => "registry_delete",
        12 => "registry_add",
        13 => "registry_set",
        14 => "registry_rename",
        15 => "create_stream_hash",
        17 | 18 => "pipe_created",
        19..=21 => "wmi_event",
        22 => "dns_query",
        23 | 26 => "file_delete",
        24 => "clipboard_capture",
        25 => "process_tampering",
        29 => "file_executable_detected",
        255 => "sysmon_error",
        _ => "",
    };
    let category = match (channel.to_ascii_lowercase().as_str(), id) {
        ("microsoft-windows-sysmon/operational", _) => sysmon,
        ("security", 4688) => "process_creation",
        ("microsoft-windows-powershell/operational", 4104) => "ps_script",
        ("microsoft-windows-powershell/operational", 4103) => "ps_module",
        ("windows powershell", 400) => "ps_classic_start",
        ("windows powershell", 600) => "ps_classic_provider_start",
        ("windows powershell", 800) => "ps_classic_script",
        _ => "",
    };
    (!category.is_empty()).then_some(category)
}

#[test]
fn the_built_in_map_gives_the_former_windows_categories_for_every_channel_and_id() {
    let channels = [
        SYSMON,
        "microsoft-windows-sysmon/operational",
        "Security",
        "Microsoft-Windows-PowerShell/Operational",
        "Windows PowerShell",
        "System",
        "Application",
    ];
    let ids = (0..=300).chain([400, 600, 800, 4103, 4104, 4624, 4688]);
    for channel in channels {
        for id in ids.clone() {
            for event_type in ["CreateKey", "DeleteKey", "DeleteValue", "SetValue"] {
                let mut document = evtx(channel, json!(id));
                document["Event"]["EventData"]["EventType"] = json!(event_type);
                let logsource = EventLogSource::of(&document);
                assert_eq!(
                    logsource.category.as_deref(),
                    former_windows_category(channel, id, event_type),
                    "{channel} {id} {event_type}"
                );
                assert_eq!(logsource.product.as_deref(), Some("windows"));
                assert_eq!(logsource.service, None, "services come from the channel");
                assert_eq!(logsource.channel.as_deref(), Some(channel));
            }
        }
    }
}

#[test]
fn event_ids_are_read_in_every_form_evtx_dump_writes() {
    for id in [
        json!(4688),
        json!("4688"),
        json!(" 4688 "),
        json!({"#attributes": {"Qualifiers": ""}, "#text": 4688}),
        json!({"#text": "4688"}),
    ] {
        check(
            evtx("Security", id),
            (Some("windows"), Some("process_creation"), None),
        );
    }
    check(
        evtx("Security", json!("4688x")),
        (Some("windows"), None, None),
    );
    check(evtx("Security", json!(null)), (Some("windows"), None, None));
}

#[test]
fn any_event_in_the_evtx_layout_is_windows() {
    check(
        json!({"Event": {"System": {"Provider": {"#attributes": {"Name": "x"}}}}}),
        (Some("windows"), None, None),
    );
    let logsource = EventLogSource::of(&json!({"Event": {"System": {}}}));
    assert_eq!(logsource.channel, None);
}

#[test]
fn sysmon_for_linux_is_linux() {
    let linux = |id: i64| evtx("Linux-Sysmon/Operational", json!(id));
    check(linux(1), (Some("linux"), Some("process_creation"), None));
    check(linux(3), (Some("linux"), Some("network_connection"), None));
    check(linux(5), (Some("linux"), Some("process_termination"), None));
    check(linux(11), (Some("linux"), Some("file_event"), None));
    check(linux(23), (Some("linux"), Some("file_delete"), None));
    check(linux(16), (Some("linux"), None, None));
}

// --- The built-in map: Linux and syslog -------------------------------------------------------

#[test]
fn syslog_programs_map_to_sigmahq_linux_services() {
    let cases = [
        ("sshd", "linux", "sshd"),
        ("sshd-session", "linux", "sshd"),
        ("SSHD", "linux", "sshd"),
        ("sudo", "linux", "sudo"),
        ("CRON", "linux", "cron"),
        ("crond", "linux", "cron"),
        ("crontab", "linux", "cron"),
        ("anacron", "linux", "cron"),
        ("auditd", "linux", "auditd"),
        ("audisp-syslog", "linux", "auditd"),
        ("su", "linux", "auth"),
        ("useradd", "linux", "auth"),
        ("pkexec", "linux", "auth"),
        ("systemd-logind", "linux", "auth"),
        ("clamd", "linux", "clamav"),
        ("freshclam", "linux", "clamav"),
        ("vsftpd", "linux", "vsftpd"),
        ("guacd", "linux", "guacamole"),
        ("kernel", "linux", "syslog"),
        ("systemd", "linux", "syslog"),
        ("named", "linux", "syslog"),
        ("systemd-networkd", "linux", "syslog"),
        ("postfix/smtpd", "postfix", "smtp"),
        ("postfix/qmgr", "postfix", "smtp"),
        ("postfix-out/smtp", "postfix", "smtp"),
        ("rspamd", "rspamd", "smtp"),
    ];
    for (program, product, service) in cases {
        check(syslog(program), (Some(product), None, Some(service)));
    }
}

#[test]
fn unknown_programs_state_nothing_so_every_rule_is_tested() {
    check(syslog("fortigate"), (None, None, None));
    check(syslog("evntslog"), (None, None, None));
    let mut unparsed = syslog("x");
    unparsed.as_object_mut().unwrap().remove("appname");
    check(unparsed, (None, None, None));
}

#[test]
fn unix_only_facilities_map_when_the_program_says_nothing() {
    let mut event = syslog("myscript");
    event["facility"] = json!("authpriv");
    check(event.clone(), (Some("linux"), None, Some("auth")));
    event["facility"] = json!("cron");
    check(event.clone(), (Some("linux"), None, Some("cron")));
    event["facility"] = json!("auth");
    check(event.clone(), (None, None, None));
    // The program wins over the facility: it comes first in the map.
    event["appname"] = json!("sshd");
    event["facility"] = json!("authpriv");
    check(event, (Some("linux"), None, Some("sshd")));
}

#[test]
fn other_shippers_name_the_program_differently() {
    check(
        json!({"program": "sudo", "message": "m"}),
        (Some("linux"), None, Some("sudo")),
    );
    check(
        json!({"programname": "sshd"}),
        (Some("linux"), None, Some("sshd")),
    );
    check(
        json!({"SYSLOG_IDENTIFIER": "sshd"}),
        (Some("linux"), None, Some("sshd")),
    );
}

#[test]
fn audit_records_sent_as_json_are_auditd() {
    check(
        json!({"source": "auditd", "type": "EXECVE", "a0": "curl"}),
        (Some("linux"), None, Some("auditd")),
    );
}

#[test]
fn what_an_event_states_wins_over_the_map() {
    let mut event = syslog("postfix/smtpd");
    event["service"] = json!("SMTP-IN");
    check(event, (Some("postfix"), None, Some("smtp-in")));
    check(
        json!({"Event": {"System": {"Channel": "Security", "EventID": 4688}}, "logsource": {"product": "Acme", "category": "edr"}}),
        (Some("acme"), Some("edr"), None),
    );
}

// --- Admission --------------------------------------------------------------------------------

#[test]
fn windows_channels_and_ids_route_rules_as_before() {
    let sysmon = |id: i64| EventLogSource::of(&evtx(SYSMON, json!(id)));
    let security = |id: i64| EventLogSource::of(&evtx("Security", json!(id)));
    let windows = Some("windows");
    assert!(sysmon(1).admits(&rule(windows, Some("process_creation"), None)));
    assert!(!sysmon(3).admits(&rule(windows, Some("process_creation"), None)));
    assert!(sysmon(13).admits(&rule(windows, Some("registry_event"), None)));
    assert!(sysmon(12).admits(&rule(windows, Some("registry_event"), None)));
    assert!(!sysmon(1).admits(&rule(windows, Some("registry_event"), None)));
    assert!(security(4688).admits(&rule(windows, Some("process_creation"), None)));
    assert!(!security(4624).admits(&rule(windows, Some("process_creation"), None)));
    assert!(!security(4624).admits(&rule(windows, Some("registry_event"), None)));
    assert!(security(4624).admits(&rule(windows, None, Some("security"))));
    assert!(!security(4624).admits(&rule(windows, None, Some("system"))));
    assert!(!sysmon(1).admits(&rule(windows, None, Some("security"))));
    assert!(sysmon(1).admits(&rule(windows, None, Some("sysmon"))));
    assert!(
        security(4624).admits(&rule(windows, None, Some("ntlm"))),
        "a service without a known channel is not ruled out"
    );
    assert!(
        security(4624).admits(&rule(windows, Some("antivirus"), None)),
        "a category no channel implies is not ruled out"
    );
    assert!(!sysmon(1).admits(&rule(Some("linux"), None, None)));
}

#[test]
fn linux_services_route_rules() {
    let sshd = EventLogSource::of(&syslog("sshd"));
    assert!(sshd.admits(&rule(Some("linux"), None, Some("sshd"))));
    assert!(sshd.admits(&rule(Some("linux"), None, None)));
    assert!(!sshd.admits(&rule(Some("linux"), None, Some("auditd"))));
    assert!(!sshd.admits(&rule(Some("windows"), Some("process_creation"), None)));
    let postfix = EventLogSource::of(&syslog("postfix/cleanup"));
    assert!(
        postfix.admits(&rule(None, None, Some("smtp"))),
        "Vigie's mail rules"
    );
    assert!(!postfix.admits(&rule(Some("linux"), None, Some("sshd"))));
    let unknown = EventLogSource::of(&syslog("fortigate"));
    assert!(unknown.admits(&rule(Some("fortigate"), None, Some("event"))));
}

#[test]
fn a_logsource_with_nothing_admits_every_rule() {
    let nothing = EventLogSource::default();
    assert_eq!(nothing, EventLogSource::of(&json!({"message": "m"})));
    assert!(nothing.admits(&rule(
        Some("windows"),
        Some("process_creation"),
        Some("sysmon")
    )));
}

// --- An operator's map ------------------------------------------------------------------------

const OPERATOR_MAP: &str = r#"
fields:
  program: [ident]
service_channels:
  security: ForwardedEvents
mappings:
  - when: {program: sshd, hostname: bastion}
    product: bastion
  - when: {program: myapp}
    product: acme_app
    category: application
  - when: {kind: waf}
    category: webserver
"#;

#[test]
fn an_operators_entries_win_per_attribute_over_the_built_in_ones() {
    let map = LogsourceMap::default_map().with_overrides(&parse(OPERATOR_MAP));
    let of = |document: Value| {
        let logsource = EventLogSource::with_map(&document, &map);
        (logsource.product, logsource.category, logsource.service)
    };
    let owned = |p: Option<&str>, c: Option<&str>, s: Option<&str>| {
        (
            p.map(str::to_owned),
            c.map(str::to_owned),
            s.map(str::to_owned),
        )
    };
    let mut bastion = syslog("sshd");
    bastion["hostname"] = json!("BASTION");
    // Product from the operator's entry, service still from the built-in one.
    assert_eq!(of(bastion), owned(Some("bastion"), None, Some("sshd")));
    assert_eq!(of(syslog("sshd")), owned(Some("linux"), None, Some("sshd")));
    assert_eq!(
        of(syslog("myapp")),
        owned(Some("acme_app"), Some("application"), None)
    );
    // The operator's names for a field are tried first (a named field is one value: the
    // first present), the built-in ones still work.
    assert_eq!(
        of(json!({"ident": "myapp", "appname": "sudo"})),
        owned(Some("acme_app"), Some("application"), None)
    );
    assert_eq!(
        of(json!({"appname": "sudo"})),
        owned(Some("linux"), None, Some("sudo"))
    );
    assert_eq!(
        of(json!({"kind": "waf", "appname": "nginx"})),
        owned(None, Some("webserver"), None)
    );
    // Windows is unchanged.
    assert_eq!(
        of(evtx(SYSMON, json!(1))),
        owned(Some("windows"), Some("process_creation"), None)
    );
    assert_eq!(map.len(), LogsourceMap::default_map().len() + 3);
}

#[test]
fn an_operators_service_channel_replaces_the_built_in_one() {
    let map = LogsourceMap::default_map().with_overrides(&parse(OPERATOR_MAP));
    let forwarded = evtx("ForwardedEvents", json!(4624));
    let security = rule(Some("windows"), None, Some("security"));
    assert!(EventLogSource::with_map(&forwarded, &map).admits(&security));
    assert!(!EventLogSource::of(&forwarded).admits(&security));
    let system = rule(Some("windows"), None, Some("system"));
    assert!(!EventLogSource::with_map(&forwarded, &map).admits(&system));
}

#[test]
fn a_map_alone_knows_only_its_own_entries() {
    let map = parse(OPERATOR_MAP);
    let logsource = EventLogSource::with_map(&evtx(SYSMON, json!(1)), &map);
    assert_eq!(logsource.product, None);
    assert_eq!(logsource.category, None);
    assert_eq!(logsource.channel, None, "no `channel` field named");
    let logsource = EventLogSource::with_map(&json!({"ident": "myapp"}), &map);
    assert_eq!(logsource.product.as_deref(), Some("acme_app"));
}

#[test]
fn an_empty_map_file_is_an_empty_map() {
    assert!(parse("").is_empty());
    assert!(parse("# nothing yet\n").is_empty());
    assert!(parse("mappings: []\n").is_empty());
}

#[test]
fn conditions_compare_without_case_and_with_modifiers() {
    let map = parse(
        r#"
mappings:
  - when: {Event.EventData.Image|endswith: '\curl.exe'}
    category: download
  - when: {message|contains: "Accepted Password", user|exists: false}
    category: logon
  - when: {message|contains: accepted}
    service: anything_accepted
  - when: {level: [3, "4"], enabled: true}
    product: numbered
"#,
    );
    let of = |document: Value| {
        let logsource = EventLogSource::with_map(&document, &map);
        (logsource.product, logsource.category, logsource.service)
    };
    assert_eq!(
        of(json!({"Event": {"EventData": {"Image": "C:\\Tools\\CURL.EXE"}}})).1,
        Some("download".to_owned())
    );
    assert_eq!(
        of(json!({"message": "sshd: accepted password for root"})),
        (
            None,
            Some("logon".to_owned()),
            Some("anything_accepted".to_owned())
        )
    );
    assert_eq!(
        of(json!({"message": "Accepted password", "user": "root"})).1,
        None
    );
    assert_eq!(
        of(json!({"level": "3", "enabled": true})).0,
        Some("numbered".to_owned())
    );
    assert_eq!(
        of(json!({"level": 4, "enabled": "TRUE"})).0,
        Some("numbered".to_owned())
    );
    assert_eq!(of(json!({"level": 5, "enabled": true})).0, None);
    assert_eq!(of(json!({"level": 3})).0, None);
}

#[test]
fn entries_with_many_value_combinations_still_match_every_one() {
    let map = parse(
        r#"
mappings:
  - when:
      a: [a1, a2, a3, a4, a5]
      b: [b1, b2, b3, b4, b5]
      c: [c1, c2, c3, c4, c5]
    product: many
"#,
    );
    for a in ["a1", "a5"] {
        for c in ["c2", "C5"] {
            let document = json!({"a": a, "b": "b3", "c": c});
            let logsource = EventLogSource::with_map(&document, &map);
            assert_eq!(logsource.product.as_deref(), Some("many"), "{document}");
        }
    }
    let document = json!({"a": "a1", "b": "b6", "c": "c1"});
    assert_eq!(EventLogSource::with_map(&document, &map).product, None);
}

// --- Bad map files ------------------------------------------------------------------------------

#[test]
fn the_built_in_map_parses() {
    let map = LogsourceMap::parse(super::DEFAULT_MAP, "logsources.yaml").unwrap();
    assert!(map.len() > 50, "{}", map.len());
}

#[test]
fn every_problem_of_a_bad_map_is_reported_with_its_line_and_field() {
    let text = r#"fields:
  program: []
  "a..b": x
service_channels:
  security: [Security]
mappings:
  - when: {channel: Security}
  - when: {appname|regex: "ssh.*"}
    product: linux
  - product: linux
  - when: {}
    service: sshd
  - when: {appname: sshd}
    product: Linux Server
    severity: high
  - when: {appname: ~, facility|exists: yes}
    product: linux
  - just text
walk: true
"#;
    assert_eq!(
        problems(text),
        [
            "ops.yaml:2: field `fields.program`: must list at least one value",
            "ops.yaml:3: field `fields.a..b`: `a..b` has an empty part between dots",
            "ops.yaml:5: field `service_channels.security`: expected text, found a list",
            "ops.yaml:7: field `mappings[0]`: sets nothing: give at least one of `product`, `category`, `service`",
            "ops.yaml:8: field `mappings[1].when.appname|regex`: unknown modifier `regex`, expected one of `exists`, `startswith`, `endswith`, `contains`",
            "ops.yaml:10: field `mappings[2].when`: is required",
            "ops.yaml:11: field `mappings[3].when`: needs at least one condition",
            "ops.yaml:14: field `mappings[4].product`: `Linux Server` has spaces; Sigma logsource values use `_` instead",
            "ops.yaml:15: field `mappings[4].severity`: unknown field, expected one of `when`, `product`, `category`, `service`",
            "ops.yaml:16: field `mappings[5].when.appname`: expected a value (to require that a field be absent, write `field|exists: false`)",
            "ops.yaml:16: field `mappings[5].when.facility|exists`: expected `true` or `false`, found text",
            "ops.yaml:18: field `mappings[6]`: expected a mapping with `when`, `product`, `category`, `service`, found text",
            "ops.yaml:19: field `walk`: unknown field, expected one of `fields`, `service_channels`, `mappings`",
        ]
    );
}

#[test]
fn a_map_that_is_not_a_mapping_is_reported() {
    assert_eq!(
        problems("- when: {a: b}\n  product: x\n"),
        [
            "ops.yaml:1: expected a mapping with `fields`, `service_channels`, `mappings`, found a list"
        ]
    );
    assert_eq!(
        problems("mappings: {when: {a: b}}\n"),
        ["ops.yaml:1: field `mappings`: expected a list of entries, found a mapping"]
    );
}

#[test]
fn a_yaml_syntax_error_is_reported_with_its_line() {
    let found =
        match LogsourceMap::parse("mappings:\n  - when: {a: b\n    product: x\n", "ops.yaml") {
            Ok(_) => panic!("accepted"),
            Err(found) => found,
        };
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "ops.yaml");
    assert!(found[0].line.is_some_and(|line| line >= 2), "{found:?}");
    assert!(!found[0].message.is_empty());
    assert!(!found[0].to_string().contains('\n'));
}

#[test]
fn a_bad_entry_never_spoils_the_good_ones_silently() {
    // The whole file is refused: a map half loaded would route rules in ways nobody wrote.
    let text =
        "mappings:\n  - when: {appname: sshd}\n    product: linux\n  - when: 3\n    product: x\n";
    assert_eq!(
        problems(text),
        [
            "ops.yaml:4: field `mappings[1].when`: expected a mapping of event fields to values, found a number"
        ]
    );
}

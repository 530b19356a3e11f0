use serde_json::json;

use super::*;

#[test]
fn external_commands_as_nagios_writes_them() {
    let r = parse_external_command(
        "[1764000000] PROCESS_SERVICE_CHECK_RESULT;lyo-db01;disk /;2;DISK CRITICAL - / 97% used|/=97%;80;90;0;100\n",
    )
    .unwrap();
    assert_eq!(r.host, "lyo-db01");
    assert_eq!(r.service.as_deref(), Some("disk /"));
    assert_eq!(r.result.state, CheckState::Critical);
    assert_eq!(r.result.output, "DISK CRITICAL - / 97% used");
    assert_eq!(r.result.perfdata, "/=97%;80;90;0;100");
    assert_eq!(r.time_ms, Some(1_764_000_000_000));
    let host =
        parse_external_command("PROCESS_HOST_CHECK_RESULT;lyo-fw01;1;PING CRITICAL - 100% loss")
            .unwrap();
    assert_eq!(host.service, None);
    assert_eq!(host.result.state, CheckState::Critical);
    // an output with semicolons keeps them
    let r = parse_external_command("PROCESS_SERVICE_CHECK_RESULT;h;s;0;a;b;c").unwrap();
    assert_eq!(r.result.output, "a;b;c");
}

#[test]
fn bad_external_commands_say_what_is_wrong() {
    for (line, expected) in [
        ("PROCESS_SERVICE_CHECK_RESULT;h;s;7;x", "state 7"),
        (
            "PROCESS_SERVICE_CHECK_RESULT;h;s",
            "needs host;service;return_code;output",
        ),
        ("PROCESS_HOST_CHECK_RESULT;h;up;x", "status_code `up`"),
        ("SCHEDULE_FORCED_SVC_CHECK;h;s;0", "not supported"),
        ("[soon] PROCESS_HOST_CHECK_RESULT;h;0;x", "timestamp `soon`"),
        ("PROCESS_SERVICE_CHECK_RESULT; ;s;0;x", "host is empty"),
    ] {
        let error = parse_external_command(line).unwrap_err();
        assert!(error.contains(expected), "{line}: {error}");
    }
}

#[test]
fn nrdp_batches_are_taken_whole_or_refused_with_every_problem() {
    let body = json!({"checkresults": [
        {"checkresult": {"type": "service"}, "hostname": "web1", "servicename": "http", "state": "1", "output": "HTTP WARNING: slow|time=2.1s;1;5"},
        {"checkresult": {"type": "host"}, "hostname": "web1", "state": 0, "output": "UP"},
    ]});
    let results = parse_nrdp(&body).unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].result.state, CheckState::Warning);
    assert_eq!(results[0].result.perfdata, "time=2.1s;1;5");
    assert_eq!(results[1].service, None);
    let bad = json!({"checkresults": [
        {"checkresult": {"type": "service"}, "hostname": "web1", "state": 0},
        {"checkresult": {"type": "service"}, "hostname": "web1", "servicename": "x", "state": 9},
    ]});
    let problems = parse_nrdp(&bad).unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("checkresults[0]: `servicename`"));
    assert!(problems[1].starts_with("checkresults[1]: state 9"));
    assert!(parse_nrdp(&json!({"results": []})).is_err());
}

#[test]
fn icinga_bodies_as_its_documentation_shows_them() {
    let body = json!({
        "type": "Service",
        "filter": "host.name==\"example.localdomain\" && service.name==\"passive-ping\"",
        "exit_status": 2,
        "plugin_output": "PING CRITICAL - Packet loss = 100%",
        "performance_data": ["rta=5000.000000ms;3000.000000;5000.000000;0.000000", "pl=100%;80;100;0"],
        "check_source": "example.localdomain",
        "ttl": 300
    });
    let r = parse_icinga(&body, None, None).unwrap();
    assert_eq!(r.host, "example.localdomain");
    assert_eq!(r.service.as_deref(), Some("passive-ping"));
    assert_eq!(r.result.state, CheckState::Critical);
    assert_eq!(r.result.output, "PING CRITICAL - Packet loss = 100%");
    assert_eq!(
        r.result.perfdata,
        "rta=5000.000000ms;3000.000000;5000.000000;0.000000 pl=100%;80;100;0"
    );
    assert_eq!(r.ttl_ms, Some(300_000));
    assert_eq!(r.source.as_deref(), Some("example.localdomain"));
    let by_param = parse_icinga(
        &json!({"exit_status": 1, "plugin_output": "DOWN"}),
        None,
        Some("web1!http"),
    )
    .unwrap();
    assert_eq!(
        (by_param.host.as_str(), by_param.service.as_deref()),
        ("web1", Some("http"))
    );
    let host = parse_icinga(
        &json!({"type": "Host", "filter": "host.name==\"web1\"", "exit_status": 1, "plugin_output": "DOWN"}),
        None,
        None,
    )
    .unwrap();
    assert_eq!(
        (host.service, host.result.state),
        (None, CheckState::Critical)
    );
    for (body, expected) in [
        (
            json!({"filter": "host.name==\"h\"", "plugin_output": "x"}),
            "exit_status",
        ),
        (
            json!({"filter": "host.name==\"h\"", "exit_status": 0}),
            "plugin_output",
        ),
        (
            json!({"exit_status": 0, "plugin_output": "x"}),
            "name the object",
        ),
        (
            json!({"filter": "match(\"h*\", host.name)", "exit_status": 0, "plugin_output": "x"}),
            "only `name==\"value\"`",
        ),
    ] {
        let error = parse_icinga(&body, None, None).unwrap_err();
        assert!(error.contains(expected), "{body}: {error}");
    }
}

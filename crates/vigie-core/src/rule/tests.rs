//! Behaviour of the Sigma engine: one test per modifier and condition form, wildcard and escape
//! edge cases, the rejection reasons, and two corpus tests over SigmaHQ (load rate and recall on
//! its regression events).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::sigma::{CompiledRule, SigmaLevel, compile_rule, load_rules, parse_rules};

fn rule_text(detection: &str) -> String {
    let indented: String = detection.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "title: test rule\nid: 00000000-0000-0000-0000-000000000001\nlevel: high\nlogsource:\n    product: windows\ndetection:\n{indented}"
    )
}

fn compile_with(
    detection: &str,
    placeholders: &HashMap<String, Vec<String>>,
) -> Result<CompiledRule, String> {
    let text = rule_text(detection);
    let mut parsed = parse_rules(&text);
    assert_eq!(parsed.len(), 1, "one document");
    let rule = parsed.remove(0).map_err(|(_, e)| e.reason)?;
    compile_rule(rule, "test.yml", placeholders).map_err(|e| e.reason)
}

fn compile(detection: &str) -> CompiledRule {
    match compile_with(detection, &HashMap::new()) {
        Ok(rule) => rule,
        Err(reason) => panic!("rule rejected: {reason}\n{detection}"),
    }
}

fn rejection(detection: &str) -> String {
    match compile_with(detection, &HashMap::new()) {
        Ok(_) => panic!("rule accepted but should be rejected:\n{detection}"),
        Err(reason) => reason,
    }
}

/// Asserts, for each event, whether the rule fires.
fn check(detection: &str, cases: &[(Value, bool)]) {
    let rule = compile(detection);
    for (event, expected) in cases {
        assert_eq!(
            rule.matches(event),
            *expected,
            "rule:\n{detection}\nevent: {event}"
        );
    }
}

fn cmd(line: &str) -> Value {
    json!({ "CommandLine": line })
}

// ---- values, wildcards, escapes ----

#[test]
fn plain_string_matches_whole_value_case_insensitively() {
    check(
        "sel:\n    Image: 'C:\\Windows\\cmd.exe'\ncondition: sel",
        &[
            (json!({"Image": "c:\\windows\\CMD.EXE"}), true),
            (json!({"Image": "C:\\Windows\\cmd.exe.bak"}), false),
            (json!({"Other": "C:\\Windows\\cmd.exe"}), false),
        ],
    );
}

#[test]
fn star_and_question_mark_are_anchored_wildcards() {
    check(
        "sel:\n    Image: '*\\cmd.?xe'\ncondition: sel",
        &[
            (json!({"Image": "C:\\x\\cmd.exe"}), true),
            (json!({"Image": "\\cmd.Exe"}), true),
            (json!({"Image": "C:\\x\\cmd.exe "}), false),
            (json!({"Image": "C:\\x\\cmd.xe"}), false),
        ],
    );
    check(
        "sel:\n    f: 'a*b*c'\ncondition: sel",
        &[
            (json!({"f": "abc"}), true),
            (json!({"f": "aXXbYYc"}), true),
            (json!({"f": "ab"}), false),
            (json!({"f": "abcX"}), false),
        ],
    );
}

#[test]
fn escaped_wildcards_are_literal() {
    check(
        "sel:\n    f: 'what\\?'\ncondition: sel",
        &[
            (json!({"f": "what?"}), true),
            (json!({"f": "whatX"}), false),
        ],
    );
    check(
        "sel:\n    f: 'a\\*b'\ncondition: sel",
        &[(json!({"f": "a*b"}), true), (json!({"f": "aXb"}), false)],
    );
}

#[test]
fn backslashes_follow_the_spec_escaping_rules() {
    // `\\` is one backslash; a lone `\` before a normal character is kept.
    check(
        "sel:\n    f: 'C:\\\\Windows\\System32'\ncondition: sel",
        &[(json!({"f": "C:\\Windows\\System32"}), true)],
    );
    // `\\*` is a backslash followed by a wildcard.
    check(
        "sel:\n    f: 'dir\\\\*'\ncondition: sel",
        &[
            (json!({"f": "dir\\anything"}), true),
            (json!({"f": "dirx"}), false),
        ],
    );
    // three and four backslashes are a double backslash.
    check(
        "sel:\n    f: '\\\\\\x'\ncondition: sel",
        &[(json!({"f": "\\\\x"}), true)],
    );
    check(
        "sel:\n    f: '\\\\\\\\x'\ncondition: sel",
        &[(json!({"f": "\\\\x"}), true)],
    );
}

#[test]
fn wildcard_edge_cases() {
    check(
        "sel:\n    f: '*'\ncondition: sel",
        &[
            (json!({"f": ""}), true),
            (json!({"f": "anything"}), true),
            (json!({}), false),
        ],
    );
    // `?` is one character, not one byte; case folding is Unicode.
    check(
        "sel:\n    f: 'caf?'\ncondition: sel",
        &[
            (json!({"f": "café"}), true),
            (json!({"f": "CAFÉ"}), true),
            (json!({"f": "caf"}), false),
        ],
    );
    check(
        "sel:\n    f: 'É*'\ncondition: sel",
        &[(json!({"f": "école"}), true)],
    );
    // a trailing lone backslash is literal
    check(
        "sel:\n    f|endswith: 'dir\\'\ncondition: sel",
        &[
            (json!({"f": "C:\\dir\\"}), true),
            (json!({"f": "C:\\dir"}), false),
        ],
    );
    // stars do not overlap: `ab*ba` needs two distinct ends
    check(
        "sel:\n    f: 'ab*ba'\ncondition: sel",
        &[(json!({"f": "aba"}), false), (json!({"f": "abba"}), true)],
    );
    check(
        "sel:\n    f|contains: 'a*c'\ncondition: sel",
        &[
            (json!({"f": "xxabcxx"}), true),
            (json!({"f": "xxcbaxx"}), false),
        ],
    );
}

#[test]
fn empty_string_matches_only_empty_value() {
    check(
        "sel:\n    f: ''\ncondition: sel",
        &[
            (json!({"f": ""}), true),
            (json!({"f": "x"}), false),
            (json!({}), false),
        ],
    );
}

#[test]
fn null_matches_null_or_absent_field() {
    check(
        "sel:\n    f: null\ncondition: sel",
        &[
            (json!({"f": null}), true),
            (json!({}), true),
            (json!({"f": ""}), false),
        ],
    );
}

#[test]
fn numbers_compare_numerically_or_as_text() {
    check(
        "sel:\n    EventID: 4688\ncondition: sel",
        &[
            (json!({"EventID": 4688}), true),
            (json!({"EventID": 4688.0}), true),
            (json!({"EventID": "4688"}), true),
            (json!({"EventID": 46880}), false),
        ],
    );
}

#[test]
fn booleans_match_json_booleans_and_their_text() {
    check(
        "sel:\n    f: true\ncondition: sel",
        &[
            (json!({"f": true}), true),
            (json!({"f": "True"}), true),
            (json!({"f": false}), false),
        ],
    );
}

#[test]
fn list_values_are_ored_and_map_keys_anded() {
    let detection = "sel:\n    a: [x, y]\n    b: z\ncondition: sel";
    check(
        detection,
        &[
            (json!({"a": "y", "b": "z"}), true),
            (json!({"a": "x", "b": "q"}), false),
            (json!({"a": "w", "b": "z"}), false),
        ],
    );
}

#[test]
fn list_of_maps_is_ored() {
    check(
        "sel:\n    - a: x\n    - b: y\ncondition: sel",
        &[
            (json!({"a": "x"}), true),
            (json!({"b": "y"}), true),
            (json!({"a": "y"}), false),
        ],
    );
}

#[test]
fn list_field_value_matches_if_any_element_matches() {
    check(
        "sel:\n    tags|contains: evil\ncondition: sel",
        &[
            (json!({"tags": ["good", "very-EVIL"]}), true),
            (json!({"tags": ["good"]}), false),
        ],
    );
}

#[test]
fn keywords_search_every_value_of_the_event() {
    check(
        "keywords:\n    - 'mimikatz'\n    - 'sekurlsa::*'\ncondition: keywords",
        &[
            (json!({"a": {"b": "run Mimikatz now"}}), true),
            (json!({"x": ["sekurlsa::logonpasswords"]}), true),
            (json!({"x": "nothing"}), false),
        ],
    );
}

#[test]
fn keyword_all_requires_every_keyword() {
    check(
        "keywords:\n    '|all':\n        - foo\n        - bar\ncondition: keywords",
        &[
            (json!({"a": "foo", "b": "bar"}), true),
            (json!({"a": "foo"}), false),
        ],
    );
}

#[test]
fn dotted_field_names_reach_nested_objects_and_flat_keys_win() {
    check(
        "sel:\n    process.name: cmd.exe\ncondition: sel",
        &[
            (json!({"process": {"name": "cmd.exe"}}), true),
            (json!({"process.name": "cmd.exe"}), true),
        ],
    );
}

#[test]
fn default_field_source_finds_evtx_event_data_and_system_attributes() {
    let event = json!({"Event": {
        "System": {"EventID": 1, "Channel": "Security",
                   "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}},
        "EventData": {"Image": "C:\\a\\cmd.exe"}
    }});
    check(
        "sel:\n    EventID: 1\n    Channel: Security\n    Provider_Name: Microsoft-Windows-Sysmon\n    Image|endswith: '\\cmd.exe'\ncondition: sel",
        &[(event, true)],
    );
}

#[test]
fn custom_field_source_maps_names() {
    let rule = compile("sel:\n    Image: x\ncondition: sel");
    let event = json!({"proc": {"exe": "X"}});
    let source = |event: &Value, name: &str| -> Option<Value> {
        (name == "Image").then(|| event["proc"]["exe"].clone())
    };
    assert!(source(&event, "Image").is_some());
    fn mapped<'e>(event: &'e Value, name: &str) -> Option<&'e Value> {
        match name {
            "Image" => event.get("proc")?.get("exe"),
            _ => None,
        }
    }
    assert!(rule.matches_with(&event, &mapped));
    assert!(!rule.matches(&event));
}

#[test]
fn odd_event_shapes_never_panic() {
    let rule = compile(
        "sel:\n    a|contains: x\n    b|re: '^y'\n    c|cidr: 10.0.0.0/8\n    d|gt: 3\nkw:\n    - foo\ncondition: sel or kw",
    );
    for event in [
        json!(null),
        json!(1),
        json!("foo"),
        json!([1, 2]),
        json!({"a": {"nested": "x"}, "b": [null, 1], "c": 5, "d": "NaN"}),
    ] {
        let _ = rule.matches(&event);
    }
}

#[test]
fn default_field_source_ignores_spaces_in_windows_data_names() {
    let event = json!({"Event": {"EventData": {"Source Name": "Real-Time Protection"}}});
    check(
        "sel:\n    SourceName: real-time protection\ncondition: sel",
        &[(event, true)],
    );
}

#[test]
fn yaml_1_1_words_and_leading_zeros_stay_text() {
    check(
        "sel:\n    a: y\n    b: no\n    c: 0012\ncondition: sel",
        &[
            (json!({"a": "y", "b": "NO", "c": "0012"}), true),
            (json!({"a": "y", "b": "no", "c": 12}), false),
        ],
    );
}

#[test]
fn keyword_maps_search_inside_values() {
    check(
        "keywords:\n    '|all':\n        - foo\n        - bar\ncondition: keywords",
        &[
            (json!({"a": "xfoox", "b": ["xbarx"]}), true),
            (json!({"a": "foobar"}), true),
            (json!({"a": "fo"}), false),
        ],
    );
}

// ---- modifiers ----

#[test]
fn contains_startswith_endswith() {
    check(
        "sel:\n    CommandLine|contains: ' -enc '\ncondition: sel",
        &[
            (cmd("powershell -ENC abc"), true),
            (cmd("powershell -e abc"), false),
        ],
    );
    check(
        "sel:\n    CommandLine|startswith: 'power'\ncondition: sel",
        &[(cmd("PowerShell -x"), true), (cmd("x powershell"), false)],
    );
    check(
        "sel:\n    CommandLine|endswith: '.ps1'\ncondition: sel",
        &[(cmd("run a.PS1"), true), (cmd("a.ps1 run"), false)],
    );
}

#[test]
fn all_modifier_requires_every_value() {
    check(
        "sel:\n    CommandLine|contains|all:\n        - 'a'\n        - 'b'\ncondition: sel",
        &[(cmd("xaxbx"), true), (cmd("xax"), false)],
    );
}

#[test]
fn windash_matches_every_dash_variant() {
    check(
        "sel:\n    CommandLine|windash|contains: ' -exec bypass'\ncondition: sel",
        &[
            (cmd("ps -exec bypass"), true),
            (cmd("ps /exec bypass"), true),
            (cmd("ps \u{2013}exec bypass"), true),
            (cmd("ps \u{2014}exec bypass"), true),
            (cmd("ps \u{2015}exec bypass"), true),
            (cmd("ps exec bypass"), false),
        ],
    );
}

#[test]
fn re_is_case_sensitive_unanchored_and_takes_i_m_s() {
    check(
        "sel:\n    CommandLine|re: 'ab+c'\ncondition: sel",
        &[(cmd("xxabbbcxx"), true), (cmd("ABC"), false)],
    );
    check(
        "sel:\n    CommandLine|re|i: '^abc$'\ncondition: sel",
        &[(cmd("ABC"), true), (cmd("ABCD"), false)],
    );
    check(
        "sel:\n    CommandLine|re|m: '^b$'\ncondition: sel",
        &[(cmd("a\nb\nc"), true)],
    );
    check(
        "sel:\n    CommandLine|re|s: 'a.b'\ncondition: sel",
        &[(cmd("a\nb"), true)],
    );
    check(
        "sel:\n    CommandLine|re: 'a.b'\ncondition: sel",
        &[(cmd("a\nb"), false)],
    );
}

#[test]
fn base64_encodes_the_value() {
    // base64("cmd") = "Y21k"
    check(
        "sel:\n    f|base64: 'cmd'\ncondition: sel",
        &[
            (json!({"f": "Y21k"}), true),
            (json!({"f": "y21k"}), true),
            (json!({"f": "Y21kX"}), false),
        ],
    );
    check(
        "sel:\n    f|base64|contains: 'cmd'\ncondition: sel",
        &[(json!({"f": "xxY21kxx"}), true)],
    );
}

#[test]
fn base64offset_matches_the_value_at_any_byte_offset() {
    let rule = compile("sel:\n    f|base64offset|contains: 'http://'\ncondition: sel");
    for prefix in ["", "a", "ab", "abc"] {
        let encoded = super::sigma::base64_for_tests(format!("{prefix}http://example").as_bytes());
        assert!(
            rule.matches(&json!({ "f": encoded })),
            "offset {}",
            prefix.len()
        );
    }
    assert!(!rule.matches(&json!({"f": super::sigma::base64_for_tests(b"https://x")})));
}

#[test]
fn base64offset_variants_are_the_pysigma_ones() {
    assert_eq!(
        super::sigma::base64_offsets_for_tests(b"/bin/bash"),
        vec![
            "L2Jpbi9iYXNo".to_owned(),
            "9iaW4vYmFza".to_owned(),
            "vYmluL2Jhc2".to_owned()
        ]
    );
}

#[test]
fn utf16_modifiers_encode_before_base64() {
    // base64(utf16le("ab")) = "YQBiAA=="
    check(
        "sel:\n    f|wide|base64: 'ab'\ncondition: sel",
        &[(json!({"f": "YQBiAA=="}), true)],
    );
    check(
        "sel:\n    f|utf16le|base64: 'ab'\ncondition: sel",
        &[(json!({"f": "YQBiAA=="}), true)],
    );
    // utf16be("ab") = 00 61 00 62
    check(
        "sel:\n    f|utf16be|base64: 'ab'\ncondition: sel",
        &[(json!({"f": "AGEAYg=="}), true)],
    );
    // utf16 adds the FF FE byte order mark
    check(
        "sel:\n    f|utf16|base64: 'ab'\ncondition: sel",
        &[(json!({"f": "//5hAGIA"}), true)],
    );
}

#[test]
fn cidr_matches_ipv4_and_ipv6_networks() {
    check(
        "sel:\n    ip|cidr:\n        - 10.0.0.0/8\n        - 'fe80::/10'\ncondition: sel",
        &[
            (json!({"ip": "10.1.2.3"}), true),
            (json!({"ip": "11.1.2.3"}), false),
            (json!({"ip": "fe80::1"}), true),
            (json!({"ip": "2001:db8::1"}), false),
            (json!({"ip": "not an ip"}), false),
        ],
    );
}

#[test]
fn exists_checks_presence() {
    check(
        "sel:\n    f|exists: true\ncondition: sel",
        &[
            (json!({"f": "x"}), true),
            (json!({"f": null}), false),
            (json!({}), false),
        ],
    );
    check(
        "sel:\n    f|exists: false\ncondition: sel",
        &[(json!({}), true), (json!({"f": 1}), false)],
    );
}

#[test]
fn cased_is_case_sensitive() {
    check(
        "sel:\n    f|cased: 'Secret'\ncondition: sel",
        &[
            (json!({"f": "Secret"}), true),
            (json!({"f": "secret"}), false),
        ],
    );
    check(
        "sel:\n    f|contains|cased: 'Sec'\ncondition: sel",
        &[
            (json!({"f": "xSecx"}), true),
            (json!({"f": "xsecx"}), false),
        ],
    );
}

#[test]
fn neq_holds_when_no_value_matches() {
    check(
        "sel:\n    f|neq:\n        - a\n        - b\ncondition: sel",
        &[
            (json!({"f": "c"}), true),
            (json!({"f": "A"}), false),
            (json!({"f": "b"}), false),
        ],
    );
}

#[test]
fn numeric_comparisons() {
    for (modifier, expectations) in [
        ("lt", [true, false, false]),
        ("lte", [true, true, false]),
        ("gt", [false, false, true]),
        ("gte", [false, true, true]),
    ] {
        let rule = compile(&format!("sel:\n    n|{modifier}: 10\ncondition: sel"));
        for (value, expected) in [9, 10, 11].iter().zip(expectations) {
            assert_eq!(
                rule.matches(&json!({ "n": value })),
                expected,
                "{modifier} {value}"
            );
        }
        assert_eq!(
            rule.matches(&json!({"n": "9"})),
            expectations[0],
            "{modifier} as text"
        );
        assert!(!rule.matches(&json!({"n": "x"})));
    }
}

#[test]
fn time_parts_extract_from_dates() {
    let event = json!({"t": "2024-03-05T22:41:09Z"});
    for (part, value) in [
        ("minute", 41),
        ("hour", 22),
        ("day", 5),
        ("week", 10),
        ("month", 3),
        ("year", 2024),
    ] {
        check(
            &format!("sel:\n    t|{part}: {value}\ncondition: sel"),
            &[(event.clone(), true)],
        );
        check(
            &format!("sel:\n    t|{part}: {}\ncondition: sel", value + 1),
            &[(event.clone(), false)],
        );
    }
    check(
        "sel:\n    t|hour|gte: 20\ncondition: sel",
        &[(event.clone(), true)],
    );
    check(
        "sel:\n    t|week: 1\ncondition: sel",
        &[(json!({"t": "2021-01-04 00:00:00"}), true)],
    );
    check(
        "sel:\n    t|week: 53\ncondition: sel",
        &[(json!({"t": "2021-01-03 00:00:00"}), true)],
    );
}

#[test]
fn fieldref_compares_two_fields() {
    check(
        "sel:\n    User|fieldref: TargetUser\ncondition: sel",
        &[
            (json!({"User": "Bob", "TargetUser": "bob"}), true),
            (json!({"User": "Bob", "TargetUser": "alice"}), false),
            (json!({"User": "Bob"}), false),
        ],
    );
    check(
        "sel:\n    User|fieldref|neq: TargetUser\ncondition: sel",
        &[
            (json!({"User": "Bob", "TargetUser": "alice"}), true),
            (json!({"User": "a", "TargetUser": "a"}), false),
        ],
    );
    check(
        "sel:\n    Cmd|fieldref|contains: Image\ncondition: sel",
        &[(json!({"Cmd": "run x.exe now", "Image": "X.EXE"}), true)],
    );
}

#[test]
fn expand_resolves_placeholders_at_compile_time() {
    let placeholders = HashMap::from([(
        "Admins".to_owned(),
        vec!["root".to_owned(), "adm*".to_owned()],
    )]);
    let rule = compile_with(
        "sel:\n    User|expand: '%Admins%'\ncondition: sel",
        &placeholders,
    )
    .expect("placeholder resolves");
    assert!(rule.matches(&json!({"User": "ROOT"})));
    assert!(rule.matches(&json!({"User": "admin"})));
    assert!(!rule.matches(&json!({"User": "bob"})));
    let reason = compile_with(
        "sel:\n    User|expand: '%Nope%'\ncondition: sel",
        &placeholders,
    )
    .expect_err("rejected");
    assert_eq!(
        reason,
        "search `sel`, field `User|expand`: unresolved placeholder `%Nope%`"
    );
}

// ---- conditions ----

#[test]
fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
    let detection = "a:\n    f: a\nb:\n    g: b\nc:\n    h: c\ncondition: a or b and not c";
    check(
        detection,
        &[
            (json!({"f": "a", "h": "c"}), true),
            (json!({"g": "b"}), true),
            (json!({"g": "b", "h": "c"}), false),
        ],
    );
}

#[test]
fn brackets_override_precedence() {
    check(
        "a:\n    f: a\nb:\n    g: b\nc:\n    h: c\ncondition: (a or b) and not c",
        &[
            (json!({"f": "a"}), true),
            (json!({"f": "a", "h": "c"}), false),
        ],
    );
    check(
        "a:\n    f: a\nb:\n    g: b\ncondition: not (a or b)",
        &[(json!({}), true), (json!({"g": "b"}), false)],
    );
}

#[test]
fn one_of_and_all_of_patterns() {
    let detection = "selection_a:\n    f: a\nselection_b:\n    g: b\nfilter:\n    h: c\ncondition: all of selection_* and not 1 of filter*";
    check(
        detection,
        &[
            (json!({"f": "a", "g": "b"}), true),
            (json!({"f": "a"}), false),
            (json!({"f": "a", "g": "b", "h": "c"}), false),
        ],
    );
    check(
        "sel1:\n    f: a\nsel2:\n    g: b\ncondition: 1 of sel*",
        &[(json!({"g": "b"}), true), (json!({}), false)],
    );
}

#[test]
fn them_ignores_identifiers_starting_with_underscore() {
    let detection = "a:\n    f: a\n_helper:\n    g: b\ncondition: all of them";
    check(detection, &[(json!({"f": "a"}), true)]);
    check(
        "a:\n    f: a\nb:\n    g: b\ncondition: 1 of them",
        &[(json!({"g": "b"}), true), (json!({}), false)],
    );
}

#[test]
fn condition_list_is_ored() {
    check(
        "a:\n    f: a\nb:\n    g: b\ncondition:\n    - a\n    - b",
        &[(json!({"g": "b"}), true), (json!({}), false)],
    );
}

// ---- rejections ----

#[test]
fn rejects_with_precise_reasons() {
    for (detection, expected) in [
        (
            "sel:\n    f|nope: x\ncondition: sel",
            "search `sel`, field `f|nope`: unknown modifier `nope`",
        ),
        (
            "sel:\n    f|re|contains: x\ncondition: sel",
            "search `sel`, field `f|re|contains`: modifier `contains` cannot be combined with `re`",
        ),
        (
            "sel:\n    f|contains|startswith: x\ncondition: sel",
            "search `sel`, field `f|contains|startswith`: modifiers `contains` and `startswith` cannot be combined",
        ),
        (
            "sel:\n    f|i: x\ncondition: sel",
            "search `sel`, field `f|i`: modifier `i` is only valid after `re`",
        ),
        (
            "sel:\n    f|re: '(?<=a)b'\ncondition: sel",
            "search `sel`, field `f|re`: bad regex `(?<=a)b`: error: look-around, including look-ahead and look-behind, is not supported",
        ),
        (
            "sel:\n    f|cidr: 10.0.0.0/33\ncondition: sel",
            "search `sel`, field `f|cidr`: bad cidr network `10.0.0.0/33`",
        ),
        (
            "sel:\n    f|gt: abc\ncondition: sel",
            "search `sel`, field `f|gt`: comparison needs a numeric value, found `abc`",
        ),
        (
            "sel:\n    f|exists: yes please\ncondition: sel",
            "search `sel`, field `f|exists`: modifier `exists` needs a single boolean value",
        ),
        (
            "sel:\n    f|all: x\ncondition: sel",
            "search `sel`, field `f|all`: modifier `all` needs a list of at least two values",
        ),
        (
            "sel:\n    f|contains|base64: x\ncondition: sel",
            "search `sel`, field `f|contains|base64`: modifier `base64` after `contains`: wildcards cannot be encoded",
        ),
        (
            "sel:\n    f: x\ncondition: sel and other",
            "condition: undefined search identifier `other`",
        ),
        (
            "sel:\n    f: x\ncondition: 1 of filter*",
            "condition: pattern `filter*` matches no search identifier",
        ),
        (
            "sel:\n    f: x\ncondition: (sel and sel))",
            "condition: unexpected `)` at column 14",
        ),
        (
            "sel:\n    f: x\ncondition: (sel",
            "condition: unexpected end at column 5, expected `)`",
        ),
        (
            "sel:\n    f: x\ncondition: sel and",
            "condition: unexpected end at column 8, expected a search identifier",
        ),
        (
            "sel:\n    f: x\ncondition: sel | count() > 5",
            "condition: unexpected character `|` at column 5",
        ),
        (
            "sel:\n    f: x\ncondition: 2 of sel",
            "condition: unsupported quantifier `2 of` at column 1 (only `1 of` and `all of`)",
        ),
    ] {
        assert_eq!(rejection(detection), expected, "{detection}");
    }
}

#[test]
fn deeply_nested_conditions_are_rejected_not_overflowing() {
    let condition = format!("{}sel{}", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(
        rejection(&format!("sel:\n    f: x\ncondition: '{condition}'")),
        "condition: nested deeper than 64 levels"
    );
    let nots = format!("{}sel", "not ".repeat(5000));
    assert_eq!(
        rejection(&format!("sel:\n    f: x\ncondition: {nots}")),
        "condition: nested deeper than 64 levels"
    );
    check(
        "sel:\n    f: x\ncondition: not not ((sel))",
        &[(json!({"f": "x"}), true)],
    );
}

#[test]
fn loader_reports_every_rejection_with_path_line_and_id() {
    let good = rule_text("sel:\n    f: x\ncondition: sel");
    let bad = rule_text("sel:\n    f|nope: x\ncondition: sel");
    let multi = format!(
        "{good}---\ntitle: many failures\nid: corr-1\ncorrelation:\n    type: event_count\n    rules: [a]\n    timespan: 1h\n---\ntitle: f\nid: filt-1\nlogsource:\n    product: windows\nfilter:\n    rules: [a]\n    selection:\n        f: x\n    condition: selection\n"
    );
    let set = load_rules(
        &[
            ("good.yml".to_owned(), good),
            ("bad.yml".to_owned(), bad),
            ("multi.yml".to_owned(), multi),
            ("broken.yml".to_owned(), "title: [unclosed\n".to_owned()),
        ],
        &HashMap::new(),
    );
    assert_eq!(set.rules.len(), 2);
    assert_eq!(set.rules[0].rule.level, Some(SigmaLevel::High));
    let summary: Vec<(String, Option<usize>, Option<String>, String)> = set
        .rejected
        .iter()
        .map(|r| (r.path.clone(), r.line, r.rule_id.clone(), r.reason.clone()))
        .collect();
    assert_eq!(summary.len(), 4, "{summary:#?}");
    assert_eq!(
        summary[0],
        (
            "bad.yml".to_owned(),
            Some(8),
            Some("00000000-0000-0000-0000-000000000001".to_owned()),
            "search `sel`, field `f|nope`: unknown modifier `nope`".to_owned()
        )
    );
    assert_eq!(
        summary[1].3,
        "correlation: missing `condition` (required for event_count)"
    );
    assert_eq!(summary[1].2.as_deref(), Some("corr-1"));
    assert_eq!(summary[2].0, "broken.yml");
    assert!(summary[2].3.starts_with("invalid yaml"), "{}", summary[2].3);
    // Filters are checked against the loaded rules, after the correlations.
    assert_eq!(
        summary[3],
        (
            "multi.yml".to_owned(),
            Some(18),
            Some("filt-1".to_owned()),
            "filter: references unknown rule `a`".to_owned()
        )
    );
}

// ---- SigmaHQ corpus ----

fn sigmahq_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sigmahq");
    if dir.join("rules").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "SigmaHQ data missing at {} (required when CI=true)",
        dir.display()
    );
    eprintln!("skipping: SigmaHQ data missing at {}", dir.display());
    None
}

fn walk(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, extension, out);
        } else if path.extension().is_some_and(|e| e == extension) {
            out.push(path);
        }
    }
}

fn read_rule_files(root: &Path) -> Vec<(String, String)> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("rules") && entry.path().is_dir() {
            walk(&entry.path(), "yml", &mut paths);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| Some((p.display().to_string(), std::fs::read_to_string(&p).ok()?)))
        .collect()
}

#[test]
fn sigmahq_corpus_loads() {
    let Some(root) = sigmahq_dir() else {
        return;
    };
    let files = read_rule_files(&root);
    let set = load_rules(&files, &HashMap::new());
    let total = set.rules.len() + set.rejected.len();
    eprintln!(
        "{} rules loaded, {} rejected",
        set.rules.len(),
        set.rejected.len()
    );
    for r in &set.rejected {
        eprintln!(
            "rejected {}:{} ({}): {}",
            r.path,
            r.line.unwrap_or(0),
            r.rule_id.as_deref().unwrap_or("-"),
            r.reason
        );
    }
    assert!(total > 1000, "corpus looks truncated: {total} documents");
    assert!(
        set.rules.len() * 100 >= total * 95,
        "{} of {total} loaded",
        set.rules.len()
    );
}

#[test]
fn sigmahq_regression_events_fire_their_rules() {
    let Some(root) = sigmahq_dir() else {
        return;
    };
    let files = read_rule_files(&root);
    let set = load_rules(&files, &HashMap::new());
    let by_stem: HashMap<String, &CompiledRule> = set
        .rules
        .iter()
        .filter_map(|r| {
            Some((
                Path::new(&r.path)
                    .file_stem()?
                    .to_string_lossy()
                    .into_owned(),
                r,
            ))
        })
        .collect();
    let by_id: HashMap<&str, &CompiledRule> = set
        .rules
        .iter()
        .filter_map(|r| Some((r.rule.id.as_deref()?, r)))
        .collect();
    let mut json_files = Vec::new();
    walk(&root.join("regression_data"), "json", &mut json_files);
    json_files.sort();
    let (mut fired, mut total) = (0, 0);
    let mut misses = Vec::new();
    for file in &json_files {
        let directory = file.parent().expect("invariant: a file has a parent");
        let stem = directory
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rule_id = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        total += 1;
        let Some(rule) = by_id.get(rule_id.as_str()).or_else(|| by_stem.get(&stem)) else {
            misses.push(format!("{stem}: rule not loaded"));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let events: Vec<Value> = serde_json::Deserializer::from_str(&text)
            .into_iter::<Value>()
            .filter_map(Result::ok)
            .collect();
        if events.iter().any(|e| rule.matches(e)) {
            fired += 1;
        } else {
            misses.push(format!("{stem}: no event fired ({} events)", events.len()));
        }
    }
    eprintln!("recall {fired}/{total}");
    // A coarse look at false positives: how many events each rule fires on, regardless of the
    // logsource (a rule firing on most events would point at a matching bug).
    let all_events: Vec<Value> = json_files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            serde_json::Deserializer::from_str(&text)
                .into_iter::<Value>()
                .filter_map(Result::ok)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut noisy: Vec<(usize, &str)> = set
        .rules
        .iter()
        .map(|r| {
            (
                all_events.iter().filter(|e| r.matches(e)).count(),
                r.path.as_str(),
            )
        })
        .filter(|(n, _)| *n * 10 > all_events.len())
        .collect();
    noisy.sort();
    eprintln!(
        "rules firing on more than 10% of the {} regression events: {}",
        all_events.len(),
        noisy.len()
    );
    for (n, path) in &noisy {
        eprintln!("noisy {n} {path}");
    }
    for miss in &misses {
        eprintln!("miss {miss}");
    }
    assert!(
        total > 100,
        "regression data looks truncated: {total} files"
    );
    assert!(fired * 100 >= total * 90, "recall {fired}/{total}");
}

/// Upper-cases every string of an event (keys kept), to exercise case folding in the index.
fn shouted(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.to_uppercase()),
        Value::Array(items) => Value::Array(items.iter().map(shouted).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shouted(v))).collect())
        }
        other => other.clone(),
    }
}

#[test]
fn indexed_engine_agrees_with_full_evaluation_on_the_sigmahq_corpus() {
    use crate::rule::logsource::EventLogSource;
    use crate::rule::sigma::SigmaEngine;
    let Some(root) = sigmahq_dir() else {
        return;
    };
    let set = load_rules(&read_rule_files(&root), &HashMap::new());
    let mut json_files = Vec::new();
    walk(&root.join("regression_data"), "json", &mut json_files);
    json_files.sort();
    let mut events: Vec<Value> = json_files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            serde_json::Deserializer::from_str(&text)
                .into_iter::<Value>()
                .filter_map(Result::ok)
                .collect::<Vec<_>>()
        })
        .collect();
    let shouting: Vec<Value> = events.iter().map(shouted).collect();
    events.extend(shouting);
    // Flat events (no logsource stated): every rule is admitted, keywords and dotted names too.
    events.push(json!({"CommandLine": "vssadmin.exe Delete Shadows /All /Quiet", "Image": "C:\\Windows\\System32\\vssadmin.exe"}));
    events.push(
        json!({"message": "Accepted password for root from 10.0.0.1", "fields": {"user": "root"}}),
    );
    // Where a name is found twice, or only without its spaces, as an attribute, under
    // `UserData` or by a dotted path: the index must place it where the full evaluation does.
    events.push(json!({"Image": "C:\\Windows\\notepad.exe", "Event": {"EventData": {"Image": "C:\\Temp\\mimikatz.exe", "CommandLine": "sekurlsa::logonpasswords"}}}));
    events.push(json!({"Event": {"System": {"Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}, "Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1}, "UserData": {"X": {"CommandLine": "vssadmin delete shadows /all"}}, "EventData": {"Parent Image": "C:\\Windows\\System32\\wmiprvse.exe", "Image": {"#text": "C:\\Windows\\System32\\cmd.exe"}}}}));
    events.push(json!({"process": {"command_line": "rclone copy C:\\data remote:", "executable": "rclone.exe"}, "process.command_line": "whoami /all"}));
    let naive = |event: &Value| -> Vec<u32> {
        let logsource = EventLogSource::of(event);
        (0u32..)
            .zip(&set.rules)
            .filter(|(_, r)| logsource.admits(&r.rule.logsource) && r.matches(event))
            .map(|(i, _)| i)
            .collect()
    };
    let engine = SigmaEngine::new(set.rules.clone());
    let stats = engine.stats();
    eprintln!(
        "{} rules, {} indexed by {} literals, {} logsources",
        stats.rules, stats.indexed, stats.literals, stats.logsources
    );
    assert!(stats.indexed * 10 >= stats.rules * 8, "{stats:?}");
    let expected: Vec<Vec<u32>> = events.iter().map(naive).collect();
    let matched: usize = expected.iter().map(Vec::len).sum();
    // The second round meets every value again: the scan memo answers for the fields whose
    // values repeat.
    for round in 0..2 {
        for (event, expected) in events.iter().zip(&expected) {
            assert_eq!(
                &engine.matching(event),
                expected,
                "round {round}, event {event}"
            );
        }
    }
    assert!(
        matched > 200,
        "{matched} matches: the comparison saw too little"
    );
}

fn engine_of(detections: &[&str]) -> crate::rule::sigma::SigmaEngine {
    crate::rule::sigma::SigmaEngine::new(detections.iter().map(|d| compile(d)).collect())
}

#[test]
fn scan_memo_replays_a_text_for_its_own_field_and_engine_only() {
    let engine = engine_of(&[
        "selection:\n    CommandLine|contains: mimikatz\ncondition: selection",
        "selection:\n    ParentCommandLine|contains: mimikatz\n    Image|endswith: \\cmd.exe\ncondition: selection",
    ]);
    let text = "run MimiKatz now";
    let cases = [
        (json!({"CommandLine": text}), vec![0]),
        (json!({"CommandLine": text}), vec![0]),
        (
            json!({"ParentCommandLine": text, "Image": "C:\\x\\cmd.exe"}),
            vec![1],
        ),
        (
            json!({"ParentCommandLine": text, "Image": "C:\\x\\calc.exe"}),
            vec![],
        ),
        (json!({"CommandLine": [text, text]}), vec![0]),
        (json!({"CommandLine": "run mimi katz"}), vec![]),
        (
            json!({"CommandLine": text, "ParentCommandLine": text, "Image": "cmd.exe"}),
            vec![0],
        ),
        (
            json!({"CommandLine": text, "ParentCommandLine": text, "Image": "\\cmd.exe"}),
            vec![0, 1],
        ),
        // The second text's literal was already seen in this event: it is remembered all the same.
        (
            json!({"CommandLine": ["a mimikatz", "b mimikatz"]}),
            vec![0],
        ),
        (json!({"CommandLine": "b mimikatz"}), vec![0]),
    ];
    for _ in 0..3 {
        for (event, expected) in &cases {
            assert_eq!(&engine.matching(event), expected, "event {event}");
        }
    }
    // Another engine on the same thread: its own literals, whatever the first one memoized.
    let other = engine_of(&["selection:\n    CommandLine|contains: ' now'\ncondition: selection"]);
    assert_eq!(other.matching(&json!({"CommandLine": text})), vec![0]);
    assert_eq!(engine.matching(&json!({"CommandLine": text})), vec![0]);
}

#[test]
fn scan_memo_stays_exact_past_its_bounds_and_for_fields_that_never_repeat() {
    let rule = "selection:\n    CommandLine|contains: '-enc '\n    Image|endswith: \\powershell.exe\ncondition: selection";
    let engine = engine_of(&[rule]);
    let full = compile(rule);
    // Distinct command lines only (the memo gives up on the field), then mixed with repeated
    // ones (it tries again, and fills past its size), some matching.
    for i in 0..40_000u32 {
        let mix = if i < 10_000 { i % 2 } else { i % 4 };
        let line = match mix {
            0 => format!("powershell -enc {i:x}"),
            1 => format!("powershell -nop {i:x}"),
            2 => "powershell -enc AAAA".to_owned(),
            _ => "powershell -nop AAAA".to_owned(),
        };
        let image = if i % 3 == 0 {
            "C:\\ps\\powershell.exe"
        } else {
            "C:\\ps\\pwsh.exe"
        };
        // Events of two logsources alternate (two routes, each with its own memo counts);
        // the rule is for Windows.
        let product = if i % 2 == 0 { "windows" } else { "linux" };
        let event = json!({"CommandLine": line, "Image": image, "product": product});
        let expected: Vec<u32> = if product == "windows" && full.matches(&event) {
            vec![0]
        } else {
            vec![]
        };
        assert_eq!(engine.matching(&event), expected, "event {i}: {event}");
    }
}

#[test]
fn keyword_scan_reads_each_scalar_whole_and_numbers_only_when_a_literal_could_be_one() {
    let engine = engine_of(&[
        "keywords:\n    - 'foobar'\ncondition: keywords",
        "keywords:\n    - '1234'\ncondition: keywords",
        "keywords:\n    - 'ärger'\ncondition: keywords",
    ]);
    let cases = [
        (json!({"a": "foo", "b": "bar"}), vec![]),
        (json!({"a": "xFOOBARx"}), vec![0]),
        (json!({"n": 991234}), vec![1]),
        (json!({"n": 99123}), vec![]),
        (json!({"deep": [{"s": "grosser ÄRGER"}]}), vec![2]),
        (json!({"a": "foo", "n": 1234, "s": "Ärger"}), vec![1, 2]),
    ];
    for (event, expected) in &cases {
        assert_eq!(&engine.matching(event), expected, "event {event}");
    }
    // Without a numeric literal, numbers are not scanned and cannot match.
    let words = engine_of(&["keywords:\n    - 'abc'\ncondition: keywords"]);
    assert_eq!(words.matching(&json!({"n": 12, "s": "xabcx"})), vec![0]);
    assert!(words.matching(&json!({"n": 12})).is_empty());
}

#[test]
fn a_large_rule_set_loads_in_file_order_whatever_the_threads_parsing_it() {
    // Enough files to be parsed on several threads; every fifth is broken, every seventh
    // holds two rules.
    let files: Vec<(String, String)> = (0..300)
        .map(|i| {
            let path = format!("rules/{i:03}.yml");
            let rule = |n: usize| {
                format!(
                    "title: rule {i} {n}\nid: 00000000-0000-0000-0000-{i:06}{n:06}\nlogsource:\n    product: windows\ndetection:\n    selection:\n        CommandLine|contains: 'marker-{i}-{n}'\n    condition: selection\n"
                )
            };
            let text = if i % 5 == 0 {
                format!("title: broken {i}\ndetection:\n    condition: nothing\n")
            } else if i % 7 == 0 {
                format!("{}---\n{}", rule(0), rule(1))
            } else {
                rule(0)
            };
            (path, text)
        })
        .collect();
    let set = load_rules(&files, &HashMap::new());
    let mut expected_rules = Vec::new();
    let mut expected_rejected = Vec::new();
    for (i, (path, _)) in files.iter().enumerate() {
        if i % 5 == 0 {
            expected_rejected.push(path.clone());
        } else {
            expected_rules.push((path.clone(), format!("rule {i} 0")));
            if i % 7 == 0 {
                expected_rules.push((path.clone(), format!("rule {i} 1")));
            }
        }
    }
    let loaded: Vec<(String, String)> = set
        .rules
        .iter()
        .map(|r| (r.path.clone(), r.rule.title.clone()))
        .collect();
    assert_eq!(loaded, expected_rules);
    let rejected: Vec<String> = set.rejected.iter().map(|r| r.path.clone()).collect();
    assert_eq!(rejected, expected_rejected);
    // And each rule still matches its own marker only.
    let engine = crate::rule::sigma::SigmaEngine::new(set.rules);
    assert_eq!(
        engine
            .matching(&json!({"CommandLine": "x marker-7-1 y"}))
            .len(),
        1
    );
}

//! The command line as a user runs it: `check-config` on a broken estate, `token create`
//! beside a running server, and a reload on SIGHUP.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use vigie::store::scratch;

use crate::durability::start_with_estate;
use crate::support::{eventually, example_estate};

fn vigie() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigie"))
}

#[test]
fn check_config_reports_every_problem_with_file_line_and_field() {
    let dir = scratch::scratch_dir("vigie_check");
    std::fs::write(
        dir.join("a.yaml"),
        "id: alpha\nname: Alpha\nassets:\n  - id: srv-1\n    kind: host\n    criticality: 9\n  - id: srv-2\n    kind: host\n    site: nowhere\n",
    )
    .unwrap();
    std::fs::write(dir.join("b.yaml"), "id: Beta Corp\nname: Beta\n").unwrap();
    let output = vigie().arg("check-config").arg(&dir).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!output.status.success(), "{stdout}");
    let a = dir.join("a.yaml").display().to_string();
    let b = dir.join("b.yaml").display().to_string();
    assert!(
        stdout.contains(&format!("{a}:6: field `assets[0].criticality`")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{a}:9: field `assets[1].site`")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{b}:1: field `id`")), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with(&format!("3 problems in {}", dir.display())),
        "{stdout}"
    );

    let ok = vigie()
        .arg("check-config")
        .arg(example_estate())
        .output()
        .unwrap();
    assert!(ok.status.success());
    assert!(
        String::from_utf8(ok.stdout)
            .unwrap()
            .contains("estate ok: 2 files, 2 clients")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_cli_token_works_and_sighup_reloads_the_estate() {
    let data = scratch::scratch_dir("vigie_cli_data");
    let estate = scratch::scratch_dir("vigie_cli_estate");
    for entry in std::fs::read_dir(example_estate()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, estate.join(path.file_name().unwrap())).unwrap();
    }
    let mut server = start_with_estate(&data, None, &estate);
    // reqwest's rustls needs the process's provider (ring) before a client is built.
    vigie::notify::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let get = |token: String, path: &'static str| {
        let (http, url) = (http.clone(), server.url.clone());
        async move {
            let response = http
                .get(format!("{url}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (
                response.status(),
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };

    // A token made by the CLI on the same data directory, while the server runs.
    let created = vigie()
        .args([
            "token",
            "create",
            "--role",
            "client",
            "--client",
            "acme-industrie",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let client_token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let (status, clients) = get(client_token.clone(), "/api/v1/clients").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(clients["clients"].as_array().unwrap().len(), 1);

    std::fs::write(
        estate.join("durand.yaml"),
        "id: durand-logistique\nname: Durand Logistique\nassets:\n  - { id: dur-wms01, kind: application, criticality: 4 }\n",
    )
    .unwrap();
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    eventually("the new client after SIGHUP", || {
        let get = get(server.token.clone(), "/api/v1/clients");
        async move {
            let (_, clients) = get.await;
            (clients["clients"].as_array().map(Vec::len) == Some(3)).then_some(())
        }
    })
    .await;

    // A broken estate is refused and the running one kept.
    std::fs::write(estate.join("broken.yaml"), "id: broken\nname: [\n").unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, clients) = get(server.token.clone(), "/api/v1/clients").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(clients["clients"].as_array().unwrap().len(), 3);

    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&estate);
}

#[test]
fn rules_check_lists_each_rejection_and_ends_with_a_summary() {
    let dir = scratch::scratch_dir("vigie_rules");
    std::fs::write(
        dir.join("good.yml"),
        "title: Shadow copies deleted\nid: 0b6c4a8e-1111-4c1a-9d3e-000000000001\nlogsource: {product: windows, category: process_creation}\n\
         detection:\n  selection:\n    Image|endswith: '\\vssadmin.exe'\n    CommandLine|contains|all: [delete, shadows]\n  condition: selection\nlevel: high\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("bad.yml"),
        "title: Bad modifier\nid: 0b6c4a8e-1111-4c1a-9d3e-000000000002\nlogsource: {product: windows}\n\
         detection:\n  selection:\n    CommandLine|sparkles: x\n  condition: selection\n",
    )
    .unwrap();
    let output = vigie().args(["rules", "check"]).arg(&dir).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!output.status.success(), "{stdout}");
    let bad = dir.join("bad.yml").display().to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(&format!(
            "{bad}:6: rule 0b6c4a8e-1111-4c1a-9d3e-000000000002: "
        )),
        "{stdout}"
    );
    assert!(lines[0].contains("sparkles"), "{stdout}");
    assert_eq!(lines[1], "1 rules loaded, 1 rejected");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vigies_own_rule_pack_loads_whole() {
    let output = vigie()
        .args(["rules", "check"])
        .arg(crate::support::example_rules())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    assert_eq!(stdout.trim_end(), "16 rules loaded, 0 rejected");
}

#[test]
fn the_rule_packs_own_tests_pass_and_a_wrong_expectation_fails() {
    let pack = crate::support::example_rules();
    let tests = pack.join("../vigie-tests");
    let output = vigie()
        .args(["rules", "test"])
        .arg(&tests)
        .arg("--rules")
        .arg(&pack)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout
            .lines()
            .all(|l| l.starts_with("ok ") || l.starts_with("rule tests: ")),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with(" passed, 0 failed"), "{stdout}");

    let dir = scratch::scratch_dir("vigie_rule_tests");
    std::fs::write(
        dir.join("wrong.yaml"),
        "cases:\n  - name: expects the wrong rule\n    events: [{client: acme, message: m, EventID: 1102}]\n    expect: [PsExec service installed]\n",
    )
    .unwrap();
    let output = vigie()
        .args(["rules", "test"])
        .arg(&dir)
        .arg("--rules")
        .arg(&pack)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("FAILED")
            && stdout.contains(
                "missing: PsExec service installed; unexpected: Security event log cleared"
            ),
        "{stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("rule tests: 0 passed, 1 failed"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rule pack, filters for every client and for one, and an estate whose clients give
/// placeholder values (or not): what `vigie rules check` and `vigie serve` say of them.
fn tuning_case() -> std::path::PathBuf {
    let dir = scratch::scratch_dir("vigie_tuning_cli");
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "rules/admin_logon.yml",
        "title: Administrator logon\nid: admin-logon\nlogsource: {category: test}\n\
         detection:\n  selection:\n    TargetUserName|expand: '%Administrators%'\n  condition: selection\n",
    );
    write(
        "rules/remote_shell.yml",
        "title: Remote shell opened\nid: remote-shell\nlogsource: {category: test}\n\
         detection:\n  selection:\n    message|contains: remote shell\n  condition: selection\n\
         ---\ntitle: Lab hosts are noise\nlogsource: {category: test}\n\
         filter:\n  rules: any\n  lab:\n    WorkstationName|startswith: lab-\n  condition: not lab\n",
    );
    let jump = "title: Jump host\nlogsource: {category: test}\n\
         filter:\n  rules: [remote-shell]\n  jump:\n    WorkstationName: JUMP01\n  condition: not jump\n";
    write("filters/alpha/jump.yml", jump);
    write("filters/nobody/jump.yml", jump);
    write(
        "estate/alpha.yaml",
        "id: alpha\nname: Alpha\ndetection:\n  placeholders:\n    Administrators: [adm-alpha]\n",
    );
    write("estate/beta.yaml", "id: beta\nname: Beta\n");
    write(
        "logsources.yaml",
        "mappings:\n  - when: {kind: waf}\n    product: acme_waf\n",
    );
    dir
}

#[test]
fn rules_check_loads_filters_and_says_which_clients_a_rule_does_not_run_for() {
    let dir = tuning_case();
    let output = vigie()
        .args(["rules", "check"])
        .arg(dir.join("rules"))
        .arg("--filters")
        .arg(dir.join("filters"))
        .arg("--estate")
        .arg(dir.join("estate"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "notices are no failure: {stdout}");
    let rule = dir.join("rules/admin_logon.yml").display().to_string();
    let nobody = dir.join("filters/nobody").display().to_string();
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!(
                "{rule}:1: rule admin-logon: notice: rule does not run for client `beta` (no `%Administrators%`)"
            ),
            format!(
                "{nobody}: notice: no client `nobody` in the estate: the filters of this directory are not applied"
            ),
            "2 rules loaded, 0 rejected, 2 filters".to_owned(),
        ]
    );

    // Without an estate, no client gives values, and every filter directory is taken as is.
    let output = vigie()
        .args(["rules", "check"])
        .arg(dir.join("rules"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!(
                "{rule}:1: rule admin-logon: notice: rule runs for no client: no client gives values for `%Administrators%`"
            ),
            "2 rules loaded, 0 rejected, 1 filters".to_owned(),
        ]
    );

    // A filter naming a rule nobody has is a failure, with its file and line.
    std::fs::write(
        dir.join("filters/alpha/typo.yml"),
        "title: Typo\nid: mf-typo\nlogsource: {category: test}\nfilter:\n  rules: [remote-shel]\n  s:\n    a: b\n  condition: not s\n",
    )
    .unwrap();
    let output = vigie()
        .args(["rules", "check"])
        .arg(dir.join("rules"))
        .arg("--filters")
        .arg(dir.join("filters"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!output.status.success(), "{stdout}");
    let typo = dir.join("filters/alpha/typo.yml").display().to_string();
    assert!(
        stdout.contains(&format!(
            "{typo}:1: rule mf-typo: filter: references unknown rule `remote-shel`"
        )),
        "{stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("2 rules loaded, 1 rejected, 3 filters"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_reads_filters_and_the_logsource_map_from_its_config_and_says_so() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tuning_case();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("vigie.yaml"),
        format!(
            "listen: 127.0.0.1:{port}\ndata_dir: data\nestate: estate\nsigma_rules: [rules]\n\
             sigma_filters: filters\nlogsource_map: logsources.yaml\nsyslog: {{enabled: false}}\n"
        ),
    )
    .unwrap();
    let mut child = vigie()
        .arg("serve")
        .arg("--config")
        .arg(dir.join("vigie.yaml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("admin token");
        printed.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let map = dir.join("logsources.yaml").display().to_string();
    assert!(
        printed.contains(&"  sigma:  2 rules loaded, 0 rejected, 2 filters, 2 notices (each logged with its reason)".to_owned()),
        "{printed:#?}"
    );
    assert!(
        printed.contains(&format!("  logsource map: 1 entries from {map}")),
        "{printed:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

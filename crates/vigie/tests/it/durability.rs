//! A 2xx means on disk: the real binary is killed with SIGKILL right after acknowledging,
//! and a restart finds every acknowledged event.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use vigie::store::scratch;

use crate::support::example_estate;

pub struct Running {
    pub child: Child,
    pub url: String,
    pub token: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `vigie serve` on the example estate.
fn start(data_dir: &std::path::Path, database: Option<&str>) -> Running {
    start_with_estate(data_dir, database, &example_estate())
}

/// Starts `vigie serve` and reads its URL and admin token from what it prints.
pub fn start_with_estate(
    data_dir: &std::path::Path,
    database: Option<&str>,
    estate: &std::path::Path,
) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigie"));
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--estate")
        .arg(estate)
        .arg("--no-syslog")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(url) = database {
        command.arg("--database").arg(url);
    }
    let mut child = command.spawn().expect("vigie starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut token) = (None, None);
    while url.is_none() || token.is_none() {
        let line = lines
            .next()
            .expect("vigie prints its URL and token")
            .unwrap();
        if let Some(rest) = line.split_once(" serving ") {
            url = Some(rest.1.trim().to_owned());
        }
        if let Some(rest) = line.split_once("admin token (new at each start): ") {
            token = Some(rest.1.trim().to_owned());
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        url: url.unwrap(),
        token: token.unwrap(),
    }
}

async fn kill_nine_after_acknowledgement_loses_nothing(database: Option<String>) {
    let dir = scratch::scratch_dir("vigie_kill9");
    // reqwest's rustls needs the process's provider (ring) before a client is built.
    vigie::notify::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut first = start(&dir, database.as_deref());
    let mut acknowledged = 0u64;
    for round in 0..20 {
        let body: String = (0..500)
            .map(|i| format!("{{\"client\":\"acme-industrie\",\"severity\":\"{}\",\"message\":\"r{round} e{i}\"}}\n", if i % 100 == 0 { "error" } else { "info" }))
            .collect();
        let response = http
            .post(format!("{}/api/v1/events", first.url))
            .bearer_auth(&first.token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        acknowledged += 500;
    }
    // SIGKILL, no chance to flush anything that was not already on disk.
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let mut second = start(&dir, database.as_deref());
    let mut stored = 0u64;
    let mut before = String::new();
    loop {
        let page: Value = http
            .get(format!("{}/api/v1/events?limit=1000{before}", second.url))
            .bearer_auth(&second.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let events = page["events"].as_array().unwrap();
        stored += events.len() as u64;
        match page["next_before"].as_i64() {
            Some(next) => before = format!("&before={next}"),
            None => break,
        }
    }
    assert_eq!(
        stored, acknowledged,
        "every acknowledged event survives SIGKILL"
    );
    let incidents: Value = http
        .get(format!("{}/api/v1/incidents", second.url))
        .bearer_auth(&second.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        incidents["incidents"].as_array().unwrap().len(),
        1,
        "the incident survives too"
    );
    // The old admin token was replaced by the new one at the restart.
    let old = http
        .get(format!("{}/api/v1/incidents", second.url))
        .bearer_auth(&first.token)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sqlite_kill_nine_after_acknowledgement_loses_nothing() {
    kill_nine_after_acknowledgement_loses_nothing(None).await;
}

#[tokio::test]
async fn postgres_kill_nine_after_acknowledgement_loses_nothing() {
    let Some(db) = scratch::postgres()
        .await
        .expect("the test PostgreSQL is reachable")
    else {
        return;
    };
    kill_nine_after_acknowledgement_loses_nothing(Some(db.url.clone())).await;
}

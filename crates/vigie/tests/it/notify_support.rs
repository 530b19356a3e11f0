//! Real receivers for notification tests: an SMTP server process (Python's stdlib `smtpd`,
//! `tests/support/smtp_sink.py`) and an HTTP receiver (axum on 127.0.0.1:0).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use vigie::store::scratch;

use crate::support::eventually;

// ---- a real SMTP server ------------------------------------------------------------------

pub struct SmtpSink {
    child: tokio::process::Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the SMTP sink on `port`. `None` (the test does not run) only outside CI when
/// python3 or its `smtpd` module is missing; under `CI=true` that is a failure.
pub async fn smtp_sink(port: u16) -> Option<SmtpSink> {
    let usable = std::process::Command::new("python3")
        .args(["-W", "ignore", "-c", "import smtpd"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !usable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 with the stdlib smtpd module (Python 3.11) is required under CI=true"
        );
        eprintln!("note: python3 with smtpd is not available; this SMTP test did not run");
        return None;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
    let dir = scratch::scratch_dir("vigie_smtp_sink");
    let mut child = tokio::process::Command::new("python3")
        .args(["-W", "ignore"])
        .arg(&script)
        .arg(port.to_string())
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("the SMTP sink starts within 10 s")
        .unwrap();
    assert_eq!(first.as_deref(), Some("ready"));
    Some(SmtpSink { child, dir, port })
}

impl SmtpSink {
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
            .collect()
    }

    pub async fn wait_messages(&self, count: usize) -> Vec<Value> {
        eventually("mail at the SMTP server", || async {
            let messages = self.messages();
            (messages.len() >= count).then_some(messages)
        })
        .await
    }
}

// ---- a real HTTP receiver ----------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
    pub at: tokio::time::Instant,
}

#[derive(Clone, Default)]
pub struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn all(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub async fn wait(&self, path: &str, count: usize) -> Vec<Received> {
        eventually("requests at the receiver", || async {
            let all = self.all(path);
            (all.len() >= count).then_some(all)
        })
        .await
    }
}

/// `/ok/*` answers 200; `/fail` 500; `/flaky` 500 twice then 200; `/hang` never answers the
/// first call, then 200.
pub async fn receiver() -> (Receiver, String) {
    async fn handle(
        State(receiver): State<Receiver>,
        Path(path): Path<String>,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let seen = {
            let mut all = receiver.received.lock().unwrap();
            all.push(Received {
                method: method.to_string(),
                path: path.clone(),
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
                at: tokio::time::Instant::now(),
            });
            all.iter().filter(|r| r.path == path).count()
        };
        match path.as_str() {
            "fail" => StatusCode::INTERNAL_SERVER_ERROR,
            "flaky" if seen <= 2 => StatusCode::INTERNAL_SERVER_ERROR,
            "hang" if seen == 1 => {
                std::future::pending::<()>().await;
                StatusCode::OK
            }
            _ => StatusCode::OK,
        }
    }
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/{*path}", any(handle))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, format!("http://{addr}"))
}

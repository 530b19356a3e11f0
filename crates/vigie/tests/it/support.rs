//! Starting a server for a test and talking to it.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vigie::server::{ServeOptions, Server, start};
use vigie::store::scratch::{self, ScratchDatabase};

pub fn example_estate() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate")
}

/// Vigie's own Sigma rule pack.
pub fn example_rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules/vigie")
}

pub struct TestServer {
    pub server: Option<Server>,
    pub url: String,
    pub admin: String,
    pub http: reqwest::Client,
    _db: Option<ScratchDatabase>,
}

#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A fresh database on the engine; `None` only for PostgreSQL outside CI when no server is
/// configured.
pub async fn database(engine: Engine) -> Option<ScratchDatabase> {
    match engine {
        Engine::Sqlite => Some(scratch::sqlite()),
        Engine::Postgres => scratch::postgres()
            .await
            .expect("the test PostgreSQL is reachable"),
    }
}

/// A server on a fresh database with the example estate and syslog on ephemeral ports.
/// `None` only for PostgreSQL outside CI when no server is configured.
pub async fn serve(engine: Engine) -> Option<TestServer> {
    let db = database(engine).await?;
    let server = start(ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: db.dir.clone(),
        database: Some(db.url.clone()),
        estate_dir: example_estate(),
        alert_rules: None,
        syslog_udp: Some("127.0.0.1:0".parse().unwrap()),
        syslog_tcp: Some("127.0.0.1:0".parse().unwrap()),
        max_queued_events: 5_000,
        sigma_rules: vec![example_rules()],
    })
    .await
    .expect("the server starts");
    Some(TestServer {
        url: server.url(),
        admin: server.admin_token.clone(),
        server: Some(server),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        _db: Some(db),
    })
}

/// A server on a fresh database over an estate of the test's own (`estate`, written as one
/// file), without syslog nor Sigma rules. `None` as for `serve`.
pub async fn serve_estate(engine: Engine, estate: &str) -> Option<TestServer> {
    let db = database(engine).await?;
    let estate_dir = db.dir.join("estate");
    std::fs::create_dir_all(&estate_dir).unwrap();
    std::fs::write(estate_dir.join("clients.yaml"), estate).unwrap();
    // reqwest's rustls needs the process's provider (ring) before a client is built.
    vigie::notify::install_crypto_provider();
    let server = start_over(&db, estate_dir).await;
    let mut served = TestServer::over(server);
    served._db = Some(db);
    Some(served)
}

/// Starts the server on `db` over the estate in `estate_dir`, without syslog nor Sigma rules.
pub async fn start_over(db: &ScratchDatabase, estate_dir: PathBuf) -> Server {
    start(ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: db.dir.clone(),
        database: Some(db.url.clone()),
        estate_dir,
        alert_rules: None,
        syslog_udp: None,
        syslog_tcp: None,
        max_queued_events: 5_000,
        sigma_rules: vec![],
    })
    .await
    .expect("the server starts")
}

impl TestServer {
    /// Wraps a server started by the test itself (which keeps its database).
    pub fn over(server: Server) -> TestServer {
        TestServer {
            url: server.url(),
            admin: server.admin_token.clone(),
            server: Some(server),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            _db: None,
        }
    }

    /// The URL of the server's database (for tests that reach into the store itself).
    pub fn database_url(&self) -> &str {
        &self
            ._db
            .as_ref()
            .expect("the server's database is the test's")
            .url
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        call(
            &self.http,
            reqwest::Method::GET,
            &self.url,
            path,
            token,
            None,
        )
        .await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        call(
            &self.http,
            reqwest::Method::POST,
            &self.url,
            path,
            token,
            Some(&body),
        )
        .await
    }

    /// POSTs a raw body to the ingest endpoint.
    pub async fn ingest_raw(
        &self,
        token: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}/api/v1/events", self.url))
            .bearer_auth(token)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn ingest(&self, token: &str, events: Value) -> (StatusCode, Value) {
        self.ingest_raw(
            token,
            events.to_string(),
            &[("content-type", "application/json")],
        )
        .await
    }

    /// Creates a token through the API and returns its secret.
    pub async fn token(&self, role: &str, client: Option<&str>) -> String {
        let name = format!("{role}-{}", client.unwrap_or("all"));
        let (status, body) = self
            .post(
                &self.admin,
                "/api/v1/tokens",
                json!({"name": name, "role": role, "client": client}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
    }
}

/// Polls `check` until it returns `Some`, for work the server finishes after answering
/// (syslog has no acknowledgement). Fails after 10 s.
/// One API call with a bearer token: the status and the JSON body (`null` when none).
pub async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = http
        .request(method, format!("{url}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A minimal server-sent-events reader over a streaming response.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

#[derive(Debug, Clone)]
pub struct SseMessage {
    pub id: Option<i64>,
    pub event: String,
    pub data: Value,
}

impl SseReader {
    pub async fn open(server: &TestServer, token: &str, last_event_id: Option<i64>) -> SseReader {
        let mut request = reqwest::Client::new()
            .get(format!("{}/api/v1/stream", server.url))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        SseReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next message (comments and keep-alives skipped); panics after 10 s.
    pub async fn next(&mut self) -> SseMessage {
        tokio::time::timeout(Duration::from_secs(10), self.next_inner())
            .await
            .expect("an SSE message within 10 s")
    }

    async fn next_inner(&mut self) -> SseMessage {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return SseMessage {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
            let chunk = self
                .response
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads until a message of `event` type satisfies `matches`.
    pub async fn until(&mut self, event: &str, matches: impl Fn(&Value) -> bool) -> SseMessage {
        loop {
            let message = self.next().await;
            if message.event == event && matches(&message.data) {
                return message;
            }
        }
    }
}

/// Runs a test body on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let server = $crate::support::serve($crate::support::Engine::Sqlite).await.unwrap();
                    super::$name(&server).await;
                    server.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(server) = $crate::support::serve($crate::support::Engine::Postgres).await else { return };
                    super::$name(&server).await;
                    server.stop().await;
                }
            )*
        }
    };
}

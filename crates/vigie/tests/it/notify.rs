//! Notification delivery against real receivers: a real SMTP server (Python's stdlib `smtpd`,
//! `tests/support/smtp_sink.py`), a real HTTP receiver (axum on 127.0.0.1:0), a real store.
//! Rows are put in the outbox as the responder does, through `Store::write_batch`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use vigie::notify::{
    Context, DeliveryConfig, DeliveryStatus, Destination, HttpFormat, Kind, Notification, Request,
    SmtpConfig, Transport, compose,
};
use vigie::store::scratch::{self, ScratchDatabase};
use vigie::store::{Scope, Store, WriteBatch};
use vigie_core::notify::{AlertStatus, Backoff, NotifiedAlert};

use crate::notify_support::{Received, free_port, receiver, smtp_sink};
use crate::on_both_engines;
use crate::support::{TestServer, eventually};

// ---- fixtures ----------------------------------------------------------------------------

fn context(client: &str, incident: i64) -> Context {
    Context {
        client: client.into(),
        client_name: "ACME Industrie".into(),
        incident_id: Some(incident),
        crisis_id: None,
        title: "postgres CRITICAL on ERP database".into(),
        priority: Some("P1".into()),
        status: "open".into(),
        reason: "step 2 of policy systems: not acknowledged after 5m".into(),
        recipient: "team l2-systems".into(),
        url: format!("https://vigie.example/incidents/{incident}"),
        assets: vec!["lyo-erp-db01".into()],
        alerts: vec![NotifiedAlert {
            fingerprint: "a1b2c3d4e5f60718".into(),
            status: AlertStatus::Firing,
            labels: BTreeMap::from([
                ("alertname".into(), "PostgresDown".into()),
                ("client".into(), client.into()),
                ("instance".into(), "lyo-erp-db01".into()),
            ]),
            annotations: BTreeMap::from([("summary".into(), "postgres is down".into())]),
            starts_at_ms: 1_795_774_500_000,
            ends_at_ms: None,
            url: "https://vigie.example/alerts/7".into(),
        }],
        group_key: format!("{client}/{incident}"),
    }
}

fn email_request(kind: Kind, to: &str, language: &str, incident: i64) -> Request {
    Request {
        kind,
        destination: Destination::Email {
            to: vec![to.into()],
            language: language.into(),
        },
        context: context("acme-industrie", incident),
    }
}

fn http_request(kind: Kind, format: HttpFormat, url: &str, incident: i64) -> Request {
    Request {
        kind,
        destination: Destination::Http {
            channel: "ops-webhook".into(),
            format,
            url: url.into(),
            method: "POST".into(),
            headers: BTreeMap::from([("X-Vigie-Test".into(), "yes".into())]),
            body: None,
        },
        context: context("acme-industrie", incident),
    }
}

/// Puts rows in the outbox as the responder does: in a `WriteBatch`.
async fn enqueue(store: &Store, requests: &[Request]) -> Vec<i64> {
    let first = store.next_notification_id().await.unwrap();
    let now = vigie::clock::now_ms();
    let notifications: Vec<Notification> = requests
        .iter()
        .enumerate()
        .map(|(i, request)| compose(request, first + i as i64, now))
        .collect();
    let ids = notifications.iter().map(|n| n.id).collect();
    store
        .write_batch(&WriteBatch {
            notifications,
            ..Default::default()
        })
        .await
        .unwrap();
    ids
}

fn fast_config() -> DeliveryConfig {
    DeliveryConfig {
        backoff: Backoff {
            base_ms: 100,
            max_ms: 400,
        },
        http_timeout: Duration::from_millis(500),
        smtp_timeout: Duration::from_secs(5),
        ..DeliveryConfig::default()
    }
}

struct Outbox {
    store: Arc<Store>,
    _db: ScratchDatabase,
}

async fn outbox() -> Outbox {
    let db = scratch::sqlite();
    let store = Arc::new(Store::open(&db.url).await.unwrap());
    Outbox { store, _db: db }
}

async fn row(store: &Store, id: i64) -> Notification {
    store
        .get_notification(&Scope::All, id)
        .await
        .unwrap()
        .expect("the row exists")
}

/// Waits until the row satisfies `done`.
async fn wait_row(
    store: &Store,
    id: i64,
    what: &str,
    done: impl Fn(&Notification) -> bool,
) -> Notification {
    eventually(what, || async {
        let n = row(store, id).await;
        done(&n).then_some(n)
    })
    .await
}

fn smtp_config(url: String) -> DeliveryConfig {
    DeliveryConfig {
        smtp: Some(SmtpConfig {
            url,
            from: "Vigie <vigie@example.com>".into(),
            username: None,
            password: None,
        }),
        ..fast_config()
    }
}

// ---- e-mail ------------------------------------------------------------------------------

#[tokio::test]
async fn email_goes_through_a_real_smtp_server_in_the_recipients_language() {
    let Some(sink) = smtp_sink(free_port()).await else {
        return;
    };
    let outbox = outbox().await;
    let deliverer = vigie::notify::spawn(outbox.store.clone(), smtp_config(sink.url()));
    let ids = enqueue(
        &outbox.store,
        &[
            email_request(Kind::Escalated, "thomas.petit@example.com", "en", 42),
            email_request(Kind::Escalated, "claire.martin@example.fr", "fr", 43),
        ],
    )
    .await;
    for id in &ids {
        let n = wait_row(&outbox.store, *id, "delivered", |n| {
            n.status == DeliveryStatus::Delivered
        })
        .await;
        assert_eq!(n.attempts, 1);
        assert!(n.history[0].detail.starts_with("250"), "{:?}", n.history);
    }
    let mut messages = sink.wait_messages(2).await;
    messages.sort_by_key(|m| m["to"].as_str().unwrap().to_owned());
    let (fr, en) = (&messages[0], &messages[1]);

    assert_eq!(en["to"], "thomas.petit@example.com");
    assert_eq!(en["rcpt_tos"], json!(["thomas.petit@example.com"]));
    assert_eq!(en["mail_from"], "vigie@example.com");
    assert_eq!(en["content_type"], "multipart/alternative");
    assert_eq!(
        en["subject"],
        "[Vigie P1] ACME Industrie — postgres CRITICAL on ERP database (escalated: step 2)"
    );
    let text = en["text"].as_str().unwrap();
    assert!(
        text.contains("Incident #42 — escalated: postgres CRITICAL on ERP database"),
        "{text}"
    );
    assert!(
        text.contains("Open in Vigie: https://vigie.example/incidents/42"),
        "{text}"
    );
    assert!(text.contains("[FIRING] postgres is down"), "{text}");
    let html = en["html"].as_str().unwrap();
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(html.contains("<a href=\"https://vigie.example/incidents/42\">Open in Vigie</a>"));

    assert_eq!(fr["to"], "claire.martin@example.fr");
    assert_eq!(
        fr["subject"],
        "[Vigie P1] ACME Industrie — postgres CRITICAL on ERP database (escaladé: step 2)"
    );
    let text = fr["text"].as_str().unwrap();
    assert!(
        text.contains("Incident n°43 — escaladé : postgres CRITICAL"),
        "{text}"
    );
    assert!(
        text.contains("Ouvrir dans Vigie : https://vigie.example/incidents/43"),
        "{text}"
    );
    let html = fr["html"].as_str().unwrap();
    assert!(html.contains("<html lang=\"fr\">"), "{html}");
    assert!(html.contains("Priorité"), "{html}");
    deliverer.abort();
}

#[tokio::test]
async fn an_unreachable_smtp_server_keeps_the_mail_failing_until_it_comes_up() {
    let port = free_port();
    let outbox = outbox().await;
    let deliverer = vigie::notify::spawn(
        outbox.store.clone(),
        smtp_config(format!("smtp://127.0.0.1:{port}")),
    );
    let [id] = enqueue(
        &outbox.store,
        &[email_request(
            Kind::Triggered,
            "oncall@example.com",
            "en",
            42,
        )],
    )
    .await[..] else {
        unreachable!()
    };
    let failing = wait_row(&outbox.store, id, "two failed attempts", |n| {
        n.attempts >= 2
    })
    .await;
    assert_eq!(failing.status, DeliveryStatus::Failing);
    assert!(failing.next_attempt_ms.is_some());
    let error = failing.last_error.clone().unwrap();
    assert!(error.contains("SMTP"), "{error}");
    assert!(failing.history.iter().all(|a| !a.ok));

    let Some(sink) = smtp_sink(port).await else {
        return;
    };
    let delivered = wait_row(&outbox.store, id, "delivered once the server is up", |n| {
        n.status == DeliveryStatus::Delivered
    })
    .await;
    assert!(delivered.attempts >= 3);
    assert_eq!(delivered.next_attempt_ms, None);
    assert!(delivered.history.last().unwrap().ok);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 1, "delivered once, never twice");
    deliverer.abort();
}

#[tokio::test]
async fn without_an_smtp_server_every_attempt_fails_and_the_row_is_kept() {
    let outbox = outbox().await;
    let deliverer = vigie::notify::spawn(outbox.store.clone(), fast_config());
    let [id] = enqueue(
        &outbox.store,
        &[email_request(
            Kind::Triggered,
            "oncall@example.com",
            "en",
            42,
        )],
    )
    .await[..] else {
        unreachable!()
    };
    let n = wait_row(&outbox.store, id, "two failed attempts", |n| {
        n.attempts >= 2
    })
    .await;
    assert_eq!(n.status, DeliveryStatus::Failing);
    assert_eq!(
        n.last_error.as_deref(),
        Some("no SMTP server configured (notify.smtp.url)")
    );
    assert!(n.next_attempt_ms.is_some());
    deliverer.abort();
}

// ---- webhooks ----------------------------------------------------------------------------

fn assert_rfc3339(value: &Value) {
    let text = value.as_str().expect("a string time");
    assert!(
        text.len() >= 20 && text.ends_with('Z') && text.as_bytes()[10] == b'T',
        "{text}"
    );
}

/// Alertmanager's documented webhook body (version 4).
fn assert_alertmanager_v4(body: &Value, status: &str) {
    assert_eq!(body["version"], "4");
    assert!(body["groupKey"].is_string());
    assert_eq!(body["status"], status);
    assert!(body["receiver"].is_string());
    for key in ["groupLabels", "commonLabels", "commonAnnotations"] {
        let map = body[key]
            .as_object()
            .unwrap_or_else(|| panic!("{key}: {body}"));
        assert!(map.values().all(Value::is_string), "{key}");
    }
    assert!(body["externalURL"].is_string());
    assert!(body["truncatedAlerts"].is_u64());
    let alerts = body["alerts"].as_array().expect("alerts");
    assert!(!alerts.is_empty());
    for alert in alerts {
        assert!(matches!(
            alert["status"].as_str(),
            Some("firing" | "resolved")
        ));
        assert!(
            alert["labels"]
                .as_object()
                .unwrap()
                .values()
                .all(Value::is_string)
        );
        assert!(
            alert["annotations"]
                .as_object()
                .unwrap()
                .values()
                .all(Value::is_string)
        );
        assert_rfc3339(&alert["startsAt"]);
        assert_rfc3339(&alert["endsAt"]);
        assert!(alert["generatorURL"].is_string());
        assert!(alert["fingerprint"].is_string());
    }
}

#[tokio::test]
async fn webhooks_receive_alertmanager_slack_mattermost_teams_generic_and_beacon_bodies() {
    let (receiver, base) = receiver().await;
    let outbox = outbox().await;
    let deliverer = vigie::notify::spawn(outbox.store.clone(), fast_config());
    let beacon = Request {
        kind: Kind::BeaconOn,
        destination: Destination::Http {
            channel: "lamp".into(),
            format: HttpFormat::Beacon,
            url: format!("{base}/ok/beacon"),
            method: "PUT".into(),
            headers: BTreeMap::from([("Content-Type".into(), "text/plain".into())]),
            body: Some("ON".into()),
        },
        context: context("acme-industrie", 42),
    };
    let ids = enqueue(
        &outbox.store,
        &[
            http_request(
                Kind::Triggered,
                HttpFormat::Alertmanager,
                &format!("{base}/ok/am"),
                42,
            ),
            http_request(
                Kind::Resolved,
                HttpFormat::Alertmanager,
                &format!("{base}/ok/am-resolved"),
                42,
            ),
            http_request(
                Kind::Escalated,
                HttpFormat::Slack,
                &format!("{base}/ok/slack"),
                42,
            ),
            http_request(
                Kind::Escalated,
                HttpFormat::Mattermost,
                &format!("{base}/ok/mattermost"),
                42,
            ),
            http_request(
                Kind::Escalated,
                HttpFormat::Teams,
                &format!("{base}/ok/teams"),
                42,
            ),
            http_request(
                Kind::Escalated,
                HttpFormat::Generic,
                &format!("{base}/ok/generic"),
                42,
            ),
            beacon,
        ],
    )
    .await;
    for id in &ids {
        let n = wait_row(&outbox.store, *id, "delivered", |n| {
            n.status == DeliveryStatus::Delivered
        })
        .await;
        assert_eq!(n.history[0].detail, "HTTP 200 OK");
    }
    let json_of = |path: &str| -> (Received, Value) {
        let received = receiver.all(path).pop().unwrap();
        assert_eq!(received.method, "POST", "{path}");
        assert_eq!(
            received.headers["content-type"], "application/json",
            "{path}"
        );
        assert_eq!(received.headers["x-vigie-test"], "yes", "{path}");
        let body = serde_json::from_str(&received.body).unwrap();
        (received, body)
    };

    let (_, am) = json_of("ok/am");
    assert_alertmanager_v4(&am, "firing");
    assert_eq!(am["receiver"], "ops-webhook");
    assert_eq!(am["groupKey"], "acme-industrie/42");
    assert_eq!(am["externalURL"], "https://vigie.example");
    assert_eq!(am["groupLabels"]["client"], "acme-industrie");
    assert_eq!(am["commonLabels"]["alertname"], "PostgresDown");
    assert_eq!(am["alerts"][0]["fingerprint"], "a1b2c3d4e5f60718");
    assert_eq!(am["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    let (_, resolved) = json_of("ok/am-resolved");
    assert_alertmanager_v4(&resolved, "resolved");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");

    for path in ["ok/slack", "ok/mattermost"] {
        let (_, slack) = json_of(path);
        let text = slack["text"].as_str().unwrap();
        assert!(text.contains("[Vigie P1] ACME Industrie"), "{text}");
        let attachment = &slack["attachments"][0];
        assert!(attachment["color"].is_string());
        assert!(
            attachment["text"]
                .as_str()
                .unwrap()
                .contains("postgres is down")
        );
    }
    let (_, teams) = json_of("ok/teams");
    assert_eq!(teams["@type"], "MessageCard");
    assert_eq!(teams["@context"], "https://schema.org/extensions");
    assert!(teams["title"].as_str().unwrap().starts_with("[Vigie P1]"));
    assert!(teams["themeColor"].is_string());
    let (_, generic) = json_of("ok/generic");
    assert_eq!(generic["kind"], "escalated");
    assert_eq!(generic["incident_id"], 42);
    assert_eq!(generic["priority"], "P1");
    assert_eq!(
        generic["notification_reason"],
        "step 2 of policy systems: not acknowledged after 5m"
    );
    assert_eq!(generic["alerts"][0]["fingerprint"], "a1b2c3d4e5f60718");

    let beacon = receiver.all("ok/beacon").pop().unwrap();
    assert_eq!(beacon.method, "PUT");
    assert_eq!(beacon.body, "ON");
    assert_eq!(beacon.headers["content-type"], "text/plain");
    deliverer.abort();
}

#[tokio::test]
async fn a_webhook_answering_500_is_retried_with_backoff_and_each_attempt_logged() {
    let (receiver, base) = receiver().await;
    let outbox = outbox().await;
    let deliverer = vigie::notify::spawn(outbox.store.clone(), fast_config());
    let [flaky, failing] = enqueue(
        &outbox.store,
        &[
            http_request(
                Kind::Triggered,
                HttpFormat::Generic,
                &format!("{base}/flaky"),
                1,
            ),
            http_request(
                Kind::Triggered,
                HttpFormat::Generic,
                &format!("{base}/fail"),
                2,
            ),
        ],
    )
    .await[..] else {
        unreachable!()
    };
    let n = wait_row(
        &outbox.store,
        flaky,
        "delivered at the third attempt",
        |n| n.status == DeliveryStatus::Delivered,
    )
    .await;
    assert_eq!(n.attempts, 3);
    let details: Vec<&str> = n.history.iter().map(|a| a.detail.as_str()).collect();
    assert_eq!(
        details,
        [
            "HTTP 500 Internal Server Error",
            "HTTP 500 Internal Server Error",
            "HTTP 200 OK"
        ]
    );
    let calls = receiver.all("flaky");
    assert_eq!(calls.len(), 3);
    // Backoff: 100 ms after the first failure, 200 ms after the second.
    assert!(calls[1].at - calls[0].at >= Duration::from_millis(90));
    assert!(calls[2].at - calls[1].at >= Duration::from_millis(190));
    let same_bytes = calls.iter().all(|c| c.body == calls[0].body);
    assert!(same_bytes, "a retry sends the same bytes");

    let n = wait_row(&outbox.store, failing, "four failed attempts", |n| {
        n.attempts >= 4
    })
    .await;
    assert_eq!(n.status, DeliveryStatus::Failing);
    assert!(n.next_attempt_ms.is_some());
    assert_eq!(
        n.last_error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );
    deliverer.abort();
}

#[tokio::test]
async fn a_hanging_webhook_times_out_and_is_retried() {
    let (receiver, base) = receiver().await;
    let outbox = outbox().await;
    let deliverer = vigie::notify::spawn(outbox.store.clone(), fast_config());
    let [id] = enqueue(
        &outbox.store,
        &[http_request(
            Kind::Triggered,
            HttpFormat::Generic,
            &format!("{base}/hang"),
            1,
        )],
    )
    .await[..] else {
        unreachable!()
    };
    let n = wait_row(&outbox.store, id, "delivered after a timeout", |n| {
        n.status == DeliveryStatus::Delivered
    })
    .await;
    assert_eq!(n.attempts, 2);
    assert_eq!(n.history[0].detail, "timed out after 500ms");
    assert!(!n.history[0].ok);
    assert!(n.history[0].took_ms >= 450);
    assert!(n.history[1].ok);
    assert_eq!(receiver.all("hang").len(), 2);
    deliverer.abort();
}

#[tokio::test]
async fn an_unreachable_webhook_fails_with_a_clear_detail() {
    let outbox = outbox().await;
    let deliverer = vigie::notify::spawn(outbox.store.clone(), fast_config());
    let url = format!("http://127.0.0.1:{}/hook", free_port());
    let [id] = enqueue(
        &outbox.store,
        &[http_request(Kind::Triggered, HttpFormat::Generic, &url, 1)],
    )
    .await[..] else {
        unreachable!()
    };
    let n = wait_row(&outbox.store, id, "a failed attempt", |n| n.attempts >= 1).await;
    let error = n.last_error.unwrap();
    assert!(error.starts_with("cannot connect"), "{error}");
    deliverer.abort();
}

#[tokio::test]
async fn a_restarted_deliverer_delivers_pending_rows_once() {
    let (receiver, base) = receiver().await;
    let outbox = outbox().await;
    // Rows committed while no deliverer runs (a crash after the commit).
    let requests: Vec<Request> = (1..=5)
        .map(|i| {
            http_request(
                Kind::Triggered,
                HttpFormat::Generic,
                &format!("{base}/ok/restart"),
                i,
            )
        })
        .collect();
    let ids = enqueue(&outbox.store, &requests).await;
    let first = vigie::notify::spawn(outbox.store.clone(), fast_config());
    for id in &ids {
        wait_row(&outbox.store, *id, "delivered", |n| {
            n.status == DeliveryStatus::Delivered
        })
        .await;
    }
    first.abort();
    let _ = first.await;
    // A second start finds nothing left to send.
    let second = vigie::notify::spawn(outbox.store.clone(), fast_config());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = receiver.wait("ok/restart", 5).await;
    assert_eq!(calls.len(), 5, "each row delivered once");
    let mut incidents: Vec<i64> = calls
        .iter()
        .map(|c| {
            serde_json::from_str::<Value>(&c.body).unwrap()["incident_id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    incidents.sort();
    assert_eq!(incidents, [1, 2, 3, 4, 5]);
    second.abort();
}

#[tokio::test]
async fn a_deliverer_stopped_mid_attempt_resumes_the_row_after_restart() {
    let (receiver, base) = receiver().await;
    let outbox = outbox().await;
    let config = DeliveryConfig {
        http_timeout: Duration::from_secs(30),
        ..fast_config()
    };
    let first = vigie::notify::spawn(outbox.store.clone(), config.clone());
    let [id] = enqueue(
        &outbox.store,
        &[http_request(
            Kind::Triggered,
            HttpFormat::Generic,
            &format!("{base}/hang"),
            1,
        )],
    )
    .await[..] else {
        unreachable!()
    };
    receiver.wait("hang", 1).await;
    first.abort();
    let _ = first.await;
    assert_eq!(row(&outbox.store, id).await.status, DeliveryStatus::Pending);
    let second = vigie::notify::spawn(outbox.store.clone(), config);
    let n = wait_row(&outbox.store, id, "delivered after the restart", |n| {
        n.status == DeliveryStatus::Delivered
    })
    .await;
    assert_eq!(n.attempts, 1);
    assert_eq!(receiver.all("hang").len(), 2);
    second.abort();
}

// ---- the delivery log over the API, on both engines --------------------------------------

on_both_engines!(the_delivery_log_is_scoped_to_the_tokens_client);

async fn the_delivery_log_is_scoped_to_the_tokens_client(server: &TestServer) {
    let store = server.server().state.store.clone();
    let mut bellevue = email_request(Kind::Triggered, "astreinte@bellevue.example", "fr", 7);
    bellevue.context = context("bellevue-clinic", 7);
    let ids = enqueue(
        &store,
        &[
            email_request(Kind::Triggered, "oncall@acme.example", "en", 42),
            email_request(Kind::Escalated, "oncall@acme.example", "en", 43),
            bellevue,
        ],
    )
    .await;
    let (acme_1, acme_2, other) = (ids[0], ids[1], ids[2]);
    // The test server has no SMTP relay: every attempt fails, and the rows stay.
    for id in &ids {
        wait_row(&store, *id, "a failed attempt", |n| n.attempts >= 1).await;
    }

    let admin = server.admin.clone();
    let (status, all) = server.get(&admin, "/api/v1/notifications").await;
    assert_eq!(status, 200, "{all}");
    let listed: Vec<i64> = all["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, [other, acme_2, acme_1], "newest first");
    let first = &all["notifications"][2];
    assert_eq!(first["status"], "failing");
    assert_eq!(first["destination"], "email:oncall@acme.example");
    assert_eq!(
        first["last_error"],
        "no SMTP server configured (notify.smtp.url)"
    );
    assert_eq!(first["transport"]["type"], "email");

    let acme = server.token("client", Some("acme-industrie")).await;
    let (status, mine) = server.get(&acme, "/api/v1/notifications").await;
    assert_eq!(status, 200);
    let listed: Vec<i64> = mine["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        listed,
        [acme_2, acme_1],
        "a client's token sees its own rows only"
    );
    let (status, _) = server
        .get(&acme, &format!("/api/v1/notifications/{other}"))
        .await;
    assert_eq!(status, 404, "another client's row is absent");
    let (status, _) = server
        .get(&acme, "/api/v1/notifications?client=bellevue-clinic")
        .await;
    assert_eq!(status, 200);
    let (status, one) = server
        .get(&acme, &format!("/api/v1/notifications/{acme_1}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["incident_id"], 42);

    let (_, by_incident) = server
        .get(&admin, "/api/v1/notifications?incident=43")
        .await;
    assert_eq!(by_incident["notifications"].as_array().unwrap().len(), 1);
    let (_, delivered) = server
        .get(&admin, "/api/v1/notifications?status=delivered")
        .await;
    assert_eq!(delivered["notifications"], json!([]));
    let (status, _) = server
        .get(&admin, "/api/v1/notifications?status=lost")
        .await;
    assert_eq!(status, 400);
    let (_, page) = server.get(&admin, "/api/v1/notifications?limit=1").await;
    assert_eq!(page["next_before"], other);
    let (_, newer) = server
        .get(&admin, &format!("/api/v1/notifications?after={acme_1}"))
        .await;
    assert_eq!(newer["notifications"].as_array().unwrap().len(), 2);

    let (status, _) = server
        .post(
            &acme,
            &format!("/api/v1/notifications/{acme_1}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, 403, "a client token may not retry");
    let operator = server.token("operator", None).await;
    let (status, retried) = server
        .post(
            &operator,
            &format!("/api/v1/notifications/{acme_1}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{retried}");
    let before = retried["attempts"].as_u64().unwrap();
    wait_row(&store, acme_1, "another attempt after the retry", |n| {
        u64::from(n.attempts) > before
    })
    .await;
    let (status, _) = server
        .post(&operator, "/api/v1/notifications/999999/retry", json!({}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn webhook_secrets_are_masked_in_the_api() {
    let server = crate::support::serve(crate::support::Engine::Sqlite)
        .await
        .unwrap();
    let store = server.server().state.store.clone();
    // A chat webhook's secret is its path; others carry tokens in the query.
    let secret_url = "http://127.0.0.1:9/hooks/T000/B000/s3cretpath?token=s3cret";
    let mut request = http_request(Kind::Triggered, HttpFormat::Generic, secret_url, 1);
    if let Destination::Http { headers, .. } = &mut request.destination {
        headers.insert("Authorization".into(), "Bearer s3cret".into());
    }
    let [id] = enqueue(&store, &[request]).await[..] else {
        unreachable!()
    };
    let (status, body) = server
        .get(&server.admin, &format!("/api/v1/notifications/{id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["transport"]["headers"]["Authorization"], "***");
    assert_eq!(body["transport"]["headers"]["X-Vigie-Test"], "yes");
    assert_eq!(body["transport"]["url"], "http://127.0.0.1:9/***");
    // The failed attempt's error does not repeat the URL either.
    wait_row(&store, id, "a failed attempt", |n| n.attempts >= 1).await;
    let (_, body) = server
        .get(&server.admin, &format!("/api/v1/notifications/{id}"))
        .await;
    assert!(!body.to_string().contains("s3cret"), "{body}");
    let Transport::Http { headers, url, .. } = row(&store, id).await.transport else {
        panic!("http")
    };
    assert_eq!(
        (headers["Authorization"].as_str(), url.as_str()),
        ("Bearer s3cret", secret_url),
        "the row keeps what it sends"
    );
    // A client's channels, as the estate API shows them: scheme, host and port only.
    let (status, client) = server
        .get(&server.admin, "/api/v1/clients/acme-industrie")
        .await;
    assert_eq!(status, 200, "{client}");
    let urls: Vec<&str> = client["channels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|channel| channel["url"].as_str())
        .collect();
    assert!(!urls.is_empty(), "{client}");
    assert!(
        urls.iter().all(|url| *url == "http://127.0.0.1:9095/***"),
        "{urls:?}"
    );
    server.stop().await;
}

//! Rendering: what a recipient reads, and that nothing a sender wrote can inject markup.

use std::collections::BTreeMap;

use serde_json::Value;
use vigie_core::notify::{AlertStatus, Backoff, NotifiedAlert};

use super::*;

fn context() -> Context {
    Context {
        client: "acme-industrie".into(),
        client_name: "ACME Industrie".into(),
        incident_id: Some(42),
        crisis_id: None,
        title: "postgres CRITICAL on ERP database".into(),
        priority: Some("P1".into()),
        status: "open".into(),
        reason: "step 2 of policy systems: not acknowledged after 5m".into(),
        recipient: "team l2-systems".into(),
        url: "https://vigie.example/incidents/42".into(),
        assets: vec!["lyo-erp-db01".into()],
        alerts: vec![NotifiedAlert {
            fingerprint: "f1".into(),
            status: AlertStatus::Firing,
            labels: BTreeMap::from([("alertname".into(), "PostgresDown".into())]),
            annotations: BTreeMap::from([("summary".into(), "<b>db</b> & down".into())]),
            starts_at_ms: 1_795_774_500_000,
            ends_at_ms: None,
            url: "https://vigie.example/alerts/7".into(),
        }],
        group_key: "acme-industrie/42".into(),
    }
}

fn email(kind: Kind, language: &str) -> Notification {
    compose(
        &Request {
            kind,
            destination: Destination::Email {
                to: vec!["oncall@example.com".into()],
                language: language.into(),
            },
            context: context(),
        },
        1,
        1_000,
    )
}

#[test]
fn an_escalation_subject_names_priority_client_title_and_step() {
    let Transport::Email { subject, .. } = email(Kind::Escalated, "en").transport else {
        panic!("an e-mail")
    };
    assert_eq!(
        subject,
        "[Vigie P1] ACME Industrie — postgres CRITICAL on ERP database (escalated: step 2)"
    );
}

#[test]
fn french_recipients_get_the_french_template_and_unknown_languages_english() {
    let Transport::Email { subject, text, .. } = email(Kind::Resolved, "fr-FR").transport else {
        panic!("an e-mail")
    };
    assert!(subject.contains("(résolu)"), "{subject}");
    assert!(text.contains("Ouvrir dans Vigie"), "{text}");
    let Transport::Email { text, .. } = email(Kind::Resolved, "tlh").transport else {
        panic!("an e-mail")
    };
    assert!(text.contains("Open in Vigie"), "{text}");
}

#[test]
fn html_escapes_every_value() {
    let Transport::Email { html, text, .. } = email(Kind::Triggered, "en").transport else {
        panic!("an e-mail")
    };
    assert!(html.contains("&lt;b&gt;db&lt;/b&gt; &amp; down"), "{html}");
    assert!(!html.contains("<b>db</b>"));
    assert!(text.contains("<b>db</b> & down"));
}

#[test]
fn a_composed_row_is_pending_and_due_now() {
    let row = email(Kind::Triggered, "en");
    assert_eq!(row.status, DeliveryStatus::Pending);
    assert_eq!(row.next_attempt_ms, Some(1_000));
    assert_eq!(row.destination, "email:oncall@example.com");
}

#[test]
fn a_failed_attempt_schedules_a_retry_and_a_success_clears_it() {
    let mut row = email(Kind::Triggered, "en");
    let backoff = Backoff {
        base_ms: 100,
        max_ms: 1_000,
    };
    let attempt = |ok: bool, time_ms: i64| Attempt {
        time_ms,
        ok,
        detail: if ok {
            "250 OK".into()
        } else {
            "HTTP 500".into()
        },
        took_ms: 10,
    };
    row.record(attempt(false, 2_000), &backoff);
    assert_eq!(row.status, DeliveryStatus::Failing);
    assert_eq!(row.next_attempt_ms, Some(2_110));
    row.record(attempt(false, 3_000), &backoff);
    assert_eq!(row.next_attempt_ms, Some(3_210));
    for i in 0..30 {
        row.record(attempt(false, 4_000 + i), &backoff);
    }
    assert_eq!(row.history.len(), HISTORY_LIMIT);
    assert_eq!(row.attempts, 32);
    row.record(attempt(true, 9_000), &backoff);
    assert_eq!(row.status, DeliveryStatus::Delivered);
    assert_eq!(row.next_attempt_ms, None);
    assert_eq!(row.delivered_ms, Some(9_010));
}

fn webhook(kind: Kind, format: HttpFormat) -> Value {
    let row = compose(
        &Request {
            kind,
            destination: Destination::Http {
                channel: "ops-webhook".into(),
                format,
                url: "http://127.0.0.1:9/hook".into(),
                method: "POST".into(),
                headers: BTreeMap::new(),
                body: None,
            },
            context: context(),
        },
        1,
        1_000,
    );
    let Transport::Http { body, .. } = row.transport else {
        panic!("http")
    };
    serde_json::from_str(&body).unwrap()
}

#[test]
fn alertmanager_bodies_say_resolved_for_a_resolution() {
    let firing = webhook(Kind::Triggered, HttpFormat::Alertmanager);
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["receiver"], "ops-webhook");
    assert_eq!(firing["externalURL"], "https://vigie.example");
    let resolved = webhook(Kind::Resolved, HttpFormat::Alertmanager);
    assert_eq!(resolved["status"], "resolved");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
}

#[test]
fn generic_bodies_carry_the_context() {
    let body = webhook(Kind::Escalated, HttpFormat::Generic);
    assert_eq!(body["kind"], "escalated");
    assert_eq!(body["incident_id"], 42);
    assert_eq!(body["priority"], "P1");
    assert_eq!(
        body["notification_reason"],
        "step 2 of policy systems: not acknowledged after 5m"
    );
}

#[test]
fn templates_substitute_known_names_and_keep_broken_braces() {
    let values = BTreeMap::from([("a", "<x>".to_owned())]);
    let none = BTreeMap::new();
    assert_eq!(
        render::fill("{{a}}-{{b}}-{{c", &values, &none, true),
        "&lt;x&gt;--{{c"
    );
}

#[test]
fn notify_settings_report_every_problem_with_its_key() {
    let settings: crate::config::NotifySettings = serde_saphyr::from_str(
        "smtp: { url: 'http://mail:25', from: 'not an address' }\npublic_url: vigie.example\nhttp_timeout: '5'\nretry: { base: 10m, max: 1m }\n",
    )
    .unwrap();
    let problems = settings.delivery_config().unwrap_err();
    let keys: Vec<&str> = problems
        .iter()
        .map(|p| p.split(':').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "notify.http_timeout",
            "notify.retry",
            "notify.public_url",
            "notify.smtp.url",
            "notify.smtp.from"
        ],
        "{problems:?}"
    );
}

#[test]
fn notify_settings_give_the_delivery_config() {
    let settings: crate::config::NotifySettings = serde_saphyr::from_str(
        "smtp: { url: 'smtps://user:pw@mail.example', from: 'Vigie <vigie@example.com>' }\npublic_url: https://vigie.example/\nhttp_timeout: 3s\nretry: { base: 5s, max: 5m }\n",
    )
    .unwrap();
    let config = settings.delivery_config().unwrap();
    assert_eq!(config.http_timeout, std::time::Duration::from_secs(3));
    assert_eq!(config.smtp_timeout, std::time::Duration::from_secs(10));
    assert_eq!(
        config.backoff,
        Backoff {
            base_ms: 5_000,
            max_ms: 300_000
        }
    );
    assert_eq!(config.public_url.as_deref(), Some("https://vigie.example"));
    assert_eq!(config.smtp.unwrap().url, "smtps://user:pw@mail.example");
}

//! The store test suite. Every test is a plain async function over a `Store`; the
//! `store_suite!` macro runs each of them on SQLite and on PostgreSQL, so that both engines are
//! held to the same behaviour.

use serde_json::json;
use vigie_core::event::{Event, Severity, StoredEvent};
use vigie_core::incident::model::{
    Alert, AlertStatus, Incident, IncidentStatus, Level, Priority, TimelineEntry, TimelineKind,
};

use super::scratch::{self, ScratchDatabase};
use std::sync::Arc;

use super::*;

async fn sqlite_store() -> (Store, ScratchDatabase) {
    let db = scratch::sqlite();
    (Store::open(&db.url).await.expect("sqlite opens"), db)
}

async fn postgres_store() -> Option<(Store, ScratchDatabase)> {
    let db = scratch::postgres()
        .await
        .expect("the test PostgreSQL is reachable")?;
    Some((Store::open(&db.url).await.expect("postgres opens"), db))
}

macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, db) = super::sqlite_store().await;
                    super::$name(store, &db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((store, db)) = super::postgres_store().await else { return };
                    super::$name(store, &db).await;
                }
            )*
        }
    };
}

store_suite!(
    migrations_apply_once_and_reopen_cleanly,
    events_round_trip_with_every_field,
    event_reads_are_scoped_to_the_client,
    event_filters_and_pagination,
    incidents_alerts_and_timeline_are_scoped,
    incident_filters_by_status_and_priority,
    open_state_resumes_ids_and_skips_closed_incidents,
    a_failed_batch_keeps_nothing,
    change_feed_is_ordered_and_scoped,
    tokens_are_found_and_revoked,
    estate_objects_are_upserted,
    an_existing_database_is_read_without_being_changed,
    many_records_are_written_and_upserted_in_chunks,
);

fn event(client: &str, id: i64, severity: Severity, message: &str) -> StoredEvent {
    StoredEvent {
        id,
        received_ms: 1_000 + id,
        event: Event {
            time_ms: 10_000 + id * 1_000,
            client: client.into(),
            asset: Some(format!("srv-{}", id % 3)),
            source: "http".into(),
            kind: "log".into(),
            severity,
            message: message.into(),
            fields: serde_json::Map::new(),
            raw: None,
            unparsed: false,
        },
    }
}

fn incident(id: i64, client: &str, status: IncidentStatus, priority: Priority) -> Incident {
    Incident {
        id,
        client: client.into(),
        title: format!("incident {id}"),
        status,
        priority,
        impact: Level::Medium,
        urgency: Level::High,
        group_key: "asset=srv-1".into(),
        assignee: None,
        assets: vec!["srv-1".into()],
        alert_count: 1,
        created_ms: 100,
        updated_ms: 200,
        last_signal_ms: 150,
        acknowledged_ms: None,
        resolved_ms: None,
        closed_ms: (status == IncidentStatus::Closed).then_some(300),
    }
}

fn alert(id: i64, client: &str, incident_id: i64) -> Alert {
    Alert {
        id,
        client: client.into(),
        incident_id,
        fingerprint: format!("fp{id}").into(),
        rule: "severity-error".into(),
        title: "disk full".into(),
        severity: Severity::Error,
        asset: Some("srv-1".into()),
        source: "http".into(),
        kind: "log".into(),
        status: AlertStatus::Firing,
        count: 3,
        first_seen_ms: 100,
        last_seen_ms: 150,
        last_event_id: Some(7),
        labels: vigie_core::incident::Labels::new(),
    }
}

fn timeline(incident_id: i64, client: &str, text: &str) -> TimelineEntry {
    TimelineEntry {
        incident_id,
        client: client.into(),
        time_ms: 100,
        actor: "vigie".into(),
        kind: TimelineKind::Comment,
        text: text.into(),
    }
}

fn all(limit: i64) -> EventFilter {
    EventFilter {
        limit,
        ..EventFilter::default()
    }
}

fn acme() -> Scope {
    Scope::Client("acme".into())
}

async fn migrations_apply_once_and_reopen_cleanly(store: Store, db: &ScratchDatabase) {
    store.close().await;
    let again = Store::open(&db.url)
        .await
        .expect("reopening an up-to-date database works");
    assert_eq!(again.count_events(&Scope::All).await.unwrap(), 0);
}

async fn events_round_trip_with_every_field(store: Store, _db: &ScratchDatabase) {
    let mut stored = event("acme", 1, Severity::Critical, "disk full on /var");
    stored.event.fields.insert("user".into(), json!("bob"));
    stored
        .event
        .fields
        .insert("nested".into(), json!({"a": [1, 2]}));
    stored.event.raw = Some("<10>raw line".into());
    stored.event.unparsed = true;
    let plain = event("acme", 2, Severity::Info, "ok");
    let batch = WriteBatch {
        events: vec![stored.clone(), plain.clone()],
        ..WriteBatch::default()
    };
    store.write_batch(&batch).await.unwrap();
    let read = store.list_events(&Scope::All, &all(10)).await.unwrap();
    assert_eq!(read, vec![plain, stored]);
}

async fn event_reads_are_scoped_to_the_client(store: Store, _db: &ScratchDatabase) {
    let batch = WriteBatch {
        events: vec![
            event("acme", 1, Severity::Info, "a1"),
            event("globex", 2, Severity::Info, "g1"),
            event("acme", 3, Severity::Info, "a2"),
        ],
        ..WriteBatch::default()
    };
    store.write_batch(&batch).await.unwrap();
    let acme_events = store.list_events(&acme(), &all(10)).await.unwrap();
    assert_eq!(
        acme_events.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![3, 1]
    );
    assert!(acme_events.iter().all(|e| e.event.client == "acme"));
    let narrowed = Scope::Client("acme".into()).narrow(Some("globex"));
    assert!(
        store
            .list_events(&narrowed, &all(10))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.count_events(&acme()).await.unwrap(), 2);
    assert_eq!(store.count_events(&Scope::All).await.unwrap(), 3);
}

async fn event_filters_and_pagination(store: Store, _db: &ScratchDatabase) {
    let events: Vec<StoredEvent> = (1..=20)
        .map(|id| {
            let severity = if id % 5 == 0 {
                Severity::Error
            } else {
                Severity::Info
            };
            event("acme", id, severity, &format!("message 50% _{id}_"))
        })
        .collect();
    store
        .write_batch(&WriteBatch {
            events,
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    let ids = |events: Vec<StoredEvent>| events.iter().map(|e| e.id).collect::<Vec<_>>();
    let errors = EventFilter {
        min_severity: Some(Severity::Error),
        ..all(10)
    };
    assert_eq!(
        ids(store.list_events(&acme(), &errors).await.unwrap()),
        vec![20, 15, 10, 5]
    );
    let text = EventFilter {
        text: Some("50% _1".into()),
        ..all(100)
    };
    assert_eq!(
        ids(store.list_events(&acme(), &text).await.unwrap()),
        vec![19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 1]
    );
    let window = EventFilter {
        since_ms: Some(10_000 + 3_000),
        until_ms: Some(10_000 + 6_000),
        ..all(100)
    };
    assert_eq!(
        ids(store.list_events(&acme(), &window).await.unwrap()),
        vec![5, 4, 3]
    );
    let asset = EventFilter {
        asset: Some("srv-0".into()),
        ..all(100)
    };
    assert_eq!(
        ids(store.list_events(&acme(), &asset).await.unwrap()),
        vec![18, 15, 12, 9, 6, 3]
    );
    let first_page = store.list_events(&acme(), &all(7)).await.unwrap();
    let second_page = EventFilter {
        before_id: first_page.last().map(|e| e.id),
        ..all(7)
    };
    assert_eq!(ids(first_page), vec![20, 19, 18, 17, 16, 15, 14]);
    assert_eq!(
        ids(store.list_events(&acme(), &second_page).await.unwrap()),
        vec![13, 12, 11, 10, 9, 8, 7]
    );
}

async fn incidents_alerts_and_timeline_are_scoped(store: Store, _db: &ScratchDatabase) {
    let batch = WriteBatch {
        incidents: vec![
            Serialized::new(incident(1, "acme", IncidentStatus::New, Priority::P2)),
            Serialized::new(incident(2, "globex", IncidentStatus::New, Priority::P1)),
        ],
        alerts: vec![
            Serialized::new(Arc::new(alert(1, "acme", 1))),
            Serialized::new(Arc::new(alert(2, "globex", 2))),
        ],
        timeline: vec![
            (1, Serialized::new(timeline(1, "acme", "seen"))),
            (2, Serialized::new(timeline(2, "globex", "secret"))),
        ],
        ..WriteBatch::default()
    };
    store.write_batch(&batch).await.unwrap();
    assert_eq!(
        store.get_incident(&acme(), 1).await.unwrap(),
        Some(batch.incidents[0].record.clone())
    );
    assert_eq!(store.get_incident(&acme(), 2).await.unwrap(), None);
    assert_eq!(
        store.get_incident(&Scope::All, 2).await.unwrap(),
        Some(batch.incidents[1].record.clone())
    );
    assert_eq!(store.get_alert(&acme(), 2).await.unwrap(), None);
    assert_eq!(
        store.get_alert(&acme(), 1).await.unwrap(),
        Some(Alert::clone(&batch.alerts[0].record))
    );
    let listed = store
        .list_incidents(
            &acme(),
            &IncidentFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|i| i.id).collect::<Vec<_>>(), vec![1]);
    let alerts = store
        .list_alerts(
            &acme(),
            &AlertFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(alerts.iter().map(|a| a.id).collect::<Vec<_>>(), vec![1]);
    assert!(store.timeline(&acme(), 2).await.unwrap().is_empty());
    assert_eq!(
        store.timeline(&acme(), 1).await.unwrap(),
        vec![timeline(1, "acme", "seen")]
    );

    // An upsert replaces the stored record.
    let mut acked = incident(1, "acme", IncidentStatus::Acknowledged, Priority::P2);
    acked.acknowledged_ms = Some(250);
    store
        .write_batch(&WriteBatch {
            incidents: vec![Serialized::new(acked.clone())],
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(store.get_incident(&acme(), 1).await.unwrap(), Some(acked));
}

async fn incident_filters_by_status_and_priority(store: Store, _db: &ScratchDatabase) {
    let batch = WriteBatch {
        incidents: vec![
            Serialized::new(incident(1, "acme", IncidentStatus::New, Priority::P1)),
            Serialized::new(incident(
                2,
                "acme",
                IncidentStatus::Acknowledged,
                Priority::P3,
            )),
            Serialized::new(incident(3, "acme", IncidentStatus::Resolved, Priority::P1)),
            Serialized::new(incident(4, "acme", IncidentStatus::New, Priority::P4)),
        ],
        ..WriteBatch::default()
    };
    store.write_batch(&batch).await.unwrap();
    let ids = |filter: IncidentFilter| {
        let store = &store;
        async move {
            store
                .list_incidents(&acme(), &filter)
                .await
                .unwrap()
                .iter()
                .map(|i| i.id)
                .collect::<Vec<_>>()
        }
    };
    let open = IncidentFilter {
        statuses: vec![IncidentStatus::New, IncidentStatus::Acknowledged],
        limit: 10,
        ..Default::default()
    };
    assert_eq!(ids(open).await, vec![4, 2, 1]);
    let urgent = IncidentFilter {
        priorities: vec![Priority::P1],
        limit: 10,
        ..Default::default()
    };
    assert_eq!(ids(urgent).await, vec![3, 1]);
    let page = IncidentFilter {
        before_id: Some(3),
        limit: 1,
        ..Default::default()
    };
    assert_eq!(ids(page).await, vec![2]);
}

async fn open_state_resumes_ids_and_skips_closed_incidents(store: Store, _db: &ScratchDatabase) {
    let empty = store.load_open_state().await.unwrap();
    assert_eq!(
        (
            empty.next_event_id,
            empty.next_alert_id,
            empty.next_incident_id,
            empty.next_timeline_id,
            empty.next_change_seq
        ),
        (1, 1, 1, 1, 1)
    );
    let batch = WriteBatch {
        events: vec![event("acme", 41, Severity::Error, "x")],
        incidents: vec![
            Serialized::new(incident(5, "acme", IncidentStatus::New, Priority::P2)),
            Serialized::new(incident(9, "acme", IncidentStatus::Closed, Priority::P2)),
        ],
        alerts: vec![
            Serialized::new(Arc::new(alert(3, "acme", 5))),
            Serialized::new(Arc::new(alert(8, "acme", 9))),
        ],
        timeline: vec![(12, Serialized::new(timeline(5, "acme", "t")))],
        changes: vec![Change {
            seq: 30,
            client: "acme".into(),
            time_ms: 1,
            topic: "incident".into(),
            body: json!({}).to_string(),
        }],
        ..Default::default()
    };
    store.write_batch(&batch).await.unwrap();
    let state = store.load_open_state().await.unwrap();
    assert_eq!(state.incidents, vec![batch.incidents[0].record.clone()]);
    assert_eq!(state.alerts, vec![Alert::clone(&batch.alerts[0].record)]);
    assert_eq!(
        (
            state.next_event_id,
            state.next_alert_id,
            state.next_incident_id,
            state.next_timeline_id,
            state.next_change_seq
        ),
        (42, 9, 10, 13, 31)
    );
}

async fn a_failed_batch_keeps_nothing(store: Store, _db: &ScratchDatabase) {
    store
        .write_batch(&WriteBatch {
            events: vec![event("acme", 1, Severity::Info, "first")],
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    // Event 1 again: the primary key refuses it, and the incident written before must go too.
    let failing = WriteBatch {
        events: vec![
            event("acme", 2, Severity::Info, "second"),
            event("acme", 1, Severity::Info, "dup"),
        ],
        incidents: vec![Serialized::new(incident(
            1,
            "acme",
            IncidentStatus::New,
            Priority::P1,
        ))],
        ..WriteBatch::default()
    };
    assert!(store.write_batch(&failing).await.is_err());
    assert_eq!(store.count_events(&Scope::All).await.unwrap(), 1);
    assert_eq!(store.get_incident(&Scope::All, 1).await.unwrap(), None);
    // Failing in its last statement (two timeline entries with one id), after the incident.
    let failing = WriteBatch {
        incidents: vec![Serialized::new(incident(
            1,
            "acme",
            IncidentStatus::New,
            Priority::P1,
        ))],
        timeline: vec![
            (7, Serialized::new(timeline(1, "acme", "a"))),
            (7, Serialized::new(timeline(1, "acme", "b"))),
        ],
        ..WriteBatch::default()
    };
    let error = store.write_batch(&failing).await.unwrap_err();
    assert!(format!("{error:#}").contains("timeline"), "{error:#}");
    assert_eq!(store.get_incident(&Scope::All, 1).await.unwrap(), None);
    // The writer is not left inside the failed transaction: the next batch commits.
    store
        .write_batch(&WriteBatch {
            events: vec![event("acme", 2, Severity::Info, "second")],
            incidents: vec![Serialized::new(incident(
                1,
                "acme",
                IncidentStatus::New,
                Priority::P1,
            ))],
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(store.count_events(&Scope::All).await.unwrap(), 2);
    assert!(store.get_incident(&Scope::All, 1).await.unwrap().is_some());
}

async fn change_feed_is_ordered_and_scoped(store: Store, _db: &ScratchDatabase) {
    let changes: Vec<Change> = (1..=6)
        .map(|seq| Change {
            seq,
            client: if seq % 2 == 0 {
                "acme".into()
            } else {
                "globex".into()
            },
            time_ms: seq,
            topic: "incident".into(),
            body: json!({ "seq": seq }).to_string(),
        })
        .collect();
    store
        .write_batch(&WriteBatch {
            changes: changes.clone(),
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    let seqs = |c: Vec<Change>| c.iter().map(|c| c.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(store.changes_since(&acme(), 0, 100).await.unwrap()),
        vec![2, 4, 6]
    );
    assert_eq!(
        seqs(store.changes_since(&acme(), 2, 100).await.unwrap()),
        vec![4, 6]
    );
    assert_eq!(
        seqs(store.changes_since(&Scope::All, 3, 2).await.unwrap()),
        vec![4, 5]
    );
    assert_eq!(
        store.changes_since(&Scope::All, 0, 1).await.unwrap()[0],
        changes[0]
    );
}

async fn tokens_are_found_and_revoked(store: Store, _db: &ScratchDatabase) {
    let token = TokenRecord {
        id: "0123456789ab".into(),
        name: "ingest-acme".into(),
        role: "ingest".into(),
        client: Some("acme".into()),
        hash: "$argon2id$…".into(),
        created_ms: 5,
        revoked_ms: None,
    };
    store.insert_token(&token).await.unwrap();
    assert_eq!(
        store.find_token("0123456789ab").await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(store.find_token("missing").await.unwrap(), None);
    assert!(store.revoke_token("0123456789ab", 9).await.unwrap());
    assert!(
        !store.revoke_token("0123456789ab", 10).await.unwrap(),
        "revoking twice reports nothing revoked"
    );
    let revoked = store.find_token("0123456789ab").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_ms, Some(9));
    assert_eq!(store.list_tokens().await.unwrap(), vec![revoked]);
}

async fn estate_objects_are_upserted(store: Store, _db: &ScratchDatabase) {
    let object = EstateObject {
        kind: "asset".into(),
        client_id: "acme".into(),
        object_id: "srv-9".into(),
        body: json!({"id": "srv-9", "kind": "host"}),
    };
    store.put_estate_object(&object, 1).await.unwrap();
    let changed = EstateObject {
        body: json!({"id": "srv-9", "kind": "host", "criticality": 5}),
        ..object
    };
    store.put_estate_object(&changed, 2).await.unwrap();
    assert_eq!(store.list_estate_objects().await.unwrap(), vec![changed]);
}

async fn an_existing_database_is_read_without_being_changed(store: Store, db: &ScratchDatabase) {
    let object = EstateObject {
        kind: "client".into(),
        client_id: "acme".into(),
        object_id: "acme".into(),
        body: json!({"id": "acme", "name": "ACME"}),
    };
    store.put_estate_object(&object, 1).await.unwrap();
    let reader = Store::open_existing(&db.url)
        .await
        .expect("an up-to-date database opens to be read, its writer still open");
    assert_eq!(
        reader.list_estate_objects().await.unwrap(),
        vec![object.clone()]
    );
    if reader.engine() == Engine::Sqlite {
        assert!(
            reader.put_estate_object(&object, 2).await.is_err(),
            "SQLite is opened read-only"
        );
    }
    reader.close().await;

    // A schema behind this program's is refused, and left behind: a reader migrates nothing.
    let count = "SELECT COUNT(*) AS n FROM schema_migrations";
    let versions = |row: AnyRow| row.try_get::<i64, _>("n").unwrap();
    let before = versions(sqlx::query(count).fetch_one(&store.writer).await.unwrap());
    sqlx::query(
        "DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)",
    )
    .execute(&store.writer)
    .await
    .unwrap();
    let error = Store::open_existing(&db.url)
        .await
        .err()
        .expect("a schema behind is refused");
    assert!(
        format!("{error:#}").contains("older than this program's")
            && format!("{error:#}").contains("run `vigie migrate`"),
        "{error:#}"
    );
    let after = versions(sqlx::query(count).fetch_one(&store.writer).await.unwrap());
    assert_eq!(after, before - 1);
}

#[tokio::test]
async fn a_reader_creates_no_sqlite_database() {
    let db = scratch::sqlite();
    let file = db.dir.join("vigie.db");
    assert!(Store::open_existing(&db.url).await.is_err());
    assert!(!file.exists(), "a missing database stays missing");

    std::fs::write(&file, b"").unwrap();
    let error = Store::open_existing(&db.url)
        .await
        .err()
        .expect("an empty database has no schema");
    assert!(
        format!("{error:#}").contains("no vigie schema"),
        "{error:#}"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        0,
        "nothing written"
    );
}

#[tokio::test]
async fn a_reader_does_not_migrate_a_postgres_database() {
    let Some(db) = scratch::postgres()
        .await
        .expect("the test PostgreSQL is reachable")
    else {
        return;
    };
    for _ in 0..2 {
        // Twice: had the first created `schema_migrations`, the second would find version 0.
        let error = Store::open_existing(&db.url)
            .await
            .err()
            .expect("a fresh database has no schema");
        assert!(
            format!("{error:#}").contains("no vigie schema"),
            "{error:#}"
        );
    }
}

/// 301 alerts and incidents take chunks of 256, 32, 8 and 5 rows; written again with a new
/// state, every row is updated in place and none is added.
async fn many_records_are_written_and_upserted_in_chunks(store: Store, _db: &ScratchDatabase) {
    let write = |status: IncidentStatus, count: u64| {
        let incidents = (1..=301)
            .map(|id| Serialized::new(incident(id, "acme", status, Priority::P3)))
            .collect();
        let alerts = (1..=301)
            .map(|id| {
                Serialized::new(Arc::new(Alert {
                    count,
                    ..alert(id, "acme", id)
                }))
            })
            .collect();
        let timeline = (1..=301)
            .map(|id| {
                (
                    id + count as i64 * 1_000,
                    Serialized::new(timeline(id, "acme", "t")),
                )
            })
            .collect();
        WriteBatch {
            incidents,
            alerts,
            timeline,
            ..WriteBatch::default()
        }
    };
    store
        .write_batch(&write(IncidentStatus::New, 1))
        .await
        .unwrap();
    store
        .write_batch(&write(IncidentStatus::Acknowledged, 2))
        .await
        .unwrap();
    let state = store.load_open_state().await.unwrap();
    assert_eq!(state.incidents.len(), 301);
    assert!(
        state
            .incidents
            .iter()
            .all(|incident| incident.status == IncidentStatus::Acknowledged)
    );
    assert_eq!(state.alerts.len(), 301);
    assert!(state.alerts.iter().all(|alert| alert.count == 2));
    assert_eq!(
        state
            .alerts
            .iter()
            .map(|alert| alert.id)
            .collect::<Vec<_>>(),
        (1..=301).collect::<Vec<_>>()
    );
    assert_eq!(state.next_timeline_id, 2_302);
    // The filter columns moved with the bodies.
    let count = |status: IncidentStatus| {
        let store = &store;
        async move {
            let filter = IncidentFilter {
                statuses: vec![status],
                limit: 1_000,
                ..IncidentFilter::default()
            };
            store.list_incidents(&acme(), &filter).await.unwrap().len()
        }
    };
    assert_eq!(count(IncidentStatus::Acknowledged).await, 301);
    assert_eq!(count(IncidentStatus::New).await, 0);
}

#[test]
fn rows_are_written_in_few_statements_of_few_sizes() {
    let sizes = |n: usize| -> Vec<usize> {
        let rows: Vec<usize> = (0..n).collect();
        let chunks: Vec<&[usize]> = statement_chunks(&rows).collect();
        // Every row once, in order.
        assert_eq!(chunks.concat(), rows);
        chunks.iter().map(|chunk| chunk.len()).collect()
    };
    assert_eq!(sizes(0), Vec::<usize>::new());
    assert_eq!(sizes(1), [1]);
    assert_eq!(sizes(8), [8]);
    assert_eq!(sizes(15), [8, 7]);
    assert_eq!(sizes(100), [64, 32, 4]);
    assert_eq!(sizes(301), [256, 32, 8, 5]);
    assert_eq!(sizes(513), [256, 256, 1]);
}

#[test]
fn placeholders_are_made_anonymous_in_order() {
    let anonymous = |sql: &str| {
        let mut out = String::new();
        anonymous_placeholders(sql, &mut out).map(|count| (out, count))
    };
    assert_eq!(
        anonymous(
            "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT (a) DO UPDATE SET b = excluded.b"
        ),
        Some((
            "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO UPDATE SET b = excluded.b"
                .to_owned(),
            2
        ))
    );
    assert_eq!(
        anonymous("INSERT INTO t VALUES (?,?),(?,?)"),
        Some(("INSERT INTO t VALUES (?,?),(?,?)".to_owned(), 4))
    );
    // Quoted text is not a placeholder.
    assert_eq!(
        anonymous("INSERT INTO s (name, body) VALUES ('$1 ?', $1)"),
        Some((
            "INSERT INTO s (name, body) VALUES ('$1 ?', ?)".to_owned(),
            1
        ))
    );
    // Placeholders that are not the values in order cannot be made anonymous.
    assert_eq!(anonymous("SELECT $2, $1"), None);
    assert_eq!(anonymous("SELECT $1, $1"), None);
    assert_eq!(anonymous("SELECT ?2"), None);
    assert_eq!(anonymous("SELECT :name"), None);
}

#[test]
fn a_batch_becomes_one_script_when_it_can() {
    let mut statements = Statements::default();
    statements
        .push(
            sqlx::query("INSERT INTO a (x, y) VALUES ($1, $2)")
                .bind(1_i64)
                .bind("one"),
            "a",
        )
        .unwrap();
    statements
        .push(sqlx::query("DELETE FROM b WHERE x = ?").bind(2_i64), "b")
        .unwrap();
    assert_eq!(
        statements.script().as_deref(),
        Some("BEGIN IMMEDIATE;INSERT INTO a (x, y) VALUES (?, ?);DELETE FROM b WHERE x = ?;COMMIT")
    );
    // A statement whose placeholders do not take its values in order: one by one.
    statements
        .push(
            sqlx::query("UPDATE c SET x = $2 WHERE y = $1")
                .bind(1_i64)
                .bind(2_i64),
            "c",
        )
        .unwrap();
    assert_eq!(statements.script(), None);
    // Too many values for one script.
    let mut statements = Statements::default();
    for _ in 0..=SCRIPT_MAX_PARAMETERS / 4 {
        statements
            .push(
                sqlx::query("INSERT INTO d VALUES (?, ?, ?, ?)")
                    .bind(1_i64)
                    .bind(2_i64)
                    .bind(3_i64)
                    .bind(4_i64),
                "d",
            )
            .unwrap();
    }
    assert_eq!(statements.script(), None);
}

/// On SQLite a small batch — every table's statement, the responder's included — goes to the
/// database as one script.
#[tokio::test]
async fn a_small_sqlite_batch_is_one_script() {
    let (store, _db) = sqlite_store().await;
    let batch = WriteBatch {
        events: vec![event("acme", 1, Severity::Info, "first")],
        incidents: vec![Serialized::new(incident(
            1,
            "acme",
            IncidentStatus::New,
            Priority::P1,
        ))],
        alerts: vec![Serialized::new(Arc::new(alert(1, "acme", 1)))],
        timeline: vec![(1, Serialized::new(timeline(1, "acme", "opened")))],
        response: response::ResponseRows {
            forget_escalations: vec![9],
            throttle: Some(crate::response::Throttle::default()),
            ..response::ResponseRows::default()
        },
        ..WriteBatch::default()
    };
    let statements = store.batch_statements(&batch).unwrap();
    let script = statements.script().expect("one script");
    assert!(
        script.starts_with("BEGIN IMMEDIATE;INSERT INTO events"),
        "{script}"
    );
    assert!(
        script.contains(";DELETE FROM escalations WHERE incident_id = ?;"),
        "{script}"
    );
    assert!(script.ends_with(";COMMIT"), "{script}");
    store.write_batch(&batch).await.unwrap();
    assert!(store.get_incident(&acme(), 1).await.unwrap().is_some());
    assert_eq!(store.count_events(&acme()).await.unwrap(), 1);
}

#[tokio::test]
async fn metrics_count_what_sqlite_holds() {
    let (store, _db) = sqlite_store().await;
    let text = crate::metrics::Metrics::default().render(store.metrics());
    let bytes: i64 = text
        .lines()
        .find_map(|line| line.strip_prefix("vigie_sqlite_memory_bytes "))
        .expect("the gauge is rendered")
        .parse()
        .expect("an integer");
    // An open database holds its schema, its statements and the migrations' pages at least.
    // (Other tests of this process open and close databases too: only the sign is certain.)
    assert!(bytes > 0, "{bytes}");
}

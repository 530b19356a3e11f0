//! The durable store: SQLite (the embedded default) or PostgreSQL, behind one `Store`.
//!
//! Invariants guarded here:
//! - every read that returns client data takes a `Scope` and filters on `client_id` in SQL,
//!   so a client's token can never read another client's rows, whatever the handler does;
//! - a `WriteBatch` is one transaction: events, alerts, incidents, timeline and change-feed
//!   rows of a batch are on disk together (SQLite WAL with `synchronous=FULL`, PostgreSQL
//!   commit) or not at all;
//! - nothing outside this module writes SQL. The two engines share the statements in `sql/`
//!   (sqlx's `Any` driver with `$N` placeholders works on both); they differ in connection
//!   set-up and in their migration files;
//! - `Store::open` creates and migrates; `Store::open_existing` (the hunt's) changes nothing.

mod checks;
mod migrate;
mod notifications;
pub mod perfdata;
pub mod response;
mod rows;
pub mod scratch;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Execute, Executor, Row};
use vigie_core::event::{Severity, StoredEvent};
use vigie_core::incident::model::{
    Alert, AlertStatus, Incident, IncidentStatus, Priority, TimelineEntry,
};

pub use checks::{CheckFilter, CheckRecord};
pub use notifications::NotificationFilter;
pub use rows::{Change, Serialized, TokenRecord};

/// Which engine a `Store` talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Whose data a query may return. Handlers derive it from the caller's token; the store
/// applies it in SQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Client(String),
}

impl Scope {
    pub fn allows(&self, client: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Client(own) => own == client,
        }
    }

    /// Narrows a scope by an explicit client filter: a client token asking for another
    /// client gets a scope that matches nothing rather than an error that would confirm the
    /// other client exists.
    pub fn narrow(&self, client: Option<&str>) -> Scope {
        match (self, client) {
            (Scope::All, Some(c)) => Scope::Client(c.to_owned()),
            (Scope::Client(own), Some(c)) if own != c => Scope::Client(String::new()),
            _ => self.clone(),
        }
    }
}

/// Everything one pipeline batch writes, committed in one transaction.
#[derive(Default, Debug)]
pub struct WriteBatch {
    pub events: Vec<StoredEvent>,
    /// Each alert, incident and timeline entry with its JSON body, serialized once.
    pub alerts: Vec<Serialized<std::sync::Arc<Alert>>>,
    pub incidents: Vec<Serialized<Incident>>,
    pub timeline: Vec<(i64, Serialized<TimelineEntry>)>,
    pub changes: Vec<Change>,
    /// Escalations, crises, business-service health and silences (the responder's rows).
    pub response: response::ResponseRows,
    /// Notifications to deliver (the outbox), committed with the decision that made them.
    pub notifications: Vec<crate::notify::Notification>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.alerts.is_empty()
            && self.incidents.is_empty()
            && self.timeline.is_empty()
            && self.changes.is_empty()
            && self.response.is_empty()
            && self.notifications.is_empty()
    }
}

#[derive(Default, Debug, Clone)]
pub struct EventFilter {
    pub asset: Option<String>,
    pub min_severity: Option<Severity>,
    pub source: Option<String>,
    pub kind: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Case-sensitive substring of the message.
    pub text: Option<String>,
    /// Only events with an id below this one (pagination, newest first).
    pub before_id: Option<i64>,
    pub limit: i64,
}

#[derive(Default, Debug, Clone)]
pub struct IncidentFilter {
    pub statuses: Vec<IncidentStatus>,
    pub priorities: Vec<Priority>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

#[derive(Default, Debug, Clone)]
pub struct AlertFilter {
    pub status: Option<AlertStatus>,
    pub incident_id: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// What the pipeline needs to resume after a restart.
#[derive(Debug, Default)]
pub struct OpenState {
    pub incidents: Vec<Incident>,
    pub alerts: Vec<Alert>,
    pub next_event_id: i64,
    pub next_alert_id: i64,
    pub next_incident_id: i64,
    pub next_timeline_id: i64,
    pub next_change_seq: i64,
}

/// One estate object kept by the store (created through the API).
#[derive(Debug, Clone, PartialEq)]
pub struct EstateObject {
    pub kind: String,
    pub client_id: String,
    pub object_id: String,
    pub body: Value,
}

pub struct Store {
    engine: Engine,
    /// The single writer's connection (SQLite allows one writer; PostgreSQL shares the pool).
    writer: AnyPool,
    readers: AnyPool,
    metrics: crate::metrics::StoreMetrics,
    /// Woken after a commit that inserted notifications: the deliverer waits on it.
    outbox: std::sync::Arc<tokio::sync::Notify>,
}

// Events are inserted this many rows per statement: 10 columns × 500 stays far below
// SQLite's 32,766 bound parameters and PostgreSQL's 65,535.
const EVENT_ROWS_PER_STATEMENT: usize = 500;

/// The SQLite writer's page cache, in KiB. Pages it does not hold come from the kernel's
/// page cache with a read. 16 MiB ingests as fast as 64 MiB did (alternated runs of `vigie
/// bench ingest`, BENCHMARKS.md) and holds 48 MiB less.
const WRITER_CACHE_KIB: i64 = 16_384;

impl Store {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    /// `sqlite:///path/to/vigie.db` or `postgres://user@host:port/db`.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let engine = engine_of(url)?;
        let (writer, readers) = match engine {
            Engine::Sqlite => {
                let url = if url.contains('?') {
                    url.to_owned()
                } else {
                    format!("{url}?mode=rwc")
                };
                // The writer's page cache holds the hot index pages of the event tables (see
                // `WRITER_CACHE_KIB`); the readers serve pages of results.
                let connect = |max: u32, cache_kib: i64| {
                    AnyPoolOptions::new()
                        .max_connections(max)
                        .after_connect(move |conn, _| {
                            Box::pin(async move {
                                // WAL lets readers run beside the writer; FULL makes every
                                // commit fsync the WAL, which is what a 2xx promises. No
                                // commit checkpoints the WAL: `checkpoint_wal` does, beside
                                // the writer (see there).
                                let pragmas = format!(
                                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
                                     PRAGMA busy_timeout=10000; PRAGMA temp_store=MEMORY; \
                                     PRAGMA cache_size=-{cache_kib}; \
                                     PRAGMA wal_autocheckpoint=0; \
                                     PRAGMA journal_size_limit={WAL_SIZE_LIMIT}"
                                );
                                conn.execute(sqlx::AssertSqlSafe(pragmas)).await?;
                                Ok(())
                            })
                        })
                        .connect(&url)
                };
                let writer = connect(1, WRITER_CACHE_KIB)
                    .await
                    .with_context(|| format!("cannot open SQLite database {url}"))?;
                // Migrate before readers open, so they see the schema.
                migrate::run(&writer, engine).await?;
                let readers = connect(4, 8_192).await?;
                tokio::spawn(checkpoint_wal(readers.clone()));
                (writer, readers)
            }
            Engine::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .with_context(|| format!("cannot connect to PostgreSQL at {url}"))?;
                migrate::run(&pool, engine).await?;
                (pool.clone(), pool)
            }
        };
        Ok(Store {
            engine,
            writer,
            readers,
            metrics: crate::metrics::StoreMetrics::default(),
            outbox: std::sync::Arc::default(),
        })
    }

    /// Opens the existing database at `url` to read it, creating and migrating nothing:
    /// SQLite read-only (a missing file is an error), PostgreSQL as it is. Its schema must be
    /// this program's (`vigie migrate` or `vigie serve` bring it up to date). Every write
    /// through the returned store fails on SQLite; on PostgreSQL the caller only reads.
    /// Errors do not repeat `url`, which may hold a password: the caller names the database.
    pub async fn open_existing(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let engine = engine_of(url)?;
        let pool = match engine {
            Engine::Sqlite => {
                let separator = if url.contains('?') { '&' } else { '?' };
                AnyPoolOptions::new()
                    .max_connections(2)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // No journal_mode: the database keeps the one serve set (WAL), and
                            // a read-only connection may not change it.
                            conn.execute("PRAGMA busy_timeout=10000").await?;
                            Ok(())
                        })
                    })
                    .connect(&format!("{url}{separator}mode=ro"))
                    .await
                    .context("cannot open the SQLite database read-only")?
            }
            Engine::Postgres => AnyPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .context("cannot connect to PostgreSQL")?,
        };
        if let Err(error) = migrate::check_current(&pool).await {
            pool.close().await;
            return Err(error);
        }
        Ok(Store {
            engine,
            writer: pool.clone(),
            readers: pool,
            metrics: crate::metrics::StoreMetrics::default(),
            outbox: std::sync::Arc::default(),
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn metrics(&self) -> &crate::metrics::StoreMetrics {
        &self.metrics
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    /// Whether `close` was called: nothing can be read or written any more.
    pub fn is_closed(&self) -> bool {
        self.writer.is_closed()
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
    }

    // ---- writes -------------------------------------------------------------------------

    /// Commits one batch atomically. On error nothing of the batch is kept.
    pub async fn write_batch(&self, batch: &WriteBatch) -> Result<()> {
        if batch.is_empty() {
            // A tick that changed nothing: no transaction to hold the writer for.
            return Ok(());
        }
        let started = Instant::now();
        let statements = self.batch_statements(batch)?;
        match self.engine {
            Engine::Sqlite => match statements.script() {
                Some(script) => self.commit_script(script, statements).await?,
                None => self.commit_each(statements).await?,
            },
            Engine::Postgres => self.commit_each(statements).await?,
        }
        if !batch.notifications.is_empty() {
            self.outbox.notify_one();
        }
        self.metrics
            .record_commit(started.elapsed(), batch.events.len());
        Ok(())
    }

    /// The statements that write `batch`, in order, with their values bound.
    fn batch_statements(&self, batch: &WriteBatch) -> Result<Statements> {
        let mut out = Statements::default();
        for chunk in batch.events.chunks(EVENT_ROWS_PER_STATEMENT) {
            let sql = values_statement(
                self.engine,
                "INSERT INTO events (id, client_id, time_ms, received_ms, severity, asset, source, kind, message, extra) VALUES ",
                10,
                chunk.len(),
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for stored in chunk {
                let event = &stored.event;
                query = query
                    .bind(stored.id)
                    .bind(event.client.as_str())
                    .bind(event.time_ms)
                    .bind(stored.received_ms)
                    .bind(event.severity.rank())
                    .bind(event.asset.as_deref())
                    .bind(event.source.as_str())
                    .bind(event.kind.as_str())
                    .bind(event.message.as_str())
                    .bind(rows::event_extra(event));
            }
            out.push(query, "events")?;
        }
        out.rows(
            &batch.incidents,
            |rows| upsert_statement(self.engine, UPSERT_INCIDENTS, 7, rows),
            |query, row| {
                let incident = &row.record;
                query
                    .bind(incident.id)
                    .bind(incident.client.as_str())
                    .bind(incident.status.as_str())
                    .bind(incident.priority.level())
                    .bind(incident.created_ms)
                    .bind(incident.updated_ms)
                    .bind(row.body.as_str())
            },
            "incidents",
        )?;
        out.rows(
            &batch.alerts,
            |rows| upsert_statement(self.engine, UPSERT_ALERTS, 7, rows),
            |query, row| {
                let alert = &row.record;
                query
                    .bind(alert.id)
                    .bind(&*alert.client)
                    .bind(alert.incident_id)
                    .bind(rows::alert_status_str(alert.status))
                    .bind(alert.severity.rank())
                    .bind(alert.last_seen_ms)
                    .bind(row.body.as_str())
            },
            "alerts",
        )?;
        out.rows(
            &batch.timeline,
            |rows| {
                values_statement(
                    self.engine,
                    "INSERT INTO timeline (id, incident_id, client_id, time_ms, body) VALUES ",
                    5,
                    rows,
                )
            },
            |query, (id, row)| {
                let entry = &row.record;
                query
                    .bind(*id)
                    .bind(entry.incident_id)
                    .bind(entry.client.as_str())
                    .bind(entry.time_ms)
                    .bind(row.body.as_str())
            },
            "timeline entries",
        )?;
        out.rows(
            &batch.changes,
            |rows| {
                values_statement(
                    self.engine,
                    "INSERT INTO changes (seq, client_id, time_ms, topic, body) VALUES ",
                    5,
                    rows,
                )
            },
            |query, change| {
                query
                    .bind(change.seq)
                    .bind(change.client.as_str())
                    .bind(change.time_ms)
                    .bind(change.topic.as_str())
                    .bind(change.body.as_str())
            },
            "changes",
        )?;
        response::response_statements(&batch.response, &mut out)?;
        notifications::insert_statements(&batch.notifications, &mut out)?;
        Ok(out)
    }

    /// Runs the statements one after the other in one transaction: one round trip each.
    async fn commit_each(&self, statements: Statements) -> Result<()> {
        let mut tx = self
            .writer
            .begin()
            .await
            .context("cannot begin transaction")?;
        for statement in statements.list {
            sqlx::query_with(statement.sql, statement.args)
                .execute(&mut *tx)
                .await
                .with_context(|| format!("cannot write {}", statement.what))?;
        }
        tx.commit().await.context("cannot commit batch")
    }

    /// Runs `script` (`Statements::script`: the transaction and its statements as one text)
    /// with every statement's values, in one round trip to SQLite's worker thread instead of
    /// one per statement.
    async fn commit_script(&self, script: String, statements: Statements) -> Result<()> {
        let mut args = sqlx::any::AnyArguments::default();
        for statement in statements.list {
            // The values in statement order: the script's anonymous placeholders take them
            // in that order, statement after statement.
            args.values.0.extend(statement.args.values.0);
        }
        let mut guard = ScriptConnection(Some(
            self.writer
                .acquire()
                .await
                .context("cannot begin transaction")?,
        ));
        let connection = guard.connection();
        let result = sqlx::query_with(sqlx::AssertSqlSafe(script), args)
            .execute(&mut **connection)
            .await;
        if let Err(error) = result {
            // The script stops at the failing statement, inside its transaction unless that
            // was the `COMMIT` itself and it went through.
            if let Err(rollback) = (&mut **connection).execute("ROLLBACK").await
                && !rollback.to_string().contains("no transaction is active")
            {
                tracing::warn!(error = %rollback, "cannot roll back a failed batch; closing the writer's connection");
                connection.close_on_drop();
            }
            guard.release();
            return Err(error).context("cannot write batch");
        }
        guard.release();
        Ok(())
    }

    // ---- pipeline state -----------------------------------------------------------------

    pub async fn load_open_state(&self) -> Result<OpenState> {
        let incidents =
            sqlx::query("SELECT body FROM incidents WHERE status <> 'closed' ORDER BY id")
                .fetch_all(&self.readers)
                .await?
                .iter()
                .map(rows::from_body::<Incident>)
                .collect::<Result<Vec<_>>>()?;
        let alerts = sqlx::query(
            "SELECT a.body FROM alerts a JOIN incidents i ON i.id = a.incident_id \
             WHERE i.status <> 'closed' ORDER BY a.id",
        )
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(rows::from_body::<Alert>)
        .collect::<Result<Vec<_>>>()?;
        let next = |table: &'static str, column: &'static str| {
            let sql = format!("SELECT COALESCE(MAX({column}), 0) + 1 AS next FROM {table}");
            let pool = self.readers.clone();
            async move {
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&pool)
                    .await?;
                anyhow::Ok(row.try_get::<i64, _>("next")?)
            }
        };
        Ok(OpenState {
            incidents,
            alerts,
            next_event_id: next("events", "id").await?,
            next_alert_id: next("alerts", "id").await?,
            next_incident_id: next("incidents", "id").await?,
            next_timeline_id: next("timeline", "id").await?,
            next_change_seq: next("changes", "seq").await?,
        })
    }

    // ---- reads, always scoped -------------------------------------------------------------

    pub async fn list_events(
        &self,
        scope: &Scope,
        filter: &EventFilter,
    ) -> Result<Vec<StoredEvent>> {
        let mut sql = SqlBuilder::new(
            "SELECT id, client_id, time_ms, received_ms, severity, asset, source, kind, message, extra FROM events WHERE 1=1",
        );
        sql.scope(scope);
        if let Some(asset) = &filter.asset {
            sql.and("asset = ", asset.clone());
        }
        if let Some(severity) = filter.min_severity {
            sql.and_i64("severity >= ", severity.rank());
        }
        if let Some(source) = &filter.source {
            sql.and("source = ", source.clone());
        }
        if let Some(kind) = &filter.kind {
            sql.and("kind = ", kind.clone());
        }
        if let Some(since) = filter.since_ms {
            sql.and_i64("time_ms >= ", since);
        }
        if let Some(until) = filter.until_ms {
            sql.and_i64("time_ms < ", until);
        }
        if let Some(text) = &filter.text {
            // strpos/instr rather than LIKE: no escaping of % and _ in what users type.
            let function = match self.engine {
                Engine::Sqlite => "instr(message, ",
                Engine::Postgres => "strpos(message, ",
            };
            sql.and_call(function, text.clone(), ") > 0");
        }
        if let Some(before) = filter.before_id {
            sql.and_i64("id < ", before);
        }
        sql.tail(" ORDER BY id DESC LIMIT ", filter.limit);
        let rows = sql.fetch_all(&self.readers).await?;
        rows.iter().map(rows::stored_event).collect()
    }

    pub async fn count_events(&self, scope: &Scope) -> Result<i64> {
        let mut sql = SqlBuilder::new("SELECT COUNT(*) AS n FROM events WHERE 1=1");
        sql.scope(scope);
        let rows = sql.fetch_all(&self.readers).await?;
        Ok(rows[0].try_get::<i64, _>("n")?)
    }

    pub async fn get_incident(&self, scope: &Scope, id: i64) -> Result<Option<Incident>> {
        let mut sql = SqlBuilder::new("SELECT body FROM incidents WHERE 1=1");
        sql.scope(scope);
        sql.and_i64("id = ", id);
        let rows = sql.fetch_all(&self.readers).await?;
        rows.first().map(rows::from_body).transpose()
    }

    pub async fn list_incidents(
        &self,
        scope: &Scope,
        filter: &IncidentFilter,
    ) -> Result<Vec<Incident>> {
        let mut sql = SqlBuilder::new("SELECT body FROM incidents WHERE 1=1");
        sql.scope(scope);
        let statuses = filter
            .statuses
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        sql.and_in("status", statuses);
        let priorities = filter.priorities.iter().map(|p| p.level()).collect();
        sql.and_in_i64("priority", priorities);
        if let Some(before) = filter.before_id {
            sql.and_i64("id < ", before);
        }
        sql.tail(" ORDER BY id DESC LIMIT ", filter.limit);
        let rows = sql.fetch_all(&self.readers).await?;
        rows.iter().map(rows::from_body).collect()
    }

    pub async fn get_alert(&self, scope: &Scope, id: i64) -> Result<Option<Alert>> {
        let mut sql = SqlBuilder::new("SELECT body FROM alerts WHERE 1=1");
        sql.scope(scope);
        sql.and_i64("id = ", id);
        let rows = sql.fetch_all(&self.readers).await?;
        rows.first().map(rows::from_body).transpose()
    }

    pub async fn list_alerts(&self, scope: &Scope, filter: &AlertFilter) -> Result<Vec<Alert>> {
        let mut sql = SqlBuilder::new("SELECT body FROM alerts WHERE 1=1");
        sql.scope(scope);
        if let Some(status) = filter.status {
            sql.and("status = ", rows::alert_status_str(status).to_owned());
        }
        if let Some(incident) = filter.incident_id {
            sql.and_i64("incident_id = ", incident);
        }
        if let Some(before) = filter.before_id {
            sql.and_i64("id < ", before);
        }
        sql.tail(" ORDER BY id DESC LIMIT ", filter.limit);
        let rows = sql.fetch_all(&self.readers).await?;
        rows.iter().map(rows::from_body).collect()
    }

    pub async fn timeline(&self, scope: &Scope, incident_id: i64) -> Result<Vec<TimelineEntry>> {
        let mut sql = SqlBuilder::new("SELECT body FROM timeline WHERE 1=1");
        sql.scope(scope);
        sql.and_i64("incident_id = ", incident_id);
        sql.tail(" ORDER BY id LIMIT ", 10_000);
        let rows = sql.fetch_all(&self.readers).await?;
        rows.iter().map(rows::from_body).collect()
    }

    /// The change feed after `after_seq`, oldest first: what a live-stream client missed.
    pub async fn changes_since(
        &self,
        scope: &Scope,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<Change>> {
        let mut sql =
            SqlBuilder::new("SELECT seq, client_id, time_ms, topic, body FROM changes WHERE 1=1");
        sql.scope(scope);
        sql.and_i64("seq > ", after_seq);
        sql.tail(" ORDER BY seq LIMIT ", limit);
        let rows = sql.fetch_all(&self.readers).await?;
        rows.iter().map(rows::change).collect()
    }

    /// The newest change's sequence number (0 when there is none).
    pub async fn last_change_seq(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM changes")
            .fetch_one(&self.readers)
            .await?;
        Ok(row.try_get::<i64, _>("seq")?)
    }

    // ---- tokens -------------------------------------------------------------------------------

    pub async fn insert_token(&self, token: &TokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (id, name, role, client_id, hash, created_ms, revoked_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.id.as_str())
        .bind(token.name.as_str())
        .bind(token.role.as_str())
        .bind(token.client.as_deref())
        .bind(token.hash.as_str())
        .bind(token.created_ms)
        .bind(token.revoked_ms)
        .execute(&self.writer)
        .await
        .context("cannot store token")?;
        Ok(())
    }

    pub async fn find_token(&self, id: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT id, name, role, client_id, hash, created_ms, revoked_ms FROM tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.readers)
        .await?;
        row.as_ref().map(rows::token).transpose()
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        sqlx::query("SELECT id, name, role, client_id, hash, created_ms, revoked_ms FROM tokens ORDER BY created_ms, id")
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(rows::token)
            .collect()
    }

    /// Marks a token revoked; returns whether a live token was revoked.
    pub async fn revoke_token(&self, id: &str, now_ms: i64) -> Result<bool> {
        let done =
            sqlx::query("UPDATE tokens SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
                .bind(now_ms)
                .bind(id)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Revokes every live token of that name (the admin token `vigie serve` prints is
    /// replaced at each start).
    pub async fn revoke_tokens_named(&self, name: &str, now_ms: i64) -> Result<u64> {
        let done =
            sqlx::query("UPDATE tokens SET revoked_ms = $1 WHERE name = $2 AND revoked_ms IS NULL")
                .bind(now_ms)
                .bind(name)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected())
    }

    // ---- estate objects created through the API -----------------------------------------------

    pub async fn put_estate_object(&self, object: &EstateObject, now_ms: i64) -> Result<()> {
        sqlx::query(include_str!("sql/upsert_estate_object.sql"))
            .bind(object.kind.as_str())
            .bind(object.client_id.as_str())
            .bind(object.object_id.as_str())
            .bind(object.body.to_string())
            .bind(now_ms)
            .execute(&self.writer)
            .await
            .context("cannot store estate object")?;
        Ok(())
    }

    pub async fn list_estate_objects(&self) -> Result<Vec<EstateObject>> {
        sqlx::query("SELECT kind, client_id, object_id, body FROM estate_objects ORDER BY kind, client_id, object_id")
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(rows::estate_object)
            .collect()
    }
}

/// The engine a database URL names.
fn engine_of(url: &str) -> Result<Engine> {
    if url.starts_with("sqlite:") {
        Ok(Engine::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Engine::Postgres)
    } else {
        bail!("unsupported database url {url:?}: expected sqlite:// or postgres://");
    }
}

/// `INSERT … VALUES ($1, …), ($11, …)` for `rows` rows of `columns` columns. SQLite gets
/// anonymous `?` placeholders: sqlx binds `$N` there by asking SQLite each parameter's name,
/// a linear search per parameter that made a 5,000-parameter insert quadratic.
fn values_statement(engine: Engine, head: &str, columns: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(head.len() + rows * columns * 6);
    sql.push_str(head);
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push(',');
            }
            match engine {
                Engine::Sqlite => sql.push('?'),
                Engine::Postgres => {
                    sql.push('$');
                    sql.push_str(&(row * columns + column + 1).to_string());
                }
            }
        }
        sql.push(')');
    }
    sql
}

/// The upserts of records kept whole: the columns of `values_statement`'s rows, then what a
/// row already there takes from the new one.
const UPSERT_INCIDENTS: (&str, &str) = (
    "INSERT INTO incidents (id, client_id, status, priority, created_ms, updated_ms, body) VALUES ",
    " ON CONFLICT (id) DO UPDATE SET status = excluded.status, priority = excluded.priority, \
     updated_ms = excluded.updated_ms, body = excluded.body",
);
const UPSERT_ALERTS: (&str, &str) = (
    "INSERT INTO alerts (id, client_id, incident_id, status, severity, last_seen_ms, body) VALUES ",
    " ON CONFLICT (id) DO UPDATE SET incident_id = excluded.incident_id, \
     status = excluded.status, severity = excluded.severity, \
     last_seen_ms = excluded.last_seen_ms, body = excluded.body",
);

fn upsert_statement(
    engine: Engine,
    (head, tail): (&str, &str),
    columns: usize,
    rows: usize,
) -> String {
    let mut sql = values_statement(engine, head, columns, rows);
    sql.push_str(tail);
    sql
}

/// Rows written with one statement each, at most this many: 7 columns × 256 stays far below
/// SQLite's 32,766 bound parameters and PostgreSQL's 65,535.
const RECORD_ROWS_PER_STATEMENT: usize = 256;

/// Rows left over below this many go in one statement of their exact size.
const EXACT_ROWS: usize = 8;

/// Splits rows into chunks of `RECORD_ROWS_PER_STATEMENT`, then the rest into chunks of
/// decreasing powers of two down to the last `EXACT_ROWS` or fewer, written at once: a table
/// is written with at most 14 statement texts (each prepared once and cached by the
/// connection), and a small batch — an alert and its incident's few timeline entries — with one
/// statement per table.
fn statement_chunks<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = if rest.len() >= RECORD_ROWS_PER_STATEMENT {
            RECORD_ROWS_PER_STATEMENT
        } else if rest.len() <= EXACT_ROWS {
            rest.len()
        } else {
            1 << rest.len().ilog2()
        };
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// One statement of a batch: its text, its values, and what it writes (for errors).
struct Statement {
    sql: sqlx::SqlStr,
    args: sqlx::any::AnyArguments,
    what: &'static str,
}

/// The statements of one batch, in the order they run.
#[derive(Default)]
pub(super) struct Statements {
    list: Vec<Statement>,
}

/// Values a batch may bind to be sent as one script: an alert or two with their incident,
/// timeline, changes and notification. Such scripts come back in the same few shapes and stay
/// prepared in the connection's statement cache. A larger batch varies with every group, so
/// its script would be parsed and planned anew at every commit: it goes statement by
/// statement, each statement text (`statement_chunks`) prepared once.
const SCRIPT_MAX_PARAMETERS: usize = 512;

impl Statements {
    /// Adds `query` with its bound values; an error if a value could not be bound.
    pub(super) fn push(&mut self, mut query: AnyQuery<'_>, what: &'static str) -> Result<()> {
        let args = query
            .take_arguments()
            .map_err(|error| anyhow::anyhow!("cannot bind the values of {what}: {error}"))?
            .unwrap_or_default();
        self.list.push(Statement {
            sql: query.sql(),
            args,
            what,
        });
        Ok(())
    }

    /// Adds the statements that write `rows` in `statement_chunks`, each chunk with the
    /// statement `statement(len)` made for that many rows and every row's values bound by
    /// `bind`.
    fn rows<'q, T>(
        &mut self,
        rows: &'q [T],
        statement: impl Fn(usize) -> String,
        bind: impl Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
        what: &'static str,
    ) -> Result<()> {
        for chunk in statement_chunks(rows) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(statement(chunk.len())));
            for row in chunk {
                query = bind(query, row);
            }
            self.push(query, what)?;
        }
        Ok(())
    }

    /// For SQLite: the batch as one text, `BEGIN IMMEDIATE; …; COMMIT`, every placeholder
    /// anonymous so that sqlx binds the values statement after statement in order. `None` when
    /// the batch binds more than `SCRIPT_MAX_PARAMETERS` values, or a statement's placeholders
    /// are not its values in order (`$1, $2…` or `?`): such a batch runs statement by statement.
    fn script(&self) -> Option<String> {
        let values: usize = self.list.iter().map(|s| s.args.values.0.len()).sum();
        if values > SCRIPT_MAX_PARAMETERS || self.list.is_empty() {
            return None;
        }
        let mut script = String::from("BEGIN IMMEDIATE;");
        for statement in &self.list {
            let placeholders = anonymous_placeholders(statement.sql.as_str(), &mut script)?;
            if placeholders != statement.args.values.0.len() {
                return None;
            }
            script.push(';');
        }
        script.push_str("COMMIT");
        Some(script)
    }
}

/// Appends `sql` to `out` with its placeholders made anonymous (`$1, $2…` in order become
/// `?`); the number of placeholders, or `None` if one is numbered out of order or names a
/// value (`?3`, `:name`). Quoted text is copied as it is.
fn anonymous_placeholders(sql: &str, out: &mut String) -> Option<usize> {
    let mut count = 0;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
            out.push(c);
            continue;
        }
        if quoted {
            out.push(c);
            continue;
        }
        match c {
            '?' => {
                if chars.peek().is_some_and(char::is_ascii_digit) {
                    return None;
                }
                count += 1;
                out.push('?');
            }
            '$' => {
                let mut number = 0usize;
                let mut digits = 0;
                while let Some(digit) = chars.peek().and_then(|d| d.to_digit(10)) {
                    number = number.checked_mul(10)?.checked_add(digit as usize)?;
                    digits += 1;
                    chars.next();
                }
                if digits == 0 || number != count + 1 {
                    return None;
                }
                count += 1;
                out.push('?');
            }
            ':' | '@' if chars.peek().is_some_and(|n| n.is_ascii_alphabetic()) => return None,
            _ => out.push(c),
        }
    }
    Some(count)
}

/// The writer's connection while a script runs. Dropped before `release` — the commit was
/// cancelled midway — it closes the connection instead of returning it to the pool: the
/// script may have stopped inside its transaction.
struct ScriptConnection(Option<sqlx::pool::PoolConnection<sqlx::Any>>);

impl ScriptConnection {
    fn connection(&mut self) -> &mut sqlx::pool::PoolConnection<sqlx::Any> {
        self.0
            .as_mut()
            .expect("invariant: the connection is held until released")
    }

    /// Returns the connection to the pool (or closes it, if so marked).
    fn release(mut self) {
        self.0.take();
    }
}

impl Drop for ScriptConnection {
    fn drop(&mut self) {
        if let Some(connection) = self.0.as_mut() {
            connection.close_on_drop();
        }
    }
}

/// The WAL file is cut back to this size (bytes) after a checkpoint emptied it.
const WAL_SIZE_LIMIT: i64 = 64 << 20;
/// How often the WAL is checkpointed.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Copies the SQLite WAL back into the database file, on a reader's connection, until the
/// pool closes. SQLite would otherwise do it inside the commit that takes the WAL past 1,000
/// pages: under load, every few hundred milliseconds one commit — and every caller waiting
/// on it — would also copy megabytes and fsync the database file. A passive checkpoint
/// neither waits for nor blocks the writer; a crash in the middle loses nothing (the WAL
/// still holds every committed frame).
async fn checkpoint_wal(readers: AnyPool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if readers.is_closed() {
            return;
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_all(&readers)
            .await
        {
            if readers.is_closed() {
                return;
            }
            tracing::warn!(%error, "WAL checkpoint failed; retrying");
        }
    }
}

/// A bind value of a dynamically built query.
enum Param {
    Text(String),
    Int(i64),
}

/// Builds `WHERE` clauses with hand-numbered `$N` placeholders (sqlx's `QueryBuilder` emits
/// `?`, which PostgreSQL rejects through the `Any` driver).
struct SqlBuilder {
    sql: String,
    params: Vec<Param>,
}

impl SqlBuilder {
    fn new(head: &str) -> SqlBuilder {
        SqlBuilder {
            sql: head.to_owned(),
            params: Vec::new(),
        }
    }

    fn placeholder(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    fn scope(&mut self, scope: &Scope) {
        if let Scope::Client(client) = scope {
            self.and("client_id = ", client.clone());
        }
    }

    fn and(&mut self, condition: &str, value: String) {
        let p = self.placeholder(Param::Text(value));
        self.sql.push_str(&format!(" AND {condition}{p}"));
    }

    fn and_i64(&mut self, condition: &str, value: i64) {
        let p = self.placeholder(Param::Int(value));
        self.sql.push_str(&format!(" AND {condition}{p}"));
    }

    fn and_call(&mut self, open: &str, value: String, close: &str) {
        let p = self.placeholder(Param::Text(value));
        self.sql.push_str(&format!(" AND {open}{p}{close}"));
    }

    fn and_in(&mut self, column: &str, values: Vec<String>) {
        if values.is_empty() {
            return;
        }
        let list: Vec<String> = values
            .into_iter()
            .map(|v| self.placeholder(Param::Text(v)))
            .collect();
        self.sql
            .push_str(&format!(" AND {column} IN ({})", list.join(",")));
    }

    fn and_in_i64(&mut self, column: &str, values: Vec<i64>) {
        if values.is_empty() {
            return;
        }
        let list: Vec<String> = values
            .into_iter()
            .map(|v| self.placeholder(Param::Int(v)))
            .collect();
        self.sql
            .push_str(&format!(" AND {column} IN ({})", list.join(",")));
    }

    fn tail(&mut self, text: &str, limit: i64) {
        let p = self.placeholder(Param::Int(limit));
        self.sql.push_str(text);
        self.sql.push_str(&p);
    }

    async fn fetch_all(self, pool: &AnyPool) -> Result<Vec<AnyRow>> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.sql));
        for param in self.params {
            query = match param {
                Param::Text(text) => query.bind(text),
                Param::Int(int) => query.bind(int),
            };
        }
        Ok(query.fetch_all(pool).await?)
    }
}

#[cfg(test)]
pub(crate) mod tests;

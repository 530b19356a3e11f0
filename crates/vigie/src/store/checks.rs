//! The state of every check, kept across restarts: one row per check with its whole
//! `CheckStatus` (soft or hard state, attempt, output, acknowledgement, downtimes, flapping
//! history) as JSON, and the columns the API filters on. Written by the supervision runtime
//! alone, in one transaction per round of results; read by the API through a `Scope`, like
//! every other client record.

use std::collections::HashMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use vigie_core::check::{CheckKind, CheckStatus};

use super::{Scope, SqlBuilder, Store, rows, values_statement};

/// Check rows per statement: 6 columns × 500 stays far below SQLite's bound on parameters.
const CHECK_ROWS_PER_STATEMENT: usize = 500;

/// What an upsert of a check row changes when the row exists.
const UPSERT_CHECK_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, \
    asset = excluded.asset, state = excluded.state, updated_ms = excluded.updated_ms, \
    body = excluded.body";

/// One check as stored and as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// `client:asset:check`.
    pub id: String,
    pub client: String,
    pub asset: String,
    /// The check's name: `host` for the asset's host check.
    pub check: String,
    pub kind: CheckKind,
    /// What runs it: `icmp`, `tcp`, `http`, `tls`, `dns`, `plugin` or `passive`.
    pub probe: String,
    pub status: CheckStatus,
    pub updated_ms: i64,
}

#[derive(Clone, Debug, Default)]
pub struct CheckFilter {
    pub asset: Option<String>,
    /// State names, e.g. `CRITICAL`, `DOWN`.
    pub states: Vec<String>,
    /// Only checks whose id sorts after this one (pagination, in id order).
    pub after_id: Option<String>,
    pub limit: i64,
}

impl Store {
    /// Writes the records (inserting or replacing each; of two records of one check, the
    /// later) and forgets the checks `removed` names, in one transaction, many rows per
    /// statement.
    pub async fn put_checks(&self, records: &[CheckRecord]) -> Result<()> {
        self.write_checks(&records.iter().collect::<Vec<_>>(), &[])
            .await
    }

    /// Forgets checks the estate no longer defines.
    pub async fn delete_checks(&self, ids: &[String]) -> Result<()> {
        self.write_checks(&[], ids).await
    }

    /// Upserts `records` and deletes `removed` in one transaction.
    pub async fn write_checks(&self, records: &[&CheckRecord], removed: &[String]) -> Result<()> {
        if records.is_empty() && removed.is_empty() {
            return Ok(());
        }
        // One row per check: PostgreSQL refuses a statement that upserts a row twice.
        let mut latest: HashMap<&str, usize> = HashMap::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            latest.insert(record.id.as_str(), index);
        }
        let mut rows: Vec<(&CheckRecord, String)> = Vec::with_capacity(latest.len());
        for (index, &record) in records.iter().enumerate() {
            if latest.get(record.id.as_str()) == Some(&index) {
                rows.push((record, serde_json::to_string(record)?));
            }
        }
        let mut tx = self
            .writer
            .begin()
            .await
            .context("cannot begin transaction")?;
        for chunk in removed.chunks(CHECK_ROWS_PER_STATEMENT) {
            let sql = values_statement(
                self.engine,
                "DELETE FROM checks WHERE id IN (VALUES ",
                1,
                chunk.len(),
            ) + ")";
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.as_str());
            }
            query
                .execute(&mut *tx)
                .await
                .context("cannot delete checks")?;
        }
        for chunk in rows.chunks(CHECK_ROWS_PER_STATEMENT) {
            let sql = values_statement(
                self.engine,
                "INSERT INTO checks (id, client_id, asset, state, updated_ms, body) VALUES ",
                6,
                chunk.len(),
            ) + UPSERT_CHECK_TAIL;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (record, body) in chunk {
                query = query
                    .bind(record.id.as_str())
                    .bind(record.client.as_str())
                    .bind(record.asset.as_str())
                    .bind(record.status.state.as_str())
                    .bind(record.updated_ms)
                    .bind(body.as_str());
            }
            query
                .execute(&mut *tx)
                .await
                .context("cannot write checks")?;
        }
        tx.commit().await.context("cannot commit checks")?;
        Ok(())
    }

    /// Every stored check, of every client: what the supervision runtime resumes from.
    pub async fn load_checks(&self) -> Result<Vec<CheckRecord>> {
        sqlx::query("SELECT body FROM checks ORDER BY id")
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(rows::from_body)
            .collect()
    }

    pub async fn get_check(&self, scope: &Scope, id: &str) -> Result<Option<CheckRecord>> {
        let mut sql = SqlBuilder::new("SELECT body FROM checks WHERE 1=1");
        sql.scope(scope);
        sql.and("id = ", id.to_owned());
        let rows = sql.fetch_all(&self.readers).await?;
        rows.first().map(rows::from_body).transpose()
    }

    /// The checks in scope, in id order.
    pub async fn list_checks(
        &self,
        scope: &Scope,
        filter: &CheckFilter,
    ) -> Result<Vec<CheckRecord>> {
        let mut sql = SqlBuilder::new("SELECT body FROM checks WHERE 1=1");
        sql.scope(scope);
        if let Some(asset) = &filter.asset {
            sql.and("asset = ", asset.clone());
        }
        sql.and_in("state", filter.states.clone());
        if let Some(after) = &filter.after_id {
            sql.and("id > ", after.clone());
        }
        sql.tail(" ORDER BY id LIMIT ", filter.limit);
        let rows = sql.fetch_all(&self.readers).await?;
        rows.iter().map(rows::from_body).collect()
    }
}

#[cfg(test)]
mod tests {
    use vigie_core::check::{CheckCommand, CheckConfig, CheckState, PluginResult, StateType};

    use super::super::scratch;
    use super::*;

    fn record(client: &str, asset: &str, check: &str, state: CheckState) -> CheckRecord {
        let mut status = CheckStatus::new(CheckKind::Service, CheckConfig::default());
        status.apply(
            CheckCommand::Result {
                result: PluginResult::new(state, format!("{} - {check}", state.as_str())),
                parent_down: false,
            },
            1_000,
        );
        CheckRecord {
            id: format!("{client}:{asset}:{check}"),
            client: client.into(),
            asset: asset.into(),
            check: check.into(),
            kind: CheckKind::Service,
            probe: "plugin".into(),
            status,
            updated_ms: 1_000,
        }
    }

    async fn checks_round_trip_are_scoped_filtered_and_replaced(store: Store) {
        let mut disk = record("acme", "srv-1", "disk", CheckState::Critical);
        let records = vec![
            record("acme", "srv-1", "ssh", CheckState::Ok),
            disk.clone(),
            record("acme", "srv-2", "ssh", CheckState::Warning),
            record("globex", "srv-1", "ssh", CheckState::Critical),
        ];
        store.put_checks(&records).await.unwrap();
        let all = CheckFilter {
            limit: 100,
            ..CheckFilter::default()
        };
        let acme = Scope::Client("acme".into());
        let ids = |records: Vec<CheckRecord>| -> Vec<String> {
            records.into_iter().map(|r| r.id).collect()
        };
        assert_eq!(
            ids(store.list_checks(&acme, &all).await.unwrap()),
            ["acme:srv-1:disk", "acme:srv-1:ssh", "acme:srv-2:ssh"]
        );
        let problems = CheckFilter {
            states: vec!["CRITICAL".into(), "WARNING".into()],
            ..all.clone()
        };
        assert_eq!(
            ids(store.list_checks(&acme, &problems).await.unwrap()),
            ["acme:srv-1:disk", "acme:srv-2:ssh"]
        );
        let page = CheckFilter {
            asset: Some("srv-1".into()),
            after_id: Some("acme:srv-1:disk".into()),
            ..all.clone()
        };
        assert_eq!(
            ids(store.list_checks(&acme, &page).await.unwrap()),
            ["acme:srv-1:ssh"]
        );
        assert_eq!(
            store.get_check(&acme, "globex:srv-1:ssh").await.unwrap(),
            None,
            "another client's check is not there for this scope"
        );
        assert_eq!(
            store.get_check(&acme, &disk.id).await.unwrap().as_ref(),
            Some(&disk)
        );

        // A later state replaces the row; the whole status comes back as it was written.
        disk.status.apply(
            CheckCommand::Acknowledge {
                author: "alice".into(),
                comment: "on it".into(),
                sticky: true,
                expires_ms: None,
            },
            2_000,
        );
        disk.updated_ms = 2_000;
        store.put_checks(std::slice::from_ref(&disk)).await.unwrap();
        let read = store
            .get_check(&Scope::All, &disk.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read, disk);
        assert_eq!(read.status.state_type, StateType::Soft);
        assert!(read.status.acknowledgement.is_some());

        store
            .delete_checks(&["acme:srv-2:ssh".to_owned()])
            .await
            .unwrap();
        assert_eq!(
            ids(store.load_checks().await.unwrap()),
            ["acme:srv-1:disk", "acme:srv-1:ssh", "globex:srv-1:ssh"]
        );

        // Many rows at once, over several statements, one check twice (the later wins) and
        // one forgotten, in one transaction.
        let many: Vec<CheckRecord> = (0..1_200)
            .map(|n| record("acme", "bulk", &format!("c{n:04}"), CheckState::Ok))
            .collect();
        let twice = record("acme", "bulk", "c0007", CheckState::Critical);
        let rows: Vec<&CheckRecord> = many.iter().chain([&twice]).collect();
        store
            .write_checks(&rows, &["acme:srv-1:ssh".to_owned()])
            .await
            .unwrap();
        let bulk = CheckFilter {
            asset: Some("bulk".into()),
            limit: 2_000,
            ..all.clone()
        };
        let listed = store.list_checks(&acme, &bulk).await.unwrap();
        assert_eq!(listed.len(), 1_200);
        assert_eq!(
            listed[7].status.state,
            vigie_core::check::ObjectState::Service(CheckState::Critical)
        );
        assert_eq!(
            store
                .get_check(&Scope::All, "acme:srv-1:ssh")
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn checks_on_sqlite() {
        let db = scratch::sqlite();
        let store = Store::open(&db.url).await.unwrap();
        checks_round_trip_are_scoped_filtered_and_replaced(store).await;
    }

    #[tokio::test]
    async fn checks_on_postgres() {
        let Some(db) = scratch::postgres()
            .await
            .expect("the test PostgreSQL is reachable")
        else {
            return;
        };
        let store = Store::open(&db.url).await.unwrap();
        checks_round_trip_are_scoped_filtered_and_replaced(store).await;
    }
}

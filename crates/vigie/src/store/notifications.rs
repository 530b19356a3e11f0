//! The notification outbox and delivery log: one row per `Notification`, its JSON as the
//! body, and the columns the deliverer and the API select on. Rows are inserted by
//! `write_batch`, in the transaction of the decision that made them; the deliverer updates
//! them one attempt at a time (`record_attempt`, read-modify-write in one transaction); the
//! API reads them through a `Scope`, like every client record.
//!
//! Invariant: a row is never deleted by the deliverer; `next_attempt_ms` is set while the
//! notification is undelivered, and only then.

use anyhow::{Context, Result};
use sqlx::Row;
use vigie_core::notify::Backoff;

use super::{Engine, Scope, SqlBuilder, Statements, Store, rows};
use crate::notify::{Attempt, DeliveryStatus, Notification};

/// What the delivery log lists.
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub status: Option<DeliveryStatus>,
    pub incident_id: Option<i64>,
    /// Only rows with an id above this one (newer).
    pub after_id: Option<i64>,
    /// Only rows with an id below this one (pagination, newest first).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Adds the statements that insert the batch's notifications to `out` (`write_batch`).
pub(super) fn insert_statements(
    notifications: &[Notification],
    out: &mut Statements,
) -> Result<()> {
    for notification in notifications {
        out.push(
            sqlx::query(
                "INSERT INTO notifications (id, client_id, incident_id, status, next_attempt_ms, created_ms, body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(notification.id)
            .bind(notification.client.as_str())
            .bind(notification.incident_id)
            .bind(notification.status.as_str())
            .bind(notification.next_attempt_ms)
            .bind(notification.created_ms)
            .bind(serde_json::to_string(notification)?),
            "notification",
        )?;
    }
    Ok(())
}

impl Store {
    /// Woken after every commit that inserted notifications.
    pub fn outbox_waker(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox.clone()
    }

    /// The id after the highest stored one: where the writer's counter resumes.
    pub async fn next_notification_id(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 AS next FROM notifications")
            .fetch_one(&self.readers)
            .await?;
        Ok(row.try_get::<i64, _>("next")?)
    }

    /// Undelivered notifications whose next attempt is due at `now_ms`, most overdue first.
    pub async fn due_notifications(&self, now_ms: i64, limit: i64) -> Result<Vec<Notification>> {
        sqlx::query(
            "SELECT body FROM notifications WHERE next_attempt_ms IS NOT NULL AND next_attempt_ms <= $1 ORDER BY next_attempt_ms, id LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.readers)
        .await
        .context("cannot read the outbox")?
        .iter()
        .map(rows::from_body)
        .collect()
    }

    /// When the next undelivered notification falls due, if any.
    pub async fn next_notification_due_ms(&self) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_ms) AS due FROM notifications WHERE next_attempt_ms IS NOT NULL",
        )
        .fetch_one(&self.readers)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("due")?)
    }

    /// Records one delivery attempt: attempts, status, next attempt (from `backoff` on
    /// failure), last error and history change together. Returns the updated row, or `None`
    /// if there is no such notification.
    pub async fn record_attempt(
        &self,
        id: i64,
        attempt: Attempt,
        backoff: &Backoff,
    ) -> Result<Option<Notification>> {
        self.update_notification(id, |notification| {
            notification.record(attempt, backoff);
            true
        })
        .await
    }

    /// Makes an undelivered notification due at `now_ms` (an operator's "retry now") and
    /// wakes the deliverer. `Ok(None)`: no such notification in `scope`; `Ok(Some(n))` with
    /// `n.status == Delivered`: nothing to retry.
    pub async fn retry_notification(
        &self,
        scope: &Scope,
        id: i64,
        now_ms: i64,
    ) -> Result<Option<Notification>> {
        if self.get_notification(scope, id).await?.is_none() {
            return Ok(None);
        }
        let updated = self
            .update_notification(id, |notification| {
                if notification.status == DeliveryStatus::Delivered {
                    return false;
                }
                notification.next_attempt_ms = Some(now_ms);
                true
            })
            .await?;
        self.outbox.notify_one();
        Ok(updated)
    }

    /// Reads a row, lets `change` edit it, and writes it back if it says so, in one
    /// transaction (the row locked on PostgreSQL; SQLite has a single writer).
    async fn update_notification(
        &self,
        id: i64,
        change: impl FnOnce(&mut Notification) -> bool,
    ) -> Result<Option<Notification>> {
        let mut tx = self
            .writer
            .begin()
            .await
            .context("cannot begin transaction")?;
        let select = match self.engine {
            Engine::Sqlite => "SELECT body FROM notifications WHERE id = $1",
            Engine::Postgres => "SELECT body FROM notifications WHERE id = $1 FOR UPDATE",
        };
        let Some(row) = sqlx::query(select)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let mut notification: Notification = rows::from_body(&row)?;
        if change(&mut notification) {
            sqlx::query(
                "UPDATE notifications SET status = $1, next_attempt_ms = $2, body = $3 WHERE id = $4",
            )
            .bind(notification.status.as_str())
            .bind(notification.next_attempt_ms)
            .bind(serde_json::to_string(&notification)?)
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("cannot update notification")?;
        }
        tx.commit().await.context("cannot commit notification")?;
        Ok(Some(notification))
    }

    pub async fn get_notification(&self, scope: &Scope, id: i64) -> Result<Option<Notification>> {
        let mut sql = SqlBuilder::new("SELECT body FROM notifications WHERE 1=1");
        sql.scope(scope);
        sql.and_i64("id = ", id);
        let rows = sql.fetch_all(&self.readers).await?;
        rows.first().map(rows::from_body).transpose()
    }

    /// The delivery log in scope, newest first.
    pub async fn list_notifications(
        &self,
        scope: &Scope,
        filter: &NotificationFilter,
    ) -> Result<Vec<Notification>> {
        let mut sql = SqlBuilder::new("SELECT body FROM notifications WHERE 1=1");
        sql.scope(scope);
        if let Some(status) = filter.status {
            sql.and("status = ", status.as_str().to_owned());
        }
        if let Some(incident) = filter.incident_id {
            sql.and_i64("incident_id = ", incident);
        }
        if let Some(after) = filter.after_id {
            sql.and_i64("id > ", after);
        }
        if let Some(before) = filter.before_id {
            sql.and_i64("id < ", before);
        }
        sql.tail(" ORDER BY id DESC LIMIT ", filter.limit);
        let rows = sql.fetch_all(&self.readers).await?;
        rows.iter().map(rows::from_body).collect()
    }
}

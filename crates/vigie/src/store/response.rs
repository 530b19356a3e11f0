//! The responder's records: escalations, crises, business-service health and its history,
//! API silences and the crisis triggers' memory. Written inside the pipeline's batch
//! transaction (`response_statements`), so that an escalation step and the notification it sends
//! commit together; read back on restart and by the API through a `Scope`.

use std::collections::HashMap;

use anyhow::Result;
use sqlx::Row;
use vigie_core::crisis::TriggerState;

use super::{Scope, SqlBuilder, Statements, Store, rows};
use crate::response::Throttle;
use crate::response::records::{
    Crisis, CrisisStatus, EscalationRecord, ServiceHealth, SilenceRecord,
};

/// The responder's part of one batch.
#[derive(Debug, Default)]
pub struct ResponseRows {
    pub escalations: Vec<EscalationRecord>,
    /// Escalations of incidents that closed: forgotten.
    pub forget_escalations: Vec<i64>,
    pub crises: Vec<Crisis>,
    pub health: Vec<ServiceHealth>,
    pub history: Vec<(i64, ServiceHealth)>,
    pub silences: Vec<SilenceRecord>,
    pub trigger_state: Option<TriggerState>,
    /// The per-destination rate limits and what they hold back for the next digest.
    pub throttle: Option<Throttle>,
}

impl ResponseRows {
    pub fn is_empty(&self) -> bool {
        self.escalations.is_empty()
            && self.forget_escalations.is_empty()
            && self.crises.is_empty()
            && self.health.is_empty()
            && self.history.is_empty()
            && self.silences.is_empty()
            && self.trigger_state.is_none()
            && self.throttle.is_none()
    }
}

/// What the responder resumes from after a restart.
#[derive(Debug, Default)]
pub struct ResponseState {
    pub escalations: Vec<EscalationRecord>,
    pub open_crises: Vec<Crisis>,
    pub health: Vec<ServiceHealth>,
    pub silences: Vec<SilenceRecord>,
    pub trigger_state: TriggerState,
    pub throttle: Throttle,
    pub next_crisis_id: i64,
    pub next_history_id: i64,
}

const UPSERT_ESCALATION: &str = "INSERT INTO escalations (incident_id, client_id, phase, next_at_ms, body) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (incident_id) DO UPDATE SET phase = excluded.phase, \
     next_at_ms = excluded.next_at_ms, body = excluded.body";
const DELETE_ESCALATION: &str = "DELETE FROM escalations WHERE incident_id = $1";
const UPSERT_CRISIS: &str = "INSERT INTO crises (id, client_id, status, opened_ms, body) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
     body = excluded.body";
const UPSERT_HEALTH: &str = "INSERT INTO service_health (client_id, service, status, since_ms, body) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (client_id, service) DO UPDATE SET \
     status = excluded.status, since_ms = excluded.since_ms, body = excluded.body";
const INSERT_HISTORY: &str = "INSERT INTO service_history (id, client_id, service, time_ms, status, body) \
     VALUES ($1, $2, $3, $4, $5, $6)";
const UPSERT_SILENCE: &str = "INSERT INTO silences (id, client_id, ends_ms, body) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (id) DO UPDATE SET ends_ms = excluded.ends_ms, body = excluded.body";
const UPSERT_THROTTLE: &str = "INSERT INTO response_state (name, body) VALUES ('throttle', $1) \
     ON CONFLICT (name) DO UPDATE SET body = excluded.body";
const UPSERT_TRIGGER_STATE: &str = "INSERT INTO response_state (name, body) VALUES ('crisis_triggers', $1) \
     ON CONFLICT (name) DO UPDATE SET body = excluded.body";

/// Adds the statements that write the responder's part of a batch to `out`.
pub(super) fn response_statements(rows: &ResponseRows, out: &mut Statements) -> Result<()> {
    // An incident's record may move twice in one batch (its escalation starts, then its first
    // step runs): the last one is what stays.
    let last: HashMap<i64, usize> = rows
        .escalations
        .iter()
        .enumerate()
        .map(|(index, record)| (record.incident_id, index))
        .collect();
    for (index, record) in rows.escalations.iter().enumerate() {
        if last.get(&record.incident_id) != Some(&index) {
            continue;
        }
        let phase = serde_json::to_value(&record.escalation.phase)?;
        out.push(
            sqlx::query(UPSERT_ESCALATION)
                .bind(record.incident_id)
                .bind(record.client.as_str())
                .bind(phase.as_str().unwrap_or("").to_owned())
                .bind(record.escalation.next_at_ms)
                .bind(serde_json::to_string(record)?),
            "escalation",
        )?;
    }
    for id in &rows.forget_escalations {
        out.push(
            sqlx::query(DELETE_ESCALATION).bind(*id),
            "escalations of closed incidents",
        )?;
    }
    for crisis in &rows.crises {
        out.push(
            sqlx::query(UPSERT_CRISIS)
                .bind(crisis.id)
                .bind(crisis.client.as_str())
                .bind(crisis.status.as_str())
                .bind(crisis.opened_ms)
                .bind(serde_json::to_string(crisis)?),
            "crisis",
        )?;
    }
    for health in &rows.health {
        out.push(
            sqlx::query(UPSERT_HEALTH)
                .bind(health.client.as_str())
                .bind(health.service.as_str())
                .bind(health.status.as_str())
                .bind(health.since_ms)
                .bind(serde_json::to_string(health)?),
            "business service health",
        )?;
    }
    for (id, health) in &rows.history {
        out.push(
            sqlx::query(INSERT_HISTORY)
                .bind(*id)
                .bind(health.client.as_str())
                .bind(health.service.as_str())
                .bind(health.updated_ms)
                .bind(health.status.as_str())
                .bind(serde_json::to_string(health)?),
            "business service history",
        )?;
    }
    for silence in &rows.silences {
        out.push(
            sqlx::query(UPSERT_SILENCE)
                .bind(silence.id.as_str())
                .bind(silence.client.as_str())
                .bind(silence.ends_at_ms)
                .bind(serde_json::to_string(silence)?),
            "silence",
        )?;
    }
    if let Some(throttle) = &rows.throttle {
        out.push(
            sqlx::query(UPSERT_THROTTLE).bind(serde_json::to_string(throttle)?),
            "the notification throttle",
        )?;
    }
    if let Some(state) = &rows.trigger_state {
        out.push(
            sqlx::query(UPSERT_TRIGGER_STATE).bind(serde_json::to_string(state)?),
            "crisis trigger state",
        )?;
    }
    Ok(())
}

impl Store {
    pub async fn load_response_state(&self) -> Result<ResponseState> {
        let bodies = |sql: &'static str| {
            let pool = self.readers.clone();
            async move { anyhow::Ok(sqlx::query(sql).fetch_all(&pool).await?) }
        };
        let escalations = bodies("SELECT body FROM escalations ORDER BY incident_id")
            .await?
            .iter()
            .map(rows::from_body::<EscalationRecord>)
            .collect::<Result<Vec<_>>>()?;
        let open_crises = bodies("SELECT body FROM crises WHERE status = 'open' ORDER BY id")
            .await?
            .iter()
            .map(rows::from_body::<Crisis>)
            .collect::<Result<Vec<_>>>()?;
        let health = bodies("SELECT body FROM service_health ORDER BY client_id, service")
            .await?
            .iter()
            .map(rows::from_body::<ServiceHealth>)
            .collect::<Result<Vec<_>>>()?;
        let silences = bodies("SELECT body FROM silences ORDER BY id")
            .await?
            .iter()
            .map(rows::from_body::<SilenceRecord>)
            .collect::<Result<Vec<_>>>()?;
        let trigger_state =
            match bodies("SELECT body FROM response_state WHERE name = 'crisis_triggers'")
                .await?
                .first()
            {
                Some(row) => rows::from_body::<TriggerState>(row)?,
                None => TriggerState::default(),
            };
        let throttle = match bodies("SELECT body FROM response_state WHERE name = 'throttle'")
            .await?
            .first()
        {
            Some(row) => rows::from_body::<Throttle>(row)?,
            None => Throttle::default(),
        };
        let next = |sql: &'static str| {
            let pool = self.readers.clone();
            async move {
                let row = sqlx::query(sql).fetch_one(&pool).await?;
                anyhow::Ok(row.try_get::<i64, _>("next")?)
            }
        };
        Ok(ResponseState {
            escalations,
            open_crises,
            health,
            silences,
            trigger_state,
            throttle,
            next_crisis_id: next("SELECT COALESCE(MAX(id), 0) + 1 AS next FROM crises").await?,
            next_history_id: next("SELECT COALESCE(MAX(id), 0) + 1 AS next FROM service_history")
                .await?,
        })
    }

    pub async fn list_service_health(&self, scope: &Scope) -> Result<Vec<ServiceHealth>> {
        let mut sql = SqlBuilder::new("SELECT body FROM service_health WHERE 1=1");
        sql.scope(scope);
        sql.sql.push_str(" ORDER BY client_id, service");
        sql.fetch_all(&self.readers)
            .await?
            .iter()
            .map(rows::from_body::<ServiceHealth>)
            .collect()
    }

    /// A service's history, newest first.
    pub async fn service_history(
        &self,
        scope: &Scope,
        client: &str,
        service: &str,
        limit: i64,
    ) -> Result<Vec<ServiceHealth>> {
        let mut sql = SqlBuilder::new("SELECT body FROM service_history WHERE 1=1");
        sql.scope(scope);
        sql.and("client_id = ", client.to_owned());
        sql.and("service = ", service.to_owned());
        sql.sql
            .push_str(&format!(" ORDER BY id DESC LIMIT {}", limit.clamp(1, 1000)));
        sql.fetch_all(&self.readers)
            .await?
            .iter()
            .map(rows::from_body::<ServiceHealth>)
            .collect()
    }

    pub async fn list_crises(
        &self,
        scope: &Scope,
        status: Option<CrisisStatus>,
    ) -> Result<Vec<Crisis>> {
        let mut sql = SqlBuilder::new("SELECT body FROM crises WHERE 1=1");
        sql.scope(scope);
        if let Some(status) = status {
            sql.and("status = ", status.as_str().to_owned());
        }
        sql.sql.push_str(" ORDER BY id DESC LIMIT 500");
        sql.fetch_all(&self.readers)
            .await?
            .iter()
            .map(rows::from_body::<Crisis>)
            .collect()
    }

    pub async fn get_crisis(&self, scope: &Scope, id: i64) -> Result<Option<Crisis>> {
        let mut sql = SqlBuilder::new("SELECT body FROM crises WHERE 1=1");
        sql.scope(scope);
        sql.and_i64("id = ", id);
        sql.fetch_all(&self.readers)
            .await?
            .first()
            .map(rows::from_body::<Crisis>)
            .transpose()
    }

    pub async fn list_silences(&self, scope: &Scope) -> Result<Vec<SilenceRecord>> {
        let mut sql = SqlBuilder::new("SELECT body FROM silences WHERE 1=1");
        sql.scope(scope);
        sql.sql.push_str(" ORDER BY id");
        sql.fetch_all(&self.readers)
            .await?
            .iter()
            .map(rows::from_body::<SilenceRecord>)
            .collect()
    }

    pub async fn get_escalation(
        &self,
        scope: &Scope,
        incident: i64,
    ) -> Result<Option<EscalationRecord>> {
        let mut sql = SqlBuilder::new("SELECT body FROM escalations WHERE 1=1");
        sql.scope(scope);
        sql.and_i64("incident_id = ", incident);
        sql.fetch_all(&self.readers)
            .await?
            .first()
            .map(rows::from_body::<EscalationRecord>)
            .transpose()
    }
}

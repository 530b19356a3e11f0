//! Schema migrations, embedded in the binary and applied at start-up (and by `vigie
//! migrate`). Each engine has its own files with the same version numbers; a version is
//! applied once, inside a transaction with its bookkeeping row, so a crash mid-migration
//! leaves the previous version intact.

use anyhow::{Context, Result};
use sqlx::{AnyPool, Executor, Row};

use super::Engine;

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("migrations/sqlite/0001_init.sql"),
        postgres: include_str!("migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "checks",
        sqlite: include_str!("migrations/sqlite/0002_checks.sql"),
        postgres: include_str!("migrations/postgres/0002_checks.sql"),
    },
    Migration {
        version: 3,
        name: "notifications",
        sqlite: include_str!("migrations/sqlite/0003_notifications.sql"),
        postgres: include_str!("migrations/postgres/0003_notifications.sql"),
    },
    Migration {
        version: 4,
        name: "response",
        sqlite: include_str!("migrations/sqlite/0004_response.sql"),
        postgres: include_str!("migrations/postgres/0004_response.sql"),
    },
    Migration {
        version: 5,
        name: "perfdata",
        sqlite: include_str!("migrations/sqlite/0005_perfdata.sql"),
        postgres: include_str!("migrations/postgres/0005_perfdata.sql"),
    },
];

/// Applies every migration newer than the database's version; returns how many ran.
pub async fn run(pool: &AnyPool, engine: Engine) -> Result<usize> {
    pool.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
    )
    .await
    .context("cannot create schema_migrations")?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        .fetch_one(pool)
        .await?
        .try_get("v")?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > latest {
        anyhow::bail!(
            "the database is at schema version {current}, newer than this program's {latest}: use a newer vigie"
        );
    }
    let mut applied = 0;
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        let sql = match engine {
            Engine::Sqlite => migration.sqlite,
            Engine::Postgres => migration.postgres,
        };
        let mut tx = pool.begin().await?;
        tx.execute(sql).await.with_context(|| {
            format!(
                "migration {} ({}) failed",
                migration.version, migration.name
            )
        })?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(crate::clock::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "migration applied"
        );
        applied += 1;
    }
    Ok(applied)
}

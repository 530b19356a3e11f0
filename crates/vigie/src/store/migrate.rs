//! Schema migrations, embedded in the binary and applied at start-up (and by `vigie
//! migrate`). Each engine has its own files with the same version numbers; a version is
//! applied once, inside a transaction with its bookkeeping row, so a crash mid-migration
//! leaves the previous version intact. A reader that must change nothing (`vigie hunt`) only
//! checks the version (`check_current`).

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

/// The database's schema version, 0 before the first migration.
const CURRENT_VERSION: &str = "SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations";

/// This program's schema version; an error when the database's is newer, which no migration
/// fixes.
fn refuse_newer(current: i64) -> Result<i64> {
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > latest {
        anyhow::bail!(
            "the database is at schema version {current}, newer than this program's {latest}: use a newer vigie"
        );
    }
    Ok(latest)
}

/// Checks, changing nothing, that the database's schema is this program's: for a reader that
/// must not migrate (`Store::open_existing`).
pub async fn check_current(pool: &AnyPool) -> Result<()> {
    let current: i64 = sqlx::query(CURRENT_VERSION)
        .fetch_one(pool)
        .await
        .context("no vigie schema in this database (schema_migrations cannot be read)")?
        .try_get("v")?;
    let latest = refuse_newer(current)?;
    if current < latest {
        anyhow::bail!(
            "the database is at schema version {current}, older than this program's {latest}: run `vigie migrate` first"
        );
    }
    Ok(())
}

/// Applies every migration newer than the database's version; returns how many ran.
pub async fn run(pool: &AnyPool, engine: Engine) -> Result<usize> {
    pool.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
    )
    .await
    .context("cannot create schema_migrations")?;
    let current: i64 = sqlx::query(CURRENT_VERSION)
        .fetch_one(pool)
        .await?
        .try_get("v")?;
    refuse_newer(current)?;
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

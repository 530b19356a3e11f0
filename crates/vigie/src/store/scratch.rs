//! Throw-away databases for the tests and the benchmarks: a fresh SQLite file in a temporary
//! directory, or a fresh database on the PostgreSQL server named by
//! `VIGIE_TEST_POSTGRES_URL` (`.ci/run` starts one). Under `CI=true` a missing PostgreSQL is an
//! error, never a silent skip.

use std::path::PathBuf;

use anyhow::{Context, Result};
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

pub const POSTGRES_URL_VAR: &str = "VIGIE_TEST_POSTGRES_URL";

/// A database that lives as long as this value (the SQLite directory is removed on drop;
/// PostgreSQL test databases are left to the throw-away server, which is deleted whole).
pub struct ScratchDatabase {
    pub url: String,
    pub dir: PathBuf,
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unique_name(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("invariant: the OS has randomness");
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{}_{suffix}", std::process::id())
}

/// A fresh temporary directory (removed with the returned value's `dir` by `ScratchDatabase`).
pub fn scratch_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name(prefix));
    std::fs::create_dir_all(&dir).expect("invariant: the temporary directory is writable");
    dir
}

pub fn sqlite() -> ScratchDatabase {
    let dir = scratch_dir("vigie_test");
    ScratchDatabase {
        url: format!("sqlite://{}", dir.join("vigie.db").display()),
        dir,
    }
}

/// A fresh PostgreSQL database, `None` when no server is configured outside CI.
pub async fn postgres() -> Result<Option<ScratchDatabase>> {
    let Ok(server) = std::env::var(POSTGRES_URL_VAR) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            anyhow::bail!(
                "{POSTGRES_URL_VAR} is not set under CI=true: .ci/run must start PostgreSQL"
            );
        }
        eprintln!(
            "note: {POSTGRES_URL_VAR} is not set; this PostgreSQL test did not run (`.ci/run` runs it)"
        );
        return Ok(None);
    };
    sqlx::any::install_default_drivers();
    let name = unique_name("vigie_test");
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&server)
        .await
        .with_context(|| format!("cannot reach the test PostgreSQL at {server}"))?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await?;
    admin.close().await;
    let base = server
        .rsplit_once('/')
        .map_or(server.as_str(), |(base, _)| base);
    Ok(Some(ScratchDatabase {
        url: format!("{base}/{name}"),
        dir: scratch_dir("vigie_test_pg"),
    }))
}

//! What only SQLite does: one file in WAL mode, fixes written in multi-row
//! inserts, id lists passed as JSON. `fixes` stays one table; retention
//! deletes rows (see `fixes.rs`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::db::Sql;
use super::fixes::FIX_COLUMNS;
use crate::fix::Fix;

pub static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// Whether a table exists (`$1`: its name).
pub const TABLE_EXISTS: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1";

/// Rows per INSERT: 11 parameters each stays far below SQLite's limit of
/// 32766 bound parameters.
pub const FIXES_PER_INSERT: usize = 500;

pub async fn connect(url: &str) -> anyhow::Result<SqlitePool> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("database url `{url}`: {e}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open SQLite database `{url}`: {e}"))
}

/// ` IN (...)` of a list of ids, as one JSON parameter (no limit on its length).
pub fn push_in_ids(q: &mut Sql, ids: &[i64]) {
    let json = serde_json::Value::from(ids).to_string();
    q.push(" IN (SELECT value FROM json_each(")
        .push_bind(json)
        .push("))");
}

/// Writes one chunk of fixes ([`FIXES_PER_INSERT`] at most), ignoring
/// duplicates; returns how many were new. Built with sqlx's own builder: its
/// `?` placeholders and borrowed values are the cheapest SQLite binds.
pub async fn insert_fixes(
    conn: &mut SqliteConnection,
    chunk: &[&Fix],
    received_ms: i64,
) -> Result<u64, sqlx::Error> {
    let mut q =
        QueryBuilder::<Sqlite>::new(format!("INSERT INTO fixes ({FIX_COLUMNS}, received_ms) "));
    q.push_values(chunk, |mut row, f| {
        row.push_bind(f.device_id.as_str())
            .push_bind(f.ts_ms)
            .push_bind(f.lat)
            .push_bind(f.lon)
            .push_bind(f.speed_kmh)
            .push_bind(f.heading)
            .push_bind(f.acc)
            .push_bind(f.tipper_up)
            .push_bind(f.cover_closed)
            .push_bind(f.load_t)
            .push_bind(received_ms);
    });
    q.push(" ON CONFLICT (device_id, ts_ms) DO NOTHING");
    Ok(q.build().execute(conn).await?.rows_affected())
}

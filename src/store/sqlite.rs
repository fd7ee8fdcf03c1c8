//! What only SQLite does: one file in WAL mode, fixes written in multi-row
//! inserts, id lists passed as JSON. `fixes` stays one table; retention
//! deletes rows (see `fixes.rs`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::db::{Sql, Tx};
use super::fixes::FIX_COLUMNS;
use super::StoreResult;
use crate::fix::Fix;

pub static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// Whether a table exists (`$1`: its name).
pub const TABLE_EXISTS: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1";

/// Rows per INSERT: 11 parameters each stays far below SQLite's limit of
/// 32766 bound parameters.
const FIXES_PER_INSERT: usize = 500;

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

/// Writes fixes (in key order, as on PostgreSQL), ignoring duplicates.
pub async fn insert_fixes(tx: &mut Tx, fixes: &[&Fix], received_ms: i64) -> StoreResult<u64> {
    let mut inserted = 0;
    for chunk in fixes.chunks(FIXES_PER_INSERT) {
        let mut q = Sql::new(format!(
            "INSERT INTO fixes ({FIX_COLUMNS}, received_ms) VALUES "
        ));
        for (i, f) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.push_bind(f.device_id.as_str())
                .push(", ")
                .push_bind(f.ts_ms)
                .push(", ")
                .push_bind(f.lat)
                .push(", ")
                .push_bind(f.lon)
                .push(", ")
                .push_bind(f.speed_kmh)
                .push(", ")
                .push_bind(f.heading)
                .push(", ")
                .push_bind(f.acc)
                .push(", ")
                .push_bind(f.tipper_up)
                .push(", ")
                .push_bind(f.cover_closed)
                .push(", ")
                .push_bind(f.load_t)
                .push(", ")
                .push_bind(received_ms)
                .push(")");
        }
        q.push(" ON CONFLICT (device_id, ts_ms) DO NOTHING");
        inserted += tx.execute(&q).await?;
    }
    Ok(inserted)
}

/// ` IN (...)` of a list of ids, as one JSON parameter (no limit on its length).
pub fn push_in_ids(q: &mut Sql, ids: &[i64]) {
    let json = serde_json::Value::from(ids).to_string();
    q.push(" IN (SELECT value FROM json_each(")
        .push_bind(json)
        .push("))");
}

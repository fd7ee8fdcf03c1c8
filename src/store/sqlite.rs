//! What only SQLite does: one file in WAL mode, fixes written in multi-row
//! inserts, id lists passed as JSON. `fixes` stays one table; retention
//! deletes rows (see `fixes.rs`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::db::Sql;
use super::fixes::FIX_COLUMNS;
use crate::fix::Fix;

pub static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// Whether a table exists (`$1`: its name).
pub const TABLE_EXISTS: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1";

/// Rows per INSERT at most: 11 parameters each stays far below SQLite's
/// limit of 32766 bound parameters.
pub const FIXES_PER_INSERT: usize = 512;

/// The row counts of the INSERTs a batch of `n` fixes is written in: as
/// many [`FIXES_PER_INSERT`] as fit, then the powers of two of what is
/// left. A statement's text depends only on its row count, so ingest's
/// batches of every size use at most ten texts, all prepared once per
/// connection and kept in sqlx's statement cache, instead of one text (and
/// a parse of up to 5,500 placeholders) per batch size, which churned the
/// cache of 100 statements.
pub fn insert_chunks(n: usize) -> impl Iterator<Item = usize> {
    let full = n / FIXES_PER_INSERT;
    let rest = n % FIXES_PER_INSERT;
    std::iter::repeat_n(FIXES_PER_INSERT, full).chain(
        (0..FIXES_PER_INSERT.trailing_zeros())
            .rev()
            .map(|bit| 1 << bit)
            .filter(move |size| rest & size != 0),
    )
}

/// Page cache per connection (KiB), grown only as pages are used.
const CACHE_KIB: u32 = 32 * 1024;

/// The readers' pool and the writer's connection (see `Db`'s `writer`).
pub async fn connect(url: &str) -> anyhow::Result<super::db::Db> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("database url `{url}`: {e}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        // The profile of ingest: a multi-row INSERT ... ON CONFLICT in a
        // transaction keeps a statement journal, by default a temporary
        // file written page by page; and SQLite's default 2 MB page cache
        // made each batch re-read index pages of `fixes` and spill dirty
        // ones to the WAL before commit.
        .pragma("temp_store", "memory")
        .pragma("cache_size", format!("-{}", CACHE_KIB))
        // A batch of fixes from a thousand trucks dirties about a thousand
        // pages; at SQLite's default (1,000 pages) nearly every commit also
        // checkpointed, copying each page again. At 16,384 (64 MiB of WAL)
        // a checkpoint copies a page once for many commits.
        .pragma("wal_autocheckpoint", "16384");
    let open = |connections| {
        SqlitePoolOptions::new()
            .max_connections(connections)
            .connect_with(opts.clone())
    };
    let refused = |e| anyhow::anyhow!("cannot open SQLite database `{url}`: {e}");
    // The writer first: it creates the file and turns WAL on.
    let writer = open(1).await.map_err(refused)?;
    let readers = open(4).await.map_err(refused)?;
    Ok(super::db::Db::sqlite(readers, writer))
}

/// ` IN (...)` of a list of ids, as one JSON parameter (no limit on its length).
pub fn push_in_ids(q: &mut Sql, ids: &[i64]) {
    let json = serde_json::Value::from(ids).to_string();
    q.push(" IN (SELECT value FROM json_each(")
        .push_bind(json)
        .push("))");
}

/// Writes one chunk of fixes (of a size [`insert_chunks`] gives), ignoring
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_written_in_few_statements_of_few_sizes() {
        for n in [0, 1, 7, 500, 512, 1000, 1023, 5000] {
            let sizes: Vec<usize> = insert_chunks(n).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n, "{n}: {sizes:?}");
            assert!(sizes
                .iter()
                .all(|s| s.is_power_of_two() && *s <= FIXES_PER_INSERT));
            assert!(sizes.len() <= n / FIXES_PER_INSERT + 9, "{n}: {sizes:?}");
        }
    }
}

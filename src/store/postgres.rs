//! What only PostgreSQL does: connecting (with a probe that reports why it
//! cannot), fixes written through binary `COPY`, id lists as arrays, and
//! `fixes` partitioned by day.
//!
//! Partitions: `fixes` is partitioned by range of `ts_ms`, one partition a
//! UTC day (`fixes_YYYYMMDD`; a city on UTC+8 runs its night, 21:00-06:00,
//! inside one UTC day), listed in `fix_partitions`. `fixes_past` holds
//! everything before partitioning began (the table migration 0005 found)
//! and `fixes_default` anything no partition takes (a terminal stamping far
//! ahead). muckwatch makes the partitions of the coming days itself
//! ([`prepare_fix_partitions`], at start and hourly); retention drops whole
//! partitions ([`prune_fixes`]) after copying the evidence of
//! violations into `evidence_fixes`, which the `all_fixes` view reads
//! alongside `fixes`; the two catch-all partitions are pruned row by row.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;

use super::db::{Db, Sql, Tx};
use super::fixes::{delete_old_fixes, EVIDENCE_OF, FIX_COLUMNS};
use super::StoreResult;
use crate::fix::Fix;

pub static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Whether a table exists (`$1`: its name).
pub const TABLE_EXISTS: &str = "SELECT COUNT(*) FROM pg_catalog.pg_tables \
     WHERE schemaname = current_schema() AND tablename = $1";

/// Connections per instance: the ingest writer, the pipeline's case filing
/// and a few HTTP requests at once, without hogging a shared server's
/// `max_connections` when several instances run.
const POOL_SIZE: u32 = 8;

/// Advisory lock class of partition maintenance ("mwfp"): instances take turns.
const PARTITION_LOCK: i32 = 0x6d77_6670;

pub const DAY_MS: i64 = 86_400_000;

/// The partition of fixes no range partition takes; pruned row by row.
const CATCH_ALL: &str = "fixes_default";

/// Connects to `url` (`postgres://user:password@host:port/db`). Errors name
/// the URL with its password hidden.
pub async fn connect(url: &str) -> anyhow::Result<PgPool> {
    let shown = redact_url(url);
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("database url `{shown}`: {e}"))?;
    // One plain connection first: the pool retries until its timeout and
    // then reports only "timed out", hiding "connection refused",
    // "password authentication failed" or "database does not exist".
    let probe = PgConnection::connect_with(&opts)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL `{shown}`: {e}"))?;
    let _ = probe.close().await;
    PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::Executor::execute(&mut *conn, STAGING_TABLE).await?;
                Ok(())
            })
        })
        .connect_with(opts)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL `{shown}`: {e}"))
}

/// ` = ANY(...)` of a list of ids, as one array parameter.
pub fn push_in_ids(q: &mut Sql, ids: &[i64]) {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    q.push(" = ANY(CAST(")
        .push_bind(format!("{{{}}}", list.join(",")))
        .push(" AS BIGINT[]))");
}

/// The partition of the UTC day `day` (days since the epoch).
fn partition_name(day: i64) -> String {
    let date = chrono::DateTime::from_timestamp_millis(day * DAY_MS)
        .unwrap_or_default()
        .format("%Y%m%d");
    format!("fixes_{date}")
}

/// Makes the day partitions of `now_ms`'s UTC day and the `days_ahead` days
/// after it, those not made yet and not inside `fixes_past`. Fixes of such a
/// day that already sit in the default partition move into it. Returns the
/// partitions made.
pub async fn prepare_fix_partitions(
    db: &Db,
    now_ms: i64,
    days_ahead: u32,
) -> StoreResult<Vec<String>> {
    let today = now_ms.div_euclid(DAY_MS);
    let mut made = Vec::new();
    for day in today..=today + i64::from(days_ahead) {
        let (from, to) = (day * DAY_MS, (day + 1) * DAY_MS);
        let mut tx = maintenance(db).await?;
        let overlapping: i64 = tx
            .fetch_value(
                &Sql::new("SELECT COUNT(*) FROM fix_partitions WHERE from_ms < $2 AND to_ms > $1")
                    .bind(from)
                    .bind(to),
            )
            .await?;
        if overlapping > 0 {
            continue;
        }
        let name = partition_name(day);
        for ddl in [
            format!("CREATE TABLE {name} (LIKE fixes INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"),
            format!(
                "WITH moved AS (DELETE FROM {CATCH_ALL} WHERE ts_ms >= {from} AND ts_ms < {to} \
                 RETURNING *) INSERT INTO {name} SELECT * FROM moved"
            ),
            format!("ALTER TABLE fixes ATTACH PARTITION {name} FOR VALUES FROM ({from}) TO ({to})"),
        ] {
            tx.execute(&Sql::new(ddl)).await?;
        }
        tx.execute(
            &Sql::new(
                "INSERT INTO fix_partitions (name, kind, from_ms, to_ms) VALUES ($1, 'day', $2, $3)",
            )
            .bind(name.as_str())
            .bind(from)
            .bind(to),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(partition = %name, "made a partition of fixes");
        made.push(name);
    }
    Ok(made)
}

#[derive(sqlx::FromRow)]
struct Partition {
    name: String,
    kind: String,
    from_ms: i64,
    to_ms: i64,
}

/// Retention: every partition whose range lies wholly before `cutoff_ms` is
/// dropped, after its fixes within `margin_ms` of a violation of their
/// device are copied into `evidence_fixes`; in `fixes_past` (while it holds
/// newer rows) and the default partition, old fixes that are not evidence
/// are deleted row by row. Returns how many fixes went for good. Instances
/// take turns; each partition goes in a transaction of its own.
pub async fn prune_fixes(db: &Db, cutoff_ms: i64, margin_ms: i64) -> StoreResult<u64> {
    let partitions: Vec<Partition> = db
        .fetch_all(&Sql::new(
            "SELECT name, kind, from_ms, to_ms FROM fix_partitions ORDER BY to_ms",
        ))
        .await?;
    let mut gone = 0;
    for p in &partitions {
        if p.to_ms <= cutoff_ms {
            gone += drop_partition(db, p, margin_ms).await?;
        } else if p.kind == "past" {
            gone += delete_rows(db, &p.name, cutoff_ms, margin_ms).await?;
        }
    }
    Ok(gone + delete_rows(db, CATCH_ALL, cutoff_ms, margin_ms).await?)
}

/// Takes the maintenance lock, and waits at most a few seconds for a table
/// lock (a partition's DDL locks `fixes`): rather than queue every reader
/// and writer of `fixes` behind a long query, it gives up until next time.
async fn maintenance(db: &Db) -> StoreResult<Tx> {
    let mut tx = db.begin().await?;
    tx.lock_key(PARTITION_LOCK, "fixes").await?;
    tx.execute(&Sql::new("SET LOCAL lock_timeout = '10s'"))
        .await?;
    Ok(tx)
}

/// Whether partition `name` is still there (another instance may have
/// dropped it meanwhile).
async fn still_listed(tx: &mut Tx, name: &str) -> StoreResult<bool> {
    let n: i64 = tx
        .fetch_value(&Sql::new("SELECT COUNT(*) FROM fix_partitions WHERE name = $1").bind(name))
        .await?;
    Ok(n > 0)
}

async fn drop_partition(db: &Db, p: &Partition, margin_ms: i64) -> StoreResult<u64> {
    let mut tx = maintenance(db).await?;
    if !still_listed(&mut tx, &p.name).await? {
        return Ok(0);
    }
    // Driven by the violations of the range, each an index range scan of
    // the partition, rather than a probe per fix of a day's millions.
    let kept = tx
        .execute(
            &Sql::new(format!(
                "INSERT INTO evidence_fixes ({FIX_COLUMNS}, received_ms) \
                 SELECT DISTINCT f.device_id, f.ts_ms, f.lat, f.lon, f.speed_kmh, f.heading, f.acc, \
                        f.tipper_up, f.cover_closed, f.load_t, f.received_ms \
                 FROM violations v JOIN {name} f ON {EVIDENCE_OF} \
                 WHERE v.started_ms - $1 < $3 AND COALESCE(v.ended_ms, v.started_ms) + $1 >= $2 \
                 ON CONFLICT (device_id, ts_ms) DO NOTHING",
                name = p.name
            ))
            .bind(margin_ms)
            .bind(p.from_ms)
            .bind(p.to_ms),
        )
        .await?;
    let rows: i64 = tx
        .fetch_value(&Sql::new(format!("SELECT COUNT(*) FROM {}", p.name)))
        .await?;
    tx.execute(&Sql::new(format!("DROP TABLE {}", p.name)))
        .await?;
    tx.execute(&Sql::new("DELETE FROM fix_partitions WHERE name = $1").bind(p.name.as_str()))
        .await?;
    tx.commit().await?;
    tracing::info!(partition = %p.name, fixes = rows, evidence_kept = kept, "dropped a partition of fixes past retention");
    Ok((rows as u64).saturating_sub(kept))
}

async fn delete_rows(db: &Db, table: &str, cutoff_ms: i64, margin_ms: i64) -> StoreResult<u64> {
    let mut tx = maintenance(db).await?;
    if table != CATCH_ALL && !still_listed(&mut tx, table).await? {
        return Ok(0);
    }
    let n = tx
        .execute(&delete_old_fixes(table, cutoff_ms, margin_ms))
        .await?;
    tx.commit().await?;
    Ok(n)
}

/// `url` with its password (in the user part or a `password=` parameter)
/// replaced by `***`, for messages and logs.
///
/// ```
/// use muckwatch::store::redact_url;
/// assert_eq!(redact_url("postgres://mw:s3cret@db:5432/mw"), "postgres://mw:***@db:5432/mw");
/// assert_eq!(redact_url("postgres://db/mw?password=x&sslmode=require"), "postgres://db/mw?password=***&sslmode=require");
/// assert_eq!(redact_url("postgres://mw@db/mw"), "postgres://mw@db/mw");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let (head, rest) = url.split_at(scheme_end);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((user, _password)) => format!("{user}:***{}", &authority[at..]),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{head}{authority}{tail}")
}

/// The session's staging table for [`copy_fixes`]: made once per
/// connection (temporary, so neither logged nor seen by other sessions),
/// emptied by every commit.
pub const STAGING_TABLE: &str = "CREATE TEMPORARY TABLE IF NOT EXISTS fixes_in (\
     device_id TEXT NOT NULL, ts_ms BIGINT NOT NULL, lat DOUBLE PRECISION NOT NULL, \
     lon DOUBLE PRECISION NOT NULL, speed_kmh DOUBLE PRECISION NOT NULL, \
     heading DOUBLE PRECISION, acc BOOLEAN, tipper_up BOOLEAN, cover_closed BOOLEAN, \
     load_t DOUBLE PRECISION) ON COMMIT DELETE ROWS";

/// Writes fixes (in key order) with one `COPY fixes ... FROM STDIN (FORMAT
/// binary)`: the cheapest way in (the profile of ingest: 40% less server
/// time than [`copy_fixes`]), but it cannot skip a duplicate. `Ok(None)`:
/// a fix was stored already (SQLSTATE 23505); the transaction is then
/// aborted, and the batch goes through [`copy_fixes`] in a new one.
pub async fn copy_new_fixes(
    conn: &mut PgConnection,
    fixes: &[&Fix],
    received_ms: i64,
) -> Result<Option<u64>, sqlx::Error> {
    let sent = copy_in(
        conn,
        &format!("COPY fixes ({FIX_COLUMNS}, received_ms) FROM STDIN (FORMAT binary)"),
        binary_copy(fixes, Some(received_ms)),
    )
    .await;
    match sent {
        Ok(n) => Ok(Some(n)),
        Err(e) if is_duplicate(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A unique key refused a row.
fn is_duplicate(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
}

/// Runs a `COPY ... FROM STDIN` with `data`; the rows it wrote.
async fn copy_in(
    conn: &mut PgConnection,
    statement: &str,
    data: Vec<u8>,
) -> Result<u64, sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    if let Err(e) = copy.send(data).await {
        let _ = copy.abort("muckwatch could not send the batch").await;
        return Err(e);
    }
    copy.finish().await
}

/// Writes fixes (in key order) through `COPY ... FROM STDIN (FORMAT
/// binary)` into the session's staging table, then into `fixes` in one
/// `INSERT ... SELECT`, ignoring duplicates (which COPY alone cannot);
/// returns how many were new. Once per transaction: its commit (or
/// rollback) empties the staging table again.
pub async fn copy_fixes(
    conn: &mut PgConnection,
    fixes: &[&Fix],
    received_ms: i64,
) -> Result<u64, sqlx::Error> {
    copy_in(
        conn,
        &format!("COPY fixes_in ({FIX_COLUMNS}) FROM STDIN (FORMAT binary)"),
        binary_copy(fixes, None),
    )
    .await?;
    let inserted = sqlx::query(&format!(
        "INSERT INTO fixes ({FIX_COLUMNS}, received_ms) SELECT {FIX_COLUMNS}, $1 FROM fixes_in \
         ORDER BY device_id, ts_ms ON CONFLICT (device_id, ts_ms) DO NOTHING"
    ))
    .bind(received_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted)
}

/// Fixes in PostgreSQL's binary COPY format: the signature, then per row
/// the field count and each field as its length and big-endian value
/// (length -1: NULL), then the trailer. `received_ms`: a last column
/// with this value in every row.
fn binary_copy(fixes: &[&Fix], received_ms: Option<i64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(19 + fixes.len() * 128 + 2);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension
    let float = |out: &mut Vec<u8>, v: Option<f64>| match v {
        Some(v) => {
            out.extend_from_slice(&8i32.to_be_bytes());
            out.extend_from_slice(&v.to_be_bytes());
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    };
    let flag = |out: &mut Vec<u8>, v: Option<bool>| match v {
        Some(v) => {
            out.extend_from_slice(&1i32.to_be_bytes());
            out.push(u8::from(v));
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    };
    let fields: i16 = if received_ms.is_some() { 11 } else { 10 };
    for f in fixes {
        out.extend_from_slice(&fields.to_be_bytes());
        let id = f.device_id.as_str().as_bytes();
        out.extend_from_slice(&(id.len() as i32).to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&f.ts_ms.to_be_bytes());
        float(&mut out, Some(f.lat));
        float(&mut out, Some(f.lon));
        float(&mut out, Some(f.speed_kmh));
        float(&mut out, f.heading);
        flag(&mut out, f.acc);
        flag(&mut out, f.tipper_up);
        flag(&mut out, f.cover_closed);
        float(&mut out, f.load_t);
        if let Some(ms) = received_ms {
            out.extend_from_slice(&8i32.to_be_bytes());
            out.extend_from_slice(&ms.to_be_bytes());
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

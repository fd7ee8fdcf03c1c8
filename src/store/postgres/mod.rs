//! PostgreSQL backend: the same tables, methods and semantics as the SQLite
//! one, for several `serve` instances sharing one database. Where SQLite gets
//! its guarantees from having a single writer, this backend takes explicit
//! locks: an advisory lock around migrations, row locks around case changes.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Decode, Postgres, QueryBuilder, Row, Type};

mod cases;
mod permits;
mod violations;

use super::{DeadLetter, StoreError, StoreResult, StoredDeadLetter};
use crate::auth::Role;
use crate::fix::{DeviceId, Fix};
use crate::registry::{Firm, FirmId, Plate, Vehicle};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "permits_violations",
        include_str!("../../../migrations/postgres/0002_permits_violations.sql"),
    ),
    (
        3,
        "cases",
        include_str!("../../../migrations/postgres/0003_cases.sql"),
    ),
    (
        4,
        "fixes_by_time",
        include_str!("../../../migrations/postgres/0004_fixes_by_time.sql"),
    ),
];

/// Advisory lock key held while migrating ("muckwatc" in ASCII): instances
/// started together take turns, so the second one finds the tables made and
/// applies nothing instead of failing on `CREATE TABLE`.
const MIGRATION_LOCK: i64 = 0x6d75_636b_7761_7463;

/// Fixes per INSERT. Fixes go in as 11 arrays (`UNNEST`), so the statement
/// has 11 parameters whatever the batch size; the cap only bounds the size of
/// one message. Ingest batches (<= 1000) fit in one statement.
const FIXES_PER_INSERT: usize = 5000;

/// Rows per multi-row dead-letter INSERT: 5 parameters each stays far below
/// PostgreSQL's limit of 65535 bound parameters.
const DEAD_LETTERS_PER_INSERT: usize = 1000;

/// Connections per instance: the ingest writer, the pipeline's case filing
/// and a few HTTP requests at once, without hogging a shared server's
/// `max_connections` when several instances run.
const POOL_SIZE: u32 = 8;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`) and
    /// migrates. Errors name the URL with its password hidden.
    pub async fn connect(url: &str) -> anyhow::Result<PgStore> {
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
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL `{shown}`: {e}"))?;
        let store = PgStore { pool };
        store
            .migrate()
            .await
            .map_err(|e| anyhow::anyhow!("PostgreSQL `{shown}`: {e}"))?;
        Ok(store)
    }

    /// Applies the missing migrations, each in its own transaction that
    /// first takes [`MIGRATION_LOCK`]; the lock is a transaction lock, so an
    /// error or a dropped connection can never leave it held.
    async fn migrate(&self) -> anyhow::Result<()> {
        for (version, name, sql) in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS schema_migrations \
                 (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_some() {
                continue;
            }
            sqlx::raw_sql(sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| anyhow::anyhow!("migration {version} ({name}) failed: {e}"))?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
            )
            .bind(version)
            .bind(name)
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(version, name, "applied migration");
        }
        Ok(())
    }

    /// Writes fixes, ignoring duplicates (in the batch or already stored);
    /// returns how many were new. Rows go in key order so that two instances
    /// writing overlapping batches lock index entries in the same order and
    /// cannot deadlock.
    pub async fn insert_fixes(&self, fixes: &[Fix], received_ms: i64) -> StoreResult<u64> {
        let mut sorted: Vec<&Fix> = fixes.iter().collect();
        sorted
            .sort_by(|a, b| (a.device_id.as_str(), a.ts_ms).cmp(&(b.device_id.as_str(), b.ts_ms)));
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for chunk in sorted.chunks(FIXES_PER_INSERT) {
            inserted += sqlx::query(
                "INSERT INTO fixes (device_id, ts_ms, lat, lon, speed_kmh, heading, acc, tipper_up, cover_closed, \
                 load_t, received_ms) \
                 SELECT d, t, la, lo, s, h, a, tu, cc, l, $11 \
                 FROM UNNEST($1::text[], $2::bigint[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], \
                             $7::bool[], $8::bool[], $9::bool[], $10::float8[]) AS f(d, t, la, lo, s, h, a, tu, cc, l) \
                 ON CONFLICT (device_id, ts_ms) DO NOTHING",
            )
            .bind(chunk.iter().map(|f| f.device_id.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.ts_ms).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.lat).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.lon).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.speed_kmh).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.heading).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.acc).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.tipper_up).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.cover_closed).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.load_t).collect::<Vec<_>>())
            .bind(received_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Appends dead letters and prunes all but the newest `keep`. Identity
    /// ids can have gaps (a rolled-back insert uses one up), so the cut is
    /// found by counting rows, not by subtracting from the highest id.
    pub async fn insert_dead_letters(&self, items: &[DeadLetter], keep: u64) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for chunk in items.chunks(DEAD_LETTERS_PER_INSERT) {
            let mut q = QueryBuilder::<Postgres>::new(
                "INSERT INTO dead_letters (received_ms, topic, reason, detail, payload) ",
            );
            q.push_values(chunk, |mut b, d| {
                b.push_bind(d.received_ms)
                    .push_bind(&d.topic)
                    .push_bind(d.reason)
                    .push_bind(&d.detail)
                    .push_bind(&d.payload);
            });
            q.build().execute(&mut *tx).await?;
        }
        sqlx::query(
            "DELETE FROM dead_letters WHERE id <= \
             (SELECT id FROM dead_letters ORDER BY id DESC OFFSET $1 LIMIT 1)",
        )
        .bind(i64::try_from(keep).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn dead_letters(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<StoredDeadLetter>, i64)> {
        let rows = sqlx::query(
            "SELECT id, received_ms, topic, reason, detail, payload FROM dead_letters \
             ORDER BY id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters")
            .fetch_one(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(StoredDeadLetter {
                    id: col(r, "id")?,
                    received_ms: col(r, "received_ms")?,
                    topic: col(r, "topic")?,
                    reason: col(r, "reason")?,
                    detail: col(r, "detail")?,
                    payload: col(r, "payload")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((items, total))
    }

    pub async fn create_firm(&self, firm: &Firm, now_ms: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO firms (id, name, created_ms) VALUES ($1, $2, $3)")
            .bind(firm.id.as_str())
            .bind(&firm.name)
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                classify(
                    e,
                    || format!("firm `{}` exists already", firm.id),
                    String::new,
                )
            })?;
        Ok(())
    }

    pub async fn firm(&self, id: &FirmId) -> StoreResult<Option<Firm>> {
        let row = sqlx::query("SELECT id, name FROM firms WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let id: String = col(&r, "id")?;
            Ok(Firm {
                id: FirmId::parse(&id).map_err(StoreError::Corrupt)?,
                name: col(&r, "name")?,
            })
        })
        .transpose()
    }

    pub async fn create_vehicle(&self, v: &Vehicle, now_ms: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO vehicles (plate, device_id, firm_id, rated_load_t, created_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(v.plate.as_str())
        .bind(v.device_id.as_str())
        .bind(v.firm_id.as_str())
        .bind(v.rated_load_t)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            classify(
                e,
                || format!("vehicle `{}` or device `{}` is registered already", v.plate, v.device_id),
                || format!("firm `{}` does not exist", v.firm_id),
            )
        })?;
        Ok(())
    }

    pub async fn vehicle(&self, plate: &Plate) -> StoreResult<Option<Vehicle>> {
        let row = sqlx::query(
            "SELECT plate, device_id, firm_id, rated_load_t FROM vehicles WHERE plate = $1",
        )
        .bind(plate.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(vehicle_from_row).transpose()
    }

    pub async fn vehicles(&self) -> StoreResult<Vec<Vehicle>> {
        let rows = sqlx::query(
            "SELECT plate, device_id, firm_id, rated_load_t FROM vehicles ORDER BY plate",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(vehicle_from_row).collect()
    }

    pub async fn track(
        &self,
        device: &str,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<Fix>> {
        let rows = sqlx::query(
            "SELECT device_id, ts_ms, lat, lon, speed_kmh, heading, acc, tipper_up, cover_closed, load_t \
             FROM fixes WHERE device_id = $1 AND ts_ms BETWEEN $2 AND $3 ORDER BY ts_ms LIMIT $4",
        )
        .bind(device)
        .bind(from_ms)
        .bind(to_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(fix_from_row).collect()
    }

    /// The newest fix of every registered vehicle's device.
    pub async fn latest_vehicle_fixes(&self) -> StoreResult<Vec<Fix>> {
        let rows = sqlx::query(
            "SELECT f.device_id, f.ts_ms, f.lat, f.lon, f.speed_kmh, f.heading, f.acc, f.tipper_up, f.cover_closed, f.load_t \
             FROM vehicles v JOIN fixes f ON f.device_id = v.device_id \
             AND f.ts_ms = (SELECT MAX(ts_ms) FROM fixes WHERE device_id = v.device_id) ORDER BY f.device_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(fix_from_row).collect()
    }

    /// The latest fix time stored (event time), if any.
    pub async fn latest_fix_ms(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT MAX(ts_ms) FROM fixes")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Fixes of every device from `since_ms` on, oldest first.
    pub async fn fixes_since(&self, since_ms: i64, limit: i64) -> StoreResult<Vec<Fix>> {
        let rows = sqlx::query(
            "SELECT device_id, ts_ms, lat, lon, speed_kmh, heading, acc, tipper_up, cover_closed, load_t FROM fixes WHERE ts_ms >= $1 ORDER BY ts_ms, device_id LIMIT $2",
        )
        .bind(since_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(fix_from_row).collect()
    }

    /// Deletes fixes older than `cutoff_ms`, except those within `margin_ms`
    /// of a violation of their device: evidence stays with its case.
    pub async fn prune_fixes(&self, cutoff_ms: i64, margin_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM fixes WHERE ts_ms < $1 AND NOT EXISTS (SELECT 1 FROM violations v \
             WHERE v.device_id = fixes.device_id AND fixes.ts_ms BETWEEN v.started_ms - $2 \
             AND COALESCE(v.ended_ms, v.started_ms) + $2)",
        )
        .bind(cutoff_ms)
        .bind(margin_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn fix_count(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM fixes")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn create_token(&self, hash: &str, role: &Role, now_ms: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO api_tokens (hash, role, created_ms) VALUES ($1, $2, $3)")
            .bind(hash)
            .bind(role.to_string())
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn token_role(&self, hash: &str) -> StoreResult<Option<Role>> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM api_tokens WHERE hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        role.map(|r| Role::parse(&r).map_err(StoreError::Corrupt))
            .transpose()
    }
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

/// One column of a row; a value that does not decode means the database
/// holds something this code never wrote.
pub(super) fn col<'r, T>(row: &'r PgRow, name: &str) -> StoreResult<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(format!("column `{name}`: {e}")))
}

/// Turns key violations into errors that name the object (SQLSTATE 23505
/// unique, 23503 foreign key), as the SQLite backend does.
pub(super) fn classify(
    e: sqlx::Error,
    conflict: impl FnOnce() -> String,
    missing: impl FnOnce() -> String,
) -> StoreError {
    if let Some(db) = e.as_database_error() {
        if db.is_unique_violation() {
            return StoreError::Conflict(conflict());
        }
        if db.is_foreign_key_violation() {
            return StoreError::MissingReference(missing());
        }
    }
    StoreError::Db(e)
}

fn vehicle_from_row(r: &PgRow) -> StoreResult<Vehicle> {
    let plate: String = col(r, "plate")?;
    let device: String = col(r, "device_id")?;
    let firm: String = col(r, "firm_id")?;
    Ok(Vehicle {
        plate: Plate::parse(&plate).map_err(StoreError::Corrupt)?,
        device_id: DeviceId::parse(&device).map_err(StoreError::Corrupt)?,
        firm_id: FirmId::parse(&firm).map_err(StoreError::Corrupt)?,
        rated_load_t: col(r, "rated_load_t")?,
    })
}

fn fix_from_row(r: &PgRow) -> StoreResult<Fix> {
    let device: String = col(r, "device_id")?;
    Ok(Fix {
        device_id: DeviceId::parse(&device).map_err(StoreError::Corrupt)?,
        ts_ms: col(r, "ts_ms")?,
        lat: col(r, "lat")?,
        lon: col(r, "lon")?,
        speed_kmh: col(r, "speed_kmh")?,
        heading: col(r, "heading")?,
        acc: col(r, "acc")?,
        tipper_up: col(r, "tipper_up")?,
        cover_closed: col(r, "cover_closed")?,
        load_t: col(r, "load_t")?,
    })
}

//! SQLite backend: one file, WAL journal, fixes written in multi-row inserts.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

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
        include_str!("../../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "permits_violations",
        include_str!("../../../migrations/sqlite/0002_permits_violations.sql"),
    ),
    (
        3,
        "cases",
        include_str!("../../../migrations/sqlite/0003_cases.sql"),
    ),
    (
        4,
        "fixes_by_time",
        include_str!("../../../migrations/sqlite/0004_fixes_by_time.sql"),
    ),
];

/// Rows per INSERT statement: 11 parameters each stays far below SQLite's
/// limit of 32766 bound parameters.
const ROWS_PER_INSERT: usize = 500;

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> anyhow::Result<SqliteStore> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("database url `{url}`: {e}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open SQLite database `{url}`: {e}"))?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations \
             (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        for (version, name, sql) in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
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
                "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)",
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

    pub async fn insert_fixes(&self, fixes: &[Fix], received_ms: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for chunk in fixes.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO fixes (device_id, ts_ms, lat, lon, speed_kmh, heading, acc, \
                 tipper_up, cover_closed, load_t, received_ms) ",
            );
            q.push_values(chunk, |mut b, f| {
                b.push_bind(f.device_id.as_str().to_string())
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
            inserted += q.build().execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }

    pub async fn insert_dead_letters(&self, items: &[DeadLetter], keep: u64) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for chunk in items.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(
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
        sqlx::query("DELETE FROM dead_letters WHERE id <= (SELECT MAX(id) FROM dead_letters) - ?")
            .bind(keep as i64)
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
             ORDER BY id DESC LIMIT ? OFFSET ?",
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
                    id: r.try_get("id")?,
                    received_ms: r.try_get("received_ms")?,
                    topic: r.try_get("topic")?,
                    reason: r.try_get("reason")?,
                    detail: r.try_get("detail")?,
                    payload: r.try_get("payload")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok((items, total))
    }

    pub async fn create_firm(&self, firm: &Firm, now_ms: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO firms (id, name, created_ms) VALUES (?, ?, ?)")
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
        let row = sqlx::query("SELECT id, name FROM firms WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let id: String = r.try_get("id")?;
            Ok(Firm {
                id: FirmId::parse(&id).map_err(StoreError::Corrupt)?,
                name: r.try_get("name")?,
            })
        })
        .transpose()
    }

    pub async fn create_vehicle(&self, v: &Vehicle, now_ms: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO vehicles (plate, device_id, firm_id, rated_load_t, created_ms) VALUES (?, ?, ?, ?, ?)",
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
            "SELECT plate, device_id, firm_id, rated_load_t FROM vehicles WHERE plate = ?",
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
             FROM fixes WHERE device_id = ? AND ts_ms BETWEEN ? AND ? ORDER BY ts_ms LIMIT ?",
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
            "SELECT device_id, ts_ms, lat, lon, speed_kmh, heading, acc, tipper_up, cover_closed, load_t FROM fixes WHERE ts_ms >= ? ORDER BY ts_ms, device_id LIMIT ?",
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
            "DELETE FROM fixes WHERE ts_ms < ?1 AND NOT EXISTS (SELECT 1 FROM violations v \
             WHERE v.device_id = fixes.device_id AND fixes.ts_ms BETWEEN v.started_ms - ?2 \
             AND COALESCE(v.ended_ms, v.started_ms) + ?2)",
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
        sqlx::query("INSERT INTO api_tokens (hash, role, created_ms) VALUES (?, ?, ?)")
            .bind(hash)
            .bind(role.to_string())
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn token_role(&self, hash: &str) -> StoreResult<Option<Role>> {
        let role: Option<String> = sqlx::query_scalar("SELECT role FROM api_tokens WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        role.map(|r| Role::parse(&r).map_err(StoreError::Corrupt))
            .transpose()
    }
}

/// Turns key violations into errors that name the object.
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

fn vehicle_from_row(r: &SqliteRow) -> StoreResult<Vehicle> {
    let plate: String = r.try_get("plate")?;
    let device: String = r.try_get("device_id")?;
    let firm: String = r.try_get("firm_id")?;
    Ok(Vehicle {
        plate: Plate::parse(&plate).map_err(StoreError::Corrupt)?,
        device_id: DeviceId::parse(&device).map_err(StoreError::Corrupt)?,
        firm_id: FirmId::parse(&firm).map_err(StoreError::Corrupt)?,
        rated_load_t: r.try_get("rated_load_t")?,
    })
}

fn fix_from_row(r: &SqliteRow) -> StoreResult<Fix> {
    let device: String = r.try_get("device_id")?;
    Ok(Fix {
        device_id: DeviceId::parse(&device).map_err(StoreError::Corrupt)?,
        ts_ms: r.try_get("ts_ms")?,
        lat: r.try_get("lat")?,
        lon: r.try_get("lon")?,
        speed_kmh: r.try_get("speed_kmh")?,
        heading: r.try_get("heading")?,
        acc: r.try_get("acc")?,
        tipper_up: r.try_get("tipper_up")?,
        cover_closed: r.try_get("cover_closed")?,
        load_t: r.try_get("load_t")?,
    })
}

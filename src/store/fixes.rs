//! Fixes (written in batches, read by vehicle and time, pruned past
//! retention) and dead letters.
//!
//! Reads go through the `all_fixes` view: on SQLite `fixes` itself, on
//! PostgreSQL `fixes` and the evidence kept from dropped partitions.

use std::sync::atomic::Ordering::Relaxed;

use super::db::{Backend, Sql};
use super::{postgres, sqlite, DeadLetter, Store, StoreResult, StoredDeadLetter};
use crate::fix::{DeviceId, Fix};

/// The columns of a fix, in the order of the tables and of [`FixRow`].
pub const FIX_COLUMNS: &str =
    "device_id, ts_ms, lat, lon, speed_kmh, heading, acc, tipper_up, cover_closed, load_t";

/// A fix `f` is evidence of violation `v` (`$1`: the margin in ms): it was
/// reported by the same device within the margin of the episode.
pub const EVIDENCE_OF: &str = "f.device_id = v.device_id AND f.ts_ms BETWEEN \
     v.started_ms - $1 AND COALESCE(v.ended_ms, v.started_ms) + $1";

/// Rows per multi-row dead-letter INSERT: 5 parameters each stays far below
/// either backend's limit of bound parameters.
const DEAD_LETTERS_PER_INSERT: usize = 1000;

/// Deletes the fixes of `table` older than `cutoff_ms` that are not
/// evidence (within `margin_ms` of a violation of their device).
pub fn delete_old_fixes(table: &str, cutoff_ms: i64, margin_ms: i64) -> Sql {
    Sql::new(format!(
        "DELETE FROM {table} AS f WHERE f.ts_ms < $2 \
         AND NOT EXISTS (SELECT 1 FROM violations v WHERE {EVIDENCE_OF})"
    ))
    .bind(margin_ms)
    .bind(cutoff_ms)
}

#[derive(sqlx::FromRow)]
struct FixRow {
    device_id: DeviceId,
    ts_ms: i64,
    lat: f64,
    lon: f64,
    speed_kmh: f64,
    heading: Option<f64>,
    acc: Option<bool>,
    tipper_up: Option<bool>,
    cover_closed: Option<bool>,
    load_t: Option<f64>,
}

impl From<FixRow> for Fix {
    fn from(r: FixRow) -> Fix {
        Fix {
            device_id: r.device_id,
            ts_ms: r.ts_ms,
            lat: r.lat,
            lon: r.lon,
            speed_kmh: r.speed_kmh,
            heading: r.heading,
            acc: r.acc,
            tipper_up: r.tipper_up,
            cover_closed: r.cover_closed,
            load_t: r.load_t,
        }
    }
}

/// How long batches of fixes go the way that skips duplicates after one
/// met a duplicate (PostgreSQL).
const DUPLICATES_BURST_MS: i64 = 30_000;

impl Store {
    async fn fixes(&self, q: Sql) -> StoreResult<Vec<Fix>> {
        let rows: Vec<FixRow> = self.db.fetch_all(&q).await?;
        Ok(rows.into_iter().map(Fix::from).collect())
    }

    /// Writes fixes, ignoring duplicates (in the batch or already stored);
    /// returns how many were new. Rows go in key order, so that two
    /// instances writing overlapping batches lock index entries in the same
    /// order and cannot deadlock.
    pub async fn insert_fixes(&self, fixes: &[Fix], received_ms: i64) -> StoreResult<u64> {
        let mut sorted: Vec<&Fix> = fixes.iter().collect();
        sorted
            .sort_by(|a, b| (a.device_id.as_str(), a.ts_ms).cmp(&(b.device_id.as_str(), b.ts_ms)));
        // The first of the same device and time is kept, as a conflict would.
        sorted.dedup_by(|b, a| (a.device_id, a.ts_ms) == (b.device_id, b.ts_ms));
        if let Some(n) = self.copy_new_fixes(&sorted, received_ms).await? {
            return Ok(n);
        }
        let mut tx = self.db.begin().await?;
        let mut inserted = 0;
        match &mut tx {
            Backend::Sqlite(t) => {
                let mut rest = &sorted[..];
                for size in sqlite::insert_chunks(sorted.len()) {
                    let (chunk, after) = rest.split_at(size);
                    inserted += sqlite::insert_fixes(t, chunk, received_ms).await?;
                    rest = after;
                }
            }
            Backend::Postgres(t) => {
                inserted += postgres::copy_fixes(t, &sorted, received_ms).await?;
            }
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// PostgreSQL, outside a burst of duplicates: the batch by plain COPY
    /// in a transaction of its own. `None`: not tried (SQLite, a burst), or
    /// it met a stored fix, which starts a burst; the batch is then to be
    /// written skipping duplicates.
    async fn copy_new_fixes(&self, sorted: &[&Fix], received_ms: i64) -> StoreResult<Option<u64>> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        if matches!(self.db.backend(), Backend::Sqlite(_))
            || now_ms < self.skip_duplicates_until_ms.load(Relaxed)
        {
            return Ok(None);
        }
        let mut tx = self.db.begin().await?;
        let Backend::Postgres(t) = &mut tx else {
            return Ok(None);
        };
        match postgres::copy_new_fixes(t, sorted, received_ms).await? {
            Some(n) => {
                tx.commit().await?;
                Ok(Some(n))
            }
            None => {
                // Duplicates come in bursts (a broker resending what was
                // not acknowledged): the next batches skip them without
                // trying the plain way first. Dropped, the aborted
                // transaction rolls back.
                self.skip_duplicates_until_ms
                    .store(now_ms + DUPLICATES_BURST_MS, Relaxed);
                Ok(None)
            }
        }
    }

    /// Fixes of one device in `[from_ms, to_ms]`, oldest first, at most `limit`.
    pub async fn track(
        &self,
        device: &str,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<Fix>> {
        self.fixes(
            Sql::new(format!(
                "SELECT {FIX_COLUMNS} FROM all_fixes \
                 WHERE device_id = $1 AND ts_ms BETWEEN $2 AND $3 ORDER BY ts_ms LIMIT $4"
            ))
            .bind(device)
            .bind(from_ms)
            .bind(to_ms)
            .bind(limit),
        )
        .await
    }

    /// The newest fix of every registered vehicle's device (vehicles with no
    /// fix are absent); one primary-key lookup per vehicle.
    pub async fn latest_vehicle_fixes(&self) -> StoreResult<Vec<Fix>> {
        self.fixes(Sql::new(
            "SELECT f.device_id, f.ts_ms, f.lat, f.lon, f.speed_kmh, f.heading, f.acc, f.tipper_up, \
             f.cover_closed, f.load_t FROM vehicles v JOIN all_fixes f ON f.device_id = v.device_id \
             AND f.ts_ms = (SELECT MAX(ts_ms) FROM all_fixes WHERE device_id = v.device_id) \
             ORDER BY f.device_id",
        ))
        .await
    }

    /// The latest fix time stored (event time), if any.
    pub async fn latest_fix_ms(&self) -> StoreResult<Option<i64>> {
        self.db
            .fetch_value(&Sql::new("SELECT MAX(ts_ms) FROM all_fixes"))
            .await
    }

    /// Where the fleet clock stood by the stored fixes: the `rank`-th latest
    /// of the registered vehicles' newest fix times up to `until_ms` (the
    /// smallest of them when fewer vehicles have fixes), so that a few
    /// terminals stamping far ahead do not decide it. One primary-key lookup
    /// per vehicle.
    pub async fn fleet_time_ms(&self, rank: i64, until_ms: i64) -> StoreResult<Option<i64>> {
        let times: Vec<(i64,)> = self
            .db
            .fetch_all(
                &Sql::new(
                    "SELECT t FROM (SELECT (SELECT MAX(f.ts_ms) FROM all_fixes f \
                     WHERE f.device_id = v.device_id AND f.ts_ms <= $1) AS t FROM vehicles v) \
                     AS latest WHERE t IS NOT NULL ORDER BY t DESC LIMIT $2",
                )
                .bind(until_ms)
                .bind(rank),
            )
            .await?;
        Ok(times.last().map(|t| t.0))
    }

    /// Fixes of every device from `since_ms` on, oldest first, at most `limit`.
    pub async fn fixes_since(&self, since_ms: i64, limit: i64) -> StoreResult<Vec<Fix>> {
        self.fixes(
            Sql::new(format!(
                "SELECT {FIX_COLUMNS} FROM all_fixes WHERE ts_ms >= $1 \
                 ORDER BY ts_ms, device_id LIMIT $2"
            ))
            .bind(since_ms)
            .bind(limit),
        )
        .await
    }

    /// Removes fixes older than `cutoff_ms`, except evidence: fixes within
    /// `margin_ms` of a violation of their device stay with its case. Returns
    /// how many went. On PostgreSQL whole days go at once, the first
    /// retention run after their last fix is past the cutoff.
    pub async fn prune_fixes(&self, cutoff_ms: i64, margin_ms: i64) -> StoreResult<u64> {
        match self.db.backend() {
            Backend::Sqlite(_) => {
                let q = delete_old_fixes("fixes", cutoff_ms, margin_ms);
                self.db.execute(&q).await
            }
            Backend::Postgres(_) => postgres::prune_fixes(&self.db, cutoff_ms, margin_ms).await,
        }
    }

    /// Makes the partitions of `fixes` for the UTC day of `now_ms` and the
    /// `days_ahead` after it (PostgreSQL; SQLite keeps one table). Returns
    /// the partitions made.
    pub async fn prepare_fix_partitions(
        &self,
        now_ms: i64,
        days_ahead: u32,
    ) -> StoreResult<Vec<String>> {
        match self.db.backend() {
            Backend::Sqlite(_) => Ok(Vec::new()),
            Backend::Postgres(_) => {
                postgres::prepare_fix_partitions(&self.db, now_ms, days_ahead).await
            }
        }
    }

    /// Fixes stored, the evidence kept from dropped partitions included.
    pub async fn fix_count(&self) -> StoreResult<i64> {
        self.db
            .fetch_value(&Sql::new("SELECT COUNT(*) FROM all_fixes"))
            .await
    }

    /// Appends dead letters and prunes all but the newest `keep`. Ids can
    /// have gaps (a rolled-back insert uses one up on PostgreSQL), so the cut
    /// is found by counting rows, not by subtracting from the highest id.
    pub async fn insert_dead_letters(&self, items: &[DeadLetter], keep: u64) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        for chunk in items.chunks(DEAD_LETTERS_PER_INSERT) {
            let mut q = Sql::new(
                "INSERT INTO dead_letters (received_ms, topic, reason, detail, payload) VALUES ",
            );
            for (i, d) in chunk.iter().enumerate() {
                q.push(if i == 0 { "(" } else { ", (" })
                    .push_bind(d.received_ms)
                    .push(", ")
                    .push_bind(d.topic.as_str())
                    .push(", ")
                    .push_bind(d.reason)
                    .push(", ")
                    .push_bind(d.detail.as_str())
                    .push(", ")
                    .push_bind(d.payload.as_str())
                    .push(")");
            }
            tx.execute(&q).await?;
        }
        tx.execute(
            &Sql::new(
                "DELETE FROM dead_letters WHERE id <= \
                 (SELECT id FROM dead_letters ORDER BY id DESC LIMIT 1 OFFSET $1)",
            )
            .bind(i64::try_from(keep).unwrap_or(i64::MAX)),
        )
        .await?;
        tx.commit().await
    }

    pub async fn dead_letters(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<StoredDeadLetter>, i64)> {
        let items = self
            .db
            .fetch_all(
                &Sql::new(
                    "SELECT id, received_ms, topic, reason, detail, payload FROM dead_letters \
                     ORDER BY id DESC LIMIT $1 OFFSET $2",
                )
                .bind(limit)
                .bind(offset),
            )
            .await?;
        let total = self
            .db
            .fetch_value(&Sql::new("SELECT COUNT(*) FROM dead_letters"))
            .await?;
        Ok((items, total))
    }
}

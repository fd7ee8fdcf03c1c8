//! Violations: one row per episode, opened when raised, closed when it ends.

use super::codec::JsonText;
use super::db::{Sql, Tx};
use super::outbox::write_event;
use super::{Store, StoreError, StoreResult, StoredViolation, ViolationFilter};
use crate::cases::{Audit, NewViolationCase, SYSTEM};
use crate::identity::{DeviceId, FirmId, Plate};
use crate::outbox::EventType;
use crate::violation::violation_json;
use crate::violation::{Uncertainty, Violation, ViolationCode};

const COLUMNS: &str = "id, code, plate, device_id, firm_id, permit_id, started_ms, ended_ms, \
     lat, lon, measured, fences, uncertainty, case_id, status";

#[derive(sqlx::FromRow)]
struct ViolationRow {
    id: i64,
    code: ViolationCode,
    plate: Plate,
    device_id: DeviceId,
    firm_id: FirmId,
    permit_id: Option<String>,
    started_ms: i64,
    ended_ms: Option<i64>,
    lat: f64,
    lon: f64,
    measured: f64,
    fences: JsonText<Vec<String>>,
    uncertainty: Option<JsonText<Uncertainty>>,
    case_id: Option<i64>,
    status: String,
}

impl From<ViolationRow> for StoredViolation {
    fn from(r: ViolationRow) -> StoredViolation {
        StoredViolation {
            id: r.id,
            code: r.code,
            plate: r.plate,
            device_id: r.device_id,
            firm_id: r.firm_id,
            permit_id: r.permit_id,
            started_ms: r.started_ms,
            ended_ms: r.ended_ms,
            lat: r.lat,
            lon: r.lon,
            measured: r.measured,
            fences: r.fences.0,
            uncertainty: r.uncertainty.map(|u| u.0),
            case_id: r.case_id,
            withdrawn: r.status == WITHDRAWN,
        }
    }
}

pub(super) const WITHDRAWN: &str = "withdrawn";

/// A raised TRACK_GAP that a late fix falls inside: a candidate for withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct GapSpan {
    pub id: i64,
    pub started_ms: i64,
    pub ended_ms: i64,
    pub case_id: Option<i64>,
}

/// What [`Store::raise_violation`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    /// Stored (or found stored and unfiled) and filed now.
    New { id: i64, case_id: i64 },
    /// The same episode again (a replay, a restart): filed before.
    Again { id: i64, case_id: i64 },
}

fn insert_sql(v: &Violation, now_ms: i64) -> StoreResult<Sql> {
    let fences =
        serde_json::to_string(&v.fences).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let uncertainty = v
        .uncertainty
        .map(|u| serde_json::to_string(&u))
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Sql::new(
        "INSERT INTO violations (code, plate, device_id, firm_id, permit_id, started_ms, \
         ended_ms, lat, lon, measured, fences, uncertainty, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (device_id, code, started_ms) DO NOTHING RETURNING id",
    )
    .bind(v.code)
    .bind(&v.plate)
    .bind(&v.device_id)
    .bind(&v.firm_id)
    .bind(v.permit_id.as_deref())
    .bind(v.started_ms)
    .bind(v.ended_ms)
    .bind(v.lat)
    .bind(v.lon)
    .bind(v.measured)
    .bind(fences)
    .bind(uncertainty.as_deref())
    .bind(now_ms))
}

/// An insert that conflicted with a row no longer there.
fn vanished() -> StoreError {
    StoreError::Corrupt("a violation conflicted on insert and is not there".into())
}

/// The id and case of the stored episode `v`.
fn existing_sql(v: &Violation) -> Sql {
    Sql::new(
        "SELECT id, case_id FROM violations WHERE device_id = $1 AND code = $2 AND started_ms = $3",
    )
    .bind(&v.device_id)
    .bind(v.code)
    .bind(v.started_ms)
}

/// Violation `id` as `tx` sees it.
pub(super) async fn violation_in(tx: &mut Tx, id: i64) -> StoreResult<Option<StoredViolation>> {
    let q = Sql::new(format!("SELECT {COLUMNS} FROM violations WHERE id = $1")).bind(id);
    Ok(tx
        .fetch_optional::<ViolationRow>(&q)
        .await?
        .map(StoredViolation::from))
}

impl Store {
    /// `WHERE` of a violation list.
    fn violations_where(&self, mut q: Sql, f: &ViolationFilter) -> Sql {
        q.push(" WHERE TRUE")
            .and(" AND plate = {}", f.plate.as_deref())
            .and(" AND code = {}", f.code)
            .and(" AND started_ms >= {}", f.since_ms)
            .and(" AND created_ms >= {}", f.created_since_ms)
            .and(" AND firm_id = {}", f.firm.as_deref())
            .and(" AND case_id = {}", f.case_id)
            // EXISTS: the page walks violations in (started_ms, id) order
            // (violations_started_id) and stops at its limit.
            .and(
                " AND EXISTS (SELECT 1 FROM case_checks w WHERE w.case_id = violations.case_id \
                 AND w.department = {})",
                f.visible_to,
            );
        if let Some(ids) = &f.ids {
            q.push(" AND id");
            self.db.push_in_ids(&mut q, ids);
        }
        q
    }

    /// Stores a raised violation; the same episode (device, code, start)
    /// stored again returns the existing id.
    pub async fn insert_violation(&self, v: &Violation, now_ms: i64) -> StoreResult<i64> {
        let mut tx = self.db.begin().await?;
        let inserted = tx.fetch_optional::<(i64,)>(&insert_sql(v, now_ms)?).await?;
        let id = match inserted {
            Some((id,)) => id,
            None => {
                let existing: Option<(i64, Option<i64>)> =
                    tx.fetch_optional(&existing_sql(v)).await?;
                existing.map(|(id, _)| id).ok_or_else(vanished)?
            }
        };
        tx.commit().await?;
        if inserted.is_some() {
            self.changed();
        }
        Ok(id)
    }

    /// Stores a raised violation and files it into its case
    /// ([`Store::file_violation`]) in one transaction, with its events:
    /// a violation is never stored without its case and its outbox rows.
    /// `case.violation_id` is ignored (the stored id is used). The same
    /// episode again, already filed: nothing written.
    pub async fn raise_violation(
        &self,
        v: &Violation,
        case: &NewViolationCase,
        now_ms: i64,
    ) -> StoreResult<Raised> {
        let mut tx = self.db.begin().await?;
        super::cases::lock_filing(&mut tx, v.plate.as_str()).await?;
        let id = match tx.fetch_optional::<(i64,)>(&insert_sql(v, now_ms)?).await? {
            Some((id,)) => id,
            None => match tx
                .fetch_optional::<(i64, Option<i64>)>(&existing_sql(v))
                .await?
                .ok_or_else(vanished)?
            {
                (id, Some(case_id)) => return Ok(Raised::Again { id, case_id }),
                // Stored by an earlier muckwatch that stopped before filing it.
                (id, None) => id,
            },
        };
        let case = NewViolationCase {
            violation_id: id,
            ..case.clone()
        };
        let case_id = self.file_in(&mut tx, &case, now_ms).await?;
        tx.commit().await?;
        self.changed();
        Ok(Raised::New { id, case_id })
    }

    /// The case a violation was filed into, if it was.
    pub async fn violation_case(&self, id: i64) -> StoreResult<Option<i64>> {
        let q = Sql::new("SELECT case_id FROM violations WHERE id = $1").bind(id);
        let case: Option<(Option<i64>,)> = self.db.fetch_optional(&q).await?;
        Ok(case.and_then(|(c,)| c))
    }

    pub async fn end_violation(
        &self,
        device: &str,
        code: &str,
        started_ms: i64,
        ended_ms: i64,
    ) -> StoreResult<()> {
        let q = Sql::new(
            "UPDATE violations SET ended_ms = $1 \
             WHERE device_id = $2 AND code = $3 AND started_ms = $4",
        )
        .bind(ended_ms)
        .bind(device)
        .bind(code)
        .bind(started_ms);
        self.db.execute(&q).await?;
        self.changed();
        Ok(())
    }

    pub async fn violations(
        &self,
        f: &ViolationFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<StoredViolation>, i64)> {
        let mut q = self.violations_where(Sql::new(format!("SELECT {COLUMNS} FROM violations")), f);
        q.push(" ORDER BY started_ms, id LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows: Vec<ViolationRow> = self.db.fetch_all(&q).await?;
        let count = self.violations_where(Sql::new("SELECT COUNT(*) FROM violations"), f);
        let total = self.db.fetch_value(&count).await?;
        Ok((rows.into_iter().map(StoredViolation::from).collect(), total))
    }

    /// The raised (not withdrawn), ended TRACK_GAPs of `device` whose span holds `ts_ms`.
    pub async fn track_gaps_spanning(&self, device: &str, ts_ms: i64) -> StoreResult<Vec<GapSpan>> {
        let q = Sql::new(
            "SELECT id, started_ms, ended_ms, case_id FROM violations \
             WHERE device_id = $1 AND code = $2 AND status = $3 AND ended_ms IS NOT NULL \
             AND started_ms < $4 AND ended_ms > $4 ORDER BY started_ms",
        )
        .bind(device)
        .bind(ViolationCode::TrackGap)
        .bind("raised")
        .bind(ts_ms);
        self.db.fetch_all(&q).await
    }

    /// `device`'s raised TRACK_GAP that started at `started_ms`, if any.
    pub async fn track_gap_started_at(
        &self,
        device: &str,
        started_ms: i64,
    ) -> StoreResult<Option<GapSpan>> {
        let q = Sql::new(
            "SELECT id, started_ms, ended_ms, case_id FROM violations \
             WHERE device_id = $1 AND code = $2 AND status = $3 AND ended_ms IS NOT NULL \
             AND started_ms = $4 ORDER BY id LIMIT 1",
        )
        .bind(device)
        .bind(ViolationCode::TrackGap)
        .bind("raised")
        .bind(started_ms);
        Ok(self.db.fetch_all(&q).await?.into_iter().next())
    }

    /// The times of `device`'s stored fixes in `[from_ms, to_ms]`, oldest first.
    pub async fn fix_times(&self, device: &str, from_ms: i64, to_ms: i64) -> StoreResult<Vec<i64>> {
        let q = Sql::new(
            "SELECT ts_ms FROM all_fixes WHERE device_id = $1 AND ts_ms BETWEEN $2 AND $3 \
             ORDER BY ts_ms",
        )
        .bind(device)
        .bind(from_ms)
        .bind(to_ms);
        let rows: Vec<(i64,)> = self.db.fetch_all(&q).await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    /// Withdraws violation `id` with its case's audit lines, in one
    /// transaction; a credit deduction it was charged is reversed there too,
    /// with its own audit line, and a withdrawn violation is never charged
    /// afterwards (the ledger skips it). False when it was not raised any more
    /// (withdrawn meanwhile): nothing written, so all of it happens once.
    ///
    /// The case is locked before the violation changes, as a check change
    /// locks it, so a decision taken meanwhile either sees the withdrawal or
    /// its charge is seen, and reversed, here. `case_id` is the caller's
    /// view; the violation's own, read here, wins.
    pub async fn withdraw_violation(
        &self,
        id: i64,
        case_id: Option<i64>,
        audit: &[Audit],
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.db.begin().await?;
        let q = Sql::new("SELECT case_id FROM violations WHERE id = $1").bind(id);
        let seen: Option<(Option<i64>,)> = tx.fetch_optional(&q).await?;
        let Some((seen,)) = seen else {
            return Ok(false);
        };
        if let Some(c) = seen {
            lock_case(&mut tx, c).await?;
        }
        let q = Sql::new(
            "UPDATE violations SET status = $1 WHERE id = $2 AND status = $3 RETURNING case_id",
        )
        .bind(WITHDRAWN)
        .bind(id)
        .bind("raised");
        let Some((filed,)) = tx.fetch_optional::<(Option<i64>,)>(&q).await? else {
            return Ok(false);
        };
        if let Some(c) = filed.filter(|c| Some(*c) != seen) {
            // Filed meanwhile (the update waited for that filing to commit).
            lock_case(&mut tx, c).await?;
        }
        if let Some(case_id) = filed.or(case_id) {
            super::cases::write_audit(&mut tx, case_id, audit).await?;
        }
        if let Some(case_id) = filed {
            let checks = super::cases::case_checks(&mut tx, case_id).await?;
            super::credit::write_case_credit(&mut tx, case_id, &checks, SYSTEM, now_ms).await?;
        }
        self.write_withdrawn_event(&mut tx, id, audit, now_ms)
            .await?;
        tx.commit().await?;
        self.changed();
        Ok(true)
    }

    /// `violation.withdrawn` for violation `id` (withdrawn in `tx`), when a
    /// webhook wants it. Its case's row is locked (already, by the
    /// withdrawal), as every writer of that case's events does, so the
    /// case's events are numbered in the order they commit.
    async fn write_withdrawn_event(
        &self,
        tx: &mut Tx,
        id: i64,
        audit: &[Audit],
        now_ms: i64,
    ) -> StoreResult<()> {
        let Some(routes) = self.routes_for(EventType::ViolationWithdrawn) else {
            return Ok(());
        };
        let Some(v) = violation_in(tx, id).await? else {
            return Ok(());
        };
        let key = match v.case_id {
            Some(c) => super::outbox::case_key(c),
            None => format!("violation:{id}"),
        };
        let mut data = violation_json(&v, routes.tz);
        data["reason"] = audit
            .iter()
            .find_map(|a| a.after.as_deref())
            .map(|why| why.strip_prefix("withdrawn: ").unwrap_or(why).into())
            .unwrap_or_default();
        write_event(
            tx,
            routes,
            EventType::ViolationWithdrawn,
            &key,
            now_ms,
            data,
        )
        .await
    }
}

/// Takes case `id`'s row lock (PostgreSQL; SQLite's writer lock is held already).
async fn lock_case(tx: &mut Tx, id: i64) -> StoreResult<()> {
    let q = Sql::new(format!(
        "SELECT id FROM cases WHERE id = $1{}",
        tx.for_update()
    ))
    .bind(id);
    tx.fetch_optional::<(i64,)>(&q).await?;
    Ok(())
}

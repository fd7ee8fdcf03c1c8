//! Cases, their checks, parties and audit trail.
//!
//! SQLite serialises every write transaction by itself; PostgreSQL lets them
//! run side by side, so each read-then-write here locks what it read first:
//! the case row (`FOR UPDATE`) for a check change, and additionally the
//! vehicle's plate (a transaction advisory lock) for filing, where the case
//! row to lock may not exist yet.

use std::collections::{BTreeMap, HashMap};

use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Transaction};

use super::{col, PgStore};
use crate::auth::Department;
use crate::cases::{CheckStatus, CheckUpdate};
use crate::store::{
    AuditRecord, CaseFilter, CaseRecord, CheckError, CheckRecord, NewViolationCase, Stats,
    StoreResult,
};

/// First key of the advisory lock taken while filing into a vehicle's case
/// ("mwca"); the second is `hashtext(plate)`. A hash collision between two
/// plates only makes their filings take turns.
const FILING_LOCK_CLASS: i32 = 0x6d77_6361;

impl PgStore {
    /// Files violation `violation_id` into the vehicle's open case of the
    /// merge window, or a new one; adds missing checks and parties; every
    /// addition is audited. Returns the case id.
    pub async fn file_violation(&self, f: &NewViolationCase<'_>, now_ms: i64) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await?;
        // Two filings for one vehicle at once would each find no open case
        // and open two: they take turns per plate.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(FILING_LOCK_CLASS)
            .bind(f.plate)
            .execute(&mut *tx)
            .await?;
        // The case row is locked so that a check closing it meanwhile
        // (update_check) either sees the check added here or closed it first,
        // in which case the row no longer matches and a new case opens.
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM cases WHERE plate = $1 AND status = 'open' AND opened_ms >= $2 AND opened_ms <= $3 \
             ORDER BY opened_ms DESC LIMIT 1 FOR UPDATE",
        )
        .bind(f.plate)
        .bind(f.started_ms - f.merge_window_ms)
        .bind(f.started_ms + f.merge_window_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let case_id = match open {
            Some(id) => id,
            None => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO cases (plate, device_id, firm_id, status, opened_ms) VALUES ($1, $2, $3, 'open', $4) RETURNING id",
                )
                .bind(f.plate)
                .bind(f.device_id)
                .bind(f.firm_id)
                .bind(f.started_ms)
                .fetch_one(&mut *tx)
                .await?;
                audit(
                    &mut tx,
                    id,
                    now_ms,
                    "system",
                    None,
                    "case",
                    None,
                    Some("open"),
                )
                .await?;
                id
            }
        };
        sqlx::query("UPDATE violations SET case_id = $1 WHERE id = $2")
            .bind(case_id)
            .bind(f.violation_id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            case_id,
            now_ms,
            "system",
            None,
            "violation",
            None,
            Some(&format!("{} #{}", f.code, f.violation_id)),
        )
        .await?;
        for d in f.departments {
            let added = sqlx::query(
                "INSERT INTO case_checks (case_id, department, status, updated_ms) VALUES ($1, $2, 'pending', $3) \
                 ON CONFLICT (case_id, department) DO NOTHING",
            )
            .bind(case_id)
            .bind(d.as_str())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if added > 0 {
                audit(
                    &mut tx,
                    case_id,
                    now_ms,
                    "system",
                    Some(d.as_str()),
                    "check",
                    None,
                    Some("pending"),
                )
                .await?;
            }
        }
        for (role, name) in f.parties {
            let added = sqlx::query("INSERT INTO case_parties (case_id, role, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(case_id)
                .bind(role)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if added > 0 {
                audit(
                    &mut tx,
                    case_id,
                    now_ms,
                    "system",
                    None,
                    &format!("party.{role}"),
                    None,
                    Some(name),
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(case_id)
    }

    pub async fn case(&self, id: i64) -> StoreResult<Option<CaseRecord>> {
        let filter = CaseFilter {
            id: Some(id),
            ..Default::default()
        };
        Ok(self.cases(&filter, 1, 0).await?.0.into_iter().next())
    }

    pub async fn cases(
        &self,
        f: &CaseFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<CaseRecord>, i64)> {
        let filtered = |q: &mut QueryBuilder<Postgres>| {
            q.push(" WHERE TRUE");
            if let Some(id) = f.id {
                q.push(" AND c.id = ").push_bind(id);
            }
            if let Some(d) = f.visible_to {
                q.push(" AND c.id IN (SELECT case_id FROM case_checks WHERE department = ")
                    .push_bind(d.as_str())
                    .push(")");
            }
            if let Some(d) = f.department {
                q.push(" AND c.id IN (SELECT case_id FROM case_checks WHERE department = ")
                    .push_bind(d.as_str())
                    .push(")");
            }
            if let Some(s) = &f.status {
                q.push(" AND c.status = ").push_bind(s.clone());
            }
            if let Some(firm) = &f.firm {
                q.push(" AND c.firm_id = ").push_bind(firm.clone());
            }
            if let Some(plate) = &f.plate {
                q.push(" AND c.plate = ").push_bind(plate.clone());
            }
            if let Some(code) = &f.code {
                q.push(" AND c.id IN (SELECT case_id FROM violations WHERE code = ")
                    .push_bind(code.clone())
                    .push(")");
            }
            if let Some(from) = f.from_ms {
                q.push(" AND c.opened_ms >= ").push_bind(from);
            }
            if let Some(to) = f.to_ms {
                q.push(" AND c.opened_ms <= ").push_bind(to);
            }
        };
        let mut q = QueryBuilder::<Postgres>::new("SELECT c.id, c.plate, c.device_id, c.firm_id, c.status, c.opened_ms, c.closed_ms FROM cases c");
        filtered(&mut q);
        q.push(" ORDER BY c.opened_ms DESC, c.id DESC LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut c = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM cases c");
        filtered(&mut c);
        let total: i64 = c.build_query_scalar().fetch_one(&self.pool).await?;
        let mut items = rows
            .iter()
            .map(case_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        self.fill_cases(&mut items).await?;
        Ok((items, total))
    }

    /// Adds codes, checks and parties to a page of cases: three queries for
    /// the whole page rather than three per case, as each is a network round
    /// trip here.
    async fn fill_cases(&self, cases: &mut [CaseRecord]) -> StoreResult<()> {
        if cases.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = cases.iter().map(|c| c.id).collect();
        let mut by_id: HashMap<i64, &mut CaseRecord> =
            cases.iter_mut().map(|c| (c.id, c)).collect();
        let codes = sqlx::query("SELECT DISTINCT case_id, code FROM violations WHERE case_id = ANY($1) ORDER BY case_id, code")
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?;
        for r in &codes {
            if let Some(case) = by_id.get_mut(&col::<i64>(r, "case_id")?) {
                case.codes.push(col(r, "code")?);
            }
        }
        let checks = sqlx::query(
            "SELECT case_id, department, status, finding, penalty_party, penalty_amount_cny FROM case_checks \
             WHERE case_id = ANY($1) ORDER BY case_id, department",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        for r in &checks {
            if let Some(case) = by_id.get_mut(&col::<i64>(r, "case_id")?) {
                let party: Option<String> = col(r, "penalty_party")?;
                let amount: Option<f64> = col(r, "penalty_amount_cny")?;
                case.checks.push(CheckRecord {
                    department: col(r, "department")?,
                    status: col(r, "status")?,
                    finding: col(r, "finding")?,
                    penalty: party.zip(amount),
                });
            }
        }
        let parties = sqlx::query("SELECT case_id, role, name FROM case_parties WHERE case_id = ANY($1) ORDER BY case_id, rowid")
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?;
        for r in &parties {
            if let Some(case) = by_id.get_mut(&col::<i64>(r, "case_id")?) {
                case.parties.push((col(r, "role")?, col(r, "name")?));
            }
        }
        Ok(())
    }

    pub async fn case_audit(&self, id: i64) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT id, at_ms, actor, department, field, before, after FROM case_audit WHERE case_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: col(r, "id")?,
                    at_ms: col(r, "at_ms")?,
                    actor: col(r, "actor")?,
                    department: col(r, "department")?,
                    field: col(r, "field")?,
                    before: col(r, "before")?,
                    after: col(r, "after")?,
                })
            })
            .collect()
    }

    /// Moves one department's check one step. The case row is locked first,
    /// so two departments changing the same case take turns: each reads the
    /// other's committed change, neither overwrites it, and the last check to
    /// close closes the case. A status changed meanwhile is refused rather
    /// than applied.
    pub async fn update_check(
        &self,
        case_id: i64,
        dept: Department,
        u: &CheckUpdate,
        actor: &str,
        now_ms: i64,
    ) -> Result<(), CheckError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT id FROM cases WHERE id = $1 FOR UPDATE")
            .bind(case_id)
            .fetch_optional(&mut *tx)
            .await?;
        let row = sqlx::query(
            "SELECT status, finding, penalty_party, penalty_amount_cny FROM case_checks WHERE case_id = $1 AND department = $2",
        )
        .bind(case_id)
        .bind(dept.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(CheckError::NoSuchCheck)?;
        let from: String = col(&row, "status").map_err(CheckError::Store)?;
        let from = CheckStatus::parse(&from)
            .ok_or_else(|| CheckError::Illegal(format!("stored status `{from}` is unknown")))?;
        if from.next() != Some(u.status) {
            return Err(CheckError::Illegal(format!(
                "the {dept} check is {}; it can only move to {}",
                from.as_str(),
                from.next()
                    .map(|s| s.as_str())
                    .unwrap_or("nothing (closed)")
            )));
        }
        let old_finding: Option<String> = col(&row, "finding").map_err(CheckError::Store)?;
        let old_party: Option<String> = col(&row, "penalty_party").map_err(CheckError::Store)?;
        let old_amount: Option<f64> = col(&row, "penalty_amount_cny").map_err(CheckError::Store)?;
        let finding = u.finding.clone().or(old_finding.clone());
        let (party, amount) = match &u.penalty {
            Some(p) => (Some(p.party.clone()), Some(p.amount_cny)),
            None => (old_party.clone(), old_amount),
        };
        let changed = sqlx::query(
            "UPDATE case_checks SET status = $1, finding = $2, penalty_party = $3, penalty_amount_cny = $4, updated_ms = $5 \
             WHERE case_id = $6 AND department = $7 AND status = $8",
        )
        .bind(u.status.as_str())
        .bind(&finding)
        .bind(&party)
        .bind(amount)
        .bind(now_ms)
        .bind(case_id)
        .bind(dept.as_str())
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(CheckError::Illegal(format!(
                "the {dept} check was changed meanwhile; read it again"
            )));
        }
        let d = Some(dept.as_str());
        audit(
            &mut tx,
            case_id,
            now_ms,
            actor,
            d,
            "status",
            Some(from.as_str()),
            Some(u.status.as_str()),
        )
        .await?;
        if finding != old_finding {
            audit(
                &mut tx,
                case_id,
                now_ms,
                actor,
                d,
                "finding",
                old_finding.as_deref(),
                finding.as_deref(),
            )
            .await?;
        }
        if party != old_party || amount != old_amount {
            let show = |p: &Option<String>, a: Option<f64>| {
                p.as_ref().map(|p| format!("{p}: {} CNY", a.unwrap_or(0.0)))
            };
            audit(
                &mut tx,
                case_id,
                now_ms,
                actor,
                d,
                "penalty",
                show(&old_party, old_amount).as_deref(),
                show(&party, amount).as_deref(),
            )
            .await?;
        }
        let closed = sqlx::query(
            "UPDATE cases SET status = 'closed', closed_ms = $1 WHERE id = $2 AND status = 'open' \
             AND NOT EXISTS (SELECT 1 FROM case_checks WHERE case_id = $2 AND status != 'closed')",
        )
        .bind(now_ms)
        .bind(case_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if closed > 0 {
            audit(
                &mut tx,
                case_id,
                now_ms,
                actor,
                None,
                "case",
                Some("open"),
                Some("closed"),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Counts over cases opened in `[from_ms, to_ms]` (violations: started
    /// in it), the same figures as the SQLite backend gives.
    pub async fn stats(&self, from_ms: i64, to_ms: i64) -> StoreResult<Stats> {
        let counts = |sql: &'static str| {
            let pool = self.pool.clone();
            async move {
                let rows = sqlx::query(sql)
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch_all(&pool)
                    .await?;
                rows.iter()
                    .map(|r| Ok((col::<String>(r, "k")?, col::<i64>(r, "n")?)))
                    .collect::<StoreResult<BTreeMap<_, _>>>()
            }
        };
        let by_code = counts(
            "SELECT code AS k, COUNT(*) AS n FROM violations WHERE started_ms BETWEEN $1 AND $2 GROUP BY code",
        )
        .await?;
        let by_department = counts(
            "SELECT k.department AS k, COUNT(*) AS n FROM case_checks k JOIN cases c ON c.id = k.case_id \
             WHERE c.opened_ms BETWEEN $1 AND $2 GROUP BY k.department",
        )
        .await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS cases, \
                    COUNT(*) FILTER (WHERE c.status = 'closed') AS closed, \
                    COUNT(*) FILTER (WHERE (SELECT COUNT(*) FROM case_checks k WHERE k.case_id = c.id) >= 2) AS multi, \
                    COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM violations v WHERE v.case_id = c.id AND v.code = 'OVERLOAD')) AS overload, \
                    (SELECT COALESCE(SUM(k.penalty_amount_cny), 0)::float8 FROM case_checks k JOIN cases c2 ON c2.id = k.case_id \
                     WHERE c2.opened_ms BETWEEN $1 AND $2) AS penalties \
             FROM cases c WHERE c.opened_ms BETWEEN $1 AND $2",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(Stats {
            by_code,
            by_department,
            cases: col(&row, "cases")?,
            closed_cases: col(&row, "closed")?,
            multi_department_cases: col(&row, "multi")?,
            overload_cases: col(&row, "overload")?,
            penalties_cny: col(&row, "penalties")?,
        })
    }
}

/// Appends one audit record inside the change's own transaction, so a change
/// and its record are committed together or not at all.
#[allow(clippy::too_many_arguments)]
async fn audit(
    tx: &mut Transaction<'_, Postgres>,
    case_id: i64,
    at_ms: i64,
    actor: &str,
    department: Option<&str>,
    field: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO case_audit (case_id, at_ms, actor, department, field, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(case_id)
    .bind(at_ms)
    .bind(actor)
    .bind(department)
    .bind(field)
    .bind(before)
    .bind(after)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn case_from_row(r: &PgRow) -> StoreResult<CaseRecord> {
    Ok(CaseRecord {
        id: col(r, "id")?,
        plate: col(r, "plate")?,
        device_id: col(r, "device_id")?,
        firm_id: col(r, "firm_id")?,
        status: col(r, "status")?,
        opened_ms: col(r, "opened_ms")?,
        closed_ms: col(r, "closed_ms")?,
        codes: Vec::new(),
        checks: Vec::new(),
        parties: Vec::new(),
    })
}

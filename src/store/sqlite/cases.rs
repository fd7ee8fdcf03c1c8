//! Cases, their checks, parties and audit trail.

use std::collections::BTreeMap;

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};

use super::SqliteStore;
use crate::auth::Department;
use crate::cases::{CheckStatus, CheckUpdate};
use crate::store::{
    AuditRecord, CaseFilter, CaseRecord, CheckError, CheckRecord, NewViolationCase, Stats,
    StoreResult,
};

impl SqliteStore {
    /// Files violation `violation_id` into the vehicle's open case of the
    /// merge window, or a new one; adds missing checks and parties; every
    /// addition is audited. Returns the case id.
    pub async fn file_violation(&self, f: &NewViolationCase<'_>, now_ms: i64) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await?;
        // A write first, so the transaction takes SQLite's write lock at once.
        sqlx::query("UPDATE violations SET case_id = case_id WHERE id = ?")
            .bind(f.violation_id)
            .execute(&mut *tx)
            .await?;
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM cases WHERE plate = ? AND status = 'open' AND opened_ms >= ? AND opened_ms <= ? \
             ORDER BY opened_ms DESC LIMIT 1",
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
                    "INSERT INTO cases (plate, device_id, firm_id, status, opened_ms) VALUES (?, ?, ?, 'open', ?) RETURNING id",
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
        sqlx::query("UPDATE violations SET case_id = ? WHERE id = ?")
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
                "INSERT INTO case_checks (case_id, department, status, updated_ms) VALUES (?, ?, 'pending', ?) \
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
            let added = sqlx::query("INSERT INTO case_parties (case_id, role, name) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
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
        let filtered = |q: &mut QueryBuilder<Sqlite>| {
            q.push(" WHERE 1=1");
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
        let mut q = QueryBuilder::<Sqlite>::new("SELECT c.id, c.plate, c.device_id, c.firm_id, c.status, c.opened_ms, c.closed_ms FROM cases c");
        filtered(&mut q);
        q.push(" ORDER BY c.opened_ms DESC, c.id DESC LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut c = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM cases c");
        filtered(&mut c);
        let total: i64 = c.build().fetch_one(&self.pool).await?.try_get(0)?;
        let mut items = rows
            .iter()
            .map(case_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        for case in &mut items {
            self.fill_case(case).await?;
        }
        Ok((items, total))
    }

    async fn fill_case(&self, case: &mut CaseRecord) -> StoreResult<()> {
        case.codes = sqlx::query_scalar(
            "SELECT DISTINCT code FROM violations WHERE case_id = ? ORDER BY code",
        )
        .bind(case.id)
        .fetch_all(&self.pool)
        .await?;
        let checks = sqlx::query(
            "SELECT department, status, finding, penalty_party, penalty_amount_cny FROM case_checks WHERE case_id = ? ORDER BY department",
        )
        .bind(case.id)
        .fetch_all(&self.pool)
        .await?;
        case.checks = checks
            .iter()
            .map(|r| {
                let party: Option<String> = r.try_get("penalty_party")?;
                let amount: Option<f64> = r.try_get("penalty_amount_cny")?;
                Ok(CheckRecord {
                    department: r.try_get("department")?,
                    status: r.try_get("status")?,
                    finding: r.try_get("finding")?,
                    penalty: party.zip(amount),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let parties =
            sqlx::query("SELECT role, name FROM case_parties WHERE case_id = ? ORDER BY rowid")
                .bind(case.id)
                .fetch_all(&self.pool)
                .await?;
        case.parties = parties
            .iter()
            .map(|r| Ok((r.try_get("role")?, r.try_get("name")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(())
    }

    pub async fn case_audit(&self, id: i64) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT id, at_ms, actor, department, field, before, after FROM case_audit WHERE case_id = ? ORDER BY id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    at_ms: r.try_get("at_ms")?,
                    actor: r.try_get("actor")?,
                    department: r.try_get("department")?,
                    field: r.try_get("field")?,
                    before: r.try_get("before")?,
                    after: r.try_get("after")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Moves one department's check one step, in one transaction that only
    /// succeeds from the status it read: two departments never overwrite
    /// each other, and a stale update is refused rather than applied.
    pub async fn update_check(
        &self,
        case_id: i64,
        dept: Department,
        u: &CheckUpdate,
        actor: &str,
        now_ms: i64,
    ) -> Result<(), CheckError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE cases SET id = id WHERE id = ?")
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("SELECT status, finding, penalty_party, penalty_amount_cny FROM case_checks WHERE case_id = ? AND department = ?")
            .bind(case_id)
            .bind(dept.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(CheckError::NoSuchCheck)?;
        let from: String = row.try_get("status")?;
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
        let old_finding: Option<String> = row.try_get("finding")?;
        let old_party: Option<String> = row.try_get("penalty_party")?;
        let old_amount: Option<f64> = row.try_get("penalty_amount_cny")?;
        let finding = u.finding.clone().or(old_finding.clone());
        let (party, amount) = match &u.penalty {
            Some(p) => (Some(p.party.clone()), Some(p.amount_cny)),
            None => (old_party.clone(), old_amount),
        };
        sqlx::query(
            "UPDATE case_checks SET status = ?, finding = ?, penalty_party = ?, penalty_amount_cny = ?, updated_ms = ? \
             WHERE case_id = ? AND department = ? AND status = ?",
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
        .await?;
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
            "UPDATE cases SET status = 'closed', closed_ms = ? WHERE id = ? AND status = 'open' \
             AND NOT EXISTS (SELECT 1 FROM case_checks WHERE case_id = ? AND status != 'closed')",
        )
        .bind(now_ms)
        .bind(case_id)
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

    /// Counts over cases opened in `[from_ms, to_ms]`.
    pub async fn stats(&self, from_ms: i64, to_ms: i64) -> StoreResult<Stats> {
        let by_code: Vec<(String, i64)> = sqlx::query_as(
            "SELECT code, COUNT(*) FROM violations WHERE started_ms BETWEEN ? AND ? GROUP BY code ORDER BY code",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        let by_department: Vec<(String, i64)> = sqlx::query_as(
            "SELECT k.department, COUNT(*) FROM case_checks k JOIN cases c ON c.id = k.case_id \
             WHERE c.opened_ms BETWEEN ? AND ? GROUP BY k.department ORDER BY k.department",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        let (cases, closed): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(status = 'closed'), 0) FROM cases WHERE opened_ms BETWEEN ? AND ?",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(&self.pool)
        .await?;
        let multi: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM cases c WHERE c.opened_ms BETWEEN ? AND ? \
             AND (SELECT COUNT(*) FROM case_checks k WHERE k.case_id = c.id) >= 2",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(&self.pool)
        .await?;
        let overload: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM cases c WHERE c.opened_ms BETWEEN ? AND ? \
             AND EXISTS (SELECT 1 FROM violations v WHERE v.case_id = c.id AND v.code = 'OVERLOAD')",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(&self.pool)
        .await?;
        let penalties: f64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(k.penalty_amount_cny), 0.0) FROM case_checks k JOIN cases c ON c.id = k.case_id \
             WHERE c.opened_ms BETWEEN ? AND ?",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(Stats {
            by_code: by_code.into_iter().collect::<BTreeMap<_, _>>(),
            by_department: by_department.into_iter().collect::<BTreeMap<_, _>>(),
            cases,
            closed_cases: closed,
            multi_department_cases: multi,
            overload_cases: overload,
            penalties_cny: penalties,
        })
    }
}

#[allow(clippy::too_many_arguments)]
async fn audit(
    tx: &mut Transaction<'_, Sqlite>,
    case_id: i64,
    at_ms: i64,
    actor: &str,
    department: Option<&str>,
    field: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO case_audit (case_id, at_ms, actor, department, field, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)")
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

fn case_from_row(r: &SqliteRow) -> StoreResult<CaseRecord> {
    Ok(CaseRecord {
        id: r.try_get("id")?,
        plate: r.try_get("plate")?,
        device_id: r.try_get("device_id")?,
        firm_id: r.try_get("firm_id")?,
        status: r.try_get("status")?,
        opened_ms: r.try_get("opened_ms")?,
        closed_ms: r.try_get("closed_ms")?,
        codes: Vec::new(),
        checks: Vec::new(),
        parties: Vec::new(),
    })
}

//! Cases, their checks, parties and audit trail. The workflow is decided by
//! `crate::cases` ([`plan_filing`], [`plan_check_change`]); this file reads,
//! inside one transaction, what a plan needs and writes what it says, so a
//! change and its audit lines are committed together or not at all.

use std::collections::HashMap;

use serde_json::json;

use super::db::{Sql, Tx};
use super::outbox::{case_key, write_event};
use super::{
    AuditRecord, CaseFilter, CaseRecord, CheckError, DeadlineStats, Stats, Store, StoreResult,
};
use crate::auth::Department;
use crate::cases::{
    plan_check_change, plan_filing, Audit, CaseStatus, Check, CheckStatus, CheckUpdate,
    NewViolationCase, OpenCase, Party, Penalty, Refusal, SYSTEM,
};
use crate::identity::{DeviceId, FirmId, Plate};
use crate::outbox::EventType;
use crate::time::format_ms;
use crate::violation::{violation_json, ViolationCode};

/// First key of the advisory lock taken while filing into a vehicle's case
/// ("mwca"); the second is the plate's hash. Two filings for one vehicle at
/// once would each find no open case and open two: they take turns. A hash
/// collision between two plates only makes their filings take turns too.
const FILING_LOCK_CLASS: i32 = 0x6d77_6361;

#[derive(sqlx::FromRow)]
struct CaseRow {
    id: i64,
    plate: Plate,
    device_id: DeviceId,
    firm_id: FirmId,
    status: CaseStatus,
    opened_ms: i64,
    closed_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct CheckRow {
    case_id: i64,
    department: Department,
    status: CheckStatus,
    finding: Option<String>,
    penalty_party: Option<String>,
    penalty_amount_cny: Option<f64>,
    due_ms: Option<i64>,
    decided_ms: Option<i64>,
}

impl From<CheckRow> for Check {
    fn from(r: CheckRow) -> Check {
        Check {
            department: r.department,
            status: r.status,
            finding: r.finding,
            penalty: r
                .penalty_party
                .zip(r.penalty_amount_cny)
                .map(|(party, amount_cny)| Penalty { party, amount_cny }),
            due_ms: r.due_ms,
            decided_ms: r.decided_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
struct DeadlineRow {
    department: String,
    checks: i64,
    due: i64,
    on_time: i64,
    overdue: i64,
}

#[derive(sqlx::FromRow)]
struct PartyRow {
    case_id: i64,
    role: String,
    name: String,
}

const CHECKS: &str = "SELECT case_id, department, status, finding, penalty_party, \
     penalty_amount_cny, due_ms, decided_ms FROM case_checks WHERE case_id";

/// Statuses of a check still being worked (not decided, not closed).
const OPEN_CHECK: &str = "('pending', 'investigating')";
const PARTIES: &str = "SELECT case_id, role, name FROM case_parties WHERE case_id";

/// `WHERE` of a case list.
fn cases_where(mut q: Sql, f: &CaseFilter) -> Sql {
    // EXISTS, probing the check's primary key (case_id, department) per
    // case: a page walks cases newest first (cases_opened) and stops at its
    // limit, where `c.id IN (SELECT ...)` read and sorted every case of the
    // department first (a temporary B-tree on SQLite).
    let with_check = " AND EXISTS (SELECT 1 FROM case_checks w WHERE w.case_id = c.id \
                      AND w.department = {})";
    q.push(" WHERE TRUE")
        .and(" AND c.id = {}", f.id)
        .and(with_check, f.visible_to)
        .and(with_check, f.department)
        .and(" AND c.status = {}", f.status)
        .and(" AND c.firm_id = {}", f.firm.as_deref())
        .and(" AND c.plate = {}", f.plate.as_deref())
        .and(
            " AND c.id IN (SELECT case_id FROM violations WHERE code = {})",
            f.code,
        )
        .and(" AND c.opened_ms >= {}", f.from_ms)
        .and(" AND c.opened_ms <= {}", f.to_ms);
    if let Some(now) = f.overdue_at {
        q.push(" AND EXISTS (");
        push_overdue_check(&mut q, now, f.visible_to.or(f.department));
        q.push(")");
    }
    q
}

/// `SELECT 1 FROM case_checks k WHERE` a check of case `c` is overdue at
/// `now` (of `department` only, when given).
fn push_overdue_check(q: &mut Sql, now: i64, department: Option<Department>) {
    q.push(&format!(
        "SELECT 1 FROM case_checks k WHERE k.case_id = c.id AND k.status IN {OPEN_CHECK} \
         AND k.due_ms < "
    ))
    .push_bind(now)
    .and(" AND k.department = {}", department);
}

/// Takes the vehicle's filing lock (PostgreSQL; SQLite's writer lock is
/// enough): filings for one vehicle take turns.
pub(super) async fn lock_filing(tx: &mut Tx, plate: &str) -> StoreResult<()> {
    tx.lock_key(FILING_LOCK_CLASS, plate).await
}

/// The checks of case `case_id`, by department.
pub(super) async fn case_checks(tx: &mut Tx, case_id: i64) -> StoreResult<Vec<Check>> {
    let q = Sql::new(format!("{CHECKS} = $1 ORDER BY department")).bind(case_id);
    let rows: Vec<CheckRow> = tx.fetch_all(&q).await?;
    Ok(rows.into_iter().map(Check::from).collect())
}

/// Appends a change's audit lines to the case's trail.
pub(super) async fn write_audit(tx: &mut Tx, case_id: i64, lines: &[Audit]) -> StoreResult<()> {
    for a in lines {
        let q = Sql::new(
            "INSERT INTO case_audit (case_id, at_ms, actor, department, field, before, after) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(case_id)
        .bind(a.at_ms)
        .bind(a.actor.as_str())
        .bind(a.department)
        .bind(a.field.as_str())
        .bind(a.before.as_deref())
        .bind(a.after.as_deref());
        tx.execute(&q).await?;
    }
    Ok(())
}

impl Store {
    /// Files violation `v.violation_id` into the vehicle's open case of the
    /// merge window, or a new one, as [`plan_filing`] decides. Returns the
    /// case id.
    pub async fn file_violation(&self, v: &NewViolationCase, now_ms: i64) -> StoreResult<i64> {
        let mut tx = self.db.begin().await?;
        lock_filing(&mut tx, v.plate.as_str()).await?;
        let case_id = self.file_in(&mut tx, v, now_ms).await?;
        tx.commit().await?;
        self.changed();
        Ok(case_id)
    }

    /// [`Store::file_violation`] inside `tx`, which holds the vehicle's
    /// filing lock ([`lock_filing`]); with its events (`case.opened` for a
    /// new case, `violation.raised`) when webhooks want them.
    pub(super) async fn file_in(
        &self,
        tx: &mut Tx,
        v: &NewViolationCase,
        now_ms: i64,
    ) -> StoreResult<i64> {
        // The case row is locked so that a check closing it meanwhile either
        // sees the check added here or closed it first, in which case the
        // row no longer matches and a new case opens.
        let (from, to) = v.joins_cases_opened();
        let q = Sql::new(format!(
            "SELECT id FROM cases WHERE plate = $1 AND status = $2 \
             AND opened_ms >= $3 AND opened_ms <= $4 ORDER BY opened_ms DESC, id DESC LIMIT 1{}",
            tx.for_update()
        ))
        .bind(&v.plate)
        .bind(CaseStatus::Open)
        .bind(from)
        .bind(to);
        let open = match tx.fetch_optional::<(i64,)>(&q).await? {
            Some((id,)) => Some(open_case(tx, id).await?),
            None => None,
        };
        let plan = plan_filing(v, open.as_ref(), now_ms);
        let case_id = match plan.case {
            Some(id) => id,
            None => {
                let q = Sql::new(
                    "INSERT INTO cases (plate, device_id, firm_id, status, opened_ms) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(&v.plate)
                .bind(&v.device_id)
                .bind(&v.firm_id)
                .bind(CaseStatus::Open)
                .bind(v.started_ms);
                tx.fetch_value(&q).await?
            }
        };
        let q = Sql::new("UPDATE violations SET case_id = $1 WHERE id = $2")
            .bind(case_id)
            .bind(v.violation_id);
        tx.execute(&q).await?;
        for &d in &plan.checks {
            let q = Sql::new(
                "INSERT INTO case_checks (case_id, department, status, updated_ms, due_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(case_id)
            .bind(d)
            .bind(CheckStatus::Pending)
            .bind(now_ms)
            .bind(v.deadlines.due_ms(d, now_ms));
            tx.execute(&q).await?;
        }
        for p in &plan.parties {
            let q = Sql::new("INSERT INTO case_parties (case_id, role, name) VALUES ($1, $2, $3)")
                .bind(case_id)
                .bind(p.role.as_str())
                .bind(p.name.as_str());
            tx.execute(&q).await?;
        }
        write_audit(tx, case_id, &plan.audit).await?;
        if plan.case.is_some() {
            // Joining a case that already holds a penalty: charged now, once.
            let checks = case_checks(tx, case_id).await?;
            super::credit::write_case_credit(tx, case_id, &checks, SYSTEM, now_ms).await?;
        }
        let key = case_key(case_id);
        if plan.case.is_none() {
            if let Some(routes) = self.routes_for(EventType::CaseOpened) {
                let data = json!({
                    "case_id": case_id, "plate": v.plate, "device_id": v.device_id,
                    "firm_id": v.firm_id, "opened_at": format_ms(v.started_ms, routes.tz),
                    "violation_id": v.violation_id, "code": v.code.as_str(),
                    "departments": plan.checks.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
                });
                write_event(tx, routes, EventType::CaseOpened, &key, now_ms, data).await?;
            }
        }
        if let Some(routes) = self.routes_for(EventType::ViolationRaised) {
            if let Some(stored) = super::violations::violation_in(tx, v.violation_id).await? {
                let data = violation_json(&stored, routes.tz);
                write_event(tx, routes, EventType::ViolationRaised, &key, now_ms, data).await?;
            }
        }
        Ok(case_id)
    }

    /// Moves one department's check one step, as [`plan_check_change`]
    /// decides from every check of the case. The case is locked first (its
    /// row on PostgreSQL, the database's writer lock on SQLite), so two
    /// departments changing the same case take turns: each reads the
    /// other's committed change, neither overwrites it, and the last check
    /// to close closes the case. A status changed meanwhile is refused.
    pub async fn update_check(
        &self,
        case_id: i64,
        dept: Department,
        u: &CheckUpdate,
        actor: &str,
        now_ms: i64,
    ) -> Result<(), CheckError> {
        let mut tx = self.db.begin().await?;
        let q = Sql::new(format!(
            "SELECT plate, firm_id FROM cases WHERE id = $1{}",
            tx.for_update()
        ))
        .bind(case_id);
        let Some((plate, firm_id)) = tx.fetch_optional::<(String, String)>(&q).await? else {
            return Err(CheckError::NoSuchCheck);
        };
        let checks = case_checks(&mut tx, case_id).await?;
        let change = plan_check_change(&checks, dept, u, actor, now_ms).map_err(|r| match r {
            Refusal::NoSuchCheck => CheckError::NoSuchCheck,
            Refusal::Illegal(m) => CheckError::Illegal(m),
        })?;
        let k = &change.check;
        let q = Sql::new(
            "UPDATE case_checks SET status = $1, finding = $2, penalty_party = $3, \
             penalty_amount_cny = $4, updated_ms = $5, decided_ms = $9 \
             WHERE case_id = $6 AND department = $7 AND status = $8",
        )
        .bind(k.status)
        .bind(k.finding.as_deref())
        .bind(k.penalty.as_ref().map(|p| p.party.as_str()))
        .bind(k.penalty.as_ref().map(|p| p.amount_cny))
        .bind(now_ms)
        .bind(case_id)
        .bind(dept)
        .bind(change.from)
        .bind(k.decided_ms);
        if tx.execute(&q).await? == 0 {
            return Err(CheckError::Illegal(format!(
                "the {dept} check was changed meanwhile; read it again"
            )));
        }
        if change.closes_case {
            let q = Sql::new("UPDATE cases SET status = $1, closed_ms = $2 WHERE id = $3")
                .bind(CaseStatus::Closed)
                .bind(now_ms)
                .bind(case_id);
            tx.execute(&q).await?;
        }
        write_audit(&mut tx, case_id, &change.audit).await?;
        let after: Vec<Check> = checks
            .into_iter()
            .map(|c| {
                if c.department == dept {
                    change.check.clone()
                } else {
                    c
                }
            })
            .collect();
        super::credit::write_case_credit(&mut tx, case_id, &after, actor, now_ms).await?;
        let key = case_key(case_id);
        if let Some(routes) = self.routes_for(EventType::CheckChanged) {
            let data = json!({
                "case_id": case_id, "plate": plate, "firm_id": firm_id,
                "department": dept.as_str(), "status": k.status.as_str(),
                "previous_status": change.from.as_str(), "finding": k.finding,
                "penalty": k.penalty.as_ref().map(|p| json!({"party": p.party, "amount_cny": p.amount_cny})),
                "by": actor,
                "due_at": k.due_ms.map(|ms| format_ms(ms, routes.tz)),
                "decided_at": k.decided_ms.map(|ms| format_ms(ms, routes.tz)),
            });
            write_event(&mut tx, routes, EventType::CheckChanged, &key, now_ms, data).await?;
        }
        if change.closes_case {
            if let Some(routes) = self.routes_for(EventType::CaseClosed) {
                let data = json!({
                    "case_id": case_id, "plate": plate, "firm_id": firm_id,
                    "closed_at": format_ms(now_ms, routes.tz), "by": actor,
                });
                write_event(&mut tx, routes, EventType::CaseClosed, &key, now_ms, data).await?;
            }
        }
        tx.commit().await?;
        self.changed();
        Ok(())
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
        let mut q = cases_where(
            Sql::new(
                "SELECT c.id, c.plate, c.device_id, c.firm_id, c.status, c.opened_ms, c.closed_ms \
                 FROM cases c",
            ),
            f,
        );
        q.push(" ORDER BY ");
        if let Some(now) = f.overdue_first_at {
            // Cases with an overdue check (the viewer's own, for a
            // department) first, the longest overdue at the top.
            q.push(
                "(SELECT MIN(k.due_ms) FROM case_checks k WHERE k.case_id = c.id AND k.status IN ",
            );
            q.push(OPEN_CHECK).push(" AND k.due_ms < ").push_bind(now);
            q.and(" AND k.department = {}", f.visible_to.or(f.department));
            q.push(") IS NULL, (SELECT MIN(k.due_ms) FROM case_checks k WHERE k.case_id = c.id AND k.status IN ");
            q.push(OPEN_CHECK).push(" AND k.due_ms < ").push_bind(now);
            q.and(" AND k.department = {}", f.visible_to.or(f.department));
            q.push("), ");
        }
        q.push("c.opened_ms DESC, c.id DESC LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows: Vec<CaseRow> = self.db.fetch_all(&q).await?;
        let total = self
            .db
            .fetch_value(&cases_where(Sql::new("SELECT COUNT(*) FROM cases c"), f))
            .await?;
        let mut items: Vec<CaseRecord> = rows
            .into_iter()
            .map(|r| CaseRecord {
                id: r.id,
                plate: r.plate,
                device_id: r.device_id,
                firm_id: r.firm_id,
                status: r.status,
                opened_ms: r.opened_ms,
                closed_ms: r.closed_ms,
                codes: Vec::new(),
                checks: Vec::new(),
                parties: Vec::new(),
            })
            .collect();
        self.fill_cases(&mut items).await?;
        Ok((items, total))
    }

    /// Adds codes, checks and parties to a page of cases: three queries for
    /// the whole page rather than three per case.
    async fn fill_cases(&self, cases: &mut [CaseRecord]) -> StoreResult<()> {
        if cases.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = cases.iter().map(|c| c.id).collect();
        let mut by_id: HashMap<i64, &mut CaseRecord> =
            cases.iter_mut().map(|c| (c.id, c)).collect();
        let of_page = |head: &str, tail: &str| {
            let mut q = Sql::new(head);
            self.db.push_in_ids(&mut q, &ids);
            q.push(tail);
            q
        };
        let codes: Vec<(i64, ViolationCode)> = self
            .db
            .fetch_all(&of_page(
                "SELECT DISTINCT case_id, code FROM violations WHERE case_id",
                " ORDER BY case_id, code",
            ))
            .await?;
        for (id, code) in codes {
            if let Some(case) = by_id.get_mut(&id) {
                case.codes.push(code);
            }
        }
        let checks: Vec<CheckRow> = self
            .db
            .fetch_all(&of_page(CHECKS, " ORDER BY case_id, department"))
            .await?;
        for r in checks {
            if let Some(case) = by_id.get_mut(&r.case_id) {
                case.checks.push(r.into());
            }
        }
        let parties: Vec<PartyRow> = self
            .db
            .fetch_all(&of_page(PARTIES, " ORDER BY case_id, rowid"))
            .await?;
        for r in parties {
            if let Some(case) = by_id.get_mut(&r.case_id) {
                case.parties.push(Party {
                    role: r.role,
                    name: r.name,
                });
            }
        }
        Ok(())
    }

    pub async fn case_audit(&self, id: i64) -> StoreResult<Vec<AuditRecord>> {
        let q = Sql::new(
            "SELECT id, at_ms, actor, department, field, before, after FROM case_audit \
             WHERE case_id = $1 ORDER BY id",
        )
        .bind(id);
        self.db.fetch_all(&q).await
    }

    /// Counts over cases opened in `[from_ms, to_ms]` (violations: started
    /// in it); deadlines as they stand at `now_ms`.
    pub async fn stats(&self, from_ms: i64, to_ms: i64, now_ms: i64) -> StoreResult<Stats> {
        let period = |sql: &str| Sql::new(sql).bind(from_ms).bind(to_ms);
        let by_code: Vec<(String, i64)> = self
            .db
            .fetch_all(&period(
                "SELECT code, COUNT(*) FROM violations WHERE started_ms BETWEEN $1 AND $2 \
                 GROUP BY code",
            ))
            .await?;
        let by_department: Vec<(String, i64)> = self
            .db
            .fetch_all(&period(
                "SELECT k.department, COUNT(*) FROM case_checks k JOIN cases c ON c.id = k.case_id \
                 WHERE c.opened_ms BETWEEN $1 AND $2 GROUP BY k.department",
            ))
            .await?;
        let (cases, closed_cases, multi_department_cases, overload_cases, penalties_cny): (
            i64,
            i64,
            i64,
            i64,
            f64,
        ) = self
            .db
            .fetch_all(&period(
                "SELECT COUNT(*), \
                    COUNT(*) FILTER (WHERE c.status = 'closed'), \
                    COUNT(*) FILTER (WHERE (SELECT COUNT(*) FROM case_checks k \
                                            WHERE k.case_id = c.id) >= 2), \
                    COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM violations v \
                                     WHERE v.case_id = c.id AND v.code = 'OVERLOAD')), \
                    (SELECT COALESCE(SUM(k.penalty_amount_cny), 0.0) FROM case_checks k \
                     JOIN cases c2 ON c2.id = k.case_id WHERE c2.opened_ms BETWEEN $1 AND $2) \
                 FROM cases c WHERE c.opened_ms BETWEEN $1 AND $2",
            ))
            .await?
            .pop()
            .unwrap_or_default();
        let deadlines: Vec<DeadlineRow> = self
            .db
            .fetch_all(
                &period(&format!(
                    "SELECT k.department, COUNT(*) AS checks, \
                        COUNT(*) FILTER (WHERE k.due_ms IS NOT NULL AND \
                            (k.decided_ms IS NOT NULL OR k.due_ms < $3)) AS due, \
                        COUNT(*) FILTER (WHERE k.decided_ms <= k.due_ms) AS on_time, \
                        COUNT(*) FILTER (WHERE k.status IN {OPEN_CHECK} AND k.due_ms < $3) \
                            AS overdue \
                     FROM case_checks k JOIN cases c ON c.id = k.case_id \
                     WHERE c.opened_ms BETWEEN $1 AND $2 GROUP BY k.department"
                ))
                .bind(now_ms),
            )
            .await?;
        Ok(Stats {
            deadlines: deadlines
                .into_iter()
                .map(|r| {
                    (
                        r.department,
                        DeadlineStats {
                            checks: r.checks,
                            due: r.due,
                            on_time: r.on_time,
                            overdue: r.overdue,
                        },
                    )
                })
                .collect(),
            by_code: by_code.into_iter().collect(),
            by_department: by_department.into_iter().collect(),
            cases,
            closed_cases,
            multi_department_cases,
            overload_cases,
            penalties_cny,
        })
    }
}

/// The open case `id` as filing needs it: its departments and parties.
async fn open_case(tx: &mut Tx, id: i64) -> StoreResult<OpenCase> {
    let checks: Vec<CheckRow> = tx
        .fetch_all(&Sql::new(format!("{CHECKS} = $1")).bind(id))
        .await?;
    let parties: Vec<PartyRow> = tx
        .fetch_all(&Sql::new(format!("{PARTIES} = $1 ORDER BY rowid")).bind(id))
        .await?;
    Ok(OpenCase {
        id,
        departments: checks.into_iter().map(|k| k.department).collect(),
        parties: parties
            .into_iter()
            .map(|p| Party {
                role: p.role,
                name: p.name,
            })
            .collect(),
    })
}

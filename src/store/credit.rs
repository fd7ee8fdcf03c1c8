//! The credit ledger (`credit_deductions`): which violations are charged
//! to their firm. `crate::credit` decides ([`plan_credit`]); the case
//! workflow calls [`write_case_credit`] inside its own transaction, so a
//! check change, its charges or reversals and their audit lines commit
//! together.

use super::db::{Sql, Tx};
use super::{Store, StoreResult};
use crate::cases::Check;
use crate::credit::{plan_credit, CaseViolation};
use crate::identity::{Firm, FirmId};
use crate::violation::ViolationCode;

#[derive(sqlx::FromRow)]
struct CaseViolationRow {
    id: i64,
    code: ViolationCode,
    firm_id: FirmId,
    charged_ms: Option<i64>,
    status: String,
}

/// A violation charged to its firm, as read for a credit view.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeductionRecord {
    pub violation_id: i64,
    pub code: ViolationCode,
    pub firm_id: FirmId,
    pub case_id: i64,
    /// When it was charged (the decision).
    pub at_ms: i64,
    /// When the violation started: the cycle it counts in.
    pub started_ms: i64,
}

/// Charges or reverses the violations of case `case_id` whose checks now
/// read `checks`, as [`plan_credit`] says, with the audit lines. Called with
/// the case locked (a check change, a filing, a withdrawal), so what it reads
/// is what it changes.
pub(super) async fn write_case_credit(
    tx: &mut Tx,
    case_id: i64,
    checks: &[Check],
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let q = Sql::new(
        "SELECT v.id, v.code, v.firm_id, d.at_ms AS charged_ms, v.status FROM violations v \
         LEFT JOIN credit_deductions d ON d.violation_id = v.id \
         WHERE v.case_id = $1 ORDER BY v.id",
    )
    .bind(case_id);
    let rows: Vec<CaseViolationRow> = tx.fetch_all(&q).await?;
    let violations: Vec<CaseViolation> = rows
        .iter()
        .map(|r| CaseViolation {
            id: r.id,
            code: r.code,
            charged: r.charged_ms.is_some(),
            withdrawn: r.status == super::violations::WITHDRAWN,
        })
        .collect();
    let plan = plan_credit(checks, &violations, actor, now_ms);
    for id in &plan.charge {
        let Some(r) = rows.iter().find(|r| r.id == *id) else {
            continue;
        };
        let q = Sql::new(
            "INSERT INTO credit_deductions (violation_id, firm_id, case_id, at_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(r.id)
        .bind(&r.firm_id)
        .bind(case_id)
        .bind(now_ms);
        tx.execute(&q).await?;
    }
    for &id in &plan.reverse {
        let q = Sql::new("DELETE FROM credit_deductions WHERE violation_id = $1").bind(id);
        tx.execute(&q).await?;
    }
    super::cases::write_audit(tx, case_id, &plan.audit).await?;
    Ok(())
}

impl Store {
    /// Deductions standing now for violations that started in
    /// `[from_ms, to_ms)`, of `firm` only when given, oldest first.
    pub async fn credit_deductions(
        &self,
        firm: Option<&FirmId>,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<DeductionRecord>> {
        let mut q = Sql::new(
            "SELECT d.violation_id, v.code, d.firm_id, d.case_id, d.at_ms, \
             v.started_ms FROM credit_deductions d JOIN violations v ON v.id = d.violation_id \
             WHERE v.started_ms >= $1 AND v.started_ms < $2",
        )
        .bind(from_ms)
        .bind(to_ms);
        q.and(" AND d.firm_id = {}", firm);
        q.push(" ORDER BY v.started_ms, d.violation_id");
        self.db.fetch_all(&q).await
    }

    /// Every registered firm, by id.
    pub async fn firms(&self) -> StoreResult<Vec<Firm>> {
        let rows: Vec<(FirmId, String)> = self
            .db
            .fetch_all(&Sql::new("SELECT id, name FROM firms ORDER BY id"))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name)| Firm { id, name })
            .collect())
    }
}

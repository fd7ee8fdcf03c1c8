//! Which violations of a case cost their firm points, decided after every
//! check change and every withdrawal: all of them, once each, while any check
//! of the case stands decided (or closed) with a penalty; none once no such
//! check is left (a decision withdrawn by reopening its check). A withdrawn
//! violation (its evidence fell away: a TRACK_GAP the backfill covered) is
//! never charged, and its charge, if it had one, is reversed. Each charge and
//! reversal is an audit line on the case.

use crate::cases::{Audit, Check, CheckStatus};
use crate::violation::ViolationCode;

/// A violation filed into the case, as read: whether it is charged, and
/// whether it was withdrawn.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseViolation {
    pub id: i64,
    pub code: ViolationCode,
    pub charged: bool,
    pub withdrawn: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreditPlan {
    pub charge: Vec<i64>,
    pub reverse: Vec<i64>,
    pub audit: Vec<Audit>,
}

/// Plans the ledger of a case whose checks now read `checks`.
pub fn plan_credit(
    checks: &[Check],
    violations: &[CaseViolation],
    actor: &str,
    at_ms: i64,
) -> CreditPlan {
    let penalised = checks.iter().any(|c| {
        matches!(c.status, CheckStatus::Decided | CheckStatus::Closed) && c.penalty.is_some()
    });
    let mut plan = CreditPlan::default();
    for v in violations {
        let what = format!("{} #{}", v.code, v.id);
        let line = |before: Option<&str>, after: Option<&str>| Audit {
            at_ms,
            actor: actor.to_string(),
            department: None,
            field: "credit".into(),
            before: before.map(str::to_string),
            after: after.map(str::to_string),
        };
        let owed = penalised && !v.withdrawn;
        if owed && !v.charged {
            plan.charge.push(v.id);
            plan.audit
                .push(line(None, Some(&format!("deducted: {what}"))));
        } else if !owed && v.charged {
            let why = if v.withdrawn {
                " (violation withdrawn)"
            } else {
                ""
            };
            plan.reverse.push(v.id);
            plan.audit.push(line(
                Some(&format!("deducted: {what}")),
                Some(&format!("reversed: {what}{why}")),
            ));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Department::{self, *};
    use crate::cases::Penalty;

    fn check(department: Department, status: CheckStatus, fined: bool) -> Check {
        Check {
            department,
            status,
            finding: None,
            penalty: fined.then(|| Penalty {
                party: "firm".into(),
                amount_cny: 100.0,
            }),
            due_ms: None,
            decided_ms: None,
        }
    }

    fn v(id: i64, charged: bool) -> CaseViolation {
        CaseViolation {
            id,
            code: ViolationCode::Speeding,
            charged,
            withdrawn: false,
        }
    }

    fn gap(id: i64, charged: bool) -> CaseViolation {
        CaseViolation {
            id,
            code: ViolationCode::TrackGap,
            charged,
            withdrawn: true,
        }
    }

    #[test]
    fn a_withdrawn_violation_is_never_charged_and_its_charge_reversed() {
        let fined = [check(Transport, CheckStatus::Decided, true)];
        // Withdrawn before the decision: the penalty charges the others only.
        let p = plan_credit(&fined, &[v(1, false), gap(2, false)], "t", 5);
        assert_eq!((p.charge, p.reverse), (vec![1], vec![]));
        // Withdrawn after it was charged: reversed once, with the reason.
        let p = plan_credit(&fined, &[v(1, true), gap(2, true)], "system", 6);
        assert_eq!((p.charge, p.reverse.clone()), (vec![], vec![2]));
        assert_eq!(
            p.audit[0].after.as_deref(),
            Some("reversed: TRACK_GAP #2 (violation withdrawn)")
        );
        // Once reversed, nothing more: not charged again, not reversed twice.
        assert_eq!(
            plan_credit(&fined, &[v(1, true), gap(2, false)], "t", 7),
            CreditPlan::default()
        );
    }

    #[test]
    fn the_first_penalty_charges_each_violation_once() {
        let checks = [
            check(Police, CheckStatus::Decided, true),
            check(Urban, CheckStatus::Pending, false),
        ];
        let p = plan_credit(&checks, &[v(1, false), v(2, false)], "p", 5);
        assert_eq!(p.charge, [1, 2]);
        assert_eq!(p.audit[0].after.as_deref(), Some("deducted: SPEEDING #1"));
        // A second department's penalty charges nothing more.
        let checks = [
            check(Police, CheckStatus::Decided, true),
            check(Urban, CheckStatus::Decided, true),
        ];
        assert_eq!(
            plan_credit(&checks, &[v(1, true), v(2, true)], "u", 6),
            CreditPlan::default()
        );
    }

    #[test]
    fn no_penalty_costs_nothing_and_a_withdrawn_one_reverses() {
        let checks = [
            check(Police, CheckStatus::Decided, false),
            check(Urban, CheckStatus::Closed, false),
        ];
        assert_eq!(
            plan_credit(&checks, &[v(1, false)], "p", 5),
            CreditPlan::default()
        );
        let reopened = [
            check(Police, CheckStatus::Investigating, false),
            check(Urban, CheckStatus::Closed, false),
        ];
        let p = plan_credit(&reopened, &[v(1, true)], "p", 7);
        assert_eq!(p.reverse, [1]);
        assert_eq!(p.audit[0].after.as_deref(), Some("reversed: SPEEDING #1"));
        // Another department's penalty still stands: nothing reverses.
        let one_left = [
            check(Police, CheckStatus::Investigating, false),
            check(Urban, CheckStatus::Closed, true),
        ];
        assert_eq!(
            plan_credit(&one_left, &[v(1, true)], "p", 7),
            CreditPlan::default()
        );
    }
}

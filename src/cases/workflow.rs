//! The case workflow as pure functions: given what the store read (inside
//! its transaction), decide the change and every audit line that goes with
//! it. The store only writes what a plan says, so the rules live here once,
//! tested without a database.

use crate::auth::Department;
use crate::identity::{DeviceId, FirmId, Plate};
use crate::violation::ViolationCode;

use super::{CheckStatus, CheckUpdate, Penalty};

/// A case is open until every one of its checks is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStatus {
    Open,
    Closed,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Closed => "closed",
        }
    }

    pub const ALL: [CaseStatus; 2] = [CaseStatus::Open, CaseStatus::Closed];

    pub fn parse(s: &str) -> Option<CaseStatus> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            CaseStatus::Open => "办理中",
            CaseStatus::Closed => "已结案",
        }
    }
}

/// One department's check on a case.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub department: Department,
    pub status: CheckStatus,
    pub finding: Option<String>,
    pub penalty: Option<Penalty>,
    /// When it must be decided by (see `deadline.rs`); none on checks
    /// filed before deadlines existed and never backfilled.
    pub due_ms: Option<i64>,
    /// When it was decided, once it has been.
    pub decided_ms: Option<i64>,
}

impl Check {
    /// Past its deadline at `now_ms` and neither decided nor closed.
    pub fn overdue(&self, now_ms: i64) -> bool {
        super::is_overdue(self.status, self.due_ms, now_ms)
    }
}

/// A party a case names, e.g. one of the four of an overload (一超四罚).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub role: String,
    pub name: String,
}

/// One line of a case's append-only audit trail: who changed which field
/// from what to what, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Audit {
    pub at_ms: i64,
    pub actor: String,
    pub department: Option<Department>,
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The actor of what muckwatch does by itself (filing).
pub const SYSTEM: &str = "system";

impl Audit {
    fn new(at_ms: i64, actor: &str, department: Option<Department>, field: &str) -> Audit {
        Audit {
            at_ms,
            actor: actor.to_string(),
            department,
            field: field.to_string(),
            before: None,
            after: None,
        }
    }

    fn change(mut self, before: Option<&str>, after: Option<&str>) -> Audit {
        self.before = before.map(str::to_string);
        self.after = after.map(str::to_string);
        self
    }
}

/// Why a check change is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    NoSuchCheck,
    /// Not the next status.
    Illegal(String),
}

/// A department's check change, decided: the write applies only while the
/// check is still in `from` (else someone changed it meanwhile).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckChange {
    pub from: CheckStatus,
    pub check: Check,
    /// The last open check closes, and with it the case.
    pub closes_case: bool,
    pub audit: Vec<Audit>,
}

/// Plans `department`'s `update` of its check, given every check of the
/// case as read: one step forward only; a finding or penalty left out is
/// kept; each changed field and the case's closing are audited.
pub fn plan_check_change(
    checks: &[Check],
    department: Department,
    update: &CheckUpdate,
    actor: &str,
    at_ms: i64,
) -> Result<CheckChange, Refusal> {
    let old = checks
        .iter()
        .find(|c| c.department == department)
        .ok_or(Refusal::NoSuchCheck)?;
    // A decision may be withdrawn: the check goes back to investigating,
    // its penalty and time of decision with it.
    let reopens = old.status == CheckStatus::Decided && update.status == CheckStatus::Investigating;
    if old.status.next() != Some(update.status) && !reopens {
        return Err(Refusal::Illegal(format!(
            "the {department} check is {}; it can only move to {}",
            old.status.as_str(),
            match old.status {
                CheckStatus::Decided => "closed (or back to investigating: reopened)",
                s => s.next().map(|s| s.as_str()).unwrap_or("nothing (closed)"),
            }
        )));
    }
    let check = Check {
        department,
        status: update.status,
        finding: update.finding.clone().or_else(|| old.finding.clone()),
        penalty: if reopens {
            update.penalty.clone()
        } else {
            update.penalty.clone().or_else(|| old.penalty.clone())
        },
        due_ms: old.due_ms,
        decided_ms: match update.status {
            CheckStatus::Decided => Some(at_ms),
            _ if reopens => None,
            _ => old.decided_ms,
        },
    };
    let line = |field: &str| Audit::new(at_ms, actor, Some(department), field);
    let mut audit =
        vec![line("status").change(Some(old.status.as_str()), Some(check.status.as_str()))];
    if check.finding != old.finding {
        audit.push(line("finding").change(old.finding.as_deref(), check.finding.as_deref()));
    }
    if check.penalty != old.penalty {
        let show = |p: &Option<Penalty>| {
            p.as_ref()
                .map(|p| format!("{}: {} CNY", p.party, p.amount_cny))
        };
        audit.push(line("penalty").change(
            show(&old.penalty).as_deref(),
            show(&check.penalty).as_deref(),
        ));
    }
    let closes_case = check.status == CheckStatus::Closed
        && checks
            .iter()
            .all(|c| c.department == department || c.status == CheckStatus::Closed);
    if closes_case {
        audit.push(Audit::new(at_ms, actor, None, "case").change(
            Some(CaseStatus::Open.as_str()),
            Some(CaseStatus::Closed.as_str()),
        ));
    }
    Ok(CheckChange {
        from: old.status,
        check,
        closes_case,
        audit,
    })
}

/// A raised violation to file into a case, with what routing and the
/// 一超四罚 rule give it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewViolationCase {
    pub violation_id: i64,
    pub code: ViolationCode,
    pub plate: Plate,
    pub device_id: DeviceId,
    pub firm_id: FirmId,
    pub started_ms: i64,
    pub merge_window_ms: i64,
    pub departments: Vec<Department>,
    pub parties: Vec<Party>,
    /// The departments' time to decide a check filed now.
    pub deadlines: super::Deadlines,
}

impl NewViolationCase {
    /// When an open case of the vehicle must have been opened for this
    /// violation to join it: within the merge window either side of its
    /// start (the same operating night).
    pub fn joins_cases_opened(&self) -> (i64, i64) {
        (
            self.started_ms.saturating_sub(self.merge_window_ms),
            self.started_ms.saturating_add(self.merge_window_ms),
        )
    }
}

/// The vehicle's newest open case opened within the merge window, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenCase {
    pub id: i64,
    pub departments: Vec<Department>,
    pub parties: Vec<Party>,
}

/// A filing, decided: into `case` (a new one when `None`, opened at the
/// violation's start), with the checks and parties it lacks.
#[derive(Debug, Clone, PartialEq)]
pub struct Filing {
    pub case: Option<i64>,
    pub checks: Vec<Department>,
    pub parties: Vec<Party>,
    pub audit: Vec<Audit>,
}

/// Plans filing `v` into `open` (joined) or a new case: the union of the
/// departments, each once; parties by role, each once, in their order;
/// every addition audited.
pub fn plan_filing(v: &NewViolationCase, open: Option<&OpenCase>, at_ms: i64) -> Filing {
    let line =
        |department: Option<Department>, field: &str| Audit::new(at_ms, SYSTEM, department, field);
    let mut audit = Vec::new();
    if open.is_none() {
        audit.push(line(None, "case").change(None, Some(CaseStatus::Open.as_str())));
    }
    let filed = format!("{} #{}", v.code, v.violation_id);
    audit.push(line(None, "violation").change(None, Some(&filed)));
    let mut checks: Vec<Department> = Vec::new();
    for &d in &v.departments {
        let has = open.is_some_and(|c| c.departments.contains(&d));
        if !has && !checks.contains(&d) {
            checks.push(d);
            audit.push(line(Some(d), "check").change(None, Some(CheckStatus::Pending.as_str())));
        }
    }
    let mut parties: Vec<Party> = Vec::new();
    for p in &v.parties {
        let has_role = |list: &[Party]| list.iter().any(|q| q.role == p.role);
        if !open.is_some_and(|c| has_role(&c.parties)) && !has_role(&parties) {
            parties.push(p.clone());
            audit.push(line(None, &format!("party.{}", p.role)).change(None, Some(&p.name)));
        }
    }
    Filing {
        case: open.map(|c| c.id),
        checks,
        parties,
        audit,
    }
}

/// Plans withdrawing violation `violation_id` of `code` (status raised ->
/// withdrawn) because of `why`: one audit line on its case, by the system. The
/// case and its checks stay as they are: officers decide what a case without
/// that violation is worth, and see in the trail why it changed.
pub fn plan_withdrawal(
    violation_id: i64,
    code: ViolationCode,
    why: &str,
    at_ms: i64,
) -> Vec<Audit> {
    let line = Audit::new(
        at_ms,
        SYSTEM,
        None,
        &format!("violation {code} #{violation_id}"),
    );
    vec![line.change(Some("raised"), Some(&format!("withdrawn: {why}")))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use Department::*;

    fn check(department: Department, status: CheckStatus) -> Check {
        Check {
            department,
            status,
            finding: None,
            penalty: None,
            due_ms: None,
            decided_ms: None,
        }
    }

    fn update(status: CheckStatus) -> CheckUpdate {
        CheckUpdate {
            status,
            finding: None,
            penalty: None,
        }
    }

    #[test]
    fn a_check_moves_one_step_and_keeps_what_is_left_out() {
        let mut decided = check(Urban, CheckStatus::Decided);
        decided.finding = Some("seen".into());
        let checks = [decided, check(Police, CheckStatus::Pending)];
        let c = plan_check_change(&checks, Urban, &update(CheckStatus::Closed), "u", 5).unwrap();
        assert_eq!(c.from, CheckStatus::Decided);
        assert_eq!(c.check.finding.as_deref(), Some("seen"));
        assert!(!c.closes_case, "police is still pending");
        assert_eq!(c.audit.len(), 1);
        assert_eq!(
            plan_check_change(&checks, Police, &update(CheckStatus::Decided), "p", 5),
            Err(Refusal::Illegal(
                "the police check is pending; it can only move to investigating".into()
            ))
        );
        assert_eq!(
            plan_check_change(
                &checks,
                Ecology,
                &update(CheckStatus::Investigating),
                "e",
                5
            ),
            Err(Refusal::NoSuchCheck)
        );
    }

    #[test]
    fn the_last_check_closed_closes_the_case_and_every_change_is_audited() {
        let checks = [
            check(Urban, CheckStatus::Closed),
            check(Police, CheckStatus::Investigating),
        ];
        let decide = CheckUpdate {
            status: CheckStatus::Decided,
            finding: Some("speeding".into()),
            penalty: Some(Penalty {
                party: "driver".into(),
                amount_cny: 200.0,
            }),
        };
        let c = plan_check_change(&checks, Police, &decide, "p", 7).unwrap();
        let fields: Vec<_> = c.audit.iter().map(|a| a.field.as_str()).collect();
        assert_eq!(fields, ["status", "finding", "penalty"]);
        assert_eq!(c.audit[2].after.as_deref(), Some("driver: 200 CNY"));
        let closed = [
            check(Urban, CheckStatus::Closed),
            check(Police, CheckStatus::Decided),
        ];
        let c = plan_check_change(&closed, Police, &update(CheckStatus::Closed), "p", 9).unwrap();
        assert!(c.closes_case);
        let last = c.audit.last().unwrap();
        assert_eq!(
            (last.field.as_str(), last.department, last.after.as_deref()),
            ("case", None, Some("closed"))
        );
    }

    #[test]
    fn a_decision_can_be_withdrawn_and_its_penalty_goes_with_it() {
        let mut decided = check(Police, CheckStatus::Decided);
        decided.penalty = Some(Penalty {
            party: "firm".into(),
            amount_cny: 500.0,
        });
        decided.decided_ms = Some(3);
        let c = plan_check_change(
            &[decided],
            Police,
            &update(CheckStatus::Investigating),
            "p",
            9,
        )
        .unwrap();
        assert_eq!((c.check.penalty.clone(), c.check.decided_ms), (None, None));
        let fields: Vec<_> = c.audit.iter().map(|a| a.field.as_str()).collect();
        assert_eq!(fields, ["status", "penalty"]);
        assert_eq!(c.audit[0].after.as_deref(), Some("investigating"));
        let closed = [check(Police, CheckStatus::Closed)];
        assert!(
            plan_check_change(&closed, Police, &update(CheckStatus::Investigating), "p", 9)
                .is_err()
        );
    }

    fn violation(code: ViolationCode, departments: Vec<Department>) -> NewViolationCase {
        NewViolationCase {
            violation_id: 7,
            code,
            plate: Plate::parse("苏J00001").unwrap(),
            device_id: DeviceId::parse("dev-1").unwrap(),
            firm_id: FirmId::parse("firm-a").unwrap(),
            started_ms: 1_000,
            merge_window_ms: 100,
            departments,
            parties: vec![],
            deadlines: super::super::Deadlines::default(),
        }
    }

    #[test]
    fn filing_opens_or_joins_and_adds_only_what_is_missing() {
        let v = violation(ViolationCode::IllegalDumping, vec![Urban, Ecology, Urban]);
        let new = plan_filing(&v, None, 5);
        assert_eq!((new.case, new.checks.clone()), (None, vec![Urban, Ecology]));
        let fields: Vec<_> = new.audit.iter().map(|a| a.field.as_str()).collect();
        assert_eq!(fields, ["case", "violation", "check", "check"]);
        assert_eq!(new.audit[1].after.as_deref(), Some("ILLEGAL_DUMPING #7"));

        let open = OpenCase {
            id: 3,
            departments: vec![Urban],
            parties: vec![],
        };
        let joined = plan_filing(&v, Some(&open), 5);
        assert_eq!((joined.case, joined.checks), (Some(3), vec![Ecology]));
        assert_eq!(v.joins_cases_opened(), (900, 1_100));
    }

    #[test]
    fn parties_are_added_once_per_role() {
        let mut v = violation(ViolationCode::Overload, vec![Police]);
        v.parties = super::super::overload_parties("苏J00001", "firm-a", "site-1");
        let open = OpenCase {
            id: 3,
            departments: vec![Police],
            parties: v.parties[..2].to_vec(),
        };
        let f = plan_filing(&v, Some(&open), 5);
        let roles: Vec<_> = f.parties.iter().map(|p| p.role.as_str()).collect();
        assert_eq!(roles, ["transport_firm", "source_unit"]);
        assert!(f.checks.is_empty());
    }
}

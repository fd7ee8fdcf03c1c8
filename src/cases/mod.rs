//! Joint cases (一案多查): which departments a violation goes to, how a
//! department's check moves, and the rule that joins violations of one
//! operating night into one case. Storage is in `store`; this module only
//! decides: [`plan_check_change`] and [`plan_filing`] turn what the store
//! read into the change to write and its audit lines.

mod deadline;
mod workflow;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::auth::Department;
use crate::violation::ViolationCode;

pub use deadline::{is_overdue, Deadlines, DEFAULT_DEADLINE_H};
pub use workflow::{
    plan_check_change, plan_filing, plan_withdrawal, Audit, CaseStatus, Check, CheckChange, Filing,
    NewViolationCase, OpenCase, Party, Refusal, SYSTEM,
};

/// A check's progress; it moves one step forward, except that a decision
/// may be withdrawn (decided back to investigating, reopened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Pending,
    Investigating,
    Decided,
    Closed,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pending => "pending",
            CheckStatus::Investigating => "investigating",
            CheckStatus::Decided => "decided",
            CheckStatus::Closed => "closed",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            CheckStatus::Pending => "待处理",
            CheckStatus::Investigating => "调查中",
            CheckStatus::Decided => "已决定",
            CheckStatus::Closed => "已结案",
        }
    }

    pub const ALL: [CheckStatus; 4] = [
        CheckStatus::Pending,
        CheckStatus::Investigating,
        CheckStatus::Decided,
        CheckStatus::Closed,
    ];

    pub fn parse(s: &str) -> Option<CheckStatus> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The only status a check may move to from this one.
    ///
    /// ```
    /// use muckwatch::cases::CheckStatus;
    /// assert_eq!(CheckStatus::Pending.next(), Some(CheckStatus::Investigating));
    /// assert_eq!(CheckStatus::Closed.next(), None);
    /// ```
    pub fn next(self) -> Option<CheckStatus> {
        match self {
            CheckStatus::Pending => Some(CheckStatus::Investigating),
            CheckStatus::Investigating => Some(CheckStatus::Decided),
            CheckStatus::Decided => Some(CheckStatus::Closed),
            CheckStatus::Closed => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Penalty {
    pub party: String,
    pub amount_cny: f64,
}

/// A department's change to its check, parsed from the request body.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckUpdate {
    pub status: CheckStatus,
    pub finding: Option<String>,
    pub penalty: Option<Penalty>,
}

impl CheckUpdate {
    /// `{status, finding?, penalty?{party, amount_cny}}`; a decision needs a finding.
    pub fn from_json(v: &serde_json::Value) -> Result<CheckUpdate, String> {
        let status = v
            .get("status")
            .and_then(|s| s.as_str())
            .ok_or("missing field `status`")?;
        let status = CheckStatus::parse(status).ok_or_else(|| {
            format!("status `{status}` is not pending, investigating, decided or closed")
        })?;
        let finding = match v.get("finding") {
            None | Some(serde_json::Value::Null) => None,
            Some(f) => {
                let f = f.as_str().ok_or("`finding` must be a string")?.trim();
                if f.is_empty() || f.chars().count() > 4000 {
                    return Err("`finding` must be 1-4000 characters".into());
                }
                Some(f.to_string())
            }
        };
        let penalty = match v.get("penalty") {
            None | Some(serde_json::Value::Null) => None,
            Some(p) => {
                let party = p
                    .get("party")
                    .and_then(|x| x.as_str())
                    .map(str::trim)
                    .unwrap_or("");
                if party.is_empty() || party.chars().count() > 200 {
                    return Err("`penalty.party` must be 1-200 characters".into());
                }
                let amount = p
                    .get("amount_cny")
                    .and_then(|x| x.as_f64())
                    .ok_or("`penalty.amount_cny` must be a number")?;
                if !(amount.is_finite() && (0.0..=100_000_000.0).contains(&amount)) {
                    return Err(format!(
                        "`penalty.amount_cny` = {amount} is outside 0..100000000"
                    ));
                }
                Some(Penalty {
                    party: party.to_string(),
                    amount_cny: amount,
                })
            }
        };
        if status == CheckStatus::Decided && finding.is_none() {
            return Err("a decided check needs a `finding`".into());
        }
        Ok(CheckUpdate {
            status,
            finding,
            penalty,
        })
    }
}

/// Which departments get a check for each code (configurable, `[cases.routing]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Routing(BTreeMap<ViolationCode, Vec<Department>>);

impl Default for Routing {
    fn default() -> Self {
        use Department::*;
        use ViolationCode::*;
        Routing(BTreeMap::from([
            (NoPermit, vec![Urban, Transport]),
            (OutOfHours, vec![Urban, Police]),
            (RouteDeviation, vec![Urban, Police]),
            (RestrictedZone, vec![Police]),
            (Speeding, vec![Police]),
            (IllegalDumping, vec![Urban, Ecology, Housing]),
            (WrongDisposalSite, vec![Urban, Housing]),
            (CoverOpen, vec![Urban, Ecology]),
            (Overload, vec![Police, Transport, Housing]),
            (TrackGap, vec![Transport]),
        ]))
    }
}

impl Routing {
    pub fn departments(&self, code: ViolationCode) -> &[Department] {
        self.0.get(&code).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Overrides from a table like `{ SPEEDING = ["police", "transport"] }`.
    pub fn with_overrides(
        mut self,
        overrides: &BTreeMap<String, Vec<String>>,
    ) -> Result<Routing, String> {
        for (code, depts) in overrides {
            let c = ViolationCode::parse(code)
                .ok_or_else(|| format!("cases.routing: `{code}` is not a violation code"))?;
            let d = depts
                .iter()
                .map(|d| {
                    Department::parse(d)
                        .ok_or_else(|| format!("cases.routing.{code}: `{d}` is not a department"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.0.insert(c, d);
        }
        Ok(self)
    }
}

/// `[cases]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaseSettings {
    /// A violation joins the vehicle's open case opened this many hours before it.
    pub merge_window_h: u32,
    /// Per-code department overrides of the contract's routing table.
    pub routing: BTreeMap<String, Vec<String>>,
    /// Hours a department has to decide its check, per department
    /// (`[cases.deadline_h] police = 24`); 72 for those not named.
    pub deadline_h: BTreeMap<String, u32>,
}

impl Default for CaseSettings {
    fn default() -> Self {
        CaseSettings {
            merge_window_h: 12,
            routing: BTreeMap::new(),
            deadline_h: BTreeMap::new(),
        }
    }
}

impl CaseSettings {
    pub fn deadlines(&self) -> Result<Deadlines, String> {
        Deadlines::default().with_overrides(&self.deadline_h)
    }

    pub fn routing(&self) -> Result<Routing, String> {
        Routing::default().with_overrides(&self.routing)
    }

    pub fn merge_window_ms(&self) -> i64 {
        i64::from(self.merge_window_h) * 3_600_000
    }
}

/// The four parties an overload penalises (一超四罚).
pub fn overload_parties(plate: &str, firm: &str, source_unit: &str) -> Vec<Party> {
    [
        ("vehicle", plate.to_string()),
        ("driver", format!("driver of {plate}")),
        ("transport_firm", firm.to_string()),
        ("source_unit", source_unit.to_string()),
    ]
    .into_iter()
    .map(|(role, name)| Party {
        role: role.to_string(),
        name,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_routing_is_the_contract_table() {
        let r = Routing::default();
        assert_eq!(
            r.departments(ViolationCode::IllegalDumping),
            [Department::Urban, Department::Ecology, Department::Housing]
        );
        assert_eq!(
            r.departments(ViolationCode::TrackGap),
            [Department::Transport]
        );
        for code in ViolationCode::ALL {
            assert!(!r.departments(code).is_empty(), "{code}");
        }
    }

    #[test]
    fn routing_overrides_are_checked() {
        let ok = BTreeMap::from([(
            "SPEEDING".to_string(),
            vec!["police".to_string(), "transport".to_string()],
        )]);
        let r = Routing::default().with_overrides(&ok).unwrap();
        assert_eq!(
            r.departments(ViolationCode::Speeding),
            [Department::Police, Department::Transport]
        );
        let bad = BTreeMap::from([("SPEED".to_string(), vec![])]);
        assert!(Routing::default()
            .with_overrides(&bad)
            .unwrap_err()
            .contains("SPEED"));
        let bad = BTreeMap::from([("SPEEDING".to_string(), vec!["army".to_string()])]);
        assert!(Routing::default()
            .with_overrides(&bad)
            .unwrap_err()
            .contains("army"));
    }

    #[test]
    fn updates_parse_at_the_edge() {
        let u = CheckUpdate::from_json(&json!({"status": "decided", "finding": "seen on camera", "penalty": {"party": "firm", "amount_cny": 5000}})).unwrap();
        assert_eq!(
            u.penalty,
            Some(Penalty {
                party: "firm".into(),
                amount_cny: 5000.0
            })
        );
        assert!(CheckUpdate::from_json(&json!({"status": "decided"}))
            .unwrap_err()
            .contains("finding"));
        assert!(CheckUpdate::from_json(&json!({"status": "done"})).is_err());
        assert!(CheckUpdate::from_json(
            &json!({"status": "investigating", "penalty": {"party": "x", "amount_cny": -1}})
        )
        .is_err());
    }
}

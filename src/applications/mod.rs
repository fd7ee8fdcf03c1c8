//! Permit applications (不见面审批): a firm asks for a permit online,
//! muckwatch runs the automatic checks and names each result, the bureau
//! approves (the permit is created active) or rejects with a reason.
//!
//! This module holds the vocabulary, parsed once at the edge: the permit a
//! firm asks for ([`PermitRequest`]), the application's status, and the
//! named check results. The checks themselves are pure functions of what
//! the caller looked up ([`checks`]); the store keeps applications and their
//! audit trail, the API gathers the facts and decides who may do what.

pub mod checks;

use chrono::NaiveDate;
use serde_json::{json, Map, Value};

use crate::identity::{FirmId, Plate};
use crate::permit::{date_field, Permit, PermitStatus, TimeWindow};

pub use checks::{run_checks, CheckName, CheckResult, Facts, VehicleFact};

/// Where an application stands (the wire spelling is `as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplicationStatus {
    /// Waiting for the bureau's decision.
    Submitted,
    /// Approved, its permit being created: lasts as long as one insert,
    /// unless muckwatch stopped in between (then approving again finishes
    /// it). It keeps a rejection from racing an approval.
    Approving,
    /// Its permit exists (`permit_id`).
    Approved,
    /// Refused with a reason.
    Rejected,
}

impl ApplicationStatus {
    pub const ALL: [ApplicationStatus; 4] = [
        ApplicationStatus::Submitted,
        ApplicationStatus::Approving,
        ApplicationStatus::Approved,
        ApplicationStatus::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationStatus::Submitted => "submitted",
            ApplicationStatus::Approving => "approving",
            ApplicationStatus::Approved => "approved",
            ApplicationStatus::Rejected => "rejected",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            ApplicationStatus::Submitted => "待审批",
            ApplicationStatus::Approving => "审批中",
            ApplicationStatus::Approved => "已批准",
            ApplicationStatus::Rejected => "已驳回",
        }
    }

    /// ```
    /// use muckwatch::applications::ApplicationStatus;
    /// assert_eq!(ApplicationStatus::parse("rejected"), Some(ApplicationStatus::Rejected));
    /// assert_eq!(ApplicationStatus::parse("Rejected"), None);
    /// ```
    pub fn parse(s: &str) -> Option<ApplicationStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for ApplicationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The permit a firm asks for: a permit's fields but its id (the bureau
/// numbers permits: [`permit_id`]), its firm (the token's) and its status
/// (active once approved). Dates in the wrong order parse: the `dates`
/// check names them, with the others.
#[derive(Debug, Clone, PartialEq)]
pub struct PermitRequest {
    pub plates: Vec<Plate>,
    pub source_site: String,
    pub disposal_site: String,
    pub routes: Vec<String>,
    pub windows: Vec<TimeWindow>,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
}

/// The most vehicles one application may name: each is looked up when
/// the checks run, and a fleet larger than this applies in parts.
pub const MAX_PLATES: usize = 500;

/// Stands in for the permit id while the fields are read by the permit's
/// own parser (the id is not the firm's to choose).
const NO_ID_YET: &str = "application";

/// The id the permit of application `id` gets when it is approved, unless
/// the decision names another (`permit_id`, the bureau's own numbering).
///
/// ```
/// assert_eq!(muckwatch::applications::permit_id(7), "APP-7");
/// ```
pub fn permit_id(application: i64) -> String {
    format!("APP-{application}")
}

impl PermitRequest {
    /// Reads the fields of `POST /api/v1/permit-applications` for `firm`:
    /// those of `POST /api/v1/permits`, every error naming its field. A
    /// `firm_id`, if given, must be `firm`'s own; an `id` or `status` is
    /// ignored (the bureau numbers permits, and they start active).
    pub fn from_json(v: &Value, firm: &FirmId) -> Result<PermitRequest, String> {
        let obj = v
            .as_object()
            .ok_or("an application must be a JSON object")?;
        match obj.get("firm_id") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == firm.as_str() => {}
            Some(_) => {
                return Err(format!(
                    "firm_id: an application is made for the firm of its token ({firm})"
                ))
            }
        }
        let valid_from = date_field(obj, "valid_from")?;
        let valid_until = date_field(obj, "valid_until")?;
        let mut body: Map<String, Value> = obj.clone();
        body.insert("id".into(), json!(NO_ID_YET));
        body.insert("firm_id".into(), json!(firm.as_str()));
        body.remove("status");
        // Dates out of order are the `dates` check's to name, not a parse error.
        body.insert(
            "valid_until".into(),
            json!(valid_until.max(valid_from).to_string()),
        );
        let p = Permit::from_json(&Value::Object(body))?;
        if p.plates.len() > MAX_PLATES {
            return Err(format!(
                "plates: {} vehicles; an application names at most {MAX_PLATES}",
                p.plates.len()
            ));
        }
        Ok(PermitRequest {
            plates: p.plates,
            source_site: p.source_site,
            disposal_site: p.disposal_site,
            routes: p.routes,
            windows: p.windows,
            valid_from,
            valid_until,
        })
    }

    /// The fields as [`from_json`](Self::from_json) reads them.
    pub fn to_json(&self) -> Value {
        json!({
            "plates": self.plates.iter().map(Plate::as_str).collect::<Vec<_>>(),
            "source_site": self.source_site,
            "disposal_site": self.disposal_site,
            "routes": self.routes,
            "windows": self.windows.iter().map(|w| json!({
                "start": w.start.format("%H:%M").to_string(),
                "end": w.end.format("%H:%M").to_string(),
            })).collect::<Vec<_>>(),
            "valid_from": self.valid_from.to_string(),
            "valid_until": self.valid_until.to_string(),
        })
    }

    /// The permit an approval creates: active, numbered `id`.
    pub fn to_permit(&self, id: &str, firm: &FirmId) -> Permit {
        Permit {
            id: id.to_string(),
            firm_id: firm.clone(),
            plates: self.plates.clone(),
            source_site: self.source_site.clone(),
            disposal_site: self.disposal_site.clone(),
            routes: self.routes.clone(),
            windows: self.windows.clone(),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            status: PermitStatus::Active,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firm() -> FirmId {
        FirmId::parse("firm-a").expect("firm")
    }

    fn body() -> Value {
        json!({"plates": ["苏J12345"], "source_site": "s01", "disposal_site": "d01",
               "routes": ["route-s01-d01"], "windows": [{"start": "21:00", "end": "06:00"}],
               "valid_from": "2024-06-01", "valid_until": "2024-06-30"})
    }

    #[test]
    fn reads_a_permits_fields_and_round_trips() {
        let r = PermitRequest::from_json(&body(), &firm()).expect("valid");
        assert_eq!(r.routes, ["route-s01-d01"]);
        assert_eq!(
            PermitRequest::from_json(&r.to_json(), &firm()),
            Ok(r.clone())
        );
        let p = r.to_permit("PA-1", &firm());
        assert_eq!((p.id.as_str(), p.status), ("PA-1", PermitStatus::Active));
        assert_eq!(p.firm_id, firm());
    }

    #[test]
    fn dates_out_of_order_parse_for_the_check_to_name() {
        let mut b = body();
        b["valid_until"] = json!("2024-05-01");
        let r = PermitRequest::from_json(&b, &firm()).expect("parses");
        assert!(r.valid_until < r.valid_from);
        assert_eq!(
            PermitRequest::from_json(&r.to_json(), &firm()).expect("again"),
            r
        );
    }

    #[test]
    fn another_firm_and_bad_fields_are_refused() {
        let mut b = body();
        b["firm_id"] = json!("firm-b");
        assert!(PermitRequest::from_json(&b, &firm())
            .expect_err("not its own")
            .starts_with("firm_id"));
        b["firm_id"] = json!("firm-a");
        b["id"] = json!("MY-OWN");
        assert!(PermitRequest::from_json(&b, &firm()).is_ok());
        let mut b = body();
        b["valid_from"] = json!("June");
        assert!(PermitRequest::from_json(&b, &firm())
            .expect_err("bad date")
            .starts_with("valid_from"));
        let mut b = body();
        b["plates"] = json!([]);
        assert!(PermitRequest::from_json(&b, &firm())
            .expect_err("no plates")
            .starts_with("plates"));
        assert!(PermitRequest::from_json(&json!([1]), &firm()).is_err());
        let mut b = body();
        b["plates"] = json!((0..=MAX_PLATES)
            .map(|i| format!("苏J{i:05}"))
            .collect::<Vec<_>>());
        assert!(PermitRequest::from_json(&b, &firm())
            .expect_err("too many")
            .starts_with("plates"));
    }
}

//! What the store takes and gives besides the domain's own types: filters
//! of the list queries, and records as read back.

use std::collections::BTreeMap;

use crate::auth::Department;
use crate::cases::{CaseStatus, Check, Party};
use crate::identity::{DeviceId, FirmId, Plate};
use crate::permit::PermitStatus;
use crate::violation::ViolationCode;

/// A refused message kept for inspection.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeadLetter {
    pub received_ms: i64,
    pub topic: String,
    pub reason: &'static str,
    pub detail: String,
    /// The payload as text, cut to [`DeadLetter::MAX_PAYLOAD`] bytes.
    pub payload: String,
}

impl DeadLetter {
    pub const MAX_PAYLOAD: usize = 4096;
    /// Characters of the topic and of the detail kept.
    pub const MAX_TOPIC: usize = 256;
    pub const MAX_DETAIL: usize = 1024;

    pub fn new(
        received_ms: i64,
        topic: &str,
        reason: &'static str,
        detail: String,
        payload: &[u8],
    ) -> DeadLetter {
        let cut = &payload[..payload.len().min(Self::MAX_PAYLOAD)];
        // Kept for inspection, so kept storable: no NUL (PostgreSQL refuses
        // it in text), topic and detail on one line and short.
        DeadLetter {
            received_ms,
            topic: crate::text::escaped(topic, Self::MAX_TOPIC).into_owned(),
            reason,
            detail: crate::text::escaped(&detail, Self::MAX_DETAIL).into_owned(),
            payload: crate::text::storable(&String::from_utf8_lossy(cut)).into_owned(),
        }
    }
}

/// A stored dead letter as listed back.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct StoredDeadLetter {
    pub id: i64,
    pub received_ms: i64,
    pub topic: String,
    pub reason: String,
    pub detail: String,
    pub payload: String,
}

/// Which permits to list.
#[derive(Debug, Clone, Default)]
pub struct PermitFilter {
    pub plate: Option<String>,
    pub status: Option<PermitStatus>,
    pub firm: Option<String>,
}

/// Which violations to list.
#[derive(Debug, Clone, Default)]
pub struct ViolationFilter {
    pub plate: Option<String>,
    pub code: Option<ViolationCode>,
    pub since_ms: Option<i64>,
    pub firm: Option<String>,
    /// Only violations filed into a case with a check for this department
    /// (a department's view).
    pub visible_to: Option<Department>,
    pub ids: Option<Vec<i64>>,
    pub case_id: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub id: Option<i64>,
    /// Only cases with a check for this department (a department's view).
    pub visible_to: Option<Department>,
    pub department: Option<Department>,
    pub status: Option<CaseStatus>,
    pub firm: Option<String>,
    pub plate: Option<String>,
    pub code: Option<ViolationCode>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only cases with a check overdue at this time (of `visible_to` or
    /// `department`, when set).
    pub overdue_at: Option<i64>,
    /// List the cases with a check overdue at this time first (most
    /// overdue on top), then the rest, newest first.
    pub overdue_first_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseRecord {
    pub id: i64,
    pub plate: Plate,
    pub device_id: DeviceId,
    pub firm_id: FirmId,
    pub status: CaseStatus,
    pub opened_ms: i64,
    pub closed_ms: Option<i64>,
    pub codes: Vec<ViolationCode>,
    pub checks: Vec<Check>,
    pub parties: Vec<Party>,
}

/// One line of a case's audit trail as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub department: Option<Department>,
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Counts for a period, as the bureau's annual report needs them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    pub by_code: BTreeMap<String, i64>,
    pub by_department: BTreeMap<String, i64>,
    pub cases: i64,
    pub closed_cases: i64,
    /// 一案多查: cases with checks from two or more departments.
    pub multi_department_cases: i64,
    /// 一超四罚: cases with an OVERLOAD.
    pub overload_cases: i64,
    pub penalties_cny: f64,
    /// Per department, how its checks keep their deadlines.
    pub deadlines: BTreeMap<String, DeadlineStats>,
}

/// One department's checks against their deadlines, at the time of reading.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DeadlineStats {
    /// Checks filed (of cases opened in the period).
    pub checks: i64,
    /// Checks whose timeliness is known: decided (on time or late), or
    /// past their deadline undecided. A check still within its deadline
    /// and undecided is not counted yet.
    pub due: i64,
    /// Checks decided by their deadline.
    pub on_time: i64,
    /// Checks past their deadline, neither decided nor closed.
    pub overdue: i64,
}

impl DeadlineStats {
    /// 按期处置率: checks decided by their deadline / checks due; `None`
    /// when none is due yet.
    pub fn on_time_rate(&self) -> Option<f64> {
        (self.due > 0).then(|| self.on_time as f64 / self.due as f64)
    }
}

//! Check deadlines (按期处置): each department has a number of hours to
//! decide its check, counted from when muckwatch filed the check (wall
//! clock: it is the officers' working time that is measured, not the
//! truck's).
//!
//! A check's deadline is set once, when it is filed, and never moves:
//! a later violation joining the same open case adds no check for a
//! department that already has one (the same incident, the same
//! deadline). A reopened check (a decision withdrawn) keeps its deadline
//! too: the clock does not restart, and it is open again. A violation after the
//! case closed opens a new case, whose checks get fresh deadlines.

use std::collections::BTreeMap;

use crate::auth::Department;

use super::CheckStatus;

/// The contract's default: three days.
pub const DEFAULT_DEADLINE_H: u32 = 72;

/// Hours per department, as milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines([i64; Department::ALL.len()]);

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines([hours_ms(DEFAULT_DEADLINE_H); Department::ALL.len()])
    }
}

fn hours_ms(h: u32) -> i64 {
    i64::from(h) * 3_600_000
}

fn index(d: Department) -> usize {
    Department::ALL
        .iter()
        .position(|x| *x == d)
        .unwrap_or_default()
}

impl Deadlines {
    /// Overrides from `[cases.deadline_h]`, e.g. `{ police = 24 }`.
    pub fn with_overrides(mut self, hours: &BTreeMap<String, u32>) -> Result<Deadlines, String> {
        for (dept, &h) in hours {
            let d = Department::parse(dept)
                .ok_or_else(|| format!("cases.deadline_h: `{dept}` is not a department"))?;
            if !(1..=24 * 366).contains(&h) {
                return Err(format!(
                    "cases.deadline_h.{dept} = {h}: must be 1..8784 hours"
                ));
            }
            self.0[index(d)] = hours_ms(h);
        }
        Ok(self)
    }

    /// When `department`'s check filed at `filed_ms` is due.
    pub fn due_ms(&self, department: Department, filed_ms: i64) -> i64 {
        filed_ms.saturating_add(self.0[index(department)])
    }
}

/// Whether a check is overdue at `now_ms`: past its deadline and neither
/// decided nor closed.
///
/// ```
/// use muckwatch::cases::{is_overdue, CheckStatus};
/// assert!(is_overdue(CheckStatus::Investigating, Some(10), 11));
/// assert!(!is_overdue(CheckStatus::Investigating, Some(10), 10));
/// assert!(!is_overdue(CheckStatus::Decided, Some(10), 11));
/// assert!(!is_overdue(CheckStatus::Pending, None, 11));
/// ```
pub fn is_overdue(status: CheckStatus, due_ms: Option<i64>, now_ms: i64) -> bool {
    matches!(status, CheckStatus::Pending | CheckStatus::Investigating)
        && due_ms.is_some_and(|due| now_ms > due)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_default_to_72_hours_and_are_set_per_department() {
        let d = Deadlines::default()
            .with_overrides(&BTreeMap::from([("police".to_string(), 24)]))
            .unwrap();
        assert_eq!(d.due_ms(Department::Police, 1_000), 1_000 + 24 * 3_600_000);
        assert_eq!(d.due_ms(Department::Urban, 0), 72 * 3_600_000);
        let err = Deadlines::default()
            .with_overrides(&BTreeMap::from([("army".to_string(), 24)]))
            .unwrap_err();
        assert!(err.contains("army"), "{err}");
        assert!(Deadlines::default()
            .with_overrides(&BTreeMap::from([("urban".to_string(), 0)]))
            .is_err());
    }
}

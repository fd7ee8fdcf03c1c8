//! Storage behind one narrow interface. [`Store`] is what the rest of the
//! crate sees; each backend implements the same methods with the same
//! semantics, and one test suite (`tests/store.rs`) runs against both:
//! - [`SqliteStore`]: one file, the embedded default; SQLite's single writer
//!   serialises every write transaction.
//! - [`PgStore`]: PostgreSQL, for several `serve` instances sharing one
//!   database; it takes row and advisory locks where SQLite needed none.
//!
//! [`Store::connect`] picks the backend by the URL's scheme. Migrations are
//! SQL files under `migrations/<backend>/` (the same tables and column names
//! in each), compiled into the binary and applied in order at start; applied
//! versions are recorded in `schema_migrations`.

mod postgres;
mod sqlite;

use std::fmt;

use crate::auth::{Department, Role};
use crate::cases::CheckUpdate;
use crate::fix::Fix;
use crate::permit::{Permit, PermitStatus};
use crate::registry::{Firm, FirmId, Plate, Vehicle};
use crate::rules::Violation;

pub use postgres::{redact_url, PgStore};
pub use sqlite::SqliteStore;

#[derive(Debug)]
pub enum StoreError {
    /// The object exists already (unique key).
    Conflict(String),
    /// A referenced object does not exist.
    MissingReference(String),
    Db(sqlx::Error),
    Corrupt(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Conflict(m) | StoreError::MissingReference(m) => f.write_str(m),
            StoreError::Db(e) => write!(f, "database error: {e}"),
            StoreError::Corrupt(m) => write!(f, "stored data is not valid: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

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

    pub fn new(
        received_ms: i64,
        topic: &str,
        reason: &'static str,
        detail: String,
        payload: &[u8],
    ) -> DeadLetter {
        let cut = &payload[..payload.len().min(Self::MAX_PAYLOAD)];
        DeadLetter {
            received_ms,
            topic: topic.to_string(),
            reason,
            detail,
            payload: String::from_utf8_lossy(cut).into_owned(),
        }
    }
}

/// A stored dead letter as listed back.
#[derive(Debug, Clone, serde::Serialize)]
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
    pub code: Option<String>,
    pub since_ms: Option<i64>,
    pub firm: Option<String>,
    pub ids: Option<Vec<i64>>,
    pub case_id: Option<i64>,
}

/// A violation as stored: the episode and its case.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredViolation {
    pub id: i64,
    pub code: String,
    pub plate: String,
    pub device_id: String,
    pub firm_id: String,
    pub permit_id: Option<String>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub lat: f64,
    pub lon: f64,
    pub measured: f64,
    pub fences: Vec<String>,
    pub case_id: Option<i64>,
}

/// A violation to file into a case.
pub struct NewViolationCase<'a> {
    pub violation_id: i64,
    pub code: &'a str,
    pub plate: &'a str,
    pub device_id: &'a str,
    pub firm_id: &'a str,
    pub started_ms: i64,
    pub merge_window_ms: i64,
    pub departments: &'a [Department],
    /// (role, name), e.g. the four parties of an overload.
    pub parties: &'a [(&'static str, String)],
}

#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub id: Option<i64>,
    /// Only cases with a check for this department (a department's view).
    pub visible_to: Option<Department>,
    pub department: Option<Department>,
    pub status: Option<String>,
    pub firm: Option<String>,
    pub plate: Option<String>,
    pub code: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckRecord {
    pub department: String,
    pub status: String,
    pub finding: Option<String>,
    /// (party, amount in CNY)
    pub penalty: Option<(String, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseRecord {
    pub id: i64,
    pub plate: String,
    pub device_id: String,
    pub firm_id: String,
    pub status: String,
    pub opened_ms: i64,
    pub closed_ms: Option<i64>,
    pub codes: Vec<String>,
    pub checks: Vec<CheckRecord>,
    /// (role, name)
    pub parties: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub department: Option<String>,
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Counts for a period, as the bureau's annual report needs them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    pub by_code: std::collections::BTreeMap<String, i64>,
    pub by_department: std::collections::BTreeMap<String, i64>,
    pub cases: i64,
    pub closed_cases: i64,
    /// 一案多查: cases with checks from two or more departments.
    pub multi_department_cases: i64,
    /// 一超四罚: cases with an OVERLOAD.
    pub overload_cases: i64,
    pub penalties_cny: f64,
}

/// Why a check could not be changed.
#[derive(Debug)]
pub enum CheckError {
    NoSuchCheck,
    /// Not the next status (or changed meanwhile by someone else).
    Illegal(String),
    Store(StoreError),
}

impl From<sqlx::Error> for CheckError {
    fn from(e: sqlx::Error) -> Self {
        CheckError::Store(StoreError::Db(e))
    }
}

/// The database, whichever it is.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Forwards a method to the backend in use.
macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

impl Store {
    /// Opens and migrates the database at `url`: `sqlite://FILE` (the file is
    /// created if missing) or `postgres://` / `postgresql://` (the database
    /// must exist). Errors show the URL without its password.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(SqliteStore::connect(url).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PgStore::connect(url).await?))
        } else {
            anyhow::bail!(
                "database url `{}`: expected sqlite://FILE or postgres://USER@HOST:PORT/DATABASE",
                redact_url(url)
            )
        }
    }

    /// Writes fixes, ignoring duplicates; returns how many were new.
    pub async fn insert_fixes(&self, fixes: &[Fix], received_ms: i64) -> StoreResult<u64> {
        dispatch!(self, s => s.insert_fixes(fixes, received_ms).await)
    }

    /// Appends dead letters and prunes all but the newest `keep`.
    pub async fn insert_dead_letters(&self, items: &[DeadLetter], keep: u64) -> StoreResult<()> {
        dispatch!(self, s => s.insert_dead_letters(items, keep).await)
    }

    pub async fn dead_letters(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<StoredDeadLetter>, i64)> {
        dispatch!(self, s => s.dead_letters(limit, offset).await)
    }

    pub async fn create_firm(&self, firm: &Firm, now_ms: i64) -> StoreResult<()> {
        dispatch!(self, s => s.create_firm(firm, now_ms).await)
    }

    pub async fn create_vehicle(&self, v: &Vehicle, now_ms: i64) -> StoreResult<()> {
        dispatch!(self, s => s.create_vehicle(v, now_ms).await)
    }

    pub async fn vehicle(&self, plate: &Plate) -> StoreResult<Option<Vehicle>> {
        dispatch!(self, s => s.vehicle(plate).await)
    }

    pub async fn vehicles(&self) -> StoreResult<Vec<Vehicle>> {
        dispatch!(self, s => s.vehicles().await)
    }

    pub async fn firm(&self, id: &FirmId) -> StoreResult<Option<Firm>> {
        dispatch!(self, s => s.firm(id).await)
    }

    /// Fixes of one device in `[from_ms, to_ms]`, oldest first, at most `limit`.
    pub async fn track(
        &self,
        device: &str,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<Fix>> {
        dispatch!(self, s => s.track(device, from_ms, to_ms, limit).await)
    }

    /// The newest fix of every registered vehicle's device (vehicles with no
    /// fix are absent); one primary-key lookup per vehicle.
    pub async fn latest_vehicle_fixes(&self) -> StoreResult<Vec<Fix>> {
        dispatch!(self, s => s.latest_vehicle_fixes().await)
    }

    /// The latest fix time stored (event time), if any.
    pub async fn latest_fix_ms(&self) -> StoreResult<Option<i64>> {
        dispatch!(self, s => s.latest_fix_ms().await)
    }

    /// Fixes of every device from `since_ms` on, oldest first, at most `limit`.
    pub async fn fixes_since(&self, since_ms: i64, limit: i64) -> StoreResult<Vec<Fix>> {
        dispatch!(self, s => s.fixes_since(since_ms, limit).await)
    }

    /// Deletes fixes older than `cutoff_ms`, except evidence: fixes within
    /// `margin_ms` of a violation of their device. Returns how many went.
    pub async fn prune_fixes(&self, cutoff_ms: i64, margin_ms: i64) -> StoreResult<u64> {
        dispatch!(self, s => s.prune_fixes(cutoff_ms, margin_ms).await)
    }

    pub async fn fix_count(&self) -> StoreResult<i64> {
        dispatch!(self, s => s.fix_count().await)
    }

    pub async fn create_token(&self, hash: &str, role: &Role, now_ms: i64) -> StoreResult<()> {
        dispatch!(self, s => s.create_token(hash, role, now_ms).await)
    }

    pub async fn token_role(&self, hash: &str) -> StoreResult<Option<Role>> {
        dispatch!(self, s => s.token_role(hash).await)
    }

    pub async fn create_permit(&self, p: &Permit, now_ms: i64) -> StoreResult<()> {
        dispatch!(self, s => s.create_permit(p, now_ms).await)
    }

    pub async fn permit(&self, id: &str) -> StoreResult<Option<Permit>> {
        dispatch!(self, s => s.permit(id).await)
    }

    pub async fn permits(
        &self,
        f: &PermitFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Permit>, i64)> {
        dispatch!(self, s => s.permits(f, limit, offset).await)
    }

    pub async fn all_permits(&self) -> StoreResult<Vec<Permit>> {
        dispatch!(self, s => s.all_permits().await)
    }

    pub async fn set_permit_status(
        &self,
        id: &str,
        status: PermitStatus,
        now_ms: i64,
    ) -> StoreResult<Option<Permit>> {
        dispatch!(self, s => s.set_permit_status(id, status, now_ms).await)
    }

    /// Stores a raised violation and returns its id (idempotent per episode).
    pub async fn insert_violation(&self, v: &Violation, now_ms: i64) -> StoreResult<i64> {
        dispatch!(self, s => s.insert_violation(v, now_ms).await)
    }

    /// The case a violation was filed into, if it was.
    pub async fn violation_case(&self, id: i64) -> StoreResult<Option<i64>> {
        dispatch!(self, s => s.violation_case(id).await)
    }

    pub async fn end_violation(
        &self,
        device: &str,
        code: &str,
        started_ms: i64,
        ended_ms: i64,
    ) -> StoreResult<()> {
        dispatch!(self, s => s.end_violation(device, code, started_ms, ended_ms).await)
    }

    pub async fn violations(
        &self,
        f: &ViolationFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<StoredViolation>, i64)> {
        dispatch!(self, s => s.violations(f, limit, offset).await)
    }

    pub async fn file_violation(&self, f: &NewViolationCase<'_>, now_ms: i64) -> StoreResult<i64> {
        dispatch!(self, s => s.file_violation(f, now_ms).await)
    }

    pub async fn case(&self, id: i64) -> StoreResult<Option<CaseRecord>> {
        dispatch!(self, s => s.case(id).await)
    }

    pub async fn cases(
        &self,
        f: &CaseFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<CaseRecord>, i64)> {
        dispatch!(self, s => s.cases(f, limit, offset).await)
    }

    pub async fn case_audit(&self, id: i64) -> StoreResult<Vec<AuditRecord>> {
        dispatch!(self, s => s.case_audit(id).await)
    }

    pub async fn update_check(
        &self,
        case_id: i64,
        dept: Department,
        u: &CheckUpdate,
        actor: &str,
        now_ms: i64,
    ) -> Result<(), CheckError> {
        dispatch!(self, s => s.update_check(case_id, dept, u, actor, now_ms).await)
    }

    pub async fn stats(&self, from_ms: i64, to_ms: i64) -> StoreResult<Stats> {
        dispatch!(self, s => s.stats(from_ms, to_ms).await)
    }
}

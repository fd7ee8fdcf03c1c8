//! Storage behind one narrow interface. [`Store`] is what the rest of the
//! crate sees, the same methods with the same semantics on SQLite (one file,
//! the embedded default) and PostgreSQL (several `serve` instances sharing
//! one database); one test suite runs against both.
//!
//! Each query is written once, for both: SQL text with `$n` placeholders
//! (a `db::Sql`), rows read into `sqlx::FromRow` types whose columns are
//! domain values (`codec.rs`). What SQL cannot share lives in the two
//! dialect files and nowhere else:
//! - `sqlite.rs`: connecting (WAL, busy timeout), the bulk insert of fixes,
//!   id lists as JSON (`json_each`);
//! - `postgres.rs`: connecting, the bulk insert of fixes (`UNNEST`), id
//!   lists as arrays, and `fixes` partitioned by day (partitions made ahead,
//!   retention by dropping them, violations' evidence kept aside).
//!
//! Locks: a read-then-write runs in `Db::begin`, which on SQLite takes
//! the single writer's lock at once (`BEGIN IMMEDIATE`) and on PostgreSQL
//! pairs with a row lock (`FOR UPDATE`) or an advisory lock on a key.
//!
//! The case workflow is decided in `crate::cases` (pure plans); `cases.rs`
//! here reads what a plan needs and writes what it says.
//!
//! **A new table**: its migration goes in `migrations/sqlite/` and
//! `migrations/postgres/` (the same table and column names, `NNNN_name.sql`,
//! picked up by `sqlx::migrate!` at build time: `cargo` rebuilds when a file
//! is added), its queries in a new file here with `impl Store` methods on
//! `self.db`, its rows as `#[derive(sqlx::FromRow)]` types.

mod applications;
mod cases;
mod codec;
mod credit;
mod db;
mod fixes;
mod fleet;
mod inspections;
mod migrate;
mod mqtt;
mod outbox;
mod permits;
mod postgres;
mod records;
mod sqlite;
mod terminals;
mod violations;

use std::fmt;

use db::Db;

pub use crate::cases::NewViolationCase;
pub use crate::violation::StoredViolation;
pub use applications::{ApplicationAudit, ApplicationFilter, ApplicationRecord, DecisionError};
pub use credit::DeductionRecord;
pub use inspections::{DrawObjectRecord, DrawRecord, InspectorRecord, NewDraw};
pub use outbox::{DueEvent, PendingDelivery};
pub use postgres::redact_url;
pub use records::{
    AuditRecord, CaseFilter, CaseRecord, DeadLetter, DeadlineStats, PermitFilter, Stats,
    StoredDeadLetter, ViolationFilter,
};
pub use terminals::TerminalRegistration;
pub use violations::{GapSpan, Raised};

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

impl StoreError {
    /// The database refused the data itself (a value it cannot store, a
    /// constraint): sending the same rows again fails again. Anything else
    /// (connection lost, timeout, lock, server restarting) may pass, and is
    /// worth retrying.
    pub fn is_data_error(&self) -> bool {
        let db = match self {
            StoreError::Conflict(_) | StoreError::MissingReference(_) => return true,
            StoreError::Corrupt(_) => return true,
            StoreError::Db(e) => match e.as_database_error() {
                Some(db) => db,
                None => {
                    return matches!(e, sqlx::Error::Encode(_) | sqlx::Error::TypeNotFound { .. })
                }
            },
        };
        let Some(code) = db.code() else {
            return false;
        };
        match db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
            // SQLSTATE class 22: data exception (a NUL in text, a number out
            // of range), 23: integrity constraint violation.
            Some(_) => code.starts_with("22") || code.starts_with("23"),
            // SQLite: the extended result code; its low byte is the primary:
            // TOOBIG (18), CONSTRAINT (19, a trigger's RAISE included),
            // MISMATCH (20), RANGE (25).
            None => code
                .parse::<i64>()
                .is_ok_and(|c| matches!(c & 0xff, 18 | 19 | 20 | 25)),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Turns key violations into errors that name the object (unique, foreign
/// key), and a column this code cannot read into [`StoreError::Corrupt`].
fn classify(
    e: StoreError,
    conflict: impl FnOnce() -> String,
    missing: impl FnOnce() -> String,
) -> StoreError {
    if let Some(db) = match &e {
        StoreError::Db(e) => e.as_database_error(),
        _ => None,
    } {
        if db.is_unique_violation() {
            return StoreError::Conflict(conflict());
        }
        if db.is_foreign_key_violation() {
            return StoreError::MissingReference(missing());
        }
    }
    e
}

/// A value that does not decode means the database holds something this
/// code never wrote: not a passing fault.
fn corrupt_or_db(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::ColumnDecode { index, source } => {
            StoreError::Corrupt(format!("column {index}: {source}"))
        }
        sqlx::Error::Decode(source) => StoreError::Corrupt(source.to_string()),
        e => StoreError::Db(e),
    }
}

/// Why a check could not be changed.
#[derive(Debug)]
pub enum CheckError {
    NoSuchCheck,
    /// Not the next status (or changed meanwhile by someone else).
    Illegal(String),
    Store(StoreError),
}

impl From<StoreError> for CheckError {
    fn from(e: StoreError) -> Self {
        CheckError::Store(e)
    }
}

/// The database, whichever it is.
#[derive(Clone)]
pub struct Store {
    db: Db,
    /// The webhooks events are written for ([`Store::with_outbox`]); none:
    /// no events are written.
    outbox: Option<std::sync::Arc<crate::outbox::Routes>>,
    /// Moves on every write of violations, cases and checks through this
    /// store (this process's writes): the officers' read cache
    /// (`crate::api`) serves an answer only while it has not moved.
    changes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Until when (wall clock, ms) batches of fixes are written the way that
    /// skips duplicates: set when a batch met one (`fixes.rs`).
    skip_duplicates_until_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Store {
    /// Opens and migrates the database at `url`: `sqlite://FILE` (the file is
    /// created if missing) or `postgres://` / `postgresql://` (the database
    /// must exist). Errors show the URL without its password.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        let db: Db = if url.starts_with("sqlite:") {
            sqlite::connect(url).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            postgres::connect(url).await?.into()
        } else {
            anyhow::bail!(
                "database url `{}`: expected sqlite://FILE or postgres://USER@HOST:PORT/DATABASE",
                redact_url(url)
            )
        };
        migrate::run(&db)
            .await
            .map_err(|e| anyhow::anyhow!("database `{}`: {e}", redact_url(url)))?;
        Ok(Store {
            db,
            outbox: None,
            changes: Default::default(),
            skip_duplicates_until_ms: Default::default(),
        })
    }

    /// How many writes of violations, cases and checks this store has
    /// committed (see `changes`).
    pub fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Called after such a write commits.
    fn changed(&self) {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

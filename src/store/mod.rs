//! Storage behind one narrow interface. [`Store`] is what the rest of the
//! crate sees; each backend (SQLite now, PostgreSQL to come) implements the
//! same methods, and the same test suite runs against each.
//!
//! Migrations are SQL files under `migrations/<backend>/`, compiled into the
//! binary and applied in order at start; applied versions are recorded in
//! `schema_migrations`.

mod sqlite;

use std::fmt;

use crate::auth::Role;
use crate::fix::Fix;
use crate::registry::{Firm, FirmId, Plate, Vehicle};

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

    pub fn new(received_ms: i64, topic: &str, reason: &'static str, detail: String, payload: &[u8]) -> DeadLetter {
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

/// The database, whichever it is.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
}

/// Forwards a method to the backend in use.
macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Sqlite($s) => $call,
        }
    };
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(SqliteStore::connect(url).await?))
        } else {
            anyhow::bail!(
                "database url `{url}`: only sqlite://FILE is supported by this build \
                 (PostgreSQL support is planned)"
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

    pub async fn dead_letters(&self, limit: i64, offset: i64) -> StoreResult<(Vec<StoredDeadLetter>, i64)> {
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
    pub async fn track(&self, device: &str, from_ms: i64, to_ms: i64, limit: i64) -> StoreResult<Vec<Fix>> {
        dispatch!(self, s => s.track(device, from_ms, to_ms, limit).await)
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
}

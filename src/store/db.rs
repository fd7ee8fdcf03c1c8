//! Running one statement on whichever database is open.
//!
//! Every query of the store is written once, as a [`Sql`]: text with
//! numbered placeholders (`$1`, `$2`, ...: PostgreSQL's form, which SQLite
//! accepts as well, a number naming the same value wherever it repeats) and
//! the values to bind. Rows come back as `sqlx::FromRow` types ([`Record`]).
//! [`Db`] and [`Tx`] hold the concrete pool or transaction of either backend
//! and run a statement on it; this file and the dialect files (`sqlite.rs`,
//! `postgres.rs`) are the only places that name a backend.

use std::borrow::Cow;

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Database, Encode, FromRow, Postgres, Sqlite, Transaction, Type};

use super::{corrupt_or_db, StoreResult};

/// A value to bind. `None` binds a NULL of the variant's SQL type, which
/// PostgreSQL needs to know.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Bool(Option<bool>),
    Bytes(Vec<u8>),
}

macro_rules! arg_from {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for Arg {
            fn from(v: $t) -> Arg {
                Arg::$variant(Some(v.into()))
            }
        }
        impl From<Option<$t>> for Arg {
            fn from(v: Option<$t>) -> Arg {
                Arg::$variant(v.map(Into::into))
            }
        }
    )*};
}

arg_from! { i64 => Int, f64 => Real, bool => Bool, String => Text, &str => Text }

impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Arg {
        Arg::Bytes(v)
    }
}

impl<DB: Database> Type<DB> for Arg
where
    str: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as Type<DB>>::type_info()
    }
}

impl<'q, DB: Database> Encode<'q, DB> for Arg
where
    Option<i64>: Encode<'q, DB>,
    Option<f64>: Encode<'q, DB>,
    Option<String>: Encode<'q, DB>,
    Option<bool>: Encode<'q, DB>,
    Vec<u8>: Encode<'q, DB>,
    i64: Type<DB>,
    f64: Type<DB>,
    String: Type<DB>,
    bool: Type<DB>,
    Vec<u8>: Type<DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, BoxDynError> {
        match self {
            Arg::Int(v) => v.encode_by_ref(buf),
            Arg::Real(v) => v.encode_by_ref(buf),
            Arg::Text(v) => v.encode_by_ref(buf),
            Arg::Bool(v) => v.encode_by_ref(buf),
            Arg::Bytes(v) => v.encode_by_ref(buf),
        }
    }

    fn produces(&self) -> Option<DB::TypeInfo> {
        Some(match self {
            Arg::Int(_) => <i64 as Type<DB>>::type_info(),
            Arg::Real(_) => <f64 as Type<DB>>::type_info(),
            Arg::Text(_) => <String as Type<DB>>::type_info(),
            Arg::Bool(_) => <bool as Type<DB>>::type_info(),
            Arg::Bytes(_) => <Vec<u8> as Type<DB>>::type_info(),
        })
    }
}

/// A statement: SQL text with `$n` placeholders, and their values in order.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Sql {
        Sql {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// Binds the next placeholder the text names (`$1` first).
    pub fn bind(mut self, value: impl Into<Arg>) -> Sql {
        self.args.push(value.into());
        self
    }

    /// Appends text, e.g. a condition of a filter.
    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`, numbered after those bound so far.
    pub fn push_bind(&mut self, value: impl Into<Arg>) -> &mut Sql {
        self.args.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// One optional condition of a filter: appends `condition` with its
    /// `{}` standing for `value`'s placeholder, if there is a value.
    pub fn and<T: Into<Arg>>(&mut self, condition: &str, value: Option<T>) -> &mut Sql {
        if let Some(v) = value {
            let (before, after) = condition.split_once("{}").unwrap_or((condition, ""));
            self.push(before).push_bind(v).push(after);
        }
        self
    }
}

impl Sql {
    /// The text for SQLite. SQLite accepts `$n`, but looks a numbered
    /// parameter up by walking the list of them for each value bound, which
    /// makes a bulk insert's thousands of parameters cost their square: when
    /// the placeholders run `$1`, `$2`, ... in order, each once (what
    /// [`Sql::push_bind`] writes), they become plain `?`, bound by position.
    fn sqlite_text(&self) -> Cow<'_, str> {
        let mut out = String::with_capacity(self.text.len());
        let mut rest = self.text.as_str();
        let mut next = 1;
        while let Some(at) = rest.find('$') {
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let number = rest[at + 1..at + 1 + digits].parse::<usize>().ok();
            if digits > 0 && number != Some(next) {
                return Cow::Borrowed(&self.text);
            }
            out.push_str(&rest[..at]);
            out.push(if digits > 0 { '?' } else { '$' });
            next += usize::from(digits > 0);
            rest = &rest[at + 1 + digits..];
        }
        if next - 1 != self.args.len() {
            return Cow::Borrowed(&self.text);
        }
        out.push_str(rest);
        Cow::Owned(out)
    }
}

/// A row type either backend can produce.
pub trait Record:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> Record for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// One of the two backends' values: a pool, a transaction.
pub enum Backend<S, P> {
    Sqlite(S),
    Postgres(P),
}

/// Runs the same expression on whichever backend `$on` holds.
macro_rules! on_backend {
    ($on:expr, $x:ident => $call:expr) => {
        match $on {
            $crate::store::db::Backend::Sqlite($x) => $call,
            $crate::store::db::Backend::Postgres($x) => $call,
        }
    };
}
pub(super) use on_backend;

/// Runs `$call` on whichever backend `$on` holds, with `$text` the
/// statement's text in that backend's form ([`Sql::sqlite_text`]).
macro_rules! run_sql {
    ($on:expr, $q:expr, |$x:ident, $text:ident| $call:expr) => {
        match $on {
            Backend::Sqlite($x) => {
                let sqlite = $q.sqlite_text();
                let $text: &str = &sqlite;
                $call
            }
            Backend::Postgres($x) => {
                let $text: &str = &$q.text;
                $call
            }
        }
    };
}

/// The open database: its pool, and where writes go.
#[derive(Clone)]
pub struct Db {
    pool: Backend<SqlitePool, PgPool>,
    /// Where [`Db::begin`] and [`Db::execute`] run: on SQLite a pool of one
    /// connection, on PostgreSQL `pool` itself. A SQLite connection drops
    /// its whole page cache whenever another one has written; with writes
    /// rotating over the pool, each batch of fixes began by re-reading the
    /// index pages of `fixes` from the file (the profile of ingest). SQLite
    /// has one writer at a time anyway.
    writer: Backend<SqlitePool, PgPool>,
}

/// A transaction on it; dropped without [`Tx::commit`], it rolls back.
pub type Tx = Backend<Transaction<'static, Sqlite>, Transaction<'static, Postgres>>;

impl Clone for Backend<SqlitePool, PgPool> {
    fn clone(&self) -> Self {
        match self {
            Backend::Sqlite(p) => Backend::Sqlite(p.clone()),
            Backend::Postgres(p) => Backend::Postgres(p.clone()),
        }
    }
}

impl From<PgPool> for Db {
    fn from(p: PgPool) -> Db {
        Db {
            pool: Backend::Postgres(p.clone()),
            writer: Backend::Postgres(p),
        }
    }
}

impl Db {
    /// SQLite: `readers` for reads, `writer` (one connection) for writes.
    pub fn sqlite(readers: SqlitePool, writer: SqlitePool) -> Db {
        Db {
            pool: Backend::Sqlite(readers),
            writer: Backend::Sqlite(writer),
        }
    }

    /// The backend and its pool (of readers, on SQLite).
    pub fn backend(&self) -> &Backend<SqlitePool, PgPool> {
        &self.pool
    }

    pub async fn execute(&self, q: &Sql) -> StoreResult<u64> {
        Ok(run_sql!(&self.writer, q, |p, text| run::query(
            text, &q.args
        )
        .execute(p)
        .await
        .map_err(corrupt_or_db)?
        .rows_affected()))
    }

    pub async fn fetch_all<R: Record>(&self, q: &Sql) -> StoreResult<Vec<R>> {
        run_sql!(&self.pool, q, |p, text| run::query_as(text, &q.args)
            .fetch_all(p)
            .await)
        .map_err(corrupt_or_db)
    }

    pub async fn fetch_optional<R: Record>(&self, q: &Sql) -> StoreResult<Option<R>> {
        run_sql!(&self.pool, q, |p, text| run::query_as(text, &q.args)
            .fetch_optional(p)
            .await)
        .map_err(corrupt_or_db)
    }

    /// The one value of a one-row, one-column query (`SELECT COUNT(*) ...`).
    pub async fn fetch_value<T>(&self, q: &Sql) -> StoreResult<T>
    where
        (T,): Record,
    {
        let (v,) = run_sql!(&self.pool, q, |p, text| run::query_as(text, &q.args)
            .fetch_one(p)
            .await)
        .map_err(corrupt_or_db)?;
        Ok(v)
    }

    /// A transaction for a read-then-write: on SQLite `BEGIN IMMEDIATE`, so
    /// it holds the single writer's lock from its first read and no other
    /// writer slips in between (PostgreSQL takes row or advisory locks
    /// instead, see [`Tx::for_update`] and `lock_key`).
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(match &self.writer {
            Backend::Sqlite(p) => Backend::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres(p) => Backend::Postgres(p.begin().await?),
        })
    }

    /// Appends ` IN (...)` (or its equivalent) of `ids`, one parameter
    /// however many there are; an empty list matches nothing.
    pub fn push_in_ids(&self, q: &mut Sql, ids: &[i64]) {
        match &self.pool {
            Backend::Sqlite(_) => super::sqlite::push_in_ids(q, ids),
            Backend::Postgres(_) => super::postgres::push_in_ids(q, ids),
        }
    }
}

impl Tx {
    pub async fn execute(&mut self, q: &Sql) -> StoreResult<u64> {
        Ok(run_sql!(self, q, |t, text| run::query(text, &q.args)
            .execute(&mut **t)
            .await
            .map_err(corrupt_or_db)?
            .rows_affected()))
    }

    pub async fn fetch_all<R: Record>(&mut self, q: &Sql) -> StoreResult<Vec<R>> {
        run_sql!(self, q, |t, text| run::query_as(text, &q.args)
            .fetch_all(&mut **t)
            .await)
        .map_err(corrupt_or_db)
    }

    pub async fn fetch_optional<R: Record>(&mut self, q: &Sql) -> StoreResult<Option<R>> {
        run_sql!(self, q, |t, text| run::query_as(text, &q.args)
            .fetch_optional(&mut **t)
            .await)
        .map_err(corrupt_or_db)
    }

    pub async fn fetch_value<T>(&mut self, q: &Sql) -> StoreResult<T>
    where
        (T,): Record,
    {
        let (v,) = run_sql!(self, q, |t, text| run::query_as(text, &q.args)
            .fetch_one(&mut **t)
            .await)
        .map_err(corrupt_or_db)?;
        Ok(v)
    }

    pub async fn commit(self) -> StoreResult<()> {
        Ok(on_backend!(self, t => t.commit().await)?)
    }

    /// What a `SELECT` appends to lock the rows it reads until commit:
    /// ` FOR UPDATE` on PostgreSQL; nothing on SQLite, whose write
    /// transaction ([`Db::begin`]) already excludes every other writer.
    pub fn for_update(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "",
            Backend::Postgres(_) => " FOR UPDATE",
        }
    }

    /// Makes transactions that name the same `(class, key)` take turns, for
    /// a read-then-insert where there is no row to lock yet: a transaction
    /// advisory lock on PostgreSQL; nothing on SQLite (single writer).
    pub async fn lock_key(&mut self, class: i32, key: &str) -> StoreResult<()> {
        if let Backend::Postgres(t) = self {
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(class)
                .bind(key)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }
}

/// A statement ready to run on either backend: the only place that spells
/// out what sqlx needs of a database to bind an [`Arg`]. The backend is
/// inferred from the executor the query then runs on.
mod run {
    use sqlx::query::{Query, QueryAs};

    use super::*;

    pub fn query<'q, DB>(text: &'q str, args: &'q [Arg]) -> Query<'q, DB, DB::Arguments<'q>>
    where
        DB: Database,
        Arg: Encode<'q, DB> + Type<DB>,
    {
        args.iter()
            .fold(sqlx::query(text), |query, a| query.bind(a))
    }

    pub fn query_as<'q, DB, R>(
        text: &'q str,
        args: &'q [Arg],
    ) -> QueryAs<'q, DB, R, DB::Arguments<'q>>
    where
        DB: Database,
        Arg: Encode<'q, DB> + Type<DB>,
        R: for<'r> FromRow<'r, DB::Row>,
    {
        args.iter()
            .fold(sqlx::query_as(text), |query, a| query.bind(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_gets_positional_placeholders_when_they_run_in_order() {
        let mut q = Sql::new("SELECT a FROM t WHERE TRUE");
        q.and(" AND b = {}", Some(1i64))
            .and(" AND c IN ({})", Some("x"));
        assert_eq!(
            q.sqlite_text(),
            "SELECT a FROM t WHERE TRUE AND b = ? AND c IN (?)"
        );
        let reused = Sql::new("SELECT $1, $2 WHERE x > $1").bind(1i64).bind(2i64);
        assert_eq!(reused.sqlite_text(), reused.text);
        let unbound = Sql::new("SELECT $1");
        assert_eq!(unbound.sqlite_text(), "SELECT $1");
    }
}

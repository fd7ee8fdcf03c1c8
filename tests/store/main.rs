//! The store suite: every test is written once against [`Store`] and run on
//! both backends, so SQLite and PostgreSQL are held to the same behaviour.
//! `on_sqlite::*` always run (a fresh temp file each). `on_postgres::*` are
//! ignored by default and run by `.ci/run` (`cargo test --test store --
//! --ignored`) against `MUCKWATCH_TEST_POSTGRES_URL`; each creates its own
//! database and drops it afterwards, also when it fails. `layout` holds what
//! only one backend has (PostgreSQL's partitions) and the migration of
//! databases made by an earlier muckwatch.

#[path = "../common/mod.rs"]
mod common;

/// Runs each named suite function of the module on SQLite and, when asked
/// for, PostgreSQL.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let db = crate::common::db::sqlite_db().await;
                    super::$test(&db.store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL; run by .ci/run"]
                async fn $test() {
                    let db = crate::common::db::postgres_db().await;
                    super::$test(&db.store).await;
                }
            )*
        }
    };
}

mod applications;
mod cases;
mod concurrency;
mod credit;
mod deadlines;
mod fixes;
mod fleet;
mod inspections;
mod layout;
mod outbox;
mod permits;
mod support;
mod terminals;
mod violations;

//! Migrations: `migrations/<backend>/NNNN_name.sql`, embedded by
//! `sqlx::migrate!` (one migrator per backend, in the dialect files) and
//! applied at start; sqlx records them in `_sqlx_migrations` and, on
//! PostgreSQL, lets instances started together take turns.
//!
//! Databases made before muckwatch used sqlx's migrator recorded their
//! versions in `schema_migrations`: those are adopted first (entered into
//! `_sqlx_migrations` with the checksums of the same files), so such a
//! database opens and only the newer migrations run.

use sqlx::migrate::{Migrate, Migrator};

use super::db::{on_backend, Backend, Db, Sql};
use super::{postgres, sqlite, StoreResult};

/// Advisory lock class while adopting ("mwmi").
const ADOPT_LOCK: i32 = 0x6d77_6d69;

const LEGACY_TABLE: &str = "schema_migrations";

fn migrator(db: &Db) -> &'static Migrator {
    match db.backend() {
        Backend::Sqlite(_) => &sqlite::MIGRATOR,
        Backend::Postgres(_) => &postgres::MIGRATOR,
    }
}

pub async fn run(db: &Db) -> anyhow::Result<()> {
    let adopted = adopt_legacy_versions(db).await?;
    if adopted > 0 {
        tracing::info!(
            versions = adopted,
            "adopted the migrations recorded by an earlier muckwatch"
        );
    }
    on_backend!(db.backend(), pool => migrator(db).run(pool).await)?;
    Ok(())
}

/// Enters the versions of `schema_migrations` into sqlx's table and drops
/// it; returns how many. Nothing to do on a new or already adopted database.
async fn adopt_legacy_versions(db: &Db) -> StoreResult<usize> {
    let mut tx = db.begin().await?;
    tx.lock_key(ADOPT_LOCK, LEGACY_TABLE).await?;
    let exists = match &tx {
        Backend::Sqlite(_) => sqlite::TABLE_EXISTS,
        Backend::Postgres(_) => postgres::TABLE_EXISTS,
    };
    let legacy: i64 = tx.fetch_value(&Sql::new(exists).bind(LEGACY_TABLE)).await?;
    if legacy == 0 {
        return Ok(0);
    }
    on_backend!(&mut tx, t => t.ensure_migrations_table().await)
        .map_err(|e| super::StoreError::Corrupt(format!("cannot adopt old migrations: {e}")))?;
    let applied: Vec<(i64,)> = tx
        .fetch_all(&Sql::new(format!("SELECT version FROM {LEGACY_TABLE}")))
        .await?;
    let mut adopted = 0;
    for m in migrator(db).iter() {
        if !applied.iter().any(|(v,)| *v == m.version) {
            continue;
        }
        let q = Sql::new(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, 0) ON CONFLICT (version) DO NOTHING",
        )
        .bind(m.version)
        .bind(m.description.as_ref())
        .bind(m.checksum.to_vec());
        tx.execute(&q).await?;
        adopted += 1;
    }
    tx.execute(&Sql::new(format!("DROP TABLE {LEGACY_TABLE}")))
        .await?;
    tx.commit().await?;
    Ok(adopted)
}

//! Databases of their own for tests: a temp SQLite file, or a fresh
//! PostgreSQL database (dropped afterwards, also when the test fails).

use std::sync::atomic::{AtomicU64, Ordering};

use muckwatch::store::Store;
use sqlx::Connection;

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

/// A store on a database of its own, removed when this is dropped.
pub struct TestDb {
    pub store: Store,
    /// The database URL, for starting muckwatch itself on it.
    pub url: String,
    _database: EmptyDb,
}

/// A database of its own with nothing in it (not even muckwatch's tables),
/// removed when this is dropped.
pub struct EmptyDb {
    pub url: String,
    cleanup: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for EmptyDb {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup();
        }
    }
}

impl EmptyDb {
    /// Opens it as muckwatch does (migrating it).
    pub async fn open(self) -> TestDb {
        let store = Store::connect(&self.url).await.expect("store opens");
        TestDb {
            store,
            url: self.url.clone(),
            _database: self,
        }
    }
}

pub async fn sqlite_db() -> TestDb {
    sqlite_empty().await.open().await
}

pub async fn postgres_db() -> TestDb {
    postgres_empty().await.open().await
}

pub async fn sqlite_empty() -> EmptyDb {
    let dir = std::env::temp_dir().join("muckwatch-tests");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    let file = dir.join(format!("store-{}-{n}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    let url = format!("sqlite://{}", file.display());
    let cleanup = move || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
    };
    EmptyDb {
        url,
        cleanup: Some(Box::new(cleanup)),
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("MUCKWATCH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database (the path) replaced by `db`, query kept.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    format!("{}/{db}{query}", &base[..path_start])
}

/// Drops `mw_test_<pid>_*` databases whose test process is gone (a run that
/// was killed before its guards ran), so they do not pile up. Without
/// `FORCE`: a database someone is still connected to (a run in another pid
/// namespace sharing this server) is left alone.
async fn drop_abandoned_databases(admin: &mut sqlx::PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'mw\\_test\\_%'")
            .fetch_all(&mut *admin)
            .await
            .expect("list test databases");
    for name in names {
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| {
            p != std::process::id() && !std::path::Path::new(&format!("/proc/{p}")).exists()
        }) {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .execute(&mut *admin)
                .await;
        }
    }
}

pub async fn postgres_empty() -> EmptyDb {
    let admin_url = postgres_admin_url();
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} (MUCKWATCH_TEST_POSTGRES_URL): {e}",
                muckwatch::store::redact_url(&admin_url)
            )
        });
    drop_abandoned_databases(&mut admin).await;
    let name = format!(
        "mw_test_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop old");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let _ = admin.close().await;
    let url = with_database(&admin_url, &name);
    // Drop runs inside the test's runtime, possibly while unwinding from a
    // failed assertion: the database is dropped from a thread of its own,
    // with `FORCE` ending the pool's connections that are still open.
    let cleanup = move || {
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database: {dropped:?}");
        }
    };
    EmptyDb {
        url,
        cleanup: Some(Box::new(cleanup)),
    }
}

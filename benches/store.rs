//! The store's write path for fixes on SQLite: `Store::insert_fixes` (the
//! statement built once for both backends, its values bound through the
//! store's `Arg`) beside the same multi-row INSERT built directly with
//! sqlx's `QueryBuilder`, as the SQLite backend did before the store was
//! one, in the same run, on the same schema. The ratio is what the shared
//! statement costs.
//!
//! `cargo bench --bench store`. `BENCH_BATCHES` (default 200) batches of
//! 1,000 fixes; each side runs four rounds, which one goes first
//! alternating, on a fresh file each; the best of each side is compared.

use std::str::FromStr;
use std::time::{Duration, Instant};

use muckwatch::fix::{DeviceId, Fix};
use muckwatch::store::Store;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite};

const BATCH: usize = 1000;
const ROWS_PER_INSERT: usize = 500;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

fn batches(n: usize) -> Vec<Vec<Fix>> {
    (0..n)
        .map(|b| {
            (0..BATCH)
                .map(|i| Fix {
                    device_id: DeviceId::parse(&format!("dev-{:04}", i % 500)).expect("device"),
                    ts_ms: 1_622_556_000_000 + (b * BATCH + i) as i64 * 1000,
                    lat: 33.38,
                    lon: 120.16,
                    speed_kmh: 30.0,
                    heading: Some(90.0),
                    acc: Some(true),
                    tipper_up: Some(false),
                    cover_closed: Some(true),
                    load_t: Some(20.0),
                })
                .collect()
        })
        .collect()
}

async fn fresh(dir: &std::path::Path, name: &str) -> anyhow::Result<(Store, String)> {
    let file = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    let url = format!("sqlite://{}", file.display());
    Ok((Store::connect(&url).await?, url))
}

async fn through_store(store: &Store, batches: &[Vec<Fix>]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for b in batches {
        store.insert_fixes(b, 0).await?;
    }
    Ok(start.elapsed())
}

/// The SQLite backend's insert before the store was one, on its own pool.
async fn through_query_builder(url: &str, batches: &[Vec<Fix>]) -> anyhow::Result<Duration> {
    // The options the store opens SQLite with.
    let opts = SqliteConnectOptions::from_str(url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await?;
    let start = Instant::now();
    for b in batches {
        let mut tx = pool.begin().await?;
        for chunk in b.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO fixes (device_id, ts_ms, lat, lon, speed_kmh, heading, acc, \
                 tipper_up, cover_closed, load_t, received_ms) ",
            );
            q.push_values(chunk, |mut r, f| {
                r.push_bind(f.device_id.as_str().to_string())
                    .push_bind(f.ts_ms)
                    .push_bind(f.lat)
                    .push_bind(f.lon)
                    .push_bind(f.speed_kmh)
                    .push_bind(f.heading)
                    .push_bind(f.acc)
                    .push_bind(f.tipper_up)
                    .push_bind(f.cover_closed)
                    .push_bind(f.load_t)
                    .push_bind(0i64);
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    Ok(start.elapsed())
}

async fn run() -> anyhow::Result<()> {
    let n: usize = std::env::var("BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("muckwatch-bench-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let data = batches(n);
    let fixes = (n * BATCH) as f64;
    let (mut store_best, mut builder_best) = (Duration::MAX, Duration::MAX);
    for round in 0..4 {
        // Alternating which side runs first, so that neither gets the
        // warmer machine every time.
        let (mut s, mut b) = (Duration::ZERO, Duration::ZERO);
        for side in [round % 2, 1 - round % 2] {
            let (store, url) = fresh(&dir, &format!("{side}-{round}.db")).await?;
            if side == 0 {
                s = through_store(&store, &data).await?;
            } else {
                drop(store);
                b = through_query_builder(&url, &data).await?;
            }
        }
        println!(
            "round {round}: Store::insert_fixes {:.0} fixes/s, QueryBuilder {:.0} fixes/s",
            fixes / s.as_secs_f64(),
            fixes / b.as_secs_f64()
        );
        store_best = store_best.min(s);
        builder_best = builder_best.min(b);
    }
    println!(
        "best of 4: Store::insert_fixes {:.0} fixes/s, QueryBuilder {:.0} fixes/s, ratio {:.2}",
        fixes / store_best.as_secs_f64(),
        fixes / builder_best.as_secs_f64(),
        builder_best.as_secs_f64() / store_best.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

//! The officers' endpoints at fleet scale (issue 20), beside `/healthz` in
//! the same run: a running muckwatch (`Application::build`, embedded broker,
//! real HTTP) over a database seeded with `BENCH_TRUCKS` registered trucks
//! (default 5,000), 50 fixes each (250,000 for 5,000 trucks, the last 100
//! minutes), and one open case per truck (every truck ran without a permit:
//! NO_PERMIT, checks for urban and transport). `BENCH_CLIENTS` (default 50)
//! keep-alive clients then hit one endpoint at a time for `BENCH_SECS`
//! (default 5) seconds each; the table gives req/s, p50 and p99 per endpoint
//! and each one's req/s as a share of `/healthz`'s.
//!
//! `cargo bench --bench api` (SQLite, a fresh file under the temp dir);
//! `BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/EMPTY_DB cargo
//! bench --bench api` for PostgreSQL (the database must exist and be empty).
//!
//! The live map is read once detection has rebuilt its state from the
//! stored fixes (the warm-up after a start), as after any restart.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use muckwatch::auth::{new_token, token_hash, Department, Role};
use muckwatch::cases::{Deadlines, NewViolationCase};
use muckwatch::configuration::Settings;
use muckwatch::fix::{DeviceId, Fix};
use muckwatch::identity::{Firm, FirmId, Plate, Vehicle};
use muckwatch::startup::Application;
use muckwatch::store::Store;
use muckwatch::violation::{Violation, ViolationCode};

const FIXES_PER_TRUCK: usize = 50;
const FIX_EVERY_MS: i64 = 120_000;
const FIRMS: usize = 50;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let trucks = env_usize("BENCH_TRUCKS", 5_000);
    let clients = env_usize("BENCH_CLIENTS", 50);
    let secs = env_usize("BENCH_SECS", 5) as u64;
    let url = match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            let dir = std::env::temp_dir().join("muckwatch-bench-api");
            std::fs::create_dir_all(&dir)?;
            let file = dir.join(format!("api-{}.db", std::process::id()));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
            format!("sqlite://{}", file.display())
        }
    };
    let store = Store::connect(&url).await?;
    let started = Instant::now();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let t0 = now_ms - (FIXES_PER_TRUCK as i64 + 5) * FIX_EVERY_MS;
    seed(&store, trucks, t0, now_ms).await?;
    eprintln!(
        "seeded {trucks} trucks, {} fixes, {trucks} open cases in {:.1} s",
        trucks * FIXES_PER_TRUCK,
        started.elapsed().as_secs_f64()
    );

    let mut settings = Settings::default();
    settings.database.url = url.clone();
    settings.mqtt.listen = "127.0.0.1:0".into();
    settings.http.addr = "127.0.0.1:0".into();
    settings.ingest.warm_up_s = 4 * 3600;
    // `BENCH_READ_CACHE_MS=0` measures every request down to the database.
    settings.http.read_cache_ms = env_usize("BENCH_READ_CACHE_MS", 1000) as u64;
    let read_cache_ms = settings.http.read_cache_ms;
    let app = Application::build(settings).await?;
    let addr = app.http_addr;
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run_until_stopped());

    let token = |role: &str| {
        let store = store.clone();
        let role = role.to_string();
        async move {
            let t = new_token()?;
            store
                .create_token(
                    &token_hash(&t),
                    &Role::parse(&role).map_err(anyhow::Error::msg)?,
                    0,
                )
                .await?;
            anyhow::Ok(t)
        }
    };
    let (admin, urban, police) = (
        token("admin").await?,
        token("dept:urban").await?,
        token("dept:police").await?,
    );

    // The live map is complete once the last truck shows its newest fix.
    let last = format!("/api/v1/vehicles?limit=1&offset={}", trucks - 1);
    let ready = Instant::now();
    loop {
        let (status, body) = get(addr, &last, Some(&admin)).await?;
        if status == 200
            && body.windows(10).any(|w| w == b"\"last_fix\"")
            && !body.windows(15).any(|w| w == b"\"last_fix\":null")
        {
            break;
        }
        anyhow::ensure!(
            ready.elapsed() < Duration::from_secs(300),
            "the live map did not show every truck: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "live map ready after {:.1} s",
        ready.elapsed().as_secs_f64()
    );

    // One case of the urban department's list, for the single-case page.
    let (_, first) = get(addr, "/api/v1/cases?limit=1", Some(&urban)).await?;
    let case_id = serde_json::from_slice::<serde_json::Value>(&first)?["items"][0]["id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no case listed"))?;
    let case_path = format!("/api/v1/cases/{case_id}");
    let endpoints: [(&str, &str, Option<&str>); 6] = [
        ("/healthz", "/healthz", None),
        ("live map", "/api/v1/vehicles?limit=1000", Some(&police)),
        ("case list", "/api/v1/cases?limit=100", Some(&urban)),
        ("case", &case_path, Some(&urban)),
        ("stats", "/api/v1/stats", Some(&admin)),
        ("violations", "/api/v1/violations?limit=100", Some(&urban)),
    ];
    println!(
        "\n{trucks} trucks, {} fixes, {trucks} open cases, {clients} clients, {secs} s each, \
         read cache {read_cache_ms} ms, {}",
        trucks * FIXES_PER_TRUCK,
        if url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        }
    );
    println!("| endpoint | req/s | % of /healthz | p50 ms | p99 ms | errors |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut healthz_rate = None;
    for (name, path, token) in endpoints {
        let r = load(addr, path, token, clients, Duration::from_secs(secs)).await?;
        let rate = r.count as f64 / r.elapsed.as_secs_f64();
        let base = *healthz_rate.get_or_insert(rate);
        println!(
            "| `{name}` `{path}` | {rate:.0} | {:.1}% | {:.1} | {:.1} | {} |",
            100.0 * rate / base,
            r.percentile(0.50),
            r.percentile(0.99),
            r.errors
        );
    }
    shutdown.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    // The SQLite file made for this run (100 MB at 20,000 trucks) goes with it.
    if let Some(file) = url.strip_prefix("sqlite://") {
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{file}{suffix}"));
        }
    }
    Ok(())
}

/// Firms, trucks, their fixes and one NO_PERMIT case each, straight into
/// the store.
async fn seed(store: &Store, trucks: usize, t0: i64, now_ms: i64) -> anyhow::Result<()> {
    let err = anyhow::Error::msg;
    for f in 0..FIRMS {
        let firm = Firm {
            id: FirmId::parse(&format!("firm-{f:03}")).map_err(err)?,
            name: format!("运输公司{f}"),
        };
        store.create_firm(&firm, now_ms).await?;
    }
    let mut vehicles = Vec::with_capacity(trucks);
    for i in 0..trucks {
        let v = Vehicle {
            plate: Plate::parse(&format!("苏B{i:05}")).map_err(err)?,
            device_id: DeviceId::parse(&format!("0138{i:08}")).map_err(err)?,
            firm_id: FirmId::parse(&format!("firm-{:03}", i % FIRMS)).map_err(err)?,
            rated_load_t: 30.0,
        };
        store.create_vehicle(&v, now_ms).await?;
        vehicles.push(v);
    }
    let mut batch = Vec::with_capacity(10_000);
    for k in 0..FIXES_PER_TRUCK {
        for (i, v) in vehicles.iter().enumerate() {
            batch.push(Fix {
                device_id: v.device_id,
                ts_ms: t0 + k as i64 * FIX_EVERY_MS + (i % 1000) as i64,
                lat: 33.30 + (i % 100) as f64 * 0.001 + k as f64 * 0.0002,
                lon: 120.10 + (i / 100) as f64 * 0.001,
                speed_kmh: 30.0,
                heading: Some(0.0),
                acc: Some(true),
                tipper_up: Some(false),
                cover_closed: Some(true),
                load_t: Some(20.0),
            });
            if batch.len() == 10_000 {
                store.insert_fixes(&batch, now_ms).await?;
                batch.clear();
            }
        }
    }
    store.insert_fixes(&batch, now_ms).await?;
    for v in &vehicles {
        let started_ms = t0 + 3 * FIX_EVERY_MS;
        let violation = Violation {
            code: ViolationCode::NoPermit,
            plate: v.plate.clone(),
            device_id: v.device_id,
            firm_id: v.firm_id.clone(),
            permit_id: None,
            started_ms,
            ended_ms: None,
            lat: 33.3,
            lon: 120.1,
            measured: 240.0,
            fences: Vec::new(),
            uncertainty: None,
        };
        let id = store.insert_violation(&violation, now_ms).await?;
        let case = NewViolationCase {
            violation_id: id,
            code: ViolationCode::NoPermit,
            plate: v.plate.clone(),
            device_id: v.device_id,
            firm_id: v.firm_id.clone(),
            started_ms,
            merge_window_ms: 12 * 3_600_000,
            deadlines: Deadlines::default(),
            departments: vec![Department::Urban, Department::Transport],
            parties: Vec::new(),
        };
        store.file_violation(&case, now_ms).await?;
    }
    Ok(())
}

struct LoadResult {
    count: usize,
    errors: usize,
    elapsed: Duration,
    /// Every request's latency, milliseconds, sorted.
    latencies: Vec<f64>,
}

impl LoadResult {
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1]
    }
}

/// `clients` connections, each sending `path` again and again until `d` is up.
async fn load(
    addr: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
    clients: usize,
    d: Duration,
) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let deadline = start + d;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let path = path.to_string();
        let auth = token.map(|t| format!("Bearer {t}"));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let stream = tokio::net::TcpStream::connect(addr).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            while Instant::now() < deadline {
                let mut req = hyper::Request::get(&path).header("host", "bench");
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                let t = Instant::now();
                let resp = sender
                    .send_request(req.body(Empty::<Bytes>::new())?)
                    .await?;
                let ok = resp.status().is_success();
                resp.into_body().collect().await?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                errors += usize::from(!ok);
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    all.sort_by(f64::total_cmp);
    Ok(LoadResult {
        count: all.len(),
        errors,
        elapsed,
        latencies: all,
    })
}

/// One request on a fresh connection: status and body.
async fn get(
    addr: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = hyper::Request::get(path).header("host", "bench");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = sender
        .send_request(req.body(Empty::<Bytes>::new())?)
        .await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes().to_vec();
    Ok((status, body))
}

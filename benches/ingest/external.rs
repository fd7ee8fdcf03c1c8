//! The external-broker path: muckwatch against a bare subscriber that only
//! counts, on the same Mosquitto, with the same publisher, in the same run,
//! QoS 1. Brokers: this machine's (127.0.0.1:1883, as installed, or
//! `BENCH_SYSTEM_MQTT_URL`) and a private one started here with the
//! deployment guide's limits (if `mosquitto` is on PATH). Databases: SQLite,
//! and PostgreSQL (a database of its own, dropped after) when
//! `MUCKWATCH_TEST_POSTGRES_URL` or 127.0.0.1:5432 answers.
//!
//! A broker as installed drops what does not fit its queue, so a phase ends
//! when everything arrived or nothing more has for [`SETTLE`]; the rate is
//! what arrived over the time until the last of it. Every phase also counts
//! what muckwatch received against what it stored (lost inside muckwatch)
//! and rows it found already stored (duplicates).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use muckwatch::configuration::Settings;
use muckwatch::startup::Application;
use rumqttc::QoS;
use sqlx::Connection;

/// A phase is over once nothing has arrived for this long.
const SETTLE: Duration = Duration::from_secs(3);

struct Broker {
    label: String,
    host: String,
    port: u16,
    /// The private Mosquitto, killed when the bench is done with it.
    child: Option<Child>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub async fn run() -> anyhow::Result<()> {
    let total: usize = std::env::var("BENCH_FIXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // `[mqtt] connections` muckwatch is measured with, each against the
    // same bare subscriber figure: "1,4" by default.
    let connections: Vec<usize> = std::env::var("BENCH_CONNECTIONS")
        .unwrap_or_else(|_| "1,4".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let wanted = |var: &str, name: &str| {
        std::env::var(var)
            .map(|v| v.split(',').any(|w| w.trim() == name))
            .unwrap_or(true)
    };
    let mut brokers = Vec::new();
    if wanted("BENCH_BROKERS", "guide") {
        match private_mosquitto() {
            Ok(Some(b)) => brokers.push(b),
            Ok(None) => {
                println!("external: no `mosquitto` on PATH; the guide's-limits broker is skipped")
            }
            Err(e) => println!("external: cannot start a private mosquitto: {e:#}"),
        }
    }
    let system =
        std::env::var("BENCH_SYSTEM_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into());
    let hostport = system.trim_start_matches("mqtt://").to_string();
    if let Some((host, port)) = Some(hostport.as_str())
        .filter(|_| wanted("BENCH_BROKERS", "installed"))
        .and_then(|h| h.rsplit_once(':'))
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
    {
        if TcpStream::connect_timeout(&format!("{host}:{port}").parse()?, Duration::from_secs(1))
            .is_ok()
        {
            brokers.push(Broker {
                label: format!("mosquitto as installed ({host}:{port})"),
                host,
                port,
                child: None,
            });
        } else {
            println!("external: nothing on {hostport}; the as-installed broker is skipped");
        }
    }
    let pg_admin = std::env::var("MUCKWATCH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pg = match sqlx::PgConnection::connect(&pg_admin).await {
        Ok(c) => {
            let _ = c.close().await;
            true
        }
        Err(_) => {
            println!(
                "external: no PostgreSQL at {}; skipped",
                muckwatch::store::redact_url(&pg_admin)
            );
            false
        }
    };
    println!(
        "external-broker path: {total} fixes from {} devices, one per message, QoS 1",
        super::DEVICES
    );
    for broker in &brokers {
        let mut dbs = vec!["sqlite"];
        if pg {
            dbs.push("postgres");
        }
        dbs.retain(|d| wanted("BENCH_DATABASES", d));
        for db in dbs {
            for &n in &connections {
                let result = phase(broker, db, &pg_admin, total, n).await;
                if let Err(e) = result {
                    println!("  {} / {db} / {n} conn: failed: {e:#}", broker.label);
                }
            }
        }
    }
    Ok(())
}

/// One broker and database: the bare subscriber, then muckwatch.
async fn phase(
    broker: &Broker,
    db: &str,
    pg_admin: &str,
    total: usize,
    connections: usize,
) -> anyhow::Result<()> {
    let run = format!("{}-{}", std::process::id(), unique());
    let dir = std::env::temp_dir().join(format!("muckwatch-bench-ext-{run}"));
    std::fs::create_dir_all(&dir)?;
    let pg_name = format!("mw_bench_{}", run.replace('-', "_"));
    let url = if db == "postgres" {
        let mut admin = sqlx::PgConnection::connect(pg_admin).await?;
        sqlx::query(&format!("CREATE DATABASE {pg_name}"))
            .execute(&mut admin)
            .await?;
        let _ = admin.close().await;
        with_database(pg_admin, &pg_name)
    } else {
        format!("sqlite://{}", dir.join("bench.db").display())
    };
    let outcome = measure(broker, &url, &run, total, connections).await;
    if db == "postgres" {
        let mut admin = sqlx::PgConnection::connect(pg_admin).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
        let _ = admin.close().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let m = outcome?;
    let bare_rate = m.bare_count as f64 / m.bare_time.as_secs_f64();
    let ingest_rate = m.stored as f64 / m.ingest_time.as_secs_f64();
    println!(
        "  {} / {db} / {connections} conn: bare subscriber {bare_rate:>7.0} fixes/s ({} of {total} arrived) | muckwatch stored {ingest_rate:>7.0} fixes/s ({} of {total}; received {}, duplicates {}) | ratio {:.2}",
        broker.label,
        m.bare_count,
        m.stored,
        m.received,
        m.duplicates,
        ingest_rate / bare_rate
    );
    if m.received != m.stored + m.duplicates || m.duplicates != 0 {
        println!(
            "  !! muckwatch lost or duplicated fixes: received {}, stored {}, duplicates {}",
            m.received, m.stored, m.duplicates
        );
    }
    Ok(())
}

struct Measured {
    bare_count: usize,
    bare_time: Duration,
    stored: usize,
    received: usize,
    duplicates: usize,
    ingest_time: Duration,
}

async fn measure(
    broker: &Broker,
    db_url: &str,
    run: &str,
    total: usize,
    connections: usize,
) -> anyhow::Result<Measured> {
    let mut settings = Settings::default();
    settings.database.url = db_url.to_string();
    settings.mqtt.url = Some(format!("mqtt://{}:{}", broker.host, broker.port));
    settings.mqtt.client_id = format!("mw-bench-{run}");
    settings.mqtt.persistent_session = Some(false);
    settings.mqtt.topic_prefix = format!("mwbench-{run}/muckwatch/v1");
    settings.mqtt.listen = "127.0.0.1:0".into();
    settings.http.addr = "127.0.0.1:0".into();
    settings.mqtt.connections = connections.max(1);
    if let Some(n) = std::env::var("BENCH_BATCH_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        settings.ingest.batch_size = n;
    }
    let prefix = settings.mqtt.topic_prefix.clone();
    let app = Application::build(settings).await?;
    app.wait_subscribed(Duration::from_secs(10)).await?;
    let metrics = app.metrics.clone();
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run_until_stopped());

    let counted = Arc::new(AtomicU64::new(0));
    let bare_prefix = format!("mwbench-bare-{run}");
    let sub = super::bare_subscriber(
        &broker.host,
        broker.port,
        &format!("{bare_prefix}/pos/+/+"),
        counted.clone(),
    )
    .await?;
    let (bare_time, bare_count) = settle(
        &broker.host,
        broker.port,
        &bare_prefix,
        total,
        || counted.load(Ordering::Relaxed) as usize,
        || false,
    )
    .await?;
    sub.abort();

    let m = metrics.clone();
    let (ingest_time, stored) = settle(
        &broker.host,
        broker.port,
        &prefix,
        total,
        || metrics.fixes_ingested.load(Ordering::Relaxed) as usize,
        // Received but not yet committed (a commit held up by a busy disk):
        // still arriving, not lost.
        move || {
            m.messages_received.load(Ordering::Relaxed)
                > m.fixes_ingested.load(Ordering::Relaxed)
                    + m.fixes_duplicate.load(Ordering::Relaxed)
        },
    )
    .await?;
    let received = metrics.messages_received.load(Ordering::Relaxed) as usize;
    let duplicates = metrics.fixes_duplicate.load(Ordering::Relaxed) as usize;
    shutdown.trigger();
    let _ = server.await;
    Ok(Measured {
        bare_count,
        bare_time,
        stored,
        received,
        duplicates,
        ingest_time,
    })
}

/// Publishes `total` one-fix messages at QoS 1 and waits until `count`
/// reaches it or stops moving (for [`SETTLE`], and `pending` is false); the
/// time until the last arrival, and the count.
async fn settle(
    host: &str,
    port: u16,
    prefix: &str,
    total: usize,
    count: impl Fn() -> usize,
    pending: impl Fn() -> bool,
) -> anyhow::Result<(Duration, usize)> {
    let (start, poller) = super::publish(host, port, prefix, total, 1, QoS::AtLeastOnce).await?;
    let mut last = (0, start.elapsed());
    loop {
        let n = count();
        let now = start.elapsed();
        if n != last.0 {
            last = (n, now);
        }
        if n >= total || (now - last.1 > SETTLE && !pending()) || now > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    poller.abort();
    Ok((last.1.max(Duration::from_millis(1)), last.0))
}

/// A Mosquitto of the bench's own on a free port, with the limits the
/// deployment guide asks for (1,000 in flight, a queue that holds a burst).
fn private_mosquitto() -> anyhow::Result<Option<Broker>> {
    let Some(bin) = which("mosquitto") else {
        return Ok(None);
    };
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let dir = std::env::temp_dir().join(format!("muckwatch-bench-mosq-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_inflight_messages 1000\nmax_queued_messages 1000000\nsys_interval 1\n"
        ),
    )?;
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let broker = Broker {
        label: "mosquitto with the guide's limits (inflight 1000, queue 1e6)".into(),
        host: "127.0.0.1".into(),
        port,
        child: Some(child),
    };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(5) {
            anyhow::bail!("private mosquitto did not listen on {port} within 5 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Some(broker))
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `url` with its database (the path) replaced by `db`, query kept.
fn with_database(url: &str, db: &str) -> String {
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

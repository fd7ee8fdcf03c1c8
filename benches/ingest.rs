//! Ingest throughput: fixes/s from MQTT publish to committed SQLite rows,
//! beside the rate a bare subscriber reaches on the same embedded broker in
//! the same run (the ceiling the broker and client library allow).
//!
//! `cargo bench --bench ingest`. Environment:
//! - `BENCH_FIXES` (default 100000);
//! - `BENCH_MQTT_URL`: an external broker (e.g. mqtt://127.0.0.1:1883) instead of
//!   the embedded one; topics get a prefix of their own;
//! - `BENCH_DATABASE_URL`: another database (e.g. an empty PostgreSQL database);
//! - `BENCH_QOS`: 0 (default) or 1 for the publishes.
//! - `BENCH_EXTERNAL=0` skips the external-broker path (`external` module):
//!   muckwatch against a bare subscriber on this machine's Mosquitto
//!   (127.0.0.1:1883, as installed) and on a private Mosquitto with the
//!   deployment guide's limits, QoS 1, SQLite and PostgreSQL when reachable;
//!   `BENCH_EMBEDDED=0` skips the embedded-broker path (to run or profile
//!   the external one alone), `BENCH_BROKERS` (`guide,installed`),
//!   `BENCH_DATABASES` (`sqlite,postgres`) and `BENCH_CONNECTIONS` (`1,4`)
//!   narrow it; `BENCH_BATCH_SIZE` sets muckwatch's `ingest.batch_size`.
//!   The machine is noisy: compare ratios from the same run, over rounds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use muckwatch::configuration::Settings;
use muckwatch::fix::DeviceId;
use muckwatch::ingest::position_topic;
use muckwatch::startup::Application;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const DEVICES: usize = 1000;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The embedded path failing (QoS 0 sheds load) must not hide the
    // external one.
    if std::env::var("BENCH_EMBEDDED").as_deref() != Ok("0") {
        if let Err(e) = rt.block_on(run()) {
            println!("embedded path: {e:#}");
        }
    }
    if std::env::var("BENCH_EXTERNAL").as_deref() != Ok("0") {
        rt.block_on(external::run())?;
    }
    Ok(())
}

#[path = "ingest/external.rs"]
mod external;

async fn run() -> anyhow::Result<()> {
    let total: usize = std::env::var("BENCH_FIXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("muckwatch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let qos = if std::env::var("BENCH_QOS").as_deref() == Ok("1") {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    };
    let mut settings = Settings::default();
    settings.database.url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.join("bench.db").display()));
    settings.mqtt.url = std::env::var("BENCH_MQTT_URL").ok();
    settings.mqtt.client_id = format!("mw-bench-{}", std::process::id());
    settings.mqtt.topic_prefix = format!("mwbench-{}/muckwatch/v1", std::process::id());
    settings.mqtt.listen = "127.0.0.1:0".into();
    settings.http.addr = "127.0.0.1:0".into();
    let prefix = settings.mqtt.topic_prefix.clone();
    let broker_name = settings
        .mqtt
        .url
        .clone()
        .unwrap_or_else(|| "embedded broker".into());
    let db_name = muckwatch::store::redact_url(&settings.database.url);
    let app = Application::build(settings).await?;
    app.wait_subscribed(Duration::from_secs(10)).await?;
    let metrics = app.metrics.clone();
    let broker = app.mqtt.clone();
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run_until_stopped());

    println!("ingest benchmark: {total} fixes from {DEVICES} devices, {broker_name}, {db_name}, publish {qos:?}");
    for batch in [1usize, 10] {
        let messages = total / batch;
        // Baseline: a subscriber that only counts what it receives.
        let counted = Arc::new(AtomicU64::new(0));
        let bare_prefix = format!("mwbench-bare-{}-{batch}", std::process::id());
        let (bh, bp) = (broker.host.clone(), broker.port);
        let sub =
            bare_subscriber(&bh, bp, &format!("{bare_prefix}/pos/+/+"), counted.clone()).await?;
        let bare = publish_and_wait(&bh, bp, &bare_prefix, messages, batch, qos, || {
            counted.load(Ordering::Relaxed) as usize >= messages
        })
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "bare subscriber got {} of {}: {e}",
                counted.load(Ordering::Relaxed),
                messages * batch
            )
        })?;
        sub.abort();

        let before = metrics.fixes_ingested.load(Ordering::Relaxed) as usize;
        let target = before + messages * batch;
        let ingest = publish_and_wait(
            &broker.host,
            broker.port,
            &prefix,
            messages,
            batch,
            qos,
            || metrics.fixes_ingested.load(Ordering::Relaxed) as usize >= target,
        )
        .await?;
        let bare_rate = (messages * batch) as f64 / bare.as_secs_f64();
        let ingest_rate = (messages * batch) as f64 / ingest.as_secs_f64();
        println!(
            "batch {batch:>2} fixes/message: bare subscriber {bare_rate:>9.0} fixes/s | muckwatch stored {ingest_rate:>9.0} fixes/s | ratio {:.2}",
            ingest_rate / bare_rate
        );
    }
    shutdown.trigger();
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

pub(crate) async fn bare_subscriber(
    host: &str,
    port: u16,
    filter: &str,
    counted: Arc<AtomicU64>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut opts = MqttOptions::new(
        format!("bench-sub-{}-{}", std::process::id(), filter.len()),
        host,
        port,
    );
    opts.set_max_packet_size(16 << 20, 1 << 20)
        .set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    client.subscribe(filter, QoS::AtLeastOnce).await?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let _client = client;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    // Count fixes the way muckwatch would see them.
                    let n = if p.payload.first() == Some(&b'[') {
                        p.payload
                            .windows(11)
                            .filter(|w| w == b"\"device_id\"")
                            .count()
                    } else {
                        1
                    };
                    counted.fetch_add(n as u64, Ordering::Relaxed);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx).await??;
    Ok(task)
}

/// Publishes `messages` messages and returns the time until `done`.
async fn publish_and_wait(
    host: &str,
    port: u16,
    prefix: &str,
    messages: usize,
    batch: usize,
    qos: QoS,
    done: impl Fn() -> bool,
) -> anyhow::Result<Duration> {
    let (start, poller) = publish(host, port, prefix, messages, batch, qos).await?;
    while !done() {
        if start.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("gave up after 60 s: not everything arrived");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = start.elapsed();
    poller.abort();
    Ok(took)
}

/// Publishes `messages` messages from one client (payloads built before the
/// clock starts); returns when the clock started and the client's event
/// loop, to be aborted once the caller has seen what it waits for.
pub(crate) async fn publish(
    host: &str,
    port: u16,
    prefix: &str,
    messages: usize,
    batch: usize,
    qos: QoS,
) -> anyhow::Result<(Instant, tokio::task::JoinHandle<()>)> {
    let devices: Vec<DeviceId> = (0..DEVICES)
        .map(|i| DeviceId::parse(&format!("bench-{i:05}")))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let topics: Vec<String> = devices.iter().map(|d| position_topic(prefix, d)).collect();
    let payloads: Vec<Vec<u8>> = (0..messages)
        .map(|m| {
            let d = m % DEVICES;
            let round = m / DEVICES;
            let fixes: Vec<String> = (0..batch)
                .map(|k| {
                    let secs = (round * batch + k) as i64 * 10;
                    let ts = chrono::DateTime::from_timestamp(1_622_556_000 - batch as i64 * 10_000_000 + secs, 0).unwrap_or_default();
                    format!(
                        r#"{{"device_id":"{}","ts":"{}","lat":33.38,"lon":120.16,"speed_kmh":30.5,"heading":90,"acc":true,"tipper_up":false,"cover_closed":true,"load_t":20.5}}"#,
                        devices[d],
                        ts.to_rfc3339()
                    )
                })
                .collect();
            if batch == 1 { fixes.concat().into_bytes() } else { format!("[{}]", fixes.join(",")).into_bytes() }
        })
        .collect();

    let mut opts = MqttOptions::new(
        format!("bench-pub-{}-{}", std::process::id(), prefix.len()),
        host,
        port,
    );
    opts.set_max_packet_size(1 << 20, 16 << 20)
        .set_keep_alive(Duration::from_secs(30))
        .set_request_channel_capacity(10_000)
        .set_inflight(1000);
    let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
    let poller = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let start = Instant::now();
    for (m, payload) in payloads.into_iter().enumerate() {
        client
            .publish(topics[m % DEVICES].clone(), qos, false, payload)
            .await?;
    }
    Ok((start, poller))
}

//! Alert latency: from the publish of the offending fix to the alert's
//! arrival on `muckwatch/v1/alerts/police`, while 1,000 parked trucks load
//! muckwatch with `BENCH_RATE` fixes/s (default 2000). Embedded broker,
//! SQLite, the sample city.
//!
//! `cargo bench --bench alerts` (env `BENCH_SECONDS`, default 30).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use muckwatch::configuration::Settings;
use muckwatch::fix::DeviceId;
use muckwatch::ingest::position_topic;
use muckwatch::registry::{Firm, FirmId, Plate, Vehicle};
use muckwatch::startup::Application;
use muckwatch::store::Store;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const PARKED: usize = 1000;
/// Inside the always-on restricted zone rz-01 of the sample city.
const ZONE: (f64, f64) = (33.4000, 120.1475);

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let rate: f64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000.0);
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let offenders = (seconds * 5) as usize;
    let dir = std::env::temp_dir().join(format!("muckwatch-alert-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("bench.db").display());

    let store = Store::connect(&url).await?;
    let firm = Firm {
        id: FirmId::parse("bench").map_err(anyhow::Error::msg)?,
        name: "bench".into(),
    };
    store.create_firm(&firm, 0).await?;
    let mut devices = Vec::new();
    for i in 0..PARKED + offenders {
        let device = DeviceId::parse(&format!("b-{i:05}")).map_err(anyhow::Error::msg)?;
        let v = Vehicle {
            plate: Plate::parse(&format!("苏B{i:05}")).map_err(anyhow::Error::msg)?,
            device_id: device,
            firm_id: firm.id.clone(),
            rated_load_t: 30.0,
        };
        store.create_vehicle(&v, 0).await?;
        devices.push(device);
    }

    let mut settings = Settings::default();
    settings.database.url = url;
    settings.mqtt.listen = "127.0.0.1:0".into();
    settings.http.addr = "127.0.0.1:0".into();
    let app = Application::build(settings).await?;
    app.wait_subscribed(Duration::from_secs(10)).await?;
    let broker = app.mqtt.clone();
    let metrics = app.metrics.clone();
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run_until_stopped());

    // The officer: records when each plate's alert arrives.
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (officer, mut officer_loop) = AsyncClient::new(
        MqttOptions::new("bench-officer", broker.host.clone(), broker.port),
        100,
    );
    officer
        .subscribe("muckwatch/v1/alerts/police", QoS::AtLeastOnce)
        .await?;
    let seen = arrivals.clone();
    tokio::spawn(async move {
        loop {
            match officer_loop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let now = Instant::now();
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) {
                        if let Some(plate) = v["plate"].as_str() {
                            if let Ok(mut m) = seen.lock() {
                                m.entry(plate.to_string()).or_insert(now);
                            }
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });

    let mut opts = MqttOptions::new("bench-fleet", broker.host.clone(), broker.port);
    opts.set_request_channel_capacity(10_000).set_inflight(1000);
    let (fleet, mut fleet_loop) = AsyncClient::new(opts, 10_000);
    tokio::spawn(async move {
        loop {
            if fleet_loop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    println!("alert latency: {PARKED} parked trucks at {rate} fixes/s for {seconds} s, {offenders} trucks entering a restricted zone");
    let fix = |d: &DeviceId, (lat, lon): (f64, f64), speed: f64| {
        let ts = chrono::Utc::now().with_timezone(
            &chrono::FixedOffset::east_opt(8 * 3600)
                .unwrap_or(chrono::FixedOffset::east_opt(0).expect("utc")),
        );
        format!(
            r#"{{"device_id":"{d}","ts":"{}","lat":{lat},"lon":{lon},"speed_kmh":{speed},"acc":true,"cover_closed":true,"load_t":10}}"#,
            ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
        )
    };
    let start = Instant::now();
    let mut sent = 0u64;
    let mut published: HashMap<String, Instant> = HashMap::new();
    let mut next_offender = 0usize;
    let offender_every = Duration::from_secs(seconds).as_secs_f64() / offenders as f64;
    while start.elapsed() < Duration::from_secs(seconds) {
        let d = &devices[(sent as usize) % PARKED];
        // Parked in a yard: moving 0 km/h raises nothing.
        let (lat, lon) = (33.35 + (sent % PARKED as u64) as f64 * 1e-5, 120.05);
        fleet
            .publish(
                position_topic("muckwatch/v1", d),
                QoS::AtMostOnce,
                false,
                fix(d, (lat, lon), 0.0),
            )
            .await?;
        sent += 1;
        if next_offender < offenders
            && start.elapsed().as_secs_f64() >= next_offender as f64 * offender_every
        {
            let d = devices[PARKED + next_offender];
            let topic = position_topic("muckwatch/v1", &d);
            fleet
                .publish(topic.clone(), QoS::AtMostOnce, false, fix(&d, ZONE, 20.0))
                .await?;
            tokio::time::sleep(Duration::from_millis(5)).await;
            // The second fix inside the zone is the one that raises the alert.
            fleet
                .publish(topic, QoS::AtMostOnce, false, fix(&d, ZONE, 20.0))
                .await?;
            published.insert(format!("苏B{:05}", PARKED + next_offender), Instant::now());
            next_offender += 1;
        }
        let due = Duration::from_secs_f64(sent as f64 / rate);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    let achieved = sent as f64 / start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let arrivals = arrivals.lock().map(|m| m.clone()).unwrap_or_default();
    let mut latencies: Vec<f64> = published
        .iter()
        .filter_map(|(plate, sent)| {
            arrivals
                .get(plate)
                .map(|got| got.saturating_duration_since(*sent).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "load achieved {achieved:.0} fixes/s; alerts received {}/{}; latency ms: p50 {:.1}, p90 {:.1}, p99 {:.1}, max {:.1}",
        latencies.len(),
        published.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "fixes ingested: {}",
        metrics
            .fixes_ingested
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    shutdown.trigger();
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

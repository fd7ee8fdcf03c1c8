//! The embedded broker under abuse, in one run: the ingest rate (fixes/s
//! from MQTT publish to committed SQLite rows) with nothing else going on,
//! with 1,000 half-open connections, and with subscribers holding 20,000
//! filters; and the process's resident memory as 100 connections announce
//! oversized packets.
//!
//! `cargo bench --bench broker` (`BENCH_FIXES`, default 20000).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use muckwatch::configuration::Settings;
use muckwatch::fix::DeviceId;
use muckwatch::ingest::position_topic;
use muckwatch::startup::Application;
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS, Subscribe, SubscribeFilter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEVICES: usize = 500;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn run() -> anyhow::Result<()> {
    let total: usize = std::env::var("BENCH_FIXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = std::env::temp_dir().join(format!("muckwatch-bench-broker-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut settings = Settings::default();
    settings.database.url = format!("sqlite://{}", dir.join("bench.db").display());
    settings.mqtt.listen = "127.0.0.1:0".into();
    settings.http.addr = "127.0.0.1:0".into();
    // Everything here comes from one address.
    settings.broker.max_connections_per_address = 10_000;
    let prefix = settings.mqtt.topic_prefix.clone();
    let app = Application::build(settings).await?;
    app.wait_subscribed(Duration::from_secs(10)).await?;
    let metrics = app.metrics.clone();
    let addr = format!("{}:{}", app.mqtt.host, app.mqtt.port);
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run_until_stopped());

    let mut round = 0i64;
    let mut measure = |label: &'static str| {
        round += 1;
        let (addr, prefix, metrics) = (addr.clone(), prefix.clone(), metrics.clone());
        let r = round;
        async move {
            let before = metrics.fixes_ingested.load(Ordering::Relaxed) as usize;
            let took = publish(&addr, &prefix, total, r, || {
                metrics.fixes_ingested.load(Ordering::Relaxed) as usize >= before + total
            })
            .await?;
            let rate = total as f64 / took.as_secs_f64();
            println!(
                "{label:<44} {rate:>8.0} fixes/s stored   RSS {:>6.1} MB",
                rss_mb()
            );
            anyhow::Ok(rate)
        }
    };

    println!("broker benchmark: {total} fixes per measurement from {DEVICES} devices, QoS 1");
    // The table grows with every round and the machine may be shared: three
    // rounds of (normal, half-open, normal, filters), each abused round
    // compared with the normal round just before it; medians reported.
    let (mut half_open_ratios, mut filter_ratios) = (Vec::new(), Vec::new());
    for rep in 0..3 {
        let normal = measure("normal").await?;
        // 1,000 half-open connections: 500 that never send CONNECT, 500
        // that sent it and then nothing.
        let rss0 = rss_mb();
        let mut idle = Vec::new();
        for i in 0..1000 {
            let mut s = TcpStream::connect(&addr).await?;
            if i % 2 == 0 {
                s.write_all(&connect_packet(&format!("idle-{rep}-{i}")))
                    .await?;
            }
            idle.push(s);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        println!(
            "  1,000 half-open connections: RSS {rss0:.1} -> {:.1} MB, {} connections",
            rss_mb(),
            metrics.mqtt_connections.load(Ordering::Relaxed)
        );
        half_open_ratios.push(measure("with 1,000 half-open connections").await? / normal);
        drop(idle);
        tokio::time::sleep(Duration::from_millis(500)).await;

        let normal = measure("normal").await?;
        // Subscribers holding 20,000 filters on the telemetry tree: one
        // SUBSCRIBE of 20,000 (the cap keeps 256 of it), then 77 more
        // clients of 256 each.
        let rss0 = rss_mb();
        let started = Instant::now();
        let mut greedy = Vec::new();
        let mut held = 0;
        for c in 0..78 {
            let n = if c == 0 { 20_000 } else { 256 };
            let filters = (0..n).map(|i| format!("{prefix}/pos/+/ghost-{c}-{i}"));
            let (client, granted) =
                subscriber(&addr, &format!("greedy-{rep}-{c}"), filters).await?;
            held += granted;
            greedy.push(client);
        }
        println!(
            "  78 subscribers asked for 39,712 filters, hold {held}: {:.2} s, RSS {rss0:.1} -> {:.1} MB",
            started.elapsed().as_secs_f64(),
            rss_mb()
        );
        filter_ratios.push(measure("with subscribers holding 20,000 filters").await? / normal);
        drop(greedy);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "ingest rate / the normal round before it (median of 3): half-open {:.2} {:.2?}, 20,000 filters {:.2} {:.2?}",
        median(half_open_ratios.clone()),
        half_open_ratios,
        median(filter_ratios.clone()),
        filter_ratios
    );

    // 100 connections announcing 4 MiB packets (refused from the header),
    // then 100 announcing just under the limit that send 1 KiB and stall.
    let rss0 = rss_mb();
    let mut big = Vec::new();
    for i in 0..100 {
        let mut s = TcpStream::connect(&addr).await?;
        s.write_all(&connect_packet(&format!("big-{i}"))).await?;
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack).await?;
        s.write_all(&[0x30, 0x80, 0x80, 0x80, 0x02]).await?;
        big.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "100 PUBLISH headers announcing 4 MiB: RSS {rss0:.1} -> {:.1} MB, refused {}",
        rss_mb(),
        metrics.mqtt_refusals(muckwatch::metrics::MqttRefusal::PacketTooLarge)
    );
    let rss0 = rss_mb();
    for i in 0..100 {
        let mut s = TcpStream::connect(&addr).await?;
        s.write_all(&connect_packet(&format!("near-{i}"))).await?;
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack).await?;
        // Remaining length 1,000,000 (0xC0 0x84 0x3D), then 1 KiB of it.
        s.write_all(&[0x30, 0xC0, 0x84, 0x3D]).await?;
        s.write_all(&[0u8; 1024]).await?;
        big.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "100 PUBLISH headers announcing 1,000,000 B, 1 KiB sent: RSS {rss0:.1} -> {:.1} MB",
        rss_mb()
    );
    drop(big);

    shutdown.trigger();
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn connect_packet(client_id: &str) -> BytesMut {
    let mut connect = rumqttc::Connect::new(client_id);
    connect.keep_alive = 60;
    let mut out = BytesMut::new();
    let _ = Packet::Connect(connect).write(&mut out, usize::MAX);
    out
}

/// A client subscribed to `filters` in one SUBSCRIBE; returns how many
/// the broker granted.
async fn subscriber(
    addr: &str,
    id: &str,
    filters: impl Iterator<Item = String>,
) -> anyhow::Result<(TcpStream, usize)> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(&connect_packet(id)).await?;
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).await?;
    let filters: Vec<SubscribeFilter> = filters
        .map(|f| SubscribeFilter::new(f, QoS::AtMostOnce))
        .collect();
    let mut out = BytesMut::new();
    let _ = Packet::Subscribe(Subscribe::new_many(filters)).write(&mut out, usize::MAX);
    s.write_all(&out).await?;
    // SUBACK: read it whole and count the granted return codes.
    let mut buf = BytesMut::new();
    loop {
        match Packet::read(&mut buf, 1 << 20) {
            Ok(Packet::SubAck(a)) => {
                let granted = a
                    .return_codes
                    .iter()
                    .filter(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_)))
                    .count();
                return Ok((s, granted));
            }
            Ok(_) => {}
            Err(_) => {
                if s.read_buf(&mut buf).await? == 0 {
                    anyhow::bail!("closed before SUBACK");
                }
            }
        }
    }
}

/// Publishes `total` fixes at QoS 1 (round `round`'s timestamps, so no
/// duplicates across rounds) and returns the time until `done`.
async fn publish(
    addr: &str,
    prefix: &str,
    total: usize,
    round: i64,
    done: impl Fn() -> bool,
) -> anyhow::Result<Duration> {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "1883"));
    let devices: Vec<DeviceId> = (0..DEVICES)
        .map(|i| DeviceId::parse(&format!("bench-{i:05}")))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let topics: Vec<String> = devices.iter().map(|d| position_topic(prefix, d)).collect();
    let mut opts = MqttOptions::new(format!("bench-pub-{round}"), host, port.parse()?);
    opts.set_keep_alive(Duration::from_secs(30))
        .set_inflight(1000)
        .set_request_channel_capacity(10_000);
    let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
    let poller = tokio::spawn(async move {
        loop {
            if let Err(e) = eventloop.poll().await {
                eprintln!("publisher: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let started = Instant::now();
    for m in 0..total {
        let d = m % DEVICES;
        let secs = round * 10_000_000 + (m / DEVICES) as i64 * 10;
        let ts = chrono::DateTime::from_timestamp(1_500_000_000 + secs, 0).unwrap_or_default();
        let payload = format!(
            r#"{{"device_id":"{}","ts":"{}","lat":33.38,"lon":120.16,"speed_kmh":30.5}}"#,
            devices[d],
            ts.to_rfc3339()
        );
        client
            .publish(&topics[d], QoS::AtLeastOnce, false, payload)
            .await?;
    }
    let limit = Instant::now() + Duration::from_secs(300);
    while !done() {
        if Instant::now() > limit {
            anyhow::bail!("not all fixes stored within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    poller.abort();
    Ok(started.elapsed())
}

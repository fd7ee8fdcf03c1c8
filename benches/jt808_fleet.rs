//! A fleet over JT/T 808 against the same fleet over MQTT JSON, in one run:
//! `BENCH_TERMINALS` terminals (default 5,000: each needs two sockets in
//! this one process, and the file limit here is 20,000) connected on
//! loopback to `serve`'s gateway (embedded broker, SQLite), each sending
//! one location per second of simulated time for `BENCH_SECONDS` (default
//! 10) seconds, every location answered (so published, acknowledged and,
//! with the embedded broker, committed) before the next; then the same
//! fixes as JSON published at QoS 1 until all are ingested. Also the
//! resident memory per connected, authenticated terminal (both ends of its
//! connection live in this process, so it is an upper bound).
//!
//! `cargo bench --bench jt808_fleet`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use muckwatch::configuration::Settings;
use muckwatch::identity::{DeviceId, Firm, FirmId, Plate, Vehicle};
use muckwatch::ingest::position_topic;
use muckwatch::jt808::body::result;
use muckwatch::jt808::location::{STATUS_ACC, STATUS_POSITIONED};
use muckwatch::jt808::{
    Authenticate, BcdTime, BodyAttrs, Edition, Header, Inbound, Jt808Codec, Location, Message,
    Outbound, Register,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn device(i: usize) -> DeviceId {
    DeviceId::parse(&format!("0139{i:08}")).expect("device")
}

fn location(i: usize, s: u32) -> Location {
    Location {
        alarm: 0,
        status: STATUS_ACC | STATUS_POSITIONED,
        lat_e6: 33_300_000 + (i as u32 % 1000) * 100,
        lon_e6: 120_100_000 + s * 100,
        altitude_m: 5,
        speed_dkmh: 300,
        direction: 90,
        time: BcdTime::from_parts(2021, 6, 1, 22, s / 60 % 60, s % 60),
        extras: Vec::new(),
    }
}

type Conn = Framed<TcpStream, Jt808Codec>;

async fn call(conn: &mut Conn, header: &mut Header, message: Message) -> anyhow::Result<Message> {
    header.serial = header.serial.wrapping_add(1);
    conn.send(Outbound {
        header: *header,
        message,
    })
    .await?;
    match conn.next().await {
        Some(Ok(Inbound::Packet(p))) => {
            Message::decode(p.header.msg_id, p.header.edition, &p.body)?
                .ok_or_else(|| anyhow::anyhow!("unknown reply"))
        }
        other => anyhow::bail!("no reply: {other:?}"),
    }
}

async fn login(addr: std::net::SocketAddr, i: usize) -> anyhow::Result<(Conn, Header)> {
    let mut conn = Framed::new(TcpStream::connect(addr).await?, Jt808Codec::default());
    let mut header = Header {
        msg_id: 0,
        attrs: BodyAttrs::from_word(0),
        edition: Edition::V2013,
        device: device(i),
        serial: 0,
        part: None,
    };
    let reg = Message::Register(Register {
        province: 32,
        city: 900,
        maker: "MW".into(),
        model: "B".into(),
        terminal_id: "T".into(),
        plate_color: 2,
        plate: format!("B{i}"),
    });
    let Message::RegisterResponse {
        code: Some(code), ..
    } = call(&mut conn, &mut header, reg).await?
    else {
        anyhow::bail!("not registered");
    };
    let auth = Message::Authenticate(Authenticate {
        code,
        imei: None,
        software: None,
    });
    match call(&mut conn, &mut header, auth).await? {
        Message::PlatformResponse { result: 0, .. } => Ok((conn, header)),
        other => anyhow::bail!("not authenticated: {other:?}"),
    }
}

async fn run() -> anyhow::Result<()> {
    let n = env("BENCH_TERMINALS", 5000);
    let secs = env("BENCH_SECONDS", 10) as u32;
    let dir = std::env::temp_dir().join(format!("muckwatch-bench-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut settings = Settings::default();
    settings.database.url = format!("sqlite://{}", dir.join("bench.db").display());
    settings.mqtt.listen = "127.0.0.1:0".into();
    settings.http.addr = "127.0.0.1:0".into();
    settings.mqtt.client_id = format!("mw-bench-fleet-{}", std::process::id());
    settings.jt808.listen = Some("127.0.0.1:0".into());
    settings.jt808.max_connections = n + 10;
    let store = muckwatch::store::Store::connect(&settings.database.url).await?;
    let firm = Firm {
        id: FirmId::parse("bench").map_err(anyhow::Error::msg)?,
        name: "bench".into(),
    };
    store.create_firm(&firm, 0).await?;
    for i in 0..n {
        let v = Vehicle {
            plate: Plate::parse(&format!("苏J{i:05}")).map_err(anyhow::Error::msg)?,
            device_id: device(i),
            firm_id: firm.id.clone(),
            rated_load_t: 31.0,
        };
        store.create_vehicle(&v, 0).await?;
    }
    let app = muckwatch::startup::Application::build(settings.clone()).await?;
    app.wait_subscribed(Duration::from_secs(10)).await?;
    let addr = app
        .jt808_addr
        .ok_or_else(|| anyhow::anyhow!("no gateway"))?;
    let metrics = app.metrics.clone();
    let broker = app.mqtt.clone();
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run_until_stopped());

    let before = rss_kib();
    let mut conns = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let logins: Vec<_> = chunk
            .iter()
            .map(|&i| tokio::spawn(login(addr, i)))
            .collect();
        for l in logins {
            conns.push(l.await??);
        }
    }
    let after = rss_kib();
    println!(
        "{n} JT/T 808 terminals connected and authenticated: {:.1} KiB resident per terminal (both ends)",
        (after.saturating_sub(before)) as f64 / n as f64
    );

    // JT/T 808: every terminal, one location per simulated second, each answered.
    let t = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, (mut conn, mut header))| {
            tokio::spawn(async move {
                for s in 0..secs {
                    match call(&mut conn, &mut header, Message::Location(location(i, s))).await? {
                        Message::PlatformResponse { result: r, .. } if r == result::OK => {}
                        other => anyhow::bail!("location not accepted: {other:?}"),
                    }
                }
                Ok(conn)
            })
        })
        .collect();
    let mut keep = Vec::with_capacity(n);
    for task in tasks {
        keep.push(task.await??);
    }
    let jt_wall = t.elapsed();
    let total = n * secs as usize;
    let jt_rate = total as f64 / jt_wall.as_secs_f64();
    println!("JT/T 808: {total} fixes answered (stored) in {jt_wall:.2?}: {jt_rate:.0} fixes/s");
    drop(keep);

    // MQTT JSON: the same fixes (a minute later in the night), QoS 1, one client.
    let ingested0 = metrics
        .fixes_ingested
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut opts = MqttOptions::new("mw-bench-fleet-json", broker.host.clone(), broker.port);
    opts.set_keep_alive(Duration::from_secs(30))
        .set_inflight(1000);
    let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
    let poller = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Disconnect)) => return,
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    let prefix = settings.mqtt.topic_prefix.clone();
    let topics: Arc<Vec<String>> = Arc::new(
        (0..n)
            .map(|i| position_topic(&prefix, &device(i)))
            .collect(),
    );
    let t = Instant::now();
    for s in 0..secs {
        for (i, topic) in topics.iter().enumerate() {
            let json = format!(
                r#"{{"device_id":"{}","ts":"2021-06-01T22:{:02}:{:02}+08:00","lat":{},"lon":{},"speed_kmh":30.0,"heading":90,"acc":true}}"#,
                device(i),
                1 + s / 60,
                s % 60,
                33.3 + (i % 1000) as f64 * 1e-4,
                120.1 + f64::from(s) * 1e-4
            );
            client
                .publish(topic.clone(), QoS::AtLeastOnce, false, json)
                .await?;
        }
    }
    let target = ingested0 + total as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    while metrics
        .fixes_ingested
        .load(std::sync::atomic::Ordering::Relaxed)
        < target
    {
        if Instant::now() > deadline {
            anyhow::bail!("JSON fixes not all ingested");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let json_wall = t.elapsed();
    let json_rate = total as f64 / json_wall.as_secs_f64();
    println!("MQTT JSON: {total} fixes ingested in {json_wall:.2?}: {json_rate:.0} fixes/s");
    println!("ratio JT/T 808 / MQTT JSON: {:.2}", jt_rate / json_rate);
    poller.abort();
    shutdown.trigger();
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

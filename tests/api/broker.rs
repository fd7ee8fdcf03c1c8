//! The embedded broker under abuse: a subscriber that never acknowledges,
//! oversized and endless packets, too many filters, too many connections,
//! and a long database stall during a QoS 1 burst. Real TCP, real clients.

use std::time::Duration;

use bytes::BytesMut;
use muckwatch::broker::{start_embedded, BrokerConfig};
use muckwatch::metrics::Metrics;
use muckwatch::mqtt_access::Gate;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter, SubscribeReasonCode};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// A raw MQTT connection that has sent CONNECT (and read its CONNACK).
pub async fn raw_connect(addr: &str, keep_alive: u16) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("tcp connect");
    let mut connect = rumqttc::Connect::new(unique("raw"));
    connect.keep_alive = keep_alive;
    let mut out = BytesMut::new();
    Packet::Connect(connect)
        .write(&mut out, usize::MAX)
        .unwrap();
    s.write_all(&out).await.unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).await.expect("CONNACK");
    assert_eq!(ack, [0x20, 2, 0, 0], "CONNACK success");
    s
}

/// Whether the broker closed `s` within `limit` (reads until EOF or error).
pub async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut sink = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn addr(app: &TestApp) -> String {
    format!("{}:{}", app.mqtt.host, app.mqtt.port)
}

fn fixes(device: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let ts = chrono::DateTime::parse_from_rfc3339("2021-06-01T22:00:00+08:00").unwrap()
                + chrono::Duration::seconds(i as i64);
            fix_json(device, &ts.to_rfc3339(), 33.38, 120.16, 30.0)
        })
        .collect()
}

async fn track_len(app: &TestApp, plate: &str) -> usize {
    app.track(plate, &app.admin).await.json()["properties"]["fixes"]
        .as_array()
        .map_or(0, |a| a.len())
}

#[tokio::test]
async fn a_subscriber_that_never_acknowledges_does_not_stall_trucks() {
    let db = temp_db();
    let mut settings = test_settings(&db);
    settings.broker.queue_messages = 20;
    settings.broker.inflight = 5;
    settings.broker.slow_subscriber_ms = 300;
    let app = spawn_with(settings).await;
    app.register("firm-s", "苏J20001", "dev-s1").await;

    // Subscribes to every fix at QoS 1 and never acknowledges one.
    let mut opts = MqttOptions::new(unique("lazy"), app.mqtt.host.clone(), app.mqtt.port);
    opts.set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(30));
    let (lazy, mut lazy_loop) = AsyncClient::new(opts, 100);
    lazy.subscribe(format!("{}/pos/#", app.prefix), QoS::AtLeastOnce)
        .await
        .unwrap();
    let (suback_tx, suback_rx) = tokio::sync::oneshot::channel();
    let lazy_task = tokio::spawn(async move {
        let mut suback_tx = Some(suback_tx);
        while let Ok(ev) = lazy_loop.poll().await {
            if let Event::Incoming(Packet::SubAck(_)) = ev {
                if let Some(tx) = suback_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    suback_rx.await.expect("lazy subscriber subscribed");

    let p = app.publisher().await;
    let n = 200;
    for f in fixes("dev-s1", n) {
        p.send("dev-s1", f).await;
    }
    let stored = eventually(Duration::from_secs(30), || async {
        let n2 = track_len(&app, "苏J20001").await;
        (n2 == n).then_some(n2)
    })
    .await;
    assert_eq!(
        stored,
        Some(n),
        "every fix stored despite the lazy subscriber"
    );
    assert_eq!(
        app.metric("muckwatch_mqtt_refused_total{reason=\"slow_subscriber\"}")
            .await,
        1.0
    );
    lazy_task.abort();
    app.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_its_socket_is_cut_off() {
    let db = temp_db();
    let mut settings = test_settings(&db);
    settings.broker.queue_messages = 20;
    settings.broker.slow_subscriber_ms = 300;
    let app = spawn_with(settings).await;
    app.register("firm-s", "苏J20002", "dev-s2").await;
    // SUBSCRIBE pos/# at QoS 1, then never read a byte.
    let mut s = raw_connect(&addr(&app), 30).await;
    let sub = rumqttc::Subscribe::new(format!("{}/pos/#", app.prefix), QoS::AtLeastOnce);
    let mut out = BytesMut::new();
    Packet::Subscribe(sub).write(&mut out, usize::MAX).unwrap();
    s.write_all(&out).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let p = app.publisher().await;
    let big = "x".repeat(32 * 1024);
    let n = 300;
    for (i, f) in fixes("dev-s2", n).into_iter().enumerate() {
        // Padding makes the socket buffers fill quickly; the fix still decodes.
        let f = f.replacen('{', &format!("{{\"pad{i}\":\"{big}\","), 1);
        p.send("dev-s2", f).await;
    }
    let stored = eventually(Duration::from_secs(30), || async {
        let n2 = track_len(&app, "苏J20002").await;
        (n2 == n).then_some(n2)
    })
    .await;
    assert_eq!(stored, Some(n));
    assert!(
        app.metric("muckwatch_mqtt_refused_total{reason=\"slow_subscriber\"}")
            .await
            >= 1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_packet_announcing_more_than_the_limit_is_refused_from_its_header() {
    let app = spawn_app().await;
    let mut s = raw_connect(&addr(&app), 30).await;
    // PUBLISH QoS 0 announcing 4 MiB (remaining length 0x400000), then nothing.
    s.write_all(&[0x30, 0x80, 0x80, 0x80, 0x02]).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    assert_eq!(
        app.metric("muckwatch_mqtt_refused_total{reason=\"packet_too_large\"}")
            .await,
        1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn filters_beyond_the_cap_are_refused_in_the_suback() {
    let db = temp_db();
    let mut settings = test_settings(&db);
    settings.broker.max_filters_per_client = 10;
    let app = spawn_with(settings).await;
    let mut opts = MqttOptions::new(unique("greedy"), app.mqtt.host.clone(), app.mqtt.port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (c, mut ev) = AsyncClient::new(opts, 100);
    let filters = (0..25).map(|i| SubscribeFilter::new(format!("x/{i}/+"), QoS::AtLeastOnce));
    c.subscribe_many(filters).await.unwrap();
    let codes = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::Incoming(Packet::SubAck(a))) = ev.poll().await {
                return a.return_codes;
            }
        }
    })
    .await
    .expect("SUBACK");
    let granted = codes
        .iter()
        .filter(|c| matches!(c, SubscribeReasonCode::Success(_)))
        .count();
    assert_eq!((granted, codes.len()), (10, 25));
    assert_eq!(
        app.metric("muckwatch_mqtt_refused_total{reason=\"too_many_filters\"}")
            .await,
        1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_and_http_still_answers() {
    let db = temp_db();
    let mut settings = test_settings(&db);
    // muckwatch's own ingest and alert clients take two of them.
    settings.broker.max_connections = 4;
    let app = spawn_with(settings).await;
    let _a = raw_connect(&addr(&app), 30).await;
    let _b = raw_connect(&addr(&app), 30).await;
    let mut c = TcpStream::connect(addr(&app)).await.unwrap();
    assert!(closed_within(&mut c, Duration::from_secs(5)).await);
    assert_eq!(
        app.metric("muckwatch_mqtt_refused_total{reason=\"max_connections\"}")
            .await,
        1.0
    );
    assert_eq!(app.metric("muckwatch_mqtt_connections ").await, 4.0);
    assert_eq!(app.get("/healthz", None).await.status, 200);
    app.stop().await;

    // The same per address.
    let db = temp_db();
    let mut settings = test_settings(&db);
    settings.broker.max_connections_per_address = 3;
    let app = spawn_with(settings).await;
    let _a = raw_connect(&addr(&app), 30).await;
    let mut b = TcpStream::connect(addr(&app)).await.unwrap();
    assert!(closed_within(&mut b, Duration::from_secs(5)).await);
    assert_eq!(
        app.metric("muckwatch_mqtt_refused_total{reason=\"max_connections_per_address\"}")
            .await,
        1.0
    );
    app.stop().await;
}

/// A broker on its own, with short deadlines.
async fn bare_broker(config: BrokerConfig) -> (String, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    let addr = start_embedded(
        "127.0.0.1:0".parse().unwrap(),
        config,
        Arc::new(Gate::open("muckwatch/v1")),
        metrics.clone(),
    )
    .await
    .expect("broker");
    (addr.to_string(), metrics)
}

#[tokio::test]
async fn keep_alive_zero_does_not_switch_the_idle_deadline_off() {
    let (addr, metrics) = bare_broker(BrokerConfig {
        max_keep_alive: Duration::from_secs(1),
        ..BrokerConfig::default()
    })
    .await;
    let mut s = raw_connect(&addr, 0).await;
    assert!(closed_within(&mut s, Duration::from_secs(10)).await);
    assert_eq!(
        metrics.mqtt_refusals(muckwatch::metrics::MqttRefusal::KeepAlive),
        1
    );
}

#[tokio::test]
async fn a_connection_that_never_sends_connect_is_closed() {
    let (addr, metrics) = bare_broker(BrokerConfig {
        connect_timeout: Duration::from_secs(1),
        ..BrokerConfig::default()
    })
    .await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    // Half a CONNECT, then silence.
    s.write_all(&[0x10, 0x20, 0x00]).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(10)).await);
    assert_eq!(
        metrics.mqtt_refusals(muckwatch::metrics::MqttRefusal::ConnectTimeout),
        1
    );
}

#[tokio::test]
async fn a_database_stall_during_a_qos1_burst_loses_no_acknowledged_fix() {
    let db = temp_db();
    let mut settings = test_settings(&db);
    // The worst case: a window larger than ingest's queue (ingest stops
    // reading its socket) and short keep-alives (so it misses its own during
    // the stall and is disconnected): its session must carry the fixes over.
    settings.mqtt.keep_alive_s = 2;
    settings.broker.queue_messages = 100;
    settings.broker.inflight = 200;
    settings.ingest.queue_capacity = 20;
    settings.ingest.batch_size = 20;
    let app = spawn_with(settings).await;
    app.register("firm-d", "苏J20003", "dev-d1").await;

    // Hold SQLite's write lock from another connection.
    let lock = muckwatch_test_lock(&db).await;

    let p = app.publisher().await;
    let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = 600;
    {
        let mut opts = MqttOptions::new(unique("burst"), app.mqtt.host.clone(), app.mqtt.port);
        opts.set_keep_alive(Duration::from_secs(30))
            .set_inflight(200);
        let (c, mut ev) = AsyncClient::new(opts, 1000);
        let acked = acked.clone();
        tokio::spawn(async move {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        let topic = muckwatch::ingest::position_topic(
            &p.prefix,
            &muckwatch::fix::DeviceId::parse("dev-d1").unwrap(),
        );
        tokio::spawn(async move {
            for f in fixes("dev-d1", n) {
                let _ = c.publish(&topic, QoS::AtLeastOnce, false, f).await;
            }
            // Keep the client alive until the test ends.
            tokio::time::sleep(Duration::from_secs(600)).await;
        });
    }
    // The stall: long enough for ingest's keep-alive (3 s) to run out.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let acked_during_stall = acked.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        acked_during_stall < n,
        "back-pressure reached the publisher"
    );
    drop(lock);

    let stored = eventually(Duration::from_secs(60), || async {
        let s = track_len(&app, "苏J20003").await;
        (s == n).then_some(s)
    })
    .await;
    assert_eq!(
        stored,
        Some(n),
        "ingest resumed by itself and stored every fix"
    );
    // The stall did cut ingest off (keep-alive), and it came back.
    assert!(
        app.metric("muckwatch_mqtt_refused_total{reason=\"keep_alive\"}")
            .await
            >= 1.0
    );
    assert!(app.metric("muckwatch_mqtt_reconnects_total").await >= 1.0);
    app.stop().await;
}

/// Takes SQLite's write lock on `db` and holds it until dropped.
async fn muckwatch_test_lock(db: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("second connection");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut c)
        .await
        .expect("write lock");
    c
}

//! What an answer is worth: given only once the broker (and with the
//! embedded broker, the database) has the fix; the gateway on its own.

use super::*;

/// `muckwatch gateway jt808` on its own, in front of another instance's broker.
#[tokio::test]
async fn the_gateway_runs_on_its_own() {
    use std::io::BufRead;
    let app = crate::common::spawn_app().await;
    app.register("firm-j", "苏J80807", "013900000007").await;
    let mut child = Reaped(
        std::process::Command::new(env!("CARGO_BIN_EXE_muckwatch"))
            .args([
                "gateway",
                "jt808",
                "--listen",
                "127.0.0.1:0",
                "--mqtt-url",
                &format!("mqtt://{}:{}", app.mqtt.host, app.mqtt.port),
                "--database-url",
                &format!("sqlite://{}", app.db.display()),
                "--http",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("gateway starts"),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the log (all of it, so the pipe never fills) for the bound addresses.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            for what in ["JT/T 808 gateway listening", "gateway metrics listening"] {
                if line.contains(what) {
                    let addr = line.split("addr=").nth(1).unwrap_or("").trim().to_string();
                    let _ = tx.send((what, addr));
                }
            }
        }
    });
    let (mut addr, mut metrics) = (None, None);
    while addr.is_none() || metrics.is_none() {
        let (what, a) = rx.recv_timeout(LIMIT).expect("gateway logs its addresses");
        let a: SocketAddr = a.parse().expect("an address");
        if what.starts_with("JT/T") {
            addr = Some(a);
        } else {
            metrics = Some(a);
        }
    }
    let (addr, metrics) = (addr.unwrap(), metrics.unwrap());
    let mut t = Terminal::connect(addr, "013900000007", Edition::V2013).await;
    t.login("苏J80807").await;
    assert_eq!(t.call(Message::Location(speeding_fix(0))).await, result::OK);
    wait_ingested(&app, 1.0).await;
    let text = crate::common::http(metrics, "GET", "/metrics", None, None)
        .await
        .body;
    assert!(
        text.contains("muckwatch_jt808_terminals_connected 1"),
        "{text}"
    );
    assert!(
        text.contains("muckwatch_jt808_fixes_published_total 1"),
        "{text}"
    );
    drop(child);
    app.stop().await;
}

/// The acknowledgement is the broker's: a location the broker never
/// acknowledged is never answered (the terminal keeps it and sends it
/// again), while the connection goes on.
#[tokio::test]
async fn a_location_the_broker_did_not_acknowledge_is_not_answered() {
    let app = crate::common::spawn_app().await;
    app.register("firm-j", "苏J80808", "013900000008").await;
    // A "broker" that accepts TCP and never answers MQTT.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_addr = mute.local_addr().unwrap();
    let mut settings = test_settings(&app.db);
    settings.jt808.publish_timeout_s = 1;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let gw = muckwatch::jt808::Gateway::start(
        "127.0.0.1:0",
        &settings,
        muckwatch::configuration::MqttUrl {
            host: mute_addr.ip().to_string(),
            port: mute_addr.port(),
        },
        app.store.clone(),
        std::sync::Arc::new(muckwatch::metrics::Metrics::default()),
        None,
        stop_rx,
    )
    .await
    .expect("gateway starts");
    let mut t = Terminal::connect(gw.addr, "013900000008", Edition::V2013).await;
    t.login("苏J80808").await;
    let _location = t.send(Message::Location(speeding_fix(0))).await;
    let heartbeat = t.send(Message::Heartbeat).await;
    // The first answer is the heartbeat's: the location got none.
    assert_eq!(t.general_response(heartbeat, 0x0002).await, result::OK);
    stop_tx.send_replace(true);
    gw.stopped().await;
    drop(mute);
    app.stop().await;
}

/// `kill -9` of `muckwatch serve` (embedded broker, gateway inside) right
/// after a terminal's locations were answered: every answered fix is in the
/// database when it is opened again.
#[tokio::test]
async fn kill_9_after_the_answer_loses_no_answered_location() {
    use muckwatch::identity::{Firm, FirmId, Plate, Vehicle};
    use std::io::BufRead;
    let db = temp_db();
    let url = format!("sqlite://{}", db.display());
    {
        let store = muckwatch::store::Store::connect(&url).await.unwrap();
        let firm = Firm {
            id: FirmId::parse("firm-k").unwrap(),
            name: "K".into(),
        };
        store.create_firm(&firm, 0).await.unwrap();
        let v = Vehicle {
            plate: Plate::parse("苏J80809").unwrap(),
            device_id: DeviceId::parse("013900000009").unwrap(),
            firm_id: firm.id,
            rated_load_t: 31.0,
        };
        store.create_vehicle(&v, 0).await.unwrap();
    }
    let mut child = Reaped(
        std::process::Command::new(env!("CARGO_BIN_EXE_muckwatch"))
            .args([
                "serve",
                "--database-url",
                &url,
                "--mqtt-listen",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--jt808-listen",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("serve starts"),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("JT/T 808 gateway listening") {
                let addr = line.split("addr=").nth(1).unwrap_or("").trim().to_string();
                let _ = tx.send(addr);
            }
        }
    });
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("serve logs the gateway's address")
        .parse()
        .expect("an address");
    let mut t = Terminal::connect(addr, "013900000009", Edition::V2013).await;
    t.login("苏J80809").await;
    for i in 0..10 {
        assert_eq!(t.call(Message::Location(speeding_fix(i))).await, result::OK);
    }
    let batch = Message::Batch(muckwatch::jt808::Batch {
        kind: BatchKind::Backfill,
        locations: (10..20).map(speeding_fix).collect(),
    });
    assert_eq!(t.call(batch).await, result::OK);
    // SIGKILL, at once: no shutdown, no flush.
    child.0.kill().expect("kill -9");
    let _ = child.0.wait();
    let store = muckwatch::store::Store::connect(&url).await.unwrap();
    assert_eq!(
        store.fix_count().await.unwrap(),
        20,
        "every answered fix stored"
    );
}

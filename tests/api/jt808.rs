//! JT/T 808 terminals over real TCP, through the gateway inside `serve`
//! and the embedded broker, to detection and the API: what a city sees
//! when it connects a real truck.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use muckwatch::identity::DeviceId;
use muckwatch::jt808::body::{register_result, result};
use muckwatch::jt808::location::{STATUS_ACC, STATUS_POSITIONED};
use muckwatch::jt808::{
    frame, Authenticate, BatchKind, BcdTime, BodyAttrs, Edition, Header, Inbound, Jt808Codec,
    Location, Message, Outbound, Register,
};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::common::{eventually, spawn_with, temp_db, test_settings, TestApp};

const LIMIT: Duration = Duration::from_secs(15);

async fn spawn_gateway() -> TestApp {
    let mut s = test_settings(&temp_db());
    s.jt808.listen = Some("127.0.0.1:0".into());
    spawn_with(s).await
}

/// A terminal as the field has them: one TCP connection, one edition.
struct Terminal {
    conn: Framed<TcpStream, Jt808Codec>,
    device: DeviceId,
    edition: Edition,
    serial: u16,
}

impl Terminal {
    async fn connect(addr: SocketAddr, device: &str, edition: Edition) -> Terminal {
        let stream = TcpStream::connect(addr).await.expect("gateway accepts");
        Terminal {
            conn: Framed::new(stream, Jt808Codec::default()),
            device: DeviceId::parse(device).unwrap(),
            edition,
            serial: 0,
        }
    }

    fn header(&mut self) -> Header {
        self.serial += 1;
        Header {
            msg_id: 0,
            attrs: BodyAttrs::from_word(0),
            edition: self.edition,
            device: self.device,
            serial: self.serial,
            part: None,
        }
    }

    /// Sends a message; returns its serial number.
    async fn send(&mut self, message: Message) -> u16 {
        let header = self.header();
        self.conn
            .send(Outbound { header, message })
            .await
            .expect("send");
        header.serial
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.conn
            .get_mut()
            .write_all(bytes)
            .await
            .expect("send raw");
    }

    /// The next reply, or None when the gateway closed the connection.
    async fn reply(&mut self) -> Option<(Header, Message)> {
        let item = tokio::time::timeout(LIMIT, self.conn.next())
            .await
            .expect("a reply in time")?;
        match item.ok()? {
            Inbound::Packet(p) => {
                let m = Message::decode(p.header.msg_id, p.header.edition, &p.body)
                    .expect("reply body")
                    .expect("known reply");
                Some((p.header, m))
            }
            other => panic!("gateway sent a bad frame: {other:?}"),
        }
    }

    /// Sends and expects 0x8001 for it; returns its result.
    async fn call(&mut self, message: Message) -> u8 {
        let id = message.id();
        let serial = self.send(message).await;
        self.general_response(serial, id).await
    }

    async fn general_response(&mut self, serial: u16, id: u16) -> u8 {
        match self.reply().await {
            Some((
                h,
                Message::PlatformResponse {
                    serial: s,
                    id: i,
                    result,
                },
            )) => {
                assert_eq!((s, i), (serial, id), "0x8001 names the message it answers");
                assert_eq!(h.device, self.device);
                assert_eq!(
                    h.edition, self.edition,
                    "answered in the terminal's edition"
                );
                result
            }
            other => panic!("expected 0x8001, got {other:?}"),
        }
    }

    async fn register(&mut self, plate: &str) -> (u8, Option<String>) {
        let serial = self
            .send(Message::Register(Register {
                province: 32,
                city: 900,
                maker: "MW".into(),
                model: "MW-1".into(),
                terminal_id: "T1".into(),
                plate_color: 2,
                plate: plate.into(),
            }))
            .await;
        match self.reply().await {
            Some((
                _,
                Message::RegisterResponse {
                    serial: s,
                    result,
                    code,
                },
            )) => {
                assert_eq!(s, serial);
                (result, code)
            }
            other => panic!("expected 0x8100, got {other:?}"),
        }
    }

    async fn authenticate(&mut self, code: &str) -> u8 {
        let imei =
            matches!(self.edition, Edition::V2019 { .. }).then(|| "860000000000001".to_string());
        self.call(Message::Authenticate(Authenticate {
            code: code.into(),
            software: imei.as_ref().map(|_| "1.0".to_string()),
            imei,
        }))
        .await
    }

    /// Register and authenticate; returns the code.
    async fn login(&mut self, plate: &str) -> String {
        let (r, code) = self.register(plate).await;
        assert_eq!(r, register_result::OK);
        let code = code.expect("an auth code");
        assert_eq!(self.authenticate(&code).await, result::OK);
        code
    }
}

/// A location at 22:00:00 + `i` x 10 s local time (UTC+8), heading east at 70 km/h:
/// the same track as the JSON speeding test.
fn speeding_fix(i: u32) -> Location {
    let s = 10 * i;
    Location {
        alarm: 0,
        status: STATUS_ACC | STATUS_POSITIONED,
        lat_e6: 33_335_000,
        lon_e6: (120.02e6 + 2090.0 * f64::from(i)).round() as u32,
        altitude_m: 10,
        speed_dkmh: 700,
        direction: 90,
        time: BcdTime::from_parts(2021, 6, 1, 22 + s / 3600, s / 60 % 60, s % 60),
        extras: Vec::new(),
    }
}

async fn ingested(app: &TestApp) -> f64 {
    app.metric("muckwatch_fixes_ingested_total").await
}

async fn wait_ingested(app: &TestApp, n: f64) {
    let ok = eventually(LIMIT, || async { (ingested(app).await >= n).then_some(()) }).await;
    assert!(
        ok.is_some(),
        "{n} fixes not ingested; have {}",
        ingested(app).await
    );
}

#[tokio::test]
async fn a_terminal_registers_authenticates_and_its_locations_raise_speeding_like_json() {
    let app = spawn_gateway().await;
    let addr = app.jt808.expect("gateway on");
    app.register("firm-j", "苏J80801", "013900000001").await;

    let mut t = Terminal::connect(addr, "013900000001", Edition::V2013).await;
    let code = t.login("苏J80801").await;
    assert_eq!(t.call(Message::Heartbeat).await, result::OK);
    // Half the night one by one, the rest as a batch.
    for i in 0..18 {
        assert_eq!(t.call(Message::Location(speeding_fix(i))).await, result::OK);
    }
    let batch = Message::Batch(muckwatch::jt808::Batch {
        kind: BatchKind::Normal,
        locations: (18..36).map(speeding_fix).collect(),
    });
    assert_eq!(t.call(batch).await, result::OK);
    wait_ingested(&app, 36.0).await;

    let police = app.token("dept:police").await;
    let v = eventually(LIMIT, || async {
        let r = app
            .get("/api/v1/violations?code=SPEEDING", Some(&police))
            .await;
        (r.json()["total"] == 1).then(|| r.json()["items"][0].clone())
    })
    .await
    .expect("SPEEDING raised on JT/T 808 fixes");
    // Exactly what the same track over MQTT JSON raises (tests/api/violations.rs).
    assert_eq!(v["plate"], "苏J80801");
    assert_eq!(v["device_id"], "013900000001");
    assert_eq!(v["started_at"], "2021-06-01T22:00:00+08:00");
    assert_eq!(v["measured"], 70.0);
    // A truck with no permit, moving: NO_PERMIT, as over MQTT JSON.
    let no_permit = eventually(LIMIT, || async {
        let r = app
            .get("/api/v1/violations?code=NO_PERMIT", Some(&police))
            .await;
        (r.json()["total"] == 1).then(|| r.json()["items"][0].clone())
    })
    .await
    .expect("NO_PERMIT raised on JT/T 808 fixes");
    assert_eq!(no_permit["plate"], "苏J80801");

    let fixes = app.track("苏J80801", &app.admin).await.json();
    let first: &Value = &fixes["properties"]["fixes"][0];
    assert_eq!(first["speed_kmh"], 70.0);
    assert_eq!(first["heading"], 90.0);
    assert_eq!(first["acc"], true);
    assert_eq!(first["lat"], 33.335);
    assert!(
        first.get("cover_closed").is_none_or(Value::is_null),
        "default profile maps nothing: {first}"
    );
    assert_eq!(app.metric("muckwatch_jt808_terminals_connected").await, 1.0);

    // The same terminal after a firmware update to 2019: same device id,
    // the kept code still good.
    drop(t);
    let mut t19 = Terminal::connect(addr, "013900000001", Edition::V2019 { version: 1 }).await;
    assert_eq!(t19.authenticate(&code).await, result::OK);
    let mut late = speeding_fix(40);
    late.speed_dkmh = 100;
    assert_eq!(t19.call(Message::Location(late)).await, result::OK);
    wait_ingested(&app, 37.0).await;
    let fixes = app.track("苏J80801", &app.admin).await.json();
    assert_eq!(
        fixes["properties"]["fixes"].as_array().map(Vec::len),
        Some(37)
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_terminals_and_wrong_codes_get_nothing_stored() {
    let app = spawn_gateway().await;
    let addr = app.jt808.expect("gateway on");
    app.register("firm-j", "苏J80802", "013900000002").await;

    // A device no vehicle has: no code.
    let mut stranger = Terminal::connect(addr, "013999999999", Edition::V2013).await;
    assert_eq!(
        stranger.register("苏J00000").await,
        (register_result::NO_SUCH_TERMINAL, None)
    );
    assert_eq!(stranger.authenticate("guess").await, result::FAILED);
    // Anything else before authentication: refused, connection closed.
    let serial = stranger.send(Message::Location(speeding_fix(0))).await;
    assert_eq!(
        stranger.general_response(serial, 0x0200).await,
        result::FAILED
    );
    assert!(stranger.reply().await.is_none(), "connection closed");

    // A registered device with a wrong code, then an old one.
    let mut t = Terminal::connect(addr, "013900000002", Edition::V2013).await;
    let (r, first) = t.register("苏J80802").await;
    assert_eq!(r, register_result::OK);
    let (_, second) = t.register("苏J80802").await;
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_ne!(first, second, "codes are random");
    assert_eq!(t.authenticate("0123456789abcdef").await, result::FAILED);
    assert_eq!(
        t.authenticate(&first).await,
        result::FAILED,
        "replaced on re-registration"
    );
    // Locations are still refused: the terminal is not authenticated.
    let serial = t.send(Message::Location(speeding_fix(1))).await;
    assert_eq!(t.general_response(serial, 0x0200).await, result::FAILED);
    assert!(t.reply().await.is_none());

    // The current code works; its one location is the only fix stored.
    let mut t = Terminal::connect(addr, "013900000002", Edition::V2013).await;
    assert_eq!(t.authenticate(&second).await, result::OK);
    assert_eq!(t.call(Message::Location(speeding_fix(2))).await, result::OK);
    wait_ingested(&app, 1.0).await;
    assert_eq!(ingested(&app).await, 1.0);
    assert!(
        app.metric("muckwatch_jt808_frames_rejected_total{reason=\"not_authenticated\"}")
            .await
            >= 4.0
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_frames_are_answered_or_skipped_and_the_gateway_goes_on() {
    let app = spawn_gateway().await;
    let addr = app.jt808.expect("gateway on");
    app.register("firm-j", "苏J80803", "013900000003").await;
    let mut t = Terminal::connect(addr, "013900000003", Edition::V2013).await;
    t.login("苏J80803").await;

    // Bytes outside framing: skipped, nothing answered; the next frame is.
    t.send_raw(b"\x00\x01garbage\xff").await;
    assert_eq!(t.call(Message::Heartbeat).await, result::OK);

    // A wrong checksum with a readable header: result 2, its serial and id.
    let mut content = Vec::new();
    let mut h = t.header();
    h.msg_id = 0x0002;
    h.encode_into(&mut content);
    let mut wire = frame::wrap(&content);
    let at = wire.len() - 2;
    wire[at] ^= 0x55;
    if wire[at] == 0x7E || wire[at] == 0x7D {
        wire[at] ^= 0x01;
    }
    t.send_raw(&wire).await;
    assert_eq!(
        t.general_response(h.serial, 0x0002).await,
        result::BAD_MESSAGE
    );

    // A length that disagrees with the body: result 2.
    let mut h = t.header();
    h.msg_id = 0x0002;
    h.attrs.len = 5;
    let mut content = Vec::new();
    h.encode_into(&mut content);
    t.send_raw(&frame::wrap(&content)).await;
    assert_eq!(
        t.general_response(h.serial, 0x0002).await,
        result::BAD_MESSAGE
    );

    // An id muckwatch does not handle (0x0900 transparent data): result 3.
    let mut h = t.header();
    h.msg_id = 0x0900;
    h.attrs.len = 3;
    let mut content = Vec::new();
    h.encode_into(&mut content);
    content.extend_from_slice(&[0xF0, 1, 2]);
    t.send_raw(&frame::wrap(&content)).await;
    assert_eq!(
        t.general_response(h.serial, 0x0900).await,
        result::UNSUPPORTED
    );

    // A location without a fix: received, counted, not stored.
    let mut nofix = speeding_fix(3);
    nofix.status = STATUS_ACC;
    assert_eq!(t.call(Message::Location(nofix)).await, result::OK);
    assert_eq!(t.call(Message::Location(speeding_fix(4))).await, result::OK);
    wait_ingested(&app, 1.0).await;
    assert_eq!(ingested(&app).await, 1.0);

    // An oversized frame closes the connection, and only it.
    let mut huge = vec![0x7E];
    huge.extend(std::iter::repeat_n(0x30, 5000));
    huge.push(0x7E);
    t.send_raw(&huge).await;
    assert!(t.reply().await.is_none(), "connection closed");
    let mut again = Terminal::connect(addr, "013900000003", Edition::V2013).await;
    again.login("苏J80803").await;
    assert_eq!(again.call(Message::Heartbeat).await, result::OK);

    for (reason, at_least) in [
        ("outside_frame", 1.0),
        ("bad_checksum", 1.0),
        ("bad_length", 1.0),
        ("unsupported", 1.0),
        ("jt808_no_fix", 1.0),
        ("oversized", 1.0),
    ] {
        let n = app
            .metric(&format!(
                "muckwatch_jt808_frames_rejected_total{{reason=\"{reason}\"}}"
            ))
            .await;
        assert!(n >= at_least, "{reason}: {n}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_profile_maps_cover_tipper_and_load_and_a_subpackaged_backfill_is_stored() {
    let mut s = test_settings(&temp_db());
    s.jt808.listen = Some("127.0.0.1:0".into());
    s.jt808.profiles = toml::from_str(
        r#"
        [hx]
        devices = ["013900000004"]
        cover_closed = { status_bit = 20 }
        tipper_up = { extra = 0xE1, bit = 0 }
        load_t = { analog = 0, scale = 0.01 }
        "#,
    )
    .unwrap();
    let app = spawn_with(s).await;
    let addr = app.jt808.expect("gateway on");
    app.register("firm-j", "苏J80804", "013900000004").await;
    let mut t = Terminal::connect(addr, "013900000004", Edition::V2019 { version: 1 }).await;
    t.login("苏J80804").await;

    // A 补报 batch the terminal recorded while out of coverage, sent in two parts.
    let locations: Vec<Location> = (0..3)
        .map(|i| {
            let mut l = speeding_fix(i);
            l.speed_dkmh = 0;
            l.status |= 1 << 20;
            l.extras = vec![
                muckwatch::jt808::Extra {
                    id: 0xE1,
                    value: vec![1],
                },
                muckwatch::jt808::Extra {
                    id: 0x2B,
                    value: vec![0, 0, 0x09, 0x2E],
                },
            ];
            l
        })
        .collect();
    let mut body = Vec::new();
    Message::Batch(muckwatch::jt808::Batch {
        kind: BatchKind::Backfill,
        locations,
    })
    .encode_into(t.edition, &mut body);
    let (a, b) = body.split_at(body.len() / 2);
    let mut first_serial = 0;
    for (i, part) in [a, b].iter().enumerate() {
        let mut h = t.header();
        if i == 0 {
            first_serial = h.serial;
        }
        h.msg_id = 0x0704;
        h.attrs.len = part.len() as u16;
        h.part = Some(muckwatch::jt808::Part {
            total: 2,
            index: i as u16 + 1,
        });
        let mut content = Vec::new();
        h.encode_into(&mut content);
        content.extend_from_slice(part);
        t.send_raw(&frame::wrap(&content)).await;
    }
    assert_eq!(t.general_response(first_serial, 0x0704).await, result::OK);
    wait_ingested(&app, 3.0).await;
    let track = app.track("苏J80804", &app.admin).await.json();
    let fixes = track["properties"]["fixes"].as_array().unwrap().clone();
    assert_eq!(fixes.len(), 3);
    for f in &fixes {
        assert_eq!(f["cover_closed"], true, "{f}");
        assert_eq!(f["tipper_up"], true, "{f}");
        assert_eq!(f["load_t"], 23.5, "{f}");
    }
    app.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_and_silent_terminals_are_closed() {
    let mut s = test_settings(&temp_db());
    s.jt808.listen = Some("127.0.0.1:0".into());
    s.jt808.max_connections = 1;
    s.jt808.idle_timeout_s = 1;
    let app = spawn_with(s).await;
    let addr = app.jt808.expect("gateway on");
    app.register("firm-j", "苏J80805", "013900000005").await;
    let mut t = Terminal::connect(addr, "013900000005", Edition::V2013).await;
    t.login("苏J80805").await;
    let mut second = Terminal::connect(addr, "013900000006", Edition::V2013).await;
    let _ = second.send(Message::Heartbeat).await;
    assert!(second.reply().await.is_none(), "over the cap: closed");
    assert!(
        app.metric("muckwatch_jt808_connections_refused_total")
            .await
            >= 1.0
    );
    // The first one, silent past the idle timeout, is closed too.
    assert!(t.reply().await.is_none(), "idle: closed");
    let closed = eventually(LIMIT, || async {
        (app.metric("muckwatch_jt808_connections").await == 0.0).then_some(())
    })
    .await;
    assert!(closed.is_some());
    assert_eq!(app.metric("muckwatch_jt808_terminals_connected").await, 0.0);
    app.stop().await;
}

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
            ])
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("gateway starts"),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the log (all of it, so the pipe never fills) for the bound address.
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
        .recv_timeout(LIMIT)
        .expect("gateway logs its address")
        .parse()
        .expect("an address");
    let mut t = Terminal::connect(addr, "013900000007", Edition::V2013).await;
    t.login("苏J80807").await;
    assert_eq!(t.call(Message::Location(speeding_fix(0))).await, result::OK);
    wait_ingested(&app, 1.0).await;
    drop(child);
    app.stop().await;
}

/// A child process stopped (and waited for) however the test ends.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

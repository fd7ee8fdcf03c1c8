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

mod backfill;
mod durability;
mod hostile;
mod session;

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

/// A child process stopped (and waited for) however the test ends.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

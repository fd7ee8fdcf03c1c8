//! The simulator's trucks over JT/T 808: each truck chosen for it opens its own
//! TCP connection to a gateway, registers (0x0100), authenticates (0x0102) and
//! sends its fixes as 0x0200 locations, as a fitted terminal would; 2013 or 2019
//! firmware per truck. One honest truck of a `mixed` night drives through a
//! coverage gap: it records its fixes and sends them after as a 补报 batch
//! (0x0704 type 1), right after its first live fix, as terminals do.
//!
//! Cover, tipper and load are not standard in JT/T 808: the simulator reports
//! them in extra items that [`sim_profile`] tells the gateway about.

use std::collections::HashSet;

use anyhow::{bail, Context};
use chrono::{DateTime, Datelike, FixedOffset, Timelike};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

use crate::identity::DeviceId;
use crate::jt808::body::{register_result, result};
use crate::jt808::location::{STATUS_ACC, STATUS_POSITIONED, STATUS_SOUTH, STATUS_WEST};
use crate::jt808::settings::{FlagSource, NumberSource, ProfileSettings};
use crate::jt808::{
    Authenticate, Batch, BatchKind, BcdTime, BodyAttrs, Edition, Extra, Header, Inbound,
    Jt808Codec, Location, Message, Outbound, Register,
};

/// The profile name the simulator's terminals go by.
pub const SIM_PROFILE: &str = "muckwatch-sim";
const COVER_ITEM: u8 = 0xE1;
const TIPPER_ITEM: u8 = 0xE2;
/// Load in 0.1 t, two bytes.
const LOAD_ITEM: u8 = 0xE3;

/// Locations a terminal sends before it waits for answers. Small: a
/// terminal that runs ahead of the rest of the fleet is fine, one that lags
/// by gap_silence_s looks silent to the fleet's clock.
const WINDOW: usize = 4;
/// Locations per 补报 batch (well under the 4 KiB frame).
const BACKFILL_BATCH: usize = 25;

/// The gateway profile that reads the simulator's cover, tipper and load,
/// for `devices`.
pub fn sim_profile(devices: Vec<String>) -> ProfileSettings {
    let flag = |item| FlagSource {
        extra: Some(item),
        bit: Some(0),
        ..FlagSource::default()
    };
    ProfileSettings {
        devices,
        cover_closed: Some(flag(COVER_ITEM)),
        tipper_up: Some(flag(TIPPER_ITEM)),
        load_t: Some(NumberSource {
            extra: Some(LOAD_ITEM),
            scale: 0.1,
            ..NumberSource::default()
        }),
    }
}

/// The terminals' time zone (the standard's, the gateway's default).
fn terminal_zone() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"))
}

/// A simulator fix (the telemetry JSON it would publish) as a 0x0200 location.
pub fn location(json: &str) -> anyhow::Result<Location> {
    let v: Value = serde_json::from_str(json).context("simulator fix")?;
    let num = |k: &str| v[k].as_f64().with_context(|| format!("fix without {k}"));
    let flag = |k: &str| v[k].as_bool();
    let ts = v["ts"].as_str().context("fix without ts")?;
    let t = DateTime::parse_from_rfc3339(ts)
        .with_context(|| format!("fix time {ts}"))?
        .with_timezone(&terminal_zone());
    let (lat, lon) = (num("lat")?, num("lon")?);
    let mut status = STATUS_POSITIONED;
    if flag("acc") == Some(true) {
        status |= STATUS_ACC;
    }
    if lat < 0.0 {
        status |= STATUS_SOUTH;
    }
    if lon < 0.0 {
        status |= STATUS_WEST;
    }
    let mut extras = Vec::new();
    for (item, key) in [(COVER_ITEM, "cover_closed"), (TIPPER_ITEM, "tipper_up")] {
        if let Some(b) = flag(key) {
            extras.push(Extra {
                id: item,
                value: vec![u8::from(b)],
            });
        }
    }
    if let Some(load) = v["load_t"].as_f64() {
        let tenths = (load * 10.0).round().clamp(0.0, f64::from(u16::MAX)) as u16;
        extras.push(Extra {
            id: LOAD_ITEM,
            value: tenths.to_be_bytes().to_vec(),
        });
    }
    Ok(Location {
        alarm: 0,
        status,
        lat_e6: (lat.abs() * 1e6).round() as u32,
        lon_e6: (lon.abs() * 1e6).round() as u32,
        altitude_m: 0,
        speed_dkmh: (num("speed_kmh").unwrap_or(0.0) * 10.0)
            .round()
            .clamp(0.0, f64::from(u16::MAX)) as u16,
        direction: num("heading").unwrap_or(0.0).round().clamp(0.0, 359.0) as u16,
        time: BcdTime::from_parts(
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
        ),
        extras,
    })
}

/// What the publisher hands a truck's terminal.
pub enum Report {
    Live(Location),
    /// Recorded during a coverage gap, sent as 补报.
    Backfill(Vec<Location>),
}

/// One truck's terminal task: its queue and its end.
pub struct Driven {
    pub tx: mpsc::Sender<Report>,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Connects, registers and authenticates `device` (`plate`), then sends
/// what arrives on the returned queue until it closes; every location
/// answered with result 0, or the task fails saying which.
pub fn drive(addr: String, device: DeviceId, plate: String, edition: Edition) -> Driven {
    let (tx, mut rx) = mpsc::channel::<Report>(2);
    let task = tokio::spawn(async move {
        let mut t = Terminal::open(&addr, device, edition).await?;
        t.login(&plate).await?;
        while let Some(report) = rx.recv().await {
            match report {
                Report::Live(l) => t.send_counted(Message::Location(l)).await?,
                Report::Backfill(all) => {
                    for part in all.chunks(BACKFILL_BATCH) {
                        let batch = Message::Batch(Batch {
                            kind: BatchKind::Backfill,
                            locations: part.to_vec(),
                        });
                        t.send_counted(batch).await?;
                    }
                }
            }
        }
        t.drain().await
    });
    Driven { tx, task }
}

struct Terminal {
    conn: Framed<TcpStream, Jt808Codec>,
    device: DeviceId,
    edition: Edition,
    serial: u16,
    /// Serial numbers sent and not answered yet.
    waiting: HashSet<u16>,
}

impl Terminal {
    async fn open(addr: &str, device: DeviceId, edition: Edition) -> anyhow::Result<Terminal> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("JT/T 808 gateway at {addr}"))?;
        Ok(Terminal {
            conn: Framed::new(stream, Jt808Codec::default()),
            device,
            edition,
            serial: 0,
            waiting: HashSet::new(),
        })
    }

    async fn send(&mut self, message: Message) -> anyhow::Result<u16> {
        self.serial = self.serial.wrapping_add(1);
        let header = Header {
            msg_id: 0,
            attrs: BodyAttrs::from_word(0),
            edition: self.edition,
            device: self.device,
            serial: self.serial,
            part: None,
        };
        self.conn
            .send(Outbound { header, message })
            .await
            .with_context(|| format!("terminal {}: send", self.device))?;
        Ok(self.serial)
    }

    async fn reply(&mut self) -> anyhow::Result<Message> {
        let limit = std::time::Duration::from_secs(60);
        let item = tokio::time::timeout(limit, self.conn.next())
            .await
            .with_context(|| format!("terminal {}: no answer within 60 s", self.device))?;
        match item {
            Some(Ok(Inbound::Packet(p))) => {
                Message::decode(p.header.msg_id, p.header.edition, &p.body)
                    .ok()
                    .flatten()
                    .with_context(|| format!("terminal {}: unreadable answer", self.device))
            }
            Some(Ok(other)) => bail!(
                "terminal {}: bad frame from the gateway: {other:?}",
                self.device
            ),
            Some(Err(e)) => bail!("terminal {}: {e}", self.device),
            None => bail!(
                "terminal {}: the gateway closed the connection",
                self.device
            ),
        }
    }

    async fn login(&mut self, plate: &str) -> anyhow::Result<()> {
        self.send(Message::Register(Register {
            province: 32,
            city: 900,
            maker: "MWSIM".into(),
            model: "SIM-1".into(),
            terminal_id: "SIM".into(),
            plate_color: 2,
            plate: plate.into(),
        }))
        .await?;
        let code = match self.reply().await? {
            Message::RegisterResponse {
                result: register_result::OK,
                code: Some(code),
                ..
            } => code,
            other => bail!(
                "terminal {} ({plate}) not registered: {other:?} (is the vehicle seeded?)",
                self.device
            ),
        };
        let imei = matches!(self.edition, Edition::V2019 { .. }).then(|| "860000000000000".into());
        self.send(Message::Authenticate(Authenticate {
            code,
            software: imei.as_ref().map(|_| "sim".to_string()),
            imei,
        }))
        .await?;
        self.answered().await
    }

    /// The next answer, which must be 0x8001 result 0 for a message sent.
    async fn answered(&mut self) -> anyhow::Result<()> {
        match self.reply().await? {
            Message::PlatformResponse {
                serial,
                result: result::OK,
                ..
            } => {
                self.waiting.remove(&serial);
                Ok(())
            }
            other => bail!("terminal {}: refused: {other:?}", self.device),
        }
    }

    /// Sends, keeping at most [`WINDOW`] unanswered.
    async fn send_counted(&mut self, message: Message) -> anyhow::Result<()> {
        while self.waiting.len() >= WINDOW {
            self.answered().await?;
        }
        let serial = self.send(message).await?;
        self.waiting.insert(serial);
        Ok(())
    }

    async fn drain(&mut self) -> anyhow::Result<()> {
        while !self.waiting.is_empty() {
            self.answered().await?;
        }
        Ok(())
    }
}

//! Sends a [`Fleet`]'s fixes to an MQTT broker on the contract's topics.
//!
//! Pacing: by simulated time (`speedup`: 60 runs an hour of night in a minute), by a
//! cap on fixes per second (`rate`), both, or neither (`--rate max`: as fast as the
//! broker takes them; the client's bounded queue is the back-pressure). Batches are
//! arrays of one terminal's consecutive fixes, as a terminal that buffered them
//! would send; they span `batch x interval` of simulated time, which the watermark
//! sees as that much silence of the other trucks, so keep it well under the
//! TRACK_GAP threshold. With QoS 1, the run ends when the broker has acknowledged every
//! message: the broker has them, not necessarily muckwatch yet (wait for its
//! `muckwatch_fixes_ingested_total` before stopping it, or the end of the night is lost).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

use super::fleet::Fleet;
use super::scenario::Role;
use super::terminal::{drive, location, Driven, Report};
use crate::ingest::position_topic;
use crate::jt808::{Edition, Location};

#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub host: String,
    pub port: u16,
    /// Topic root, `muckwatch/v1` by default.
    pub prefix: String,
    pub qos: QoS,
    /// Fixes per message (1: a single JSON object; more: an array of one terminal's).
    pub batch: usize,
    /// Simulated seconds per wall-clock second; None: not paced by simulated time.
    pub speedup: Option<f64>,
    /// At most this many fixes per second; None: no cap.
    pub rate: Option<f64>,
    /// Stop after this long (wall clock), wherever the night is.
    pub max_wall: Option<Duration>,
    /// A one-line progress indicator on stderr.
    pub progress: bool,
    pub client_id: String,
    /// Credentials, for a broker that requires them.
    pub login: Option<crate::configuration::MqttLogin>,
    /// Trucks driven over JT/T 808 instead of MQTT.
    pub jt808: Option<Jt808Drive>,
}

/// Which trucks report over JT/T 808, and where to.
#[derive(Debug, Clone)]
pub struct Jt808Drive {
    /// The gateway, `HOST:PORT`.
    pub addr: String,
    /// Every second truck (odd indices), or (false) the whole fleet.
    pub half: bool,
    /// One honest JT/T 808 truck drives through a coverage gap and sends
    /// it afterwards as 补报 (the `mixed` scenario).
    pub coverage_gap: bool,
}

impl Jt808Drive {
    pub fn drives(&self, truck: usize) -> bool {
        !self.half || truck % 2 == 1
    }

    /// 2019 firmware on every fourth truck, 2013 on the others.
    pub fn edition(truck: usize) -> Edition {
        if truck % 4 == 3 {
            Edition::V2019 { version: 1 }
        } else {
            Edition::V2013
        }
    }
}

/// The coverage gap: [`GAP_AFTER_MS`] into the night, [`GAP_MS`] long.
const GAP_AFTER_MS: i64 = 2 * 3600 * 1000;
const GAP_MS: i64 = 10 * 60 * 1000;

/// The JT/T 808 trucks of a run: each one's terminal, and the one with a
/// coverage gap and what it recorded there.
struct Terminals {
    driven: Vec<Option<Driven>>,
    gap_truck: Option<usize>,
    gap: (i64, i64),
    recorded: Vec<Location>,
}

impl Terminals {
    fn start(fleet: &Fleet, d: &Jt808Drive) -> Terminals {
        let driven = (0..fleet.len())
            .map(|i| {
                d.drives(i).then(|| {
                    drive(
                        d.addr.clone(),
                        *fleet.device(i),
                        fleet.header.plates[i].clone(),
                        Jt808Drive::edition(i),
                    )
                })
            })
            .collect();
        let gap_truck = d
            .coverage_gap
            .then(|| (0..fleet.len()).find(|&i| d.drives(i) && fleet.roles[i] == Role::Honest));
        let from = fleet.header.start_ms + GAP_AFTER_MS;
        Terminals {
            driven,
            gap_truck: gap_truck.flatten(),
            gap: (from, from + GAP_MS),
            recorded: Vec::new(),
        }
    }

    fn drives(&self, truck: usize) -> bool {
        self.driven.get(truck).is_some_and(Option::is_some)
    }

    /// Hands truck `truck`'s fix to its terminal (recorded, in a coverage gap).
    async fn report(&mut self, truck: usize, ts_ms: i64, json: &str) -> anyhow::Result<()> {
        let l = location(json)?;
        let mut reports = vec![Report::Live(l)];
        if self.gap_truck == Some(truck) {
            if (self.gap.0..self.gap.1).contains(&ts_ms) {
                self.recorded
                    .extend(reports.drain(..).filter_map(|r| match r {
                        Report::Live(l) => Some(l),
                        Report::Backfill(_) => None,
                    }));
                return Ok(());
            }
            // back in coverage: the live fix first, then what was recorded
            if !self.recorded.is_empty() {
                reports.push(Report::Backfill(std::mem::take(&mut self.recorded)));
            }
        }
        for r in reports {
            self.send(truck, r).await?;
        }
        Ok(())
    }

    async fn send(&mut self, truck: usize, report: Report) -> anyhow::Result<()> {
        let Some(slot) = self.driven.get_mut(truck) else {
            return Ok(());
        };
        let Some(d) = slot else { return Ok(()) };
        if d.tx.send(report).await.is_ok() {
            return Ok(());
        }
        // The terminal's task ended: its error says why.
        let Some(Driven { task, .. }) = slot.take() else {
            bail!("terminal of truck {truck} stopped");
        };
        match task.await {
            Ok(Err(e)) => Err(e.context(format!("terminal of truck {truck}"))),
            Ok(Ok(())) => bail!("terminal of truck {truck} stopped"),
            Err(e) => bail!("terminal of truck {truck}: {e}"),
        }
    }

    /// Sends what is left and waits for every terminal's last answer.
    async fn finish(mut self) -> anyhow::Result<()> {
        if let (Some(t), false) = (self.gap_truck, self.recorded.is_empty()) {
            let back = std::mem::take(&mut self.recorded);
            self.send(t, Report::Backfill(back)).await?;
        }
        for (i, d) in self.driven.into_iter().enumerate() {
            let Some(Driven { tx, task }) = d else {
                continue;
            };
            drop(tx);
            task.await
                .with_context(|| format!("terminal of truck {i}"))??;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishSummary {
    pub fixes: u64,
    pub messages: u64,
    pub wall: Duration,
    /// Simulated time reached.
    pub sim_ms: i64,
}

impl PublishSummary {
    /// Fixes per wall-clock second.
    pub fn rate(&self) -> f64 {
        self.fixes as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// The broker connection's event loop, stopped when dropped.
struct Connection {
    task: tokio::task::JoinHandle<()>,
    acked: Arc<AtomicU64>,
    connected: Arc<AtomicBool>,
    disconnected: Arc<AtomicBool>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn connect(opts: &PublishOptions) -> (AsyncClient, Connection) {
    let mut mqtt = MqttOptions::new(opts.client_id.clone(), opts.host.clone(), opts.port);
    mqtt.set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_inflight(1000);
    if let Some(l) = &opts.login {
        mqtt.set_credentials(l.username.clone(), l.password.clone());
    }
    let (client, mut eventloop) = AsyncClient::new(mqtt, 10_000);
    let acked = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicBool::new(false));
    let disconnected = Arc::new(AtomicBool::new(false));
    let (a, c, d) = (acked.clone(), connected.clone(), disconnected.clone());
    let broker = format!("{}:{}", opts.host, opts.port);
    let task = tokio::spawn(async move {
        let mut complained = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    a.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Incoming(Packet::ConnAck(_))) => c.store(true, Ordering::Relaxed),
                Ok(Event::Outgoing(Outgoing::Disconnect)) => d.store(true, Ordering::Relaxed),
                Ok(_) => {}
                Err(e) => {
                    if d.load(Ordering::Relaxed) {
                        return;
                    }
                    if !complained {
                        tracing::warn!(%broker, error = %e, "simulator: broker connection failed; retrying");
                        complained = true;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    (
        client,
        Connection {
            task,
            acked,
            connected,
            disconnected,
        },
    )
}

/// Publishes the fleet's night (or until `max_wall`).
pub async fn publish(fleet: &mut Fleet, opts: &PublishOptions) -> anyhow::Result<PublishSummary> {
    if opts.batch == 0 || opts.batch > 1000 {
        bail!(
            "batch must be 1..=1000 fixes (the contract's limit), got {}",
            opts.batch
        );
    }
    let mut terminals = opts.jt808.as_ref().map(|d| Terminals::start(fleet, d));
    let (client, conn) = connect(opts);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mqtt_trucks = (0..fleet.len()).any(|i| !terminals.as_ref().is_some_and(|t| t.drives(i)));
    while mqtt_trucks && !conn.connected.load(Ordering::Relaxed) {
        if Instant::now() > deadline {
            bail!(
                "cannot connect to the MQTT broker at {}:{} within 10 s",
                opts.host,
                opts.port
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let topics: Vec<String> = (0..fleet.len())
        .map(|i| position_topic(&opts.prefix, fleet.device(i)))
        .collect();
    let mut pending: Vec<Vec<String>> = vec![Vec::new(); fleet.len()];
    let start_ms = fleet.header.start_ms;
    let began = Instant::now();
    let mut progress = Progress::new(opts.progress, fleet.offset());
    let (mut fixes, mut messages) = (0u64, 0u64);
    let mut tick = Vec::new();
    let send = |topic: &str, parts: &mut Vec<String>| {
        let payload = if parts.len() == 1 {
            parts.pop().unwrap_or_default()
        } else {
            format!("[{}]", parts.join(","))
        };
        parts.clear();
        client.publish(topic.to_string(), opts.qos, false, payload)
    };
    'night: loop {
        tick.clear();
        if !fleet.next_tick(&mut tick) {
            break;
        }
        for fix in tick.drain(..) {
            let mut due = Duration::ZERO;
            if let Some(x) = opts.speedup {
                due =
                    Duration::from_secs_f64(((fix.ts_ms - start_ms) as f64 / 1000.0 / x).max(0.0));
            }
            if let Some(r) = opts.rate {
                due = due.max(Duration::from_secs_f64(fixes as f64 / r));
            }
            if let Some(wait) = due
                .checked_sub(began.elapsed())
                .filter(|w| *w > Duration::from_millis(2))
            {
                tokio::time::sleep(wait).await;
            }
            if opts.max_wall.is_some_and(|m| began.elapsed() >= m) {
                break 'night;
            }
            if let Some(t) = terminals.as_mut().filter(|t| t.drives(fix.truck)) {
                t.report(fix.truck, fix.ts_ms, &fix.json).await?;
                fixes += 1;
                continue;
            }
            let parts = &mut pending[fix.truck];
            parts.push(fix.json);
            fixes += 1;
            if parts.len() >= opts.batch {
                send(&topics[fix.truck], parts).await.context("publish")?;
                messages += 1;
            }
            progress.update(
                fleet.progress(),
                fleet.sim_time_ms(),
                fixes,
                began.elapsed(),
                false,
            );
        }
    }
    for (truck, parts) in pending.iter_mut().enumerate() {
        if !parts.is_empty() {
            send(&topics[truck], parts).await.context("publish")?;
            messages += 1;
        }
    }
    if let Some(t) = terminals {
        t.finish().await?;
    }
    if opts.qos != QoS::AtMostOnce {
        let deadline = Instant::now() + Duration::from_secs(120);
        while conn.acked.load(Ordering::Relaxed) < messages {
            if Instant::now() > deadline {
                bail!(
                    "the broker acknowledged {} of {messages} messages within 120 s",
                    conn.acked.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let wall = began.elapsed();
    if mqtt_trucks {
        client.disconnect().await.context("disconnect")?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !conn.disconnected.load(Ordering::Relaxed) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    progress.update(fleet.progress(), fleet.sim_time_ms(), fixes, wall, true);
    Ok(PublishSummary {
        fixes,
        messages,
        wall,
        sim_ms: fleet.sim_time_ms(),
    })
}

/// `[#########.........]  45%  sim 01:23  12345 fixes  4567/s` on stderr, redrawn in
/// place on a terminal; a line every 10 s otherwise (logs stay readable).
struct Progress {
    enabled: bool,
    tty: bool,
    offset: chrono::FixedOffset,
    last: Option<Instant>,
}

impl Progress {
    fn new(enabled: bool, offset: chrono::FixedOffset) -> Progress {
        Progress {
            enabled,
            tty: std::io::stderr().is_terminal(),
            offset,
            last: None,
        }
    }

    fn update(&mut self, done: f64, sim_ms: i64, fixes: u64, wall: Duration, last: bool) {
        let every = if self.tty {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(10)
        };
        if !self.enabled || !(last || self.last.is_none_or(|t| t.elapsed() >= every)) {
            return;
        }
        self.last = Some(Instant::now());
        let width = 24;
        let filled = ((done * width as f64).round() as usize).min(width);
        let clock = chrono::DateTime::from_timestamp_millis(sim_ms)
            .map(|t| t.with_timezone(&self.offset).format("%H:%M").to_string())
            .unwrap_or_default();
        let rate = fixes as f64 / wall.as_secs_f64().max(1e-9);
        let line = format!(
            "[{}{}] {:>3.0}%  sim {clock}  {fixes} fixes  {rate:.0}/s",
            "#".repeat(filled),
            ".".repeat(width - filled),
            done * 100.0
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r{line}   ")
        } else {
            writeln!(err, "{line}")
        };
        if last && self.tty {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}

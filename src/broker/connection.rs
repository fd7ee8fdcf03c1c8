//! One client connection: a reader that handles incoming packets, and a
//! writer task that sends the session's deliveries and the reader's
//! control packets.
//!
//! The reader never waits on its own outgoing side: CONNACK, PUBACK,
//! SUBACK and PINGRESP go through a small control queue with `try_send`,
//! and a client that lets it fill (it does not read its socket) is
//! disconnected. While a publish waits for room at a subscriber, the reader
//! keeps watching its socket and its kick signal.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use bytes::BytesMut;
use rumqttc::mqttbytes::{valid_filter, valid_topic, Error as CodecError};
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, QoS, SubAck, SubscribeReasonCode, UnsubAck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::session::Session;
use super::Shared;
use crate::metrics::MqttRefusal;

/// Bytes read from the socket at a time: a packet's buffer grows with what
/// arrives, never with what its header announces.
const READ_CHUNK: usize = 64 * 1024;
/// Control packets waiting for the socket; a client that lets this many
/// pile up is not reading.
const CONTROL_QUEUE: usize = 1024;
/// Bytes gathered into one socket write.
const WRITE_BATCH: usize = 256 * 1024;

pub(super) async fn serve(stream: TcpStream, shared: Arc<Shared>, conn: u64) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(4096);
    let cfg = &shared.config;
    let metrics = &shared.metrics;

    let first = match read_packet(&mut rd, &mut buf, cfg.connect_timeout, cfg.max_packet).await {
        Ok(p) => p,
        Err(ReadEnd::Idle | ReadEnd::Slow) => {
            metrics.mqtt_refused(MqttRefusal::ConnectTimeout);
            bail!("no CONNECT within {:?}", cfg.connect_timeout)
        }
        Err(end) => {
            metrics.mqtt_refused(end.reason());
            bail!("before CONNECT: {end}")
        }
    };
    let Packet::Connect(connect) = first else {
        metrics.mqtt_refused(MqttRefusal::Protocol);
        bail!("first packet is not CONNECT")
    };
    let client = match shared.gate.login(connect.login.as_ref()).await {
        Ok(c) => c,
        Err(refused) => {
            metrics.mqtt_refused(refused.reason());
            refuse_connect(&mut wr, refused.return_code()).await;
            bail!("CONNECT refused: {}", refused.reason().label())
        }
    };
    let client_id = if !connect.client_id.is_empty() {
        connect.client_id.clone()
    } else if connect.clean_session {
        format!("auto-{conn}")
    } else {
        metrics.mqtt_refused(MqttRefusal::Protocol);
        refuse_connect(&mut wr, ConnectReturnCode::BadClientId).await;
        bail!("an empty client id needs a clean session")
    };
    let kick = Arc::new(Notify::new());
    let (session, present) = match shared.router.open_session(
        &client_id,
        client,
        connect.clean_session,
        conn,
        kick.clone(),
    ) {
        Ok(s) => s,
        Err(_) => {
            metrics.mqtt_refused(MqttRefusal::ClientIdTaken);
            refuse_connect(&mut wr, ConnectReturnCode::BadClientId).await;
            bail!("client id {client_id} is in use by another identity")
        }
    };
    // keep_alive 0 ("never") and anything above the cap get the cap: an
    // idle connection always ends some day.
    let keep_alive = match Duration::from_secs(u64::from(connect.keep_alive)) {
        k if k.is_zero() || k > cfg.max_keep_alive => cfg.max_keep_alive,
        k => k,
    };
    let idle = keep_alive * 3 / 2;

    let (control, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let _ = control.try_send(Packet::ConnAck(ConnAck::new(
        ConnectReturnCode::Success,
        present,
    )));
    let mut writer = tokio::spawn(write_loop(wr, session.clone(), control_rx));

    let reader = Reader {
        shared: &shared,
        session: &session,
        control,
        kick: &kick,
    };
    let result = async {
        loop {
            let packet = tokio::select! {
                _ = kick.notified() => bail!("disconnected by the broker (client id taken over or too slow)"),
                w = &mut writer => bail!("writer ended: {:?}", w.map(|r| r.err())),
                p = read_packet(&mut rd, &mut buf, idle, cfg.max_packet) => match p {
                    Ok(p) => p,
                    Err(ReadEnd::Closed) => return Ok(()),
                    Err(end) => {
                        metrics.mqtt_refused(end.reason());
                        bail!("{end}")
                    }
                },
            };
            if !reader.handle(packet, &mut rd, &mut buf).await? {
                return Ok(());
            }
        }
    }
    .await;
    shared.router.connection_ended(&session, conn);
    writer.abort();
    result
}

struct Reader<'a> {
    shared: &'a Shared,
    session: &'a Arc<Session>,
    control: mpsc::Sender<Packet>,
    kick: &'a Notify,
}

impl Reader<'_> {
    /// Handles one packet; false when the client said goodbye.
    async fn handle(
        &self,
        packet: Packet,
        rd: &mut OwnedReadHalf,
        buf: &mut BytesMut,
    ) -> anyhow::Result<bool> {
        let metrics = &self.shared.metrics;
        match packet {
            Packet::Publish(p) => {
                if p.qos == QoS::ExactlyOnce {
                    metrics.mqtt_refused(MqttRefusal::Protocol);
                    bail!("QoS 2 is not supported by the embedded broker");
                }
                if !valid_topic(&p.topic) {
                    metrics.mqtt_refused(MqttRefusal::Protocol);
                    bail!("invalid topic {:?}", p.topic);
                }
                if !self.shared.gate.may_publish(&self.session.client, &p.topic) {
                    // MQTT 3.1.1 has no negative PUBACK: closing is the
                    // only refusal the client notices.
                    metrics.mqtt_refused(MqttRefusal::PublishDenied);
                    tracing::warn!(client = %self.session.client, topic = %p.topic, "MQTT publish refused; disconnecting");
                    bail!("may not publish to {}", p.topic);
                }
                self.route(&p, rd, buf).await?;
                if p.qos == QoS::AtLeastOnce {
                    self.send(Packet::PubAck(PubAck::new(p.pkid)))?;
                }
            }
            Packet::PubAck(ack) => self.session.acked(ack.pkid),
            Packet::Subscribe(s) => {
                let mut refused = 0usize;
                let codes = s
                    .filters
                    .iter()
                    .map(|f| {
                        if !valid_filter(&f.path) {
                            return SubscribeReasonCode::Failure;
                        }
                        if !self
                            .shared
                            .gate
                            .may_subscribe(&self.session.client, &f.path)
                        {
                            metrics.mqtt_refused(MqttRefusal::SubscribeDenied);
                            return SubscribeReasonCode::Failure;
                        }
                        let qos = if f.qos == QoS::AtMostOnce {
                            QoS::AtMostOnce
                        } else {
                            QoS::AtLeastOnce
                        };
                        if self.shared.router.subscribe(self.session, &f.path, qos) {
                            SubscribeReasonCode::Success(qos)
                        } else {
                            refused += 1;
                            SubscribeReasonCode::Failure
                        }
                    })
                    .collect();
                if refused > 0 {
                    metrics.mqtt_refused(MqttRefusal::TooManyFilters);
                    tracing::warn!(
                        client_id = %self.session.client_id,
                        refused,
                        max = self.shared.config.max_filters,
                        "MQTT filters beyond the per-client cap refused"
                    );
                }
                self.send(Packet::SubAck(SubAck::new(s.pkid, codes)))?;
            }
            Packet::Unsubscribe(u) => {
                for t in &u.topics {
                    self.shared.router.unsubscribe(self.session, t);
                }
                self.send(Packet::UnsubAck(UnsubAck::new(u.pkid)))?;
            }
            Packet::PingReq => self.send(Packet::PingResp)?,
            Packet::Disconnect => return Ok(false),
            Packet::Connect(_) => {
                metrics.mqtt_refused(MqttRefusal::Protocol);
                bail!("a second CONNECT");
            }
            other => tracing::debug!(?other, "ignored MQTT packet"),
        }
        Ok(true)
    }

    /// Routes `p`, meanwhile reading ahead (up to one packet's worth) so
    /// that a client closing its socket is noticed, and obeying kicks.
    async fn route(
        &self,
        p: &Publish,
        rd: &mut OwnedReadHalf,
        buf: &mut BytesMut,
    ) -> anyhow::Result<()> {
        let routed = self.shared.router.route(p);
        tokio::pin!(routed);
        let max = self.shared.config.max_packet;
        loop {
            tokio::select! {
                _ = &mut routed => return Ok(()),
                _ = self.kick.notified() => bail!("disconnected by the broker"),
                n = read_more(rd, buf), if buf.len() < max => {
                    if n? == 0 {
                        bail!("connection closed while its publish waited");
                    }
                }
            }
        }
    }

    /// Queues a control packet without waiting.
    fn send(&self, packet: Packet) -> anyhow::Result<()> {
        match self.control.try_send(packet) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared
                    .metrics
                    .mqtt_refused(MqttRefusal::ControlQueueFull);
                bail!("client does not read its acknowledgements")
            }
            Err(mpsc::error::TrySendError::Closed(_)) => bail!("writer ended"),
        }
    }
}

/// Answers a refused CONNECT, without waiting long on a client that does
/// not read.
async fn refuse_connect(wr: &mut OwnedWriteHalf, code: ConnectReturnCode) {
    let mut out = BytesMut::new();
    if Packet::ConnAck(ConnAck::new(code, false))
        .write(&mut out, usize::MAX)
        .is_ok()
    {
        let _ = tokio::time::timeout(Duration::from_secs(2), wr.write_all(&out)).await;
    }
}

/// Why reading a packet stopped.
#[derive(Debug)]
enum ReadEnd {
    Closed,
    TooLarge(usize),
    /// Nothing for `idle` between packets (keep-alive).
    Idle,
    /// A packet started and did not complete in time.
    Slow,
    Bad(String),
    Io(std::io::Error),
}

impl ReadEnd {
    fn reason(&self) -> MqttRefusal {
        match self {
            ReadEnd::TooLarge(_) => MqttRefusal::PacketTooLarge,
            ReadEnd::Idle => MqttRefusal::KeepAlive,
            ReadEnd::Slow => MqttRefusal::PacketTimeout,
            ReadEnd::Closed | ReadEnd::Bad(_) | ReadEnd::Io(_) => MqttRefusal::Protocol,
        }
    }
}

impl std::fmt::Display for ReadEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadEnd::Closed => f.write_str("connection closed"),
            ReadEnd::TooLarge(n) => write!(f, "a packet announced {n} bytes, above the limit"),
            ReadEnd::Idle => f.write_str("keep-alive expired"),
            ReadEnd::Slow => f.write_str("a started packet did not complete in time"),
            ReadEnd::Bad(e) => write!(f, "bad MQTT packet: {e}"),
            ReadEnd::Io(e) => write!(f, "read failed: {e}"),
        }
    }
}

/// Reads one packet: nothing may arrive for `idle`, and a packet once
/// started must complete within `idle` as well (one keep-alive and a half:
/// a client that is sending is not idle, but one byte a minute is not a
/// client). A header announcing more than `max` is refused before anything
/// is allocated for it.
async fn read_packet(
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    idle: Duration,
    max: usize,
) -> Result<Packet, ReadEnd> {
    let deadline = Instant::now() + idle;
    loop {
        match Packet::read(buf, max) {
            Ok(p) => return Ok(p),
            Err(CodecError::InsufficientBytes(_)) => {}
            Err(CodecError::PayloadSizeLimitExceeded(n)) => return Err(ReadEnd::TooLarge(n)),
            Err(e) => return Err(ReadEnd::Bad(format!("{e:?}"))),
        }
        let started = !buf.is_empty();
        match tokio::time::timeout_at(deadline, read_more(rd, buf)).await {
            Err(_) if started => return Err(ReadEnd::Slow),
            Err(_) => return Err(ReadEnd::Idle),
            Ok(Ok(0)) => return Err(ReadEnd::Closed),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(ReadEnd::Io(e)),
        }
    }
}

async fn read_more(rd: &mut OwnedReadHalf, buf: &mut BytesMut) -> std::io::Result<usize> {
    buf.reserve(READ_CHUNK);
    rd.read_buf(buf).await
}

/// Sends control packets first, then the session's deliveries, gathering
/// what is ready into one write.
async fn write_loop(
    mut wr: OwnedWriteHalf,
    session: Arc<Session>,
    mut control: mpsc::Receiver<Packet>,
) -> anyhow::Result<()> {
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut batch: Vec<Publish> = Vec::new();
    loop {
        while out.len() < WRITE_BATCH {
            match control.try_recv() {
                Ok(p) => encode(&p, &mut out)?,
                Err(_) => break,
            }
        }
        if !session.take(&mut batch, WRITE_BATCH) {
            bail!("session closed");
        }
        for p in batch.drain(..) {
            encode(&Packet::Publish(p), &mut out)?;
        }
        if out.is_empty() {
            tokio::select! {
                c = control.recv() => match c {
                    Some(p) => encode(&p, &mut out)?,
                    None => return Ok(()),
                },
                // On a resumed session the writer of the connection going
                // away may take a wake-up meant for this one: look again
                // soon. Others wait (no timer per idle connection).
                _ = async {
                    if session.persistent {
                        let _ = tokio::time::timeout(Duration::from_secs(1), session.wake.notified()).await;
                    } else {
                        session.wake.notified().await;
                    }
                } => {}
            }
            if out.is_empty() {
                continue;
            }
        }
        wr.write_all(&out).await?;
        out.clear();
    }
}

fn encode(p: &Packet, out: &mut BytesMut) -> anyhow::Result<()> {
    p.write(out, usize::MAX)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("encode: {e:?}"))
}

//! Telemetry ingest: MQTT subscription -> decode -> batched store writes,
//! and each decoded fix handed to detection (`pipeline`).
//!
//! MQTT tasks and a writer joined by a bounded queue. Each MQTT task (one
//! per `[mqtt] connections`, the instance's buckets split between them so a
//! vehicle is always read by the same one, in order) reads publishes,
//! decodes them once into [`Fix`]es and refuses bad input (metric, rate-
//! limited log line, dead letter), and hands over what the client read in
//! one go at once. The writer task commits fixes in batches and only then
//! has QoS 1 publishes acknowledged, by the MQTT task of the connection
//! each came in on (all of a batch's in one write), so a crash never loses
//! an acknowledged fix. Several connections multiply the broker's in-flight
//! window, which ack-after-commit otherwise caps throughput at. When the
//! database is slow the queue (counted in messages) fills and the MQTT
//! tasks stop reading: back-pressure instead of unbounded memory.
//!
//! With an external broker the first connection also follows Mosquitto's
//! `$SYS/broker/publish/messages/dropped` ([`broker_watch`]).

mod broker_watch;
pub mod decode;
mod topic;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, PubAck, Publish, QoS, SubscribeFilter,
};
use tokio::sync::{broadcast, mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::configuration::{MqttLogin, MqttUrl, Settings};
use crate::fix::{DeviceId, Fix};
use crate::metrics::Metrics;
use crate::pipeline::DetectionInput;
use crate::registry::Registry;
use crate::store::{DeadLetter, Store};

pub use decode::{decode_payload, RejectReason, Rejection};
pub use topic::{parse_position_topic, position_topic, subscriptions, BucketSet};

/// What the ingest stage needs to know, taken from [`Settings`].
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub broker: MqttUrl,
    pub client_id: String,
    pub persistent_session: bool,
    pub topic_prefix: String,
    pub buckets: BucketSet,
    pub max_payload_bytes: usize,
    pub batch_size: usize,
    pub batch_max_wait: Duration,
    pub dead_letter_max: u64,
    pub queue_capacity: usize,
    pub max_future_ms: i64,
    /// The login of muckwatch's own clients, if the broker wants one.
    pub login: Option<MqttLogin>,
    pub keep_alive: Duration,
    /// MQTT connections to consume over (`[mqtt] connections`).
    pub connections: usize,
    /// The broker is the in-process one (no `$SYS` to watch).
    pub embedded: bool,
}

impl IngestConfig {
    /// `login`: muckwatch's own credentials; `embedded`: the broker is the
    /// in-process one, where ingest always keeps its session, so that what a
    /// truck had acknowledged survives ingest missing its keep-alive (a
    /// long database stall) and reconnecting.
    pub fn new(
        settings: &Settings,
        broker: MqttUrl,
        login: Option<MqttLogin>,
        embedded: bool,
    ) -> anyhow::Result<IngestConfig> {
        Ok(IngestConfig {
            broker,
            client_id: settings.mqtt_client_id(),
            persistent_session: settings.mqtt_persistent_session() || embedded,
            login,
            keep_alive: Duration::from_secs(settings.mqtt.keep_alive_s),
            topic_prefix: settings.mqtt.topic_prefix.clone(),
            buckets: BucketSet::parse(&settings.mqtt.buckets)?,
            max_payload_bytes: settings.ingest.max_payload_bytes,
            batch_size: settings.ingest.batch_size,
            batch_max_wait: Duration::from_millis(settings.ingest.batch_max_wait_ms),
            dead_letter_max: settings.ingest.dead_letter_max,
            queue_capacity: settings.ingest.queue_capacity,
            max_future_ms: settings.ingest.max_future_s as i64 * 1000,
            connections: settings.mqtt.connections.max(1),
            embedded,
        })
    }
}

/// Identifies one MQTT message by its topic and payload, for those waiting
/// to hear that it is committed ([`IngestTasks::committed`]).
pub fn message_key(topic: &str, payload: &[u8]) -> u64 {
    (u64::from(crc32fast::hash(payload)) << 32) | u64::from(crc32fast::hash(topic.as_bytes()))
}

/// Decoded MQTT messages on their way to the writer: those one connection
/// read in one go (what the client had buffered), handed over at once.
#[derive(Default)]
pub(crate) struct Decoded {
    /// [`message_key`] of each message.
    keys: Vec<u64>,
    fixes: Vec<Fix>,
    dead: Vec<DeadLetter>,
    /// Packet ids acknowledged once the fixes are committed (QoS 1 only).
    acks: Vec<u16>,
    /// Which connection of `conn` they came in on ([`Reader`]'s `epoch`):
    /// a packet id of an earlier connection means another message on a
    /// later one, so those acknowledgements are dropped.
    epoch: u64,
    /// The connection they came in on (an index into the writer's
    /// clients): a packet id means something only there.
    conn: usize,
    /// Their room in the writer's queue, given back once the writer took them.
    room: Option<OwnedSemaphorePermit>,
}

impl Decoded {
    /// Handed over once this many messages or fixes are gathered even if
    /// more are buffered: bounds a handoff (and a shard's queue entry).
    const MAX_MESSAGES: usize = 64;
    const MAX_FIXES: usize = 512;

    fn is_full(&self) -> bool {
        self.keys.len() >= Self::MAX_MESSAGES || self.fixes.len() >= Self::MAX_FIXES
    }
}

pub struct IngestTasks {
    pub mqtt: JoinHandle<()>,
    pub writer: JoinHandle<()>,
    /// Turns true once the broker has acknowledged the subscription.
    pub subscribed: watch::Receiver<bool>,
    /// The [`message_key`] of each message once its fixes (or its dead
    /// letters) are committed: what an in-process publisher waits for when
    /// the broker's own acknowledgement is not durable (the embedded one).
    pub committed: broadcast::Sender<u64>,
}

/// Starts the MQTT tasks and the writer. All end after `shutdown` turns
/// true; the writer first commits everything already read.
pub fn spawn(
    cfg: IngestConfig,
    store: Store,
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
    detection: Option<DetectionInput>,
    shutdown: watch::Receiver<bool>,
) -> IngestTasks {
    let parts = cfg.buckets.split(cfg.connections);
    let (tx, rx) = mpsc::unbounded_channel();
    let room = Arc::new(Semaphore::new(cfg.queue_capacity));
    let (ready_tx, subscribed) = watch::channel(false);
    let ready = Arc::new(Subscribed {
        tx: ready_tx,
        left: std::sync::atomic::AtomicUsize::new(parts.len()),
    });
    let (committed, _) = broadcast::channel(1 << 16);
    let mut ack_txs = Vec::with_capacity(parts.len());
    let mut readers = Vec::with_capacity(parts.len());
    for (conn, buckets) in parts.into_iter().enumerate() {
        // The first keeps the configured id (its persistent session).
        let client_id = match conn {
            0 => cfg.client_id.clone(),
            n => format!("{}-c{n}", cfg.client_id),
        };
        let (client, eventloop) = AsyncClient::new(mqtt_options(&cfg, client_id), 10_000);
        let (ack_tx, acks) = mpsc::unbounded_channel();
        ack_txs.push(ack_tx);
        let reader = Reader {
            acks,
            epoch: 0,
            cfg: cfg.clone(),
            buckets,
            conn,
            client,
            metrics: metrics.clone(),
            registry: registry.clone(),
            detection: detection.clone(),
            tx: tx.clone(),
            room: room.clone(),
            log: RejectLog::default(),
            watch: (conn == 0 && !cfg.embedded).then(broker_watch::DropWatch::default),
            scratch: Vec::new(),
        };
        readers.push(tokio::spawn(reader.run(
            eventloop,
            ready.clone(),
            shutdown.clone(),
        )));
    }
    drop(tx);
    let writer = tokio::spawn(writer::run(
        rx,
        store,
        metrics,
        ack_txs,
        cfg,
        shutdown,
        committed.clone(),
    ));
    let mqtt = tokio::spawn(async move {
        for r in readers {
            let _ = r.await;
        }
    });
    IngestTasks {
        mqtt,
        writer,
        subscribed,
        committed,
    }
}

fn mqtt_options(cfg: &IngestConfig, client_id: String) -> MqttOptions {
    let mut opts = MqttOptions::new(client_id, cfg.broker.host.clone(), cfg.broker.port);
    opts.set_keep_alive(cfg.keep_alive)
        .set_clean_session(!cfg.persistent_session)
        .set_manual_acks(true)
        // Room for anything a broker may deliver: an oversized payload must
        // reach the decoder to be counted, not break the connection.
        .set_max_packet_size((cfg.max_payload_bytes * 4).max(16 << 20), 1 << 20)
        .set_request_channel_capacity(10_000);
    if let Some(l) = &cfg.login {
        opts.set_credentials(l.username.clone(), l.password.clone());
    }
    opts
}

/// Turns `subscribed` true once every connection has its subscription.
struct Subscribed {
    tx: watch::Sender<bool>,
    left: std::sync::atomic::AtomicUsize,
}

struct Reader {
    cfg: IngestConfig,
    /// The buckets this connection subscribes to.
    buckets: BucketSet,
    conn: usize,
    client: AsyncClient,
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
    detection: Option<DetectionInput>,
    tx: mpsc::UnboundedSender<Decoded>,
    /// The writer's queue, counted in messages (`ingest.queue_capacity`): a
    /// handoff holds permits for its messages until the writer takes it.
    room: Arc<Semaphore>,
    log: RejectLog,
    /// The broker's drop counter, followed on the first connection.
    watch: Option<broker_watch::DropWatch>,
    /// One message's fixes while they are checked, reused.
    scratch: Vec<Fix>,
    /// Committed messages to acknowledge, from the writer.
    acks: mpsc::UnboundedReceiver<Acks>,
    /// Counts this connection's (re)connections.
    epoch: u64,
}

/// Packet ids the writer has committed, of one connection's `epoch`.
pub(crate) struct Acks {
    epoch: u64,
    pkids: Vec<u16>,
}

/// What the reader does next.
enum Step {
    Event(Result<Event, rumqttc::ConnectionError>),
    Ack(Acks),
    Stop,
}

impl Reader {
    async fn run(
        mut self,
        mut eventloop: EventLoop,
        ready: Arc<Subscribed>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let broker = format!("{}:{}", self.cfg.broker.host, self.cfg.broker.port);
        let mut counted = false;
        let mut backoff = Duration::from_millis(100);
        let mut chunk = self.chunk();
        loop {
            // What the client read from the socket in one go comes out of
            // `poll` without waiting: decode it all, then hand it over at
            // once (one wake-up of the writer and of each shard, not one
            // per message).
            if !chunk.keys.is_empty() && (eventloop.state.events.is_empty() || chunk.is_full()) {
                let full = std::mem::replace(&mut chunk, self.chunk());
                if !self.hand_over(full).await {
                    break;
                }
            }
            let step = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => Step::Stop,
                // Not while (re)connecting: an ack would cancel the
                // handshake in flight, and has nowhere to go yet.
                Some(acks) = self.acks.recv(), if eventloop.network.is_some() => Step::Ack(acks),
                ev = eventloop.poll() => Step::Event(ev),
            };
            let event = match step {
                Step::Stop => break,
                Step::Ack(acks) => {
                    self.acknowledge(&mut eventloop, acks).await;
                    continue;
                }
                Step::Event(ev) => ev,
            };
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic.starts_with("$SYS/") => {
                    if let Some(w) = &mut self.watch {
                        w.observe(&p.topic, &p.payload, &self.metrics);
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    self.decode(p, &mut chunk);
                }
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = Duration::from_millis(100);
                    // What the last connection read goes first, to be
                    // acknowledged (if at all) under its own epoch.
                    if !chunk.keys.is_empty() {
                        let read = std::mem::replace(&mut chunk, self.chunk());
                        if !self.hand_over(read).await {
                            break;
                        }
                    }
                    self.epoch += 1;
                    chunk.epoch = self.epoch;
                    tracing::info!(%broker, connection = self.conn, session_present = ack.session_present, "connected to MQTT broker");
                    let filters = subscriptions(&self.cfg.topic_prefix, self.buckets)
                        .into_iter()
                        .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce));
                    if let Err(e) = self.client.subscribe_many(filters).await {
                        tracing::error!(error = %e, "cannot subscribe");
                    }
                    if self.watch.is_some() {
                        // QoS 0: a broker without this topic just sends nothing.
                        let _ = self
                            .client
                            .subscribe(broker_watch::DROPPED_TOPIC, QoS::AtMostOnce)
                            .await;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if !counted {
                        counted = true;
                        tracing::info!(connection = self.conn, filters = ?subscriptions(&self.cfg.topic_prefix, self.buckets), "subscribed");
                        if ready.left.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 {
                            ready.tx.send_replace(true);
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if !chunk.keys.is_empty() {
                        let read = std::mem::replace(&mut chunk, self.chunk());
                        if !self.hand_over(read).await {
                            break;
                        }
                    }
                    self.metrics
                        .mqtt_reconnects
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(%broker, error = %e, retry_in = ?backoff, "MQTT connection lost");
                    tokio::select! {
                        _ = shutdown.wait_for(|stop| *stop) => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        // What was read before shutdown still goes to the writer, which
        // commits everything it got before it stops.
        if !chunk.keys.is_empty() {
            self.hand_over(chunk).await;
        }
        let _ = self.client.try_disconnect();
    }

    fn chunk(&self) -> Decoded {
        Decoded {
            conn: self.conn,
            epoch: self.epoch,
            ..Decoded::default()
        }
    }

    /// Writes the PUBACKs of committed messages straight onto the
    /// connection, all of them in one write: through the client's request
    /// queue each one cost an event-loop turn and a write of its own. Only
    /// on the connection they came in on (else the broker resends them).
    async fn acknowledge(&mut self, eventloop: &mut EventLoop, acks: Acks) {
        let Some(network) = eventloop.network.as_mut() else {
            return;
        };
        if acks.epoch != self.epoch {
            return;
        }
        let write = async {
            for pkid in acks.pkids {
                network.write(Packet::PubAck(PubAck::new(pkid))).await?;
            }
            network.flush().await
        };
        // A broker that reads nothing for this long is dead to us; the
        // connection's next read says so and reconnects.
        match tokio::time::timeout(self.cfg.keep_alive, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, connection = self.conn, "cannot acknowledge; the broker will resend")
            }
            Err(_) => {
                tracing::warn!(
                    connection = self.conn,
                    "acknowledging timed out; the broker will resend"
                )
            }
        }
    }

    /// Hands decoded messages to detection and the writer. False once the
    /// writer has stopped.
    async fn hand_over(&mut self, mut chunk: Decoded) -> bool {
        if let Some(detection) = &self.detection {
            detection.send_all(&chunk.fixes).await;
        }
        // A full queue holds the reader back (back-pressure); the semaphore
        // is never closed.
        let messages = chunk.keys.len().clamp(1, self.cfg.queue_capacity);
        chunk.room = self
            .room
            .clone()
            .acquire_many_owned(u32::try_from(messages).unwrap_or(u32::MAX))
            .await
            .ok();
        if self.tx.send(chunk).is_err() {
            tracing::error!("fix writer stopped; ingest stops");
            return false;
        }
        true
    }

    /// Decodes one message into `chunk`.
    fn decode(&mut self, p: Publish, chunk: &mut Decoded) {
        use std::sync::atomic::Ordering::Relaxed;
        self.metrics.messages_received.fetch_add(1, Relaxed);
        let now_ms = chrono::Utc::now().timestamp_millis();
        let fixes = &mut self.scratch;
        fixes.clear();
        let mut rejects = Vec::new();
        let device = match parse_position_topic(&self.cfg.topic_prefix, &p.topic) {
            Ok((_bucket, device)) => {
                decode_payload(
                    &p.payload,
                    &device,
                    self.cfg.max_payload_bytes,
                    fixes,
                    &mut rejects,
                );
                decode::refuse_future(fixes, now_ms, self.cfg.max_future_ms, &mut rejects);
                Some(device)
            }
            Err(detail) => {
                rejects.push(Rejection {
                    reason: RejectReason::BadTopic,
                    detail,
                });
                None
            }
        };
        for r in rejects {
            self.metrics.reject(r.reason);
            self.log.maybe_log(device.as_ref(), &p.topic, &r, now_ms);
            chunk.dead.push(DeadLetter::new(
                now_ms,
                &p.topic,
                r.reason.label(),
                r.detail,
                &p.payload,
            ));
        }
        for f in self.scratch.iter() {
            if !self.registry.is_registered(&f.device_id) {
                self.metrics.fixes_unregistered.fetch_add(1, Relaxed);
            }
        }
        chunk.fixes.extend_from_slice(&self.scratch);
        chunk.keys.push(message_key(&p.topic, &p.payload));
        if p.qos != QoS::AtMostOnce {
            chunk.acks.push(p.pkid);
        }
    }
}

/// Logs a refused message at most once per device (or topic) per minute.
/// Memory is bounded twice: a key is the device id (at most 32 characters)
/// or the first [`RejectLog::TOPIC_KEY_CHARS`] characters of a topic that
/// names none, and the map is emptied when it reaches
/// [`RejectLog::MAX_KEYS`] (at worst a few more lines that minute).
#[derive(Default)]
struct RejectLog {
    last_ms: HashMap<String, i64>,
}

impl RejectLog {
    const EVERY_MS: i64 = 60_000;
    const MAX_KEYS: usize = 100_000;
    const TOPIC_KEY_CHARS: usize = 128;

    fn key<'a>(device: Option<&'a DeviceId>, topic: &'a str) -> &'a str {
        match device {
            Some(d) => d.as_str(),
            None => match topic.char_indices().nth(Self::TOPIC_KEY_CHARS) {
                Some((at, _)) => &topic[..at],
                None => topic,
            },
        }
    }

    fn maybe_log(&mut self, device: Option<&DeviceId>, topic: &str, r: &Rejection, now_ms: i64) {
        let key = Self::key(device, topic);
        if let Some(last) = self.last_ms.get(key) {
            if now_ms - last < Self::EVERY_MS {
                return;
            }
        }
        if self.last_ms.len() >= Self::MAX_KEYS {
            self.last_ms.clear();
        }
        self.last_ms.insert(key.to_string(), now_ms);
        // Outside text, escaped: a newline in a topic must not forge a log line.
        let topic = crate::text::escaped(topic, Self::TOPIC_KEY_CHARS);
        let detail = crate::text::escaped(&r.detail, 512);
        tracing::warn!(topic = %topic, reason = r.reason.label(), detail = %detail, "message refused (further refusals from this device are not logged for a minute)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reject_log_is_keyed_by_a_bounded_topic_prefix() {
        let long = format!("muckwatch/v1/pos/{}", "x".repeat(65_536));
        assert_eq!(RejectLog::key(None, &long).chars().count(), 128);
        let d = DeviceId::parse("dev-1").expect("device");
        assert_eq!(RejectLog::key(Some(&d), &long), "dev-1");
        let mut log = RejectLog::default();
        let r = Rejection {
            reason: RejectReason::BadTopic,
            detail: "x".into(),
        };
        for i in 0..10 {
            log.maybe_log(None, &format!("{long}{i}"), &r, 0);
        }
        assert_eq!(
            log.last_ms.len(),
            1,
            "one key for topics alike in their first 128 chars"
        );
    }
}

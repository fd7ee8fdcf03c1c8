//! One terminal's TCP connection: register, authenticate, then heartbeats
//! and locations, each answered as the contract says. Its state is small
//! and bounded: the codec's buffer (one frame at most), one sub-packaged
//! message in progress, a few counters.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::body::{register_result, result, BatchKind, Message};
use super::codec::{FrameReject, Inbound, Jt808Codec, Outbound, Packet};
use super::gateway::Shared;
use super::header::Header;
use super::profile::telemetry;
use super::reassembly::{Reassembled, Reassembler};
use crate::auth::token_hash;
use crate::identity::DeviceId;
use crate::store::TerminalRegistration;

/// Failed authentications before the connection is closed.
const MAX_AUTH_FAILURES: u32 = 3;
/// Fixes per MQTT message (the contract's batch limit).
const MAX_BATCH: usize = 1000;

/// What to do after a message.
enum Next {
    Go,
    Close,
}

struct Session {
    peer: SocketAddr,
    /// The terminal this connection authenticated as.
    device: Option<DeviceId>,
    auth_failures: u32,
    reassembler: Reassembler,
    /// Serial numbers of the platform's own messages.
    serial: u16,
    /// Token bucket of the frame rate limit.
    tokens: f64,
    refilled: Instant,
    /// Refusals are logged at most once a minute per connection.
    last_warned: Option<Instant>,
    quiet: u64,
}

pub async fn serve(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let codec = Jt808Codec::new(shared.settings.max_frame_bytes);
    let mut framed = Framed::with_capacity(stream, codec, 512);
    let mut s = Session {
        peer,
        device: None,
        auth_failures: 0,
        reassembler: Reassembler::new(shared.settings.max_reassembly_bytes),
        serial: 0,
        tokens: f64::from(shared.settings.max_frames_per_s) * 2.0,
        refilled: Instant::now(),
        last_warned: None,
        quiet: 0,
    };
    let idle = Duration::from_secs(shared.settings.idle_timeout_s);
    let mut stop = shared.stop.clone();
    loop {
        let item = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            r = tokio::time::timeout(idle, framed.next()) => r,
        };
        let item = match item {
            Err(_) => {
                tracing::info!(%peer, device = ?s.device.map(|d| d.to_string()), "JT/T 808 terminal silent past the idle timeout: disconnected");
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                tracing::debug!(%peer, error = %e, "JT/T 808 connection read failed");
                break;
            }
            Ok(Some(Ok(item))) => item,
        };
        if !s.take_token(shared.settings.max_frames_per_s) {
            s.refuse(
                &shared,
                FrameReject::RateLimited,
                "over the frame rate limit: dropped",
            );
            continue;
        }
        let next = match item {
            Inbound::Rejected {
                reason,
                header,
                detail,
            } => {
                s.refuse(&shared, reason, &detail);
                if reason == FrameReject::Oversized {
                    Next::Close
                } else if let Some(h) = header {
                    s.answer(&mut framed, &h, result::BAD_MESSAGE).await
                } else {
                    Next::Go
                }
            }
            Inbound::Packet(p) => match s.reassembler.push(p) {
                Reassembled::Whole(p) => s.handle(&mut framed, &shared, p).await,
                Reassembled::Partial => Next::Go,
                Reassembled::Refused(why) => {
                    s.refuse(&shared, FrameReject::Reassembly, &why);
                    Next::Go
                }
            },
        };
        if matches!(next, Next::Close) {
            break;
        }
    }
    if s.device.is_some() {
        shared.metrics.jt808_terminals.fetch_sub(1, Relaxed);
    }
    let _ = framed.close().await;
}

type Conn = Framed<TcpStream, Jt808Codec>;

impl Session {
    fn take_token(&mut self, per_s: u32) -> bool {
        let rate = f64::from(per_s);
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * rate).min(rate * 2.0);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Counts a refusal and logs it (once a minute per connection; the
    /// count of those not logged goes with the next line).
    fn refuse(&mut self, shared: &Shared, reason: FrameReject, detail: &str) {
        shared.metrics.jt808_reject(reason);
        if self
            .last_warned
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
        {
            self.quiet += 1;
            return;
        }
        self.last_warned = Some(Instant::now());
        tracing::warn!(
            peer = %self.peer,
            device = ?self.device.map(|d| d.to_string()),
            reason = reason.label(),
            not_logged_since = self.quiet,
            "JT/T 808 frame refused: {detail}"
        );
        self.quiet = 0;
    }

    fn next_serial(&mut self) -> u16 {
        self.serial = self.serial.wrapping_add(1);
        self.serial
    }

    async fn send(&mut self, conn: &mut Conn, to: &Header, message: Message) -> Next {
        let mut header = *to;
        header.serial = self.next_serial();
        header.part = None;
        header.attrs.encryption = 0;
        match conn.send(Outbound { header, message }).await {
            Ok(()) => Next::Go,
            Err(_) => Next::Close,
        }
    }

    /// 0x8001 to the message `to`.
    async fn answer(&mut self, conn: &mut Conn, to: &Header, result: u8) -> Next {
        let reply = Message::PlatformResponse {
            serial: to.serial,
            id: to.msg_id,
            result,
        };
        self.send(conn, to, reply).await
    }

    async fn handle(&mut self, conn: &mut Conn, shared: &Shared, p: Packet) -> Next {
        let h = p.header;
        if h.attrs.encryption != 0 {
            self.refuse(
                shared,
                FrameReject::Encrypted,
                "encrypted bodies are not supported",
            );
            return self.answer(conn, &h, result::UNSUPPORTED).await;
        }
        if self.device.is_some_and(|d| d != h.device) {
            self.refuse(
                shared,
                FrameReject::NotAuthenticated,
                &format!(
                    "message from {} on a connection authenticated as another terminal",
                    h.device
                ),
            );
            let _ = self.answer(conn, &h, result::FAILED).await;
            return Next::Close;
        }
        let message = match Message::decode(h.msg_id, h.edition, &p.body) {
            Ok(m) => m,
            Err(e) => {
                self.refuse(
                    shared,
                    FrameReject::BadBody,
                    &format!("message {:#06X}: {e}", h.msg_id),
                );
                return self.answer(conn, &h, result::BAD_MESSAGE).await;
            }
        };
        let authenticated = self.device.is_some();
        match message {
            Some(Message::Register(r)) => self.register(conn, shared, &h, r).await,
            Some(Message::Authenticate(a)) => self.authenticate(conn, shared, &h, &a.code).await,
            Some(Message::TerminalResponse { .. }) => Next::Go,
            _ if !authenticated => {
                self.refuse(
                    shared,
                    FrameReject::NotAuthenticated,
                    &format!(
                        "message {:#06X} before authentication: connection closed",
                        h.msg_id
                    ),
                );
                let _ = self.answer(conn, &h, result::FAILED).await;
                Next::Close
            }
            Some(Message::Heartbeat) => self.answer(conn, &h, result::OK).await,
            Some(Message::Deregister) => {
                if let Err(e) = shared.store.deregister_terminal(&h.device).await {
                    tracing::warn!(device = %h.device, error = %e, "cannot forget a deregistered terminal's code");
                    return self.answer(conn, &h, result::FAILED).await;
                }
                self.device = None;
                shared.metrics.jt808_terminals.fetch_sub(1, Relaxed);
                tracing::info!(device = %h.device, "JT/T 808 terminal deregistered");
                self.answer(conn, &h, result::OK).await
            }
            Some(Message::Location(l)) => {
                self.report(conn, shared, &h, std::slice::from_ref(&l), None)
                    .await
            }
            Some(Message::Batch(b)) => {
                self.report(conn, shared, &h, &b.locations, Some(b.kind))
                    .await
            }
            Some(_) | None => {
                self.refuse(
                    shared,
                    FrameReject::Unsupported,
                    &format!("message {:#06X} is not supported", h.msg_id),
                );
                self.answer(conn, &h, result::UNSUPPORTED).await
            }
        }
    }

    async fn register(
        &mut self,
        conn: &mut Conn,
        shared: &Shared,
        h: &Header,
        r: super::body::Register,
    ) -> Next {
        let reply = |result: u8, code: Option<String>| Message::RegisterResponse {
            serial: h.serial,
            result,
            code,
        };
        let vehicle = match shared.store.vehicle_of_device(&h.device).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(device = %h.device, error = %e, "cannot look a registering terminal up");
                return self.answer(conn, h, result::FAILED).await;
            }
        };
        let Some(vehicle) = vehicle else {
            tracing::info!(peer = %self.peer, device = %h.device, plate = %r.plate, "JT/T 808 registration refused: no vehicle has this device");
            return self
                .send(conn, h, reply(register_result::NO_SUCH_TERMINAL, None))
                .await;
        };
        let code = match crate::auth::new_token() {
            Ok(t) => t.trim_start_matches("mw_")[..32].to_string(),
            Err(e) => {
                tracing::warn!(error = %e, "no randomness for an auth code");
                return self.answer(conn, h, result::FAILED).await;
            }
        };
        let t = TerminalRegistration {
            device_id: h.device,
            auth_hash: token_hash(&code),
            plate: r.plate.clone(),
            maker: r.maker,
            model: r.model,
            terminal_id: r.terminal_id,
        };
        if let Err(e) = shared
            .store
            .register_terminal(&t, chrono::Utc::now().timestamp_millis())
            .await
        {
            tracing::warn!(device = %h.device, error = %e, "cannot store a terminal's auth code");
            return self.answer(conn, h, result::FAILED).await;
        }
        tracing::info!(device = %h.device, plate = %vehicle.plate, reported_plate = %r.plate, "JT/T 808 terminal registered");
        self.send(conn, h, reply(register_result::OK, Some(code)))
            .await
    }

    async fn authenticate(
        &mut self,
        conn: &mut Conn,
        shared: &Shared,
        h: &Header,
        code: &str,
    ) -> Next {
        let stored = shared.store.terminal_auth_hash(&h.device).await;
        let registered = shared.store.vehicle_of_device(&h.device).await;
        let ok = match (&stored, &registered) {
            (Ok(Some(hash)), Ok(Some(_))) => *hash == token_hash(code),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(device = %h.device, error = %e, "cannot check a terminal's auth code");
                return self.answer(conn, h, result::FAILED).await;
            }
            _ => false,
        };
        if !ok {
            self.auth_failures += 1;
            self.refuse(
                shared,
                FrameReject::NotAuthenticated,
                &format!("terminal {} gave a wrong or unknown auth code", h.device),
            );
            let next = self.answer(conn, h, result::FAILED).await;
            if self.auth_failures >= MAX_AUTH_FAILURES {
                return Next::Close;
            }
            return next;
        }
        if self.device.is_none() {
            shared.metrics.jt808_terminals.fetch_add(1, Relaxed);
        }
        self.device = Some(h.device);
        tracing::info!(peer = %self.peer, device = %h.device, edition = ?h.edition, "JT/T 808 terminal authenticated");
        self.answer(conn, h, result::OK).await
    }

    /// Publishes the usable fixes of a location or batch, then answers.
    async fn report(
        &mut self,
        conn: &mut Conn,
        shared: &Shared,
        h: &Header,
        locations: &[super::location::Location],
        batch: Option<BatchKind>,
    ) -> Next {
        let profile = shared.profiles.of(&h.device);
        let mut fixes = Vec::with_capacity(locations.len().min(MAX_BATCH));
        let mut bad_time = 0;
        for l in locations {
            match telemetry(&h.device, l, shared.zone, profile) {
                Ok(v) => fixes.push(v),
                Err((reason, why)) => {
                    bad_time += usize::from(reason == FrameReject::BadTime);
                    self.refuse(shared, reason, &why);
                }
            }
        }
        if fixes.is_empty() {
            // Nothing to keep; a location without a fix is still received.
            let r = if bad_time > 0 {
                result::BAD_MESSAGE
            } else {
                result::OK
            };
            return self.answer(conn, h, r).await;
        }
        let topic = crate::ingest::position_topic(&shared.topic_prefix, &h.device);
        let timeout = Duration::from_secs(shared.settings.publish_timeout_s);
        for chunk in fixes.chunks(MAX_BATCH) {
            let payload = if batch.is_none() && chunk.len() == 1 {
                serde_json::to_vec(&chunk[0])
            } else {
                serde_json::to_vec(chunk)
            };
            let Ok(payload) = payload else {
                return Next::Go;
            };
            let deadline = tokio::time::Instant::now() + timeout;
            let key = crate::ingest::message_key(&topic, &payload);
            let commit = shared
                .commits
                .as_ref()
                .and_then(|c| c.expect(&h.device, key));
            if let Err(e) = shared.publisher.publish(&topic, payload, timeout).await {
                // Unanswered: the terminal sends it again.
                tracing::warn!(device = %h.device, error = %e, "JT/T 808 location not answered: {e}");
                return Next::Go;
            }
            if let Some(commit) = commit {
                if !commit.committed(deadline).await {
                    tracing::warn!(device = %h.device, "JT/T 808 location not answered: not stored in time");
                    return Next::Go;
                }
            }
            shared
                .metrics
                .jt808_fixes_published
                .fetch_add(chunk.len() as u64, Relaxed);
        }
        if batch == Some(BatchKind::Backfill) {
            tracing::debug!(device = %h.device, fixes = fixes.len(), "JT/T 808 backfill (补报) published");
        }
        self.answer(conn, h, result::OK).await
    }
}

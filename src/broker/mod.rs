//! The embedded MQTT 3.1.1 broker, used when no external broker is
//! configured, so that `muckwatch serve` works on a bare machine.
//!
//! Small on purpose: QoS 0 and 1, `+`/`#` filters, keep-alive, clean
//! sessions (persistent ones only for muckwatch's own clients), one
//! connection per client id. Retained messages and wills are for a
//! production broker (Mosquitto, EMQX) behind `--mqtt-url`. Packet encoding
//! is rumqttc's `mqttbytes`, the same code the client uses.
//!
//! Nothing a client does can stall it or exhaust the process:
//! - connections are capped (in total and per address), a CONNECT must
//!   arrive within a deadline, keep-alive is capped (0 does not mean
//!   forever), and a started packet must complete within 1.5 keep-alives;
//! - a packet announcing more than `max_packet` is refused from its header,
//!   and buffers grow with bytes received, never with bytes announced;
//! - filters per client are capped and matched through a per-level index;
//! - the reader of a connection never waits on its own outgoing queue
//!   (`connection.rs`), and a publisher waits on a full subscriber for at
//!   most a deadline, after which that subscriber is disconnected
//!   (`session.rs` says what muckwatch's own clients get instead).
//!
//! Who may connect, publish and subscribe is [`crate::mqtt_access`]'s call.

mod connection;
mod index;
mod router;
mod session;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;
use tokio::net::TcpListener;

use crate::metrics::{Metrics, MqttRefusal};
use crate::mqtt_access::Gate;
use router::Router;
pub use session::QueueLimits;

/// The broker's limits; `[broker]` in the configuration sets them.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub connect_timeout: Duration,
    /// Keep-alive given to clients asking for 0 or for more.
    pub max_keep_alive: Duration,
    /// Largest packet accepted (its remaining length).
    pub max_packet: usize,
    pub max_filters: usize,
    pub queue: QueueLimits,
    /// How long a publisher waits on a subscriber whose queue is full.
    pub slow_subscriber: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_connections: 10_000,
            max_connections_per_address: 1_000,
            connect_timeout: Duration::from_secs(10),
            max_keep_alive: Duration::from_secs(300),
            max_packet: 1024 * 1024,
            max_filters: 256,
            queue: QueueLimits {
                messages: 10_000,
                bytes: 64 * 1024 * 1024,
                inflight: 1_000,
            },
            slow_subscriber: Duration::from_secs(5),
        }
    }
}

/// What every connection of one broker shares.
struct Shared {
    config: BrokerConfig,
    router: Router,
    gate: Arc<Gate>,
    metrics: Arc<Metrics>,
}

/// Binds `listen` and serves MQTT on it until the process ends; returns the
/// bound address (port 0 becomes the port actually chosen).
pub async fn start_embedded(
    listen: SocketAddr,
    config: BrokerConfig,
    gate: Arc<Gate>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<SocketAddr> {
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "cannot start the embedded MQTT broker: {listen} is already in use \
             (another MQTT broker is probably running there). Either use that broker with \
             `--mqtt-url mqtt://{listen}` (or MUCKWATCH_MQTT_URL), or move the embedded \
             broker with `--mqtt-listen 127.0.0.1:0` (0 picks a free port)"
        ),
        Err(e) => bail!("cannot listen on {listen} for MQTT: {e}"),
    };
    let addr = listener.local_addr()?;
    let router = Router::new(
        config.queue,
        config.max_filters,
        config.slow_subscriber,
        metrics.clone(),
    );
    let shared = Arc::new(Shared {
        config,
        router,
        gate,
        metrics,
    });
    tokio::spawn(accept_loop(listener, shared));
    Ok(addr)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let per_address: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let refusal_log = LogEvery::default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, typically: wait rather than spin.
                tracing::warn!(error = %e, "MQTT accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = Slot::take(&shared, &per_address, peer.ip()) else {
            let over_total = shared.metrics.mqtt_connections.load(Relaxed) as usize
                >= shared.config.max_connections;
            let reason = if over_total {
                MqttRefusal::MaxConnections
            } else {
                MqttRefusal::MaxConnectionsPerAddress
            };
            shared.metrics.mqtt_refused(reason);
            if refusal_log.now() {
                tracing::warn!(%peer, reason = reason.label(), max = shared.config.max_connections,
                    per_address = shared.config.max_connections_per_address,
                    "MQTT connection refused (logged at most every 10 s)");
            }
            drop(stream);
            continue;
        };
        let id = NEXT_ID.fetch_add(1, Relaxed);
        let shared = shared.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection::serve(stream, shared, id).await {
                tracing::debug!(%peer, error = %e, "MQTT connection ended");
            }
        });
    }
}

/// One connection's place under the caps; given back when dropped.
struct Slot {
    shared: Arc<Shared>,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Slot {
    fn take(
        shared: &Arc<Shared>,
        per_address: &Arc<Mutex<HashMap<IpAddr, usize>>>,
        ip: IpAddr,
    ) -> Option<Slot> {
        let total = &shared.metrics.mqtt_connections;
        if total.load(Relaxed) as usize >= shared.config.max_connections {
            return None;
        }
        let mut map = per_address.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= shared.config.max_connections_per_address {
            return None;
        }
        *n += 1;
        total.fetch_add(1, Relaxed);
        Some(Slot {
            shared: shared.clone(),
            per_address: per_address.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.metrics.mqtt_connections.fetch_sub(1, Relaxed);
        let mut map = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// True at most once per 10 s: a flood of refusals is one log line.
#[derive(Default)]
struct LogEvery {
    last_s: AtomicI64,
}

impl LogEvery {
    fn now(&self) -> bool {
        let now = chrono::Utc::now().timestamp();
        let last = self.last_s.load(Relaxed);
        now - last >= 10
            && self
                .last_s
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(listen: SocketAddr) -> anyhow::Result<SocketAddr> {
        start_embedded(
            listen,
            BrokerConfig::default(),
            Arc::new(Gate::open("muckwatch/v1")),
            Arc::new(Metrics::default()),
        )
        .await
    }

    #[tokio::test]
    async fn a_taken_port_is_a_clear_error() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let err = start(addr).await.unwrap_err().to_string();
        assert!(
            err.contains("already in use") && err.contains("--mqtt-url"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn port_zero_becomes_a_real_port() {
        let addr = start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert_ne!(addr.port(), 0);
    }
}

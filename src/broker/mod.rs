//! The embedded MQTT 3.1.1 broker, used when no external broker is
//! configured, so that `muckwatch serve` works on a bare machine.
//!
//! It is deliberately small: QoS 0 and 1, `+`/`#` filters, keep-alive,
//! clean sessions, one connection per client id (a reconnect replaces the
//! old one). Delivery applies back-pressure instead of dropping: a slow
//! subscriber slows publishers down through TCP, so nothing is lost while
//! everyone is connected. Retained messages, wills and persistent sessions
//! are for a production broker (Mosquitto, EMQX) behind `--mqtt-url`.
//! Packet encoding is rumqttc's `mqttbytes`, the same code the client uses.

mod connection;
mod router;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::bail;
use tokio::net::TcpListener;

use router::Router;

/// Largest packet accepted. Larger than the decoder's own payload limit on
/// purpose, so that oversized payloads reach muckwatch and are counted.
pub const MAX_PACKET: usize = 4 * 1024 * 1024;

/// Binds `listen` and serves MQTT on it until the process ends; returns the
/// bound address (port 0 becomes the port actually chosen).
pub async fn start_embedded(listen: SocketAddr) -> anyhow::Result<SocketAddr> {
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
    let router = Arc::new(Router::default());
    tokio::spawn(accept_loop(listener, router));
    Ok(addr)
}

async fn accept_loop(listener: TcpListener, router: Arc<Router>) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                let router = router.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection::serve(stream, router, id).await {
                        tracing::debug!(%peer, error = %e, "MQTT connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "MQTT accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_port_is_a_clear_error() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let err = start_embedded(addr).await.unwrap_err().to_string();
        assert!(
            err.contains("already in use") && err.contains("--mqtt-url"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn port_zero_becomes_a_real_port() {
        let addr = start_embedded("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        assert_ne!(addr.port(), 0);
    }
}

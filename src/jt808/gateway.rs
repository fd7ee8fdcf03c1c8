//! The JT/T 808 gateway: accepts terminals over TCP and publishes what they
//! report on the contract's telemetry topic, like any MQTT device. It runs
//! inside `serve --jt808-listen` or alone (`muckwatch gateway jt808`), in
//! front of the embedded broker or an external one.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::profile::{Profiles, TerminalZone};
use super::publish::{AckedPublisher, BrokerLogin};
use super::settings::Jt808Settings;
use crate::configuration::{MqttUrl, Settings};
use crate::metrics::Metrics;
use crate::store::Store;

/// What every connection reads.
pub struct Shared {
    pub settings: Jt808Settings,
    pub zone: TerminalZone,
    pub profiles: Profiles,
    pub topic_prefix: String,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub publisher: AckedPublisher,
    /// Set when the broker's acknowledgement is not durable (embedded).
    pub commits: Option<Arc<super::durable::CommitWaiters>>,
    pub stop: watch::Receiver<bool>,
}

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    pub publisher: AckedPublisher,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Binds `listen` and serves terminals until `stop` turns true.
    /// `committed`: ingest's commits, when the broker is the embedded one
    /// and terminals are to be answered only once their fixes are stored.
    pub async fn start(
        listen: &str,
        settings: &Settings,
        broker: MqttUrl,
        store: Store,
        metrics: Arc<Metrics>,
        committed: Option<&tokio::sync::broadcast::Sender<u64>>,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Gateway> {
        let j = settings.jt808.clone();
        j.check()?;
        let zone = TerminalZone::parse(&j.time_zone).map_err(anyhow::Error::msg)?;
        let addr = crate::configuration::parse_socket_addr(listen).context("jt808.listen")?;
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen for JT/T 808 terminals on {addr} (change it with --jt808-listen ADDR)")
        })?;
        let addr = listener.local_addr()?;
        let client_id = match &j.mqtt_client_id {
            Some(id) => id.clone(),
            None => format!(
                "{}-jt808-{}-{}",
                settings.mqtt_client_id(),
                std::process::id(),
                &crate::auth::new_token()?[3..11]
            ),
        };
        let publisher = AckedPublisher::start(BrokerLogin {
            url: broker,
            client_id,
            username: j.mqtt_username.clone(),
            password: j.mqtt_password.clone(),
        });
        let commits = match committed {
            Some(c) => Some(super::durable::CommitWaiters::start(
                c,
                crate::identity::BucketSet::parse(&settings.mqtt.buckets)?,
            )),
            None => None,
        };
        let limit = Arc::new(Semaphore::new(j.max_connections));
        let shared = Arc::new(Shared {
            profiles: Profiles::from_settings(&j),
            settings: j,
            zone,
            topic_prefix: settings.mqtt.topic_prefix.clone(),
            store,
            metrics,
            publisher: publisher.clone(),
            commits,
            stop: stop.clone(),
        });
        tracing::info!(%addr, "JT/T 808 gateway listening");
        let task = tokio::spawn(accept_loop(listener, shared, limit, stop));
        Ok(Gateway {
            addr,
            publisher,
            task,
        })
    }

    /// Waits until the gateway stopped accepting (after `stop`).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    limit: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: pause, do not spin.
                tracing::warn!(error = %e, "JT/T 808 gateway cannot accept");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            shared
                .metrics
                .jt808_connections_refused
                .fetch_add(1, Relaxed);
            tracing::warn!(%peer, max = shared.settings.max_connections, "JT/T 808 connection refused: at the connection limit");
            drop(stream);
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            shared.metrics.jt808_connections.fetch_add(1, Relaxed);
            super::connection::serve(stream, peer, shared.clone()).await;
            shared.metrics.jt808_connections.fetch_sub(1, Relaxed);
            drop(permit);
        });
    }
}

//! Publishes alerts to the broker with a client of its own, so alerts never
//! wait behind telemetry.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Alert;
use crate::configuration::{MqttLogin, MqttUrl};
use crate::metrics::Metrics;

pub fn spawn_mqtt_publisher(
    broker: &MqttUrl,
    client_id: &str,
    prefix: &str,
    login: Option<&MqttLogin>,
    mut rx: mpsc::Receiver<Arc<Alert>>,
    metrics: Arc<Metrics>,
) -> JoinHandle<()> {
    let mut opts = MqttOptions::new(
        format!("{client_id}-alerts"),
        broker.host.clone(),
        broker.port,
    );
    opts.set_keep_alive(Duration::from_secs(30))
        .set_request_channel_capacity(10_000);
    if let Some(l) = login {
        opts.set_credentials(l.username.clone(), l.password.clone());
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
    let poller = tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            match eventloop.poll().await {
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "alert publisher lost the broker");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    });
    let prefix = prefix.to_string();
    tokio::spawn(async move {
        while let Some(alert) = rx.recv().await {
            let payload = match serde_json::to_vec(&*alert) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode an alert");
                    continue;
                }
            };
            for dept in &alert.departments {
                let topic = format!("{prefix}/alerts/{dept}");
                match client
                    .publish(topic, QoS::AtLeastOnce, false, payload.clone())
                    .await
                {
                    Ok(()) => {
                        metrics.alerts_published.fetch_add(1, Relaxed);
                    }
                    Err(e) => tracing::error!(error = %e, "cannot queue an alert for the broker"),
                }
            }
        }
        // Give queued alerts a moment to leave before the poller goes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        poller.abort();
    })
}

//! Builds the running service from [`Settings`]: store, broker, ingest and
//! HTTP, in that order. `main` and the tests both start muckwatch through
//! [`Application::build`], so tests exercise exactly what users run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::alerts::{spawn_mqtt_publisher, AlertHub};
use crate::api::{self, AppState};
use crate::broker;
use crate::configuration::{parse_socket_addr, MqttUrl, Settings};
use crate::geofence::{spawn_reloader, FenceHandle, FenceSet};
use crate::ingest::{self, IngestConfig, IngestTasks};
use crate::metrics::Metrics;
use crate::pipeline::{Detection, Outputs};
use crate::registry::Registry;
use crate::rules::Rules;
use crate::store::Store;

pub struct Application {
    pub http_addr: SocketAddr,
    /// The broker muckwatch consumes from (embedded or external).
    pub mqtt: MqttUrl,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub fences: FenceHandle,
    listener: TcpListener,
    router: axum::Router,
    shutdown: watch::Sender<bool>,
    ingest: IngestTasks,
    detection: Detection,
    alert_publisher: tokio::task::JoinHandle<()>,
}

/// Stops a running [`Application`] gracefully.
#[derive(Clone)]
pub struct Shutdown(watch::Sender<bool>);

impl Shutdown {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let tz = settings.city_timezone()?;
        let store = Store::connect(&settings.database.url).await?;
        tracing::info!(url = %settings.database.url, "database ready");
        let registry = Arc::new(Registry::new(
            store.vehicles().await?,
            store.all_permits().await?,
        ));
        let metrics = Arc::new(Metrics::default());
        let fences = FenceHandle::new(load_fences(&settings.geofences.dir)?);
        spawn_reloader(
            fences.clone(),
            settings.geofences.dir.clone(),
            Duration::from_secs(settings.geofences.reload_poll_s.max(1)),
        );

        let mqtt = match &settings.mqtt.url {
            Some(url) => MqttUrl::parse(url)?,
            None => {
                let listen = parse_socket_addr(&settings.mqtt.listen)?;
                let addr = broker::start_embedded(listen).await?;
                tracing::info!(%addr, "embedded MQTT broker listening");
                let host = if addr.ip().is_unspecified() {
                    "127.0.0.1".to_string()
                } else {
                    addr.ip().to_string()
                };
                MqttUrl {
                    host,
                    port: addr.port(),
                }
            }
        };

        let rules = Arc::new(Rules::new(settings.rules.clone(), tz));
        let shards = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let hub = AlertHub::default();
        let (alerts_tx, alerts_rx) = tokio::sync::mpsc::channel(10_000);
        let alert_publisher = spawn_mqtt_publisher(
            &mqtt,
            &settings.mqtt.client_id,
            &settings.mqtt.topic_prefix,
            alerts_rx,
            metrics.clone(),
        );
        let outputs = Outputs {
            store: store.clone(),
            metrics: metrics.clone(),
            routing: settings.cases.routing().map_err(anyhow::Error::msg)?,
            merge_window_ms: settings.cases.merge_window_ms(),
            fences: fences.clone(),
            tz,
            hub: hub.clone(),
            mqtt: Some(alerts_tx),
        };
        let (detection_input, detection) =
            Detection::spawn(rules, registry.clone(), outputs, shards);
        let buckets = crate::ingest::BucketSet::parse(&settings.mqtt.buckets)?;
        let warm_window = settings.ingest.warm_up_s as i64 * 1000;
        let warmed = crate::pipeline::warm_up(
            &store,
            &detection_input,
            |d| buckets.contains(d.default_bucket()),
            warm_window,
        )
        .await?;
        if warmed > 0 {
            tracing::info!(fixes = warmed, "rebuilt vehicle state from stored fixes");
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        if settings.ingest.retention_days > 0 {
            spawn_retention(
                store.clone(),
                settings.ingest.retention_days,
                shutdown.subscribe(),
            );
        }
        spawn_registry_refresh(
            store.clone(),
            registry.clone(),
            Duration::from_secs(settings.ingest.registry_refresh_s.max(1)),
            shutdown.subscribe(),
        );
        let ingest = ingest::spawn(
            IngestConfig::new(&settings, mqtt.clone())?,
            store.clone(),
            metrics.clone(),
            registry.clone(),
            Some(detection_input),
            shutdown_rx,
        );

        let http = parse_socket_addr(&settings.http.addr)?;
        let listener = TcpListener::bind(http).await.with_context(|| {
            format!("cannot listen for HTTP on {http} (change it with --http ADDR)")
        })?;
        let http_addr = listener.local_addr()?;
        tracing::info!(addr = %http_addr, "HTTP API listening");
        let state = AppState {
            store: store.clone(),
            metrics: metrics.clone(),
            registry: registry.clone(),
            fences: fences.clone(),
            hub,
            shutdown: shutdown.subscribe(),
            tz,
        };
        let router = api::router(state);
        Ok(Application {
            http_addr,
            mqtt,
            store,
            metrics,
            registry,
            fences,
            listener,
            router,
            shutdown,
            ingest,
            detection,
            alert_publisher,
        })
    }

    pub fn shutdown_handle(&self) -> Shutdown {
        Shutdown(self.shutdown.clone())
    }

    /// Waits until the broker has confirmed the telemetry subscription.
    pub async fn wait_subscribed(&self, limit: Duration) -> anyhow::Result<()> {
        let mut rx = self.ingest.subscribed.clone();
        tokio::time::timeout(limit, rx.wait_for(|s| *s))
            .await
            .map_err(|_| anyhow::anyhow!("no MQTT subscription within {limit:?}"))?
            .map_err(|_| anyhow::anyhow!("ingest stopped before subscribing"))?;
        Ok(())
    }

    /// Serves until shut down, then lets the writer commit what was read.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let mut stop = self.shutdown.subscribe();
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
            .context("HTTP server failed")?;
        tracing::info!("HTTP stopped; flushing ingest");
        let _ = self.ingest.mqtt.await;
        let _ = self.ingest.writer.await;
        self.detection.finish().await;
        let _ = self.alert_publisher.await;
        Ok(())
    }
}

/// The fences at start. A bad file stops the start (there is no previous
/// set to keep); a missing directory is an empty city, logged, and watched.
pub fn load_fences(dir: &std::path::Path) -> anyhow::Result<FenceSet> {
    if !dir.is_dir() {
        tracing::warn!(dir = %dir.display(), "geofence directory does not exist; no fences loaded");
        return Ok(FenceSet::empty());
    }
    let set = FenceSet::load_dir(dir).map_err(|e| anyhow::anyhow!("geofences: {e}"))?;
    tracing::info!(dir = %dir.display(), fences = set.len(), "geofences loaded");
    Ok(set)
}

/// Re-reads vehicles and permits now and then: another instance (or an
/// administrator on another instance) may have registered some.
fn spawn_registry_refresh(
    store: Store,
    registry: Arc<Registry>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            match (store.vehicles().await, store.all_permits().await) {
                (Ok(v), Ok(p)) => registry.replace_all(v, p),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot refresh vehicles and permits")
                }
            }
        }
    });
}

/// Deletes raw fixes past the retention period once an hour; evidence of
/// violations stays with its case.
fn spawn_retention(store: Store, days: u64, mut stop: watch::Receiver<bool>) {
    const EVIDENCE_MARGIN_MS: i64 = 10 * 60_000;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            let cutoff = chrono::Utc::now().timestamp_millis() - days as i64 * 86_400_000;
            match store.prune_fixes(cutoff, EVIDENCE_MARGIN_MS).await {
                Ok(n) => tracing::info!(deleted = n, days, "pruned raw fixes past retention"),
                Err(e) => tracing::warn!(error = %e, "cannot prune old fixes"),
            }
        }
    });
}

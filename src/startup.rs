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
use crate::geofence::{load_at_start, spawn_reloader, FenceHandle};
use crate::ingest::{self, IngestConfig, IngestTasks};
use crate::metrics::Metrics;
use crate::pipeline::{Detection, DetectionInput, Outputs};
use crate::registry::Registry;
use crate::rules::Rules;
use crate::store::{redact_url, Store};

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
    /// Starts every part, in the order data flows back from the outputs:
    /// the store, what detection reads (vehicles, fences), the broker,
    /// detection with its outputs, the background tasks, ingest, HTTP.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let tz = settings.city_timezone()?;
        let store = open_store(&settings).await?;
        let registry = load_registry(&store).await?;
        let metrics = Arc::new(Metrics::default());
        let fences = watch_fences(&settings)?;
        let mqtt = start_broker(&settings).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let hub = AlertHub::default();
        let (alerts_tx, alerts_rx) = tokio::sync::mpsc::channel(10_000);
        let alert_publisher = spawn_mqtt_publisher(
            &mqtt,
            &settings.mqtt_client_id(),
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
            shutdown: shutdown_rx.clone(),
            grace_ends: Default::default(),
        };
        let (detection_input, detection) =
            start_detection(&settings, &store, &registry, outputs).await?;
        spawn_maintenance(
            store.clone(),
            settings.ingest.retention_days,
            shutdown.subscribe(),
        );
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
        let listener = bind_http(&settings).await?;
        let http_addr = listener.local_addr()?;
        let router = api::router(AppState {
            store: store.clone(),
            metrics: metrics.clone(),
            registry: registry.clone(),
            fences: fences.clone(),
            hub,
            shutdown: shutdown.subscribe(),
            tz,
        });
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

/// Opens (and migrates) the database.
async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database.url).await?;
    tracing::info!(url = %redact_url(&settings.database.url), "database ready");
    Ok(store)
}

/// The vehicles and permits the hot path looks fixes up in.
async fn load_registry(store: &Store) -> anyhow::Result<Arc<Registry>> {
    Ok(Arc::new(Registry::new(
        store.vehicles().await?,
        store.all_permits().await?,
    )))
}

/// The fences in force, reloaded when their files change.
fn watch_fences(settings: &Settings) -> anyhow::Result<FenceHandle> {
    let fences = FenceHandle::new(load_at_start(&settings.geofences.dir)?);
    spawn_reloader(
        fences.clone(),
        settings.geofences.dir.clone(),
        Duration::from_secs(settings.geofences.reload_poll_s.max(1)),
    );
    Ok(fences)
}

/// The broker to consume from: the configured one, or the embedded one
/// started here.
async fn start_broker(settings: &Settings) -> anyhow::Result<MqttUrl> {
    if let Some(url) = &settings.mqtt.url {
        let client_id = settings.mqtt_client_id();
        if settings.mqtt_persistent_session() {
            tracing::info!(%client_id, "persistent MQTT session: what trucks publish while muckwatch is down is delivered after it starts");
        } else {
            tracing::warn!(%client_id, "mqtt.persistent_session = false with an external broker: what trucks publish while muckwatch is down or restarting is lost");
        }
        return MqttUrl::parse(url);
    }
    let listen = parse_socket_addr(&settings.mqtt.listen)?;
    let addr = broker::start_embedded(listen).await?;
    tracing::info!(%addr, "embedded MQTT broker listening");
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    Ok(MqttUrl {
        host,
        port: addr.port(),
    })
}

/// Detection, one shard per core, its vehicles' state rebuilt from the
/// fixes stored in the warm-up window (only the buckets this instance owns).
async fn start_detection(
    settings: &Settings,
    store: &Store,
    registry: &Arc<Registry>,
    outputs: Outputs,
) -> anyhow::Result<(DetectionInput, Detection)> {
    let rules = Arc::new(Rules::new(settings.rules.clone(), outputs.tz));
    let shards = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let (input, detection) = Detection::spawn(rules, registry.clone(), outputs, shards);
    let buckets = crate::ingest::BucketSet::parse(&settings.mqtt.buckets)?;
    let warmed = crate::pipeline::warm_up(
        store,
        &input,
        |d| buckets.contains(d.default_bucket()),
        settings.ingest.warm_up_s as i64 * 1000,
        settings.ingest.max_future_s as i64 * 1000,
    )
    .await?;
    if warmed > 0 {
        tracing::info!(fixes = warmed, "rebuilt vehicle state from stored fixes");
    }
    Ok((input, detection))
}

async fn bind_http(settings: &Settings) -> anyhow::Result<TcpListener> {
    let http = parse_socket_addr(&settings.http.addr)?;
    let listener = TcpListener::bind(http).await.with_context(|| {
        format!("cannot listen for HTTP on {http} (change it with --http ADDR)")
    })?;
    tracing::info!(addr = %listener.local_addr()?, "HTTP API listening");
    Ok(listener)
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

/// Days of `fixes` partitions made ahead (PostgreSQL).
const PARTITION_DAYS_AHEAD: u32 = 3;

/// Store upkeep, at start and then hourly: the partitions of the coming
/// days (PostgreSQL), and with a retention period, raw fixes past it
/// deleted (whole days on PostgreSQL) while violations' evidence stays.
fn spawn_maintenance(store: Store, retention_days: u64, mut stop: watch::Receiver<bool>) {
    const EVIDENCE_MARGIN_MS: i64 = 10 * 60_000;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            let now = chrono::Utc::now().timestamp_millis();
            if let Err(e) = store
                .prepare_fix_partitions(now, PARTITION_DAYS_AHEAD)
                .await
            {
                tracing::warn!(error = %e, "cannot make the partitions of the coming days");
            }
            if retention_days == 0 {
                continue;
            }
            let cutoff = now - retention_days as i64 * 86_400_000;
            match store.prune_fixes(cutoff, EVIDENCE_MARGIN_MS).await {
                Ok(n) => tracing::info!(
                    deleted = n,
                    days = retention_days,
                    "pruned raw fixes past retention"
                ),
                Err(e) => tracing::warn!(error = %e, "cannot prune old fixes"),
            }
        }
    });
}

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
use crate::configuration::{parse_socket_addr, MqttLogin, MqttUrl, Settings};
use crate::geofence::{load_at_start, spawn_reloader, FenceHandle};
use crate::ingest::{self, IngestConfig, IngestTasks};
use crate::metrics::Metrics;
use crate::mqtt_access::{generated_service_login, Gate};
use crate::pipeline::{Detection, DetectionInput, Outputs};
use crate::registry::Registry;
use crate::rules::Rules;
use crate::store::{redact_url, Store};

pub struct Application {
    pub http_addr: SocketAddr,
    /// The broker muckwatch consumes from (embedded or external).
    pub mqtt: MqttUrl,
    /// The login muckwatch's own MQTT clients use (generated for the
    /// embedded broker unless configured).
    pub mqtt_login: Option<MqttLogin>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub fences: FenceHandle,
    /// Where JT/T 808 terminals connect, when the gateway is on.
    pub jt808_addr: Option<SocketAddr>,
    jt808: Option<crate::jt808::Gateway>,
    listener: TcpListener,
    router: axum::Router,
    http_limits: crate::configuration::HttpLimits,
    shutdown: watch::Sender<bool>,
    ingest: IngestTasks,
    detection: Detection,
    alert_publisher: tokio::task::JoinHandle<()>,
    /// Outbound event delivery (and the pending count); end at shutdown.
    outbox: Vec<tokio::task::JoinHandle<()>>,
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
        let webhooks = settings.outbox.webhooks()?;
        let store = open_store(&settings)
            .await?
            .with_outbox(crate::outbox::Routes::new(tz, &webhooks));
        let registry = load_registry(&store).await?;
        let metrics = Arc::new(Metrics::default());
        let fences = watch_fences(&settings)?;
        let broker = start_broker(&settings, &store, &metrics).await?;
        let mqtt = broker.url.clone();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let hub = AlertHub::default();
        let (alerts_tx, alerts_rx) = tokio::sync::mpsc::channel(10_000);
        let alert_publisher = spawn_mqtt_publisher(
            &mqtt,
            &settings.mqtt_client_id(),
            &settings.mqtt.topic_prefix,
            broker.login.as_ref(),
            alerts_rx,
            metrics.clone(),
        );
        let outputs = Outputs {
            store: store.clone(),
            metrics: metrics.clone(),
            routing: settings.cases.routing().map_err(anyhow::Error::msg)?,
            merge_window_ms: settings.cases.merge_window_ms(),
            gap_silence_ms: settings.rules.gap_silence_s.saturating_mul(1000) as i64,
            deadlines: settings.cases.deadlines().map_err(anyhow::Error::msg)?,
            fences: fences.clone(),
            tz,
            hub: hub.clone(),
            mqtt: Some(alerts_tx),
            shutdown: shutdown_rx.clone(),
            grace_ends: Default::default(),
        };
        let (detection_input, detection) =
            start_detection(&settings, &store, &registry, outputs).await?;
        let outbox = crate::webhooks::spawn(
            store.clone(),
            metrics.clone(),
            webhooks,
            crate::webhooks::Pacing::from_settings(&settings.outbox),
            shutdown.subscribe(),
        )
        .await;
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
            IngestConfig::new(
                &settings,
                mqtt.clone(),
                broker.login.clone(),
                broker.embedded,
            )?,
            store.clone(),
            metrics.clone(),
            registry.clone(),
            Some(detection_input),
            shutdown_rx,
        );
        let jt808 = match &settings.jt808.listen {
            Some(listen) => Some(
                crate::jt808::Gateway::start(
                    listen,
                    &gateway_settings(&settings, broker.login.as_ref()),
                    mqtt.clone(),
                    store.clone(),
                    metrics.clone(),
                    // The embedded broker's PUBACK is not durable: wait for the commit.
                    settings.mqtt.url.is_none().then_some(&ingest.committed),
                    shutdown.subscribe(),
                )
                .await?,
            ),
            None => None,
        };
        let tokens = Arc::new(api::TokenCache::default());
        api::spawn_revocation_watch(store.clone(), tokens.clone(), shutdown.subscribe());
        let listener = bind_http(&settings).await?;
        let http_addr = listener.local_addr()?;
        let router = api::with_limits(
            api::router(AppState {
                store: store.clone(),
                metrics: metrics.clone(),
                registry: registry.clone(),
                fences: fences.clone(),
                hub,
                shutdown: shutdown.subscribe(),
                tz,
                mqtt: broker.gate.clone(),
                routing: settings.cases.routing().map_err(anyhow::Error::msg)?,
                live: detection.live(),
                buckets: crate::ingest::BucketSet::parse(&settings.mqtt.buckets)?,
                credit: Arc::new(settings.credit.scheme().map_err(anyhow::Error::msg)?),
                tokens: tokens.clone(),
                reads: Arc::new(api::ReadCache::new(Duration::from_millis(
                    settings.http.read_cache_ms,
                ))),
            }),
            settings.http.limits(),
        );
        Ok(Application {
            http_addr,
            mqtt,
            mqtt_login: broker.login.clone(),
            store,
            metrics,
            registry,
            fences,
            jt808_addr: jt808.as_ref().map(|g| g.addr),
            jt808,
            listener,
            router,
            http_limits: settings.http.limits(),
            shutdown,
            ingest,
            detection,
            alert_publisher,
            outbox,
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
        api::serve(self.listener, self.router, self.http_limits, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
        if let Some(g) = self.jt808 {
            g.stopped().await;
        }
        tracing::info!("HTTP stopped; flushing ingest");
        let _ = self.ingest.mqtt.await;
        let _ = self.ingest.writer.await;
        self.detection.finish().await;
        let _ = self.alert_publisher.await;
        for t in self.outbox {
            let _ = t.await;
        }
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

/// The broker muckwatch consumes from, and the login its own clients use.
struct Broker {
    url: MqttUrl,
    login: Option<MqttLogin>,
    embedded: bool,
    /// The access rules (also answered over HTTP for external brokers).
    gate: Arc<Gate>,
}

/// The configured broker, or the embedded one started here (requiring
/// credentials when asked to, and always off loopback).
async fn start_broker(
    settings: &Settings,
    store: &Store,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Broker> {
    if let Some(url) = &settings.mqtt.url {
        let client_id = settings.mqtt_client_id();
        if settings.mqtt_persistent_session() {
            tracing::info!(%client_id, "persistent MQTT session: what trucks publish while muckwatch is down is delivered after it starts");
        } else {
            tracing::warn!(%client_id, "mqtt.persistent_session = false with an external broker: what trucks publish while muckwatch is down or restarting is lost");
        }
        let login = settings.mqtt_login();
        return Ok(Broker {
            url: MqttUrl::parse(url)?,
            gate: Arc::new(Gate::new(
                true,
                login.clone(),
                &settings.mqtt.topic_prefix,
                Some(store.clone()),
            )),
            login,
            embedded: false,
        });
    }
    let listen = parse_socket_addr(&settings.mqtt.listen)?;
    let login = match settings.mqtt_login() {
        Some(l) => l,
        None => generated_service_login(&settings.mqtt.username)?,
    };
    let required = settings.mqtt_auth_required();
    let gate = Arc::new(Gate::new(
        required,
        Some(login.clone()),
        &settings.mqtt.topic_prefix,
        Some(store.clone()),
    ));
    let addr = broker::start_embedded(
        listen,
        settings.broker_config(),
        gate.clone(),
        metrics.clone(),
    )
    .await?;
    tracing::info!(%addr, auth = required, "embedded MQTT broker listening");
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    Ok(Broker {
        url: MqttUrl {
            host,
            port: addr.port(),
        },
        login: Some(login),
        embedded: true,
        gate,
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

/// The gateway inside `serve` logs in as muckwatch itself unless `[jt808]`
/// names a login of its own (needed once the broker requires authentication).
fn gateway_settings(settings: &Settings, service: Option<&MqttLogin>) -> Settings {
    let mut s = settings.clone();
    if let (None, Some(login)) = (&s.jt808.mqtt_username, service) {
        s.jt808.mqtt_username = Some(login.username.clone());
        s.jt808.mqtt_password = Some(login.password.clone());
    }
    s
}

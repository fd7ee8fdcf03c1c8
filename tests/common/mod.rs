//! Test harness: starts muckwatch exactly as `serve` does (through
//! `Application::build`) on free ports with its own SQLite file, and talks
//! to it over real MQTT and real HTTP.
#![allow(dead_code)]

pub mod db;
pub mod http;
pub mod untrusted;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use muckwatch::auth::{new_token, token_hash, Role};
use muckwatch::configuration::{MqttUrl, Settings};
use muckwatch::startup::{Application, Shutdown};
use muckwatch::store::Store;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::Value;
use tokio::task::JoinHandle;

#[allow(unused_imports)]
pub use http::{http, http_status_only, Response, SseClient};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{n}-{}",
        std::process::id(),
        nanos % 1_000_000_000
    )
}

pub fn temp_db() -> PathBuf {
    let dir = std::env::temp_dir().join("muckwatch-tests");
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(format!("{}.db", unique("db")))
}

/// Settings for a test instance: embedded broker and HTTP on free ports.
pub fn test_settings(db: &std::path::Path) -> Settings {
    let mut s = Settings::default();
    s.database.url = format!("sqlite://{}", db.display());
    s.mqtt.listen = "127.0.0.1:0".into();
    s.http.addr = "127.0.0.1:0".into();
    s.ingest.batch_max_wait_ms = 10;
    s
}

pub struct TestApp {
    pub http: SocketAddr,
    pub mqtt: MqttUrl,
    pub db: PathBuf,
    pub prefix: String,
    pub store: Store,
    pub admin: String,
    /// The JT/T 808 gateway's address, when the settings turned it on.
    pub jt808: Option<SocketAddr>,
    shutdown: Shutdown,
    handle: JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    let db = temp_db();
    spawn_with(test_settings(&db)).await
}

pub async fn spawn_with(settings: Settings) -> TestApp {
    let db = PathBuf::from(settings.database.url.trim_start_matches("sqlite://"));
    let prefix = settings.mqtt.topic_prefix.clone();
    let app = Application::build(settings)
        .await
        .expect("muckwatch starts");
    app.wait_subscribed(Duration::from_secs(10))
        .await
        .expect("subscribed");
    let http = app.http_addr;
    let mqtt = app.mqtt.clone();
    let store = app.store.clone();
    let jt808 = app.jt808_addr;
    let shutdown = app.shutdown_handle();
    let handle = tokio::spawn(app.run_until_stopped());
    let admin = create_token(&store, "admin").await;
    TestApp {
        http,
        mqtt,
        db,
        prefix,
        store,
        admin,
        jt808,
        shutdown,
        handle,
    }
}

pub async fn create_token(store: &Store, role: &str) -> String {
    let token = new_token().expect("token");
    let role = Role::parse(role).expect("role");
    store
        .create_token(&token_hash(&token), &role, 0)
        .await
        .expect("token stored");
    token
}

impl TestApp {
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.handle.await.expect("join").expect("clean stop");
    }

    pub async fn token(&self, role: &str) -> String {
        create_token(&self.store, role).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        http(self.http, "GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        http(self.http, "POST", path, token, Some(body.to_string())).await
    }

    pub async fn metric(&self, line_prefix: &str) -> f64 {
        let text = self.get("/metrics", None).await.body;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(line_prefix)
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("metric {line_prefix} not found in\n{text}"))
    }

    /// Registers a firm and a vehicle with the admin token.
    pub async fn register(&self, firm: &str, plate: &str, device: &str) {
        let r = self
            .post(
                "/api/v1/firms",
                Some(&self.admin),
                &serde_json::json!({"id": firm, "name": firm}),
            )
            .await;
        assert!(
            r.status == 201 || r.status == 409,
            "firm: {} {}",
            r.status,
            r.body
        );
        let r = self
            .post(
                "/api/v1/vehicles",
                Some(&self.admin),
                &serde_json::json!({"plate": plate, "device_id": device, "firm_id": firm, "rated_load_t": 31.0}),
            )
            .await;
        assert_eq!(r.status, 201, "vehicle: {}", r.body);
    }

    pub async fn track(&self, plate: &str, token: &str) -> Response {
        self.get(
            &format!("/api/v1/vehicles/{}/track", encode(plate)),
            Some(token),
        )
        .await
    }

    pub async fn publisher(&self) -> Publisher {
        Publisher::connect(&self.mqtt, &self.prefix).await
    }
}

/// A device-side MQTT client.
pub struct Publisher {
    pub client: AsyncClient,
    pub prefix: String,
    task: JoinHandle<()>,
}

impl Publisher {
    pub async fn connect(broker: &MqttUrl, prefix: &str) -> Publisher {
        Self::connect_with(broker, prefix, true).await
    }

    /// A terminal that keeps its session: what it has not had acknowledged
    /// is sent again after a reconnect, as a careful terminal does.
    pub async fn connect_persistent(broker: &MqttUrl, prefix: &str) -> Publisher {
        Self::connect_with(broker, prefix, false).await
    }

    async fn connect_with(broker: &MqttUrl, prefix: &str, clean_session: bool) -> Publisher {
        let mut opts = MqttOptions::new(unique("pub"), broker.host.clone(), broker.port);
        opts.set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(8 << 20, 8 << 20)
            .set_clean_session(clean_session);
        let (client, mut eventloop) = AsyncClient::new(opts, 1000);
        let task = tokio::spawn(async move {
            loop {
                if eventloop.poll().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        Publisher {
            client,
            prefix: prefix.to_string(),
            task,
        }
    }

    /// Publishes to `{prefix}/pos/{bucket}/{device}` with the default bucket.
    pub async fn send(&self, device: &str, payload: impl Into<Vec<u8>>) {
        let d = muckwatch::fix::DeviceId::parse(device).expect("device id");
        let topic = muckwatch::ingest::position_topic(&self.prefix, &d);
        self.send_to(&topic, payload).await;
    }

    pub async fn send_to(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish queued");
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn fix_json(device: &str, ts: &str, lat: f64, lon: f64, speed: f64) -> String {
    serde_json::json!({"device_id": device, "ts": ts, "lat": lat, "lon": lon, "speed_kmh": speed,
                       "heading": 90, "acc": true, "tipper_up": false, "cover_closed": true, "load_t": 20.0})
    .to_string()
}

/// Retries `check` until it returns Some or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Percent-encodes a path segment (plates are often not ASCII).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Files a violation the way detection does (store + case), for tests that
/// start from "this truck was caught doing X".
pub async fn seed_violation(
    store: &Store,
    code: &str,
    plate: &str,
    device: &str,
    firm: &str,
    started: &str,
) -> (i64, i64) {
    let started_ms = chrono::DateTime::parse_from_rfc3339(started)
        .expect("time")
        .timestamp_millis();
    seed_violation_filed(
        store,
        code,
        plate,
        device,
        firm,
        started,
        started_ms,
        muckwatch::cases::Deadlines::default(),
    )
    .await
}

/// [`seed_violation`] with its checks filed at `filed_ms` (wall clock) under
/// `deadlines`.
#[allow(clippy::too_many_arguments)]
pub async fn seed_violation_filed(
    store: &Store,
    code: &str,
    plate: &str,
    device: &str,
    firm: &str,
    started: &str,
    filed_ms: i64,
    deadlines: muckwatch::cases::Deadlines,
) -> (i64, i64) {
    use muckwatch::cases::{overload_parties, Routing};
    use muckwatch::violation::ViolationCode;
    let code = ViolationCode::parse(code).expect("code");
    let started_ms = chrono::DateTime::parse_from_rfc3339(started)
        .expect("time")
        .timestamp_millis();
    let v = muckwatch::rules::Violation {
        code,
        plate: muckwatch::registry::Plate::parse(plate).expect("plate"),
        device_id: muckwatch::fix::DeviceId::parse(device).expect("device"),
        firm_id: muckwatch::registry::FirmId::parse(firm).expect("firm"),
        permit_id: None,
        started_ms,
        ended_ms: None,
        lat: 33.38,
        lon: 120.16,
        measured: 1.0,
        fences: vec![],
        uncertainty: None,
    };
    let id = store
        .insert_violation(&v, started_ms)
        .await
        .expect("violation stored");
    let routing = Routing::default();
    let parties = if code == ViolationCode::Overload {
        overload_parties(plate, firm, "s01")
    } else {
        vec![]
    };
    let case = muckwatch::store::NewViolationCase {
        violation_id: id,
        code,
        plate: v.plate.clone(),
        device_id: v.device_id,
        firm_id: v.firm_id.clone(),
        started_ms,
        merge_window_ms: 12 * 3_600_000,
        deadlines,
        departments: routing.departments(code).to_vec(),
        parties,
    };
    let case_id = store.file_violation(&case, filed_ms).await.expect("filed");
    (id, case_id)
}

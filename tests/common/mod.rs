//! Test harness: starts muckwatch exactly as `serve` does (through
//! `Application::build`) on free ports with its own SQLite file, and talks
//! to it over real MQTT and real HTTP.
#![allow(dead_code)]

pub mod db;

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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

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

pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
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

/// A minimal HTTP/1.1 client: one request per connection.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> Response {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to HTTP");
    let body = body.unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    stream
        .write_all(req.as_bytes())
        .await
        .expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Response { status, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Sends a request and returns only the status (for endless SSE responses).
pub async fn http_status_only(addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to HTTP");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .expect("send request");
    let mut buf = vec![0u8; 64];
    let mut got = Vec::new();
    while !got.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await.expect("read status");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
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
        departments: routing.departments(code).to_vec(),
        parties,
    };
    let case_id = store
        .file_violation(&case, started_ms)
        .await
        .expect("filed");
    (id, case_id)
}

/// A Server-Sent Events listener over a raw HTTP/1.1 connection.
pub struct SseClient {
    stream: tokio::net::TcpStream,
    buf: String,
}

impl SseClient {
    pub async fn connect(addr: SocketAddr, path: &str, token: &str) -> SseClient {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to HTTP");
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n\r\n");
        stream
            .write_all(req.as_bytes())
            .await
            .expect("send request");
        SseClient {
            stream,
            buf: String::new(),
        }
    }

    /// The next `(event, data)` within `limit`.
    pub async fn next_event(&mut self, limit: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line
                        .strip_prefix("event: ")
                        .or_else(|| line.strip_prefix("event:"))
                    {
                        event = e.trim().to_string();
                    } else if let Some(d) = line
                        .strip_prefix("data: ")
                        .or_else(|| line.strip_prefix("data:"))
                    {
                        data.push_str(d);
                    }
                }
                if !event.is_empty() || !data.is_empty() {
                    return Some((event, data));
                }
                continue;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let mut chunk = vec![0u8; 16 * 1024];
            let n = tokio::time::timeout(left, self.stream.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            // Chunk-size lines of the transfer encoding are dropped; events are text lines.
            let text = String::from_utf8_lossy(&chunk[..n]).replace("\r\n", "\n");
            for line in text.split_inclusive('\n') {
                let bare = line.trim_end();
                let is_chunk_size = !bare.is_empty()
                    && bare.len() <= 8
                    && bare.chars().all(|c| c.is_ascii_hexdigit());
                if !is_chunk_size {
                    self.buf.push_str(line);
                }
            }
        }
    }
}

//! Settings: defaults, then a TOML file, then `MUCKWATCH_*` environment
//! variables, then command-line flags (the last one wins).
//!
//! Every knob lives here so that the rest of the crate receives typed,
//! already-checked values and never reads the environment itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::identity::BucketSet;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub mqtt: MqttSettings,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub geofences: GeofenceSettings,
    pub city: CitySettings,
    pub ingest: IngestSettings,
    /// Violation thresholds (`[rules]`), the contract's defaults unless set.
    pub rules: crate::rules::RulesConfig,
    /// Joint cases: merge window and routing overrides (`[cases]`).
    pub cases: crate::cases::CaseSettings,
    /// Firm credit (`[credit]`): base, cycle, points per code, grades.
    pub credit: crate::credit::CreditSettings,
    /// Limits of the embedded MQTT broker (`[broker]`).
    pub broker: BrokerSettings,
    /// JT/T 808 terminals (`[jt808]`): the gateway, off unless `listen` is set.
    pub jt808: crate::jt808::Jt808Settings,
    /// Outbound events (`[outbox]`, `[[outbox.webhooks]]`): off with no webhook.
    pub outbox: crate::outbox::OutboxSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSettings {
    /// External broker (`mqtt://host:port`); `None` starts the embedded one.
    pub url: Option<String>,
    /// Where the embedded broker listens; port 0 picks a free port.
    pub listen: String,
    /// The MQTT client id; empty (the default): derived from the topic
    /// prefix and the bucket set ([`Settings::mqtt_client_id`]), stable
    /// across restarts and different for instances owning other buckets.
    pub client_id: String,
    /// Buckets this instance consumes, e.g. `"0-31"` or `"0,5,7-9"`; all by default.
    pub buckets: String,
    /// Keep the broker session (and queued QoS 1 fixes) across restarts.
    /// Unset: on with an external broker (what trucks publish while
    /// muckwatch restarts is delivered after it), off with the embedded one
    /// (it goes down with muckwatch anyway).
    pub persistent_session: Option<bool>,
    /// Topic root; the contract's is `muckwatch/v1`. Tests sharing a broker
    /// put a unique prefix in front of it.
    pub topic_prefix: String,
    /// Keep-alive of muckwatch's own MQTT clients, in seconds.
    pub keep_alive_s: u64,
    /// MQTT connections ingest consumes over, the instance's buckets split
    /// between them (a bucket, so a vehicle, on exactly one): multiplies the
    /// broker's in-flight window and decodes in parallel. 1..=64.
    pub connections: usize,
    /// The embedded broker refuses clients without valid credentials
    /// (always, when it listens on a non-loopback address).
    pub auth: bool,
    /// The credentials muckwatch's own MQTT clients log in with. With the
    /// embedded broker and no password set, a random one is made at start.
    pub username: String,
    pub password: Option<String>,
}

/// The embedded broker's caps and deadlines.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerSettings {
    pub max_connections: usize,
    /// Trucks behind a carrier's NAT share addresses: keep this generous.
    pub max_connections_per_address: usize,
    pub connect_timeout_s: u64,
    /// Given to clients asking for keep-alive 0 (none) or more than this.
    pub max_keep_alive_s: u64,
    pub max_filters_per_client: usize,
    /// Deliveries queued per subscriber, in messages and bytes.
    pub queue_messages: usize,
    pub queue_bytes: usize,
    /// QoS 1 deliveries sent to a subscriber and not yet acknowledged.
    pub inflight: usize,
    /// How long publishers wait on a subscriber whose queue is full before
    /// it is disconnected.
    pub slow_subscriber_ms: u64,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        let d = crate::broker::BrokerConfig::default();
        BrokerSettings {
            max_connections: d.max_connections,
            max_connections_per_address: d.max_connections_per_address,
            connect_timeout_s: d.connect_timeout.as_secs(),
            max_keep_alive_s: d.max_keep_alive.as_secs(),
            max_filters_per_client: d.max_filters,
            queue_messages: d.queue.messages,
            queue_bytes: d.queue.bytes,
            inflight: d.queue.inflight,
            slow_subscriber_ms: d.slow_subscriber.as_millis() as u64,
        }
    }
}

impl Settings {
    /// The embedded broker's configuration. Packets may be twice the
    /// payload limit (plus room for the topic), so that an oversized payload
    /// still reaches ingest and is counted as `oversized`; beyond that the
    /// connection is refused from the packet's header.
    pub fn broker_config(&self) -> crate::broker::BrokerConfig {
        let b = &self.broker;
        crate::broker::BrokerConfig {
            max_connections: b.max_connections,
            max_connections_per_address: b.max_connections_per_address,
            connect_timeout: std::time::Duration::from_secs(b.connect_timeout_s),
            max_keep_alive: std::time::Duration::from_secs(b.max_keep_alive_s),
            max_packet: self.ingest.max_payload_bytes.saturating_mul(2) + 64 * 1024,
            max_filters: b.max_filters_per_client,
            queue: crate::broker::QueueLimits {
                messages: b.queue_messages,
                bytes: b.queue_bytes,
                inflight: b.inflight,
            },
            slow_subscriber: std::time::Duration::from_millis(b.slow_subscriber_ms),
        }
    }

    /// Whether the embedded broker requires credentials: when asked, and
    /// always on a non-loopback address.
    pub fn mqtt_auth_required(&self) -> bool {
        self.mqtt.auth
            || parse_socket_addr(&self.mqtt.listen).map_or(true, |a| !a.ip().is_loopback())
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub url: String,
}

/// Shows the URL without its password: settings get logged and printed.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &crate::store::redact_url(&self.url))
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub addr: String,
    /// A client must have sent a request's whole head within this time.
    pub header_read_timeout_s: u64,
    /// A handler must have answered (its head; streams go on) within this time.
    pub request_timeout_s: u64,
    /// Requests in progress at once; more get 503 `busy`.
    pub max_concurrent_requests: usize,
    /// At shutdown, requests in progress get this long to finish.
    pub shutdown_grace_s: u64,
    /// The officers' reads (case and violation lists, a case, statistics,
    /// the live map) are answered once and shared for at most this long
    /// while their data is unchanged; this instance's own writes show at
    /// once, other instances' within this time. 0: no cache.
    pub read_cache_ms: u64,
}

/// `[http]` limits as the server takes them.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub header_read_timeout: std::time::Duration,
    pub request_timeout: std::time::Duration,
    pub max_concurrent_requests: usize,
    pub shutdown_grace: std::time::Duration,
}

impl HttpSettings {
    pub fn limits(&self) -> HttpLimits {
        use std::time::Duration;
        HttpLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_s.max(1)),
            request_timeout: Duration::from_secs(self.request_timeout_s.max(1)),
            max_concurrent_requests: self.max_concurrent_requests.max(1),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_s),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeofenceSettings {
    pub dir: PathBuf,
    /// How often the directory is polled for changed files, in seconds.
    pub reload_poll_s: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CitySettings {
    pub timezone: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Fixes written per database transaction, at most.
    pub batch_size: usize,
    /// How long a partly filled batch may wait before it is written.
    pub batch_max_wait_ms: u64,
    /// Larger MQTT payloads are rejected as `oversized`.
    pub max_payload_bytes: usize,
    /// Rejected messages kept for inspection; older ones are pruned.
    pub dead_letter_max: u64,
    /// Decoded fixes waiting for the writer; when full, MQTT reading pauses.
    pub queue_capacity: usize,
    /// Fixes stamped further than this ahead of the wall clock are refused
    /// as `bad_timestamp` (and those before 2000-01-01). Closer ones are
    /// stored; the rules hold back any more than `rules.clock_skew_s` ahead.
    pub max_future_s: u64,
    /// At start, rule state is rebuilt from the fixes stored this far back
    /// (event time) before the newest one.
    pub warm_up_s: u64,
    /// How often vehicles and permits are re-read from the database, to see
    /// what other instances registered.
    pub registry_refresh_s: u64,
    /// Raw fixes older than this many days are deleted (0 keeps them all);
    /// fixes within 10 minutes of a violation are evidence and stay.
    pub retention_days: u64,
}

impl Default for MqttSettings {
    fn default() -> Self {
        MqttSettings {
            url: None,
            listen: "127.0.0.1:1883".into(),
            client_id: String::new(),
            buckets: "0-63".into(),
            persistent_session: None,
            topic_prefix: "muckwatch/v1".into(),
            keep_alive_s: 30,
            connections: 1,
            auth: false,
            username: crate::mqtt_access::SERVICE_USERNAME.into(),
            password: None,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: "sqlite://muckwatch.db".into(),
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            addr: "127.0.0.1:8080".into(),
            header_read_timeout_s: 10,
            request_timeout_s: 60,
            max_concurrent_requests: 256,
            shutdown_grace_s: 10,
            read_cache_ms: 1000,
        }
    }
}

impl Default for GeofenceSettings {
    fn default() -> Self {
        GeofenceSettings {
            dir: PathBuf::from("geofences"),
            reload_poll_s: 5,
        }
    }
}

impl Default for CitySettings {
    fn default() -> Self {
        CitySettings {
            timezone: "Asia/Shanghai".into(),
        }
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            batch_size: 4000,
            batch_max_wait_ms: 50,
            max_payload_bytes: 512 * 1024,
            dead_letter_max: 10_000,
            queue_capacity: 20_000,
            max_future_s: 300,
            warm_up_s: 1800,
            registry_refresh_s: 30,
            retention_days: 0,
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub mqtt_url: Option<String>,
    pub mqtt_listen: Option<String>,
    pub database_url: Option<String>,
    pub http_addr: Option<String>,
    pub geofences_dir: Option<PathBuf>,
    pub buckets: Option<String>,
    /// `--mqtt-auth`: true turns authentication on; false leaves it as set.
    pub mqtt_auth: bool,
    pub jt808_listen: Option<String>,
}

/// Environment variables understood, and the setting each one sets.
pub const ENV_VARS: &[&str] = &[
    "MUCKWATCH_MQTT_URL",
    "MUCKWATCH_MQTT_LISTEN",
    "MUCKWATCH_MQTT_CLIENT_ID",
    "MUCKWATCH_MQTT_BUCKETS",
    "MUCKWATCH_MQTT_AUTH",
    "MUCKWATCH_MQTT_USERNAME",
    "MUCKWATCH_MQTT_PASSWORD",
    "MUCKWATCH_MQTT_TOPIC_PREFIX",
    "MUCKWATCH_DATABASE_URL",
    "MUCKWATCH_HTTP_ADDR",
    "MUCKWATCH_GEOFENCES_DIR",
    "MUCKWATCH_CITY_TIMEZONE",
    "MUCKWATCH_JT808_LISTEN",
    "MUCKWATCH_JT808_MQTT_USERNAME",
    "MUCKWATCH_JT808_MQTT_PASSWORD",
];

impl Settings {
    /// Layers defaults, `file`, the process environment and `flags`.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> anyhow::Result<Settings> {
        Self::load_with_env(file, flags, |k| std::env::var(k).ok())
    }

    pub fn load_with_env(
        file: Option<&Path>,
        flags: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Settings> {
        let mut s = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                Self::from_toml(&text).with_context(|| format!("config file {}", path.display()))?
            }
            None => Settings::default(),
        };
        if let Some(v) = env("MUCKWATCH_MQTT_URL") {
            s.mqtt.url = Some(v);
        }
        if let Some(v) = env("MUCKWATCH_MQTT_LISTEN") {
            s.mqtt.listen = v;
        }
        if let Some(v) = env("MUCKWATCH_MQTT_CLIENT_ID") {
            s.mqtt.client_id = v;
        }
        if let Some(v) = env("MUCKWATCH_MQTT_BUCKETS") {
            s.mqtt.buckets = v;
        }
        if let Some(v) = env("MUCKWATCH_MQTT_AUTH") {
            s.mqtt.auth = matches!(v.trim(), "1" | "true" | "yes" | "on");
        }
        if let Some(v) = env("MUCKWATCH_MQTT_USERNAME") {
            s.mqtt.username = v;
        }
        if let Some(v) = env("MUCKWATCH_MQTT_PASSWORD") {
            s.mqtt.password = Some(v);
        }
        if let Some(v) = env("MUCKWATCH_MQTT_TOPIC_PREFIX") {
            s.mqtt.topic_prefix = v;
        }
        if let Some(v) = env("MUCKWATCH_DATABASE_URL") {
            s.database.url = v;
        }
        if let Some(v) = env("MUCKWATCH_HTTP_ADDR") {
            s.http.addr = v;
        }
        if let Some(v) = env("MUCKWATCH_GEOFENCES_DIR") {
            s.geofences.dir = PathBuf::from(v);
        }
        if let Some(v) = env("MUCKWATCH_CITY_TIMEZONE") {
            s.city.timezone = v;
        }
        if let Some(v) = env("MUCKWATCH_JT808_LISTEN") {
            s.jt808.listen = Some(v);
        }
        if let Some(v) = env("MUCKWATCH_JT808_MQTT_USERNAME") {
            s.jt808.mqtt_username = Some(v);
        }
        if let Some(v) = env("MUCKWATCH_JT808_MQTT_PASSWORD") {
            s.jt808.mqtt_password = Some(v);
        }
        if let Some(v) = &flags.jt808_listen {
            s.jt808.listen = Some(v.clone());
        }
        if let Some(v) = &flags.mqtt_url {
            s.mqtt.url = Some(v.clone());
        }
        if let Some(v) = &flags.mqtt_listen {
            s.mqtt.listen = v.clone();
        }
        if let Some(v) = &flags.database_url {
            s.database.url = v.clone();
        }
        if let Some(v) = &flags.http_addr {
            s.http.addr = v.clone();
        }
        if let Some(v) = &flags.geofences_dir {
            s.geofences.dir = v.clone();
        }
        if let Some(v) = &flags.buckets {
            s.mqtt.buckets = v.clone();
        }
        if flags.mqtt_auth {
            s.mqtt.auth = true;
        }
        s.check()?;
        Ok(s)
    }

    pub fn from_toml(text: &str) -> anyhow::Result<Settings> {
        let s: Settings = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(s)
    }

    /// Refuses values that would only fail later, naming the setting.
    fn check(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.mqtt.url {
            MqttUrl::parse(url).context("mqtt.url")?;
        }
        parse_socket_addr(&self.mqtt.listen).context("mqtt.listen")?;
        parse_socket_addr(&self.http.addr).context("http.addr")?;
        BucketSet::parse(&self.mqtt.buckets).context("mqtt.buckets")?;
        self.city_timezone().context("city.timezone")?;
        self.jt808.check()?;
        self.outbox.webhooks()?;
        self.cases.routing().map_err(anyhow::Error::msg)?;
        self.cases.deadlines().map_err(anyhow::Error::msg)?;
        self.rules
            .validate()
            .map_err(|e| anyhow::anyhow!("rules: {e}"))?;
        if !(self.database.url.starts_with("sqlite:") || self.database.url.starts_with("postgres"))
        {
            bail!(
                "database.url: `{}` is neither sqlite://FILE nor postgres://...",
                crate::store::redact_url(&self.database.url)
            );
        }
        if self.ingest.batch_size == 0 || self.ingest.queue_capacity == 0 {
            bail!("ingest.batch_size and ingest.queue_capacity must be at least 1");
        }
        if self.mqtt.topic_prefix.is_empty()
            || self.mqtt.topic_prefix.contains(['+', '#'])
            || self.mqtt.topic_prefix.ends_with('/')
        {
            bail!("mqtt.topic_prefix must be a non-empty topic without wildcards or a trailing /");
        }
        let b = &self.broker;
        if b.max_connections == 0
            || b.max_connections_per_address == 0
            || b.max_filters_per_client == 0
            || b.queue_messages == 0
            || b.inflight == 0
            || b.max_keep_alive_s == 0
            || b.connect_timeout_s == 0
        {
            bail!("broker: every cap and deadline must be at least 1");
        }
        if !(1..=64).contains(&self.mqtt.connections) {
            bail!("mqtt.connections must be 1 to 64 (one per bucket at most)");
        }
        if self.mqtt.keep_alive_s < 2 {
            bail!("mqtt.keep_alive_s must be at least 2 (rumqttc's minimum is 1, plus room)");
        }
        if self.mqtt.username.is_empty() {
            bail!("mqtt.username must not be empty");
        }
        if self.mqtt.client_id.contains(|c: char| c.is_control()) {
            bail!("mqtt.client_id must not contain control characters");
        }
        Ok(())
    }

    /// The MQTT client id: the configured one, else `muckwatch-` and a hash
    /// of the topic prefix and the bucket set, so that it stays the same
    /// across restarts (a persistent session is found again) and instances
    /// that own different buckets (or serve another prefix) never share one.
    pub fn mqtt_client_id(&self) -> String {
        if !self.mqtt.client_id.is_empty() {
            return self.mqtt.client_id.clone();
        }
        let buckets = BucketSet::parse(&self.mqtt.buckets)
            .map(|b| b.mask())
            .unwrap_or(u64::MAX);
        let mut h = crc32fast::Hasher::new();
        h.update(self.mqtt.topic_prefix.as_bytes());
        format!("muckwatch-{:08x}-{buckets:016x}", h.finalize())
    }

    /// Whether the MQTT session persists: as configured, else with an
    /// external broker only.
    pub fn mqtt_persistent_session(&self) -> bool {
        self.mqtt
            .persistent_session
            .unwrap_or(self.mqtt.url.is_some())
    }

    pub fn city_timezone(&self) -> anyhow::Result<chrono_tz::Tz> {
        self.city
            .timezone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| anyhow::anyhow!("unknown time zone `{}`", self.city.timezone))
    }
}

pub fn parse_socket_addr(s: &str) -> anyhow::Result<SocketAddr> {
    s.parse::<SocketAddr>()
        .map_err(|_| anyhow::anyhow!("`{s}` is not an address like 127.0.0.1:1883"))
}

/// A username and password an MQTT client of muckwatch logs in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttLogin {
    pub username: String,
    pub password: String,
}

impl Settings {
    /// The login of muckwatch's own clients for an external broker, if a
    /// password is configured.
    pub fn mqtt_login(&self) -> Option<MqttLogin> {
        self.mqtt.password.as_ref().map(|p| MqttLogin {
            username: self.mqtt.username.clone(),
            password: p.clone(),
        })
    }
}

/// `mqtt://host:port` (port defaults to 1883).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttUrl {
    pub host: String,
    pub port: u16,
}

impl MqttUrl {
    pub fn parse(s: &str) -> anyhow::Result<MqttUrl> {
        let rest = s
            .strip_prefix("mqtt://")
            .or_else(|| s.strip_prefix("tcp://"))
            .ok_or_else(|| anyhow::anyhow!("`{s}` must start with mqtt://"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| anyhow::anyhow!("bad port in `{s}`"))?;
                (h, port)
            }
            None => (rest, 1883),
        };
        if host.is_empty() {
            bail!("no host in `{s}`");
        }
        Ok(MqttUrl {
            host: host.to_string(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_env_and_env_over_file() {
        let dir = std::env::temp_dir().join(format!("mw-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[http]\naddr = \"127.0.0.1:1\"\n[database]\nurl = \"sqlite://a.db\"\n",
        )
        .unwrap();
        let env = |k: &str| match k {
            "MUCKWATCH_DATABASE_URL" => Some("sqlite://b.db".to_string()),
            "MUCKWATCH_HTTP_ADDR" => Some("127.0.0.1:2".to_string()),
            _ => None,
        };
        let flags = Overrides {
            http_addr: Some("127.0.0.1:3".into()),
            ..Default::default()
        };
        let s = Settings::load_with_env(Some(&file), &flags, env).unwrap();
        assert_eq!(s.http.addr, "127.0.0.1:3");
        assert_eq!(s.database.url, "sqlite://b.db");
    }

    #[test]
    fn an_external_broker_keeps_its_session_under_a_stable_id_by_default() {
        let flags = Overrides {
            mqtt_url: Some("mqtt://127.0.0.1:1883".into()),
            ..Default::default()
        };
        let s = Settings::load_with_env(None, &flags, |_| None).unwrap();
        assert!(s.mqtt_persistent_session(), "durable by default");
        assert!(
            !Settings::default().mqtt_persistent_session(),
            "embedded broker"
        );
        let again = Settings::load_with_env(None, &flags, |_| None).unwrap();
        assert_eq!(s.mqtt_client_id(), again.mqtt_client_id(), "stable");
        assert!(s.mqtt_client_id().starts_with("muckwatch-"));
        let half = Overrides {
            buckets: Some("0-31".into()),
            ..flags.clone()
        };
        let other = Settings::load_with_env(None, &half, |_| None).unwrap();
        assert_ne!(s.mqtt_client_id(), other.mqtt_client_id(), "per bucket set");
        let off =
            Settings::from_toml("[mqtt]\npersistent_session = false\nclient_id = \"a\"\n").unwrap();
        assert!(!off.mqtt_persistent_session());
        assert_eq!(off.mqtt_client_id(), "a");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Settings::from_toml("[mqtt]\nurll = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("urll"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_the_setting_name() {
        let flags = Overrides {
            mqtt_url: Some("http://x".into()),
            ..Default::default()
        };
        let err = format!(
            "{:#}",
            Settings::load_with_env(None, &flags, |_| None).unwrap_err()
        );
        assert!(err.contains("mqtt.url"), "{err}");
        let flags = Overrides {
            buckets: Some("0-99".into()),
            ..Default::default()
        };
        let err = format!(
            "{:#}",
            Settings::load_with_env(None, &flags, |_| None).unwrap_err()
        );
        assert!(err.contains("mqtt.buckets"), "{err}");
    }

    #[test]
    fn mqtt_auth_is_forced_off_loopback() {
        let mut s = Settings::default();
        assert!(
            !s.mqtt_auth_required(),
            "loopback default: README commands work"
        );
        s.mqtt.listen = "0.0.0.0:1883".into();
        assert!(s.mqtt_auth_required());
        s.mqtt.listen = "[::1]:1883".into();
        assert!(!s.mqtt_auth_required());
        s.mqtt.auth = true;
        assert!(s.mqtt_auth_required());
        let flags = Overrides {
            mqtt_auth: true,
            ..Default::default()
        };
        let s = Settings::load_with_env(None, &flags, |_| None).unwrap();
        assert!(s.mqtt.auth);
    }

    #[test]
    fn mqtt_url_parses() {
        assert_eq!(
            MqttUrl::parse("mqtt://127.0.0.1:1884").unwrap(),
            MqttUrl {
                host: "127.0.0.1".into(),
                port: 1884
            }
        );
        assert_eq!(MqttUrl::parse("mqtt://broker").unwrap().port, 1883);
        assert!(MqttUrl::parse("127.0.0.1:1883").is_err());
    }
}

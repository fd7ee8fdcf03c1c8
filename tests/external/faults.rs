//! No loss under faults: muckwatch killed with SIGKILL, the broker
//! restarted, the database connection cut — every published fix is stored
//! exactly once and every violation is present once. Needs Mosquitto and
//! PostgreSQL on this machine; run by `.ci/run`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::db::{postgres_db, TestDb};
use crate::common::*;
use muckwatch::configuration::MqttUrl;
use muckwatch::fix::DeviceId;
use muckwatch::registry::{Firm, FirmId, Plate, Vehicle};
use muckwatch::store::Store;
use tokio::net::{TcpListener, TcpStream};

const DEVICES: usize = 6;
const FIXES_PER_DEVICE: i64 = 40;

/// Six trucks without permits at 70 km/h: SPEEDING and NO_PERMIT each.
fn fleet() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..FIXES_PER_DEVICE {
        for d in 0..DEVICES {
            let t = chrono::DateTime::parse_from_rfc3339("2021-06-01T22:00:00+08:00").unwrap()
                + chrono::Duration::seconds(10 * i);
            let device = format!("fault-{d}");
            out.push((
                device.clone(),
                fix_json(
                    &device,
                    &t.to_rfc3339(),
                    33.335 + d as f64 * 0.002,
                    120.02 + 0.00209 * i as f64,
                    70.0,
                ),
            ));
        }
    }
    out
}

async fn register(store: &Store) {
    let firm = Firm {
        id: FirmId::parse("firm-f").unwrap(),
        name: "F".into(),
    };
    store.create_firm(&firm, 0).await.unwrap();
    for d in 0..DEVICES {
        let v = Vehicle {
            plate: Plate::parse(&format!("苏J9000{d}")).unwrap(),
            device_id: DeviceId::parse(&format!("fault-{d}")).unwrap(),
            firm_id: firm.id.clone(),
            rated_load_t: 30.0,
        };
        store.create_vehicle(&v, 0).await.unwrap();
    }
}

/// Waits for every fix, then checks exactly-once storage and violations.
async fn assert_all_there_once(store: &Store) {
    let total = DEVICES as i64 * FIXES_PER_DEVICE;
    let n = eventually(Duration::from_secs(60), || async {
        let n = store.fix_count().await.unwrap();
        (n == total).then_some(n)
    })
    .await;
    assert_eq!(
        n,
        Some(total),
        "stored {} of {total} fixes",
        store.fix_count().await.unwrap()
    );
    // Violations are raised by detection after their fixes are stored (a
    // violation is stored with its case in one transaction): wait for them.
    let expected_count = DEVICES * 2;
    let _ = eventually(Duration::from_secs(30), || async {
        let (v, _) = store.violations(&Default::default(), 1000, 0).await.ok()?;
        (v.len() >= expected_count).then_some(())
    })
    .await;
    let (violations, _) = store
        .violations(&Default::default(), 1000, 0)
        .await
        .unwrap();
    let mut seen: Vec<(String, String)> = violations
        .iter()
        .map(|v| (v.plate.to_string(), v.code.to_string()))
        .collect();
    seen.sort();
    let mut expected: Vec<(String, String)> = (0..DEVICES)
        .flat_map(|d| {
            [
                (format!("苏J9000{d}"), "NO_PERMIT".to_string()),
                (format!("苏J9000{d}"), "SPEEDING".to_string()),
            ]
        })
        .collect();
    expected.sort();
    assert_eq!(seen, expected, "every violation present once");
}

/// Ends a persistent session on the shared broker, so test runs leave no
/// sessions (and queued messages) behind.
async fn forget_session(broker: &str, client_id: &str) {
    let url = MqttUrl::parse(broker).unwrap();
    let mut opts = rumqttc::MqttOptions::new(client_id, url.host, url.port);
    opts.set_clean_session(true);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 10);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(ev) = eventloop.poll().await {
            if matches!(ev, rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) {
                let _ = client.disconnect().await;
            }
            if matches!(ev, rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
}

fn mosquitto_url() -> String {
    std::env::var("MUCKWATCH_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `muckwatch serve` as a separate process, waiting until it is subscribed.
/// A `muckwatch serve` process, killed and reaped when dropped (also when a
/// test fails half way).
struct Serve(Child);

impl Serve {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start_serve(config: &std::path::Path) -> Serve {
    start_serve_with(&["serve", "--config", config.to_str().unwrap()], &[])
}

fn start_serve_with(args: &[&str], env: &[(&str, &str)]) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_muckwatch"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("subscribed") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    let serve = Serve(child);
    rx.recv_timeout(Duration::from_secs(30))
        .expect("serve subscribed");
    serve
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Mosquitto and PostgreSQL; run by .ci/run"]
async fn kill_9_in_the_middle_of_a_fleet_loses_and_duplicates_nothing() {
    let db: TestDb = postgres_db().await;
    register(&db.store).await;
    let prefix = format!("{}/muckwatch/v1", unique("kill"));
    let config = std::env::temp_dir().join(format!("{}.toml", unique("kill")));
    let client_id = unique("mw-kill");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nurl = \"{}\"\nclient_id = \"{}\"\npersistent_session = true\ntopic_prefix = \"{prefix}\"\n\
             [database]\nurl = \"{}\"\n[http]\naddr = \"127.0.0.1:0\"\n",
            mosquitto_url(),
            client_id,
            db.url
        ),
    )
    .unwrap();
    let mut serve = start_serve(&config);
    let broker = MqttUrl::parse(&mosquitto_url()).unwrap();
    let p = Publisher::connect(&broker, &prefix).await;
    let fixes = fleet();
    for (i, (device, fix)) in fixes.iter().enumerate() {
        p.send(device, fix.clone()).await;
        if i == fixes.len() / 2 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            serve.stop();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Published while muckwatch was dead: queued by the broker for its session.
    let mut serve = start_serve(&config);
    assert_all_there_once(&db.store).await;
    serve.stop();
    forget_session(&mosquitto_url(), &client_id).await;
}

/// The same with no configuration at all: `serve --mqtt-url` keeps its
/// session by default, under a client id derived from its buckets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Mosquitto and PostgreSQL; run by .ci/run"]
async fn kill_9_with_no_config_file_loses_and_duplicates_nothing() {
    let db: TestDb = postgres_db().await;
    register(&db.store).await;
    // only the topic root is our own (an environment variable, not a file),
    // so that other runs on the shared broker never see these fixes
    let prefix = format!("{}/muckwatch/v1", unique("kill-default"));
    let broker_url = mosquitto_url();
    let args = [
        "serve",
        "--mqtt-url",
        broker_url.as_str(),
        "--database-url",
        db.url.as_str(),
        "--http",
        "127.0.0.1:0",
    ];
    let env = [("MUCKWATCH_MQTT_TOPIC_PREFIX", prefix.as_str())];
    let mut serve = start_serve_with(&args, &env);
    let broker = MqttUrl::parse(&broker_url).unwrap();
    let p = Publisher::connect(&broker, &prefix).await;
    let fixes = fleet();
    for (i, (device, fix)) in fixes.iter().enumerate() {
        p.send(device, fix.clone()).await;
        if i == fixes.len() / 2 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            serve.stop(); // SIGKILL
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut serve = start_serve_with(&args, &env);
    assert_all_there_once(&db.store).await;
    serve.stop();
    let mut settings = muckwatch::configuration::Settings::default();
    settings.mqtt.topic_prefix = prefix;
    forget_session(&broker_url, &settings.mqtt_client_id()).await;
}

/// A private Mosquitto with persistence, so a restart keeps queued messages.
struct PrivateBroker {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl PrivateBroker {
    fn start() -> PrivateBroker {
        let dir = std::env::temp_dir().join(unique("mosq"));
        std::fs::create_dir_all(&dir).unwrap();
        // Started as root, mosquitto drops to its own user, which must be
        // able to write the persistence file.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut b = PrivateBroker {
            port: free_port(),
            dir,
            child: None,
        };
        b.restart();
        b
    }

    fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
        let conf = self.dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nmax_queued_messages 100000\n",
                self.port,
                self.dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .args(["-c", conf.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto runs");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private mosquitto did not start");
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Mosquitto and PostgreSQL; run by .ci/run"]
async fn a_broker_restart_during_ingest_loses_nothing() {
    let db = postgres_db().await;
    register(&db.store).await;
    let mut broker = PrivateBroker::start();
    let mut settings = test_settings(&temp_db());
    settings.database.url = db.url.clone();
    settings.mqtt.url = Some(broker.url());
    settings.mqtt.client_id = unique("mw-restart");
    settings.mqtt.persistent_session = Some(true);
    let app = spawn_with(settings).await;
    let p = Publisher::connect_persistent(&app.mqtt, &app.prefix).await;
    let fixes = fleet();
    for (i, (device, fix)) in fixes.iter().enumerate() {
        p.send(device, fix.clone()).await;
        if i == fixes.len() / 2 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            broker.restart();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_all_there_once(&app.store).await;
    assert!(app.metric("muckwatch_mqtt_reconnects_total").await >= 1.0);
    drop(p);
    app.stop().await;
}

/// A TCP proxy to PostgreSQL whose connections can be cut.
async fn cuttable_proxy(target: SocketAddr, cut: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if cut.load(Ordering::SeqCst) {
                continue; // refused while cut: the socket is dropped
            }
            let cut = cut.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                let pipe = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                let watch = async {
                    while !cut.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                };
                tokio::select! { _ = pipe => {}, _ = watch => {} }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Mosquitto and PostgreSQL; run by .ci/run"]
async fn a_database_connection_cut_during_ingest_loses_nothing() {
    let db = postgres_db().await;
    register(&db.store).await;
    let cut = Arc::new(AtomicBool::new(false));
    let proxy = cuttable_proxy("127.0.0.1:5432".parse().unwrap(), cut.clone()).await;
    let proxied = db.url.replacen("127.0.0.1:5432", &proxy.to_string(), 1);
    assert_ne!(
        proxied, db.url,
        "the test database URL goes through 127.0.0.1:5432"
    );
    let mut settings = test_settings(&temp_db());
    settings.database.url = proxied;
    settings.mqtt.url = Some(mosquitto_url());
    let client_id = unique("mw-cut");
    settings.mqtt.client_id = client_id.clone();
    settings.mqtt.persistent_session = Some(true);
    settings.mqtt.topic_prefix = format!("{}/muckwatch/v1", unique("cut"));
    let app = spawn_with(settings).await;
    let p = app.publisher().await;
    let fixes = fleet();
    for (i, (device, fix)) in fixes.iter().enumerate() {
        p.send(device, fix.clone()).await;
        if i == fixes.len() / 3 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            cut.store(true, Ordering::SeqCst);
        }
        if i == fixes.len() * 2 / 3 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            cut.store(false, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_all_there_once(&db.store).await;
    assert!(
        app.metric("muckwatch_store_write_errors_total").await >= 1.0,
        "the cut was felt"
    );
    drop(p);
    app.stop().await;
    forget_session(&mosquitto_url(), &client_id).await;
}

/// Shutdown with the database gone: the writer and the violation sink give
/// up within their grace instead of retrying forever, acknowledge nothing
/// they did not commit, and the next start (same persistent session) gets
/// every fix from the broker again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Mosquitto and PostgreSQL; run by .ci/run"]
async fn shutdown_with_the_database_gone_ends_and_loses_nothing() {
    let db = postgres_db().await;
    register(&db.store).await;
    let cut = Arc::new(AtomicBool::new(false));
    let proxy = cuttable_proxy("127.0.0.1:5432".parse().unwrap(), cut.clone()).await;
    let proxied = db.url.replacen("127.0.0.1:5432", &proxy.to_string(), 1);
    assert_ne!(
        proxied, db.url,
        "the test database URL goes through 127.0.0.1:5432"
    );
    let mut settings = test_settings(&temp_db());
    settings.database.url = proxied;
    settings.mqtt.url = Some(mosquitto_url());
    settings.mqtt.topic_prefix = format!("{}/muckwatch/v1", unique("gone"));
    // no client id, no session setting: the defaults are what is tested
    let client_id = settings.mqtt_client_id();
    let app = spawn_with(settings.clone()).await;
    let p = app.publisher().await;
    let fixes = fleet();
    let (before, after) = fixes.split_at(fixes.len() / 2);
    for (device, fix) in before {
        p.send(device, fix.clone()).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    cut.store(true, Ordering::SeqCst);
    for (device, fix) in after {
        p.send(device, fix.clone()).await;
    }
    let failing = eventually(Duration::from_secs(30), || async {
        let errors = app.metric("muckwatch_store_write_errors_total").await;
        (errors >= 1.0).then_some(())
    })
    .await;
    assert!(failing.is_some(), "the writer meets the cut");
    // a hang would never end; the writer's grace is 10 s and each attempt
    // waits at most the pool's 10 s acquire timeout
    let stopped = tokio::time::timeout(Duration::from_secs(90), app.stop()).await;
    assert!(stopped.is_ok(), "shutdown ended with the database gone");
    cut.store(false, Ordering::SeqCst);
    let again = spawn_with(settings).await;
    // Every fix once. A violation raised while the database was gone may be
    // missing (given up at shutdown, logged by name; the warm-up after the
    // restart does not raise again what it takes for raised before), but
    // none is there twice.
    let total = DEVICES as i64 * FIXES_PER_DEVICE;
    let n = eventually(Duration::from_secs(60), || async {
        let n = db.store.fix_count().await.unwrap();
        (n == total).then_some(n)
    })
    .await;
    assert_eq!(n, Some(total), "every fix stored once");
    let (violations, _) = db
        .store
        .violations(&Default::default(), 1000, 0)
        .await
        .unwrap();
    let mut seen: Vec<(String, String)> = violations
        .iter()
        .map(|v| (v.plate.to_string(), v.code.to_string()))
        .collect();
    let all = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), all, "no violation twice: {seen:?}");
    drop(p);
    again.stop().await;
    forget_session(&mosquitto_url(), &client_id).await;
}

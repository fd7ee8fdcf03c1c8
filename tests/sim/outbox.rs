//! Outbound events under faults, with a real local HTTP receiver: it refuses
//! the first deliveries, then goes away while a night's violations are
//! raised; muckwatch (`serve`, a separate process) is killed with SIGKILL
//! and started again; the receiver comes back on the same port (and
//! muckwatch is killed once more half way through the backlog). Every event
//! of the night arrives, each `id` once after de-duplication, in per-case
//! order, every signature valid.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::common::*;
use muckwatch::geofence::FenceSet;
use muckwatch::sim::{publish, seed, Fleet, PublishOptions, SimConfig};
use muckwatch::store::{CaseFilter, Store};

const SECRET: &str = "a shared secret for the night";
const REFUSED_FIRST: usize = 4;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    body: Bytes,
    signed_ok: bool,
    accepted: bool,
}

#[derive(Default)]
struct Log {
    hits: Vec<Hit>,
    /// How long each answer takes (a receiver doing some work).
    delay_ms: u64,
}

impl Log {
    fn accepted(&self) -> usize {
        self.hits.iter().filter(|h| h.accepted).count()
    }
}

/// The signature as a receiver checks it: its own HMAC of the raw body.
fn signature_ok(body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    want == hex
}

/// A webhook receiver on a fixed port: refuses (503) the first
/// `REFUSED_FIRST` deliveries it ever gets, accepts the rest. Stopping it
/// closes its listener and every open connection.
struct Receiver {
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(port: u16, log: Arc<Mutex<Log>>) -> Receiver {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("receiver: binding {port} again ({e})");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("receiver cannot bind {port}: {e}"),
            }
        };
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| receive(req, log.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { task }
    }

    /// Gone: the listener and every connection (dropping the JoinSet aborts them).
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn receive(
    req: Request<Incoming>,
    log: Arc<Mutex<Log>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = req
        .headers()
        .get("x-muckwatch-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let signed_ok = signature_ok(&body, &header);
    // Kept first, answered after some work: a sender killed meanwhile never
    // hears the answer and sends the event again.
    let (accepted, delay) = {
        let mut log = log.lock().unwrap();
        let accepted = log.hits.len() >= REFUSED_FIRST;
        log.hits.push(Hit {
            body,
            signed_ok,
            accepted,
        });
        (accepted, log.delay_ms)
    };
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let status = if accepted { 200 } else { 503 };
    Ok(Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap())
}

/// `muckwatch serve` as a separate process, SIGKILLed when dropped.
struct Serve {
    child: Child,
    http: SocketAddr,
    mqtt: SocketAddr,
}

impl Serve {
    fn start(config: &Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_muckwatch"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                for what in ["embedded MQTT broker listening", "HTTP API listening"] {
                    if line.contains(what) {
                        let addr = line
                            .split("addr=")
                            .nth(1)
                            .and_then(|a| a.split_whitespace().next())
                            .unwrap_or("")
                            .to_string();
                        let _ = tx.send((what, addr));
                    }
                }
                if line.contains("outbound event not delivered") {
                    eprintln!("serve: {line}");
                }
            }
        });
        let (mut http, mut mqtt) = (None, None);
        while http.is_none() || mqtt.is_none() {
            let (what, addr) = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("serve logs its addresses");
            let addr: SocketAddr = addr.parse().expect("an address");
            if what.starts_with("HTTP") {
                http = Some(addr);
            } else {
                mqtt = Some(addr);
            }
        }
        Serve {
            child,
            http: http.unwrap(),
            mqtt: mqtt.unwrap(),
        }
    }

    /// SIGKILL: no shutdown, no flush.
    fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    async fn metric(&self, name: &str) -> f64 {
        let text = http(self.http, "GET", "/metrics", None, None).await.body;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(f64::NAN)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config_file(db_url: &str, hook_port: u16) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", unique("outbox")));
    std::fs::write(
        &path,
        format!(
            "[mqtt]\nlisten = \"127.0.0.1:0\"\n[http]\naddr = \"127.0.0.1:0\"\n\
             [database]\nurl = \"{db_url}\"\n[ingest]\nbatch_max_wait_ms = 10\n\
             [outbox]\nmax_backoff_s = 1\nrequest_timeout_s = 2\npoll_ms = 200\n\
             [[outbox.webhooks]]\nurl = \"http://127.0.0.1:{hook_port}/muckwatch/events\"\n\
             secret = \"{SECRET}\"\n"
        ),
    )
    .unwrap();
    path
}

/// Moves every check of `case` to closed (check.changed ... case.closed).
async fn close_case(addr: SocketAddr, store: &Store, case: &Value) {
    let id = case["id"].as_i64().unwrap();
    for check in case["checks"].as_array().unwrap() {
        let dept = check["department"].as_str().unwrap();
        let token = create_token(store, &format!("dept:{dept}")).await;
        for body in [
            json!({"status": "investigating"}),
            json!({"status": "decided", "finding": "seen on the track"}),
            json!({"status": "closed"}),
        ] {
            let r = http(
                addr,
                "POST",
                &format!("/api/v1/cases/{id}/checks/{dept}"),
                Some(&token),
                Some(body.to_string()),
            )
            .await;
            assert_eq!(r.status, 200, "{dept}: {}", r.body);
        }
    }
}

/// The key events of one object are ordered by.
fn order_key(event: &Value) -> String {
    let data = &event["data"];
    match event["type"].as_str().unwrap() {
        "permit.changed" => format!("permit:{}", data["permit"]["id"].as_str().unwrap()),
        _ => match data["case_id"].as_i64() {
            Some(c) => format!("case:{c}"),
            None => format!("violation:{}", data["id"]),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_night_arrives_once_in_case_order_through_refusals_an_outage_and_kill_9() {
    let _night = crate::ONE_NIGHT_AT_A_TIME.lock().await;
    let url = format!("sqlite://{}", temp_db().display());
    let store = Store::connect(&url).await.unwrap();
    night_through_faults(&url, store).await;
}

/// The same on PostgreSQL (claims, leases and per-case order on a server
/// database); run by `.ci/run`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL; run by .ci/run"]
async fn on_postgres_every_event_of_a_night_arrives_once_in_case_order() {
    let _night = crate::ONE_NIGHT_AT_A_TIME.lock().await;
    let db = crate::common::db::postgres_db().await;
    night_through_faults(&db.url, db.store.clone()).await;
}

async fn night_through_faults(db_url: &str, store: Store) {
    let hook_port = free_port();
    let config = config_file(db_url, hook_port);
    let log = Arc::new(Mutex::new(Log::default()));
    let receiver = Receiver::start(hook_port, log.clone()).await;

    let serve = Serve::start(&config);
    let admin = create_token(&store, "admin").await;
    let city = Arc::new(FenceSet::load_dir(Path::new("geofences")).expect("the sample city"));
    let sim = SimConfig {
        seed: 11,
        trucks: 12,
        ..SimConfig::default()
    };
    let mut fleet = Fleet::plan(city, &sim).expect("fleet cast");
    seed::through_api(&format!("http://{}", serve.http), &admin, &fleet.seed)
        .await
        .expect("seeded through the API");
    let options = PublishOptions {
        host: serve.mqtt.ip().to_string(),
        port: serve.mqtt.port(),
        prefix: "muckwatch/v1".into(),
        qos: rumqttc::QoS::AtLeastOnce,
        batch: 1,
        speedup: None,
        rate: Some(2500.0),
        max_wall: None,
        progress: false,
        client_id: unique("sim"),
        login: None,
        jt808: None,
    };
    // The receiver refuses the first deliveries, accepts a few, then goes
    // away in the middle of the night.
    let outage = async {
        let _ = eventually(Duration::from_secs(60), || async {
            (log.lock().unwrap().accepted() >= 3).then_some(())
        })
        .await;
        receiver.stop().await;
    };
    let (sent, ()) = tokio::join!(publish(&mut fleet, &options), outage);
    let sent = sent.expect("the night is published");
    let refused_then = log.lock().unwrap().hits.len();
    let stored = eventually(Duration::from_secs(120), || async {
        let n = serve.metric("muckwatch_fixes_ingested_total").await;
        (n >= sent.fixes as f64).then_some(n)
    })
    .await;
    assert_eq!(stored, Some(sent.fixes as f64), "every fix stored");
    // Detection done: the outbox stops growing.
    let (mut last, mut settled) = (-1.0, false);
    for _ in 0..90 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let now = serve.metric("muckwatch_outbox_pending").await;
        if now == last && now > 0.0 {
            settled = true;
            break;
        }
        last = now;
    }
    assert!(settled, "the outbox settles with events waiting ({last})");
    // While the receiver is away, a case is worked to closed.
    let (cases, _) = store
        .cases(&CaseFilter::default(), 1, 0)
        .await
        .expect("cases");
    let case = cases.first().expect("the night opened cases");
    let case_json = http(
        serve.http,
        "GET",
        &format!("/api/v1/cases/{}", case.id),
        Some(&admin),
        None,
    )
    .await
    .json();
    close_case(serve.http, &store, &case_json).await;
    let undelivered = http(
        serve.http,
        "GET",
        "/api/v1/outbox?limit=5",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(undelivered.status, 200);
    assert!(undelivered.json()["total"].as_i64().unwrap() > 0);
    serve.kill_9();

    // Started again; the receiver comes back on the same port, slower, and
    // muckwatch is killed again in the middle of the backlog: what it had
    // sent but not yet marked is sent again once its lease runs out.
    let serve = Serve::start(&config);
    let before = {
        let mut log = log.lock().unwrap();
        log.delay_ms = 25;
        log.accepted()
    };
    let receiver = Receiver::start(hook_port, log.clone()).await;
    let half_way = eventually(Duration::from_secs(60), || async {
        (log.lock().unwrap().accepted() >= before + 20).then_some(())
    })
    .await;
    assert!(half_way.is_some(), "the backlog is being delivered");
    serve.kill_9();
    log.lock().unwrap().delay_ms = 0;
    let serve = Serve::start(&config);
    let drained = eventually(Duration::from_secs(120), || async {
        (serve.metric("muckwatch_outbox_pending").await == 0.0).then_some(())
    })
    .await;
    assert!(drained.is_some(), "every pending event delivered");
    let listed = http(serve.http, "GET", "/api/v1/outbox", Some(&admin), None).await;
    assert_eq!(listed.json()["total"], 0, "{}", listed.body);
    serve.kill_9();
    receiver.stop().await;

    // What the night left in the database, the events it must have produced.
    let (violations, _) = store
        .violations(&Default::default(), 100_000, 0)
        .await
        .unwrap();
    let (all_cases, case_total) = store.cases(&CaseFilter::default(), 1000, 0).await.unwrap();
    assert!(case_total < 1000);
    let (permits, _) = store.permits(&Default::default(), 1000, 0).await.unwrap();
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    for v in &violations {
        expected.insert(("violation.raised".into(), v.id.to_string()));
        if v.withdrawn {
            expected.insert(("violation.withdrawn".into(), v.id.to_string()));
        }
    }
    for c in &all_cases {
        expected.insert(("case.opened".into(), c.id.to_string()));
    }
    for p in &permits {
        expected.insert(("permit.changed".into(), p.id.as_str().to_string()));
    }
    let closed_checks = case_json["checks"].as_array().unwrap().len();

    // What arrived.
    let hits = log.lock().unwrap().hits.clone();
    assert!(refused_then > REFUSED_FIRST, "deliveries before the outage");
    let mut by_id: HashMap<String, Bytes> = HashMap::new();
    let mut first_arrivals: Vec<Value> = Vec::new();
    let mut accepted_ids = BTreeSet::new();
    for (i, h) in hits.iter().enumerate() {
        assert!(h.signed_ok, "hit {i}: the signature does not verify");
        let event: Value = serde_json::from_slice(&h.body).expect("a JSON event");
        let id = event["id"].as_str().expect("an id").to_string();
        if let Some(earlier) = by_id.get(&id) {
            assert_eq!(earlier, &h.body, "{id} sent again with other bytes");
        } else {
            by_id.insert(id.clone(), h.body.clone());
            first_arrivals.push(event.clone());
        }
        if h.accepted {
            accepted_ids.insert(id);
        }
    }
    assert_eq!(
        accepted_ids.len(),
        by_id.len(),
        "every event sent was in the end accepted (the refused ones again)"
    );
    let mut got: BTreeSet<(String, String)> = BTreeSet::new();
    let mut checks = 0;
    let mut closed = 0;
    for e in &first_arrivals {
        let data = &e["data"];
        let key = match e["type"].as_str().unwrap() {
            "violation.raised" | "violation.withdrawn" => data["id"].to_string(),
            "case.opened" => data["case_id"].to_string(),
            "permit.changed" => data["permit"]["id"].as_str().unwrap().to_string(),
            "check.changed" => {
                checks += 1;
                continue;
            }
            "case.closed" => {
                closed += 1;
                continue;
            }
            other => panic!("unknown event type {other}"),
        };
        assert!(
            got.insert((e["type"].as_str().unwrap().to_string(), key.clone())),
            "{} {key} has two ids",
            e["type"]
        );
    }
    assert_eq!(got, expected, "every event of the night, once");
    assert_eq!(checks, closed_checks * 3, "each check's three steps");
    assert_eq!(closed, 1, "the closed case");
    println!(
        "{} fixes, {} violations in {} cases, {} permits: {} events, {} deliveries ({} refused, {} before the outage, {} accepted twice)",
        sent.fixes,
        violations.len(),
        all_cases.len(),
        permits.len(),
        by_id.len(),
        hits.len(),
        hits.iter().filter(|h| !h.accepted).count(),
        refused_then,
        hits.iter().filter(|h| h.accepted).count() - accepted_ids.len()
    );

    // Per-case order: opened first, violations in the order filed, each
    // check's steps in order, closed last.
    let mut per_key: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in &first_arrivals {
        per_key.entry(order_key(e)).or_default().push(e);
    }
    for (key, events) in per_key {
        if !key.starts_with("case:") {
            continue;
        }
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types[0], "case.opened", "{key}: {types:?}");
        let raised: Vec<i64> = events
            .iter()
            .filter(|e| e["type"] == "violation.raised")
            .map(|e| e["data"]["id"].as_i64().unwrap())
            .collect();
        assert!(raised.windows(2).all(|w| w[0] < w[1]), "{key}: {raised:?}");
        for w in events.iter().filter(|e| e["type"] == "violation.withdrawn") {
            let at = |t: &str| {
                events
                    .iter()
                    .position(|e| e["type"] == t && e["data"]["id"] == w["data"]["id"])
            };
            assert!(at("violation.raised") < at("violation.withdrawn"), "{key}");
        }
        let mut steps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for e in events.iter().filter(|e| e["type"] == "check.changed") {
            steps
                .entry(e["data"]["department"].as_str().unwrap())
                .or_default()
                .push(e["data"]["status"].as_str().unwrap());
        }
        for (dept, s) in steps {
            assert_eq!(s, ["investigating", "decided", "closed"], "{key} {dept}");
        }
        if let Some(p) = types.iter().position(|t| *t == "case.closed") {
            assert_eq!(p, types.len() - 1, "{key}: closed last: {types:?}");
        }
    }
    let _ = std::fs::remove_file(&config);
}

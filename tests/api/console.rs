//! The web console: its static files and the endpoints it added
//! (`/api/v1/whoami`, `/api/v1/meta`, `GET /api/v1/vehicles`), and, `#[ignore]`d because it
//! needs Chromium and node (`.ci/run` installs them), the browser test in
//! `tests/browser/console.spec.mjs` against a live instance.

use std::io::BufRead;
use std::time::Duration;

use crate::common::*;
use serde_json::{json, Value};

mod fleet_map;

#[tokio::test]
async fn the_console_is_served_from_the_binary_without_a_token() {
    let app = spawn_app().await;
    let r = app.get("/", None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").starts_with("text/html"),
        "{:?}",
        r.headers
    );
    assert!(
        r.body.contains("/console/app.js") && r.body.contains("muckwatch"),
        "{}",
        r.body
    );
    for (file, ty) in [
        ("app.js", "text/javascript"),
        ("http.js", "text/javascript"),
        ("dom.js", "text/javascript"),
        ("labels.js", "text/javascript"),
        ("map.js", "text/javascript"),
        ("fleet.js", "text/javascript"),
        ("playback.js", "text/javascript"),
        ("applications.js", "text/javascript"),
        ("app.css", "text/css"),
    ] {
        let r = app.get(&format!("/console/{file}"), None).await;
        assert_eq!(r.status, 200, "{file}");
        assert!(
            r.header("content-type").starts_with(ty),
            "{file}: {:?}",
            r.headers
        );
        assert!(!r.body.is_empty());
    }
    assert_eq!(app.get("/console/secrets.txt", None).await.status, 404);
    assert_eq!(app.get("/console/../Cargo.toml", None).await.status, 404);
    app.stop().await;
}

#[tokio::test]
async fn whoami_names_the_role_of_a_valid_token() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/v1/whoami", None).await.status, 401);
    assert_eq!(app.get("/api/v1/whoami", Some("mw_nope")).await.status, 401);
    let police = app.token("dept:police").await;
    let me = app.get("/api/v1/whoami", Some(&police)).await.json();
    assert_eq!(me["role"], "dept:police");
    assert_eq!(me["department"], "police");
    assert_eq!(me["utc_offset"], "+08:00");
    let firm = app.token("firm:firm-w").await;
    let me = app.get("/api/v1/whoami", Some(&firm)).await.json();
    assert_eq!(
        (me["role"].as_str(), me["firm_id"].as_str()),
        (Some("firm:firm-w"), Some("firm-w"))
    );
    assert_eq!(
        app.get("/api/v1/whoami", Some(&app.admin)).await.json()["role"],
        "admin"
    );
    app.stop().await;
}

/// The console's labels and check steps come from the server, one place.
#[tokio::test]
async fn meta_gives_the_vocabulary_the_console_shows() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/v1/meta", None).await.status, 401);
    let firm = app.token("firm:firm-x").await;
    let m = app.get("/api/v1/meta", Some(&firm)).await.json();
    let codes: Vec<&str> = m["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 10);
    assert!(codes.contains(&"WRONG_DISPOSAL_SITE"));
    assert_eq!(
        m["codes"][0],
        json!({"code": "NO_PERMIT", "zh": "无证运输"})
    );
    assert_eq!(
        m["departments"][1],
        json!({"id": "police", "zh": "公安交警"})
    );
    assert_eq!(m["case_statuses"], json!(["open", "closed"]));
    assert_eq!(m["statuses"]["investigating"], "调查中");
    assert_eq!(m["statuses"]["revoked"], "吊销");
    assert_eq!(
        m["check_next"],
        json!({"pending": ["investigating"], "investigating": ["decided"], "decided": ["closed"], "closed": []})
    );
    assert_eq!(
        m["populations"][0],
        json!({"id": "firms", "zh": "运输企业"})
    );
    assert_eq!(
        m["inspection_results"],
        json!([{"id": "pass", "zh": "合格"}, {"id": "fail", "zh": "不合格"}])
    );
    app.stop().await;
}

#[tokio::test]
async fn the_fleet_list_has_newest_fixes_and_firms_see_only_their_own() {
    let app = spawn_app().await;
    app.register("firm-v1", "苏J71001", "dev-v1").await;
    app.register("firm-v2", "苏J71002", "dev-v2").await;
    let p = app.publisher().await;
    for (i, ts) in ["2021-06-01T22:00:00+08:00", "2021-06-01T22:00:10+08:00"]
        .iter()
        .enumerate()
    {
        p.send(
            "dev-v1",
            fix_json("dev-v1", ts, 33.3, 120.1 + i as f64 * 0.001, 20.0),
        )
        .await;
    }
    let police = app.token("dept:police").await;
    let fleet = eventually(Duration::from_secs(10), || async {
        let r = app.get("/api/v1/vehicles", Some(&police)).await.json();
        (r["items"][0]["last_fix"]["ts"] == "2021-06-01T22:00:10+08:00").then_some(r)
    })
    .await
    .expect("newest fix listed");
    assert_eq!(fleet["total"], 2);
    let v1 = &fleet["items"][0];
    assert_eq!(
        (v1["plate"].as_str(), v1["state"].as_str()),
        (Some("苏J71001"), Some("ok"))
    );
    assert_eq!(v1["last_fix"]["lon"], 120.101);
    assert_eq!(fleet["items"][1]["last_fix"], Value::Null);
    assert_eq!(fleet["items"][1]["state"], "no_fix");

    let firm = app.token("firm:firm-v2").await;
    let own = app.get("/api/v1/vehicles", Some(&firm)).await.json();
    assert_eq!(own["total"], 1);
    assert_eq!(own["items"][0]["plate"], "苏J71002");
    assert_eq!(app.get("/api/v1/vehicles", None).await.status, 401);
    assert_eq!(
        app.get("/api/v1/vehicles?limit=0", Some(&police))
            .await
            .status,
        400
    );
    assert_eq!(
        app.get("/api/v1/vehicles?limit=1&offset=1", Some(&police))
            .await
            .json()["items"][0]["plate"],
        "苏J71002"
    );
    app.stop().await;
}

/// The live map's stream: the caller's fleet first, then only the vehicles
/// that changed; a firm's stream holds its own vehicles only.
#[tokio::test]
async fn the_live_map_stream_sends_the_fleet_then_only_what_changed() {
    let app = spawn_app().await;
    app.register("firm-s1", "苏J72001", "dev-s1").await;
    app.register("firm-s2", "苏J72002", "dev-s2").await;
    let p = app.publisher().await;
    for d in ["dev-s1", "dev-s2"] {
        p.send(
            d,
            fix_json(d, "2021-06-01T22:01:00+08:00", 33.43, 120.2376, 25.0),
        )
        .await;
    }
    let police = app.token("dept:police").await;
    eventually(Duration::from_secs(10), || async {
        let r = app.get("/api/v1/vehicles", Some(&police)).await.json();
        (!r["items"][1]["last_fix"].is_null()).then_some(())
    })
    .await
    .expect("both trucks on the map");

    let mut sse = SseClient::connect(app.http, "/api/v1/vehicles/stream", &police).await;
    let (event, data) = sse
        .next_event(Duration::from_secs(10))
        .await
        .expect("a snapshot");
    assert_eq!(event, "snapshot");
    let snap: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(snap["total"], 2);
    assert_eq!(snap["items"][0]["plate"], "苏J72001");
    assert_eq!(snap["items"][1]["last_fix"]["lat"], 33.43);

    p.send(
        "dev-s1",
        fix_json(
            "dev-s1",
            "2021-06-01T22:01:10+08:00",
            33.431,
            120.2376,
            25.0,
        ),
    )
    .await;
    let (event, data) = sse
        .next_event(Duration::from_secs(10))
        .await
        .expect("a delta");
    assert_eq!(event, "delta");
    let delta: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(delta["items"].as_array().map(Vec::len), Some(1), "{delta}");
    assert_eq!(delta["items"][0]["plate"], "苏J72001");
    assert_eq!(delta["items"][0]["last_fix"]["lat"], 33.431);
    assert_eq!(delta["removed"], json!([]));

    let firm = app.token("firm:firm-s2").await;
    let mut own = SseClient::connect(app.http, "/api/v1/vehicles/stream", &firm).await;
    let (_, data) = own
        .next_event(Duration::from_secs(10))
        .await
        .expect("a firm's snapshot");
    let snap: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(snap["total"], 1);
    assert_eq!(snap["items"][0]["plate"], "苏J72002");
    assert_eq!(
        http_status_only(app.http, "/api/v1/vehicles/stream", None).await,
        401
    );
    app.stop().await;
}

/// No permit, 70 km/h: SPEEDING (police) after 30 s of fix time (as in alerts.rs).
fn speeding_track(device: &str) -> Vec<String> {
    (0..36)
        .map(|i| {
            let t = chrono::DateTime::parse_from_rfc3339("2021-06-01T22:00:00+08:00").unwrap()
                + chrono::Duration::seconds(10 * i);
            fix_json(
                device,
                &t.to_rfc3339(),
                33.335,
                120.02 + 0.00209 * i as f64,
                70.0,
            )
        })
        .collect()
}

fn permit(id: &str, firm: &str, plate: &str) -> Value {
    json!({"id": id, "firm_id": firm, "plates": [plate], "source_site": "s01", "disposal_site": "d01",
           "routes": ["route-s01-d01"], "windows": [{"start": "20:00", "end": "06:00"}],
           "valid_from": "2021-06-01", "valid_until": "2021-12-31"})
}

/// A city-local date `offset` days from today.
fn day(offset: i64) -> String {
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    (today + chrono::Duration::days(offset)).to_string()
}

#[tokio::test]
#[ignore = "needs chromium and node (tests/browser); run by .ci/run"]
async fn browser_officer_follows_a_live_alert_to_its_case_and_a_firm_sees_its_permits() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let app = spawn_app().await;
    app.register("firm-a", "苏J70001", "dev-c1").await; // the speeder, no permit
    app.register("firm-a", "苏J70003", "dev-c3").await;
    app.register("firm-b", "苏J70002", "dev-c2").await;
    for (id, firm, plate) in [
        ("PA-1", "firm-a", "苏J70003"),
        ("PB-1", "firm-b", "苏J70002"),
        ("PB-2", "firm-b", "苏J70002"),
    ] {
        let r = app
            .post(
                "/api/v1/permits",
                Some(&app.admin),
                &permit(id, firm, plate),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // Trucks at work on their route, for the fleet map.
    let p = app.publisher().await;
    p.send(
        "dev-c3",
        fix_json(
            "dev-c3",
            "2021-06-01T22:01:00+08:00",
            33.4300,
            120.2376,
            25.0,
        ),
    )
    .await;
    p.send(
        "dev-c2",
        fix_json(
            "dev-c2",
            "2021-06-01T22:01:00+08:00",
            33.4200,
            120.2375,
            25.0,
        ),
    )
    .await;
    // Earlier cases, so that the list and the statistics have something to show.
    seed_violation(
        &app.store,
        "OVERLOAD",
        "苏J70002",
        "dev-c2",
        "firm-b",
        "2021-05-31T23:00:00+08:00",
    )
    .await;
    seed_violation(
        &app.store,
        "ROUTE_DEVIATION",
        "苏J70003",
        "dev-c3",
        "firm-a",
        "2021-05-30T22:30:00+08:00",
    )
    .await;

    // The inspector pool: two valid certificates, one expired.
    for (id, name, dept, until) in [
        ("insp-1", "Zhou Min", "police", "2099-12-31"),
        ("insp-2", "Wu Gang", "urban", "2099-12-31"),
        ("insp-3", "Zheng Hua", "transport", "2001-01-01"),
    ] {
        let r = app
            .post(
                "/api/v1/inspectors",
                Some(&app.admin),
                &json!({"id": id, "name": name, "department": dept, "cert_valid_until": until}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    let shots = root.join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let cfg = json!({
        "base": format!("http://{}", app.http),
        "tokens": {"police": app.token("dept:police").await, "firm": app.token("firm:firm-a").await, "admin": app.admin},
        "firm_permits": ["PA-1"],
        "speeding_plate": "苏J70001",
        "screenshots": shots,
        "apply": {"from": day(0), "until": day(30)},
    });
    let mut node = BrowserSpec::start("console", &cfg);
    // The officer is signed in and watching: the truck speeds now.
    node.ready(Duration::from_secs(120), "the browser test never got ready")
        .await;
    for fix in speeding_track("dev-c1") {
        p.send("dev-c1", fix).await;
    }
    let status = node.finish().await;
    assert!(
        status.is_some_and(|s| s.success()),
        "browser test failed: {status:?} (its output is above)"
    );
    for name in ["live", "case", "cases", "stats", "firm", "track"] {
        assert!(
            shots.join(format!("{name}.png")).exists(),
            "screenshot {name}.png"
        );
    }
    app.stop().await;
}

/// A browser spec (`tests/browser/<name>.spec.mjs`) run by node on a JSON
/// config; its output is echoed and read line by line.
struct BrowserSpec {
    node: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl BrowserSpec {
    fn start(name: &str, cfg: &Value) -> BrowserSpec {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let cfg_path = temp_db().with_extension(format!("{name}.json"));
        std::fs::write(&cfg_path, cfg.to_string()).unwrap();
        let mut node = std::process::Command::new("node")
            .arg(root.join(format!("tests/browser/{name}.spec.mjs")))
            .arg(&cfg_path)
            .current_dir(root.join("tests/browser"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("node runs (is node installed? run .ci/run)");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let stdout = node.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                println!("node: {line}");
                let _ = tx.send(line);
            }
        });
        BrowserSpec { node, lines }
    }

    /// Waits for the spec's `READY` line; panics with `what` without it.
    async fn ready(&mut self, within: Duration, what: &str) {
        let lines = &mut self.lines;
        let ready = tokio::time::timeout(within, async {
            while let Some(line) = lines.recv().await {
                if line.trim() == "READY" {
                    return true;
                }
            }
            false
        })
        .await;
        if ready != Ok(true) {
            let _ = self.node.kill();
            panic!("{what}: {ready:?}");
        }
    }

    /// The spec's exit status; none if it ran past 300 s (then killed).
    async fn finish(mut self) -> Option<std::process::ExitStatus> {
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(300);
            loop {
                if let Some(s) = self.node.try_wait().expect("wait for node") {
                    return Some(s);
                }
                if std::time::Instant::now() > deadline {
                    let _ = self.node.kill();
                    return None;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
        .await
        .unwrap()
    }
}

//! Permits, violations and replay through the real service: MQTT in, HTTP out.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use muckwatch::fix::DeviceId;
use muckwatch::registry::{Firm, FirmId, Plate, Vehicle};
use serde_json::{json, Value};

fn permit(id: &str, firm: &str, plates: &[&str]) -> Value {
    json!({"id": id, "firm_id": firm, "plates": plates, "source_site": "s01", "disposal_site": "d01",
           "routes": ["route-s01-d01"], "windows": [{"start": "21:00", "end": "06:00"}],
           "valid_from": "2021-06-01", "valid_until": "2021-12-31"})
}

#[tokio::test]
async fn permits_are_checked_scoped_to_their_firm_and_changed_by_admins() {
    let app = spawn_app().await;
    let admin = Some(app.admin.as_str());
    app.register("firm-p", "苏J20001", "dev-p1").await;
    app.register("firm-q", "苏J20002", "dev-q1").await;
    let firm_p = app.token("firm:firm-p").await;
    let firm_q = app.token("firm:firm-q").await;
    let urban = app.token("dept:urban").await;

    let r = app
        .post(
            "/api/v1/permits",
            admin,
            &permit("P-001", "firm-p", &["苏J20001"]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    assert_eq!(created["status"], "active");
    assert_eq!(
        created["windows"][0],
        json!({"start": "21:00", "end": "06:00"})
    );
    assert_eq!(
        app.post(
            "/api/v1/permits",
            admin,
            &permit("P-001", "firm-p", &["苏J20001"])
        )
        .await
        .status,
        409
    );

    let mut bad = permit("P-002", "firm-p", &["苏J20002", "苏J29999"]);
    bad["source_site"] = json!("s99");
    bad["routes"] = json!(["route-s01-d01", "route-nowhere", "d02"]);
    let r = app.post("/api/v1/permits", admin, &bad).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    for named in ["s99", "route-nowhere", "d02", "苏J20002", "苏J29999"] {
        assert!(detail.contains(named), "{named} not named in {detail}");
    }
    let mut bad = permit("P-003", "firm-p", &["苏J20001"]);
    bad["valid_from"] = json!("June 1st");
    let r = app.post("/api/v1/permits", admin, &bad).await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("valid_from"),
        "{}",
        r.body
    );
    assert_eq!(
        app.post(
            "/api/v1/permits",
            Some(&firm_p),
            &permit("P-004", "firm-p", &["苏J20001"])
        )
        .await
        .status,
        403
    );

    let list = |token: String, query: &'static str| {
        let app = &app;
        async move {
            app.get(&format!("/api/v1/permits{query}"), Some(&token))
                .await
        }
    };
    assert_eq!(list(app.admin.clone(), "").await.json()["total"], 1);
    assert_eq!(list(urban.clone(), "").await.json()["total"], 1);
    assert_eq!(list(firm_p.clone(), "").await.json()["total"], 1);
    assert_eq!(list(firm_q.clone(), "").await.json()["total"], 0);
    assert_eq!(
        app.get("/api/v1/permits/P-001", Some(&firm_q)).await.status,
        404
    );
    assert_eq!(
        app.get("/api/v1/permits/P-001", Some(&firm_p)).await.json()["plates"],
        json!(["苏J20001"])
    );
    assert_eq!(app.get("/api/v1/permits/P-001", None).await.status, 401);

    let patch = |token: String, body: Value| {
        let app = &app;
        async move {
            http(
                app.http,
                "PATCH",
                "/api/v1/permits/P-001",
                Some(&token),
                Some(body.to_string()),
            )
            .await
        }
    };
    assert_eq!(
        patch(firm_p.clone(), json!({"status": "revoked"}))
            .await
            .status,
        403
    );
    assert_eq!(
        patch(firm_q.clone(), json!({"status": "revoked"}))
            .await
            .status,
        404
    );
    assert_eq!(
        patch(app.admin.clone(), json!({"status": "paused"}))
            .await
            .status,
        422
    );
    let r = patch(app.admin.clone(), json!({"status": "suspended"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "suspended");
    assert_eq!(
        list(app.admin.clone(), "?status=suspended").await.json()["total"],
        1
    );
    assert_eq!(
        list(app.admin.clone(), "?status=active").await.json()["total"],
        0
    );
    assert_eq!(list(app.admin.clone(), "?status=bogus").await.status, 400);
    assert_eq!(list(app.admin.clone(), "?limit=0").await.status, 400);
    app.stop().await;
}

/// A truck with no permit driving 70 km/h across town for 6 minutes.
fn speeding_track(device: &str) -> Vec<String> {
    (0..36)
        .map(|i| {
            let t = chrono::DateTime::parse_from_rfc3339("2021-06-01T22:00:00+08:00").unwrap()
                + chrono::Duration::seconds(10 * i);
            // 70 km/h due east is about 0.00209 degrees of longitude per 10 s here.
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

fn comparable(v: &Value) -> Value {
    json!([
        v["code"],
        v["plate"],
        v["device_id"],
        v["firm_id"],
        v["permit_id"],
        v["started_at"],
        v["ended_at"],
        v["measured"],
        v["fences"]
    ])
}

/// A whole day is `00:00`-`24:00`, as the refusal of an empty window says;
/// it is kept and shown as written.
#[tokio::test]
async fn a_whole_day_window_is_00_00_to_24_00() {
    let app = spawn_app().await;
    let admin = Some(app.admin.as_str());
    app.register("firm-w", "苏J20101", "dev-w1").await;
    let mut empty = permit("P-W0", "firm-w", &["苏J20101"]);
    empty["windows"] = json!([{"start": "00:00", "end": "00:00"}]);
    let r = app.post("/api/v1/permits", admin, &empty).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let hint = r.json()["detail"].as_str().unwrap().to_string();
    assert!(hint.contains("00:00-24:00"), "{hint}");

    let mut day = permit("P-W1", "firm-w", &["苏J20101"]);
    day["windows"] = json!([{"start": "00:00", "end": "24:00"}]);
    let r = app.post("/api/v1/permits", admin, &day).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let whole = json!([{"start": "00:00", "end": "24:00"}]);
    assert_eq!(r.json()["windows"], whole);
    let stored = app.get("/api/v1/permits/P-W1", admin).await.json();
    assert_eq!(stored["windows"], whole, "read back from the database");
    let rows = crate::exports::workbook(&app, "/api/v1/permits", &app.admin, false).await;
    assert_eq!(
        rows[1][crate::exports::col(&rows, "运输时段")],
        "00:00–24:00"
    );
    app.stop().await;
}

#[tokio::test]
async fn replay_and_live_mqtt_raise_identical_violations() {
    let track = speeding_track("dev-v1");

    // Live, through the embedded broker.
    let app = spawn_app().await;
    app.register("firm-v", "苏J30001", "dev-v1").await;
    let p = app.publisher().await;
    for fix in &track {
        p.send("dev-v1", fix.clone()).await;
    }
    let all_in = eventually(Duration::from_secs(15), || async {
        (app.metric("muckwatch_fixes_ingested_total").await >= track.len() as f64).then_some(())
    })
    .await;
    assert!(all_in.is_some(), "fixes not ingested");
    let firm_v = app.token("firm:firm-v").await;
    let other = app.token("firm:firm-w").await;
    let police = app.token("dept:police").await;

    // The API lists them per firm, with the evidence behind each.
    let r = eventually(Duration::from_secs(15), || async {
        let r = app
            .get("/api/v1/violations?code=SPEEDING", Some(&firm_v))
            .await;
        (r.status == 200 && r.json()["total"] == 1).then_some(r)
    })
    .await
    .expect("SPEEDING listed for its firm");
    assert_eq!(
        app.get("/api/v1/violations", Some(&other)).await.json()["total"],
        0
    );
    assert_eq!(
        app.get("/api/v1/violations?code=FAST", Some(&police))
            .await
            .status,
        400
    );
    let id = r.json()["items"][0]["id"].as_i64().unwrap();
    let one = app
        .get(&format!("/api/v1/violations/{id}"), Some(&police))
        .await
        .json();
    assert!(one["evidence"].as_array().unwrap().len() >= 3, "{one}");
    assert_eq!(
        app.get(&format!("/api/v1/violations/{id}"), Some(&other))
            .await
            .status,
        404
    );
    assert_eq!(
        app.metric("muckwatch_violations_total{code=\"SPEEDING\"}")
            .await,
        1.0
    );

    let store = app.store.clone();
    app.stop().await;
    let (live, _) = store
        .violations(&Default::default(), 1000, 0)
        .await
        .unwrap();
    let live: Vec<Value> = live
        .iter()
        .map(|v| muckwatch::api::violation_json(v, chrono_tz::Asia::Shanghai))
        .collect();
    let codes: Vec<&str> = live.iter().map(|v| v["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"SPEEDING"), "{codes:?}");
    assert!(codes.contains(&"NO_PERMIT"), "{codes:?}");
    let speeding = live.iter().find(|v| v["code"] == "SPEEDING").unwrap();
    assert_eq!(speeding["started_at"], "2021-06-01T22:00:00+08:00");
    assert_eq!(speeding["measured"], 70.0);
    assert_eq!(speeding["firm_id"], "firm-v");

    // The same track replayed from a file into another database.
    let db = temp_db();
    let url = format!("sqlite://{}", db.display());
    let replay_store = muckwatch::store::Store::connect(&url).await.unwrap();
    let firm = Firm {
        id: FirmId::parse("firm-v").unwrap(),
        name: "V".into(),
    };
    replay_store.create_firm(&firm, 0).await.unwrap();
    let vehicle = Vehicle {
        plate: Plate::parse("苏J30001").unwrap(),
        device_id: DeviceId::parse("dev-v1").unwrap(),
        firm_id: firm.id.clone(),
        rated_load_t: 31.0,
    };
    replay_store.create_vehicle(&vehicle, 0).await.unwrap();
    let file = db.with_extension("ndjson");
    std::fs::write(&file, track.join("\n") + "\n{not json}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_muckwatch"))
        .args([
            "replay",
            file.to_str().unwrap(),
            "--database-url",
            &url,
            "--geofences",
            "geofences",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 37") && stderr.contains("1 refused"),
        "{stderr}"
    );
    let replayed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut a: Vec<Value> = live.iter().map(comparable).collect();
    let mut b: Vec<Value> = replayed.iter().map(comparable).collect();
    a.sort_by_key(|v| v.to_string());
    b.sort_by_key(|v| v.to_string());
    assert_eq!(a, b);
}

/// After a restart, rule state is rebuilt from stored fixes: an episode
/// that was going on is neither forgotten nor raised a second time.
#[tokio::test]
async fn a_restart_in_the_middle_of_an_episode_does_not_raise_it_again() {
    let db = temp_db();
    let track = speeding_track("dev-w1");
    let app = spawn_with(test_settings(&db)).await;
    app.register("firm-w", "苏J30009", "dev-w1").await;
    let p = app.publisher().await;
    for fix in &track[..18] {
        p.send("dev-w1", fix.clone()).await;
    }
    let raised = eventually(Duration::from_secs(15), || async {
        let r = app
            .get("/api/v1/violations?code=SPEEDING", Some(&app.admin))
            .await
            .json();
        (r["total"] == 1).then_some(())
    })
    .await;
    assert!(raised.is_some(), "SPEEDING raised before the restart");
    drop(p);
    app.stop().await;

    let again = spawn_with(test_settings(&db)).await;
    let p = again.publisher().await;
    for fix in &track[18..] {
        p.send("dev-w1", fix.clone()).await;
    }
    let all_in = eventually(Duration::from_secs(15), || async {
        (again.metric("muckwatch_fixes_ingested_total").await >= 18.0).then_some(())
    })
    .await;
    assert!(all_in.is_some());
    let store = again.store.clone();
    again.stop().await;
    let (violations, _) = store.violations(&Default::default(), 100, 0).await.unwrap();
    let codes: Vec<&str> = violations.iter().map(|v| v.code.as_str()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "SPEEDING").count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == "NO_PERMIT").count(),
        1,
        "{codes:?}"
    );
}

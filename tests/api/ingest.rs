//! Telemetry in over real MQTT (embedded broker), out over real HTTP.

use std::time::Duration;

use crate::common::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

async fn track_len(app: &TestApp, plate: &str) -> usize {
    let r = app.track(plate, &app.admin).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["properties"]["fixes"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0)
}

async fn wait_track_len(app: &TestApp, plate: &str, n: usize) -> usize {
    eventually(WAIT, || async {
        let l = track_len(app, plate).await;
        (l >= n).then_some(l)
    })
    .await
    .unwrap_or_else(|| panic!("track of {plate} never reached {n} fixes"))
}

#[tokio::test]
async fn a_published_fix_appears_in_the_track() {
    let app = spawn_app().await;
    app.register("firm-a", "苏J00001", "013800000001").await;
    let publisher = app.publisher().await;
    publisher
        .send(
            "013800000001",
            fix_json(
                "013800000001",
                "2021-06-01T22:15:03+08:00",
                33.3801,
                120.1602,
                42.5,
            ),
        )
        .await;

    wait_track_len(&app, "苏J00001", 1).await;
    let track = app.track("苏J00001", &app.admin).await.json();
    assert_eq!(track["type"], "Feature");
    assert_eq!(track["geometry"]["type"], "LineString");
    assert_eq!(
        track["geometry"]["coordinates"][0],
        json!([120.1602, 33.3801])
    );
    let fix = &track["properties"]["fixes"][0];
    assert_eq!(fix["ts"], "2021-06-01T22:15:03+08:00");
    assert_eq!(fix["speed_kmh"], 42.5);
    assert_eq!(fix["load_t"], 20.0);
    assert_eq!(app.metric("muckwatch_fixes_ingested_total").await, 1.0);
    app.stop().await;
}

#[tokio::test]
async fn batches_time_filters_and_duplicates() {
    let app = spawn_app().await;
    app.register("firm-a", "苏J00002", "dev-2").await;
    let p = app.publisher().await;
    let batch: Vec<String> = (0..5)
        .map(|i| {
            fix_json(
                "dev-2",
                &format!("2021-06-01T22:00:0{i}+08:00"),
                33.38,
                120.16 + i as f64 * 1e-4,
                30.0,
            )
        })
        .collect();
    p.send("dev-2", format!("[{}]", batch.join(","))).await;
    // The same fixes again: stored once.
    p.send("dev-2", batch[0].clone()).await;
    p.send("dev-2", format!("[{}]", batch.join(","))).await;
    wait_track_len(&app, "苏J00002", 5).await;
    eventually(WAIT, || async {
        (app.metric("muckwatch_fixes_duplicate_total").await >= 6.0).then_some(())
    })
    .await
    .expect("duplicates counted");
    assert_eq!(track_len(&app, "苏J00002").await, 5);
    assert_eq!(app.metric("muckwatch_fixes_ingested_total").await, 5.0);

    let r = app
        .get(
            &format!("/api/v1/vehicles/{}/track?from=2021-06-01T22:00:01%2B08:00&to=2021-06-01T14:00:03Z", encode("苏J00002")),
            Some(&app.admin),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let times: Vec<String> = r.json()["properties"]["fixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["ts"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        times,
        [
            "2021-06-01T22:00:01+08:00",
            "2021-06-01T22:00:02+08:00",
            "2021-06-01T22:00:03+08:00"
        ]
    );

    let r = app
        .get(
            &format!(
                "/api/v1/vehicles/{}/track?from=yesterday",
                encode("苏J00002")
            ),
            Some(&app.admin),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["detail"].as_str().unwrap().contains("from"));
    app.stop().await;
}

#[tokio::test]
async fn every_rejection_reason_is_counted_and_ingest_goes_on() {
    let app = spawn_app().await;
    app.register("firm-a", "苏J00003", "dev-3").await;
    let p = app.publisher().await;
    let good = |sec: u32| {
        fix_json(
            "dev-3",
            &format!("2021-06-01T22:00:{sec:02}+08:00"),
            33.38,
            120.16,
            30.0,
        )
    };
    let cases: Vec<(&str, String)> = vec![
        ("not_json", "{\"device_id\": ".to_string()),
        (
            "missing_field",
            r#"{"device_id":"dev-3","ts":"2021-06-01T22:00:00+08:00","lat":33.3,"lon":120.1}"#
                .to_string(),
        ),
        ("out_of_range", good(1).replace("33.38", "91.5")),
        ("non_finite", good(2).replace("33.38", "NaN")),
        ("device_mismatch", good(3).replace("\"dev-3\"", "\"dev-9\"")),
        (
            "oversized",
            format!("{{\"pad\":\"{}\"}}", "x".repeat(600 * 1024)),
        ),
        (
            "batch_too_long",
            format!("[{}]", vec![good(4); 1001].join(",")),
        ),
        (
            "bad_timestamp",
            good(5).replace("2021-06-01T22:00:05+08:00", "22:00"),
        ),
        ("wrong_type", good(6).replace("30.0", "\"fast\"")),
    ];
    for (i, (_, payload)) in cases.iter().enumerate() {
        p.send("dev-3", payload.clone()).await;
        // After every bad message a good one, which must still get in.
        p.send("dev-3", good(10 + i as u32)).await;
    }
    p.send_to(&format!("{}/pos/7/dev-3", app.prefix), good(40))
        .await;

    wait_track_len(&app, "苏J00003", cases.len()).await;
    for (reason, _) in &cases {
        let line = format!("muckwatch_messages_rejected_total{{reason=\"{reason}\"}}");
        let v = eventually(WAIT, || async {
            let v = app.metric(&line).await;
            (v >= 1.0).then_some(v)
        })
        .await;
        assert_eq!(v, Some(1.0), "{reason}");
    }
    let bad_topic = "muckwatch_messages_rejected_total{reason=\"bad_topic\"}";
    assert_eq!(
        eventually(WAIT, || async {
            let v = app.metric(bad_topic).await;
            (v >= 1.0).then_some(v)
        })
        .await,
        Some(1.0)
    );
    assert_eq!(track_len(&app, "苏J00003").await, cases.len());

    // Every refusal is kept for inspection, with its reason.
    let r = app
        .get("/api/v1/dead-letters?limit=50", Some(&app.admin))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let dl = r.json();
    assert_eq!(dl["total"], cases.len() + 1);
    let reasons: Vec<&str> = dl["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    for (reason, _) in &cases {
        assert!(reasons.contains(reason), "{reason} not in {reasons:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn unregistered_devices_are_stored_and_counted() {
    let app = spawn_app().await;
    let p = app.publisher().await;
    p.send(
        "ghost-1",
        fix_json("ghost-1", "2021-06-01T22:00:00+08:00", 33.38, 120.16, 30.0),
    )
    .await;
    let ingested = eventually(WAIT, || async {
        let v = app.metric("muckwatch_fixes_ingested_total").await;
        (v >= 1.0).then_some(v)
    })
    .await;
    assert_eq!(ingested, Some(1.0));
    assert_eq!(app.metric("muckwatch_fixes_unregistered_total").await, 1.0);
    assert_eq!(app.store.fix_count().await.unwrap(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_fixes_vehicles_and_tokens() {
    let db = temp_db();
    let app = spawn_with(test_settings(&db)).await;
    app.register("firm-r", "苏J00004", "dev-4").await;
    let firm_token = app.token("firm:firm-r").await;
    let p = app.publisher().await;
    for s in 0..3 {
        p.send(
            "dev-4",
            fix_json(
                "dev-4",
                &format!("2021-06-01T22:00:0{s}+08:00"),
                33.38,
                120.16,
                30.0,
            ),
        )
        .await;
    }
    wait_track_len(&app, "苏J00004", 3).await;
    drop(p);
    app.stop().await;

    let again = spawn_with(test_settings(&db)).await;
    let r = again.track("苏J00004", &firm_token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["properties"]["fixes"].as_array().unwrap().len(), 3);
    // The vehicle registry is rebuilt from the database: a new fix is not "unregistered".
    let p = again.publisher().await;
    p.send(
        "dev-4",
        fix_json("dev-4", "2021-06-01T22:00:09+08:00", 33.38, 120.16, 30.0),
    )
    .await;
    wait_track_len(&again, "苏J00004", 4).await;
    assert_eq!(
        again.metric("muckwatch_fixes_unregistered_total").await,
        0.0
    );
    again.stop().await;
}

#[tokio::test]
async fn access_rules_for_tracks_and_registration() {
    let app = spawn_app().await;
    app.register("firm-x", "苏J00005", "dev-5").await;
    app.register("firm-y", "苏J00006", "dev-6").await;
    let own = app.token("firm:firm-x").await;
    let police = app.token("dept:police").await;

    assert_eq!(app.track("苏J00005", &own).await.status, 200);
    assert_eq!(app.track("苏J00005", &police).await.status, 200);
    // Another firm's vehicle is as good as absent.
    let other = app.track("苏J00006", &own).await;
    assert_eq!(other.status, 404);
    assert_eq!(
        other.json()["error"],
        app.track("苏J99999", &own).await.json()["error"]
    );
    assert_eq!(app.track("苏J00006", "mw_not-a-token").await.status, 401);
    assert_eq!(
        app.get(
            &format!("/api/v1/vehicles/{}/track", encode("苏J00006")),
            None
        )
        .await
        .status,
        401
    );

    let firm = json!({"id": "firm-z", "name": "Z"});
    assert_eq!(
        app.post("/api/v1/firms", Some(&own), &firm).await.status,
        403
    );
    assert_eq!(
        app.post("/api/v1/firms", Some(&police), &firm).await.status,
        403
    );
    assert_eq!(app.post("/api/v1/firms", None, &firm).await.status, 401);
    assert_eq!(
        app.post("/api/v1/firms", Some(&app.admin), &firm)
            .await
            .status,
        201
    );
    assert_eq!(
        app.post("/api/v1/firms", Some(&app.admin), &firm)
            .await
            .status,
        409
    );
    assert_eq!(
        app.get("/api/v1/dead-letters", Some(&police)).await.status,
        403
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors_that_name_the_problem() {
    let app = spawn_app().await;
    let admin = Some(app.admin.as_str());
    let r = app
        .post(
            "/api/v1/vehicles",
            admin,
            &json!({"plate": "苏J1", "device_id": "d", "firm_id": "nope", "rated_load_t": 30}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("nope"),
        "{}",
        r.body
    );
    let r = app
        .post(
            "/api/v1/vehicles",
            admin,
            &json!({"plate": "苏J1", "device_id": "bad id!", "firm_id": "f", "rated_load_t": 30}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("device_id"),
        "{}",
        r.body
    );
    let r = app
        .post("/api/v1/vehicles", admin, &json!({"plate": "苏J1"}))
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("device_id"),
        "{}",
        r.body
    );
    let r = http(
        app.http,
        "POST",
        "/api/v1/firms",
        admin,
        Some("{not json".into()),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].is_string());
    let r = app.get("/api/v1/nothing-here", admin).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());
    assert_eq!(app.get("/healthz", None).await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn the_loaded_geofences_are_served_as_geojson() {
    let db = temp_db();
    let mut settings = test_settings(&db);
    settings.geofences.dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("geofences");
    let app = spawn_with(settings).await;
    let police = app.token("dept:police").await;
    let r = app.get("/api/v1/geofences", Some(&police)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let fc = r.json();
    assert_eq!(fc["type"], "FeatureCollection");
    let features = fc["features"].as_array().unwrap();
    let count = |kind: &str| {
        features
            .iter()
            .filter(|f| f["properties"]["kind"] == kind)
            .count()
    };
    assert!(
        count("source_site") >= 20 && count("disposal_site") >= 5 && count("route") >= 30,
        "{}",
        features.len()
    );
    assert!(count("restricted_zone") >= 5 && count("speed_zone") >= 1);
    assert_eq!(app.get("/api/v1/geofences", None).await.status, 401);
    app.stop().await;
}

#[tokio::test]
async fn nul_and_control_characters_get_a_reason_or_a_400_and_ingest_goes_on() {
    let app = spawn_app().await;
    crate::common::untrusted::nul_and_control_characters_are_refused_at_the_edge(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn rows_the_database_refuses_are_quarantined_and_the_next_batch_goes_on() {
    use sqlx::Connection;
    let app = spawn_app().await;
    let url = format!("sqlite://{}", app.db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("db");
    sqlx::query(&format!(
        "CREATE TRIGGER poison BEFORE INSERT ON fixes WHEN NEW.device_id = '{}' \
         BEGIN SELECT RAISE(ABORT, 'poisoned row'); END",
        crate::common::untrusted::POISONED_DEVICE
    ))
    .execute(&mut conn)
    .await
    .expect("trigger");
    crate::common::untrusted::a_refused_row_costs_only_itself(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn over_several_connections_every_fix_is_stored_once() {
    let db = temp_db();
    let mut settings = test_settings(&db);
    settings.mqtt.connections = 4;
    let app = spawn_with(settings).await;
    let devices = ["dev-c1", "dev-c2", "dev-c3", "dev-c4", "dev-c5", "dev-c6"];
    for (i, d) in devices.iter().enumerate() {
        app.register("firm-c", &format!("苏J3000{i}"), d).await;
    }
    let p = app.publisher().await;
    for k in 0..5 {
        for d in devices {
            let ts = format!("2021-06-01T22:15:{:02}+08:00", k * 10);
            p.send(d, fix_json(d, &ts, 33.3801, 120.1602, 40.0)).await;
        }
    }
    for i in 0..devices.len() {
        assert_eq!(wait_track_len(&app, &format!("苏J3000{i}"), 5).await, 5);
    }
    assert_eq!(app.metric("muckwatch_fixes_ingested_total").await, 30.0);
    assert_eq!(app.metric("muckwatch_fixes_duplicate_total").await, 0.0);
    app.stop().await;
}

//! An approved application's permit is in force for detection at once:
//! two trucks of one firm drive the same approved route over MQTT, the one
//! whose application was approved raises nothing, the one whose
//! application was rejected raises NO_PERMIT.

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use serde_json::{json, Value};

use super::{application, day, decide, failed, submit};
use crate::common::*;

/// route-s01-d01 as the sample city draws it, `(lat, lon)`.
fn route_points() -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string("geofences/routes.geojson").expect("routes file");
    let doc: Value = serde_json::from_str(&text).expect("geojson");
    let route = doc["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["id"] == "route-s01-d01")
        .expect("route-s01-d01");
    route["geometry"]["coordinates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[1].as_f64().unwrap(), c[0].as_f64().unwrap()))
        .collect()
}

/// Positions every `step_m` metres along the line, starting at its start.
fn along(points: &[(f64, f64)], step_m: f64, n: usize) -> Vec<(f64, f64)> {
    let metres = |a: (f64, f64), b: (f64, f64)| {
        let dy = (b.0 - a.0) * 111_320.0;
        let dx = (b.1 - a.1) * 111_320.0 * a.0.to_radians().cos();
        dx.hypot(dy)
    };
    let mut out = vec![points[0]];
    let (mut seg, mut into) = (0, 0.0);
    while out.len() < n && seg + 1 < points.len() {
        let (a, b) = (points[seg], points[seg + 1]);
        let len = metres(a, b);
        if into + step_m <= len {
            into += step_m;
            let t = into / len;
            out.push((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t));
        } else {
            into -= len;
            seg += 1;
        }
    }
    out
}

/// A truck leaving s01 on its route at 30 km/h, a fix every 10 s from
/// `start`, then stopping (so that its silence afterwards is no gap).
fn drive(device: &str, start: DateTime<Utc>) -> Vec<String> {
    let at = |s: i64| (start + chrono::Duration::seconds(s)).to_rfc3339();
    let path = along(&route_points(), 83.3, 31);
    let mut fixes: Vec<String> = path
        .iter()
        .enumerate()
        .map(|(i, (lat, lon))| fix_json(device, &at(i as i64 * 10), *lat, *lon, 30.0))
        .collect();
    let (lat, lon) = path[path.len() - 1];
    fixes.push(fix_json(device, &at(path.len() as i64 * 10), lat, lon, 0.0));
    fixes
}

/// The permit starts today (an application cannot start earlier) and the
/// trucks drive the last six minutes: in the first minutes after the
/// city's midnight those would fall yesterday, so the test waits them out.
async fn after_the_first_minutes_of_the_day() {
    let now = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let into_day = now.time().num_seconds_from_midnight();
    if into_day < 7 * 60 {
        tokio::time::sleep(Duration::from_secs(u64::from(7 * 60 - into_day))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_application_is_an_active_permit_detection_uses_at_once() {
    after_the_first_minutes_of_the_day().await;
    let app = spawn_app().await;
    app.register("firm-p", "苏J70001", "dev-p1").await;
    app.register("firm-p", "苏J70002", "dev-p2").await;
    let firm = app.token("firm:firm-p").await;
    let urban = app.token("dept:urban").await;

    let approved = submit(&app, &firm, &application(&["苏J70001"])).await;
    assert!(
        failed(&approved).is_empty(),
        "every check passes: {approved}"
    );
    assert_eq!(approved["passed"], true);
    assert_eq!(approved["firm_id"], "firm-p");
    assert_eq!(approved["plates"], json!(["苏J70001"]));
    let refused = submit(&app, &firm, &application(&["苏J70002"])).await;

    // The bureau's queue holds both; the firm follows its own.
    let queue = app
        .get("/api/v1/permit-applications?status=submitted", Some(&urban))
        .await
        .json();
    assert_eq!(queue["total"], 2, "{queue}");

    let r = decide(
        &app,
        &approved["id"],
        &urban,
        json!({"approve": true, "reason": "材料齐全"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let a = r.json();
    assert_eq!(a["status"], "approved");
    assert_eq!(a["decided_by"], "dept:urban");
    assert_eq!(a["reason"], "材料齐全");
    let permit_id = a["permit_id"].as_str().expect("permit id").to_string();
    let fields: Vec<&str> = a["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["status", "checks", "status", "reason", "permit", "status"]
    );

    let p = app
        .get(&format!("/api/v1/permits/{permit_id}"), Some(&firm))
        .await;
    assert_eq!(p.status, 200, "the firm sees its new permit: {}", p.body);
    let p = p.json();
    assert_eq!(
        (
            p["status"].as_str(),
            p["firm_id"].as_str(),
            p["valid_from"].as_str()
        ),
        (Some("active"), Some("firm-p"), Some(day(0).as_str()))
    );
    assert_eq!(p["routes"], json!(["route-s01-d01"]));
    let r = decide(
        &app,
        &refused["id"],
        &urban,
        json!({"approve": false, "reason": "车辆年检过期"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.get("/api/v1/permits", Some(&firm)).await.json()["total"],
        1,
        "a rejection makes no permit"
    );

    // Both trucks drive the route: the one on the approved permit raises
    // nothing; the one whose application was rejected has no permit.
    let start = Utc::now() - chrono::Duration::minutes(6);
    let publisher = app.publisher().await;
    let (ours, theirs) = (drive("dev-p1", start), drive("dev-p2", start));
    for (a, b) in ours.iter().zip(&theirs) {
        publisher.send("dev-p1", a.clone()).await;
        publisher.send("dev-p2", b.clone()).await;
    }
    let all = (ours.len() + theirs.len()) as f64;
    let stored = eventually(Duration::from_secs(30), || async {
        (app.metric("muckwatch_fixes_ingested_total").await >= all).then_some(())
    })
    .await;
    assert!(stored.is_some(), "every fix stored");
    let no_permit = eventually(Duration::from_secs(30), || async {
        let v = app
            .get("/api/v1/violations?plate=%E8%8B%8FJ70002", Some(&app.admin))
            .await
            .json();
        (v["total"].as_i64() > Some(0)).then_some(v)
    })
    .await
    .expect("the truck without a permit is caught");
    assert_eq!(no_permit["items"][0]["code"], "NO_PERMIT", "{no_permit}");
    let store = app.store.clone();
    drop(publisher);
    app.stop().await; // detection finishes what it read
    let (raised, _) = store
        .violations(&Default::default(), 1000, 0)
        .await
        .expect("violations");
    let ours: Vec<_> = raised
        .iter()
        .filter(|v| v.plate.as_str() == "苏J70001")
        .map(|v| v.code.as_str())
        .collect();
    assert!(ours.is_empty(), "the permitted truck raised {ours:?}");
}

//! Permit applications (不见面审批) over real HTTP: the automatic checks
//! named with their results, approval creating an active permit that
//! detection uses at once (fixes over the embedded MQTT broker), rejection
//! with a reason, and firms seeing their own applications only.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::common::*;

fn today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
}

fn day(offset: i64) -> String {
    (today() + chrono::Duration::days(offset)).to_string()
}

/// An application from s01 to d01 on its route, from today for 30 days.
fn application(plates: &[&str]) -> Value {
    json!({"plates": plates, "source_site": "s01", "disposal_site": "d01",
           "routes": ["route-s01-d01"], "windows": [],
           "valid_from": day(0), "valid_until": day(30)})
}

async fn submit(app: &TestApp, token: &str, body: &Value) -> Value {
    let r = app
        .post("/api/v1/permit-applications", Some(token), body)
        .await;
    assert_eq!(r.status, 201, "{body}: {}", r.body);
    let a = r.json();
    assert_eq!(a["status"], "submitted", "{a}");
    a
}

/// The names of the checks that failed, and each check's reason by name.
fn failed(a: &Value) -> Vec<String> {
    let checks = a["checks"].as_array().expect("checks");
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "vehicles",
            "sites",
            "routes",
            "routes_touch_sites",
            "credit",
            "dates"
        ],
        "every check is named, always: {a}"
    );
    for c in checks {
        assert!(c["result"] == "pass" || c["result"] == "fail", "{c}");
        assert!(!c["reason"].as_str().unwrap_or("").is_empty(), "why: {c}");
    }
    checks
        .iter()
        .filter(|c| c["result"] == "fail")
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn reason<'a>(a: &'a Value, name: &str) -> &'a str {
    a["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .and_then(|c| c["reason"].as_str())
        .unwrap_or_else(|| panic!("no check {name} in {a}"))
}

async fn decide(app: &TestApp, id: &Value, token: &str, body: Value) -> Response {
    app.post(
        &format!("/api/v1/permit-applications/{id}/decision"),
        Some(token),
        &body,
    )
    .await
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_application_is_an_active_permit_detection_uses_at_once() {
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

#[tokio::test]
async fn each_failing_check_is_named_with_its_reason_and_bars_approval() {
    let app = spawn_app().await;
    app.register("firm-f", "苏J71001", "dev-f1").await;
    app.register("firm-g", "苏J71002", "dev-g1").await;
    let firm = app.token("firm:firm-f").await;
    let with = |k: &str, v: Value| {
        let mut b = application(&["苏J71001"]);
        b[k] = v;
        b
    };
    let cases: Vec<(Value, &[&str], &str, &str)> = vec![
        // another firm's vehicle, and one registered to no firm
        (
            with("plates", json!(["苏J71002", "苏J79999"])),
            &["vehicles"],
            "vehicles",
            "苏J71002",
        ),
        (
            with("disposal_site", json!("nowhere")),
            &["sites", "routes_touch_sites"],
            "sites",
            "nowhere",
        ),
        (
            with("source_site", json!("d02")),
            &["sites", "routes_touch_sites"],
            "sites",
            "not a source_site",
        ),
        (
            with("routes", json!(["rz-01"])),
            &["routes", "routes_touch_sites"],
            "routes",
            "rz-01",
        ),
        (
            with("routes", json!([])),
            &["routes", "routes_touch_sites"],
            "routes",
            "no route",
        ),
        // a real route, but to another disposal site
        (
            with("routes", json!(["route-s01-d03"])),
            &["routes_touch_sites"],
            "routes_touch_sites",
            "does not reach `d01`",
        ),
        (
            with("valid_until", json!(day(-1))),
            &["dates"],
            "dates",
            "before valid_from",
        ),
        (
            with("valid_from", json!(day(-3))),
            &["dates"],
            "dates",
            "before the application",
        ),
        (
            with("valid_until", json!(day(400))),
            &["dates"],
            "dates",
            "at most 366",
        ),
    ];
    let urban = app.token("dept:urban").await;
    for (body, want, name, says) in cases {
        let a = submit(&app, &firm, &body).await;
        assert_eq!(failed(&a), want, "{body}: {a}");
        assert_eq!(a["passed"], false);
        assert!(reason(&a, name).contains(says), "{name} says {says:?}: {a}");
        let r = decide(&app, &a["id"], &urban, json!({"approve": true})).await;
        assert_eq!(r.status, 409, "{}", r.body);
        let refusal = r.json();
        assert_eq!(refusal["error"], "checks_failed");
        let named: Vec<&str> = refusal["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(named, want, "{refusal}");
    }
    assert!(
        !reason(
            &submit(&app, &firm, &with("plates", json!(["苏J71002"]))).await,
            "vehicles"
        )
        .contains("firm-g"),
        "the firm is not told whose vehicle it named"
    );
    assert_eq!(
        app.get("/api/v1/permits", Some(&app.admin)).await.json()["total"],
        0,
        "no failed application made a permit"
    );

    // Bodies that are not a permit's fields are refused before any check.
    for bad in [
        with("plates", json!("苏J71001")),
        with("valid_from", json!("tomorrow")),
        with("windows", json!([{"start": "25:00", "end": "06:00"}])),
        with("firm_id", json!("firm-g")),
        json!([1, 2]),
    ] {
        let r = app
            .post("/api/v1/permit-applications", Some(&firm), &bad)
            .await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
    }
    app.stop().await;
}

/// Blacklists `firm` (grade D this year): three NO_PERMIT in one case,
/// fined by transport: 100 - 3 x 20 = 40.
async fn blacklist(app: &TestApp, firm: &str, plate: &str, device: &str) {
    let mut case = 0;
    for h in [3, 2, 1] {
        let at = (Utc::now() - chrono::Duration::hours(h))
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .to_rfc3339();
        case = seed_violation(&app.store, "NO_PERMIT", plate, device, firm, &at)
            .await
            .1;
    }
    let transport = app.token("dept:transport").await;
    for body in [
        json!({"status": "investigating"}),
        json!({"status": "decided", "finding": "no permit", "penalty": {"party": firm, "amount_cny": 5000}}),
    ] {
        let r = app
            .post(
                &format!("/api/v1/cases/{case}/checks/transport"),
                Some(&transport),
                &body,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[tokio::test]
async fn approval_re_runs_the_checks_a_firm_blacklisted_since_gets_no_permit() {
    let app = spawn_app().await;
    app.register("firm-k", "苏J72001", "dev-k1").await;
    let firm = app.token("firm:firm-k").await;
    let before = submit(&app, &firm, &application(&["苏J72001"])).await;
    assert!(failed(&before).is_empty(), "{before}");

    blacklist(&app, "firm-k", "苏J72001", "dev-k1").await;
    let after = submit(&app, &firm, &application(&["苏J72001"])).await;
    assert_eq!(failed(&after), ["credit"]);
    assert!(reason(&after, "credit").contains("graded D"), "{after}");

    let r = decide(&app, &before["id"], &app.admin, json!({"approve": true})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["checks"][0]["name"], "credit");
    let now = app
        .get(
            &format!("/api/v1/permit-applications/{}", before["id"]),
            Some(&firm),
        )
        .await
        .json();
    assert_eq!(
        now["status"], "submitted",
        "still waiting: the bureau rejects it"
    );
    assert_eq!(
        failed(&now),
        ["credit"],
        "the stored checks are the latest run"
    );
    let last = now["audit"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(
        (
            last["field"].as_str(),
            last["actor"].as_str(),
            last["after"].as_str()
        ),
        (
            Some("checks"),
            Some("system"),
            Some("5/6 passed; failed: credit")
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn rejection_gives_the_firm_its_reason_and_firms_see_only_their_own() {
    let app = spawn_app().await;
    app.register("firm-r", "苏J73001", "dev-r1").await;
    app.register("firm-s", "苏J73002", "dev-s1").await;
    let firm = app.token("firm:firm-r").await;
    let other = app.token("firm:firm-s").await;
    let urban = app.token("dept:urban").await;
    let police = app.token("dept:police").await;
    let a = submit(&app, &firm, &application(&["苏J73001"])).await;
    let id = a["id"].clone();
    let path = format!("/api/v1/permit-applications/{id}");
    let theirs = submit(&app, &other, &application(&["苏J73002"])).await;

    // Another firm: a 404 for the application and its decision; its own list only.
    assert_eq!(app.get(&path, Some(&other)).await.status, 404);
    assert_eq!(
        decide(&app, &id, &other, json!({"approve": true}))
            .await
            .status,
        404
    );
    let list = app
        .get("/api/v1/permit-applications", Some(&other))
        .await
        .json();
    assert_eq!(
        (list["total"].clone(), list["items"][0]["id"].clone()),
        (json!(1), theirs["id"].clone())
    );
    let asked = app
        .get("/api/v1/permit-applications?firm_id=firm-r", Some(&other))
        .await
        .json();
    assert_eq!(asked["total"], 0, "{asked}");
    // Departments read them all; only admin and urban decide.
    let all = app
        .get("/api/v1/permit-applications?firm_id=firm-r", Some(&police))
        .await
        .json();
    assert_eq!(all["total"], 1, "{all}");
    assert_eq!(
        decide(&app, &id, &police, json!({"approve": true}))
            .await
            .status,
        403
    );
    assert_eq!(
        decide(&app, &id, &firm, json!({"approve": true}))
            .await
            .status,
        403
    );
    assert_eq!(
        app.post(
            "/api/v1/permit-applications",
            Some(&urban),
            &application(&["苏J73001"])
        )
        .await
        .status,
        403,
        "only a firm applies"
    );
    assert_eq!(
        app.post(
            "/api/v1/permit-applications",
            None,
            &application(&["苏J73001"])
        )
        .await
        .status,
        401
    );
    assert_eq!(
        app.get("/api/v1/permit-applications/999999", Some(&app.admin))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get("/api/v1/permit-applications?status=lost", Some(&app.admin))
            .await
            .status,
        400
    );

    // A rejection needs its reason, which the firm then reads.
    let r = decide(&app, &id, &urban, json!({"approve": false})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = decide(&app, &id, &urban, json!({"approve": false, "reason": "  "})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = decide(
        &app,
        &id,
        &urban,
        json!({"approve": false, "reason": "消纳场容量不足"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = app.get(&path, Some(&firm)).await.json();
    assert_eq!(
        (
            seen["status"].as_str(),
            seen["reason"].as_str(),
            seen["decided_by"].as_str()
        ),
        (Some("rejected"), Some("消纳场容量不足"), Some("dept:urban"))
    );
    assert!(
        seen["decided_at"]
            .as_str()
            .is_some_and(|t| t.ends_with("+08:00")),
        "{seen}"
    );
    assert_eq!(seen["permit_id"], Value::Null);
    let r = decide(&app, &id, &app.admin, json!({"approve": true})).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (409, json!("already_decided"))
    );
    let mine = app
        .get("/api/v1/permit-applications?status=rejected", Some(&firm))
        .await
        .json();
    assert_eq!(mine["total"], 1);

    // The list exports as a workbook, like every list.
    let r = app
        .get("/api/v1/permit-applications?format=xlsx", Some(&app.admin))
        .await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .starts_with("application/vnd.openxmlformats"));
    app.stop().await;
}

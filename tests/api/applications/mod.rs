//! Permit applications (不见面审批) over real HTTP: the automatic checks
//! named with their results, approval creating an active permit that
//! detection uses at once (fixes over the embedded MQTT broker), rejection
//! with a reason, and firms seeing their own applications only.

mod decisions;
mod detection;

use chrono::{NaiveDate, Utc};
use serde_json::{json, Value};

use crate::common::*;

pub fn today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
}

pub fn day(offset: i64) -> String {
    (today() + chrono::Duration::days(offset)).to_string()
}

/// An application from s01 to d01 on its route, from today for 30 days.
pub fn application(plates: &[&str]) -> Value {
    json!({"plates": plates, "source_site": "s01", "disposal_site": "d01",
           "routes": ["route-s01-d01"], "windows": [],
           "valid_from": day(0), "valid_until": day(30)})
}

pub async fn submit(app: &TestApp, token: &str, body: &Value) -> Value {
    let r = app
        .post("/api/v1/permit-applications", Some(token), body)
        .await;
    assert_eq!(r.status, 201, "{body}: {}", r.body);
    let a = r.json();
    assert_eq!(a["status"], "submitted", "{a}");
    a
}

/// The names of the checks that failed, and each check's reason by name.
pub fn failed(a: &Value) -> Vec<String> {
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
        assert!(
            !c["reason_zh"].as_str().unwrap_or("").is_empty(),
            "为什么: {c}"
        );
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

pub async fn decide(app: &TestApp, id: &Value, token: &str, body: Value) -> Response {
    app.post(
        &format!("/api/v1/permit-applications/{id}/decision"),
        Some(token),
        &body,
    )
    .await
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
    let late = submit(&app, &firm, &with("valid_from", json!(day(-1)))).await;
    let zh = late["checks"][5]["reason_zh"].as_str().unwrap_or_default();
    assert!(
        zh.contains("早于申请日期"),
        "the firm reads it in Chinese: {late}"
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
    // Minutes ago: all three in this year's cycle (but for a few minutes
    // after New Year's midnight).
    for m in [3, 2, 1] {
        let at = (Utc::now() - chrono::Duration::minutes(m))
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

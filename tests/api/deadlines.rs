//! Deadlines as an officer sees them: each check's `due_at` and whether it
//! is `overdue`, the overdue cases first in the department's list, and the
//! on-time rate (按期处置率) and overdue count in the statistics.

use std::collections::BTreeMap;

use muckwatch::cases::Deadlines;
use serde_json::{json, Value};

use crate::common::*;

const HOUR: i64 = 3_600_000;

fn check<'a>(case: &'a Value, dept: &str) -> &'a Value {
    case["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["department"] == dept)
        .unwrap_or_else(|| panic!("no {dept} check in {case}"))
}

#[tokio::test]
async fn overdue_checks_are_marked_listed_first_and_counted() {
    let db = temp_db();
    let mut settings = test_settings(&db);
    settings.cases.deadline_h = BTreeMap::from([("police".to_string(), 24)]);
    let deadlines = settings.cases.deadlines().unwrap();
    assert_eq!(
        deadlines,
        Deadlines::default()
            .with_overrides(&settings.cases.deadline_h)
            .unwrap()
    );
    let app = spawn_with(settings).await;
    for (plate, device) in [
        ("苏J80001", "dl-a1"),
        ("苏J80002", "dl-a2"),
        ("苏J80003", "dl-a3"),
    ] {
        app.register("firm-dl", plate, device).await;
    }
    let now = chrono::Utc::now().timestamp_millis();
    // Filed two days ago: the police had 24 h. Filed just now: still open.
    // NO_PERMIT filed four days ago: urban and transport had the default 72 h.
    let (_, late) = seed_violation_filed(
        &app.store,
        "SPEEDING",
        "苏J80001",
        "dl-a1",
        "firm-dl",
        "2021-06-01T21:00:00+08:00",
        now - 48 * HOUR,
        deadlines,
    )
    .await;
    let (_, fresh) = seed_violation_filed(
        &app.store,
        "SPEEDING",
        "苏J80002",
        "dl-a2",
        "firm-dl",
        "2021-06-01T22:00:00+08:00",
        now,
        deadlines,
    )
    .await;
    let (_, no_permit) = seed_violation_filed(
        &app.store,
        "NO_PERMIT",
        "苏J80003",
        "dl-a3",
        "firm-dl",
        "2021-06-01T20:00:00+08:00",
        now - 96 * HOUR,
        deadlines,
    )
    .await;
    let police = app.token("dept:police").await;

    let c = app
        .get(&format!("/api/v1/cases/{late}"), Some(&police))
        .await
        .json();
    let k = check(&c, "police");
    assert_eq!(k["overdue"], true, "{c}");
    assert_eq!(c["overdue"], true);
    let due = chrono::DateTime::parse_from_rfc3339(k["due_at"].as_str().unwrap()).unwrap();
    assert_eq!(due.timestamp_millis(), now - 24 * HOUR, "filed + 24 h");
    assert!(
        k["due_at"].as_str().unwrap().ends_with("+08:00"),
        "city time"
    );
    let c = app
        .get(&format!("/api/v1/cases/{fresh}"), Some(&police))
        .await
        .json();
    assert_eq!(check(&c, "police")["overdue"], false, "{c}");

    // The police's list: newest first by default, the overdue case first
    // when asked (the console asks), or only it.
    let ids = |r: Value| -> Vec<i64> {
        r["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        ids(app.get("/api/v1/cases", Some(&police)).await.json()),
        vec![fresh, late]
    );
    assert_eq!(
        ids(app
            .get("/api/v1/cases?order=overdue", Some(&police))
            .await
            .json()),
        vec![late, fresh]
    );
    assert_eq!(
        ids(app
            .get("/api/v1/cases?overdue=true", Some(&police))
            .await
            .json()),
        vec![late]
    );
    assert_eq!(
        app.get("/api/v1/cases?order=due", Some(&police))
            .await
            .status,
        400
    );
    let urban = app.token("dept:urban").await;
    assert_eq!(
        ids(app
            .get("/api/v1/cases?overdue=true", Some(&urban))
            .await
            .json()),
        vec![no_permit]
    );

    // The police decide the fresh case in time; the late one stays open.
    for body in [
        json!({"status": "investigating"}),
        json!({"status": "decided", "finding": "超速 62 km/h"}),
    ] {
        let r = app
            .post(
                &format!("/api/v1/cases/{fresh}/checks/police"),
                Some(&police),
                &body,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let s = app
        .get("/api/v1/stats?from=2021-06-01&to=2021-06-01", Some(&police))
        .await
        .json();
    assert_eq!(s["on_time_rate"]["police"], 0.5, "{s}");
    assert_eq!(s["overdue"]["police"], 1);
    assert_eq!(s["overdue"]["urban"], 1);
    assert_eq!(s["on_time_rate"]["urban"], 0.0);
    assert_eq!(
        s["deadlines"]["police"],
        json!({"checks": 2, "due": 2, "on_time": 1, "overdue": 1, "on_time_rate": 0.5})
    );
    assert_eq!(s["labels"]["on_time_rate"], "按期处置率");
    app.stop().await;
}

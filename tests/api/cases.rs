//! Joint cases over real HTTP: the check workflow, audit, merging, the
//! 一超四罚 parties, statistics, and who may do what.

use crate::common::*;
use serde_json::{json, Value};

async fn post_check(app: &TestApp, case: i64, dept: &str, token: &str, body: Value) -> Response {
    app.post(
        &format!("/api/v1/cases/{case}/checks/{dept}"),
        Some(token),
        &body,
    )
    .await
}

#[tokio::test]
async fn checks_move_one_step_at_a_time_by_their_own_department_and_close_the_case() {
    let app = spawn_app().await;
    app.register("firm-c", "苏J40001", "dev-c1").await;
    let (_, case) = seed_violation(
        &app.store,
        "NO_PERMIT",
        "苏J40001",
        "dev-c1",
        "firm-c",
        "2021-06-01T22:00:00+08:00",
    )
    .await;
    let urban = app.token("dept:urban").await;
    let transport = app.token("dept:transport").await;
    let police = app.token("dept:police").await;

    let c = app
        .get(&format!("/api/v1/cases/{case}"), Some(&urban))
        .await
        .json();
    assert_eq!(c["status"], "open");
    assert_eq!(c["departments"], json!(["transport", "urban"]));
    assert_eq!(c["codes"], json!(["NO_PERMIT"]));
    assert!(c["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["status"] == "pending"));
    assert_eq!(c["violations"].as_array().unwrap().len(), 1);
    assert_eq!(c["violations"][0]["case_id"], case);

    // Skipping a step, or another department's check: refused.
    assert_eq!(
        post_check(
            &app,
            case,
            "transport",
            &transport,
            json!({"status": "decided", "finding": "x"})
        )
        .await
        .status,
        409
    );
    assert_eq!(
        post_check(
            &app,
            case,
            "transport",
            &urban,
            json!({"status": "investigating"})
        )
        .await
        .status,
        403
    );
    assert_eq!(
        post_check(
            &app,
            case,
            "police",
            &police,
            json!({"status": "investigating"})
        )
        .await
        .status,
        404
    );
    assert_eq!(
        post_check(
            &app,
            case,
            "transport",
            &transport,
            json!({"status": "finished"})
        )
        .await
        .status,
        422
    );
    assert_eq!(
        post_check(
            &app,
            999_999,
            "transport",
            &transport,
            json!({"status": "investigating"})
        )
        .await
        .status,
        404
    );

    let r = post_check(
        &app,
        case,
        "transport",
        &transport,
        json!({"status": "investigating"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_check(
        &app,
        case,
        "transport",
        &transport,
        json!({"status": "decided"}),
    )
    .await;
    assert_eq!(r.status, 422, "a decision needs a finding");
    let r = post_check(
        &app,
        case,
        "transport",
        &transport,
        json!({"status": "decided", "finding": "no permit on board", "penalty": {"party": "transport_firm", "amount_cny": 20000}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let check = r.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["department"] == "transport")
        .cloned()
        .unwrap();
    assert_eq!(check["finding"], "no permit on board");
    assert_eq!(
        check["penalty"],
        json!({"party": "transport_firm", "amount_cny": 20000.0})
    );
    assert_eq!(
        post_check(
            &app,
            case,
            "transport",
            &transport,
            json!({"status": "closed"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        post_check(
            &app,
            case,
            "transport",
            &transport,
            json!({"status": "closed"})
        )
        .await
        .status,
        409
    );

    // The case stays open until every department has closed its check.
    assert_eq!(
        app.get(&format!("/api/v1/cases/{case}"), Some(&urban))
            .await
            .json()["status"],
        "open"
    );
    for (status, finding) in [
        ("investigating", None),
        ("decided", Some("seen loading at night")),
        ("closed", None),
    ] {
        let mut body = json!({"status": status});
        if let Some(f) = finding {
            body["finding"] = json!(f);
        }
        assert_eq!(
            post_check(&app, case, "urban", &app.admin, body)
                .await
                .status,
            200
        );
    }
    let c = app
        .get(&format!("/api/v1/cases/{case}"), Some(&urban))
        .await
        .json();
    assert_eq!(c["status"], "closed");
    assert!(c["closed_at"].is_string());

    // Every change is in the audit trail: who, what, before and after.
    let audit = c["audit"].as_array().unwrap();
    let status_changes: Vec<(&str, &str, &str, &str)> = audit
        .iter()
        .filter(|a| a["field"] == "status")
        .map(|a| {
            (
                a["actor"].as_str().unwrap(),
                a["department"].as_str().unwrap(),
                a["before"].as_str().unwrap(),
                a["after"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        status_changes,
        [
            ("dept:transport", "transport", "pending", "investigating"),
            ("dept:transport", "transport", "investigating", "decided"),
            ("dept:transport", "transport", "decided", "closed"),
            ("admin", "urban", "pending", "investigating"),
            ("admin", "urban", "investigating", "decided"),
            ("admin", "urban", "decided", "closed"),
        ]
    );
    let field = |f: &str| audit.iter().filter(|a| a["field"] == f).count();
    assert_eq!(field("finding"), 2);
    assert_eq!(field("penalty"), 1);
    assert_eq!(field("check"), 2);
    assert_eq!(audit.last().unwrap()["field"], "case");
    assert_eq!(audit.last().unwrap()["after"], "closed");
    assert!(audit.iter().all(|a| a["at"].is_string()));
    app.stop().await;
}

#[tokio::test]
async fn violations_of_one_night_share_a_case_with_the_union_of_departments() {
    let app = spawn_app().await;
    app.register("firm-m", "苏J40002", "dev-m2").await;
    let (_, a) = seed_violation(
        &app.store,
        "NO_PERMIT",
        "苏J40002",
        "dev-m2",
        "firm-m",
        "2021-06-01T22:00:00+08:00",
    )
    .await;
    let (_, b) = seed_violation(
        &app.store,
        "ILLEGAL_DUMPING",
        "苏J40002",
        "dev-m2",
        "firm-m",
        "2021-06-02T03:30:00+08:00",
    )
    .await;
    let (_, c) = seed_violation(
        &app.store,
        "SPEEDING",
        "苏J40002",
        "dev-m2",
        "firm-m",
        "2021-06-02T21:00:00+08:00",
    )
    .await;
    assert_eq!(a, b, "same operating night, same case");
    assert_ne!(a, c, "the next night is a new case");
    let case = app
        .get(&format!("/api/v1/cases/{a}"), Some(&app.admin))
        .await
        .json();
    assert_eq!(case["codes"], json!(["ILLEGAL_DUMPING", "NO_PERMIT"]));
    assert_eq!(
        case["departments"],
        json!(["ecology", "housing", "transport", "urban"])
    );
    assert_eq!(case["violations"].as_array().unwrap().len(), 2);

    // Departments see the cases routed to them, and filters work.
    let police = app.token("dept:police").await;
    let ecology = app.token("dept:ecology").await;
    let ids = |v: Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(app.get("/api/v1/cases", Some(&police)).await.json()),
        [c]
    );
    assert_eq!(
        ids(app.get("/api/v1/cases", Some(&ecology)).await.json()),
        [a]
    );
    assert_eq!(
        app.get(&format!("/api/v1/cases/{a}"), Some(&police))
            .await
            .status,
        404
    );
    assert_eq!(
        ids(app
            .get("/api/v1/cases?department=police", Some(&app.admin))
            .await
            .json()),
        [c]
    );
    assert_eq!(
        ids(app
            .get("/api/v1/cases?code=ILLEGAL_DUMPING", Some(&app.admin))
            .await
            .json()),
        [a]
    );
    let r = app
        .get("/api/v1/cases?limit=1&offset=1", Some(&app.admin))
        .await
        .json();
    assert_eq!((r["total"].as_i64(), ids(r).len()), (Some(2), 1));
    assert_eq!(
        app.get("/api/v1/cases?status=maybe", Some(&app.admin))
            .await
            .status,
        400
    );
    app.stop().await;
}

#[tokio::test]
async fn an_overload_names_four_parties_and_stats_count_joint_cases() {
    let app = spawn_app().await;
    app.register("firm-o", "苏J40003", "dev-o3").await;
    app.register("firm-o", "苏J40004", "dev-o4").await;
    let (_, over) = seed_violation(
        &app.store,
        "OVERLOAD",
        "苏J40003",
        "dev-o3",
        "firm-o",
        "2021-06-01T23:00:00+08:00",
    )
    .await;
    seed_violation(
        &app.store,
        "SPEEDING",
        "苏J40004",
        "dev-o4",
        "firm-o",
        "2021-06-01T23:10:00+08:00",
    )
    .await;
    seed_violation(
        &app.store,
        "TRACK_GAP",
        "苏J40004",
        "dev-o4",
        "firm-o",
        "2021-07-01T23:10:00+08:00",
    )
    .await;
    let case = app
        .get(&format!("/api/v1/cases/{over}"), Some(&app.admin))
        .await
        .json();
    let roles: Vec<&str> = case["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["vehicle", "driver", "transport_firm", "source_unit"]
    );
    assert_eq!(case["parties"][0]["name"], "苏J40003");

    let urban = app.token("dept:urban").await;
    let r = app
        .get(
            "/api/v1/stats?from=2021-06-01T00:00:00%2B08:00&to=2021-06-30T00:00:00%2B08:00",
            Some(&urban),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = r.json();
    assert_eq!(s["by_code"], json!({"OVERLOAD": 1, "SPEEDING": 1}));
    assert_eq!(s["cases"], 2);
    assert_eq!(
        s["multi_department_cases"], 1,
        "the overload went to police, transport and housing"
    );
    assert_eq!(s["overload_cases"], 1);
    assert_eq!(
        s["by_department"],
        json!({"housing": 1, "police": 2, "transport": 1})
    );
    let all = app.get("/api/v1/stats", Some(&app.admin)).await.json();
    assert_eq!(all["violations"], 3);
    assert_eq!(
        app.get("/api/v1/stats?from=soon", Some(&app.admin))
            .await
            .status,
        400
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_updates_by_two_departments_both_stick() {
    let app = spawn_app().await;
    app.register("firm-k", "苏J40005", "dev-k5").await;
    let urban = app.token("dept:urban").await;
    let ecology = app.token("dept:ecology").await;
    let mut cases = Vec::new();
    for day in 1..=8 {
        let t = format!("2021-06-{day:02}T22:00:00+08:00");
        cases.push(
            seed_violation(&app.store, "COVER_OPEN", "苏J40005", "dev-k5", "firm-k", &t)
                .await
                .1,
        );
    }
    for &case in &cases {
        let (a, b) = tokio::join!(
            post_check(
                &app,
                case,
                "urban",
                &urban,
                json!({"status": "investigating"})
            ),
            post_check(
                &app,
                case,
                "ecology",
                &ecology,
                json!({"status": "investigating"})
            ),
        );
        assert_eq!((a.status, b.status), (200, 200), "{} / {}", a.body, b.body);
        let c = app
            .get(&format!("/api/v1/cases/{case}"), Some(&urban))
            .await
            .json();
        assert!(
            c["checks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k["status"] == "investigating"),
            "{c}"
        );
        assert_eq!(
            c["audit"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["field"] == "status")
                .count(),
            2
        );
    }
    app.stop().await;
}

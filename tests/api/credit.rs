//! Firm credit over real HTTP: deductions of decided cases, once per
//! violation; a withdrawn decision reverses; firm isolation; the
//! blacklist bars new permits.

use crate::common::*;
use crate::exports::workbook;
use serde_json::{json, Value};

async fn check(app: &TestApp, case: i64, dept: &str, body: Value) {
    let token = app.token(&format!("dept:{dept}")).await;
    let r = app
        .post(
            &format!("/api/v1/cases/{case}/checks/{dept}"),
            Some(&token),
            &body,
        )
        .await;
    assert_eq!(r.status, 200, "{dept} {body}: {}", r.body);
}

/// Moves `dept`'s check to decided, with a penalty when `fine`.
async fn decide(app: &TestApp, case: i64, dept: &str, fine: bool) {
    check(app, case, dept, json!({"status": "investigating"})).await;
    let penalty = fine.then(|| json!({"party": "firm-d", "amount_cny": 5000}));
    check(
        app,
        case,
        dept,
        json!({"status": "decided", "finding": "seen on camera", "penalty": penalty}),
    )
    .await;
}

fn permit(id: &str, firm: &str, plate: &str, from: &str) -> Value {
    json!({"id": id, "firm_id": firm, "plates": [plate], "source_site": "s01", "disposal_site": "d01",
           "routes": ["route-s01-d01"], "windows": [], "valid_from": from, "valid_until": "2023-12-31"})
}

#[tokio::test]
async fn decided_cases_cost_points_once_and_the_blacklist_bars_new_permits() {
    let app = spawn_app().await;
    app.register("firm-d", "苏J60001", "dev-d1").await;
    app.register("firm-e", "苏J60002", "dev-e1").await;
    let r = app
        .post(
            "/api/v1/permits",
            Some(&app.admin),
            &permit("PD-1", "firm-d", "苏J60001", "2021-01-01"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let seed = |code: &'static str, at: &'static str| {
        seed_violation(&app.store, code, "苏J60001", "dev-d1", "firm-d", at)
    };

    // Night 1: no permit and dumping, one case; urban and transport both fine it.
    let (no_permit, night1) = seed("NO_PERMIT", "2021-06-01T22:00:00+08:00").await;
    let (dumping, same) = seed("ILLEGAL_DUMPING", "2021-06-01T23:00:00+08:00").await;
    assert_eq!(night1, same);
    decide(&app, night1, "urban", true).await;
    decide(&app, night1, "transport", true).await;
    // Night 2: no permit again, fined by transport.
    let (no_permit2, night2) = seed("NO_PERMIT", "2021-06-05T22:00:00+08:00").await;
    decide(&app, night2, "transport", true).await;
    // Night 3: speeding, decided without penalty: costs nothing.
    let (_, night3) = seed("SPEEDING", "2021-06-09T22:00:00+08:00").await;
    decide(&app, night3, "police", false).await;

    let firm_d = app.token("firm:firm-d").await;
    let r = app
        .get("/api/v1/firms/firm-d/credit?cycle=2021", Some(&firm_d))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = r.json();
    assert_eq!(
        (c["firm_id"].clone(), c["cycle"].clone(), c["base"].clone()),
        (json!("firm-d"), json!("2021"), json!(100))
    );
    assert_eq!(c["score"], 50, "20 + 10 + 20, each once: {c}");
    assert_eq!(c["grade"], "D");
    let got: Vec<(i64, &str, i64, i64)> = c["deductions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert!(
                d["at"].as_str().is_some_and(|t| t.ends_with("+08:00")),
                "{d}"
            );
            (
                d["violation_id"].as_i64().unwrap(),
                d["code"].as_str().unwrap(),
                d["points"].as_i64().unwrap(),
                d["case_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (no_permit, "NO_PERMIT", 20, night1),
            (dumping, "ILLEGAL_DUMPING", 10, night1),
            (no_permit2, "NO_PERMIT", 20, night2),
        ]
    );
    assert_eq!(c["permits"][0]["id"], "PD-1", "existing permits are listed");

    // Another cycle is untouched: a deduction counts in its violation's cycle.
    let c = app
        .get("/api/v1/firms/firm-d/credit?cycle=2022", Some(&firm_d))
        .await
        .json();
    assert_eq!(
        (c["score"].clone(), c["grade"].clone()),
        (json!(100), json!("A"))
    );
    assert_eq!(
        app.get("/api/v1/firms/firm-d/credit?cycle=21x", Some(&firm_d))
            .await
            .status,
        400
    );

    // Firms see their own only; departments and admin see all.
    let firm_e = app.token("firm:firm-e").await;
    assert_eq!(
        app.get("/api/v1/firms/firm-d/credit?cycle=2021", Some(&firm_e))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get("/api/v1/firms/firm-e/credit?cycle=2021", Some(&firm_e))
            .await
            .json()["score"],
        100
    );
    assert_eq!(
        app.get("/api/v1/firms/nobody/credit", Some(&app.admin))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get("/api/v1/credit?cycle=2021", Some(&firm_d))
            .await
            .status,
        403
    );
    assert_eq!(app.get("/api/v1/credit?cycle=2021", None).await.status, 401);
    let police = app.token("dept:police").await;
    let all = app
        .get("/api/v1/credit?cycle=2021", Some(&police))
        .await
        .json();
    let grades: Vec<(&str, i64, &str)> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["firm_id"].as_str().unwrap(),
                f["score"].as_i64().unwrap(),
                f["grade"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(grades, [("firm-d", 50, "D"), ("firm-e", 100, "A")]);
    assert_eq!(all["total"], 2);
    assert_eq!(all["grades"], json!({"A": 1, "B": 0, "C": 0, "D": 1}));
    assert_eq!(all["items"][0]["blacklisted"], true);
    assert_eq!(all["items"][0]["cycle"], "2021");
    // Paged and by grade like every list; the grade counts stay whole.
    let page = app
        .get("/api/v1/credit?cycle=2021&limit=1&offset=1", Some(&police))
        .await
        .json();
    assert_eq!(
        (page["items"][0]["firm_id"].clone(), page["total"].clone()),
        (json!("firm-e"), json!(2))
    );
    let d = app
        .get("/api/v1/credit?cycle=2021&grade=D", Some(&police))
        .await
        .json();
    assert_eq!(
        (d["total"].clone(), d["items"][0]["firm_id"].clone()),
        (json!(1), json!("firm-d"))
    );
    assert_eq!(d["grades"], all["grades"]);
    for bad in ["grade=E", "limit=0", "cycle=2021x"] {
        let r = app
            .get(&format!("/api/v1/credit?{bad}"), Some(&police))
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    // The same rows as a workbook, by Accept and by ?format=xlsx.
    for accept in [true, false] {
        let rows = workbook(&app, "/api/v1/credit?cycle=2021", &police, accept).await;
        assert_eq!(
            rows[0],
            [
                "企业编号",
                "企业名称",
                "评价周期",
                "信用分",
                "信用等级",
                "扣分记录数",
                "列入黑名单"
            ]
        );
        assert_eq!(
            rows[1..],
            [
                ["firm-d", "firm-d", "2021", "50", "D", "3", "是"],
                ["firm-e", "firm-e", "2021", "100", "A", "0", "否"],
            ]
        );
    }
    let rows = workbook(&app, "/api/v1/credit?cycle=2021&grade=A", &app.admin, false).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        app.get("/api/v1/credit?format=xlsx", Some(&firm_d))
            .await
            .status,
        403
    );

    // Blacklisted in 2021: no permit from 2021, nor 2022 (the cycle after); 2023 is fine.
    for (id, from) in [("PD-2", "2021-07-01"), ("PD-3", "2022-03-01")] {
        let r = app
            .post(
                "/api/v1/permits",
                Some(&app.admin),
                &permit(id, "firm-d", "苏J60001", from),
            )
            .await;
        assert_eq!(r.status, 409, "{from}: {}", r.body);
        assert_eq!(r.json()["error"], "firm_blacklisted");
    }
    let r = app
        .post(
            "/api/v1/permits",
            Some(&app.admin),
            &permit("PD-4", "firm-d", "苏J60001", "2023-01-01"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = app
        .post(
            "/api/v1/permits",
            Some(&app.admin),
            &permit("PE-1", "firm-e", "苏J60002", "2021-07-01"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Night 2's decision withdrawn: its deduction reverses, the firm is C again.
    check(
        &app,
        night2,
        "transport",
        json!({"status": "investigating"}),
    )
    .await;
    let c = app
        .get("/api/v1/firms/firm-d/credit?cycle=2021", Some(&police))
        .await
        .json();
    assert_eq!(
        (c["score"].clone(), c["grade"].clone()),
        (json!(70), json!("C"))
    );
    let r = app
        .post(
            "/api/v1/permits",
            Some(&app.admin),
            &permit("PD-2", "firm-d", "苏J60001", "2021-07-01"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

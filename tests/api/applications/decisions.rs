//! The decision's edges: the bureau's own permit number (a taken one
//! leaves the application waiting), an approval cut short finished by
//! approving again, and an approval racing a rejection (one of them wins,
//! and the permit exists exactly when the approval won).

use serde_json::{json, Value};

use super::{application, day, decide, submit};
use crate::common::*;

#[tokio::test]
async fn the_bureau_may_number_the_permit_and_a_taken_number_leaves_it_waiting() {
    let app = spawn_app().await;
    app.register("firm-n", "苏J74001", "dev-n1").await;
    let firm = app.token("firm:firm-n").await;
    let a = submit(&app, &firm, &application(&["苏J74001"])).await;
    let mut taken = application(&["苏J74001"]);
    taken["id"] = json!("渣准2026-001");
    taken["firm_id"] = json!("firm-n");
    taken["valid_until"] = json!(day(10)); // another permit, by hand
    let r = app.post("/api/v1/permits", Some(&app.admin), &taken).await;
    assert_eq!(r.status, 201, "{}", r.body);

    let r = decide(
        &app,
        &a["id"],
        &app.admin,
        json!({"approve": true, "permit_id": "渣准2026-001"}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let path = format!("/api/v1/permit-applications/{}", a["id"]);
    let waiting = app.get(&path, Some(&firm)).await.json();
    assert_eq!(waiting["status"], "submitted", "{waiting}");
    assert_eq!(waiting["permit_id"], Value::Null);
    let trail: Vec<&str> = waiting["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        trail,
        ["status", "checks", "status", "approval_failed", "status"]
    );
    let r = decide(
        &app,
        &a["id"],
        &app.admin,
        json!({"approve": true, "permit_id": "bad id"}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);

    let r = decide(
        &app,
        &a["id"],
        &app.admin,
        json!({"approve": true, "permit_id": "渣准2026-002"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["permit_id"], "渣准2026-002");
    let p = app
        .get(
            &format!("/api/v1/permits/{}", encode("渣准2026-002")),
            Some(&firm),
        )
        .await;
    assert_eq!(
        (p.status, p.json()["status"].clone()),
        (200, json!("active"))
    );
    app.stop().await;
}

#[tokio::test]
async fn an_approval_cut_short_is_finished_by_approving_again() {
    let app = spawn_app().await;
    app.register("firm-c", "苏J75001", "dev-c1").await;
    let firm = app.token("firm:firm-c").await;
    let a = submit(&app, &firm, &application(&["苏J75001"])).await;
    let id = a["id"].as_i64().unwrap();
    // muckwatch stopped after claiming the decision, before the permit.
    app.store
        .claim_approval(id, "APP-cut", "dept:urban", Some("ok"), 0)
        .await
        .expect("claimed");
    let queue = app
        .get(
            "/api/v1/permit-applications?status=approving",
            Some(&app.admin),
        )
        .await
        .json();
    assert_eq!(queue["total"], 1, "{queue}");
    let r = decide(
        &app,
        &a["id"],
        &app.admin,
        json!({"approve": false, "reason": "no"}),
    )
    .await;
    assert_eq!(r.status, 409, "being approved: {}", r.body);
    let r = decide(&app, &a["id"], &app.admin, json!({"approve": true})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let done = r.json();
    assert_eq!(
        (
            done["status"].as_str(),
            done["permit_id"].as_str(),
            done["decided_by"].as_str()
        ),
        (Some("approved"), Some("APP-cut"), Some("dept:urban")),
        "the claimed decision, finished"
    );
    let p = app.get("/api/v1/permits/APP-cut", Some(&firm)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_racing_a_rejection_leaves_one_decision() {
    let app = spawn_app().await;
    app.register("firm-x", "苏J76001", "dev-x1").await;
    let firm = app.token("firm:firm-x").await;
    let urban = app.token("dept:urban").await;
    for _ in 0..5 {
        let a = submit(&app, &firm, &application(&["苏J76001"])).await;
        let (approve, reject) = tokio::join!(
            decide(&app, &a["id"], &app.admin, json!({"approve": true})),
            decide(
                &app,
                &a["id"],
                &urban,
                json!({"approve": false, "reason": "race"})
            ),
        );
        let mut codes = [approve.status, reject.status];
        codes.sort();
        assert_eq!(codes, [200, 409], "{} / {}", approve.body, reject.body);
        let now = app
            .get(
                &format!("/api/v1/permit-applications/{}", a["id"]),
                Some(&firm),
            )
            .await
            .json();
        let permit = app
            .get(
                &format!("/api/v1/permits/APP-{}", a["id"]),
                Some(&app.admin),
            )
            .await
            .status;
        match now["status"].as_str() {
            Some("approved") => assert_eq!((approve.status, permit), (200, 200)),
            Some("rejected") => assert_eq!((reject.status, permit), (200, 404)),
            other => panic!("{other:?}: {now}"),
        }
    }
    app.stop().await;
}

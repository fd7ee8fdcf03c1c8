//! Random inspections (双随机一公开) over real HTTP: reproducible draws,
//! proportions, valid certificates only, departments mixed, results, and a
//! public list without the inspectors' personal data.

use std::collections::BTreeSet;

use crate::common::*;
use serde_json::{json, Value};

async fn inspector(app: &TestApp, id: &str, name: &str, dept: &str, until: &str) {
    let r = app
        .post(
            "/api/v1/inspectors",
            Some(&app.admin),
            &json!({"id": id, "name": name, "department": dept, "cert_valid_until": until}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

fn objects(draw: &Value) -> Vec<(String, Vec<(String, String)>)> {
    draw["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let who = o["inspectors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["id"].as_str().unwrap().to_string(),
                        i["department"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (o["id"].as_str().unwrap().to_string(), who)
        })
        .collect()
}

#[tokio::test]
async fn draws_are_reproducible_fair_to_the_rules_and_published_without_names() {
    let app = spawn_app().await;
    for i in 1..=6 {
        app.register(
            &format!("firm-i{i}"),
            &format!("苏J7000{i}"),
            &format!("dev-i{i}"),
        )
        .await;
    }
    inspector(&app, "insp-p1", "Zhang Wei", "police", "2099-12-31").await;
    inspector(&app, "insp-p2", "Li Na", "police", "2099-12-31").await;
    inspector(&app, "insp-u1", "Wang Fang", "urban", "2099-12-31").await;
    inspector(&app, "insp-t1", "Liu Yang", "transport", "2001-01-01").await;
    let dup = app
        .post("/api/v1/inspectors", Some(&app.admin),
              &json!({"id": "insp-p1", "name": "x", "department": "police", "cert_valid_until": "2099-01-01"}))
        .await;
    assert_eq!(dup.status, 409);
    let bad = app
        .post("/api/v1/inspectors", Some(&app.admin),
              &json!({"id": "insp-x", "name": "x", "department": "army", "cert_valid_until": "2099-01-01"}))
        .await;
    assert_eq!(bad.status, 422);

    let urban = app.token("dept:urban").await;
    let ask = json!({"item": "车辆密闭与定位终端", "population": "vehicles", "count": 3,
                     "inspectors_per_object": 2, "departments": ["police", "urban", "transport"], "seed": 20211});
    let r = app
        .post("/api/v1/inspections/draws", Some(&urban), &ask)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let first = r.json();
    assert_eq!(first["seed"], 20211);
    let drawn = objects(&first);
    assert_eq!(drawn.len(), 3);
    for (_, who) in &drawn {
        let depts: BTreeSet<&str> = who.iter().map(|(_, d)| d.as_str()).collect();
        // The transport inspector's certificate expired: never drawn, so
        // every object gets one police and one urban inspector.
        assert_eq!(depts, BTreeSet::from(["police", "urban"]), "{who:?}");
    }
    // Re-run with the recorded seed: the same draw over the same population.
    let again = app
        .post("/api/v1/inspections/draws", Some(&urban), &ask)
        .await
        .json();
    assert_eq!(objects(&again), drawn);
    assert_eq!(again["population_hash"], first["population_hash"]);
    assert_ne!(again["id"], first["id"]);

    // Proportions: half of the A firms (all six are A), no D firm exists.
    let r = app
        .post("/api/v1/inspections/draws", Some(&urban),
              &json!({"item": "企业台账", "population": "firms", "proportions": {"A": 0.5, "D": 1}, "departments": ["police", "urban"]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(objects(&r.json()).len(), 3);
    let r = app
        .post(
            "/api/v1/inspections/draws",
            Some(&urban),
            &json!({"item": "x", "population": "vehicles", "proportion": 0.5, "count": 2}),
        )
        .await;
    assert_eq!(r.status, 422, "one size only");
    let r = app
        .post("/api/v1/inspections/draws", Some(&urban),
              &json!({"item": "x", "population": "vehicles", "count": 1, "departments": ["transport"], "inspectors_per_object": 1}))
        .await;
    assert_eq!(r.status, 422, "nobody valid in transport: {}", r.body);
    let firm = app.token("firm:firm-i1").await;
    assert_eq!(
        app.post("/api/v1/inspections/draws", Some(&firm), &ask)
            .await
            .status,
        403
    );

    // Results per object.
    let id = first["id"].as_i64().unwrap();
    let object = &drawn[0].0;
    let path = format!("/api/v1/inspections/draws/{id}/results");
    let r = app
        .post(
            &path,
            Some(&urban),
            &json!({"object_id": object, "result": "fail", "finding": "终端离线"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .post(
            &path,
            Some(&urban),
            &json!({"object_id": "nope", "result": "pass"}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .post(
            &path,
            Some(&urban),
            &json!({"object_id": object, "result": "maybe"}),
        )
        .await;
    assert_eq!(r.status, 422);

    // 一公开: no token, no names.
    let r = app.get("/api/v1/inspections/public", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for secret in [
        "Zhang Wei",
        "Li Na",
        "Wang Fang",
        "insp-p1",
        "insp-p2",
        "insp-u1",
    ] {
        assert!(!r.body.contains(secret), "{secret} published: {}", r.body);
    }
    let list = r.json();
    let published = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .expect("draw published");
    assert_eq!(published["seed"], 20211);
    assert_eq!(published["population_hash"], first["population_hash"]);
    let o = published["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == object.as_str())
        .unwrap();
    assert_eq!(
        (o["result"].clone(), o["finding"].clone()),
        (json!("fail"), json!("终端离线"))
    );
}

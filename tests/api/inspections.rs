//! Random inspections (双随机一公开) over real HTTP: reproducible draws,
//! proportions, valid certificates only, departments mixed, results, and a
//! public list without the inspectors' personal data.

use std::collections::BTreeSet;

use crate::common::xlsx::sheet;
use crate::common::*;
use crate::exports::{col, workbook};
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
    // A stray field (here: a name) is kept with the draw but never published.
    let ask = json!({"item": "车辆密闭与定位终端", "population": "vehicles", "count": 3,
                     "inspectors_per_object": 2, "departments": ["police", "urban", "transport"], "seed": 20211,
                     "note": "asked by Zhang Wei"});
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

/// The inspector pool as officials list it, with whether each certificate
/// is valid today; and the lists of draws, public and the officials', as
/// JSON and as workbooks.
#[tokio::test]
async fn the_pool_and_the_draws_are_listed_and_exported() {
    let app = spawn_app().await;
    for i in 1..=3 {
        app.register(
            &format!("firm-l{i}"),
            &format!("苏J7100{i}"),
            &format!("dev-l{i}"),
        )
        .await;
    }
    inspector(&app, "insp-a", "Zhao Lei", "police", "2099-12-31").await;
    inspector(&app, "insp-b", "Qian Yu", "urban", "2099-12-31").await;
    inspector(&app, "insp-c", "Sun Li", "urban", "2001-01-01").await;
    let urban = app.token("dept:urban").await;
    let firm = app.token("firm:firm-l1").await;

    // The pool: every inspector, the expired one marked, by department, paged.
    let r = app.get("/api/v1/inspectors", Some(&urban)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let pool = r.json();
    assert_eq!(pool["total"], 3);
    let seen: Vec<(&str, &str, &str, bool)> = pool["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap(),
                i["name"].as_str().unwrap(),
                i["cert_valid_until"].as_str().unwrap(),
                i["cert_valid"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("insp-a", "Zhao Lei", "2099-12-31", true),
            ("insp-b", "Qian Yu", "2099-12-31", true),
            ("insp-c", "Sun Li", "2001-01-01", false),
        ]
    );
    let page = app
        .get(
            "/api/v1/inspectors?department=urban&limit=1&offset=1",
            Some(&app.admin),
        )
        .await
        .json();
    assert_eq!(
        (page["items"][0]["id"].clone(), page["total"].clone()),
        (json!("insp-c"), json!(2))
    );
    assert_eq!(
        app.get("/api/v1/inspectors?department=army", Some(&urban))
            .await
            .status,
        400
    );
    assert_eq!(app.get("/api/v1/inspectors", Some(&firm)).await.status, 403);
    assert_eq!(app.get("/api/v1/inspectors", None).await.status, 401);
    let rows = workbook(&app, "/api/v1/inspectors", &urban, true).await;
    assert_eq!(
        rows[0],
        [
            "编号",
            "姓名",
            "部门代码",
            "部门",
            "执法证有效期至",
            "执法证有效"
        ]
    );
    assert_eq!(
        rows[3],
        ["insp-c", "Sun Li", "urban", "城管", "2001-01-01", "否"]
    );

    // Two draws; a result on the first.
    let mut ids = Vec::new();
    for (item, seed) in [("终端在线", 9_007_199_254_740_991_u64), ("密闭运输", 7)] {
        let r = app
            .post("/api/v1/inspections/draws", Some(&urban),
                  &json!({"item": item, "population": "vehicles", "count": 2, "departments": ["police", "urban"], "seed": seed}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.json());
    }
    let first = ids[0]["id"].as_i64().unwrap();
    let object = ids[0]["objects"][0]["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/api/v1/inspections/draws/{first}/results"),
            Some(&urban),
            &json!({"object_id": object, "result": "fail", "finding": "篷布未盖"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // 一公开: newest first, paged, with the request that drew it; no names.
    let public = app.get("/api/v1/inspections/public", None).await.json();
    assert_eq!(public["total"], 2);
    assert_eq!(public["items"][0]["id"], ids[1]["id"], "newest first");
    assert_eq!(
        public["items"][1]["request"],
        json!({"count": 2, "departments": ["police", "urban"]})
    );
    let page = app
        .get("/api/v1/inspections/public?limit=1&offset=1", None)
        .await
        .json();
    assert_eq!(
        (page["items"][0]["id"].as_i64(), page["total"].clone()),
        (Some(first), json!(2))
    );
    let r = app
        .get("/api/v1/inspections/public?format=xlsx", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = sheet(&r.bytes, 1);
    assert_eq!(
        rows[0],
        [
            "抽查编号",
            "检查事项",
            "抽查对象类别",
            "抽取时间",
            "随机种子",
            "名录哈希",
            "抽中对象",
            "检查部门",
            "检查结果"
        ]
    );
    let row = &rows[2];
    assert_eq!(row[col(&rows, "抽查编号")], first.to_string());
    assert_eq!(row[col(&rows, "抽查对象类别")], "车辆");
    assert_eq!(
        row[col(&rows, "随机种子")],
        "9007199254740991",
        "all 16 digits"
    );
    assert!(
        row[col(&rows, "检查结果")].contains(&format!("{object}: 不合格 (篷布未盖)")),
        "{row:?}"
    );
    assert!(row[col(&rows, "检查结果")].contains("未录入"), "{row:?}");
    assert!(row[col(&rows, "检查部门")].contains("公安交警"), "{row:?}");
    for cell in rows.iter().flatten() {
        for secret in ["Zhao Lei", "Qian Yu", "insp-a", "insp-b"] {
            assert!(!cell.contains(secret), "{secret} published: {cell}");
        }
    }

    // The officials' list names who inspects each object.
    assert_eq!(
        app.get("/api/v1/inspections/draws", Some(&firm))
            .await
            .status,
        403
    );
    assert_eq!(app.get("/api/v1/inspections/draws", None).await.status, 401);
    let draws = app
        .get("/api/v1/inspections/draws", Some(&urban))
        .await
        .json();
    assert_eq!(draws["total"], 2);
    let who = &draws["items"][1]["objects"][0]["inspectors"];
    let names: BTreeSet<&str> = who
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["Zhao Lei", "Qian Yu"]), "{who}");
    let rows = workbook(&app, "/api/v1/inspections/draws", &app.admin, false).await;
    let cell = &rows[2][col(&rows, "检查人员")];
    assert!(
        cell.contains("Zhao Lei (insp-a, 公安交警)") && cell.contains("Qian Yu (insp-b, 城管)"),
        "{cell}"
    );

    // A renewed certificate (admin only): the expired inspector is valid again.
    let patch = |token: String, id: &'static str, body: Value| {
        let app = &app;
        async move {
            http(
                app.http,
                "PATCH",
                &format!("/api/v1/inspectors/{id}"),
                Some(&token),
                Some(body.to_string()),
            )
            .await
        }
    };
    let renew = json!({"cert_valid_until": "2030-06-30"});
    assert_eq!(
        patch(urban.clone(), "insp-c", renew.clone()).await.status,
        403
    );
    assert_eq!(
        patch(app.admin.clone(), "nobody", renew.clone())
            .await
            .status,
        404
    );
    assert_eq!(
        patch(app.admin.clone(), "insp-c", json!({})).await.status,
        422
    );
    assert_eq!(
        patch(
            app.admin.clone(),
            "insp-c",
            json!({"cert_valid_until": "2030-02-30"})
        )
        .await
        .status,
        422
    );
    let r = patch(app.admin.clone(), "insp-c", renew).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"id": "insp-c", "name": "Sun Li", "department": "urban",
               "cert_valid_until": "2030-06-30", "cert_valid": true})
    );
    let pool = app
        .get("/api/v1/inspectors?department=urban", Some(&urban))
        .await
        .json();
    assert!(pool["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["cert_valid"] == true));
    app.stop().await;
}

//! muckwatch itself on PostgreSQL: the same service, started through the
//! same helper, on a fresh database of its own. Ignored by a plain
//! `cargo test`; `.ci/run` runs it with `--ignored`.

use std::time::Duration;

use crate::common::db::postgres_db;
use crate::common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL; run by .ci/run"]
async fn serve_on_postgres_ingests_detects_files_cases_and_survives_a_restart() {
    let db = postgres_db().await;
    let mut settings = test_settings(&temp_db());
    settings.database.url = db.url.clone();
    let app = spawn_with(settings.clone()).await;
    app.register("firm-pg", "苏J70001", "dev-pg1").await;
    let police = app.token("dept:police").await;
    let p = app.publisher().await;
    // No permit, 70 km/h: SPEEDING then NO_PERMIT, both in one case.
    for i in 0..36 {
        let t = chrono::DateTime::parse_from_rfc3339("2021-06-01T22:00:00+08:00").unwrap()
            + chrono::Duration::seconds(10 * i);
        p.send(
            "dev-pg1",
            fix_json(
                "dev-pg1",
                &t.to_rfc3339(),
                33.335,
                120.02 + 0.00209 * i as f64,
                70.0,
            ),
        )
        .await;
    }
    p.send("dev-pg1", "{broken").await;
    let cases = eventually(Duration::from_secs(20), || async {
        let r = app.get("/api/v1/cases", Some(&police)).await.json();
        (r["total"] == 1 && r["items"][0]["codes"] == json!(["NO_PERMIT", "SPEEDING"])).then_some(r)
    })
    .await
    .expect("one case with both codes");
    let case_id = cases["items"][0]["id"].as_i64().unwrap();
    let r = app
        .post(
            &format!("/api/v1/cases/{case_id}/checks/police"),
            Some(&police),
            &json!({"status": "investigating"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.metric("muckwatch_messages_rejected_total{reason=\"not_json\"}")
            .await,
        1.0
    );
    drop(p);
    app.stop().await;

    let again = spawn_with(settings).await;
    let r = again.track("苏J70001", &again.admin).await;
    assert_eq!(
        r.json()["properties"]["fixes"].as_array().unwrap().len(),
        36
    );
    let case = again
        .get(&format!("/api/v1/cases/{case_id}"), Some(&police))
        .await
        .json();
    let police_check = case["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["department"] == "police")
        .cloned()
        .unwrap();
    assert_eq!(police_check["status"], "investigating");
    assert_eq!(
        again
            .get("/api/v1/dead-letters", Some(&again.admin))
            .await
            .json()["total"],
        1
    );
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL; run by .ci/run"]
async fn nul_and_control_characters_on_postgres_get_a_reason_or_a_400_and_ingest_goes_on() {
    let db = postgres_db().await;
    let mut settings = test_settings(&temp_db());
    settings.database.url = db.url.clone();
    let app = spawn_with(settings).await;
    crate::common::untrusted::nul_and_control_characters_are_refused_at_the_edge(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL; run by .ci/run"]
async fn rows_postgres_refuses_are_quarantined_and_the_next_batch_goes_on() {
    use sqlx::Connection;
    let db = postgres_db().await;
    let mut settings = test_settings(&temp_db());
    settings.database.url = db.url.clone();
    let app = spawn_with(settings).await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("db");
    sqlx::query(&format!(
        "ALTER TABLE fixes ADD CONSTRAINT poison CHECK (device_id <> '{}')",
        crate::common::untrusted::POISONED_DEVICE
    ))
    .execute(&mut conn)
    .await
    .expect("constraint");
    crate::common::untrusted::a_refused_row_costs_only_itself(&app).await;
    app.stop().await;
}

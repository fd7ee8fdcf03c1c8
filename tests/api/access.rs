//! Every endpoint x every kind of caller, with the status each must get.

use crate::common::*;
use serde_json::json;

const ROLES: [&str; 7] = [
    "admin",
    "urban",
    "police",
    "own_firm",
    "other_firm",
    "none",
    "bad",
];

#[tokio::test]
async fn access_control_matrix() {
    let app = spawn_app().await;
    app.register("firm-a", "苏J50001", "dev-a1").await;
    app.register("firm-b", "苏J50002", "dev-b1").await;
    let permit = json!({"id": "PA-1", "firm_id": "firm-a", "plates": ["苏J50001"], "source_site": "s01", "disposal_site": "d01",
                        "routes": ["route-s01-d01"], "windows": [], "valid_from": "2021-06-01", "valid_until": "2021-12-31"});
    assert_eq!(
        app.post("/api/v1/permits", Some(&app.admin), &permit)
            .await
            .status,
        201
    );
    // SPEEDING goes to the police only.
    let (violation, case) = seed_violation(
        &app.store,
        "SPEEDING",
        "苏J50001",
        "dev-a1",
        "firm-a",
        "2021-06-01T22:00:00+08:00",
    )
    .await;

    let mut tokens = std::collections::HashMap::new();
    tokens.insert("admin", Some(app.admin.clone()));
    tokens.insert("urban", Some(app.token("dept:urban").await));
    tokens.insert("police", Some(app.token("dept:police").await));
    tokens.insert("own_firm", Some(app.token("firm:firm-a").await));
    tokens.insert("other_firm", Some(app.token("firm:firm-b").await));
    tokens.insert("none", None);
    tokens.insert("bad", Some("mw_0000".to_string()));

    // A permit application of firm-a, waiting for its decision.
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let application = json!({"plates": ["苏J50001"], "source_site": "s01", "disposal_site": "d01",
                             "routes": ["route-s01-d01"], "windows": [], "valid_from": today.to_string(),
                             "valid_until": (today + chrono::Duration::days(30)).to_string()});
    let applied = app
        .post(
            "/api/v1/permit-applications",
            tokens["own_firm"].as_deref(),
            &application,
        )
        .await;
    assert_eq!(applied.status, 201, "{}", applied.body);
    let applied = applied.json()["id"].clone();

    let plate = encode("苏J50001");
    // (method, path, body, expected status per role in ROLES order)
    let matrix: Vec<(&str, String, Option<serde_json::Value>, [u16; 7])> = vec![
        (
            "GET",
            "/healthz".into(),
            None,
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/metrics".into(),
            None,
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/meta".into(),
            None,
            [200, 200, 200, 200, 200, 401, 401],
        ),
        (
            "POST",
            "/api/v1/firms".into(),
            Some(json!({"id": "firm-new", "name": "N"})),
            [201, 403, 403, 403, 403, 401, 401],
        ),
        (
            "POST",
            "/api/v1/vehicles".into(),
            Some(
                json!({"plate": "苏J59999", "device_id": "dev-new", "firm_id": "firm-a", "rated_load_t": 30}),
            ),
            [201, 403, 403, 403, 403, 401, 401],
        ),
        (
            "POST",
            "/api/v1/permits".into(),
            Some(
                json!({"id": "PA-2", "firm_id": "firm-a", "plates": ["苏J50001"], "source_site": "s01", "disposal_site": "d01", "routes": [], "windows": [], "valid_from": "2021-06-01", "valid_until": "2021-12-31"}),
            ),
            [201, 403, 403, 403, 403, 401, 401],
        ),
        (
            "GET",
            "/api/v1/permits".into(),
            None,
            [200, 200, 200, 200, 200, 401, 401],
        ),
        (
            "GET",
            "/api/v1/permits/PA-1".into(),
            None,
            [200, 200, 200, 200, 404, 401, 401],
        ),
        (
            "PATCH",
            "/api/v1/permits/PA-1".into(),
            Some(json!({"status": "active"})),
            [200, 403, 403, 403, 404, 401, 401],
        ),
        (
            "POST",
            "/api/v1/permit-applications".into(),
            Some(application.clone()),
            // Firms apply (another firm's vehicle fails a check, not access).
            [403, 403, 403, 201, 201, 401, 401],
        ),
        (
            "GET",
            "/api/v1/permit-applications".into(),
            None,
            [200, 200, 200, 200, 200, 401, 401],
        ),
        (
            "GET",
            format!("/api/v1/permit-applications/{applied}"),
            None,
            [200, 200, 200, 200, 404, 401, 401],
        ),
        (
            "POST",
            format!("/api/v1/permit-applications/{applied}/decision"),
            // A rejection without its reason: refused after the role is
            // checked, so nothing is decided here.
            Some(json!({"approve": false})),
            [422, 422, 403, 403, 404, 401, 401],
        ),
        (
            "GET",
            format!("/api/v1/vehicles/{plate}/track"),
            None,
            [200, 200, 200, 200, 404, 401, 401],
        ),
        (
            "GET",
            "/api/v1/violations".into(),
            None,
            [200, 200, 200, 200, 200, 401, 401],
        ),
        (
            "GET",
            format!("/api/v1/violations/{violation}"),
            None,
            // SPEEDING is routed to the police only: urban does not see it.
            [200, 404, 200, 200, 404, 401, 401],
        ),
        (
            "GET",
            "/api/v1/cases".into(),
            None,
            [200, 200, 200, 200, 200, 401, 401],
        ),
        (
            "GET",
            format!("/api/v1/cases/{case}"),
            None,
            [200, 404, 200, 200, 404, 401, 401],
        ),
        (
            "GET",
            "/api/v1/stats".into(),
            None,
            [200, 200, 200, 403, 403, 401, 401],
        ),
        (
            "GET",
            "/api/v1/geofences".into(),
            None,
            [200, 200, 200, 200, 200, 401, 401],
        ),
        (
            "GET",
            "/api/v1/dead-letters".into(),
            None,
            [200, 403, 403, 403, 403, 401, 401],
        ),
        (
            "GET",
            "/api/v1/credit".into(),
            None,
            [200, 200, 200, 403, 403, 401, 401],
        ),
        (
            "GET",
            "/api/v1/firms/firm-a/credit".into(),
            None,
            [200, 200, 200, 200, 404, 401, 401],
        ),
        (
            "POST",
            "/api/v1/inspectors".into(),
            Some(
                json!({"id": "insp-m", "name": "M", "department": "police", "cert_valid_until": "2099-01-01"}),
            ),
            [201, 403, 403, 403, 403, 401, 401],
        ),
        (
            "PATCH",
            "/api/v1/inspectors/insp-m".into(),
            Some(json!({"cert_valid_until": "2099-06-30"})),
            [200, 403, 403, 403, 403, 401, 401],
        ),
        (
            "GET",
            "/api/v1/inspectors".into(),
            None,
            [200, 200, 200, 403, 403, 401, 401],
        ),
        (
            "GET",
            "/api/v1/inspections/draws".into(),
            None,
            [200, 200, 200, 403, 403, 401, 401],
        ),
        (
            "GET",
            "/api/v1/inspections/public".into(),
            None,
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "SSE",
            "/api/v1/alerts/stream".into(),
            None,
            [200, 200, 200, 403, 403, 401, 401],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, expected) in &matrix {
        for (role, want) in ROLES.iter().zip(expected) {
            let token = tokens[role].as_deref();
            let got = match *method {
                "SSE" => http_status_only(app.http, path, token).await,
                m => {
                    // Only the admin's creations succeed, so ids never collide.
                    let b = body.clone();
                    http(app.http, m, path, token, b.map(|b| b.to_string()))
                        .await
                        .status
                }
            };
            if got != *want {
                failures.push(format!("{method} {path} as {role}: got {got}, want {want}"));
            }
        }
    }
    // Checks: only the check's own department (or an admin) may move it.
    let check = format!("/api/v1/cases/{case}/checks/police");
    for (role, want, body) in [
        ("urban", 403, json!({"status": "investigating"})),
        ("own_firm", 403, json!({"status": "investigating"})),
        ("other_firm", 403, json!({"status": "investigating"})),
        ("none", 401, json!({"status": "investigating"})),
        ("bad", 401, json!({"status": "investigating"})),
        ("police", 200, json!({"status": "investigating"})),
        (
            "admin",
            200,
            json!({"status": "decided", "finding": "radar"}),
        ),
    ] {
        let got = http(
            app.http,
            "POST",
            &check,
            tokens[role].as_deref(),
            Some(body.to_string()),
        )
        .await
        .status;
        if got != want {
            failures.push(format!("POST {check} as {role}: got {got}, want {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await;
}

//! What an officer or an operator trips over first: plain dates in
//! filters, errors that are JSON and say nothing of the database, the
//! console's security headers, a client that sends half a request, and a
//! database password that never reaches a log.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

#[tokio::test]
async fn plain_dates_are_whole_local_days() {
    let app = spawn_app().await;
    app.register("firm-d", "苏J61001", "dev-d1").await;
    // 31 May 23:30, 1 June 00:10, 30 June 23:50 and 1 July 00:05, city time.
    for t in [
        "2021-05-31T23:30:00+08:00",
        "2021-06-01T00:10:00+08:00",
        "2021-06-30T23:50:00+08:00",
        "2021-07-01T00:05:00+08:00",
    ] {
        seed_violation(&app.store, "SPEEDING", "苏J61001", "dev-d1", "firm-d", t).await;
    }
    let s = app
        .get(
            "/api/v1/stats?from=2021-06-01&to=2021-06-30",
            Some(&app.admin),
        )
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    let s = s.json();
    assert_eq!(s["violations"], 2, "June only: {s}");
    assert_eq!(s["from"], "2021-06-01T00:00:00+08:00");
    assert_eq!(s["to"], "2021-06-30T23:59:59.999+08:00");

    let v = app
        .get("/api/v1/violations?since=2021-06-30", Some(&app.admin))
        .await
        .json();
    assert_eq!(v["total"], 2, "30 June and 1 July: {v}");
    // Fixes of one night join one case: two cases, opened 31 May and 30 June.
    let c = app
        .get(
            "/api/v1/cases?from=2021-06-01&to=2021-06-30",
            Some(&app.admin),
        )
        .await
        .json();
    assert_eq!(c["total"], 1, "{c}");
    assert_eq!(c["items"][0]["opened_at"], "2021-06-30T23:50:00+08:00");
    // An RFC 3339 time still works; a date that is not one is a 400 naming it.
    let v = app
        .get(
            "/api/v1/violations?since=2021-06-30T16:00:00Z",
            Some(&app.admin),
        )
        .await
        .json();
    assert_eq!(v["total"], 1);
    let bad = app
        .get("/api/v1/stats?from=2021-06-31", Some(&app.admin))
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["detail"].as_str().unwrap().contains("from"));
    app.stop().await;
}

#[tokio::test]
async fn errors_are_the_contracts_json_and_hide_the_database() {
    let app = spawn_app().await;
    app.register("firm-e", "苏J61002", "dev-e1").await;
    let (_, case) = seed_violation(
        &app.store,
        "SPEEDING",
        "苏J61002",
        "dev-e1",
        "firm-e",
        "2021-06-01T22:00:00+08:00",
    )
    .await;
    for (path, status) in [
        ("/api/v1/cases/abc", 400),
        ("/api/v1/violations/1.5", 400),
        ("/api/v1/nothing-here", 404),
    ] {
        let r = app.get(path, Some(&app.admin)).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(
            r.header("content-type").starts_with("application/json"),
            "{path}"
        );
        assert!(r.json()["error"].is_string(), "{path}: {}", r.body);
    }
    let r = http(app.http, "DELETE", "/api/v1/cases", Some(&app.admin), None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["error"], "method_not_allowed");

    // The audit table goes missing under the running service (a restore
    // gone wrong): the officer gets a 503 that names no table.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", app.db.display()))
        .await
        .unwrap();
    sqlx::query("DROP TABLE case_audit")
        .execute(&pool)
        .await
        .unwrap();
    let r = app
        .get(&format!("/api/v1/cases/{case}"), Some(&app.admin))
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    let e = r.json();
    assert_eq!(e["error"], "storage_unavailable");
    let detail = e["detail"].as_str().unwrap();
    assert!(
        !detail.contains("case_audit") && !detail.contains("table"),
        "{detail}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_console_forbids_framing_and_foreign_sources() {
    let app = spawn_app().await;
    for path in ["/", "/console/app.js", "/api/v1/meta"] {
        let r = app.get(path, None).await;
        assert_eq!(
            r.header("content-security-policy"),
            "default-src 'self'; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(r.header("x-frame-options"), "DENY", "{path}");
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{path}");
    }
    app.stop().await;
}

/// A client that sends half a request head and waits is cut off, and does
/// not hold up shutdown.
#[tokio::test]
async fn half_sent_requests_are_cut_off_and_shutdown_does_not_wait_for_them() {
    let db = temp_db();
    let mut settings = test_settings(&db);
    settings.http.header_read_timeout_s = 1;
    let app = spawn_with(settings).await;
    let mut slow = tokio::net::TcpStream::connect(app.http).await.unwrap();
    slow.write_all(b"GET /api/v1/cases HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the connection is closed by the server, not left open"
    );
    // Another half-sent request is open while the service stops.
    let mut held = tokio::net::TcpStream::connect(app.http).await.unwrap();
    held.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), app.stop())
        .await
        .expect("shutdown is not held by a half-sent request");
}

#[test]
fn database_passwords_never_reach_the_output() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_muckwatch"))
        .env_remove("RUST_LOG")
        .args([
            "token",
            "create",
            "--role",
            "admin",
            "--database-url",
            "postgres://mw:s3cretpw@127.0.0.1:1/mw",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("mw:***@127.0.0.1:1"), "{all}");
    assert!(!all.contains("s3cretpw"), "{all}");

    let flags = muckwatch::configuration::Overrides {
        database_url: Some("mysql://mw:s3cretpw@db/mw".into()),
        ..Default::default()
    };
    let err = muckwatch::configuration::Settings::load_with_env(None, &flags, |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        !err.contains("s3cretpw") && err.contains("database.url"),
        "{err}"
    );
    let mut s = muckwatch::configuration::Settings::default();
    s.database.url = "postgres://mw:s3cretpw@db/mw".into();
    assert!(!format!("{s:?}").contains("s3cretpw"));
}

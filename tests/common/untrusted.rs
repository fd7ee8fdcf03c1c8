//! Poison from terminals and HTTP clients, run against a started muckwatch:
//! shared by the hermetic SQLite test (tests/api) and the PostgreSQL one
//! (tests/external), since PostgreSQL is where a NUL used to stop ingest.

use std::time::Duration;

use serde_json::json;

use super::*;

/// NUL bytes raw and escaped in payloads, a newline in a device id and a
/// topic, NUL in query parameters, paths and JSON bodies: each gets a reason
/// or a 4xx (never a 5xx), and the valid fixes published after them are
/// stored.
pub async fn nul_and_control_characters_are_refused_at_the_edge(app: &TestApp) {
    app.register("firm-nul", "苏J0NUL1", "dev-nul").await;
    let p = app.publisher().await;
    let good = |s: u32| {
        fix_json(
            "dev-nul",
            &format!("2021-06-01T22:00:{s:02}+08:00"),
            33.38,
            120.16,
            20.0,
        )
    };
    // raw NUL byte
    p.send("dev-nul", good(0).replace("true,", "true,\0")).await;
    // escaped NUL in the device id and in the time
    p.send(
        "dev-nul",
        good(0).replace("\"dev-nul\"", "\"dev\\u0000nul\""),
    )
    .await;
    p.send("dev-nul", good(0).replace("+08:00\"", "+08:00\\u0000\""))
        .await;
    // a newline in the device id (a forged log line) and in a topic
    p.send(
        "dev-nul",
        good(0).replace("\"dev-nul\"", "\"dev-nul\\nINFO forged\""),
    )
    .await;
    p.send_to(&format!("{}/pos/07/dev\nnul", app.prefix), good(0))
        .await;
    // a time in year 0 and a load of 1e308
    p.send(
        "dev-nul",
        good(0).replace("2021-06-01T22:00:00+08:00", "0000-01-01T00:00:00Z"),
    )
    .await;
    p.send(
        "dev-nul",
        good(0).replace("\"load_t\":20.0", "\"load_t\":1e308"),
    )
    .await;
    for s in 1..=3 {
        p.send("dev-nul", good(s)).await;
    }
    let stored = eventually(Duration::from_secs(20), || async {
        let r = app.track("苏J0NUL1", &app.admin).await;
        let n = r.json()["properties"]["fixes"]
            .as_array()
            .map_or(0, Vec::len);
        (n == 3).then_some(())
    })
    .await;
    assert!(
        stored.is_some(),
        "the valid fixes after the poison are stored"
    );
    let refused = eventually(Duration::from_secs(10), || async {
        let n = app
            .metric("muckwatch_messages_rejected_total{reason=\"control_character\"}")
            .await;
        (n >= 4.0).then_some(n)
    })
    .await;
    assert_eq!(
        refused,
        Some(4.0),
        "raw NUL, NUL in device_id and ts, newline in device_id"
    );
    assert_eq!(
        app.metric("muckwatch_messages_rejected_total{reason=\"bad_timestamp\"}")
            .await,
        1.0
    );
    assert_eq!(
        app.metric("muckwatch_messages_rejected_total{reason=\"out_of_range\"}")
            .await,
        1.0
    );
    let dead = eventually(Duration::from_secs(10), || async {
        let r = app
            .get("/api/v1/dead-letters?limit=100", Some(&app.admin))
            .await;
        (r.status == 200 && r.json()["total"].as_i64() >= Some(7)).then_some(r)
    })
    .await
    .expect("the refused messages are kept as dead letters");
    let body = dead.json();
    for d in body["items"].as_array().expect("items") {
        for field in ["topic", "detail", "payload"] {
            let text = d[field].as_str().unwrap_or("");
            assert!(!text.contains('\0'), "{field}: {text:?}");
            if field != "payload" {
                assert!(!text.contains('\n'), "{field}: {text:?}");
            }
        }
    }

    // HTTP: NUL in query parameters, paths and JSON bodies.
    for path in [
        "/api/v1/permits?plate=a%00b",
        "/api/v1/permits/a%00b",
        "/api/v1/vehicles/a%00b/track",
        "/api/v1/violations?plate=%00&code=SPEEDING",
        "/api/v1/cases?department=urban%00",
    ] {
        let r = app.get(path, Some(&app.admin)).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(r.json()["error"], "bad_request", "{path}: {}", r.body);
        assert!(r.json()["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let r = app
        .post(
            "/api/v1/firms",
            Some(&app.admin),
            &json!({"id": "firm-n2", "name": "a\u{0}b"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["detail"].as_str().unwrap_or("").contains("`name`"),
        "{}",
        r.body
    );
    let r = app
        .post(
            "/api/v1/permits",
            Some(&app.admin),
            &json!({"id": "P-N", "firm_id": "firm-nul", "plates": ["苏J0NUL1\u{0}"],
                    "source_site": "s01", "disposal_site": "d01", "routes": [],
                    "windows": [], "valid_from": "2021-01-01", "valid_until": "2021-12-31"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // and the service goes on: a clean firm is created, fixes keep coming
    let r = app
        .post(
            "/api/v1/firms",
            Some(&app.admin),
            &json!({"id": "firm-n2", "name": "ab"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    p.send("dev-nul", good(4)).await;
    let more = eventually(Duration::from_secs(20), || async {
        let r = app.track("苏J0NUL1", &app.admin).await;
        let n = r.json()["properties"]["fixes"]
            .as_array()
            .map_or(0, Vec::len);
        (n == 4).then_some(())
    })
    .await;
    assert!(more.is_some(), "ingest goes on");
}

/// The device whose rows the database refuses in
/// [`a_refused_row_costs_only_itself`] (the test installs the refusal: a
/// trigger on SQLite, a CHECK constraint on PostgreSQL).
pub const POISONED_DEVICE: &str = "dev-poison";

/// Rows the database refuses (a data error, not a passing one) are found
/// and quarantined as dead letters; the rest of their batch is committed
/// and the batches after it go on.
pub async fn a_refused_row_costs_only_itself(app: &TestApp) {
    app.register("firm-p", "苏J0P001", "dev-fine").await;
    app.register("firm-p", "苏J0P002", POISONED_DEVICE).await;
    let p = app.publisher().await;
    let fix = |dev: &str, s: u32| {
        fix_json(
            dev,
            &format!("2021-06-01T22:10:{s:02}+08:00"),
            33.38,
            120.16,
            20.0,
        )
    };
    for s in 0..5 {
        p.send("dev-fine", fix("dev-fine", s)).await;
        p.send(POISONED_DEVICE, fix(POISONED_DEVICE, s)).await;
    }
    // and one message with both kinds in one batch array is not possible
    // (one device per topic), so a batch of the poisoned device's own
    let batch: Vec<String> = (5..8).map(|s| fix(POISONED_DEVICE, s)).collect();
    p.send(POISONED_DEVICE, format!("[{}]", batch.join(",")))
        .await;
    let track_len = |plate: &'static str| async move {
        let r = app.track(plate, &app.admin).await;
        r.json()["properties"]["fixes"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let quarantined = eventually(Duration::from_secs(20), || async {
        let q = app.metric("muckwatch_fixes_quarantined_total").await;
        (q >= 8.0 && track_len("苏J0P001").await == 5).then_some(q)
    })
    .await;
    assert_eq!(
        quarantined,
        Some(8.0),
        "every refused row found, the others stored"
    );
    // the next batches are written as usual
    for s in 5..10 {
        p.send("dev-fine", fix("dev-fine", s)).await;
    }
    let next = eventually(Duration::from_secs(20), || async {
        (track_len("苏J0P001").await == 10).then_some(())
    })
    .await;
    assert!(next.is_some(), "the batch after a data error is stored");
    assert_eq!(track_len("苏J0P002").await, 0);
    assert_eq!(app.metric("muckwatch_fixes_ingested_total").await, 10.0);
    let r = app
        .get("/api/v1/dead-letters?limit=100", Some(&app.admin))
        .await
        .json();
    let kept: Vec<&serde_json::Value> = r["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|d| d["reason"] == "store_refused")
        .collect();
    assert_eq!(kept.len(), 8, "{r}");
    assert!(kept.iter().all(|d| d["payload"]
        .as_str()
        .is_some_and(|p| p.contains(POISONED_DEVICE))));
}

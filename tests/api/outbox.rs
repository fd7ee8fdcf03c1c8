//! Outbound events as an administrator sees them: a webhook that is away
//! leaves its events listed (attempts, last error, in order) and counted in
//! /metrics; a bad webhook entry stops `serve` naming its place.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::common::*;

#[test]
fn a_bad_webhook_is_refused_naming_its_place() {
    let dir = std::env::temp_dir().join(unique("conf"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("muckwatch.toml");
    for (toml, said) in [
        (
            "[[outbox.webhooks]]\nurl = \"http://a/\"\nsecret = \"k\"\n\
             [[outbox.webhooks]]\nurl = \"http://b/\"\nsecret = \"k\"\nevents = [\"case.opened\", \"case.closd\"]\n",
            "outbox.webhooks[1].events[1]: unknown event type `case.closd`",
        ),
        (
            "[[outbox.webhooks]]\nurl = \"receiver:8000\"\nsecret = \"k\"\n",
            "outbox.webhooks[0].url",
        ),
    ] {
        std::fs::write(&file, toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_muckwatch"))
            .env_remove("RUST_LOG")
            .args(["serve", "--config", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "{err}");
    }
}

#[tokio::test]
async fn events_a_webhook_did_not_take_are_listed_for_admins_in_order() {
    // Nobody listens on this port: every attempt is refused.
    let away = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", away.local_addr().unwrap());
    drop(away);
    let mut settings = test_settings(&temp_db());
    settings.outbox = toml::from_str::<muckwatch::configuration::Settings>(&format!(
        "[outbox]\npoll_ms = 100\n[[outbox.webhooks]]\nurl = \"{url}\"\nsecret = \"k\"\nevents = [\"permit.changed\"]\n"
    ))
    .unwrap()
    .outbox;
    let app = spawn_with(settings).await;
    app.register("firm-o", "苏J70001", "dev-o1").await;
    let permit = json!({"id": "PO-1", "firm_id": "firm-o", "plates": ["苏J70001"], "source_site": "s01",
                        "disposal_site": "d01", "routes": [], "windows": [], "valid_from": "2021-06-01",
                        "valid_until": "2021-12-31"});
    assert_eq!(
        app.post("/api/v1/permits", Some(&app.admin), &permit)
            .await
            .status,
        201
    );
    let patched = http(
        app.http,
        "PATCH",
        "/api/v1/permits/PO-1",
        Some(&app.admin),
        Some(json!({"status": "suspended"}).to_string()),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let tried = eventually(Duration::from_secs(20), || async {
        let list = app.get("/api/v1/outbox", Some(&app.admin)).await.json();
        (list["items"][0]["attempts"].as_i64() >= Some(1)).then_some(list)
    })
    .await
    .expect("delivery attempted");
    assert_eq!(tried["total"], 2);
    let items = tried["items"].as_array().unwrap();
    assert_eq!(items[0]["type"], "permit.changed");
    assert_eq!(items[0]["event"]["data"]["change"], "created");
    assert_eq!(items[1]["event"]["data"]["change"], "status");
    assert_eq!(items[1]["event"]["data"]["previous_status"], "active");
    assert_eq!(items[1]["event"]["data"]["permit"]["status"], "suspended");
    assert_eq!(items[1]["attempts"], 0, "held back behind the first");
    assert_eq!(items[0]["webhook"], url.as_str());
    assert!(
        items[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("connecting"),
        "{}",
        items[0]
    );
    assert_eq!(app.metric("muckwatch_outbox_pending").await, 2.0);
    assert_eq!(app.metric("muckwatch_outbox_delivered_total").await, 0.0);
    let urban = app.token("dept:urban").await;
    assert_eq!(app.get("/api/v1/outbox", Some(&urban)).await.status, 403);
    assert_eq!(app.get("/api/v1/outbox", None).await.status, 401);
    app.stop().await;
}

/// An application approved (不见面审批) creates its permit through the same
/// store function as `POST /api/v1/permits`: a `permit.changed` event.
#[tokio::test]
async fn an_approved_application_is_a_permit_changed_event() {
    use crate::applications::{application, decide, submit};
    let away = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", away.local_addr().unwrap());
    drop(away);
    let mut settings = test_settings(&temp_db());
    settings.outbox = toml::from_str::<muckwatch::configuration::Settings>(&format!(
        "[[outbox.webhooks]]\nurl = \"{url}\"\nsecret = \"k\"\n"
    ))
    .unwrap()
    .outbox;
    let app = spawn_with(settings).await;
    app.register("firm-p", "苏J70101", "dev-p1").await;
    let firm = app.token("firm:firm-p").await;
    let a = submit(&app, &firm, &application(&["苏J70101"])).await;
    let r = decide(&app, &a["id"], &app.admin, json!({"approve": true})).await;
    assert!(r.status < 300, "{}", r.body);
    let list = app.get("/api/v1/outbox", Some(&app.admin)).await.json();
    let events: Vec<&serde_json::Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["event"])
        .collect();
    assert_eq!(events.len(), 1, "{list}");
    assert_eq!(events[0]["type"], "permit.changed");
    assert_eq!(events[0]["data"]["change"], "created");
    assert_eq!(events[0]["data"]["permit"]["status"], "active");
    assert_eq!(events[0]["data"]["permit"]["plates"], json!(["苏J70101"]));
    app.stop().await;
}

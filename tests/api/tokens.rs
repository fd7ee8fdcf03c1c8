//! Tokens an administrator can manage: `token list`, `token revoke ID`,
//! `token create --expires-in`; a revoked or expired token is a 401 that
//! says which.

use std::process::Command;
use std::time::Duration;

use muckwatch::api::REVOCATION_BOUND;
use muckwatch::auth::{new_token, token_hash, Role};

use crate::common::*;

fn muckwatch(app: &TestApp, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_muckwatch"))
        .env_remove("RUST_LOG")
        .args(args)
        .args(["--database-url", &format!("sqlite://{}", app.db.display())])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused() {
    let app = spawn_app().await;
    let (ok, out) = muckwatch(
        &app,
        &[
            "token",
            "create",
            "--role",
            "dept:police",
            "--expires-in",
            "12h",
        ],
    );
    assert!(ok, "{out}");
    let token = out.split_whitespace().last().unwrap().to_string();
    let id = out.split_whitespace().nth(2).unwrap().to_string();
    assert!(out.contains("expires 20"), "{out}");
    assert_eq!(&token_hash(&token)[..12], id, "the id is the hash's start");
    let me = app.get("/api/v1/whoami", Some(&token)).await;
    assert_eq!(me.status, 200, "{}", me.body);

    let (ok, list) = muckwatch(&app, &["token", "list"]);
    assert!(ok, "{list}");
    let line = list.lines().find(|l| l.starts_with(&id)).expect("listed");
    assert!(
        line.contains("dept:police") && line.ends_with("active"),
        "{line}"
    );
    assert!(!list.contains(&token), "the token itself is never shown");

    let (ok, out) = muckwatch(&app, &["token", "revoke", &id]);
    assert!(ok, "{out}");
    // Verified tokens are cached; a revocation by another process is seen
    // within the stated bound.
    let revoked_at = std::time::Instant::now();
    let r = eventually(REVOCATION_BOUND + Duration::from_secs(1), || async {
        let r = app.get("/api/v1/whoami", Some(&token)).await;
        (r.status != 200).then_some(r)
    })
    .await
    .expect("the revoked token is refused");
    assert!(
        revoked_at.elapsed() <= REVOCATION_BOUND,
        "refused after {:?}",
        revoked_at.elapsed()
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["detail"], "token revoked");
    let (_, list) = muckwatch(&app, &["token", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with(&id) && l.ends_with("revoked")),
        "{list}"
    );

    // Expired an hour ago.
    let old = new_token().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    app.store
        .create_token_expiring(
            &token_hash(&old),
            &Role::Admin,
            now - 7_200_000,
            Some(now - 3_600_000),
        )
        .await
        .unwrap();
    let r = app.get("/api/v1/cases", Some(&old)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["detail"], "token expired");

    // What is refused, and said so.
    let (ok, out) = muckwatch(&app, &["token", "revoke", "xyz"]);
    assert!(!ok && out.contains("not a token id"), "{out}");
    let (ok, out) = muckwatch(&app, &["token", "revoke", "00000000"]);
    assert!(!ok && out.contains("no token"), "{out}");
    let (ok, out) = muckwatch(
        &app,
        &["token", "create", "--role", "admin", "--expires-in", "soon"],
    );
    assert!(!ok && out.contains("--expires-in"), "{out}");
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_token_ends_its_open_streams() {
    let app = spawn_app().await;
    let token_of = |role: &str| {
        let (ok, out) = muckwatch(&app, &["token", "create", "--role", role]);
        assert!(ok, "{out}");
        let token = out.split_whitespace().last().unwrap().to_string();
        let id = out.split_whitespace().nth(2).unwrap().to_string();
        (token, id)
    };
    let (police, police_id) = token_of("dept:police");
    let (firm, firm_id) = token_of("firm:firm-r");
    let mut map = SseClient::connect(app.http, "/api/v1/vehicles/stream", &firm).await;
    map.next_event(Duration::from_secs(10))
        .await
        .expect("the firm's snapshot");
    let mut alerts = SseClient::connect(app.http, "/api/v1/alerts/stream", &police).await;
    // Nothing happens on either stream: only the token can end them.
    assert!(
        !alerts.ends_within(Duration::from_secs(1)).await,
        "an active token's stream stays open"
    );
    for id in [&police_id, &firm_id] {
        let (ok, out) = muckwatch(&app, &["token", "revoke", id]);
        assert!(ok, "{out}");
    }
    let bound = REVOCATION_BOUND + Duration::from_secs(7);
    assert!(map.ends_within(bound).await, "the live map stream ended");
    assert!(alerts.ends_within(bound).await, "the alert stream ended");
    app.stop().await;
}

//! `serve --mqtt-auth`: who may connect to the embedded broker and what
//! each may publish and read, with real MQTT clients over TCP; and the
//! same rules over HTTP for external brokers (EMQX's shape).

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::common::*;

async fn spawn_secured() -> TestApp {
    let db = temp_db();
    let mut settings = test_settings(&db);
    settings.mqtt.auth = true;
    spawn_with(settings).await
}

/// An MQTT client whose events (and its first error, after which it stops)
/// come out of `events`.
struct Client {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Packet, String>>,
}

async fn connect(app: &TestApp, login: Option<(&str, &str)>) -> Client {
    connect_as(app, &unique("c"), login).await
}

async fn connect_as(app: &TestApp, client_id: &str, login: Option<(&str, &str)>) -> Client {
    let mut opts = MqttOptions::new(client_id, app.mqtt.host.clone(), app.mqtt.port);
    opts.set_keep_alive(Duration::from_secs(30));
    if let Some((u, p)) = login {
        opts.set_credentials(u, p);
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    let (tx, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(p)) => {
                    let _ = tx.send(Ok(p));
                }
                Ok(_) => {}
                Err(e) => {
                    let text = match e {
                        ConnectionError::ConnectionRefused(code) => format!("refused: {code:?}"),
                        e => format!("error: {e}"),
                    };
                    let _ = tx.send(Err(text));
                    return;
                }
            }
        }
    });
    Client { client, events }
}

impl Client {
    /// The next incoming packet (or the error), skipping PUBACKs and pings.
    async fn next(&mut self) -> Result<Packet, String> {
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(15), self.events.recv())
                .await
                .expect("an event within 15 s")
                .expect("client task alive");
            match ev {
                Ok(Packet::PubAck(_) | Packet::PingResp) => continue,
                other => return other,
            }
        }
    }

    async fn connected(&mut self) {
        match self.next().await {
            Ok(Packet::ConnAck(_)) => {}
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    async fn suback(&mut self, filter: &str) -> bool {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        match self.next().await {
            Ok(Packet::SubAck(a)) => matches!(a.return_codes[0], SubscribeReasonCode::Success(_)),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }
}

async fn credentials(app: &TestApp, plate: &str) -> (String, String) {
    let r = app
        .post(
            &format!("/api/v1/vehicles/{}/mqtt-credentials", encode(plate)),
            Some(&app.admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    (
        v["username"].as_str().unwrap().to_string(),
        v["password"].as_str().unwrap().to_string(),
    )
}

fn own_topic(app: &TestApp, device: &str) -> String {
    muckwatch::ingest::position_topic(
        &app.prefix,
        &muckwatch::fix::DeviceId::parse(device).unwrap(),
    )
}

async fn refusals(app: &TestApp, reason: &str) -> f64 {
    app.metric(&format!(
        "muckwatch_mqtt_refused_total{{reason=\"{reason}\"}}"
    ))
    .await
}

#[tokio::test]
async fn anonymous_clients_and_wrong_passwords_are_refused() {
    let app = spawn_secured().await;
    app.register("firm-a", "苏J30001", "dev-a1").await;
    let (user, _) = credentials(&app, "苏J30001").await;
    let mut anon = connect(&app, None).await;
    assert_eq!(anon.next().await, Err("refused: NotAuthorized".into()));
    let mut wrong = connect(&app, Some((&user, "not-the-password"))).await;
    assert_eq!(
        wrong.next().await,
        Err("refused: BadUserNamePassword".into())
    );
    let mut bad_token = connect(&app, Some(("token", "mw_0000"))).await;
    assert_eq!(
        bad_token.next().await,
        Err("refused: BadUserNamePassword".into())
    );
    let firm = app.token("firm:firm-a").await;
    let mut firm_client = connect(&app, Some(("token", &firm))).await;
    assert_eq!(
        firm_client.next().await,
        Err("refused: NotAuthorized".into())
    );
    // A device borrowing muckwatch's own client id does not knock ingest off.
    let (user2, pass2) = credentials(&app, "苏J30001").await;
    let ingest_id = test_settings(&temp_db()).mqtt_client_id();
    let mut thief = connect_as(&app, &ingest_id, Some((&user2, &pass2))).await;
    assert_eq!(thief.next().await, Err("refused: BadClientId".into()));
    assert_eq!(refusals(&app, "client_id_taken").await, 1.0);
    assert_eq!(refusals(&app, "anonymous").await, 1.0);
    assert_eq!(refusals(&app, "bad_credentials").await, 3.0);
    app.stop().await;
}

#[tokio::test]
async fn a_device_publishes_its_own_fixes_and_nothing_else() {
    let app = spawn_secured().await;
    app.register("firm-a", "苏J30002", "dev-a2").await;
    app.register("firm-a", "苏J30003", "dev-a3").await;
    let (user, pass) = credentials(&app, "苏J30002").await;
    assert_eq!(user, "dev-a2");
    // A second call replaces the first password.
    let (_, pass2) = credentials(&app, "苏J30002").await;
    assert_ne!(pass, pass2);
    let mut old = connect(&app, Some((&user, &pass))).await;
    assert_eq!(old.next().await, Err("refused: BadUserNamePassword".into()));

    let mut dev = connect(&app, Some((&user, &pass2))).await;
    dev.connected().await;
    assert!(
        !dev.suback(&format!("{}/pos/#", app.prefix)).await,
        "devices read nothing"
    );
    let fix = fix_json("dev-a2", "2021-06-01T22:00:00+08:00", 33.38, 120.16, 30.0);
    dev.client
        .publish(own_topic(&app, "dev-a2"), QoS::AtLeastOnce, false, fix)
        .await
        .unwrap();
    let stored = eventually(Duration::from_secs(10), || async {
        let r = app.track("苏J30002", &app.admin).await;
        (r.json()["properties"]["fixes"]
            .as_array()
            .map_or(0, |a| a.len())
            == 1)
            .then_some(())
    })
    .await;
    assert!(stored.is_some(), "its own fix is stored");

    // Another truck's fixes: the connection is closed and nothing stored.
    let forged = fix_json("dev-a3", "2021-06-01T22:00:00+08:00", 33.38, 120.16, 30.0);
    dev.client
        .publish(own_topic(&app, "dev-a3"), QoS::AtLeastOnce, false, forged)
        .await
        .unwrap();
    assert!(dev.next().await.is_err(), "disconnected");
    // An alert: the same.
    let mut dev = connect(&app, Some((&user, &pass2))).await;
    dev.connected().await;
    dev.client
        .publish(
            format!("{}/alerts/police", app.prefix),
            QoS::AtLeastOnce,
            false,
            "{}",
        )
        .await
        .unwrap();
    assert!(dev.next().await.is_err(), "disconnected");
    assert_eq!(refusals(&app, "publish_denied").await, 2.0);
    let r = app.track("苏J30003", &app.admin).await;
    assert_eq!(r.json()["properties"]["fixes"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn an_officer_reads_its_department_alerts_and_not_the_telemetry() {
    let app = spawn_secured().await;
    app.register("firm-e", "苏J30004", "dev-a4").await;
    let (user, pass) = credentials(&app, "苏J30004").await;
    let police = app.token("dept:police").await;

    let mut officer = connect(&app, Some(("token", &police))).await;
    officer.connected().await;
    assert!(!officer.suback(&format!("{}/pos/+/+", app.prefix)).await);
    assert!(
        !officer
            .suback(&format!("{}/alerts/urban", app.prefix))
            .await
    );
    assert!(!officer.suback(&format!("{}/alerts/+", app.prefix)).await);
    assert!(
        officer
            .suback(&format!("{}/alerts/police", app.prefix))
            .await
    );

    // 70 km/h for a minute with no permit: SPEEDING goes to the police.
    let mut dev = connect(&app, Some((&user, &pass))).await;
    dev.connected().await;
    for i in 0..8 {
        let t = chrono::DateTime::parse_from_rfc3339("2021-06-01T22:00:00+08:00").unwrap()
            + chrono::Duration::seconds(10 * i);
        let fix = fix_json(
            "dev-a4",
            &t.to_rfc3339(),
            33.335,
            120.02 + 0.00209 * i as f64,
            70.0,
        );
        dev.client
            .publish(own_topic(&app, "dev-a4"), QoS::AtLeastOnce, false, fix)
            .await
            .unwrap();
    }
    let alert = loop {
        match officer.next().await {
            Ok(Packet::Publish(p)) => break serde_json::from_slice::<Value>(&p.payload).unwrap(),
            Ok(_) => continue,
            Err(e) => panic!("officer disconnected: {e}"),
        }
    };
    assert_eq!(alert["code"], "SPEEDING");
    assert_eq!(alert["plate"], "苏J30004");

    // Officers publish nothing, alerts least of all.
    officer
        .client
        .publish(
            format!("{}/alerts/police", app.prefix),
            QoS::AtLeastOnce,
            false,
            "{}",
        )
        .await
        .unwrap();
    assert!(officer.next().await.is_err(), "disconnected");
    assert!(refusals(&app, "subscribe_denied").await >= 3.0);
    app.stop().await;
}

#[tokio::test]
async fn the_same_rules_answer_an_external_broker_over_http() {
    let app = spawn_app().await;
    app.register("firm-h", "苏J30005", "dev-h1").await;
    let (user, pass) = credentials(&app, "苏J30005").await;
    let police = app.token("dept:police").await;
    let auth = |u: &str, p: &str| json!({"username": u, "password": p, "clientid": "c1"});

    let r = app
        .post("/api/v1/mqtt/auth", None, &auth(&user, &pass))
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["result"], "allow");
    assert_eq!(v["is_superuser"], false);
    assert_eq!(v["acl"][0]["topic"], own_topic(&app, "dev-h1"));
    assert_eq!(
        v["acl"][1],
        json!({"permission": "deny", "action": "all", "topic": "#"})
    );
    let r = app
        .post("/api/v1/mqtt/auth", None, &auth(&user, "wrong"))
        .await;
    assert_eq!((r.status, r.json()["result"].clone()), (200, json!("deny")));
    let r = app
        .post("/api/v1/mqtt/auth", None, &json!({"username": user}))
        .await;
    assert_eq!(r.json()["result"], "deny", "no anonymous clients over HTTP");
    let r = app
        .post("/api/v1/mqtt/auth", None, &auth("token", &police))
        .await;
    assert_eq!(r.json()["client_attrs"]["role"], "dept:police");

    let acl = |u: &str, topic: String, action: &str, role: Option<&str>| json!({"username": u, "topic": topic, "action": action, "role": role});
    let cases = [
        (
            acl(&user, own_topic(&app, "dev-h1"), "publish", None),
            "allow",
        ),
        (
            acl(&user, own_topic(&app, "dev-x9"), "publish", None),
            "deny",
        ),
        (
            acl(
                &user,
                format!("{}/alerts/police", app.prefix),
                "publish",
                None,
            ),
            "deny",
        ),
        (
            acl(&user, own_topic(&app, "dev-h1"), "subscribe", None),
            "deny",
        ),
        (
            acl(
                "token",
                format!("{}/alerts/police", app.prefix),
                "subscribe",
                Some("dept:police"),
            ),
            "allow",
        ),
        (
            acl(
                "token",
                format!("{}/alerts/urban", app.prefix),
                "subscribe",
                Some("dept:police"),
            ),
            "deny",
        ),
        (
            acl(
                "token",
                format!("{}/pos/+/+", app.prefix),
                "subscribe",
                Some("admin"),
            ),
            "deny",
        ),
        (
            acl(
                "token",
                format!("{}/alerts/police", app.prefix),
                "subscribe",
                None,
            ),
            "deny",
        ),
        (
            acl(
                "token",
                format!("{}/alerts/police", app.prefix),
                "publish",
                Some("dept:police"),
            ),
            "deny",
        ),
    ];
    for (body, want) in cases {
        let r = app.post("/api/v1/mqtt/acl", None, &body).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["result"], want, "{body}");
    }
    // Garbage is a deny, never a 500 (EMQX would read a 5xx as "ignore").
    let r = http(app.http, "POST", "/api/v1/mqtt/acl", None, Some("{".into())).await;
    assert_eq!((r.status, r.json()["result"].clone()), (200, json!("deny")));
    // Credentials are for admins only.
    let r = app
        .post(
            &format!("/api/v1/vehicles/{}/mqtt-credentials", encode("苏J30005")),
            Some(&police),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 403);
    app.stop().await;
}

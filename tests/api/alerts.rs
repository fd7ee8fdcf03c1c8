//! End to end: a truck's fixes over MQTT raise an alert on the department's
//! MQTT alert topic and SSE stream, and a case with the right checks.

use std::time::Duration;

use crate::common::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};

/// No permit, 70 km/h for 6 minutes: SPEEDING (police) after 30 s,
/// NO_PERMIT (urban, transport) after 120 s.
fn track(device: &str) -> Vec<String> {
    (0..36)
        .map(|i| {
            let t = chrono::DateTime::parse_from_rfc3339("2021-06-01T22:00:00+08:00").unwrap()
                + chrono::Duration::seconds(10 * i);
            fix_json(
                device,
                &t.to_rfc3339(),
                33.335,
                120.02 + 0.00209 * i as f64,
                70.0,
            )
        })
        .collect()
}

#[tokio::test]
async fn a_speeding_truck_alerts_the_police_over_mqtt_and_sse_and_opens_a_case() {
    let app = spawn_app().await;
    app.register("firm-e", "苏J60001", "dev-e1").await;
    let police = app.token("dept:police").await;
    let urban = app.token("dept:urban").await;

    // An officer's MQTT client on the police alert topic.
    let mut opts = MqttOptions::new(unique("officer"), app.mqtt.host.clone(), app.mqtt.port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    client
        .subscribe(format!("{}/alerts/police", app.prefix), QoS::AtLeastOnce)
        .await
        .unwrap();
    let (mqtt_tx, mut mqtt_rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    let officer = tokio::spawn(async move {
        let mut subscribed = Some(subscribed_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(s) = subscribed.take() {
                        let _ = s.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = mqtt_tx.send(serde_json::from_slice(&p.payload).unwrap_or(Value::Null));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    subscribed_rx.await.unwrap();
    let mut police_sse = SseClient::connect(app.http, "/api/v1/alerts/stream", &police).await;
    let mut urban_sse = SseClient::connect(app.http, "/api/v1/alerts/stream", &urban).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let p = app.publisher().await;
    for fix in track("dev-e1") {
        p.send("dev-e1", fix).await;
    }

    let alert = tokio::time::timeout(Duration::from_secs(15), mqtt_rx.recv())
        .await
        .expect("MQTT alert")
        .unwrap();
    assert_eq!(alert["code"], "SPEEDING");
    assert_eq!(alert["plate"], "苏J60001");
    assert_eq!(alert["firm_id"], "firm-e");
    assert_eq!(alert["at"], "2021-06-01T22:00:00+08:00");
    assert_eq!(alert["departments"], json!(["police"]));
    assert!(
        alert["message_zh"].as_str().unwrap().contains("超速"),
        "{alert}"
    );
    assert!(
        alert["message_en"].as_str().unwrap().contains("speeding"),
        "{alert}"
    );
    let case_id = alert["case_id"].as_i64().unwrap();

    let (event, data) = police_sse
        .next_event(Duration::from_secs(15))
        .await
        .expect("SSE alert");
    assert_eq!(event, "alert");
    let sse: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(sse, alert, "the same alert on both channels");

    // Urban sees NO_PERMIT, not the police's SPEEDING.
    let (event, data) = urban_sse
        .next_event(Duration::from_secs(15))
        .await
        .expect("urban SSE alert");
    assert_eq!(event, "alert");
    let urban_alert: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(urban_alert["code"], "NO_PERMIT");
    assert_eq!(urban_alert["case_id"], case_id, "one case for the night");
    // And the police get nothing that is not theirs.
    if let Some((_, data)) = police_sse.next_event(Duration::from_millis(500)).await {
        panic!("police got an alert not routed to them: {data}");
    }

    let case = app
        .get(&format!("/api/v1/cases/{case_id}"), Some(&police))
        .await
        .json();
    assert_eq!(case["codes"], json!(["NO_PERMIT", "SPEEDING"]));
    assert_eq!(case["departments"], json!(["police", "transport", "urban"]));
    assert!(case["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["status"] == "pending"));
    assert!(case["track"]
        .as_str()
        .unwrap()
        .starts_with("/api/v1/vehicles/"));
    let track = app
        .get(case["track"].as_str().unwrap(), Some(&police))
        .await;
    assert_eq!(track.status, 200, "{}", track.body);
    assert!(app.metric("muckwatch_alerts_published_total").await >= 1.0);
    officer.abort();
    app.stop().await;
}

/// An officer opening the live view sees what was raised for the
/// department in the last 12 hours before anything new arrives; a client
/// reconnecting with Last-Event-ID gets only what it missed.
#[tokio::test]
async fn the_live_view_starts_with_the_departments_alerts_of_the_last_12_hours() {
    let app = spawn_app().await;
    app.register("firm-b", "苏J66001", "dev-b1").await;
    app.register("firm-b", "苏J66002", "dev-b2").await;
    app.register("firm-b", "苏J66003", "dev-b3").await;
    app.register("firm-b", "苏J66004", "dev-b4").await;
    let hour = 3_600_000;
    let now = chrono::Utc::now().timestamp_millis();
    let seed = |code, plate, device, started, ago: i64| {
        seed_violation_filed(
            &app.store,
            code,
            plate,
            device,
            "firm-b",
            started,
            now - ago,
            muckwatch::cases::Deadlines::default(),
        )
    };
    seed(
        "SPEEDING",
        "苏J66001",
        "dev-b1",
        "2021-06-01T20:00:00+08:00",
        13 * hour,
    )
    .await;
    let (older, _) = seed(
        "SPEEDING",
        "苏J66002",
        "dev-b2",
        "2021-06-01T21:00:00+08:00",
        3 * hour,
    )
    .await;
    let (newer, _) = seed(
        "SPEEDING",
        "苏J66003",
        "dev-b3",
        "2021-06-01T22:00:00+08:00",
        hour,
    )
    .await;
    // COVER_OPEN goes to urban and ecology, not to the police.
    seed(
        "COVER_OPEN",
        "苏J66004",
        "dev-b4",
        "2021-06-01T22:30:00+08:00",
        hour,
    )
    .await;
    let police = app.token("dept:police").await;

    let mut sse = SseClient::connect(app.http, "/api/v1/alerts/stream", &police).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let (event, data) = sse
            .next_event(std::time::Duration::from_secs(10))
            .await
            .expect("a backlog alert");
        assert_eq!(event, "alert");
        let a: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(a["backlog"], true, "{a}");
        assert_eq!(a["code"], "SPEEDING");
        assert!(a["message_zh"].as_str().unwrap().contains("超速"), "{a}");
        got.push(a["violation_id"].as_i64().unwrap());
    }
    assert_eq!(
        got,
        vec![older, newer],
        "oldest first, the 13 h old one left out"
    );

    let id = older.to_string();
    let mut again = SseClient::connect_with(
        app.http,
        "/api/v1/alerts/stream",
        &police,
        &[("last-event-id", id.as_str())],
    )
    .await;
    let (_, data) = again
        .next_event(std::time::Duration::from_secs(10))
        .await
        .expect("the alert missed");
    let a: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(a["violation_id"], newer);
    app.stop().await;
}

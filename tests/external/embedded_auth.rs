//! muckwatch as `serve --mqtt-auth` runs it (embedded broker), with
//! the Mosquitto command-line clients as a terminal and an officer would
//! use them. Needs mosquitto_pub/mosquitto_sub, so `#[ignore]`d.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto_pub and mosquitto_sub; run by .ci/run"]
async fn mosquitto_clients_against_serve_mqtt_auth() {
    let db = temp_db();
    let mut settings = test_settings(&db);
    settings.mqtt.auth = true;
    let app = spawn_with(settings).await;
    app.register("firm-c", "苏J70001", "dev-c1").await;
    let r = app
        .post(
            &format!("/api/v1/vehicles/{}/mqtt-credentials", encode("苏J70001")),
            Some(&app.admin),
            &json!({}),
        )
        .await;
    let (user, pass) = (
        r.json()["username"].as_str().unwrap().to_string(),
        r.json()["password"].as_str().unwrap().to_string(),
    );
    let police = app.token("dept:police").await;
    let port = app.mqtt.port.to_string();
    let own = muckwatch::ingest::position_topic(
        &app.prefix,
        &muckwatch::fix::DeviceId::parse("dev-c1").unwrap(),
    );
    let fix = fix_json("dev-c1", "2021-06-01T22:00:00+08:00", 33.38, 120.16, 30.0);
    let publish = |login: Option<(&str, &str)>, topic: &str| {
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            &fix,
        ])
        .stderr(Stdio::null());
        if let Some((u, p)) = login {
            cmd.args(["-u", u, "-P", p]);
        }
        cmd.status().expect("mosquitto_pub runs").success()
    };
    assert!(!publish(None, &own), "anonymous refused");
    assert!(
        !publish(Some((&user, "wrong")), &own),
        "wrong password refused"
    );
    assert!(publish(Some((&user, &pass)), &own));
    let stored = eventually(Duration::from_secs(10), || async {
        let r = app.track("苏J70001", &app.admin).await;
        (r.json()["properties"]["fixes"]
            .as_array()
            .map_or(0, |a| a.len())
            == 1)
            .then_some(())
    })
    .await;
    assert!(stored.is_some());

    // The officer: the police alerts yes (mosquitto_sub waits, -W 2 ends
    // it: exit 27 is its timeout), the telemetry no (the broker refuses
    // the subscription in its SUBACK and mosquitto_sub says so).
    let sub = |topic: &str| {
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port, "-u", "token", "-P", &police])
            .args(["-t", topic, "-W", "2", "-C", "1"])
            .stderr(Stdio::piped())
            .output()
            .expect("mosquitto_sub runs")
    };
    let alerts = sub(&format!("{}/alerts/police", app.prefix));
    assert_eq!(alerts.status.code(), Some(27), "{alerts:?}");
    let telemetry = sub(&format!("{}/pos/+/+", app.prefix));
    assert_eq!(
        String::from_utf8_lossy(&telemetry.stderr).trim(),
        "All subscription requests were denied.",
        "{telemetry:?}"
    );
    assert!(
        app.metric("muckwatch_mqtt_refused_total{reason=\"subscribe_denied\"}")
            .await
            >= 1.0
    );
    app.stop().await;
}

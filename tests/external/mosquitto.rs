//! The same ingest path through this machine's Mosquitto (`--mqtt-url`).
//! Needs a broker on 127.0.0.1:1883 (or MUCKWATCH_TEST_MQTT_URL), so it is
//! ignored by a plain `cargo test`; `.ci/run` runs it with `--ignored`.

use std::time::Duration;

use crate::common::*;

fn broker_url() -> String {
    std::env::var("MUCKWATCH_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into())
}

#[tokio::test]
#[ignore = "needs Mosquitto on 127.0.0.1:1883; run by .ci/run"]
async fn a_fix_through_mosquitto_appears_in_the_track() {
    let db = temp_db();
    let mut settings = test_settings(&db);
    settings.mqtt.url = Some(broker_url());
    settings.mqtt.client_id = unique("muckwatch-test");
    // a client id of its own each run: leave no session on the shared broker
    settings.mqtt.persistent_session = Some(false);
    // A topic root of our own: other runs on the same broker never see our fixes.
    settings.mqtt.topic_prefix = format!("{}/muckwatch/v1", unique("t"));
    let app = spawn_with(settings).await;
    app.register("firm-m", "苏J10001", "dev-m1").await;
    let p = app.publisher().await;
    p.send(
        "dev-m1",
        fix_json(
            "dev-m1",
            "2021-06-01T22:15:03+08:00",
            33.3801,
            120.1602,
            42.5,
        ),
    )
    .await;
    p.send("dev-m1", "{broken").await;
    p.send(
        "dev-m1",
        fix_json(
            "dev-m1",
            "2021-06-01T22:15:13+08:00",
            33.3802,
            120.1603,
            41.0,
        ),
    )
    .await;

    let n = eventually(Duration::from_secs(15), || async {
        let r = app.track("苏J10001", &app.admin).await;
        let n = r.json()["properties"]["fixes"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or(0);
        (n >= 2).then_some(n)
    })
    .await;
    assert_eq!(n, Some(2));
    assert_eq!(
        app.metric("muckwatch_messages_rejected_total{reason=\"not_json\"}")
            .await,
        1.0
    );
    app.stop().await;
}

/// A private Mosquitto publishing `$SYS` every second on a free port: the
/// shared broker's `$SYS` interval and retained state are not ours to rely on
/// (its drop counter did not arrive within 25 s on this machine's broker).
struct PrivateMosquitto {
    port: u16,
    child: std::process::Child,
}

impl PrivateMosquitto {
    fn start(dir: &std::path::Path) -> PrivateMosquitto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let conf = dir.join("mosquitto-drops.conf");
        std::fs::write(
            &conf,
            format!("allow_anonymous true\nsys_interval 1\nlistener {port} 127.0.0.1\n"),
        )
        .expect("config written");
        let child = std::process::Command::new("mosquitto")
            .args(["-c", conf.to_str().expect("path")])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto runs");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        PrivateMosquitto { port, child }
    }
}

impl Drop for PrivateMosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
#[ignore = "needs mosquitto; run by .ci/run"]
async fn mosquittos_drop_counter_is_exported() {
    let db = temp_db();
    let dir = db.with_extension("mosquitto");
    std::fs::create_dir_all(&dir).expect("dir");
    let broker = PrivateMosquitto::start(&dir);
    let mut settings = test_settings(&db);
    settings.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", broker.port));
    settings.mqtt.client_id = unique("muckwatch-test");
    settings.mqtt.persistent_session = Some(false);
    let app = spawn_with(settings).await;
    // Published every second and retained: the counter arrives soon.
    let seen = eventually(Duration::from_secs(25), || async {
        let text = app.get("/metrics", None).await.body;
        text.lines()
            .find_map(|l| l.strip_prefix("muckwatch_broker_messages_dropped "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    })
    .await;
    assert!(
        seen.is_some_and(|v| v >= 0.0),
        "broker drop counter in /metrics: {seen:?}"
    );
    app.stop().await;
}

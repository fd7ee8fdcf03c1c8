//! The `muckwatch` binary as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

fn muckwatch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_muckwatch"));
    c.env_remove("RUST_LOG");
    c
}

#[test]
fn serve_refuses_a_taken_mqtt_port_and_says_what_to_do() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    let db = temp_db();
    let out = muckwatch()
        .args([
            "serve",
            "--mqtt-listen",
            &addr.to_string(),
            "--http",
            "127.0.0.1:0",
        ])
        .args(["--database-url", &format!("sqlite://{}", db.display())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
    assert!(err.contains(&format!("--mqtt-url mqtt://{addr}")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn token_create_prints_the_token_last_and_refuses_bad_roles() {
    let db = temp_db();
    let url = format!("sqlite://{}", db.display());
    let out = muckwatch()
        .args([
            "token",
            "create",
            "--role",
            "dept:police",
            "--database-url",
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout.split_whitespace().last().unwrap();
    assert!(token.starts_with("mw_") && token.len() == 67, "{stdout}");

    let out = muckwatch()
        .args([
            "token",
            "create",
            "--role",
            "dept:army",
            "--database-url",
            &url,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("army"));
}

#[test]
fn a_bad_config_file_is_refused_by_name() {
    let dir = std::env::temp_dir().join(unique("conf"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("muckwatch.toml");
    std::fs::write(&file, "[mqtt]\nlisten = \"not an address\"\n").unwrap();
    let out = muckwatch()
        .args(["serve", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mqtt.listen") && err.contains("not an address"),
        "{err}"
    );
}

/// `serve` logs the addresses it bound, ingests, and on SIGTERM commits
/// what it has read before exiting cleanly.
#[tokio::test]
async fn serve_logs_its_addresses_and_stops_cleanly_on_sigterm() {
    let db = temp_db();
    let url = format!("sqlite://{}", db.display());
    let mut child = muckwatch()
        .args([
            "serve",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--database-url",
            &url,
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut http, mut mqtt) = (None, None);
    let mut log = Vec::new();
    while http.is_none() || mqtt.is_none() {
        let line = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("log line")
            .expect("serve exited");
        let addr = line
            .split("addr=")
            .nth(1)
            .map(|a| a.split_whitespace().next().unwrap_or("").to_string());
        if line.contains("HTTP API listening") {
            http = addr;
        } else if line.contains("embedded MQTT broker listening") {
            mqtt = addr;
        }
        log.push(line);
    }
    let http: std::net::SocketAddr = http.unwrap().parse().unwrap();
    let mqtt: std::net::SocketAddr = mqtt.unwrap().parse().unwrap();
    // Wait for the subscription before publishing.
    while !log.iter().any(|l| l.contains("subscribed")) {
        log.push(
            tokio::time::timeout(Duration::from_secs(20), rx.recv())
                .await
                .expect("log line")
                .expect("serve exited"),
        );
    }
    assert_eq!(
        crate::common::http(http, "GET", "/healthz", None, None)
            .await
            .status,
        200
    );

    let broker = muckwatch::configuration::MqttUrl {
        host: mqtt.ip().to_string(),
        port: mqtt.port(),
    };
    let p = Publisher::connect(&broker, "muckwatch/v1").await;
    for s in 0..20 {
        p.send(
            "dev-sig",
            fix_json(
                "dev-sig",
                &format!("2021-06-01T22:00:{s:02}+08:00"),
                33.38,
                120.16,
                30.0,
            ),
        )
        .await;
    }
    let metrics = eventually(Duration::from_secs(15), || async {
        let body = crate::common::http(http, "GET", "/metrics", None, None)
            .await
            .body;
        body.contains("muckwatch_mqtt_messages_total 20")
            .then_some(body)
    })
    .await;
    assert!(metrics.is_some(), "messages not received");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    let store = muckwatch::store::Store::connect(&url).await.unwrap();
    assert_eq!(store.fix_count().await.unwrap(), 20);
}

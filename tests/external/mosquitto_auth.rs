//! The contract's MQTT rules on this machine's Mosquitto, configured only
//! from the files `muckwatch mqtt mosquitto-files` writes: a private
//! Mosquitto (allow_anonymous false) on a free port, muckwatch consuming from
//! it with its service login, devices publishing with mosquitto_pub.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::common::*;

const SERVICE_PASSWORD: &str = "service-secret-for-this-test";

struct Mosquitto {
    dir: std::path::PathBuf,
    port: u16,
    child: std::process::Child,
}

impl Mosquitto {
    fn start(dir: &std::path::Path) -> Mosquitto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "per_listener_settings false\nallow_anonymous false\npassword_file {0}/passwd\nacl_file {0}/acl\nlistener {port} 127.0.0.1\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .args(["-c", conf.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto runs");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Mosquitto {
            dir: dir.to_path_buf(),
            port,
            child,
        }
    }

    fn reload(&self) {
        Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }

    /// mosquitto_pub's exit status (0: connected and published).
    fn publish(&self, login: Option<(&str, &str)>, topic: &str, message: &str) -> bool {
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q", "1"])
            .args(["-t", topic, "-m", message])
            .stderr(Stdio::null());
        if let Some((u, p)) = login {
            cmd.args(["-u", u, "-P", p]);
        }
        cmd.status().expect("mosquitto_pub runs").success()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_files(dir: &std::path::Path, db: &std::path::Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_muckwatch"))
        .args(["mqtt", "mosquitto-files", "--out", dir.to_str().unwrap()])
        .args(["--database-url", &format!("sqlite://{}", db.display())])
        .env("MUCKWATCH_MQTT_PASSWORD", SERVICE_PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Mosquitto drops to its own user: it must be able to read them.
    use std::os::unix::fs::PermissionsExt;
    for f in ["passwd", "acl"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

fn topic(device: &str) -> String {
    muckwatch::ingest::position_topic(
        "muckwatch/v1",
        &muckwatch::fix::DeviceId::parse(device).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto and mosquitto_pub; run by .ci/run"]
async fn mosquitto_from_generated_files_enforces_the_same_rules() {
    let dir = std::env::temp_dir().join(unique("mosq-auth"));
    std::fs::create_dir_all(&dir).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let db = temp_db();
    // The database first, so that the files can be written before anything connects.
    drop(
        muckwatch::store::Store::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap(),
    );
    write_files(&dir, &db);
    let broker = Mosquitto::start(&dir);

    let mut settings = test_settings(&db);
    settings.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", broker.port));
    settings.mqtt.password = Some(SERVICE_PASSWORD.into());
    settings.mqtt.client_id = unique("muckwatch");
    let app = spawn_with(settings).await;
    app.register("firm-m", "苏J40001", "dev-m1").await;
    app.register("firm-m", "苏J40002", "dev-m2").await;
    let mut creds = Vec::new();
    for plate in ["苏J40001", "苏J40002"] {
        let r = app
            .post(
                &format!("/api/v1/vehicles/{}/mqtt-credentials", encode(plate)),
                Some(&app.admin),
                &json!({}),
            )
            .await;
        assert_eq!(r.status, 201);
        creds.push((
            r.json()["username"].as_str().unwrap().to_string(),
            r.json()["password"].as_str().unwrap().to_string(),
        ));
    }
    write_files(&dir, &db);
    broker.reload();
    let (u1, p1) = (&creds[0].0, &creds[0].1);
    let (u2, p2) = (&creds[1].0, &creds[1].1);
    let fix = |d: &str, s: u32| {
        fix_json(
            d,
            &format!("2021-06-01T22:00:{s:02}+08:00"),
            33.38,
            120.16,
            30.0,
        )
    };

    assert!(
        !broker.publish(None, &topic("dev-m1"), &fix("dev-m1", 1)),
        "anonymous refused"
    );
    assert!(
        !broker.publish(Some((u1, "wrong")), &topic("dev-m1"), &fix("dev-m1", 1)),
        "wrong password refused"
    );
    // Mosquitto acknowledges a denied publish and drops it: dev-m1 forging
    // dev-m2's fixes and an alert gets nowhere.
    broker.publish(Some((u1, p1)), &topic("dev-m2"), &fix("dev-m2", 2));
    broker.publish(Some((u1, p1)), "muckwatch/v1/alerts/police", "{}");
    assert!(broker.publish(Some((u1, p1)), &topic("dev-m1"), &fix("dev-m1", 3)));
    assert!(broker.publish(Some((u2, p2)), &topic("dev-m2"), &fix("dev-m2", 4)));

    let n = |plate: &'static str| {
        let app = &app;
        async move {
            app.track(plate, &app.admin).await.json()["properties"]["fixes"]
                .as_array()
                .map_or(0, |a| a.len())
        }
    };
    let both = eventually(Duration::from_secs(15), || async {
        (n("苏J40001").await == 1 && n("苏J40002").await == 1).then_some(())
    })
    .await;
    assert!(both.is_some(), "each device's own fix is stored");
    let fixes = app.track("苏J40002", &app.admin).await.json()["properties"]["fixes"].clone();
    assert_eq!(
        fixes[0]["ts"], "2021-06-01T22:00:04+08:00",
        "the forged one is not"
    );
    app.stop().await;
    drop(broker);
}

//! The live map with 2,000 moving trucks in Chromium (`#[ignore]`d: it
//! needs Chromium and node, as the console's browser test does): the
//! officer's page must stay responsive while the fleet's deltas stream in
//! (`tests/browser/fleet.spec.mjs` asserts no long task over 200 ms).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use muckwatch::fix::DeviceId;
use muckwatch::identity::{Firm, FirmId, Plate, Vehicle};
use muckwatch::store::Store;
use serde_json::json;

use crate::common::*;

const TRUCKS: usize = 2_000;
/// Each truck reports this often (fix time follows the wall clock).
const REPORT_EVERY: Duration = Duration::from_secs(4);
/// How long the page is watched while the trucks move.
const WATCH_S: u64 = 20;

fn device(i: usize) -> String {
    format!("fleet{i:05}")
}

/// Truck `i`'s place after `k` reports: a grid over the sample city,
/// drifting north about 20 m a report. Reported at 4 km/h, below every
/// moving rule's threshold: the map is under test here, not detection.
fn place(i: usize, k: usize) -> (f64, f64) {
    (
        33.30 + (i / 50) as f64 * 0.004 + k as f64 * 0.0002,
        120.0 + (i % 50) as f64 * 0.005,
    )
}

fn fix_now(i: usize, k: usize) -> String {
    let (lat, lon) = place(i, k);
    let ts = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    fix_json(&device(i), &ts, lat, lon, 4.0)
}

async fn seed(url: &str) {
    let store = Store::connect(url).await.expect("store");
    let firm = FirmId::parse("firm-fleet").unwrap();
    store
        .create_firm(
            &Firm {
                id: firm.clone(),
                name: "车队".into(),
            },
            0,
        )
        .await
        .unwrap();
    for i in 0..TRUCKS {
        let v = Vehicle {
            plate: Plate::parse(&format!("苏F{i:05}")).unwrap(),
            device_id: DeviceId::parse(&device(i)).unwrap(),
            firm_id: firm.clone(),
            rated_load_t: 31.0,
        };
        store.create_vehicle(&v, 0).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and node (tests/browser); run by .ci/run"]
async fn browser_live_map_stays_responsive_with_2000_moving_trucks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let db = temp_db();
    let settings = test_settings(&db);
    seed(&settings.database.url).await;
    let app = spawn_with(settings).await;
    let p = Arc::new(app.publisher().await);
    for i in 0..TRUCKS {
        p.send(&device(i), fix_now(i, 0)).await;
    }
    let police = app.token("dept:police").await;
    let last = format!("/api/v1/vehicles?limit=1&offset={}", TRUCKS - 1);
    let placed = eventually(Duration::from_secs(120), || async {
        let r = app.get(&last, Some(&police)).await;
        (r.status == 200 && !r.json()["items"][0]["last_fix"].is_null()).then_some(())
    })
    .await;
    assert!(
        placed.is_some(),
        "every truck's first fix reached the live map"
    );

    let shots = root.join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let cfg = json!({
        "base": format!("http://{}", app.http),
        "token": police,
        "trucks": TRUCKS,
        "watch_s": WATCH_S,
        "screenshots": shots,
    });
    let mut node = super::BrowserSpec::start("fleet", &cfg);
    node.ready(Duration::from_secs(240), "the browser never drew the fleet")
        .await;

    // Every truck reports every REPORT_EVERY, spread evenly over it, until
    // the page has been watched.
    let moving = Arc::new(AtomicBool::new(true));
    let mover = tokio::spawn({
        let (p, moving) = (p.clone(), moving.clone());
        async move {
            let chunk = 100;
            let pause = REPORT_EVERY / (TRUCKS / chunk) as u32;
            let mut k = 1;
            while moving.load(Ordering::Relaxed) {
                for start in (0..TRUCKS).step_by(chunk) {
                    for i in start..(start + chunk).min(TRUCKS) {
                        p.send(&device(i), fix_now(i, k)).await;
                    }
                    tokio::time::sleep(pause).await;
                }
                k += 1;
            }
        }
    });
    let status = node.finish().await;
    moving.store(false, Ordering::Relaxed);
    let _ = mover.await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the live map test failed: {status:?} (its output is above)"
    );
    app.stop().await;
}

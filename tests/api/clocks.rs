//! Terminal clocks are not trusted (contract, Wire format): wrong stamps
//! from one terminal, registered or not, raise nothing for the others and do
//! not stop the rules from evaluating its own correct fixes. Through real
//! MQTT, on a historical night and in live time with wall-clock stamps.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::json;

use crate::common::*;

const HONEST: [(&str, &str); 3] = [
    ("苏J50001", "dev-h1"),
    ("苏J50002", "dev-h2"),
    ("苏J50003", "dev-h3"),
];
const SPEEDER: (&str, &str) = ("苏J50009", "dev-s9");

/// Where the honest trucks potter about: inside their own source site s01.
fn in_s01(i: i64) -> (f64, f64) {
    let step = if i % 2 == 0 { 0.0 } else { 0.0004 };
    (33.4372, 120.2352 + step)
}

fn at(t: DateTime<FixedOffset>, secs: i64) -> String {
    (t + chrono::Duration::seconds(secs)).to_rfc3339()
}

/// One night: three honest trucks on a permit, moving slowly inside their
/// source site every 10 s for 7 minutes; a device registered to no vehicle
/// sends one fix 2 h ahead; honest truck 1 sends one fix a day ahead; a
/// truck with no permit speeds at 70 km/h for 6 minutes, its first fix 290 s
/// ahead of the fleet. Returns the fixes in publishing order.
fn night(start: DateTime<FixedOffset>) -> Vec<(&'static str, String)> {
    let mut timeline: Vec<(i64, &str, String)> = Vec::new();
    for i in 0..42 {
        for (_, dev) in HONEST {
            let (lat, lon) = in_s01(i);
            timeline.push((
                i * 10,
                dev,
                fix_json(dev, &at(start, i * 10), lat, lon, 6.0),
            ));
        }
    }
    // The speeder: its terminal's first fix, published when the fleet is at
    // +20 s, says +310 s: 290 s ahead.
    let s = SPEEDER.1;
    let speeding = |i: i64, secs: i64| {
        fix_json(
            s,
            &at(start, secs),
            33.335,
            120.02 + 0.00209 * i as f64,
            70.0,
        )
    };
    timeline.push((25, s, speeding(0, 20 + 290)));
    for i in 0..36 {
        timeline.push((35 + i * 10, s, speeding(i, 35 + i * 10)));
    }
    timeline.push((
        65,
        "dev-ghost",
        fix_json("dev-ghost", &at(start, 60 + 7200), 33.3, 120.1, 40.0),
    ));
    let (lat, lon) = in_s01(0);
    timeline.push((
        125,
        HONEST[0].1,
        fix_json(HONEST[0].1, &at(start, 120 + 86_400), lat, lon, 6.0),
    ));
    timeline.sort_by_key(|(t, _, _)| *t);
    timeline.into_iter().map(|(_, d, f)| (d, f)).collect()
}

/// Runs the night from `start`: waits for `stored` fixes and `skewed` fixes
/// dropped from the rules, stops muckwatch (detection finishes what it
/// read) and returns its store and the metrics text before the stop.
async fn run_night(
    start: DateTime<FixedOffset>,
    stored: usize,
    skewed: f64,
) -> (muckwatch::store::Store, String) {
    let app = spawn_app().await;
    let tz = chrono_tz::Asia::Shanghai;
    let date = start.with_timezone(&tz).date_naive();
    for (plate, dev) in HONEST.iter().chain([&SPEEDER]) {
        app.register("firm-c", plate, dev).await;
    }
    let plates: Vec<&str> = HONEST.iter().map(|h| h.0).collect();
    let r = app
        .post(
            "/api/v1/permits",
            Some(&app.admin),
            &json!({"id": "P-C", "firm_id": "firm-c", "plates": plates, "source_site": "s01",
                    "disposal_site": "d01", "routes": ["route-s01-d01"],
                    "windows": [{"start": "00:00", "end": "23:59"}],
                    "valid_from": (date - chrono::Duration::days(1)).to_string(),
                    "valid_until": (date + chrono::Duration::days(1)).to_string()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let p = app.publisher().await;
    for (dev, fix) in night(start) {
        p.send(dev, fix).await;
    }
    let all_in = eventually(Duration::from_secs(30), || async {
        let n = app.metric("muckwatch_fixes_ingested_total").await;
        (n >= stored as f64).then_some(n)
    })
    .await;
    assert_eq!(
        all_in,
        Some(stored as f64),
        "every plausible fix stored: {}",
        app.get("/metrics", None).await.body
    );
    // detection runs beside the writer: wait until it has judged the clocks
    let judged = eventually(Duration::from_secs(30), || async {
        let n = app.metric("muckwatch_fixes_clock_skew_total").await;
        (n >= skewed).then_some(n)
    })
    .await;
    assert_eq!(
        judged,
        Some(skewed),
        "fixes dropped from the rules for their clock"
    );
    let metrics = app.get("/metrics", None).await.body;
    let store = app.store.clone();
    drop(p);
    app.stop().await;
    (store, metrics)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not in\n{text}"))
}

async fn raised(store: &muckwatch::store::Store) -> Vec<(String, String)> {
    let (all, _) = store
        .violations(&Default::default(), 1000, 0)
        .await
        .expect("violations read");
    let mut v: Vec<(String, String)> = all
        .iter()
        .map(|v| (v.plate.to_string(), v.code.to_string()))
        .collect();
    v.sort();
    v
}

fn assert_only_the_speeder(raised: &[(String, String)]) {
    for (plate, code) in raised {
        assert_eq!(
            plate, SPEEDER.0,
            "an honest truck raised {code}: {raised:?}"
        );
    }
    let codes: Vec<&str> = raised.iter().map(|(_, c)| c.as_str()).collect();
    assert!(codes.contains(&"SPEEDING"), "{raised:?}");
    assert!(codes.contains(&"NO_PERMIT"), "{raised:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_clocks_in_a_historical_night_raise_nothing_for_honest_trucks() {
    let start = DateTime::parse_from_rfc3339("2021-06-01T22:00:00+08:00").expect("time");
    // every fix is stored: 126 honest, 37 speeder, the ghost's, the glitch
    let (store, metrics) = run_night(start, 126 + 37 + 2, 2.0).await;
    assert_only_the_speeder(&raised(&store).await);
    assert_eq!(
        metric(&metrics, "muckwatch_fixes_clock_skew_total"),
        2.0,
        "truck 1's day-ahead fix and the speeder's first"
    );
    assert!(metric(&metrics, "muckwatch_fixes_unregistered_total") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_clocks_in_live_time_raise_nothing_for_honest_trucks() {
    let start = (Utc::now() - chrono::Duration::minutes(8)).fixed_offset();
    // the ghost's fix 2 h ahead and truck 1's a day ahead are refused at
    // the edge (past now + max_future_s): every other fix is stored
    let (store, metrics) = run_night(start, 126 + 37, 1.0).await;
    assert_only_the_speeder(&raised(&store).await);
    assert_eq!(
        metric(
            &metrics,
            "muckwatch_messages_rejected_total{reason=\"bad_timestamp\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(&metrics, "muckwatch_fixes_clock_skew_total"),
        1.0,
        "the speeder's first fix"
    );
}

/// A truck on its own (no fleet to compare with), replayed from a file:
/// its terminal glitches once a day ahead in the middle of a speeding run,
/// and after a two-hour stop it speeds again. Both runs raise SPEEDING: the
/// glitch is dropped from the rules on the next fix, and the first fix after
/// the stop is confirmed by the one after it.
#[tokio::test]
async fn a_lone_truck_is_evaluated_after_a_glitch_and_after_a_long_stop() {
    use muckwatch::fix::DeviceId;
    use muckwatch::registry::{Firm, FirmId, Plate, Vehicle};
    let start = DateTime::parse_from_rfc3339("2021-06-01T22:00:00+08:00").expect("time");
    let dev = "dev-lone";
    let run = |from: i64, lon0: f64| -> Vec<String> {
        (0..36)
            .map(|i| {
                fix_json(
                    dev,
                    &at(start, from + 10 * i),
                    33.335,
                    lon0 + 0.00209 * i as f64,
                    70.0,
                )
            })
            .collect()
    };
    let mut lines = run(0, 120.02);
    // one fix a day ahead right after the first: before this was dropped
    // from the rules, it blinded the truck for the rest of the run
    lines.insert(1, fix_json(dev, &at(start, 86_400), 33.335, 120.03, 70.0));
    // parked, engine off, then silent for two hours
    lines.push(fix_json(dev, &at(start, 370), 33.335, 120.0953, 0.0));
    lines.extend(run(370 + 7200, 120.0953));

    let db = temp_db();
    let url = format!("sqlite://{}", db.display());
    let store = muckwatch::store::Store::connect(&url).await.expect("db");
    let firm = Firm {
        id: FirmId::parse("firm-l").expect("firm"),
        name: "L".into(),
    };
    store.create_firm(&firm, 0).await.expect("firm");
    let vehicle = Vehicle {
        plate: Plate::parse("苏J50100").expect("plate"),
        device_id: DeviceId::parse(dev).expect("device"),
        firm_id: firm.id.clone(),
        rated_load_t: 31.0,
    };
    store.create_vehicle(&vehicle, 0).await.expect("vehicle");
    let file = db.with_extension("ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").expect("file");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_muckwatch"))
        .args([
            "replay",
            file.to_str().expect("path"),
            "--database-url",
            &url,
        ])
        .args(["--geofences", "geofences"])
        .output()
        .expect("replay runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raised: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let speeding: Vec<&str> = raised
        .iter()
        .filter(|v| v["code"] == "SPEEDING")
        .map(|v| v["started_at"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        speeding,
        vec!["2021-06-01T22:00:00+08:00", "2021-06-02T00:06:10+08:00"],
        "{raised:#?}"
    );
    assert!(
        raised.iter().all(|v| v["code"] != "TRACK_GAP"),
        "the stop was parked, the glitch dropped: {raised:#?}"
    );
}

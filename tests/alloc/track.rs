//! A busy truck's whole history asked for by several officers at once is
//! served a page at a time: the memory in use stays bounded whatever the
//! history (four requests for 100,001 fixes used to take 1 GB).

use std::time::Duration;

use muckwatch::fix::{DeviceId, Fix};
use serde::Deserialize;

use crate::common::*;
use crate::counting_alloc;

const FIXES: i64 = 200_000;
/// 2021-06-01T00:00:00+08:00.
const START_MS: i64 = 1_622_476_800_000;

#[derive(Deserialize)]
struct Page {
    properties: Properties,
}

#[derive(Deserialize)]
struct Properties {
    count: usize,
    next: Option<String>,
    fixes: Vec<TimedFix>,
}

#[derive(Deserialize)]
struct TimedFix {
    ts: String,
}

/// Follows `next` from `first` to the end; returns (fixes, pages).
async fn read_all(app: &TestApp, first: String, token: &str) -> (usize, usize) {
    let (mut fixes, mut pages) = (0, 0);
    let mut last_ts: Option<i64> = None;
    let mut next = Some(first);
    while let Some(path) = next {
        let r = app.get(&path, Some(token)).await;
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            &r.body[..r.body.len().min(300)]
        );
        let page: Page = serde_json::from_slice(&r.bytes).expect("a track page");
        assert_eq!(page.properties.count, page.properties.fixes.len());
        for f in &page.properties.fixes {
            let t = chrono::DateTime::parse_from_rfc3339(&f.ts)
                .unwrap()
                .timestamp_millis();
            assert!(last_ts.is_none_or(|l| l < t), "in time order, each once");
            last_ts = Some(t);
        }
        fixes += page.properties.fixes.len();
        pages += 1;
        next = page.properties.next;
    }
    (fixes, pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn a_track_of_200000_fixes_is_served_in_pages_in_bounded_memory() {
    // The other counting tests hold this lock without awaiting: taking
    // turns with them cannot deadlock.
    let _alone = counting_alloc::alone();
    let app = spawn_app().await;
    app.register("firm-t", "苏J99001", "dev-t1").await;
    let device = DeviceId::parse("dev-t1").unwrap();
    for chunk in 0..FIXES / 10_000 {
        let fixes: Vec<Fix> = (chunk * 10_000..(chunk + 1) * 10_000)
            .map(|i| Fix {
                device_id: device,
                ts_ms: START_MS + i * 1000,
                lat: 33.38 + (i % 1000) as f64 * 1e-5,
                lon: 120.16,
                speed_kmh: 30.0,
                heading: Some(90.0),
                acc: Some(true),
                tipper_up: Some(false),
                cover_closed: Some(true),
                load_t: Some(20.0),
            })
            .collect();
        app.store.insert_fixes(&fixes, 0).await.unwrap();
    }
    let path = format!("/api/v1/vehicles/{}/track", encode("苏J99001"));
    let police = app.token("dept:police").await;
    // Quiet before measuring: the writer and the broker settle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = counting_alloc::live_bytes();
    counting_alloc::reset_peak();
    let read = || read_all(&app, path.clone(), &police);
    let (a, b, c, d) = tokio::join!(read(), read(), read(), read());
    let results = [a, b, c, d];
    let peak = counting_alloc::peak_bytes().saturating_sub(before);
    for (fixes, pages) in results {
        assert_eq!(fixes, FIXES as usize);
        assert_eq!(pages, 40, "5,000 fixes a page by default");
    }
    println!(
        "4 concurrent readers of {FIXES} fixes: peak {:.1} MB above the {:.1} MB in use before",
        peak as f64 / 1e6,
        before as f64 / 1e6
    );
    assert!(peak < 32 << 20, "peak {peak} bytes");

    // A firm reads its own truck in smaller pages, and no more at once.
    let firm = app.token("firm:firm-t").await;
    let r = app.get(&format!("{path}?limit=2000"), Some(&firm)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        app.get(&format!("{path}?limit=2001"), Some(&firm))
            .await
            .status,
        400
    );
    assert_eq!(
        app.get(&format!("{path}?limit=10001"), Some(&police))
            .await
            .status,
        400
    );
    app.stop().await;
}

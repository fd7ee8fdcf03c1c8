//! Several instances on one broker and one PostgreSQL, each consuming its
//! own buckets: together they do exactly what one instance does alone.
//! Needs Mosquitto (127.0.0.1:1883) and PostgreSQL; run by `.ci/run`.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::db::postgres_db;
use crate::common::*;

const DEVICES: usize = 8;

fn settings(url: &str, prefix: &str, buckets: &str) -> muckwatch::configuration::Settings {
    let mut s = test_settings(&temp_db());
    s.database.url = url.to_string();
    s.mqtt.url = Some(
        std::env::var("MUCKWATCH_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into()),
    );
    s.mqtt.client_id = unique("mw-instance");
    // a client id of its own each run: leave no session on the shared broker
    s.mqtt.persistent_session = Some(false);
    s.mqtt.topic_prefix = prefix.to_string();
    s.mqtt.buckets = buckets.to_string();
    s.ingest.registry_refresh_s = 1;
    s
}

/// Eight trucks without permits at 70 km/h for 6 minutes.
async fn publish_fleet(p: &Publisher) {
    for i in 0..36i64 {
        for d in 0..DEVICES {
            let t = chrono::DateTime::parse_from_rfc3339("2021-06-01T22:00:00+08:00").unwrap()
                + chrono::Duration::seconds(10 * i);
            let device = format!("inst-{d}");
            p.send(
                &device,
                fix_json(
                    &device,
                    &t.to_rfc3339(),
                    33.335 + d as f64 * 0.002,
                    120.02 + 0.00209 * i as f64,
                    70.0,
                ),
            )
            .await;
        }
    }
}

async fn register_fleet(app: &TestApp) {
    for d in 0..DEVICES {
        app.register("firm-i", &format!("苏J8000{d}"), &format!("inst-{d}"))
            .await;
    }
}

async fn violations(store: &muckwatch::store::Store) -> BTreeSet<(String, String, i64)> {
    let (v, _) = store
        .violations(&Default::default(), 1000, 0)
        .await
        .unwrap();
    v.into_iter()
        .map(|v| (v.plate.to_string(), v.code.to_string(), v.started_ms))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Mosquitto and PostgreSQL; run by .ci/run"]
async fn two_instances_with_disjoint_buckets_equal_one_instance() {
    let total = 36 * DEVICES;

    // One instance consuming every bucket.
    let solo_db = postgres_db().await;
    let solo_prefix = format!("{}/muckwatch/v1", unique("solo"));
    let solo = spawn_with(settings(&solo_db.url, &solo_prefix, "0-63")).await;
    register_fleet(&solo).await;
    // The publisher lives until everything is stored: publishing only queues.
    let p = solo.publisher().await;
    publish_fleet(&p).await;
    let done = eventually(Duration::from_secs(30), || async {
        (solo.store.fix_count().await.unwrap() == total as i64).then_some(())
    })
    .await;
    assert!(
        done.is_some(),
        "solo instance stored {} of {total} fixes",
        solo.store.fix_count().await.unwrap()
    );
    drop(p);
    let solo_store = solo.store.clone();
    solo.stop().await;
    let expected = violations(&solo_store).await;
    assert!(expected.len() >= 2 * DEVICES, "{expected:?}");

    // Two instances splitting the buckets, on one database.
    let db = postgres_db().await;
    let prefix = format!("{}/muckwatch/v1", unique("pair"));
    let a = spawn_with(settings(&db.url, &prefix, "0-31")).await;
    let b = spawn_with(settings(&db.url, &prefix, "32-63")).await;
    // Registered through A only: B learns of the vehicles from the database.
    register_fleet(&a).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let p = a.publisher().await;
    publish_fleet(&p).await;
    let done = eventually(Duration::from_secs(30), || async {
        (a.store.fix_count().await.unwrap() == total as i64).then_some(())
    })
    .await;
    assert!(done.is_some(), "the pair did not store every fix");
    let ingested_a = a.metric("muckwatch_fixes_ingested_total").await;
    let ingested_b = b.metric("muckwatch_fixes_ingested_total").await;
    assert!(
        ingested_a > 0.0 && ingested_b > 0.0,
        "both instances worked: {ingested_a} / {ingested_b}"
    );
    assert_eq!(
        ingested_a + ingested_b,
        total as f64,
        "no fix handled twice"
    );
    assert_eq!(
        a.metric("muckwatch_fixes_duplicate_total").await
            + b.metric("muckwatch_fixes_duplicate_total").await,
        0.0
    );
    drop(p);
    let store = a.store.clone();
    a.stop().await;
    b.stop().await;
    assert_eq!(violations(&store).await, expected);
}

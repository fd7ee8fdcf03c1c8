//! Fixes (duplicates, time ranges, retention, the newest of each vehicle)
//! and dead letters.

use muckwatch::fix::Fix;
use muckwatch::store::{DeadLetter, Store};
use muckwatch::violation::ViolationCode;

use crate::support::*;

on_both_backends!(
    fixes_drop_duplicates_and_answer_time_ranges,
    a_batch_meeting_a_stored_fix_keeps_its_new_ones,
    retention_keeps_the_evidence_of_violations,
    latest_fix_of_each_vehicle,
    fleet_time_is_not_dragged_by_a_few_clocks_ahead,
    dead_letters_are_pruned_to_keep,
);

async fn fixes_drop_duplicates_and_answer_time_ranges(store: &Store) {
    let mut full = fix("dev-1", T0 + 1_000);
    (
        full.heading,
        full.acc,
        full.tipper_up,
        full.cover_closed,
        full.load_t,
    ) = (Some(87.0), Some(true), Some(false), Some(true), Some(23.5));
    let batch = vec![
        fix("dev-1", T0),
        full,
        fix("dev-1", T0),
        fix("dev-2", T0),
        fix("dev-1", T0 + 2_000),
    ];
    assert_eq!(
        store.insert_fixes(&batch, T0).await.unwrap(),
        4,
        "a duplicate inside the batch is stored once"
    );
    assert_eq!(
        store.insert_fixes(&batch[..2], T0).await.unwrap(),
        0,
        "stored fixes are not stored again"
    );
    assert_eq!(store.fix_count().await.unwrap(), 4);

    let track = store.track("dev-1", T0, T0 + 2_000, 100).await.unwrap();
    assert_eq!(
        track.iter().map(|f| f.ts_ms).collect::<Vec<_>>(),
        [T0, T0 + 1_000, T0 + 2_000],
        "bounds inclusive, oldest first"
    );
    assert_eq!(track[1], full, "every field comes back");
    assert_eq!(track[0], fix("dev-1", T0), "absent fields stay absent");
    assert_eq!(
        store
            .track("dev-1", T0 + 500, T0 + 1_500, 100)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.track("dev-1", T0, T0 + 2_000, 2).await.unwrap().len(),
        2,
        "limit"
    );
    assert!(store
        .track("dev-3", T0, T0 + 2_000, 100)
        .await
        .unwrap()
        .is_empty());

    // Bigger than one statement on either backend, overlapping what is stored.
    let many: Vec<Fix> = (0..6_000).map(|i| fix("dev-3", T0 + i * 1_000)).collect();
    assert_eq!(store.insert_fixes(&many, T0).await.unwrap(), 6_000);
    let more: Vec<Fix> = (5_000..7_000)
        .map(|i| fix("dev-3", T0 + i * 1_000))
        .collect();
    assert_eq!(store.insert_fixes(&more, T0).await.unwrap(), 1_000);
    assert_eq!(store.fix_count().await.unwrap(), 7_004);
    assert_eq!(store.insert_fixes(&[], T0).await.unwrap(), 0);
}

/// On PostgreSQL a batch first goes in by plain COPY, which a stored fix
/// aborts; the batch is then written again skipping duplicates.
async fn a_batch_meeting_a_stored_fix_keeps_its_new_ones(store: &Store) {
    let stored = fix("dev-n", T0);
    assert_eq!(store.insert_fixes(&[stored], T0).await.unwrap(), 1);
    let mixed = [fix("dev-m", T0), stored, fix("dev-n", T0 + 1_000)];
    assert_eq!(
        store.insert_fixes(&mixed, T0).await.unwrap(),
        2,
        "the two new fixes of a batch with a stored one"
    );
    let next = [fix("dev-n", T0 + 2_000), fix("dev-n", T0 + 1_000)];
    assert_eq!(store.insert_fixes(&next, T0).await.unwrap(), 1);
    assert_eq!(store.fix_count().await.unwrap(), 4);
    let track = store.track("dev-n", T0, T0 + 2_000, 10).await.unwrap();
    assert_eq!(
        track.iter().map(|f| f.ts_ms).collect::<Vec<_>>(),
        [T0, T0 + 1_000, T0 + 2_000]
    );
}

async fn retention_keeps_the_evidence_of_violations(store: &Store) {
    seed_vehicle(store, "firm-r", "苏J00099", "dev-r").await;
    // Two hours of fixes, one a minute; a violation in the middle of the first hour.
    let fixes: Vec<Fix> = (0..120).map(|m| fix("dev-r", T0 + m * 60_000)).collect();
    store.insert_fixes(&fixes, T0).await.unwrap();
    store
        .insert_violation(
            &violation(
                ViolationCode::Speeding,
                "苏J00099",
                "dev-r",
                T0 + 30 * 60_000,
            ),
            T0,
        )
        .await
        .unwrap();
    let pruned = store
        .prune_fixes(T0 + 60 * 60_000, 5 * 60_000)
        .await
        .unwrap();
    // Kept: the second hour (60), and minutes 25..=35 around the violation (11).
    assert_eq!(pruned, 60 - 11);
    assert_eq!(store.fix_count().await.unwrap(), 71);
    let evidence = store
        .track("dev-r", T0 + 25 * 60_000, T0 + 35 * 60_000, 100)
        .await
        .unwrap();
    assert_eq!(evidence.len(), 11);
}

async fn latest_fix_of_each_vehicle(store: &Store) {
    seed_vehicle(store, "firm-l", "苏J00201", "dev-l1").await;
    seed_vehicle(store, "firm-l", "苏J00202", "dev-l2").await;
    let fixes = vec![
        fix("dev-l1", T0),
        fix("dev-l1", T0 + 5_000),
        fix("ghost", T0 + 9_000),
    ];
    store.insert_fixes(&fixes, T0).await.unwrap();
    let latest = store.latest_vehicle_fixes().await.unwrap();
    // The newest of dev-l1; nothing for dev-l2 (no fix) or the unregistered ghost.
    assert_eq!(
        latest
            .iter()
            .map(|f| (f.device_id.as_str().to_string(), f.ts_ms))
            .collect::<Vec<_>>(),
        [("dev-l1".to_string(), T0 + 5_000)]
    );
}

async fn dead_letters_are_pruned_to_keep(store: &Store) {
    let letter = |i: i64| {
        DeadLetter::new(
            T0 + i,
            "muckwatch/v1/pos/07/dev-1",
            "not_json",
            format!("#{i}"),
            b"{oops",
        )
    };
    store
        .insert_dead_letters(&(0..5).map(letter).collect::<Vec<_>>(), 3)
        .await
        .unwrap();
    let (items, total) = store.dead_letters(100, 0).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        items.iter().map(|d| d.detail.as_str()).collect::<Vec<_>>(),
        ["#4", "#3", "#2"],
        "newest first"
    );
    assert_eq!(
        (
            items[0].reason.as_str(),
            items[0].payload.as_str(),
            items[0].received_ms
        ),
        ("not_json", "{oops", T0 + 4)
    );

    store
        .insert_dead_letters(&[letter(5), letter(6)], 3)
        .await
        .unwrap();
    let (items, total) = store.dead_letters(2, 1).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        items.iter().map(|d| d.detail.as_str()).collect::<Vec<_>>(),
        ["#5", "#4"],
        "limit and offset"
    );
    store.insert_dead_letters(&[], 0).await.unwrap();
    assert_eq!(
        store.dead_letters(10, 0).await.unwrap().1,
        3,
        "nothing added, nothing pruned"
    );
    store
        .insert_dead_letters(&[letter(7)], 1_000)
        .await
        .unwrap();
    assert_eq!(store.dead_letters(10, 0).await.unwrap().1, 4);
}

/// Where warm-up starts: the 3rd latest registered vehicle's newest fix up
/// to the limit, so one terminal a day ahead or an unregistered device does
/// not move it (and with fewer vehicles, the oldest of their newest).
async fn fleet_time_is_not_dragged_by_a_few_clocks_ahead(store: &Store) {
    assert_eq!(
        store.fleet_time_ms(3, T0 + 1_000_000_000).await.unwrap(),
        None
    );
    for (p, d) in [
        ("苏J0F001", "ft-1"),
        ("苏J0F002", "ft-2"),
        ("苏J0F003", "ft-3"),
        ("苏J0F004", "ft-4"),
    ] {
        seed_vehicle(store, "firm-ft", p, d).await;
    }
    store.insert_fixes(&[fix("ft-1", T0)], T0).await.unwrap();
    assert_eq!(
        store.fleet_time_ms(3, T0 + 1_000_000_000).await.unwrap(),
        Some(T0)
    );
    let fixes = [
        fix("ft-2", T0 + 10_000),
        fix("ft-3", T0 + 20_000),
        fix("ft-4", T0 + 86_400_000), // a day ahead
        fix("ghost", T0 + 7_200_000), // registered to no vehicle
    ];
    store.insert_fixes(&fixes, T0).await.unwrap();
    assert_eq!(
        store.fleet_time_ms(3, T0 + 1_000_000_000).await.unwrap(),
        Some(T0 + 10_000)
    );
    assert_eq!(
        store.fleet_time_ms(3, T0 + 15_000).await.unwrap(),
        Some(T0),
        "nothing past the limit counts"
    );
}

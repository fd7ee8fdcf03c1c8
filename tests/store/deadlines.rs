//! Check deadlines: each check is due its department's hours after it was
//! filed; decided by then is on time; undecided past it is overdue; the
//! case list can put overdue cases first or show only them.

use muckwatch::auth::Department;
use muckwatch::cases::CheckStatus;
use muckwatch::store::{CaseFilter, DeadlineStats, Store};
use muckwatch::violation::ViolationCode;

use crate::support::*;

on_both_backends!(checks_are_due_and_counted_by_department);

async fn decide(store: &Store, case: i64, dept: Department, at_ms: i64) {
    for s in [CheckStatus::Investigating, CheckStatus::Decided] {
        store
            .update_check(case, dept, &step(s), "officer", at_ms)
            .await
            .expect("check moved");
    }
}

async fn checks_are_due_and_counted_by_department(store: &Store) {
    seed_vehicle(store, "firm-a", "苏J70001", "dl-1").await;
    seed_vehicle(store, "firm-a", "苏J70002", "dl-2").await;
    seed_vehicle(store, "firm-a", "苏J70003", "dl-3").await;
    // NO_PERMIT -> urban, transport; SPEEDING -> police. Filed at start + 1 ms.
    let (_, no_permit) = raise(store, ViolationCode::NoPermit, "苏J70001", "dl-1", T0).await;
    let (_, speeding) = raise(store, ViolationCode::Speeding, "苏J70002", "dl-2", T0).await;
    let (_, older) = raise(
        store,
        ViolationCode::Speeding,
        "苏J70003",
        "dl-3",
        T0 - 2 * HOUR,
    )
    .await;
    let due = T0 + 1 + 72 * HOUR;
    let case = store.case(no_permit).await.unwrap().unwrap();
    for k in &case.checks {
        assert_eq!(k.due_ms, Some(due), "{:?}", k.department);
        assert_eq!(k.decided_ms, None);
        assert!(!k.overdue(due) && k.overdue(due + 1));
    }

    decide(store, speeding, Department::Police, T0 + 10 * HOUR).await;
    let police = store.case(speeding).await.unwrap().unwrap().checks[0].clone();
    assert_eq!(police.decided_ms, Some(T0 + 10 * HOUR));
    assert!(
        !police.overdue(T0 + 1000 * HOUR),
        "decided is never overdue"
    );

    let s = store
        .stats(T0 - 24 * HOUR, T0 + 24 * HOUR, T0 + 50 * HOUR)
        .await
        .unwrap();
    let police = s.deadlines["police"];
    assert_eq!(
        police,
        DeadlineStats {
            checks: 2,
            due: 1,
            on_time: 1,
            overdue: 0
        }
    );
    assert_eq!(police.on_time_rate(), Some(1.0));
    assert_eq!(s.deadlines["urban"].on_time_rate(), None, "nothing due yet");

    // Transport decides late; urban not at all; the older police check lapses.
    decide(store, no_permit, Department::Transport, T0 + 80 * HOUR).await;
    let now = T0 + 100 * HOUR;
    let s = store
        .stats(T0 - 24 * HOUR, T0 + 24 * HOUR, now)
        .await
        .unwrap();
    let counts = |d: &str| {
        let k = s.deadlines[d];
        (k.checks, k.due, k.on_time, k.overdue)
    };
    assert_eq!(counts("urban"), (1, 1, 0, 1));
    assert_eq!(counts("transport"), (1, 1, 0, 0));
    assert_eq!(counts("police"), (2, 2, 1, 1));
    assert_eq!(s.deadlines["police"].on_time_rate(), Some(0.5));

    // The police's list: only its overdue case, or every case with the
    // overdue one first.
    let police_view = |overdue_at, overdue_first_at| CaseFilter {
        visible_to: Some(Department::Police),
        overdue_at,
        overdue_first_at,
        ..Default::default()
    };
    let ids = |cases: Vec<muckwatch::store::CaseRecord>| -> Vec<i64> {
        cases.into_iter().map(|c| c.id).collect()
    };
    let (only, total) = store
        .cases(&police_view(Some(now), None), 100, 0)
        .await
        .unwrap();
    assert_eq!((ids(only), total), (vec![older], 1));
    let (newest_first, _) = store.cases(&police_view(None, None), 100, 0).await.unwrap();
    assert_eq!(ids(newest_first), vec![speeding, older]);
    let (overdue_first, _) = store
        .cases(&police_view(None, Some(now)), 100, 0)
        .await
        .unwrap();
    assert_eq!(ids(overdue_first), vec![older, speeding]);
    // Urban's overdue check is not the police's business.
    let (urban, _) = store
        .cases(
            &CaseFilter {
                visible_to: Some(Department::Urban),
                overdue_at: Some(now),
                ..Default::default()
            },
            100,
            0,
        )
        .await
        .unwrap();
    assert_eq!(ids(urban), vec![no_permit]);
}

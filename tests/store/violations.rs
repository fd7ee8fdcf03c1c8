//! Violations: one per episode, ended later, listed by filter.

use muckwatch::identity::FirmId;
use muckwatch::store::{Store, ViolationFilter};
use muckwatch::violation::{Uncertainty, ViolationCode};

use crate::support::*;

on_both_backends!(
    violations_are_idempotent_end_and_filter,
    a_violation_keeps_how_sure_it_is,
);

async fn a_violation_keeps_how_sure_it_is(store: &Store) {
    let band = Uncertainty {
        sigma_m: 28.4,
        confidence: 0.999_968,
        low: 212.5,
        high: 278.1,
        fixes: 6,
    };
    let mut sure = violation(ViolationCode::RouteDeviation, "苏J00001", "dev-1", T0);
    sure.uncertainty = Some(band);
    let plain = violation(ViolationCode::Overload, "苏J00001", "dev-1", T0);
    let (a, b) = (
        store.insert_violation(&sure, T0).await.unwrap(),
        store.insert_violation(&plain, T0).await.unwrap(),
    );
    let (items, _) = store
        .violations(&ViolationFilter::default(), 10, 0)
        .await
        .unwrap();
    let of = |id| items.iter().find(|v| v.id == id).expect("listed");
    assert_eq!(of(a).uncertainty, Some(band));
    assert_eq!(
        of(b).uncertainty,
        None,
        "codes not judged by position have none"
    );
    let json = muckwatch::violation::violation_json(of(a), chrono_tz::Asia::Shanghai);
    assert_eq!(
        json["uncertainty"],
        serde_json::json!({"sigma_m": 28.4, "confidence": 0.999_968, "low": 212.5,
            "high": 278.1, "fixes": 6})
    );
    assert!(
        muckwatch::violation::violation_json(of(b), chrono_tz::Asia::Shanghai)["uncertainty"]
            .is_null()
    );
}

async fn violations_are_idempotent_end_and_filter(store: &Store) {
    let v = violation(ViolationCode::Speeding, "苏J00001", "dev-1", T0);
    let id = store.insert_violation(&v, T0).await.unwrap();
    assert_eq!(
        store.insert_violation(&v, T0 + 5).await.unwrap(),
        id,
        "the same episode keeps its id"
    );
    let later = store
        .insert_violation(
            &violation(ViolationCode::Speeding, "苏J00001", "dev-1", T0 + HOUR),
            T0,
        )
        .await
        .unwrap();
    let mut no_permit = violation(ViolationCode::NoPermit, "苏J00002", "dev-2", T0 + 2 * HOUR);
    (no_permit.permit_id, no_permit.fences, no_permit.firm_id) =
        (None, vec![], FirmId::parse("firm-b").unwrap());
    let other = store.insert_violation(&no_permit, T0).await.unwrap();
    assert!(id != later && later != other);
    store
        .end_violation("dev-1", "SPEEDING", T0, T0 + 90_000)
        .await
        .unwrap();

    let list = |f: ViolationFilter| async move {
        let (items, total) = store.violations(&f, 100, 0).await.unwrap();
        assert_eq!(items.len() as i64, total);
        items
    };
    let all = list(ViolationFilter::default()).await;
    assert_eq!(
        all.iter().map(|v| v.id).collect::<Vec<_>>(),
        [id, later, other],
        "oldest first"
    );
    let first = &all[0];
    assert_eq!(
        (
            first.code.as_str(),
            first.plate.as_str(),
            first.device_id.as_str()
        ),
        ("SPEEDING", "苏J00001", "dev-1")
    );
    assert_eq!(
        (
            first.started_ms,
            first.ended_ms,
            first.measured,
            first.case_id
        ),
        (T0, Some(T0 + 90_000), 47.5, None)
    );
    assert_eq!(
        (first.permit_id.as_deref(), first.fences.clone()),
        (
            Some("permit-1"),
            vec!["zone-1".to_string(), "route-2".into()]
        )
    );
    assert_eq!(
        (
            all[1].ended_ms,
            all[2].permit_id.as_deref(),
            all[2].fences.len()
        ),
        (None, None, 0)
    );

    let ids = |items: Vec<muckwatch::store::StoredViolation>| {
        items.into_iter().map(|v| v.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(list(ViolationFilter {
            plate: Some("苏J00001".into()),
            ..Default::default()
        })
        .await),
        [id, later]
    );
    assert_eq!(
        ids(list(ViolationFilter {
            code: Some(ViolationCode::NoPermit),
            ..Default::default()
        })
        .await),
        [other]
    );
    assert_eq!(
        ids(list(ViolationFilter {
            since_ms: Some(T0 + HOUR),
            ..Default::default()
        })
        .await),
        [later, other]
    );
    assert_eq!(
        ids(list(ViolationFilter {
            firm: Some("firm-b".into()),
            ..Default::default()
        })
        .await),
        [other]
    );
    assert_eq!(
        ids(list(ViolationFilter {
            ids: Some(vec![other, id]),
            ..Default::default()
        })
        .await),
        [id, other]
    );
    assert!(list(ViolationFilter {
        ids: Some(vec![]),
        ..Default::default()
    })
    .await
    .is_empty());
    let (page, total) = store
        .violations(&ViolationFilter::default(), 1, 1)
        .await
        .unwrap();
    assert_eq!((ids(page), total), (vec![later], 3));

    let (filed, case_id) = raise(store, ViolationCode::Overload, "苏J00003", "dev-3", T0).await;
    let in_case = list(ViolationFilter {
        case_id: Some(case_id),
        ..Default::default()
    })
    .await;
    assert_eq!(
        (ids(in_case.clone()), in_case[0].case_id),
        (vec![filed], Some(case_id))
    );
}

//! Permits: stored with their plates, listed by filter, their status changed.

use muckwatch::permit::{Permit, PermitStatus};
use muckwatch::store::{PermitFilter, Store, StoreError};
use serde_json::json;

use crate::support::*;

on_both_backends!(permits_filter_and_change_status,);

async fn permits_filter_and_change_status(store: &Store) {
    seed_vehicle(store, "firm-a", "苏J00001", "dev-1").await;
    seed_vehicle(store, "firm-a", "苏J00002", "dev-2").await;
    seed_vehicle(store, "firm-b", "苏J00003", "dev-3").await;
    let permit = |id: &str, firm: &str, plates: &[&str]| {
        Permit::from_json(&json!({"id": id, "firm_id": firm, "plates": plates, "source_site": "s01", "disposal_site": "d01",
            "routes": ["r01"], "windows": [{"start": "21:00", "end": "06:00"}], "valid_from": "2021-06-01", "valid_until": "2021-12-31"}))
        .expect("permit")
    };
    let p1 = permit("p1", "firm-a", &["苏J00001", "苏J00002"]);
    store.create_permit(&p1, T0).await.unwrap();
    store
        .create_permit(&permit("p2", "firm-a", &["苏J00002"]), T0)
        .await
        .unwrap();
    store
        .create_permit(&permit("p3", "firm-b", &["苏J00003"]), T0)
        .await
        .unwrap();
    assert!(matches!(
        store.create_permit(&p1, T0).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .create_permit(&permit("p4", "nobody", &["苏J00001"]), T0)
            .await,
        Err(StoreError::MissingReference(_))
    ));
    let unknown_plate = store
        .create_permit(&permit("p5", "firm-a", &["苏J00001", "苏J09999"]), T0)
        .await;
    assert!(matches!(
        unknown_plate,
        Err(StoreError::MissingReference(_))
    ));
    assert!(
        store.permit("p5").await.unwrap().is_none(),
        "a refused permit leaves nothing behind"
    );

    assert_eq!(store.permit("p1").await.unwrap(), Some(p1.clone()));
    let ids = |(items, total): (Vec<Permit>, i64)| {
        (items.into_iter().map(|p| p.id).collect::<Vec<_>>(), total)
    };
    let list = |f: PermitFilter, limit: i64, offset: i64| async move {
        ids(store.permits(&f, limit, offset).await.unwrap())
    };
    assert_eq!(
        list(PermitFilter::default(), 100, 0).await,
        (vec!["p1".into(), "p2".into(), "p3".into()], 3)
    );
    assert_eq!(
        list(PermitFilter::default(), 1, 1).await,
        (vec!["p2".into()], 3)
    );
    let by_plate = PermitFilter {
        plate: Some("苏J00002".into()),
        ..Default::default()
    };
    assert_eq!(
        list(by_plate, 100, 0).await,
        (vec!["p1".into(), "p2".into()], 2)
    );
    let by_firm = PermitFilter {
        firm: Some("firm-b".into()),
        ..Default::default()
    };
    assert_eq!(list(by_firm, 100, 0).await, (vec!["p3".into()], 1));

    let changed = store
        .set_permit_status("p2", PermitStatus::Suspended, T0 + 1)
        .await
        .unwrap()
        .expect("known permit");
    assert_eq!(changed.status, PermitStatus::Suspended);
    assert_eq!(
        store.permit("p2").await.unwrap().map(|p| p.status),
        Some(PermitStatus::Suspended)
    );
    assert!(store
        .set_permit_status("p9", PermitStatus::Revoked, T0)
        .await
        .unwrap()
        .is_none());
    let suspended = PermitFilter {
        status: Some(PermitStatus::Suspended),
        ..Default::default()
    };
    assert_eq!(list(suspended, 100, 0).await, (vec!["p2".into()], 1));
    let active_of_plate = PermitFilter {
        plate: Some("苏J00002".into()),
        status: Some(PermitStatus::Active),
        firm: Some("firm-a".into()),
    };
    assert_eq!(list(active_of_plate, 100, 0).await, (vec!["p1".into()], 1));
    assert_eq!(store.all_permits().await.unwrap().len(), 3);
}

//! Firms, vehicles and API tokens.

use muckwatch::auth::{Department, Role, TokenState};
use muckwatch::fix::DeviceId;
use muckwatch::identity::{Firm, FirmId};
use muckwatch::store::{Store, StoreError};

use crate::support::*;

on_both_backends!(firms_and_vehicles, tokens,);

async fn firms_and_vehicles(store: &Store) {
    seed_vehicle(store, "firm-a", "苏J00001", "dev-1").await;
    seed_vehicle(store, "firm-a", "苏J00000", "dev-0").await;
    let firm = store
        .firm(&FirmId::parse("firm-a").unwrap())
        .await
        .unwrap()
        .expect("firm stored");
    assert_eq!(firm.name, "firm-a 渣土运输");
    assert!(store
        .firm(&FirmId::parse("nobody").unwrap())
        .await
        .unwrap()
        .is_none());
    let dup = Firm {
        id: FirmId::parse("firm-a").unwrap(),
        name: "again".into(),
    };
    assert!(matches!(
        store.create_firm(&dup, T0).await,
        Err(StoreError::Conflict(_))
    ));

    let v = store
        .vehicle(&plate("苏J00001"))
        .await
        .unwrap()
        .expect("vehicle stored");
    assert_eq!(
        (v.device_id.as_str(), v.firm_id.as_str(), v.rated_load_t),
        ("dev-1", "firm-a", 31.0)
    );
    assert!(store.vehicle(&plate("苏J99999")).await.unwrap().is_none());
    let plates: Vec<String> = store
        .vehicles()
        .await
        .unwrap()
        .iter()
        .map(|v| v.plate.to_string())
        .collect();
    assert_eq!(plates, ["苏J00000", "苏J00001"]);

    let mut other = v.clone();
    other.device_id = DeviceId::parse("dev-9").unwrap();
    assert!(
        matches!(
            store.create_vehicle(&other, T0).await,
            Err(StoreError::Conflict(_))
        ),
        "same plate"
    );
    other.plate = plate("苏J00009");
    other.device_id = DeviceId::parse("dev-1").unwrap();
    assert!(
        matches!(
            store.create_vehicle(&other, T0).await,
            Err(StoreError::Conflict(_))
        ),
        "same device"
    );
    other.device_id = DeviceId::parse("dev-9").unwrap();
    other.firm_id = FirmId::parse("nobody").unwrap();
    assert!(matches!(
        store.create_vehicle(&other, T0).await,
        Err(StoreError::MissingReference(_))
    ));
}

async fn tokens(store: &Store) {
    let roles = [
        Role::Admin,
        Role::Dept(Department::Police),
        Role::Firm(FirmId::parse("firm-a").unwrap()),
    ];
    for (i, role) in roles.iter().enumerate() {
        store
            .create_token(&format!("hash-{i}"), role, T0)
            .await
            .unwrap();
    }
    for (i, role) in roles.iter().enumerate() {
        assert_eq!(
            store
                .token_role(&format!("hash-{i}"))
                .await
                .unwrap()
                .as_ref(),
            Some(role)
        );
    }
    assert!(store.token_role("hash-unknown").await.unwrap().is_none());

    // Listed oldest first by id (the hash's start), revoked by id, expired by time.
    let listed = store.tokens().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].id, "hash-0");
    let hex = "abcdef0123456789";
    store
        .create_token_expiring(hex, &Role::Admin, T0, Some(T0 + 1000))
        .await
        .unwrap();
    let t = store.token(hex).await.unwrap().unwrap();
    assert_eq!(t.state(T0 + 999), TokenState::Active);
    assert_eq!(t.state(T0 + 1000), TokenState::Expired);
    assert!(
        store.revoke_token("abcd", T0).await.unwrap().is_err(),
        "too short"
    );
    let revoked = store
        .revoke_token("ABCDEF01", T0 + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (revoked.id.as_str(), revoked.revoked_ms),
        ("abcdef012345", Some(T0 + 5))
    );
    assert_eq!(
        store.token(hex).await.unwrap().unwrap().state(T0),
        TokenState::Active
    );
    assert_eq!(
        store.token(hex).await.unwrap().unwrap().state(T0 + 5),
        TokenState::Revoked
    );
    assert!(store.token_role(hex).await.unwrap().is_none());
}

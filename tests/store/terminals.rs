//! JT/T 808 terminals' auth codes: stored hashed, replaced on a new
//! registration, forgotten on deregistration; a device is looked up to its
//! vehicle.

use muckwatch::auth::token_hash;
use muckwatch::fix::DeviceId;
use muckwatch::store::{Store, TerminalRegistration};

use crate::support::*;

on_both_backends!(terminal_codes,);

fn registration(device: &str, code: &str) -> TerminalRegistration {
    TerminalRegistration {
        device_id: DeviceId::parse(device).unwrap(),
        auth_hash: token_hash(code),
        plate: "粤A12345".into(),
        maker: "MW".into(),
        model: "MW-1".into(),
        terminal_id: "T1".into(),
    }
}

async fn terminal_codes(store: &Store) {
    seed_vehicle(store, "firm-a", "苏J00001", "013900000001").await;
    let device = DeviceId::parse("013900000001").unwrap();
    let v = store.vehicle_of_device(&device).await.unwrap();
    assert_eq!(v.map(|v| v.plate.to_string()).as_deref(), Some("苏J00001"));
    let stranger = DeviceId::parse("013999999999").unwrap();
    assert!(store.vehicle_of_device(&stranger).await.unwrap().is_none());

    assert_eq!(store.terminal_auth_hash(&device).await.unwrap(), None);
    store
        .register_terminal(&registration("013900000001", "first"), T0)
        .await
        .unwrap();
    assert_eq!(
        store.terminal_auth_hash(&device).await.unwrap(),
        Some(token_hash("first"))
    );
    store
        .register_terminal(&registration("013900000001", "second"), T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        store.terminal_auth_hash(&device).await.unwrap(),
        Some(token_hash("second")),
        "a new registration replaces the code"
    );
    assert!(store.deregister_terminal(&device).await.unwrap());
    assert!(!store.deregister_terminal(&device).await.unwrap());
    assert_eq!(store.terminal_auth_hash(&device).await.unwrap(), None);
}

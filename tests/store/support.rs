//! What every part of the suite uses: an operating night, a vehicle, a
//! violation raised and filed as the pipeline does, a fix.

use muckwatch::cases::{overload_parties, CheckStatus, CheckUpdate, NewViolationCase, Routing};
use muckwatch::fix::{DeviceId, Fix};
use muckwatch::identity::{Firm, FirmId, Plate, Vehicle};
use muckwatch::store::Store;
use muckwatch::violation::{Violation, ViolationCode};

pub const HOUR: i64 = 3_600_000;
pub const WINDOW: i64 = 12 * HOUR;
/// 2021-06-01T22:00:00+08:00, an operating night.
pub const T0: i64 = 1_622_556_000_000;

pub fn plate(s: &str) -> Plate {
    Plate::parse(s).expect("plate")
}

pub async fn seed_vehicle(store: &Store, firm: &str, p: &str, device: &str) {
    if store
        .firm(&FirmId::parse(firm).expect("firm id"))
        .await
        .expect("firm")
        .is_none()
    {
        let f = Firm {
            id: FirmId::parse(firm).expect("firm id"),
            name: format!("{firm} 渣土运输"),
        };
        store.create_firm(&f, T0).await.expect("firm created");
    }
    let v = Vehicle {
        plate: plate(p),
        device_id: DeviceId::parse(device).expect("device"),
        firm_id: FirmId::parse(firm).expect("firm"),
        rated_load_t: 31.0,
    };
    store.create_vehicle(&v, T0).await.expect("vehicle created");
}

pub fn violation(code: ViolationCode, p: &str, device: &str, started_ms: i64) -> Violation {
    Violation {
        code,
        plate: plate(p),
        device_id: DeviceId::parse(device).expect("device"),
        firm_id: FirmId::parse("firm-a").expect("firm"),
        permit_id: Some("permit-1".into()),
        started_ms,
        ended_ms: None,
        lat: 33.38,
        lon: 120.16,
        measured: 47.5,
        fences: vec!["zone-1".into(), "route-2".into()],
        uncertainty: None,
    }
}

/// Stores and files a violation as the pipeline does; returns (violation id, case id).
pub async fn raise(
    store: &Store,
    code: ViolationCode,
    p: &str,
    device: &str,
    started_ms: i64,
) -> (i64, i64) {
    let id = store
        .insert_violation(&violation(code, p, device, started_ms), started_ms)
        .await
        .expect("violation stored");
    let parties = if code == ViolationCode::Overload {
        overload_parties(p, "firm-a", "site-1")
    } else {
        vec![]
    };
    let routing = Routing::default();
    let filing = NewViolationCase {
        violation_id: id,
        code,
        plate: plate(p),
        device_id: DeviceId::parse(device).expect("device"),
        firm_id: FirmId::parse("firm-a").expect("firm"),
        started_ms,
        merge_window_ms: WINDOW,
        deadlines: muckwatch::cases::Deadlines::default(),
        departments: routing.departments(code).to_vec(),
        parties,
    };
    (
        id,
        store
            .file_violation(&filing, started_ms + 1)
            .await
            .expect("violation filed"),
    )
}

pub fn step(status: CheckStatus) -> CheckUpdate {
    let finding = (status == CheckStatus::Decided).then(|| "confirmed on camera".to_string());
    CheckUpdate {
        status,
        finding,
        penalty: None,
    }
}

pub fn fix(device: &str, ts_ms: i64) -> Fix {
    Fix {
        device_id: DeviceId::parse(device).expect("device"),
        ts_ms,
        lat: 33.38,
        lon: 120.16,
        speed_kmh: 30.0,
        heading: None,
        acc: None,
        tipper_up: None,
        cover_closed: None,
        load_t: None,
    }
}

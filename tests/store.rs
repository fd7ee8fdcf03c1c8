//! The store suite: every test is written once against [`Store`] and run on
//! both backends, so SQLite and PostgreSQL are held to the same behaviour.
//! `on_sqlite::*` always run (a fresh temp file each). `on_postgres::*` are
//! ignored by default and run by `.ci/run` (`cargo test --test store --
//! --ignored`) against `MUCKWATCH_TEST_POSTGRES_URL`; each creates its own
//! database and drops it afterwards, also when it fails.

use std::sync::Arc;

mod common;

use common::db::{postgres_db, sqlite_db};
use muckwatch::auth::{Department, Role};
use muckwatch::cases::{overload_parties, CaseStatus, CheckStatus, CheckUpdate, Penalty, Routing};
use muckwatch::fix::{DeviceId, Fix};
use muckwatch::permit::{Permit, PermitStatus};
use muckwatch::registry::{Firm, FirmId, Plate, Vehicle};
use muckwatch::rules::Violation;
use muckwatch::store::{
    CaseFilter, CheckError, DeadLetter, NewViolationCase, PermitFilter, Store, StoreError,
    ViolationFilter,
};
use muckwatch::violation::ViolationCode;
use serde_json::json;

const HOUR: i64 = 3_600_000;
const WINDOW: i64 = 12 * HOUR;
/// 2021-06-01T22:00:00+08:00, an operating night.
const T0: i64 = 1_622_556_000_000;

/// Runs each named suite function on SQLite and, when asked for, PostgreSQL.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let db = super::sqlite_db().await;
                    super::$test(&db.store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL; run by .ci/run"]
                async fn $test() {
                    let db = super::postgres_db().await;
                    super::$test(&db.store).await;
                }
            )*
        }
    };
}

on_both_backends!(
    firms_and_vehicles,
    fixes_drop_duplicates_and_answer_time_ranges,
    retention_keeps_the_evidence_of_violations,
    latest_fix_of_each_vehicle,
    dead_letters_are_pruned_to_keep,
    tokens,
    permits_filter_and_change_status,
    violations_are_idempotent_end_and_filter,
    cases_merge_within_the_window_and_unite_departments,
    overload_parties_are_listed_once_in_order,
    checks_move_one_step_and_close_the_case,
    stats_count_the_period,
    concurrent_departments_never_lose_a_change,
    concurrent_filings_share_one_case,
);

// ---- helpers ----------------------------------------------------------------

fn plate(s: &str) -> Plate {
    Plate::parse(s).expect("plate")
}

async fn seed_vehicle(store: &Store, firm: &str, p: &str, device: &str) {
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

fn violation(code: ViolationCode, p: &str, device: &str, started_ms: i64) -> Violation {
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
    }
}

/// Stores and files a violation as the pipeline does; returns (violation id, case id).
async fn raise(
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

fn step(status: CheckStatus) -> CheckUpdate {
    let finding = (status == CheckStatus::Decided).then(|| "confirmed on camera".to_string());
    CheckUpdate {
        status,
        finding,
        penalty: None,
    }
}

fn fix(device: &str, ts_ms: i64) -> Fix {
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

// ---- the suite --------------------------------------------------------------

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
}

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

async fn cases_merge_within_the_window_and_unite_departments(store: &Store) {
    let (_, case) = raise(store, ViolationCode::Speeding, "苏J00001", "dev-1", T0).await;
    let (_, same) = raise(
        store,
        ViolationCode::CoverOpen,
        "苏J00001",
        "dev-1",
        T0 + WINDOW,
    )
    .await;
    let (_, again) = raise(
        store,
        ViolationCode::Speeding,
        "苏J00001",
        "dev-1",
        T0 + HOUR,
    )
    .await;
    assert_eq!(
        (same, again),
        (case, case),
        "joins the open case opened within 12 h"
    );
    let (_, next_night) = raise(
        store,
        ViolationCode::Speeding,
        "苏J00001",
        "dev-1",
        T0 + WINDOW + 1,
    )
    .await;
    let (_, other_truck) = raise(store, ViolationCode::Speeding, "苏J00002", "dev-2", T0).await;
    assert!(next_night != case && other_truck != case && other_truck != next_night);

    let c = store.case(case).await.unwrap().expect("case stored");
    assert_eq!(
        (c.plate.as_str(), c.device_id.as_str(), c.firm_id.as_str()),
        ("苏J00001", "dev-1", "firm-a")
    );
    assert_eq!(
        (c.status, c.opened_ms, c.closed_ms),
        (CaseStatus::Open, T0, None)
    );
    assert_eq!(c.codes, [ViolationCode::CoverOpen, ViolationCode::Speeding]);
    let depts: Vec<&str> = c.checks.iter().map(|k| k.department.as_str()).collect();
    assert_eq!(
        depts,
        ["ecology", "police", "urban"],
        "the union of the codes' departments, each once"
    );
    assert!(c
        .checks
        .iter()
        .all(|k| k.status == CheckStatus::Pending && k.finding.is_none() && k.penalty.is_none()));
    assert!(c.parties.is_empty());
    assert!(store.case(999_999).await.unwrap().is_none());

    let audit: Vec<(String, Option<Department>, Option<String>)> = store
        .case_audit(case)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.field, a.department, a.after))
        .collect();
    let expect =
        |f: &str, d: Option<Department>, after: &str| (f.to_string(), d, Some(after.to_string()));
    assert_eq!(audit[0], expect("case", None, "open"));
    assert_eq!(audit[1].0, "violation");
    assert_eq!(
        audit[2],
        expect("check", Some(Department::Police), "pending")
    );
    assert_eq!(
        audit.iter().filter(|a| a.0 == "check").count(),
        3,
        "one record per check added"
    );
    assert_eq!(audit.iter().filter(|a| a.0 == "violation").count(), 3);

    let ids = |f: CaseFilter| async move {
        let (items, total) = store.cases(&f, 100, 0).await.unwrap();
        assert_eq!(items.len() as i64, total);
        items.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(CaseFilter::default()).await,
        [next_night, other_truck, case],
        "newest first"
    );
    assert_eq!(
        ids(CaseFilter {
            visible_to: Some(Department::Ecology),
            ..Default::default()
        })
        .await,
        [case]
    );
    assert_eq!(
        ids(CaseFilter {
            department: Some(Department::Police),
            plate: Some("苏J00001".into()),
            ..Default::default()
        })
        .await,
        [next_night, case]
    );
    assert_eq!(
        ids(CaseFilter {
            code: Some(ViolationCode::CoverOpen),
            ..Default::default()
        })
        .await,
        [case]
    );
    assert_eq!(
        ids(CaseFilter {
            firm: Some("firm-b".into()),
            ..Default::default()
        })
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(CaseFilter {
            from_ms: Some(T0 + 1),
            to_ms: Some(T0 + WINDOW + 1),
            ..Default::default()
        })
        .await,
        [next_night]
    );
    assert_eq!(
        ids(CaseFilter {
            status: Some(CaseStatus::Closed),
            ..Default::default()
        })
        .await,
        Vec::<i64>::new()
    );
    let (page, total) = store.cases(&CaseFilter::default(), 1, 1).await.unwrap();
    assert_eq!((page[0].id, total), (other_truck, 3));
}

async fn overload_parties_are_listed_once_in_order(store: &Store) {
    let (_, case) = raise(store, ViolationCode::Overload, "苏J00001", "dev-1", T0).await;
    assert_eq!(
        raise(
            store,
            ViolationCode::Overload,
            "苏J00001",
            "dev-1",
            T0 + HOUR
        )
        .await
        .1,
        case
    );
    let c = store.case(case).await.unwrap().expect("case");
    let parties: Vec<(&str, &str)> = c
        .parties
        .iter()
        .map(|p| (p.role.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(
        parties,
        [
            ("vehicle", "苏J00001"),
            ("driver", "driver of 苏J00001"),
            ("transport_firm", "firm-a"),
            ("source_unit", "site-1")
        ]
    );
    assert_eq!(
        c.checks
            .iter()
            .map(|k| k.department.as_str())
            .collect::<Vec<_>>(),
        ["housing", "police", "transport"]
    );
    let audited = store
        .case_audit(case)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.field.starts_with("party."))
        .count();
    assert_eq!(audited, 4);
}

async fn checks_move_one_step_and_close_the_case(store: &Store) {
    let (_, case) = raise(store, ViolationCode::CoverOpen, "苏J00001", "dev-1", T0).await;
    let (urban, ecology) = (Department::Urban, Department::Ecology);
    let illegal = store
        .update_check(
            case,
            urban,
            &step(CheckStatus::Decided),
            "officer-1",
            T0 + 1,
        )
        .await;
    assert!(
        matches!(illegal, Err(CheckError::Illegal(_))),
        "pending cannot skip to decided"
    );
    assert!(matches!(
        store
            .update_check(
                case,
                Department::Police,
                &step(CheckStatus::Investigating),
                "p",
                T0
            )
            .await,
        Err(CheckError::NoSuchCheck)
    ));
    assert!(matches!(
        store
            .update_check(999_999, urban, &step(CheckStatus::Investigating), "u", T0)
            .await,
        Err(CheckError::NoSuchCheck)
    ));

    store
        .update_check(
            case,
            urban,
            &step(CheckStatus::Investigating),
            "officer-1",
            T0 + 2,
        )
        .await
        .expect("legal step");
    // A second officer who also read `pending` is refused, not applied twice.
    let stale = store
        .update_check(
            case,
            urban,
            &step(CheckStatus::Investigating),
            "officer-2",
            T0 + 3,
        )
        .await;
    assert!(matches!(stale, Err(CheckError::Illegal(_))));

    let decision = CheckUpdate {
        status: CheckStatus::Decided,
        finding: Some("cover open for 4 km".into()),
        penalty: Some(Penalty {
            party: "firm-a".into(),
            amount_cny: 2000.0,
        }),
    };
    store
        .update_check(case, urban, &decision, "officer-1", T0 + 4)
        .await
        .unwrap();
    store
        .update_check(case, urban, &step(CheckStatus::Closed), "officer-1", T0 + 5)
        .await
        .unwrap();
    let c = store.case(case).await.unwrap().expect("case");
    assert_eq!(
        c.status,
        CaseStatus::Open,
        "ecology's check is still pending"
    );
    let urban_check = c
        .checks
        .iter()
        .find(|k| k.department == Department::Urban)
        .expect("urban check");
    assert_eq!(urban_check.status, CheckStatus::Closed);
    assert_eq!(
        urban_check.finding.as_deref(),
        Some("cover open for 4 km"),
        "kept when a later step has none"
    );
    assert_eq!(
        urban_check.penalty,
        Some(Penalty {
            party: "firm-a".to_string(),
            amount_cny: 2000.0
        })
    );
    assert!(matches!(
        store
            .update_check(case, urban, &step(CheckStatus::Closed), "x", T0)
            .await,
        Err(CheckError::Illegal(_))
    ));

    for (i, s) in [
        CheckStatus::Investigating,
        CheckStatus::Decided,
        CheckStatus::Closed,
    ]
    .into_iter()
    .enumerate()
    {
        store
            .update_check(case, ecology, &step(s), "eco-officer", T0 + 10 + i as i64)
            .await
            .unwrap();
    }
    let c = store.case(case).await.unwrap().expect("case");
    assert_eq!(
        (c.status, c.closed_ms),
        (CaseStatus::Closed, Some(T0 + 12)),
        "the last check closed closes the case"
    );

    let audit = store.case_audit(case).await.unwrap();
    assert!(audit.windows(2).all(|w| w[0].id < w[1].id), "in order");
    let urban_trail: Vec<(&str, Option<&str>, Option<&str>)> = audit
        .iter()
        .filter(|a| a.actor == "officer-1")
        .map(|a| (a.field.as_str(), a.before.as_deref(), a.after.as_deref()))
        .collect();
    assert_eq!(
        urban_trail,
        [
            ("status", Some("pending"), Some("investigating")),
            ("status", Some("investigating"), Some("decided")),
            ("finding", None, Some("cover open for 4 km")),
            ("penalty", None, Some("firm-a: 2000 CNY")),
            ("status", Some("decided"), Some("closed")),
        ]
    );
    let last = audit.last().expect("audit");
    assert_eq!(
        (
            last.field.as_str(),
            last.before.as_deref(),
            last.after.as_deref(),
            last.at_ms
        ),
        ("case", Some("open"), Some("closed"), T0 + 12)
    );

    let (_, reopened) = raise(
        store,
        ViolationCode::Speeding,
        "苏J00001",
        "dev-1",
        T0 + HOUR,
    )
    .await;
    assert_ne!(reopened, case, "a closed case takes no new violations");
}

async fn stats_count_the_period(store: &Store) {
    let (_, overload_case) = raise(store, ViolationCode::Overload, "苏J00001", "dev-1", T0).await;
    raise(
        store,
        ViolationCode::Speeding,
        "苏J00001",
        "dev-1",
        T0 + HOUR,
    )
    .await;
    let (_, single) = raise(store, ViolationCode::Speeding, "苏J00002", "dev-2", T0).await;
    raise(
        store,
        ViolationCode::Speeding,
        "苏J00003",
        "dev-3",
        T0 + 30 * 24 * HOUR,
    )
    .await; // outside the period
    let fine = |amount| CheckUpdate {
        status: CheckStatus::Decided,
        finding: Some("speed".into()),
        penalty: Some(Penalty {
            party: "driver".into(),
            amount_cny: amount,
        }),
    };
    store
        .update_check(
            single,
            Department::Police,
            &step(CheckStatus::Investigating),
            "p",
            T0,
        )
        .await
        .unwrap();
    store
        .update_check(single, Department::Police, &fine(200.0), "p", T0)
        .await
        .unwrap();
    store
        .update_check(
            single,
            Department::Police,
            &step(CheckStatus::Closed),
            "p",
            T0,
        )
        .await
        .unwrap();
    store
        .update_check(
            overload_case,
            Department::Transport,
            &step(CheckStatus::Investigating),
            "t",
            T0,
        )
        .await
        .unwrap();
    store
        .update_check(overload_case, Department::Transport, &fine(5000.5), "t", T0)
        .await
        .unwrap();

    let s = store.stats(T0 - HOUR, T0 + 24 * HOUR).await.unwrap();
    let map = |pairs: &[(&str, i64)]| pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    assert_eq!(s.by_code, map(&[("OVERLOAD", 1), ("SPEEDING", 2)]));
    assert_eq!(
        s.by_department,
        map(&[("housing", 1), ("police", 2), ("transport", 1)])
    );
    assert_eq!(
        (
            s.cases,
            s.closed_cases,
            s.multi_department_cases,
            s.overload_cases
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(s.penalties_cny, 5200.5);
    let empty = store.stats(T0 - 2 * HOUR, T0 - HOUR).await.unwrap();
    assert_eq!(empty, muckwatch::store::Stats::default());
}

/// Two departments move their checks of one case at the same instant, step
/// by step to closed, 20 times over: every change survives, and the case is
/// closed exactly once, by whichever check closed last.
async fn concurrent_departments_never_lose_a_change(store: &Store) {
    for round in 0..20 {
        let p = format!("苏J1{round:04}");
        let (_, case) = raise(
            store,
            ViolationCode::NoPermit,
            &p,
            &format!("dev-{round}"),
            T0,
        )
        .await;
        for s in [
            CheckStatus::Investigating,
            CheckStatus::Decided,
            CheckStatus::Closed,
        ] {
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let tasks: Vec<_> = [Department::Urban, Department::Transport]
                .into_iter()
                .map(|d| {
                    let (store, barrier) = (store.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        store
                            .update_check(case, d, &step(s), d.as_str(), T0 + round)
                            .await
                    })
                })
                .collect();
            for t in tasks {
                let done = t.await.expect("task");
                assert!(done.is_ok(), "round {round}, {s:?}: {done:?}");
            }
            let c = store.case(case).await.unwrap().expect("case");
            assert!(
                c.checks.iter().all(|k| k.status == s),
                "round {round}: a change was lost: {:?}",
                c.checks
            );
        }
        let c = store.case(case).await.unwrap().expect("case");
        assert_eq!(c.status, CaseStatus::Closed, "round {round}");
        let closings = store
            .case_audit(case)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.field == "case" && a.before.is_some())
            .count();
        assert_eq!(closings, 1, "round {round}");
    }
}

/// Two violations of one truck filed at the same instant go into one case.
async fn concurrent_filings_share_one_case(store: &Store) {
    for round in 0..10 {
        let p = format!("苏J2{round:04}");
        let tasks: Vec<_> = [ViolationCode::Speeding, ViolationCode::CoverOpen]
            .into_iter()
            .map(|code| {
                let (store, p) = (store.clone(), p.clone());
                tokio::spawn(async move { raise(&store, code, &p, "dev-x", T0 + round).await.1 })
            })
            .collect();
        let mut cases = Vec::new();
        for t in tasks {
            cases.push(t.await.expect("task"));
        }
        assert_eq!(cases[0], cases[1], "round {round}");
        let c = store.case(cases[0]).await.unwrap().expect("case");
        assert_eq!(c.checks.len(), 3, "police, urban, ecology: {:?}", c.checks);
    }
}

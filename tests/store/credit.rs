//! The credit ledger: a violation is charged once when its case's first
//! penalty is decided, never for a case decided without penalty, and
//! reversed (with an audit line) when the last penalty is withdrawn.

use muckwatch::auth::Department;
use muckwatch::cases::{CheckStatus, CheckUpdate, Penalty};
use muckwatch::identity::FirmId;
use muckwatch::store::Store;
use muckwatch::violation::ViolationCode;

use crate::support::*;

on_both_backends!(
    a_violation_is_charged_once_and_reversed_when_withdrawn,
    a_case_decided_without_penalty_costs_nothing,
);

fn fined() -> CheckUpdate {
    CheckUpdate {
        status: CheckStatus::Decided,
        finding: Some("confirmed on camera".into()),
        penalty: Some(Penalty {
            party: "firm-a".into(),
            amount_cny: 2000.0,
        }),
    }
}

async fn decide(store: &Store, case: i64, d: Department, u: &CheckUpdate) {
    store
        .update_check(
            case,
            d,
            &step(CheckStatus::Investigating),
            "officer",
            T0 + HOUR,
        )
        .await
        .expect("investigating");
    store
        .update_check(case, d, u, "officer", T0 + 2 * HOUR)
        .await
        .expect("decided");
}

async fn charged(store: &Store) -> Vec<(i64, ViolationCode, i64)> {
    let firm = FirmId::parse("firm-a").unwrap();
    store
        .credit_deductions(Some(&firm), T0 - WINDOW, T0 + WINDOW)
        .await
        .expect("deductions")
        .into_iter()
        .map(|d| (d.violation_id, d.code, d.case_id))
        .collect()
}

async fn a_violation_is_charged_once_and_reversed_when_withdrawn(store: &Store) {
    seed_vehicle(store, "firm-a", "苏J00001", "dev-1").await;
    let (speeding, case) = raise(store, ViolationCode::Speeding, "苏J00001", "dev-1", T0).await;
    let (cover, same) = raise(
        store,
        ViolationCode::CoverOpen,
        "苏J00001",
        "dev-1",
        T0 + 60_000,
    )
    .await;
    assert_eq!(case, same, "one night, one case");
    assert!(charged(store).await.is_empty(), "nothing decided yet");

    decide(store, case, Department::Police, &fined()).await;
    let want = vec![
        (speeding, ViolationCode::Speeding, case),
        (cover, ViolationCode::CoverOpen, case),
    ];
    assert_eq!(
        charged(store).await,
        want,
        "the first penalty charges each violation"
    );
    decide(store, case, Department::Urban, &fined()).await;
    assert_eq!(
        charged(store).await,
        want,
        "a second department's penalty does not multiply it"
    );

    // The police decision withdrawn: urban's penalty still stands.
    let reopen = step(CheckStatus::Investigating);
    store
        .update_check(case, Department::Police, &reopen, "chief", T0 + 3 * HOUR)
        .await
        .expect("police reopened");
    assert_eq!(charged(store).await, want);
    store
        .update_check(case, Department::Urban, &reopen, "chief", T0 + 3 * HOUR)
        .await
        .expect("urban reopened");
    assert!(
        charged(store).await.is_empty(),
        "the last penalty withdrawn reverses"
    );

    let credit: Vec<_> = store
        .case_audit(case)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.field == "credit")
        .map(|a| (a.actor, a.after))
        .collect();
    assert_eq!(
        credit,
        [
            (
                "officer".into(),
                Some(format!("deducted: SPEEDING #{speeding}"))
            ),
            (
                "officer".into(),
                Some(format!("deducted: COVER_OPEN #{cover}"))
            ),
            (
                "chief".into(),
                Some(format!("reversed: SPEEDING #{speeding}"))
            ),
            (
                "chief".into(),
                Some(format!("reversed: COVER_OPEN #{cover}"))
            ),
        ]
    );

    // Decided again with a penalty: charged again, still once.
    decide_again(store, case).await;
    assert_eq!(charged(store).await, want);
    // A violation joining the penalised case is charged as it is filed.
    let (late, joined) = raise(
        store,
        ViolationCode::Speeding,
        "苏J00001",
        "dev-1",
        T0 + HOUR,
    )
    .await;
    assert_eq!(joined, case);
    let mut with_late = want.clone();
    with_late.push((late, ViolationCode::Speeding, case));
    assert_eq!(charged(store).await, with_late);
    let firm = FirmId::parse("firm-a").unwrap();
    let next_year = store
        .credit_deductions(Some(&firm), T0 + WINDOW, T0 + 400 * 24 * HOUR)
        .await
        .unwrap();
    assert!(next_year.is_empty(), "counted by the violation's start");
}

async fn decide_again(store: &Store, case: i64) {
    store
        .update_check(case, Department::Police, &fined(), "officer", T0 + 4 * HOUR)
        .await
        .expect("decided again");
}

async fn a_case_decided_without_penalty_costs_nothing(store: &Store) {
    seed_vehicle(store, "firm-a", "苏J00001", "dev-1").await;
    let (_, case) = raise(store, ViolationCode::Speeding, "苏J00001", "dev-1", T0).await;
    decide(store, case, Department::Police, &step(CheckStatus::Decided)).await;
    store
        .update_check(
            case,
            Department::Police,
            &step(CheckStatus::Closed),
            "officer",
            T0 + 5 * HOUR,
        )
        .await
        .expect("closed");
    assert!(charged(store).await.is_empty());
    let c = store.case(case).await.unwrap().unwrap();
    assert_eq!(c.status, muckwatch::cases::CaseStatus::Closed);
}

//! Two writers at the same instant: neither loses the other's change.

use std::sync::Arc;

use muckwatch::auth::Department;
use muckwatch::cases::{plan_withdrawal, CaseStatus, CheckStatus, CheckUpdate, Penalty};
use muckwatch::identity::FirmId;
use muckwatch::store::Store;
use muckwatch::violation::ViolationCode;

use crate::support::*;

on_both_backends!(
    concurrent_departments_never_lose_a_change,
    concurrent_filings_share_one_case,
    a_withdrawal_racing_a_fine_never_leaves_a_charge,
);

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

/// A TRACK_GAP withdrawn at the instant transport fines its case, 20 times
/// over: whichever commits first, the gap is left uncharged, and it has
/// either no credit line or one charge and one reversal.
async fn a_withdrawal_racing_a_fine_never_leaves_a_charge(store: &Store) {
    let fine = CheckUpdate {
        status: CheckStatus::Decided,
        finding: Some("terminal unplugged".into()),
        penalty: Some(Penalty {
            party: "firm-a".into(),
            amount_cny: 500.0,
        }),
    };
    for round in 0..20 {
        let p = format!("苏J3{round:04}");
        let (gap, case) = raise(
            store,
            ViolationCode::TrackGap,
            &p,
            &format!("dev-g{round}"),
            T0 + round,
        )
        .await;
        store
            .update_check(
                case,
                Department::Transport,
                &step(CheckStatus::Investigating),
                "t",
                T0,
            )
            .await
            .expect("investigating");
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let decide = {
            let (store, barrier, fine) = (store.clone(), barrier.clone(), fine.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .update_check(case, Department::Transport, &fine, "t", T0 + HOUR)
                    .await
            })
        };
        let withdraw = {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let audit = plan_withdrawal(gap, ViolationCode::TrackGap, "backfill", T0 + HOUR);
                store
                    .withdraw_violation(gap, Some(case), &audit, T0 + HOUR)
                    .await
            })
        };
        assert!(decide.await.expect("task").is_ok(), "round {round}");
        assert!(
            withdraw.await.expect("task").expect("withdrawal"),
            "round {round}"
        );
        let firm = FirmId::parse("firm-a").unwrap();
        let standing: Vec<i64> = store
            .credit_deductions(Some(&firm), T0 - HOUR, T0 + WINDOW)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.violation_id)
            .collect();
        assert!(!standing.contains(&gap), "round {round}: {standing:?}");
        let lines: Vec<String> = store
            .case_audit(case)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.field == "credit")
            .filter_map(|a| a.after)
            .collect();
        assert!(
            lines.is_empty()
                || lines
                    == [
                        format!("deducted: TRACK_GAP #{gap}"),
                        format!("reversed: TRACK_GAP #{gap} (violation withdrawn)"),
                    ],
            "round {round}: {lines:?}"
        );
    }
}

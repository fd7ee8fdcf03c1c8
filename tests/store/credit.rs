//! The credit ledger: a violation is charged once when its case's first
//! penalty is decided, never for a case decided without penalty, and
//! reversed (with an audit line) when the last penalty is withdrawn.

use muckwatch::auth::Department;
use muckwatch::cases::{
    plan_withdrawal, CheckStatus, CheckUpdate, NewViolationCase, Penalty, Routing,
};
use muckwatch::fix::DeviceId;
use muckwatch::identity::FirmId;
use muckwatch::store::Store;
use muckwatch::violation::ViolationCode;

use crate::support::*;

on_both_backends!(
    a_violation_is_charged_once_and_reversed_when_withdrawn,
    a_case_decided_without_penalty_costs_nothing,
    a_withdrawn_track_gap_gives_its_points_back_once_and_is_never_charged_again,
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

/// Withdraws violation `id` as the pipeline does; whether it was withdrawn now.
async fn withdraw(store: &Store, id: i64, case: Option<i64>, at_ms: i64) -> bool {
    let audit = plan_withdrawal(id, ViolationCode::TrackGap, "backfill covers it", at_ms);
    store
        .withdraw_violation(id, case, &audit, at_ms)
        .await
        .expect("withdrawal")
}

/// The case's credit audit lines: (actor, after).
async fn credit_lines(store: &Store, case: i64) -> Vec<(String, Option<String>)> {
    store
        .case_audit(case)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.field == "credit")
        .map(|a| (a.actor, a.after))
        .collect()
}

async fn a_withdrawn_track_gap_gives_its_points_back_once_and_is_never_charged_again(
    store: &Store,
) {
    seed_vehicle(store, "firm-a", "苏J00001", "dev-1").await;
    // One night: a silent terminal and speeding, one case; transport fines it.
    let (gap, case) = raise(store, ViolationCode::TrackGap, "苏J00001", "dev-1", T0).await;
    let (speeding, same) = raise(
        store,
        ViolationCode::Speeding,
        "苏J00001",
        "dev-1",
        T0 + 60_000,
    )
    .await;
    assert_eq!(case, same);
    decide(store, case, Department::Transport, &fined()).await;
    let speeding_only = vec![(speeding, ViolationCode::Speeding, case)];
    let mut both = vec![(gap, ViolationCode::TrackGap, case)];
    both.extend(speeding_only.clone());
    assert_eq!(charged(store).await, both);

    // The backfill covers the silence: the gap's points come back, once.
    assert!(withdraw(store, gap, Some(case), T0 + 3 * HOUR).await);
    assert_eq!(charged(store).await, speeding_only);
    assert!(
        !withdraw(store, gap, Some(case), T0 + 4 * HOUR).await,
        "a second withdrawal finds nothing to do"
    );
    assert_eq!(charged(store).await, speeding_only);
    let reversal = Some(format!("reversed: TRACK_GAP #{gap} (violation withdrawn)"));
    let lines = credit_lines(store, case).await;
    assert_eq!(
        lines,
        [
            (
                "officer".into(),
                Some(format!("deducted: TRACK_GAP #{gap}"))
            ),
            (
                "officer".into(),
                Some(format!("deducted: SPEEDING #{speeding}"))
            ),
            ("system".into(), reversal.clone()),
        ]
    );
    let trail = store.case_audit(case).await.unwrap();
    let withdrawn_at = trail
        .iter()
        .position(|a| {
            a.after
                .as_deref()
                .is_some_and(|t| t.starts_with("withdrawn:"))
        })
        .expect("the withdrawal's own line");
    let reversed_at = trail.iter().position(|a| a.after == reversal).unwrap();
    assert!(withdrawn_at < reversed_at, "{trail:?}");
    assert_eq!(trail[reversed_at].at_ms, T0 + 3 * HOUR);

    // Reopened and fined again: speeding is charged again, the gap never.
    let reopen = step(CheckStatus::Investigating);
    store
        .update_check(case, Department::Transport, &reopen, "chief", T0 + 5 * HOUR)
        .await
        .expect("reopened");
    assert!(charged(store).await.is_empty());
    store
        .update_check(
            case,
            Department::Transport,
            &fined(),
            "chief",
            T0 + 6 * HOUR,
        )
        .await
        .expect("decided again");
    assert_eq!(charged(store).await, speeding_only);
    let gap_lines = credit_lines(store, case)
        .await
        .into_iter()
        .filter(|(_, after)| after.as_deref().is_some_and(|t| t.contains("TRACK_GAP")))
        .count();
    assert_eq!(gap_lines, 2, "one charge, one reversal, nothing after");

    // A gap withdrawn before its case is decided costs nothing and leaves no
    // credit line.
    let night2 = T0 + 24 * HOUR;
    let (gap2, case2) = raise(store, ViolationCode::TrackGap, "苏J00001", "dev-1", night2).await;
    assert_ne!(case2, case);
    assert!(withdraw(store, gap2, Some(case2), night2 + HOUR).await);
    decide(store, case2, Department::Transport, &fined()).await;
    let firm = FirmId::parse("firm-a").unwrap();
    let night2_charged = store
        .credit_deductions(Some(&firm), night2 - HOUR, night2 + WINDOW)
        .await
        .unwrap();
    assert!(night2_charged.is_empty(), "{night2_charged:?}");
    assert!(credit_lines(store, case2).await.is_empty());

    // Withdrawn before it was even filed, then filed into that fined case:
    // still never charged.
    let late = store
        .insert_violation(
            &violation(
                ViolationCode::TrackGap,
                "苏J00001",
                "dev-1",
                night2 + 2 * HOUR,
            ),
            night2 + 2 * HOUR,
        )
        .await
        .unwrap();
    assert!(withdraw(store, late, None, night2 + 2 * HOUR).await);
    let filing = NewViolationCase {
        violation_id: late,
        code: ViolationCode::TrackGap,
        plate: plate("苏J00001"),
        device_id: DeviceId::parse("dev-1").unwrap(),
        firm_id: firm.clone(),
        started_ms: night2 + 2 * HOUR,
        merge_window_ms: WINDOW,
        deadlines: muckwatch::cases::Deadlines::default(),
        departments: Routing::default()
            .departments(ViolationCode::TrackGap)
            .to_vec(),
        parties: vec![],
    };
    let joined = store
        .file_violation(&filing, night2 + 3 * HOUR)
        .await
        .unwrap();
    assert_eq!(joined, case2, "it joins the fined case of its night");
    let night2_charged = store
        .credit_deductions(Some(&firm), night2 - HOUR, night2 + WINDOW)
        .await
        .unwrap();
    assert!(night2_charged.is_empty(), "{night2_charged:?}");
}

/// Runs `sql` on the database at `url` as its own client would.
async fn raw(url: &str, sql: &str) {
    use sqlx::{Connection, Executor, PgConnection, SqliteConnection};
    if url.starts_with("sqlite:") {
        let mut c = SqliteConnection::connect(url).await.unwrap();
        c.execute(sql).await.unwrap();
    } else {
        let mut c = PgConnection::connect(url).await.unwrap();
        c.execute(sql).await.unwrap();
    }
}

/// A database an earlier muckwatch left with a withdrawn TRACK_GAP still
/// charged: migration 0016 reverses it, with the audit line, once.
async fn an_earlier_withdrawal_left_charged_is_reversed_by_the_migration(
    db: crate::common::db::TestDb,
) {
    let store = &db.store;
    seed_vehicle(store, "firm-a", "苏J00001", "dev-1").await;
    let (gap, case) = raise(store, ViolationCode::TrackGap, "苏J00001", "dev-1", T0).await;
    let (speeding, _) = raise(
        store,
        ViolationCode::Speeding,
        "苏J00001",
        "dev-1",
        T0 + 60_000,
    )
    .await;
    decide(store, case, Department::Transport, &fined()).await;
    assert_eq!(charged(store).await.len(), 2);
    // What a withdrawal did before: the status only; and 0016 not yet run.
    raw(
        &db.url,
        &format!("UPDATE violations SET status = 'withdrawn' WHERE id = {gap}"),
    )
    .await;
    raw(&db.url, "DELETE FROM _sqlx_migrations WHERE version = 16").await;
    for _ in 0..2 {
        let opened = Store::connect(&db.url).await.expect("opens, migrating");
        assert_eq!(
            charged(&opened).await,
            [(speeding, ViolationCode::Speeding, case)]
        );
        let lines = credit_lines(&opened, case).await;
        let reversed = Some(format!("reversed: TRACK_GAP #{gap} (violation withdrawn)"));
        assert_eq!(
            lines.iter().filter(|(_, after)| *after == reversed).count(),
            1,
            "{lines:?}"
        );
        assert_eq!(lines.last(), Some(&("system".to_string(), reversed)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migration_reverses_an_earlier_withdrawn_charge() {
    an_earlier_withdrawal_left_charged_is_reversed_by_the_migration(
        crate::common::db::sqlite_db().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL; run by .ci/run"]
async fn postgres_migration_reverses_an_earlier_withdrawn_charge() {
    an_earlier_withdrawal_left_charged_is_reversed_by_the_migration(
        crate::common::db::postgres_db().await,
    )
    .await;
}

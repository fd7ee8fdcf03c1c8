//! Cases: filing within the merge window, the 一超四罚 parties, the check
//! workflow and its audit, statistics.

use muckwatch::auth::Department;
use muckwatch::cases::{CaseStatus, CheckStatus, CheckUpdate, Penalty};
use muckwatch::store::{CaseFilter, CheckError, Store};
use muckwatch::violation::ViolationCode;

use crate::support::*;

on_both_backends!(
    cases_merge_within_the_window_and_unite_departments,
    overload_parties_are_listed_once_in_order,
    checks_move_one_step_and_close_the_case,
    stats_count_the_period,
);

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
    let (violation, case) = raise(store, ViolationCode::CoverOpen, "苏J00001", "dev-1", T0).await;
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
    let charged = format!("deducted: COVER_OPEN #{violation}");
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
            // The firm's credit is charged with the first penalty (信用评价).
            ("credit", None, Some(charged.as_str())),
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

    let s = store.stats(T0 - HOUR, T0 + 24 * HOUR, T0).await.unwrap();
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
    let empty = store.stats(T0 - 2 * HOUR, T0 - HOUR, T0).await.unwrap();
    assert_eq!(empty, muckwatch::store::Stats::default());
}

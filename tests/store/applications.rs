//! Permit applications: submitted with their checks, listed by firm and
//! status, re-checked while waiting, rejected with a reason or approved in
//! two steps around the permit's creation, every step in the audit trail.

use muckwatch::applications::{ApplicationStatus, CheckName, CheckResult, PermitRequest};
use muckwatch::identity::FirmId;
use muckwatch::store::{ApplicationFilter, DecisionError, Store};
use serde_json::json;

use crate::support::*;

on_both_backends!(
    applications_are_submitted_listed_and_decided,
    an_approval_cut_short_is_finished_or_undone,
);

fn firm(f: &str) -> FirmId {
    FirmId::parse(f).expect("firm")
}

fn request(f: &str, plate: &str) -> PermitRequest {
    PermitRequest::from_json(
        &json!({"plates": [plate], "source_site": "s01", "disposal_site": "d01",
                "routes": ["route-s01-d01"], "windows": [{"start": "21:00", "end": "06:00"}],
                "valid_from": "2021-06-01", "valid_until": "2021-12-31"}),
        &firm(f),
    )
    .expect("request")
}

/// Every check passed, or all but `dates`.
fn checks(all_pass: bool) -> Vec<CheckResult> {
    CheckName::ALL
        .into_iter()
        .map(|name| {
            let passed = all_pass || name != CheckName::Dates;
            CheckResult {
                name,
                passed,
                reason: if passed {
                    "fine".into()
                } else {
                    "valid_from is in the past".into()
                },
                reason_zh: if passed {
                    "通过"
                } else {
                    "有效期起早于申请日期"
                }
                .into(),
            }
        })
        .collect()
}

async fn ids(store: &Store, f: ApplicationFilter) -> (Vec<i64>, i64) {
    let (items, total) = store.applications(&f, 100, 0).await.expect("list");
    (items.into_iter().map(|a| a.id).collect(), total)
}

async fn trail(store: &Store, id: i64) -> Vec<(String, String, Option<String>, Option<String>)> {
    store
        .application_audit(id)
        .await
        .expect("audit")
        .into_iter()
        .map(|a| (a.actor, a.field, a.before, a.after))
        .collect()
}

fn line(
    actor: &str,
    field: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> (String, String, Option<String>, Option<String>) {
    (
        actor.into(),
        field.into(),
        before.map(Into::into),
        after.map(Into::into),
    )
}

async fn applications_are_submitted_listed_and_decided(store: &Store) {
    seed_vehicle(store, "firm-a", "苏J00001", "dev-1").await;
    seed_vehicle(store, "firm-b", "苏J00002", "dev-2").await;
    let (a, b) = (firm("firm-a"), firm("firm-b"));
    let good = store
        .submit_application(
            &a,
            &request("firm-a", "苏J00001"),
            &checks(true),
            "firm:firm-a",
            T0,
        )
        .await
        .expect("submitted");
    let other = store
        .submit_application(
            &b,
            &request("firm-b", "苏J00002"),
            &checks(true),
            "firm:firm-b",
            T0,
        )
        .await
        .expect("submitted");
    let late = store
        .submit_application(
            &a,
            &request("firm-a", "苏J00001"),
            &checks(false),
            "firm:firm-a",
            T0 + 1,
        )
        .await
        .expect("submitted");

    let app = store.application(good).await.unwrap().expect("stored");
    assert_eq!(app.status, ApplicationStatus::Submitted);
    assert_eq!(app.request, request("firm-a", "苏J00001"));
    assert_eq!((app.checks, app.firm_id.clone()), (checks(true), a.clone()));
    assert_eq!(
        (app.submitted_ms, app.submitted_by.as_str()),
        (T0, "firm:firm-a")
    );
    assert!(store
        .application(late)
        .await
        .unwrap()
        .is_some_and(|l| !l.passed()));
    assert_eq!(store.application(9999).await.unwrap(), None);

    let mine = ApplicationFilter {
        firm: Some(a.clone()),
        ..Default::default()
    };
    assert_eq!(
        ids(store, mine.clone()).await,
        (vec![late, good], 2),
        "newest first"
    );
    assert_eq!(ids(store, Default::default()).await.1, 3);
    let (page, total) = store.applications(&Default::default(), 1, 1).await.unwrap();
    assert_eq!((page[0].id, total), (other, 3));

    // Re-checked while waiting: the new results replace the old, audited.
    assert!(store
        .recheck_application(late, &checks(true), T0 + 2)
        .await
        .unwrap());
    assert!(store.application(late).await.unwrap().unwrap().passed());
    assert!(store
        .recheck_application(late, &checks(false), T0 + 3)
        .await
        .unwrap());
    assert!(!store
        .recheck_application(9999, &checks(true), T0)
        .await
        .unwrap());

    // Rejected with its reason, once.
    let rejected = store
        .reject_application(late, "dept:urban", "dates in the past", T0 + HOUR)
        .await
        .expect("rejected");
    assert_eq!(rejected.status, ApplicationStatus::Rejected);
    assert_eq!(
        store.application(late).await.unwrap(),
        Some(rejected.clone())
    );
    assert_eq!(rejected.reason.as_deref(), Some("dates in the past"));
    assert!(matches!(
        store
            .reject_application(late, "admin", "again", T0 + HOUR)
            .await,
        Err(DecisionError::NotSubmitted(ApplicationStatus::Rejected))
    ));
    assert!(matches!(
        store
            .claim_approval(late, "PA-x", "admin", None, T0 + HOUR)
            .await,
        Err(DecisionError::NotSubmitted(ApplicationStatus::Rejected))
    ));
    assert!(
        !store
            .recheck_application(late, &checks(true), T0)
            .await
            .unwrap(),
        "decided: kept as decided"
    );
    assert!(matches!(
        store.reject_application(9999, "admin", "no", T0).await,
        Err(DecisionError::NoSuchApplication)
    ));

    // Approved: claimed (no rejection can slip in), permit created, finished.
    let claimed = store
        .claim_approval(
            good,
            "PA-1",
            "dept:urban",
            Some("all in order"),
            T0 + 2 * HOUR,
        )
        .await
        .expect("claimed");
    assert_eq!(claimed.status, ApplicationStatus::Approving);
    assert_eq!(
        store.application(good).await.unwrap(),
        Some(claimed.clone())
    );
    assert!(matches!(
        store
            .reject_application(good, "admin", "too late", T0)
            .await,
        Err(DecisionError::NotSubmitted(ApplicationStatus::Approving))
    ));
    let permit = claimed.request.to_permit("PA-1", &a);
    store
        .create_permit(&permit, T0 + 2 * HOUR)
        .await
        .expect("permit");
    let approved = store
        .finish_approval(good, T0 + 2 * HOUR)
        .await
        .expect("finished");
    assert_eq!(approved.status, ApplicationStatus::Approved);
    assert_eq!(approved.permit_id.as_deref(), Some("PA-1"));
    assert_eq!(store.application(good).await.unwrap(), Some(approved));
    assert_eq!(store.permit("PA-1").await.unwrap(), Some(permit));
    let waiting = ApplicationFilter {
        status: Some(ApplicationStatus::Submitted),
        ..Default::default()
    };
    assert_eq!(
        ids(store, waiting).await,
        (vec![other], 1),
        "the review queue"
    );

    assert_eq!(
        trail(store, good).await,
        [
            line("firm:firm-a", "status", None, Some("submitted")),
            line("system", "checks", None, Some("6/6 passed")),
            line("dept:urban", "status", Some("submitted"), Some("approving")),
            line("dept:urban", "reason", None, Some("all in order")),
            line("system", "permit", None, Some("PA-1")),
            line("system", "status", Some("approving"), Some("approved")),
        ]
    );
    assert_eq!(
        trail(store, late).await,
        [
            line("firm:firm-a", "status", None, Some("submitted")),
            line("system", "checks", None, Some("5/6 passed; failed: dates")),
            line(
                "system",
                "checks",
                Some("5/6 passed; failed: dates"),
                Some("6/6 passed")
            ),
            line(
                "system",
                "checks",
                Some("6/6 passed"),
                Some("5/6 passed; failed: dates")
            ),
            line("dept:urban", "status", Some("submitted"), Some("rejected")),
            line("dept:urban", "reason", None, Some("dates in the past")),
        ]
    );
}

async fn an_approval_cut_short_is_finished_or_undone(store: &Store) {
    seed_vehicle(store, "firm-a", "苏J00001", "dev-1").await;
    let a = firm("firm-a");
    let id = store
        .submit_application(
            &a,
            &request("firm-a", "苏J00001"),
            &checks(true),
            "firm:firm-a",
            T0,
        )
        .await
        .expect("submitted");
    let first = store
        .claim_approval(id, "PA-7", "admin", None, T0)
        .await
        .expect("claimed");
    // Approving again (muckwatch stopped before the permit was made) resumes
    // the same decision rather than refusing it.
    let again = store
        .claim_approval(id, "PA-other", "dept:urban", Some("x"), T0 + 1)
        .await
        .expect("resumed");
    assert_eq!(again, first);
    assert_eq!(again.permit_id.as_deref(), Some("PA-7"));

    // The permit could not be made: the application waits again.
    store
        .abort_approval(id, "permit `PA-7` exists already", T0 + 2)
        .await
        .expect("undone");
    let app = store.application(id).await.unwrap().expect("stored");
    assert_eq!(app.status, ApplicationStatus::Submitted);
    assert_eq!(
        (app.decided_ms, app.decided_by, app.permit_id),
        (None, None, None)
    );
    assert!(matches!(
        store.finish_approval(id, T0 + 3).await,
        Err(DecisionError::NotSubmitted(ApplicationStatus::Submitted))
    ));
    let t = trail(store, id).await;
    assert_eq!(
        t[t.len() - 2..],
        [
            line(
                "system",
                "approval_failed",
                None,
                Some("permit `PA-7` exists already")
            ),
            line("system", "status", Some("approving"), Some("submitted")),
        ]
    );
    let rejected = store
        .reject_application(id, "admin", "duplicate", T0 + 4)
        .await
        .expect("rejected");
    assert_eq!(rejected.status, ApplicationStatus::Rejected);
}

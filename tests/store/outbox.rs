//! The outbox: events written with their change, fanned out per webhook,
//! due one at a time per case, retried later after a failure, claimed once.

use muckwatch::auth::Department;
use muckwatch::cases::{plan_withdrawal, CheckStatus, NewViolationCase, Routing};
use muckwatch::fix::DeviceId;
use muckwatch::identity::FirmId;
use muckwatch::outbox::{EventSet, EventType, Routes};
use muckwatch::store::{Raised, Store};
use muckwatch::violation::ViolationCode;
use serde_json::Value;

use super::support::*;

const A: &str = "http://a.example/hook";
const B: &str = "http://b.example/hook";

/// Webhook A wants everything, B only case.opened and case.closed.
fn with_hooks(store: &Store) -> Store {
    let mut b = EventSet::default();
    b.insert(EventType::CaseOpened);
    b.insert(EventType::CaseClosed);
    store.clone().with_outbox(Routes {
        tz: chrono_tz::Asia::Shanghai,
        webhooks: vec![(A.into(), EventSet::all()), (B.into(), b)],
    })
}

async fn raise_new(store: &Store, code: ViolationCode, p: &str, device: &str, at: i64) -> Raised {
    let v = violation(code, p, device, at);
    let case = NewViolationCase {
        violation_id: 0,
        code,
        plate: plate(p),
        device_id: DeviceId::parse(device).unwrap(),
        firm_id: FirmId::parse("firm-a").unwrap(),
        started_ms: at,
        merge_window_ms: WINDOW,
        deadlines: Default::default(),
        departments: Routing::default().departments(code).to_vec(),
        parties: vec![],
    };
    store.raise_violation(&v, &case, at + 1).await.unwrap()
}

/// (type, data.case_id) of what is due for `hook` now.
async fn due(store: &Store, hook: &str) -> Vec<(String, i64, i64)> {
    store
        .outbox_due(hook, T0 + 100 * HOUR, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let v: Value = serde_json::from_str(&e.body).unwrap();
            assert_eq!(v["id"], e.id.as_str());
            (
                v["type"].as_str().unwrap().to_string(),
                v["data"]["case_id"].as_i64().unwrap(),
                e.seq,
            )
        })
        .collect()
}

pub async fn events_are_due_one_at_a_time_per_case_and_per_webhook(store: &Store) {
    seed_vehicle(store, "firm-a", "苏J00001", "dev-1").await;
    seed_vehicle(store, "firm-a", "苏J00002", "dev-2").await;
    let s = with_hooks(store);
    let Raised::New {
        id: v1,
        case_id: c1,
    } = raise_new(&s, ViolationCode::Speeding, "苏J00001", "dev-1", T0).await
    else {
        panic!("new")
    };
    let Raised::New { case_id: same, .. } =
        raise_new(&s, ViolationCode::CoverOpen, "苏J00001", "dev-1", T0 + HOUR).await
    else {
        panic!("new")
    };
    assert_eq!(same, c1, "joins the open case");
    let Raised::New { case_id: c2, .. } =
        raise_new(&s, ViolationCode::Speeding, "苏J00002", "dev-2", T0).await
    else {
        panic!("new")
    };
    // Raised again (a replay): nothing new, nothing written.
    assert_eq!(
        raise_new(&s, ViolationCode::Speeding, "苏J00001", "dev-1", T0).await,
        Raised::Again {
            id: v1,
            case_id: c1
        }
    );
    // A: 2 case.opened + 3 violation.raised; B: 2 case.opened.
    assert_eq!(s.outbox_pending().await.unwrap(), 7);
    let first = due(&s, A).await;
    let kinds: Vec<(&str, i64)> = first.iter().map(|(t, c, _)| (t.as_str(), *c)).collect();
    assert_eq!(kinds, [("case.opened", c1), ("case.opened", c2)]);
    assert_eq!(due(&s, B).await.len(), 2);

    // A refuses case 1's first event: case 1 waits, case 2 goes on.
    let (seq1, seq2) = (first[0].2, first[1].2);
    let next = T0 + 200 * HOUR;
    s.outbox_failed(A, seq1, next, "answered 503")
        .await
        .unwrap();
    s.outbox_delivered(A, seq2, T0).await.unwrap();
    let kinds: Vec<(String, i64)> = due(&s, A)
        .await
        .into_iter()
        .map(|(t, c, _)| (t, c))
        .collect();
    assert_eq!(kinds, [("violation.raised".to_string(), c2)]);
    let (listed, total) = s.outbox_undelivered(Some(A), 100, 0).await.unwrap();
    assert_eq!(total, 4);
    assert_eq!(listed[0].attempts, 1);
    assert_eq!(listed[0].last_error.as_deref(), Some("answered 503"));
    assert_eq!(listed[0].event_type, "case.opened");

    // Due again later; claimed once only.
    let later = s.outbox_due(A, next, 100).await.unwrap();
    assert_eq!(later[0].seq, seq1);
    assert!(s
        .outbox_claim(A, seq1, later[0].next_ms, next + 1)
        .await
        .unwrap());
    assert!(!s
        .outbox_claim(A, seq1, later[0].next_ms, next + 1)
        .await
        .unwrap());
    s.outbox_delivered(A, seq1, next).await.unwrap();
    let kinds: Vec<String> = due(&s, A).await.into_iter().map(|(t, _, _)| t).collect();
    assert_eq!(kinds, ["violation.raised", "violation.raised"]);
    assert_eq!(s.outbox_pending().await.unwrap(), 5);
}

pub async fn check_changes_and_closing_are_events_of_their_case(store: &Store) {
    seed_vehicle(store, "firm-a", "苏J00003", "dev-3").await;
    let s = with_hooks(store);
    // TRACK_GAP goes to transport only: one check closes the case.
    let Raised::New { case_id, .. } =
        raise_new(&s, ViolationCode::TrackGap, "苏J00003", "dev-3", T0).await
    else {
        panic!("new")
    };
    for status in [
        CheckStatus::Investigating,
        CheckStatus::Decided,
        CheckStatus::Closed,
    ] {
        s.update_check(
            case_id,
            Department::Transport,
            &step(status),
            "officer-7",
            T0 + HOUR,
        )
        .await
        .unwrap();
    }
    let (all, _) = s.outbox_undelivered(Some(A), 100, 0).await.unwrap();
    let kinds: Vec<&str> = all.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "case.opened",
            "violation.raised",
            "check.changed",
            "check.changed",
            "check.changed",
            "case.closed"
        ]
    );
    assert!(all.iter().all(|d| d.order_key == format!("case:{case_id}")));
    let last_check: Value = serde_json::from_str(&all[4].body).unwrap();
    assert_eq!(last_check["data"]["status"], "closed");
    assert_eq!(last_check["data"]["previous_status"], "decided");
    assert_eq!(last_check["data"]["by"], "officer-7");
    let (b, _) = s.outbox_undelivered(Some(B), 100, 0).await.unwrap();
    let kinds: Vec<&str> = b.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(kinds, ["case.opened", "case.closed"]);
}

pub async fn a_withdrawal_is_an_event_of_its_case_with_its_reason(store: &Store) {
    seed_vehicle(store, "firm-a", "苏J00005", "dev-5").await;
    let s = with_hooks(store);
    let Raised::New { id, case_id } =
        raise_new(&s, ViolationCode::TrackGap, "苏J00005", "dev-5", T0).await
    else {
        panic!("new")
    };
    let audit = plan_withdrawal(id, ViolationCode::TrackGap, "补报 covers it", T0 + HOUR);
    assert!(s
        .withdraw_violation(id, Some(case_id), &audit, T0 + HOUR)
        .await
        .unwrap());
    assert!(!s
        .withdraw_violation(id, Some(case_id), &audit, T0 + HOUR)
        .await
        .unwrap());
    let (all, _) = s.outbox_undelivered(Some(A), 100, 0).await.unwrap();
    let kinds: Vec<&str> = all.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        ["case.opened", "violation.raised", "violation.withdrawn"]
    );
    let w: Value = serde_json::from_str(&all[2].body).unwrap();
    assert_eq!(w["data"]["id"], id);
    assert_eq!(w["data"]["status"], "withdrawn");
    assert_eq!(w["data"]["reason"], "补报 covers it");
    assert_eq!(all[2].order_key, format!("case:{case_id}"));
}

pub async fn pruning_forgets_only_what_every_webhook_took(store: &Store) {
    seed_vehicle(store, "firm-a", "苏J00006", "dev-6").await;
    let s = with_hooks(store);
    raise_new(&s, ViolationCode::Speeding, "苏J00006", "dev-6", T0).await;
    let (all, _) = s.outbox_undelivered(None, 100, 0).await.unwrap();
    assert_eq!(
        all.len(),
        3,
        "case.opened to A and B, violation.raised to A"
    );
    let opened = all
        .iter()
        .find(|d| d.event_type == "case.opened")
        .unwrap()
        .seq;
    s.outbox_delivered(A, opened, T0 + 1).await.unwrap();
    assert_eq!(
        s.outbox_prune(T0 + HOUR).await.unwrap(),
        (1, 0),
        "B has not taken it"
    );
    s.outbox_delivered(B, opened, T0 + 2).await.unwrap();
    assert_eq!(s.outbox_prune(T0 + HOUR).await.unwrap(), (1, 1));
    let (left, _) = s.outbox_undelivered(None, 100, 0).await.unwrap();
    let kinds: Vec<&str> = left.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(kinds, ["violation.raised"], "undelivered, never pruned");
    assert_eq!(s.outbox_pending().await.unwrap(), 1);
}

pub async fn without_webhooks_nothing_is_written(store: &Store) {
    seed_vehicle(store, "firm-a", "苏J00004", "dev-4").await;
    raise_new(store, ViolationCode::Speeding, "苏J00004", "dev-4", T0).await;
    raise(
        store,
        ViolationCode::CoverOpen,
        "苏J00004",
        "dev-4",
        T0 + HOUR,
    )
    .await;
    assert_eq!(store.outbox_pending().await.unwrap(), 0);
}

on_both_backends!(
    events_are_due_one_at_a_time_per_case_and_per_webhook,
    check_changes_and_closing_are_events_of_their_case,
    a_withdrawal_is_an_event_of_its_case_with_its_reason,
    pruning_forgets_only_what_every_webhook_took,
    without_webhooks_nothing_is_written,
);

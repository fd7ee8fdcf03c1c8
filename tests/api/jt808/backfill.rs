//! 补报: a terminal out of coverage records its track and sends it later as a
//! 0x0704 type 1 batch. A TRACK_GAP raised over that silence is withdrawn
//! once the stored backfill covers it: kept with status `withdrawn`, an audit
//! line on its case, an alert saying so.

use super::*;
use crate::common::SseClient;
use serde_json::json;

/// A moving fix `s` seconds after 22:00:00 local (UTC+8), east at 70 km/h.
fn fix_at(s: u32) -> Location {
    Location {
        alarm: 0,
        status: STATUS_ACC | STATUS_POSITIONED,
        lat_e6: 33_335_000,
        lon_e6: 120_020_000 + 209 * s,
        altitude_m: 10,
        speed_dkmh: 700,
        direction: 90,
        time: BcdTime::from_parts(2021, 6, 1, 22 + s / 3600, s / 60 % 60, s % 60),
        extras: Vec::new(),
    }
}

fn backfill(seconds: impl Iterator<Item = u32>) -> Message {
    Message::Batch(muckwatch::jt808::Batch {
        kind: BatchKind::Backfill,
        locations: seconds.map(fix_at).collect(),
    })
}

async fn track_gaps(app: &TestApp) -> Value {
    app.get("/api/v1/violations?code=TRACK_GAP", Some(&app.admin))
        .await
        .json()
}

#[tokio::test]
async fn a_track_gap_covered_by_backfill_is_withdrawn_with_an_audit_line_and_an_alert() {
    let app = spawn_gateway().await;
    let addr = app.jt808.expect("gateway on");
    app.register("firm-j", "苏J80802", "013900000002").await;
    let mut sse = SseClient::connect(app.http, "/api/v1/alerts/stream", &app.admin).await;

    let mut t = Terminal::connect(addr, "013900000002", Edition::V2013).await;
    t.login("苏J80802").await;
    // Moving for 50 s, then out of coverage until 22:20:00: 1150 s silent.
    for s in (0..=50).step_by(10).chain([1200, 1210]) {
        assert_eq!(t.call(Message::Location(fix_at(s))).await, result::OK);
    }
    wait_ingested(&app, 8.0).await;
    let gap = eventually(LIMIT, || async {
        // raised on the fleet clock, then ended by the fix at 22:20:00: both stored
        let r = track_gaps(&app).await;
        (r["total"] == 1 && !r["items"][0]["ended_at"].is_null()).then(|| r["items"][0].clone())
    })
    .await
    .expect("TRACK_GAP raised over the silence and ended");
    assert_eq!(gap["started_at"], "2021-06-01T22:00:50+08:00");
    assert_eq!(gap["ended_at"], "2021-06-01T22:20:00+08:00");
    assert_eq!(gap["status"], "raised");
    let (id, case_id) = (gap["id"].clone(), gap["case_id"].clone());
    assert!(case_id.is_i64(), "filed into a case: {gap}");

    // Transport fines the case before the backfill arrives: the gap costs
    // the firm its points.
    let transport = app.token("dept:transport").await;
    for body in [
        json!({"status": "investigating"}),
        json!({"status": "decided", "finding": "terminal silent", "penalty": {"party": "firm-j", "amount_cny": 500}}),
    ] {
        let r = app
            .post(
                &format!("/api/v1/cases/{case_id}/checks/transport"),
                Some(&transport),
                &body,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let credit = || async {
        app.get("/api/v1/firms/firm-j/credit?cycle=2021", Some(&app.admin))
            .await
            .json()
    };
    let fined = credit().await;
    let charged = |c: &Value| {
        c["deductions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["violation_id"] == id)
    };
    assert!(charged(&fined), "{fined}");

    // Half the silence backfilled: 22:01 .. 22:10, a 600 s hole is left.
    assert_eq!(t.call(backfill((60..=600).step_by(60))).await, result::OK);
    wait_ingested(&app, 18.0).await;
    assert_eq!(track_gaps(&app).await["items"][0]["status"], "raised");

    // The rest: no interval over gap_silence_s (300 s) is left.
    assert_eq!(t.call(backfill((660..=1140).step_by(60))).await, result::OK);
    wait_ingested(&app, 27.0).await;
    let withdrawn = eventually(LIMIT, || async {
        let r = track_gaps(&app).await;
        (r["items"][0]["status"] == "withdrawn").then_some(r)
    })
    .await
    .expect("TRACK_GAP withdrawn once the backfill covers its silence");
    assert_eq!(withdrawn["total"], 1, "withdrawn, not deleted");
    assert_eq!(withdrawn["items"][0]["id"], id);

    let case = app
        .get(&format!("/api/v1/cases/{case_id}"), Some(&app.admin))
        .await
        .json();
    let audit = case["audit"].as_array().expect("audit trail");
    let line = audit
        .iter()
        .find(|a| a["field"] == format!("violation TRACK_GAP #{id}"))
        .unwrap_or_else(|| panic!("an audit line for the withdrawal: {case}"));
    assert_eq!(line["before"], "raised");
    let after = line["after"].as_str().unwrap_or_default();
    assert!(
        after.starts_with("withdrawn: ") && after.contains("补报"),
        "{line}"
    );
    assert_eq!(line["actor"], "system");
    // Its points come back, once, with a line saying why.
    let after_withdrawal = credit().await;
    assert!(!charged(&after_withdrawal), "{after_withdrawal}");
    assert_eq!(
        after_withdrawal["score"].as_i64().unwrap(),
        fined["score"].as_i64().unwrap() + 3,
        "TRACK_GAP's 3 points given back"
    );
    let reversals: Vec<&Value> = audit
        .iter()
        .filter(|a| {
            a["field"] == "credit"
                && a["after"] == format!("reversed: TRACK_GAP #{id} (violation withdrawn)")
        })
        .collect();
    assert_eq!(reversals.len(), 1, "{case}");
    assert_eq!(reversals[0]["actor"], "system");
    let listed = case["violations"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["id"] == id).cloned())
        .expect("the case still lists the violation");
    assert_eq!(listed["status"], "withdrawn");

    // The alert: first the raise, then the withdrawal, on the same stream.
    let mut statuses = Vec::new();
    while let Some((event, data)) = sse.next_event(LIMIT).await {
        let alert: Value = serde_json::from_str(&data).expect("alert JSON");
        if event == "alert" && alert["code"] == "TRACK_GAP" {
            statuses.push(alert["status"].as_str().unwrap_or_default().to_string());
            if alert["status"] == "withdrawn" {
                assert_eq!(alert["violation_id"], id);
                assert_eq!(alert["case_id"], case_id);
                let en = alert["message_en"].as_str().unwrap_or_default();
                assert!(en.contains("withdrawn"), "{alert}");
                break;
            }
        }
    }
    assert_eq!(statuses, ["raised", "withdrawn"]);
    assert_eq!(
        app.metric("muckwatch_violations_withdrawn_total{code=\"TRACK_GAP\"}")
            .await,
        1.0
    );
    app.stop().await;
}

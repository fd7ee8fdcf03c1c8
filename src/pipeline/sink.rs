//! What happens to a raised violation: stored, filed into its case with a
//! check per routed department, and announced as an alert.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Outputs;
use crate::alerts::{messages, withdrawal_messages, Alert};
use crate::cases::{overload_parties, plan_withdrawal, NewViolationCase, Party};
use crate::identity::DeviceId;
use crate::rules::{span_covered, RuleEvent};
use crate::store::{GapSpan, Raised, StoreResult, ViolationFilter};
use crate::time::format_ms;
use crate::violation::{Violation, ViolationCode};

pub async fn run(mut rx: mpsc::Receiver<RuleEvent>, out: Outputs) -> Vec<i64> {
    let mut raised = Vec::new();
    let mut late = LateFixes::default();
    while let Some(ev) = rx.recv().await {
        match ev {
            RuleEvent::Late { device_id, ts_ms } => {
                backfilled(device_id, ts_ms, &mut late, &out).await;
            }
            RuleEvent::Raised(v) => {
                if let Some(id) = raise(&v, &out).await {
                    raised.push(id);
                }
            }
            RuleEvent::Ended {
                code,
                device_id,
                started_ms,
                ended_ms,
            } => {
                let ended = retry(&out, || {
                    out.store
                        .end_violation(device_id.as_str(), code.as_str(), started_ms, ended_ms)
                })
                .await;
                if ended.is_none() {
                    tracing::error!(%device_id, %code, started_ms, ended_ms, "shutting down with the database unavailable: the end of this violation is not stored");
                } else if code == ViolationCode::TrackGap && ended_ms == started_ms {
                    delayed_not_silent(device_id, started_ms, &out).await;
                }
            }
        }
    }
    raised
}

/// Late fixes seen inside each raised TRACK_GAP (by violation id), not yet
/// enough to cover it. Detection sees a fix while ingest is still committing
/// it, so coverage is judged on the stored fixes and these (every one of
/// which ingest stores). Bounded: past the caps it starts again empty, and a
/// gap is then judged on what is stored by its next late fix.
#[derive(Default)]
struct LateFixes(HashMap<i64, Vec<i64>>);

const LATE_GAPS_MAX: usize = 10_000;
const LATE_FIXES_PER_GAP_MAX: usize = 100_000;

impl LateFixes {
    fn add(&mut self, gap: i64, ts_ms: i64) -> &[i64] {
        if self.0.len() >= LATE_GAPS_MAX && !self.0.contains_key(&gap) {
            self.0.clear();
        }
        let seen = self.0.entry(gap).or_default();
        if seen.len() >= LATE_FIXES_PER_GAP_MAX {
            seen.clear();
        }
        seen.push(ts_ms);
        seen
    }
}

/// A late fix of `device` at `ts_ms`: each raised TRACK_GAP whose silence it
/// falls in is withdrawn once the stored track covers that silence
/// ([`span_covered`]): the violation's status becomes `withdrawn`, its case
/// gets an audit line, and an alert says so. Nothing is deleted.
async fn backfilled(device: DeviceId, ts_ms: i64, late: &mut LateFixes, out: &Outputs) {
    let Some(gaps) = retry(out, || {
        out.store.track_gaps_spanning(device.as_str(), ts_ms)
    })
    .await
    else {
        return;
    };
    for gap in gaps {
        let seen = late.add(gap.id, ts_ms).to_vec();
        let Some(stored) = retry(out, || {
            out.store
                .fix_times(device.as_str(), gap.started_ms, gap.ended_ms)
        })
        .await
        else {
            return;
        };
        let times: Vec<i64> = stored.into_iter().chain(seen).collect();
        if !span_covered(gap.started_ms, gap.ended_ms, &times, out.gap_silence_ms) {
            continue;
        }
        late.0.remove(&gap.id);
        let why = format!(
            "the terminal's backfill (补报) covers its silence {} .. {}",
            format_ms(gap.started_ms, out.tz),
            format_ms(gap.ended_ms, out.tz)
        );
        withdraw(device, gap, why, out).await;
    }
}

/// A TRACK_GAP raised on the fleet clock (silence) that ends with no fix of its
/// own (`ended_ms == started_ms`): the vehicle's next fix came within
/// `gap_silence_s` of its last, so the terminal was never silent that long; its
/// fixes reached muckwatch later than the rest of the fleet's (a slow path, a
/// backlog). Withdrawn like a gap its backfill covers.
async fn delayed_not_silent(device: DeviceId, started_ms: i64, out: &Outputs) {
    let Some(Some(gap)) = retry(out, || {
        out.store.track_gap_started_at(device.as_str(), started_ms)
    })
    .await
    else {
        return;
    };
    let why = format!(
        "the terminal's next fix follows its fix of {} within the silence threshold: its fixes arrived late, it was not silent",
        format_ms(gap.started_ms, out.tz)
    );
    withdraw(device, gap, why, out).await;
}

/// Withdraws TRACK_GAP `gap` for the reason `why`, and announces it.
async fn withdraw(device: DeviceId, gap: GapSpan, why: String, out: &Outputs) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let audit = plan_withdrawal(gap.id, ViolationCode::TrackGap, &why, now_ms);
    let done = retry(out, || {
        out.store
            .withdraw_violation(gap.id, gap.case_id, &audit, now_ms)
    })
    .await;
    if done != Some(true) {
        return;
    }
    out.metrics.violation_withdrawn(ViolationCode::TrackGap);
    tracing::info!(id = gap.id, %device, started_ms = gap.started_ms, ended_ms = gap.ended_ms, %why, "TRACK_GAP withdrawn");
    let filter = ViolationFilter {
        ids: Some(vec![gap.id]),
        ..Default::default()
    };
    let Some((found, _)) = retry(out, || out.store.violations(&filter, 1, 0)).await else {
        return;
    };
    let (Some(v), Some(case_id)) = (found.into_iter().next(), gap.case_id) else {
        return;
    };
    // The raise's alert, saying it is withdrawn (a TRACK_GAP names no fences,
    // so its place is the position either way).
    let mut withdrawn = alert(v.id, case_id, &v.as_raised(), out);
    (withdrawn.message_zh, withdrawn.message_en) =
        withdrawal_messages(v.code, v.plate.as_str(), v.id);
    withdrawn.status = v.status();
    announce(withdrawn, out);
}

/// A raised violation: stored and filed into its case in one transaction
/// (with its outbound events), then announced. Storing retries a passing
/// database error rather than drop the violation; `None` only when
/// shutdown's grace ran out with the database away.
async fn raise(v: &Violation, out: &Outputs) -> Option<i64> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let case = new_case(v, out).await;
    let Some(raised) = retry(out, || out.store.raise_violation(v, &case, now_ms)).await else {
        tracing::error!(code = %v.code, plate = %v.plate, started_ms = v.started_ms, "shutting down with the database unavailable: this violation is not stored (its fixes are; replay them to raise it)");
        return None;
    };
    let (id, case_id) = match raised {
        Raised::New { id, case_id } => (id, case_id),
        Raised::Again { id, case_id } => {
            // The same episode again (a replay, or a restart): filed and announced already.
            tracing::debug!(id, case_id, "violation raised again; already filed");
            return Some(id);
        }
    };
    out.metrics.violation(v.code);
    tracing::info!(id, case_id, code = %v.code, plate = %v.plate, measured = v.measured, "violation raised");
    announce(alert(id, case_id, v, out), out);
    Some(id)
}

/// What filing `v` needs: a check for each routed department, and for an
/// overload the four parties. The violation's id is the store's to fill in.
async fn new_case(v: &Violation, out: &Outputs) -> NewViolationCase {
    let parties = if v.code == ViolationCode::Overload {
        parties(v, out).await
    } else {
        Vec::new()
    };
    NewViolationCase {
        violation_id: 0,
        code: v.code,
        plate: v.plate.clone(),
        device_id: v.device_id,
        firm_id: v.firm_id.clone(),
        started_ms: v.started_ms,
        merge_window_ms: out.merge_window_ms,
        deadlines: out.deadlines,
        departments: out.routing.departments(v.code).to_vec(),
        parties,
    }
}

/// The alert of violation `id`, in Chinese and English, for its departments.
fn alert(id: i64, case_id: i64, v: &Violation, out: &Outputs) -> Alert {
    let place = if v.fences.is_empty() {
        format!("{:.5},{:.5}", v.lat, v.lon)
    } else {
        fence_names(v, out)
    };
    let (message_zh, message_en) = messages(v.code, v.plate.as_str(), &place, v.measured);
    Alert {
        violation_id: id,
        case_id,
        code: v.code.as_str(),
        plate: v.plate.to_string(),
        device_id: v.device_id.to_string(),
        firm_id: v.firm_id.to_string(),
        departments: out
            .routing
            .departments(v.code)
            .iter()
            .map(|d| d.as_str())
            .collect(),
        at: format_ms(v.started_ms, out.tz),
        lat: v.lat,
        lon: v.lon,
        place,
        measured: v.measured,
        status: "raised",
        message_zh,
        message_en,
    }
}

/// To the SSE listeners, and to the broker's alert topics when there is one.
fn announce(alert: Alert, out: &Outputs) {
    let id = alert.violation_id;
    let alert = Arc::new(alert);
    out.hub.publish(alert.clone());
    if let Some(mqtt) = &out.mqtt {
        if mqtt.try_send(alert).is_err() {
            out.metrics.alerts_dropped.fetch_add(1, Relaxed);
            tracing::error!(
                id,
                "alert queue to the broker is full; this alert is only on the SSE stream"
            );
        }
    }
}

fn fence_names(v: &Violation, out: &Outputs) -> String {
    let fences = out.fences.load();
    v.fences
        .iter()
        .map(|id| match fences.get(id) {
            Some(idx) => format!("{} ({id})", fences.fence(idx).name),
            None => id.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// 一超四罚: vehicle, driver, transport firm and the loading site.
async fn parties(v: &Violation, out: &Outputs) -> Vec<Party> {
    let firm = match out.store.firm(&v.firm_id).await {
        Ok(Some(f)) => format!("{} ({})", f.name, f.id),
        _ => v.firm_id.to_string(),
    };
    let source = match &v.permit_id {
        Some(pid) => match out.store.permit(pid).await {
            Ok(Some(p)) => {
                let fences = out.fences.load();
                match fences.get(&p.source_site) {
                    Some(idx) => format!("{} ({})", fences.fence(idx).name, p.source_site),
                    None => p.source_site,
                }
            }
            _ => "unknown source site".to_string(),
        },
        None => "unknown source site (no permit)".to_string(),
    };
    overload_parties(v.plate.as_str(), &firm, &source)
}

/// How long storing a violation goes on being retried once shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A violation is never dropped for a passing database error while
/// running; once shutdown has begun, retries stop [`SHUTDOWN_GRACE`] after
/// the first failure (`None`, for every violation still waiting), so that a
/// database that stays away cannot hold the process.
async fn retry<T, F, Fut>(out: &Outputs, mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(v) => return Some(v),
            Err(e) => {
                let mut wait = backoff;
                if *out.shutdown.borrow() {
                    let d = *out
                        .grace_ends
                        .get_or_init(|| Instant::now() + SHUTDOWN_GRACE);
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    wait = wait.min(left);
                }
                tracing::error!(error = %e, retry_in = ?wait, "cannot store a violation");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

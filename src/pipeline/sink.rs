//! What happens to a raised violation: stored, filed into its case with a
//! check per routed department, and announced as an alert.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::Outputs;
use crate::alerts::{messages, Alert};
use crate::cases::{overload_parties, NewViolationCase, Party};
use crate::rules::RuleEvent;
use crate::store::StoreResult;
use crate::time::format_ms;
use crate::violation::{Violation, ViolationCode};

pub async fn run(mut rx: mpsc::Receiver<RuleEvent>, out: Outputs) -> Vec<i64> {
    let mut raised = Vec::new();
    while let Some(ev) = rx.recv().await {
        match ev {
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
                let ended = retry(&out.shutdown, || {
                    out.store
                        .end_violation(device_id.as_str(), code.as_str(), started_ms, ended_ms)
                })
                .await;
                if ended.is_none() {
                    tracing::error!(%device_id, %code, started_ms, ended_ms, "shutting down with the database unavailable: the end of this violation is not stored");
                }
            }
        }
    }
    raised
}

/// A raised violation: stored, filed into its case, announced. Each step
/// retries a passing database error rather than drop the violation; `None`
/// only when shutdown's grace ran out with the database away.
async fn raise(v: &Violation, out: &Outputs) -> Option<i64> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let lost = || {
        tracing::error!(code = %v.code, plate = %v.plate, started_ms = v.started_ms, "shutting down with the database unavailable: this violation is not stored (its fixes are; replay them to raise it)");
    };
    let Some(id) = retry(&out.shutdown, || out.store.insert_violation(v, now_ms)).await else {
        lost();
        return None;
    };
    match retry(&out.shutdown, || out.store.violation_case(id)).await {
        Some(Some(case_id)) => {
            // The same episode again (a replay, or a restart): filed and announced already.
            tracing::debug!(id, case_id, "violation raised again; already filed");
            return Some(id);
        }
        Some(None) => {}
        None => {
            lost();
            return Some(id);
        }
    }
    out.metrics.violation(v.code);
    let Some(case_id) = file(id, v, out, now_ms).await else {
        lost();
        return Some(id);
    };
    tracing::info!(id, case_id, code = %v.code, plate = %v.plate, measured = v.measured, "violation raised");
    announce(alert(id, case_id, v, out), out);
    Some(id)
}

/// Files violation `id` into its case: a check for each routed department,
/// and for an overload the four parties. Returns the case id.
async fn file(id: i64, v: &Violation, out: &Outputs, now_ms: i64) -> Option<i64> {
    let parties = if v.code == ViolationCode::Overload {
        parties(v, out).await
    } else {
        Vec::new()
    };
    let case = NewViolationCase {
        violation_id: id,
        code: v.code,
        plate: v.plate.clone(),
        device_id: v.device_id,
        firm_id: v.firm_id.clone(),
        started_ms: v.started_ms,
        merge_window_ms: out.merge_window_ms,
        deadlines: out.deadlines,
        departments: out.routing.departments(v.code).to_vec(),
        parties,
    };
    retry(&out.shutdown, || out.store.file_violation(&case, now_ms)).await
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
/// running; once shutdown has begun, retries stop after [`SHUTDOWN_GRACE`]
/// (`None`), so that a database that stays away cannot hold the process.
async fn retry<T, F, Fut>(shutdown: &watch::Receiver<bool>, mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut backoff = Duration::from_millis(100);
    let mut deadline: Option<Instant> = None;
    loop {
        match op().await {
            Ok(v) => return Some(v),
            Err(e) => {
                let mut wait = backoff;
                if *shutdown.borrow() {
                    let d = *deadline.get_or_insert_with(|| Instant::now() + SHUTDOWN_GRACE);
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

//! `GET /api/v1/alerts/stream`: live alerts as Server-Sent Events, for the
//! caller's department only (admins: all).
//!
//! An officer opening the live view first gets the backlog: the alerts of
//! the violations raised in the last 12 hours (wall clock) that are routed
//! to the department, oldest first, at most 200, each with `"backlog":
//! true`; then the live ones. The stream is subscribed to before the
//! backlog is read and an alert is never sent twice, so nothing raised
//! meanwhile is lost or doubled. Each event's id is its violation id: a
//! client reconnecting with `Last-Event-ID` gets only the backlog after it.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::auth::Bearer;
use super::time::format_ms;
use super::{ApiError, AppState, Caller};
use crate::alerts::{messages, Alert};
use crate::auth::Role;
use crate::store::ViolationFilter;

/// How far back the backlog reaches, and how many alerts it holds at most.
const BACKLOG_MS: i64 = 12 * 3_600_000;
const BACKLOG_MAX: i64 = 200;

pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    bearer: Bearer,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let department = match &caller.0 {
        Role::Admin => None,
        Role::Dept(d) => Some(d.as_str()),
        Role::Firm(_) => {
            return Err(ApiError::forbidden(
                "alerts are for enforcement departments",
            ))
        }
    };
    let rx = state.hub.subscribe();
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let backlog = backlog(&state, &caller, last_seen).await?;
    let sent: Arc<HashSet<i64>> = Arc::new(backlog.iter().map(|(id, _)| *id).collect());
    let backlog = stream::iter(backlog.into_iter().map(|(_, e)| Ok(e)));
    let shutdown = state.shutdown.clone();
    let ended = bearer.clone().ended(state.clone());
    let live = stream::unfold(
        (rx, shutdown, sent, state, bearer),
        move |(mut rx, mut shutdown, sent, state, bearer)| async move {
            loop {
                let next = tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => return None,
                    r = rx.recv() => r,
                };
                match next {
                    Ok(alert) => {
                        if department.is_some_and(|d| !alert.departments.contains(&d))
                            || sent.contains(&alert.violation_id)
                        {
                            continue;
                        }
                        if !bearer.still_active(&state).await {
                            return None;
                        }
                        let data = serde_json::to_string(&*alert).unwrap_or_default();
                        let event = Event::default()
                            .event("alert")
                            .id(alert.violation_id.to_string())
                            .data(data);
                        return Some((Ok(event), (rx, shutdown, sent, state, bearer)));
                    }
                    Err(RecvError::Lagged(n)) => {
                        let event = Event::default()
                            .event("lagged")
                            .data(format!("{n} alerts were skipped"));
                        return Some((Ok(event), (rx, shutdown, sent, state, bearer)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    Ok(Sse::new(backlog.chain(live).take_until(ended))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The backlog's events, oldest first, with their violation ids.
async fn backlog(
    state: &AppState,
    caller: &Caller,
    last_seen: Option<i64>,
) -> Result<Vec<(i64, Event)>, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    let filter = super::violations::scope(
        caller,
        ViolationFilter {
            created_since_ms: Some(now - BACKLOG_MS),
            ..Default::default()
        },
    );
    // The newest BACKLOG_MAX of them, listed oldest first.
    let (_, total) = state.store.violations(&filter, 1, 0).await?;
    let skip = (total - BACKLOG_MAX).max(0);
    let (recent, _) = state.store.violations(&filter, BACKLOG_MAX, skip).await?;
    let fences = state.fences.load();
    let mut out = Vec::with_capacity(recent.len());
    for v in recent {
        let Some(case_id) = v.case_id else { continue };
        if last_seen.is_some_and(|seen| v.id <= seen) {
            continue;
        }
        let place = if v.fences.is_empty() {
            format!("{:.5},{:.5}", v.lat, v.lon)
        } else {
            v.fences
                .iter()
                .map(|id| match fences.get(id) {
                    Some(idx) => format!("{} ({id})", fences.fence(idx).name),
                    None => id.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (message_zh, message_en) = messages(v.code, v.plate.as_str(), &place, v.measured);
        let alert = Alert {
            violation_id: v.id,
            case_id,
            code: v.code.as_str(),
            plate: v.plate.to_string(),
            device_id: v.device_id.to_string(),
            firm_id: v.firm_id.to_string(),
            departments: state
                .routing
                .departments(v.code)
                .iter()
                .map(|d| d.as_str())
                .collect(),
            at: format_ms(v.started_ms, state.tz),
            lat: v.lat,
            lon: v.lon,
            place,
            measured: v.measured,
            status: v.status(),
            message_zh,
            message_en,
        };
        let mut data = serde_json::to_value(&alert).unwrap_or_default();
        data["backlog"] = serde_json::Value::Bool(true);
        out.push((
            v.id,
            Event::default()
                .event("alert")
                .id(v.id.to_string())
                .data(data.to_string()),
        ));
    }
    Ok(out)
}

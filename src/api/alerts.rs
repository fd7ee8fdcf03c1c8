//! `GET /api/v1/alerts/stream`: live alerts as Server-Sent Events, for the
//! caller's department only (admins: all).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use super::{ApiError, AppState, Caller};
use crate::auth::Role;

pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
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
    let shutdown = state.shutdown.clone();
    let events = stream::unfold((rx, shutdown), move |(mut rx, mut shutdown)| async move {
        loop {
            let next = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return None,
                r = rx.recv() => r,
            };
            match next {
                Ok(alert) => {
                    if department.is_some_and(|d| !alert.departments.contains(&d)) {
                        continue;
                    }
                    let data = serde_json::to_string(&*alert).unwrap_or_default();
                    let event = Event::default()
                        .event("alert")
                        .id(alert.violation_id.to_string())
                        .data(data);
                    return Some((Ok(event), (rx, shutdown)));
                }
                Err(RecvError::Lagged(n)) => {
                    let event = Event::default()
                        .event("lagged")
                        .data(format!("{n} alerts were skipped"));
                    return Some((Ok(event), (rx, shutdown)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

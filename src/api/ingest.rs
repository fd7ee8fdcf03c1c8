//! `GET /api/v1/dead-letters`: refused telemetry, newest first (admin).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::time::format_ms;
use super::{ApiError, AppState, Caller, Paging};

pub async fn dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    paging: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let (limit, offset) = paging?.0.resolve()?;
    let (items, total) = state.store.dead_letters(limit, offset).await?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|d| {
            json!({"id": d.id, "received_at": format_ms(d.received_ms, state.tz), "topic": d.topic,
                   "reason": d.reason, "detail": d.detail, "payload": d.payload})
        })
        .collect();
    Ok(Json(json!({"items": items, "total": total})))
}

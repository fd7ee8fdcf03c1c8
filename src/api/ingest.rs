//! `GET /api/v1/dead-letters`: refused telemetry, newest first (admin).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde_json::{json, Value};

use super::export::{col, list_response, Column, ListFormat};
use super::time::format_ms;
use super::{ApiError, AppState, Caller, Paging};
use axum::response::Response;

/// The dead letters sheet of an export.
const SHEET: &[Column] = &[
    col!("编号", "/id"),
    col!("接收时间", "/received_at"),
    col!("主题", "/topic"),
    col!("原因", "/reason"),
    col!("详情", "/detail"),
    col!("报文", "/payload"),
];

pub async fn dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    format: ListFormat,
    paging: Result<Query<Paging>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let (limit, offset) = format.paging(paging?.0)?;
    let (items, total) = state.store.dead_letters(limit, offset).await?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|d| {
            json!({"id": d.id, "received_at": format_ms(d.received_ms, state.tz), "topic": d.topic,
                   "reason": d.reason, "detail": d.detail, "payload": d.payload})
        })
        .collect();
    list_response(
        format,
        items,
        total,
        offset,
        "dead-letters",
        "拒收报文",
        SHEET,
    )
    .await
}

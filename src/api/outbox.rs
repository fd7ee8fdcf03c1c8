//! `GET /api/v1/outbox`: outbound events not yet delivered, oldest first
//! (admin), each with its webhook, attempts, next try and last error;
//! `?webhook=URL` narrows to one webhook.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde_json::{json, Value};

use super::export::{col, list_response, Column, ListFormat};
use super::time::format_ms;
use super::{ApiError, AppState, Caller, Paging};

const SHEET: &[Column] = &[
    col!("事件编号", "/id"),
    col!("类型", "/type"),
    col!("发生时间", "/at"),
    col!("接收地址", "/webhook"),
    col!("顺序键", "/order_key"),
    col!("尝试次数", "/attempts"),
    col!("下次尝试", "/next_attempt_at"),
    col!("最近错误", "/last_error"),
];

#[derive(Debug, serde::Deserialize)]
pub struct OutboxQuery {
    webhook: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

pub async fn undelivered(
    State(state): State<AppState>,
    caller: Caller,
    format: ListFormat,
    query: Result<Query<OutboxQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let query = query?.0;
    let (limit, offset) = format.paging(Paging {
        limit: query.limit,
        offset: query.offset,
    })?;
    let (items, total) = state
        .store
        .outbox_undelivered(query.webhook.as_deref(), limit, offset)
        .await?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|d| {
            let event: Value = serde_json::from_str(&d.body).unwrap_or(Value::Null);
            json!({
                "id": d.id, "type": d.event_type, "at": format_ms(d.at_ms, state.tz),
                "webhook": d.webhook, "order_key": d.order_key, "attempts": d.attempts,
                "next_attempt_at": format_ms(d.next_ms, state.tz), "last_error": d.last_error,
                "event": event,
            })
        })
        .collect();
    list_response(format, items, total, offset, "outbox", "待推送事件", SHEET).await
}

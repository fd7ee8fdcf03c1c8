//! `GET /api/v1/stats?from=&to=`: the counts the bureau's annual report needs.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::time::{format_ms, parse_param, DayEnd};
use super::{ApiError, AppState, Caller};

#[derive(Deserialize)]
pub struct StatsQuery {
    from: Option<String>,
    to: Option<String>,
}

pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    if caller.0.firm().is_some() {
        return Err(ApiError::forbidden(
            "statistics are for the bureau and departments",
        ));
    }
    let Query(q) = query?;
    let from = parse_param("from", q.from.as_deref(), state.tz, DayEnd::Start)?.unwrap_or(0);
    let to = parse_param("to", q.to.as_deref(), state.tz, DayEnd::End)?.unwrap_or(i64::MAX / 2);
    if from > to {
        return Err(ApiError::bad_request("`from` is after `to`"));
    }
    let s = state
        .store
        .stats(from, to, chrono::Utc::now().timestamp_millis())
        .await?;
    let per_dept = |f: fn(&crate::store::DeadlineStats) -> Value| -> Value {
        s.deadlines.iter().map(|(d, k)| (d.clone(), f(k))).collect()
    };
    Ok(Json(json!({
        "from": q.from.map(|_| format_ms(from, state.tz)),
        "to": q.to.map(|_| format_ms(to, state.tz)),
        "violations": s.by_code.values().sum::<i64>(),
        "by_code": s.by_code,
        "by_department": s.by_department,
        "cases": s.cases,
        "closed_cases": s.closed_cases,
        "multi_department_cases": s.multi_department_cases,
        "overload_cases": s.overload_cases,
        "penalties_cny": s.penalties_cny,
        // Per department: 按期处置率 (decided by the deadline / checks due,
        // null while none is due) and checks overdue now.
        "on_time_rate": per_dept(|k| json!(k.on_time_rate())),
        "overdue": per_dept(|k| json!(k.overdue)),
        "deadlines": per_dept(|k| json!({
            "checks": k.checks, "due": k.due, "on_time": k.on_time, "overdue": k.overdue,
            "on_time_rate": k.on_time_rate(),
        })),
        "labels": {"multi_department_cases": "一案多查", "overload_cases": "一超四罚",
                   "on_time_rate": "按期处置率", "overdue": "逾期"},
    })))
}

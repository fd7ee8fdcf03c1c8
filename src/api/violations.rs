//! `/api/v1/violations`: list (firms: their own only) and one violation
//! with its evidence fixes.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::time::{parse_param, DayEnd};
use super::vehicles::fix_json;
use super::{ApiError, ApiPath, AppState, Caller, Paging};
use crate::auth::Role;
use crate::store::ViolationFilter;
use crate::violation::{violation_json, ViolationCode};

/// A `code` query parameter: a violation code of the contract, or 400.
pub fn code_param(code: Option<&str>) -> Result<Option<ViolationCode>, ApiError> {
    code.map(|code| {
        ViolationCode::parse(code)
            .ok_or_else(|| ApiError::bad_request(format!("`{code}` is not a violation code")))
    })
    .transpose()
}

/// What the caller may see: admins every violation, a department those of
/// the cases routed to it, a firm its own.
pub fn scope(caller: &Caller, mut f: ViolationFilter) -> ViolationFilter {
    match &caller.0 {
        Role::Admin => {}
        Role::Dept(d) => f.visible_to = Some(*d),
        Role::Firm(id) => f.firm = Some(id.to_string()),
    }
    f
}

#[derive(Deserialize)]
pub struct ListQuery {
    plate: Option<String>,
    code: Option<String>,
    since: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query?;
    let (limit, offset) = Paging {
        limit: q.limit,
        offset: q.offset,
    }
    .resolve()?;
    let filter = ViolationFilter {
        plate: q.plate,
        code: code_param(q.code.as_deref())?,
        since_ms: parse_param("since", q.since.as_deref(), state.tz, DayEnd::Start)?,
        ..Default::default()
    };
    let filter = scope(&caller, filter);
    let (items, total) = state.store.violations(&filter, limit, offset).await?;
    let items: Vec<Value> = items.iter().map(|v| violation_json(v, state.tz)).collect();
    Ok(Json(json!({"items": items, "total": total})))
}

/// One violation with `evidence`: the stored fixes of its episode.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let unknown = || ApiError::not_found(format!("no violation {id}"));
    let filter = scope(
        &caller,
        ViolationFilter {
            ids: Some(vec![id]),
            ..Default::default()
        },
    );
    let (items, _) = state.store.violations(&filter, 1, 0).await?;
    let v = items.into_iter().next().ok_or_else(unknown)?;
    let end = v.ended_ms.unwrap_or(i64::MAX);
    let fixes = state
        .store
        .track(v.device_id.as_str(), v.started_ms, end, 10_000)
        .await?;
    let mut out = violation_json(&v, state.tz);
    out["evidence"] = fixes.iter().map(|f| fix_json(f, state.tz)).collect();
    Ok(Json(out))
}

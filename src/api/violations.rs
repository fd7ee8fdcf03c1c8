//! `/api/v1/violations`: list (firms: their own only) and one violation
//! with its evidence fixes.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::export::{col, list_response, Column, ListFormat};
use super::time::{parse_param, DayEnd};
use super::vehicles::fix_json;
use super::{ApiError, ApiPath, AppState, Caller, Paging};
use crate::auth::Role;
use crate::store::ViolationFilter;
use crate::violation::{violation_json, ViolationCode};
use axum::response::Response;

/// A `code` query parameter: a violation code of the contract, or 400.
pub fn code_param(code: Option<&str>) -> Result<Option<ViolationCode>, ApiError> {
    super::filter(code, ViolationCode::parse, |c| {
        format!("`{c}` is not a violation code")
    })
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

/// The Chinese name of an item's `code`.
fn code_label(v: &Value) -> Value {
    v["code"]
        .as_str()
        .and_then(ViolationCode::parse)
        .map(|c| json!(c.label_zh()))
        .unwrap_or_default()
}

/// The violations sheet of an export.
const SHEET: &[Column] = &[
    col!("编号", "/id"),
    col!("违规代码", "/code"),
    Column {
        header: "违规类型",
        value: code_label,
    },
    col!("车牌", "/plate"),
    col!("终端号", "/device_id"),
    col!("运输企业", "/firm_id"),
    col!("准运证", "/permit_id"),
    col!("开始时间", "/started_at"),
    col!("结束时间", "/ended_at"),
    col!("纬度", "/lat"),
    col!("经度", "/lon"),
    col!("测量值", "/measured"),
    col!("电子围栏", "/fences"),
    col!("案件编号", "/case_id"),
    col!("状态", "/status"),
];

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    format: ListFormat,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    let (limit, offset) = format.paging(Paging {
        limit: q.limit,
        offset: q.offset,
    })?;
    let filter = ViolationFilter {
        plate: q.plate,
        code: code_param(q.code.as_deref())?,
        since_ms: parse_param("since", q.since.as_deref(), state.tz, DayEnd::Start)?,
        ..Default::default()
    };
    let filter = scope(&caller, filter);
    let (items, total) = state.store.violations(&filter, limit, offset).await?;
    let items: Vec<Value> = items.iter().map(|v| violation_json(v, state.tz)).collect();
    list_response(
        format,
        items,
        total,
        offset,
        "violations",
        "违规记录",
        SHEET,
    )
    .await
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

//! `/api/v1/cases`: joint cases. Departments see the cases routed to them
//! (and every department's check on those), firms their own, read-only;
//! only a check's own department (or an admin) may move it.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::export::{col, list_response, Column, ListFormat};
use super::time::{format_ms, parse_param, DayEnd};
use super::vehicles::encode_path;
use super::violations::code_param;
use super::{filter, ApiError, ApiPath, AppState, Caller, Paging};
use crate::auth::{Department, Role};
use crate::cases::{CaseStatus, CheckUpdate};
use crate::store::{CaseFilter, CaseRecord, CheckError, ViolationFilter};
use crate::violation::violation_json;
use axum::response::Response;

/// A case as the contract shows it; each check with its `due_at` and
/// whether it is `overdue` at `now_ms` (the time of reading).
pub fn case_json(c: &CaseRecord, tz: chrono_tz::Tz, now_ms: i64) -> Value {
    let to = c
        .closed_ms
        .map(|t| format!("&to={}", encode_path(&format_ms(t, tz))))
        .unwrap_or_default();
    json!({
        "id": c.id, "plate": c.plate, "device_id": c.device_id, "firm_id": c.firm_id, "status": c.status.as_str(),
        "opened_at": format_ms(c.opened_ms, tz), "closed_at": c.closed_ms.map(|t| format_ms(t, tz)),
        "codes": c.codes.iter().map(|code| code.as_str()).collect::<Vec<_>>(),
        "departments": c.checks.iter().map(|k| k.department.as_str()).collect::<Vec<_>>(),
        "checks": c.checks.iter().map(|k| json!({
            "department": k.department.as_str(), "status": k.status.as_str(), "finding": k.finding,
            "penalty": k.penalty.as_ref().map(|p| json!({"party": p.party, "amount_cny": p.amount_cny})),
            "due_at": k.due_ms.map(|t| format_ms(t, tz)), "overdue": k.overdue(now_ms),
            "decided_at": k.decided_ms.map(|t| format_ms(t, tz)),
        })).collect::<Vec<_>>(),
        "overdue": c.checks.iter().any(|k| k.overdue(now_ms)),
        "parties": c.parties.iter().map(|p| json!({"role": p.role, "name": p.name})).collect::<Vec<_>>(),
        "track": format!("/api/v1/vehicles/{}/track?from={}{to}", encode_path(c.plate.as_str()), encode_path(&format_ms(c.opened_ms - 600_000, tz))),
    })
}

/// Limits a case query to what the caller may see.
fn scope(caller: &Caller, f: &mut CaseFilter) {
    match &caller.0 {
        Role::Admin => {}
        Role::Dept(d) => f.visible_to = Some(*d),
        Role::Firm(id) => f.firm = Some(id.to_string()),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    department: Option<String>,
    status: Option<String>,
    code: Option<String>,
    plate: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// `true`: only cases with an overdue check (the caller's own, for a
    /// department).
    overdue: Option<bool>,
    /// `overdue`: cases with an overdue check first; `opened` (default):
    /// newest first.
    order: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// A check in one cell: `urban: investigating, 期限 2021-06-04 22:00 逾期`.
fn checks_cell(case: &Value) -> Value {
    let Some(checks) = case["checks"].as_array() else {
        return Value::Null;
    };
    let text: Vec<String> = checks
        .iter()
        .map(|k| {
            let due = k["due_at"].as_str().unwrap_or("—");
            let late = if k["overdue"] == true { " 逾期" } else { "" };
            format!(
                "{}: {}, 期限 {due}{late}",
                k["department"].as_str().unwrap_or(""),
                k["status"].as_str().unwrap_or("")
            )
        })
        .collect();
    json!(text.join("; "))
}

/// The parties in one cell: `vehicle: 苏J00001; driver: ...`.
fn parties_cell(case: &Value) -> Value {
    let text: Vec<String> = case["parties"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{}: {}",
                p["role"].as_str().unwrap_or(""),
                p["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    json!(text.join("; "))
}

/// The cases sheet of an export.
const SHEET: &[Column] = &[
    col!("案件编号", "/id"),
    col!("车牌", "/plate"),
    col!("运输企业", "/firm_id"),
    col!("状态", "/status"),
    col!("立案时间", "/opened_at"),
    col!("结案时间", "/closed_at"),
    col!("违规代码", "/codes"),
    col!("核查部门", "/departments"),
    Column {
        header: "各部门核查",
        value: checks_cell,
    },
    col!("逾期", "/overdue"),
    Column {
        header: "当事方",
        value: parties_cell,
    },
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
    let department = filter(q.department.as_deref(), Department::parse, |d| {
        format!("`{d}` is not a department")
    })?;
    let status = filter(q.status.as_deref(), CaseStatus::parse, |s| {
        format!("status `{s}` is not open or closed")
    })?;
    let now = chrono::Utc::now().timestamp_millis();
    let overdue_first = match q.order.as_deref() {
        None | Some("opened") => false,
        Some("overdue") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "order `{other}` is not `opened` or `overdue`"
            )))
        }
    };
    let mut filter = CaseFilter {
        overdue_at: q.overdue.unwrap_or(false).then_some(now),
        overdue_first_at: overdue_first.then_some(now),
        department,
        status,
        code: code_param(q.code.as_deref())?,
        plate: q.plate,
        from_ms: parse_param("from", q.from.as_deref(), state.tz, DayEnd::Start)?,
        to_ms: parse_param("to", q.to.as_deref(), state.tz, DayEnd::End)?,
        ..Default::default()
    };
    scope(&caller, &mut filter);
    let (items, total) = state.store.cases(&filter, limit, offset).await?;
    let items = items.iter().map(|c| case_json(c, state.tz, now)).collect();
    list_response(format, items, total, offset, "cases", "案件", SHEET).await
}

async fn visible_case(state: &AppState, caller: &Caller, id: i64) -> Result<CaseRecord, ApiError> {
    let mut filter = CaseFilter {
        id: Some(id),
        ..Default::default()
    };
    scope(caller, &mut filter);
    let (items, _) = state.store.cases(&filter, 1, 0).await?;
    items
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found(format!("no case {id}")))
}

/// One case with its violations and its audit trail.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let case = visible_case(&state, &caller, id).await?;
    Ok(Json(full_case(&state, &case).await?))
}

async fn full_case(state: &AppState, case: &CaseRecord) -> Result<Value, ApiError> {
    let mut out = case_json(case, state.tz, chrono::Utc::now().timestamp_millis());
    let (violations, _) = state
        .store
        .violations(
            &ViolationFilter {
                case_id: Some(case.id),
                ..Default::default()
            },
            1000,
            0,
        )
        .await?;
    out["violations"] = violations
        .iter()
        .map(|v| violation_json(v, state.tz))
        .collect();
    out["audit"] = state
        .store
        .case_audit(case.id)
        .await?
        .iter()
        .map(|a| {
            json!({"id": a.id, "at": format_ms(a.at_ms, state.tz), "actor": a.actor, "department": a.department.map(|d| d.as_str()),
                   "field": a.field, "before": a.before, "after": a.after})
        })
        .collect();
    Ok(out)
}

pub async fn update_check(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, department)): ApiPath<(i64, String)>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let dept = Department::parse(&department)
        .ok_or_else(|| ApiError::not_found(format!("no department `{department}`")))?;
    match &caller.0 {
        Role::Admin => {}
        Role::Dept(d) if *d == dept => {}
        other => {
            return Err(ApiError::forbidden(format!(
                "{other} may not change the {dept} check"
            )))
        }
    }
    let Json(body) = body?;
    let update = CheckUpdate::from_json(&body).map_err(ApiError::unprocessable)?;
    let actor = caller.0.to_string();
    match state
        .store
        .update_check(
            id,
            dept,
            &update,
            &actor,
            chrono::Utc::now().timestamp_millis(),
        )
        .await
    {
        Ok(()) => {}
        Err(CheckError::NoSuchCheck) => {
            return Err(ApiError::not_found(format!(
                "case {id} has no {dept} check"
            )))
        }
        Err(CheckError::Illegal(m)) => return Err(ApiError::conflict(m)),
        Err(CheckError::Store(e)) => return Err(e.into()),
    }
    tracing::info!(case = id, department = %dept, status = update.status.as_str(), actor, "check updated");
    let case = state
        .store
        .case(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no case {id}")))?;
    Ok(Json(full_case(&state, &case).await?))
}

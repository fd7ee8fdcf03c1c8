//! The inspector pool (执法检查人员名录) of random inspections:
//! `POST /api/v1/inspectors` and `PATCH /api/v1/inspectors/{id}` (admin: a
//! renewed certificate, another department, a corrected name) and
//! `GET /api/v1/inspectors` (admin and departments: whom a draw may pick,
//! with whether each one's certificate is valid today; a firm may not see
//! who inspects it, 403).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::export::{col, list_response, Column, ListFormat};
use super::inspections::{officials_only, text, today};
use super::{filter, ApiError, ApiPath, AppState, Caller, Paging};
use crate::auth::Department;
use crate::store::InspectorRecord;

fn department(body: &Value) -> Result<Department, ApiError> {
    let dept = text(body, "department", 32)?;
    Department::parse(dept)
        .ok_or_else(|| ApiError::unprocessable(format!("department `{dept}` is not known")))
}

fn cert_valid_until(body: &Value) -> Result<chrono::NaiveDate, ApiError> {
    let until = text(body, "cert_valid_until", 10)?;
    chrono::NaiveDate::parse_from_str(until, "%Y-%m-%d").map_err(|e| {
        ApiError::unprocessable(format!("cert_valid_until `{until}` is not a date: {e}"))
    })
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let Json(body) = body?;
    let id = text(&body, "id", 64)?;
    let name = text(&body, "name", 200)?;
    let department = department(&body)?;
    let until = cert_valid_until(&body)?;
    let now = chrono::Utc::now().timestamp_millis();
    state
        .store
        .create_inspector(id, name, department, until, now)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": id, "name": name, "department": department.as_str(),
                    "cert_valid_until": until.to_string(),
                    "cert_valid": until >= today(&state)}),
        ),
    ))
}

/// Changes the fields given (`name`, `department`, `cert_valid_until`; at
/// least one); 404 for an unknown inspector. Draws already made keep whom
/// they drew.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let Json(body) = body?;
    let given = |f: &str| body.get(f).is_some_and(|v| !v.is_null());
    if !["name", "department", "cert_valid_until"]
        .iter()
        .any(|f| given(f))
    {
        return Err(ApiError::unprocessable(
            "give at least one of `name`, `department`, `cert_valid_until`",
        ));
    }
    let name = given("name")
        .then(|| text(&body, "name", 200))
        .transpose()?;
    let dept = given("department").then(|| department(&body)).transpose()?;
    let until = given("cert_valid_until")
        .then(|| cert_valid_until(&body))
        .transpose()?;
    let updated = state
        .store
        .update_inspector(&id, name, dept, until)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no inspector `{id}`")))?;
    tracing::info!(inspector = %id, "inspector changed");
    Ok(Json(inspector_json(&updated, &today(&state).to_string())))
}

#[derive(Deserialize)]
pub struct ListQuery {
    department: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// The Chinese name of an item's department.
fn department_label(v: &Value) -> Value {
    v["department"]
        .as_str()
        .and_then(Department::parse)
        .map(|d| json!(d.label_zh()))
        .unwrap_or_default()
}

/// The inspectors sheet of an export.
const SHEET: &[Column] = &[
    col!("编号", "/id"),
    col!("姓名", "/name"),
    col!("部门代码", "/department"),
    Column {
        header: "部门",
        value: department_label,
    },
    col!("执法证有效期至", "/cert_valid_until"),
    col!("执法证有效", "/cert_valid"),
];

/// An inspector as listed: `cert_valid` says whether a draw today may pick
/// them (valid through `cert_valid_until`, the city's local date).
fn inspector_json(i: &InspectorRecord, today: &str) -> Value {
    json!({
        "id": i.id,
        "name": i.name,
        "department": i.department.as_str(),
        "cert_valid_until": i.cert_valid_until,
        "cert_valid": i.cert_valid_until.as_str() >= today,
    })
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    format: ListFormat,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    officials_only(&caller)?;
    let Query(q) = query?;
    let (limit, offset) = format.paging(Paging {
        limit: q.limit,
        offset: q.offset,
    })?;
    let department = filter(q.department.as_deref(), Department::parse, |d| {
        format!("department `{d}` is not known")
    })?;
    let (rows, total) = state.store.inspectors(department, limit, offset).await?;
    let today = today(&state).to_string();
    let items = rows.iter().map(|i| inspector_json(i, &today)).collect();
    list_response(
        format,
        items,
        total,
        offset,
        "inspectors",
        "检查人员",
        SHEET,
    )
    .await
}

//! `/api/v1/permits`: create (admin), list and read (firms: their own only),
//! change status (admin).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::export::{col, list_response, Column, ListFormat};
use super::{filter, ApiError, ApiPath, AppState, Caller, Paging};
use crate::geofence::FenceKind;
use crate::permit::{Permit, PermitStatus};
use crate::store::PermitFilter;
use axum::response::Response;

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let Json(body) = body?;
    let permit = Permit::from_json(&body).map_err(ApiError::unprocessable)?;
    check_references(&state, &permit).await?;
    super::credit::refuse_blacklisted(&state, &permit.firm_id, permit.valid_from).await?;
    state
        .store
        .create_permit(&permit, chrono::Utc::now().timestamp_millis())
        .await?;
    tracing::info!(permit = %permit.id, firm = %permit.firm_id, "permit registered");
    let out = permit.to_json();
    state.registry.upsert_permit(permit);
    Ok((StatusCode::CREATED, Json(out)))
}

/// Every name a permit mentions must exist: the firm, its plates (of that
/// firm), and fences of the right kind. All problems are named at once.
async fn check_references(state: &AppState, p: &Permit) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    if state.store.firm(&p.firm_id).await?.is_none() {
        problems.push(format!("firm `{}` does not exist", p.firm_id));
    }
    for plate in &p.plates {
        match state.store.vehicle(plate).await? {
            None => problems.push(format!("vehicle `{plate}` does not exist")),
            Some(v) if v.firm_id != p.firm_id => problems.push(format!(
                "vehicle `{plate}` belongs to firm `{}`, not `{}`",
                v.firm_id, p.firm_id
            )),
            Some(_) => {}
        }
    }
    let fences = state.fences.load();
    let mut expect = |id: &str, kind: FenceKind, what: &str| match fences.get(id) {
        None => problems.push(format!("{what} `{id}` is not a loaded geofence")),
        Some(idx) if fences.fence(idx).kind != kind => problems.push(format!(
            "{what} `{id}` is a {:?}, not a {what}",
            fences.fence(idx).kind
        )),
        Some(_) => {}
    };
    expect(&p.source_site, FenceKind::SourceSite, "source_site");
    expect(&p.disposal_site, FenceKind::DisposalSite, "disposal_site");
    for r in &p.routes {
        expect(r, FenceKind::Route, "route");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::unprocessable(problems.join("; ")))
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    plate: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// The daily windows in one cell: `21:00–06:00, 12:00–13:00`.
fn windows_cell(permit: &Value) -> Value {
    let text: Vec<String> = permit["windows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            format!(
                "{}–{}",
                w["start"].as_str().unwrap_or(""),
                w["end"].as_str().unwrap_or("")
            )
        })
        .collect();
    json!(text.join(", "))
}

/// The permits sheet of an export.
const SHEET: &[Column] = &[
    col!("准运证编号", "/id"),
    col!("运输企业", "/firm_id"),
    col!("车辆", "/plates"),
    col!("出土工地", "/source_site"),
    col!("消纳场", "/disposal_site"),
    col!("核准路线", "/routes"),
    Column {
        header: "运输时段",
        value: windows_cell,
    },
    col!("有效期起", "/valid_from"),
    col!("有效期止", "/valid_until"),
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
    let status = filter(q.status.as_deref(), PermitStatus::parse, |s| {
        format!("status `{s}` is not active, suspended or revoked")
    })?;
    let filter = PermitFilter {
        plate: q.plate,
        status,
        firm: caller.0.firm().map(|f| f.to_string()),
    };
    let (items, total) = state.store.permits(&filter, limit, offset).await?;
    let items = items.iter().map(Permit::to_json).collect();
    list_response(format, items, total, offset, "permits", "准运证", SHEET).await
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(visible(&state, &caller, &id).await?.to_json()))
}

#[derive(Deserialize)]
pub struct StatusChange {
    status: String,
}

pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    body: Result<Json<StatusChange>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    visible(&state, &caller, &id).await?;
    caller.require_admin()?;
    let Json(body) = body?;
    let status = PermitStatus::parse(&body.status).ok_or_else(|| {
        ApiError::unprocessable(format!(
            "status `{}` is not active, suspended or revoked",
            body.status
        ))
    })?;
    let permit = state
        .store
        .set_permit_status(&id, status, chrono::Utc::now().timestamp_millis())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no permit `{id}`")))?;
    tracing::info!(permit = %id, status = status.as_str(), "permit status changed");
    let out = permit.to_json();
    state.registry.upsert_permit(permit);
    Ok(Json(out))
}

/// The permit if the caller may see it; another firm's permit is a 404.
async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<Permit, ApiError> {
    let unknown = || ApiError::not_found(format!("no permit `{id}`"));
    let permit = state.store.permit(id).await?.ok_or_else(unknown)?;
    match caller.0.firm() {
        Some(f) if *f != permit.firm_id => Err(unknown()),
        _ => Ok(permit),
    }
}

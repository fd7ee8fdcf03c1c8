//! Firm credit (信用评价): `GET /api/v1/firms/{id}/credit?cycle=` (the firm
//! itself, departments, admin; another firm's is a 404, as if it did not
//! exist) and `GET /api/v1/credit?cycle=` (every firm's score and grade;
//! departments and admin; paged, by grade, and as a workbook like every
//! list). The cycle defaults to the current one.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::export::{col, list_response, Column, ListFormat};
use super::time::format_ms;
use super::{filter, ApiError, ApiPath, AppState, Caller, Paging};
use crate::auth::Role;
use crate::credit::{Cycle, Grade};
use crate::identity::{Firm, FirmId};
use crate::store::{DeductionRecord, PermitFilter};

#[derive(Deserialize)]
pub struct CycleQuery {
    cycle: Option<String>,
}

/// The `?cycle=` asked for, or the one now is in.
fn cycle_param(state: &AppState, cycle: Option<&str>) -> Result<Cycle, ApiError> {
    match cycle {
        Some(c) => state.credit.parse_cycle(c).map_err(ApiError::bad_request),
        None => Ok(state
            .credit
            .cycle_of_ms(chrono::Utc::now().timestamp_millis(), state.tz)),
    }
}

/// A firm's deductions standing in `cycle` (all firms' when `firm` is none).
async fn deductions(
    state: &AppState,
    firm: Option<&FirmId>,
    cycle: Cycle,
) -> Result<Vec<DeductionRecord>, ApiError> {
    let (from, to) = cycle
        .bounds_ms(state.tz)
        .ok_or_else(|| ApiError::bad_request(format!("cycle `{cycle}` is out of range")))?;
    Ok(state.store.credit_deductions(firm, from, to).await?)
}

/// `firm`'s score and grade in `cycle`.
pub async fn firm_grade(
    state: &AppState,
    firm: &FirmId,
    cycle: Cycle,
) -> Result<(i64, Grade), ApiError> {
    let d = deductions(state, Some(firm), cycle).await?;
    let score = state.credit.score(d.iter().map(|d| d.code));
    Ok((score, state.credit.grade(score)))
}

/// Refuses (409 `firm_blacklisted`) a new permit for a firm at the
/// blacklist grade in the cycle of `valid_from` or the cycle before it.
pub async fn refuse_blacklisted(
    state: &AppState,
    firm: &FirmId,
    valid_from: chrono::NaiveDate,
) -> Result<(), ApiError> {
    let cycle = state.credit.cycle_of_date(valid_from);
    for c in [cycle, cycle.previous()] {
        let (score, grade) = firm_grade(state, firm, c).await?;
        if state.credit.blacklisted(grade) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "firm_blacklisted",
                format!(
                    "firm `{firm}` is graded {} ({score} points) in credit cycle {c}; \
                     a firm at grade {} or below gets no new permit",
                    grade.as_str(),
                    state.credit.blacklist_grade.as_str()
                ),
            ));
        }
    }
    Ok(())
}

pub async fn firm(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    q: Result<Query<CycleQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let missing = || ApiError::not_found(format!("no firm `{id}`"));
    let firm = FirmId::parse(&id).map_err(|_| missing())?;
    if matches!(&caller.0, Role::Firm(own) if *own != firm) {
        return Err(missing());
    }
    if state.store.firm(&firm).await?.is_none() {
        return Err(missing());
    }
    let Query(q) = q?;
    let cycle = cycle_param(&state, q.cycle.as_deref())?;
    let d = deductions(&state, Some(&firm), cycle).await?;
    let score = state.credit.score(d.iter().map(|d| d.code));
    let grade = state.credit.grade(score);
    let filter = PermitFilter {
        firm: Some(firm.as_str().to_string()),
        ..Default::default()
    };
    let (permits, _) = state.store.permits(&filter, 1000, 0).await?;
    let tz = state.tz;
    Ok(Json(json!({
        "firm_id": firm.as_str(),
        "cycle": cycle.to_string(),
        "base": state.credit.base,
        "score": score,
        "grade": grade.as_str(),
        "blacklisted": state.credit.blacklisted(grade),
        "deductions": d.iter().map(|d| json!({
            "violation_id": d.violation_id,
            "code": d.code.as_str(),
            "points": state.credit.points(d.code),
            "case_id": d.case_id,
            "at": format_ms(d.at_ms, tz),
            "violation_started_at": format_ms(d.started_ms, tz),
        })).collect::<Vec<_>>(),
        "permits": permits.iter().map(|p| json!({
            "id": p.id, "status": p.status.as_str(),
            "valid_from": p.valid_from.to_string(), "valid_until": p.valid_until.to_string(),
        })).collect::<Vec<_>>(),
    })))
}

/// A firm's standing in a cycle, as the list shows it.
pub struct Standing {
    pub firm: Firm,
    pub score: i64,
    pub grade: Grade,
    /// How many violations are charged to it in the cycle.
    pub deductions: usize,
}

/// Every registered firm's standing in `cycle`, by firm id.
pub async fn standings(state: &AppState, cycle: Cycle) -> Result<Vec<Standing>, ApiError> {
    let mut lost: BTreeMap<String, (i64, usize)> = BTreeMap::new();
    for d in deductions(state, None, cycle).await? {
        let e = lost.entry(d.firm_id.as_str().to_string()).or_default();
        e.0 += state.credit.points(d.code);
        e.1 += 1;
    }
    Ok(state
        .store
        .firms()
        .await?
        .into_iter()
        .map(|firm| {
            let (points, deductions) = lost.get(firm.id.as_str()).copied().unwrap_or_default();
            let score = state.credit.base - points;
            Standing {
                firm,
                score,
                grade: state.credit.grade(score),
                deductions,
            }
        })
        .collect())
}

#[derive(Deserialize)]
pub struct ListQuery {
    cycle: Option<String>,
    grade: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// The credit sheet of an export.
const SHEET: &[Column] = &[
    col!("企业编号", "/firm_id"),
    col!("企业名称", "/name"),
    col!("评价周期", "/cycle"),
    col!("信用分", "/score"),
    col!("信用等级", "/grade"),
    col!("扣分记录数", "/deductions"),
    col!("列入黑名单", "/blacklisted"),
];

/// Every firm's score and grade in a cycle (departments and admin), by firm
/// id, of one grade when `?grade=` says so. Besides the contract's `items`
/// and `total`, the JSON says the `cycle`, the `base`, and how many firms
/// hold each grade (`grades`, over every firm, whatever page is shown).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    format: ListFormat,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    if let Role::Firm(f) = &caller.0 {
        return Err(ApiError::forbidden(format!(
            "firm {f} may not list every firm's credit; read /api/v1/firms/{f}/credit"
        )));
    }
    let Query(q) = q?;
    let (limit, offset) = format.paging(Paging {
        limit: q.limit,
        offset: q.offset,
    })?;
    let cycle = cycle_param(&state, q.cycle.as_deref())?;
    let grade = filter(q.grade.as_deref(), Grade::parse, |g| {
        format!("grade `{g}` is not A-D")
    })?;
    let all = standings(&state, cycle).await?;
    let mut grades: BTreeMap<&str, usize> = Grade::ALL.iter().map(|g| (g.as_str(), 0)).collect();
    for s in &all {
        *grades.entry(s.grade.as_str()).or_default() += 1;
    }
    let chosen: Vec<&Standing> = all
        .iter()
        .filter(|s| grade.is_none_or(|g| s.grade == g))
        .collect();
    let total = chosen.len() as i64;
    let items: Vec<Value> = chosen
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|s| {
            json!({
                "firm_id": s.firm.id.as_str(), "name": s.firm.name, "cycle": cycle.to_string(),
                "score": s.score, "grade": s.grade.as_str(), "deductions": s.deductions,
                "blacklisted": state.credit.blacklisted(s.grade),
            })
        })
        .collect();
    if format == ListFormat::Json {
        return Ok(Json(json!({
            "cycle": cycle.to_string(),
            "base": state.credit.base,
            "grades": grades,
            "items": items,
            "total": total,
        }))
        .into_response());
    }
    list_response(
        format,
        items,
        total,
        offset,
        "credit",
        "企业信用评价",
        SHEET,
    )
    .await
}

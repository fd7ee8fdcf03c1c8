//! Firm credit (信用评价): `GET /api/v1/firms/{id}/credit?cycle=` (the firm
//! itself, departments, admin; another firm's is a 404, as if it did not
//! exist) and `GET /api/v1/credit?cycle=` (every firm's score and grade;
//! departments and admin). The cycle defaults to the current one.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::time::format_ms;
use super::{ApiError, ApiPath, AppState, Caller};
use crate::auth::Role;
use crate::credit::{Cycle, Grade};
use crate::identity::FirmId;
use crate::store::{DeductionRecord, PermitFilter};

#[derive(Deserialize)]
pub struct CycleQuery {
    cycle: Option<String>,
}

/// The `?cycle=` asked for, or the one now is in.
fn cycle_param(
    state: &AppState,
    q: Result<Query<CycleQuery>, QueryRejection>,
) -> Result<Cycle, ApiError> {
    let Query(q) = q?;
    match q.cycle.as_deref() {
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
    let cycle = cycle_param(&state, q)?;
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

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<CycleQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    if let Role::Firm(f) = &caller.0 {
        return Err(ApiError::forbidden(format!(
            "firm {f} may not list every firm's credit; read /api/v1/firms/{f}/credit"
        )));
    }
    let cycle = cycle_param(&state, q)?;
    let mut lost: BTreeMap<String, (i64, usize)> = BTreeMap::new();
    for d in deductions(&state, None, cycle).await? {
        let e = lost.entry(d.firm_id.as_str().to_string()).or_default();
        e.0 += state.credit.points(d.code);
        e.1 += 1;
    }
    let items: Vec<Value> = state
        .store
        .firms()
        .await?
        .into_iter()
        .map(|f| {
            let (points, count) = lost.get(f.id.as_str()).copied().unwrap_or_default();
            let score = state.credit.base - points;
            let grade = state.credit.grade(score);
            json!({
                "firm_id": f.id.as_str(), "name": f.name, "score": score,
                "grade": grade.as_str(), "deductions": count,
                "blacklisted": state.credit.blacklisted(grade),
            })
        })
        .collect();
    Ok(Json(json!({
        "cycle": cycle.to_string(),
        "base": state.credit.base,
        "items": items,
    })))
}

//! `/api/v1/permit-applications` (不见面审批): a firm submits the permit it
//! wants and gets the automatic checks' results at once; the bureau (admin
//! or `dept:urban`) approves, which creates the permit active through
//! `create_permit` (the same store function as `POST /api/v1/permits`) and
//! hands it to detection, or rejects with a reason. Firms see their own
//! applications only (another firm's is a 404); departments and admin see
//! all. Every step is in the application's audit trail.
//!
//! Approval re-runs the checks first: the world may have changed since the
//! submission (a vehicle re-registered, a fence reloaded, the firm
//! blacklisted). An application whose checks do not all pass then cannot
//! be approved (409 `checks_failed`, with the failing checks); the bureau
//! rejects it, or approves once the cause is gone.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;

use super::export::{col, list_response, Column, ListFormat};
use super::time::format_ms;
use super::{filter, ApiError, ApiPath, AppState, Caller, Paging};
use crate::applications::checks::summary;
use crate::applications::{
    permit_id, run_checks, ApplicationStatus, CheckResult, Facts, PermitRequest, VehicleFact,
};
use crate::auth::{Department, Role};
use crate::identity::FirmId;
use crate::permit::Permit;
use crate::store::{ApplicationFilter, ApplicationRecord, DecisionError, StoreError};

/// The longest reason a decision may give, in characters.
const MAX_REASON_CHARS: usize = 2000;

/// The application as the API shows it: the permit's fields as submitted,
/// plus `id`, `firm_id`, `status`, `checks`, `passed` and the decision.
fn application_json(a: &ApplicationRecord, tz: chrono_tz::Tz) -> Value {
    let mut v = a.request.to_json();
    let extra = json!({
        "id": a.id,
        "firm_id": a.firm_id.as_str(),
        "status": a.status.as_str(),
        "checks": a.checks.iter().map(CheckResult::to_json).collect::<Vec<_>>(),
        "checks_summary": summary(&a.checks),
        "passed": a.passed(),
        "submitted_at": format_ms(a.submitted_ms, tz),
        "submitted_by": a.submitted_by,
        "decided_at": a.decided_ms.map(|ms| format_ms(ms, tz)),
        "decided_by": a.decided_by,
        "reason": a.reason,
        "permit_id": a.permit_id,
    });
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

fn today(state: &AppState) -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&state.tz).date_naive()
}

fn local_date(state: &AppState, ms: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&state.tz)
        .date_naive()
}

/// Looks up what the checks need and runs them.
async fn check(
    state: &AppState,
    firm: &FirmId,
    request: &PermitRequest,
    submitted_on: chrono::NaiveDate,
) -> Result<Vec<CheckResult>, ApiError> {
    let mut vehicles = Vec::with_capacity(request.plates.len());
    for plate in &request.plates {
        let fact = match state.store.vehicle(plate).await? {
            Some(v) if v.firm_id == *firm => VehicleFact::Own,
            _ => VehicleFact::NotOwn,
        };
        vehicles.push((plate.clone(), fact));
    }
    let blacklisted = match super::credit::refuse_blacklisted(state, firm, request.valid_from).await
    {
        Ok(()) => None,
        // A date outside every cycle the scheme can count is a credit
        // that cannot be checked: the check fails and says why.
        Err(e) if e.status.is_client_error() => Some(e.detail),
        Err(e) => return Err(e),
    };
    let fences = state.fences.load();
    Ok(run_checks(
        request,
        &Facts {
            vehicles: &vehicles,
            fences: &fences,
            blacklisted,
            submitted_on,
            today: today(state),
        },
    ))
}

pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Role::Firm(firm) = &caller.0 else {
        return Err(ApiError::forbidden(format!(
            "{} may not apply for a permit: a firm applies with its own token \
             (an administrator registers a permit with POST /api/v1/permits)",
            caller.0
        )));
    };
    let Json(body) = body?;
    let request = PermitRequest::from_json(&body, firm).map_err(ApiError::unprocessable)?;
    let checks = check(&state, firm, &request, today(&state)).await?;
    let actor = caller.0.to_string();
    let now = chrono::Utc::now().timestamp_millis();
    let id = state
        .store
        .submit_application(firm, &request, &checks, &actor, now)
        .await?;
    state.metrics.applications_submitted.fetch_add(1, Relaxed);
    tracing::info!(application = id, firm = %firm, checks = %summary(&checks), "permit application submitted");
    let app = state
        .store
        .application(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no permit application {id}")))?;
    Ok((StatusCode::CREATED, Json(application_json(&app, state.tz))))
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    firm_id: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// The applications sheet of an export.
const SHEET: &[Column] = &[
    col!("申请编号", "/id"),
    col!("运输企业", "/firm_id"),
    col!("车辆", "/plates"),
    col!("出土工地", "/source_site"),
    col!("消纳场", "/disposal_site"),
    col!("路线", "/routes"),
    col!("有效期起", "/valid_from"),
    col!("有效期止", "/valid_until"),
    col!("状态", "/status"),
    col!("自动审查", "/checks_summary"),
    col!("提交时间", "/submitted_at"),
    col!("审批时间", "/decided_at"),
    col!("审批人", "/decided_by"),
    col!("审批意见", "/reason"),
    col!("准运证编号", "/permit_id"),
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
    let status = filter(q.status.as_deref(), ApplicationStatus::parse, |s| {
        format!("status `{s}` is not submitted, approving, approved or rejected")
    })?;
    let asked = q
        .firm_id
        .as_deref()
        .map(|f| FirmId::parse(f).map_err(ApiError::bad_request))
        .transpose()?;
    let firm = match (caller.0.firm(), asked) {
        // A firm asking for another firm's list gets its own: nothing of
        // the other's (it must not learn that there is any).
        (Some(own), Some(other)) if *own != other => {
            return list_response(format, vec![], 0, offset, "applications", "准运申请", SHEET)
                .await
        }
        (Some(own), _) => Some(own.clone()),
        (None, asked) => asked,
    };
    let filter = ApplicationFilter { firm, status };
    let (items, total) = state.store.applications(&filter, limit, offset).await?;
    let items = items
        .iter()
        .map(|a| application_json(a, state.tz))
        .collect();
    list_response(
        format,
        items,
        total,
        offset,
        "applications",
        "准运申请",
        SHEET,
    )
    .await
}

/// The application if the caller may see it; another firm's is a 404.
async fn visible(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<ApplicationRecord, ApiError> {
    let unknown = || ApiError::not_found(format!("no permit application {id}"));
    let app = state.store.application(id).await?.ok_or_else(unknown)?;
    match caller.0.firm() {
        Some(f) if *f != app.firm_id => Err(unknown()),
        _ => Ok(app),
    }
}

/// One application with its audit trail.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let app = visible(&state, &caller, id).await?;
    full(&state, &app).await.map(Json)
}

async fn full(state: &AppState, app: &ApplicationRecord) -> Result<Value, ApiError> {
    let mut out = application_json(app, state.tz);
    out["audit"] = state
        .store
        .application_audit(app.id)
        .await?
        .iter()
        .map(|a| {
            json!({"id": a.id, "at": format_ms(a.at_ms, state.tz), "actor": a.actor,
                   "field": a.field, "before": a.before, "after": a.after})
        })
        .collect();
    Ok(out)
}

/// `{approve, reason, permit_id?}`: a rejection needs its reason; an
/// approval may number the permit (default `APP-{id}`).
#[derive(Deserialize)]
pub struct Decision {
    approve: bool,
    reason: Option<String>,
    permit_id: Option<String>,
}

pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    body: Result<Json<Decision>, JsonRejection>,
) -> Result<Response, ApiError> {
    visible(&state, &caller, id).await?;
    match &caller.0 {
        Role::Admin | Role::Dept(Department::Urban) => {}
        other => {
            return Err(ApiError::forbidden(format!(
                "{other} may not decide a permit application (admin or dept:urban)"
            )))
        }
    }
    let Json(decision) = body?;
    let reason = decision
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(ApiError::unprocessable(format!(
            "reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    let actor = caller.0.to_string();
    let now = chrono::Utc::now().timestamp_millis();
    let app = if decision.approve {
        let number = decision.permit_id.unwrap_or_else(|| permit_id(id));
        match approve(&state, id, &number, &actor, reason, now).await? {
            Ok(app) => app,
            Err(refusal) => return Ok(refusal),
        }
    } else {
        let reason = reason.ok_or_else(|| {
            ApiError::unprocessable("a rejection needs a reason (the firm is told why)")
        })?;
        let app = state
            .store
            .reject_application(id, &actor, reason, now)
            .await
            .map_err(|e| decision_error(id, e))?;
        state.metrics.applications_rejected.fetch_add(1, Relaxed);
        tracing::info!(application = id, actor, "permit application rejected");
        app
    };
    Ok(Json(full(&state, &app).await?).into_response())
}

fn decision_error(id: i64, e: DecisionError) -> ApiError {
    match e {
        DecisionError::NoSuchApplication => {
            ApiError::not_found(format!("no permit application {id}"))
        }
        DecisionError::NotSubmitted(s) => ApiError::new(
            StatusCode::CONFLICT,
            "already_decided",
            format!("permit application {id} is {s}, not waiting for a decision"),
        ),
        DecisionError::Store(e) => e.into(),
    }
}

/// Approves: re-runs the checks (409 `checks_failed` with the failing ones
/// unless all pass), claims the decision, creates the permit and finishes.
/// The inner `Err` is the refusal to answer with.
async fn approve(
    state: &AppState,
    id: i64,
    number: &str,
    actor: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<Result<ApplicationRecord, Response>, ApiError> {
    let app = state
        .store
        .application(id)
        .await?
        .ok_or_else(|| decision_error(id, DecisionError::NoSuchApplication))?;
    if app.status == ApplicationStatus::Submitted {
        let submitted_on = local_date(state, app.submitted_ms);
        let checks = check(state, &app.firm_id, &app.request, submitted_on).await?;
        state.store.recheck_application(id, &checks, now).await?;
        let failing: Vec<&CheckResult> = checks.iter().filter(|c| !c.passed).collect();
        if !failing.is_empty() {
            let detail = failing
                .iter()
                .map(|c| format!("{}: {}", c.name.as_str(), c.reason))
                .collect::<Vec<_>>()
                .join("; ");
            return Ok(Err((
                StatusCode::CONFLICT,
                Json(json!({
                    "error": "checks_failed",
                    "detail": format!("permit application {id} cannot be approved: {detail}"),
                    "checks": failing.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
                })),
            )
                .into_response()));
        }
    }
    // The number is checked as a permit's id is (one parser for both).
    let trial = app.request.to_permit(number, &app.firm_id);
    Permit::from_json(&trial.to_json())
        .map_err(|e| ApiError::unprocessable(format!("permit_id: {e}")))?;
    let app = state
        .store
        .claim_approval(id, number, actor, reason, now)
        .await
        .map_err(|e| decision_error(id, e))?;
    // An approval cut short resumes with the number it had claimed.
    let number = app.permit_id.as_deref().unwrap_or(number);
    let permit = app.request.to_permit(number, &app.firm_id);
    create(state, id, &permit, now).await?;
    // Active in the database from here on: detection must know it even if
    // marking the application approved fails below.
    state.registry.upsert_permit(permit.clone());
    let app = match state.store.finish_approval(id, now).await {
        Ok(app) => app,
        // Two approvals at once: the other one finished it.
        Err(DecisionError::NotSubmitted(ApplicationStatus::Approved)) => {
            visible_any(state, id).await?
        }
        Err(e) => return Err(decision_error(id, e)),
    };
    state.metrics.applications_approved.fetch_add(1, Relaxed);
    tracing::info!(application = id, permit = %permit.id, firm = %permit.firm_id, actor, "permit application approved, permit active");
    Ok(Ok(app))
}

async fn visible_any(state: &AppState, id: i64) -> Result<ApplicationRecord, ApiError> {
    state
        .store
        .application(id)
        .await?
        .ok_or_else(|| decision_error(id, DecisionError::NoSuchApplication))
}

/// Creates the approved permit, as `POST /api/v1/permits` does. A permit of
/// that number that is already this one (an approval cut short, or two at
/// once) counts as created; anything else undoes the claim.
async fn create(state: &AppState, id: i64, permit: &Permit, now: i64) -> Result<(), ApiError> {
    let e = match state.store.create_permit(permit, now).await {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if let StoreError::Conflict(_) = &e {
        if let Some(existing) = state.store.permit(&permit.id).await? {
            let same = Permit {
                status: permit.status,
                ..existing
            };
            if same == *permit {
                return Ok(());
            }
        }
    }
    tracing::warn!(application = id, permit = %permit.id, error = %e, "approved permit not created");
    // The trail is read by the firm: the database's own words stay in the log.
    let why = match &e {
        StoreError::Conflict(m) | StoreError::MissingReference(m) => m.clone(),
        _ => "the database could not store the permit".to_string(),
    };
    if let Err(undo) = state.store.abort_approval(id, &why, now).await {
        tracing::error!(application = id, error = %undo, "approval left approving; approving again finishes it");
    }
    Err(e.into())
}

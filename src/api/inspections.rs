//! Random inspections (双随机一公开): `POST /api/v1/inspections/draws` and
//! `POST /api/v1/inspections/draws/{id}/results` (admin and departments).
//! The inspector pool is in `inspectors`, the lists of draws in `draws`.

use std::collections::BTreeMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, ApiPath, AppState, Caller};
use crate::auth::{Department, Role};
use crate::credit::Grade;
use crate::geofence::FenceKind;
use crate::inspections::{draw, population_hash, Candidate, Population, Size};
use crate::store::NewDraw;

/// Seeds stay below 2^53 so they survive a JavaScript number.
const SEED_MAX: u64 = (1 << 53) - 1;

/// Refuses (403) a firm: inspections are the officials' business.
pub(super) fn officials_only(caller: &Caller) -> Result<(), ApiError> {
    match &caller.0 {
        Role::Firm(f) => Err(ApiError::forbidden(format!(
            "firm {f} may not run inspections; admin and departments only"
        ))),
        _ => Ok(()),
    }
}

/// A required string field of 1..=`max` characters, trimmed.
pub(super) fn text<'a>(body: &'a Value, field: &str, max: usize) -> Result<&'a str, ApiError> {
    let s = body
        .get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .ok_or_else(|| ApiError::unprocessable(format!("missing string field `{field}`")))?;
    if s.is_empty() || s.chars().count() > max {
        return Err(ApiError::unprocessable(format!(
            "`{field}` must be 1-{max} characters"
        )));
    }
    Ok(s)
}

/// The city's local date now.
pub(super) fn today(state: &AppState) -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&state.tz).date_naive()
}

fn share(v: &Value, what: &str) -> Result<f64, ApiError> {
    match v.as_f64() {
        Some(p) if p > 0.0 && p <= 1.0 => Ok(p),
        _ => Err(ApiError::unprocessable(format!(
            "`{what}` must be a number in (0, 1], got {v}"
        ))),
    }
}

/// Parses the size of a draw: exactly one of count, proportion, proportions.
fn size(body: &Value, population: Population) -> Result<Size, ApiError> {
    let given: Vec<&str> = ["count", "proportion", "proportions"]
        .into_iter()
        .filter(|f| body.get(*f).is_some_and(|v| !v.is_null()))
        .collect();
    match given.as_slice() {
        ["count"] => match body["count"].as_u64() {
            Some(n @ 1..=10_000) => Ok(Size::Count(n as usize)),
            _ => Err(ApiError::unprocessable("`count` must be 1..10000")),
        },
        ["proportion"] => Ok(Size::Proportion(share(&body["proportion"], "proportion")?)),
        ["proportions"] if population == Population::Firms => {
            let map = body["proportions"].as_object().ok_or_else(|| {
                ApiError::unprocessable("`proportions` must map grades to shares, e.g. {\"D\": 1}")
            })?;
            let mut out = BTreeMap::new();
            for (g, p) in map {
                let grade = Grade::parse(g).ok_or_else(|| {
                    ApiError::unprocessable(format!("proportions: `{g}` is not a grade A-D"))
                })?;
                out.insert(grade, share(p, &format!("proportions.{g}"))?);
            }
            Ok(Size::PerGrade(out))
        }
        ["proportions"] => Err(ApiError::unprocessable(
            "`proportions` per grade is for firms only",
        )),
        _ => Err(ApiError::unprocessable(
            "give exactly one of `count`, `proportion` or `proportions`",
        )),
    }
}

/// The population's candidates, firms with their grade in the current cycle.
async fn candidates(state: &AppState, p: Population) -> Result<Vec<Candidate>, ApiError> {
    let plain = |id: String| Candidate { id, grade: None };
    Ok(match p {
        Population::Firms => {
            let cycle = state
                .credit
                .cycle_of_ms(chrono::Utc::now().timestamp_millis(), state.tz);
            super::credit::standings(state, cycle)
                .await?
                .into_iter()
                .map(|s| Candidate {
                    id: s.firm.id.as_str().to_string(),
                    grade: Some(s.grade),
                })
                .collect()
        }
        Population::Vehicles => state
            .store
            .vehicles()
            .await?
            .into_iter()
            .map(|v| plain(v.plate.as_str().to_string()))
            .collect(),
        Population::SourceSites | Population::DisposalSites => {
            let kind = if p == Population::SourceSites {
                FenceKind::SourceSite
            } else {
                FenceKind::DisposalSite
            };
            let fences = state.fences.load();
            fences
                .iter()
                .filter(|(_, f)| f.kind == kind)
                .map(|(_, f)| plain(f.id.clone()))
                .collect()
        }
    })
}

pub async fn create_draw(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    officials_only(&caller)?;
    let Json(body) = body?;
    let item = text(&body, "item", 200)?;
    let pop = text(&body, "population", 32)?;
    let population = Population::parse(pop).ok_or_else(|| {
        ApiError::unprocessable(format!(
            "population `{pop}` is not firms, vehicles, source_sites or disposal_sites"
        ))
    })?;
    let size = size(&body, population)?;
    let per_object = match body.get("inspectors_per_object") {
        None | Some(Value::Null) => 2,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=5) => n as usize,
            _ => {
                return Err(ApiError::unprocessable(
                    "`inspectors_per_object` must be 1..5",
                ))
            }
        },
    };
    let departments: Vec<Department> = match body.get("departments") {
        None | Some(Value::Null) => Department::ALL.to_vec(),
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|d| {
                d.as_str().and_then(Department::parse).ok_or_else(|| {
                    ApiError::unprocessable(format!("departments: {d} is not a department"))
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::unprocessable(
                "`departments` must be a non-empty list of departments",
            ))
        }
    };
    let seed = match body.get("seed") {
        None | Some(Value::Null) => {
            let mut b = [0u8; 8];
            getrandom::fill(&mut b).map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("no randomness for a seed: {e}"),
                )
            })?;
            u64::from_le_bytes(b) & SEED_MAX
        }
        Some(v) => match v.as_u64() {
            Some(s) if s <= SEED_MAX => s,
            _ => {
                return Err(ApiError::unprocessable(format!(
                    "`seed` must be an integer 0..{SEED_MAX}"
                )))
            }
        },
    };
    let objects = candidates(&state, population).await?;
    let pool = state
        .store
        .inspector_pool(today(&state), &departments)
        .await?;
    let hash = population_hash(&objects, &pool);
    let drawn = draw(&objects, &size, &pool, per_object, seed).map_err(ApiError::unprocessable)?;
    let id = state
        .store
        .record_draw(
            &NewDraw {
                item,
                population: population.as_str(),
                request: &body.to_string(),
                seed: seed as i64,
                population_hash: &hash,
                objects: &drawn,
            },
            chrono::Utc::now().timestamp_millis(),
        )
        .await?;
    tracing::info!(
        draw = id,
        seed,
        objects = drawn.len(),
        "inspection draw recorded"
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id, "item": item, "population": population.as_str(), "seed": seed,
            "population_hash": hash,
            "objects": drawn.iter().map(|o| json!({
                "id": o.id,
                "inspectors": o.inspectors.iter().map(|i| json!({"id": i.id, "department": i.department.as_str()})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })),
    ))
}

pub async fn record_result(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    officials_only(&caller)?;
    let Json(body) = body?;
    let object = text(&body, "object_id", 200)?;
    let result = text(&body, "result", 8)?;
    if result != "pass" && result != "fail" {
        return Err(ApiError::unprocessable(format!(
            "result `{result}` is not pass or fail"
        )));
    }
    let finding = match body.get("finding") {
        None | Some(Value::Null) => None,
        Some(_) => Some(text(&body, "finding", 4000)?),
    };
    let now = chrono::Utc::now().timestamp_millis();
    if !state
        .store
        .record_inspection_result(id, object, result, finding, now)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "draw {id} has no object `{object}`"
        )));
    }
    Ok(Json(
        json!({"draw_id": id, "object_id": object, "result": result, "finding": finding}),
    ))
}

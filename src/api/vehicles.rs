//! `POST /api/v1/vehicles` and `GET /api/v1/vehicles/{plate}/track`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::time::{format_ms, parse_param, DayEnd};
use super::{ApiError, ApiPath, AppState, Caller};
use crate::fix::{DeviceId, Fix};
use crate::identity::{FirmId, Plate, Vehicle};

/// Most fixes one track response carries.
const TRACK_MAX_FIXES: i64 = 100_000;

#[derive(Deserialize)]
pub struct NewVehicle {
    plate: String,
    device_id: String,
    firm_id: String,
    rated_load_t: f64,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewVehicle>, JsonRejection>,
) -> Result<(StatusCode, Json<Vehicle>), ApiError> {
    caller.require_admin()?;
    let Json(body) = body?;
    let plate = Plate::parse(body.plate.trim()).map_err(ApiError::unprocessable)?;
    let device_id = DeviceId::parse(&body.device_id).map_err(ApiError::unprocessable)?;
    let firm_id = FirmId::parse(&body.firm_id).map_err(ApiError::unprocessable)?;
    if !(body.rated_load_t.is_finite() && body.rated_load_t > 0.0 && body.rated_load_t <= 200.0) {
        return Err(ApiError::unprocessable(format!(
            "rated_load_t must be above 0 and at most 200 tonnes, got {}",
            body.rated_load_t
        )));
    }
    let vehicle = Vehicle {
        plate,
        device_id,
        firm_id,
        rated_load_t: body.rated_load_t,
    };
    state
        .store
        .create_vehicle(&vehicle, chrono::Utc::now().timestamp_millis())
        .await?;
    state.registry.upsert_vehicle(vehicle.clone());
    tracing::info!(plate = %vehicle.plate, device = %vehicle.device_id, "vehicle registered");
    Ok((StatusCode::CREATED, Json(vehicle)))
}

#[derive(Deserialize)]
pub struct TrackQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The vehicle's fixes as a GeoJSON LineString feature; the fixes
/// themselves, with every sensor value, are in `properties.fixes`.
pub async fn track(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(plate): ApiPath<String>,
    query: Result<Query<TrackQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query?;
    let from = parse_param("from", q.from.as_deref(), state.tz, DayEnd::Start)?.unwrap_or(i64::MIN);
    let to = parse_param("to", q.to.as_deref(), state.tz, DayEnd::End)?.unwrap_or(i64::MAX);
    let unknown = || ApiError::not_found(format!("no vehicle `{plate}`"));
    let parsed = Plate::parse(&plate).map_err(|_| unknown())?;
    let vehicle = state.store.vehicle(&parsed).await?.ok_or_else(unknown)?;
    if let Some(firm) = caller.0.firm() {
        if *firm != vehicle.firm_id {
            return Err(unknown());
        }
    }
    let fixes = state
        .store
        .track(vehicle.device_id.as_str(), from, to, TRACK_MAX_FIXES + 1)
        .await?;
    let truncated = fixes.len() as i64 > TRACK_MAX_FIXES;
    let fixes = &fixes[..fixes.len().min(TRACK_MAX_FIXES as usize)];
    let coordinates: Vec<[f64; 2]> = fixes.iter().map(|f| [f.lon, f.lat]).collect();
    Ok(Json(json!({
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coordinates},
        "properties": {
            "plate": vehicle.plate,
            "device_id": vehicle.device_id.as_str(),
            "firm_id": vehicle.firm_id,
            "count": fixes.len(),
            "truncated": truncated,
            "fixes": fixes.iter().map(|f| fix_json(f, state.tz)).collect::<Vec<_>>(),
        }
    })))
}

pub fn fix_json(f: &Fix, tz: chrono_tz::Tz) -> Value {
    json!({
        "ts": format_ms(f.ts_ms, tz), "lat": f.lat, "lon": f.lon, "speed_kmh": f.speed_kmh,
        "heading": f.heading, "acc": f.acc, "tipper_up": f.tipper_up,
        "cover_closed": f.cover_closed, "load_t": f.load_t,
    })
}

/// Percent-encodes text for a URL path or query value.
pub fn encode_path(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

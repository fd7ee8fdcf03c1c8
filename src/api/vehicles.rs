//! `POST /api/v1/vehicles` and `GET /api/v1/vehicles/{plate}/track`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::time::{format_ms, parse_param, DayEnd};
use super::{ApiError, ApiPath, AppState, Caller};
use crate::fix::{DeviceId, Fix};
use crate::identity::{FirmId, Plate, Vehicle};

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
    limit: Option<i64>,
    /// The continuation: only fixes after this time (UTC ms), as the
    /// previous page's `properties.next` says.
    after: Option<i64>,
}

/// A page of a track with `limit` fixes, at most [`TRACK_PAGE_MAX`] for
/// the bureau and [`TRACK_PAGE_MAX_FIRM`] for a firm (its tokens sit on
/// many machines; a page costs about 350 bytes a fix to serve).
pub const TRACK_PAGE_DEFAULT: i64 = 5_000;
pub const TRACK_PAGE_MAX: i64 = 10_000;
pub const TRACK_PAGE_MAX_FIRM: i64 = 2_000;

/// The vehicle's fixes in `[from, to]` as a GeoJSON LineString feature,
/// a page at a time: `properties.fixes` holds the stored telemetry of this
/// page in time order, `properties.next` the URL of the next page (null on
/// the last one; `truncated` says the same). Whatever the history, a
/// request reads and writes one page: the JSON is written fix by fix into
/// one buffer, never built as a tree.
pub async fn track(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(plate): ApiPath<String>,
    query: Result<Query<TrackQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    let from = parse_param("from", q.from.as_deref(), state.tz, DayEnd::Start)?.unwrap_or(i64::MIN);
    let to = parse_param("to", q.to.as_deref(), state.tz, DayEnd::End)?.unwrap_or(i64::MAX);
    let max = if caller.0.firm().is_some() {
        TRACK_PAGE_MAX_FIRM
    } else {
        TRACK_PAGE_MAX
    };
    let limit = q.limit.unwrap_or(TRACK_PAGE_DEFAULT.min(max));
    if !(1..=max).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1..{max} fixes a page, got {limit}; follow properties.next for more"
        )));
    }
    let unknown = || ApiError::not_found(format!("no vehicle `{plate}`"));
    let parsed = Plate::parse(&plate).map_err(|_| unknown())?;
    let vehicle = state.store.vehicle(&parsed).await?.ok_or_else(unknown)?;
    if let Some(firm) = caller.0.firm() {
        if *firm != vehicle.firm_id {
            return Err(unknown());
        }
    }
    let start = match q.after {
        Some(after) => from.max(after.saturating_add(1)),
        None => from,
    };
    let mut fixes = state
        .store
        .track(vehicle.device_id.as_str(), start, to, limit + 1)
        .await?;
    let more = fixes.len() as i64 > limit;
    fixes.truncate(limit as usize);
    let next = match (more, fixes.last()) {
        (true, Some(last)) => {
            let mut url = format!(
                "/api/v1/vehicles/{}/track?limit={limit}&after={}",
                encode_path(vehicle.plate.as_str()),
                last.ts_ms
            );
            for (name, value) in [("from", &q.from), ("to", &q.to)] {
                if let Some(v) = value {
                    url.push_str(&format!("&{name}={}", encode_path(v)));
                }
            }
            Some(url)
        }
        _ => None,
    };
    let body = track_json(&vehicle, &fixes, next.as_deref(), state.tz)
        .map_err(|e| ApiError::unprocessable(format!("cannot write the track: {e}")))?;
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

/// One fix of `properties.fixes`, borrowed for writing.
#[derive(serde::Serialize)]
struct FixOut<'a> {
    ts: &'a str,
    lat: f64,
    lon: f64,
    speed_kmh: f64,
    heading: Option<f64>,
    acc: Option<bool>,
    tipper_up: Option<bool>,
    cover_closed: Option<bool>,
    load_t: Option<f64>,
}

/// The page as GeoJSON text, written straight into one buffer.
fn track_json(
    vehicle: &Vehicle,
    fixes: &[Fix],
    next: Option<&str>,
    tz: chrono_tz::Tz,
) -> serde_json::Result<Vec<u8>> {
    use std::io::Write;
    let mut out: Vec<u8> = Vec::with_capacity(256 + fixes.len() * 250);
    out.extend_from_slice(br#"{"type":"Feature","geometry":{"type":"LineString","coordinates":["#);
    for (i, f) in fixes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &[f.lon, f.lat])?;
    }
    out.extend_from_slice(br#"]},"properties":{"plate":"#);
    serde_json::to_writer(&mut out, vehicle.plate.as_str())?;
    out.extend_from_slice(br#","device_id":"#);
    serde_json::to_writer(&mut out, vehicle.device_id.as_str())?;
    out.extend_from_slice(br#","firm_id":"#);
    serde_json::to_writer(&mut out, vehicle.firm_id.as_str())?;
    let _ = write!(
        out,
        r#","count":{},"truncated":{},"next":"#,
        fixes.len(),
        next.is_some()
    );
    serde_json::to_writer(&mut out, &next)?;
    out.extend_from_slice(br#","fixes":["#);
    for (i, f) in fixes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let ts = format_ms(f.ts_ms, tz);
        serde_json::to_writer(
            &mut out,
            &FixOut {
                ts: &ts,
                lat: f.lat,
                lon: f.lon,
                speed_kmh: f.speed_kmh,
                heading: f.heading,
                acc: f.acc,
                tipper_up: f.tipper_up,
                cover_closed: f.cover_closed,
                load_t: f.load_t,
            },
        )?;
    }
    out.extend_from_slice(b"]}}");
    Ok(out)
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

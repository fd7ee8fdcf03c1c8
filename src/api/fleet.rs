//! The live map: `GET /api/v1/vehicles` (a page of the fleet) and
//! `GET /api/v1/vehicles/stream` (the fleet once, then only what changed),
//! both read from memory: the registry's vehicles in plate order and the
//! live fleet detection's shards publish. No database query.
//!
//! Admins and departments see the whole fleet this instance serves (the
//! vehicles of its buckets), a firm its own vehicles. Each vehicle carries
//! its newest fix (`last_fix`, null if none), a `state` (`violating`: a
//! violation ongoing or ended within 10 min of its newest fix, `stale`,
//! `no_fix` or `ok`) and `open_violations` (the codes with an episode open).
//!
//! The stream is what the console's map draws from: an officer's map with
//! 10,000 trucks must not fetch 10,000 vehicles every few seconds, nor
//! redraw them all when one moves. Its events:
//! - `snapshot` `{"items": [...], "total": N}`: every vehicle the caller
//!   sees, as the list shows them; first, and again after a reconnect;
//! - `delta` `{"items": [...], "removed": [plates]}`: the vehicles whose
//!   position, state or open violations changed since the last event (and
//!   those that left the caller's fleet), at most one every
//!   [`DELTA_EVERY`], so a map applies changes at a steady rate however
//!   fast fixes arrive.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};

use super::auth::Bearer;
use super::export::{col, list_response, Column, ListFormat};
use super::time::format_ms;
use super::{ApiError, AppState, Caller, Paging};
use crate::identity::FirmId;
use crate::live::{LiveSnapshot, LiveVehicle};
use crate::rules::VehicleContext;

/// The least time between two `delta` events of a stream.
pub const DELTA_EVERY: Duration = Duration::from_millis(1000);

/// The newest fix as the live map shows it.
#[derive(Serialize)]
struct LastFix {
    ts: String,
    lat: f64,
    lon: f64,
    speed_kmh: f64,
}

/// One vehicle of the live map (an item of the list and of the stream).
#[derive(Serialize)]
struct Item<'a> {
    plate: &'a str,
    device_id: &'a str,
    firm_id: &'a str,
    rated_load_t: f64,
    state: &'static str,
    last_fix: Option<LastFix>,
    open_violations: Vec<&'static str>,
}

fn item<'a>(
    v: &'a VehicleContext,
    entry: Option<&LiveVehicle>,
    newest: i64,
    tz: chrono_tz::Tz,
) -> Item<'a> {
    Item {
        plate: v.plate.as_str(),
        device_id: v.device_id.as_str(),
        firm_id: v.firm_id.as_str(),
        rated_load_t: v.rated_load_t,
        state: entry.map_or("no_fix", |e| e.state(newest)),
        last_fix: entry.map(|e| LastFix {
            ts: format_ms(e.fix.ts_ms, tz),
            lat: e.fix.lat,
            lon: e.fix.lon,
            speed_kmh: e.fix.speed_kmh,
        }),
        open_violations: entry
            .map(|e| e.open_codes().map(|c| c.as_str()).collect())
            .unwrap_or_default(),
    }
}

/// Whether the caller sees vehicle `v` on this instance.
fn shown(state: &AppState, firm: Option<&FirmId>, v: &VehicleContext) -> bool {
    firm.is_none_or(|f| *f == v.firm_id) && state.buckets.contains(v.device_id.default_bucket())
}

/// The fleet sheet of an export.
const SHEET: &[Column] = &[
    col!("车牌", "/plate"),
    col!("终端号", "/device_id"),
    col!("运输企业", "/firm_id"),
    col!("核定载重(吨)", "/rated_load_t"),
    col!("状态", "/state"),
    col!("最后定位时间", "/last_fix/ts"),
    col!("纬度", "/last_fix/lat"),
    col!("经度", "/last_fix/lon"),
    col!("速度(km/h)", "/last_fix/speed_kmh"),
];

/// `GET /api/v1/vehicles`: a page of the live map (see the module's comment).
/// The JSON answer is written straight from the published state, without
/// an intermediate `Value` per vehicle.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    format: ListFormat,
    query: Result<Query<Paging>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(paging) = query?;
    let (limit, offset) = format.paging(paging)?;
    let firm = caller.0.firm();
    let fleet = state.registry.by_plate();
    let live = state.live.snapshot();
    let newest = live.newest_ms().unwrap_or(0);
    let visible = || fleet.iter().filter(|v| shown(&state, firm, v));
    let total = visible().count() as i64;
    let page = visible().skip(offset as usize).take(limit as usize);
    if format == ListFormat::Xlsx {
        let items: Vec<Value> = page
            .map(|v| json!(item(v, live.get(&v.device_id), newest, state.tz)))
            .collect();
        return list_response(format, items, total, offset, "vehicles", "车辆", SHEET).await;
    }
    let mut body = Vec::with_capacity(64 + 200 * limit.min(total) as usize);
    body.extend_from_slice(b"{\"items\":[");
    for (i, v) in page.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        write_item(
            &mut body,
            &item(v, live.get(&v.device_id), newest, state.tz),
        )?;
    }
    body.extend_from_slice(format!("],\"total\":{total}}}").as_bytes());
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

fn write_item(out: &mut Vec<u8>, item: &Item<'_>) -> Result<(), ApiError> {
    serde_json::to_writer(out, item).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("a vehicle could not be written: {e}"),
        )
    })
}

/// What the map shows of a vehicle, to tell whether it changed.
#[derive(Clone, Copy, PartialEq)]
struct Shown {
    ts_ms: i64,
    lat: f64,
    lon: f64,
    speed_kmh: f64,
    state: &'static str,
    open: u16,
}

fn shown_of(entry: Option<&LiveVehicle>, newest: i64) -> Option<Shown> {
    entry.map(|e| Shown {
        ts_ms: e.fix.ts_ms,
        lat: e.fix.lat,
        lon: e.fix.lon,
        speed_kmh: e.fix.speed_kmh,
        state: e.state(newest),
        open: e.open_bits(),
    })
}

/// One stream's memory of what it sent: each plate and what it showed.
struct Sent {
    shown: HashMap<Arc<str>, Option<Shown>>,
}

/// Renders the fleet the caller sees as a `snapshot` (everything, `sent`
/// empty) or a `delta` (what differs from `sent`); `sent` is brought up to
/// date. `None` for a delta with nothing in it.
fn render(
    state: &AppState,
    firm: Option<&FirmId>,
    fleet: &[Arc<VehicleContext>],
    live: &LiveSnapshot,
    sent: &mut Sent,
    snapshot: bool,
) -> Option<String> {
    let newest = live.newest_ms().unwrap_or(0);
    let mut items: Vec<Item<'_>> = Vec::new();
    let mut seen: HashMap<Arc<str>, Option<Shown>> = HashMap::with_capacity(sent.shown.len());
    for v in fleet.iter().filter(|v| shown(state, firm, v)) {
        let entry = live.get(&v.device_id);
        let now = shown_of(entry, newest);
        let plate: Arc<str> = match sent.shown.get_key_value(v.plate.as_str()) {
            Some((k, before)) => {
                if !snapshot && *before == now {
                    seen.insert(k.clone(), now);
                    continue;
                }
                k.clone()
            }
            None => Arc::from(v.plate.as_str()),
        };
        seen.insert(plate, now);
        items.push(item(v, entry, newest, state.tz));
    }
    let removed: Vec<&str> = sent
        .shown
        .keys()
        .filter(|p| !seen.contains_key(&***p))
        .map(|p| &**p)
        .collect();
    let out = if snapshot {
        let total = items.len();
        serde_json::to_string(&json!({"items": items, "total": total}))
    } else if items.is_empty() && removed.is_empty() {
        Ok(String::new())
    } else {
        serde_json::to_string(&json!({"items": items, "removed": removed}))
    };
    drop(items);
    sent.shown = seen;
    out.ok().filter(|s| !s.is_empty())
}

/// `GET /api/v1/vehicles/stream`: the live map as Server-Sent Events (see
/// the module's comment). Ends at shutdown; a client reconnects and gets a
/// fresh snapshot.
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    bearer: Bearer,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let firm = caller.0.firm().cloned();
    let versions = state.live.subscribe();
    let shutdown = state.shutdown.clone();
    let sent = Sent {
        shown: HashMap::new(),
    };
    let ended = bearer.clone().ended(state.clone());
    let events = stream::unfold(
        (state, firm, versions, shutdown, sent, true),
        move |(state, firm, mut versions, mut shutdown, mut sent, first)| {
            let bearer = bearer.clone();
            async move {
                loop {
                    if !first {
                        // At most one delta per DELTA_EVERY, and none until
                        // something was published.
                        let wait = async {
                            tokio::time::sleep(DELTA_EVERY).await;
                            versions.changed().await
                        };
                        let woke = tokio::select! {
                            _ = shutdown.wait_for(|s| *s) => return None,
                            r = wait => r,
                        };
                        if woke.is_err() {
                            return None;
                        }
                    }
                    // A revoked or expired token gets nothing more.
                    if !bearer.still_active(&state).await {
                        return None;
                    }
                    versions.borrow_and_update();
                    let fleet = state.registry.by_plate();
                    let live = state.live.snapshot();
                    let data = render(&state, firm.as_ref(), &fleet, &live, &mut sent, first);
                    if let Some(data) = data {
                        let event = Event::default()
                            .event(if first { "snapshot" } else { "delta" })
                            .data(data);
                        return Some((Ok(event), (state, firm, versions, shutdown, sent, false)));
                    }
                }
            }
        },
    );
    Sse::new(events.take_until(ended))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

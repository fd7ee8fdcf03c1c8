//! Rules about how and where the truck drives: NO_PERMIT, OUT_OF_HOURS,
//! ROUTE_DEVIATION, SPEEDING, COVER_OPEN.
//!
//! Duration rules ("for >= N s") measure event time from the first qualifying fix of
//! the run to the current one; one non-qualifying fix (a stop at a light, a fix back
//! in a site) ends the run. That is the contract's rule read literally, and the quiet
//! period keeps a truck that keeps stopping from raising a violation a minute.

use std::cell::RefCell;

use crate::geofence::{FenceIdx, FenceKind, DEFAULT_HALF_WIDTH_M};
use crate::permit::Permit;
use crate::violation::{Uncertainty, ViolationCode};

use super::episode::{Threshold, Verdict};
use super::noise::{self, RunEvidence};
use super::observe::Observation;
use super::{RuleEvent, Rules, VehicleState};

/// Moving without a permit valid today, outside the sites of its own permits (a truck
/// manoeuvring inside a site is not transporting), for `no_permit_s`.
/// Measured: seconds at raise time. No permit named, no fences.
pub(crate) fn check_no_permit(
    rules: &Rules,
    state: &mut VehicleState,
    obs: &Observation,
    out: &mut Vec<RuleEvent>,
) {
    let code = ViolationCode::NoPermit;
    let verdict = if obs.primary.is_none() && obs.moving && !obs.in_own_site {
        now(obs, Threshold::seconds(rules.config.no_permit_s))
    } else {
        Verdict::Clear
    };
    rules.settle(state, obs, code, verdict, out, |ep| {
        obs.violation(
            code,
            ep.started_ms,
            ep.duration_s(obs.ts_ms()),
            None,
            Vec::new(),
        )
    });
}

/// On a permit, moving outside every window of its valid permits and outside their
/// sites, for `out_of_hours_s`. Measured: seconds at raise time.
pub(crate) fn check_out_of_hours(
    rules: &Rules,
    state: &mut VehicleState,
    obs: &Observation,
    out: &mut Vec<RuleEvent>,
) {
    let code = ViolationCode::OutOfHours;
    let verdict = if obs.primary.is_some() && obs.moving && !obs.in_window && !obs.in_valid_site {
        now(obs, Threshold::seconds(rules.config.out_of_hours_s))
    } else {
        Verdict::Clear
    };
    rules.settle(state, obs, code, verdict, out, |ep| {
        obs.violation(
            code,
            ep.started_ms,
            ep.duration_s(obs.ts_ms()),
            obs.primary_id(),
            Vec::new(),
        )
    });
}

/// The nearest route of the valid permits, and how far the fix is outside corridors.
struct Offset<'a> {
    permit: &'a Permit,
    route: FenceIdx,
    /// Metres to the nearest route's centre line (the measured value).
    distance_m: f64,
    /// Smallest `distance - half_width` over all the routes: > 0 is off every corridor.
    margin_m: f64,
}

/// Distance to each route SEGMENT of the valid permits (each route with its own
/// half-width). `None` when no permit valid today names a route of the loaded set.
fn route_offset<'a>(obs: &Observation<'a>) -> Option<Offset<'a>> {
    let mut best: Option<Offset<'a>> = None;
    for permit in obs.valid_permits() {
        for id in &permit.routes {
            let Some(route) = obs.set.get(id) else {
                continue;
            };
            let fence = obs.set.fence(route);
            if fence.kind != FenceKind::Route {
                continue;
            }
            let Some((_, distance_m)) = obs.set.distance_to_routes(obs.p, &[route]) else {
                continue;
            };
            let margin_m = distance_m - fence.half_width_m.unwrap_or(DEFAULT_HALF_WIDTH_M);
            let better = match &best {
                None => true,
                Some(b) => margin_m < b.margin_m,
            };
            if better {
                best = Some(Offset {
                    permit,
                    route,
                    distance_m,
                    margin_m,
                });
            }
        }
    }
    best
}

/// On a permit, moving outside every corridor of its valid permits' routes and
/// outside their sites: distance to the nearest corridor segment > half-width for
/// `route_deviation_s` and `route_deviation_fixes`. Once raised, the truck is back on
/// route only below half-width - `route_hysteresis_m`; fixes in that band extend the
/// episode. (A run that has not been raised gets no such band: GPS jitter along a
/// corridor edge must not add up to a deviation.)
///
/// Standing still off route neither starts a run nor ends a raised episode: a truck
/// parked at its depot is not deviating, but one that took a wrong road and stops at
/// a light still is. (Unlike NO_PERMIT and OUT_OF_HOURS, which are about driving, this
/// is about where the truck is.)
///
/// Noise (`noise.rs`): a run is raised only once the mean of its fixes' distances past
/// the edge exceeds `noise_z_route·σ/√fixes`, σ the terminal's own noise; with a clean track
/// that is the contract's rule. A band fix still ends a run that was never raised.
///
/// Measured: metres from the nearest route's centre line, the mean over the run's
/// fixes up to the raise (where the truck most likely was: under noise the largest
/// single fix overstates it), with its band; fence: that route; permit: the one
/// naming it.
pub(crate) fn check_route_deviation(
    rules: &Rules,
    state: &mut VehicleState,
    obs: &Observation,
    out: &mut Vec<RuleEvent>,
) {
    let code = ViolationCode::RouteDeviation;
    let raised = state.episode(code).raised;
    // The common case, answered by the containment query alone.
    let offset = if obs.primary.is_none()
        || obs.in_valid_site
        || (!raised && (obs.in_valid_corridor || !obs.moving))
    {
        None
    } else {
        route_offset(obs)
    };
    let config = &rules.config;
    let (z, sigma_m) = (config.noise_z_route, state.noise.sigma_m(config));
    let verdict = match &offset {
        Some(o) if o.margin_m > 0.0 && obs.moving => {
            if !state.episode(code).in_run() {
                state.route_run = RunEvidence::default();
            }
            state.route_run.add(o.margin_m, o.distance_m);
            let threshold = if raised || state.route_run.proven(z, sigma_m) {
                Threshold {
                    min_ms: super::episode::secs_to_ms(config.route_deviation_s),
                    min_fixes: config.route_deviation_fixes,
                }
            } else {
                Threshold::NEVER // off the corridor, but not beyond the noise yet
            };
            Verdict::Qualifies {
                began_ms: obs.ts_ms(),
                value: o.distance_m,
                threshold,
            }
        }
        Some(o) if o.margin_m >= -config.route_hysteresis_m => Verdict::Holds,
        _ => Verdict::Clear,
    };
    let run = state.route_run;
    rules.settle(state, obs, code, verdict, out, |ep| {
        let (permit, fences) = match &offset {
            Some(o) => (Some(o.permit.id.as_str()), vec![obs.fence_id(o.route)]),
            None => (obs.primary_id(), Vec::new()),
        };
        let mean = if run.fixes > 0 {
            run.mean_value()
        } else {
            ep.peak
        };
        let band = run.band_m(z, sigma_m);
        let mut v = obs.violation(code, ep.started_ms, mean, permit, fences);
        v.uncertainty = Some(Uncertainty {
            sigma_m,
            confidence: noise::confidence(z),
            low: (mean - band).max(0.0),
            high: mean + band,
            fixes: run.fixes,
        });
        v
    });
}

/// The applicable limit: the lowest of the speed zones containing the fix (active,
/// should a zone ever carry a schedule), else the city default; with the zone.
///
/// Under noise (`noise.rs`) the truck gets the benefit of the doubt: a zone counts as
/// containing it only when the fix is at least `need_m` (`noise_z_zone·σ`) inside; when no
/// zone is that sure, the limit is the highest the truck may plausibly be under (the
/// city default, or a zone it is barely inside with a higher limit).
fn speed_limit(rules: &Rules, obs: &Observation, need_m: f64) -> (f64, Option<FenceIdx>) {
    let mut sure: Option<(f64, FenceIdx)> = None;
    let mut maybe: Option<(f64, FenceIdx)> = None;
    for zone in obs.inside_of(FenceKind::SpeedZone) {
        let fence = obs.set.fence(zone);
        let Some(zone_limit) = fence.speed_limit_kmh else {
            continue;
        };
        if !fence.is_active(obs.local) {
            continue;
        }
        if need_m <= 0.0 || obs.set.edge_distance(zone, obs.p) >= need_m {
            if sure.is_none_or(|(l, _)| zone_limit < l) {
                sure = Some((zone_limit, zone));
            }
        } else if maybe.is_none_or(|(l, _)| zone_limit > l) {
            maybe = Some((zone_limit, zone));
        }
    }
    let mut limit = match (sure, maybe) {
        (Some((l, z)), _) => return (l, Some(z)),
        (None, Some((l, z))) if l > rules.config.speed_default_kmh => (l, Some(z)),
        _ => (rules.config.speed_default_kmh, None),
    };
    if need_m > 0.0 && obs.fix.speed_kmh > limit.0 {
        // A zone with a higher limit just beside the fix: the truck may well be in it.
        NEAR.with(|cell| {
            let Ok(mut near) = cell.try_borrow_mut() else {
                return;
            };
            obs.set.candidates_near(obs.p, need_m, &mut near);
            for &zone in near.iter() {
                let fence = obs.set.fence(zone);
                if let (FenceKind::SpeedZone, Some(l)) = (fence.kind, fence.speed_limit_kmh) {
                    if l > limit.0
                        && fence.is_active(obs.local)
                        && !obs.inside.contains(&zone)
                        && obs.set.edge_distance(zone, obs.p) <= need_m
                    {
                        limit = (l, Some(zone));
                    }
                }
            }
        });
    }
    limit
}

thread_local! {
    /// Fences near a fix (speed zones it may be in), reused so the rules allocate nothing.
    static NEAR: RefCell<Vec<FenceIdx>> = RefCell::new(Vec::with_capacity(16));
}

/// Above the applicable limit for `speeding_s`. The speed is the terminal's own
/// (Doppler) report; where the truck is decides only the limit (see [`speed_limit`]).
/// Measured: the highest speed of the episode at raise time; fence: the zone whose
/// limit applied at the raise (none when it was the city default). Uncertainty: the
/// mean speed from the run's first fix to this one by positions alone (a straight
/// line, so at most the distance driven), with its band from the noise: an officer's
/// check that does not rest on the terminal's speed sensor.
pub(crate) fn check_speeding(
    rules: &Rules,
    state: &mut VehicleState,
    obs: &Observation,
    out: &mut Vec<RuleEvent>,
) {
    let code = ViolationCode::Speeding;
    let config = &rules.config;
    let (z, sigma_m) = (config.noise_z_zone, state.noise.sigma_m(config));
    let (limit, zone) = speed_limit(rules, obs, z * sigma_m);
    let verdict = if obs.fix.speed_kmh > limit {
        if !state.episode(code).in_run() {
            state.speed_run_start = Some((obs.p, obs.ts_ms()));
        }
        Verdict::Qualifies {
            began_ms: obs.ts_ms(),
            value: obs.fix.speed_kmh,
            threshold: Threshold::seconds(config.speeding_s),
        }
    } else {
        Verdict::Clear
    };
    let start = state.speed_run_start;
    rules.settle(state, obs, code, verdict, out, |ep| {
        let fences = zone.map(|z| vec![obs.fence_id(z)]).unwrap_or_default();
        let mut v = obs.violation(code, ep.started_ms, ep.peak, obs.primary_id(), fences);
        v.uncertainty = start.and_then(|(p0, t0)| {
            let dt_s = (obs.ts_ms() - t0) as f64 / 1000.0;
            (dt_s > 0.0).then(|| {
                let kmh = p0.distance(obs.p) / dt_s * 3.6;
                // the difference of two fixes: σ√2 per axis
                let band = z * sigma_m * std::f64::consts::SQRT_2 / dt_s * 3.6;
                Uncertainty {
                    sigma_m,
                    confidence: noise::confidence(z),
                    low: (kmh - band).max(0.0),
                    high: kmh + band,
                    fixes: ep.fixes,
                }
            })
        });
        v
    });
}

/// `cover_closed == false` while moving, for `cover_open_s`. A fix that does not
/// report the cover is not evidence of an open one. Measured: seconds at raise time.
pub(crate) fn check_cover_open(
    rules: &Rules,
    state: &mut VehicleState,
    obs: &Observation,
    out: &mut Vec<RuleEvent>,
) {
    let code = ViolationCode::CoverOpen;
    let verdict = if obs.fix.cover_closed == Some(false) && obs.moving {
        now(obs, Threshold::seconds(rules.config.cover_open_s))
    } else {
        Verdict::Clear
    };
    rules.settle(state, obs, code, verdict, out, |ep| {
        obs.violation(
            code,
            ep.started_ms,
            ep.duration_s(obs.ts_ms()),
            obs.primary_id(),
            Vec::new(),
        )
    });
}

/// The condition holds at this fix (duration rules: the value is unused).
fn now(obs: &Observation, threshold: Threshold) -> Verdict {
    Verdict::Qualifies {
        began_ms: obs.ts_ms(),
        value: 0.0,
        threshold,
    }
}

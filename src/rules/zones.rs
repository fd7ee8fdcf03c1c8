//! RESTRICTED_ZONE: inside a restricted zone while its schedule is in force (city
//! local time), on `restricted_fixes` consecutive fixes, or crossed by the straight
//! segment between two consecutive fixes.
//!
//! "Crossed" means the segment meets a zone that contains neither of its two fixes:
//! sparse fixes (one a minute at 60 km/h is a kilometre) must not skip a school. A
//! segment that merely ends or starts inside a zone is not a crossing, otherwise one
//! jittering fix inside a zone next to the road would raise on its own, and the
//! "consecutive fixes" rule would mean nothing. Segments across a silence or a jump
//! (TRACK_GAP) say nothing about where the truck went and are not looked at.
//!
//! Noise (`noise.rs`): fixes inside a zone raise only once their mean depth inside it
//! exceeds `noise_z_run·σ/√fixes` (σ the terminal's own noise), on top of the
//! contract's consecutive fixes: a fix that strays in from the road beside a school is
//! not an entry. A crossing counts only where the segment passes `noise_z_fix·σ` inside
//! the zone: two noisy fixes either side of a zone's corner are not a crossing.
//!
//! Measured: km/h, the highest reported speed of the episode at raise time (how fast
//! it went past the school); fences: the zones it was in or crossed at the raise;
//! uncertainty: the band of the mean depth inside the zone (metres), when fixes were
//! inside.

use crate::geofence::{FenceIdx, FenceKind, FenceSet, PlanePoint};
use crate::violation::{Uncertainty, ViolationCode};

use super::episode::{Threshold, Verdict};
use super::noise::{self, RunEvidence};
use super::observe::{local_time, Observation};
use super::{RuleEvent, Rules, VehicleState};

pub(crate) fn check_restricted(
    rules: &Rules,
    state: &mut VehicleState,
    obs: &Observation,
    crossed: &mut Vec<FenceIdx>,
    out: &mut Vec<RuleEvent>,
) {
    let code = ViolationCode::RestrictedZone;
    let set = obs.set;
    let active_here = |z: &FenceIdx| set.fence(*z).is_active(obs.local);
    let sigma_m = state.noise.sigma_m(&rules.config);
    let need_m = rules.config.noise_z_fix * sigma_m;
    crossed.clear();
    let mut crossing_began = None;
    if let Some(prev) = obs.prev.filter(|_| obs.continuous && !obs.jump) {
        set.areas_crossed(prev.p, obs.p, FenceKind::RestrictedZone, crossed);
        if !crossed.is_empty() {
            let prev_local = local_time(rules.tz, prev.ts_ms);
            crossed.retain(|z| {
                let zone = set.fence(*z);
                (zone.is_active(obs.local) || zone.is_active(prev_local))
                    && !obs.inside.contains(z)
                    && !set.contains(*z, prev.p)
                    && passes_deep(set, *z, prev.p, obs.p, need_m)
            });
            if !crossed.is_empty() {
                crossing_began = Some(prev.ts_ms);
            }
        }
    }
    // how deep inside an active zone the fix is (the deepest, if several)
    let depth_m = obs
        .inside_of(FenceKind::RestrictedZone)
        .filter(active_here)
        .map(|z| set.edge_distance(z, obs.p))
        .reduce(f64::max);
    let inside_active = depth_m.is_some();
    let z = rules.config.noise_z_run;
    if crossing_began.is_some() || inside_active {
        if !state.episode(code).in_run() {
            state.zone_run = RunEvidence::default();
        }
        if let Some(d) = depth_m {
            state.zone_run.add(d, d);
        }
    }
    let proven = state.episode(code).raised || state.zone_run.proven(z, sigma_m);
    let value = obs.fix.speed_kmh;
    let verdict = match crossing_began {
        // the zone lies between the two fixes: the episode starts at the earlier one
        Some(began_ms) => Verdict::Qualifies {
            began_ms,
            value,
            threshold: Threshold::IMMEDIATE,
        },
        None if inside_active => Verdict::Qualifies {
            began_ms: obs.ts_ms(),
            value,
            threshold: if proven {
                Threshold::fixes(rules.config.restricted_fixes)
            } else {
                Threshold::NEVER // inside, but not beyond the noise yet
            },
        },
        None => Verdict::Clear,
    };
    let crossed = &*crossed;
    let run = state.zone_run;
    rules.settle(state, obs, code, verdict, out, |ep| {
        let mut fences: Vec<String> = obs
            .inside_of(FenceKind::RestrictedZone)
            .filter(active_here)
            .chain(crossed.iter().copied())
            .map(|z| obs.fence_id(z))
            .collect();
        fences.sort();
        fences.dedup();
        let mut v = obs.violation(code, ep.started_ms, ep.peak, obs.primary_id(), fences);
        v.uncertainty = (run.fixes > 0).then(|| {
            let (depth, band) = (run.mean_value(), run.band_m(z, sigma_m));
            Uncertainty {
                sigma_m,
                confidence: noise::confidence(z),
                low: (depth - band).max(0.0),
                high: depth + band,
                fixes: run.fixes,
            }
        });
        v
    });
}

/// Whether the straight segment a-b goes at least `need_m` deep into the zone somewhere
/// (looked at every 10 m or so; only asked about segments that meet the zone).
fn passes_deep(set: &FenceSet, zone: FenceIdx, a: PlanePoint, b: PlanePoint, need_m: f64) -> bool {
    if need_m <= 0.0 {
        return true;
    }
    let n = ((a.distance(b) / 10.0).ceil() as usize).clamp(2, 256);
    (1..n).any(|i| {
        let t = i as f64 / n as f64;
        let q = PlanePoint::new(a.x + t * (b.x - a.x), a.y + t * (b.y - a.y));
        set.contains(zone, q) && set.edge_distance(zone, q) >= need_m
    })
}

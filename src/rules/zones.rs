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
//! Measured: km/h, the highest reported speed of the episode at raise time (how fast
//! it went past the school); fences: the zones it was in or crossed at the raise.

use crate::geofence::{FenceIdx, FenceKind};
use crate::violation::ViolationCode;

use super::episode::{Threshold, Verdict};
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
            });
            if !crossed.is_empty() {
                crossing_began = Some(prev.ts_ms);
            }
        }
    }
    let inside_active = obs
        .inside_of(FenceKind::RestrictedZone)
        .any(|z| active_here(&z));
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
            threshold: Threshold::fixes(rules.config.restricted_fixes),
        },
        None => Verdict::Clear,
    };
    let crossed = &*crossed;
    rules.settle(state, obs, code, verdict, out, |ep| {
        let mut fences: Vec<String> = obs
            .inside_of(FenceKind::RestrictedZone)
            .filter(active_here)
            .chain(crossed.iter().copied())
            .map(|z| obs.fence_id(z))
            .collect();
        fences.sort();
        fences.dedup();
        obs.violation(code, ep.started_ms, ep.peak, obs.primary_id(), fences)
    });
}

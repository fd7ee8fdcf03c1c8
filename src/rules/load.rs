//! OVERLOAD (一超四罚): load readings above the vehicle's rated load on
//! `overload_fixes` consecutive readings. A fix without a load reading neither counts
//! nor breaks the run (terminals without a scale never report one; those with one
//! sometimes skip a reading). A rated load of 0 or less means "unknown": not checked.
//!
//! Measured: tonnes, the highest reading of the episode at raise time. Fence: the
//! source site of its permit, the freight source unit that is one of the four parties
//! penalised (else a source site the truck is in, else none).

use crate::geofence::FenceKind;
use crate::violation::ViolationCode;

use super::episode::{Threshold, Verdict};
use super::observe::Observation;
use super::{RuleEvent, Rules, VehicleState};

pub(crate) fn check_overload(
    rules: &Rules,
    state: &mut VehicleState,
    obs: &Observation,
    out: &mut Vec<RuleEvent>,
) {
    let code = ViolationCode::Overload;
    let rated = obs.ctx.rated_load_t;
    let verdict = match obs.fix.load_t {
        _ if !(rated.is_finite() && rated > 0.0) => Verdict::Clear,
        None => Verdict::Unknown,
        Some(load) if load > rated => Verdict::Qualifies {
            began_ms: obs.ts_ms(),
            value: load,
            threshold: Threshold::fixes(rules.config.overload_fixes),
        },
        Some(_) => Verdict::Clear,
    };
    rules.settle(state, obs, code, verdict, out, |ep| {
        let source = match obs.primary {
            Some(p) => Some(p.source_site.clone()),
            None => obs
                .inside_of(FenceKind::SourceSite)
                .next()
                .map(|s| obs.fence_id(s)),
        };
        obs.violation(
            code,
            ep.started_ms,
            ep.peak,
            obs.primary_id(),
            source.into_iter().collect(),
        )
    });
}

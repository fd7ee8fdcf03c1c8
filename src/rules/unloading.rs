//! Unloading in the wrong place: ILLEGAL_DUMPING (outside every disposal site and
//! every source site) and WRONG_DISPOSAL_SITE (inside a disposal site that is not its
//! permit's).
//!
//! The unloading signal is either the tipper up on `dumping_tipper_fixes`
//! consecutive fixes, or the load falling by `dumping_load_drop` of itself between two
//! consecutive load readings (from at least `dumping_min_load_t`). A drop is seen
//! between two fixes, so its episode starts at the earlier one (the evidence shows
//! the load before and after) and is raised at once. A drop after a fix in a place
//! where unloading is allowed is blamed on that place: a truck that tips at its
//! disposal site and is outside it by the next fix has not dumped illegally.
//!
//! "Its permit's" disposal sites are those of its permits valid today. A vehicle with
//! none valid raises no WRONG_DISPOSAL_SITE: unloading at a licensed disposal site
//! without a permit is NO_PERMIT's business only (the contract), so for it every
//! disposal site counts as a place where unloading is allowed.
//!
//! Measured: tonnes unloaded, the load before the run began minus the load at raise
//! time (0 without load readings). Fences: WRONG_DISPOSAL_SITE the site used.

use crate::geofence::{FenceIdx, FenceKind};
use crate::violation::ViolationCode;

use super::episode::{Threshold, Verdict};
use super::observe::Observation;
use super::{RuleEvent, Rules, VehicleState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// One of its disposal sites, or any source site.
    Allowed,
    /// A disposal site that is not its permit's.
    WrongSite(FenceIdx),
    /// Anywhere else.
    Outside,
}

fn place(obs: &Observation) -> Place {
    let any_valid = obs.primary.is_some();
    let mut wrong = None;
    for site in obs.inside_of(FenceKind::DisposalSite) {
        let id = &obs.set.fence(site).id;
        let ours = !any_valid
            || obs
                .ctx
                .permits
                .iter()
                .filter(|p| p.valid_on(obs.date()))
                .any(|p| &p.disposal_site == id);
        if ours {
            return Place::Allowed;
        }
        wrong = Some(site);
    }
    match wrong {
        Some(site) => Place::WrongSite(site),
        None if obs.inside_of(FenceKind::SourceSite).next().is_some() => Place::Allowed,
        None => Place::Outside,
    }
}

/// Runs both codes; returns whether unloading is allowed where this fix is (kept for
/// the next fix's drop check).
pub(crate) fn check(
    rules: &Rules,
    state: &mut VehicleState,
    obs: &Observation,
    out: &mut Vec<RuleEvent>,
) -> bool {
    let config = &rules.config;
    let here = place(obs);
    let prev = obs.prev.filter(|_| obs.continuous);
    let load_before = prev.and_then(|p| p.load_t);
    let dropped = match (prev, load_before, obs.fix.load_t) {
        (Some(p), Some(before), Some(after)) => {
            !p.unloading_allowed
                && before >= config.dumping_min_load_t
                && before - after >= config.dumping_load_drop * before
        }
        _ => false,
    };
    let tipper = obs.fix.tipper_up == Some(true);
    let signal = if dropped {
        Some((prev.map_or(obs.ts_ms(), |p| p.ts_ms), Threshold::IMMEDIATE))
    } else if tipper {
        Some((obs.ts_ms(), Threshold::fixes(config.dumping_tipper_fixes)))
    } else {
        None
    };
    let load_now = obs.fix.load_t.or(load_before);
    let verdict_for = |wanted: bool| match signal {
        Some((began_ms, threshold)) if wanted => Verdict::Qualifies {
            began_ms,
            value: 0.0,
            threshold,
        },
        _ => Verdict::Clear,
    };
    let unloaded = |baseline: Option<f64>| match (baseline, load_now) {
        (Some(before), Some(now)) => (before - now).max(0.0),
        _ => 0.0,
    };

    for (code, wanted) in [
        (ViolationCode::IllegalDumping, here == Place::Outside),
        (
            ViolationCode::WrongDisposalSite,
            matches!(here, Place::WrongSite(_)),
        ),
    ] {
        let episode = state.episode(code);
        if !episode.in_run() {
            // the load before unloading began: the previous reading, else this one
            episode.baseline = load_before.or(obs.fix.load_t);
        }
        rules.settle(state, obs, code, verdict_for(wanted), out, |ep| {
            let fences = match here {
                Place::WrongSite(site) => vec![obs.fence_id(site)],
                _ => Vec::new(),
            };
            obs.violation(
                code,
                ep.started_ms,
                unloaded(ep.baseline),
                obs.primary_id(),
                fences,
            )
        });
    }
    here == Place::Allowed
}

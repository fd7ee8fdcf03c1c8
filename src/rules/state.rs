//! Per-vehicle state of the rule engine: the last fix (a summary, not the fix) and one
//! [`Episode`] per code. Fixed size, no heap: a city's fleet fits in a few MB, and
//! nothing grows with the length of a track.

use crate::geofence::PlanePoint;
use crate::violation::ViolationCode;

use super::episode::Episode;
use super::noise::{NoiseEstimate, RunEvidence};

/// What the rules remember of the previous fix of a vehicle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LastFix {
    pub ts_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub moving: bool,
    /// The fix in the plane of the fence set it was processed with, and that plane's
    /// origin: a projection is fully defined by its origin, so the point can be reused
    /// for as long as the origin is the same, even across fence reloads.
    pub plane: PlanePoint,
    pub plane_origin: (f64, f64),
    /// The latest load reading (carried over fixes without one).
    pub load_t: Option<f64>,
    /// The fix was somewhere unloading is allowed (its disposal site, a source site),
    /// so that a load found lower at the next fix is blamed on that place.
    pub unloading_allowed: bool,
}

/// The rule engine's memory of one vehicle. Owned by whoever owns the vehicle's fixes
/// (one shard task), so no locking. `Default` is the state of a vehicle never seen.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct VehicleState {
    pub(crate) last: Option<LastFix>,
    pub(crate) episodes: [Episode; ViolationCode::ALL.len()],
    /// The terminal's GPS noise, learnt from its track.
    pub(crate) noise: NoiseEstimate,
    /// The fixes of the current ROUTE_DEVIATION run, summed.
    pub(crate) route_run: RunEvidence,
    /// Where and when the current SPEEDING run began (the speed from positions).
    pub(crate) speed_run_start: Option<(PlanePoint, i64)>,
}

impl VehicleState {
    pub(crate) fn episode(&mut self, code: ViolationCode) -> &mut Episode {
        &mut self.episodes[code.index()]
    }

    /// Time of the last fix processed (later fixes only move state forward).
    pub fn last_fix_ms(&self) -> Option<i64> {
        self.last.map(|l| l.ts_ms)
    }

    /// Episodes raised and not yet ended: `(code, started_ms, last qualifying fix)`.
    /// For a clean shutdown, or to show what a vehicle is "in" right now.
    pub fn open_episodes(&self) -> impl Iterator<Item = (ViolationCode, i64, i64)> + '_ {
        ViolationCode::ALL
            .into_iter()
            .zip(self.episodes.iter())
            .filter(|(_, e)| e.raised)
            .map(|(c, e)| (c, e.started_ms, e.last_ms))
    }

    /// Bytes this state occupies: its size plus the heap it owns (none).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<VehicleState>() + self.heap_bytes()
    }

    /// Heap owned by the state: none by design (no Vec of fixes, no strings).
    pub fn heap_bytes(&self) -> usize {
        0
    }
}

//! The fleet simulator behind `muckwatch-sim` and `muckwatch demo`, with ground truth
//! and scoring (`muckwatch score`).
//!
//! A run ([`SimConfig`]) casts a fleet over the loaded city ([`scenario`]): every truck
//! has a permit for one route, loads at its source site, follows the route's polyline
//! at the speed an honest driver keeps there (under every limit, slower in bends,
//! stopping at sites), unloads at its disposal site with the tipper up and drives
//! back, trip after trip, in simulated time from the chosen start. Some trucks are
//! scripted to break one rule at a time, each time clearly past the thresholds in
//! force; the simulator records the truth of what they did from their true state,
//! second by second ([`truth`]). Terminals report every interval with GPS noise
//! ([`noise`]); [`publish`] sends the fixes in time order to any broker; [`seed`]
//! registers firms, vehicles and permits through muckwatch's HTTP API; [`terminal`]
//! drives chosen trucks over JT/T 808 instead (`--protocol jt808`); [`score`]
//! compares what muckwatch detected with the truth.
//!
//! Internals: `route.rs` (paths and honest speed profiles), `drive.rs` (following a
//! path second by second), `inject.rs` (where each scripted behaviour fits), `plan.rs`
//! (trips and their steps), `truck.rs` (a truck and its terminal), `oracle.rs` (the
//! truth, judged from the true state), `fleet.rs` (the fleet in time order).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use muckwatch::geofence::FenceSet;
//! use muckwatch::sim::{Fleet, SimConfig};
//! let fences = Arc::new(FenceSet::load_dir("geofences".as_ref())?);
//! let mut fleet = Fleet::plan(fences, &SimConfig::default()).map_err(anyhow::Error::msg)?;
//! let fixes = fleet.run_dry(); // or muckwatch::sim::publish::publish(&mut fleet, &options)
//! let truth = fleet.finish();
//! # Ok(()) }
//! ```

pub mod demo;
mod drive;
pub mod fleet;
mod inject;
pub mod noise;
mod oracle;
mod plan;
pub mod publish;
pub mod route;
pub mod scenario;
pub mod score;
pub mod seed;
pub mod terminal;
mod truck;
pub mod truth;

pub use fleet::Fleet;
pub use publish::{publish, Jt808Drive, PublishOptions, PublishSummary};
pub use scenario::{Injections, Role, SimConfig};
pub use truck::SimFix;
pub use truth::{FleetHeader, TruthEntry};

use crate::violation::ViolationCode;

/// Truth entries per code, in `ViolationCode::ALL` order (for summaries).
pub fn count_by_code(entries: &[TruthEntry]) -> [usize; ViolationCode::ALL.len()] {
    let mut n = [0; ViolationCode::ALL.len()];
    for e in entries {
        n[e.code.index()] += 1;
    }
    n
}

/// `SPEEDING 4, COVER_OPEN 2, ...` (codes with at least one entry).
pub fn describe_counts(counts: &[usize; ViolationCode::ALL.len()]) -> String {
    let parts: Vec<String> = ViolationCode::ALL
        .into_iter()
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

//! Geofence engine: owns the fences in force and answers the per-fix spatial questions
//! of the rule engine.
//!
//! - `load.rs`: `geofences/*.geojson` -> checked features; a bad file is refused whole
//!   with file, feature id and reason ([`FenceError`]).
//! - [`projection`]: WGS-84 -> a transverse Mercator plane centred on the city, so every
//!   distance is in metres (error < 0.5 m against geodesic distance within 50 km).
//! - [`FenceSet`] (`index.rs`, `query.rs`): immutable R-tree index; "which fences contain
//!   this point", "distance to the nearest segment of these routes", "does the segment
//!   between two fixes cross this zone"; none of these allocate.
//! - [`FenceHandle`] / [`spawn_reloader`]: atomic swap on reload (mtime polling, SIGHUP).
//! - [`check`]: the `muckwatch fences check` command.
//!
//! Internals: `geometry.rs` (projecting and validating shapes), `pip.rs` (banded
//! point-in-polygon), `tree.rs` (R-tree entries and allocation-free walks),
//! `schedule.rs` (weekly windows of restricted zones).
//!
//! Usage on the hot path:
//! ```
//! use muckwatch::geofence::{FenceHandle, FenceSet};
//! let handle = FenceHandle::new(FenceSet::empty());
//! let set = handle.load(); // keep this Arc for the batch
//! let mut inside = Vec::with_capacity(16);
//! let p = set.project(33.38, 120.16);
//! set.containing(p, &mut inside);
//! assert!(inside.is_empty());
//! ```

pub mod check;
mod geometry;
mod index;
mod load;
mod model;
mod pip;
pub mod projection;
mod query;
mod reload;
mod schedule;
mod tree;

pub use check::run_check;
pub use index::FenceSet;
pub use load::FenceError;
pub use model::{Fence, FenceIdx, FenceKind, Shape, DEFAULT_HALF_WIDTH_M};
pub use projection::{PlanePoint, Projection};
pub use reload::{load_at_start, reload_now, spawn_reloader, FenceHandle};
pub use schedule::{Schedule, Window};

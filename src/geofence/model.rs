//! What a loaded fence is: its identity and properties (from the file) and its shape
//! in the local metric plane (projected once at load time).

use std::fmt;
use std::str::FromStr;

use geo::{MultiLineString, MultiPolygon};

use super::projection::PlanePoint;
pub use super::schedule::Schedule;

/// Corridor half-width when a route does not say (contract: 50 m).
pub const DEFAULT_HALF_WIDTH_M: f64 = 50.0;

/// The `kind` property of a fence (contract values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FenceKind {
    SourceSite,
    DisposalSite,
    Route,
    RestrictedZone,
    SpeedZone,
}

impl FenceKind {
    pub const ALL: [FenceKind; 5] = [
        FenceKind::SourceSite,
        FenceKind::DisposalSite,
        FenceKind::Route,
        FenceKind::RestrictedZone,
        FenceKind::SpeedZone,
    ];

    /// The wire spelling, e.g. `"source_site"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FenceKind::SourceSite => "source_site",
            FenceKind::DisposalSite => "disposal_site",
            FenceKind::Route => "route",
            FenceKind::RestrictedZone => "restricted_zone",
            FenceKind::SpeedZone => "speed_zone",
        }
    }

    /// Areas are everything but routes (routes are corridors around lines).
    pub fn is_area(self) -> bool {
        self != FenceKind::Route
    }
}

impl fmt::Display for FenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FenceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FenceKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!(
                "unknown kind {s:?} (expected source_site, disposal_site, route, restricted_zone or speed_zone)"
            )
        })
    }
}

/// Handle of a fence inside one [`FenceSet`](super::FenceSet): a small copyable index,
/// so the hot path passes integers instead of strings. Only valid for the set that
/// issued it; after a reload, look ids up again with `FenceSet::get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FenceIdx(pub u32);

impl FenceIdx {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A fence's geometry in the local plane (metres).
#[derive(Debug, Clone)]
pub enum Shape {
    /// Polygon(s), holes allowed; the boundary belongs to the area.
    Area(MultiPolygon<f64>),
    /// A Point feature with `radius_m`.
    Circle { centre: PlanePoint, radius_m: f64 },
    /// A route: every point within `half_width_m` of one of the lines.
    Corridor {
        lines: MultiLineString<f64>,
        half_width_m: f64,
    },
}

/// One loaded fence. Fields mirror the contract's feature properties.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Fence {
    pub id: String,
    pub kind: FenceKind,
    pub name: String,
    /// Routes only; the default (50 m) filled in when the file omits it.
    pub half_width_m: Option<f64>,
    pub speed_limit_kmh: Option<f64>,
    /// Circles only.
    pub radius_m: Option<f64>,
    /// `None` = always in force.
    pub schedule: Option<Schedule>,
    /// File the fence came from (for messages), e.g. `zones.geojson`.
    pub file: String,
    pub(crate) shape: Shape,
    /// The geometry in WGS-84 as read (for answers in GeoJSON's own terms, see `check`).
    pub(crate) raw: super::load::RawGeom,
    /// The feature as it was read (WGS-84), served back by `to_geojson`.
    pub(crate) feature: geojson::Feature,
}

impl Fence {
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The original GeoJSON feature (WGS-84 geometry and all properties).
    pub fn feature(&self) -> &geojson::Feature {
        &self.feature
    }

    /// Whether the fence applies at this local time (no schedule = always).
    pub fn is_active(&self, local: chrono::NaiveDateTime) -> bool {
        self.schedule.as_ref().is_none_or(|s| s.is_active(local))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_kinds_in_declaration_order() {
        for (i, k) in FenceKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
            assert_eq!(k.as_str().parse::<FenceKind>(), Ok(*k));
        }
    }
}

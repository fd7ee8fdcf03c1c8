//! The roads the simulated trucks drive: a polyline in the fence set's metric plane
//! with, every [`SAMPLE_M`] metres, the speed an honest driver keeps there.
//!
//! An honest driver's speed cap is worked out once per path, not per second:
//! - the applicable limit (the lowest speed zone containing the point, else the city
//!   default), taken as the lowest within [`LIMIT_BUFFER_M`] ahead or behind, so
//!   the driver has slowed down before a zone starts and speeds up only once well out
//!   of it (a noisy fix a few metres inside a 30 km/h zone must not catch a truck
//!   still doing 32), minus [`SPEED_MARGIN_KMH`];
//! - bends: a turn of θ degrees at a vertex caps the speed around it (a 90° junction
//!   is taken at about 12 km/h);
//! - acceleration and braking at [`ACCEL_MS2`], by one pass each way, so the cap is
//!   something a truck can actually follow in either direction.

use std::sync::Arc;

use crate::geofence::{FenceIdx, FenceKind, FenceSet, PlanePoint, Shape};

/// Spacing of the speed samples along a path.
pub const SAMPLE_M: f64 = 10.0;
/// Honest drivers stay this far under every limit (the terminals' speed noise is
/// 0.5 km/h, so this is more than 10 sigma).
pub const SPEED_MARGIN_KMH: f64 = 8.0;
/// A zone's limit applies this far before and after its edge.
pub const LIMIT_BUFFER_M: f64 = 80.0;
/// Gentle acceleration and braking of a loaded truck.
pub const ACCEL_MS2: f64 = 0.5;
/// No honest cap is below this (a bend's speed).
const MIN_CAP_KMH: f64 = 12.0;

/// A polyline in the plane, with its honest speed profile.
#[derive(Debug)]
pub struct Path {
    pts: Vec<PlanePoint>,
    /// Arc length at each vertex.
    cum: Vec<f64>,
    /// Limit (km/h) at each sample, as the zones say, without buffer or margin.
    limit_kmh: Vec<f64>,
    /// Honest speed cap (m/s) at each sample.
    cap_ms: Vec<f64>,
}

impl Path {
    /// `None` for fewer than two distinct points.
    pub fn new(points: &[PlanePoint], fences: &FenceSet, city_limit_kmh: f64) -> Option<Path> {
        let mut pts: Vec<PlanePoint> = Vec::with_capacity(points.len());
        for &p in points {
            if p.is_finite() && pts.last().is_none_or(|q: &PlanePoint| q.distance(p) > 0.5) {
                pts.push(p);
            }
        }
        if pts.len() < 2 {
            return None;
        }
        let mut cum = vec![0.0];
        for w in pts.windows(2) {
            cum.push(cum[cum.len() - 1] + w[0].distance(w[1]));
        }
        let mut path = Path {
            pts,
            cum,
            limit_kmh: Vec::new(),
            cap_ms: Vec::new(),
        };
        let n = (path.length() / SAMPLE_M).ceil() as usize + 1;
        let mut scratch = Vec::new();
        path.limit_kmh = (0..n)
            .map(|i| {
                speed_limit_at(
                    fences,
                    path.point(i as f64 * SAMPLE_M),
                    city_limit_kmh,
                    &mut scratch,
                )
            })
            .collect();
        path.cap_ms = path.honest_caps();
        Some(path)
    }

    pub fn length(&self) -> f64 {
        self.cum[self.cum.len() - 1]
    }

    pub fn points(&self) -> &[PlanePoint] {
        &self.pts
    }

    /// Index of the segment that holds arc length `s` (clamped to the path).
    fn segment(&self, s: f64) -> usize {
        let i = self.cum.partition_point(|&c| c <= s);
        i.clamp(1, self.pts.len() - 1) - 1
    }

    pub fn point(&self, s: f64) -> PlanePoint {
        let i = self.segment(s);
        let (a, b) = (self.pts[i], self.pts[i + 1]);
        let len = self.cum[i + 1] - self.cum[i];
        let f = ((s - self.cum[i]) / len).clamp(0.0, 1.0);
        PlanePoint::new(a.x + f * (b.x - a.x), a.y + f * (b.y - a.y))
    }

    /// Unit vector of travel (increasing `s`) at `s`.
    pub fn direction(&self, s: f64) -> (f64, f64) {
        let i = self.segment(s);
        let (a, b) = (self.pts[i], self.pts[i + 1]);
        let len = a.distance(b);
        ((b.x - a.x) / len, (b.y - a.y) / len)
    }

    /// The point `lateral_m` to the left of the path at `s` (negative: right).
    pub fn offset_point(&self, s: f64, lateral_m: f64) -> PlanePoint {
        let p = self.point(s);
        let (dx, dy) = self.direction(s);
        PlanePoint::new(p.x - dy * lateral_m, p.y + dx * lateral_m)
    }

    /// Compass bearing of travel at `s` (0 = north, 90 = east), optionally reversed.
    pub fn bearing_deg(&self, s: f64, reverse: bool) -> f64 {
        let (dx, dy) = self.direction(s);
        let b = dx.atan2(dy).to_degrees() + if reverse { 180.0 } else { 0.0 };
        b.rem_euclid(360.0)
    }

    fn sample(&self, s: f64) -> usize {
        ((s / SAMPLE_M).round().max(0.0) as usize).min(self.cap_ms.len() - 1)
    }

    /// The honest speed cap at `s`, m/s.
    pub fn cap_ms(&self, s: f64) -> f64 {
        let i = (s / SAMPLE_M).floor().max(0.0) as usize;
        let j = (i + 1).min(self.cap_ms.len() - 1);
        self.cap_ms[i.min(j)].min(self.cap_ms[j])
    }

    /// The limit the zones set at `s`, km/h (no buffer, no margin).
    pub fn limit_kmh(&self, s: f64) -> f64 {
        self.limit_kmh[self.sample(s)]
    }

    /// Lowest and highest zone limit over `[s0, s1]`.
    pub fn limit_range(&self, s0: f64, s1: f64) -> (f64, f64) {
        let (a, b) = (self.sample(s0.max(0.0)), self.sample(s1.min(self.length())));
        self.limit_kmh[a..=b.max(a)]
            .iter()
            .fold((f64::INFINITY, 0.0_f64), |(lo, hi), &l| {
                (lo.min(l), hi.max(l))
            })
    }

    /// Lowest honest cap over `[s0, s1]`, km/h.
    pub fn min_cap_kmh(&self, s0: f64, s1: f64) -> f64 {
        let (a, b) = (self.sample(s0.max(0.0)), self.sample(s1.min(self.length())));
        self.cap_ms[a..=b.max(a)]
            .iter()
            .fold(f64::INFINITY, |m, &v| m.min(v))
            * 3.6
    }

    /// The sharpest turn, in degrees, at a vertex strictly inside `(s0, s1)`: offsets
    /// from the centre line are only drawn along stretches without sharp turns, where
    /// "to the left of the road" stays a smooth line.
    pub fn max_turn_deg(&self, s0: f64, s1: f64) -> f64 {
        (1..self.pts.len() - 1)
            .filter(|&i| self.cum[i] > s0 && self.cum[i] < s1)
            .map(|i| self.turn_deg(i))
            .fold(0.0, f64::max)
    }

    fn turn_deg(&self, i: usize) -> f64 {
        let (a, b, c) = (self.pts[i - 1], self.pts[i], self.pts[i + 1]);
        let (ux, uy, vx, vy) = (b.x - a.x, b.y - a.y, c.x - b.x, c.y - b.y);
        (ux * vy - uy * vx)
            .atan2(ux * vx + uy * vy)
            .abs()
            .to_degrees()
    }

    /// Arc length of the point of the path nearest to `p`, and the distance.
    pub fn nearest(&self, p: PlanePoint) -> (f64, f64) {
        let mut best = (0.0, f64::INFINITY);
        for i in 0..self.pts.len() - 1 {
            let (a, b) = (self.pts[i], self.pts[i + 1]);
            let (dx, dy) = (b.x - a.x, b.y - a.y);
            let len2 = dx * dx + dy * dy;
            let t = (((p.x - a.x) * dx + (p.y - a.y) * dy) / len2).clamp(0.0, 1.0);
            let q = PlanePoint::new(a.x + t * dx, a.y + t * dy);
            let d = q.distance(p);
            if d < best.1 {
                best = (self.cum[i] + t * len2.sqrt(), d);
            }
        }
        best
    }

    fn honest_caps(&self) -> Vec<f64> {
        let n = self.limit_kmh.len();
        let w = (LIMIT_BUFFER_M / SAMPLE_M).ceil() as usize;
        let mut cap: Vec<f64> = (0..n)
            .map(|i| {
                let lo = self.limit_kmh[i.saturating_sub(w)..=(i + w).min(n - 1)]
                    .iter()
                    .fold(f64::INFINITY, |m, &l| m.min(l));
                (lo - SPEED_MARGIN_KMH).max(MIN_CAP_KMH) / 3.6
            })
            .collect();
        for i in 1..self.pts.len() - 1 {
            let theta = self.turn_deg(i);
            if theta < 10.0 {
                continue;
            }
            let bend_ms = (50.0 - 0.42 * theta).max(MIN_CAP_KMH) / 3.6;
            let centre = self.cum[i] / SAMPLE_M;
            let (a, b) = (
                (centre - 2.0).floor().max(0.0) as usize,
                ((centre + 2.0).ceil() as usize).min(n - 1),
            );
            for c in &mut cap[a..=b] {
                *c = c.min(bend_ms);
            }
        }
        let dv2 = 2.0 * ACCEL_MS2 * SAMPLE_M;
        for i in 1..n {
            cap[i] = cap[i].min((cap[i - 1] * cap[i - 1] + dv2).sqrt());
        }
        for i in (0..n - 1).rev() {
            cap[i] = cap[i].min((cap[i + 1] * cap[i + 1] + dv2).sqrt());
        }
        cap
    }
}

/// The speed limit at a point, as the rules apply it: the lowest of the speed zones
/// containing it (the 60 km/h ring raises it), else the city default. Speed zones with
/// a schedule are taken as always on: the honest driver is careful, and the sample
/// city has none.
pub fn speed_limit_at(
    fences: &FenceSet,
    p: PlanePoint,
    city_kmh: f64,
    scratch: &mut Vec<FenceIdx>,
) -> f64 {
    fences.containing(p, scratch);
    let zoned = scratch
        .iter()
        .filter_map(|&i| {
            let f = fences.fence(i);
            (f.kind == FenceKind::SpeedZone)
                .then_some(f.speed_limit_kmh)
                .flatten()
        })
        .fold(f64::INFINITY, f64::min);
    if zoned.is_finite() {
        zoned
    } else {
        city_kmh
    }
}

/// A route corridor of the fence set, oriented from its source site to its disposal site.
#[derive(Debug, Clone)]
pub struct Route {
    pub id: String,
    pub idx: FenceIdx,
    pub source: String,
    pub disposal: String,
    pub half_width_m: f64,
    pub path: Arc<Path>,
}

/// Every route of the set that is a single line starting in a source site and ending in
/// a disposal site (either way round), in load order.
pub fn routes(fences: &FenceSet, city_limit_kmh: f64) -> Vec<Route> {
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    let mut site_at = |p: PlanePoint, kind: FenceKind| {
        fences.containing(p, &mut scratch);
        scratch
            .iter()
            .map(|&i| fences.fence(i))
            .find(|f| f.kind == kind)
            .map(|f| f.id.clone())
    };
    for (idx, fence) in fences.iter() {
        let Shape::Corridor {
            lines,
            half_width_m,
        } = fence.shape()
        else {
            continue;
        };
        let [line] = lines.0.as_slice() else { continue };
        let mut pts: Vec<PlanePoint> = line.0.iter().map(|&c| PlanePoint::from(c)).collect();
        let (Some(&first), Some(&last)) = (pts.first(), pts.last()) else {
            continue;
        };
        let ends = match (
            site_at(first, FenceKind::SourceSite),
            site_at(last, FenceKind::DisposalSite),
        ) {
            (Some(s), Some(d)) => Some((s, d)),
            _ => match (
                site_at(last, FenceKind::SourceSite),
                site_at(first, FenceKind::DisposalSite),
            ) {
                (Some(s), Some(d)) => {
                    pts.reverse();
                    Some((s, d))
                }
                _ => None,
            },
        };
        let Some((source, disposal)) = ends else {
            continue;
        };
        let Some(path) = Path::new(&pts, fences, city_limit_kmh) else {
            continue;
        };
        out.push(Route {
            id: fence.id.clone(),
            idx,
            source,
            disposal,
            half_width_m: *half_width_m,
            path: Arc::new(path),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn city() -> FenceSet {
        FenceSet::from_geojson_str(
            "t",
            r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","properties":{"id":"sz","kind":"speed_zone","speed_limit_kmh":30},
           "geometry":{"type":"Polygon","coordinates":[[[120.02,33.39],[120.03,33.39],[120.03,33.41],[120.02,33.41],[120.02,33.39]]]}}]}"#,
        )
        .expect("test city")
    }

    #[test]
    fn points_offsets_and_bearings_follow_the_polyline() {
        let set = FenceSet::empty();
        let p = Path::new(
            &[
                PlanePoint::new(0.0, 0.0),
                PlanePoint::new(1000.0, 0.0),
                PlanePoint::new(1000.0, 500.0),
            ],
            &set,
            40.0,
        )
        .expect("path");
        assert_eq!(p.length(), 1500.0);
        assert_eq!(p.point(1200.0), PlanePoint::new(1000.0, 200.0));
        assert_eq!(
            p.offset_point(500.0, 30.0),
            PlanePoint::new(500.0, 30.0),
            "left of eastbound is north"
        );
        assert!((p.bearing_deg(500.0, false) - 90.0).abs() < 1e-9);
        assert!((p.bearing_deg(1200.0, true) - 180.0).abs() < 1e-9);
        assert!((p.max_turn_deg(0.0, 1500.0) - 90.0).abs() < 1e-9);
        assert_eq!(p.max_turn_deg(0.0, 900.0), 0.0);
        let (s, d) = p.nearest(PlanePoint::new(400.0, -20.0));
        assert!((s - 400.0).abs() < 1e-9 && (d - 20.0).abs() < 1e-9);
    }

    #[test]
    fn honest_caps_respect_zones_with_a_buffer_and_slow_for_bends() {
        let set = city();
        let a = set.project(33.40, 120.00);
        let b = set.project(33.40, 120.05);
        let c = PlanePoint::new(b.x, b.y + 2000.0);
        let path = Path::new(&[a, b, c], &set, 40.0).expect("path");
        let zone_start = path.nearest(set.project(33.40, 120.02)).0;
        assert_eq!(path.limit_kmh(zone_start + 50.0), 30.0);
        assert_eq!(path.limit_kmh(zone_start - 50.0), 40.0);
        let cap = |s: f64| path.cap_ms(s) * 3.6;
        assert!(
            cap(zone_start - LIMIT_BUFFER_M + 5.0) <= 22.0 + 1e-9,
            "slowed before the zone"
        );
        assert!(cap(zone_start + 100.0) <= 22.0 + 1e-9);
        assert!(
            cap(1000.0) > 31.9 && cap(1000.0) <= 32.0 + 1e-9,
            "city default 40 minus margin"
        );
        let corner = path.nearest(b).0;
        assert!(
            cap(corner) <= 13.0,
            "a right-angle bend is taken slowly: {}",
            cap(corner)
        );
        // braking is gradual: at most ACCEL_MS2 over each sample
        for s in (0..path.length() as usize - 10).step_by(10) {
            let (v0, v1) = (path.cap_ms(s as f64), path.cap_ms(s as f64 + SAMPLE_M));
            assert!((v1 * v1 - v0 * v0).abs() <= 2.0 * ACCEL_MS2 * SAMPLE_M * 2.0 + 1e-6);
        }
    }

    #[test]
    fn sample_city_routes_run_from_source_to_disposal() {
        let set = FenceSet::load_dir(std::path::Path::new("geofences")).expect("sample city");
        let routes = routes(&set, 40.0);
        assert_eq!(routes.len(), 30);
        let mut scratch = Vec::new();
        for r in &routes {
            assert!(
                r.id.contains(&r.source) && r.id.contains(&r.disposal),
                "{} {} {}",
                r.id,
                r.source,
                r.disposal
            );
            let end = r.path.point(r.path.length());
            set.containing(end, &mut scratch);
            assert!(scratch.iter().any(|&i| set.fence(i).id == r.disposal));
        }
    }
}

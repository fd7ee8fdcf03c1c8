//! Where on a route each scripted behaviour can take place so that it means one thing
//! only. Every finder checks the place against the fences, with room for GPS noise:
//! a deviation that wandered into a speed zone or a site, a detour that clipped a
//! second restricted zone, would raise something nobody meant to inject, and the
//! score would blame the rules for the simulator's sloppiness.

use std::sync::Arc;

use super::noise::Rng;
use super::route::{Path, Route};
use crate::geofence::{FenceIdx, FenceKind, FenceSet, PlanePoint, Shape};

/// Lateral distance of a ROUTE_DEVIATION from the centre line (the contract's default
/// corridor is 50 m wide each side: six times that).
pub const DEVIATION_M: f64 = 300.0;
/// Off-route driving (deviations, detours) is slow: under every limit it may meet.
pub const OFF_ROUTE_KMH: f64 = 25.0;
/// Farthest a detour goes from its route to reach a restricted zone.
const MAX_DETOUR_M: f64 = 4000.0;

/// Checks places against the fences.
struct Probe<'a> {
    fences: &'a FenceSet,
    inside: Vec<FenceIdx>,
}

impl<'a> Probe<'a> {
    fn new(fences: &'a FenceSet) -> Probe<'a> {
        Probe {
            fences,
            inside: Vec::new(),
        }
    }

    /// No fence that matters for off-route driving within `radius` of `p` (the point
    /// and eight around it): no restricted zone, no site, no speed zone below 40 km/h.
    fn clear(&mut self, p: PlanePoint, radius: f64, allow_zone: Option<FenceIdx>) -> bool {
        (0..9).all(|k| {
            let q = if k == 0 {
                p
            } else {
                let a = f64::from(k) * std::f64::consts::FRAC_PI_4;
                PlanePoint::new(p.x + radius * a.cos(), p.y + radius * a.sin())
            };
            self.fences.containing(q, &mut self.inside);
            self.inside.iter().all(|&i| {
                let f = self.fences.fence(i);
                match f.kind {
                    FenceKind::Route => true,
                    FenceKind::SpeedZone => f.speed_limit_kmh.is_none_or(|l| l >= 40.0),
                    FenceKind::RestrictedZone => Some(i) == allow_zone,
                    FenceKind::SourceSite | FenceKind::DisposalSite => false,
                }
            })
        })
    }

    fn kinds_at(&mut self, p: PlanePoint, kind: FenceKind) -> Vec<FenceIdx> {
        self.fences.containing(p, &mut self.inside);
        self.inside
            .iter()
            .copied()
            .filter(|&i| self.fences.fence(i).kind == kind)
            .collect()
    }
}

fn steps(from: f64, to: f64, step: f64) -> impl Iterator<Item = f64> {
    let n = ((to - from) / step).floor().max(0.0) as usize;
    (0..=n).map(move |i| from + i as f64 * step)
}

/// The first candidate, from a random starting place round the list, that passes
/// `test`: a random spot without testing every spot (the fence checks are the cost).
fn first_fit<T: Copy>(
    rng: &mut Rng,
    candidates: &[T],
    mut test: impl FnMut(T) -> bool,
) -> Option<T> {
    let n = candidates.len();
    let start = rng.below(n);
    (0..n)
        .map(|k| candidates[(start + k) % n])
        .find(|&c| test(c))
}

/// SPEEDING: where a burst of `metres` fits on a stretch with one limit throughout
/// (100 m of margin each side) and no bend to slow for.
pub fn speeding_at(route: &Route, metres: f64, rng: &mut Rng) -> Option<f64> {
    let p = &route.path;
    let l = p.length();
    let candidates: Vec<f64> = steps(0.25 * l, 0.7 * l, 50.0)
        .filter(|&s| s + metres + 600.0 < l)
        .collect();
    first_fit(rng, &candidates, |s| {
        let (lo, hi) = p.limit_range(s - 100.0, s + metres + 100.0);
        lo == hi && p.min_cap_kmh(s, s + metres) >= 25.0
    })
}

/// ROUTE_DEVIATION: a straight stretch where the truck can drive [`DEVIATION_M`] to
/// one side for `hold_m`, with nothing else there (150 m of margin beyond), and far
/// from every other part of its own route. Returns `(from_s, to_s, lateral_m)`.
pub fn deviation(
    route: &Route,
    fences: &FenceSet,
    hold_m: f64,
    rng: &mut Rng,
) -> Option<(f64, f64, f64)> {
    let p = &route.path;
    let ramp = 200.0;
    let span = hold_m + 2.0 * ramp;
    let mut probe = Probe::new(fences);
    let candidates: Vec<(f64, f64)> = steps(0.2 * p.length(), 0.6 * p.length(), 100.0)
        .filter(|&s0| {
            s0 + span + 400.0 <= p.length() && p.max_turn_deg(s0 - 100.0, s0 + span + 100.0) <= 15.0
        })
        .flat_map(|s0| [(s0, 1.0), (s0, -1.0)])
        .collect();
    let (s0, side) = first_fit(rng, &candidates, |(s0, side)| {
        steps(s0 + ramp, s0 + span - ramp, 50.0).all(|s| {
            let q = p.offset_point(s, side * DEVIATION_M);
            fences
                .distance_to_routes(q, &[route.idx])
                .is_some_and(|(_, d)| d > route.half_width_m + 150.0)
        }) && steps(s0, s0 + span, 50.0).all(|s| {
            steps(0.0, DEVIATION_M + 150.0, 50.0)
                .all(|l| probe.clear(p.offset_point(s, side * l), 0.0, None))
        })
    })?;
    Some((s0, s0 + span, side * DEVIATION_M))
}

/// RESTRICTED_ZONE: a detour from the route into an always-on restricted zone and
/// back: leave at `s1`, drive straight to a point deep inside the zone, straight back
/// to the route at `s2`.
#[derive(Debug, Clone)]
pub struct Detour {
    pub zone: String,
    pub s1: f64,
    pub s2: f64,
    pub path: Arc<Path>,
}

pub fn detour(route: &Route, fences: &FenceSet, city_limit_kmh: f64) -> Option<Detour> {
    let p = &route.path;
    let mut probe = Probe::new(fences);
    let mut best: Option<(f64, Detour)> = None;
    for (zone, fence) in fences
        .iter()
        .filter(|(_, f)| f.kind == FenceKind::RestrictedZone && f.schedule.is_none())
    {
        let Some(target) = interior_point(fence.shape()).filter(|&c| fences.contains(zone, c))
        else {
            continue;
        };
        let (s_near, d) = p.nearest(target);
        // The sample city keeps every route more than a block away from its always-on
        // zones (their road sections are closed), so a detour is a few kilometres.
        if d > MAX_DETOUR_M || s_near < 0.15 * p.length() || s_near > 0.85 * p.length() {
            continue;
        }
        let (s1, s2) = (s_near - 300.0, s_near + 300.0);
        let Some(path) = Path::new(&[p.point(s1), target, p.point(s2)], fences, city_limit_kmh)
        else {
            continue;
        };
        let len = path.length();
        let clean = steps(0.0, len, 25.0).all(|s| {
            let q = path.point(s);
            let other_zone = probe
                .kinds_at(q, FenceKind::RestrictedZone)
                .iter()
                .any(|&z| z != zone);
            let site = !probe.kinds_at(q, FenceKind::SourceSite).is_empty()
                || !probe.kinds_at(q, FenceKind::DisposalSite).is_empty();
            let away = s < 150.0
                || s > len - 150.0
                || fences
                    .distance_to_routes(q, &[route.idx])
                    .is_some_and(|(_, d)| d > route.half_width_m + 30.0);
            !other_zone && !site && away
        });
        if clean && best.as_ref().is_none_or(|(bd, _)| d < *bd) {
            best = Some((
                d,
                Detour {
                    zone: fence.id.clone(),
                    s1,
                    s2,
                    path: Arc::new(path),
                },
            ));
        }
    }
    best.map(|(_, d)| d)
}

/// A point well inside an area (its centroid, when that is inside) or a circle's centre.
fn interior_point(shape: &Shape) -> Option<PlanePoint> {
    match shape {
        Shape::Area(mp) => geo::Centroid::centroid(mp).map(|c| PlanePoint::new(c.x(), c.y())),
        Shape::Circle { centre, .. } => Some(*centre),
        Shape::Corridor { .. } => None,
    }
}

/// ILLEGAL_DUMPING: a roadside spot at least 250 m from every site and zone.
pub fn dump_at(route: &Route, fences: &FenceSet, rng: &mut Rng) -> Option<f64> {
    let p = &route.path;
    let mut probe = Probe::new(fences);
    let candidates: Vec<f64> = steps(0.35 * p.length(), 0.65 * p.length(), 100.0).collect();
    first_fit(rng, &candidates, |s| probe.clear(p.point(s), 250.0, None))
}

/// WRONG_DISPOSAL_SITE: another route from the same source site to another disposal
/// site, that leaves the permitted corridor once and for good (one stretch off route,
/// at least a kilometre long, ending in the wrong site), so that the deviation it
/// causes is one clear episode.
pub fn wrong_route<'r>(route: &Route, all: &'r [Route], fences: &FenceSet) -> Option<&'r Route> {
    let mut probe = Probe::new(fences);
    all.iter()
        .filter(|r| r.source == route.source && r.disposal != route.disposal)
        .find(|r| {
            let mut runs = 0;
            let mut run_start = None;
            let mut longest: f64 = 0.0;
            for s in steps(0.0, r.path.length(), 10.0) {
                let q = r.path.point(s);
                let own_site = probe
                    .kinds_at(q, FenceKind::SourceSite)
                    .into_iter()
                    .chain(probe.kinds_at(q, FenceKind::DisposalSite))
                    .any(|i| [&route.source, &route.disposal].contains(&&fences.fence(i).id));
                let off = !own_site
                    && fences
                        .distance_to_routes(q, &[route.idx])
                        .is_some_and(|(_, d)| d > route.half_width_m);
                match (off, run_start) {
                    (true, None) => {
                        runs += 1;
                        run_start = Some(s);
                    }
                    (false, Some(a)) => {
                        longest = longest.max(s - a);
                        run_start = None;
                    }
                    _ => {}
                }
            }
            if let Some(a) = run_start {
                longest = longest.max(r.path.length() - a);
            }
            runs == 1 && run_start.is_some() && longest >= 1000.0
        })
}

/// An honest truck keeping to one side of its corridor: `lateral` from the centre line,
/// `margin_m` inside the edge, along a straight kilometre with nothing near.
pub fn brush(
    route: &Route,
    fences: &FenceSet,
    margin_m: f64,
    rng: &mut Rng,
) -> Option<(f64, f64, f64)> {
    let lateral = route.half_width_m - margin_m;
    if lateral < 5.0 {
        return None;
    }
    let p = &route.path;
    let mut probe = Probe::new(fences);
    let side = if rng.chance(0.5) { 1.0 } else { -1.0 };
    let candidates: Vec<f64> = steps(0.2 * p.length(), 0.7 * p.length(), 200.0)
        .filter(|&s0| s0 + 1400.0 < p.length() && p.max_turn_deg(s0 - 50.0, s0 + 1050.0) <= 15.0)
        .filter(|&s0| {
            let (lo, hi) = p.limit_range(s0 - 100.0, s0 + 1100.0);
            lo == hi
        })
        .collect();
    let s0 = first_fit(rng, &candidates, |s0| {
        steps(s0, s0 + 1000.0, 50.0)
            .all(|s| probe.clear(p.offset_point(s, side * (lateral + margin_m)), 0.0, None))
    })?;
    Some((s0, s0 + 1000.0, side * lateral))
}

/// An honest truck passing a restricted zone as close as its corridor allows:
/// on the zone's side of the corridor where the route comes nearest to one, keeping
/// `margin_m` inside the corridor and `margin_m` + 30 m from the zone.
pub fn near_zone(route: &Route, fences: &FenceSet, margin_m: f64) -> Option<(f64, f64, f64)> {
    let p = &route.path;
    let mut best: Option<(f64, f64, f64)> = None; // (distance, s, side)
    for (_, fence) in fences
        .iter()
        .filter(|(_, f)| f.kind == FenceKind::RestrictedZone)
    {
        for s in steps(0.15 * p.length(), 0.85 * p.length(), 25.0) {
            let (left, right) = (p.offset_point(s, 20.0), p.offset_point(s, -20.0));
            let (dl, dr) = (
                distance_to_area(fence.shape(), left),
                distance_to_area(fence.shape(), right),
            );
            let (d, side) = if dl < dr {
                (dl + 20.0, 1.0)
            } else {
                (dr + 20.0, -1.0)
            };
            if d < 300.0 && best.is_none_or(|b| d < b.0) {
                best = Some((d, s, side));
            }
        }
    }
    let (d, s, side) = best?;
    let lateral = (route.half_width_m - margin_m).min(d - margin_m - 30.0);
    let (s0, s1) = (s - 400.0, s + 400.0);
    (lateral >= 5.0
        && s0 > 300.0
        && s1 + 300.0 < p.length()
        && p.max_turn_deg(s0 - 50.0, s1 + 50.0) <= 15.0)
        .then_some((s0, s1, side * lateral))
}

/// Metres from `p` to an area's boundary (0 inside), or to a circle.
fn distance_to_area(shape: &Shape, p: PlanePoint) -> f64 {
    match shape {
        Shape::Circle { centre, radius_m } => (centre.distance(p) - radius_m).max(0.0),
        Shape::Area(mp) => {
            let mut best = f64::INFINITY;
            for poly in &mp.0 {
                for seg in poly.exterior().lines() {
                    let (a, b) = (PlanePoint::from(seg.start), PlanePoint::from(seg.end));
                    let (dx, dy) = (b.x - a.x, b.y - a.y);
                    let t = (((p.x - a.x) * dx + (p.y - a.y) * dy) / (dx * dx + dy * dy))
                        .clamp(0.0, 1.0);
                    best = best.min(PlanePoint::new(a.x + t * dx, a.y + t * dy).distance(p));
                }
            }
            best
        }
        Shape::Corridor { .. } => f64::INFINITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_sample_city_has_room_for_the_common_injections() {
        let fences = FenceSet::load_dir(std::path::Path::new("geofences")).expect("sample city");
        let routes = super::super::route::routes(&fences, 40.0);
        let mut rng = Rng::new(1);
        let (mut detours, mut wrong, mut deviations, mut near) = (0, 0, 0, 0);
        for r in &routes {
            assert!(
                speeding_at(r, 1500.0, &mut rng).is_some(),
                "speeding on {}",
                r.id
            );
            assert!(
                dump_at(r, &fences, &mut rng).is_some(),
                "dumping on {}",
                r.id
            );
            deviations += usize::from(deviation(r, &fences, 1500.0, &mut rng).is_some());
            detours += usize::from(detour(r, &fences, 40.0).is_some());
            wrong += usize::from(wrong_route(r, &routes, &fences).is_some());
            near += usize::from(near_zone(r, &fences, 25.0).is_some());
        }
        assert!(
            deviations >= 10 && detours >= 4 && wrong >= 4 && near >= 3,
            "{deviations} {detours} {wrong} {near}"
        );
    }
}

//! The per-fix queries of [`FenceSet`]. None of them allocates: results go into a
//! caller-owned `Vec` that is cleared first, so a vehicle task can keep one buffer for
//! its whole life.

use super::index::FenceSet;
use super::model::{FenceIdx, FenceKind, Shape};
use super::pip::PreparedPolygon;
use super::projection::PlanePoint;
use super::tree::{
    env32, for_each_at, for_each_in, for_each_near, nearest, p32, seg_closest, seg_dist2,
    seg_seg_dist2, HitGeom, HitInfo, HitLeaf, SegEntry, P2,
};

impl FenceSet {
    /// All fences containing the point: areas and circles (boundary counts as inside)
    /// and routes whose corridor (distance to the line <= half_width_m) contains it.
    /// `out` is cleared first and holds each fence once, in no particular order.
    ///
    /// ```
    /// use muckwatch::geofence::FenceSet;
    /// let set = FenceSet::from_geojson_str("doc", r#"{"type":"FeatureCollection","features":[
    ///   {"type":"Feature","properties":{"id":"s1","kind":"source_site"},
    ///    "geometry":{"type":"Polygon","coordinates":[[[120,33],[120.01,33],[120.01,33.01],[120,33.01],[120,33]]]}},
    ///   {"type":"Feature","properties":{"id":"r1","kind":"route","half_width_m":30},
    ///    "geometry":{"type":"LineString","coordinates":[[120.005,33.005],[120.05,33.005]]}}]}"#).unwrap();
    /// let mut out = Vec::with_capacity(8);
    /// set.containing(set.project(33.005, 120.006), &mut out);
    /// assert_eq!(out.len(), 2); // in the site and on the route
    /// set.containing(set.project(33.005, 120.03), &mut out);
    /// assert_eq!(out, vec![set.get("r1").unwrap()]);
    /// ```
    pub fn containing(&self, p: PlanePoint, out: &mut Vec<FenceIdx>) {
        out.clear();
        let q = [p.x, p.y];
        let q32 = p32(q);
        for_each_at(self.hits.root(), &q32, &mut |leaf: &HitLeaf| {
            let e = &self.hit_info[leaf.slot as usize];
            if hit_contains(&self.polys, e, q) && !out.contains(&e.fence) {
                out.push(e.fence);
            }
        });
    }

    /// Whether one given fence contains the point (same rule as [`containing`](Self::containing)).
    pub fn contains(&self, idx: FenceIdx, p: PlanePoint) -> bool {
        let q = [p.x, p.y];
        match &self.fence(idx).shape {
            Shape::Area(_) => {
                let q32 = p32(q);
                let mut hit = false;
                for_each_at(self.hits.root(), &q32, &mut |leaf: &HitLeaf| {
                    let e = &self.hit_info[leaf.slot as usize];
                    hit = hit || (e.fence == idx && hit_contains(&self.polys, e, q));
                });
                hit
            }
            Shape::Circle { centre, radius_m } => {
                circle_contains([centre.x, centre.y], *radius_m, q)
            }
            Shape::Corridor { .. } => self
                .nearest_segment(p, &[idx])
                .is_some_and(|(s, d2)| d2 <= s.hw2),
        }
    }

    /// Distance in metres from `p` to the nearest SEGMENT of the given routes (not just
    /// their vertices), with the route it belongs to. `None` when `routes` holds no
    /// route of this set (non-route handles are ignored).
    pub fn distance_to_routes(
        &self,
        p: PlanePoint,
        routes: &[FenceIdx],
    ) -> Option<(FenceIdx, f64)> {
        if routes.is_empty() {
            return None;
        }
        self.nearest_segment(p, routes)
            .map(|(s, d2)| (s.fence, d2.sqrt()))
    }

    /// The nearest route of the whole set and the distance in metres to its line.
    pub fn nearest_route(&self, p: PlanePoint) -> Option<(FenceIdx, f64)> {
        self.nearest_segment(p, &[])
            .map(|(s, d2)| (s.fence, d2.sqrt()))
    }

    /// Like [`distance_to_routes`](Self::distance_to_routes), but returns the closest
    /// point of the routes' lines instead of the distance.
    pub fn nearest_point_on_routes(
        &self,
        p: PlanePoint,
        routes: &[FenceIdx],
    ) -> Option<(FenceIdx, PlanePoint)> {
        if routes.is_empty() {
            return None;
        }
        let q = [p.x, p.y];
        self.nearest_segment(p, routes).map(|(s, _)| {
            let c = seg_closest(s.a, s.b, q);
            (s.fence, PlanePoint::new(c[0], c[1]))
        })
    }

    /// Fences that might contain `p` give or take `tol_m` metres: areas whose bounding
    /// box is within `tol_m`, routes with a segment within half-width + `tol_m`. For
    /// callers that decide exactly by other means (the `fences check` command).
    pub(crate) fn candidates_near(&self, p: PlanePoint, tol_m: f64, out: &mut Vec<FenceIdx>) {
        out.clear();
        let q = [p.x, p.y];
        let q32 = p32(q);
        let r32 = (tol_m + 1.0) as f32; // +1 m: f32 rounding of boxes and point
        for_each_near(self.hits.root(), &q32, r32 * r32, &mut |leaf: &HitLeaf| {
            let e = &self.hit_info[leaf.slot as usize];
            let near = match e.geom {
                HitGeom::Capsule { a, b, hw2 } => {
                    let lim = hw2.sqrt() + tol_m;
                    seg_dist2(a, b, q) <= lim * lim
                }
                _ => leaf.env.distance_2(&q32) <= r32 * r32,
            };
            if near && !out.contains(&e.fence) {
                out.push(e.fence);
            }
        });
    }

    /// Like [`nearest_route`](Self::nearest_route), but returns the closest point of the
    /// route's line (to measure the distance geodesically, or to show it on a map).
    pub fn nearest_route_point(&self, p: PlanePoint) -> Option<(FenceIdx, PlanePoint)> {
        let q = [p.x, p.y];
        self.nearest_segment(p, &[]).map(|(s, _)| {
            let c = seg_closest(s.a, s.b, q);
            (s.fence, PlanePoint::new(c[0], c[1]))
        })
    }

    /// `routes` empty = all routes.
    fn nearest_segment(&self, p: PlanePoint, routes: &[FenceIdx]) -> Option<(&SegEntry, f64)> {
        if !p.is_finite() {
            return None;
        }
        let q = [p.x, p.y];
        let mut best: (f64, Option<&SegEntry>) = (f64::INFINITY, None);
        if routes.is_empty() {
            nearest(self.segments.root(), &q, &mut best);
        } else {
            for r in routes {
                if let Some(Some(tree)) = self.route_trees.get(r.index()) {
                    nearest(tree.root(), &q, &mut best);
                }
            }
        }
        best.1.map(|s| (s, best.0))
    }

    /// Metres from `p` to the fence's edge, whichever side `p` is on: an area's
    /// boundary (holes included), a circle's rim, a corridor's edge (half-width from
    /// the line). With [`contains`](Self::contains) it says how deep inside or how far
    /// out a fix is, which is what GPS noise has to be weighed against. No allocation:
    /// a walk over the fence's rings (zones and sites have tens of vertices).
    pub fn edge_distance(&self, idx: FenceIdx, p: PlanePoint) -> f64 {
        let q = [p.x, p.y];
        match &self.fence(idx).shape {
            Shape::Area(polys) => {
                let mut best = f64::INFINITY;
                for poly in polys {
                    for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
                        for line in ring.lines() {
                            let d2 = seg_dist2(
                                [line.start.x, line.start.y],
                                [line.end.x, line.end.y],
                                q,
                            );
                            best = best.min(d2);
                        }
                    }
                }
                best.sqrt()
            }
            Shape::Circle { centre, radius_m } => (centre.distance(p) - radius_m).abs(),
            Shape::Corridor { half_width_m, .. } => self
                .nearest_segment(p, &[idx])
                .map_or(f64::INFINITY, |(_, d2)| (d2.sqrt() - half_width_m).abs()),
        }
    }

    /// Fences of `kind` that the straight segment a-b touches, so that two sparse fixes
    /// either side of a zone still count as crossing it. Areas and circles count when
    /// the segment meets them, boundary included (as for [`containing`](Self::containing));
    /// routes when the segment comes within their half-width. `out` is cleared first.
    pub fn areas_crossed(
        &self,
        a: PlanePoint,
        b: PlanePoint,
        kind: FenceKind,
        out: &mut Vec<FenceIdx>,
    ) {
        out.clear();
        let (qa, qb) = ([a.x, a.y], [b.x, b.y]);
        let env = env32(
            [qa[0].min(qb[0]), qa[1].min(qb[1])],
            [qa[0].max(qb[0]), qa[1].max(qb[1])],
        );
        let tree = &self.hits_by_kind[kind_slot(kind)];
        for_each_in(tree.root(), &env, &mut |leaf: &HitLeaf| {
            let e = &self.hit_info[leaf.slot as usize];
            if out.contains(&e.fence) {
                return;
            }
            let hit = match e.geom {
                HitGeom::Poly(i) => self.polys[i as usize].intersects_segment(a.into(), b.into()),
                HitGeom::Circle { centre, radius } => seg_dist2(qa, qb, centre) <= radius * radius,
                HitGeom::Capsule { a: sa, b: sb, hw2 } => seg_seg_dist2(qa, qb, sa, sb) <= hw2,
            };
            if hit {
                out.push(e.fence);
            }
        });
    }
}

/// Position of a kind in `FenceKind::ALL` (and so in `hits_by_kind`): the enum lists
/// the kinds in the same order (checked by a test in `model.rs`).
fn kind_slot(kind: FenceKind) -> usize {
    kind as usize
}

/// The exact test behind a containment-tree entry (boundary inside).
#[inline]
fn hit_contains(polys: &[PreparedPolygon], e: &HitInfo, q: P2) -> bool {
    match e.geom {
        HitGeom::Poly(i) => polys[i as usize].contains(geo::Coord { x: q[0], y: q[1] }),
        HitGeom::Circle { centre, radius } => circle_contains(centre, radius, q),
        HitGeom::Capsule { a, b, hw2 } => seg_dist2(a, b, q) <= hw2,
    }
}

#[inline]
fn circle_contains(c: P2, r: f64, q: P2) -> bool {
    let (dx, dy) = (q[0] - c[0], q[1] - c[1]);
    dx * dx + dy * dy <= r * r
}

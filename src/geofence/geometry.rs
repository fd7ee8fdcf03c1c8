//! From WGS-84 coordinates to validated plane shapes.
//!
//! Polygons are checked here, in the plane, because that is the geometry the index
//! answers with: a self-intersecting ring makes "inside" meaningless (even-odd and
//! winding disagree), so such a fence is refused with a reason instead of silently
//! misclassifying fixes. The edge-pair check uses an R-tree of the ring edges, so a
//! 10,000-vertex outline validates in milliseconds (geo's `Validation` compares all
//! edge pairs, which takes seconds at that size).

use geo::line_intersection::{line_intersection, LineIntersection};
use geo::{Coord, CoordinatePosition, Line, LineString, MultiLineString, MultiPolygon, Polygon};
use rstar::primitives::GeomWithData;
use rstar::{RTree, RTreeObject};

use super::load::{LonLat, RawGeom};
use super::model::Shape;
use super::projection::Projection;

/// Projects a parsed geometry and checks it; `half_width_m` applies to lines.
pub(crate) fn build_shape(
    proj: &Projection,
    geom: &RawGeom,
    half_width_m: Option<f64>,
) -> Result<Shape, String> {
    let pt = |c: &LonLat| -> Coord<f64> { proj.project(c[1], c[0]).into() };
    match geom {
        RawGeom::Circle(c, r) => Ok(Shape::Circle {
            centre: proj.project(c[1], c[0]),
            radius_m: *r,
        }),
        RawGeom::Lines(lines) => {
            let lines = lines
                .iter()
                .map(|l| LineString::new(dedup(l.iter().map(pt))))
                .collect();
            Ok(Shape::Corridor {
                lines: MultiLineString::new(lines),
                half_width_m: half_width_m.unwrap_or(super::model::DEFAULT_HALF_WIDTH_M),
            })
        }
        RawGeom::Polygons(polys) => {
            let mut out = Vec::with_capacity(polys.len());
            for (i, rings) in polys.iter().enumerate() {
                let mut rings = rings
                    .iter()
                    .map(|r| LineString::new(dedup(r.iter().map(pt))));
                let exterior = rings.next().unwrap_or_else(|| LineString::new(vec![]));
                let poly = Polygon::new(exterior, rings.collect());
                check_polygon(&poly).map_err(|e| {
                    if polys.len() > 1 {
                        format!("polygon {i}: {e}")
                    } else {
                        e
                    }
                })?;
                out.push(poly);
            }
            Ok(Shape::Area(MultiPolygon::new(out)))
        }
    }
}

/// Drops consecutive repeated positions (zero-length edges carry no shape and would
/// trip the self-intersection check).
fn dedup(coords: impl Iterator<Item = Coord<f64>>) -> Vec<Coord<f64>> {
    let mut v: Vec<Coord<f64>> = Vec::new();
    for c in coords {
        if v.last() != Some(&c) {
            v.push(c);
        }
    }
    v
}

fn role(ring: usize) -> String {
    if ring == 0 {
        "exterior ring".to_string()
    } else {
        format!("hole {ring}")
    }
}

/// OGC-style validity for one polygon: every ring has area, no ring crosses or touches
/// itself, rings do not cross or overlap each other, holes lie inside the exterior and
/// not inside each other. Rings may touch each other at single points.
pub(crate) fn check_polygon(poly: &Polygon<f64>) -> Result<(), String> {
    let rings: Vec<&LineString<f64>> = std::iter::once(poly.exterior())
        .chain(poly.interiors())
        .collect();
    for (r, ring) in rings.iter().enumerate() {
        if ring.0.iter().any(|c| !c.x.is_finite() || !c.y.is_finite()) {
            return Err(format!("{} has a non-finite coordinate", role(r)));
        }
        if ring.0.len() < 4 {
            return Err(format!("{} has fewer than 3 distinct points", role(r)));
        }
        if all_collinear(ring) {
            return Err(format!("{} has no area (all points on a line)", role(r)));
        }
    }
    check_edges(&rings)?;
    // With no crossings, one vertex decides on which side a whole ring lies.
    let exterior = Polygon::new(poly.exterior().clone(), vec![]);
    let hole_polys: Vec<Polygon<f64>> = poly
        .interiors()
        .iter()
        .map(|h| Polygon::new(h.clone(), vec![]))
        .collect();
    for (h, hole) in poly.interiors().iter().enumerate() {
        if !ring_inside(hole, &exterior) {
            return Err(format!("hole {} is not inside the exterior ring", h + 1));
        }
        for (k, other) in hole_polys.iter().enumerate() {
            if k != h && ring_inside(hole, other) {
                return Err(format!("hole {} lies inside hole {}", h + 1, k + 1));
            }
        }
    }
    Ok(())
}

/// Whether `ring` lies in the interior of `poly`, judged by its first vertex that is
/// not on `poly`'s boundary (a ring entirely on the boundary is not inside).
fn ring_inside(ring: &LineString<f64>, poly: &Polygon<f64>) -> bool {
    use geo::coordinate_position::CoordPos;
    for c in &ring.0 {
        match poly.coordinate_position(c) {
            CoordPos::Inside => return true,
            CoordPos::Outside => return false,
            _ => {}
        }
    }
    false
}

/// Whether all vertices lie on one line (a ring without area).
fn all_collinear(ring: &LineString<f64>) -> bool {
    use geo::kernels::{Kernel, RobustKernel};
    let a = ring.0[0];
    let Some(b) = ring.0.iter().copied().find(|c| *c != a) else {
        return true;
    };
    ring.0
        .iter()
        .all(|c| RobustKernel::orient2d(a, b, *c) == geo::Orientation::Collinear)
}

type EdgeEntry = GeomWithData<Line<f64>, (usize, usize)>;

/// Pairwise edge intersection test through an R-tree of edges.
fn check_edges(rings: &[&LineString<f64>]) -> Result<(), String> {
    let counts: Vec<usize> = rings.iter().map(|r| r.0.len() - 1).collect();
    let entries: Vec<EdgeEntry> = rings
        .iter()
        .enumerate()
        .flat_map(|(r, ring)| {
            ring.lines()
                .enumerate()
                .map(move |(i, l)| GeomWithData::new(l, (r, i)))
        })
        .collect();
    let tree = RTree::bulk_load(entries.clone());
    for e in &entries {
        let (r1, i1) = e.data;
        for other in tree.locate_in_envelope_intersecting(&e.envelope()) {
            let (r2, i2) = other.data;
            if (r2, i2) <= (r1, i1) {
                continue; // each pair once
            }
            let Some(x) = line_intersection(*e.geom(), *other.geom()) else {
                continue;
            };
            if r1 == r2 {
                let n = counts[r1];
                let adjacent = (i1 + 1) % n == i2 || (i2 + 1) % n == i1;
                match (adjacent, x) {
                    (true, LineIntersection::SinglePoint { .. }) => {}
                    (true, LineIntersection::Collinear { .. }) => {
                        return Err(format!(
                            "{} doubles back on itself at vertex {} (a spike)",
                            role(r1),
                            i2.max(i1)
                        ))
                    }
                    (false, _) => {
                        return Err(format!(
                            "{} has a self-intersection (edges {} and {} meet)",
                            role(r1),
                            i1.min(i2),
                            i1.max(i2)
                        ))
                    }
                }
            } else {
                match x {
                    LineIntersection::SinglePoint {
                        is_proper: false, ..
                    } => {} // touch at a point
                    LineIntersection::SinglePoint {
                        is_proper: true, ..
                    } => return Err(format!("{} crosses {}", role(r2), role(r1))),
                    LineIntersection::Collinear { .. } => {
                        return Err(format!(
                            "{} and {} overlap along a line",
                            role(r1),
                            role(r2)
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    #[test]
    fn valid_polygon_with_hole() {
        let p = polygon!(
            exterior: [(x: 0., y: 0.), (x: 10., y: 0.), (x: 10., y: 10.), (x: 0., y: 10.)],
            interiors: [[(x: 4., y: 4.), (x: 6., y: 4.), (x: 6., y: 6.), (x: 4., y: 6.)]],
        );
        assert_eq!(check_polygon(&p), Ok(()));
    }

    #[test]
    fn bow_tie_is_refused() {
        let p = polygon![(x: 0., y: 0.), (x: 10., y: 10.), (x: 10., y: 0.), (x: 0., y: 10.)];
        let e = check_polygon(&p).expect_err("self-intersection");
        assert!(e.contains("self-intersection"), "{e}");
    }

    #[test]
    fn spike_is_refused() {
        let p = polygon![(x: 0., y: 0.), (x: 10., y: 0.), (x: 10., y: 10.), (x: 10., y: 5.), (x: 0., y: 10.)];
        assert!(check_polygon(&p).is_err());
    }

    #[test]
    fn hole_problems() {
        let outside = polygon!(
            exterior: [(x: 0., y: 0.), (x: 10., y: 0.), (x: 10., y: 10.), (x: 0., y: 10.)],
            interiors: [[(x: 20., y: 20.), (x: 21., y: 20.), (x: 21., y: 21.)]],
        );
        assert!(check_polygon(&outside)
            .expect_err("outside")
            .contains("not inside"));
        let crossing = polygon!(
            exterior: [(x: 0., y: 0.), (x: 10., y: 0.), (x: 10., y: 10.), (x: 0., y: 10.)],
            interiors: [[(x: 5., y: 5.), (x: 15., y: 5.), (x: 15., y: 6.)]],
        );
        assert!(check_polygon(&crossing)
            .expect_err("crossing")
            .contains("crosses"));
        let nested = polygon!(
            exterior: [(x: 0., y: 0.), (x: 10., y: 0.), (x: 10., y: 10.), (x: 0., y: 10.)],
            interiors: [
                [(x: 1., y: 1.), (x: 9., y: 1.), (x: 9., y: 9.), (x: 1., y: 9.)],
                [(x: 4., y: 4.), (x: 6., y: 4.), (x: 6., y: 6.)],
            ],
        );
        assert!(check_polygon(&nested)
            .expect_err("nested")
            .contains("inside hole"));
    }

    #[test]
    fn degenerate_rings() {
        let flat = polygon![(x: 0., y: 0.), (x: 5., y: 0.), (x: 10., y: 0.)];
        assert!(check_polygon(&flat).is_err());
        let nan = polygon![(x: 0., y: 0.), (x: f64::NAN, y: 0.), (x: 10., y: 10.)];
        assert!(check_polygon(&nan).expect_err("nan").contains("non-finite"));
    }
}

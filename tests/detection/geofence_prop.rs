//! Property tests: the indexed answers of `FenceSet` equal a brute-force scan with
//! geo's own predicates over the same (projected) shapes, on random cities of polygons
//! with holes, multipolygons, circles and corridors.

use geo::{Coord, Distance, Euclidean, Intersects, Line, LineString, Point};
use muckwatch::geofence::{FenceIdx, FenceKind, FenceSet, PlanePoint, Projection, Shape};
use proptest::prelude::*;
use serde_json::json;

const AREA_KINDS: [&str; 4] = [
    "source_site",
    "disposal_site",
    "restricted_zone",
    "speed_zone",
];

#[derive(Debug, Clone)]
struct Star {
    cx: f64,
    cy: f64,
    r: f64,
    /// (radius factor, angular jitter in units of the vertex spacing) per vertex
    vertices: Vec<(f64, f64)>,
    /// (radius factor, vertex count) of a regular hole around the centre
    hole: Option<(f64, usize)>,
}

#[derive(Debug, Clone)]
enum Spec {
    Area {
        kind: usize,
        parts: Vec<Star>,
    },
    Circle {
        kind: usize,
        cx: f64,
        cy: f64,
        r: f64,
    },
    Corridor {
        start: (f64, f64),
        steps: Vec<(f64, f64)>,
        hw: f64,
    },
}

fn star() -> impl Strategy<Value = Star> {
    (
        -3000.0..3000.0f64,
        -3000.0..3000.0f64,
        50.0..800.0f64,
        prop::collection::vec((0.5..1.0f64, -0.4..0.4f64), 6..24),
        prop::option::of((0.05..0.2f64, 3usize..8)),
    )
        .prop_map(|(cx, cy, r, vertices, hole)| Star {
            cx,
            cy,
            r,
            vertices,
            hole,
        })
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        3 => (0usize..4, prop::collection::vec(star(), 1..3)).prop_map(|(kind, parts)| Spec::Area { kind, parts }),
        1 => (0usize..4, -3000.0..3000.0f64, -3000.0..3000.0f64, 20.0..500.0f64)
            .prop_map(|(kind, cx, cy, r)| Spec::Circle { kind, cx, cy, r }),
        2 => ((-3000.0..3000.0f64, -3000.0..3000.0f64), prop::collection::vec((-1000.0..1000.0f64, -1000.0..1000.0f64), 1..10), 5.0..100.0f64)
            .prop_map(|(start, steps, hw)| Spec::Corridor { start, steps, hw }),
    ]
}

/// The plane the random cities are drawn in (the set picks its own; that is fine).
fn draw_plane() -> Projection {
    Projection::new(33.4, 120.15)
}

fn lonlat(x: f64, y: f64) -> [f64; 2] {
    let (lat, lon) = draw_plane().unproject(PlanePoint::new(x, y));
    [lon, lat]
}

fn star_rings(s: &Star) -> Vec<Vec<[f64; 2]>> {
    let k = s.vertices.len() as f64;
    let mut ext: Vec<[f64; 2]> = s
        .vertices
        .iter()
        .enumerate()
        .map(|(i, (f, j))| {
            let t = (i as f64 + j) / k * std::f64::consts::TAU;
            lonlat(s.cx + s.r * f * t.cos(), s.cy + s.r * f * t.sin())
        })
        .collect();
    ext.push(ext[0]);
    let mut rings = vec![ext];
    if let Some((f, n)) = s.hole {
        let mut hole: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                let t = i as f64 / n as f64 * std::f64::consts::TAU + 0.3;
                lonlat(s.cx + s.r * f * t.cos(), s.cy + s.r * f * t.sin())
            })
            .collect();
        hole.push(hole[0]);
        rings.push(hole);
    }
    rings
}

fn build(specs: &[Spec]) -> FenceSet {
    let features = specs.iter().enumerate().map(|(i, s)| {
        let (props, geometry) = match s {
            Spec::Area { kind, parts } => {
                let polys: Vec<_> = parts.iter().map(star_rings).collect();
                let g = if polys.len() == 1 {
                    json!({"type": "Polygon", "coordinates": polys[0]})
                } else {
                    json!({"type": "MultiPolygon", "coordinates": polys})
                };
                (json!({"id": format!("a{i}"), "kind": AREA_KINDS[*kind], "speed_limit_kmh": 30}), g)
            }
            Spec::Circle { kind, cx, cy, r } => (
                json!({"id": format!("c{i}"), "kind": AREA_KINDS[*kind], "radius_m": r, "speed_limit_kmh": 30}),
                json!({"type": "Point", "coordinates": lonlat(*cx, *cy)}),
            ),
            Spec::Corridor { start, steps, hw } => {
                let mut pts = vec![*start];
                for (dx, dy) in steps {
                    let (x, y) = pts[pts.len() - 1];
                    pts.push((x + dx, y + dy));
                }
                let coords: Vec<_> = pts.iter().map(|(x, y)| lonlat(*x, *y)).collect();
                (
                    json!({"id": format!("r{i}"), "kind": "route", "half_width_m": hw}),
                    json!({"type": "LineString", "coordinates": coords}),
                )
            }
        };
        serde_json::from_value::<geojson::Feature>(json!({"type": "Feature", "properties": props, "geometry": geometry}))
            .expect("feature")
    });
    FenceSet::from_features("prop", features.collect::<Vec<_>>()).expect("random city is valid")
}

fn kind_index(k: FenceKind) -> usize {
    match k {
        FenceKind::SourceSite => 0,
        FenceKind::DisposalSite => 1,
        FenceKind::RestrictedZone => 2,
        FenceKind::SpeedZone => 3,
        FenceKind::Route => 4,
    }
}

/// `Some(answer)` from geo's predicates, `None` when the point is within a rounding
/// error of a metric boundary (circle, corridor), where either answer is right.
fn brute_contains(shape: &Shape, p: PlanePoint) -> Option<bool> {
    let c = Coord { x: p.x, y: p.y };
    match shape {
        Shape::Area(mp) => Some(mp.intersects(&c)),
        Shape::Circle { centre, radius_m } => {
            let d = Euclidean.distance(Point::new(centre.x, centre.y), Point::from(c));
            ((d - radius_m).abs() > 1e-6).then_some(d <= *radius_m)
        }
        Shape::Corridor {
            lines,
            half_width_m,
        } => {
            let d = line_distance(lines.0.iter(), c);
            ((d - half_width_m).abs() > 1e-6).then_some(d <= *half_width_m)
        }
    }
}

fn line_distance<'a>(lines: impl Iterator<Item = &'a LineString<f64>>, c: Coord<f64>) -> f64 {
    lines
        .map(|l| Euclidean.distance(&Point::from(c), l))
        .fold(f64::INFINITY, f64::min)
}

fn brute_crosses(shape: &Shape, a: PlanePoint, b: PlanePoint) -> Option<bool> {
    let seg = Line::new(Coord::from(a), Coord::from(b));
    match shape {
        Shape::Area(mp) => Some(mp.intersects(&seg)),
        Shape::Circle { centre, radius_m } => {
            let d = Euclidean.distance(&seg, &Point::new(centre.x, centre.y));
            ((d - radius_m).abs() > 1e-6).then_some(d <= *radius_m)
        }
        Shape::Corridor {
            lines,
            half_width_m,
        } => {
            let d = lines
                .0
                .iter()
                .map(|l| Euclidean.distance(&seg, l))
                .fold(f64::INFINITY, f64::min);
            ((d - half_width_m).abs() > 1e-6).then_some(d <= *half_width_m)
        }
    }
}

/// Query points: random ones, every vertex of every ring (exact boundary points) and
/// the centres of the holes.
fn query_points(set: &FenceSet, random: &[(f64, f64)]) -> Vec<PlanePoint> {
    let mut pts: Vec<PlanePoint> = random
        .iter()
        .map(|(x, y)| {
            let [lon, lat] = lonlat(*x, *y);
            set.project(lat, lon)
        })
        .collect();
    for (_, f) in set.iter() {
        if let Shape::Area(mp) = f.shape() {
            for poly in &mp.0 {
                pts.extend(poly.exterior().0.iter().map(|c| PlanePoint::new(c.x, c.y)));
                for hole in poly.interiors() {
                    pts.extend(hole.0.iter().map(|c| PlanePoint::new(c.x, c.y)));
                    let n = (hole.0.len() - 1) as f64;
                    let cx = hole.0.iter().skip(1).map(|c| c.x).sum::<f64>() / n;
                    let cy = hole.0.iter().skip(1).map(|c| c.y).sum::<f64>() / n;
                    pts.push(PlanePoint::new(cx, cy));
                }
            }
        }
    }
    pts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn containing_equals_brute_force(
        specs in prop::collection::vec(spec(), 1..12),
        random in prop::collection::vec((-4000.0..4000.0f64, -4000.0..4000.0f64), 150),
    ) {
        let set = build(&specs);
        let mut out = Vec::new();
        for p in query_points(&set, &random) {
            set.containing(p, &mut out);
            for (idx, f) in set.iter() {
                if let Some(expected) = brute_contains(f.shape(), p) {
                    prop_assert_eq!(out.contains(&idx), expected, "fence {} at {:?}", f.id, p);
                    prop_assert_eq!(set.contains(idx, p), expected);
                }
            }
            let mut dedup = out.clone();
            dedup.sort();
            dedup.dedup();
            prop_assert_eq!(dedup.len(), out.len(), "each fence once");
        }
    }

    #[test]
    fn route_distances_equal_brute_force(
        specs in prop::collection::vec(spec(), 1..12),
        random in prop::collection::vec((-5000.0..5000.0f64, -5000.0..5000.0f64), 100),
        pick in prop::collection::vec(any::<bool>(), 12),
    ) {
        let set = build(&specs);
        let routes: Vec<FenceIdx> = set.iter().filter(|(_, f)| f.kind == FenceKind::Route).map(|(i, _)| i).collect();
        let chosen: Vec<FenceIdx> = routes.iter().zip(pick.iter().cycle()).filter(|(_, p)| **p).map(|(r, _)| *r).collect();
        let dist_to = |idx: FenceIdx, p: PlanePoint| match set.fence(idx).shape() {
            Shape::Corridor { lines, .. } => line_distance(lines.0.iter(), Coord::from(p)),
            _ => f64::INFINITY,
        };
        for p in query_points(&set, &random) {
            let brute_all = routes.iter().map(|r| dist_to(*r, p)).fold(f64::INFINITY, f64::min);
            match set.nearest_route(p) {
                None => prop_assert!(routes.is_empty()),
                Some((r, d)) => {
                    prop_assert!((d - brute_all).abs() <= 1e-9 * brute_all.max(1.0), "{} vs {}", d, brute_all);
                    prop_assert!((dist_to(r, p) - d).abs() <= 1e-9 * d.max(1.0));
                }
            }
            let brute_chosen = chosen.iter().map(|r| dist_to(*r, p)).fold(f64::INFINITY, f64::min);
            match set.distance_to_routes(p, &chosen) {
                None => prop_assert!(chosen.is_empty()),
                Some((r, d)) => {
                    prop_assert!(chosen.contains(&r));
                    prop_assert!((d - brute_chosen).abs() <= 1e-9 * brute_chosen.max(1.0), "{} vs {}", d, brute_chosen);
                }
            }
        }
    }

    #[test]
    fn areas_crossed_equals_brute_force(
        specs in prop::collection::vec(spec(), 1..12),
        random in prop::collection::vec((-4000.0..4000.0f64, -4000.0..4000.0f64), 60),
    ) {
        let set = build(&specs);
        let pts = query_points(&set, &random);
        let mut out = Vec::new();
        for w in pts.windows(2).step_by(1).take(200) {
            let (a, b) = (w[0], w[1]);
            for kind in FenceKind::ALL {
                set.areas_crossed(a, b, kind, &mut out);
                for (idx, f) in set.iter().filter(|(_, f)| kind_index(f.kind) == kind_index(kind)) {
                    if let Some(expected) = brute_crosses(f.shape(), a, b) {
                        prop_assert_eq!(out.contains(&idx), expected, "{} {:?}-{:?}", f.id, a, b);
                    }
                }
                prop_assert!(out.iter().all(|i| set.fence(*i).kind == kind));
            }
        }
    }
}

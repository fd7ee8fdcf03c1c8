//! `muckwatch fences check --geofences DIR`: NDJSON `{"lat":..,"lon":..}` in, one
//! `{"inside":[ids],"nearest_route":{"id":..,"distance_m":..}|null}` line out per input
//! line (contract). For admins checking a fence, and for tests.
//!
//! The rule engine works in the metric plane, where a fence edge is the straight chord
//! between its projected vertices. GeoJSON (RFC 7946) defines an edge as straight in
//! lon/lat, which differs by about a centimetre per kilometre of edge: nothing for GPS
//! fixes, but it would make "a point exactly on the boundary counts as inside" flaky.
//! So this command uses the index only to find candidates (anything within 100 m) and
//! decides each one in the file's own terms: areas by exact predicates on the lon/lat
//! polygon, circles and corridors by geodesic distance (WGS-84) with a 1 mm tolerance.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use geo::{Distance, Geodesic, Intersects, Point};
use serde_json::{json, Value};

use super::index::FenceSet;
use super::load::RawGeom;
use super::model::{FenceIdx, Shape};
use super::projection::PlanePoint;
use super::tree::seg_dist2;

/// Candidates are fences within this many plane metres (covers the chord-vs-lon/lat
/// difference of edges up to ~90 km long).
const CANDIDATE_TOL_M: f64 = 100.0;
/// Distance tolerance for circles and corridors (boundary counts as inside).
const METRIC_TOL_M: f64 = 1e-3;
/// Lon/lat tolerance for polygon boundaries (~0.1 mm), absorbing the last-bit rounding
/// of a point computed to lie on an edge.
const DEGREE_TOL: f64 = 1e-9;

/// Loads `dir` and answers every line of `input`. A bad line gets `{"error": ...}` and
/// the rest go on; only a fence directory that does not load, or an I/O error on
/// `output`, ends the run with an error.
pub fn run_check(dir: &Path, input: impl BufRead, output: impl Write) -> anyhow::Result<()> {
    let set = FenceSet::load_dir(dir)
        .with_context(|| format!("cannot load geofences from {}", dir.display()))?;
    check_lines(&set, input, output)
}

/// [`run_check`] against an already loaded set. Blank lines are skipped.
pub fn check_lines(
    set: &FenceSet,
    mut input: impl BufRead,
    mut output: impl Write,
) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(256);
    let mut scratch = Vec::with_capacity(16);
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf).context("reading input")? == 0 {
            break;
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let answer = match parse_point(&buf) {
            Ok((lat, lon)) => check_point(set, lat, lon, &mut scratch),
            Err(msg) => json!({ "error": msg }),
        };
        serde_json::to_writer(&mut output, &answer).context("writing output")?;
        output.write_all(b"\n").context("writing output")?;
        output.flush().context("writing output")?;
    }
    Ok(())
}

fn parse_point(line: &[u8]) -> Result<(f64, f64), String> {
    let v: Value = serde_json::from_slice(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("expected a JSON object {\"lat\":..,\"lon\":..}")?;
    let num = |key: &str, lim: f64| -> Result<f64, String> {
        let x = obj
            .get(key)
            .ok_or_else(|| format!("missing {key}"))?
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("{key} must be a finite number"))?;
        if x.abs() > lim {
            return Err(format!("{key} {x} is out of range [-{lim}, {lim}]"));
        }
        Ok(x)
    };
    Ok((num("lat", 90.0)?, num("lon", 180.0)?))
}

/// The answer object for one point.
pub fn check_point(set: &FenceSet, lat: f64, lon: f64, scratch: &mut Vec<FenceIdx>) -> Value {
    let here = Point::new(lon, lat);
    let p = set.project(lat, lon);
    let mut inside: Vec<&str> = Vec::new();
    if p.is_finite() {
        set.candidates_near(p, CANDIDATE_TOL_M, scratch);
        for &idx in scratch.iter() {
            if contains_wgs84(set, idx, p, here) {
                inside.push(&set.fence(idx).id);
            }
        }
    }
    inside.sort_unstable();
    let nearest = if p.is_finite() {
        set.nearest_route_point(p)
            .map(|(idx, c)| (idx, geodesic_to(set, here, c)))
    } else {
        nearest_route_far(set, here)
    };
    let nearest_route = match nearest {
        Some((idx, d)) => {
            json!({ "id": set.fence(idx).id, "distance_m": (d * 100.0).round() / 100.0 })
        }
        None => Value::Null,
    };
    json!({ "inside": inside, "nearest_route": nearest_route })
}

fn geodesic_to(set: &FenceSet, here: Point<f64>, c: PlanePoint) -> f64 {
    let (lat, lon) = set.unproject(c);
    Geodesic.distance(here, Point::new(lon, lat))
}

fn contains_wgs84(set: &FenceSet, idx: FenceIdx, p: PlanePoint, here: Point<f64>) -> bool {
    let fence = set.fence(idx);
    match (&fence.raw, &fence.shape) {
        (RawGeom::Polygons(polys), _) => polys.iter().any(|rings| polygon_contains(rings, here)),
        (RawGeom::Circle(c, r), _) => {
            Geodesic.distance(Point::new(c[0], c[1]), here) <= r + METRIC_TOL_M
        }
        (RawGeom::Lines(_), Shape::Corridor { half_width_m, .. }) => set
            .nearest_point_on_routes(p, &[idx])
            .is_some_and(|(_, c)| geodesic_to(set, here, c) <= half_width_m + METRIC_TOL_M),
        (RawGeom::Lines(_), _) => false,
    }
}

/// Closed polygon in lon/lat, as GeoJSON defines it.
fn polygon_contains(rings: &[Vec<[f64; 2]>], here: Point<f64>) -> bool {
    let mut rings = rings
        .iter()
        .map(|r| geo::LineString::from(r.iter().map(|c| (c[0], c[1])).collect::<Vec<_>>()));
    let Some(exterior) = rings.next() else {
        return false;
    };
    let poly = geo::Polygon::new(exterior, rings.collect());
    if poly.intersects(&here) {
        return true;
    }
    let q = [here.x(), here.y()];
    let tol2 = DEGREE_TOL * DEGREE_TOL;
    let near_edge = std::iter::once(poly.exterior())
        .chain(poly.interiors())
        .flat_map(|r| r.lines())
        .any(|l| seg_dist2([l.start.x, l.start.y], [l.end.x, l.end.y], q) <= tol2);
    near_edge
}

/// For points so far from the city that the plane does not reach them (90° of
/// longitude and more): the nearest route vertex, geodesically. At that range the
/// difference between a vertex and the nearest point of a segment does not matter.
fn nearest_route_far(set: &FenceSet, here: Point<f64>) -> Option<(FenceIdx, f64)> {
    let mut best: Option<(FenceIdx, f64)> = None;
    for (idx, fence) in set.iter() {
        if let RawGeom::Lines(lines) = &fence.raw {
            for c in lines.iter().flatten() {
                let d = Geodesic.distance(here, Point::new(c[0], c[1]));
                if best.is_none_or(|(_, b)| d < b) {
                    best = Some((idx, d));
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> FenceSet {
        FenceSet::from_geojson_str(
            "t",
            r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","properties":{"id":"b","kind":"source_site"},
             "geometry":{"type":"Polygon","coordinates":[[[120,33],[120.01,33],[120.01,33.01],[120,33.01],[120,33]]]}},
            {"type":"Feature","properties":{"id":"a","kind":"restricted_zone","radius_m":200},
             "geometry":{"type":"Point","coordinates":[120.0,33.0]}},
            {"type":"Feature","properties":{"id":"r","kind":"route","half_width_m":40},
             "geometry":{"type":"LineString","coordinates":[[120.02,33.0],[120.02,33.02]]}}]}"#,
        )
        .expect("valid")
    }

    fn run(set: &FenceSet, input: &str) -> Vec<Value> {
        let mut out = Vec::new();
        check_lines(set, input.as_bytes(), &mut out).expect("runs");
        String::from_utf8(out)
            .expect("utf8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }

    #[test]
    fn answers_lines_and_survives_bad_ones() {
        let s = set();
        let out = run(
            &s,
            "{\"lat\":33.0,\"lon\":120.0}\nnot json\n{\"lat\":\"x\",\"lon\":1}\n\n{\"lat\":33.01,\"lon\":120.005}\n{\"lat\":91,\"lon\":0}\n",
        );
        assert_eq!(out.len(), 5);
        assert_eq!(out[0]["inside"], json!(["a", "b"])); // a vertex of b, centre of a: sorted
        assert_eq!(out[0]["nearest_route"]["id"], "r");
        assert!(out[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid JSON")));
        assert!(out[2]["error"].is_string());
        assert_eq!(out[3]["inside"], json!(["b"])); // on the top edge
        assert!(out[4]["error"]
            .as_str()
            .is_some_and(|e| e.contains("out of range")));
    }

    #[test]
    fn no_routes_gives_null_and_far_points_work() {
        let empty = FenceSet::empty();
        let out = run(&empty, "{\"lat\":1,\"lon\":2}\n");
        assert_eq!(out[0], json!({"inside": [], "nearest_route": null}));
        let s = set();
        let out = run(&s, "{\"lat\":-33,\"lon\":-60}\n");
        assert_eq!(out[0]["inside"], json!([]));
        assert!(out[0]["nearest_route"]["distance_m"]
            .as_f64()
            .is_some_and(|d| d > 1.0e7));
    }
}

//! Geofence engine: loading, refusal messages, edge cases, projection accuracy, queries
//! and hot reload. (Sample city: `geofence_sample.rs`; property tests:
//! `geofence_prop.rs`; the CLI: `geofence_cli.rs`.)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use geo::{Destination, Distance, Geodesic, Point};
use muckwatch::geofence::{FenceHandle, FenceKind, FenceSet, PlanePoint, Projection};
use serde_json::{json, Value};

fn fixtures(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/geofence")
        .join(name)
}

fn tempdir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "muckwatch-geofence-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn fc(features: Vec<Value>) -> String {
    json!({"type": "FeatureCollection", "features": features}).to_string()
}

fn feature(props: Value, geometry: Value) -> Value {
    json!({"type": "Feature", "properties": props, "geometry": geometry})
}

fn rect(lon0: f64, lat0: f64, lon1: f64, lat1: f64) -> Vec<[f64; 2]> {
    vec![
        [lon0, lat0],
        [lon1, lat0],
        [lon1, lat1],
        [lon0, lat1],
        [lon0, lat0],
    ]
}

/// A square site with a square hole, a circle, a route, a scheduled zone.
fn small_city() -> FenceSet {
    let text = fc(vec![
        feature(
            json!({"id": "site", "kind": "source_site", "name": "Site"}),
            json!({"type": "Polygon", "coordinates": [rect(120.0, 33.0, 120.02, 33.02), rect(120.008, 33.008, 120.012, 33.012)]}),
        ),
        feature(
            json!({"id": "dump", "kind": "disposal_site", "radius_m": 300.0}),
            json!({"type": "Point", "coordinates": [120.1, 33.0]}),
        ),
        feature(
            json!({"id": "road", "kind": "route", "half_width_m": 40}),
            json!({"type": "LineString", "coordinates": [[120.01, 33.01], [120.1, 33.01], [120.1, 33.0]]}),
        ),
        feature(
            json!({"id": "school", "kind": "restricted_zone", "name": "School",
                   "schedule": [{"days": "Mon-Fri", "start": "07:00", "end": "08:30"}]}),
            json!({"type": "Polygon", "coordinates": [rect(120.05, 33.02, 120.06, 33.03)]}),
        ),
    ]);
    FenceSet::from_geojson_str("small.geojson", &text).expect("valid city")
}

fn ids(set: &FenceSet, idx: &[muckwatch::geofence::FenceIdx]) -> Vec<String> {
    let mut v: Vec<String> = idx.iter().map(|i| set.fence(*i).id.clone()).collect();
    v.sort();
    v
}

fn inside(set: &FenceSet, lat: f64, lon: f64) -> Vec<String> {
    let mut out = Vec::new();
    set.containing(set.project(lat, lon), &mut out);
    ids(set, &out)
}

#[test]
fn boundary_counts_as_inside_and_holes_are_outside() {
    let set = small_city();
    let p = |lat: f64, lon: f64| set.project(lat, lon);
    let site = set.get("site").expect("site");
    assert!(set.contains(site, p(33.0, 120.0)), "vertex");
    // a point on an edge of the projected polygon (exactly: an axis-aligned plane edge)
    if let muckwatch::geofence::Shape::Area(mp) = set.fence(site).shape() {
        let ring = &mp.0[0].exterior().0;
        assert!(
            set.contains(site, PlanePoint::new(ring[0].x, ring[0].y)),
            "projected vertex"
        );
    }
    assert!(set.contains(site, p(33.001, 120.001)));
    assert!(!set.contains(site, p(33.01, 120.01)), "inside the hole");
    assert!(
        set.contains(site, p(33.008, 120.008)),
        "hole vertex is boundary"
    );
    assert!(!set.contains(site, p(33.0, 120.021)));
    // the hole's centre is on the route though
    assert_eq!(inside(&set, 33.01, 120.01), vec!["road"]);
    // circle: the boundary is inside, just beyond is not
    let dump = set.get("dump").expect("dump");
    let c = set.project(33.0, 120.1);
    assert!(set.contains(dump, PlanePoint::new(c.x + 300.0, c.y)));
    assert!(!set.contains(dump, PlanePoint::new(c.x + 300.01, c.y)));
}

#[test]
fn distance_is_to_segments_not_vertices() {
    let set = small_city();
    let road = set.get("road").expect("road");
    // halfway along the 8.4 km east-west leg, 30 m off it (perpendicular to its chord)
    let (a, b) = (set.project(33.01, 120.01), set.project(33.01, 120.1));
    let len = a.distance(b);
    let (nx, ny) = (-(b.y - a.y) / len, (b.x - a.x) / len);
    let off = |d: f64| PlanePoint::new((a.x + b.x) / 2.0 + nx * d, (a.y + b.y) / 2.0 + ny * d);
    let p = off(30.0);
    let (r, d) = set.distance_to_routes(p, &[road]).expect("route");
    assert_eq!(r, road);
    assert!((d - 30.0).abs() < 0.5, "{d}");
    assert_eq!(set.nearest_route(p).map(|(r, _)| r), Some(road));
    assert_eq!(set.distance_to_routes(p, &[]), None);
    assert_eq!(
        set.distance_to_routes(p, &[set.get("site").expect("site")]),
        None,
        "non-routes are ignored"
    );
    let mut out = Vec::new();
    set.containing(p, &mut out);
    assert_eq!(ids(&set, &out), vec!["road"]);
    set.containing(off(40.5), &mut out);
    assert!(out.is_empty());
}

#[test]
fn sparse_fixes_do_not_skip_a_zone() {
    let set = small_city();
    // two fixes 2 km apart either side of the school, neither inside it
    let a = set.project(33.025, 120.045);
    let b = set.project(33.025, 120.065);
    let mut out = Vec::new();
    set.areas_crossed(a, b, FenceKind::RestrictedZone, &mut out);
    assert_eq!(ids(&set, &out), vec!["school"]);
    set.areas_crossed(a, b, FenceKind::SourceSite, &mut out);
    assert!(out.is_empty());
    let (n1, n2) = (set.project(33.035, 120.045), set.project(33.035, 120.065));
    set.areas_crossed(n1, n2, FenceKind::RestrictedZone, &mut out);
    assert!(out.is_empty(), "passes north of it");
    // a segment crossing the site's hole only (both ends in the hole) touches no area
    let h1 = set.project(33.0095, 120.0095);
    let h2 = set.project(33.0105, 120.0105);
    set.areas_crossed(h1, h2, FenceKind::SourceSite, &mut out);
    assert!(out.is_empty());
    // routes count when the segment comes within their half-width
    set.areas_crossed(
        set.project(33.0, 120.05),
        set.project(33.02, 120.05),
        FenceKind::Route,
        &mut out,
    );
    assert_eq!(ids(&set, &out), vec!["road"]);
    // circles
    set.areas_crossed(
        set.project(32.99, 120.1),
        set.project(33.01, 120.1),
        FenceKind::DisposalSite,
        &mut out,
    );
    assert_eq!(ids(&set, &out), vec!["dump"]);
}

#[test]
fn schedules_are_parsed() {
    let set = small_city();
    let school = set.fence(set.get("school").expect("school"));
    let monday = chrono::NaiveDate::from_ymd_opt(2024, 6, 3).expect("date");
    assert!(school.is_active(monday.and_hms_opt(7, 30, 0).expect("t")));
    assert!(!school.is_active(monday.and_hms_opt(9, 0, 0).expect("t")));
    let site = set.fence(set.get("site").expect("site"));
    assert!(
        site.is_active(monday.and_hms_opt(3, 0, 0).expect("t")),
        "no schedule = always"
    );
    assert_eq!(
        set.fence(set.get("road").expect("road")).half_width_m,
        Some(40.0)
    );
}

#[test]
fn polygon_of_10000_vertices() {
    let n = 10_000;
    let (lat0, lon0, r) = (33.4, 120.15, 0.05);
    let mut ring: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let t = i as f64 / n as f64 * std::f64::consts::TAU;
            // wavy circle: not convex, still simple
            let rr = r * (1.0 + 0.05 * (t * 40.0).sin());
            [lon0 + rr * t.cos(), lat0 + rr * 0.84 * t.sin()]
        })
        .collect();
    ring.push(ring[0]);
    let text = fc(vec![feature(
        json!({"id": "district", "kind": "restricted_zone"}),
        json!({"type": "Polygon", "coordinates": [ring.clone()]}),
    )]);
    let started = Instant::now();
    let set = FenceSet::from_geojson_str("big.geojson", &text).expect("valid");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "validation must not be quadratic: {:?}",
        started.elapsed()
    );
    let district = set.get("district").expect("id");
    assert!(set.contains(district, set.project(lat0, lon0)));
    // every vertex is on the boundary
    // every vertex (as parsed: JSON text may round the last bit) is on the boundary
    let Some(geojson::GeometryValue::Polygon { coordinates }) = set
        .fence(district)
        .feature()
        .geometry
        .as_ref()
        .map(|g| &g.value)
    else {
        panic!("polygon expected")
    };
    for c in coordinates[0].iter().step_by(97) {
        assert!(
            set.contains(district, set.project(c[1], c[0])),
            "vertex {c:?}"
        );
    }
    // points near the wavy boundary agree with geo's predicate on the projected polygon
    let muckwatch::geofence::Shape::Area(projected) = set.fence(district).shape() else {
        panic!("area")
    };
    use geo::Intersects;
    for k in 0..2000 {
        let t = k as f64 / 2000.0 * std::f64::consts::TAU;
        let rr =
            r * (1.0 + 0.05 * (t * 40.0).sin()) * (0.99 + 0.02 * ((k * 7919) % 100) as f64 / 100.0);
        let p = set.project(lat0 + rr * 0.84 * t.sin(), lon0 + rr * t.cos());
        assert_eq!(
            set.contains(district, p),
            projected.intersects(&geo::Coord::from(p)),
            "k={k}"
        );
    }
}

#[test]
fn empty_directory_is_an_empty_set() {
    let dir = tempdir("empty");
    std::fs::write(dir.join("README.txt"), "not a fence file").expect("write");
    std::fs::create_dir_all(dir.join("tools")).expect("subdir");
    let set = FenceSet::load_dir(&dir).expect("empty is fine");
    assert_eq!(set.len(), 0);
    let p = set.project(33.4, 120.15);
    let mut out = vec![];
    set.containing(p, &mut out);
    assert!(out.is_empty());
    assert_eq!(set.nearest_route(p), None);
    assert_eq!(set.to_geojson()["features"], json!([]));
    assert!(
        FenceSet::load_dir(&dir.join("missing")).is_err(),
        "a missing directory is an error"
    );
}

fn refuse(features: Vec<Value>) -> String {
    FenceSet::from_geojson_str("bad.geojson", &fc(features))
        .expect_err("must refuse")
        .to_string()
}

#[test]
fn invalid_geometry_is_refused_with_file_feature_and_reason() {
    let bow_tie = vec![
        [120.0, 33.0],
        [120.01, 33.01],
        [120.01, 33.0],
        [120.0, 33.01],
        [120.0, 33.0],
    ];
    let e = refuse(vec![feature(
        json!({"id": "bt", "kind": "source_site"}),
        json!({"type": "Polygon", "coordinates": [bow_tie]}),
    )]);
    assert!(
        e.starts_with("bad.geojson: feature bt: ") && e.contains("self-intersection"),
        "{e}"
    );

    let unclosed = vec![
        [120.0, 33.0],
        [120.01, 33.0],
        [120.01, 33.01],
        [120.0, 33.01],
    ];
    let e = refuse(vec![feature(
        json!({"id": "uc", "kind": "source_site"}),
        json!({"type": "Polygon", "coordinates": [unclosed]}),
    )]);
    assert!(
        e.starts_with("bad.geojson: feature uc: ") && e.contains("not closed"),
        "{e}"
    );

    // NaN cannot be written in JSON; a feature built in code can carry one
    let nan = geojson::Feature {
        bbox: None,
        geometry: Some(geojson::Geometry::new_polygon(vec![vec![
            vec![120.0, 33.0],
            vec![f64::NAN, 33.0],
            vec![120.01, 33.01],
            vec![120.0, 33.0],
        ]])),
        id: None,
        properties: json!({"id": "nan", "kind": "source_site"})
            .as_object()
            .cloned(),
        foreign_members: None,
    };
    let e = FenceSet::from_features("code", vec![nan])
        .expect_err("NaN")
        .to_string();
    assert!(
        e.starts_with("code: feature nan: ") && e.contains("not finite"),
        "{e}"
    );

    let hole_out = vec![
        rect(120.0, 33.0, 120.01, 33.01),
        rect(120.02, 33.0, 120.03, 33.01),
    ];
    let e = refuse(vec![feature(
        json!({"id": "ho", "kind": "speed_zone", "speed_limit_kmh": 30}),
        json!({"type": "Polygon", "coordinates": hole_out}),
    )]);
    assert!(
        e.contains("feature ho") && e.contains("hole 1 is not inside"),
        "{e}"
    );

    let e = refuse(vec![feature(
        json!({"id": "r", "kind": "route"}),
        json!({"type": "LineString", "coordinates": [[120.0, 33.0]]}),
    )]);
    assert!(
        e.contains("feature r") && e.contains("at least 2 positions"),
        "{e}"
    );

    let e = refuse(vec![feature(
        json!({"id": "s", "kind": "restricted_zone", "schedule": [{"days": "Mon-Fri", "start": "7am", "end": "09:00"}]}),
        json!({"type": "Polygon", "coordinates": [rect(120.0, 33.0, 120.01, 33.01)]}),
    )]);
    assert!(e.contains("feature s") && e.contains("schedule[0]"), "{e}");

    // the file as a whole: NaN literal is not JSON
    let e = FenceSet::from_geojson_str("nan.geojson", r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"x","kind":"source_site"},"geometry":{"type":"Point","coordinates":[NaN,33]}}]}"#)
        .expect_err("NaN literal")
        .to_string();
    assert!(e.starts_with("nan.geojson: not valid GeoJSON"), "{e}");
}

#[test]
fn a_bad_file_refuses_the_whole_directory_and_duplicates_are_errors() {
    let e = FenceSet::load_dir(&fixtures("bad"))
        .expect_err("bad file")
        .to_string();
    assert!(
        e.contains("2-bad.geojson")
            && e.contains("feature zone-x")
            && e.contains("self-intersection"),
        "{e}"
    );
    let e = FenceSet::load_dir(&fixtures("dup"))
        .expect_err("duplicate")
        .to_string();
    assert!(
        e.contains("b.geojson: feature s1: duplicate id") && e.contains("a.geojson"),
        "{e}"
    );
    let good = FenceSet::load_dir(&fixtures("good")).expect("good");
    assert_eq!(good.len(), 3);
}

#[test]
fn to_geojson_gives_back_what_was_loaded() {
    let set = small_city();
    let v = set.to_geojson();
    assert_eq!(v["type"], "FeatureCollection");
    let features = v["features"].as_array().expect("array");
    assert_eq!(features.len(), 4);
    assert_eq!(features[0]["properties"]["id"], "site");
    assert_eq!(
        features[0]["geometry"]["coordinates"][0][1],
        json!([120.02, 33.0])
    );
    assert_eq!(features[3]["properties"]["schedule"][0]["days"], "Mon-Fri");
}

/// Pairs of points a few km apart, anywhere within 50 km of the origin: the plane
/// distance must match the geodesic one within 0.5 m.
#[test]
fn projection_distance_error_under_half_a_metre_within_50_km() {
    let origin = (33.4, 120.15);
    let proj = Projection::new(origin.0, origin.1);
    let o = Point::new(origin.1, origin.0);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut worst, mut checked) = (0.0f64, 0);
    while checked < 5000 {
        let a = Geodesic.destination(o, rnd() * 360.0, 50_000.0 * rnd().sqrt());
        let b = Geodesic.destination(a, rnd() * 360.0, 100.0 + 9_900.0 * rnd());
        if Geodesic.distance(o, b) > 50_000.0 {
            continue;
        }
        let (pa, pb) = (proj.project(a.y(), a.x()), proj.project(b.y(), b.x()));
        let err = (pa.distance(pb) - Geodesic.distance(a, b)).abs();
        worst = worst.max(err);
        checked += 1;
    }
    assert!(worst < 0.5, "worst error {worst} m");
    // and with the projection chosen by a loaded set (origin near the fences' centre)
    let set = small_city();
    let a = Point::new(120.3, 33.3);
    let b = Geodesic.destination(a, 37.0, 5_000.0);
    let d = set
        .project(a.y(), a.x())
        .distance(set.project(b.y(), b.x()));
    assert!((d - 5_000.0).abs() < 0.5, "{d}");
}

#[tokio::test]
async fn reload_swaps_atomically_and_keeps_the_old_set_on_error() {
    let dir = tempdir("reload");
    let one = fc(vec![feature(
        json!({"id": "a", "kind": "source_site"}),
        json!({"type": "Polygon", "coordinates": [rect(120.0, 33.0, 120.01, 33.01)]}),
    )]);
    std::fs::write(dir.join("f.geojson"), &one).expect("write");
    let handle = FenceHandle::new(FenceSet::load_dir(&dir).expect("load"));
    let task =
        muckwatch::geofence::spawn_reloader(handle.clone(), dir.clone(), Duration::from_millis(20));
    let held = handle.load();
    assert_eq!(held.len(), 1);
    assert!(handle.is_current(&held));

    let two = fc(vec![
        feature(
            json!({"id": "a", "kind": "source_site"}),
            json!({"type": "Polygon", "coordinates": [rect(120.0, 33.0, 120.01, 33.01)]}),
        ),
        feature(
            json!({"id": "b", "kind": "route"}),
            json!({"type": "LineString", "coordinates": [[120.0, 33.0], [120.1, 33.0]]}),
        ),
    ]);
    std::fs::write(dir.join("f.geojson"), &two).expect("write");
    wait_for(|| handle.load().len() == 2).await;
    assert_eq!(held.len(), 1, "a reader keeps the set it loaded");
    assert!(
        !handle.is_current(&held),
        "and can tell that a newer one is in force"
    );

    // a bad new file: refused, the two fences stay
    std::fs::write(dir.join("g.geojson"), "{ not json").expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(handle.load().len(), 2);
    // fixed: picked up
    std::fs::write(dir.join("g.geojson"), fc(vec![])).expect("write");
    std::fs::remove_file(dir.join("f.geojson")).expect("rm");
    wait_for(|| handle.load().is_empty()).await;
    task.abort();
}

async fn wait_for(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for reload");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn handles_are_send_sync_and_cheap() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<FenceSet>();
    assert_send_sync::<FenceHandle>();
    let h = FenceHandle::default();
    assert!(h.load().is_empty());
    h.store(small_city());
    assert_eq!(h.clone().load().len(), 4);
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_at_once() {
    // Register a SIGHUP handler before anything can send one, so the signal can never
    // take the default action (terminate) in this test process.
    let _guard =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).expect("signal");
    let dir = tempdir("sighup");
    let site = |id: &str| {
        fc(vec![feature(
            json!({"id": id, "kind": "source_site"}),
            json!({"type": "Polygon", "coordinates": [rect(120.0, 33.0, 120.01, 33.01)]}),
        )])
    };
    std::fs::write(dir.join("f.geojson"), site("a")).expect("write");
    let handle = FenceHandle::new(FenceSet::load_dir(&dir).expect("load"));
    // polling so slow that only the signal can explain a reload within the test
    let task =
        muckwatch::geofence::spawn_reloader(handle.clone(), dir.clone(), Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(100)).await; // let the reloader subscribe
    std::fs::write(dir.join("f.geojson"), site("b")).expect("write");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    wait_for(|| handle.load().get("b").is_some()).await;
    task.abort();
}

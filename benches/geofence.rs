//! Fixes classified per second against a synthetic city of 10,000 polygons and 5,000
//! corridors, single core, with the brute-force scan (geo's predicates on every fence,
//! as in the property tests) as the baseline in the same run.
//!
//! `cargo bench --bench geofence` (about two minutes; the short measurement times are set
//! below). A plain-text summary with the ratio is printed at the end.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use geo::{Coord, Distance, Euclidean, Intersects, Point};
use muckwatch::geofence::{FenceIdx, FenceKind, FenceSet, PlanePoint, Projection, Shape};
use serde_json::json;

const POLYGONS: usize = 10_000;
const CORRIDORS: usize = 5_000;
/// The city is a square of this half-size (metres) around 33.4 N 120.15 E.
const HALF_EXTENT_M: f64 = 20_000.0;

struct Rng(u64);
impl Rng {
    fn f(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f()
    }
}

struct City {
    set: FenceSet,
    fixes: Vec<PlanePoint>,
    permit_routes: Vec<FenceIdx>,
}

fn city() -> &'static City {
    static CITY: OnceLock<City> = OnceLock::new();
    CITY.get_or_init(|| {
        let started = Instant::now();
        let plane = Projection::new(33.4, 120.15);
        let ll = |x: f64, y: f64| {
            let (lat, lon) = plane.unproject(PlanePoint::new(x, y));
            [lon, lat]
        };
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let kinds = ["source_site", "disposal_site", "restricted_zone", "speed_zone"];
        let mut features = Vec::with_capacity(POLYGONS + CORRIDORS);
        for i in 0..POLYGONS {
            let (cx, cy) = (rng.range(-HALF_EXTENT_M, HALF_EXTENT_M), rng.range(-HALF_EXTENT_M, HALF_EXTENT_M));
            let r = rng.range(30.0, 200.0);
            let n = 8 + (rng.f() * 24.0) as usize;
            let mut ring: Vec<[f64; 2]> = (0..n)
                .map(|k| {
                    let t = (k as f64 + rng.range(-0.3, 0.3)) / n as f64 * std::f64::consts::TAU;
                    let rr = r * rng.range(0.6, 1.0);
                    ll(cx + rr * t.cos(), cy + rr * t.sin())
                })
                .collect();
            ring.push(ring[0]);
            let mut rings = vec![ring];
            if i % 10 == 0 {
                let mut hole: Vec<[f64; 2]> = (0..5)
                    .map(|k| {
                        let t = k as f64 / 5.0 * std::f64::consts::TAU;
                        ll(cx + 0.2 * r * t.cos(), cy + 0.2 * r * t.sin())
                    })
                    .collect();
                hole.push(hole[0]);
                rings.push(hole);
            }
            features.push(json!({"type": "Feature",
                "properties": {"id": format!("p{i}"), "kind": kinds[i % 4], "speed_limit_kmh": 30},
                "geometry": {"type": "Polygon", "coordinates": rings}}));
        }
        for i in 0..CORRIDORS {
            let (mut x, mut y) = (rng.range(-HALF_EXTENT_M, HALF_EXTENT_M), rng.range(-HALF_EXTENT_M, HALF_EXTENT_M));
            let mut heading = rng.range(0.0, std::f64::consts::TAU);
            let mut line = vec![ll(x, y)];
            for _ in 0..(5 + (rng.f() * 10.0) as usize) {
                heading += rng.range(-0.6, 0.6);
                let step = rng.range(200.0, 800.0);
                x += step * heading.cos();
                y += step * heading.sin();
                line.push(ll(x, y));
            }
            features.push(json!({"type": "Feature",
                "properties": {"id": format!("r{i}"), "kind": "route", "half_width_m": rng.range(30.0, 60.0)},
                "geometry": {"type": "LineString", "coordinates": line}}));
        }
        let features: Vec<geojson::Feature> =
            features.into_iter().map(|f| serde_json::from_value(f).expect("feature")).collect();
        let set = FenceSet::from_features("synthetic", features).expect("synthetic city is valid");
        let fixes = (0..100_000)
            .map(|_| {
                let [lon, lat] = ll(rng.range(-HALF_EXTENT_M, HALF_EXTENT_M), rng.range(-HALF_EXTENT_M, HALF_EXTENT_M));
                set.project(lat, lon)
            })
            .collect();
        let permit_routes = ["r17", "r4242"].iter().filter_map(|id| set.get(id)).collect();
        eprintln!("synthetic city: {} fences built in {:.2?}", set.len(), started.elapsed());
        City { set, fixes, permit_routes }
    })
}

/// The baseline: every fence, geo's predicates, no index.
fn brute_containing(set: &FenceSet, p: PlanePoint, out: &mut Vec<FenceIdx>) {
    out.clear();
    let c = Coord { x: p.x, y: p.y };
    for (idx, f) in set.iter() {
        let hit = match f.shape() {
            Shape::Area(mp) => mp.intersects(&c),
            Shape::Circle { centre, radius_m } => {
                Euclidean.distance(Point::new(centre.x, centre.y), Point::from(c)) <= *radius_m
            }
            Shape::Corridor {
                lines,
                half_width_m,
            } => lines
                .0
                .iter()
                .any(|l| Euclidean.distance(&Point::from(c), l) <= *half_width_m),
        };
        if hit {
            out.push(idx);
        }
    }
}

const INDEXED_BATCH: usize = 10_000;
const SCAN_BATCH: usize = 20;

fn bench_classify(c: &mut Criterion) {
    let city = city();
    let mut g = c.benchmark_group("classify");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let mut out = Vec::with_capacity(64);
    g.throughput(Throughput::Elements(INDEXED_BATCH as u64));
    g.bench_function("indexed_containing", |b| {
        let mut k = 0;
        b.iter(|| {
            let mut n = 0;
            for _ in 0..INDEXED_BATCH {
                k = (k + 1) % city.fixes.len();
                city.set.containing(black_box(city.fixes[k]), &mut out);
                n += out.len();
            }
            n
        })
    });
    g.throughput(Throughput::Elements(SCAN_BATCH as u64));
    g.bench_function("brute_force_scan", |b| {
        let mut k = 0;
        b.iter(|| {
            let mut n = 0;
            for _ in 0..SCAN_BATCH {
                k = (k + 1) % city.fixes.len();
                brute_containing(&city.set, black_box(city.fixes[k]), &mut out);
                n += out.len();
            }
            n
        })
    });
    g.finish();
}

fn bench_other_queries(c: &mut Criterion) {
    let city = city();
    let mut g = c.benchmark_group("queries");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(INDEXED_BATCH as u64));
    g.bench_function("nearest_route", |b| {
        b.iter(|| {
            city.fixes[..INDEXED_BATCH]
                .iter()
                .filter_map(|p| city.set.nearest_route(black_box(*p)))
                .count()
        })
    });
    g.bench_function("distance_to_permit_routes", |b| {
        b.iter(|| {
            city.fixes[..INDEXED_BATCH]
                .iter()
                .filter_map(|p| {
                    city.set
                        .distance_to_routes(black_box(*p), &city.permit_routes)
                })
                .count()
        })
    });
    let mut out = Vec::with_capacity(16);
    g.bench_function("areas_crossed_restricted", |b| {
        b.iter(|| {
            let mut n = 0;
            for w in city.fixes[..INDEXED_BATCH + 1].windows(2) {
                // consecutive fixes of a truck are a few hundred metres apart
                let a = w[0];
                let b2 = PlanePoint::new(a.x + (w[1].x - a.x) * 0.01, a.y + (w[1].y - a.y) * 0.01);
                city.set.areas_crossed(
                    black_box(a),
                    black_box(b2),
                    FenceKind::RestrictedZone,
                    &mut out,
                );
                n += out.len();
            }
            n
        })
    });
    g.finish();
}

/// Plain timing of both classifiers over the same fixes, and their ratio.
fn summary() {
    let city = city();
    let mut out = Vec::with_capacity(64);
    let time =
        |f: &mut dyn FnMut(PlanePoint, &mut Vec<FenceIdx>), n: usize, out: &mut Vec<FenceIdx>| {
            let started = Instant::now();
            for p in city.fixes.iter().cycle().take(n) {
                f(black_box(*p), out);
            }
            n as f64 / started.elapsed().as_secs_f64()
        };
    let indexed = time(&mut |p, o| city.set.containing(p, o), 1_000_000, &mut out);
    let scan = time(&mut |p, o| brute_containing(&city.set, p, o), 300, &mut out);
    // both must agree, checked on a sample
    let mut a = Vec::new();
    for p in city.fixes.iter().take(200) {
        city.set.containing(*p, &mut a);
        brute_containing(&city.set, *p, &mut out);
        a.sort();
        out.sort();
        assert_eq!(a, out, "indexed and scan disagree at {p:?}");
    }
    println!(
        "\nsummary: {} polygons + {} corridors, single core: indexed {:.0} fixes/s, brute-force scan {:.0} fixes/s, ratio {:.0}x",
        POLYGONS, CORRIDORS, indexed, scan, indexed / scan
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_classify(&mut c);
    bench_other_queries(&mut c);
    c.final_summary();
    summary();
}

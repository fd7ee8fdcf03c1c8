//! Rule engine throughput: fixes per second through `Rules::on_fix` on the sample city
//! with 5,000 vehicles, round-robin (one fix of every vehicle per round, 10 s of fleet
//! time apart), each driving back and forth along one of the 30 routes under its own
//! permit at 25-35 km/h (some speeding in the 30 km/h school zones, as in life), plus
//! the memory each vehicle's state takes and the cost of a watermark scan.
//!
//! `cargo bench --bench rules` (about half a minute; short measurement times below).
//! A plain-text summary is printed at the end.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use muckwatch::fix::{DeviceId, Fix};
use muckwatch::geofence::{FenceKind, FenceSet, PlanePoint, Shape};
use muckwatch::permit::Permit;
use muckwatch::registry::{FirmId, Plate};
use muckwatch::rules::{RuleEvent, Rules, RulesConfig, VehicleContext, VehicleState};
use muckwatch::violation::ViolationCode;
use serde_json::json;

const VEHICLES: usize = 5_000;
/// Fixes per leg; a vehicle drives a leg forward, then the same leg back.
const LEG_FIXES: usize = 60;
const FIX_EVERY_MS: i64 = 10_000;
/// Monday 2024-06-03 10:00 +08:00.
const START_MS: i64 = 1_717_380_000_000;

struct Fleet {
    set: FenceSet,
    rules: Rules,
    contexts: Vec<VehicleContext>,
    /// Per vehicle, one leg of positions (lat, lon) and its speed.
    legs: Vec<(Vec<(f64, f64)>, f64)>,
    states: Vec<VehicleState>,
    round: usize,
    out: Vec<RuleEvent>,
    /// Violations raised so far, by code index.
    raised: [usize; 10],
}

fn route_points(shape: &Shape) -> Vec<PlanePoint> {
    match shape {
        Shape::Corridor { lines, .. } => lines
            .0
            .iter()
            .flat_map(|l| l.0.iter().map(|c| PlanePoint::new(c.x, c.y)))
            .collect(),
        _ => Vec::new(),
    }
}

/// The point `s` metres along a polyline.
fn along(pts: &[PlanePoint], mut s: f64) -> PlanePoint {
    for w in pts.windows(2) {
        let d = w[0].distance(w[1]);
        if s <= d && d > 0.0 {
            let f = s / d;
            return PlanePoint::new(
                w[0].x + f * (w[1].x - w[0].x),
                w[0].y + f * (w[1].y - w[0].y),
            );
        }
        s -= d;
    }
    pts[pts.len() - 1]
}

fn fleet() -> Fleet {
    let set = FenceSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("geofences"))
        .expect("sample city");
    let routes: Vec<(String, String, String, Vec<PlanePoint>)> = set
        .iter()
        .filter(|(_, f)| f.kind == FenceKind::Route)
        .map(|(_, f)| {
            let prop = |k: &str| {
                f.feature()
                    .property(k)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .expect("route source/disposal")
            };
            (
                f.id.clone(),
                prop("source"),
                prop("disposal"),
                route_points(f.shape()),
            )
        })
        .collect();
    let mut contexts = Vec::with_capacity(VEHICLES);
    let mut legs = Vec::with_capacity(VEHICLES);
    for v in 0..VEHICLES {
        let (route, source, disposal, pts) = &routes[v % routes.len()];
        let plate = format!("苏J{v:05}");
        let permit = Permit::from_json(
            &json!({"id": format!("P-{v}"), "firm_id": format!("firm-{}", v % 50),
            "plates": [plate], "source_site": source, "disposal_site": disposal, "routes": [route],
            "windows": [], "valid_from": "2024-01-01", "valid_until": "2024-12-31"}),
        )
        .expect("permit");
        contexts.push(VehicleContext {
            plate: Plate::parse(&plate).expect("plate"),
            device_id: DeviceId::parse(&format!("0138{v:08}")).expect("device"),
            firm_id: FirmId::parse(&format!("firm-{}", v % 50)).expect("firm"),
            rated_load_t: 30.0,
            permits: vec![Arc::new(permit)],
        });
        let speed = 25.0 + (v % 11) as f64;
        let step = speed / 3.6 * (FIX_EVERY_MS as f64 / 1000.0);
        let length: f64 = pts.windows(2).map(|w| w[0].distance(w[1])).sum();
        let room = (length - step * LEG_FIXES as f64).max(0.0);
        let s0 = room * ((v * 7919) % 1000) as f64 / 1000.0;
        let leg = (0..LEG_FIXES)
            .map(|k| set.unproject(along(pts, s0 + step * k as f64)))
            .collect();
        legs.push((leg, speed));
    }
    let rules = Rules::new(RulesConfig::default(), chrono_tz::Asia::Shanghai);
    Fleet {
        set,
        rules,
        contexts,
        legs,
        states: vec![VehicleState::default(); VEHICLES],
        round: 0,
        out: Vec::with_capacity(1024),
        raised: [0; 10],
    }
}

impl Fleet {
    /// One fix of every vehicle, in turn.
    fn round(&mut self) {
        let leg_pass = self.round / LEG_FIXES;
        let k = self.round % LEG_FIXES;
        let k = if leg_pass.is_multiple_of(2) {
            k
        } else {
            LEG_FIXES - 1 - k
        }; // there and back
        let base_ms = START_MS + self.round as i64 * FIX_EVERY_MS;
        for v in 0..VEHICLES {
            let ((lat, lon), speed) = (self.legs[v].0[k], self.legs[v].1);
            let fix = Fix {
                device_id: self.contexts[v].device_id,
                ts_ms: base_ms + v as i64, // round-robin: the fleet in fix-time order
                lat,
                lon,
                speed_kmh: speed,
                heading: None,
                acc: Some(true),
                tipper_up: Some(false),
                cover_closed: Some(true),
                load_t: Some(22.0),
            };
            self.rules.on_fix(
                &mut self.states[v],
                &self.contexts[v],
                &self.set,
                black_box(&fix),
                &mut self.out,
            );
        }
        for event in self.out.drain(..) {
            if let RuleEvent::Raised(v) = event {
                self.raised[v.code.index()] += 1;
            }
        }
        self.round += 1;
    }

    fn watermark_scan(&mut self) {
        let wm = START_MS + self.round as i64 * FIX_EVERY_MS;
        for v in 0..VEHICLES {
            self.rules
                .on_watermark(&mut self.states[v], &self.contexts[v], wm, &mut self.out);
        }
        self.out.clear();
    }
}

fn main() {
    let started = Instant::now();
    let mut fleet = fleet();
    println!(
        "rules benchmark: {VEHICLES} vehicles on the sample city, built in {:.1?}",
        started.elapsed()
    );
    for _ in 0..3 {
        fleet.round(); // warm up: first fixes, scratch buffers
    }

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(VEHICLES as u64));
    g.bench_function("on_fix round of 5000 vehicles", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                fleet.round();
            }
            t.elapsed()
        })
    });
    g.bench_function("on_watermark scan of 5000 vehicles", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                fleet.watermark_scan();
            }
            t.elapsed()
        })
    });
    g.finish();
    c.final_summary();

    // plain summary over a fixed amount of work
    let rounds = 2 * LEG_FIXES;
    let t = Instant::now();
    for _ in 0..rounds {
        fleet.round();
    }
    let secs = t.elapsed().as_secs_f64();
    let fixes = rounds * VEHICLES;
    let per_vehicle = fleet
        .states
        .iter()
        .map(VehicleState::memory_bytes)
        .max()
        .unwrap_or(0);
    println!(
        "\nsummary: {fixes} fixes in {secs:.2} s = {:.0} fixes/s single core ({:.2} us/fix); \
         state {per_vehicle} bytes per vehicle ({:.1} MB for {VEHICLES})",
        fixes as f64 / secs,
        secs * 1e6 / fixes as f64,
        (per_vehicle * VEHICLES) as f64 / 1e6,
    );
    let raised: Vec<String> = ViolationCode::ALL
        .into_iter()
        .filter(|c| fleet.raised[c.index()] > 0)
        .map(|c| format!("{c} {}", fleet.raised[c.index()]))
        .collect();
    println!(
        "raised over {} rounds ({} fleet-minutes): {}",
        fleet.round,
        fleet.round / 6,
        raised.join(", ")
    );
}

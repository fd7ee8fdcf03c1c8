//! Shared by the rule tests: the sample city, permits and vehicles, NDJSON fixtures,
//! and a track builder that drives along a route's LineString (optionally offset to
//! the side) so that tracks are realistic without hand-writing hundreds of fixes.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use chrono::{NaiveDate, TimeZone};
use muckwatch::fix::{DeviceId, Fix};
use muckwatch::geofence::{FenceSet, PlanePoint, Shape};
use muckwatch::ingest::decode::decode_fix;
use muckwatch::permit::Permit;
use muckwatch::registry::{FirmId, Plate};
use muckwatch::rules::{RuleEvent, Rules, RulesConfig, VehicleContext, VehicleState, Violation};
use muckwatch::violation::ViolationCode;
use serde_json::json;

pub const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

pub fn city() -> &'static FenceSet {
    static CITY: OnceLock<FenceSet> = OnceLock::new();
    CITY.get_or_init(|| {
        FenceSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("geofences"))
            .expect("sample city loads")
    })
}

pub fn rules() -> Rules {
    Rules::new(RulesConfig::default(), TZ)
}

/// Milliseconds of a city-local wall time.
pub fn local_ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    let naive = NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|d| d.and_hms_opt(h, mi, s))
        .expect("valid local time");
    TZ.from_local_datetime(&naive)
        .single()
        .expect("unambiguous")
        .timestamp_millis()
}

/// Monday 2024-06-03 at a local time: the default day of the tests (school in session).
pub fn monday(h: u32, mi: u32, s: u32) -> i64 {
    local_ms(2024, 6, 3, h, mi, s)
}

pub fn device(id: &str) -> DeviceId {
    DeviceId::parse(id).expect("device id")
}

/// A permit for `plate` valid through June 2024, any time of day unless `windows`.
pub fn permit(
    id: &str,
    plate: &str,
    source: &str,
    disposal: &str,
    routes: &[&str],
    windows: &[(&str, &str)],
) -> Arc<Permit> {
    let windows: Vec<_> = windows
        .iter()
        .map(|(s, e)| json!({"start": s, "end": e}))
        .collect();
    let body = json!({"id": id, "firm_id": "firm-1", "plates": [plate], "source_site": source,
        "disposal_site": disposal, "routes": routes, "windows": windows,
        "valid_from": "2024-06-01", "valid_until": "2024-06-30"});
    Arc::new(Permit::from_json(&body).expect("test permit"))
}

/// The standard night permit: P-NIGHT, s01 to d01 along route-s01-d01, 21:00-06:00.
pub fn night_permit() -> Arc<Permit> {
    permit(
        "P-NIGHT",
        "苏J00001",
        "s01",
        "d01",
        &["route-s01-d01"],
        &[("21:00", "06:00")],
    )
}

/// The standard truck: permit P-1 from s01 to d01 along route-s01-d01, rated 30 t.
pub fn truck(dev: &str) -> VehicleContext {
    vehicle(
        dev,
        vec![permit(
            "P-1",
            "苏J00001",
            "s01",
            "d01",
            &["route-s01-d01"],
            &[],
        )],
    )
}

pub fn vehicle(dev: &str, permits: Vec<Arc<Permit>>) -> VehicleContext {
    VehicleContext {
        plate: Plate::parse("苏J00001").expect("plate"),
        device_id: device(dev),
        firm_id: FirmId::parse("firm-1").expect("firm"),
        rated_load_t: 30.0,
        permits,
    }
}

/// Fixes of an NDJSON fixture under tests/fixtures/rules, decoded as ingest does.
pub fn fixture(name: &str, dev: &str) -> Vec<Fix> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rules")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let device = device(dev);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| decode_fix(l, &device).unwrap_or_else(|r| panic!("{name}: {r:?} in {l}")))
        .collect()
}

/// Runs fixes through one vehicle's fresh state.
pub fn run(rules: &Rules, ctx: &VehicleContext, fixes: &[Fix]) -> Vec<RuleEvent> {
    let mut state = VehicleState::default();
    run_with(rules, &mut state, ctx, fixes)
}

pub fn run_with(
    rules: &Rules,
    state: &mut VehicleState,
    ctx: &VehicleContext,
    fixes: &[Fix],
) -> Vec<RuleEvent> {
    let mut out = Vec::new();
    for fix in fixes {
        rules.on_fix(state, ctx, city(), fix, &mut out);
    }
    out
}

pub fn raised(events: &[RuleEvent]) -> Vec<&Violation> {
    events
        .iter()
        .filter_map(|e| match e {
            RuleEvent::Raised(v) => Some(v),
            RuleEvent::Ended { .. } | RuleEvent::Late { .. } => None,
        })
        .collect()
}

pub fn raised_codes(events: &[RuleEvent]) -> Vec<ViolationCode> {
    raised(events).iter().map(|v| v.code).collect()
}

/// The single violation of `code`, failing with everything raised otherwise.
pub fn only(events: &[RuleEvent], code: ViolationCode) -> Violation {
    let all = raised(events);
    let of: Vec<_> = all.iter().filter(|v| v.code == code).collect();
    assert_eq!(of.len(), 1, "expected one {code}, got {all:#?}");
    (*of[0]).clone()
}

pub fn ended(events: &[RuleEvent], code: ViolationCode) -> Vec<(i64, i64)> {
    events
        .iter()
        .filter_map(|e| match e {
            RuleEvent::Ended {
                code: c,
                started_ms,
                ended_ms,
                ..
            } if *c == code => Some((*started_ms, *ended_ms)),
            _ => None,
        })
        .collect()
}

/// A route's centre line in the city's plane, with cumulative lengths.
pub struct Route {
    pts: Vec<PlanePoint>,
    cum: Vec<f64>,
}

impl Route {
    pub fn new(id: &str) -> Route {
        let set = city();
        let idx = set.get(id).unwrap_or_else(|| panic!("no route {id}"));
        let Shape::Corridor { lines, .. } = set.fence(idx).shape() else {
            panic!("{id} is not a route")
        };
        let pts: Vec<PlanePoint> = lines
            .0
            .iter()
            .flat_map(|l| l.0.iter().map(|c| PlanePoint::new(c.x, c.y)))
            .collect();
        let mut cum = vec![0.0];
        for w in pts.windows(2) {
            cum.push(cum[cum.len() - 1] + w[0].distance(w[1]));
        }
        Route { pts, cum }
    }

    pub fn len(&self) -> f64 {
        self.cum[self.cum.len() - 1]
    }

    /// The point `s` metres along the line, moved `left_m` to the left of the
    /// direction of travel (negative: to the right).
    pub fn at(&self, s: f64, left_m: f64) -> PlanePoint {
        let s = s.clamp(0.0, self.len());
        let k = self
            .cum
            .partition_point(|&c| c <= s)
            .clamp(1, self.pts.len() - 1);
        let (a, b) = (self.pts[k - 1], self.pts[k]);
        let seg = a.distance(b).max(1e-9);
        let f = (s - self.cum[k - 1]) / seg;
        let (dx, dy) = ((b.x - a.x) / seg, (b.y - a.y) / seg);
        PlanePoint::new(
            a.x + f * (b.x - a.x) - dy * left_m,
            a.y + f * (b.y - a.y) + dx * left_m,
        )
    }

    pub fn lat_lon(&self, s: f64, left_m: f64) -> (f64, f64) {
        city().unproject(self.at(s, left_m))
    }
}

/// Builds a vehicle's fixes in time order.
pub struct Track {
    pub device: DeviceId,
    pub t_ms: i64,
    pub fixes: Vec<Fix>,
}

impl Track {
    pub fn new(dev: &str, start_ms: i64) -> Track {
        Track {
            device: device(dev),
            t_ms: start_ms,
            fixes: Vec::new(),
        }
    }

    /// One fix at the current time, then the clock moves `every_s` on.
    pub fn fix(&mut self, (lat, lon): (f64, f64), speed_kmh: f64, every_s: i64) -> &mut Fix {
        self.fixes.push(Fix {
            device_id: self.device,
            ts_ms: self.t_ms,
            lat,
            lon,
            speed_kmh,
            heading: None,
            acc: Some(true),
            tipper_up: Some(false),
            cover_closed: Some(true),
            load_t: None,
        });
        self.t_ms += every_s * 1000;
        self.fixes.last_mut().expect("just pushed")
    }

    /// Drives from `from_m` to `to_m` along the route at `speed_kmh`, a fix every
    /// `every_s`, each `lateral(i)` metres to the left of the line (i counts fixes).
    pub fn drive(
        &mut self,
        route: &Route,
        from_m: f64,
        to_m: f64,
        speed_kmh: f64,
        every_s: i64,
        lateral: impl Fn(usize) -> f64,
    ) -> &mut Track {
        let step = speed_kmh / 3.6 * every_s as f64;
        let mut s = from_m;
        let mut i = 0;
        while s <= to_m {
            self.fix(route.lat_lon(s, lateral(i)), speed_kmh, every_s);
            s += step;
            i += 1;
        }
        self
    }

    /// Stands still at one place for `secs`, a fix every `every_s`.
    pub fn park(&mut self, at: (f64, f64), secs: i64, every_s: i64) -> &mut Track {
        for _ in 0..=secs / every_s {
            self.fix(at, 0.0, every_s);
        }
        self
    }

    /// Time of the i-th fix.
    pub fn ts(&self, i: usize) -> i64 {
        self.fixes[i].ts_ms
    }
}

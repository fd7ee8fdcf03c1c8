//! The simulator's own judgement of a truck's TRUE state, second by second: is this,
//! right now, what the code describes? It reads the contract's definitions (and the
//! thresholds in force), not the rule engine, and it is only asked about the codes a
//! scripted behaviour is meant to produce (a detour is watched for RESTRICTED_ZONE and
//! ROUTE_DEVIATION), so that honest stretches never cost a fence query.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime};
use chrono_tz::Tz;

use super::route::speed_limit_at;
use crate::geofence::{FenceIdx, FenceKind, FenceSet, PlanePoint};
use crate::permit::Permit;
use crate::violation::ViolationCode;

/// A set of codes (bit per `ViolationCode::index`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Codes(u16);

impl Codes {
    pub const NONE: Codes = Codes(0);

    pub fn of(codes: &[ViolationCode]) -> Codes {
        Codes(codes.iter().fold(0, |m, c| m | 1 << c.index()))
    }

    pub fn has(self, code: ViolationCode) -> bool {
        self.0 & (1 << code.index()) != 0
    }

    pub fn with(self, other: Codes) -> Codes {
        Codes(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// What the truck is, for the oracle: its permits (as the rules will see them), its
/// rated load, and where the fences and the city's thresholds are.
#[derive(Debug, Clone)]
pub struct Duty {
    pub fences: Arc<FenceSet>,
    pub tz: Tz,
    pub permits: Vec<Permit>,
    pub rated_load_t: f64,
    pub moving_kmh: f64,
    pub city_limit_kmh: f64,
}

/// The truck's true state in one second.
#[derive(Debug, Clone, Copy)]
pub struct TrueState {
    pub t_ms: i64,
    pub p: PlanePoint,
    pub speed_kmh: f64,
    pub tipper_up: bool,
    pub cover_open: bool,
    pub load_t: f64,
}

/// Per-truck scratch for the fence queries.
#[derive(Debug, Default)]
pub struct Oracle {
    inside: Vec<FenceIdx>,
}

impl Oracle {
    /// For each watched code, whether its condition holds now. The unloading codes
    /// are only watched during the scripted unloading they describe, so for them
    /// "the tipper is up" is the whole question.
    pub fn judge(
        &mut self,
        duty: &Duty,
        watch: Codes,
        s: &TrueState,
        out: &mut Vec<(ViolationCode, bool)>,
    ) {
        out.clear();
        if watch.is_empty() {
            return;
        }
        let needs_place = [
            ViolationCode::NoPermit,
            ViolationCode::OutOfHours,
            ViolationCode::RouteDeviation,
            ViolationCode::RestrictedZone,
        ]
        .into_iter()
        .any(|c| watch.has(c));
        if needs_place {
            duty.fences.containing(s.p, &mut self.inside);
        } else {
            self.inside.clear();
        }
        let local = local_time(duty.tz, s.t_ms);
        let valid: Vec<&Permit> = duty
            .permits
            .iter()
            .filter(|p| p.valid_on(local.date()))
            .collect();
        let moving = s.speed_kmh >= duty.moving_kmh;
        let fences = &duty.fences;
        let in_site_of = |permits: &mut dyn Iterator<Item = &Permit>| {
            let ids: Vec<&str> = permits
                .flat_map(|p| [p.source_site.as_str(), p.disposal_site.as_str()])
                .collect();
            self.inside.iter().any(|&i| {
                let f = fences.fence(i);
                matches!(f.kind, FenceKind::SourceSite | FenceKind::DisposalSite)
                    && ids.contains(&f.id.as_str())
            })
        };
        let in_valid_site = in_site_of(&mut valid.iter().copied());
        for code in ViolationCode::ALL.into_iter().filter(|&c| watch.has(c)) {
            let active = match code {
                ViolationCode::NoPermit => {
                    moving && valid.is_empty() && !in_site_of(&mut duty.permits.iter())
                }
                ViolationCode::OutOfHours => {
                    moving
                        && !valid.is_empty()
                        && !valid.iter().any(|p| p.in_window(local.time()))
                        && !in_valid_site
                }
                ViolationCode::RouteDeviation => {
                    !in_valid_site && off_corridors(fences, &valid, s.p)
                }
                ViolationCode::RestrictedZone => self.inside.iter().any(|&i| {
                    let f = fences.fence(i);
                    f.kind == FenceKind::RestrictedZone && f.is_active(local)
                }),
                ViolationCode::Speeding => {
                    let mut scratch = Vec::new();
                    s.speed_kmh > speed_limit_at(fences, s.p, duty.city_limit_kmh, &mut scratch)
                }
                ViolationCode::IllegalDumping | ViolationCode::WrongDisposalSite => s.tipper_up,
                ViolationCode::CoverOpen => s.cover_open && moving,
                ViolationCode::Overload => s.load_t > duty.rated_load_t,
                ViolationCode::TrackGap => continue, // judged by the terminal, not the truck
            };
            out.push((code, active));
        }
    }
}

/// Outside every corridor of the valid permits' routes (farther than its half-width
/// from each); false when no valid permit names a route.
fn off_corridors(fences: &FenceSet, valid: &[&Permit], p: PlanePoint) -> bool {
    let mut any = false;
    for permit in valid {
        for id in &permit.routes {
            let Some(idx) = fences.get(id) else { continue };
            let fence = fences.fence(idx);
            let Some((_, d)) = fences.distance_to_routes(p, &[idx]) else {
                continue;
            };
            any = true;
            if d <= fence
                .half_width_m
                .unwrap_or(crate::geofence::DEFAULT_HALF_WIDTH_M)
            {
                return false;
            }
        }
    }
    any
}

pub fn local_time(tz: Tz, ms: i64) -> NaiveDateTime {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz).naive_local())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn duty(valid_from: &str, window: (&str, &str)) -> Duty {
        let permit = Permit::from_json(&json!({"id": "P1", "firm_id": "f", "plates": ["苏J1"], "source_site": "s01",
            "disposal_site": "d01", "routes": ["route-s01-d01"], "windows": [{"start": window.0, "end": window.1}],
            "valid_from": valid_from, "valid_until": "2021-06-30"}))
        .expect("permit");
        let fences = FenceSet::load_dir(std::path::Path::new("geofences")).expect("sample city");
        Duty {
            fences: Arc::new(fences),
            tz: chrono_tz::Asia::Shanghai,
            permits: vec![permit],
            rated_load_t: 31.0,
            moving_kmh: 5.0,
            city_limit_kmh: 40.0,
        }
    }

    fn at(duty: &Duty, lat: f64, lon: f64, speed_kmh: f64) -> TrueState {
        // 2021-06-01 22:00 +08:00
        TrueState {
            t_ms: 1_622_556_000_000,
            p: duty.fences.project(lat, lon),
            speed_kmh,
            tipper_up: false,
            cover_open: false,
            load_t: 20.0,
        }
    }

    fn judged(duty: &Duty, s: &TrueState, codes: &[ViolationCode]) -> Vec<(ViolationCode, bool)> {
        let mut out = Vec::new();
        Oracle::default().judge(duty, Codes::of(codes), s, &mut out);
        out
    }

    #[test]
    fn judges_places_permits_and_windows() {
        use ViolationCode::*;
        let all = [
            NoPermit,
            OutOfHours,
            RouteDeviation,
            RestrictedZone,
            Speeding,
            Overload,
        ];
        let ok = duty("2021-06-01", ("20:00", "06:00"));
        // on route-s01-d01, 3 km from s01, at 30 km/h
        let route = ok.fences.get("route-s01-d01").expect("route");
        let crate::geofence::Shape::Corridor { lines, .. } = ok.fences.fence(route).shape() else {
            panic!()
        };
        let on = lines.0[0].0[20];
        let on_route = TrueState {
            p: PlanePoint::from(on),
            ..at(&ok, 0.0, 0.0, 30.0)
        };
        assert!(
            judged(&ok, &on_route, &all).iter().all(|(_, a)| !a),
            "honest: nothing holds"
        );
        let off = TrueState {
            p: PlanePoint::new(on.x + 400.0, on.y + 400.0),
            ..on_route
        };
        assert!(judged(&ok, &off, &[RouteDeviation])[0].1);
        let fast = TrueState {
            speed_kmh: 75.0,
            ..on_route
        };
        assert!(judged(&ok, &fast, &[Speeding])[0].1);
        let heavy = TrueState {
            load_t: 35.0,
            ..on_route
        };
        assert!(judged(&ok, &heavy, &[Overload])[0].1);
        let early = duty("2021-06-01", ("23:00", "06:00"));
        assert!(
            judged(&early, &on_route, &[OutOfHours])[0].1,
            "22:00 is before the window"
        );
        let expired = duty("2021-06-05", ("20:00", "06:00"));
        assert_eq!(
            judged(&expired, &on_route, &[NoPermit, RouteDeviation]),
            vec![(NoPermit, true), (RouteDeviation, false)]
        );
        let old_town = ok.fences.get("rz-01").expect("rz-01");
        let crate::geofence::Shape::Area(mp) = ok.fences.fence(old_town).shape() else {
            panic!()
        };
        let inside = geo::Centroid::centroid(mp).expect("centroid");
        let in_zone = TrueState {
            p: PlanePoint::new(inside.x(), inside.y()),
            ..on_route
        };
        assert!(judged(&ok, &in_zone, &[RestrictedZone])[0].1);
    }
}

//! GPS noise (issue 15): terminals that report every 30 s with fixes straying 30 m,
//! against a 40 m corridor. Driving its edge must raise nothing; 150 m off it for
//! three minutes must still be a ROUTE_DEVIATION, about as soon as on a clean track.

use crate::rules_support::*;
use muckwatch::geofence::PlanePoint;
use muckwatch::rules::{RuleEvent, Rules, RulesConfig};
use muckwatch::sim::noise::Rng;
use muckwatch::violation::ViolationCode as Code;

/// A 40 m corridor of the sample city (s03 to d03, 17.9 km).
const ROUTE: &str = "route-s03-d03";
const HALF_WIDTH_M: f64 = 40.0;

fn permit_40() -> muckwatch::rules::VehicleContext {
    vehicle(
        "T-NOISE",
        vec![permit("P-40", "苏J00001", "s03", "d03", &[ROUTE], &[])],
    )
}

/// A terminal reporting every `every_s` seconds while its truck drives `route` at
/// `speed_kmh` from `from_m` to `to_m` (either way), `lateral(s)` metres left of the centre line;
/// each fix off by `sigma_m` per axis, with the speed and heading a terminal reports.
#[allow(clippy::too_many_arguments)]
fn noisy_drive(
    track: &mut Track,
    route: &Route,
    from_m: f64,
    to_m: f64,
    speed_kmh: f64,
    every_s: i64,
    sigma_m: f64,
    rng: &mut Rng,
    lateral: impl Fn(f64) -> f64,
) {
    let dir = if to_m >= from_m { 1.0 } else { -1.0 };
    let step = dir * speed_kmh / 3.6 * every_s as f64;
    let mut s = from_m;
    while (to_m - s) * dir >= 0.0 {
        let truth = route.at(s, lateral(s));
        let ahead = route.at(s + dir, lateral(s + dir));
        let heading = (ahead.x - truth.x).atan2(ahead.y - truth.y).to_degrees();
        let noisy = PlanePoint::new(
            truth.x + sigma_m * rng.normal(),
            truth.y + sigma_m * rng.normal(),
        );
        let fix = track.fix(city().unproject(noisy), speed_kmh, every_s);
        fix.heading = Some(heading.rem_euclid(360.0).min(359.9));
        s += step;
    }
}

/// Five minutes standing at the start of the route (loading): what a terminal's day
/// begins with, and the first thing its noise is learnt from.
fn stand(track: &mut Track, route: &Route, at_m: f64, sigma_m: f64, rng: &mut Rng) {
    let truth = route.at(at_m, 0.0);
    for _ in 0..10 {
        let noisy = PlanePoint::new(
            truth.x + sigma_m * rng.normal(),
            truth.y + sigma_m * rng.normal(),
        );
        track.fix(city().unproject(noisy), 0.0, 30);
    }
}

fn run_with_rules(rules: &Rules, track: &Track) -> Vec<RuleEvent> {
    run(rules, &permit_40(), &track.fixes)
}

/// The contract's raw rule: what the noise would raise without the noise tests.
fn raw_rules() -> Rules {
    Rules::new(
        RulesConfig {
            noise_z_route: 0.0,
            noise_z_zone: 0.0,
            ..RulesConfig::default()
        },
        TZ,
    )
}

#[test]
fn a_truck_on_the_edge_of_a_40_m_corridor_under_30_m_noise_raises_nothing() {
    let route = Route::new(ROUTE);
    let len = route.len();
    // Both ways along the whole route, twice, 10 m inside the edge (30 m from the centre
    // line): 2.5 hours of 30 s fixes, about a third of them outside the corridor.
    for seed in 1..=4u64 {
        let mut rng = Rng::new(seed);
        let mut track = Track::new("T-NOISE", monday(10, 0, 0));
        let edge = |_: f64| HALF_WIDTH_M - 10.0;
        stand(&mut track, &route, 300.0, 30.0, &mut rng);
        for _ in 0..2 {
            noisy_drive(
                &mut track,
                &route,
                300.0,
                len - 300.0,
                28.0,
                30,
                30.0,
                &mut rng,
                edge,
            );
            noisy_drive(
                &mut track,
                &route,
                len - 300.0,
                300.0,
                28.0,
                30,
                30.0,
                &mut rng,
                edge,
            );
        }
        let fixes_outside = track
            .fixes
            .iter()
            .filter(|f| {
                let p = city().project(f.lat, f.lon);
                let idx = city().get(ROUTE).expect("route");
                !city().contains(idx, p)
            })
            .count();
        assert!(
            fixes_outside * 4 > track.fixes.len(),
            "the noise puts a good part of the fixes outside: {fixes_outside} of {}",
            track.fixes.len()
        );
        let events = run_with_rules(&rules(), &track);
        assert!(
            raised_codes(&events).is_empty(),
            "seed {seed}: {:#?}",
            raised(&events)
        );
        // The same track under the contract's raw rule is fined: the test is about noise.
        if seed == 1 {
            let raw = run_with_rules(&raw_rules(), &track);
            assert!(
                raised_codes(&raw).contains(&Code::RouteDeviation),
                "{raw:#?}"
            );
        }
    }
}

#[test]
fn a_truck_150_m_off_a_40_m_corridor_for_3_minutes_under_30_m_noise_is_a_route_deviation() {
    let route = Route::new(ROUTE);
    let (off_from, off_to) = (3000.0, 3000.0 + 180.0 * 30.0 / 3.6); // 3 minutes at 30 km/h
    for seed in 1..=4u64 {
        let mut rng = Rng::new(100 + seed);
        let mut track = Track::new("T-NOISE", monday(10, 0, 0));
        stand(&mut track, &route, 300.0, 30.0, &mut rng);
        let drive_from = track.t_ms;
        noisy_drive(
            &mut track,
            &route,
            300.0,
            5000.0,
            30.0,
            30,
            30.0,
            &mut rng,
            |s| {
                if (off_from..off_to).contains(&s) {
                    -150.0 // 110 m past the edge
                } else {
                    0.0
                }
            },
        );
        let events = run_with_rules(&rules(), &track);
        let v = only(&events, Code::RouteDeviation);
        let first_off = track
            .fixes
            .iter()
            .position(|f| {
                f.ts_ms >= drive_from + ((off_from - 300.0) / (30.0 / 3.6) * 1000.0) as i64
            })
            .expect("the track goes off");
        let delay_s = (v.started_ms - track.ts(first_off)) / 1000;
        assert!(
            (-30..=30).contains(&delay_s),
            "seed {seed}: the episode starts at the first fix off route, give or take one: {delay_s} s"
        );
        let raised_at = track
            .fixes
            .iter()
            .position(|f| (f.lat, f.lon) == (v.lat, v.lon))
            .expect("raised at a fix");
        assert!(
            raised_at <= first_off + 3,
            "seed {seed}: raised {} fixes after the first one off route; the contract's \
             60 s and 3 fixes take 2",
            raised_at - first_off
        );
        let u = v.uncertainty.expect("the evidence says how sure it is");
        assert!(
            (20.0..=45.0).contains(&u.sigma_m),
            "seed {seed}: the terminal's noise, learnt from its track: {u:?}"
        );
        assert!(
            u.low > HALF_WIDTH_M,
            "seed {seed}: surely off the corridor: {u:?}"
        );
        assert!(
            u.low <= 150.0 && 150.0 <= u.high,
            "seed {seed}: the band holds the true distance: {u:?}"
        );
        assert!(u.confidence > 0.998, "{u:?}");
        assert!((u.low..=u.high).contains(&v.measured), "{v:?}");
        assert_eq!(v.fences, vec![ROUTE.to_string()]);
        assert_eq!(raised_codes(&events), vec![Code::RouteDeviation]);
    }
}

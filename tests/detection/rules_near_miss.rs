//! Tracks that come close to a violation and must raise nothing, and the episode
//! semantics: duplicates, late fixes, the quiet period, state size.

use crate::rules_support::*;
use muckwatch::fix::Fix;
use muckwatch::rules::VehicleState;
use muckwatch::violation::ViolationCode as Code;

/// Deterministic jitter in [-1, 1] (xorshift), so that failures reproduce.
fn jitter(seed: u64, i: usize) -> f64 {
    let mut x = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

#[test]
fn gps_jitter_along_a_corridor_edge_raises_nothing() {
    let route = Route::new("route-s01-d01"); // half-width 50 m
                                             // driving 20 m inside the edge, jitter +-20 m: out to the edge, never past it
    let mut track = Track::new("T-JIT", monday(10, 0, 0));
    track.drive(&route, 7500.0, 11_000.0, 36.0, 10, |i| {
        -(30.0 + 20.0 * jitter(7, i))
    });
    let events = run(&rules(), &truck("T-JIT"), &track.fixes);
    assert!(events.is_empty(), "{events:#?}");

    // driving on the edge itself, every other fix 20 m out: never two in a row outside
    let mut track = Track::new("T-EDGE", monday(10, 0, 0));
    track.drive(&route, 7500.0, 11_000.0, 36.0, 10, |i| {
        if i.is_multiple_of(2) {
            70.0
        } else {
            30.0
        }
    });
    let events = run(&rules(), &truck("T-EDGE"), &track.fixes);
    assert!(events.is_empty(), "{events:#?}");

    // 1 Hz fixes jittering +-20 m are not a TRACK_GAP jump either
    let mut track = Track::new("T-1HZ", monday(10, 0, 0));
    track.drive(&route, 8000.0, 8600.0, 36.0, 1, |i| {
        if i.is_multiple_of(2) {
            20.0
        } else {
            -20.0
        }
    });
    let events = run(&rules(), &truck("T-1HZ"), &track.fixes);
    assert!(events.is_empty(), "{events:#?}");
}

#[test]
fn parked_ten_minutes_in_its_own_disposal_site_with_the_tipper_up() {
    let fixes = fixture("disposal_parked_tipper.ndjson", "T-TIPPER");
    assert!(fixes[fixes.len() - 1].ts_ms - fixes[0].ts_ms >= 600_000);
    let events = run(&rules(), &truck("T-TIPPER"), &fixes);
    assert!(events.is_empty(), "{events:#?}");
}

#[test]
fn unloading_at_a_source_site_or_on_one_fix_is_not_dumping() {
    let route = Route::new("route-s01-d01");
    let mut track = Track::new("T-SRC", monday(10, 0, 0));
    let site = route.lat_lon(0.0, 0.0); // the centre of s01
    track.park(site, 300, 30);
    track
        .fixes
        .iter_mut()
        .for_each(|f| (f.tipper_up, f.load_t) = (Some(true), Some(2.0)));
    assert!(run(&rules(), &truck("T-SRC"), &track.fixes).is_empty());

    let mut track = Track::new("T-ONCE", monday(10, 0, 0));
    track.drive(&route, 8000.0, 8800.0, 36.0, 10, |_| 0.0);
    track.fixes[4].tipper_up = Some(true); // one glitch of the sensor
    track.fixes.iter_mut().for_each(|f| f.load_t = Some(24.0));
    track.fixes[5].load_t = Some(14.0); // -42 %: less than half
    assert!(run(&rules(), &truck("T-ONCE"), &track.fixes).is_empty());

    // an empty truck's load sensor wandering is not a drop
    track
        .fixes
        .iter_mut()
        .enumerate()
        .for_each(|(i, f)| f.load_t = Some(if i.is_multiple_of(2) { 0.8 } else { 0.2 }));
    assert!(run(&rules(), &truck("T-ONCE"), &track.fixes).is_empty());
}

#[test]
fn a_night_window_accepts_two_in_the_morning() {
    let route = Route::new("route-s01-d01");
    let night = night_permit();
    let ctx = vehicle("T-NIGHT", vec![night]);
    let mut track = Track::new("T-NIGHT", monday(2, 0, 0));
    track.drive(&route, 0.0, 4000.0, 28.0, 10, |_| 0.0);
    let events = run(&rules(), &ctx, &track.fixes);
    assert!(events.is_empty(), "{events:#?}");
    // and 07:30 is outside it (raised: see rules.rs)
    let mut late = Track::new("T-NIGHT", monday(7, 30, 0));
    late.drive(&route, 0.0, 4000.0, 28.0, 10, |_| 0.0);
    assert_eq!(
        raised_codes(&run(&rules(), &ctx, &late.fixes)),
        vec![Code::OutOfHours]
    );
}

#[test]
fn manoeuvring_inside_its_own_site_without_a_valid_permit() {
    let route = Route::new("route-s01-d01");
    let mut expired = (*permit("P-OLD", "苏J00001", "s01", "d01", &["route-s01-d01"], &[])).clone();
    expired.valid_until = chrono::NaiveDate::from_ymd_opt(2024, 6, 2).expect("date");
    let ctx = vehicle("T-YARD", vec![std::sync::Arc::new(expired)]);
    let mut track = Track::new("T-YARD", monday(10, 0, 0));
    for i in 0..30 {
        track.fix(route.lat_lon(0.0, (i % 5) as f64 * 10.0), 8.0, 10);
    }
    assert!(run(&rules(), &ctx, &track.fixes).is_empty());
}

#[test]
fn a_sparse_pair_straddling_a_restricted_zone_raises_but_one_jittering_fix_does_not() {
    let fixes = fixture("restricted_sparse_crossing.ndjson", "T-SPARSE");
    assert_eq!(
        only(
            &run(&rules(), &truck("T-SPARSE"), &fixes),
            Code::RestrictedZone
        )
        .started_ms,
        fixes[0].ts_ms
    );
    // one fix inside the old town between two outside it: the segments end or start
    // inside, they do not cross, and one fix is not two consecutive ones
    let mut track = Track::new("T-BLIP", monday(10, 0, 0));
    track.fix((33.3992, 120.1370), 28.0, 60);
    assert!(city().contains(
        city().get("rz-01").expect("zone"),
        city().project(33.3992, 120.1480)
    ));
    track.fix((33.3992, 120.1480), 28.0, 60);
    track.fix((33.3992, 120.1370), 28.0, 60);
    let events = run(&rules(), &truck("T-BLIP"), &track.fixes);
    assert!(
        !raised_codes(&events).contains(&Code::RestrictedZone),
        "{events:#?}"
    );
}

#[test]
fn a_school_zone_outside_its_schedule_raises_nothing() {
    let ctx = vehicle(
        "T-SCHOOL",
        vec![permit(
            "P-W",
            "苏J00001",
            "s03",
            "d04",
            &["route-s03-d03"],
            &[],
        )],
    );
    let sunday = fixture("school_zone_sunday.ndjson", "T-SCHOOL");
    assert!(run(&rules(), &ctx, &sunday).is_empty());
    // Monday, but at 10:00 (school hours are 07:00-08:30 and 16:30-18:00)
    let later: Vec<Fix> = sunday
        .iter()
        .map(|f| Fix {
            ts_ms: f.ts_ms + 86_400_000 + 9_000_000,
            ..*f
        })
        .collect();
    assert!(run(&rules(), &ctx, &later).is_empty());
}

#[test]
fn short_or_slow_runs_raise_nothing() {
    let route = Route::new("route-s01-d01");
    let mut track = Track::new("T-SHORT", monday(10, 0, 0));
    // 50 km/h for 20 s only, 38 km/h otherwise (default limit 40)
    let speeds = [38.0, 50.0, 50.0, 50.0, 38.0, 38.0, 39.9, 40.0];
    let mut s = 8000.0;
    for (i, v) in speeds.into_iter().enumerate() {
        let f = track.fix(route.lat_lon(s, 0.0), v, 10);
        f.cover_closed = Some(!(1..=5).contains(&i)); // open for 40 s only
        f.load_t = Some(if (2..=3).contains(&i) { 33.0 } else { 28.0 }); // over on two fixes only
        s += v / 3.6 * 10.0;
    }
    assert!(run(&rules(), &truck("T-SHORT"), &track.fixes).is_empty());
    // the cover open while parked, or not reported at all
    let mut parked = Track::new("T-PARKED", monday(10, 0, 0));
    parked.park(route.lat_lon(8000.0, 0.0), 300, 10);
    parked
        .fixes
        .iter_mut()
        .for_each(|f| f.cover_closed = Some(false));
    assert!(run(&rules(), &truck("T-PARKED"), &parked.fixes).is_empty());
    let mut unknown = Track::new("T-NOCOVER", monday(10, 0, 0));
    unknown.drive(&route, 8000.0, 9000.0, 36.0, 10, |_| 0.0);
    unknown.fixes.iter_mut().for_each(|f| f.cover_closed = None);
    assert!(run(&rules(), &truck("T-NOCOVER"), &unknown.fixes).is_empty());
    // silent after parking: not a TRACK_GAP
    let rules = rules();
    let mut state = VehicleState::default();
    run_with(&rules, &mut state, &truck("T-PARKED"), &parked.fixes);
    let mut out = Vec::new();
    rules.on_watermark(
        &mut state,
        &truck("T-PARKED"),
        parked.t_ms + 3_600_000,
        &mut out,
    );
    assert!(out.is_empty());
}

/// A speeding track: 50 km/h on the listed fix indexes, 35 otherwise, a fix every 10 s,
/// 40 m apart (slow traffic; the speed is what the terminal reports) so that up to 70
/// fixes stay on the stretch of Renmin Rd under the city default limit.
fn speeding_track(dev: &str, fast: impl Fn(usize) -> bool, n: usize) -> Track {
    assert!(n <= 70);
    let route = Route::new("route-s01-d01");
    let mut track = Track::new(dev, monday(10, 0, 0));
    for i in 0..n {
        let v = if fast(i) { 50.0 } else { 35.0 };
        track.fix(route.lat_lon(8000.0 + 40.0 * i as f64, 0.0), v, 10);
    }
    track
}

#[test]
fn a_duplicate_fix_changes_nothing() {
    let rules = rules();
    let ctx = truck("T-DUP");
    let track = speeding_track("T-DUP", |i| (0..6).contains(&i), 10);
    let mut state = VehicleState::default();
    let mut out = Vec::new();
    for (i, fix) in track.fixes.iter().enumerate() {
        rules.on_fix(&mut state, &ctx, city(), fix, &mut out);
        let before = state.clone();
        let produced = out.len();
        rules.on_fix(&mut state, &ctx, city(), fix, &mut out);
        assert_eq!(state, before, "duplicate of fix {i} changed the state");
        assert_eq!(out.len(), produced, "duplicate of fix {i} produced events");
    }
    assert_eq!(raised_codes(&out), vec![Code::Speeding]);
    assert_eq!(ended(&out, Code::Speeding).len(), 1);
}

#[test]
fn a_fix_one_second_late_does_not_reopen_an_episode() {
    let rules = rules();
    let ctx = truck("T-LATE");
    let track = speeding_track("T-LATE", |i| i < 5, 6); // raised at 30 s, ended at fix 5
    let mut state = VehicleState::default();
    let events = run_with(&rules, &mut state, &ctx, &track.fixes);
    assert_eq!(
        ended(&events, Code::Speeding),
        vec![(track.ts(0), track.ts(4))]
    );
    let before = state.clone();
    let late = Fix {
        ts_ms: track.ts(5) - 1000,
        speed_kmh: 90.0,
        ..track.fixes[4]
    };
    let mut out = Vec::new();
    rules.on_fix(&mut state, &ctx, city(), &late, &mut out);
    assert!(out.is_empty());
    assert_eq!(state, before);
    assert_eq!(state.open_episodes().count(), 0);
}

#[test]
fn the_quiet_period_holds_back_the_same_code() {
    // speeding 0-40 s (raised, ends at 40 s: quiet until 640 s), again at 100-200 s
    // (held back), and from 600 s on (raised at 640 s, with its true start)
    let fast = |i: usize| i <= 4 || (10..=20).contains(&i) || i >= 60;
    let track = speeding_track("T-QUIET", fast, 70);
    let events = run(&rules(), &truck("T-QUIET"), &track.fixes);
    let raised = raised(&events);
    assert_eq!(raised.len(), 2, "{raised:#?}");
    assert_eq!(raised[0].started_ms, track.ts(0));
    assert_eq!(raised[1].started_ms, track.ts(60));
    let at = track
        .fixes
        .iter()
        .position(|f| (f.lat, f.lon) == (raised[1].lat, raised[1].lon));
    assert_eq!(at, Some(64), "raised when the quiet period ended");
    assert_eq!(
        ended(&events, Code::Speeding),
        vec![(track.ts(0), track.ts(4))]
    );
}

#[test]
fn vehicle_state_fits_in_two_kib() {
    let state = VehicleState::default();
    assert_eq!(
        state.heap_bytes(),
        0,
        "no heap: no Vec of fixes, no strings"
    );
    assert!(
        std::mem::size_of::<VehicleState>() <= 2048,
        "{} bytes",
        std::mem::size_of::<VehicleState>()
    );
    assert_eq!(state.memory_bytes(), std::mem::size_of::<VehicleState>());
    // and it stays that way after a long track
    let route = Route::new("route-s01-d01");
    let mut track = Track::new("T-SIZE", monday(10, 0, 0));
    track.drive(&route, 0.0, route.len(), 28.0, 10, |_| 0.0);
    let mut state = VehicleState::default();
    run_with(&rules(), &mut state, &truck("T-SIZE"), &track.fixes);
    assert_eq!(state.memory_bytes(), std::mem::size_of::<VehicleState>());
    println!("VehicleState: {} bytes", state.memory_bytes());
}

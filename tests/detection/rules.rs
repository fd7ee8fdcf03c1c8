//! Every violation code raised by a realistic track on the sample city: the code, when
//! the episode started, what was measured, which fences, and when it ended.
//! Near misses and the episode semantics are in `rules_near_miss.rs`.

use crate::rules_support::*;
use muckwatch::geofence::FenceKind;
use muckwatch::rules::{RuleEvent, VehicleState};
use muckwatch::violation::ViolationCode as Code;

/// The index of the first fix outside the fence `id`.
fn first_outside(track: &Track, id: &str) -> usize {
    let set = city();
    let fence = set.get(id).expect("fence");
    track
        .fixes
        .iter()
        .position(|f| !set.contains(fence, set.project(f.lat, f.lon)))
        .expect("the track leaves the fence")
}

fn inside(lat: f64, lon: f64, id: &str) -> bool {
    let set = city();
    set.contains(set.get(id).expect("fence"), set.project(lat, lon))
}

#[test]
fn a_permitted_trip_along_its_route_raises_nothing() {
    let route = Route::new("route-s01-d01");
    let mut track = Track::new("T-CLEAN", monday(10, 0, 0));
    track.drive(&route, 0.0, route.len(), 28.0, 10, |_| 0.0);
    let end = route.lat_lon(route.len(), 0.0);
    track.park(end, 600, 30);
    assert!(track.fixes.len() > 300);
    let events = run(&rules(), &truck("T-CLEAN"), &track.fixes);
    assert!(events.is_empty(), "{events:#?}");
}

#[test]
fn no_permit_raised_after_two_minutes_moving_outside_its_sites() {
    let route = Route::new("route-s01-d01");
    let mut expired = (*permit("P-OLD", "苏J00001", "s01", "d01", &["route-s01-d01"], &[])).clone();
    expired.valid_until = chrono::NaiveDate::from_ymd_opt(2024, 6, 2).expect("date");
    let ctx = vehicle("T-NOPERMIT", vec![std::sync::Arc::new(expired)]);
    let mut track = Track::new("T-NOPERMIT", monday(10, 0, 0));
    track.drive(&route, 0.0, 3000.0, 28.0, 10, |_| 0.0);
    let events = run(&rules(), &ctx, &track.fixes);
    // moving inside its (expired) permit's own source site does not count
    let left = first_outside(&track, "s01");
    assert!(left > 0);
    let v = only(&events, Code::NoPermit);
    assert_eq!(v.started_ms, track.ts(left));
    assert_eq!(v.measured, 120.0);
    assert_eq!(
        (v.lat, v.lon),
        (track.fixes[left + 12].lat, track.fixes[left + 12].lon)
    );
    assert_eq!(v.permit_id, None);
    assert!(v.fences.is_empty());
    assert_eq!(v.ended_ms, None);
    assert_eq!(
        raised_codes(&events),
        vec![Code::NoPermit],
        "nothing else: no permit, no route to leave"
    );

    // a suspended permit is no permit either
    let mut suspended = (*permit("P-S", "苏J00001", "s01", "d01", &["route-s01-d01"], &[])).clone();
    suspended.status = muckwatch::permit::PermitStatus::Suspended;
    let events = run(
        &rules(),
        &vehicle("T-NOPERMIT", vec![std::sync::Arc::new(suspended)]),
        &track.fixes,
    );
    assert_eq!(only(&events, Code::NoPermit).started_ms, track.ts(left));
}

#[test]
fn out_of_hours_at_half_past_seven_on_a_night_permit() {
    let route = Route::new("route-s01-d01");
    let night = night_permit();
    let ctx = vehicle("T-HOURS", vec![night]);
    let mut track = Track::new("T-HOURS", monday(7, 30, 0));
    track.drive(&route, 0.0, 3000.0, 28.0, 10, |_| 0.0);
    let events = run(&rules(), &ctx, &track.fixes);
    let left = first_outside(&track, "s01");
    let v = only(&events, Code::OutOfHours);
    assert_eq!(
        v.started_ms,
        track.ts(left),
        "moving inside its source site does not count"
    );
    assert_eq!(v.measured, 120.0);
    assert_eq!(v.permit_id.as_deref(), Some("P-NIGHT"));
    assert_eq!(raised_codes(&events), vec![Code::OutOfHours]);
}

#[test]
fn a_whole_day_window_allows_half_past_seven() {
    let route = Route::new("route-s01-d01");
    let all_day = permit(
        "P-DAY",
        "苏J00001",
        "s01",
        "d01",
        &["route-s01-d01"],
        &[("00:00", "24:00")],
    );
    let ctx = vehicle("T-DAY", vec![all_day]);
    let mut track = Track::new("T-DAY", monday(7, 30, 0));
    track.drive(&route, 0.0, 3000.0, 28.0, 10, |_| 0.0);
    let events = run(&rules(), &ctx, &track.fixes);
    assert!(raised_codes(&events).is_empty(), "{events:?}");
}

#[test]
fn route_deviation_raised_after_a_minute_and_three_fixes_off_every_corridor() {
    let route = Route::new("route-s01-d01");
    let mut track = Track::new("T-DEV", monday(10, 0, 0));
    // 36 km/h, a fix every 10 s (100 m): on the road, 200 m south of it, back
    track.drive(&route, 8000.0, 10_000.0, 36.0, 10, |i| {
        if (6..14).contains(&i) {
            -200.0
        } else {
            0.0
        }
    });
    let events = run(&rules(), &truck("T-DEV"), &track.fixes);
    let v = only(&events, Code::RouteDeviation);
    assert_eq!(v.started_ms, track.ts(6));
    assert_eq!(
        (v.lat, v.lon),
        (track.fixes[12].lat, track.fixes[12].lon),
        "raised at 60 s"
    );
    assert!(
        (v.measured - 200.0).abs() < 2.0,
        "metres from the centre line: {}",
        v.measured
    );
    assert_eq!(v.fences, vec!["route-s01-d01".to_string()]);
    assert_eq!(v.permit_id.as_deref(), Some("P-1"));
    assert_eq!(
        ended(&events, Code::RouteDeviation),
        vec![(track.ts(6), track.ts(13))]
    );
    assert_eq!(raised_codes(&events), vec![Code::RouteDeviation]);
}

#[test]
fn route_deviation_needs_three_fixes_and_ends_only_below_the_hysteresis() {
    let route = Route::new("route-s01-d01");
    // sparse fixes: one a minute
    let mut track = Track::new("T-DEV3", monday(10, 0, 0));
    track.drive(&route, 8000.0, 10_500.0, 36.0, 60, |i| {
        if i >= 1 {
            -200.0
        } else {
            0.0
        }
    });
    let events = run(&rules(), &truck("T-DEV3"), &track.fixes[..3]);
    assert!(
        events.is_empty(),
        "60 s but only two fixes off route: {events:#?}"
    );
    let events = run(&rules(), &truck("T-DEV3"), &track.fixes[..4]);
    assert_eq!(only(&events, Code::RouteDeviation).started_ms, track.ts(1));

    // half-width 50 m, hysteresis 10 m: 45 m keeps it going, 30 m ends it
    let lateral = |i: usize| match i {
        0..=1 => 0.0,
        2..=9 => 120.0,
        10..=12 => 45.0,
        13 => 70.0,
        14..=15 => 45.0,
        _ => 30.0,
    };
    let mut track = Track::new("T-HYST", monday(10, 0, 0));
    track.drive(&route, 8000.0, 9800.0, 36.0, 10, lateral);
    let events = run(&rules(), &truck("T-HYST"), &track.fixes);
    let v = only(&events, Code::RouteDeviation);
    assert_eq!(v.started_ms, track.ts(2));
    assert_eq!(
        ended(&events, Code::RouteDeviation),
        vec![(track.ts(2), track.ts(15))]
    );
}

#[test]
fn restricted_zone_on_two_consecutive_fixes_inside() {
    let old_town = (33.3992, 120.151927); // the old town (rz-01), always closed
    assert!(inside(old_town.0, old_town.1, "rz-01"));
    let mut track = Track::new("T-OLDTOWN", monday(10, 0, 0));
    track.fix((33.3992, 120.1500), 20.0, 10);
    track.fix((33.3992, 120.1520), 24.0, 10);
    track.fix((33.3992, 120.1540), 22.0, 120);
    track.fix((33.3992, 120.1700), 22.0, 10); // two minutes later, far east, outside
    track.fix((33.3992, 120.1710), 22.0, 10);
    let events = run(&rules(), &truck("T-OLDTOWN"), &track.fixes);
    let v = only(&events, Code::RestrictedZone);
    assert_eq!(v.started_ms, track.ts(0));
    assert_eq!(
        (v.lat, v.lon),
        (33.3992, 120.1520),
        "raised at the second fix"
    );
    assert_eq!(v.measured, 24.0, "km/h, highest of the episode so far");
    assert_eq!(v.fences, vec!["rz-01".to_string()]);
    // the segment from the last fix inside to the first outside is not a crossing
    assert_eq!(
        ended(&events, Code::RestrictedZone),
        vec![(track.ts(0), track.ts(2))]
    );
}

#[test]
fn restricted_zone_crossed_between_two_sparse_fixes() {
    let fixes = fixture("restricted_sparse_crossing.ndjson", "T-SPARSE");
    for f in &fixes {
        assert!(!inside(f.lat, f.lon, "rz-01"), "no fix is inside the zone");
    }
    let events = run(&rules(), &truck("T-SPARSE"), &fixes);
    let v = only(&events, Code::RestrictedZone);
    assert_eq!(v.started_ms, fixes[0].ts_ms, "from the fix before the zone");
    assert_eq!((v.lat, v.lon), (fixes[1].lat, fixes[1].lon));
    assert_eq!(v.fences, vec!["rz-01".to_string()]);
    assert_eq!(v.measured, 28.0);
    assert_eq!(
        ended(&events, Code::RestrictedZone),
        vec![(fixes[0].ts_ms, fixes[1].ts_ms)]
    );
}

#[test]
fn restricted_school_zone_during_school_hours() {
    let sunday = fixture("school_zone_sunday.ndjson", "T-SCHOOL");
    assert!(
        inside(sunday[0].lat, sunday[0].lon, "rz-02")
            && inside(sunday[1].lat, sunday[1].lon, "rz-02")
    );
    let monday_fixes: Vec<_> = sunday
        .iter()
        .map(|f| muckwatch::fix::Fix {
            ts_ms: f.ts_ms + 86_400_000,
            ..*f
        })
        .collect();
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
    let events = run(&rules(), &ctx, &monday_fixes);
    let v = only(&events, Code::RestrictedZone);
    assert_eq!(v.started_ms, monday_fixes[0].ts_ms);
    assert_eq!(v.fences, vec!["rz-02".to_string()]);
    assert_eq!(v.permit_id.as_deref(), Some("P-W"));
}

#[test]
fn speeding_over_the_city_default_and_in_a_school_speed_zone() {
    let route = Route::new("route-s01-d01");
    let set = city();
    // s 8000-9000 m: Renmin Rd, no speed zone (city default 40 km/h)
    let mut track = Track::new("T-FAST", monday(10, 0, 0));
    let speeds = [45.0, 52.0, 48.0, 47.0, 55.0, 35.0, 35.0];
    let mut s = 8000.0;
    for v in speeds {
        let (lat, lon) = route.lat_lon(s, 0.0);
        let mut inside = Vec::new();
        set.containing(set.project(lat, lon), &mut inside);
        assert!(inside
            .iter()
            .all(|i| set.fence(*i).kind != FenceKind::SpeedZone));
        track.fix((lat, lon), v, 10);
        s += v / 3.6 * 10.0;
    }
    let events = run(&rules(), &truck("T-FAST"), &track.fixes);
    let v = only(&events, Code::Speeding);
    assert_eq!(v.started_ms, track.ts(0));
    assert_eq!(
        (v.lat, v.lon),
        (track.fixes[3].lat, track.fixes[3].lon),
        "raised after 30 s"
    );
    assert_eq!(v.measured, 52.0, "highest speed up to the raise");
    assert!(v.fences.is_empty(), "city default limit");
    assert_eq!(
        ended(&events, Code::Speeding),
        vec![(track.ts(0), track.ts(4))]
    );

    // s 12300-12900 m: Dongjin Rd past the middle school, sz-03 (30 km/h)
    let mut track = Track::new("T-SCHOOLRUN", monday(10, 0, 0));
    track.drive(&route, 12_350.0, 12_800.0, 35.0, 10, |_| 0.0);
    assert!(track.fixes.iter().all(|f| inside(f.lat, f.lon, "sz-03")));
    let events = run(&rules(), &truck("T-SCHOOLRUN"), &track.fixes);
    let v = only(&events, Code::Speeding);
    assert_eq!(v.fences, vec!["sz-03".to_string()]);
    assert_eq!(v.measured, 35.0);
    assert_eq!(v.started_ms, track.ts(0));
}

#[test]
fn illegal_dumping_by_tipper_and_by_load_drop() {
    let route = Route::new("route-s01-d01");
    let mut track = Track::new("T-DUMP", monday(10, 0, 0));
    track.drive(&route, 8000.0, 8500.0, 36.0, 10, |_| 0.0);
    track.fixes.iter_mut().for_each(|f| f.load_t = Some(24.0));
    let stop = route.lat_lon(8600.0, 0.0);
    track.fix(stop, 0.0, 30).load_t = Some(24.0);
    let first_up = track.fixes.len();
    let f = track.fix(stop, 0.0, 30);
    (f.tipper_up, f.load_t) = (Some(true), Some(24.0));
    let f = track.fix(stop, 0.0, 30);
    (f.tipper_up, f.load_t) = (Some(true), Some(16.0));
    let f = track.fix(stop, 0.0, 30);
    (f.tipper_up, f.load_t) = (Some(false), Some(2.0));
    let events = run(&rules(), &truck("T-DUMP"), &track.fixes);
    let v = only(&events, Code::IllegalDumping);
    assert_eq!(v.started_ms, track.ts(first_up));
    assert_eq!((v.lat, v.lon), stop);
    assert_eq!(v.measured, 8.0, "tonnes gone at the raise: 24 -> 16");
    assert_eq!(v.permit_id.as_deref(), Some("P-1"));
    // the last fix (tipper down, load 16 -> 2) is a drop too: the episode goes on
    assert!(ended(&events, Code::IllegalDumping).is_empty());
    assert_eq!(raised_codes(&events), vec![Code::IllegalDumping]);

    // no tipper sensor: the load halves between two fixes on the road
    let mut track = Track::new("T-DROP", monday(10, 0, 0));
    track.drive(&route, 8000.0, 8300.0, 20.0, 15, |_| 0.0);
    let n = track.fixes.len();
    for (i, f) in track.fixes.iter_mut().enumerate() {
        (f.tipper_up, f.load_t) = (None, Some(if i + 2 < n { 24.0 } else { 10.0 }));
    }
    let events = run(&rules(), &truck("T-DROP"), &track.fixes);
    let v = only(&events, Code::IllegalDumping);
    assert_eq!(
        v.started_ms,
        track.ts(n - 3),
        "from the last fix with the full load"
    );
    assert_eq!(
        (v.lat, v.lon),
        (track.fixes[n - 2].lat, track.fixes[n - 2].lon)
    );
    assert_eq!(v.measured, 14.0);
    assert_eq!(
        ended(&events, Code::IllegalDumping),
        vec![(track.ts(n - 3), track.ts(n - 2))]
    );
}

#[test]
fn wrong_disposal_site_when_tipping_at_another_firms_site() {
    // the fixture tips at d01; this permit goes to d02
    let fixes = fixture("disposal_parked_tipper.ndjson", "T-TIPPER");
    let ctx = vehicle(
        "T-TIPPER",
        vec![permit(
            "P-2",
            "苏J00001",
            "s02",
            "d02",
            &["route-s02-d02"],
            &[],
        )],
    );
    let events = run(&rules(), &ctx, &fixes);
    let v = only(&events, Code::WrongDisposalSite);
    assert_eq!(
        v.started_ms, fixes[1].ts_ms,
        "the first fix with the tipper up"
    );
    assert_eq!(v.fences, vec!["d01".to_string()]);
    assert_eq!(v.measured, 4.0, "24 t before, 20 t at the raise");
    assert_eq!(v.permit_id.as_deref(), Some("P-2"));
    assert_eq!(
        ended(&events, Code::WrongDisposalSite),
        vec![(fixes[1].ts_ms, fixes[9].ts_ms)]
    );
    assert_eq!(raised_codes(&events), vec![Code::WrongDisposalSite]);
}

#[test]
fn no_wrong_disposal_site_for_a_vehicle_without_a_valid_permit() {
    // the fixture tips at d01; the only permit (to d02) expired: NO_PERMIT's business
    let fixes = fixture("disposal_parked_tipper.ndjson", "T-TIPPER");
    let mut expired = (*permit("P-2", "苏J00001", "s02", "d02", &["route-s02-d02"], &[])).clone();
    expired.valid_until = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    let events = run(
        &rules(),
        &vehicle("T-TIPPER", vec![std::sync::Arc::new(expired)]),
        &fixes,
    );
    let codes = raised_codes(&events);
    assert!(!codes.contains(&Code::WrongDisposalSite), "{codes:?}");
    assert!(
        !codes.contains(&Code::IllegalDumping),
        "a licensed site is no illegal dump: {codes:?}"
    );
    let events = run(&rules(), &vehicle("T-TIPPER", vec![]), &fixes);
    assert!(
        !raised_codes(&events).contains(&Code::WrongDisposalSite),
        "no permit at all"
    );
}

#[test]
fn cover_open_while_driving_for_a_minute() {
    let fixes = fixture("cover_open.ndjson", "T-COVER");
    let events = run(&rules(), &truck("T-COVER"), &fixes);
    let v = only(&events, Code::CoverOpen);
    assert_eq!(v.started_ms, fixes[2].ts_ms);
    assert_eq!(
        (v.lat, v.lon),
        (fixes[8].lat, fixes[8].lon),
        "raised at 60 s"
    );
    assert_eq!(v.measured, 60.0);
    assert_eq!(
        ended(&events, Code::CoverOpen),
        vec![(fixes[2].ts_ms, fixes[9].ts_ms)]
    );
    assert_eq!(raised_codes(&events), vec![Code::CoverOpen]);
}

#[test]
fn overload_on_three_consecutive_readings() {
    let fixes = fixture("overload.ndjson", "T-OVERLOAD");
    let events = run(&rules(), &truck("T-OVERLOAD"), &fixes);
    let v = only(&events, Code::Overload);
    assert_eq!(v.started_ms, fixes[1].ts_ms);
    assert_eq!((v.lat, v.lon), (fixes[3].lat, fixes[3].lon));
    assert_eq!(v.measured, 32.4);
    assert_eq!(v.fences, vec!["s01".to_string()], "the freight source unit");
    assert_eq!(
        ended(&events, Code::Overload),
        vec![(fixes[1].ts_ms, fixes[5].ts_ms)]
    );
    assert_eq!(raised_codes(&events), vec![Code::Overload]);
}

#[test]
fn track_gap_by_silence_against_the_watermark() {
    let route = Route::new("route-s01-d01");
    let rules = rules();
    let ctx = truck("T-SILENT");
    let mut track = Track::new("T-SILENT", monday(10, 0, 0));
    track.drive(&route, 8000.0, 8300.0, 36.0, 10, |_| 0.0);
    let last = *track.fixes.last().expect("fixes");
    let mut state = VehicleState::default();
    assert!(run_with(&rules, &mut state, &ctx, &track.fixes).is_empty());
    let mut out = Vec::new();
    rules.on_watermark(&mut state, &ctx, last.ts_ms + 300_000, &mut out);
    assert!(out.is_empty(), "300 s is not more than 300 s");
    rules.on_watermark(&mut state, &ctx, last.ts_ms + 301_000, &mut out);
    let v = only(&out, Code::TrackGap);
    assert_eq!(v.started_ms, last.ts_ms);
    assert_eq!(v.measured, 301.0);
    assert_eq!((v.lat, v.lon), (last.lat, last.lon));
    assert_eq!(v.ended_ms, None);
    rules.on_watermark(&mut state, &ctx, last.ts_ms + 400_000, &mut out);
    assert_eq!(out.len(), 1, "raised once");
    // the terminal comes back: the episode ends at that fix
    let back = muckwatch::fix::Fix {
        ts_ms: last.ts_ms + 420_000,
        ..last
    };
    rules.on_fix(&mut state, &ctx, city(), &back, &mut out);
    assert_eq!(ended(&out, Code::TrackGap), vec![(last.ts_ms, back.ts_ms)]);

    // no watermark in between (a replay of one truck): found when the next fix comes
    let events = run(&rules, &ctx, &[last, back]);
    let v = only(&events, Code::TrackGap);
    assert_eq!(
        (v.started_ms, v.ended_ms, v.measured),
        (last.ts_ms, Some(back.ts_ms), 420.0)
    );
    assert!(
        ended(&events, Code::TrackGap).is_empty(),
        "already over when raised"
    );
}

#[test]
fn track_gap_by_a_jump() {
    let fixes = fixture("track_gap_jump.ndjson", "T-JUMP");
    let events = run(&rules(), &truck("T-JUMP"), &fixes);
    let v = only(&events, Code::TrackGap);
    assert_eq!(
        v.started_ms, fixes[2].ts_ms,
        "from the last fix before the jump"
    );
    assert_eq!((v.lat, v.lon), (fixes[2].lat, fixes[2].lon));
    assert_eq!(v.measured, 10.0, "seconds between the two fixes");
    assert_eq!(v.ended_ms, None);
    // the jump back extends it; the next plausible fix ends it
    assert_eq!(
        ended(&events, Code::TrackGap),
        vec![(fixes[2].ts_ms, fixes[4].ts_ms)]
    );
    assert_eq!(raised_codes(&events), vec![Code::TrackGap]);
    assert!(events
        .iter()
        .all(|e| !matches!(e, RuleEvent::Raised(v) if v.code == Code::RestrictedZone)));
}

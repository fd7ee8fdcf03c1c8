//! The common path of the rule engine (a fix that raises nothing) must not allocate:
//! checked with a counting global allocator on tracks that exercise every query the
//! rules make (containment, route distances, zone crossings, schedules, permits).

use crate::counting_alloc::allocations;
use crate::rules_support::*;
use muckwatch::rules::VehicleState;

#[test]
fn on_fix_does_not_allocate_when_nothing_is_raised() {
    let _alone = crate::counting_alloc::alone();
    let rules = rules();
    let route = Route::new("route-s01-d01");
    let truck = truck("T-ALLOC");
    let night = vehicle("T-ALLOC", vec![night_permit()]);
    let no_routes = vehicle(
        "T-ALLOC",
        vec![permit("P-R", "苏J00001", "s01", "d01", &[], &[])],
    );

    let mut clean = Track::new("T-ALLOC", monday(10, 0, 0));
    clean.drive(&route, 0.0, route.len(), 28.0, 10, |_| 0.0);
    let end = route.lat_lon(route.len(), 0.0);
    clean.park(end, 300, 30);
    clean.fixes.iter_mut().for_each(|f| f.load_t = Some(20.0));
    // on the corridor edge, every other fix outside it: route distances every fix
    let mut edge = Track::new("T-ALLOC", monday(2, 0, 0));
    edge.drive(&route, 7500.0, 11_000.0, 36.0, 10, |i| {
        if i.is_multiple_of(2) {
            70.0
        } else {
            30.0
        }
    });
    // one fix in the old town between two outside it: zone crossings and schedules
    let mut blip = Track::new("T-ALLOC", monday(10, 0, 0));
    blip.fix((33.3992, 120.1370), 28.0, 60);
    blip.fix((33.3992, 120.1480), 28.0, 60);
    blip.fix((33.3992, 120.1370), 28.0, 60);

    let cases = [(&truck, &clean), (&night, &edge), (&no_routes, &blip)];
    // warm up: the per-thread scratch buffers are allocated on first use
    let mut out = Vec::with_capacity(64);
    rules.on_fix(
        &mut VehicleState::default(),
        &truck,
        city(),
        &clean.fixes[0],
        &mut out,
    );
    out.clear();

    let mut fixes = 0;
    let before = allocations();
    for (ctx, track) in cases {
        let mut state = VehicleState::default();
        for fix in &track.fixes {
            rules.on_fix(&mut state, ctx, city(), fix, &mut out);
            fixes += 1;
        }
        rules.on_watermark(&mut state, ctx, track.t_ms, &mut out);
    }
    let allocated = allocations() - before;
    assert!(out.is_empty(), "these tracks raise nothing: {out:#?}");
    assert!(fixes > 300, "{fixes} fixes");
    assert_eq!(allocated, 0, "{allocated} allocations over {fixes} fixes");
}

//! The per-fix queries must not allocate (contract of the hot path): checked with a
//! counting global allocator, on the sample city.

use std::path::Path;

use crate::counting_alloc::allocations;
use muckwatch::geofence::{FenceKind, FenceSet, PlanePoint};

#[test]
fn queries_do_not_allocate() {
    let _alone = crate::counting_alloc::alone();
    let set = FenceSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("geofences"))
        .expect("sample city");
    let routes = [
        set.get("route-s01-d01").expect("route"),
        set.get("route-s02-d02").expect("route"),
    ];
    let points: Vec<PlanePoint> = (0..2000)
        .map(|i| {
            let f = i as f64 / 2000.0;
            set.project(33.3 + 0.2 * f, 120.0 + 0.3 * ((f * 7.3) % 1.0))
        })
        .collect();
    let mut out = Vec::with_capacity(64);
    let mut hits = 0;
    let before = allocations();
    for w in points.windows(2) {
        set.containing(w[0], &mut out);
        hits += out.len();
        hits += usize::from(set.distance_to_routes(w[0], &routes).is_some());
        hits += usize::from(set.nearest_route(w[0]).is_some());
        set.areas_crossed(w[0], w[1], FenceKind::RestrictedZone, &mut out);
        hits += out.len();
        hits += usize::from(set.contains(routes[0], w[0]));
    }
    let after = allocations();
    assert!(hits > 2000, "the walk must actually find things ({hits})");
    assert_eq!(
        after - before,
        0,
        "queries allocated {} times",
        after - before
    );
}

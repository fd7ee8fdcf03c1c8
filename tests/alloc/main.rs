//! The hot path allocates nothing: the geofence queries and the rules'
//! common path, counted by a global allocator that only this binary
//! installs. Hermetic.

#[path = "../common/mod.rs"]
mod common;
#[path = "../counting_alloc/mod.rs"]
mod counting_alloc;
#[path = "../rules_support/mod.rs"]
mod rules_support;

mod geofence;
mod rules;
mod track;

//! Detection in process: the geofence engine (loading, queries, the sample
//! city, properties against a brute-force scan, `muckwatch fences check`)
//! and the rule engine (every code on realistic tracks, and the near
//! misses that must raise nothing). Hermetic.

#[path = "../rules_support/mod.rs"]
mod rules_support;

mod geofence;
mod geofence_cli;
mod geofence_prop;
mod geofence_sample;
mod rules;
mod rules_near_miss;
mod rules_noise;

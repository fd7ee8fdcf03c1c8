//! muckwatch watches construction-waste ("muck") trucks for a city.
//!
//! Data flows one way:
//! `MQTT -> ingest (decode, validate) -> store`, with the HTTP API reading
//! the store. Each module below owns one part of that path.
//!
//! - [`fix`]: the GPS fix and device id, the values everything else passes
//!   around; allocation-free so the hot path stays cheap.
//! - [`ingest`]: subscribes to the telemetry topics, turns payloads into
//!   fixes exactly once, refuses bad input (metric, log, dead letter) and
//!   writes fixes in batches, acknowledging to the broker only after commit.
//! - [`broker`]: a small embedded MQTT 3.1.1 broker for a bare machine.
//! - [`store`]: the database behind one narrow interface, with migrations.
//! - [`registry`]: firms, vehicles, and the lock-free device -> vehicle map.
//! - [`geofence`]: fences loaded from GeoJSON, projected to metres and
//!   indexed in an R-tree; reloads swap the whole set atomically.
//! - [`violation`]: the contract's violation codes.
//! - [`auth`]: roles and API tokens (stored hashed).
//! - [`api`]: the HTTP API; every handler names its caller.
//! - [`metrics`]: Prometheus counters, plain atomics.
//! - [`configuration`]: settings from defaults, TOML, environment and flags.
//! - [`startup`]: assembles all of the above into a running service.

pub mod api;
pub mod auth;
pub mod broker;
pub mod configuration;
pub mod fix;
pub mod geofence;
pub mod ingest;
pub mod metrics;
pub mod registry;
pub mod startup;
pub mod store;
pub mod violation;

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
//! - [`pipeline`]: detection: fixes sharded by device to rule state
//!   machines (no lock on the hot path), violations stored; live ingest
//!   and `replay` share it.
//! - [`broker`]: a small embedded MQTT 3.1.1 broker for a bare machine.
//! - [`store`]: the database behind one narrow interface, with migrations.
//! - [`registry`]: firms, vehicles, and the lock-free device -> vehicle map.
//! - [`geofence`]: fences loaded from GeoJSON, projected to metres and
//!   indexed in an R-tree; reloads swap the whole set atomically.
//! - [`cases`]: joint cases (一案多查): routing of codes to departments,
//!   the check workflow, the merge window, the 一超四罚 parties.
//! - [`violation`]: the contract's violation codes.
//! - [`permit`]: the transport permit, parsed once at the edge; validity by local date and window.
//! - [`rules`]: the per-vehicle violation state machine, every code, on event time.
//! - [`alerts`]: one alert per raised violation, per routed department,
//!   over MQTT and to SSE listeners, in Chinese and English.
//! - [`auth`]: roles and API tokens (stored hashed).
//! - [`api`]: the HTTP API; every handler names its caller.
//! - [`metrics`]: Prometheus counters, plain atomics.
//! - [`configuration`]: settings from defaults, TOML, environment and flags.
//! - [`replay`]: `muckwatch replay FILE`, NDJSON fixes through detection.
//! - [`startup`]: assembles all of the above into a running service.
//! - [`sim`]: the fleet simulator with ground truth (`muckwatch-sim`, `muckwatch
//!   demo`) and the scoring of detection against it (`muckwatch score`).

pub mod alerts;
pub mod api;
pub mod auth;
pub mod broker;
pub mod cases;
pub mod configuration;
pub mod fix;
pub mod geofence;
pub mod ingest;
pub mod metrics;
pub mod permit;
pub mod pipeline;
pub mod registry;
pub mod replay;
pub mod rules;
pub mod sim;
pub mod startup;
pub mod store;
pub mod violation;

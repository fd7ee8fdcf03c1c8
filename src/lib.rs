//! muckwatch watches construction-waste ("muck") trucks for a city.
//!
//! Data flows one way:
//!
//! ```text
//! JT/T 808 TCP -> jt808 gateway -> MQTT (telemetry topics)
//! MQTT -> ingest (decode, validate) -+-> store (fixes, in batches)
//!                                    +-> pipeline: shard by device -> rules (registry,
//!                                        geofence lookups) -> violation -> sink:
//!                                        store + cases (filing) + outbox + alerts (SSE, MQTT)
//! store (outbox) -> webhooks (signed HTTP POSTs to the city's platforms)
//! HTTP api -> store (reads, check changes through cases' plans) and the live state
//! ```
//!
//! Modules, each only using those listed before it (none imports a later one):
//!
//! - vocabulary: [`identity`] (device id and bucket, plate, firm, vehicle),
//!   [`fix`] (the GPS fix, why a message is refused as one; allocation-free
//!   for the hot path), [`time`] (UTC ms, shown in city time), [`violation`]
//!   (the contract's codes, a raised episode, the stored one and its JSON),
//!   [`auth`] (roles, departments, API tokens stored hashed), [`permit`]
//!   (the transport permit, parsed once at the edge), [`text`] (outside text
//!   checked for control characters and NUL, escaped for logs and storage).
//! - [`geofence`]: fences loaded from GeoJSON, projected to metres and
//!   indexed in an R-tree; reloads swap the whole set atomically.
//! - [`metrics`]: Prometheus counters, plain atomics.
//! - [`cases`]: joint cases (一案多查): routing of codes to departments, and
//!   the workflow as pure plans (a check's next step, filing into the open
//!   case of the merge window, the 一超四罚 parties, every audit line), and
//!   each department's deadline for its check (按期处置).
//! - [`credit`]: firm credit (信用评价): the scheme as configuration, cycles,
//!   score and grade, and the plan of which violations of a case are
//!   charged or reversed after a check change (written by the store in the
//!   same transaction).
//! - [`inspections`]: random inspections (双随机一公开): objects and
//!   inspectors drawn by a seeded PRNG of our own, reproducible from the
//!   recorded seed and population hash.
//! - [`applications`]: permit applications (不见面审批): the permit a firm
//!   asks for, and the automatic checks (vehicles, sites, routes, routes
//!   reaching both sites, credit, dates) as pure functions naming each
//!   result; the bureau's decision is the store's and the API's.
//! - [`outbox`]: outbound events' vocabulary: the types, the `[outbox]`
//!   webhooks checked at the edge, the envelope `{id, type, at, data}` and
//!   its HMAC signature (the store writes events with their change).
//! - [`store`]: the database behind one narrow interface, each query written
//!   once for SQLite and PostgreSQL; it writes what the cases' plans say.
//! - [`webhooks`]: delivers the outbox to each webhook (signed, retried
//!   with stored backoff, in order per case, never dropped).
//! - [`rules`]: the per-vehicle violation state machine, every code, on event time.
//! - [`registry`]: the lock-free device -> vehicle context map the rules read.
//! - [`live`]: the live fleet, each vehicle's newest fix and open
//!   violations, published by detection's shards as snapshots the live
//!   map reads without the database.
//! - [`configuration`]: settings from defaults, TOML, environment and flags.
//! - [`alerts`]: one alert per raised violation, per routed department,
//!   over MQTT and to SSE listeners, in Chinese and English.
//! - [`pipeline`]: detection: fixes sharded by device to rule state machines
//!   (no lock on the hot path), judged against a fleet clock a few wrong
//!   terminal clocks cannot drag (a fix far ahead is held back from the
//!   rules until its vehicle's next fix confirms it); its sink stores, files
//!   and announces each violation. Live ingest and `replay` share it.
//! - [`ingest`]: subscribes to the telemetry topics, turns payloads into
//!   fixes exactly once, refuses bad input (metric, log, dead letter) and
//!   writes fixes in batches, acknowledging to the broker only after commit;
//!   rows the database refuses are quarantined, the rest committed.
//! - [`mqtt_access`]: who may connect to the MQTT side and publish or
//!   subscribe to what (devices, officers, muckwatch itself); device
//!   passwords stored hashed. Asked by the broker and the auth/acl endpoints.
//! - [`jt808`]: JT/T 808 terminals over TCP: a codec of our own (framing,
//!   escapes, both header editions, GBK, extras, sub-packages) and the
//!   gateway that registers and authenticates terminals (codes stored
//!   hashed), maps their locations through terminal profiles and publishes
//!   them on the telemetry topics, answering only once the broker
//!   acknowledged; in `serve` or alone (`muckwatch gateway jt808`).
//!   (`configuration` holds its `[jt808]` settings type, as it does rules'.)
//! - [`broker`]: a small embedded MQTT 3.1.1 broker for a bare machine that
//!   no client can stall: caps, deadlines, bounded queues, an indexed
//!   subscription tree.
//! - [`replay`]: `muckwatch replay FILE`, NDJSON fixes through detection.
//! - [`api`]: the HTTP API and the web console; every handler names its caller.
//!   It is served by its own HTTP/1.1 loop (header-read and request
//!   timeouts, a concurrency cap, a shutdown deadline, the console's security
//!   headers); every list also answers as an Excel workbook.
//! - [`startup`]: assembles all of the above into a running service.
//! - [`sim`]: the fleet simulator with ground truth (`muckwatch-sim`, `muckwatch
//!   demo`) and the scoring of detection against it (`muckwatch score`).

pub mod alerts;
pub mod api;
pub mod applications;
pub mod auth;
pub mod broker;
pub mod cases;
pub mod configuration;
pub mod credit;
pub mod fix;
pub mod geofence;
pub mod identity;
pub mod ingest;
pub mod inspections;
pub mod jt808;
pub mod live;
pub mod metrics;
pub mod mqtt_access;
pub mod outbox;
pub mod permit;
pub mod pipeline;
pub mod registry;
pub mod replay;
pub mod rules;
pub mod sim;
pub mod startup;
pub mod store;
pub mod text;
pub mod time;
pub mod violation;
pub mod webhooks;

//! muckwatch running as `serve` runs it (embedded broker, a SQLite file of
//! its own, free ports), used as its users use it: MQTT in, HTTP and the
//! command line out. Hermetic: a plain `cargo test` runs all of it but the
//! browser test of the console (`#[ignore]`d: it needs Chromium and node;
//! `.ci/run` runs it with `cargo test --test api -- --ignored console::`).

#[path = "../common/mod.rs"]
mod common;

mod access;
mod alerts;
mod applications;
mod broker;
mod cases;
mod cli;
mod clocks;
mod console;
mod credit;
mod deadlines;
mod exports;
mod hygiene;
mod ingest;
mod inspections;
mod jt808;
mod mqtt_auth;
mod outbox;
mod tokens;
mod violations;

//! muckwatch against this machine's own services: Mosquitto on
//! 127.0.0.1:1883 (`MUCKWATCH_TEST_MQTT_URL`) and PostgreSQL on
//! 127.0.0.1:5432 (`MUCKWATCH_TEST_POSTGRES_URL`). Every test is
//! `#[ignore]`d; `.ci/run` runs them with `cargo test --test external --
//! --ignored`. Each makes its own database and topic prefix and cleans up.

#[path = "../common/mod.rs"]
mod common;

mod faults;
mod instances;
mod mosquitto;
mod mosquitto_auth;
mod postgres;

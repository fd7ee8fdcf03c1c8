//! The simulator end to end: `muckwatch demo` (a seeded fleet through an
//! accelerated night, then its score) and `muckwatch score` as a user runs
//! them, and detection scored against the simulator's ground truth.
//! Hermetic, but the slowest binary: whole nights at high speed.

#[path = "../common/mod.rs"]
mod common;

mod demo;
mod outbox;
mod score;

/// A night at full speed keeps every core busy and its tests wait on it
/// with deadlines: the nights take turns.
static ONE_NIGHT_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

//! The live fleet: each vehicle's newest fix and open violations, as
//! detection last published them, for the live map (`GET /api/v1/vehicles`)
//! to read without touching the database.
//!
//! Each detection shard owns its vehicles outright; it keeps their live
//! entries beside their rule state and publishes a copy of them (a
//! [`LivePart`]) behind an `ArcSwap`, at most every [`PUBLISH_EVERY_MS`]
//! while fixes arrive and on its tick. Readers load every shard's part
//! (one atomic load each, never a lock) and see a fleet at most that old.
//! Writers never wait for readers: a reader holding an old part only keeps
//! that copy alive.
//!
//! An instance sees the vehicles of the buckets it consumes; with several
//! instances each serves its own buckets' vehicles (see docs/deploy.md).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::fix::{DeviceId, Fix};
use crate::violation::ViolationCode;

/// How often a shard that receives fixes publishes its part, at most.
pub const PUBLISH_EVERY_MS: u64 = 200;

/// A vehicle is "violating" while an episode is open or for this long
/// after the last one ended (by its own fix time).
pub const VIOLATING_AFTER_END_MS: i64 = 10 * 60_000;

/// A vehicle is "stale" when its newest fix is this much older than the
/// newest fix of the fleet (event time, as the rules use, not the wall clock).
pub const STALE_MS: i64 = 15 * 60_000;

/// One vehicle as the live map shows it. `Copy`: a shard's part is copied
/// whole when published.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveVehicle {
    /// The newest fix by fix time (as `MAX(ts_ms)` over the stored fixes).
    pub fix: Fix,
    /// Codes with an episode open now, one bit per [`ViolationCode::ALL`] entry.
    open: u16,
    /// Fix time the latest episode ended at.
    last_ended_ms: Option<i64>,
}

impl LiveVehicle {
    pub fn new(fix: Fix) -> LiveVehicle {
        LiveVehicle {
            fix,
            open: 0,
            last_ended_ms: None,
        }
    }

    /// A newer fix of the same vehicle; an older one (out of order) is ignored.
    pub fn on_fix(&mut self, fix: &Fix) {
        if fix.ts_ms > self.fix.ts_ms {
            self.fix = *fix;
        }
    }

    pub fn raised(&mut self, code: ViolationCode) {
        self.open |= bit(code);
    }

    pub fn ended(&mut self, code: ViolationCode, ended_ms: i64) {
        self.open &= !bit(code);
        self.last_ended_ms = Some(self.last_ended_ms.map_or(ended_ms, |e| e.max(ended_ms)));
    }

    /// The open codes as bits, one per [`ViolationCode::ALL`] entry: cheap
    /// to compare.
    pub fn open_bits(&self) -> u16 {
        self.open
    }

    /// The codes with an episode open now, in the contract's order.
    pub fn open_codes(&self) -> impl Iterator<Item = ViolationCode> + '_ {
        ViolationCode::ALL
            .into_iter()
            .filter(|c| self.open & bit(*c) != 0)
    }

    /// An episode open, or one ended within [`VIOLATING_AFTER_END_MS`] of
    /// the newest fix.
    pub fn violating(&self) -> bool {
        self.open != 0
            || self
                .last_ended_ms
                .is_some_and(|e| e >= self.fix.ts_ms - VIOLATING_AFTER_END_MS)
    }

    /// `violating`, `stale` (older than [`STALE_MS`] before `fleet_newest_ms`)
    /// or `ok`; a vehicle with no entry is `no_fix`.
    pub fn state(&self, fleet_newest_ms: i64) -> &'static str {
        if self.violating() {
            "violating"
        } else if self.fix.ts_ms < fleet_newest_ms - STALE_MS {
            "stale"
        } else {
            "ok"
        }
    }
}

fn bit(code: ViolationCode) -> u16 {
    let i = ViolationCode::ALL
        .iter()
        .position(|c| *c == code)
        .unwrap_or(0);
    1 << i
}

/// What one shard published: its vehicles and the newest fix time among them.
#[derive(Debug, Clone, Default)]
pub struct LivePart {
    pub vehicles: HashMap<DeviceId, LiveVehicle>,
    pub newest_ms: Option<i64>,
}

/// Every shard's latest published part.
pub struct LiveFleet {
    parts: Box<[ArcSwap<LivePart>]>,
    /// Counts publications: readers that cache what they made of the fleet
    /// (the API's read cache) or send only its changes (the live map's
    /// stream) watch it.
    version: tokio::sync::watch::Sender<u64>,
}

impl LiveFleet {
    pub fn new(shards: usize) -> LiveFleet {
        LiveFleet {
            parts: (0..shards.max(1))
                .map(|_| ArcSwap::from_pointee(LivePart::default()))
                .collect(),
            version: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Replaces shard `index`'s part.
    pub fn publish(&self, index: usize, part: LivePart) {
        if let Some(slot) = self.parts.get(index) {
            slot.store(Arc::new(part));
            self.version.send_modify(|v| *v += 1);
        }
    }

    /// How many parts have been published so far.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Wakes on each publication.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// A consistent view of each part as published now.
    pub fn snapshot(&self) -> LiveSnapshot {
        LiveSnapshot {
            parts: self.parts.iter().map(|p| p.load_full()).collect(),
        }
    }
}

/// The parts as loaded at one moment; lookups go through every part (a
/// vehicle is in exactly one: its shard's).
pub struct LiveSnapshot {
    parts: Vec<Arc<LivePart>>,
}

impl LiveSnapshot {
    pub fn get(&self, device: &DeviceId) -> Option<&LiveVehicle> {
        self.parts.iter().find_map(|p| p.vehicles.get(device))
    }

    /// The newest fix time of the fleet this instance sees.
    pub fn newest_ms(&self) -> Option<i64> {
        self.parts.iter().filter_map(|p| p.newest_ms).max()
    }

    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.vehicles.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(device: &str, ts_ms: i64) -> Fix {
        Fix {
            device_id: DeviceId::parse(device).expect("device"),
            ts_ms,
            lat: 33.0,
            lon: 120.0,
            speed_kmh: 10.0,
            heading: None,
            acc: None,
            tipper_up: None,
            cover_closed: None,
            load_t: None,
        }
    }

    #[test]
    fn a_vehicle_is_violating_while_open_and_ten_minutes_after() {
        let mut v = LiveVehicle::new(fix("d1", 1_000_000));
        assert_eq!(v.state(1_000_000), "ok");
        v.raised(ViolationCode::Speeding);
        v.raised(ViolationCode::NoPermit);
        assert_eq!(
            v.open_codes().collect::<Vec<_>>(),
            [ViolationCode::NoPermit, ViolationCode::Speeding]
        );
        v.ended(ViolationCode::Speeding, 1_000_000);
        v.ended(ViolationCode::NoPermit, 1_000_000);
        assert_eq!(v.state(1_000_000), "violating");
        v.on_fix(&fix("d1", 1_000_000 + VIOLATING_AFTER_END_MS + 1));
        v.on_fix(&fix("d1", 5)); // out of order: no rewind
        assert_eq!(v.state(v.fix.ts_ms), "ok");
        assert_eq!(v.state(v.fix.ts_ms + STALE_MS + 1), "stale");
    }

    #[test]
    fn a_snapshot_finds_each_vehicle_in_its_shards_part() {
        let live = LiveFleet::new(2);
        let mut part = LivePart::default();
        let f = fix("d2", 7);
        part.vehicles.insert(f.device_id, LiveVehicle::new(f));
        part.newest_ms = Some(7);
        live.publish(1, part);
        let s = live.snapshot();
        assert_eq!(s.get(&f.device_id).map(|v| v.fix.ts_ms), Some(7));
        assert_eq!((s.newest_ms(), s.len()), (Some(7), 1));
    }
}

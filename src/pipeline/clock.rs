//! The fleet clock: how far event time has got, for judging silence
//! (TRACK_GAP) and for judging whether a terminal's clock runs ahead.
//!
//! It is the [`RANK`]-th largest of the registered vehicles' latest
//! evaluated fix times (the smallest of them while fewer vehicles have
//! reported), never past the wall clock plus the allowed skew. So up to
//! `RANK - 1` terminals whose clocks run ahead, by seconds or by days,
//! cannot drag it, and neither can any device registered to no vehicle (it
//! never reaches the clock). A one-off bad stamp does not even get that far:
//! the shard holds a fix that is far ahead back from the rules (see
//! `shard.rs`), so only fixes its vehicle's next fix confirms count.
//!
//! No lock: each shard keeps the top `RANK` times of its own vehicles
//! ([`ShardTop`]) and publishes them into its own atomics; the clock merges
//! the shards' tops (the fleet's top `RANK` is among them).

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use crate::fix::DeviceId;

/// How many of the latest vehicles the clock looks past: `RANK - 1` bad
/// clocks are outvoted.
pub const RANK: usize = 3;

const EMPTY: i64 = i64::MIN;

pub struct FleetClock {
    /// `RANK` slots per shard, [`EMPTY`] where the shard has fewer vehicles.
    slots: Box<[AtomicI64]>,
    skew_ms: i64,
}

impl FleetClock {
    pub fn new(shards: usize, skew_ms: i64) -> FleetClock {
        FleetClock {
            slots: (0..shards * RANK).map(|_| AtomicI64::new(EMPTY)).collect(),
            skew_ms,
        }
    }

    pub fn skew_ms(&self) -> i64 {
        self.skew_ms
    }

    /// The latest a fix may be stamped by the wall clock: now plus the skew.
    pub fn wall_limit_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis() + self.skew_ms
    }

    /// Fleet time in ms, `None` before any registered vehicle's fix.
    pub fn now_ms(&self) -> Option<i64> {
        let mut top = [EMPTY; RANK];
        for slot in self.slots.iter() {
            let t = slot.load(Relaxed);
            // keep `top` sorted, largest first
            if t > top[RANK - 1] {
                let mut i = RANK - 1;
                while i > 0 && top[i - 1] < t {
                    top[i] = top[i - 1];
                    i -= 1;
                }
                top[i] = t;
            }
        }
        let rank_th = top.iter().rev().find(|&&t| t != EMPTY)?;
        Some((*rank_th).min(self.wall_limit_ms()))
    }

    /// A shard's top times, written where the clock reads them.
    pub(crate) fn publish(&self, shard: usize, top: &ShardTop) {
        for (i, slot) in self.slots[shard * RANK..(shard + 1) * RANK]
            .iter()
            .enumerate()
        {
            slot.store(top.entries.get(i).map_or(EMPTY, |e| e.1), Relaxed);
        }
    }
}

/// The `RANK` latest evaluated fix times of distinct vehicles of one shard.
/// A vehicle's time only grows, so one that leaves the top never has to come
/// back from below unseen: it re-enters when its time passes the smallest.
#[derive(Default)]
pub(crate) struct ShardTop {
    entries: Vec<(DeviceId, i64)>,
}

impl ShardTop {
    /// The latest evaluated fix time of the shard's vehicles.
    pub fn latest(&self) -> Option<i64> {
        self.entries.iter().map(|e| e.1).max()
    }

    /// Vehicle `device` got to `ts_ms`; true if the top changed.
    pub fn advance(&mut self, device: DeviceId, ts_ms: i64) -> bool {
        if let Some(e) = self.entries.iter_mut().find(|e| e.0 == device) {
            if ts_ms <= e.1 {
                return false;
            }
            e.1 = ts_ms;
            return true;
        }
        if self.entries.len() < RANK {
            self.entries.push((device, ts_ms));
            return true;
        }
        let Some(min) = self.entries.iter_mut().min_by_key(|e| e.1) else {
            return false;
        };
        if ts_ms <= min.1 {
            return false;
        }
        *min = (device, ts_ms);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(s: &str) -> DeviceId {
        DeviceId::parse(s).expect("device")
    }

    const T0: i64 = 1_622_556_000_000; // 2021-06-01

    #[test]
    fn a_few_clocks_far_ahead_do_not_drag_the_fleet_clock() {
        let clock = FleetClock::new(2, 60_000);
        let (mut a, mut b) = (ShardTop::default(), ShardTop::default());
        assert_eq!(clock.now_ms(), None);
        a.advance(dev("a1"), T0);
        clock.publish(0, &a);
        assert_eq!(clock.now_ms(), Some(T0), "one vehicle: its own time");
        for (i, d) in ["b1", "b2", "b3"].iter().enumerate() {
            b.advance(dev(d), T0 + 10_000 * i as i64);
        }
        clock.publish(1, &b);
        assert_eq!(clock.now_ms(), Some(T0), "the third latest of four");
        // two terminals a day ahead: outvoted
        a.advance(dev("a2"), T0 + 86_400_000);
        a.advance(dev("a3"), T0 + 86_400_000);
        clock.publish(0, &a);
        assert_eq!(clock.now_ms(), Some(T0 + 20_000));
        // the honest ones move it on
        b.advance(dev("b1"), T0 + 30_000);
        clock.publish(1, &b);
        assert_eq!(clock.now_ms(), Some(T0 + 30_000));
    }

    #[test]
    fn never_past_the_wall_clock() {
        let clock = FleetClock::new(1, 60_000);
        let mut top = ShardTop::default();
        let ahead = chrono::Utc::now().timestamp_millis() + 3_600_000;
        for d in ["a", "b", "c"] {
            top.advance(dev(d), ahead);
        }
        clock.publish(0, &top);
        let now = clock.now_ms().expect("set");
        assert!(now <= clock.wall_limit_ms() && now < ahead);
    }

    #[test]
    fn the_top_follows_vehicles_that_pass_the_smallest() {
        let mut top = ShardTop::default();
        for (d, t) in [("a", 1), ("b", 2), ("c", 3)] {
            assert!(top.advance(dev(d), t));
        }
        assert!(!top.advance(dev("d"), 1), "not above the smallest");
        assert!(top.advance(dev("d"), 4));
        assert!(!top.advance(dev("c"), 2), "times only grow");
        let mut times: Vec<i64> = top.entries.iter().map(|e| e.1).collect();
        times.sort();
        assert_eq!(times, vec![2, 3, 4]);
    }
}

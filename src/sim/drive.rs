//! One drive: a truck following a [`Path`] from one arc length to another, second by
//! second, at the speed an honest driver keeps there (see `route.rs`), or doing one of
//! the kinematic things a scenario scripts (speeding, leaving the centre line).
//!
//! The planner estimates a drive's duration by running the very same integration
//! ([`Drive::estimate_secs`]), so scripted times (a permit window that opens while
//! the truck is at a site) come out exactly as the run will have them.

use std::sync::Arc;

use super::route::{Path, ACCEL_MS2};
use crate::geofence::PlanePoint;

/// Slowest rolling speed (m/s) until the end of a drive: 7.2 km/h, clearly "moving"
/// for the rules (5 km/h), so a truck is never half-stopped on the road.
pub const CRAWL_MS: f64 = 2.0;
/// Speed (m/s) at which one drive hands over to the next without stopping.
pub const JUNCTION_MS: f64 = 3.5;
/// Braking when the target drops at once (the end of a speeding burst).
const BRAKE_MS2: f64 = 2.0;
/// An offset maneuver's speed cap applies from this far before it.
const OFFSET_APPROACH_M: f64 = 60.0;
/// A speeding driver's acceleration.
const SPEEDING_ACCEL_MS2: f64 = 1.5;

/// What a drive does besides following the centre line at an honest speed. Positions
/// are arc lengths along the path; a maneuver starts when the truck passes them in its
/// direction of travel.
#[derive(Debug, Clone, PartialEq)]
pub enum Maneuver {
    /// From `at_s`, `over_kmh` above the zone limit for `secs` (SPEEDING).
    Speeding { at_s: f64, secs: u32, over_kmh: f64 },
    /// `lateral_m` to the left of the centre line (negative: right) over
    /// `[from_s, to_s]`, reached over `ramp_m` at each end, at most `cap_kmh`:
    /// beyond the corridor it is a ROUTE_DEVIATION, inside it an honest truck
    /// brushing the corridor's edge.
    Offset {
        from_s: f64,
        to_s: f64,
        lateral_m: f64,
        ramp_m: f64,
        cap_kmh: f64,
    },
}

#[derive(Debug, Clone)]
pub struct Drive {
    pub path: Arc<Path>,
    pub from_s: f64,
    pub to_s: f64,
    /// The driver's own cruising speed (m/s): the path's cap may be lower.
    pub cruise_ms: f64,
    /// Speed at the end: 0 stops (a site, a roadside stop), [`JUNCTION_MS`] rolls on.
    pub end_ms: f64,
    pub maneuver: Option<Maneuver>,
    /// Distance covered so far.
    u: f64,
    v: f64,
    /// Seconds since the speeding burst began.
    speeding_for: Option<u32>,
}

impl Drive {
    pub fn new(
        path: Arc<Path>,
        from_s: f64,
        to_s: f64,
        cruise_ms: f64,
        start_ms: f64,
        end_ms: f64,
    ) -> Drive {
        Drive {
            path,
            from_s,
            to_s,
            cruise_ms,
            end_ms,
            maneuver: None,
            u: 0.0,
            v: start_ms,
            speeding_for: None,
        }
    }

    pub fn with(mut self, maneuver: Maneuver) -> Drive {
        self.maneuver = Some(maneuver);
        self
    }

    pub fn length(&self) -> f64 {
        (self.to_s - self.from_s).abs()
    }

    pub fn reverse(&self) -> bool {
        self.to_s < self.from_s
    }

    /// Where on the path the truck is (arc length).
    pub fn s(&self) -> f64 {
        if self.reverse() {
            self.from_s - self.u
        } else {
            self.from_s + self.u
        }
    }

    /// Whether the truck has passed `s` in its direction of travel.
    pub fn passed(&self, s: f64) -> bool {
        if self.reverse() {
            self.s() <= s
        } else {
            self.s() >= s
        }
    }

    pub fn done(&self) -> bool {
        self.u >= self.length()
    }

    pub fn speed_ms(&self) -> f64 {
        self.v
    }

    /// The truck's true position: on the centre line, or offset by the maneuver.
    pub fn position(&self) -> PlanePoint {
        let s = self.s();
        self.path.offset_point(s, self.lateral_m(s))
    }

    fn lateral_m(&self, s: f64) -> f64 {
        let Some(Maneuver::Offset {
            from_s,
            to_s,
            lateral_m,
            ramp_m,
            ..
        }) = &self.maneuver
        else {
            return 0.0;
        };
        if s <= *from_s || s >= *to_s {
            return 0.0;
        }
        let edge = (s - from_s).min(to_s - s);
        lateral_m * (edge / ramp_m.max(1.0)).min(1.0)
    }

    /// One second of driving. Returns true once arrived.
    pub fn tick(&mut self) -> bool {
        if self.done() {
            self.v = self.end_ms;
            return true;
        }
        let s = self.s();
        let remaining = self.length() - self.u;
        let brake = (self.end_ms * self.end_ms + 2.0 * ACCEL_MS2 * remaining).sqrt();
        let mut target = self.cruise_ms.min(self.path.cap_ms(s));
        let mut accel = ACCEL_MS2;
        match &self.maneuver {
            Some(Maneuver::Speeding {
                at_s,
                secs,
                over_kmh,
            }) => {
                if self.speeding_for.is_none() && self.passed(*at_s) {
                    self.speeding_for = Some(0);
                }
                if let Some(t) = self.speeding_for.as_mut() {
                    if *t < *secs {
                        target = (self.path.limit_kmh(s) + over_kmh) / 3.6;
                        accel = SPEEDING_ACCEL_MS2;
                    }
                    *t += 1;
                }
            }
            // slow down before leaving the centre line, not once off it
            Some(Maneuver::Offset {
                from_s,
                to_s,
                cap_kmh,
                ..
            }) if s > from_s - OFFSET_APPROACH_M && s < to_s + OFFSET_APPROACH_M => {
                target = target.min(cap_kmh / 3.6)
            }
            _ => {}
        }
        target = target.min(brake);
        let next = if target >= self.v {
            (self.v + accel).min(target)
        } else {
            target.max(self.v - BRAKE_MS2)
        };
        let next = next.max(CRAWL_MS.min(brake));
        self.u = (self.u + 0.5 * (self.v + next)).min(self.length());
        self.v = next;
        if self.done() {
            self.v = self.end_ms;
        }
        self.done()
    }

    /// Seconds this drive takes, by running the same integration on a copy.
    pub fn estimate_secs(&self) -> u32 {
        let mut copy = self.clone();
        let mut secs = 0;
        while !copy.tick() && secs < 86_400 {
            secs += 1;
        }
        secs + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geofence::FenceSet;

    fn straight(len: f64) -> Arc<Path> {
        Arc::new(
            Path::new(
                &[PlanePoint::new(0.0, 0.0), PlanePoint::new(len, 0.0)],
                &FenceSet::empty(),
                40.0,
            )
            .expect("path"),
        )
    }

    #[test]
    fn a_drive_accelerates_cruises_under_the_limit_and_stops_at_the_end() {
        let mut d = Drive::new(straight(3000.0), 0.0, 3000.0, 45.0 / 3.6, 0.0, 0.0);
        let mut top: f64 = 0.0;
        let mut secs = 0;
        while !d.tick() {
            top = top.max(d.speed_ms());
            assert!(d.speed_ms() >= CRAWL_MS.min(d.speed_ms()), "never stalls");
            secs += 1;
        }
        assert!(
            (top * 3.6 - 32.0).abs() < 0.01,
            "city default 40 minus the margin: {}",
            top * 3.6
        );
        assert_eq!(d.speed_ms(), 0.0);
        assert_eq!(d.position(), PlanePoint::new(3000.0, 0.0));
        assert_eq!(
            Drive::new(straight(3000.0), 0.0, 3000.0, 45.0 / 3.6, 0.0, 0.0).estimate_secs(),
            secs + 1
        );
        assert!((340..420).contains(&secs), "about 3 km at 32 km/h: {secs}");
    }

    #[test]
    fn reverse_drives_and_offsets() {
        let path = straight(2000.0);
        let m = Maneuver::Offset {
            from_s: 500.0,
            to_s: 1500.0,
            lateral_m: -300.0,
            ramp_m: 100.0,
            cap_kmh: 30.0,
        };
        let mut d = Drive::new(path, 2000.0, 0.0, 10.0, 0.0, 0.0).with(m);
        let mut widest: f64 = 0.0;
        while !d.tick() {
            widest = widest.min(d.position().y);
            if d.position().y < -1.0 {
                assert!(d.speed_ms() <= 30.0 / 3.6 + 1e-9);
            }
        }
        assert_eq!(widest, -300.0);
        assert_eq!(d.position(), PlanePoint::new(0.0, 0.0));
    }

    #[test]
    fn speeding_holds_the_limit_plus_the_excess_for_the_burst() {
        let m = Maneuver::Speeding {
            at_s: 1000.0,
            secs: 60,
            over_kmh: 20.0,
        };
        let mut d = Drive::new(straight(5000.0), 0.0, 5000.0, 30.0 / 3.6, 0.0, 0.0).with(m);
        let mut above = 0;
        while !d.tick() {
            if d.speed_ms() * 3.6 > 40.0 {
                above += 1;
                assert!(d.speed_ms() * 3.6 <= 60.0 + 1e-9);
            }
        }
        assert!(
            (55..=62).contains(&above),
            "about a minute above the limit: {above}"
        );
    }
}

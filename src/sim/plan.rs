//! A truck's night: trips (load at the source site, drive to the disposal site,
//! unload, drive back) scheduled from its start until the night is nearly over, each
//! leg plain or carrying one scripted behaviour, expanded into the steps a [`Truck`]
//! runs.
//!
//! Stops at sites last longer than the rules' quiet period, so that two legs are
//! always two episodes of a duration code (NO_PERMIT, OUT_OF_HOURS) and never one:
//! the truth then says "one per leg" without having to model quiet periods.
//!
//! [`Truck`]: super::truck::Truck

use std::sync::Arc;

use super::drive::{Drive, Maneuver, JUNCTION_MS};
use super::inject::{Detour, OFF_ROUTE_KMH};
use super::noise::Rng;
use super::route::{Path, Route};
use super::truck::{Dwell, Step, Trigger};
use crate::rules::RulesConfig;
use crate::violation::ViolationCode as C;

/// How strongly the scripted behaviours exceed the rules' thresholds (each at least
/// twice the threshold, so that noise and the reporting phase never decide).
#[derive(Debug, Clone, PartialEq)]
pub struct Strength {
    pub speeding_secs: u32,
    pub speeding_over_kmh: f64,
    pub cover_secs: u32,
    pub silence_secs: u32,
    /// Metres driven at the full deviation.
    pub deviation_hold_m: f64,
    pub dump_secs: u32,
    /// Shortest stop at a site (longer than the quiet period).
    pub min_dwell_secs: u32,
}

impl Strength {
    /// Each behaviour lasts at least twice its threshold, and long enough for a few
    /// reports at `interval_s` beyond it (a 60 s burst says little with a fix a minute).
    pub fn for_rules(r: &RulesConfig, interval_s: u32) -> Strength {
        let secs = |s: u64| u32::try_from(s).unwrap_or(u32::MAX);
        let fixes = |n: u32| n.saturating_mul(interval_s);
        let off_route_ms = OFF_ROUTE_KMH / 3.6;
        let deviation_secs = secs(r.route_deviation_s)
            .saturating_mul(3)
            .max(180)
            .max(secs(r.route_deviation_s).saturating_add(fixes(r.route_deviation_fixes + 2)));
        Strength {
            speeding_secs: secs(r.speeding_s)
                .saturating_mul(2)
                .max(60)
                .max(secs(r.speeding_s).saturating_add(fixes(3))),
            speeding_over_kmh: 20.0,
            cover_secs: secs(r.cover_open_s)
                .saturating_mul(3)
                .max(240)
                .max(secs(r.cover_open_s).saturating_add(fixes(3))),
            silence_secs: secs(r.gap_silence_s).saturating_mul(2).max(600),
            deviation_hold_m: f64::from(deviation_secs) * off_route_ms,
            // the tipper is up for 35% of the stop
            dump_secs: 240.max((f64::from(fixes(r.dumping_tipper_fixes + 2)) / 0.35) as u32),
            min_dwell_secs: secs(r.quiet_period_s).saturating_add(120).max(660),
        }
    }
}

/// One trip, as scheduled (durations of the plain drives).
#[derive(Debug, Clone, PartialEq)]
pub struct Trip {
    pub start_ms: i64,
    pub load_secs: u32,
    pub fwd_secs: u32,
    pub unload_secs: u32,
    pub back_secs: u32,
}

impl Trip {
    pub fn end_ms(&self) -> i64 {
        self.start_ms
            + 1000 * i64::from(self.load_secs + self.fwd_secs + self.unload_secs + self.back_secs)
    }
}

/// What one leg does besides driving the route.
#[derive(Debug, Clone)]
pub enum Leg {
    Plain,
    Speeding {
        at_s: f64,
    },
    Deviation {
        from_s: f64,
        to_s: f64,
        lateral_m: f64,
    },
    Detour(Detour),
    Dump {
        at_s: f64,
    },
    CoverOpen {
        at_s: f64,
    },
    Silence {
        at_s: f64,
        for_good: bool,
    },
    /// Honest: keeping to one side of the corridor.
    Brush {
        from_s: f64,
        to_s: f64,
        lateral_m: f64,
    },
    /// Honest: a stop at the roadside, ignition off.
    Park {
        at_s: f64,
        secs: u32,
    },
}

impl Leg {
    pub fn is_plain(&self) -> bool {
        matches!(self, Leg::Plain)
    }
}

#[derive(Debug, Clone)]
pub struct TripPlan {
    pub trip: Trip,
    pub load_t: f64,
    pub overload: bool,
    /// Unload at the end of this other route (WRONG_DISPOSAL_SITE).
    pub wrong: Option<Route>,
    pub fwd: Leg,
    pub back: Leg,
}

impl TripPlan {
    /// No scripted violation on this trip yet.
    pub fn is_clean(&self) -> bool {
        !self.overload && self.wrong.is_none() && self.fwd.is_plain() && self.back.is_plain()
    }
}

/// Trips from `first_ms` while the whole trip ends `margin_ms` before `end_ms`.
pub fn schedule(
    route: &Route,
    cruise_ms: f64,
    first_ms: i64,
    end_ms: i64,
    margin_ms: i64,
    min_dwell: u32,
    rng: &mut Rng,
) -> Vec<Trip> {
    let len = route.path.length();
    let fwd_secs = Drive::new(route.path.clone(), 0.0, len, cruise_ms, 0.0, 0.0).estimate_secs();
    let back_secs = Drive::new(route.path.clone(), len, 0.0, cruise_ms, 0.0, 0.0).estimate_secs();
    let mut trips = Vec::new();
    let mut t = first_ms;
    loop {
        let dwell = |rng: &mut Rng| min_dwell + rng.below(240) as u32;
        let trip = Trip {
            start_ms: t,
            load_secs: dwell(rng),
            fwd_secs,
            unload_secs: dwell(rng),
            back_secs,
        };
        if trip.end_ms() > end_ms - margin_ms {
            return trips;
        }
        t = trip.end_ms();
        trips.push(trip);
    }
}

/// Seconds a leg's script adds to the plain drive (an estimate: stops, slow detours).
fn extra_secs(leg: &Leg, cruise_ms: f64, st: &Strength) -> f64 {
    let slow_ms = OFF_ROUTE_KMH / 3.6;
    match leg {
        Leg::Dump { .. } => f64::from(st.dump_secs) + 60.0,
        Leg::Park { secs, .. } => f64::from(*secs) + 60.0,
        Leg::Detour(d) => d.path.length() / slow_ms + 60.0 - (d.s2 - d.s1) / cruise_ms,
        Leg::Deviation { from_s, to_s, .. } => {
            ((to_s - from_s) / slow_ms - (to_s - from_s) / cruise_ms).max(0.0)
        }
        _ => 0.0,
    }
}

/// Re-estimates the trips' times once their scripts are known (a trip to another
/// disposal site takes another route; stops and detours take time), and drops the
/// trips that no longer end by `end_limit_ms`. Err if a dropped trip had a script.
pub fn retime(
    trips: &mut Vec<TripPlan>,
    route: &Route,
    cruise_ms: f64,
    st: &Strength,
    end_limit_ms: i64,
) -> Result<(), String> {
    let Some(first) = trips.first() else {
        return Ok(());
    };
    let mut t = first.trip.start_ms;
    for tp in trips.iter_mut() {
        let path = tp.wrong.as_ref().unwrap_or(route).path.clone();
        let len = path.length();
        let fwd = Drive::new(path.clone(), 0.0, len, cruise_ms, 0.0, 0.0).estimate_secs();
        let back = Drive::new(path, len, 0.0, cruise_ms, 0.0, 0.0).estimate_secs();
        tp.trip.start_ms = t;
        tp.trip.fwd_secs = fwd + extra_secs(&tp.fwd, cruise_ms, st) as u32;
        tp.trip.back_secs = back + extra_secs(&tp.back, cruise_ms, st) as u32;
        t = tp.trip.end_ms();
    }
    while trips
        .last()
        .is_some_and(|tp| tp.trip.end_ms() > end_limit_ms)
    {
        if let Some(tp) = trips
            .pop()
            .filter(|tp| !tp.is_clean() && !is_honest_variety(tp))
        {
            let at = chrono::DateTime::from_timestamp_millis(tp.trip.start_ms)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            return Err(format!(
                "a scripted trip starting at {at} no longer fits the night"
            ));
        }
    }
    Ok(())
}

fn is_honest_variety(tp: &TripPlan) -> bool {
    !tp.overload
        && tp.wrong.is_none()
        && [&tp.fwd, &tp.back]
            .iter()
            .all(|l| matches!(l, Leg::Plain | Leg::Brush { .. } | Leg::Park { .. }))
}

/// The steps of a night: an optional wait (ignition off), then the trips. A truck
/// that does not `haul` stands at the sites instead of loading and unloading (an
/// unpermitted truck moving between them empty: tipping at a disposal site would
/// also be a WRONG_DISPOSAL_SITE for a truck with no permit naming one).
pub fn expand(
    route: &Route,
    cruise_ms: f64,
    wait_secs: u32,
    trips: &[TripPlan],
    strength: &Strength,
    hauls: bool,
) -> Vec<Step> {
    let mut steps = Vec::new();
    if wait_secs > 0 {
        steps.push(Step::dwell(wait_secs, Dwell::Park, false));
    }
    let leg = LegBuilder {
        cruise_ms,
        strength,
    };
    for tp in trips {
        let overload: &[C] = if tp.overload { &[C::Overload] } else { &[] };
        const OVER: &str = "loaded above its rated load";
        let (load, unload) = if hauls {
            (Dwell::Load { to_t: tp.load_t }, Dwell::Unload)
        } else {
            (Dwell::Park, Dwell::Park)
        };
        steps.push(Step::dwell(tp.trip.load_secs, load, true).watching(overload, OVER));
        let unload = Step::dwell(tp.trip.unload_secs, unload, true);
        match &tp.wrong {
            Some(other) => {
                const OFF: &str = "side effect: off its route, to and from another disposal site";
                let path = &other.path;
                steps.push(leg.drive(path, true).watching(&[C::RouteDeviation], OFF));
                steps.push(unload.watching(
                    &[C::WrongDisposalSite, C::RouteDeviation],
                    "unloaded at another disposal site",
                ));
                steps.push(leg.drive(path, false).watching(&[C::RouteDeviation], OFF));
            }
            None => {
                leg.steps(&route.path, true, &tp.fwd, overload, &mut steps);
                steps.push(unload.watching(overload, OVER));
                leg.steps(&route.path, false, &tp.back, &[], &mut steps);
            }
        }
    }
    steps
}

struct LegBuilder<'a> {
    cruise_ms: f64,
    strength: &'a Strength,
}

impl LegBuilder<'_> {
    fn drive(&self, path: &Arc<Path>, forward: bool) -> Step {
        let len = path.length();
        let (a, b) = if forward { (0.0, len) } else { (len, 0.0) };
        Step::drive(Drive::new(path.clone(), a, b, self.cruise_ms, 0.0, 0.0))
    }

    fn part(&self, path: &Arc<Path>, a: f64, b: f64, start_ms: f64, end_ms: f64) -> Drive {
        Drive::new(path.clone(), a, b, self.cruise_ms, start_ms, end_ms)
    }

    /// The steps of one leg; `carry` codes are watched on all of them (the load).
    fn steps(&self, path: &Arc<Path>, forward: bool, leg: &Leg, carry: &[C], out: &mut Vec<Step>) {
        const OVER: &str = "loaded above its rated load";
        let len = path.length();
        let (a, b) = if forward { (0.0, len) } else { (len, 0.0) };
        let st = self.strength;
        let plain = |d: Drive| Step::drive(d).watching(carry, OVER);
        let with = |codes: &[C], note| {
            let mut all = carry.to_vec();
            all.extend_from_slice(codes);
            move |d: Drive| Step::drive(d).watching(&all, note)
        };
        match leg {
            Leg::Plain => out.push(plain(self.part(path, a, b, 0.0, 0.0))),
            Leg::Speeding { at_s } => {
                let m = Maneuver::Speeding {
                    at_s: *at_s,
                    secs: st.speeding_secs,
                    over_kmh: st.speeding_over_kmh,
                };
                out.push(with(&[C::Speeding], "speeding burst")(
                    self.part(path, a, b, 0.0, 0.0).with(m),
                ));
            }
            Leg::Deviation {
                from_s,
                to_s,
                lateral_m,
            } => {
                let m = Maneuver::Offset {
                    from_s: *from_s,
                    to_s: *to_s,
                    lateral_m: *lateral_m,
                    ramp_m: 200.0,
                    cap_kmh: OFF_ROUTE_KMH,
                };
                out.push(with(
                    &[C::RouteDeviation],
                    "drove 300 m beside its corridor",
                )(self.part(path, a, b, 0.0, 0.0).with(m)));
            }
            Leg::Detour(d) => {
                let note = "detour into a restricted zone";
                let off = with(&[C::RouteDeviation], note);
                out.push(off(self.part(path, a, d.s1, 0.0, JUNCTION_MS)));
                let slow = self.cruise_ms.min(OFF_ROUTE_KMH / 3.6);
                let inner = Drive::new(
                    d.path.clone(),
                    0.0,
                    d.path.length(),
                    slow,
                    JUNCTION_MS,
                    JUNCTION_MS,
                );
                out.push(with(&[C::RouteDeviation, C::RestrictedZone], note)(inner));
                out.push(off(self.part(path, d.s2, b, JUNCTION_MS, 0.0)));
            }
            Leg::Dump { at_s } => {
                out.push(plain(self.part(path, a, *at_s, 0.0, 0.0)));
                out.push(
                    Step::dwell(st.dump_secs, Dwell::Unload, true)
                        .watching(&[C::IllegalDumping], "tipped its load at the roadside"),
                );
                out.push(Step::drive(self.part(path, *at_s, b, 0.0, 0.0)));
            }
            Leg::CoverOpen { at_s } => {
                let mut step = with(&[C::CoverOpen], "drove with the cover open")(
                    self.part(path, a, b, 0.0, 0.0),
                );
                step.trigger = Some(Trigger::CoverOpen {
                    at_s: *at_s,
                    secs: st.cover_secs,
                });
                out.push(step);
            }
            Leg::Silence { at_s, for_good } => {
                let mut step = plain(self.part(path, a, b, 0.0, 0.0));
                step.trigger = Some(Trigger::Silence {
                    at_s: *at_s,
                    secs: (!for_good).then_some(st.silence_secs),
                });
                out.push(step);
            }
            Leg::Brush {
                from_s,
                to_s,
                lateral_m,
            } => {
                let m = Maneuver::Offset {
                    from_s: *from_s,
                    to_s: *to_s,
                    lateral_m: *lateral_m,
                    ramp_m: 150.0,
                    cap_kmh: 200.0,
                };
                out.push(plain(self.part(path, a, b, 0.0, 0.0).with(m)));
            }
            Leg::Park { at_s, secs } => {
                out.push(plain(self.part(path, a, *at_s, 0.0, 0.0)));
                out.push(Step::dwell(*secs, Dwell::Park, false).watching(carry, OVER));
                out.push(plain(self.part(path, *at_s, b, 0.0, 0.0)));
            }
        }
    }
}

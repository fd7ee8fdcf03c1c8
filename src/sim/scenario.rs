//! What a run simulates: the settings ([`SimConfig`]), how many violations of each code
//! to inject ([`Injections`]), and the cast: which truck plays which part and on which
//! trip each scripted violation happens ([`cast`]).
//!
//! Parts: honest trucks (some keep to one side of their corridor, pass restricted
//! zones as close as their corridor allows, or park at the roadside with the ignition
//! off); trucks whose permit expired and trucks never given one (NO_PERMIT, one per
//! leg they drive); trucks whose permit window opens after their first trip
//! (OUT_OF_HOURS, one per leg outside it); a terminal that dies mid-route (TRACK_GAP
//! with no end); and "cheats", permitted trucks that do one scripted thing on a trip:
//! speed, deviate, detour into a restricted zone, tip at the roadside, unload at
//! another disposal site, overload, drive with the cover open, or go silent a while.

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;

use super::inject;
use super::noise::Rng;
use super::plan::{schedule, Leg, Strength, TripPlan};
use super::route::Route;
use crate::geofence::FenceSet;
use crate::rules::RulesConfig;
use crate::violation::ViolationCode as C;

/// Every trip is planned to end this long before the simulated night does (stops
/// and detours run longer than planned; permits' windows end an hour after it).
const NIGHT_MARGIN_MS: i64 = 1_800_000;

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// `mixed` (violations injected) or `honest` (none).
    pub scenario: String,
    pub seed: u64,
    pub trucks: usize,
    /// Simulated start (default 2021-06-01 21:00 +08:00: a fixed night, so runs repeat).
    pub start: DateTime<FixedOffset>,
    /// Simulated hours (default 9: until 06:00).
    pub hours: f64,
    /// Seconds between two reports of one terminal.
    pub interval_s: u32,
    /// GPS noise, metres (standard deviation per axis).
    pub sigma_m: f64,
    pub tz: Tz,
    /// The thresholds in force: injections are made to exceed them clearly.
    pub rules: RulesConfig,
    pub injections: Injections,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            scenario: "mixed".into(),
            seed: 1,
            trucks: 30,
            start: DateTime::parse_from_rfc3339("2021-06-01T21:00:00+08:00").unwrap_or_default(),
            hours: 9.0,
            interval_s: 10,
            sigma_m: 8.0,
            tz: chrono_tz::Asia::Shanghai,
            rules: RulesConfig::default(),
            injections: Injections::mixed(),
        }
    }
}

impl SimConfig {
    pub fn start_ms(&self) -> i64 {
        self.start.timestamp_millis()
    }

    pub fn end_ms(&self) -> i64 {
        self.start_ms() + (self.hours * 3_600_000.0) as i64
    }

    /// Applies a scenario name: `honest` clears the injections, `mixed` sets the defaults.
    pub fn with_scenario(mut self, name: &str) -> Result<SimConfig, String> {
        self.injections = match name {
            "honest" => Injections::none(),
            "mixed" => Injections::mixed(),
            other => {
                return Err(format!(
                    "scenario `{other}` is not known (available: mixed, honest)"
                ))
            }
        };
        self.scenario = name.to_string();
        Ok(self)
    }
}

/// How many of each code to inject. NO_PERMIT and OUT_OF_HOURS count trucks (each
/// raises one violation per leg it drives without a valid permit / outside its
/// window); TRACK_GAP counts silences, the last of them a terminal that never comes
/// back; every other code counts trips on which it happens once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injections(pub [u32; C::ALL.len()]);

impl Injections {
    pub fn none() -> Injections {
        Injections([0; C::ALL.len()])
    }

    pub fn mixed() -> Injections {
        let mut i = Injections([4; C::ALL.len()]);
        i.0[C::NoPermit.index()] = 2;
        i.0[C::OutOfHours.index()] = 2;
        i
    }

    pub fn get(&self, code: C) -> u32 {
        self.0[code.index()]
    }

    /// `SPEEDING=3,COVER_OPEN=0` changes those counts.
    pub fn apply(&mut self, spec: &str) -> Result<(), String> {
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (code, n) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected CODE=N"))?;
            let code =
                C::parse(code.trim()).ok_or_else(|| format!("`{code}` is not a violation code"))?;
            self.0[code.index()] = n
                .trim()
                .parse()
                .map_err(|_| format!("`{part}`: N must be a whole number"))?;
        }
        Ok(())
    }
}

/// The part a truck plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Honest,
    /// Its only permit expired the day before the run.
    Expired,
    /// Never had a permit; drives between sites empty (nothing to unload).
    Unpermitted,
    /// Its permit's window opens during its second trip's loading.
    OutOfHours,
    /// Its terminal dies for good halfway through the night.
    DeadTerminal,
    /// Permitted; does scripted things on some trips.
    Cheat,
}

/// A truck as cast: everything but its identity and permit.
#[derive(Debug, Clone)]
pub struct Cast {
    pub role: Role,
    pub route: Route,
    pub cruise_ms: f64,
    pub rated_load_t: f64,
    pub phase_s: u32,
    pub wait_secs: u32,
    pub trips: Vec<TripPlan>,
}

/// Casts the fleet: truck-level parts first, then cheats as many as the trip-level
/// injections need, then honest trucks up to `config.trucks`.
pub fn cast(fences: &FenceSet, routes: &[Route], config: &SimConfig) -> Result<Vec<Cast>, String> {
    if routes.is_empty() {
        return Err("the fence set has no route from a source site to a disposal site".into());
    }
    let mut caster = Caster::new(fences, routes, config);
    let inj = config.injections;
    for k in 0..inj.get(C::NoPermit) {
        caster.add(
            if k % 2 == 0 {
                Role::Expired
            } else {
                Role::Unpermitted
            },
            None,
        );
    }
    for _ in 0..inj.get(C::OutOfHours) {
        caster.add(Role::OutOfHours, None);
    }
    let gaps = inj.get(C::TrackGap);
    if gaps >= 2 {
        caster.add(Role::DeadTerminal, None);
    }
    let trip_codes = [
        C::Speeding,
        C::RouteDeviation,
        C::RestrictedZone,
        C::IllegalDumping,
        C::WrongDisposalSite,
        C::Overload,
        C::CoverOpen,
        C::TrackGap,
    ];
    let count = |c: C| {
        if c == C::TrackGap {
            gaps.saturating_sub(u32::from(gaps >= 2))
        } else {
            inj.get(c)
        }
    };
    let rounds = trip_codes.iter().map(|&c| count(c)).max().unwrap_or(0);
    for round in 0..rounds {
        for &code in trip_codes.iter().filter(|&&c| round < count(c)) {
            caster.inject(code)?;
        }
    }
    if caster.cast.len() > config.trucks {
        return Err(format!(
            "--trucks {} is too few for the injections asked for: they need {} trucks",
            config.trucks,
            caster.cast.len()
        ));
    }
    while caster.cast.len() < config.trucks {
        caster.add(Role::Honest, None);
    }
    let end_limit = config.end_ms() - NIGHT_MARGIN_MS;
    for (i, c) in caster.cast.iter_mut().enumerate() {
        super::plan::retime(
            &mut c.trips,
            &c.route,
            c.cruise_ms,
            &caster.strength,
            end_limit,
        )
        .map_err(|e| format!("truck {i}: {e}; simulate more hours or inject less"))?;
    }
    Ok(caster.cast)
}

struct Caster<'a> {
    fences: &'a FenceSet,
    routes: &'a [Route],
    config: &'a SimConfig,
    strength: Strength,
    cast: Vec<Cast>,
    next_route: usize,
}

impl<'a> Caster<'a> {
    fn new(fences: &'a FenceSet, routes: &'a [Route], config: &'a SimConfig) -> Caster<'a> {
        Caster {
            fences,
            routes,
            config,
            strength: Strength::for_rules(&config.rules, config.interval_s),
            cast: Vec::new(),
            next_route: 0,
        }
    }

    fn rng(&self, index: usize, purpose: u64) -> Rng {
        Rng::stream(self.config.seed, index as u64, purpose)
    }

    /// A new truck on `route` (else the next route in turn), with its trips scheduled.
    fn add(&mut self, role: Role, route: Option<usize>) -> usize {
        let index = self.cast.len();
        let r = route.unwrap_or_else(|| {
            self.next_route += 1;
            (self.next_route - 1) % self.routes.len()
        });
        let route = self.routes[r].clone();
        let mut rng = self.rng(index, 1);
        let cruise_ms = rng.range(30.0, 46.0) / 3.6;
        let rated_load_t = (rng.range(25.0, 36.0) * 2.0).round() / 2.0;
        let phase_s = rng.below(self.config.interval_s.max(1) as usize) as u32;
        let wait_secs = rng.below(900) as u32;
        let first = self.config.start_ms() + 1000 * i64::from(wait_secs);
        let trips = schedule(
            &route,
            cruise_ms,
            first,
            self.config.end_ms(),
            NIGHT_MARGIN_MS,
            self.strength.min_dwell_secs,
            &mut rng,
        );
        let hauls = role != Role::Unpermitted;
        let trips = trips
            .into_iter()
            .map(|trip| {
                let load_t = if hauls {
                    rated_load_t - rng.range(4.0, 10.0)
                } else {
                    0.0
                };
                TripPlan {
                    trip,
                    load_t,
                    overload: false,
                    wrong: None,
                    fwd: Leg::Plain,
                    back: Leg::Plain,
                }
            })
            .collect();
        let mut cast = Cast {
            role,
            route,
            cruise_ms,
            rated_load_t,
            phase_s,
            wait_secs,
            trips,
        };
        match role {
            Role::Honest => self.honest_extras(index, &mut cast),
            Role::DeadTerminal => {
                let half = cast.trips.len() / 2;
                if let Some(tp) = cast.trips.get_mut(half) {
                    tp.fwd = Leg::Silence {
                        at_s: 0.4 * cast.route.path.length(),
                        for_good: true,
                    };
                }
            }
            _ => {}
        }
        self.cast.push(cast);
        index
    }

    /// One trip-level injection: on the least busy cheat with a free trip whose route
    /// allows it, else on a new cheat on the next route that does.
    fn inject(&mut self, code: C) -> Result<(), String> {
        let mut cheats: Vec<usize> = (0..self.cast.len())
            .filter(|&i| self.cast[i].role == Role::Cheat)
            .collect();
        cheats.sort_by_key(|&i| {
            (
                self.cast[i].trips.iter().filter(|t| !t.is_clean()).count(),
                i,
            )
        });
        for i in cheats {
            if self.try_inject(i, code) {
                return Ok(());
            }
        }
        for k in 0..self.routes.len() {
            let r = (self.next_route + k) % self.routes.len();
            if self.spot(code, r, self.cast.len()).is_some() {
                self.next_route = r + 1;
                let i = self.add(Role::Cheat, Some(r));
                if self.try_inject(i, code) {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "no route of the city has room for {code} within the simulated hours"
        ))
    }

    /// Puts the injection on the first free trip of truck `i` that still lets every
    /// scripted trip end before the night does.
    fn try_inject(&mut self, i: usize, code: C) -> bool {
        let r = self
            .routes
            .iter()
            .position(|r| r.idx == self.cast[i].route.idx)
            .unwrap_or_default();
        let back_leg = matches!(code, C::CoverOpen | C::TrackGap);
        let (leg, wrong) = match code {
            C::WrongDisposalSite => {
                match inject::wrong_route(&self.routes[r], self.routes, self.fences) {
                    Some(other) => (Leg::Plain, Some(other.clone())),
                    None => return false,
                }
            }
            _ => match self.spot(code, r, i) {
                Some(leg) => (leg, None),
                None => return false,
            },
        };
        let over =
            self.cast[i].rated_load_t + Rng::stream(self.config.seed, i as u64, 7).range(5.0, 9.0);
        let end_limit = self.config.end_ms() - NIGHT_MARGIN_MS;
        for t in 0..self.cast[i].trips.len() {
            let tp = &self.cast[i].trips[t];
            let free = tp.wrong.is_none()
                && !tp.overload
                && if code == C::WrongDisposalSite {
                    tp.is_clean()
                } else if back_leg {
                    tp.back.is_plain()
                } else {
                    tp.fwd.is_plain()
                };
            if !free {
                continue;
            }
            let mut trips = self.cast[i].trips.clone();
            let tp = &mut trips[t];
            match code {
                C::Overload => {
                    tp.overload = true;
                    tp.load_t = over;
                }
                C::WrongDisposalSite => tp.wrong = wrong.clone(),
                _ if back_leg => tp.back = leg.clone(),
                _ => tp.fwd = leg.clone(),
            }
            let c = &self.cast[i];
            if super::plan::retime(&mut trips, &c.route, c.cruise_ms, &self.strength, end_limit)
                .is_ok()
            {
                self.cast[i].trips = trips;
                return true;
            }
        }
        false
    }

    /// Where on route `r` the code can be injected, as the leg that does it.
    fn spot(&self, code: C, r: usize, truck: usize) -> Option<Leg> {
        let route = &self.routes[r];
        let len = route.path.length();
        let mut rng = self.rng(truck, 2 + code.index() as u64);
        let st = &self.strength;
        match code {
            C::Speeding => {
                let metres = f64::from(st.speeding_secs) * (60.0 + st.speeding_over_kmh) / 3.6;
                inject::speeding_at(route, metres, &mut rng).map(|at_s| Leg::Speeding { at_s })
            }
            C::RouteDeviation => {
                inject::deviation(route, self.fences, st.deviation_hold_m, &mut rng).map(
                    |(from_s, to_s, lateral_m)| Leg::Deviation {
                        from_s,
                        to_s,
                        lateral_m,
                    },
                )
            }
            C::RestrictedZone => {
                inject::detour(route, self.fences, self.config.rules.speed_default_kmh)
                    .map(Leg::Detour)
            }
            C::IllegalDumping => {
                inject::dump_at(route, self.fences, &mut rng).map(|at_s| Leg::Dump { at_s })
            }
            C::WrongDisposalSite => {
                inject::wrong_route(route, self.routes, self.fences).map(|_| Leg::Plain)
            }
            C::Overload => Some(Leg::Plain),
            C::CoverOpen => Some(Leg::CoverOpen { at_s: 0.5 * len }),
            C::TrackGap => Some(Leg::Silence {
                at_s: 0.4 * len,
                for_good: false,
            }),
            C::NoPermit | C::OutOfHours => None,
        }
    }

    /// Honest variety: legs that keep to one side of the corridor, pass a restricted
    /// zone as close as the corridor allows, or stop at the roadside for a while.
    fn honest_extras(&self, index: usize, cast: &mut Cast) {
        let mut rng = self.rng(index, 20);
        let margin = (2.5 * self.config.sigma_m).max(10.0) + 5.0;
        let near = inject::near_zone(&cast.route, self.fences, margin);
        let len = cast.route.path.length();
        let mut parks = 0;
        for tp in &mut cast.trips {
            for fwd in [true, false] {
                let roll = rng.unit();
                let leg = if roll < 0.25 {
                    inject::brush(&cast.route, self.fences, margin, &mut rng).map(
                        |(from_s, to_s, lateral_m)| Leg::Brush {
                            from_s,
                            to_s,
                            lateral_m,
                        },
                    )
                } else if roll < 0.45 {
                    near.map(|(from_s, to_s, lateral_m)| Leg::Brush {
                        from_s,
                        to_s,
                        lateral_m,
                    })
                } else if roll < 0.6 && parks < 2 {
                    parks += 1;
                    Some(Leg::Park {
                        at_s: rng.range(0.3, 0.7) * len,
                        secs: 600 + rng.below(600) as u32,
                    })
                } else {
                    None
                };
                let slot = if fwd { &mut tp.fwd } else { &mut tp.back };
                *slot = leg.unwrap_or(Leg::Plain);
            }
        }
    }
}

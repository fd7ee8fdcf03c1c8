//! One simulated truck: its script (drives and stops), its true state second by
//! second, its terminal (reporting interval, sleep when parked, silence, noise), and
//! the record of the truth.
//!
//! Time is simulated: [`Truck::advance_to`] runs the truck one second at a time up to
//! a moment, [`Truck::report`] is what its terminal sends then (if anything). The
//! fleet calls both in time order, so fixes come out as a real fleet sends them.

use std::collections::VecDeque;

use chrono::{DateTime, FixedOffset, SecondsFormat};

use super::drive::Drive;
use super::noise::{Rng, SensorNoise};
use super::oracle::{Codes, Duty, Oracle, TrueState};
use super::truth::{Recorder, TruthEntry};
use crate::fix::DeviceId;
use crate::geofence::PlanePoint;
use crate::violation::ViolationCode;

/// A parked terminal with the ignition off reports this often (a JT/T 808 terminal's
/// sleep interval): silence after a STANDING fix is not a track gap.
pub const SLEEP_REPORT_MS: i64 = 600_000;

/// What a truck does while standing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dwell {
    /// Being loaded up to `to_t` tonnes over the first 70% of the stop.
    Load { to_t: f64 },
    /// Tipper up from 25% to 60% of the stop, the load going to nothing: at its own
    /// disposal site that is the job; elsewhere the step's watch names the violation.
    Unload,
    /// Standing (ignition as the step says).
    Park,
}

/// A moment on a drive when something starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    CoverOpen {
        at_s: f64,
        secs: u32,
    },
    /// The terminal stops reporting, for `secs` or (None) for good.
    Silence {
        at_s: f64,
        secs: Option<u32>,
    },
}

#[derive(Debug, Clone)]
pub enum Action {
    Drive(Drive),
    Dwell { secs: u32, what: Dwell, acc: bool },
}

/// One step of a truck's script, with the codes its truth is watched for.
#[derive(Debug, Clone)]
pub struct Step {
    pub action: Action,
    pub watch: Codes,
    pub note: &'static str,
    pub trigger: Option<Trigger>,
}

impl Step {
    pub fn drive(drive: Drive) -> Step {
        Step {
            action: Action::Drive(drive),
            watch: Codes::NONE,
            note: "",
            trigger: None,
        }
    }

    pub fn dwell(secs: u32, what: Dwell, acc: bool) -> Step {
        Step {
            action: Action::Dwell { secs, what, acc },
            watch: Codes::NONE,
            note: "",
            trigger: None,
        }
    }

    pub fn watching(mut self, codes: &[ViolationCode], note: &'static str) -> Step {
        self.watch = self.watch.with(Codes::of(codes));
        self.note = note;
        self
    }
}

/// The identity of a truck and its terminal.
#[derive(Debug, Clone)]
pub struct Identity {
    pub index: usize,
    pub plate: String,
    pub device: DeviceId,
    pub interval_ms: i64,
    /// Offset of this terminal's reports within the interval.
    pub phase_ms: i64,
    pub noise: SensorNoise,
    pub rng: Rng,
    /// The offset fix times are written in (the city's).
    pub offset: FixedOffset,
}

/// One fix as the terminal sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimFix {
    pub truck: usize,
    pub ts_ms: i64,
    pub json: String,
}

pub struct Truck {
    pub id: Identity,
    duty: Duty,
    /// Codes watched all night (a truck without a valid permit, one outside its window).
    always: Codes,
    always_note: &'static str,
    steps: VecDeque<Step>,
    elapsed_s: u32,
    dwell_from_t: f64,
    t_ms: i64,
    p: PlanePoint,
    heading: f64,
    speed_ms: f64,
    load_t: f64,
    tipper_up: bool,
    acc: bool,
    cover_open_until: i64,
    silent_until: i64,
    acc_off_since: Option<i64>,
    next_sleep_fix: i64,
    last_fix_ms: Option<i64>,
    silence_from: Option<i64>,
    oracle: Oracle,
    recorder: Recorder,
    judged: Vec<(ViolationCode, bool)>,
}

impl Truck {
    pub fn new(id: Identity, duty: Duty, steps: Vec<Step>, start_ms: i64, at: PlanePoint) -> Truck {
        Truck {
            id,
            duty,
            always: Codes::NONE,
            always_note: "",
            steps: steps.into(),
            elapsed_s: 0,
            dwell_from_t: 0.0,
            t_ms: start_ms,
            p: at,
            heading: 0.0,
            speed_ms: 0.0,
            load_t: 0.0,
            tipper_up: false,
            acc: false,
            cover_open_until: i64::MIN,
            silent_until: i64::MIN,
            acc_off_since: Some(start_ms),
            next_sleep_fix: start_ms,
            last_fix_ms: None,
            silence_from: None,
            oracle: Oracle::default(),
            recorder: Recorder::default(),
            judged: Vec::new(),
        }
    }

    /// Watch `codes` for the whole run (truck-level injections).
    pub fn watch_always(mut self, codes: &[ViolationCode], note: &'static str) -> Truck {
        self.always = self.always.with(Codes::of(codes));
        self.always_note = note;
        self
    }

    pub fn advance_to(&mut self, t_ms: i64) {
        while self.t_ms < t_ms {
            self.second();
        }
    }

    fn second(&mut self) {
        self.t_ms += 1000;
        let before = self.p;
        let (watch, note) = match self.steps.front_mut() {
            None => {
                self.speed_ms = 0.0;
                self.acc = false;
                (Codes::NONE, "")
            }
            Some(step) => {
                let (watch, note) = (step.watch, step.note);
                let finished = match &mut step.action {
                    Action::Drive(d) => {
                        let done = d.tick();
                        self.p = d.position();
                        self.speed_ms = d.speed_ms();
                        self.acc = true;
                        self.tipper_up = false;
                        if let Some(trigger) = step.trigger.filter(|t| d.passed(trigger_at(t))) {
                            step.trigger = None;
                            match trigger {
                                Trigger::CoverOpen { secs, .. } => {
                                    self.cover_open_until = self.t_ms + i64::from(secs) * 1000
                                }
                                Trigger::Silence { secs, .. } => {
                                    self.silent_until =
                                        secs.map_or(i64::MAX, |s| self.t_ms + i64::from(s) * 1000)
                                }
                            }
                        }
                        done
                    }
                    Action::Dwell { secs, what, acc } => {
                        self.speed_ms = 0.0;
                        self.acc = *acc;
                        if self.elapsed_s == 0 {
                            self.dwell_from_t = self.load_t;
                        }
                        self.elapsed_s += 1;
                        let f = f64::from(self.elapsed_s) / f64::from((*secs).max(1));
                        match *what {
                            Dwell::Load { to_t } => {
                                self.load_t = self.dwell_from_t
                                    + (to_t - self.dwell_from_t) * (f / 0.7).min(1.0)
                            }
                            Dwell::Unload => {
                                self.tipper_up = (0.25..0.6).contains(&f);
                                self.load_t =
                                    self.dwell_from_t * (1.0 - ((f - 0.25) / 0.3).clamp(0.0, 1.0));
                            }
                            Dwell::Park => {}
                        }
                        self.elapsed_s >= *secs
                    }
                };
                if finished {
                    self.steps.pop_front();
                    self.elapsed_s = 0;
                    self.tipper_up = false;
                }
                (watch, note)
            }
        };
        if self.p.distance(before) > 0.3 {
            self.heading = (self.p.x - before.x)
                .atan2(self.p.y - before.y)
                .to_degrees()
                .rem_euclid(360.0);
        }
        if self.acc {
            self.acc_off_since = None;
        } else if self.acc_off_since.is_none() {
            self.acc_off_since = Some(self.t_ms);
            self.next_sleep_fix = self.t_ms + 2 * self.id.interval_ms;
        }
        self.record_truth(watch, note);
    }

    fn record_truth(&mut self, step_watch: Codes, note: &'static str) {
        let watch = step_watch.with(self.always);
        let state = TrueState {
            t_ms: self.t_ms,
            p: self.p,
            speed_kmh: self.speed_ms * 3.6,
            tipper_up: self.tipper_up,
            cover_open: self.t_ms < self.cover_open_until,
            load_t: self.load_t,
        };
        self.oracle
            .judge(&self.duty, watch, &state, &mut self.judged);
        for code in ViolationCode::ALL {
            let active = self.judged.iter().any(|&(c, a)| c == code && a);
            let note = if self.always.has(code) && !step_watch.has(code) {
                self.always_note
            } else {
                note
            };
            self.recorder.observe(code, active, self.t_ms, note);
        }
    }

    /// What the terminal sends at the current moment, if anything.
    pub fn report(&mut self) -> Option<SimFix> {
        let t = self.t_ms;
        if t < self.silent_until {
            if self.silence_from.is_none() {
                self.silence_from = Some(self.last_fix_ms.unwrap_or(t));
            }
            return None;
        }
        if self.acc_off_since.is_some() {
            if t < self.next_sleep_fix {
                return None;
            }
            self.next_sleep_fix = t + SLEEP_REPORT_MS.max(self.id.interval_ms);
        }
        if let Some(from) = self.silence_from.take() {
            self.recorder.push(
                ViolationCode::TrackGap,
                from,
                t,
                "terminal silent while driving",
            );
        }
        self.last_fix_ms = Some(t);
        Some(SimFix {
            truck: self.id.index,
            ts_ms: t,
            json: self.fix_json(t),
        })
    }

    fn fix_json(&mut self, t: i64) -> String {
        let id = &mut self.id;
        let seen = id.noise.position(&mut id.rng, self.p);
        let (lat, lon) = self.duty.fences.unproject(seen);
        let speed = id.noise.speed_kmh(&mut id.rng, self.speed_ms * 3.6);
        let heading = id.noise.heading_deg(&mut id.rng, self.heading);
        let load = id.noise.load_t(&mut id.rng, self.load_t);
        let ts = DateTime::from_timestamp_millis(t)
            .map(|d| {
                d.with_timezone(&id.offset)
                    .to_rfc3339_opts(SecondsFormat::Secs, false)
            })
            .unwrap_or_default();
        format!(
            r#"{{"device_id":"{}","ts":"{}","lat":{:.6},"lon":{:.6},"speed_kmh":{:.1},"heading":{:.0},"acc":{},"tipper_up":{},"cover_closed":{},"load_t":{:.1}}}"#,
            id.device,
            ts,
            lat,
            lon,
            speed,
            heading.min(359.0),
            self.acc,
            self.tipper_up,
            t >= self.cover_open_until,
            load
        )
    }

    /// The truth of this truck's night, closed at `end_ms`.
    pub fn finish(mut self, end_ms: i64) -> Vec<TruthEntry> {
        if let Some(from) = self.silence_from.take() {
            self.recorder.push(
                ViolationCode::TrackGap,
                from,
                end_ms,
                "terminal went silent for good",
            );
        }
        let (plate, device) = (self.id.plate.clone(), self.id.device.to_string());
        self.recorder
            .finish()
            .into_iter()
            .map(|(code, start_ms, end_ms, note)| TruthEntry {
                plate: plate.clone(),
                device_id: device.clone(),
                code,
                start_ms,
                end_ms,
                note,
            })
            .collect()
    }
}

fn trigger_at(t: &Trigger) -> f64 {
    match *t {
        Trigger::CoverOpen { at_s, .. } | Trigger::Silence { at_s, .. } => at_s,
    }
}

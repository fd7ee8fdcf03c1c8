//! What one fix looks like to the rules, worked out once per fix and shared by all of
//! them: local time, the fences containing it, which of the vehicle's permits apply,
//! and how it relates to the previous fix.
//!
//! Fence identity: a permit names fences by id, and a reload may renumber them, so no
//! [`FenceIdx`] is kept across fixes. Instead the fences that `containing` returns
//! (usually 0-3) have their ids compared with the permit's strings — a few short
//! `memcmp`s, no hashing — and `FenceSet::get` is only called for the permit's routes
//! when a route distance is needed (off-corridor fixes, an open deviation).

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::fix::Fix;
use crate::geofence::{FenceIdx, FenceKind, FenceSet, PlanePoint};
use crate::permit::Permit;
use crate::violation::ViolationCode;

use super::event::{RuleEvent, VehicleContext};
use super::state::LastFix;
use super::RulesConfig;
use crate::violation::Violation;

/// The previous fix, with its point in the current fence set's plane.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prev {
    pub ts_ms: i64,
    pub p: PlanePoint,
    pub moving: bool,
    pub load_t: Option<f64>,
    pub unloading_allowed: bool,
}

pub(crate) struct Observation<'a> {
    pub fix: &'a Fix,
    pub ctx: &'a VehicleContext,
    pub set: &'a FenceSet,
    pub p: PlanePoint,
    /// City-local time of the fix (windows, schedules, permit dates).
    pub local: NaiveDateTime,
    pub moving: bool,
    /// Every fence containing the fix (see `FenceSet::containing`).
    pub inside: &'a [FenceIdx],
    pub prev: Option<Prev>,
    /// There is a previous fix, at most `gap_silence_s` earlier: runs may go on.
    pub continuous: bool,
    /// The implied speed from the previous fix is impossible (a TRACK_GAP jump): the
    /// straight line between the two says nothing about where the truck went.
    pub jump: bool,
    /// The first of the vehicle's permits valid today: the one a violation names.
    pub primary: Option<&'a Permit>,
    /// Inside a source or disposal site of any of its permits (valid or not).
    pub in_own_site: bool,
    /// Inside a source or disposal site of a permit valid today.
    pub in_valid_site: bool,
    /// Inside the corridor of a route of a permit valid today.
    pub in_valid_corridor: bool,
    /// Some permit valid today allows this time of day.
    pub in_window: bool,
}

impl<'a> Observation<'a> {
    pub fn new(
        config: &RulesConfig,
        local: NaiveDateTime,
        last: Option<&LastFix>,
        ctx: &'a VehicleContext,
        set: &'a FenceSet,
        fix: &'a Fix,
        inside: &'a [FenceIdx],
    ) -> Observation<'a> {
        let p = set.project(fix.lat, fix.lon);
        let date = local.date();
        let time = local.time();
        let mut obs = Observation {
            fix,
            ctx,
            set,
            p,
            local,
            moving: fix.speed_kmh >= config.moving_kmh,
            inside,
            prev: None,
            continuous: false,
            jump: false,
            primary: ctx.permits.iter().map(|p| &**p).find(|p| p.valid_on(date)),
            in_own_site: false,
            in_valid_site: false,
            in_valid_corridor: false,
            in_window: false,
        };
        obs.in_window = obs.valid_permits().any(|p| p.in_window(time));
        for &idx in inside {
            let fence = set.fence(idx);
            match fence.kind {
                FenceKind::SourceSite | FenceKind::DisposalSite => {
                    for permit in &ctx.permits {
                        if permit.source_site == fence.id || permit.disposal_site == fence.id {
                            obs.in_own_site = true;
                            obs.in_valid_site |= permit.valid_on(date);
                        }
                    }
                }
                FenceKind::Route => {
                    obs.in_valid_corridor |=
                        obs.valid_permits().any(|p| p.routes.contains(&fence.id));
                }
                FenceKind::RestrictedZone | FenceKind::SpeedZone => {}
            }
        }
        if let Some(last) = last {
            let prev_p = if last.plane_origin == set.projection().origin() {
                last.plane
            } else {
                set.project(last.lat, last.lon) // the plane moved with a reload
            };
            let distance_m = prev_p.distance(p);
            let dt_ms = fix.ts_ms - last.ts_ms;
            obs.continuous = dt_ms <= super::episode::secs_to_ms(config.gap_silence_s);
            let moved_m = (distance_m - config.gap_jump_tolerance_m).max(0.0);
            obs.jump = moved_m / (dt_ms as f64 / 1000.0) * 3.6 > config.gap_jump_kmh;
            obs.prev = Some(Prev {
                ts_ms: last.ts_ms,
                p: prev_p,
                moving: last.moving,
                load_t: last.load_t,
                unloading_allowed: last.unloading_allowed,
            });
        }
        obs
    }

    pub fn date(&self) -> NaiveDate {
        self.local.date()
    }

    pub fn ts_ms(&self) -> i64 {
        self.fix.ts_ms
    }

    /// The vehicle's permits that are active and valid on the fix's local date.
    pub fn valid_permits(&self) -> impl Iterator<Item = &'a Permit> + use<'a> {
        let date = self.local.date();
        self.ctx
            .permits
            .iter()
            .map(|p| &**p)
            .filter(move |p| p.valid_on(date))
    }

    /// The fences of one kind containing the fix.
    pub fn inside_of(&self, kind: FenceKind) -> impl Iterator<Item = FenceIdx> + '_ {
        self.inside
            .iter()
            .copied()
            .filter(move |&i| self.set.fence(i).kind == kind)
    }

    /// A violation raised at this fix.
    pub fn violation(
        &self,
        code: ViolationCode,
        started_ms: i64,
        measured: f64,
        permit_id: Option<&str>,
        fences: Vec<String>,
    ) -> Violation {
        Violation {
            code,
            plate: self.ctx.plate.clone(),
            device_id: self.ctx.device_id,
            firm_id: self.ctx.firm_id.clone(),
            permit_id: permit_id.map(str::to_string),
            started_ms,
            ended_ms: None,
            lat: self.fix.lat,
            lon: self.fix.lon,
            measured,
            fences,
            uncertainty: None,
        }
    }

    pub fn ended(&self, code: ViolationCode, started_ms: i64, ended_ms: i64) -> RuleEvent {
        RuleEvent::Ended {
            code,
            device_id: self.ctx.device_id,
            started_ms,
            ended_ms,
        }
    }

    pub fn primary_id(&self) -> Option<&'a str> {
        self.primary.map(|p| p.id.as_str())
    }

    pub fn fence_id(&self, idx: FenceIdx) -> String {
        self.set.fence(idx).id.clone()
    }
}

/// City-local wall time of an instant (windows, schedules and dates are local).
pub(crate) fn local_time(tz: chrono_tz::Tz, ts_ms: i64) -> NaiveDateTime {
    DateTime::from_timestamp_millis(ts_ms)
        .map(|utc| utc.with_timezone(&tz).naive_local())
        .unwrap_or_default()
}

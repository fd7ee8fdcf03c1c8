//! The per-vehicle violation state machine: every code of the contract, on event time.
//!
//! The pipeline calls [`Rules::on_fix`] with each fix of a vehicle in arrival order and
//! [`Rules::on_watermark`] when the fleet watermark (the latest fix time seen across the
//! fleet) moves; both append [`RuleEvent`]s. Time is only ever the fixes' own time, so a
//! replay, an accelerated simulation and live traffic raise the same violations.
//!
//! - [`config`](RulesConfig): thresholds; `episode.rs`: raise once, end, quiet period;
//! - `state.rs`: [`VehicleState`], fixed size, no heap; `observe.rs`: what a fix means
//!   (local time, fences containing it, the permits that apply), worked out once;
//! - rules: `movement.rs` (NO_PERMIT, OUT_OF_HOURS, ROUTE_DEVIATION, SPEEDING,
//!   COVER_OPEN), `zones.rs` (RESTRICTED_ZONE), `unloading.rs` (ILLEGAL_DUMPING,
//!   WRONG_DISPOSAL_SITE), `load.rs` (OVERLOAD), `gap.rs` (TRACK_GAP).
//!
//! Sharing: `Rules` is immutable (`Send + Sync`), so one `Arc<Rules>` serves every
//! shard task. The per-fix fence queries write into a per-thread scratch buffer, so the
//! common path allocates nothing; only raising a violation does (plate, ids).

mod config;
mod episode;
mod event;
mod gap;
mod load;
mod movement;
mod noise;
mod observe;
mod state;
mod unloading;
mod zones;

use std::cell::RefCell;

use chrono_tz::Tz;

use crate::fix::Fix;
use crate::geofence::{FenceIdx, FenceSet};
use crate::violation::ViolationCode;

/// At its old path for code written against it; it lives in [`crate::violation`].
pub use crate::violation::Violation;
pub use config::RulesConfig;
pub use event::{RuleEvent, VehicleContext};
pub use gap::span_covered;
pub use state::VehicleState;

use episode::{secs_to_ms, Episode, Outcome, Verdict};
use observe::{local_time, Observation};
use state::LastFix;

/// The rule engine: thresholds and the city's time zone. Stateless per call; the
/// state lives in each vehicle's [`VehicleState`].
#[derive(Debug, Clone)]
pub struct Rules {
    config: RulesConfig,
    tz: Tz,
    quiet_ms: i64,
}

/// Per-thread buffers for the fence queries (`containing`, `areas_crossed`), so that
/// `on_fix` can stay `&self` and still allocate nothing once warm.
#[derive(Default)]
struct Scratch {
    inside: Vec<FenceIdx>,
    crossed: Vec<FenceIdx>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        inside: Vec::with_capacity(32),
        crossed: Vec::with_capacity(16),
    });
}

impl Rules {
    pub fn new(config: RulesConfig, tz: Tz) -> Rules {
        let quiet_ms = secs_to_ms(config.quiet_period_s);
        Rules {
            config,
            tz,
            quiet_ms,
        }
    }

    pub fn config(&self) -> &RulesConfig {
        &self.config
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// One fix of this vehicle, in arrival order. A fix with `ts <= ` the last processed
    /// time of this vehicle (a duplicate or a late fix) changes nothing and returns
    /// nothing: the contract stores late fixes but never rewinds per-vehicle state.
    pub fn on_fix(
        &self,
        state: &mut VehicleState,
        ctx: &VehicleContext,
        fences: &FenceSet,
        fix: &Fix,
        out: &mut Vec<RuleEvent>,
    ) {
        if state.last.is_some_and(|l| fix.ts_ms <= l.ts_ms) {
            return;
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                let Scratch { inside, crossed } = &mut *scratch;
                self.run(state, ctx, fences, fix, inside, crossed, out);
            }
            // Only reachable if a caller re-entered on_fix from inside on_fix.
            Err(_) => self.run(
                state,
                ctx,
                fences,
                fix,
                &mut Vec::new(),
                &mut Vec::new(),
                out,
            ),
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        state: &mut VehicleState,
        ctx: &VehicleContext,
        set: &FenceSet,
        fix: &Fix,
        inside: &mut Vec<FenceIdx>,
        crossed: &mut Vec<FenceIdx>,
        out: &mut Vec<RuleEvent>,
    ) {
        let local = local_time(self.tz, fix.ts_ms);
        set.containing(set.project(fix.lat, fix.lon), inside);
        let obs = Observation::new(
            &self.config,
            local,
            state.last.as_ref(),
            ctx,
            set,
            fix,
            inside,
        );
        if !obs.continuous {
            state.episodes.iter_mut().for_each(Episode::break_run);
        }
        state
            .noise
            .observe(&self.config, obs.p, fix, obs.continuous);
        gap::check(self, state, &obs, out);
        movement::check_no_permit(self, state, &obs, out);
        movement::check_out_of_hours(self, state, &obs, out);
        movement::check_route_deviation(self, state, &obs, out);
        movement::check_speeding(self, state, &obs, out);
        movement::check_cover_open(self, state, &obs, out);
        zones::check_restricted(self, state, &obs, crossed, out);
        let unloading_allowed = unloading::check(self, state, &obs, out);
        load::check_overload(self, state, &obs, out);

        let load_t = fix
            .load_t
            .or(obs.prev.filter(|_| obs.continuous).and_then(|p| p.load_t));
        state.last = Some(LastFix {
            ts_ms: fix.ts_ms,
            lat: fix.lat,
            lon: fix.lon,
            moving: obs.moving,
            plane: obs.p,
            plane_origin: set.projection().origin(),
            load_t,
            unloading_allowed,
        });
    }

    /// The fleet watermark (latest fix time seen across the fleet) moved: raise
    /// TRACK_GAP for a vehicle silent for more than `gap_silence_s` after a moving fix.
    /// The episode starts at the last fix and ends when the next fix arrives.
    pub fn on_watermark(
        &self,
        state: &mut VehicleState,
        ctx: &VehicleContext,
        watermark_ms: i64,
        out: &mut Vec<RuleEvent>,
    ) {
        gap::check_silence(self, state, ctx, watermark_ms, out);
    }

    /// Steps one code's episode with the fix's verdict and emits what follows:
    /// `raise` builds the violation (only called when raising, the one place that
    /// allocates), an ended episode becomes [`RuleEvent::Ended`].
    pub(crate) fn settle(
        &self,
        state: &mut VehicleState,
        obs: &Observation,
        code: ViolationCode,
        verdict: Verdict,
        out: &mut Vec<RuleEvent>,
        raise: impl FnOnce(&Episode) -> Violation,
    ) {
        let episode = state.episode(code);
        match episode.step(obs.ts_ms(), verdict, self.quiet_ms) {
            Outcome::Nothing => {}
            Outcome::Raise => out.push(RuleEvent::Raised(raise(episode))),
            Outcome::Ended {
                started_ms,
                ended_ms,
            } => out.push(obs.ended(code, started_ms, ended_ms)),
        }
    }
}

//! One shard: the rule state of the vehicles whose device ids hash to it.
//!
//! Terminal clocks are not trusted. A registered vehicle's fix is evaluated
//! when it is plausible: stamped no more than the skew ahead of the fleet
//! clock or of the vehicle's own last evaluated fix, and of the wall clock.
//! Otherwise it is *held* (it is stored all the same; ingest writes every
//! fix) and its vehicle's next fixes decide:
//! - a next fix follows a held one within the skew (and not past the wall
//!   clock), or the fleet clock has caught up with the held one: the
//!   vehicle's time really moved on (a truck back after a long stop while
//!   the rest of the fleet is quiet), so the held fix is evaluated, one fix
//!   late, and then the next one;
//! - a next fix is plausible itself: the held ones were glitches; they are
//!   dropped from the rules and counted (`muckwatch_fixes_clock_skew_total`)
//!   and the next fix is evaluated, so a terminal that glitched once goes
//!   on being evaluated on its next correct fix;
//! - else it is held too, beside the latest earlier one: of three fixes,
//!   the two that agree tell a glitch from a real jump (a lone truck whose
//!   second fix is a day ahead keeps its first and third).
//!
//! The very first fixes, before any vehicle has been evaluated, have
//! nothing to be judged by: they are held until their vehicle's next fix.
//!
//! A held fix the fleet clock catches up with is also evaluated at the next
//! scan: it was early, not wrong. Only evaluated fixes move the fleet clock.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::clock::{FleetClock, ShardTop};
use super::ShardInput;
use crate::fix::{DeviceId, Fix};
use crate::geofence::{FenceHandle, FenceSet};
use crate::live::{LiveFleet, LivePart, LiveVehicle, PUBLISH_EVERY_MS};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::rules::{RuleEvent, Rules, VehicleContext, VehicleState};

/// How far the fleet clock must move before silent vehicles are looked for.
const SCAN_STEP_MS: i64 = 10_000;

/// One vehicle as the shard sees it: its rule state and the fixes held
/// back (the two latest to arrive, oldest first).
#[derive(Default)]
struct Vehicle {
    rules: VehicleState,
    held: [Option<Fix>; 2],
}

pub struct Shard {
    index: usize,
    rules: Arc<Rules>,
    registry: Arc<Registry>,
    fences: FenceHandle,
    /// The set this shard uses, swapped only after a reload: one shared
    /// reference count bumped per reload, not per fix.
    fence_set: Arc<FenceSet>,
    clock: Arc<FleetClock>,
    top: ShardTop,
    metrics: Arc<Metrics>,
    events: mpsc::Sender<RuleEvent>,
    states: HashMap<DeviceId, Vehicle>,
    /// The live map's view of this shard's vehicles, published to `live`
    /// when changed, at most every [`PUBLISH_EVERY_MS`].
    live_part: LivePart,
    live: Arc<LiveFleet>,
    live_dirty: bool,
    published_at: std::time::Instant,
    scanned_at: i64,
    /// Fixes are waiting in this shard's queue: it lags the fleet clock
    /// (other shards may be further on), so silence is judged only up to
    /// its own latest fix until it has caught up.
    backlog: bool,
    /// Rebuilding state from stored fixes: nothing new is raised.
    warming: bool,
    out: Vec<RuleEvent>,
}

/// What a shard shares with the others and the sink.
pub struct Shared {
    pub rules: Arc<Rules>,
    pub registry: Arc<Registry>,
    pub fences: FenceHandle,
    pub clock: Arc<FleetClock>,
    pub metrics: Arc<Metrics>,
    pub events: mpsc::Sender<RuleEvent>,
    pub live: Arc<LiveFleet>,
}

impl Shard {
    pub fn new(index: usize, shared: Shared) -> Shard {
        Shard {
            index,
            rules: shared.rules,
            registry: shared.registry,
            fence_set: shared.fences.load(),
            fences: shared.fences,
            clock: shared.clock,
            top: ShardTop::default(),
            metrics: shared.metrics,
            events: shared.events,
            states: HashMap::new(),
            live_part: LivePart::default(),
            live: shared.live,
            live_dirty: false,
            published_at: std::time::Instant::now(),
            scanned_at: i64::MIN,
            backlog: false,
            warming: false,
            out: Vec::new(),
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<ShardInput>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                input = rx.recv() => match input {
                    Some(ShardInput { fixes, warm_up }) => {
                        let last = fixes.len().saturating_sub(1);
                        for (i, fix) in fixes.into_iter().enumerate() {
                            self.backlog = i < last || !rx.is_empty();
                            self.on_fix(fix, warm_up).await
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    self.backlog = !rx.is_empty();
                    self.scan(false).await;
                    self.publish_live(true);
                }
            }
        }
        // The input is closed (shutdown or end of a replay): one last look
        // for vehicles that went silent before the final fleet time.
        self.warming = false;
        self.backlog = false;
        self.scan(true).await;
        self.publish_live(true);
    }

    /// Publishes the live entries if they changed: always when `now`,
    /// else only if the last publication is [`PUBLISH_EVERY_MS`] old (a
    /// busy shard copies its part a few times a second, not per fix).
    fn publish_live(&mut self, now: bool) {
        if !self.live_dirty
            || (!now && self.published_at.elapsed().as_millis() < u128::from(PUBLISH_EVERY_MS))
        {
            return;
        }
        self.live.publish(self.index, self.live_part.clone());
        self.live_dirty = false;
        self.published_at = std::time::Instant::now();
    }

    /// The live map's entry of a registered vehicle: its newest fix by fix
    /// time, whatever the rules make of its clock (as the stored fixes show it).
    fn note_live_fix(&mut self, fix: &Fix) {
        self.live_part
            .vehicles
            .entry(fix.device_id)
            .and_modify(|v| v.on_fix(fix))
            .or_insert_with(|| LiveVehicle::new(*fix));
        let newest = &mut self.live_part.newest_ms;
        *newest = Some(newest.map_or(fix.ts_ms, |n| n.max(fix.ts_ms)));
        self.live_dirty = true;
    }

    async fn on_fix(&mut self, fix: Fix, warm_up: bool) {
        self.warming = warm_up;
        // A device registered to no vehicle raises nothing and moves no clock.
        let Some(ctx) = self.registry.context_of(&fix.device_id) else {
            return;
        };
        self.note_live_fix(&fix);
        self.on_registered_fix(fix, ctx).await;
        self.publish_live(false);
    }

    async fn on_registered_fix(&mut self, fix: Fix, ctx: Arc<VehicleContext>) {
        if !self.fences.is_current(&self.fence_set) {
            self.fence_set = self.fences.load();
        }
        let own = self
            .states
            .entry(fix.device_id)
            .or_default()
            .rules
            .last_fix_ms();
        if !self.warming && own.is_some_and(|o| fix.ts_ms < o) {
            // Older than its vehicle's state (a 补报 backfill, a late delivery):
            // it changes no state, but the sink sees whether it fills a
            // TRACK_GAP raised earlier. Warming up, nothing is news.
            let late = RuleEvent::Late {
                device_id: fix.device_id,
                ts_ms: fix.ts_ms,
            };
            if self.events.send(late).await.is_err() {
                tracing::error!("violation sink stopped; a late fix is not looked at");
            }
        }
        let vehicle = self.states.entry(fix.device_id).or_default();
        let held = std::mem::take(&mut vehicle.held);
        if held.iter().flatten().any(|h| h.ts_ms == fix.ts_ms) {
            vehicle.held = held; // a held fix again (a redelivery)
            return;
        }
        // A held fix this one follows closely (its terminal's time really
        // moved there), or that the fleet clock has caught up with.
        let (skew, wall) = (self.clock.skew_ms(), self.clock.wall_limit_ms());
        let confirmed = held
            .iter()
            .flatten()
            .filter(|h| {
                fix.ts_ms > h.ts_ms
                    && ((fix.ts_ms - h.ts_ms <= skew && fix.ts_ms <= wall)
                        || self.plausible(h, own))
            })
            .max_by_key(|h| h.ts_ms)
            .copied();
        if let Some(h) = confirmed {
            for other in held.iter().flatten().filter(|o| o.ts_ms != h.ts_ms) {
                self.skewed(other);
            }
            self.evaluate(&ctx, &h).await;
            self.evaluate(&ctx, &fix).await;
            return;
        }
        if self.plausible(&fix, own) {
            // its vehicle is back in step: what it held were glitches
            for h in held.iter().flatten() {
                self.skewed(h);
            }
            self.evaluate(&ctx, &fix).await;
            return;
        }
        // Neither: held as well, beside the latest earlier one (of three
        // fixes, the two that agree tell the glitch from a real jump).
        let kept = match held {
            [Some(a), Some(b)] => {
                self.skewed(&a);
                Some(b)
            }
            [a, b] => a.or(b),
        };
        if let Some(v) = self.states.get_mut(&fix.device_id) {
            v.held = [kept, Some(fix)];
        }
    }

    /// Stamped no more than the skew ahead of the wall clock, and of the
    /// fleet clock or the vehicle's own last evaluated fix (`own`). With
    /// neither yet (the first fix this shard sees while no shard has
    /// evaluated one) there is nothing to judge it by: it is held, and its
    /// vehicle's next fix decides, as for any held fix.
    fn plausible(&self, fix: &Fix, own: Option<i64>) -> bool {
        fix.ts_ms <= self.clock.wall_limit_ms()
            && self
                .clock
                .now_ms()
                .max(own)
                .is_some_and(|r| fix.ts_ms <= r.saturating_add(self.clock.skew_ms()))
    }

    /// Runs the rules on a fix that passed the clock checks.
    async fn evaluate(&mut self, ctx: &VehicleContext, fix: &Fix) {
        let own = self
            .states
            .get(&fix.device_id)
            .and_then(|v| v.rules.last_fix_ms());
        if own.is_none_or(|l| fix.ts_ms > l) && self.top.advance(fix.device_id, fix.ts_ms) {
            self.clock.publish(self.index, &self.top);
            // Silence is judged before this fix counts for its own vehicle.
            self.scan(false).await;
        }
        let vehicle = self.states.entry(fix.device_id).or_default();
        self.rules
            .on_fix(&mut vehicle.rules, ctx, &self.fence_set, fix, &mut self.out);
        self.flush().await;
    }

    /// A fix dropped from the rules for its clock (it is stored all the same).
    fn skewed(&self, fix: &Fix) {
        if self.warming {
            return; // counted when it arrived
        }
        self.metrics.fixes_clock_skew.fetch_add(1, Relaxed);
        tracing::debug!(device = %fix.device_id, ts_ms = fix.ts_ms, "fix stamped far ahead of the fleet clock: stored, not evaluated");
    }

    async fn scan(&mut self, force: bool) {
        let Some(mut fleet) = self.clock.now_ms() else {
            return;
        };
        if self.backlog {
            match self.top.latest() {
                Some(own) => fleet = fleet.min(own),
                None => return,
            }
        }
        if !force && fleet.saturating_sub(self.scanned_at) < SCAN_STEP_MS {
            return;
        }
        self.scanned_at = fleet;
        let caught_up = fleet
            .saturating_add(self.clock.skew_ms())
            .min(self.clock.wall_limit_ms());
        // Bounded: a device that left its vehicle leaves its state too.
        let registry = &self.registry;
        self.states.retain(|d, _| registry.is_registered(d));
        let before = self.live_part.vehicles.len();
        self.live_part
            .vehicles
            .retain(|d, _| registry.is_registered(d));
        self.live_dirty |= self.live_part.vehicles.len() != before;
        let mut moved = false;
        let mut dropped = 0;
        for (device, v) in self.states.iter_mut() {
            let Some(ctx) = self.registry.context_of(device) else {
                continue;
            };
            // held fixes the fleet caught up with were early, not wrong
            let mut held = std::mem::take(&mut v.held);
            let mut held_dropped = false;
            held.sort_by_key(|h| h.map(|h| h.ts_ms));
            for h in held.into_iter().flatten() {
                if h.ts_ms <= caught_up {
                    if v.rules.last_fix_ms().is_none_or(|l| h.ts_ms > l) {
                        moved |= self.top.advance(h.device_id, h.ts_ms);
                    }
                    self.rules
                        .on_fix(&mut v.rules, &ctx, &self.fence_set, &h, &mut self.out);
                } else if force {
                    dropped += 1;
                    held_dropped = true;
                } else if v.held[0].is_none() {
                    v.held[0] = Some(h);
                } else {
                    v.held[1] = Some(h);
                }
            }
            // A vehicle with fixes held (stamped past where the fleet clock has
            // got) is not silent: its terminal did report since its last
            // evaluated fix. Under load one ingest path runs ahead of the rest,
            // and a truck parking as the night ends sends its sleep reports
            // (600 s apart) faster than the fleet clock confirms them; taken
            // for glitches, they were dropped and a TRACK_GAP was raised from
            // its last moving fix that no later fix could end or withdraw.
            if v.held.iter().any(Option::is_some) || held_dropped {
                continue;
            }
            self.rules
                .on_watermark(&mut v.rules, &ctx, fleet, &mut self.out);
        }
        if moved {
            self.clock.publish(self.index, &self.top);
        }
        if dropped > 0 && !self.warming {
            self.metrics.fixes_clock_skew.fetch_add(dropped, Relaxed);
        }
        self.flush().await;
    }

    async fn flush(&mut self) {
        for ev in &self.out {
            let (device, ended) = match ev {
                RuleEvent::Raised(v) => (v.device_id, None),
                RuleEvent::Ended {
                    device_id,
                    ended_ms,
                    ..
                } => (*device_id, Some(*ended_ms)),
                // sent straight to the sink; the live map keeps what it shows
                RuleEvent::Late { .. } => continue,
            };
            if let Some(l) = self.live_part.vehicles.get_mut(&device) {
                match ended {
                    None => l.raised(ev.code()),
                    Some(at) => l.ended(ev.code(), at),
                }
                self.live_dirty = true;
            }
        }
        if self.warming {
            // Raised before the restart already; only endings are news.
            self.out.retain(|e| matches!(e, RuleEvent::Ended { .. }));
        }
        for ev in self.out.drain(..) {
            if self.events.send(ev).await.is_err() {
                tracing::error!("violation sink stopped; a rule event is lost");
            }
        }
    }
}

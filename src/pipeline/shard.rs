//! One shard: the rule state of the vehicles whose device ids hash to it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::ShardInput;
use crate::fix::{DeviceId, Fix};
use crate::geofence::{FenceHandle, FenceSet};
use crate::registry::Registry;
use crate::rules::{RuleEvent, Rules, VehicleState};

/// How far the watermark must move before silent vehicles are looked for.
const SCAN_STEP_MS: i64 = 10_000;

pub struct Shard {
    rules: Arc<Rules>,
    registry: Arc<Registry>,
    fences: FenceHandle,
    /// The set this shard uses, swapped only after a reload: one shared
    /// reference count bumped per reload, not per fix.
    fence_set: Arc<FenceSet>,
    watermark: Arc<AtomicI64>,
    events: mpsc::Sender<RuleEvent>,
    states: HashMap<DeviceId, VehicleState>,
    scanned_at: i64,
    /// Rebuilding state from stored fixes: nothing new is raised.
    warming: bool,
    out: Vec<RuleEvent>,
}

impl Shard {
    pub fn new(
        rules: Arc<Rules>,
        registry: Arc<Registry>,
        fences: FenceHandle,
        watermark: Arc<AtomicI64>,
        events: mpsc::Sender<RuleEvent>,
    ) -> Shard {
        Shard {
            rules,
            registry,
            fence_set: fences.load(),
            fences,
            watermark,
            events,
            states: HashMap::new(),
            scanned_at: i64::MIN,
            warming: false,
            out: Vec::new(),
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<ShardInput>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                input = rx.recv() => match input {
                    Some(ShardInput { fix, warm_up }) => self.on_fix(&fix, warm_up).await,
                    None => break,
                },
                _ = tick.tick() => self.scan(false).await,
            }
        }
        // The input is closed (shutdown or end of a replay): one last look
        // for vehicles that went silent before the final watermark.
        self.warming = false;
        self.scan(true).await;
    }

    async fn on_fix(&mut self, fix: &Fix, warm_up: bool) {
        self.warming = warm_up;
        let before = self.watermark.fetch_max(fix.ts_ms, Ordering::Relaxed);
        if fix.ts_ms > before {
            // Silence is judged before this fix counts for its own vehicle.
            self.scan(false).await;
        }
        let Some(ctx) = self.registry.context_of(&fix.device_id) else {
            return;
        };
        if !self.fences.is_current(&self.fence_set) {
            self.fence_set = self.fences.load();
        }
        let state = self.states.entry(fix.device_id).or_default();
        self.rules
            .on_fix(state, &ctx, &self.fence_set, fix, &mut self.out);
        self.flush().await;
    }

    async fn scan(&mut self, force: bool) {
        let wm = self.watermark.load(Ordering::Relaxed);
        if wm == i64::MIN || (!force && wm.saturating_sub(self.scanned_at) < SCAN_STEP_MS) {
            return;
        }
        self.scanned_at = wm;
        for (device, state) in self.states.iter_mut() {
            if let Some(ctx) = self.registry.context_of(device) {
                self.rules.on_watermark(state, &ctx, wm, &mut self.out);
            }
        }
        self.flush().await;
    }

    async fn flush(&mut self) {
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

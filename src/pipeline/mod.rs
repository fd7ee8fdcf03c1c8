//! The detection stage: fixes -> per-vehicle rule state machines ->
//! violations, cases and alerts. Live ingest and `muckwatch replay` both feed
//! fixes through [`Detection`], so both raise exactly the same violations.
//!
//! Vehicles are split over shard tasks by device id; each shard owns its
//! vehicles' state outright, so the hot path takes no lock. The only shared
//! value is the fleet clock (`clock.rs`: how far event time has got, by a
//! measure a few wrong terminal clocks cannot drag), atomics each shard
//! writes its part of; `shard.rs` holds back fixes stamped far ahead.

mod clock;
mod shard;
mod sink;

use std::hash::BuildHasher;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::alerts::{Alert, AlertHub};
use crate::cases::Routing;
use crate::fix::Fix;
use crate::geofence::FenceHandle;
use crate::live::LiveFleet;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::rules::Rules;
use crate::store::Store;

/// Where raised violations go: the store (violation, case, checks), and
/// alerts to SSE listeners and, when connected, the broker.
#[derive(Clone)]
pub struct Outputs {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub routing: Routing,
    pub merge_window_ms: i64,
    /// `rules.gap_silence_s` in ms: the longest interval between fixes that
    /// still counts as a covered track (TRACK_GAP withdrawal by backfill).
    pub gap_silence_ms: i64,
    pub deadlines: crate::cases::Deadlines,
    pub fences: FenceHandle,
    pub tz: chrono_tz::Tz,
    pub hub: AlertHub,
    pub mqtt: Option<mpsc::Sender<Arc<Alert>>>,
    /// Turns true at shutdown: from then on a database that stays away
    /// gets a grace period, not a retry forever.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// When that grace ends: set at the first failure after shutdown began,
    /// one for every violation still to store.
    pub grace_ends: Arc<std::sync::OnceLock<std::time::Instant>>,
}

/// Where fixes enter detection. Cheap to clone; detection ends when every
/// clone is dropped.
#[derive(Clone)]
pub struct DetectionInput {
    shards: Arc<[mpsc::Sender<ShardInput>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl DetectionInput {
    /// Hands a fix to the shard that owns its vehicle; waits while that
    /// shard is busy (back-pressure). False once detection has stopped.
    pub async fn send(&self, fix: Fix) -> bool {
        self.send_all(&[fix]).await
    }

    /// Hands fixes to the shards that own their vehicles, one handoff per
    /// shard for all of its fixes (in their order here): what ingest read
    /// from the broker in one go wakes each shard once, not once a fix.
    /// False once detection has stopped.
    pub async fn send_all(&self, fixes: &[Fix]) -> bool {
        self.route(fixes, false).await
    }

    /// Replays an already handled fix to rebuild state after a restart:
    /// episodes it opens are not raised again (they were before).
    pub async fn warm_up(&self, fix: Fix) -> bool {
        self.route(&[fix], true).await
    }

    async fn route(&self, fixes: &[Fix], warm_up: bool) -> bool {
        let n = self.shards.len();
        let shard_of = |f: &Fix| (self.hasher.hash_one(f.device_id) % n as u64) as usize;
        if let [fix] = fixes {
            let input = ShardInput {
                fixes: vec![*fix],
                warm_up,
            };
            return self.shards[shard_of(fix)].send(input).await.is_ok();
        }
        let mut parts: Vec<Vec<Fix>> = vec![Vec::new(); n];
        for f in fixes {
            parts[shard_of(f)].push(*f);
        }
        let mut open = true;
        for (shard, fixes) in self.shards.iter().zip(parts) {
            if !fixes.is_empty() {
                open &= shard.send(ShardInput { fixes, warm_up }).await.is_ok();
            }
        }
        open
    }
}

/// Fixes for a shard, in order, and whether they only rebuild state.
pub(crate) struct ShardInput {
    fixes: Vec<Fix>,
    warm_up: bool,
}

/// Handoffs a shard's queue holds. One is a fix (warm-up, replay) or a
/// shard's share of what an MQTT connection read in one go: at most about
/// `Decoded::MAX_FIXES` and one message's array, so the queue stays within
/// a few hundred thousand fixes while it rides out a burst.
const SHARD_QUEUE: usize = 256;

/// Rebuilds rule state from the fixes stored in the last `window_ms` of
/// event time (before where the fleet clock stood: measured as it is, so a
/// fix stamped a day ahead does not leave the window empty), for the
/// devices this instance owns, so a restart or a bucket takeover neither
/// forgets open episodes nor raises them twice. `max_skew_ms`: how far past
/// the wall clock a stored fix may be and still count.
pub async fn warm_up(
    store: &Store,
    input: &DetectionInput,
    owns: impl Fn(&crate::fix::DeviceId) -> bool,
    window_ms: i64,
    max_skew_ms: i64,
) -> crate::store::StoreResult<usize> {
    let until_ms = chrono::Utc::now().timestamp_millis() + max_skew_ms;
    let Some(latest) = store.fleet_time_ms(clock::RANK as i64, until_ms).await? else {
        return Ok(0);
    };
    let fixes = store.fixes_since(latest - window_ms, 2_000_000).await?;
    let mut n = 0;
    for fix in fixes.into_iter().filter(|f| owns(&f.device_id)) {
        input.warm_up(fix).await;
        n += 1;
    }
    Ok(n)
}

pub struct Detection {
    shards: Vec<JoinHandle<()>>,
    sink: JoinHandle<Vec<i64>>,
    live: Arc<LiveFleet>,
}

impl Detection {
    pub fn spawn(
        rules: Arc<Rules>,
        registry: Arc<Registry>,
        outputs: Outputs,
        shard_count: usize,
    ) -> (DetectionInput, Detection) {
        let (events_tx, events_rx) = mpsc::channel(10_000);
        let shard_count = shard_count.max(1);
        let skew_ms = rules.config().clock_skew_s.saturating_mul(1000) as i64;
        let clock = Arc::new(clock::FleetClock::new(shard_count, skew_ms));
        let live = Arc::new(LiveFleet::new(shard_count));
        let mut senders = Vec::new();
        let mut shards = Vec::new();
        for index in 0..shard_count {
            let (tx, rx) = mpsc::channel(SHARD_QUEUE);
            senders.push(tx);
            let shard = shard::Shard::new(
                index,
                shard::Shared {
                    rules: rules.clone(),
                    registry: registry.clone(),
                    fences: outputs.fences.clone(),
                    clock: clock.clone(),
                    metrics: outputs.metrics.clone(),
                    events: events_tx.clone(),
                    live: live.clone(),
                },
            );
            shards.push(tokio::spawn(shard.run(rx)));
        }
        drop(events_tx);
        let sink = tokio::spawn(sink::run(events_rx, outputs));
        let input = DetectionInput {
            shards: senders.into(),
            hasher: Default::default(),
        };
        (input, Detection { shards, sink, live })
    }

    /// The live fleet its shards publish (each vehicle's newest fix and
    /// open violations), for the live map.
    pub fn live(&self) -> Arc<LiveFleet> {
        self.live.clone()
    }

    /// Waits until every input clone is gone and everything raised is
    /// stored; returns the ids of the violations raised.
    pub async fn finish(self) -> Vec<i64> {
        for s in self.shards {
            if let Err(e) = s.await {
                tracing::error!(error = %e, "a detection shard failed");
            }
        }
        self.sink.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "the violation sink failed");
            Vec::new()
        })
    }
}

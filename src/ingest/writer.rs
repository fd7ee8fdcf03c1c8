//! The batch writer: gathers decoded messages until `batch_size` fixes,
//! `batch_max_wait`, or a pause in arrivals (short for a small batch, none
//! for a large one), commits them in one transaction, then acknowledges.
//!
//! Failures are of two kinds ([`StoreError::is_data_error`]):
//! - transient (connection lost, timeout, lock): the same batch is retried
//!   with backoff, and meanwhile the full queue holds the reader back;
//! - data (the database refuses a row: a value it cannot store, a
//!   constraint): retrying cannot help, so the batch is split in halves
//!   until the refused rows are found; they are quarantined (kept as dead
//!   letters, `muckwatch_fixes_quarantined_total`) and the rest committed.
//!
//! No batch is retried forever against shutdown: once shutdown has begun
//! the writer keeps trying for [`SHUTDOWN_GRACE`], then gives up on what is
//! not committed without acknowledging it (a persistent session gets it
//! again from the broker after the restart).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, watch};

use super::{Acks, Decoded, IngestConfig};
use crate::fix::Fix;
use crate::metrics::Metrics;
use crate::store::{DeadLetter, Store, StoreError};

/// A small batch is written once nothing has arrived for this long.
const BATCH_IDLE: Duration = Duration::from_millis(3);

/// A batch of this many fixes is written as soon as nothing more is
/// queued. Under load the broker's in-flight window is full of what this
/// batch holds: nothing more comes until it is acknowledged, so waiting
/// [`BATCH_IDLE`] only idled the pipeline (the ingest bench, 4 connections:
/// about a tenth of the rate); a trickle still gathers into few
/// transactions.
const BATCH_ENOUGH: usize = 256;

/// Handoffs taken off the queue at once (each some messages a reader
/// decoded in one go).
const HANDOFFS_AT_ONCE: usize = 64;

/// How long the writer goes on retrying once shutdown has begun.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Reason of a dead letter for a fix the database refused.
const QUARANTINED: &str = "store_refused";

pub(super) async fn run(
    mut rx: mpsc::UnboundedReceiver<Decoded>,
    store: Store,
    metrics: Arc<Metrics>,
    acks: Vec<mpsc::UnboundedSender<Acks>>,
    cfg: IngestConfig,
    shutdown: watch::Receiver<bool>,
    committed: broadcast::Sender<u64>,
) {
    let mut batch = Batch::default();
    let mut stop = Stop {
        shutdown,
        deadline: None,
    };
    let mut arrived = Vec::new();
    while rx.recv_many(&mut arrived, HANDOFFS_AT_ONCE).await > 0 {
        batch.absorb(&mut arrived);
        let deadline = tokio::time::Instant::now() + cfg.batch_max_wait;
        while batch.fixes.len() < cfg.batch_size {
            // A broker holding back until we acknowledge (QoS 1 with a small
            // in-flight window) sends nothing more: write what we have.
            let now = tokio::time::Instant::now();
            let idle = if batch.fixes.len() >= BATCH_ENOUGH {
                now
            } else {
                (now + BATCH_IDLE).min(deadline)
            };
            match tokio::time::timeout_at(idle, rx.recv_many(&mut arrived, HANDOFFS_AT_ONCE)).await
            {
                Ok(n) if n > 0 => batch.absorb(&mut arrived),
                Ok(_) | Err(_) => break,
            }
        }
        let writer = Writer {
            store: &store,
            metrics: &metrics,
            cfg: &cfg,
        };
        if writer.commit(&mut batch, &mut stop).await {
            batch.ack(&acks);
            for key in batch.keys.drain(..) {
                // No one listening is the usual case.
                let _ = committed.send(key);
            }
        } else {
            let left = batch.fixes.len() + rx.len();
            tracing::error!(
                fixes = left,
                "shutting down with the database unavailable: fixes not committed are not acknowledged (a persistent MQTT session gets them again after the restart)"
            );
            return;
        }
    }
    tracing::info!("fix writer flushed and stopped");
}

/// Shutdown, and the time the writer stops retrying after it began.
struct Stop {
    shutdown: watch::Receiver<bool>,
    deadline: Option<Instant>,
}

impl Stop {
    /// How long retrying may go on: unbounded while running, what is left
    /// of [`SHUTDOWN_GRACE`] once shutdown began (zero: give up).
    fn remaining(&mut self) -> Option<Duration> {
        if !*self.shutdown.borrow() {
            return None;
        }
        let deadline = *self
            .deadline
            .get_or_insert_with(|| Instant::now() + SHUTDOWN_GRACE);
        Some(deadline.saturating_duration_since(Instant::now()))
    }
}

#[derive(Default)]
struct Batch {
    fixes: Vec<Fix>,
    dead: Vec<DeadLetter>,
    /// Packet ids, with the connection (and its epoch) each came in on.
    acks: Vec<(usize, u64, u16)>,
    keys: Vec<u64>,
}

impl Batch {
    fn absorb(&mut self, arrived: &mut Vec<Decoded>) {
        for msg in arrived.drain(..) {
            self.fixes.extend_from_slice(&msg.fixes);
            self.dead.extend(msg.dead);
            let (conn, epoch) = (msg.conn, msg.epoch);
            self.acks
                .extend(msg.acks.iter().map(|&pkid| (conn, epoch, pkid)));
            self.keys.extend_from_slice(&msg.keys);
        }
    }

    /// Hands the packet ids to the readers that own their connections,
    /// one handoff per connection and epoch (a reader gone at shutdown
    /// leaves them unacknowledged: the broker resends them).
    fn ack(&mut self, readers: &[mpsc::UnboundedSender<Acks>]) {
        self.acks.sort_by_key(|&(conn, epoch, _)| (conn, epoch));
        for group in self.acks.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (conn, epoch, _) = group[0];
            if let Some(reader) = readers.get(conn) {
                let pkids = group.iter().map(|a| a.2).collect();
                let _ = reader.send(Acks { epoch, pkids });
            }
        }
        self.acks.clear();
    }
}

/// Why a write did not happen.
enum Failed {
    /// The database refused these rows; retrying the same rows cannot help.
    Data(StoreError),
    /// Shutdown's grace ran out while the database was unavailable.
    GaveUp,
}

struct Writer<'a> {
    store: &'a Store,
    metrics: &'a Metrics,
    cfg: &'a IngestConfig,
}

impl Writer<'_> {
    /// Commits the batch's fixes (quarantining rows the database refuses)
    /// and dead letters. False if shutdown's grace ran out first: nothing
    /// of the batch is to be acknowledged then.
    async fn commit(&self, batch: &mut Batch, stop: &mut Stop) -> bool {
        let started = Instant::now();
        let now_ms = chrono::Utc::now().timestamp_millis();
        // Split on data errors: a stack of slices still to write.
        let mut parts = vec![&batch.fixes[..]];
        let mut inserted = 0;
        let mut refused = Vec::new();
        while let Some(part) = parts.pop() {
            match self
                .retrying(stop, || self.store.insert_fixes(part, now_ms))
                .await
            {
                Ok(n) => inserted += n,
                Err(Failed::GaveUp) => return false,
                Err(Failed::Data(e)) if part.len() == 1 => refused.push((part[0], e)),
                Err(Failed::Data(_)) => {
                    let (a, b) = part.split_at(part.len() / 2);
                    parts.extend([b, a]);
                }
            }
        }
        if !batch.fixes.is_empty() {
            self.metrics.batch_write_seconds.observe(started.elapsed());
        }
        let stored = (batch.fixes.len() - refused.len()) as u64;
        self.metrics.fixes_ingested.fetch_add(inserted, Relaxed);
        self.metrics
            .fixes_duplicate
            .fetch_add(stored.saturating_sub(inserted), Relaxed);
        for (fix, e) in refused {
            self.metrics.fixes_quarantined.fetch_add(1, Relaxed);
            tracing::error!(device = %fix.device_id, ts_ms = fix.ts_ms, error = %e, "the database refused a fix; quarantined as a dead letter");
            batch.dead.push(self.quarantined(&fix, &e, now_ms));
        }
        batch.fixes.clear();
        let dead = std::mem::take(&mut batch.dead);
        self.dead_letters(dead, stop).await
    }

    /// Dead letters, kept for inspection: on a data error one by one, and
    /// the ones refused dropped (counted), never holding up ingest.
    async fn dead_letters(&self, dead: Vec<DeadLetter>, stop: &mut Stop) -> bool {
        let keep = self.cfg.dead_letter_max;
        match self
            .retrying(stop, || self.store.insert_dead_letters(&dead, keep))
            .await
        {
            Ok(()) => true,
            Err(Failed::GaveUp) => false,
            Err(Failed::Data(_)) => {
                for d in dead.chunks(1) {
                    match self
                        .retrying(stop, || self.store.insert_dead_letters(d, keep))
                        .await
                    {
                        Ok(()) => {}
                        Err(Failed::GaveUp) => return false,
                        Err(Failed::Data(e)) => {
                            self.metrics.dead_letters_dropped.fetch_add(1, Relaxed);
                            tracing::error!(error = %e, reason = d[0].reason, "the database refused a dead letter; dropped");
                        }
                    }
                }
                true
            }
        }
    }

    /// Runs `op` until it succeeds or fails on the data, retrying transient
    /// errors with backoff (within shutdown's grace once it began).
    async fn retrying<T, F, Fut>(&self, stop: &mut Stop, mut op: F) -> Result<T, Failed>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut backoff = Duration::from_millis(100);
        loop {
            let e = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            self.metrics.write_errors.fetch_add(1, Relaxed);
            if e.is_data_error() {
                tracing::warn!(error = %e, "the database refused a batch; splitting it to find the rows");
                return Err(Failed::Data(e));
            }
            let wait = match stop.remaining() {
                Some(left) if left.is_zero() => return Err(Failed::GaveUp),
                Some(left) => backoff.min(left),
                None => backoff,
            };
            tracing::error!(error = %e, retry_in = ?wait, "batch write failed");
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// A refused fix as a dead letter: on its topic, with the database's
    /// reason and the fix as the contract's JSON.
    fn quarantined(&self, fix: &Fix, e: &StoreError, now_ms: i64) -> DeadLetter {
        let topic = super::position_topic(&self.cfg.topic_prefix, &fix.device_id);
        let ts = chrono::DateTime::from_timestamp_millis(fix.ts_ms)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        let payload = serde_json::json!({
            "device_id": fix.device_id.as_str(), "ts": ts, "lat": fix.lat, "lon": fix.lon,
            "speed_kmh": fix.speed_kmh, "heading": fix.heading, "acc": fix.acc,
            "tipper_up": fix.tipper_up, "cover_closed": fix.cover_closed, "load_t": fix.load_t,
        });
        DeadLetter::new(
            now_ms,
            &topic,
            QUARANTINED,
            e.to_string(),
            payload.to_string().as_bytes(),
        )
    }
}

//! The batch writer: gathers decoded messages for up to `batch_max_wait` or
//! `batch_size` fixes, commits them in one transaction, then acknowledges.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Publish};
use tokio::sync::{broadcast, mpsc};

use super::{Decoded, IngestConfig};
use crate::fix::Fix;
use crate::metrics::Metrics;
use crate::store::{DeadLetter, Store};

/// A batch is written once nothing has arrived for this long.
const BATCH_IDLE: Duration = Duration::from_millis(3);

pub(super) async fn run(
    mut rx: mpsc::Receiver<Decoded>,
    store: Store,
    metrics: Arc<Metrics>,
    client: AsyncClient,
    cfg: IngestConfig,
    committed: broadcast::Sender<u64>,
) {
    let mut batch = Batch::default();
    while let Some(first) = rx.recv().await {
        batch.absorb(first);
        let deadline = tokio::time::Instant::now() + cfg.batch_max_wait;
        while batch.fixes.len() < cfg.batch_size {
            // A broker holding back until we acknowledge (QoS 1 with a small
            // in-flight window) sends nothing more: write what we have.
            let idle = (tokio::time::Instant::now() + BATCH_IDLE).min(deadline);
            match tokio::time::timeout_at(idle, rx.recv()).await {
                Ok(Some(msg)) => batch.absorb(msg),
                Ok(None) | Err(_) => break,
            }
        }
        batch.commit(&store, &metrics, &cfg).await;
        batch.ack(&client);
        for key in batch.keys.drain(..) {
            // No one listening is the usual case.
            let _ = committed.send(key);
        }
    }
    tracing::info!("fix writer flushed and stopped");
}

#[derive(Default)]
struct Batch {
    fixes: Vec<Fix>,
    dead: Vec<DeadLetter>,
    acks: Vec<Publish>,
    keys: Vec<u64>,
}

impl Batch {
    fn absorb(&mut self, msg: Decoded) {
        self.fixes.extend_from_slice(&msg.fixes);
        self.dead.extend(msg.dead);
        self.acks.extend(msg.publish);
        self.keys.push(msg.key);
    }

    /// Retries until the database takes the batch: fixes already read are
    /// never dropped, and meanwhile the full queue holds back the reader.
    async fn commit(&mut self, store: &Store, metrics: &Metrics, cfg: &IngestConfig) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            let now_ms = chrono::Utc::now().timestamp_millis();
            let result = match store.insert_fixes(&self.fixes, now_ms).await {
                Ok(n) => store
                    .insert_dead_letters(&self.dead, cfg.dead_letter_max)
                    .await
                    .map(|_| n),
                Err(e) => Err(e),
            };
            match result {
                Ok(inserted) => {
                    if !self.fixes.is_empty() {
                        metrics.batch_write_seconds.observe(started.elapsed());
                    }
                    metrics.fixes_ingested.fetch_add(inserted, Relaxed);
                    metrics
                        .fixes_duplicate
                        .fetch_add(self.fixes.len() as u64 - inserted, Relaxed);
                    self.fixes.clear();
                    self.dead.clear();
                    return;
                }
                Err(e) => {
                    metrics.write_errors.fetch_add(1, Relaxed);
                    tracing::error!(error = %e, fixes = self.fixes.len(), retry_in = ?backoff, "batch write failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// The request queue is far larger than any broker's in-flight window,
    /// so `try_ack` succeeds; should it not, the ack waits in its own task
    /// rather than stall the writer.
    fn ack(&mut self, client: &AsyncClient) {
        for p in self.acks.drain(..) {
            if client.try_ack(&p).is_err() {
                let client = client.clone();
                tokio::spawn(async move {
                    if let Err(e) = client.ack(&p).await {
                        tracing::warn!(error = %e, "cannot acknowledge a publish; the broker will resend it");
                    }
                });
            }
        }
    }
}

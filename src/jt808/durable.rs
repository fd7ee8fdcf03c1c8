//! With the embedded broker, its PUBACK only says the message reached
//! muckwatch's own memory: a `kill -9` then would lose it. So in that case
//! the gateway also waits until ingest has committed the message (ingest's
//! `committed` keys) before it answers the terminal. One task reads the
//! commits for all connections and wakes the one waiting for each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, oneshot};

use crate::identity::{BucketSet, DeviceId};

/// Waiters for commits, by message key.
pub struct CommitWaiters {
    buckets: BucketSet,
    waiting: Mutex<HashMap<u64, Vec<oneshot::Sender<()>>>>,
}

impl CommitWaiters {
    /// Follows `committed` for the devices whose bucket this instance
    /// consumes (others are committed by another instance, if at all here).
    pub fn start(committed: &broadcast::Sender<u64>, buckets: BucketSet) -> Arc<CommitWaiters> {
        let me = Arc::new(CommitWaiters {
            buckets,
            waiting: Mutex::new(HashMap::new()),
        });
        let mut rx = committed.subscribe();
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            loop {
                let key = match rx.recv().await {
                    Ok(k) => k,
                    // Missed keys: their waiters time out (not answered).
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "JT/T 808 gateway fell behind ingest's commits");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let Some(me) = weak.upgrade() else { return };
                let woken = me.lock().remove(&key);
                for w in woken.into_iter().flatten() {
                    let _ = w.send(());
                }
            }
        });
        me
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<oneshot::Sender<()>>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers interest in `key` before it is published; `None` when this
    /// instance does not consume the device's bucket.
    pub fn expect(&self, device: &DeviceId, key: u64) -> Option<Pending<'_>> {
        if !self.buckets.contains(device.default_bucket()) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.lock().entry(key).or_default().push(tx);
        Some(Pending {
            owner: self,
            key,
            rx,
        })
    }
}

/// One message's commit, awaited; forgotten when dropped unresolved.
pub struct Pending<'a> {
    owner: &'a CommitWaiters,
    key: u64,
    rx: oneshot::Receiver<()>,
}

impl Pending<'_> {
    pub async fn committed(mut self, deadline: tokio::time::Instant) -> bool {
        matches!(
            tokio::time::timeout_at(deadline, &mut self.rx).await,
            Ok(Ok(()))
        )
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        // Fields drop after this body: close ours first so it is seen as gone.
        self.rx.close();
        let mut map = self.owner.lock();
        if let Some(list) = map.get_mut(&self.key) {
            list.retain(|w| !w.is_closed());
            if list.is_empty() {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_commit_wakes_its_waiter_and_abandoned_waits_are_forgotten() {
        let (tx, _) = broadcast::channel(16);
        let waiters = CommitWaiters::start(&tx, BucketSet::all());
        let device = DeviceId::parse("013900000001").unwrap();
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let pending = waiters.expect(&device, 7).expect("bucket consumed here");
        tx.send(7).unwrap();
        assert!(pending.committed(far).await);
        drop(waiters.expect(&device, 8));
        assert!(waiters.lock().is_empty(), "nothing left behind");
        let none = CommitWaiters::start(&tx, BucketSet::parse("0").unwrap());
        let other = (0..100)
            .map(|i| DeviceId::parse(&format!("0139{i:08}")).unwrap())
            .find(|d| d.default_bucket() != 0)
            .unwrap();
        assert!(
            none.expect(&other, 9).is_none(),
            "another instance's bucket"
        );
    }
}

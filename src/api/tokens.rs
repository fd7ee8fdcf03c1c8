//! Verified bearer tokens kept in memory, so that a request costs a hash
//! and a map lookup rather than a database round trip.
//!
//! Only tokens the database knows are cached (an unknown token is looked up
//! every time, so one created a moment ago by `muckwatch token create` works
//! at once). A cached token's expiry is checked on every request against its
//! stored `expires_ms`, exactly as before. Revocation is the one change made
//! elsewhere (`muckwatch token revoke`, another process, or another
//! instance): a watcher reads the database's revocation mark (how many
//! tokens are revoked, and the newest revocation time) every
//! [`REVOCATION_POLL`] and forgets every cached token when it moved, so a
//! revoked token stops working within about that long ([`REVOCATION_BOUND`]
//! with the query's own time). An entry is also dropped after [`MAX_AGE`]
//! whatever happens, which bounds any change made behind muckwatch's back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use crate::auth::TokenRecord;
use crate::store::{Store, StoreResult};

/// How often the database's revocation mark is read.
pub const REVOCATION_POLL: Duration = Duration::from_millis(500);

/// A revoked token is refused within this long of its revocation's commit
/// (the poll, and the poll's own query, with room to spare).
pub const REVOCATION_BOUND: Duration = Duration::from_secs(2);

/// A cached token is read from the database again after this long.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// Entries kept at most; beyond it the map is emptied (tokens are few, and
/// only valid ones are cached, so this is a guard, not a working limit).
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    record: TokenRecord,
    epoch: u64,
    cached_at: Instant,
}

/// Token hash -> its stored record, for tokens seen recently.
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, Entry>>,
    /// Moves on every forget-all: a lookup started before it must not put
    /// back what it read (possibly the record before its revocation).
    epoch: AtomicU64,
}

impl TokenCache {
    /// The record of the token with `hash`: from memory when it is there,
    /// else from the store (and kept if it exists).
    pub async fn lookup(&self, store: &Store, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let epoch = self.epoch.load(Ordering::Acquire);
        if let Ok(map) = self.entries.read() {
            if let Some(e) = map.get(hash) {
                if e.epoch == epoch && e.cached_at.elapsed() < MAX_AGE {
                    return Ok(Some(e.record.clone()));
                }
            }
        }
        let record = store.token(hash).await?;
        if let Some(r) = &record {
            if let Ok(mut map) = self.entries.write() {
                // Forgotten meanwhile: what was read may predate a revocation.
                if self.epoch.load(Ordering::Acquire) == epoch {
                    if map.len() >= MAX_ENTRIES {
                        map.clear();
                    }
                    map.insert(
                        hash.to_string(),
                        Entry {
                            record: r.clone(),
                            epoch,
                            cached_at: Instant::now(),
                        },
                    );
                }
            }
        }
        Ok(record)
    }

    /// Forgets every cached token (a revocation was seen).
    pub fn forget_all(&self) {
        if let Ok(mut map) = self.entries.write() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            map.clear();
        }
    }
}

/// Reads the revocation mark every [`REVOCATION_POLL`] until `stop`, and
/// empties `cache` whenever it moved (or could not be read: better a
/// database read per request for a while than a revoked token let in).
pub fn spawn_revocation_watch(
    store: Store,
    cache: std::sync::Arc<TokenCache>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut seen = None;
        let mut tick = tokio::time::interval(REVOCATION_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            match store.token_revocations().await {
                Ok(mark) => {
                    // The first reading too: a revocation may have come
                    // between a lookup and this watcher's start.
                    if seen != Some(mark) {
                        if seen.is_some() {
                            tracing::info!("a token was revoked: cached tokens forgotten");
                        }
                        cache.forget_all();
                    }
                    seen = Some(mark);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read token revocations");
                    cache.forget_all();
                    seen = None;
                }
            }
        }
    });
}

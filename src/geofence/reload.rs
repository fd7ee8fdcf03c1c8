//! Hot reload: the set in force lives behind an [`ArcSwap`], so the per-fix read path
//! is a lock-free pointer load and a reload is one atomic store. A reader holds the
//! `Arc<FenceSet>` it loaded for as long as it likes and never sees half a set.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::task::JoinHandle;

use super::index::FenceSet;
use super::load::dir_fingerprint;
use super::model::FenceKind;

/// The fences at start. A bad file stops the start (there is no previous
/// set to keep); a missing directory is an empty city, logged, and watched.
pub fn load_at_start(dir: &Path) -> anyhow::Result<FenceSet> {
    if !dir.is_dir() {
        tracing::warn!(dir = %dir.display(), "geofence directory does not exist; no fences loaded");
        return Ok(FenceSet::empty());
    }
    let set = FenceSet::load_dir(dir).map_err(|e| anyhow::anyhow!("geofences: {e}"))?;
    tracing::info!(dir = %dir.display(), fences = set.len(), "geofences loaded");
    Ok(set)
}

/// Shared, swappable reference to the fences in force. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct FenceHandle {
    inner: Arc<ArcSwap<FenceSet>>,
}

impl std::fmt::Debug for FenceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FenceHandle")
            .field("fences", &self.inner.load().len())
            .finish()
    }
}

impl Default for FenceHandle {
    fn default() -> Self {
        FenceHandle::new(FenceSet::empty())
    }
}

impl FenceHandle {
    pub fn new(set: FenceSet) -> FenceHandle {
        FenceHandle {
            inner: Arc::new(ArcSwap::from_pointee(set)),
        }
    }

    /// The set in force now. Keep the `Arc` for a whole batch of fixes: handles
    /// (`FenceIdx`) and plane points are only meaningful with the set that made them.
    pub fn load(&self) -> Arc<FenceSet> {
        self.inner.load_full()
    }

    /// Whether `set` is still the set in force. Costs no reference-count traffic,
    /// so a reader that keeps its own `Arc` can check it on every fix and call
    /// [`FenceHandle::load`] only after a reload.
    pub fn is_current(&self, set: &Arc<FenceSet>) -> bool {
        Arc::ptr_eq(&self.inner.load(), set)
    }

    /// Replaces the set in force (readers holding the old one keep it until they drop it).
    pub fn store(&self, set: FenceSet) {
        self.inner.store(Arc::new(set));
    }

    pub fn store_arc(&self, set: Arc<FenceSet>) {
        self.inner.store(set);
    }
}

/// Loads `dir` in a blocking thread and swaps it in; on error logs and keeps the set in
/// force. Returns whether a new set was stored.
pub async fn reload_now(handle: &FenceHandle, dir: &Path) -> bool {
    let d = dir.to_path_buf();
    match tokio::task::spawn_blocking(move || FenceSet::load_dir(&d)).await {
        Ok(Ok(set)) => {
            tracing::info!(
                dir = %dir.display(),
                fences = set.len(),
                source_sites = set.count(FenceKind::SourceSite),
                disposal_sites = set.count(FenceKind::DisposalSite),
                routes = set.count(FenceKind::Route),
                restricted_zones = set.count(FenceKind::RestrictedZone),
                speed_zones = set.count(FenceKind::SpeedZone),
                "geofences reloaded"
            );
            handle.store(set);
            true
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "geofence reload refused; the fences in force stay");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "geofence reload task failed; the fences in force stay");
            false
        }
    }
}

/// Watches `dir` by polling the mtimes of its `*.geojson` every `poll` (and, on unix,
/// reloads at once on SIGHUP). A set made by [`FenceSet::load_dir`] remembers the file
/// versions it read, so changes made between that load and this call are picked up on
/// the first poll; a set from anywhere else is replaced by the directory's content on
/// the first poll. A change that fails to load is logged (`tracing::error!`), the set in
/// force stays, and it is not retried until the files change again.
pub fn spawn_reloader(handle: FenceHandle, dir: PathBuf, poll: Duration) -> JoinHandle<()> {
    let poll = poll.max(Duration::from_millis(10));
    let mut seen = handle.load().source.clone();
    tokio::spawn(async move {
        let mut hangup = Hangup::new();
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
        loop {
            let forced = tokio::select! {
                _ = tick.tick() => false,
                _ = hangup.recv() => true,
            };
            let now = dir_fingerprint(&dir);
            if !forced && seen.as_ref() == Some(&now) {
                continue;
            }
            if forced {
                tracing::info!(dir = %dir.display(), "SIGHUP: reloading geofences");
            }
            seen = Some(now);
            if reload_now(&handle, &dir).await {
                seen = handle.load().source.clone();
            }
        }
    })
}

/// SIGHUP stream; never fires where signals are unavailable.
struct Hangup {
    #[cfg(unix)]
    sig: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Hangup {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::hangup()) {
                Ok(sig) => Hangup { sig: Some(sig) },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP; geofences reload by polling only");
                    Hangup { sig: None }
                }
            }
        }
        #[cfg(not(unix))]
        Hangup {}
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(sig) = &mut self.sig {
            if sig.recv().await.is_some() {
                return;
            }
            self.sig = None;
        }
        std::future::pending::<()>().await
    }
}

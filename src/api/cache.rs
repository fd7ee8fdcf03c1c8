//! Officers' reads answered once and shared: fifty consoles of five
//! departments ask for the same first page of cases, the same statistics
//! and the same live map again and again, and nothing changed in between.
//!
//! A JSON answer of a cached route (`GET` only, not an Excel export) is
//! kept per caller's role and exact path and query, with the *generation*
//! of the data it was read from: the store's change counter for what comes
//! from the database (bumped by every write of violations, cases and
//! checks this instance makes), the live fleet's and the registry's
//! versions for the live map. It is served again while the generation is
//! the same and it is younger than `[http] read_cache_ms` (default 1000;
//! 0 turns the cache off). So:
//! - this instance's own writes (a check advanced, a violation filed) are
//!   seen by the next read, no staleness;
//! - writes of another instance or process on a shared database are seen
//!   within `read_cache_ms`.
//!
//! When an answer is missing or its data changed, one request reads it and
//! the others asking for the same one meanwhile wait for it (no stampede of
//! identical queries). When it is only older than `read_cache_ms`, the
//! others are served the previous answer while one request refreshes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use axum::body::{Body, HttpBody};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::export::ListFormat;
use super::{AppState, Caller};

/// Distinct answers kept at most; beyond it every one is dropped (a guard
/// against a client walking through endless query strings).
const MAX_SLOTS: usize = 4096;

/// The largest answer kept (bytes); larger ones (a province's live map) are
/// served uncached.
const MAX_BODY: usize = 8 << 20;

/// The bytes of all answers kept at most; beyond it every one is dropped.
const MAX_BYTES: usize = 64 << 20;

struct Cached {
    generation: u64,
    at: Instant,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Cached {
    fn response(&self) -> Response {
        let mut r = Response::new(Body::from(self.body.clone()));
        *r.status_mut() = self.status;
        *r.headers_mut() = self.headers.clone();
        r
    }
}

#[derive(Default)]
struct Slot {
    /// Held by the one request reading the answer afresh.
    fill: tokio::sync::Mutex<()>,
    value: ArcSwapOption<Cached>,
}

/// The cached answers, by role and path with query.
pub struct ReadCache {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// The bytes of the answers in `slots` (and of those stored since the
    /// last clear into slots already dropped: an over-count, never under).
    bytes: std::sync::atomic::AtomicUsize,
    max_age: Duration,
}

impl ReadCache {
    pub fn new(max_age: Duration) -> ReadCache {
        ReadCache {
            slots: Mutex::new(HashMap::new()),
            bytes: Default::default(),
            max_age,
        }
    }

    fn slot(&self, key: String) -> Option<Arc<Slot>> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut slots = self.slots.lock().ok()?;
        let full = slots.len() >= MAX_SLOTS || self.bytes.load(Relaxed) > MAX_BYTES;
        if full && !slots.contains_key(&key) {
            slots.clear();
            self.bytes.store(0, Relaxed);
        }
        Some(slots.entry(key).or_default().clone())
    }

    /// Keeps `cached` in `slot`, counting its bytes instead of the ones it
    /// replaces.
    fn store(&self, slot: &Slot, cached: Cached) {
        use std::sync::atomic::Ordering::Relaxed;
        self.bytes.fetch_add(cached.body.len(), Relaxed);
        if let Some(old) = slot.value.swap(Some(Arc::new(cached))) {
            let _ = self
                .bytes
                .fetch_update(Relaxed, Relaxed, |b| Some(b.saturating_sub(old.body.len())));
        }
    }

    fn fresh(&self, slot: &Slot, generation: u64) -> Option<Response> {
        let c = slot.value.load();
        c.as_ref()
            .filter(|c| c.generation == generation && c.at.elapsed() < self.max_age)
            .map(|c| c.response())
    }
}

/// The generation of what a path's answer is read from.
fn generation(state: &AppState, path: &str) -> u64 {
    if path == "/api/v1/vehicles" {
        state
            .live
            .version()
            .wrapping_add(state.registry.version().wrapping_mul(1 << 32))
    } else {
        state.store.changes()
    }
}

/// The middleware of the cached routes (see the module's comment).
pub async fn cached(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.reads.max_age.is_zero() || req.method() != Method::GET {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    // A workbook is never cached (rare, large); a format the list does not
    // know is the handler's to refuse.
    let format = ListFormat::from_request_parts(&mut parts, &state).await;
    if !matches!(format, Ok(ListFormat::Json)) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    // Who asks decides what is seen; a refusal is the handler's to give.
    let role = match Caller::from_request_parts(&mut parts, &state).await {
        Ok(Caller(role)) => role,
        Err(e) => return e.into_response(),
    };
    let req = Request::from_parts(parts, body);
    let path = req.uri().path().to_owned();
    let key = format!(
        "{role}\n{}",
        req.uri()
            .path_and_query()
            .map_or(path.as_str(), |p| p.as_str())
    );
    let Some(slot) = state.reads.slot(key) else {
        return next.run(req).await;
    };
    let generation_of = |s: &AppState| generation(s, &path);
    let now_generation = generation_of(&state);
    if let Some(r) = state.reads.fresh(&slot, now_generation) {
        return r;
    }
    // Only aged (nothing changed here): one request reads it afresh, the
    // others meanwhile get the answer it replaces, so that an entry turning
    // over never holds up a crowd (the age bound stretches by one query).
    let stale = slot
        .value
        .load_full()
        .filter(|c| c.generation == now_generation);
    let _filling = match (stale, slot.fill.try_lock()) {
        (_, Ok(guard)) => guard,
        (Some(c), Err(_)) => return c.response(),
        (None, Err(_)) => slot.fill.lock().await,
    };
    // Read before the query: a write that lands during it leaves this
    // answer a generation behind, so the next read fetches again.
    let generation = generation_of(&state);
    if let Some(r) = state.reads.fresh(&slot, generation) {
        return r;
    }
    let response = next.run(req).await;
    // Only an answer of known size that fits is kept: anything else goes
    // out as it is, never read here.
    let fits = response
        .body()
        .size_hint()
        .upper()
        .is_some_and(|n| n <= MAX_BODY as u64);
    if response.status() != StatusCode::OK || !fits {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "an answer could not be read for the cache");
            return super::ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the answer could not be completed",
            )
            .into_response();
        }
    };
    let cached = Cached {
        generation,
        at: Instant::now(),
        status: parts.status,
        headers: parts.headers,
        body,
    };
    let r = cached.response();
    state.reads.store(&slot, cached);
    r
}

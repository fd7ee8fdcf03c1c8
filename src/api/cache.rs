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
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::export::XLSX_MIME;
use super::{AppState, Caller};

/// Distinct answers kept at most; beyond it every one is dropped (a guard
/// against a client walking through endless query strings).
const MAX_SLOTS: usize = 4096;

/// The largest answer kept (bytes); larger ones are served uncached.
const MAX_BODY: usize = 8 << 20;

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
    max_age: Duration,
}

impl ReadCache {
    pub fn new(max_age: Duration) -> ReadCache {
        ReadCache {
            slots: Mutex::new(HashMap::new()),
            max_age,
        }
    }

    fn slot(&self, key: String) -> Option<Arc<Slot>> {
        let mut slots = self.slots.lock().ok()?;
        if slots.len() >= MAX_SLOTS && !slots.contains_key(&key) {
            slots.clear();
        }
        Some(slots.entry(key).or_default().clone())
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

/// Whether the caller asked for an Excel workbook (never cached: rare, large).
fn wants_xlsx(req: &Request) -> bool {
    req.uri().query().is_some_and(|q| q.contains("format=xlsx"))
        || req
            .headers()
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains(XLSX_MIME))
}

/// The middleware of the cached routes (see the module's comment).
pub async fn cached(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.reads.max_age.is_zero() || req.method() != Method::GET || wants_xlsx(&req) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
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
    if response.status() != StatusCode::OK {
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
    slot.value.store(Some(Arc::new(cached)));
    r
}

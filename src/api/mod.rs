//! The HTTP API (axum): routes, shared state, and the caller's identity.
//!
//! Handlers live in one file per resource. Every handler takes a
//! [`Caller`] unless the contract says the endpoint is open (`/healthz`,
//! `/metrics`), so forgetting authentication is a compile-time omission
//! one can see, not a middleware ordering question.

mod alerts;
mod applications;
mod auth;
mod cache;
mod cases;
mod console;
mod credit;
mod draws;
mod error;
mod export;
mod firms;
mod fleet;
mod ingest;
mod input;
mod inspections;
mod inspectors;
mod mqtt;
mod outbox;
mod permits;
mod server;
mod stats;
mod time;
mod tokens;
mod vehicles;
mod violations;

use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use axum::{Json, Router};

use crate::alerts::AlertHub;
use crate::geofence::FenceHandle;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::Store;

pub use crate::violation::violation_json;
pub use auth::Caller;
pub use cache::ReadCache;
pub use error::{ApiError, ApiPath};
pub use export::{ListFormat, EXPORT_MAX_ROWS, XLSX_MIME};
pub use server::{serve, with_limits, CONTENT_SECURITY_POLICY_VALUE};
pub use time::format_ms;
pub use tokens::{spawn_revocation_watch, TokenCache, REVOCATION_BOUND};

/// What every handler may use.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub fences: FenceHandle,
    pub hub: AlertHub,
    /// Turns true at shutdown; long-lived responses (SSE) end then.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub tz: chrono_tz::Tz,
    /// The MQTT access rules, for the auth/acl endpoints of external brokers.
    pub mqtt: Arc<crate::mqtt_access::Gate>,
    /// Which departments each code goes to (alerts of the backlog name them).
    pub routing: crate::cases::Routing,
    /// Each vehicle's newest fix and open violations, as detection published them.
    pub live: Arc<crate::live::LiveFleet>,
    /// The buckets this instance consumes: the live map lists their vehicles.
    pub buckets: crate::identity::BucketSet,
    /// The firm credit scheme (`[credit]`).
    pub credit: Arc<crate::credit::CreditScheme>,
    /// Tokens verified recently (see `tokens.rs`).
    pub tokens: Arc<TokenCache>,
    /// The officers' shared reads (see `cache.rs`).
    pub reads: Arc<ReadCache>,
}

pub fn router(state: AppState) -> Router {
    // The officers' reads, answered once and shared (see `cache.rs`).
    let cached = Router::new()
        .route("/api/v1/vehicles", post(vehicles::create).get(fleet::list))
        .route("/api/v1/violations", get(violations::list))
        .route("/api/v1/cases", get(cases::list))
        .route("/api/v1/cases/{id}", get(cases::get))
        .route("/api/v1/stats", get(stats::stats))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cache::cached,
        ));
    Router::new()
        .merge(cached)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/", get(console::index))
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route("/console/{file}", get(console::asset))
        .route("/api/v1/whoami", get(console::whoami))
        .route("/api/v1/meta", get(console::meta))
        .route("/api/v1/firms", post(firms::create))
        .route("/api/v1/firms/{id}/credit", get(credit::firm))
        .route("/api/v1/credit", get(credit::list))
        .route(
            "/api/v1/inspectors",
            post(inspectors::create).get(inspectors::list),
        )
        .route("/api/v1/inspectors/{id}", patch(inspectors::update))
        .route(
            "/api/v1/inspections/draws",
            post(inspections::create_draw).get(draws::list),
        )
        .route(
            "/api/v1/inspections/draws/{id}/results",
            post(inspections::record_result),
        )
        .route("/api/v1/inspections/public", get(draws::public))
        .route("/api/v1/vehicles/stream", get(fleet::stream))
        .route("/api/v1/vehicles/{plate}/track", get(vehicles::track))
        .route(
            "/api/v1/vehicles/{plate}/mqtt-credentials",
            post(mqtt::create_credentials),
        )
        .route("/api/v1/mqtt/auth", post(mqtt::auth))
        .route("/api/v1/mqtt/acl", post(mqtt::acl))
        .route("/api/v1/permits", post(permits::create).get(permits::list))
        .route(
            "/api/v1/permits/{id}",
            get(permits::get).patch(permits::patch),
        )
        .route(
            "/api/v1/permit-applications",
            post(applications::submit).get(applications::list),
        )
        .route("/api/v1/permit-applications/{id}", get(applications::get))
        .route(
            "/api/v1/permit-applications/{id}/decision",
            post(applications::decide),
        )
        .route("/api/v1/violations/{id}", get(violations::get))
        .route(
            "/api/v1/cases/{id}/checks/{department}",
            post(cases::update_check),
        )
        .route("/api/v1/alerts/stream", get(alerts::stream))
        .route("/api/v1/dead-letters", get(ingest::dead_letters))
        .route("/api/v1/outbox", get(outbox::undelivered))
        .route("/api/v1/geofences", get(geofences))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(input::refuse_control_characters))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// What is loaded now, as GeoJSON; any authenticated caller may see the map.
async fn geofences(
    axum::extract::State(state): axum::extract::State<AppState>,
    _caller: Caller,
) -> Json<serde_json::Value> {
    Json(state.fences.load().to_geojson())
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// A list's optional filter `value` as its domain type; a value `parse`
/// does not know is a 400 saying what was expected (`refusal`).
pub fn filter<T>(
    value: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    refusal: impl Fn(&str) -> String,
) -> Result<Option<T>, ApiError> {
    value
        .map(|v| parse(v).ok_or_else(|| ApiError::bad_request(refusal(v))))
        .transpose()
}

/// `limit` (default 100, max 1000) and `offset` of list endpoints.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct Paging {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl Paging {
    pub fn resolve(self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(100);
        let offset = self.offset.unwrap_or(0);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit must be 1..1000, got {limit}"
            )));
        }
        if offset < 0 {
            return Err(ApiError::bad_request(format!(
                "offset must be >= 0, got {offset}"
            )));
        }
        Ok((limit, offset))
    }
}

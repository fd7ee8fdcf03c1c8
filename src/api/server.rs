//! Serving the router over HTTP/1.1 with the limits a service facing
//! untrusted clients needs: a deadline for the request head (a client that
//! sends half a request and waits holds a connection, and held graceful
//! shutdown, forever otherwise), a deadline for a handler's answer, a cap on
//! requests in progress, and a deadline on graceful shutdown. Every
//! response also carries the console's security headers.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, RETRY_AFTER, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::ApiError;
pub use crate::configuration::HttpLimits;

/// The console's pages load only from this origin and are never framed.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; frame-ancestors 'none'";

/// Adds the limits and headers to `router`; `/healthz` and `/metrics`
/// bypass the concurrency cap so that a busy instance still answers its
/// probes.
pub fn with_limits(router: axum::Router, limits: HttpLimits) -> axum::Router {
    let permits = Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1)));
    router
        .layer(axum::middleware::from_fn_with_state(
            (permits, limits.request_timeout),
            limit,
        ))
        .layer(axum::middleware::from_fn(security_headers))
}

async fn limit(
    State((permits, timeout)): State<(Arc<Semaphore>, Duration)>,
    req: Request,
    next: Next,
) -> Response {
    let probe = matches!(req.uri().path(), "/healthz" | "/metrics");
    let _permit = if probe {
        None
    } else {
        match permits.try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                let mut r = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "too many requests in progress; try again shortly",
                )
                .into_response();
                r.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
        }
    };
    // Only the answer's head is timed: a stream (SSE, a long track) goes on
    // after its handler has returned.
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(?timeout, "request timed out");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "no answer within {} s; try a narrower query",
                    timeout.as_secs()
                ),
            )
            .into_response()
        }
    }
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

/// Serves `router` on `listener` until `stop` completes, then lets the
/// requests in progress finish for at most `limits.shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: HttpLimits,
    stop: impl std::future::Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(stop);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause, go on.
                    tracing::warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(router.clone());
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        connections.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(grace = ?limits.shutdown_grace, open = connections.len(), "HTTP connections still open at the shutdown deadline; closing them");
        }
    }
    connections.abort_all();
}

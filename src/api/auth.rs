//! Bearer-token authentication: the [`Caller`] extractor.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{ApiError, AppState};
use crate::auth::{token_hash, Role, TokenState};

/// The authenticated caller of a request. A missing or unknown token is a 401.
#[derive(Debug, Clone)]
pub struct Caller(pub Role);

impl Caller {
    /// Refuses (403) anyone but an administrator.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.0 {
            Role::Admin => Ok(()),
            _ => Err(ApiError::forbidden(format!(
                "{} may not do this; admin only",
                self.0
            ))),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let hash = bearer_hash(parts)?;
        let now = chrono::Utc::now().timestamp_millis();
        match state.tokens.lookup(&state.store, &hash).await? {
            Some(t) => match t.state(now) {
                TokenState::Active => Ok(Caller(t.role)),
                TokenState::Expired => Err(ApiError::unauthorized("token expired")),
                TokenState::Revoked => Err(ApiError::unauthorized("token revoked")),
            },
            None => Err(ApiError::unauthorized("unknown token")),
        }
    }
}

/// The hash of the request's bearer token; 401 without one.
fn bearer_hash(parts: &Parts) -> Result<String, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>` header"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("Authorization header is not `Bearer <token>`"))?;
    Ok(token_hash(token))
}

/// The bearer token of a long-lived request (a stream), kept to check
/// that it stays valid: a revoked or expired token ends the stream.
#[derive(Debug, Clone)]
pub struct Bearer(String);

/// How often an open stream checks that its token is still valid.
const STREAM_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

impl Bearer {
    /// Resolves once the token is revoked or expired, checked every
    /// [`STREAM_RECHECK`]: an open stream ends with it (`take_until`), so
    /// a quiet one does not outlive its token.
    pub async fn ended(self, state: AppState) {
        loop {
            tokio::time::sleep(STREAM_RECHECK).await;
            if !self.still_active(&state).await {
                return;
            }
        }
    }

    /// Whether the token is still active (a revocation is seen within the
    /// token cache's bound). A database error keeps the stream going.
    pub async fn still_active(&self, state: &AppState) -> bool {
        let now = chrono::Utc::now().timestamp_millis();
        match state.tokens.lookup(&state.store, &self.0).await {
            Ok(Some(t)) => t.state(now) == TokenState::Active,
            Ok(None) => false,
            Err(_) => true,
        }
    }
}

impl FromRequestParts<AppState> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Bearer, ApiError> {
        bearer_hash(parts).map(Bearer)
    }
}

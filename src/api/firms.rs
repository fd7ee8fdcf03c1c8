//! `POST /api/v1/firms`.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::{ApiError, AppState, Caller};
use crate::identity::{Firm, FirmId};

#[derive(Deserialize)]
pub struct NewFirm {
    id: String,
    name: String,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewFirm>, JsonRejection>,
) -> Result<(StatusCode, Json<Firm>), ApiError> {
    caller.require_admin()?;
    let Json(body) = body?;
    let id = FirmId::parse(&body.id).map_err(ApiError::unprocessable)?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "firm name must be 1-200 characters",
        ));
    }
    let firm = Firm {
        id,
        name: name.to_string(),
    };
    state
        .store
        .create_firm(&firm, chrono::Utc::now().timestamp_millis())
        .await?;
    tracing::info!(firm = %firm.id, "firm registered");
    Ok((StatusCode::CREATED, Json(firm)))
}

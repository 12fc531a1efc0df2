//! `/api/v1/tokens`: making, listing and revoking API tokens (admin only, see `auth.rs`).

use super::error::{ApiError, success};
use super::{ApiState, blocking};
use crate::access::{NewToken, TokenId, TokenRecord};
use crate::alerting::time::rfc3339_millis;
use crate::api::tokens as api;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Json, Router};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/tokens", get(list).post(create))
        .route("/api/v1/tokens/{id}", delete(revoke))
}

fn summary(record: &TokenRecord) -> api::TokenSummary {
    api::TokenSummary {
        id: record.id.to_string(),
        name: record.name.clone(),
        role: record.role,
        write: record.write,
        created_at: rfc3339_millis(record.created_ms),
        expires_at: record.expires_ms.map(rfc3339_millis),
    }
}

/// `POST /api/v1/tokens` with `{name, role, write?, expires_in?}`.
async fn create(
    State(state): State<ApiState>,
    body: Result<Json<api::NewToken>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let now = state.now_ms();
    let expires_ms = match &body.expires_in {
        None => None,
        Some(text) => {
            let bad = |message: String| ApiError::BadParam {
                name: "expires_in",
                message,
            };
            let life = humantime::parse_duration(text)
                .map_err(|e| bad(format!("{text:?} is not a duration such as 30d: {e}")))?;
            let life_ms = i64::try_from(life.as_millis())
                .ok()
                .filter(|ms| *ms > 0 && ms.checked_add(now).is_some())
                .ok_or_else(|| bad(format!("{text:?} is not a usable lifetime")))?;
            Some(now + life_ms)
        }
    };
    let new = NewToken {
        name: body.name,
        role: body.role,
        write: body.write,
        expires_ms,
    };
    let access = state.access.clone();
    let (record, token) =
        blocking("/api/v1/tokens", move || access.tokens.create(new, now)).await??;
    Ok(success(api::CreatedToken {
        id: record.id.to_string(),
        name: record.name,
        role: record.role,
        write: record.write,
        expires_at: record.expires_ms.map(rfc3339_millis),
        token,
    }))
}

/// `GET /api/v1/tokens`: every token, without secrets.
async fn list(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let tokens: Vec<_> = state.access.tokens.list().iter().map(summary).collect();
    Ok(success(tokens))
}

/// `DELETE /api/v1/tokens/{id}`.
async fn revoke(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let access = state.access.clone();
    let id = TokenId::from(id.as_str());
    let record = blocking("/api/v1/tokens", move || access.tokens.revoke(&id)).await??;
    Ok(success(api::RevokedToken {
        id: record.id.to_string(),
        name: record.name,
    }))
}

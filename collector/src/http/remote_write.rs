//! `POST /api/v1/write`: Prometheus remote write 1.0, decoded and stored by ingest.

use super::error::ApiError;
use super::{ApiState, blocking};
use crate::access::Identity;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use std::time::Instant;

/// The compressed body is held to the listener's `max_body_bytes` (see `limits.rs`), the
/// decoded request to ingest's limits.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/write", post(remote_write))
}

/// Held to the token's write rate (`[auth] write_samples_per_second`, see
/// `access/write_rate.rs`): over it, 429 with `Retry-After`, counted as a refusal.
async fn remote_write(
    State(state): State<ApiState>,
    identity: Option<Extension<Identity>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let token = identity.map(|Extension(identity)| identity.token_id);
    let writes = &state.access.writes;
    if let Some(token) = &token
        && let Err(retry_after) = writes.admit(token, Instant::now())
    {
        state
            .metrics
            .refused_requests
            .with_label_values(&["http", "write_samples_per_second"])
            .inc();
        let limit = writes.rate();
        return Err(ApiError::WriteRateLimited { limit, retry_after });
    }
    let ingest = state.ingest.clone();
    let outcome = blocking("/api/v1/write", move || ingest.remote_write(&body)).await?;
    if let (Some(token), Ok(written)) = (&token, &outcome) {
        let samples = written.accepted + written.non_finite + written.out_of_range;
        writes.charge(token, samples, Instant::now());
    }
    let label = match &outcome {
        Ok(_) => "ok",
        Err(e) if e.retryable() => "failed",
        Err(_) => "refused",
    };
    state
        .metrics
        .remote_write_requests
        .with_label_values(&[label])
        .inc();
    let outcome = outcome?;
    if outcome.non_finite + outcome.out_of_range > 0 {
        tracing::debug!(?outcome, "remote write: some samples not stored");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

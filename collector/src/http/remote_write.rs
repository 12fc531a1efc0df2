//! `POST /api/v1/write`: Prometheus remote write 1.0, decoded and stored by ingest.

use super::error::ApiError;
use super::{ApiState, blocking};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// The compressed body is held to the listener's `max_body_bytes` (see `limits.rs`), the
/// decoded request to ingest's limits.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/write", post(remote_write))
}

async fn remote_write(
    State(state): State<ApiState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let ingest = state.ingest.clone();
    let outcome = blocking("/api/v1/write", move || ingest.remote_write(&body)).await?;
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

//! `POST /api/v1/write`: Prometheus remote write 1.0 and 2.0, decoded and stored by ingest.
//! The message is chosen as the 2.0 specification says, by `Content-Type`'s `proto`
//! parameter (none means 1.0); anything else is 415, on which a 2.0 sender falls back to 1.0.

use super::error::ApiError;
use super::{ApiState, blocking};
use crate::access::Identity;
use crate::ingest::Protocol;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use std::time::Instant;

/// The compressed body is held to the listener's `max_body_bytes` (see `limits.rs`), the
/// decoded request to ingest's limits.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/write", post(remote_write))
}

/// The message a request carries, from its headers; 415 for what hcmon cannot read.
fn protocol(headers: &HeaderMap) -> Result<Protocol, ApiError> {
    let header_text = |name| {
        headers.get(name).map(|v| {
            v.to_str()
                .unwrap_or("(not text)")
                .trim()
                .to_ascii_lowercase()
        })
    };
    if let Some(encoding) = header_text(header::CONTENT_ENCODING)
        && encoding != "snappy"
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "remote write refused: Content-Encoding {encoding:?} is not supported; send snappy (block format)"
        )));
    }
    let Some(content_type) = header_text(header::CONTENT_TYPE) else {
        return Ok(Protocol::V1);
    };
    let mut parts = content_type.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    if media != "application/x-protobuf" {
        return Err(ApiError::UnsupportedMediaType(format!(
            "remote write refused: Content-Type {media:?} is not supported; send application/x-protobuf"
        )));
    }
    let proto = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim() == "proto")
        .map(|(_, v)| v.trim().trim_matches('"'));
    match proto {
        None | Some("prometheus.writerequest") => Ok(Protocol::V1),
        Some("io.prometheus.write.v2.request") => Ok(Protocol::V2),
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "remote write refused: message {other:?} is not supported; send prometheus.WriteRequest (1.0) or io.prometheus.write.v2.Request (2.0)"
        ))),
    }
}

/// The writing token's id, once its write rate admits another request (`Err`: when to retry;
/// the refusal is counted). Remote write and OTLP/HTTP share the rate.
pub(super) fn admit_write(
    state: &ApiState,
    identity: Option<Extension<Identity>>,
) -> Result<Option<crate::access::TokenId>, std::time::Duration> {
    let token = identity.map(|Extension(identity)| identity.token_id);
    if let Some(token) = &token
        && let Err(retry_after) = state.access.writes.admit(token, Instant::now())
    {
        state
            .metrics
            .refused_requests
            .with_label_values(&["http", "write_samples_per_second"])
            .inc();
        return Err(retry_after);
    }
    Ok(token)
}

/// Held to the token's write rate (`[auth] write_samples_per_second`, see
/// `access/write_rate.rs`): over it, 429 with `Retry-After`, counted as a refusal.
async fn remote_write(
    State(state): State<ApiState>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let protocol = protocol(&headers)?;
    let token = admit_write(&state, identity).map_err(|retry_after| {
        let limit = state.access.writes.rate();
        ApiError::WriteRateLimited { limit, retry_after }
    })?;
    let writes = &state.access.writes;
    let ingest = state.ingest.clone();
    let outcome = blocking("/api/v1/write", move || {
        ingest.remote_write(protocol, &body)
    })
    .await?;
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
    let mut response = StatusCode::NO_CONTENT.into_response();
    if protocol == Protocol::V2 {
        // What 2.0 senders count as written; hcmon stores no histograms or exemplars.
        let written = response.headers_mut();
        written.insert(
            "x-prometheus-remote-write-samples-written",
            HeaderValue::from(outcome.accepted),
        );
        for name in [
            "x-prometheus-remote-write-histograms-written",
            "x-prometheus-remote-write-exemplars-written",
        ] {
            written.insert(name, HeaderValue::from(0));
        }
    }
    Ok(response)
}

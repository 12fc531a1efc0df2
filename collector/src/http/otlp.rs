//! `POST /v1/metrics`: OTLP/HTTP, binary protobuf (`application/x-protobuf`) or JSON
//! (`application/json`), gzip or not, as OpenTelemetry SDKs export to `:4318/v1/metrics` (here
//! the collector's HTTP port). Needs a token that may write, like remote write, and is held to
//! the same per-token write rate.
//!
//! OTLP/HTTP answers in the request's encoding, and its failures differently from the rest of
//! the API (this module is their one mapping): a `google.rpc.Status` body; 400 for a request
//! that will never be stored (SDKs drop it), 429 with `Retry-After` and 503 for the collector's
//! own trouble (SDKs retry). Points left out while the rest was stored are a 200 with
//! `partial_success`.

use super::{ApiState, blocking};
use crate::access::Identity;
use crate::ingest::{OtlpOutcome, RemoteWriteError};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use hcmon_common::otlp::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use std::time::{Duration, Instant};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/metrics", post(export))
        // gzip bodies are inflated as they are read, so the listener's body limit holds the
        // inflated size.
        .route_layer(tower_http::decompression::RequestDecompressionLayer::new())
}

/// How a request's body (and so its answer) is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// `google.rpc.Status`, the body of an OTLP/HTTP failure.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// An OTLP/HTTP failure: status, gRPC code for the body, message, and when to retry.
struct Failure {
    encoding: Encoding,
    status: StatusCode,
    message: String,
    retry_after: Option<Duration>,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        // The gRPC codes of OTLP's gRPC mapping: INVALID_ARGUMENT, RESOURCE_EXHAUSTED,
        // UNAVAILABLE, UNAUTHENTICATED.
        let code = match self.status {
            StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => 3,
            StatusCode::TOO_MANY_REQUESTS => 8,
            _ => 14,
        };
        let status = RpcStatus {
            code,
            message: self.message,
        };
        let body = match self.encoding {
            Encoding::Protobuf => status.encode_to_vec(),
            Encoding::Json => serde_json::to_vec(&status).unwrap_or_default(),
        };
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.encoding.content_type()),
        );
        if let Some(after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(after.as_secs().max(1)),
            );
        }
        response
    }
}

fn failure(encoding: Encoding, status: StatusCode, message: impl Into<String>) -> Failure {
    Failure {
        encoding,
        status,
        message: message.into(),
        retry_after: None,
    }
}

/// The body's encoding, from `Content-Type`; 415 for anything else.
fn encoding(headers: &HeaderMap) -> Result<Encoding, Failure> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    match media.as_deref() {
        Some("application/x-protobuf") => Ok(Encoding::Protobuf),
        Some("application/json") => Ok(Encoding::Json),
        other => Err(failure(
            Encoding::Protobuf,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "OTLP export refused: Content-Type {:?} is not supported; send application/x-protobuf or application/json",
                other.unwrap_or("(none)")
            ),
        )),
    }
}

fn decode(encoding: Encoding, body: &[u8]) -> Result<ExportMetricsServiceRequest, Failure> {
    let decoded = match encoding {
        Encoding::Protobuf => ExportMetricsServiceRequest::decode(body).map_err(|e| e.to_string()),
        Encoding::Json => serde_json::from_slice(body).map_err(|e| e.to_string()),
    };
    decoded.map_err(|detail| {
        failure(
            encoding,
            StatusCode::BAD_REQUEST,
            format!(
                "body is not an OTLP ExportMetricsServiceRequest ({}): {detail}",
                encoding.content_type()
            ),
        )
    })
}

fn answer(encoding: Encoding, outcome: &OtlpOutcome) -> Response {
    let response = ExportMetricsServiceResponse {
        partial_success: (outcome.rejected > 0).then(|| ExportMetricsPartialSuccess {
            rejected_data_points: outcome.rejected,
            error_message: outcome.message.clone(),
        }),
    };
    let body = match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&response).unwrap_or_default(),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

async fn export(
    State(state): State<ApiState>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let outcome = store(&state, identity, &headers, &body).await;
    let label = match &outcome {
        Ok(o) if o.rejected > 0 => "partial",
        Ok(_) => "ok",
        Err(f) if f.status.is_server_error() || f.status == StatusCode::TOO_MANY_REQUESTS => {
            "failed"
        }
        Err(_) => "refused",
    };
    state
        .metrics
        .otlp_requests
        .with_label_values(&["http", label])
        .inc();
    match outcome {
        Ok(outcome) => answer(encoding(&headers).unwrap_or(Encoding::Protobuf), &outcome),
        Err(failure) => failure.into_response(),
    }
}

async fn store(
    state: &ApiState,
    identity: Option<Extension<Identity>>,
    headers: &HeaderMap,
    body: &axum::body::Bytes,
) -> Result<OtlpOutcome, Failure> {
    let encoding = encoding(headers)?;
    let writes = &state.access.writes;
    let token =
        super::remote_write::admit_write(state, identity).map_err(|retry_after| Failure {
            retry_after: Some(retry_after),
            ..failure(
                encoding,
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "over this token's write rate of {} samples per second",
                    writes.rate()
                ),
            )
        })?;
    let request = decode(encoding, body)?;
    let ingest = state.ingest.clone();
    let stored = blocking("/v1/metrics", move || ingest.otlp(&request))
        .await
        .map_err(|e| failure(encoding, StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    match stored {
        Ok(outcome) => {
            if let Some(token) = &token {
                writes.charge(token, outcome.stored, Instant::now());
            }
            Ok(outcome)
        }
        Err(e @ RemoteWriteError::Store(_)) => Err(failure(
            encoding,
            StatusCode::SERVICE_UNAVAILABLE,
            e.to_string(),
        )),
        Err(e) => Err(failure(encoding, StatusCode::BAD_REQUEST, e.to_string())),
    }
}

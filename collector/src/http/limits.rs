//! The HTTP listener's limits (`[server.http]` in the collector's config) and the middleware
//! that holds requests to them. Every refusal is answered through [`ApiError`] and counted in
//! `hcmon_collector_refused_requests_total{listener="http", reason}`, the reason being the
//! limit's key.
//!
//! - **Sizes, on every route:** URL, headers and body. A body without a `Content-Length` is
//!   cut off by axum's body limit while it is read; that 413 is answered here like the others.
//! - **Query-type routes only** (queries, series, analyses): a time limit and load shedding.
//!   Over `max_concurrent_queries` a request is answered 503 with `Retry-After` at once rather
//!   than queued, so `/metrics`, `/healthz`, remote write and the alert API keep answering.
//!   A request past its time limit is answered 503 `timeout`; blocking work it started ends on
//!   its own (the analyses stop at their own, shorter limit).

use super::error::ApiError;
use crate::telemetry::CollectorMetrics;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Limits of the HTTP listener.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// Largest request body, in bytes (a compressed remote write is the largest the collector
    /// takes; its decoded size has its own limit). Over it: 413.
    pub max_body_bytes: usize,
    /// Most bytes of request headers, names and values together. Over it: 431.
    pub max_header_bytes: usize,
    /// Longest request URL (path and query string), in bytes. Over it: 414.
    pub max_url_bytes: usize,
    /// Longest a query or analysis request may take. Over it: 503 `timeout`.
    #[serde(with = "humantime_serde")]
    pub query_timeout: Duration,
    /// Most query and analysis requests in progress at once; more are refused at once with
    /// 503 and `Retry-After` (load shedding).
    pub max_concurrent_queries: usize,
    /// The wait a refused query is told to take (`Retry-After`).
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// Longest a client may take to send a request's headers; a connection slower than that
    /// (slowloris) is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            max_header_bytes: 64 << 10,
            max_url_bytes: 64 << 10,
            query_timeout: Duration::from_secs(120),
            max_concurrent_queries: 64,
            retry_after: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// What the middleware holds requests to; cloned into every request.
#[derive(Clone)]
pub struct Guard {
    limits: Arc<HttpLimits>,
    queries: Arc<Semaphore>,
    metrics: Arc<CollectorMetrics>,
}

impl Guard {
    pub fn new(limits: HttpLimits, metrics: Arc<CollectorMetrics>) -> Self {
        Self {
            queries: Arc::new(Semaphore::new(limits.max_concurrent_queries)),
            limits: Arc::new(limits),
            metrics,
        }
    }

    /// Counts a refusal under the limit's key and answers it.
    fn refuse(&self, key: &str, error: ApiError) -> Response {
        self.metrics
            .refused_requests
            .with_label_values(&["http", key])
            .inc();
        error.into_response()
    }
}

/// Every request: its URL, headers and body held to their limits.
pub async fn check_sizes(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let limits = &guard.limits;
    let url = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if url > limits.max_url_bytes {
        let limit = limits.max_url_bytes;
        return guard.refuse("max_url_bytes", ApiError::UrlTooLong { limit });
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > limits.max_header_bytes {
        let limit = limits.max_header_bytes;
        return guard.refuse("max_header_bytes", ApiError::HeadersTooLarge { limit });
    }
    let too_large = ApiError::BodyTooLarge {
        limit: limits.max_body_bytes,
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_body_bytes as u64) {
        return guard.refuse("max_body_bytes", too_large);
    }
    let response = next.run(request).await;
    // Only axum's body limit answers 413 (no handler does): a body that grew past the limit
    // while it was read.
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return guard.refuse("max_body_bytes", too_large);
    }
    response
}

/// Query-type requests: shed over the concurrency limit, stopped at the time limit.
pub async fn limit_queries(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let limits = &guard.limits;
    let Ok(_slot) = guard.queries.clone().try_acquire_owned() else {
        let error = ApiError::Overloaded {
            limit: limits.max_concurrent_queries,
            retry_after: limits.retry_after,
        };
        return guard.refuse("max_concurrent_queries", error);
    };
    match tokio::time::timeout(limits.query_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let error = ApiError::Timeout {
                request: "the request",
                limit: limits.query_timeout,
                advice: "ask for a shorter range, a coarser step or fewer series (the limit is `server.http.query_timeout`)",
            };
            guard.refuse("query_timeout", error)
        }
    }
}

//! The HTTP API's request and response bodies as types, shared by the server (`http/`) and the
//! `hcmon` CLI, so both sides of every exchange are written once. Plain data: no axum, no
//! domain types; `http/` converts the collector's own types into these. Non-finite floats go
//! through [`crate::json_f64`], as Prometheus writes them.

pub mod admin;
pub mod agents;
pub mod alerts;
pub mod analytics;
pub mod annotations;
pub mod compare;
pub mod pki;
pub mod prometheus;
pub mod query;
pub mod reports;
pub mod session;
pub mod slo;
pub mod stream;
pub mod tokens;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A series' labels, `__name__` included, as Prometheus' API writes them.
pub type Metric = BTreeMap<String, String>;

/// Whether a request succeeded, as the envelope says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Error,
}

/// Prometheus' envelope of a successful answer: `{"status": "success", "data": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiResponse<T> {
    pub status: Status,
    pub data: T,
}

impl<T> ApiResponse<T> {
    pub fn success(data: T) -> Self {
        Self {
            status: Status::Success,
            data,
        }
    }
}

/// What kind of failure an error answer reports: Prometheus' `errorType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// The request is wrong (400).
    BadData,
    /// What it names does not exist, or the feature is disabled in the config (404).
    NotFound,
    /// The request contradicts the current state (409).
    Conflict,
    /// No valid token came with the request (401).
    Unauthorized,
    /// The request's token may not make this call (403).
    Forbidden,
    /// The client is over a rate limit and must wait (429, with `Retry-After`).
    RateLimited,
    /// A part of the collector that must answer has stopped (503).
    Unavailable,
    /// The request ran out of time (503).
    Timeout,
    /// The collector failed; its log says why (500).
    Internal,
}

/// Prometheus' error answer: `{"status": "error", "errorType": …, "error": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub status: Status,
    #[serde(rename = "errorType")]
    pub error_type: ErrorType,
    pub error: String,
}

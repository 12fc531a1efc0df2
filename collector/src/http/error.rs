//! The HTTP API's one error type and its one mapping to status codes, in Prometheus' error
//! shape (`{"status":"error","errorType":…,"error":…}`), and the one success envelope. Every
//! handler answers [`ApiError`]; the other modules' errors come in through the `From` impls
//! here. Internal failures are logged (here, or by [`crate::tasks`] for panics) and shown to
//! clients without their details.

use crate::access::{AuthFailure, Permission, Role, TokenError};
use crate::alerting::book::BookError;
use crate::alerting::handle::AlertingError;
use crate::api::{ApiResponse, ErrorResponse, ErrorType, Status};
use crate::ingest::{ForgetError, RemoteWriteError};
use crate::query::QueryError;
use crate::storage::StoreError;
use crate::tasks::Panicked;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A part of the collector that its config can switch off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Alerting,
    Analytics,
    Tls,
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Feature::Alerting => {
                "alerting is disabled in this collector's config ([alerting] enabled = false)"
            }
            Feature::Analytics => {
                "analytics are disabled in this collector's config ([analytics] enabled = false)"
            }
            Feature::Tls => {
                "TLS is off in this collector's config ([tls] enabled = false): there is no CA to enroll agents with"
            }
        })
    }
}

/// A failed API request, named for what failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing parameter {0:?}")]
    MissingParam(&'static str),
    /// A query-string or form parameter that cannot be used.
    #[error("invalid parameter {name:?}: {message}")]
    BadParam { name: &'static str, message: String },
    /// A request refused for the reason given, which names the field at fault (a JSON body, a
    /// remote write).
    #[error("{0}")]
    BadRequest(String),
    /// As Prometheus refuses a range query at too fine a step.
    #[error(
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    )]
    TooManyPoints,
    /// A body in a format or encoding the endpoint does not read (415: a remote-write 2.0
    /// sender may fall back to 1.0).
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotFound(String),
    /// The endpoint's feature is switched off. Answered as "not found", the same for every
    /// endpoint: it will not appear by retrying, as a 503 would suggest to clients.
    #[error("{0}")]
    Disabled(Feature),
    /// The request contradicts the current state (acknowledging a resolved alert, forgetting a
    /// node that streams).
    #[error("{0}")]
    Conflict(String),
    /// A part of the collector the request needs has stopped.
    #[error("{0}")]
    Unavailable(String),
    /// The request ran out of time; `advice` says what to ask for instead.
    #[error("{request} stopped at its time limit of {}s: {advice}", limit.as_secs())]
    Timeout {
        request: &'static str,
        limit: Duration,
        advice: &'static str,
    },
    /// A body over `[server.http] max_body_bytes` (413).
    #[error("request body over the limit of {limit} bytes (`server.http.max_body_bytes`)")]
    BodyTooLarge { limit: usize },
    /// A URL over `[server.http] max_url_bytes` (414).
    #[error(
        "request URL over the limit of {limit} bytes (`server.http.max_url_bytes`); send long parameters in a POST form body instead"
    )]
    UrlTooLong { limit: usize },
    /// Headers over `[server.http] max_header_bytes` (431).
    #[error("request headers over the limit of {limit} bytes (`server.http.max_header_bytes`)")]
    HeadersTooLarge { limit: usize },
    /// Load shed: as many query-type requests as `[server.http] max_concurrent_queries` allows
    /// are in progress. Answered with `Retry-After`.
    #[error(
        "the collector is busy: {limit} query and analysis requests are in progress, the most `server.http.max_concurrent_queries` allows; retry in {}s",
        retry_after.as_secs()
    )]
    Overloaded { limit: usize, retry_after: Duration },
    /// No valid token (401, with `WWW-Authenticate: Bearer`); `data_dir` is the collector's,
    /// where a fresh store's admin token is.
    #[error(
        "not authenticated: {failure}; send Authorization: Bearer <token>; an admin token is in {}/admin.token on the collector's machine",
        data_dir.display()
    )]
    Unauthenticated {
        failure: AuthFailure,
        data_dir: PathBuf,
    },
    /// The token may not make this call (403).
    #[error("this call needs {needed}; the token {name:?} has the {role} role{}", if *write { " and the write scope" } else { " without the write scope" })]
    Forbidden {
        needed: Permission,
        name: String,
        role: Role,
        write: bool,
    },
    /// Too many failed authentications from one address (429, with `Retry-After`).
    #[error(
        "too many failed authentications from {address} ({max} a minute); retry in {}s with a valid token",
        retry_after.as_secs().max(1)
    )]
    TooManyFailures {
        address: IpAddr,
        max: u32,
        retry_after: Duration,
    },
    /// A token over `[auth] write_samples_per_second` (429, with `Retry-After`).
    #[error(
        "this token wrote more than {limit} samples per second (`auth.write_samples_per_second`); retry in {}s",
        retry_after.as_secs().max(1)
    )]
    WriteRateLimited { limit: u64, retry_after: Duration },
    #[error("storage failure")]
    Store(StoreError),
    /// The request's work panicked: logged and counted (`hcmon_collector_task_panics_total`)
    /// under the endpoint's name by [`crate::tasks`], not shown to the client.
    #[error("internal error in {}; the collector's log says why", .0.task)]
    Internal(#[from] Panicked),
}

impl ApiError {
    /// The status code and Prometheus `errorType` of this error: the one mapping.
    pub fn status(&self) -> (StatusCode, ErrorType) {
        match self {
            ApiError::MissingParam(_)
            | ApiError::BadParam { .. }
            | ApiError::BadRequest(_)
            | ApiError::TooManyPoints => (StatusCode::BAD_REQUEST, ErrorType::BadData),
            ApiError::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorType::BadData),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorType::BadData)
            }
            ApiError::UrlTooLong { .. } => (StatusCode::URI_TOO_LONG, ErrorType::BadData),
            ApiError::HeadersTooLarge { .. } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                ErrorType::BadData,
            ),
            ApiError::NotFound(_) | ApiError::Disabled(_) => {
                (StatusCode::NOT_FOUND, ErrorType::NotFound)
            }
            ApiError::Conflict(_) => (StatusCode::CONFLICT, ErrorType::Conflict),
            ApiError::Unavailable(_) | ApiError::Overloaded { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorType::Unavailable)
            }
            // As Prometheus answers a query that ran out of time.
            ApiError::Timeout { .. } => (StatusCode::SERVICE_UNAVAILABLE, ErrorType::Timeout),
            ApiError::Unauthenticated { .. } => (StatusCode::UNAUTHORIZED, ErrorType::Unauthorized),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, ErrorType::Forbidden),
            ApiError::TooManyFailures { .. } | ApiError::WriteRateLimited { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorType::RateLimited)
            }
            ApiError::Store(_) | ApiError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Internal)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Store(error) = &self {
            tracing::error!(%error, "API request failed in storage");
        }
        let (status, error_type) = self.status();
        let retry_after = match &self {
            ApiError::Overloaded { retry_after, .. }
            | ApiError::TooManyFailures { retry_after, .. }
            | ApiError::WriteRateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let unauthenticated = matches!(self, ApiError::Unauthenticated { .. });
        let body = ErrorResponse {
            status: Status::Error,
            error_type,
            error: self.to_string(),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(retry_after) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                retry_after.as_secs().max(1).into(),
            );
        }
        if unauthenticated {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Prometheus' success envelope around `data`.
pub fn success<T: serde::Serialize>(data: T) -> Response {
    axum::Json(ApiResponse::success(data)).into_response()
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Store(e) => ApiError::Store(e),
            QueryError::Unavailable(message) => ApiError::Unavailable(message),
            other => ApiError::BadParam {
                name: "query",
                message: other.to_string(),
            },
        }
    }
}

/// A remote write refused for its content is the sender's fault (4xx: dropped); a storage
/// failure is ours (5xx: the sender retries).
impl From<RemoteWriteError> for ApiError {
    fn from(e: RemoteWriteError) -> Self {
        match e {
            RemoteWriteError::Store(e) => ApiError::Store(e),
            other => ApiError::BadRequest(format!("remote write refused: {other}")),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::BadName(_) => ApiError::BadRequest(e.to_string()),
            TokenError::NameTaken(_) => ApiError::Conflict(e.to_string()),
            TokenError::NoSuchToken(_) => ApiError::NotFound(e.to_string()),
            TokenError::Random(_) => ApiError::Unavailable(e.to_string()),
            TokenError::Store(e) => ApiError::Store(e),
        }
    }
}

impl From<ForgetError> for ApiError {
    fn from(e: ForgetError) -> Self {
        match e {
            ForgetError::Unknown(_) => ApiError::NotFound(e.to_string()),
            ForgetError::Connected(_) => ApiError::Conflict(e.to_string()),
            ForgetError::Store(e) => ApiError::Store(e),
        }
    }
}

impl From<AlertingError> for ApiError {
    fn from(e: AlertingError) -> Self {
        match e {
            AlertingError::Book(e @ (BookError::NoSuchAlert(_) | BookError::NoSuchSilence(_))) => {
                ApiError::NotFound(e.to_string())
            }
            AlertingError::Book(BookError::Refused(why)) => ApiError::Conflict(why),
            AlertingError::Stopped => ApiError::Unavailable(e.to_string()),
            AlertingError::Store(e) => ApiError::Store(e),
            AlertingError::Panicked(p) => ApiError::Internal(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table in ARCHITECTURE.md, "HTTP errors".
    #[test]
    fn every_error_maps_to_one_status_and_error_type() {
        let bad = |m: &str| ApiError::BadRequest(m.into());
        for (error, status, kind, message) in [
            (
                ApiError::MissingParam("query"),
                400,
                "bad_data",
                r#"missing parameter "query""#,
            ),
            (
                ApiError::BadParam {
                    name: "step",
                    message: "too small".into(),
                },
                400,
                "bad_data",
                r#"invalid parameter "step": too small"#,
            ),
            (
                bad("created_by: say who silences"),
                400,
                "bad_data",
                "created_by: say who silences",
            ),
            (
                ApiError::TooManyPoints,
                400,
                "bad_data",
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ),
            (
                ForgetError::Unknown("nas".into()).into(),
                404,
                "not_found",
                r#"no node named "nas" is known"#,
            ),
            (
                AlertingError::Book(BookError::NoSuchAlert("abc".into())).into(),
                404,
                "not_found",
                r#"no alert with id "abc""#,
            ),
            (
                ApiError::Disabled(Feature::Alerting),
                404,
                "not_found",
                "alerting is disabled in this collector's config ([alerting] enabled = false)",
            ),
            (
                ApiError::Disabled(Feature::Analytics),
                404,
                "not_found",
                "analytics are disabled in this collector's config ([analytics] enabled = false)",
            ),
            (
                AlertingError::Book(BookError::Refused("already resolved".into())).into(),
                409,
                "conflict",
                "already resolved",
            ),
            (
                ForgetError::Connected("nas".into()).into(),
                409,
                "conflict",
                "node \"nas\" has an agent streaming right now; stop that agent first, or it would register again at once",
            ),
            (
                AlertingError::Stopped.into(),
                503,
                "unavailable",
                "the alerting service has stopped",
            ),
            (
                ApiError::Timeout {
                    request: "/api/v1/trend",
                    limit: Duration::from_secs(15),
                    advice: "shorten window",
                },
                503,
                "timeout",
                "/api/v1/trend stopped at its time limit of 15s: shorten window",
            ),
            (
                ApiError::BodyTooLarge { limit: 1024 },
                413,
                "bad_data",
                "request body over the limit of 1024 bytes (`server.http.max_body_bytes`)",
            ),
            (
                ApiError::UrlTooLong { limit: 1024 },
                414,
                "bad_data",
                "request URL over the limit of 1024 bytes (`server.http.max_url_bytes`); send long parameters in a POST form body instead",
            ),
            (
                ApiError::HeadersTooLarge { limit: 1024 },
                431,
                "bad_data",
                "request headers over the limit of 1024 bytes (`server.http.max_header_bytes`)",
            ),
            (
                ApiError::Overloaded {
                    limit: 8,
                    retry_after: Duration::from_secs(5),
                },
                503,
                "unavailable",
                "the collector is busy: 8 query and analysis requests are in progress, the most `server.http.max_concurrent_queries` allows; retry in 5s",
            ),
            (
                ApiError::Unauthenticated {
                    failure: AuthFailure::Missing,
                    data_dir: "/var/lib/hcmon".into(),
                },
                401,
                "unauthorized",
                "not authenticated: no token was sent; send Authorization: Bearer <token>; an admin token is in /var/lib/hcmon/admin.token on the collector's machine",
            ),
            (
                ApiError::Forbidden {
                    needed: Permission::Operate,
                    name: "grafana".into(),
                    role: Role::Viewer,
                    write: false,
                },
                403,
                "forbidden",
                "this call needs the operator or admin role; the token \"grafana\" has the viewer role without the write scope",
            ),
            (
                ApiError::TooManyFailures {
                    address: [10, 0, 0, 1].into(),
                    max: 10,
                    retry_after: Duration::from_secs(42),
                },
                429,
                "rate_limited",
                "too many failed authentications from 10.0.0.1 (10 a minute); retry in 42s with a valid token",
            ),
            (
                ApiError::WriteRateLimited {
                    limit: 1000,
                    retry_after: Duration::from_millis(10),
                },
                429,
                "rate_limited",
                "this token wrote more than 1000 samples per second (`auth.write_samples_per_second`); retry in 1s",
            ),
            (
                StoreError::Failed.into(),
                500,
                "internal",
                "storage failure",
            ),
            (
                Panicked {
                    task: "/api/v1/export",
                    message: "a secret path".into(),
                }
                .into(),
                500,
                "internal",
                "internal error in /api/v1/export; the collector's log says why",
            ),
        ] {
            let (code, error_type) = error.status();
            assert_eq!(code.as_u16(), status, "{error}");
            assert_eq!(serde_json::to_value(error_type).unwrap(), kind, "{error}");
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn errors_answer_in_prometheus_shape() {
        let response = ApiError::MissingParam("match[]").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = body_json(response);
        assert_eq!(
            body,
            serde_json::json!({
                "status": "error",
                "errorType": "bad_data",
                "error": "missing parameter \"match[]\"",
            })
        );
    }

    fn body_json(response: Response) -> serde_json::Value {
        let bytes = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }
}

//! `/api/v1/annotations`: marking moments and spans ("deployed v2"), listing them by time, and
//! deleting them (see `before_after/`). Making and deleting need the operator role (`auth.rs`)
//! and are audited (`audit.rs`).

use super::error::{ApiError, success};
use super::params::{MAX_ABS_TIME_S, QueryParams};
use super::{ApiState, blocking};
use crate::access::Identity;
use crate::api::annotations::{self as api, TimeValue};
use crate::before_after::{Annotation, AnnotationStore, BeforeAfterError, NewAnnotation};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/annotations", get(list).post(create))
        .route("/api/v1/annotations/{id}", delete(remove))
}

impl From<BeforeAfterError> for ApiError {
    fn from(e: BeforeAfterError) -> Self {
        match e {
            BeforeAfterError::Invalid(message) => ApiError::BadRequest(message),
            e @ BeforeAfterError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            e @ BeforeAfterError::Random(_) => ApiError::Unavailable(e.to_string()),
            BeforeAfterError::Store(e) => ApiError::Store(e),
        }
    }
}

/// A JSON body's time (Unix seconds, as a number or text, or RFC 3339) in ms, as
/// `params.rs` reads a parameter's; `field` names it in the 400.
pub(super) fn time_ms(field: &str, time: &TimeValue) -> Result<i64, ApiError> {
    let seconds = match time {
        TimeValue::Seconds(s) => Some(*s),
        TimeValue::Text(text) => text.parse::<f64>().ok(),
    };
    let ms = match (seconds, time) {
        (Some(s), _) => {
            (s.is_finite() && s.abs() <= MAX_ABS_TIME_S).then(|| (s * 1000.0).round() as i64)
        }
        (None, TimeValue::Text(text)) => humantime::parse_rfc3339_weak(text)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok()),
        (None, TimeValue::Seconds(_)) => None,
    };
    ms.ok_or_else(|| {
        let shown = match time {
            TimeValue::Seconds(s) => s.to_string(),
            TimeValue::Text(text) => format!("{text:?}"),
        };
        ApiError::BadRequest(format!(
            "{field}: {shown} is neither Unix seconds (within ±3000 years) nor an RFC 3339 time"
        ))
    })
}

fn body(a: Annotation) -> api::Annotation {
    api::Annotation {
        id: a.id,
        time_ms: a.time_ms,
        end_ms: a.end_ms,
        text: a.text,
        tags: a.tags,
        node: a.node,
        created_by: a.created_by,
    }
}

/// `GET /api/v1/annotations[?start=&end=]`: those overlapping the range (everything by
/// default), by time.
async fn list(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams,
) -> Result<Response, ApiError> {
    let start = params.time_ms("start")?.unwrap_or(i64::MIN);
    let end = params.time_ms("end")?.unwrap_or(i64::MAX);
    let tsdb = state.tsdb.clone();
    let listed = blocking("/api/v1/annotations", move || {
        AnnotationStore::new(&tsdb).list(start, end)
    })
    .await??;
    Ok(success(listed.into_iter().map(body).collect::<Vec<_>>()))
}

/// `POST /api/v1/annotations` with `{time, end?, text, tags?, node?}`.
async fn create(
    State(state): State<ApiState>,
    Extension(identity): Extension<Identity>,
    request: Result<Json<api::NewAnnotation>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = request.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let new = NewAnnotation {
        time_ms: time_ms("time", &request.time)?,
        end_ms: request
            .end
            .as_ref()
            .map(|t| time_ms("end", t))
            .transpose()?,
        text: request.text,
        tags: request.tags,
        node: request.node,
    };
    let (tsdb, now) = (state.tsdb.clone(), state.now_ms());
    let made = blocking("/api/v1/annotations", move || {
        AnnotationStore::new(&tsdb).create(new, &identity.name, now)
    })
    .await??;
    Ok(success(body(made)))
}

/// `DELETE /api/v1/annotations/{id}`: the annotation deleted.
async fn remove(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tsdb = state.tsdb.clone();
    let deleted = blocking("/api/v1/annotations", move || {
        AnnotationStore::new(&tsdb).delete(&id)
    })
    .await??;
    Ok(success(body(deleted)))
}

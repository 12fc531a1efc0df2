//! Enrollment tokens, enrolled nodes and revocation (admin): `POST /api/v1/pki/enrollments`,
//! `GET /api/v1/pki/nodes`, `POST /api/v1/pki/nodes/{node}/revoke`, and the CA certificate
//! (`GET /api/v1/pki/ca.crt`) for clients that verify the collector.

use super::error::{ApiError, Feature, success};
use super::{ApiState, blocking};
use crate::api::pki::{EnrolledNode, EnrollmentGrant, NewEnrollment, Revocation};
use crate::pki::registry::Issuance;
use crate::pki::{Enrollment, EnrollmentError};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/pki/enrollments", post(enroll))
        .route("/api/v1/pki/nodes", get(nodes))
        .route("/api/v1/pki/nodes/{node}/revoke", post(revoke))
        .route("/api/v1/pki/ca.crt", get(ca))
}

fn enrollment(state: &ApiState) -> Result<Arc<Enrollment>, ApiError> {
    state
        .enrollment
        .clone()
        .ok_or(ApiError::Disabled(Feature::Tls))
}

impl From<EnrollmentError> for ApiError {
    fn from(error: EnrollmentError) -> Self {
        match error {
            EnrollmentError::BadNodeName(..) => ApiError::BadRequest(error.to_string()),
            EnrollmentError::UnknownNode(_) => ApiError::NotFound(error.to_string()),
            EnrollmentError::Store(error) => ApiError::Store(error),
            // The CA's files or the random source failed: the collector's side, not the
            // caller's, and not something a retry soon is likely to mend.
            other => {
                tracing::error!(error = %other, "enrollment failed");
                ApiError::Unavailable(other.to_string())
            }
        }
    }
}

async fn enroll(
    State(state): State<ApiState>,
    body: Result<Json<NewEnrollment>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let ttl = request
        .ttl
        .as_deref()
        .map(|text| {
            humantime::parse_duration(text)
                .map_err(|e| ApiError::BadRequest(format!("invalid `ttl` {text:?}: {e}")))
        })
        .transpose()?;
    if ttl.is_some_and(|t| t.is_zero()) {
        return Err(ApiError::BadRequest("`ttl` must be longer than 0s".into()));
    }
    let enrollment = enrollment(&state)?;
    let issued = blocking("/api/v1/pki/enrollments", move || {
        enrollment.issue_token(&request.node, ttl)
    })
    .await??;
    Ok(success(EnrollmentGrant {
        node: issued.node,
        token: issued.token.to_string(),
        expires_at_ms: issued.expires_at_ms,
    }))
}

async fn nodes(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let nodes = enrollment(&state)?
        .nodes()
        .into_iter()
        .map(|n| EnrolledNode {
            issuance: match n.latest.issuance {
                Issuance::Enrolled => "enrolled",
                Issuance::Renewed => "renewed",
            }
            .to_owned(),
            node: n.latest.node,
            serial: n.latest.serial,
            issued_at_ms: n.latest.issued_at_ms,
            not_after_ms: n.latest.not_after_ms,
            revoked_at_ms: n.latest.revoked_at_ms,
            certificates: n.certificates,
        })
        .collect::<Vec<_>>();
    Ok(success(nodes))
}

/// Revokes the node's certificates, then cuts off its session and streams at once.
async fn revoke(
    State(state): State<ApiState>,
    Path(node): Path<String>,
) -> Result<Response, ApiError> {
    let enrollment = enrollment(&state)?;
    let name = node.clone();
    let revoked = blocking("/api/v1/pki/nodes/{node}/revoke", move || {
        enrollment.revoke(&name)
    })
    .await??;
    state.ingest.cut_off(&node);
    Ok(success(Revocation { node, revoked }))
}

async fn ca(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let pem = enrollment(&state)?.authority().cert_pem().to_owned();
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}

//! Bodies of the enrollment and revocation endpoints (`/api/v1/pki/...`).

use serde::{Deserialize, Serialize};

/// `POST /api/v1/pki/enrollments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEnrollment {
    /// The node name the token is for; the agent's certificate will carry it.
    pub node: String,
    /// How long the token can be used, e.g. "1h"; the configured default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// The answer: the only time the token's text is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentGrant {
    pub node: String,
    pub token: String,
    pub expires_at_ms: i64,
}

/// A node of `GET /api/v1/pki/nodes`: its newest certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolledNode {
    pub node: String,
    /// Lowercase hex.
    pub serial: String,
    /// "enrolled" or "renewed".
    pub issuance: String,
    pub issued_at_ms: i64,
    pub not_after_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<i64>,
    /// Certificates issued to the node in all.
    pub certificates: usize,
}

/// `POST /api/v1/pki/nodes/{node}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub node: String,
    /// Certificates revoked by this call (0 when they all were already).
    pub revoked: usize,
}

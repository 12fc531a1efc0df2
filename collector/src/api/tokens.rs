//! The token API's bodies (`/api/v1/tokens`, admin only). A token's text appears in one answer
//! only, the one that made it; lists carry neither secrets nor hashes.

use crate::access::Role;
use serde::{Deserialize, Serialize};

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewToken {
    /// Who or what holds it; names it in the audit log.
    pub name: String,
    pub role: Role,
    /// The write scope: may push samples (remote write).
    #[serde(default)]
    pub write: bool,
    /// How long it lives, e.g. `30d`; forever when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

/// The answer to `POST /api/v1/tokens`: the only time the token's text is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub write: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// `hcm_<id>_<secret>`, to send as `Authorization: Bearer <token>`.
    pub token: String,
}

/// One token of `GET /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenSummary {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub write: bool,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `DELETE /api/v1/tokens/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokedToken {
    pub id: String,
    pub name: String,
}

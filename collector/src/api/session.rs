//! A browser's session with the dashboard: who the token is (`GET /api/v1/whoami`), logging in
//! with a form (`POST /api/v1/login`) and out (`POST /api/v1/logout`). The page shows only
//! what the role may do, from [`WhoAmI`].

use crate::access::Role;
use serde::{Deserialize, Serialize};

/// `GET /api/v1/whoami`: the identity of the request's token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The token's name, as the audit log records it.
    pub name: String,
    pub role: Role,
    /// The write scope: may push samples.
    pub write: bool,
}

/// `POST /api/v1/login`'s form body (`application/x-www-form-urlencoded`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginForm {
    pub token: String,
}

/// `POST /api/v1/logout`: whose session the cleared cookie held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedOut {
    pub name: String,
}

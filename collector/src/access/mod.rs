//! API access: bearer tokens with roles, always on and zero-config (a fresh store gets an admin
//! token in `<data dir>/admin.token`). `role.rs` is who may do what, `token.rs` a token's text
//! and hash, `store.rs` the tokens in the store, `throttle.rs` the per-address limit on failed
//! authentications, `write_rate.rs` the per-token write rate. The HTTP side (which call needs
//! what, the answers) is `http/auth.rs`.

mod role;
mod store;
mod throttle;
mod token;
mod write_rate;

pub use role::{Grant, Permission, Role, UnknownRole};
pub use store::{
    ADMIN_TOKEN_FILE, AuthFailure, Identity, NewToken, TokenError, TokenRecord, TokenStore,
};
pub use throttle::{FailureThrottle, MAX_FAILURES};
pub use token::TokenId;
pub use write_rate::WriteLimiter;

use crate::storage::Tsdb;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `[auth]` in the collector's config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Most samples per second one token may remote-write; over it, 429 with `Retry-After`.
    /// 0 means unlimited.
    pub write_samples_per_second: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            write_samples_per_second: 1_000_000,
        }
    }
}

/// Everything the HTTP listener checks requests against.
pub struct AccessControl {
    pub tokens: TokenStore,
    pub failures: FailureThrottle,
    pub writes: WriteLimiter,
    /// Where the admin token of a fresh store was written, for the 401 message.
    pub data_dir: PathBuf,
}

impl AccessControl {
    /// Opens the tokens in `tsdb`'s store, making the admin token when there is none.
    pub fn open(
        tsdb: Arc<Tsdb>,
        data_dir: &Path,
        config: &AuthConfig,
        now_ms: i64,
    ) -> anyhow::Result<Self> {
        let tokens = TokenStore::open(tsdb)?;
        tokens.bootstrap(data_dir, now_ms)?;
        Ok(Self {
            tokens,
            failures: FailureThrottle::default(),
            writes: WriteLimiter::new(config.write_samples_per_second),
            data_dir: data_dir.to_owned(),
        })
    }
}

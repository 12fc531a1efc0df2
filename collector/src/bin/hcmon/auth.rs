//! Which token `hcmon` sends: `--token` / `HCMON_TOKEN`, else the admin token a collector
//! writes beside its data (`<data dir>/admin.token`), so `hcmon` run beside a collector
//! started with no config needs no setup either.

use anyhow::Context;
use http::{HeaderValue, StatusCode};
use std::path::Path;

/// The `Authorization` header every call carries, if there is a token to send.
pub fn bearer(token: Option<&str>, data_dir: &Path) -> anyhow::Result<Option<HeaderValue>> {
    let from_file = data_dir.join("admin.token");
    let token = match token {
        Some(token) => Some(token.trim().to_owned()),
        // No file: calls go without a token, and a refusal says what to do.
        None => std::fs::read_to_string(&from_file)
            .ok()
            .map(|text| text.trim().to_owned()),
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let mut bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .context("the token has characters no HTTP header may carry")?;
    bearer.set_sensitive(true);
    Ok(Some(bearer))
}

/// What to do about a refusal for want of a token or a role.
pub fn advice(status: StatusCode) -> Option<&'static str> {
    match status {
        StatusCode::UNAUTHORIZED => Some(
            "give a token with --token or HCMON_TOKEN, or run hcmon beside the collector with \
             --data-dir (HCMON_DATA_DIR) naming its data folder, where admin.token is",
        ),
        StatusCode::FORBIDDEN => Some(
            "ask an admin for a token with the role this needs: \
             hcmon tokens create --name NAME --role operator|admin [--write]",
        ),
        _ => None,
    }
}

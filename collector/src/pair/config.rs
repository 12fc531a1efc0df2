//! `[pair]`: this collector's half of an HA pair. Both collectors take every agent's batches
//! (the agent names both), so each holds the whole history and runs every engine; only the
//! delivery of notifications is shared out, to one leader at a time.

use hcmon_common::{HttpEndpoint, Secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PairConfig {
    /// This collector's name in the pair; when both start together, the one whose name sorts
    /// first takes the lead. Empty: not in a pair.
    pub member: String,
    /// The other collector's HTTP API, e.g. `https://collector-b.lan:9464`.
    pub peer: String,
    /// An API token of the other collector (any role: the pair's state is read-only), sent as
    /// `Authorization: Bearer …`.
    pub peer_token: Option<Secret>,
    pub peer_token_file: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for the peer's HTTPS, besides the public ones: the
    /// peer's `ca.pem` when its API is served with the collector's own certificate.
    pub ca_file: Option<PathBuf>,
    /// How long the peer may stay silent before this collector takes the lead: its answers come
    /// at least every few seconds, so this is a few missed answers, not one slow one.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How long a follower keeps a notification the leader has not shown as delivered; past it
    /// (with the leader alive) it is left to the leader, which judged differently.
    #[serde(with = "humantime_serde")]
    pub hold: Duration,
}

impl Default for PairConfig {
    fn default() -> Self {
        Self {
            member: String::new(),
            peer: String::new(),
            peer_token: None,
            peer_token_file: None,
            ca_file: None,
            lease: Duration::from_secs(15),
            hold: Duration::from_secs(600),
        }
    }
}

impl PairConfig {
    pub fn enabled(&self) -> bool {
        !self.member.is_empty()
    }

    /// Reads `peer_token_file` into `peer_token`.
    pub fn load_secrets(&mut self) -> Result<(), hcmon_common::secret::SecretError> {
        hcmon_common::secret::resolve(
            "pair.peer_token",
            &mut self.peer_token,
            &mut self.peer_token_file,
            std::fs::read_to_string,
        )
    }

    /// What the types alone cannot check.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return match self.peer.is_empty() {
                true => Ok(()),
                false => Err("`peer` is set but `member` is empty: name this collector".into()),
            };
        }
        if !self
            .member
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "member {:?}: use letters, digits, `_` or `-`",
                self.member
            ));
        }
        HttpEndpoint::parse(&self.peer).map_err(|e| format!("peer: {e}"))?;
        if self.lease < Duration::from_secs(3) {
            return Err(format!(
                "lease {:?} is shorter than the peer's answers may take; use at least 3s",
                self.lease
            ));
        }
        if self.hold < self.lease {
            return Err("hold must be at least the lease".into());
        }
        Ok(())
    }
}

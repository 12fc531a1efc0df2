//! `[[remote_write_out]]`: the destinations every stored sample is forwarded to.

use super::relabel::{Relabel, RelabelRule};
use hcmon_common::{HttpEndpoint, Secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Which remote-write message a destination is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    /// `prometheus.WriteRequest`, which every receiver takes.
    #[default]
    #[serde(rename = "1.0")]
    V1,
    /// `io.prometheus.write.v2.Request` (symbols, type and help per series); a receiver that
    /// answers 415 is sent 1.0 from then on.
    #[serde(rename = "2.0")]
    V2,
}

/// One destination: a Prometheus remote-write receiver (VictoriaMetrics, Mimir, Thanos
/// Receive, Prometheus with its receiver on, another hcmon).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Names the destination's cursor, metrics and logs; keep it when changing the URL, or
    /// the new name starts from what is stored from then on.
    pub name: String,
    /// The receiver's write endpoint, e.g. `http://vminsert:8480/insert/0/prometheus/api/v1/write`.
    pub url: String,
    #[serde(default)]
    pub protocol: Protocol,
    /// Sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for an `https://` receiver besides the public ones: a
    /// company's or a cluster's own CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Most samples in one request.
    #[serde(default = "default_max_samples")]
    pub max_samples_per_send: usize,
    /// Most bytes of stored batches kept for this destination while it is unreachable; past
    /// it the oldest are given up and counted (`reason="backlog_full"`), so an outage cannot
    /// fill the disk.
    #[serde(default = "default_backlog")]
    pub max_backlog_bytes: u64,
    /// Longest wait for one request's answer.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Applied in order to every series before it is sent.
    #[serde(default)]
    pub relabel: Vec<RelabelRule>,
}

fn default_max_samples() -> usize {
    10_000
}

fn default_backlog() -> u64 {
    1 << 30
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl DestinationConfig {
    /// Reads `bearer_token_file` into `bearer_token`.
    pub fn load_secrets(&mut self) -> Result<(), hcmon_common::secret::SecretError> {
        let key = format!("remote_write_out.{}.bearer_token", self.name);
        hcmon_common::secret::resolve(
            &key,
            &mut self.bearer_token,
            &mut self.bearer_token_file,
            std::fs::read_to_string,
        )
    }

    /// What the types alone cannot check; the message names the destination.
    pub fn validate(&self) -> Result<Relabel, String> {
        let named = |problem: String| format!("destination {:?}: {problem}", self.name);
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(named(
                "name must be letters, digits, `_` or `-`, and not empty".into(),
            ));
        }
        HttpEndpoint::parse(&self.url).map_err(|e| named(format!("url: {e}")))?;
        if self.max_samples_per_send == 0 {
            return Err(named("max_samples_per_send must be at least 1".into()));
        }
        if self.timeout < Duration::from_millis(100) {
            return Err(named("timeout must be at least 100ms".into()));
        }
        Relabel::compile(&self.relabel).map_err(named)
    }
}

/// Checks every destination, and that no two share a name.
pub fn validate(destinations: &[DestinationConfig]) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    for destination in destinations {
        destination.validate()?;
        if !names.insert(&destination.name) {
            return Err(format!(
                "two destinations are named {:?}: each needs its own cursor",
                destination.name
            ));
        }
    }
    Ok(())
}

//! TCP check: whether a port accepts connections, and how long the connect takes.

use super::runner::{Check, Samples, Target};
use super::{
    ProbeConfigError, ProbeError, Reason, connect, default_timeout, validate_address,
    validate_name, validate_timeout,
};
use crate::collect::Metric;
use serde::Deserialize;
use std::time::{Duration, Instant};

const CONNECT_DURATION: Metric = Metric::gauge(
    "tcp_check_connect_duration_seconds",
    "Time to open the TCP connection (name resolution included); absent when it failed.",
)
.with_decimals(6);

/// One TCP port that should accept connections, `[[probes.tcp]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCheckConfig {
    /// `host:port` to connect to (`[v6]:port` for IPv6 literals).
    pub address: String,
    /// The `name` label of this check's series; defaults to `address`.
    #[serde(default)]
    pub name: Option<String>,
    /// Time the connect may take before it counts as a failure with reason `timeout`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl TcpCheckConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ProbeConfigError> {
        validate_address(key, &self.address)?;
        validate_name(key, self.name.as_deref())?;
        validate_timeout(key, self.timeout)
    }
}

impl Check for TcpCheckConfig {
    const KIND: &'static str = "tcp";
    const UP: Metric = Metric::gauge(
        "tcp_check_up",
        "1 when the last TCP check connected within its timeout, else 0.",
    );

    fn target(&self) -> Target {
        Target::new(&self.address, self.name.as_deref())
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn reasons(&self) -> Vec<Reason> {
        vec![Reason::Connect, Reason::Timeout]
    }

    async fn check(&self, samples: &mut Samples) -> Result<(), ProbeError> {
        let started = Instant::now();
        let stream = connect(&self.address).await?;
        samples.push(CONNECT_DURATION, started.elapsed().as_secs_f64());
        drop(stream);
        Ok(())
    }
}

//! TCP check: whether a port accepts connections, and how long the connect takes.

use super::{
    Health, ProbeError, Reason, Samples, Target, connect, default_timeout, validate_address,
    validate_name, validate_timeout, within,
};
use crate::collect::Metric;
use serde::Deserialize;
use std::time::{Duration, Instant};

pub(super) const UP: Metric = Metric::gauge(
    "tcp_check_up",
    "1 when the last TCP check connected within its timeout, else 0.",
);
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
    pub(super) fn validate(&self, key: &str) -> Result<(), String> {
        validate_address(key, &self.address)?;
        validate_name(key, self.name.as_deref())?;
        validate_timeout(key, self.timeout)
    }
}

pub(super) struct TcpCheck {
    config: TcpCheckConfig,
    target: Target,
    health: Health,
}

impl TcpCheck {
    pub(super) fn new(config: TcpCheckConfig) -> Self {
        Self {
            target: Target::new(&config.address, config.name.as_deref()),
            health: Health::new("tcp", &[Reason::Connect, Reason::Timeout]),
            config,
        }
    }

    pub(super) async fn run(&mut self) -> Samples {
        let mut samples = Samples::new(self.target.clone());
        let outcome = within(
            self.config.timeout,
            check(&self.config.address, &mut samples),
        )
        .await;
        self.health.finish(outcome, UP, &mut samples);
        samples
    }
}

async fn check(address: &str, samples: &mut Samples) -> Result<(), ProbeError> {
    let started = Instant::now();
    let stream = connect(address).await?;
    samples.push(CONNECT_DURATION, started.elapsed().as_secs_f64());
    drop(stream);
    Ok(())
}

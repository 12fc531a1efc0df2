//! The collector's configuration file. Every field has a default, so no file is needed to start.

use crate::alerting::config::AlertingConfig;
use crate::anomaly_watch::AnalyticsConfig;
use crate::storage::StorageConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `hcmon-collector.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// Folder of the embedded RocksDB store; created when missing.
    pub data_dir: PathBuf,
    /// Address the agents' gRPC ingest listens on.
    pub grpc_listen: SocketAddr,
    /// Address of `/metrics`, `/healthz` and the HTTP API.
    pub http_listen: SocketAddr,
    /// Shared secret agents must present at registration; empty means none is required.
    pub agent_token: String,
    /// Series whose latest sample is older than this are left out of `/metrics`, so a dead
    /// node's values do not look alive.
    #[serde(with = "humantime_serde")]
    pub metrics_staleness: Duration,
    /// Limits enforced on every batch.
    pub limits: IngestLimits,
    /// Storage engine: chunks, out-of-order window, checkpoints, retention.
    pub storage: StorageConfig,
    /// Live anomaly detection on every stored sample.
    pub analytics: AnalyticsConfig,
    /// Alert rules, notification policy, escalation and delivery channels.
    pub alerting: AlertingConfig,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("hcmon-data/collector"),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 4317)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            agent_token: String::new(),
            metrics_staleness: Duration::from_secs(15 * 60),
            limits: IngestLimits::default(),
            storage: StorageConfig::default(),
            analytics: AnalyticsConfig::default(),
            alerting: AlertingConfig::default(),
        }
    }
}

/// Limits on what one agent may send; breaking one refuses the batch with a gRPC status.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestLimits {
    /// Largest encoded batch, in bytes.
    pub max_batch_bytes: usize,
    /// Most samples in one batch.
    pub max_samples_per_batch: usize,
    /// Most series one agent may define on one stream.
    pub max_series_per_agent: usize,
    /// Most labels on a series, `node` and the metric name included.
    pub max_labels_per_series: usize,
    /// Longest label value, in bytes.
    pub max_label_value_len: usize,
    /// How far ahead of the collector's clock a sample may be.
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// How far behind the collector's clock a sample may be (spooled back-fill included).
    #[serde(with = "humantime_serde")]
    pub max_sample_age: Duration,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_batch_bytes: 4 << 20,
            max_samples_per_batch: 100_000,
            max_series_per_agent: 50_000,
            max_labels_per_series: 32,
            max_label_value_len: 1024,
            max_future_skew: Duration::from_secs(10 * 60),
            max_sample_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid `{key}`: {problem}")]
    Invalid { key: &'static str, problem: String },
    #[error("invalid `{key}`: {problem}")]
    InvalidAt { key: String, problem: String },
}

impl CollectorConfig {
    /// Reads a TOML file; unknown keys and bad values are errors naming the key.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Checks values the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.analytics
            .anomaly
            .validate()
            .map_err(|problem| ConfigError::Invalid {
                key: "analytics.anomaly",
                problem,
            })?;
        self.analytics
            .forest
            .validate()
            .map_err(|e| ConfigError::Invalid {
                key: "analytics.forest",
                problem: e.to_string(),
            })?;
        self.alerting
            .validate()
            .map_err(|(key, problem)| ConfigError::InvalidAt { key, problem })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_matches_defaults_it_documents() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/hcmon-collector.toml");
        let config = CollectorConfig::from_file(&path).unwrap();
        let expected = CollectorConfig {
            data_dir: PathBuf::from("/var/lib/hcmon-collector"),
            grpc_listen: "0.0.0.0:4317".parse().unwrap(),
            http_listen: "0.0.0.0:9464".parse().unwrap(),
            ..CollectorConfig::default()
        };
        assert_eq!(config, expected);
    }

    #[test]
    fn unknown_and_bad_keys_are_named() {
        let err = toml::from_str::<CollectorConfig>("grpc_lisen = \"x\"").unwrap_err();
        assert!(err.to_string().contains("grpc_lisen"), "{err}");
        let err =
            toml::from_str::<CollectorConfig>("[limits]\nmax_future_skew = \"soon\"").unwrap_err();
        assert!(err.to_string().contains("max_future_skew"), "{err}");
    }
}

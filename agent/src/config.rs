//! The agent's configuration file. Every field has a default, so no file is needed to start.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `hcmon-agent.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// gRPC URL of the collector, `http://host:port`.
    pub collector: String,
    /// This node's name, the `node` label of every series; empty means the host name.
    pub node_name: String,
    /// Folder where batches wait until the collector acknowledges them.
    pub spool_dir: PathBuf,
    /// Shared secret, when the collector requires one.
    pub token: String,
    /// How often the basic tier (CPU, memory, disks, network, load) is collected.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            collector: "http://127.0.0.1:4317".into(),
            node_name: String::new(),
            spool_dir: PathBuf::from("hcmon-data/agent-spool"),
            token: String::new(),
            interval: Duration::from_secs(10),
        }
    }
}

/// A configuration that cannot be used, naming the key and the expected form.
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
}

impl AgentConfig {
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
        let scheme_ok =
            self.collector.starts_with("http://") || self.collector.starts_with("https://");
        if !scheme_ok || self.collector.parse::<tonic::transport::Uri>().is_err() {
            return Err(ConfigError::Invalid {
                key: "collector",
                problem: format!(
                    "{:?} is not a URL like http://collector:4317",
                    self.collector
                ),
            });
        }
        if self.interval < Duration::from_millis(100) {
            return Err(ConfigError::Invalid {
                key: "interval",
                problem: format!(
                    "{:?} is too short; use a duration of at least 100ms, e.g. \"10s\"",
                    self.interval
                ),
            });
        }
        if self.node_name.chars().any(char::is_control) || self.node_name.len() > 253 {
            return Err(ConfigError::Invalid {
                key: "node_name",
                problem: "use 1-253 printable characters".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_is_the_documented_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/hcmon-agent.toml");
        let config = AgentConfig::from_file(&path).unwrap();
        let expected = AgentConfig {
            spool_dir: PathBuf::from("/var/lib/hcmon-agent/spool"),
            ..AgentConfig::default()
        };
        assert_eq!(config, expected);
        config.validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = toml::from_str::<AgentConfig>("intervl = \"1s\"").unwrap_err();
        assert!(err.to_string().contains("intervl"), "{err}");
        let err = toml::from_str::<AgentConfig>("interval = \"often\"").unwrap_err();
        assert!(err.to_string().contains("interval"), "{err}");
        let config = AgentConfig {
            collector: "collector:4317".into(),
            ..AgentConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("`collector`")
        );
    }
}

//! The agent's configuration file. Every field has a default, so no file is needed to start.

use crate::apps::AppsConfig;
use crate::probe::{ProbeConfigError, ProbesConfig};
use hcmon_common::enrollment::EnrollmentToken;
use hcmon_common::secret::{self, Secret, SecretError};
use hcmon_proto::v1::MAX_HOST_FACT_BYTES;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `hcmon-agent.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// gRPC URL of the collector: `https://host:port` (mutual TLS, after enrollment) or
    /// `http://host:port` (plaintext, for a collector on the same machine). A list of two (an
    /// HA pair) sends every batch to each, with a cursor of its own in the spool.
    #[serde(deserialize_with = "one_or_many")]
    pub collector: Vec<String>,
    /// This node's name, the `node` label of every series; empty means the host name.
    pub node_name: String,
    /// The `job` label of every series, as Prometheus labels what it scrapes (node_exporter's
    /// is usually `node`). Sent once with the registration; the collector adds it.
    pub job: String,
    /// The `instance` label of every series; empty means the node name.
    pub instance: String,
    /// Folder where batches wait until the collector acknowledges them.
    pub spool_dir: PathBuf,
    /// Shared secret, when the collector requires one.
    pub token: Secret,
    /// A file holding `token` (one trailing newline trimmed), instead of the key itself.
    pub token_file: Option<PathBuf>,
    /// Where this node's key, certificate and the collector's CA certificate are kept (mode
    /// 0700), for an `https://` collector.
    pub identity_dir: PathBuf,
    /// A CA certificate (PEM) to trust for the collector instead of the one received at
    /// enrollment.
    pub ca_file: Option<PathBuf>,
    /// The one-time token from `hcmon enroll <node>`, needed only while the node has no
    /// certificate yet; ignored afterwards.
    pub enroll_token: Secret,
    /// A file holding `enroll_token`, instead of the key itself.
    pub enroll_token_file: Option<PathBuf>,
    /// How often the basic tier (CPU, memory, disks, network, load) is collected.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How often the detailed tier (CPU modes, disk IO, TCP states, interfaces, users,
    /// processes) is collected.
    #[serde(with = "humantime_serde")]
    pub detailed_interval: Duration,
    /// How often the extended tier (top processes, systemd units, sensors, battery) is collected.
    #[serde(with = "humantime_serde")]
    pub extended_interval: Duration,
    /// How often the application probes (`[[probes.*]]`) run.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
    /// Most bytes the spool keeps while the collector is unreachable; beyond it the oldest
    /// batches are dropped (and counted in `hcmon_agent_spool_dropped_batches_total`).
    pub spool_max_bytes: u64,
    /// Application probes: Redis, memcached, HTTP and TCP checks.
    pub probes: ProbesConfig,
    /// Applications' own metrics: StatsD and OTLP listeners on loopback.
    pub apps: AppsConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            collector: vec!["http://127.0.0.1:4317".into()],
            node_name: String::new(),
            job: "node".into(),
            instance: String::new(),
            spool_dir: PathBuf::from("hcmon-data/agent-spool"),
            token: Secret::default(),
            token_file: None,
            identity_dir: PathBuf::from("hcmon-data/agent-identity"),
            ca_file: None,
            enroll_token: Secret::default(),
            enroll_token_file: None,
            interval: Duration::from_secs(10),
            detailed_interval: Duration::from_secs(60),
            extended_interval: Duration::from_secs(300),
            probe_interval: Duration::from_secs(10),
            spool_max_bytes: 256 << 20,
            probes: ProbesConfig::default(),
            apps: AppsConfig::default(),
        }
    }
}

fn is_tls(url: &str) -> bool {
    url.starts_with("https://")
}

/// `collector = "url"` or `collector = ["url", "url"]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(url)) => Ok(vec![url]),
        Ok(OneOrMany::Many(urls)) => Ok(urls),
        Err(_) => Err(serde::de::Error::custom(
            "expected a URL string, or a list of URL strings for an HA pair",
        )),
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
    #[error("invalid `probes`: {0}")]
    Probes(ProbeConfigError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl AgentConfig {
    /// Reads a TOML file and the secret file it names; unknown keys and bad values are errors
    /// naming the key.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Self = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        config.load_secrets()?;
        Ok(config)
    }

    /// Reads `token_file` into `token` and `enroll_token_file` into `enroll_token` (see
    /// [`hcmon_common::secret`]).
    fn load_secrets(&mut self) -> Result<(), SecretError> {
        secret::resolve_empty_as_unset(
            "token",
            &mut self.token,
            &mut self.token_file,
            std::fs::read_to_string,
        )?;
        secret::resolve_empty_as_unset(
            "enroll_token",
            &mut self.enroll_token,
            &mut self.enroll_token_file,
            std::fs::read_to_string,
        )
    }

    /// Whether any collector is reached over TLS.
    pub fn uses_tls(&self) -> bool {
        self.collector.iter().any(|url| is_tls(url))
    }

    /// The parsed `enroll_token`, if one is set.
    pub fn enrollment_token(&self) -> Result<Option<EnrollmentToken>, ConfigError> {
        if self.enroll_token.is_empty() {
            return Ok(None);
        }
        EnrollmentToken::parse(self.enroll_token.expose())
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                key: "enroll_token",
                problem: format!("the enrollment token {e}"),
            })
    }

    /// Checks values the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.collector.is_empty() {
            return Err(ConfigError::Invalid {
                key: "collector",
                problem: "no collector is named; give one URL, like \"https://collector.lan:4317\", or a list of two for an HA pair".into(),
            });
        }
        for (i, url) in self.collector.iter().enumerate() {
            let uri = url.parse::<tonic::transport::Uri>();
            if !(is_tls(url) || url.starts_with("http://"))
                || uri.as_ref().map_or(true, |uri| uri.host().is_none())
            {
                return Err(ConfigError::Invalid {
                    key: "collector",
                    problem: format!(
                        "{url:?} is not a URL like https://collector.lan:4317 (or http://127.0.0.1:4317)"
                    ),
                });
            }
            if self.collector[..i].contains(url) {
                return Err(ConfigError::Invalid {
                    key: "collector",
                    problem: format!("{url:?} is named twice; each collector is listed once"),
                });
            }
        }
        self.enrollment_token()?;
        let intervals = [
            ("interval", self.interval),
            ("detailed_interval", self.detailed_interval),
            ("extended_interval", self.extended_interval),
            ("probe_interval", self.probe_interval),
        ];
        for (key, interval) in intervals {
            if interval < Duration::from_millis(100) {
                return Err(ConfigError::Invalid {
                    key,
                    problem: format!(
                        "{interval:?} is too short; use a duration of at least 100ms, e.g. \"10s\""
                    ),
                });
            }
        }
        if self.spool_max_bytes < 1 << 20 {
            return Err(ConfigError::Invalid {
                key: "spool_max_bytes",
                problem: format!(
                    "{} bytes cannot hold a useful backlog; use at least 1048576 (1 MiB)",
                    self.spool_max_bytes
                ),
            });
        }
        self.probes.validate().map_err(ConfigError::Probes)?;
        self.apps
            .validate()
            .map_err(|(key, problem)| ConfigError::Invalid { key, problem })?;
        // The collector's rule for these labels, checked here so a bad value fails at start.
        for (key, value) in [("job", &self.job), ("instance", &self.instance)] {
            let problem = if value.len() > MAX_HOST_FACT_BYTES {
                format!(
                    "is {} bytes, over the limit of {MAX_HOST_FACT_BYTES}",
                    value.len()
                )
            } else if value.chars().any(char::is_control) {
                format!("{value:?} holds a control character")
            } else {
                continue;
            };
            return Err(ConfigError::Invalid { key, problem });
        }
        // Empty means "this host's name". Anything else is checked here by the collector's own
        // rule, so a bad name fails at start instead of at every registration.
        if !self.node_name.is_empty()
            && let Err(problem) = hcmon_proto::v1::check_node_name(&self.node_name)
        {
            return Err(ConfigError::Invalid {
                key: "node_name",
                problem: format!("{:?} {problem}", self.node_name),
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
            identity_dir: PathBuf::from("/var/lib/hcmon-agent/identity"),
            ..AgentConfig::default()
        };
        assert_eq!(config, expected);
        config.validate().unwrap();
    }

    #[test]
    fn documented_probe_examples_load_and_match_the_commented_blocks() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
        let config = AgentConfig::from_file(&deploy.join("examples/agent-probes.toml")).unwrap();
        config.validate().unwrap();
        let p = &config.probes;
        assert_eq!(
            (p.redis.len(), p.memcached.len(), p.http.len(), p.tcp.len()),
            (1, 1, 1, 1)
        );
        assert_eq!(p.http[0].expect_status, Some(200));
        // The main example carries the same blocks, commented out.
        let main = std::fs::read_to_string(deploy.join("hcmon-agent.toml")).unwrap();
        let examples = std::fs::read_to_string(deploy.join("examples/agent-probes.toml")).unwrap();
        let uncommented: Vec<&str> = main
            .lines()
            .skip_while(|l| !l.starts_with("# [[probes.redis]]"))
            .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
            .collect();
        let blocks: Vec<&str> = examples
            .lines()
            .skip_while(|l| !l.starts_with("[[probes.redis]]"))
            .collect();
        assert_eq!(uncommented, blocks);
    }

    #[test]
    fn the_token_can_come_from_a_file_but_not_from_both() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        let load = |text: String| {
            let path = dir.path().join("hcmon-agent.toml");
            std::fs::write(&path, text).unwrap();
            AgentConfig::from_file(&path)
        };
        let config = load(format!("token_file = {token:?}")).unwrap();
        assert_eq!(
            (config.token.expose(), &config.token_file),
            ("s3cret", &None)
        );
        assert!(!format!("{config:?}").contains("s3cret"));
        let err = load(format!("token = \"t\"\ntoken_file = {token:?}")).unwrap_err();
        assert!(
            err.to_string().contains("`token` and `token_file`"),
            "{err}"
        );
        let missing = dir.path().join("gone");
        let err = load(format!("token_file = {missing:?}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`token_file`") && err.contains(&missing.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = toml::from_str::<AgentConfig>("intervl = \"1s\"").unwrap_err();
        assert!(err.to_string().contains("intervl"), "{err}");
        let err = toml::from_str::<AgentConfig>("interval = \"often\"").unwrap_err();
        assert!(err.to_string().contains("interval"), "{err}");
        let config = AgentConfig {
            collector: vec!["collector:4317".into()],
            ..AgentConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("`collector`")
        );
        for bad in ["web/1", "..", "a b", "-x"] {
            let config = AgentConfig {
                node_name: bad.into(),
                ..AgentConfig::default()
            };
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("`node_name`"), "{bad}: {err}");
        }
        let config = AgentConfig {
            collector: vec!["https://collector:4317".into()],
            ..AgentConfig::default()
        };
        config.validate().unwrap();
        let pair: AgentConfig =
            toml::from_str("collector = [\"https://a:4317\", \"https://b:4317\"]").unwrap();
        pair.validate().unwrap();
        assert_eq!(pair.collector.len(), 2);
        for (text, expected) in [
            ("collector = []", "no collector is named"),
            (
                "collector = [\"https://a:4317\", \"https://a:4317\"]",
                "named twice",
            ),
        ] {
            let config: AgentConfig = toml::from_str(text).unwrap();
            let err = config.validate().unwrap_err().to_string();
            assert!(
                err.contains("`collector`") && err.contains(expected),
                "{err}"
            );
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ha-pair/agent.toml");
        let example = AgentConfig::from_file(&path).unwrap();
        example.validate().unwrap();
        assert_eq!(example.collector.len(), 2);
        let err = toml::from_str::<AgentConfig>("collector = 4317").unwrap_err();
        assert!(err.to_string().contains("a list of URL strings"), "{err}");
        let config = AgentConfig {
            enroll_token: Secret::new("hce1.abc"),
            ..AgentConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("`enroll_token`") && err.contains("CA pin") && !err.contains("abc"),
            "{err}"
        );
        let config = AgentConfig {
            detailed_interval: Duration::from_millis(10),
            ..AgentConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("`detailed_interval`"), "{err}");
        let config = AgentConfig {
            instance: "web1\n".into(),
            ..AgentConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("`instance`") && err.contains("control"),
            "{err}"
        );
        let err = toml::from_str::<AgentConfig>("spool_max_bytes = \"lots\"").unwrap_err();
        assert!(err.to_string().contains("spool_max_bytes"), "{err}");
        let config = AgentConfig {
            spool_max_bytes: 1000,
            ..AgentConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("`spool_max_bytes`"), "{err}");
        let err = toml::from_str::<AgentConfig>("[[probes.redis]]\nadress = \"x\"").unwrap_err();
        assert!(err.to_string().contains("adress"), "{err}");
        let config: AgentConfig = toml::from_str("[[probes.tcp]]\naddress = \"nowhere\"").unwrap();
        let err = config.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `probes`: probes.tcp[0].address: \"nowhere\" is not host:port"
        );
        assert!(
            matches!(&err, ConfigError::Probes(ProbeConfigError::Address { key, .. }) if key == "probes.tcp[0]"),
            "{err:?}"
        );
    }
}

//! The collector's configuration file. Every field has a default, so no file is needed to start.

use crate::access::AuthConfig;
use crate::alerting::config::AlertingConfig;
use crate::anomaly_watch::AnalyticsConfig;
use crate::forward::DestinationConfig;
use crate::http::HttpLimits;
use crate::ingest::IngestLimits;
use crate::ingest::grpc::GrpcLimits;
use crate::pki::TlsConfig;
use crate::quality::QualityConfig;
use crate::recorded::RecordedConfig;
use crate::report::config::ReportsConfig;
use crate::self_tracing::TracesConfig;
use crate::slo::SloConfig;
use crate::storage::StorageConfig;
use hcmon_common::secret::{self, Secret, SecretError};
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
    pub agent_token: Secret,
    /// A file holding `agent_token` (one trailing newline trimmed), instead of the key itself.
    pub agent_token_file: Option<PathBuf>,
    /// Series whose latest sample is older than this are left out of `/metrics`, so a dead
    /// node's values do not look alive.
    #[serde(with = "humantime_serde")]
    pub metrics_staleness: Duration,
    /// A node with no batch, registration or open stream for this long is forgotten: its
    /// record and its missing-data alerts go, its series stay. "0s" keeps every node forever.
    #[serde(with = "humantime_serde")]
    pub forget_nodes_after: Duration,
    /// Limits enforced on every batch, and the caps on agent streams.
    pub limits: IngestLimits,
    /// Limits of the two listeners, and whether they may go without TLS on a network.
    pub server: ServerConfig,
    /// TLS on both listeners, agent certificates and enrollment.
    pub tls: TlsConfig,
    /// Storage engine: chunks, out-of-order window, checkpoints, retention.
    pub storage: StorageConfig,
    /// Live anomaly detection on every stored sample.
    pub analytics: AnalyticsConfig,
    /// Alert rules, notification policy, escalation and delivery channels.
    pub alerting: AlertingConfig,
    /// API access: per-token write rate.
    pub auth: AuthConfig,
    /// The series the collector writes about itself: `up`, `ALERTS`, anomaly verdicts.
    pub recorded: RecordedConfig,
    /// Service level objectives: time zone, defaults, declared objectives, maintenance.
    pub slo: SloConfig,
    /// Scheduled SLA reports: which are made, who gets them by email, how many are kept.
    pub reports: ReportsConfig,
    /// Data-quality scores: whether, over what window, how often.
    pub quality: QualityConfig,
    /// The collector's own traces, exported over OTLP when an endpoint is set.
    pub traces: TracesConfig,
    /// Prometheus remote-write receivers every stored sample is forwarded to.
    pub remote_write_out: Vec<DestinationConfig>,
    /// `[pair]`: this collector's half of an HA pair (one leader delivers notifications).
    pub pair: crate::pair::config::PairConfig,
    /// `[history]`: a Prometheus-compatible query API the on-demand engines read before this
    /// collector's oldest sample (trend, correlation, related series).
    pub history: crate::analysis::history::HistoryConfig,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("hcmon-data/collector"),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 4317)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            agent_token: Secret::default(),
            agent_token_file: None,
            metrics_staleness: Duration::from_secs(15 * 60),
            forget_nodes_after: Duration::from_secs(7 * 24 * 3600),
            limits: IngestLimits::default(),
            server: ServerConfig::default(),
            tls: TlsConfig::default(),
            storage: StorageConfig::default(),
            analytics: AnalyticsConfig::default(),
            alerting: AlertingConfig::default(),
            auth: AuthConfig::default(),
            recorded: RecordedConfig::default(),
            slo: SloConfig::default(),
            reports: ReportsConfig::default(),
            quality: QualityConfig::default(),
            traces: TracesConfig::default(),
            remote_write_out: Vec::new(),
            pair: Default::default(),
            history: Default::default(),
        }
    }
}

/// `[server]`: the listeners' limits.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Lets the listeners serve plaintext on addresses other than loopback: anyone on the
    /// network can then read the traffic and take over a node's name. Only for a network you
    /// trust completely (or a TLS-terminating proxy); a warning is logged at every start.
    pub insecure_plaintext_on_network: bool,
    /// `[server.http]`: sizes, query time and concurrency, slow clients.
    pub http: HttpLimits,
    /// `[server.grpc]`: calls per connection, keepalive.
    pub grpc: GrpcLimits,
}

/// Limits of zero would refuse everything (or, for the header timeout, every connection).
fn validate_server(server: &ServerConfig) -> Result<(), ConfigError> {
    let http = &server.http;
    // Below these, ordinary requests and browsers' headers do not fit.
    count_at_least("server.http.max_body_bytes", http.max_body_bytes, 1024)?;
    count_at_least("server.http.max_header_bytes", http.max_header_bytes, 1024)?;
    count_at_least("server.http.max_url_bytes", http.max_url_bytes, 256)?;
    count_at_least(
        "server.http.max_concurrent_queries",
        http.max_concurrent_queries,
        1,
    )?;
    let second = Duration::from_secs(1);
    at_least("server.http.query_timeout", http.query_timeout, second)?;
    at_least("server.http.retry_after", http.retry_after, second)?;
    at_least(
        "server.http.header_read_timeout",
        http.header_read_timeout,
        second,
    )?;
    let grpc = &server.grpc;
    // An agent needs two calls on its connection: register, then its stream.
    count_at_least(
        "server.grpc.max_concurrent_streams",
        grpc.max_concurrent_streams as usize,
        2,
    )?;
    count_at_least(
        "server.grpc.concurrency_limit_per_connection",
        grpc.concurrency_limit_per_connection,
        2,
    )?;
    at_least(
        "server.grpc.keepalive_interval",
        grpc.keepalive_interval,
        second,
    )?;
    count_at_least("server.grpc.max_connections", grpc.max_connections, 1)?;
    count_at_least(
        "server.grpc.max_connections_per_address",
        grpc.max_connections_per_address,
        1,
    )?;
    at_least(
        "server.grpc.keepalive_timeout",
        grpc.keepalive_timeout,
        second,
    )
}

/// Most samples `[limits] max_samples_per_batch` may allow in one batch.
const MAX_SAMPLES_PER_BATCH: usize = 10_000_000;

/// Most back-fill lanes `[limits] backfill_stores` may ask for.
const MAX_BACKFILL_STORES: usize = 1024;

/// Every limit must let at least one real batch through.
fn validate_limits(limits: &IngestLimits) -> Result<(), ConfigError> {
    // A batch's framing alone takes some bytes; below 1 KiB nothing useful fits.
    count_at_least("limits.max_batch_bytes", limits.max_batch_bytes, 1024)?;
    count_at_least(
        "limits.max_samples_per_batch",
        limits.max_samples_per_batch,
        1,
    )?;
    // A batch is one log record, and the log refuses records over 1 GiB (at most 28 bytes a
    // sample): a refusal there, after the head took the batch, would fail the store.
    count_at_most(
        "limits.max_samples_per_batch",
        limits.max_samples_per_batch,
        MAX_SAMPLES_PER_BATCH,
        "",
    )?;
    count_at_least(
        "limits.max_series_per_agent",
        limits.max_series_per_agent,
        1,
    )?;
    count_at_least("limits.max_series", limits.max_series, 1)?;
    // More lanes than any machine has cores would be no limit at all (0 is one per core).
    count_at_most(
        "limits.backfill_stores",
        limits.backfill_stores,
        MAX_BACKFILL_STORES,
        " (0 is one per core)",
    )?;
    // The metric name and `node` are labels too.
    count_at_least(
        "limits.max_labels_per_series",
        limits.max_labels_per_series,
        2,
    )?;
    count_at_least("limits.max_label_name_len", limits.max_label_name_len, 1)?;
    count_at_least("limits.max_label_value_len", limits.max_label_value_len, 1)?;
    count_at_least("limits.max_metric_name_len", limits.max_metric_name_len, 1)?;
    count_at_least("limits.max_help_len", limits.max_help_len, 1)?;
    count_at_least(
        "limits.max_streams_per_node",
        limits.max_streams_per_node,
        1,
    )?;
    count_at_least("limits.max_streams", limits.max_streams, 1)?;
    at_least(
        "limits.max_sample_age",
        limits.max_sample_age,
        Duration::from_secs(60),
    )
}

/// Storage values that would leave the store without checkpoints, chunks or raw data.
fn validate_storage(storage: &StorageConfig) -> Result<(), ConfigError> {
    count_at_least("storage.max_chunk_samples", storage.max_chunk_samples, 2)?;
    at_least(
        "storage.max_chunk_span",
        storage.max_chunk_span,
        Duration::from_secs(60),
    )?;
    at_least(
        "storage.checkpoint_interval",
        storage.checkpoint_interval,
        Duration::from_secs(1),
    )?;
    let retention = &storage.retention;
    // Raw samples must outlive the out-of-order window, or a late sample would be accepted into
    // a range retention is already deleting.
    let raw_floor = storage.out_of_order_window.max(Duration::from_secs(3600));
    at_least("storage.retention.raw", retention.raw, raw_floor)?;
    for (key, kept) in [
        ("storage.retention.rollup_1m", retention.rollup_1m),
        ("storage.retention.rollup_5m", retention.rollup_5m),
        ("storage.retention.rollup_1h", retention.rollup_1h),
    ] {
        at_least(key, kept, Duration::from_secs(3600))?;
    }
    Ok(())
}

/// Intervals of zero would make the writers' timers panic.
fn validate_recorded(recorded: &RecordedConfig) -> Result<(), ConfigError> {
    let floor = Duration::from_millis(100);
    at_least("recorded.up_interval", recorded.up_interval, floor)?;
    at_least("recorded.silent_after", recorded.silent_after, floor)?;
    at_least(
        "recorded.anomaly_interval",
        recorded.anomaly_interval,
        floor,
    )
}

fn at_least(key: &'static str, value: Duration, floor: Duration) -> Result<(), ConfigError> {
    if value >= floor {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        key,
        problem: format!(
            "{} is too short; it must be at least {}",
            humantime::format_duration(value),
            humantime::format_duration(floor)
        ),
    })
}

fn count_at_least(key: &'static str, value: usize, floor: usize) -> Result<(), ConfigError> {
    if value >= floor {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        key,
        problem: format!("{value} is too small; it must be at least {floor}"),
    })
}

/// `hint` follows the ceiling in the message, e.g. what 0 means.
fn count_at_most(
    key: &'static str,
    value: usize,
    ceiling: usize,
    hint: &str,
) -> Result<(), ConfigError> {
    if value <= ceiling {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        key,
        problem: format!("{value} is too large; it must be at most {ceiling}{hint}"),
    })
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
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl CollectorConfig {
    /// Listeners on an address other than loopback, when TLS is off.
    pub fn plaintext_on_network(&self) -> Vec<SocketAddr> {
        if self.tls.enabled {
            return Vec::new();
        }
        [self.grpc_listen, self.http_listen]
            .into_iter()
            .filter(|a| !a.ip().is_loopback())
            .collect()
    }

    /// Secure by default: no plaintext listener on a network unless the loud option says so.
    fn validate_exposure(&self) -> Result<(), ConfigError> {
        let exposed = self.plaintext_on_network();
        if exposed.is_empty() || self.server.insecure_plaintext_on_network {
            return Ok(());
        }
        let addresses: Vec<String> = exposed.iter().map(ToString::to_string).collect();
        Err(ConfigError::Invalid {
            key: "tls.enabled",
            problem: format!(
                "refusing to listen on {} without TLS: anyone on that network could read the \
                 traffic and write as any node. Set `[tls] enabled = true` (the collector makes \
                 its own CA and certificate), listen on 127.0.0.1, or, on a network you trust \
                 completely, set `server.insecure_plaintext_on_network = true`",
                addresses.join(" and ")
            ),
        })
    }

    /// Reads a TOML file, the secret files and the alert rule files it names; unknown keys and
    /// bad values are errors naming the key.
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
        config
            .alerting
            .load_rule_files()
            .map_err(|e| ConfigError::InvalidAt {
                key: "alerting.rule_files".into(),
                problem: e.to_string(),
            })?;
        Ok(config)
    }

    /// Reads every `<secret>_file` into its secret (see [`hcmon_common::secret`]).
    fn load_secrets(&mut self) -> Result<(), SecretError> {
        secret::resolve_empty_as_unset(
            "agent_token",
            &mut self.agent_token,
            &mut self.agent_token_file,
            std::fs::read_to_string,
        )?;
        for destination in &mut self.remote_write_out {
            destination.load_secrets()?;
        }
        self.pair.load_secrets()?;
        self.history.load_secrets()?;
        self.alerting.load_secrets()
    }

    /// Checks values the types alone cannot: a zero interval or size that would make a
    /// background task panic or the store keep nothing is refused here, naming the key, rather
    /// than found out later by a task that dies.
    pub fn validate(&self) -> Result<(), ConfigError> {
        at_least(
            "metrics_staleness",
            self.metrics_staleness,
            Duration::from_secs(1),
        )?;
        if !self.forget_nodes_after.is_zero() {
            // Shorter than an hour, a node rebooting for updates would be forgotten.
            at_least(
                "forget_nodes_after",
                self.forget_nodes_after,
                Duration::from_secs(3600),
            )?;
        }
        validate_limits(&self.limits)?;
        validate_server(&self.server)?;
        crate::forward::config::validate(&self.remote_write_out).map_err(|problem| {
            ConfigError::Invalid {
                key: "remote_write_out",
                problem,
            }
        })?;
        self.pair
            .validate()
            .map_err(|problem| ConfigError::Invalid {
                key: "pair",
                problem,
            })?;
        self.history
            .validate()
            .map_err(|problem| ConfigError::Invalid {
                key: "history",
                problem,
            })?;
        self.validate_exposure()?;
        validate_storage(&self.storage)?;
        validate_recorded(&self.recorded)?;
        self.quality
            .validate()
            .map_err(|problem| ConfigError::Invalid {
                key: "quality",
                problem,
            })?;
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
            .map_err(|e| ConfigError::InvalidAt {
                key: e.key,
                problem: e.problem,
            })?;
        self.slo.validate().map_err(|e| ConfigError::InvalidAt {
            key: e.key,
            problem: e.problem,
        })?;
        self.reports
            .validate(&self.alerting)
            .map_err(|e| ConfigError::InvalidAt {
                key: e.key,
                problem: e.problem,
            })
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
            tls: TlsConfig {
                enabled: true,
                ..TlsConfig::default()
            },
            ..CollectorConfig::default()
        };
        assert_eq!(config, expected);
    }

    #[test]
    fn the_ha_pair_examples_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ha-pair");
        for (file, member) in [("collector-a.toml", "a"), ("collector-b.toml", "b")] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            // The token file is the operator's to make; its key is checked without it.
            let text = text.replace("peer_token_file", "# peer_token_file");
            let config: CollectorConfig = toml::from_str(&text).unwrap();
            config.pair.validate().unwrap();
            assert_eq!(config.pair.member, member);
            assert!(config.pair.enabled());
        }
        let bad = CollectorConfig {
            pair: crate::pair::config::PairConfig {
                member: "a".into(),
                peer: "collector-b:9464".into(),
                ..Default::default()
            },
            ..CollectorConfig::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("`pair`") && err.contains("peer"), "{err}");
    }

    #[test]
    fn the_scale_out_example_and_its_rules_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/scale-out");
        let config = CollectorConfig::from_file(&dir.join("collector.toml")).unwrap();
        assert_eq!(config.remote_write_out.len(), 1);
        assert_eq!(config.remote_write_out[0].relabel.len(), 1);
        // With its rules file, as the comment in it says.
        let text = std::fs::read_to_string(dir.join("collector.toml")).unwrap();
        let rules = format!("rule_files = [{:?}]", dir.join("rules.yml").display());
        let installed = text.replace(
            r#"# rule_files = ["/etc/hcmon/rules/scale-out.yml"]"#,
            &rules,
        );
        assert_ne!(installed, text);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), installed).unwrap();
        let config = CollectorConfig::from_file(file.path()).unwrap();
        assert_eq!(config.alerting.file_rule_groups()[0].rules.len(), 2);
    }

    #[test]
    fn zero_intervals_and_sizes_are_refused_with_the_key_named() {
        for (toml, key) in [
            (
                "[storage]\ncheckpoint_interval = \"0s\"",
                "storage.checkpoint_interval",
            ),
            (
                "[storage]\nmax_chunk_samples = 0",
                "storage.max_chunk_samples",
            ),
            (
                "[storage]\nmax_chunk_span = \"0s\"",
                "storage.max_chunk_span",
            ),
            ("[storage.retention]\nraw = \"0s\"", "storage.retention.raw"),
            (
                "[storage.retention]\nrollup_1h = \"0s\"",
                "storage.retention.rollup_1h",
            ),
            ("[limits]\nmax_batch_bytes = 0", "limits.max_batch_bytes"),
            (
                "[limits]\nmax_samples_per_batch = 0",
                "limits.max_samples_per_batch",
            ),
            (
                "[limits]\nmax_labels_per_series = 1",
                "limits.max_labels_per_series",
            ),
            ("metrics_staleness = \"0s\"", "metrics_staleness"),
            ("[recorded]\nup_interval = \"0s\"", "recorded.up_interval"),
            ("[limits]\nmax_streams = 0", "limits.max_streams"),
            (
                "[server.http]\nmax_concurrent_queries = 0",
                "server.http.max_concurrent_queries",
            ),
            (
                "[server.http]\nheader_read_timeout = \"0s\"",
                "server.http.header_read_timeout",
            ),
            (
                "[server.grpc]\nkeepalive_timeout = \"0s\"",
                "server.grpc.keepalive_timeout",
            ),
        ] {
            let config: CollectorConfig = toml::from_str(toml).unwrap();
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{toml}: {err}");
            assert!(err.contains("at least"), "{toml}: {err}");
        }
        CollectorConfig::default().validate().unwrap();
    }

    /// A batch is one log record: one larger than the log takes is refused at start.
    #[test]
    fn batches_too_large_for_one_log_record_are_refused() {
        let config: CollectorConfig =
            toml::from_str("[limits]\nmax_samples_per_batch = 10000001").unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains(
                "`limits.max_samples_per_batch`: 10000001 is too large; it must be at most 10000000"
            ),
            "{err}"
        );
    }

    #[test]
    fn series_caps_and_name_limits_must_admit_something() {
        for key in [
            "max_series",
            "max_label_name_len",
            "max_metric_name_len",
            "max_help_len",
        ] {
            let config: CollectorConfig = toml::from_str(&format!("[limits]\n{key} = 0")).unwrap();
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("limits.{key}")), "{key}: {err}");
        }
    }

    #[test]
    fn backfill_lanes_are_bounded_and_zero_means_one_per_core() {
        let load = |n: usize| {
            let config: CollectorConfig =
                toml::from_str(&format!("[limits]\nbackfill_stores = {n}")).unwrap();
            config.validate().map(|()| config.limits.backfill_lanes())
        };
        assert!(load(0).unwrap() >= 1);
        assert_eq!(load(3).unwrap(), 3);
        let err = load(1_000_000).unwrap_err().to_string();
        assert!(
            err.contains("limits.backfill_stores") && err.contains("at most 1024"),
            "{err}"
        );
    }

    #[test]
    fn raw_retention_cannot_be_shorter_than_the_out_of_order_window() {
        let config: CollectorConfig = toml::from_str(
            "[storage]\nout_of_order_window = \"6h\"\n[storage.retention]\nraw = \"2h\"",
        )
        .unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("storage.retention.raw") && err.contains("6h"),
            "{err}"
        );
    }

    #[test]
    fn every_secret_can_come_from_a_file_and_never_shows_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let text = format!(
            "agent_token_file = {:?}\n\
             [alerting]\nack_secret_file = {:?}\n\
             [[alerting.channels]]\nname = \"mail\"\n[alerting.channels.email]\n\
             host = \"smtp\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\nusername = \"u\"\n\
             password_file = {:?}\n\
             [[alerting.channels]]\nname = \"hook\"\n[alerting.channels.webhook]\n\
             url = \"http://h/\"\nsecret_file = {:?}\n\
             [[alerting.channels]]\nname = \"chat\"\n[alerting.channels.slack]\n\
             url_file = {:?}\n\
             [[alerting.channels]]\nname = \"log\"\n[alerting.channels.log]\n",
            file("token", "agent-s3cret\n"),
            file("ack", "ack-s3cret-0123456789\n"),
            file("smtp", "smtp-s3cret\n"),
            file("hook", "hook-s3cret\n"),
            file(
                "slack",
                "https://hooks.slack.com/services/T/B/slack-s3cret\n"
            ),
        );
        let path = PathBuf::from(file("hcmon-collector.toml", &text));
        let config = CollectorConfig::from_file(&path).unwrap();
        config.validate().unwrap();
        assert_eq!(config.agent_token.expose(), "agent-s3cret");
        let alerting = &config.alerting;
        let exposed = [
            alerting.ack_secret.as_ref().unwrap().expose(),
            alerting.channels[0]
                .email
                .as_ref()
                .unwrap()
                .password
                .as_ref()
                .unwrap()
                .expose(),
            alerting.channels[1]
                .webhook
                .as_ref()
                .unwrap()
                .secret
                .as_ref()
                .unwrap()
                .expose(),
            alerting.channels[2].slack.as_ref().unwrap().url.expose(),
        ];
        assert_eq!(
            exposed,
            [
                "ack-s3cret-0123456789",
                "smtp-s3cret",
                "hook-s3cret",
                "https://hooks.slack.com/services/T/B/slack-s3cret"
            ]
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn a_secret_given_twice_or_in_an_unreadable_file_is_refused_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| {
            let path = dir.path().join("hcmon-collector.toml");
            std::fs::write(&path, text).unwrap();
            CollectorConfig::from_file(&path).unwrap_err().to_string()
        };
        let missing = dir.path().join("no-such-file");
        let err = load(&format!(
            "agent_token = \"t\"\nagent_token_file = {missing:?}"
        ));
        assert!(
            err.contains("`agent_token`") && err.contains("`agent_token_file`"),
            "{err}"
        );
        let err = load(&format!(
            "[[alerting.channels]]\nname = \"hook\"\n[alerting.channels.webhook]\n\
             url = \"http://h/\"\nsecret_file = {missing:?}"
        ));
        assert!(
            err.contains("`alerting.channels.hook.webhook.secret_file`")
                && err.contains(&missing.display().to_string()),
            "{err}"
        );
        let no_url: CollectorConfig =
            toml::from_str("[[alerting.channels]]\nname = \"chat\"\n[alerting.channels.slack]\n")
                .unwrap();
        let err = no_url.validate().unwrap_err().to_string();
        assert!(err.contains("slack.url: missing"), "{err}");
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

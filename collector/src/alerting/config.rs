//! `[alerting]` in the collector's config: rules, notification policy, escalation, channels.
//! Every field documents itself in `deploy/hcmon-collector.toml`; [`AlertingConfig::validate`]
//! checks what the types cannot and names the offending key.

use super::escalation::{EscalationPolicy, Tier};
use super::ids::Target;
use super::notify::{ChannelConfig, LogConfig, RetryPolicy};
use super::policy::Severity;
use super::rule_files::{self, RuleFileError, RuleGroup};
use super::rules::ThresholdRule;
use crate::analytics::anomaly::Severity as AnomalySeverity;
use hcmon_common::secret::{self, Secret, SecretError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Alert names of the built-in missing-data rules.
pub const AGENT_SILENT: &str = "AgentSilent";
pub const AGENT_DISCONNECTED: &str = "AgentDisconnected";

/// A setting of `[alerting]` that cannot be used: its key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct InvalidSetting {
    pub key: String,
    pub problem: String,
}

impl InvalidSetting {
    fn new(key: String, problem: impl std::fmt::Display) -> Self {
        Self {
            key,
            problem: problem.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Evaluate rules and send notifications.
    pub enabled: bool,
    /// Include the shipped rules (CPU, memory, disk, cache probes, disk forecast) before
    /// `rules` and `forecast_rules`; a rule of yours with the same name replaces the shipped one.
    pub default_rules: bool,
    /// Static thresholds with warning/error/critical levels.
    pub rules: Vec<ThresholdRule>,
    /// Alerts from the anomaly engine's verdicts.
    pub anomaly_rules: Vec<AnomalyRule>,
    /// Alerts from each node's multivariate model (`[analytics.forest]`).
    pub node_rules: Vec<NodeRule>,
    /// Alerts when a trend will cross a limit within a horizon.
    pub forecast_rules: Vec<ForecastRule>,
    /// Alerts when a node's data quality drops below a threshold (`[quality]`).
    pub quality_rules: Vec<QualityRule>,
    /// Silent agents and series.
    pub missing_data: MissingDataConfig,
    /// Prometheus rule files (`groups:` / `rules:` YAML) whose alerting rules are evaluated
    /// beside these: paths or globs (`/etc/hcmon/rules/*.yml`), as given (a relative one from
    /// the collector's working directory).
    pub rule_files: Vec<String>,
    /// The groups of `rule_files`, read by [`AlertingConfig::load_rule_files`] (which
    /// `CollectorConfig::from_file` calls); `None` until then, and while `rule_files` is empty.
    #[serde(skip)]
    pub rule_groups: Option<Vec<RuleGroup>>,
    /// Labels whose values form an alert's group (one notification per group and window).
    pub group_by: Vec<String>,
    /// Alerts of one group that fire within this window are sent as one notification.
    #[serde(with = "humantime_serde")]
    pub group_window: Duration,
    /// An alert that changes between firing and resolved more than `flap_max_changes` times
    /// within `flap_window` is reported once as flapping.
    #[serde(with = "humantime_serde")]
    pub flap_window: Duration,
    pub flap_max_changes: usize,
    pub escalation: EscalationConfig,
    /// Recipient name → targets: a channel name, or `channel:address` (an email address for an
    /// email channel).
    pub recipients: BTreeMap<String, Vec<Target>>,
    /// Where notifications go. Without any, alerts go to the collector's log.
    pub channels: Vec<ChannelConfig>,
    /// Retries of a failed delivery.
    pub retry: RetryPolicy,
    /// The collector's address as people reach it, for acknowledge links in notifications,
    /// e.g. `http://monitor.home:9464`. Without it notifications carry no link.
    pub external_url: Option<String>,
    /// Key that signs acknowledge links. Without it a random key is made once and kept in the
    /// data directory.
    pub ack_secret: Option<Secret>,
    /// A file holding `ack_secret` (one trailing newline trimmed), instead of the key itself.
    pub ack_secret_file: Option<PathBuf>,
    /// How often timers (grouping windows, escalation, digests, missing data) are checked.
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// How often rules over functions (`rate(...)`) and forecast rules are evaluated.
    #[serde(with = "humantime_serde")]
    pub evaluation_interval: Duration,
    /// Samples older than this when they arrive (spooled back-fill) are stored but not
    /// evaluated: alerts are about now.
    #[serde(with = "humantime_serde")]
    pub max_sample_lag: Duration,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        let log_everyone = |name: &str| (name.to_owned(), vec![Target::channel("log")]);
        Self {
            enabled: true,
            default_rules: true,
            rules: Vec::new(),
            anomaly_rules: Vec::new(),
            node_rules: Vec::new(),
            forecast_rules: Vec::new(),
            quality_rules: Vec::new(),
            missing_data: MissingDataConfig::default(),
            rule_files: Vec::new(),
            rule_groups: None,
            group_by: vec!["node".into()],
            group_window: Duration::from_secs(60),
            flap_window: Duration::from_secs(30 * 60),
            flap_max_changes: 6,
            escalation: EscalationConfig::default(),
            recipients: ["on-call", "manager", "director"]
                .into_iter()
                .map(log_everyone)
                .collect(),
            channels: Vec::new(),
            retry: RetryPolicy::default(),
            external_url: None,
            ack_secret: None,
            ack_secret_file: None,
            tick: Duration::from_millis(250),
            evaluation_interval: Duration::from_secs(15),
            max_sample_lag: Duration::from_secs(300),
        }
    }
}

/// `[alerting.escalation]`: tiers reached while an alert stays unacknowledged.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    /// Alerts below this severity are notified but never escalated.
    pub min_severity: Severity,
    /// In order of their delay since firing.
    pub tiers: Vec<Tier>,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        Self {
            min_severity: Severity::Error,
            tiers: EscalationPolicy::default().tiers,
        }
    }
}

impl EscalationConfig {
    pub fn policy(&self) -> EscalationPolicy {
        EscalationPolicy {
            tiers: self.tiers.clone(),
        }
    }
}

/// `[[alerting.anomaly_rules]]`: fires while the anomaly engine flags a matching series.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyRule {
    pub name: String,
    pub selector: String,
    /// The least anomaly severity that counts (`low`, `medium`, `high`, `critical`).
    #[serde(default = "default_anomaly_severity")]
    pub min_severity: AnomalySeverity,
    /// How long the series must stay anomalous before the alert fires.
    #[serde(with = "humantime_serde", default)]
    pub r#for: Duration,
}

fn default_anomaly_severity() -> AnomalySeverity {
    AnomalySeverity::High
}

/// `[[alerting.node_rules]]`: fires while a node's multivariate model (`[analytics.forest]`)
/// scores the node's newest minute at `min_score` or more; the alert names the features that
/// made the minute unusual.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRule {
    pub name: String,
    /// The nodes judged: a regular expression their name matches in full (as `node=~` does);
    /// every node when absent.
    #[serde(default)]
    pub node: Option<String>,
    /// The least score that fires, above 0.5 (an ordinary minute's score) and at most 1; the
    /// alert resolves once the score is back to [`NODE_RECOVERY_MARGIN`] below it.
    #[serde(default = "default_min_score")]
    pub min_score: f64,
    /// How long the node must stay unusual before the alert fires.
    #[serde(with = "humantime_serde", default)]
    pub r#for: Duration,
    #[serde(default = "default_node_severity")]
    pub severity: Severity,
}

/// How far below `min_score` a node's score must fall before its alert resolves: a score
/// hovering at the level does not fire and resolve every minute.
pub const NODE_RECOVERY_MARGIN: f64 = 0.05;

fn default_min_score() -> f64 {
    0.7
}

fn default_node_severity() -> Severity {
    Severity::Warning
}

impl NodeRule {
    /// Shipped: `NodeAnomaly`, any node scoring 0.7 or more, as a warning.
    pub fn defaults() -> Vec<Self> {
        vec![Self {
            name: "NodeAnomaly".into(),
            node: None,
            min_score: default_min_score(),
            r#for: Duration::ZERO,
            severity: default_node_severity(),
        }]
    }
}

/// Which score a quality rule judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityScore {
    /// Every dimension, each against its own threshold: one alert per node and dimension.
    Each,
    Completeness,
    Consistency,
    Accuracy,
    Timeliness,
    Validity,
    /// The weighted overall score.
    Overall,
}

impl QualityScore {
    /// The dimension judged; `None` for `each` and `overall`.
    pub fn dimension(self) -> Option<crate::quality::Dimension> {
        use crate::quality::Dimension;
        match self {
            QualityScore::Completeness => Some(Dimension::Completeness),
            QualityScore::Consistency => Some(Dimension::Consistency),
            QualityScore::Accuracy => Some(Dimension::Accuracy),
            QualityScore::Timeliness => Some(Dimension::Timeliness),
            QualityScore::Validity => Some(Dimension::Validity),
            QualityScore::Each | QualityScore::Overall => None,
        }
    }
}

/// `[[alerting.quality_rules]]`: fires while a node's data-quality score is below `below`
/// (by default the dimension's own threshold, 0.9 for the overall score) for `for`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityRule {
    pub name: String,
    /// The nodes judged: a regular expression their name matches in full; every node when
    /// absent.
    #[serde(default)]
    pub node: Option<String>,
    /// `each` (default: every dimension against its own threshold), one dimension, or
    /// `overall`.
    #[serde(default = "default_quality_score")]
    pub score: QualityScore,
    /// The score below which it fires; the dimension's threshold when absent.
    #[serde(default)]
    pub below: Option<f64>,
    /// How long the score must stay low before the alert fires.
    #[serde(with = "humantime_serde", default = "default_quality_for")]
    pub r#for: Duration,
    #[serde(default = "default_node_severity")]
    pub severity: Severity,
}

fn default_quality_score() -> QualityScore {
    QualityScore::Each
}

fn default_quality_for() -> Duration {
    Duration::from_secs(10 * 60)
}

impl QualityRule {
    /// Shipped: `DataQualityLow`, any node's dimension below its threshold for 10 minutes, as
    /// a warning.
    pub fn defaults() -> Vec<Self> {
        vec![Self {
            name: "DataQualityLow".into(),
            node: None,
            score: QualityScore::Each,
            below: None,
            r#for: default_quality_for(),
            severity: default_node_severity(),
        }]
    }
}

/// `[[alerting.forecast_rules]]`: fires when the trend of a matching series will reach `limit`
/// within `horizon`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastRule {
    pub name: String,
    pub selector: String,
    pub limit: f64,
    /// `above` (disk filling) or `below` (free memory draining).
    #[serde(default = "default_above")]
    pub direction: super::lifecycle::Direction,
    #[serde(with = "humantime_serde")]
    pub horizon: Duration,
    /// How much history the trend is fitted on.
    #[serde(with = "humantime_serde", default = "default_forecast_window")]
    pub window: Duration,
    #[serde(default = "default_forecast_severity")]
    pub severity: Severity,
}

fn default_above() -> super::lifecycle::Direction {
    super::lifecycle::Direction::Above
}

fn default_forecast_window() -> Duration {
    Duration::from_secs(6 * 3600)
}

fn default_forecast_severity() -> Severity {
    Severity::Warning
}

impl ForecastRule {
    /// Shipped: a filesystem that will be 95 % full within a day.
    pub fn defaults() -> Vec<Self> {
        vec![Self {
            name: "DiskWillFill".into(),
            selector: "node_filesystem_used_ratio".into(),
            limit: 0.95,
            direction: super::lifecycle::Direction::Above,
            horizon: Duration::from_secs(24 * 3600),
            window: default_forecast_window(),
            severity: Severity::Warning,
        }]
    }
}

/// `[alerting.missing_data]`: silence is a problem too.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MissingDataConfig {
    /// Every agent gets an `AgentSilent` alert when it sends nothing for longer than
    /// `intervals` of its own interval, and at least `min_silence`.
    pub agents: bool,
    pub intervals: u32,
    #[serde(with = "humantime_serde")]
    pub min_silence: Duration,
    /// `AgentDisconnected` fires when an agent's stream stays closed this long.
    #[serde(with = "humantime_serde")]
    pub disconnected_after: Duration,
    /// Series that must keep reporting, each with its own alert name.
    pub series: Vec<MissingSeriesRule>,
}

impl Default for MissingDataConfig {
    fn default() -> Self {
        Self {
            agents: true,
            intervals: 3,
            min_silence: Duration::from_secs(30),
            disconnected_after: Duration::from_secs(15),
            series: Vec::new(),
        }
    }
}

/// `[[alerting.missing_data.series]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingSeriesRule {
    pub name: String,
    pub selector: String,
    #[serde(default = "default_missing_severity")]
    pub severity: Severity,
}

fn default_missing_severity() -> Severity {
    Severity::Error
}

impl AlertingConfig {
    /// Threshold rules in force: the shipped ones (unless switched off), replaced by name by
    /// the configured ones.
    pub fn threshold_rules(&self) -> Vec<ThresholdRule> {
        merge(
            self.default_rules.then(ThresholdRule::defaults),
            &self.rules,
            |r| &r.name,
        )
    }

    /// Node rules in force: the shipped `NodeAnomaly` (unless switched off), replaced by name
    /// by the configured ones. They judge nothing while `[analytics] enabled = false`.
    pub fn all_node_rules(&self) -> Vec<NodeRule> {
        merge(
            self.default_rules.then(NodeRule::defaults),
            &self.node_rules,
            |r| &r.name,
        )
    }

    /// Quality rules in force: the shipped `DataQualityLow` (unless switched off), replaced by
    /// name by the configured ones. They judge nothing while `[quality] enabled = false`.
    pub fn all_quality_rules(&self) -> Vec<QualityRule> {
        merge(
            self.default_rules.then(QualityRule::defaults),
            &self.quality_rules,
            |r| &r.name,
        )
    }

    pub fn all_forecast_rules(&self) -> Vec<ForecastRule> {
        merge(
            self.default_rules.then(ForecastRule::defaults),
            &self.forecast_rules,
            |r| &r.name,
        )
    }

    /// Reads and checks the files `rule_files` names.
    pub fn load_rule_files(&mut self) -> Result<(), RuleFileError> {
        if self.rule_files.is_empty() {
            return Ok(());
        }
        self.rule_groups = Some(rule_files::load(&self.rule_files)?);
        Ok(())
    }

    /// The groups read from `rule_files`.
    pub fn file_rule_groups(&self) -> &[RuleGroup] {
        self.rule_groups.as_deref().unwrap_or_default()
    }

    /// Refuses rule-file alerts named like a TOML rule: both would judge the same alerts.
    fn validate_rule_files(&self) -> Result<(), InvalidSetting> {
        let key = "alerting.rule_files".to_owned();
        if !self.rule_files.is_empty() && self.rule_groups.is_none() {
            return Err(InvalidSetting::new(
                key,
                "the files are not read yet: call AlertingConfig::load_rule_files \
                 (CollectorConfig::from_file does)",
            ));
        }
        let mut toml_rules: Vec<(String, &str)> = Vec::new();
        toml_rules.extend(
            self.threshold_rules()
                .into_iter()
                .map(|r| (r.name, "[[alerting.rules]]")),
        );
        toml_rules.extend(
            self.anomaly_rules
                .iter()
                .map(|r| (r.name.clone(), "[[alerting.anomaly_rules]]")),
        );
        toml_rules.extend(
            self.all_node_rules()
                .into_iter()
                .map(|r| (r.name, "[[alerting.node_rules]]")),
        );
        toml_rules.extend(
            self.all_forecast_rules()
                .into_iter()
                .map(|r| (r.name, "[[alerting.forecast_rules]]")),
        );
        toml_rules.extend(
            self.all_quality_rules()
                .into_iter()
                .map(|r| (r.name, "[[alerting.quality_rules]]")),
        );
        toml_rules.extend(
            self.missing_data
                .series
                .iter()
                .map(|r| (r.name.clone(), "[[alerting.missing_data.series]]")),
        );
        toml_rules.extend(
            [AGENT_SILENT, AGENT_DISCONNECTED].map(|n| (n.to_owned(), "[alerting.missing_data]")),
        );
        for group in self.file_rule_groups() {
            for rule in &group.rules {
                if let Some((_, section)) = toml_rules.iter().find(|(n, _)| *n == rule.alert) {
                    return Err(InvalidSetting::new(
                        key,
                        format!(
                            "{}, group {:?}: alert {:?} is also a rule of {section} (your own or \
                             a shipped one); hcmon tells alerts apart by name, so rename one \
                             (`default_rules = false` drops the shipped ones)",
                            group.file.display(),
                            group.name,
                            rule.alert
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Channels in force: the configured ones, or one log channel.
    pub fn all_channels(&self) -> Vec<ChannelConfig> {
        if !self.channels.is_empty() {
            return self.channels.clone();
        }
        let log: ChannelConfig =
            toml::from_str("name = \"log\"\n[log]\n").expect("the default log channel parses");
        debug_assert_eq!(log.log, Some(LogConfig {}));
        vec![log]
    }

    /// Reads every `<secret>_file` of `[alerting]` and its channels into its secret.
    pub(crate) fn load_secrets(&mut self) -> Result<(), SecretError> {
        secret::resolve(
            "alerting.ack_secret",
            &mut self.ack_secret,
            &mut self.ack_secret_file,
            std::fs::read_to_string,
        )?;
        for channel in &mut self.channels {
            channel.load_secrets()?;
        }
        Ok(())
    }

    /// Checks what the types cannot; the error names the key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let invalid = |key: String, problem: String| Err(InvalidSetting { key, problem });
        let rule_name = |key: String, name: &str| {
            hcmon_common::validate_metric_name(name).map_err(|e| InvalidSetting {
                key,
                problem: format!("{name:?} is not a valid alert name (letters, digits, _): {e}"),
            })
        };
        for (i, rule) in self.rules.iter().enumerate() {
            rule_name(format!("alerting.rules[{i}].name"), &rule.name)?;
            rule.validate()
                .map_err(|p| InvalidSetting::new(format!("alerting.rules[{i}]"), p))?;
        }
        let selectors = self
            .anomaly_rules
            .iter()
            .enumerate()
            .map(|(i, r)| ("anomaly_rules", i, &r.name, &r.selector))
            .chain(
                self.forecast_rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| ("forecast_rules", i, &r.name, &r.selector)),
            )
            .chain(
                self.missing_data
                    .series
                    .iter()
                    .enumerate()
                    .map(|(i, r)| ("missing_data.series", i, &r.name, &r.selector)),
            );
        for (list, i, name, selector) in selectors {
            rule_name(format!("alerting.{list}[{i}].name"), name)?;
            hcmon_common::Selector::parse(selector)
                .map_err(|e| InvalidSetting::new(format!("alerting.{list}[{i}].selector"), e))?;
        }
        for (i, rule) in self.node_rules.iter().enumerate() {
            rule_name(format!("alerting.node_rules[{i}].name"), &rule.name)?;
            if let Some(node) = &rule.node {
                hcmon_common::Matcher::new("node", hcmon_common::MatchOp::Regex, node).map_err(
                    |e| InvalidSetting::new(format!("alerting.node_rules[{i}].node"), e),
                )?;
            }
            if !(rule.min_score > 0.5 && rule.min_score <= 1.0) {
                return invalid(
                    format!("alerting.node_rules[{i}].min_score"),
                    format!(
                        "{} must be above 0.5 (an ordinary minute's score) and at most 1",
                        rule.min_score
                    ),
                );
            }
        }
        for (i, rule) in self.quality_rules.iter().enumerate() {
            rule_name(format!("alerting.quality_rules[{i}].name"), &rule.name)?;
            if let Some(node) = &rule.node {
                hcmon_common::Matcher::new("node", hcmon_common::MatchOp::Regex, node).map_err(
                    |e| InvalidSetting::new(format!("alerting.quality_rules[{i}].node"), e),
                )?;
            }
            if let Some(below) = rule.below
                && !(below > 0.0 && below <= 1.0)
            {
                return invalid(
                    format!("alerting.quality_rules[{i}].below"),
                    format!("{below} must be a score above 0 and at most 1"),
                );
            }
        }
        for (i, rule) in self.forecast_rules.iter().enumerate() {
            if !rule.limit.is_finite() {
                return invalid(
                    format!("alerting.forecast_rules[{i}].limit"),
                    "must be a number".into(),
                );
            }
            if rule.horizon.is_zero() || rule.window.is_zero() {
                return invalid(
                    format!("alerting.forecast_rules[{i}]"),
                    "horizon and window must be longer than zero".into(),
                );
            }
        }
        self.validate_rule_files()?;
        if self.missing_data.intervals == 0 {
            return invalid(
                "alerting.missing_data.intervals".into(),
                "must be at least 1".into(),
            );
        }
        if self.group_window.is_zero() && self.group_by.is_empty() {
            return invalid(
                "alerting.group_by".into(),
                "give at least one label (or none with a zero window)".into(),
            );
        }
        if self.tick.is_zero() || self.evaluation_interval.is_zero() {
            return invalid(
                "alerting.tick".into(),
                "tick and evaluation_interval must be longer than zero".into(),
            );
        }
        if self.flap_max_changes < 2 {
            return invalid(
                "alerting.flap_max_changes".into(),
                "must be at least 2 (one firing and one resolution are not flapping)".into(),
            );
        }
        self.escalation
            .policy()
            .validate()
            .map_err(|p| InvalidSetting::new("alerting.escalation".to_owned(), p))?;
        let channels = self.all_channels();
        for channel in &channels {
            channel.validate().map_err(|p| {
                InvalidSetting::new(format!("alerting.channels.{}", channel.name), p)
            })?;
        }
        let channel_names: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
        for (name, targets) in &self.recipients {
            if targets.is_empty() {
                return invalid(
                    format!("alerting.recipients.{name}"),
                    "lists no targets".into(),
                );
            }
            for target in targets {
                if !channel_names.contains(&target.channel.as_str()) {
                    return invalid(
                        format!("alerting.recipients.{name}"),
                        format!(
                            "target \"{target}\" names no channel (channels: {})",
                            channel_names.join(", ")
                        ),
                    );
                }
            }
        }
        for (i, tier) in self.escalation.tiers.iter().enumerate() {
            for recipient in &tier.recipients {
                let known = self.recipients.contains_key(recipient)
                    || channel_names.contains(&recipient.as_str());
                if !known {
                    return invalid(
                        format!("alerting.escalation.tiers[{i}].recipients"),
                        format!(
                            "{recipient:?} is neither in [alerting.recipients] nor a channel name"
                        ),
                    );
                }
            }
        }
        if let Some(url) = &self.external_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid(
                "alerting.external_url".into(),
                format!("{url:?} must start with http:// or https://"),
            );
        }
        if self
            .ack_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 16)
        {
            return invalid(
                "alerting.ack_secret".into(),
                "must be at least 16 characters".into(),
            );
        }
        Ok(())
    }
}

/// `base` with entries of `overrides` replacing those of the same name, then the new ones.
fn merge<T: Clone>(base: Option<Vec<T>>, overrides: &[T], name: impl Fn(&T) -> &String) -> Vec<T> {
    let mut out: Vec<T> = base
        .unwrap_or_default()
        .into_iter()
        .filter(|b| !overrides.iter().any(|o| name(o) == name(b)))
        .collect();
    out.extend(overrides.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AlertingConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_validate_and_configured_rules_replace_shipped_ones_by_name() {
        let config = AlertingConfig::default();
        config.validate().unwrap();
        assert_eq!(config.all_channels()[0].name, "log");
        let custom = parse(
            "[[rules]]\nname = \"HighCpu\"\nselector = \"node_cpu_usage_ratio\"\ndirection = \"above\"\ncritical = 0.99\n",
        );
        let rules = custom.threshold_rules();
        let cpu: Vec<_> = rules.iter().filter(|r| r.name == "HighCpu").collect();
        assert_eq!(cpu.len(), 1);
        assert_eq!(cpu[0].critical, Some(0.99));
        assert_eq!(rules.len(), ThresholdRule::defaults().len());
    }

    #[test]
    fn mistakes_name_their_key() {
        let key = |text: &str| parse(text).validate().unwrap_err().key;
        assert_eq!(
            key("[recipients]\non-call = [\"pager\"]\n"),
            "alerting.recipients.on-call"
        );
        assert_eq!(
            key("[escalation]\n[[escalation.tiers]]\nafter = \"5m\"\nrecipients = [\"boss\"]\n"),
            "alerting.escalation.tiers[0].recipients"
        );
        assert_eq!(
            key(
                "[[rules]]\nname = \"high cpu\"\nselector = \"x\"\ndirection = \"above\"\nwarning = 1.0\n"
            ),
            "alerting.rules[0].name"
        );
        assert_eq!(
            key(
                "[[forecast_rules]]\nname = \"F\"\nselector = \"x{\"\nlimit = 1.0\nhorizon = \"1h\"\n"
            ),
            "alerting.forecast_rules[0].selector"
        );
        assert_eq!(
            key("external_url = \"monitor:9464\"\n"),
            "alerting.external_url"
        );
        let err = toml::from_str::<AlertingConfig>("group_windw = \"1m\"").unwrap_err();
        assert!(err.to_string().contains("group_windw"), "{err}");
    }

    #[test]
    fn rule_files_must_be_read_and_must_not_reuse_toml_rule_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cpu.yml");
        std::fs::write(
            &file,
            "groups:\n- name: cpu\n  rules:\n  - alert: HighCpu\n    expr: node_cpu_usage_ratio > 0.9\n",
        )
        .unwrap();
        let mut config = parse(&format!(
            "rule_files = [{:?}]\n",
            file.display().to_string()
        ));
        let err = config.validate().unwrap_err();
        assert!(err.problem.contains("not read yet"), "{err}");
        config.load_rule_files().unwrap();
        let err = config.validate().unwrap_err();
        assert_eq!(err.key, "alerting.rule_files");
        assert!(
            err.problem.contains(
                "cpu.yml, group \"cpu\": alert \"HighCpu\" is also a rule of [[alerting.rules]]"
            ),
            "{err}"
        );
        config.default_rules = false;
        config.validate().unwrap();
        assert_eq!(config.file_rule_groups()[0].rules[0].alert, "HighCpu");
    }

    /// The shipped rule file loads beside the shipped rules (`promtool check rules` passes on it
    /// too: tests/tests/rule_files.rs).
    #[test]
    fn the_shipped_rule_file_loads_beside_the_shipped_rules() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/rules/hcmon-node.rules.yml");
        let mut config = AlertingConfig {
            rule_files: vec![path.display().to_string()],
            ..AlertingConfig::default()
        };
        config.load_rule_files().unwrap();
        config.validate().unwrap();
        let groups = config.file_rule_groups();
        assert_eq!(groups[0].name, "hcmon-node");
        assert!(groups[0].rules.len() >= 5);
        super::super::evaluate::RuleSet::new(&config).unwrap();
    }

    #[test]
    fn targets_are_parsed_when_the_config_is_read() {
        let config = parse("[recipients]\nboss = [\"log\", \"log:boss\"]\n");
        let boss = &config.recipients["boss"];
        assert_eq!(boss[0], Target::channel("log"));
        assert_eq!(boss[1].address.as_deref(), Some("boss"));
        let err = toml::from_str::<AlertingConfig>("[recipients]\nboss = [\"log:\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"log:\" has an empty address"), "{err}");
    }
}

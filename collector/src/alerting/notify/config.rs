//! `[[alerting.channels]]` and `[alerting.retry]`: where notifications go and how hard delivery
//! tries. Validation is pure and every message starts with the key it is about
//! (`channels.ops-mail.email.port: ...`); files (`ca_file`) are read when the channels are built.
//!
//! Secrets (SMTP password, webhook secret, the Slack URL, whose path is a token) are
//! [`Secret`]s: each may come from a `<key>_file`, and none appears in `Debug` output or error
//! messages.

use crate::alerting::policy::{ChannelLimits, Severity};
use hcmon_common::secret::{self, Secret, SecretError};
use hcmon_common::{EndpointError, HttpEndpoint};
use lettre::message::Mailbox;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Why a channel (or the retry policy) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// A setting that is wrong, named by its key (`channels.ops-mail.email.port`).
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
    #[error("TLS client setup: {0}")]
    Tls(#[source] rustls::Error),
}

/// The setting `key` cannot be used, because of `problem`.
pub(super) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ChannelError {
    ChannelError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// `[[alerting.channels]]`: one destination. Exactly one of the kind tables is set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Unique; escalation tiers and logs refer to the channel by it.
    pub name: String,
    /// Alerts below this severity are not sent here.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// The same alert is not notified here again sooner than this.
    #[serde(with = "humantime_serde", default = "default_min_interval")]
    pub min_interval: Duration,
    /// Notifications per rolling hour; what is over goes into one digest.
    #[serde(default = "default_max_per_hour")]
    pub max_per_hour: usize,
    /// Only escalation tiers use this channel, not every firing alert.
    #[serde(default)]
    pub escalation_only: bool,
    /// Email over SMTP.
    pub email: Option<EmailConfig>,
    /// Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat).
    pub slack: Option<SlackConfig>,
    /// Generic JSON webhook, optionally signed.
    pub webhook: Option<WebhookConfig>,
    /// Structured log lines from the collector.
    pub log: Option<LogConfig>,
    /// A Prometheus Alertmanager, through its v2 API.
    pub alertmanager: Option<AlertmanagerConfig>,
}

fn default_min_severity() -> Severity {
    Severity::Warning
}

fn default_min_interval() -> Duration {
    Duration::from_secs(300)
}

fn default_max_per_hour() -> usize {
    10
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTls {
    /// Plain connection upgraded with STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a trusted LAN, never with AUTH.
    None,
}

/// `[alerting.channels.email]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host name; also the name its certificate must carry.
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `starttls` (default), `tls` (implicit, usually port 465) or `none`.
    #[serde(default)]
    pub tls: EmailTls,
    /// AUTH user (PLAIN or LOGIN); no AUTH when absent. Needs `password`.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// A file holding `password` (one trailing newline trimmed), instead of the key itself.
    pub password_file: Option<PathBuf>,
    /// `From:` mailbox, `ops@example.org` or `hcmon <ops@example.org>`.
    pub from: String,
    /// `To:` mailboxes, unless a notification names its own recipients (escalation tiers).
    pub to: Vec<String>,
    /// PEM file of extra root certificates, e.g. a home CA or the relay's self-signed cert.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate. The connection is still encrypted but not authenticated.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

fn default_smtp_port() -> u16 {
    587
}

/// `[alerting.channels.slack]`: a Slack-compatible incoming webhook.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The webhook URL; its path is a secret token. Required, unless `url_file` is set.
    #[serde(default)]
    pub url: Secret,
    /// A file holding `url` (one trailing newline trimmed), instead of the key itself.
    pub url_file: Option<PathBuf>,
}

/// `[alerting.channels.webhook]`: the notification as JSON, signed when `secret` is set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Key of the `X-Hcmon-Signature` HMAC-SHA256; requests are unsigned without it.
    pub secret: Option<Secret>,
    /// A file holding `secret` (one trailing newline trimmed), instead of the key itself.
    pub secret_file: Option<PathBuf>,
}

/// `[alerting.channels.log]`: one structured log line per alert (target `hcmon::alert`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {}

/// `[alerting.channels.alertmanager]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URL, e.g. `http://127.0.0.1:9093`; alerts are posted to `{url}/api/v2/alerts`.
    pub url: String,
}

impl AlertmanagerConfig {
    pub(super) fn alerts_url(&self) -> String {
        format!("{}/api/v2/alerts", self.url.trim_end_matches('/'))
    }
}

/// `[alerting.retry]`: how delivery retries a failed send.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest wait between two tries.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), ChannelError> {
        if self.attempts == 0 {
            return Err(invalid(
                "retry.attempts",
                "must be at least 1 (the first try counts)",
            ));
        }
        if self.max_backoff < self.initial_backoff {
            return Err(invalid(
                "retry.max_backoff",
                format!(
                    "{:?} is shorter than retry.initial_backoff ({:?})",
                    self.max_backoff, self.initial_backoff
                ),
            ));
        }
        Ok(())
    }

    /// The wait after the `failures`-th failed try (from 1): `initial_backoff · 2^(failures-1)`
    /// capped at `max_backoff`, times a random factor in [0.8, 1.2) so that channels failing
    /// together do not retry in lockstep.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let base = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        base.mul_f64(0.8 + 0.4 * fastrand::f64())
    }
}

impl ChannelConfig {
    /// Reads the channel's `<secret>_file` keys into their secrets.
    pub(crate) fn load_secrets(&mut self) -> Result<(), SecretError> {
        let at = format!("alerting.channels.{}", self.name);
        let read = std::fs::read_to_string;
        if let Some(email) = &mut self.email {
            let key = format!("{at}.email.password");
            secret::resolve(&key, &mut email.password, &mut email.password_file, read)?;
        }
        if let Some(webhook) = &mut self.webhook {
            let key = format!("{at}.webhook.secret");
            secret::resolve(&key, &mut webhook.secret, &mut webhook.secret_file, read)?;
        }
        if let Some(slack) = &mut self.slack {
            let key = format!("{at}.slack.url");
            secret::resolve_empty_as_unset(&key, &mut slack.url, &mut slack.url_file, read)?;
        }
        Ok(())
    }

    /// Checks the channel; the message names the offending key.
    pub fn validate(&self) -> Result<(), ChannelError> {
        let valid_name = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_name {
            return Err(invalid(
                "channels.name",
                format!(
                    "{:?} must be non-empty and use only letters, digits, '-' and '_'",
                    self.name
                ),
            ));
        }
        let at = format!("channels.{}", self.name);
        let kinds = self.kinds_set();
        match kinds.as_slice() {
            [] => {
                return Err(invalid(
                    at,
                    "no destination; set exactly one of email, slack, webhook, log, alertmanager",
                ));
            }
            [_] => {}
            several => {
                return Err(invalid(
                    at,
                    format!(
                        "{} are all set; a channel has exactly one destination (make one channel each)",
                        several.join(", ")
                    ),
                ));
            }
        }
        if self.max_per_hour == 0 {
            return Err(invalid(format!("{at}.max_per_hour"), "must be at least 1"));
        }
        if let Some(email) = &self.email {
            email.validate(&format!("{at}.email"))?;
        }
        if let Some(slack) = &self.slack {
            if slack.url.is_empty() {
                return Err(invalid(
                    format!("{at}.slack.url"),
                    "missing; set url or url_file",
                ));
            }
            parse_url(&format!("{at}.slack.url"), slack.url.expose())?;
        }
        if let Some(webhook) = &self.webhook {
            parse_url(&format!("{at}.webhook.url"), &webhook.url)?;
            if webhook.secret.as_ref().is_some_and(Secret::is_empty) {
                return Err(invalid(
                    format!("{at}.webhook.secret"),
                    "is empty; remove it to send unsigned requests",
                ));
            }
        }
        if let Some(alertmanager) = &self.alertmanager {
            parse_url(
                &format!("{at}.alertmanager.url"),
                &alertmanager.alerts_url(),
            )?;
        }
        Ok(())
    }

    /// The throttling limits the notification policy applies to this channel.
    pub fn limits(&self) -> ChannelLimits {
        ChannelLimits {
            min_severity: self.min_severity,
            min_interval_ms: i64::try_from(self.min_interval.as_millis()).unwrap_or(i64::MAX),
            max_per_hour: self.max_per_hour,
        }
    }

    /// `email`, `slack`, `webhook`, `log` or `alertmanager`; `none` before validation.
    pub fn kind_name(&self) -> &'static str {
        self.kinds_set().first().copied().unwrap_or("none")
    }

    fn kinds_set(&self) -> Vec<&'static str> {
        [
            ("email", self.email.is_some()),
            ("slack", self.slack.is_some()),
            ("webhook", self.webhook.is_some()),
            ("log", self.log.is_some()),
            ("alertmanager", self.alertmanager.is_some()),
        ]
        .into_iter()
        .filter_map(|(kind, set)| set.then_some(kind))
        .collect()
    }
}

impl EmailConfig {
    fn validate(&self, at: &str) -> Result<(), ChannelError> {
        if self.host.trim().is_empty() {
            return Err(invalid(format!("{at}.host"), "is empty"));
        }
        if self.port == 0 {
            return Err(invalid(format!("{at}.port"), "must be 1-65535"));
        }
        parse_mailbox(&format!("{at}.from"), &self.from)?;
        if self.to.is_empty() {
            return Err(invalid(
                format!("{at}.to"),
                "is empty; list at least one address",
            ));
        }
        for (i, to) in self.to.iter().enumerate() {
            parse_mailbox(&format!("{at}.to[{i}]"), to)?;
        }
        match (&self.username, &self.password) {
            (Some(_), None) => {
                return Err(invalid(
                    format!("{at}.password"),
                    "missing; username needs it",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    format!("{at}.username"),
                    "missing; password needs it",
                ));
            }
            _ => {}
        }
        if self.tls == EmailTls::None {
            if self.username.is_some() {
                return Err(invalid(
                    format!("{at}.username"),
                    "AUTH without TLS would send the password in clear; set tls = \"starttls\" or \"tls\"",
                ));
            }
            if self.ca_file.is_some() || self.insecure_skip_verify {
                let key = if self.ca_file.is_some() {
                    "ca_file"
                } else {
                    "insecure_skip_verify"
                };
                return Err(invalid(
                    format!("{at}.{key}"),
                    "has no effect with tls = \"none\"",
                ));
            }
        }
        Ok(())
    }
}

/// Parses a channel's `http://` or `https://` URL; the error names `field`, never echoes the URL.
pub(super) fn parse_url(field: &str, url: &str) -> Result<HttpEndpoint, ChannelError> {
    HttpEndpoint::parse(url).map_err(|error| match error {
        EndpointError::Credentials => {
            invalid(field, format!("{error}; use the channel's own secret"))
        }
        error => invalid(field, error.to_string()),
    })
}

/// Parses one mailbox; the error names the key.
pub(super) fn parse_mailbox(at: &str, address: &str) -> Result<Mailbox, ChannelError> {
    address
        .parse()
        .map_err(|e| invalid(at, format!("{address:?} is not an email address ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn channel(toml: &str) -> Result<ChannelConfig, String> {
        let config: ChannelConfig = toml::from_str(toml).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    const MAIL: &str = "[email]\nhost = \"smtp.example.org\"\nfrom = \"hcmon@example.org\"\nto = [\"ops@example.org\"]\n";

    #[test]
    fn defaults_and_limits() {
        let c = channel(&format!("name = \"ops-mail\"\n{MAIL}")).unwrap();
        assert_eq!(c.kind_name(), "email");
        assert_eq!(
            c.limits(),
            ChannelLimits {
                min_severity: Severity::Warning,
                min_interval_ms: 300_000,
                max_per_hour: 10
            }
        );
        let email = c.email.unwrap();
        assert_eq!((email.port, email.tls), (587, EmailTls::Starttls));
        assert!(!c.escalation_only && !email.insecure_skip_verify);
    }

    #[track_caller]
    fn check_error(toml: &str, expected: &[&str]) {
        let error = channel(toml).unwrap_err();
        for part in expected {
            assert!(error.contains(part), "{error:?} lacks {part:?}");
        }
    }

    #[test]
    fn errors_name_the_key() {
        check_error(
            "name = \"x\"",
            &["channels.x: no destination", "exactly one"],
        );
        check_error(
            &format!("name = \"x\"\n[log]\n{MAIL}"),
            &["channels.x: email, log are all set"],
        );
        check_error(
            &format!("name = \"x\"\n{MAIL}tls = \"ssl\"\n"),
            &["tls", "unknown variant `ssl`", "starttls"],
        );
        check_error(
            &format!("name = \"x\"\n{MAIL}").replace("[\"ops@example.org\"]", "[]"),
            &["channels.x.email.to: is empty"],
        );
        check_error(
            &format!("name = \"x\"\n{MAIL}").replace("\"ops@example.org\"", "\"ops\", \"b@\""),
            &["channels.x.email.to[0]: \"ops\" is not an email address"],
        );
        check_error(
            &format!("name = \"x\"\n{MAIL}port = 0\n"),
            &["channels.x.email.port: must be 1-65535"],
        );
        check_error(
            &format!("name = \"x\"\n{MAIL}tls = \"none\"\nusername = \"u\"\npassword = \"p\"\n"),
            &["channels.x.email.username: AUTH without TLS"],
        );
        check_error(
            &format!("name = \"x\"\n{MAIL}username = \"u\"\n"),
            &["channels.x.email.password: missing"],
        );
        check_error(
            "name = \"x\"\n[slack]\nurl = \"hooks.slack.com/services/T/B/X\"\n",
            &["channels.x.slack.url:", "http:// or https://"],
        );
        check_error(
            "name = \"x\"\n[webhook]\nurl = \"http://exa mple\"\n",
            &["channels.x.webhook.url: not a URL"],
        );
        check_error(
            "name = \"x\"\n[webhook]\nurl = \"http://u:p@h/\"\n",
            &[
                "channels.x.webhook.url: user:password@ in the URL is not supported; use the channel's own secret",
            ],
        );
        check_error(
            "name = \"x\"\n[webhook]\nurl = \"http://h/\"\nsecret = \"\"\n",
            &["channels.x.webhook.secret: is empty"],
        );
        check_error(
            "name = \"x\"\n[alertmanager]\nurl = \"ftp://am:9093\"\n",
            &["channels.x.alertmanager.url:"],
        );
        check_error("name = \"a b\"\n[log]\n", &["channels.name: \"a b\""]);
        check_error(
            "name = \"x\"\nmax_per_hour = 0\n[log]\n",
            &["channels.x.max_per_hour"],
        );
        check_error(
            "name = \"x\"\nsevere = true\n[log]\n",
            &["unknown field `severe`"],
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let c = channel(&format!(
            "name = \"x\"\n{MAIL}username = \"u\"\npassword = \"hunter2\"\n"
        ))
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let slack = SlackConfig {
            url: Secret::new("https://hooks.slack.com/services/T0/B0/tok3n"),
            url_file: None,
        };
        assert_eq!(
            format!("{slack:?}"),
            "SlackConfig { url: \"***\", url_file: None }"
        );
        let webhook = WebhookConfig {
            url: "http://h/".to_owned(),
            secret: Some(Secret::new("s3cret")),
            secret_file: None,
        };
        assert!(!format!("{webhook:?}").contains("s3cret"));
    }

    #[test]
    fn retry_policy_parses_validates_and_backs_off_exponentially_with_jitter() {
        let policy: RetryPolicy = toml::from_str("attempts = 3\ninitial_backoff = \"2s\"").unwrap();
        assert_eq!(policy.max_backoff, Duration::from_secs(60));
        policy.validate().unwrap();
        for (failures, base) in [(1, 2.0), (2, 4.0), (3, 8.0), (6, 60.0), (40, 60.0)] {
            for _ in 0..50 {
                let wait = policy.backoff(failures).as_secs_f64();
                assert!(
                    (0.8 * base..1.2 * base).contains(&wait),
                    "{failures}: {wait}"
                );
            }
        }
        let none = RetryPolicy {
            attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(
            none.validate()
                .unwrap_err()
                .to_string()
                .starts_with("retry.attempts")
        );
        let inverted: RetryPolicy =
            toml::from_str("initial_backoff = \"2m\"\nmax_backoff = \"1m\"").unwrap();
        assert!(
            inverted
                .validate()
                .unwrap_err()
                .to_string()
                .starts_with("retry.max_backoff")
        );
    }

    /// The user-facing example must parse and validate, so it cannot rot.
    #[test]
    fn documented_example_loads_and_validates() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Example {
            alerting: ExampleAlerting,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ExampleAlerting {
            channels: Vec<ChannelConfig>,
            retry: RetryPolicy,
        }
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/alerting-channels.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let example: Example = toml::from_str(&text).unwrap();
        let kinds: Vec<&str> = example
            .alerting
            .channels
            .iter()
            .map(ChannelConfig::kind_name)
            .collect();
        assert_eq!(
            kinds,
            ["email", "email", "slack", "webhook", "alertmanager", "log"]
        );
        for channel in &example.alerting.channels {
            channel.validate().unwrap();
        }
        example.alerting.retry.validate().unwrap();
        assert_eq!(example.alerting.retry, RetryPolicy::default());
    }
}

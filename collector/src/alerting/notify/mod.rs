//! Delivery of alert notifications: what a notification says ([`Notification`]), how each kind
//! of channel is configured ([`ChannelConfig`]), and the notifiers that send it (email over
//! SMTP, Slack-compatible webhook, signed generic webhook, structured log, Alertmanager v2),
//! with retries and backoff around every delivery ([`Channels::deliver`]).
//!
//! Layout: `render.rs` turns a notification into each channel's words and bytes (pure);
//! `email.rs`, `http.rs` and `log.rs` only move those bytes; this file picks the notifier,
//! bounds each try in time, retries, and counts.
//!
//! The notifiers are a closed set, so they are dispatched by an enum (`Notifier`) rather than
//! a trait object: plain `async fn`s, no boxing, and the compiler checks every kind is handled.

mod config;
mod email;
mod http;
mod log;
mod render;

pub use config::{
    AlertmanagerConfig, ChannelConfig, ChannelError, EmailConfig, EmailTls, LogConfig, RetryPolicy,
    SlackConfig, WebhookConfig,
};
pub use email::{ChannelMailer, MailFailure};

use crate::alerting::ids::AlertId;
use crate::alerting::lifecycle::StateKind;
use crate::alerting::policy::Severity;
use crate::telemetry::Registrar;
use email::SmtpNotifier;
use http::{AlertmanagerNotifier, HttpClient, SignedWebhookNotifier, SlackNotifier};
use log::LogNotifier;
use prometheus::{HistogramVec, IntCounterVec, Registry};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

/// Longest one try may take, connection and TLS handshake included.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Alerts started firing (one or several of a group fired together).
    Firing,
    /// Alerts resolved; sent to everyone who was told they fired.
    Resolved,
    /// An alert keeps changing state; this one notice replaces the storm.
    Flapping,
    /// A flapping alert is stable again.
    StoppedFlapping,
    /// Still firing and unacknowledged after an escalation tier's delay (tier index from 0).
    Escalation { tier: usize },
    /// What a channel's hourly cap held back, sent together once the cap allows.
    Digest,
}

/// The evidence shown with an alert, so people see why it fired.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evidence {
    /// The threshold that was crossed, for threshold rules.
    #[serde(default, with = "crate::json_f64::option")]
    pub threshold: Option<f64>,
    /// The range the anomaly engine expected, for anomaly rules.
    #[serde(default, with = "crate::json_f64::option_pair")]
    pub expected: Option<(f64, f64)>,
    /// Series that moved with this one, from the correlation engine, already phrased
    /// ("rose 40 s after node_disk_io_time_seconds{node=\"nas\"}, r=0.93").
    pub related: Vec<String>,
    /// Any other facts, one line each ("forecast reaches 0.95 in 5h10m").
    pub details: Vec<String>,
}

/// One alert as a notification shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertSummary {
    /// Stable id of the alert (used in ack links and the API).
    pub id: AlertId,
    /// Labels, including `alertname`, `node` (when known) and `severity`.
    pub labels: BTreeMap<String, String>,
    /// `summary` and `description`, Prometheus style.
    pub annotations: BTreeMap<String, String>,
    pub severity: Severity,
    /// `firing`, `acknowledged`, `resolved`.
    pub state: StateKind,
    /// When it started firing, Unix ms.
    pub since_ms: i64,
    /// When it resolved, Unix ms.
    pub resolved_ms: Option<i64>,
    /// The value that made it fire (or the latest one); non-finite too.
    #[serde(with = "crate::json_f64")]
    pub value: f64,
    pub evidence: Evidence,
    /// A signed link that acknowledges the alert when opened; `None` once acknowledged or
    /// resolved, or when no external URL is configured.
    pub ack_url: Option<String>,
}

impl AlertSummary {
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("alert", String::as_str)
    }
}

/// One message to one channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub kind: NotificationKind,
    /// The group the alerts belong to, e.g. `node="nas"`.
    pub group: String,
    pub alerts: Vec<AlertSummary>,
    /// Addresses that override the channel's own (escalation tiers name people: for email
    /// these are the `To:` addresses). Empty means the channel's configured recipients.
    pub recipients: Vec<String>,
    /// When the notification was made, Unix ms.
    pub at_ms: i64,
}

/// The notification metrics, registered once at start.
pub struct NotifyMetrics {
    /// `{channel, kind, outcome}`: notifications sent or given up on, by notification kind.
    notifications: IntCounterVec,
    /// `{channel, outcome}`: every try, so retries show.
    attempts: IntCounterVec,
    /// `{channel}`: time of one try.
    seconds: HistogramVec,
}

impl NotifyMetrics {
    /// Registers the metrics in `registry`; panics when they are registered twice.
    pub fn new(registry: &Registry) -> Self {
        let r = Registrar(registry);
        Self {
            notifications: r.counter_vec(
                "hcmon_collector_notifications_total",
                "Notifications delivered (outcome=sent) or given up on after all tries (outcome=failed), by channel and notification kind.",
                &["channel", "kind", "outcome"],
            ),
            attempts: r.counter_vec(
                "hcmon_collector_notification_attempts_total",
                "Tries to deliver a notification, retries included, by channel and outcome (ok, error).",
                &["channel", "outcome"],
            ),
            seconds: r.histogram_vec(
                "hcmon_collector_notification_seconds",
                "Time of one try to deliver a notification, by channel.",
                &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
                &["channel"],
            ),
        }
    }
}

/// What happened to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub channel: String,
    /// Tries made, the successful one included.
    pub attempts: u32,
    /// One message per failed try, in order.
    pub errors: Vec<String>,
    pub delivered: bool,
}

/// Why one try failed, and whether another could succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SendError {
    /// The network, a busy server, a timeout: worth another try.
    Transient(String),
    /// The server refused this message or these credentials: trying again cannot help.
    Permanent(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transient(message) | Self::Permanent(message) => f.write_str(message),
        }
    }
}

/// One channel's sender.
enum Notifier {
    Smtp(SmtpNotifier),
    Slack(SlackNotifier),
    Webhook(SignedWebhookNotifier),
    Log(LogNotifier),
    Alertmanager(AlertmanagerNotifier),
}

impl Notifier {
    fn new(config: &ChannelConfig, http: &HttpClient) -> Result<Self, ChannelError> {
        let at = format!("channels.{}", config.name);
        let ChannelConfig {
            email,
            slack,
            webhook,
            log,
            alertmanager,
            ..
        } = config;
        Ok(match (email, slack, webhook, log, alertmanager) {
            (Some(email), ..) => Self::Smtp(SmtpNotifier::new(&at, email)?),
            (_, Some(slack), ..) => Self::Slack(SlackNotifier::new(&at, slack, http.clone())?),
            (_, _, Some(webhook), ..) => {
                Self::Webhook(SignedWebhookNotifier::new(&at, webhook, http.clone())?)
            }
            (_, _, _, Some(LogConfig {}), _) => Self::Log(LogNotifier),
            (.., Some(alertmanager)) => {
                Self::Alertmanager(AlertmanagerNotifier::new(&at, alertmanager, http.clone())?)
            }
            (None, None, None, None, None) => return Err(config::invalid(at, "no destination")),
        })
    }

    async fn send(&self, n: &Notification) -> Result<(), SendError> {
        match self {
            Self::Smtp(smtp) => smtp.send(n).await,
            Self::Slack(slack) => slack.send(n).await,
            Self::Webhook(webhook) => webhook.send(n).await,
            Self::Log(log) => {
                log.send(n);
                Ok(())
            }
            Self::Alertmanager(alertmanager) => alertmanager.send(n).await,
        }
    }
}

/// Every configured channel, ready to send; built once at start.
pub struct Channels {
    configs: Vec<ChannelConfig>,
    /// In the order of `configs`.
    notifiers: Vec<Notifier>,
    retry: RetryPolicy,
    metrics: NotifyMetrics,
}

impl Channels {
    /// Validates every channel and the retry policy, refuses duplicate names, reads CA files,
    /// and builds the SMTP transports and the HTTP client.
    pub fn new(
        configs: &[ChannelConfig],
        retry: RetryPolicy,
        metrics: NotifyMetrics,
    ) -> Result<Self, ChannelError> {
        retry.validate()?;
        let mut names = HashSet::new();
        for config in configs {
            config.validate()?;
            if !names.insert(config.name.as_str()) {
                return Err(config::invalid(
                    format!("channels.{}", config.name),
                    "defined twice; channel names must be unique",
                ));
            }
        }
        let http = HttpClient::new()?;
        let notifiers = configs
            .iter()
            .map(|config| Notifier::new(config, &http))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            configs: configs.to_vec(),
            notifiers,
            retry,
            metrics,
        })
    }

    pub fn get(&self, name: &str) -> Option<&ChannelConfig> {
        self.configs.iter().find(|c| c.name == name)
    }

    pub fn configs(&self) -> &[ChannelConfig] {
        &self.configs
    }

    /// Sends `notification` on `channel`: up to `retry.attempts` tries, each bounded by 10 s,
    /// with exponential backoff and jitter between them (`tokio::time::sleep`, so paused-time
    /// tests run instantly). Stops early on an error no retry can fix. Never panics; the
    /// report says what happened.
    pub async fn deliver(&self, channel: &str, notification: &Notification) -> DeliveryReport {
        let mut report = DeliveryReport {
            channel: channel.to_owned(),
            attempts: 0,
            errors: Vec::new(),
            delivered: false,
        };
        let Some(index) = self.configs.iter().position(|c| c.name == channel) else {
            let error = format!("no channel named {channel:?}");
            tracing::error!(channel, error, "notification not delivered");
            report.errors.push(error);
            return report;
        };
        let notifier = &self.notifiers[index];
        let kind = render::kind_name(notification.kind);
        while report.attempts < self.retry.attempts {
            report.attempts += 1;
            let started = Instant::now();
            let result = match tokio::time::timeout(SEND_TIMEOUT, notifier.send(notification)).await
            {
                Ok(result) => result,
                Err(_) => Err(SendError::Transient(format!(
                    "timed out after {}s",
                    SEND_TIMEOUT.as_secs()
                ))),
            };
            self.metrics
                .seconds
                .with_label_values(&[channel])
                .observe(started.elapsed().as_secs_f64());
            let error = match result {
                Ok(()) => {
                    self.metrics
                        .attempts
                        .with_label_values(&[channel, "ok"])
                        .inc();
                    self.metrics
                        .notifications
                        .with_label_values(&[channel, kind, "sent"])
                        .inc();
                    report.delivered = true;
                    return report;
                }
                Err(error) => error,
            };
            self.metrics
                .attempts
                .with_label_values(&[channel, "error"])
                .inc();
            tracing::warn!(
                channel,
                kind,
                attempt = report.attempts,
                error = %error,
                "notification attempt failed"
            );
            report.errors.push(error.to_string());
            if matches!(error, SendError::Permanent(_)) || report.attempts == self.retry.attempts {
                break;
            }
            tokio::time::sleep(self.retry.backoff(report.attempts)).await;
        }
        self.metrics
            .notifications
            .with_label_values(&[channel, kind, "failed"])
            .inc();
        tracing::error!(
            channel,
            kind,
            attempts = report.attempts,
            error = report.errors.last().map_or("", String::as_str),
            "notification not delivered; giving up"
        );
        report
    }
}

#[cfg(test)]
mod tests {
    use super::render::tests::firing;
    use super::*;

    fn log_channel(name: &str) -> ChannelConfig {
        toml::from_str(&format!("name = \"{name}\"\n[log]\n")).expect("valid channel")
    }

    fn build(configs: &[ChannelConfig], retry: RetryPolicy) -> Result<Channels, String> {
        Channels::new(configs, retry, NotifyMetrics::new(&Registry::new()))
            .map_err(|e| e.to_string())
    }

    fn email_channel(extra: &str) -> ChannelConfig {
        toml::from_str(&format!(
            "name = \"mail\"\n[email]\nhost = \"127.0.0.1\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n{extra}"
        ))
        .expect("valid channel")
    }

    #[test]
    fn building_checks_names_retry_and_files() {
        let error = |configs: &[ChannelConfig], retry: RetryPolicy| {
            build(configs, retry).err().expect("refused")
        };
        assert_eq!(
            error(
                &[log_channel("a"), log_channel("a")],
                RetryPolicy::default()
            ),
            "channels.a: defined twice; channel names must be unique"
        );
        let no_retry = RetryPolicy {
            attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(error(&[], no_retry).starts_with("retry.attempts"));
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let message = error(
            &[email_channel(&format!("ca_file = {:?}", missing))],
            RetryPolicy::default(),
        );
        assert!(
            message.starts_with("channels.mail.email.ca_file: cannot read"),
            "{message}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let message = error(
            &[email_channel(&format!("ca_file = {:?}", junk))],
            RetryPolicy::default(),
        );
        assert!(message.ends_with("holds no PEM certificate"), "{message}");

        let channels = build(
            &[log_channel("a"), log_channel("b")],
            RetryPolicy::default(),
        )
        .unwrap();
        assert_eq!(channels.get("b").map(ChannelConfig::kind_name), Some("log"));
        assert!(channels.get("c").is_none());
        assert_eq!(channels.configs().len(), 2);
    }

    /// The collector shares `Channels` between tasks and spawns deliveries.
    #[test]
    fn channels_are_shareable_and_deliveries_spawnable() {
        fn shareable<T: Send + Sync>(_: &T) {}
        fn spawnable<F: std::future::Future + Send>(_: F) {}
        let channels = build(&[log_channel("a")], RetryPolicy::default()).unwrap();
        shareable(&channels);
        let n = firing();
        spawnable(channels.deliver("a", &n));
    }

    /// Neither case touches the network nor waits for a backoff.
    #[tokio::test]
    async fn delivery_reports_success_and_stops_on_permanent_errors() {
        let channels = build(
            &[log_channel("log"), email_channel("")],
            RetryPolicy::default(),
        )
        .unwrap();
        let report = channels.deliver("log", &firing()).await;
        assert_eq!(
            report,
            DeliveryReport {
                channel: "log".to_owned(),
                attempts: 1,
                errors: Vec::new(),
                delivered: true
            }
        );
        // A recipient that is no address fails before any connection; retrying cannot help.
        let mut n = firing();
        n.recipients = vec!["on-call".to_owned()];
        let report = channels.deliver("mail", &n).await;
        assert_eq!((report.delivered, report.attempts), (false, 1));
        assert_eq!(report.errors.len(), 1);
        assert!(
            report.errors[0].starts_with("recipient: \"on-call\" is not an email address"),
            "{report:?}"
        );
    }
}

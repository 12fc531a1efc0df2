//! `[reports]` in the collector's config: which scheduled reports are made, who gets them by
//! email, and how many are kept. The time zone is `[slo] timezone`.
//!
//! A recipient is what `[alerting]` calls a target, `channel` or `channel:address` (e.g.
//! `mail:ops@example.com`), or a recipient name of `[alerting.recipients]`, which stands for
//! its targets. Reports go by email with the PDF attached, so only email channels carry them:
//! a recipient name whose targets include other channels reaches its email ones, and one that
//! reaches no email channel is refused when the config is read.

use super::schedule::Schedule;
use super::store::Retention;
use crate::alerting::config::AlertingConfig;
use crate::alerting::ids::Target;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[reports]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// Make the scheduled reports at all; on-demand reports (`hcmon report`) work either way.
    pub enabled: bool,
    /// `[reports.daily]`: at 00:00, the day before.
    pub daily: ScheduleConfig,
    /// `[reports.weekly]`: Mondays at 09:00, the week before (Monday to Monday).
    pub weekly: ScheduleConfig,
    /// `[reports.monthly]`: on the 1st at 00:00, the month before.
    pub monthly: ScheduleConfig,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            daily: ScheduleConfig::default(),
            weekly: ScheduleConfig::default(),
            monthly: ScheduleConfig::default(),
        }
    }
}

/// One schedule's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Make this report.
    pub enabled: bool,
    /// Who gets it by email: `channel`, `channel:address` or a recipient name of
    /// `[alerting.recipients]`. None: stored, not mailed.
    pub recipients: Vec<Target>,
    /// How many of these reports are kept [default: 30 daily, 52 weekly, 12 monthly].
    pub retention: Option<usize>,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            recipients: Vec::new(),
            retention: None,
        }
    }
}

/// Where one email channel delivers a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRoute {
    /// The email channel of `[alerting]`.
    pub channel: String,
    /// `To:` addresses; empty means the channel's own `to`.
    pub addresses: Vec<String>,
}

/// A setting of `[reports]` that cannot be used: its key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct InvalidReports {
    pub key: String,
    pub problem: String,
}

impl ReportsConfig {
    /// `schedule`'s settings.
    pub fn schedule(&self, schedule: Schedule) -> &ScheduleConfig {
        match schedule {
            Schedule::Daily => &self.daily,
            Schedule::Weekly => &self.weekly,
            Schedule::Monthly => &self.monthly,
        }
    }

    /// How many reports of each schedule are kept.
    pub fn retention(&self) -> Retention {
        Retention {
            daily: self.daily.retention.unwrap_or(30),
            weekly: self.weekly.retention.unwrap_or(52),
            monthly: self.monthly.retention.unwrap_or(12),
        }
    }

    /// Checks retention and that every recipient reaches an email channel of `alerting`.
    pub fn validate(&self, alerting: &AlertingConfig) -> Result<(), InvalidReports> {
        for schedule in Schedule::ALL {
            let config = self.schedule(schedule);
            if config.retention == Some(0) {
                return Err(InvalidReports {
                    key: format!("reports.{schedule}.retention"),
                    problem: "must be at least 1 (the report being mailed is kept)".into(),
                });
            }
            self.routes(schedule, alerting)?;
        }
        Ok(())
    }

    /// Where `schedule`'s report goes, one route per email channel, in channel order.
    pub fn routes(
        &self,
        schedule: Schedule,
        alerting: &AlertingConfig,
    ) -> Result<Vec<MailRoute>, InvalidReports> {
        let key = format!("reports.{schedule}.recipients");
        let invalid = |problem: String| InvalidReports {
            key: key.clone(),
            problem,
        };
        let channels = alerting.all_channels();
        let is_email = |name: &str| channels.iter().any(|c| c.name == name && c.email.is_some());
        let is_channel = |name: &str| channels.iter().any(|c| c.name == name);
        // Channel → its addresses; `None` once the channel's own recipients are wanted.
        let mut routes: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
        let mut add = |target: &Target| {
            let entry = routes
                .entry(target.channel.clone())
                .or_insert_with(|| Some(Vec::new()));
            match (&target.address, entry.as_mut()) {
                (Some(address), Some(addresses)) => {
                    if !addresses.contains(address) {
                        addresses.push(address.clone());
                    }
                }
                (None, _) => *entry = None,
                (Some(_), None) => {}
            }
        };
        for recipient in &self.schedule(schedule).recipients {
            let named = match &recipient.address {
                None if !is_channel(&recipient.channel) => {
                    alerting.recipients.get(&recipient.channel)
                }
                _ => None,
            };
            match named {
                Some(targets) => {
                    let mut reached = false;
                    for target in targets.iter().filter(|t| is_email(&t.channel)) {
                        check_address(target).map_err(&invalid)?;
                        add(target);
                        reached = true;
                    }
                    if !reached {
                        return Err(invalid(format!(
                            "\"{recipient}\" of [alerting.recipients] reaches no email channel; reports go by email"
                        )));
                    }
                }
                None if is_email(&recipient.channel) => {
                    check_address(recipient).map_err(&invalid)?;
                    add(recipient);
                }
                None if is_channel(&recipient.channel) => {
                    return Err(invalid(format!(
                        "\"{recipient}\": channel {:?} is not an email channel; reports go by email",
                        recipient.channel
                    )));
                }
                None => {
                    let emails: Vec<&str> = channels
                        .iter()
                        .filter(|c| c.email.is_some())
                        .map(|c| c.name.as_str())
                        .collect();
                    return Err(invalid(format!(
                        "\"{recipient}\" is neither an email channel of [alerting] (email channels: {}) nor a name in [alerting.recipients]",
                        if emails.is_empty() {
                            "none".to_owned()
                        } else {
                            emails.join(", ")
                        }
                    )));
                }
            }
        }
        Ok(routes
            .into_iter()
            .map(|(channel, addresses)| MailRoute {
                channel,
                addresses: addresses.unwrap_or_default(),
            })
            .collect())
    }
}

fn check_address(target: &Target) -> Result<(), String> {
    match &target.address {
        Some(address) => address
            .parse::<lettre::message::Mailbox>()
            .map(drop)
            .map_err(|e| format!("\"{target}\": {address:?} is not an email address ({e})")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alerting() -> AlertingConfig {
        toml::from_str(
            r#"
[recipients]
ops = ["mail:ops@example.com", "pager"]
boss = ["mail:boss@example.com", "mail:ops@example.com"]
nobody-by-mail = ["pager"]

[[channels]]
name = "mail"
[channels.email]
host = "smtp.example.com"
from = "hcmon@example.com"
to = ["team@example.com"]

[[channels]]
name = "pager"
[channels.webhook]
url = "http://pager.example.com/"
"#,
        )
        .unwrap()
    }

    fn reports(toml: &str) -> ReportsConfig {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn defaults_make_every_report_and_mail_none() {
        let config = ReportsConfig::default();
        assert_eq!(config, reports(""));
        config.validate(&AlertingConfig::default()).unwrap();
        assert_eq!(
            config.retention(),
            Retention {
                daily: 30,
                weekly: 52,
                monthly: 12
            }
        );
        for schedule in Schedule::ALL {
            assert!(config.schedule(schedule).enabled);
            assert_eq!(
                config.routes(schedule, &AlertingConfig::default()),
                Ok(vec![])
            );
        }
        let config = reports("[weekly]\nretention = 4\n");
        assert_eq!(config.retention().weekly, 4);
        assert_eq!(config.retention().daily, 30);
    }

    #[test]
    fn recipients_resolve_to_email_routes() {
        let config = reports(
            "[monthly]\nrecipients = [\"ops\", \"boss\", \"mail:cfo@example.com\"]\n[daily]\nrecipients = [\"mail\", \"ops\"]\n",
        );
        let alerting = alerting();
        config.validate(&alerting).unwrap();
        assert_eq!(
            config.routes(Schedule::Monthly, &alerting).unwrap(),
            vec![MailRoute {
                channel: "mail".into(),
                addresses: vec![
                    "ops@example.com".into(),
                    "boss@example.com".into(),
                    "cfo@example.com".into()
                ],
            }]
        );
        // The channel itself: its own `to`, which covers the addresses too.
        assert_eq!(
            config.routes(Schedule::Daily, &alerting).unwrap(),
            vec![MailRoute {
                channel: "mail".into(),
                addresses: vec![],
            }]
        );
    }

    #[test]
    fn recipients_that_reach_no_email_are_refused_naming_the_key() {
        let alerting = alerting();
        for (toml, expected) in [
            (
                "[daily]\nrecipients = [\"pager\"]",
                "reports.daily.recipients: \"pager\": channel \"pager\" is not an email channel",
            ),
            (
                "[weekly]\nrecipients = [\"nobody-by-mail\"]",
                "reports.weekly.recipients: \"nobody-by-mail\" of [alerting.recipients] reaches no email channel",
            ),
            (
                "[monthly]\nrecipients = [\"cfo\"]",
                "reports.monthly.recipients: \"cfo\" is neither an email channel of [alerting] (email channels: mail)",
            ),
            (
                "[monthly]\nrecipients = [\"mail:not an address\"]",
                "reports.monthly.recipients: \"mail:not an address\": \"not an address\" is not an email address",
            ),
            (
                "[daily]\nretention = 0",
                "reports.daily.retention: must be at least 1",
            ),
        ] {
            let error = reports(toml).validate(&alerting).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{toml}: {error}");
        }
        let error = toml::from_str::<ReportsConfig>("[daily]\nrecipient = []")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `recipient`"), "{error}");
    }
}

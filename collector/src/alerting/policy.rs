//! Notification policy, pure: grouping of alerts that fire together, throttling (a minimum
//! interval per alert and an hourly cap per channel whose overflow becomes one digest, never a
//! silent drop), a minimum severity per channel, and silences. Time is an argument throughout.

use super::ids::{AlertId, IncidentId};
use hcmon_common::{Labels, Selector};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

const HOUR_MS: i64 = 3_600_000;

/// An alert at a severity: what the throttle spaces out per channel and a digest holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertNotice {
    pub alert: AlertId,
    pub severity: Severity,
}

/// What waits in a group for the group's window to pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// An alert that fired (or rose to `severity`), to announce.
    Firing(AlertNotice),
    /// The incident of an episode that resolved, to announce to whoever heard it fired.
    Resolved { incident: IncidentId },
}

/// Which notifications a group gathers: firing ones and resolved ones wait apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupKind {
    Firing,
    Resolved,
}

/// One group's window: its kind and the group, e.g. `node="nas"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub kind: GroupKind,
    pub group: String,
}

/// What the minimum interval is kept per: an alert at a severity on a channel, so a rise to
/// critical is not "too soon" after the warning.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ThrottleKey {
    pub channel: String,
    pub alert: AlertId,
    pub severity: Severity,
}

/// What to do with a notification on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Send,
    /// Below the channel's minimum severity.
    BelowSeverity,
    /// The same alert was notified on this channel less than the minimum interval ago.
    TooSoon,
    /// Over the channel's hourly cap: kept for the next digest.
    HeldForDigest,
}

/// Per-channel throttling state; the collector persists it, so a restart neither resets the
/// hourly cap nor forgets what the digest holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Throttle {
    /// When each alert and severity was last sent on each channel.
    pub(super) last_sent: BTreeMap<ThrottleKey, i64>,
    /// channel → send times within the last hour.
    pub(super) sent: BTreeMap<String, VecDeque<i64>>,
    /// channel → notifications held back by the cap, oldest first.
    pub(super) held: BTreeMap<String, Vec<AlertNotice>>,
}

/// Limits of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelLimits {
    pub min_severity: Severity,
    /// Shortest time between two notifications of one alert.
    pub min_interval_ms: i64,
    /// Most notifications per rolling hour; what is over goes into a digest.
    pub max_per_hour: usize,
}

impl Throttle {
    fn prune(&mut self, channel: &str, now_ms: i64) -> &mut VecDeque<i64> {
        let sent = self.sent.entry(channel.to_owned()).or_default();
        while sent.front().is_some_and(|t| now_ms - t >= HOUR_MS) {
            sent.pop_front();
        }
        sent
    }

    /// Decides one notification and records it when sent or held.
    pub fn decide(
        &mut self,
        channel: &str,
        limits: &ChannelLimits,
        notice: AlertNotice,
        now_ms: i64,
    ) -> Decision {
        if notice.severity < limits.min_severity {
            return Decision::BelowSeverity;
        }
        let key = ThrottleKey {
            channel: channel.to_owned(),
            alert: notice.alert.clone(),
            severity: notice.severity,
        };
        if self
            .last_sent
            .get(&key)
            .is_some_and(|t| now_ms - t < limits.min_interval_ms)
        {
            return Decision::TooSoon;
        }
        let sent = self.prune(channel, now_ms);
        if sent.len() >= limits.max_per_hour {
            self.held
                .entry(channel.to_owned())
                .or_default()
                .push(notice);
            return Decision::HeldForDigest;
        }
        sent.push_back(now_ms);
        self.last_sent.insert(key, now_ms);
        Decision::Send
    }

    /// Forgets per-alert send times older than `before_ms` (longer ago than any interval), so
    /// the state does not grow with every alert ever sent.
    pub fn forget_before(&mut self, before_ms: i64) {
        self.last_sent.retain(|_, t| *t >= before_ms);
    }

    /// Channels with notifications held for a digest.
    pub fn held_channels(&self) -> Vec<String> {
        self.held
            .iter()
            .filter(|(_, held)| !held.is_empty())
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// Everything held back on `channel`, as one digest, once the cap allows another message.
    pub fn take_digest(
        &mut self,
        channel: &str,
        limits: &ChannelLimits,
        now_ms: i64,
    ) -> Option<Vec<AlertNotice>> {
        if self.held.get(channel).is_none_or(Vec::is_empty) {
            return None;
        }
        let sent = self.prune(channel, now_ms);
        if sent.len() >= limits.max_per_hour {
            return None;
        }
        sent.push_back(now_ms);
        self.held.remove(channel)
    }
}

/// Collects alerts of one group that fire close together into one notification.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grouper {
    /// Each open group: when its window opened, and what waits in it.
    pub(super) open: BTreeMap<GroupKey, (i64, Vec<Pending>)>,
}

impl Grouper {
    /// Adds to a group; the group's window starts with its first entry.
    pub fn add(&mut self, group: GroupKey, pending: Pending, now_ms: i64) {
        self.open
            .entry(group)
            .or_insert_with(|| (now_ms, Vec::new()))
            .1
            .push(pending);
    }

    /// Groups whose window (`window_ms` from their first entry) has passed, ready to send.
    pub fn ready(&mut self, window_ms: i64, now_ms: i64) -> Vec<(GroupKey, Vec<Pending>)> {
        let due: Vec<GroupKey> = self
            .open
            .iter()
            .filter(|(_, (opened, _))| now_ms - opened >= window_ms)
            .map(|(g, _)| g.clone())
            .collect();
        due.into_iter()
            .filter_map(|g| self.open.remove(&g).map(|(_, pending)| (g, pending)))
            .collect()
    }
}

/// A silence: alerts whose labels match are not notified while it is active. One-off (`from`
/// to `until`), or recurring daily between two minutes of the day (a maintenance window).
#[derive(Debug, Clone)]
pub struct Silence {
    pub matcher: Selector,
    pub from_ms: i64,
    pub until_ms: i64,
    /// (start, end) minute of the day, UTC; the window may wrap past midnight.
    pub daily: Option<(u32, u32)>,
}

impl Silence {
    pub fn mutes(&self, labels: &Labels, now_ms: i64) -> bool {
        if now_ms < self.from_ms || now_ms >= self.until_ms || !self.matcher.matches(labels) {
            return false;
        }
        match self.daily {
            None => true,
            Some((start, end)) => {
                let minute = (now_ms.rem_euclid(86_400_000) / 60_000) as u32;
                if start <= end {
                    (start..end).contains(&minute)
                } else {
                    minute >= start || minute < end
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn notice(alert: &str, severity: Severity) -> AlertNotice {
        AlertNotice {
            alert: alert.into(),
            severity,
        }
    }

    const EMAIL: ChannelLimits = ChannelLimits {
        min_severity: Severity::Warning,
        min_interval_ms: 5 * MIN,
        max_per_hour: 10,
    };

    #[test]
    fn severity_floor_and_minimum_interval_per_alert() {
        let slack = ChannelLimits {
            min_severity: Severity::Error,
            ..EMAIL
        };
        let mut t = Throttle::default();
        assert_eq!(
            t.decide("slack", &slack, notice("cpu", Severity::Warning), 0),
            Decision::BelowSeverity
        );
        assert_eq!(
            t.decide("slack", &slack, notice("cpu", Severity::Critical), 0),
            Decision::Send
        );
        assert_eq!(
            t.decide("slack", &slack, notice("cpu", Severity::Critical), 4 * MIN),
            Decision::TooSoon
        );
        assert_eq!(
            t.decide("email", &EMAIL, notice("cpu", Severity::Critical), 4 * MIN),
            Decision::Send,
            "intervals are per channel"
        );
        assert_eq!(
            t.decide("slack", &slack, notice("cpu", Severity::Critical), 5 * MIN),
            Decision::Send
        );
    }

    #[test]
    fn the_hourly_cap_holds_the_rest_for_one_digest_and_drops_nothing() {
        let mut t = Throttle::default();
        let mut sent = 0;
        for i in 0..25 {
            let d = t.decide(
                "email",
                &EMAIL,
                notice(&format!("disk{i}"), Severity::Error),
                i * MIN,
            );
            sent += usize::from(d == Decision::Send);
        }
        assert_eq!(sent, 10);
        assert_eq!(
            t.take_digest("email", &EMAIL, 30 * MIN),
            None,
            "cap still full"
        );
        let digest = t
            .take_digest("email", &EMAIL, 61 * MIN)
            .expect("a digest once the hour rolls");
        assert_eq!(digest.len(), 15, "every held notification is in it");
        assert_eq!(digest[0].alert, AlertId::from("disk10"));
        assert_eq!(t.take_digest("email", &EMAIL, 62 * MIN), None);
    }

    #[test]
    fn a_burst_of_one_group_becomes_one_notification() {
        let key = |group: &str| GroupKey {
            kind: GroupKind::Firing,
            group: group.into(),
        };
        let firing = |alert, severity| Pending::Firing(notice(alert, severity));
        let mut g = Grouper::default();
        for (i, alert) in ["cpu", "memory", "disk"].into_iter().enumerate() {
            g.add(
                key("node=nas"),
                firing(alert, Severity::Error),
                i as i64 * 10_000,
            );
        }
        g.add(key("node=pi"), firing("cpu", Severity::Warning), 30_000);
        assert!(g.ready(MIN, 59_000).is_empty());
        let ready = g.ready(MIN, 60_000);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].0, key("node=nas"));
        assert_eq!(ready[0].1.len(), 3);
        assert_eq!(
            g.ready(MIN, 90_000).len(),
            1,
            "the other group, its own window"
        );
    }

    #[test]
    fn silences_one_off_and_daily_maintenance_windows() {
        let labels = Labels::new("node_cpu_usage_ratio", [("node".into(), "nas".into())]).unwrap();
        let other = Labels::new("node_cpu_usage_ratio", [("node".into(), "pi".into())]).unwrap();
        let one_off = Silence {
            matcher: Selector::parse("{node=\"nas\"}").unwrap(),
            from_ms: 10 * MIN,
            until_ms: 70 * MIN,
            daily: None,
        };
        assert!(!one_off.mutes(&labels, 5 * MIN));
        assert!(one_off.mutes(&labels, 10 * MIN));
        assert!(!one_off.mutes(&other, 20 * MIN));
        assert!(!one_off.mutes(&labels, 70 * MIN), "expired");
        // Backups from 23:30 to 00:30 every night, for a year.
        let nightly = Silence {
            matcher: Selector::parse("{node=~\"n.*\"}").unwrap(),
            from_ms: 0,
            until_ms: 365 * 24 * 60 * MIN,
            daily: Some((23 * 60 + 30, 30)),
        };
        let day = 24 * 60 * MIN;
        assert!(nightly.mutes(&labels, 3 * day + (23 * 60 + 45) * MIN));
        assert!(nightly.mutes(&labels, 4 * day + 10 * MIN));
        assert!(!nightly.mutes(&labels, 4 * day + 31 * MIN));
        assert!(!nightly.mutes(&labels, 4 * day + 12 * 60 * MIN));
    }
}

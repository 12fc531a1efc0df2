//! The alert book: every alert's state and what follows from it, as pure logic. Observations
//! (a rule's verdict on one series or node) and clock ticks go in; notifications to deliver,
//! incident history and the records that changed come out. No I/O and no clock: the collector
//! persists [`Changes`] in RocksDB and delivers the [`Outgoing`] notifications, and tests drive
//! hours of escalation in microseconds.
//!
//! # Invariants
//! - An alert's *episode* runs from firing to resolution (or, while flapping, until it is stable
//!   again). The escalation policy, who was notified and the incident id belong to the episode,
//!   so an alert follows the policy as it was when it fired and its resolution reaches exactly
//!   the targets its firing reached.
//! - A notification is queued (in [`Changes::outbox`]) in the same change set that records it as
//!   sent; persisting both atomically is what keeps a restart from re-sending or skipping.
//! - Muted alerts (silenced, or inhibited because their node is down) are not notified and do
//!   not escalate; they are announced when the mute ends if they are still firing, and their
//!   escalation resumes then, catching up missed tiers in order, each once.

use super::escalation::EscalationPolicy;
use super::lifecycle::{AlertState, Lifecycle, LifecycleRules, Notice};
use super::notify::{AlertSummary, Evidence, Notification, NotificationKind};
use super::policy::{ChannelLimits, Decision, Grouper, Pending, Severity, Silence, Throttle};
use hcmon_common::{Labels, Selector};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How long a resolved or inactive alert is kept for the API before it is forgotten.
const KEEP_RESOLVED_MS: i64 = 3_600_000;
/// How long per-alert send times are remembered by the throttle (longer than any interval).
const THROTTLE_MEMORY_MS: i64 = 24 * 3_600_000;
/// How long an ack link stays valid.
const ACK_LINK_VALID_MS: i64 = 7 * 24 * 3_600_000;

/// A channel as the policy sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelPolicy {
    pub name: String,
    pub limits: ChannelLimits,
    /// Reached only through escalation tiers (a pager), not by every firing alert.
    pub escalation_only: bool,
}

/// Makes the signed links that acknowledge an alert from a notification.
pub trait AckLinks: Send + Sync {
    /// A URL that acknowledges `alert` as `by` until `expires_ms`.
    fn link(&self, alert: &str, by: &str, expires_ms: i64) -> String;
}

/// The notification policy.
pub struct BookConfig {
    /// Labels whose values make an alert's group (default `node`).
    pub group_by: Vec<String>,
    /// Alerts of one group that fire within this window go out as one notification.
    pub group_window_ms: i64,
    pub channels: Vec<ChannelPolicy>,
    /// Recipient name → targets, each `channel` or `channel:address`.
    pub recipients: BTreeMap<String, Vec<String>>,
    pub escalation: EscalationPolicy,
    /// Alerts below this severity are notified but not escalated.
    pub escalation_min_severity: Severity,
    pub ack_links: Option<Box<dyn AckLinks>>,
}

/// One rule's verdict on one thing it watches, at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The rule's name, the alert's `alertname`.
    pub alertname: String,
    /// What identifies the alert besides its name (the series' labels, or `node`).
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub rules: LifecycleRules,
    /// The level breached now; `None` when below every level.
    pub severity: Option<Severity>,
    pub annotations: BTreeMap<String, String>,
    pub evidence: Evidence,
    /// A node-down alert: while it fires, the node's other alerts are muted.
    pub inhibits_node: bool,
    /// What the lifecycle judges when it is not `value` itself (the anomaly engine's decision
    /// as 1 or 0, while `value` shows the series' value).
    pub judged: Option<f64>,
}

/// One firing of an alert, from firing to resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub incident: String,
    pub fired_ms: i64,
    /// The escalation policy as it was when the alert fired.
    pub policy: EscalationPolicy,
    pub tiers_notified: usize,
    /// Targets (`channel` or `channel:address`) told that it fired.
    pub notified: BTreeSet<String>,
    /// The highest severity queued for channels; `None` until announced (or while muted).
    pub announced: Option<Severity>,
    pub acknowledged: Option<(i64, String)>,
}

/// An alert and its current episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub id: String,
    pub alertname: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub lifecycle: Lifecycle,
    pub severity: Severity,
    /// Non-finite too: a forecast that no longer reaches its limit is +Inf.
    #[serde(with = "crate::json_f64")]
    pub value: f64,
    pub evidence: Evidence,
    pub inhibits_node: bool,
    pub episode: Option<Episode>,
    /// When the state last changed, Unix ms.
    pub changed_ms: i64,
}

impl AlertRecord {
    /// Labels with `alertname` and `severity`, as notifications and the API show them.
    pub fn full_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        labels.insert("alertname".into(), self.alertname.clone());
        labels.insert("severity".into(), self.severity.name().into());
        labels
    }

    fn node(&self) -> Option<&str> {
        self.labels.get("node").map(String::as_str)
    }

    fn is_active(&self) -> bool {
        self.lifecycle.state.is_active()
    }
}

/// A silence or maintenance window as stored and listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceRecord {
    pub id: String,
    /// A selector over alert labels; the metric name stands for `alertname`, e.g.
    /// `HighCpu{node="nas"}` or `{node=~"nas|pi"}`.
    pub matchers: String,
    pub starts_ms: i64,
    pub ends_ms: i64,
    /// Recurring daily between these minutes of the day (UTC), within starts..ends.
    pub daily: Option<(u32, u32)>,
    pub created_by: String,
    pub comment: String,
    pub created_ms: i64,
}

impl SilenceRecord {
    /// The silence to evaluate; the error says what is wrong with the matchers.
    pub fn compile(&self) -> Result<Silence, String> {
        if self.ends_ms <= self.starts_ms {
            return Err("a silence must end after it starts".into());
        }
        if let Some((start, end)) = self.daily
            && (start >= 1440 || end >= 1440)
        {
            return Err("daily window minutes must be below 1440 (24 h)".into());
        }
        let matcher = Selector::parse(&self.matchers)
            .map_err(|e| format!("matchers {:?}: {e}", self.matchers))?;
        Ok(Silence {
            matcher,
            from_ms: self.starts_ms,
            until_ms: self.ends_ms,
            daily: self.daily,
        })
    }

    /// `active`, `pending` (not started) or `expired`.
    pub fn status(&self, now_ms: i64) -> &'static str {
        if now_ms < self.starts_ms {
            "pending"
        } else if now_ms < self.ends_ms {
            "active"
        } else {
            "expired"
        }
    }
}

/// The incident record of one episode: what a later SLA report reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub alert: String,
    pub labels: BTreeMap<String, String>,
    pub severity: Severity,
    pub started_ms: i64,
    pub acknowledged: Option<(i64, String)>,
    pub resolved_ms: Option<i64>,
}

/// One entry of an incident's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEvent {
    /// Order of events across all incidents.
    pub seq: u64,
    pub incident: String,
    pub at_ms: i64,
    #[serde(flatten)]
    pub what: Happened,
}

/// What happened to an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Happened {
    Fired {
        severity: Severity,
        #[serde(with = "crate::json_f64")]
        value: f64,
    },
    SeverityRaised {
        severity: Severity,
        #[serde(with = "crate::json_f64")]
        value: f64,
    },
    /// A notification was queued for a channel.
    Queued {
        channel: String,
        kind: NotificationKind,
        recipients: Vec<String>,
    },
    /// Held back by the channel's hourly cap; it goes out in the next digest.
    HeldForDigest {
        channel: String,
    },
    Delivered {
        channel: String,
        kind: NotificationKind,
        attempts: u32,
        errors: Vec<String>,
    },
    DeliveryFailed {
        channel: String,
        kind: NotificationKind,
        attempts: u32,
        errors: Vec<String>,
    },
    Muted {
        reason: String,
    },
    Escalated {
        tier: usize,
        recipients: Vec<String>,
    },
    Acknowledged {
        by: String,
    },
    Flapping,
    StoppedFlapping,
    Resolved {
        #[serde(with = "crate::json_f64")]
        value: f64,
    },
}

/// A notification queued for delivery on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    pub seq: u64,
    pub channel: String,
    pub notification: Notification,
    /// The incidents it tells about, for the delivery's history entry.
    pub incidents: Vec<String>,
}

/// What changed since the last [`AlertBook::take_changes`], for the store.
#[derive(Debug, Default)]
pub struct Changes {
    /// Alerts to write (`Some`, their current record) or delete (`None`), by id.
    pub alerts: BTreeMap<String, Option<AlertRecord>>,
    /// Silences to write or delete, by id.
    pub silences: BTreeMap<String, Option<SilenceRecord>>,
    pub incidents: Vec<Incident>,
    pub events: Vec<IncidentEvent>,
    pub outbox: Vec<Outgoing>,
    /// The throttle, grouper and counters ([`BookState`]) changed.
    pub state: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
            && self.silences.is_empty()
            && self.incidents.is_empty()
            && self.events.is_empty()
            && self.outbox.is_empty()
            && !self.state
    }
}

/// A resolved episode whose notice waits for its group's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Closing {
    pub alert: AlertSummary,
    pub notified: BTreeSet<String>,
}

/// The book's small shared state, persisted as one value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BookState {
    pub next_seq: u64,
    pub throttle: Throttle,
    pub grouper: Grouper,
    /// Incident id → resolved episode waiting to be announced.
    pub closing: BTreeMap<String, Closing>,
}

/// Why an operator request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BookError {
    #[error("no alert with id {0:?}")]
    NoSuchAlert(String),
    #[error("no silence with id {0:?}")]
    NoSuchSilence(String),
    #[error("{0}")]
    Refused(String),
}

/// Every alert, silence and open incident, with the policy that turns them into notifications.
pub struct AlertBook {
    config: BookConfig,
    alerts: BTreeMap<String, AlertRecord>,
    silences: BTreeMap<String, (SilenceRecord, Silence)>,
    incidents: BTreeMap<String, Incident>,
    state: BookState,
    changes: Dirty,
}

/// What changed, by id, until [`AlertBook::take_changes`] collects the values.
#[derive(Debug, Default)]
struct Dirty {
    alerts: BTreeSet<String>,
    silences: BTreeSet<String>,
    incidents: BTreeSet<String>,
    /// Resolved incidents: written once more, then only the store has them.
    closed: Vec<Incident>,
    events: Vec<IncidentEvent>,
    outbox: Vec<Outgoing>,
    state: bool,
}

const FIRING_GROUP: &str = "firing";
const RESOLVED_GROUP: &str = "resolved";

/// The id of an alert: a stable hash of its name and identity labels (FNV-1a, 64 bits).
pub fn alert_id(alertname: &str, labels: &BTreeMap<String, String>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes.iter().chain([&0xffu8]) {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(alertname.as_bytes());
    for (k, v) in labels {
        feed(k.as_bytes());
        feed(v.as_bytes());
    }
    format!("{hash:016x}")
}

fn group_key(kind: &str, group: &str) -> String {
    format!("{kind}\u{1f}{group}")
}

/// Splits a target into its channel and address (`"mail:ops@example.com"`).
fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once(':') {
        Some((channel, address)) => (channel, Some(address)),
        None => (target, None),
    }
}

impl AlertBook {
    /// A book resumed from stored records.
    pub fn restore(
        config: BookConfig,
        alerts: Vec<AlertRecord>,
        silences: Vec<SilenceRecord>,
        incidents: Vec<Incident>,
        state: BookState,
    ) -> Self {
        let silences = silences
            .into_iter()
            .filter_map(|s| match s.compile() {
                Ok(compiled) => Some((s.id.clone(), (s, compiled))),
                Err(error) => {
                    tracing::warn!(id = %s.id, %error, "stored silence dropped");
                    None
                }
            })
            .collect();
        Self {
            config,
            alerts: alerts.into_iter().map(|a| (a.id.clone(), a)).collect(),
            silences,
            incidents: incidents.into_iter().map(|i| (i.id.clone(), i)).collect(),
            state,
            changes: Dirty::default(),
        }
    }

    pub fn config(&self) -> &BookConfig {
        &self.config
    }

    pub fn state(&self) -> &BookState {
        &self.state
    }

    pub fn alerts(&self) -> impl Iterator<Item = &AlertRecord> {
        self.alerts.values()
    }

    pub fn alert(&self, id: &str) -> Option<&AlertRecord> {
        self.alerts.get(id)
    }

    pub fn silences(&self) -> impl Iterator<Item = &SilenceRecord> {
        self.silences.values().map(|(s, _)| s)
    }

    pub fn incident(&self, id: &str) -> Option<&Incident> {
        self.incidents.get(id)
    }

    /// Hands over everything that changed since the last call.
    pub fn take_changes(&mut self) -> Changes {
        let dirty = std::mem::take(&mut self.changes);
        let mut incidents = dirty.closed;
        incidents.extend(
            dirty
                .incidents
                .iter()
                .filter_map(|id| self.incidents.get(id).cloned()),
        );
        Changes {
            alerts: dirty
                .alerts
                .into_iter()
                .map(|id| {
                    let record = self.alerts.get(&id).cloned();
                    (id, record)
                })
                .collect(),
            silences: dirty
                .silences
                .into_iter()
                .map(|id| {
                    let record = self.silences.get(&id).map(|(s, _)| s.clone());
                    (id, record)
                })
                .collect(),
            incidents,
            events: dirty.events,
            outbox: dirty.outbox,
            state: dirty.state,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.state.next_seq += 1;
        self.changes.state = true;
        self.state.next_seq
    }

    fn event(&mut self, incident: &str, at_ms: i64, what: Happened) {
        let seq = self.next_seq();
        self.changes.events.push(IncidentEvent {
            seq,
            incident: incident.to_owned(),
            at_ms,
            what,
        });
    }

    /// Applies one rule verdict.
    pub fn observe(&mut self, obs: Observation, now_ms: i64) {
        let id = alert_id(&obs.alertname, &obs.labels);
        let record = self
            .alerts
            .entry(id.clone())
            .or_insert_with(|| AlertRecord {
                id: id.clone(),
                alertname: obs.alertname.clone(),
                labels: obs.labels.clone(),
                annotations: BTreeMap::new(),
                lifecycle: Lifecycle::default(),
                severity: obs.severity.unwrap_or(Severity::Warning),
                value: obs.value,
                evidence: Evidence::default(),
                inhibits_node: obs.inhibits_node,
                episode: None,
                changed_ms: now_ms,
            });
        let was_active = record.is_active();
        let before = record.lifecycle.state.name();
        record.value = obs.value;
        // Related series come from the correlation engine once per episode, not per sample.
        let related = std::mem::take(&mut record.evidence.related);
        record.evidence = obs.evidence;
        if record.evidence.related.is_empty() && was_active {
            record.evidence.related = related;
        }
        record.annotations = obs.annotations;
        let judged = obs.judged.unwrap_or(obs.value);
        let notice = record.lifecycle.evaluate(&obs.rules, now_ms, judged);
        let mut raised = false;
        if let Some(severity) = obs.severity {
            raised = was_active && record.is_active() && severity > record.severity;
            record.severity = severity;
        }
        let after = record.lifecycle.state.name();
        if before != after {
            record.changed_ms = now_ms;
            self.changes.alerts.insert(id.clone());
        }
        let (is_active, value, severity) = (record.is_active(), record.value, record.severity);
        if !was_active && is_active {
            self.start_episode(&id, now_ms);
        } else if was_active && !is_active && !self.alerts[&id].lifecycle.flapping {
            self.end_episode(&id, now_ms);
        } else if raised && let Some(incident) = self.incident_of(&id) {
            self.changes.alerts.insert(id.clone());
            self.event(
                &incident,
                now_ms,
                Happened::SeverityRaised { severity, value },
            );
            if let Some(open) = self.incidents.get_mut(&incident) {
                open.severity = severity;
                self.changes.incidents.insert(incident);
            }
        }
        if notice == Some(Notice::Flapping) {
            self.flapping_notice(&id, NotificationKind::Flapping, now_ms);
        }
    }

    fn incident_of(&self, id: &str) -> Option<String> {
        self.alerts
            .get(id)?
            .episode
            .as_ref()
            .map(|e| e.incident.clone())
    }

    fn start_episode(&mut self, id: &str, now_ms: i64) {
        let policy = self.config.escalation.clone();
        let record = self.alerts.get_mut(id).expect("caller checked");
        if record.episode.is_some() {
            // Flapping kept the episode open through the resolution.
            return;
        }
        let incident = format!("{id}-{now_ms}");
        record.episode = Some(Episode {
            incident: incident.clone(),
            fired_ms: now_ms,
            policy,
            tiers_notified: 0,
            notified: BTreeSet::new(),
            announced: None,
            acknowledged: None,
        });
        let (severity, value) = (record.severity, record.value);
        self.incidents.insert(
            incident.clone(),
            Incident {
                id: incident.clone(),
                alert: id.to_owned(),
                labels: record.full_labels(),
                severity,
                started_ms: now_ms,
                acknowledged: None,
                resolved_ms: None,
            },
        );
        self.changes.incidents.insert(incident.clone());
        self.changes.alerts.insert(id.to_owned());
        self.event(&incident, now_ms, Happened::Fired { severity, value });
    }

    fn end_episode(&mut self, id: &str, now_ms: i64) {
        let Some(record) = self.alerts.get_mut(id) else {
            return;
        };
        let Some(episode) = record.episode.take() else {
            return;
        };
        let value = record.value;
        self.changes.alerts.insert(id.to_owned());
        let summary = self.summary(id, now_ms, None).expect("record exists");
        let group = self.group_of(id);
        self.event(&episode.incident, now_ms, Happened::Resolved { value });
        if let Some(mut incident) = self.incidents.remove(&episode.incident) {
            incident.resolved_ms = Some(now_ms);
            self.changes.incidents.remove(&incident.id);
            self.changes.closed.push(incident);
        }
        if !episode.notified.is_empty() {
            self.state.closing.insert(
                episode.incident.clone(),
                Closing {
                    alert: summary,
                    notified: episode.notified,
                },
            );
            self.state.grouper.add(
                &group_key(RESOLVED_GROUP, &group),
                Pending {
                    alert: episode.incident,
                    severity: Severity::Warning,
                },
                now_ms,
            );
            self.changes.state = true;
        }
    }
}

impl AlertBook {
    /// The group an alert belongs to, e.g. `node="nas"`.
    fn group_of(&self, id: &str) -> String {
        let Some(record) = self.alerts.get(id) else {
            return String::new();
        };
        let full = record.full_labels();
        self.config
            .group_by
            .iter()
            .map(|name| format!("{name}={:?}", full.get(name).map_or("", String::as_str)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How a notification shows an alert; the ack link names `recipient`.
    fn summary(&self, id: &str, now_ms: i64, recipient: Option<&str>) -> Option<AlertSummary> {
        let record = self.alerts.get(id)?;
        let episode = record.episode.as_ref();
        let ack_url = match (&self.config.ack_links, &record.lifecycle.state) {
            (Some(links), AlertState::Firing { .. }) => {
                Some(links.link(id, recipient.unwrap_or("link"), now_ms + ACK_LINK_VALID_MS))
            }
            _ => None,
        };
        let resolved_ms = match record.lifecycle.state {
            AlertState::Resolved { at_ms } => Some(at_ms),
            _ => None,
        };
        Some(AlertSummary {
            id: id.to_owned(),
            labels: record.full_labels(),
            annotations: record.annotations.clone(),
            severity: record.severity,
            state: record.lifecycle.state.name().to_owned(),
            since_ms: episode.map_or(record.changed_ms, |e| e.fired_ms),
            resolved_ms,
            value: record.value,
            evidence: record.evidence.clone(),
            ack_url,
        })
    }

    /// Nodes whose node-down alert is firing: their other alerts are inhibited.
    fn down_nodes(&self) -> BTreeMap<String, String> {
        self.alerts
            .values()
            .filter(|a| a.inhibits_node && a.is_active())
            .filter_map(|a| Some((a.node()?.to_owned(), a.alertname.clone())))
            .collect()
    }

    /// Why an alert is not notified now, if it is muted.
    fn mute_reason(
        &self,
        record: &AlertRecord,
        down: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> Option<String> {
        if !record.inhibits_node
            && let Some(by) = record.node().and_then(|n| down.get(n))
        {
            return Some(format!(
                "inhibited: {by} is firing for node {}",
                record.node().unwrap_or_default()
            ));
        }
        let full = record.full_labels();
        let labels = Labels::new(
            &record.alertname,
            full.into_iter().filter(|(k, _)| k != "alertname"),
        )
        .ok()?;
        self.silences
            .values()
            .find(|(_, silence)| silence.mutes(&labels, now_ms))
            .map(|(s, _)| format!("silenced by {}", s.id))
    }

    /// Why the alert `id` is muted now, for the API.
    pub fn muted(&self, id: &str, now_ms: i64) -> Option<String> {
        let record = self.alerts.get(id)?;
        self.mute_reason(record, &self.down_nodes(), now_ms)
    }

    /// Channels every firing alert goes to (not the escalation-only ones).
    fn broadcast_channels(&self) -> Vec<ChannelPolicy> {
        self.config
            .channels
            .iter()
            .filter(|c| !c.escalation_only)
            .cloned()
            .collect()
    }

    fn queue(&mut self, channel: &str, notification: Notification, incidents: Vec<String>) {
        let seq = self.next_seq();
        for incident in &incidents {
            self.event(
                incident,
                notification.at_ms,
                Happened::Queued {
                    channel: channel.to_owned(),
                    kind: notification.kind,
                    recipients: notification.recipients.clone(),
                },
            );
        }
        self.changes.outbox.push(Outgoing {
            seq,
            channel: channel.to_owned(),
            notification,
            incidents,
        });
    }

    /// Drops every alert about `node`, which ingest forgot: an open episode ends as resolved
    /// (its incident closes in the history and whoever was told hears of it) and the records
    /// go, so nothing about a node that no longer exists stays pending or firing. Returns how
    /// many alerts went.
    pub fn forget_node(&mut self, node: &str, now_ms: i64) -> usize {
        let ids: Vec<String> = self
            .alerts
            .values()
            .filter(|alert| alert.labels.get("node").is_some_and(|n| n == node))
            .map(|alert| alert.id.clone())
            .collect();
        for id in &ids {
            self.end_episode(id, now_ms);
            self.alerts.remove(id);
            self.changes.alerts.insert(id.clone());
        }
        ids.len()
    }

    /// A flapping or stopped-flapping notice, at once, to every channel that takes the severity.
    fn flapping_notice(&mut self, id: &str, kind: NotificationKind, now_ms: i64) {
        let Some(record) = self.alerts.get(id) else {
            return;
        };
        let Some(incident) = self.incident_of(id) else {
            return;
        };
        let severity = record.severity;
        let group = self.group_of(id);
        let down = self.down_nodes();
        if let Some(reason) = self.mute_reason(record, &down, now_ms) {
            self.event(&incident, now_ms, Happened::Muted { reason });
            return;
        }
        let summary = self.summary(id, now_ms, None).expect("record exists");
        self.event(
            &incident,
            now_ms,
            match kind {
                NotificationKind::Flapping => Happened::Flapping,
                _ => Happened::StoppedFlapping,
            },
        );
        for channel in self.broadcast_channels() {
            if severity < channel.limits.min_severity {
                continue;
            }
            let notification = Notification {
                kind,
                group: group.clone(),
                alerts: vec![summary.clone()],
                recipients: Vec::new(),
                at_ms: now_ms,
            };
            self.queue(&channel.name, notification, vec![incident.clone()]);
            if let Some(episode) = self.alerts.get_mut(id).and_then(|r| r.episode.as_mut()) {
                episode.notified.insert(channel.name.clone());
            }
        }
        self.changes.alerts.insert(id.to_owned());
    }

    /// Advances time: flapping that settled, groups whose window passed, escalation tiers that
    /// came due, digests the caps now allow, alerts whose mute ended, and forgetting old ones.
    pub fn tick(&mut self, now_ms: i64, flap: &LifecycleRules) {
        self.settle_flapping(now_ms, flap);
        self.announce(now_ms);
        for (key, pending) in self
            .state
            .grouper
            .ready(self.config.group_window_ms, now_ms)
        {
            self.changes.state = true;
            match key.split_once('\u{1f}') {
                Some((FIRING_GROUP, group)) => self.flush_firing(group, pending, now_ms),
                Some((_, group)) => self.flush_resolved(group, pending, now_ms),
                None => {}
            }
        }
        self.escalate(now_ms);
        self.send_digests(now_ms);
        self.forget(now_ms);
    }

    fn settle_flapping(&mut self, now_ms: i64, flap: &LifecycleRules) {
        let flapping: Vec<String> = self
            .alerts
            .values()
            .filter(|a| a.lifecycle.flapping)
            .map(|a| a.id.clone())
            .collect();
        for id in flapping {
            let record = self.alerts.get_mut(&id).expect("listed above");
            if record.lifecycle.check_flapping(flap, now_ms) != Some(Notice::StoppedFlapping) {
                continue;
            }
            self.changes.alerts.insert(id.clone());
            self.flapping_notice(&id, NotificationKind::StoppedFlapping, now_ms);
            if !self.alerts[&id].is_active() {
                self.end_episode(&id, now_ms);
            }
        }
    }

    /// Queues firing alerts that were not announced yet (or rose in severity) into their
    /// group, unless muted.
    fn announce(&mut self, now_ms: i64) {
        let down = self.down_nodes();
        let mut due = Vec::new();
        for record in self.alerts.values() {
            let Some(episode) = &record.episode else {
                continue;
            };
            if !record.is_active()
                || record.lifecycle.flapping
                || episode.announced.is_some_and(|s| s >= record.severity)
            {
                continue;
            }
            match self.mute_reason(record, &down, now_ms) {
                Some(_) => continue,
                None => due.push((record.id.clone(), record.severity)),
            }
        }
        for (id, severity) in due {
            let group = self.group_of(&id);
            self.state.grouper.add(
                &group_key(FIRING_GROUP, &group),
                Pending {
                    alert: id.clone(),
                    severity,
                },
                now_ms,
            );
            self.changes.state = true;
            if let Some(episode) = self.alerts.get_mut(&id).and_then(|r| r.episode.as_mut()) {
                episode.announced = Some(severity);
            }
            self.changes.alerts.insert(id);
        }
    }

    fn flush_firing(&mut self, group: &str, pending: Vec<Pending>, now_ms: i64) {
        let down = self.down_nodes();
        let mut alerts: Vec<(String, Severity, String)> = Vec::new();
        for p in pending {
            let Some(record) = self.alerts.get(&p.alert) else {
                continue;
            };
            let Some(episode) = &record.episode else {
                continue;
            };
            if !record.is_active() || record.lifecycle.flapping {
                continue;
            }
            if let Some(reason) = self.mute_reason(record, &down, now_ms) {
                // Announced again when the mute ends.
                let incident = episode.incident.clone();
                self.event(&incident, now_ms, Happened::Muted { reason });
                if let Some(e) = self
                    .alerts
                    .get_mut(&p.alert)
                    .and_then(|r| r.episode.as_mut())
                {
                    e.announced = None;
                }
                self.changes.alerts.insert(p.alert);
                continue;
            }
            if !alerts.iter().any(|(id, ..)| *id == p.alert) {
                alerts.push((p.alert, record.severity, episode.incident.clone()));
            }
        }
        for channel in self.broadcast_channels() {
            let mut sending = Vec::new();
            for (id, severity, incident) in &alerts {
                let decision = self.state.throttle.decide(
                    &channel.name,
                    &channel.limits,
                    Pending {
                        // Per severity, so a rise to critical is not "too soon".
                        alert: format!("{id}/{}", severity.name()),
                        severity: *severity,
                    },
                    now_ms,
                );
                match decision {
                    Decision::Send => sending.push((id.clone(), incident.clone())),
                    Decision::HeldForDigest => {
                        let what = Happened::HeldForDigest {
                            channel: channel.name.clone(),
                        };
                        self.event(incident, now_ms, what);
                        self.mark_notified(id, &channel.name);
                    }
                    Decision::BelowSeverity | Decision::TooSoon => {}
                }
            }
            if sending.is_empty() {
                continue;
            }
            let summaries = sending
                .iter()
                .filter_map(|(id, _)| self.summary(id, now_ms, None))
                .collect();
            for (id, _) in &sending {
                self.mark_notified(id, &channel.name);
            }
            let notification = Notification {
                kind: NotificationKind::Firing,
                group: group.to_owned(),
                alerts: summaries,
                recipients: Vec::new(),
                at_ms: now_ms,
            };
            let incidents = sending.into_iter().map(|(_, i)| i).collect();
            self.queue(&channel.name, notification, incidents);
        }
    }

    fn mark_notified(&mut self, id: &str, target: &str) {
        if let Some(episode) = self.alerts.get_mut(id).and_then(|r| r.episode.as_mut()) {
            episode.notified.insert(target.to_owned());
            self.changes.alerts.insert(id.to_owned());
        }
    }

    /// Resolved notices, to every target each alert's firing reached.
    fn flush_resolved(&mut self, group: &str, pending: Vec<Pending>, now_ms: i64) {
        let closing: Vec<(String, Closing)> = pending
            .into_iter()
            .filter_map(|p| {
                let c = self.state.closing.remove(&p.alert)?;
                Some((p.alert, c))
            })
            .collect();
        let targets: BTreeSet<String> = closing
            .iter()
            .flat_map(|(_, c)| c.notified.iter().cloned())
            .collect();
        for target in targets {
            let (channel, address) = split_target(&target);
            let (incidents, alerts): (Vec<String>, Vec<AlertSummary>) = closing
                .iter()
                .filter(|(_, c)| c.notified.contains(&target))
                .map(|(incident, c)| (incident.clone(), c.alert.clone()))
                .unzip();
            let notification = Notification {
                kind: NotificationKind::Resolved,
                group: group.to_owned(),
                alerts,
                recipients: address.map(str::to_owned).into_iter().collect(),
                at_ms: now_ms,
            };
            self.queue(channel, notification, incidents);
        }
    }

    fn escalate(&mut self, now_ms: i64) {
        let down = self.down_nodes();
        let mut due: Vec<(String, Vec<usize>)> = Vec::new();
        for record in self.alerts.values() {
            let Some(episode) = &record.episode else {
                continue;
            };
            let firing = matches!(record.lifecycle.state, AlertState::Firing { .. });
            if !firing
                || record.lifecycle.flapping
                || record.severity < self.config.escalation_min_severity
                || self.mute_reason(record, &down, now_ms).is_some()
            {
                continue;
            }
            let tiers = episode
                .policy
                .due(episode.fired_ms, now_ms, episode.tiers_notified, false);
            if !tiers.is_empty() {
                due.push((record.id.clone(), tiers));
            }
        }
        for (id, tiers) in due {
            for tier in tiers {
                self.escalate_to(&id, tier, now_ms);
            }
        }
    }

    fn escalate_to(&mut self, id: &str, tier: usize, now_ms: i64) {
        let Some(episode) = self.alerts.get(id).and_then(|r| r.episode.clone()) else {
            return;
        };
        let recipients = episode.policy.tiers[tier].recipients.clone();
        let group = self.group_of(id);
        self.event(
            &episode.incident,
            now_ms,
            Happened::Escalated {
                tier,
                recipients: recipients.clone(),
            },
        );
        for recipient in &recipients {
            let targets = self
                .config
                .recipients
                .get(recipient)
                .cloned()
                .unwrap_or_else(|| vec![recipient.clone()]);
            for target in targets {
                let (channel, address) = split_target(&target);
                let Some(summary) = self.summary(id, now_ms, Some(recipient)) else {
                    continue;
                };
                let notification = Notification {
                    kind: NotificationKind::Escalation { tier },
                    group: group.clone(),
                    alerts: vec![summary],
                    recipients: address.map(str::to_owned).into_iter().collect(),
                    at_ms: now_ms,
                };
                let channel = channel.to_owned();
                self.queue(&channel, notification, vec![episode.incident.clone()]);
                self.mark_notified(id, &target);
            }
        }
        if let Some(e) = self.alerts.get_mut(id).and_then(|r| r.episode.as_mut()) {
            e.tiers_notified = tier + 1;
        }
        self.changes.alerts.insert(id.to_owned());
    }

    fn send_digests(&mut self, now_ms: i64) {
        for channel in self.state.throttle.held_channels() {
            let Some(policy) = self.config.channels.iter().find(|c| c.name == channel) else {
                continue;
            };
            let limits = policy.limits;
            let Some(held) = self.state.throttle.take_digest(&channel, &limits, now_ms) else {
                continue;
            };
            self.changes.state = true;
            let mut alerts = Vec::new();
            let mut incidents = Vec::new();
            for pending in held {
                let id = pending.alert.split('/').next().unwrap_or_default();
                if alerts.iter().any(|a: &AlertSummary| a.id == id) {
                    continue;
                }
                if let Some(summary) = self.summary(id, now_ms, None) {
                    incidents.extend(self.incident_of(id));
                    alerts.push(summary);
                }
            }
            if alerts.is_empty() {
                continue;
            }
            let notification = Notification {
                kind: NotificationKind::Digest,
                group: String::new(),
                alerts,
                recipients: Vec::new(),
                at_ms: now_ms,
            };
            self.queue(&channel, notification, incidents);
        }
    }

    /// Forgets alerts resolved or inactive for an hour, and old throttle entries.
    fn forget(&mut self, now_ms: i64) {
        let old: Vec<String> = self
            .alerts
            .values()
            .filter(|a| {
                a.episode.is_none()
                    && !a.lifecycle.flapping
                    && matches!(
                        a.lifecycle.state,
                        AlertState::Resolved { .. } | AlertState::Inactive
                    )
                    && now_ms - a.changed_ms > KEEP_RESOLVED_MS
            })
            .map(|a| a.id.clone())
            .collect();
        for id in old {
            self.alerts.remove(&id);
            self.changes.alerts.insert(id);
        }
        self.state
            .throttle
            .forget_before(now_ms - THROTTLE_MEMORY_MS);
    }

    /// Attaches the series that moved with a firing alert (from the correlation engine).
    pub fn set_related(&mut self, id: &str, related: Vec<String>) {
        if let Some(record) = self.alerts.get_mut(id)
            && record.episode.is_some()
        {
            record.evidence.related = related;
            self.changes.alerts.insert(id.to_owned());
        }
    }

    /// Acknowledges a firing alert: escalation stops; the alert stays until it resolves.
    pub fn acknowledge(&mut self, id: &str, by: &str, now_ms: i64) -> Result<(), BookError> {
        let record = self
            .alerts
            .get_mut(id)
            .ok_or_else(|| BookError::NoSuchAlert(id.to_owned()))?;
        record
            .lifecycle
            .acknowledge(now_ms, by)
            .map_err(|e| BookError::Refused(e.to_string()))?;
        record.changed_ms = now_ms;
        let incident = record.episode.as_mut().map(|e| {
            e.acknowledged = Some((now_ms, by.to_owned()));
            e.incident.clone()
        });
        self.changes.alerts.insert(id.to_owned());
        if let Some(incident) = incident {
            self.event(&incident, now_ms, Happened::Acknowledged { by: by.into() });
            if let Some(open) = self.incidents.get_mut(&incident) {
                open.acknowledged = Some((now_ms, by.to_owned()));
                self.changes.incidents.insert(incident);
            }
        }
        Ok(())
    }

    /// Adds (or replaces, by id) a silence.
    pub fn silence(&mut self, record: SilenceRecord) -> Result<(), BookError> {
        let compiled = record.compile().map_err(BookError::Refused)?;
        self.changes.silences.insert(record.id.clone());
        self.silences.insert(record.id.clone(), (record, compiled));
        Ok(())
    }

    /// Ends a silence now; it stays listed as expired.
    pub fn expire_silence(&mut self, id: &str, now_ms: i64) -> Result<(), BookError> {
        let (record, compiled) = self
            .silences
            .get_mut(id)
            .ok_or_else(|| BookError::NoSuchSilence(id.to_owned()))?;
        record.ends_ms = record.ends_ms.min(now_ms);
        // Saturating: records stored before requests were range-checked may hold any time.
        record.starts_ms = record.starts_ms.min(record.ends_ms.saturating_sub(1));
        compiled.until_ms = record.ends_ms;
        compiled.from_ms = record.starts_ms;
        self.changes.silences.insert(id.to_owned());
        Ok(())
    }

    /// Records how a queued notification's delivery went, in each incident it told about.
    pub fn delivered(
        &mut self,
        outgoing: &Outgoing,
        attempts: u32,
        errors: Vec<String>,
        delivered: bool,
        now_ms: i64,
    ) {
        let (channel, kind) = (outgoing.channel.clone(), outgoing.notification.kind);
        for incident in &outgoing.incidents {
            let what = match delivered {
                true => Happened::Delivered {
                    channel: channel.clone(),
                    kind,
                    attempts,
                    errors: errors.clone(),
                },
                false => Happened::DeliveryFailed {
                    channel: channel.clone(),
                    kind,
                    attempts,
                    errors: errors.clone(),
                },
            };
            self.event(incident, now_ms, what);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::escalation::Tier;
    use crate::alerting::lifecycle::{Direction, Threshold};
    use std::time::Duration;

    const MIN: i64 = 60_000;

    fn channel(name: &str, min: Severity, per_hour: usize, escalation_only: bool) -> ChannelPolicy {
        ChannelPolicy {
            name: name.into(),
            limits: ChannelLimits {
                min_severity: min,
                min_interval_ms: 5 * MIN,
                max_per_hour: per_hour,
            },
            escalation_only,
        }
    }

    fn config(per_hour: usize) -> BookConfig {
        let tier = |m: u64, who: &str| Tier {
            after: Duration::from_secs(m * 60),
            recipients: vec![who.into()],
        };
        BookConfig {
            group_by: vec!["node".into()],
            group_window_ms: MIN,
            channels: vec![
                channel("email", Severity::Warning, per_hour, false),
                channel("slack", Severity::Error, per_hour, false),
                channel("pager", Severity::Warning, 100, true),
            ],
            recipients: BTreeMap::from([
                ("on-call".into(), vec!["pager:oncall".into()]),
                (
                    "manager".into(),
                    vec!["pager:manager".into(), "email:boss@example.com".into()],
                ),
                ("director".into(), vec!["pager:director".into()]),
            ]),
            escalation: EscalationPolicy {
                tiers: vec![
                    tier(15, "on-call"),
                    tier(30, "manager"),
                    tier(60, "director"),
                ],
            },
            escalation_min_severity: Severity::Error,
            ack_links: None,
        }
    }

    fn flap_rules() -> LifecycleRules {
        LifecycleRules {
            threshold: Threshold {
                direction: Direction::Above,
                fire: 1.0,
                recover: 0.0,
            },
            for_ms: 0,
            flap_window_ms: 30 * MIN,
            flap_max_changes: 4,
        }
    }

    fn obs(name: &str, node: &str, value: f64) -> Observation {
        Observation {
            alertname: name.into(),
            labels: BTreeMap::from([("node".to_owned(), node.to_owned())]),
            value,
            rules: LifecycleRules {
                threshold: Threshold {
                    direction: Direction::Above,
                    fire: 0.9,
                    recover: 0.8,
                },
                ..flap_rules()
            },
            severity: (value >= 0.9).then_some(Severity::Error),
            annotations: BTreeMap::new(),
            evidence: Evidence::default(),
            inhibits_node: name == "AgentSilent",
            judged: None,
        }
    }

    /// Runs the book like the service does, collecting what it queues.
    struct Harness {
        book: AlertBook,
        sent: Vec<Outgoing>,
        now: i64,
    }

    impl Harness {
        fn new(per_hour: usize) -> Self {
            Self {
                book: AlertBook::restore(
                    config(per_hour),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    BookState::default(),
                ),
                sent: Vec::new(),
                now: 1_000 * MIN,
            }
        }

        fn observe(&mut self, name: &str, node: &str, value: f64) {
            self.book.observe(obs(name, node, value), self.now);
            self.tick();
        }

        fn tick(&mut self) {
            self.book.tick(self.now, &flap_rules());
            self.sent.extend(self.book.take_changes().outbox);
        }

        fn advance(&mut self, ms: i64) {
            let end = self.now + ms;
            while self.now < end {
                self.now = (self.now + 10_000).min(end);
                self.tick();
            }
        }

        fn take(&mut self) -> Vec<(String, NotificationKind, usize, Vec<String>)> {
            self.sent
                .drain(..)
                .map(|o| {
                    let n = o.notification;
                    (o.channel, n.kind, n.alerts.len(), n.recipients)
                })
                .collect()
        }

        fn id(&self, name: &str, node: &str) -> String {
            alert_id(name, &obs(name, node, 0.0).labels)
        }
    }

    #[test]
    fn a_burst_of_one_node_is_one_notification_per_channel_after_the_window() {
        let mut h = Harness::new(10);
        h.observe("HighCpu", "nas", 0.95);
        h.advance(10_000);
        h.observe("HighMemory", "nas", 0.95);
        h.observe("DiskFull", "nas", 0.95);
        h.observe("HighCpu", "pi", 0.95);
        assert!(h.take().is_empty(), "the window is still open");
        h.advance(MIN - 10_000);
        let sent = h.take();
        assert_eq!(
            sent,
            vec![
                ("email".into(), NotificationKind::Firing, 3, vec![]),
                ("slack".into(), NotificationKind::Firing, 3, vec![]),
            ],
            "the pager is escalation-only"
        );
        h.advance(10_000);
        assert_eq!(
            h.take().len(),
            2,
            "the other node's group, in its own window"
        );
    }

    #[test]
    fn the_hourly_cap_holds_the_rest_for_a_digest() {
        let mut h = Harness::new(2);
        for node in ["a", "b", "c", "d", "e"] {
            h.observe("HighCpu", node, 0.95);
        }
        h.advance(MIN);
        let sent = h.take();
        let email: Vec<_> = sent.iter().filter(|s| s.0 == "email").collect();
        assert_eq!(email.len(), 2, "capped at two an hour: {sent:?}");
        h.advance(30 * MIN);
        assert!(h.take().iter().all(|s| s.1 != NotificationKind::Digest));
        h.advance(31 * MIN);
        let digests: Vec<_> = h
            .take()
            .into_iter()
            .filter(|s| s.1 == NotificationKind::Digest)
            .collect();
        assert_eq!(
            digests,
            vec![
                ("email".into(), NotificationKind::Digest, 3, vec![]),
                ("slack".into(), NotificationKind::Digest, 3, vec![]),
            ],
            "nothing held back is dropped"
        );
    }

    #[test]
    fn escalation_reaches_three_tiers_and_an_ack_stops_it() {
        let mut h = Harness::new(10);
        h.observe("HighCpu", "nas", 0.95);
        h.advance(MIN);
        h.take();
        h.advance(14 * MIN - 10_000);
        assert!(h.take().is_empty());
        h.advance(10_000);
        assert_eq!(
            h.take(),
            vec![(
                "pager".into(),
                NotificationKind::Escalation { tier: 0 },
                1,
                vec!["oncall".into()]
            )]
        );
        h.advance(15 * MIN);
        assert_eq!(
            h.take(),
            vec![
                (
                    "pager".into(),
                    NotificationKind::Escalation { tier: 1 },
                    1,
                    vec!["manager".into()]
                ),
                (
                    "email".into(),
                    NotificationKind::Escalation { tier: 1 },
                    1,
                    vec!["boss@example.com".into()]
                ),
            ]
        );
        h.advance(30 * MIN);
        assert_eq!(h.take()[0].1, NotificationKind::Escalation { tier: 2 });
        h.advance(3 * 60 * MIN);
        assert!(h.take().is_empty(), "every tier once");

        // A second alert, acknowledged after the first tier.
        h.observe("HighCpu", "pi", 0.95);
        h.advance(16 * MIN);
        let tiers: Vec<_> = h
            .take()
            .into_iter()
            .filter(|s| matches!(s.1, NotificationKind::Escalation { .. }))
            .collect();
        assert_eq!(tiers.len(), 1);
        let id = h.id("HighCpu", "pi");
        h.book.acknowledge(&id, "alice", h.now).unwrap();
        h.advance(2 * 60 * MIN);
        assert!(h.take().is_empty(), "acknowledged: no further tiers");
        let err = h.book.acknowledge(&id, "bob", h.now).unwrap_err();
        assert!(err.to_string().contains("acknowledged"), "{err}");

        // Resolution reaches everyone who heard of it, escalation tiers included.
        h.observe("HighCpu", "nas", 0.1);
        h.advance(MIN);
        let mut resolved = h.take();
        resolved.sort_by(|a, b| (&a.0, &a.3).cmp(&(&b.0, &b.3)));
        assert_eq!(
            resolved,
            vec![
                ("email".into(), NotificationKind::Resolved, 1, vec![]),
                (
                    "email".into(),
                    NotificationKind::Resolved,
                    1,
                    vec!["boss@example.com".into()]
                ),
                (
                    "pager".into(),
                    NotificationKind::Resolved,
                    1,
                    vec!["director".into()]
                ),
                (
                    "pager".into(),
                    NotificationKind::Resolved,
                    1,
                    vec!["manager".into()]
                ),
                (
                    "pager".into(),
                    NotificationKind::Resolved,
                    1,
                    vec!["oncall".into()]
                ),
                ("slack".into(), NotificationKind::Resolved, 1, vec![]),
            ]
        );
    }

    #[test]
    fn silences_mute_and_an_expired_silence_lets_the_alert_through() {
        let mut h = Harness::new(10);
        h.book
            .silence(SilenceRecord {
                id: "s1".into(),
                matchers: "HighCpu{node=\"nas\"}".into(),
                starts_ms: h.now,
                ends_ms: h.now + 60 * MIN,
                daily: None,
                created_by: "alice".into(),
                comment: "upgrade".into(),
                created_ms: h.now,
            })
            .unwrap();
        h.observe("HighCpu", "nas", 0.95);
        h.observe("HighMemory", "nas", 0.95);
        h.advance(30 * MIN);
        let sent = h.take();
        assert!(
            sent.iter().all(|s| s.2 == 1),
            "only the memory alert goes out: {sent:?}"
        );
        let id = h.id("HighCpu", "nas");
        assert!(h.book.muted(&id, h.now).unwrap().contains("s1"));
        h.book.expire_silence("s1", h.now).unwrap();
        h.advance(2 * MIN);
        let sent = h.take();
        assert!(
            sent.iter()
                .any(|s| s.0 == "email" && s.1 == NotificationKind::Firing),
            "announced once the silence ends: {sent:?}"
        );
        assert!(
            sent.iter()
                .any(|s| s.1 == NotificationKind::Escalation { tier: 0 }),
            "and its escalation resumes where it stood: {sent:?}"
        );
    }

    #[test]
    fn a_node_that_is_down_mutes_its_other_alerts() {
        let mut h = Harness::new(10);
        h.observe("AgentSilent", "nas", 0.95);
        h.observe("HighCpu", "nas", 0.95);
        h.advance(MIN);
        let sent = h.take();
        assert!(sent.iter().all(|s| s.2 == 1), "{sent:?}");
        let cpu = h.id("HighCpu", "nas");
        assert!(h.book.muted(&cpu, h.now).unwrap().contains("inhibited"));
        h.observe("AgentSilent", "nas", 0.1);
        h.advance(2 * MIN);
        let sent = h.take();
        assert!(
            sent.iter().any(|s| s.1 == NotificationKind::Firing),
            "{sent:?}"
        );
    }

    #[test]
    fn forgetting_a_node_resolves_its_alerts_and_drops_them() {
        let mut h = Harness::new(10);
        h.observe("AgentSilent", "gone", 0.95);
        h.observe("HighCpu", "gone", 0.95);
        h.observe("HighCpu", "nas", 0.95);
        h.advance(MIN);
        h.take();
        assert_eq!(h.book.forget_node("gone", h.now), 2);
        let left: Vec<_> = h.book.alerts().map(|a| a.labels["node"].clone()).collect();
        assert_eq!(left, ["nas"]);
        h.advance(2 * MIN);
        let sent = h.take();
        assert!(
            sent.iter().any(|s| s.1 == NotificationKind::Resolved),
            "whoever was told hears it resolved: {sent:?}"
        );
        assert_eq!(h.book.forget_node("gone", h.now), 0);
    }

    #[test]
    fn flapping_is_one_notice_not_a_storm() {
        let mut h = Harness::new(100);
        h.observe("HighCpu", "nas", 0.95);
        h.advance(MIN);
        h.take();
        for _ in 0..10 {
            h.observe("HighCpu", "nas", 0.1);
            h.advance(10_000);
            h.observe("HighCpu", "nas", 0.95);
            h.advance(10_000);
        }
        let sent = h.take();
        let flapping = sent
            .iter()
            .filter(|s| s.1 == NotificationKind::Flapping)
            .count();
        assert_eq!(flapping, 2, "one per broadcast channel: {sent:?}");
        assert!(
            sent.iter()
                .all(|s| matches!(s.1, NotificationKind::Flapping | NotificationKind::Resolved)),
            "{sent:?}"
        );
        h.observe("HighCpu", "nas", 0.1);
        h.advance(33 * MIN);
        let sent = h.take();
        assert!(
            sent.iter()
                .any(|s| s.1 == NotificationKind::StoppedFlapping)
        );
        assert!(
            sent.iter().any(|s| s.1 == NotificationKind::Resolved),
            "{sent:?}"
        );
    }

    #[test]
    fn related_series_stay_with_the_episode_and_reach_the_notification() {
        let mut h = Harness::new(10);
        h.observe("HighCpu", "nas", 0.95);
        let id = h.id("HighCpu", "nas");
        h.book
            .set_related(&id, vec!["node_load1{node=\"nas\"} rose with it".into()]);
        h.observe("HighCpu", "nas", 0.97);
        h.advance(MIN);
        let sent: Vec<Outgoing> = std::mem::take(&mut h.sent);
        let related = &sent[0].notification.alerts[0].evidence.related;
        assert_eq!(related.len(), 1, "kept across later samples: {sent:?}");
        h.observe("HighCpu", "nas", 0.1);
        h.observe("HighCpu", "nas", 0.95);
        assert!(
            h.book.alert(&id).unwrap().evidence.related.is_empty(),
            "a new episode starts without the old correlation"
        );
    }

    #[test]
    fn a_restart_mid_escalation_neither_repeats_nor_skips_a_tier() {
        let mut h = Harness::new(10);
        h.observe("HighCpu", "nas", 0.95);
        h.advance(20 * MIN);
        let before = h.take();
        assert_eq!(
            before
                .iter()
                .filter(|s| matches!(s.1, NotificationKind::Escalation { .. }))
                .count(),
            1
        );
        // What the store holds: every record as JSON, and the state.
        let alerts: Vec<AlertRecord> = h
            .book
            .alerts()
            .map(|a| serde_json::from_str(&serde_json::to_string(a).unwrap()).unwrap())
            .collect();
        let state: BookState =
            serde_json::from_str(&serde_json::to_string(h.book.state()).unwrap()).unwrap();
        let incidents: Vec<Incident> = h.book.incidents.values().cloned().collect();
        // Down for 45 minutes: tier 1 (30 min) and tier 2 (60 min) both came due meanwhile.
        let mut h2 = Harness::new(10);
        h2.book = AlertBook::restore(config(10), alerts, Vec::new(), incidents, state);
        h2.now = h.now + 45 * MIN;
        h2.tick();
        let after = h2.take();
        let tiers: Vec<_> = after.iter().map(|s| s.1).collect();
        assert_eq!(
            tiers,
            vec![
                NotificationKind::Escalation { tier: 1 },
                NotificationKind::Escalation { tier: 1 },
                NotificationKind::Escalation { tier: 2 },
            ]
        );
        h2.advance(60 * MIN);
        assert!(h2.take().is_empty());
    }
}

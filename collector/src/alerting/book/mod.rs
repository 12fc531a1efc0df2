//! The alert book: every alert's state and what follows from it, as pure logic. Observations
//! (a rule's verdict on one series or node) and clock ticks go in; notifications to deliver,
//! incident history and the records that changed come out. No I/O and no clock: the collector
//! persists [`Changes`] in RocksDB and delivers the [`Outgoing`] notifications, and tests drive
//! hours of escalation in microseconds.
//!
//! Layout: this file holds the records and the book's bookkeeping; `observe.rs` is the
//! observation side (alerts, lifecycles, episodes, incidents, acknowledgements), `silence.rs`
//! what mutes an alert (silences, inhibition by a node-down alert), and `notify.rs` the
//! notification side (grouping, throttles, escalation tiers reached, the outbox and digests).
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

mod notify;
mod observe;
mod silence;
#[cfg(test)]
mod tests;

pub use silence::{DownNodes, SilenceError, SilenceRecord};

use super::escalation::EscalationPolicy;
use super::ids::{AlertId, IncidentId, SilenceId, Target};
use super::lifecycle::{Lifecycle, LifecycleRules};
use super::notify::{AlertSummary, Evidence, Notification, NotificationKind};
use super::policy::{ChannelLimits, Grouper, Severity, Silence, Throttle};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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
    fn link(&self, alert: &AlertId, by: &str, expires_ms: i64) -> String;
}

/// The notification policy.
pub struct BookConfig {
    /// Labels whose values make an alert's group (default `node`).
    pub group_by: Vec<String>,
    /// Alerts of one group that fire within this window go out as one notification.
    pub group_window_ms: i64,
    pub channels: Vec<ChannelPolicy>,
    /// Recipient name → where to reach them.
    pub recipients: BTreeMap<String, Vec<Target>>,
    pub escalation: EscalationPolicy,
    /// Alerts below this severity are notified but not escalated.
    pub escalation_min_severity: Severity,
    pub ack_links: Option<Box<dyn AckLinks>>,
}

#[cfg(test)]
impl BookConfig {
    /// Grouped by node, no grouping window, channels, recipients or escalation tiers: the
    /// policy the rule tests judge against.
    pub(crate) fn bare() -> Self {
        Self {
            group_by: vec!["node".into()],
            group_window_ms: 0,
            channels: Vec::new(),
            recipients: BTreeMap::new(),
            escalation: EscalationPolicy { tiers: Vec::new() },
            escalation_min_severity: Severity::Error,
            ack_links: None,
        }
    }
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
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub incident: IncidentId,
    pub fired_ms: i64,
    /// The escalation policy as it was when the alert fired.
    pub policy: EscalationPolicy,
    pub tiers_notified: usize,
    /// Targets told that it fired.
    pub notified: BTreeSet<Target>,
    /// The highest severity queued for channels; `None` until announced (or while muted).
    pub announced: Option<Severity>,
    pub acknowledged: Option<(i64, String)>,
}

/// An alert and its current episode.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    pub id: AlertId,
    pub alertname: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub lifecycle: Lifecycle,
    pub severity: Severity,
    /// Non-finite too: a forecast that no longer reaches its limit is +Inf.
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

/// The incident record of one episode: what a later SLA report reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: IncidentId,
    pub alert: AlertId,
    pub labels: BTreeMap<String, String>,
    pub severity: Severity,
    pub started_ms: i64,
    pub acknowledged: Option<(i64, String)>,
    pub resolved_ms: Option<i64>,
}

/// One entry of an incident's history.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentEvent {
    /// Order of events across all incidents.
    pub seq: u64,
    pub incident: IncidentId,
    pub at_ms: i64,
    pub what: Happened,
}

/// What happened to an incident.
#[derive(Debug, Clone, PartialEq)]
pub enum Happened {
    Fired {
        severity: Severity,
        value: f64,
    },
    SeverityRaised {
        severity: Severity,
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
    /// Not delivered by this collector of an HA pair: the other one delivered it
    /// (`by_peer`), or was left to send it (see `pair`).
    HandedToPeer {
        channel: String,
        kind: NotificationKind,
        by_peer: bool,
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
        value: f64,
    },
}

/// A notification queued for delivery on one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub seq: u64,
    pub channel: String,
    pub notification: Notification,
    /// The incidents it tells about, for the delivery's history entry.
    pub incidents: Vec<IncidentId>,
}

/// What changed since the last [`AlertBook::take_changes`], for the store.
#[derive(Debug, Default)]
pub struct Changes {
    /// Alerts to write (`Some`, their current record) or delete (`None`), by id.
    pub alerts: BTreeMap<AlertId, Option<AlertRecord>>,
    /// Silences to write or delete, by id.
    pub silences: BTreeMap<SilenceId, Option<SilenceRecord>>,
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
#[derive(Debug, Clone, PartialEq)]
pub struct Closing {
    pub alert: AlertSummary,
    pub notified: BTreeSet<Target>,
}

/// The book's small shared state, persisted as one value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookState {
    pub next_seq: u64,
    pub throttle: Throttle,
    pub grouper: Grouper,
    /// Resolved episodes waiting to be announced, by incident.
    pub closing: BTreeMap<IncidentId, Closing>,
}

/// Why an operator request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BookError {
    #[error("no alert with id {:?}", .0.as_str())]
    NoSuchAlert(AlertId),
    #[error("no silence with id {:?}", .0.as_str())]
    NoSuchSilence(SilenceId),
    #[error("{0}")]
    Refused(String),
}

/// Every alert, silence and open incident, with the policy that turns them into notifications.
pub struct AlertBook {
    config: BookConfig,
    /// Shared with the published views: a record is copied only when it changes while a view
    /// holds it (`Arc::make_mut`), not for every view.
    alerts: BTreeMap<AlertId, Arc<AlertRecord>>,
    silences: BTreeMap<SilenceId, (SilenceRecord, Silence)>,
    incidents: BTreeMap<IncidentId, Incident>,
    state: BookState,
    changes: Dirty,
}

/// What changed, by id, until [`AlertBook::take_changes`] collects the values.
#[derive(Debug, Default)]
struct Dirty {
    alerts: BTreeSet<AlertId>,
    silences: BTreeSet<SilenceId>,
    incidents: BTreeSet<IncidentId>,
    /// Resolved incidents: written once more, then only the store has them.
    closed: Vec<Incident>,
    events: Vec<IncidentEvent>,
    outbox: Vec<Outgoing>,
    state: bool,
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
            alerts: alerts
                .into_iter()
                .map(|a| (a.id.clone(), Arc::new(a)))
                .collect(),
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
        self.alerts.values().map(|a| &**a)
    }

    /// The records as shared with a published view.
    pub fn shared_alerts(&self) -> impl Iterator<Item = &Arc<AlertRecord>> {
        self.alerts.values()
    }

    pub fn alert(&self, id: &AlertId) -> Option<&AlertRecord> {
        self.alerts.get(id).map(|a| &**a)
    }

    pub fn silences(&self) -> impl Iterator<Item = &SilenceRecord> {
        self.silences.values().map(|(s, _)| s)
    }

    pub fn incident(&self, id: &IncidentId) -> Option<&Incident> {
        self.incidents.get(id)
    }

    /// Whether anything changed since the last [`AlertBook::take_changes`].
    pub fn has_changes(&self) -> bool {
        let d = &self.changes;
        !(d.alerts.is_empty()
            && d.silences.is_empty()
            && d.incidents.is_empty()
            && d.closed.is_empty()
            && d.events.is_empty()
            && d.outbox.is_empty()
            && !d.state)
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
                    let record = self.alerts.get(&id).map(|a| AlertRecord::clone(a));
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

    fn event(&mut self, incident: &IncidentId, at_ms: i64, what: Happened) {
        let seq = self.next_seq();
        self.changes.events.push(IncidentEvent {
            seq,
            incident: incident.clone(),
            at_ms,
            what,
        });
    }
}

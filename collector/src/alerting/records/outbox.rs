//! The outbox record, `o/<seq>`: a notification queued for one channel, not yet delivered.

use super::{EvidenceV2, NotificationKindV2, Record, RecordError, RecordKind, SeverityV2};
use crate::alerting::book::Outgoing;
use crate::alerting::lifecycle::StateKind;
use crate::alerting::notify::{AlertSummary, Notification};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An alert's state as a notification shows it, by its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StateKindV2 {
    Inactive,
    Pending,
    Firing,
    Acknowledged,
    Resolved,
}

impl From<StateKind> for StateKindV2 {
    fn from(s: StateKind) -> Self {
        match s {
            StateKind::Inactive => StateKindV2::Inactive,
            StateKind::Pending => StateKindV2::Pending,
            StateKind::Firing => StateKindV2::Firing,
            StateKind::Acknowledged => StateKindV2::Acknowledged,
            StateKind::Resolved => StateKindV2::Resolved,
        }
    }
}

impl From<StateKindV2> for StateKind {
    fn from(s: StateKindV2) -> Self {
        match s {
            StateKindV2::Inactive => StateKind::Inactive,
            StateKindV2::Pending => StateKind::Pending,
            StateKindV2::Firing => StateKind::Firing,
            StateKindV2::Acknowledged => StateKind::Acknowledged,
            StateKindV2::Resolved => StateKind::Resolved,
        }
    }
}

/// One alert as a queued notification shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct AlertSummaryV2 {
    id: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    severity: SeverityV2,
    state: StateKindV2,
    since_ms: i64,
    #[serde(default)]
    resolved_ms: Option<i64>,
    #[serde(with = "crate::json_f64")]
    value: f64,
    #[serde(default)]
    evidence: EvidenceV2,
    #[serde(default)]
    ack_url: Option<String>,
}

impl From<&AlertSummary> for AlertSummaryV2 {
    fn from(a: &AlertSummary) -> Self {
        Self {
            id: a.id.to_string(),
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            severity: a.severity.into(),
            state: a.state.into(),
            since_ms: a.since_ms,
            resolved_ms: a.resolved_ms,
            value: a.value,
            evidence: (&a.evidence).into(),
            ack_url: a.ack_url.clone(),
        }
    }
}

impl From<AlertSummaryV2> for AlertSummary {
    fn from(a: AlertSummaryV2) -> Self {
        Self {
            id: a.id.into(),
            labels: a.labels,
            annotations: a.annotations,
            severity: a.severity.into(),
            state: a.state.into(),
            since_ms: a.since_ms,
            resolved_ms: a.resolved_ms,
            value: a.value,
            evidence: a.evidence.into(),
            ack_url: a.ack_url,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NotificationV2 {
    kind: NotificationKindV2,
    #[serde(default)]
    group: String,
    #[serde(default)]
    alerts: Vec<AlertSummaryV2>,
    #[serde(default)]
    recipients: Vec<String>,
    at_ms: i64,
}

/// `o/<seq, big-endian>`: a notification queued for one channel, not yet delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRecordV2 {
    seq: u64,
    channel: String,
    notification: NotificationV2,
    #[serde(default)]
    incidents: Vec<String>,
}

impl Record for OutboxRecordV2 {
    type Domain = Outgoing;
    const KIND: RecordKind = RecordKind::Outbox;

    fn of(o: &Outgoing) -> Self {
        let n = &o.notification;
        Self {
            seq: o.seq,
            channel: o.channel.clone(),
            notification: NotificationV2 {
                kind: n.kind.into(),
                group: n.group.clone(),
                alerts: n.alerts.iter().map(Into::into).collect(),
                recipients: n.recipients.clone(),
                at_ms: n.at_ms,
            },
            incidents: o.incidents.iter().map(ToString::to_string).collect(),
        }
    }

    fn into_domain(self) -> Result<Outgoing, RecordError> {
        let n = self.notification;
        Ok(Outgoing {
            seq: self.seq,
            channel: self.channel,
            notification: Notification {
                kind: n.kind.into(),
                group: n.group,
                alerts: n.alerts.into_iter().map(Into::into).collect(),
                recipients: n.recipients,
                at_ms: n.at_ms,
            },
            incidents: self.incidents.into_iter().map(Into::into).collect(),
        })
    }
}

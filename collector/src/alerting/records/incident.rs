//! The incident history records: `i/<incident id>` (an episode's head) and
//! `e/<incident id>/<seq>` (one entry of its history).

use super::{NotificationKindV2, Record, RecordError, RecordKind, SeverityV2};
use crate::alerting::book::{Happened, Incident, IncidentEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `i/<incident id>`: one episode of an alert, as its history's head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecordV2 {
    id: String,
    alert: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    severity: SeverityV2,
    started_ms: i64,
    #[serde(default)]
    acknowledged: Option<(i64, String)>,
    #[serde(default)]
    resolved_ms: Option<i64>,
}

impl Record for IncidentRecordV2 {
    type Domain = Incident;
    const KIND: RecordKind = RecordKind::Incident;

    fn of(i: &Incident) -> Self {
        Self {
            id: i.id.to_string(),
            alert: i.alert.to_string(),
            labels: i.labels.clone(),
            severity: i.severity.into(),
            started_ms: i.started_ms,
            acknowledged: i.acknowledged.clone(),
            resolved_ms: i.resolved_ms,
        }
    }

    fn into_domain(self) -> Result<Incident, RecordError> {
        Ok(Incident {
            id: self.id.into(),
            alert: self.alert.into(),
            labels: self.labels,
            severity: self.severity.into(),
            started_ms: self.started_ms,
            acknowledged: self.acknowledged,
            resolved_ms: self.resolved_ms,
        })
    }
}

/// What happened to an incident, tagged by `event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum HappenedV2 {
    Fired {
        severity: SeverityV2,
        #[serde(with = "crate::json_f64")]
        value: f64,
    },
    SeverityRaised {
        severity: SeverityV2,
        #[serde(with = "crate::json_f64")]
        value: f64,
    },
    Queued {
        channel: String,
        kind: NotificationKindV2,
        #[serde(default)]
        recipients: Vec<String>,
    },
    HeldForDigest {
        channel: String,
    },
    Delivered {
        channel: String,
        kind: NotificationKindV2,
        attempts: u32,
        #[serde(default)]
        errors: Vec<String>,
    },
    DeliveryFailed {
        channel: String,
        kind: NotificationKindV2,
        attempts: u32,
        #[serde(default)]
        errors: Vec<String>,
    },
    HandedToPeer {
        channel: String,
        kind: NotificationKindV2,
        by_peer: bool,
    },
    Muted {
        reason: String,
    },
    Escalated {
        tier: usize,
        #[serde(default)]
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

impl From<&Happened> for HappenedV2 {
    fn from(h: &Happened) -> Self {
        match h.clone() {
            Happened::Fired { severity, value } => HappenedV2::Fired {
                severity: severity.into(),
                value,
            },
            Happened::SeverityRaised { severity, value } => HappenedV2::SeverityRaised {
                severity: severity.into(),
                value,
            },
            Happened::Queued {
                channel,
                kind,
                recipients,
            } => HappenedV2::Queued {
                channel,
                kind: kind.into(),
                recipients,
            },
            Happened::HeldForDigest { channel } => HappenedV2::HeldForDigest { channel },
            Happened::Delivered {
                channel,
                kind,
                attempts,
                errors,
            } => HappenedV2::Delivered {
                channel,
                kind: kind.into(),
                attempts,
                errors,
            },
            Happened::DeliveryFailed {
                channel,
                kind,
                attempts,
                errors,
            } => HappenedV2::DeliveryFailed {
                channel,
                kind: kind.into(),
                attempts,
                errors,
            },
            Happened::HandedToPeer {
                channel,
                kind,
                by_peer,
            } => HappenedV2::HandedToPeer {
                channel,
                kind: kind.into(),
                by_peer,
            },
            Happened::Muted { reason } => HappenedV2::Muted { reason },
            Happened::Escalated { tier, recipients } => HappenedV2::Escalated { tier, recipients },
            Happened::Acknowledged { by } => HappenedV2::Acknowledged { by },
            Happened::Flapping => HappenedV2::Flapping,
            Happened::StoppedFlapping => HappenedV2::StoppedFlapping,
            Happened::Resolved { value } => HappenedV2::Resolved { value },
        }
    }
}

impl From<HappenedV2> for Happened {
    fn from(h: HappenedV2) -> Self {
        match h {
            HappenedV2::Fired { severity, value } => Happened::Fired {
                severity: severity.into(),
                value,
            },
            HappenedV2::SeverityRaised { severity, value } => Happened::SeverityRaised {
                severity: severity.into(),
                value,
            },
            HappenedV2::Queued {
                channel,
                kind,
                recipients,
            } => Happened::Queued {
                channel,
                kind: kind.into(),
                recipients,
            },
            HappenedV2::HeldForDigest { channel } => Happened::HeldForDigest { channel },
            HappenedV2::Delivered {
                channel,
                kind,
                attempts,
                errors,
            } => Happened::Delivered {
                channel,
                kind: kind.into(),
                attempts,
                errors,
            },
            HappenedV2::DeliveryFailed {
                channel,
                kind,
                attempts,
                errors,
            } => Happened::DeliveryFailed {
                channel,
                kind: kind.into(),
                attempts,
                errors,
            },
            HappenedV2::HandedToPeer {
                channel,
                kind,
                by_peer,
            } => Happened::HandedToPeer {
                channel,
                kind: kind.into(),
                by_peer,
            },
            HappenedV2::Muted { reason } => Happened::Muted { reason },
            HappenedV2::Escalated { tier, recipients } => Happened::Escalated { tier, recipients },
            HappenedV2::Acknowledged { by } => Happened::Acknowledged { by },
            HappenedV2::Flapping => Happened::Flapping,
            HappenedV2::StoppedFlapping => Happened::StoppedFlapping,
            HappenedV2::Resolved { value } => Happened::Resolved { value },
        }
    }
}

/// `e/<incident id>/<seq, big-endian>`: one entry of an incident's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEventRecordV2 {
    seq: u64,
    incident: String,
    at_ms: i64,
    #[serde(flatten)]
    what: HappenedV2,
}

impl Record for IncidentEventRecordV2 {
    type Domain = IncidentEvent;
    const KIND: RecordKind = RecordKind::IncidentEvent;

    fn of(e: &IncidentEvent) -> Self {
        Self {
            seq: e.seq,
            incident: e.incident.to_string(),
            at_ms: e.at_ms,
            what: (&e.what).into(),
        }
    }

    fn into_domain(self) -> Result<IncidentEvent, RecordError> {
        Ok(IncidentEvent {
            seq: self.seq,
            incident: self.incident.into(),
            at_ms: self.at_ms,
            what: self.what.into(),
        })
    }
}

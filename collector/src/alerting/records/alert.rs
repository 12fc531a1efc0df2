//! The alert records: `a/<alert id>` (an alert, its lifecycle and its current episode) and
//! `s/<silence id>`.

use super::{EvidenceV2, Record, RecordError, RecordKind, SeverityV2, target_names, targets};
use crate::alerting::book::{AlertRecord, Episode, SilenceRecord};
use crate::alerting::escalation::{EscalationPolicy, Tier};
use crate::alerting::lifecycle::{AlertState, Lifecycle};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// Where an alert is in its life: `"Inactive"` or `{"Firing": {"since_ms": …}}` and so on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum AlertStateV2 {
    Inactive,
    Pending { since_ms: i64 },
    Firing { since_ms: i64 },
    Acknowledged { since_ms: i64, by: String },
    Resolved { at_ms: i64 },
}

impl From<&AlertState> for AlertStateV2 {
    fn from(s: &AlertState) -> Self {
        match s.clone() {
            AlertState::Inactive => AlertStateV2::Inactive,
            AlertState::Pending { since_ms } => AlertStateV2::Pending { since_ms },
            AlertState::Firing { since_ms } => AlertStateV2::Firing { since_ms },
            AlertState::Acknowledged { since_ms, by } => {
                AlertStateV2::Acknowledged { since_ms, by }
            }
            AlertState::Resolved { at_ms } => AlertStateV2::Resolved { at_ms },
        }
    }
}

impl From<AlertStateV2> for AlertState {
    fn from(s: AlertStateV2) -> Self {
        match s {
            AlertStateV2::Inactive => AlertState::Inactive,
            AlertStateV2::Pending { since_ms } => AlertState::Pending { since_ms },
            AlertStateV2::Firing { since_ms } => AlertState::Firing { since_ms },
            AlertStateV2::Acknowledged { since_ms, by } => {
                AlertState::Acknowledged { since_ms, by }
            }
            AlertStateV2::Resolved { at_ms } => AlertState::Resolved { at_ms },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LifecycleV2 {
    state: AlertStateV2,
    /// Times of recent firing/resolved changes, for flap detection.
    #[serde(default)]
    changes: VecDeque<i64>,
    #[serde(default)]
    flapping: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TierV2 {
    #[serde(with = "humantime_serde")]
    after: Duration,
    #[serde(default)]
    recipients: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EscalationPolicyV2 {
    #[serde(default)]
    tiers: Vec<TierV2>,
}

impl From<&EscalationPolicy> for EscalationPolicyV2 {
    fn from(p: &EscalationPolicy) -> Self {
        Self {
            tiers: p
                .tiers
                .iter()
                .map(|t| TierV2 {
                    after: t.after,
                    recipients: t.recipients.clone(),
                })
                .collect(),
        }
    }
}

impl From<EscalationPolicyV2> for EscalationPolicy {
    fn from(p: EscalationPolicyV2) -> Self {
        Self {
            tiers: p
                .tiers
                .into_iter()
                .map(|t| Tier {
                    after: t.after,
                    recipients: t.recipients,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EpisodeV2 {
    incident: String,
    fired_ms: i64,
    policy: EscalationPolicyV2,
    tiers_notified: usize,
    /// Targets, `channel` or `channel:address`.
    #[serde(default)]
    notified: BTreeSet<String>,
    #[serde(default)]
    announced: Option<SeverityV2>,
    #[serde(default)]
    acknowledged: Option<(i64, String)>,
}

impl From<&Episode> for EpisodeV2 {
    fn from(e: &Episode) -> Self {
        Self {
            incident: e.incident.to_string(),
            fired_ms: e.fired_ms,
            policy: (&e.policy).into(),
            tiers_notified: e.tiers_notified,
            notified: target_names(&e.notified),
            announced: e.announced.map(Into::into),
            acknowledged: e.acknowledged.clone(),
        }
    }
}

impl TryFrom<EpisodeV2> for Episode {
    type Error = RecordError;

    fn try_from(e: EpisodeV2) -> Result<Self, RecordError> {
        Ok(Self {
            incident: e.incident.into(),
            fired_ms: e.fired_ms,
            policy: e.policy.into(),
            tiers_notified: e.tiers_notified,
            notified: targets(e.notified)?,
            announced: e.announced.map(Into::into),
            acknowledged: e.acknowledged,
        })
    }
}

/// `a/<alert id>`: an alert, its lifecycle and its current episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecordV2 {
    id: String,
    alertname: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    lifecycle: LifecycleV2,
    severity: SeverityV2,
    #[serde(with = "crate::json_f64")]
    value: f64,
    #[serde(default)]
    evidence: EvidenceV2,
    #[serde(default)]
    inhibits_node: bool,
    #[serde(default)]
    episode: Option<EpisodeV2>,
    #[serde(default)]
    changed_ms: i64,
}

impl Record for AlertRecordV2 {
    type Domain = AlertRecord;
    const KIND: RecordKind = RecordKind::Alert;

    fn of(a: &AlertRecord) -> Self {
        Self {
            id: a.id.to_string(),
            alertname: a.alertname.clone(),
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            lifecycle: LifecycleV2 {
                state: (&a.lifecycle.state).into(),
                changes: a.lifecycle.changes.clone(),
                flapping: a.lifecycle.flapping,
            },
            severity: a.severity.into(),
            value: a.value,
            evidence: (&a.evidence).into(),
            inhibits_node: a.inhibits_node,
            episode: a.episode.as_ref().map(Into::into),
            changed_ms: a.changed_ms,
        }
    }

    fn into_domain(self) -> Result<AlertRecord, RecordError> {
        Ok(AlertRecord {
            id: self.id.into(),
            alertname: self.alertname,
            labels: self.labels,
            annotations: self.annotations,
            lifecycle: Lifecycle {
                state: self.lifecycle.state.into(),
                changes: self.lifecycle.changes,
                flapping: self.lifecycle.flapping,
            },
            severity: self.severity.into(),
            value: self.value,
            evidence: self.evidence.into(),
            inhibits_node: self.inhibits_node,
            episode: self.episode.map(TryInto::try_into).transpose()?,
            changed_ms: self.changed_ms,
        })
    }
}

/// `s/<silence id>`: a silence or maintenance window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceRecordV2 {
    id: String,
    matchers: String,
    starts_ms: i64,
    ends_ms: i64,
    #[serde(default)]
    daily: Option<(u32, u32)>,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    created_ms: i64,
    /// Added with SLOs; records written before read as not maintenance.
    #[serde(default)]
    maintenance: bool,
}

impl Record for SilenceRecordV2 {
    type Domain = SilenceRecord;
    const KIND: RecordKind = RecordKind::Silence;

    fn of(s: &SilenceRecord) -> Self {
        Self {
            id: s.id.to_string(),
            matchers: s.matchers.clone(),
            starts_ms: s.starts_ms,
            ends_ms: s.ends_ms,
            daily: s.daily,
            created_by: s.created_by.clone(),
            comment: s.comment.clone(),
            created_ms: s.created_ms,
            maintenance: s.maintenance,
        }
    }

    fn into_domain(self) -> Result<SilenceRecord, RecordError> {
        Ok(SilenceRecord {
            id: self.id.into(),
            matchers: self.matchers,
            starts_ms: self.starts_ms,
            ends_ms: self.ends_ms,
            daily: self.daily,
            created_by: self.created_by,
            comment: self.comment,
            created_ms: self.created_ms,
            maintenance: self.maintenance,
        })
    }
}

//! Alerting's API: alerts in the shape of Prometheus' alerts API plus hcmon's own states,
//! acknowledgements, silences and incidents. These mirror the alert book's types on purpose:
//! the book's records may change with its storage, the API keeps its shape.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
    Critical,
}

/// Prometheus' alert state: acknowledged alerts are still `firing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrometheusState {
    Inactive,
    Pending,
    Firing,
    Resolved,
}

/// hcmon's alert state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
    Acknowledged,
    Resolved,
}

impl AlertState {
    pub const ALL: [AlertState; 5] = [
        AlertState::Inactive,
        AlertState::Pending,
        AlertState::Firing,
        AlertState::Acknowledged,
        AlertState::Resolved,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }

    /// The state named `name`, as `?state=` gives it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Pending, firing or acknowledged: what `GET /api/v1/alerts` lists without `all`.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            AlertState::Pending | AlertState::Firing | AlertState::Acknowledged
        )
    }
}

/// Who acknowledged, and when (RFC 3339).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub by: String,
    pub at: String,
}

/// Why an alert fired, for people.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertEvidence {
    /// The threshold crossed, for threshold rules.
    #[serde(default, with = "crate::json_f64::option")]
    pub threshold: Option<f64>,
    /// The range the anomaly engine expected, for anomaly rules.
    #[serde(default, with = "crate::json_f64::option_pair")]
    pub expected: Option<(f64, f64)>,
    /// Series that moved with this one, phrased.
    #[serde(default)]
    pub related: Vec<String>,
    /// Other facts, one line each.
    #[serde(default)]
    pub details: Vec<String>,
}

/// One alert in `GET /api/v1/alerts` and `GET /api/v1/alerts/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertResponse {
    pub id: String,
    /// With `alertname` and `severity`.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: PrometheusState,
    /// RFC 3339: when it fired, or started pending.
    pub active_at: String,
    /// The value, as notifications write it.
    pub value: String,
    pub hcmon_state: AlertState,
    pub acknowledged: Option<Acknowledgement>,
    /// Escalation tiers notified so far, of `escalation_tiers`.
    pub escalation_tier: usize,
    pub escalation_tiers: usize,
    pub flapping: bool,
    /// Why it is not notified now (silenced, inhibited), if so.
    pub muted: Option<String>,
    /// The incident of the current episode.
    pub incident: Option<String>,
    /// Targets told that it fired.
    pub notified: Vec<String>,
    pub evidence: AlertEvidence,
    /// RFC 3339.
    pub changed_at: String,
    /// Only for one alert: its incident's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<IncidentResponse>,
}

/// `GET /api/v1/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertList {
    pub alerts: Vec<AlertResponse>,
}

/// `POST /api/v1/alerts/{id}/ack`'s body (or `?by=`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckRequest {
    pub by: String,
}

/// `POST /api/v1/alerts/{id}/ack`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AckResponse {
    pub id: String,
    pub acknowledged_by: String,
}

/// `POST /api/v1/silences`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// A selector over alert labels, e.g. `HighCpu{node="nas"}` or `{node="nas"}`.
    pub matchers: String,
    /// RFC 3339; default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    /// RFC 3339; or give `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// e.g. `2h`, from `starts_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// A daily window `HH:MM-HH:MM` (UTC) within the silence's range: a maintenance window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<String>,
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
    /// Planned maintenance: the time it covers also leaves the SLOs' denominators.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub maintenance: bool,
}

/// A silence in `GET /api/v1/silences` and `POST /api/v1/silences`' answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceResponse {
    pub id: String,
    pub matchers: String,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339.
    pub ends_at: String,
    /// `HH:MM-HH:MM` UTC.
    pub daily: Option<String>,
    pub created_by: String,
    pub comment: String,
    /// `pending`, `active` or `expired`.
    pub status: String,
    /// Planned maintenance (leaves the SLOs' denominators).
    #[serde(default)]
    pub maintenance: bool,
}

/// `DELETE /api/v1/silences/{id}`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpiredSilence {
    pub id: String,
    /// Always `expired`.
    pub status: String,
}

/// An incident: one episode of an alert, from firing to resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentResponse {
    pub id: String,
    /// The alert's id.
    pub alert: String,
    pub labels: BTreeMap<String, String>,
    pub severity: Severity,
    /// RFC 3339.
    pub started_at: String,
    pub acknowledged: Option<Acknowledgement>,
    /// RFC 3339.
    pub resolved_at: Option<String>,
    /// Its history, oldest first; left out of lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<IncidentEvent>,
}

/// One entry of an incident's history: when, and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEvent {
    /// RFC 3339.
    pub at: String,
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
    /// Not delivered by this collector of an HA pair: the other one delivered it (`by_peer`),
    /// or was left to.
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
        #[serde(with = "crate::json_f64")]
        value: f64,
    },
}

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Firing,
    Resolved,
    Flapping,
    StoppedFlapping,
    /// Tier index from 0.
    Escalation {
        tier: usize,
    },
    Digest,
}

//! What alerting stores in the `alerts` table: one record type per stored kind (alerts with
//! their lifecycle and episode, silences, incidents, incident events, queued notifications,
//! the book's state), apart from the in-memory types, with conversions both ways. A domain
//! type can then change without changing what is on disk, and what is on disk is read the same
//! by this version and the next.
//!
//! # Format
//! Values are JSON, each written as `{"format": 2, "record": …}`, where a non-finite number is
//! `"+Inf"`, `"-Inf"` or `"NaN"` ([`crate::json_f64`]). A value without that envelope is
//! format 1, written before formats were marked: the same records, with non-finite numbers as
//! `null` (read as NaN). A format this version does not know was written by a newer hcmon:
//! unreadable here (and set aside by the store).
//!
//! # Changing a record
//! - A field is `#[serde(default)]` where its absence has a safe meaning (nothing yet, an empty
//!   set), so a record written before the field existed still reads; the format stays. A field
//!   without which a record means nothing (an id, the time an escalation counts from) is
//!   required: a record lacking it is unreadable.
//! - Unknown fields are ignored: a record written by a newer version that only added fields
//!   still reads after a downgrade. A change an older version would misread (a field renamed,
//!   retyped or given a new meaning) needs a new record type under a new format number, which
//!   older versions refuse instead of misreading.
//! - No record has a field named `format`: that name tells an envelope from a bare record.
//! - Keys joined with `\u{1f}` (throttle and group keys) and targets written `channel:address`
//!   are this format's spelling of typed keys; they are parsed here and nowhere else.
//!
//! Layout: this file holds the envelope, the kinds and the parts records share; `alert.rs`,
//! `incident.rs`, `outbox.rs` and `state.rs` one record each (or two that go together).

mod alert;
mod incident;
mod outbox;
mod state;

pub use alert::{AlertRecordV2, SilenceRecordV2};
pub use incident::{IncidentEventRecordV2, IncidentRecordV2};
pub use outbox::OutboxRecordV2;
pub use state::BookStateRecordV2;

use super::ids::{Target, TargetError};
use super::notify::{Evidence, NotificationKind};
use super::policy::Severity;
use crate::storage::{StoreError, Table};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The format this version writes (see the module header).
const FORMAT: u64 = 2;

/// Separates the parts of a throttle or group key.
const KEY_SEPARATOR: char = '\u{1f}';

/// What a stored value holds: named by corruption errors and by the `record` label of the
/// quarantine metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Alert,
    Silence,
    Incident,
    IncidentEvent,
    Outbox,
    State,
}

impl RecordKind {
    pub const ALL: [RecordKind; 6] = [
        RecordKind::Alert,
        RecordKind::Silence,
        RecordKind::Incident,
        RecordKind::IncidentEvent,
        RecordKind::Outbox,
        RecordKind::State,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Alert => "alert",
            RecordKind::Silence => "silence",
            RecordKind::Incident => "incident",
            RecordKind::IncidentEvent => "incident_event",
            RecordKind::Outbox => "outbox",
            RecordKind::State => "state",
        }
    }
}

/// A stored record that is valid JSON of its shape but names something this version cannot
/// use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("throttle key {0:?} is not a channel, an alert and a severity")]
    ThrottleKey(String),
    #[error("group key {0:?} is not a kind and a group")]
    GroupKey(String),
    #[error("held notification {0:?} is not an alert and a severity")]
    Held(String),
}

/// A stored record of a domain type.
pub trait Record: Serialize + DeserializeOwned {
    type Domain;
    const KIND: RecordKind;

    fn of(domain: &Self::Domain) -> Self;

    fn into_domain(self) -> Result<Self::Domain, RecordError>;
}

#[derive(Serialize)]
struct Envelope<'a, R> {
    format: u64,
    record: &'a R,
}

/// Just the format marker of a value, the rest skipped.
#[derive(Deserialize)]
struct Marker {
    format: Option<u64>,
}

#[derive(Deserialize)]
struct Enveloped<R> {
    record: R,
}

/// `domain` as the value to store.
pub fn encode<R: Record>(domain: &R::Domain) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        format: FORMAT,
        record: &R::of(domain),
    })
    .expect("alerting records serialize")
}

/// A stored value, enveloped or bare (see the module header).
pub fn decode<R: Record>(bytes: &[u8]) -> Result<R::Domain, StoreError> {
    let corrupt = |detail: String| StoreError::corrupt(Table::Alerts, R::KIND.name(), detail);
    let marker: Marker =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not a JSON record: {e}")))?;
    let record = match marker.format {
        None => serde_json::from_slice::<R>(bytes),
        Some(FORMAT) => serde_json::from_slice::<Enveloped<R>>(bytes).map(|e| e.record),
        Some(format) => {
            return Err(corrupt(format!(
                "format {format} is not one this version reads (1 or {FORMAT}); written by a newer hcmon?"
            )));
        }
    }
    .map_err(|e| corrupt(e.to_string()))?;
    record.into_domain().map_err(|e| corrupt(e.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SeverityV2 {
    Warning,
    Error,
    Critical,
}

impl From<Severity> for SeverityV2 {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Warning => SeverityV2::Warning,
            Severity::Error => SeverityV2::Error,
            Severity::Critical => SeverityV2::Critical,
        }
    }
}

impl From<SeverityV2> for Severity {
    fn from(s: SeverityV2) -> Self {
        match s {
            SeverityV2::Warning => Severity::Warning,
            SeverityV2::Error => Severity::Error,
            SeverityV2::Critical => Severity::Critical,
        }
    }
}

impl SeverityV2 {
    fn parse(name: &str) -> Option<Severity> {
        [Severity::Warning, Severity::Error, Severity::Critical]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct EvidenceV2 {
    #[serde(default, with = "crate::json_f64::option")]
    threshold: Option<f64>,
    #[serde(default, with = "crate::json_f64::option_pair")]
    expected: Option<(f64, f64)>,
    #[serde(default)]
    related: Vec<String>,
    #[serde(default)]
    details: Vec<String>,
}

impl From<&Evidence> for EvidenceV2 {
    fn from(e: &Evidence) -> Self {
        Self {
            threshold: e.threshold,
            expected: e.expected,
            related: e.related.clone(),
            details: e.details.clone(),
        }
    }
}

impl From<EvidenceV2> for Evidence {
    fn from(e: EvidenceV2) -> Self {
        Self {
            threshold: e.threshold,
            expected: e.expected,
            related: e.related,
            details: e.details,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum NotificationKindV2 {
    Firing,
    Resolved,
    Flapping,
    StoppedFlapping,
    Escalation { tier: usize },
    Digest,
}

impl From<NotificationKind> for NotificationKindV2 {
    fn from(k: NotificationKind) -> Self {
        match k {
            NotificationKind::Firing => NotificationKindV2::Firing,
            NotificationKind::Resolved => NotificationKindV2::Resolved,
            NotificationKind::Flapping => NotificationKindV2::Flapping,
            NotificationKind::StoppedFlapping => NotificationKindV2::StoppedFlapping,
            NotificationKind::Escalation { tier } => NotificationKindV2::Escalation { tier },
            NotificationKind::Digest => NotificationKindV2::Digest,
        }
    }
}

impl From<NotificationKindV2> for NotificationKind {
    fn from(k: NotificationKindV2) -> Self {
        match k {
            NotificationKindV2::Firing => NotificationKind::Firing,
            NotificationKindV2::Resolved => NotificationKind::Resolved,
            NotificationKindV2::Flapping => NotificationKind::Flapping,
            NotificationKindV2::StoppedFlapping => NotificationKind::StoppedFlapping,
            NotificationKindV2::Escalation { tier } => NotificationKind::Escalation { tier },
            NotificationKindV2::Digest => NotificationKind::Digest,
        }
    }
}

/// Targets as written: `channel` or `channel:address`.
fn target_names(targets: &BTreeSet<Target>) -> BTreeSet<String> {
    targets.iter().map(Target::to_string).collect()
}

fn targets(names: BTreeSet<String>) -> Result<BTreeSet<Target>, RecordError> {
    Ok(names
        .iter()
        .map(|name| name.parse())
        .collect::<Result<_, TargetError>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::ids::AlertId;
    use crate::alerting::lifecycle::AlertState;
    use crate::alerting::policy::{GroupKey, GroupKind, Pending, ThrottleKey};
    use serde_json::json;

    /// An alert as format 2 wrote it, firing and escalated once.
    fn stored_alert() -> serde_json::Value {
        json!({
            "id": "0123456789abcdef",
            "alertname": "HighCpu",
            "labels": {"node": "nas"},
            "annotations": {"summary": "cpu on nas is 0.97"},
            "lifecycle": {"state": {"Firing": {"since_ms": 1000}}, "changes": [1000], "flapping": false},
            "severity": "critical",
            "value": 0.97,
            "evidence": {"threshold": 0.95, "expected": null, "related": [], "details": []},
            "inhibits_node": false,
            "episode": {
                "incident": "0123456789abcdef-1000",
                "fired_ms": 1000,
                "policy": {"tiers": [{"after": "15m", "recipients": ["on-call"]}]},
                "tiers_notified": 1,
                "notified": ["pager:oncall", "slack"],
                "announced": "critical",
                "acknowledged": null
            },
            "changed_ms": 1000
        })
    }

    fn enveloped(record: &serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"format": 2, "record": record})).unwrap()
    }

    #[test]
    fn a_record_reads_and_writes_back_the_same() {
        let stored = stored_alert();
        let alert = decode::<AlertRecordV2>(&enveloped(&stored)).unwrap();
        let episode = alert.episode.as_ref().unwrap();
        assert_eq!(episode.tiers_notified, 1);
        assert_eq!(alert.lifecycle.state, AlertState::Firing { since_ms: 1000 });
        let written: serde_json::Value =
            serde_json::from_slice(&encode::<AlertRecordV2>(&alert)).unwrap();
        assert_eq!(written, json!({"format": 2, "record": stored}));
        let bare = decode::<AlertRecordV2>(&serde_json::to_vec(&stored).unwrap()).unwrap();
        assert_eq!(
            bare, alert,
            "format 1: the same record without the envelope"
        );
    }

    #[test]
    fn a_record_without_an_optional_field_or_with_an_unknown_one_loads() {
        let mut older = stored_alert();
        let fields = older.as_object_mut().unwrap();
        for optional in ["annotations", "evidence", "inhibits_node", "changed_ms"] {
            fields.remove(optional);
        }
        let episode = fields["episode"].as_object_mut().unwrap();
        episode.remove("notified");
        episode.remove("announced");
        let alert = decode::<AlertRecordV2>(&enveloped(&older)).unwrap();
        assert!(alert.annotations.is_empty() && alert.evidence == Evidence::default());
        assert!(alert.episode.unwrap().notified.is_empty());

        let mut newer = stored_alert();
        newer["owner"] = json!("team-storage");
        newer["episode"]["runbook"] = json!({"url": "https://wiki/cpu"});
        let alert = decode::<AlertRecordV2>(&enveloped(&newer)).unwrap();
        assert_eq!(alert.id.as_str(), "0123456789abcdef");

        let required = json!({"id": "x", "alertname": "HighCpu"});
        let error = decode::<AlertRecordV2>(&enveloped(&required)).unwrap_err();
        assert!(error.to_string().contains("lifecycle"), "{error}");
    }

    #[test]
    fn joined_keys_are_parsed_into_typed_keys_and_written_back_joined() {
        let stored = json!({
            "next_seq": 7,
            "throttle": {
                "last_sent": {"slack\u{1f}0123456789abcdef/critical": 1000},
                "sent": {"slack": [1000]},
                "held": {"email": [{"alert": "0123456789abcdef/error", "severity": "error"}]}
            },
            "grouper": {"open": {
                "firing\u{1f}node=\"nas\"": [1000, [{"alert": "0123456789abcdef", "severity": "error"}]],
                "resolved\u{1f}node=\"pi\"": [2000, [{"alert": "fedcba9876543210-5", "severity": "warning"}]]
            }},
            "closing": {}
        });
        let state = decode::<BookStateRecordV2>(&enveloped(&stored)).unwrap();
        let key = ThrottleKey {
            channel: "slack".into(),
            alert: AlertId::from("0123456789abcdef"),
            severity: Severity::Critical,
        };
        assert_eq!(state.throttle.last_sent.get(&key), Some(&1000));
        let pi = GroupKey {
            kind: GroupKind::Resolved,
            group: "node=\"pi\"".into(),
        };
        assert_eq!(
            state.grouper.open[&pi].1,
            [Pending::Resolved {
                incident: "fedcba9876543210-5".into()
            }]
        );
        let written: serde_json::Value =
            serde_json::from_slice(&encode::<BookStateRecordV2>(&state)).unwrap();
        assert_eq!(written["record"], stored);

        let mut bad = stored;
        bad["throttle"]["last_sent"] = json!({"slack/critical": 1});
        let error = decode::<BookStateRecordV2>(&enveloped(&bad)).unwrap_err();
        assert!(error.to_string().contains("throttle key"), "{error}");
    }
}

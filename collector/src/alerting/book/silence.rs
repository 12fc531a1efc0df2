//! What mutes an alert: silences (one-off or a daily maintenance window, by selector over the
//! alert's labels) and inhibition (a node whose node-down alert is active mutes its other
//! alerts). The down nodes are found once per pass over the alerts ([`DownNodes`]), not once
//! per alert.

use super::{AlertBook, AlertRecord, BookError};
use crate::alerting::ids::{AlertId, SilenceId};
use crate::alerting::policy::Silence;
use crate::slo::maintenance::SilenceSpan;
use hcmon_common::{Labels, Selector, SelectorError};
use std::collections::BTreeMap;

/// A silence or maintenance window as stored and listed.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRecord {
    /// Made when the silence is created ([`SilenceId::default`] until then).
    pub id: SilenceId,
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
    /// Planned maintenance: besides muting alerts, the time it covers leaves the SLOs'
    /// denominators (see `slo::maintenance`).
    pub maintenance: bool,
}

/// Why a silence cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SilenceError {
    #[error("a silence must end after it starts")]
    EndsBeforeStart,
    #[error("daily window minutes must be below 1440 (24 h)")]
    DailyOutOfRange,
    #[error("matchers {matchers:?}: {source}")]
    Matchers {
        matchers: String,
        source: SelectorError,
    },
}

impl SilenceRecord {
    /// The silence to evaluate.
    pub fn compile(&self) -> Result<Silence, SilenceError> {
        if self.ends_ms <= self.starts_ms {
            return Err(SilenceError::EndsBeforeStart);
        }
        if let Some((start, end)) = self.daily
            && (start >= 1440 || end >= 1440)
        {
            return Err(SilenceError::DailyOutOfRange);
        }
        let matcher = Selector::parse(&self.matchers).map_err(|source| SilenceError::Matchers {
            matchers: self.matchers.clone(),
            source,
        })?;
        Ok(Silence {
            matcher,
            from_ms: self.starts_ms,
            until_ms: self.ends_ms,
            daily: self.daily,
        })
    }

    /// The silence as the SLOs see it, when it is marked as maintenance.
    pub fn maintenance_span(&self) -> Option<SilenceSpan> {
        self.maintenance.then(|| SilenceSpan {
            starts_ms: self.starts_ms,
            ends_ms: self.ends_ms,
            daily: self.daily,
            matchers: self.matchers.clone(),
            reason: match self.comment.is_empty() {
                true => format!("silence {} by {}", self.id, self.created_by),
                false => format!("silence {}: {}", self.id, self.comment),
            },
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

/// Nodes whose node-down alert is active, each with that alert's name: their other alerts are
/// inhibited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DownNodes(BTreeMap<String, String>);

impl AlertBook {
    /// The nodes that are down now.
    pub fn down_nodes(&self) -> DownNodes {
        DownNodes(
            self.alerts
                .values()
                .filter(|a| a.inhibits_node && a.is_active())
                .filter_map(|a| Some((a.node()?.to_owned(), a.alertname.clone())))
                .collect(),
        )
    }

    /// Why an alert is not notified now, if it is muted.
    pub(super) fn mute_reason(
        &self,
        record: &AlertRecord,
        down: &DownNodes,
        now_ms: i64,
    ) -> Option<String> {
        if !record.inhibits_node
            && let Some((node, by)) = record.node().and_then(|n| down.0.get_key_value(n))
        {
            return Some(format!("inhibited: {by} is firing for node {node}"));
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

    /// Why the alert `id` is muted now, for the API; `down` is [`AlertBook::down_nodes`].
    pub fn muted(&self, id: &AlertId, down: &DownNodes, now_ms: i64) -> Option<String> {
        let record = self.alerts.get(id)?;
        self.mute_reason(record, down, now_ms)
    }

    /// Adds (or replaces, by id) a silence.
    pub fn silence(&mut self, record: SilenceRecord) -> Result<(), BookError> {
        let compiled = record
            .compile()
            .map_err(|e| BookError::Refused(e.to_string()))?;
        self.changes.silences.insert(record.id.clone());
        self.silences.insert(record.id.clone(), (record, compiled));
        Ok(())
    }

    /// Ends a silence now; it stays listed as expired.
    pub fn expire_silence(&mut self, id: &SilenceId, now_ms: i64) -> Result<(), BookError> {
        let (record, compiled) = self
            .silences
            .get_mut(id)
            .ok_or_else(|| BookError::NoSuchSilence(id.clone()))?;
        record.ends_ms = record.ends_ms.min(now_ms);
        // Saturating: records stored before requests were range-checked may hold any time.
        record.starts_ms = record.starts_ms.min(record.ends_ms.saturating_sub(1));
        compiled.until_ms = record.ends_ms;
        compiled.from_ms = record.starts_ms;
        self.changes.silences.insert(id.clone());
        Ok(())
    }
}

//! The observation side of the book: rule verdicts move each alert through its lifecycle; an
//! episode (with its incident) opens when an alert fires and closes when it resolves or stops
//! flapping; acknowledgements, related series and forgetting alerts that are long resolved or
//! whose node is gone.

use super::{
    AlertBook, AlertRecord, BookError, Closing, DownNodes, Episode, Happened, Incident, Observation,
};
use crate::alerting::ids::{AlertId, IncidentId};
use crate::alerting::lifecycle::{AlertState, Lifecycle, LifecycleRules, Notice};
use crate::alerting::notify::{Evidence, NotificationKind};
use crate::alerting::policy::{GroupKey, GroupKind, Pending, Severity};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How long a resolved or inactive alert is kept for the API before it is forgotten.
const KEEP_RESOLVED_MS: i64 = 3_600_000;
/// How long per-alert send times are remembered by the throttle (longer than any interval).
const THROTTLE_MEMORY_MS: i64 = 24 * 3_600_000;

impl AlertBook {
    /// Applies one rule verdict.
    pub fn observe(&mut self, obs: Observation, now_ms: i64) {
        let id = AlertId::of(&obs.alertname, &obs.labels);
        let record = self.alerts.entry(id.clone()).or_insert_with(|| {
            Arc::new(AlertRecord {
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
            })
        });
        let record = Arc::make_mut(record);
        let was_active = record.is_active();
        let before = record.lifecycle.state.kind();
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
        if record.lifecycle.state.kind() != before {
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
            let down = self.down_nodes();
            self.flapping_notice(&id, NotificationKind::Flapping, &down, now_ms);
        }
    }

    pub(super) fn incident_of(&self, id: &AlertId) -> Option<IncidentId> {
        self.alerts
            .get(id)?
            .episode
            .as_ref()
            .map(|e| e.incident.clone())
    }

    fn start_episode(&mut self, id: &AlertId, now_ms: i64) {
        let policy = self.config.escalation.clone();
        let record = self
            .alerts
            .get_mut(id)
            .map(Arc::make_mut)
            .expect("caller checked");
        if record.episode.is_some() {
            // Flapping kept the episode open through the resolution.
            return;
        }
        let incident = IncidentId::new(id, now_ms);
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
                alert: id.clone(),
                labels: record.full_labels(),
                severity,
                started_ms: now_ms,
                acknowledged: None,
                resolved_ms: None,
            },
        );
        self.changes.incidents.insert(incident.clone());
        self.changes.alerts.insert(id.clone());
        self.event(&incident, now_ms, Happened::Fired { severity, value });
    }

    /// Closes the alert's episode and its incident; whoever heard it fired hears it resolved,
    /// after its group's window.
    fn end_episode(&mut self, id: &AlertId, now_ms: i64) {
        let Some(record) = self.alerts.get_mut(id).map(Arc::make_mut) else {
            return;
        };
        let Some(episode) = record.episode.take() else {
            return;
        };
        let value = record.value;
        self.changes.alerts.insert(id.clone());
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
                GroupKey {
                    kind: GroupKind::Resolved,
                    group,
                },
                Pending::Resolved {
                    incident: episode.incident,
                },
                now_ms,
            );
            self.changes.state = true;
        }
    }

    /// Ends flapping that settled: one notice, and the episode closes if the alert is no
    /// longer active.
    pub(super) fn settle_flapping(&mut self, now_ms: i64, flap: &LifecycleRules, down: &DownNodes) {
        let flapping: Vec<AlertId> = self
            .alerts
            .values()
            .filter(|a| a.lifecycle.flapping)
            .map(|a| a.id.clone())
            .collect();
        for id in flapping {
            let record = self
                .alerts
                .get_mut(&id)
                .map(Arc::make_mut)
                .expect("listed above");
            if record.lifecycle.check_flapping(flap, now_ms) != Some(Notice::StoppedFlapping) {
                continue;
            }
            self.changes.alerts.insert(id.clone());
            self.flapping_notice(&id, NotificationKind::StoppedFlapping, down, now_ms);
            if !self.alerts[&id].is_active() {
                self.end_episode(&id, now_ms);
            }
        }
    }

    /// Drops every alert about `node`, which ingest forgot: an open episode ends as resolved
    /// (its incident closes in the history and whoever was told hears of it) and the records
    /// go, so nothing about a node that no longer exists stays pending or firing. Returns how
    /// many alerts went.
    pub fn forget_node(&mut self, node: &str, now_ms: i64) -> usize {
        let ids: Vec<AlertId> = self
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

    /// Forgets alerts resolved or inactive for an hour, and old throttle entries.
    pub(super) fn forget(&mut self, now_ms: i64) {
        let old: Vec<AlertId> = self
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
    pub fn set_related(&mut self, id: &AlertId, related: Vec<String>) {
        if let Some(record) = self.alerts.get_mut(id).map(Arc::make_mut)
            && record.episode.is_some()
        {
            record.evidence.related = related;
            self.changes.alerts.insert(id.clone());
        }
    }

    /// Acknowledges a firing alert: escalation stops; the alert stays until it resolves.
    pub fn acknowledge(&mut self, id: &AlertId, by: &str, now_ms: i64) -> Result<(), BookError> {
        let record = self
            .alerts
            .get_mut(id)
            .map(Arc::make_mut)
            .ok_or_else(|| BookError::NoSuchAlert(id.clone()))?;
        record
            .lifecycle
            .acknowledge(now_ms, by)
            .map_err(|e| BookError::Refused(e.to_string()))?;
        record.changed_ms = now_ms;
        let incident = record.episode.as_mut().map(|e| {
            e.acknowledged = Some((now_ms, by.to_owned()));
            e.incident.clone()
        });
        self.changes.alerts.insert(id.clone());
        if let Some(incident) = incident {
            self.event(&incident, now_ms, Happened::Acknowledged { by: by.into() });
            if let Some(open) = self.incidents.get_mut(&incident) {
                open.acknowledged = Some((now_ms, by.to_owned()));
                self.changes.incidents.insert(incident);
            }
        }
        Ok(())
    }
}

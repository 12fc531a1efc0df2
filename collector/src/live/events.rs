//! Finding the events every live connection is told: alerts whose state changed and series
//! whose verdict became anomalous. Both are found by comparison, on the hub's one task.
//!
//! - Alerts: the alert book publishes a whole snapshot after each change and notifies no one,
//!   so the newest snapshot is compared with the last one seen. An alert is reported when it
//!   is new and not inactive, or when what a person sees of it changed: its state (firing,
//!   acknowledged, resolved…), severity, flapping, muting or escalation tier. Its value, which
//!   moves with every evaluation, does not count.
//! - Anomalies: the anomaly watch judges stored samples on its own thread, a little after the
//!   hub saw them, and keeps only the newest verdict per series. The series of recent batches
//!   wait here until the watch has judged their newest sample (for at most [`MAX_WAIT_TICKS`]
//!   ticks: the watch skips batches when it falls behind); a verdict is reported when it is
//!   anomalous and the series' previous one was not.

use crate::alerting::book::AlertRecord;
use crate::alerting::lifecycle::AlertState;
use crate::alerting::view::{AlertView, AlertsView};
use crate::anomaly_watch::LatestVerdict;
use crate::storage::{Sample, SeriesId};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// Ticks a series waits for the watch to judge its newest stored sample.
const MAX_WAIT_TICKS: u8 = 5;

/// The alert snapshot last compared.
pub(super) struct AlertChanges {
    last: Arc<AlertsView>,
}

impl AlertChanges {
    pub(super) fn new(view: Arc<AlertsView>) -> Self {
        Self { last: view }
    }

    /// The alerts of `view` that changed since the last snapshot, as they now are.
    pub(super) fn changed(&mut self, view: Arc<AlertsView>) -> Vec<AlertView> {
        if Arc::ptr_eq(&view, &self.last) {
            return Vec::new();
        }
        let before: FxHashMap<_, _> = (self.last.alerts.iter())
            .map(|a| (&a.record.id, a))
            .collect();
        let changed = (view.alerts.iter())
            .filter(|now| match before.get(&now.record.id) {
                Some(then) => !looks_the_same(then, now),
                None => now.record.lifecycle.state != AlertState::Inactive,
            })
            .cloned()
            .collect();
        self.last = view;
        changed
    }
}

/// Whether a person would see no difference between two views of one alert.
fn looks_the_same(a: &AlertView, b: &AlertView) -> bool {
    let tier = |r: &AlertRecord| r.episode.as_ref().map(|e| e.tiers_notified);
    let (ra, rb) = (&a.record, &b.record);
    // The same shared record: unchanged since the last view.
    (Arc::ptr_eq(ra, rb) && a.muted == b.muted)
        || ra.lifecycle.state == rb.lifecycle.state
            && ra.lifecycle.flapping == rb.lifecycle.flapping
            && ra.severity == rb.severity
            && a.muted == b.muted
            && tier(ra) == tier(rb)
}

/// Series waiting for a verdict and those whose last verdict was anomalous.
#[derive(Default)]
pub(super) struct AnomalyTransitions {
    /// Per series: its newest stored sample's time, and the ticks it has waited.
    waiting: FxHashMap<SeriesId, (i64, u8)>,
    anomalous: FxHashSet<SeriesId>,
}

impl AnomalyTransitions {
    /// Notes the series of a stored batch.
    pub(super) fn stored(&mut self, batch: &[Sample]) {
        for run in batch.chunk_by(|a, b| a.series == b.series) {
            let newest = run.iter().map(|s| s.timestamp_ms).max().unwrap_or(i64::MIN);
            let waiting = self.waiting.entry(run[0].series).or_insert((newest, 0));
            waiting.0 = waiting.0.max(newest);
        }
    }

    /// The waiting series whose verdict (from `verdict_of`) became anomalous.
    pub(super) fn judge(
        &mut self,
        verdict_of: impl Fn(SeriesId) -> Option<LatestVerdict>,
    ) -> Vec<(SeriesId, LatestVerdict)> {
        let mut became = Vec::new();
        let anomalous = &mut self.anomalous;
        self.waiting.retain(|&id, (newest, ticks)| {
            let verdict = verdict_of(id);
            let judged = verdict.as_ref().is_some_and(|v| v.timestamp_ms >= *newest);
            *ticks += 1;
            if !judged && *ticks < MAX_WAIT_TICKS {
                return true;
            }
            match verdict {
                Some(v) if v.is_anomaly => {
                    if anomalous.insert(id) {
                        became.push((id, v));
                    }
                }
                _ => {
                    anomalous.remove(&id);
                }
            }
            false
        });
        became.sort_by_key(|(id, _)| id.0);
        became
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::book::{AlertRecord, Episode};
    use crate::alerting::ids::{AlertId, IncidentId};
    use crate::alerting::lifecycle::Lifecycle;
    use crate::alerting::policy::Severity;
    use crate::analytics::anomaly::Severity as AnomalySeverity;

    fn alert(id: &str, state: AlertState) -> AlertView {
        let mut lifecycle = Lifecycle::default();
        lifecycle.state = state;
        AlertView {
            record: std::sync::Arc::new(AlertRecord {
                id: AlertId::from(id),
                alertname: "HighCpu".into(),
                labels: Default::default(),
                annotations: Default::default(),
                lifecycle,
                severity: Severity::Warning,
                value: 1.0,
                evidence: Default::default(),
                inhibits_node: false,
                episode: None,
                changed_ms: 0,
            }),
            muted: None,
        }
    }

    fn view(alerts: Vec<AlertView>) -> Arc<AlertsView> {
        Arc::new(AlertsView {
            alerts,
            silences: vec![],
        })
    }

    fn ids(changed: Vec<AlertView>) -> Vec<String> {
        changed.iter().map(|a| a.record.id.to_string()).collect()
    }

    #[test]
    fn alert_changes_are_state_changes_not_value_changes() {
        let firing = AlertState::Firing { since_ms: 5 };
        let mut changes = AlertChanges::new(view(vec![alert("a", firing.clone())]));
        let same = changes.last.clone();
        assert!(changes.changed(same).is_empty());
        // A new evaluation moved the value only; a new inactive alert is not news.
        let mut moved = alert("a", firing.clone());
        std::sync::Arc::make_mut(&mut moved.record).value = 2.0;
        let quiet = view(vec![moved, alert("b", AlertState::Inactive)]);
        assert!(changes.changed(quiet).is_empty());
        let acknowledged = AlertState::Acknowledged {
            since_ms: 6,
            by: "me".into(),
        };
        let pending = AlertState::Pending { since_ms: 7 };
        let next = view(vec![
            alert("a", acknowledged.clone()),
            alert("b", AlertState::Inactive),
            alert("c", pending),
        ]);
        assert_eq!(ids(changes.changed(next)), ["a", "c"]);
        let mut muted = alert("a", acknowledged.clone());
        muted.muted = Some("silenced".into());
        let mut escalated = alert("c", AlertState::Firing { since_ms: 8 });
        std::sync::Arc::make_mut(&mut escalated.record).episode = Some(Episode {
            incident: IncidentId::from("i"),
            fired_ms: 8,
            policy: Default::default(),
            tiers_notified: 1,
            notified: Default::default(),
            announced: None,
            acknowledged: None,
        });
        assert_eq!(
            ids(changes.changed(view(vec![muted, escalated]))),
            ["a", "c"]
        );
    }

    fn verdict(timestamp_ms: i64, is_anomaly: bool) -> LatestVerdict {
        LatestVerdict {
            timestamp_ms,
            value: 1.0,
            score: if is_anomaly { 0.9 } else { 0.1 },
            is_anomaly,
            severity: AnomalySeverity::None,
            learning: false,
            fired: Box::default(),
        }
    }

    fn sample(series: u64, timestamp_ms: i64) -> Sample {
        Sample {
            series: SeriesId(series),
            timestamp_ms,
            value: 1.0,
        }
    }

    #[test]
    fn an_anomaly_is_reported_once_when_the_watch_has_judged_the_newest_sample() {
        let mut t = AnomalyTransitions::default();
        t.stored(&[sample(1, 10), sample(1, 20), sample(2, 20)]);
        // The watch has not judged series 1's newest sample yet: it waits.
        let lagging = |id: SeriesId| Some(verdict(if id.0 == 1 { 10 } else { 20 }, id.0 == 1));
        assert!(t.judge(lagging).is_empty());
        let caught_up = |id: SeriesId| Some(verdict(20, id.0 == 1));
        let became: Vec<u64> = t.judge(caught_up).iter().map(|(id, _)| id.0).collect();
        assert_eq!(became, [1]);
        // Still anomalous at the next sample: not news.
        t.stored(&[sample(1, 30)]);
        assert!(t.judge(|_| Some(verdict(30, true))).is_empty());
        // Normal, then anomalous again: news again.
        t.stored(&[sample(1, 40)]);
        assert!(t.judge(|_| Some(verdict(40, false))).is_empty());
        t.stored(&[sample(1, 50)]);
        assert_eq!(t.judge(|_| Some(verdict(50, true))).len(), 1);
    }

    #[test]
    fn a_series_the_watch_never_judges_stops_waiting() {
        let mut t = AnomalyTransitions::default();
        t.stored(&[sample(1, 10)]);
        for _ in 0..MAX_WAIT_TICKS {
            assert!(t.judge(|_| None).is_empty());
        }
        assert!(t.waiting.is_empty());
    }
}

//! `ALERTS{alertname, alertstate, <labels>} 1` for every pending or firing alert, and
//! `ALERTS_FOR_STATE{alertname, <labels>}`, the Unix time in seconds it became active, as
//! Prometheus writes them for its alerting rules. An acknowledged alert is still firing.
//!
//! The alert book stays pure and the alerting loop does no extra I/O: this task reads the view
//! the loop publishes after every change, writes when what it would write changed (an alert
//! opened, moved from pending to firing or resolved) and at every evaluation interval
//! otherwise. A series a round leaves out gets a staleness marker (see `writer.rs`), so a
//! resolved alert's `ALERTS` stops showing at once.

use super::writer::{Family, Recorded, Round, Tracked};
use crate::alerting::book::AlertRecord;
use crate::alerting::handle::Alerting;
use crate::alerting::lifecycle::AlertState;
use crate::alerting::view::AlertsView;
use crate::clock::Clock;
use crate::tasks;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub const ALERTS: Family = Family {
    name: "ALERTS",
    help: "1 for every pending or firing alert, by alertname, alertstate and the alert's labels (written by the collector).",
};

pub const ALERTS_FOR_STATE: Family = Family {
    name: "ALERTS_FOR_STATE",
    help: "Unix time in seconds at which each pending or firing alert became active (written by the collector).",
};

/// The state `ALERTS` shows an open alert in; none for a closed one.
fn alertstate(state: &AlertState) -> Option<&'static str> {
    match state {
        AlertState::Pending { .. } => Some("pending"),
        AlertState::Firing { .. } | AlertState::Acknowledged { .. } => Some("firing"),
        AlertState::Inactive | AlertState::Resolved { .. } => None,
    }
}

/// When the alert became active, Unix ms: when it fired, or while pending, since when it is;
/// the time `/api/v1/alerts` shows as `activeAt`.
fn active_at(record: &AlertRecord) -> i64 {
    match (&record.lifecycle.state, &record.episode) {
        (_, Some(episode)) => episode.fired_ms,
        (AlertState::Pending { since_ms }, None) => *since_ms,
        _ => record.changed_ms,
    }
}

/// The samples of every open alert of `view`.
pub fn round(view: &AlertsView) -> Round {
    let mut samples = Vec::new();
    for alert in &view.alerts {
        let record = &alert.record;
        let Some(state) = alertstate(&record.lifecycle.state) else {
            continue;
        };
        // `alertname` and `severity` with the alert's labels; alert labels are series labels,
        // valid ones.
        let labels = record.full_labels();
        let mut with_state = labels.clone();
        with_state.insert("alertstate".to_owned(), state.to_owned());
        let since_s = active_at(record) as f64 / 1000.0;
        samples.extend(
            [
                ALERTS.sample(with_state, 1.0),
                ALERTS_FOR_STATE.sample(labels, since_s),
            ]
            .into_iter()
            .flatten(),
        );
    }
    Round {
        samples,
        unchanged: Vec::new(),
    }
}

/// A round worked out against the last one written.
enum Worked {
    /// The same samples, written at this time, and no interval due: nothing to write.
    Unchanged(Vec<Recorded>, Instant),
    /// To write: the samples (kept to compare the next round with) and the round.
    Due(Vec<Recorded>, Round),
}

/// The task's name, in logs and metrics.
pub const TASK: &str = "recorded-alerts";

/// Writes the open alerts on each change of the published view (looked at every `tick`) and
/// every `interval`, until `shutdown`.
pub async fn run(
    alerting: Alerting,
    mut tracked: Tracked,
    clock: Clock,
    (tick, interval): (Duration, Duration),
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: Option<Arc<AlertsView>> = None;
    let mut written: Option<(Vec<Recorded>, Instant)> = None;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let view = alerting.view();
        let due = written
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= interval);
        if !due && seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &view)) {
            continue;
        }
        seen = Some(view.clone());
        // A round over thousands of open alerts, and its comparison with the last one, held a
        // runtime thread for tens of milliseconds while agents' acks waited: both are worked
        // out on the blocking pool, where the last round is dropped too when it is replaced.
        let last = written.take();
        let worked = tasks::blocking(TASK, move || {
            let next = round(&view);
            match last {
                Some((samples, at)) if !due && samples == next.samples => {
                    Worked::Unchanged(samples, at)
                }
                _ => Worked::Due(next.samples.clone(), next),
            }
        })
        .await;
        let (samples, next) = match worked {
            Ok(Worked::Due(samples, next)) => (samples, next),
            Ok(Worked::Unchanged(samples, at)) => {
                written = Some((samples, at));
                continue;
            }
            // Logged and counted by `tasks`. As after a failed write, the next change or
            // interval tries again, so a panic that repeats is not logged at every tick.
            Err(_panicked) => {
                written = Some((Vec::new(), Instant::now()));
                continue;
            }
        };
        // After a failure, the next change or interval tries again.
        let stored = tracked.write(next, clock()).await;
        written = Some((if stored { samples } else { Vec::new() }, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::book::Episode;
    use crate::alerting::escalation::EscalationPolicy;
    use crate::alerting::ids::{AlertId, IncidentId};
    use crate::alerting::lifecycle::Lifecycle;
    use crate::alerting::policy::Severity;
    use crate::alerting::view::AlertView;
    use std::collections::{BTreeMap, BTreeSet};

    const NOW: i64 = 1_700_000_000_000;

    fn alert(name: &str, state: AlertState, fired_ms: Option<i64>) -> AlertView {
        let labels = BTreeMap::from([
            ("node".to_owned(), "nas".to_owned()),
            ("disk".to_owned(), "sda".to_owned()),
        ]);
        let mut lifecycle = Lifecycle::default();
        lifecycle.state = state;
        AlertView {
            record: std::sync::Arc::new(AlertRecord {
                id: AlertId::of(name, &labels),
                alertname: name.into(),
                labels,
                annotations: BTreeMap::new(),
                lifecycle,
                severity: Severity::Warning,
                value: 0.9,
                evidence: Default::default(),
                inhibits_node: false,
                episode: fired_ms.map(|fired_ms| Episode {
                    incident: IncidentId::from("i"),
                    fired_ms,
                    policy: EscalationPolicy::default(),
                    tiers_notified: 0,
                    notified: BTreeSet::new(),
                    announced: None,
                    acknowledged: None,
                }),
                changed_ms: NOW - 1_000,
            }),
            muted: None,
        }
    }

    fn check(alerts: Vec<AlertView>, expected: &[&str]) {
        let view = AlertsView {
            alerts,
            silences: Vec::new(),
        };
        let written: Vec<String> = round(&view)
            .samples
            .iter()
            .map(|s| format!("{} {}", s.labels, s.value))
            .collect();
        assert_eq!(written, expected);
    }

    #[test]
    fn open_alerts_are_written_with_their_state_and_since_when_they_are_active() {
        check(
            vec![
                alert(
                    "DiskFull",
                    AlertState::Pending {
                        since_ms: NOW - 30_000,
                    },
                    None,
                ),
                alert(
                    "HighCpu",
                    AlertState::Firing {
                        since_ms: NOW - 60_000,
                    },
                    Some(NOW - 60_000),
                ),
                alert(
                    "HighMemory",
                    AlertState::Acknowledged {
                        since_ms: NOW,
                        by: "carol".into(),
                    },
                    Some(NOW - 120_000),
                ),
            ],
            &[
                r#"ALERTS{alertname="DiskFull",alertstate="pending",disk="sda",node="nas",severity="warning"} 1"#,
                r#"ALERTS_FOR_STATE{alertname="DiskFull",disk="sda",node="nas",severity="warning"} 1699999970"#,
                r#"ALERTS{alertname="HighCpu",alertstate="firing",disk="sda",node="nas",severity="warning"} 1"#,
                r#"ALERTS_FOR_STATE{alertname="HighCpu",disk="sda",node="nas",severity="warning"} 1699999940"#,
                r#"ALERTS{alertname="HighMemory",alertstate="firing",disk="sda",node="nas",severity="warning"} 1"#,
                r#"ALERTS_FOR_STATE{alertname="HighMemory",disk="sda",node="nas",severity="warning"} 1699999880"#,
            ],
        );
    }

    #[test]
    fn resolved_and_inactive_alerts_are_not_written() {
        check(
            vec![
                alert("Gone", AlertState::Resolved { at_ms: NOW }, None),
                alert("Quiet", AlertState::Inactive, None),
            ],
            &[],
        );
    }
}

//! Incident response: time to acknowledgement (MTTA) and to resolution (MTTR), their
//! distribution, and each incident judged against its severity's target. Also the maintenance
//! windows every SLI leaves out of its denominator.

use super::calendar::Window;
use super::tally::Outcome;
use crate::analytics::stats::quantile_sorted;
use hcmon_common::{Labels, Selector};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An incident's severity, as alerting grades it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentSeverity {
    Warning,
    Error,
    Critical,
}

impl IncidentSeverity {
    pub const ALL: [IncidentSeverity; 3] = [
        IncidentSeverity::Critical,
        IncidentSeverity::Error,
        IncidentSeverity::Warning,
    ];

    pub fn name(self) -> &'static str {
        match self {
            IncidentSeverity::Warning => "warning",
            IncidentSeverity::Error => "error",
            IncidentSeverity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for IncidentSeverity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "warning" => Ok(IncidentSeverity::Warning),
            "error" => Ok(IncidentSeverity::Error),
            "critical" => Ok(IncidentSeverity::Critical),
            other => Err(format!(
                "unknown severity {other:?}: expected critical, error or warning"
            )),
        }
    }
}

/// What the SLO engine needs to know of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentFact {
    pub id: String,
    pub alert: String,
    pub labels: BTreeMap<String, String>,
    pub severity: IncidentSeverity,
    pub started_ms: i64,
    pub acknowledged_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
}

impl IncidentFact {
    /// A label's value; `alertname` is the alert's name, as in selectors over alerts.
    pub fn label(&self, name: &str) -> Option<&str> {
        match name {
            "alertname" => Some(self.alert.as_str()),
            _ => self.labels.get(name).map(String::as_str),
        }
    }

    /// Whether every matcher holds on this incident's labels (missing labels match as "").
    pub fn matches(&self, selector: &Selector) -> bool {
        selector
            .matchers
            .iter()
            .all(|m| m.matches(self.label(&m.name).unwrap_or("")))
    }
}

/// Which wait an incident SLO measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Firing to acknowledgement (MTTA).
    Acknowledge,
    /// Firing to resolution (MTTR).
    Resolve,
}

/// One incident judged against a target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged {
    pub outcome: Outcome,
    /// The measured wait, when it ended; open incidents have none.
    pub wait_ms: Option<i64>,
    /// Where the evidence ends: the acknowledgement, the resolution or `now_ms`.
    pub end_ms: i64,
}

/// Judges an incident: good when its wait ended within `target_ms`, bad when it ended later or
/// is still open past the target; an open incident younger than its target is not counted yet
/// (`None`). An incident resolved without acknowledgement counts its resolution as the end of
/// the response wait (it was dealt with), but gives no acknowledgement time to the
/// distribution.
pub fn judge_incident(
    fact: &IncidentFact,
    measure: Measure,
    target_ms: i64,
    now_ms: i64,
) -> Option<Judged> {
    let (ended, wait) = match measure {
        Measure::Acknowledge => match (fact.acknowledged_ms, fact.resolved_ms) {
            (Some(ack), _) => (Some(ack), Some(ack - fact.started_ms)),
            (None, Some(resolved)) => (Some(resolved), None),
            (None, None) => (None, None),
        },
        Measure::Resolve => (
            fact.resolved_ms,
            fact.resolved_ms.map(|r| r - fact.started_ms),
        ),
    };
    match ended {
        Some(end) => Some(Judged {
            outcome: if end - fact.started_ms <= target_ms {
                Outcome::Good
            } else {
                Outcome::Bad
            },
            wait_ms: wait,
            end_ms: end,
        }),
        None if now_ms - fact.started_ms > target_ms => Some(Judged {
            outcome: Outcome::Bad,
            wait_ms: None,
            end_ms: now_ms,
        }),
        None => None,
    }
}

/// Summary statistics of waits in milliseconds. Quantiles interpolate linearly between ranks;
/// every figure is `None` without values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub count: usize,
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub p50: Option<f64>,
    pub p75: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

pub fn distribution(values_ms: &[f64]) -> Distribution {
    let mut sorted: Vec<f64> = values_ms
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if sorted.is_empty() {
        return Distribution::default();
    }
    sorted.sort_by(f64::total_cmp);
    let q = |p: f64| Some(quantile_sorted(&sorted, p));
    Distribution {
        count: sorted.len(),
        mean: Some(sorted.iter().sum::<f64>() / sorted.len() as f64),
        median: q(0.5),
        p50: q(0.5),
        p75: q(0.75),
        p90: q(0.9),
        p95: q(0.95),
        p99: q(0.99),
    }
}

/// The `q` quantile of `values` (linear between ranks, as [`distribution`]); `None` when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    Some(quantile_sorted(&sorted, q))
}

/// Planned downtime: out of every SLO's denominator for the series or incidents it matches.
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    pub start_ms: i64,
    pub end_ms: i64,
    /// `None` applies to everything.
    pub matchers: Option<Selector>,
    pub reason: String,
}

impl MaintenanceWindow {
    pub fn window(&self) -> Window {
        Window::new(self.start_ms, self.end_ms)
    }

    pub fn applies_to(&self, labels: &Labels) -> bool {
        self.matchers.as_ref().is_none_or(|s| s.matches(labels))
    }

    pub fn applies_to_incident(&self, fact: &IncidentFact) -> bool {
        self.matchers.as_ref().is_none_or(|s| fact.matches(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn fact(ack: Option<i64>, resolved: Option<i64>) -> IncidentFact {
        IncidentFact {
            id: "i1".into(),
            alert: "NodeDown".into(),
            labels: BTreeMap::from([("node".to_owned(), "nas".to_owned())]),
            severity: IncidentSeverity::Critical,
            started_ms: 1_000 * MIN,
            acknowledged_ms: ack,
            resolved_ms: resolved,
        }
    }

    #[test]
    fn slo_distribution_by_hand() {
        let d = distribution(&[4.0, 1.0, 3.0, 2.0, 10.0]);
        assert_eq!(d.count, 5);
        assert_eq!(d.mean, Some(4.0));
        assert_eq!(d.median, Some(3.0));
        assert_eq!(d.p50, Some(3.0));
        assert_eq!(d.p75, Some(4.0));
        // Rank 0.9 * 4 = 3.6: 4 + 0.6 * (10 - 4).
        assert!((d.p90.unwrap() - 7.6).abs() < 1e-9);
        assert!((d.p99.unwrap() - 9.76).abs() < 1e-9);
        assert_eq!(distribution(&[]), Distribution::default());
        assert_eq!(distribution(&[7.0]).p99, Some(7.0));
    }

    #[test]
    fn slo_incidents_against_targets() {
        let start = 1_000 * MIN;
        let target = 15 * MIN;
        let now = start + 60 * MIN;
        let judge = |f: &IncidentFact, m, now| {
            judge_incident(f, m, target, now).map(|j| (j.outcome, j.wait_ms))
        };
        // Acknowledged in 10 min: good, 10 min to the distribution.
        let quick = fact(Some(start + 10 * MIN), None);
        assert_eq!(
            judge(&quick, Measure::Acknowledge, now),
            Some((Outcome::Good, Some(10 * MIN)))
        );
        // Exactly on target is good; one ms later is bad.
        assert_eq!(
            judge(&fact(Some(start + target), None), Measure::Acknowledge, now)
                .unwrap()
                .0,
            Outcome::Good
        );
        assert_eq!(
            judge(
                &fact(Some(start + target + 1), None),
                Measure::Acknowledge,
                now
            )
            .unwrap()
            .0,
            Outcome::Bad
        );
        // Open and older than the target: bad, no wait yet.
        assert_eq!(
            judge(&fact(None, None), Measure::Acknowledge, now),
            Some((Outcome::Bad, None))
        );
        // Open and younger: not counted yet.
        assert_eq!(
            judge(&fact(None, None), Measure::Acknowledge, start + 5 * MIN),
            None
        );
        // Resolved unacknowledged within the target: dealt with, but no acknowledgement time.
        assert_eq!(
            judge(
                &fact(None, Some(start + 5 * MIN)),
                Measure::Acknowledge,
                now
            ),
            Some((Outcome::Good, None))
        );
        // Resolution: acknowledged but still open after the target is bad.
        assert_eq!(
            judge(&quick, Measure::Resolve, now),
            Some((Outcome::Bad, None))
        );
        assert_eq!(
            judge(&fact(None, Some(start + 14 * MIN)), Measure::Resolve, now),
            Some((Outcome::Good, Some(14 * MIN)))
        );
    }

    #[test]
    fn slo_maintenance_matches_labels() {
        let everything = MaintenanceWindow {
            start_ms: 0,
            end_ms: 10,
            matchers: None,
            reason: "upgrade".into(),
        };
        let nas = MaintenanceWindow {
            matchers: Some(Selector::parse(r#"{node="nas"}"#).unwrap()),
            ..everything.clone()
        };
        let web = MaintenanceWindow {
            matchers: Some(Selector::parse(r#"{alertname="WebDown"}"#).unwrap()),
            ..everything.clone()
        };
        let incident = fact(None, None);
        assert!(everything.applies_to_incident(&incident));
        assert!(nas.applies_to_incident(&incident));
        assert!(!web.applies_to_incident(&incident));
        let labels = Labels::new("up", [("node".to_owned(), "db".to_owned())]).unwrap();
        assert!(!nas.applies_to(&labels));
        assert!(everything.applies_to(&labels));
    }
}

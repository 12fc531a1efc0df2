//! Incident SLIs: each incident that started in the window, judged against its severity's
//! target for acknowledgement or resolution; an open one younger than its target is not
//! counted yet, one in a maintenance window matching it is excluded.

use super::source::{Built, Scope};
use crate::analytics::slo::response::{Measure, judge_incident};
use crate::analytics::slo::{IncidentFact, IncidentSeverity, Interval, Outcome};
use hcmon_common::Selector;
use std::collections::BTreeMap;

pub(super) fn intervals(
    facts: &[IncidentFact],
    matchers: Option<&Selector>,
    measure: Measure,
    targets: &BTreeMap<IncidentSeverity, i64>,
    scope: &Scope,
    now_ms: i64,
) -> Built {
    let mut built = Built::default();
    for fact in facts {
        if !scope.observed.contains(fact.started_ms) || matchers.is_some_and(|s| !fact.matches(s)) {
            continue;
        }
        let Some(target) = targets.get(&fact.severity) else {
            continue;
        };
        let Some(judged) = judge_incident(fact, measure, *target, now_ms) else {
            continue;
        };
        let maintenance = scope
            .maintenance
            .iter()
            .find(|m| m.window().contains(fact.started_ms) && m.applies_to_incident(fact));
        let outcome = if maintenance.is_some() {
            Outcome::Excluded
        } else {
            judged.outcome
        };
        let wait = match judged.wait_ms {
            Some(ms) => format!("{} s", ms / 1000),
            None if judged.end_ms == now_ms => "still open".to_owned(),
            None => "resolved unacknowledged".to_owned(),
        };
        let mut note = format!(
            "{} {} ({}): {wait}, target {} s",
            fact.id,
            fact.alert,
            fact.severity.name(),
            target / 1000
        );
        if let Some(m) = maintenance {
            note.push_str(&format!("; maintenance: {}", m.reason));
        }
        built.covered += 1;
        built.intervals.push(Interval {
            start_ms: fact.started_ms,
            end_ms: judged.end_ms.max(fact.started_ms + 1),
            outcome,
            good: f64::from(u8::from(outcome == Outcome::Good)),
            total: 1.0,
            note: Some(note),
            series: Some(fact.id.clone()),
        });
    }
    built
}

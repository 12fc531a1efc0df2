//! Ratio SLIs: two PromQL expressions evaluated as range queries, each step's value the good
//! and valid events of the step before it (write them as `sum(increase(x[1m]))` with the
//! SLO's step: its slice, or a minute). The result series are summed per step.
//!
//! Maintenance: the expressions aggregate away the labels a window could match, so only
//! windows without matchers apply; a step whose end falls in one is excluded.

use super::definition::SloDefinition;
use super::error::SloError;
use super::source::{Built, Scope, SloSource};
use crate::analysis::history::HistorySource;
use crate::analytics::slo::slices::{merge_adjacent, slice_outcome};
use crate::analytics::slo::{Budgeting, Interval, Outcome, Window};
use crate::query::{self, QueryError, Value};
use std::collections::BTreeMap;

const MINUTE_MS: i64 = 60_000;

pub(super) fn intervals(
    source: &SloSource,
    slo: &SloDefinition,
    good: &str,
    valid: &str,
    scope: &Scope,
) -> Result<Built, SloError> {
    let step = match slo.budgeting {
        Budgeting::Timeslices { slice_ms, .. } => slice_ms,
        Budgeting::Occurrences => MINUTE_MS,
    };
    // Steps end on the epoch grid, so slices line up with local midnights and rollups.
    let first = (scope.observed.start_ms.div_euclid(step) + 1) * step;
    let last = scope.observed.end_ms.div_euclid(step) * step;
    if first > last {
        return Ok(Built::default());
    }
    let store = HistorySource {
        catalog: source.catalog.clone(),
        history: source.history.clone(),
    };
    let run = |field: &str, text: &str| -> Result<BTreeMap<i64, f64>, SloError> {
        let failed = |problem: String| SloError::Query {
            name: format!("{} ({field})", slo.name),
            problem,
        };
        let expr = query::parse(text).map_err(|e| failed(e.to_string()))?;
        let (value, _) =
            query::evaluate(&store, &expr, first, last, step).map_err(|e| match e {
                QueryError::Store(e) => SloError::Store(e),
                QueryError::Unavailable(remote) => SloError::RemoteHistory(remote),
                other => failed(other.to_string()),
            })?;
        let mut per_step: BTreeMap<i64, f64> = BTreeMap::new();
        let points: Vec<(i64, f64)> = match value {
            Value::Scalar(points) => points,
            Value::Vector(series) => series.into_iter().flat_map(|(_, points)| points).collect(),
            Value::String(..) | Value::Matrix(_) => {
                return Err(failed(
                    "must give numbers per step (a scalar or an instant vector)".into(),
                ));
            }
        };
        for (ts, v) in points.into_iter().filter(|(_, v)| v.is_finite()) {
            *per_step.entry(ts).or_default() += v;
        }
        Ok(per_step)
    };
    let good_steps = run("good", good)?;
    let valid_steps = run("valid", valid)?;
    let global: Vec<&crate::analytics::slo::MaintenanceWindow> = scope
        .maintenance
        .iter()
        .filter(|m| m.matchers.is_none())
        .collect();
    let mut steps = Vec::new();
    let mut end = first;
    while end <= last {
        let slice = Window::new(end - step, end);
        let maintenance = global.iter().find(|m| m.window().contains(end - 1));
        let (g, v) = match (good_steps.get(&end), valid_steps.get(&end)) {
            (Some(g), Some(v)) => (g.clamp(0.0, *v), *v),
            (None, Some(v)) => (0.0, *v),
            _ => (0.0, 0.0),
        };
        let known = valid_steps.contains_key(&end);
        let outcome = match (maintenance, known, slo.budgeting) {
            (Some(_), _, _) => Outcome::Excluded,
            (None, false, _) => Outcome::Unknown,
            // No events: nothing failed.
            (None, true, _) if v <= 0.0 => Outcome::Good,
            (None, true, Budgeting::Timeslices { slice_target, .. }) => {
                slice_outcome(g, v, slice_target)
            }
            (None, true, Budgeting::Occurrences) if g / v >= slo.target => Outcome::Good,
            (None, true, Budgeting::Occurrences) => Outcome::Bad,
        };
        steps.push(Interval {
            start_ms: slice.start_ms.max(scope.observed.start_ms),
            end_ms: slice.end_ms,
            outcome,
            good: if outcome == Outcome::Excluded { 0.0 } else { g },
            total: v,
            note: maintenance.map(|m| m.reason.clone()),
            series: Some(slo.name.to_string()),
        });
        end += step;
    }
    Ok(Built {
        intervals: merge_adjacent(steps, scope.cuts),
        covered: 1,
    })
}

//! Turns stored samples and incidents into the intervals an SLO is judged on, and those into
//! its result: tally, compliance, coverage, status, budget, burn rate, breaches, days.

use super::definition::{AvailabilitySource, Sli, SloDefinition, SloName};
use super::error::SloError;
use super::reading::Horizons;
pub use super::source::SloSource;
use super::source::{Built, Scope};
use super::{incidents, node, probe, ratio};
use crate::analytics::slo::response::Measure;
use crate::analytics::slo::slices::{breaches, daily, tally_of};
use crate::analytics::slo::{
    Budget, Budgeting, IncidentFact, Interval, MaintenanceWindow, Status, Tally, Window, Zone,
    budget, burn_rate, days, status, time_to_exhaustion_ms,
};
use serde::Serialize;

/// What an evaluation needs besides samples: maintenance, incidents, the zone days are cut
/// in, and the present (time after it is neither up nor unknown).
#[derive(Clone, Copy)]
pub struct EvalContext<'a> {
    pub maintenance: &'a [MaintenanceWindow],
    pub incidents: &'a [IncidentFact],
    pub zone: &'a Zone,
    pub now_ms: i64,
}

/// The counting rules a result was made with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountingPolicy {
    pub budgeting: Budgeting,
    pub retries: u32,
    pub maintenance_excluded: bool,
    pub unknown_counts_as_up: bool,
}

impl CountingPolicy {
    /// One sentence for reports and the API.
    pub fn describe(&self) -> String {
        let counting = match self.budgeting {
            Budgeting::Occurrences => "each probe run, event or incident counts once".to_owned(),
            Budgeting::Timeslices {
                slice_ms,
                slice_target,
            } => format!(
                "time counts in {} slices, a slice good when {} of its runs are",
                humantime::format_duration(
                    std::time::Duration::from_millis(slice_ms.max(0) as u64)
                ),
                percent(slice_target),
            ),
        };
        let retries = match self.retries {
            0 => String::new(),
            1 => "; a single failed run is retried".to_owned(),
            n => format!("; up to {n} consecutive failed runs are retried"),
        };
        format!(
            "Counting: {counting}{retries}; maintenance windows are left out; time without data is unknown, not up, and shows as coverage."
        )
    }
}

fn percent(share: f64) -> String {
    let p = share * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0} %")
    } else {
        format!("{p} %")
    }
}

/// One SLO over one window.
#[derive(Debug, Clone, Serialize)]
pub struct SloResult {
    pub name: SloName,
    pub window: Window,
    pub policy: CountingPolicy,
    pub tally: Tally,
    pub compliance: Option<f64>,
    pub coverage: Option<f64>,
    pub status: Status,
    pub budget: Budget,
    pub burn_rate: Option<f64>,
    pub time_to_exhaustion_ms: Option<i64>,
    /// Series, nodes or incidents counted.
    pub covered: usize,
    /// Bad time, merged.
    pub breaches: Vec<Window>,
    /// Calendar days of the zone inside the window.
    pub daily: Vec<(Window, Tally)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SloEvaluation {
    pub result: SloResult,
    /// Empty unless asked for.
    pub intervals: Vec<Interval>,
}

/// Evaluates an SLO over `window`: reads what it needs, counts, and judges. The intervals are
/// kept only when asked for; the figures are always their sum.
pub fn evaluate(
    source: &SloSource,
    slo: &SloDefinition,
    window: Window,
    ctx: &EvalContext,
    with_intervals: bool,
) -> Result<SloEvaluation, SloError> {
    let days = days(ctx.zone, window);
    let cuts: Vec<i64> = days.iter().skip(1).map(|d| d.start_ms).collect();
    let built = build(source, slo, window, ctx, &cuts)?;
    let tally = tally_of(&built.intervals, &slo.budgeting);
    let compliance = tally.compliance();
    let budget = budget(&tally, slo.target);
    let rate = burn_rate(&tally, slo.target);
    let result = SloResult {
        name: slo.name.clone(),
        window,
        policy: CountingPolicy {
            budgeting: slo.budgeting,
            retries: match slo.sli {
                Sli::Availability { retries, .. } => retries,
                _ => 0,
            },
            maintenance_excluded: true,
            unknown_counts_as_up: false,
        },
        tally,
        compliance,
        coverage: tally.coverage(),
        status: status(compliance, slo.target, slo.warning),
        budget,
        burn_rate: rate,
        time_to_exhaustion_ms: rate
            .and_then(|r| time_to_exhaustion_ms(&budget, r, slo.period.nominal_ms())),
        covered: built.covered,
        breaches: breaches(&built.intervals),
        daily: daily(&built.intervals, &days, &slo.budgeting),
    };
    Ok(SloEvaluation {
        result,
        intervals: if with_intervals {
            built.intervals
        } else {
            Vec::new()
        },
    })
}

/// The tally alone, for burn rates over short windows.
pub fn tally(
    source: &SloSource,
    slo: &SloDefinition,
    window: Window,
    ctx: &EvalContext,
) -> Result<Tally, SloError> {
    let built = build(source, slo, window, ctx, &[])?;
    Ok(tally_of(&built.intervals, &slo.budgeting))
}

fn build(
    source: &SloSource,
    slo: &SloDefinition,
    window: Window,
    ctx: &EvalContext,
    cuts: &[i64],
) -> Result<Built, SloError> {
    let matchers = slo.matchers()?;
    let observed = Window::new(window.start_ms, window.end_ms.min(ctx.now_ms));
    if observed.len_ms() == 0 {
        return Ok(Built::default());
    }
    let scope = Scope {
        observed,
        cuts,
        maintenance: ctx.maintenance,
        horizons: Horizons::of(&source.tsdb, ctx.now_ms),
    };
    let mut built = match &slo.sli {
        Sli::Availability {
            source: AvailabilitySource::Probe,
            retries,
        } => probe::availability(source, matchers.as_ref(), *retries, &slo.budgeting, &scope)?,
        Sli::Availability {
            source: AvailabilitySource::Node,
            ..
        } => node::availability(source, matchers.as_ref(), &slo.budgeting, &scope)?,
        Sli::Latency {
            threshold_ms,
            quantile,
        } => probe::latency(
            source,
            matchers.as_ref(),
            *threshold_ms,
            *quantile,
            &slo.budgeting,
            &scope,
        )?,
        Sli::Ratio { good, valid } => ratio::intervals(source, slo, good, valid, &scope)?,
        Sli::Response { targets } => incidents::intervals(
            ctx.incidents,
            matchers.as_ref(),
            Measure::Acknowledge,
            targets,
            &scope,
            ctx.now_ms,
        ),
        Sli::Resolution { targets } => incidents::intervals(
            ctx.incidents,
            matchers.as_ref(),
            Measure::Resolve,
            targets,
            &scope,
            ctx.now_ms,
        ),
    };
    built
        .intervals
        .sort_by(|a, b| (a.start_ms, &a.series).cmp(&(b.start_ms, &b.series)));
    Ok(built)
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;

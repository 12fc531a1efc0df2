//! Probe SLIs: availability (the share of runs that succeeded) and latency (the share of runs,
//! or of time slices' quantiles, under a threshold), over every probe series the SLO's
//! matchers select.

use super::error::SloError;
use super::reading::{self, Verdict};
use super::source::{Built, Scope, SloSource};
use crate::analytics::slo::response::quantile;
use crate::analytics::slo::slices::{
    Event, event_intervals, exclude_events, finish_slices, push_slice, runs_with_retries,
    slice_grid, slice_outcome, typical_spacing,
};
use crate::analytics::slo::{Budgeting, Interval, Outcome, Window};
use crate::storage::SeriesMeta;
use hcmon_common::{METRIC_NAME_LABEL, MatchOp, Matcher, Selector};
use std::sync::Arc;

/// Each probe kind's success series and its duration series (seconds).
pub const PROBES: [(&str, &str); 4] = [
    ("http_check_up", "http_check_duration_seconds"),
    ("tcp_check_up", "tcp_check_connect_duration_seconds"),
    ("redis_up", "redis_check_duration_seconds"),
    ("memcached_up", "memcached_check_duration_seconds"),
];

const MINUTE_MS: i64 = 60_000;

/// Series named one of `names` that also satisfy the SLO's matchers.
pub(super) fn select(
    source: &SloSource,
    names: &[&str],
    matchers: Option<&Selector>,
) -> Result<Vec<Arc<SeriesMeta>>, SloError> {
    let by_name = Matcher::new(METRIC_NAME_LABEL, MatchOp::Regex, &names.join("|"))
        .map_err(|e| SloError::invalid("selector", e.to_string()))?;
    let mut all = vec![by_name];
    if let Some(selector) = matchers {
        all.extend(selector.matchers.iter().cloned());
    }
    Ok(source.catalog.select(&Selector { matchers: all }))
}

pub(super) fn availability(
    source: &SloSource,
    matchers: Option<&Selector>,
    retries: u32,
    budgeting: &Budgeting,
    scope: &Scope,
) -> Result<Built, SloError> {
    let names: Vec<&str> = PROBES.iter().map(|(up, _)| *up).collect();
    let series = select(source, &names, matchers)?;
    let mut built = Built {
        covered: series.len(),
        ..Built::default()
    };
    for meta in series {
        let runs = runs_of(source, &meta, scope, Verdict::Up, budgeting)?;
        let events = runs_with_retries(&runs, retries);
        built
            .intervals
            .extend(judge_events(events, &meta, budgeting, scope));
    }
    Ok(built)
}

pub(super) fn latency(
    source: &SloSource,
    matchers: Option<&Selector>,
    threshold_ms: f64,
    q: f64,
    budgeting: &Budgeting,
    scope: &Scope,
) -> Result<Built, SloError> {
    let names: Vec<&str> = PROBES.iter().map(|(_, duration)| *duration).collect();
    let series = select(source, &names, matchers)?;
    let seconds = threshold_ms / 1000.0;
    let mut built = Built {
        covered: series.len(),
        ..Built::default()
    };
    for meta in series {
        match budgeting {
            Budgeting::Occurrences => {
                let runs = runs_of(source, &meta, scope, Verdict::AtMost { seconds }, budgeting)?;
                let events = runs_with_retries(&runs, 0);
                built
                    .intervals
                    .extend(judge_events(events, &meta, budgeting, scope));
            }
            Budgeting::Timeslices { slice_ms, .. } => {
                let values = reading::values(&source.tsdb, &source.history, &meta, scope.observed)?;
                let mut slices = Vec::new();
                let mut rest = values.as_slice();
                for slice in slice_grid(scope.observed, *slice_ms) {
                    let n = rest.partition_point(|(ts, _)| *ts < slice.end_ms);
                    let (inside, after) = rest.split_at(n);
                    rest = after;
                    let durations: Vec<f64> = inside.iter().map(|(_, v)| *v).collect();
                    let under = durations.iter().filter(|v| **v <= seconds).count() as f64;
                    let outcome = match quantile(&durations, q) {
                        None => Outcome::Unknown,
                        Some(p) if p <= seconds => Outcome::Good,
                        Some(_) => Outcome::Bad,
                    };
                    push_slice(
                        &mut slices,
                        slice,
                        outcome,
                        under,
                        durations.len() as f64,
                        scope.cuts,
                    );
                }
                built.intervals.extend(finish(slices, &meta, scope));
            }
        }
    }
    Ok(built)
}

/// Runs of one series; with time slices shorter than, or not a multiple of, a minute the
/// rollups' spread times would put runs in the wrong slice, so raw samples are read.
fn runs_of(
    source: &SloSource,
    meta: &SeriesMeta,
    scope: &Scope,
    verdict: Verdict,
    budgeting: &Budgeting,
) -> Result<Vec<(i64, bool)>, SloError> {
    let window = scope.observed;
    let exact_times =
        matches!(budgeting, Budgeting::Timeslices { slice_ms, .. } if slice_ms % MINUTE_MS != 0);
    if exact_times {
        let values = reading::values(&source.tsdb, &source.history, meta, window)?;
        return Ok(values
            .into_iter()
            .map(|(ts, v)| (ts, verdict.good(v)))
            .collect());
    }
    reading::runs(
        &source.tsdb,
        &source.history,
        meta,
        window,
        verdict,
        scope.horizons,
    )
}

/// Judged runs of one series into intervals: one event each, or grouped into time slices.
fn judge_events(
    mut events: Vec<Event>,
    meta: &SeriesMeta,
    budgeting: &Budgeting,
    scope: &Scope,
) -> Vec<Interval> {
    let excluded = scope.excluded_for(&meta.labels);
    match *budgeting {
        Budgeting::Occurrences => {
            let windows: Vec<Window> = excluded.iter().map(|(w, _)| *w).collect();
            exclude_events(&mut events, &windows);
            let times: Vec<i64> = events.iter().map(|e| e.ts_ms).collect();
            let label = meta.labels.to_string();
            let mut intervals = event_intervals(
                &events,
                typical_spacing(&times),
                scope.observed,
                scope.cuts,
                Some(&label),
            );
            note_maintenance(&mut intervals, &excluded);
            intervals
        }
        Budgeting::Timeslices {
            slice_ms,
            slice_target,
        } => {
            let mut slices = Vec::new();
            let mut rest = events.as_slice();
            for slice in slice_grid(scope.observed, slice_ms) {
                let n = rest.partition_point(|e| e.ts_ms < slice.end_ms);
                let (inside, after) = rest.split_at(n);
                rest = after;
                let good = inside.iter().filter(|e| e.outcome == Outcome::Good).count() as f64;
                let total = inside.len() as f64;
                push_slice(
                    &mut slices,
                    slice,
                    slice_outcome(good, total, slice_target),
                    good,
                    total,
                    scope.cuts,
                );
            }
            finish(slices, meta, scope)
        }
    }
}

/// Slices of one series made final (maintenance, cuts, merged), labelled with the series.
fn finish(slices: Vec<Interval>, meta: &SeriesMeta, scope: &Scope) -> Vec<Interval> {
    let excluded = scope.excluded_for(&meta.labels);
    let label = meta.labels.to_string();
    let mut out = finish_slices(slices, &excluded, scope.cuts);
    for interval in &mut out {
        interval.series = Some(label.clone());
    }
    out
}

/// Excluded intervals get their maintenance reason; unknown time wholly inside maintenance is
/// excluded too (a probe stopped for the maintenance is not missing data).
pub(super) fn note_maintenance(intervals: &mut [Interval], excluded: &[(Window, String)]) {
    for interval in intervals.iter_mut() {
        let Some((_, reason)) = excluded.iter().find(|(w, _)| {
            w.start_ms <= interval.start_ms && interval.end_ms <= w.end_ms
                || (interval.outcome == Outcome::Excluded && w.contains(interval.start_ms))
        }) else {
            continue;
        };
        if matches!(interval.outcome, Outcome::Unknown | Outcome::Excluded) {
            interval.outcome = Outcome::Excluded;
            interval.note = Some(reason.clone());
        }
    }
}

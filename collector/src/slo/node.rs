//! Node availability in time slices: a slice is good when the node's agent reported any
//! sample in it (its own `hcmon_agent_samples_total`, which every batch carries, spooled
//! batches included) or the collector's `up` for the node was 1; bad when `up` was 0 and no
//! agent sample came; unknown when there is neither (the collector itself had no data).
//!
//! Where only rollups coarser than the slice are left (beyond `[storage.retention]
//! rollup_1m`), a bucket counts for every slice it covers.

use super::error::SloError;
use super::probe::select;
use super::reading;
use super::source::{Built, Scope, SloSource};
use crate::analytics::slo::slices::{finish_slices, push_slice, slice_grid};
use crate::analytics::slo::{Budgeting, Outcome, Window};
use crate::storage::{Aggregate, SeriesMeta};
use hcmon_common::{MatchOp, Matcher, Selector};
use std::collections::BTreeSet;
use std::sync::Arc;

const AGENT: &str = "hcmon_agent_samples_total";
const UP: &str = "up";
const MINUTE_MS: i64 = 60_000;

/// What one slice saw of a kind of series: samples, and the highest value.
#[derive(Debug, Clone, Copy)]
struct Seen {
    slot: i64,
    count: u64,
    max: f64,
}

pub(super) fn availability(
    source: &SloSource,
    matchers: Option<&Selector>,
    budgeting: &Budgeting,
    scope: &Scope,
) -> Result<Built, SloError> {
    // Node up-ness is judged per slice; an SLO declared with occurrences counts minutes.
    let slice_ms = match *budgeting {
        Budgeting::Timeslices { slice_ms, .. } => slice_ms,
        Budgeting::Occurrences => MINUTE_MS,
    };
    // The nodes: those with a matching series of either kind; then all their series of both.
    let nodes: BTreeSet<String> = select(source, &[AGENT, UP], matchers)?
        .iter()
        .filter_map(|m| m.labels.get("node").map(str::to_owned))
        .collect();
    let mut built = Built {
        covered: nodes.len(),
        ..Built::default()
    };
    for node in &nodes {
        let exact = Selector {
            matchers: vec![
                Matcher::new("node", MatchOp::Equal, node)
                    .map_err(|e| SloError::invalid("selector", e.to_string()))?,
            ],
        };
        let (agents, ups): (Vec<Arc<SeriesMeta>>, Vec<Arc<SeriesMeta>>) =
            select(source, &[AGENT, UP], Some(&exact))?
                .into_iter()
                .partition(|m| m.labels.metric_name() == AGENT);
        // A full hour of agent samples saw every slice; a full hour of `up` only when it did
        // not change.
        let agent_seen = seen(source, &agents, scope, slice_ms, &|_| true)?;
        let up_seen = seen(source, &ups, scope, slice_ms, &|a| a.min == a.max)?;
        let (mut a, mut u) = (0, 0);
        let mut runs = Vec::new();
        for slice in slice_grid(scope.observed, slice_ms) {
            let slot = slot_of(slice.start_ms, slice_ms);
            let at = |list: &[Seen], i: &mut usize| -> Option<Seen> {
                while list.get(*i).is_some_and(|s| s.slot < slot) {
                    *i += 1;
                }
                list.get(*i).filter(|s| s.slot == slot).copied()
            };
            let agent = at(&agent_seen, &mut a);
            let up = at(&up_seen, &mut u);
            let outcome = match (agent, up) {
                (Some(s), _) if s.count > 0 => Outcome::Good,
                (_, Some(s)) if s.count > 0 && s.max >= 1.0 => Outcome::Good,
                (_, Some(s)) if s.count > 0 => Outcome::Bad,
                _ => Outcome::Unknown,
            };
            // Evidence in slices: good ones of those known.
            let good = f64::from(u8::from(outcome == Outcome::Good));
            let total = f64::from(u8::from(outcome != Outcome::Unknown));
            push_slice(&mut runs, slice, outcome, good, total, scope.cuts);
        }
        let mut excluded: Vec<(Window, String)> = Vec::new();
        for meta in agents.iter().chain(&ups) {
            for w in scope.excluded_for(&meta.labels) {
                if !excluded.contains(&w) {
                    excluded.push(w);
                }
            }
        }
        let label = format!("node={node}");
        for mut interval in finish_slices(runs, &excluded, scope.cuts) {
            interval.series = Some(label.clone());
            built.intervals.push(interval);
        }
    }
    Ok(built)
}

fn slot_of(ts: i64, slice_ms: i64) -> i64 {
    ts.div_euclid(slice_ms) * slice_ms
}

/// Per slice, what these series held, sorted by slot.
/// `regular` says which full hours may stand for each of their slices (see `reading`).
fn seen(
    source: &SloSource,
    series: &[Arc<SeriesMeta>],
    scope: &Scope,
    slice_ms: i64,
    regular: &dyn Fn(&Aggregate) -> bool,
) -> Result<Vec<Seen>, SloError> {
    // Raw samples grouped by minute when slices are whole minutes, else by slice.
    let grain = if slice_ms % MINUTE_MS == 0 {
        MINUTE_MS
    } else {
        slice_ms
    };
    let mut buckets = Vec::new();
    for meta in series {
        buckets.extend(reading::buckets_of(
            &source.tsdb,
            &source.history,
            meta,
            scope.observed,
            grain,
            scope.horizons,
            regular,
        )?);
    }
    if series.len() > 1 {
        buckets.sort_by_key(|(start, _, _)| *start);
    }
    let mut out: Vec<Seen> = Vec::new();
    for (start, len, agg) in buckets {
        // A bucket longer than a slice counts for each slice it covers.
        let mut at = start;
        while at < start + len.max(1) {
            let slot = slot_of(at, slice_ms);
            match out.last_mut() {
                Some(last) if last.slot == slot => {
                    last.count += agg.count;
                    last.max = last.max.max(agg.max);
                }
                _ => out.push(Seen {
                    slot,
                    count: agg.count,
                    max: agg.max,
                }),
            }
            at += slice_ms.min(len.max(1));
        }
    }
    if series.len() > 1 {
        out.sort_by_key(|s| s.slot);
        out.dedup_by(|b, a| {
            let same = a.slot == b.slot;
            if same {
                a.count += b.count;
                a.max = a.max.max(b.max);
            }
            same
        });
    }
    Ok(out)
}

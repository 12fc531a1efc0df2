//! When each node and each watched series last reported, and its usual interval between
//! reports: what the missing-data rules measure silence against.

use super::feed::Watched;
use crate::storage::{NodeRecord, SeriesId};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// How many recent gaps the usual interval is the median of.
const GAPS_KEPT: usize = 9;

/// One node's or series' recent arrivals.
#[derive(Debug, Default)]
pub(super) struct Activity {
    /// The newest arrival, Unix ms.
    pub(super) last_ms: i64,
    gaps: VecDeque<i64>,
}

impl Activity {
    fn seen(&mut self, now_ms: i64) {
        if self.last_ms > 0 && now_ms > self.last_ms {
            self.gaps.push_back(now_ms - self.last_ms);
            if self.gaps.len() > GAPS_KEPT {
                self.gaps.pop_front();
            }
        }
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// The median gap between arrivals (an agent's batches of several tiers arrive together
    /// now and then; the median ignores those).
    pub(super) fn interval_ms(&self) -> i64 {
        let mut gaps: Vec<i64> = self.gaps.iter().copied().collect();
        gaps.sort_unstable();
        gaps.get(gaps.len() / 2).copied().unwrap_or(0)
    }
}

/// The activity of every node and of every series a missing-series rule watches.
#[derive(Default)]
pub(super) struct Arrivals {
    nodes: BTreeMap<String, Activity>,
    series: FxHashMap<SeriesId, (Arc<Watched>, Activity)>,
}

impl Arrivals {
    /// Starts from the nodes ingest knows, each last seen when its last batch came.
    pub(super) fn new(nodes: &[(String, NodeRecord)]) -> Self {
        let nodes = nodes
            .iter()
            .map(|(name, record)| {
                let activity = Activity {
                    last_ms: record.last_batch_at_ms,
                    gaps: VecDeque::new(),
                };
                (name.clone(), activity)
            })
            .collect();
        Self {
            nodes,
            series: FxHashMap::default(),
        }
    }

    pub(super) fn node_seen(&mut self, node: String, now_ms: i64) {
        self.nodes.entry(node).or_default().seen(now_ms);
    }

    pub(super) fn series_seen(&mut self, watched: &Arc<Watched>, now_ms: i64) {
        self.series
            .entry(watched.meta.id)
            .or_insert_with(|| (watched.clone(), Activity::default()))
            .1
            .seen(now_ms);
    }

    /// Stops watching a node ingest forgot, and its series, or a missing-data rule would fire
    /// for them next.
    pub(super) fn forget_node(&mut self, node: &str) {
        self.nodes.remove(node);
        self.series
            .retain(|_, (watched, _)| watched.meta.labels.get("node") != Some(node));
    }

    pub(super) fn nodes(&self) -> impl Iterator<Item = (&String, &Activity)> {
        self.nodes.iter()
    }

    pub(super) fn series(&self) -> impl Iterator<Item = (&Arc<Watched>, &Activity)> {
        self.series.values().map(|(w, a)| (w, a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_interval_is_the_median_gap() {
        let mut a = Activity::default();
        assert_eq!(a.interval_ms(), 0, "nothing to go by yet");
        for t in [10_000, 20_000, 20_500, 30_000, 40_000, 50_000] {
            a.seen(t);
        }
        assert_eq!(
            a.interval_ms(),
            10_000,
            "a burst of tiers arriving together is ignored"
        );
        a.seen(45_000);
        assert_eq!(a.last_ms, 50_000, "a late arrival does not move time back");
    }
}

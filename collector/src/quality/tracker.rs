//! `QualityTracker`: the ingest observer that keeps every series' quality counts, and each
//! node's batch lags and refusals, for the evaluation (`evaluate.rs`).
//!
//! It runs on the ingest path under the node's lock, so it does per sample one hash lookup
//! and a few compares (`series.rs`); names and labels are read from the catalog once, when a
//! series is first seen. Remote-written and OTLP series (no node) are kept under
//! [`REMOTE`].

use super::evaluate::{self, NodeReport, QualityReport};
use super::node::{LAG_BOUNDS_MS, NodeQuality};
use super::series::{Arrival, BACKFILL_AFTER_MS, SeriesQuality, ValueClass, labels_valid};
use crate::catalog::SeriesCatalog;
use crate::clock::Clock;
use crate::ingest::{BatchObserver, StoredBatch};
use crate::storage::{MetricKind, Sample, SeriesId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Where series without a node (remote write, OTLP to the collector) are kept.
pub const REMOTE: &str = "";

/// Runs whose states are read ahead of their updates at a time: enough misses to overlap, few
/// enough states to stay in the first-level cache until their updates.
const READ_AHEAD: usize = 16;

pub struct QualityTracker {
    catalog: Arc<SeriesCatalog>,
    clock: Clock,
    half_ms: i64,
    worst_series: usize,
    nodes: RwLock<HashMap<String, Arc<Mutex<NodeQuality>>>>,
    latest: RwLock<Arc<QualityReport>>,
}

impl QualityTracker {
    pub fn new(
        catalog: Arc<SeriesCatalog>,
        clock: Clock,
        window_ms: i64,
        worst_series: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            clock,
            half_ms: (window_ms / 2).max(1),
            worst_series,
            nodes: RwLock::new(HashMap::new()),
            latest: RwLock::new(Arc::new(QualityReport::default())),
        })
    }

    fn node(&self, node: &str) -> Arc<Mutex<NodeQuality>> {
        if let Some(found) = self
            .nodes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)
        {
            return found.clone();
        }
        self.nodes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(node.to_owned())
            .or_default()
            .clone()
    }

    fn new_series(&self, id: SeriesId) -> SeriesQuality {
        match self.catalog.get(id) {
            Some(meta) => SeriesQuality::new(
                ValueClass::of(meta.labels.metric_name()),
                meta.kind == MetricKind::Counter,
                labels_valid(meta.labels.without_name()),
            ),
            None => SeriesQuality::new(ValueClass::Any, false, true),
        }
    }

    /// Counts samples ingest refused from `node` (a batch refused as invalid).
    fn count_refused(&self, node: Option<&str>, samples: usize) {
        let now = (self.clock)();
        let node = self.node(node.unwrap_or(REMOTE));
        let mut node = node.lock().unwrap_or_else(|p| p.into_inner());
        let half = node.half(now.div_euclid(self.half_ms));
        half.refused_samples = half.refused_samples.saturating_add(samples as u32);
    }

    /// Works out every node's report now (blocking: it reads the catalog), keeps it as the
    /// latest and returns it. Series with nothing in the window are forgotten first (a
    /// process that left the top ten, a deleted series), and so are nodes left with none (a
    /// forgotten agent), so the tracker's memory follows the live series, not every series
    /// ever seen.
    pub fn evaluate(&self) -> Arc<QualityReport> {
        let now = (self.clock)();
        let nodes = self.snapshot();
        let mut reports: Vec<NodeReport> = Vec::with_capacity(nodes.len());
        for (name, quality) in nodes {
            let mut quality = quality.lock().unwrap_or_else(|p| p.into_inner());
            let window_start = (now.div_euclid(self.half_ms) - 1) * self.half_ms;
            quality.series.retain(|_, s| s.last_ms >= window_start);
            if quality.series.is_empty() {
                drop(quality);
                self.drop_if_empty(&name);
                continue;
            }
            let mut report = evaluate::node(
                &name,
                &quality,
                &self.catalog,
                now,
                self.half_ms,
                self.worst_series,
            );
            report.recommendations = super::recommend::recommendations(&report);
            reports.push(report);
        }
        reports.sort_by(|a, b| a.node.cmp(&b.node));
        let mut low_confidence: Vec<SeriesId> = reports
            .iter()
            .flat_map(|r| r.low_confidence.iter().copied())
            .collect();
        low_confidence.sort();
        let report = Arc::new(QualityReport {
            evaluated_ms: now,
            window_ms: self.half_ms * 2,
            nodes: reports,
            low_confidence,
        });
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) = report.clone();
        report
    }

    /// The reports of the series `ids`, evaluated now (blocking: it reads the catalog); a
    /// series not seen since the collector started has none.
    pub fn series(&self, ids: &[SeriesId]) -> Vec<evaluate::SeriesReport> {
        let now = (self.clock)();
        let nodes = self.snapshot();
        let mut out = Vec::new();
        for (_, quality) in nodes {
            let quality = quality.lock().unwrap_or_else(|p| p.into_inner());
            out.extend(evaluate::series(
                &quality,
                ids,
                &self.catalog,
                now,
                self.half_ms,
            ));
        }
        out.sort_by(|a, b| {
            a.overall
                .total_cmp(&b.overall)
                .then(a.series.cmp(&b.series))
        });
        out
    }

    /// Every node's state, taken out of the map's lock so one node is locked at a time.
    fn snapshot(&self) -> Vec<(String, Arc<Mutex<NodeQuality>>)> {
        self.nodes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, q)| (n.clone(), q.clone()))
            .collect()
    }

    /// Removes node `name` if it still has no series (a batch may have arrived meanwhile).
    fn drop_if_empty(&self, name: &str) {
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        let empty = nodes.get(name).is_some_and(|q| {
            q.lock()
                .unwrap_or_else(|p| p.into_inner())
                .series
                .is_empty()
        });
        if empty {
            nodes.remove(name);
        }
    }

    /// Series tracked, and the bytes of their state as laid out in memory (gaps included).
    pub fn state(&self) -> (usize, usize) {
        let nodes = self.snapshot();
        let entry = std::mem::size_of::<(SeriesId, SeriesQuality)>();
        let gap = std::mem::size_of::<super::series::Gap>();
        let (mut series, mut bytes) = (0, 0);
        for (_, node) in nodes {
            let node = node.lock().unwrap_or_else(|p| p.into_inner());
            series += node.series.len();
            bytes += std::mem::size_of::<NodeQuality>()
                + node.series.len() * entry
                + node
                    .series
                    .values()
                    .map(|s| s.gaps.capacity() * gap)
                    .sum::<usize>();
        }
        (series, bytes)
    }

    /// The newest evaluation.
    pub fn latest(&self) -> Arc<QualityReport> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether anomaly verdicts on `series` can be trusted: its completeness and validity were
    /// at their thresholds at the newest evaluation (a series not evaluated yet is trusted).
    pub fn confident(&self, series: SeriesId) -> bool {
        self.latest().low_confidence.binary_search(&series).is_err()
    }
}

impl BatchObserver for QualityTracker {
    fn stored(&self, batch: &StoredBatch) {
        let Some(newest) = batch.samples.iter().map(|s| s.timestamp_ms).max() else {
            return;
        };
        let arrival = (self.clock)();
        let node = self.node(batch.node.as_deref().unwrap_or(REMOTE));
        let mut node = node.lock().unwrap_or_else(|p| p.into_inner());
        let lag = arrival - newest;
        if lag <= BACKFILL_AFTER_MS {
            let half = node.half(arrival.div_euclid(self.half_ms));
            let bucket = LAG_BOUNDS_MS
                .iter()
                .position(|&bound| lag <= bound)
                .unwrap_or(LAG_BOUNDS_MS.len());
            half.lags[bucket] = half.lags[bucket].saturating_add(1);
            half.min_lag_ms = Some(half.min_lag_ms.map_or(lag, |m| m.min(lag)));
        }
        let half_ms = self.half_ms;
        let arrived = Arrival::at(arrival, half_ms);
        // A batch holds its samples grouped by series: one lookup per series. A remote-write
        // request holds one sample each of thousands of series whose states lie far apart, and
        // each run waited for its own state's cache misses. So a block of runs' states is read
        // first, in a loop of reads that do not wait for each other, which lets those misses
        // overlap; the runs' updates then find their states in the cache.
        let runs: Vec<&[Sample]> = batch
            .samples
            .chunk_by(|a, b| a.series == b.series)
            .collect();
        for block in runs.chunks(READ_AHEAD) {
            let ahead = block
                .iter()
                .filter_map(|run| node.series.get(&run[0].series))
                .fold(0, |acc, state| acc ^ state.read_ahead());
            std::hint::black_box(ahead);
            for run in block {
                let id = run[0].series;
                let state = match node.series.get_mut(&id) {
                    Some(state) => state,
                    None => node.series.entry(id).or_insert_with(|| self.new_series(id)),
                };
                let samples = run.iter().map(|s| (s.timestamp_ms, s.value));
                state.observe_run(samples, arrived, half_ms);
            }
        }
    }

    fn refused(&self, node: Option<&str>, samples: usize) {
        self.count_refused(node, samples);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    const HOUR: i64 = 3_600_000;

    #[test]
    fn series_and_nodes_without_data_in_the_window_are_forgotten() {
        let now = Arc::new(AtomicI64::new(1_000 * HOUR));
        let clock = now.clone();
        let tracker = QualityTracker::new(
            Arc::new(SeriesCatalog::new(Vec::new())),
            Arc::new(move || clock.load(Ordering::SeqCst)),
            HOUR,
            10,
        );
        let batch = |node: &str, series: u64, ts: i64| StoredBatch {
            node: Some(node.to_owned()),
            samples: Arc::new(vec![Sample {
                series: SeriesId(series),
                timestamp_ms: ts,
                value: 1.0,
            }]),
        };
        let t = now.load(Ordering::SeqCst);
        tracker.stored(&batch("nas", 1, t));
        tracker.stored(&batch("gone", 2, t));
        assert_eq!(tracker.evaluate().nodes.len(), 2);
        // Two hours on, only nas still reports.
        now.store(t + 2 * HOUR, Ordering::SeqCst);
        tracker.stored(&batch("nas", 3, t + 2 * HOUR));
        let report = tracker.evaluate();
        assert_eq!(report.nodes.len(), 1);
        assert_eq!(report.nodes[0].node, "nas");
        assert_eq!(
            report.nodes[0].series, 1,
            "series 1 had nothing in the window"
        );
        assert_eq!(tracker.nodes.read().unwrap().len(), 1);
    }
}

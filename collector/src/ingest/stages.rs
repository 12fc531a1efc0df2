//! Where an agent batch's time goes before its ack, on `/metrics` as
//! `hcmon_collector_batch_stage_seconds{stage, batch}`: a slow ack's tail gets a named cause
//! (a back-fill lane, the node's lock, the blocking pool, series creation, the log write, the
//! engines' backlog, a busy runtime, the log's sync) instead of one total in
//! `hcmon_collector_batch_write_seconds`.

use prometheus::{Histogram, HistogramVec};
use std::time::Instant;

/// A step an agent batch passes through between arriving and its ack, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStage {
    /// Waiting for a back-fill lane (back-filled batches only).
    Lane,
    /// Waiting for the node's lock: its previous batch is still being stored.
    NodeLock,
    /// Checking the batch's sequence, samples and series against its stream and limits.
    Validate,
    /// Waiting for a blocking thread to start the store (none for a batch stored on its own
    /// task, see `store.rs`).
    Queue,
    /// Creating the batch's new series in the catalog.
    Resolve,
    /// Writing the log record and applying the samples to the head.
    Append,
    /// Handing the samples to the engines; waits when the anomaly backlog is full.
    Observe,
    /// The batch's async task waiting for a runtime thread after its store ended on the
    /// blocking pool: long when other work holds the runtime's threads.
    Resume,
    /// Waiting for the log sync that makes the batch's record durable, shared with the
    /// batches written beside it.
    Sync,
}

impl BatchStage {
    const ALL: [BatchStage; 9] = [
        BatchStage::Lane,
        BatchStage::NodeLock,
        BatchStage::Validate,
        BatchStage::Queue,
        BatchStage::Resolve,
        BatchStage::Append,
        BatchStage::Observe,
        BatchStage::Resume,
        BatchStage::Sync,
    ];

    fn label(self) -> &'static str {
        match self {
            BatchStage::Lane => "lane",
            BatchStage::NodeLock => "node_lock",
            BatchStage::Validate => "validate",
            BatchStage::Queue => "queue",
            BatchStage::Resolve => "resolve",
            BatchStage::Append => "append",
            BatchStage::Observe => "observe",
            BatchStage::Resume => "resume",
            BatchStage::Sync => "sync",
        }
    }
}

/// Live batches and back-filled ones (newest sample over
/// [`BACKFILL_AFTER_MS`](super::BACKFILL_AFTER_MS) old) are timed apart: their stores differ by
/// orders of magnitude, and one would hide the other's tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchAge {
    Live,
    Backfill,
}

/// The stage histograms of one [`BatchAge`], their labels looked up once, not per batch (a
/// batch clones the handles).
#[derive(Clone)]
pub struct StageClock {
    histograms: [Histogram; BatchStage::ALL.len()],
}

impl StageClock {
    /// One clock per age, in [`BatchAge`] order.
    pub fn per_age(stages: &HistogramVec) -> [StageClock; 2] {
        [BatchAge::Live, BatchAge::Backfill].map(|age| {
            let batch = match age {
                BatchAge::Live => "live",
                BatchAge::Backfill => "backfill",
            };
            StageClock {
                histograms: BatchStage::ALL
                    .map(|stage| stages.with_label_values(&[stage.label(), batch])),
            }
        })
    }

    /// Counts the time since `since` against `stage`; returns now, where the next stage starts.
    pub fn lap(&self, stage: BatchStage, since: Instant) -> Instant {
        let now = Instant::now();
        self.histograms[stage as usize].observe(now.duration_since(since).as_secs_f64());
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::CollectorMetrics;

    #[test]
    fn each_stage_and_age_has_its_own_series() {
        let metrics = CollectorMetrics::new();
        let [live, backfill] = StageClock::per_age(&metrics.batch_stage_seconds);
        let start = Instant::now();
        live.lap(BatchStage::Append, start);
        backfill.lap(BatchStage::Lane, start);
        backfill.lap(BatchStage::Lane, start);
        let count = |stage: &str, batch: &str| {
            metrics
                .batch_stage_seconds
                .with_label_values(&[stage, batch])
                .get_sample_count()
        };
        assert_eq!(count("append", "live"), 1);
        assert_eq!(count("lane", "backfill"), 2);
        assert_eq!(count("append", "backfill"), 0);
        assert_eq!(count("lane", "live"), 0);
    }
}

//! Live anomaly detection: every stored sample goes through its series' online detectors right
//! after the durable write, and the newest verdict per series is kept for `/metrics` and
//! `/api/v1/anomalies`.
//!
//! The detectors are the pure ones of [`crate::analytics::anomaly`], with the same defaults as
//! `hcmon replay`. Ingest hands each stored batch to the watch (a [`BatchObserver`]), which queues it
//! for one worker thread: acks never wait for the detectors, and one thread keeps every series'
//! samples in the order they were stored. When the queue is full (the detectors cannot keep up)
//! the batch is skipped and counted, never blocking ingest. Detector state is in memory only;
//! after a restart each series learns again for `min_samples` samples.

use crate::analytics::anomaly::{AnomalyConfig, DetectorOutput, SeriesDetector, Severity};
use crate::ingest::{BatchObserver, StoredBatch};
use crate::storage::{Sample, SeriesId};
use rustc_hash::FxHashMap;
use serde::Deserialize;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

const SHARDS: usize = 16;
/// Batches waiting for the worker before new ones are skipped.
const QUEUE_BATCHES: usize = 4096;

/// `[analytics]` in the collector's config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// Run the online anomaly detectors on every stored sample.
    pub enabled: bool,
    /// Detector and ensemble tuning, shared with `hcmon replay`.
    pub anomaly: AnomalyConfig,
    /// The per-node Isolation Forest, trained in the background on 1-minute rollups.
    pub forest: crate::analytics::forest::ForestConfig,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            anomaly: AnomalyConfig::default(),
            forest: crate::analytics::forest::ForestConfig::default(),
        }
    }
}

/// The newest verdict on a series, as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestVerdict {
    pub timestamp_ms: i64,
    pub value: f64,
    /// 0..1: during an episode its highest score so far (the engine holds later samples'
    /// scores below the threshold so each event is detected once; a series listed as anomalous
    /// shows how anomalous it got), otherwise the sample's own.
    pub score: f64,
    /// The series is in an anomalous episode: from the sample that was its detection until
    /// the series re-arms (back to its baseline, or settled on a new one).
    pub is_anomaly: bool,
    /// The episode's severity (from its highest score); `None` outside an episode.
    pub severity: Severity,
    pub learning: bool,
    /// Detectors that fired, strongest first, with their expected ranges.
    pub fired: Vec<DetectorOutput>,
}

struct Watched {
    detector: SeriesDetector,
    latest: Option<LatestVerdict>,
}

pub struct AnomalyWatch {
    config: AnomalyConfig,
    shards: Vec<Mutex<FxHashMap<SeriesId, Watched>>>,
    queue: Mutex<Option<SyncSender<Arc<Vec<Sample>>>>>,
    skipped_samples: AtomicU64,
}

impl AnomalyWatch {
    /// A watch without a worker: [`observe`](Self::observe) judges synchronously.
    pub fn new(config: AnomalyConfig) -> Self {
        Self {
            config,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            queue: Mutex::new(None),
            skipped_samples: AtomicU64::new(0),
        }
    }

    /// A watch with its worker thread, which lives as long as the watch.
    pub fn start(config: AnomalyConfig) -> std::io::Result<Arc<Self>> {
        let watch = Arc::new(Self::new(config));
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Arc<Vec<Sample>>>(QUEUE_BATCHES);
        let weak = Arc::downgrade(&watch);
        std::thread::Builder::new()
            .name("anomaly-watch".into())
            .spawn(move || {
                for batch in receiver {
                    let Some(watch) = weak.upgrade() else { return };
                    // A panic on one batch is logged and counted; the worker goes on with the
                    // next, so detection never stops silently.
                    let judged =
                        std::panic::catch_unwind(AssertUnwindSafe(|| watch.observe(&batch)));
                    if let Err(payload) = judged {
                        crate::tasks::report_panic("anomaly-watch", &*payload);
                    }
                }
            })?;
        *watch.queue.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender);
        Ok(watch)
    }

    /// Queues stored samples for the worker (judged synchronously without one); skips and
    /// counts them when the queue is full.
    fn submit(&self, samples: &Arc<Vec<Sample>>) {
        let sender = self.queue.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match sender {
            None => self.observe(samples),
            Some(sender) => match sender.try_send(samples.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => {
                    self.skipped_samples
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
            },
        }
    }

    /// Samples skipped because the detectors were behind.
    pub fn skipped_samples(&self) -> u64 {
        self.skipped_samples.load(Ordering::Relaxed)
    }

    fn shard(&self, i: usize) -> std::sync::MutexGuard<'_, FxHashMap<SeriesId, Watched>> {
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Judges stored samples, in order per series. Samples of one series arrive in runs (a
    /// batch groups them), so each run takes its shard's lock once.
    pub fn observe(&self, samples: &[Sample]) {
        for run in samples.chunk_by(|a, b| a.series == b.series) {
            let series = run[0].series;
            let mut shard = self.shard(series.shard(SHARDS));
            let watched = shard.entry(series).or_insert_with(|| Watched {
                detector: SeriesDetector::new(self.config.clone()),
                latest: None,
            });
            let mut last = None;
            for s in run {
                last = Some((s, watched.detector.observe(s.timestamp_ms, s.value)));
            }
            if let Some((s, v)) = last {
                let mut fired: Vec<DetectorOutput> =
                    v.detectors.iter().filter(|d| d.fired()).copied().collect();
                fired.sort_by(|a, b| b.strength.total_cmp(&a.strength));
                watched.latest = Some(LatestVerdict {
                    timestamp_ms: s.timestamp_ms,
                    value: s.value,
                    score: v.episode.map_or(v.score, |e| e.peak_score),
                    is_anomaly: v.episode.is_some(),
                    severity: v.severity,
                    learning: v.learning,
                    fired,
                });
            }
        }
    }

    /// The newest verdict on a series, if it has had any sample since start.
    pub fn latest(&self, series: SeriesId) -> Option<LatestVerdict> {
        self.shard(series.shard(SHARDS))
            .get(&series)
            .and_then(|w| w.latest.clone())
    }

    /// Series watched and how many of them are still learning.
    /// Bytes of per-series state: each watched series' detector and newest verdict, with its
    /// key, as laid out in memory (the verdict's detector list on the heap included).
    pub fn state_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(SeriesId, Watched)>();
        (0..SHARDS)
            .map(|i| {
                let shard = self.shard(i);
                shard.len() * entry
                    + shard
                        .values()
                        .filter_map(|w| w.latest.as_ref())
                        .map(|v| v.fired.capacity() * std::mem::size_of::<DetectorOutput>())
                        .sum::<usize>()
            })
            .sum()
    }

    pub fn counts(&self) -> (usize, usize) {
        let (mut watched, mut learning) = (0, 0);
        for i in 0..SHARDS {
            let shard = self.shard(i);
            watched += shard.len();
            learning += shard.values().filter(|w| w.detector.learning()).count();
        }
        (watched, learning)
    }
}

impl BatchObserver for AnomalyWatch {
    fn stored(&self, batch: &StoredBatch) {
        self.submit(&batch.samples);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::anomaly::Detector;

    #[test]
    fn keeps_the_newest_verdict_per_series_and_flags_a_spike() {
        let watch = AnomalyWatch::new(AnomalyConfig::default());
        let (a, b) = (SeriesId(1), SeriesId(2));
        let batch: Vec<Sample> = (0..100)
            .flat_map(|i| {
                let t = 1_700_000_000_000 + i * 10_000;
                let wobble = (i % 5) as f64 * 0.1;
                [
                    Sample {
                        series: a,
                        timestamp_ms: t,
                        value: 10.0 + wobble,
                    },
                    Sample {
                        series: b,
                        timestamp_ms: t,
                        value: 20.0 + wobble,
                    },
                ]
            })
            .collect();
        let mut by_series = batch.clone();
        by_series.sort_by_key(|s| (s.series.0, s.timestamp_ms));
        watch.observe(&by_series);
        let latest = watch.latest(a).unwrap();
        assert!(!latest.learning && !latest.is_anomaly);
        assert_eq!(latest.timestamp_ms, 1_700_000_000_000 + 99 * 10_000);
        assert_eq!(watch.counts(), (2, 0));
        watch.observe(&[Sample {
            series: b,
            timestamp_ms: 1_700_000_000_000 + 100 * 10_000,
            value: 90.0,
        }]);
        let spike = watch.latest(b).unwrap();
        assert!(spike.is_anomaly && spike.severity == Severity::Critical);
        assert!(spike.fired.iter().any(|d| d.detector == Detector::Level));
        assert!(
            !watch.latest(a).unwrap().is_anomaly,
            "other series unaffected"
        );
        assert!(watch.latest(SeriesId(3)).is_none());
    }
}

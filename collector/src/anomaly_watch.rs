//! Live anomaly detection: every stored sample goes through its series' online detectors right
//! after the durable write, and the newest verdict per series is kept for `/metrics` and
//! `/api/v1/anomalies`.
//!
//! The detectors are the pure ones of [`crate::analytics::anomaly`], with the same defaults as
//! `hcmon replay`. Ingest hands each stored batch to the watch (a [`BatchObserver`]), which
//! queues it for its workers, one per core. Invariants:
//! - Each series belongs to one worker (by [`SeriesId::shard`]), and every worker takes the
//!   batches in the order they were queued, so a series' samples are judged in stored order.
//! - No stored sample is skipped. Acks do not wait for the detectors while the backlog (samples
//!   queued and not yet judged by every worker) is under `[analytics] backlog_samples`; a batch
//!   that would pass it waits on the ingest path until the workers catch up, so a saturating
//!   load slows ingest to the detectors' pace instead of leaving samples unjudged. The backlog,
//!   the age of its oldest batch (the lag) and the time ingest waited are on `/metrics`.
//! - Detector state is in memory only; after a restart each series learns again for
//!   `min_samples` samples.
//! - A worker that has emptied its inbox lingers [`LINGER`] before it sleeps, and ingest wakes
//!   only a sleeping worker: under load the workers take batches in groups, at most `LINGER`
//!   late, instead of being woken for each (a futex wake and two context switches per batch and
//!   worker were a quarter of the detectors' CPU in the ingest profile). An idle collector's
//!   workers sleep without a timer.

use crate::analytics::anomaly::{AnomalyConfig, DetectorOutput, SeriesDetector, Severity};
use crate::ingest::{BatchObserver, StoredBatch};
use crate::storage::{Sample, SeriesId};
use rustc_hash::FxHashMap;
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Most workers: [`SeriesId::shard`] spreads series over at most 16.
const MAX_WORKERS: usize = 16;

/// How long a worker that has emptied its inbox waits for more without being woken: the most
/// a batch waits for its judgement under load.
const LINGER: Duration = Duration::from_millis(5);

/// `[analytics]` in the collector's config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// Run the online anomaly detectors on every stored sample.
    pub enabled: bool,
    /// Most stored samples waiting for the detectors before ingest waits for them (24 bytes
    /// each): bounds both the lag and the memory the backlog holds.
    pub backlog_samples: usize,
    /// Detector and ensemble tuning, shared with `hcmon replay`.
    pub anomaly: AnomalyConfig,
    /// The per-node Isolation Forest, trained in the background on 1-minute rollups.
    pub forest: crate::analytics::forest::ForestConfig,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            backlog_samples: 1_000_000,
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
    pub fired: Box<[DetectorOutput]>,
}

struct Watched {
    detector: SeriesDetector,
    latest: Option<LatestVerdict>,
}

/// A stored batch on its way through every worker.
struct Job {
    id: u64,
    samples: Arc<Vec<Sample>>,
    /// Workers that have not judged their part yet.
    left: AtomicUsize,
}

/// One worker's queue of batches.
#[derive(Default)]
struct Inbox {
    state: Mutex<InboxState>,
    /// Signalled when a batch arrives for a sleeping worker, or the watch is dropped.
    woken: Condvar,
}

#[derive(Default)]
struct InboxState {
    jobs: VecDeque<Arc<Job>>,
    /// The worker waits to be woken: the next batch must wake it. While it lingers it is not
    /// asleep, and batches are queued without a wake.
    asleep: bool,
    /// The watch is gone: the worker ends.
    closed: bool,
}

impl Inbox {
    /// Queues `job`, waking the worker only if it sleeps. (An inbox is closed only when the
    /// watch is dropped, so nothing is pushed after.)
    fn push(&self, job: Arc<Job>) {
        let mut state = lock(&self.state);
        state.jobs.push_back(job);
        if state.asleep {
            state.asleep = false;
            self.woken.notify_one();
        }
    }

    /// Moves every queued batch into `jobs`, waiting for one first: [`LINGER`] without a
    /// wake, then asleep until one comes. False once the inbox is closed.
    fn take(&self, jobs: &mut Vec<Arc<Job>>) -> bool {
        let mut state = lock(&self.state);
        let mut lingered = false;
        while state.jobs.is_empty() {
            if state.closed {
                return false;
            }
            if lingered {
                state.asleep = true;
                state = self.woken.wait(state).unwrap_or_else(|p| p.into_inner());
            } else {
                state = self
                    .woken
                    .wait_timeout(state, LINGER)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                lingered = true;
            }
        }
        state.asleep = false;
        jobs.extend(state.jobs.drain(..));
        true
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.woken.notify_one();
    }
}

/// The batches queued and not yet judged by every worker.
#[derive(Default)]
struct Queued {
    samples: usize,
    next_id: u64,
    /// When each unfinished batch was queued, by id (ids grow with time, so the first is the
    /// oldest, whatever order the workers finish in).
    since: BTreeMap<u64, Instant>,
}

/// What `/metrics` reports of the backlog.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BacklogFigures {
    pub samples: usize,
    /// Age of the oldest batch not yet judged by every worker; zero when none waits.
    pub lag: Duration,
    /// Total time ingest waited for room in the backlog.
    pub waited: Duration,
    pub workers: usize,
}

pub struct AnomalyWatch {
    config: AnomalyConfig,
    /// One map per worker, holding that worker's series. Boxed: a series' state is about 1.75
    /// KiB, and a map holding it in place keeps room for up to twice its entries, every empty
    /// slot at full size (touched when a resize scatters the entries), and both tables while it
    /// grows.
    shards: Vec<Mutex<FxHashMap<SeriesId, Box<Watched>>>>,
    capacity: usize,
    queued: Mutex<Queued>,
    /// Signalled whenever a batch is finished.
    drained: Condvar,
    waited_ns: AtomicU64,
    /// The workers' inboxes; unset without workers: [`observe`](Self::observe) judges
    /// synchronously.
    workers: OnceLock<Vec<Arc<Inbox>>>,
}

impl Drop for AnomalyWatch {
    /// Ends the workers.
    fn drop(&mut self) {
        for inbox in self.workers.get().into_iter().flatten() {
            inbox.close();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl AnomalyWatch {
    /// A watch with `shards` maps and no worker: [`observe`](Self::observe) judges
    /// synchronously.
    fn with_shards(config: AnomalyConfig, shards: usize, capacity: usize) -> Self {
        Self {
            config,
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            capacity: capacity.max(1),
            queued: Mutex::default(),
            drained: Condvar::new(),
            waited_ns: AtomicU64::new(0),
            workers: OnceLock::new(),
        }
    }

    /// A watch without workers: [`observe`](Self::observe) judges synchronously.
    pub fn new(config: AnomalyConfig) -> Self {
        Self::with_shards(config, 1, usize::MAX)
    }

    /// A watch with one worker thread per core (`workers` of them when given), which live as
    /// long as the watch.
    pub fn start(
        config: AnomalyConfig,
        backlog_samples: usize,
        workers: Option<usize>,
    ) -> std::io::Result<Arc<Self>> {
        let count = workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, MAX_WORKERS);
        let watch = Arc::new(Self::with_shards(config, count, backlog_samples));
        let mut inboxes: Vec<Arc<Inbox>> = Vec::with_capacity(count);
        for index in 0..count {
            let inbox = Arc::new(Inbox::default());
            let weak = Arc::downgrade(&watch);
            let mine = inbox.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("anomaly-{index}"))
                .spawn(move || {
                    let mut jobs = Vec::new();
                    while mine.take(&mut jobs) {
                        let Some(watch) = weak.upgrade() else { return };
                        for job in jobs.drain(..) {
                            // A panic on one batch is logged and counted; the worker goes on
                            // with the next, so detection never stops silently.
                            let judged = std::panic::catch_unwind(AssertUnwindSafe(|| {
                                watch.judge_shard(index, &job.samples)
                            }));
                            if let Err(payload) = judged {
                                crate::tasks::report_panic("anomaly-watch", &*payload);
                            }
                            watch.finished(&job);
                        }
                    }
                });
            if let Err(error) = spawned {
                // The workers started end: the watch never holds their inboxes to close them.
                for started in &inboxes {
                    started.close();
                }
                return Err(error);
            }
            inboxes.push(inbox);
        }
        let _ = watch.workers.set(inboxes);
        Ok(watch)
    }

    /// Queues stored samples for the workers (judged synchronously without them), first
    /// waiting while the backlog has no room for them.
    fn submit(&self, samples: &Arc<Vec<Sample>>) {
        if samples.is_empty() {
            return;
        }
        let Some(workers) = self.workers.get() else {
            return self.observe(samples);
        };
        let mut queued = lock(&self.queued);
        if queued.samples > 0 && queued.samples + samples.len() > self.capacity {
            let waiting = Instant::now();
            while queued.samples > 0 && queued.samples + samples.len() > self.capacity {
                queued = self.drained.wait(queued).unwrap_or_else(|p| p.into_inner());
            }
            self.waited_ns
                .fetch_add(waiting.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        let id = queued.next_id;
        queued.next_id += 1;
        queued.samples += samples.len();
        queued.since.insert(id, Instant::now());
        let job = Arc::new(Job {
            id,
            samples: samples.clone(),
            left: AtomicUsize::new(workers.len()),
        });
        // Queued under the queue's lock, so every worker sees the batches in one order.
        for inbox in workers.iter() {
            inbox.push(job.clone());
        }
    }

    /// One worker's part of a batch is done; the last frees its room in the backlog.
    fn finished(&self, job: &Job) {
        if job.left.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let mut queued = lock(&self.queued);
        queued.samples -= job.samples.len();
        queued.since.remove(&job.id);
        drop(queued);
        self.drained.notify_all();
    }

    /// The backlog as `/metrics` shows it.
    pub fn backlog(&self) -> BacklogFigures {
        let queued = lock(&self.queued);
        BacklogFigures {
            samples: queued.samples,
            lag: queued
                .since
                .first_key_value()
                .map_or(Duration::ZERO, |(_, since)| since.elapsed()),
            waited: Duration::from_nanos(self.waited_ns.load(Ordering::Relaxed)),
            workers: self.workers.get().map_or(0, Vec::len),
        }
    }

    fn shard_of(&self, series: SeriesId) -> usize {
        series.shard(self.shards.len())
    }

    /// Judges stored samples, in order per series (all shards, on the caller's thread).
    pub fn observe(&self, samples: &[Sample]) {
        for run in samples.chunk_by(|a, b| a.series == b.series) {
            let mut shard = lock(&self.shards[self.shard_of(run[0].series)]);
            self.judge_run(&mut shard, run);
        }
    }

    /// Judges the samples of one shard's series: its lock is taken once per batch.
    fn judge_shard(&self, index: usize, samples: &[Sample]) {
        let mut shard = lock(&self.shards[index]);
        for run in samples.chunk_by(|a, b| a.series == b.series) {
            if self.shard_of(run[0].series) == index {
                self.judge_run(&mut shard, run);
            }
        }
    }

    /// Samples of one series go through its detector; the last one's verdict is kept.
    fn judge_run(&self, shard: &mut FxHashMap<SeriesId, Box<Watched>>, run: &[Sample]) {
        let watched = shard.entry(run[0].series).or_insert_with(|| {
            Box::new(Watched {
                detector: SeriesDetector::new(),
                latest: None,
            })
        });
        let Some((last, earlier)) = run.split_last() else {
            return;
        };
        // Only the last sample's verdict is kept: the others' are not built.
        for s in earlier {
            watched
                .detector
                .observe_unread(&self.config, s.timestamp_ms, s.value);
        }
        let v = watched
            .detector
            .observe(&self.config, last.timestamp_ms, last.value);
        let mut fired: Vec<DetectorOutput> =
            v.detectors.iter().filter(|d| d.fired()).copied().collect();
        fired.sort_by(|a, b| b.strength.total_cmp(&a.strength));
        watched.latest = Some(LatestVerdict {
            timestamp_ms: last.timestamp_ms,
            value: last.value,
            score: v.episode.map_or(v.score, |e| e.peak_score),
            is_anomaly: v.episode.is_some(),
            severity: v.severity,
            learning: v.learning,
            fired: fired.into_boxed_slice(),
        });
    }

    /// The newest verdict on a series, if it has had any sample since start.
    pub fn latest(&self, series: SeriesId) -> Option<LatestVerdict> {
        lock(&self.shards[self.shard_of(series)])
            .get(&series)
            .and_then(|w| w.latest.clone())
    }

    /// Bytes of per-series state: the maps' slots, and each watched series' detector and newest
    /// verdict (its detector list included).
    pub fn state_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(SeriesId, Box<Watched>)>();
        let watched = std::mem::size_of::<Watched>();
        self.shards
            .iter()
            .map(|shard| {
                let shard = lock(shard);
                shard.capacity() * slot
                    + shard.len() * watched
                    + shard
                        .values()
                        .filter_map(|w| w.latest.as_ref())
                        .map(|v| std::mem::size_of_val(&*v.fired))
                        .sum::<usize>()
            })
            .sum()
    }

    /// Series watched and how many of them are still learning.
    pub fn counts(&self) -> (usize, usize) {
        let (mut watched, mut learning) = (0, 0);
        for shard in &self.shards {
            let shard = lock(shard);
            watched += shard.len();
            learning += shard
                .values()
                .filter(|w| w.detector.learning(&self.config))
                .count();
        }
        (watched, learning)
    }
}

impl BatchObserver for AnomalyWatch {
    fn stored(&self, batch: &StoredBatch) {
        self.submit(&batch.samples);
    }

    /// As [`AnomalyWatch::submit`] decides whether to wait.
    fn has_room(&self, samples: usize) -> bool {
        if self.workers.get().is_none() {
            return true;
        }
        let queued = lock(&self.queued);
        queued.samples == 0 || queued.samples + samples <= self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::anomaly::Detector;

    /// A boxed series takes one allocation of jemalloc's 1.75 KiB size class (1,784 bytes now),
    /// not the next one up (2 KiB): a few bytes more would cost 256 per series.
    #[test]
    fn a_watched_series_fits_jemallocs_1792_byte_class() {
        assert!(
            std::mem::size_of::<Watched>() <= 1792,
            "{}",
            std::mem::size_of::<Watched>()
        );
    }

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

    /// Batches of `series` series × 10 samples each, the `n`th batch's samples following the
    /// previous one's in time; series 7 spikes in the last.
    fn batches(n: usize, series: u64) -> Vec<Arc<Vec<Sample>>> {
        (0..n)
            .map(|b| {
                let samples = (0..series)
                    .flat_map(|id| {
                        (0..10).map(move |i| {
                            let step = (b * 10 + i) as i64;
                            let spike = b == n - 1 && i == 9 && id == 7;
                            Sample {
                                series: SeriesId(id),
                                timestamp_ms: 1_700_000_000_000 + step * 10_000,
                                value: if spike {
                                    500.0
                                } else {
                                    10.0 + (step % 7) as f64 * 0.1
                                },
                            }
                        })
                    })
                    .collect();
                Arc::new(samples)
            })
            .collect()
    }

    #[test]
    fn workers_judge_every_sample_in_order_and_a_full_backlog_waits_instead_of_skipping() {
        // A backlog of one batch: every submit past the first waits for the workers.
        let sync = AnomalyWatch::new(AnomalyConfig::default());
        let watch = AnomalyWatch::start(AnomalyConfig::default(), 1, Some(3)).unwrap();
        let all = batches(40, 50);
        for batch in &all {
            sync.observe(batch);
            watch.stored(&StoredBatch {
                node: None,
                samples: batch.clone(),
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while watch.backlog().samples > 0 {
            assert!(Instant::now() < deadline, "the workers never caught up");
            std::thread::sleep(Duration::from_millis(5));
        }
        let backlog = watch.backlog();
        assert_eq!((backlog.workers, backlog.lag), (3, Duration::ZERO));
        assert!(backlog.waited > Duration::ZERO, "ingest waited for room");
        assert_eq!(watch.counts(), (50, 0));
        for id in 0..50 {
            // The same verdicts as one thread judging in order: nothing skipped or reordered.
            assert_eq!(
                watch.latest(SeriesId(id)),
                sync.latest(SeriesId(id)),
                "series {id}"
            );
        }
        assert!(watch.latest(SeriesId(7)).unwrap().is_anomaly);
    }
}

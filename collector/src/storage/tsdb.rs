//! The time-series engine: WAL, in-memory head, compressed chunks, rollups, retention.
//!
//! # Write path
//! An append writes one WAL record (all of a batch's accepted samples) together with the
//! caller's extra operations (the node's sequence state) in one synced [`KvBatch`], then applies
//! the samples to the head. Only after that does ingest ack, so an acked sample is on disk.
//!
//! # Head
//! Per series, in memory: the open chunk (raw samples in time order), late samples, and the open
//! bucket of each rollup resolution. A chunk is sealed (encoded) when it holds
//! `max_chunk_samples`, spans `max_chunk_span`, or would cross midnight UTC; sealed chunks and
//! finished rollup buckets wait in the shard's outbox for the next checkpoint.
//!
//! # Checkpoint
//! Periodically, one atomic, synced batch writes every outbox chunk and rollup, a snapshot of
//! each changed series head, the checkpoint position, and deletes the WAL records the snapshot
//! covers. Recovery loads the head snapshots and replays the WAL after the checkpoint position,
//! so open chunks are rebuilt exactly from what was durable before each ack.
//!
//! # Invariants
//! - A WAL record is deleted only in the same atomic batch that persists the state it produced.
//! - Appends hold `append_gate` (shared) from WAL id assignment until the head is updated; a
//!   checkpoint takes it exclusively to cut, so its snapshot covers exactly WAL ids ≤ its position.
//! - Reads hold `flush_gate` (shared); a checkpoint holds it exclusively from draining outboxes
//!   until their contents are written, so a read sees every sample in the head or on disk.
//! - Lock order: `checkpointing` → `flush_gate` → `append_gate` → one shard at a time.
//! - A checkpoint that fails after draining the head marks the engine failed: writes are refused
//!   until a restart, which recovers from the WAL the failed checkpoint did not delete.
//! - Chunks never cross a UTC day: retention deletes whole day partitions with one range delete.
//! - A sample older than its series' newest by more than the out-of-order window is refused and
//!   counted, never silently dropped.
//!
//! # Keys
//! - `Chunks`: day (u32) ‖ series (u64) ‖ first timestamp (i64, sign-flipped) ‖ write order
//!   (checkpoint WAL position u64 ‖ index u32): reads merge overlapping chunks in write order
//! - `Rollup*`: day (u32) ‖ series (u64) ‖ block start (i64, sign-flipped) → a columnar block
//!   of buckets (see `rollup::block`); checkpoints merge new buckets into the stored block
//! - `Wal`: write id (u64); `Head`: series (u64); all big-endian.

use super::chunk::{decode_chunk, encode_chunk};
use super::kv::{Kv, KvBatch, Table};
use super::rollup::{Aggregate, Resolution, block, counter_increase};
use super::{MetricKind, NodeRecord, NodeSequence, Sample, SeriesId, SeriesMeta, StoreError};
use hcmon_common::Labels;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

const SHARDS: usize = 16;
const DAY_MS: i64 = 86_400_000;
const META_CHECKPOINT: &[u8] = b"checkpoint";
/// Rollup buckets awaiting recompute, persisted with the checkpoint that took them from memory.
const META_STALE_ROLLUPS: &[u8] = b"stale_rollups";
/// Ids of deleted series (big-endian u64s): their samples are dropped wherever they turn up
/// (WAL replay, a late append), and new series are numbered above them.
const META_DELETED_SERIES: &[u8] = b"deleted_series";

/// Storage tuning, part of the collector's config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Most samples in one compressed chunk.
    pub max_chunk_samples: usize,
    /// Longest time one chunk may span.
    #[serde(with = "humantime_serde")]
    pub max_chunk_span: Duration,
    /// How far behind a series' newest sample a late sample may arrive and still be stored.
    #[serde(with = "humantime_serde")]
    pub out_of_order_window: Duration,
    /// How often the head is checkpointed (bounds WAL replay at start-up).
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// RocksDB block cache size in bytes.
    pub cache_bytes: usize,
    /// How long each resolution is kept.
    pub retention: RetentionConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            max_chunk_samples: 512,
            max_chunk_span: Duration::from_secs(2 * 3600),
            out_of_order_window: Duration::from_secs(3600),
            checkpoint_interval: Duration::from_secs(120),
            cache_bytes: 64 << 20,
            retention: RetentionConfig::default(),
        }
    }
}

/// Retention per resolution, and an optional disk budget.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    #[serde(with = "humantime_serde")]
    pub raw: Duration,
    #[serde(with = "humantime_serde")]
    pub rollup_1m: Duration,
    #[serde(with = "humantime_serde")]
    pub rollup_5m: Duration,
    #[serde(with = "humantime_serde")]
    pub rollup_1h: Duration,
    /// When above zero, the oldest raw days are dropped while the store is larger than this.
    pub disk_budget_bytes: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            raw: Duration::from_secs(7 * DAY),
            rollup_1m: Duration::from_secs(30 * DAY),
            rollup_5m: Duration::from_secs(90 * DAY),
            rollup_1h: Duration::from_secs(730 * DAY),
            disk_budget_bytes: 0,
        }
    }
}

/// What happened to an append's samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    pub accepted: usize,
    /// Refused: older than the out-of-order window allows.
    pub too_old: usize,
}

/// Engine figures for the collector's own metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct TsdbStats {
    pub head_series: usize,
    pub head_samples: usize,
    pub chunks_written: u64,
    pub checkpoints: u64,
}

#[derive(Default)]
struct SeriesHead {
    /// The open chunk, strictly increasing timestamps.
    open: Vec<(i64, f64)>,
    /// Samples that arrived at or before `last_ts`, kept until the next checkpoint.
    late: Vec<(i64, f64)>,
    /// Newest in-order sample.
    last: Option<(i64, f64)>,
    rollups: [Option<(i64, Aggregate)>; 3],
    /// Listed in the shard's `dirty`: changed since the last checkpoint.
    dirty: bool,
}

struct OutChunk {
    series: SeriesId,
    first_ts: i64,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Shard {
    heads: FxHashMap<SeriesId, SeriesHead>,
    chunks: Vec<OutChunk>,
    rollups: Vec<(Resolution, SeriesId, i64, Aggregate)>,
    /// Rollup buckets a late sample changed after they were finished: recomputed from raw.
    stale_rollups: HashSet<(SeriesId, Resolution, i64)>,
    /// Series whose head changed since the last checkpoint (each also flagged in its head).
    dirty: Vec<SeriesId>,
}

/// An opened engine and the durable state it recovered.
pub struct Recovered {
    pub tsdb: Tsdb,
    /// Every series ever defined.
    pub series: Vec<SeriesMeta>,
    /// Every node's record.
    pub nodes: Vec<(String, NodeRecord)>,
}

pub struct Tsdb {
    kv: Box<dyn Kv>,
    config: StorageConfig,
    shards: Vec<Mutex<Shard>>,
    next_wal_id: AtomicU64,
    append_gate: RwLock<()>,
    flush_gate: RwLock<()>,
    /// Serialises checkpoints (the periodic task, shutdown, admin flush).
    checkpointing: Mutex<()>,
    chunks_written: AtomicU64,
    checkpoints: AtomicU64,
    /// Set when a checkpoint failed after taking state out of the head: from then on the head
    /// no longer matches the WAL, so writes and checkpoints are refused until a restart
    /// recovers from the WAL, which that failed checkpoint did not delete.
    failed: std::sync::atomic::AtomicBool,
    /// Series deleted for good (see [`Tsdb::delete_series`]); empty in the common case.
    deleted: RwLock<HashSet<SeriesId>>,
}

/// Timestamps are clamped to this magnitude (±5.8 million years) so every one has a day.
const MAX_ABS_TS: i64 = ((1 << 31) - 1) * DAY_MS;

fn day_of(ts: i64) -> u32 {
    (ts.clamp(-MAX_ABS_TS, MAX_ABS_TS).div_euclid(DAY_MS) + (1 << 31)) as u32
}

fn day_start(day: u32) -> i64 {
    (i64::from(day) - (1 << 31)) * DAY_MS
}

fn flip(ts: i64) -> u64 {
    (ts as u64) ^ (1 << 63)
}

fn unflip(v: u64) -> i64 {
    (v ^ (1 << 63)) as i64
}

/// Write order of a chunk: the checkpoint's WAL position, then its index in that checkpoint.
/// Where chunks overlap, the later write holds the newer value of a repeated timestamp.
type WriteOrder = (u64, u32);

fn chunk_key(day: u32, series: SeriesId, first_ts: i64, order: WriteOrder) -> Vec<u8> {
    let mut k = Vec::with_capacity(32);
    k.extend_from_slice(&day.to_be_bytes());
    k.extend_from_slice(&series.0.to_be_bytes());
    k.extend_from_slice(&flip(first_ts).to_be_bytes());
    k.extend_from_slice(&order.0.to_be_bytes());
    k.extend_from_slice(&order.1.to_be_bytes());
    k
}

fn chunk_order(key: &[u8]) -> WriteOrder {
    let position = key
        .get(20..28)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes);
    let index = key
        .get(28..32)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes);
    (position, index)
}

fn rollup_key(series: SeriesId, block_start: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(20);
    k.extend_from_slice(&day_of(block_start).to_be_bytes());
    k.extend_from_slice(&series.0.to_be_bytes());
    k.extend_from_slice(&flip(block_start).to_be_bytes());
    k
}

/// Samples of one series as (timestamp ms, value).
type Samples = Vec<(i64, f64)>;

/// A finished (or, when sealing, open) rollup bucket on its way to disk.
type RollupItem = (Resolution, SeriesId, i64, Aggregate);

/// Key range of one series in one day partition.
fn series_day_range(day: u32, series: SeriesId) -> (Vec<u8>, Vec<u8>) {
    let mut start = day.to_be_bytes().to_vec();
    start.extend_from_slice(&series.0.to_be_bytes());
    let mut end = start.clone();
    end.push(0xff);
    end.extend_from_slice(&[0xff; 16]);
    (start, end)
}

/// How a series is stored in the `Series` table.
#[derive(Serialize, Deserialize)]
struct StoredSeries {
    labels: String,
    kind: MetricKind,
    help: String,
}

// --- WAL record: varint groups; per group: series, count, then (zigzag ts delta, f64 LE) ---

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

fn encode_wal(samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 11 + 8);
    put_varint(&mut out, samples.len() as u64);
    let mut prev_ts = 0i64;
    let mut prev_series = 0u64;
    for s in samples {
        put_varint(&mut out, s.series.0 ^ prev_series);
        let d = s.timestamp_ms.wrapping_sub(prev_ts);
        put_varint(&mut out, ((d << 1) ^ (d >> 63)) as u64);
        out.extend_from_slice(&s.value.to_le_bytes());
        prev_ts = s.timestamp_ms;
        prev_series = s.series.0;
    }
    out
}

fn decode_wal(bytes: &[u8]) -> Option<Vec<Sample>> {
    let mut pos = 0;
    let n = get_varint(bytes, &mut pos)? as usize;
    let mut out = Vec::with_capacity(n.min(1 << 20));
    let mut prev_ts = 0i64;
    let mut prev_series = 0u64;
    for _ in 0..n {
        let series = get_varint(bytes, &mut pos)? ^ prev_series;
        let z = get_varint(bytes, &mut pos)?;
        let ts = prev_ts.wrapping_add(((z >> 1) as i64) ^ -((z & 1) as i64));
        let value = f64::from_le_bytes(bytes.get(pos..pos + 8)?.try_into().ok()?);
        pos += 8;
        out.push(Sample {
            series: SeriesId(series),
            timestamp_ms: ts,
            value,
        });
        prev_ts = ts;
        prev_series = series;
    }
    Some(out)
}

// --- head snapshot: open chunk, last sample, rollup accumulators ---

fn encode_head(head: &SeriesHead) -> Vec<u8> {
    let mut out = Vec::new();
    match head.last {
        Some((ts, v)) => {
            out.push(1);
            out.extend_from_slice(&ts.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        None => out.push(0),
    }
    for acc in &head.rollups {
        match acc {
            Some((bucket, agg)) => {
                out.push(1);
                out.extend_from_slice(&bucket.to_le_bytes());
                out.extend_from_slice(&agg.encode());
            }
            None => out.push(0),
        }
    }
    if !head.open.is_empty() {
        out.extend_from_slice(&encode_chunk(&head.open));
    }
    out
}

fn decode_head(bytes: &[u8]) -> Option<SeriesHead> {
    let mut head = SeriesHead::default();
    let mut pos = 0;
    let take = |pos: &mut usize, n: usize| -> Option<&[u8]> {
        let s = bytes.get(*pos..*pos + n)?;
        *pos += n;
        Some(s)
    };
    if take(&mut pos, 1)?[0] == 1 {
        let ts = i64::from_le_bytes(take(&mut pos, 8)?.try_into().ok()?);
        let v = f64::from_le_bytes(take(&mut pos, 8)?.try_into().ok()?);
        head.last = Some((ts, v));
    }
    for acc in &mut head.rollups {
        if take(&mut pos, 1)?[0] == 1 {
            let bucket = i64::from_le_bytes(take(&mut pos, 8)?.try_into().ok()?);
            let agg = Aggregate::decode(take(&mut pos, 56)?)?;
            *acc = Some((bucket, agg));
        }
    }
    if pos < bytes.len() {
        head.open = decode_chunk(&bytes[pos..]).ok()?;
    }
    Some(head)
}

impl SeriesHead {
    fn newest_ts(&self) -> Option<i64> {
        self.last.map(|(ts, _)| ts)
    }

    /// What a snapshot persists: everything but the late samples, which become chunks.
    fn copy_without_late(&self) -> SeriesHead {
        SeriesHead {
            open: self.open.clone(),
            late: Vec::new(),
            last: self.last,
            rollups: self.rollups,
            dirty: false,
        }
    }

    /// Encodes the open chunk into an outbox chunk, leaving the open chunk empty.
    fn seal(&mut self, series: SeriesId) -> Option<OutChunk> {
        let first_ts = self.open.first()?.0;
        let bytes = encode_chunk(&self.open);
        self.open.clear();
        Some(OutChunk {
            series,
            first_ts,
            bytes,
        })
    }
}

impl Shard {
    fn seal(&mut self, series: SeriesId) {
        let head = self.heads.get_mut(&series).expect("sealing a present head");
        self.chunks.extend(head.seal(series));
    }

    /// Applies accepted samples of one series, in arrival order, to the head: one lookup per
    /// run of samples rather than per sample.
    fn apply_run(
        &mut self,
        config: &StorageConfig,
        series: SeriesId,
        samples: impl Iterator<Item = (i64, f64)>,
    ) {
        let Shard {
            heads,
            chunks,
            rollups,
            stale_rollups,
            dirty,
        } = self;
        let head = heads.entry(series).or_default();
        if !head.dirty {
            head.dirty = true;
            dirty.push(series);
        }
        let max_span = config.max_chunk_span.as_millis() as i64;
        for (ts, value) in samples {
            match head.newest_ts() {
                Some(newest) if ts == newest && head.open.last().is_some_and(|l| l.0 == ts) => {
                    // A repeat of the newest sample (a client retry): the new value wins.
                    *head.open.last_mut().expect("checked") = (ts, value);
                    head.last = Some((ts, value));
                    continue;
                }
                Some(newest) if ts <= newest => {
                    head.late.push((ts, value));
                    for res in Resolution::ALL {
                        let bucket = res.bucket(ts);
                        match &mut head.rollups[res.index()] {
                            Some((open, agg)) if *open == bucket => agg.add(ts, value, 0.0),
                            open => {
                                stale_rollups.insert((series, res, bucket));
                                // The next bucket's counter step from its previous sample
                                // changed too, unless that bucket is the open one (still
                                // accumulating).
                                let next = bucket + res.millis();
                                if open.is_none_or(|(b, _)| b != next) {
                                    stale_rollups.insert((series, res, next));
                                }
                            }
                        }
                    }
                    continue;
                }
                _ => {}
            }
            let cut = head.open.first().is_some_and(|&(first, _)| {
                head.open.len() >= config.max_chunk_samples
                    || ts - first >= max_span
                    || day_of(ts) != day_of(first)
            });
            if cut {
                chunks.extend(head.seal(series));
            }
            let increase = counter_increase(head.last.map(|l| l.1), value);
            head.open.push((ts, value));
            head.last = Some((ts, value));
            for res in Resolution::ALL {
                let bucket = res.bucket(ts);
                let slot = &mut head.rollups[res.index()];
                match slot {
                    Some((open, agg)) if *open == bucket => agg.add(ts, value, increase),
                    _ => {
                        if let Some((open, agg)) = slot.take() {
                            rollups.push((res, series, open, agg));
                        }
                        *slot = Some((bucket, Aggregate::new(ts, value, increase)));
                    }
                }
            }
        }
    }

    /// Marks a series for the next checkpoint's snapshot.
    fn mark_dirty(&mut self, series: SeriesId) {
        let head = self.heads.entry(series).or_default();
        if !head.dirty {
            head.dirty = true;
            self.dirty.push(series);
        }
    }
}

/// Runs of consecutive samples of one series.
fn series_runs(samples: &[Sample]) -> impl Iterator<Item = &[Sample]> {
    samples.chunk_by(|a, b| a.series == b.series)
}

impl Tsdb {
    /// The key-value store under the engine, for the alerting tables.
    pub fn kv(&self) -> &dyn Kv {
        self.kv.as_ref()
    }

    /// Opens the engine: loads series, nodes and head snapshots, and replays the WAL.
    pub fn open(kv: Box<dyn Kv>, config: StorageConfig) -> Result<Recovered, StoreError> {
        let mut series = Vec::new();
        let mut failure = None;
        kv.scan(Table::Series, &[], &[0xff; 9], &mut |k, v| {
            match decode_series(k, v) {
                Ok(meta) => series.push(meta),
                Err(e) => failure = Some(e),
            }
            failure.is_none()
        })?;
        let mut nodes: BTreeMap<String, NodeRecord> = BTreeMap::new();
        // A node record that cannot be read is left where it is and logged, never a reason
        // not to start: its agent's next registration writes it anew.
        kv.scan(Table::Nodes, &[], &[0xff], &mut |k, v| {
            match decode_node::<NodeRecord>(k, v) {
                Ok((name, record)) => {
                    nodes.insert(name, record);
                }
                Err(error) => {
                    tracing::error!(key = %String::from_utf8_lossy(k), %error, "unreadable node record skipped")
                }
            }
            true
        })?;
        // The sequence state written with each batch is newer than the registration's copy.
        kv.scan(Table::NodeSequences, &[], &[0xff], &mut |k, v| {
            match decode_node::<NodeSequence>(k, v) {
                Ok((name, sequence)) => nodes.entry(name).or_default().set_sequence(sequence),
                Err(error) => {
                    tracing::error!(key = %String::from_utf8_lossy(k), %error, "unreadable node sequence record skipped")
                }
            }
            true
        })?;
        let nodes: Vec<(String, NodeRecord)> = nodes.into_iter().collect();
        let deleted: HashSet<SeriesId> = match kv.get(Table::Meta, META_DELETED_SERIES)? {
            Some(bytes) if bytes.len() % 8 == 0 => bytes
                .chunks_exact(8)
                .map(|b| SeriesId(u64::from_be_bytes(b.try_into().expect("8 bytes"))))
                .collect(),
            Some(bytes) => {
                return Err(StoreError::Corrupt {
                    what: "deleted-series list",
                    detail: format!("{} bytes, not a multiple of 8", bytes.len()),
                });
            }
            None => HashSet::new(),
        };
        let tsdb = Self {
            kv,
            config,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            next_wal_id: AtomicU64::new(1),
            append_gate: RwLock::new(()),
            flush_gate: RwLock::new(()),
            checkpointing: Mutex::new(()),
            chunks_written: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            failed: Default::default(),
            deleted: RwLock::new(deleted.clone()),
        };
        let deleted_ids = deleted;
        tsdb.kv.scan(Table::Head, &[], &[0xff; 9], &mut |k, v| {
            let parsed = k
                .try_into()
                .ok()
                .map(u64::from_be_bytes)
                .zip(decode_head(v));
            match parsed {
                // A head of a deleted series whose deletion was cut short stays behind.
                Some((id, _)) if deleted_ids.contains(&SeriesId(id)) => {}
                Some((id, head)) => {
                    let id = SeriesId(id);
                    tsdb.shard(id).heads.insert(id, head);
                }
                None => {
                    failure = Some(StoreError::Corrupt {
                        what: "head",
                        detail: format!("key {k:?}"),
                    })
                }
            }
            failure.is_none()
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        let checkpoint = tsdb
            .kv
            .get(Table::Meta, META_CHECKPOINT)?
            .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        let mut last_id = checkpoint;
        let mut replayed = 0usize;
        tsdb.kv.scan(
            Table::Wal,
            &(checkpoint + 1).to_be_bytes(),
            &[0xff; 9],
            &mut |k, v| {
                let parsed = k.try_into().ok().map(u64::from_be_bytes).zip(decode_wal(v));
                match parsed {
                    Some((id, mut samples)) => {
                        last_id = id;
                        // Samples of series deleted since they were written are not revived.
                        samples.retain(|sample| !deleted_ids.contains(&sample.series));
                        replayed += samples.len();
                        tsdb.apply(&samples);
                    }
                    None => {
                        failure = Some(StoreError::Corrupt {
                            what: "WAL",
                            detail: format!("key {k:?}"),
                        })
                    }
                }
                failure.is_none()
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
        tsdb.next_wal_id.store(last_id + 1, Ordering::SeqCst);
        if let Some(stale) = tsdb.kv.get(Table::Meta, META_STALE_ROLLUPS)? {
            for (series, res, bucket) in decode_stale(&stale) {
                let mut shard = tsdb.shard(series);
                shard.stale_rollups.insert((series, res, bucket));
                shard.mark_dirty(series);
            }
        }
        tracing::info!(
            series = series.len(),
            checkpoint,
            replayed_samples = replayed,
            "storage recovered"
        );
        Ok(Recovered {
            tsdb,
            series,
            nodes,
        })
    }

    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    fn shard(&self, series: SeriesId) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[series.shard(SHARDS)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn apply(&self, samples: &[Sample]) {
        let deleted = self.deleted.read().unwrap_or_else(|p| p.into_inner());
        let mut by_shard: Vec<Vec<Sample>> = vec![Vec::new(); SHARDS];
        // A write that found a series just before it was deleted must not bring its head back.
        for s in samples.iter().filter(|s| !deleted.contains(&s.series)) {
            by_shard[s.series.shard(SHARDS)].push(*s);
        }
        drop(deleted);
        for (i, group) in by_shard.into_iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            let mut shard = self.shards[i].lock().unwrap_or_else(|p| p.into_inner());
            for run in series_runs(&group) {
                let samples = run.iter().map(|s| (s.timestamp_ms, s.value));
                shard.apply_run(&self.config, run[0].series, samples);
            }
        }
    }

    /// Stores series definitions durably (before any sample refers to them).
    pub fn create_series(&self, metas: &[SeriesMeta]) -> Result<(), StoreError> {
        let mut batch = KvBatch::default();
        for meta in metas {
            let stored = StoredSeries {
                labels: String::from_utf8(meta.labels.encode()).expect("labels are UTF-8"),
                kind: meta.kind,
                help: meta.help.clone(),
            };
            batch.put(
                Table::Series,
                meta.id.0.to_be_bytes(),
                serde_json::to_vec(&stored).expect("serialisable"),
            );
        }
        self.kv.write(batch, true)
    }

    /// Records a node's state durably.
    pub fn put_node(&self, node: &str, record: &NodeRecord) -> Result<(), StoreError> {
        let mut batch = KvBatch::default();
        batch.put(
            Table::Nodes,
            node.as_bytes(),
            serde_json::to_vec(record).expect("serialisable"),
        );
        batch.put(
            Table::NodeSequences,
            node.as_bytes(),
            serde_json::to_vec(&record.sequence()).expect("serialisable"),
        );
        self.kv.write(batch, true)
    }

    /// Forgets a node's state durably (its series are untouched).
    pub fn delete_node(&self, node: &str) -> Result<(), StoreError> {
        let mut batch = KvBatch::default();
        batch.delete(Table::Nodes, node.as_bytes());
        batch.delete(Table::NodeSequences, node.as_bytes());
        self.kv.write(batch, true)
    }

    /// The lowest id a new series may take: above every deleted one, so a deleted series'
    /// leftovers (a WAL record, a chunk a cut-short deletion missed) never join a new series.
    pub fn first_free_series_id(&self) -> u64 {
        let deleted = self.deleted.read().unwrap_or_else(|p| p.into_inner());
        deleted.iter().map(|id| id.0 + 1).max().unwrap_or(0)
    }

    /// Deletes series for good: definitions, heads, chunks and rollups. Returns how many stored
    /// chunks and rollup blocks went. The caller takes them out of the catalog first, so no
    /// reader or writer finds them while they go.
    ///
    /// Chunks and rollups are keyed day first, so each day present is visited once and only
    /// the key range between the smallest and largest doomed id is read. The ids stay on a
    /// durable deleted list: their samples still in the WAL are skipped at recovery, and new
    /// series are numbered above them. A deletion cut short by a crash leaves stored blocks that
    /// nothing reads; retention removes them with their day.
    pub fn delete_series(&self, ids: &[SeriesId]) -> Result<usize, StoreError> {
        let (Some(low), Some(high)) = (ids.iter().min(), ids.iter().max()) else {
            return Ok(0);
        };
        let doomed: HashSet<SeriesId> = ids.iter().copied().collect();
        {
            // No checkpoint may write a head or chunk of a doomed series while it goes; once
            // they are on the deleted list no append brings one back, so the lock is given up
            // before the long part, the scan of stored days.
            let _checkpointing = self.checkpointing.lock().unwrap_or_else(|p| p.into_inner());
            let mut deleted = self.deleted.write().unwrap_or_else(|p| p.into_inner());
            deleted.extend(doomed.iter().copied());
            let mut batch = KvBatch::default();
            for id in &doomed {
                batch.delete(Table::Series, id.0.to_be_bytes());
                batch.delete(Table::Head, id.0.to_be_bytes());
            }
            let mut list: Vec<u64> = deleted.iter().map(|id| id.0).collect();
            list.sort_unstable();
            let encoded: Vec<u8> = list.iter().flat_map(|id| id.to_be_bytes()).collect();
            batch.put(Table::Meta, META_DELETED_SERIES, encoded);
            self.kv.write(batch, true)?;
            drop(deleted);
            for shard in &self.shards {
                let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
                shard.heads.retain(|id, _| !doomed.contains(id));
                shard.chunks.retain(|chunk| !doomed.contains(&chunk.series));
                shard.rollups.retain(|(_, id, _, _)| !doomed.contains(id));
                shard
                    .stale_rollups
                    .retain(|(id, _, _)| !doomed.contains(id));
                shard.dirty.retain(|id| !doomed.contains(id));
            }
        }
        let mut deleted = 0;
        for table in [
            Table::Chunks,
            Table::Rollup1m,
            Table::Rollup5m,
            Table::Rollup1h,
        ] {
            let mut day = 0u32;
            loop {
                let mut present = None;
                self.kv
                    .scan(table, &day.to_be_bytes(), &[0xff; 5], &mut |k, _| {
                        present = k
                            .get(..4)
                            .and_then(|d| d.try_into().ok())
                            .map(u32::from_be_bytes);
                        false
                    })?;
                let Some(found) = present else { break };
                let mut start = found.to_be_bytes().to_vec();
                start.extend_from_slice(&low.0.to_be_bytes());
                let mut end = found.to_be_bytes().to_vec();
                end.extend_from_slice(&high.0.saturating_add(1).to_be_bytes());
                let mut batch = KvBatch::default();
                self.kv.scan(table, &start, &end, &mut |k, _| {
                    let id = k
                        .get(4..12)
                        .and_then(|b| b.try_into().ok())
                        .map(|b| SeriesId(u64::from_be_bytes(b)));
                    if id.is_some_and(|id| doomed.contains(&id)) {
                        batch.delete(table, k.to_vec());
                        deleted += 1;
                    }
                    true
                })?;
                self.kv.write(batch, false)?;
                match found.checked_add(1) {
                    Some(next) => day = next,
                    None => break,
                }
            }
        }
        Ok(deleted)
    }

    /// Appends samples durably (with the node's new sequence state, when given) and applies them
    /// to the head. Samples too far behind their series' newest are refused and counted.
    pub fn append(
        &self,
        node: Option<(&str, &NodeSequence)>,
        samples: &[Sample],
    ) -> Result<AppendOutcome, StoreError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(StoreError::Failed);
        }
        let window = self.config.out_of_order_window.as_millis() as i64;
        let mut accepted = Vec::with_capacity(samples.len());
        {
            let mut by_shard: Vec<Vec<Sample>> = vec![Vec::new(); SHARDS];
            for s in samples {
                by_shard[s.series.shard(SHARDS)].push(*s);
            }
            for (i, group) in by_shard.into_iter().enumerate() {
                if group.is_empty() {
                    continue;
                }
                let shard = self.shards[i].lock().unwrap_or_else(|p| p.into_inner());
                for run in series_runs(&group) {
                    let newest = shard
                        .heads
                        .get(&run[0].series)
                        .and_then(SeriesHead::newest_ts);
                    accepted.extend(
                        run.iter()
                            .filter(|s| newest.is_none_or(|n| s.timestamp_ms >= n - window)),
                    );
                }
            }
        }
        let outcome = AppendOutcome {
            accepted: accepted.len(),
            too_old: samples.len() - accepted.len(),
        };
        let mut batch = KvBatch::default();
        if let Some((name, sequence)) = node {
            batch.put(
                Table::NodeSequences,
                name.as_bytes(),
                serde_json::to_vec(sequence).expect("serialisable"),
            );
        }
        let _gate = self.append_gate.read().unwrap_or_else(|p| p.into_inner());
        if !accepted.is_empty() {
            let id = self.next_wal_id.fetch_add(1, Ordering::SeqCst);
            batch.put(Table::Wal, id.to_be_bytes(), encode_wal(&accepted));
        }
        if batch.is_empty() {
            return Ok(outcome);
        }
        self.kv.write(batch, true)?;
        self.apply(&accepted);
        Ok(outcome)
    }

    /// The day partitions of `table` in `[first, last]` that hold any data, found with one seek
    /// per existing day, so an unbounded time range costs no more than the data kept.
    fn days_with_data(&self, table: Table, first: u32, last: u32) -> Result<Vec<u32>, StoreError> {
        let end: Vec<u8> = match last.checked_add(1) {
            Some(after) => after.to_be_bytes().to_vec(),
            None => vec![0xff; 5],
        };
        let mut days = Vec::new();
        let mut from = first;
        loop {
            let mut found = None;
            self.kv
                .scan(table, &from.to_be_bytes(), &end, &mut |k, _| {
                    found = k
                        .get(..4)
                        .and_then(|d| d.try_into().ok())
                        .map(u32::from_be_bytes);
                    false
                })?;
            let Some(day) = found else { return Ok(days) };
            days.push(day);
            match day.checked_add(1) {
                Some(next) if next <= last => from = next,
                _ => return Ok(days),
            }
        }
    }

    /// The newest in-order sample of a series.
    pub fn latest(&self, series: SeriesId) -> Option<(i64, f64)> {
        self.shard(series).heads.get(&series).and_then(|h| h.last)
    }

    /// Samples of a series with `start <= ts <= end`, in time order, one per timestamp.
    pub fn read_raw(
        &self,
        series: SeriesId,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        let _gate = self.flush_gate.read().unwrap_or_else(|p| p.into_inner());
        self.read_raw_ungated(series, start, end)
    }

    fn read_raw_ungated(
        &self,
        series: SeriesId,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        if start > end {
            return Ok(Vec::new());
        }
        let mut stored: Vec<(WriteOrder, Vec<(i64, f64)>)> = Vec::new();
        let mut failure = None;
        for day in self.days_with_data(Table::Chunks, day_of(start), day_of(end))? {
            let (from, to) = series_day_range(day, series);
            self.kv.scan(Table::Chunks, &from, &to, &mut |k, v| {
                let first = unflip(u64::from_be_bytes(k[12..20].try_into().expect("chunk key")));
                if first > end {
                    return false;
                }
                match decode_chunk(v) {
                    Ok(samples) => stored.push((
                        chunk_order(k),
                        samples
                            .into_iter()
                            .filter(|s| s.0 >= start && s.0 <= end)
                            .collect(),
                    )),
                    Err(e) => {
                        failure = Some(StoreError::Corrupt {
                            what: "chunk",
                            detail: e.to_string(),
                        })
                    }
                }
                failure.is_none()
            })?;
        }
        if let Some(e) = failure {
            return Err(e);
        }
        // Oldest write first, so that merging keeps the newest value of a repeated timestamp.
        stored.sort_by_key(|(order, _)| *order);
        let mut out: Vec<(i64, f64)> = stored.into_iter().flat_map(|(_, s)| s).collect();
        {
            let shard = self.shard(series);
            // A chunk spans less than `max_chunk_span`: those that cannot reach into the range
            // are not decoded (after a back-fill the outbox holds days of one series).
            let span = self.config.max_chunk_span.as_millis() as i64;
            let wanted = |c: &&OutChunk| {
                c.series == series && c.first_ts <= end && c.first_ts + span > start
            };
            for chunk in shard.chunks.iter().filter(wanted) {
                let samples = decode_chunk(&chunk.bytes).map_err(|e| StoreError::Corrupt {
                    what: "chunk",
                    detail: e.to_string(),
                })?;
                out.extend(samples.into_iter().filter(|s| s.0 >= start && s.0 <= end));
            }
            if let Some(head) = shard.heads.get(&series) {
                // Late samples arrived after the open chunk's: for a repeated time they win.
                out.extend(
                    head.open
                        .iter()
                        .chain(&head.late)
                        .filter(|s| s.0 >= start && s.0 <= end),
                );
            }
        }
        if !out.is_sorted_by(|a, b| a.0 < b.0) {
            // Late samples and overlapping chunks: order them, keeping the newest write per time.
            let mut indexed: Vec<(usize, (i64, f64))> = out.into_iter().enumerate().collect();
            indexed.sort_by_key(|(i, s)| (s.0, *i));
            indexed.dedup_by(|later, earlier| {
                if later.1.0 == earlier.1.0 {
                    *earlier = *later;
                    true
                } else {
                    false
                }
            });
            out = indexed.into_iter().map(|(_, s)| s).collect();
        }
        Ok(out)
    }

    /// Rollup buckets of a series starting in `[start, end]`, in time order.
    pub fn read_rollup(
        &self,
        series: SeriesId,
        res: Resolution,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        let _gate = self.flush_gate.read().unwrap_or_else(|p| p.into_inner());
        let mut found: std::collections::BTreeMap<i64, Aggregate> = Default::default();
        if start <= end {
            let mut failure = None;
            for day in self.days_with_data(res.table(), day_of(start), day_of(end))? {
                let (from, to) = series_day_range(day, series);
                self.kv.scan(res.table(), &from, &to, &mut |k, v| {
                    let block_start = unflip(u64::from_be_bytes(
                        k[12..20].try_into().expect("rollup key"),
                    ));
                    if block_start > end {
                        return false;
                    }
                    match block::decode(res, block_start, v) {
                        Some(buckets) => found.extend(
                            buckets
                                .into_iter()
                                .filter(|(b, _)| (start..=end).contains(b)),
                        ),
                        None => {
                            failure = Some(StoreError::Corrupt {
                                what: "rollup",
                                detail: format!("{} bytes", v.len()),
                            })
                        }
                    }
                    failure.is_none()
                })?;
            }
            if let Some(e) = failure {
                return Err(e);
            }
            let shard = self.shard(series);
            for (r, s, bucket, agg) in &shard.rollups {
                if *r == res && *s == series && (start..=end).contains(bucket) {
                    found.insert(*bucket, *agg);
                }
            }
            if let Some((bucket, agg)) = shard
                .heads
                .get(&series)
                .and_then(|h| h.rollups[res.index()])
                .filter(|(bucket, _)| (start..=end).contains(bucket))
            {
                found.insert(bucket, agg);
            }
        }
        Ok(found.into_iter().collect())
    }

    /// Persists the head: outbox chunks and rollups, head snapshots, the checkpoint position,
    /// and deletes the WAL it covers. With `seal`, open chunks are sealed first (shutdown,
    /// explicit compaction), so everything lands in chunks.
    pub fn checkpoint(&self, seal: bool) -> Result<(), StoreError> {
        let _one = self.checkpointing.lock().unwrap_or_else(|p| p.into_inner());
        if self.failed.load(Ordering::SeqCst) {
            return Err(StoreError::Failed);
        }
        let result = self.checkpoint_locked(seal);
        if result.is_err() {
            self.failed.store(true, Ordering::SeqCst);
        }
        result
    }

    fn checkpoint_locked(&self, seal: bool) -> Result<(), StoreError> {
        let _readers = self.flush_gate.write().unwrap_or_else(|p| p.into_inner());
        let mut batch = KvBatch::default();
        let mut stale = Vec::new();
        let mut rollups: Vec<RollupItem> = Vec::new();
        // (series, head to persist, late samples to write as chunks)
        let mut snapshots: Vec<(SeriesId, SeriesHead, Samples)> = Vec::new();
        let mut chunk_count = 0u64;
        let wal_upto;
        {
            let _appends = self.append_gate.write().unwrap_or_else(|p| p.into_inner());
            wal_upto = self.next_wal_id.load(Ordering::SeqCst) - 1;
            for shard in &self.shards {
                let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
                let dirty = std::mem::take(&mut shard.dirty);
                for &series in &dirty {
                    if seal {
                        shard.seal(series);
                    }
                    let head = shard.heads.get_mut(&series).expect("dirty heads exist");
                    head.dirty = false;
                    // Copy now, encode after the gate is released, so appends wait only for
                    // memory copies, not for encoding.
                    let late = std::mem::take(&mut head.late);
                    let open_rollups = head.rollups;
                    snapshots.push((series, head.copy_without_late(), late));
                    if seal {
                        // Open buckets go to disk too, so compacted data answers rollup reads
                        // alone; the snapshot keeps accumulating them.
                        for (res, slot) in Resolution::ALL.into_iter().zip(open_rollups) {
                            if let Some((bucket, agg)) = slot {
                                rollups.push((res, series, bucket, agg));
                            }
                        }
                    }
                }
                for chunk in shard.chunks.drain(..) {
                    let order = (wal_upto, chunk_count as u32);
                    chunk_count += 1;
                    batch.put(
                        Table::Chunks,
                        chunk_key(day_of(chunk.first_ts), chunk.series, chunk.first_ts, order),
                        chunk.bytes,
                    );
                }
                rollups.append(&mut shard.rollups);
                stale.extend(shard.stale_rollups.drain());
            }
        }
        for (series, head, mut late) in snapshots {
            batch.put(Table::Head, series.0.to_be_bytes(), encode_head(&head));
            // Stable sort keeps arrival order within a timestamp; the last arrival wins.
            late.sort_by_key(|s| s.0);
            late.reverse();
            late.dedup_by_key(|s| s.0);
            late.reverse();
            for day_samples in late.chunk_by(|a, b| day_of(a.0) == day_of(b.0)) {
                let order = (wal_upto, chunk_count as u32);
                chunk_count += 1;
                let first_ts = day_samples[0].0;
                batch.put(
                    Table::Chunks,
                    chunk_key(day_of(first_ts), series, first_ts, order),
                    encode_chunk(day_samples),
                );
            }
        }
        self.merge_rollups(&mut batch, rollups)?;
        if !stale.is_empty() {
            batch.put(Table::Meta, META_STALE_ROLLUPS, encode_stale(&stale));
        }
        batch.put(Table::Meta, META_CHECKPOINT, wal_upto.to_be_bytes());
        batch.delete_range(Table::Wal, 0u64.to_be_bytes(), (wal_upto + 1).to_be_bytes());
        self.kv.write(batch, true)?;

        // Buckets changed by late samples are recomputed from raw data, which is idempotent. The
        // list went to disk with the first write, so a crash before this one leaves it to the
        // next start.
        if !stale.is_empty() {
            let mut recomputed = Vec::new();
            for (series, res, bucket) in stale {
                // The counter's previous sample may sit a while before the bucket.
                let lookback = res.millis().max(STALE_LOOKBACK_MS);
                let raw =
                    self.read_raw_ungated(series, bucket - lookback, bucket + res.millis() - 1)?;
                let split = raw.partition_point(|s| s.0 < bucket);
                let prev = split.checked_sub(1).map(|i| raw[i].1);
                if let Some(agg) = Aggregate::of(&raw[split..], prev) {
                    recomputed.push((res, series, bucket, agg));
                }
            }
            let mut batch = KvBatch::default();
            self.merge_rollups(&mut batch, recomputed)?;
            batch.delete(Table::Meta, META_STALE_ROLLUPS);
            self.kv.write(batch, true)?;
        }
        self.chunks_written
            .fetch_add(chunk_count, Ordering::Relaxed);
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Adds rollup buckets to their stored blocks (read, merge, write back; a bucket already
    /// stored is replaced). Only checkpoints write rollups, and they are serialised.
    fn merge_rollups(&self, batch: &mut KvBatch, items: Vec<RollupItem>) -> Result<(), StoreError> {
        let mut blocks: HashMap<(Resolution, SeriesId, i64), Vec<(i64, Aggregate)>> =
            HashMap::new();
        for (res, series, bucket, agg) in items {
            blocks
                .entry((res, series, block::start(res, bucket)))
                .or_default()
                .push((bucket, agg));
        }
        for ((res, series, start), fresh) in blocks {
            let key = rollup_key(series, start);
            let mut merged: std::collections::BTreeMap<i64, Aggregate> =
                match self.kv.get(res.table(), &key)? {
                    Some(bytes) => block::decode(res, start, &bytes)
                        .ok_or_else(|| StoreError::Corrupt {
                            what: "rollup",
                            detail: format!("{} bytes", bytes.len()),
                        })?
                        .into_iter()
                        .collect(),
                    None => Default::default(),
                };
            merged.extend(fresh);
            let buckets: Vec<(i64, Aggregate)> = merged.into_iter().collect();
            batch.put(res.table(), key, block::encode(res, start, &buckets));
        }
        Ok(())
    }

    /// Deletes data past each resolution's retention, and the oldest raw days while over the
    /// disk budget. Returns how many raw days the budget dropped.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, StoreError> {
        let r = &self.config.retention;
        let mut batch = KvBatch::default();
        for (table, keep) in [
            (Table::Chunks, r.raw),
            (Table::Rollup1m, r.rollup_1m),
            (Table::Rollup5m, r.rollup_5m),
            (Table::Rollup1h, r.rollup_1h),
        ] {
            let cutoff = day_of(now_ms - keep.as_millis() as i64);
            batch.delete_range(table, 0u32.to_be_bytes(), cutoff.to_be_bytes());
        }
        self.kv.write(batch, false)?;
        let mut dropped = 0;
        if r.disk_budget_bytes > 0 {
            while self.disk_size() > r.disk_budget_bytes {
                let mut oldest = None;
                self.kv.scan(Table::Chunks, &[], &[0xff; 4], &mut |k, _| {
                    oldest = k
                        .get(..4)
                        .and_then(|d| d.try_into().ok())
                        .map(u32::from_be_bytes);
                    false
                })?;
                let today = day_of(now_ms);
                let Some(day) = oldest.filter(|d| *d < today) else {
                    break;
                };
                let mut batch = KvBatch::default();
                batch.delete_range(Table::Chunks, 0u32.to_be_bytes(), (day + 1).to_be_bytes());
                self.kv.write(batch, false)?;
                self.kv.compact(Table::Chunks)?;
                tracing::warn!(
                    day_start_ms = day_start(day),
                    budget = r.disk_budget_bytes,
                    "disk budget exceeded: dropped the oldest raw day"
                );
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Bytes on disk per table.
    pub fn table_sizes(&self) -> Vec<(Table, u64)> {
        Table::ALL
            .iter()
            .map(|&t| (t, self.kv.disk_size(t)))
            .collect()
    }

    /// Key and value bytes per table, without the backend's file overhead.
    pub fn logical_sizes(&self) -> Result<Vec<(Table, u64)>, StoreError> {
        Table::ALL
            .iter()
            .map(|&t| Ok((t, self.kv.logical_size(t)?)))
            .collect()
    }

    pub fn disk_size(&self) -> u64 {
        Table::ALL.iter().map(|&t| self.kv.disk_size(t)).sum()
    }

    /// Seals and persists everything, then compacts every table (benchmarks, before backups).
    pub fn compact(&self) -> Result<(), StoreError> {
        self.checkpoint(true)?;
        self.kv.flush()?;
        for table in Table::ALL {
            self.kv.compact(table)?;
        }
        Ok(())
    }

    /// Final checkpoint and flush at shutdown.
    pub fn close(&self) -> Result<(), StoreError> {
        self.checkpoint(true)?;
        self.kv.flush()
    }

    pub fn stats(&self) -> TsdbStats {
        let mut stats = TsdbStats {
            chunks_written: self.chunks_written.load(Ordering::Relaxed),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            ..TsdbStats::default()
        };
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            stats.head_series += shard.heads.len();
            stats.head_samples += shard
                .heads
                .values()
                .map(|h| h.open.len() + h.late.len())
                .sum::<usize>();
        }
        stats
    }
}

/// How far back a rollup recompute looks for a counter's previous sample.
const STALE_LOOKBACK_MS: i64 = 15 * 60 * 1000;

fn encode_stale(stale: &[(SeriesId, Resolution, i64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stale.len() * 17);
    for (series, res, bucket) in stale {
        out.extend_from_slice(&series.0.to_be_bytes());
        out.push(res.index() as u8);
        out.extend_from_slice(&bucket.to_be_bytes());
    }
    out
}

fn decode_stale(bytes: &[u8]) -> Vec<(SeriesId, Resolution, i64)> {
    bytes
        .chunks_exact(17)
        .filter_map(|c| {
            let series = SeriesId(u64::from_be_bytes(c[..8].try_into().ok()?));
            let res = *Resolution::ALL.get(usize::from(c[8]))?;
            Some((series, res, i64::from_be_bytes(c[9..17].try_into().ok()?)))
        })
        .collect()
}

fn decode_series(key: &[u8], value: &[u8]) -> Result<SeriesMeta, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "series",
        detail,
    };
    let id = u64::from_be_bytes(
        key.try_into()
            .map_err(|_| corrupt(format!("key {key:?}")))?,
    );
    let stored: StoredSeries = serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
    let labels = Labels::decode(stored.labels.as_bytes())
        .ok_or_else(|| corrupt(format!("labels of series {id}")))?;
    Ok(SeriesMeta {
        id: SeriesId(id),
        labels,
        kind: stored.kind,
        help: stored.help,
    })
}

/// A `nodes` or `node_sequences` entry: the node name and its JSON value.
fn decode_node<T: serde::de::DeserializeOwned>(
    key: &[u8],
    value: &[u8],
) -> Result<(String, T), StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "node",
        detail,
    };
    let name = String::from_utf8(key.to_vec()).map_err(|e| corrupt(e.to_string()))?;
    let value = serde_json::from_slice(value).map_err(|e| corrupt(format!("{name:?}: {e}")))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryKv;

    const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % DAY_MS; // midnight UTC

    fn config() -> StorageConfig {
        StorageConfig {
            max_chunk_samples: 8,
            ..StorageConfig::default()
        }
    }

    fn open(kv: &MemoryKv) -> Tsdb {
        Tsdb::open(Box::new(kv.clone()), config()).unwrap().tsdb
    }

    fn samples(series: u64, range: std::ops::Range<i64>, step: i64) -> Vec<Sample> {
        range
            .map(|i| Sample {
                series: SeriesId(series),
                timestamp_ms: T0 + i * step,
                value: i as f64,
            })
            .collect()
    }

    #[test]
    fn reads_back_across_head_outbox_and_chunks_and_survives_reopen() {
        let kv = MemoryKv::default();
        let db = open(&kv);
        for s in samples(1, 0..20, 10_000).chunks(3) {
            db.append(None, s).unwrap();
        }
        let expected: Vec<(i64, f64)> = (0..20).map(|i| (T0 + i * 10_000, i as f64)).collect();
        assert_eq!(
            db.read_raw(SeriesId(1), T0, T0 + DAY_MS).unwrap(),
            expected,
            "head + outbox"
        );
        db.checkpoint(false).unwrap();
        assert_eq!(
            db.read_raw(SeriesId(1), T0, T0 + DAY_MS).unwrap(),
            expected,
            "after checkpoint"
        );
        db.append(None, &samples(1, 20..25, 10_000)).unwrap();
        drop(db); // crash: nothing sealed since the checkpoint, the WAL has samples 20..25

        let db = open(&kv);
        let all: Vec<(i64, f64)> = (0..25).map(|i| (T0 + i * 10_000, i as f64)).collect();
        assert_eq!(
            db.read_raw(SeriesId(1), T0, T0 + DAY_MS).unwrap(),
            all,
            "after recovery"
        );
        assert_eq!(db.latest(SeriesId(1)), Some((T0 + 240_000, 24.0)));
        assert_eq!(
            db.read_raw(SeriesId(1), T0 + 50_000, T0 + 70_000).unwrap(),
            all[5..=7].to_vec()
        );
    }

    #[test]
    fn an_unreadable_node_record_does_not_stop_the_start() {
        let kv = MemoryKv::default();
        let mut batch = KvBatch::default();
        batch.put(Table::Nodes, b"broken".to_vec(), b"{not json".to_vec());
        batch.put(Table::NodeSequences, b"broken".to_vec(), b"\xff".to_vec());
        let good = br#"{"spool_epoch":7,"last_durable_seq":42,"agent_version":"0.1.0","host":{"hostname":"nas","os_name":"","os_version":"","kernel_version":"","arch":"","cpu_count":4,"memory_total_bytes":0,"boot_time":0},"registered_at_ms":1,"last_batch_at_ms":2}"#;
        batch.put(Table::Nodes, b"nas".to_vec(), good.to_vec());
        kv.write(batch, true).unwrap();
        let recovered = Tsdb::open(Box::new(kv.clone()), config()).unwrap();
        let names: Vec<&str> = recovered.nodes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["nas"]);
        assert!(
            kv.get(Table::Nodes, b"broken").unwrap().is_some(),
            "kept for a person to look at"
        );
    }

    #[test]
    fn node_records_of_the_older_single_table_layout_still_load() {
        let kv = MemoryKv::default();
        let mut batch = KvBatch::default();
        let old = br#"{"spool_epoch":7,"last_durable_seq":42,"agent_version":"0.1.0","host":{"hostname":"nas","os_name":"","os_version":"","kernel_version":"","arch":"","cpu_count":4,"memory_total_bytes":0,"boot_time":0},"registered_at_ms":1,"last_batch_at_ms":2}"#;
        batch.put(Table::Nodes, b"nas".to_vec(), old.to_vec());
        kv.write(batch, true).unwrap();
        let recovered = Tsdb::open(Box::new(kv.clone()), config()).unwrap();
        let (name, record) = &recovered.nodes[0];
        assert_eq!(name, "nas");
        assert_eq!((record.spool_epoch, record.last_durable_seq), (7, 42));
        assert_eq!((record.durable_from, record.lost_batches), (0, 0));
        assert_eq!(record.host.cpu_count, 4);

        // A batch then writes only the sequence state, which wins at the next load.
        let mut sequence = record.sequence();
        sequence.last_durable_seq = 43;
        recovered
            .tsdb
            .append(Some(("nas", &sequence)), &[])
            .unwrap();
        drop(recovered);
        let recovered = Tsdb::open(Box::new(kv.clone()), config()).unwrap();
        assert_eq!(recovered.nodes[0].1.last_durable_seq, 43);
        assert_eq!(recovered.nodes[0].1.host.hostname, "nas");
    }

    #[test]
    fn late_samples_inside_the_window_are_kept_older_ones_refused() {
        let kv = MemoryKv::default();
        let db = open(&kv);
        db.append(None, &samples(1, 0..400, 10_000)).unwrap(); // ~66 min
        let late = [
            Sample {
                series: SeriesId(1),
                timestamp_ms: T0 + 3_000_005,
                value: -1.0,
            },
            Sample {
                series: SeriesId(1),
                timestamp_ms: T0 + 5,
                value: -2.0,
            },
        ];
        let outcome = db.append(None, &late).unwrap();
        assert_eq!(
            outcome,
            AppendOutcome {
                accepted: 1,
                too_old: 1
            }
        );
        let check = |db: &Tsdb| {
            let got = db
                .read_raw(SeriesId(1), T0 + 3_000_000, T0 + 3_010_000)
                .unwrap();
            assert_eq!(
                got,
                vec![
                    (T0 + 3_000_000, 300.0),
                    (T0 + 3_000_005, -1.0),
                    (T0 + 3_010_000, 301.0)
                ]
            );
        };
        check(&db);
        db.checkpoint(false).unwrap();
        check(&db);
        drop(db);
        check(&open(&kv));
    }

    #[test]
    fn rollups_follow_the_data_including_late_samples() {
        let kv = MemoryKv::default();
        let db = open(&kv);
        // Two minutes of a counter at 10 s: 0, 10, 20, ...
        let counter: Vec<Sample> = (0..12)
            .map(|i| Sample {
                series: SeriesId(3),
                timestamp_ms: T0 + i * 10_000,
                value: (i * 10) as f64,
            })
            .collect();
        db.append(None, &counter).unwrap();
        let minute = db
            .read_rollup(SeriesId(3), Resolution::OneMinute, T0, T0 + 60_000)
            .unwrap();
        assert_eq!(minute.len(), 2);
        assert_eq!(
            (minute[0].1.count, minute[0].1.sum, minute[0].1.last),
            (6, 150.0, 50.0)
        );
        assert_eq!(
            minute[1].1.increase, 60.0,
            "the step into the bucket counts"
        );
        // A late sample into the finished first minute is recomputed at checkpoint.
        db.append(
            None,
            &[Sample {
                series: SeriesId(3),
                timestamp_ms: T0 + 55_000,
                value: 1000.0,
            }],
        )
        .unwrap();
        // Another sample closes the second minute, then a checkpoint persists everything.
        db.append(
            None,
            &[Sample {
                series: SeriesId(3),
                timestamp_ms: T0 + 120_000,
                value: 120.0,
            }],
        )
        .unwrap();
        db.checkpoint(false).unwrap();
        let minute = db
            .read_rollup(SeriesId(3), Resolution::OneMinute, T0, T0)
            .unwrap();
        assert_eq!((minute[0].1.count, minute[0].1.max), (7, 1000.0));
        drop(db);
        let db = open(&kv);
        let minutes = db
            .read_rollup(SeriesId(3), Resolution::OneMinute, T0, T0 + 120_000)
            .unwrap();
        assert_eq!(
            minutes.iter().map(|m| m.1.count).collect::<Vec<_>>(),
            vec![7, 6, 1]
        );
    }

    #[test]
    fn chunks_never_cross_midnight_and_retention_drops_whole_days() {
        let kv = MemoryKv::default();
        let db = open(&kv);
        let around_midnight: Vec<Sample> = (0..6)
            .map(|i| Sample {
                series: SeriesId(9),
                timestamp_ms: T0 + DAY_MS - 30_000 + i * 10_000,
                value: 1.0,
            })
            .collect();
        db.append(None, &around_midnight).unwrap();
        db.compact().unwrap();
        assert_eq!(
            db.read_raw(SeriesId(9), T0, T0 + 2 * DAY_MS).unwrap().len(),
            6
        );
        let keep_one_day = StorageConfig {
            retention: RetentionConfig {
                raw: Duration::from_secs(86_400),
                ..RetentionConfig::default()
            },
            ..config()
        };
        drop(db);
        let db = Tsdb::open(Box::new(kv.clone()), keep_one_day).unwrap().tsdb;
        db.enforce_retention(T0 + 2 * DAY_MS + 1).unwrap();
        let left = db.read_raw(SeriesId(9), T0, T0 + 2 * DAY_MS).unwrap();
        assert_eq!(
            left.len(),
            3,
            "the first day's samples are gone, the second day's stay: {left:?}"
        );
    }

    #[test]
    fn a_repeated_timestamp_keeps_its_newest_value_everywhere() {
        let kv = MemoryKv::default();
        let db = open(&kv);
        db.append(None, &samples(1, 0..20, 10_000)).unwrap(); // seals a chunk of 8 at 8 and 16
        let again = |v: f64| Sample {
            series: SeriesId(1),
            timestamp_ms: T0 + 30_000,
            value: v,
        };
        db.append(None, &[again(-1.0)]).unwrap();
        db.append(None, &[again(-2.0)]).unwrap();
        let at = |db: &Tsdb| db.read_raw(SeriesId(1), T0 + 30_000, T0 + 30_000).unwrap();
        assert_eq!(at(&db), vec![(T0 + 30_000, -2.0)], "in the head");
        db.checkpoint(false).unwrap();
        assert_eq!(at(&db), vec![(T0 + 30_000, -2.0)], "after a checkpoint");
        db.append(None, &[again(-3.0)]).unwrap();
        db.compact().unwrap();
        assert_eq!(at(&db), vec![(T0 + 30_000, -3.0)], "after compaction");
        drop(db);
        assert_eq!(at(&open(&kv)), vec![(T0 + 30_000, -3.0)], "after reopening");
    }

    #[test]
    fn wal_records_round_trip() {
        let s = vec![
            Sample {
                series: SeriesId(5),
                timestamp_ms: -3,
                value: 1.5,
            },
            Sample {
                series: SeriesId(1 << 40),
                timestamp_ms: i64::MAX,
                value: f64::MIN,
            },
        ];
        assert_eq!(decode_wal(&encode_wal(&s)), Some(s));
        assert_eq!(decode_wal(&[5, 1]), None);
    }
}

//! The time-series engine: WAL, in-memory head, compressed chunks, rollups, retention.
//!
//! # Write path
//! An append applies a batch's samples to the head in the same pass that leaves out those too
//! far behind their series (one lookup of each series' head), then writes one record (all the
//! accepted samples and the node's new sequence state) to the write-ahead log
//! ([`Log`](super::Log), segment files beside the tables) and notes the node's sequence for the
//! next checkpoint; then it syncs the log, sharing the sync with the appends beside it. Only
//! after that sync does ingest ack, so an acked sample is on disk. A failed log write, like a
//! failed sync, leaves the head ahead of the disk: the engine refuses writes until a restart's
//! replay brings them level.
//!
//! # Head
//! Per series, in memory: the open chunk (raw samples in time order), late samples, and the open
//! 1 h rollup bucket (1 min and 5 min buckets are computed from raw while raw is kept, see
//! `raw_rollups`). A chunk is sealed (encoded) when it holds
//! `max_chunk_samples`, spans `max_chunk_span`, or would cross midnight UTC; sealed chunks and
//! finished rollup buckets wait in the shard's outbox for the next checkpoint (the buckets
//! encoded compactly, since a back-fill finishes many per series).
//!
//! # Checkpoint
//! Periodically, one atomic, synced batch writes every outbox chunk and rollup, a snapshot of
//! each changed series head and the checkpoint position; then the log segments it covers are
//! deleted. Recovery loads the head snapshots and replays the log after the checkpoint
//! position (samples into the head, sequence states into the node table), so open chunks are
//! rebuilt exactly from what was durable before each ack.
//!
//! # Invariants
//! - A log record is deleted only after the synced batch that persists the state it produced:
//!   its samples (in chunks or head snapshots) and its node sequence (noted by the append
//!   before the cut, written by that batch).
//! - A node's sequence reaches the node table only after its log record is durable: appends
//!   note it in memory, and a checkpoint syncs the log through its cut before its batch. So
//!   after a crash the table never says a batch is stored that the disk does not hold, and
//!   the log holds every record a checkpoint covers (remote write out reads them there).
//! - Every change of a node's sequence state goes through the log (appends, registrations,
//!   forgetting), so replaying the records after the checkpoint leaves each node's newest.
//! - A log record is synced only after the series definitions written before its append are
//!   (`sync_definitions`): a sample on disk always has its series.
//! - Appends hold `append_gate` (shared) from their head update through their log write; a
//!   checkpoint takes it exclusively to cut, so its snapshot covers exactly log ids ≤ its position.
//!   The log sync is outside the gate, so a cut waits for no one's sync.
//! - Reads hold `flush_gate` (shared); a checkpoint holds it exclusively from draining outboxes
//!   until their contents are written, so a read sees every sample in the head or on disk.
//! - A checkpoint keeps the WAL records a durable WAL reader has not finished
//!   (`wal_readers.rs`); recovery replays only those after the checkpoint position.
//! - Lock order: `checkpointing` → `flush_gate` → `append_gate` → `deleted` → one shard at a
//!   time (or `sequences`); an append takes `syncing_definitions` before `append_gate`, and the log's
//!   writer lock inside it; the log's sync lock (then its writer lock) is taken holding none of
//!   the engine's locks but `checkpointing`, never the other way.
//! - A checkpoint that fails after draining the head marks the engine failed: writes are refused
//!   until a restart, which recovers from the WAL the failed checkpoint did not delete.
//! - Chunks never cross a UTC day: retention deletes whole day partitions with one range delete.
//! - A sample older than its series' newest by more than the out-of-order window is refused and
//!   counted, never silently dropped.
//! - A staleness marker ([`STALE_MARKER`](crate::storage::STALE_MARKER)) is kept in raw
//!   chunks only, and only when newer than its series' newest time: rollups, counter steps,
//!   [`Tsdb::latest`] and [`Tsdb::read_raw`] never see one; PromQL reads it through
//!   [`Tsdb::read_raw_with_markers`]. The open 1 h bucket notes when the first one came
//!   (its edges, see `rollup::Edges`), the one fact of it instant selectors need; 5 min buckets
//!   computed from raw find it there.
//! - A bucket's edges are known or absent, never guessed: a bucket a late sample changed reads
//!   without them until the checkpoint recomputes it, edges included, from raw samples; until
//!   then instant selectors read its series raw.
//! - A 1 min or 5 min bucket is read from one place: stored before the `raw_rollups` mark's
//!   day, computed from raw from it on. Raw days are deleted only after the mark has passed them.
//! - A key or value that cannot be read is a [`StoreError::Corrupt`] naming its table, never a
//!   panic. Recovery fails on one, except for node records and the stale-rollup list, which are
//!   logged and skipped (an agent's next registration rewrites its node; a skipped bucket keeps
//!   its older aggregate).
//!
//! # Keys
//! - `Chunks`: day (u32) ‖ series (u64) ‖ first timestamp (i64, sign-flipped) ‖ write order
//!   (checkpoint WAL position u64 ‖ index u32): reads merge overlapping chunks in write order.
//!   Keys written before write orders were kept end in a random u32 instead and read as (0, 0).
//! - `Rollup*`: day (u32) ‖ series (u64) ‖ block start (i64, sign-flipped) → a columnar block
//!   of buckets (see `rollup::block`); checkpoints merge new buckets into the stored block
//! - `Wal` (stores before the log had its own files; emptied into the log at start): write id
//!   (u64); `Head`, `Series`: series (u64); all big-endian.
//! - `Nodes`, `NodeSequences`: node name (UTF-8); `Families`: metric family name (UTF-8);
//!   `Meta`: `checkpoint`, `stale_rollups`, `deleted_series`, `raw_rollups` (and
//!   `minute_rollups`, read once from older stores).
//!
//! Values of `Series`, `Nodes`, `NodeSequences`, `Families` and `Meta` are the versioned
//! records of `storage::records`; log records, `Wal`, `Head`, `Chunks` and `Rollup*` values
//! are binary codecs.
//!
//! # Files
//! `keys` (key layouts, checked parsing), `wal` (log record codec), `head` (shards, applying
//! samples, head snapshot codec), `pending_rollups` (finished buckets waiting, encoded),
//! `raw_rollups` (1 min and 5 min buckets from raw, stored ahead of raw retention),
//! `recovery` (open), `write` (appends, series and node
//! records), `families` (declared family metadata), `read` (chunks merged with the head),
//! `checkpoint`, `retention` (retention, disk budget, series deletion), `wal_readers` (durable
//! readers of the WAL, remote write's outbox), `config`.

mod checkpoint;
mod config;
#[cfg(test)]
mod corruption_tests;
mod families;
mod head;
mod keys;
mod pending_rollups;
mod raw_rollups;
mod read;
mod recovery;
mod retention;
#[cfg(test)]
mod testing;
mod wal;
mod wal_readers;
mod write;

pub use checkpoint::CheckpointReport;
pub use config::{RetentionConfig, StorageConfig};
pub use wal_readers::WalRecord;

use super::kv::{Kv, KvMemory, Table};
use super::{FamilyMeta, NodeRecord, NodeSequence, SeriesId, SeriesMeta, StoreError};
use head::{SeriesHead, Shard};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

const SHARDS: usize = 16;

/// What happened to an append's samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    pub accepted: usize,
    /// Refused: older than the out-of-order window allows.
    pub too_old: usize,
}

/// The log record an [`Tsdb::append_unsynced`] wrote, to wait on before acknowledging its
/// samples. 0 when it wrote none (nothing to wait for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logged(u64);

/// Engine figures for the collector's own metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct TsdbStats {
    pub head_series: usize,
    pub head_samples: usize,
    /// Bytes the head holds: per series its state, open chunk (encoded) and late samples,
    /// and the sealed chunks and finished rollup buckets waiting for the next checkpoint.
    pub head_bytes: usize,
    /// What the key-value store's memory budget holds now.
    pub kv_memory: KvMemory,
    pub chunks_written: u64,
    pub checkpoints: u64,
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
    /// Each durable WAL reader's cursor: checkpoints keep the records after the lowest.
    wal_readers: Mutex<HashMap<String, u64>>,
    wal_bytes_written: AtomicU64,
    /// Batches of series definitions written, and how many of them a sync has made durable:
    /// an append syncs the store first when they differ (see `write.rs`).
    definitions_written: AtomicU64,
    definitions_synced: AtomicU64,
    syncing_definitions: Mutex<()>,
    /// Each node's sequence state (`None`: forgotten) logged since the last checkpoint's cut,
    /// newest per node: that checkpoint's synced batch writes it to the node table, after a
    /// sync of the log covers its record.
    sequences: Mutex<HashMap<Box<str>, Option<NodeSequence>>>,
    /// An async waiter has a log sync queued or running on the blocking pool; the others wait
    /// on `log_synced` for it to end (see [`Tsdb::durable`]).
    log_sync_queued: AtomicBool,
    log_synced: tokio::sync::Notify,
    /// When the last of those syncs started: the next waits out [`LOG_SYNC_GAP`] from then.
    log_sync_started: Mutex<Option<tokio::time::Instant>>,
    append_gate: RwLock<()>,
    flush_gate: RwLock<()>,
    /// Serialises checkpoints (the periodic task, shutdown, admin flush).
    checkpointing: Mutex<()>,
    chunks_written: AtomicU64,
    checkpoints: AtomicU64,
    /// Open-chunk bytes the last checkpoint copied while appends waited: the next one sizes
    /// its buffer from it rather than growing it, copy by copy, in that wait.
    last_cut_bytes: AtomicUsize,
    /// Set when a checkpoint failed after taking state out of the head: from then on the head
    /// no longer matches the WAL, so writes and checkpoints are refused until a restart
    /// recovers from the WAL, which that failed checkpoint did not delete.
    failed: AtomicBool,
    /// Series deleted for good (see [`Tsdb::delete_series`]); empty in the common case.
    deleted: RwLock<HashSet<SeriesId>>,
    /// Declared metric family metadata (see `families.rs`).
    families: RwLock<HashMap<String, FamilyMeta>>,
    /// The first day whose 1 min and 5 min buckets reads compute from raw samples; those of
    /// the days before it are stored (see `raw_rollups.rs`).
    raw_rollups_from: AtomicU32,
    /// Serialises storing 1 min and 5 min buckets ahead of raw retention.
    storing_raw_rollups: Mutex<()>,
}

impl Tsdb {
    /// The key-value store under the engine, for the alerting tables.
    pub fn kv(&self) -> &dyn Kv {
        self.kv.as_ref()
    }

    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    fn shard(&self, series: SeriesId) -> MutexGuard<'_, Shard> {
        self.shards[series.shard(SHARDS)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes on disk per table; `wal`'s are the log's files.
    pub fn table_sizes(&self) -> Vec<(Table, u64)> {
        Table::ALL
            .iter()
            .map(|&t| match t {
                Table::Wal => (t, self.kv.disk_size(t) + self.kv.log().disk_size()),
                _ => (t, self.kv.disk_size(t)),
            })
            .collect()
    }

    /// Key and value bytes per table, without the backend's file overhead; `wal`'s are the
    /// log's records, frames included.
    pub fn logical_sizes(&self) -> Result<Vec<(Table, u64)>, StoreError> {
        Table::ALL
            .iter()
            .map(|&t| match t {
                Table::Wal => Ok((t, self.kv.log().bytes_after(0)?)),
                _ => Ok((t, self.kv.logical_size(t)?)),
            })
            .collect()
    }

    pub fn disk_size(&self) -> u64 {
        self.table_sizes().iter().map(|(_, bytes)| bytes).sum()
    }

    /// Seals and persists everything, then compacts every table (benchmarks, before backups).
    pub fn compact(&self) -> Result<(), StoreError> {
        self.checkpoint(true)?;
        self.kv.flush()?;
        for table in Table::ALL {
            self.kv.compact_fully(table)?;
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
            kv_memory: self.kv.memory(),
            ..TsdbStats::default()
        };
        let entry =
            std::mem::size_of::<(SeriesId, Box<SeriesHead>)>() + std::mem::size_of::<SeriesHead>();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            stats.head_series += shard.heads.len();
            stats.head_samples += shard
                .heads
                .values()
                .map(|h| h.open.len() + h.late.len())
                .sum::<usize>();
            stats.head_bytes += shard.heads.len() * entry
                + shard
                    .rollups
                    .values()
                    .map(|r| r.heap_bytes())
                    .sum::<usize>()
                + shard
                    .heads
                    .values()
                    .map(|h| h.open.heap_bytes() + h.late.capacity() * 16)
                    .sum::<usize>()
                + shard
                    .chunks
                    .iter()
                    .map(|c| c.bytes.capacity())
                    .sum::<usize>();
        }
        stats
    }
}

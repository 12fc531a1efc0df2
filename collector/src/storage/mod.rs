//! Durable storage: a time-series engine ([`Tsdb`]) on a key-value layer ([`Kv`]).
//!
//! Architecture invariant: only `rocks.rs` imports `rocksdb`. The engine, ingest and queries see
//! the [`Kv`] trait; `memory.rs` implements it in memory for unit tests.
//!
//! Layering:
//! - `kv`: tables, atomic batches, ordered scans. No time-series knowledge.
//! - `log`: the write-ahead log beside the tables (numbered records, group-committed);
//!   `segment_log` keeps it in files beside RocksDB's, `memory` in memory for unit tests.
//! - `chunk`: the sample codec (pure).
//! - `rollup`: 1 min / 5 min / 1 h aggregates (pure).
//! - `records`: the versioned records stored for series, nodes and engine bookkeeping, apart
//!   from the in-memory types below.
//! - `tsdb`: WAL, head, checkpoints, recovery, reads, retention.

mod chunk;
mod kv;
mod log;
mod memory;
mod open_chunk;
mod records;
mod rocks;
mod rollup;
mod segment_log;
mod tsdb;

pub use chunk::{ChunkDecodeError, decode_chunk, encode_chunk};
pub use kv::{Kv, KvBatch, KvMemory, Table};
pub use log::Log;
pub use memory::MemoryKv;
pub use rocks::RocksKv;
pub use rollup::{Aggregate, Resolution};
pub use tsdb::{
    AppendOutcome, CheckpointReport, Logged, Recovered, RetentionConfig, StorageConfig, Tsdb,
    TsdbStats, WalRecord,
};

use hcmon_common::Labels;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Prometheus' staleness marker: a NaN with this exact bit pattern, written by a sender when a
/// series ends (its target went away), so queries stop showing it at once rather than after the
/// 5-minute lookback. Stored in raw chunks like a sample; never part of a rollup, the newest
/// value or what observers see.
pub const STALE_MARKER: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// Whether `value` is a staleness marker (compared by bits: any other NaN is not one).
pub fn is_stale_marker(value: f64) -> bool {
    value.to_bits() == STALE_MARKER.to_bits()
}

/// Collector-wide id of a series, allocated once and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesId(pub u64);

impl SeriesId {
    /// Which of `shards` shards holds this series' in-memory state. Ids are sequential; a
    /// multiplicative hash spreads neighbours over shards (at most 16 shards: the top 4 bits).
    pub fn shard(self, shards: usize) -> usize {
        (self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % shards
    }
}

/// Whether a series goes up and down or only up (with resets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Gauge,
    Counter,
}

impl MetricKind {
    /// The Prometheus `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        }
    }
}

/// The type a sender declared for a metric family (Prometheus' metadata types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FamilyType {
    Unknown,
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
}

impl FamilyType {
    /// The word `/api/v1/metadata` and the text format use.
    pub fn as_str(self) -> &'static str {
        match self {
            FamilyType::Unknown => "unknown",
            FamilyType::Counter => "counter",
            FamilyType::Gauge => "gauge",
            FamilyType::Histogram => "histogram",
            FamilyType::GaugeHistogram => "gaugehistogram",
            FamilyType::Summary => "summary",
            FamilyType::Info => "info",
            FamilyType::StateSet => "stateset",
        }
    }

    /// The remote-write enum value (the same numbers in 1.0's `MetricMetadata.type` and 2.0's
    /// `Metadata.type`); an unknown number is `Unknown`.
    pub fn from_wire(value: u64) -> Self {
        match value {
            1 => FamilyType::Counter,
            2 => FamilyType::Gauge,
            3 => FamilyType::Histogram,
            4 => FamilyType::GaugeHistogram,
            5 => FamilyType::Summary,
            6 => FamilyType::Info,
            7 => FamilyType::StateSet,
            _ => FamilyType::Unknown,
        }
    }

    /// Suffixes of the series a family of this type is sent as, besides its own name: a
    /// histogram's `_bucket`, `_sum` and `_count`, a summary's `_sum` and `_count`.
    pub fn part_suffixes(self) -> &'static [&'static str] {
        match self {
            FamilyType::Histogram | FamilyType::GaugeHistogram => &["_bucket", "_sum", "_count"],
            FamilyType::Summary => &["_sum", "_count"],
            _ => &[],
        }
    }

    /// How a series named `series` of a family of this type behaves: cumulative (a counter,
    /// a histogram's buckets, sum and count, a summary's sum and count) or not. `None` when
    /// the type does not say (unknown).
    pub fn series_kind(self, series: &str) -> Option<MetricKind> {
        let part = self.part_suffixes().iter().any(|s| series.ends_with(s));
        match self {
            FamilyType::Counter => Some(MetricKind::Counter),
            FamilyType::Histogram | FamilyType::Summary if part => Some(MetricKind::Counter),
            FamilyType::Unknown => None,
            _ => Some(MetricKind::Gauge),
        }
    }
}

/// What a sender declared about a metric family: type, help and unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyMeta {
    pub kind: FamilyType,
    pub help: String,
    pub unit: String,
}

/// Everything known about a series besides its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesMeta {
    pub id: SeriesId,
    pub labels: Labels,
    pub kind: MetricKind,
    pub help: String,
}

/// One sample of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub series: SeriesId,
    pub timestamp_ms: i64,
    pub value: f64,
}

/// What the collector remembers about an agent's node between restarts. Stored in two parts:
/// the whole record at registration (`nodes`) and its [`NodeSequence`] with every batch
/// (`node_sequences`, which wins at load), so a batch never rewrites the host facts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeRecord {
    /// Spool epoch of the agent last seen for this node.
    pub spool_epoch: u64,
    /// Highest sequence number of that epoch that is durable here.
    pub last_durable_seq: u64,
    /// Every sequence number from this one up to `last_durable_seq` is durable here; those below
    /// it were declared skipped or precede the epoch's registration. 0 in records written before
    /// it was kept: everything at or below `last_durable_seq` counts as held.
    pub durable_from: u64,
    /// Sequence numbers this node's agents declared skipped (over all epochs): batches lost
    /// before they reached the collector.
    pub lost_batches: u64,
    pub agent_version: String,
    pub host: HostInfo,
    /// Unix milliseconds of the last registration.
    pub registered_at_ms: i64,
    /// Unix milliseconds of the last durable batch.
    pub last_batch_at_ms: i64,
}

/// The part of a [`NodeRecord`] that every batch changes, written atomically with the batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeSequence {
    pub spool_epoch: u64,
    pub last_durable_seq: u64,
    pub durable_from: u64,
    pub lost_batches: u64,
    pub last_batch_at_ms: i64,
}

impl NodeRecord {
    pub fn sequence(&self) -> NodeSequence {
        NodeSequence {
            spool_epoch: self.spool_epoch,
            last_durable_seq: self.last_durable_seq,
            durable_from: self.durable_from,
            lost_batches: self.lost_batches,
            last_batch_at_ms: self.last_batch_at_ms,
        }
    }

    pub fn set_sequence(&mut self, sequence: NodeSequence) {
        self.spool_epoch = sequence.spool_epoch;
        self.last_durable_seq = sequence.last_durable_seq;
        self.durable_from = sequence.durable_from;
        self.lost_batches = sequence.lost_batches;
        self.last_batch_at_ms = sequence.last_batch_at_ms;
    }
}

/// Host facts reported at registration. Serialised for the API; stored as
/// `records::NodeRecordV1`'s host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub hostname: String,
    pub os_name: String,
    pub os_version: String,
    pub kernel_version: String,
    pub arch: String,
    pub cpu_count: u32,
    pub memory_total_bytes: u64,
    pub boot_time: u64,
}

/// An error from the storage backend, kept opaque so callers need not know the backend.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// Storage failures. They are the collector's fault, never the client's.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}: {source}")]
    Open { path: PathBuf, source: BackendError },
    #[error("store write failed: {0}")]
    Write(BackendError),
    #[error("store read failed: {0}")]
    Read(BackendError),
    /// A key or value that cannot be read: `what` says which (a key, a record kind).
    #[error("corrupt {what} in the {} table: {detail}", .table.name())]
    Corrupt {
        table: Table,
        what: &'static str,
        detail: String,
    },
    #[error(
        "storage refuses writes after a failed checkpoint; restart the collector to recover from its WAL"
    )]
    Failed,
    /// A write-ahead log segment whose frames cannot be read, other than a torn last frame.
    #[error("corrupt write-ahead log {} at byte {offset}: {detail}", .path.display())]
    LogCorrupt {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    #[error(
        "the write-ahead log refuses writes after a failed sync; restart the collector to recover what reached the disk"
    )]
    LogPoisoned,
}

impl StoreError {
    /// A key or value of `table` that cannot be read.
    pub fn corrupt(table: Table, what: &'static str, detail: impl Into<String>) -> Self {
        StoreError::Corrupt {
            table,
            what,
            detail: detail.into(),
        }
    }
}

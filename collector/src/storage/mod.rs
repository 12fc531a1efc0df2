//! Durable storage behind a trait.
//!
//! Architecture invariant: only `rocks.rs` imports `rocksdb`. Ingest, queries and (later) the
//! engines see the [`Store`] trait; `memory.rs` backs unit tests with the same contract.
//!
//! Contract every implementation keeps:
//! - [`Store::write`] is atomic (all of a batch or nothing) and durable when it returns: after a
//!   crash, everything written before is there, so an ack may follow it.
//! - Samples of a series are returned in timestamp order; writing the same (series, timestamp)
//!   twice keeps the last value, never two samples.

mod memory;
mod rocks;

pub use memory::MemoryStore;
pub use rocks::RocksStore;

use hcmon_common::Labels;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Collector-wide id of a series, allocated once and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesId(pub u64);

/// Whether a series goes up and down or only up (with resets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// What the collector remembers about an agent's node between restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Spool epoch of the agent last seen for this node.
    pub spool_epoch: u64,
    /// Highest sequence number of that epoch that is durable here.
    pub last_durable_seq: u64,
    pub agent_version: String,
    pub host: HostInfo,
    /// Unix milliseconds of the last registration.
    pub registered_at_ms: i64,
    /// Unix milliseconds of the last durable batch.
    pub last_batch_at_ms: i64,
}

/// Host facts reported at registration.
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

/// One atomic, durable write: a node's batch with the series it defines and its new state.
#[derive(Debug)]
pub struct IngestWrite<'a> {
    pub node: &'a str,
    pub record: &'a NodeRecord,
    pub new_series: &'a [SeriesMeta],
    pub samples: &'a [Sample],
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
    #[error("corrupt {what} record in the store: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

/// The collector's durable state.
pub trait Store: Send + Sync + 'static {
    /// Writes a batch atomically and durably (see the module contract).
    fn write(&self, write: IngestWrite<'_>) -> Result<(), StoreError>;
    /// Records a node's registration without samples, durably.
    fn put_node(&self, node: &str, record: &NodeRecord) -> Result<(), StoreError>;
    /// Every series ever written, for rebuilding the in-memory catalog at start-up.
    fn load_series(&self) -> Result<Vec<SeriesMeta>, StoreError>;
    /// Every node's record, for rebuilding sequence state at start-up.
    fn load_nodes(&self) -> Result<Vec<(String, NodeRecord)>, StoreError>;
    /// Samples of a series with `start_ms <= timestamp <= end_ms`, in timestamp order.
    fn read_range(
        &self,
        series: SeriesId,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError>;
    /// The newest sample of a series.
    fn last_sample(&self, series: SeriesId) -> Result<Option<(i64, f64)>, StoreError>;
    /// Makes sure everything written is on disk and releases resources, at shutdown.
    fn flush(&self) -> Result<(), StoreError>;
}

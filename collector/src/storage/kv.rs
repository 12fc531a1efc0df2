//! The key-value layer under the time-series engine: named tables, atomic multi-table batches,
//! ordered range scans. Keys compare as bytes.

use super::StoreError;
use super::log::Log;

/// A table (a RocksDB column family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// series id → labels, kind, help
    Series,
    /// node name → node record (host facts; sequence state as of the last registration)
    Nodes,
    /// node name → the node's spool sequence state, rewritten with every batch
    NodeSequences,
    /// write id → one ingest batch's samples: stores before the write-ahead log moved to its
    /// own files (`log`), whose records the engine brings over into it at its first start
    Wal,
    /// series id → snapshot of the series' open chunk and rollup accumulators
    Head,
    /// day ‖ series id ‖ first timestamp ‖ write order → encoded chunk
    Chunks,
    /// day ‖ series id ‖ block start → columnar block of buckets, one table per resolution
    Rollup1m,
    Rollup5m,
    Rollup1h,
    /// engine bookkeeping: checkpoint position, rollup buckets to recompute, deleted series
    Meta,
    /// alerting: alerts, silences, incidents and their history, the notification outbox
    Alerts,
    /// record number (big-endian) → hash-chained audit record (see `audit/`)
    Audit,
    /// API tokens (hashed) by id (see `access/`)
    Tokens,
    /// the collector's certificate authority: enrollment tokens (hashed), issued agent
    /// certificates and revocations (see `pki/`)
    Pki,
    /// metric family name → its type, help and unit, as remote-write senders declare them
    Families,
    /// annotation id (time-ordered) → a marked moment or span (see `before_after/`)
    Annotations,
    /// experiment id (time-ordered) → a named experiment and its criterion (see `before_after/`)
    Experiments,
    /// SLO name → an SLO created through the API (see `slo/store.rs`)
    Slos,
    /// report kind ‖ window start (big-endian) → a scheduled report (see `report/store.rs`)
    Reports,
}

impl Table {
    pub const ALL: [Table; 19] = [
        Table::Series,
        Table::Nodes,
        Table::NodeSequences,
        Table::Wal,
        Table::Head,
        Table::Chunks,
        Table::Rollup1m,
        Table::Rollup5m,
        Table::Rollup1h,
        Table::Meta,
        Table::Alerts,
        Table::Audit,
        Table::Tokens,
        Table::Pki,
        Table::Families,
        Table::Annotations,
        Table::Experiments,
        Table::Slos,
        Table::Reports,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Series => "series",
            Table::Nodes => "nodes",
            Table::NodeSequences => "node_sequences",
            Table::Wal => "wal",
            Table::Head => "head",
            Table::Chunks => "chunks",
            Table::Rollup1m => "rollup_1m",
            Table::Rollup5m => "rollup_5m",
            Table::Rollup1h => "rollup_1h",
            Table::Meta => "meta",
            Table::Alerts => "alerts",
            Table::Audit => "audit",
            Table::Tokens => "tokens",
            Table::Pki => "pki",
            Table::Families => "families",
            Table::Annotations => "annotations",
            Table::Experiments => "experiments",
            Table::Slos => "slos",
            Table::Reports => "reports",
        }
    }
}

/// One operation of a batch.
#[derive(Debug, Clone)]
pub enum KvOp {
    Put(Table, Vec<u8>, Vec<u8>),
    Delete(Table, Vec<u8>),
    /// Deletes keys in `[start, end)`.
    DeleteRange(Table, Vec<u8>, Vec<u8>),
}

/// Operations applied atomically by [`Kv::write`].
#[derive(Debug, Default, Clone)]
pub struct KvBatch {
    pub ops: Vec<KvOp>,
}

impl KvBatch {
    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(KvOp::Put(table, key.into(), value.into()));
    }

    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        self.ops.push(KvOp::Delete(table, key.into()));
    }

    pub fn delete_range(
        &mut self,
        table: Table,
        start: impl Into<Vec<u8>>,
        end: impl Into<Vec<u8>>,
    ) {
        self.ops
            .push(KvOp::DeleteRange(table, start.into(), end.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Key and value bytes of its operations.
    pub fn bytes(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                KvOp::Put(_, key, value) | KvOp::DeleteRange(_, key, value) => {
                    key.len() + value.len()
                }
                KvOp::Delete(_, key) => key.len(),
            })
            .sum()
    }
}

/// Visitor for [`Kv::scan`]: return `false` to stop.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> bool + 'a;

/// What a backend's memory budget holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvMemory {
    /// The block cache's use, the write buffers' charge included when they are charged to it.
    pub cache: u64,
    /// Write buffers (memtables).
    pub memtables: u64,
}

pub trait Kv: Send + Sync + 'static {
    /// Applies a batch atomically. With `durable`, it survives a crash once this returns, and
    /// so does every batch written before it: a crash keeps a prefix of the writes, in order.
    /// So a batch that only batches after it may refer to need not wait for a sync of its own.
    fn write(&self, batch: KvBatch, durable: bool) -> Result<(), StoreError>;
    /// Visits the keys of `[start, end)` in order until `visit` returns false.
    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError>;
    /// Approximate bytes a table occupies on disk.
    fn disk_size(&self, table: Table) -> u64;

    /// Bytes of the table's keys and values themselves, before the backend's own overhead
    /// (file metadata, indexes), by scanning it: for reports, not hot paths.
    fn logical_size(&self, table: Table) -> Result<u64, StoreError> {
        let mut total = 0u64;
        self.scan(table, &[], &[0xff; 40], &mut |k, v| {
            total += (k.len() + v.len()) as u64;
            true
        })?;
        Ok(total)
    }
    /// Compacts a table now, reclaiming space of deleted ranges.
    fn compact(&self, table: Table) -> Result<(), StoreError>;
    /// Compacts a table now and rewrites all of it in its final form, the bottom level's
    /// compression included: an explicit compaction (the admin endpoint, benchmarks), which
    /// costs a rewrite of the whole table.
    fn compact_fully(&self, table: Table) -> Result<(), StoreError> {
        self.compact(table)
    }
    /// Memory the backend holds for its caches and write buffers.
    fn memory(&self) -> KvMemory {
        KvMemory::default()
    }
    /// Persists everything buffered (memtables) and syncs.
    fn flush(&self) -> Result<(), StoreError>;
    /// Makes every batch written so far durable, as a durable write would.
    fn sync(&self) -> Result<(), StoreError>;
    /// The write-ahead log kept beside the tables.
    fn log(&self) -> &dyn Log;

    /// The value of one key.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let mut end = key.to_vec();
        end.push(0);
        let mut found = None;
        self.scan(table, key, &end, &mut |_, v| {
            found = Some(v.to_vec());
            false
        })?;
        Ok(found)
    }
}

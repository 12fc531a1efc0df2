//! The write-ahead log under the engine: an append-only sequence of records, numbered in write
//! order, each durable once a sync covers it.
//!
//! The engine's appends go here rather than through the key-value store's tables: a record is
//! written once and synced with the records appended beside it, with no memtable, flush or
//! compaction behind it, and is dropped whole once a checkpoint covers it (see `tsdb/mod.rs`).
//!
//! # Contract
//! - Ids increase by one in write order within a run of appends; recovery may leave gaps
//!   between runs (records imported with their own ids, see [`Log::import`]).
//! - [`Log::write`] numbers a record and writes it; [`Log::sync_through`] returns once that
//!   record and every record before it are durable, sharing one sync with the writers waiting
//!   beside it. [`Log::append`] is the two in one.
//! - A crash keeps a prefix of the records.
//! - Readers see records up to [`Log::durable`] only.

use super::StoreError;

/// Visitor for [`Log::read`]: a record's id and bytes; return `false` to stop.
pub type LogVisit<'a> = dyn FnMut(u64, &[u8]) -> bool + 'a;

pub trait Log: Send + Sync + 'static {
    /// Writes a record and returns its id; it is durable after [`Log::sync_through`] that id.
    fn write(&self, record: &[u8]) -> Result<u64, StoreError>;
    /// Returns once every record up to `id` is durable.
    fn sync_through(&self, id: u64) -> Result<(), StoreError>;
    /// Appends a record and returns its id once it is durable.
    fn append(&self, record: &[u8]) -> Result<u64, StoreError> {
        let id = self.write(record)?;
        self.sync_through(id)?;
        Ok(id)
    }
    /// Writes a record under an id of the caller's, above every id in the log, without a sync
    /// of its own (the next append's or [`Log::sync`] makes it durable): for bringing records
    /// of an older store's format over at start-up.
    fn import(&self, id: u64, record: &[u8]) -> Result<(), StoreError>;
    /// Makes every record written so far durable.
    fn sync(&self) -> Result<(), StoreError> {
        self.sync_through(self.last_id())
    }
    /// Ids from now on are above `id` (the engine's checkpoint position may be past the log's
    /// last record, when a checkpoint released every record).
    fn continue_after(&self, id: u64);
    /// The highest id whose record and every record before it are durable; 0 when none.
    fn durable(&self) -> u64;
    /// The id the last append or import took (or [`Log::continue_after`] set); 0 when none.
    fn last_id(&self) -> u64;
    /// Visits the durable records with ids above `after`, in order, until `visit` says stop.
    fn read(&self, after: u64, visit: &mut LogVisit<'_>) -> Result<(), StoreError>;
    /// Bytes the records above `after` take in the log, with its framing: a scan, for start-up.
    fn bytes_after(&self, after: u64) -> Result<u64, StoreError>;
    /// Drops the records with ids up to `upto`, as far as the log's storage allows (whole
    /// segments); later reads may still see some of them.
    fn release(&self, upto: u64) -> Result<(), StoreError>;
    /// Starts a new segment at the next append, so that what was appended before can be
    /// released whole once covered.
    fn rotate(&self);
    /// Bytes the log holds on disk.
    fn disk_size(&self) -> u64;
}

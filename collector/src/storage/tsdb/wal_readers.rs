//! Durable WAL readers: named consumers (remote write's destinations) that read every appended
//! record in write order, each from a cursor of its own kept in the `meta` table.
//!
//! # Invariants
//! - A checkpoint deletes no WAL record a reader has not finished: the WAL doubles as the
//!   readers' outbox, so what a reader has not yet forwarded survives restarts and kill -9.
//! - A reader sees records only up to the log's durable end: the log writes records in id
//!   order, so a reader that took id 7 never finds id 6 arriving after it.
//! - A new reader starts at the newest settled id: it reads what is stored from then on.
//! - A cursor is saved without a sync: after a crash a reader may read again what it had
//!   finished (at least once, never skipped); receivers that deduplicate see it once.

use super::Tsdb;
use super::wal::decode_entry;
use crate::storage::kv::{KvBatch, Table};
use crate::storage::records::{Record, WalReaderRecordV1};
use crate::storage::{Sample, StoreError};
use std::sync::atomic::Ordering;

/// One WAL record as a reader reads it.
pub struct WalRecord {
    pub id: u64,
    /// Its record's size in the log, for backlog accounting.
    pub bytes: usize,
    pub samples: Vec<Sample>,
}

fn reader_key(name: &str) -> Vec<u8> {
    [b"wal_reader/".as_slice(), name.as_bytes()].concat()
}

impl Tsdb {
    /// The highest WAL id below which every append is settled: the log's durable end.
    pub fn wal_settled(&self) -> u64 {
        self.kv.log().durable()
    }

    /// Opens reader `name`: its saved cursor (the last id it finished), or for a new one the
    /// newest settled id. From now on checkpoints keep the records after its cursor.
    pub fn open_wal_reader(&self, name: &str) -> Result<u64, StoreError> {
        let cursor = match self.kv.get(Table::Meta, &reader_key(name))? {
            Some(bytes) => WalReaderRecordV1::decode(&bytes)?.position,
            None => {
                let position = self.wal_settled();
                self.save_cursor(name, position)?;
                position
            }
        };
        self.wal_readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), cursor);
        Ok(cursor)
    }

    /// Records after id `after`, in order, up to the settled id: whole records until they hold
    /// at least `max_samples` samples (at least one record when any is there). A record that
    /// changed only a node's sequence comes with no samples.
    pub fn read_wal(&self, after: u64, max_samples: usize) -> Result<Vec<WalRecord>, StoreError> {
        let mut out = Vec::new();
        let (mut samples, mut failure) = (0, None);
        self.kv.log().read(after, &mut |id, record| {
            match decode_entry(record) {
                Ok(entry) => {
                    samples += entry.samples.len();
                    out.push(WalRecord {
                        id,
                        bytes: record.len(),
                        samples: entry.samples,
                    });
                }
                Err(e) => failure = Some(e),
            }
            failure.is_none() && samples < max_samples
        })?;
        failure.map_or(Ok(out), Err)
    }

    /// Bytes of the WAL records after id `after` (a scan: for start-up, not hot paths).
    pub fn wal_bytes_after(&self, after: u64) -> Result<u64, StoreError> {
        self.kv.log().bytes_after(after)
    }

    /// Bytes of WAL records appended since open.
    pub fn wal_bytes_written(&self) -> u64 {
        self.wal_bytes_written.load(Ordering::Relaxed)
    }

    /// Reader `name` finished every record up to `position`: saved, and the records up to it
    /// released to the next checkpoint.
    pub fn advance_wal_reader(&self, name: &str, position: u64) -> Result<(), StoreError> {
        self.save_cursor(name, position)?;
        self.wal_readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), position);
        Ok(())
    }

    fn save_cursor(&self, name: &str, position: u64) -> Result<(), StoreError> {
        let mut batch = KvBatch::default();
        let record = WalReaderRecordV1 { position };
        batch.put(Table::Meta, reader_key(name), record.encode());
        self.kv.write(batch, false)
    }

    /// The last WAL id a checkpoint may delete: its own position, or less while a reader is
    /// behind it.
    pub(super) fn wal_deletable(&self, checkpoint: u64) -> u64 {
        let readers = self.wal_readers.lock().unwrap_or_else(|p| p.into_inner());
        readers
            .values()
            .fold(checkpoint, |upto, &cursor| upto.min(cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{T0, open};
    use crate::storage::{MemoryKv, Sample, SeriesId};

    fn sample(i: i64) -> Sample {
        Sample {
            series: SeriesId(1),
            timestamp_ms: T0 + i * 1000,
            value: i as f64,
        }
    }

    #[test]
    fn a_reader_gets_every_record_after_its_cursor_across_checkpoints_and_restarts() {
        let kv = MemoryKv::default();
        let tsdb = open(&kv);
        tsdb.append(None, &[sample(0)]).unwrap();
        // A new reader starts at what is stored now.
        let cursor = tsdb.open_wal_reader("vm").unwrap();
        assert!(tsdb.read_wal(cursor, 100).unwrap().is_empty());
        for i in 1..=5 {
            tsdb.append(None, &[sample(i)]).unwrap();
        }
        tsdb.checkpoint(false).unwrap();
        // The checkpoint kept what the reader has not read.
        let records = tsdb.read_wal(cursor, 2).unwrap();
        let values: Vec<f64> = records
            .iter()
            .flat_map(|r| &r.samples)
            .map(|s| s.value)
            .collect();
        assert_eq!(values, [1.0, 2.0]);
        tsdb.advance_wal_reader("vm", records[1].id).unwrap();
        tsdb.checkpoint(false).unwrap();
        drop(tsdb);
        let tsdb = open(&kv);
        let cursor = tsdb.open_wal_reader("vm").unwrap();
        let values: Vec<f64> = tsdb
            .read_wal(cursor, 100)
            .unwrap()
            .iter()
            .flat_map(|r| &r.samples)
            .map(|s| s.value)
            .collect();
        assert_eq!(values, [3.0, 4.0, 5.0]);
        assert!(tsdb.wal_bytes_after(cursor).unwrap() > 0);
        // Once read, the next checkpoint frees them.
        tsdb.advance_wal_reader("vm", tsdb.wal_settled()).unwrap();
        tsdb.checkpoint(false).unwrap();
        assert_eq!(tsdb.wal_bytes_after(0).unwrap(), 0);
    }
}

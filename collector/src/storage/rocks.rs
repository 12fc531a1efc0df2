//! The RocksDB [`Store`]: the only module that knows RocksDB.
//!
//! Column families and key layouts (all integers big-endian so byte order is numeric order):
//! - `series`:  series id (u64)                      → JSON [`StoredSeries`]
//! - `samples`: series id (u64) ‖ timestamp (i64, sign bit flipped) → value (f64 bits, LE)
//! - `nodes`:   node name (UTF-8)                    → JSON [`NodeRecord`]
//!
//! Every ingest batch is one `WriteBatch` across these families written with `sync = true`, so it
//! is in the fsynced WAL before the caller acks it. The label-set → id index is rebuilt in memory
//! from `series` at start-up (the catalog), so it is never out of step with the data.

use super::{IngestWrite, MetricKind, NodeRecord, SeriesId, SeriesMeta, Store, StoreError};
use hcmon_common::Labels;
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Direction, IteratorMode, Options,
    ReadOptions, WriteBatch, WriteOptions,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

const CF_SERIES: &str = "series";
const CF_SAMPLES: &str = "samples";
const CF_NODES: &str = "nodes";

/// How a series' metadata is stored.
#[derive(Serialize, Deserialize)]
struct StoredSeries {
    /// The label set in [`Labels::encode`] form, as a string with NUL separators.
    labels: String,
    kind: MetricKind,
    help: String,
}

pub struct RocksStore {
    db: DB,
}

impl RocksStore {
    /// Opens (or creates) the store under `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Bound memory: home-cloud collectors run beside other services.
        opts.set_max_total_wal_size(64 << 20);
        opts.set_keep_log_file_num(4);
        let families = [CF_SERIES, CF_SAMPLES, CF_NODES].map(|name| {
            let mut cf = Options::default();
            cf.set_compression_type(DBCompressionType::Lz4);
            cf.set_bottommost_compression_type(DBCompressionType::Zstd);
            cf.set_write_buffer_size(16 << 20);
            ColumnFamilyDescriptor::new(name, cf)
        });
        let db = DB::open_cf_descriptors(&opts, path, families).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        Ok(Self { db })
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column family created at open")
    }
}

fn sample_key(series: SeriesId, timestamp_ms: i64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&series.0.to_be_bytes());
    key[8..].copy_from_slice(&((timestamp_ms as u64) ^ (1 << 63)).to_be_bytes());
    key
}

fn decode_sample(key: &[u8], value: &[u8]) -> Result<(i64, f64), StoreError> {
    let corrupt = || StoreError::Corrupt {
        what: "sample",
        detail: format!("key of {} bytes, value of {} bytes", key.len(), value.len()),
    };
    let ts: [u8; 8] = key
        .get(8..16)
        .ok_or_else(corrupt)?
        .try_into()
        .map_err(|_| corrupt())?;
    let v: [u8; 8] = value.try_into().map_err(|_| corrupt())?;
    Ok((
        (u64::from_be_bytes(ts) ^ (1 << 63)) as i64,
        f64::from_le_bytes(v),
    ))
}

fn encode_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("plain structs always serialise")
}

fn write_series(batch: &mut WriteBatch, cf: &ColumnFamily, meta: &SeriesMeta) {
    let stored = StoredSeries {
        labels: String::from_utf8(meta.labels.encode()).expect("labels are UTF-8"),
        kind: meta.kind,
        help: meta.help.clone(),
    };
    batch.put_cf(cf, meta.id.0.to_be_bytes(), encode_json(&stored));
}

impl Store for RocksStore {
    fn write(&self, write: IngestWrite<'_>) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        let series_cf = self.cf(CF_SERIES);
        for meta in write.new_series {
            write_series(&mut batch, series_cf, meta);
        }
        let samples_cf = self.cf(CF_SAMPLES);
        for s in write.samples {
            batch.put_cf(
                samples_cf,
                sample_key(s.series, s.timestamp_ms),
                s.value.to_le_bytes(),
            );
        }
        batch.put_cf(
            self.cf(CF_NODES),
            write.node.as_bytes(),
            encode_json(write.record),
        );
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db
            .write_opt(batch, &opts)
            .map_err(|e| StoreError::Write(Box::new(e)))
    }

    fn put_node(&self, node: &str, record: &NodeRecord) -> Result<(), StoreError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db
            .put_cf_opt(
                self.cf(CF_NODES),
                node.as_bytes(),
                encode_json(record),
                &opts,
            )
            .map_err(|e| StoreError::Write(Box::new(e)))
    }

    fn load_series(&self) -> Result<Vec<SeriesMeta>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_SERIES), IteratorMode::Start) {
            let (key, value) = item.map_err(|e| StoreError::Read(Box::new(e)))?;
            let corrupt = |detail: String| StoreError::Corrupt {
                what: "series",
                detail,
            };
            let id = u64::from_be_bytes(
                key.as_ref()
                    .try_into()
                    .map_err(|_| corrupt(format!("key {key:?}")))?,
            );
            let stored: StoredSeries =
                serde_json::from_slice(&value).map_err(|e| corrupt(e.to_string()))?;
            let labels = Labels::decode(stored.labels.as_bytes())
                .ok_or_else(|| corrupt(format!("labels of series {id}")))?;
            out.push(SeriesMeta {
                id: SeriesId(id),
                labels,
                kind: stored.kind,
                help: stored.help,
            });
        }
        Ok(out)
    }

    fn load_nodes(&self) -> Result<Vec<(String, NodeRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_NODES), IteratorMode::Start) {
            let (key, value) = item.map_err(|e| StoreError::Read(Box::new(e)))?;
            let corrupt = |detail: String| StoreError::Corrupt {
                what: "node",
                detail,
            };
            let name = String::from_utf8(key.to_vec()).map_err(|e| corrupt(e.to_string()))?;
            let record = serde_json::from_slice(&value).map_err(|e| corrupt(e.to_string()))?;
            out.push((name, record));
        }
        Ok(out)
    }

    fn read_range(
        &self,
        series: SeriesId,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        if start_ms > end_ms {
            return Ok(Vec::new());
        }
        let mut opts = ReadOptions::default();
        match end_ms.checked_add(1) {
            Some(end) => opts.set_iterate_upper_bound(sample_key(series, end).to_vec()),
            None => opts.set_iterate_upper_bound((series.0 + 1).to_be_bytes().to_vec()),
        }
        let start = sample_key(series, start_ms);
        let iter = self.db.iterator_cf_opt(
            self.cf(CF_SAMPLES),
            opts,
            IteratorMode::From(&start, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            let (key, value) = item.map_err(|e| StoreError::Read(Box::new(e)))?;
            out.push(decode_sample(&key, &value)?);
        }
        Ok(out)
    }

    fn last_sample(&self, series: SeriesId) -> Result<Option<(i64, f64)>, StoreError> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(series.0.to_be_bytes().to_vec());
        let end = sample_key(series, i64::MAX);
        let mut iter = self.db.iterator_cf_opt(
            self.cf(CF_SAMPLES),
            opts,
            IteratorMode::From(&end, Direction::Reverse),
        );
        match iter.next() {
            Some(item) => {
                let (key, value) = item.map_err(|e| StoreError::Read(Box::new(e)))?;
                Ok(Some(decode_sample(&key, &value)?))
            }
            None => Ok(None),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush_wal(true)
            .map_err(|e| StoreError::Write(Box::new(e)))?;
        for name in [CF_SERIES, CF_SAMPLES, CF_NODES] {
            self.db
                .flush_cf(self.cf(name))
                .map_err(|e| StoreError::Write(Box::new(e)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Sample;

    fn meta(id: u64, name: &str) -> SeriesMeta {
        SeriesMeta {
            id: SeriesId(id),
            labels: Labels::new(name, [("node".to_owned(), "a".to_owned())]).unwrap(),
            kind: MetricKind::Gauge,
            help: "help".into(),
        }
    }

    #[test]
    fn survives_reopen_and_orders_negative_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let record = NodeRecord {
            spool_epoch: 7,
            last_durable_seq: 3,
            ..Default::default()
        };
        {
            let store = RocksStore::open(dir.path()).unwrap();
            let samples: Vec<Sample> = [-5_i64, 10, 0, 20]
                .iter()
                .map(|&ts| Sample {
                    series: SeriesId(1),
                    timestamp_ms: ts,
                    value: ts as f64,
                })
                .chain([Sample {
                    series: SeriesId(2),
                    timestamp_ms: 1,
                    value: 9.5,
                }])
                .collect();
            store
                .write(IngestWrite {
                    node: "a",
                    record: &record,
                    new_series: &[meta(1, "m1"), meta(2, "m2")],
                    samples: &samples,
                })
                .unwrap();
        }
        let store = RocksStore::open(dir.path()).unwrap();
        assert_eq!(
            store.load_series().unwrap(),
            vec![meta(1, "m1"), meta(2, "m2")]
        );
        assert_eq!(store.load_nodes().unwrap(), vec![("a".to_owned(), record)]);
        assert_eq!(
            store.read_range(SeriesId(1), i64::MIN, i64::MAX).unwrap(),
            vec![(-5, -5.0), (0, 0.0), (10, 10.0), (20, 20.0)]
        );
        assert_eq!(
            store.read_range(SeriesId(1), 0, 10).unwrap(),
            vec![(0, 0.0), (10, 10.0)]
        );
        assert_eq!(store.last_sample(SeriesId(1)).unwrap(), Some((20, 20.0)));
        assert_eq!(store.last_sample(SeriesId(2)).unwrap(), Some((1, 9.5)));
        assert_eq!(store.last_sample(SeriesId(3)).unwrap(), None);
    }
}

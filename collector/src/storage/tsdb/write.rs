//! The write path: appends (WAL record and node sequence in one synced batch, then the head),
//! and the series and node records.

use super::head::series_runs;
use super::keys::id_key;
use super::wal::encode_wal;
use super::{AppendOutcome, SHARDS, Tsdb};
use crate::storage::kv::{KvBatch, Table};
use crate::storage::records::{NodeRecordV1, NodeSequenceRecordV1, Record, SeriesRecordV1};
use crate::storage::{NodeRecord, NodeSequence, Sample, SeriesMeta, StoreError};
use std::sync::atomic::Ordering;

impl Tsdb {
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
                    let newest = shard.heads.get(&run[0].series).and_then(|h| h.newest_ts());
                    accepted.extend(run.iter().filter(|s| {
                        newest.is_none_or(|n| s.timestamp_ms >= n.saturating_sub(window))
                    }));
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
                NodeSequenceRecordV1::from(sequence).encode(),
            );
        }
        let _gate = self.append_gate.read().unwrap_or_else(|p| p.into_inner());
        let mut wal_id = None;
        if !accepted.is_empty() {
            let record = encode_wal(&accepted);
            let mut pending = self.wal_pending.lock().unwrap_or_else(|p| p.into_inner());
            let id = self.next_wal_id.fetch_add(1, Ordering::SeqCst);
            pending.insert(id);
            drop(pending);
            self.wal_bytes_written
                .fetch_add(record.len() as u64, Ordering::Relaxed);
            batch.put(Table::Wal, id_key(id), record);
            wal_id = Some(id);
        }
        if batch.is_empty() {
            return Ok(outcome);
        }
        let written = self.kv.write(batch, true);
        if let Some(id) = wal_id {
            // Settled either way: a failed write left no record for a reader to wait for.
            self.wal_pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        }
        written?;
        self.apply(&accepted);
        Ok(outcome)
    }

    /// Applies samples to the head (appends, WAL replay), except those of deleted series.
    pub(super) fn apply(&self, samples: &[Sample]) {
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

    /// Stores series definitions ahead of every sample that refers to them. Not synced: the
    /// samples' own synced write makes the definitions durable with them (a crash keeps a
    /// prefix of the writes, see [`Kv::write`](crate::storage::kv::Kv::write)), and a definition lost with no sample naming
    /// it is recreated by the next batch that uses it. A sync here cost one `fdatasync` per
    /// creating batch, taken in turn under the catalog's creation lock.
    pub fn create_series(&self, metas: &[SeriesMeta]) -> Result<(), StoreError> {
        let mut batch = KvBatch::default();
        for meta in metas {
            let record = SeriesRecordV1::from(meta);
            batch.put(Table::Series, id_key(meta.id.0), record.encode());
        }
        self.kv.write(batch, false)
    }

    /// Records a node's state durably.
    pub fn put_node(&self, node: &str, record: &NodeRecord) -> Result<(), StoreError> {
        let mut batch = KvBatch::default();
        batch.put(
            Table::Nodes,
            node.as_bytes(),
            NodeRecordV1::from(record).encode(),
        );
        batch.put(
            Table::NodeSequences,
            node.as_bytes(),
            NodeSequenceRecordV1::from(&record.sequence()).encode(),
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
        deleted
            .iter()
            .map(|id| id.0.saturating_add(1))
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{T0, open, samples};
    use super::*;
    use crate::storage::{MemoryKv, SeriesId};

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
}

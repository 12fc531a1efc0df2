//! Opening the engine: series and node records, the deleted-series list, head snapshots, the
//! older `Wal` table's records brought into the log, log replay after the checkpoint position
//! (samples and node sequences), and the rollup buckets left to recompute.

use super::head::{Shard, decode_head};
use super::keys::{
    META_CHECKPOINT, META_DELETED_SERIES, META_STALE_ROLLUPS, SCAN_END, id_key, parse_id,
    parse_node_name,
};
use super::wal::{LogEntry, NodeChange, decode_entry, decode_table_record};
use super::{Recovered, SHARDS, StorageConfig, Tsdb};
use crate::storage::kv::{Kv, KvBatch, Table};
use crate::storage::records::{
    CheckpointRecordV1, DeletedSeriesRecordV1, NodeRecordV1, NodeSequenceRecordV1, Record,
    SeriesRecordV1, StaleRollupsRecordV1,
};
use crate::storage::{NodeRecord, NodeSequence, SeriesId, SeriesMeta, StoreError};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
use std::sync::{Mutex, RwLock};

impl Tsdb {
    /// Opens the engine: loads series, nodes and head snapshots, and replays the WAL.
    pub fn open(kv: Box<dyn Kv>, config: StorageConfig) -> Result<Recovered, StoreError> {
        let series = load_series(kv.as_ref())?;
        let mut nodes = load_nodes(kv.as_ref())?;
        let families = super::families::load_families(kv.as_ref())?;
        let deleted: HashSet<SeriesId> = match kv.get(Table::Meta, META_DELETED_SERIES)? {
            Some(bytes) => DeletedSeriesRecordV1::decode(&bytes)?.ids().collect(),
            None => HashSet::new(),
        };
        let tsdb = Self {
            kv,
            config,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            wal_readers: Mutex::default(),
            wal_bytes_written: AtomicU64::new(0),
            definitions_written: AtomicU64::new(0),
            definitions_synced: AtomicU64::new(0),
            syncing_definitions: Mutex::new(()),
            sequences: Mutex::default(),
            log_sync_queued: Default::default(),
            log_synced: Default::default(),
            log_sync_started: Mutex::default(),
            append_gate: RwLock::new(()),
            flush_gate: RwLock::new(()),
            checkpointing: Mutex::new(()),
            chunks_written: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            last_cut_bytes: AtomicUsize::new(0),
            failed: Default::default(),
            deleted: RwLock::new(deleted.clone()),
            families: RwLock::new(families),
            raw_rollups_from: AtomicU32::new(0),
            storing_raw_rollups: Mutex::new(()),
        };
        tsdb.load_raw_rollups_mark()?;
        tsdb.load_heads(&deleted)?;
        let checkpoint = match tsdb.kv.get(Table::Meta, META_CHECKPOINT)? {
            Some(bytes) => CheckpointRecordV1::decode(&bytes)?.wal_position,
            None => 0,
        };
        tsdb.import_wal_table()?;
        if checkpoint == u64::MAX {
            return Err(StoreError::corrupt(
                Table::Meta,
                "checkpoint position",
                "the largest possible write id: none is left",
            ));
        }
        tsdb.kv.log().continue_after(checkpoint);
        let (replayed, changes) = tsdb.replay_wal(checkpoint, &deleted)?;
        tsdb.apply_node_changes(changes, &mut nodes)?;
        tsdb.load_stale_rollups()?;
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

    /// Loads head snapshots, except those of deleted series whose deletion was cut short.
    fn load_heads(&self, deleted: &HashSet<SeriesId>) -> Result<(), StoreError> {
        let mut failure = None;
        self.kv.scan(Table::Head, &[], SCAN_END, &mut |k, v| {
            let parsed =
                parse_id(Table::Head, k).and_then(|id| Ok((SeriesId(id), decode_head(v)?)));
            match parsed {
                Ok((id, _)) if deleted.contains(&id) => {}
                Ok((id, head)) => {
                    self.shard(id).heads.insert(id, Box::new(head));
                }
                Err(e) => failure = Some(e),
            }
            failure.is_none()
        })?;
        failure.map_or(Ok(()), Err)
    }

    /// Brings the records of the older `Wal` table into the log, with their ids, and empties
    /// the table. Each is checked on the way: one that cannot be read fails the start, naming
    /// the table, as its replay would have. A start cut short after the import syncs finds the
    /// records already in the log and only empties the table.
    fn import_wal_table(&self) -> Result<(), StoreError> {
        let log = self.kv.log();
        let (mut seen, mut imported, mut failure) = (0usize, 0usize, None);
        self.kv.scan(Table::Wal, &[], SCAN_END, &mut |k, v| {
            seen += 1;
            let checked = parse_id(Table::Wal, k).and_then(|id| {
                decode_table_record(v)?;
                if id > log.last_id() {
                    log.import(id, &[&[0u8][..], v].concat())?;
                    imported += 1;
                }
                Ok(())
            });
            if let Err(e) = checked {
                failure = Some(e);
            }
            failure.is_none()
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        if seen == 0 {
            return Ok(());
        }
        log.sync()?;
        let mut batch = KvBatch::default();
        batch.delete_range(Table::Wal, id_key(0), SCAN_END);
        self.kv.write(batch, true)?;
        tracing::info!(
            records = imported,
            "write-ahead log records moved from the wal table into the log's files"
        );
        Ok(())
    }

    /// Applies the log records after `checkpoint` to the head. Returns how many samples were
    /// replayed and each node's last change.
    fn replay_wal(
        &self,
        checkpoint: u64,
        deleted: &HashSet<SeriesId>,
    ) -> Result<(usize, BTreeMap<String, NodeChange>), StoreError> {
        let mut replayed = 0usize;
        let mut changes = BTreeMap::new();
        let mut failure = None;
        self.kv.log().read(checkpoint, &mut |_, record| {
            match decode_entry(record) {
                Ok(LogEntry { node, mut samples }) => {
                    // Samples of series deleted since they were written are not revived.
                    samples.retain(|sample| !deleted.contains(&sample.series));
                    replayed += samples.len();
                    self.apply(&samples);
                    if let Some((name, change)) = node {
                        changes.insert(name, change);
                    }
                }
                Err(e) => failure = Some(e),
            }
            failure.is_none()
        })?;
        failure.map_or(Ok((replayed, changes)), Err)
    }

    /// Puts the nodes' sequence states replayed from the log into the recovered nodes and their
    /// table (not synced: the records stay in the log until a checkpoint's sync covers them).
    fn apply_node_changes(
        &self,
        changes: BTreeMap<String, NodeChange>,
        nodes: &mut Vec<(String, NodeRecord)>,
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut batch = KvBatch::default();
        for (name, change) in &changes {
            match change {
                NodeChange::Sequence(sequence) => batch.put(
                    Table::NodeSequences,
                    name.as_bytes(),
                    NodeSequenceRecordV1::from(sequence).encode(),
                ),
                NodeChange::Forgotten => {
                    batch.delete(Table::Nodes, name.as_bytes());
                    batch.delete(Table::NodeSequences, name.as_bytes());
                }
            }
        }
        self.kv.write(batch, false)?;
        let mut by_name: BTreeMap<String, NodeRecord> = std::mem::take(nodes).into_iter().collect();
        for (name, change) in changes {
            match change {
                NodeChange::Sequence(sequence) => {
                    by_name.entry(name).or_default().set_sequence(sequence)
                }
                NodeChange::Forgotten => {
                    by_name.remove(&name);
                }
            }
        }
        *nodes = by_name.into_iter().collect();
        Ok(())
    }

    /// Queues the rollup buckets the last checkpoint left to recompute for the next one. An
    /// unreadable list is logged and skipped: those buckets keep their older aggregates.
    fn load_stale_rollups(&self) -> Result<(), StoreError> {
        let Some(bytes) = self.kv.get(Table::Meta, META_STALE_ROLLUPS)? else {
            return Ok(());
        };
        match StaleRollupsRecordV1::decode(&bytes) {
            Ok(stale) => {
                // A list from before 1 min and 5 min buckets were computed from raw may name some.
                let live = stale.buckets().filter(|s| s.1.live_slot().is_some());
                for (series, res, bucket) in live {
                    let mut shard = self.shard(series);
                    shard.stale_rollups.insert((series, res, bucket));
                    shard.mark_dirty(series);
                }
            }
            Err(error) => {
                tracing::error!(%error, "unreadable list of rollup buckets to recompute skipped")
            }
        }
        Ok(())
    }
}

/// Every series ever defined; the first unreadable one fails the start.
fn load_series(kv: &dyn Kv) -> Result<Vec<SeriesMeta>, StoreError> {
    let mut series = Vec::new();
    let mut failure = None;
    kv.scan(Table::Series, &[], SCAN_END, &mut |k, v| {
        let meta = parse_id(Table::Series, k)
            .and_then(|id| SeriesRecordV1::decode(v)?.into_meta(SeriesId(id)));
        match meta {
            Ok(meta) => series.push(meta),
            Err(e) => failure = Some(e),
        }
        failure.is_none()
    })?;
    failure.map_or(Ok(series), Err)
}

/// Every node's record. One that cannot be read is left where it is and logged, never a reason
/// not to start: its agent's next registration writes it anew.
fn load_nodes(kv: &dyn Kv) -> Result<Vec<(String, NodeRecord)>, StoreError> {
    let mut nodes: BTreeMap<String, NodeRecord> = BTreeMap::new();
    kv.scan(Table::Nodes, &[], &[0xff], &mut |k, v| {
        match decode_node::<NodeRecordV1>(k, v) {
            Ok((name, record)) => {
                nodes.insert(name, record.into());
            }
            Err(error) => {
                tracing::error!(key = %String::from_utf8_lossy(k), %error, "unreadable node record skipped")
            }
        }
        true
    })?;
    // The sequence state written with each batch is newer than the registration's copy.
    kv.scan(Table::NodeSequences, &[], &[0xff], &mut |k, v| {
        match decode_node::<NodeSequenceRecordV1>(k, v) {
            Ok((name, sequence)) => nodes
                .entry(name)
                .or_default()
                .set_sequence(NodeSequence::from(sequence)),
            Err(error) => {
                tracing::error!(key = %String::from_utf8_lossy(k), %error, "unreadable node sequence record skipped")
            }
        }
        true
    })?;
    Ok(nodes.into_iter().collect())
}

/// A `nodes` or `node_sequences` entry: the node name and its record.
pub(super) fn decode_node<R: Record>(key: &[u8], value: &[u8]) -> Result<(String, R), StoreError> {
    Ok((parse_node_name(R::TABLE, key)?, R::decode(value)?))
}

#[cfg(test)]
mod tests {
    use super::super::testing::config;
    use super::*;
    use crate::storage::{KvBatch, MemoryKv};

    const OLD_NODE: &[u8] = br#"{"spool_epoch":7,"last_durable_seq":42,"agent_version":"0.1.0","host":{"hostname":"nas","os_name":"","os_version":"","kernel_version":"","arch":"","cpu_count":4,"memory_total_bytes":0,"boot_time":0},"registered_at_ms":1,"last_batch_at_ms":2}"#;

    #[test]
    fn an_unreadable_node_record_does_not_stop_the_start() {
        let kv = MemoryKv::default();
        let mut batch = KvBatch::default();
        batch.put(Table::Nodes, b"broken".to_vec(), b"{not json".to_vec());
        batch.put(Table::NodeSequences, b"broken".to_vec(), b"\xff".to_vec());
        batch.put(Table::Nodes, b"nas".to_vec(), OLD_NODE.to_vec());
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
        batch.put(Table::Nodes, b"nas".to_vec(), OLD_NODE.to_vec());
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
}

//! The write path: appends (the head, then one log record with the node's sequence), and the
//! series and node records.

use super::head::{READ_AHEAD, series_runs};
use super::keys::id_key;
use super::wal::{NodeChange, encode_entry};
use super::{AppendOutcome, Logged, SHARDS, Tsdb};
use crate::storage::kv::{KvBatch, Table};
use crate::storage::records::{NodeRecordV1, NodeSequenceRecordV1, Record, SeriesRecordV1};
use crate::storage::{NodeRecord, NodeSequence, Sample, SeriesId, SeriesMeta, StoreError};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLockReadGuard};

/// Least time between the starts of two log syncs for async waiters. Group commit with a
/// floor on its period, as PostgreSQL's `commit_delay`: under load a sync (a `fdatasync`, a
/// trip to the blocking pool and the wake-ups around it) covers the appends of a few
/// milliseconds, where back-to-back syncs covered a batch or two each and were 7% of the
/// collector's CPU under a back-fill. An ack waits at most this much longer; a lone append
/// after a quiet spell syncs at once.
const LOG_SYNC_GAP: std::time::Duration = std::time::Duration::from_millis(2);

/// The one async waiter's turn to sync the log (see [`Tsdb::durable`]): its end wakes the
/// others.
struct SyncTurn(Arc<Tsdb>);

impl Drop for SyncTurn {
    fn drop(&mut self) {
        self.0.log_sync_queued.store(false, Ordering::SeqCst);
        self.0.log_synced.notify_waiters();
    }
}

impl Tsdb {
    /// Appends samples durably (with the node's new sequence state, when given) and applies them
    /// to the head. Samples too far behind their series' newest are refused and counted.
    pub fn append(
        &self,
        node: Option<(&str, &NodeSequence)>,
        samples: &[Sample],
    ) -> Result<AppendOutcome, StoreError> {
        let (outcome, logged) = self.append_unsynced(node, samples)?;
        self.sync_log(logged)?;
        Ok(outcome)
    }

    /// [`Tsdb::append`] up to its sync: the record is written and the head has the samples,
    /// which the caller acknowledges only once [`Tsdb::durable`] (or [`Tsdb::sync_log`]) says
    /// the record is durable. Readers of the head may see the samples before then; a crash
    /// before the sync loses them with their acknowledgement, and a failed log write or sync
    /// fails the store.
    pub fn append_unsynced(
        &self,
        node: Option<(&str, &NodeSequence)>,
        samples: &[Sample],
    ) -> Result<(AppendOutcome, Logged), StoreError> {
        // Samples of a series created just now must not reach the disk without its definition.
        self.sync_definitions()?;
        // The log's sync is the caller's, outside the gate: a checkpoint's cut waits for no
        // one's sync.
        let gate = self.append_gate.read().unwrap_or_else(|p| p.into_inner());
        let deleted = self.deleted.read().unwrap_or_else(|p| p.into_inner());
        self.write_under_gate(&gate, &deleted, node, samples)
    }

    /// [`Tsdb::append_unsynced`] where it can end without waiting for anyone, for callers on an
    /// async runtime's thread; `None`, having done nothing, where it would wait: while series
    /// definitions await their sync, a checkpoint holds (or waits for) the append gate, or a
    /// deletion holds (or waits for) the deleted-series list across its synced write.
    /// Left to wait: shard locks (held for single reads and writes) and, once per segment
    /// (64 MiB), the log's sync of the segment it closes.
    pub fn try_append_unsynced(
        &self,
        node: Option<(&str, &NodeSequence)>,
        samples: &[Sample],
    ) -> Result<Option<(AppendOutcome, Logged)>, StoreError> {
        let written = self.definitions_written.load(Ordering::SeqCst);
        if self.definitions_synced.load(Ordering::SeqCst) < written {
            return Ok(None);
        }
        // `try_read` fails while a writer waits too (the standard library's lock prefers
        // writers), so a checkpoint about to cut is not held up by appends taken here.
        let gate = match self.append_gate.try_read() {
            Ok(gate) => gate,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
        };
        let deleted = match self.deleted.try_read() {
            Ok(deleted) => deleted,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
        };
        self.write_under_gate(&gate, &deleted, node, samples)
            .map(Some)
    }

    /// The append's work once definitions are synced and the gate is held: drops samples too
    /// far behind their series' newest and applies the others to the head in the same pass
    /// (one lookup of each series' head), then writes the log record. The head goes first, so
    /// a failed log write fails the store as a failed sync does: only a restart's replay
    /// brings the head back level with the disk. The deleted-series list is held through the
    /// pass: a deletion (which lists the series, then drops their heads) cannot come between a
    /// series' check and its head's update.
    fn write_under_gate(
        &self,
        _gate: &RwLockReadGuard<'_, ()>,
        deleted: &HashSet<SeriesId>,
        node: Option<(&str, &NodeSequence)>,
        samples: &[Sample],
    ) -> Result<(AppendOutcome, Logged), StoreError> {
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
                // A remote-write request holds one sample each of thousands of series, whose
                // heads lie far apart: each run waited for its own head's cache misses. A
                // block of runs' heads is read first, their misses overlapping.
                let runs: Vec<&[Sample]> = series_runs(&group).collect();
                let mut shard = self.shards[i].lock().unwrap_or_else(|p| p.into_inner());
                for block in runs.chunks(READ_AHEAD) {
                    std::hint::black_box(shard.read_ahead(block.iter().copied()));
                    for run in block {
                        let gone = deleted.contains(&run[0].series);
                        shard.accept_run(&self.config, run, window, gone, &mut accepted);
                    }
                }
            }
        }
        let outcome = AppendOutcome {
            accepted: accepted.len(),
            too_old: samples.len() - accepted.len(),
        };
        if accepted.is_empty() && node.is_none() {
            return Ok((outcome, Logged(0)));
        }
        let change = node.map(|(name, sequence)| (name, NodeChange::Sequence(*sequence)));
        let record = encode_entry(change, &accepted);
        let id = self.kv.log().write(&record).inspect_err(|_| {
            self.failed.store(true, Ordering::SeqCst);
        })?;
        self.wal_bytes_written
            .fetch_add(record.len() as u64, Ordering::Relaxed);
        if let Some((name, sequence)) = node {
            // Kept for the checkpoint, not written to the node table: any synced write of the
            // store could make it durable before this record, and after a crash the agent's
            // resend would be taken for a repeat of a batch that is gone.
            self.note_sequence(name, Some(*sequence));
        }
        Ok((outcome, Logged(id)))
    }

    /// Returns once the record of an [`Tsdb::append_unsynced`] is durable, syncing the log on
    /// this thread (shared with the callers syncing beside it).
    pub fn sync_log(&self, logged: Logged) -> Result<(), StoreError> {
        self.kv.log().sync_through(logged.0).inspect_err(|_| {
            // The head has samples the disk may not: only a restart's replay brings them level.
            self.failed.store(true, Ordering::SeqCst);
        })
    }

    /// [`Tsdb::sync_log`] for async callers: they wait without a thread each, and one sync on
    /// the blocking pool at a time covers every record written when it starts, at most one
    /// per [`LOG_SYNC_GAP`].
    pub async fn durable(self: &Arc<Self>, logged: Logged) -> Result<(), StoreError> {
        loop {
            let synced = self.log_synced.notified();
            tokio::pin!(synced);
            // Registered before the check, so a sync ending in between still wakes this waiter.
            synced.as_mut().enable();
            if self.kv.log().durable() >= logged.0 {
                return Ok(());
            }
            if self.failed.load(Ordering::SeqCst) {
                return Err(StoreError::Failed);
            }
            if self.log_sync_queued.swap(true, Ordering::SeqCst) {
                synced.await;
                continue;
            }
            // Moved into the work, so its end (a return, a panic, or the work dropped unrun by
            // a runtime shutting down) lets the next waiter take the turn.
            let turn = SyncTurn(self.clone());
            let started = || {
                self.log_sync_started
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
            };
            let last = *started();
            if let Some(due) = last.map(|last| last + LOG_SYNC_GAP)
                && due > tokio::time::Instant::now()
            {
                tokio::time::sleep_until(due).await;
            }
            *started() = Some(tokio::time::Instant::now());
            let ran = crate::tasks::blocking("log-sync", move || {
                let last = turn.0.kv.log().last_id();
                turn.0.sync_log(Logged(last))
            })
            .await;
            match ran {
                Ok(synced) => synced?,
                Err(panicked) => return Err(StoreError::Write(panicked.message.into())),
            }
        }
    }

    /// Sets a node's sequence (`None`: forgotten) for the next checkpoint's synced batch to
    /// write to the node table.
    fn note_sequence(&self, node: &str, sequence: Option<NodeSequence>) {
        let mut sequences = self.sequences.lock().unwrap_or_else(|p| p.into_inner());
        match sequences.get_mut(node) {
            Some(noted) => *noted = sequence,
            None => {
                sequences.insert(node.into(), sequence);
            }
        }
    }

    /// Makes the series definitions written so far durable, once per group of appends that
    /// need it (the first to take the lock syncs for everyone waiting).
    fn sync_definitions(&self) -> Result<(), StoreError> {
        let written = self.definitions_written.load(Ordering::SeqCst);
        if self.definitions_synced.load(Ordering::SeqCst) >= written {
            return Ok(());
        }
        let _one = self
            .syncing_definitions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if self.definitions_synced.load(Ordering::SeqCst) >= written {
            return Ok(());
        }
        let upto = self.definitions_written.load(Ordering::SeqCst);
        self.kv.sync()?;
        self.definitions_synced.fetch_max(upto, Ordering::SeqCst);
        Ok(())
    }

    /// Applies replayed log records' samples to the head (recovery has left out those of
    /// deleted series).
    pub(super) fn apply(&self, samples: &[Sample]) {
        let mut by_shard: Vec<Vec<Sample>> = vec![Vec::new(); SHARDS];
        for s in samples {
            by_shard[s.series.shard(SHARDS)].push(*s);
        }
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

    /// Stores series definitions ahead of every sample that refers to them. Not synced here:
    /// the next append syncs them before its log record, sharing one sync among the appends
    /// waiting (a definition lost with no sample naming it is recreated by the next batch that
    /// uses it). A sync here cost one `fdatasync` per creating batch, taken in turn under the
    /// catalog's creation lock.
    pub fn create_series(&self, metas: &[SeriesMeta]) -> Result<(), StoreError> {
        let mut batch = KvBatch::default();
        for meta in metas {
            let record = SeriesRecordV1::from(meta);
            batch.put(Table::Series, id_key(meta.id.0), record.encode());
        }
        self.kv.write(batch, false)?;
        self.definitions_written.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Logs a node's new sequence state or its removal, in order with the appends that carry
    /// its sequence (recovery replays them in that order), then writes its tables durably.
    fn change_node(
        &self,
        node: &str,
        change: NodeChange,
        batch: KvBatch,
    ) -> Result<(), StoreError> {
        let _gate = self.append_gate.read().unwrap_or_else(|p| p.into_inner());
        self.kv
            .log()
            .append(&encode_entry(Some((node, change)), &[]))?;
        // A checkpoint that took an older noted sequence at its cut may write it after this
        // write; the next checkpoint writes this one over it (a restart before that replays
        // this record, which is after that cut).
        self.note_sequence(
            node,
            match change {
                NodeChange::Sequence(sequence) => Some(sequence),
                NodeChange::Forgotten => None,
            },
        );
        let written = self.kv.write(batch, true);
        if written.is_err() {
            // The log holds a change the tables do not: whether it holds after a restart would
            // depend on a checkpoint's timing. Refuse writes until a restart replays it.
            self.failed.store(true, Ordering::SeqCst);
        }
        written
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
        self.change_node(node, NodeChange::Sequence(record.sequence()), batch)
    }

    /// Forgets a node's state durably (its series are untouched).
    pub fn delete_node(&self, node: &str) -> Result<(), StoreError> {
        let mut batch = KvBatch::default();
        batch.delete(Table::Nodes, node.as_bytes());
        batch.delete(Table::NodeSequences, node.as_bytes());
        self.change_node(node, NodeChange::Forgotten, batch)
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
    use super::super::testing::{T0, config, open, samples};
    use super::*;
    use crate::storage::{Kv, MemoryKv, MetricKind, SeriesId};
    use hcmon_common::Labels;

    fn sequence(last_durable_seq: u64) -> NodeSequence {
        NodeSequence {
            spool_epoch: 1,
            last_durable_seq,
            ..NodeSequence::default()
        }
    }

    /// Series 1, a gauge named `up`.
    fn up_series() -> SeriesMeta {
        SeriesMeta {
            id: SeriesId(1),
            labels: Labels::new("up", []).unwrap(),
            kind: MetricKind::Gauge,
            help: String::new(),
        }
    }

    /// The node's sequence after a power cut and a restart (`None`: no such node).
    fn restarted(kv: &MemoryKv) -> Option<u64> {
        kv.power_cut();
        let recovered = Tsdb::open(Box::new(kv.clone()), config()).unwrap();
        let nodes = recovered.nodes;
        nodes
            .iter()
            .find(|(name, _)| name == "nas")
            .map(|(_, record)| record.last_durable_seq)
    }

    /// Appends write a node's sequence to its table without a sync; the log record carries it.
    /// Registrations and forgetting go through the log too, so a replay ends on the newest of
    /// all three, whatever a power cut took from the table.
    #[test]
    fn a_nodes_sequence_survives_power_cuts_in_the_order_it_changed() {
        let kv = MemoryKv::with_power_cuts();
        let db = open(&kv);
        db.append(Some(("nas", &sequence(1))), &samples(1, 0..3, 10_000))
            .unwrap();
        drop(db);
        assert_eq!(restarted(&kv), Some(1));
        let db = open(&kv);
        assert_eq!(db.read_raw(SeriesId(1), T0, T0 + 60_000).unwrap().len(), 3);

        // A batch with no sample left still moves the sequence.
        db.append(Some(("nas", &sequence(2))), &[]).unwrap();
        drop(db);
        assert_eq!(restarted(&kv), Some(2));

        // A registration after an append wins over it on replay.
        let db = open(&kv);
        db.append(Some(("nas", &sequence(3))), &samples(1, 3..4, 10_000))
            .unwrap();
        let mut record = NodeRecord::default();
        record.set_sequence(sequence(9));
        db.put_node("nas", &record).unwrap();
        drop(db);
        assert_eq!(restarted(&kv), Some(9));

        let db = open(&kv);
        db.delete_node("nas").unwrap();
        drop(db);
        assert_eq!(restarted(&kv), None);

        // Once a checkpoint covers the records, the table holds the sequence durably.
        let db = open(&kv);
        db.append(Some(("nas", &sequence(4))), &samples(1, 4..5, 10_000))
            .unwrap();
        db.checkpoint(false).unwrap();
        assert_eq!(db.wal_bytes_after(0).unwrap(), 0);
        drop(db);
        assert_eq!(restarted(&kv), Some(4));
    }

    /// A batch written but not yet synced must not reach the node table through anyone else's
    /// sync: after a power cut the agent resends it, and a table that already counted it
    /// would take the resend for a repeat of samples that are gone.
    #[test]
    fn an_unsynced_batch_leaves_the_node_table_behind_every_other_sync() {
        let kv = MemoryKv::with_power_cuts();
        let db = open(&kv);
        db.append(Some(("nas", &sequence(1))), &samples(1, 0..1, 10_000))
            .unwrap();
        db.append_unsynced(Some(("nas", &sequence(2))), &samples(1, 1..2, 10_000))
            .unwrap();
        // Another append's definitions sync (the tables only, not the log).
        kv.sync().unwrap();
        drop(db);
        assert_eq!(restarted(&kv), Some(1));

        // A checkpoint covering an unsynced record syncs the log first, so after a power cut
        // the log and the table agree.
        let db = open(&kv);
        db.append_unsynced(Some(("nas", &sequence(2))), &samples(1, 1..2, 10_000))
            .unwrap();
        db.checkpoint(false).unwrap();
        assert_eq!(db.wal_settled(), db.kv.log().last_id());
        drop(db);
        assert_eq!(restarted(&kv), Some(2));
    }

    /// A series' definition is written without a sync; the append of its first samples syncs it
    /// before their log record, so a power cut never leaves samples without their series.
    #[test]
    fn a_power_cut_never_keeps_samples_without_their_series() {
        let kv = MemoryKv::with_power_cuts();
        let db = open(&kv);
        let meta = up_series();
        db.create_series(std::slice::from_ref(&meta)).unwrap();
        db.append(None, &samples(1, 0..3, 10_000)).unwrap();
        drop(db);
        kv.power_cut();
        let recovered = Tsdb::open(Box::new(kv.clone()), config()).unwrap();
        assert_eq!(recovered.series, vec![meta]);
        let got = recovered.tsdb.read_raw(SeriesId(1), T0, T0 + 60_000);
        assert_eq!(got.unwrap().len(), 3);
    }

    /// Async callers wait for their records without a thread each: many appends waiting at once
    /// all end durable, and what a power cut keeps is exactly what they were told was durable.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_waited_on_together_are_durable_when_told() {
        let kv = MemoryKv::with_power_cuts();
        let db = Arc::new(open(&kv));
        let meta = up_series();
        db.create_series(std::slice::from_ref(&meta)).unwrap();
        let waits = (0..32).map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let batch = samples(1, i..i + 1, 10_000);
                let (outcome, logged) = db.append_unsynced(None, &batch).unwrap();
                assert_eq!(outcome.accepted, 1);
                db.durable(logged).await.unwrap();
            })
        });
        for wait in waits.collect::<Vec<_>>() {
            wait.await.unwrap();
        }
        // One more written but never waited on: the head has it, a power cut takes it.
        db.append_unsynced(None, &samples(1, 40..41, 10_000))
            .unwrap();
        assert_eq!(
            db.read_raw(SeriesId(1), T0, T0 + 600_000).unwrap().len(),
            33
        );
        drop(db);
        kv.power_cut();
        let recovered = Tsdb::open(Box::new(kv.clone()), config()).unwrap();
        let got = recovered.tsdb.read_raw(SeriesId(1), T0, T0 + 600_000);
        assert_eq!(got.unwrap().len(), 32);
    }

    /// The append that never waits steps aside, having done nothing, while a checkpoint holds
    /// the gate or definitions await their sync; otherwise it appends as the other does.
    #[test]
    fn an_append_that_must_not_wait_steps_aside_and_changes_nothing() {
        let kv = MemoryKv::with_power_cuts();
        let db = open(&kv);
        let read = |db: &Tsdb| db.read_raw(SeriesId(1), T0, T0 + 600_000).unwrap().len();
        db.create_series(std::slice::from_ref(&up_series()))
            .unwrap();
        let stepped = db.try_append_unsynced(None, &samples(1, 0..1, 10_000));
        assert!(stepped.unwrap().is_none(), "a definition awaits its sync");
        assert_eq!(read(&db), 0);
        db.append(None, &samples(1, 0..1, 10_000)).unwrap();

        let cut = db.append_gate.write().unwrap();
        let stepped =
            db.try_append_unsynced(Some(("nas", &sequence(1))), &samples(1, 1..2, 10_000));
        assert!(stepped.unwrap().is_none(), "a checkpoint holds the gate");
        drop(cut);
        assert_eq!(read(&db), 1);
        assert_eq!(db.kv.log().last_id(), 1);

        let (outcome, logged) = db
            .try_append_unsynced(Some(("nas", &sequence(1))), &samples(1, 1..3, 10_000))
            .unwrap()
            .expect("nothing to wait for");
        assert_eq!(outcome.accepted, 2);
        db.sync_log(logged).unwrap();
        drop(db);
        assert_eq!(restarted(&kv), Some(1));
        let db = open(&kv);
        assert_eq!(read(&db), 3);
    }

    /// The head takes an append's samples before the log does, so a log write that fails
    /// fails the store, as a failed sync does: later appends and checkpoints are refused until
    /// a restart's replay brings the head back level with the log.
    #[test]
    fn a_failed_log_write_fails_the_store() {
        let db = open(&MemoryKv::default());
        db.create_series(std::slice::from_ref(&up_series()))
            .unwrap();
        db.append(None, &samples(1, 0..2, 10_000)).unwrap();
        // The log's ids run out: its next write fails.
        db.kv.log().continue_after(u64::MAX);
        assert!(db.append(None, &samples(1, 2..4, 10_000)).is_err());
        assert!(matches!(
            db.append(None, &samples(1, 4..5, 10_000)),
            Err(StoreError::Failed)
        ));
        // The head holds samples the log lacks: no checkpoint may snapshot them.
        assert!(matches!(db.checkpoint(false), Err(StoreError::Failed)));
    }

    /// A checkpoint that found the store sound and then waited at the append gate checks
    /// again once it holds the gate: an append holding it may have failed its log write with
    /// its samples already in the head.
    #[test]
    fn a_checkpoint_waiting_at_the_gate_sees_a_store_failed_meanwhile() {
        let db = open(&MemoryKv::default());
        db.create_series(std::slice::from_ref(&up_series()))
            .unwrap();
        db.append(None, &samples(1, 0..2, 10_000)).unwrap();
        let append = db.append_gate.read().unwrap();
        std::thread::scope(|scope| {
            let checkpoint = scope.spawn(|| db.checkpoint(false));
            // The gate prefers writers: once the checkpoint waits for it, a reader cannot
            // join, so the checkpoint is past its first check.
            while db.append_gate.try_read().is_ok() {
                std::thread::yield_now();
            }
            db.failed.store(true, Ordering::SeqCst);
            drop(append);
            let done = checkpoint.join().unwrap();
            assert!(matches!(done, Err(StoreError::Failed)), "{done:?}");
        });
    }

    /// A store from before the log had its own files keeps its records in the `wal` table: the
    /// first start moves them into the log with their ids, replays them, and empties the table.
    #[test]
    fn records_of_the_older_wal_table_move_into_the_log() {
        let kv = MemoryKv::default();
        let mut batch = KvBatch::default();
        for (id, range) in [(5u64, 0..3), (9, 3..5)] {
            let record = encode_entry(None, &samples(1, range, 10_000));
            batch.put(Table::Wal, id_key(id), &record[1..]);
        }
        kv.write(batch, true).unwrap();
        let db = open(&kv);
        assert_eq!(db.read_raw(SeriesId(1), T0, T0 + 60_000).unwrap().len(), 5);
        assert_eq!(kv.logical_size(Table::Wal).unwrap(), 0);
        let ids: Vec<u64> = db.read_wal(0, 100).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(ids, [5, 9]);
        db.append(None, &samples(1, 5..6, 10_000)).unwrap();
        assert_eq!(db.wal_settled(), 10);
        drop(db);
        let db = open(&kv);
        assert_eq!(db.read_raw(SeriesId(1), T0, T0 + 60_000).unwrap().len(), 6);
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
}

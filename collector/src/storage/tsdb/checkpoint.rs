//! Checkpoints: one atomic, synced batch persists the outbox chunks and rollups, the changed
//! head snapshots and the checkpoint position; then the log segments it covers are released,
//! and rollup buckets that late samples changed are recomputed from raw samples.

use super::Tsdb;
use super::head::{HeadCopy, READ_AHEAD, Samples, encode_head};
use super::keys::{ChunkKey, META_CHECKPOINT, META_STALE_ROLLUPS, RollupKey, day_of, id_key};
use super::read::decode_block;
use crate::storage::chunk::encode_chunk;
use crate::storage::kv::{KvBatch, Table};
use crate::storage::records::{
    CheckpointRecordV1, NodeSequenceRecordV1, Record, StaleRollupsRecordV1,
};
use crate::storage::rollup::{Aggregate, Resolution, block};
use crate::storage::{SeriesId, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What one checkpoint did and how long appends waited for it, for the collector's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Series heads snapshotted.
    pub heads: usize,
    /// Key and value bytes of the atomic batch: chunks, rollups, head snapshots, the checkpoint
    /// record (not the later write of recomputed stale rollups).
    pub bytes: usize,
    /// How long appends were held at the cut (the gate taken exclusively, heads copied).
    pub appends_held: Duration,
    /// How long the synced write of the batch took; appends queue behind it in the store.
    pub write: Duration,
    /// The whole checkpoint.
    pub total: Duration,
}

/// An empty vector with room for `capacity` items, one item in each page of it written: the
/// kernel maps a fresh allocation this large a page at a time, at its first write, and those
/// page faults were half of a cut's time (`just bench-checkpoint`), with every append waiting.
fn touched<T>(capacity: usize) -> Vec<T> {
    const PAGE: usize = 4096;
    let mut items = Vec::with_capacity(capacity);
    // A vector of zero-sized items has no memory (and room for `usize::MAX` of them).
    if let Some(per_page) = PAGE.checked_div(std::mem::size_of::<T>()) {
        for slot in items
            .spare_capacity_mut()
            .iter_mut()
            .step_by(per_page.max(1))
        {
            *slot = MaybeUninit::zeroed();
        }
    }
    std::hint::black_box(&mut items);
    items
}

impl Tsdb {
    /// Heads changed since the last checkpoint.
    fn dirty_heads(&self) -> usize {
        (self.shards.iter())
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).dirty.len())
            .sum()
    }

    /// Persists the head: outbox chunks and rollups, head snapshots, the checkpoint position,
    /// then releases the WAL it covers. With `seal`, open chunks are sealed first (shutdown,
    /// explicit compaction), so everything lands in chunks.
    pub fn checkpoint(&self, seal: bool) -> Result<CheckpointReport, StoreError> {
        let _one = self.checkpointing.lock().unwrap_or_else(|p| p.into_inner());
        if self.failed.load(Ordering::SeqCst) {
            return Err(StoreError::Failed);
        }
        let result = self.checkpoint_locked(seal);
        if result.is_err() {
            self.failed.store(true, Ordering::SeqCst);
        }
        result
    }

    fn checkpoint_locked(&self, seal: bool) -> Result<CheckpointReport, StoreError> {
        let started = Instant::now();
        let mut report = CheckpointReport::default();
        // (series, head to persist, late samples to write as chunks), sized from the heads
        // changed now with room for those that change until the cut; the heads' open chunks
        // are copied into `copied`, sized from the last cut's. Both are touched before the
        // gates are taken.
        let changed = self.dirty_heads();
        let mut snapshots: Vec<(SeriesId, HeadCopy, Samples)> = touched(changed + changed / 16);
        let previous = self.last_cut_bytes.load(Ordering::Relaxed);
        let mut copied: Vec<u8> = touched(previous + previous / 8);
        let _readers = self.flush_gate.write().unwrap_or_else(|p| p.into_inner());
        let mut batch = KvBatch::default();
        let mut stale = Vec::new();
        // Open buckets a seal writes too, at most one per series and resolution.
        let mut open: HashMap<(SeriesId, Resolution), (i64, Aggregate)> = HashMap::new();
        let mut pending = Vec::new();
        let mut chunk_count = 0u64;
        let (wal_upto, sequences);
        {
            let cut = Instant::now();
            let _appends = self.append_gate.write().unwrap_or_else(|p| p.into_inner());
            // Every record up to here is in the head, and the head holds nothing the log
            // lacks: appends hold the gate from their head update through their log write. One
            // whose write failed left its samples in the head and failed the store; they must
            // not reach a snapshot, so a failure is checked again under the gate. Records after
            // it go to a new segment, so the ones before can be released whole.
            if self.failed.load(Ordering::SeqCst) {
                return Err(StoreError::Failed);
            }
            wal_upto = self.kv.log().last_id();
            self.kv.log().rotate();
            sequences =
                std::mem::take(&mut *self.sequences.lock().unwrap_or_else(|p| p.into_inner()));
            snapshots.reserve_exact(self.dirty_heads());
            for shard in &self.shards {
                let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
                let dirty = std::mem::take(&mut shard.dirty);
                // Every append waits while this runs, and each head lies apart from the next:
                // a block's heads are read first, their cache misses overlapping, where each
                // copy waited for its own (some 150,000 heads with 1,000 agents).
                for block in dirty.chunks(READ_AHEAD) {
                    std::hint::black_box(shard.read_ahead_copies(block));
                    for &series in block {
                        if seal {
                            shard.seal(series);
                        }
                        let head = shard.heads.get_mut(&series).expect("dirty heads exist");
                        head.dirty = false;
                        // Copy now, encode after the gate is released, so appends wait only for
                        // memory copies, not for encoding.
                        let late = std::mem::take(&mut head.late);
                        let open_rollups = head.rollups;
                        snapshots.push((series, head.copy_into(&mut copied), late));
                        if seal {
                            // Open buckets go to disk too, so compacted data answers rollup reads
                            // alone; the snapshot keeps accumulating them.
                            for (res, slot) in Resolution::LIVE.into_iter().zip(open_rollups) {
                                if let Some(bucket) = slot {
                                    open.insert((series, res), bucket);
                                }
                            }
                        }
                    }
                }
                for chunk in shard.chunks.drain(..) {
                    let order = (wal_upto, chunk_count as u32);
                    chunk_count += 1;
                    batch.put(
                        Table::Chunks,
                        ChunkKey {
                            series: chunk.series,
                            first_ts: chunk.first_ts,
                            order,
                        }
                        .encode(),
                        chunk.bytes,
                    );
                }
                // Moved out as they are (the map keeps its room for the next ones): decoding
                // them waits until appends may go on.
                pending.extend(shard.rollups.drain());
                stale.extend(shard.stale_rollups.drain());
            }
            report.appends_held = cut.elapsed();
        }
        if !seal {
            // A sealing cut copies empty open chunks: no guide to the next periodic one.
            self.last_cut_bytes.store(copied.len(), Ordering::Relaxed);
        }
        report.heads = snapshots.len();
        // One series and resolution at a time: decoded, a back-fill's finished buckets would
        // take three times their pending bytes, and were held twice at the checkpoint's peak.
        for ((series, res), finished) in pending {
            let mut buckets: Vec<(i64, Aggregate)> =
                open.remove(&(series, res)).into_iter().collect();
            buckets.extend(finished.buckets(res)?);
            self.merge_rollups(&mut batch, res, series, buckets)?;
        }
        for ((series, res), bucket) in open {
            self.merge_rollups(&mut batch, res, series, vec![bucket])?;
        }
        for (series, head, mut late) in snapshots {
            batch.put(
                Table::Head,
                id_key(series.0),
                encode_head(&head.restore(&copied)),
            );
            // Stable sort keeps arrival order within a timestamp; the last arrival wins.
            late.sort_by_key(|s| s.0);
            late.reverse();
            late.dedup_by_key(|s| s.0);
            late.reverse();
            for day_samples in late.chunk_by(|a, b| day_of(a.0) == day_of(b.0)) {
                let order = (wal_upto, chunk_count as u32);
                chunk_count += 1;
                let first_ts = day_samples[0].0;
                batch.put(
                    Table::Chunks,
                    ChunkKey {
                        series,
                        first_ts,
                        order,
                    }
                    .encode(),
                    encode_chunk(day_samples),
                );
            }
        }
        drop(copied);
        if !stale.is_empty() {
            let record = StaleRollupsRecordV1::of(&stale);
            batch.put(Table::Meta, META_STALE_ROLLUPS, record.encode());
        }
        let position = CheckpointRecordV1 {
            wal_position: wal_upto,
        };
        batch.put(Table::Meta, META_CHECKPOINT, position.encode());
        for (node, sequence) in sequences {
            match sequence {
                Some(sequence) => batch.put(
                    Table::NodeSequences,
                    node.as_bytes(),
                    NodeSequenceRecordV1::from(&sequence).encode(),
                ),
                None => batch.delete(Table::NodeSequences, node.as_bytes()),
            }
        }
        report.bytes = batch.bytes();
        // Appends sync after the cut: the records it covers must be on disk before the
        // batch that says so (the node sequences, and the position remote write out's readers
        // trust the log to hold up to).
        self.kv.log().sync_through(wal_upto)?;
        let writing = Instant::now();
        self.kv.write(batch, true)?;
        report.write = writing.elapsed();
        // Only now that the state they produced is durable. A release that fails leaves the
        // segments to the next checkpoint; nothing is lost meanwhile.
        let deletable = self.wal_deletable(wal_upto);
        if let Err(error) = self.kv.log().release(deletable) {
            tracing::warn!(%error, "write-ahead log segments covered by a checkpoint not removed");
        }

        // Buckets changed by late samples are recomputed from raw data, which is idempotent. The
        // list went to disk with the first write, so a crash before this one leaves it to the
        // next start.
        if !stale.is_empty() {
            let mut recomputed: BTreeMap<(SeriesId, Resolution), Vec<(i64, Aggregate)>> =
                BTreeMap::new();
            // A list from before 1 min and 5 min buckets were computed from raw may name some:
            // raw has them right already.
            for (series, res, bucket) in stale.into_iter().filter(|s| s.1.live_slot().is_some()) {
                for (bucket, agg) in self.buckets_from_raw(series, res, bucket, bucket)? {
                    recomputed
                        .entry((series, res))
                        .or_default()
                        .push((bucket, agg));
                }
            }
            let mut batch = KvBatch::default();
            for ((series, res), buckets) in recomputed {
                self.merge_rollups(&mut batch, res, series, buckets)?;
            }
            batch.delete(Table::Meta, META_STALE_ROLLUPS);
            self.kv.write(batch, true)?;
        }
        self.chunks_written
            .fetch_add(chunk_count, Ordering::Relaxed);
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        report.total = started.elapsed();
        Ok(report)
    }

    /// Adds one series' buckets at one resolution to their stored blocks (read, merge, write
    /// back). A bucket already stored is replaced, and of two equal ones given, the later wins.
    /// Only checkpoints write rollups, and they are serialised.
    pub(super) fn merge_rollups(
        &self,
        batch: &mut KvBatch,
        res: Resolution,
        series: SeriesId,
        mut buckets: Vec<(i64, Aggregate)>,
    ) -> Result<(), StoreError> {
        // Stable: equal buckets keep their order, so the later still wins below.
        buckets.sort_by_key(|(bucket, _)| *bucket);
        let same_block = |a: &(i64, Aggregate), b: &(i64, Aggregate)| {
            block::start(res, a.0) == block::start(res, b.0)
        };
        for fresh in buckets.chunk_by(same_block) {
            let start = block::start(res, fresh[0].0);
            let key = RollupKey {
                series,
                block_start: start,
            }
            .encode();
            let mut merged: BTreeMap<i64, Aggregate> = match self.kv.get(res.table(), &key)? {
                Some(bytes) => decode_block(res, start, &bytes)?.into_iter().collect(),
                None => Default::default(),
            };
            merged.extend(fresh.iter().copied());
            let buckets: Vec<(i64, Aggregate)> = merged.into_iter().collect();
            batch.put(res.table(), key, block::encode(res, start, &buckets));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{T0, open};
    use super::*;
    use crate::storage::{MemoryKv, Sample};

    #[test]
    fn touched_vectors_are_empty_with_their_room() {
        let bytes: Vec<u8> = touched(100_000);
        assert!(bytes.is_empty() && bytes.capacity() >= 100_000);
        let wide: Vec<[u64; 1024]> = touched(3);
        assert!(wide.is_empty() && wide.capacity() >= 3);
        // No memory to touch, and room for every count: returns at once.
        let none: Vec<()> = touched(7);
        assert!(none.is_empty());
    }

    /// A back-fill finishes more buckets per series than the head keeps as values: every bucket
    /// reads the same from the head, after the checkpoint and after a restart.
    #[test]
    fn a_backfill_s_rollups_read_the_same_before_and_after_the_checkpoint() {
        let kv = MemoryKv::default();
        let db = open(&kv);
        // Three hours of a counter at 10 s, with a reset, in batches as an agent sends them.
        let samples: Vec<Sample> = (0..3 * 360)
            .map(|i| Sample {
                series: SeriesId(5),
                timestamp_ms: T0 + i * 10_000,
                value: ((i % 500) * 3) as f64 + 0.1,
            })
            .collect();
        for batch in samples.chunks(50) {
            db.append(None, batch).unwrap();
        }
        let raw: Vec<(i64, f64)> = samples.iter().map(|s| (s.timestamp_ms, s.value)).collect();
        let end = T0 + 3 * 3_600_000;
        // Sums and increases are stored rounded to their decimal (see `block::encode`).
        let same = |got: &[(i64, Aggregate)], want: &[(i64, Aggregate)]| {
            got.len() == want.len()
                && got.iter().zip(want).all(|((b1, a1), (b2, a2))| {
                    let near = |x: f64, y: f64| (x - y).abs() <= 1e-9 * y.abs().max(1.0);
                    (b1, a1.count, a1.min, a1.max, a1.last)
                        == (b2, a2.count, a2.min, a2.max, a2.last)
                        && near(a1.sum, a2.sum)
                        && near(a1.increase, a2.increase)
                })
        };
        for res in Resolution::ALL {
            let in_head = db.read_rollup(SeriesId(5), res, T0, end).unwrap();
            assert!(
                same(&in_head, &Aggregate::per_bucket(res, &raw)),
                "{res:?} in the head"
            );
        }
        db.checkpoint(false).unwrap();
        for res in Resolution::ALL {
            let stored = db.read_rollup(SeriesId(5), res, T0, end).unwrap();
            assert!(
                same(&stored, &Aggregate::per_bucket(res, &raw)),
                "{res:?} stored"
            );
        }
        drop(db);
        let db = open(&kv);
        let minutes = db
            .read_rollup(SeriesId(5), Resolution::OneMinute, T0, end)
            .unwrap();
        assert_eq!(minutes.len(), 180, "every minute after a restart");
        assert_eq!(minutes.iter().map(|m| m.1.count).sum::<u64>(), 1080);
    }

    #[test]
    fn rollups_follow_the_data_including_late_samples() {
        let kv = MemoryKv::default();
        let db = open(&kv);
        // Two minutes of a counter at 10 s: 0, 10, 20, ...
        let counter: Vec<Sample> = (0..12)
            .map(|i| Sample {
                series: SeriesId(3),
                timestamp_ms: T0 + i * 10_000,
                value: (i * 10) as f64,
            })
            .collect();
        db.append(None, &counter).unwrap();
        let minute = db
            .read_rollup(SeriesId(3), Resolution::OneMinute, T0, T0 + 60_000)
            .unwrap();
        assert_eq!(minute.len(), 2);
        assert_eq!(
            (minute[0].1.count, minute[0].1.sum, minute[0].1.last),
            (6, 150.0, 50.0)
        );
        assert_eq!(
            minute[1].1.increase, 60.0,
            "the step into the bucket counts"
        );
        // A late sample into the finished first minute is recomputed at checkpoint.
        db.append(
            None,
            &[Sample {
                series: SeriesId(3),
                timestamp_ms: T0 + 55_000,
                value: 1000.0,
            }],
        )
        .unwrap();
        // Another sample closes the second minute, then a checkpoint persists everything.
        db.append(
            None,
            &[Sample {
                series: SeriesId(3),
                timestamp_ms: T0 + 120_000,
                value: 120.0,
            }],
        )
        .unwrap();
        db.checkpoint(false).unwrap();
        let minute = db
            .read_rollup(SeriesId(3), Resolution::OneMinute, T0, T0)
            .unwrap();
        assert_eq!((minute[0].1.count, minute[0].1.max), (7, 1000.0));
        drop(db);
        let db = open(&kv);
        let minutes = db
            .read_rollup(SeriesId(3), Resolution::OneMinute, T0, T0 + 120_000)
            .unwrap();
        assert_eq!(
            minutes.iter().map(|m| m.1.count).collect::<Vec<_>>(),
            vec![7, 6, 1]
        );
    }
}

//! 1 min and 5 min buckets: computed from raw samples while raw retention keeps them, stored
//! just before it drops a day.
//!
//! A 1 min bucket aggregates about six samples at 10 s, a 5 min one thirty. Kept as they
//! ingested, they cost the head an update per sample and a waiting bucket per series and
//! bucket, checkpoints a read-merge-write of their stored blocks, and the disk more bytes than
//! the raw samples they summed (`just bench-ingest`: 2.05 bytes per sample of rollups, most of
//! them 1 min, against 1.12 of raw data; then 0.62 of 5 min and 1 h ones once 1 min buckets were
//! computed). While the samples are there, the same buckets are computed on read: a read of 1
//! min or 5 min buckets reads raw samples from the `raw_rollups` mark on, as Prometheus and
//! VictoriaMetrics read every range. Before retention (or the disk budget) deletes a raw day,
//! the day's buckets are computed once and stored, and the mark moves past it in the same write,
//! so a bucket is always read from exactly one place. Hour buckets stay live (see
//! [`Resolution::LIVE`]): a 30-day chart reads 720 of them per series.
//!
//! A bucket's counter increase counts from the sample before it within `PREV_LOOKBACK_MS`,
//! read from raw or, where raw is gone, from the stored bucket before. A 5 min bucket's
//! [`Edges`] come from the raw samples and staleness markers around it, so instant selectors
//! answer from it exactly as from raw. Checkpoints recompute the hour buckets a late sample
//! changed the same way.

use super::Tsdb;
use super::head::snapshot_buckets_not_live;
use super::keys::{
    DAY_MS, META_MINUTE_ROLLUPS, META_RAW_ROLLUPS, RollupKey, SCAN_END, day_of, day_start,
    parse_id, parse_series,
};
use crate::storage::kv::{KvBatch, Table};
use crate::storage::records::{MinuteRollupsRecordV1, RawRollupsRecordV1, Record};
use crate::storage::rollup::{Aggregate, Edges, Resolution, block};
use crate::storage::{SeriesId, StoreError, is_stale_marker};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

/// How far before a bucket its counter's previous sample is looked for (at least a bucket).
pub(super) const PREV_LOOKBACK_MS: i64 = 15 * 60 * 1000;

/// Series whose day of buckets go to the store in one write.
const SERIES_PER_WRITE: usize = 1000;

/// The resolutions computed from raw samples while raw retention keeps them.
fn from_raw() -> impl Iterator<Item = Resolution> {
    Resolution::ALL
        .into_iter()
        .filter(|res| res.live_slot().is_none())
}

impl Tsdb {
    /// Reads the mark at opening. A store from before 5 min buckets were computed from raw has
    /// them stored up to now, and one from before 1 min buckets were has those too: there, the
    /// mark starts where the old one for 1 min buckets stood, or else at the oldest raw day
    /// (reads can compute from it on), and the stored buckets it shadows are deleted with the
    /// write that sets it.
    pub(super) fn load_raw_rollups_mark(&self) -> Result<(), StoreError> {
        let day = match self.kv.get(Table::Meta, META_RAW_ROLLUPS)? {
            Some(bytes) => RawRollupsRecordV1::decode(&bytes)?.computed_from_day,
            None => {
                let day = match self.kv.get(Table::Meta, META_MINUTE_ROLLUPS)? {
                    Some(bytes) => Some(MinuteRollupsRecordV1::decode(&bytes)?.computed_from_day),
                    None => self.oldest_computable_day()?,
                };
                match day {
                    Some(day) => {
                        let mut batch = KvBatch::default();
                        for res in from_raw() {
                            batch.delete_range(res.table(), day.to_be_bytes(), [0xff; 5]);
                        }
                        self.store_snapshot_buckets_before(&mut batch, day)?;
                        batch.delete(Table::Meta, META_MINUTE_ROLLUPS);
                        self.write_raw_rollups_mark(batch, day)?;
                        day
                    }
                    None => 0,
                }
            }
        };
        self.raw_rollups_from.store(day, Ordering::SeqCst);
        Ok(())
    }

    /// Puts in `batch` the open 1 min and 5 min buckets of head snapshots written before those
    /// were computed from raw, where they start before `day`: a series that went quiet kept its
    /// last bucket open in its head, and from now on its day is read from stored blocks only.
    fn store_snapshot_buckets_before(
        &self,
        batch: &mut KvBatch,
        day: u32,
    ) -> Result<(), StoreError> {
        let mut open: BTreeMap<(SeriesId, Resolution), Vec<(i64, Aggregate)>> = BTreeMap::new();
        let mut failure = None;
        self.kv
            .scan(Table::Head, &[], SCAN_END, &mut |key, value| {
                let series = match parse_id(Table::Head, key) {
                    Ok(id) => SeriesId(id),
                    Err(error) => {
                        failure = Some(error);
                        return false;
                    }
                };
                for (res, bucket, agg) in snapshot_buckets_not_live(value) {
                    if day_of(bucket) < day {
                        open.entry((series, res)).or_default().push((bucket, agg));
                    }
                }
                true
            })?;
        if let Some(error) = failure {
            return Err(error);
        }
        for ((series, res), buckets) in open {
            self.merge_rollups(batch, res, series, buckets)?;
        }
        Ok(())
    }

    /// In a store without a mark: `None` if it has no stored 1 min or 5 min buckets, else the
    /// oldest raw day, or the day after the newest stored bucket's where there is no raw day.
    fn oldest_computable_day(&self) -> Result<Option<u32>, StoreError> {
        let mut newest_stored = None;
        for res in from_raw() {
            let days = self.days_with_data(res.table(), 0, u32::MAX)?;
            newest_stored = newest_stored.max(days.last().copied());
        }
        let Some(newest) = newest_stored else {
            return Ok(None);
        };
        Ok(Some(match self.first_day_start(Table::Chunks)? {
            Some(start) => day_of(start),
            None => newest.saturating_add(1),
        }))
    }

    fn write_raw_rollups_mark(&self, mut batch: KvBatch, day: u32) -> Result<(), StoreError> {
        let record = RawRollupsRecordV1 {
            computed_from_day: day,
        };
        batch.put(Table::Meta, META_RAW_ROLLUPS, record.encode());
        self.kv.write(batch, true)
    }

    /// Start of the first day whose 1 min and 5 min buckets are computed from raw samples.
    pub(super) fn raw_rollups_start(&self) -> i64 {
        day_start(self.raw_rollups_from.load(Ordering::SeqCst))
    }

    /// The buckets of `res` starting in `[start, end]`, computed from raw samples, with their
    /// edges where `res` keeps them. The caller holds `flush_gate`.
    pub(super) fn buckets_from_raw(
        &self,
        series: SeriesId,
        res: Resolution,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        let first = match res.bucket(start) {
            b if b < start => b.saturating_add(res.millis()),
            b => b,
        };
        let before = first.saturating_sub(res.millis().max(PREV_LOOKBACK_MS));
        // Through the last bucket's end: a marker there is one of its edges.
        let entries = self.read_raw_ungated(series, before, end.saturating_add(res.millis()))?;
        let raw: Vec<(i64, f64)> = entries
            .iter()
            .copied()
            .filter(|s| !is_stale_marker(s.1))
            .collect();
        let split = raw.partition_point(|s| s.0 < first);
        let prev = match split.checked_sub(1) {
            Some(i) => Some(raw[i].1),
            None if res.live_slot().is_none() && before < self.raw_rollups_start() => {
                let mut stored = BTreeMap::new();
                let last = (first - 1).min(self.raw_rollups_start() - 1);
                self.read_stored_rollups(series, res, before, last, &mut stored)?;
                stored.values().next_back().map(|agg| agg.last)
            }
            None => None,
        };
        let mut buckets = Aggregate::per_bucket_after(res, &raw[split..], prev);
        buckets.retain(|(bucket, _)| *bucket <= end);
        if res.keeps_edges() {
            for (bucket, agg) in &mut buckets {
                agg.edges = Some(edges_in(&entries, res, *bucket, agg.last_ts));
            }
        }
        Ok(buckets)
    }

    /// Stores the 1 min and 5 min buckets of every day before `day` still computed from raw, a
    /// day at a time, moving the mark past each with its last write. Retention calls it before
    /// deleting raw days.
    pub(super) fn store_raw_rollups_before(&self, day: u32) -> Result<(), StoreError> {
        let _one = self
            .storing_raw_rollups
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let from = self.raw_rollups_from.load(Ordering::SeqCst);
        if day <= from {
            return Ok(());
        }
        let mut days: BTreeSet<u32> = self
            .days_with_data(Table::Chunks, from, day - 1)?
            .into_iter()
            .collect();
        let held = self.head_series_by_day(from, day - 1);
        days.extend(held.keys());
        for d in days {
            let mut series: BTreeSet<SeriesId> = self.series_on_day(d)?;
            series.extend(held.get(&d).into_iter().flatten());
            let series: Vec<SeriesId> = series.into_iter().collect();
            // Written a thousand series at a time, the last with the mark: a crash between
            // leaves the day computed from raw, which is still there.
            let mut batch = KvBatch::default();
            for group in series.chunks(SERIES_PER_WRITE) {
                if !batch.is_empty() {
                    self.kv.write(std::mem::take(&mut batch), false)?;
                }
                for &id in group {
                    for res in from_raw() {
                        self.put_day_of_buckets(&mut batch, id, res, d)?;
                    }
                }
            }
            self.write_raw_rollups_mark(batch, d + 1)?;
            self.raw_rollups_from.store(d + 1, Ordering::SeqCst);
        }
        self.write_raw_rollups_mark(KvBatch::default(), day)?;
        self.raw_rollups_from.store(day, Ordering::SeqCst);
        Ok(())
    }

    /// Puts the blocks of `res` of one series and day, computed from raw, in `batch`; they
    /// replace any stored before.
    fn put_day_of_buckets(
        &self,
        batch: &mut KvBatch,
        series: SeriesId,
        res: Resolution,
        day: u32,
    ) -> Result<(), StoreError> {
        let buckets = {
            let _gate = self.flush_gate.read().unwrap_or_else(|p| p.into_inner());
            self.buckets_from_raw(series, res, day_start(day), day_start(day) + DAY_MS - 1)?
        };
        for blk in buckets.chunk_by(|a, b| block::start(res, a.0) == block::start(res, b.0)) {
            let block_start = block::start(res, blk[0].0);
            let key = RollupKey {
                series,
                block_start,
            };
            batch.put(
                res.table(),
                key.encode(),
                block::encode(res, block_start, blk),
            );
        }
        Ok(())
    }

    /// The series with stored chunks on `day`: one seek per series.
    fn series_on_day(&self, day: u32) -> Result<BTreeSet<SeriesId>, StoreError> {
        let mut found = BTreeSet::new();
        let end = day.saturating_add(1).to_be_bytes();
        let mut from = day.to_be_bytes().to_vec();
        loop {
            let mut next = None;
            self.kv.scan(Table::Chunks, &from, &end, &mut |k, _| {
                next = Some(parse_series(Table::Chunks, k));
                false
            })?;
            let Some(series) = next.transpose()? else {
                return Ok(found);
            };
            found.insert(series);
            let Some(after) = series.0.checked_add(1) else {
                return Ok(found);
            };
            from = day.to_be_bytes().to_vec();
            from.extend_from_slice(&after.to_be_bytes());
        }
    }

    /// Series whose samples in the head (open or sealed chunks not yet checkpointed) begin on a
    /// day in `[first, last]`, by day: a series that went quiet keeps its open chunk in the head.
    fn head_series_by_day(&self, first: u32, last: u32) -> BTreeMap<u32, Vec<SeriesId>> {
        let mut days: BTreeMap<u32, Vec<SeriesId>> = BTreeMap::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let open = shard
                .heads
                .iter()
                .filter_map(|(id, head)| Some((*id, head.open.first_ts()?)));
            let sealed = shard.chunks.iter().map(|c| (c.series, c.first_ts));
            for (id, first_ts) in open.chain(sealed) {
                let day = day_of(first_ts);
                if (first..=last).contains(&day) {
                    days.entry(day).or_default().push(id);
                }
            }
        }
        days
    }
}

/// The edges of the bucket of `res` starting at `bucket`, whose newest sample is at `last_ts`,
/// from `entries`: raw samples and staleness markers in time order, through the bucket's end.
/// Only a marker by the bucket's end matters to an instant selector at that end, so none later
/// counts.
fn edges_in(entries: &[(i64, f64)], res: Resolution, bucket: i64, last_ts: i64) -> Edges {
    let first = entries.partition_point(|s| s.0 < bucket);
    let at_start = entries
        .get(first)
        .filter(|(ts, v)| *ts == bucket && !is_stale_marker(*v))
        .map(|(_, v)| *v);
    let after = entries.partition_point(|s| s.0 <= last_ts);
    let ended_at = entries
        .get(after)
        .filter(|(ts, v)| *ts <= bucket.saturating_add(res.millis()) && is_stale_marker(*v))
        .map(|(ts, _)| *ts);
    Edges { at_start, ended_at }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{T0, config};
    use super::super::{RetentionConfig, StorageConfig};
    use super::*;
    use crate::storage::{Kv, MemoryKv, STALE_MARKER, Sample};
    use std::time::Duration;

    /// Three days of a counter at 30 s with a reset, a 10 min gap opened by a staleness marker,
    /// and a sample on every 5 min boundary, raw kept one day: every 1 min and 5 min bucket
    /// (5 min ones with their edges) reads the same computed from raw, stored once retention
    /// dropped its raw day, after a restart, and in stores from before the mark existed or
    /// covered 5 min buckets.
    #[test]
    fn buckets_read_the_same_once_raw_retention_dropped_their_samples() {
        let kv = MemoryKv::default();
        let keep_one_day = StorageConfig {
            retention: RetentionConfig {
                raw: Duration::from_secs(86_400),
                ..RetentionConfig::default()
            },
            ..config()
        };
        let open = || {
            Tsdb::open(Box::new(kv.clone()), keep_one_day.clone())
                .unwrap()
                .tsdb
        };
        let db = open();
        let samples: Vec<Sample> = (0..3 * 2880)
            .filter(|i| !(3001..3020).contains(i))
            .map(|i| Sample {
                series: SeriesId(4),
                timestamp_ms: T0 + i * 30_000,
                value: if i == 3000 {
                    STALE_MARKER
                } else {
                    ((i % 4000) * 7) as f64
                },
            })
            .collect();
        for batch in samples.chunks(500) {
            db.append(None, batch).unwrap();
        }
        db.checkpoint(false).unwrap();
        let raw: Vec<(i64, f64)> = samples
            .iter()
            .map(|s| (s.timestamp_ms, s.value))
            .filter(|s| !is_stale_marker(s.1))
            .collect();
        let read = |db: &Tsdb, res| {
            db.read_rollup(SeriesId(4), res, T0, T0 + 3 * DAY_MS)
                .unwrap()
        };
        let without_edges = |mut buckets: Vec<(i64, Aggregate)>| {
            buckets.iter_mut().for_each(|(_, agg)| agg.edges = None);
            buckets
        };
        let minutes = Aggregate::per_bucket(Resolution::OneMinute, &raw);
        let fives = read(&db, Resolution::FiveMinutes);
        assert_eq!(
            read(&db, Resolution::OneMinute),
            minutes,
            "computed from raw"
        );
        assert_eq!(
            without_edges(fives.clone()),
            Aggregate::per_bucket(Resolution::FiveMinutes, &raw)
        );
        let ended = fives
            .iter()
            .find(|(b, _)| *b == T0 + 3000 * 30_000 - 300_000);
        let edges = ended.and_then(|(_, agg)| agg.edges);
        let at_start = Some((2990 * 7) as f64);
        let ended_at = Some(T0 + 3000 * 30_000);
        assert_eq!(
            edges,
            Some(Edges { at_start, ended_at }),
            "the marker ends it"
        );
        assert!(fives.iter().all(|(_, agg)| agg.edges.is_some()));
        for res in from_raw() {
            assert_eq!(db.first_day_start(res.table()).unwrap(), None);
        }
        let expect = |db: &Tsdb, when: &str| {
            assert_eq!(read(db, Resolution::OneMinute), minutes, "{when}");
            assert_eq!(read(db, Resolution::FiveMinutes), fives, "{when}");
        };

        db.enforce_retention(T0 + 3 * DAY_MS + 60_000).unwrap();
        assert!(
            db.read_raw(SeriesId(4), T0, T0 + 2 * DAY_MS - 1)
                .unwrap()
                .is_empty(),
            "two raw days dropped"
        );
        for res in from_raw() {
            assert_eq!(db.first_day_start(res.table()).unwrap(), Some(T0));
        }
        expect(&db, "two days stored, one computed");
        drop(db);
        expect(&open(), "after a restart");

        // A store from before 5 min buckets were computed: its mark covers 1 min ones only, and
        // its 5 min ones are stored on the days raw still holds too (here, made up).
        let mut batch = KvBatch::default();
        let shadowed = RollupKey {
            series: SeriesId(4),
            block_start: block::start(Resolution::FiveMinutes, T0 + 2 * DAY_MS),
        };
        let made_up = [(T0 + 2 * DAY_MS, Aggregate::new(T0 + 2 * DAY_MS, -1.0, 0.0))];
        let res = Resolution::FiveMinutes;
        let block = block::encode(res, shadowed.block_start, &made_up);
        batch.put(Table::Rollup5m, shadowed.encode(), block);
        batch.delete(Table::Meta, META_RAW_ROLLUPS);
        let old_mark = MinuteRollupsRecordV1 {
            computed_from_day: day_of(T0) + 2,
        };
        batch.put(Table::Meta, META_MINUTE_ROLLUPS, old_mark.encode());
        // A series that went quiet on the first day kept its last 5 min bucket open in its
        // head snapshot, in the layout of then (last sample, then the 1 min, 5 min and 1 h
        // slots): it is stored, as nothing else holds it once raw is gone.
        let quiet = (T0 + 600_000, Aggregate::new(T0 + 630_000, 3.5, 0.0));
        let mut snapshot = vec![0, 0, 1];
        snapshot.extend_from_slice(&quiet.0.to_le_bytes());
        snapshot.extend_from_slice(&quiet.1.encode());
        snapshot.push(0);
        batch.put(Table::Head, super::super::keys::id_key(9), snapshot);
        kv.write(batch, true).unwrap();
        let db = open();
        expect(&db, "from a store with the 1 min mark only");
        let res = Resolution::FiveMinutes;
        assert_eq!(
            db.read_rollup(SeriesId(9), res, T0, T0 + 3 * DAY_MS)
                .unwrap(),
            vec![quiet]
        );
        drop(db);
        assert_eq!(kv.get(Table::Rollup5m, &shadowed.encode()).unwrap(), None);
        assert_eq!(kv.get(Table::Meta, META_MINUTE_ROLLUPS).unwrap(), None);

        // A store from before any: its buckets stored, no mark; raw begins on the third day.
        let mut batch = KvBatch::default();
        batch.delete(Table::Meta, META_RAW_ROLLUPS);
        kv.write(batch, true).unwrap();
        expect(&open(), "from a store without a mark");
    }
}

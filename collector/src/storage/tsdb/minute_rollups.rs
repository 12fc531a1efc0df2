//! 1 min buckets: computed from raw samples while raw retention keeps them, stored just before
//! it drops a day.
//!
//! A 1 min bucket aggregates about six samples at 10 s. Kept as it ingested, it cost the head an
//! update per sample and a waiting bucket per series and minute, and its stored block took more
//! bytes than the raw samples it summed (`just bench-ingest`: 2.05 bytes per sample of rollups,
//! most of them 1 min, against 1.12 of raw data). While the samples are there, it is the same
//! computed on read: a read of 1 min buckets reads raw samples from `minutes_from_raw` on. Before
//! retention (or the disk budget) deletes a raw day, the day's buckets are computed once and
//! stored, and the mark moves past it in the same write, so a bucket is always read from exactly
//! one place.
//!
//! A bucket's counter increase counts from the sample before it within `PREV_LOOKBACK_MS`,
//! read from raw or, where raw is gone, from the stored bucket before. Checkpoints recompute
//! 5 min and 1 h buckets a late sample changed the same way, with their edges.

use super::Tsdb;
use super::keys::{DAY_MS, META_MINUTE_ROLLUPS, RollupKey, day_of, day_start, parse_series};
use crate::storage::kv::{KvBatch, Table};
use crate::storage::records::{MinuteRollupsRecordV1, Record};
use crate::storage::rollup::{Aggregate, Edges, Resolution, block};
use crate::storage::{SeriesId, StoreError, is_stale_marker};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

/// How far before a bucket its counter's previous sample is looked for (at least a bucket).
pub(super) const PREV_LOOKBACK_MS: i64 = 15 * 60 * 1000;

/// Series whose day of buckets go to the store in one write.
const SERIES_PER_WRITE: usize = 1000;

impl Tsdb {
    /// Reads the mark at opening. A store from before 1 min buckets were computed from raw has
    /// them stored up to now: there, the mark starts at the oldest raw day, where reads can
    /// compute them.
    pub(super) fn load_minute_rollups_mark(&self) -> Result<(), StoreError> {
        let day = match self.kv.get(Table::Meta, META_MINUTE_ROLLUPS)? {
            Some(bytes) => MinuteRollupsRecordV1::decode(&bytes)?.computed_from_day,
            None if self.has_any(Table::Rollup1m)? => {
                // Without raw days, after the newest stored minute's day.
                let day = match self.first_day_start(Table::Chunks)? {
                    Some(start) => day_of(start),
                    None => self
                        .days_with_data(Table::Rollup1m, 0, u32::MAX)?
                        .last()
                        .map_or(0, |d| d.saturating_add(1)),
                };
                self.write_minutes_mark(KvBatch::default(), day)?;
                day
            }
            None => 0,
        };
        self.minutes_from_raw.store(day, Ordering::SeqCst);
        Ok(())
    }

    fn has_any(&self, table: Table) -> Result<bool, StoreError> {
        let mut any = false;
        self.kv.scan(table, &[], &[0xff; 5], &mut |_, _| {
            any = true;
            false
        })?;
        Ok(any)
    }

    fn write_minutes_mark(&self, mut batch: KvBatch, day: u32) -> Result<(), StoreError> {
        let record = MinuteRollupsRecordV1 {
            computed_from_day: day,
        };
        batch.put(Table::Meta, META_MINUTE_ROLLUPS, record.encode());
        self.kv.write(batch, true)
    }

    /// Start of the first day whose 1 min buckets are computed from raw samples.
    pub(super) fn minutes_from_raw_start(&self) -> i64 {
        day_start(self.minutes_from_raw.load(Ordering::SeqCst))
    }

    /// The buckets of `res` starting in `[start, end]`, computed from raw samples. The caller
    /// holds `flush_gate`.
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
        let mut raw =
            self.read_raw_ungated(series, before, end.saturating_add(res.millis() - 1))?;
        raw.retain(|s| !is_stale_marker(s.1));
        let split = raw.partition_point(|s| s.0 < first);
        let prev = match split.checked_sub(1) {
            Some(i) => Some(raw[i].1),
            None if res.live_slot().is_none() && before < self.minutes_from_raw_start() => {
                let mut stored = BTreeMap::new();
                let last = (first - 1).min(self.minutes_from_raw_start() - 1);
                self.read_stored_rollups(series, res, before, last, &mut stored)?;
                stored.values().next_back().map(|agg| agg.last)
            }
            None => None,
        };
        let mut buckets = Aggregate::per_bucket_after(res, &raw[split..], prev);
        buckets.retain(|(bucket, _)| *bucket <= end);
        Ok(buckets)
    }

    /// The edges of the bucket of `res` starting at `bucket`, whose newest sample is at
    /// `last_ts`, from raw samples and markers. The caller holds `flush_gate`. Only a marker by
    /// the bucket's end matters to an instant selector at that end, so none later is looked for.
    pub(super) fn edges_from_raw(
        &self,
        series: SeriesId,
        res: Resolution,
        bucket: i64,
        last_ts: i64,
    ) -> Result<Edges, StoreError> {
        let entries = self.read_raw_ungated(series, bucket, bucket.saturating_add(res.millis()))?;
        let at_start = entries
            .first()
            .filter(|(ts, v)| *ts == bucket && !is_stale_marker(*v))
            .map(|(_, v)| *v);
        let ended_at = entries
            .iter()
            .find(|(ts, _)| *ts > last_ts)
            .filter(|(_, v)| is_stale_marker(*v))
            .map(|(ts, _)| *ts);
        Ok(Edges { at_start, ended_at })
    }

    /// Stores the 1 min buckets of every day before `day` still computed from raw, a day at a
    /// time, moving the mark past each with its last write. Retention calls it before deleting
    /// raw days.
    pub(super) fn store_minutes_before(&self, day: u32) -> Result<(), StoreError> {
        let _one = self
            .storing_minutes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let from = self.minutes_from_raw.load(Ordering::SeqCst);
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
                    self.put_day_of_minutes(&mut batch, id, d)?;
                }
            }
            self.write_minutes_mark(batch, d + 1)?;
            self.minutes_from_raw.store(d + 1, Ordering::SeqCst);
        }
        self.write_minutes_mark(KvBatch::default(), day)?;
        self.minutes_from_raw.store(day, Ordering::SeqCst);
        Ok(())
    }

    /// Puts the 1 min blocks of one series and day, computed from raw, in `batch`; they replace
    /// any stored before.
    fn put_day_of_minutes(
        &self,
        batch: &mut KvBatch,
        series: SeriesId,
        day: u32,
    ) -> Result<(), StoreError> {
        let res = Resolution::OneMinute;
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
                Table::Rollup1m,
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

#[cfg(test)]
mod tests {
    use super::super::testing::{T0, config};
    use super::super::{RetentionConfig, StorageConfig};
    use super::*;
    use crate::storage::{Kv, MemoryKv, Sample};
    use std::time::Duration;

    /// Three days of a counter at 30 s with a reset and a 10 min gap, raw kept one day: every
    /// 1 min bucket reads the same computed from raw, stored once retention dropped its raw
    /// day, after a restart, and in a store from before the mark existed.
    #[test]
    fn minutes_read_the_same_once_raw_retention_dropped_their_samples() {
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
            .filter(|i| !(3000..3020).contains(i))
            .map(|i| Sample {
                series: SeriesId(4),
                timestamp_ms: T0 + i * 30_000,
                value: ((i % 4000) * 7) as f64,
            })
            .collect();
        for batch in samples.chunks(500) {
            db.append(None, batch).unwrap();
        }
        db.checkpoint(false).unwrap();
        let raw: Vec<(i64, f64)> = samples.iter().map(|s| (s.timestamp_ms, s.value)).collect();
        let minutes = |db: &Tsdb| {
            db.read_rollup(SeriesId(4), Resolution::OneMinute, T0, T0 + 3 * DAY_MS)
                .unwrap()
        };
        let expected = Aggregate::per_bucket(Resolution::OneMinute, &raw);
        assert_eq!(minutes(&db), expected, "computed from raw");
        assert_eq!(db.first_day_start(Table::Rollup1m).unwrap(), None);

        db.enforce_retention(T0 + 3 * DAY_MS + 60_000).unwrap();
        assert!(
            db.read_raw(SeriesId(4), T0, T0 + 2 * DAY_MS - 1)
                .unwrap()
                .is_empty(),
            "two raw days dropped"
        );
        assert_eq!(db.first_day_start(Table::Rollup1m).unwrap(), Some(T0));
        assert_eq!(minutes(&db), expected, "two days stored, one computed");
        drop(db);
        assert_eq!(minutes(&open()), expected, "after a restart");

        // A store from before: its minutes stored, no mark; raw begins on the third day.
        kv.write(
            {
                let mut batch = KvBatch::default();
                batch.delete(Table::Meta, META_MINUTE_ROLLUPS);
                batch
            },
            true,
        )
        .unwrap();
        assert_eq!(minutes(&open()), expected, "from a store without the mark");
    }
}

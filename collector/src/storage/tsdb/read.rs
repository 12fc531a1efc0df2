//! Reads: raw samples from stored chunks merged with the checkpoint outbox and the head, newest
//! write winning a repeated timestamp; rollup buckets likewise.

use super::Tsdb;
use super::head::OutChunk;
use super::keys::{
    ChunkKey, RollupKey, WriteOrder, day_of, day_start, parse_day, series_day_range,
};
use crate::storage::chunk::decode_chunk;
use crate::storage::kv::Table;
use crate::storage::rollup::{Aggregate, Resolution, block};
use crate::storage::{SeriesId, StoreError, is_stale_marker};
use std::collections::BTreeMap;

impl Tsdb {
    /// The day partitions of `table` in `[first, last]` that hold any data, found with one seek
    /// per existing day, so an unbounded time range costs no more than the data kept.
    pub(super) fn days_with_data(
        &self,
        table: Table,
        first: u32,
        last: u32,
    ) -> Result<Vec<u32>, StoreError> {
        let end: Vec<u8> = match last.checked_add(1) {
            Some(after) => after.to_be_bytes().to_vec(),
            None => vec![0xff; 5],
        };
        let mut days = Vec::new();
        let mut from = first;
        loop {
            let mut found = None;
            self.kv
                .scan(table, &from.to_be_bytes(), &end, &mut |k, _| {
                    found = Some(parse_day(table, k));
                    false
                })?;
            let Some(day) = found.transpose()? else {
                return Ok(days);
            };
            days.push(day);
            match day.checked_add(1) {
                Some(next) if next <= last => from = next,
                _ => return Ok(days),
            }
        }
    }

    /// Start of the oldest day of `table` holding any data (one seek); none while nothing of it
    /// has been checkpointed. Where the store's history begins, to the day: retention and the
    /// collector's first day both leave that day partly empty.
    pub fn first_day_start(&self, table: Table) -> Result<Option<i64>, StoreError> {
        let mut found = None;
        self.kv.scan(table, &[], &[0xff; 5], &mut |k, _| {
            found = Some(parse_day(table, k));
            false
        })?;
        Ok(found.transpose()?.map(day_start))
    }

    /// The newest in-order sample of a series; none once a staleness marker ended it.
    pub fn latest(&self, series: SeriesId) -> Option<(i64, f64)> {
        self.shard(series)
            .heads
            .get(&series)
            .and_then(|h| h.current())
    }

    /// Samples of a series with `start <= ts <= end`, in time order, one per timestamp;
    /// staleness markers left out.
    pub fn read_raw(
        &self,
        series: SeriesId,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        let mut samples = self.read_raw_with_markers(series, start, end)?;
        samples.retain(|s| !is_stale_marker(s.1));
        Ok(samples)
    }

    /// [`Tsdb::read_raw`] with the staleness markers kept, for PromQL, which ends a series'
    /// lookback at one.
    pub fn read_raw_with_markers(
        &self,
        series: SeriesId,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        let _gate = self.flush_gate.read().unwrap_or_else(|p| p.into_inner());
        self.read_raw_ungated(series, start, end)
    }

    /// [`Tsdb::read_raw_with_markers`] for a caller that holds `flush_gate` already (a
    /// checkpoint).
    pub(super) fn read_raw_ungated(
        &self,
        series: SeriesId,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        if start > end {
            return Ok(Vec::new());
        }
        let mut stored: Vec<(WriteOrder, Vec<(i64, f64)>)> = Vec::new();
        let mut failure = None;
        for day in self.days_with_data(Table::Chunks, day_of(start), day_of(end))? {
            let (from, to) = series_day_range(day, series);
            self.kv.scan(Table::Chunks, &from, &to, &mut |k, v| {
                let key = match ChunkKey::parse(k) {
                    Ok(key) => key,
                    Err(e) => {
                        failure = Some(e);
                        return false;
                    }
                };
                if key.first_ts > end {
                    return false;
                }
                match decode_stored_chunk(v) {
                    Ok(samples) => stored.push((
                        key.order,
                        samples
                            .into_iter()
                            .filter(|s| s.0 >= start && s.0 <= end)
                            .collect(),
                    )),
                    Err(e) => failure = Some(e),
                }
                failure.is_none()
            })?;
        }
        if let Some(e) = failure {
            return Err(e);
        }
        // Oldest write first, so that merging keeps the newest value of a repeated timestamp.
        stored.sort_by_key(|(order, _)| *order);
        let mut out: Vec<(i64, f64)> = stored.into_iter().flat_map(|(_, s)| s).collect();
        {
            let shard = self.shard(series);
            // A chunk spans less than `max_chunk_span`: those that cannot reach into the range
            // are not decoded (after a back-fill the outbox holds days of one series).
            let span = self.config.max_chunk_span.as_millis() as i64;
            let wanted = |c: &&OutChunk| {
                c.series == series && c.first_ts <= end && c.first_ts.saturating_add(span) > start
            };
            for chunk in shard.chunks.iter().filter(wanted) {
                let samples = decode_stored_chunk(&chunk.bytes)?;
                out.extend(samples.into_iter().filter(|s| s.0 >= start && s.0 <= end));
            }
            if let Some(head) = shard.heads.get(&series) {
                // Late samples arrived after the open chunk's: for a repeated time they win.
                out.extend(
                    head.open
                        .samples()
                        .iter()
                        .chain(&head.late)
                        .filter(|s| s.0 >= start && s.0 <= end),
                );
            }
        }
        if !out.is_sorted_by(|a, b| a.0 < b.0) {
            // Late samples and overlapping chunks: order them, keeping the newest write per time.
            let mut indexed: Vec<(usize, (i64, f64))> = out.into_iter().enumerate().collect();
            indexed.sort_by_key(|(i, s)| (s.0, *i));
            indexed.dedup_by(|later, earlier| {
                if later.1.0 == earlier.1.0 {
                    *earlier = *later;
                    true
                } else {
                    false
                }
            });
            out = indexed.into_iter().map(|(_, s)| s).collect();
        }
        Ok(out)
    }

    /// Rollup buckets of a series starting in `[start, end]`, in time order. Those of 1 min and
    /// 5 min from the start of the first day still in raw on are computed from raw samples (see
    /// `raw_rollups.rs`); the others are stored, waiting for a checkpoint, or open.
    pub fn read_rollup(
        &self,
        series: SeriesId,
        res: Resolution,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        let _gate = self.flush_gate.read().unwrap_or_else(|p| p.into_inner());
        let mut found: BTreeMap<i64, Aggregate> = Default::default();
        if start > end {
            return Ok(Vec::new());
        }
        let Some(slot) = res.live_slot() else {
            let from_raw = self.raw_rollups_start();
            self.read_stored_rollups(series, res, start, end.min(from_raw - 1), &mut found)?;
            if end >= from_raw {
                found.extend(self.buckets_from_raw(series, res, start.max(from_raw), end)?);
            }
            return Ok(found.into_iter().collect());
        };
        self.read_stored_rollups(series, res, start, end, &mut found)?;
        let shard = self.shard(series);
        if let Some(pending) = shard.rollups.get(&(series, res)) {
            for (bucket, agg) in pending.buckets(res)? {
                if (start..=end).contains(&bucket) {
                    found.insert(bucket, agg);
                }
            }
        }
        if let Some((bucket, agg)) = shard
            .heads
            .get(&series)
            .and_then(|h| h.rollups[slot])
            .filter(|(bucket, _)| (start..=end).contains(bucket))
        {
            found.insert(bucket, agg);
        }
        // A late sample changed these after they finished; until the checkpoint recomputes
        // them, their edges may be wrong.
        if !shard.stale_rollups.is_empty() {
            for (bucket, agg) in &mut found {
                if shard.stale_rollups.contains(&(series, res, *bucket)) {
                    agg.edges = None;
                }
            }
        }
        Ok(found.into_iter().collect())
    }

    /// Stored rollup buckets of a series starting in `[start, end]`, into `found`.
    pub(super) fn read_stored_rollups(
        &self,
        series: SeriesId,
        res: Resolution,
        start: i64,
        end: i64,
        found: &mut BTreeMap<i64, Aggregate>,
    ) -> Result<(), StoreError> {
        if start > end {
            return Ok(());
        }
        let mut failure = None;
        for day in self.days_with_data(res.table(), day_of(start), day_of(end))? {
            let (from, to) = series_day_range(day, series);
            self.kv.scan(res.table(), &from, &to, &mut |k, v| {
                let key = match RollupKey::parse(res.table(), k) {
                    Ok(key) => key,
                    Err(e) => {
                        failure = Some(e);
                        return false;
                    }
                };
                if key.block_start > end {
                    return false;
                }
                match decode_block(res, key.block_start, v) {
                    Ok(buckets) => found.extend(
                        buckets
                            .into_iter()
                            .filter(|(b, _)| (start..=end).contains(b)),
                    ),
                    Err(e) => failure = Some(e),
                }
                failure.is_none()
            })?;
        }
        failure.map_or(Ok(()), Err)
    }
}

/// A chunk's samples; the chunk is a `chunks` value (or one on its way there).
fn decode_stored_chunk(bytes: &[u8]) -> Result<Vec<(i64, f64)>, StoreError> {
    decode_chunk(bytes).map_err(|e| StoreError::corrupt(Table::Chunks, "chunk", e.to_string()))
}

/// A stored rollup block's buckets.
pub(super) fn decode_block(
    res: Resolution,
    block_start: i64,
    bytes: &[u8],
) -> Result<Vec<(i64, Aggregate)>, StoreError> {
    block::decode(res, block_start, bytes).ok_or_else(|| {
        let detail = format!("{} bytes, truncated or malformed", bytes.len());
        StoreError::corrupt(res.table(), "rollup block", detail)
    })
}

#[cfg(test)]
mod tests {
    use super::super::keys::DAY_MS;
    use super::super::testing::{T0, open, samples};
    use super::*;
    use crate::storage::{MemoryKv, Sample};

    #[test]
    fn reads_back_across_head_outbox_and_chunks_and_survives_reopen() {
        let kv = MemoryKv::default();
        let db = open(&kv);
        for s in samples(1, 0..20, 10_000).chunks(3) {
            db.append(None, s).unwrap();
        }
        let expected: Vec<(i64, f64)> = (0..20).map(|i| (T0 + i * 10_000, i as f64)).collect();
        assert_eq!(
            db.read_raw(SeriesId(1), T0, T0 + DAY_MS).unwrap(),
            expected,
            "head + outbox"
        );
        db.checkpoint(false).unwrap();
        assert_eq!(
            db.read_raw(SeriesId(1), T0, T0 + DAY_MS).unwrap(),
            expected,
            "after checkpoint"
        );
        db.append(None, &samples(1, 20..25, 10_000)).unwrap();
        drop(db); // crash: nothing sealed since the checkpoint, the WAL has samples 20..25

        let db = open(&kv);
        let all: Vec<(i64, f64)> = (0..25).map(|i| (T0 + i * 10_000, i as f64)).collect();
        assert_eq!(
            db.read_raw(SeriesId(1), T0, T0 + DAY_MS).unwrap(),
            all,
            "after recovery"
        );
        assert_eq!(db.latest(SeriesId(1)), Some((T0 + 240_000, 24.0)));
        assert_eq!(
            db.read_raw(SeriesId(1), T0 + 50_000, T0 + 70_000).unwrap(),
            all[5..=7].to_vec()
        );
    }

    #[test]
    fn the_first_day_held_is_where_the_oldest_checkpointed_data_is() {
        let kv = MemoryKv::default();
        let db = open(&kv);
        assert_eq!(db.first_day_start(Table::Chunks).unwrap(), None, "empty");
        // Two days on, from 13:00 of the first: the head holds it until a checkpoint.
        let from_one_pm = (13 * 3_600_000) / 60_000;
        db.append(
            None,
            &samples(1, from_one_pm..from_one_pm + 2 * 1440, 60_000),
        )
        .unwrap();
        assert_eq!(
            db.first_day_start(Table::Chunks).unwrap(),
            None,
            "in the head"
        );
        db.checkpoint(true).unwrap();
        assert_eq!(db.first_day_start(Table::Chunks).unwrap(), Some(T0));
        assert_eq!(db.first_day_start(Table::Rollup1h).unwrap(), Some(T0));
    }

    #[test]
    fn a_repeated_timestamp_keeps_its_newest_value_everywhere() {
        let kv = MemoryKv::default();
        let db = open(&kv);
        db.append(None, &samples(1, 0..20, 10_000)).unwrap(); // seals a chunk of 8 at 8 and 16
        let again = |v: f64| Sample {
            series: SeriesId(1),
            timestamp_ms: T0 + 30_000,
            value: v,
        };
        db.append(None, &[again(-1.0)]).unwrap();
        db.append(None, &[again(-2.0)]).unwrap();
        let at = |db: &Tsdb| db.read_raw(SeriesId(1), T0 + 30_000, T0 + 30_000).unwrap();
        assert_eq!(at(&db), vec![(T0 + 30_000, -2.0)], "in the head");
        db.checkpoint(false).unwrap();
        assert_eq!(at(&db), vec![(T0 + 30_000, -2.0)], "after a checkpoint");
        db.append(None, &[again(-3.0)]).unwrap();
        db.compact().unwrap();
        assert_eq!(at(&db), vec![(T0 + 30_000, -3.0)], "after compaction");
        drop(db);
        assert_eq!(at(&open(&kv)), vec![(T0 + 30_000, -3.0)], "after reopening");
    }
}

//! Removing data: retention per resolution and the disk budget, and deleting series for good.

use super::Tsdb;
use super::keys::{META_DELETED_SERIES, day_of, day_start, id_key, parse_day, parse_series};
use crate::storage::kv::{KvBatch, Table};
use crate::storage::records::{DeletedSeriesRecordV1, Record};
use crate::storage::{Resolution, SeriesId, StoreError};
use std::collections::HashSet;

impl Tsdb {
    /// Whether `res` rollups are kept at least as long as raw samples, so they hold every
    /// sample raw still does (the disk budget drops raw days only).
    pub fn rollups_outlive_raw(&self, res: Resolution) -> bool {
        let r = &self.config.retention;
        let kept = match res {
            Resolution::OneMinute => r.rollup_1m,
            Resolution::FiveMinutes => r.rollup_5m,
            Resolution::OneHour => r.rollup_1h,
        };
        kept >= r.raw
    }

    /// Deletes data past each resolution's retention, and the oldest raw days while over the
    /// disk budget. Returns how many raw days the budget dropped.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, StoreError> {
        let r = &self.config.retention;
        let raw_ms = i64::try_from(r.raw.as_millis()).unwrap_or(i64::MAX);
        // The 1 min and 5 min buckets of the raw days about to go are stored first.
        self.store_raw_rollups_before(day_of(now_ms.saturating_sub(raw_ms)))?;
        let mut batch = KvBatch::default();
        for (table, keep) in [
            (Table::Chunks, r.raw),
            (Table::Rollup1m, r.rollup_1m),
            (Table::Rollup5m, r.rollup_5m),
            (Table::Rollup1h, r.rollup_1h),
        ] {
            let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            let cutoff = day_of(now_ms.saturating_sub(keep_ms));
            batch.delete_range(table, 0u32.to_be_bytes(), cutoff.to_be_bytes());
        }
        self.delete_raw_days(batch)?;
        let mut dropped = 0;
        if r.disk_budget_bytes > 0 {
            while self.disk_size() > r.disk_budget_bytes {
                let mut oldest = None;
                self.kv.scan(Table::Chunks, &[], &[0xff; 4], &mut |k, _| {
                    oldest = Some(parse_day(Table::Chunks, k));
                    false
                })?;
                let today = day_of(now_ms);
                let Some(day) = oldest.transpose()?.filter(|d| *d < today) else {
                    break;
                };
                self.store_raw_rollups_before(day + 1)?;
                let mut batch = KvBatch::default();
                batch.delete_range(Table::Chunks, 0u32.to_be_bytes(), (day + 1).to_be_bytes());
                self.delete_raw_days(batch)?;
                self.kv.compact(Table::Chunks)?;
                tracing::warn!(
                    day_start_ms = day_start(day),
                    budget = r.disk_budget_bytes,
                    "disk budget exceeded: dropped the oldest raw day"
                );
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Writes a deletion of raw days whose 1 min and 5 min buckets were just stored. A read that chose,
    /// before the mark moved, to compute those buckets from raw holds `flush_gate` until it is
    /// done, so it finishes before the samples go.
    fn delete_raw_days(&self, batch: KvBatch) -> Result<(), StoreError> {
        let _readers = self.flush_gate.write().unwrap_or_else(|p| p.into_inner());
        self.kv.write(batch, false)
    }

    /// Deletes series for good: definitions, heads, chunks and rollups. Returns how many stored
    /// chunks and rollup blocks went. The caller takes them out of the catalog first, so no
    /// reader or writer finds them while they go.
    ///
    /// Chunks and rollups are keyed day first, so each day present is visited once and only
    /// the key range between the smallest and largest doomed id is read. The ids stay on a
    /// durable deleted list: their samples still in the WAL are skipped at recovery, and new
    /// series are numbered above them. A deletion cut short by a crash leaves stored blocks that
    /// nothing reads; retention removes them with their day.
    pub fn delete_series(&self, ids: &[SeriesId]) -> Result<usize, StoreError> {
        let (Some(low), Some(high)) = (ids.iter().min(), ids.iter().max()) else {
            return Ok(0);
        };
        let doomed: HashSet<SeriesId> = ids.iter().copied().collect();
        {
            // No checkpoint may write a head or chunk of a doomed series while it goes; once
            // they are on the deleted list no append brings one back, so the lock is given up
            // before the long part, the scan of stored days.
            let _checkpointing = self.checkpointing.lock().unwrap_or_else(|p| p.into_inner());
            let mut deleted = self.deleted.write().unwrap_or_else(|p| p.into_inner());
            deleted.extend(doomed.iter().copied());
            let mut batch = KvBatch::default();
            for id in &doomed {
                batch.delete(Table::Series, id_key(id.0));
                batch.delete(Table::Head, id_key(id.0));
            }
            let record = DeletedSeriesRecordV1::of(deleted.iter().copied());
            batch.put(Table::Meta, META_DELETED_SERIES, record.encode());
            self.kv.write(batch, true)?;
            drop(deleted);
            for shard in &self.shards {
                let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
                shard.heads.retain(|id, _| !doomed.contains(id));
                shard.chunks.retain(|chunk| !doomed.contains(&chunk.series));
                shard.rollups.retain(|(id, _), _| !doomed.contains(id));
                shard
                    .stale_rollups
                    .retain(|(id, _, _)| !doomed.contains(id));
                shard.dirty.retain(|id| !doomed.contains(id));
            }
        }
        let mut deleted = 0;
        for table in [
            Table::Chunks,
            Table::Rollup1m,
            Table::Rollup5m,
            Table::Rollup1h,
        ] {
            let mut day = 0u32;
            loop {
                let mut present = None;
                self.kv
                    .scan(table, &day.to_be_bytes(), &[0xff; 5], &mut |k, _| {
                        present = Some(parse_day(table, k));
                        false
                    })?;
                let Some(found) = present.transpose()? else {
                    break;
                };
                let mut start = found.to_be_bytes().to_vec();
                start.extend_from_slice(&low.0.to_be_bytes());
                let mut end = found.to_be_bytes().to_vec();
                end.extend_from_slice(&high.0.saturating_add(1).to_be_bytes());
                let mut batch = KvBatch::default();
                let mut failure = None;
                self.kv.scan(table, &start, &end, &mut |k, _| {
                    match parse_series(table, k) {
                        Ok(id) if doomed.contains(&id) => {
                            batch.delete(table, k.to_vec());
                            deleted += 1;
                        }
                        Ok(_) => {}
                        Err(e) => failure = Some(e),
                    }
                    failure.is_none()
                })?;
                if let Some(e) = failure {
                    return Err(e);
                }
                self.kv.write(batch, false)?;
                match found.checked_add(1) {
                    Some(next) => day = next,
                    None => break,
                }
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::DAY_MS;
    use super::super::testing::{T0, config, open};
    use super::super::{RetentionConfig, StorageConfig};
    use super::*;
    use crate::storage::{MemoryKv, Sample};
    use std::time::Duration;

    #[test]
    fn chunks_never_cross_midnight_and_retention_drops_whole_days() {
        let kv = MemoryKv::default();
        let db = open(&kv);
        let around_midnight: Vec<Sample> = (0..6)
            .map(|i| Sample {
                series: SeriesId(9),
                timestamp_ms: T0 + DAY_MS - 30_000 + i * 10_000,
                value: 1.0,
            })
            .collect();
        db.append(None, &around_midnight).unwrap();
        db.compact().unwrap();
        assert_eq!(
            db.read_raw(SeriesId(9), T0, T0 + 2 * DAY_MS).unwrap().len(),
            6
        );
        let keep_one_day = StorageConfig {
            retention: RetentionConfig {
                raw: Duration::from_secs(86_400),
                ..RetentionConfig::default()
            },
            ..config()
        };
        drop(db);
        let db = Tsdb::open(Box::new(kv.clone()), keep_one_day).unwrap().tsdb;
        db.enforce_retention(T0 + 2 * DAY_MS + 1).unwrap();
        let left = db.read_raw(SeriesId(9), T0, T0 + 2 * DAY_MS).unwrap();
        assert_eq!(
            left.len(),
            3,
            "the first day's samples are gone, the second day's stay: {left:?}"
        );
    }
}

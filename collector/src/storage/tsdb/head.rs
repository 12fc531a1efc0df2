//! The in-memory head: per series the open chunk, late samples, newest sample and open rollup
//! buckets, in shards; how samples are applied to it; and the head snapshot codec.
//!
//! A snapshot is: newest sample (flag byte, then ts i64 LE and value f64 LE), each resolution's
//! open bucket, finest first (flag byte, then bucket start i64 LE and a 56-byte aggregate; the
//! 1 min and 5 min ones always absent now, see [`Resolution::LIVE`], and skipped when an older
//! snapshot has them), then the open chunk
//! in the chunk codec, if any. It has no version byte of its own: a bucket's flag is its
//! version. 0 is no bucket, 1 a bucket without edges (all that snapshots before edges held), 2 a
//! bucket followed by its edges: a byte whose bit 0 says the value at the start (f64 LE)
//! follows and bit 1 the time the series ended (i64 LE).

use super::StorageConfig;
use super::keys::day_of;
use super::pending_rollups::PendingRollups;
use crate::storage::chunk::{decode_chunk, encode_chunk};
use crate::storage::kv::Table;
use crate::storage::open_chunk::{OpenChunk, OpenChunkCopy};
use crate::storage::rollup::{Aggregate, Edges, Resolution, counter_increase};
use crate::storage::{Sample, SeriesId, StoreError, is_stale_marker};
use rustc_hash::FxHashMap;
use std::collections::HashSet;

/// Heads read ahead at a time, by appends (a block of runs) and by a checkpoint's cut: enough
/// misses to overlap, few enough heads to stay in the first-level cache until they are used.
pub(super) const READ_AHEAD: usize = 16;

/// One series' state in the head.
#[derive(Default)]
pub(super) struct SeriesHead {
    /// The open chunk, strictly increasing timestamps, encoded as it grows.
    pub(super) open: OpenChunk,
    /// Samples that arrived at or before `last_ts`, kept until the next checkpoint.
    pub(super) late: Vec<(i64, f64)>,
    /// Newest in-order sample (never a staleness marker: see [`SeriesHead::newest_ts`]).
    pub(super) last: Option<(i64, f64)>,
    /// The open bucket of each resolution in [`Resolution::LIVE`], in its order.
    pub(super) rollups: [Option<(i64, Aggregate)>; Resolution::LIVE.len()],
    /// Listed in the shard's `dirty`: changed since the last checkpoint.
    pub(super) dirty: bool,
}

/// A head as a checkpoint's cut copied it, its open chunk in the cut's shared buffer.
pub(super) struct HeadCopy {
    open: OpenChunkCopy,
    last: Option<(i64, f64)>,
    rollups: [Option<(i64, Aggregate)>; Resolution::LIVE.len()],
}

impl HeadCopy {
    /// The head it was copied from, without late samples, from the buffer it was copied into.
    pub(super) fn restore(&self, buffer: &[u8]) -> SeriesHead {
        SeriesHead {
            open: OpenChunk::from_copy(&self.open, buffer),
            late: Vec::new(),
            last: self.last,
            rollups: self.rollups,
            dirty: false,
        }
    }
}

/// A sealed chunk waiting for the next checkpoint.
pub(super) struct OutChunk {
    pub(super) series: SeriesId,
    pub(super) first_ts: i64,
    pub(super) bytes: Vec<u8>,
}

/// The heads of the series that hash to one shard, and what they wait to write.
#[derive(Default)]
pub(super) struct Shard {
    /// Boxed: a head is about 270 bytes, and a map holding them in place keeps up to twice
    /// its entries' room (more while it grows), empty slots at full size.
    pub(super) heads: FxHashMap<SeriesId, Box<SeriesHead>>,
    pub(super) chunks: Vec<OutChunk>,
    /// Finished rollup buckets by series and resolution: reads look up one series, never scan
    /// the shard's.
    pub(super) rollups: FxHashMap<(SeriesId, Resolution), PendingRollups>,
    /// Rollup buckets a late sample changed after they were finished: recomputed from raw.
    pub(super) stale_rollups: HashSet<(SeriesId, Resolution, i64)>,
    /// Series whose head changed since the last checkpoint (each also flagged in its head).
    pub(super) dirty: Vec<SeriesId>,
}

/// Samples of one series as (timestamp ms, value).
pub(super) type Samples = Vec<(i64, f64)>;

pub(super) fn encode_head(head: &SeriesHead) -> Vec<u8> {
    let mut out = Vec::new();
    match head.last {
        Some((ts, v)) => {
            out.push(1);
            out.extend_from_slice(&ts.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        None => out.push(0),
    }
    // Every resolution has its slot, so snapshots read the same whichever are live; those
    // computed from raw stay empty.
    for res in Resolution::ALL {
        match res.live_slot().and_then(|slot| head.rollups[slot]) {
            Some((bucket, agg)) => {
                out.push(if agg.edges.is_some() { 2 } else { 1 });
                out.extend_from_slice(&bucket.to_le_bytes());
                out.extend_from_slice(&agg.encode());
                if let Some(edges) = agg.edges {
                    let at_start = edges.at_start.map(f64::to_le_bytes);
                    let ended_at = edges.ended_at.map(i64::to_le_bytes);
                    out.push(u8::from(at_start.is_some()) | (u8::from(ended_at.is_some()) << 1));
                    out.extend(at_start.iter().chain(&ended_at).flatten());
                }
            }
            None => out.push(0),
        }
    }
    if !head.open.is_empty() {
        out.extend_from_slice(&encode_chunk(&head.open.samples()));
    }
    out
}

/// A head snapshot; its table is `head`.
pub(super) fn decode_head(bytes: &[u8]) -> Result<SeriesHead, StoreError> {
    decode(bytes).ok_or_else(|| {
        StoreError::corrupt(
            Table::Head,
            "snapshot",
            format!("{} bytes, truncated or malformed", bytes.len()),
        )
    })
}

fn decode(bytes: &[u8]) -> Option<SeriesHead> {
    decode_with_slots(bytes).map(|(head, _)| head)
}

/// The open buckets a snapshot holds at the resolutions no longer live (see [`Resolution::LIVE`]),
/// which [`decode_head`] drops: snapshots written before 1 min and 5 min buckets were computed
/// from raw. Unreadable snapshots have none (their load fails on its own).
pub(super) fn snapshot_buckets_not_live(bytes: &[u8]) -> Vec<(Resolution, i64, Aggregate)> {
    let Some((_, slots)) = decode_with_slots(bytes) else {
        return Vec::new();
    };
    Resolution::ALL
        .into_iter()
        .filter(|res| res.live_slot().is_none())
        .filter_map(|res| slots[res.index()].map(|(bucket, agg)| (res, bucket, agg)))
        .collect()
}

/// A snapshot, and the open bucket of each resolution in it, finest first.
type Slots = [Option<(i64, Aggregate)>; 3];

fn decode_with_slots(bytes: &[u8]) -> Option<(SeriesHead, Slots)> {
    let mut head = SeriesHead::default();
    let mut pos = 0;
    let take = |pos: &mut usize, n: usize| -> Option<&[u8]> {
        let s = bytes.get(*pos..*pos + n)?;
        *pos += n;
        Some(s)
    };
    if take(&mut pos, 1)?[0] == 1 {
        let ts = i64::from_le_bytes(take(&mut pos, 8)?.try_into().ok()?);
        let v = f64::from_le_bytes(take(&mut pos, 8)?.try_into().ok()?);
        head.last = Some((ts, v));
    }
    let mut slots: Slots = [None; 3];
    for acc in &mut slots {
        let version = take(&mut pos, 1)?[0];
        if version == 0 {
            continue;
        }
        let bucket = i64::from_le_bytes(take(&mut pos, 8)?.try_into().ok()?);
        let mut agg = Aggregate::decode(take(&mut pos, 56)?)?;
        match version {
            1 => {}
            2 => {
                let present = take(&mut pos, 1)?[0];
                if present > 3 {
                    return None;
                }
                let mut word = |bit: u8| -> Option<Option<[u8; 8]>> {
                    if present & bit == 0 {
                        return Some(None);
                    }
                    Some(Some(take(&mut pos, 8)?.try_into().ok()?))
                };
                agg.edges = Some(Edges {
                    at_start: word(1)?.map(f64::from_le_bytes),
                    ended_at: word(2)?.map(i64::from_le_bytes),
                });
            }
            _ => return None,
        }
        *acc = Some((bucket, agg));
    }
    for (res, slot) in Resolution::LIVE.into_iter().zip(&mut head.rollups) {
        *slot = slots[res.index()];
    }
    if pos < bytes.len() {
        head.open = OpenChunk::from_samples(&decode_chunk(&bytes[pos..]).ok()?);
    }
    Some((head, slots))
}

impl SeriesHead {
    /// Reads a field in each part of the head an append updates, for a writer to bring them
    /// into the cache ahead of it. The value means nothing.
    fn read_ahead(&self) -> u64 {
        let buckets = self.rollups.iter().flatten().map(|(at, _)| *at as u64);
        buckets.fold(
            self.open.read_ahead()
                ^ self.last.map_or(0, |(ts, _)| ts as u64)
                ^ u64::from(self.dirty),
            |acc, at| acc ^ at,
        )
    }

    /// The newest in-order time: of the newest sample, or of a staleness marker after it,
    /// which sits only in the open chunk (so the open chunk stays in time order).
    pub(super) fn newest_ts(&self) -> Option<i64> {
        let marker = self.open.newest().map(|(ts, _)| ts);
        self.last.map(|(ts, _)| ts).max(marker)
    }

    /// The newest sample, unless a staleness marker in the open chunk ended the series after it.
    pub(super) fn current(&self) -> Option<(i64, f64)> {
        match self.open.newest() {
            Some((_, v)) if is_stale_marker(v) => None,
            _ => self.last,
        }
    }

    /// What a snapshot persists (everything but the late samples, which become chunks), its
    /// open chunk's bytes appended to `buffer`.
    pub(super) fn copy_into(&self, buffer: &mut Vec<u8>) -> HeadCopy {
        HeadCopy {
            open: self.open.copy_into(buffer),
            last: self.last,
            rollups: self.rollups,
        }
    }

    /// Seals the open chunk if a sample at `ts` cannot join it: it is full, would span too
    /// long, or would cross midnight UTC.
    fn make_room(&mut self, series: SeriesId, ts: i64, config: &StorageConfig) -> Option<OutChunk> {
        let max_span = config.max_chunk_span.as_millis() as i64;
        let full = self.open.first_ts().is_some_and(|first| {
            self.open.len() >= config.max_chunk_samples
                || ts - first >= max_span
                || day_of(ts) != day_of(first)
        });
        if full { self.seal(series) } else { None }
    }

    /// Encodes the open chunk into an outbox chunk, leaving the open chunk empty.
    pub(super) fn seal(&mut self, series: SeriesId) -> Option<OutChunk> {
        let first_ts = self.open.first_ts()?;
        let bytes = encode_chunk(&std::mem::take(&mut self.open).samples());
        Some(OutChunk {
            series,
            first_ts,
            bytes,
        })
    }
}

impl Shard {
    /// Reads the heads of `series` (those that exist), in a loop of reads that do not wait
    /// for each other, so their cache misses overlap rather than come one per run when the
    /// runs are applied. The value means nothing.
    pub(super) fn read_ahead<'a>(&self, runs: impl Iterator<Item = &'a [Sample]>) -> u64 {
        runs.filter_map(|run| self.heads.get(&run[0].series))
            .fold(0, |acc, head| acc ^ head.read_ahead())
    }

    /// Reads the heads of `series` (those that exist) and the start of their open chunks'
    /// bytes, in a loop of reads that do not wait for each other, for a checkpoint's cut to
    /// copy them from the cache: every append waits while the cut copies. The value means
    /// nothing.
    pub(super) fn read_ahead_copies(&self, series: &[SeriesId]) -> u64 {
        (series.iter().filter_map(|series| self.heads.get(series))).fold(0, |acc, head| {
            acc ^ head.read_ahead() ^ head.open.read_ahead_copy()
        })
    }

    pub(super) fn seal(&mut self, series: SeriesId) {
        let head = self.heads.get_mut(&series).expect("sealing a present head");
        self.chunks.extend(head.seal(series));
    }

    /// Applies accepted samples of one series, in arrival order, to the head: one lookup per
    /// run of samples rather than per sample.
    pub(super) fn apply_run(
        &mut self,
        config: &StorageConfig,
        series: SeriesId,
        samples: impl Iterator<Item = (i64, f64)>,
    ) {
        self.apply_run_where(config, series, |_| samples);
    }

    /// An append's run of one series' samples: keeps in `accepted` those at most `window` ms
    /// behind the series' newest sample (as it was before the run) and applies them to the
    /// head, with one lookup for both. A series being deleted gets no head: its samples are
    /// only kept (recovery drops them from the log).
    pub(super) fn accept_run(
        &mut self,
        config: &StorageConfig,
        run: &[Sample],
        window: i64,
        deleted: bool,
        accepted: &mut Vec<Sample>,
    ) {
        let series = run[0].series;
        let recent = |newest: Option<i64>| {
            move |s: &&Sample| newest.is_none_or(|n| s.timestamp_ms >= n.saturating_sub(window))
        };
        if deleted {
            let newest = self.heads.get(&series).and_then(|h| h.newest_ts());
            accepted.extend(run.iter().filter(recent(newest)));
            return;
        }
        self.apply_run_where(config, series, move |head| {
            let from = accepted.len();
            accepted.extend(run.iter().filter(recent(head.newest_ts())));
            let accepted: &Vec<Sample> = accepted;
            accepted[from..].iter().map(|s| (s.timestamp_ms, s.value))
        });
    }

    /// Applies to a series' head (created if need be) the samples `pick` gives, picked with
    /// the head as it was before them.
    fn apply_run_where<I: Iterator<Item = (i64, f64)>>(
        &mut self,
        config: &StorageConfig,
        series: SeriesId,
        pick: impl FnOnce(&SeriesHead) -> I,
    ) {
        let Shard {
            heads,
            chunks,
            rollups,
            stale_rollups,
            dirty,
        } = self;
        let head = heads.entry(series).or_default();
        let mut samples = pick(head).peekable();
        // A run the append left out whole changes nothing for the next snapshot.
        if samples.peek().is_none() {
            return;
        }
        if !head.dirty {
            head.dirty = true;
            dirty.push(series);
        }
        for (ts, value) in samples {
            if is_stale_marker(value) {
                // A marker ends the series as of `ts`: it goes into the open chunk for reads,
                // but is no value (no rollup, no newest sample, no counter step). A marker
                // older than the newest time ends nothing and is dropped.
                if head.newest_ts().is_none_or(|newest| ts > newest) {
                    chunks.extend(head.make_room(series, ts, config));
                    head.open.push(ts, value);
                    // The open buckets hold the newest sample: the marker ended them.
                    for (_, agg) in head.rollups.iter_mut().flatten() {
                        agg.end(ts);
                    }
                }
                continue;
            }
            let newest_entry = head.open.newest().filter(|l| Some(l.0) == head.newest_ts());
            match head.newest_ts() {
                Some(newest) if ts == newest && newest_entry.is_some() => {
                    // A repeat of the newest time (a client retry): the new value wins. In place
                    // of a marker it is a sample the rollups have not seen; in place of a sample
                    // it is the buckets' newest value.
                    head.open.replace_newest(value);
                    if newest_entry.is_some_and(|l| !is_stale_marker(l.1)) {
                        head.last = Some((ts, value));
                        for (bucket, agg) in head.rollups.iter_mut().flatten() {
                            agg.replace_last(*bucket, ts, value);
                        }
                        continue;
                    }
                }
                Some(newest) if ts <= newest => {
                    head.late.push((ts, value));
                    for (res, slot) in Resolution::LIVE.into_iter().zip(&mut head.rollups) {
                        let bucket = res.bucket(ts);
                        match slot {
                            Some((open, agg)) if *open == bucket => {
                                agg.add_in(bucket, ts, value, 0.0)
                            }
                            open => {
                                stale_rollups.insert((series, res, bucket));
                                // The next bucket's counter step from its previous sample
                                // changed too, unless that bucket is the open one (still
                                // accumulating).
                                let next = bucket + res.millis();
                                if open.is_none_or(|(b, _)| b != next) {
                                    stale_rollups.insert((series, res, next));
                                }
                            }
                        }
                    }
                    continue;
                }
                _ => {
                    chunks.extend(head.make_room(series, ts, config));
                    head.open.push(ts, value);
                }
            }
            let increase = counter_increase(head.last.map(|l| l.1), value);
            head.last = Some((ts, value));
            for (res, slot) in Resolution::LIVE.into_iter().zip(&mut head.rollups) {
                let bucket = res.bucket(ts);
                match slot {
                    Some((open, agg)) if *open == bucket => agg.add_in(bucket, ts, value, increase),
                    _ => {
                        if let Some((open, agg)) = slot.take() {
                            rollups
                                .entry((series, res))
                                .or_default()
                                .push(res, open, agg);
                        }
                        *slot = Some((bucket, Aggregate::open(res, bucket, ts, value, increase)));
                    }
                }
            }
        }
    }

    /// Marks a series for the next checkpoint's snapshot.
    pub(super) fn mark_dirty(&mut self, series: SeriesId) {
        let head = self.heads.entry(series).or_default();
        if !head.dirty {
            head.dirty = true;
            self.dirty.push(series);
        }
    }
}

/// Runs of consecutive samples of one series.
pub(super) fn series_runs(samples: &[Sample]) -> impl Iterator<Item = &[Sample]> {
    samples.chunk_by(|a, b| a.series == b.series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_round_trip_and_garbage_is_corruption_of_the_head_table() {
        let mut head = SeriesHead {
            open: OpenChunk::from_samples(&[(1000, 1.5), (2000, 2.5)]),
            last: Some((2000, 2.5)),
            ..SeriesHead::default()
        };
        head.rollups[0] = Some((0, Aggregate::new(1000, 1.5, 0.0)));
        let bytes = encode_head(&head);
        let back = decode_head(&bytes).unwrap();
        assert_eq!((&back.open, back.last), (&head.open, head.last));
        assert_eq!(back.rollups, head.rollups);
        // Snapshots from before 1 min and 5 min buckets were computed from raw held them (at
        // bytes 17 and 18): they are dropped.
        for slot in [17, 18] {
            let mut old = bytes[..slot].to_vec();
            old.push(1);
            old.extend_from_slice(&0i64.to_le_bytes());
            old.extend_from_slice(&Aggregate::new(1000, 9.5, 0.0).encode());
            old.extend_from_slice(&bytes[slot + 1..]);
            let back = decode_head(&old).unwrap();
            assert_eq!((back.rollups, back.open), (head.rollups, head.open.clone()));
        }
        // Buckets with edges (flag 2), whatever of them is known.
        for at_start in [0, 1000] {
            let mut ended = Aggregate::open(Resolution::OneHour, 0, at_start, 2.5, 0.0);
            ended.end(2000);
            head.rollups = [Some((0, ended))];
            let back = decode_head(&encode_head(&head)).unwrap();
            assert_eq!(back.rollups, head.rollups);
            assert_eq!(
                back.rollups[0].and_then(|(_, a)| a.edges),
                Some(Edges {
                    at_start: (at_start == 0).then_some(2.5),
                    ended_at: Some(2000)
                }),
            );
        }
        // A checkpoint's copy, in a buffer shared with another head, snapshots the same.
        let samples: Vec<(i64, f64)> = (0..300).map(|i| (i * 10_000, i as f64 / 3.0)).collect();
        head.open = OpenChunk::from_samples(&samples);
        let mut buffer = Vec::new();
        let other = SeriesHead {
            open: OpenChunk::from_samples(&[(5, 1.0), (6, 2.0), (7, 4.0)]),
            ..SeriesHead::default()
        };
        other.copy_into(&mut buffer);
        let copy = head.copy_into(&mut buffer);
        head.copy_into(&mut buffer);
        assert_eq!(encode_head(&copy.restore(&buffer)), encode_head(&head));
        for garbled in [&[][..], &[1, 2], &[0, 0, 1, 7], &[0, 0, 0, 0, 0x10, 0xff]] {
            let error = decode_head(garbled).err().expect("an error");
            assert!(error.to_string().contains("head table"), "{error}");
        }
    }
}

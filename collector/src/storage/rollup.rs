//! Rollups: per-series aggregates over fixed buckets (1 min, 5 min, 1 h), so long-range queries
//! read a few hundred aggregates instead of millions of samples.

use super::kv::Table;

/// A rollup resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    OneMinute,
    FiveMinutes,
    OneHour,
}

impl Resolution {
    /// Finest first.
    pub const ALL: [Resolution; 3] = [
        Resolution::OneMinute,
        Resolution::FiveMinutes,
        Resolution::OneHour,
    ];

    pub fn millis(self) -> i64 {
        match self {
            Resolution::OneMinute => 60_000,
            Resolution::FiveMinutes => 300_000,
            Resolution::OneHour => 3_600_000,
        }
    }

    pub fn table(self) -> Table {
        match self {
            Resolution::OneMinute => Table::Rollup1m,
            Resolution::FiveMinutes => Table::Rollup5m,
            Resolution::OneHour => Table::Rollup1h,
        }
    }

    /// The resolutions the head keeps as it ingests and checkpoints store; the others are
    /// computed from raw samples while raw retention keeps them, and stored only before it
    /// drops their day (see `Tsdb::read_rollup`). An hour bucket stays: 30 days of a series
    /// read 720 of them, where raw retention may be shorter than the range anyway.
    pub const LIVE: [Resolution; 1] = [Resolution::OneHour];

    pub fn index(self) -> usize {
        self as usize
    }

    /// Where a live resolution's open bucket sits in a series' head; `None` for the others.
    pub fn live_slot(self) -> Option<usize> {
        Resolution::LIVE.iter().position(|r| *r == self)
    }

    /// Whether this resolution's buckets keep their [`Edges`]. A 1 min bucket holds about six
    /// samples, so a value per bucket more would cost a sixth of the raw data again; instant
    /// selectors at 1 min steps read raw samples instead (at most 11,000 steps, 66,000 samples
    /// at 10 s).
    pub fn keeps_edges(self) -> bool {
        self != Resolution::OneMinute
    }

    /// Start of the bucket holding `ts`. The earliest timestamps (a damaged WAL record can hold
    /// any) have no representable start and get `i64::MIN`.
    pub fn bucket(self, ts: i64) -> i64 {
        ts.div_euclid(self.millis()).saturating_mul(self.millis())
    }
}

/// Aggregate of the samples in one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Value and time of the newest sample.
    pub last: f64,
    pub last_ts: i64,
    /// Counter increase over the bucket, counting resets, including the step from the previous
    /// sample before the bucket. Meaningless for gauges.
    pub increase: f64,
    /// What an instant selector at the bucket's edges needs; `None` where unknown: at
    /// resolutions that do not keep them, in blocks stored before they were kept, and in buckets
    /// a late sample changed, until the checkpoint recomputes them.
    pub edges: Option<Edges>,
}

/// PromQL's instant selector takes the newest sample in `(t - 5m, t]`, unless a staleness
/// marker came after it. At a bucket boundary `t`, with buckets of 5 min or more, that is the
/// sample exactly at `t` if there is one (the first of the bucket starting at `t`), else the
/// newest sample of the bucket ending at `t`, if it is less than 5 min old and no marker ended
/// the series before `t`. These are the two facts the other fields do not hold.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Edges {
    /// The value of the sample exactly at the bucket's start, if there is one.
    pub at_start: Option<f64>,
    /// When a staleness marker ended the series after the bucket's newest sample (with no
    /// sample between). The head's open buckets note such a marker wherever it falls; buckets
    /// computed from raw samples only one by the bucket's end, the only one an instant
    /// selector at that end reads.
    pub ended_at: Option<i64>,
}

/// How much a counter grew from `prev` to `value`; a decrease is a reset from zero.
pub fn counter_increase(prev: Option<f64>, value: f64) -> f64 {
    match prev {
        Some(p) if value >= p => value - p,
        Some(_) => value,
        None => 0.0,
    }
}

const ENCODED_LEN: usize = 8 * 7;

impl Aggregate {
    /// A bucket's first sample; its edges are not known.
    pub fn new(ts: i64, value: f64, increase: f64) -> Self {
        Self {
            count: 1,
            sum: value,
            min: value,
            max: value,
            last: value,
            last_ts: ts,
            increase,
            edges: None,
        }
    }

    /// The first sample of the bucket starting at `bucket`, keeping the edges if `res` does.
    pub fn open(res: Resolution, bucket: i64, ts: i64, value: f64, increase: f64) -> Self {
        let mut agg = Self::new(ts, value, increase);
        if res.keeps_edges() {
            agg.edges = Some(Edges {
                at_start: (ts == bucket).then_some(value),
                ended_at: None,
            });
        }
        agg
    }

    /// Adds a sample; one older than `last_ts` leaves `last` alone.
    pub fn add(&mut self, ts: i64, value: f64, increase: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.increase += increase;
        if let Some(edges) = &mut self.edges
            && edges.ended_at.is_some_and(|end| ts >= end)
        {
            // A sample after the marker: the series is back.
            edges.ended_at = None;
        }
        if ts >= self.last_ts {
            self.last = value;
            self.last_ts = ts;
        }
    }

    /// [`Aggregate::add`] of a sample at `bucket`, the bucket's start, which is its edge value.
    pub fn add_in(&mut self, bucket: i64, ts: i64, value: f64, increase: f64) {
        self.add(ts, value, increase);
        if ts == bucket
            && let Some(edges) = &mut self.edges
        {
            edges.at_start = Some(value);
        }
    }

    /// A new value for the newest sample at `ts` (a retry); the other fields keep the old one.
    pub fn replace_last(&mut self, bucket: i64, ts: i64, value: f64) {
        if ts != self.last_ts {
            return;
        }
        self.last = value;
        if ts == bucket
            && let Some(edges) = &mut self.edges
        {
            edges.at_start = Some(value);
        }
    }

    /// A staleness marker at `ts`, after every sample of the bucket: the series ended there.
    pub fn end(&mut self, ts: i64) {
        if let Some(edges) = &mut self.edges
            && edges.ended_at.is_none()
        {
            edges.ended_at = Some(ts);
        }
    }

    /// Combines two aggregates of adjacent or overlapping buckets. The result is no bucket's, so
    /// it has no edges.
    pub fn merge(&mut self, other: &Aggregate) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.increase += other.increase;
        if other.last_ts >= self.last_ts {
            self.last = other.last;
            self.last_ts = other.last_ts;
        }
        self.edges = None;
    }

    pub fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }

    /// Aggregates samples sorted by time; `prev` is the sample just before them, if known.
    pub fn of(samples: &[(i64, f64)], mut prev: Option<f64>) -> Option<Self> {
        let mut out: Option<Aggregate> = None;
        for &(ts, v) in samples {
            let inc = counter_increase(prev, v);
            prev = Some(v);
            match &mut out {
                Some(a) => a.add(ts, v, inc),
                None => out = Some(Aggregate::new(ts, v, inc)),
            }
        }
        out
    }

    /// The buckets of `res` over samples sorted by time, each bucket's counter increase counted
    /// from the sample before it, as the store's rollups count it.
    pub fn per_bucket(res: Resolution, samples: &[(i64, f64)]) -> Vec<(i64, Aggregate)> {
        Self::per_bucket_after(res, samples, None)
    }

    /// [`Aggregate::per_bucket`] where `prev` is the sample before `samples`, if known.
    pub fn per_bucket_after(
        res: Resolution,
        samples: &[(i64, f64)],
        mut prev: Option<f64>,
    ) -> Vec<(i64, Aggregate)> {
        samples
            .chunk_by(|a, b| res.bucket(a.0) == res.bucket(b.0))
            .filter_map(|bucket| {
                let agg = Aggregate::of(bucket, prev)?;
                prev = bucket.last().map(|s| s.1);
                Some((res.bucket(bucket[0].0), agg))
            })
            .collect()
    }

    /// The fields but the edges, in 56 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCODED_LEN);
        out.extend_from_slice(&self.count.to_le_bytes());
        for v in [self.sum, self.min, self.max, self.last] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.last_ts.to_le_bytes());
        out.extend_from_slice(&self.increase.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != ENCODED_LEN {
            return None;
        }
        let word = |i: usize| -> [u8; 8] { bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes") };
        Some(Self {
            count: u64::from_le_bytes(word(0)),
            sum: f64::from_le_bytes(word(1)),
            min: f64::from_le_bytes(word(2)),
            max: f64::from_le_bytes(word(3)),
            last: f64::from_le_bytes(word(4)),
            last_ts: i64::from_le_bytes(word(5)),
            increase: f64::from_le_bytes(word(6)),
            edges: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_and_counts_counter_resets() {
        let a = Aggregate::of(&[(1, 10.0), (2, 15.0), (3, 2.0), (4, 6.0)], Some(8.0)).unwrap();
        assert_eq!(
            (a.count, a.sum, a.min, a.max, a.last, a.last_ts),
            (4, 33.0, 2.0, 15.0, 6.0, 4)
        );
        // 8→10: +2, 10→15: +5, reset to 2: +2, 2→6: +4
        assert_eq!(a.increase, 13.0);
        assert_eq!(Aggregate::decode(&a.encode()), Some(a));
        assert_eq!(Resolution::FiveMinutes.bucket(299_999), 0);
        // Per bucket, each counting its increase from the sample before it.
        let minutes = Aggregate::per_bucket(
            Resolution::OneMinute,
            &[(0, 1.0), (30_000, 3.0), (60_000, 4.0), (185_000, 1.0)],
        );
        let summary: Vec<(i64, u64, f64)> = minutes
            .iter()
            .map(|(b, a)| (*b, a.count, a.increase))
            .collect();
        assert_eq!(
            summary,
            vec![(0, 2, 2.0), (60_000, 1, 1.0), (180_000, 1, 1.0)],
            "the drop to 1 is a reset: an increase of 1"
        );
        assert_eq!(Resolution::FiveMinutes.bucket(-1), -300_000);
    }
}

/// Rollup blocks: the buckets of one series over a block of time (1 h of 1 min buckets, a day of
/// 5 min or 1 h buckets), stored as columns, each encoded with the chunk codec, so a rollup
/// costs a few bytes per bucket instead of a 56-byte record. A column is a chunk of (bucket
/// index in the block, value) points.
///
/// Version 1 is six dense columns (count, sum, min, max, last, increase), each a little-endian
/// `u32` length then the chunk. Version 2 starts with four `0xff` bytes (a version 1 length is
/// never that large) and the byte `2`, then ten columns, each a varint length (0: empty) then
/// the chunk: version 1's six, the newest sample's time as an offset from the bucket's start,
/// and, only for the buckets they concern, the sample at the bucket's start, the offset from the
/// newest sample to the staleness marker that ended the series, and the buckets whose [`Edges`]
/// are not known (at resolutions that keep them). A version 1 block reads with its newest-sample
/// times at the bucket starts and no edges.
pub mod block {
    use super::{Aggregate, Edges, Resolution};
    use crate::storage::chunk::{decode_chunk, encode_chunk, get_varint, put_varint};

    /// How a version 2 block begins.
    const VERSION_2: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 2];

    /// The six columns every version has, in order.
    const FIRST_COLUMNS: [fn(&Aggregate) -> f64; 6] = [
        |a| a.count as f64,
        |a| a.sum,
        |a| a.min,
        |a| a.max,
        |a| a.last,
        |a| a.increase,
    ];

    /// Start of the block holding `bucket`.
    pub fn start(res: Resolution, bucket: i64) -> i64 {
        let span = match res {
            Resolution::OneMinute => 3_600_000,
            Resolution::FiveMinutes | Resolution::OneHour => 86_400_000,
        };
        bucket.div_euclid(span).saturating_mul(span)
    }

    /// Encodes buckets (sorted by start, all in one block).
    ///
    /// Sums and increases of decimal samples are decimals too, but float addition leaves them
    /// an ulp or so off (0.07 + 0.1 is not 0.17), which would defeat decimal encoding. A value
    /// within a relative 1e-12 of a decimal with few places is stored as that decimal: its exact
    /// value, stored compactly. Anything else is kept as it is.
    pub fn encode(res: Resolution, block_start: i64, buckets: &[(i64, Aggregate)]) -> Vec<u8> {
        let index = |b: i64| (b - block_start) / res.millis();
        let exact = |x: f64| {
            (0..=12)
                .map(|places| {
                    let scale = 10f64.powi(places);
                    (x * scale).round() / scale
                })
                .find(|rounded| (rounded - x).abs() <= x.abs() * 1e-12)
                .unwrap_or(x)
        };
        let buckets: Vec<(i64, Aggregate)> = buckets
            .iter()
            .map(|(b, a)| {
                (
                    *b,
                    Aggregate {
                        sum: exact(a.sum),
                        increase: exact(a.increase),
                        ..*a
                    },
                )
            })
            .collect();
        let mut out = VERSION_2.to_vec();
        for column in FIRST_COLUMNS {
            let points: Vec<(i64, f64)> = buckets
                .iter()
                .map(|(b, a)| (index(*b), column(a)))
                .collect();
            put_column(&mut out, &points);
        }
        // Offsets are below 2^53 ms (285,000 years), so they are exact as f64.
        let newest: Vec<(i64, f64)> = buckets
            .iter()
            .map(|(b, a)| (index(*b), a.last_ts.wrapping_sub(*b) as f64))
            .collect();
        put_column(&mut out, &newest);
        let sparse = |f: &dyn Fn(&Aggregate) -> Option<f64>| -> Vec<(i64, f64)> {
            buckets
                .iter()
                .filter_map(|(b, a)| Some((index(*b), f(a)?)))
                .collect()
        };
        put_column(&mut out, &sparse(&|a| a.edges?.at_start));
        put_column(
            &mut out,
            &sparse(&|a| Some(a.edges?.ended_at?.wrapping_sub(a.last_ts) as f64)),
        );
        let unknown = sparse(&|a| a.edges.is_none().then_some(0.0));
        put_column(&mut out, if res.keeps_edges() { &unknown } else { &[] });
        out
    }

    fn put_column(out: &mut Vec<u8>, points: &[(i64, f64)]) {
        if points.is_empty() {
            out.push(0);
            return;
        }
        let encoded = encode_chunk(points);
        put_varint(out, encoded.len() as u64);
        out.extend_from_slice(&encoded);
    }

    /// A version 1 column.
    fn get_fixed_column(bytes: &[u8], pos: &mut usize) -> Option<Vec<(i64, f64)>> {
        let len = u32::from_le_bytes(bytes.get(*pos..*pos + 4)?.try_into().ok()?) as usize;
        *pos += 4;
        column_of(bytes, pos, len)
    }

    fn get_column(bytes: &[u8], pos: &mut usize) -> Option<Vec<(i64, f64)>> {
        let len = usize::try_from(get_varint(bytes, pos).ok()?).ok()?;
        column_of(bytes, pos, len)
    }

    fn column_of(bytes: &[u8], pos: &mut usize, len: usize) -> Option<Vec<(i64, f64)>> {
        if len == 0 {
            return Some(Vec::new());
        }
        let column = decode_chunk(bytes.get(*pos..pos.checked_add(len)?)?).ok()?;
        *pos += len;
        Some(column)
    }

    /// Decodes a block; `None` if it is damaged.
    pub fn decode(
        res: Resolution,
        block_start: i64,
        bytes: &[u8],
    ) -> Option<Vec<(i64, Aggregate)>> {
        let v2 = bytes.starts_with(&VERSION_2);
        let mut pos = if v2 { VERSION_2.len() } else { 0 };
        let mut columns = Vec::with_capacity(6);
        for _ in 0..6 {
            columns.push(if v2 {
                get_column(bytes, &mut pos)?
            } else {
                get_fixed_column(bytes, &mut pos)?
            });
        }
        let n = columns[0].len();
        if columns.iter().any(|c| c.len() != n) {
            return None;
        }
        let mut buckets = (0..n)
            .map(|i| {
                let bucket = columns[0][i]
                    .0
                    .checked_mul(res.millis())
                    .and_then(|offset| block_start.checked_add(offset))?;
                let agg = Aggregate {
                    count: columns[0][i].1 as u64,
                    sum: columns[1][i].1,
                    min: columns[2][i].1,
                    max: columns[3][i].1,
                    last: columns[4][i].1,
                    // Version 1 did not keep it; buckets of a block are in time order, so this
                    // keeps merges ordered.
                    last_ts: bucket,
                    increase: columns[5][i].1,
                    edges: None,
                };
                Some((bucket, agg))
            })
            .collect::<Option<Vec<_>>>()?;
        if !v2 {
            return (pos == bytes.len()).then_some(buckets);
        }
        let newest = get_column(bytes, &mut pos)?;
        let at_start = get_column(bytes, &mut pos)?;
        let ended = get_column(bytes, &mut pos)?;
        let unknown = get_column(bytes, &mut pos)?;
        if newest.len() != n || pos != bytes.len() {
            return None;
        }
        // Sparse columns name buckets by their index, in order, as the first column does.
        let position = |index: i64| columns[0].binary_search_by_key(&index, |p| p.0).ok();
        for (i, (bucket, agg)) in buckets.iter_mut().enumerate() {
            if newest[i].0 != columns[0][i].0 {
                return None;
            }
            agg.last_ts = bucket.checked_add(exact_offset(newest[i].1)?)?;
            agg.edges = res.keeps_edges().then(Edges::default);
        }
        for (index, value) in at_start {
            if let Some(edges) = &mut buckets[position(index)?].1.edges {
                edges.at_start = Some(value);
            }
        }
        for (index, offset) in ended {
            let (_, agg) = &mut buckets[position(index)?];
            let at = agg.last_ts.checked_add(exact_offset(offset)?)?;
            if let Some(edges) = &mut agg.edges {
                edges.ended_at = Some(at);
            }
        }
        for (index, _) in unknown {
            buckets[position(index)?].1.edges = None;
        }
        Some(buckets)
    }

    /// An offset column's value as whole milliseconds; anything else is damage.
    fn exact_offset(value: f64) -> Option<i64> {
        let ms = value as i64;
        (ms as f64 == value).then_some(ms)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn blocks_round_trip_and_are_small() {
            let res = Resolution::OneMinute;
            let buckets: Vec<(i64, Aggregate)> = (0..60)
                .map(|i| {
                    let b = 7_200_000 + i * 60_000;
                    let samples: Vec<(i64, f64)> = (0..6)
                        .map(|j| (b + j * 10_000, ((i * 7 + j * 3) % 50) as f64 / 100.0))
                        .collect();
                    (b, Aggregate::of(&samples, None).unwrap())
                })
                .collect();
            let bytes = encode(res, 7_200_000, &buckets);
            let back = decode(res, 7_200_000, &bytes).unwrap();
            assert_eq!(back.len(), 60);
            // 1 min buckets keep their newest-sample times, and no edges.
            assert!(
                back.iter()
                    .zip(&buckets)
                    .all(|((_, a), (_, b))| { a.last_ts == b.last_ts && a.edges.is_none() })
            );
            for ((b1, a1), (b2, a2)) in buckets.iter().zip(&back) {
                assert_eq!(
                    (b1, a1.count, a1.min, a1.max, a1.last),
                    (b2, a2.count, a2.min, a2.max, a2.last)
                );
                assert!(
                    (a1.sum - a2.sum).abs() <= a1.sum.abs() * 1e-12,
                    "{} vs {}",
                    a1.sum,
                    a2.sum
                );
            }
            assert!(
                bytes.len() < 60 * 56 / 4,
                "{} bytes for 60 buckets",
                bytes.len()
            );
            assert_eq!(start(res, 7_259_999), 7_200_000);
            // Not decimals at all: kept exactly.
            let odd = [(
                7_200_000,
                Aggregate::of(&[(1, 1.0), (2, 1.5), (3, 2.0)], None).unwrap(),
            )];
            let back = decode(res, 7_200_000, &encode(res, 7_200_000, &odd)).unwrap();
            assert_eq!(back[0].1.sum, 4.5);
        }

        #[test]
        fn blocks_keep_newest_times_and_edges_and_version_1_blocks_still_read() {
            let res = Resolution::FiveMinutes;
            let start = 86_400_000;
            let edges = [
                None,
                Some(Edges::default()),
                Some(Edges {
                    at_start: Some(-2.5),
                    ended_at: None,
                }),
                Some(Edges {
                    at_start: None,
                    ended_at: Some(start + 3 * 300_000 + 299_000 + 86_400_000),
                }),
                Some(Edges {
                    at_start: Some(f64::NAN),
                    ended_at: Some(start + 4 * 300_000 + 1_000),
                }),
            ];
            let buckets: Vec<(i64, Aggregate)> = edges
                .iter()
                .enumerate()
                .map(|(i, edges)| {
                    let bucket = start + i as i64 * 300_000;
                    let mut agg = Aggregate::new(bucket + 1_000 * i as i64, i as f64, 0.0);
                    agg.edges = *edges;
                    (bucket, agg)
                })
                .collect();
            let bytes = encode(res, start, &buckets);
            let back = decode(res, start, &bytes).unwrap();
            let bits = |a: &Aggregate| {
                let edges = a.edges.map(|e| (e.at_start.map(f64::to_bits), e.ended_at));
                (a.last_ts, a.last.to_bits(), edges)
            };
            for ((b1, a1), (b2, a2)) in buckets.iter().zip(&back) {
                assert_eq!((b1, bits(a1)), (b2, bits(a2)));
            }
            // Version 1: six columns with fixed lengths, read with bucket starts and no edges.
            let mut old = Vec::new();
            for column in FIRST_COLUMNS {
                let points: Vec<(i64, f64)> = buckets
                    .iter()
                    .map(|(b, a)| ((b - start) / res.millis(), column(a)))
                    .collect();
                let chunk = encode_chunk(&points);
                old.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
                old.extend_from_slice(&chunk);
            }
            let back = decode(res, start, &old).unwrap();
            assert!(
                back.iter()
                    .all(|(b, a)| a.last_ts == *b && a.edges.is_none())
            );
            let values = |blocks: &[(i64, Aggregate)]| -> Vec<(i64, u64)> {
                blocks.iter().map(|(b, a)| (*b, a.last.to_bits())).collect()
            };
            assert_eq!(values(&back), values(&buckets));
            // Cut short anywhere, or of another version, a block is refused, not misread.
            for cut in 0..bytes.len() {
                assert!(decode(res, start, &bytes[..cut]).is_none(), "cut at {cut}");
            }
            let mut unknown = bytes.clone();
            unknown[4] = 3;
            assert!(decode(res, start, &unknown).is_none(), "version 3");
        }
    }
}

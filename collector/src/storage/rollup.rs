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

    pub fn index(self) -> usize {
        self as usize
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
    pub fn new(ts: i64, value: f64, increase: f64) -> Self {
        Self {
            count: 1,
            sum: value,
            min: value,
            max: value,
            last: value,
            last_ts: ts,
            increase,
        }
    }

    /// Adds a sample; one older than `last_ts` leaves `last` alone.
    pub fn add(&mut self, ts: i64, value: f64, increase: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.increase += increase;
        if ts >= self.last_ts {
            self.last = value;
            self.last_ts = ts;
        }
    }

    /// Combines two aggregates of adjacent or overlapping buckets.
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
        let mut prev = None;
        samples
            .chunk_by(|a, b| res.bucket(a.0) == res.bucket(b.0))
            .filter_map(|bucket| {
                let agg = Aggregate::of(bucket, prev)?;
                prev = bucket.last().map(|s| s.1);
                Some((res.bucket(bucket[0].0), agg))
            })
            .collect()
    }

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
/// costs a few bytes per bucket instead of a 56-byte record.
pub mod block {
    use super::{Aggregate, Resolution};
    use crate::storage::chunk::{decode_chunk, encode_chunk};

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
        let columns: [fn(&Aggregate) -> f64; 6] = [
            |a| a.count as f64,
            |a| a.sum,
            |a| a.min,
            |a| a.max,
            |a| a.last,
            |a| a.increase,
        ];
        let mut out = Vec::new();
        for column in columns {
            let points: Vec<(i64, f64)> = buckets
                .iter()
                .map(|(b, a)| (index(*b), column(a)))
                .collect();
            let encoded = encode_chunk(&points);
            out.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
            out.extend_from_slice(&encoded);
        }
        out
    }

    /// Decodes a block; `None` if it is damaged.
    pub fn decode(
        res: Resolution,
        block_start: i64,
        bytes: &[u8],
    ) -> Option<Vec<(i64, Aggregate)>> {
        let mut pos = 0;
        let mut columns = Vec::with_capacity(6);
        for _ in 0..6 {
            let len = u32::from_le_bytes(bytes.get(pos..pos + 4)?.try_into().ok()?) as usize;
            pos += 4;
            columns.push(decode_chunk(bytes.get(pos..pos + len)?).ok()?);
            pos += len;
        }
        let n = columns[0].len();
        if columns.iter().any(|c| c.len() != n) {
            return None;
        }
        (0..n)
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
                    // Buckets of a block are in time order; this keeps merges ordered.
                    last_ts: bucket,
                    increase: columns[5][i].1,
                };
                Some((bucket, agg))
            })
            .collect::<Option<Vec<_>>>()
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
    }
}

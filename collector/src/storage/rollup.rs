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

    /// Start of the bucket holding `ts`.
    pub fn bucket(self, ts: i64) -> i64 {
        ts.div_euclid(self.millis()) * self.millis()
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
        assert_eq!(Resolution::FiveMinutes.bucket(-1), -300_000);
    }
}

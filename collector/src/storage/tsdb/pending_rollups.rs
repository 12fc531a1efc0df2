//! Finished rollup buckets of one series at one resolution, waiting for the next checkpoint.
//!
//! A back-fill finishes dozens of buckets per series between two checkpoints (an hour of 10 s
//! samples is 60 one-minute buckets). As 72-byte values they were the head's largest part:
//! 176 MiB of `just bench-ingest`'s 20,000 back-filled series. So each bucket is appended to a
//! byte string as it finishes, against the one before it: the bucket's distance from the
//! previous one, its count and newest-sample time as varints, and each value as its XOR with
//! a value near it (see [`references`]), only the bytes that differ. Near values share sign,
//! exponent and high mantissa bits, so a bucket takes about 35 bytes, with the room to grow
//! under 60% of the values' size. The encoding is a few shifts per value with no allocation.
//! A byte after the values says which of the bucket's edges follow.
//! Keeping them in the stored blocks' codec, sixteen at a time, took a little less memory but
//! about 10% more CPU per ingested sample in `just bench-ingest`.

use super::wal::{get_varint, put_varint};
use crate::storage::chunk::{unzigzag, zigzag};
use crate::storage::rollup::{Aggregate, Edges, Resolution};
use crate::storage::{StoreError, Table};

/// 72 bytes besides the pushed bytes: one is held per series and resolution, so only what the
/// next bucket is encoded against is kept, not the whole newest bucket.
#[derive(Default)]
pub(super) struct PendingRollups {
    bytes: Vec<u8>,
    /// The newest bucket pushed, which the next is encoded against: its index at its
    /// resolution and its values. Meaningless while `bytes` is empty.
    newest_index: i64,
    newest_values: [f64; 5],
}

/// Most bytes one bucket takes: three varints, five values with their header bytes, and the
/// edges (a byte saying what follows, a value and a varint).
const MAX_BUCKET_BYTES: usize = 3 * 10 + 5 * 9 + 1 + 9 + 10;

/// The edges byte: known, with a value at the start, with the time the series ended.
const EDGES_KNOWN: u8 = 1;
const EDGES_AT_START: u8 = 2;
const EDGES_ENDED: u8 = 4;

/// The values of a bucket, in encoding order.
fn values(a: &Aggregate) -> [f64; 5] {
    [a.last, a.max, a.min, a.sum, a.increase]
}

/// What each value of `a` is encoded against, given the values before it in this bucket
/// (`this`) and the previous bucket's (`prev`): the newest value against the previous bucket's,
/// the extremes against this newest value (a counter's maximum is its newest value), the sum
/// and increase against the previous bucket's.
fn references(this: &[f64; 5], prev: &[f64; 5], i: usize) -> f64 {
    match i {
        1 | 2 => this[0],
        _ => prev[i],
    }
}

impl PendingRollups {
    /// Appends a bucket finished after every one pushed before.
    pub(super) fn push(&mut self, res: Resolution, bucket: i64, agg: Aggregate) {
        // Grown by a quarter rather than doubled: the string lives until the checkpoint, and
        // doubling would leave up to half of it unused.
        if self.bytes.capacity() - self.bytes.len() < MAX_BUCKET_BYTES {
            self.bytes
                .reserve_exact(self.bytes.len() / 4 + MAX_BUCKET_BYTES);
        }
        let index = bucket.div_euclid(res.millis());
        let (step, before) = match self.bytes.is_empty() {
            false => (index - self.newest_index, self.newest_values),
            true => (index, [0.0; 5]),
        };
        put_varint(&mut self.bytes, zigzag(step));
        put_varint(&mut self.bytes, agg.count);
        put_varint(&mut self.bytes, zigzag(agg.last_ts.wrapping_sub(bucket)));
        let this = values(&agg);
        for (i, v) in this.iter().enumerate() {
            let reference = references(&this, &before, i);
            put_xor(&mut self.bytes, v.to_bits() ^ reference.to_bits());
        }
        // The value at the start is encoded against the newest value before it, the end of the
        // series against the newest sample's time.
        let edges = agg.edges.unwrap_or_default();
        let flags = agg.edges.map_or(0, |_| EDGES_KNOWN)
            | edges.at_start.map_or(0, |_| EDGES_AT_START)
            | edges.ended_at.map_or(0, |_| EDGES_ENDED);
        self.bytes.push(flags);
        if let Some(value) = edges.at_start {
            put_xor(&mut self.bytes, value.to_bits() ^ before[0].to_bits());
        }
        if let Some(end) = edges.ended_at {
            put_varint(&mut self.bytes, zigzag(end.wrapping_sub(agg.last_ts)));
        }
        self.newest_index = index;
        self.newest_values = this;
    }

    /// The buckets in the order they finished.
    pub(super) fn buckets(&self, res: Resolution) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        let damaged = || {
            StoreError::corrupt(
                Table::Head,
                "pending rollup buckets",
                format!("{} bytes in memory do not decode", self.bytes.len()),
            )
        };
        let mut out: Vec<(i64, Aggregate)> = Vec::new();
        let mut pos = 0;
        let mut index = 0i64;
        let mut bits = [0u64; 5];
        while pos < self.bytes.len() {
            let step = unzigzag(get_varint(&self.bytes, &mut pos).ok_or_else(damaged)?);
            index = if out.is_empty() { step } else { index + step };
            let bucket = index.checked_mul(res.millis()).ok_or_else(damaged)?;
            let count = get_varint(&self.bytes, &mut pos).ok_or_else(damaged)?;
            let offset = unzigzag(get_varint(&self.bytes, &mut pos).ok_or_else(damaged)?);
            let prev = bits.map(f64::from_bits);
            let mut this = [0.0; 5];
            for i in 0..5 {
                let xor = get_xor(&self.bytes, &mut pos).ok_or_else(damaged)?;
                this[i] = f64::from_bits(references(&this, &prev, i).to_bits() ^ xor);
            }
            let last_ts = bucket.wrapping_add(offset);
            let flags = *self.bytes.get(pos).ok_or_else(damaged)?;
            pos += 1;
            if flags > EDGES_KNOWN | EDGES_AT_START | EDGES_ENDED
                || (flags != 0 && flags & EDGES_KNOWN == 0)
            {
                return Err(damaged());
            }
            let mut edges = Edges::default();
            if flags & EDGES_AT_START != 0 {
                let xor = get_xor(&self.bytes, &mut pos).ok_or_else(damaged)?;
                edges.at_start = Some(f64::from_bits(bits[0] ^ xor));
            }
            if flags & EDGES_ENDED != 0 {
                let offset = unzigzag(get_varint(&self.bytes, &mut pos).ok_or_else(damaged)?);
                edges.ended_at = Some(last_ts.wrapping_add(offset));
            }
            bits = this.map(f64::to_bits);
            let [last, max, min, sum, increase] = this;
            let agg = Aggregate {
                count,
                sum,
                min,
                max,
                last,
                last_ts,
                increase,
                edges: (flags & EDGES_KNOWN != 0).then_some(edges),
            };
            out.push((bucket, agg));
        }
        Ok(out)
    }

    /// Heap memory held.
    pub(super) fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}

/// A value's XOR with the previous one: a byte giving how many low bytes are zero (high
/// nibble) and how many bytes follow (low nibble), then those bytes, low first.
fn put_xor(out: &mut Vec<u8>, x: u64) {
    if x == 0 {
        out.push(0);
        return;
    }
    let trailing = x.trailing_zeros() / 8;
    let len = 8 - x.leading_zeros() / 8 - trailing;
    out.push(((trailing as u8) << 4) | len as u8);
    let significant = x >> (trailing * 8);
    out.extend_from_slice(&significant.to_le_bytes()[..len as usize]);
}

fn get_xor(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let header = *bytes.get(*pos)?;
    *pos += 1;
    let (trailing, len) = (u32::from(header >> 4), usize::from(header & 0x0f));
    if len == 0 {
        return Some(0);
    }
    if len > 8 || trailing as usize + len > 8 {
        return None;
    }
    let mut word = [0u8; 8];
    word[..len].copy_from_slice(bytes.get(*pos..*pos + len)?);
    *pos += len;
    Some(u64::from_le_bytes(word) << (trailing * 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every bucket reads back bit for bit, in order.
    fn reads_back(pending: &PendingRollups, res: Resolution, expected: &[(i64, Aggregate)]) {
        let bits = |a: &Aggregate| {
            let edges = a.edges.map(|e| (e.at_start.map(f64::to_bits), e.ended_at));
            (a.count, a.last_ts, values(a).map(f64::to_bits), edges)
        };
        let back = pending.buckets(res).expect("decodes");
        assert_eq!(back.len(), expected.len());
        for ((b1, a1), (b2, a2)) in expected.iter().zip(&back) {
            assert_eq!(b1, b2);
            assert_eq!(bits(a1), bits(a2), "{a1:?} read back as {a2:?}");
        }
    }

    #[test]
    fn buckets_read_back_exactly_in_under_sixty_percent_of_the_memory() {
        let res = Resolution::OneMinute;
        let mut pending = PendingRollups::default();
        let mut expected = Vec::new();
        let mut counter = 1_000.0;
        for m in 0..100 {
            // A gap of three minutes in the middle: a bucket need not follow the last.
            let bucket = 1_700_000_040_000 + (m + if m > 50 { 3 } else { 0 }) * 60_000;
            let samples: Vec<(i64, f64)> = (0..6)
                .map(|s| {
                    counter += ((m * 7 + s) % 13) as f64 * 0.37;
                    (bucket + s * 10_000 + 3, counter)
                })
                .collect();
            let agg = Aggregate::of(&samples, None).expect("samples");
            pending.push(res, bucket, agg);
            expected.push((bucket, agg));
        }
        reads_back(&pending, res, &expected);
        let plain = 100 * size_of::<(Resolution, i64, Aggregate)>();
        assert!(
            pending.heap_bytes() * 10 < plain * 6,
            "{} bytes encoded against {plain} as values",
            pending.heap_bytes()
        );
    }

    #[test]
    fn any_value_and_time_round_trips() {
        let res = Resolution::OneHour;
        let mut pending = PendingRollups::default();
        let odd = [
            f64::NAN,
            f64::INFINITY,
            -0.0,
            f64::MIN_POSITIVE,
            -1e300,
            0.1,
        ];
        let mut expected = Vec::new();
        for (i, v) in odd.into_iter().enumerate() {
            let bucket = -7_200_000 + i as i64 * 3_600_000 * 1000;
            let agg = Aggregate {
                count: u64::MAX - i as u64,
                sum: v,
                min: -v,
                max: v * 2.0,
                last: odd[(i + 1) % odd.len()],
                last_ts: bucket + 3_599_999,
                increase: 0.0,
                edges: [
                    None,
                    Some(Edges::default()),
                    Some(Edges {
                        at_start: Some(v),
                        ended_at: Some(i64::MAX - i as i64),
                    }),
                ][i % 3],
            };
            pending.push(res, bucket, agg);
            expected.push((bucket, agg));
        }
        reads_back(&pending, res, &expected);
    }

    #[test]
    fn damaged_bytes_are_an_error_not_a_panic() {
        let mut pending = PendingRollups::default();
        pending.push(
            Resolution::OneMinute,
            60_000,
            Aggregate::new(61_000, 1.5, 0.0),
        );
        for cut in 0..pending.bytes.len() {
            let short = PendingRollups {
                bytes: pending.bytes[..cut].to_vec(),
                ..PendingRollups::default()
            };
            // A prefix either decodes to fewer buckets or is refused; it never panics.
            let _ = short.buckets(Resolution::OneMinute);
        }
        let bad = PendingRollups {
            bytes: vec![0, 1, 0, 0x19],
            ..PendingRollups::default()
        };
        assert!(bad.buckets(Resolution::OneMinute).is_err());
    }
}

//! Finished rollup buckets of one series at one resolution, waiting for the next checkpoint.
//!
//! A back-fill finishes dozens of buckets per series between two checkpoints (an hour of 10 s
//! samples is 60 one-minute buckets). As 72-byte values they were the head's largest part:
//! 176 MiB of `just bench-ingest`'s 20,000 back-filled series. So every [`SEGMENT`] buckets are
//! encoded with the rollup block codec (column per field, the chunk codec's XOR form, no search
//! for decimals: that costs more CPU than it saves memory for a while), under half the
//! size, and decoded when read or checkpointed. The values are kept as they are (the stored
//! blocks' decimal rounding is the checkpoint's job), and a bucket's newest-sample time reads
//! as its start, as from a stored block.

use crate::storage::rollup::{Aggregate, Resolution, block};
use crate::storage::{StoreError, Table};

/// Buckets kept as values before they are encoded together.
const SEGMENT: usize = 16;

#[derive(Default)]
pub(super) struct PendingRollups {
    /// Encoded runs of [`SEGMENT`] buckets, each with the start of its first bucket (the
    /// block codec's reference point).
    segments: Vec<(i64, Box<[u8]>)>,
    /// The newest buckets, not yet a whole segment.
    recent: Vec<(i64, Aggregate)>,
}

impl PendingRollups {
    pub(super) fn push(&mut self, res: Resolution, bucket: i64, agg: Aggregate) {
        self.recent.push((bucket, agg));
        if self.recent.len() == SEGMENT {
            let start = self.recent[0].0;
            let bytes = block::encode_in_memory(res, start, &self.recent);
            self.segments.push((start, bytes.into_boxed_slice()));
            self.recent.clear();
        }
    }

    /// The buckets in the order they finished.
    pub(super) fn buckets(&self, res: Resolution) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        let mut out = Vec::with_capacity(self.segments.len() * SEGMENT + self.recent.len());
        for (start, bytes) in &self.segments {
            let decoded = block::decode(res, *start, bytes).ok_or_else(|| {
                StoreError::corrupt(
                    Table::Head,
                    "pending rollup buckets",
                    format!("{} bytes in memory do not decode", bytes.len()),
                )
            })?;
            out.extend(decoded);
        }
        out.extend_from_slice(&self.recent);
        Ok(out)
    }

    /// Heap memory held.
    pub(super) fn heap_bytes(&self) -> usize {
        self.segments.capacity() * size_of::<(i64, Box<[u8]>)>()
            + self.segments.iter().map(|(_, b)| b.len()).sum::<usize>()
            + self.recent.capacity() * size_of::<(i64, Aggregate)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_read_back_as_stored_and_take_a_fraction_of_the_memory() {
        let res = Resolution::OneMinute;
        let mut pending = PendingRollups::default();
        let mut expected = Vec::new();
        let mut counter = 1_000.0;
        for m in 0..100 {
            let bucket = 1_700_000_040_000 + m * 60_000;
            let samples: Vec<(i64, f64)> = (0..6)
                .map(|s| {
                    counter += f64::from((m * 7 + s) as u32 % 13);
                    (bucket + s * 10_000, counter)
                })
                .collect();
            let agg = Aggregate::of(&samples, None).expect("samples");
            pending.push(res, bucket, agg);
            expected.push((bucket, agg));
        }
        let back = pending.buckets(res).expect("decodes");
        assert_eq!(back.len(), 100);
        for ((b1, a1), (b2, a2)) in expected.iter().zip(&back) {
            assert_eq!(
                (b1, a1.count, a1.sum, a1.min, a1.max, a1.last, a1.increase),
                (b2, a2.count, a2.sum, a2.min, a2.max, a2.last, a2.increase)
            );
        }
        let plain = 100 * size_of::<(Resolution, i64, Aggregate)>();
        assert!(
            pending.heap_bytes() * 2 < plain,
            "{} bytes encoded against {plain} as values",
            pending.heap_bytes()
        );
    }
}

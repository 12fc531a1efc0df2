//! What the engine's unit tests share: a small-chunk config, an engine on a [`MemoryKv`], and
//! sample runs from a midnight.

use super::keys::DAY_MS;
use super::{StorageConfig, Tsdb};
use crate::storage::{MemoryKv, Sample, SeriesId};

/// A midnight UTC.
pub(super) const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % DAY_MS;

/// Chunks of 8 samples, so a few appends seal some.
pub(super) fn config() -> StorageConfig {
    StorageConfig {
        max_chunk_samples: 8,
        ..StorageConfig::default()
    }
}

/// The engine on `kv`: opening it again on the same `kv` is a restart.
pub(super) fn open(kv: &MemoryKv) -> Tsdb {
    Tsdb::open(Box::new(kv.clone()), config()).unwrap().tsdb
}

/// Samples `i` of `range` at `T0 + i * step`, valued `i`.
pub(super) fn samples(series: u64, range: std::ops::Range<i64>, step: i64) -> Vec<Sample> {
    range
        .map(|i| Sample {
            series: SeriesId(series),
            timestamp_ms: T0 + i * step,
            value: i as f64,
        })
        .collect()
}

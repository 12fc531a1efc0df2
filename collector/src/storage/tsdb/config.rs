//! Storage tuning: the `[storage]` part of the collector's config file.

use serde::Deserialize;
use std::time::Duration;

/// Storage tuning, part of the collector's config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Most samples in one compressed chunk.
    pub max_chunk_samples: usize,
    /// Longest time one chunk may span.
    #[serde(with = "humantime_serde")]
    pub max_chunk_span: Duration,
    /// How far behind a series' newest sample a late sample may arrive and still be stored.
    #[serde(with = "humantime_serde")]
    pub out_of_order_window: Duration,
    /// How often the head is checkpointed (bounds WAL replay at start-up).
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// RocksDB's memory, bytes: its block cache, with the memtables charged to it (held to
    /// half). `cache_bytes` is the name it had when it bounded the block cache alone.
    #[serde(alias = "cache_bytes")]
    pub memory_bytes: usize,
    /// How long each resolution is kept.
    pub retention: RetentionConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            max_chunk_samples: 512,
            max_chunk_span: Duration::from_secs(2 * 3600),
            out_of_order_window: Duration::from_secs(3600),
            checkpoint_interval: Duration::from_secs(120),
            memory_bytes: 64 << 20,
            retention: RetentionConfig::default(),
        }
    }
}

/// Retention per resolution, and an optional disk budget.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    #[serde(with = "humantime_serde")]
    pub raw: Duration,
    #[serde(with = "humantime_serde")]
    pub rollup_1m: Duration,
    #[serde(with = "humantime_serde")]
    pub rollup_5m: Duration,
    #[serde(with = "humantime_serde")]
    pub rollup_1h: Duration,
    /// When above zero, the oldest raw days are dropped while the store is larger than this.
    pub disk_budget_bytes: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            raw: Duration::from_secs(7 * DAY),
            rollup_1m: Duration::from_secs(30 * DAY),
            rollup_5m: Duration::from_secs(90 * DAY),
            rollup_1h: Duration::from_secs(730 * DAY),
            disk_budget_bytes: 0,
        }
    }
}

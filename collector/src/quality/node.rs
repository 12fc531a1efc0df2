//! What the tracker keeps of one node: its series' quality counts and its batches' lags and
//! refusals, per half-window. Pure.

use super::series::SeriesQuality;
use crate::storage::SeriesId;
use rustc_hash::FxHashMap;

/// Bounds of the batch-lag histogram, in ms (the last bucket is everything above).
pub const LAG_BOUNDS_MS: [i64; 12] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
];

/// One half-window of a node's batch figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchHalf {
    pub index: i64,
    /// Live batches per lag bucket ([`LAG_BOUNDS_MS`], then above).
    pub lags: [u32; LAG_BOUNDS_MS.len() + 1],
    /// The smallest lag of a live batch (arrival − newest sample): the clock offset plus the
    /// shortest delivery; negative when the node's clock is ahead.
    pub min_lag_ms: Option<i64>,
    /// Samples ingest refused from this node (invalid batches).
    pub refused_samples: u32,
}

/// What the tracker keeps of one node.
#[derive(Debug, Default)]
pub struct NodeQuality {
    pub series: FxHashMap<SeriesId, SeriesQuality>,
    pub batches: [BatchHalf; 2],
}

impl NodeQuality {
    /// The counts of half-window `index` (by arrival), rotating the older one out.
    pub fn half(&mut self, index: i64) -> &mut BatchHalf {
        let [current, previous] = &mut self.batches;
        if index > current.index {
            *previous = if index == current.index + 1 {
                *current
            } else {
                BatchHalf::default()
            };
            *current = BatchHalf {
                index,
                ..BatchHalf::default()
            };
        }
        if index == previous.index && index != current.index {
            previous
        } else {
            current
        }
    }
}

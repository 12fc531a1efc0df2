//! Data quality: how far each node's (and each series') data can be trusted, in five
//! dimensions with the Enhanced Performance Monitor's weights and thresholds
//! (`dimension.rs`): completeness, consistency, accuracy, timeliness and validity.
//!
//! - `series.rs`: per-series counts, updated per stored sample (pure, a few compares);
//! - `tracker.rs`: [`QualityTracker`], the ingest observer that keeps them per node
//!   (`node.rs`: with each node's batch lags and ingest refusals);
//! - `evaluate.rs`: the scores and the checks behind them, the gaps and the worst series;
//! - `recommend.rs`: what to do, naming the cause.
//!
//! Evaluation runs every `[quality] interval` (`recorded/quality.rs`), which also stores each
//! node's scores as `hcmon_data_quality_score{node, job, instance, dimension}`, so their trend
//! and forecast come from the trend engine and reports can average them. Low completeness or
//! validity marks a series' anomaly verdicts low-confidence (they do not page), and a quality
//! rule (`[[alerting.quality_rules]]`) alerts on a node below a threshold.

pub mod dimension;
pub mod evaluate;
pub mod node;
pub mod recommend;
pub mod series;
pub mod tracker;

pub use dimension::{Dimension, Scores};
pub use evaluate::{NodeReport, QualityReport};
pub use tracker::QualityTracker;

use serde::Deserialize;
use std::time::Duration;

/// `[quality]` in the collector's config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Whether the collector scores data quality at all.
    pub enabled: bool,
    /// The span scores cover: between half of it and all of it, back from now.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How often scores are worked out and stored.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Per node, how many of the worst series `/metrics` and the API list.
    pub worst_series: usize,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(3600),
            interval: Duration::from_secs(60),
            worst_series: 10,
        }
    }
}

impl QualityConfig {
    /// Checks what the types cannot, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.window < Duration::from_secs(60) {
            return Err(format!(
                "quality.window {:?} is too short to score anything; use at least 1m",
                self.window
            ));
        }
        if self.interval < Duration::from_secs(1) {
            return Err(format!(
                "quality.interval {:?} is too short; use at least 1s",
                self.interval
            ));
        }
        Ok(())
    }
}

//! The trend engine: where a series is heading, how sure we can be, and when it will cross a
//! limit ("disk / is filling at this rate, full in 9 h (± 2 h)"). Pure computation, no I/O.
//!
//! - `regression.rs`: the least-squares line through a window of samples ([`fit_line`],
//!   [`Fit`]).
//! - `forecast.rs`: extrapolating that line: forecasts with prediction intervals
//!   ([`Forecast`]) and when it reaches a limit ([`TimeToThreshold`]).
//! - `seasonal.rs`: resampling onto a regular grid ([`resample`]) and finding a period
//!   ([`detect_period`]).
//! - `smoothing.rs`: Holt-Winters along the period found, Holt's linear method without one
//!   ([`Smoother`]).
//!
//! The Student-t quantile behind the intervals is in `analytics/stats.rs`, with the other
//! numerics the engines share.

mod forecast;
mod regression;
mod seasonal;
mod smoothing;

pub use forecast::{Bound, Forecast, TimeToThreshold};
pub use regression::{Fit, fit_line};
pub use seasonal::{MAX_RESAMPLED_POINTS, detect_period, resample};
pub use smoothing::{Holt, HoltWinters, Smoother};

use std::time::Duration;

/// Two samples fix a line; the third is the first that can disagree with it.
const MIN_FIT_SAMPLES: usize = 3;

/// How a trend is read and judged: the window and horizon the caller uses, and the gates and
/// confidence of [`Fit::time_to_threshold`] and the forecast intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendConfig {
    /// How much history the line is fitted to: the caller reads the samples this much older
    /// than the newest. Longer windows are steadier, shorter ones follow changes sooner.
    pub window: Duration,
    /// How far past the newest sample forecasts look.
    pub horizon: Duration,
    /// Fewest samples in the window before a time-to-threshold is reported; below 3 counts as 3
    /// (two to draw a line, one more to measure its error).
    pub min_samples: usize,
    /// Lowest R² for which a time-to-threshold is reported, in [0, 1]: below it the line explains
    /// too little of the movement to extrapolate from it.
    pub min_r2: f64,
    /// Coverage of forecast intervals and time-to-threshold ranges, strictly between 0 and 1.
    pub confidence: f64,
}

impl Default for TrendConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(3600),
            horizon: Duration::from_secs(3600),
            min_samples: 10,
            min_r2: 0.5,
            confidence: 0.95,
        }
    }
}

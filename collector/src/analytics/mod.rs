//! The analytics engines: anomaly detection, trends and correlation. Pure computation with no
//! I/O: the live path feeds them samples as they are stored, `hcmon replay` feeds them a CSV or a
//! stored range, and both run the same code with the same defaults.
//!
//! - [`anomaly`]: online per-series detectors (O(1) time and memory per sample) and the ensemble
//!   that turns their outputs into one score, a severity and the evidence.
//! - [`forest`]: Isolation Forest over a node's feature vectors, trained in the background.
//! - [`ocsvm`]: One-Class SVM over the same vectors, the forest's alternative.
//! - [`trend`]: least-squares trends, forecasts, time-to-threshold, period detection and
//!   seasonal smoothing.
//! - [`correlation`]: lagged Pearson correlation between series.
//! - [`compare`]: before/after comparison of windows of a series, and experiment criteria.
//! - [`budget`]: how a caller stops the engines whose cost grows faster than their input.
//! - [`slo`]: SLO arithmetic: calendar periods, tallies, error budgets, burn rates.
//! - `stats.rs`: the numerics they share (Student-t and sample quantiles).

pub mod anomaly;
pub mod budget;
pub mod compare;
pub mod correlation;
pub mod forest;
pub mod ocsvm;
pub mod slo;
mod stats;
#[cfg(test)]
mod test_support;
pub mod trend;

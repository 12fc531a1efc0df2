//! Online anomaly detection for one series: detectors that each cost O(1) per sample, and an
//! ensemble that turns their outputs into one score in 0..1, a severity, and the evidence behind
//! it. `detectors.rs` holds the detectors and [`SeriesDetector`], which feeds them a series;
//! `ensemble.rs` the verdict ([`Verdict`], [`Severity`]) and how it is reached. This file holds
//! their shared tuning, [`AnomalyConfig`].

mod detectors;
mod ensemble;

pub use detectors::SeriesDetector;
pub use ensemble::{Detector, DetectorOutput, Evidence, Severity, Verdict};

use serde::Deserialize;

/// Tuning of the online detectors and the ensemble; `[analytics.anomaly]` in the collector's
/// config. The same defaults drive live detection and `hcmon replay`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Distance from the expected value, in standard deviations (or robust equivalents), at
    /// which a detector fires.
    pub sensitivity: f64,
    /// Weight of each new sample in the z-score's exponentially weighted mean and variance.
    /// Small values make a slow baseline that also sees drifts.
    pub ewma_alpha: f64,
    /// Samples in the robust (median/MAD, IQR) and moving-average windows.
    pub window: usize,
    /// Tukey's fence multiplier for the IQR detector.
    pub iqr_multiplier: f64,
    /// How fast the adaptive threshold follows the series (0..1).
    pub adaptation_rate: f64,
    /// Samples a series needs before any detector may fire; until then it is "learning".
    pub min_samples: u64,
    /// Days a seasonal slot must have been observed on before it may veto or fire.
    pub seasonal_min_days: u32,
    /// Offset of local time from UTC in minutes, for the hour-of-day and day-of-week profiles.
    pub utc_offset_minutes: i32,
    /// Weight of each new sample in the drift detector's slow baseline.
    pub drift_alpha: f64,
    /// CUSUM decision interval, in standard deviations of accumulated excess: higher is slower
    /// and quieter.
    pub drift_threshold: f64,
    /// Ensemble score (0..1) at which a sample is anomalous.
    pub score_threshold: f64,
    /// Detectors that must fire together for an anomaly.
    pub min_votes: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            sensitivity: 3.0,
            ewma_alpha: 0.05,
            window: 50,
            iqr_multiplier: 1.5,
            adaptation_rate: 0.1,
            min_samples: 30,
            seasonal_min_days: 2,
            utc_offset_minutes: 0,
            drift_alpha: 0.005,
            drift_threshold: 8.0,
            score_threshold: 0.6,
            min_votes: 2,
        }
    }
}

impl AnomalyConfig {
    /// Checks values the types alone cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |name: &str, v: f64| {
            if v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(format!("{name}: {v} must be in (0, 1]"))
            }
        };
        if !(self.sensitivity.is_finite() && self.sensitivity > 0.0) {
            return Err(format!(
                "sensitivity: {} must be a positive number of standard deviations",
                self.sensitivity
            ));
        }
        unit("ewma_alpha", self.ewma_alpha)?;
        unit("adaptation_rate", self.adaptation_rate)?;
        unit("drift_alpha", self.drift_alpha)?;
        if !(self.drift_threshold.is_finite() && self.drift_threshold > 0.0) {
            return Err(format!(
                "drift_threshold: {} must be positive",
                self.drift_threshold
            ));
        }
        unit("score_threshold", self.score_threshold)?;
        if !(4..=10_000).contains(&self.window) {
            return Err(format!("window: {} must be 4..=10000 samples", self.window));
        }
        if !(self.iqr_multiplier.is_finite() && self.iqr_multiplier > 0.0) {
            return Err(format!(
                "iqr_multiplier: {} must be positive",
                self.iqr_multiplier
            ));
        }
        if self.min_votes == 0 || self.min_votes > Detector::ALL.len() {
            return Err(format!(
                "min_votes: {} must be 1..={}",
                self.min_votes,
                Detector::ALL.len()
            ));
        }
        if self.utc_offset_minutes.abs() > 14 * 60 {
            return Err(format!(
                "utc_offset_minutes: {} is not a real time zone",
                self.utc_offset_minutes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_key() {
        let bad = AnomalyConfig {
            window: 2,
            ..AnomalyConfig::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("window"));
        let bad = AnomalyConfig {
            min_votes: 9,
            ..AnomalyConfig::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("min_votes"));
        AnomalyConfig::default().validate().unwrap();
    }
}

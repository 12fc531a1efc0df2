//! Online anomaly detection for one series, O(1) time and about 1.7 KiB of state per series:
//! models of what the series should do (`models.rs`), evidence calibrated into a tail
//! probability learnt on the series itself (`calibration.rs`), a score and one detection per
//! event (`ensemble.rs`), and [`SeriesDetector`], which runs them on every sample
//! (`series.rs`). This file holds their shared tuning, [`AnomalyConfig`].

mod calibration;
mod ensemble;
mod models;
mod series;

pub use ensemble::{Detector, DetectorOutput, Episode, Evidence, Severity, Verdict};
pub use series::SeriesDetector;

use serde::Deserialize;

/// Tuning of the online detectors and the ensemble; `[analytics.anomaly]` in the collector's
/// config. The same defaults drive live detection and `hcmon replay`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Width, in standard deviations, of the expected range each detector shows with its
    /// evidence, and of the band the drift detector's slow baseline learns within (an outlier
    /// moves it no more than a value at the band's edge).
    pub sensitivity: f64,
    /// Weight of each new sample in the recent level's exponentially weighted mean and
    /// variance: about 1/alpha samples of memory.
    pub ewma_alpha: f64,
    /// Samples a series needs before any detector may fire; until then it is "learning".
    pub min_samples: u64,
    /// Days a time-of-day slot must have been observed on before it counts.
    pub seasonal_min_days: u32,
    /// Offset of local time from UTC in minutes, for the time-of-day and weekday profiles.
    pub utc_offset_minutes: i32,
    /// Weight of each new sample in the drift detector's slow baseline.
    pub drift_alpha: f64,
    /// Score (0..1) at which an episode is detected. The score is calibrated per series:
    /// 0.5 means evidence this strong comes once in a thousand samples of the series' normal
    /// behaviour, 0.67 once in ten thousand, 1 once in a million.
    pub score_threshold: f64,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            sensitivity: 3.0,
            ewma_alpha: 0.05,
            min_samples: 30,
            seasonal_min_days: 2,
            utc_offset_minutes: 0,
            drift_alpha: 0.005,
            score_threshold: 0.5,
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
        unit("drift_alpha", self.drift_alpha)?;
        unit("score_threshold", self.score_threshold)?;
        if self.seasonal_min_days == 0 || self.seasonal_min_days > 255 {
            return Err(format!(
                "seasonal_min_days: {} must be 1..=255",
                self.seasonal_min_days
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
            score_threshold: 1.5,
            ..AnomalyConfig::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("score_threshold"));
        let bad = AnomalyConfig {
            seasonal_min_days: 0,
            ..AnomalyConfig::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("seasonal_min_days"));
        AnomalyConfig::default().validate().unwrap();
    }
}

//! The five dimensions of data quality, their weights in the overall score and the threshold
//! each must hold, as the Enhanced Performance Monitor defines them. Pure.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Samples received ÷ samples expected at the series' interval.
    Completeness,
    /// Counters that go backwards without a reset, values that contradict each other,
    /// duplicates with different values.
    Consistency,
    /// Physically impossible values; the agent's clock against the collector's.
    Accuracy,
    /// Samples arriving within their interval (back-fill is late, not bad).
    Timeliness,
    /// Values and labels that fit their declared kind and schema.
    Validity,
}

impl Dimension {
    pub const ALL: [Dimension; 5] = [
        Dimension::Completeness,
        Dimension::Consistency,
        Dimension::Accuracy,
        Dimension::Timeliness,
        Dimension::Validity,
    ];

    /// Its weight in the overall score; the weights sum to 1.
    pub fn weight(self) -> f64 {
        match self {
            Dimension::Completeness => 0.25,
            Dimension::Consistency => 0.20,
            Dimension::Accuracy => 0.25,
            Dimension::Timeliness => 0.15,
            Dimension::Validity => 0.15,
        }
    }

    /// The score the dimension must reach; below it, it fails.
    pub fn threshold(self) -> f64 {
        match self {
            Dimension::Completeness => 0.95,
            Dimension::Consistency => 0.90,
            Dimension::Accuracy => 0.95,
            Dimension::Timeliness => 0.90,
            Dimension::Validity => 0.95,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Completeness => "completeness",
            Dimension::Consistency => "consistency",
            Dimension::Accuracy => "accuracy",
            Dimension::Timeliness => "timeliness",
            Dimension::Validity => "validity",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A score in 0..1 per dimension.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    pub completeness: f64,
    pub consistency: f64,
    pub accuracy: f64,
    pub timeliness: f64,
    pub validity: f64,
}

impl Default for Scores {
    /// Nothing observed yet is nothing wrong.
    fn default() -> Self {
        Self {
            completeness: 1.0,
            consistency: 1.0,
            accuracy: 1.0,
            timeliness: 1.0,
            validity: 1.0,
        }
    }
}

impl Scores {
    pub fn get(&self, dimension: Dimension) -> f64 {
        match dimension {
            Dimension::Completeness => self.completeness,
            Dimension::Consistency => self.consistency,
            Dimension::Accuracy => self.accuracy,
            Dimension::Timeliness => self.timeliness,
            Dimension::Validity => self.validity,
        }
    }

    /// The weighted overall score.
    pub fn overall(&self) -> f64 {
        Dimension::ALL
            .iter()
            .map(|&d| d.weight() * self.get(d).clamp(0.0, 1.0))
            .sum()
    }

    /// The dimensions below their threshold.
    pub fn failing(&self) -> Vec<Dimension> {
        Dimension::ALL
            .into_iter()
            .filter(|&d| self.get(d) < d.threshold())
            .collect()
    }

    /// Whether anomaly verdicts on this data can be trusted: complete and valid enough.
    pub fn confident(&self) -> bool {
        self.completeness >= Dimension::Completeness.threshold()
            && self.validity >= Dimension::Validity.threshold()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_and_overall_weighs_each_dimension() {
        let total: f64 = Dimension::ALL.iter().map(|d| d.weight()).sum();
        assert!((total - 1.0).abs() < 1e-12);
        let perfect = Scores::default();
        assert!((perfect.overall() - 1.0).abs() < 1e-12);
        assert!(perfect.failing().is_empty());
        let gappy = Scores {
            completeness: 0.8,
            ..Scores::default()
        };
        assert!((gappy.overall() - (1.0 - 0.25 * 0.2)).abs() < 1e-12);
        assert_eq!(gappy.failing(), vec![Dimension::Completeness]);
        assert!(!gappy.confident());
        // Thresholds are inclusive: exactly at the threshold passes.
        let edge = Scores {
            consistency: 0.90,
            timeliness: 0.90,
            ..Scores::default()
        };
        assert!(edge.failing().is_empty());
        assert_eq!(Dimension::parse("timeliness"), Some(Dimension::Timeliness));
    }
}

//! The ensemble: what each detector said about a sample ([`DetectorOutput`]) turned into one
//! [`Verdict`]: a score in 0..1, whether it is an anomaly, a [`Severity`] and the evidence.
//!
//! Each detector reports a *strength* s = |deviation| / threshold (s ≥ 1 means it fired). The
//! score is the weighted mean of f(s) = s²/(1 + s²) over the detectors that are ready (one at its
//! threshold contributes 0.5 of its weight; several far past theirs approach 1), or 0.8·f(s) of
//! the strongest detector when that is higher, so one detector far past its threshold (the drift
//! detector on a slow leak) can carry the verdict alone. A sample is anomalous when the score
//! reaches `score_threshold` and at least `min_votes` detectors fired, or one fired at twice its
//! threshold. A mature seasonal profile that says "normal for this hour" (within 1.5 bands)
//! scales the score by 0.6, so all but extreme deviations at the usual time (the nightly backup)
//! stay quiet.

use super::AnomalyConfig;
use std::fmt;

/// One of the ensemble's detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Detector {
    ZScore,
    Mad,
    Iqr,
    MovingAverage,
    AdaptiveThreshold,
    Drift,
    Seasonal,
}

impl Detector {
    pub const ALL: [Detector; 7] = [
        Detector::ZScore,
        Detector::Mad,
        Detector::Iqr,
        Detector::MovingAverage,
        Detector::AdaptiveThreshold,
        Detector::Drift,
        Detector::Seasonal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Detector::ZScore => "zscore",
            Detector::Mad => "mad",
            Detector::Iqr => "iqr",
            Detector::MovingAverage => "moving_average",
            Detector::AdaptiveThreshold => "adaptive_threshold",
            Detector::Drift => "drift",
            Detector::Seasonal => "seasonal",
        }
    }

    /// Share of the ensemble score. The seasonal baseline weighs most: it knows the time of day.
    fn weight(self) -> f64 {
        match self {
            Detector::Seasonal => 1.5,
            Detector::Mad | Detector::Iqr => 0.75,
            _ => 1.0,
        }
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How bad an anomaly is, from its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn of(score: f64, anomalous: bool) -> Self {
        match (anomalous, score) {
            (false, _) => Severity::None,
            (true, s) if s >= 0.95 => Severity::Critical,
            (true, s) if s >= 0.85 => Severity::High,
            (true, s) if s >= 0.7 => Severity::Medium,
            (true, _) => Severity::Low,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one detector said about a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorOutput {
    pub detector: Detector,
    /// |deviation| / threshold: 1 or more means the detector fired.
    pub strength: f64,
    /// The range the detector expected the value in.
    pub expected: (f64, f64),
}

impl DetectorOutput {
    pub fn fired(&self) -> bool {
        self.strength >= 1.0
    }
}

/// The outputs of the detectors that were ready, without a heap allocation per sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    items: [DetectorOutput; Detector::ALL.len()],
    len: usize,
}

impl Evidence {
    pub(super) fn new() -> Self {
        let empty = DetectorOutput {
            detector: Detector::ZScore,
            strength: 0.0,
            expected: (0.0, 0.0),
        };
        Self {
            items: [empty; Detector::ALL.len()],
            len: 0,
        }
    }

    pub(super) fn push(&mut self, output: DetectorOutput) {
        self.items[self.len] = output;
        self.len += 1;
    }
}

impl std::ops::Deref for Evidence {
    type Target = [DetectorOutput];

    fn deref(&self) -> &[DetectorOutput] {
        &self.items[..self.len]
    }
}

/// The ensemble's verdict on one sample, with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub value: f64,
    /// 0..1.
    pub score: f64,
    pub is_anomaly: bool,
    pub severity: Severity,
    /// Not enough history yet: nothing can fire.
    pub learning: bool,
    /// Every ready detector's output (those that fired have strength ≥ 1).
    pub detectors: Evidence,
}

impl Verdict {
    /// The detectors that fired, strongest first.
    pub fn fired(&self) -> Vec<Detector> {
        let mut fired: Vec<&DetectorOutput> = self.detectors.iter().filter(|d| d.fired()).collect();
        fired.sort_by(|a, b| b.strength.total_cmp(&a.strength));
        fired.into_iter().map(|d| d.detector).collect()
    }
}

/// The verdict on `value` from the ready detectors' outputs.
pub(super) fn ensemble(
    value: f64,
    learning: bool,
    detectors: Evidence,
    config: &AnomalyConfig,
) -> Verdict {
    if learning || detectors.is_empty() {
        return Verdict {
            value,
            score: 0.0,
            is_anomaly: false,
            severity: Severity::None,
            learning,
            detectors,
        };
    }
    let f = |s: f64| s * s / (1.0 + s * s);
    let (mut weighted, mut weights) = (0.0f64, 0.0f64);
    for d in detectors.iter() {
        let w = d.detector.weight();
        weighted += w * f(d.strength);
        weights += w;
    }
    let strongest = detectors.iter().map(|d| d.strength).fold(0.0, f64::max);
    let mut score = (weighted / weights).max(0.8 * f(strongest));
    let votes = detectors.iter().filter(|d| d.fired()).count();
    // Within 1.5 bands (4.5 sd at the default sensitivity) of this hour's usual value.
    let seasonal_normal = detectors
        .iter()
        .any(|d| d.detector == Detector::Seasonal && d.strength < 1.5);
    if seasonal_normal {
        // Normal for this hour of this weekday: only an extreme deviation still counts.
        score *= 0.6;
    }
    let is_anomaly =
        score >= config.score_threshold && (votes >= config.min_votes || strongest >= 2.0);
    Verdict {
        value,
        score,
        is_anomaly,
        severity: Severity::of(score, is_anomaly),
        learning,
        detectors,
    }
}

//! From evidence to verdict: the surprise of a sample (−log₁₀ of its tail probability, from
//! the calibrators) becomes a score in 0..1, and [`EpisodeGate`] turns scores into one
//! detection per event.
//!
//! The score is surprise / 6, capped at 1: 0.5 means this series produces evidence this strong
//! once in a thousand samples in its normal state, 1 once in a million or less. Because the
//! tail is learnt per series, the same threshold means the same false-alarm rate on a quiet
//! gauge, a heavy-tailed latency and a bursty network counter.
//!
//! An anomaly is an *episode*, not a sample: the sample whose score first reaches the
//! threshold is the detection (`is_anomaly`), and the series then stays in the episode, its
//! score held below the threshold, until it re-arms: when the share of its samples in the tail
//! of their distribution is back to about normal (it has returned to its baseline or the
//! baselines have settled on the new level), or after `MAX_EPISODE` samples. Alert rules fire
//! for the whole episode; replay and the detection benchmark see one detection per event,
//! which is what a person paged would want.

use std::fmt;

/// Surprise (−log₁₀ of the tail probability) at which the score reaches 1.
const CERTAIN_SURPRISE: f64 = 6.0;
/// Weight of each sample in the recent share of samples in the tail.
const TAIL_RATE_ALPHA: f64 = 0.02;
/// The share of samples in the tail (2 % in the normal state) at which an episode ends.
const REARM_TAIL_RATE: f64 = 0.04;
/// Longest episode, in samples: a series that stays abnormal is reported again after this.
const MAX_EPISODE: u32 = 1000;

/// The score of a sample with this surprise.
pub(super) fn score_of(surprise: f64) -> f64 {
    (surprise / CERTAIN_SURPRISE).clamp(0.0, 1.0)
}

/// The surprise a score stands for (its inverse), to compare a detector with the threshold.
pub(super) fn surprise_of(score: f64) -> f64 {
    score * CERTAIN_SURPRISE
}

/// One of the ensemble's detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Detector {
    /// Distance from the recent level, in recent standard deviations.
    Level,
    /// Distance from the usual value at this time of day and weekday.
    Seasonal,
    /// Accumulated small deviations from a slow baseline (CUSUM).
    Drift,
}

impl Detector {
    pub const ALL: [Detector; 3] = [Detector::Level, Detector::Seasonal, Detector::Drift];

    pub fn name(self) -> &'static str {
        match self {
            Detector::Level => "level",
            Detector::Seasonal => "seasonal",
            Detector::Drift => "drift",
        }
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How bad an anomaly is, from the highest score of its episode.
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
    /// The severity of an anomaly whose score reached `peak`.
    fn of(peak: f64) -> Self {
        match peak {
            s if s >= 0.95 => Severity::Critical,
            s if s >= 0.85 => Severity::High,
            s if s >= 0.7 => Severity::Medium,
            _ => Severity::Low,
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
    /// Distance from the expected value in bands (`sensitivity` standard deviations) for the
    /// level and seasonal detectors, surprise relative to the score threshold's for drift: 1
    /// or more means the detector fired.
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
            detector: Detector::Level,
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

/// An anomalous episode in progress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    /// Time of the sample that was the detection.
    pub started_ms: i64,
    /// Highest score of the episode so far.
    pub peak_score: f64,
    /// Samples since the detection.
    pub samples: u32,
}

impl Episode {
    pub fn severity(&self) -> Severity {
        Severity::of(self.peak_score)
    }
}

/// The ensemble's verdict on one sample, with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub value: f64,
    /// 0..1; held below the threshold during an episode after its detection.
    pub score: f64,
    /// This sample is the detection of an anomalous episode (one per event).
    pub is_anomaly: bool,
    /// The episode's severity while one is in progress, `None` otherwise.
    pub severity: Severity,
    /// Not enough history yet: nothing can fire.
    pub learning: bool,
    /// The anomalous episode this sample belongs to, from its detection until it re-arms.
    pub episode: Option<Episode>,
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

/// One detection per event: holds a series in its episode until it re-arms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct EpisodeGate {
    /// The episode in progress, field by field; `started_ms` is `i64::MIN` when there is none
    /// (an `Option<Episode>` would add 8 bytes of padding to every series' state).
    started_ms: i64,
    peak_score: f64,
    samples: u32,
    /// Recent share of samples in the tail of each evidence (point, drift).
    tail_rates: [f64; 2],
}

/// What the gate made of a sample.
pub(super) struct Gated {
    pub(super) score: f64,
    pub(super) detection: bool,
    pub(super) episode: Option<Episode>,
}

impl EpisodeGate {
    pub(super) fn new() -> Self {
        Self {
            started_ms: i64::MIN,
            peak_score: 0.0,
            samples: 0,
            tail_rates: [REARM_TAIL_RATE / 2.0; 2],
        }
    }

    fn episode(&self) -> Option<Episode> {
        (self.started_ms != i64::MIN).then_some(Episode {
            started_ms: self.started_ms,
            peak_score: self.peak_score,
            samples: self.samples,
        })
    }

    /// Judges a sample at `timestamp_ms` with `score`; `in_tail` says whether each evidence
    /// (point, drift) was in the tail of its distribution on this series.
    pub(super) fn judge(
        &mut self,
        timestamp_ms: i64,
        score: f64,
        in_tail: [bool; 2],
        threshold: f64,
    ) -> Gated {
        for (rate, in_tail) in self.tail_rates.iter_mut().zip(in_tail) {
            *rate += TAIL_RATE_ALPHA * (f64::from(u8::from(in_tail)) - *rate);
        }
        let calm = self.tail_rates.iter().all(|r| *r <= REARM_TAIL_RATE);
        if self.started_ms == i64::MIN {
            let detection = score >= threshold;
            if detection {
                (self.started_ms, self.peak_score, self.samples) = (timestamp_ms, score, 0);
            }
            return Gated {
                score,
                detection,
                episode: self.episode(),
            };
        }
        self.samples += 1;
        self.peak_score = self.peak_score.max(score);
        let current = self.episode();
        let rearmed = calm || self.samples >= MAX_EPISODE;
        if rearmed {
            // Re-armed: this sample is the first after the episode.
            self.started_ms = i64::MIN;
        }
        Gated {
            // Already reported: below the threshold, so the score column of a replay shows
            // one detection per event.
            score: score.min(threshold * 0.99),
            detection: false,
            episode: current.filter(|_| !rearmed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_detection_per_episode_then_rearmed() {
        let mut gate = EpisodeGate::new();
        let first = gate.judge(0, 0.9, [true, false], 0.5);
        assert!(first.detection && first.score == 0.9);
        // A level shift: 50 samples in the tail, all with high scores, reported once.
        for t in 1..50 {
            let g = gate.judge(t, 0.9, [true, false], 0.5);
            assert!(!g.detection && g.score < 0.5 && g.episode.is_some());
        }
        // Back to normal: the episode ends once the tail share is back to about normal.
        let calm = (50..400)
            .take_while(|t| gate.judge(*t, 0.1, [false, false], 0.5).episode.is_some())
            .count();
        assert!(
            (20..300).contains(&calm),
            "re-armed after {calm} calm samples"
        );
        assert!(
            gate.judge(500, 0.8, [true, false], 0.5).detection,
            "a new event is news"
        );
    }

    #[test]
    fn a_single_spike_rearms_at_once() {
        let mut gate = EpisodeGate::new();
        assert!(gate.judge(0, 1.0, [true, false], 0.5).detection);
        gate.judge(1, 0.1, [false, false], 0.5);
        assert!(gate.judge(2, 1.0, [true, false], 0.5).detection);
    }
}

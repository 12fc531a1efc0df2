//! Turns a detector's raw evidence into a tail probability learnt on the series itself, so a
//! score means the same thing on every series: how rarely this series, in its normal state,
//! produces evidence this strong.
//!
//! Raw evidence (a z-score, a CUSUM sum) is not comparable across series: real metrics have
//! heavy tails, are autocorrelated and quantised, so "4 standard deviations" is a daily event
//! on one series and a once-a-year event on another. Extreme-value theory says the excesses of
//! almost any distribution over a high threshold follow a generalised Pareto distribution
//! (Pickands–Balkema–de Haan), which is what peaks-over-threshold methods (SPOT, Siffer et al.
//! 2017) fit. [`TailCalibrator`] does so online in O(1) time and 24 bytes:
//!
//! - the threshold u is the `TAIL` (2 %) upper quantile of the evidence, tracked by stochastic
//!   approximation with steps proportional to the typical excess (so it works at any scale);
//! - the first two moments of the excess e − u over u are exponentially weighted means over the
//!   recent exceedances;
//! - the Pareto shape ξ and scale σ come from those moments (the method of moments), with ξ
//!   kept in [0, 0.2]: a negative shape (a bounded tail) would call anything past the largest
//!   value seen impossible, and a large one would call nothing surprising. Both are the wrong
//!   mistake for alarms.
//!
//! P(E ≥ e) = TAIL · (1 + ξ(e − u)/σ)^(−1/ξ) beyond u. The calibrator starts from a prior (the
//! tail of a standard normal for z-scores) worth about 1/ALPHA exceedances, so a young series
//! is judged as if its noise were Gaussian until it has shown otherwise.

/// Share of the evidence above the tracked threshold.
const TAIL: f64 = 0.02;
/// Weight of each new exceedance in the excess moments: the tail remembers roughly the last
/// hundred exceedances (5,000 samples).
const ALPHA: f64 = 0.01;
/// Quantile tracker's step, in units of the mean excess.
const STEP: f64 = 0.05;
/// Excesses learnt are capped at this many mean excesses: one enormous value that was not
/// judged an anomaly (the first samples after learning) must not blind the tail for weeks.
const MAX_LEARNT_EXCESS: f64 = 20.0;
const MAX_SHAPE: f64 = 0.2;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct TailCalibrator {
    /// The tracked `TAIL` upper quantile of the evidence.
    threshold: f64,
    /// Exponentially weighted mean of the excesses over the threshold.
    excess: f64,
    /// Exponentially weighted mean of their squares.
    excess_sq: f64,
}

impl TailCalibrator {
    /// A calibrator whose prior tail starts at `threshold` with exponential excesses of mean
    /// `mean_excess`.
    pub(super) const fn new(threshold: f64, mean_excess: f64) -> Self {
        Self {
            threshold,
            excess: mean_excess,
            excess_sq: 2.0 * mean_excess * mean_excess,
        }
    }

    /// The surprise of evidence at the threshold, the most that evidence not in the tail
    /// can have: −log₁₀ `TAIL`.
    pub(super) const SURPRISE_AT_THRESHOLD: f64 = 1.698_970_004_336_018_7;

    /// −log₁₀ P(E ≥ evidence) under the learnt tail: 3 means a one-in-a-thousand value for
    /// this series. Below the threshold it rises linearly to the threshold's own level, which
    /// keeps the score continuous without claiming knowledge of the body.
    pub(super) fn surprise(&self, evidence: f64) -> f64 {
        let tail_level = Self::SURPRISE_AT_THRESHOLD;
        let u = self.threshold;
        if evidence <= u {
            return if u > 0.0 {
                tail_level * (evidence / u).max(0.0)
            } else {
                0.0
            };
        }
        let y = evidence - u;
        let m = self.excess.max(f64::MIN_POSITIVE);
        let var = (self.excess_sq - m * m).max(m * m * 1e-6);
        // Method of moments for the generalised Pareto: mean σ/(1−ξ), variance
        // σ²/((1−ξ)²(1−2ξ)), so ξ = (1 − m²/var)/2.
        let shape = (0.5 * (1.0 - m * m / var)).clamp(0.0, MAX_SHAPE);
        let scale = m * (1.0 - shape);
        let log_survival = if shape < 1e-9 {
            -y / scale
        } else {
            -(shape * y / scale).ln_1p() / shape
        };
        tail_level - log_survival * std::f64::consts::LOG10_E
    }

    /// Learns from evidence judged normal.
    pub(super) fn learn(&mut self, evidence: f64) {
        let m = self.excess;
        if evidence > self.threshold {
            let y = (evidence - self.threshold).min(MAX_LEARNT_EXCESS * m.max(1e-12));
            // The prior fades as any older exceedance does: after n exceedances it weighs
            // (1 − ALPHA)ⁿ, so a series whose tail is unlike Gaussian noise (one that is mostly
            // flat and sometimes steps) is believed after a hundred or so.
            self.excess += ALPHA * (y - self.excess);
            self.excess_sq += ALPHA * (y * y - self.excess_sq);
            self.threshold += STEP * m * (1.0 - TAIL);
        } else {
            self.learn_under();
        }
    }

    /// Learns from evidence judged normal that does not exceed the threshold: what
    /// [`learn`](Self::learn) does with any such value, which it need not be given.
    pub(super) fn learn_under(&mut self) {
        self.threshold = (self.threshold - STEP * self.excess * TAIL).max(0.0);
    }

    /// Whether `evidence` is surely not in the tail: at most the tracked quantile (not NaN).
    pub(super) fn surely_under(&self, evidence: f64) -> bool {
        evidence <= self.threshold
    }

    /// Whether `evidence` lies in the tail (above the tracked quantile).
    pub(super) fn exceeds(&self, evidence: f64) -> bool {
        evidence > self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(rng: &mut fastrand::Rng) -> f64 {
        let (u1, u2) = (rng.f64().max(1e-12), rng.f64());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Share of `values` whose surprise is at least `level`.
    fn rate(cal: &TailCalibrator, values: &[f64], level: f64) -> f64 {
        values.iter().filter(|v| cal.surprise(**v) >= level).count() as f64 / values.len() as f64
    }

    #[test]
    fn the_surprise_at_the_threshold_is_that_of_the_tail_share() {
        assert_eq!(TailCalibrator::SURPRISE_AT_THRESHOLD, -TAIL.log10());
        let calibrator = TailCalibrator::new(1.2, 0.12);
        assert_eq!(
            calibrator.surprise(1.2),
            TailCalibrator::SURPRISE_AT_THRESHOLD
        );
    }

    #[test]
    fn learns_the_tail_of_light_and_heavy_distributions() {
        let mut rng = fastrand::Rng::with_seed(1);
        // |N(0,1)| and a Pareto with tail index 3 (P(X > x) = x⁻³): after learning, a
        // surprise of 3 is about a one-in-a-thousand value for both.
        let gaussian: Vec<f64> = (0..200_000).map(|_| normal(&mut rng).abs()).collect();
        let pareto: Vec<f64> = (0..200_000)
            .map(|_| rng.f64().max(1e-12).powf(-1.0 / 3.0))
            .collect();
        for values in [&gaussian, &pareto] {
            let mut cal = TailCalibrator::new(2.33, 0.4);
            for v in &values[..100_000] {
                cal.learn(*v);
            }
            let held_out = &values[100_000..];
            let r = rate(&cal, held_out, 3.0);
            assert!((2e-4..4e-3).contains(&r), "rate at surprise 3: {r}");
            let r = rate(&cal, held_out, 2.0);
            assert!((3e-3..3e-2).contains(&r), "rate at surprise 2: {r}");
        }
    }

    #[test]
    fn a_constant_series_makes_any_change_surprising() {
        let mut cal = TailCalibrator::new(2.33, 0.4);
        for _ in 0..10_000 {
            cal.learn(0.0);
        }
        assert_eq!(cal.surprise(0.0), 0.0);
        assert!(cal.surprise(1e3) > 6.0);
    }
}

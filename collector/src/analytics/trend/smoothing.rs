//! Exponential smoothing of a regularly spaced series, to forecast it along its season.
//!
//! [`HoltWinters`] (additive triple exponential smoothing) models level, trend and a seasonal
//! profile; additive, because the series we watch (load, traffic, temperatures) swing by roughly
//! the same amount whatever their level, and additive stays defined when a series crosses zero.
//! It starts from a classical decomposition of the complete cycles (cycle means for level and
//! trend, the averaged detrended profile for the seasonal indices) and picks alpha, beta and
//! gamma by grid search minimising the one-step-ahead squared error, scored after the first
//! cycle so that the starting values are not what is being measured. A grid of 7 × 5 × 5 is
//! coarse but robust (no optimiser to diverge or stall) and cheap: 175 passes over the data.
//! [`Holt`] (level and trend only) is the fallback when no period is found, and [`Smoother`]
//! picks between the two.

use super::MIN_FIT_SAMPLES;
use super::seasonal::{detect_period, index_line};
use crate::analytics::budget::{Budget, Interrupted};

/// An exponential smoother seen one observation at a time.
trait StepModel {
    /// The forecast `h` ≥ 1 steps past the observations taken in so far.
    fn predict(&self, h: usize) -> f64;
    /// Takes in the next observation.
    fn update(&mut self, y: f64);
}

/// Runs `model` over `values`; returns the one-step-ahead squared error summed from observation
/// `warmup` on.
fn one_step_sse(model: &mut impl StepModel, values: &[f64], warmup: usize) -> f64 {
    let mut sse = 0.0;
    for (t, &y) in values.iter().enumerate() {
        if t >= warmup {
            sse += (y - model.predict(1)).powi(2);
        }
        model.update(y);
    }
    sse
}

/// Holt-Winters smoothing weights, each in [0, 1]: higher follows recent data more closely.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HoltWintersParams {
    /// Level.
    alpha: f64,
    /// Trend.
    beta: f64,
    /// Seasonal profile.
    gamma: f64,
}

const ALPHA_GRID: [f64; 7] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9];
const BETA_GRID: [f64; 5] = [0.0, 0.01, 0.05, 0.1, 0.2];
const GAMMA_GRID: [f64; 5] = [0.05, 0.1, 0.2, 0.3, 0.5];

/// Additive Holt-Winters (triple exponential smoothing) fitted to a regularly spaced series:
/// level, trend and seasonal indices after `t` observations; the index for observation `t` is
/// `seasonal[t % period]`.
#[derive(Debug, Clone)]
pub struct HoltWinters {
    params: HoltWintersParams,
    level: f64,
    trend: f64,
    seasonal: Vec<f64>,
    t: usize,
}

impl HoltWinters {
    /// Fits with the weights from the grid search described in the module doc. None when
    /// `period` < 2, when `values` hold fewer than two full periods, or a non-finite value.
    /// `budget` is asked before each pass over the values.
    pub fn fit(
        values: &[f64],
        period: usize,
        budget: &Budget,
    ) -> Result<Option<Self>, Interrupted> {
        if period < 2 || values.len() < 2 * period || values.iter().any(|v| !v.is_finite()) {
            return Ok(None);
        }
        let mut best: Option<(f64, Self)> = None;
        for alpha in ALPHA_GRID {
            for beta in BETA_GRID {
                for gamma in GAMMA_GRID {
                    budget.check()?;
                    let params = HoltWintersParams { alpha, beta, gamma };
                    let mut model = Self::start(values, period, params);
                    // Scored after the first cycle, whose forecasts mostly repeat the starting
                    // profile.
                    let sse = one_step_sse(&mut model, values, period);
                    if sse.is_finite() && best.as_ref().is_none_or(|(b, _)| sse < *b) {
                        best = Some((sse, model));
                    }
                }
            }
        }
        Ok(best.map(|(_, model)| model))
    }

    /// Classical decomposition of the complete cycles, expressed as the state before the first
    /// observation. Needs at least two cycles.
    fn start(values: &[f64], period: usize, params: HoltWintersParams) -> Self {
        let means: Vec<f64> = values
            .chunks_exact(period)
            .map(|c| c.iter().sum::<f64>() / period as f64)
            .collect();
        let cycles = means.len();
        let trend = (means[cycles - 1] - means[0]) / ((cycles - 1) * period) as f64;
        // A cycle's mean is its level at the cycle's middle; within the cycle the trend would
        // otherwise leak into the seasonal indices as a ramp.
        let middle = (period as f64 - 1.0) / 2.0;
        let mut seasonal = vec![0.0; period];
        for (cycle, mean) in values.chunks_exact(period).zip(&means) {
            for (i, (index, v)) in seasonal.iter_mut().zip(cycle).enumerate() {
                *index += v - mean - trend * (i as f64 - middle);
            }
        }
        for index in &mut seasonal {
            *index /= cycles as f64;
        }
        Self {
            params,
            level: means[0] - trend * (middle + 1.0),
            trend,
            seasonal,
            t: 0,
        }
    }

    /// The period, in samples.
    pub fn period(&self) -> usize {
        self.seasonal.len()
    }
}

impl StepModel for HoltWinters {
    fn predict(&self, h: usize) -> f64 {
        let period = self.seasonal.len();
        self.level + h as f64 * self.trend + self.seasonal[(self.t + h - 1) % period]
    }

    fn update(&mut self, y: f64) {
        let HoltWintersParams { alpha, beta, gamma } = self.params;
        let i = self.t % self.seasonal.len();
        let (level, trend) = (self.level, self.trend);
        self.level = alpha * (y - self.seasonal[i]) + (1.0 - alpha) * (level + trend);
        self.trend = beta * (self.level - level) + (1.0 - beta) * trend;
        self.seasonal[i] = gamma * (y - level - trend) + (1.0 - gamma) * self.seasonal[i];
        self.t += 1;
    }
}

/// Holt's linear smoothing weights, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
struct HoltParams {
    /// Level.
    alpha: f64,
    /// Trend.
    beta: f64,
}

const HOLT_ALPHA_GRID: [f64; 8] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0];
const HOLT_BETA_GRID: [f64; 6] = [0.0, 0.01, 0.05, 0.1, 0.2, 0.3];
/// Holt starts from the least-squares line through this many first observations.
const HOLT_START_POINTS: usize = 10;
/// The first observations mostly measure the starting line, not the weights.
const HOLT_WARMUP: usize = 2;

/// Holt's linear method (double exponential smoothing): level and trend, no season. The fallback
/// for series without a period.
#[derive(Debug, Clone, Copy)]
pub struct Holt {
    params: HoltParams,
    level: f64,
    trend: f64,
}

impl Holt {
    /// Fits with weights from a grid search (8 × 6) minimising the one-step-ahead squared error.
    /// None with fewer than three values or a non-finite one. `budget` is asked before each pass.
    pub fn fit(values: &[f64], budget: &Budget) -> Result<Option<Self>, Interrupted> {
        if values.len() < MIN_FIT_SAMPLES || values.iter().any(|v| !v.is_finite()) {
            return Ok(None);
        }
        let mut best: Option<(f64, Self)> = None;
        for alpha in HOLT_ALPHA_GRID {
            for beta in HOLT_BETA_GRID {
                budget.check()?;
                let mut model = Self::start(values, HoltParams { alpha, beta });
                let sse = one_step_sse(&mut model, values, HOLT_WARMUP);
                if sse.is_finite() && best.is_none_or(|(b, _)| sse < b) {
                    best = Some((sse, model));
                }
            }
        }
        Ok(best.map(|(_, model)| model))
    }

    /// The state before the first observation, so that its forecast is the starting line's value.
    fn start(values: &[f64], params: HoltParams) -> Self {
        let (intercept, slope) = index_line(&values[..values.len().min(HOLT_START_POINTS)]);
        Self {
            params,
            level: intercept - slope,
            trend: slope,
        }
    }
}

impl StepModel for Holt {
    fn predict(&self, h: usize) -> f64 {
        self.level + h as f64 * self.trend
    }

    fn update(&mut self, y: f64) {
        let HoltParams { alpha, beta } = self.params;
        let level = self.level;
        self.level = alpha * y + (1.0 - alpha) * (level + self.trend);
        self.trend = beta * (self.level - level) + (1.0 - beta) * self.trend;
    }
}

/// Holt-Winters when the series has a period, Holt's linear method otherwise.
#[derive(Debug, Clone)]
pub enum Smoother {
    /// A period was found and the series holds two full periods.
    Seasonal(HoltWinters),
    /// No period: level and trend only.
    Linear(Holt),
}

impl Smoother {
    /// Detects the period ([`detect_period`]) and fits Holt-Winters with it, or Holt's linear
    /// method when there is none. None with fewer than three values or a non-finite one.
    /// Interrupted when `budget` says to stop.
    pub fn fit(values: &[f64], budget: &Budget) -> Result<Option<Self>, Interrupted> {
        if let Some(period) = detect_period(values, budget)?
            && let Some(seasonal) = HoltWinters::fit(values, period, budget)?
        {
            return Ok(Some(Self::Seasonal(seasonal)));
        }
        Ok(Holt::fit(values, budget)?.map(Self::Linear))
    }

    /// The value `steps` after the end of the series (the first when `steps` is 0), in O(1)
    /// however far ahead.
    pub fn forecast_at(&self, steps: usize) -> f64 {
        let h = steps.max(1);
        match self {
            Self::Seasonal(hw) => hw.predict(h),
            Self::Linear(holt) => holt.predict(h),
        }
    }

    /// The period used, if any.
    pub fn period(&self) -> Option<usize> {
        match self {
            Self::Seasonal(hw) => Some(hw.period()),
            Self::Linear(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::test_support::{assert_close, normal};
    use std::f64::consts::PI;

    /// The next `steps` values after the series.
    fn forecast(model: &impl StepModel, steps: usize) -> Vec<f64> {
        (1..=steps).map(|h| model.predict(h)).collect()
    }

    fn mae(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64
    }

    /// A period-24 series with a trend and a second seasonal component, amplitude 20.
    fn seasonal(i: usize) -> f64 {
        let i = i as f64;
        100.0 + 0.05 * i + 20.0 * (2.0 * PI * i / 24.0).sin() + 5.0 * (2.0 * PI * i / 8.0).cos()
    }

    #[test]
    fn holt_winters_tracks_the_next_period_of_a_clean_seasonal_series() {
        let train: Vec<f64> = (0..240).map(seasonal).collect();
        let next: Vec<f64> = (240..264).map(seasonal).collect();
        let hw = HoltWinters::fit(&train, 24, &Budget::UNLIMITED)
            .unwrap()
            .unwrap();
        let hw_mae = mae(&forecast(&hw, 24), &next);
        let holt = Holt::fit(&train, &Budget::UNLIMITED).unwrap().unwrap();
        let holt_mae = mae(&forecast(&holt, 24), &next);
        assert!(hw_mae < 0.05 * 20.0, "Holt-Winters MAE {hw_mae}");
        assert!(
            holt_mae > 5.0 * hw_mae,
            "Holt {holt_mae} vs Holt-Winters {hw_mae}"
        );

        let auto = Smoother::fit(&train, &Budget::UNLIMITED).unwrap().unwrap();
        assert_eq!(auto.period(), Some(24));
        let auto_forecast: Vec<f64> = (1..=24).map(|h| auto.forecast_at(h)).collect();
        assert_eq!(auto_forecast, forecast(&hw, 24));
    }

    #[test]
    fn holt_winters_beats_the_fallback_on_a_noisy_seasonal_series() {
        let mut rng = fastrand::Rng::with_seed(5);
        let noisy: Vec<f64> = (0..264)
            .map(|i| seasonal(i) + 2.0 * normal(&mut rng))
            .collect();
        let next: Vec<f64> = (240..264).map(seasonal).collect();
        let hw = HoltWinters::fit(&noisy[..240], 24, &Budget::UNLIMITED)
            .unwrap()
            .unwrap();
        let hw_mae = mae(&forecast(&hw, 24), &next);
        let holt = Holt::fit(&noisy[..240], &Budget::UNLIMITED)
            .unwrap()
            .unwrap();
        let holt_mae = mae(&forecast(&holt, 24), &next);
        assert!(hw_mae < 0.15 * 20.0, "Holt-Winters MAE {hw_mae}");
        assert!(
            holt_mae > 3.0 * hw_mae,
            "Holt {holt_mae} vs Holt-Winters {hw_mae}"
        );
    }

    #[test]
    fn smoothers_fall_back_to_holt_without_a_period() {
        let line: Vec<f64> = (0..100).map(|i| 3.0 + 0.5 * i as f64).collect();
        let smoother = Smoother::fit(&line, &Budget::UNLIMITED).unwrap().unwrap();
        assert_eq!(smoother.period(), None);
        for h in 1..=10 {
            let expected = 3.0 + 0.5 * (99 + h) as f64;
            assert_close(smoother.forecast_at(h), expected, 1e-9, "line forecast");
        }
        assert_eq!(smoother.forecast_at(0), smoother.forecast_at(1));
        // A year of steps ahead costs no more than one.
        assert_close(
            smoother.forecast_at(1 << 40),
            3.0 + 0.5 * (99 + (1_u64 << 40)) as f64,
            1e-3,
            "far forecast",
        );
        assert!(
            Smoother::fit(&[1.0, 2.0], &Budget::UNLIMITED)
                .unwrap()
                .is_none()
        );
        assert!(
            HoltWinters::fit(&line[..47], 24, &Budget::UNLIMITED)
                .unwrap()
                .is_none(),
            "needs two periods"
        );
    }

    /// A caller's deadline stops a long period search part-way, and a budget that never says
    /// stop gives the same answer as before.
    #[test]
    fn a_budget_stops_the_seasonal_fit_midway() {
        let mut rng = fastrand::Rng::with_seed(3);
        let long: Vec<f64> = (0..4000)
            .map(|i| 30.0 + 10.0 * (2.0 * PI * i as f64 / 144.0).sin() + normal(&mut rng))
            .collect();
        let checks = std::cell::Cell::new(0_usize);
        let after_100 = || {
            checks.set(checks.get() + 1);
            checks.get() > 100
        };
        let budget = Budget::new(&after_100);
        assert_eq!(Smoother::fit(&long, &budget).map(|_| ()), Err(Interrupted));
        assert_eq!(detect_period(&long, &budget), Err(Interrupted));
        // 100 of the ~2000 lags: the search was stopped, not finished and then refused.
        assert_eq!(checks.get(), 102);
        let unlimited = Smoother::fit(&long, &Budget::UNLIMITED).unwrap().unwrap();
        assert_eq!(unlimited.period(), Some(144));
    }
}

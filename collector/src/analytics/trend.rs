//! The trend engine: where a series is heading, how sure we can be, and when it will cross a
//! limit ("disk / is filling at this rate, full in 9 h (± 2 h)"). Pure computation, no I/O.
//!
//! # Linear trend
//!
//! Ordinary least squares over a sliding time window ([`SlidingRegression`], default one hour),
//! or over a slice ([`fit_line`]). A straight line is the right model for the question operators
//! ask of a trend — "at this rate, when?" — its slope is a rate they can read, and a window
//! lets the answer follow a change of regime once the old samples have left it. Both forms
//! return the same [`Fit`]: slope per second, intercept, R², residual standard error and the
//! slope's standard error.
//!
//! The online form keeps the running sums Σt, Σv, Σt², Σtv, Σv² and the window's samples in a
//! `VecDeque`; a sample costs O(1) amortised (added once, subtracted once when it leaves).
//! Raw sums would be useless here: timestamps are Unix milliseconds (~1.7·10¹²), so Σt² is
//! ~10²⁴ per sample while the spread inside a window is ~10⁷, and subtracting the two loses every
//! significant digit; disk sizes in bytes have the same problem in the values. So times and
//! values are taken relative to a reference sample of the window, and the sums are recomputed
//! from the stored samples with a fresh reference each time the window has turned over
//! completely. That bounds how far the reference lags behind the window and wipes the rounding
//! drift that adding and subtracting leaves behind, at O(n) per n evictions: still O(1)
//! amortised. The batch form uses two passes (means, then centred sums), which is exact enough
//! to serve as the reference the online form is tested against.
//!
//! # Intervals
//!
//! [`Fit::forecast_at`] gives the OLS prediction interval for one future sample,
//! `ŷ ± q · s · √(1 + 1/n + (t − t̄)² / Sxx)`, with `q` the two-sided Student-t quantile for
//! n − 2 degrees of freedom ([`t_critical`]). The quantile is computed exactly (inverting the
//! t distribution through the regularized incomplete beta function) rather than taken from
//! 1.96 or a table: windows with 10–30 samples are common, where 1.96 would give intervals
//! that cover 90 % instead of 95 %, and the confidence is configurable, which a table for 95 %
//! alone would not allow. Degrees of freedom above 10⁶ are treated as 10⁶ (the quantile differs
//! from the normal one by < 10⁻⁵ there).
//!
//! # Time to threshold
//!
//! [`Fit::time_to_threshold`] reports when the fitted line reaches the limit. The range around
//! it comes from the *confidence band of the line* (the uncertainty of the trend, not of one
//! noisy sample): `low` is when the band's near edge reaches the limit, `high` when its far edge
//! does (Fieller's interval for `(limit − a) / b`). We chose it over the two options the issue
//! named: crossing with slope ± q·SE pivots the line on its centroid and so ignores the
//! uncertainty of the level, which matters when the limit is close; the prediction band
//! answers "when could one noisy sample first touch the limit", which is an alerting question
//! and makes the range wider than the trend's real uncertainty. When the slope is not
//! distinguishable from zero at the configured confidence, the band never leaves the limit
//! behind and `high_seconds` is infinite. No answer is given (None) with fewer than
//! `min_samples` samples, with an R² below `min_r2`, or when the line moves away from the limit;
//! a line already past the limit answers zero seconds.
//!
//! # Seasonality
//!
//! [`detect_period`] finds a period in a regularly spaced series ([`resample`] makes one from raw
//! samples) in two steps. First the autocorrelation of the series less its linear trend (a trend
//! alone makes every lag look correlated): candidates run from 2 samples to half the series (two
//! full cycles are needed to see one repeat), must come after the ACF first turns negative
//! (before that, lags correlate only because neighbouring samples are alike, and noise gives them
//! local peaks), must be a local maximum and reach 0.3. The ACF uses the biased estimator, which
//! shrinks longer lags by `(n − k) / n`, so the fundamental beats its multiples; and among peaks
//! within 10 % of the best one the shortest lag wins, so noise cannot hand the win to 48 h when
//! the cycle is 24 h. That same shrinking, and the flat top of a noisy ACF peak, put the peak
//! several samples short of a long period (134–144 for a 144-sample cycle in trials), so the
//! second step settles the period among the integers within 10 % of the peak: the one whose
//! sinusoids (fundamental and two harmonics, each fitted by least squares) explain the most
//! variance. A least-squares fit, not the periodogram, because over a non-whole number of cycles
//! sine and cosine are not orthogonal and the periodogram's peak drifts by about half a sample,
//! enough to round to the wrong period half the time. Cost: O(n²/2) multiply-adds for the ACF,
//! ~70 ms for a week of one-minute points in a release build; the caller bounds n, and the
//! [`Budget`] it passes is asked once per lag, so a request can be stopped mid-way.
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

use super::budget::{Budget, Interrupted};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::f64::consts::PI;
use std::time::Duration;

/// Trend analysis settings, part of the collector's config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrendConfig {
    /// How much history the line is fitted to: a sample leaves the fit once it is this much older
    /// than the newest sample. Longer windows are steadier, shorter ones follow changes sooner.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How far past the newest sample forecasts look.
    #[serde(with = "humantime_serde")]
    pub horizon: Duration,
    /// Fewest samples in the window before a time-to-threshold is reported; at least 3 (two to
    /// draw a line, one more to measure its error).
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

impl TrendConfig {
    /// Checks the ranges serde cannot express.
    pub fn validate(&self) -> Result<(), TrendConfigError> {
        if self.window.as_millis() == 0 {
            return Err(TrendConfigError::EmptyWindow);
        }
        if self.min_samples < MIN_FIT_SAMPLES {
            return Err(TrendConfigError::TooFewMinSamples(self.min_samples));
        }
        if !(0.0..=1.0).contains(&self.min_r2) {
            return Err(TrendConfigError::MinR2OutOfRange(self.min_r2));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(TrendConfigError::ConfidenceOutOfRange(self.confidence));
        }
        Ok(())
    }
}

/// A [`TrendConfig`] value out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrendConfigError {
    #[error("trend window must be at least one millisecond")]
    EmptyWindow,
    #[error("trend min_samples is {0}; a line and its error need at least 3")]
    TooFewMinSamples(usize),
    #[error("trend min_r2 is {0}; it must lie in [0, 1]")]
    MinR2OutOfRange(f64),
    #[error("trend confidence is {0}; it must lie strictly between 0 and 1")]
    ConfidenceOutOfRange(f64),
}

/// Two samples fix a line; the third is the first that can disagree with it.
const MIN_FIT_SAMPLES: usize = 3;

/// A straight line fitted by least squares, with what is needed to say how far to trust it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fit {
    /// Samples the line was fitted to.
    pub n: usize,
    /// Time of the oldest sample; `intercept` is the line's value at this time.
    pub origin_ms: i64,
    /// Time of the newest sample: forecast horizons and time-to-threshold count from here.
    pub last_ms: i64,
    /// Change per second, in the series' unit.
    pub slope: f64,
    /// The line's value at `origin_ms`.
    pub intercept: f64,
    /// Share of the variation around the mean that the line explains, in [0, 1]; 1 when the
    /// values do not vary at all (there is nothing left for the line to miss).
    pub r2: f64,
    /// Residual standard error, √(SSE / (n − 2)): a sample's typical distance from the line.
    pub residual_se: f64,
    /// Standard error of `slope`.
    pub slope_se: f64,
    /// Mean sample time in seconds after `origin_ms`: the line's pivot, where it is known best.
    pub mean_secs: f64,
    /// Σ(t − t̄)² in s²: the samples' spread in time. Intervals widen as a forecast moves away
    /// from `mean_secs` relative to it.
    pub sxx: f64,
}

/// A forecast for one instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Forecast {
    /// The instant forecast.
    pub at_ms: i64,
    /// The line's value at `at_ms`. (Non-finite values, from non-finite samples, serialize as
    /// Prometheus writes them: `"+Inf"`, `"-Inf"`, `"NaN"`; so do the other `f64`s below.)
    #[serde(with = "crate::json_f64")]
    pub value: f64,
    /// Lower end of the prediction interval: a sample taken at `at_ms` lies in `low..=high`
    /// with probability `confidence`, if the trend holds.
    #[serde(with = "crate::json_f64")]
    pub low: f64,
    /// Upper end of the prediction interval.
    #[serde(with = "crate::json_f64")]
    pub high: f64,
    /// Coverage of `low..=high`.
    pub confidence: f64,
}

/// Which side of a limit the series must stay on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The series must stay below the limit and is reached by rising (used bytes up to the
    /// disk size, a used ratio up to 1.0).
    Upper,
    /// The series must stay above the limit and is reached by falling (free bytes down to 0).
    Lower,
}

/// When the fitted line reaches a limit, counted from the newest sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimeToThreshold {
    /// When the line reaches the limit. When it is already past it: when it crossed, but no
    /// earlier than the oldest sample in the fit.
    pub at_ms: i64,
    /// Seconds from the newest sample to `at_ms`; 0 when the line is already past the limit.
    #[serde(with = "crate::json_f64")]
    pub seconds: f64,
    /// Earliest crossing the data allow at the configured confidence (never below 0).
    #[serde(with = "crate::json_f64")]
    pub low_seconds: f64,
    /// Latest crossing the data allow; infinite when the slope is not distinguishable from zero,
    /// that is when the limit might never be reached (serialized as `"+Inf"`).
    #[serde(with = "crate::json_f64")]
    pub high_seconds: f64,
}

impl Fit {
    /// The line's value at `ts_ms`.
    pub fn value_at(&self, ts_ms: i64) -> f64 {
        self.intercept + self.slope * secs_between(self.origin_ms, ts_ms)
    }

    /// Forecast at `horizon` after the newest sample.
    pub fn forecast(&self, horizon: Duration, confidence: f64) -> Forecast {
        self.forecast_at(ms_after(self.last_ms, horizon.as_secs_f64()), confidence)
    }

    /// Forecast at `config.horizon` after the newest sample, at `config.confidence`.
    pub fn forecast_with(&self, config: &TrendConfig) -> Forecast {
        self.forecast(config.horizon, config.confidence)
    }

    /// Forecast at `at_ms`, with the OLS prediction interval for one sample taken then.
    pub fn forecast_at(&self, at_ms: i64, confidence: f64) -> Forecast {
        let from_mean = secs_between(self.origin_ms, at_ms) - self.mean_secs;
        let n = self.n as f64;
        let spread = self.residual_se * (1.0 + 1.0 / n + from_mean * from_mean / self.sxx).sqrt();
        let half_width = t_critical(confidence, self.n.saturating_sub(2)) * spread;
        let value = self.value_at(at_ms);
        Forecast {
            at_ms,
            value,
            low: value - half_width,
            high: value + half_width,
            confidence,
        }
    }

    /// Whether the fit has enough samples and explains enough to be extrapolated.
    pub fn is_reliable(&self, config: &TrendConfig) -> bool {
        self.n >= config.min_samples.max(MIN_FIT_SAMPLES) && self.r2 >= config.min_r2
    }

    /// When the line reaches `limit`, which the series must stay on the `bound` side of.
    ///
    /// None with fewer than `config.min_samples` samples, with a limit that is not finite, when
    /// the line moves away from the limit or is flat, or when its R² is below `config.min_r2`.
    /// A line already past the limit at the newest sample answers zero seconds whatever its R²:
    /// R² measures how well time explains the movement, not how well the level is known, and a
    /// full disk whose usage no longer moves is still full.
    pub fn time_to_threshold(
        &self,
        limit: f64,
        bound: Bound,
        config: &TrendConfig,
    ) -> Option<TimeToThreshold> {
        if !limit.is_finite() || self.n < config.min_samples.max(MIN_FIT_SAMPLES) {
            return None;
        }
        // Work as if the limit were above and approached by rising; a lower bound is the same
        // problem mirrored.
        let toward = match bound {
            Bound::Upper => 1.0,
            Bound::Lower => -1.0,
        };
        let slope = self.slope * toward;
        let mean_value = (self.intercept + self.slope * self.mean_secs) * toward;
        let limit = limit * toward;
        let now_secs = secs_between(self.origin_ms, self.last_ms);
        // The crossing, in seconds after the mean sample time (meaningful only when slope ≠ 0).
        let cross_from_mean = (limit - mean_value) / slope;

        let current = mean_value + slope * (now_secs - self.mean_secs);
        if current >= limit {
            let crossed_secs = if slope > 0.0 {
                (self.mean_secs + cross_from_mean).clamp(0.0, now_secs)
            } else {
                0.0
            };
            return Some(TimeToThreshold {
                at_ms: ms_after(self.origin_ms, crossed_secs),
                seconds: 0.0,
                low_seconds: 0.0,
                high_seconds: 0.0,
            });
        }
        if slope <= 0.0 || self.r2 < config.min_r2 {
            return None;
        }

        let seconds = self.mean_secs + cross_from_mean - now_secs;
        let (low_from_mean, high_from_mean) =
            self.band_crossings(slope, mean_value - limit, config);
        let low_seconds = (self.mean_secs + low_from_mean - now_secs).clamp(0.0, seconds);
        let high_seconds = (self.mean_secs + high_from_mean - now_secs).max(seconds);
        Some(TimeToThreshold {
            at_ms: ms_after(self.last_ms, seconds),
            seconds,
            low_seconds,
            high_seconds,
        })
    }

    /// Where the confidence band of the line meets the limit, in seconds after the mean sample
    /// time, for a line rising (`slope` > 0) from `gap` = mean value − limit < 0.
    ///
    /// The band at `d` seconds from the mean is `gap + slope·d ± q·s·√(1/n + d²/Sxx)`; it
    /// touches zero where `(gap + slope·d)² = q²s²(1/n + d²/Sxx)`, the quadratic
    /// `a·d² + b·d + c = 0` below.
    fn band_crossings(&self, slope: f64, gap: f64, config: &TrendConfig) -> (f64, f64) {
        let q = t_critical(config.confidence, self.n.saturating_sub(2));
        let qs2 = (q * self.residual_se).powi(2);
        let a = slope * slope - qs2 / self.sxx;
        let b = 2.0 * slope * gap;
        let c = gap * gap - qs2 / self.n as f64;
        let mut discriminant = b * b - 4.0 * a * c;
        if a > 0.0 {
            // Mathematically ≥ 0 when a > 0 (0 for a perfect fit); rounding can dip below.
            discriminant = discriminant.max(0.0);
        }
        if discriminant < 0.0 {
            // Only possible when a < 0: the band holds the limit at every instant.
            return (f64::NEG_INFINITY, f64::INFINITY);
        }
        // b < 0 here, so this form avoids cancelling -b against the root.
        let k = -0.5 * (b - discriminant.sqrt());
        let (r1, r2) = (k / a, c / k);
        if a > 0.0 {
            (r1.min(r2), r1.max(r2))
        } else if a == 0.0 {
            (r2, f64::INFINITY)
        } else {
            // Slope not significant: the far edge never reaches the limit; the near edge reaches
            // it at the later root (the earlier one lies in the past, on the far side).
            (r1.max(r2), f64::INFINITY)
        }
    }
}

/// Fits a line to `samples` (Unix milliseconds, value) in any order; non-finite values are
/// skipped. None with fewer than three samples or when all share one timestamp.
pub fn fit_line(samples: &[(i64, f64)]) -> Option<Fit> {
    let finite = || samples.iter().filter(|(_, v)| v.is_finite());
    let origin_ms = finite().map(|&(t, _)| t).min()?;
    let last_ms = finite().map(|&(t, _)| t).max()?;
    let n = finite().count();
    let count = n as f64;
    let mean_secs = finite()
        .map(|&(t, _)| secs_between(origin_ms, t))
        .sum::<f64>()
        / count;
    let mean_value = finite().map(|&(_, v)| v).sum::<f64>() / count;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for &(t, v) in finite() {
        let dt = secs_between(origin_ms, t) - mean_secs;
        let dv = v - mean_value;
        sxx += dt * dt;
        sxy += dt * dv;
        syy += dv * dv;
    }
    Moments {
        n,
        origin_ms,
        last_ms,
        mean_secs,
        mean_value,
        sxx,
        sxy,
        syy,
    }
    .fit()
}

/// Centred first and second moments of a set of samples: every fit statistic derives from them.
struct Moments {
    n: usize,
    origin_ms: i64,
    last_ms: i64,
    mean_secs: f64,
    mean_value: f64,
    sxx: f64,
    sxy: f64,
    syy: f64,
}

impl Moments {
    fn fit(self) -> Option<Fit> {
        if self.n < MIN_FIT_SAMPLES || self.sxx.is_nan() || self.sxx <= 0.0 {
            return None;
        }
        let n = self.n as f64;
        let slope = self.sxy / self.sxx;
        let syy = self.syy.max(0.0);
        let sse = (syy - slope * self.sxy).max(0.0);
        let r2 = if syy > 0.0 {
            (1.0 - sse / syy).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let residual_se = (sse / (n - 2.0)).sqrt();
        Some(Fit {
            n: self.n,
            origin_ms: self.origin_ms,
            last_ms: self.last_ms,
            slope,
            intercept: self.mean_value - slope * self.mean_secs,
            r2,
            residual_se,
            slope_se: residual_se / self.sxx.sqrt(),
            mean_secs: self.mean_secs,
            sxx: self.sxx,
        })
    }
}

/// Least squares over a sliding time window, updated in O(1) amortised per sample.
#[derive(Debug, Clone)]
pub struct SlidingRegression {
    window_ms: i64,
    /// The window's samples, oldest first.
    samples: VecDeque<(i64, f64)>,
    /// Times and values enter the sums relative to this sample (see the module doc).
    reference: (i64, f64),
    sums: Sums,
    /// Samples evicted since the sums were last rebuilt.
    evicted: usize,
}

/// Running sums over the window, with t in seconds and v relative to the reference sample.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    t: f64,
    v: f64,
    tt: f64,
    tv: f64,
    vv: f64,
}

impl Sums {
    fn add(&mut self, t: f64, v: f64, sign: f64) {
        self.t += sign * t;
        self.v += sign * v;
        self.tt += sign * t * t;
        self.tv += sign * t * v;
        self.vv += sign * v * v;
    }
}

impl SlidingRegression {
    /// An empty regression over `window` (at least one millisecond).
    pub fn new(window: Duration) -> Self {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
        Self {
            window_ms,
            samples: VecDeque::new(),
            reference: (0, 0.0),
            sums: Sums::default(),
            evicted: 0,
        }
    }

    /// An empty regression over `config.window`.
    pub fn from_config(config: &TrendConfig) -> Self {
        Self::new(config.window)
    }

    /// The window.
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms.unsigned_abs())
    }

    /// Samples in the window.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the window holds no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        self.samples.clear();
        self.sums = Sums::default();
        self.evicted = 0;
    }

    /// Adds a sample and evicts those that are now a window or more older than the newest.
    ///
    /// Returns false when the sample was ignored: its value is not finite (one NaN would poison
    /// the sums), or it is so late that it is already outside the window. A late sample inside
    /// the window is inserted in time order, at O(n) cost; samples arriving in order cost O(1).
    pub fn push(&mut self, ts_ms: i64, value: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        let Some(&(newest, _)) = self.samples.back() else {
            self.reference = (ts_ms, value);
            self.sums = Sums::default();
            self.evicted = 0;
            self.samples.push_back((ts_ms, value));
            self.add(ts_ms, value, 1.0);
            return true;
        };
        if ts_ms < newest {
            if ts_ms <= newest.saturating_sub(self.window_ms) {
                return false;
            }
            let at = self.samples.partition_point(|&(t, _)| t <= ts_ms);
            self.samples.insert(at, (ts_ms, value));
            self.add(ts_ms, value, 1.0);
            return true;
        }
        self.samples.push_back((ts_ms, value));
        self.add(ts_ms, value, 1.0);
        let cutoff = ts_ms.saturating_sub(self.window_ms);
        while let Some(&(t, v)) = self.samples.front() {
            if t > cutoff {
                break;
            }
            self.samples.pop_front();
            self.add(t, v, -1.0);
            self.evicted += 1;
        }
        if self.evicted >= self.samples.len() {
            self.rebase();
        }
        true
    }

    /// The line through the window's samples; None with fewer than three or when all share one
    /// timestamp. O(1).
    pub fn fit(&self) -> Option<Fit> {
        let (&(origin_ms, _), &(last_ms, _)) = (self.samples.front()?, self.samples.back()?);
        // The samples are in time order, so this is the one-timestamp case; caught here because
        // the sums would leave a rounding residue instead of an exact zero spread.
        if origin_ms == last_ms {
            return None;
        }
        let n = self.samples.len();
        let count = n as f64;
        let s = self.sums;
        let mean_t = s.t / count;
        let mean_v = s.v / count;
        let (reference_ms, reference_value) = self.reference;
        Moments {
            n,
            origin_ms,
            last_ms,
            mean_secs: mean_t + secs_between(origin_ms, reference_ms),
            mean_value: mean_v + reference_value,
            sxx: (s.tt - s.t * mean_t).max(0.0),
            sxy: s.tv - s.t * mean_v,
            syy: (s.vv - s.v * mean_v).max(0.0),
        }
        .fit()
    }

    fn add(&mut self, ts_ms: i64, value: f64, sign: f64) {
        let (reference_ms, reference_value) = self.reference;
        self.sums.add(
            secs_between(reference_ms, ts_ms),
            value - reference_value,
            sign,
        );
    }

    /// Rebuilds the sums relative to the oldest sample.
    fn rebase(&mut self) {
        self.evicted = 0;
        let Some(&(reference_ms, reference_value)) = self.samples.front() else {
            self.sums = Sums::default();
            return;
        };
        self.reference = (reference_ms, reference_value);
        let mut sums = Sums::default();
        for &(t, v) in &self.samples {
            sums.add(secs_between(reference_ms, t), v - reference_value, 1.0);
        }
        self.sums = sums;
    }
}

fn secs_between(from_ms: i64, to_ms: i64) -> f64 {
    to_ms.saturating_sub(from_ms) as f64 / 1000.0
}

/// `base_ms` plus `secs`, saturating at the ends of i64 (a nearly flat line crosses a limit
/// centuries away).
fn ms_after(base_ms: i64, secs: f64) -> i64 {
    base_ms.saturating_add((secs * 1000.0).round() as i64)
}

/// Above this many degrees of freedom the t quantile is computed as if for this many: it is
/// within 10⁻⁵ of the normal quantile, and the incomplete beta's gamma terms stay accurate.
const MAX_DF: usize = 1_000_000;

/// The two-sided Student-t critical value: `q` with P(|T| ≤ q) = `confidence` for `df`
/// degrees of freedom (1.96 for 95 % as `df` grows; 2.228 at 10; 12.706 at 1). Computed by
/// bisection on the exact distribution function, to ~10⁻¹² relative. 0 for a confidence of 0
/// or less; infinite for 1 or more, or for `df` 0.
pub fn t_critical(confidence: f64, df: usize) -> f64 {
    if confidence.is_nan() {
        return f64::NAN;
    }
    if confidence <= 0.0 {
        return 0.0;
    }
    if confidence >= 1.0 || df == 0 {
        return f64::INFINITY;
    }
    let nu = df.min(MAX_DF) as f64;
    let wanted_tail = (1.0 - confidence) / 2.0;
    // P(T > t) for t ≥ 0.
    let upper_tail = |t: f64| 0.5 * regularized_beta(nu / (nu + t * t), nu / 2.0, 0.5);
    let mut high = 2.0;
    while upper_tail(high) > wanted_tail {
        high *= 2.0;
        if high > 1e300 {
            return f64::INFINITY;
        }
    }
    let mut low = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if upper_tail(mid) > wanted_tail {
            low = mid;
        } else {
            high = mid;
        }
        if high - low <= 1e-12 * high {
            break;
        }
    }
    0.5 * (low + high)
}

/// The regularized incomplete beta function I_x(a, b), by its continued fraction (Lentz's
/// method), on the side where that converges quickly.
fn regularized_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_continued_fraction(1.0 - x, b, a) / b
    }
}

fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let nonzero = |d: f64| if d.abs() < TINY { TINY } else { d };
    let mut c = 1.0;
    let mut d = 1.0 / nonzero(1.0 - (a + b) * x / (a + 1.0));
    let mut h = d;
    for m in 1..=1000 {
        let m = f64::from(m);
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 / nonzero(1.0 + even * d);
        c = nonzero(1.0 + even / c);
        h *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 / nonzero(1.0 + odd * d);
        c = nonzero(1.0 + odd / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// ln Γ(x) for x ≥ 0.5 (all this module needs), by the Lanczos approximation (g = 7, nine
/// terms; ~15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut series = COEFFICIENTS[0];
    for (i, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        series += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// Most points [`resample`] produces; guards against a step far smaller than the span.
pub const MAX_RESAMPLED_POINTS: usize = 1_000_000;

/// Puts samples (Unix milliseconds, value; any order) on a regular grid of `step` starting at the
/// oldest: each point is the mean of the samples in `[start + i·step, start + (i+1)·step)`;
/// empty steps are interpolated linearly between their neighbours, so gaps neither break the
/// spacing that [`detect_period`] and the smoothers assume nor invent level changes.
///
/// None without finite samples, with a zero step, or when the grid would exceed
/// [`MAX_RESAMPLED_POINTS`].
pub fn resample(samples: &[(i64, f64)], step: Duration) -> Option<Vec<f64>> {
    let step_ms = i64::try_from(step.as_millis()).ok().filter(|&s| s > 0)?;
    let finite = || samples.iter().filter(|(_, v)| v.is_finite());
    let start = finite().map(|&(t, _)| t).min()?;
    let end = finite().map(|&(t, _)| t).max()?;
    let points = usize::try_from(end.saturating_sub(start) / step_ms)
        .ok()?
        .checked_add(1)?;
    if points > MAX_RESAMPLED_POINTS {
        return None;
    }
    let mut sums = vec![(0.0, 0_u32); points];
    for &(t, v) in finite() {
        let bucket = &mut sums[((t - start) / step_ms) as usize];
        bucket.0 += v;
        bucket.1 += 1;
    }
    let mut out: Vec<f64> = sums
        .iter()
        .map(|&(sum, count)| {
            if count > 0 {
                sum / f64::from(count)
            } else {
                f64::NAN
            }
        })
        .collect();
    // The first and last buckets hold the oldest and newest samples, so every gap is bounded.
    let mut previous = 0;
    for i in 1..points {
        if out[i].is_nan() {
            continue;
        }
        let gap = i - previous;
        for j in previous + 1..i {
            let share = (j - previous) as f64 / gap as f64;
            out[j] = out[previous] + share * (out[i] - out[previous]);
        }
        previous = i;
    }
    Some(out)
}

/// Smallest autocorrelation a period must show.
const MIN_PERIOD_ACF: f64 = 0.3;
/// Peaks within this share of the best one count as equally good; the shortest lag wins.
const NEAR_BEST_PEAK: f64 = 0.9;
/// Sinusoids fitted per candidate period when settling the period: the fundamental and two
/// harmonics, enough for a peaked daily profile to weigh in beyond its fundamental.
const HARMONICS: usize = 3;

/// The period, in samples, of a regularly spaced series, or None when it has none. Found from
/// the autocorrelation of the series less its linear trend, then settled by a harmonic fit; see
/// the module doc. None also for series shorter than 4 samples, with a non-finite value, or
/// that are a straight line. `budget` is asked before each O(n) step (a lag, a candidate).
pub fn detect_period(values: &[f64], budget: &Budget) -> Result<Option<usize>, Interrupted> {
    let n = values.len();
    let max_lag = n / 2;
    if max_lag < 2 || values.iter().any(|v| !v.is_finite()) {
        return Ok(None);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let variation: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    let residuals = detrend(values);
    let energy: f64 = residuals.iter().map(|x| x * x).sum();
    // A straight line leaves only rounding noise, whose correlations mean nothing.
    if variation <= 0.0 || energy <= 1e-12 * variation {
        return Ok(None);
    }
    // One lag past the last candidate, to tell whether that candidate is a local maximum.
    let acf: Vec<f64> = (0..=max_lag + 1)
        .map(|k| {
            budget.check()?;
            let sum: f64 = residuals[..n - k]
                .iter()
                .zip(&residuals[k..])
                .map(|(a, b)| a * b)
                .sum();
            Ok(sum / energy)
        })
        .collect::<Result<_, Interrupted>>()?;
    // Short lags correlate because neighbouring samples are alike, and noise gives them local
    // peaks; once the ACF has gone negative that likeness is spent, and a peak is a repeat.
    let Some(first_negative) = (1..=max_lag).find(|&k| acf[k] < 0.0) else {
        return Ok(None);
    };
    let peaks: Vec<usize> = (first_negative.max(2)..=max_lag)
        .filter(|&k| acf[k] >= MIN_PERIOD_ACF && acf[k] > acf[k - 1] && acf[k] >= acf[k + 1])
        .collect();
    let best = peaks
        .iter()
        .map(|&k| acf[k])
        .fold(f64::NEG_INFINITY, f64::max);
    let Some(peak) = peaks.into_iter().find(|&k| acf[k] >= NEAR_BEST_PEAK * best) else {
        return Ok(None);
    };
    // The ACF peak is flat and pulled towards short lags by the (n − k) / n factor: settle the
    // period among its neighbours by which one sinusoids fit best.
    let reach = (peak / 10).max(2);
    let mut settled: Option<(usize, f64)> = None;
    for period in peak.saturating_sub(reach).max(2)..=(peak + reach).min(max_lag) {
        budget.check()?;
        let fit = harmonic_fit(&residuals, period);
        if settled.is_none_or(|(_, best_fit)| fit > best_fit) {
            settled = Some((period, fit));
        }
    }
    Ok(settled.map(|(period, _)| period))
}

/// The sum of squares explained by sinusoids of period `period` (fundamental and harmonics
/// below the Nyquist frequency), each fitted to `residuals` by least squares.
///
/// A least-squares fit rather than the periodogram: over a non-whole number of cycles sine and
/// cosine are not orthogonal, and the periodogram's peak then drifts by about half a sample,
/// which rounds to the wrong period.
fn harmonic_fit(residuals: &[f64], period: usize) -> f64 {
    let mut explained = 0.0;
    for h in 1..=HARMONICS {
        if h > 1 && 2 * h >= period {
            break;
        }
        let (sin_step, cos_step) = (2.0 * PI * h as f64 / period as f64).sin_cos();
        let (mut cos, mut sin) = (1.0, 0.0);
        let (mut cc, mut ss, mut cs, mut yc, mut ys) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &y in residuals {
            cc += cos * cos;
            ss += sin * sin;
            cs += cos * sin;
            yc += y * cos;
            ys += y * sin;
            // Rotating instead of calling sin and cos per sample; the drift over 10⁵ steps is
            // ~10⁻¹¹.
            (cos, sin) = (
                cos * cos_step - sin * sin_step,
                sin * cos_step + cos * sin_step,
            );
        }
        let det = cc * ss - cs * cs;
        if det > 1e-9 * cc * ss {
            explained += (ss * yc * yc - 2.0 * cs * yc * ys + cc * ys * ys) / det;
        } else if cc > 0.0 {
            // At the Nyquist frequency (period 2) the sine is zero at every sample.
            explained += yc * yc / cc;
        }
    }
    explained
}

/// `values` minus their least-squares line over the sample index.
fn detrend(values: &[f64]) -> Vec<f64> {
    let (intercept, slope) = index_line(values);
    values
        .iter()
        .enumerate()
        .map(|(i, v)| v - intercept - slope * i as f64)
        .collect()
}

/// Intercept (value at index 0) and slope per index of the least-squares line through `values`.
fn index_line(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean_i = (n - 1.0) / 2.0;
    let mean_v = values.iter().sum::<f64>() / n;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (i, v) in values.iter().enumerate() {
        let di = i as f64 - mean_i;
        sxx += di * di;
        sxy += di * (v - mean_v);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (mean_v - slope * mean_i, slope)
}

/// Holt-Winters smoothing weights, each in [0, 1]: higher follows recent data more closely.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HoltWintersParams {
    /// Level.
    pub alpha: f64,
    /// Trend.
    pub beta: f64,
    /// Seasonal profile.
    pub gamma: f64,
}

const ALPHA_GRID: [f64; 7] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9];
const BETA_GRID: [f64; 5] = [0.0, 0.01, 0.05, 0.1, 0.2];
const GAMMA_GRID: [f64; 5] = [0.05, 0.1, 0.2, 0.3, 0.5];

/// An exponential smoother seen one observation at a time.
trait StepModel {
    /// The forecast `h` ≥ 1 steps past the observations taken in so far.
    fn predict(&self, h: usize) -> f64;
    /// Takes in the next observation; returns the smoothed value for it.
    fn update(&mut self, y: f64) -> f64;
}

/// Runs `model` over `values`; returns the one-step-ahead squared error summed from observation
/// `warmup` on and how many observations that covers. Pushes the smoothed values to `smoothed`.
fn run_one_step(
    model: &mut impl StepModel,
    values: &[f64],
    warmup: usize,
    mut smoothed: Option<&mut Vec<f64>>,
) -> (f64, usize) {
    let mut sse = 0.0;
    let mut scored = 0;
    for (t, &y) in values.iter().enumerate() {
        if t >= warmup {
            sse += (y - model.predict(1)).powi(2);
            scored += 1;
        }
        let s = model.update(y);
        if let Some(out) = smoothed.as_deref_mut() {
            out.push(s);
        }
    }
    (sse, scored)
}

/// Level, trend and seasonal indices after `t` observations; the index for observation `t` is
/// `seasonal[t % period]`.
#[derive(Debug, Clone)]
struct SeasonalState {
    params: HoltWintersParams,
    level: f64,
    trend: f64,
    seasonal: Vec<f64>,
    t: usize,
}

impl SeasonalState {
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
}

impl StepModel for SeasonalState {
    fn predict(&self, h: usize) -> f64 {
        let period = self.seasonal.len();
        self.level + h as f64 * self.trend + self.seasonal[(self.t + h - 1) % period]
    }

    fn update(&mut self, y: f64) -> f64 {
        let HoltWintersParams { alpha, beta, gamma } = self.params;
        let i = self.t % self.seasonal.len();
        let (level, trend) = (self.level, self.trend);
        self.level = alpha * (y - self.seasonal[i]) + (1.0 - alpha) * (level + trend);
        self.trend = beta * (self.level - level) + (1.0 - beta) * trend;
        self.seasonal[i] = gamma * (y - level - trend) + (1.0 - gamma) * self.seasonal[i];
        self.t += 1;
        self.level + self.seasonal[i]
    }
}

/// Additive Holt-Winters (triple exponential smoothing) fitted to a regularly spaced series.
#[derive(Debug, Clone)]
pub struct HoltWinters {
    state: SeasonalState,
    smoothed: Vec<f64>,
    rmse: f64,
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
        if Self::check(values, period).is_none() {
            return Ok(None);
        }
        let mut best: Option<(f64, HoltWintersParams)> = None;
        for alpha in ALPHA_GRID {
            for beta in BETA_GRID {
                for gamma in GAMMA_GRID {
                    budget.check()?;
                    let params = HoltWintersParams { alpha, beta, gamma };
                    let mut state = SeasonalState::start(values, period, params);
                    let (sse, _) = run_one_step(&mut state, values, period, None);
                    if sse.is_finite() && best.is_none_or(|(b, _)| sse < b) {
                        best = Some((sse, params));
                    }
                }
            }
        }
        Ok(best.and_then(|(_, params)| Self::fit_with(values, period, params)))
    }

    /// Fits with fixed weights. None in the same cases as [`HoltWinters::fit`].
    pub fn fit_with(values: &[f64], period: usize, params: HoltWintersParams) -> Option<Self> {
        Self::check(values, period)?;
        let mut state = SeasonalState::start(values, period, params);
        let mut smoothed = Vec::with_capacity(values.len());
        // Scored after the first cycle, whose forecasts mostly repeat the starting profile.
        let (sse, scored) = run_one_step(&mut state, values, period, Some(&mut smoothed));
        Some(Self {
            state,
            smoothed,
            rmse: (sse / scored as f64).sqrt(),
        })
    }

    fn check(values: &[f64], period: usize) -> Option<()> {
        (period >= 2 && values.len() >= 2 * period && values.iter().all(|v| v.is_finite()))
            .then_some(())
    }

    /// The next `steps` values after the series.
    pub fn forecast(&self, steps: usize) -> Vec<f64> {
        (1..=steps).map(|h| self.state.predict(h)).collect()
    }

    /// Level plus seasonal index after each observation: the series without its noise.
    pub fn smoothed(&self) -> &[f64] {
        &self.smoothed
    }

    /// The weights used.
    pub fn params(&self) -> HoltWintersParams {
        self.state.params
    }

    /// The period, in samples.
    pub fn period(&self) -> usize {
        self.state.seasonal.len()
    }

    /// Root mean squared one-step-ahead error after the first period: the typical miss of a
    /// forecast one step out.
    pub fn rmse(&self) -> f64 {
        self.rmse
    }
}

/// Holt's linear smoothing weights, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HoltParams {
    /// Level.
    pub alpha: f64,
    /// Trend.
    pub beta: f64,
}

const HOLT_ALPHA_GRID: [f64; 8] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0];
const HOLT_BETA_GRID: [f64; 6] = [0.0, 0.01, 0.05, 0.1, 0.2, 0.3];
/// Holt starts from the least-squares line through this many first observations.
const HOLT_START_POINTS: usize = 10;
/// The first observations mostly measure the starting line, not the weights.
const HOLT_WARMUP: usize = 2;

#[derive(Debug, Clone, Copy)]
struct LinearState {
    params: HoltParams,
    level: f64,
    trend: f64,
}

impl LinearState {
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

impl StepModel for LinearState {
    fn predict(&self, h: usize) -> f64 {
        self.level + h as f64 * self.trend
    }

    fn update(&mut self, y: f64) -> f64 {
        let HoltParams { alpha, beta } = self.params;
        let level = self.level;
        self.level = alpha * y + (1.0 - alpha) * (level + self.trend);
        self.trend = beta * (self.level - level) + (1.0 - beta) * self.trend;
        self.level
    }
}

/// Holt's linear method (double exponential smoothing): level and trend, no season. The fallback
/// for series without a period.
#[derive(Debug, Clone)]
pub struct Holt {
    state: LinearState,
    smoothed: Vec<f64>,
    rmse: f64,
}

impl Holt {
    /// Fits with weights from a grid search (8 × 6) minimising the one-step-ahead squared error.
    /// None with fewer than three values or a non-finite one. `budget` is asked before each pass.
    pub fn fit(values: &[f64], budget: &Budget) -> Result<Option<Self>, Interrupted> {
        if Self::check(values).is_none() {
            return Ok(None);
        }
        let mut best: Option<(f64, HoltParams)> = None;
        for alpha in HOLT_ALPHA_GRID {
            for beta in HOLT_BETA_GRID {
                budget.check()?;
                let params = HoltParams { alpha, beta };
                let mut state = LinearState::start(values, params);
                let (sse, _) = run_one_step(&mut state, values, HOLT_WARMUP, None);
                if sse.is_finite() && best.is_none_or(|(b, _)| sse < b) {
                    best = Some((sse, params));
                }
            }
        }
        Ok(best.and_then(|(_, params)| Self::fit_with(values, params)))
    }

    /// Fits with fixed weights. None in the same cases as [`Holt::fit`].
    pub fn fit_with(values: &[f64], params: HoltParams) -> Option<Self> {
        Self::check(values)?;
        let mut state = LinearState::start(values, params);
        let mut smoothed = Vec::with_capacity(values.len());
        let (sse, scored) = run_one_step(&mut state, values, HOLT_WARMUP, Some(&mut smoothed));
        Some(Self {
            state,
            smoothed,
            rmse: (sse / scored as f64).sqrt(),
        })
    }

    fn check(values: &[f64]) -> Option<()> {
        (values.len() >= MIN_FIT_SAMPLES && values.iter().all(|v| v.is_finite())).then_some(())
    }

    /// The next `steps` values after the series.
    pub fn forecast(&self, steps: usize) -> Vec<f64> {
        (1..=steps).map(|h| self.state.predict(h)).collect()
    }

    /// The level after each observation: the series without its noise.
    pub fn smoothed(&self) -> &[f64] {
        &self.smoothed
    }

    /// The weights used.
    pub fn params(&self) -> HoltParams {
        self.state.params
    }

    /// Root mean squared one-step-ahead error after the first two observations.
    pub fn rmse(&self) -> f64 {
        self.rmse
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

    /// The next `steps` values after the series.
    pub fn forecast(&self, steps: usize) -> Vec<f64> {
        match self {
            Self::Seasonal(hw) => hw.forecast(steps),
            Self::Linear(holt) => holt.forecast(steps),
        }
    }

    /// The value `steps` after the end of the series (the first when `steps` is 0): the last of
    /// [`Smoother::forecast`], in O(1) however far ahead.
    pub fn forecast_at(&self, steps: usize) -> f64 {
        let h = steps.max(1);
        match self {
            Self::Seasonal(hw) => hw.state.predict(h),
            Self::Linear(holt) => holt.state.predict(h),
        }
    }

    /// The series without its noise, one value per observation.
    pub fn smoothed(&self) -> &[f64] {
        match self {
            Self::Seasonal(hw) => hw.smoothed(),
            Self::Linear(holt) => holt.smoothed(),
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

    /// A Unix time in 2023: large enough that uncentred sums would lose every digit.
    const T0: i64 = 1_700_000_000_000;
    const HOUR: f64 = 3600.0;

    fn normal(rng: &mut fastrand::Rng) -> f64 {
        let u1 = 1.0 - rng.f64();
        let u2 = rng.f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }

    /// `n` samples `step_ms` apart from `T0`, valued `f(seconds since T0)`.
    fn series(n: usize, step_ms: i64, mut f: impl FnMut(f64) -> f64) -> Vec<(i64, f64)> {
        (0..n as i64)
            .map(|i| {
                let ts = T0 + i * step_ms;
                (ts, f(secs_between(T0, ts)))
            })
            .collect()
    }

    fn online(samples: &[(i64, f64)], window: Duration) -> SlidingRegression {
        let mut regression = SlidingRegression::new(window);
        for &(t, v) in samples {
            assert!(regression.push(t, v));
        }
        regression
    }

    /// The period [`detect_period`] finds with nothing to stop it.
    fn period(values: &[f64]) -> Option<usize> {
        detect_period(values, &Budget::UNLIMITED).expect("an unlimited budget never stops")
    }

    fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: {actual} is not within {tolerance} of {expected}"
        );
    }

    const YEAR: Duration = Duration::from_secs(365 * 86_400);

    #[test]
    fn perfect_lines_are_fitted_exactly() {
        let check = |step_ms: i64, slope: f64, intercept: f64| {
            let samples = series(50, step_ms, |t| intercept + slope * t);
            let batch = fit_line(&samples).unwrap();
            let sliding = online(&samples, YEAR).fit().unwrap();
            for fit in [batch, sliding] {
                let scale = intercept.abs().max(1.0);
                assert_eq!((fit.n, fit.origin_ms), (50, T0));
                assert_close(fit.slope, slope, 1e-6 * slope.abs() + 1e-12, "slope");
                assert_close(fit.intercept, intercept, 1e-12 * scale, "intercept");
                assert_close(fit.r2, 1.0, 1e-9, "r2");
                assert_close(fit.residual_se, 0.0, 1e-9 * scale, "residual_se");
                let later = T0 + 100 * step_ms;
                let expected = intercept + slope * secs_between(T0, later);
                assert_close(fit.value_at(later), expected, 1e-9 * scale, "value_at");
                let ahead = fit.forecast_with(&TrendConfig::default());
                assert_eq!(ahead.at_ms, fit.last_ms + 3_600_000);
                let expected = intercept + slope * secs_between(T0, ahead.at_ms);
                assert_close(ahead.value, expected, 1e-9 * scale, "forecast");
                assert_close(
                    ahead.high - ahead.low,
                    0.0,
                    1e-6 * scale,
                    "no noise, no width",
                );
            }
        };
        check(1_000, 0.25, 50.0);
        check(10_000, -3.0, 1e12);
        check(60_000, 0.0, 7.0);
        check(15_000, 1e-6, 0.5);
        check(250, 4e6, -2e9);
    }

    #[test]
    fn degenerate_inputs_have_no_fit() {
        assert_eq!(fit_line(&[]), None);
        assert_eq!(fit_line(&[(T0, 1.0), (T0 + 1, 2.0)]), None);
        assert_eq!(fit_line(&[(T0, 1.0), (T0, 2.0), (T0, 3.0)]), None);
        let with_nan = [(T0, 1.0), (T0 + 1000, f64::NAN), (T0 + 2000, 3.0)];
        assert_eq!(
            fit_line(&with_nan),
            None,
            "a NaN is skipped, leaving two samples"
        );
        let mut regression = SlidingRegression::new(Duration::from_secs(60));
        assert!(!regression.push(T0, f64::INFINITY));
        for _ in 0..3 {
            assert!(regression.push(T0, 1.0));
        }
        assert_eq!(regression.fit(), None);
    }

    #[test]
    fn r2_is_near_one_on_a_noisy_line_and_near_zero_on_noise() {
        let mut rng = fastrand::Rng::with_seed(7);
        let line = series(200, 10_000, |t| 5.0 + 0.1 * t + 5.0 * normal(&mut rng));
        let fit = fit_line(&line).unwrap();
        assert!(fit.r2 > 0.98, "noisy line: r2 {}", fit.r2);
        assert_close(fit.slope, 0.1, 3.0 * fit.slope_se, "slope");
        assert_close(
            fit.residual_se,
            5.0,
            0.75,
            "residual_se estimates the noise",
        );

        let noise = series(200, 10_000, |_| 5.0 * normal(&mut rng));
        let fit = fit_line(&noise).unwrap();
        assert!(fit.r2 < 0.05, "noise: r2 {}", fit.r2);
    }

    #[test]
    fn the_window_forgets_samples_once_they_are_a_window_old() {
        let mut regression = SlidingRegression::new(Duration::from_secs(3600));
        // Two hours rising by 1 a minute, one sample every 30 s.
        for i in 0..240 {
            assert!(regression.push(T0 + i * 30_000, i as f64 * 0.5));
        }
        let rising = regression.fit().unwrap();
        assert_eq!(regression.len(), 120, "one hour of 30 s samples");
        assert_close(rising.slope, 1.0 / 60.0, 1e-9, "rising slope");
        // Then falling by 2 a minute.
        let peak = 239.0 * 0.5;
        let mut slopes = Vec::new();
        for j in 1..=140 {
            regression.push(T0 + (239 + j) * 30_000, peak - j as f64);
            slopes.push(regression.fit().unwrap().slope);
        }
        assert!(
            slopes[9] > 0.0,
            "five minutes in, the old trend still dominates"
        );
        assert!(slopes[89] < 0.0, "45 minutes in, the new one does");
        let falling = regression.fit().unwrap();
        assert_eq!(regression.len(), 120);
        assert_eq!(falling.origin_ms, T0 + (239 + 21) * 30_000);
        assert_close(
            falling.slope,
            -1.0 / 30.0,
            1e-9,
            "falling slope, rise forgotten",
        );
        assert_close(falling.r2, 1.0, 1e-9, "r2");
    }

    #[test]
    fn late_samples_inside_the_window_are_kept_and_older_ones_dropped() {
        let mut regression = SlidingRegression::new(Duration::from_secs(60));
        for i in 0..10 {
            assert!(regression.push(T0 + i * 10_000, i as f64));
        }
        // Window now (T0 + 30 s, T0 + 90 s].
        assert!(
            !regression.push(T0 + 30_000, 3.0),
            "a window old: gone at once"
        );
        assert!(regression.push(T0 + 35_000, 3.5));
        let expected: Vec<(i64, f64)> = (4..10)
            .map(|i| (T0 + i * 10_000, i as f64))
            .chain([(T0 + 35_000, 3.5)])
            .collect();
        assert_eq!(regression.len(), 7);
        let fit = regression.fit().unwrap();
        assert_eq!(fit.origin_ms, T0 + 35_000);
        assert_close(
            fit.slope,
            fit_line(&expected).unwrap().slope,
            1e-12,
            "slope",
        );
    }

    #[test]
    fn forecast_intervals_cover_the_future_value_at_the_stated_rate() {
        let mut rng = fastrand::Rng::with_seed(42);
        let trials = 2000;
        let mut covered = 0;
        for _ in 0..trials {
            // 20 samples: small enough that a normal quantile would visibly under-cover.
            let samples = series(20, 60_000, |t| 100.0 + 0.02 * t + 3.0 * normal(&mut rng));
            let forecast = fit_line(&samples)
                .unwrap()
                .forecast(Duration::from_secs(3600), 0.95);
            let t = secs_between(T0, forecast.at_ms);
            let actual = 100.0 + 0.02 * t + 3.0 * normal(&mut rng);
            if (forecast.low..=forecast.high).contains(&actual) {
                covered += 1;
            }
        }
        let coverage = f64::from(covered) / f64::from(trials);
        assert!((0.9..=0.99).contains(&coverage), "coverage {coverage}");
    }

    #[test]
    fn t_critical_matches_the_tables() {
        let check = |confidence: f64, df: usize, expected: f64| {
            let q = t_critical(confidence, df);
            assert_close(
                q,
                expected,
                1e-4 * expected,
                &format!("t({confidence}, {df})"),
            );
        };
        check(0.95, 1, 12.7062);
        check(0.95, 2, 4.3027);
        check(0.95, 10, 2.2281);
        check(0.95, 30, 2.0423);
        check(0.99, 5, 4.0321);
        check(0.90, 20, 1.7247);
        check(0.50, 3, 0.7649);
        check(0.95, 10_000_000, 1.95996);
        assert_eq!(t_critical(0.0, 5), 0.0);
        assert_eq!(t_critical(1.0, 5), f64::INFINITY);
        assert_eq!(t_critical(0.95, 0), f64::INFINITY);
    }

    const DISK: f64 = 500e9;
    const FILL_RATE: f64 = 1e6;
    const NINE_HOURS: f64 = 9.0 * HOUR;

    /// One hour of disk usage every 10 s, filling at `rate` bytes/s, that would reach `DISK` nine
    /// hours after the last sample at 1 MB/s.
    fn disk_usage(rng: &mut fastrand::Rng, rate: f64, noise: f64) -> Vec<(i64, f64)> {
        let start = DISK - FILL_RATE * (NINE_HOURS + HOUR);
        series(361, 10_000, |t| start + rate * t + noise * normal(rng))
    }

    #[test]
    fn time_to_threshold_on_a_filling_disk() {
        let mut rng = fastrand::Rng::with_seed(3);
        let config = TrendConfig::default();
        let used = disk_usage(&mut rng, FILL_RATE, 200e6);
        let fit = fit_line(&used).unwrap();
        let full = fit.time_to_threshold(DISK, Bound::Upper, &config).unwrap();
        assert_close(full.seconds, NINE_HOURS, 0.02 * NINE_HOURS, "seconds");
        assert!(full.low_seconds <= NINE_HOURS && NINE_HOURS <= full.high_seconds);
        assert!(full.low_seconds < full.seconds && full.seconds < full.high_seconds);
        assert!(full.high_seconds - full.low_seconds < 0.1 * NINE_HOURS);
        assert_eq!(
            full.at_ms,
            fit.last_ms + (full.seconds * 1000.0).round() as i64
        );

        // The same disk seen as free bytes falling to zero.
        let free: Vec<(i64, f64)> = used.iter().map(|&(t, v)| (t, DISK - v)).collect();
        let empty = fit_line(&free)
            .unwrap()
            .time_to_threshold(0.0, Bound::Lower, &config)
            .unwrap();
        assert_close(
            empty.seconds,
            full.seconds,
            1e-6 * full.seconds,
            "free bytes",
        );
        assert_close(empty.low_seconds, full.low_seconds, 1.0, "free bytes low");
        assert_close(
            empty.high_seconds,
            full.high_seconds,
            1.0,
            "free bytes high",
        );

        // A perfect line: the range collapses onto the answer.
        let exact = fit_line(&disk_usage(&mut rng, FILL_RATE, 0.0))
            .unwrap()
            .time_to_threshold(DISK, Bound::Upper, &config)
            .unwrap();
        assert_close(exact.seconds, NINE_HOURS, 1e-3, "exact");
        assert_close(
            exact.high_seconds - exact.low_seconds,
            0.0,
            1e-3,
            "exact range",
        );
    }

    #[test]
    fn time_to_threshold_declines_when_it_cannot_say() {
        let mut rng = fastrand::Rng::with_seed(4);
        let config = TrendConfig::default();
        let check = |samples: Vec<(i64, f64)>, why: &str| {
            let fit = fit_line(&samples).unwrap();
            assert_eq!(
                fit.time_to_threshold(DISK, Bound::Upper, &config),
                None,
                "{why}"
            );
        };
        check(disk_usage(&mut rng, -FILL_RATE, 200e6), "draining");
        check(disk_usage(&mut rng, 0.0, 200e6), "flat with noise");
        check(disk_usage(&mut rng, 0.0, 0.0), "exactly flat");
        check(
            disk_usage(&mut rng, 0.02 * FILL_RATE, 200e6),
            "too weak for min_r2",
        );
        check(
            disk_usage(&mut rng, FILL_RATE, 0.0)[..5].to_vec(),
            "fewer than min_samples",
        );
        let fit = fit_line(&disk_usage(&mut rng, FILL_RATE, 0.0)).unwrap();
        assert_eq!(fit.time_to_threshold(f64::NAN, Bound::Upper, &config), None);
    }

    #[test]
    fn time_to_threshold_when_already_past_the_limit() {
        let config = TrendConfig::default();
        // A used ratio rising from 0.95 to 1.05 over the hour crossed 1.0 half-way.
        let rising = fit_line(&series(361, 10_000, |t| 0.95 + 0.1 * t / HOUR)).unwrap();
        let full = rising
            .time_to_threshold(1.0, Bound::Upper, &config)
            .unwrap();
        assert_eq!(full.seconds, 0.0);
        assert_eq!((full.low_seconds, full.high_seconds), (0.0, 0.0));
        assert!((full.at_ms - (T0 + 1_800_000)).abs() <= 1, "{}", full.at_ms);
        // Over the limit all window long and receding: past it since the oldest sample.
        let receding = fit_line(&series(361, 10_000, |t| 1.1 - 0.05 * t / HOUR)).unwrap();
        let full = receding
            .time_to_threshold(1.0, Bound::Upper, &config)
            .unwrap();
        assert_eq!((full.seconds, full.at_ms), (0.0, T0));
        // Full and not moving at all.
        let stuck = fit_line(&series(361, 10_000, |_| 1.0)).unwrap();
        assert_eq!(
            stuck
                .time_to_threshold(1.0, Bound::Upper, &config)
                .unwrap()
                .seconds,
            0.0
        );
    }

    #[test]
    fn time_to_threshold_range_covers_the_true_crossing_at_the_stated_rate() {
        let mut rng = fastrand::Rng::with_seed(11);
        // Every answer counts, so that the gate does not pick the lucky trials.
        let config = TrendConfig {
            min_r2: 0.0,
            ..TrendConfig::default()
        };
        let trials = 1000;
        let mut covered = 0;
        for _ in 0..trials {
            // 30 samples over an hour with heavy noise: a range of a few hours.
            let used = series(30, 120_000, |t| {
                DISK - FILL_RATE * (NINE_HOURS + HOUR) + FILL_RATE * t + 1e9 * normal(&mut rng)
            });
            let fit = fit_line(&used).unwrap();
            let truth = NINE_HOURS + HOUR - secs_between(T0, fit.last_ms);
            if let Some(full) = fit.time_to_threshold(DISK, Bound::Upper, &config)
                && full.low_seconds <= truth
                && truth <= full.high_seconds
            {
                covered += 1;
            }
        }
        let coverage = f64::from(covered) / f64::from(trials);
        assert!((0.9..=0.99).contains(&coverage), "coverage {coverage}");
    }

    /// Hourly points over `days` with a daily cycle (and its second harmonic), a slow trend and
    /// noise.
    fn hourly_daily(rng: &mut fastrand::Rng, days: usize) -> Vec<f64> {
        (0..days * 24)
            .map(|i| {
                let h = i as f64;
                50.0 + 0.02 * h
                    + 20.0 * (2.0 * PI * h / 24.0).sin()
                    + 6.0 * (4.0 * PI * h / 24.0 + 1.0).sin()
                    + 4.0 * normal(rng)
            })
            .collect()
    }

    #[test]
    fn detect_period_finds_daily_cycles() {
        for seed in 1..=5 {
            let mut rng = fastrand::Rng::with_seed(seed);
            assert_eq!(period(&hourly_daily(&mut rng, 14)), Some(24), "seed {seed}");
            let ten_minutes: Vec<f64> = (0..7 * 144)
                .map(|i| 30.0 + 10.0 * (2.0 * PI * i as f64 / 144.0).sin() + 3.0 * normal(&mut rng))
                .collect();
            assert_eq!(period(&ten_minutes), Some(144), "seed {seed}");
        }
    }

    #[test]
    fn detect_period_finds_none_without_a_cycle() {
        for seed in 1..=5 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let noise: Vec<f64> = (0..500).map(|_| normal(&mut rng)).collect();
            assert_eq!(period(&noise), None, "white noise, seed {seed}");
        }
        assert_eq!(period(&[3.0; 100]), None, "constant");
        let line: Vec<f64> = (0..100).map(|i| 1e9 + 7.0 * i as f64).collect();
        assert_eq!(period(&line), None, "straight line");
        assert_eq!(period(&[1.0, 2.0, 1.0]), None, "too short");
        assert_eq!(period(&[1.0, f64::NAN, 1.0, 2.0, 1.0]), None);
    }

    #[test]
    fn resample_puts_irregular_samples_on_a_grid() {
        let samples = [
            (T0 + 12_000, 4.0),
            (T0, 1.0),
            (T0 + 10_000, 2.0),
            (T0 + 25_000, f64::NAN),
            (T0 + 40_000, 9.0),
        ];
        let step = Duration::from_secs(10);
        assert_eq!(
            resample(&samples, step),
            Some(vec![1.0, 3.0, 5.0, 7.0, 9.0])
        );
        assert_eq!(resample(&samples, Duration::ZERO), None);
        assert_eq!(resample(&[], step), None);
        let too_fine = [(T0, 1.0), (T0 + 86_400_000, 2.0)];
        assert_eq!(resample(&too_fine, Duration::from_millis(1)), None);
    }

    #[test]
    fn detect_period_on_resampled_irregular_samples() {
        let mut rng = fastrand::Rng::with_seed(9);
        // Two weeks of samples every ~5 minutes with jitter and a six-hour outage.
        let mut samples = Vec::new();
        let mut ts = T0;
        while ts < T0 + 14 * 86_400_000 {
            let outage = (T0 + 3 * 86_400_000..T0 + 3 * 86_400_000 + 6 * 3_600_000).contains(&ts);
            if !outage {
                let h = secs_between(T0, ts) / HOUR;
                let value = 40.0 + 15.0 * (2.0 * PI * h / 24.0).sin() + 3.0 * normal(&mut rng);
                samples.push((ts, value));
            }
            ts += 300_000 + rng.i64(-60_000..60_000);
        }
        let hourly = resample(&samples, Duration::from_secs(3600)).unwrap();
        assert_eq!(period(&hourly), Some(24));
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
        assert_eq!(hw.smoothed().len(), train.len());
        let hw_mae = mae(&hw.forecast(24), &next);
        let holt_mae = mae(
            &Holt::fit(&train, &Budget::UNLIMITED)
                .unwrap()
                .unwrap()
                .forecast(24),
            &next,
        );
        assert!(hw_mae < 0.05 * 20.0, "Holt-Winters MAE {hw_mae}");
        assert!(
            holt_mae > 5.0 * hw_mae,
            "Holt {holt_mae} vs Holt-Winters {hw_mae}"
        );

        let auto = Smoother::fit(&train, &Budget::UNLIMITED).unwrap().unwrap();
        assert_eq!(auto.period(), Some(24));
        assert_eq!(auto.forecast(24), hw.forecast(24));
        assert_eq!(auto.forecast_at(24), hw.forecast(24)[23]);
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
        let hw_mae = mae(&hw.forecast(24), &next);
        let holt_mae = mae(
            &Holt::fit(&noisy[..240], &Budget::UNLIMITED)
                .unwrap()
                .unwrap()
                .forecast(24),
            &next,
        );
        assert!(hw_mae < 0.15 * 20.0, "Holt-Winters MAE {hw_mae}");
        assert!(
            holt_mae > 3.0 * hw_mae,
            "Holt {holt_mae} vs Holt-Winters {hw_mae}"
        );
        assert!(
            hw.rmse() < 2.0 * 2.0,
            "one-step RMSE {} vs noise 2",
            hw.rmse()
        );
    }

    #[test]
    fn smoothers_fall_back_to_holt_without_a_period() {
        let line: Vec<f64> = (0..100).map(|i| 3.0 + 0.5 * i as f64).collect();
        let smoother = Smoother::fit(&line, &Budget::UNLIMITED).unwrap().unwrap();
        assert_eq!(smoother.period(), None);
        for (h, value) in smoother.forecast(10).into_iter().enumerate() {
            assert_close(value, 3.0 + 0.5 * (100 + h) as f64, 1e-9, "line forecast");
        }
        // A year of steps ahead costs no more than one.
        assert_close(
            smoother.forecast_at(1 << 40),
            3.0 + 0.5 * (99 + (1_u64 << 40)) as f64,
            1e-3,
            "far forecast",
        );
        assert_eq!(smoother.smoothed().len(), 100);
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

    /// The online regression against the batch fit of a model window, over random sequences with
    /// gaps, late samples, NaNs and values from 0 to 10¹².
    #[test]
    fn sliding_regression_matches_the_batch_fit_on_random_data() {
        let close =
            |a: f64, b: f64, scale: f64| (a - b).abs() <= 1e-6 * (a.abs().max(b.abs()) + scale);
        let mut rng = fastrand::Rng::with_seed(2024);
        let mut compared = 0;
        for case in 0..200 {
            let window_ms = rng.i64(5_000..=120_000);
            let mut regression = SlidingRegression::new(Duration::from_millis(window_ms as u64));
            let mut model: Vec<(i64, f64)> = Vec::new();
            let offset = [0.0, 1e3, 1e9, 1e12][rng.usize(..4)];
            let slope = (rng.f64() - 0.5) * 10.0;
            let noise = 0.1 + rng.f64() * 100.0;
            let mut newest = T0 + rng.i64(-1_000_000_000..1_000_000_000);
            for step in 0..300 {
                let roll = rng.f64();
                let ts = if roll < 0.1 {
                    newest - rng.i64(0..2 * window_ms)
                } else if roll < 0.13 {
                    newest + window_ms * rng.i64(1..4)
                } else {
                    newest + rng.i64(200..5_000)
                };
                let value = if rng.f64() < 0.02 {
                    f64::NAN
                } else {
                    offset + slope * secs_between(T0, ts) + noise * normal(&mut rng)
                };
                let accepted = regression.push(ts, value);
                let expected = value.is_finite() && (model.is_empty() || ts > newest - window_ms);
                assert_eq!(accepted, expected, "case {case} step {step}");
                if accepted {
                    newest = if model.is_empty() { ts } else { newest.max(ts) };
                    model.push((ts, value));
                    model.retain(|&(t, _)| t > newest - window_ms);
                }
                assert_eq!(regression.len(), model.len());
                match (regression.fit(), fit_line(&model)) {
                    (None, None) => {}
                    (Some(a), Some(b)) => {
                        compared += 1;
                        let context = format!("case {case} step {step}: {a:?} vs {b:?}");
                        assert_eq!((a.n, a.origin_ms, a.last_ms), (b.n, b.origin_ms, b.last_ms));
                        assert!(close(a.slope, b.slope, b.slope_se), "slope, {context}");
                        assert!(close(a.intercept, b.intercept, b.residual_se), "{context}");
                        assert!(close(a.r2, b.r2, 1.0), "r2, {context}");
                        assert!(close(a.residual_se, b.residual_se, 0.0), "{context}");
                        assert!(close(a.slope_se, b.slope_se, 0.0), "{context}");
                        assert!(close(a.sxx, b.sxx, 0.0), "sxx, {context}");
                    }
                    (a, b) => panic!("case {case} step {step}: online {a:?}, batch {b:?}"),
                }
            }
        }
        assert!(compared > 40_000, "only {compared} fits compared");
    }

    #[test]
    fn long_runs_keep_their_precision() {
        // A week of one-second disk samples near 10¹² bytes through a one-hour window: ~600 000
        // additions and subtractions.
        let mut rng = fastrand::Rng::with_seed(1);
        let samples = series(7 * 86_400, 1_000, |t| {
            1e12 + 1e3 * t + 1e5 * normal(&mut rng)
        });
        let regression = online(&samples, Duration::from_secs(3600));
        let online_fit = regression.fit().unwrap();
        let batch = fit_line(&samples[samples.len() - 3600..]).unwrap();
        assert_eq!(online_fit.n, 3600);
        assert_close(online_fit.slope, batch.slope, 1e-9 * batch.slope, "slope");
        let intercept_tolerance = 1e-12 * batch.intercept;
        assert_close(
            online_fit.intercept,
            batch.intercept,
            intercept_tolerance,
            "intercept",
        );
        assert_close(online_fit.r2, batch.r2, 1e-9, "r2");
    }

    #[test]
    fn config_reads_human_durations_and_rejects_unknown_fields() {
        let text = "window = \"30m\"\nhorizon = \"6h\"\nmin_samples = 20\nmin_r2 = 0.7\n\
                    confidence = 0.9\n";
        let config: TrendConfig = toml::from_str(text).unwrap();
        assert_eq!(
            config,
            TrendConfig {
                window: Duration::from_secs(1800),
                horizon: Duration::from_secs(6 * 3600),
                min_samples: 20,
                min_r2: 0.7,
                confidence: 0.9,
            }
        );
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(
            toml::from_str::<TrendConfig>("").unwrap(),
            TrendConfig::default()
        );
        assert!(toml::from_str::<TrendConfig>("windw = \"1h\"").is_err());

        let check = |change: fn(&mut TrendConfig), expected: TrendConfigError| {
            let mut config = TrendConfig::default();
            change(&mut config);
            assert_eq!(config.validate(), Err(expected));
        };
        check(|c| c.window = Duration::ZERO, TrendConfigError::EmptyWindow);
        check(|c| c.min_samples = 2, TrendConfigError::TooFewMinSamples(2));
        check(|c| c.min_r2 = 1.5, TrendConfigError::MinR2OutOfRange(1.5));
        check(
            |c| c.confidence = 1.0,
            TrendConfigError::ConfidenceOutOfRange(1.0),
        );
        assert_eq!(TrendConfig::default().validate(), Ok(()));
    }
}

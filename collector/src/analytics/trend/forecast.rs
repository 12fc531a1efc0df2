//! Extrapolating a fitted line: a forecast with its interval, and when the line reaches a
//! limit with its range ("disk / is filling at this rate, full in 9 h (± 2 h)").
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

use super::regression::{Fit, ms_after, secs_between};
use super::{MIN_FIT_SAMPLES, TrendConfig};
use crate::analytics::stats::t_critical;
use serde::Serialize;
use std::time::Duration;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::test_support::{T0, assert_close, normal, series};
    use crate::analytics::trend::fit_line;

    const HOUR: f64 = 3600.0;

    #[test]
    fn perfect_lines_forecast_with_no_width() {
        for (step_ms, slope, intercept) in
            [(1_000, 0.25, 50.0), (10_000, -3.0, 1e12), (250, 4e6, -2e9)]
        {
            let fit = fit_line(&series(50, step_ms, |t| intercept + slope * t)).unwrap();
            let scale = intercept.abs().max(1.0);
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
}

//! The linear trend: ordinary least squares over the samples of a window ([`fit_line`]; the
//! caller reads the window, one hour by default). A straight line is the right model for the
//! question operators ask of a trend — "at this rate, when?" — its slope is a rate they can
//! read, and a window lets the answer follow a change of regime once the old samples have left
//! it. The [`Fit`] holds the slope per second, intercept, R², residual standard error and the
//! slope's standard error.
//!
//! Raw sums would be useless here: timestamps are Unix milliseconds (~1.7·10¹²), so Σt² is
//! ~10²⁴ per sample while the spread inside a window is ~10⁷, and subtracting the two loses every
//! significant digit; disk sizes in bytes have the same problem in the values. So the fit takes
//! two passes: the means first, then sums of the samples centred on them.

use super::MIN_FIT_SAMPLES;
use crate::analytics::stats::t_two_sided_p;

/// A straight line fitted by least squares, with what is needed to say how far to trust it.
#[derive(Debug, Clone, Copy, PartialEq)]
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

impl Fit {
    /// The line's value at `ts_ms`.
    pub fn value_at(&self, ts_ms: i64) -> f64 {
        self.intercept + self.slope * secs_between(self.origin_ms, ts_ms)
    }

    /// The two-sided p-value of the t-test of "no trend" (slope = 0), with n − 2 degrees of
    /// freedom: below 0.05, the slope is significant at the 5 % level. A line through every
    /// sample has no error to test against: 0 when it slopes, 1 when it is flat.
    pub fn slope_p_value(&self) -> f64 {
        if self.slope_se > 0.0 {
            t_two_sided_p(self.slope / self.slope_se, self.n - 2)
        } else if self.slope == 0.0 {
            1.0
        } else {
            0.0
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
    if n < MIN_FIT_SAMPLES || sxx.is_nan() || sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let sse = (syy - slope * sxy).max(0.0);
    let r2 = if syy > 0.0 {
        (1.0 - sse / syy).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let residual_se = (sse / (count - 2.0)).sqrt();
    Some(Fit {
        n,
        origin_ms,
        last_ms,
        slope,
        intercept: mean_value - slope * mean_secs,
        r2,
        residual_se,
        slope_se: residual_se / sxx.sqrt(),
        mean_secs,
        sxx,
    })
}

/// Seconds from `from_ms` to `to_ms`, saturating at the ends of i64.
pub(super) fn secs_between(from_ms: i64, to_ms: i64) -> f64 {
    to_ms.saturating_sub(from_ms) as f64 / 1000.0
}

/// `base_ms` plus `secs`, saturating at the ends of i64 (a nearly flat line crosses a limit
/// centuries away).
pub(super) fn ms_after(base_ms: i64, secs: f64) -> i64 {
    base_ms.saturating_add((secs * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::test_support::{T0, assert_close, normal, series};

    #[test]
    fn perfect_lines_are_fitted_exactly() {
        let check = |step_ms: i64, slope: f64, intercept: f64| {
            let fit = fit_line(&series(50, step_ms, |t| intercept + slope * t)).unwrap();
            let scale = intercept.abs().max(1.0);
            assert_eq!((fit.n, fit.origin_ms), (50, T0));
            assert_close(fit.slope, slope, 1e-6 * slope.abs() + 1e-12, "slope");
            assert_close(fit.intercept, intercept, 1e-12 * scale, "intercept");
            assert_close(fit.r2, 1.0, 1e-9, "r2");
            assert_close(fit.residual_se, 0.0, 1e-9 * scale, "residual_se");
            let later = T0 + 100 * step_ms;
            let expected = intercept + slope * secs_between(T0, later);
            assert_close(fit.value_at(later), expected, 1e-9 * scale, "value_at");
        };
        check(1_000, 0.25, 50.0);
        check(10_000, -3.0, 1e12);
        check(60_000, 0.0, 7.0);
        check(15_000, 1e-6, 0.5);
        check(250, 4e6, -2e9);
    }

    #[test]
    fn slope_p_value_is_the_t_test_of_no_trend() {
        // x = 0..3 s, y = 0, 1, 1, 2: slope 3/5, SSE 2 − 0.6·3 = 0.2, s = √0.1,
        // SE = √0.1/√5, t = 3√2; with 2 degrees of freedom p = 1 − t/√(t² + 2) = 1 − 3/√10.
        let fit = fit_line(&[
            (T0, 0.0),
            (T0 + 1000, 1.0),
            (T0 + 2000, 1.0),
            (T0 + 3000, 2.0),
        ])
        .unwrap();
        assert_close(fit.slope, 0.6, 1e-12, "slope");
        assert_close(fit.slope_p_value(), 1.0 - 3.0 / 10f64.sqrt(), 1e-9, "p");
        let exact = fit_line(&series(5, 1000, |t| 2.0 * t)).unwrap();
        assert!(exact.slope_p_value() < 1e-9, "a perfect slope");
        let flat = fit_line(&series(5, 1000, |_| 1.0)).unwrap();
        assert_eq!(flat.slope_p_value(), 1.0);
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
}

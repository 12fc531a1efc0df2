//! Seasonality: putting raw samples on a regular grid ([`resample`]) and finding the period of
//! a regularly spaced series ([`detect_period`]).
//!
//! [`detect_period`] works in two steps. First the autocorrelation of the series less its linear
//! trend (a trend alone makes every lag look correlated): candidates run from 2 samples to half
//! the series (two full cycles are needed to see one repeat), must come after the ACF first
//! turns negative (before that, lags correlate only because neighbouring samples are alike, and
//! noise gives them local peaks), must be a local maximum and reach 0.3. The ACF uses the
//! biased estimator, which shrinks longer lags by `(n − k) / n`, so the fundamental beats its
//! multiples; and among peaks within 10 % of the best one the shortest lag wins, so noise cannot
//! hand the win to 48 h when the cycle is 24 h. That same shrinking, and the flat top of a noisy
//! ACF peak, put the peak several samples short of a long period (134–144 for a 144-sample
//! cycle in trials), so the second step settles the period among the integers within 10 % of
//! the peak: the one whose sinusoids (fundamental and two harmonics, each fitted by least
//! squares) explain the most variance. A least-squares fit, not the periodogram, because over a
//! non-whole number of cycles sine and cosine are not orthogonal and the periodogram's peak
//! drifts by about half a sample, enough to round to the wrong period half the time. Cost:
//! O(n²/2) multiply-adds for the ACF, ~70 ms for a week of one-minute points in a release build;
//! the caller bounds n, and the [`Budget`] it passes is asked once per lag, so a request can be
//! stopped mid-way.

use crate::analytics::budget::{Budget, Interrupted};
use std::f64::consts::PI;
use std::time::Duration;

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
pub(super) fn index_line(values: &[f64]) -> (f64, f64) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::test_support::{T0, normal};

    const HOUR_MS: i64 = 3_600_000;
    const DAY_MS: i64 = 24 * HOUR_MS;

    /// The period [`detect_period`] finds with nothing to stop it.
    fn period(values: &[f64]) -> Option<usize> {
        detect_period(values, &Budget::UNLIMITED).expect("an unlimited budget never stops")
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
        let too_fine = [(T0, 1.0), (T0 + DAY_MS, 2.0)];
        assert_eq!(resample(&too_fine, Duration::from_millis(1)), None);
    }

    #[test]
    fn detect_period_on_resampled_irregular_samples() {
        let mut rng = fastrand::Rng::with_seed(9);
        // Two weeks of samples every ~5 minutes with jitter and a six-hour outage.
        let mut samples = Vec::new();
        let mut ts = T0;
        while ts < T0 + 14 * DAY_MS {
            let outage = (T0 + 3 * DAY_MS..T0 + 3 * DAY_MS + 6 * HOUR_MS).contains(&ts);
            if !outage {
                let h = (ts - T0) as f64 / 1000.0 / 3600.0;
                let value = 40.0 + 15.0 * (2.0 * PI * h / 24.0).sin() + 3.0 * normal(&mut rng);
                samples.push((ts, value));
            }
            ts += 300_000 + rng.i64(-60_000..60_000);
        }
        let hourly = resample(&samples, Duration::from_secs(3600)).unwrap();
        assert_eq!(period(&hourly), Some(24));
    }
}

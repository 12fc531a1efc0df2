//! Numerics the engines share: the Student-t quantile for the trend's intervals (exact, through
//! the regularized incomplete beta function), and quantiles of sorted samples for the robust
//! detectors' windows and the forest's threshold.

use std::f64::consts::PI;

/// Above this many degrees of freedom the t quantile is computed as if for this many: it is
/// within 10⁻⁵ of the normal quantile, and the incomplete beta's gamma terms stay accurate.
const MAX_DF: usize = 1_000_000;

/// The two-sided Student-t critical value: `q` with P(|T| ≤ q) = `confidence` for `df`
/// degrees of freedom (1.96 for 95 % as `df` grows; 2.228 at 10; 12.706 at 1). Computed by
/// bisection on the exact distribution function, to ~10⁻¹² relative. 0 for a confidence of 0
/// or less; infinite for 1 or more, or for `df` 0.
pub(crate) fn t_critical(confidence: f64, df: usize) -> f64 {
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

/// The two-sided p-value of a Student-t statistic: P(|T| ≥ |t|) for `df` degrees of freedom
/// (0.05 at t = 2.228 with 10; 1 at t = 0). NaN for a NaN `t` or `df` 0.
pub(crate) fn t_two_sided_p(t: f64, df: usize) -> f64 {
    if t.is_nan() || df == 0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    let nu = df.min(MAX_DF) as f64;
    regularized_beta(nu / (nu + t * t), nu / 2.0, 0.5)
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

/// The `q` quantile (0..=1) of non-empty sorted `values`, interpolating linearly between ranks.
pub(crate) fn quantile_sorted(values: &[f64], q: f64) -> f64 {
    let rank = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let below = rank.floor() as usize;
    let above = rank.ceil() as usize;
    let frac = rank - below as f64;
    values[below] + (values[above] - values[below]) * frac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::test_support::assert_close;

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

    #[test]
    fn t_two_sided_p_inverts_the_critical_values() {
        assert_close(t_two_sided_p(2.2281, 10), 0.05, 1e-4, "t 2.2281 df 10");
        assert_close(t_two_sided_p(-12.7062, 1), 0.05, 1e-4, "t -12.7062 df 1");
        assert_close(t_two_sided_p(1.95996, 10_000_000), 0.05, 1e-4, "normal");
        assert_close(t_two_sided_p(0.0, 5), 1.0, 1e-12, "t 0");
        assert_eq!(t_two_sided_p(f64::INFINITY, 5), 0.0);
        assert!(t_two_sided_p(1.0, 0).is_nan());
    }

    #[test]
    fn quantile_interpolates() {
        let v = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.0), 0.0);
        assert_eq!(quantile_sorted(&v, 1.0), 4.0);
        assert_eq!(quantile_sorted(&v, 0.9), 3.6);
        assert_eq!(quantile_sorted(&[2.5], 0.9), 2.5);
    }
}

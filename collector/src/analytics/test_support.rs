//! What the engines' tests share: seeded Gaussian noise, a tolerance check, and evenly spaced
//! series stamped in real Unix milliseconds.

/// A Unix time in 2023, on the agent's 10 s collection grid, and large enough that uncentred
/// sums would lose every digit.
pub(crate) const T0: i64 = 1_700_000_000_000;

/// Standard normal noise (Box–Muller), so the tests need nothing beyond `fastrand`.
pub(crate) fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = 1.0 - rng.f64(); // (0, 1]: ln is finite
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub(crate) fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} is not within {tolerance} of {expected}"
    );
}

/// `n` samples `step_ms` apart from [`T0`], valued `f(seconds since T0)`.
pub(crate) fn series(n: usize, step_ms: i64, mut f: impl FnMut(f64) -> f64) -> Vec<(i64, f64)> {
    (0..n as i64)
        .map(|i| {
            let ts = T0 + i * step_ms;
            (ts, f((ts - T0) as f64 / 1000.0))
        })
        .collect()
}

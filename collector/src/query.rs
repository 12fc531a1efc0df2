//! Range-query evaluation over raw samples, as Prometheus does for an instant-vector selector:
//! at each step the value is the newest sample at or before that time within the lookback.

/// How far back a step looks for a sample, as Prometheus' default `lookback-delta`.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Prometheus' cap on points per series in one range query.
pub const MAX_POINTS: i64 = 11_000;

/// Evaluates one series at `start, start+step, … ≤ end` (all ms). `samples` must be sorted by
/// timestamp and cover `[start - LOOKBACK_MS, end]`.
pub fn evaluate_steps(samples: &[(i64, f64)], start: i64, end: i64, step: i64) -> Vec<(i64, f64)> {
    assert!(step > 0, "step is validated by the caller");
    let mut out = Vec::new();
    let mut next = 0; // index of the first sample after the current step time
    let mut t = start;
    while t <= end {
        while next < samples.len() && samples[next].0 <= t {
            next += 1;
        }
        if next > 0 {
            let (ts, value) = samples[next - 1];
            if t - ts <= LOOKBACK_MS {
                out.push((t, value));
            }
        }
        t += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(samples: &[(i64, f64)], start: i64, end: i64, step: i64, expected: &[(i64, f64)]) {
        assert_eq!(evaluate_steps(samples, start, end, step), expected);
    }

    #[test]
    fn picks_latest_sample_within_lookback() {
        check(&[], 0, 100, 10, &[]);
        check(
            &[(5, 1.0), (15, 2.0)],
            0,
            30,
            10,
            &[(10, 1.0), (20, 2.0), (30, 2.0)],
        );
        check(&[(10, 1.0)], 10, 10, 10, &[(10, 1.0)]);
        let stale = LOOKBACK_MS + 1;
        check(&[(0, 1.0)], stale - 1, stale, 1, &[(stale - 1, 1.0)]);
    }
}

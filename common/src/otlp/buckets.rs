//! Histogram data points as Prometheus classic buckets: `(upper bound, cumulative count)` pairs
//! in ascending order, ending with `+Inf` at the point's count.
//!
//! Exponential histograms are converted rather than stored natively, since hcmon stores float
//! samples: their buckets are merged down to scale 0 (powers of two) first, which keeps a
//! histogram spanning nanoseconds to hours at about sixty `le` series instead of thousands,
//! at the cost of quantile resolution inside a factor of two.

use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::{ExponentialHistogramDataPoint, HistogramDataPoint};

/// Finest scale kept: 0 is base 2.
const TARGET_SCALE: i32 = 0;

/// A classic histogram's cumulative buckets, `+Inf` included.
pub fn explicit(point: &HistogramDataPoint) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(point.explicit_bounds.len() + 1);
    let mut total = 0u64;
    for (i, &bound) in point.explicit_bounds.iter().enumerate() {
        total = total.saturating_add(point.bucket_counts.get(i).copied().unwrap_or(0));
        if bound.is_finite() {
            out.push((bound, total as f64));
        }
    }
    out.push((f64::INFINITY, point.count as f64));
    out
}

/// 2 to the power `exponent`, `+Inf` past f64's range.
fn power_of_two(exponent: i64) -> f64 {
    if exponent > 1023 {
        f64::INFINITY
    } else if exponent < -1074 {
        0.0
    } else {
        2f64.powi(exponent as i32)
    }
}

/// The buckets of one side, merged to `scale`, as (index, count) in ascending index.
fn merged(buckets: Option<&Buckets>, shift: i32) -> Vec<(i64, u64)> {
    let mut out: Vec<(i64, u64)> = Vec::new();
    let Some(buckets) = buckets else {
        return out;
    };
    for (i, &count) in buckets.bucket_counts.iter().enumerate() {
        let index = (i64::from(buckets.offset) + i as i64) >> shift;
        match out.last_mut() {
            Some((last, total)) if *last == index => *total = total.saturating_add(count),
            _ => out.push((index, count)),
        }
    }
    out
}

/// An exponential histogram's cumulative buckets, `+Inf` included.
pub fn exponential(point: &ExponentialHistogramDataPoint) -> Vec<(f64, f64)> {
    let scale = point.scale.min(TARGET_SCALE);
    let shift = (point.scale - scale).clamp(0, 62);
    // At scale s ≤ 0 the base is 2^(2^-s): bucket i holds (base^i, base^(i+1)].
    let width = 1i64 << (-scale).clamp(0, 62);
    let negative = merged(point.negative.as_ref(), shift);
    let positive = merged(point.positive.as_ref(), shift);
    let mut out = Vec::with_capacity(negative.len() + positive.len() + 2);
    let mut total = 0u64;
    // Negative bucket i holds [-base^(i+1), -base^i): the most negative first.
    for &(index, count) in negative.iter().rev() {
        total = total.saturating_add(count);
        out.push((-power_of_two(index.saturating_mul(width)), total as f64));
    }
    total = total.saturating_add(point.zero_count);
    out.push((point.zero_threshold.max(0.0), total as f64));
    for &(index, count) in &positive {
        total = total.saturating_add(count);
        let bound = power_of_two(index.saturating_add(1).saturating_mul(width));
        if bound.is_finite() {
            out.push((bound, total as f64));
        }
    }
    out.push((f64::INFINITY, point.count as f64));
    out
}

/// How Prometheus writes a bound in `le` (and a quantile): shortest decimal, `+Inf`.
pub fn bound_label(bound: f64) -> String {
    if bound == f64::INFINITY {
        "+Inf".to_owned()
    } else if bound == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{bound}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_buckets_are_cumulative() {
        let point = HistogramDataPoint {
            count: 10,
            bucket_counts: vec![1, 2, 3, 4],
            explicit_bounds: vec![0.1, 1.0, 10.0],
            ..Default::default()
        };
        assert_eq!(
            explicit(&point),
            vec![(0.1, 1.0), (1.0, 3.0), (10.0, 6.0), (f64::INFINITY, 10.0)]
        );
    }

    #[test]
    fn exponential_buckets_merge_to_powers_of_two() {
        // Scale 1: base √2; indices 0..4 are (1,√2], (√2,2], (2,2√2], (2√2,4].
        let point = ExponentialHistogramDataPoint {
            scale: 1,
            count: 14,
            zero_count: 2,
            positive: Some(Buckets {
                offset: 0,
                bucket_counts: vec![1, 2, 3, 4],
            }),
            negative: Some(Buckets {
                offset: 1,
                bucket_counts: vec![2],
            }),
            ..Default::default()
        };
        // The negative bucket (index 1 at scale 1, i.e. [-2, -√2)) merges into index 0 at
        // scale 0: [-2, -1), upper bound -1.
        assert_eq!(
            exponential(&point),
            vec![
                (-1.0, 2.0),
                (0.0, 4.0),
                (2.0, 7.0),
                (4.0, 14.0),
                (f64::INFINITY, 14.0),
            ]
        );
    }

    #[test]
    fn coarse_scales_keep_their_bounds() {
        // Scale -1: base 4; index 1 is (4, 16].
        let point = ExponentialHistogramDataPoint {
            scale: -1,
            count: 3,
            positive: Some(Buckets {
                offset: 1,
                bucket_counts: vec![3],
            }),
            ..Default::default()
        };
        assert_eq!(
            exponential(&point),
            vec![(0.0, 0.0), (16.0, 3.0), (f64::INFINITY, 3.0)]
        );
        assert_eq!(bound_label(0.25), "0.25");
        assert_eq!(bound_label(16.0), "16");
        assert_eq!(bound_label(f64::INFINITY), "+Inf");
    }
}

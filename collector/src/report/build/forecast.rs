//! Each SLO 30 days ahead: its daily compliance extrapolated along the trend line of the last
//! 30 days (the trend engine's `Fit::forecast_at`, with the OLS prediction interval at 95 %),
//! and the budget a period would have left at that compliance.
//!
//! Compliance is a share, so the line and its band are clamped to [0, 1]: a line falling
//! 0.5 points a day does not forecast −3 % compliance, it forecasts none. The budget is read
//! off the clamped figures, so it stays within what a period can spend (down to
//! 1 − 1 / (1 − target) at 0 % compliance).

use super::trends::Trend;
use crate::report::model::{Band, ForecastRow};

/// How far ahead, in days.
pub(super) const HORIZON_DAYS: u32 = 30;
/// Coverage of the forecast's interval.
const CONFIDENCE: f64 = 0.95;
const DAY_MS: i64 = 86_400_000;

/// The share of a period's budget left when the period's compliance is `compliance`.
pub(super) fn budget_left(compliance: f64, target: f64) -> f64 {
    1.0 - (1.0 - compliance) / (1.0 - target)
}

/// The forecast of an SLO with target `target` from the trend of its daily compliance.
pub(super) fn forecast(slo: &str, target: f64, trend: &Trend) -> ForecastRow {
    let share = |v: f64| v.clamp(0.0, 1.0);
    let points: Vec<(i64, f64, f64, f64)> = (1..=i64::from(HORIZON_DAYS))
        .map(|day| {
            let f = trend
                .fit
                .forecast_at(trend.fit.last_ms + day * DAY_MS, CONFIDENCE);
            (f.at_ms, share(f.value), share(f.low), share(f.high))
        })
        .collect();
    let (_, value, lower, upper) = points.last().copied().unwrap_or_default();
    ForecastRow {
        slo: slo.to_owned(),
        horizon_days: HORIZON_DAYS,
        compliance: Band {
            value,
            lower,
            upper,
        },
        budget_remaining: Band {
            value: budget_left(value, target),
            lower: budget_left(lower, target),
            upper: budget_left(upper, target),
        },
        points,
        history: trend.points.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::slo::Zone;
    use crate::report::build::trends::trend;
    use crate::report::model::TrendUnit;

    fn trend_of(values: impl Fn(i64) -> f64) -> Trend {
        let points = (0..30).map(|d| (d * DAY_MS, values(d))).collect();
        trend("c".into(), TrendUnit::Share, points, true, &Zone::utc()).unwrap()
    }

    #[test]
    fn report_forecast_extends_a_perfect_line_exactly() {
        // 0.999 falling 0.0001 a day: day 29 is 0.9961, 30 days later 0.9931. No scatter, so
        // the band is the line itself.
        let row = forecast("web", 0.99, &trend_of(|d| 0.999 - 0.0001 * d as f64));
        assert_eq!(
            (row.slo.as_str(), row.horizon_days, row.points.len()),
            ("web", 30, 30)
        );
        assert_eq!(row.points[29].0, 59 * DAY_MS);
        let c = row.compliance;
        assert!((c.value - 0.9931).abs() < 1e-9, "{c:?}");
        assert!((c.upper - c.lower).abs() < 1e-6, "{c:?}");
        // 1 − 0.0069 / 0.01 = 0.31 of a period's budget left.
        assert!(
            (row.budget_remaining.value - 0.31).abs() < 1e-6,
            "{:?}",
            row.budget_remaining
        );
        assert_eq!(row.history.len(), 30);
        assert_eq!(row.history[0], (0, 0.999));
    }

    #[test]
    fn report_forecast_clamps_to_shares() {
        // Falling 2 points a day from 100 %: the line reaches −18 % in 30 days; clamped to 0.
        let row = forecast(
            "web",
            0.95,
            &trend_of(|d| 1.0 - 0.02 * d as f64 + 0.001 * (d % 2) as f64),
        );
        assert_eq!(row.compliance.value, 0.0);
        assert_eq!(row.compliance.lower, 0.0);
        assert!(
            row.points
                .iter()
                .all(|p| (0.0..=1.0).contains(&p.1) && (0.0..=1.0).contains(&p.3))
        );
        // At 0 % a 95 % SLO overspends its budget twentyfold: 1 − 1/0.05 = −19.
        assert!((row.budget_remaining.value + 19.0).abs() < 1e-9);
        // A noisy flat line at 99.5 %: a band around it, the upper end clamped at 100 %.
        let row = forecast(
            "web",
            0.95,
            &trend_of(|d| 0.995 + 0.004 * ((d * 7 % 3) - 1) as f64),
        );
        let c = row.compliance;
        assert!(
            c.lower < c.value && c.value <= c.upper && c.upper <= 1.0,
            "{c:?}"
        );
        assert!((c.value - 0.995).abs() < 0.002, "{c:?}");
    }

    #[test]
    fn report_budget_left_at_a_compliance() {
        assert_eq!(budget_left(0.95, 0.95), 0.0);
        assert!((budget_left(0.99, 0.95) - 0.8).abs() < 1e-12);
        assert!((budget_left(0.90, 0.95) + 1.0).abs() < 1e-12);
        assert_eq!(budget_left(1.0, 0.95), 1.0);
    }
}

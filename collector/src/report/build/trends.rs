//! Trends over the 30 days ending at the report's end: the least-squares slope of each SLO's
//! daily compliance and of the daily mean time to acknowledge and to resolve, with the t-test
//! of "no trend" (`Fit::slope_p_value`), and a weekday effect where one stands out.
//!
//! A direction is only claimed when the slope is significant at the 5 % level: thirty noisy
//! days drift one way or the other by chance, and a report that calls chance a trend teaches
//! its readers to ignore it.
//!
//! The weekday effect is tested on what the line leaves unexplained (its residuals): for each
//! weekday, the mean of that day against the mean of the others, a pooled two-sample t-test,
//! which is exactly the t-test of the slope of a regression on a 0/1 indicator (so the same
//! `fit_line` does it). Seven weekdays are tried, so a weekday counts only at p < 0.05 / 7
//! (Bonferroni): otherwise one of the seven would "stand out" by chance a third of the time.

use super::incidents::wait_ms;
use super::text::{self, WEEKDAYS, duration, local};
use crate::analytics::slo::response::Measure;
use crate::analytics::slo::{IncidentFact, Tally, Window, Zone};
use crate::analytics::trend::{Fit, fit_line};
use crate::report::model::{Direction, TrendRow, TrendUnit};

/// Significance level of the trend and weekday tests.
pub(super) const ALPHA: f64 = 0.05;
/// Fewest days with a value before a slope is reported: fewer say nothing about 30 days.
pub(super) const MIN_TREND_DAYS: usize = 5;
/// Fewest days before a weekday effect is looked for: two of each weekday.
const MIN_SEASONAL_DAYS: usize = 14;
const DAY_SECS: f64 = 86_400.0;

/// A trend with the line behind it, for the forecast and the recommendations.
#[derive(Debug, Clone)]
pub(super) struct Trend {
    pub row: TrendRow,
    pub fit: Fit,
    /// The slope's p-value (also in `row`).
    pub p_value: f64,
    /// The daily values fitted: (day start ms, value).
    pub points: Vec<(i64, f64)>,
}

/// The days' own compliance, for the days with valid events.
pub(super) fn daily_compliance(days: &[(Window, Tally)]) -> Vec<(i64, f64)> {
    days.iter()
        .filter_map(|(day, tally)| Some((day.start_ms, tally.compliance()?)))
        .collect()
}

/// Per day, the mean wait of `measure` of the incidents that started that day, for the days
/// with at least one ended wait.
pub(super) fn daily_waits(
    incidents: &[&IncidentFact],
    days: &[Window],
    measure: Measure,
) -> Vec<(i64, f64)> {
    days.iter()
        .filter_map(|day| {
            let waits: Vec<f64> = incidents
                .iter()
                .filter(|i| day.contains(i.started_ms))
                .filter_map(|i| wait_ms(i, measure))
                .collect();
            (!waits.is_empty())
                .then(|| (day.start_ms, waits.iter().sum::<f64>() / waits.len() as f64))
        })
        .collect()
}

/// The trend of daily `points`; None with fewer than [`MIN_TREND_DAYS`]. `higher_is_better`
/// says which way is improving.
pub(super) fn trend(
    subject: String,
    unit: TrendUnit,
    points: Vec<(i64, f64)>,
    higher_is_better: bool,
    zone: &Zone,
) -> Option<Trend> {
    if points.len() < MIN_TREND_DAYS {
        return None;
    }
    let fit = fit_line(&points)?;
    let p_value = fit.slope_p_value();
    let significant = p_value < ALPHA;
    let direction = match (significant, (fit.slope > 0.0) == higher_is_better) {
        (false, _) => Direction::Flat,
        (true, true) => Direction::Improving,
        (true, false) => Direction::Worsening,
    };
    let seasonality = weekday_effect(&fit, &points, unit, zone);
    Some(Trend {
        row: TrendRow {
            subject,
            unit,
            samples: fit.n,
            slope_per_day: fit.slope * DAY_SECS,
            p_value,
            significant,
            direction,
            seasonality,
        },
        fit,
        p_value,
        points,
    })
}

/// The weekday that stands out from the others after the trend is taken away, in words.
fn weekday_effect(
    fit: &Fit,
    points: &[(i64, f64)],
    unit: TrendUnit,
    zone: &Zone,
) -> Option<String> {
    if points.len() < MIN_SEASONAL_DAYS {
        return None;
    }
    let residuals: Vec<(usize, f64)> = points
        .iter()
        .filter_map(|&(t, v)| {
            let weekday = local(t, zone)?.weekday().to_monday_zero_offset();
            Some((usize::try_from(weekday).ok()?, v - fit.value_at(t)))
        })
        .collect();
    let mut best: Option<(f64, usize, f64)> = None;
    for weekday in 0..7 {
        let on_day = residuals.iter().filter(|(d, _)| *d == weekday).count();
        if on_day < 2 || residuals.len() - on_day < 2 {
            continue;
        }
        // x = 1 s on that weekday, 0 otherwise: the slope is the difference of the means.
        let samples: Vec<(i64, f64)> = residuals
            .iter()
            .map(|&(d, r)| (if d == weekday { 1000 } else { 0 }, r))
            .collect();
        let Some(split) = fit_line(&samples) else {
            continue;
        };
        let p = split.slope_p_value();
        if p * 7.0 < ALPHA && best.is_none_or(|(best_p, _, _)| p < best_p) {
            best = Some((p, weekday, split.slope));
        }
    }
    let (_, weekday, difference) = best?;
    let side = if difference < 0.0 { "lower" } else { "higher" };
    let sign = if difference < 0.0 { "−" } else { "+" };
    let size = match unit {
        TrendUnit::Share => text::points(difference.abs()),
        TrendUnit::Milliseconds => duration(difference.abs()),
    };
    Some(format!("{side} on {}s ({sign}{size})", WEEKDAYS[weekday]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::slo::IncidentSeverity;
    use crate::report::build::incidents::tests::{HOUR, MIN, incident, ms};

    const DAY: i64 = 86_400_000;

    /// 30 days from Monday 2026-11-02 00:00 UTC.
    fn days_from_monday(values: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
        let start = ms("2026-11-02T00:00:00Z");
        (0..30).map(|d| (start + d * DAY, values(d))).collect()
    }

    fn noise(d: i64) -> f64 {
        // A fixed zig-zag of ±0.002 with no drift: Σ over 30 days of (d mod 3 − 1) is 0.
        0.002 * ((d * 7 % 3) - 1) as f64
    }

    #[test]
    fn report_trend_declining_compliance_is_significant_and_worsening() {
        // 0.999 falling 0.001 a day, with the zig-zag on top.
        let points = days_from_monday(|d| 0.999 - 0.001 * d as f64 + noise(d));
        let t = trend(
            "compliance of web".into(),
            TrendUnit::Share,
            points,
            true,
            &Zone::utc(),
        )
        .unwrap();
        assert_eq!(t.row.samples, 30);
        assert!(
            (t.row.slope_per_day + 0.001).abs() < 1e-4,
            "slope {}",
            t.row.slope_per_day
        );
        assert!(t.p_value < 1e-6, "p {}", t.p_value);
        assert!(t.row.significant);
        assert_eq!(t.row.direction, Direction::Worsening);
        assert_eq!(t.row.seasonality, None);
    }

    #[test]
    fn report_trend_of_flat_noise_is_flat() {
        let points = days_from_monday(|d| 0.99 + noise(d));
        let t = trend(
            "compliance of web".into(),
            TrendUnit::Share,
            points,
            true,
            &Zone::utc(),
        )
        .unwrap();
        assert!(t.p_value > ALPHA, "p {}", t.p_value);
        assert!(!t.row.significant);
        assert_eq!(t.row.direction, Direction::Flat);
        // A constant series: no error, no slope, p = 1.
        let t = trend(
            "c".into(),
            TrendUnit::Share,
            days_from_monday(|_| 1.0),
            true,
            &Zone::utc(),
        )
        .unwrap();
        assert_eq!((t.row.p_value, t.row.direction), (1.0, Direction::Flat));
    }

    #[test]
    fn report_trend_of_waits_rising_is_worsening_and_short_series_have_none() {
        let points = days_from_monday(|d| (10 + d) as f64 * MIN as f64 + noise(d) * 1e6);
        let t = trend(
            "MTTA".into(),
            TrendUnit::Milliseconds,
            points,
            false,
            &Zone::utc(),
        )
        .unwrap();
        assert_eq!(t.row.direction, Direction::Worsening);
        assert!((t.row.slope_per_day - MIN as f64).abs() < 1_000.0);
        let short = days_from_monday(|d| d as f64).into_iter().take(4).collect();
        assert!(trend("x".into(), TrendUnit::Share, short, true, &Zone::utc()).is_none());
    }

    #[test]
    fn report_trend_finds_a_weekday_effect() {
        // 0.995 every day but Mondays at 0.975, with a little noise: Mondays are 2 points lower.
        let points = days_from_monday(|d| if d % 7 == 0 { 0.975 } else { 0.995 } + noise(d) / 10.0);
        let t = trend(
            "compliance of web".into(),
            TrendUnit::Share,
            points,
            true,
            &Zone::utc(),
        )
        .unwrap();
        let text = t.row.seasonality.unwrap();
        assert!(text.starts_with("lower on Mondays (−2"), "{text}");
        // The same days seen from Auckland (UTC+13 in November) are Monday midday: still Mondays.
        let zone = Zone::parse("Pacific/Auckland").unwrap();
        let points = days_from_monday(|d| if d % 7 == 0 { 0.975 } else { 0.995 });
        let t = trend("c".into(), TrendUnit::Share, points, true, &zone).unwrap();
        assert!(t.row.seasonality.unwrap().contains("Mondays"));
        // Flat noise has none.
        let t = trend(
            "c".into(),
            TrendUnit::Share,
            days_from_monday(|d| 0.99 + noise(d)),
            true,
            &Zone::utc(),
        )
        .unwrap();
        assert_eq!(t.row.seasonality, None);
    }

    #[test]
    fn report_trend_daily_values() {
        let day0 = Window::new(0, DAY);
        let day1 = Window::new(DAY, 2 * DAY);
        let tally = |good: f64, bad: f64| Tally {
            good,
            bad,
            unknown: 5.0,
            excluded: 1.0,
        };
        let days = [(day0, tally(3.0, 1.0)), (day1, tally(0.0, 0.0))];
        assert_eq!(daily_compliance(&days), vec![(0, 0.75)]);

        let c = IncidentSeverity::Critical;
        let all = [
            incident("1", "A", "n", c, HOUR, Some(10 * MIN), Some(HOUR)),
            incident("2", "A", "n", c, 2 * HOUR, Some(20 * MIN), None),
            incident("3", "A", "n", c, DAY + HOUR, None, None),
        ];
        let all: Vec<&IncidentFact> = all.iter().collect();
        assert_eq!(
            daily_waits(&all, &[day0, day1], Measure::Acknowledge),
            vec![(0, 15.0 * MIN as f64)]
        );
        assert_eq!(
            daily_waits(&all, &[day0, day1], Measure::Resolve),
            vec![(0, HOUR as f64)]
        );
    }
}

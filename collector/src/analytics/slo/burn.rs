//! Multi-window, multi-burn-rate alerting (Google SRE workbook, chapter 5): an alert fires when
//! the budget burns at least `factor` times too fast over both a long window (enough budget
//! spent to matter) and a short one (still burning now, so it resets quickly after a fix).
//!
//! The workbook's rules are for a 30-day period; for other periods the windows scale with the
//! period, so each rule still means the same share of the budget spent (14.4× over 1/720 of
//! the period is 2 % of the budget).

use super::tally::{Tally, burn_rate};
use serde::{Deserialize, Serialize};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const REFERENCE_PERIOD_MS: i64 = 30 * 24 * HOUR_MS;

/// How a firing rule is raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BurnSeverity {
    Page,
    Ticket,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BurnRule {
    pub long_ms: i64,
    pub short_ms: i64,
    pub factor: f64,
    pub severity: BurnSeverity,
}

impl BurnRule {
    /// The long window as people write it ("1h", "6h", "3d", "14m"), for alert labels.
    pub fn window_label(&self) -> String {
        let ms = self.long_ms;
        match ms {
            _ if ms % (24 * HOUR_MS) == 0 => format!("{}d", ms / (24 * HOUR_MS)),
            _ if ms % HOUR_MS == 0 => format!("{}h", ms / HOUR_MS),
            _ if ms % MINUTE_MS == 0 => format!("{}m", ms / MINUTE_MS),
            _ => format!("{}s", ms / 1000),
        }
    }
}

/// The workbook's three rules, windows scaled by `period_ms / 30 d` and never below a minute
/// (the finest resolution the store rolls samples up to).
pub fn burn_rules(period_ms: i64) -> Vec<BurnRule> {
    let scale = |ms: i64| -> i64 {
        let scaled = (ms as f64 * period_ms as f64 / REFERENCE_PERIOD_MS as f64).round() as i64;
        scaled.max(MINUTE_MS)
    };
    [
        (HOUR_MS, 5 * MINUTE_MS, 14.4, BurnSeverity::Page),
        (6 * HOUR_MS, 30 * MINUTE_MS, 6.0, BurnSeverity::Page),
        (72 * HOUR_MS, 6 * HOUR_MS, 1.0, BurnSeverity::Ticket),
    ]
    .into_iter()
    .map(|(long, short, factor, severity)| BurnRule {
        long_ms: scale(long),
        short_ms: scale(short),
        factor,
        severity,
    })
    .collect()
}

/// A rule applied to the tallies of its two windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BurnVerdict {
    pub rule: BurnRule,
    pub long_rate: Option<f64>,
    pub short_rate: Option<f64>,
    pub firing: bool,
}

/// Fires when both windows burn at `factor` or faster and the long window counted at least
/// `min_events` valid (in the tally's unit), so three failed runs out of four do not page.
pub fn judge(
    rule: &BurnRule,
    long: &Tally,
    short: &Tally,
    target: f64,
    min_events: f64,
) -> BurnVerdict {
    let long_rate = burn_rate(long, target);
    let short_rate = burn_rate(short, target);
    // A relative tolerance: 14.4 % bad against 1 % allowed must count as 14.4x, whatever the
    // rounding of 1 - 0.99 does.
    let burning = |rate: Option<f64>| rate.is_some_and(|r| r >= rule.factor * (1.0 - 1e-9));
    let firing = long.valid() >= min_events && burning(long_rate) && burning(short_rate);
    BurnVerdict {
        rule: *rule,
        long_rate,
        short_rate,
        firing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 24 * HOUR_MS;

    fn tally(good: f64, bad: f64) -> Tally {
        Tally {
            good,
            bad,
            ..Tally::default()
        }
    }

    #[test]
    fn slo_burn_rules_for_thirty_days_are_the_workbooks() {
        let rules = burn_rules(30 * DAY_MS);
        let shape: Vec<(i64, i64, f64, BurnSeverity)> = rules
            .iter()
            .map(|r| (r.long_ms, r.short_ms, r.factor, r.severity))
            .collect();
        assert_eq!(
            shape,
            vec![
                (HOUR_MS, 5 * MINUTE_MS, 14.4, BurnSeverity::Page),
                (6 * HOUR_MS, 30 * MINUTE_MS, 6.0, BurnSeverity::Page),
                (3 * DAY_MS, 6 * HOUR_MS, 1.0, BurnSeverity::Ticket),
            ]
        );
        let labels: Vec<String> = rules.iter().map(BurnRule::window_label).collect();
        assert_eq!(labels, vec!["1h", "6h", "3d"]);
    }

    #[test]
    fn slo_burn_rules_scale_with_the_period() {
        // 7 days: 7/30 of each window.
        let week = burn_rules(7 * DAY_MS);
        assert_eq!(
            (week[0].long_ms, week[0].short_ms),
            (14 * MINUTE_MS, 70_000)
        );
        assert_eq!(
            (week[1].long_ms, week[1].short_ms),
            (84 * MINUTE_MS, 7 * MINUTE_MS)
        );
        assert_eq!(
            (week[2].long_ms, week[2].short_ms),
            (16 * HOUR_MS + 48 * MINUTE_MS, 84 * MINUTE_MS)
        );
        // 1 day: 1/30; the 10-second short window is raised to a minute.
        let day = burn_rules(DAY_MS);
        assert_eq!(
            (day[0].long_ms, day[0].short_ms),
            (2 * MINUTE_MS, MINUTE_MS)
        );
        assert_eq!(
            (day[2].long_ms, day[2].short_ms),
            (144 * MINUTE_MS, 12 * MINUTE_MS)
        );
        assert_eq!(day[0].factor, 14.4);
    }

    #[test]
    fn slo_judge_needs_both_windows_and_enough_events() {
        let rule = burn_rules(30 * DAY_MS)[0];
        // Target 0.99: 15 % bad is 15x the allowed 1 %.
        let hot = tally(85.0, 15.0);
        let v = judge(&rule, &hot, &hot, 0.99, 10.0);
        assert!(v.firing);
        assert!((v.long_rate.unwrap() - 15.0).abs() < 1e-9);
        // 14 % bad is 14x: below 14.4.
        let warm = tally(86.0, 14.0);
        assert!(!judge(&rule, &warm, &hot, 0.99, 10.0).firing);
        assert!(!judge(&rule, &hot, &warm, 0.99, 10.0).firing);
        // Exactly 14.4x fires.
        let edge = tally(85.6, 14.4);
        assert!(judge(&rule, &edge, &edge, 0.99, 10.0).firing);
        // The guard: 3 bad of 4 is 75x, but 4 events are fewer than 10.
        let few = tally(1.0, 3.0);
        let v = judge(&rule, &few, &few, 0.99, 10.0);
        assert!(!v.firing);
        assert!((v.long_rate.unwrap() - 75.0).abs() < 1e-9);
        // No data: no rate, no alert.
        let v = judge(&rule, &Tally::default(), &Tally::default(), 0.99, 0.0);
        assert_eq!((v.long_rate, v.firing), (None, false));
    }
}

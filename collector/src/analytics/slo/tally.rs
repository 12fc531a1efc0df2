//! Counting good and bad: tallies of events (or milliseconds of time slices), compliance,
//! coverage, status against a target, and the error budget with its burn rate.

use serde::{Deserialize, Serialize};

/// What one event or stretch of time counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Good,
    Bad,
    /// The collector had no data: neither up nor down, shown as missing coverage.
    Unknown,
    /// Maintenance: out of the denominator.
    Excluded,
}

/// Sums per outcome: events, or milliseconds of time slices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub good: f64,
    pub bad: f64,
    pub unknown: f64,
    pub excluded: f64,
}

impl Tally {
    pub fn add(&mut self, outcome: Outcome, weight: f64) {
        match outcome {
            Outcome::Good => self.good += weight,
            Outcome::Bad => self.bad += weight,
            Outcome::Unknown => self.unknown += weight,
            Outcome::Excluded => self.excluded += weight,
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.good += other.good;
        self.bad += other.bad;
        self.unknown += other.unknown;
        self.excluded += other.excluded;
    }

    /// What compliance is judged on: good and bad, not unknown, not excluded.
    pub fn valid(&self) -> f64 {
        self.good + self.bad
    }

    /// Everything counted, including unknown and excluded.
    pub fn total(&self) -> f64 {
        self.good + self.bad + self.unknown + self.excluded
    }

    /// Good over valid; `None` when nothing valid was counted.
    pub fn compliance(&self) -> Option<f64> {
        let valid = self.valid();
        (valid > 0.0).then(|| self.good / valid)
    }

    /// The share the collector had data for (maintenance counts as known).
    pub fn coverage(&self) -> Option<f64> {
        let total = self.total();
        (total > 0.0).then(|| (self.good + self.bad + self.excluded) / total)
    }
}

/// Where a compliance stands against the target and the warning level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Met,
    Warning,
    Breached,
    NoData,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Warning => "warning",
            Status::Breached => "breached",
            Status::NoData => "no_data",
        }
    }
}

/// `Met` at or above the target, `Warning` at or above the warning level, else `Breached`.
pub fn status(compliance: Option<f64>, target: f64, warning: f64) -> Status {
    match compliance {
        None => Status::NoData,
        Some(c) if c >= target => Status::Met,
        Some(c) if c >= warning => Status::Warning,
        Some(_) => Status::Breached,
    }
}

/// The error budget of a tally: how much bad the target allows, how much was spent and the
/// share left (negative once overspent).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub allowed: f64,
    pub spent: f64,
    pub remaining: f64,
}

pub fn budget(tally: &Tally, target: f64) -> Budget {
    let allowed = (1.0 - target).max(0.0) * tally.valid();
    let spent = tally.bad;
    let remaining = if allowed > 0.0 {
        1.0 - spent / allowed
    } else if spent > 0.0 {
        // Nothing allowed (a target of 1, or nothing valid) yet something bad: all of it gone.
        0.0
    } else {
        1.0
    };
    Budget {
        allowed,
        spent,
        remaining,
    }
}

/// How fast the budget burns: the bad share over the allowed bad share; 1 spends exactly the
/// budget over the period. `None` without valid events or with no budget at all.
pub fn burn_rate(tally: &Tally, target: f64) -> Option<f64> {
    let valid = tally.valid();
    let allowed_share = 1.0 - target;
    (valid > 0.0 && allowed_share > 0.0).then(|| (tally.bad / valid) / allowed_share)
}

/// When the remaining budget runs out at `burn_rate`: `remaining × period / burn_rate`; zero
/// when already spent, `None` when nothing burns.
pub fn time_to_exhaustion_ms(budget: &Budget, burn_rate: f64, period_ms: i64) -> Option<i64> {
    if !burn_rate.is_finite() || burn_rate <= 0.0 {
        return None;
    }
    if budget.remaining <= 0.0 {
        return Some(0);
    }
    let ms = budget.remaining * period_ms as f64 / burn_rate;
    Some(ms.min(i64::MAX as f64).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(good: f64, bad: f64, unknown: f64, excluded: f64) -> Tally {
        Tally {
            good,
            bad,
            unknown,
            excluded,
        }
    }

    #[test]
    fn slo_tally_counts_unknown_and_excluded_apart() {
        let mut t = Tally::default();
        t.add(Outcome::Good, 90.0);
        t.add(Outcome::Bad, 6.0);
        t.add(Outcome::Unknown, 3.0);
        t.add(Outcome::Excluded, 1.0);
        assert_eq!(t, tally(90.0, 6.0, 3.0, 1.0));
        assert_eq!(t.valid(), 96.0);
        assert_eq!(t.compliance(), Some(0.9375)); // 90 / 96: maintenance and unknown left out
        assert_eq!(t.coverage(), Some(0.97)); // 97 of 100 known
        let mut m = t;
        m.merge(&tally(10.0, 0.0, 0.0, 0.0));
        assert_eq!(m.compliance(), Some(100.0 / 106.0));
    }

    #[test]
    fn slo_empty_tallies_have_no_figures() {
        let empty = Tally::default();
        assert_eq!(empty.compliance(), None);
        assert_eq!(empty.coverage(), None);
        assert_eq!(status(empty.compliance(), 0.95, 0.9), Status::NoData);
        assert_eq!(burn_rate(&empty, 0.95), None);
        let b = budget(&empty, 0.95);
        assert_eq!((b.allowed, b.spent, b.remaining), (0.0, 0.0, 1.0));
        // Only maintenance and unknown: coverage but no compliance.
        let dark = tally(0.0, 0.0, 3.0, 1.0);
        assert_eq!(dark.compliance(), None);
        assert_eq!(dark.coverage(), Some(0.25));
    }

    #[test]
    fn slo_status_thresholds() {
        assert_eq!(status(Some(0.95), 0.95, 0.9), Status::Met);
        assert_eq!(status(Some(0.9499), 0.95, 0.9), Status::Warning);
        assert_eq!(status(Some(0.9), 0.95, 0.9), Status::Warning);
        assert_eq!(status(Some(0.8999), 0.95, 0.9), Status::Breached);
    }

    #[test]
    fn slo_budget_and_burn() {
        // 1000 valid, target 0.99: 10 bad allowed; 4 spent leaves 60 %.
        let t = tally(996.0, 4.0, 0.0, 0.0);
        let b = budget(&t, 0.99);
        assert!((b.allowed - 10.0).abs() < 1e-9);
        assert_eq!(b.spent, 4.0);
        assert!((b.remaining - 0.6).abs() < 1e-9);
        let rate = burn_rate(&t, 0.99).unwrap();
        assert!((rate - 0.4).abs() < 1e-9); // 0.4 % bad against 1 % allowed
        // 0.6 of a 30-day budget at 0.4x lasts 0.6 * 30 d / 0.4 = 45 d.
        let day = 86_400_000;
        assert_eq!(time_to_exhaustion_ms(&b, rate, 30 * day), Some(45 * day));
        // Overspent: negative remaining, exhausted now.
        let over = budget(&tally(980.0, 20.0, 0.0, 0.0), 0.99);
        assert!((over.remaining + 1.0).abs() < 1e-9);
        assert_eq!(time_to_exhaustion_ms(&over, 2.0, 30 * day), Some(0));
        assert_eq!(time_to_exhaustion_ms(&b, 0.0, 30 * day), None);
    }
}

//! The life of one alert, as a pure state machine: inactive → pending → firing →
//! acknowledged → resolved, with a pending duration (`for`), a recovery threshold (hysteresis)
//! and flap detection. Time comes in with each event, so tests drive hours in microseconds and
//! the collector can persist the state and resume it after a restart.
//!
//! # Rules
//! - A breaching evaluation starts `Pending`; it becomes `Firing` once the condition has held
//!   for `for_ms` (at once when `for_ms` is 0). A clear evaluation while pending returns to
//!   `Inactive` without anyone being told.
//! - A firing (or acknowledged) alert resolves only when the value is back past the *recovery*
//!   threshold, not merely under the firing one, so a value hovering at the threshold does not
//!   fire and resolve on every evaluation.
//! - Acknowledging is only possible while firing; it stops escalation, not the alert.
//! - An alert that changed between firing and resolved more than `flap_max_changes` times
//!   within `flap_window_ms` is *flapping*: it is reported once as flapping and its further
//!   changes are not notified until it has been stable for a whole window.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;

/// Where an alert is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertState {
    Inactive,
    Pending { since_ms: i64 },
    Firing { since_ms: i64 },
    Acknowledged { since_ms: i64, by: String },
    Resolved { at_ms: i64 },
}

/// An [`AlertState`] without its times: what notifications show and metrics count by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateKind {
    Inactive,
    Pending,
    Firing,
    Acknowledged,
    Resolved,
}

impl StateKind {
    pub const ALL: [StateKind; 5] = [
        StateKind::Inactive,
        StateKind::Pending,
        StateKind::Firing,
        StateKind::Acknowledged,
        StateKind::Resolved,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StateKind::Inactive => "inactive",
            StateKind::Pending => "pending",
            StateKind::Firing => "firing",
            StateKind::Acknowledged => "acknowledged",
            StateKind::Resolved => "resolved",
        }
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl AlertState {
    pub fn kind(&self) -> StateKind {
        match self {
            AlertState::Inactive => StateKind::Inactive,
            AlertState::Pending { .. } => StateKind::Pending,
            AlertState::Firing { .. } => StateKind::Firing,
            AlertState::Acknowledged { .. } => StateKind::Acknowledged,
            AlertState::Resolved { .. } => StateKind::Resolved,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Firing or acknowledged: a problem people know about.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            AlertState::Firing { .. } | AlertState::Acknowledged { .. }
        )
    }
}

/// Which way a threshold is crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Fires when the value rises to the threshold (CPU, latency).
    Above,
    /// Fires when the value falls to the threshold (hit ratio, free space).
    Below,
}

/// A threshold with its recovery point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub direction: Direction,
    /// Fires at or past this.
    pub fire: f64,
    /// Resolves only at or back past this (for `Above`, at or below it).
    pub recover: f64,
}

impl Threshold {
    fn breached(&self, value: f64) -> bool {
        match self.direction {
            Direction::Above => value >= self.fire,
            Direction::Below => value <= self.fire,
        }
    }

    fn recovered(&self, value: f64) -> bool {
        match self.direction {
            Direction::Above => value <= self.recover,
            Direction::Below => value >= self.recover,
        }
    }
}

/// What a transition means for the people who should hear about it.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The alert started firing: notify (and start escalation).
    Fired,
    /// The alert resolved: tell everyone who was notified.
    Resolved,
    /// The alert started flapping: one notice instead of a storm.
    Flapping,
    /// The alert is stable again after flapping.
    StoppedFlapping,
}

/// An acknowledgement that cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AckError {
    #[error("the alert is {0}; only a firing alert can be acknowledged")]
    NotFiring(StateKind),
}

/// One alert's state and the history flap detection needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Lifecycle {
    pub state: AlertState,
    /// Times of recent firing/resolved changes, oldest first.
    pub(super) changes: VecDeque<i64>,
    pub flapping: bool,
}

/// How an alert's lifecycle is tuned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifecycleRules {
    pub threshold: Threshold,
    pub for_ms: i64,
    pub flap_window_ms: i64,
    pub flap_max_changes: usize,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            state: AlertState::Inactive,
            changes: VecDeque::new(),
            flapping: false,
        }
    }
}

impl Lifecycle {
    /// Feeds one evaluation; returns what, if anything, people should be told.
    pub fn evaluate(&mut self, rules: &LifecycleRules, now_ms: i64, value: f64) -> Option<Notice> {
        let breached = rules.threshold.breached(value);
        let change = match (&self.state, breached) {
            (AlertState::Inactive | AlertState::Resolved { .. }, true) => {
                if rules.for_ms <= 0 {
                    self.state = AlertState::Firing { since_ms: now_ms };
                    Some(Notice::Fired)
                } else {
                    self.state = AlertState::Pending { since_ms: now_ms };
                    None
                }
            }
            (AlertState::Pending { since_ms }, true) => {
                if now_ms - since_ms >= rules.for_ms {
                    self.state = AlertState::Firing { since_ms: now_ms };
                    Some(Notice::Fired)
                } else {
                    None
                }
            }
            (AlertState::Pending { .. }, false) => {
                self.state = AlertState::Inactive;
                None
            }
            (AlertState::Firing { .. } | AlertState::Acknowledged { .. }, _)
                if rules.threshold.recovered(value) =>
            {
                self.state = AlertState::Resolved { at_ms: now_ms };
                Some(Notice::Resolved)
            }
            _ => None,
        };
        match change {
            Some(notice @ (Notice::Fired | Notice::Resolved)) => {
                self.flap_filter(rules, now_ms, notice)
            }
            other => {
                self.settle(rules, now_ms);
                other
            }
        }
    }

    /// Counts a firing/resolved change; while flapping, changes are not notified.
    fn flap_filter(
        &mut self,
        rules: &LifecycleRules,
        now_ms: i64,
        notice: Notice,
    ) -> Option<Notice> {
        self.changes.push_back(now_ms);
        while self
            .changes
            .front()
            .is_some_and(|t| now_ms - t > rules.flap_window_ms)
        {
            self.changes.pop_front();
        }
        if self.flapping {
            return None;
        }
        if self.changes.len() > rules.flap_max_changes {
            self.flapping = true;
            return Some(Notice::Flapping);
        }
        Some(notice)
    }

    /// Ends flapping once no change happened for a whole window.
    fn settle(&mut self, rules: &LifecycleRules, now_ms: i64) {
        if self.flapping
            && self
                .changes
                .back()
                .is_none_or(|t| now_ms - t > rules.flap_window_ms)
        {
            self.flapping = false;
            self.changes.clear();
        }
    }

    /// Ends flapping if the alert has been stable for a window; the notice says so once.
    pub fn check_flapping(&mut self, rules: &LifecycleRules, now_ms: i64) -> Option<Notice> {
        let was = self.flapping;
        self.settle(rules, now_ms);
        (was && !self.flapping).then_some(Notice::StoppedFlapping)
    }

    /// Acknowledges a firing alert.
    pub fn acknowledge(&mut self, now_ms: i64, by: &str) -> Result<(), AckError> {
        match self.state {
            AlertState::Firing { .. } => {
                self.state = AlertState::Acknowledged {
                    since_ms: now_ms,
                    by: by.to_owned(),
                };
                Ok(())
            }
            ref other => Err(AckError::NotFiring(other.kind())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn cpu_rules(for_ms: i64) -> LifecycleRules {
        LifecycleRules {
            threshold: Threshold {
                direction: Direction::Above,
                fire: 0.85,
                recover: 0.80,
            },
            for_ms,
            flap_window_ms: 30 * MIN,
            flap_max_changes: 6,
        }
    }

    #[test]
    fn pending_then_firing_after_for_and_back_to_inactive_if_it_clears() {
        let rules = cpu_rules(5 * MIN);
        let mut a = Lifecycle::default();
        assert_eq!(a.evaluate(&rules, 0, 0.9), None);
        assert_eq!(a.state, AlertState::Pending { since_ms: 0 });
        assert_eq!(
            a.evaluate(&rules, 2 * MIN, 0.5),
            None,
            "cleared while pending"
        );
        assert_eq!(a.state, AlertState::Inactive);
        a.evaluate(&rules, 3 * MIN, 0.9);
        assert_eq!(a.evaluate(&rules, 7 * MIN, 0.9), None, "4 min < for");
        assert_eq!(a.evaluate(&rules, 8 * MIN, 0.9), Some(Notice::Fired));
        assert_eq!(a.state, AlertState::Firing { since_ms: 8 * MIN });
    }

    #[test]
    fn hysteresis_keeps_a_hovering_value_from_resolving() {
        let rules = cpu_rules(0);
        let mut a = Lifecycle::default();
        assert_eq!(a.evaluate(&rules, 0, 0.86), Some(Notice::Fired));
        for (i, v) in [0.84, 0.83, 0.86, 0.81, 0.84].into_iter().enumerate() {
            assert_eq!(a.evaluate(&rules, (i as i64 + 1) * MIN, v), None, "{v}");
            assert!(a.state.is_active());
        }
        assert_eq!(a.evaluate(&rules, 10 * MIN, 0.80), Some(Notice::Resolved));
        assert_eq!(a.state, AlertState::Resolved { at_ms: 10 * MIN });
    }

    #[test]
    fn below_thresholds_fire_low_and_recover_high() {
        let rules = LifecycleRules {
            threshold: Threshold {
                direction: Direction::Below,
                fire: 0.7,
                recover: 0.75,
            },
            ..cpu_rules(0)
        };
        let mut a = Lifecycle::default();
        assert_eq!(a.evaluate(&rules, 0, 0.72), None);
        assert_eq!(a.evaluate(&rules, MIN, 0.69), Some(Notice::Fired));
        assert_eq!(a.evaluate(&rules, 2 * MIN, 0.73), None);
        assert_eq!(a.evaluate(&rules, 3 * MIN, 0.76), Some(Notice::Resolved));
    }

    #[test]
    fn acknowledging_only_a_firing_alert_and_resolution_still_follows() {
        let rules = cpu_rules(0);
        let mut a = Lifecycle::default();
        assert_eq!(
            a.acknowledge(0, "ops"),
            Err(AckError::NotFiring(StateKind::Inactive))
        );
        a.evaluate(&rules, 0, 0.95);
        a.acknowledge(MIN, "ops").unwrap();
        assert_eq!(
            a.state,
            AlertState::Acknowledged {
                since_ms: MIN,
                by: "ops".into()
            }
        );
        assert!(
            a.acknowledge(2 * MIN, "ops").is_err(),
            "already acknowledged"
        );
        assert_eq!(a.evaluate(&rules, 3 * MIN, 0.5), Some(Notice::Resolved));
    }

    #[test]
    fn a_flapping_alert_is_one_notice_not_a_storm_and_settles() {
        let rules = cpu_rules(0);
        let mut a = Lifecycle::default();
        let mut notices = Vec::new();
        for i in 0..20 {
            let v = if i % 2 == 0 { 0.9 } else { 0.5 };
            notices.extend(a.evaluate(&rules, i * MIN, v));
        }
        let flapping = notices.iter().filter(|n| **n == Notice::Flapping).count();
        assert_eq!(flapping, 1, "{notices:?}");
        assert_eq!(
            notices.len(),
            7,
            "6 changes, then one flapping notice: {notices:?}"
        );
        assert!(a.flapping);
        // Stable for a whole window: flapping ends, once.
        assert_eq!(a.check_flapping(&rules, 25 * MIN), None);
        assert_eq!(
            a.check_flapping(&rules, 60 * MIN),
            Some(Notice::StoppedFlapping)
        );
        assert_eq!(a.check_flapping(&rules, 61 * MIN), None);
        assert!(!a.flapping);
    }

    /// Model-based: random evaluations against a simple model of what must hold.
    #[test]
    fn invariants_hold_on_random_evaluations() {
        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..200 {
            let rules = cpu_rules(i64::from(rng.u8(0..4)) * MIN);
            let mut a = Lifecycle::default();
            let mut t = 0;
            let mut fired_without_resolve = false;
            for _ in 0..300 {
                t += i64::from(rng.u8(1..120)) * 1000;
                let v = rng.f64();
                if rng.u8(0..20) == 0 {
                    let was_firing = matches!(a.state, AlertState::Firing { .. });
                    assert_eq!(a.acknowledge(t, "x").is_ok(), was_firing);
                }
                let before = a.state.clone();
                let notice = a.evaluate(&rules, t, v);
                // Never fires from a value under the threshold, never resolves above recovery.
                if matches!(a.state, AlertState::Firing { .. }) && !before.is_active() {
                    assert!(v >= 0.85);
                }
                if matches!(a.state, AlertState::Resolved { .. }) && before.is_active() {
                    assert!(v <= 0.80);
                }
                // Fired and Resolved notices alternate (flapping may swallow some).
                match notice {
                    Some(Notice::Fired) => {
                        assert!(!fired_without_resolve);
                        fired_without_resolve = true;
                    }
                    Some(Notice::Resolved) => {
                        assert!(fired_without_resolve);
                        fired_without_resolve = false;
                    }
                    _ => {}
                }
                if a.flapping {
                    fired_without_resolve = a.state.is_active();
                }
            }
        }
    }
}

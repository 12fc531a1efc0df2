//! Escalation through tiered recipients, as pure functions of time: which tiers are due for an
//! alert that fired at a given moment, given which were already notified. The collector stores
//! the notified set with the alert, so after a restart no tier is skipped or notified twice.
//!
//! An alert follows the policy as it was when it fired ([`EscalationPolicy`] is copied into the
//! alert), so editing the policy later does not change who is called for a running incident.

use serde::Deserialize;
use std::time::Duration;

/// One step of an escalation: after `after` without an acknowledgement, notify `recipients`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Time since the alert fired.
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    /// Who is notified at this tier (names the notifier config resolves to addresses).
    pub recipients: Vec<String>,
}

/// An escalation policy that cannot be followed; the message names the tier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "tiers[{tier}].after ({after:?}) is earlier than tiers[{}].after ({before:?}); list tiers in order",
        tier - 1
    )]
    OutOfOrder {
        tier: usize,
        after: Duration,
        before: Duration,
    },
    #[error("tiers[{0}].recipients is empty")]
    NoRecipients(usize),
}

/// Ordered tiers; each fires once, in order, until the alert is acknowledged or resolved.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    pub tiers: Vec<Tier>,
}

impl Default for EscalationPolicy {
    /// On-call after 15 min, the manager after 30, the director after 60.
    fn default() -> Self {
        let tier = |minutes: u64, who: &str| Tier {
            after: Duration::from_secs(minutes * 60),
            recipients: vec![who.to_owned()],
        };
        Self {
            tiers: vec![
                tier(15, "on-call"),
                tier(30, "manager"),
                tier(60, "director"),
            ],
        }
    }
}

impl EscalationPolicy {
    /// Checks the tiers are in order of their delays.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (i, pair) in self.tiers.windows(2).enumerate() {
            if pair[1].after < pair[0].after {
                return Err(PolicyError::OutOfOrder {
                    tier: i + 1,
                    after: pair[1].after,
                    before: pair[0].after,
                });
            }
        }
        if let Some(i) = self.tiers.iter().position(|t| t.recipients.is_empty()) {
            return Err(PolicyError::NoRecipients(i));
        }
        Ok(())
    }

    /// Tiers due at `now_ms` for an alert that fired at `fired_ms` and has had its first
    /// `notified` tiers notified: none once acknowledged or resolved. A collector that was down
    /// past several delays catches up with every tier it missed, in order, once each.
    pub fn due(&self, fired_ms: i64, now_ms: i64, notified: usize, stopped: bool) -> Vec<usize> {
        if stopped {
            return Vec::new();
        }
        let elapsed = now_ms.saturating_sub(fired_ms);
        (notified..self.tiers.len())
            .take_while(|&i| elapsed >= self.tiers[i].after.as_millis() as i64)
            .collect()
    }

    /// When the next tier is due, for timers; `None` when all were notified or it stopped.
    pub fn next_due_ms(&self, fired_ms: i64, notified: usize, stopped: bool) -> Option<i64> {
        if stopped {
            return None;
        }
        self.tiers
            .get(notified)
            .map(|t| fired_ms + t.after.as_millis() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn tiers_come_due_in_order_and_acknowledging_stops_them() {
        let p = EscalationPolicy::default();
        p.validate().unwrap();
        assert!(p.due(0, 14 * MIN, 0, false).is_empty());
        assert_eq!(p.due(0, 15 * MIN, 0, false), vec![0]);
        assert!(p.due(0, 29 * MIN, 1, false).is_empty());
        assert_eq!(p.due(0, 30 * MIN, 1, false), vec![1]);
        assert_eq!(p.next_due_ms(0, 2, false), Some(60 * MIN));
        assert!(p.due(0, 90 * MIN, 2, true).is_empty(), "acknowledged");
        assert_eq!(p.next_due_ms(0, 2, true), None);
        assert_eq!(p.due(0, 90 * MIN, 2, false), vec![2]);
        assert!(p.due(0, 200 * MIN, 3, false).is_empty(), "all notified");
    }

    #[test]
    fn a_restart_catches_up_without_skipping_or_repeating() {
        let p = EscalationPolicy::default();
        // Down from minute 10 to minute 65: on-call, manager and director are all due, once.
        assert_eq!(p.due(0, 65 * MIN, 0, false), vec![0, 1, 2]);
        assert_eq!(p.due(0, 66 * MIN, 3, false), Vec::<usize>::new());
    }

    #[test]
    fn model_every_tier_exactly_once_in_order() {
        let mut rng = fastrand::Rng::with_seed(9);
        let p = EscalationPolicy::default();
        for _ in 0..500 {
            let (mut now, mut notified, mut sent) = (0i64, 0usize, Vec::new());
            let ack_at = rng.i64(0..120) * MIN;
            // The last evaluation before the acknowledgement decides what was sent.
            let mut last_before_ack = 0;
            while now < 120 * MIN {
                now += rng.i64(1..20) * MIN;
                let acked = now >= ack_at;
                if !acked {
                    last_before_ack = now;
                }
                let due = p.due(0, now, notified, acked);
                notified += due.len();
                sent.extend(due);
            }
            let expected: Vec<usize> = (0..3)
                .filter(|&i| p.tiers[i].after.as_millis() as i64 <= last_before_ack)
                .collect();
            assert_eq!(
                sent, expected,
                "every due tier once, in order, none after the ack"
            );
        }
    }

    #[test]
    fn policies_parse_from_toml_and_bad_order_is_named() {
        let p: EscalationPolicy = toml::from_str(
            "[[tiers]]\nafter = \"5m\"\nrecipients = [\"alice\"]\n[[tiers]]\nafter = \"1m\"\nrecipients = [\"bob\"]\n",
        )
        .unwrap();
        let error = p.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "tiers[1].after (60s) is earlier than tiers[0].after (300s); list tiers in order"
        );
        let err =
            toml::from_str::<EscalationPolicy>("[[tiers]]\nafter = \"soon\"\nrecipients = []\n")
                .unwrap_err();
        assert!(err.to_string().contains("after"), "{err}");
    }
}

//! What each collector of the pair delivered, so the other does not deliver it again: pure.
//!
//! A notification is matched alert by alert rather than whole: the two collectors judge the same
//! samples, but their groups may form a moment apart and differ. Each alert of a notification
//! gives a [`DeliveryKey`] (channel, kind, alert, state, made by the caller); a notification is
//! covered when the peer delivered every one of its keys within the matching window of its own
//! time. A peer delivery covers one notification at most, so an alert that fires again soon
//! after is not taken for the first firing.

use std::collections::{HashMap, VecDeque};

/// One alert's part in one notification, as a hash of what identifies it on both collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryKey(pub u64);

impl DeliveryKey {
    /// The key of these parts, in order (FNV-1a, 64 bits; a separator after each part).
    pub fn of(parts: &[&str]) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for b in part.bytes().chain([0xff]) {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        Self(hash)
    }
}

/// One delivered key and when its notification was made (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub key: DeliveryKey,
    pub at_ms: i64,
}

/// This collector's own deliveries, numbered for the peer's cursor; bounded in count and age.
#[derive(Debug)]
pub struct DeliveryLog {
    entries: VecDeque<(u64, Delivery)>,
    next: u64,
    max_entries: usize,
}

impl DeliveryLog {
    pub fn new(max_entries: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            next: 1,
            max_entries,
        }
    }

    pub fn push(&mut self, deliveries: impl IntoIterator<Item = Delivery>) {
        for delivery in deliveries {
            self.entries.push_back((self.next, delivery));
            self.next += 1;
        }
        while self.entries.len() > self.max_entries {
            self.entries.pop_front();
        }
    }

    /// The number the next entry gets: a cursor that has seen everything.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Up to `limit` entries numbered from `from` on, and the cursor after them.
    pub fn from(&self, from: u64, limit: usize) -> (Vec<Delivery>, u64) {
        let start = self.entries.partition_point(|(seq, _)| *seq < from);
        let taken: Vec<_> = self.entries.range(start..).take(limit).collect();
        let next = taken
            .last()
            .map_or(from.clamp(self.first(), self.next), |(seq, _)| seq + 1);
        (taken.into_iter().map(|(_, d)| *d).collect(), next)
    }

    fn first(&self) -> u64 {
        self.entries.front().map_or(self.next, |(seq, _)| *seq)
    }
}

/// What the peer delivered, by key; entries older than `keep_ms` are forgotten.
#[derive(Debug, Default)]
pub struct PeerDeliveries {
    by_key: HashMap<DeliveryKey, Vec<i64>>,
    /// When each delivery was learnt, oldest first: (learnt at, key, made at).
    arrived: VecDeque<(i64, DeliveryKey, i64)>,
}

impl PeerDeliveries {
    pub fn learn(&mut self, deliveries: &[Delivery], now_ms: i64, keep_ms: i64) {
        for d in deliveries {
            self.by_key.entry(d.key).or_default().push(d.at_ms);
            self.arrived.push_back((now_ms, d.key, d.at_ms));
        }
        while let Some(&(learnt, key, at_ms)) = self.arrived.front() {
            if now_ms - learnt <= keep_ms {
                break;
            }
            self.arrived.pop_front();
            if let Some(times) = self.by_key.get_mut(&key) {
                // Unless a notification used it up already.
                if let Some(i) = times.iter().position(|t| *t == at_ms) {
                    times.remove(i);
                }
                if times.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
    }

    /// Whether the peer delivered every key within `window_ms` of `at_ms`; if so, the matched
    /// deliveries are used up.
    pub fn take_covering(&mut self, keys: &[DeliveryKey], at_ms: i64, window_ms: i64) -> bool {
        let closest = |times: &Vec<i64>| {
            times
                .iter()
                .enumerate()
                .filter(|(_, t)| (**t - at_ms).abs() <= window_ms)
                .min_by_key(|(_, t)| (**t - at_ms).abs())
                .map(|(i, _)| i)
        };
        let covered = keys
            .iter()
            .all(|key| self.by_key.get(key).and_then(closest).is_some());
        if !covered {
            return false;
        }
        for key in keys {
            if let Some(times) = self.by_key.get_mut(key)
                && let Some(i) = closest(times)
            {
                times.remove(i);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(key: u64, at_ms: i64) -> Delivery {
        Delivery {
            key: DeliveryKey(key),
            at_ms,
        }
    }

    #[test]
    fn the_log_is_read_from_a_cursor_and_stays_bounded() {
        let mut log = DeliveryLog::new(3);
        assert_eq!(log.from(1, 10), (vec![], 1));
        log.push([d(1, 10), d(2, 20)]);
        assert_eq!(log.from(1, 10), (vec![d(1, 10), d(2, 20)], 3));
        assert_eq!(log.from(2, 1), (vec![d(2, 20)], 3));
        assert_eq!(log.from(3, 10), (vec![], 3));
        log.push([d(3, 30), d(4, 40)]);
        // Entry 1 is gone: a reader behind skips to what is left.
        assert_eq!(log.from(1, 10).0, vec![d(2, 20), d(3, 30), d(4, 40)]);
        assert_eq!(log.next(), 5);
    }

    #[test]
    fn a_notification_is_covered_only_when_every_alert_in_it_was_delivered_near_its_time() {
        let mut peer = PeerDeliveries::default();
        peer.learn(&[d(1, 1_000), d(2, 1_200)], 0, 60_000);
        let keys = [DeliveryKey(1), DeliveryKey(2), DeliveryKey(3)];
        assert!(
            !peer.take_covering(&keys, 1_100, 5_000),
            "alert 3 was not delivered"
        );
        assert!(
            !peer.take_covering(&keys[..2], 100_000, 5_000),
            "too far in time"
        );
        assert!(peer.take_covering(&keys[..2], 1_100, 5_000));
        assert!(
            !peer.take_covering(&keys[..1], 1_100, 5_000),
            "one delivery covers one notification"
        );
    }

    #[test]
    fn the_closest_delivery_is_used_and_old_ones_are_forgotten() {
        let mut peer = PeerDeliveries::default();
        peer.learn(&[d(7, 1_000), d(7, 9_000)], 0, 60_000);
        assert!(peer.take_covering(&[DeliveryKey(7)], 8_000, 10_000));
        assert!(peer.take_covering(&[DeliveryKey(7)], 2_000, 10_000));
        assert!(!peer.take_covering(&[DeliveryKey(7)], 2_000, 10_000));
        peer.learn(&[d(8, 1_000)], 0, 60_000);
        peer.learn(&[], 70_000, 60_000);
        assert!(!peer.take_covering(&[DeliveryKey(8)], 1_000, 10_000));
    }

    #[test]
    fn keys_differ_by_every_part() {
        let key = DeliveryKey::of(&["mail", "firing", "a1", "firing"]);
        assert_eq!(key, DeliveryKey::of(&["mail", "firing", "a1", "firing"]));
        assert_ne!(key, DeliveryKey::of(&["mail", "firing", "a1", "resolved"]));
        assert_ne!(key, DeliveryKey::of(&["mailfiring", "", "a1", "firing"]));
    }
}

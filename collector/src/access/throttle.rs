//! Failed authentications, rate-limited per client address: past [`MAX_FAILURES`] in a
//! [`WINDOW`], an address is refused without its token even being looked at until the window
//! ends, so tokens cannot be guessed at speed and the audit log (which records every failure)
//! cannot be flooded from one address. At most [`MAX_ADDRESSES`] addresses are tracked; past
//! that the one tracked longest is dropped, so memory stays bounded under a spray of addresses.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures an address may have in one window.
pub const MAX_FAILURES: u32 = 10;

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Most addresses tracked at once.
const MAX_ADDRESSES: usize = 10_000;

struct Failures {
    since: Instant,
    count: u32,
}

#[derive(Default)]
struct Tracked {
    by_address: HashMap<IpAddr, Failures>,
    /// Addresses in the order they were first tracked, oldest first.
    order: VecDeque<IpAddr>,
}

/// The per-address failure counts (see the module header).
pub struct FailureThrottle {
    tracked: Mutex<Tracked>,
    capacity: usize,
}

impl Default for FailureThrottle {
    fn default() -> Self {
        Self::with_capacity(MAX_ADDRESSES)
    }
}

impl FailureThrottle {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            tracked: Mutex::new(Tracked::default()),
            capacity,
        }
    }

    /// How long `address` must wait before it may try again, when it is blocked at `now`.
    pub fn blocked(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let tracked = self.tracked.lock().expect("throttle lock");
        let failures = tracked.by_address.get(&address)?;
        let ends = failures.since + WINDOW;
        (failures.count >= MAX_FAILURES && now < ends).then(|| ends - now)
    }

    /// Counts a failed authentication from `address` at `now`.
    pub fn failed(&self, address: IpAddr, now: Instant) {
        let mut tracked = self.tracked.lock().expect("throttle lock");
        if let Some(failures) = tracked.by_address.get_mut(&address) {
            if now >= failures.since + WINDOW {
                *failures = Failures {
                    since: now,
                    count: 0,
                };
            }
            failures.count += 1;
            return;
        }
        while tracked.by_address.len() >= self.capacity {
            let Some(oldest) = tracked.order.pop_front() else {
                break;
            };
            tracked.by_address.remove(&oldest);
        }
        tracked.order.push_back(address);
        let failures = Failures {
            since: now,
            count: 1,
        };
        tracked.by_address.insert(address, failures);
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.tracked.lock().unwrap().by_address.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn an_address_is_blocked_after_its_failures_until_the_window_ends() {
        let throttle = FailureThrottle::default();
        let start = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(throttle.blocked(ip(1), start), None, "failure {i}");
            throttle.failed(ip(1), start + Duration::from_secs(i.into()));
        }
        let later = start + Duration::from_secs(20);
        assert_eq!(
            throttle.blocked(ip(1), later),
            Some(Duration::from_secs(40))
        );
        assert_eq!(throttle.blocked(ip(2), later), None, "others are not");
        let after = start + WINDOW;
        assert_eq!(throttle.blocked(ip(1), after), None);
        throttle.failed(ip(1), after);
        assert_eq!(throttle.blocked(ip(1), after), None, "a new window");
    }

    #[test]
    fn memory_stays_bounded_dropping_the_oldest_address() {
        let throttle = FailureThrottle::with_capacity(3);
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            throttle.failed(ip(1), now);
        }
        assert!(throttle.blocked(ip(1), now).is_some());
        for n in 2..=4 {
            throttle.failed(ip(n), now);
        }
        assert_eq!(throttle.tracked(), 3);
        assert_eq!(throttle.blocked(ip(1), now), None, "dropped");
    }
}

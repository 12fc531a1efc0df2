//! Stopping a long computation early.
//!
//! The engines are pure: they never read the clock and know nothing of requests. Yet some of
//! their work grows faster than its input (period detection is quadratic, an all-pairs
//! correlation scan is quadratic in the series), so the caller must be able to stop them. A
//! [`Budget`] carries the caller's own test of whether to go on (a deadline passed, the client
//! went away); the engines ask it between units of work of bounded size (one lag of an
//! autocorrelation, one pass of a grid search, one pair of series) and, told to stop, return
//! [`Interrupted`] rather than a partial answer that would look complete.

/// The caller's test of whether a computation should go on, asked between units of work.
#[derive(Clone, Copy)]
pub struct Budget<'a> {
    should_stop: &'a dyn Fn() -> bool,
}

/// A computation stopped because its [`Budget`] said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped before it finished, as its caller asked")]
pub struct Interrupted;

fn never() -> bool {
    false
}

impl<'a> Budget<'a> {
    /// A budget that never stops anything: for callers whose input is already small.
    pub const UNLIMITED: Budget<'static> = Budget {
        should_stop: &never,
    };

    /// A budget that stops the computation once `should_stop` returns true. It is called often
    /// (every few microseconds of work), so it must be cheap: an atomic load, a clock read.
    pub fn new(should_stop: &'a dyn Fn() -> bool) -> Self {
        Self { should_stop }
    }

    /// Err when the computation should stop now.
    pub fn check(&self) -> Result<(), Interrupted> {
        if (self.should_stop)() {
            Err(Interrupted)
        } else {
            Ok(())
        }
    }
}

impl std::fmt::Debug for Budget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn unlimited_never_stops_and_a_closure_decides_otherwise() {
        assert_eq!(Budget::UNLIMITED.check(), Ok(()));
        let calls = Cell::new(0);
        let after_two = || {
            calls.set(calls.get() + 1);
            calls.get() > 2
        };
        let budget = Budget::new(&after_two);
        assert_eq!(budget.check(), Ok(()));
        assert_eq!(budget.check(), Ok(()));
        assert_eq!(budget.check(), Err(Interrupted));
    }
}

//! Who of the pair delivers notifications: pure, driven by what was heard from the peer and
//! when, so the rules are tested without a network.
//!
//! # Rules
//! - Leadership is sticky: a leader stays one while it is alive, so a collector coming back does
//!   not take over a working leader (and the hand-over happens only when one is needed).
//! - A follower takes the lead when the peer has been silent for the lease. At start nothing was
//!   heard yet, so a lone collector waits one lease before delivering.
//! - When both are followers (both just started), the member whose name sorts first claims it.
//! - When both are leaders (after a partition healed), the one whose name sorts first keeps it.
//!   During a partition both lead, and a page may be sent twice: two collectors cannot tell a
//!   dead peer from an unreachable one without a third party.

/// What a change of leadership was, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The peer is silent past the lease.
    TookOver,
    /// Both followed; this one's name sorts first.
    Claimed,
    /// Both led; the peer's name sorts first.
    SteppedDown,
}

#[derive(Debug)]
pub struct Leadership {
    me: String,
    lease_ms: i64,
    leader: bool,
    /// When the peer last answered (or when this collector started, before it ever did).
    heard_ms: i64,
    peer_up: bool,
}

impl Leadership {
    pub fn new(me: &str, lease_ms: i64, now_ms: i64) -> Self {
        Self {
            me: me.to_owned(),
            lease_ms,
            leader: false,
            heard_ms: now_ms,
            peer_up: false,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader
    }

    /// Whether the peer answered within the lease.
    pub fn peer_up(&self) -> bool {
        self.peer_up
    }

    /// The peer `peer` answered, saying whether it leads.
    pub fn heard(&mut self, now_ms: i64, peer: &str, peer_leads: bool) -> Option<Change> {
        self.heard_ms = now_ms;
        self.peer_up = true;
        let first = self.me.as_str() < peer;
        match (self.leader, peer_leads) {
            (true, true) if !first => {
                self.leader = false;
                Some(Change::SteppedDown)
            }
            (false, false) if first => {
                self.leader = true;
                Some(Change::Claimed)
            }
            _ => None,
        }
    }

    /// Asking the peer failed.
    pub fn unheard(&mut self, now_ms: i64) -> Option<Change> {
        let silent = now_ms - self.heard_ms >= self.lease_ms;
        if silent {
            self.peer_up = false;
        }
        if silent && !self.leader {
            self.leader = true;
            return Some(Change::TookOver);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_name_claims_the_lead_and_keeps_it() {
        let (mut a, mut b) = (
            Leadership::new("a", 15_000, 0),
            Leadership::new("b", 15_000, 0),
        );
        assert_eq!(b.heard(100, "a", false), None, "b waits for a");
        assert_eq!(a.heard(200, "b", false), Some(Change::Claimed));
        assert_eq!(b.heard(300, "a", true), None);
        assert!(a.is_leader() && !b.is_leader());
        // Silence shorter than the lease changes nothing.
        assert_eq!(b.unheard(14_000), None);
        assert!(!b.is_leader() && b.peer_up());
    }

    #[test]
    fn a_follower_takes_over_after_the_lease_and_keeps_the_lead_when_the_peer_returns() {
        let mut b = Leadership::new("b", 15_000, 0);
        b.heard(1_000, "a", true);
        assert_eq!(b.unheard(10_000), None);
        assert_eq!(b.unheard(16_000), Some(Change::TookOver));
        assert!(b.is_leader() && !b.peer_up());
        // a restarts as a follower: sticky, b keeps the lead.
        assert_eq!(b.heard(20_000, "a", false), None);
        assert!(b.is_leader());
        let mut a = Leadership::new("a", 15_000, 20_000);
        assert_eq!(a.heard(20_100, "b", true), None);
        assert!(!a.is_leader());
    }

    #[test]
    fn a_lone_collector_leads_after_one_lease() {
        let mut a = Leadership::new("a", 15_000, 0);
        assert_eq!(a.unheard(5_000), None);
        assert_eq!(a.unheard(15_000), Some(Change::TookOver));
    }

    #[test]
    fn after_a_partition_the_first_name_keeps_the_lead() {
        let (mut a, mut b) = (
            Leadership::new("a", 15_000, 0),
            Leadership::new("b", 15_000, 0),
        );
        a.unheard(20_000);
        b.unheard(20_000);
        assert!(a.is_leader() && b.is_leader());
        assert_eq!(a.heard(30_000, "b", true), None);
        assert_eq!(b.heard(30_000, "a", true), Some(Change::SteppedDown));
        assert!(a.is_leader() && !b.is_leader());
    }
}

//! The HA pair: two collectors that both take every batch (the agents name both), so each holds
//! the whole history and runs every engine, and that share out one thing, the delivery of
//! notifications, so a page goes out once.
//!
//! # Invariants
//! - A notification is delivered only by the leader ([`leadership`]), and only when the peer's
//!   log does not show it delivered already ([`log`]). A follower holds its notifications in its
//!   own durable outbox and drops each once the leader's log covers it; when it takes the lead,
//!   it delivers what is left. So a page is neither lost nor sent twice across a hand-over,
//!   except for what the leader delivered in the instant before it died and could not yet tell.
//! - Each collector reads the other's log with a long poll (`GET /api/v1/pair/state`), answered
//!   at once when the answering collector delivers something or changes its leadership: the
//!   follower learns of a delivery as it happens, not a poll interval later. The same answers
//!   are the heartbeat the lease counts.
//! - The log is in memory, numbered under an id made at start: a restarted peer's log starts
//!   again, and the reader sees the new id and reads it from the beginning.
//! - Operators' commands (silences, acknowledgements) are shared as state, not as a log: each
//!   collector publishes its operator state as a document (alerting owns its meaning; the pair
//!   only carries it), versioned under the log id, and the poll answers with it whenever the
//!   reader has not seen that version. A collector back from a restart so gets the peer's whole
//!   state at once, including what operators did while it was down.

pub mod config;
pub mod leadership;
pub mod log;
mod peer;

use crate::clock::Clock;
use config::PairConfig;
use leadership::{Change, Leadership};
use log::{Delivery, DeliveryKey, DeliveryLog, PeerDeliveries};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

pub use peer::start;

/// Most entries of the own log kept for the peer: a day of a busy pair's pages.
const LOG_ENTRIES: usize = 100_000;
/// Most entries in one answer.
const PAGE: usize = 10_000;
/// How long a follower re-checks a held notification without news.
const RECHECK: Duration = Duration::from_secs(1);

/// What `GET /api/v1/pair/state` answers: who answers, whether it leads, and its deliveries
/// after the reader's cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairState {
    pub member: String,
    pub leader: bool,
    /// The id of the answering collector's log (made at its start).
    pub log: String,
    /// The cursor to ask from next.
    pub next: u64,
    pub deliveries: Vec<DeliveryEntry>,
    /// The version of the answering collector's operator state (within `log`).
    #[serde(default)]
    pub operator_version: u64,
    /// That state, when the reader has not seen this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryEntry {
    /// 16 hex digits.
    pub key: String,
    pub at_ms: i64,
}

/// What a channel worker does with one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clearance {
    Deliver,
    /// The peer's log shows it delivered.
    DeliveredByPeer,
    /// Held past `hold` while the leader, alive, never delivered it: the leader judged
    /// differently, and it is the leader's to send.
    LeftToPeer,
}

struct Shared {
    leadership: Leadership,
    own: DeliveryLog,
    peer: PeerDeliveries,
    /// This collector's operator state and its version (0: none published yet).
    operator: (u64, serde_json::Value),
    /// The (log, version) of the peer's operator state last handed on.
    peer_operator_seen: (String, u64),
}

pub struct Pair {
    member: String,
    log_id: String,
    hold_ms: i64,
    shared: Mutex<Shared>,
    /// Bumped when this collector delivers, its leadership changes or its operator state
    /// changes: wakes the long polls.
    news: watch::Sender<u64>,
    /// The peer's operator state, as last answered.
    peer_operator: watch::Sender<serde_json::Value>,
    clock: Clock,
    config: PairConfig,
    metrics: PairMetrics,
}

struct PairMetrics {
    leader: IntGauge,
    peer_up: IntGauge,
    held: IntCounterVec,
}

impl Pair {
    /// Registers the pair's metrics; panics when they are registered twice.
    pub fn new(config: &PairConfig, clock: Clock, registry: &Registry) -> Arc<Self> {
        let now = clock();
        let gauge = |name: &str, help: &str| {
            let gauge = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(gauge.clone()))
                .expect("registered once");
            gauge
        };
        let held = IntCounterVec::new(
            Opts::new(
                "hcmon_collector_pair_notifications_total",
                "Notifications this collector did not deliver itself: outcome=delivered_by_peer (the leader's log showed them delivered) or left_to_peer (held past `hold` with the leader alive).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(held.clone()))
            .expect("registered once");
        Arc::new(Self {
            member: config.member.clone(),
            log_id: format!("{:016x}", fastrand::u64(..)),
            hold_ms: config.hold.as_millis() as i64,
            shared: Mutex::new(Shared {
                leadership: Leadership::new(&config.member, config.lease.as_millis() as i64, now),
                own: DeliveryLog::new(LOG_ENTRIES),
                peer: PeerDeliveries::default(),
                operator: (0, serde_json::Value::Null),
                peer_operator_seen: (String::new(), 0),
            }),
            news: watch::Sender::new(0),
            peer_operator: watch::Sender::new(serde_json::Value::Null),
            clock,
            config: config.clone(),
            metrics: PairMetrics {
                leader: gauge(
                    "hcmon_collector_pair_leader",
                    "1 while this collector delivers the pair's notifications.",
                ),
                peer_up: gauge(
                    "hcmon_collector_pair_peer_up",
                    "1 while the other collector of the pair answers within the lease.",
                ),
                held,
            },
        })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the notification made at `at_ms` with these keys may be delivered here, or
    /// is known to be the peer's.
    pub async fn clear(&self, keys: &[DeliveryKey], at_ms: i64) -> Clearance {
        let mut news = self.news.subscribe();
        loop {
            let cleared = {
                let mut shared = self.lock();
                if shared.peer.take_covering(keys, at_ms, self.hold_ms) {
                    Some(Clearance::DeliveredByPeer)
                } else if shared.leadership.is_leader() {
                    Some(Clearance::Deliver)
                } else if (self.clock)() - at_ms > self.hold_ms && shared.leadership.peer_up() {
                    Some(Clearance::LeftToPeer)
                } else {
                    None
                }
            };
            match cleared {
                Some(Clearance::Deliver) => return Clearance::Deliver,
                Some(other) => {
                    let outcome = match other {
                        Clearance::DeliveredByPeer => "delivered_by_peer",
                        _ => "left_to_peer",
                    };
                    self.metrics.held.with_label_values(&[outcome]).inc();
                    return other;
                }
                None => {}
            }
            // Leadership changes bump `news`; the peer's deliveries arrive through the poll,
            // within `RECHECK`.
            let _ = tokio::time::timeout(RECHECK, news.changed()).await;
        }
    }

    /// This collector delivered the notification made at `at_ms` with these keys.
    pub fn delivered(&self, keys: &[DeliveryKey], at_ms: i64) {
        self.lock()
            .own
            .push(keys.iter().map(|&key| Delivery { key, at_ms }));
        self.news.send_modify(|n| *n += 1);
    }

    /// Publishes this collector's operator state to the peer, when it changed.
    pub fn set_operator(&self, document: serde_json::Value) {
        {
            let mut shared = self.lock();
            if shared.operator.1 == document {
                return;
            }
            shared.operator = (shared.operator.0 + 1, document);
        }
        self.news.send_modify(|n| *n += 1);
    }

    /// The peer's operator state, as last answered (`Null` before the first answer).
    pub fn peer_operator(&self) -> watch::Receiver<serde_json::Value> {
        self.peer_operator.subscribe()
    }

    /// This collector's state for a reader whose cursor is `after` in log `log`, and who saw
    /// version `operator_seen` of its operator state.
    pub fn state(&self, log: &str, after: u64, operator_seen: u64) -> PairState {
        let shared = self.lock();
        let same_log = log == self.log_id;
        let from = if same_log { after } else { 1 };
        let (deliveries, next) = shared.own.from(from, PAGE);
        let (version, document) = &shared.operator;
        let operator =
            (*version > 0 && (!same_log || operator_seen != *version)).then(|| document.clone());
        PairState {
            member: self.member.clone(),
            leader: shared.leadership.is_leader(),
            log: self.log_id.clone(),
            next,
            deliveries: deliveries
                .into_iter()
                .map(|d| DeliveryEntry {
                    key: format!("{:016x}", d.key.0),
                    at_ms: d.at_ms,
                })
                .collect(),
            operator_version: *version,
            operator,
        }
    }

    /// Returns when the reader at `after` of log `log` has something new (deliveries, or an
    /// operator state newer than `operator_seen`), the leadership changed, or `wait` passed.
    pub async fn wait_for_news(
        &self,
        log: &str,
        after: u64,
        leader_seen: bool,
        operator_seen: u64,
        wait: Duration,
    ) {
        let mut news = self.news.subscribe();
        let fresh = || {
            let shared = self.lock();
            log != self.log_id
                || shared.own.next() > after
                || shared.leadership.is_leader() != leader_seen
                || shared.operator.0 != operator_seen
        };
        let deadline = tokio::time::Instant::now() + wait;
        while !fresh() {
            if tokio::time::timeout_at(deadline, news.changed())
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// The peer answered.
    fn heard(&self, state: &PairState) -> Result<(), String> {
        if state.member == self.member {
            return Err(format!(
                "the peer is also named {:?}: give the two collectors different `member` names",
                self.member
            ));
        }
        let deliveries = state
            .deliveries
            .iter()
            .map(|d| {
                u64::from_str_radix(&d.key, 16)
                    .map(|key| Delivery {
                        key: DeliveryKey(key),
                        at_ms: d.at_ms,
                    })
                    .map_err(|_| format!("delivery key {:?} is not 16 hex digits", d.key))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let now = (self.clock)();
        let change = {
            let mut shared = self.lock();
            shared.peer.learn(&deliveries, now, 2 * self.hold_ms);
            if let Some(document) = &state.operator {
                let seen = (state.log.clone(), state.operator_version);
                if shared.peer_operator_seen != seen {
                    shared.peer_operator_seen = seen;
                    self.peer_operator.send_replace(document.clone());
                }
            }
            shared.leadership.heard(now, &state.member, state.leader)
        };
        self.changed(change);
        Ok(())
    }

    /// Asking the peer failed.
    fn unheard(&self) {
        let change = self.lock().leadership.unheard((self.clock)());
        self.changed(change);
    }

    fn changed(&self, change: Option<Change>) {
        let (leader, peer_up) = {
            let shared = self.lock();
            (shared.leadership.is_leader(), shared.leadership.peer_up())
        };
        self.metrics.leader.set(i64::from(leader));
        self.metrics.peer_up.set(i64::from(peer_up));
        let Some(change) = change else { return };
        match change {
            Change::TookOver => tracing::warn!(
                member = %self.member,
                peer = %self.config.peer,
                "the other collector of the pair is silent past the lease: this one now delivers notifications"
            ),
            Change::Claimed => {
                tracing::info!(member = %self.member, "this collector delivers the pair's notifications")
            }
            Change::SteppedDown => tracing::warn!(
                member = %self.member,
                "both collectors of the pair were leading (the network between them was cut?); the other keeps the lead"
            ),
        }
        self.news.send_modify(|n| *n += 1);
    }
}

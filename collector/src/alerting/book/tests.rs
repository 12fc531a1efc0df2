//! The book's harness: the book run as the service runs it, on a clock the test moves.

use super::*;
use crate::alerting::escalation::Tier;
use crate::alerting::lifecycle::{Direction, Threshold};
use crate::alerting::store;
use crate::storage::MemoryKv;
use std::time::Duration;

const MIN: i64 = 60_000;

fn channel(name: &str, min: Severity, per_hour: usize, escalation_only: bool) -> ChannelPolicy {
    ChannelPolicy {
        name: name.into(),
        limits: ChannelLimits {
            min_severity: min,
            min_interval_ms: 5 * MIN,
            max_per_hour: per_hour,
        },
        escalation_only,
    }
}

fn config(per_hour: usize) -> BookConfig {
    let tier = |m: u64, who: &str| Tier {
        after: Duration::from_secs(m * 60),
        recipients: vec![who.into()],
    };
    BookConfig {
        group_by: vec!["node".into()],
        group_window_ms: MIN,
        channels: vec![
            channel("email", Severity::Warning, per_hour, false),
            channel("slack", Severity::Error, per_hour, false),
            channel("pager", Severity::Warning, 100, true),
        ],
        recipients: BTreeMap::from([
            ("on-call".into(), targets(&["pager:oncall"])),
            (
                "manager".into(),
                targets(&["pager:manager", "email:boss@example.com"]),
            ),
            ("director".into(), targets(&["pager:director"])),
        ]),
        escalation: EscalationPolicy {
            tiers: vec![
                tier(15, "on-call"),
                tier(30, "manager"),
                tier(60, "director"),
            ],
        },
        escalation_min_severity: Severity::Error,
        ack_links: None,
    }
}

fn targets(list: &[&str]) -> Vec<Target> {
    list.iter().map(|t| t.parse().unwrap()).collect()
}

fn flap_rules() -> LifecycleRules {
    LifecycleRules {
        threshold: Threshold {
            direction: Direction::Above,
            fire: 1.0,
            recover: 0.0,
        },
        for_ms: 0,
        flap_window_ms: 30 * MIN,
        flap_max_changes: 4,
    }
}

fn obs(name: &str, node: &str, value: f64) -> Observation {
    Observation {
        alertname: name.into(),
        labels: BTreeMap::from([("node".to_owned(), node.to_owned())]),
        value,
        rules: LifecycleRules {
            threshold: Threshold {
                direction: Direction::Above,
                fire: 0.9,
                recover: 0.8,
            },
            ..flap_rules()
        },
        severity: (value >= 0.9).then_some(Severity::Error),
        annotations: BTreeMap::new(),
        evidence: Evidence::default(),
        inhibits_node: name == "AgentSilent",
        judged: None,
    }
}

/// Runs the book like the service does: every change set stored, what it queues collected.
struct Harness {
    book: AlertBook,
    store: MemoryKv,
    sent: Vec<Outgoing>,
    now: i64,
}

impl Harness {
    fn new(per_hour: usize) -> Self {
        Self::resume(per_hour, MemoryKv::default(), 1_000 * MIN)
    }

    /// A book resumed from what `store` holds, at `now`.
    fn resume(per_hour: usize, store: MemoryKv, now: i64) -> Self {
        let loaded = store::load(&store).unwrap();
        assert!(loaded.quarantined.is_empty(), "{:?}", loaded.quarantined);
        Self {
            book: AlertBook::restore(
                config(per_hour),
                loaded.alerts,
                loaded.silences,
                loaded.open_incidents,
                loaded.state,
            ),
            store,
            sent: Vec::new(),
            now,
        }
    }

    fn observe(&mut self, name: &str, node: &str, value: f64) {
        self.book.observe(obs(name, node, value), self.now);
        self.tick();
    }

    fn tick(&mut self) {
        self.book.tick(self.now, &flap_rules());
        let changes = self.book.take_changes();
        store::write(&self.store, &changes, self.book.state(), &[]).unwrap();
        self.sent.extend(changes.outbox);
    }

    fn advance(&mut self, ms: i64) {
        let end = self.now + ms;
        while self.now < end {
            self.now = (self.now + 10_000).min(end);
            self.tick();
        }
    }

    fn take(&mut self) -> Vec<(String, NotificationKind, usize, Vec<String>)> {
        self.sent
            .drain(..)
            .map(|o| {
                let n = o.notification;
                (o.channel, n.kind, n.alerts.len(), n.recipients)
            })
            .collect()
    }

    fn id(&self, name: &str, node: &str) -> AlertId {
        AlertId::of(name, &obs(name, node, 0.0).labels)
    }
}

#[test]
fn a_burst_of_one_node_is_one_notification_per_channel_after_the_window() {
    let mut h = Harness::new(10);
    h.observe("HighCpu", "nas", 0.95);
    h.advance(10_000);
    h.observe("HighMemory", "nas", 0.95);
    h.observe("DiskFull", "nas", 0.95);
    h.observe("HighCpu", "pi", 0.95);
    assert!(h.take().is_empty(), "the window is still open");
    h.advance(MIN - 10_000);
    let sent = h.take();
    assert_eq!(
        sent,
        vec![
            ("email".into(), NotificationKind::Firing, 3, vec![]),
            ("slack".into(), NotificationKind::Firing, 3, vec![]),
        ],
        "the pager is escalation-only"
    );
    h.advance(10_000);
    assert_eq!(
        h.take().len(),
        2,
        "the other node's group, in its own window"
    );
}

#[test]
fn the_hourly_cap_holds_the_rest_for_a_digest() {
    let mut h = Harness::new(2);
    for node in ["a", "b", "c", "d", "e"] {
        h.observe("HighCpu", node, 0.95);
    }
    h.advance(MIN);
    let sent = h.take();
    let email: Vec<_> = sent.iter().filter(|s| s.0 == "email").collect();
    assert_eq!(email.len(), 2, "capped at two an hour: {sent:?}");
    h.advance(30 * MIN);
    assert!(h.take().iter().all(|s| s.1 != NotificationKind::Digest));
    h.advance(31 * MIN);
    let digests: Vec<_> = h
        .take()
        .into_iter()
        .filter(|s| s.1 == NotificationKind::Digest)
        .collect();
    assert_eq!(
        digests,
        vec![
            ("email".into(), NotificationKind::Digest, 3, vec![]),
            ("slack".into(), NotificationKind::Digest, 3, vec![]),
        ],
        "nothing held back is dropped"
    );
}

#[test]
fn escalation_reaches_three_tiers_and_an_ack_stops_it() {
    let mut h = Harness::new(10);
    h.observe("HighCpu", "nas", 0.95);
    h.advance(MIN);
    h.take();
    h.advance(14 * MIN - 10_000);
    assert!(h.take().is_empty());
    h.advance(10_000);
    assert_eq!(
        h.take(),
        vec![(
            "pager".into(),
            NotificationKind::Escalation { tier: 0 },
            1,
            vec!["oncall".into()]
        )]
    );
    h.advance(15 * MIN);
    assert_eq!(
        h.take(),
        vec![
            (
                "pager".into(),
                NotificationKind::Escalation { tier: 1 },
                1,
                vec!["manager".into()]
            ),
            (
                "email".into(),
                NotificationKind::Escalation { tier: 1 },
                1,
                vec!["boss@example.com".into()]
            ),
        ]
    );
    h.advance(30 * MIN);
    assert_eq!(h.take()[0].1, NotificationKind::Escalation { tier: 2 });
    h.advance(3 * 60 * MIN);
    assert!(h.take().is_empty(), "every tier once");

    // A second alert, acknowledged after the first tier.
    h.observe("HighCpu", "pi", 0.95);
    h.advance(16 * MIN);
    let tiers: Vec<_> = h
        .take()
        .into_iter()
        .filter(|s| matches!(s.1, NotificationKind::Escalation { .. }))
        .collect();
    assert_eq!(tiers.len(), 1);
    let id = h.id("HighCpu", "pi");
    h.book.acknowledge(&id, "alice", h.now).unwrap();
    h.advance(2 * 60 * MIN);
    assert!(h.take().is_empty(), "acknowledged: no further tiers");
    let err = h.book.acknowledge(&id, "bob", h.now).unwrap_err();
    assert!(err.to_string().contains("acknowledged"), "{err}");

    // Resolution reaches everyone who heard of it, escalation tiers included.
    h.observe("HighCpu", "nas", 0.1);
    h.advance(MIN);
    let mut resolved = h.take();
    resolved.sort_by(|a, b| (&a.0, &a.3).cmp(&(&b.0, &b.3)));
    assert_eq!(
        resolved,
        vec![
            ("email".into(), NotificationKind::Resolved, 1, vec![]),
            (
                "email".into(),
                NotificationKind::Resolved,
                1,
                vec!["boss@example.com".into()]
            ),
            (
                "pager".into(),
                NotificationKind::Resolved,
                1,
                vec!["director".into()]
            ),
            (
                "pager".into(),
                NotificationKind::Resolved,
                1,
                vec!["manager".into()]
            ),
            (
                "pager".into(),
                NotificationKind::Resolved,
                1,
                vec!["oncall".into()]
            ),
            ("slack".into(), NotificationKind::Resolved, 1, vec![]),
        ]
    );
}

#[test]
fn silences_mute_and_an_expired_silence_lets_the_alert_through() {
    let mut h = Harness::new(10);
    h.book
        .silence(SilenceRecord {
            id: SilenceId::from("s1"),
            matchers: "HighCpu{node=\"nas\"}".into(),
            starts_ms: h.now,
            ends_ms: h.now + 60 * MIN,
            daily: None,
            created_by: "alice".into(),
            comment: "upgrade".into(),
            created_ms: h.now,
            maintenance: false,
        })
        .unwrap();
    h.observe("HighCpu", "nas", 0.95);
    h.observe("HighMemory", "nas", 0.95);
    h.advance(30 * MIN);
    let sent = h.take();
    assert!(
        sent.iter().all(|s| s.2 == 1),
        "only the memory alert goes out: {sent:?}"
    );
    let id = h.id("HighCpu", "nas");
    assert!(
        h.book
            .muted(&id, &h.book.down_nodes(), h.now)
            .unwrap()
            .contains("s1")
    );
    h.book.expire_silence(&"s1".into(), h.now).unwrap();
    h.advance(2 * MIN);
    let sent = h.take();
    assert!(
        sent.iter()
            .any(|s| s.0 == "email" && s.1 == NotificationKind::Firing),
        "announced once the silence ends: {sent:?}"
    );
    assert!(
        sent.iter()
            .any(|s| s.1 == NotificationKind::Escalation { tier: 0 }),
        "and its escalation resumes where it stood: {sent:?}"
    );
}

#[test]
fn a_node_that_is_down_mutes_its_other_alerts() {
    let mut h = Harness::new(10);
    h.observe("AgentSilent", "nas", 0.95);
    h.observe("HighCpu", "nas", 0.95);
    h.advance(MIN);
    let sent = h.take();
    assert!(sent.iter().all(|s| s.2 == 1), "{sent:?}");
    let cpu = h.id("HighCpu", "nas");
    assert!(
        h.book
            .muted(&cpu, &h.book.down_nodes(), h.now)
            .unwrap()
            .contains("inhibited")
    );
    h.observe("AgentSilent", "nas", 0.1);
    h.advance(2 * MIN);
    let sent = h.take();
    assert!(
        sent.iter().any(|s| s.1 == NotificationKind::Firing),
        "{sent:?}"
    );
}

#[test]
fn forgetting_a_node_resolves_its_alerts_and_drops_them() {
    let mut h = Harness::new(10);
    h.observe("AgentSilent", "gone", 0.95);
    h.observe("HighCpu", "gone", 0.95);
    h.observe("HighCpu", "nas", 0.95);
    h.advance(MIN);
    h.take();
    assert_eq!(h.book.forget_node("gone", h.now), 2);
    let left: Vec<_> = h.book.alerts().map(|a| a.labels["node"].clone()).collect();
    assert_eq!(left, ["nas"]);
    h.advance(2 * MIN);
    let sent = h.take();
    assert!(
        sent.iter().any(|s| s.1 == NotificationKind::Resolved),
        "whoever was told hears it resolved: {sent:?}"
    );
    assert_eq!(h.book.forget_node("gone", h.now), 0);
}

#[test]
fn flapping_is_one_notice_not_a_storm() {
    let mut h = Harness::new(100);
    h.observe("HighCpu", "nas", 0.95);
    h.advance(MIN);
    h.take();
    for _ in 0..10 {
        h.observe("HighCpu", "nas", 0.1);
        h.advance(10_000);
        h.observe("HighCpu", "nas", 0.95);
        h.advance(10_000);
    }
    let sent = h.take();
    let flapping = sent
        .iter()
        .filter(|s| s.1 == NotificationKind::Flapping)
        .count();
    assert_eq!(flapping, 2, "one per broadcast channel: {sent:?}");
    assert!(
        sent.iter()
            .all(|s| matches!(s.1, NotificationKind::Flapping | NotificationKind::Resolved)),
        "{sent:?}"
    );
    h.observe("HighCpu", "nas", 0.1);
    h.advance(33 * MIN);
    let sent = h.take();
    assert!(
        sent.iter()
            .any(|s| s.1 == NotificationKind::StoppedFlapping)
    );
    assert!(
        sent.iter().any(|s| s.1 == NotificationKind::Resolved),
        "{sent:?}"
    );
}

#[test]
fn related_series_stay_with_the_episode_and_reach_the_notification() {
    let mut h = Harness::new(10);
    h.observe("HighCpu", "nas", 0.95);
    let id = h.id("HighCpu", "nas");
    h.book
        .set_related(&id, vec!["node_load1{node=\"nas\"} rose with it".into()]);
    h.observe("HighCpu", "nas", 0.97);
    h.advance(MIN);
    let sent: Vec<Outgoing> = std::mem::take(&mut h.sent);
    let related = &sent[0].notification.alerts[0].evidence.related;
    assert_eq!(related.len(), 1, "kept across later samples: {sent:?}");
    h.observe("HighCpu", "nas", 0.1);
    h.observe("HighCpu", "nas", 0.95);
    assert!(
        h.book.alert(&id).unwrap().evidence.related.is_empty(),
        "a new episode starts without the old correlation"
    );
}

#[test]
fn a_restart_mid_escalation_neither_repeats_nor_skips_a_tier() {
    let mut h = Harness::new(10);
    h.observe("HighCpu", "nas", 0.95);
    h.advance(20 * MIN);
    let before = h.take();
    assert_eq!(
        before
            .iter()
            .filter(|s| matches!(s.1, NotificationKind::Escalation { .. }))
            .count(),
        1
    );
    // Down for 45 minutes: tier 1 (30 min) and tier 2 (60 min) both came due meanwhile. The
    // book resumes from what the store holds.
    let mut h2 = Harness::resume(10, h.store.clone(), h.now + 45 * MIN);
    assert_eq!(h2.book.state(), h.book.state());
    assert!(h2.book.alerts().eq(h.book.alerts()));
    h2.tick();
    let after = h2.take();
    let tiers: Vec<_> = after.iter().map(|s| s.1).collect();
    assert_eq!(
        tiers,
        vec![
            NotificationKind::Escalation { tier: 1 },
            NotificationKind::Escalation { tier: 1 },
            NotificationKind::Escalation { tier: 2 },
        ]
    );
    h2.advance(60 * MIN);
    assert!(h2.take().is_empty());
}

/// The two books of an HA pair, as the pair's poll shares their operator state.
mod pair {
    use super::*;
    use crate::alerting::lifecycle::AlertState;
    use crate::alerting::operator_state::{Applied, OperatorState};

    fn share(from: &Harness, to: &mut Harness) -> Applied {
        let applied = OperatorState::of(&from.book, from.now).apply_to(&mut to.book, to.now);
        to.tick();
        applied
    }

    fn silence(id: &str, now: i64) -> SilenceRecord {
        SilenceRecord {
            id: SilenceId::from(id),
            matchers: "HighCpu{node=\"nas\"}".into(),
            starts_ms: now,
            ends_ms: now + 60 * MIN,
            daily: None,
            created_by: "alice".into(),
            comment: "upgrade".into(),
            created_ms: now,
            maintenance: false,
        }
    }

    #[test]
    fn a_silence_made_on_one_mutes_the_other_and_its_expiry_follows() {
        let (mut a, mut b) = (Harness::new(10), Harness::new(10));
        a.book.silence(silence("s1", a.now)).unwrap();
        a.tick();
        let applied = share(&a, &mut b);
        assert_eq!(applied.silences_added, 1);
        assert_eq!(
            b.book.silences().cloned().collect::<Vec<_>>(),
            a.book.silences().cloned().collect::<Vec<_>>()
        );
        // Stored like one made here: a restarted b still has it.
        let resumed = Harness::resume(10, b.store.clone(), b.now);
        assert_eq!(resumed.book.silences().count(), 1);

        // b, alone (a is down), sees the alert fire: muted, nothing goes out.
        b.observe("HighCpu", "nas", 0.95);
        b.advance(30 * MIN);
        assert!(b.take().is_empty(), "silenced on b too");
        assert_eq!(share(&a, &mut b), Applied::default(), "nothing new");

        // Expired on b: a follows, and the alert goes out from there.
        b.book
            .expire_silence(&SilenceId::from("s1"), b.now)
            .unwrap();
        b.tick();
        a.now = b.now;
        a.observe("HighCpu", "nas", 0.95);
        assert!(a.take().is_empty(), "still silenced on a");
        assert_eq!(share(&b, &mut a).silences_expired, 1);
        a.advance(2 * MIN);
        assert!(!a.take().is_empty(), "expiry reached a");
        // And back again: nothing changes either side.
        assert_eq!(share(&a, &mut b), Applied::default());
        assert_eq!(share(&b, &mut a), Applied::default());
    }

    #[test]
    fn an_ended_silence_the_other_no_longer_holds_is_not_brought_back() {
        let (mut a, mut b) = (Harness::new(10), Harness::new(10));
        let mut old = silence("old", a.now - 120 * MIN);
        old.ends_ms = a.now - 30 * MIN;
        a.book.silence(old).unwrap();
        a.tick();
        assert_eq!(share(&a, &mut b), Applied::default());
        assert_eq!(b.book.silences().count(), 0);
    }

    #[test]
    fn an_acknowledgement_stops_the_others_escalation_in_the_same_episode_only() {
        let (mut a, mut b) = (Harness::new(10), Harness::new(10));
        a.observe("HighCpu", "nas", 0.95);
        b.advance(20_000);
        b.observe("HighCpu", "nas", 0.95);
        let id = a.id("HighCpu", "nas");
        a.book.acknowledge(&id, "alice", a.now).unwrap();
        a.tick();
        assert_eq!(share(&a, &mut b).acknowledged, 1);
        let alert = b.book.alert(&id).unwrap();
        assert!(
            matches!(&alert.lifecycle.state, AlertState::Acknowledged { by, .. } if by == "alice"),
            "{:?}",
            alert.lifecycle.state
        );
        b.take();
        b.advance(90 * MIN);
        assert!(
            b.take()
                .iter()
                .all(|s| !matches!(s.1, NotificationKind::Escalation { .. })),
            "b's escalation stopped"
        );

        // A later episode on b is not the one acknowledged on a.
        let (mut a, mut b) = (Harness::new(10), Harness::new(10));
        a.observe("HighCpu", "nas", 0.95);
        a.book.acknowledge(&id, "alice", a.now).unwrap();
        a.tick();
        b.advance(30 * MIN);
        b.observe("HighCpu", "nas", 0.95);
        assert_eq!(share(&a, &mut b).acknowledged, 0);
    }
}

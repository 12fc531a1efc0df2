//! The notification side of the book: on each tick, firing alerts are announced into their
//! group, groups whose window passed are flushed through each channel's throttle (what is over
//! the hourly cap waits for a digest), due escalation tiers are reached, and everything to send
//! is queued in the outbox with its incidents' history. Flapping notices go out at once.

use super::{AlertBook, ChannelPolicy, DownNodes, Happened, Outgoing};
use crate::alerting::ids::{AlertId, IncidentId, Target};
use crate::alerting::lifecycle::{AlertState, LifecycleRules};
use crate::alerting::notify::{AlertSummary, DeliveryReport, Notification, NotificationKind};
use crate::alerting::policy::{AlertNotice, Decision, GroupKey, GroupKind, Pending, Severity};
use std::collections::BTreeSet;
use std::sync::Arc;

/// How long an ack link stays valid.
const ACK_LINK_VALID_MS: i64 = 7 * 24 * 3_600_000;

impl AlertBook {
    /// Advances time: flapping that settled, groups whose window passed, escalation tiers that
    /// came due, digests the caps now allow, alerts whose mute ended, and forgetting old ones.
    pub fn tick(&mut self, now_ms: i64, flap: &LifecycleRules) {
        // Nothing below changes whether an alert is active, so the down nodes hold throughout.
        let down = self.down_nodes();
        self.settle_flapping(now_ms, flap, &down);
        self.announce(now_ms, &down);
        for (key, pending) in self
            .state
            .grouper
            .ready(self.config.group_window_ms, now_ms)
        {
            self.changes.state = true;
            match key.kind {
                GroupKind::Firing => self.flush_firing(&key.group, pending, now_ms, &down),
                GroupKind::Resolved => self.flush_resolved(&key.group, pending, now_ms),
            }
        }
        self.escalate(now_ms, &down);
        self.send_digests(now_ms);
        self.forget(now_ms);
    }

    /// The group an alert belongs to, e.g. `node="nas"`.
    pub(super) fn group_of(&self, id: &AlertId) -> String {
        let Some(record) = self.alerts.get(id) else {
            return String::new();
        };
        let full = record.full_labels();
        self.config
            .group_by
            .iter()
            .map(|name| format!("{name}={:?}", full.get(name).map_or("", String::as_str)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How a notification shows an alert; the ack link names `recipient`.
    pub(super) fn summary(
        &self,
        id: &AlertId,
        now_ms: i64,
        recipient: Option<&str>,
    ) -> Option<AlertSummary> {
        let record = self.alerts.get(id)?;
        let episode = record.episode.as_ref();
        let ack_url = match (&self.config.ack_links, &record.lifecycle.state) {
            (Some(links), AlertState::Firing { .. }) => {
                Some(links.link(id, recipient.unwrap_or("link"), now_ms + ACK_LINK_VALID_MS))
            }
            _ => None,
        };
        let resolved_ms = match record.lifecycle.state {
            AlertState::Resolved { at_ms } => Some(at_ms),
            _ => None,
        };
        Some(AlertSummary {
            id: id.clone(),
            labels: record.full_labels(),
            annotations: record.annotations.clone(),
            severity: record.severity,
            state: record.lifecycle.state.kind(),
            since_ms: episode.map_or(record.changed_ms, |e| e.fired_ms),
            resolved_ms,
            value: record.value,
            evidence: record.evidence.clone(),
            ack_url,
        })
    }

    /// Channels every firing alert goes to (not the escalation-only ones).
    fn broadcast_channels(&self) -> Vec<ChannelPolicy> {
        self.config
            .channels
            .iter()
            .filter(|c| !c.escalation_only)
            .cloned()
            .collect()
    }

    fn queue(&mut self, channel: &str, notification: Notification, incidents: Vec<IncidentId>) {
        let seq = self.next_seq();
        for incident in &incidents {
            self.event(
                incident,
                notification.at_ms,
                Happened::Queued {
                    channel: channel.to_owned(),
                    kind: notification.kind,
                    recipients: notification.recipients.clone(),
                },
            );
        }
        self.changes.outbox.push(Outgoing {
            seq,
            channel: channel.to_owned(),
            notification,
            incidents,
        });
    }

    /// A flapping or stopped-flapping notice, at once, to every channel that takes the severity.
    pub(super) fn flapping_notice(
        &mut self,
        id: &AlertId,
        kind: NotificationKind,
        down: &DownNodes,
        now_ms: i64,
    ) {
        let Some(record) = self.alerts.get(id) else {
            return;
        };
        let Some(incident) = self.incident_of(id) else {
            return;
        };
        let severity = record.severity;
        let group = self.group_of(id);
        if let Some(reason) = self.mute_reason(record, down, now_ms) {
            self.event(&incident, now_ms, Happened::Muted { reason });
            return;
        }
        let summary = self.summary(id, now_ms, None).expect("record exists");
        self.event(
            &incident,
            now_ms,
            match kind {
                NotificationKind::Flapping => Happened::Flapping,
                _ => Happened::StoppedFlapping,
            },
        );
        for channel in self.broadcast_channels() {
            if severity < channel.limits.min_severity {
                continue;
            }
            let notification = Notification {
                kind,
                group: group.clone(),
                alerts: vec![summary.clone()],
                recipients: Vec::new(),
                at_ms: now_ms,
            };
            self.queue(&channel.name, notification, vec![incident.clone()]);
            if let Some(episode) = self
                .alerts
                .get_mut(id)
                .map(Arc::make_mut)
                .and_then(|r| r.episode.as_mut())
            {
                episode.notified.insert(Target::channel(&channel.name));
            }
        }
        self.changes.alerts.insert(id.clone());
    }

    /// Queues firing alerts that were not announced yet (or rose in severity) into their
    /// group, unless muted.
    fn announce(&mut self, now_ms: i64, down: &DownNodes) {
        let mut due = Vec::new();
        for record in self.alerts.values() {
            let Some(episode) = &record.episode else {
                continue;
            };
            if !record.is_active()
                || record.lifecycle.flapping
                || episode.announced.is_some_and(|s| s >= record.severity)
            {
                continue;
            }
            if self.mute_reason(record, down, now_ms).is_none() {
                due.push((record.id.clone(), record.severity));
            }
        }
        for (id, severity) in due {
            let group = self.group_of(&id);
            self.state.grouper.add(
                GroupKey {
                    kind: GroupKind::Firing,
                    group,
                },
                Pending::Firing(AlertNotice {
                    alert: id.clone(),
                    severity,
                }),
                now_ms,
            );
            self.changes.state = true;
            if let Some(episode) = self
                .alerts
                .get_mut(&id)
                .map(Arc::make_mut)
                .and_then(|r| r.episode.as_mut())
            {
                episode.announced = Some(severity);
            }
            self.changes.alerts.insert(id);
        }
    }

    /// Firing notices of one group, through each broadcast channel's throttle.
    fn flush_firing(&mut self, group: &str, pending: Vec<Pending>, now_ms: i64, down: &DownNodes) {
        let mut alerts: Vec<(AlertId, Severity, IncidentId)> = Vec::new();
        for p in pending {
            let Pending::Firing(AlertNotice { alert: id, .. }) = p else {
                continue;
            };
            let Some(record) = self.alerts.get(&id) else {
                continue;
            };
            let Some(episode) = &record.episode else {
                continue;
            };
            if !record.is_active() || record.lifecycle.flapping {
                continue;
            }
            if let Some(reason) = self.mute_reason(record, down, now_ms) {
                // Announced again when the mute ends.
                let incident = episode.incident.clone();
                self.event(&incident, now_ms, Happened::Muted { reason });
                if let Some(e) = self
                    .alerts
                    .get_mut(&id)
                    .map(Arc::make_mut)
                    .and_then(|r| r.episode.as_mut())
                {
                    e.announced = None;
                }
                self.changes.alerts.insert(id);
                continue;
            }
            if !alerts.iter().any(|(known, ..)| *known == id) {
                alerts.push((id, record.severity, episode.incident.clone()));
            }
        }
        for channel in self.broadcast_channels() {
            let mut sending = Vec::new();
            for (id, severity, incident) in &alerts {
                let notice = AlertNotice {
                    alert: id.clone(),
                    severity: *severity,
                };
                match self
                    .state
                    .throttle
                    .decide(&channel.name, &channel.limits, notice, now_ms)
                {
                    Decision::Send => sending.push((id.clone(), incident.clone())),
                    Decision::HeldForDigest => {
                        let what = Happened::HeldForDigest {
                            channel: channel.name.clone(),
                        };
                        self.event(incident, now_ms, what);
                        self.mark_notified(id, Target::channel(&channel.name));
                    }
                    Decision::BelowSeverity | Decision::TooSoon => {}
                }
            }
            if sending.is_empty() {
                continue;
            }
            let summaries = sending
                .iter()
                .filter_map(|(id, _)| self.summary(id, now_ms, None))
                .collect();
            for (id, _) in &sending {
                self.mark_notified(id, Target::channel(&channel.name));
            }
            let notification = Notification {
                kind: NotificationKind::Firing,
                group: group.to_owned(),
                alerts: summaries,
                recipients: Vec::new(),
                at_ms: now_ms,
            };
            let incidents = sending.into_iter().map(|(_, i)| i).collect();
            self.queue(&channel.name, notification, incidents);
        }
    }

    fn mark_notified(&mut self, id: &AlertId, target: Target) {
        if let Some(episode) = self
            .alerts
            .get_mut(id)
            .map(Arc::make_mut)
            .and_then(|r| r.episode.as_mut())
        {
            episode.notified.insert(target);
            self.changes.alerts.insert(id.clone());
        }
    }

    /// Resolved notices, to every target each alert's firing reached.
    fn flush_resolved(&mut self, group: &str, pending: Vec<Pending>, now_ms: i64) {
        let closing: Vec<_> = pending
            .into_iter()
            .filter_map(|p| match p {
                Pending::Resolved { incident } => {
                    let c = self.state.closing.remove(&incident)?;
                    Some((incident, c))
                }
                Pending::Firing(_) => None,
            })
            .collect();
        let targets: BTreeSet<Target> = closing
            .iter()
            .flat_map(|(_, c)| c.notified.iter().cloned())
            .collect();
        for target in targets {
            let (incidents, alerts): (Vec<IncidentId>, Vec<AlertSummary>) = closing
                .iter()
                .filter(|(_, c)| c.notified.contains(&target))
                .map(|(incident, c)| (incident.clone(), c.alert.clone()))
                .unzip();
            let notification = Notification {
                kind: NotificationKind::Resolved,
                group: group.to_owned(),
                alerts,
                recipients: target.address.into_iter().collect(),
                at_ms: now_ms,
            };
            self.queue(&target.channel, notification, incidents);
        }
    }

    fn escalate(&mut self, now_ms: i64, down: &DownNodes) {
        let mut due: Vec<(AlertId, Vec<usize>)> = Vec::new();
        for record in self.alerts.values() {
            let Some(episode) = &record.episode else {
                continue;
            };
            let firing = matches!(record.lifecycle.state, AlertState::Firing { .. });
            if !firing
                || record.lifecycle.flapping
                || record.severity < self.config.escalation_min_severity
                || self.mute_reason(record, down, now_ms).is_some()
            {
                continue;
            }
            let tiers = episode
                .policy
                .due(episode.fired_ms, now_ms, episode.tiers_notified, false);
            if !tiers.is_empty() {
                due.push((record.id.clone(), tiers));
            }
        }
        for (id, tiers) in due {
            for tier in tiers {
                self.escalate_to(&id, tier, now_ms);
            }
        }
    }

    fn escalate_to(&mut self, id: &AlertId, tier: usize, now_ms: i64) {
        let Some(episode) = self.alerts.get(id).and_then(|r| r.episode.clone()) else {
            return;
        };
        let recipients = episode.policy.tiers[tier].recipients.clone();
        let group = self.group_of(id);
        self.event(
            &episode.incident,
            now_ms,
            Happened::Escalated {
                tier,
                recipients: recipients.clone(),
            },
        );
        for recipient in &recipients {
            // A recipient not in `[alerting.recipients]` is a channel's name (config checks).
            let targets = self
                .config
                .recipients
                .get(recipient)
                .cloned()
                .unwrap_or_else(|| vec![Target::channel(recipient)]);
            for target in targets {
                let Some(summary) = self.summary(id, now_ms, Some(recipient)) else {
                    continue;
                };
                let notification = Notification {
                    kind: NotificationKind::Escalation { tier },
                    group: group.clone(),
                    alerts: vec![summary],
                    recipients: target.address.iter().cloned().collect(),
                    at_ms: now_ms,
                };
                self.queue(
                    &target.channel,
                    notification,
                    vec![episode.incident.clone()],
                );
                self.mark_notified(id, target);
            }
        }
        if let Some(e) = self
            .alerts
            .get_mut(id)
            .map(Arc::make_mut)
            .and_then(|r| r.episode.as_mut())
        {
            e.tiers_notified = tier + 1;
        }
        self.changes.alerts.insert(id.clone());
    }

    fn send_digests(&mut self, now_ms: i64) {
        for channel in self.state.throttle.held_channels() {
            let Some(policy) = self.config.channels.iter().find(|c| c.name == channel) else {
                continue;
            };
            let limits = policy.limits;
            let Some(held) = self.state.throttle.take_digest(&channel, &limits, now_ms) else {
                continue;
            };
            self.changes.state = true;
            let mut alerts = Vec::new();
            let mut incidents = Vec::new();
            for notice in held {
                if alerts.iter().any(|a: &AlertSummary| a.id == notice.alert) {
                    continue;
                }
                if let Some(summary) = self.summary(&notice.alert, now_ms, None) {
                    incidents.extend(self.incident_of(&notice.alert));
                    alerts.push(summary);
                }
            }
            if alerts.is_empty() {
                continue;
            }
            let notification = Notification {
                kind: NotificationKind::Digest,
                group: String::new(),
                alerts,
                recipients: Vec::new(),
                at_ms: now_ms,
            };
            self.queue(&channel, notification, incidents);
        }
    }

    /// Records how a queued notification's delivery went, in each incident it told about.
    /// The pair's other collector delivered `outgoing` (`by_peer`), or was left to.
    pub fn handed_to_peer(&mut self, outgoing: &Outgoing, by_peer: bool, now_ms: i64) {
        let kind = outgoing.notification.kind;
        for incident in &outgoing.incidents {
            let channel = outgoing.channel.clone();
            let what = Happened::HandedToPeer {
                channel,
                kind,
                by_peer,
            };
            self.event(incident, now_ms, what);
        }
    }

    pub fn delivered(&mut self, outgoing: &Outgoing, report: &DeliveryReport, now_ms: i64) {
        let (channel, kind) = (&outgoing.channel, outgoing.notification.kind);
        for incident in &outgoing.incidents {
            let (channel, attempts, errors) =
                (channel.clone(), report.attempts, report.errors.clone());
            let what = match report.delivered {
                true => Happened::Delivered {
                    channel,
                    kind,
                    attempts,
                    errors,
                },
                false => Happened::DeliveryFailed {
                    channel,
                    kind,
                    attempts,
                    errors,
                },
            };
            self.event(incident, now_ms, what);
        }
    }
}

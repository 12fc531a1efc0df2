//! Delivery workers: one task per channel delivers that channel's notifications in the order
//! they were queued (retrying as the channel's policy says) and reports each outcome back to
//! the service's loop, which records it and removes the outbox entry. A slow channel holds up
//! only itself. On shutdown a delivery in flight is abandoned: it stays in the outbox and is
//! sent on start.
//!
//! In an HA pair each notification first waits for the pair's clearance (`pair`): the leader
//! delivers it unless the peer's log shows it delivered; a follower holds it until the leader's
//! log covers it, or until it leads itself.

use super::book::Outgoing;
use super::notify::{Channels, DeliveryReport, Notification};
use crate::pair::log::DeliveryKey;
use crate::pair::{Clearance, Pair};
use crate::tasks::{Role, TaskTree};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How one queued notification's delivery went.
pub(super) struct Delivered {
    pub(super) outgoing: Outgoing,
    pub(super) outcome: Outcome,
}

pub(super) enum Outcome {
    /// Delivered here, or given up on.
    Here(DeliveryReport),
    /// The pair's other collector delivered it (`true`), or was left to.
    HandedToPeer { by_peer: bool },
}

/// The keys the pair matches a notification by: one per alert in it (see `pair::log`).
fn delivery_keys(channel: &str, notification: &Notification) -> Vec<DeliveryKey> {
    let kind = format!("{:?}", notification.kind);
    if notification.alerts.is_empty() {
        return vec![DeliveryKey::of(&[channel, &kind, &notification.group])];
    }
    notification
        .alerts
        .iter()
        .map(|alert| {
            let state = format!("{:?}", alert.state);
            DeliveryKey::of(&[channel, &kind, alert.id.as_str(), &state])
        })
        .collect()
}

/// The channel workers' queues.
pub(super) struct Workers {
    queues: BTreeMap<String, mpsc::UnboundedSender<Outgoing>>,
}

impl Workers {
    /// Starts one worker per channel in `tasks`; each reports to `done`.
    pub(super) fn start(
        channels: &Arc<Channels>,
        pair: Option<Arc<Pair>>,
        tasks: &TaskTree,
        done: &mpsc::UnboundedSender<Delivered>,
    ) -> Self {
        let mut queues = BTreeMap::new();
        for config in channels.configs() {
            let (tx, rx) = mpsc::unbounded_channel();
            let delivering = deliver_in_order(
                config.name.clone(),
                channels.clone(),
                pair.clone(),
                rx,
                done.clone(),
                tasks.shutdown().clone(),
            );
            tasks.spawn("alert-delivery", Role::Helper, async move {
                delivering.await;
                Ok(())
            });
            queues.insert(config.name.clone(), tx);
        }
        Self { queues }
    }

    /// Hands each notification to its channel's worker. Only for durable notifications: see
    /// the service's invariants.
    pub(super) fn dispatch(&self, outbox: Vec<Outgoing>) {
        for outgoing in outbox {
            match self.queues.get(&outgoing.channel) {
                Some(worker) => {
                    let _ = worker.send(outgoing);
                }
                None => tracing::warn!(
                    channel = %outgoing.channel,
                    "notification for a channel no longer configured; dropped"
                ),
            }
        }
    }
}

/// Delivers one channel's notifications in the order they were queued.
async fn deliver_in_order(
    channel: String,
    channels: Arc<Channels>,
    pair: Option<Arc<Pair>>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    done: mpsc::UnboundedSender<Delivered>,
    shutdown: CancellationToken,
) {
    loop {
        let outgoing = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = queue.recv() => match next {
                Some(outgoing) => outgoing,
                None => return,
            },
        };
        // One span per notification, with the alerts it tells about (exported with
        // `[traces]`).
        let alerts: Vec<String> = outgoing
            .notification
            .alerts
            .iter()
            .map(|a| a.id.to_string())
            .collect();
        let span = tracing::info_span!(
            "notification_delivery",
            channel = %channel,
            kind = ?outgoing.notification.kind,
            alert_ids = %alerts.join(","),
            group = %outgoing.notification.group,
        );
        let keys = delivery_keys(&channel, &outgoing.notification);
        if let Some(pair) = &pair {
            let at_ms = outgoing.notification.at_ms;
            let clearance = tokio::select! {
                _ = shutdown.cancelled() => return,
                clearance = pair.clear(&keys, at_ms) => clearance,
            };
            let by_peer = match clearance {
                Clearance::Deliver => None,
                Clearance::DeliveredByPeer => Some(true),
                Clearance::LeftToPeer => Some(false),
            };
            if let Some(by_peer) = by_peer {
                let outcome = Outcome::HandedToPeer { by_peer };
                let _ = done.send(Delivered { outgoing, outcome });
                continue;
            }
        }
        let report = tokio::select! {
            _ = shutdown.cancelled() => return,
            report = channels.deliver(&channel, &outgoing.notification).instrument(span) => report,
        };
        if let Some(pair) = &pair
            && report.delivered
        {
            pair.delivered(&keys, outgoing.notification.at_ms);
        }
        let outcome = Outcome::Here(report);
        let _ = done.send(Delivered { outgoing, outcome });
    }
}

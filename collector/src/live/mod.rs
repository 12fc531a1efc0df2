//! The live stream's hub: what `GET /api/v1/stream` connections receive, fed from ingest
//! (stored batches), alerting (alert changes) and the anomaly watch (new anomalies).
//!
//! Design:
//! - The hub is a [`BatchObserver`]: on the ingest path, under the node's lock, it only sends
//!   the stored batch's `Arc` into a [`broadcast`] channel (no copy, no per-connection work).
//!   Each connection holds a receiver ([`Feed`]) and does its own matching on its own task
//!   ([`subscriptions`]: a series' match decision is cached per connection, so routing a
//!   sample is one hash lookup after the series' first). A connection that reads too slowly
//!   falls behind the channel's [`CHANNEL_BATCHES`]: its receiver skips what was overwritten
//!   and the connection is told how many messages it lost (`lagged`) instead of ingest waiting
//!   or memory growing.
//! - Alert changes and anomaly verdicts come from one task per hub ([`LiveHub::run`],
//!   `events.rs`), not per connection: the alert book publishes snapshots but no notification,
//!   so the snapshot is compared every [`EVENT_POLL`] (pointer-equal snapshots cost nothing);
//!   the anomaly watch judges on its own thread, so the series of recent batches are checked
//!   for a verdict that turned anomalous on the same tick. Events go out on a second
//!   broadcast channel.
//! - Limits, fixed here rather than configured: [`MAX_CONNECTIONS`] connections at once, and
//!   per connection `subscriptions::MAX_SUBSCRIPTIONS` subscriptions and
//!   `outbox::MAX_PENDING_POINTS` points awaiting a frame. When the hub's task ends (shutdown),
//!   every connection is told to close.
//!
//! Knows nothing of WebSockets or JSON: `http/stream.rs` serves a [`Feed`] on a socket.

mod events;
mod outbox;
mod subscriptions;

use crate::alerting::handle::Alerting;
use crate::alerting::view::AlertView;
use crate::anomaly_watch::{AnomalyWatch, LatestVerdict};
use crate::catalog::SeriesCatalog;
use crate::ingest::{BatchObserver, StoredBatch};
use crate::storage::{Sample, SeriesMeta};
use events::{AlertChanges, AnomalyTransitions};
use outbox::Outbox;
pub use outbox::{Delivery, FLUSH_INTERVAL, MAX_PENDING_POINTS, SeriesPoints};
use std::sync::Arc;
use std::time::Duration;
use subscriptions::Subscriptions;
pub use subscriptions::{MAX_ID_BYTES, MAX_SELECTORS, MAX_SUBSCRIPTIONS, SubscribeError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

/// Stored batches kept for connections that have not read them yet. A connection further
/// behind loses the oldest and is told so.
pub const CHANNEL_BATCHES: usize = 4096;

/// Alert and anomaly events kept for connections that have not read them yet.
const CHANNEL_EVENTS: usize = 1024;

/// Most live connections at once, over all clients: each costs a task and a hash lookup per
/// stored sample. A dashboard page holds one.
pub const MAX_CONNECTIONS: usize = 256;

/// How often alert changes and new anomaly verdicts are looked for.
pub const EVENT_POLL: Duration = Duration::from_secs(1);

/// Something every connection is told, whatever it subscribed to.
#[derive(Debug)]
pub enum LiveEvent {
    /// An alert whose state changed (or a new one), as it now is.
    Alert(Box<AlertView>),
    /// A series whose live verdict became anomalous.
    Anomaly {
        series: Arc<SeriesMeta>,
        verdict: LatestVerdict,
    },
}

/// Why a connection was not opened.
#[derive(Debug, thiserror::Error)]
#[error("the collector already serves {MAX_CONNECTIONS} live connections; try again later")]
pub struct TooManyConnections;

/// The hub: see the module header.
pub struct LiveHub {
    catalog: Arc<SeriesCatalog>,
    samples: broadcast::Sender<Arc<Vec<Sample>>>,
    events: broadcast::Sender<Arc<LiveEvent>>,
    slots: Arc<Semaphore>,
    /// Cancelled when the hub's task ends: connections close.
    closing: CancellationToken,
}

impl LiveHub {
    pub fn new(catalog: Arc<SeriesCatalog>) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            samples: broadcast::Sender::new(CHANNEL_BATCHES),
            events: broadcast::Sender::new(CHANNEL_EVENTS),
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            closing: CancellationToken::new(),
        })
    }

    /// A new connection's feed, holding one of the [`MAX_CONNECTIONS`] slots until dropped.
    pub fn connect(&self) -> Result<Feed, TooManyConnections> {
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| TooManyConnections)?;
        Ok(Feed {
            samples: self.samples.subscribe(),
            events: self.events.subscribe(),
            subscriptions: Subscriptions::default(),
            outbox: Outbox::default(),
            catalog: self.catalog.clone(),
            closing: self.closing.clone(),
            _slot: slot,
        })
    }

    /// Looks for alert changes and new anomalies every [`EVENT_POLL`] until `shutdown`, then
    /// closes every connection.
    pub async fn run(
        self: Arc<Self>,
        alerting: Option<Alerting>,
        watch: Option<Arc<AnomalyWatch>>,
        shutdown: CancellationToken,
    ) {
        let mut alerts = alerting.map(|a| (AlertChanges::new(a.view()), a));
        let mut anomalies = watch.map(|w| (AnomalyTransitions::default(), w));
        let mut stored = anomalies.as_ref().map(|_| self.samples.subscribe());
        let mut tick = tokio::time::interval(EVENT_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => self.publish(&mut alerts, &mut anomalies),
                batch = next_batch(&mut stored) => {
                    if let (Some(batch), Some((transitions, _))) = (batch, &mut anomalies) {
                        transitions.stored(&batch);
                    }
                }
            }
        }
        self.closing.cancel();
    }

    /// Sends the events found since the last tick.
    fn publish(
        &self,
        alerts: &mut Option<(AlertChanges, Alerting)>,
        anomalies: &mut Option<(AnomalyTransitions, Arc<AnomalyWatch>)>,
    ) {
        if let Some((changes, alerting)) = alerts {
            for alert in changes.changed(alerting.view()) {
                // An error only says no connection is listening.
                let _ = self
                    .events
                    .send(Arc::new(LiveEvent::Alert(Box::new(alert))));
            }
        }
        if let Some((transitions, watch)) = anomalies {
            for (id, verdict) in transitions.judge(|id| watch.latest(id)) {
                let Some(series) = self.catalog.get(id) else {
                    continue;
                };
                let _ = self
                    .events
                    .send(Arc::new(LiveEvent::Anomaly { series, verdict }));
            }
        }
    }
}

/// The next stored batch of `receiver` (`None` for a skipped stretch); never, without one.
async fn next_batch(
    receiver: &mut Option<broadcast::Receiver<Arc<Vec<Sample>>>>,
) -> Option<Arc<Vec<Sample>>> {
    match receiver {
        Some(receiver) => match receiver.recv().await {
            Ok(batch) => Some(batch),
            Err(broadcast::error::RecvError::Lagged(_)) => None,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

impl BatchObserver for LiveHub {
    fn stored(&self, batch: &StoredBatch) {
        // Without receivers the batch is not kept; with them, only its `Arc` is.
        if self.samples.receiver_count() > 0 {
            let _ = self.samples.send(batch.samples.clone());
        }
    }
}

/// What a connection's [`Feed::recv`] got.
#[derive(Debug)]
pub enum Received {
    /// Stored samples, routed into the outbox (maybe none matched).
    Routed,
    Event(Arc<LiveEvent>),
    /// This many messages were lost because the connection fell behind.
    Lagged(u64),
}

/// One connection's side of the hub: its subscriptions, its receivers, the points routed to
/// it and not yet sent, its slot.
pub struct Feed {
    samples: broadcast::Receiver<Arc<Vec<Sample>>>,
    events: broadcast::Receiver<Arc<LiveEvent>>,
    subscriptions: Subscriptions,
    outbox: Outbox,
    catalog: Arc<SeriesCatalog>,
    closing: CancellationToken,
    _slot: OwnedSemaphorePermit,
}

/// Either of a feed's channels' messages.
enum Either {
    Batch(Arc<Vec<Sample>>),
    Event(Arc<LiveEvent>),
}

impl Feed {
    /// Cancelled when the collector shuts down.
    pub fn closing(&self) -> CancellationToken {
        self.closing.clone()
    }

    /// Adds or replaces the subscription `id`; points of its previous selectors not yet sent
    /// are dropped.
    pub fn subscribe(&mut self, id: &str, selectors: &[String]) -> Result<(), SubscribeError> {
        let slot = self.subscriptions.subscribe(id, selectors)?;
        self.outbox.forget(slot);
        Ok(())
    }

    /// Ends the subscription `id`; `false` when there was none.
    pub fn unsubscribe(&mut self, id: &str) -> bool {
        let slot = self.subscriptions.unsubscribe(id);
        slot.inspect(|&slot| self.outbox.forget(slot)).is_some()
    }

    /// Waits for the next stored batch (routed to the subscriptions) or event. Cancel-safe.
    pub async fn recv(&mut self) -> Received {
        use broadcast::error::RecvError;
        let received = tokio::select! {
            batch = self.samples.recv() => batch.map(Either::Batch),
            event = self.events.recv() => event.map(Either::Event),
        };
        match received {
            Ok(Either::Batch(batch)) => {
                (self.subscriptions).route(&batch, &self.catalog, &mut self.outbox);
                Received::Routed
            }
            Ok(Either::Event(event)) => Received::Event(event),
            Err(RecvError::Lagged(n)) => Received::Lagged(n),
            // The hub lives as long as the collector; closing is signalled by `closing`.
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }

    /// When the routed points should be sent (see `outbox.rs`); `None` when there are none.
    pub fn due(&self) -> Option<std::time::Instant> {
        self.outbox.due()
    }

    /// The routed points, per subscription, to send now.
    pub fn take(&mut self) -> Vec<Delivery> {
        let subscriptions = &self.subscriptions;
        (self.outbox).take(|slot| subscriptions.id(slot).map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MetricKind, SeriesId};
    use hcmon_common::Labels;

    fn hub() -> Arc<LiveHub> {
        let series = SeriesMeta {
            id: SeriesId(1),
            labels: Labels::new("up", []).unwrap(),
            kind: MetricKind::Gauge,
            help: String::new(),
        };
        LiveHub::new(Arc::new(SeriesCatalog::new(vec![series])))
    }

    fn store(hub: &LiveHub, timestamp_ms: i64) {
        let sample = Sample {
            series: SeriesId(1),
            timestamp_ms,
            value: 1.0,
        };
        let batch = StoredBatch {
            node: None,
            samples: Arc::new(vec![sample]),
        };
        hub.stored(&batch);
    }

    #[tokio::test]
    async fn a_feed_gets_what_it_selects_and_is_told_what_it_lost_when_behind() {
        let hub = hub();
        let mut feed = hub.connect().unwrap();
        feed.subscribe("up", &["up".into()]).unwrap();
        store(&hub, 1);
        assert!(matches!(feed.recv().await, Received::Routed));
        let sent = feed.take();
        assert_eq!(
            (sent[0].id.as_str(), &sent[0].series[0].1),
            ("up", &vec![(1, 1.0)])
        );
        for t in 0..CHANNEL_BATCHES as i64 + 10 {
            store(&hub, t);
        }
        assert!(matches!(feed.recv().await, Received::Lagged(10)));
    }

    #[tokio::test]
    async fn connections_are_capped_and_closed_when_the_hub_stops() {
        let hub = hub();
        let feeds: Vec<Feed> = (0..MAX_CONNECTIONS)
            .map(|_| hub.connect().unwrap())
            .collect();
        assert!(hub.connect().is_err());
        let closing = feeds[0].closing();
        drop(feeds);
        let _feed = hub.connect().unwrap();
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        hub.clone().run(None, None, shutdown).await;
        assert!(closing.is_cancelled());
    }
}

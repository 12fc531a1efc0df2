//! One connection's routed points awaiting a frame, grouped per subscription and series.
//!
//! Points go out as soon as possible but at most once per [`FLUSH_INTERVAL`]: an idle
//! connection gets a stored sample at once, a busy one gets one frame per subscription per
//! interval holding everything routed meanwhile, so frames stay few however fast ingest is.
//! [`MAX_PENDING_POINTS`] bounds what waits.

use crate::storage::{SeriesId, SeriesMeta};
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shortest time between two flushes of one connection.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Points one connection holds before they go out without waiting for the interval.
pub const MAX_PENDING_POINTS: usize = 100_000;

/// A series' pending points: `(Unix ms, value)`, in stored order.
pub type SeriesPoints = (Arc<SeriesMeta>, Vec<(i64, f64)>);

/// What one subscription is sent in one frame.
#[derive(Debug)]
pub struct Delivery {
    /// The subscription's id.
    pub id: String,
    pub series: Vec<SeriesPoints>,
}

/// See the module header.
#[derive(Default)]
pub struct Outbox {
    /// Per subscription slot, per series.
    pending: FxHashMap<usize, FxHashMap<SeriesId, SeriesPoints>>,
    points: usize,
    flushed: Option<Instant>,
}

impl Outbox {
    pub(super) fn push(&mut self, slot: usize, series: &Arc<SeriesMeta>, at_ms: i64, value: f64) {
        let (_, points) = (self.pending.entry(slot).or_default())
            .entry(series.id)
            .or_insert_with(|| (series.clone(), Vec::new()));
        points.push((at_ms, value));
        self.points += 1;
    }

    /// Drops what waits for `slot` (its subscription ended or changed).
    pub(super) fn forget(&mut self, slot: usize) {
        if let Some(series) = self.pending.remove(&slot) {
            self.points -= series.values().map(|(_, p)| p.len()).sum::<usize>();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.points == 0
    }

    /// When the pending points should go out: `None` when there are none.
    pub fn due(&self) -> Option<Instant> {
        if self.is_empty() {
            return None;
        }
        match self.flushed {
            Some(flushed) if self.points < MAX_PENDING_POINTS => Some(flushed + FLUSH_INTERVAL),
            _ => Some(Instant::now()),
        }
    }

    /// Everything pending, per subscription (`id_of` names a slot's subscription), now.
    pub(super) fn take(&mut self, id_of: impl Fn(usize) -> Option<String>) -> Vec<Delivery> {
        self.flushed = Some(Instant::now());
        self.points = 0;
        let mut deliveries: Vec<Delivery> = (self.pending.drain())
            .filter_map(|(slot, series)| {
                Some(Delivery {
                    id: id_of(slot)?,
                    series: series.into_values().collect(),
                })
            })
            .collect();
        deliveries.sort_by(|a, b| a.id.cmp(&b.id));
        deliveries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MetricKind;
    use hcmon_common::Labels;

    fn series(id: u64) -> Arc<SeriesMeta> {
        Arc::new(SeriesMeta {
            id: SeriesId(id),
            labels: Labels::new("up", []).unwrap(),
            kind: MetricKind::Gauge,
            help: String::new(),
        })
    }

    #[test]
    fn the_first_points_go_at_once_then_at_most_once_per_interval() {
        let mut outbox = Outbox::default();
        assert_eq!(outbox.due(), None);
        outbox.push(0, &series(1), 10, 1.0);
        assert!(outbox.due().unwrap() <= Instant::now());
        let sent = outbox.take(|slot| Some(slot.to_string()));
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].series[0].1, vec![(10, 1.0)]);
        outbox.push(0, &series(1), 20, 2.0);
        outbox.push(0, &series(1), 30, 3.0);
        outbox.push(1, &series(2), 30, 3.0);
        let due = outbox.due().unwrap();
        assert!(due > Instant::now() && due <= Instant::now() + FLUSH_INTERVAL);
        let sent = outbox.take(|slot| Some(slot.to_string()));
        let ids: Vec<_> = sent.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["0", "1"]);
        assert_eq!(sent[0].series[0].1, vec![(20, 2.0), (30, 3.0)]);
    }

    #[test]
    fn a_full_outbox_is_due_now_and_a_forgotten_slot_sends_nothing() {
        let mut outbox = Outbox::default();
        outbox.take(|_| None);
        for i in 0..MAX_PENDING_POINTS as i64 {
            outbox.push(3, &series(1), i, 0.0);
        }
        assert!(outbox.due().unwrap() <= Instant::now());
        outbox.forget(3);
        assert!(outbox.is_empty() && outbox.due().is_none());
        outbox.push(4, &series(1), 1, 0.0);
        assert!(
            outbox.take(|_| None).is_empty(),
            "no subscription in slot 4"
        );
    }
}

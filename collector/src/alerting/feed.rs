//! Ingest's side of alerting: [`AlertFeed`] picks, on the ingest path after the durable write,
//! the samples some rule watches out of each stored batch and queues them for the service's
//! loop. Cheap on the ingest path: one cached lookup per run of a series' samples with a recent
//! one, and never a wait (the queue is unbounded; the loop drains it whole each turn).

use super::evaluate::{RuleSet, SampleRule};
use crate::catalog::SeriesCatalog;
use crate::clock::Clock;
use crate::ingest::{BatchObserver, StoredBatch};
use crate::storage::{Sample, SeriesId, SeriesMeta};
use rustc_hash::FxHashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::mpsc;

/// A series that alert rules watch, with the rules that watch it.
pub(super) struct Watched {
    pub(super) meta: Arc<SeriesMeta>,
    pub(super) rules: Vec<SampleRule>,
}

/// One stored batch's watched samples, for the service's loop.
pub(super) struct Arrival {
    /// The agent that sent the batch; `None` for remote write.
    pub(super) node: Option<String>,
    /// When the feed saw it, for the evaluation-delay metric.
    pub(super) at: Instant,
    /// Each watched sample: its series, timestamp and value.
    pub(super) samples: Vec<(Arc<Watched>, i64, f64)>,
}

/// Picks the samples some rule watches out of each stored batch.
pub struct AlertFeed {
    rules: Arc<RuleSet>,
    catalog: Arc<SeriesCatalog>,
    /// Series → the rules watching it (`None`: no rule does).
    watched: RwLock<FxHashMap<SeriesId, Option<Arc<Watched>>>>,
    arrivals: mpsc::UnboundedSender<Arrival>,
    clock: Clock,
    max_lag_ms: i64,
}

impl AlertFeed {
    /// A feed for `rules`; samples older than `max_lag_ms` when they arrive are left out.
    pub(super) fn new(
        rules: Arc<RuleSet>,
        catalog: Arc<SeriesCatalog>,
        arrivals: mpsc::UnboundedSender<Arrival>,
        clock: Clock,
        max_lag_ms: i64,
    ) -> Self {
        Self {
            rules,
            catalog,
            watched: RwLock::default(),
            arrivals,
            clock,
            max_lag_ms,
        }
    }

    fn lookup(&self, id: SeriesId) -> Option<Arc<Watched>> {
        if let Some(known) = self
            .watched
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return known.clone();
        }
        let found = self.catalog.get(id).and_then(|meta| {
            let rules = self.rules.sample_rules(&meta.labels);
            (!rules.is_empty()).then(|| Arc::new(Watched { meta, rules }))
        });
        self.watched
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, found.clone());
        found
    }
}

impl BatchObserver for AlertFeed {
    /// Takes a batch that was just made durable; `node` is the agent that sent it.
    fn stored(&self, batch: &StoredBatch) {
        let (node, samples) = (batch.node.as_deref(), &batch.samples[..]);
        let now = (self.clock)();
        let mut picked = Vec::new();
        // Back-filled history is stored, not alerted on: alerts are about now. A run with
        // nothing recent is not looked up at all (a back-fill's every run).
        let recent = |s: &&Sample| now - s.timestamp_ms <= self.max_lag_ms;
        for run in samples.chunk_by(|a, b| a.series == b.series) {
            if !run.iter().any(|s| recent(&s)) {
                continue;
            }
            let Some(watched) = self.lookup(run[0].series) else {
                continue;
            };
            for s in run.iter().filter(recent) {
                picked.push((watched.clone(), s.timestamp_ms, s.value));
            }
        }
        // A batch from an agent counts even without watched samples: it says the agent lives.
        if picked.is_empty() && node.is_none() {
            return;
        }
        let _ = self.arrivals.send(Arrival {
            node: node.map(str::to_owned),
            at: Instant::now(),
            samples: picked,
        });
    }
}

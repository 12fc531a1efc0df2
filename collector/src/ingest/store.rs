//! The store step of an agent batch: its new series created, its samples written to the log
//! and the head, its observers told. Everything before (validation) and after (the sync and
//! the ack) stays on the batch's async task.
//!
//! A batch runs its store on the blocking pool, unless it can run it on the async task without
//! waiting for anyone ([`StoreJob::try_inline`]): a small batch that creates no series, while
//! the observers have room and the engine's append would not wait. Those are almost every live
//! batch and most of a back-fill's, and the hand-over they skip (to a pool thread and back,
//! each a wake-up of a parked thread) cost more CPU than their store itself.

use super::observer::Observers;
use super::stages::{BatchStage, StageClock};
use crate::catalog::{ResolveError, SeriesCaps, SeriesCatalog, SeriesDefinition};
use crate::storage::{AppendOutcome, Logged, NodeRecord, Sample, SeriesId, Tsdb};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// A batch stored inline holds its async runtime thread for the whole store, which grows with
/// its samples: past this many (a live agent's batch has a few hundred) it goes to the blocking
/// pool, where it holds no one.
const INLINE_SAMPLES: usize = 2_048;

/// What the store step of one batch needs, moved to wherever it runs.
pub(super) struct StoreJob {
    pub tsdb: Arc<Tsdb>,
    pub catalog: Arc<SeriesCatalog>,
    pub observers: Observers,
    pub node: String,
    pub caps: SeriesCaps,
    /// The stream's wire ids of the series to create, with their definitions, in order.
    pub create: Vec<u32>,
    pub defs: Vec<SeriesDefinition>,
    /// Wire id → series id, for every series of the batch not in `create`.
    pub known: HashMap<u32, SeriesId>,
    /// (wire id, timestamp, value), grouped by series.
    pub samples: Vec<(u32, i64, f64)>,
    /// The node's record once the batch is stored.
    pub updated: NodeRecord,
    /// A resend: its samples are stored already.
    pub resend: bool,
    pub clock: StageClock,
    pub lap: Instant,
    /// The back-fill lane the batch holds, if it is a back-filled one: held, not read, and
    /// released when the store ends.
    pub _lane: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// What the store step did: every series' id, the append (none for a resend) with the log
/// record to wait for, the node's updated record, and when it ended.
pub(super) struct Stored {
    pub known: HashMap<u32, SeriesId>,
    pub appended: Option<(AppendOutcome, Logged)>,
    pub updated: NodeRecord,
    pub done: Instant,
}

impl StoreJob {
    /// Stores the batch where it may wait (series creation, a checkpoint's cut, a full
    /// backlog of the engines): on the blocking pool.
    pub fn run(mut self: Box<Self>) -> Result<Stored, ResolveError> {
        let lap = self.clock.lap(BatchStage::Queue, self.lap);
        let ids = self.catalog.resolve(&self.tsdb, &self.defs, self.caps)?;
        let lap = self.clock.lap(BatchStage::Resolve, lap);
        self.known.extend(self.create.drain(..).zip(ids));
        let samples = self.samples();
        let appended = if self.resend {
            None
        } else {
            let sequence = self.updated.sequence();
            Some(
                self.tsdb
                    .append_unsynced(Some((&self.node, &sequence)), &samples)?,
            )
        };
        Ok(self.told(appended, samples, lap))
    }

    /// Stores the batch on the calling async task if nothing on the way would wait; gives the
    /// job back, untouched, otherwise.
    pub fn try_inline(self: Box<Self>) -> Result<Result<Stored, ResolveError>, Box<Self>> {
        if !self.create.is_empty()
            || self.samples.len() > INLINE_SAMPLES
            || !self.observers.have_room(self.samples.len())
        {
            return Err(self);
        }
        let lap = self.clock.lap(BatchStage::Queue, self.lap);
        let lap = self.clock.lap(BatchStage::Resolve, lap);
        if self.resend {
            return Ok(Ok(self.told(None, Vec::new(), lap)));
        }
        let samples = self.samples();
        let sequence = self.updated.sequence();
        match self
            .tsdb
            .try_append_unsynced(Some((&self.node, &sequence)), &samples)
        {
            Ok(Some(appended)) => Ok(Ok(self.told(Some(appended), samples, lap))),
            Ok(None) => Err(self),
            Err(error) => Ok(Err(error.into())),
        }
    }

    /// The batch's samples under their series ids (every wire id is known by now: validation
    /// refused samples of undefined series).
    fn samples(&self) -> Vec<Sample> {
        let mut current: Option<(u32, SeriesId)> = None;
        self.samples
            .iter()
            .map(|&(wire, timestamp_ms, value)| {
                let series = match current {
                    Some((w, id)) if w == wire => id,
                    _ => {
                        let id = self.known[&wire]; // validate checked every id
                        current = Some((wire, id));
                        id
                    }
                };
                Sample {
                    series,
                    timestamp_ms,
                    value,
                }
            })
            .collect()
    }

    /// Tells the observers of an appended batch, under the node's lock so they see a node's
    /// batches in stored order, and ends the step.
    fn told(
        self: Box<Self>,
        appended: Option<(AppendOutcome, Logged)>,
        samples: Vec<Sample>,
        lap: Instant,
    ) -> Stored {
        let done = match appended {
            Some(_) => {
                let lap = self.clock.lap(BatchStage::Append, lap);
                self.observers.stored(Some(&self.node), samples);
                self.clock.lap(BatchStage::Observe, lap)
            }
            None => Instant::now(),
        };
        let StoreJob { known, updated, .. } = *self;
        Stored {
            known,
            appended,
            updated,
            done,
        }
    }
}

//! Ingest: registration, per-stream series interning, validation, the durable write and the ack.
//!
//! Transport-free: `grpc.rs` decodes requests and maps [`IngestError`] to statuses; the logic
//! here knows nothing of tonic.
//!
//! Invariants:
//! - A batch's sequence number is acked only after [`Tsdb::append`] returned, i.e. it is durable.
//! - Per node, batches are processed one at a time under the node's lock, so the "last durable
//!   sequence" check and the write cannot interleave even if an agent reconnects while its old
//!   stream is still draining. Under the same lock, a stream is checked to belong to the node's
//!   newest registration: once the node registered again, batches of older streams are refused,
//!   so only one stream at a time moves the node's sequence.
//! - A batch is stored only if its sequence number follows the node's last durable one, or it
//!   declares the numbers between as skipped (counted as lost); any other jump is refused, never
//!   acked (`sequence.rs`).
//! - A batch with a sequence at or below the node's last durable one, but not below a declared
//!   skip, is a resend: its series definitions are honoured (a fresh stream needs them) but its
//!   samples are not stored again. Below a declared skip it was never stored, so it is refused.
//! - A back-filled batch (newest sample over [`BACKFILL_AFTER_MS`] old) waits for one of
//!   `[limits] backfill_stores` lanes before it takes its node's lock, and holds the lane until
//!   its store ends; live batches never wait for a lane.

mod error;
mod events;
mod forget;
pub mod grpc;
mod limits;
mod observer;
mod otlp;
pub mod otlp_grpc;
mod peer;
mod remote_write;
mod sequence;
mod stages;
mod store;
/// Crate-visible for the fuzz targets' facade, `src/fuzzing.rs`.
pub(crate) mod validate;

#[cfg(test)]
mod creation_tests;

pub use error::{IngestError, Refusal};
pub use forget::{ForgetError, ForgetGate, Forgotten, Idle, SeriesFate};
pub use limits::IngestLimits;
pub use observer::{BatchObserver, Observers, StoredBatch};
pub use otlp::OtlpOutcome;
pub use peer::PeerIdentity;
pub use remote_write::{Protocol, RemoteWriteError, RemoteWriteOutcome};

/// Samples arriving later than this after their timestamp were delivered from a backlog (an
/// agent's spool after an outage, a remote-write back-fill): late, not bad. An agent batch
/// whose newest sample is this old is stored in one of the back-fill lanes
/// (`[limits] backfill_stores`).
pub const BACKFILL_AFTER_MS: i64 = 5 * 60_000;

use crate::catalog::{ResolveError, SeriesCaps, SeriesCatalog, SeriesDefinition};
use crate::clock::Clock;
use crate::storage::{HostInfo, NodeRecord, SeriesId, Tsdb};
use crate::telemetry::CollectorMetrics;
use events::{BatchRejected, BatchesLost};
use hcmon_common::Secret;
use hcmon_proto::v1::{Batch, Limits, RegisterRequest, RegisterResponse};
use sequence::Placement;
use stages::{BatchAge, BatchStage, StageClock};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use store::{StoreJob, Stored};
use tokio_util::sync::CancellationToken;
pub use validate::TargetLabels;
use validate::{Interned, validate, validate_registration};

struct Session {
    node: String,
    /// The `job` and `instance` labels this registration asked for.
    target: TargetLabels,
}

pub struct IngestService {
    tsdb: Arc<Tsdb>,
    catalog: Arc<SeriesCatalog>,
    metrics: Arc<CollectorMetrics>,
    limits: IngestLimits,
    agent_token: Secret,
    /// The collector's CA, when TLS is on: what revoked certificates are checked against.
    enrollment: Option<Arc<crate::pki::Enrollment>>,
    clock: Clock,
    /// Per-node state, each behind its own async lock (see the module invariants).
    nodes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<NodeRecord>>>>,
    /// Session id → who registered it. At most one session per node: the newest.
    sessions: Mutex<HashMap<String, Session>>,
    /// Open streams per node (a node without any has no entry), capped by the `[limits]`
    /// stream caps.
    streams: Mutex<HashMap<String, Vec<OpenStream>>>,
    /// Gives each stream its id in `streams`.
    next_stream: AtomicU64,
    /// Remote-write series by a digest of their raw labels, so known series skip label
    /// parsing (see `remote_write/known.rs`).
    remote_write_cache: Arc<std::sync::RwLock<remote_write::known::KnownSeries>>,
    labels_digester: remote_write::known::LabelsDigester,
    /// Running totals of OTLP delta series (see `ingest/otlp.rs`).
    otlp_deltas: Mutex<hcmon_common::otlp::DeltaSums>,
    /// Shared with the collector's own writers (see `forget.rs`).
    forget_gate: Arc<ForgetGate>,
    /// Told about every stored batch (alert rules, live anomaly detection).
    observers: Observers,
    /// Nodes without an open stream → since when (collector start for nodes not seen since).
    disconnected: Mutex<HashMap<String, i64>>,
    /// One permit per back-fill lane (`[limits] backfill_stores`), held while a back-filled
    /// batch is stored.
    backfill: Arc<tokio::sync::Semaphore>,
    /// Stage timers of live and back-filled batches, in [`BatchAge`] order.
    stages: [StageClock; 2],
}

/// The state of one open stream: its node, the session it was opened with, and the series it
/// interned.
pub struct IngestStream {
    service: Arc<IngestService>,
    id: u64,
    node: String,
    target: TargetLabels,
    session: String,
    interned: HashMap<u32, Interned>,
    replaced: CancellationToken,
    revoked: CancellationToken,
}

/// An open stream as the stream caps count it.
struct OpenStream {
    id: u64,
    session: String,
    /// Cancelled when a stream of a newer registration of the node opens: this one can no
    /// longer store, so it is closed rather than counted.
    replaced: CancellationToken,
    /// Cancelled when the node's certificate is revoked.
    revoked: CancellationToken,
}

impl IngestStream {
    /// Cancelled once a stream of the node's newer registration has opened; the transport
    /// then closes this one with [`IngestError::SessionReplaced`].
    pub fn replaced(&self) -> CancellationToken {
        self.replaced.clone()
    }

    /// Cancelled once the node's certificate is revoked; the transport then closes this stream
    /// with [`IngestError::Revoked`].
    pub fn revoked(&self) -> CancellationToken {
        self.revoked.clone()
    }
}

impl Drop for IngestStream {
    fn drop(&mut self) {
        let mut streams = lock(&self.service.streams);
        if let Some(open) = streams.get_mut(&self.node) {
            open.retain(|s| s.id != self.id);
            if open.is_empty() {
                streams.remove(&self.node);
                lock(&self.service.disconnected).insert(self.node.clone(), (self.service.clock)());
            }
        }
        self.service
            .metrics
            .connected_agents
            .set(streams.len() as i64);
        tracing::info!(node = %self.node, "agent stream closed");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What `/api/v1/agents` shows of a node.
///
/// Not the spool epoch: with the node name, it is what a stream needs to pass for that node's
/// spool, so it stays between the agent and the collector.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeStatus {
    pub node: String,
    pub connected: bool,
    pub agent_version: String,
    pub host: HostInfo,
    /// Unix milliseconds of the last registration.
    pub registered_at_ms: i64,
    /// Unix milliseconds of the last durable batch.
    pub last_batch_at_ms: i64,
    pub last_durable_seq: u64,
    /// Batches the node's agents declared skipped: they never reached the collector.
    pub lost_batches: u64,
    /// The `job` and `instance` its series carry: from its newest registration since the
    /// collector started, else the defaults.
    #[serde(flatten)]
    pub target: TargetLabels,
}

/// What ingest admits: the limits on batches and series, and the agents' shared secret.
#[derive(Debug, Clone, Default)]
pub struct Admission {
    pub limits: IngestLimits,
    /// Empty: none is required.
    pub agent_token: Secret,
    /// The collector's CA, when TLS is on.
    pub enrollment: Option<Arc<crate::pki::Enrollment>>,
}

impl IngestService {
    pub fn new(
        tsdb: Arc<Tsdb>,
        catalog: Arc<SeriesCatalog>,
        nodes: Vec<(String, NodeRecord)>,
        metrics: Arc<CollectorMetrics>,
        admission: Admission,
        clock: Clock,
        observers: Observers,
    ) -> Arc<Self> {
        let Admission {
            limits,
            agent_token,
            enrollment,
        } = admission;
        let started = clock();
        let disconnected = nodes
            .iter()
            .map(|(name, _)| (name.clone(), started))
            .collect();
        let nodes = nodes
            .into_iter()
            .map(|(name, record)| (name, Arc::new(tokio::sync::Mutex::new(record))))
            .collect();
        metrics.series.set(catalog.len() as i64);
        let backfill = Arc::new(tokio::sync::Semaphore::new(limits.backfill_lanes()));
        let stages = StageClock::per_age(&metrics.batch_stage_seconds);
        Arc::new(Self {
            tsdb,
            catalog,
            metrics,
            limits,
            agent_token,
            enrollment,
            clock,
            nodes: Mutex::new(nodes),
            sessions: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            next_stream: AtomicU64::new(0),
            remote_write_cache: Default::default(),
            labels_digester: Default::default(),
            otlp_deltas: Mutex::new(hcmon_common::otlp::DeltaSums::new(otlp::MAX_DELTA_SERIES)),
            forget_gate: Default::default(),
            observers,
            disconnected: Mutex::new(disconnected),
            backfill,
            stages,
        })
    }

    /// Nodes whose agent has no open stream, with when the last one closed.
    pub fn disconnected_nodes(&self) -> Vec<(String, i64)> {
        lock(&self.disconnected)
            .iter()
            .map(|(n, t)| (n.clone(), *t))
            .collect()
    }

    /// The node's record, locked, and still the node's: a forgetting that removed it while
    /// this waited for the lock (see `forget.rs`) leaves an orphan, and a fresh one is taken,
    /// so a registration never revives a forgotten record.
    async fn lock_current_node(&self, name: &str) -> tokio::sync::OwnedMutexGuard<NodeRecord> {
        loop {
            let cell = self.node(name);
            let record = cell.clone().lock_owned().await;
            if lock(&self.nodes)
                .get(name)
                .is_some_and(|current| Arc::ptr_eq(current, &cell))
            {
                return record;
            }
        }
    }

    fn node(&self, name: &str) -> Arc<tokio::sync::Mutex<NodeRecord>> {
        lock(&self.nodes)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Counts and logs a refusal, handing the error back.
    fn reject(&self, node: &str, error: IngestError) -> IngestError {
        BatchRejected {
            node,
            error: &error,
        }
        .emit(&self.metrics);
        error
    }

    fn refused<T>(&self, node: &str, error: IngestError) -> Result<T, IngestError> {
        Err(self.reject(node, error))
    }

    fn series_caps(&self) -> SeriesCaps {
        SeriesCaps {
            per_node: self.limits.max_series_per_agent,
            total: self.limits.max_series,
        }
    }

    /// Handles `Register`: records the node and its spool epoch, opens a session.
    pub async fn register(
        &self,
        req: RegisterRequest,
        peer: &PeerIdentity,
    ) -> Result<RegisterResponse, IngestError> {
        if let Err(error) = validate_registration(&req) {
            // The refused name is in the error, shortened; it is no node of ours.
            return self.refused("", error);
        }
        let node = req.node_name.clone();
        let target = TargetLabels::new(&node, &req.job, &req.instance);
        if let Err(error) = peer.admit(&node, self.enrollment.as_deref()) {
            return self.refused(&node, error);
        }
        if !self.agent_token.is_empty() && req.token != self.agent_token.expose() {
            return self.refused(&node, IngestError::BadToken);
        }
        let mut record = self.lock_current_node(&node).await;
        let mut updated = record.clone();
        updated.set_sequence(sequence::registered(
            &record.sequence(),
            req.spool_epoch,
            req.first_seq,
        ));
        updated.agent_version = req.agent_version;
        let host = req.host.unwrap_or_default();
        updated.host = HostInfo {
            hostname: host.hostname,
            os_name: host.os_name,
            os_version: host.os_version,
            kernel_version: host.kernel_version,
            arch: host.arch,
            cpu_count: host.cpu_count,
            memory_total_bytes: host.memory_total_bytes,
            boot_time: host.boot_time,
        };
        updated.registered_at_ms = (self.clock)();
        let tsdb = self.tsdb.clone();
        let to_write = updated.clone();
        let name = node.clone();
        crate::tasks::blocking("ingest-register", move || tsdb.put_node(&name, &to_write))
            .await??;
        *record = updated;

        let session_id = crate::secure_random::hex::<16>()?;
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.node != node);
        let session = Session {
            node: node.clone(),
            target,
        };
        sessions.insert(session_id.clone(), session);
        self.forget_gate.registered(&node);
        tracing::info!(%node, spool_epoch = req.spool_epoch, last_durable_seq = record.last_durable_seq, "agent registered");
        Ok(RegisterResponse {
            session_id,
            last_durable_seq: record.last_durable_seq,
            limits: Some(self.wire_limits()),
        })
    }

    fn wire_limits(&self) -> Limits {
        let l = &self.limits;
        Limits {
            max_samples_per_batch: l.max_samples_per_batch as u32,
            max_series_per_agent: l.max_series_per_agent as u32,
            max_labels_per_series: l.max_labels_per_series as u32,
            max_label_value_len: l.max_label_value_len as u32,
            max_future_skew_ms: l.max_future_skew.as_millis() as i64,
            max_sample_age_ms: l.max_sample_age.as_millis() as i64,
        }
    }

    /// Opens a stream for a session returned by `register`, within the stream caps. The node's
    /// streams of older registrations are told to close and not counted: an agent that
    /// reconnects replaces its own dead streams rather than being refused because of them.
    pub fn open_stream(
        self: &Arc<Self>,
        session_id: Option<&str>,
        peer: &PeerIdentity,
    ) -> Result<IngestStream, IngestError> {
        let Some(session_id) = session_id else {
            return self.refused("", IngestError::MissingSession);
        };
        let (node, target) = match lock(&self.sessions).get(session_id) {
            Some(s) => (s.node.clone(), s.target.clone()),
            None => return self.refused("", IngestError::UnknownSession),
        };
        if let Err(error) = peer.admit(&node, self.enrollment.as_deref()) {
            return self.refused(&node, error);
        }
        let mut streams = lock(&self.streams);
        let own = streams.get(&node).map_or(&[][..], Vec::as_slice);
        let current = own.iter().filter(|s| s.session == session_id).count();
        let replaced = own.len() - current;
        let open = streams.values().map(Vec::len).sum::<usize>() - replaced;
        let over = if current >= self.limits.max_streams_per_node {
            Some((
                "limits.max_streams_per_node",
                self.limits.max_streams_per_node,
            ))
        } else if open >= self.limits.max_streams {
            Some(("limits.max_streams", self.limits.max_streams))
        } else {
            None
        };
        if let Some((key, limit)) = over {
            let reason = key.trim_start_matches("limits.");
            self.metrics
                .refused_requests
                .with_label_values(&["grpc", reason])
                .inc();
            let error = IngestError::TooManyStreams { node, key, limit };
            tracing::warn!(%error, "agent stream refused");
            return Err(error);
        }
        let own = streams.entry(node.clone()).or_default();
        for old in own.iter().filter(|s| s.session != session_id) {
            old.replaced.cancel();
        }
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let (replaced, revoked) = (CancellationToken::new(), CancellationToken::new());
        own.push(OpenStream {
            id,
            session: session_id.to_owned(),
            replaced: replaced.clone(),
            revoked: revoked.clone(),
        });
        lock(&self.disconnected).remove(&node);
        self.metrics.connected_agents.set(streams.len() as i64);
        tracing::info!(%node, "agent stream opened");
        Ok(IngestStream {
            service: self.clone(),
            id,
            node,
            target,
            session: session_id.to_owned(),
            interned: HashMap::new(),
            replaced,
            revoked,
        })
    }

    /// Ends what a revoked node holds: its session (a batch in flight is refused) and its open
    /// streams, which close at once with [`IngestError::Revoked`].
    pub fn cut_off(&self, node: &str) {
        lock(&self.sessions).retain(|_, s| s.node != node);
        if let Some(open) = lock(&self.streams).get(node) {
            for stream in open {
                stream.revoked.cancel();
            }
        }
        tracing::warn!(%node, "node revoked: its streams are cut off");
    }

    /// Validates, stores durably and returns the sequence number to ack. A batch refused as
    /// invalid is told to the observers (data quality counts it against the node).
    pub async fn ingest(
        &self,
        stream: &mut IngestStream,
        batch: Batch,
    ) -> Result<u64, IngestError> {
        let samples: usize = batch.samples.iter().map(|s| s.values.len()).sum();
        let span = tracing::info_span!(
            "ingest_batch",
            node = %stream.node,
            seq = batch.seq,
            samples,
        );
        let outcome = tracing::Instrument::instrument(self.ingest_batch(stream, batch), span).await;
        if let Err(error) = &outcome
            && error.refusal() == Refusal::Invalid
        {
            self.observers.refused(Some(&stream.node), samples);
        }
        outcome
    }

    async fn ingest_batch(
        &self,
        stream: &mut IngestStream,
        batch: Batch,
    ) -> Result<u64, IngestError> {
        let started = Instant::now();
        let bytes = prost::Message::encoded_len(&batch);
        if bytes > self.limits.max_batch_bytes {
            let error = IngestError::BatchTooLarge {
                seq: batch.seq,
                bytes,
                max: self.limits.max_batch_bytes,
            };
            return self.refused(&stream.node, error);
        }
        // A back-filled batch waits for a lane before it takes its node's lock, which the
        // node's status, `up` and a reconnect need meanwhile. The permit moves into the store
        // and is dropped when it ends; the semaphore is never closed.
        let newest = batch.samples.iter().flat_map(|s| &s.timestamps_ms).max();
        let age = match newest {
            Some(&newest) if newest < (self.clock)() - BACKFILL_AFTER_MS => BatchAge::Backfill,
            _ => BatchAge::Live,
        };
        let clock = self.stages[age as usize].clone();
        let mut lap = started;
        let lane = match age {
            BatchAge::Backfill => {
                let permit = self.backfill.clone().acquire_owned().await.ok();
                lap = clock.lap(BatchStage::Lane, lap);
                permit
            }
            BatchAge::Live => None,
        };
        let cell = self.node(&stream.node);
        let mut record = cell.lock().await;
        lap = clock.lap(BatchStage::NodeLock, lap);
        // `register` replaces a node's session under this lock, so a stream of an older
        // registration cannot store after the newest one read the last durable sequence.
        if !lock(&self.sessions).contains_key(&stream.session) {
            return self.refused(
                &stream.node,
                IngestError::SessionReplaced {
                    node: stream.node.clone(),
                },
            );
        }
        let now = (self.clock)();
        let placement =
            match sequence::place(&record.sequence(), batch.seq, batch.skipped_from, now) {
                Ok(placement) => placement,
                Err(error) => return self.refused(&stream.node, error),
            };
        let resend = placement == Placement::Repeat;
        let valid = match validate(
            batch,
            &stream.node,
            &stream.target,
            &stream.interned,
            &self.limits,
            now,
            resend,
        ) {
            Ok(valid) => valid,
            Err(error) => return self.refused(&stream.node, error),
        };
        let seq = valid.seq;
        // A series is created with its first sample: definitions no sample uses (in this batch,
        // or a resend's) wait on the stream. Samples come grouped by series: one lookup per
        // group, not per sample.
        let defined: HashMap<_, _> = valid.new_series.iter().map(|d| (d.wire_id, d)).collect();
        let mut known: HashMap<u32, SeriesId> = HashMap::new();
        let (mut create, mut defs) = (Vec::new(), Vec::new());
        let mut creating = HashSet::new();
        let mut previous = None;
        for &(wire, _, _) in &valid.samples {
            if previous == Some(wire) {
                continue;
            }
            previous = Some(wire);
            let interned = stream.interned.get(&wire);
            if let Some(id) = interned.and_then(|i| i.id) {
                known.insert(wire, id);
                continue;
            }
            let def = match (interned, defined.get(&wire)) {
                (Some(i), _) => (&i.labels, i.kind, &i.help),
                (None, Some(d)) => (&d.labels, d.kind, &d.help),
                (None, None) => continue, // validate refuses samples of undefined series
            };
            if creating.insert(wire) {
                create.push(wire);
                defs.push(SeriesDefinition {
                    labels: def.0.clone(),
                    kind: def.1,
                    help: def.2.clone(),
                });
            }
        }
        let mut updated = record.clone();
        if let Placement::Next { state, .. } = placement {
            updated.set_sequence(state);
        }
        let job = Box::new(StoreJob {
            tsdb: self.tsdb.clone(),
            catalog: self.catalog.clone(),
            observers: self.observers.clone(),
            node: stream.node.clone(),
            caps: self.series_caps(),
            create,
            defs,
            known,
            samples: valid.samples,
            updated,
            resend,
            lap: clock.lap(BatchStage::Validate, lap),
            clock,
            _lane: lane,
        });
        let stored = match crate::tasks::inline("ingest-store", || job.try_inline()) {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(job)) => crate::tasks::blocking("ingest-store", move || job.run()).await,
            Err(panicked) => Err(panicked),
        };
        let stored = match stored {
            Ok(stored) => stored,
            Err(panicked) => return self.refused(&stream.node, panicked.into()),
        };
        let Stored {
            known,
            appended: outcome,
            updated,
            done,
        } = match stored {
            Ok(stored) => stored,
            Err(e @ ResolveError::KindConflict { .. }) => {
                let message = e.to_string();
                return self.refused(&stream.node, IngestError::KindConflict { seq, message });
            }
            Err(ResolveError::OverCap(source)) => {
                return self.refused(&stream.node, IngestError::SeriesCap { seq, source });
            }
            Err(ResolveError::Store(e)) => return self.refused(&stream.node, e.into()),
        };
        let lap = self.stages[age as usize].lap(BatchStage::Resume, done);
        // The batch is acknowledged once its log record is durable; the wait holds no thread.
        let outcome = match outcome {
            Some((outcome, logged)) => {
                if let Err(error) = self.tsdb.durable(logged).await {
                    return self.refused(&stream.node, error.into());
                }
                self.stages[age as usize].lap(BatchStage::Sync, lap);
                Some(outcome)
            }
            None => None,
        };
        *record = updated;
        for def in valid.new_series {
            let interned = Interned {
                id: None,
                kind: def.kind,
                labels: def.labels,
                help: def.help,
            };
            stream.interned.insert(def.wire_id, interned);
        }
        for (wire, id) in known {
            if let Some(interned) = stream.interned.get_mut(&wire)
                && interned.id.is_none()
            {
                interned.id = Some(id);
                interned.help = String::new();
            }
        }
        self.metrics.series.set(self.catalog.len() as i64);
        match outcome {
            Some(outcome) => {
                self.metrics.ingested_batches.inc();
                self.metrics
                    .ingested_samples
                    .inc_by(outcome.accepted as u64);
                if outcome.too_old > 0 {
                    self.metrics.samples_too_old.inc_by(outcome.too_old as u64);
                    tracing::warn!(node = %stream.node, seq, refused = outcome.too_old, "samples older than the out-of-order window were refused");
                }
            }
            None => self.metrics.duplicate_batches.inc(),
        }
        if let Placement::Next { lost, .. } = placement
            && lost > 0
        {
            BatchesLost {
                node: &stream.node,
                seq,
                lost,
            }
            .emit(&self.metrics);
        }
        self.metrics
            .batch_write_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(seq)
    }

    /// Every node ever seen, with whether it is streaming now.
    /// What keeps the collector's own writers from writing about a node being forgotten.
    pub fn forget_gate(&self) -> Arc<ForgetGate> {
        self.forget_gate.clone()
    }

    pub async fn node_statuses(&self) -> Vec<NodeStatus> {
        let cells: Vec<_> = lock(&self.nodes)
            .iter()
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect();
        let connected: Vec<String> = lock(&self.streams).keys().cloned().collect();
        // Registering drops a node's older sessions: at most one per node.
        let targets: HashMap<String, TargetLabels> = lock(&self.sessions)
            .values()
            .map(|s| (s.node.clone(), s.target.clone()))
            .collect();
        let mut out = Vec::with_capacity(cells.len());
        for (node, cell) in cells {
            let record = cell.lock().await.clone();
            let target = targets
                .get(&node)
                .cloned()
                .unwrap_or_else(|| TargetLabels::new(&node, "", ""));
            out.push(NodeStatus {
                target,
                connected: connected.contains(&node),
                node,
                agent_version: record.agent_version,
                host: record.host,
                registered_at_ms: record.registered_at_ms,
                last_batch_at_ms: record.last_batch_at_ms,
                last_durable_seq: record.last_durable_seq,
                lost_batches: record.lost_batches,
            });
        }
        out.sort_by(|a, b| a.node.cmp(&b.node));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryKv, StorageConfig};
    use hcmon_common::Selector;
    use hcmon_proto::v1::{HostFacts, MetricKind as WireKind, SeriesDef, SeriesSamples};

    const NOW: i64 = 1_700_000_000_000;

    /// A collector "process" over `disk`: a fresh start each call, same data.
    fn service(disk: &MemoryKv) -> Arc<IngestService> {
        let crate::storage::Recovered {
            tsdb,
            series,
            nodes,
        } = Tsdb::open(Box::new(disk.clone()), StorageConfig::default()).unwrap();
        IngestService::new(
            Arc::new(tsdb),
            Arc::new(SeriesCatalog::new(series)),
            nodes,
            Arc::new(CollectorMetrics::new()),
            Admission::default(),
            Arc::new(|| NOW),
            Default::default(),
        )
    }

    fn batch(seq: u64, define: bool, value: f64) -> Batch {
        Batch {
            seq,
            new_series: if define {
                vec![SeriesDef {
                    id: 1,
                    name: "load1".into(),
                    labels: vec![],
                    kind: WireKind::Gauge as i32,
                    help: "Load".into(),
                }]
            } else {
                vec![]
            },
            samples: vec![SeriesSamples {
                series_id: 1,
                timestamps_ms: vec![NOW - 1000 + (seq % 1000) as i64],
                values: vec![value],
            }],
            skipped_from: 0,
        }
    }

    async fn connect(svc: &Arc<IngestService>, epoch: u64) -> (IngestStream, u64) {
        connect_from(svc, epoch, 0).await
    }

    /// Registers spool `epoch` whose oldest unacked batch is `first_seq`, and opens a stream.
    async fn connect_from(
        svc: &Arc<IngestService>,
        epoch: u64,
        first_seq: u64,
    ) -> (IngestStream, u64) {
        let resp = svc
            .register(
                RegisterRequest {
                    node_name: "nas".into(),
                    spool_epoch: epoch,
                    first_seq,
                    ..Default::default()
                },
                &PeerIdentity::Plaintext,
            )
            .await
            .unwrap();
        (
            svc.open_stream(Some(&resp.session_id), &PeerIdentity::Plaintext)
                .unwrap(),
            resp.last_durable_seq,
        )
    }

    fn stored(svc: &IngestService) -> Vec<(i64, f64)> {
        let series = svc.catalog.select(&Selector::parse("load1").unwrap());
        assert_eq!(series.len(), 1);
        svc.tsdb
            .read_raw(series[0].id, i64::MIN / 4, i64::MAX / 4)
            .unwrap()
    }

    #[tokio::test]
    async fn resent_batches_are_acked_but_stored_once() {
        let disk = MemoryKv::default();
        let svc = service(&disk);
        let (mut stream, last) = connect(&svc, 7).await;
        assert_eq!(last, 0);
        assert_eq!(
            svc.ingest(&mut stream, batch(1, true, 1.0)).await.unwrap(),
            1
        );
        assert_eq!(
            svc.ingest(&mut stream, batch(2, false, 2.0)).await.unwrap(),
            2
        );
        drop(stream);

        // Reconnect: the agent resends batch 2 (ack lost) with the definition, then batch 3.
        let (mut stream, last) = connect(&svc, 7).await;
        assert_eq!(last, 2);
        assert_eq!(
            svc.ingest(&mut stream, batch(2, true, 99.0)).await.unwrap(),
            2
        );
        assert_eq!(
            svc.ingest(&mut stream, batch(3, false, 3.0)).await.unwrap(),
            3
        );
        assert_eq!(
            stored(&svc),
            vec![(NOW - 999, 1.0), (NOW - 998, 2.0), (NOW - 997, 3.0)]
        );
        assert_eq!(svc.metrics.duplicate_batches.get(), 1);
        assert_eq!(svc.metrics.ingested_samples.get(), 3);
    }

    #[tokio::test]
    async fn state_survives_a_restart_and_a_new_spool_restarts_numbering() {
        let disk = MemoryKv::default();
        let svc = service(&disk);
        let (mut stream, _) = connect(&svc, 7).await;
        svc.ingest(&mut stream, batch(1, true, 1.0)).await.unwrap();
        drop((stream, svc));

        let svc = service(&disk);
        let (_, last) = connect(&svc, 7).await;
        assert_eq!(last, 1, "last durable seq is remembered across restarts");
        let (mut stream, last) = connect_from(&svc, 8, 2).await;
        assert_eq!(last, 1, "a new spool epoch starts at its first_seq");
        svc.ingest(&mut stream, batch(2, true, 5.0)).await.unwrap();
        assert_eq!(stored(&svc), vec![(NOW - 999, 1.0), (NOW - 998, 5.0)]);
    }

    #[tokio::test]
    async fn a_stream_whose_node_re_registered_with_another_spool_is_refused() {
        let disk = MemoryKv::default();
        let svc = service(&disk);
        let (mut old, _) = connect(&svc, 7).await;
        svc.ingest(&mut old, batch(1, true, 1.0)).await.unwrap();
        let (mut new, _) = connect(&svc, 8).await;
        let err = svc
            .ingest(&mut old, batch(2, false, 2.0))
            .await
            .unwrap_err();
        assert!(matches!(err, IngestError::SessionReplaced { .. }), "{err}");
        // The new spool's seq 1 is stored, not mistaken for a repeat of the old spool's.
        let mut first = batch(1, true, 3.0);
        first.samples[0].timestamps_ms[0] += 500;
        svc.ingest(&mut new, first).await.unwrap();
        assert_eq!(stored(&svc).len(), 2);
    }

    #[tokio::test]
    async fn stream_needs_a_current_session_and_defined_ids() {
        let svc = service(&MemoryKv::default());
        assert!(matches!(
            svc.open_stream(None, &PeerIdentity::Plaintext),
            Err(IngestError::MissingSession)
        ));
        assert!(matches!(
            svc.open_stream(Some("nope"), &PeerIdentity::Plaintext),
            Err(IngestError::UnknownSession)
        ));
        let (mut stream, _) = connect(&svc, 7).await;
        let err = svc
            .ingest(&mut stream, batch(1, false, 1.0))
            .await
            .unwrap_err();
        assert_eq!(err.refusal(), Refusal::UnknownReference);
        assert_eq!(
            svc.metrics
                .rejected_batches
                .with_label_values(&["unknown_series_id"])
                .get(),
            1
        );
    }
    /// The values stored for `load1`, in time order.
    fn stored_values(svc: &IngestService) -> Vec<f64> {
        stored(svc).into_iter().map(|(_, v)| v).collect()
    }

    #[tokio::test]
    async fn out_of_order_batches_are_acked_only_when_stored() {
        // The order: 5, 3, 4, 6, 2^63, 7 were all acked while 3, 4 and 7 were dropped.
        // Each refusal ends the stream, so the agent reconnects and goes on with the next one.
        let svc = service(&MemoryKv::default());
        let (mut stream, _) = connect(&svc, 7).await;
        let mut acked = Vec::new();
        let mut fresh = true;
        for seq in [1, 2, 5, 3, 4, 6, 1 << 63, 7] {
            match svc.ingest(&mut stream, batch(seq, fresh, seq as f64)).await {
                Ok(ack) => {
                    acked.push(ack);
                    fresh = false;
                }
                Err(error) => {
                    assert_eq!(error.refusal(), Refusal::OutOfSequence, "{error}");
                    stream = connect(&svc, 7).await.0;
                    fresh = true;
                }
            }
        }
        assert_eq!(acked, [1, 2, 3, 4]);
        assert_eq!(stored_values(&svc), [1.0, 2.0, 3.0, 4.0]);
        let (_, last) = connect(&svc, 7).await;
        assert_eq!(last, 4, "the node is not stuck at a number it never stored");
    }

    #[tokio::test]
    async fn a_stream_jumping_ahead_cannot_make_the_real_agent_s_batches_repeats() {
        let svc = service(&MemoryKv::default());
        let (mut agent, _) = connect(&svc, 7).await;
        svc.ingest(&mut agent, batch(1, true, 1.0)).await.unwrap();

        // Someone registers with the node's name and spool epoch and jumps to 10^15.
        let (mut intruder, _) = connect(&svc, 7).await;
        let err = svc
            .ingest(&mut intruder, batch(1_000_000_000_000_000, true, -1.0))
            .await
            .unwrap_err();
        assert_eq!(err.refusal(), Refusal::OutOfSequence, "{err}");
        assert!(err.to_string().contains("skipped_from"), "{err}");

        // The agent's stream was superseded: its batch is refused, not acked...
        let err = svc
            .ingest(&mut agent, batch(2, false, 2.0))
            .await
            .unwrap_err();
        assert!(matches!(err, IngestError::SessionReplaced { .. }), "{err}");
        // ...and after registering again it goes on where it was.
        let (mut agent, last) = connect(&svc, 7).await;
        assert_eq!(last, 1);
        svc.ingest(&mut agent, batch(2, true, 2.0)).await.unwrap();

        // Even a jump that declares a skip only costs the agent a new epoch: it sees the
        // collector holding a number it never issued and registers a new spool epoch.
        let (mut intruder, _) = connect(&svc, 7).await;
        let mut jump = batch(1_000_000_000_000_000, true, -1.0);
        jump.skipped_from = 1;
        jump.samples[0].timestamps_ms[0] -= 5000;
        svc.ingest(&mut intruder, jump).await.unwrap();
        let (_, last) = connect(&svc, 7).await;
        assert_eq!(last, 1_000_000_000_000_000);
        let (mut agent, last) = connect_from(&svc, 8, 3).await;
        assert_eq!(last, 2);
        svc.ingest(&mut agent, batch(3, true, 3.0)).await.unwrap();
        assert_eq!(stored_values(&svc), [-1.0, 1.0, 2.0, 3.0]);
    }

    #[tokio::test]
    async fn declared_skips_are_stored_and_counted_as_lost() {
        let disk = MemoryKv::default();
        let svc = service(&disk);
        let (mut stream, _) = connect(&svc, 7).await;
        svc.ingest(&mut stream, batch(1, true, 1.0)).await.unwrap();
        // Batches 2 to 4 were dropped from the agent's full spool.
        let mut after_drop = batch(5, false, 5.0);
        after_drop.skipped_from = 2;
        assert_eq!(svc.ingest(&mut stream, after_drop).await.unwrap(), 5);
        assert_eq!(stored_values(&svc), [1.0, 5.0]);
        assert_eq!(svc.metrics.lost_batches.get(), 3);
        // A resend of a number it declared skipped is not a repeat: nothing of it is here.
        let err = svc
            .ingest(&mut stream, batch(3, false, 3.0))
            .await
            .unwrap_err();
        assert_eq!(err.refusal(), Refusal::OutOfSequence, "{err}");
        drop((stream, svc));

        let svc = service(&disk);
        let statuses = svc.node_statuses().await;
        assert_eq!(
            (statuses[0].last_durable_seq, statuses[0].lost_batches),
            (5, 3),
            "kept across restarts"
        );
    }

    #[tokio::test]
    async fn the_agents_api_does_not_publish_the_spool_epoch() {
        let svc = service(&MemoryKv::default());
        let (mut stream, _) = connect(&svc, 123_456_789).await;
        svc.ingest(&mut stream, batch(1, true, 1.0)).await.unwrap();
        let json = serde_json::to_string(&svc.node_statuses().await).unwrap();
        assert!(!json.contains("123456789"), "{json}");
        assert!(!json.contains("epoch"), "{json}");
        assert!(json.contains("\"last_durable_seq\":1"), "{json}");
    }

    #[tokio::test]
    async fn bad_node_names_and_host_facts_are_refused_at_registration() {
        let svc = service(&MemoryKv::default());
        let register = |node_name: String, host: HostFacts| {
            svc.register(
                RegisterRequest {
                    node_name,
                    spool_epoch: 7,
                    host: Some(host),
                    ..Default::default()
                },
                &PeerIdentity::Plaintext,
            )
        };
        let huge = "a".repeat(10 << 20);
        for (name, needle) in [
            (huge, "longer than 253 bytes"),
            ("a/b".to_owned(), "only ASCII letters"),
            ("..".to_owned(), "start with"),
            ("a..b".to_owned(), "\"..\""),
            ("nas\u{7}".to_owned(), "only ASCII letters"),
        ] {
            let err = register(name, HostFacts::default()).await.unwrap_err();
            assert_eq!(err.refusal(), Refusal::Invalid, "{err}");
            let text = err.to_string();
            assert!(text.contains(needle), "{text:.200}");
            assert!(
                text.len() < 300,
                "the message quotes an excerpt: {text:.300}"
            );
        }
        let long_kernel = HostFacts {
            kernel_version: "6".repeat(10_000),
            ..Default::default()
        };
        let err = register("nas".into(), long_kernel).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("host.kernel_version is 10000 bytes"),
            "{err}"
        );
        let control = HostFacts {
            os_name: "Linux\u{1b}[31m".into(),
            ..Default::default()
        };
        let err = register("nas".into(), control).await.unwrap_err();
        assert!(err.to_string().contains("host.os_name"), "{err}");
        let long_job = RegisterRequest {
            node_name: "nas".into(),
            job: "j".repeat(300),
            ..Default::default()
        };
        let err = svc
            .register(long_job, &PeerIdentity::Plaintext)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("job is 300 bytes"), "{err}");
        assert!(svc.node_statuses().await.is_empty(), "no node was recorded");
    }

    #[tokio::test]
    async fn batches_do_not_rewrite_the_host_facts() {
        use crate::storage::{Kv, Table};
        let disk = MemoryKv::default();
        let svc = service(&disk);
        let host = HostFacts {
            hostname: "nas.example.com".into(),
            kernel_version: "6.8.0".into(),
            ..Default::default()
        };
        let resp = svc
            .register(
                RegisterRequest {
                    node_name: "nas".into(),
                    spool_epoch: 7,
                    host: Some(host),
                    ..Default::default()
                },
                &PeerIdentity::Plaintext,
            )
            .await
            .unwrap();
        let mut stream = svc
            .open_stream(Some(&resp.session_id), &PeerIdentity::Plaintext)
            .unwrap();
        let read = |table| {
            let mut value = Vec::new();
            disk.scan(table, b"nas", b"nas\0", &mut |_, v| {
                value = v.to_vec();
                true
            })
            .unwrap();
            value
        };
        let facts = read(Table::Nodes);
        for seq in 1..=3 {
            svc.ingest(&mut stream, batch(seq, seq == 1, 1.0))
                .await
                .unwrap();
        }
        assert_eq!(read(Table::Nodes), facts, "host facts written once");
        drop((stream, svc));
        let svc = service(&disk);
        let status = &svc.node_statuses().await[0];
        assert_eq!(status.last_durable_seq, 3);
        assert_eq!(status.host.kernel_version, "6.8.0");
    }

    /// A service over a fresh store whose stream caps are `per_node` and `total`.
    fn capped(per_node: usize, total: usize) -> Arc<IngestService> {
        with_limits(IngestLimits {
            max_streams_per_node: per_node,
            max_streams: total,
            ..IngestLimits::default()
        })
    }

    /// A service over a fresh store with `limits`.
    fn with_limits(limits: IngestLimits) -> Arc<IngestService> {
        let opened = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default()).unwrap();
        let admission = Admission {
            limits,
            ..Admission::default()
        };
        IngestService::new(
            Arc::new(opened.tsdb),
            Arc::new(SeriesCatalog::new(vec![])),
            vec![],
            Arc::new(CollectorMetrics::new()),
            admission,
            Arc::new(|| NOW),
            Default::default(),
        )
    }

    #[tokio::test]
    async fn a_back_filled_batch_waits_for_a_lane_and_a_live_one_does_not() {
        let svc = with_limits(IngestLimits {
            backfill_stores: 1,
            ..IngestLimits::default()
        });
        let mut streams = open_streams(&svc, &["draining", "live"]).await;
        let (mut live, mut draining) = (streams.pop().unwrap(), streams.pop().unwrap());
        // The only lane is taken, as by another node's back-fill.
        let lane = svc.backfill.clone().acquire_owned().await.unwrap();
        let mut old = batch(1, true, 1.0);
        old.samples[0].timestamps_ms = vec![NOW - 3_600_000];
        let back_fill = tokio::spawn({
            let svc = svc.clone();
            async move { svc.ingest(&mut draining, old).await }
        });
        assert_eq!(
            svc.ingest(&mut live, batch(1, true, 2.0)).await.unwrap(),
            1,
            "the live batch is acked while every lane is busy"
        );
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!back_fill.is_finished(), "the back-filled batch waits");
        drop(lane);
        assert_eq!(back_fill.await.unwrap().unwrap(), 1);
        let lane_wait = svc
            .metrics
            .batch_stage_seconds
            .with_label_values(&["lane", "backfill"]);
        assert!(lane_wait.get_sample_sum() > 0.0);
    }

    /// A registered node's open stream for each of `nodes`, in order.
    async fn open_streams(svc: &Arc<IngestService>, nodes: &[&str]) -> Vec<IngestStream> {
        let mut streams = Vec::new();
        for node in nodes {
            let id = session(svc, node).await;
            streams.push(
                svc.open_stream(Some(&id), &PeerIdentity::Plaintext)
                    .unwrap(),
            );
        }
        streams
    }

    async fn session(svc: &IngestService, node: &str) -> String {
        let request = RegisterRequest {
            node_name: node.into(),
            spool_epoch: 7,
            ..Default::default()
        };
        svc.register(request, &PeerIdentity::Plaintext)
            .await
            .unwrap()
            .session_id
    }

    fn refused_streams(svc: &IngestService, reason: &str) -> u64 {
        let counter = svc
            .metrics
            .refused_requests
            .with_label_values(&["grpc", reason]);
        counter.get()
    }

    #[tokio::test]
    async fn a_third_stream_of_a_node_is_refused_naming_the_limit_but_a_reconnect_replaces() {
        let svc = capped(2, 100);
        let first = session(&svc, "nas").await;
        let open: Vec<IngestStream> = (0..2)
            .map(|_| {
                svc.open_stream(Some(&first), &PeerIdentity::Plaintext)
                    .unwrap()
            })
            .collect();
        let Err(refused) = svc.open_stream(Some(&first), &PeerIdentity::Plaintext) else {
            panic!("a third stream was let in");
        };
        assert_eq!(
            refused.to_string(),
            "stream refused for node \"nas\": 2 streams are open, the most \
             `limits.max_streams_per_node` allows; close one or raise \
             `limits.max_streams_per_node` in the collector's config"
        );
        assert_eq!(refused.refusal(), Refusal::OverLimit);
        assert_eq!(refused_streams(&svc, "max_streams_per_node"), 1);
        // The agent reconnects while its old streams are still open: they are told to close
        // and do not count against the new registration.
        let second = session(&svc, "nas").await;
        let _new = svc
            .open_stream(Some(&second), &PeerIdentity::Plaintext)
            .unwrap();
        assert!(open.iter().all(|s| s.replaced().is_cancelled()));
        assert_eq!(refused_streams(&svc, "max_streams_per_node"), 1);
    }

    #[tokio::test]
    async fn streams_over_the_total_cap_are_refused_naming_the_limit() {
        let svc = capped(4, 2);
        let mut open = open_streams(&svc, &["a", "b"]).await;
        let third = session(&svc, "c").await;
        let Err(refused) = svc.open_stream(Some(&third), &PeerIdentity::Plaintext) else {
            panic!("a third stream was let in");
        };
        assert!(
            refused.to_string().contains("`limits.max_streams`"),
            "{refused}"
        );
        assert_eq!(refused_streams(&svc, "max_streams"), 1);
        // A closed stream frees its place.
        drop(open.pop());
        svc.open_stream(Some(&third), &PeerIdentity::Plaintext)
            .unwrap();
    }
}

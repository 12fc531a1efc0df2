//! Ingest: registration, per-stream series interning, validation, the durable write and the ack.
//!
//! Transport-free: `grpc.rs` decodes requests and maps [`IngestError`] to statuses; the logic
//! here knows nothing of tonic.
//!
//! Invariants:
//! - A batch's sequence number is acked only after [`Tsdb::append`] returned, i.e. it is durable.
//! - Per node, batches are processed one at a time under the node's lock, so the "last durable
//!   sequence" check and the write cannot interleave even if an agent reconnects while its old
//!   stream is still draining. The stream's spool epoch is checked under the same lock: a batch
//!   from a stream whose node was since registered with another spool is refused.
//! - A batch with a sequence at or below the node's last durable one is a resend: its series
//!   definitions are honoured (a fresh stream needs them) but its samples are not stored again.

mod error;
pub mod grpc;
mod remote_write;
mod validate;

pub use error::{IngestError, Refusal};
pub use remote_write::{RemoteWriteError, RemoteWriteOutcome};

use crate::alerting::service::AlertFeed;
use crate::anomaly_watch::AnomalyWatch;
use crate::catalog::{ResolveError, SeriesCatalog, SeriesDefinition};
use crate::config::IngestLimits;
use crate::storage::{HostInfo, NodeRecord, Sample, SeriesId, Tsdb};
use crate::telemetry::{BatchRejected, CollectorMetrics};
use hcmon_proto::v1::{Batch, Limits, RegisterRequest, RegisterResponse};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use validate::{Interned, validate};

/// Milliseconds since the Unix epoch; injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    })
}

struct Session {
    node: String,
    spool_epoch: u64,
}

pub struct IngestService {
    tsdb: Arc<Tsdb>,
    catalog: Arc<SeriesCatalog>,
    metrics: Arc<CollectorMetrics>,
    limits: IngestLimits,
    agent_token: String,
    clock: Clock,
    /// Per-node state, each behind its own async lock (see the module invariants).
    nodes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<NodeRecord>>>>,
    /// Session id → who registered it. At most one session per node: the newest.
    sessions: Mutex<HashMap<String, Session>>,
    /// Open streams per node.
    streams: Mutex<HashMap<String, usize>>,
    /// Remote-write series by their raw label bytes, so known series skip label parsing.
    remote_write_cache: std::sync::RwLock<rustc_hash::FxHashMap<Vec<u8>, SeriesId>>,
    /// Live anomaly detection, when enabled: judges every stored sample before the ack.
    watch: std::sync::OnceLock<Arc<AnomalyWatch>>,
    /// Alert rules, when enabled: see every stored sample (and which node sent it).
    alerts: std::sync::OnceLock<Arc<AlertFeed>>,
    /// Nodes without an open stream → since when (collector start for nodes not seen since).
    disconnected: Mutex<HashMap<String, i64>>,
}

/// The state of one open stream: its node and the series it interned.
pub struct IngestStream {
    service: Arc<IngestService>,
    node: String,
    spool_epoch: u64,
    interned: HashMap<u32, Interned>,
}

impl Drop for IngestStream {
    fn drop(&mut self) {
        let mut streams = lock(&self.service.streams);
        if let Some(count) = streams.get_mut(&self.node) {
            *count -= 1;
            if *count == 0 {
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
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeStatus {
    pub node: String,
    pub connected: bool,
    #[serde(flatten)]
    pub record: NodeRecord,
}

impl IngestService {
    pub fn new(
        tsdb: Arc<Tsdb>,
        catalog: Arc<SeriesCatalog>,
        nodes: Vec<(String, NodeRecord)>,
        metrics: Arc<CollectorMetrics>,
        limits: IngestLimits,
        agent_token: String,
        clock: Clock,
    ) -> Arc<Self> {
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
        Arc::new(Self {
            tsdb,
            catalog,
            metrics,
            limits,
            agent_token,
            clock,
            nodes: Mutex::new(nodes),
            sessions: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            remote_write_cache: Default::default(),
            watch: std::sync::OnceLock::new(),
            alerts: std::sync::OnceLock::new(),
            disconnected: Mutex::new(disconnected),
        })
    }

    /// Sends every stored sample to the alert rules from now on.
    pub fn feed_alerts(&self, feed: Arc<AlertFeed>) {
        let _ = self.alerts.set(feed);
    }

    /// Nodes whose agent has no open stream, with when the last one closed.
    pub fn disconnected_nodes(&self) -> Vec<(String, i64)> {
        lock(&self.disconnected)
            .iter()
            .map(|(n, t)| (n.clone(), *t))
            .collect()
    }

    /// Sends every stored sample through `watch` from now on.
    pub fn watch_anomalies(&self, watch: Arc<AnomalyWatch>) {
        let _ = self.watch.set(watch);
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

    /// Handles `Register`: records the node and its spool epoch, opens a session.
    pub async fn register(&self, req: RegisterRequest) -> Result<RegisterResponse, IngestError> {
        let node = req.node_name.clone();
        if node.is_empty() {
            return self.refused("", IngestError::EmptyNodeName);
        }
        if node.len() > 253 || node.chars().any(|c| c.is_control()) {
            return self.refused("", IngestError::InvalidNodeName(node));
        }
        if !self.agent_token.is_empty() && req.token != self.agent_token {
            return self.refused(&node, IngestError::BadToken);
        }
        let cell = self.node(&node);
        let mut record = cell.lock().await;
        let mut updated = record.clone();
        if updated.spool_epoch != req.spool_epoch {
            // A new spool (fresh install or wiped state) numbers its batches from 1 again.
            updated.spool_epoch = req.spool_epoch;
            updated.last_durable_seq = 0;
        }
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
        tokio::task::spawn_blocking(move || tsdb.put_node(&name, &to_write))
            .await
            .expect("store task does not panic")?;
        *record = updated;

        let session_id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.node != node);
        sessions.insert(
            session_id.clone(),
            Session {
                node: node.clone(),
                spool_epoch: req.spool_epoch,
            },
        );
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

    /// Opens a stream for a session returned by `register`.
    pub fn open_stream(
        self: &Arc<Self>,
        session_id: Option<&str>,
    ) -> Result<IngestStream, IngestError> {
        let Some(session_id) = session_id else {
            return self.refused("", IngestError::MissingSession);
        };
        let (node, spool_epoch) = match lock(&self.sessions).get(session_id) {
            Some(s) => (s.node.clone(), s.spool_epoch),
            None => return self.refused("", IngestError::UnknownSession),
        };
        let mut streams = lock(&self.streams);
        *streams.entry(node.clone()).or_default() += 1;
        lock(&self.disconnected).remove(&node);
        self.metrics.connected_agents.set(streams.len() as i64);
        tracing::info!(%node, "agent stream opened");
        Ok(IngestStream {
            service: self.clone(),
            node,
            spool_epoch,
            interned: HashMap::new(),
        })
    }

    /// Validates, stores durably and returns the sequence number to ack.
    pub async fn ingest(
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
        let cell = self.node(&stream.node);
        let mut record = cell.lock().await;
        if record.spool_epoch != stream.spool_epoch {
            return self.refused(
                &stream.node,
                IngestError::SessionReplaced {
                    node: stream.node.clone(),
                },
            );
        }
        let resend = batch.seq != 0 && batch.seq <= record.last_durable_seq;
        let now = (self.clock)();
        let valid = match validate(
            batch,
            &stream.node,
            &stream.interned,
            &self.limits,
            now,
            resend,
        ) {
            Ok(valid) => valid,
            Err(error) => return self.refused(&stream.node, error),
        };
        let seq = valid.seq;
        let defs: Vec<SeriesDefinition> = valid
            .new_series
            .iter()
            .map(|d| SeriesDefinition {
                labels: d.labels.clone(),
                kind: d.kind,
                help: d.help.clone(),
            })
            .collect();
        // Samples come grouped by series: one lookup per group, not per sample.
        let mut known: HashMap<u32, SeriesId> = HashMap::new();
        let mut previous = None;
        for &(wire, _, _) in &valid.samples {
            if previous != Some(wire) {
                previous = Some(wire);
                if let Some(i) = stream.interned.get(&wire) {
                    known.insert(wire, i.id);
                }
            }
        }
        let mut updated = record.clone();
        if !resend {
            updated.last_durable_seq = seq;
            updated.last_batch_at_ms = now;
        }
        let (tsdb, catalog, node) = (self.tsdb.clone(), self.catalog.clone(), stream.node.clone());
        let wire_ids: Vec<u32> = valid.new_series.iter().map(|d| d.wire_id).collect();
        let samples = valid.samples;
        let watch = self.watch.get().cloned();
        let alerts = self.alerts.get().cloned();
        let stored = tokio::task::spawn_blocking(move || {
            let ids = catalog.resolve(&tsdb, &defs)?;
            let id_of = |wire: u32| {
                known
                    .get(&wire)
                    .copied()
                    .or_else(|| wire_ids.iter().position(|w| *w == wire).map(|i| ids[i]))
            };
            let mut current: Option<(u32, SeriesId)> = None;
            let samples: Vec<Sample> = samples
                .iter()
                .map(|&(wire, timestamp_ms, value)| {
                    let series = match current {
                        Some((w, id)) if w == wire => id,
                        _ => {
                            let id = id_of(wire).expect("validate checked every id");
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
                .collect();
            let outcome = if resend {
                None
            } else {
                let outcome = tsdb.append(Some((&node, &updated)), &samples)?;
                if let Some(alerts) = &alerts {
                    alerts.observe(Some(&node), &samples);
                }
                if let Some(watch) = &watch {
                    // Queued under the node's lock, so the worker sees batches in stored order.
                    watch.submit(samples);
                }
                Some(outcome)
            };
            Ok::<_, ResolveError>((ids, outcome, updated))
        })
        .await
        .expect("store task does not panic");
        let (ids, outcome, updated) = match stored {
            Ok(stored) => stored,
            Err(e @ ResolveError::KindConflict { .. }) => {
                let message = e.to_string();
                return self.refused(&stream.node, IngestError::KindConflict { seq, message });
            }
            Err(ResolveError::Store(e)) => return self.refused(&stream.node, e.into()),
        };
        *record = updated;
        for (def, id) in valid.new_series.into_iter().zip(ids) {
            stream.interned.insert(
                def.wire_id,
                Interned {
                    id,
                    kind: def.kind,
                    labels: def.labels,
                },
            );
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
        self.metrics
            .batch_write_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(seq)
    }

    /// Every node ever seen, with whether it is streaming now.
    pub async fn node_statuses(&self) -> Vec<NodeStatus> {
        let cells: Vec<_> = lock(&self.nodes)
            .iter()
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect();
        let connected: Vec<String> = lock(&self.streams).keys().cloned().collect();
        let mut out = Vec::with_capacity(cells.len());
        for (node, cell) in cells {
            let record = cell.lock().await.clone();
            out.push(NodeStatus {
                connected: connected.contains(&node),
                node,
                record,
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
    use hcmon_proto::v1::{MetricKind as WireKind, SeriesDef, SeriesSamples};

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
            IngestLimits::default(),
            String::new(),
            Arc::new(|| NOW),
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
                timestamps_ms: vec![NOW - 1000 + seq as i64],
                values: vec![value],
            }],
        }
    }

    async fn connect(svc: &Arc<IngestService>, epoch: u64) -> (IngestStream, u64) {
        let resp = svc
            .register(RegisterRequest {
                node_name: "nas".into(),
                spool_epoch: epoch,
                ..Default::default()
            })
            .await
            .unwrap();
        (
            svc.open_stream(Some(&resp.session_id)).unwrap(),
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
        let (mut stream, last) = connect(&svc, 8).await;
        assert_eq!(last, 0, "a new spool epoch starts over");
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
            svc.open_stream(None),
            Err(IngestError::MissingSession)
        ));
        assert!(matches!(
            svc.open_stream(Some("nope")),
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
}

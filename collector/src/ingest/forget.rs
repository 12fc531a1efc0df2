//! Forgetting nodes: an operator's command, or automatically once a node has been silent for
//! `forget_nodes_after`.
//!
//! A node name that stops reporting (a decommissioned box, a typo, a hostile peer inventing
//! names) would otherwise keep its `AgentSilent`/`AgentDisconnected` alerts firing forever.
//! Forgetting removes what ingest remembers (the durable node record, its session, its
//! disconnected-since time); its series stay queryable unless the operator asks for them to
//! be deleted too. An agent that comes back under a forgotten name registers as a new node and
//! is stored from its next batch on.

use super::{IngestService, lock};
use crate::storage::NodeRecord;
use crate::storage::{SeriesId, StoreError};
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// Runs store or catalog work on the blocking pool, off the async workers; a panic there is
/// a failed write (logged and counted by `tasks`).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ForgetError> {
    crate::tasks::blocking("forget-node", work)
        .await
        .map_err(|panicked| ForgetError::Store(StoreError::Write(panicked.into())))
}

/// How long a forgotten node's name keeps the collector's own writers from writing about it:
/// longer than any of their rounds takes between reading the nodes and storing.
const FORGOTTEN_FOR: Duration = Duration::from_secs(600);

/// Keeps the collector's own writers (`recorded/`) from creating series of a node that is being
/// or was just forgotten: they read the nodes, then define series a moment later, and a
/// forgetting in between would see its deleted series come back. A writer defines series under
/// [`ForgetGate::define`], shared; forgetting removes a node's series holding the gate
/// exclusively, after naming the node forgotten, so a writer either finished before the removal
/// (which takes its series too) or sees the name and leaves the node out.
#[derive(Default)]
pub struct ForgetGate {
    gate: RwLock<()>,
    forgotten: Mutex<HashMap<String, Instant>>,
}

impl ForgetGate {
    /// Runs `define` with a test of whether a node was forgotten recently; no node's series
    /// are removed meanwhile.
    pub fn define<R>(&self, define: impl FnOnce(&dyn Fn(&str) -> bool) -> R) -> R {
        let _shared = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let forgotten = lock(&self.forgotten);
        define(&|node| forgotten.contains_key(node))
    }

    /// Names `node` forgotten, and lets names forgotten long ago go.
    pub fn forgetting(&self, node: &str) {
        let now = Instant::now();
        let mut forgotten = lock(&self.forgotten);
        forgotten.retain(|_, at| now.duration_since(*at) < FORGOTTEN_FOR);
        forgotten.insert(node.to_owned(), now);
    }

    /// A node registered again: the writers may write about it.
    pub(super) fn registered(&self, node: &str) {
        lock(&self.forgotten).remove(node);
    }
}

/// Why a node could not be forgotten.
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    #[error("no node named {0:?} is known")]
    Unknown(String),
    #[error(
        "node {0:?} has an agent streaming right now; stop that agent first, or it would register again at once"
    )]
    Connected(String),
    #[error("storage failure")]
    Store(#[from] StoreError),
}

/// What becomes of a forgotten node's series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesFate {
    /// They stay queryable (the automatic forgetting does this).
    Keep,
    /// They are deleted: definitions, samples and rollups.
    Delete,
}

/// What forgetting a node removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Forgotten {
    /// Series taken out of the catalog and the store.
    pub series_deleted: usize,
    /// Stored chunks and rollup blocks deleted with them.
    pub blocks_deleted: usize,
}

/// The idle sweep's judgement: silent for longer than `idle_ms` at `now_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idle {
    pub now_ms: i64,
    pub idle_ms: i64,
}

impl IngestService {
    /// Forgets `node`: refused while its agent streams. With [`SeriesFate::Delete`] a name
    /// known only from its series (already forgotten, or remote-written) has them deleted.
    pub async fn forget_node(
        &self,
        node: &str,
        series: SeriesFate,
    ) -> Result<Forgotten, ForgetError> {
        self.forget_node_unless_alive(node, series, None).await
    }

    /// Forgets `node` as the idle sweep: only if, under the node's lock, it is still idle. The
    /// sweep judged it before taking the lock, and the node may have registered since: a
    /// returning agent, or a new one whose blank record the sweep saw mid-registration.
    /// Refused as [`ForgetError::Connected`] then.
    pub async fn forget_idle_node(&self, node: &str, idle: Idle) -> Result<Forgotten, ForgetError> {
        self.forget_node_unless_alive(node, SeriesFate::Keep, Some(idle))
            .await
    }

    async fn forget_node_unless_alive(
        &self,
        node: &str,
        series: SeriesFate,
        idle: Option<Idle>,
    ) -> Result<Forgotten, ForgetError> {
        let cell = lock(&self.nodes).get(node).cloned();
        // Holding the node's lock, no batch of it is half-processed while its record goes.
        let record = match &cell {
            Some(cell) => Some(cell.lock().await),
            None if series == SeriesFate::Delete => None,
            None => return Err(ForgetError::Unknown(node.to_owned())),
        };
        if lock(&self.streams).contains_key(node) {
            return Err(ForgetError::Connected(node.to_owned()));
        }
        if let (Some(idle), Some(record)) = (idle, &record)
            && !self.is_idle(node, record, idle)
        {
            return Err(ForgetError::Connected(node.to_owned()));
        }
        self.forget_gate.forgetting(node);
        if cell.is_some() {
            let (tsdb, name) = (self.tsdb.clone(), node.to_owned());
            blocking(move || tsdb.delete_node(&name)).await??;
            lock(&self.nodes).remove(node);
            lock(&self.disconnected).remove(node);
            lock(&self.sessions).retain(|_, session| session.node != node);
        }
        let mut forgotten = Forgotten::default();
        if series == SeriesFate::Delete {
            let ids = self.forget_series(node).await?;
            if cell.is_none() && ids.is_empty() {
                return Err(ForgetError::Unknown(node.to_owned()));
            }
            forgotten.series_deleted = ids.len();
            let tsdb = self.tsdb.clone();
            forgotten.blocks_deleted = blocking(move || tsdb.delete_series(&ids)).await??;
        }
        tracing::info!(%node, ?series, series_deleted = forgotten.series_deleted, "node forgotten");
        Ok(forgotten)
    }

    /// Takes the node's series out of the catalog and out of remote write's cache of known
    /// series. The cache's write lock is held across both, and remote write enters an id in
    /// the cache only if the catalog still has it, under the same lock: no entry can outlive
    /// the removal and send later writes to a deleted series.
    async fn forget_series(&self, node: &str) -> Result<Vec<SeriesId>, ForgetError> {
        let (catalog, cache_owner, gate, name) = (
            self.catalog.clone(),
            self.remote_write_cache.clone(),
            self.forget_gate.clone(),
            node.to_owned(),
        );
        let ids = blocking(move || {
            let _exclusive = gate.gate.write().unwrap_or_else(|p| p.into_inner());
            let mut cache = cache_owner.write().unwrap_or_else(|p| p.into_inner());
            let ids = catalog.remove_node_series(&name);
            // Dropping the whole cache is simple; it refills on the next writes.
            cache.clear();
            ids
        })
        .await?;
        self.metrics.series.set(self.catalog.len() as i64);
        Ok(ids)
    }

    /// Nodes without a stream whose last sign of life (a batch, a registration or, for nodes
    /// known before this start, the start itself) is older than `now_ms - idle_ms`.
    pub async fn idle_nodes(&self, now_ms: i64, idle_ms: i64) -> Vec<String> {
        let cells: Vec<_> = lock(&self.nodes)
            .iter()
            .map(|(node, cell)| (node.clone(), cell.clone()))
            .collect();
        let mut idle = Vec::new();
        for (node, cell) in cells {
            if lock(&self.streams).contains_key(&node) {
                continue;
            }
            let record = cell.lock().await;
            if self.is_idle(&node, &record, Idle { now_ms, idle_ms }) {
                idle.push(node);
            }
        }
        idle.sort();
        idle
    }

    /// Whether `record` shows no sign of life within `idle`. A blank record, neither
    /// registered nor ever sending nor known at this start, is one being registered now.
    fn is_idle(&self, node: &str, record: &NodeRecord, idle: Idle) -> bool {
        let closed_at = lock(&self.disconnected).get(node).copied();
        if closed_at.is_none() && record.registered_at_ms == 0 && record.last_batch_at_ms == 0 {
            return false;
        }
        let last_seen = closed_at
            .unwrap_or(0)
            .max(record.last_batch_at_ms)
            .max(record.registered_at_ms);
        idle.now_ms.saturating_sub(last_seen) > idle.idle_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::SeriesCatalog;
    use crate::ingest::{Admission, PeerIdentity};
    use crate::storage::{MemoryKv, StorageConfig, Tsdb};
    use crate::telemetry::CollectorMetrics;
    use hcmon_common::Selector;
    use hcmon_proto::v1::{
        Batch, MetricKind as WireKind, RegisterRequest, SeriesDef, SeriesSamples,
    };
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    const START: i64 = 1_700_000_000_000;

    fn service(disk: &MemoryKv, now: Arc<AtomicI64>) -> Arc<IngestService> {
        let crate::storage::Recovered {
            tsdb,
            series,
            nodes,
        } = Tsdb::open(Box::new(disk.clone()), StorageConfig::default()).unwrap();
        // As `Collector::open` does.
        let catalog = SeriesCatalog::new(series);
        catalog.start_ids_at(tsdb.first_free_series_id());
        IngestService::new(
            Arc::new(tsdb),
            Arc::new(catalog),
            nodes,
            Arc::new(CollectorMetrics::new()),
            Admission::default(),
            Arc::new(move || now.load(Ordering::SeqCst)),
            Default::default(),
        )
    }

    async fn register(svc: &IngestService, node: &str) -> String {
        svc.register(
            RegisterRequest {
                node_name: node.into(),
                spool_epoch: 7,
                ..Default::default()
            },
            &PeerIdentity::Plaintext,
        )
        .await
        .unwrap()
        .session_id
    }

    async fn names(svc: &IngestService) -> Vec<String> {
        svc.node_statuses()
            .await
            .into_iter()
            .map(|s| s.node)
            .collect()
    }

    #[tokio::test]
    async fn a_forgotten_node_is_gone_across_restarts_and_a_streaming_one_is_kept() {
        let disk = MemoryKv::default();
        let now = Arc::new(AtomicI64::new(START));
        let svc = service(&disk, now.clone());
        register(&svc, "gone").await;
        let session = register(&svc, "live").await;
        let stream = svc
            .open_stream(Some(&session), &PeerIdentity::Plaintext)
            .unwrap();

        let err = svc.forget_node("live", SeriesFate::Keep).await.unwrap_err();
        assert!(matches!(err, ForgetError::Connected(_)), "{err}");
        let err = svc
            .forget_node("nobody", SeriesFate::Keep)
            .await
            .unwrap_err();
        assert!(matches!(err, ForgetError::Unknown(_)), "{err}");
        svc.forget_node("gone", SeriesFate::Keep).await.unwrap();
        assert_eq!(names(&svc).await, ["live"]);
        assert!(svc.disconnected_nodes().iter().all(|(n, _)| n != "gone"));

        drop(stream);
        let svc = service(&disk, now);
        assert_eq!(names(&svc).await, ["live"], "forgetting is durable");
    }

    /// Streams `count` one-sample batches of `load1` for `node`, one second apart.
    async fn stream_load(svc: &Arc<IngestService>, node: &str, count: u64) {
        let resp = svc
            .register(
                RegisterRequest {
                    node_name: node.into(),
                    spool_epoch: 9,
                    ..Default::default()
                },
                &PeerIdentity::Plaintext,
            )
            .await
            .unwrap();
        let mut stream = svc
            .open_stream(Some(&resp.session_id), &PeerIdentity::Plaintext)
            .unwrap();
        for seq in 1..=count {
            let batch = Batch {
                seq,
                new_series: match seq {
                    1 => vec![SeriesDef {
                        id: 1,
                        name: "load1".into(),
                        labels: vec![],
                        kind: WireKind::Gauge as i32,
                        help: "Load".into(),
                    }],
                    _ => vec![],
                },
                samples: vec![SeriesSamples {
                    series_id: 1,
                    timestamps_ms: vec![START - 600_000 + 1000 * seq as i64],
                    values: vec![seq as f64],
                }],
                ..Default::default()
            };
            svc.ingest(&mut stream, batch).await.unwrap();
        }
    }

    fn load_of(svc: &IngestService, node: &str) -> Vec<(i64, f64)> {
        let selector = Selector::parse(&format!("load1{{node=\"{node}\"}}")).unwrap();
        svc.catalog
            .select(&selector)
            .iter()
            .flat_map(|meta| svc.tsdb.read_raw(meta.id, 0, i64::MAX / 4).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn deleting_a_forgotten_nodes_series_removes_their_samples_for_good() {
        let disk = MemoryKv::default();
        let now = Arc::new(AtomicI64::new(START));
        let svc = service(&disk, now.clone());
        stream_load(&svc, "scrap", 40).await;
        stream_load(&svc, "keeper", 40).await;
        // Sealed into stored chunks and rollups, as after a day of running.
        svc.tsdb.checkpoint(true).unwrap();

        let scrap = Selector::parse("load1{node=\"scrap\"}").unwrap();
        let deleted_id = svc.catalog.select(&scrap)[0].id;
        let forgotten = svc.forget_node("scrap", SeriesFate::Delete).await.unwrap();
        assert_eq!(forgotten.series_deleted, 1);
        assert!(forgotten.blocks_deleted > 0, "{forgotten:?}");
        assert!(load_of(&svc, "scrap").is_empty());
        assert_eq!(load_of(&svc, "keeper").len(), 40, "other nodes keep theirs");

        // Gone after a restart too (the WAL does not bring them back), and the name starts
        // afresh with a new series.
        let svc = service(&disk, now);
        assert!(load_of(&svc, "scrap").is_empty());
        assert_eq!(load_of(&svc, "keeper").len(), 40);
        stream_load(&svc, "scrap", 1).await;
        assert_eq!(load_of(&svc, "scrap").len(), 1);
        let ids: Vec<u64> = svc.catalog.all().iter().map(|m| m.id.0).collect();
        assert_eq!(ids.len(), 2);
        assert!(
            ids.iter().all(|id| *id != deleted_id.0),
            "a deleted id is not handed out again: {ids:?}"
        );

        // The name is now known only from a series: deleting them still works, once.
        svc.forget_node("scrap", SeriesFate::Keep).await.unwrap();
        let again = svc.forget_node("scrap", SeriesFate::Delete).await.unwrap();
        assert_eq!(again.series_deleted, 1);
        let err = svc
            .forget_node("scrap", SeriesFate::Delete)
            .await
            .unwrap_err();
        assert!(matches!(err, ForgetError::Unknown(_)), "{err}");
    }

    #[tokio::test]
    async fn a_registration_that_waited_on_a_forgotten_record_starts_afresh() {
        let disk = MemoryKv::default();
        let svc = service(&disk, Arc::new(AtomicI64::new(START)));
        stream_load(&svc, "flip", 3).await;
        // Forgetting holds the node's lock while it removes the record; a registration arriving
        // meanwhile waits on that lock.
        let cell = lock(&svc.nodes).get("flip").cloned().unwrap();
        let held = cell.lock().await;
        let waiting = tokio::spawn({
            let svc = svc.clone();
            async move {
                svc.register(
                    RegisterRequest {
                        node_name: "flip".into(),
                        spool_epoch: 9,
                        ..Default::default()
                    },
                    &PeerIdentity::Plaintext,
                )
                .await
            }
        });
        tokio::task::yield_now().await;
        svc.tsdb.delete_node("flip").unwrap();
        lock(&svc.nodes).remove("flip");
        drop(held);
        let answer = waiting.await.unwrap().unwrap();
        assert_eq!(
            answer.last_durable_seq, 0,
            "the forgotten state is not revived"
        );
        assert_eq!(
            names(&svc).await,
            ["flip"],
            "the node is known again, in memory"
        );
    }

    #[tokio::test]
    async fn only_nodes_silent_for_longer_than_the_limit_are_idle() {
        let disk = MemoryKv::default();
        let now = Arc::new(AtomicI64::new(START));
        let svc = service(&disk, now.clone());
        register(&svc, "old").await;
        now.store(START + 3_600_000, Ordering::SeqCst);
        register(&svc, "recent").await;
        let session = register(&svc, "streaming").await;
        let _stream = svc
            .open_stream(Some(&session), &PeerIdentity::Plaintext)
            .unwrap();
        now.store(START + 2 * 3_600_000, Ordering::SeqCst);

        assert_eq!(
            svc.idle_nodes(START + 2 * 3_600_000, 90 * 60_000).await,
            ["old"]
        );
        assert!(
            svc.idle_nodes(START + 2 * 3_600_000, 3 * 3_600_000)
                .await
                .is_empty()
        );
    }

    /// The sweep judges first and forgets after, under the node's lock. A node that registered
    /// in between, or whose blank record the sweep saw while its first registration was under
    /// way, keeps its record and its session: its first batch is stored.
    #[tokio::test]
    async fn the_sweep_spares_a_node_that_registered_after_it_was_judged() {
        let disk = MemoryKv::default();
        let now = Arc::new(AtomicI64::new(START));
        let svc = service(&disk, now.clone());
        register(&svc, "back").await;
        let later = START + 3 * 3_600_000;
        now.store(later, Ordering::SeqCst);
        let idle = Idle {
            now_ms: later,
            idle_ms: 3_600_000,
        };
        assert_eq!(svc.idle_nodes(later, idle.idle_ms).await, ["back"]);
        let session = register(&svc, "back").await;
        let err = svc.forget_idle_node("back", idle).await.unwrap_err();
        assert!(matches!(err, ForgetError::Connected(_)), "{err}");
        assert!(
            svc.open_stream(Some(&session), &PeerIdentity::Plaintext)
                .is_ok()
        );

        // A first registration's record before it is filled in: never idle.
        let _blank = svc.node("new");
        assert!(
            !svc.idle_nodes(later, idle.idle_ms)
                .await
                .contains(&"new".to_owned())
        );
        let err = svc.forget_idle_node("new", idle).await.unwrap_err();
        assert!(matches!(err, ForgetError::Connected(_)), "{err}");

        // Still idle under the lock: forgotten.
        now.store(later + 2 * 3_600_000, Ordering::SeqCst);
        let idle = Idle {
            now_ms: later + 2 * 3_600_000,
            idle_ms: 3_600_000,
        };
        assert_eq!(svc.idle_nodes(idle.now_ms, idle.idle_ms).await, ["back"]);
        svc.forget_idle_node("back", idle).await.unwrap();
        assert!(!names(&svc).await.contains(&"back".to_owned()));
    }
}

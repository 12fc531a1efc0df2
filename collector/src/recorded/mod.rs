//! The series the collector writes about itself, as Prometheus does, so dashboards and alert
//! rules written for Prometheus find them: `up` per agent (`up.rs`), `ALERTS` and
//! `ALERTS_FOR_STATE` per open alert (`alerts.rs`), the anomaly verdicts per node
//! (`anomaly.rs`), and the data-quality scores per node (`quality.rs`). Each kind is a tracked helper task of its own that stops with the collector.
//!
//! Invariants:
//! - They are stored like every other series (`writer.rs`): defined through the catalog, appended
//!   durably through [`crate::storage::Tsdb::append`], so PromQL, `/federate`, export and
//!   retention see them. Ingest's checks on names are for senders: `hcmon_node_anomaly_score`
//!   is reserved against them, and `/metrics` leaves the stored family out, since it renders
//!   the live verdicts under that name itself.
//! - What each round works out from the collector's state is pure (`up::round`,
//!   `alerts::round`, `anomaly::round`); the tasks around them only read that state and write.
//! - A storage failure never stops a task: it is logged and counted in
//!   `hcmon_collector_recorded_failures_total`, and the next round writes again.
//! - A series a round no longer has (a resolved alert, a forgotten node) gets a staleness
//!   marker, so it stops showing at once; at start, the series an earlier run left live count
//!   as written, so those that ended while the collector was down end at the first round.

pub mod alerts;
pub mod anomaly;
pub mod metrics;
pub mod quality;
pub mod up;
pub mod writer;

use crate::alerting::handle::Alerting;
use crate::anomaly_watch::AnomalyWatch;
use crate::catalog::SeriesCatalog;
use crate::clock::Clock;
use crate::ingest::{IngestService, NodeStatus};
use crate::node_forest::NodeForests;
use crate::storage::Tsdb;
use crate::tasks::{Role, TaskTree};
use crate::telemetry::CollectorMetrics;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use writer::{Tracked, Writer};

/// The labels of the series written about a node: `node`, and the `job` and `instance` its
/// agent's series carry (those it registered with, else `node` and the node name).
pub fn node_labels(status: &NodeStatus) -> [(String, String); 3] {
    [
        ("node".to_owned(), status.node.clone()),
        ("job".to_owned(), status.target.job.clone()),
        ("instance".to_owned(), status.target.instance.clone()),
    ]
}

/// `[recorded]`: the series the collector writes about itself.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordedConfig {
    /// Whether the collector writes them at all.
    pub enabled: bool,
    /// How often `up` is written for every agent.
    #[serde(with = "humantime_serde")]
    pub up_interval: Duration,
    /// An agent whose stream is open but that sent nothing (no batch, no registration) for
    /// this long is down: `up` 0.
    #[serde(with = "humantime_serde")]
    pub silent_after: Duration,
    /// How often `hcmon_anomalous_series` is written and new node verdicts are looked for.
    #[serde(with = "humantime_serde")]
    pub anomaly_interval: Duration,
}

impl Default for RecordedConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            up_interval: Duration::from_secs(15),
            silent_after: Duration::from_secs(60),
            anomaly_interval: Duration::from_secs(15),
        }
    }
}

/// The collector's state the writers read and the store they write to.
pub struct Sources {
    pub tsdb: Arc<Tsdb>,
    pub catalog: Arc<SeriesCatalog>,
    pub ingest: Arc<IngestService>,
    pub alerting: Option<Alerting>,
    pub watch: Option<Arc<AnomalyWatch>>,
    pub forests: Option<Arc<NodeForests>>,
    pub quality: Option<Arc<crate::quality::QualityTracker>>,
    pub metrics: Arc<CollectorMetrics>,
    pub clock: Clock,
}

/// What the writers take from the rest of the collector's config.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// `limits.max_series`: collector-written series count against it.
    pub max_series: usize,
    /// `alerting.tick` and `alerting.evaluation_interval`: when ALERTS are looked at and
    /// rewritten.
    pub alert_tick: Duration,
    pub alert_evaluation: Duration,
    /// `metrics_staleness`: an anomaly verdict older than this is no longer current.
    pub staleness: Duration,
    /// `quality.interval`: how often data quality is evaluated and its scores written.
    pub quality_interval: Duration,
}

/// Spawns the writers `settings` asks for on `tasks`; they stop with the tree's shutdown.
pub fn start(tasks: &TaskTree, settings: &RecordedConfig, context: Context, sources: Sources) {
    let Sources {
        tsdb,
        catalog,
        ingest,
        alerting,
        watch,
        forests,
        quality,
        metrics,
        clock,
    } = sources;
    let writer = Arc::new(Writer::new(
        tsdb,
        catalog.clone(),
        ingest.forget_gate(),
        context.max_series,
        metrics::RecordedMetrics::new(&metrics.registry),
        metrics.series.clone(),
    ));
    let shutdown = tasks.shutdown().clone();

    // Data quality is evaluated even when nothing is recorded: its scores feed /metrics, the
    // API and the alert rules.
    if let Some(tracker) = quality {
        let (i, c, s) = (ingest.clone(), clock.clone(), shutdown.clone());
        let (w, interval, record) = (writer.clone(), context.quality_interval, settings.enabled);
        tasks.spawn("recorded-quality", Role::Helper, async move {
            let tracked = match record {
                true => Some(Tracked::start(w, "recorded-quality", &[quality::SCORE]).await),
                false => None,
            };
            quality::run(tracker, i, tracked, c, interval, s).await;
            Ok(())
        });
    }
    if !settings.enabled {
        return;
    }

    let (w, i, c, s) = (
        writer.clone(),
        ingest.clone(),
        clock.clone(),
        shutdown.clone(),
    );
    let timing = (settings.up_interval, settings.silent_after);
    tasks.spawn("recorded-up", Role::Helper, async move {
        let tracked = Tracked::start(w, "recorded-up", &[up::UP]).await;
        up::run(i, tracked, c, timing, s).await;
        Ok(())
    });

    if let Some(alerting) = alerting {
        let (w, c, s) = (writer.clone(), clock.clone(), shutdown.clone());
        let timing = (context.alert_tick, context.alert_evaluation);
        tasks.spawn(alerts::TASK, Role::Helper, async move {
            let families = [alerts::ALERTS, alerts::ALERTS_FOR_STATE];
            let tracked = Tracked::start(w, alerts::TASK, &families).await;
            alerts::run(alerting, tracked, c, timing, s).await;
            Ok(())
        });
    }

    if watch.is_some() || forests.is_some() {
        let sources = anomaly::Sources {
            ingest,
            catalog,
            watch,
            forests,
        };
        let timing = (settings.anomaly_interval, context.staleness);
        tasks.spawn("recorded-anomaly", Role::Helper, async move {
            let families = [anomaly::NODE_SCORE, anomaly::ANOMALOUS_SERIES];
            let tracked = Tracked::start(writer, "recorded-anomaly", &families).await;
            anomaly::run(sources, tracked, clock, timing, shutdown).await;
            Ok(())
        });
    }
}

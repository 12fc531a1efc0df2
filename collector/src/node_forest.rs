//! Multivariate anomaly detection per node: an Isolation Forest (or, with `method =
//! "one_class_svm"`, a One-Class SVM) over one feature vector per minute (CPU, memory, disk IO, network, and the cache probe's latency, hit ratio and errors),
//! trained in the background on the 1-minute rollups of the training window and retrained
//! periodically; the newest complete minute is scored after every training and every minute.
//!
//! It catches combinations the per-series detectors cannot see, such as high CPU with no
//! network traffic. Reads come from the store, never from the ingest path. Training reads the
//! remote history (`[history]`) for the minutes before the store's own history of a series, so a
//! collector installed today trains on the weeks its remote store holds.

use crate::analysis::history::{History, HistoryError};
use crate::analytics::forest::{ForestConfig, IsolationForest, NodeModelMethod, TrainError};
use crate::analytics::ocsvm::OneClassSvm;
use crate::catalog::SeriesCatalog;
use crate::storage::{Aggregate, MetricKind, Resolution, SeriesMeta};
use hcmon_common::Selector;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The features, by metric name. Several series of one name on a node (cores, disks,
/// interfaces) are summed; counters become per-second rates.
pub const FEATURES: [&str; 8] = [
    "node_cpu_usage_ratio",
    "node_memory_used_ratio",
    "node_disk_io_time_seconds_total",
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "redis_check_duration_seconds",
    "redis_keyspace_hit_ratio",
    "hcmon_probe_errors_total",
];

const MINUTE_MS: i64 = 60_000;

/// A feature's values by minute start.
type FeatureMinutes = (&'static str, BTreeMap<i64, f64>);

/// The newest verdict on a node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeVerdict {
    /// Start of the scored minute.
    pub minute_ms: i64,
    pub score: f64,
    pub is_anomaly: bool,
    /// (feature, value, share of the isolation), largest share first.
    pub features: Vec<(&'static str, f64, f64)>,
    pub trained_at_ms: i64,
    pub training_rows: usize,
    /// The kind of model that judged it.
    pub method: NodeModelMethod,
}

/// The name of a model kind, as `method` in `[analytics.forest]` spells it.
pub fn method_name(method: NodeModelMethod) -> &'static str {
    match method {
        NodeModelMethod::IsolationForest => "isolation_forest",
        NodeModelMethod::OneClassSvm => "one_class_svm",
    }
}

/// A node's trained model, of the kind `method` chose: both score in `[0, 1]` and explain a
/// vector by feature shares, so the verdict reads the same.
enum NodeModel {
    Forest(IsolationForest),
    Svm(OneClassSvm),
}

impl NodeModel {
    fn train(rows: &[Vec<f64>], config: &ForestConfig) -> Result<Self, TrainError> {
        Ok(match config.method {
            NodeModelMethod::IsolationForest => Self::Forest(IsolationForest::train(rows, config)?),
            NodeModelMethod::OneClassSvm => Self::Svm(OneClassSvm::train(rows, config)?),
        })
    }

    fn method(&self) -> NodeModelMethod {
        match self {
            Self::Forest(_) => NodeModelMethod::IsolationForest,
            Self::Svm(_) => NodeModelMethod::OneClassSvm,
        }
    }

    fn score(&self, row: &[f64]) -> f64 {
        match self {
            Self::Forest(m) => m.score(row),
            Self::Svm(m) => m.score(row),
        }
    }

    fn is_anomaly(&self, score: f64) -> bool {
        match self {
            Self::Forest(m) => m.is_anomaly(score),
            Self::Svm(m) => m.is_anomaly(score),
        }
    }

    fn explain(&self, row: &[f64]) -> Vec<(usize, f64)> {
        match self {
            Self::Forest(m) => m.explain(row),
            Self::Svm(m) => m.explain(row),
        }
    }

    fn training_rows(&self) -> usize {
        match self {
            Self::Forest(m) => m.training_rows(),
            Self::Svm(m) => m.training_rows(),
        }
    }
}

struct Model {
    model: NodeModel,
    features: Vec<&'static str>,
    trained_at_ms: i64,
}

pub struct NodeForests {
    config: ForestConfig,
    history: Arc<History>,
    catalog: Arc<SeriesCatalog>,
    models: Mutex<HashMap<String, Model>>,
    verdicts: Mutex<BTreeMap<String, NodeVerdict>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NodeForests {
    pub fn new(config: ForestConfig, history: Arc<History>, catalog: Arc<SeriesCatalog>) -> Self {
        Self {
            config,
            history,
            catalog,
            models: Mutex::default(),
            verdicts: Mutex::default(),
        }
    }

    pub fn config(&self) -> &ForestConfig {
        &self.config
    }

    /// Every node's newest verdict.
    pub fn verdicts(&self) -> BTreeMap<String, NodeVerdict> {
        lock(&self.verdicts).clone()
    }

    /// Per-minute feature values of one node over `[start, end)`: feature → minute → value.
    /// With `remote`, minutes before the store's history come from the remote history.
    fn feature_minutes(
        &self,
        node: &str,
        start: i64,
        end: i64,
        remote: bool,
    ) -> Result<Vec<FeatureMinutes>, HistoryError> {
        let mut out = Vec::new();
        for name in FEATURES {
            let selector = Selector::parse(&format!("{name}{{node=\"{node}\"}}"))
                .expect("feature selectors are valid");
            let series = self.catalog.select(&selector);
            if series.is_empty() {
                continue;
            }
            let mut minutes: BTreeMap<i64, f64> = BTreeMap::new();
            for meta in &series {
                for (minute, agg) in self.minutes_of(meta, start, end, remote)? {
                    *minutes.entry(minute).or_default() += feature_value(meta.kind, &agg);
                }
            }
            out.push((name, minutes));
        }
        Ok(out)
    }

    /// The 1-minute aggregates of a series starting in `[start, end)`: its rollups, and with
    /// `remote`, the remote history's samples before the store's history aggregated likewise
    /// (a minute the store holds is the store's).
    fn minutes_of(
        &self,
        meta: &SeriesMeta,
        start: i64,
        end: i64,
        remote: bool,
    ) -> Result<Vec<(i64, Aggregate)>, HistoryError> {
        let minute = Resolution::OneMinute;
        let local = self
            .history
            .tsdb()
            .read_rollup(meta.id, minute, start, end - 1)?;
        if !remote {
            return Ok(local);
        }
        let (earlier, _) = self.history.remote_before(meta, start, end - 1)?;
        if earlier.is_empty() {
            return Ok(local);
        }
        let mut minutes: BTreeMap<i64, Aggregate> = Aggregate::per_bucket(minute, &earlier)
            .into_iter()
            .filter(|(m, _)| *m >= start)
            .collect();
        minutes.extend(local);
        Ok(minutes.into_iter().collect())
    }

    /// Rows of the minutes where every feature has a value.
    fn rows(features: &[FeatureMinutes]) -> (Vec<&'static str>, Vec<(i64, Vec<f64>)>) {
        let names: Vec<&'static str> = features.iter().map(|(n, _)| *n).collect();
        let Some((_, first)) = features.first() else {
            return (names, Vec::new());
        };
        let rows = first
            .keys()
            .filter_map(|minute| {
                let row: Option<Vec<f64>> = features
                    .iter()
                    .map(|(_, m)| m.get(minute).copied())
                    .collect();
                Some((*minute, row?))
            })
            .collect();
        (names, rows)
    }

    /// Trains every node that has enough complete minutes in the training window; a node
    /// without enough keeps no model (and no verdict) until it has.
    pub fn train_all(&self, now_ms: i64) -> Result<usize, HistoryError> {
        let start = now_ms - self.config.training_window.as_millis() as i64;
        let end = now_ms - now_ms.rem_euclid(MINUTE_MS);
        let mut trained = 0;
        for node in self.catalog.label_values("node") {
            let features = self.feature_minutes(&node, start, end, true)?;
            let (names, rows) = Self::rows(&features);
            if names.is_empty() || rows.len() < self.config.min_training_samples {
                continue;
            }
            let matrix: Vec<Vec<f64>> = rows.into_iter().map(|(_, r)| r).collect();
            match NodeModel::train(&matrix, &self.config) {
                Ok(model) => {
                    lock(&self.models).insert(
                        node.clone(),
                        Model {
                            model,
                            features: names,
                            trained_at_ms: now_ms,
                        },
                    );
                    trained += 1;
                }
                Err(error) => tracing::warn!(%node, %error, "node model not trained"),
            }
        }
        Ok(trained)
    }

    /// Scores the newest complete minute of every trained node.
    pub fn score_all(&self, now_ms: i64) -> Result<(), HistoryError> {
        let end = now_ms - now_ms.rem_euclid(MINUTE_MS);
        let start = end - 5 * MINUTE_MS;
        let nodes: Vec<String> = lock(&self.models).keys().cloned().collect();
        for node in nodes {
            let features = self.feature_minutes(&node, start, end, false)?;
            let models = lock(&self.models);
            let Some(model) = models.get(&node) else {
                continue;
            };
            // The row must hold the features the model was trained on, in the same order.
            let by_name: HashMap<&str, &BTreeMap<i64, f64>> =
                features.iter().map(|(n, m)| (*n, m)).collect();
            let Some(minute) = by_name
                .get(model.features[0])
                .and_then(|m| m.keys().next_back().copied())
            else {
                continue;
            };
            let row: Option<Vec<f64>> = model
                .features
                .iter()
                .map(|f| by_name.get(f).and_then(|m| m.get(&minute)).copied())
                .collect();
            let Some(row) = row else { continue };
            let score = model.model.score(&row);
            let shares = model.model.explain(&row);
            let verdict = NodeVerdict {
                minute_ms: minute,
                score,
                is_anomaly: model.model.is_anomaly(score),
                features: shares
                    .into_iter()
                    .map(|(i, share)| (model.features[i], row[i], share))
                    .collect(),
                trained_at_ms: model.trained_at_ms,
                training_rows: model.model.training_rows(),
                method: model.model.method(),
            };
            drop(models);
            lock(&self.verdicts).insert(node, verdict);
        }
        Ok(())
    }
}

/// A minute's value of a series: the mean for gauges, the per-second rate for counters.
fn feature_value(kind: MetricKind, agg: &Aggregate) -> f64 {
    match kind {
        MetricKind::Counter => agg.increase / 60.0,
        MetricKind::Gauge => agg.sum / agg.count.max(1) as f64,
    }
}

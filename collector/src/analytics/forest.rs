//! Isolation Forest (Liu, Ting & Zhou, 2008) over one node's feature vectors: for example CPU,
//! memory, disk IO, network, and a cache probe's latency, hit ratio and error rate, sampled
//! together. Pure computation with no I/O and no clock: the caller collects the training window,
//! trains in the background (milliseconds to about a second) and swaps the new forest in; scoring
//! a live vector walks one root-to-leaf path per tree (about 800 steps with the defaults) and
//! allocates nothing.
//!
//! # Model
//!
//! Anomalies are few and different, so random axis-parallel cuts separate them from the rest in
//! few steps. Each of `trees` trees is grown on `ψ = sample_size` rows drawn without replacement
//! from the training rows (all rows when there are fewer). A node picks a feature uniformly among
//! the features whose values *differ* in the node's rows, and a split value uniformly in
//! `[min, max)`; rows with `value <= split` go left. Growth stops at depth `ceil(log2 ψ)`, when one
//! row remains, or when all of the node's rows are equal. The score of `x` is
//!
//! ```text
//! s(x) = 2^(−E[h(x)] / c(ψ)),   c(n) = 2·H(n−1) − 2(n−1)/n,   H(i) = 1 + 1/2 + … + 1/i
//! ```
//!
//! where `h(x)` is the depth of the leaf `x` falls into plus `c(size)` for the rows that leaf still
//! held (the expected depth of the subtree that was not grown). Scores lie in `(0, 1)`: near 1 is
//! anomalous, about 0.5 and below is ordinary; a model trained on identical rows scores
//! everything 0.5 (it has learned nothing to tell points apart).
//!
//! **Values outside a node's range (one departure from the paper).** A tree only knows the range
//! of its ψ sampled rows, so in the paper's scoring a live value far beyond that range walks the
//! same path as the most extreme sampled row: CPU at 10× its maximum scores like the busiest
//! moment of the sample, and a rare outlier in the training window is isolated quickly only in
//! the few trees whose sample happened to include it. Each split therefore keeps its node's
//! `[low, high]` for the split feature, and scoring asks what the split would have done had `x`
//! been among the node's rows: the cut, uniform over `[min(low, x), max(high, x))`, falls between
//! `x` and all the rows with probability `p = (x − high)/(x − low)` (or `(low − x)/(high − x)`
//! below), isolating `x` at this depth; otherwise, with probability `1 − p`, it is uniform over
//! `[low, high)` exactly as drawn, and `x` goes on down. `h(x)` is the expectation over these
//! events, computed along the one path (no branching, no allocation). Inside every range, `p = 0`
//! and the score is the paper's. In tests this lifts the recall of single-feature outliers at the
//! contamination threshold from 50–100% to 100%; it costs two `f64` per split node.
//!
//! **What it finds less well.** Features are picked uniformly, so a point far out on one of `d`
//! features waits about `d` splits for one on that feature: its score tops out near
//! `2^(−d/c(ψ))`, about 0.7 for `d = 6`, which the most extreme ordinary moments (far out on
//! several correlated features at once) can reach too. Single-metric spikes are better caught by
//! the per-series detectors; the forest adds the combinations they cannot see, such as high CPU
//! with no network.
//!
//! The threshold comes from `contamination`: after training, every training row is scored and
//! the threshold is the `1 − contamination` quantile of those scores, so about that share of the
//! training window scores above it ([`IsolationForest::is_anomaly`]).
//!
//! # Invariants
//!
//! - **Training always terminates, in bounded time.** A split is only attempted on a feature whose
//!   maximum exceeds its minimum in the node, and the split value is forced into `[min, max)`
//!   (rounding can produce `max`, or a non-finite value when `max − min` overflows; either is
//!   replaced by `min`), so both children are non-empty and strictly smaller than their parent.
//!   Nothing ever loops waiting for a random draw to differ: that is how
//!   `extended-isolation-forest` 0.2.3 hangs when a feature's range is a few ULPs wide. Growing the
//!   trees costs `O(trees · ψ · log ψ · dims)` whatever the number of training rows; setting the
//!   threshold costs one score per training row, `O(rows · trees · log ψ)`.
//! - **Deterministic given a seed.** All randomness comes from one `fastrand::Rng`, seeded from
//!   [`ForestConfig::seed`] (drawn at random when it is `None`).
//! - **No standardization.** Splits are drawn uniformly within each feature's own range at each
//!   node, and the out-of-range probability is a ratio of distances on one feature, so rescaling
//!   or shifting a feature (percent vs ratio, bytes vs megabytes) changes nothing: the forest is
//!   invariant to per-feature affine maps and needs no `Standardizer`.
//!
//! # Explanations
//!
//! [`IsolationForest::explain`] says which features isolated a point, as alert evidence. Each split
//! on `x`'s path leaves `x` in a child holding fewer of the node's sampled rows; the split is
//! credited with `log2(parent rows / child rows)`, the bits of isolation it contributed (a split
//! that cuts `x` off from everything else earns much; one that halves the node earns one bit).
//! Out of range, the split is credited with the expectation: `p · log2(parent rows)` for cutting
//! `x` off alone, plus `1 − p` times the usual credit, and later splits count only as much as `x`
//! is still unisolated. The credits are summed per feature over all trees and normalized to shares
//! summing to 1. For a point far out on one feature, that feature takes the largest share; for an
//! ordinary point the shares are spread out. Cost: one walk per tree, like scoring, plus one
//! vector of `dims` shares.
//!
//! # Retraining
//!
//! [`ForestConfig::training_window`], [`ForestConfig::min_training_samples`] and
//! [`ForestConfig::retrain_every`] are for the caller that schedules training: train on the last
//! window once it holds enough rows, and again every `retrain_every`. Training on a window that
//! contains anomalies is expected; `contamination` is the share assumed anomalous.

use std::time::Duration;

use super::stats::quantile_sorted;
use serde::Deserialize;

/// Largest accepted [`ForestConfig::sample_size`]: keeps node indices within `u32` and one tree
/// within `2^25` nodes.
pub const MAX_SAMPLE_SIZE: usize = 1 << 24;

/// Largest accepted [`ForestConfig::contamination`]: beyond half, "anomalous" is the norm.
pub const MAX_CONTAMINATION: f64 = 0.5;

/// Euler–Mascheroni constant, for the harmonic number approximation.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Isolation Forest settings, part of the collector's analytics config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForestConfig {
    /// Number of trees; the score is the mean over trees. At least 1.
    pub trees: usize,
    /// Rows sampled (without replacement) to grow each tree, ψ; trees grow to depth
    /// `ceil(log2 ψ)`. The paper finds 256 enough; 2 to [`MAX_SAMPLE_SIZE`].
    pub sample_size: usize,
    /// Share of the training window assumed anomalous; sets the score threshold at the
    /// `1 − contamination` quantile of the training scores. 0 to [`MAX_CONTAMINATION`].
    pub contamination: f64,
    /// Fewest training rows accepted (fewer is an error); also the row count the caller waits for
    /// before the first training. At least 2.
    pub min_training_samples: usize,
    /// How far back the caller collects training rows.
    #[serde(with = "humantime_serde")]
    pub training_window: Duration,
    /// How often the caller retrains on the latest window.
    #[serde(with = "humantime_serde")]
    pub retrain_every: Duration,
    /// Seed for the random sampling and splits; `None` draws a fresh seed per training.
    pub seed: Option<u64>,
    /// Which model each node gets; `contamination`, `min_training_samples` and the schedule
    /// apply to both.
    pub method: NodeModelMethod,
}

/// The per-node model, `method` in `[analytics.forest]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeModelMethod {
    /// This module's [`IsolationForest`].
    #[default]
    IsolationForest,
    /// The One-Class SVM of `ocsvm.rs`: RBF kernel, ν = `contamination`.
    OneClassSvm,
}

impl Default for ForestConfig {
    fn default() -> Self {
        Self {
            trees: 100,
            sample_size: 256,
            contamination: 0.1,
            min_training_samples: 1000,
            training_window: Duration::from_secs(86_400),
            retrain_every: Duration::from_secs(3600),
            seed: None,
            method: NodeModelMethod::IsolationForest,
        }
    }
}

impl ForestConfig {
    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |field, reason: String| Err(ConfigError { field, reason });
        if self.trees == 0 {
            return fail("trees", "must be at least 1".into());
        }
        if !(2..=MAX_SAMPLE_SIZE).contains(&self.sample_size) {
            return fail(
                "sample_size",
                format!("is {}, must be 2 to {MAX_SAMPLE_SIZE}", self.sample_size),
            );
        }
        if !(0.0..=MAX_CONTAMINATION).contains(&self.contamination) {
            return fail(
                "contamination",
                format!(
                    "is {}, must be 0 to {MAX_CONTAMINATION}",
                    self.contamination
                ),
            );
        }
        if self.min_training_samples < 2 {
            return fail("min_training_samples", "must be at least 2".into());
        }
        if self.training_window.is_zero() {
            return fail("training_window", "must be longer than zero".into());
        }
        if self.retrain_every.is_zero() {
            return fail("retrain_every", "must be longer than zero".into());
        }
        Ok(())
    }
}

/// A [`ForestConfig`] field out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("forest config field `{field}` {reason}")]
pub struct ConfigError {
    /// The offending field, as spelled in the config file.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Why [`IsolationForest::train`] refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("too few training rows: {rows} given, at least {needed} needed")]
    TooFewRows { rows: usize, needed: usize },
    #[error("training rows have no features")]
    NoFeatures,
    #[error("training rows have {dims} features, at most {} supported", u32::MAX)]
    TooManyFeatures { dims: usize },
    #[error("training row {row} has {found} features, expected {expected} like row 0")]
    DimensionMismatch {
        row: usize,
        expected: usize,
        found: usize,
    },
    #[error("flat training matrix of {len} values is not a whole number of {dims}-feature rows")]
    RaggedMatrix { len: usize, dims: usize },
    #[error("training row {row}, feature {feature} is {value}; values must be finite")]
    NonFinite {
        row: usize,
        feature: usize,
        value: f64,
    },
}

/// One tree node. Children of the split at index `i` are `i + 1` (left, preorder) and `right`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Node {
    Split {
        /// Feature compared; `x[feature] <= threshold` goes left.
        feature: u32,
        /// Index of the right child in the tree's node vector.
        right: u32,
        /// Sampled rows that reached this node (for explanations).
        size: u32,
        threshold: f64,
        /// Smallest and largest value of `feature` among the node's rows; `threshold` was drawn in
        /// `[low, high)`.
        low: f64,
        high: f64,
    },
    Leaf {
        /// Sampled rows that reached this leaf.
        size: u32,
        /// Depth of the leaf plus `c(size)`: the path length `h(x)` of every `x` ending here.
        path_length: f64,
    },
}

impl Node {
    fn size(&self) -> u32 {
        match *self {
            Node::Split { size, .. } | Node::Leaf { size, .. } => size,
        }
    }
}

/// One isolation tree, nodes in preorder (root at 0).
#[derive(Debug, Clone, PartialEq)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    /// Expected `h(x)`: along `x`'s path, each split on a feature where `x` lies outside the
    /// node's range isolates `x` at depth `+ 1` with probability [`escape`]; otherwise `x` carries
    /// on, and ends at its leaf's depth plus the adjustment for the rows the leaf still held.
    fn path_length(&self, x: &[f64]) -> f64 {
        let mut expected = 0.0;
        let mut still_in = 1.0;
        let mut depth = 0.0;
        let mut at = 0;
        loop {
            match self.nodes[at] {
                Node::Leaf { path_length, .. } => return expected + still_in * path_length,
                Node::Split {
                    feature,
                    right,
                    threshold,
                    low,
                    high,
                    ..
                } => {
                    let value = x[feature as usize];
                    depth += 1.0;
                    let p = escape(value, low, high);
                    expected += still_in * p * depth;
                    still_in *= 1.0 - p;
                    at = next_child(at, value, threshold, right);
                }
            }
        }
    }
}

/// Probability that a split drawn uniformly over the node's range *with `value` included*
/// (`[min(low, value), max(high, value))`) falls between `value` and the node's rows, cutting
/// `value` off alone: 0 inside `[low, high]`, towards 1 far outside, 1 at infinity. NaN gives 0.
fn escape(value: f64, low: f64, high: f64) -> f64 {
    let (near, far) = if value > high {
        (high, low)
    } else if value < low {
        (low, high)
    } else {
        return 0.0;
    };
    // Halved so that differences of huge finite values cannot overflow.
    let p = (value * 0.5 - near * 0.5) / (value * 0.5 - far * 0.5);
    // inf/inf for an infinite value: it is cut off for certain.
    if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }
}

fn next_child(at: usize, value: f64, threshold: f64, right: u32) -> usize {
    if value <= threshold {
        at + 1
    } else {
        right as usize
    }
}

/// A trained Isolation Forest. Immutable; share it behind an `Arc` and replace it on retraining.
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationForest {
    trees: Vec<Tree>,
    dims: usize,
    /// `c(ψ)` for the rows each tree was grown on, `ψ = min(sample_size, training rows)`: the
    /// score's normalizer.
    normalizer: f64,
    /// The `1 − contamination` quantile of the training rows' scores (linear interpolation).
    threshold: f64,
    training_rows: usize,
}

impl IsolationForest {
    /// Trains on `rows` (each a feature vector of the same length) with `config`.
    ///
    /// Errors: invalid config, fewer than `min_training_samples` rows, rows of different lengths,
    /// empty rows, or a non-finite value.
    pub fn train<R: AsRef<[f64]>>(rows: &[R], config: &ForestConfig) -> Result<Self, TrainError> {
        config.validate()?;
        let dims = check_rows(rows, config)?;
        let mut data = Vec::with_capacity(rows.len() * dims);
        for values in rows {
            data.extend_from_slice(values.as_ref());
        }
        Self::train_flat(&data, dims, config)
    }

    /// Trains on a row-major matrix: `data` holds `data.len() / dims` rows of `dims` features.
    ///
    /// Errors as [`IsolationForest::train`], plus a `data` length not a multiple of `dims`.
    pub fn train_flat(
        data: &[f64],
        dims: usize,
        config: &ForestConfig,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        if dims == 0 {
            return Err(TrainError::NoFeatures);
        }
        if u32::try_from(dims).is_err() {
            return Err(TrainError::TooManyFeatures { dims });
        }
        if !data.len().is_multiple_of(dims) {
            return Err(TrainError::RaggedMatrix {
                len: data.len(),
                dims,
            });
        }
        let rows = data.len() / dims;
        check_row_count(rows, config)?;
        if let Some(at) = data.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite {
                row: at / dims,
                feature: at % dims,
                value: data[at],
            });
        }

        let seed = config.seed.unwrap_or_else(|| fastrand::u64(..));
        let sample_size = config.sample_size.min(rows);
        let mut grower = Grower {
            data,
            dims,
            max_depth: sample_size.next_power_of_two().trailing_zeros() as usize,
            rng: fastrand::Rng::with_seed(seed),
            ranges: vec![(0.0, 0.0); dims],
            candidates: Vec::with_capacity(dims),
        };
        // A permutation of the row indices; each tree's sample is a partial Fisher–Yates shuffle
        // of its first `sample_size` entries, which growing then reorders (still a permutation).
        let mut order: Vec<usize> = (0..rows).collect();
        let trees = (0..config.trees)
            .map(|_| {
                for i in 0..sample_size {
                    let j = grower.rng.usize(i..rows);
                    order.swap(i, j);
                }
                let mut nodes = Vec::with_capacity(2 * sample_size - 1);
                grower.grow(&mut nodes, &mut order[..sample_size], 0);
                Tree { nodes }
            })
            .collect();

        let mut forest = Self {
            trees,
            dims,
            normalizer: average_path_length(sample_size),
            threshold: 1.0,
            training_rows: rows,
        };
        let mut scores: Vec<f64> = data.chunks_exact(dims).map(|x| forest.score(x)).collect();
        scores.sort_unstable_by(f64::total_cmp);
        forest.threshold = quantile_sorted(&scores, 1.0 - config.contamination);
        Ok(forest)
    }

    /// Anomaly score of `x` in `(0, 1)`: near 1 is anomalous, about 0.5 or less is ordinary.
    /// Allocation-free: one root-to-leaf walk per tree.
    ///
    /// A NaN in `x` compares false with every split and so always goes right, with no out-of-range
    /// credit; an infinite value is cut off at the first split on its feature.
    ///
    /// # Panics
    ///
    /// If `x.len()` differs from the training rows' feature count.
    pub fn score(&self, x: &[f64]) -> f64 {
        self.check_dims(x);
        let total: f64 = self.trees.iter().map(|tree| tree.path_length(x)).sum();
        let mean = total / self.trees.len() as f64;
        (-mean / self.normalizer).exp2()
    }

    /// Whether `score` is above the contamination threshold: the `1 − contamination` quantile
    /// of the training rows' scores.
    pub fn is_anomaly(&self, score: f64) -> bool {
        score > self.threshold
    }

    /// Which features isolated `x`: `(feature index, share)` for every feature, largest share
    /// first (ties by index), shares summing to 1. Each split on `x`'s path in each tree credits
    /// its feature with `log2(rows at the node / rows in x's child)` (see the module docs). All
    /// shares are 0 when no split separated `x` from anything (a forest of single leaves).
    ///
    /// # Panics
    ///
    /// If `x.len()` differs from the training rows' feature count.
    pub fn explain(&self, x: &[f64]) -> Vec<(usize, f64)> {
        self.check_dims(x);
        let mut bits = vec![0.0; self.dims];
        for tree in &self.trees {
            let mut still_in = 1.0;
            let mut at = 0;
            while let Node::Split {
                feature,
                right,
                size,
                threshold,
                low,
                high,
            } = tree.nodes[at]
            {
                let feature = feature as usize;
                let value = x[feature];
                at = next_child(at, value, threshold, right);
                let size = f64::from(size);
                let kept = f64::from(tree.nodes[at].size());
                // Cut off alone with probability p (`log2 size` bits), else kept with `kept` rows.
                let p = escape(value, low, high);
                bits[feature] += still_in * (p * size.log2() + (1.0 - p) * (size / kept).log2());
                still_in *= 1.0 - p;
            }
        }
        let total: f64 = bits.iter().sum();
        let mut shares: Vec<(usize, f64)> = bits
            .into_iter()
            .map(|b| if total > 0.0 { b / total } else { 0.0 })
            .enumerate()
            .collect();
        shares.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        shares
    }

    /// The score above which [`Self::is_anomaly`] holds: the `1 − contamination` quantile of the
    /// training rows' scores.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Rows the forest was trained on.
    pub fn training_rows(&self) -> usize {
        self.training_rows
    }

    fn check_dims(&self, x: &[f64]) {
        assert_eq!(
            x.len(),
            self.dims,
            "isolation forest trained on {} features, given {}",
            self.dims,
            x.len()
        );
    }
}

/// Checks training rows for either node model: enough of them, all of one non-zero length,
/// every value finite. Returns that length.
pub(crate) fn check_rows<R: AsRef<[f64]>>(
    rows: &[R],
    config: &ForestConfig,
) -> Result<usize, TrainError> {
    check_row_count(rows.len(), config)?;
    let dims = rows[0].as_ref().len();
    if dims == 0 {
        return Err(TrainError::NoFeatures);
    }
    for (row, values) in rows.iter().enumerate() {
        let values = values.as_ref();
        if values.len() != dims {
            return Err(TrainError::DimensionMismatch {
                row,
                expected: dims,
                found: values.len(),
            });
        }
        if let Some(feature) = values.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite {
                row,
                feature,
                value: values[feature],
            });
        }
    }
    Ok(dims)
}

fn check_row_count(rows: usize, config: &ForestConfig) -> Result<(), TrainError> {
    if rows < config.min_training_samples {
        return Err(TrainError::TooFewRows {
            rows,
            needed: config.min_training_samples,
        });
    }
    Ok(())
}

/// Grows trees; holds the scratch buffers so growing allocates only nodes.
struct Grower<'a> {
    data: &'a [f64],
    dims: usize,
    max_depth: usize,
    rng: fastrand::Rng,
    /// Per feature `(min, max)` over the current node's rows.
    ranges: Vec<(f64, f64)>,
    /// Features with `max > min` in the current node.
    candidates: Vec<u32>,
}

impl Grower<'_> {
    /// Appends the subtree over `rows` (indices into `data`) at `depth` to `nodes`, in preorder.
    /// Recursion depth is at most `max_depth = ceil(log2 ψ)` (at most 24).
    fn grow(&mut self, nodes: &mut Vec<Node>, rows: &mut [usize], depth: usize) {
        // `rows.len() <= MAX_SAMPLE_SIZE`, so sizes and node indices fit in u32.
        let size = rows.len() as u32;
        let Some((feature, threshold, low, high)) = self.pick_split(rows, depth) else {
            nodes.push(Node::Leaf {
                size,
                path_length: depth as f64 + average_path_length(rows.len()),
            });
            return;
        };
        let split_at = partition(rows, |row| {
            self.data[row * self.dims + feature as usize] <= threshold
        });
        let at = nodes.len();
        nodes.push(Node::Split {
            feature,
            right: 0,
            size,
            threshold,
            low,
            high,
        });
        let (left, right) = rows.split_at_mut(split_at);
        self.grow(nodes, left, depth + 1);
        let right_at = nodes.len() as u32;
        if let Node::Split { right, .. } = &mut nodes[at] {
            *right = right_at;
        }
        self.grow(nodes, right, depth + 1);
    }

    /// A random feature among those not constant over `rows`, a split value in its `[min, max)`,
    /// and that `min` and `max`; `None` makes a leaf.
    fn pick_split(&mut self, rows: &[usize], depth: usize) -> Option<(u32, f64, f64, f64)> {
        if depth >= self.max_depth || rows.len() <= 1 {
            return None;
        }
        self.ranges.fill((f64::INFINITY, f64::NEG_INFINITY));
        for &row in rows {
            let values = &self.data[row * self.dims..][..self.dims];
            for ((lo, hi), &v) in self.ranges.iter_mut().zip(values) {
                *lo = lo.min(v);
                *hi = hi.max(v);
            }
        }
        self.candidates.clear();
        self.candidates.extend(
            (0u32..)
                .zip(&self.ranges)
                .filter(|(_, (lo, hi))| hi > lo)
                .map(|(feature, _)| feature),
        );
        if self.candidates.is_empty() {
            return None;
        }
        let feature = self.candidates[self.rng.usize(..self.candidates.len())];
        let (lo, hi) = self.ranges[feature as usize];
        Some((feature, split_value(lo, hi, self.rng.f64()), lo, hi))
    }
}

/// `lo + u·(hi − lo)` for `u` in `[0, 1)`, forced into `[lo, hi)` (needs `lo < hi`, both finite):
/// rounding may give `hi`, and `hi − lo` may overflow; both fall back to `lo`, which still splits.
fn split_value(lo: f64, hi: f64, u: f64) -> f64 {
    let width = hi - lo;
    let v = if width.is_finite() {
        lo + u * width
    } else {
        lo * (1.0 - u) + hi * u
    };
    if lo <= v && v < hi { v } else { lo }
}

/// Moves the rows for which `left` holds to the front; returns how many there are.
fn partition(rows: &mut [usize], left: impl Fn(usize) -> bool) -> usize {
    let mut split = 0;
    for i in 0..rows.len() {
        if left(rows[i]) {
            rows.swap(split, i);
            split += 1;
        }
    }
    split
}

/// `c(n)`: the average path length of an unsuccessful binary search tree search among `n` items,
/// the expected depth of a point in an isolation tree grown fully on `n` rows.
fn average_path_length(n: usize) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let n_f = n as f64;
    2.0 * harmonic(n - 1) - 2.0 * (n_f - 1.0) / n_f
}

/// `H(i) = 1 + 1/2 + … + 1/i`: summed exactly for small `i`, else the asymptotic expansion
/// (error below 1e-13 from `i = 64`).
fn harmonic(i: usize) -> f64 {
    if i < 64 {
        return (1..=i).map(|k| 1.0 / k as f64).sum();
    }
    let x = i as f64;
    let x2 = x * x;
    x.ln() + EULER_GAMMA + 1.0 / (2.0 * x) - 1.0 / (12.0 * x2) + 1.0 / (120.0 * x2 * x2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::test_support::normal;

    fn seeded(seed: u64) -> ForestConfig {
        ForestConfig {
            seed: Some(seed),
            ..ForestConfig::default()
        }
    }

    const FEATURES: [&str; 6] = [
        "cpu_percent",
        "memory_percent",
        "disk_io_mbps",
        "network_mbps",
        "cache_latency_ms",
        "cache_error_percent",
    ];
    /// Marginal standard deviations of the features `host_row` generates (load has variance 1).
    const SD: [f64; 6] = [10.82, 5.0, 7.21, 21.63, 0.3, 0.2];

    /// A node's metrics at `load` (variance 1 over normal operation): CPU, memory, disk IO and
    /// network follow the load plus their own noise; cache latency and error rate do not.
    fn host_row(rng: &mut fastrand::Rng, load: f64, network_load: f64) -> Vec<f64> {
        vec![
            45.0 + 9.0 * load + 6.0 * normal(rng),
            60.0 + 4.0 * load + 3.0 * normal(rng),
            30.0 + 6.0 * load + 4.0 * normal(rng),
            80.0 + 18.0 * network_load + 12.0 * normal(rng),
            2.0 + 0.3 * normal(rng),
            0.5 + 0.2 * normal(rng),
        ]
    }

    /// How the load varies over normal operation.
    #[derive(Debug, Clone, Copy)]
    enum Load {
        /// Uniform within an operating band (mean 0, variance 1): a host between its quiet and
        /// busy hours.
        Band,
        /// Standard normal: a few moments far out on every load-driven metric at once.
        Gaussian,
    }

    fn normal_rows(rng: &mut fastrand::Rng, n: usize, load: Load) -> Vec<Vec<f64>> {
        (0..n)
            .map(|_| {
                let l = match load {
                    Load::Band => (2.0 * rng.f64() - 1.0) * 3f64.sqrt(),
                    Load::Gaussian => normal(rng),
                };
                host_row(rng, l, l)
            })
            .collect()
    }

    /// An ordinary row with one feature moved 12 marginal standard deviations up: an incident
    /// such as network at 3.5× its mean or the cache error rate at 6×.
    fn far_out(rng: &mut fastrand::Rng, feature: usize) -> Vec<f64> {
        let load = normal(rng) * 0.5;
        let mut row = host_row(rng, load, load);
        row[feature] += 12.0 * SD[feature];
        row
    }

    /// A busy host whose network dropped to about zero: CPU, memory and IO at the top of their
    /// normal range, which normally comes with high network.
    fn busy_without_network(rng: &mut fastrand::Rng) -> Vec<f64> {
        host_row(rng, 2.5, -80.0 / 18.0)
    }

    struct Metrics {
        precision: f64,
        recall: f64,
    }

    fn metrics(flagged: &[usize], is_outlier: impl Fn(usize) -> bool, outliers: usize) -> Metrics {
        let hits = flagged.iter().filter(|&&i| is_outlier(i)).count() as f64;
        Metrics {
            precision: if flagged.is_empty() {
                0.0
            } else {
                hits / flagged.len() as f64
            },
            recall: hits / outliers as f64,
        }
    }

    /// What `detect` measured on 2,000 normal rows plus 10 far-out and 10 jointly unusual rows.
    struct Detection {
        at_threshold: Metrics,
        far_recall: f64,
        joint_recall: f64,
        top20_precision: f64,
        /// Share of the training rows above the threshold.
        flagged_share: f64,
        /// Share of 2,000 fresh normal rows (not trained on) above the threshold.
        fresh_flagged: f64,
    }

    fn detect(load: Load, seed: u64) -> Detection {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut rows = normal_rows(&mut rng, 2000, load);
        for i in 0..10 {
            rows.push(far_out(&mut rng, i % FEATURES.len()));
        }
        for _ in 0..10 {
            rows.push(busy_without_network(&mut rng));
        }
        let forest = IsolationForest::train(&rows, &seeded(seed + 1)).unwrap();
        let scores: Vec<f64> = rows.iter().map(|r| forest.score(r)).collect();
        assert!(scores.iter().all(|s| *s > 0.0 && *s < 1.0));

        let flagged: Vec<usize> = (0..rows.len())
            .filter(|&i| forest.is_anomaly(scores[i]))
            .collect();
        let mut ranked: Vec<usize> = (0..rows.len()).collect();
        ranked.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let fresh = normal_rows(&mut rng, 2000, load);
        let fresh_flagged = fresh
            .iter()
            .filter(|r| forest.is_anomaly(forest.score(r)))
            .count();
        let detection = Detection {
            at_threshold: metrics(&flagged, |i| i >= 2000, 20),
            far_recall: metrics(&flagged, |i| (2000..2010).contains(&i), 10).recall,
            joint_recall: metrics(&flagged, |i| i >= 2010, 10).recall,
            top20_precision: metrics(&ranked[..20], |i| i >= 2000, 20).precision,
            flagged_share: flagged.len() as f64 / rows.len() as f64,
            fresh_flagged: fresh_flagged as f64 / fresh.len() as f64,
        };
        eprintln!(
            "{load:?} load, seed {seed}: threshold {:.3} flags {} rows, precision {:.3}, recall \
             {:.2} (far-out {:.2}, busy without network {:.2}); top-20 precision {:.2}; fresh \
             normal rows flagged {:.3}",
            forest.threshold,
            flagged.len(),
            detection.at_threshold.precision,
            detection.at_threshold.recall,
            detection.far_recall,
            detection.joint_recall,
            detection.top20_precision,
            detection.fresh_flagged,
        );
        detection
    }

    #[test]
    fn finds_injected_outliers_among_normal_operation() {
        let d = detect(Load::Band, 7);
        assert_eq!(
            d.far_recall, 1.0,
            "every far-out row is above the threshold"
        );
        assert_eq!(d.joint_recall, 1.0, "every busy-without-network row too");
        assert!(
            d.top20_precision >= 0.8,
            "top-20 precision {}",
            d.top20_precision
        );
        // Contamination 0.1 flags about a tenth of the training rows, and of live normal rows.
        assert!(
            (0.09..=0.11).contains(&d.flagged_share),
            "{}",
            d.flagged_share
        );
        assert!(
            (0.05..=0.15).contains(&d.fresh_flagged),
            "{}",
            d.fresh_flagged
        );
    }

    #[test]
    fn gaussian_load_tails_compete_with_outliers_but_the_threshold_catches_them() {
        // Normal moments far out on all four load-driven metrics at once isolate about as fast as
        // a single far-out metric (see the module docs), so the top of the ranking mixes them;
        // the contamination threshold still catches every injected row.
        let d = detect(Load::Gaussian, 7);
        assert_eq!(d.far_recall, 1.0);
        assert_eq!(d.joint_recall, 1.0);
        assert!(
            d.top20_precision >= 0.4,
            "top-20 precision {}",
            d.top20_precision
        );
    }

    #[test]
    fn explain_ranks_the_perturbed_feature_first() {
        let mut rng = fastrand::Rng::with_seed(11);
        let rows = normal_rows(&mut rng, 2000, Load::Band);
        let forest = IsolationForest::train(&rows, &seeded(3)).unwrap();
        for (feature, name) in FEATURES.iter().enumerate() {
            let x = far_out(&mut rng, feature);
            let explained = forest.explain(&x);
            assert_eq!(explained.len(), FEATURES.len());
            let total: f64 = explained.iter().map(|(_, share)| share).sum();
            assert!((total - 1.0).abs() < 1e-9);
            assert_eq!(
                explained[0].0, feature,
                "{name} pushed out, explanation {explained:?}"
            );
            assert!(explained[0].1 > 0.4, "{name}: {explained:?}");
        }
        // An ordinary point's credit is spread: no feature dominates.
        let ordinary = host_row(&mut rng, 0.0, 0.0);
        let explained = forest.explain(&ordinary);
        assert!(explained[0].1 < 0.4, "{explained:?}");
    }

    #[test]
    fn constant_data_trains_quickly_and_scores_everything_alike() {
        let rows = vec![vec![1.0, 2.0, 3.0]; 5000];
        let forest = IsolationForest::train(&rows, &seeded(1)).unwrap();
        let score = forest.score(&[1.0, 2.0, 3.0]);
        assert!((score - 0.5).abs() < 1e-12, "{score}");
        for x in [[1.0, 2.0, 3.0], [100.0, -5.0, 0.0]] {
            assert_eq!(forest.score(&x), score);
            assert!(!forest.is_anomaly(forest.score(&x)));
            assert!(forest.explain(&x).iter().all(|&(_, share)| share == 0.0));
        }
        assert_eq!(forest.threshold, score);
        // Every tree is a single leaf.
        assert!(forest.trees.iter().all(|t| t.nodes.len() == 1));
    }

    #[test]
    fn ranges_a_few_ulps_wide_or_overflowing_terminate() {
        // The inputs that hang extended-isolation-forest 0.2.3: min and max a few ULPs apart.
        let mut rng = fastrand::Rng::with_seed(5);
        let tiny = [1.0, 1.0f64.next_up(), 1.0f64.next_up().next_up()];
        let rows: Vec<Vec<f64>> = (0..3000)
            .map(|_| {
                vec![
                    tiny[rng.usize(..3)],
                    if rng.bool() { 0.0 } else { f64::MIN_POSITIVE },
                    if rng.bool() { -f64::MAX } else { f64::MAX },
                    rng.f64(),
                ]
            })
            .collect();
        let forest = IsolationForest::train(&rows, &seeded(9)).unwrap();
        for row in &rows[..100] {
            let s = forest.score(row);
            assert!(s > 0.0 && s < 1.0, "{s}");
        }
        assert!(forest.threshold.is_finite());
    }

    #[test]
    fn split_value_stays_in_half_open_range() {
        let cases = [
            (1.0, 1.0f64.next_up(), 0.999_999_999),
            (0.0, 1.0, 0.0),
            (-f64::MAX, f64::MAX, 0.5),
            (-f64::MAX, f64::MAX, 0.999_999),
            (5.0, 5.0f64.next_up(), 0.5),
        ];
        for (lo, hi, u) in cases {
            let v = split_value(lo, hi, u);
            assert!(lo <= v && v < hi, "{lo} {hi} {u} -> {v}");
        }
    }

    #[test]
    fn escape_probabilities() {
        let cases = [
            (0.5, 0.0, 1.0, 0.0),
            (0.0, 0.0, 1.0, 0.0),
            (1.0, 0.0, 1.0, 0.0),
            (3.0, 0.0, 1.0, 2.0 / 3.0),
            (-1.0, 0.0, 1.0, 0.5),
            (f64::INFINITY, 0.0, 1.0, 1.0),
            (f64::NEG_INFINITY, 0.0, 1.0, 1.0),
            (f64::NAN, 0.0, 1.0, 0.0),
            (f64::MAX, -f64::MAX, 0.0, 0.5),
            (-f64::MAX, 0.0, f64::MAX, 0.5),
        ];
        for (value, low, high, expected) in cases {
            let p = escape(value, low, high);
            assert!(
                (p - expected).abs() < 1e-12,
                "{value} in [{low}, {high}]: {p}"
            );
        }
    }

    #[test]
    fn farther_out_scores_higher() {
        // A tree knows only its sample's range; beyond it, the score keeps rising with distance
        // instead of staying at that of the sample's most extreme row.
        let mut rng = fastrand::Rng::with_seed(17);
        let rows = normal_rows(&mut rng, 2000, Load::Band);
        let forest = IsolationForest::train(&rows, &seeded(4)).unwrap();
        let max_cpu = rows.iter().map(|r| r[0]).fold(f64::MIN, f64::max);
        let mut x = host_row(&mut rng, 0.0, 0.0);
        let mut last = 0.0;
        for cpu in [45.0, max_cpu, 2.0 * max_cpu, 10.0 * max_cpu, f64::INFINITY] {
            x[0] = cpu;
            let score = forest.score(&x);
            assert!(score > last, "cpu {cpu}: {score} after {last}");
            assert!(score < 1.0);
            last = score;
        }
    }

    #[test]
    fn nodes_stay_compact() {
        // 100 trees of at most 511 nodes: about 2 MB per forest with the defaults.
        assert!(std::mem::size_of::<Node>() <= 40);
    }

    #[test]
    fn trees_respect_depth_limit_and_sample_size() {
        let mut rng = fastrand::Rng::with_seed(2);
        let rows = normal_rows(&mut rng, 1500, Load::Band);
        let forest = IsolationForest::train(&rows, &seeded(8)).unwrap();
        assert_eq!(forest.trees.len(), 100);
        assert_eq!(forest.training_rows(), 1500);
        assert_eq!(forest.dims, 6);
        for tree in &forest.trees {
            assert_eq!(tree.nodes[0].size(), 256);
            assert!(tree.nodes.len() < 2 * 256);
            // Depth of every node, from the preorder layout.
            let mut depth = vec![0usize; tree.nodes.len()];
            for (i, node) in tree.nodes.iter().enumerate() {
                if let Node::Split { right, .. } = *node {
                    depth[i + 1] = depth[i] + 1;
                    depth[right as usize] = depth[i] + 1;
                }
            }
            assert!(depth.iter().all(|&d| d <= 8));
            let leaf_rows: u32 = tree
                .nodes
                .iter()
                .filter(|n| matches!(n, Node::Leaf { .. }))
                .map(Node::size)
                .sum();
            assert_eq!(leaf_rows, 256, "leaves partition the sample");
        }
    }

    #[test]
    fn fewer_rows_than_sample_size_use_them_all() {
        let mut rng = fastrand::Rng::with_seed(4);
        let rows = normal_rows(&mut rng, 100, Load::Band);
        let config = ForestConfig {
            min_training_samples: 50,
            ..seeded(1)
        };
        let forest = IsolationForest::train(&rows, &config).unwrap();
        assert!(forest.trees.iter().all(|t| t.nodes[0].size() == 100));
    }

    #[test]
    fn same_seed_same_scores_and_different_seed_different_trees() {
        let mut rng = fastrand::Rng::with_seed(6);
        let rows = normal_rows(&mut rng, 1200, Load::Band);
        let a = IsolationForest::train(&rows, &seeded(99)).unwrap();
        let b = IsolationForest::train(&rows, &seeded(99)).unwrap();
        let c = IsolationForest::train(&rows, &seeded(100)).unwrap();
        assert_eq!(a, b);
        for row in &rows[..50] {
            assert_eq!(a.score(row), b.score(row));
        }
        assert_ne!(a.trees, c.trees);
    }

    #[test]
    fn flat_and_row_input_agree() {
        let mut rng = fastrand::Rng::with_seed(12);
        let rows = normal_rows(&mut rng, 1000, Load::Band);
        let flat: Vec<f64> = rows.concat();
        let from_rows = IsolationForest::train(&rows, &seeded(5)).unwrap();
        let from_flat = IsolationForest::train_flat(&flat, 6, &seeded(5)).unwrap();
        assert_eq!(from_rows, from_flat);
        // Arrays work as rows too.
        let arrays: Vec<[f64; 2]> = (0..1000).map(|i| [i as f64, (i % 7) as f64]).collect();
        assert!(IsolationForest::train(&arrays, &seeded(5)).is_ok());
    }

    #[test]
    fn bad_input_gives_clear_errors() {
        let config = seeded(1);
        let check =
            |result: Result<IsolationForest, TrainError>, expected: TrainError, msg: &str| {
                let err = result.unwrap_err();
                assert_eq!(err, expected);
                assert_eq!(err.to_string(), msg);
            };
        let rows = vec![vec![1.0, 2.0]; 999];
        check(
            IsolationForest::train(&rows, &config),
            TrainError::TooFewRows {
                rows: 999,
                needed: 1000,
            },
            "too few training rows: 999 given, at least 1000 needed",
        );
        let no_rows: Vec<Vec<f64>> = Vec::new();
        check(
            IsolationForest::train(&no_rows, &config),
            TrainError::TooFewRows {
                rows: 0,
                needed: 1000,
            },
            "too few training rows: 0 given, at least 1000 needed",
        );

        let mut rows = vec![vec![1.0, 2.0]; 1000];
        rows[17] = vec![1.0, 2.0, 3.0];
        check(
            IsolationForest::train(&rows, &config),
            TrainError::DimensionMismatch {
                row: 17,
                expected: 2,
                found: 3,
            },
            "training row 17 has 3 features, expected 2 like row 0",
        );

        let mut rows = vec![vec![1.0, 2.0]; 1000];
        rows[500][1] = f64::NAN;
        let err = IsolationForest::train(&rows, &config).unwrap_err();
        assert!(matches!(
            err,
            TrainError::NonFinite {
                row: 500,
                feature: 1,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "training row 500, feature 1 is NaN; values must be finite"
        );
        rows[500][1] = f64::INFINITY;
        assert_eq!(
            IsolationForest::train(&rows, &config)
                .unwrap_err()
                .to_string(),
            "training row 500, feature 1 is inf; values must be finite"
        );

        check(
            IsolationForest::train(&vec![Vec::<f64>::new(); 1000], &config),
            TrainError::NoFeatures,
            "training rows have no features",
        );
        check(
            IsolationForest::train_flat(&[0.0; 2999], 2, &config),
            TrainError::RaggedMatrix { len: 2999, dims: 2 },
            "flat training matrix of 2999 values is not a whole number of 2-feature rows",
        );
        check(
            IsolationForest::train_flat(&[0.0; 10], 0, &config),
            TrainError::NoFeatures,
            "training rows have no features",
        );
    }

    #[test]
    fn invalid_config_is_rejected_with_the_field_name() {
        let rows = vec![vec![1.0]; 1000];
        let cases: [(ForestConfig, &str); 7] = [
            (
                ForestConfig {
                    trees: 0,
                    ..seeded(1)
                },
                "trees",
            ),
            (
                ForestConfig {
                    sample_size: 1,
                    ..seeded(1)
                },
                "sample_size",
            ),
            (
                ForestConfig {
                    contamination: 0.6,
                    ..seeded(1)
                },
                "contamination",
            ),
            (
                ForestConfig {
                    contamination: f64::NAN,
                    ..seeded(1)
                },
                "contamination",
            ),
            (
                ForestConfig {
                    min_training_samples: 1,
                    ..seeded(1)
                },
                "min_training_samples",
            ),
            (
                ForestConfig {
                    training_window: Duration::ZERO,
                    ..seeded(1)
                },
                "training_window",
            ),
            (
                ForestConfig {
                    retrain_every: Duration::ZERO,
                    ..seeded(1)
                },
                "retrain_every",
            ),
        ];
        for (config, field) in cases {
            let err = IsolationForest::train(&rows, &config).unwrap_err();
            let TrainError::Config(ConfigError { field: got, .. }) = &err else {
                panic!("{field}: {err:?}");
            };
            assert_eq!(*got, field);
            assert!(
                err.to_string()
                    .starts_with(&format!("forest config field `{field}` "))
            );
        }
        assert_eq!(ForestConfig::default().validate(), Ok(()));
    }

    #[test]
    fn config_deserializes_with_defaults_and_human_durations() {
        let config: ForestConfig = toml::from_str("").unwrap();
        assert_eq!(config, ForestConfig::default());
        assert_eq!(config.trees, 100);
        assert_eq!(config.sample_size, 256);
        assert_eq!(config.contamination, 0.1);
        assert_eq!(config.min_training_samples, 1000);
        assert_eq!(config.training_window, Duration::from_secs(86_400));
        assert_eq!(config.retrain_every, Duration::from_secs(3600));
        assert_eq!(config.seed, None);

        let config: ForestConfig = toml::from_str(
            "trees = 50\ntraining_window = \"12h\"\nretrain_every = \"30m\"\nseed = 7\n",
        )
        .unwrap();
        assert_eq!(config.trees, 50);
        assert_eq!(config.training_window, Duration::from_secs(12 * 3600));
        assert_eq!(config.retrain_every, Duration::from_secs(1800));
        assert_eq!(config.seed, Some(7));

        let err = toml::from_str::<ForestConfig>("tree = 5").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn average_path_length_matches_known_values() {
        assert_eq!(average_path_length(0), 0.0);
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        // c(3) = 2·(1 + 1/2) − 4/3.
        assert!((average_path_length(3) - (3.0 - 4.0 / 3.0)).abs() < 1e-12);
        // The approximation joins the exact sum smoothly.
        let exact = |i: usize| (1..=i).map(|k| 1.0 / k as f64).sum::<f64>();
        for i in [64, 100, 255, 1000] {
            assert!((harmonic(i) - exact(i)).abs() < 1e-10, "H({i})");
        }
        // Exactly 2·H(255) − 2·255/256 (papers quote 10.2448, from H(i) ≈ ln i + γ).
        assert!((average_path_length(256) - 10.248_689_925_634_56).abs() < 1e-9);
    }

    #[test]
    fn zero_contamination_puts_the_threshold_at_the_highest_training_score() {
        let mut rng = fastrand::Rng::with_seed(13);
        let rows = normal_rows(&mut rng, 1000, Load::Band);
        let config = ForestConfig {
            contamination: 0.0,
            ..seeded(2)
        };
        let forest = IsolationForest::train(&rows, &config).unwrap();
        let highest = rows.iter().map(|r| forest.score(r)).fold(0.0, f64::max);
        assert_eq!(forest.threshold, highest);
        assert!(rows.iter().all(|r| !forest.is_anomaly(forest.score(r))));
        // Far out on every feature: isolated by the first split, above anything trained on.
        let everything_far: Vec<f64> = (0..FEATURES.len())
            .map(|f| rows[0][f] + 12.0 * SD[f])
            .collect();
        assert!(forest.is_anomaly(forest.score(&everything_far)));
    }

    #[test]
    #[should_panic(expected = "isolation forest trained on 6 features, given 5")]
    fn scoring_the_wrong_dimension_panics() {
        let mut rng = fastrand::Rng::with_seed(14);
        let forest =
            IsolationForest::train(&normal_rows(&mut rng, 1000, Load::Band), &seeded(1)).unwrap();
        forest.score(&[0.0; 5]);
    }

    #[test]
    fn a_day_at_one_second_trains() {
        // 86,400 rows × 8 features with the default 100 trees: each tree sees only ψ = 256 rows,
        // so growing is cheap; scoring every row for the threshold dominates.
        let mut rng = fastrand::Rng::with_seed(15);
        let mut data = Vec::with_capacity(86_400 * 8);
        for _ in 0..86_400 {
            let load = normal(&mut rng);
            data.extend((0..8).map(|f| 10.0 * f as f64 + load + normal(&mut rng)));
        }
        let forest = IsolationForest::train_flat(&data, 8, &seeded(16)).unwrap();
        assert_eq!(forest.training_rows(), 86_400);
        assert_eq!(forest.trees.len(), 100);
        let s = forest.score(&data[..8]);
        assert!(s > 0.0 && s < 1.0);
    }

    #[test]
    fn method_deserializes_by_its_snake_case_name() {
        let config: ForestConfig = toml::from_str("method = \"one_class_svm\"").unwrap();
        assert_eq!(config.method, NodeModelMethod::OneClassSvm);
        let config: ForestConfig = toml::from_str("method = \"isolation_forest\"").unwrap();
        assert_eq!(config.method, NodeModelMethod::IsolationForest);
        let err = toml::from_str::<ForestConfig>("method = \"svm\"").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("method"), "{message}");
        assert!(message.contains("one_class_svm"), "{message}");
    }

    #[test]
    fn forest_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<IsolationForest>();
    }
}

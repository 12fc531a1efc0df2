//! One-Class SVM (Schölkopf et al., 2001, the ν formulation) over one node's feature vectors: the
//! alternative to the [`IsolationForest`](super::forest::IsolationForest), chosen by
//! [`ForestConfig::method`], with the same score scale, threshold meaning and explanations. Pure
//! computation with no I/O and no clock.
//!
//! # Model
//!
//! Training finds the smallest region of feature space, in an RBF kernel's feature space, that
//! holds all but a share ν of the training rows: the dual problem
//!
//! ```text
//! minimise ½ Σᵢⱼ αᵢ αⱼ K(xᵢ, xⱼ)   subject to 0 ≤ αᵢ ≤ 1, Σᵢ αᵢ = ν·n,   K(a, b) = exp(−γ‖a − b‖²)
//! ```
//!
//! with ν = [`ForestConfig::contamination`] (at least `1/n`, so that a contamination of 0 still
//! leaves one row to define the boundary). The rows with `αᵢ > 0` are the support vectors; with
//! `wᵢ = αᵢ / Σα`, the decision function `f(x) = Σᵢ wᵢ K(sᵢ, x)` is a kernel density estimate
//! over them, lower away from the data.
//!
//! **Solver.** Sequential minimal optimisation with the second-order working-set selection of Fan,
//! Chen & Lin (2005), as in LIBSVM: each step moves the pair of multipliers that most decreases
//! the objective, exactly, and training stops when the KKT conditions hold to 10⁻³ (LIBSVM's
//! default). The problem is convex, so the result is the exact optimum to that tolerance.
//!
//! **Bounded cost.** At most [`MAX_SVM_ROWS`] rows enter the solver, taken evenly spaced through
//! the training rows (deterministic, and spread over the whole window in time). Their kernel
//! matrix is computed once (`n²·dims/2` operations, `4·n²` bytes as `f32`: 16 MB at 2,000 rows,
//! freed after training); each solver step costs `O(n)` and the steps are capped at
//! [`MAX_STEPS_PER_ROW`]`·n` (usually far fewer are needed). Setting the threshold scores every
//! training row, `O(rows · support vectors · dims)`; scoring a live vector costs
//! `O(support vectors · dims)` (at least `ν·n`, 200 with the defaults) and allocates one vector
//! of `dims`.
//!
//! # Features
//!
//! Each feature is centred on its training median and divided by its training MAD (× 1.4826, the
//! standard deviation of a normal distribution with that MAD), so the anomalies the training
//! window is assumed to hold do not stretch the scale; a feature whose MAD is 0 (step-like, mostly
//! one value) is divided by its standard deviation instead. A feature constant over the training
//! rows is left out, as the forest never splits on one: nothing says how far a change in it is.
//!
//! **γ, by the median heuristic:** `γ = 1 / median ‖xᵢ − xⱼ‖²` over pairs of (at most 500) of
//! the solver's rows, ignoring pairs at distance 0, so that a typical pair of rows has kernel
//! `e⁻¹`. Chosen over scikit-learn's `"scale"` (`1 / (dims · variance)`) because that variance
//! is the one statistic the window's anomalies inflate most: one spike of 50 robust standard
//! deviations would shrink γ, and so blur the boundary, for everything else. The median ignores
//! the spikes and adapts to correlated features (where the effective dimension is smaller than
//! `dims`). On the labelled corpus (`hcmon-bench-node-models`) the two are within a few points
//! of each other, the median slightly ahead at the live threshold and slightly behind at the best
//! threshold found after the fact; the argument above decides.
//!
//! # Score
//!
//! `f` is calibrated on the training rows like the forest's threshold: `t` is the
//! `contamination` quantile of `f` over every training row (not only the solver's). With
//! `u = ln t − ln f(x)`, how many nats the density at `x` lies below the threshold's, the score
//! is `0.5 + 0.5 · u / (1 + |u|)`, in `[0, 1]`: 0.5 exactly at the threshold, so
//! [`OneClassSvm::is_anomaly`] is `score > 0.5` and about `contamination` of the training rows
//! score above it; 0.75 at a density `e` times lower; towards 1 as `x` leaves the data and
//! towards 0 deep inside it. `ln f` is computed by log-sum-exp, so it keeps falling like
//! `−γ · distance²` after every kernel term has underflowed: far points stay ranked by how far
//! they are. (A plain ratio `t / (t + f)` reaches 1 once `f` underflows, about 6 standard
//! deviations out; on the labelled corpus that tied a third of the flagged rows at 1 and cost
//! most of the best-threshold score.)
//!
//! # Explanations
//!
//! With `πᵢ = wᵢ K(sᵢ, x) / f(x)`, the share of `f(x)` each support vector contributes (almost all
//! of it from those nearest `x`), `ln f(x) = Σᵢ πᵢ (ln wᵢ − ln πᵢ) − γ Σₖ Σᵢ πᵢ (xₖ − sᵢₖ)²`
//! exactly: the drop of the decision function splits into one term per feature `k`,
//! `γ Σᵢ πᵢ (xₖ − sᵢₖ)²`, its standardised squared distance to the nearest support vectors.
//! [`OneClassSvm::explain`] reports each feature's share of that drop. The `πᵢ` are computed in
//! log space, so a point far beyond every kernel's reach is still explained by its nearest
//! support vectors.

use super::forest::{ForestConfig, TrainError, check_rows};
use super::stats::quantile_sorted;

/// Most training rows the solver works on; more are subsampled evenly.
pub const MAX_SVM_ROWS: usize = 2000;

/// Cap on solver steps, per solver row.
pub const MAX_STEPS_PER_ROW: usize = 100;

/// Most solver rows whose pairwise distances set γ.
const GAMMA_ROWS: usize = 500;

/// KKT tolerance (LIBSVM's default `eps`).
const TOLERANCE: f64 = 1e-3;

/// Replaces a non-positive curvature between two rows (duplicates) in a solver step (LIBSVM's).
const TAU: f64 = 1e-12;

/// Standard deviation of a normal distribution whose median absolute deviation is 1.
const MAD_TO_SD: f64 = 1.482_602_218_505_602;

/// A trained One-Class SVM. Immutable; share it behind an `Arc` and replace it on retraining.
#[derive(Debug, Clone, PartialEq)]
pub struct OneClassSvm {
    dims: usize,
    /// Per-feature training median.
    center: Vec<f64>,
    /// Per-feature `1 / scale`; 0 for a feature constant in training (left out).
    inverse_scale: Vec<f64>,
    gamma: f64,
    /// Standardised support vectors, row-major.
    support: Vec<f64>,
    /// Their log weights `ln wᵢ` (the `wᵢ` sum to 1).
    log_weights: Vec<f64>,
    /// `ln t`: the `contamination` quantile of `ln f` over the training rows.
    log_threshold: f64,
    training_rows: usize,
}

impl OneClassSvm {
    /// Trains on `rows` (each a feature vector of the same length) with `config`'s
    /// `contamination` (as ν) and `min_training_samples`; the forest's other settings do not
    /// apply, and training is deterministic whatever the seed.
    ///
    /// Errors: invalid config, fewer than `min_training_samples` rows, rows of different lengths,
    /// empty rows, or a non-finite value.
    pub fn train<R: AsRef<[f64]>>(rows: &[R], config: &ForestConfig) -> Result<Self, TrainError> {
        config.validate()?;
        let dims = check_rows(rows, config)?;
        let (center, inverse_scale) = standardizer(rows, dims);
        let mut model = Self {
            dims,
            center,
            inverse_scale,
            gamma: 1.0,
            support: Vec::new(),
            log_weights: Vec::new(),
            log_threshold: 0.0,
            training_rows: rows.len(),
        };

        let n = rows.len().min(MAX_SVM_ROWS);
        let mut solver_rows = Vec::with_capacity(n * dims);
        for i in 0..n {
            solver_rows.extend(model.standardize(rows[spread(i, n, rows.len())].as_ref()));
        }
        model.gamma = median_heuristic(&solver_rows, dims);
        let alpha = solve(&solver_rows, dims, model.gamma, config.contamination);
        let total: f64 = alpha.iter().sum();
        for (i, &a) in alpha.iter().enumerate().filter(|(_, a)| **a > 0.0) {
            model
                .support
                .extend_from_slice(&solver_rows[i * dims..][..dims]);
            model.log_weights.push((a / total).ln());
        }

        let mut z = vec![0.0; dims];
        let mut values: Vec<f64> = rows
            .iter()
            .map(|r| {
                model.standardize_into(r.as_ref(), &mut z);
                model.log_decision(&z)
            })
            .collect();
        values.sort_unstable_by(f64::total_cmp);
        model.log_threshold = quantile_sorted(&values, config.contamination);
        Ok(model)
    }

    /// Anomaly score of `x` in `[0, 1]`: above 0.5 is anomalous (see [`Self::is_anomaly`]),
    /// towards 1 the further `x` lies from the training rows, towards 0 deep inside them.
    ///
    /// A NaN in `x` is left out of the distances (it says nothing); an infinite value on a
    /// feature that varied in training puts `x` beyond every kernel, scoring 1.
    ///
    /// # Panics
    ///
    /// If `x.len()` differs from the training rows' feature count.
    pub fn score(&self, x: &[f64]) -> f64 {
        self.check_dims(x);
        let u = self.log_threshold - self.log_decision(&self.standardize(x));
        if u.is_nan() {
            // Distances overflowed f64 both at `x` and at the threshold's row (values near
            // f64::MAX): as far out as the threshold, not beyond it.
            0.5
        } else if u.is_infinite() {
            if u > 0.0 { 1.0 } else { 0.0 }
        } else {
            0.5 + 0.5 * u / (1.0 + u.abs())
        }
    }

    /// Whether `score` is beyond the contamination threshold, calibrated to 0.5: about
    /// `contamination` of the training rows score above it.
    pub fn is_anomaly(&self, score: f64) -> bool {
        score > 0.5
    }

    /// Which features took `x` away from the training rows: `(feature index, share)` for every
    /// feature, largest share first (ties by index), shares summing to 1; each share is the
    /// feature's part of the decision function's drop (see the module docs). All shares are 0
    /// when `x` coincides with its nearest support vectors on every feature, and a feature left
    /// out in training always has share 0.
    ///
    /// # Panics
    ///
    /// If `x.len()` differs from the training rows' feature count.
    pub fn explain(&self, x: &[f64]) -> Vec<(usize, f64)> {
        self.check_dims(x);
        let z = self.standardize(x);
        let log_terms: Vec<f64> = self.log_terms(&z).collect();
        let top = log_terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // π in log space; when every distance is infinite, all support vectors weigh alike.
        let responsibility: Vec<f64> = if top.is_finite() {
            log_terms.iter().map(|l| (l - top).exp()).collect()
        } else {
            vec![1.0; self.log_weights.len()]
        };
        let mut drop = vec![0.0; self.dims];
        for (s, pi) in self.support_vectors().zip(&responsibility) {
            for ((d, &zk), &sk) in drop.iter_mut().zip(&z).zip(s) {
                let diff = zk - sk;
                if !diff.is_nan() {
                    *d += pi * diff * diff;
                }
            }
        }
        shares(drop)
    }

    /// Rows the model was trained on (before subsampling for the solver).
    pub fn training_rows(&self) -> usize {
        self.training_rows
    }

    /// `ln f(z) = ln Σ wᵢ K(sᵢ, z)` for a standardised `z`, by a one-pass log-sum-exp: exact
    /// however far `z` is (−∞ only at infinite distance), with no allocation.
    fn log_decision(&self, z: &[f64]) -> f64 {
        let mut top = f64::NEG_INFINITY;
        let mut sum = 0.0;
        for term in self.log_terms(z) {
            if term > top {
                sum = sum * (top - term).exp() + 1.0;
                top = term;
            } else {
                sum += (term - top).exp();
            }
        }
        if top.is_finite() { top + sum.ln() } else { top }
    }

    /// `ln (wᵢ K(sᵢ, z))` per support vector.
    fn log_terms<'a>(&'a self, z: &'a [f64]) -> impl Iterator<Item = f64> + 'a {
        self.support_vectors()
            .zip(&self.log_weights)
            .map(|(s, lw)| lw - self.gamma * squared_distance(z, s))
    }

    fn support_vectors(&self) -> std::slice::ChunksExact<'_, f64> {
        self.support.chunks_exact(self.dims)
    }

    fn standardize(&self, x: &[f64]) -> Vec<f64> {
        let mut z = vec![0.0; self.dims];
        self.standardize_into(x, &mut z);
        z
    }

    /// A left-out feature standardises to 0 (NaN for an infinite value, then skipped).
    fn standardize_into(&self, x: &[f64], z: &mut [f64]) {
        for (((z, &v), &c), &s) in z
            .iter_mut()
            .zip(x)
            .zip(&self.center)
            .zip(&self.inverse_scale)
        {
            *z = (v - c) * s;
        }
    }

    fn check_dims(&self, x: &[f64]) {
        assert_eq!(
            x.len(),
            self.dims,
            "one-class SVM trained on {} features, given {}",
            self.dims,
            x.len()
        );
    }
}

/// Index of the `i`-th of `n` rows spread evenly over `len` (`n <= len`).
fn spread(i: usize, n: usize, len: usize) -> usize {
    // u128: `i · len` may exceed usize for huge inputs.
    (i as u128 * len as u128 / n as u128) as usize
}

/// Squared distance over the features where the difference is a number (NaN ones skipped).
fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x - y)
        .filter(|d| !d.is_nan())
        .map(|d| d * d)
        .sum()
}

/// Per-feature median and `1 / scale` (MAD × 1.4826, else the standard deviation, else 0 for a
/// constant feature) over finite rows of `dims` features.
fn standardizer<R: AsRef<[f64]>>(rows: &[R], dims: usize) -> (Vec<f64>, Vec<f64>) {
    let mut column = Vec::with_capacity(rows.len());
    (0..dims)
        .map(|k| {
            column.clear();
            column.extend(rows.iter().map(|r| r.as_ref()[k]));
            let median = upper_median(&mut column);
            let mean = column.iter().sum::<f64>() / column.len() as f64;
            let variance =
                column.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / column.len() as f64;
            for v in column.iter_mut() {
                *v = (*v - median).abs();
            }
            let mad = upper_median(&mut column) * MAD_TO_SD;
            let scale = if mad > 0.0 { mad } else { variance.sqrt() };
            let inverse = if scale > 0.0 && scale.is_finite() {
                1.0 / scale
            } else {
                0.0
            };
            (median, inverse)
        })
        .unzip()
}

/// The upper median (element `len / 2` in order) of a non-empty slice, reordering it.
fn upper_median(values: &mut [f64]) -> f64 {
    let mid = values.len() / 2;
    *values.select_nth_unstable_by(mid, f64::total_cmp).1
}

/// `1 / median` of the non-zero squared distances between up to [`GAMMA_ROWS`] evenly spread
/// rows; 1 when all those rows coincide (nothing to learn, any γ scores alike).
fn median_heuristic(rows: &[f64], dims: usize) -> f64 {
    let n = rows.len() / dims;
    let m = n.min(GAMMA_ROWS);
    let picked: Vec<&[f64]> = (0..m)
        .map(|i| &rows[spread(i, m, n) * dims..][..dims])
        .collect();
    let mut distances: Vec<f64> = picked
        .iter()
        .enumerate()
        .flat_map(|(i, a)| picked[i + 1..].iter().map(|b| squared_distance(a, b)))
        .filter(|d| *d > 0.0)
        .collect();
    if distances.is_empty() {
        return 1.0;
    }
    let median = upper_median(&mut distances);
    if median.is_finite() {
        1.0 / median
    } else {
        1.0
    }
}

/// The dual's multipliers `αᵢ ∈ [0, 1]`, `Σ αᵢ = ν·n`, for the standardised `rows` (row-major,
/// `dims` features): SMO with second-order working-set selection (LIBSVM's `Solver`, all labels
/// +1, no shrinking).
fn solve(rows: &[f64], dims: usize, gamma: f64, contamination: f64) -> Vec<f64> {
    let n = rows.len() / dims;
    let kernel = kernel_matrix(rows, dims, gamma);
    let k = |i: usize, j: usize| f64::from(kernel[i * n + j]);

    // Feasible start (LIBSVM's): the first ⌊ν·n⌋ multipliers at 1, the remainder on the next.
    let total = (contamination * n as f64).max(1.0);
    let mut alpha = vec![0.0; n];
    let whole = total.floor() as usize;
    alpha[..whole].fill(1.0);
    if whole < n {
        alpha[whole] = total - whole as f64;
    }
    // Gradient of the objective, `Qα`.
    let mut gradient = vec![0.0; n];
    for (j, &a) in alpha.iter().enumerate().filter(|(_, a)| **a > 0.0) {
        for (i, g) in gradient.iter_mut().enumerate() {
            *g += a * k(i, j);
        }
    }

    for _ in 0..MAX_STEPS_PER_ROW * n {
        // i: the multiplier that can grow with the steepest descent.
        let mut up = f64::NEG_INFINITY;
        let mut i = None;
        for (t, (&a, &g)) in alpha.iter().zip(&gradient).enumerate() {
            if a < 1.0 && -g >= up {
                up = -g;
                i = Some(t);
            }
        }
        let Some(i) = i else { break };
        // j: among those that can shrink, the one whose pairing with i gains the most.
        let mut down = f64::NEG_INFINITY;
        let mut best = f64::INFINITY;
        let mut j = None;
        for (t, (&a, &g)) in alpha.iter().zip(&gradient).enumerate() {
            if a <= 0.0 {
                continue;
            }
            down = down.max(g);
            let gain = up + g;
            if gain > 0.0 {
                let curvature = positive_curvature(k(i, i) + k(t, t) - 2.0 * k(i, t));
                let objective = -gain * gain / curvature;
                if objective <= best {
                    best = objective;
                    j = Some(t);
                }
            }
        }
        let Some(j) = j else { break };
        if up + down < TOLERANCE {
            break;
        }
        let curvature = positive_curvature(k(i, i) + k(j, j) - 2.0 * k(i, j));
        let room = 1.0 - alpha[i];
        let step = ((gradient[j] - gradient[i]) / curvature)
            .min(room)
            .min(alpha[j]);
        // Land exactly on a bound when one limits the step, so the bound tests above hold.
        alpha[i] = if step == room { 1.0 } else { alpha[i] + step };
        alpha[j] = if step == alpha[j] {
            0.0
        } else {
            alpha[j] - step
        };
        for (t, g) in gradient.iter_mut().enumerate() {
            *g += step * (k(i, t) - k(j, t));
        }
    }
    alpha
}

fn positive_curvature(c: f64) -> f64 {
    if c > 0.0 { c } else { TAU }
}

/// The full symmetric RBF kernel matrix of `rows`, row-major, as `f32` (half the memory; the
/// solver's tolerance is far above `f32` precision).
fn kernel_matrix(rows: &[f64], dims: usize, gamma: f64) -> Vec<f32> {
    let n = rows.len() / dims;
    let mut kernel = vec![0.0f32; n * n];
    for i in 0..n {
        kernel[i * n + i] = 1.0;
        let a = &rows[i * dims..][..dims];
        for j in i + 1..n {
            let value = (-gamma * squared_distance(a, &rows[j * dims..][..dims])).exp() as f32;
            kernel[i * n + j] = value;
            kernel[j * n + i] = value;
        }
    }
    kernel
}

/// Normalises per-feature drops into shares, largest first (ties by index). Infinite drops share
/// everything equally; all zero gives all-zero shares.
fn shares(drop: Vec<f64>) -> Vec<(usize, f64)> {
    let infinite = drop.iter().filter(|d| d.is_infinite()).count();
    let total: f64 = drop.iter().sum();
    let mut shares: Vec<(usize, f64)> = drop
        .into_iter()
        .map(|d| {
            if infinite > 0 {
                if d.is_infinite() {
                    1.0 / infinite as f64
                } else {
                    0.0
                }
            } else if total > 0.0 {
                d / total
            } else {
                0.0
            }
        })
        .enumerate()
        .collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    shares
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::forest::ConfigError;
    use crate::analytics::test_support::normal;

    fn config() -> ForestConfig {
        ForestConfig {
            min_training_samples: 100,
            ..ForestConfig::default()
        }
    }

    /// A node's ordinary minutes: CPU percent, memory percent and latency in ms, on their own
    /// scales, CPU and latency moving together.
    fn cluster(rng: &mut fastrand::Rng, n: usize) -> Vec<Vec<f64>> {
        (0..n)
            .map(|_| {
                let load = normal(rng);
                vec![
                    40.0 + 5.0 * load + normal(rng),
                    60.0 + 2.0 * normal(rng),
                    3.0 + 0.5 * load + 0.1 * normal(rng),
                ]
            })
            .collect()
    }

    #[test]
    fn a_cluster_trains_and_far_points_score_above_half() {
        let mut rng = fastrand::Rng::with_seed(1);
        let rows = cluster(&mut rng, 1000);
        let svm = OneClassSvm::train(&rows, &config()).unwrap();
        assert_eq!(svm.training_rows(), 1000);

        let central = svm.score(&[40.0, 60.0, 3.0]);
        assert!(central < 0.5 && !svm.is_anomaly(central), "{central}");
        // Memory 10 standard deviations up; CPU high with latency low (each ordinary alone).
        for far in [[40.0, 80.0, 3.0], [52.0, 60.0, 1.8], [1e9, 60.0, 3.0]] {
            let s = svm.score(&far);
            assert!(s > 0.5 && svm.is_anomaly(s), "{far:?}: {s}");
        }
        assert_eq!(svm.score(&[f64::INFINITY, 60.0, 3.0]), 1.0);
        // Far beyond every kernel's reach, further still scores higher.
        let (far, further) = (
            svm.score(&[40.0, 140.0, 3.0]),
            svm.score(&[40.0, 200.0, 3.0]),
        );
        assert!(
            0.99 < far && far < further && further < 1.0,
            "{far} {further}"
        );

        // About `contamination` of the training rows are beyond the threshold.
        let flagged = rows.iter().filter(|r| svm.is_anomaly(svm.score(r))).count();
        assert!((90..=110).contains(&flagged), "{flagged}");
    }

    #[test]
    fn explain_names_the_feature_that_moved() {
        let mut rng = fastrand::Rng::with_seed(2);
        let svm = OneClassSvm::train(&cluster(&mut rng, 1000), &config()).unwrap();
        for (x, moved) in [
            ([40.0, 75.0, 3.0], 1),
            ([40.0, 60.0, 9.0], 2),
            ([1e12, 60.0, 3.0], 0),
        ] {
            let shares = svm.explain(&x);
            assert_eq!(shares[0].0, moved, "{x:?}: {shares:?}");
            assert!(shares[0].1 > 0.8, "{x:?}: {shares:?}");
            let total: f64 = shares.iter().map(|(_, s)| s).sum();
            assert!((total - 1.0).abs() < 1e-9);
            assert!(shares.windows(2).all(|w| w[0].1 >= w[1].1));
        }
        let shares = svm.explain(&[f64::INFINITY, 60.0, f64::NAN]);
        assert_eq!(shares, vec![(0, 1.0), (1, 0.0), (2, 0.0)]);
    }

    #[test]
    fn large_windows_are_subsampled_and_training_is_deterministic() {
        let mut rng = fastrand::Rng::with_seed(3);
        let rows = cluster(&mut rng, 10_000);
        let a = OneClassSvm::train(&rows, &config()).unwrap();
        let b = OneClassSvm::train(&rows, &config()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.training_rows(), 10_000);
        assert!(a.log_weights.len() <= MAX_SVM_ROWS);
        assert!(a.score(&[40.0, 90.0, 3.0]) > 0.5);
    }

    #[test]
    fn a_constant_feature_is_left_out_and_identical_rows_learn_nothing() {
        let mut rng = fastrand::Rng::with_seed(4);
        let mut rows = cluster(&mut rng, 500);
        for r in &mut rows {
            r.push(7.0);
        }
        let svm = OneClassSvm::train(&rows, &config()).unwrap();
        let ordinary = svm.score(&[40.0, 60.0, 3.0, 7.0]);
        assert_eq!(svm.score(&[40.0, 60.0, 3.0, 1e6]), ordinary);
        assert_eq!(svm.explain(&[40.0, 60.0, 3.0, 1e6])[3], (3, 0.0));

        let same = vec![vec![1.0, 2.0]; 200];
        let svm = OneClassSvm::train(&same, &config()).unwrap();
        assert_eq!(svm.score(&[1.0, 2.0]), 0.5);
        assert_eq!(svm.score(&[5.0, -3.0]), 0.5);
        assert!(svm.explain(&[5.0, -3.0]).iter().all(|(_, s)| *s == 0.0));
    }

    #[test]
    fn zero_contamination_flags_nothing_it_was_trained_on() {
        let mut rng = fastrand::Rng::with_seed(5);
        let rows = cluster(&mut rng, 500);
        let config = ForestConfig {
            contamination: 0.0,
            ..config()
        };
        let svm = OneClassSvm::train(&rows, &config).unwrap();
        assert!(rows.iter().all(|r| !svm.is_anomaly(svm.score(r))));
        assert!(svm.is_anomaly(svm.score(&[40.0, 100.0, 3.0])));
    }

    #[test]
    fn garbage_is_a_train_error_never_a_panic() {
        let config = config();
        let empty: Vec<Vec<f64>> = Vec::new();
        assert_eq!(
            OneClassSvm::train(&empty, &config).unwrap_err(),
            TrainError::TooFewRows {
                rows: 0,
                needed: 100
            }
        );
        assert_eq!(
            OneClassSvm::train(&vec![Vec::<f64>::new(); 200], &config).unwrap_err(),
            TrainError::NoFeatures
        );
        let mut ragged = vec![vec![1.0, 2.0]; 200];
        ragged[17].push(3.0);
        let err = OneClassSvm::train(&ragged, &config).unwrap_err();
        assert_eq!(
            err.to_string(),
            "training row 17 has 3 features, expected 2 like row 0"
        );
        let mut bad = vec![vec![1.0, 2.0]; 200];
        bad[50][1] = f64::NAN;
        assert_eq!(
            OneClassSvm::train(&bad, &config).unwrap_err().to_string(),
            "training row 50, feature 1 is NaN; values must be finite"
        );
        bad[50][1] = f64::NEG_INFINITY;
        assert!(matches!(
            OneClassSvm::train(&bad, &config),
            Err(TrainError::NonFinite {
                row: 50,
                feature: 1,
                ..
            })
        ));
        let err = OneClassSvm::train(
            &vec![vec![1.0]; 200],
            &ForestConfig {
                contamination: 0.7,
                ..config
            },
        )
        .unwrap_err();
        assert!(matches!(
            err,
            TrainError::Config(ConfigError {
                field: "contamination",
                ..
            })
        ));
        // Extreme but finite values train.
        let huge: Vec<Vec<f64>> = (0..200)
            .map(|i| vec![f64::MAX / (1.0 + i as f64), -f64::MAX])
            .collect();
        let svm = OneClassSvm::train(&huge, &config).unwrap();
        let s = svm.score(&[0.0, 0.0]);
        assert!((0.0..=1.0).contains(&s), "{s}");
    }

    #[test]
    #[should_panic(expected = "one-class SVM trained on 3 features, given 2")]
    fn scoring_the_wrong_dimension_panics() {
        let mut rng = fastrand::Rng::with_seed(6);
        let svm = OneClassSvm::train(&cluster(&mut rng, 200), &config()).unwrap();
        svm.score(&[0.0; 2]);
    }
}

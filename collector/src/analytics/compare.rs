//! Before/after comparison of one series over two windows, and experiment criteria: pure
//! statistics over the values of each window, in time order.
//!
//! Metrics are autocorrelated: a sample 10 s after another says little new, so textbook tests
//! that count every sample as independent call nearly every wobble significant. Hence:
//!
//! - **Thinned to the effective sample size.** Each window is thinned evenly to about
//!   `n_eff = n (1 − ρ) / (1 + ρ)` values (every `n / n_eff`-th value), ρ its lag-1
//!   autocorrelation: the number of independent values that would pin its mean as well. Both
//!   the interval and the test below use the thinned values, so autocorrelation inflates
//!   neither, and a node's few hundred series compare in well under a second (a slowly
//!   moving series thins to a few dozen values).
//! - **Confidence intervals by moving-block bootstrap.** Each thinned window (at most
//!   [`MAX_BOOTSTRAP_POINTS`] values) is resampled as blocks of consecutive values, which keeps
//!   what dependence thinning left. The block length follows the thinned window's lag-1
//!   autocorrelation by the rule for an AR(1) series, `n^(1/3) · (2ρ / (1 − ρ²))^(2/3)`
//!   (Bühlmann and Künsch; Politis and White's selection for this model), at least 1 and at
//!   most a third of the window. [`RESAMPLES`] resamples from a fixed seed: the same data
//!   always gives the same answer. The 95 % intervals of the differences of means and of
//!   medians are the resamples' percentiles, widened for windows that thin to few values
//!   (Student's t instead of the normal; the bootstrap's √((m − 1)/m) undone).
//! - **p-value by Mann-Whitney U on the thinned values**, which counts only roughly
//!   independent values; ranks make it robust to outliers and skew. Two-sided, normal
//!   approximation with tie and continuity corrections. A series is called
//!   significant when `p < 0.05` and the interval of the difference of means excludes 0, so a
//!   row never reads "significant" beside an interval that spans no change.
//! - **Effect size: Cliff's delta** over all values, `P(after > before) − P(after < before)`,
//!   in [-1, 1]. It needs no normality, is not moved by a few spikes (latencies, counters'
//!   rates are skewed), and compares across series of any unit, which is what a ranking of a
//!   node's series needs; Hedges' g would rank by a standard deviation that outliers inflate.
//!   Autocorrelation biases neither estimate, only their spread, which the test accounts for.
//! - **No de-seasoning.** Windows are compared as wholes; a daily cycle common to both adds
//!   spread and autocorrelation, which the blocks and thinning take into account, not bias,
//!   when both windows cover alike hours.
//!
//! An experiment's criterion ("p95 down 10 %") is met when the observed relative change of the
//! statistic is past the threshold in the right direction and at least [`CRITERION_CONFIDENCE`]
//! of the bootstrap resamples agree; that share is reported as the confidence.

use super::stats::{quantile_sorted, t_critical};

/// What [`compare`] does, in words, for the API's `method`.
pub const METHOD: &str = "Each window is thinned to its effective sample size n(1−ρ)/(1+ρ) \
(ρ: lag-1 autocorrelation), so autocorrelation does not inflate significance. 95 % intervals of \
the differences of means and medians: moving-block bootstrap of the thinned values (1000 \
resamples, fixed seed; block length n^(1/3)·(2ρ/(1−ρ²))^(2/3)), widened by Student's t for \
few values. p-value: two-sided Mann-Whitney U on the thinned values. Effect size: Cliff's \
delta (P(after > before) − P(after < before)), robust to outliers and unit-free. Significant: \
p < 0.05 and the interval of the difference of means excludes 0. Counters are compared as \
per-second rates.";

/// Significance level.
pub const ALPHA: f64 = 0.05;

/// Bootstrap resamples per comparison.
pub const RESAMPLES: usize = 1000;

/// Most values of a window the bootstrap resamples; more are thinned evenly to this.
pub const MAX_BOOTSTRAP_POINTS: usize = 128;

/// Least share of resamples that must meet a criterion for it to count as met.
pub const CRITERION_CONFIDENCE: f64 = 0.95;

/// The bootstrap's seed: results are reproducible.
const SEED: u64 = 0x0c0f_fee5_eed5_1e15;

/// Highest lag-1 autocorrelation used: beyond it a window is all one slow drift.
const MAX_RHO: f64 = 0.99;

/// Count, mean, median and 95th percentile of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    pub p95: f64,
}

impl Summary {
    /// `None` for no values.
    fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            n: values.len(),
            mean: mean(values),
            median: quantile_sorted(&sorted, 0.5),
            p95: quantile_sorted(&sorted, 0.95),
        })
    }

    fn statistic(&self, statistic: Statistic) -> f64 {
        match statistic {
            Statistic::Mean => self.mean,
            Statistic::Median => self.median,
            Statistic::P95 => self.p95,
        }
    }
}

/// One series' before/after comparison. Differences are after − before; what needs at least
/// two values in each window is `None` without them.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub before: Option<Summary>,
    pub after: Option<Summary>,
    pub diff_mean: Option<f64>,
    pub diff_mean_ci: Option<(f64, f64)>,
    pub diff_median: Option<f64>,
    pub diff_median_ci: Option<(f64, f64)>,
    /// (mean after − mean before) / |mean before|, a fraction; `None` when the mean before is 0.
    pub relative_change: Option<f64>,
    pub p_value: Option<f64>,
    /// Cliff's delta, in [-1, 1]; positive when after is larger.
    pub effect_size: Option<f64>,
    pub significant: bool,
}

/// Compares the values of one series before and after (each in time order; non-finite values
/// are left out). See the module header.
pub fn compare(before: &[f64], after: &[f64]) -> Comparison {
    let before = finite(before);
    let after = finite(after);
    let (summary_before, summary_after) = (Summary::of(&before), Summary::of(&after));
    let mut out = Comparison {
        before: summary_before,
        after: summary_after,
        diff_mean: None,
        diff_mean_ci: None,
        diff_median: None,
        diff_median_ci: None,
        relative_change: None,
        p_value: None,
        effect_size: None,
        significant: false,
    };
    let (Some(b), Some(a)) = (summary_before, summary_after) else {
        return out;
    };
    out.diff_mean = Some(a.mean - b.mean);
    out.diff_median = Some(a.median - b.median);
    out.relative_change = (b.mean != 0.0).then(|| (a.mean - b.mean) / b.mean.abs());
    out.effect_size = Some(cliffs_delta(&before, &after));
    if before.len() < 2 || after.len() < 2 {
        return out;
    }
    let thinned_before = thin(&before, effective_n(&before));
    let thinned_after = thin(&after, effective_n(&after));
    let p = mann_whitney_p(&thinned_before, &thinned_after);
    out.p_value = Some(p);
    let mut means = Vec::with_capacity(RESAMPLES);
    let mut medians = Vec::with_capacity(RESAMPLES);
    let thinned = bootstrap(&before, &after, |b, a| {
        means.push(a.mean() - b.mean());
        medians.push(a.quantile(0.5) - b.quantile(0.5));
    });
    let widen = small_sample_widening(thinned);
    let mean_ci = percentile_interval(&mut means, a.mean - b.mean, widen);
    out.diff_mean_ci = Some(mean_ci);
    out.diff_median_ci = Some(percentile_interval(
        &mut medians,
        a.median - b.median,
        widen,
    ));
    out.significant = p < ALPHA && !(mean_ci.0 <= 0.0 && 0.0 <= mean_ci.1);
    out
}

/// Orders comparisons as the API ranks series: significant ones first, then by |effect size|
/// (largest first), then by p-value (smallest first).
pub fn rank_order(a: &Comparison, b: &Comparison) -> std::cmp::Ordering {
    let size = |c: &Comparison| c.effect_size.map_or(-1.0, f64::abs);
    let p = |c: &Comparison| c.p_value.unwrap_or(f64::INFINITY);
    b.significant
        .cmp(&a.significant)
        .then_with(|| size(b).total_cmp(&size(a)))
        .then_with(|| p(a).total_cmp(&p(b)))
}

/// Which statistic of each window an experiment's criterion compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    Mean,
    Median,
    P95,
}

/// Which way the statistic must move for success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Decrease,
    Increase,
}

/// "The `statistic` moves `direction` by at least `by_percent` %".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criterion {
    pub statistic: Statistic,
    pub direction: Direction,
    pub by_percent: f64,
}

impl Criterion {
    /// Whether a relative change (in %) meets this criterion.
    fn holds(&self, change_percent: f64) -> bool {
        match self.direction {
            Direction::Decrease => change_percent <= -self.by_percent,
            Direction::Increase => change_percent >= self.by_percent,
        }
    }
}

/// Whether a criterion was met, and how sure that is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CriterionOutcome {
    pub met: bool,
    /// Share of bootstrap resamples whose change meets the criterion, 0..=1.
    pub confidence: f64,
    /// Observed (after − before) / |before| of the statistic, in %; `None` when a window has
    /// no values or the statistic before is 0.
    pub observed_change_percent: Option<f64>,
}

/// Evaluates `criterion` on one series' windows (see the module header).
pub fn evaluate(before: &[f64], after: &[f64], criterion: &Criterion) -> CriterionOutcome {
    let before = finite(before);
    let after = finite(after);
    let change = |b: f64, a: f64| (b != 0.0).then(|| (a - b) / b.abs() * 100.0);
    let observed = match (Summary::of(&before), Summary::of(&after)) {
        (Some(b), Some(a)) => change(
            b.statistic(criterion.statistic),
            a.statistic(criterion.statistic),
        ),
        _ => None,
    };
    let Some(observed_change) = observed else {
        return CriterionOutcome {
            met: false,
            confidence: 0.0,
            observed_change_percent: None,
        };
    };
    let stat = |resample: &Resample| match criterion.statistic {
        Statistic::Mean => resample.mean(),
        Statistic::Median => resample.quantile(0.5),
        Statistic::P95 => resample.quantile(0.95),
    };
    let mut meeting = 0usize;
    bootstrap(&before, &after, |b, a| {
        if change(stat(b), stat(a)).is_some_and(|c| criterion.holds(c)) {
            meeting += 1;
        }
    });
    let confidence = meeting as f64 / RESAMPLES as f64;
    CriterionOutcome {
        met: criterion.holds(observed_change) && confidence >= CRITERION_CONFIDENCE,
        confidence,
        observed_change_percent: Some(observed_change),
    }
}

fn finite(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| v.is_finite()).collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Lag-1 autocorrelation, clamped to [0, [`MAX_RHO`]] (negative dependence is taken as none,
/// which only makes the test more careful); 0 for a constant window.
fn lag1_autocorrelation(values: &[f64]) -> f64 {
    if values.len() < 3 {
        return 0.0;
    }
    let m = mean(values);
    let spread: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    if spread <= 0.0 {
        return 0.0;
    }
    let lagged: f64 = values.windows(2).map(|w| (w[0] - m) * (w[1] - m)).sum();
    (lagged / spread).clamp(0.0, MAX_RHO)
}

/// n (1 − ρ) / (1 + ρ), at least 1.
fn effective_n(values: &[f64]) -> f64 {
    let rho = lag1_autocorrelation(values);
    (values.len() as f64 * (1.0 - rho) / (1.0 + rho)).max(1.0)
}

/// Every `n / target`-th value (rounded up), so about `target` values remain.
fn thin(values: &[f64], target: f64) -> Vec<f64> {
    let step = (values.len() as f64 / target).ceil().max(1.0) as usize;
    values.iter().copied().step_by(step).collect()
}

/// Block length for a window of `n` values with lag-1 autocorrelation `rho`.
fn block_length(n: usize, rho: f64) -> usize {
    if rho <= 0.0 {
        return 1;
    }
    let scale = (2.0 * rho / (1.0 - rho * rho)).powf(2.0 / 3.0);
    let length = ((n as f64).cbrt() * scale).ceil() as usize;
    length.clamp(1, (n / 3).max(1))
}

/// One window prepared for resampling: thinned to its effective sample size and at most
/// [`MAX_BOOTSTRAP_POINTS`], with its block length. A resample is kept as how often each value
/// was drawn (by rank) and its sum, so its mean and quantiles need no sorting.
struct Resampler {
    block: usize,
    /// The thinned values, sorted.
    sorted: Vec<f64>,
    /// Rank in `sorted` of each thinned value, in time order.
    rank: Vec<usize>,
    /// Sums of the first i thinned values, in time order.
    prefix: Vec<f64>,
}

/// One resample of a window.
struct Resample<'a> {
    sorted: &'a [f64],
    /// How often each value of `sorted` was drawn.
    counts: Vec<u32>,
    sum: f64,
}

impl Resampler {
    fn new(values: &[f64]) -> Self {
        let values = thin(values, effective_n(values).min(MAX_BOOTSTRAP_POINTS as f64));
        let block = block_length(values.len(), lag1_autocorrelation(&values));
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
        let mut rank = vec![0; values.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        let mut prefix = Vec::with_capacity(values.len() + 1);
        prefix.push(0.0);
        for v in &values {
            prefix.push(prefix[prefix.len() - 1] + v);
        }
        Self {
            block,
            sorted: order.iter().map(|&i| values[i]).collect(),
            rank,
            prefix,
        }
    }

    fn empty(&self) -> Resample<'_> {
        Resample {
            sorted: &self.sorted,
            counts: vec![0; self.sorted.len()],
            sum: 0.0,
        }
    }

    /// Makes `out` a moving-block resample as long as the window.
    fn draw(&self, rng: &mut fastrand::Rng, out: &mut Resample<'_>) {
        out.counts.fill(0);
        out.sum = 0.0;
        let n = self.rank.len();
        let starts = n - self.block + 1;
        let mut drawn = 0;
        while drawn < n {
            let start = rng.usize(..starts);
            let end = start + self.block.min(n - drawn);
            for &r in &self.rank[start..end] {
                out.counts[r] += 1;
            }
            out.sum += self.prefix[end] - self.prefix[start];
            drawn += end - start;
        }
    }
}

impl Resample<'_> {
    fn mean(&self) -> f64 {
        self.sum / self.sorted.len() as f64
    }

    /// The `q` quantile, interpolating as [`quantile_sorted`].
    fn quantile(&self, q: f64) -> f64 {
        let rank = q * (self.sorted.len() - 1) as f64;
        let below = rank.floor() as usize;
        let frac = rank - below as f64;
        let (mut low, mut seen) = (None, 0usize);
        for (value, &count) in self.sorted.iter().zip(&self.counts) {
            seen += count as usize;
            if low.is_none() && seen > below {
                low = Some(*value);
            }
            if seen > below + 1 || (frac == 0.0 && low.is_some()) {
                let low = low.unwrap_or(*value);
                return low + (value - low) * frac;
            }
        }
        low.unwrap_or(f64::NAN)
    }
}

/// Calls `each(before, after)` with [`RESAMPLES`] paired moving-block resamples (from the
/// fixed seed); how many values each thinned window kept.
fn bootstrap(
    before: &[f64],
    after: &[f64],
    mut each: impl FnMut(&Resample, &Resample),
) -> (usize, usize) {
    let (b, a) = (Resampler::new(before), Resampler::new(after));
    let mut rng = fastrand::Rng::with_seed(SEED);
    let (mut drawn_b, mut drawn_a) = (b.empty(), a.empty());
    for _ in 0..RESAMPLES {
        b.draw(&mut rng, &mut drawn_b);
        a.draw(&mut rng, &mut drawn_a);
        each(&drawn_b, &drawn_a);
    }
    (b.sorted.len(), a.sorted.len())
}

/// The central 95 % of the resampled differences `values` (sorting them), its ends moved
/// away from the `observed` difference by the factor `widen`.
fn percentile_interval(values: &mut [f64], observed: f64, widen: f64) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let (low, high) = (
        quantile_sorted(values, 0.025),
        quantile_sorted(values, 0.975),
    );
    (
        observed - (observed - low) * widen,
        observed + (high - observed) * widen,
    )
}

/// How much wider a percentile interval from `(m1, m2)` thinned values must be to hold 95 %:
/// the bootstrap's spread of a mean of m values is √((m − 1)/m) of the true one, and with few
/// values Student's t, not the normal, gives the width (df: the smaller window's, less one).
/// 1.1 at twenty values a window; 1.4 at six.
fn small_sample_widening((m1, m2): (usize, usize)) -> f64 {
    let m = m1.min(m2).max(2) as f64;
    let df = (m as usize) - 1;
    (m / (m - 1.0)).sqrt() * t_critical(0.95, df) / t_critical(0.95, usize::MAX)
}

/// Mid-ranks (1-based) of `values` and the tie correction Σ(t³ − t) over groups of ties.
fn ranks(values: &[f64]) -> (Vec<f64>, f64) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut ties = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let mid = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = mid;
        }
        let t = (end - start) as f64;
        ties += t * t * t - t;
        start = end;
    }
    (ranks, ties)
}

/// U of `after` against `before` (pairs with after > before, ties counting half), and the
/// tie correction of the pooled values.
fn u_statistic(before: &[f64], after: &[f64]) -> (f64, f64) {
    let pooled: Vec<f64> = before.iter().chain(after).copied().collect();
    let (ranks, ties) = ranks(&pooled);
    let n2 = after.len() as f64;
    let rank_sum: f64 = ranks[before.len()..].iter().sum();
    (rank_sum - n2 * (n2 + 1.0) / 2.0, ties)
}

/// Cliff's delta of `after` against `before`.
fn cliffs_delta(before: &[f64], after: &[f64]) -> f64 {
    let (u, _) = u_statistic(before, after);
    2.0 * u / (before.len() * after.len()) as f64 - 1.0
}

/// Two-sided Mann-Whitney p-value (normal approximation, tie and continuity corrected); 1 when
/// the pooled values are all equal.
fn mann_whitney_p(before: &[f64], after: &[f64]) -> f64 {
    let (u, ties) = u_statistic(before, after);
    let (n1, n2) = (before.len() as f64, after.len() as f64);
    let total = n1 + n2;
    let variance = n1 * n2 / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = ((u - n1 * n2 / 2.0).abs() - 0.5).max(0.0) / variance.sqrt();
    erfc(z / std::f64::consts::SQRT_2).min(1.0)
}

/// The complementary error function (Chebyshev fit, relative error under 1.2·10⁻⁷ everywhere;
/// Numerical Recipes' `erfcc`).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::test_support::{assert_close, normal};

    /// `n` values of an AR(1) series with coefficient `phi` and unit innovations, plus `level`.
    fn ar1(rng: &mut fastrand::Rng, n: usize, phi: f64, level: f64) -> Vec<f64> {
        let mut x = normal(rng) / (1.0 - phi * phi).sqrt();
        (0..n)
            .map(|_| {
                x = phi * x + normal(rng);
                level + x
            })
            .collect()
    }

    #[test]
    fn erfc_matches_known_values() {
        assert_close(erfc(0.0), 1.0, 1e-7, "erfc(0)");
        assert_close(erfc(1.0), 0.157_299_207, 1e-7, "erfc(1)");
        assert_close(erfc(1.959_964 / 2f64.sqrt()), 0.05, 1e-7, "two-sided 5 %");
        assert_close(erfc(-1.0), 1.842_700_793, 1e-7, "erfc(-1)");
    }

    #[test]
    fn a_level_shift_in_noisy_ar1_data_is_significant_with_the_right_sign() {
        // Stationary spread 1/√(1 − 0.81) ≈ 2.3; a shift of 3 is about 1.3 of it, and each
        // window of 360 values holds about 19 independent ones.
        let mut rng = fastrand::Rng::with_seed(7);
        let trials = 100;
        let (mut significant, mut covered) = (0, 0);
        for _ in 0..trials {
            let before = ar1(&mut rng, 360, 0.9, 10.0);
            let after = ar1(&mut rng, 360, 0.9, 13.0);
            let c = compare(&before, &after);
            let (lo, hi) = c.diff_mean_ci.unwrap();
            significant += usize::from(c.significant);
            covered += usize::from(lo <= 3.0 && 3.0 <= hi);
            assert!(
                c.effect_size.unwrap() > 0.0 && c.diff_mean.unwrap() > 0.0,
                "{c:?}"
            );
            assert!(c.relative_change.unwrap() > 0.0, "{c:?}");
        }
        assert!(
            significant >= 95,
            "only {significant} of {trials} significant"
        );
        // A 95 % interval: about 95 hold the true shift.
        assert!(
            covered >= 88,
            "only {covered} of {trials} intervals hold the shift"
        );
        let before = ar1(&mut rng, 360, 0.9, 10.0);
        let after = ar1(&mut rng, 360, 0.9, 13.0);
        let c = compare(&before, &after);
        assert!(c.significant && c.p_value.unwrap() < ALPHA, "{c:?}");
        assert!(c.effect_size.unwrap() > 0.5, "{c:?}");
        let down = compare(&after, &before);
        assert!(down.significant && down.effect_size.unwrap() < -0.5);
        assert!(down.diff_mean.unwrap() < 0.0 && down.diff_median.unwrap() < 0.0);
        let (lo, hi) = down.diff_mean_ci.unwrap();
        assert!(lo < hi && hi < 0.0);
        // Same data, same answer.
        assert_eq!(compare(&before, &after), c);
    }

    #[test]
    fn no_shift_in_strongly_autocorrelated_data_is_rarely_called_significant() {
        let mut rng = fastrand::Rng::with_seed(11);
        let trials = 200;
        let mut false_positives = 0;
        for _ in 0..trials {
            let before = ar1(&mut rng, 360, 0.9, 5.0);
            let after = ar1(&mut rng, 360, 0.9, 5.0);
            if compare(&before, &after).significant {
                false_positives += 1;
            }
        }
        let rate = false_positives as f64 / trials as f64;
        assert!(rate < 0.10, "false-positive rate {rate}");
        // Counting every sample as independent would call most of these significant.
        let mut naive = 0;
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..50 {
            let before = ar1(&mut rng, 360, 0.9, 5.0);
            let after = ar1(&mut rng, 360, 0.9, 5.0);
            if mann_whitney_p(&before, &after) < ALPHA {
                naive += 1;
            }
        }
        assert!(naive > 15, "the naive test flagged only {naive} of 50");
    }

    #[test]
    fn constant_series_compare_without_noise() {
        let same = compare(&[4.0; 50], &[4.0; 50]);
        assert_eq!(same.p_value, Some(1.0));
        assert_eq!(same.effect_size, Some(0.0));
        assert_eq!(same.diff_mean_ci, Some((0.0, 0.0)));
        assert!(!same.significant);
        let stepped = compare(&[1.0; 50], &[2.0; 50]);
        assert!(stepped.significant, "{stepped:?}");
        assert_eq!(stepped.effect_size, Some(1.0));
        assert_eq!(stepped.diff_mean_ci, Some((1.0, 1.0)));
        assert_eq!(stepped.relative_change, Some(1.0));
        let from_zero = compare(&[0.0; 5], &[1.0; 5]);
        assert_eq!(from_zero.relative_change, None);
    }

    #[test]
    fn tiny_and_empty_windows_give_what_they_can() {
        let empty = compare(&[], &[1.0, 2.0]);
        assert_eq!(empty.before, None);
        assert_eq!(empty.after.unwrap().n, 2);
        assert_eq!((empty.diff_mean, empty.p_value), (None, None));
        assert!(!empty.significant);
        let one = compare(&[1.0], &[5.0, 6.0]);
        assert_eq!(one.diff_mean, Some(4.5));
        assert_eq!(one.effect_size, Some(1.0));
        assert_eq!((one.p_value, one.diff_mean_ci), (None, None));
        let two = compare(&[1.0, 2.0], &[5.0, f64::NAN, 6.0]);
        assert_eq!(two.after.unwrap().n, 2);
        assert!(
            two.p_value.unwrap() > ALPHA,
            "two against two proves nothing"
        );
        assert!(!two.significant);
    }

    #[test]
    fn summaries_and_quantiles_agree() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&values).unwrap();
        assert_eq!((s.n, s.mean, s.median), (100, 50.5, 50.5));
        assert_close(s.p95, 95.05, 1e-9, "p95");
        // A resample drawing each value once has the window's quantiles.
        let once = Resample {
            sorted: &values,
            counts: vec![1; values.len()],
            sum: values.iter().sum(),
        };
        assert_close(once.quantile(0.95), 95.05, 1e-9, "p95");
        assert_close(once.quantile(0.5), 50.5, 1e-9, "median");
        assert_eq!(once.quantile(0.0), 1.0);
        assert_eq!(once.quantile(1.0), 100.0);
        assert_eq!(once.mean(), 50.5);
        let single = Resampler::new(&[3.0]);
        let mut one = single.empty();
        single.draw(&mut fastrand::Rng::with_seed(1), &mut one);
        assert_eq!((one.quantile(0.5), one.mean()), (3.0, 3.0));
    }

    #[test]
    fn ranking_puts_significant_large_effects_first() {
        let mut rng = fastrand::Rng::with_seed(3);
        let base = ar1(&mut rng, 200, 0.5, 0.0);
        let small = ar1(&mut rng, 200, 0.5, 0.8);
        let large = ar1(&mut rng, 200, 0.5, 3.0);
        let none = ar1(&mut rng, 200, 0.5, 0.0);
        let mut rows = [
            ("none", compare(&base, &none)),
            ("small", compare(&base, &small)),
            ("large", compare(&base, &large)),
        ];
        rows.sort_by(|a, b| rank_order(&a.1, &b.1));
        let names: Vec<_> = rows.iter().map(|r| r.0).collect();
        assert_eq!(names, ["large", "small", "none"]);
    }

    #[test]
    fn criteria_are_met_only_past_the_threshold_with_confidence() {
        let mut rng = fastrand::Rng::with_seed(5);
        let before = ar1(&mut rng, 360, 0.7, 100.0);
        let after = ar1(&mut rng, 360, 0.7, 80.0);
        let down = |statistic, by_percent| Criterion {
            statistic,
            direction: Direction::Decrease,
            by_percent,
        };
        for statistic in [Statistic::Mean, Statistic::Median, Statistic::P95] {
            let outcome = evaluate(&before, &after, &down(statistic, 10.0));
            assert!(outcome.met, "{statistic:?}: {outcome:?}");
            assert!(outcome.confidence >= 0.95);
            let change = outcome.observed_change_percent.unwrap();
            assert!((-25.0..-15.0).contains(&change), "{statistic:?}: {change}");
        }
        let too_much = evaluate(&before, &after, &down(Statistic::Mean, 30.0));
        assert!(!too_much.met && too_much.confidence < 0.05, "{too_much:?}");
        let up = Criterion {
            direction: Direction::Increase,
            ..down(Statistic::Mean, 10.0)
        };
        let wrong_way = evaluate(&before, &after, &up);
        assert!(!wrong_way.met && wrong_way.confidence == 0.0);
        // Right at the threshold: about half the resamples meet it, so it is not met.
        let borderline = evaluate(&before, &after, &down(Statistic::Mean, 20.0));
        assert!(!borderline.met || borderline.confidence >= 0.95);
        let empty = evaluate(&[], &after, &down(Statistic::Mean, 10.0));
        assert_eq!((empty.met, empty.observed_change_percent), (false, None));
    }
}

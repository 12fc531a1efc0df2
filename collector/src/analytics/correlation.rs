//! Lagged Pearson correlation between series: which series moved with an anomaly, so an alert
//! can say "redis latency rose 40 s after nas disk busy time", and which pairs of series move
//! together, across metrics and across nodes.
//!
//! Pure computation: no I/O and no clock. The collector reads the samples and calls these
//! functions from a background task, never on the ingest path,
//! [`CorrelationConfig::max_candidates`] bounds how many series one search looks at, and the
//! caller's [`Budget`] is asked before each series is aligned and each pair is compared.
//!
//! # Resampling onto one grid
//!
//! Series come from different nodes and tiers (10 s and 60 s agent tiers, 15 s scrapes) with
//! jittered timestamps, so [`align`] first resamples each onto one grid of `step`:
//!
//! - Each sample goes to its *nearest* grid point; a point with several samples takes their
//!   mean, so a series faster than the grid is averaged rather than aliased. Nearest, rather
//!   than "the bucket ending at the point", keeps every timing error under `step / 2` whichever
//!   side of the tick a source stamps its samples (the agent stamps just after the wall-clock
//!   tick, a scraper may stamp just before), so two sources never look a whole step apart.
//! - A point with no sample of its own is interpolated linearly between the samples on either
//!   side, when they are at most `max_gap` apart: a 60 s series then pairs with every point of
//!   a 10 s one, and a series that stopped reporting goes missing instead of staying frozen.
//!   Interpolation rather than holding the previous value as Prometheus does, because held
//!   points are all late: a 15 s series held on a 10 s grid looks about 4 s older than it is,
//!   which moves its best lag by a step.
//! - Non-finite values (Prometheus' staleness marker is a NaN) are dropped.
//!
//! [`rank_related`] and [`correlated_pairs`] put the grid points on multiples of `step` since
//! the epoch, the same wall-clock grid the agent collects on, so its samples land on points.
//!
//! # Pearson
//!
//! Grid points where either side is missing are skipped. The sums are shifted by the first
//! pair's values, so a constant series gives exactly zero variance (not rounding noise that
//! would correlate with anything) and large levels (byte counts around 1e12) do not cancel the
//! digits that move. A spread below 1e-14 of the series' magnitude (some 50 units in the last
//! place) is rounding, and counts as no variance. The result is `None` with fewer than
//! `min_points` pairs (never fewer than 3: two points always lie on a line) or no variance, is
//! clamped to [−1, 1], and is never NaN.
//!
//! # Lag
//!
//! A positive `lag_ms` means the candidate moves *before* the target: the target at `t` pairs
//! with the candidate at `t − lag_ms`. A negative lag means the target leads. Every lag from
//! `−max_lag` to `+max_lag` in steps is tried (61 at the defaults) and the largest |r| wins;
//! on a tie the smaller |lag| wins, then the positive one. Lags are whole steps, so their
//! resolution is `step`.
//!
//! Cost: one O(n) pass per lag, so O(n · lags) per pair of series of n grid points. Sliding
//! running sums would not make a lag cheaper: Σxy changes entirely with each shift, and so do
//! the points where both sides are present. A pair update costs about 3 ns in an optimised
//! build. For one anomaly: O(c · n · lags) for c ≤ `max_candidates` candidates: 200 candidates
//! over an hour at 10 s are 200 × 61 lags × 360 points ≈ 4.4 million pair updates, about 15 ms.
//! All pairs: O(k² · n · lags) for k ≤ `max_candidates` series: 200 series over the same hour
//! are 19 900 pairs × 61 × 360 ≈ 440 million pair updates, about 1.2 s of one core, which is
//! why this runs in the background and why k is bounded.
//!
//! # Reading the results
//!
//! Correlation is a lead to follow, not a cause. Two limits matter:
//! - Series that trend over the window (counters, slowly filling disks) correlate with each
//!   other whatever the cause. Feed rates rather than counters.
//! - The best of 61 lags is a little higher than one lag's r, and with few points chance alone
//!   reaches |r| = 0.7: windows should span many steps (an hour at 10 s is 360 points), well
//!   above `min_points`.

use super::budget::{Budget, Interrupted};
use std::cmp::Ordering;
use std::time::Duration;

/// Fewest pairs a correlation is ever computed from, whatever `min_points` says: two points
/// always lie on a line, so r would be ±1 by construction.
const MIN_POINTS_FLOOR: usize = 3;

/// A spread below this fraction of a series' magnitude is rounding noise, not movement.
const RELATIVE_SPREAD_FLOOR: f64 = 1e-14;

/// How correlation searches run: the grid, the lags tried, the thresholds and the bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationConfig {
    /// Largest shift tried between two series, in either direction: a series that moves up to
    /// this long before or after the other is found. Rounded down to whole steps.
    pub max_lag: Duration,
    /// Spacing of the grid series are resampled onto, and so the resolution of reported lags.
    /// Below one millisecond nothing is computed.
    pub step: Duration,
    /// Longest gap between two samples that a grid point with no sample of its own is
    /// interpolated across, so series slower than `step` (the agent's 60 s tier, with jitter)
    /// still pair with every point; across longer gaps the points are missing.
    pub max_gap: Duration,
    /// Smallest |r| reported; weaker relations are left out.
    pub min_abs_r: f64,
    /// Fewest grid points where both series have a value for a correlation to count (never
    /// fewer than 3).
    pub min_points: usize,
    /// Most series one search considers: the first candidates of an anomaly, or the first
    /// series of an all-pairs scan, in the order given; the rest are ignored. Bounds the cost.
    pub max_candidates: usize,
    /// Most related series attached to one anomaly.
    pub top_k: usize,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            max_lag: Duration::from_secs(300),
            step: Duration::from_secs(10),
            max_gap: Duration::from_secs(90),
            min_abs_r: 0.7,
            min_points: 10,
            max_candidates: 200,
            top_k: 5,
        }
    }
}

/// One series' samples over the window being searched, with the key reported for it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesWindow {
    /// How the series is named in results, e.g. `redis_latency{node="nas"}`.
    pub key: String,
    /// `(timestamp in ms since the epoch, value)`, normally sorted by time; order does not
    /// change the result except among samples with equal timestamps.
    pub samples: Vec<(i64, f64)>,
}

impl SeriesWindow {
    /// A window of `samples` reported under `key`.
    pub fn new(key: impl Into<String>, samples: Vec<(i64, f64)>) -> Self {
        Self {
            key: key.into(),
            samples,
        }
    }
}

/// The strongest correlation between two aligned series over the lags tried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaggedCorrelation {
    /// Positive: the candidate moves this long before the target. Negative: after it.
    pub lag_ms: i64,
    /// Pearson's r at that lag, in [−1, 1].
    pub r: f64,
    /// Grid points where both series had a value at that lag.
    pub points: usize,
}

/// A series that moved with an anomalous target, found by [`rank_related`].
#[derive(Debug, Clone, PartialEq)]
pub struct Related {
    /// The anomalous series' key.
    pub target: String,
    /// The related series' key.
    pub candidate: String,
    /// Pearson's r at `lag_ms`: positive when they move the same way, negative when opposite.
    pub r: f64,
    /// Positive: the candidate moved this long before the target. Negative: after it.
    pub lag_ms: i64,
    /// Grid points where both series had a value at that lag.
    pub points: usize,
}

impl Related {
    /// One line for an alert, e.g.
    /// `redis_latency{node="nas"} rose 40 s after node_disk_io_time{node="nas"} (r = 0.91)`.
    pub fn describe(&self) -> String {
        describe_movement(&self.target, &self.candidate, self.r, self.lag_ms)
    }
}

/// Two series that move together, found by [`correlated_pairs`].
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The series that moves first; with a lag of zero, the one given first.
    pub leader: String,
    /// The series that moves `lag_ms` after the leader.
    pub follower: String,
    /// Pearson's r at `lag_ms`: positive when they move the same way, negative when opposite.
    pub r: f64,
    /// How long after the leader the follower moves; never negative.
    pub lag_ms: i64,
    /// Grid points where both series had a value at that lag.
    pub points: usize,
}

impl Pair {
    /// One line, e.g.
    /// `redis_latency{node="nas"} rose 40 s after node_disk_io_time{node="nas"} (r = 0.91)`.
    pub fn describe(&self) -> String {
        describe_movement(&self.follower, &self.leader, self.r, self.lag_ms)
    }
}

/// Resamples `samples` onto the grid `start_ms, start_ms + step_ms, …` up to `end_ms`
/// inclusive: each sample goes to its nearest point (halfway rounds up) and a point takes the
/// mean of its samples; a point with none is interpolated linearly between the samples on
/// either side (those outside the grid included) when they are at most `max_gap_ms` apart, and
/// is missing otherwise. Non-finite values are dropped. Empty when `step_ms` is not positive
/// or `end_ms < start_ms`. O(samples + points) time and memory, so the caller bounds the range.
pub fn align(
    samples: &[(i64, f64)],
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    max_gap_ms: i64,
) -> Vec<Option<f64>> {
    let Some(len) = grid_len(start_ms, end_ms, step_ms) else {
        return Vec::new();
    };
    let mut points = vec![GridPoint::default(); len];
    // The nearest samples outside the grid, to interpolate the first and last points from.
    let mut before_grid: Option<(i64, f64)> = None;
    let mut after_grid: Option<(i64, f64)> = None;
    for &(ts, value) in samples {
        if !value.is_finite() {
            continue;
        }
        let index = nearest_point(ts, start_ms, step_ms);
        if index < 0 {
            before_grid = later(before_grid, (ts, value));
            continue;
        }
        let point = usize::try_from(index)
            .ok()
            .and_then(|index| points.get_mut(index));
        let Some(point) = point else {
            after_grid = earlier(after_grid, (ts, value));
            continue;
        };
        point.sum += value;
        point.count += 1;
        point.earliest = earlier(point.earliest, (ts, value));
        point.latest = later(point.latest, (ts, value));
    }
    // For each point, the earliest sample after it: a pass from the end.
    let mut next_sample = vec![None; len];
    let mut next = after_grid;
    for (point, slot) in points.iter().zip(&mut next_sample).rev() {
        *slot = next;
        if point.count > 0 {
            next = point.earliest;
        }
    }
    let mut previous = before_grid;
    points
        .iter()
        .zip(next_sample)
        .enumerate()
        .map(|(index, (point, next))| {
            if point.count > 0 {
                previous = point.latest;
                let mean = point.sum / point.count as f64;
                return mean.is_finite().then_some(mean);
            }
            let t = i128::from(start_ms) + index as i128 * i128::from(step_ms);
            interpolate(previous?, next?, t, max_gap_ms)
        })
        .collect()
}

/// The lag in `−max_lag_ms..=max_lag_ms` (whole steps of `step_ms`) with the largest |r|
/// between two series aligned on the same grid; ties go to the smaller |lag|, then the
/// positive one. A positive lag means the candidate moves before the target: `target[i]` pairs
/// with `candidate[i − lag_ms / step_ms]`. `None` when no lag has `min_points` pairs with
/// variance on both sides, or `step_ms` is not positive, or `max_lag_ms` is negative.
/// O(n · lags).
pub fn best_lag(
    target: &[Option<f64>],
    candidate: &[Option<f64>],
    step_ms: i64,
    max_lag_ms: i64,
    min_points: usize,
) -> Option<LaggedCorrelation> {
    if step_ms <= 0 || max_lag_ms < 0 {
        return None;
    }
    // Shifts beyond the longer series leave nothing to pair.
    let longest = target.len().max(candidate.len());
    let max_steps = usize::try_from(max_lag_ms / step_ms)
        .unwrap_or(usize::MAX)
        .min(longest);
    let mut best: Option<LaggedCorrelation> = None;
    for steps in 0..=max_steps {
        // `steps` fits in i64: it is at most `max_lag_ms / step_ms`.
        let lag_ms = i64::try_from(steps).unwrap_or(i64::MAX) * step_ms;
        let leading = [
            // The candidate leads: target[i] pairs with candidate[i - steps].
            (lag_ms, tail(target, steps), candidate),
            // The target leads: target[i] pairs with candidate[i + steps].
            (-lag_ms, target, tail(candidate, steps)),
        ];
        let tried = if steps == 0 {
            &leading[..1]
        } else {
            &leading[..]
        };
        for &(lag_ms, target, candidate) in tried {
            let sums = PairedSums::over(target, candidate);
            let Some(r) = sums.pearson(min_points) else {
                continue;
            };
            if best.is_none_or(|best| r.abs() > best.r.abs()) {
                best = Some(LaggedCorrelation {
                    lag_ms,
                    r,
                    points: sums.points,
                });
            }
        }
    }
    best
}

/// Ranks the candidates that moved with `target` over its window: each is aligned on the
/// target's grid (from its first to its last sample, on multiples of `step`), its best lag
/// found, and those with |r| ≥ `min_abs_r` kept, strongest first (ties: smaller |lag|, then
/// key), at most `top_k`. Only the first `max_candidates` candidates are considered; one with
/// the target's own key is skipped. Read the candidates over the target's range.
/// O(c · n · lags) for c candidates and n grid points: for windows the caller keeps short (an
/// alert's evidence); [`rank_related_within`] can be stopped.
pub fn rank_related(
    target: &SeriesWindow,
    candidates: &[SeriesWindow],
    config: &CorrelationConfig,
) -> Vec<Related> {
    rank_related_within(target, candidates, config, &Budget::UNLIMITED).unwrap_or_default()
}

/// [`rank_related`], asking `budget` before each candidate.
pub fn rank_related_within(
    target: &SeriesWindow,
    candidates: &[SeriesWindow],
    config: &CorrelationConfig,
    budget: &Budget,
) -> Result<Vec<Related>, Interrupted> {
    let search = Search::new(config);
    let Some((start_ms, end_ms)) = search.span(&target.samples) else {
        return Ok(Vec::new());
    };
    let target_values = search.align(&target.samples, start_ms, end_ms);
    if target_values.iter().flatten().count() < search.min_points {
        return Ok(Vec::new());
    }
    let mut related = Vec::new();
    for candidate in candidates.iter().take(config.max_candidates) {
        if candidate.key == target.key {
            continue;
        }
        budget.check()?;
        let values = search.align(&candidate.samples, start_ms, end_ms);
        let Some(found) = search.best_lag(&target_values, &values) else {
            continue;
        };
        if found.r.abs() >= config.min_abs_r {
            related.push(Related {
                target: target.key.clone(),
                candidate: candidate.key.clone(),
                r: found.r,
                lag_ms: found.lag_ms,
                points: found.points,
            });
        }
    }
    related.sort_by(|a, b| {
        by_strength((a.r, a.lag_ms), (b.r, b.lag_ms)).then_with(|| a.candidate.cmp(&b.candidate))
    });
    related.truncate(config.top_k);
    Ok(related)
}

/// Every pair among the first `max_candidates` series whose best lag reaches |r| ≥
/// `min_abs_r`, strongest first (ties: smaller lag, then keys), all of them: the caller
/// truncates. The grid spans all the samples given, on multiples of `step`, so read the series
/// over one range. O(k² · n · lags) for k series and n grid points; `budget` is asked before
/// each series is aligned and each pair compared.
pub fn correlated_pairs(
    series: &[SeriesWindow],
    config: &CorrelationConfig,
    budget: &Budget,
) -> Result<Vec<Pair>, Interrupted> {
    let search = Search::new(config);
    let series = &series[..series.len().min(config.max_candidates)];
    let span = series
        .iter()
        .filter_map(|s| search.span(&s.samples))
        .reduce(|(start, end), (s, e)| (start.min(s), end.max(e)));
    let Some((start_ms, end_ms)) = span else {
        return Ok(Vec::new());
    };
    let aligned: Vec<Vec<Option<f64>>> = series
        .iter()
        .map(|s| {
            budget.check()?;
            Ok(search.align(&s.samples, start_ms, end_ms))
        })
        .collect::<Result<_, Interrupted>>()?;
    // Series with too few points cannot correlate with anything: skip them up front.
    let usable: Vec<usize> = (0..series.len())
        .filter(|&i| aligned[i].iter().flatten().count() >= search.min_points)
        .collect();
    let mut pairs = Vec::new();
    for (position, &first) in usable.iter().enumerate() {
        for &second in &usable[position + 1..] {
            budget.check()?;
            // Positive lag: `second` moves before `first`.
            let Some(found) = search.best_lag(&aligned[first], &aligned[second]) else {
                continue;
            };
            if found.r.abs() < config.min_abs_r {
                continue;
            }
            let (leader, follower) = if found.lag_ms > 0 {
                (second, first)
            } else {
                (first, second)
            };
            pairs.push(Pair {
                leader: series[leader].key.clone(),
                follower: series[follower].key.clone(),
                r: found.r,
                lag_ms: found.lag_ms.abs(),
                points: found.points,
            });
        }
    }
    pairs.sort_by(|a, b| {
        by_strength((a.r, a.lag_ms), (b.r, b.lag_ms))
            .then_with(|| a.leader.cmp(&b.leader))
            .then_with(|| a.follower.cmp(&b.follower))
    });
    Ok(pairs)
}

/// The configuration in the units the computation uses.
struct Search {
    step_ms: i64,
    max_lag_ms: i64,
    max_gap_ms: i64,
    min_points: usize,
}

impl Search {
    fn new(config: &CorrelationConfig) -> Self {
        Self {
            step_ms: millis(config.step),
            max_lag_ms: millis(config.max_lag),
            max_gap_ms: millis(config.max_gap),
            min_points: config.min_points.max(MIN_POINTS_FLOOR),
        }
    }

    /// The grid points nearest the first and last finite samples, on multiples of the step.
    fn span(&self, samples: &[(i64, f64)]) -> Option<(i64, i64)> {
        if self.step_ms <= 0 {
            return None;
        }
        let (first, last) = samples.iter().filter(|(_, value)| value.is_finite()).fold(
            None,
            |span: Option<(i64, i64)>, &(ts, _)| match span {
                None => Some((ts, ts)),
                Some((first, last)) => Some((first.min(ts), last.max(ts))),
            },
        )?;
        let on_grid = |ts: i64| {
            let index = nearest_point(ts, 0, self.step_ms);
            i64::try_from(index * i128::from(self.step_ms)).ok()
        };
        Some((on_grid(first)?, on_grid(last)?))
    }

    fn align(&self, samples: &[(i64, f64)], start_ms: i64, end_ms: i64) -> Vec<Option<f64>> {
        align(samples, start_ms, end_ms, self.step_ms, self.max_gap_ms)
    }

    fn best_lag(
        &self,
        target: &[Option<f64>],
        candidate: &[Option<f64>],
    ) -> Option<LaggedCorrelation> {
        best_lag(
            target,
            candidate,
            self.step_ms,
            self.max_lag_ms,
            self.min_points,
        )
    }
}

/// What the samples nearest one grid point add up to.
#[derive(Debug, Clone, Copy, Default)]
struct GridPoint {
    sum: f64,
    count: u64,
    earliest: Option<(i64, f64)>,
    latest: Option<(i64, f64)>,
}

/// The value at `t` on the line from `before` to `after`, which lie on either side of it, when
/// they are at most `max_gap_ms` apart.
fn interpolate(before: (i64, f64), after: (i64, f64), t: i128, max_gap_ms: i64) -> Option<f64> {
    let ((before_ts, before_value), (after_ts, after_value)) = (before, after);
    let gap = i128::from(after_ts) - i128::from(before_ts);
    if gap <= 0 || gap > i128::from(max_gap_ms) {
        return None;
    }
    let fraction = (t - i128::from(before_ts)) as f64 / gap as f64;
    let value = before_value + (after_value - before_value) * fraction;
    value.is_finite().then_some(value)
}

/// Sums over the pairs of two series, shifted by the first pair so that constant series give
/// exactly zero variance and large levels keep their moving digits.
#[derive(Debug, Default)]
struct PairedSums {
    shift: Option<(f64, f64)>,
    points: usize,
    sum_x: f64,
    sum_y: f64,
    sum_xx: f64,
    sum_yy: f64,
    sum_xy: f64,
    magnitude_x: f64,
    magnitude_y: f64,
}

impl PairedSums {
    /// The sums over the pairs at equal indexes, over the shorter length, skipping pairs where
    /// either side is missing or not finite.
    fn over(a: &[Option<f64>], b: &[Option<f64>]) -> Self {
        let mut sums = Self::default();
        for (x, y) in a.iter().zip(b) {
            if let (Some(x), Some(y)) = (*x, *y)
                && x.is_finite()
                && y.is_finite()
            {
                sums.add(x, y);
            }
        }
        sums
    }

    fn add(&mut self, x: f64, y: f64) {
        let (shift_x, shift_y) = *self.shift.get_or_insert((x, y));
        let (dx, dy) = (x - shift_x, y - shift_y);
        self.points += 1;
        self.sum_x += dx;
        self.sum_y += dy;
        self.sum_xx += dx * dx;
        self.sum_yy += dy * dy;
        self.sum_xy += dx * dy;
        self.magnitude_x = self.magnitude_x.max(x.abs());
        self.magnitude_y = self.magnitude_y.max(y.abs());
    }

    /// Pearson's r: `None` with fewer than `min_points` pairs (never fewer than 3) or when either
    /// side does not vary.
    fn pearson(&self, min_points: usize) -> Option<f64> {
        if self.points < min_points.max(MIN_POINTS_FLOOR) {
            return None;
        }
        let n = self.points as f64;
        let spread_xx = self.sum_xx - self.sum_x * self.sum_x / n;
        let spread_yy = self.sum_yy - self.sum_y * self.sum_y / n;
        let spread_xy = self.sum_xy - self.sum_x * self.sum_y / n;
        let varies = |spread: f64, magnitude: f64| {
            // `spread` is n times the variance; compare standard deviations.
            spread > 0.0 && (spread / n).sqrt() > RELATIVE_SPREAD_FLOOR * magnitude
        };
        if !varies(spread_xx, self.magnitude_x) || !varies(spread_yy, self.magnitude_y) {
            return None;
        }
        let r = spread_xy / (spread_xx.sqrt() * spread_yy.sqrt());
        r.is_finite().then(|| r.clamp(-1.0, 1.0))
    }
}

/// Stronger first: larger |r|, then smaller |lag|.
fn by_strength((r_a, lag_a): (f64, i64), (r_b, lag_b): (f64, i64)) -> Ordering {
    r_b.abs()
        .total_cmp(&r_a.abs())
        .then_with(|| lag_a.unsigned_abs().cmp(&lag_b.unsigned_abs()))
}

/// "`target` rose 40 s after `other` (r = 0.91)": the verb from the sign of r, the preposition
/// from the sign of the lag (positive: `other` moved first).
fn describe_movement(target: &str, other: &str, r: f64, lag_ms: i64) -> String {
    let lag = format_lag(lag_ms.unsigned_abs());
    let movement = match (r >= 0.0, lag_ms.signum()) {
        (true, 0) => format!("{target} rose with {other}"),
        (true, 1) => format!("{target} rose {lag} after {other}"),
        (true, _) => format!("{target} rose {lag} before {other}"),
        (false, 0) => format!("{target} fell as {other} rose"),
        (false, 1) => format!("{target} fell {lag} after {other} rose"),
        (false, _) => format!("{target} fell {lag} before {other} rose"),
    };
    format!("{movement} (r = {r:.2})")
}

/// "40 s", "2 min", "2 min 30 s", "2.5 s", "500 ms".
fn format_lag(ms: u64) -> String {
    let seconds = |ms: u64| {
        if ms.is_multiple_of(1000) {
            format!("{} s", ms / 1000)
        } else {
            format!("{} s", ms as f64 / 1000.0)
        }
    };
    match (ms / 60_000, ms % 60_000) {
        (0, rest) if rest < 1000 => format!("{rest} ms"),
        (0, rest) => seconds(rest),
        (minutes, 0) => format!("{minutes} min"),
        (minutes, rest) => format!("{minutes} min {}", seconds(rest)),
    }
}

/// Number of points from `start_ms` to `end_ms` inclusive, or `None` for an empty grid.
fn grid_len(start_ms: i64, end_ms: i64, step_ms: i64) -> Option<usize> {
    if step_ms <= 0 || end_ms < start_ms {
        return None;
    }
    let steps = (i128::from(end_ms) - i128::from(start_ms)) / i128::from(step_ms);
    usize::try_from(steps + 1).ok()
}

/// Index of the grid point nearest `ts` (halfway rounds up); negative before the grid.
/// `step_ms` must be positive.
fn nearest_point(ts: i64, start_ms: i64, step_ms: i64) -> i128 {
    let step = i128::from(step_ms);
    (i128::from(ts) - i128::from(start_ms) + step / 2).div_euclid(step)
}

/// The later of two samples; the new one on equal timestamps.
fn later(current: Option<(i64, f64)>, new: (i64, f64)) -> Option<(i64, f64)> {
    match current {
        Some(current) if current.0 > new.0 => Some(current),
        _ => Some(new),
    }
}

/// The earlier of two samples; the new one on equal timestamps.
fn earlier(current: Option<(i64, f64)>, new: (i64, f64)) -> Option<(i64, f64)> {
    match current {
        Some(current) if current.0 < new.0 => Some(current),
        _ => Some(new),
    }
}

/// `values` without its first `count` entries; empty when it has fewer.
fn tail(values: &[Option<f64>], count: usize) -> &[Option<f64>] {
    values.get(count..).unwrap_or(&[])
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::test_support::{T0, normal};

    fn pearson(a: &[Option<f64>], b: &[Option<f64>], min_points: usize) -> Option<f64> {
        PairedSums::over(a, b).pearson(min_points)
    }

    /// Length of the test windows: an hour, 360 points at 10 s.
    const WINDOW_S: i64 = 3600;
    /// Signal generated on each side of the window, so shifted copies never run out.
    const MARGIN_S: i64 = 600;

    /// A signal at 1 s resolution shaped like a latency or a busy-time gauge: a mean-reverting
    /// random walk with rare bursts.
    struct Latent(Vec<f64>);

    impl Latent {
        /// Each second keeps 0.97 of the last, so values 10 s apart correlate at about 0.74
        /// and 40 s apart at about 0.3.
        fn new(rng: &mut fastrand::Rng) -> Self {
            Self::with_memory(rng, 0.97)
        }

        /// Each second keeps `memory` of the last (an AR(1) process).
        fn with_memory(rng: &mut fastrand::Rng, memory: f64) -> Self {
            let mut level = 0.0;
            let values = (0..WINDOW_S + 2 * MARGIN_S)
                .map(|_| {
                    let burst = if rng.f64() < 0.002 { 20.0 } else { 0.0 };
                    level = memory * level + normal(rng) + burst;
                    level
                })
                .collect();
            Self(values)
        }

        /// The signal as it was `delay_s` seconds before `ts_ms`.
        fn at(&self, ts_ms: i64, delay_s: i64) -> f64 {
            let second = (ts_ms - T0).div_euclid(1000) - delay_s + MARGIN_S;
            self.0[usize::try_from(second).unwrap()]
        }
    }

    /// Timestamps every `interval_s` over the window, each moved by up to ±`jitter_ms`.
    fn timestamps(rng: &mut fastrand::Rng, interval_s: i64, jitter_ms: i64) -> Vec<i64> {
        (0..WINDOW_S / interval_s)
            .map(|i| T0 + i * interval_s * 1000 + rng.i64(-jitter_ms..=jitter_ms))
            .collect()
    }

    fn observe(times: &[i64], mut value: impl FnMut(i64) -> f64) -> Vec<(i64, f64)> {
        times.iter().map(|&ts| (ts, value(ts))).collect()
    }

    /// Aligned on the test window at 10 s, bridging gaps up to 90 s (the defaults).
    fn on_window(samples: &[(i64, f64)]) -> Vec<Option<f64>> {
        align(samples, T0, T0 + (WINDOW_S - 10) * 1000, 10_000, 90_000)
    }

    fn present(values: &[f64]) -> Vec<Option<f64>> {
        values.iter().copied().map(Some).collect()
    }

    fn noise(rng: &mut fastrand::Rng, len: usize) -> Vec<f64> {
        (0..len).map(|_| normal(rng)).collect()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = CorrelationConfig::default();
        assert_eq!(config.max_lag, Duration::from_secs(300));
        assert_eq!(config.step, Duration::from_secs(10));
        assert_eq!(config.max_gap, Duration::from_secs(90));
        assert_eq!(config.min_abs_r, 0.7);
        assert_eq!(config.min_points, 10);
        assert_eq!(config.max_candidates, 200);
        assert_eq!(config.top_k, 5);
    }

    /// One `align` case: samples as `(seconds, value)` on a grid from 0 s to 50 s at 10 s,
    /// interpolating across gaps up to 20 s.
    fn check_align(samples: &[(i64, f64)], expected: [Option<f64>; 6]) {
        let samples: Vec<(i64, f64)> = samples.iter().map(|&(s, v)| (T0 + s * 1000, v)).collect();
        let aligned = align(&samples, T0, T0 + 50_000, 10_000, 20_000);
        assert_eq!(aligned, expected, "samples {samples:?}");
    }

    #[test]
    fn align_cases() {
        // On the grid.
        check_align(
            &[
                (0, 1.0),
                (10, 2.0),
                (20, 3.0),
                (30, 4.0),
                (40, 5.0),
                (50, 6.0),
            ],
            [
                Some(1.0),
                Some(2.0),
                Some(3.0),
                Some(4.0),
                Some(5.0),
                Some(6.0),
            ],
        );
        // Each sample goes to its nearest point, halfway up: 5 s and 14 s to 10 s (their mean),
        // 26 s to 30 s. 20 s is interpolated between the samples' real times, 14 s and 26 s;
        // nothing follows 26 s, so 40 s and 50 s are missing.
        check_align(
            &[(0, 1.0), (5, 2.0), (14, 4.0), (26, 8.0)],
            [Some(1.0), Some(3.0), Some(6.0), Some(8.0), None, None],
        );
        // Gaps up to 20 s are bridged, longer ones are not.
        check_align(
            &[(0, 0.0), (20, 2.0), (50, 5.0)],
            [Some(0.0), Some(1.0), Some(2.0), None, None, Some(5.0)],
        );
        // Samples just outside the grid interpolate its first and last points.
        check_align(
            &[(-10, 7.0), (10, 9.0), (40, 3.0), (60, 1.0)],
            [Some(8.0), Some(9.0), None, None, Some(3.0), Some(2.0)],
        );
        // NaN and infinities are dropped.
        check_align(
            &[
                (10, f64::NAN),
                (20, 3.0),
                (30, f64::INFINITY),
                (44, 8.0),
                (60, 0.0),
            ],
            [None, None, Some(3.0), None, Some(8.0), Some(5.0)],
        );
        // Order does not matter: 10 s is interpolated towards the earliest sample after it
        // (16 s), not the last one given.
        check_align(
            &[(24, 5.0), (16, 1.0), (0, 4.0)],
            [Some(4.0), Some(2.125), Some(3.0), None, None, None],
        );
        check_align(&[], [None; 6]);
    }

    #[test]
    fn align_of_an_empty_or_impossible_grid_is_empty() {
        let samples = [(T0, 1.0)];
        assert!(align(&samples, T0, T0 - 1, 10_000, 0).is_empty());
        assert!(align(&samples, T0, T0 + 50_000, 0, 0).is_empty());
        assert!(align(&samples, T0, T0 + 50_000, -10_000, 0).is_empty());
        assert_eq!(align(&samples, T0, T0, 10_000, 0), vec![Some(1.0)]);
        assert_eq!(
            align(&[(i64::MAX, 1.0), (i64::MIN, 2.0)], 0, 0, 1, 0),
            vec![None]
        );
    }

    #[test]
    fn pearson_is_one_and_minus_one_on_linear_relations() {
        let mut rng = fastrand::Rng::with_seed(1);
        let x = noise(&mut rng, 200);
        let rising: Vec<f64> = x.iter().map(|v| 3.0 * v + 2.0).collect();
        let falling: Vec<f64> = x.iter().map(|v| -0.5 * v + 1e12).collect();
        let r = pearson(&present(&x), &present(&rising), 10).unwrap();
        assert!((r - 1.0).abs() < 1e-12, "r = {r}");
        // Around 1e12 an f64 holds 1e-4, so the line is only that straight: r = −1 + 3e-9.
        // The shifted sums lose nothing more.
        let r = pearson(&present(&x), &present(&falling), 10).unwrap();
        assert!((r + 1.0).abs() < 1e-8, "r = {r}");
    }

    #[test]
    fn pearson_is_near_zero_on_independent_noise() {
        let mut rng = fastrand::Rng::with_seed(2);
        for _ in 0..20 {
            let a = noise(&mut rng, 2000);
            let b = noise(&mut rng, 2000);
            let r = pearson(&present(&a), &present(&b), 10).unwrap();
            // One standard error is 1/√2000 ≈ 0.022.
            assert!(r.abs() < 0.09, "r = {r}");
        }
    }

    #[test]
    fn pearson_skips_missing_points_and_needs_enough_pairs() {
        let a: Vec<Option<f64>> = (0..30).map(|i| Some(f64::from(i))).collect();
        // The odd points break the line, but they are missing on one side or the other.
        let b: Vec<Option<f64>> = (0..30)
            .map(|i| (i % 2 == 0).then_some(f64::from(2 * i)))
            .collect();
        let mut a_with_gaps = a.clone();
        a_with_gaps[4] = None;
        a_with_gaps[6] = Some(f64::NAN);
        let r = pearson(&a_with_gaps, &b, 10).unwrap();
        assert!((r - 1.0).abs() < 1e-12, "r = {r}");
        // 15 pairs, 13 after the gaps.
        assert!(pearson(&a, &b, 15).is_some());
        assert_eq!(pearson(&a, &b, 16), None);
        assert_eq!(pearson(&a_with_gaps, &b, 14), None);
        // Two points always lie on a line: never a correlation, whatever min_points says.
        assert_eq!(pearson(&a[..2], &a[..2], 0), None);
        assert!(pearson(&a[..3], &a[..3], 0).is_some());
    }

    #[test]
    fn pearson_is_none_without_variance() {
        let mut rng = fastrand::Rng::with_seed(3);
        let x = present(&noise(&mut rng, 100));
        // 0.1 is not exact in binary: a mean-centred sum would leave rounding noise here.
        for constant in [0.0, 0.1, 1e12 + 0.3, -7.0] {
            assert_eq!(pearson(&x, &vec![Some(constant); 100], 10), None);
            assert_eq!(pearson(&vec![Some(constant); 100], &x, 10), None);
        }
        // Off by one unit in the last place: rounding, not movement.
        let wobble: Vec<Option<f64>> = (0..100)
            .map(|i| Some(if i % 3 == 0 { 0.1 + 0.2 } else { 0.3 }))
            .collect();
        assert_eq!(pearson(&x, &wobble, 10), None);
        assert_eq!(pearson(&[], &[], 0), None);
        assert_eq!(pearson(&x, &[], 0), None);
    }

    #[test]
    fn pearson_never_returns_nan() {
        let huge = present(&[1e300, -1e300, 1e300, 0.0, 5e299]);
        let small = present(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let tiny = present(&[1e-300, 2e-300, 3e-300, 4e-300, 6e-300]);
        for (a, b) in [
            (&huge, &small),
            (&huge, &huge),
            (&tiny, &small),
            (&tiny, &tiny),
        ] {
            if let Some(r) = pearson(a, b, 3) {
                assert!((-1.0..=1.0).contains(&r), "r = {r}");
            }
        }
    }

    /// The +40 s and −40 s cases: `target_delay_s` and `candidate_delay_s` say how late each
    /// follows the latent signal.
    fn lagged_pair(
        seed: u64,
        target_delay_s: i64,
        candidate_delay_s: i64,
    ) -> [Vec<Option<f64>>; 2] {
        let mut rng = fastrand::Rng::with_seed(seed);
        let latent = Latent::new(&mut rng);
        let times = timestamps(&mut rng, 10, 0);
        let target = observe(&times, |ts| {
            2.0 * latent.at(ts, target_delay_s) + 5.0 + 0.5 * normal(&mut rng)
        });
        let candidate = observe(&times, |ts| {
            latent.at(ts, candidate_delay_s) + 0.5 * normal(&mut rng)
        });
        [on_window(&target), on_window(&candidate)]
    }

    #[test]
    fn best_lag_finds_a_candidate_that_moves_40_s_before_the_target() {
        for seed in 10..15 {
            let [target, candidate] = lagged_pair(seed, 40, 0);
            let found = best_lag(&target, &candidate, 10_000, 300_000, 10).unwrap();
            assert_eq!(found.lag_ms, 40_000, "seed {seed}: {found:?}");
            assert!(found.r > 0.95, "seed {seed}: {found:?}");
            assert_eq!(found.points, 356);
            // Without the lag the relation is much weaker.
            let unshifted = pearson(&target, &candidate, 10).unwrap();
            assert!(
                unshifted < found.r - 0.3,
                "seed {seed}: r at 0 s = {unshifted}"
            );
        }
    }

    #[test]
    fn best_lag_finds_a_candidate_that_moves_40_s_after_the_target() {
        for seed in 20..25 {
            let [target, candidate] = lagged_pair(seed, 0, 40);
            let found = best_lag(&target, &candidate, 10_000, 300_000, 10).unwrap();
            assert_eq!(found.lag_ms, -40_000, "seed {seed}: {found:?}");
            assert!(found.r > 0.95, "seed {seed}: {found:?}");
        }
    }

    #[test]
    fn best_lag_reports_opposite_movement_with_negative_r() {
        let [target, candidate] = lagged_pair(30, 40, 0);
        let inverted: Vec<Option<f64>> = candidate.iter().map(|v| v.map(|v| -v)).collect();
        let found = best_lag(&target, &inverted, 10_000, 300_000, 10).unwrap();
        assert_eq!(found.lag_ms, 40_000);
        assert!(found.r < -0.95, "{found:?}");
    }

    #[test]
    fn best_lag_stays_within_max_lag() {
        let [target, candidate] = lagged_pair(31, 40, 0);
        let found = best_lag(&target, &candidate, 10_000, 20_000, 10).unwrap();
        assert!(found.lag_ms.abs() <= 20_000, "{found:?}");
        assert!(found.r < 0.95, "{found:?}");
        // A max lag between steps rounds down: 39.9 s tries up to 30 s.
        let found = best_lag(&target, &candidate, 10_000, 39_999, 10).unwrap();
        assert!(found.lag_ms.abs() <= 30_000, "{found:?}");
        let found = best_lag(&target, &candidate, 10_000, 0, 10).unwrap();
        assert_eq!(found.lag_ms, 0);
    }

    #[test]
    fn best_lag_prefers_the_smaller_lag_on_a_tie() {
        // A line correlates perfectly with itself at every shift.
        let line: Vec<Option<f64>> = (0..50).map(|i| Some(f64::from(i))).collect();
        let found = best_lag(&line, &line, 10_000, 300_000, 10).unwrap();
        assert_eq!(found.lag_ms, 0);
        assert!((found.r - 1.0).abs() < 1e-12);
        assert_eq!(by_strength((0.9, -10_000), (-0.9, 20_000)), Ordering::Less);
        assert_eq!(by_strength((0.8, 0), (-0.9, 20_000)), Ordering::Greater);
        assert_eq!(by_strength((0.9, 10_000), (0.9, -10_000)), Ordering::Equal);
    }

    #[test]
    fn irregular_timestamps_and_different_intervals_still_recover_the_lag() {
        for seed in 40..45 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let latent = Latent::new(&mut rng);
            // The target every 10 s ± 3 s, the candidate every 15 s ± 4 s, moving 40 s earlier.
            let target_times = timestamps(&mut rng, 10, 3000);
            let candidate_times = timestamps(&mut rng, 15, 4000);
            let target = observe(&target_times, |ts| {
                latent.at(ts, 40) + 0.5 * normal(&mut rng)
            });
            let candidate = observe(&candidate_times, |ts| {
                3.0 * latent.at(ts, 0) + 1.5 * normal(&mut rng)
            });
            let target = on_window(&target);
            let candidate = on_window(&candidate);
            // Every point is filled, the 15 s series' by interpolation where it has no sample,
            // except where the jitter put its first or last sample inside the grid.
            assert!(target.iter().all(Option::is_some));
            assert!(
                candidate[1..candidate.len() - 1]
                    .iter()
                    .all(Option::is_some)
            );
            let found = best_lag(&target, &candidate, 10_000, 300_000, 10).unwrap();
            assert_eq!(found.lag_ms, 40_000, "seed {seed}: {found:?}");
            assert!(found.r > 0.75, "seed {seed}: {found:?}");
        }
    }

    /// A target and candidates like an anomaly's: the redis latency follows the NAS disk's busy
    /// time by 40 s; a noisier copy, an inverted one and a weak one follow the same signal;
    /// the decoys are independent signals of the same shape.
    fn anomaly_scene(seed: u64, decoys: usize) -> (SeriesWindow, Vec<SeriesWindow>) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let disk = Latent::new(&mut rng);
        let times = timestamps(&mut rng, 10, 50);
        let target = SeriesWindow::new(
            "redis_latency{node=\"nas\"}",
            observe(&times, |ts| {
                2.0 * disk.at(ts, 40) + 30.0 + 0.5 * normal(&mut rng)
            }),
        );
        let mut candidates = Vec::new();
        for i in 0..decoys {
            let decoy = Latent::new(&mut rng);
            candidates.push(SeriesWindow::new(
                format!("decoy{{node=\"n{i}\"}}"),
                observe(&times, |ts| decoy.at(ts, 0) + 0.5 * normal(&mut rng)),
            ));
        }
        // (key, delay behind the disk, scale, noise): r ≈ 0.99, −0.9, 0.8 and 0.45.
        let related = [
            ("node_disk_io_time{node=\"nas\"}", 0, 1.0, 0.5),
            ("nas_free_memory{node=\"nas\"}", 20, -1.0, 2.0),
            ("nfs_ops{node=\"app\"}", 0, 1.0, 3.0),
            ("cpu_busy{node=\"app\"}", 0, 1.0, 8.0),
        ];
        for (position, (key, delay_s, scale, noise)) in related.into_iter().enumerate() {
            let candidate = SeriesWindow::new(
                key,
                observe(&times, |ts| {
                    scale * disk.at(ts, delay_s) + noise * normal(&mut rng)
                }),
            );
            // Spread among the decoys rather than in front of them.
            candidates.insert(position * 7 % (candidates.len() + 1), candidate);
        }
        (target, candidates)
    }

    #[test]
    fn rank_related_puts_the_related_series_first_among_decoys() {
        let config = CorrelationConfig::default();
        for seed in 1..4 {
            let (target, candidates) = anomaly_scene(seed, 50);
            assert_eq!(candidates.len(), 54);
            let related = rank_related(&target, &candidates, &config);
            let found: Vec<(&str, i64)> = related
                .iter()
                .map(|r| (r.candidate.as_str(), r.lag_ms))
                .collect();
            // The weak one (r ≈ 0.45) and every decoy stay below min |r|.
            assert_eq!(
                found,
                [
                    ("node_disk_io_time{node=\"nas\"}", 40_000),
                    ("nas_free_memory{node=\"nas\"}", 20_000),
                    ("nfs_ops{node=\"app\"}", 40_000),
                ],
                "seed {seed}: {related:#?}"
            );
            assert!(related[0].r > 0.95, "{related:#?}");
            assert!(related[1].r < -0.8, "{related:#?}");
            assert!(related[2].r > 0.7, "{related:#?}");
            assert!(related.iter().all(|r| r.target == target.key));
            // What the weak one and the best decoy reach, unfiltered.
            let everything = CorrelationConfig {
                min_abs_r: 0.0,
                top_k: usize::MAX,
                ..config.clone()
            };
            let all = rank_related(&target, &candidates, &everything);
            assert_eq!(all.len(), 54);
            let weak = all
                .iter()
                .find(|r| r.candidate.starts_with("cpu_busy"))
                .unwrap();
            assert!((0.3..0.7).contains(&weak.r.abs()), "{weak:?}");
            let best_decoy = all
                .iter()
                .find(|r| r.candidate.starts_with("decoy"))
                .unwrap();
            assert!(best_decoy.r.abs() < 0.5, "{best_decoy:?}");
        }
    }

    #[test]
    fn rank_related_keeps_top_k_strongest_first() {
        let (target, candidates) = anomaly_scene(4, 10);
        let config = CorrelationConfig {
            min_abs_r: 0.0,
            top_k: 6,
            ..CorrelationConfig::default()
        };
        let related = rank_related(&target, &candidates, &config);
        assert_eq!(related.len(), 6);
        assert!(related.windows(2).all(|w| w[0].r.abs() >= w[1].r.abs()));
        let none = CorrelationConfig {
            top_k: 0,
            ..CorrelationConfig::default()
        };
        assert!(rank_related(&target, &candidates, &none).is_empty());
    }

    #[test]
    fn rank_related_considers_only_the_first_max_candidates() {
        let (target, scene) = anomaly_scene(5, 0);
        let related_one = scene[0].clone();
        let (_, decoys) = anomaly_scene(6, 5);
        let decoys: Vec<SeriesWindow> = decoys
            .into_iter()
            .filter(|c| c.key.starts_with("decoy"))
            .collect();
        assert_eq!(decoys.len(), 5);
        let mut candidates = decoys;
        candidates.push(related_one.clone());
        let bounded = |max_candidates| CorrelationConfig {
            max_candidates,
            ..CorrelationConfig::default()
        };
        assert!(rank_related(&target, &candidates, &bounded(5)).is_empty());
        let found = rank_related(&target, &candidates, &bounded(6));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].candidate, related_one.key);
        assert!(rank_related(&target, &candidates, &bounded(0)).is_empty());
    }

    #[test]
    fn rank_related_skips_the_target_itself() {
        let (target, mut candidates) = anomaly_scene(7, 3);
        candidates.insert(0, target.clone());
        let related = rank_related(&target, &candidates, &CorrelationConfig::default());
        assert!(related.iter().all(|r| r.candidate != target.key));
        assert_eq!(related[0].candidate, "node_disk_io_time{node=\"nas\"}");
    }

    #[test]
    fn rank_related_on_irregular_series_of_other_intervals() {
        for seed in 50..55 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let disk = Latent::new(&mut rng);
            let target_times = timestamps(&mut rng, 10, 3000);
            let disk_times = timestamps(&mut rng, 15, 4000);
            let target = SeriesWindow::new(
                "redis_latency",
                observe(&target_times, |ts| disk.at(ts, 40) + 0.5 * normal(&mut rng)),
            );
            let disk_busy = SeriesWindow::new(
                "disk_busy",
                observe(&disk_times, |ts| disk.at(ts, 0) + 0.5 * normal(&mut rng)),
            );
            let related = rank_related(&target, &[disk_busy], &CorrelationConfig::default());
            assert_eq!(related.len(), 1, "seed {seed}");
            assert_eq!(related[0].lag_ms, 40_000, "seed {seed}: {related:?}");
            assert!(related[0].r > 0.75, "seed {seed}: {related:?}");
        }
    }

    #[test]
    fn a_60_s_series_pairs_with_every_point_of_a_10_s_one() {
        for seed in 56..61 {
            let mut rng = fastrand::Rng::with_seed(seed);
            // Slower than the tests' usual signal, as what a 60 s tier measures would be.
            let load = Latent::with_memory(&mut rng, 0.995);
            let target_times = timestamps(&mut rng, 10, 1000);
            let slow_times = timestamps(&mut rng, 60, 2000);
            let target = SeriesWindow::new(
                "redis_latency",
                observe(&target_times, |ts| {
                    load.at(ts, 120) + 0.5 * normal(&mut rng)
                }),
            );
            let slow = SeriesWindow::new(
                "load_average",
                observe(&slow_times, |ts| load.at(ts, 0) + 0.5 * normal(&mut rng)),
            );
            let related = rank_related(&target, &[slow], &CorrelationConfig::default());
            assert_eq!(related.len(), 1, "seed {seed}");
            // Interpolated between samples a minute apart, the lag is known to about a step.
            assert!(
                (110_000..=130_000).contains(&related[0].lag_ms),
                "seed {seed}: {related:?}"
            );
            assert!(related[0].r > 0.8, "seed {seed}: {related:?}");
            assert!(related[0].points > 330, "seed {seed}: {related:?}");
        }
    }

    /// [`correlated_pairs`] with nothing to stop it.
    fn pairs_of(series: &[SeriesWindow], config: &CorrelationConfig) -> Vec<Pair> {
        correlated_pairs(series, config, &Budget::UNLIMITED)
            .expect("an unlimited budget never stops")
    }

    /// A caller's deadline stops a search part-way: after the budget says stop, no further
    /// pair is compared and no partial ranking comes back.
    #[test]
    fn a_budget_stops_the_searches_midway() {
        let (target, candidates) = anomaly_scene(1, 20);
        let checks = std::cell::Cell::new(0_usize);
        let after_5 = || {
            checks.set(checks.get() + 1);
            checks.get() > 5
        };
        let budget = Budget::new(&after_5);
        let config = CorrelationConfig::default();
        assert_eq!(
            rank_related_within(&target, &candidates, &config, &budget),
            Err(Interrupted)
        );
        assert_eq!(checks.get(), 6, "stopped at the sixth candidate");
        checks.set(0);
        assert_eq!(
            correlated_pairs(&candidates, &config, &budget),
            Err(Interrupted)
        );
        assert_eq!(checks.get(), 6, "stopped while aligning the sixth series");
        assert_eq!(
            rank_related_within(&target, &candidates, &config, &Budget::UNLIMITED),
            Ok(rank_related(&target, &candidates, &config))
        );
    }

    #[test]
    fn correlated_pairs_finds_leaders_and_followers() {
        let mut rng = fastrand::Rng::with_seed(60);
        let disk = Latent::new(&mut rng);
        let other = Latent::new(&mut rng);
        let times = timestamps(&mut rng, 10, 50);
        let mut series = |key: &str, signal: &Latent, delay_s: i64, scale: f64| {
            SeriesWindow::new(
                key,
                observe(&times, |ts| {
                    scale * signal.at(ts, delay_s) + 0.5 * normal(&mut rng)
                }),
            )
        };
        let all = [
            series("redis_latency", &disk, 40, 2.0),
            series("disk_busy", &disk, 0, 1.0),
            series("unrelated", &other, 0, 1.0),
            series("free_memory", &disk, 0, -1.0),
        ];
        let pairs = pairs_of(&all, &CorrelationConfig::default());
        assert!(pairs.windows(2).all(|w| w[0].r.abs() >= w[1].r.abs()));
        let mut found: Vec<(&str, &str, i64, bool)> = pairs
            .iter()
            .map(|p| (p.leader.as_str(), p.follower.as_str(), p.lag_ms, p.r > 0.0))
            .collect();
        found.sort_unstable_by_key(|&(leader, follower, ..)| (leader, follower));
        assert_eq!(
            found,
            [
                ("disk_busy", "free_memory", 0, false),
                ("disk_busy", "redis_latency", 40_000, true),
                ("free_memory", "redis_latency", 40_000, false),
            ],
            "{pairs:#?}"
        );
        assert!(pairs.iter().all(|p| p.r.abs() > 0.9), "{pairs:#?}");
        // Only the first two series are considered.
        let bounded = CorrelationConfig {
            max_candidates: 2,
            ..CorrelationConfig::default()
        };
        let pairs = pairs_of(&all, &bounded);
        assert_eq!(pairs.len(), 1);
        assert_eq!(
            (pairs[0].leader.as_str(), pairs[0].follower.as_str()),
            ("disk_busy", "redis_latency")
        );
        assert_eq!(
            pairs[0].describe(),
            format!(
                "redis_latency rose 40 s after disk_busy (r = {:.2})",
                pairs[0].r
            )
        );
    }

    fn check_describe(r: f64, lag_ms: i64, expected: &str) {
        let related = Related {
            target: "redis_latency{node=\"nas\"}".to_owned(),
            candidate: "node_disk_io_time{node=\"nas\"}".to_owned(),
            r,
            lag_ms,
            points: 356,
        };
        assert_eq!(related.describe(), expected);
    }

    #[test]
    fn describe_cases() {
        check_describe(
            0.91,
            40_000,
            "redis_latency{node=\"nas\"} rose 40 s after node_disk_io_time{node=\"nas\"} (r = 0.91)",
        );
        check_describe(
            0.8,
            -150_000,
            "redis_latency{node=\"nas\"} rose 2 min 30 s before node_disk_io_time{node=\"nas\"} (r = 0.80)",
        );
        check_describe(
            0.999,
            0,
            "redis_latency{node=\"nas\"} rose with node_disk_io_time{node=\"nas\"} (r = 1.00)",
        );
        check_describe(
            -0.75,
            0,
            "redis_latency{node=\"nas\"} fell as node_disk_io_time{node=\"nas\"} rose (r = -0.75)",
        );
        check_describe(
            -0.9,
            300_000,
            "redis_latency{node=\"nas\"} fell 5 min after node_disk_io_time{node=\"nas\"} rose (r = -0.90)",
        );
        check_describe(
            -0.7,
            -2_500,
            "redis_latency{node=\"nas\"} fell 2.5 s before node_disk_io_time{node=\"nas\"} rose (r = -0.70)",
        );
        check_describe(
            0.7,
            500,
            "redis_latency{node=\"nas\"} rose 500 ms after node_disk_io_time{node=\"nas\"} (r = 0.70)",
        );
    }

    #[test]
    fn degenerate_series_give_nothing_and_never_panic() {
        let mut rng = fastrand::Rng::with_seed(70);
        let latent = Latent::new(&mut rng);
        let times = timestamps(&mut rng, 10, 0);
        let moving = SeriesWindow::new("moving", observe(&times, |ts| latent.at(ts, 0)));
        let degenerate = [
            SeriesWindow::new("empty", Vec::new()),
            SeriesWindow::new("single", vec![(T0, 1.0)]),
            SeriesWindow::new("constant", observe(&times, |_| 0.1)),
            SeriesWindow::new("nan", observe(&times, |_| f64::NAN)),
            SeriesWindow::new("infinite", observe(&times, |_| f64::INFINITY)),
            SeriesWindow::new("few", observe(&times[..5], |ts| latent.at(ts, 0))),
            SeriesWindow::new("far_future", vec![(i64::MAX, 1.0), (i64::MAX - 1, 2.0)]),
            SeriesWindow::new("far_past", vec![(i64::MIN, 1.0), (i64::MIN + 1, 2.0)]),
        ];
        let config = CorrelationConfig::default();
        for series in &degenerate {
            let key = &series.key;
            assert!(
                rank_related(series, &degenerate, &config).is_empty(),
                "{key}"
            );
            let moving_only = std::slice::from_ref(&moving);
            assert!(
                rank_related(series, moving_only, &config).is_empty(),
                "{key}"
            );
            let series_only = std::slice::from_ref(series);
            assert!(
                rank_related(&moving, series_only, &config).is_empty(),
                "{key}"
            );
        }
        assert!(rank_related(&moving, &[], &config).is_empty());
        let mut with_moving = degenerate[..6].to_vec();
        with_moving.push(moving.clone());
        assert!(pairs_of(&with_moving, &config).is_empty());
        assert!(pairs_of(&[], &config).is_empty());
        assert!(pairs_of(std::slice::from_ref(&moving), &config).is_empty());
        let zero_step = CorrelationConfig {
            step: Duration::ZERO,
            ..config
        };
        assert!(rank_related(&moving, std::slice::from_ref(&moving), &zero_step).is_empty());
        assert!(pairs_of(&[moving.clone(), moving], &zero_step).is_empty());
        let aligned = on_window(&observe(&times, |ts| latent.at(ts, 0)));
        assert_eq!(best_lag(&[], &[], 10_000, 300_000, 10), None);
        assert_eq!(best_lag(&aligned, &[], 10_000, 300_000, 10), None);
        assert_eq!(best_lag(&aligned, &aligned, 0, 300_000, 10), None);
        assert_eq!(best_lag(&aligned, &aligned, 10_000, -1, 10), None);
        assert!(best_lag(&aligned, &aligned, 1, i64::MAX, 10).is_some());
    }
}

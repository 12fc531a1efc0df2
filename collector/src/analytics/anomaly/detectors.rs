//! The online detectors of one series, each O(1) time and memory per sample (the sliding
//! windows have a fixed length), and [`SeriesDetector`], which runs them on every sample and
//! hands their outputs to the ensemble.
//!
//! - **z-score** over an exponentially weighted mean and variance: catches spikes, dips and,
//!   because the baseline moves slowly, level shifts and slow drifts.
//! - **robust**: median and MAD over a sliding window (robust z = 0.6745·(x − median)/MAD), and
//!   Tukey's IQR fences (Q1 − k·IQR, Q3 + k·IQR) over the same window. Outliers inside the window
//!   do not inflate the spread, so a burst of spikes is still seen.
//! - **moving average**: deviation from the window's mean in units of the window's standard
//!   deviation; reacts to variance changes faster than the EWMA.
//! - **adaptive threshold**: a band around an exponential moving average that tracks the mean
//!   absolute deviation with the adaptation rate; follows gradual change, flags abrupt change.
//! - **drift**: a two-sided CUSUM of the standardised distance from a slow baseline; it adds up
//!   small, persistent deviations that each stay inside every band, so a slow leak is seen.
//! - **seasonal baseline**: per hour-of-day and per day-of-week profiles (EWMA mean and variance
//!   per slot). Once a slot has been seen on enough days, a value that is normal for this hour
//!   (the nightly backup) is not an anomaly even when it is far from the recent level.
//!
//! Baselines learn from winsorised values (clipped at the band), so a spike does not widen them.
//! Until `min_samples` samples were seen the series is *learning*: scored 0, never anomalous.

use super::AnomalyConfig;
use super::ensemble::{Detector, DetectorOutput, Evidence, Verdict, ensemble};
use crate::analytics::stats::quantile_sorted;
use std::collections::VecDeque;

/// Exponentially weighted mean and variance (West's incremental form).
#[derive(Debug, Clone, Copy, Default)]
struct Ewma {
    mean: f64,
    var: f64,
    initialised: bool,
}

impl Ewma {
    fn update(&mut self, x: f64, alpha: f64) {
        if !self.initialised {
            *self = Ewma {
                mean: x,
                var: 0.0,
                initialised: true,
            };
            return;
        }
        let diff = x - self.mean;
        let incr = alpha * diff;
        self.mean += incr;
        self.var = (1.0 - alpha) * (self.var + diff * incr);
    }

    /// Updates with `x` clipped to `mean ± clip·sd`: an outlier moves the baseline no more than
    /// a value at the band's edge would.
    fn update_winsorised(&mut self, x: f64, alpha: f64, clip: f64) {
        let sd = self.sd();
        let x = if self.initialised && sd > 0.0 {
            x.clamp(self.mean - clip * sd, self.mean + clip * sd)
        } else {
            x
        };
        self.update(x, alpha);
    }

    fn sd(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }
}

/// Two-sided CUSUM of standardised deviations from a slow baseline.
#[derive(Debug, Clone, Copy, Default)]
struct Cusum {
    baseline: Ewma,
    /// Mean absolute difference between consecutive samples: the noise level, blind to slow
    /// change. A spread measured around the slow baseline would grow with the very drift it
    /// should reveal.
    step: f64,
    previous: Option<f64>,
    high: f64,
    low: f64,
}

impl Cusum {
    /// The noise's standard deviation: E|x₍ₜ₎ − x₍ₜ₋₁₎| = 2σ/√π for independent noise.
    fn sd(&self) -> f64 {
        floor_spread(self.step * 0.886_226_9, self.baseline.mean)
    }

    fn learn_step(&mut self, x: f64, alpha: f64) {
        if let Some(previous) = self.previous {
            let diff = (x - previous).abs();
            // A spike is two large steps; counting them whole would blind the detector.
            let diff = if self.step > 0.0 {
                diff.min(4.0 * self.step)
            } else {
                diff
            };
            self.step += alpha * (diff - self.step);
        }
        self.previous = Some(x);
    }
}

/// Allowance per sample, in standard deviations: deviations smaller than this never add up.
/// 1.5 rather than the textbook 0.5: the slow baseline trails an ordinary daily ramp by about a
/// standard deviation, which must not accumulate into a "drift" before the seasonal profile
/// has learnt the day.
const CUSUM_SLACK: f64 = 1.5;

/// A spread that is never zero: quantised or constant series would otherwise make any change an
/// infinite deviation. The floor is a millionth of the level, or 1e-9 near zero.
fn floor_spread(spread: f64, level: f64) -> f64 {
    spread.max(level.abs() * 1e-6).max(1e-9)
}

/// The last `len` values in arrival order and in sorted order, kept in step, so median,
/// quartiles and MAD cost no sort per sample.
#[derive(Debug, Clone)]
struct SortedWindow {
    len: usize,
    arrival: VecDeque<f64>,
    sorted: Vec<f64>,
    sum: f64,
    sum_sq: f64,
}

impl SortedWindow {
    fn new(len: usize) -> Self {
        Self {
            len,
            arrival: VecDeque::with_capacity(len),
            sorted: Vec::with_capacity(len),
            sum: 0.0,
            sum_sq: 0.0,
        }
    }

    fn push(&mut self, x: f64) {
        if self.arrival.len() == self.len
            && let Some(old) = self.arrival.pop_front()
        {
            let at = self.sorted.partition_point(|v| *v < old);
            self.sorted.remove(at);
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        self.arrival.push_back(x);
        let at = self.sorted.partition_point(|v| *v < x);
        self.sorted.insert(at, x);
        self.sum += x;
        self.sum_sq += x * x;
    }

    fn is_full(&self) -> bool {
        self.sorted.len() == self.len
    }

    /// Quantile by linear interpolation between order statistics.
    fn quantile(&self, q: f64) -> f64 {
        quantile_sorted(&self.sorted, q)
    }

    /// Median absolute deviation from `median`: the middle of |x − median|, found by walking
    /// outwards from the median in the sorted values (half the window at most).
    fn mad(&self, median: f64) -> f64 {
        let n = self.sorted.len();
        let target = n / 2; // index of the median deviation among n deviations
        let split = self.sorted.partition_point(|v| *v < median);
        let (mut left, mut right) = (split, split); // left: next below is left-1
        let mut last = 0.0;
        for _ in 0..=target {
            let below = left
                .checked_sub(1)
                .map(|i| median - self.sorted[i])
                .unwrap_or(f64::INFINITY);
            let above = self
                .sorted
                .get(right)
                .map(|v| v - median)
                .unwrap_or(f64::INFINITY);
            if below <= above {
                last = below;
                left -= 1;
            } else {
                last = above;
                right += 1;
            }
        }
        last
    }

    fn mean_sd(&self) -> (f64, f64) {
        let n = self.sorted.len() as f64;
        let mean = self.sum / n;
        let var = (self.sum_sq / n - mean * mean).max(0.0);
        (mean, var.sqrt())
    }
}

/// Per-slot profile for the seasonal baseline.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    stats: Ewma,
    /// Distinct days this slot was observed on.
    days: u32,
    last_day: i64,
}

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// Weight of a new sample in a seasonal slot: slots see ~360 samples an hour at 10 s, so this
/// remembers roughly the last few days of that hour.
const SEASONAL_ALPHA: f64 = 0.01;

#[derive(Debug, Clone)]
struct SeasonalBaseline {
    hours: [Slot; 24],
    weekdays: [Slot; 7],
}

impl SeasonalBaseline {
    fn new() -> Self {
        Self {
            hours: [Slot::default(); 24],
            weekdays: [Slot::default(); 7],
        }
    }

    fn slots(local_ms: i64) -> (usize, usize, i64) {
        let day = local_ms.div_euclid(DAY_MS);
        let hour = local_ms.rem_euclid(DAY_MS) / HOUR_MS;
        // 1970-01-01 was a Thursday; 0 = Monday.
        let weekday = (day + 3).rem_euclid(7);
        (hour as usize, weekday as usize, day)
    }

    /// Strength and expected range from the hour-of-day profile, when it is mature. The
    /// day-of-week profile shifts the expectation by how this weekday differs from the hour's
    /// usual level, once it is mature too.
    fn judge(
        &self,
        local_ms: i64,
        x: f64,
        config: &AnomalyConfig,
    ) -> Option<(DetectorOutput, f64, f64)> {
        let (hour, weekday, _) = Self::slots(local_ms);
        let h = &self.hours[hour];
        if h.days < config.seasonal_min_days {
            return None;
        }
        let mut expected = h.stats.mean;
        let mut sd = h.stats.sd();
        let w = &self.weekdays[weekday];
        if w.days >= config.seasonal_min_days {
            let (sum, count) = self
                .weekdays
                .iter()
                .filter(|s| s.days > 0)
                .fold((0.0, 0.0), |(sum, n), s| (sum + s.stats.mean, n + 1.0));
            let overall = sum / count;
            expected += w.stats.mean - overall;
            sd = sd.max(w.stats.sd() * 0.5);
        }
        let sd = floor_spread(sd, expected);
        let band = config.sensitivity * sd;
        let output = DetectorOutput {
            detector: Detector::Seasonal,
            strength: (x - expected).abs() / band,
            expected: (expected - band, expected + band),
        };
        Some((output, expected, sd))
    }

    fn learn(&mut self, local_ms: i64, x: f64) {
        let (hour, weekday, day) = Self::slots(local_ms);
        for slot in [&mut self.hours[hour], &mut self.weekdays[weekday]] {
            slot.stats.update(x, SEASONAL_ALPHA);
            if slot.days == 0 || slot.last_day != day {
                slot.days += 1;
                slot.last_day = day;
            }
        }
    }
}

/// The online state of one series: feed it every sample in time order.
#[derive(Debug, Clone)]
pub struct SeriesDetector {
    config: AnomalyConfig,
    seen: u64,
    zscore: Ewma,
    window: SortedWindow,
    adaptive_mean: f64,
    adaptive_dev: f64,
    drift: Cusum,
    /// The drift detector's sums after the sample being judged, for `learn` to keep.
    drift_next: Option<(f64, f64)>,
    seasonal: SeasonalBaseline,
}

impl SeriesDetector {
    pub fn new(config: AnomalyConfig) -> Self {
        Self {
            window: SortedWindow::new(config.window),
            config,
            seen: 0,
            zscore: Ewma::default(),
            adaptive_mean: 0.0,
            adaptive_dev: 0.0,
            drift: Cusum::default(),
            drift_next: None,
            seasonal: SeasonalBaseline::new(),
        }
    }

    /// Whether the series is still learning (nothing may fire yet).
    pub fn learning(&self) -> bool {
        self.seen < self.config.min_samples
    }

    /// Judges a sample against the history so far, then learns from it.
    pub fn observe(&mut self, timestamp_ms: i64, value: f64) -> Verdict {
        let c = &self.config;
        let local_ms = timestamp_ms + i64::from(c.utc_offset_minutes) * 60_000;
        let learning = self.learning() || !value.is_finite();
        let mut outputs = Evidence::new();
        if !learning {
            let k = c.sensitivity;
            let mean = self.zscore.mean;
            let band = k * floor_spread(self.zscore.sd(), mean);
            outputs.push(DetectorOutput {
                detector: Detector::ZScore,
                strength: (value - mean).abs() / band,
                expected: (mean - band, mean + band),
            });
            if self.window.is_full() {
                let median = self.window.quantile(0.5);
                let (wmean, wsd) = self.window.mean_sd();
                // 0.6745 makes the MAD of normal data equal its standard deviation. When over
                // half the window holds one value (a quantised or mostly idle series) the MAD
                // is 0 and says nothing: the window's standard deviation stands in.
                let mad = self.window.mad(median);
                let sigma = if mad > 0.0 { mad / 0.6745 } else { wsd };
                let band = k * floor_spread(sigma, median);
                outputs.push(DetectorOutput {
                    detector: Detector::Mad,
                    strength: (value - median).abs() / band,
                    expected: (median - band, median + band),
                });
                let (q1, q3) = (self.window.quantile(0.25), self.window.quantile(0.75));
                // Likewise an IQR of 0; 1.349 standard deviations is the IQR of normal data.
                let iqr = if q3 > q1 { q3 - q1 } else { 1.349 * wsd };
                let iqr = floor_spread(iqr, median);
                let (lo, hi) = (q1 - c.iqr_multiplier * iqr, q3 + c.iqr_multiplier * iqr);
                // Distance past a fence relative to the fence's own margin: 1 at the fence.
                let margin = c.iqr_multiplier * iqr;
                let strength = if value > hi {
                    1.0 + (value - hi) / margin
                } else if value < lo {
                    1.0 + (lo - value) / margin
                } else {
                    // Inside the fences: how far towards the fence on this side, 0..1.
                    let fence = if value >= median { hi } else { lo };
                    (value - median).abs() / (fence - median).abs().max(f64::MIN_POSITIVE)
                };
                outputs.push(DetectorOutput {
                    detector: Detector::Iqr,
                    strength,
                    expected: (lo, hi),
                });
                let band = k * floor_spread(wsd, wmean);
                outputs.push(DetectorOutput {
                    detector: Detector::MovingAverage,
                    strength: (value - wmean).abs() / band,
                    expected: (wmean - band, wmean + band),
                });
            }
            // Mean absolute deviation × 1.2533 estimates the standard deviation of normal data.
            let band = k * floor_spread(self.adaptive_dev * 1.2533, self.adaptive_mean);
            outputs.push(DetectorOutput {
                detector: Detector::AdaptiveThreshold,
                strength: (value - self.adaptive_mean).abs() / band,
                expected: (self.adaptive_mean - band, self.adaptive_mean + band),
            });
            let seasonal = self.seasonal.judge(local_ms, value, c);
            // Drift is measured from what is normal for this hour once the seasonal profile
            // knows it, so a daily pattern does not add up as drift; from the slow baseline
            // before that.
            let base = &self.drift.baseline;
            let (center, sd) = match seasonal {
                Some((_, center, sd)) => (center, sd),
                None => (base.mean, self.drift.sd()),
            };
            let z = (value - center) / sd;
            let high = (self.drift.high + z - CUSUM_SLACK).max(0.0);
            let low = (self.drift.low - z - CUSUM_SLACK).max(0.0);
            self.drift_next = Some((high, low));
            outputs.push(DetectorOutput {
                detector: Detector::Drift,
                strength: high.max(low) / c.drift_threshold,
                expected: (center - k * sd, center + k * sd),
            });
            if let Some((output, _, _)) = seasonal {
                outputs.push(output);
            }
        }
        let verdict = ensemble(value, learning, outputs, c);
        if value.is_finite() {
            self.learn(local_ms, value);
        }
        verdict
    }

    fn learn(&mut self, local_ms: i64, x: f64) {
        let c = &self.config;
        let warm = self.seen >= c.min_samples;
        if self.seen == 0 {
            self.adaptive_mean = x;
        }
        if warm {
            self.zscore
                .update_winsorised(x, c.ewma_alpha, c.sensitivity);
        } else {
            self.zscore.update(x, c.ewma_alpha);
        }
        self.window.push(x);
        let r = c.adaptation_rate;
        self.adaptive_dev = (1.0 - r) * self.adaptive_dev + r * (x - self.adaptive_mean).abs();
        self.adaptive_mean = (1.0 - r) * self.adaptive_mean + r * x;
        let drift = &mut self.drift;
        if let Some((high, low)) = self.drift_next.take() {
            (drift.high, drift.low) = (high, low);
            if drift.high.max(drift.low) >= 2.0 * c.drift_threshold {
                // Reported; start again so a persistent change is re-judged against a baseline
                // that has had time to move, rather than alarming forever.
                drift.high = 0.0;
                drift.low = 0.0;
            }
        }
        drift.learn_step(x, c.ewma_alpha);
        if warm {
            let sd = drift.sd();
            let clipped = x.clamp(
                drift.baseline.mean - c.sensitivity * sd,
                drift.baseline.mean + c.sensitivity * sd,
            );
            drift.baseline.update(clipped, c.drift_alpha);
        } else {
            // While learning, the baseline is fast, so it starts from the series' real level.
            drift.baseline.update(x, c.ewma_alpha);
        }
        self.seasonal.learn(local_ms, x);
        self.seen += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::anomaly::Severity;

    const STEP_MS: i64 = 10_000;
    const T0: i64 = 1_700_006_400_000; // a Wednesday, 00:00 UTC

    /// Standard normal noise, seeded. (Not the other engines' `test_support::normal`: these
    /// tests' thresholds were set on this sequence.)
    fn noise(rng: &mut fastrand::Rng) -> f64 {
        let (u1, u2) = (rng.f64().max(1e-12), rng.f64());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// An injected anomaly: it must be flagged within `delay` samples of `at`; flags from `at`
    /// to `at + settle` belong to it (a level shift keeps firing until the baselines move).
    struct Event {
        at: usize,
        delay: usize,
        settle: usize,
    }

    struct Outcome {
        detected: usize,
        events: usize,
        false_flags: usize,
        clean_samples: usize,
    }

    impl Outcome {
        fn recall(&self) -> f64 {
            self.detected as f64 / self.events as f64
        }
        fn false_rate(&self) -> f64 {
            self.false_flags as f64 / self.clean_samples as f64
        }
    }

    fn run(values: &[f64], events: &[Event]) -> Outcome {
        let mut detector = SeriesDetector::new(AnomalyConfig::default());
        let flags: Vec<bool> = values
            .iter()
            .enumerate()
            .map(|(i, v)| detector.observe(T0 + i as i64 * STEP_MS, *v).is_anomaly)
            .collect();
        let owned = |i: usize| events.iter().any(|e| i >= e.at && i <= e.at + e.settle);
        let detected = events
            .iter()
            .filter(|e| (e.at..=e.at + e.delay).any(|i| flags[i]))
            .count();
        let clean: Vec<usize> = (0..values.len()).filter(|i| !owned(*i)).collect();
        Outcome {
            detected,
            events: events.len(),
            false_flags: clean.iter().filter(|i| flags[**i]).count(),
            clean_samples: clean.len(),
        }
    }

    fn base(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n).map(|_| 50.0 + noise(&mut rng)).collect()
    }

    #[test]
    fn learning_until_min_samples_then_judging() {
        let mut d = SeriesDetector::new(AnomalyConfig::default());
        for i in 0..30 {
            let v = d.observe(T0 + i * STEP_MS, 1000.0 * (i % 2) as f64);
            assert!(v.learning && !v.is_anomaly && v.score == 0.0);
        }
        assert!(!d.learning());
    }

    #[test]
    fn spikes_and_dips_are_found_at_once_and_noise_stays_quiet() {
        let mut values = base(6000, 1);
        let mut events = Vec::new();
        for k in 0..20 {
            let at = 500 + k * 270;
            values[at] += if k % 2 == 0 { 8.0 } else { -8.0 };
            events.push(Event {
                at,
                delay: 0,
                settle: 1,
            });
        }
        let o = run(&values, &events);
        assert_eq!(o.recall(), 1.0, "every spike and dip flagged on its sample");
        assert!(o.false_rate() < 0.002, "false rate {}", o.false_rate());
    }

    #[test]
    fn level_shift_is_found_quickly_and_accepted_later() {
        let mut values = base(4000, 2);
        for v in &mut values[2000..] {
            *v += 6.0;
        }
        let events = [Event {
            at: 2000,
            delay: 2,
            settle: 800,
        }];
        let o = run(&values, &events);
        assert_eq!(o.recall(), 1.0);
        assert!(o.false_rate() < 0.002, "false rate {}", o.false_rate());
    }

    #[test]
    fn slow_drift_is_found_before_it_gets_far() {
        let mut values = base(4000, 3);
        // 0.02 sd per sample: each step is invisible, 4 sd after 200 samples.
        for (i, v) in values[2000..].iter_mut().enumerate() {
            *v += 0.02 * i as f64;
        }
        let events = [Event {
            at: 2000,
            delay: 200,
            settle: 2000,
        }];
        let o = run(&values, &events);
        assert_eq!(o.recall(), 1.0, "drift flagged within 200 samples");
        assert!(o.false_rate() < 0.002, "false rate {}", o.false_rate());
    }

    #[test]
    fn variance_change_is_found() {
        let mut values = base(4000, 4);
        let mut rng = fastrand::Rng::with_seed(44);
        for v in &mut values[2000..2300] {
            *v = 50.0 + 6.0 * noise(&mut rng);
        }
        let events = [Event {
            at: 2000,
            delay: 20,
            settle: 600,
        }];
        let o = run(&values, &events);
        assert_eq!(o.recall(), 1.0);
        assert!(o.false_rate() < 0.002, "false rate {}", o.false_rate());
    }

    /// A nightly backup: +10 sd from 02:00 to 03:00 every day. The first nights alarm (nothing
    /// has seen it), later nights do not; a backup that runs at 14:00 instead does.
    #[test]
    fn seasonal_baseline_quiets_the_nightly_backup_but_not_a_broken_pattern() {
        let per_hour = (3_600_000 / STEP_MS) as usize;
        let per_day = 24 * per_hour;
        let days = 8;
        let mut values = base(days * per_day, 5);
        let backup = |day: usize, hour: usize| day * per_day + hour * per_hour;
        for day in 0..days - 1 {
            for v in &mut values[backup(day, 2)..backup(day, 3)] {
                *v += 10.0;
            }
        }
        // The last day the backup runs at 14:00: broken seasonality.
        let last = days - 1;
        for v in &mut values[backup(last, 14)..backup(last, 15)] {
            *v += 10.0;
        }
        let mut detector = SeriesDetector::new(AnomalyConfig::default());
        let flags: Vec<bool> = values
            .iter()
            .enumerate()
            .map(|(i, v)| detector.observe(T0 + i as i64 * STEP_MS, *v).is_anomaly)
            .collect();
        let flagged = |from: usize, to: usize| flags[from..to].iter().filter(|f| **f).count();
        assert!(
            flagged(backup(0, 2), backup(0, 2) + 3) > 0,
            "first backup is news"
        );
        for day in 3..days - 1 {
            let window = backup(day, 2) - 30..backup(day, 3) + 30;
            assert_eq!(
                flagged(window.start, window.end),
                0,
                "day {day}: the usual backup must not alarm"
            );
        }
        assert!(
            flagged(backup(last, 14), backup(last, 14) + 3) > 0,
            "a backup at an unusual hour alarms"
        );
        let (from, to) = (backup(last, 4), backup(last, 13));
        let rate = flagged(from, to) as f64 / (to - from) as f64;
        assert!(
            rate < 0.002,
            "an ordinary day stays quiet: false rate {rate}"
        );
    }

    #[test]
    fn verdicts_carry_evidence_and_severity() {
        let mut d = SeriesDetector::new(AnomalyConfig::default());
        let values = base(200, 6);
        for (i, v) in values.iter().enumerate() {
            d.observe(T0 + i as i64 * STEP_MS, *v);
        }
        let v = d.observe(T0 + 200 * STEP_MS, 80.0);
        assert!(v.is_anomaly);
        assert_eq!(v.severity, Severity::Critical, "score {}", v.score);
        let fired = v.fired();
        assert!(fired.contains(&Detector::ZScore) && fired.contains(&Detector::Mad));
        let z = v
            .detectors
            .iter()
            .find(|d| d.detector == Detector::ZScore)
            .unwrap();
        assert!(z.expected.0 < 50.0 && 50.0 < z.expected.1 && z.expected.1 < 55.0);
        let calm = d.observe(T0 + 201 * STEP_MS, 50.1);
        assert!(!calm.is_anomaly && calm.severity == Severity::None && calm.fired().is_empty());
    }

    #[test]
    fn constant_and_quantised_series_do_not_alarm_on_their_own_values() {
        let mut d = SeriesDetector::new(AnomalyConfig::default());
        for i in 0..500 {
            let v = d.observe(T0 + i * STEP_MS, 4.0);
            assert!(!v.is_anomaly);
        }
        assert!(
            d.observe(T0 + 500 * STEP_MS, 5.0).is_anomaly,
            "a constant that moves"
        );
        let mut d = SeriesDetector::new(AnomalyConfig::default());
        let mut rng = fastrand::Rng::with_seed(7);
        let flags = (0..3000)
            .filter(|i| {
                let v = f64::from(rng.u8(0..3));
                d.observe(T0 + i * STEP_MS, v).is_anomaly
            })
            .count();
        assert!(flags < 6, "{flags} flags on values 0, 1, 2");
    }
}

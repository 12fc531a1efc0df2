//! [`SeriesDetector`]: the online state of one series, and how a sample is judged.
//!
//! Per sample, in O(1) time and about 1.7 KiB of state, all inline (the tuning,
//! [`AnomalyConfig`], is shared by every series and passed in):
//! 1. **Point evidence**: the distance of the value from what the models expect, in their
//!    standard deviations: from the recent level ([`Ewma`]) and, in time-of-day slots where it
//!    has predicted clearly better, from the usual value at this time and weekday
//!    ([`SeasonalProfile`]). The evidence is the *smaller* of the two: a value one model
//!    explains is not news. Deviations count only beyond half a resolution step (the smallest
//!    change the series has made), in spreads no smaller than a step, so counters that move by
//!    whole units and signals switching between two levels are not surprised by their own
//!    steps.
//! 2. **Drift evidence**: the CUSUM sum, against the seasonal expectation once it is mature, else
//!    against a slow baseline.
//! 3. Each evidence, on a log scale, goes through its own [`TailCalibrator`]; the sample's
//!    surprise is the larger of the two.
//! 4. The [`EpisodeGate`] makes one detection of each event.
//!
//! Models and calibrators learn from every sample. A calibrator that skipped incidents would
//! never learn that on some series such evidence is routine (blips on an idle disk every few
//! minutes); the cap on a learnt excess keeps a single incident from blinding it. Until
//! `min_samples` samples were seen the series is *learning*: scored 0, never anomalous.

use super::AnomalyConfig;
use super::calibration::TailCalibrator;
use super::ensemble::{
    Detector, DetectorOutput, EpisodeGate, Evidence, Gated, Verdict, score_of, surprise_of,
};
use super::models::{Cusum, Ewma, Moment, SeasonalProfile, floor_spread};

/// The tail of ln(1 + |z|) of Gaussian noise: its 98th percentile (|z| = 2.33) and mean excess
/// over it. Where the point calibrator starts.
const POINT_PRIOR: (f64, f64) = (1.2, 0.12);
/// Where the drift calibrator starts: white noise rarely takes the CUSUM past a fraction of a
/// standard deviation.
const DRIFT_PRIOR: (f64, f64) = (0.4, 0.3);

/// How much smaller, in recent standard deviations, a time-of-day slot's mean absolute error
/// must be than the recent level's before the slot may explain a sample away. A profile that
/// is only as good as the level would mask real change at random.
const SEASONAL_MARGIN: f64 = 0.25;

/// ln(1 + x), at once where x is 0: most samples' drift evidence (CUSUM sums under their
/// slack) and a steady series' point evidence are exactly 0, and the library call was a
/// quarter of the detectors' CPU.
fn ln_1p(x: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x.ln_1p() }
}

/// At least ln(1 + x) for x ≥ 0, without the logarithm: x(6 + x)/(6 + 4x), whose excess
/// over ln(1 + x) grows from 0 with derivative 4x³/((6 + 4x)²(1 + x)) and is about 5% at
/// x = 2.3 (the tail's usual threshold); widened by far more than the rounding of either.
/// NaN for an infinite or huge x (past 4.5e307, where 4x overflows): not surely under
/// anything.
fn ln_1p_at_most(x: f64) -> f64 {
    x * (6.0 + x) / (6.0 + 4.0 * x) * (1.0 + 1e-12)
}

/// The online state of one series: feed it every sample in time order.
#[derive(Debug, Clone)]
pub struct SeriesDetector {
    seen: u64,
    level: Ewma,
    drift: Cusum,
    seasonal: SeasonalProfile,
    point_tail: TailCalibrator,
    drift_tail: TailCalibrator,
    gate: EpisodeGate,
    /// The smallest change between consecutive values seen so far: the series' resolution.
    /// No spread is taken to be smaller, so a counter that moves by whole units, or a signal
    /// switching between two levels, is not "infinitely" surprised by its own steps.
    quantum: f64,
}

impl Default for SeriesDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl SeriesDetector {
    /// A series not seen yet. Its tuning is not kept here but passed with every sample: it is
    /// the same for every series, and one copy per series was 48 of its bytes.
    pub fn new() -> Self {
        Self {
            seen: 0,
            level: Ewma::default(),
            drift: Cusum::default(),
            seasonal: SeasonalProfile::new(),
            point_tail: TailCalibrator::new(POINT_PRIOR.0, POINT_PRIOR.1),
            drift_tail: TailCalibrator::new(DRIFT_PRIOR.0, DRIFT_PRIOR.1),
            gate: EpisodeGate::new(),
            quantum: f64::INFINITY,
        }
    }

    /// Whether the series is still learning (nothing may fire yet).
    pub fn learning(&self, config: &AnomalyConfig) -> bool {
        self.seen < config.min_samples
    }

    /// Judges a sample against the history so far, then learns from it.
    pub fn observe(&mut self, c: &AnomalyConfig, timestamp_ms: i64, value: f64) -> Verdict {
        let mut detectors = Evidence::new();
        let judged = self.judge(c, timestamp_ms, value, Some(&mut detectors));
        let learning = judged.is_none();
        let gated = judged.unwrap_or(Gated {
            score: 0.0,
            detection: false,
            episode: None,
        });
        Verdict {
            value,
            score: gated.score,
            is_anomaly: gated.detection,
            severity: gated
                .episode
                .map_or(super::Severity::None, |e| e.severity()),
            learning,
            episode: gated.episode,
            detectors,
        }
    }

    /// As [`observe`](Self::observe), to the same state, without the verdict: for the samples
    /// of a run whose verdicts no one reads (the live watch keeps a run's last). Building the
    /// detectors' outputs was a fifth of the detectors' CPU.
    pub fn observe_unread(&mut self, c: &AnomalyConfig, timestamp_ms: i64, value: f64) {
        self.judge(c, timestamp_ms, value, None);
    }

    /// Judges a sample and learns from it; the gate's verdict, `None` while learning (or for a
    /// value that is not finite). The ready detectors' outputs go to `detectors` when given;
    /// without them, the verdict's score is 0 where it could not have reached the threshold.
    /// Inlined into both callers, so the one that passes none does not compute them.
    #[inline(always)]
    fn judge(
        &mut self,
        c: &AnomalyConfig,
        timestamp_ms: i64,
        value: f64,
        mut detectors: Option<&mut Evidence>,
    ) -> Option<Gated> {
        let at = Moment::at(timestamp_ms + i64::from(c.utc_offset_minutes) * 60_000);
        if self.learning(c) || !value.is_finite() {
            if value.is_finite() {
                self.learn(c, at, value, None);
            }
            return None;
        }
        let reading = detectors.is_some();
        let k = c.sensitivity;
        let mut report = |output: DetectorOutput| {
            if let Some(detectors) = detectors.as_deref_mut() {
                detectors.push(output);
            }
        };

        // Until the series has moved at all its resolution is unknown: 0. A deviation counts
        // only beyond half a resolution step, the rounding of a quantised value (a step of one
        // unit on a counter, a two-level signal switching levels, is barely evidence), in
        // spreads no smaller than a step.
        let resolution = if self.quantum.is_finite() {
            self.quantum
        } else {
            0.0
        };
        let mean = self.level.mean;
        let sd = floor_spread(self.level.sd(), mean).max(resolution);
        let beyond = |diff: f64| diff.signum() * (diff.abs() - 0.5 * resolution).max(0.0);
        let mut point = beyond(value - mean).abs() / sd;
        report(DetectorOutput {
            detector: Detector::Level,
            strength: point / k,
            expected: (mean - k * sd, mean + k * sd),
        });
        // The time of day is used only in slots where it has predicted clearly better than the
        // recent level: elsewhere it adds noise and masks real change.
        let expectation = self.seasonal.expect(at, c.seasonal_min_days);
        if let Some(e) = expectation.filter(|e| e.gain > SEASONAL_MARGIN * sd) {
            let sd = e.sd.max(resolution);
            let z = beyond(value - e.value).abs() / sd;
            point = point.min(z);
            report(DetectorOutput {
                detector: Detector::Seasonal,
                strength: z / k,
                expected: (e.value - k * sd, e.value + k * sd),
            });
        }

        // Drift is measured from what is usual at this time once the profile knows it (useful
        // for the next sample or not: over hours it is the better reference), so a daily
        // pattern does not add up as drift; from the slow baseline before that.
        let (center, drift_sd) = match expectation {
            Some(e) => (e.value, e.sd.max(resolution)),
            None => (self.drift.baseline.mean, self.drift.sd().max(resolution)),
        };
        let sums = self.drift.peek(beyond(value - center) / drift_sd);
        let drift = sums.0.max(sums.1);

        // Unread, a sample whose two evidences are under their tails' thresholds needs neither
        // logarithm: the calibrators learn only that they were under, and under both the score
        // cannot reach the detection threshold (when that is above the score of a threshold's
        // surprise, as it is by default), so the gate learns only that this was no detection,
        // whatever the score. An upper bound of each logarithm tells most such samples. The
        // state they leave is the one the full judgement leaves; only the verdict, which no one
        // reads, is not built.
        if !reading
            && score_of(TailCalibrator::SURPRISE_AT_THRESHOLD) < c.score_threshold
            && self.point_tail.surely_under(ln_1p_at_most(point))
            && self.drift_tail.surely_under(ln_1p_at_most(drift))
        {
            let gated = self
                .gate
                .judge(timestamp_ms, 0.0, [false, false], c.score_threshold);
            self.point_tail.learn_under();
            self.drift_tail.learn_under();
            self.learn(c, at, value, Some(sums));
            return Some(gated);
        }

        // Evidence on a log scale: z-scores of real series span orders of magnitude (a blip on
        // an idle series is z = 10⁴), and the tail of log(1 + z) is close enough to exponential
        // for the calibrator to learn from a few hundred exceedances.
        let point = ln_1p(point);
        let drift = ln_1p(drift);
        let point_surprise = self.point_tail.surprise(point);
        let drift_surprise = self.drift_tail.surprise(drift);
        report(DetectorOutput {
            detector: Detector::Drift,
            strength: drift_surprise / surprise_of(c.score_threshold),
            expected: (center - k * drift_sd, center + k * drift_sd),
        });
        // The two evidences are far from independent (a jump moves both), so the larger
        // surprise is taken as it is, without a multiple-testing correction.
        let surprise = point_surprise.max(drift_surprise);
        let in_tail = [
            self.point_tail.exceeds(point),
            self.drift_tail.exceeds(drift),
        ];
        let gated = self
            .gate
            .judge(timestamp_ms, score_of(surprise), in_tail, c.score_threshold);
        // Every sample teaches the calibrators, incidents included: on a series where
        // such evidence keeps coming, it is normal. (The cap on a learnt excess keeps one
        // incident from blinding them.)
        self.point_tail.learn(point);
        self.drift_tail.learn(drift);
        // A reported drift starts its sums again, so a lasting change is judged afresh against
        // baselines that have had time to move.
        let sums = if gated.detection { (0.0, 0.0) } else { sums };
        self.learn(c, at, value, Some(sums));
        Some(gated)
    }

    fn learn(&mut self, c: &AnomalyConfig, at: Moment, x: f64, sums: Option<(f64, f64)>) {
        let warm = sums.is_some();
        // The drift detector keeps the previous sample (NaN before the first).
        let previous = self.drift.previous();
        let level_error = (x - self.level.mean).abs();
        // Not winsorised: after a spike real series are noisier for a while, and a level whose
        // spread widens with it does not flag the aftermath as new events.
        self.level.update(x, c.ewma_alpha);
        if let Some(sums) = sums {
            self.drift.set(sums);
        }
        self.drift
            .learn(x, c.ewma_alpha, c.drift_alpha, c.sensitivity, warm);
        self.seasonal.learn(at, x, level_error);
        let diff = (x - previous).abs();
        if diff > 1e-9 * x.abs().max(previous.abs()) && diff < self.quantum {
            self.quantum = diff;
        }
        self.seen += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::anomaly::{Severity, Verdict};

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

    /// Whether each sample of `values`, 10 s apart, was a detection.
    fn detections_of(values: &[f64]) -> Vec<bool> {
        let mut detector = SeriesDetector::new();
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                detector
                    .observe(&AnomalyConfig::default(), T0 + i as i64 * STEP_MS, *v)
                    .is_anomaly
            })
            .collect()
    }

    fn run(values: &[f64], events: &[Event]) -> Outcome {
        let flags = detections_of(values);
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

    /// `event` is flagged within its delay, and the rest of the series stays quiet.
    fn assert_found_once(values: &[f64], event: Event) {
        let at = event.at;
        let o = run(values, &[event]);
        assert_eq!(
            o.recall(),
            1.0,
            "the change at {at} was not flagged in time"
        );
        assert!(o.false_rate() < 0.002, "false rate {}", o.false_rate());
    }

    fn base(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n).map(|_| 50.0 + noise(&mut rng)).collect()
    }

    #[test]
    fn learning_until_min_samples_then_judging() {
        let mut d = SeriesDetector::new();
        for i in 0..30 {
            let v = d.observe(
                &AnomalyConfig::default(),
                T0 + i * STEP_MS,
                1000.0 * (i % 2) as f64,
            );
            assert!(v.learning && !v.is_anomaly && v.score == 0.0);
        }
        assert!(!d.learning(&AnomalyConfig::default()));
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
        assert_found_once(
            &values,
            Event {
                at: 2000,
                delay: 2,
                settle: 800,
            },
        );
    }

    #[test]
    fn slow_drift_is_found_before_it_gets_far() {
        let mut values = base(4000, 3);
        // 0.02 sd per sample: each step is invisible, 4 sd after 200 samples.
        for (i, v) in values[2000..].iter_mut().enumerate() {
            *v += 0.02 * i as f64;
        }
        assert_found_once(
            &values,
            Event {
                at: 2000,
                delay: 200,
                settle: 2000,
            },
        );
    }

    #[test]
    fn variance_change_is_found() {
        let mut values = base(4000, 4);
        let mut rng = fastrand::Rng::with_seed(44);
        for v in &mut values[2000..2300] {
            *v = 50.0 + 6.0 * noise(&mut rng);
        }
        assert_found_once(
            &values,
            Event {
                at: 2000,
                delay: 20,
                settle: 600,
            },
        );
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
        let flags = detections_of(&values);
        let flagged = |from: usize, to: usize| flags[from..to].iter().filter(|f| **f).count();
        assert!(
            flagged(backup(0, 2), backup(0, 2) + 3) > 0,
            "first backup is news"
        );
        // From the fourth night the backup is expected: its hour is no noisier than any other
        // (noise alone crosses the threshold about once in a thousand samples).
        let (mut flags_at_backup, mut samples) = (0, 0);
        for day in 3..days - 1 {
            let window = backup(day, 2) - 30..backup(day, 3) + 30;
            flags_at_backup += flagged(window.start, window.end);
            samples += window.len();
        }
        let rate = flags_at_backup as f64 / samples as f64;
        assert!(rate < 0.002, "the usual backup must not alarm: rate {rate}");
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
        let mut d = SeriesDetector::new();
        let values = base(200, 6);
        for (i, v) in values.iter().enumerate() {
            d.observe(&AnomalyConfig::default(), T0 + i as i64 * STEP_MS, *v);
        }
        let v = d.observe(&AnomalyConfig::default(), T0 + 200 * STEP_MS, 80.0);
        assert!(v.is_anomaly);
        assert_eq!(v.severity, Severity::Critical, "score {}", v.score);
        let fired = v.fired();
        assert!(fired.contains(&Detector::Level));
        let z = v
            .detectors
            .iter()
            .find(|d| d.detector == Detector::Level)
            .unwrap();
        assert!(z.expected.0 < 50.0 && 50.0 < z.expected.1 && z.expected.1 < 55.0);
        // One detection for the spike; the episode ends once the series is calm again.
        let calm: Vec<Verdict> = (201..231)
            .map(|i| d.observe(&AnomalyConfig::default(), T0 + i * STEP_MS, 50.1))
            .collect();
        assert!(calm.iter().all(|v| !v.is_anomaly && v.score < 0.5));
        let last = calm.last().unwrap();
        assert!(last.episode.is_none() && last.severity == Severity::None);
        assert!(last.fired().is_empty());
    }

    #[test]
    fn constant_and_quantised_series_do_not_alarm_on_their_own_values() {
        let mut d = SeriesDetector::new();
        for i in 0..500 {
            let v = d.observe(&AnomalyConfig::default(), T0 + i * STEP_MS, 4.0);
            assert!(!v.is_anomaly);
        }
        assert!(
            d.observe(&AnomalyConfig::default(), T0 + 500 * STEP_MS, 5.0)
                .is_anomaly,
            "a constant that moves"
        );
        let mut d = SeriesDetector::new();
        let mut rng = fastrand::Rng::with_seed(7);
        let flags = (0..3000)
            .filter(|i| {
                let v = f64::from(rng.u8(0..3));
                d.observe(&AnomalyConfig::default(), T0 + i * STEP_MS, v)
                    .is_anomaly
            })
            .count();
        assert!(flags < 6, "{flags} flags on values 0, 1, 2");
    }

    /// Detections of a fresh detector on `value(t)` sampled every `step_ms` for `days` days:
    /// (during the first two days, after them).
    fn detections(
        step_ms: i64,
        days: i64,
        value: impl Fn(i64, &mut fastrand::Rng) -> f64,
    ) -> (usize, usize) {
        let mut d = SeriesDetector::new();
        let mut rng = fastrand::Rng::with_seed(9);
        let (mut early, mut late) = (0, 0);
        for i in 0..days * DAY / step_ms {
            let t = T0 + i * step_ms;
            if d.observe(&AnomalyConfig::default(), t, value(t - T0, &mut rng))
                .is_anomaly
            {
                if t - T0 < 2 * DAY {
                    early += 1;
                } else {
                    late += 1;
                }
            }
        }
        (early, late)
    }

    const DAY: i64 = 86_400_000;

    /// Noise-free daily square and sine waves, at every common step, for 14 days: nothing in
    /// them is an anomaly, so after the first days nothing may be flagged.
    #[test]
    fn periodic_shapes_at_any_step_stay_quiet() {
        let square = |t: i64, _: &mut fastrand::Rng| {
            let minute = t.rem_euclid(DAY) / 60_000;
            if (8 * 60 + 5..19 * 60 + 35).contains(&minute) {
                100.0
            } else {
                10.0
            }
        };
        let sine = |t: i64, _: &mut fastrand::Rng| {
            50.0 + 40.0 * (2.0 * std::f64::consts::PI * t as f64 / DAY as f64).sin()
        };
        for step_ms in [10_000, 60_000, 300_000, 3_600_000] {
            let (early, late) = detections(step_ms, 14, square);
            assert!(
                early <= 2 && late == 0,
                "square at {step_ms} ms: {early} then {late}"
            );
            let (early, late) = detections(step_ms, 14, sine);
            assert!(
                early <= 2 && late == 0,
                "sine at {step_ms} ms: {early} then {late}"
            );
        }
    }

    /// A job at :15 every hour that lifts the series from 5 to 80 for one 1-minute sample, on
    /// top of noise: learnt within the first days, then quiet.
    #[test]
    fn an_hourly_cron_job_is_learnt() {
        let cron = |t: i64, rng: &mut fastrand::Rng| {
            let minute = t.rem_euclid(3_600_000) / 60_000;
            (if minute == 15 { 80.0 } else { 5.0 }) + noise(rng)
        };
        let (early, late) = detections(60_000, 14, cron);
        // A new job is news, hourly, until the calibrator has seen enough of it.
        assert!(early < 48, "{early} detections while learning");
        // Noise alone crosses the threshold about once in a thousand samples.
        assert!(late <= 12 * 1440 / 1000, "{late} detections after learning");
    }

    /// Integer series: a queue length that is mostly 3 and sometimes 4, and a count that moves
    /// by whole units. Their own steps are not anomalies.
    #[test]
    fn discrete_series_stay_quiet() {
        let stuck = |_: i64, rng: &mut fastrand::Rng| if rng.f64() < 0.01 { 4.0 } else { 3.0 };
        let (early, late) = detections(60_000, 7, stuck);
        assert!(early + late <= 2, "stuck: {early} then {late}");
        let counts = |_: i64, rng: &mut fastrand::Rng| f64::from(rng.u8(10..14));
        let (early, late) = detections(60_000, 7, counts);
        assert!(early + late <= 3, "counts: {early} then {late}");
    }

    /// The live watch reads only a run's last verdict: the samples before it go through
    /// `observe_unread`, which must leave the detector exactly where `observe` does, spikes,
    /// shifts, drifts and quiet stretches alike, at the shipped threshold (where it skips the
    /// logarithms of quiet samples) and at one too low for that.
    #[test]
    fn unread_samples_leave_the_state_that_read_ones_do() {
        let mut rng = fastrand::Rng::with_seed(19);
        let values: Vec<f64> = (0..40_000)
            .map(|i| {
                let day = (i as f64 * STEP_MS as f64 / 86_400_000.0 * std::f64::consts::TAU).sin();
                let shift = if (20_000..26_000).contains(&i) {
                    8.0
                } else {
                    0.0
                };
                let drift = if i > 30_000 {
                    (i - 30_000) as f64 * 0.002
                } else {
                    0.0
                };
                let spike = if i % 3_001 == 0 { 40.0 } else { 0.0 };
                50.0 + 10.0 * day + shift + drift + spike + noise(&mut rng)
            })
            .collect();
        // A series near 0 that sometimes sends the largest double (an "unset" sentinel): its
        // evidence is infinite, which the shortcut's bound must not take for quiet.
        let sentinels: Vec<f64> = (0..20_000)
            .map(|i| {
                if i % 2_501 == 2_500 {
                    f64::MAX
                } else {
                    1e-3 * noise(&mut rng)
                }
            })
            .collect();
        let cases = [
            (&values, AnomalyConfig::default().score_threshold),
            (&values, 0.2),
            (&sentinels, AnomalyConfig::default().score_threshold),
        ];
        for (values, threshold) in cases {
            let config = AnomalyConfig {
                score_threshold: threshold,
                ..AnomalyConfig::default()
            };
            let (mut read, mut unread) = (SeriesDetector::new(), SeriesDetector::new());
            let mut detections = 0;
            for (i, v) in values.iter().enumerate() {
                let t = T0 + i as i64 * STEP_MS;
                let verdict = read.observe(&config, t, *v);
                detections += usize::from(verdict.is_anomaly);
                if i % 50 == 49 {
                    // As text: a sentinel leaves NaN in the expected ranges, unequal to itself.
                    let unread = unread.observe(&config, t, *v);
                    assert_eq!(format!("{unread:?}"), format!("{verdict:?}"), "sample {i}");
                } else {
                    unread.observe_unread(&config, t, *v);
                }
            }
            assert!(detections >= 5, "{detections} detections at {threshold}");
            assert_eq!(format!("{read:?}"), format!("{unread:?}"));
        }
    }

    /// A thousand agents with a few hundred series each: the state must stay small, and it is
    /// all inline (no heap), so its size is the whole cost.
    #[test]
    fn state_fits_two_kibibytes() {
        assert!(std::mem::size_of::<SeriesDetector>() <= 2048);
    }
}

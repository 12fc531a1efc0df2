//! What a series is expected to do next, three ways, each O(1) per sample:
//!
//! - [`Ewma`]: the recent level and spread (exponentially weighted mean and variance);
//! - [`SeasonalProfile`]: the usual value at this time of day (96 quarter-hour slots, each with
//!   its own mean and spread) shifted by how this weekday usually differs. Slots are wall-clock
//!   phases, not sample counts, so the profile learns the same shape at 10 s, 1 min, 5 min or
//!   1 h steps; a slot's spread covers what happens inside it, so a sharp edge (a square wave,
//!   a cron job starting at :07) is expected in its slot rather than fought;
//! - [`Cusum`]: a two-sided CUSUM of standardised distance from a slow baseline, which adds up
//!   deviations too small to see one by one (a slow leak).

/// Exponentially weighted mean and variance (West's incremental form). The variance is NaN
/// until the first value: a flag would cost the struct 8 bytes of padding.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ewma {
    pub(super) mean: f64,
    var: f64,
}

impl Default for Ewma {
    fn default() -> Self {
        Self {
            mean: 0.0,
            var: f64::NAN,
        }
    }
}

impl Ewma {
    pub(super) fn update(&mut self, x: f64, alpha: f64) {
        if self.var.is_nan() {
            *self = Ewma { mean: x, var: 0.0 };
            return;
        }
        let diff = x - self.mean;
        let incr = alpha * diff;
        self.mean += incr;
        self.var = (1.0 - alpha) * (self.var + diff * incr);
    }

    pub(super) fn sd(&self) -> f64 {
        // `max` takes 0 over NaN: no spread before the first value.
        self.var.max(0.0).sqrt()
    }
}

/// A spread that is never zero: a constant series would otherwise make any change an infinite
/// deviation. The floor is a millionth of the level, or 1e-9 near zero.
pub(super) fn floor_spread(spread: f64, level: f64) -> f64 {
    spread.max(level.abs() * 1e-6).max(1e-9)
}

/// Two-sided CUSUM of standardised deviations from a slow baseline.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cusum {
    pub(super) baseline: Ewma,
    /// Mean absolute difference between consecutive samples: the noise level, blind to slow
    /// change. A spread measured around the slow baseline would grow with the very drift it
    /// should reveal.
    step: f64,
    /// The previous sample; NaN before the first.
    previous: f64,
    high: f64,
    low: f64,
}

impl Default for Cusum {
    fn default() -> Self {
        Self {
            baseline: Ewma::default(),
            step: 0.0,
            previous: f64::NAN,
            high: 0.0,
            low: 0.0,
        }
    }
}

/// Allowance per sample, in standard deviations: deviations smaller than this never add up.
/// 1.5 rather than the textbook 0.5: the slow baseline trails an ordinary daily ramp by about a
/// standard deviation, which must not accumulate into a "drift" before the seasonal profile
/// has learnt the day.
const CUSUM_SLACK: f64 = 1.5;

impl Cusum {
    /// The noise's standard deviation: E|x₍ₜ₎ − x₍ₜ₋₁₎| = 2σ/√π for independent noise.
    pub(super) fn sd(&self) -> f64 {
        floor_spread(self.step * 0.886_226_9, self.baseline.mean)
    }

    /// The sums after a sample `z` standard deviations from the expected value, without
    /// keeping them (the sample is judged before it is learnt).
    pub(super) fn peek(&self, z: f64) -> (f64, f64) {
        (
            (self.high + z - CUSUM_SLACK).max(0.0),
            (self.low - z - CUSUM_SLACK).max(0.0),
        )
    }

    /// The previous sample learnt; NaN before the first.
    pub(super) fn previous(&self) -> f64 {
        self.previous
    }

    pub(super) fn set(&mut self, (high, low): (f64, f64)) {
        (self.high, self.low) = (high, low);
    }

    /// Learns the noise level and the slow baseline from `x`; `clip` bands (in noise standard
    /// deviations) winsorise the baseline once `warm`.
    pub(super) fn learn(
        &mut self,
        x: f64,
        step_alpha: f64,
        base_alpha: f64,
        clip: f64,
        warm: bool,
    ) {
        if !self.previous.is_nan() {
            let diff = (x - self.previous).abs();
            // A spike is two large steps; counting them whole would blind the detector.
            let diff = if self.step > 0.0 {
                diff.min(4.0 * self.step)
            } else {
                diff
            };
            self.step += step_alpha * (diff - self.step);
        }
        self.previous = x;
        if warm {
            let sd = self.sd();
            let mean = self.baseline.mean;
            self.baseline
                .update(x.clamp(mean - clip * sd, mean + clip * sd), base_alpha);
        } else {
            // While learning, the baseline is fast, so it starts from the series' real level.
            self.baseline.update(x, step_alpha);
        }
    }
}

const DAY_MS: i64 = 86_400_000;
const SLOT_MS: i64 = 15 * 60_000;
const SLOTS: usize = (DAY_MS / SLOT_MS) as usize;

/// Quarter-hours of the day (or weekdays), column by column: each slot's mean and variance in
/// f32 (a profile is a coarse expectation; 96 of them must fit the per-series budget), how much
/// closer its mean has come to the samples than the recent level did (`gain`: mean absolute
/// error of the level minus the slot's, positive where the time of day explains the series
/// better than its recent past), how many samples it has learnt from and on how many separate
/// visits (days, or weeks for weekdays). Columns rather than one struct per slot: 15 bytes a
/// slot, not 16 with the struct's padding.
#[derive(Debug, Clone)]
struct Slots<const N: usize> {
    mean: [f32; N],
    var: [f32; N],
    gain: [f32; N],
    samples: [u16; N],
    visits: [u8; N],
}

impl<const N: usize> Slots<N> {
    fn new() -> Self {
        Self {
            mean: [0.0; N],
            var: [0.0; N],
            gain: [0.0; N],
            samples: [0; N],
            visits: [0; N],
        }
    }

    /// Slot `i` learns `x` with weight at least `alpha`: a plain running mean for the first
    /// samples, so a slot starts from its real average rather than its first value.
    fn learn(&mut self, i: usize, x: f64, alpha: f64) {
        let n = f64::from(self.samples[i]) + 1.0;
        let a = alpha.max(1.0 / n);
        let (mean, var) = (f64::from(self.mean[i]), f64::from(self.var[i]));
        let diff = x - mean;
        let incr = a * diff;
        self.mean[i] = (mean + incr) as f32;
        self.var[i] = ((1.0 - a) * (var + diff * incr)) as f32;
        self.samples[i] = self.samples[i].saturating_add(1);
    }

    fn enter(&mut self, i: usize) {
        self.visits[i] = self.visits[i].saturating_add(1);
    }
}

/// A sample's local time and where it falls in the profile: worked out once per sample, for
/// both the expectation and the learning.
#[derive(Debug, Clone, Copy)]
pub(super) struct Moment {
    local_ms: i64,
    /// Quarter-hour of the day.
    slot: usize,
    /// Day of the week, 0 = Monday.
    weekday: usize,
}

impl Moment {
    pub(super) fn at(local_ms: i64) -> Self {
        let day = local_ms.div_euclid(DAY_MS);
        Self {
            local_ms,
            slot: (local_ms.rem_euclid(DAY_MS) / SLOT_MS) as usize,
            // 1970-01-01 was a Thursday.
            weekday: (day + 3).rem_euclid(7) as usize,
        }
    }
}

/// What the seasonal profile expects of a sample: value and spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Expectation {
    pub(super) value: f64,
    pub(super) sd: f64,
    /// How much closer to the samples this slot's mean has come than the recent level, in
    /// mean absolute error: positive where the time of day predicts better.
    pub(super) gain: f64,
}

/// The daily shape of a series and its weekday offsets, by wall-clock phase.
#[derive(Debug, Clone)]
pub(super) struct SeasonalProfile {
    slots: Slots<SLOTS>,
    /// Mean difference of each weekday (0 = Monday) from the daily shape.
    weekdays: Slots<7>,
    /// Slot and weekday of the previous sample, to count visits.
    last: Option<(u8, u8)>,
    /// Typical interval between samples, ms (an exponentially weighted mean).
    step_ms: f64,
    /// Local time of the previous sample; `i64::MIN` before the first.
    last_ms: i64,
}

impl SeasonalProfile {
    pub(super) fn new() -> Self {
        Self {
            slots: Slots::new(),
            weekdays: Slots::new(),
            last: None,
            step_ms: 0.0,
            last_ms: i64::MIN,
        }
    }

    /// The expectation for a sample at `at`, once its slot has been seen on `min_days` days
    /// (and its weekday on two weeks, for the weekday offset).
    pub(super) fn expect(&self, at: Moment, min_days: u32) -> Option<Expectation> {
        let (slot, weekday) = (at.slot, at.weekday);
        let s = &self.slots;
        if u32::from(s.visits[slot]) < min_days.max(1) {
            return None;
        }
        let mut value = f64::from(s.mean[slot]);
        let w = &self.weekdays;
        if w.visits[weekday] >= 2 {
            value += f64::from(w.mean[weekday]);
        }
        let sd = floor_spread(f64::from(s.var[slot]).max(0.0).sqrt(), value);
        Some(Expectation {
            value,
            sd,
            gain: f64::from(s.gain[slot]),
        })
    }

    /// Learns `x` at `at`.
    pub(super) fn learn(&mut self, at: Moment, x: f64, level_error: f64) {
        let local_ms = at.local_ms;
        if self.last_ms != i64::MIN {
            let gap = (local_ms - self.last_ms) as f64;
            if gap > 0.0 {
                self.step_ms = if self.step_ms == 0.0 {
                    gap
                } else {
                    self.step_ms + 0.05 * (gap - self.step_ms)
                };
            }
        }
        self.last_ms = local_ms;
        let (slot, weekday) = (at.slot, at.weekday);
        let here = (slot as u8, weekday as u8);
        if self.last.map(|(s, _)| s) != Some(here.0) {
            self.slots.enter(slot);
        }
        if self.last.map(|(_, w)| w) != Some(here.1) {
            self.weekdays.enter(weekday);
        }
        self.last = Some(here);
        // A slot remembers about its last three days, whatever the step: ~3 visits' worth of
        // samples.
        let per_visit = (SLOT_MS as f64 / self.step_ms.max(1.0)).max(1.0);
        let slot_alpha = 1.0 / (3.0 * per_visit);
        let before = f64::from(self.slots.mean[slot]);
        if self.slots.samples[slot] > 0 {
            let gain = level_error - (x - before).abs();
            let g = &mut self.slots.gain[slot];
            *g += (slot_alpha.max(0.1 / per_visit) * (gain - f64::from(*g))) as f32;
        }
        self.slots.learn(slot, x, slot_alpha);
        if self.slots.visits[slot] >= 2 {
            // The weekday offset is this weekday's mean distance from the daily shape, over
            // about its last two occurrences.
            let per_day = (DAY_MS as f64 / self.step_ms.max(1.0)).max(1.0);
            self.weekdays
                .learn(weekday, x - before, 1.0 / (2.0 * per_day));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_square_wave_at_any_step() {
        for step_ms in [10_000, 60_000, 300_000, 3_600_000] {
            let mut profile = SeasonalProfile::new();
            // High from 08:05 to 19:35 every day.
            let value = |t: i64| {
                let minute = t.rem_euclid(DAY_MS) / 60_000;
                if (8 * 60 + 5..19 * 60 + 35).contains(&minute) {
                    100.0
                } else {
                    10.0
                }
            };
            let days = 5;
            for i in 0..days * DAY_MS / step_ms {
                profile.learn(Moment::at(i * step_ms), value(i * step_ms), 1.0);
            }
            let day = days * DAY_MS;
            for t in (day..day + DAY_MS).step_by(step_ms as usize) {
                let e = profile.expect(Moment::at(t), 2).expect("mature");
                let z = (value(t) - e.value).abs() / e.sd;
                assert!(z < 2.0, "step {step_ms}: z {z} at {t}");
            }
        }
    }
}

//! One series' data-quality bookkeeping, updated per stored sample at a few compares' cost
//! (this runs on the ingest path). Pure.
//!
//! Counts are kept per half of the window (by sample time for completeness, by arrival for the
//! rest) and read as the last two halves, so a score always covers between one half and one
//! whole window and old trouble ages out.

/// What a series' values may physically be, from its name's unit suffix (Prometheus naming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueClass {
    /// `_ratio`: 0..1.
    Ratio,
    /// `_percent`: 0..100.
    Percent,
    /// `_bytes`, `_total`, `_count`, `_bucket`: never negative.
    NonNegative,
    /// `_celsius`: a temperature a machine can have, -60..150 °C.
    Celsius,
    /// `up` and `*_up`: 0 or 1.
    UpDown,
    Any,
}

impl ValueClass {
    pub fn of(name: &str) -> Self {
        if name.ends_with("_ratio") {
            ValueClass::Ratio
        } else if name.ends_with("_percent") {
            ValueClass::Percent
        } else if name.ends_with("_celsius") {
            ValueClass::Celsius
        } else if name == "up" || name.ends_with("_up") {
            ValueClass::UpDown
        } else if ["_bytes", "_total", "_count", "_bucket"]
            .iter()
            .any(|s| name.ends_with(s))
        {
            ValueClass::NonNegative
        } else {
            ValueClass::Any
        }
    }

    /// Whether `value` can be real for this class.
    pub fn possible(self, value: f64) -> bool {
        const SLACK: f64 = 1e-9;
        match self {
            ValueClass::Ratio => (-SLACK..=1.0 + SLACK).contains(&value),
            ValueClass::Percent => (-SLACK..=100.0 + SLACK).contains(&value),
            ValueClass::NonNegative => value >= 0.0,
            ValueClass::Celsius => (-60.0..=150.0).contains(&value),
            ValueClass::UpDown => value == 0.0 || value == 1.0,
            ValueClass::Any => true,
        }
    }

    /// What the class allows, for a check's message.
    pub fn rule(self) -> &'static str {
        match self {
            ValueClass::Ratio => "a ratio outside [0, 1]",
            ValueClass::Percent => "a percentage outside [0, 100]",
            ValueClass::NonNegative => "a negative count or byte size",
            ValueClass::Celsius => "a temperature outside -60..150 °C",
            ValueClass::UpDown => "an up value other than 0 or 1",
            ValueClass::Any => "",
        }
    }
}

pub use crate::ingest::BACKFILL_AFTER_MS;

/// A sample is on time when it arrives within its interval plus this.
pub const ON_TIME_SLACK_MS: i64 = 2_000;

/// When a batch arrived (collector clock) and which half-window that is, worked out once per
/// batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub ms: i64,
    pub half: i64,
}

impl Arrival {
    pub fn at(ms: i64, half_ms: i64) -> Self {
        Self {
            ms,
            half: ms.div_euclid(half_ms.max(1)),
        }
    }
}

/// Gaps remembered per series.
const GAPS_KEPT: usize = 4;

/// What the checks found over a stretch of samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Samples by sample time (completeness).
    pub received: u32,
    /// Samples by arrival time (the other checks).
    pub judged: u32,
    pub backwards: u32,
    pub duplicates: u32,
    pub impossible: u32,
    pub on_time: u32,
    pub late: u32,
    pub backfill: u32,
}

impl Counts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Counts) {
        self.received += other.received;
        self.add_judged(other);
    }

    fn add_judged(&mut self, other: &Counts) {
        self.judged = self.judged.saturating_add(other.judged);
        self.backwards += other.backwards;
        self.duplicates += other.duplicates;
        self.impossible += other.impossible;
        self.on_time += other.on_time;
        self.late += other.late;
        self.backfill += other.backfill;
    }
}

/// A half-window's counts, keyed by which half it is.
#[derive(Debug, Clone, Copy, Default)]
struct Half {
    index: i64,
    counts: Counts,
}

/// The current and previous half of `halves` for `index`, rotating the older one out; `None`
/// for an index older than both.
fn slot(halves: &mut [Half; 2], index: i64) -> Option<&mut Counts> {
    let [current, previous] = halves;
    if index > current.index {
        *previous = if index == current.index + 1 {
            *current
        } else {
            Half::default()
        };
        *current = Half {
            index,
            counts: Counts::default(),
        };
        Some(&mut current.counts)
    } else if index == current.index {
        Some(&mut current.counts)
    } else if index == previous.index {
        Some(&mut previous.counts)
    } else {
        None
    }
}

/// A run of missing samples: none strictly between `after_ms` and `before_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub after_ms: i64,
    pub before_ms: i64,
    pub missing: u32,
}

#[derive(Debug, Clone)]
pub struct SeriesQuality {
    pub class: ValueClass,
    pub counter: bool,
    /// Whether the series' labels fit their schema (checked once, when it is first seen).
    pub labels_valid: bool,
    /// The shortest step seen between consecutive samples: the series' interval.
    pub interval_ms: i64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub last_value: f64,
    /// Current and previous half-window by sample time (`received` only).
    by_sample: [Half; 2],
    /// Current and previous half-window by arrival (the other counts).
    by_arrival: [Half; 2],
    /// The newest gaps, newest last.
    pub gaps: Vec<Gap>,
}

/// Steps shorter than this are not an interval (two samples of one scrape).
const MIN_INTERVAL_MS: i64 = 100;

impl SeriesQuality {
    pub fn new(class: ValueClass, counter: bool, labels_valid: bool) -> Self {
        Self {
            class,
            counter,
            labels_valid,
            interval_ms: 0,
            first_ms: i64::MIN,
            last_ms: i64::MIN,
            last_value: f64::NAN,
            by_sample: [Half::default(); 2],
            by_arrival: [Half::default(); 2],
            gaps: Vec::new(),
        }
    }

    /// Records one stored sample that arrived at `arrival`.
    #[cfg(test)]
    pub fn observe(&mut self, timestamp_ms: i64, value: f64, arrival: Arrival, half_ms: i64) {
        self.observe_run(std::iter::once((timestamp_ms, value)), arrival, half_ms);
    }

    /// Records a run of stored samples of this series, (timestamp, value) in stored order,
    /// that arrived together at `arrival`. The counts are kept in locals and added to their
    /// half-windows once per run: this runs on the ingest path.
    pub fn observe_run(
        &mut self,
        samples: impl Iterator<Item = (i64, f64)>,
        arrival: Arrival,
        half_ms: i64,
    ) {
        let half_ms = half_ms.max(1);
        let mut judged = Counts::default();
        // Samples by sample-time half: most runs fall in one, found without a division.
        let (mut half, mut received) = (self.by_sample[0].index, 0u32);
        let on_time_within = self.interval_ms.max(1_000) + ON_TIME_SLACK_MS;
        for (timestamp_ms, value) in samples {
            if !(half * half_ms..(half + 1) * half_ms).contains(&timestamp_ms) {
                self.add_received(half, received);
                (half, received) = (timestamp_ms.div_euclid(half_ms), 0);
            }
            received += 1;
            judged.judged += 1;
            if !self.class.possible(value) {
                judged.impossible += 1;
            }
            let lag = arrival.ms - timestamp_ms;
            if lag > BACKFILL_AFTER_MS {
                judged.backfill += 1;
            } else if lag <= on_time_within {
                judged.on_time += 1;
            } else {
                judged.late += 1;
            }
            if self.last_ms == i64::MIN {
                self.first_ms = timestamp_ms;
            } else if timestamp_ms == self.last_ms {
                if value.to_bits() != self.last_value.to_bits() {
                    judged.duplicates += 1;
                }
            } else if timestamp_ms > self.last_ms {
                self.step(timestamp_ms, value, &mut judged);
            }
            if timestamp_ms >= self.last_ms {
                self.last_ms = timestamp_ms;
                self.last_value = value;
            }
        }
        self.add_received(half, received);
        // Arrival times only go back with the collector's clock: such counts are dropped.
        if let Some(counts) = slot(&mut self.by_arrival, arrival.half) {
            counts.add_judged(&judged);
        }
    }

    /// Reads a field in each part of the state a run's update reads, for the tracker to bring
    /// them into the cache ahead of it. The value means nothing.
    pub fn read_ahead(&self) -> i64 {
        let halves = [self.by_sample, self.by_arrival];
        halves.iter().flatten().fold(
            self.last_ms ^ self.first_ms ^ self.interval_ms ^ self.class as i64,
            |acc, half| acc ^ half.index,
        )
    }

    fn add_received(&mut self, half: i64, received: u32) {
        if received > 0
            && let Some(counts) = slot(&mut self.by_sample, half)
        {
            counts.received = counts.received.saturating_add(received);
        }
    }

    /// A sample after the last one: counters going backwards, gaps, the interval.
    fn step(&mut self, timestamp_ms: i64, value: f64, judged: &mut Counts) {
        let step = timestamp_ms - self.last_ms;
        if self.counter && value < self.last_value && value > self.last_value * 0.1 {
            // A reset drops to (near) zero; a counter that loses a little went backwards.
            judged.backwards += 1;
        }
        if self.interval_ms > 0 && step * 2 > self.interval_ms * 3 {
            let missing = (step / self.interval_ms - 1).clamp(0, i64::from(u32::MAX)) as u32;
            if missing > 0 {
                if self.gaps.len() == GAPS_KEPT {
                    self.gaps.remove(0);
                }
                self.gaps.push(Gap {
                    after_ms: self.last_ms,
                    before_ms: timestamp_ms,
                    missing,
                });
            }
        }
        if step >= MIN_INTERVAL_MS && (self.interval_ms == 0 || step < self.interval_ms) {
            self.interval_ms = step;
        }
    }

    /// The counts of the last two halves at `now_ms`, summed.
    pub fn window(&self, now_ms: i64, half_ms: i64) -> Counts {
        let half = now_ms.div_euclid(half_ms.max(1));
        let mut out = Counts::default();
        for h in self.by_sample.iter().filter(|h| h.index >= half - 1) {
            out.received += h.counts.received;
        }
        for h in self.by_arrival.iter().filter(|h| h.index >= half - 1) {
            out.add_judged(&h.counts);
        }
        out
    }

    /// Samples expected in the window ending at `until_ms` (the last two halves, from the
    /// series' first sample at the earliest): none until the interval is known.
    pub fn expected(&self, until_ms: i64, now_ms: i64, half_ms: i64) -> f64 {
        if self.interval_ms <= 0 || self.first_ms == i64::MIN {
            return 0.0;
        }
        let window_start = (now_ms.div_euclid(half_ms.max(1)) - 1) * half_ms;
        let from = window_start.max(self.first_ms);
        if until_ms < from {
            return 0.0;
        }
        ((until_ms - from) / self.interval_ms + 1) as f64
    }
}

/// Label values that break their label's meaning: `le` and `quantile` must be numbers (a
/// quantile in 0..1), `cpu` a CPU number. The schema histogram and summary consumers and
/// node_exporter's dashboards rely on.
pub fn labels_valid<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    labels.into_iter().all(|(name, value)| match name {
        "le" => value == "+Inf" || value.parse::<f64>().is_ok_and(|v| !v.is_nan()),
        "quantile" => value.parse::<f64>().is_ok_and(|q| (0.0..=1.0).contains(&q)),
        "cpu" => value.is_empty() || value.bytes().all(|b| b.is_ascii_digit()),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HALF: i64 = 30 * 60_000;

    #[test]
    fn classes_come_from_unit_suffixes() {
        assert_eq!(ValueClass::of("node_cpu_usage_ratio"), ValueClass::Ratio);
        assert!(!ValueClass::Ratio.possible(1.2));
        assert!(ValueClass::Ratio.possible(1.0));
        assert!(!ValueClass::of("node_network_receive_bytes_total").possible(-1.0));
        assert!(!ValueClass::of("node_hwmon_temp_celsius").possible(400.0));
        assert!(!ValueClass::of("redis_up").possible(0.5));
        assert!(ValueClass::of("node_timex_offset_seconds").possible(-3.0));
    }

    #[test]
    fn gaps_duplicates_and_backwards_counters_are_counted() {
        let mut s = SeriesQuality::new(ValueClass::NonNegative, true, true);
        let t0 = 1_000 * HALF;
        for (i, value) in [10.0, 20.0, 30.0, 25.0, 26.0, 1.0].into_iter().enumerate() {
            let ts = t0 + i as i64 * 10_000;
            s.observe(ts, value, Arrival::at(ts + 100, HALF), HALF);
        }
        assert_eq!(s.interval_ms, 10_000);
        // 30 → 25 went backwards; 26 → 1 is a reset.
        let w = s.window(t0 + 60_000, HALF);
        assert_eq!((w.received, w.backwards, w.on_time), (6, 1, 6));
        // A duplicate with another value, then a gap of three missing samples.
        s.observe(t0 + 50_000, 2.0, Arrival::at(t0 + 50_100, HALF), HALF);
        s.observe(t0 + 90_000, 3.0, Arrival::at(t0 + 90_100, HALF), HALF);
        let w = s.window(t0 + 90_000, HALF);
        assert_eq!(w.duplicates, 1);
        assert_eq!(
            s.gaps,
            vec![Gap {
                after_ms: t0 + 50_000,
                before_ms: t0 + 90_000,
                missing: 3
            }]
        );
        // 10 expected from t0 to t0+90 s, 8 received (one of them the duplicate).
        assert_eq!(s.expected(t0 + 90_000, t0 + 90_000, HALF), 10.0);
    }

    #[test]
    fn lateness_and_backfill_are_told_apart() {
        let mut s = SeriesQuality::new(ValueClass::Any, false, true);
        let t0 = 1_000 * HALF;
        s.observe(t0, 1.0, Arrival::at(t0 + 500, HALF), HALF);
        s.observe(t0 + 10_000, 1.0, Arrival::at(t0 + 10_500, HALF), HALF);
        // Arrives 40 s late (a short outage), then 10 min late (the spool after a long one).
        s.observe(t0 + 20_000, 1.0, Arrival::at(t0 + 60_000, HALF), HALF);
        s.observe(
            t0 + 30_000,
            1.0,
            Arrival::at(t0 + 30_000 + 600_000, HALF),
            HALF,
        );
        let w = s.window(t0 + 630_000, HALF);
        assert_eq!((w.on_time, w.late, w.backfill), (2, 1, 1));
    }

    #[test]
    fn old_halves_age_out() {
        let mut s = SeriesQuality::new(ValueClass::Ratio, false, true);
        let t0 = 1_000 * HALF;
        s.observe(t0, 7.0, Arrival::at(t0, HALF), HALF);
        assert_eq!(s.window(t0, HALF).impossible, 1);
        assert_eq!(
            s.window(t0 + HALF, HALF).impossible,
            1,
            "still in the window"
        );
        assert_eq!(s.window(t0 + 2 * HALF, HALF).impossible, 0, "aged out");
        assert_eq!(s.window(t0 + 2 * HALF, HALF).received, 0);
    }

    #[test]
    fn label_schema() {
        assert!(labels_valid([("le", "0.5"), ("cpu", "3")].into_iter()));
        assert!(labels_valid([("le", "+Inf")].into_iter()));
        assert!(!labels_valid([("le", "fast")].into_iter()));
        assert!(!labels_valid([("quantile", "99")].into_iter()));
        assert!(!labels_valid([("cpu", "cpu3")].into_iter()));
    }
}

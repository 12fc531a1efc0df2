//! Reading an export in bounded windows.
//!
//! A series' 1 h rollups count its samples per hour; summing them until a budget is reached
//! cuts the export's range into windows of about that many samples (or rollup buckets), so a
//! read never holds more than a window whatever the range, and an unbounded range costs no more
//! than the hours that hold data. The windows always cover the whole range, so a sample the
//! rollups do not count yet (one arrived late into a finished hour) is still read; only the
//! budget is off for it.
//!
//! With a step, windows start at multiples of the step, so no step is split between two reads.

use super::Point;
use crate::storage::{Aggregate, Resolution, SeriesId, StoreError, Tsdb};

const HOUR_MS: i64 = 3_600_000;

/// Where values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Raw,
    Rollup(Resolution),
}

/// Reads one export's range of series, window by window.
pub struct Reader<'a> {
    tsdb: &'a Tsdb,
    start: i64,
    end: i64,
    step: Option<i64>,
    origin: Origin,
}

impl<'a> Reader<'a> {
    /// Reads `[start, end]`, aggregated to `step` when given (the range widened to whole steps):
    /// from the coarsest rollup whose buckets divide the step, else from raw samples.
    pub fn new(tsdb: &'a Tsdb, start: i64, end: i64, step: Option<i64>) -> Self {
        let origin = step
            .and_then(|step| {
                Resolution::ALL
                    .iter()
                    .rev()
                    .find(|r| step >= r.millis() && step % r.millis() == 0)
            })
            .map_or(Origin::Raw, |r| Origin::Rollup(*r));
        // Whole steps: a rollup bucket is read whole, so raw samples are read the same way.
        let (start, end) = match step {
            Some(step) => (
                start.div_euclid(step).saturating_mul(step),
                align_up(end.saturating_add(1), step).map_or(end, |after| after - 1),
            ),
            None => (start, end),
        };
        Self {
            tsdb,
            start,
            end,
            step,
            origin,
        }
    }

    /// How much each hour of `series` in the range costs to read: its samples, or its rollup
    /// buckets when reading rollups. Hours in time order; those without data left out.
    pub fn weights(&self, series: SeriesId) -> Result<Vec<(i64, u64)>, StoreError> {
        if self.start > self.end {
            return Ok(Vec::new());
        }
        let hours = self.tsdb.read_rollup(
            series,
            Resolution::OneHour,
            Resolution::OneHour.bucket(self.start),
            self.end,
        )?;
        let per_hour = match self.origin {
            Origin::Raw => u64::MAX,
            Origin::Rollup(res) => (HOUR_MS / res.millis()) as u64,
        };
        Ok(hours
            .into_iter()
            .map(|(hour, agg)| (hour, agg.count.min(per_hour)))
            .collect())
    }

    /// Windows covering the whole range, each of about `budget` of `weights` (see the module
    /// header), in time order; none for an empty range.
    pub fn plan(&self, weights: &[(i64, u64)], budget: u64) -> Vec<(i64, i64)> {
        plan(
            self.start,
            self.end,
            self.step.unwrap_or(1),
            weights,
            budget,
        )
    }

    /// The points of `series` in `window` (one of [`Reader::plan`]'s), in time order.
    pub fn read(&self, series: SeriesId, (from, to): (i64, i64)) -> Result<Vec<Point>, StoreError> {
        match (self.origin, self.step) {
            (Origin::Raw, None) => Ok(self
                .tsdb
                .read_raw(series, from, to)?
                .into_iter()
                .map(|(ts, v)| Point::sample(ts, v))
                .collect()),
            (Origin::Raw, Some(step)) => {
                let samples = self.tsdb.read_raw(series, from, to)?;
                Ok(steps(
                    step,
                    samples
                        .into_iter()
                        .map(|(ts, v)| (ts, Aggregate::new(ts, v, 0.0))),
                ))
            }
            (Origin::Rollup(res), step) => {
                let buckets = self.tsdb.read_rollup(series, res, from, to)?;
                Ok(steps(step.unwrap_or(res.millis()), buckets.into_iter()))
            }
        }
    }
}

/// Cuts `[start, end]` where the running sum of `weights` (hour start, weight) reaches
/// `budget`, at the next multiple of `align` after that hour.
fn plan(start: i64, end: i64, align: i64, weights: &[(i64, u64)], budget: u64) -> Vec<(i64, i64)> {
    if start > end {
        return Vec::new();
    }
    let mut windows = Vec::new();
    let mut from = start;
    let mut sum = 0u64;
    for &(hour, weight) in weights {
        let hour_end = hour.saturating_add(HOUR_MS);
        if hour_end <= from {
            continue; // counted in the window just cut
        }
        sum = sum.saturating_add(weight);
        if sum < budget {
            continue;
        }
        let Some(cut) = align_up(hour_end, align) else {
            break;
        };
        if cut > from && cut <= end {
            windows.push((from, cut - 1));
            from = cut;
            sum = 0;
        }
    }
    windows.push((from, end));
    windows
}

/// The first multiple of `align` at or after `t`; `None` past `i64::MAX`.
fn align_up(t: i64, align: i64) -> Option<i64> {
    let down = t.div_euclid(align).checked_mul(align)?;
    if down == t {
        Some(t)
    } else {
        down.checked_add(align)
    }
}

/// Aggregates time-ordered `(time, aggregate)` into steps starting at multiples of `step`: each
/// step's average with its minimum and maximum.
fn steps(step: i64, items: impl Iterator<Item = (i64, Aggregate)>) -> Vec<Point> {
    let mut out = Vec::new();
    let mut open: Option<(i64, Aggregate)> = None;
    let close = |(start, agg): (i64, Aggregate)| Point {
        ts: start,
        value: agg.avg(),
        min: agg.min,
        max: agg.max,
    };
    for (ts, agg) in items {
        let start = ts.div_euclid(step).saturating_mul(step);
        match &mut open {
            Some((at, acc)) if *at == start => acc.merge(&agg),
            _ => {
                if let Some(done) = open.replace((start, agg)) {
                    out.push(close(done));
                }
            }
        }
    }
    out.extend(open.map(close));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_windows_of_about_the_budget_covering_the_range() {
        let h = HOUR_MS;
        let weights = [(0, 40), (h, 40), (2 * h, 40), (10 * h, 100), (11 * h, 1)];
        assert_eq!(
            plan(-5, 20 * h, 1, &weights, 80),
            vec![(-5, 2 * h - 1), (2 * h, 11 * h - 1), (11 * h, 20 * h)]
        );
        // Aligned to a 90 min step: cuts move to the next multiple of it.
        let step = 90 * 60_000;
        assert_eq!(
            plan(0, 20 * h, step, &weights, 80),
            vec![(0, 3 * h - 1), (3 * h, 12 * h - 1), (12 * h, 20 * h)]
        );
        assert_eq!(plan(0, 10, 1, &[], 1), vec![(0, 10)], "nothing counted");
        assert_eq!(plan(10, 0, 1, &weights, 1), vec![], "empty range");
        assert_eq!(
            plan(i64::MIN, i64::MAX, 10, &[(i64::MAX - 10, 5)], 1),
            vec![(i64::MIN, i64::MAX)],
            "no cut past i64::MAX"
        );
    }

    #[test]
    fn aggregates_steps_by_average_min_and_max() {
        let samples = [(0, 1.0), (500, 3.0), (1000, 10.0), (2500, -1.0)];
        let points = steps(
            1000,
            samples
                .iter()
                .map(|&(ts, v)| (ts, Aggregate::new(ts, v, 0.0))),
        );
        let expected = vec![
            Point {
                ts: 0,
                value: 2.0,
                min: 1.0,
                max: 3.0,
            },
            Point::sample(1000, 10.0),
            Point::sample(2000, -1.0),
        ];
        assert_eq!(points, expected);
    }

    #[test]
    fn reads_raw_and_rollups_of_a_store() {
        use crate::storage::{MemoryKv, Sample, StorageConfig};
        let db = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
            .unwrap()
            .tsdb;
        let t0 = 1_700_000_000_000 / HOUR_MS * HOUR_MS;
        let samples: Vec<Sample> = (0..3 * 360)
            .map(|i| Sample {
                series: SeriesId(7),
                timestamp_ms: t0 + i * 10_000,
                value: (i % 6) as f64,
            })
            .collect();
        db.append(None, &samples).unwrap();
        db.checkpoint(true).unwrap();
        let raw = Reader::new(&db, t0, t0 + 3 * HOUR_MS, None);
        let weights = raw.weights(SeriesId(7)).unwrap();
        assert_eq!(
            weights,
            vec![(t0, 360), (t0 + HOUR_MS, 360), (t0 + 2 * HOUR_MS, 360)]
        );
        let windows = raw.plan(&weights, 500);
        assert_eq!(windows.len(), 2, "{windows:?}");
        let read: usize = windows
            .iter()
            .map(|w| raw.read(SeriesId(7), *w).unwrap().len())
            .sum();
        assert_eq!(read, 1080);
        // 5 min steps from the 5 min rollup: average of 0..=5 repeated.
        let stepped = Reader::new(&db, t0, t0 + 3 * HOUR_MS, Some(300_000));
        assert_eq!(stepped.origin, Origin::Rollup(Resolution::FiveMinutes));
        let points = stepped.read(SeriesId(7), (t0, t0 + 3 * HOUR_MS)).unwrap();
        assert_eq!(points.len(), 36);
        assert_eq!(
            (points[0].value, points[0].min, points[0].max),
            (2.5, 0.0, 5.0)
        );
        // A step no rollup divides: from raw samples.
        let odd = Reader::new(&db, t0, t0 + HOUR_MS - 1, Some(90_000));
        assert_eq!(odd.origin, Origin::Raw);
        assert_eq!(
            odd.read(SeriesId(7), (t0, t0 + HOUR_MS - 1)).unwrap().len(),
            40
        );
    }
}

//! Reading a series for an SLO from whatever the store still holds, exactly where it can.
//!
//! 1-minute rollups answer most questions exactly and are cheaper to read than raw samples
//! (a month of 10-second samples is 260 000 raw values, 43 200 buckets): a bucket answers
//! exactly when all its samples are judged alike (all up, or all under the threshold, by its
//! min and max). Only a mixed bucket (a transition) and the partial buckets at a window's
//! edges are read raw. Beyond the 1-minute rollups' retention (`[storage.retention]`) the
//! 5-minute, then the 1-hour ones are read; there a mixed bucket whose raw samples have
//! expired is split by its aggregate (the sum of 0/1 values is exact; a latency split is
//! interpolated between min and max) and the order of its runs is lost.
//!
//! Before the store's history of a series begins, a remote history (`[history] remote_url`)
//! gives the raw samples, when one is configured ([`History::remote_before`]).

use super::error::SloError;
use crate::analysis::history::History;
use crate::analytics::slo::Window;
use crate::storage::{Aggregate, Resolution, SeriesId, SeriesMeta, StoreError, Tsdb};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// How one sample is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// A 0/1 success value: good when 1.
    Up,
    /// A duration in seconds: good when at most the threshold.
    AtMost { seconds: f64 },
}

impl Verdict {
    pub fn good(self, value: f64) -> bool {
        match self {
            Verdict::Up => value > 0.5,
            Verdict::AtMost { seconds } => value <= seconds,
        }
    }

    /// `Some(good)` when every sample of the bucket is judged the same.
    fn uniform(self, agg: &Aggregate) -> Option<bool> {
        match (self.good(agg.min), self.good(agg.max)) {
            (true, true) => Some(true),
            (false, false) => Some(false),
            _ => None,
        }
    }

    /// Good samples of a mixed bucket from its aggregate alone.
    fn estimate_good(self, agg: &Aggregate) -> u64 {
        let share = match self {
            Verdict::Up => agg.sum / agg.count as f64,
            Verdict::AtMost { seconds } if agg.max > agg.min => {
                (seconds - agg.min) / (agg.max - agg.min)
            }
            Verdict::AtMost { .. } => 1.0,
        };
        ((share.clamp(0.0, 1.0) * agg.count as f64).round() as u64).min(agg.count)
    }
}

/// From when on each rollup resolution is surely kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizons {
    pub minute_from: i64,
    pub five_from: i64,
}

impl Horizons {
    pub fn of(tsdb: &Tsdb, now_ms: i64) -> Self {
        let retention = &tsdb.config().retention;
        let back = |d: std::time::Duration| {
            let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            ceil_to(now_ms.saturating_sub(ms), HOUR_MS)
        };
        Self {
            minute_from: back(retention.rollup_1m),
            five_from: back(retention.rollup_5m),
        }
    }
}

fn ceil_to(ms: i64, step: i64) -> i64 {
    ms.div_euclid(step)
        .saturating_add(i64::from(ms.rem_euclid(step) != 0))
        .saturating_mul(step)
}

/// The window cut by the horizons: each part with its source (`None` = raw), oldest first.
fn segments(window: Window, h: Horizons) -> Vec<(Window, Resolution)> {
    // A finer resolution wins wherever it is kept, whatever the retention settings' order.
    let five = h.five_from.min(h.minute_from);
    let parts = [
        (i64::MIN, five, Resolution::OneHour),
        (five, h.minute_from, Resolution::FiveMinutes),
        (h.minute_from, i64::MAX, Resolution::OneMinute),
    ];
    parts
        .into_iter()
        .filter_map(|(from, to, res)| Some((Window::new(from, to).intersect(&window)?, res)))
        .collect()
}

/// A part's whole buckets `[first, end)`; `None` when the part holds no whole bucket.
fn whole_buckets(part: Window, res: Resolution) -> Option<Window> {
    let first = ceil_to(part.start_ms, res.millis());
    let end = part.end_ms.div_euclid(res.millis()) * res.millis();
    (first < end).then_some(Window::new(first, end))
}

fn raw(
    tsdb: &Tsdb,
    id: SeriesId,
    start: i64,
    end_exclusive: i64,
) -> Result<Vec<(i64, f64)>, StoreError> {
    if start >= end_exclusive {
        return Ok(Vec::new());
    }
    tsdb.read_raw(id, start, end_exclusive - 1)
}

/// Rollup buckets of `whole` (bucket-aligned).
fn rollup(
    tsdb: &Tsdb,
    id: SeriesId,
    whole: Window,
    res: Resolution,
) -> Result<Vec<(i64, Aggregate)>, StoreError> {
    tsdb.read_rollup(id, res, whole.start_ms, whole.end_ms - res.millis())
}

/// A stretch of a series: `(start, length, aggregate)`.
pub type Bucket = (i64, i64, Aggregate);

/// Where a series' samples over a window come from: the remote history's raw samples before
/// the store's history begins, then the store over the rest of the window (`None`: nothing
/// left for it).
struct Split {
    remote: Vec<(i64, f64)>,
    local: Option<Window>,
}

impl Split {
    fn of(history: &History, meta: &SeriesMeta, window: Window) -> Result<Self, SloError> {
        if window.start_ms >= window.end_ms {
            return Ok(Self {
                remote: Vec::new(),
                local: None,
            });
        }
        let (remote, local_from) =
            history.remote_before(meta, window.start_ms, window.end_ms - 1)?;
        Ok(Self {
            remote,
            local: (local_from < window.end_ms).then(|| Window::new(local_from, window.end_ms)),
        })
    }
}

/// Raw samples grouped by `grain` into buckets.
fn grouped_by(samples: &[(i64, f64)], grain: i64, out: &mut Vec<Bucket>) {
    for chunk in samples.chunk_by(|a, b| a.0.div_euclid(grain) == b.0.div_euclid(grain)) {
        if let Some(agg) = Aggregate::of(chunk, None) {
            out.push((chunk[0].0.div_euclid(grain) * grain, grain, agg));
        }
    }
}

/// [`buckets`] of a series, the part before the store's history read from the remote one.
pub fn buckets_of(
    tsdb: &Tsdb,
    history: &History,
    meta: &SeriesMeta,
    window: Window,
    grain: i64,
    h: Horizons,
    regular: &dyn Fn(&Aggregate) -> bool,
) -> Result<Vec<Bucket>, SloError> {
    let split = Split::of(history, meta, window)?;
    let mut out = Vec::new();
    grouped_by(&split.remote, grain, &mut out);
    if let Some(local) = split.local {
        out.extend(buckets(tsdb, meta.id, local, grain, h, regular)?);
    }
    Ok(out)
}

/// What a series holds over `window`, in time order: rollup buckets, raw samples at partial
/// buckets grouped by `grain` (which divides a minute or is a multiple of it).
///
/// Regular hours: where 1-minute rollups are kept, a whole hour whose 1-hour bucket holds at
/// least as many samples as the window's usual hour (one fewer is allowed for jitter) and
/// that `regular` accepts comes back as one hour-long bucket: nothing went missing in it, and
/// reading its 60 minutes would say nothing more. Other hours are read minute by minute.
pub fn buckets(
    tsdb: &Tsdb,
    id: SeriesId,
    window: Window,
    grain: i64,
    h: Horizons,
    regular: &dyn Fn(&Aggregate) -> bool,
) -> Result<Vec<Bucket>, StoreError> {
    let mut out = Vec::new();
    for (part, res) in segments(window, h) {
        let hours = (res == Resolution::OneMinute)
            .then(|| whole_buckets(part, Resolution::OneHour))
            .flatten();
        let Some(hours) = hours else {
            fine(tsdb, id, part, res, grain, &mut out)?;
            continue;
        };
        fine(
            tsdb,
            id,
            Window::new(part.start_ms, hours.start_ms),
            res,
            grain,
            &mut out,
        )?;
        let hourly = rollup(tsdb, id, hours, Resolution::OneHour)?;
        let mut counts: Vec<u64> = hourly
            .iter()
            .map(|(_, a)| a.count)
            .filter(|c| *c > 0)
            .collect();
        counts.sort_unstable();
        let usual = counts.get(counts.len() / 2).copied().unwrap_or(u64::MAX);
        // Irregular hours in a row are read together.
        let mut pending: Option<Window> = None;
        let mut at = hours.start_ms;
        let mut next = hourly.into_iter().peekable();
        while at < hours.end_ms {
            let hour = Window::new(at, at + HOUR_MS);
            let agg = next.next_if(|(start, _)| *start == at).map(|(_, agg)| agg);
            match agg.filter(|a| a.count + 1 >= usual && regular(a)) {
                Some(agg) => {
                    if let Some(w) = pending.take() {
                        fine(tsdb, id, w, res, grain, &mut out)?;
                    }
                    out.push((at, HOUR_MS, agg));
                }
                None => {
                    pending = Some(match pending {
                        Some(w) => Window::new(w.start_ms, hour.end_ms),
                        None => hour,
                    });
                }
            }
            at += HOUR_MS;
        }
        if let Some(w) = pending {
            fine(tsdb, id, w, res, grain, &mut out)?;
        }
        fine(
            tsdb,
            id,
            Window::new(hours.end_ms, part.end_ms),
            res,
            grain,
            &mut out,
        )?;
    }
    Ok(out)
}

/// The `res` buckets wholly inside `part`, and raw samples grouped by `grain` at its edges.
fn fine(
    tsdb: &Tsdb,
    id: SeriesId,
    part: Window,
    res: Resolution,
    grain: i64,
    out: &mut Vec<Bucket>,
) -> Result<(), StoreError> {
    let grouped = |from: i64, to: i64, out: &mut Vec<Bucket>| -> Result<(), StoreError> {
        grouped_by(&raw(tsdb, id, from, to)?, grain, out);
        Ok(())
    };
    if part.start_ms >= part.end_ms {
        return Ok(());
    }
    let Some(whole) = whole_buckets(part, res) else {
        return grouped(part.start_ms, part.end_ms, out);
    };
    grouped(part.start_ms, whole.start_ms, out)?;
    out.extend(
        rollup(tsdb, id, whole, res)?
            .into_iter()
            .map(|(start, agg)| (start, res.millis(), agg)),
    );
    grouped(whole.end_ms, part.end_ms, out)
}

/// Each run of a series in `window`, in time order, judged. Runs of a uniform bucket get
/// evenly spread times inside it; a mixed one is read raw. Before the store's history, the
/// remote history's samples, each judged.
pub fn runs(
    tsdb: &Tsdb,
    history: &History,
    meta: &SeriesMeta,
    window: Window,
    verdict: Verdict,
    h: Horizons,
) -> Result<Vec<(i64, bool)>, SloError> {
    let split = Split::of(history, meta, window)?;
    let mut out: Vec<(i64, bool)> = split
        .remote
        .iter()
        .map(|&(ts, v)| (ts, verdict.good(v)))
        .collect();
    let Some(window) = split.local else {
        return Ok(out);
    };
    let id = meta.id;
    let uniform = |agg: &Aggregate| verdict.uniform(agg).is_some();
    for (start, len, agg) in buckets(tsdb, id, window, MINUTE_MS, h, &uniform)? {
        if agg.count == 0 {
            continue;
        }
        // Edge buckets of raw samples start before the window: spread inside it.
        let span = Window::new(start, start + len)
            .intersect(&window)
            .unwrap_or(window);
        let spread = |i: u64| span.start_ms + (i as i64 * span.len_ms()) / agg.count as i64;
        if let Some(good) = verdict.uniform(&agg) {
            out.extend((0..agg.count).map(|i| (spread(i), good)));
            continue;
        }
        let samples = raw(tsdb, id, span.start_ms, span.end_ms)?;
        if samples.is_empty() {
            let good = verdict.estimate_good(&agg);
            // The order inside the bucket is lost: continue what came before, so an outage
            // starting or ending in the bucket stays one run of failures.
            let good_first = out.last().is_some_and(|(_, g)| *g);
            out.extend((0..agg.count).map(|i| {
                let is_good = if good_first {
                    i < good
                } else {
                    i >= agg.count - good
                };
                (spread(i), is_good)
            }));
        } else {
            out.extend(samples.into_iter().map(|(ts, v)| (ts, verdict.good(v))));
        }
    }
    Ok(out)
}

/// Raw values of a series in `window` (for per-slice quantiles, which need every value),
/// before the store's history from the remote one.
pub fn values(
    tsdb: &Tsdb,
    history: &History,
    meta: &SeriesMeta,
    window: Window,
) -> Result<Vec<(i64, f64)>, SloError> {
    let Split { mut remote, local } = Split::of(history, meta, window)?;
    if let Some(local) = local {
        remote.extend(raw(tsdb, meta.id, local.start_ms, local.end_ms)?);
    }
    Ok(remote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_reading_segments_follow_retention() {
        let h = Horizons {
            minute_from: 50 * HOUR_MS,
            five_from: 10 * HOUR_MS,
        };
        let parts = segments(Window::new(5 * HOUR_MS, 120 * HOUR_MS), h);
        assert_eq!(
            parts,
            vec![
                (Window::new(5 * HOUR_MS, 10 * HOUR_MS), Resolution::OneHour),
                (
                    Window::new(10 * HOUR_MS, 50 * HOUR_MS),
                    Resolution::FiveMinutes
                ),
                (
                    Window::new(50 * HOUR_MS, 120 * HOUR_MS),
                    Resolution::OneMinute
                ),
            ]
        );
        assert_eq!(
            segments(Window::new(60 * HOUR_MS, 70 * HOUR_MS), h).len(),
            1
        );
        assert_eq!(ceil_to(HOUR_MS + 1, HOUR_MS), 2 * HOUR_MS);
        assert_eq!(ceil_to(HOUR_MS, HOUR_MS), HOUR_MS);
        // A window off the minute grid: whole minutes inside, raw at the edges.
        let part = Window::new(90_000, 330_000);
        assert_eq!(
            whole_buckets(part, Resolution::OneMinute),
            Some(Window::new(120_000, 300_000))
        );
        assert_eq!(
            whole_buckets(Window::new(61_000, 119_000), Resolution::OneMinute),
            None
        );
    }

    #[test]
    fn slo_reading_mixed_buckets_split_by_their_aggregate() {
        let agg = |min: f64, max: f64, sum: f64, count: u64| Aggregate {
            count,
            sum,
            min,
            max,
            last: max,
            last_ts: 0,
            edges: None,
            increase: 0.0,
        };
        assert_eq!(Verdict::Up.uniform(&agg(1.0, 1.0, 4.0, 4)), Some(true));
        assert_eq!(Verdict::Up.uniform(&agg(0.0, 0.0, 0.0, 4)), Some(false));
        assert_eq!(Verdict::Up.uniform(&agg(0.0, 1.0, 3.0, 4)), None);
        assert_eq!(Verdict::Up.estimate_good(&agg(0.0, 1.0, 3.0, 4)), 3);
        let fast = Verdict::AtMost { seconds: 0.1 };
        // Uniform between 0 and 0.4 s: a quarter under 0.1 s.
        assert_eq!(fast.estimate_good(&agg(0.0, 0.4, 0.8, 8)), 2);
        assert_eq!(fast.uniform(&agg(0.01, 0.1, 0.2, 4)), Some(true));
    }
}

//! Intervals: the evidence behind every SLO figure. Each interval is a stretch of one series
//! (or one incident) with one outcome; a tally is nothing but the sum of its intervals'
//! weights, so anyone can recompute a figure from the list the intervals API returns.
//!
//! Two ways to count ([`Budgeting`]):
//! - occurrences: every probe run (or incident, or ratio event) is one event; an interval
//!   holds a run of consecutive events with the same outcome and weighs its event count;
//! - time slices: time is cut into fixed slices (aligned to the Unix epoch, so 1-minute slices
//!   match the store's 1-minute rollups), each judged good or bad; an interval weighs its
//!   milliseconds.
//!
//! Intervals never cross a "cut" (the caller passes the local midnights of its zone), so daily
//! tallies are sums of whole intervals too.

use super::calendar::Window;
use super::tally::{Outcome, Tally};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One stretch of evidence. `good`/`total` count the events (runs, slices' runs, incidents)
/// inside it; `note` says why when that is not obvious (maintenance reason, an incident id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub start_ms: i64,
    pub end_ms: i64,
    pub outcome: Outcome,
    pub good: f64,
    pub total: f64,
    pub note: Option<String>,
    /// The series (labels) or incident this interval belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
}

impl Interval {
    pub fn window(&self) -> Window {
        Window::new(self.start_ms, self.end_ms)
    }
}

/// How a budget is counted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Budgeting {
    #[default]
    Occurrences,
    /// A slice is good when its good share reaches `slice_target` (latency: when its quantile
    /// is under the threshold).
    Timeslices { slice_ms: i64, slice_target: f64 },
}

impl Budgeting {
    /// Adds an interval to a tally. Occurrences: a good or bad interval adds its `good` events
    /// as good and the rest of its `total` as bad (a ratio step can hold both); an unknown or
    /// excluded one adds its `total`. Time slices: its milliseconds, under its outcome.
    pub fn count_into(&self, tally: &mut Tally, interval: &Interval) {
        match (self, interval.outcome) {
            (Budgeting::Occurrences, Outcome::Good | Outcome::Bad) => {
                tally.add(Outcome::Good, interval.good);
                tally.add(Outcome::Bad, interval.total - interval.good);
            }
            (Budgeting::Occurrences, outcome) => tally.add(outcome, interval.total),
            (Budgeting::Timeslices { .. }, outcome) => {
                tally.add(outcome, (interval.end_ms - interval.start_ms) as f64)
            }
        }
    }

    /// Slices from one second to a day, a slice target in (0, 1].
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Budgeting::Occurrences => Ok(()),
            Budgeting::Timeslices { slice_ms, .. } if !(1_000..=86_400_000).contains(&slice_ms) => {
                Err(format!(
                    "slice {slice_ms} ms is out of range: give 1s to 1d"
                ))
            }
            Budgeting::Timeslices { slice_target, .. }
                if !(slice_target > 0.0 && slice_target <= 1.0) =>
            {
                Err(format!(
                    "slice_target {slice_target} is out of range: give more than 0, at most 1"
                ))
            }
            Budgeting::Timeslices { .. } => Ok(()),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum BudgetingWire {
    // A struct variant: a unit variant would let unknown fields through.
    Occurrences {},
    Timeslices {
        #[serde(with = "humantime_serde")]
        slice: Duration,
        #[serde(default = "full")]
        slice_target: f64,
    },
}

fn full() -> f64 {
    1.0
}

impl Serialize for Budgeting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Budgeting::Occurrences => BudgetingWire::Occurrences {},
            Budgeting::Timeslices {
                slice_ms,
                slice_target,
            } => BudgetingWire::Timeslices {
                slice: Duration::from_millis(slice_ms.max(0) as u64),
                slice_target,
            },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Budgeting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let budgeting = match BudgetingWire::deserialize(d)? {
            BudgetingWire::Occurrences {} => Budgeting::Occurrences,
            BudgetingWire::Timeslices {
                slice,
                slice_target,
            } => Budgeting::Timeslices {
                slice_ms: i64::try_from(slice.as_millis()).unwrap_or(i64::MAX),
                slice_target,
            },
        };
        budgeting.validate().map_err(serde::de::Error::custom)?;
        Ok(budgeting)
    }
}

/// One event (a probe run, a ratio step's events) and what it counts as.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    pub ts_ms: i64,
    pub outcome: Outcome,
}

/// Probe runs with retries: a failure counts as bad only inside a run of more than `retries`
/// consecutive failures; shorter runs are what a retry would have absorbed, so they count good.
pub fn runs_with_retries(samples: &[(i64, bool)], retries: u32) -> Vec<Event> {
    let mut out: Vec<Event> = samples
        .iter()
        .map(|&(ts_ms, ok)| Event {
            ts_ms,
            outcome: if ok { Outcome::Good } else { Outcome::Bad },
        })
        .collect();
    if retries == 0 {
        return out;
    }
    let mut i = 0;
    while i < out.len() {
        if out[i].outcome != Outcome::Bad {
            i += 1;
            continue;
        }
        let run_end = (i..out.len())
            .find(|&j| out[j].outcome != Outcome::Bad)
            .unwrap_or(out.len());
        if run_end - i <= retries as usize {
            out[i..run_end]
                .iter_mut()
                .for_each(|e| e.outcome = Outcome::Good);
        }
        i = run_end;
    }
    out
}

/// Marks events inside any of `windows` (maintenance) as excluded.
pub fn exclude_events(events: &mut [Event], windows: &[Window]) {
    if windows.is_empty() {
        return;
    }
    for event in events.iter_mut() {
        if windows.iter().any(|w| w.contains(event.ts_ms)) {
            event.outcome = Outcome::Excluded;
        }
    }
}

/// The usual time between events: the median gap, `None` with fewer than two events.
pub fn typical_spacing(timestamps: &[i64]) -> Option<i64> {
    let mut gaps: Vec<i64> = timestamps
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 0)
        .collect();
    if gaps.is_empty() {
        return None;
    }
    let middle = gaps.len() / 2;
    Some(*gaps.select_nth_unstable(middle).1)
}

/// Sorted events of one series into intervals over `observed` (the window, clipped to now).
///
/// Consecutive events with one outcome make one interval, which ends at the next event (or
/// one spacing after its last). A gap longer than two spacings is unknown time: the runs that
/// should have happened in it, `gap / spacing - 1`, count as unknown events. Intervals never
/// cross a cut.
pub fn event_intervals(
    events: &[Event],
    spacing: Option<i64>,
    observed: Window,
    cuts: &[i64],
    series: Option<&str>,
) -> Vec<Interval> {
    let mut out = Vec::new();
    // Sorted: the events inside `observed` are one stretch.
    let from = events.partition_point(|e| e.ts_ms < observed.start_ms);
    let to = events.partition_point(|e| e.ts_ms < observed.end_ms);
    let events = &events[from..to.max(from)];
    let series = series.map(str::to_owned);
    let push =
        |start: i64, end: i64, outcome: Outcome, good: f64, total: f64, out: &mut Vec<Interval>| {
            for piece in split_at_cuts(Window::new(start, end), cuts) {
                // Event counts follow the events: an interval of events sits wholly before the cut
                // its run was closed at; only unknown gaps are spread over the pieces by time.
                let share = if outcome == Outcome::Unknown {
                    piece.len_ms() as f64 / (end - start).max(1) as f64
                } else {
                    1.0
                };
                out.push(Interval {
                    start_ms: piece.start_ms,
                    end_ms: piece.end_ms,
                    outcome,
                    good: good * share,
                    total: total * share,
                    note: None,
                    series: series.clone(),
                });
            }
        };
    let unknown_gap = |from: i64, to: i64| -> Option<f64> {
        let s = spacing?;
        let gap = to - from;
        (gap > 2 * s).then(|| gap as f64 / s as f64 - 1.0)
    };
    let Some(first) = events.first() else {
        return out;
    };
    if let Some(missing) = unknown_gap(observed.start_ms, first.ts_ms) {
        push(
            observed.start_ms,
            first.ts_ms,
            Outcome::Unknown,
            0.0,
            missing,
            &mut out,
        );
    }
    let mut run_start = 0;
    for i in 0..events.len() {
        let current = &events[i];
        let next = events.get(i + 1);
        let breaks = match next {
            None => true,
            Some(n) => {
                n.outcome != current.outcome
                    || unknown_gap(current.ts_ms, n.ts_ms).is_some()
                    || next_cut(cuts, current.ts_ms).is_some_and(|c| c <= n.ts_ms)
            }
        };
        if !breaks {
            continue;
        }
        let following = next.map(|n| n.ts_ms).unwrap_or(observed.end_ms);
        let gap = unknown_gap(current.ts_ms, following);
        let natural_end = match (gap, spacing, next) {
            (None, _, Some(n)) => n.ts_ms,
            (_, Some(s), _) => (current.ts_ms + s).min(following),
            _ => current.ts_ms + 1,
        };
        // Close at the first cut after the run's last event, so the run stays in its day.
        let cut_end = next_cut(cuts, current.ts_ms)
            .filter(|c| *c < natural_end)
            .unwrap_or(natural_end)
            .min(observed.end_ms);
        let count = (i + 1 - run_start) as f64;
        let good = if current.outcome == Outcome::Good {
            count
        } else {
            0.0
        };
        out.push(Interval {
            start_ms: events[run_start].ts_ms,
            end_ms: cut_end.max(events[run_start].ts_ms + 1),
            outcome: current.outcome,
            good,
            total: count,
            note: None,
            series: series.clone(),
        });
        if let (Some(missing), Some(s)) = (gap, spacing) {
            let from = (current.ts_ms + s).min(following);
            push(from, following, Outcome::Unknown, 0.0, missing, &mut out);
        }
        run_start = i + 1;
    }
    out
}

/// The slices of `slice_ms` (aligned to the epoch) overlapping `window`, clipped to it.
pub fn slice_grid(window: Window, slice_ms: i64) -> impl Iterator<Item = Window> {
    let first = window.start_ms.div_euclid(slice_ms) * slice_ms;
    (0..)
        .map(move |i| first + i * slice_ms)
        .take_while(move |s| *s < window.end_ms)
        .filter_map(move |s| Window::new(s, s + slice_ms).intersect(&window))
}

/// Adds a judged slice to `runs` (slices in time order), extending the last run when it
/// touches it with the same outcome and no cut between, so a month of 1-minute slices stays a
/// handful of intervals.
pub fn push_slice(
    runs: &mut Vec<Interval>,
    slice: Window,
    outcome: Outcome,
    good: f64,
    total: f64,
    cuts: &[i64],
) {
    if let Some(last) = runs.last_mut()
        && last.end_ms == slice.start_ms
        && last.outcome == outcome
        && cuts.binary_search(&slice.start_ms).is_err()
    {
        last.end_ms = slice.end_ms;
        last.good += good;
        last.total += total;
        return;
    }
    runs.push(Interval {
        start_ms: slice.start_ms,
        end_ms: slice.end_ms,
        outcome,
        good,
        total,
        note: None,
        series: None,
    });
}

/// A slice's outcome from its good and total runs: unknown without runs.
pub fn slice_outcome(good: f64, total: f64, slice_target: f64) -> Outcome {
    if total <= 0.0 {
        Outcome::Unknown
    } else if good / total >= slice_target * (1.0 - 1e-12) {
        Outcome::Good
    } else {
        Outcome::Bad
    }
}

/// Time-weighted intervals of one series (slices or runs of them, in order) made final: the
/// parts inside an excluded window (maintenance, with its reason) become excluded, everything
/// is split at the cuts, and neighbours with the same outcome merge. A split interval's
/// evidence (`good`, `total`) is shared by time; excluded parts keep none.
pub fn finish_slices(
    slices: Vec<Interval>,
    excluded: &[(Window, String)],
    cuts: &[i64],
) -> Vec<Interval> {
    let mut pieces: Vec<Interval> = Vec::with_capacity(slices.len());
    for part in slices {
        let whole = part.window();
        let len = whole.len_ms().max(1) as f64;
        let piece = |w: Window, outcome: Outcome, note: Option<String>| {
            let share = if outcome == Outcome::Excluded && part.outcome != Outcome::Excluded {
                0.0
            } else {
                w.len_ms() as f64 / len
            };
            Interval {
                start_ms: w.start_ms,
                end_ms: w.end_ms,
                outcome,
                good: part.good * share,
                total: part.total * share,
                note,
                series: part.series.clone(),
            }
        };
        // Boundaries: the cuts and the excluded windows' edges inside the interval.
        let mut edges: Vec<i64> = cuts[cuts.partition_point(|c| *c <= whole.start_ms)..]
            .iter()
            .copied()
            .take_while(|c| *c < whole.end_ms)
            .collect();
        for (w, _) in excluded {
            for edge in [w.start_ms, w.end_ms] {
                if whole.start_ms < edge && edge < whole.end_ms {
                    edges.push(edge);
                }
            }
        }
        edges.sort_unstable();
        edges.dedup();
        let mut start = whole.start_ms;
        for end in edges.into_iter().chain([whole.end_ms]) {
            let w = Window::new(start, end);
            let maintenance = (part.outcome != Outcome::Excluded)
                .then(|| {
                    excluded
                        .iter()
                        .find(|(x, _)| x.start_ms <= start && end <= x.end_ms)
                })
                .flatten();
            pieces.push(match maintenance {
                Some((_, reason)) => piece(w, Outcome::Excluded, Some(reason.clone())),
                None => piece(w, part.outcome, part.note.clone()),
            });
            start = end;
        }
    }
    merge_adjacent(pieces, cuts)
}

/// Joins neighbours (touching, same outcome, note and series, no cut between) into one
/// interval, summing their evidence.
pub fn merge_adjacent(pieces: Vec<Interval>, cuts: &[i64]) -> Vec<Interval> {
    let mut merged: Vec<Interval> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        if let Some(last) = merged.last_mut() {
            let joins = last.end_ms == piece.start_ms
                && last.outcome == piece.outcome
                && last.note == piece.note
                && last.series == piece.series
                && cuts.binary_search(&piece.start_ms).is_err();
            if joins {
                last.end_ms = piece.end_ms;
                last.good += piece.good;
                last.total += piece.total;
                continue;
            }
        }
        merged.push(piece);
    }
    merged
}

/// The first cut after `at_ms` (cuts are sorted).
fn next_cut(cuts: &[i64], at_ms: i64) -> Option<i64> {
    cuts.get(cuts.partition_point(|c| *c <= at_ms)).copied()
}

fn split_at_cuts(window: Window, cuts: &[i64]) -> Vec<Window> {
    let mut out = Vec::new();
    let mut start = window.start_ms;
    for &cut in &cuts[cuts.partition_point(|c| *c <= start)..] {
        if cut >= window.end_ms {
            break;
        }
        out.push(Window::new(start, cut));
        start = cut;
    }
    if start < window.end_ms {
        out.push(Window::new(start, window.end_ms));
    }
    out
}

/// The tally of a list of intervals.
pub fn tally_of(intervals: &[Interval], budgeting: &Budgeting) -> Tally {
    let mut tally = Tally::default();
    for interval in intervals {
        budgeting.count_into(&mut tally, interval);
    }
    tally
}

/// Tallies per day: each interval counts in the day its start falls in (intervals do not
/// cross days when the days' starts were the cuts).
pub fn daily(
    intervals: &[Interval],
    days: &[Window],
    budgeting: &Budgeting,
) -> Vec<(Window, Tally)> {
    let mut out: Vec<(Window, Tally)> = days.iter().map(|d| (*d, Tally::default())).collect();
    for interval in intervals {
        let i = days.partition_point(|d| d.end_ms <= interval.start_ms);
        if let Some((day, tally)) = out.get_mut(i)
            && day.contains(interval.start_ms)
        {
            budgeting.count_into(tally, interval);
        }
    }
    out
}

/// Bad time as merged windows (overlapping or touching bad intervals of any series join).
pub fn breaches(intervals: &[Interval]) -> Vec<Window> {
    let mut bad: Vec<Window> = intervals
        .iter()
        .filter(|i| i.outcome == Outcome::Bad)
        .map(Interval::window)
        .collect();
    bad.sort_by_key(|w| (w.start_ms, w.end_ms));
    let mut out: Vec<Window> = Vec::new();
    for w in bad {
        match out.last_mut() {
            Some(last) if w.start_ms <= last.end_ms => last.end_ms = last.end_ms.max(w.end_ms),
            _ => out.push(w),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts_ms: i64, outcome: Outcome) -> Event {
        Event { ts_ms, outcome }
    }

    fn shape(intervals: &[Interval]) -> Vec<(i64, i64, Outcome, f64, f64)> {
        intervals
            .iter()
            .map(|i| (i.start_ms, i.end_ms, i.outcome, i.good, i.total))
            .collect()
    }

    fn slice(start_ms: i64, end_ms: i64, outcome: Outcome) -> Interval {
        Interval {
            start_ms,
            end_ms,
            outcome,
            good: 1.0,
            total: 1.0,
            note: None,
            series: None,
        }
    }

    #[test]
    fn slo_budgeting_serde_and_limits() {
        let json = |b: &Budgeting| serde_json::to_string(b).unwrap();
        assert_eq!(json(&Budgeting::Occurrences), r#"{"kind":"occurrences"}"#);
        let sliced = Budgeting::Timeslices {
            slice_ms: 60_000,
            slice_target: 0.99,
        };
        assert_eq!(
            json(&sliced),
            r#"{"kind":"timeslices","slice":"1m","slice_target":0.99}"#
        );
        let back: Budgeting = serde_json::from_str(&json(&sliced)).unwrap();
        assert_eq!(back, sliced);
        for bad in [
            r#"{"kind":"timeslices","slice":"100ms"}"#,
            r#"{"kind":"timeslices","slice":"1m","slice_target":0}"#,
            r#"{"kind":"timeslices","slice":"1m","slice_target":1.5}"#,
            r#"{"kind":"weekly"}"#,
            r#"{"kind":"occurrences","slice":"1m"}"#,
        ] {
            assert!(serde_json::from_str::<Budgeting>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slo_retries_absorb_short_failure_runs() {
        let samples = [
            (0, true),
            (1, false),
            (2, true),
            (3, false),
            (4, false),
            (5, true),
            (6, false),
        ];
        let outcomes = |retries| -> Vec<bool> {
            runs_with_retries(&samples, retries)
                .iter()
                .map(|e| e.outcome == Outcome::Good)
                .collect()
        };
        assert_eq!(outcomes(0), [true, false, true, false, false, true, false]);
        assert_eq!(outcomes(1), [true, true, true, false, false, true, true]);
        assert_eq!(outcomes(2), [true; 7]);
    }

    #[test]
    fn slo_event_intervals_merge_runs_and_find_gaps() {
        // Runs every 10 ms from 0 to 200; 50..80 bad; nothing from 110 to 160 (a gap of 60:
        // 5 runs missing); one excluded at 190.
        let mut events: Vec<Event> = (0..=20)
            .map(|i| i * 10)
            .filter(|ts| !(120..=150).contains(ts))
            .map(|ts| {
                ev(
                    ts,
                    if (50..80).contains(&ts) {
                        Outcome::Bad
                    } else {
                        Outcome::Good
                    },
                )
            })
            .collect();
        exclude_events(&mut events, &[Window::new(185, 195)]);
        let times: Vec<i64> = events.iter().map(|e| e.ts_ms).collect();
        assert_eq!(typical_spacing(&times), Some(10));
        let out = event_intervals(&events, Some(10), Window::new(0, 230), &[], None);
        assert_eq!(
            shape(&out),
            vec![
                (0, 50, Outcome::Good, 5.0, 5.0),
                (50, 80, Outcome::Bad, 0.0, 3.0),
                (80, 120, Outcome::Good, 4.0, 4.0),
                (120, 160, Outcome::Unknown, 0.0, 4.0),
                (160, 190, Outcome::Good, 3.0, 3.0),
                (190, 200, Outcome::Excluded, 0.0, 1.0),
                (200, 210, Outcome::Good, 1.0, 1.0),
                (210, 230, Outcome::Unknown, 0.0, 2.0),
            ]
        );
        // The runs up to 90 with a cut at 100; the trailing gap to 170 is unknown (7 runs).
        let out = event_intervals(&events[..10], Some(10), Window::new(0, 170), &[100], None);
        let tally = tally_of(&out, &Budgeting::Occurrences);
        assert_eq!((tally.good, tally.bad, tally.unknown), (7.0, 3.0, 7.0));
        assert!(out.iter().all(|i| i.end_ms <= 100 || i.start_ms >= 100));
        // One event and no spacing: nothing unknown can be said.
        let lone = event_intervals(
            &[ev(5, Outcome::Good)],
            None,
            Window::new(0, 100),
            &[],
            None,
        );
        assert_eq!(shape(&lone), vec![(5, 6, Outcome::Good, 1.0, 1.0)]);
        assert!(event_intervals(&[], Some(10), Window::new(0, 100), &[], None).is_empty());
    }

    #[test]
    fn slo_slices_exclude_split_and_merge() {
        assert_eq!(
            slice_grid(Window::new(30, 250), 100).collect::<Vec<_>>(),
            vec![
                Window::new(30, 100),
                Window::new(100, 200),
                Window::new(200, 250)
            ]
        );
        assert_eq!(slice_outcome(99.0, 100.0, 0.99), Outcome::Good);
        assert_eq!(slice_outcome(98.0, 100.0, 0.99), Outcome::Bad);
        assert_eq!(slice_outcome(0.0, 0.0, 0.99), Outcome::Unknown);
        let slices = vec![
            slice(0, 100, Outcome::Good),
            slice(100, 200, Outcome::Good),
            slice(200, 300, Outcome::Bad),
            slice(300, 400, Outcome::Bad),
            slice(400, 500, Outcome::Good),
        ];
        // Maintenance 150..250, a cut at 400.
        let out = finish_slices(slices, &[(Window::new(150, 250), "swap".into())], &[400]);
        assert_eq!(
            shape(&out),
            vec![
                (0, 150, Outcome::Good, 1.5, 1.5),
                (150, 250, Outcome::Excluded, 0.0, 0.0),
                (250, 400, Outcome::Bad, 1.5, 1.5),
                (400, 500, Outcome::Good, 1.0, 1.0),
            ]
        );
        assert_eq!(out[1].note.as_deref(), Some("swap"));
        let sliced = Budgeting::Timeslices {
            slice_ms: 100,
            slice_target: 1.0,
        };
        let tally = tally_of(&out, &sliced);
        assert_eq!(
            (tally.good, tally.bad, tally.excluded),
            (250.0, 150.0, 100.0)
        );
        let days = [Window::new(0, 400), Window::new(400, 800)];
        let by_day = daily(&out, &days, &sliced);
        assert_eq!(by_day[0].1.good, 150.0);
        assert_eq!(by_day[1].1.good, 100.0);
        assert_eq!(breaches(&out), vec![Window::new(250, 400)]);
    }

    #[test]
    fn slo_breaches_merge_across_series_and_occurrences_count_mixed_steps() {
        let mut a = slice(0, 100, Outcome::Bad);
        a.series = Some("a".into());
        let mut b = slice(50, 150, Outcome::Bad);
        b.series = Some("b".into());
        let c = slice(300, 400, Outcome::Bad);
        assert_eq!(
            breaches(&[c, b, a]),
            vec![Window::new(0, 150), Window::new(300, 400)]
        );
        // A ratio step: 7 good of 10 under a good outcome still counts 3 bad.
        let step = Interval {
            good: 7.0,
            total: 10.0,
            ..slice(0, 60, Outcome::Good)
        };
        let tally = tally_of(&[step], &Budgeting::Occurrences);
        assert_eq!((tally.good, tally.bad), (7.0, 3.0));
    }
}

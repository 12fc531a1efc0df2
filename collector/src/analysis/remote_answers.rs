//! Remote history answers kept for a while. A rule evaluated every round over a window that
//! reaches before the collector's history asks for the same stretch of the same series each
//! time: the part before its first local sample, which stays put while the window's start
//! moves forward. That stretch is old history, so an answer covering it is reused until it is
//! a few minutes old instead of being asked for again every round.
//!
//! Pure: the caller passes the time, and the memory is bounded by a number of samples.

use crate::storage::SeriesId;
use rustc_hash::FxHashMap;
use std::time::{Duration, Instant};

/// A fetched answer: the remote's samples of one series over `[start, end]`.
struct Answer {
    start: i64,
    end: i64,
    fetched: Instant,
    samples: Vec<(i64, f64)>,
}

pub struct RemoteAnswers {
    answers: FxHashMap<SeriesId, Answer>,
    /// Samples held over all answers.
    held: usize,
    limit: usize,
    fresh_for: Duration,
}

impl RemoteAnswers {
    /// At most `limit` samples (16 bytes each), each answer reused for `fresh_for`.
    pub fn new(limit: usize, fresh_for: Duration) -> Self {
        Self {
            answers: FxHashMap::default(),
            held: 0,
            limit,
            fresh_for,
        }
    }

    /// The samples of `series` over `[start, end]`, if a fresh answer covers that whole span.
    pub fn get(
        &self,
        series: SeriesId,
        start: i64,
        end: i64,
        now: Instant,
    ) -> Option<Vec<(i64, f64)>> {
        let answer = self.answers.get(&series)?;
        let fresh = now.saturating_duration_since(answer.fetched) < self.fresh_for;
        (fresh && answer.start <= start && end <= answer.end).then(|| {
            let from = answer.samples.partition_point(|s| s.0 < start);
            let to = answer.samples.partition_point(|s| s.0 <= end);
            answer.samples[from..to].to_vec()
        })
    }

    /// Keeps the answer for `series` over `[start, end]` (samples sorted by time), replacing the
    /// series' previous one. The oldest answers make room; one larger than the limit is not kept.
    pub fn put(
        &mut self,
        series: SeriesId,
        start: i64,
        end: i64,
        samples: &[(i64, f64)],
        now: Instant,
    ) {
        if let Some(old) = self.answers.remove(&series) {
            self.held -= old.samples.len();
        }
        if samples.len() > self.limit {
            return;
        }
        while self.held + samples.len() > self.limit {
            let Some(oldest) = self
                .answers
                .iter()
                .min_by_key(|(_, a)| a.fetched)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some(evicted) = self.answers.remove(&oldest) {
                self.held -= evicted.samples.len();
            }
        }
        self.held += samples.len();
        self.answers.insert(
            series,
            Answer {
                start,
                end,
                fetched: now,
                samples: samples.to_vec(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(from: i64, to: i64) -> Vec<(i64, f64)> {
        (from..=to).map(|t| (t, t as f64)).collect()
    }

    #[test]
    fn an_answer_serves_the_spans_it_covers_while_fresh() {
        let t0 = Instant::now();
        let mut answers = RemoteAnswers::new(1_000, Duration::from_secs(300));
        answers.put(SeriesId(1), 100, 200, &samples(100, 200), t0);
        let later = t0 + Duration::from_secs(10);
        // The next round's window starts later and ends at the same first local sample.
        assert_eq!(
            answers.get(SeriesId(1), 110, 200, later),
            Some(samples(110, 200))
        );
        // Reaching outside what was asked before, or another series: ask again.
        assert_eq!(answers.get(SeriesId(1), 90, 200, later), None);
        assert_eq!(answers.get(SeriesId(1), 110, 201, later), None);
        assert_eq!(answers.get(SeriesId(2), 110, 200, later), None);
        // An empty answer is an answer: the remote holds nothing there.
        answers.put(SeriesId(2), 0, 50, &[], t0);
        assert_eq!(answers.get(SeriesId(2), 10, 50, later), Some(Vec::new()));
        // Stale after its time.
        let stale = t0 + Duration::from_secs(300);
        assert_eq!(answers.get(SeriesId(1), 110, 200, stale), None);
    }

    #[test]
    fn the_oldest_answers_make_room_and_the_limit_holds() {
        let t0 = Instant::now();
        let mut answers = RemoteAnswers::new(250, Duration::from_secs(300));
        for i in 0..3 {
            let at = t0 + Duration::from_secs(i);
            answers.put(SeriesId(i), 0, 99, &samples(0, 99), at);
        }
        let now = t0 + Duration::from_secs(5);
        assert_eq!(answers.get(SeriesId(0), 0, 99, now), None, "evicted");
        assert!(answers.get(SeriesId(1), 0, 99, now).is_some());
        assert!(answers.get(SeriesId(2), 0, 99, now).is_some());
        assert!(answers.held <= 250, "{}", answers.held);
        // Replacing a series' answer frees its old samples first.
        answers.put(SeriesId(2), 0, 9, &samples(0, 9), now);
        assert_eq!(answers.held, 110);
        // Too large to keep at all.
        answers.put(SeriesId(3), 0, 299, &samples(0, 299), now);
        assert_eq!(answers.get(SeriesId(3), 0, 299, now), None);
        assert_eq!(answers.held, 110);
    }
}

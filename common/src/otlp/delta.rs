//! Running totals of delta-temporality series, so they are stored as the cumulative series
//! PromQL's rate() and increase() expect.

use std::collections::HashMap;

/// Per series (name and labels), the total of the deltas seen so far. Bounded: past `max`
/// series, a new one gets no total and its points are refused, rather than memory growing
/// with whatever an application invents.
#[derive(Debug)]
pub struct DeltaSums {
    totals: HashMap<String, f64>,
    max: usize,
}

impl DeltaSums {
    pub fn new(max: usize) -> Self {
        Self {
            totals: HashMap::new(),
            max,
        }
    }

    /// Adds `delta` to the series' total and returns the new total; `None` for a new series
    /// past the bound.
    pub fn add(&mut self, name: &str, labels: &[(String, String)], delta: f64) -> Option<f64> {
        let mut key = String::with_capacity(name.len() + 16 * labels.len());
        key.push_str(name);
        for (n, v) in labels {
            key.push('\0');
            key.push_str(n);
            key.push('\0');
            key.push_str(v);
        }
        let full = self.totals.len() >= self.max;
        match self.totals.get_mut(&key) {
            Some(total) => {
                *total += delta;
                Some(*total)
            }
            None if full => None,
            None => {
                self.totals.insert(key, delta);
                Some(delta)
            }
        }
    }

    /// Series with a running total.
    pub fn len(&self) -> usize {
        self.totals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.totals.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::DeltaSums;

    #[test]
    fn totals_accumulate_per_series_within_the_bound() {
        let mut sums = DeltaSums::new(2);
        let a = vec![("k".to_owned(), "a".to_owned())];
        let b = vec![("k".to_owned(), "b".to_owned())];
        assert_eq!(sums.add("x", &a, 2.0), Some(2.0));
        assert_eq!(sums.add("x", &a, 3.0), Some(5.0));
        assert_eq!(sums.add("x", &b, 1.0), Some(1.0));
        assert_eq!(
            sums.add("y", &a, 1.0),
            None,
            "a third series is past the bound"
        );
        assert_eq!(sums.add("x", &b, -1.0), Some(0.0), "known series go on");
        assert_eq!(sums.len(), 2);
    }
}

//! What the catalog holds in memory, for `hcmon_collector_state_bytes{engine="catalog"}`.

use super::{Inner, SeriesCatalog};
use crate::storage::{SeriesId, SeriesMeta};
use hcmon_common::Labels;
use std::collections::HashMap;
use std::sync::Arc;

impl SeriesCatalog {
    /// Bytes the catalog holds, from its types' layout and its strings' and lists' capacities
    /// (hash tables counted at their entries, without their spare slots): each series' labels
    /// and help, its label set's hash, its ids in the postings, and the sorted list.
    pub fn state_bytes(&self) -> usize {
        let walked = {
            let inner = self.read();
            let mut sized = self.sized.lock().unwrap_or_else(|p| p.into_inner());
            match *sized {
                Some((at, bytes)) if at == inner.generation => bytes,
                _ => {
                    let bytes = Self::walk_bytes(&inner);
                    *sized = Some((inner.generation, bytes));
                    bytes
                }
            }
        };
        let sorted = self
            .sorted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(0, |(_, list)| {
                list.capacity() * std::mem::size_of::<Arc<SeriesMeta>>()
            });
        walked + sorted
    }

    /// [`SeriesCatalog::state_bytes`] but for the sorted list: every series walked.
    fn walk_bytes(inner: &Inner) -> usize {
        use std::mem::size_of;
        let labels = |l: &Labels| {
            size_of::<Labels>()
                + l.len() * size_of::<(String, String)>()
                + l.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>()
        };
        let series: usize = inner
            .by_id
            .values()
            .map(|m| {
                size_of::<(SeriesId, Arc<SeriesMeta>)>()
                    + 16
                    + size_of::<SeriesMeta>()
                    + labels(&m.labels)
                    - size_of::<Labels>()
                    + m.help.capacity()
            })
            .sum();
        let by_labels: usize = inner
            .by_labels
            .values()
            .map(|ids| size_of::<(u64, Vec<SeriesId>)>() + ids.capacity() * size_of::<SeriesId>())
            .sum();
        let postings: usize = inner
            .postings
            .iter()
            .map(|(name, values)| {
                size_of::<(String, HashMap<String, Vec<SeriesId>>)>()
                    + name.capacity()
                    + values
                        .iter()
                        .map(|(value, ids)| {
                            size_of::<(String, Vec<SeriesId>)>()
                                + value.capacity()
                                + ids.capacity() * size_of::<SeriesId>()
                        })
                        .sum::<usize>()
            })
            .sum();
        series + by_labels + postings
    }
}

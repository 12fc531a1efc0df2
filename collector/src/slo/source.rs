//! What the per-SLI readers share: where samples come from, the part of the window already
//! past, the local midnights intervals must not cross, and the maintenance windows.

use super::reading::Horizons;
use crate::analysis::history::History;
use crate::analytics::slo::{Interval, MaintenanceWindow, Window};
use crate::catalog::SeriesCatalog;
use crate::storage::Tsdb;
use hcmon_common::Labels;
use std::sync::Arc;

/// Where samples come from.
#[derive(Clone)]
pub struct SloSource {
    pub tsdb: Arc<Tsdb>,
    pub catalog: Arc<SeriesCatalog>,
    /// Reaches before the store's history when `[history] remote_url` is set.
    pub history: Arc<History>,
}

pub(super) struct Scope<'a> {
    /// The evaluated window, clipped to the present.
    pub observed: Window,
    /// Local midnights inside the window, sorted.
    pub cuts: &'a [i64],
    pub maintenance: &'a [MaintenanceWindow],
    /// Which data the store still keeps for which part of the window.
    pub horizons: Horizons,
}

impl Scope<'_> {
    /// Maintenance windows applying to a series, with their reasons.
    pub fn excluded_for(&self, labels: &Labels) -> Vec<(Window, String)> {
        self.maintenance
            .iter()
            .filter(|m| m.applies_to(labels))
            .filter_map(|m| Some((m.window().intersect(&self.observed)?, m.reason.clone())))
            .collect()
    }
}

/// Intervals and how many series, nodes or incidents they came from.
#[derive(Default)]
pub(super) struct Built {
    pub intervals: Vec<Interval>,
    pub covered: usize,
}

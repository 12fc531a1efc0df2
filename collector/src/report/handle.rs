//! What the scheduler and the API share to make reports and find stored ones: the SLOs, the
//! store and the alerting handle (for maintenance silences), and the report time zone
//! (`[slo] timezone`).

use super::gather::{self, ReportSources};
use super::model::{Report, ReportError, ReportKind};
use super::store::ReportStore;
use crate::alerting::handle::Alerting;
use crate::analytics::slo::{Window, Zone};
use crate::catalog::SeriesCatalog;
use crate::slo::objectives::Objectives;
use crate::storage::Tsdb;
use std::sync::Arc;

#[derive(Clone)]
pub struct ReportHandle {
    pub objectives: Arc<Objectives>,
    pub tsdb: Arc<Tsdb>,
    pub catalog: Arc<SeriesCatalog>,
    /// `None` when `[alerting] enabled = false`: then no silence is maintenance.
    pub alerting: Option<Alerting>,
    pub store: ReportStore,
    /// Names of the alerting forecast rules: their incidents are resources heading for a limit.
    pub forecast_alerts: Vec<String>,
}

impl ReportHandle {
    /// The report time zone.
    pub fn zone(&self) -> &Zone {
        self.objectives.zone()
    }

    /// Makes a report of `kind` over `window`. Blocking: reads the store.
    pub fn generate(
        &self,
        kind: ReportKind,
        window: Window,
        now_ms: i64,
    ) -> Result<Report, ReportError> {
        let silences = self
            .alerting
            .as_ref()
            .map(|alerting| alerting.view().silences.clone())
            .unwrap_or_default();
        let sources = ReportSources {
            objectives: self.objectives.clone(),
            tsdb: self.tsdb.clone(),
            catalog: self.catalog.clone(),
            silences,
            forecast_alerts: self.forecast_alerts.clone(),
        };
        gather::generate(&sources, kind, window, now_ms)
    }
}

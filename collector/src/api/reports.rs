//! The report API's bodies (`/api/v1/reports`): the stored scheduled reports as listed. The
//! reports themselves are downloads (`/api/v1/report`, `/api/v1/reports/{id}`) in the format
//! asked for, not JSON envelopes.

use serde::{Deserialize, Serialize};

/// One stored report, as `GET /api/v1/reports` lists it (daily, weekly, monthly, oldest first
/// within each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReportInfo {
    /// `daily-2026-11-29`, `weekly-2026-11-23` (its Monday), `monthly-2026-11`: dates in the
    /// report time zone; what `/api/v1/reports/{id}` takes.
    pub id: String,
    /// `daily`, `weekly` or `monthly`.
    pub kind: String,
    /// The period covered, as people say it: `November 2026`.
    pub period: String,
    /// Unix ms of the period's start (inclusive) and end (exclusive).
    pub start_ms: i64,
    pub end_ms: i64,
    /// Unix ms when it was made.
    pub generated_ms: i64,
    /// Delivered to every recipient by email.
    pub mailed: bool,
}

//! The SLO API's bodies (`/api/v1/slos`): definitions, their figures over a window, and the
//! intervals every figure is the sum of. `POST /api/v1/slos` takes a definition in the JSON
//! form the config's `[[slo.objectives]]` use (name and SLI required, the rest defaulted), which
//! [`Definition`] also answers with.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An SLO's definition as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    pub name: String,
    pub description: String,
    /// Label matchers; empty covers everything the SLI applies to.
    pub selector: String,
    pub sli: Sli,
    pub target: f64,
    pub warning: f64,
    /// `day`, `week`, `month`, `quarter`, `year` or a rolling `<N>d`.
    pub period: String,
    pub budgeting: Budgeting,
    /// `default`, `config` or `api`.
    pub origin: String,
}

/// How an SLO's events are judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sli {
    Availability {
        /// `probe` or `node`.
        source: String,
        retries: u32,
    },
    Latency {
        threshold_ms: f64,
        quantile: f64,
    },
    Ratio {
        good: String,
        valid: String,
    },
    /// Targets in ms by severity (`critical`, `error`, `warning`).
    Response {
        targets: BTreeMap<String, i64>,
    },
    Resolution {
        targets: BTreeMap<String, i64>,
    },
}

/// How the budget is counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Budgeting {
    Occurrences,
    Timeslices {
        /// e.g. `1m`.
        slice: String,
        slice_target: f64,
    },
}

/// `GET /api/v1/slos`: each SLO with its figures over its current period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloListing {
    pub definition: Definition,
    /// `None` when it could not be evaluated; `error` says why.
    pub result: Option<SloFigures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A half-open time range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// Unix ms.
    pub start_ms: i64,
    /// Unix ms.
    pub end_ms: i64,
}

/// Good, bad, unknown (no data) and excluded (maintenance) events, or ms of time slices.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Tally {
    pub good: f64,
    pub bad: f64,
    pub unknown: f64,
    pub excluded: f64,
}

/// Compliance against target and warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Met,
    Warning,
    Breached,
    NoData,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Warning => "warning",
            Status::Breached => "breached",
            Status::NoData => "no data",
        }
    }
}

/// The error budget: shares of the period's valid events (or time).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub allowed: f64,
    pub spent: f64,
    /// 1 - spent/allowed; below 0 once overspent.
    pub remaining: f64,
}

/// One calendar day (in the configured zone) of the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Day {
    pub range: Range,
    pub tally: Tally,
    pub compliance: Option<f64>,
}

/// `GET /api/v1/slos/{name}`: an SLO's figures over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloFigures {
    pub name: String,
    pub window: Range,
    /// The time zone calendar periods and days are in.
    pub timezone: String,
    /// The counting policy, in one sentence.
    pub policy: String,
    pub tally: Tally,
    pub compliance: Option<f64>,
    /// Share of the window with data (maintenance counts as covered).
    pub coverage: Option<f64>,
    pub status: Status,
    pub budget: Budget,
    pub burn_rate: Option<f64>,
    pub time_to_exhaustion_ms: Option<i64>,
    /// Series, nodes or incidents counted.
    pub covered: usize,
    /// Runs of bad intervals.
    pub breaches: Vec<Range>,
    pub daily: Vec<Day>,
}

/// What an interval counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Good,
    Bad,
    Unknown,
    Excluded,
}

/// One interval of the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub start_ms: i64,
    pub end_ms: i64,
    pub outcome: Outcome,
    pub good: f64,
    pub total: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `GET /api/v1/slos/{name}/intervals`: the intervals the figures are the sum of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloIntervals {
    pub name: String,
    pub window: Range,
    pub policy: String,
    /// The sum of `intervals`, as the figures count it.
    pub tally: Tally,
    pub compliance: Option<f64>,
    pub intervals: Vec<Interval>,
}

/// `DELETE /api/v1/slos/{name}`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletedSlo {
    pub name: String,
}

/// `POST /api/v1/slos/openslo`'s answer: the SLOs created (or replaced), by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedSlos {
    pub created: Vec<String>,
}

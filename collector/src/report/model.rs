//! What a report says, as data: the figures, tables and findings that `render` lays out as
//! PDF, HTML, CSV or JSON and `store` keeps. Built by `build` (pure) from what `gather` reads.
//!
//! A report is a document, not a live view: names are kept as the text they had when it was
//! generated, and every figure is final (finite numbers; `None` where there was no data), so a
//! stored report renders the same years later whatever became of the SLOs it names.

use crate::analytics::slo::response::Measure;
use crate::analytics::slo::{Distribution, IncidentSeverity, Status, Window};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which report: the three scheduled ones and one asked for over any range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// The previous day: summary, compliance, response times, trends.
    Daily,
    /// The previous Monday-to-Monday week: the daily contents plus patterns and recommendations.
    Weekly,
    /// The previous calendar month: executive summary and everything but the incident list.
    Monthly,
    /// Any range, on request: every section.
    OnDemand,
}

impl ReportKind {
    pub const ALL: [ReportKind; 4] = [
        ReportKind::Daily,
        ReportKind::Weekly,
        ReportKind::Monthly,
        ReportKind::OnDemand,
    ];

    /// The name used in JSON, URLs and keys: "daily", "weekly", "monthly", "ondemand".
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Daily => "daily",
            ReportKind::Weekly => "weekly",
            ReportKind::Monthly => "monthly",
            ReportKind::OnDemand => "ondemand",
        }
    }

    /// How a title names it: "Daily", "Weekly", "Monthly", "On-demand".
    pub fn label(self) -> &'static str {
        match self {
            ReportKind::Daily => "Daily",
            ReportKind::Weekly => "Weekly",
            ReportKind::Monthly => "Monthly",
            ReportKind::OnDemand => "On-demand",
        }
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a report kind was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report kind {0:?}: expected daily, weekly, monthly or ondemand")]
pub struct ReportKindError(pub String);

impl FromStr for ReportKind {
    type Err = ReportKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReportKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| ReportKindError(s.to_owned()))
    }
}

/// Why a report could not be generated. An SLO that cannot be evaluated does not stop the
/// report: its row says why.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("a report window must end after it starts (from {start_ms} to {end_ms} ms)")]
    InvalidWindow { start_ms: i64, end_ms: i64 },
    #[error("cannot read the incidents: {0}")]
    ReadIncidents(#[source] crate::storage::StoreError),
    #[error("cannot read the maintenance windows: {0}")]
    ReadMaintenance(#[source] crate::slo::SloError),
}

/// A generated report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub kind: ReportKind,
    /// E.g. "Monthly SLA report: October 2026".
    pub title: String,
    /// The range reported on, half-open.
    pub window: Window,
    /// When it was generated (Unix ms).
    pub generated_ms: i64,
    /// The IANA zone days, hours and weekdays are counted in, e.g. "Europe/Berlin".
    pub timezone: String,
    /// Which sections apply to this kind; the others are left empty.
    pub sections: Sections,
    pub summary: Summary,
    /// One row per SLO, in the order of the SLO list.
    pub compliance: Vec<ComplianceRow>,
    /// Time to acknowledge and to resolve, per severity (critical first).
    pub response: Vec<ResponseRow>,
    pub incidents: IncidentStats,
    /// Slopes over the 30 days ending at the report's end.
    pub trends: Vec<TrendRow>,
    /// Recurring incidents, most frequent first.
    pub patterns: Vec<PatternRow>,
    /// Per SLO, 30 days past the report's end.
    pub forecast: Vec<ForecastRow>,
    /// At most five, most important first, each backed by the figures above.
    pub recommendations: Vec<Recommendation>,
    /// Per node, how much of its data arrived and how good it was over the window (the stored
    /// data-quality scores). Reports made before this section have none.
    #[serde(default)]
    pub coverage: Vec<CoverageRow>,
}

/// One node's data coverage over a report's window, from its stored quality evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageRow {
    pub node: String,
    /// Evaluations in the window.
    pub evaluations: usize,
    /// Mean completeness: the share of expected samples that arrived.
    pub coverage: f64,
    /// Mean overall quality score.
    pub quality: f64,
    /// Lowest overall quality score.
    pub lowest: f64,
    /// Share of evaluations with the overall score below its threshold.
    pub below_threshold: f64,
}

/// Which sections a report has (a renderer shows exactly these).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sections {
    pub executive: bool,
    pub summary: bool,
    pub compliance: bool,
    pub response: bool,
    pub incidents: bool,
    pub trends: bool,
    pub patterns: bool,
    pub recommendations: bool,
    pub forecast: bool,
    /// Data coverage per node; every kind has it (reports stored before it have not).
    #[serde(default)]
    pub coverage: bool,
}

impl Sections {
    /// The sections of each kind, as the schedules promise them.
    pub fn for_kind(kind: ReportKind) -> Self {
        let daily = Sections {
            summary: true,
            compliance: true,
            response: true,
            trends: true,
            coverage: true,
            ..Sections::default()
        };
        match kind {
            ReportKind::Daily => daily,
            ReportKind::Weekly => Sections {
                incidents: true,
                patterns: true,
                recommendations: true,
                ..daily
            },
            ReportKind::Monthly => Sections {
                executive: true,
                incidents: true,
                patterns: true,
                recommendations: true,
                forecast: true,
                ..daily
            },
            ReportKind::OnDemand => Sections {
                executive: true,
                summary: true,
                compliance: true,
                response: true,
                incidents: true,
                trends: true,
                patterns: true,
                recommendations: true,
                forecast: true,
                coverage: true,
            },
        }
    }
}

/// The report in a few figures and one sentence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// SLOs reported on.
    pub slos: usize,
    pub met: usize,
    pub warning: usize,
    pub breached: usize,
    pub no_data: usize,
    /// Incidents that started in the window.
    pub incidents: usize,
    /// Mean time to acknowledge over the window's acknowledged incidents, in ms.
    pub mtta_ms: Option<f64>,
    /// Mean time to resolve over the window's resolved incidents, in ms.
    pub mttr_ms: Option<f64>,
    /// Mean coverage of the SLOs that had any data: the share of time or runs the collector
    /// knew the outcome of.
    pub coverage: Option<f64>,
    /// What matters most, in one sentence, e.g. "2 of 14 SLOs breached: probe:web:availability
    /// at 93.1 % (target 95 %) and node:nas:availability at 89.0 % (target 95 %)."
    pub headline: String,
}

/// One SLO's result over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplianceRow {
    /// The SLO's name, e.g. "probe:web:availability".
    pub name: String,
    pub description: String,
    /// The label matchers saying what it covers ("" = everything it applies to).
    pub covers: String,
    /// The SLI in words, e.g. "availability of probe runs".
    pub sli: String,
    /// The period the SLO is defined over, e.g. "30d" or "month".
    pub period: String,
    pub target: f64,
    pub warning: f64,
    /// Good / (good + bad) over the window; None without valid events.
    pub compliance: Option<f64>,
    /// Share of the window whose outcome was known (maintenance counts as known).
    pub coverage: Option<f64>,
    pub status: Status,
    /// Share of the window's error budget left (1 = untouched, below 0 = overspent); None
    /// without data.
    pub budget_remaining: Option<f64>,
    /// Bad share / allowed bad share over the window (1 = spending exactly the budget).
    pub burn_rate: Option<f64>,
    /// At the window's burn rate, how long until the budget is gone; None when not burning.
    pub time_to_exhaustion_ms: Option<i64>,
    /// Runs of bad intervals, merged.
    pub breaches: Vec<Window>,
    /// The counting policy in one sentence (maintenance, unknown time, retries).
    pub policy: String,
    /// Per calendar day of the report's zone: the day's compliance and the budget left after
    /// it, counting from the window's start (the burn-down).
    pub daily: Vec<DayPoint>,
}

/// One day of an SLO's compliance chart and burn-down.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DayPoint {
    /// The day's first instant in the report's zone.
    pub start_ms: i64,
    /// That day's own compliance; None without valid events that day.
    pub compliance: Option<f64>,
    /// The share of the window's budget left at the end of the day, cumulative from the
    /// window's start (the allowance is the whole window's); None while nothing is known yet.
    pub budget_remaining: Option<f64>,
}

/// Time to acknowledge or to resolve, for one severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseRow {
    /// "acknowledge" (MTTA) or "resolve" (MTTR).
    pub measure: Measure,
    pub severity: IncidentSeverity,
    /// Of the incidents that started in the window and whose wait ended, in ms.
    pub distribution: Distribution,
    /// The target of the incidents:response / incidents:resolution SLO for this severity.
    pub target_ms: Option<i64>,
    /// Share of the waits within `target_ms`; None without a target or without waits.
    pub met_share: Option<f64>,
    /// The waits themselves in ms, ascending, for the distribution chart.
    pub values_ms: Vec<f64>,
}

/// One incident, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRow {
    pub id: String,
    /// The alert's name, e.g. "HighCpu".
    pub alert: String,
    /// Its `node` label, if it has one.
    pub node: Option<String>,
    pub severity: IncidentSeverity,
    pub started_ms: i64,
    pub acknowledged_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
    /// Start to resolution; to the report's end while still open.
    pub duration_ms: i64,
}

/// Incidents that started in the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentStats {
    pub count: usize,
    pub longest: Option<IncidentRow>,
    /// Incidents per node, most first ("" for incidents without a node label).
    pub by_node: Vec<(String, usize)>,
    /// Incidents per local hour of day of their start, 24 entries from 00.
    pub by_hour: Vec<usize>,
    /// Incidents per local weekday of their start, 7 entries from Monday.
    pub by_weekday: Vec<usize>,
    /// The newest 50, newest first.
    pub list: Vec<IncidentRow>,
}

/// Which way a trend goes, judged only when its slope is significant at the 5 % level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Improving,
    Worsening,
    Flat,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Improving => "improving",
            Direction::Worsening => "worsening",
            Direction::Flat => "flat",
        }
    }
}

/// What a trend's values measure, so a slope can be printed with its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrendUnit {
    /// A share in [0, 1] (compliance): the slope is share per day.
    Share,
    /// A wait in milliseconds (MTTA, MTTR): the slope is ms per day.
    Milliseconds,
}

/// A least-squares slope over daily values, with its significance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendRow {
    /// E.g. "compliance of probe:web:availability", "MTTA", "MTTR".
    pub subject: String,
    pub unit: TrendUnit,
    /// Days with a value the line was fitted to.
    pub samples: usize,
    /// Change per day, in `unit`.
    pub slope_per_day: f64,
    /// Two-sided p-value of the t-test of slope = 0 (0 or 1 for a line through every point,
    /// sloped or flat).
    pub p_value: f64,
    /// p < 0.05.
    pub significant: bool,
    /// Flat unless significant.
    pub direction: Direction,
    /// A weekday effect, when one stands out, e.g. "lower on Mondays (−2.1 points)".
    pub seasonality: Option<String>,
}

/// Whether a pattern recurs at an hour of the day or on a weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatternKind {
    Hour,
    Weekday,
}

/// Incidents of one alert on one node that keep starting at the same hour or on the same
/// weekday (at least 3 times).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternRow {
    pub alert: String,
    /// The node, if the incidents have one.
    pub node: Option<String>,
    pub kind: PatternKind,
    /// In words, in the report's zone: "around 03:00" or "on Mondays".
    pub when: String,
    /// Distinct local days it started at that hour, or on that weekday, within `span`.
    pub occurrences: usize,
    /// The range looked at: the report's window, widened to the 30 days before its end when
    /// shorter (a weekly report cannot see a weekday recur).
    pub span: Window,
}

/// A value with its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
}

/// One SLO 30 days ahead, from the trend of its daily compliance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastRow {
    pub slo: String,
    pub horizon_days: u32,
    /// Daily compliance at the horizon, clamped to [0, 1].
    pub compliance: Band,
    /// Share of a period's budget left at the horizon if the forecast compliance holds over
    /// the coming period (1 − (1 − forecast) / (1 − target)); may be below 0 (overspent).
    pub budget_remaining: Band,
    /// Forecast daily compliance, one point per day: (ms, value, lower, upper).
    pub points: Vec<(i64, f64, f64, f64)>,
    /// The observed daily compliance the line was fitted to: (day start ms, value).
    pub history: Vec<(i64, f64)>,
}

/// How urgent a recommendation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    Medium,
    Low,
}

impl Priority {
    pub fn name(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
        }
    }
}

/// Something to change, derived from the report's own figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub priority: Priority,
    /// What the data show, with the numbers.
    pub finding: String,
    /// What to do about it.
    pub recommendation: String,
    /// What doing it should change.
    pub expected_impact: String,
    /// How sure the finding is, in [0.7, 1].
    pub confidence: f64,
}

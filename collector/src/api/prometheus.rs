//! The bodies of the endpoints Prometheus' clients call besides queries: status (build,
//! runtime, flags), metadata, exemplars, rules and targets. Field names are Prometheus' own
//! (camelCase, and its Go-flavoured runtime names), so its clients decode them unchanged.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GET /api/v1/status/buildinfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    pub version: String,
    /// The source revision, when the build recorded one; else `unknown`.
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    /// Prometheus names its compiler here; hcmon names Rust's.
    pub go_version: String,
}

/// `GET /api/v1/status/runtimeinfo`, with the Go runtime's fields answered by their nearest
/// hcmon equivalents (tasks for goroutines, worker threads for `GOMAXPROCS`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// RFC 3339.
    #[serde(rename = "startTime")]
    pub start_time: String,
    #[serde(rename = "CWD")]
    pub cwd: String,
    #[serde(rename = "reloadConfigSuccess")]
    pub reload_config_success: bool,
    /// RFC 3339: the config is read once, at start.
    #[serde(rename = "lastConfigTime")]
    pub last_config_time: String,
    #[serde(rename = "corruptionCount")]
    pub corruption_count: u64,
    /// Live tokio tasks.
    #[serde(rename = "goroutineCount")]
    pub goroutine_count: usize,
    /// Async worker threads.
    #[serde(rename = "GOMAXPROCS")]
    pub gomaxprocs: usize,
    #[serde(rename = "GOMEMLIMIT")]
    pub gomemlimit: i64,
    #[serde(rename = "GOGC")]
    pub gogc: String,
    #[serde(rename = "GODEBUG")]
    pub godebug: String,
    /// How long raw samples are kept, e.g. `15d`.
    #[serde(rename = "storageRetention")]
    pub storage_retention: String,
}

/// One family in `GET /api/v1/metadata` (the answer maps metric names to lists of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricMetadata {
    /// `counter`, `gauge`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// One series' exemplars in `GET /api/v1/query_exemplars`; hcmon stores none, so the answer
/// is always an empty list of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesExemplars {
    pub series_labels: BTreeMap<String, String>,
    pub exemplars: Vec<serde_json::Value>,
}

/// `GET /api/v1/targets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Targets {
    pub active_targets: Vec<ActiveTarget>,
    pub dropped_targets: Vec<serde_json::Value>,
    pub dropped_target_counts: BTreeMap<String, usize>,
}

/// Whether a target answers, as Prometheus words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetHealth {
    Up,
    Down,
    Unknown,
}

/// An agent, as Prometheus lists a scrape target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveTarget {
    pub discovered_labels: BTreeMap<String, String>,
    /// `job` and `instance`.
    pub labels: BTreeMap<String, String>,
    pub scrape_pool: String,
    /// Agents push over gRPC: there is no URL to scrape.
    pub scrape_url: String,
    pub global_url: String,
    pub last_error: String,
    /// RFC 3339: when the last batch was stored.
    pub last_scrape: String,
    pub last_scrape_duration: f64,
    pub health: TargetHealth,
    pub scrape_interval: String,
    pub scrape_timeout: String,
}

/// `GET /api/v1/rules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleGroups {
    pub groups: Vec<RuleGroup>,
}

/// A group of rules: hcmon groups its alert rules by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleGroup {
    pub name: String,
    /// Where the rules are written: the collector's config section.
    pub file: String,
    pub rules: Vec<AlertingRule>,
    /// Seconds between evaluations.
    pub interval: f64,
    pub limit: u64,
    pub evaluation_time: f64,
    /// RFC 3339.
    pub last_evaluation: String,
}

/// One alerting rule, with its open alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertingRule {
    /// `inactive`, `pending` or `firing`: the most urgent of its alerts.
    pub state: String,
    pub name: String,
    /// What the rule watches: its selector or expression.
    pub query: String,
    /// Seconds a condition must hold before it fires (`for`).
    pub duration: f64,
    pub keep_firing_for: f64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub alerts: Vec<RuleAlert>,
    pub health: String,
    pub last_error: String,
    pub evaluation_time: f64,
    /// RFC 3339.
    pub last_evaluation: String,
    /// Always `alerting`: hcmon has no recording rules.
    #[serde(rename = "type")]
    pub kind: String,
}

/// An alert of a rule, in Prometheus' shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: String,
    /// RFC 3339.
    pub active_at: String,
    pub value: String,
}

/// Prometheus' success envelope with `warnings`, e.g. that a `limit` cut the answer short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warned<T> {
    pub status: super::Status,
    pub data: T,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

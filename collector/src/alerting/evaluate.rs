//! Rules turned into observations for the [`AlertBook`](super::book::AlertBook): the compiled
//! rule set, and one function per kind of rule that phrases its verdict (value, level,
//! thresholds, annotations, evidence). Pure: the collector feeds it samples, verdicts, fitted
//! trends and silences it measured.

use super::book::Observation;
use super::config::{
    AGENT_DISCONNECTED, AGENT_SILENT, AlertingConfig, AnomalyRule, ForecastRule, MissingSeriesRule,
};
use super::lifecycle::{Direction, LifecycleRules, Threshold};
use super::notify::Evidence;
use super::policy::Severity;
use super::rule_files::evaluate::CompiledGroup;
use super::rules::ThresholdRule;
use crate::analytics::anomaly::Severity as AnomalySeverity;
use crate::analytics::slo::{Budget, BurnSeverity, BurnVerdict};
use crate::analytics::trend::{Bound, TrendConfig, fit_line};
use crate::anomaly_watch::LatestVerdict;
use crate::query::{Expr, QueryError};
use crate::slo::SloDefinition;
use hcmon_common::{Labels, MatchOp, Matcher, Selector, SelectorError};
use std::collections::BTreeMap;
use std::time::Duration;

/// A threshold rule, compiled: plain selectors are judged on every arriving sample; function
/// selectors (`rate(...)`) on the evaluation interval.
#[derive(Debug, Clone)]
pub struct CompiledThreshold {
    pub rule: ThresholdRule,
    pub plain: Option<Selector>,
    pub expr: Expr,
    lifecycle: LifecycleRules,
}

/// A rule judged on each arriving sample of a matching series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleRule {
    Threshold(usize),
    MissingSeries(usize),
}

/// Every rule in force.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub thresholds: Vec<CompiledThreshold>,
    pub anomaly: Vec<(AnomalyRule, Selector)>,
    pub forecast: Vec<(ForecastRule, Selector)>,
    pub missing_series: Vec<(MissingSeriesRule, Selector)>,
    /// The groups of the rule files, each evaluated on its interval.
    pub files: Vec<CompiledGroup>,
    flap_window_ms: i64,
    flap_max_changes: usize,
    pub agents: bool,
    pub intervals: u32,
    pub min_silence_ms: i64,
    pub disconnected_after_ms: i64,
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// A value as people read it: no float noise, few decimals.
pub fn fmt_value(v: f64) -> String {
    if let Some(text) = crate::json_f64::non_finite_text(v) {
        return text.to_owned();
    }
    let text = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v != 0.0 && v.abs() < 0.1 {
        // Three significant digits, so a small threshold (1e-4) does not read as 0.
        let decimals = (2 - v.abs().log10().floor() as i32).clamp(3, 15) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3}")
    };
    match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_owned(),
        false => text,
    }
}

/// A series' labels without its metric name: what identifies its alerts.
fn identity(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .without_name()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn where_text(labels: &Labels) -> String {
    labels
        .get("node")
        .map_or_else(|| labels.to_string(), |n| format!("{labels} on {n}"))
}

fn annotations(summary: String, description: String) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("summary".to_owned(), summary),
        ("description".to_owned(), description),
    ])
}

/// The alert an SLO's budget burning too fast raises.
pub const SLO_BURN_RATE: &str = "SloBurnRate";

/// What a burn-rate alert says of the budget of the SLO's current period: what is left, and
/// how long that lasts at the long window's rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetLeft {
    pub budget: Budget,
    pub exhausted_in_ms: Option<i64>,
}

/// The warning levels of threshold rules on probe duration metrics (metric name → seconds),
/// the thresholds of the default latency SLOs. A metric with several rules takes the lowest.
pub fn latency_warnings(config: &AlertingConfig) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for rule in config.threshold_rules() {
        let (Some(warning), Direction::Above) = (rule.warning, rule.direction) else {
            continue;
        };
        let Ok(selector) = Selector::parse(&rule.selector) else {
            continue;
        };
        let name = selector
            .matchers
            .iter()
            .find(|m| m.name == hcmon_common::METRIC_NAME_LABEL && m.op == MatchOp::Equal);
        if let Some(name) = name.filter(|m| m.value.ends_with("_duration_seconds")) {
            let level = out.entry(name.value.clone()).or_insert(warning);
            *level = level.min(warning);
        }
    }
    out
}

/// The labels of an SLO's burn-rate alert over `window`: the SLO, the window, and the node
/// when the SLO's selector names exactly one.
pub fn slo_burn_labels(slo: &SloDefinition, window: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("slo".to_owned(), slo.name.to_string()),
        ("window".to_owned(), window.to_owned()),
    ]);
    if let Ok(Some(selector)) = slo.matchers()
        && let Some(node) = selector
            .matchers
            .iter()
            .find(|m| m.name == "node" && m.op == MatchOp::Equal)
    {
        labels.insert("node".to_owned(), node.value.clone());
    }
    labels
}

/// A configured rule that cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("rule {rule}: {source}")]
    Expr { rule: String, source: QueryError },
    #[error("rule {rule}: {source}")]
    Selector { rule: String, source: SelectorError },
    #[error("rule {0}: no level set")]
    NoLevel(String),
}

/// The `node` regex of a per-node rule (node model or data quality), compiled; none matches
/// every node.
pub fn node_matcher(rule: &str, node: Option<&str>) -> Result<Option<Matcher>, RuleError> {
    node.map(|re| Matcher::new("node", MatchOp::Regex, re))
        .transpose()
        .map_err(|source| RuleError::Selector {
            rule: rule.to_owned(),
            source,
        })
}

impl RuleSet {
    pub fn new(config: &AlertingConfig) -> Result<Self, RuleError> {
        let flap = |threshold| LifecycleRules {
            threshold,
            for_ms: 0,
            flap_window_ms: ms(config.flap_window),
            flap_max_changes: config.flap_max_changes,
        };
        let thresholds = config
            .threshold_rules()
            .into_iter()
            .map(|rule| {
                let expr =
                    crate::query::parse(&rule.selector).map_err(|source| RuleError::Expr {
                        rule: rule.name.clone(),
                        source,
                    })?;
                let lowest = [Severity::Warning, Severity::Error, Severity::Critical]
                    .into_iter()
                    .find_map(|s| rule.threshold(s))
                    .ok_or_else(|| RuleError::NoLevel(rule.name.clone()))?;
                Ok(CompiledThreshold {
                    plain: rule.selector(),
                    lifecycle: LifecycleRules {
                        for_ms: ms(rule.r#for),
                        ..flap(lowest)
                    },
                    expr,
                    rule,
                })
            })
            .collect::<Result<_, RuleError>>()?;
        let compile = |name: &str, selector: &str| {
            Selector::parse(selector).map_err(|source| RuleError::Selector {
                rule: name.to_owned(),
                source,
            })
        };
        Ok(Self {
            thresholds,
            anomaly: config
                .anomaly_rules
                .iter()
                .map(|r| Ok((r.clone(), compile(&r.name, &r.selector)?)))
                .collect::<Result<_, RuleError>>()?,
            forecast: config
                .all_forecast_rules()
                .iter()
                .map(|r| Ok((r.clone(), compile(&r.name, &r.selector)?)))
                .collect::<Result<_, RuleError>>()?,
            missing_series: config
                .missing_data
                .series
                .iter()
                .map(|r| Ok((r.clone(), compile(&r.name, &r.selector)?)))
                .collect::<Result<_, RuleError>>()?,
            files: config
                .file_rule_groups()
                .iter()
                .map(|group| {
                    CompiledGroup::compile(group, config.evaluation_interval)
                        .map_err(|(rule, source)| RuleError::Expr { rule, source })
                })
                .collect::<Result<_, RuleError>>()?,
            flap_window_ms: ms(config.flap_window),
            flap_max_changes: config.flap_max_changes,
            agents: config.missing_data.agents,
            intervals: config.missing_data.intervals,
            min_silence_ms: ms(config.missing_data.min_silence),
            disconnected_after_ms: ms(config.missing_data.disconnected_after),
        })
    }

    /// Lifecycle tuning with only the flap settings meaningful, for ticks.
    pub fn flap_rules(&self) -> LifecycleRules {
        self.lifecycle(
            Threshold {
                direction: Direction::Above,
                fire: 1.0,
                recover: 0.0,
            },
            0,
        )
    }

    fn lifecycle(&self, threshold: Threshold, for_ms: i64) -> LifecycleRules {
        LifecycleRules {
            threshold,
            for_ms,
            flap_window_ms: self.flap_window_ms,
            flap_max_changes: self.flap_max_changes,
        }
    }

    /// The rules judged on every sample of a series with these labels.
    pub fn sample_rules(&self, labels: &Labels) -> Vec<SampleRule> {
        let thresholds = self
            .thresholds
            .iter()
            .enumerate()
            .filter(|(_, t)| t.plain.as_ref().is_some_and(|s| s.matches(labels)))
            .map(|(i, _)| SampleRule::Threshold(i));
        let missing = self
            .missing_series
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| s.matches(labels))
            .map(|(i, _)| SampleRule::MissingSeries(i));
        thresholds.chain(missing).collect()
    }

    /// Threshold rule `index` judging `value` of the series `labels`.
    pub fn threshold(&self, index: usize, labels: &Labels, value: f64) -> Observation {
        let t = &self.thresholds[index];
        let rule = &t.rule;
        let severity = rule.breached(value);
        let level = severity
            .and_then(|s| rule.threshold(s))
            .unwrap_or(t.lifecycle.threshold);
        let verb = match rule.direction {
            Direction::Above => "above",
            Direction::Below => "below",
        };
        let levels: Vec<String> = [
            ("warning", rule.warning),
            ("error", rule.error),
            ("critical", rule.critical),
        ]
        .into_iter()
        .filter_map(|(n, l)| Some(format!("{n} {}", fmt_value(l?))))
        .collect();
        Observation {
            alertname: rule.name.clone(),
            labels: identity(labels),
            value,
            rules: t.lifecycle,
            severity,
            annotations: annotations(
                format!(
                    "{} is {} ({verb} {})",
                    where_text(labels),
                    fmt_value(value),
                    fmt_value(level.fire)
                ),
                format!(
                    "{} {verb} its levels ({}); it resolves once back to {}.",
                    rule.selector,
                    levels.join(", "),
                    fmt_value(t.lifecycle.threshold.recover)
                ),
            ),
            evidence: Evidence {
                threshold: Some(level.fire),
                ..Evidence::default()
            },
            inhibits_node: false,
            judged: None,
        }
    }

    /// Anomaly rule `index` judging the newest verdict on the series `labels`.
    pub fn anomaly(&self, index: usize, labels: &Labels, verdict: &LatestVerdict) -> Observation {
        let (rule, _) = &self.anomaly[index];
        let counts =
            verdict.is_anomaly && !verdict.learning && verdict.severity >= rule.min_severity;
        let severity = match verdict.severity {
            AnomalySeverity::Critical => Severity::Critical,
            AnomalySeverity::High => Severity::Error,
            _ => Severity::Warning,
        };
        let detectors: Vec<String> = verdict
            .fired
            .iter()
            .map(|d| {
                format!(
                    "{} expected {}..{} (strength {:.1})",
                    d.detector.name(),
                    fmt_value(d.expected.0),
                    fmt_value(d.expected.1),
                    d.strength
                )
            })
            .collect();
        Observation {
            alertname: rule.name.clone(),
            labels: identity(labels),
            value: verdict.value,
            // The anomaly decision is the engine's; the lifecycle sees it as 1 or 0.
            rules: self.lifecycle(
                Threshold {
                    direction: Direction::Above,
                    fire: 1.0,
                    recover: 0.0,
                },
                ms(rule.r#for),
            ),
            severity: counts.then_some(severity),
            annotations: annotations(
                format!(
                    "{} is anomalous: {} (score {:.2}, {})",
                    where_text(labels),
                    fmt_value(verdict.value),
                    verdict.score,
                    verdict.severity.name()
                ),
                format!("Detectors that fired: {}.", detectors.join("; ")),
            ),
            evidence: Evidence {
                expected: verdict.fired.first().map(|d| d.expected),
                details: detectors,
                ..Evidence::default()
            },
            inhibits_node: false,
            judged: Some(f64::from(u8::from(counts))),
        }
    }

    /// Forecast rule `index` on the history of the series `labels`; `None` when the history
    /// is too short to fit a trend.
    pub fn forecast(
        &self,
        index: usize,
        labels: &Labels,
        samples: &[(i64, f64)],
    ) -> Option<Observation> {
        let (rule, _) = &self.forecast[index];
        let config = TrendConfig {
            window: rule.window,
            horizon: rule.horizon,
            ..TrendConfig::default()
        };
        let fit = fit_line(samples)?;
        let bound = match rule.direction {
            Direction::Above => Bound::Upper,
            Direction::Below => Bound::Lower,
        };
        let crossing = fit.time_to_threshold(rule.limit, bound, &config);
        let horizon_s = rule.horizon.as_secs_f64();
        let seconds = crossing.map_or(f64::INFINITY, |c| c.seconds);
        let current = samples.last().map_or(f64::NAN, |s| s.1);
        let when = match crossing {
            Some(c) => format!(
                "reaches {} in {} (between {} and {})",
                fmt_value(rule.limit),
                human(c.seconds),
                human(c.low_seconds),
                human(c.high_seconds)
            ),
            None => format!("is not heading for {}", fmt_value(rule.limit)),
        };
        Some(Observation {
            alertname: rule.name.clone(),
            labels: identity(labels),
            value: seconds,
            rules: self.lifecycle(
                Threshold {
                    direction: Direction::Below,
                    fire: horizon_s,
                    recover: horizon_s * 1.25,
                },
                0,
            ),
            severity: (seconds <= horizon_s).then_some(rule.severity),
            annotations: annotations(
                format!("{} {when}", where_text(labels)),
                format!(
                    "Trend over the last {} ({} samples, now {}) crosses {} within the {} horizon.",
                    human(rule.window.as_secs_f64()),
                    fit.n,
                    fmt_value(current),
                    fmt_value(rule.limit),
                    human(horizon_s)
                ),
            ),
            evidence: Evidence {
                threshold: Some(rule.limit),
                details: vec![when],
                ..Evidence::default()
            },
            inhibits_node: false,
            judged: None,
        })
    }

    /// An SLO's burn-rate rule judged on its two windows: fires (critical for a page, warning
    /// for a ticket) when both burn the budget at the rule's factor or faster. `left` is the
    /// current period's budget, when it was worked out (only while burning).
    pub fn slo_burn(
        &self,
        slo: &SloDefinition,
        verdict: &BurnVerdict,
        left: Option<BudgetLeft>,
    ) -> Observation {
        let rule = &verdict.rule;
        let window = rule.window_label();
        let short = human(rule.short_ms as f64 / 1000.0);
        let rate = |r: Option<f64>| {
            r.map_or_else(|| "no data".to_owned(), |r| format!("{}x", fmt_value(r)))
        };
        let severity = match rule.severity {
            BurnSeverity::Page => Severity::Critical,
            BurnSeverity::Ticket => Severity::Warning,
        };
        let budget = match left {
            Some(left) => {
                let exhaustion = match left.exhausted_in_ms {
                    Some(ms) if left.budget.remaining > 0.0 => {
                        format!("exhausted in {} at this rate", human(ms as f64 / 1000.0))
                    }
                    _ if left.budget.remaining <= 0.0 => "already exhausted".to_owned(),
                    _ => "not being spent".to_owned(),
                };
                format!(
                    "{:.1}% of the {} budget left, {exhaustion}",
                    left.budget.remaining * 100.0,
                    slo.period
                )
            }
            None => format!("budget of the {} period not worked out", slo.period),
        };
        Observation {
            alertname: SLO_BURN_RATE.to_owned(),
            labels: slo_burn_labels(slo, &window),
            value: verdict.long_rate.unwrap_or(0.0),
            rules: self.lifecycle(
                Threshold {
                    direction: Direction::Above,
                    fire: 1.0,
                    recover: 0.0,
                },
                0,
            ),
            severity: verdict.firing.then_some(severity),
            annotations: annotations(
                format!(
                    "SLO {} burns its error budget at {} over {window} ({} over {short}); {budget}",
                    slo.name,
                    rate(verdict.long_rate),
                    rate(verdict.short_rate)
                ),
                format!(
                    "Target {}: the budget burns too fast when both the {window} and the {short} window burn at {}x or more (the whole {} budget would last 1/{} of the period).",
                    fmt_value(slo.target),
                    fmt_value(rule.factor),
                    slo.period,
                    fmt_value(rule.factor)
                ),
            ),
            evidence: Evidence {
                threshold: Some(rule.factor),
                details: vec![budget],
                ..Evidence::default()
            },
            inhibits_node: false,
            judged: Some(f64::from(u8::from(verdict.firing))),
        }
    }

    /// Resolves an open burn-rate alert (`labels`) whose SLO is gone.
    pub fn slo_burn_gone(&self, labels: BTreeMap<String, String>) -> Observation {
        let slo = labels.get("slo").cloned().unwrap_or_default();
        Observation {
            alertname: SLO_BURN_RATE.to_owned(),
            labels,
            value: 0.0,
            rules: self.flap_rules(),
            severity: None,
            annotations: annotations(
                format!("SLO {slo} no longer exists"),
                "The SLO was deleted or its SLI no longer counts samples.".to_owned(),
            ),
            evidence: Evidence::default(),
            inhibits_node: false,
            judged: Some(0.0),
        }
    }

    /// How long a node or series may stay silent, given its usual interval.
    pub fn silence_limit_ms(&self, interval_ms: i64) -> i64 {
        (interval_ms * i64::from(self.intervals)).max(self.min_silence_ms)
    }

    fn silence(
        &self,
        alertname: &str,
        labels: BTreeMap<String, String>,
        (silent_ms, limit_ms): (i64, i64),
        severity: Severity,
        summary: String,
        inhibits_node: bool,
    ) -> Observation {
        let limit_s = limit_ms as f64 / 1000.0;
        let silent_s = silent_ms as f64 / 1000.0;
        Observation {
            alertname: alertname.to_owned(),
            labels,
            value: silent_s,
            rules: self.lifecycle(
                Threshold {
                    direction: Direction::Above,
                    fire: limit_s,
                    recover: limit_s / 2.0,
                },
                0,
            ),
            severity: (silent_s >= limit_s).then_some(severity),
            annotations: annotations(
                summary,
                format!(
                    "Nothing received for {}; the limit is {}.",
                    human(silent_s),
                    human(limit_s)
                ),
            ),
            evidence: Evidence {
                threshold: Some(limit_s),
                ..Evidence::default()
            },
            inhibits_node,
            judged: None,
        }
    }

    /// The built-in missing-data rule of every agent: silent for `silent_ms`.
    pub fn agent_silent(&self, node: &str, silent_ms: i64, interval_ms: i64) -> Observation {
        let limit = self.silence_limit_ms(interval_ms);
        self.silence(
            AGENT_SILENT,
            BTreeMap::from([("node".to_owned(), node.to_owned())]),
            (silent_ms, limit),
            Severity::Critical,
            format!(
                "agent on {node} has sent nothing for {}",
                human(silent_ms as f64 / 1000.0)
            ),
            true,
        )
    }

    /// The built-in agent-disconnected rule: no open stream for `closed_ms`.
    pub fn agent_disconnected(&self, node: &str, closed_ms: i64) -> Observation {
        let mut obs = self.silence(
            AGENT_DISCONNECTED,
            BTreeMap::from([("node".to_owned(), node.to_owned())]),
            (closed_ms, self.disconnected_after_ms),
            Severity::Error,
            format!(
                "agent on {node} disconnected {} ago",
                human(closed_ms as f64 / 1000.0)
            ),
            true,
        );
        obs.annotations.insert(
            "description".into(),
            format!(
                "The agent's stream has been closed for {}; it fires after {}.",
                human(closed_ms as f64 / 1000.0),
                human(self.disconnected_after_ms as f64 / 1000.0)
            ),
        );
        obs
    }

    /// Missing-series rule `index`: the series `labels` silent for `silent_ms`.
    pub fn series_missing(
        &self,
        index: usize,
        labels: &Labels,
        silent_ms: i64,
        interval_ms: i64,
    ) -> Observation {
        let (rule, _) = &self.missing_series[index];
        self.silence(
            &rule.name,
            identity(labels),
            (silent_ms, self.silence_limit_ms(interval_ms)),
            rule.severity,
            format!(
                "{} has reported nothing for {}",
                where_text(labels),
                human(silent_ms as f64 / 1000.0)
            ),
            false,
        )
    }
}

/// Seconds as people say them: "45s", "12m", "3h10m", "2d4h".
pub fn human(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "never".into();
    }
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => match (s % 3600) / 60 {
            0 => format!("{}h", s / 3600),
            m => format!("{}h{m}m", s / 3600),
        },
        _ => match (s % 86_400) / 3600 {
            0 => format!("{}d", s / 86_400),
            h => format!("{}d{h}h", s / 86_400),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(node: &str) -> Labels {
        Labels::new("node_cpu_usage_ratio", [("node".into(), node.into())]).unwrap()
    }

    #[test]
    fn threshold_observations_carry_level_thresholds_and_readable_text() {
        let rules = RuleSet::new(&AlertingConfig::default()).unwrap();
        let series = labels("nas");
        let matched = rules.sample_rules(&series);
        assert_eq!(matched, vec![SampleRule::Threshold(0)]);
        let obs = rules.threshold(0, &series, 0.9);
        assert_eq!(obs.alertname, "HighCpu");
        assert_eq!(obs.severity, Some(Severity::Error));
        assert_eq!(obs.evidence.threshold, Some(0.85));
        assert_eq!(obs.labels["node"], "nas");
        assert!(!obs.labels.contains_key("__name__"));
        let summary = &obs.annotations["summary"];
        assert!(
            summary.contains("0.9") && summary.contains("nas"),
            "{summary}"
        );
        assert_eq!(obs.rules.threshold.fire, 0.7, "fires from the lowest level");
        assert_eq!(rules.threshold(0, &series, 0.5).severity, None);
    }

    #[test]
    fn silence_limits_are_three_intervals_but_at_least_thirty_seconds() {
        let rules = RuleSet::new(&AlertingConfig::default()).unwrap();
        assert_eq!(rules.silence_limit_ms(1_000), 30_000);
        assert_eq!(rules.silence_limit_ms(60_000), 180_000);
        let obs = rules.agent_silent("nas", 31_000, 10_000);
        assert_eq!(obs.severity, Some(Severity::Critical));
        assert!(obs.inhibits_node);
        assert!(obs.annotations["summary"].contains("31s"));
        assert_eq!(rules.agent_silent("nas", 5_000, 10_000).severity, None);
    }

    #[test]
    fn forecasts_fire_inside_the_horizon_only() {
        let rules = RuleSet::new(&AlertingConfig::default()).unwrap();
        let disk = Labels::new(
            "node_filesystem_used_ratio",
            [("node".into(), "nas".into())],
        )
        .unwrap();
        // 1 % per hour from 0.80: reaches 0.95 in ~9 h from the newest sample.
        let filling: Vec<(i64, f64)> = (0..360)
            .map(|i| (i * 60_000, 0.80 + i as f64 / 6000.0))
            .collect();
        let obs = rules.forecast(0, &disk, &filling).unwrap();
        assert_eq!(obs.alertname, "DiskWillFill");
        assert_eq!(obs.severity, Some(Severity::Warning));
        assert!(
            obs.value > 8.0 * 3600.0 && obs.value < 10.0 * 3600.0,
            "{}",
            obs.value
        );
        let flat: Vec<(i64, f64)> = (0..360).map(|i| (i * 60_000, 0.5)).collect();
        assert_eq!(rules.forecast(0, &disk, &flat).unwrap().severity, None);
    }

    #[test]
    fn slo_burn_observations_page_or_ticket_and_say_what_is_left() {
        use crate::analytics::slo::{BurnRule, Tally, budget, burn_rules, judge};
        use crate::slo::{Origin, Sli};
        let rules = RuleSet::new(&AlertingConfig::default()).unwrap();
        let slo = SloDefinition::new(
            "probe:web:availability".parse().unwrap(),
            "{name=\"web\",node=\"nas\"}",
            Sli::Availability {
                source: crate::slo::AvailabilitySource::Probe,
                retries: 0,
            },
            Origin::Default,
        );
        let tally = |good: f64, bad: f64| Tally {
            good,
            bad,
            ..Tally::default()
        };
        let [page, _, ticket]: [BurnRule; 3] = burn_rules(30 * 86_400_000).try_into().unwrap();
        // 60 of 360 runs good over the hour, none of the last 30: 300/360 bad against the 5 %
        // allowed is 16.67x; 30/30 is 20x.
        let verdict = judge(&page, &tally(60.0, 300.0), &tally(0.0, 30.0), 0.95, 10.0);
        assert!(verdict.firing);
        // Budget of the period: 1000 runs, 300 bad against 50 allowed: overspent sixfold.
        let left = BudgetLeft {
            budget: budget(&tally(700.0, 300.0), 0.95),
            exhausted_in_ms: Some(0),
        };
        let obs = rules.slo_burn(&slo, &verdict, Some(left));
        assert_eq!(obs.alertname, SLO_BURN_RATE);
        assert_eq!(obs.severity, Some(Severity::Critical));
        assert_eq!(obs.judged, Some(1.0));
        assert_eq!(
            obs.labels,
            BTreeMap::from([
                ("node".to_owned(), "nas".to_owned()),
                ("slo".to_owned(), "probe:web:availability".to_owned()),
                ("window".to_owned(), "1h".to_owned()),
            ])
        );
        assert!(
            (obs.value - 300.0 / 360.0 / 0.05).abs() < 1e-9,
            "{}",
            obs.value
        );
        let summary = &obs.annotations["summary"];
        assert!(
            summary.contains("16.667x over 1h (20x over 5m)")
                && summary.contains("-500.0% of the 30d budget left, already exhausted"),
            "{summary}"
        );
        // A ticket is a warning; too few events never fire.
        let slow = judge(&ticket, &tally(90.0, 9.0), &tally(9.0, 1.0), 0.95, 10.0);
        assert!(slow.firing);
        let obs = rules.slo_burn(&slo, &slow, None);
        assert_eq!(
            (obs.severity, obs.labels["window"].as_str()),
            (Some(Severity::Warning), "3d")
        );
        assert!(obs.annotations["summary"].contains("not worked out"));
        let few = judge(&page, &tally(0.0, 5.0), &tally(0.0, 5.0), 0.95, 10.0);
        assert_eq!(rules.slo_burn(&slo, &few, None).severity, None);
        assert_eq!(rules.slo_burn(&slo, &few, None).judged, Some(0.0));
        let gone = rules.slo_burn_gone(obs.labels.clone());
        assert_eq!((gone.severity, gone.judged), (None, Some(0.0)));
    }

    #[test]
    fn latency_warnings_come_from_rules_on_probe_durations() {
        let rules: BTreeMap<String, Vec<super::super::rules::ThresholdRule>> = toml::from_str(
            r#"
            rules = [
              { name = "SlowWeb", selector = 'http_check_duration_seconds{name="web"}', direction = "above", warning = 0.8 },
              { name = "SlowerWeb", selector = "http_check_duration_seconds", direction = "above", warning = 0.5 },
              { name = "Cpu", selector = "node_cpu_usage_ratio", direction = "above", warning = 0.7 },
              { name = "Hits", selector = "redis_duration_seconds", direction = "below", warning = 0.1 },
            ]
            "#,
        )
        .unwrap();
        let config = AlertingConfig {
            default_rules: false,
            rules: rules["rules"].clone(),
            ..AlertingConfig::default()
        };
        assert_eq!(
            latency_warnings(&config),
            BTreeMap::from([("http_check_duration_seconds".to_owned(), 0.5)])
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(45.0), "45s");
        assert_eq!(human(720.0), "12m");
        assert_eq!(human(3.0 * 3600.0 + 600.0), "3h10m");
        assert_eq!(human(2.0 * 86_400.0 + 4.0 * 3600.0), "2d4h");
        assert_eq!(human(f64::INFINITY), "never");
        assert_eq!(fmt_value(0.8500000001), "0.85");
        assert_eq!(fmt_value(1234.56), "1235");
        assert_eq!(fmt_value(0.0001), "0.0001");
        assert_eq!(fmt_value(0.036123), "0.0361");
        assert_eq!(fmt_value(-0.00123456), "-0.00123");
        assert_eq!(fmt_value(0.0), "0");
    }
}

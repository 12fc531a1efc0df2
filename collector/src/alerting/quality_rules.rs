//! Quality rules (`[[alerting.quality_rules]]`) turned into observations for the book: each
//! node's newest data-quality scores (`crate::quality`) judged against the rule's threshold,
//! phrased with the failing checks and the recommendations. Pure: the service feeds it the
//! evaluation and the alerts the book holds; only scores that breach, or whose alert the book
//! holds, are written up.
//!
//! An open alert whose node is no longer evaluated (forgotten, or quality switched off)
//! resolves. Remote-written series have no node and are not judged here.

use super::book::{AlertRecord, Observation};
use super::config::{AlertingConfig, QualityRule, QualityScore};
use super::evaluate::{RuleError, fmt_value, node_matcher};
use super::lifecycle::{Direction, LifecycleRules, Threshold};
use super::notify::Evidence;
use super::rule_files::evaluate::is_open;
use crate::quality::{Dimension, NodeReport, QualityReport};
use hcmon_common::Matcher;
use std::collections::{BTreeMap, BTreeSet};

/// How far above its threshold a score must climb back before the alert resolves.
const RECOVERY_MARGIN: f64 = 0.01;

/// The overall score's default threshold: the lowest of the dimensions'.
const OVERALL_THRESHOLD: f64 = 0.90;

#[derive(Debug, Clone)]
struct CompiledQualityRule {
    rule: QualityRule,
    node: Option<Matcher>,
    for_ms: i64,
    flap: (i64, usize),
}

impl CompiledQualityRule {
    /// The scores judged, as (`dimension` label, score, threshold).
    fn scores(&self, report: &NodeReport) -> Vec<(&'static str, f64, f64)> {
        let threshold = |default: f64| self.rule.below.unwrap_or(default);
        match self.rule.score {
            QualityScore::Each => Dimension::ALL
                .iter()
                .map(|d| (d.as_str(), report.scores.get(*d), threshold(d.threshold())))
                .collect(),
            QualityScore::Overall => {
                vec![("overall", report.overall, threshold(OVERALL_THRESHOLD))]
            }
            one => one
                .dimension()
                .map(|d| vec![(d.as_str(), report.scores.get(d), threshold(d.threshold()))])
                .unwrap_or_default(),
        }
    }

    fn lifecycle(&self, below: f64) -> LifecycleRules {
        LifecycleRules {
            threshold: Threshold {
                direction: Direction::Below,
                fire: below,
                recover: (below + RECOVERY_MARGIN).min(1.0),
            },
            for_ms: self.for_ms,
            flap_window_ms: self.flap.0,
            flap_max_changes: self.flap.1,
        }
    }

    fn observe(&self, report: &NodeReport, dimension: &str, score: f64, below: f64) -> Observation {
        let node = &report.node;
        let checks: Vec<String> = report
            .checks
            .iter()
            .filter(|c| {
                c.failed > 0 && (dimension == "overall" || c.dimension.as_str() == dimension)
            })
            .map(|c| format!("{}: {} of {}", c.check, c.failed, c.of))
            .collect();
        let mut details = checks.clone();
        details.extend(report.recommendations.iter().cloned());
        let advice = report
            .recommendations
            .first()
            .cloned()
            .unwrap_or_else(|| "no single cause found".to_owned());
        Observation {
            alertname: self.rule.name.clone(),
            labels: BTreeMap::from([
                ("node".to_owned(), node.clone()),
                ("dimension".to_owned(), dimension.to_owned()),
            ]),
            value: score,
            rules: self.lifecycle(below),
            severity: (score < below).then_some(self.rule.severity),
            annotations: BTreeMap::from([
                (
                    "summary".to_owned(),
                    format!(
                        "node {node}: data {dimension} {} (below {}); {advice}",
                        fmt_value(score),
                        fmt_value(below)
                    ),
                ),
                (
                    "description".to_owned(),
                    format!(
                        "The {dimension} score of node {node}'s data over the quality window is {} \
                         and the rule fires below {}. Failing checks: {}. Anomaly verdicts on its \
                         incomplete or invalid series are low-confidence and do not page.",
                        fmt_value(score),
                        fmt_value(below),
                        if checks.is_empty() {
                            "none".to_owned()
                        } else {
                            checks.join(", ")
                        }
                    ),
                ),
            ]),
            evidence: Evidence {
                threshold: Some(below),
                details,
                ..Evidence::default()
            },
            inhibits_node: false,
            judged: None,
        }
    }

    /// Resolves an open alert whose node is no longer evaluated.
    fn gone(&self, labels: BTreeMap<String, String>) -> Observation {
        let node = labels.get("node").cloned().unwrap_or_default();
        let below = self.rule.below.unwrap_or(OVERALL_THRESHOLD);
        Observation {
            alertname: self.rule.name.clone(),
            labels,
            value: 1.0,
            rules: self.lifecycle(below),
            severity: None,
            annotations: BTreeMap::from([(
                "summary".to_owned(),
                format!("node {node}'s data quality is no longer evaluated"),
            )]),
            evidence: Evidence::default(),
            inhibits_node: false,
            judged: Some(1.0),
        }
    }
}

/// Every quality rule in force.
#[derive(Debug, Clone)]
pub struct QualityRules {
    rules: Vec<CompiledQualityRule>,
}

impl QualityRules {
    pub fn new(config: &AlertingConfig) -> Result<Self, RuleError> {
        let rules = config
            .all_quality_rules()
            .into_iter()
            .map(|rule| {
                let node = node_matcher(&rule.name, rule.node.as_deref())?;
                Ok(CompiledQualityRule {
                    for_ms: rule.r#for.as_millis() as i64,
                    flap: (
                        config.flap_window.as_millis() as i64,
                        config.flap_max_changes,
                    ),
                    rule,
                    node,
                })
            })
            .collect::<Result<_, RuleError>>()?;
        Ok(Self { rules })
    }

    /// Every rule on every agent node's scores in `report` that breaches its threshold or has
    /// an alert in `known` (the book's alerts, whatever their state), and a resolution for each
    /// open alert of these rules whose node is not in the report. A passing score with no
    /// alert behind it would change nothing in the book, so its text is not written.
    pub fn judge<'a>(
        &self,
        report: &QualityReport,
        known: impl IntoIterator<Item = &'a AlertRecord>,
    ) -> Vec<Observation> {
        let known: Vec<&AlertRecord> = known
            .into_iter()
            .filter(|a| self.rules.iter().any(|r| r.rule.name == a.alertname))
            .collect();
        let key = |a: &'a AlertRecord| {
            let label = |name: &str| a.labels.get(name).map_or("", String::as_str);
            (a.alertname.as_str(), label("node"), label("dimension"))
        };
        let held: BTreeSet<(&str, &str, &str)> = known.iter().map(|a| key(a)).collect();
        let mut out = Vec::new();
        let mut judged: BTreeSet<(&str, &str, &str)> = BTreeSet::new();
        for rule in &self.rules {
            for node in report.nodes.iter().filter(|n| !n.node.is_empty()) {
                if !rule.node.as_ref().is_none_or(|m| m.matches(&node.node)) {
                    continue;
                }
                for (dimension, score, below) in rule.scores(node) {
                    let at = (rule.rule.name.as_str(), node.node.as_str(), dimension);
                    if score <= below || held.contains(&at) {
                        out.push(rule.observe(node, dimension, score, below));
                    }
                    judged.insert(at);
                }
            }
        }
        for alert in known.into_iter().filter(|a| is_open(a)) {
            if judged.contains(&key(alert)) {
                continue;
            }
            if let Some(rule) = self.rules.iter().find(|r| r.rule.name == alert.alertname) {
                out.push(rule.gone(alert.labels.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::book::{AlertBook, BookConfig, BookState};
    use crate::alerting::lifecycle::StateKind;
    use crate::quality::Scores;

    const MIN: i64 = 60_000;
    const T0: i64 = 1_800_000_000_000;

    fn report(node: &str, completeness: f64) -> QualityReport {
        let scores = Scores {
            completeness,
            ..Scores::default()
        };
        QualityReport {
            evaluated_ms: T0,
            window_ms: 3_600_000,
            nodes: vec![NodeReport {
                node: node.into(),
                overall: scores.overall(),
                failing: scores.failing(),
                scores,
                checks: Vec::new(),
                series: 10,
                received: (completeness * 100.0) as u64,
                expected: 100,
                clock_offset_ms: None,
                lag_p99_ms: None,
                gaps: Vec::new(),
                worst: Vec::new(),
                low_confidence: Vec::new(),
                interval_ms: 10_000,
                missing_since_ms: None,
                recommendations: vec!["node nas: 20 % of expected samples missing".into()],
            }],
            low_confidence: Vec::new(),
        }
    }

    fn run(rules: &QualityRules, book: &mut AlertBook, report: &QualityReport, now: i64) {
        let known: Vec<AlertRecord> = book.alerts().cloned().collect();
        for obs in rules.judge(report, &known) {
            book.observe(obs, now);
        }
    }

    fn state(book: &AlertBook, dimension: &str) -> Option<StateKind> {
        book.alerts()
            .find(|a| a.alertname == "DataQualityLow" && a.labels["dimension"] == dimension)
            .map(|a| a.lifecycle.state.kind())
    }

    #[test]
    fn the_shipped_rule_fires_after_ten_minutes_below_a_threshold_and_resolves() {
        let rules = QualityRules::new(&AlertingConfig::default()).unwrap();
        let mut book = AlertBook::restore(
            BookConfig::bare(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            BookState::default(),
        );
        let low = report("nas", 0.8);
        run(&rules, &mut book, &low, T0);
        assert_eq!(state(&book, "completeness"), Some(StateKind::Pending));
        assert!(
            matches!(state(&book, "accuracy"), None | Some(StateKind::Inactive)),
            "a passing dimension opens nothing"
        );
        run(&rules, &mut book, &low, T0 + 11 * MIN);
        assert_eq!(state(&book, "completeness"), Some(StateKind::Firing));
        let alert = book
            .alerts()
            .find(|a| a.labels["dimension"] == "completeness")
            .unwrap();
        assert!(
            alert.annotations["summary"]
                .starts_with("node nas: data completeness 0.8 (below 0.95); node nas: 20 %"),
            "{:?}",
            alert.annotations
        );
        run(&rules, &mut book, &report("nas", 0.99), T0 + 12 * MIN);
        assert_eq!(state(&book, "completeness"), Some(StateKind::Resolved));
        // A node no longer evaluated resolves its alerts.
        run(&rules, &mut book, &low, T0 + 13 * MIN);
        run(&rules, &mut book, &QualityReport::default(), T0 + 14 * MIN);
        assert_ne!(state(&book, "completeness"), Some(StateKind::Pending));
    }

    #[test]
    fn healthy_scores_without_an_alert_are_not_written_up() {
        let rules = QualityRules::new(&AlertingConfig::default()).unwrap();
        assert!(
            rules.judge(&report("nas", 0.99), []).is_empty(),
            "nothing to open, nothing held"
        );
        let low = rules.judge(&report("nas", 0.8), []);
        assert_eq!(low.len(), 1, "{low:?}");
        assert_eq!(low[0].labels["dimension"], "completeness");
    }
}

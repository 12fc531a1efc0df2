//! Node rules (`[[alerting.node_rules]]`) turned into observations for the book: each node's
//! newest verdict from its multivariate model ([`crate::node_forest`]) judged against the rule's
//! `min_score`, phrased with every feature's value and share of the anomaly. Pure: the service
//! feeds it the verdicts, the alerts still open and the time.
//!
//! A verdict only counts while its minute is recent ([`FRESH_FOR_MS`]); an open alert whose node
//! has no recent verdict (the node stopped reporting, was forgotten, or the models are off)
//! resolves instead of firing on.

use super::book::{AlertRecord, Observation};
use super::config::{AlertingConfig, NODE_RECOVERY_MARGIN, NodeRule};
use super::evaluate::{RuleError, fmt_value, human, node_matcher};
use super::lifecycle::{Direction, LifecycleRules, Threshold};
use super::notify::Evidence;
use crate::node_forest::{NodeVerdict, method_name};
use hcmon_common::Matcher;
use std::collections::{BTreeMap, BTreeSet};

/// A verdict on a minute that started longer ago than this no longer counts. Scoring runs
/// every minute on the newest complete minute, so a reporting node's verdict is one to three
/// minutes old.
pub const FRESH_FOR_MS: i64 = 5 * 60_000;

/// Features the summary names; the evidence lists them all.
const SUMMARY_FEATURES: usize = 3;

#[derive(Debug, Clone)]
struct CompiledNodeRule {
    rule: NodeRule,
    node: Option<Matcher>,
    lifecycle: LifecycleRules,
}

impl CompiledNodeRule {
    fn judges(&self, node: &str) -> bool {
        self.node.as_ref().is_none_or(|m| m.matches(node))
    }

    /// The rule judging the fresh `verdict` on `node`: the lifecycle sees the score.
    fn observe(&self, node: &str, verdict: &NodeVerdict, now_ms: i64) -> Observation {
        let rule = &self.rule;
        let mut features = verdict.features.clone();
        features.sort_by(|a, b| b.2.total_cmp(&a.2));
        let shares: Vec<String> = features
            .iter()
            .map(|&(name, value, share)| {
                format!("{name}={} ({:.0} %)", fmt_value(value), share * 100.0)
            })
            .collect();
        let model = format!(
            "{} model trained on {} minutes, {} ago",
            method_name(verdict.method),
            verdict.training_rows,
            human((now_ms - verdict.trained_at_ms) as f64 / 1000.0)
        );
        let mut details = shares.clone();
        details.push(model.clone());
        Observation {
            alertname: rule.name.clone(),
            labels: node_labels(node),
            value: verdict.score,
            rules: self.lifecycle,
            severity: (verdict.score >= rule.min_score).then_some(rule.severity),
            annotations: annotations(
                format!(
                    "node {node} is unlike its usual self: score {} (fires at {}); {}",
                    fmt_value(verdict.score),
                    fmt_value(rule.min_score),
                    shares
                        .iter()
                        .take(SUMMARY_FEATURES)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "The node's minute that started {} ago scores {} on its {model}; the \
                     alert fires at {} and resolves at {}. Each feature's value and share of \
                     the anomaly, largest first: {}.",
                    human((now_ms - verdict.minute_ms) as f64 / 1000.0),
                    fmt_value(verdict.score),
                    fmt_value(rule.min_score),
                    fmt_value(self.lifecycle.threshold.recover),
                    shares.join(", ")
                ),
            ),
            evidence: Evidence {
                threshold: Some(rule.min_score),
                details,
                ..Evidence::default()
            },
            inhibits_node: false,
            judged: None,
        }
    }

    /// Resolves the open alert `labels` whose node has no fresh verdict; `last` is the stale
    /// one, if any.
    fn gone(
        &self,
        labels: BTreeMap<String, String>,
        last: Option<&NodeVerdict>,
        now_ms: i64,
    ) -> Observation {
        let node = labels.get("node").cloned().unwrap_or_default();
        let why = match last {
            Some(v) => format!(
                "its newest verdict is on the minute that started {} ago",
                human((now_ms - v.minute_ms) as f64 / 1000.0)
            ),
            None => "it has no verdict".to_owned(),
        };
        Observation {
            alertname: self.rule.name.clone(),
            labels,
            value: last.map_or(0.0, |v| v.score),
            rules: self.lifecycle,
            severity: None,
            annotations: annotations(
                format!("node {node} is no longer judged: {why}"),
                format!(
                    "A verdict counts for {}; the node stopped reporting, was forgotten, or \
                     its model is not trained.",
                    human(FRESH_FOR_MS as f64 / 1000.0)
                ),
            ),
            evidence: Evidence::default(),
            inhibits_node: false,
            judged: Some(0.0),
        }
    }
}

fn node_labels(node: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("node".to_owned(), node.to_owned())])
}

fn annotations(summary: String, description: String) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("summary".to_owned(), summary),
        ("description".to_owned(), description),
    ])
}

/// Every node rule in force.
#[derive(Debug, Clone)]
pub struct NodeRules {
    rules: Vec<CompiledNodeRule>,
}

impl NodeRules {
    pub fn new(config: &AlertingConfig) -> Result<Self, RuleError> {
        let rules = config
            .all_node_rules()
            .into_iter()
            .map(|rule| {
                let node = node_matcher(&rule.name, rule.node.as_deref())?;
                let lifecycle = LifecycleRules {
                    threshold: Threshold {
                        direction: Direction::Above,
                        fire: rule.min_score,
                        recover: rule.min_score - NODE_RECOVERY_MARGIN,
                    },
                    for_ms: rule.r#for.as_millis() as i64,
                    flap_window_ms: config.flap_window.as_millis() as i64,
                    flap_max_changes: config.flap_max_changes,
                };
                Ok(CompiledNodeRule {
                    rule,
                    node,
                    lifecycle,
                })
            })
            .collect::<Result<_, RuleError>>()?;
        Ok(Self { rules })
    }

    /// Every rule on every node's fresh verdict, and a resolution for each `open` alert of
    /// these rules whose node has none. A node without any verdict is given until
    /// [`FRESH_FOR_MS`] after `watching_since_ms` (the models train and score after a restart)
    /// before its alert resolves.
    pub fn judge<'a>(
        &self,
        verdicts: &BTreeMap<String, NodeVerdict>,
        open: impl IntoIterator<Item = &'a AlertRecord>,
        now_ms: i64,
        watching_since_ms: i64,
    ) -> Vec<Observation> {
        let mut out = Vec::new();
        let mut judged: BTreeSet<(&str, &str)> = BTreeSet::new();
        for rule in &self.rules {
            for (node, verdict) in verdicts {
                if rule.judges(node) && now_ms - verdict.minute_ms <= FRESH_FOR_MS {
                    out.push(rule.observe(node, verdict, now_ms));
                    judged.insert((&rule.rule.name, node));
                }
            }
        }
        let starting = now_ms - watching_since_ms < FRESH_FOR_MS;
        for alert in open {
            let Some(rule) = self.rules.iter().find(|r| r.rule.name == alert.alertname) else {
                continue;
            };
            let node = alert.labels.get("node").map_or("", String::as_str);
            if judged.contains(&(alert.alertname.as_str(), node)) {
                continue;
            }
            let last = verdicts.get(node);
            if last.is_none() && starting {
                continue;
            }
            out.push(rule.gone(alert.labels.clone(), last, now_ms));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::book::{AlertBook, BookConfig, BookState};
    use crate::alerting::lifecycle::StateKind;
    use crate::alerting::policy::Severity;
    use crate::analytics::forest::NodeModelMethod;

    const MIN: i64 = 60_000;
    /// A clock far from 0, so "no verdict since start" is not confused with the epoch.
    const T0: i64 = 1_800_000_000_000;

    fn verdict(minute_ms: i64, score: f64) -> NodeVerdict {
        NodeVerdict {
            minute_ms,
            score,
            is_anomaly: score > 0.6,
            features: vec![
                ("node_network_receive_bytes_total", 1000.0, 0.25),
                ("node_cpu_usage_ratio", 0.97, 0.62),
                ("node_memory_used_ratio", 0.5, 0.13),
            ],
            trained_at_ms: T0 - 120 * MIN,
            training_rows: 1440,
            method: NodeModelMethod::IsolationForest,
        }
    }

    fn config(text: &str) -> AlertingConfig {
        let config: AlertingConfig = toml::from_str(text).unwrap();
        config.validate().unwrap();
        config
    }

    fn book() -> AlertBook {
        AlertBook::restore(
            BookConfig::bare(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            BookState::default(),
        )
    }

    /// One round: the rules judge `verdicts` against the book's open alerts at `now`.
    fn round(
        rules: &NodeRules,
        book: &mut AlertBook,
        verdicts: &[(&str, NodeVerdict)],
        now: i64,
    ) -> Vec<Observation> {
        let verdicts: BTreeMap<String, NodeVerdict> = verdicts
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        let open: Vec<AlertRecord> = book
            .alerts()
            .filter(|a| super::super::rule_files::evaluate::is_open(a))
            .cloned()
            .collect();
        let observations = rules.judge(&verdicts, &open, now, T0);
        for obs in observations.clone() {
            book.observe(obs, now);
        }
        observations
    }

    fn state(book: &AlertBook, name: &str, node: &str) -> Option<StateKind> {
        book.alerts()
            .find(|a| a.alertname == name && a.labels["node"] == node)
            .map(|a| a.lifecycle.state.kind())
    }

    #[test]
    fn the_shipped_rule_fires_with_each_feature_and_its_share_largest_first() {
        let rules = NodeRules::new(&AlertingConfig::default()).unwrap();
        let now = T0 + 10 * MIN;
        let obs = &round(
            &rules,
            &mut book(),
            &[("nas", verdict(now - 2 * MIN, 0.83))],
            now,
        )[0];
        assert_eq!(obs.alertname, "NodeAnomaly");
        assert_eq!(obs.labels, node_labels("nas"));
        assert_eq!(obs.severity, Some(Severity::Warning));
        assert_eq!(obs.value, 0.83);
        assert_eq!(obs.evidence.threshold, Some(0.7));
        assert_eq!(
            obs.evidence.details,
            [
                "node_cpu_usage_ratio=0.97 (62 %)",
                "node_network_receive_bytes_total=1000 (25 %)",
                "node_memory_used_ratio=0.5 (13 %)",
                "isolation_forest model trained on 1440 minutes, 2h10m ago",
            ]
        );
        let summary = &obs.annotations["summary"];
        assert!(
            summary.contains("node nas")
                && summary.contains("score 0.83 (fires at 0.7)")
                && summary.contains("node_cpu_usage_ratio=0.97 (62 %), node_network"),
            "{summary}"
        );
        assert!(
            obs.annotations["description"].contains("resolves at 0.65"),
            "{}",
            obs.annotations["description"]
        );
    }

    #[test]
    fn an_alert_resolves_only_below_the_recovery_margin() {
        let rules = NodeRules::new(&AlertingConfig::default()).unwrap();
        let mut book = book();
        let mut now = T0 + 10 * MIN;
        for (score, expected) in [
            (0.69, None),
            (0.72, Some(StateKind::Firing)),
            (0.67, Some(StateKind::Firing)),
            (0.64, Some(StateKind::Resolved)),
        ] {
            round(
                &rules,
                &mut book,
                &[("nas", verdict(now - MIN, score))],
                now,
            );
            assert_eq!(
                state(&book, "NodeAnomaly", "nas").filter(|s| *s != StateKind::Inactive),
                expected,
                "score {score}"
            );
            now += MIN;
        }
    }

    #[test]
    fn configured_rules_pick_nodes_score_severity_and_pending_time() {
        let rules = NodeRules::new(&config(
            r#"
            default_rules = false
            [[node_rules]]
            name = "DbUnusual"
            node = "db-.*"
            min_score = 0.9
            for = "2m"
            severity = "error"
            "#,
        ))
        .unwrap();
        let mut book = book();
        let now = T0 + 10 * MIN;
        let verdicts = [
            ("db-1", verdict(now - MIN, 0.95)),
            ("nas", verdict(now - MIN, 0.99)),
        ];
        let observed = round(&rules, &mut book, &verdicts, now);
        assert_eq!(observed.len(), 1, "only db nodes are judged");
        assert_eq!(observed[0].severity, Some(Severity::Error));
        assert_eq!(state(&book, "DbUnusual", "db-1"), Some(StateKind::Pending));
        round(&rules, &mut book, &verdicts, now + 2 * MIN);
        assert_eq!(state(&book, "DbUnusual", "db-1"), Some(StateKind::Firing));
    }

    #[test]
    fn stale_or_missing_verdicts_resolve_open_alerts() {
        let rules = NodeRules::new(&AlertingConfig::default()).unwrap();
        let mut book = book();
        let now = T0 + 10 * MIN;
        let firing = verdict(now - MIN, 0.9);
        round(
            &rules,
            &mut book,
            &[("nas", firing.clone()), ("db", firing.clone())],
            now,
        );
        assert_eq!(state(&book, "NodeAnomaly", "nas"), Some(StateKind::Firing));
        // nas stopped reporting: its verdict ages past five minutes. db was forgotten: gone.
        let later = now + 5 * MIN;
        let observed = round(&rules, &mut book, &[("nas", firing)], later);
        assert_eq!(
            state(&book, "NodeAnomaly", "nas"),
            Some(StateKind::Resolved)
        );
        assert_eq!(state(&book, "NodeAnomaly", "db"), Some(StateKind::Resolved));
        let nas = observed.iter().find(|o| o.labels["node"] == "nas").unwrap();
        assert!(
            nas.annotations["summary"].contains("started 6m ago"),
            "{}",
            nas.annotations["summary"]
        );
        // Nothing left open, nothing more to say.
        assert!(round(&rules, &mut book, &[], later + MIN).is_empty());
    }

    #[test]
    fn after_a_restart_a_firing_alert_waits_for_its_node_to_be_scored() {
        let rules = NodeRules::new(&AlertingConfig::default()).unwrap();
        let mut book = book();
        round(&rules, &mut book, &[("nas", verdict(T0 - MIN, 0.9))], T0);
        // The models have not scored yet: no verdicts at all, within five minutes of start.
        assert!(round(&rules, &mut book, &[], T0 + 4 * MIN).is_empty());
        assert_eq!(state(&book, "NodeAnomaly", "nas"), Some(StateKind::Firing));
        round(&rules, &mut book, &[], T0 + 5 * MIN);
        assert_eq!(
            state(&book, "NodeAnomaly", "nas"),
            Some(StateKind::Resolved)
        );
    }

    #[test]
    fn node_rule_mistakes_name_their_field() {
        let key = |text: &str| {
            toml::from_str::<AlertingConfig>(text)
                .unwrap()
                .validate()
                .unwrap_err()
                .key
        };
        assert_eq!(
            key("[[node_rules]]\nname = \"Odd\"\nmin_score = 0.4\n"),
            "alerting.node_rules[0].min_score"
        );
        assert_eq!(
            key("[[node_rules]]\nname = \"Odd\"\nmin_score = 1.5\n"),
            "alerting.node_rules[0].min_score"
        );
        assert_eq!(
            key("[[node_rules]]\nname = \"Odd\"\nnode = \"db-(\"\n"),
            "alerting.node_rules[0].node"
        );
        assert_eq!(
            key("[[node_rules]]\nname = \"odd rule\"\n"),
            "alerting.node_rules[0].name"
        );
        let err = toml::from_str::<AlertingConfig>("[[node_rules]]\nname = \"A\"\nscore = 0.8\n")
            .unwrap_err();
        assert!(err.to_string().contains("score"), "{err}");
        let replaced = config("[[node_rules]]\nname = \"NodeAnomaly\"\nmin_score = 0.9\n");
        let rules = replaced.all_node_rules();
        assert_eq!((rules.len(), rules[0].min_score), (1, 0.9));
        assert!(config("default_rules = false").all_node_rules().is_empty());
    }
}

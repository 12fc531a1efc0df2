//! One evaluation of a rule-file rule turned into observations for the book. Pure: the
//! service evaluates the query and hands over its result with the rule's alerts the book holds
//! open.
//!
//! The book's lifecycle does the rest, judging 1 (in the result) or 0 (gone): pending until
//! `for` has passed, then firing; a pending alert that leaves the result goes back to inactive,
//! a firing one resolves. Alerts that left the result are found in the book, not in memory, so
//! an alert restored after a restart still resolves when its series is gone.

use super::template::{self, Data};
use super::{FileRule, RuleGroup, severity_of};
use crate::alerting::book::{AlertRecord, Observation};
use crate::alerting::ids::AlertId;
use crate::alerting::lifecycle::{AlertState, LifecycleRules};
use crate::alerting::notify::Evidence;
use crate::query::{Expr, Metric, QueryError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// A rule-file group, compiled.
#[derive(Debug, Clone)]
pub struct CompiledGroup {
    pub file: PathBuf,
    pub name: String,
    /// The group's own interval, or the alerting evaluation interval.
    pub interval: Duration,
    pub rules: Vec<CompiledRule>,
}

/// A rule-file rule with its query parsed.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub rule: FileRule,
    pub expr: Expr,
}

impl CompiledGroup {
    /// Parses the group's queries; the error names the rule.
    pub fn compile(
        group: &RuleGroup,
        default_interval: Duration,
    ) -> Result<Self, (String, QueryError)> {
        let rules = group
            .rules
            .iter()
            .map(|rule| {
                let expr = crate::query::parse(&rule.expr).map_err(|e| (rule.alert.clone(), e))?;
                Ok(CompiledRule {
                    rule: rule.clone(),
                    expr,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            file: group.file.clone(),
            name: group.name.clone(),
            interval: group.interval.unwrap_or(default_interval),
            rules,
        })
    }
}

/// When each firing alert of one rule first went missing from its result, while
/// `keep_firing_for` keeps it firing.
#[derive(Debug, Default)]
pub struct KeptFiring(BTreeMap<AlertId, i64>);

/// Pending, firing or acknowledged: an alert a rule must judge again when its series is gone.
pub fn is_open(record: &AlertRecord) -> bool {
    matches!(
        record.lifecycle.state,
        AlertState::Pending { .. } | AlertState::Firing { .. } | AlertState::Acknowledged { .. }
    )
}

impl CompiledRule {
    /// The observations of one evaluation at `now_ms`: one per element of `result`, and one per
    /// alert of this rule the book holds open (`open`) that `result` no longer has. `flap`
    /// carries the flap settings.
    pub fn observe(
        &self,
        flap: LifecycleRules,
        result: Vec<(Metric, f64)>,
        open: &[&AlertRecord],
        kept: &mut KeptFiring,
        now_ms: i64,
    ) -> Vec<Observation> {
        let rules = LifecycleRules {
            for_ms: self.rule.hold.as_millis() as i64,
            ..flap
        };
        let mut present = BTreeSet::new();
        let mut out = Vec::new();
        for (series, value) in result {
            let obs = self.instance(&series, value, rules);
            let id = AlertId::of(&obs.alertname, &obs.labels);
            if !present.insert(id.clone()) {
                tracing::warn!(
                    alert = %self.rule.alert,
                    labels = ?obs.labels,
                    "two series of a rule's result have the same labels once __name__ is dropped and the rule's labels added; the first is judged"
                );
                continue;
            }
            kept.0.remove(&id);
            out.push(obs);
        }
        let keep_ms = self.rule.keep_firing_for.as_millis() as i64;
        for record in open.iter().filter(|r| !present.contains(&r.id)) {
            let keep = keep_ms > 0 && record.lifecycle.state.is_active() && {
                let since = *kept.0.entry(record.id.clone()).or_insert(now_ms);
                now_ms - since < keep_ms
            };
            if !keep {
                kept.0.remove(&record.id);
            }
            out.push(Observation {
                alertname: record.alertname.clone(),
                labels: record.labels.clone(),
                value: record.value,
                rules,
                severity: None,
                annotations: record.annotations.clone(),
                evidence: record.evidence.clone(),
                inhibits_node: false,
                judged: Some(f64::from(u8::from(keep))),
            });
        }
        let open_ids: BTreeSet<&AlertId> = open.iter().map(|r| &r.id).collect();
        kept.0.retain(|id, _| open_ids.contains(id));
        out
    }

    /// The alert of one result element: its labels, severity and rendered annotations.
    fn instance(&self, series: &Metric, value: f64, rules: LifecycleRules) -> Observation {
        let data = Data {
            labels: series,
            value,
        };
        let mut labels = series.clone();
        labels.remove(hcmon_common::METRIC_NAME_LABEL);
        for (name, text) in &self.rule.labels {
            labels.insert(name.clone(), template::render(text, &data));
        }
        labels.remove("alertname");
        // The book shows hcmon's level as `severity`; the written one chose it.
        let severity = severity_of(labels.remove("severity").as_deref());
        Observation {
            alertname: self.rule.alert.clone(),
            labels,
            value,
            rules,
            severity: Some(severity),
            annotations: self
                .rule
                .annotations
                .iter()
                .map(|(name, text)| (name.clone(), template::render(text, &data)))
                .collect(),
            evidence: Evidence {
                details: vec![format!("expr: {}", self.rule.expr)],
                ..Evidence::default()
            },
            inhibits_node: false,
            judged: Some(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::book::{AlertBook, BookConfig, BookState};
    use crate::alerting::lifecycle::{Direction, Threshold};
    use crate::alerting::policy::Severity;
    use crate::catalog::{SeriesCaps, SeriesCatalog, SeriesDefinition};
    use crate::query::{StoreSource, Value};
    use crate::storage::{MemoryKv, MetricKind, Sample, StorageConfig, Tsdb};
    use hcmon_common::Labels;
    use std::path::Path;
    use std::sync::Arc;

    const S: i64 = 1000;
    /// Where the stored samples' times start: a UTC midnight.
    const T0: i64 = 1_699_920_000_000;

    /// A series with its kind and samples.
    type Stored = (Labels, MetricKind, Vec<(i64, f64)>);

    /// A store in memory holding `series`, for the query engine.
    fn store(series: Vec<Stored>) -> StoreSource {
        let tsdb = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
            .unwrap()
            .tsdb;
        let catalog = SeriesCatalog::new(vec![]);
        let definitions: Vec<SeriesDefinition> = series
            .iter()
            .map(|(labels, kind, _)| SeriesDefinition {
                labels: labels.clone(),
                kind: *kind,
                help: String::new(),
            })
            .collect();
        let caps = SeriesCaps {
            per_node: usize::MAX,
            total: usize::MAX,
        };
        let ids = catalog.resolve(&tsdb, &definitions, caps).unwrap();
        for (id, (_, _, samples)) in ids.iter().zip(&series) {
            let samples: Vec<Sample> = samples
                .iter()
                .map(|&(timestamp_ms, value)| Sample {
                    series: *id,
                    timestamp_ms: T0 + timestamp_ms,
                    value,
                })
                .collect();
            tsdb.append(None, &samples).unwrap();
        }
        StoreSource {
            tsdb: Arc::new(tsdb),
            catalog: Arc::new(catalog),
        }
    }

    fn rule_file(text: &str) -> CompiledRule {
        let groups = super::super::parse::parse(Path::new("t.yml"), text).unwrap();
        let group = CompiledGroup::compile(&groups[0], Duration::from_secs(15)).unwrap();
        group.rules[0].clone()
    }

    fn book() -> AlertBook {
        AlertBook::restore(
            BookConfig::bare(),
            vec![],
            vec![],
            vec![],
            BookState::default(),
        )
    }

    fn flap() -> LifecycleRules {
        LifecycleRules {
            threshold: Threshold {
                direction: Direction::Above,
                fire: 1.0,
                recover: 0.0,
            },
            for_ms: 0,
            flap_window_ms: 30 * 60 * S,
            flap_max_changes: 6,
        }
    }

    /// Evaluates `rule` over `source` at `now` and feeds the book, as the service does.
    fn round(
        rule: &CompiledRule,
        source: &StoreSource,
        book: &mut AlertBook,
        kept: &mut KeptFiring,
        now: i64,
    ) {
        let (value, _) =
            crate::query::evaluate(source, &rule.expr, T0 + now, T0 + now, 1000).unwrap();
        let open: Vec<AlertRecord> = book
            .alerts()
            .filter(|a| a.alertname == rule.rule.alert && is_open(a))
            .cloned()
            .collect();
        let open: Vec<&AlertRecord> = open.iter().collect();
        for obs in rule.observe(flap(), value.into_samples(), &open, kept, now) {
            book.observe(obs, now);
        }
    }

    fn states(book: &AlertBook) -> Vec<(String, String, &'static str)> {
        book.alerts()
            .map(|a| {
                let node = a.labels.get("node").cloned().unwrap_or_default();
                (a.alertname.clone(), node, a.lifecycle.state.name())
            })
            .collect()
    }

    fn up(node: &str, samples: Vec<(i64, f64)>) -> Stored {
        let labels = Labels::new(
            "up",
            [
                ("node".to_owned(), node.to_owned()),
                ("job".to_owned(), "node".to_owned()),
            ],
        )
        .unwrap();
        (labels, MetricKind::Gauge, samples)
    }

    #[test]
    fn up_eq_zero_is_pending_then_firing_then_resolved() {
        let rule = rule_file(
            r#"
groups:
- name: hosts
  rules:
  - alert: NodeDown
    expr: up == 0
    for: 30s
    labels:
      severity: critical
      team: "{{ $labels.job }}-ops"
    annotations:
      summary: "{{ $labels.node }} is down ({{ $value }})"
"#,
        );
        // nas is down from 100 s to 200 s; pi stays up.
        let samples = |from: i64, to: i64, f: fn(i64) -> f64| {
            (from..to)
                .step_by(10)
                .map(|t| (t * S, f(t)))
                .collect::<Vec<_>>()
        };
        let source = store(vec![
            up(
                "nas",
                samples(0, 400, |t| if (100..200).contains(&t) { 0.0 } else { 1.0 }),
            ),
            up("pi", samples(0, 400, |_| 1.0)),
        ]);
        let mut book = book();
        let mut kept = KeptFiring::default();
        round(&rule, &source, &mut book, &mut kept, 90 * S);
        assert!(states(&book).is_empty());
        round(&rule, &source, &mut book, &mut kept, 105 * S);
        assert_eq!(
            states(&book),
            [("NodeDown".into(), "nas".into(), "pending")]
        );
        round(&rule, &source, &mut book, &mut kept, 120 * S);
        assert_eq!(states(&book)[0].2, "pending", "20 s < for");
        round(&rule, &source, &mut book, &mut kept, 140 * S);
        assert_eq!(states(&book)[0].2, "firing");
        let alert = book.alerts().next().unwrap();
        assert_eq!(alert.severity, Severity::Critical);
        assert_eq!(
            alert.labels["team"], "node-ops",
            "rule labels are templates"
        );
        assert_eq!(alert.labels["job"], "node");
        assert!(!alert.labels.contains_key("__name__"));
        assert!(!alert.labels.contains_key("severity"), "the book's level");
        assert_eq!(alert.full_labels()["severity"], "critical");
        assert_eq!(alert.annotations["summary"], "nas is down (0)");
        round(&rule, &source, &mut book, &mut kept, 210 * S);
        assert_eq!(states(&book)[0].2, "resolved", "gone from the result");
    }

    #[test]
    fn a_threshold_over_rate_fires_per_series_and_keep_firing_for_holds_it() {
        let rule = rule_file(
            r#"
groups:
- name: traffic
  rules:
  - alert: ErrorsHigh
    expr: rate(errors_total[1m]) > 1
    keep_firing_for: 1m
    labels:
      severity: warning
    annotations:
      description: "{{ $labels.node }}: {{ printf \"%.1f\" $value }}/s"
"#,
        );
        let counter = |node: &str, per_s: fn(i64) -> f64| {
            let labels =
                Labels::new("errors_total", [("node".to_owned(), node.to_owned())]).unwrap();
            let mut total = 0.0;
            let samples = (0..600)
                .step_by(10)
                .map(|t| {
                    total += 10.0 * per_s(t);
                    (t * S, total)
                })
                .collect();
            (labels, MetricKind::Counter, samples)
        };
        // nas errs at 3/s from 120 s to 300 s; pi at 0.5/s throughout.
        let source = store(vec![
            counter("nas", |t| if (120..300).contains(&t) { 3.0 } else { 0.0 }),
            counter("pi", |_| 0.5),
        ]);
        let mut book = book();
        let mut kept = KeptFiring::default();
        round(&rule, &source, &mut book, &mut kept, 100 * S);
        assert!(states(&book).is_empty());
        round(&rule, &source, &mut book, &mut kept, 240 * S);
        assert_eq!(
            states(&book),
            [("ErrorsHigh".into(), "nas".into(), "firing")]
        );
        let alert = book.alerts().next().unwrap();
        assert_eq!(alert.annotations["description"], "nas: 3.0/s");
        assert_eq!(alert.severity, Severity::Warning);
        // The rate falls under 1 by 400 s; keep_firing_for holds it a minute more.
        round(&rule, &source, &mut book, &mut kept, 400 * S);
        assert_eq!(states(&book)[0].2, "firing", "kept firing");
        round(&rule, &source, &mut book, &mut kept, 440 * S);
        assert_eq!(states(&book)[0].2, "firing", "40 s < keep_firing_for");
        round(&rule, &source, &mut book, &mut kept, 460 * S);
        assert_eq!(states(&book)[0].2, "resolved");
        assert!(kept.0.is_empty());
    }

    #[test]
    fn an_alert_restored_after_a_restart_resolves_when_its_series_is_gone() {
        let rule = rule_file("groups:\n- name: g\n  rules:\n  - alert: Up\n    expr: up == 1\n");
        let source = store(vec![up("nas", vec![(0, 1.0), (600 * S, 0.0)])]);
        let mut before = book();
        round(
            &rule,
            &source,
            &mut before,
            &mut KeptFiring::default(),
            10 * S,
        );
        assert_eq!(states(&before)[0].2, "firing");
        let alerts: Vec<AlertRecord> = before.alerts().cloned().collect();
        let mut after = AlertBook::restore(
            BookConfig::bare(),
            alerts,
            vec![],
            vec![],
            BookState::default(),
        );
        round(
            &rule,
            &source,
            &mut after,
            &mut KeptFiring::default(),
            610 * S,
        );
        assert_eq!(states(&after)[0].2, "resolved");
    }

    #[test]
    fn a_scalar_result_is_one_unlabelled_alert() {
        let rule =
            rule_file("groups:\n- name: g\n  rules:\n  - alert: Always\n    expr: vector(1)\n");
        let value = Value::Scalar(vec![(0, 1.0)]);
        let obs = rule.observe(
            flap(),
            value.into_samples(),
            &[],
            &mut KeptFiring::default(),
            0,
        );
        assert_eq!(obs.len(), 1);
        assert!(obs[0].labels.is_empty());
        assert_eq!(obs[0].severity, Some(Severity::Warning));
    }
}

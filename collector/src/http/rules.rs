//! `GET /api/v1/rules`: the collector's alert rules in Prometheus' shape, one group per kind
//! of TOML rule (thresholds, anomalies, forecasts, missing data, node models) and the groups of the rule
//! files as the files name them, each rule with its open alerts. hcmon has no recording rules.

use super::ApiState;
use super::error::{ApiError, Feature, success};
use super::params::QueryParams;
use crate::alerting::config::AlertingConfig;
use crate::alerting::config::{AGENT_DISCONNECTED, AGENT_SILENT};
use crate::alerting::evaluate::fmt_value;
use crate::alerting::lifecycle::{AlertState, Direction};
use crate::alerting::time::rfc3339_millis;
use crate::alerting::view::AlertView;
use crate::api::prometheus::{AlertingRule, RuleAlert, RuleGroup, RuleGroups};
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use std::collections::BTreeMap;
use std::time::Duration;

/// How Go writes a time never set: hcmon judges rules as samples arrive, not in timed rounds.
const NEVER: &str = "0001-01-01T00:00:00Z";

/// One rule as `/api/v1/rules` lists it.
#[derive(Debug, Clone, PartialEq)]
struct RuleSummary {
    /// The `alertname` of its alerts.
    name: String,
    /// What it watches, phrased as PromQL where it can be.
    query: String,
    /// `for`.
    hold: Duration,
    keep_firing_for: Duration,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// A group of rules as `/api/v1/rules` lists it.
#[derive(Debug, Clone, PartialEq)]
struct GroupSummary {
    name: String,
    /// Where its rules are written: a config section or a rule file.
    file: String,
    interval: Duration,
    rules: Vec<RuleSummary>,
}

/// The alert rules in force, grouped as `/api/v1/rules` shows them: read from the config once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertRules {
    groups: Vec<GroupSummary>,
}

impl AlertRules {
    pub fn new(config: &AlertingConfig) -> Self {
        let rule = |name: &str, query: String, hold: Duration| RuleSummary {
            name: name.to_owned(),
            query,
            hold,
            keep_firing_for: Duration::ZERO,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        };
        let thresholds = config
            .threshold_rules()
            .into_iter()
            .map(|r| {
                let op = match r.direction {
                    Direction::Above => ">",
                    Direction::Below => "<",
                };
                // The first level it fires at.
                let query = match [r.warning, r.error, r.critical]
                    .into_iter()
                    .flatten()
                    .next()
                {
                    Some(level) => format!("{} {op} {}", r.selector, fmt_value(level)),
                    None => r.selector.clone(),
                };
                rule(&r.name, query, r.r#for)
            })
            .collect();
        let anomalies = config
            .anomaly_rules
            .iter()
            .map(|r| rule(&r.name, r.selector.clone(), r.r#for))
            .collect();
        let forecasts = config
            .all_forecast_rules()
            .into_iter()
            .map(|r| {
                let op = match r.direction {
                    Direction::Above => ">=",
                    Direction::Below => "<=",
                };
                let query = format!(
                    "predict_linear({}[{}s], {}) {op} {}",
                    r.selector,
                    r.window.as_secs(),
                    r.horizon.as_secs(),
                    fmt_value(r.limit)
                );
                let mut summary = rule(&r.name, query, Duration::ZERO);
                summary
                    .labels
                    .insert("severity".into(), r.severity.name().into());
                summary
            })
            .collect();
        let nodes = config
            .all_node_rules()
            .into_iter()
            .map(|r| {
                let matcher = r
                    .node
                    .as_ref()
                    .map(|re| format!("{{node=~{re:?}}}"))
                    .unwrap_or_default();
                let query = format!(
                    "{}{matcher} >= {}",
                    crate::telemetry::NODE_ANOMALY_SCORE,
                    fmt_value(r.min_score)
                );
                let mut summary = rule(&r.name, query, r.r#for);
                summary
                    .labels
                    .insert("severity".into(), r.severity.name().into());
                summary
            })
            .collect();
        let missing = &config.missing_data;
        let mut silent: Vec<RuleSummary> = Vec::new();
        if missing.agents {
            silent.push(rule(
                AGENT_SILENT,
                "an agent sends nothing".into(),
                missing.min_silence,
            ));
            silent.push(rule(
                AGENT_DISCONNECTED,
                "an agent's stream is closed".into(),
                missing.disconnected_after,
            ));
        }
        silent.extend(missing.series.iter().map(|r| {
            let mut summary = rule(&r.name, format!("absent({})", r.selector), Duration::ZERO);
            summary
                .labels
                .insert("severity".into(), r.severity.name().into());
            summary
        }));
        let toml_group = |name: &str, file: &str, rules| GroupSummary {
            name: name.to_owned(),
            file: file.to_owned(),
            interval: config.evaluation_interval,
            rules,
        };
        let mut groups = vec![
            toml_group("thresholds", "[[alerting.rules]]", thresholds),
            toml_group("anomalies", "[[alerting.anomaly_rules]]", anomalies),
            toml_group("forecasts", "[[alerting.forecast_rules]]", forecasts),
            toml_group("missing_data", "[alerting.missing_data]", silent),
            toml_group("nodes", "[[alerting.node_rules]]", nodes),
        ];
        groups.extend(config.file_rule_groups().iter().map(|g| {
            GroupSummary {
                name: g.name.clone(),
                file: g.file.display().to_string(),
                interval: g.interval.unwrap_or(config.evaluation_interval),
                rules: g
                    .rules
                    .iter()
                    .map(|r| RuleSummary {
                        name: r.alert.clone(),
                        query: r.expr.clone(),
                        hold: r.hold,
                        keep_firing_for: r.keep_firing_for,
                        labels: r.labels.clone(),
                        annotations: r.annotations.clone(),
                    })
                    .collect(),
            }
        }));
        Self { groups }
    }
}

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/rules", get(rules))
}

/// `GET /api/v1/rules[?type=alert|record][&rule_name[]=][&rule_group[]=]`.
async fn rules(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams,
) -> Result<Response, ApiError> {
    let alerting = state
        .alerting
        .as_ref()
        .ok_or(ApiError::Disabled(Feature::Alerting))?;
    let recording = params.choice("type", &[("alert", false), ("record", true)])?;
    let names: Vec<&str> = params.all("rule_name[]").collect();
    let groups: Vec<&str> = params.all("rule_group[]").collect();
    let view = alerting.view();
    let rules = &state.runtime.rules;
    let answer = rules
        .groups
        .iter()
        .filter(|_| recording != Some(true))
        .filter(|group| groups.is_empty() || groups.contains(&group.name.as_str()))
        .map(|group| RuleGroup {
            name: group.name.clone(),
            file: group.file.clone(),
            rules: group
                .rules
                .iter()
                .filter(|r| names.is_empty() || names.contains(&r.name.as_str()))
                .map(|r| alerting_rule(r, &view.alerts))
                .collect(),
            interval: group.interval.as_secs_f64(),
            limit: 0,
            evaluation_time: 0.0,
            last_evaluation: NEVER.to_owned(),
        })
        // As Prometheus, a group whose rules were all filtered out (or that has none) is left
        // out.
        .filter(|g| !g.rules.is_empty())
        .collect();
    Ok(success(RuleGroups { groups: answer }))
}

/// A rule with its open alerts; its state is that of the most urgent.
fn alerting_rule(rule: &RuleSummary, alerts: &[AlertView]) -> AlertingRule {
    let mut state = "inactive";
    let alerts: Vec<RuleAlert> = alerts
        .iter()
        .filter(|a| a.record.alertname == rule.name)
        .filter_map(|a| {
            let record = &a.record;
            let (word, since) = match &record.lifecycle.state {
                AlertState::Pending { since_ms } => ("pending", *since_ms),
                AlertState::Firing { .. } | AlertState::Acknowledged { .. } => (
                    "firing",
                    record
                        .episode
                        .as_ref()
                        .map_or(record.changed_ms, |e| e.fired_ms),
                ),
                AlertState::Inactive | AlertState::Resolved { .. } => return None,
            };
            if word == "firing" || state == "inactive" {
                state = word;
            }
            Some(RuleAlert {
                labels: record.full_labels(),
                annotations: record.annotations.clone(),
                state: word.to_owned(),
                active_at: rfc3339_millis(since),
                value: fmt_value(record.value),
            })
        })
        .collect();
    AlertingRule {
        state: state.to_owned(),
        name: rule.name.clone(),
        query: rule.query.clone(),
        duration: rule.hold.as_secs_f64(),
        keep_firing_for: rule.keep_firing_for.as_secs_f64(),
        labels: rule.labels.clone(),
        annotations: rule.annotations.clone(),
        alerts,
        health: "ok".to_owned(),
        last_error: String::new(),
        evaluation_time: 0.0,
        last_evaluation: NEVER.to_owned(),
        kind: "alerting".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rules_are_grouped_by_kind_and_phrased_as_promql() {
        let rules = AlertRules::new(&AlertingConfig::default());
        let names: Vec<&str> = rules.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "thresholds",
                "anomalies",
                "forecasts",
                "missing_data",
                "nodes"
            ]
        );
        let node = &rules.groups[4].rules[0];
        assert_eq!(
            (node.name.as_str(), node.query.as_str()),
            ("NodeAnomaly", "hcmon_node_anomaly_score >= 0.7")
        );
        let shipped = &crate::alerting::rules::ThresholdRule::defaults()[0];
        let summary = rules.groups[0]
            .rules
            .iter()
            .find(|r| r.name == shipped.name)
            .unwrap();
        let level = fmt_value(shipped.warning.unwrap());
        assert!(
            summary.query.starts_with(&shipped.selector) && summary.query.ends_with(&level),
            "{summary:?}"
        );
        let fill = &rules.groups[2].rules[0];
        assert!(
            fill.query.starts_with("predict_linear(")
                && fill.query.ends_with("[21600s], 86400) >= 0.95"),
            "{fill:?}"
        );
        let silent: Vec<&str> = rules.groups[3]
            .rules
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(silent, [AGENT_SILENT, AGENT_DISCONNECTED]);
    }

    #[test]
    fn rule_file_groups_follow_with_their_own_names_and_intervals() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hosts.yml");
        std::fs::write(
            &file,
            "groups:\n- name: hosts\n  interval: 1m\n  rules:\n  - alert: NodeDown\n    expr: up == 0\n    for: 2m\n    keep_firing_for: 30s\n    labels: {severity: critical}\n    annotations: {summary: '{{ $labels.node }} down'}\n",
        )
        .unwrap();
        let mut config = AlertingConfig {
            rule_files: vec![file.display().to_string()],
            ..AlertingConfig::default()
        };
        config.load_rule_files().unwrap();
        let rules = AlertRules::new(&config);
        let hosts = rules.groups.last().unwrap();
        assert_eq!(
            (hosts.name.as_str(), hosts.file.as_str(), hosts.interval),
            ("hosts", file.to_str().unwrap(), Duration::from_secs(60))
        );
        let down = alerting_rule(&hosts.rules[0], &[]);
        assert_eq!(
            (down.query.as_str(), down.duration, down.keep_firing_for),
            ("up == 0", 120.0, 30.0)
        );
        assert_eq!(down.labels["severity"], "critical");
        assert_eq!(down.annotations["summary"], "{{ $labels.node }} down");
    }
}

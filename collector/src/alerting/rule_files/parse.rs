//! One rule file's text into checked groups. Unknown fields, bad YAML and wrong types are
//! refused by the YAML reader, whose message gives the path (`groups[0].rules[2]`) and the
//! line; everything else (missing names, bad PromQL, bad durations, repeated names, recording
//! rules) is refused here, naming the group and the rule by index and name.

use super::duration::{self, BadDuration};
use super::{FileRule, RuleGroup};
use crate::query::QueryError;
use hcmon_common::LabelError;
use hcmon_common::labels::validate_label_name;
use promql_parser::parser::value::ValueType;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// A rule file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    #[serde(default)]
    groups: Vec<GroupText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupText {
    #[serde(default)]
    name: String,
    interval: Option<Scalar>,
    #[serde(default)]
    rules: Vec<RuleText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    alert: Option<String>,
    record: Option<String>,
    expr: Option<Scalar>,
    #[serde(rename = "for")]
    hold: Option<Scalar>,
    keep_firing_for: Option<Scalar>,
    #[serde(default)]
    labels: BTreeMap<String, Scalar>,
    #[serde(default)]
    annotations: BTreeMap<String, Scalar>,
}

/// A YAML scalar read as text, as Prometheus reads `for: 0` or a label `priority: 1`.
#[derive(Debug)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// An entry of `groups` or `rules`: its index and, when it has one, its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub list: &'static str,
    pub index: usize,
    pub name: Option<String>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.list, self.index)?;
        match &self.name {
            Some(name) => write!(f, " {name:?}"),
            None => Ok(()),
        }
    }
}

/// What is wrong with a group.
#[derive(Debug, thiserror::Error)]
pub enum GroupProblem {
    #[error("has no name")]
    NoName,
    #[error("has the same name as groups[{0}] of this file")]
    Repeated(usize),
    #[error("interval: {0}")]
    Interval(BadDuration),
    #[error("interval must be longer than zero")]
    ZeroInterval,
}

/// What is wrong with a rule.
#[derive(Debug, thiserror::Error)]
pub enum RuleProblem {
    #[error(
        "is a recording rule (`record:`); hcmon has no recording rules: record the series in \
         Prometheus, or write the whole expression into an alert's `expr`"
    )]
    Recording,
    #[error("has no `alert` name")]
    NoAlert,
    #[error("{0:?} is not a valid alert name: it must match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    AlertName(String),
    #[error("has no `expr`")]
    NoExpr,
    #[error("expr: {0}")]
    Expr(QueryError),
    #[error("expr gives a {0}; an alert rule needs an instant vector (or a scalar)")]
    NotInstant(ValueType),
    #[error("{field}: {source}")]
    Duration {
        field: &'static str,
        source: BadDuration,
    },
    #[error("{field}: {source}")]
    LabelName {
        field: &'static str,
        source: LabelError,
    },
    #[error(
        "alert {0:?} is already rules[{1}] of this group; hcmon tells alerts apart by name and \
         labels, so give each rule its own name (e.g. `HostDiskFullCritical`)"
    )]
    Repeated(String, usize),
}

/// A rule file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// From the YAML reader: bad syntax, an unknown field, a wrong type. Its message has the
    /// path inside the file and the line.
    #[error("{0}")]
    Yaml(serde_norway::Error),
    #[error("{group}: {problem}")]
    Group { group: Place, problem: GroupProblem },
    #[error("{group}, {rule}: {problem}")]
    Rule {
        group: Place,
        rule: Place,
        problem: RuleProblem,
    },
}

/// Reads the rule file `path` holding `text`.
pub fn parse(path: &Path, text: &str) -> Result<Vec<RuleGroup>, Box<Problem>> {
    // An empty file (or one of comments only) has no groups, as in Prometheus.
    let file: Option<FileText> = serde_norway::from_str(text).map_err(Problem::Yaml)?;
    let groups = file.map(|f| f.groups).unwrap_or_default();
    let mut out: Vec<RuleGroup> = Vec::new();
    for (index, group) in groups.into_iter().enumerate() {
        let place = Place {
            list: "groups",
            index,
            name: (!group.name.is_empty()).then(|| group.name.clone()),
        };
        let group_problem = |problem| {
            Box::new(Problem::Group {
                group: place.clone(),
                problem,
            })
        };
        if group.name.is_empty() {
            return Err(group_problem(GroupProblem::NoName));
        }
        if let Some(first) = out.iter().position(|g| g.name == group.name) {
            return Err(group_problem(GroupProblem::Repeated(first)));
        }
        let interval = match &group.interval {
            Some(text) => match duration::parse(&text.0) {
                Ok(d) if d.is_zero() => return Err(group_problem(GroupProblem::ZeroInterval)),
                Ok(d) => Some(d),
                Err(e) => return Err(group_problem(GroupProblem::Interval(e))),
            },
            None => None,
        };
        let mut rules: Vec<FileRule> = Vec::new();
        for (i, text) in group.rules.into_iter().enumerate() {
            let rule_place = Place {
                list: "rules",
                index: i,
                name: text.alert.clone().or_else(|| text.record.clone()),
            };
            let rule = check_rule(text).map_err(|problem| {
                Box::new(Problem::Rule {
                    group: place.clone(),
                    rule: rule_place.clone(),
                    problem,
                })
            })?;
            if let Some(first) = rules.iter().position(|r| r.alert == rule.alert) {
                return Err(Box::new(Problem::Rule {
                    group: place,
                    rule: rule_place,
                    problem: RuleProblem::Repeated(rule.alert, first),
                }));
            }
            rules.push(rule);
        }
        out.push(RuleGroup {
            file: path.to_owned(),
            name: group.name,
            interval,
            rules,
        });
    }
    Ok(out)
}

fn check_rule(text: RuleText) -> Result<FileRule, RuleProblem> {
    if text.record.is_some() {
        return Err(RuleProblem::Recording);
    }
    let alert = text.alert.ok_or(RuleProblem::NoAlert)?;
    if hcmon_common::validate_metric_name(&alert).is_err() {
        return Err(RuleProblem::AlertName(alert));
    }
    let expr = text.expr.ok_or(RuleProblem::NoExpr)?.0;
    crate::query::parse(&expr).map_err(RuleProblem::Expr)?;
    // It parsed above, so this parse succeeds too; its tree tells the result's type.
    if let Ok(tree) = promql_parser::parser::parse(&expr) {
        let kind = tree.value_type();
        if !matches!(kind, ValueType::Vector | ValueType::Scalar) {
            return Err(RuleProblem::NotInstant(kind));
        }
    }
    let duration = |field: &'static str, value: Option<Scalar>| match value {
        Some(text) => {
            duration::parse(&text.0).map_err(|source| RuleProblem::Duration { field, source })
        }
        None => Ok(Duration::ZERO),
    };
    let names = |field: &'static str, map: BTreeMap<String, Scalar>| {
        map.into_iter()
            .map(|(name, value)| {
                validate_label_name(&name)
                    .map_err(|source| RuleProblem::LabelName { field, source })?;
                Ok((name, value.0))
            })
            .collect::<Result<BTreeMap<_, _>, RuleProblem>>()
    };
    Ok(FileRule {
        alert,
        expr,
        hold: duration("for", text.hold)?,
        keep_firing_for: duration("keep_firing_for", text.keep_firing_for)?,
        labels: names("labels", text.labels)?,
        annotations: names("annotations", text.annotations)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
# Hosts.
groups:
  - name: node
    interval: 30s
    rules:
      - alert: NodeDown
        expr: up == 0
        for: 1m
        labels:
          severity: critical
          priority: 1
        annotations:
          summary: "{{ $labels.node }} is down"
      - alert: HighLoad
        expr: rate(node_cpu_seconds_total[5m]) > 0.9
        keep_firing_for: 5m
  - name: empty
    rules: []
"#;

    fn problem(text: &str) -> String {
        parse(Path::new("x.yml"), text).unwrap_err().to_string()
    }

    #[test]
    fn a_good_file_reads_into_groups() {
        let groups = parse(Path::new("node.yml"), GOOD).unwrap();
        assert_eq!(groups.len(), 2);
        let node = &groups[0];
        assert_eq!(
            (node.name.as_str(), node.interval),
            ("node", Some(Duration::from_secs(30)))
        );
        assert_eq!(node.file, Path::new("node.yml"));
        let down = &node.rules[0];
        assert_eq!(down.alert, "NodeDown");
        assert_eq!(down.expr, "up == 0");
        assert_eq!(down.hold, Duration::from_secs(60));
        assert_eq!(down.labels["severity"], "critical");
        assert_eq!(down.labels["priority"], "1");
        assert_eq!(down.annotations["summary"], "{{ $labels.node }} is down");
        let load = &node.rules[1];
        assert_eq!(
            (load.hold, load.keep_firing_for),
            (Duration::ZERO, Duration::from_secs(300))
        );
        assert_eq!(groups[1].interval, None);
        assert!(groups[1].rules.is_empty());
        assert!(parse(Path::new("e.yml"), "").unwrap().is_empty());
        assert!(parse(Path::new("e.yml"), "# nothing\n").unwrap().is_empty());
    }

    #[test]
    fn yaml_mistakes_name_the_place_and_line() {
        let err =
            problem("groups:\n  - name: a\n    rules:\n      - alert: A\n        expresion: up\n");
        assert!(
            err.contains("groups[0].rules[0]")
                && err.contains("unknown field `expresion`")
                && err.contains("line 5"),
            "{err}"
        );
        let err = problem("groups:\n  - name: a\n    limit: 5\n");
        assert!(err.contains("unknown field `limit`"), "{err}");
        let err = problem("groups:\n  - name: a\n   rules: [\n");
        assert!(err.contains("line"), "{err}");
        let err = problem(
            "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        labels: [x]\n",
        );
        assert!(err.contains("groups[0].rules[0].labels"), "{err}");
    }

    #[test]
    fn rule_mistakes_name_the_group_and_rule() {
        let rule = |body: &str| problem(&format!("groups:\n- name: node\n  rules:\n{body}"));
        for (body, expected) in [
            (
                "  - record: job:up:sum\n    expr: sum(up)\n",
                "groups[0] \"node\", rules[0] \"job:up:sum\": is a recording rule",
            ),
            ("  - expr: up\n", "rules[0]: has no `alert` name"),
            ("  - alert: A\n", "rules[0] \"A\": has no `expr`"),
            (
                "  - alert: A\n    expr: up ==\n",
                "rules[0] \"A\": expr: query \"up ==\"",
            ),
            (
                "  - alert: A\n    expr: up[5m]\n",
                "expr gives a matrix; an alert rule needs an instant vector",
            ),
            (
                "  - alert: A\n    expr: up\n    for: 5 minutes\n",
                "rules[0] \"A\": for: \"5 minutes\" is not a duration",
            ),
            (
                "  - alert: A\n    expr: up\n    keep_firing_for: 1x\n",
                "keep_firing_for: \"1x\"",
            ),
            (
                "  - alert: High CPU\n    expr: up\n",
                "\"High CPU\" is not a valid alert name",
            ),
            (
                "  - alert: A\n    expr: up\n    labels:\n      bad-name: x\n",
                "labels: label name \"bad-name\" is invalid",
            ),
            (
                "  - alert: A\n    expr: up\n  - alert: A\n    expr: up > 1\n",
                "rules[1] \"A\": alert \"A\" is already rules[0] of this group",
            ),
        ] {
            let err = rule(body);
            assert!(err.contains(expected), "{body}: {err}");
        }
    }

    #[test]
    fn group_mistakes_name_the_group() {
        assert!(problem("groups:\n- rules: []\n").contains("groups[0]: has no name"));
        let err = problem("groups:\n- name: a\n- name: a\n");
        assert!(
            err.contains("groups[1] \"a\": has the same name as groups[0]"),
            "{err}"
        );
        let err = problem("groups:\n- name: a\n  interval: 0s\n");
        assert!(err.contains("interval must be longer than zero"), "{err}");
        let err = problem("groups:\n- name: a\n  interval: often\n");
        assert!(
            err.contains("groups[0] \"a\": interval: \"often\""),
            "{err}"
        );
    }
}

//! Prometheus rule files: alert rules written as `groups:` / `rules:` YAML, listed in
//! `[alerting] rule_files` (globs allowed, paths as given), and evaluated by the same alerting
//! service as the TOML rules, so grouping, throttling, silences and escalation apply to them.
//!
//! Files: [`parse`] reads one file's text into checked groups (every error names the file, the
//! group and the rule), [`duration`] Prometheus' durations (`5m`, `1h30m`), [`template`] the
//! annotation templates (`{{ $labels.node }}`, `{{ humanize $value }}`), [`gofmt`] numbers
//! printed as Go prints them, [`evaluate`] one evaluation's result turned into observations
//! for the book. Here: finding the files and loading them.
//!
//! # Semantics (Prometheus', with hcmon's lifecycle)
//! - Each group is evaluated on its `interval` (default `[alerting] evaluation_interval`); each
//!   rule's `expr` is an instant query at the round's time.
//! - Every element of the result is one alert: the element's labels without `__name__`, plus
//!   the rule's `labels` (which win, and may use templates), plus `alertname`.
//! - It is pending until it has been in the result for `for`, then firing; it resolves in the
//!   first round it is missing from the result, or `keep_firing_for` after it was last there.
//! - Severity: the `severity` label mapped onto hcmon's three levels by [`severity_of`]:
//!   `critical`, `page`, `emergency`, `fatal` (and a few spellings of those) are critical;
//!   `error`, `major`, `high` are error; anything else (`warning`, `info`, `minor`, none) is
//!   warning, the lowest level hcmon has. The label itself is replaced by the mapped level, as
//!   on every hcmon alert.
//! - An alert is told apart from others by its name and labels, so alert names are unique
//!   across all rule files and the TOML rules: two rules of one name would fight over the same
//!   alerts.
//! - Recording rules are refused: hcmon has none.

pub mod duration;
pub mod evaluate;
pub mod gofmt;
pub mod parse;
pub mod template;

use super::policy::Severity;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One alerting rule of a rule file, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRule {
    /// `alert`: the `alertname` of its alerts.
    pub alert: String,
    /// `expr`, as written (it parses).
    pub expr: String,
    /// `for`.
    pub hold: Duration,
    pub keep_firing_for: Duration,
    /// Added to every alert's labels; values may hold templates.
    pub labels: BTreeMap<String, String>,
    /// Templates, rendered for each alert.
    pub annotations: BTreeMap<String, String>,
}

/// One `groups[]` entry of a rule file, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    pub file: PathBuf,
    pub name: String,
    /// `interval`; `None` evaluates the group every `[alerting] evaluation_interval`.
    pub interval: Option<Duration>,
    pub rules: Vec<FileRule>,
}

/// A rule file that cannot be used; every message names the file, and the group and rule
/// where there is one.
#[derive(Debug, thiserror::Error)]
pub enum RuleFileError {
    #[error("rule_files pattern {pattern:?} is not a valid glob: {source}")]
    Pattern {
        pattern: String,
        source: glob::PatternError,
    },
    #[error("rule file {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read rule file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rule file {path}: {problem}")]
    Invalid {
        path: PathBuf,
        problem: Box<parse::Problem>,
    },
    #[error(
        "alert {alert:?} is defined twice: in {first} and in {second}; hcmon tells alerts apart \
         by name and labels, so give each rule its own name"
    )]
    DuplicateAcrossGroups {
        alert: String,
        first: String,
        second: String,
    },
}

/// Reads every file the patterns name (in order, each once) and checks its rules. A pattern
/// without glob characters must name an existing file; a glob may match none.
pub fn load(patterns: &[String]) -> Result<Vec<RuleGroup>, RuleFileError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        let matched = glob::glob(pattern).map_err(|source| RuleFileError::Pattern {
            pattern: pattern.clone(),
            source,
        })?;
        let mut any = false;
        for entry in matched {
            let path = entry.map_err(|e| RuleFileError::Read {
                path: e.path().to_owned(),
                source: e.into(),
            })?;
            any = true;
            if !files.contains(&path) {
                files.push(path);
            }
        }
        if !any {
            if !pattern.contains(['*', '?', '[']) {
                return Err(RuleFileError::Missing(PathBuf::from(pattern)));
            }
            tracing::warn!(%pattern, "rule_files pattern matches no file");
        }
    }
    let mut groups = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| RuleFileError::Read {
            path: path.clone(),
            source,
        })?;
        let parsed = parse::parse(&path, &text).map_err(|problem| RuleFileError::Invalid {
            path: path.clone(),
            problem,
        })?;
        groups.extend(parsed);
    }
    unique_names(&groups)?;
    Ok(groups)
}

/// Refuses an alert name used by two rules of different groups (within a group, the parser
/// already has).
fn unique_names(groups: &[RuleGroup]) -> Result<(), RuleFileError> {
    let mut seen: BTreeMap<&str, (&Path, &str)> = BTreeMap::new();
    for group in groups {
        for rule in &group.rules {
            if let Some((file, name)) = seen.insert(&rule.alert, (&group.file, &group.name)) {
                return Err(RuleFileError::DuplicateAcrossGroups {
                    alert: rule.alert.clone(),
                    first: format!("{}, group {name:?}", file.display()),
                    second: format!("{}, group {:?}", group.file.display(), group.name),
                });
            }
        }
    }
    Ok(())
}

/// hcmon's severity for a rule's `severity` label (see the module's header).
pub fn severity_of(label: Option<&str>) -> Severity {
    let label = label.unwrap_or_default().to_ascii_lowercase();
    match label.as_str() {
        "critical" | "crit" | "page" | "emergency" | "emerg" | "fatal" | "disaster" => {
            Severity::Critical
        }
        "error" | "err" | "major" | "high" => Severity::Error,
        _ => Severity::Warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_map_onto_hcmon_levels() {
        assert_eq!(severity_of(Some("critical")), Severity::Critical);
        assert_eq!(severity_of(Some("Page")), Severity::Critical);
        assert_eq!(severity_of(Some("error")), Severity::Error);
        assert_eq!(severity_of(Some("warning")), Severity::Warning);
        assert_eq!(severity_of(Some("info")), Severity::Warning);
        assert_eq!(severity_of(None), Severity::Warning);
    }

    #[test]
    fn files_are_found_by_glob_and_names_are_unique_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, group: &str, alert: &str| {
            let text = format!(
                "groups:\n- name: {group}\n  rules:\n  - alert: {alert}\n    expr: up == 0\n"
            );
            std::fs::write(dir.path().join(name), text).unwrap();
        };
        write("a.rules.yml", "a", "NodeDown");
        write("b.rules.yml", "b", "DiskFull");
        let all = format!("{}/*.rules.yml", dir.path().display());
        let groups = load(std::slice::from_ref(&all)).unwrap();
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        // Named twice: read once.
        let a = dir.path().join("a.rules.yml").display().to_string();
        assert_eq!(load(&[a.clone(), all.clone()]).unwrap().len(), 2);
        let none = format!("{}/*.nothing", dir.path().display());
        assert!(
            load(&[none]).unwrap().is_empty(),
            "a glob may match nothing"
        );
        let missing = dir.path().join("typo.yml").display().to_string();
        let err = load(&[missing]).unwrap_err().to_string();
        assert!(
            err.contains("typo.yml") && err.contains("does not exist"),
            "{err}"
        );
        write("c.rules.yml", "c", "NodeDown");
        let err = load(&[all]).unwrap_err().to_string();
        assert!(
            err.contains("\"NodeDown\" is defined twice")
                && err.contains("group \"a\"")
                && err.contains("group \"c\""),
            "{err}"
        );
    }
}

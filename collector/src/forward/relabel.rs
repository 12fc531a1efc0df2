//! Relabelling of forwarded series (pure): keep or drop by selector, rename a label.

use hcmon_common::{Labels, Selector};
use serde::Deserialize;

/// One rule of `[[remote_write_out.relabel]]`, as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RelabelRule {
    /// Sends only series the selector matches.
    Keep {
        #[serde(rename = "match")]
        selector: String,
    },
    /// Sends no series the selector matches.
    Drop {
        #[serde(rename = "match")]
        selector: String,
    },
    /// Renames label `from` to `to` (replacing a `to` already there), on series the selector
    /// matches, or on all without one. `to = "__name__"` renames metrics by a label's value.
    Rename {
        #[serde(rename = "match", default)]
        selector: Option<String>,
        from: String,
        to: String,
    },
}

enum Rule {
    Keep(Selector),
    Drop(Selector),
    Rename {
        selector: Option<Selector>,
        from: String,
        to: String,
    },
}

/// The compiled rules of one destination.
pub struct Relabel(Vec<Rule>);

/// A series' labels as sent, sorted by name.
pub type SentLabels = Vec<(String, String)>;

impl Relabel {
    pub fn compile(rules: &[RelabelRule]) -> Result<Self, String> {
        let selector = |i: usize, text: &str| {
            Selector::parse(text).map_err(|e| format!("relabel rule {}: {e}", i + 1))
        };
        let compiled = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                Ok(match rule {
                    RelabelRule::Keep { selector: s } => Rule::Keep(selector(i, s)?),
                    RelabelRule::Drop { selector: s } => Rule::Drop(selector(i, s)?),
                    RelabelRule::Rename {
                        selector: s,
                        from,
                        to,
                    } => {
                        for name in [from, to] {
                            hcmon_common::labels::validate_label_name(name).map_err(|e| {
                                format!("relabel rule {}: label {name:?}: {e}", i + 1)
                            })?;
                        }
                        Rule::Rename {
                            selector: s.as_deref().map(|s| selector(i, s)).transpose()?,
                            from: from.clone(),
                            to: to.clone(),
                        }
                    }
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self(compiled))
    }

    /// The labels to send for a series, sorted by name, or `None` when a rule drops it (or a
    /// rename leaves it without a metric name).
    pub fn apply(&self, labels: &Labels) -> Option<SentLabels> {
        let mut current: SentLabels = labels
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        for rule in &self.0 {
            match rule {
                Rule::Keep(s) if !matches(s, &current) => return None,
                Rule::Drop(s) if matches(s, &current) => return None,
                Rule::Rename { selector, from, to }
                    if selector.as_ref().is_none_or(|s| matches(s, &current)) =>
                {
                    let Some(at) = current.iter().position(|(n, _)| n == from) else {
                        continue;
                    };
                    let (_, value) = current.remove(at);
                    current.retain(|(n, _)| n != to);
                    current.push((to.clone(), value));
                    current.sort();
                }
                _ => {}
            }
        }
        current
            .iter()
            .any(|(n, v)| n == hcmon_common::METRIC_NAME_LABEL && !v.is_empty())
            .then_some(current)
    }
}

fn matches(selector: &Selector, labels: &SentLabels) -> bool {
    selector.matchers.iter().all(|m| {
        let value = labels.iter().find(|(n, _)| *n == m.name);
        m.matches(value.map_or("", |(_, v)| v.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(name: &str, pairs: &[(&str, &str)]) -> Labels {
        Labels::new(
            name,
            pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())),
        )
        .unwrap()
    }

    fn rules(toml_text: &str) -> Relabel {
        #[derive(Deserialize)]
        struct Rules {
            relabel: Vec<RelabelRule>,
        }
        let rules: Rules = toml::from_str(toml_text).unwrap();
        Relabel::compile(&rules.relabel).unwrap()
    }

    #[test]
    fn keeps_drops_and_renames_in_order() {
        let relabel = rules(
            r#"
            [[relabel]]
            action = "keep"
            match = '{__name__=~"node_.*"}'
            [[relabel]]
            action = "drop"
            match = '{mountpoint="/boot"}'
            [[relabel]]
            action = "rename"
            from = "node"
            to = "host"
            "#,
        );
        let cpu = labels("node_load1", &[("node", "nas")]);
        assert_eq!(
            relabel.apply(&cpu).unwrap(),
            [
                ("__name__".into(), "node_load1".into()),
                ("host".into(), "nas".into())
            ]
        );
        assert!(relabel.apply(&labels("up", &[("node", "nas")])).is_none());
        let boot = labels("node_filesystem_size_bytes", &[("mountpoint", "/boot")]);
        assert!(relabel.apply(&boot).is_none());
        assert_eq!(rules("relabel = []").apply(&cpu).unwrap().len(), 2);
    }

    #[test]
    fn bad_rules_are_refused_naming_the_rule() {
        let bad = |text: &str| {
            #[derive(Deserialize)]
            struct Rules {
                relabel: Vec<RelabelRule>,
            }
            let rules: Rules = toml::from_str(text).unwrap();
            Relabel::compile(&rules.relabel).err().unwrap()
        };
        let error = bad("[[relabel]]\naction = \"keep\"\nmatch = 'up{'");
        assert!(error.starts_with("relabel rule 1:"), "{error}");
        let error = bad("[[relabel]]\naction = \"rename\"\nfrom = \"a-b\"\nto = \"c\"");
        assert!(error.contains("\"a-b\""), "{error}");
    }
}

//! Series selectors in PromQL's syntax: `name{label="v",other!="w",re=~"a.*",nre!~"b"}`.
//!
//! This is the subset of PromQL that range queries and exports need: a metric name and label
//! matchers. Regexes are anchored, as in Prometheus.

use crate::labels::{Labels, METRIC_NAME_LABEL, validate_metric_name};
use regex::Regex;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// One label matcher. A missing label matches as the empty string, as in Prometheus.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher, compiling (anchored) regexes.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, SelectorError> {
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| SelectorError::Regex {
                    label: name.to_owned(),
                    message: e.to_string(),
                })?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Self {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            regex,
        })
    }

    /// Whether a label value (empty when the label is absent) satisfies this matcher.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => unreachable!("regex compiled in new"),
        }
    }
}

/// A parsed selector: all matchers must hold.
#[derive(Debug, Clone)]
pub struct Selector {
    pub matchers: Vec<Matcher>,
}

/// Why a selector could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("empty selector: give a metric name or at least one label matcher")]
    Empty,
    #[error("selector {input:?}: {message} at position {position}")]
    Syntax {
        input: String,
        position: usize,
        message: String,
    },
    #[error("invalid regex for label {label:?}: {message}")]
    Regex { label: String, message: String },
    #[error(
        "selector matches every series: give a metric name or a matcher that does not match the empty string"
    )]
    MatchesEverything,
}

impl Selector {
    /// Parses `name`, `name{...}` or `{...}`.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let mut p = Parser { input, pos: 0 };
        p.skip_ws();
        if p.at_end() {
            return Err(SelectorError::Empty);
        }
        let mut matchers = Vec::new();
        if p.peek() != Some('{') {
            let name = p.ident(true)?;
            validate_metric_name(&name).map_err(|e| p.error(e.to_string()))?;
            matchers.push(Matcher::new(METRIC_NAME_LABEL, MatchOp::Equal, &name)?);
            p.skip_ws();
        }
        if p.peek() == Some('{') {
            p.pos += 1;
            loop {
                p.skip_ws();
                if p.peek() == Some('}') {
                    p.pos += 1;
                    break;
                }
                let label = p.ident(false)?;
                p.skip_ws();
                let op = p.op()?;
                p.skip_ws();
                let value = p.string()?;
                matchers.push(Matcher::new(&label, op, &value)?);
                p.skip_ws();
                match p.peek() {
                    Some(',') => p.pos += 1,
                    Some('}') => {}
                    _ => return Err(p.error("expected ',' or '}'")),
                }
            }
        }
        p.skip_ws();
        if !p.at_end() {
            return Err(p.error("unexpected trailing input"));
        }
        if matchers.iter().all(|m| m.matches("")) {
            return Err(SelectorError::MatchesEverything);
        }
        Ok(Self { matchers })
    }

    /// Whether a series' labels satisfy every matcher.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
    }
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }

    fn error(&self, message: impl Into<String>) -> SelectorError {
        SelectorError::Syntax {
            input: self.input.to_owned(),
            position: self.pos,
            message: message.into(),
        }
    }

    fn ident(&mut self, allow_colon: bool) -> Result<String, SelectorError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' || (allow_colon && c == ':') {
                self.pos += 1;
            } else {
                break;
            }
        }
        if start == self.pos {
            return Err(self.error("expected a name"));
        }
        Ok(self.input[start..self.pos].to_owned())
    }

    fn op(&mut self) -> Result<MatchOp, SelectorError> {
        let rest = &self.input[self.pos..];
        let (op, len) = if rest.starts_with("=~") {
            (MatchOp::Regex, 2)
        } else if rest.starts_with("!~") {
            (MatchOp::NotRegex, 2)
        } else if rest.starts_with("!=") {
            (MatchOp::NotEqual, 2)
        } else if rest.starts_with('=') {
            (MatchOp::Equal, 1)
        } else {
            return Err(self.error("expected one of =, !=, =~, !~"));
        };
        self.pos += len;
        Ok(op)
    }

    fn string(&mut self) -> Result<String, SelectorError> {
        let quote = match self.peek() {
            Some(q @ ('"' | '\'' | '`')) => q,
            _ => return Err(self.error("expected a quoted string")),
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            let c = self
                .peek()
                .ok_or_else(|| self.error("unterminated string"))?;
            self.pos += c.len_utf8();
            match c {
                c if c == quote => return Ok(out),
                '\\' if quote != '`' => {
                    let e = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated escape"))?;
                    self.pos += e.len_utf8();
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                }
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, pairs: &[(&str, &str)]) -> Labels {
        Labels::new(
            name,
            pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())),
        )
        .unwrap()
    }

    fn check(selector: &str, labels: &Labels, expected: bool) {
        let s = Selector::parse(selector).unwrap_or_else(|e| panic!("{selector}: {e}"));
        assert_eq!(s.matches(labels), expected, "{selector} vs {labels}");
    }

    #[test]
    fn matches_like_prometheus() {
        let l = series("disk_used_bytes", &[("node", "a"), ("mount", "/")]);
        check("disk_used_bytes", &l, true);
        check(r#"disk_used_bytes{node="a",mount="/"}"#, &l, true);
        check(r#"disk_used_bytes{node="b"}"#, &l, false);
        check(r#"disk_used_bytes{node!="b"}"#, &l, true);
        check(r#"{__name__=~"disk_.*", node=~"a|b"}"#, &l, true);
        check(r#"{__name__=~"disk"}"#, &l, false);
        check(r#"disk_used_bytes{mount!~"/boot.*"}"#, &l, true);
        check(r#"disk_used_bytes{missing=""}"#, &l, true);
        check(r#"disk_used_bytes{ node = 'a' , }"#, &l, true);
        check(r#"other"#, &l, false);
    }

    #[test]
    fn rejects_garbage_with_position() {
        assert_eq!(Selector::parse("  ").unwrap_err(), SelectorError::Empty);
        for bad in [
            "a{b}",
            "a{b=c}",
            "a{b=\"c\"",
            "a b",
            "{}",
            r#"{a=~"("}"#,
            r#"{a=""}"#,
            "9x",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad} should fail");
        }
        assert!(
            Selector::parse("cpu{node=\u{a0}\"x\"}").is_ok(),
            "non-ASCII whitespace"
        );
        let err = Selector::parse("cpu{node=}").unwrap_err();
        assert!(err.to_string().contains("position 9"), "{err}");
    }
}

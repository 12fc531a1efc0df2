//! Label sets: the identity of a series, in Prometheus' data model.

use std::fmt;

/// The label that holds a series' metric name, as in Prometheus.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// Why a metric name or label is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("metric name {0:?} is invalid: it must match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    MetricName(String),
    #[error(
        "label name {0:?} is invalid: it must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __"
    )]
    LabelName(String),
    #[error("label {name:?} appears more than once")]
    DuplicateLabel { name: String },
    #[error("label {name:?} has a value containing a NUL byte")]
    NulInValue { name: String },
    /// Wire formats that carry raw bytes (remote write) can hold anything.
    #[error("a label name or value is not UTF-8")]
    NotUtf8,
}

/// Checks a metric name against Prometheus' rules.
pub fn validate_metric_name(name: &str) -> Result<(), LabelError> {
    let mut chars = name.chars();
    let valid = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        }
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(LabelError::MetricName(name.to_owned()))
    }
}

/// Checks a user-supplied label name. Names starting with `__` are reserved for hcmon itself.
pub fn validate_label_name(name: &str) -> Result<(), LabelError> {
    let mut chars = name.chars();
    let valid = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => false,
    };
    if valid && !name.starts_with("__") {
        Ok(())
    } else {
        Err(LabelError::LabelName(name.to_owned()))
    }
}

/// A series identity: metric name plus labels, sorted by label name, each name once.
///
/// The metric name is kept as the `__name__` label so selectors treat it like any other label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Builds a label set from a metric name and labels, validating all of them.
    pub fn new(
        metric_name: &str,
        labels: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, LabelError> {
        validate_metric_name(metric_name)?;
        let mut pairs = vec![(METRIC_NAME_LABEL.to_owned(), metric_name.to_owned())];
        for (name, value) in labels {
            validate_label_name(&name)?;
            if value.contains('\0') {
                return Err(LabelError::NulInValue { name });
            }
            pairs.push((name, value));
        }
        pairs.sort();
        if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(LabelError::DuplicateLabel {
                name: w[0].0.clone(),
            });
        }
        Ok(Self(pairs))
    }

    /// Rebuilds a label set from its [`Labels::encode`] form.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split('\0');
        let mut pairs = Vec::new();
        while let Some(name) = parts.next() {
            if name.is_empty() {
                break;
            }
            pairs.push((name.to_owned(), parts.next()?.to_owned()));
        }
        Some(Self(pairs))
    }

    /// A canonical byte form (`name\0value\0` per label, in order), used as an index key.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
        for (name, value) in &self.0 {
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            out.extend_from_slice(value.as_bytes());
            out.push(0);
        }
        out
    }

    /// The metric name (value of `__name__`).
    pub fn metric_name(&self) -> &str {
        self.get(METRIC_NAME_LABEL).unwrap_or_default()
    }

    /// The value of a label, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// All labels, including `__name__`, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Labels other than `__name__`.
    pub fn without_name(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter().filter(|(n, _)| *n != METRIC_NAME_LABEL)
    }

    /// Number of labels including `__name__`.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false for a valid set, which has at least `__name__`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Formats as a Prometheus selector: `name{a="b",c="d"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.metric_name())?;
        let mut first = true;
        for (name, value) in self.without_name() {
            f.write_str(if first { "{" } else { "," })?;
            first = false;
            write!(f, "{name}=\"{}\"", escape_label_value(value))?;
        }
        if !first {
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// Escapes a label value for the Prometheus text format and selectors.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(name: &str, pairs: &[(&str, &str)]) -> Result<Labels, LabelError> {
        Labels::new(
            name,
            pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())),
        )
    }

    #[test]
    fn sorts_and_round_trips() {
        let l = labels("disk_used_bytes", &[("node", "a"), ("mount", "/")]).unwrap();
        assert_eq!(l.to_string(), r#"disk_used_bytes{mount="/",node="a"}"#);
        assert_eq!(Labels::decode(&l.encode()), Some(l.clone()));
        assert_eq!(l.get("node"), Some("a"));
        assert_eq!(l.metric_name(), "disk_used_bytes");
    }

    #[test]
    fn rejects_bad_names_and_duplicates() {
        assert_eq!(
            labels("1abc", &[]),
            Err(LabelError::MetricName("1abc".into()))
        );
        assert!(matches!(
            labels("ok", &[("bad-name", "x")]),
            Err(LabelError::LabelName(_))
        ));
        assert!(matches!(
            labels("ok", &[("__name__", "x")]),
            Err(LabelError::LabelName(_))
        ));
        assert_eq!(
            labels("ok", &[("a", "1"), ("a", "2")]),
            Err(LabelError::DuplicateLabel { name: "a".into() })
        );
        assert!(matches!(
            labels("ok", &[("a", "x\0y")]),
            Err(LabelError::NulInValue { .. })
        ));
    }

    #[test]
    fn escapes_values() {
        let l = labels("m", &[("path", "C:\\x\"y\nz")]).unwrap();
        assert_eq!(l.to_string(), r#"m{path="C:\\x\"y\nz"}"#);
    }
}

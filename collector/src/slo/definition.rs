//! What an SLO is: a name, what it covers (label matchers), how its events are judged (the
//! SLI), a target and warning level, a period and a way to count the budget.

use super::error::SloError;
use crate::analytics::slo::{Budgeting, IncidentSeverity, Period};
use hcmon_common::Selector;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub const DEFAULT_TARGET: f64 = 0.95;
pub const DEFAULT_WARNING: f64 = 0.90;
pub const DEFAULT_LATENCY_QUANTILE: f64 = 0.95;
const MAX_RETRIES: u32 = 100;

/// An SLO's name: 1 to 128 of `[A-Za-z0-9_.:-]`, so it fits URLs, labels and file names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SloName(String);

impl SloName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SloName {
    type Err = SloError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 128 {
            return Err(SloError::invalid(
                "name",
                format!("{s:?} must be 1 to 128 characters long"),
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
        {
            return Err(SloError::invalid(
                "name",
                format!("{s:?} holds {c:?}: use letters, digits and _ . : -"),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for SloName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for SloName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SloName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where availability comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AvailabilitySource {
    /// Probe runs (`http_check_up`, `tcp_check_up`, `redis_up`, `memcached_up`).
    Probe,
    /// A node's agent reporting.
    Node,
}

/// How an SLO's events are judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sli {
    Availability {
        source: AvailabilitySource,
        /// Consecutive failed runs a retry absorbs (probe availability only).
        #[serde(default)]
        retries: u32,
    },
    /// Probe runs' duration against a threshold; with time slices, a slice's `quantile`.
    Latency {
        threshold_ms: f64,
        #[serde(default = "default_quantile")]
        quantile: f64,
    },
    /// Two PromQL expressions giving good and valid events per step.
    Ratio { good: String, valid: String },
    /// Time to acknowledgement (MTTA) per severity, in ms.
    Response {
        targets: BTreeMap<IncidentSeverity, i64>,
    },
    /// Time to resolution (MTTR) per severity, in ms.
    Resolution {
        targets: BTreeMap<IncidentSeverity, i64>,
    },
}

fn default_quantile() -> f64 {
    DEFAULT_LATENCY_QUANTILE
}

impl Sli {
    /// Time slices of a minute for node up-ness (agents report every few seconds, not as
    /// discrete runs); occurrences for everything else.
    pub fn default_budgeting(&self) -> Budgeting {
        match self {
            Sli::Availability {
                source: AvailabilitySource::Node,
                ..
            } => Budgeting::Timeslices {
                slice_ms: 60_000,
                slice_target: 1.0,
            },
            _ => Budgeting::Occurrences,
        }
    }

    /// Whether the SLI counts stored samples (so burn-rate alerts apply), not incidents.
    pub fn is_sample_based(&self) -> bool {
        !matches!(self, Sli::Response { .. } | Sli::Resolution { .. })
    }

    /// A short text for reports: "probe availability", "latency <= 100 ms", ...
    pub fn describe(&self) -> String {
        match self {
            Sli::Availability {
                source: AvailabilitySource::Probe,
                retries: 0,
            } => "probe availability".to_owned(),
            Sli::Availability {
                source: AvailabilitySource::Probe,
                retries,
            } => format!("probe availability ({retries} retries)"),
            Sli::Availability {
                source: AvailabilitySource::Node,
                ..
            } => "node availability (agent reporting)".to_owned(),
            Sli::Latency { threshold_ms, .. } => format!("probe latency <= {threshold_ms} ms"),
            Sli::Ratio { good, valid } => format!("ratio ({good}) / ({valid})"),
            Sli::Response { targets } => {
                format!("time to acknowledge ({})", describe_targets(targets))
            }
            Sli::Resolution { targets } => {
                format!("time to resolve ({})", describe_targets(targets))
            }
        }
    }
}

fn describe_targets(targets: &BTreeMap<IncidentSeverity, i64>) -> String {
    IncidentSeverity::ALL
        .iter()
        .filter_map(|s| {
            let ms = targets.get(s)?;
            let d = std::time::Duration::from_millis((*ms).max(0) as u64);
            Some(format!("{} {}", s.name(), humantime::format_duration(d)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a definition came from; later ones override earlier ones of the same name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Generated for every node and probe.
    Default,
    /// `[slo]` in the collector's config.
    Config,
    /// Created through the API.
    #[default]
    Api,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Default => "defaults",
            Origin::Config => "config",
            Origin::Api => "api",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloDefinition {
    pub name: SloName,
    pub description: String,
    /// Label matchers like `{node="nas"}`; empty covers everything the SLI applies to.
    pub selector: String,
    pub sli: Sli,
    pub target: f64,
    pub warning: f64,
    pub period: Period,
    pub budgeting: Budgeting,
    pub origin: Origin,
}

/// The JSON form, where everything but name and SLI has a default (budgeting's depends on the
/// SLI).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionWire {
    name: SloName,
    #[serde(default)]
    description: String,
    #[serde(default)]
    selector: String,
    sli: Sli,
    #[serde(default = "default_target")]
    target: f64,
    #[serde(default = "default_warning")]
    warning: f64,
    #[serde(default)]
    period: Period,
    #[serde(default)]
    budgeting: Option<Budgeting>,
    #[serde(default)]
    origin: Origin,
}

fn default_target() -> f64 {
    DEFAULT_TARGET
}

fn default_warning() -> f64 {
    DEFAULT_WARNING
}

impl<'de> Deserialize<'de> for SloDefinition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = DefinitionWire::deserialize(d)?;
        let budgeting = w.budgeting.unwrap_or_else(|| w.sli.default_budgeting());
        Ok(SloDefinition {
            name: w.name,
            description: w.description,
            selector: w.selector,
            sli: w.sli,
            target: w.target,
            warning: w.warning,
            period: w.period,
            budgeting,
            origin: w.origin,
        })
    }
}

impl SloDefinition {
    /// A definition with the defaults for everything but its name, selector and SLI.
    pub fn new(name: SloName, selector: impl Into<String>, sli: Sli, origin: Origin) -> Self {
        Self {
            name,
            description: String::new(),
            selector: selector.into(),
            budgeting: sli.default_budgeting(),
            sli,
            target: DEFAULT_TARGET,
            warning: DEFAULT_WARNING,
            period: Period::default(),
            origin,
        }
    }

    /// The parsed selector; `None` when empty (covers everything).
    pub fn matchers(&self) -> Result<Option<Selector>, SloError> {
        if self.selector.trim().is_empty() {
            return Ok(None);
        }
        Selector::parse(&self.selector)
            .map(Some)
            .map_err(|e| SloError::invalid("selector", e.to_string()))
    }

    /// Checks what the types cannot, naming the field.
    pub fn validate(&self) -> Result<(), SloError> {
        if !(self.target > 0.0 && self.target < 1.0) {
            return Err(SloError::invalid(
                "target",
                format!("{} must be above 0 and below 1", self.target),
            ));
        }
        if !(self.warning > 0.0 && self.warning <= self.target) {
            return Err(SloError::invalid(
                "warning",
                format!(
                    "{} must be above 0 and at most the target {}",
                    self.warning, self.target
                ),
            ));
        }
        self.matchers()?;
        self.budgeting
            .validate()
            .map_err(|problem| SloError::invalid("budgeting", problem))?;
        match &self.sli {
            Sli::Availability { source, retries } => {
                if *retries > MAX_RETRIES {
                    return Err(SloError::invalid(
                        "sli.retries",
                        format!("{retries} is more than {MAX_RETRIES}"),
                    ));
                }
                if *source == AvailabilitySource::Node && *retries > 0 {
                    return Err(SloError::invalid(
                        "sli.retries",
                        "applies to probe availability only",
                    ));
                }
            }
            Sli::Latency {
                threshold_ms,
                quantile,
            } => {
                if !(threshold_ms.is_finite() && *threshold_ms > 0.0) {
                    return Err(SloError::invalid(
                        "sli.threshold_ms",
                        format!("{threshold_ms} must be a positive number of milliseconds"),
                    ));
                }
                if !(*quantile > 0.0 && *quantile <= 1.0) {
                    return Err(SloError::invalid(
                        "sli.quantile",
                        format!("{quantile} must be above 0 and at most 1"),
                    ));
                }
            }
            Sli::Ratio { good, valid } => {
                for (field, text) in [("sli.good", good), ("sli.valid", valid)] {
                    crate::query::parse(text)
                        .map_err(|e| SloError::invalid(field, e.to_string()))?;
                }
            }
            Sli::Response { targets } | Sli::Resolution { targets } => {
                if targets.is_empty() {
                    return Err(SloError::invalid(
                        "sli.targets",
                        "give a target for at least one severity",
                    ));
                }
                if let Some((severity, ms)) = targets.iter().find(|(_, ms)| **ms <= 0) {
                    return Err(SloError::invalid(
                        format!("sli.targets.{}", severity.name()),
                        format!("{ms} ms must be positive"),
                    ));
                }
                if self.budgeting != Budgeting::Occurrences {
                    return Err(SloError::invalid(
                        "budgeting",
                        "incident SLIs count incidents: use occurrences",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_names_are_checked() {
        assert!("probe:web:availability".parse::<SloName>().is_ok());
        assert!("a-b_c.d".parse::<SloName>().is_ok());
        for bad in ["", "has space", "slash/no", "é"] {
            assert!(bad.parse::<SloName>().is_err(), "{bad:?}");
        }
        assert!("x".repeat(129).parse::<SloName>().is_err());
        assert!("x".repeat(128).parse::<SloName>().is_ok());
    }

    #[test]
    fn slo_definition_json_defaults_and_validation() {
        let def: SloDefinition = serde_json::from_str(
            r#"{"name":"redis-p95","selector":"{name=\"redis-cache\"}",
                "sli":{"kind":"latency","threshold_ms":100},
                "budgeting":{"kind":"timeslices","slice":"1m"}}"#,
        )
        .unwrap();
        assert_eq!(def.target, 0.95);
        assert_eq!(def.warning, 0.9);
        assert_eq!(def.period, Period::Rolling { days: 30 });
        assert_eq!(def.origin, Origin::Api);
        assert_eq!(
            def.sli,
            Sli::Latency {
                threshold_ms: 100.0,
                quantile: 0.95
            }
        );
        assert_eq!(
            def.budgeting,
            Budgeting::Timeslices {
                slice_ms: 60_000,
                slice_target: 1.0
            }
        );
        def.validate().unwrap();
        let json = serde_json::to_value(&def).unwrap();
        assert_eq!(json["budgeting"]["slice"], "1m");
        assert_eq!(json["sli"]["kind"], "latency");
        let back: SloDefinition = serde_json::from_value(json).unwrap();
        assert_eq!(back, def);

        let node: SloDefinition =
            serde_json::from_str(r#"{"name":"n","sli":{"kind":"availability","source":"node"}}"#)
                .unwrap();
        assert_eq!(node.budgeting, node.sli.default_budgeting());

        let field = |def: &SloDefinition| match def.validate() {
            Err(SloError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(&SloDefinition {
                target: 1.0,
                ..def.clone()
            }),
            "target"
        );
        assert_eq!(
            field(&SloDefinition {
                warning: 0.99,
                ..def.clone()
            }),
            "warning"
        );
        assert_eq!(
            field(&SloDefinition {
                selector: "{node=".into(),
                ..def.clone()
            }),
            "selector"
        );
        let incidents = SloDefinition {
            sli: Sli::Response {
                targets: BTreeMap::from([(IncidentSeverity::Critical, 0)]),
            },
            ..def.clone()
        };
        assert_eq!(field(&incidents), "sli.targets.critical");
        let bad_ratio = SloDefinition {
            sli: Sli::Ratio {
                good: "sum(".into(),
                valid: "up".into(),
            },
            ..def.clone()
        };
        assert_eq!(field(&bad_ratio), "sli.good");
        assert!(
            serde_json::from_str::<SloDefinition>(r#"{"name":"n","sli":{"kind":"nope"}}"#).is_err()
        );
        assert!(
            serde_json::from_str::<SloDefinition>(
                r#"{"name":"n","sli":{"kind":"ratio","good":"a","valid":"b"},"extra":1}"#
            )
            .is_err()
        );
    }
}

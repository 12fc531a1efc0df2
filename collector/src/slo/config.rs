//! `[slo]` in the collector's config: the time zone calendar periods are cut in, whether every
//! node and probe gets a default objective, declared objectives and maintenance windows.
//!
//! ```toml
//! [slo]
//! timezone = "Europe/Berlin"
//!
//! [[slo.objectives]]
//! name = "redis-p95"
//! selector = '{name="redis-cache"}'
//! kind = "latency"
//! threshold = "100ms"
//! budgeting = "timeslices"
//! slice = "1m"
//!
//! [[slo.maintenance]]
//! daily = "02:00-03:00"
//! matchers = '{node="backup"}'
//! reason = "nightly backup"
//! ```

use super::definition::{
    AvailabilitySource, DEFAULT_LATENCY_QUANTILE, DEFAULT_TARGET, DEFAULT_WARNING, Origin, Sli,
    SloDefinition, SloName,
};
use super::error::SloError;
use crate::analytics::slo::calendar::daily_windows;
use crate::analytics::slo::{Budgeting, IncidentSeverity, MaintenanceWindow, Period, Window, Zone};
use hcmon_common::Selector;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// `[slo]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SloConfig {
    /// SLOs, their API and burn-rate alerts; off, none of them exist.
    pub enabled: bool,
    /// IANA time zone calendar periods (days, weeks from Monday, months) are cut in.
    pub timezone: String,
    /// Every node and probe gets an availability (and probes a latency) objective, and
    /// incidents response and resolution objectives, unless declared otherwise by name.
    pub defaults: bool,
    /// Objectives declared here; one named like a default replaces it.
    pub objectives: Vec<ObjectiveConfig>,
    /// Planned maintenance: out of every matching SLO's denominator.
    pub maintenance: Vec<MaintenanceConfig>,
    /// Burn-rate alerts stay quiet until the long window counted this many valid events (probe
    /// runs, or time slices), so a few failed runs of a rarely probed service do not page.
    pub burn_rate_min_events: f64,
}

impl Default for SloConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            timezone: "UTC".to_owned(),
            defaults: true,
            objectives: Vec::new(),
            maintenance: Vec::new(),
            burn_rate_min_events: 10.0,
        }
    }
}

/// `[[slo.objectives]]`: one objective; which fields apply depends on `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveConfig {
    /// Unique name, `[A-Za-z0-9_.:-]`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Label matchers of the series (or incidents) covered, e.g. `{node="nas"}`; empty: all.
    #[serde(default)]
    pub selector: String,
    /// availability | latency | ratio | response | resolution.
    pub kind: String,
    /// availability: probe | node.
    pub source: Option<String>,
    /// Probe availability: consecutive failures a retry absorbs.
    pub retries: Option<u32>,
    /// Latency: the threshold, like "100ms".
    pub threshold: Option<String>,
    /// Latency with time slices: the quantile judged per slice (default 0.95).
    pub quantile: Option<f64>,
    /// Ratio: PromQL counting good events per step.
    pub good: Option<String>,
    /// Ratio: PromQL counting valid events per step.
    pub valid: Option<String>,
    /// Response/resolution: a target per severity, like `{ critical = "15m" }`.
    pub targets: Option<BTreeMap<String, String>>,
    /// Share of good events or slices (default 0.95).
    pub target: Option<f64>,
    /// Below this the SLO is breached, between it and the target a warning (default 0.9).
    pub warning: Option<f64>,
    /// day | week | month | quarter | year | "30d" (default 30d).
    pub period: Option<String>,
    /// occurrences | timeslices (default: timeslices for node availability).
    pub budgeting: Option<String>,
    /// Time slice length (default "1m").
    pub slice: Option<String>,
    /// Share of good runs a slice needs to be good (default 1).
    pub slice_target: Option<f64>,
}

/// `[[slo.maintenance]]`: a fixed window (`start`/`end`, RFC 3339) or a daily one in the
/// configured zone (`daily = "02:00-03:00"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    pub start: Option<String>,
    pub end: Option<String>,
    pub daily: Option<String>,
    /// Label matchers of what is in maintenance; none: everything.
    pub matchers: Option<String>,
    #[serde(default)]
    pub reason: String,
}

/// A config problem and the key it is at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{key}`: {problem}")]
pub struct SloConfigError {
    pub key: String,
    pub problem: String,
}

fn at(key: impl Into<String>, problem: impl Into<String>) -> SloConfigError {
    SloConfigError {
        key: key.into(),
        problem: problem.into(),
    }
}

/// When a maintenance window applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaintenanceTimes {
    Once {
        start_ms: i64,
        end_ms: i64,
    },
    /// Local minutes after midnight; `to <= from` runs past midnight.
    Daily {
        from_minute: u32,
        to_minute: u32,
    },
}

impl SloConfig {
    pub fn zone(&self) -> Result<Zone, SloConfigError> {
        Zone::parse(&self.timezone).map_err(|e| at("slo.timezone", e.to_string()))
    }

    /// Checks everything, naming the first offending key.
    pub fn validate(&self) -> Result<(), SloConfigError> {
        self.zone()?;
        if !(self.burn_rate_min_events.is_finite() && self.burn_rate_min_events >= 0.0) {
            return Err(at(
                "slo.burn_rate_min_events",
                format!(
                    "{} must be a number of at least 0",
                    self.burn_rate_min_events
                ),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for objective in &self.objectives {
            let def = objective.to_definition()?;
            if !seen.insert(def.name.clone()) {
                return Err(at(
                    format!("slo.objectives.{}", def.name),
                    "declared twice: names must be unique",
                ));
            }
        }
        for (i, window) in self.maintenance.iter().enumerate() {
            window.parse(i)?;
        }
        Ok(())
    }

    /// The declared objectives (validated by [`SloConfig::validate`] at startup).
    pub fn definitions(&self) -> Result<Vec<SloDefinition>, SloConfigError> {
        self.objectives
            .iter()
            .map(ObjectiveConfig::to_definition)
            .collect()
    }

    /// The maintenance windows touching `range`, daily ones expanded in `zone`.
    pub fn maintenance_windows(
        &self,
        zone: &Zone,
        range: Window,
    ) -> Result<Vec<MaintenanceWindow>, SloConfigError> {
        let mut out = Vec::new();
        for (i, config) in self.maintenance.iter().enumerate() {
            let (times, matchers) = config.parse(i)?;
            let windows = match times {
                MaintenanceTimes::Once { start_ms, end_ms } => Window::new(start_ms, end_ms)
                    .intersect(&range)
                    .into_iter()
                    .collect(),
                MaintenanceTimes::Daily {
                    from_minute,
                    to_minute,
                } => daily_windows(zone, range, from_minute, to_minute),
            };
            out.extend(windows.into_iter().map(|w| MaintenanceWindow {
                start_ms: w.start_ms,
                end_ms: w.end_ms,
                matchers: matchers.clone(),
                reason: config.reason.clone(),
            }));
        }
        Ok(out)
    }
}

impl MaintenanceConfig {
    /// The window's times and matchers; `index` names it in errors.
    pub fn parse(
        &self,
        index: usize,
    ) -> Result<(MaintenanceTimes, Option<Selector>), SloConfigError> {
        let key = |field: &str| format!("slo.maintenance[{index}].{field}");
        let matchers = match &self.matchers {
            Some(text) => {
                Some(Selector::parse(text).map_err(|e| at(key("matchers"), e.to_string()))?)
            }
            None => None,
        };
        let times = match (&self.start, &self.end, &self.daily) {
            (Some(start), Some(end), None) => {
                let start_ms = rfc3339(start).map_err(|p| at(key("start"), p))?;
                let end_ms = rfc3339(end).map_err(|p| at(key("end"), p))?;
                if end_ms <= start_ms {
                    return Err(at(key("end"), format!("{end} is not after start {start}")));
                }
                MaintenanceTimes::Once { start_ms, end_ms }
            }
            (None, None, Some(daily)) => {
                let (from, to) = daily.split_once('-').ok_or_else(|| {
                    at(key("daily"), format!("{daily:?}: expected \"HH:MM-HH:MM\""))
                })?;
                let from_minute = clock_minute(from).map_err(|p| at(key("daily"), p))?;
                let to_minute = clock_minute(to).map_err(|p| at(key("daily"), p))?;
                if from_minute == to_minute {
                    return Err(at(key("daily"), format!("{daily:?} is empty")));
                }
                MaintenanceTimes::Daily {
                    from_minute,
                    to_minute,
                }
            }
            _ => {
                return Err(at(
                    format!("slo.maintenance[{index}]"),
                    "give either start and end (RFC 3339) or daily = \"HH:MM-HH:MM\"",
                ));
            }
        };
        Ok((times, matchers))
    }
}

fn rfc3339(text: &str) -> Result<i64, String> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

fn clock_minute(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let parsed = text.split_once(':').and_then(|(h, m)| {
        let ok = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !ok(h) || !ok(m) {
            return None;
        }
        let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    });
    parsed.ok_or_else(|| format!("{text:?} is not a time of day HH:MM"))
}

fn duration_ms(text: &str) -> Result<i64, String> {
    let d: Duration = humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration like \"100ms\" or \"15m\": {e}"))?;
    i64::try_from(d.as_millis()).map_err(|_| format!("{text:?} is too long"))
}

impl ObjectiveConfig {
    /// The definition this declares, or the first problem with the key it is at.
    pub fn to_definition(&self) -> Result<SloDefinition, SloConfigError> {
        let base = format!("slo.objectives.{}", self.name);
        let key = |field: &str| format!("{base}.{field}");
        let name: SloName = self
            .name
            .parse()
            .map_err(|e: SloError| at("slo.objectives.name", e.to_string()))?;
        let require = |field: &str, value: &Option<String>| -> Result<String, SloConfigError> {
            value
                .clone()
                .ok_or_else(|| at(key(field), format!("required for kind = {:?}", self.kind)))
        };
        let sli = match self.kind.as_str() {
            "availability" => {
                let source = match self.source.as_deref() {
                    Some("probe") | None => AvailabilitySource::Probe,
                    Some("node") => AvailabilitySource::Node,
                    Some(other) => {
                        return Err(at(
                            key("source"),
                            format!("{other:?}: expected probe or node"),
                        ));
                    }
                };
                Sli::Availability {
                    source,
                    retries: self.retries.unwrap_or(0),
                }
            }
            "latency" => {
                let threshold = require("threshold", &self.threshold)?;
                Sli::Latency {
                    threshold_ms: duration_ms(&threshold).map_err(|p| at(key("threshold"), p))?
                        as f64,
                    quantile: self.quantile.unwrap_or(DEFAULT_LATENCY_QUANTILE),
                }
            }
            "ratio" => Sli::Ratio {
                good: require("good", &self.good)?,
                valid: require("valid", &self.valid)?,
            },
            "response" | "resolution" => {
                let texts = self.targets.as_ref().ok_or_else(|| {
                    at(
                        key("targets"),
                        format!("required for kind = {:?}", self.kind),
                    )
                })?;
                let mut targets = BTreeMap::new();
                for (severity, text) in texts {
                    let field = format!("targets.{severity}");
                    let severity: IncidentSeverity =
                        severity.parse().map_err(|p: String| at(key(&field), p))?;
                    targets.insert(severity, duration_ms(text).map_err(|p| at(key(&field), p))?);
                }
                if self.kind == "response" {
                    Sli::Response { targets }
                } else {
                    Sli::Resolution { targets }
                }
            }
            other => {
                return Err(at(
                    key("kind"),
                    format!(
                        "{other:?}: expected availability, latency, ratio, response or resolution"
                    ),
                ));
            }
        };
        let period = match &self.period {
            Some(text) => text
                .parse::<Period>()
                .map_err(|e| at(key("period"), e.to_string()))?,
            None => Period::default(),
        };
        let budgeting = match self.budgeting.as_deref() {
            None if self.slice.is_none() => sli.default_budgeting(),
            Some("occurrences") => Budgeting::Occurrences,
            Some("timeslices") | None => Budgeting::Timeslices {
                slice_ms: match &self.slice {
                    Some(text) => duration_ms(text).map_err(|p| at(key("slice"), p))?,
                    None => 60_000,
                },
                slice_target: self.slice_target.unwrap_or(1.0),
            },
            Some(other) => {
                return Err(at(
                    key("budgeting"),
                    format!("{other:?}: expected occurrences or timeslices"),
                ));
            }
        };
        let def = SloDefinition {
            name,
            description: self.description.clone(),
            selector: self.selector.clone(),
            sli,
            target: self.target.unwrap_or(DEFAULT_TARGET),
            warning: self.warning.unwrap_or(DEFAULT_WARNING),
            period,
            budgeting,
            origin: Origin::Config,
        };
        def.validate().map_err(|e| match e {
            SloError::Invalid { field, problem } => at(key(&field), problem),
            other => at(base.clone(), other.to_string()),
        })?;
        Ok(def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SloConfig {
        toml::from_str(text).unwrap()
    }

    fn problem(text: &str) -> SloConfigError {
        parse(text).validate().unwrap_err()
    }

    #[test]
    fn slo_config_defaults() {
        let config = SloConfig::default();
        assert!(config.enabled && config.defaults);
        assert_eq!(config.timezone, "UTC");
        assert_eq!(config.burn_rate_min_events, 10.0);
        config.validate().unwrap();
    }

    #[test]
    fn slo_config_objectives_become_definitions() {
        let config = parse(
            r#"
            timezone = "Europe/Berlin"
            [[objectives]]
            name = "redis-p95"
            selector = '{name="redis-cache"}'
            kind = "latency"
            threshold = "100ms"
            budgeting = "timeslices"
            slice = "1m"
            target = 0.99
            warning = 0.95
            period = "month"
            [[objectives]]
            name = "mtta"
            kind = "response"
            targets = { critical = "15m", warning = "4h" }
            [[objectives]]
            name = "nas"
            kind = "availability"
            source = "node"
            selector = '{node="nas"}'
            "#,
        );
        config.validate().unwrap();
        let defs = config.definitions().unwrap();
        assert_eq!(
            defs[0].sli,
            Sli::Latency {
                threshold_ms: 100.0,
                quantile: 0.95
            }
        );
        assert_eq!(
            defs[0].budgeting,
            Budgeting::Timeslices {
                slice_ms: 60_000,
                slice_target: 1.0
            }
        );
        assert_eq!(defs[0].period.to_string(), "month");
        assert_eq!((defs[0].target, defs[0].origin), (0.99, Origin::Config));
        assert_eq!(
            defs[1].sli,
            Sli::Response {
                targets: BTreeMap::from([
                    (IncidentSeverity::Critical, 900_000),
                    (IncidentSeverity::Warning, 14_400_000)
                ])
            }
        );
        assert_eq!(defs[1].budgeting, Budgeting::Occurrences);
        assert_eq!(defs[2].budgeting, defs[2].sli.default_budgeting());
    }

    #[test]
    fn slo_config_errors_name_the_key() {
        assert_eq!(problem("timezone = \"Mars/Base\"").key, "slo.timezone");
        let objective = |body: &str| format!("[[objectives]]\nname = \"x\"\n{body}");
        assert_eq!(
            problem(&objective("kind = \"latency\"")).key,
            "slo.objectives.x.threshold"
        );
        assert_eq!(
            problem(&objective("kind = \"latency\"\nthreshold = \"fast\"")).key,
            "slo.objectives.x.threshold"
        );
        assert_eq!(
            problem(&objective("kind = \"uptime\"")).key,
            "slo.objectives.x.kind"
        );
        assert_eq!(
            problem(&objective("kind = \"availability\"\ntarget = 1.5")).key,
            "slo.objectives.x.target"
        );
        assert_eq!(
            problem(&objective(
                "kind = \"response\"\ntargets = { urgent = \"1m\" }"
            ))
            .key,
            "slo.objectives.x.targets.urgent"
        );
        assert_eq!(
            problem("[[objectives]]\nname = \"a b\"\nkind = \"availability\"").key,
            "slo.objectives.name"
        );
        let twice = format!(
            "{0}\nkind = \"availability\"\n{0}\nkind = \"availability\"",
            "[[objectives]]\nname = \"x\""
        );
        assert_eq!(problem(&twice).key, "slo.objectives.x");
        assert_eq!(
            problem("[[maintenance]]\ndaily = \"2:00-03:00\"").key,
            "slo.maintenance[0].daily"
        );
        assert_eq!(
            problem(
                "[[maintenance]]\nstart = \"2026-01-01T02:00:00Z\"\nend = \"2026-01-01T01:00:00Z\""
            )
            .key,
            "slo.maintenance[0].end"
        );
        assert_eq!(
            problem("[[maintenance]]\nstart = \"2026-01-01T02:00:00Z\"").key,
            "slo.maintenance[0]"
        );
        assert_eq!(
            problem("[[maintenance]]\ndaily = \"02:00-03:00\"\nmatchers = \"{node=\"").key,
            "slo.maintenance[0].matchers"
        );
        assert!(toml::from_str::<SloConfig>("unknown = 1").is_err());
    }

    /// The commented examples in deploy/hcmon-collector.toml are valid once uncommented.
    #[test]
    fn slo_config_deploy_examples_parse() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/hcmon-collector.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let section = &text[text.find("\n[slo]\n").unwrap()..];
        let section = &section[..section.find("\n[reports]").unwrap()];
        let mut out = String::new();
        let mut example = false;
        for line in section.lines() {
            example = (example && !line.trim().is_empty()) || line.starts_with("# [[slo.");
            let line = if example {
                line.trim_start_matches("# ")
            } else {
                line
            };
            out.push_str(line.split(" # ").next().unwrap_or(line));
            out.push('\n');
        }
        let config: toml::Table = toml::from_str(&out).unwrap();
        let slo: SloConfig = config["slo"].clone().try_into().unwrap();
        slo.validate().unwrap();
        assert_eq!(slo.objectives.len(), 1);
        assert_eq!(slo.maintenance.len(), 2);
        assert_eq!(slo.definitions().unwrap()[0].period.to_string(), "month");
    }

    #[test]
    fn slo_config_maintenance_expands_in_the_zone() {
        let config = parse(
            r#"
            timezone = "Europe/Berlin"
            [[maintenance]]
            start = "2026-03-01T10:00:00Z"
            end = "2026-03-01T12:00:00Z"
            matchers = '{node="nas"}'
            reason = "disk swap"
            [[maintenance]]
            daily = "02:00-03:00"
            reason = "backup"
            "#,
        );
        config.validate().unwrap();
        let zone = config.zone().unwrap();
        let ms = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let range = Window::new(ms("2026-03-01T00:00:00Z"), ms("2026-03-02T00:00:00Z"));
        let windows = config.maintenance_windows(&zone, range).unwrap();
        let shape: Vec<(i64, i64, &str, bool)> = windows
            .iter()
            .map(|w| {
                (
                    w.start_ms,
                    w.end_ms,
                    w.reason.as_str(),
                    w.matchers.is_some(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (
                    ms("2026-03-01T10:00:00Z"),
                    ms("2026-03-01T12:00:00Z"),
                    "disk swap",
                    true
                ),
                (
                    ms("2026-03-01T01:00:00Z"),
                    ms("2026-03-01T02:00:00Z"),
                    "backup",
                    false
                ),
            ]
        );
    }
}

//! OpenSLO v1 YAML (<https://github.com/OpenSLO/OpenSLO>, `apiVersion: openslo/v1`), both ways,
//! for the SLOs it can express.
//!
//! Export: one `kind: SLO` document per SLO, with an inline indicator. Availability and latency
//! become a `ratioMetric` whose `metricSource` has the type `hcmon` and carries the SLI as hcmon
//! knows it (no other tool reads these; hcmon reads them back unchanged); ratio SLIs become a
//! `ratioMetric` of two Prometheus queries, which other tools read too. Incident response and
//! resolution SLIs have no OpenSLO form: they are left out, named in a comment at the top.
//!
//! Import: those documents back, and SLOs written by other tools whose indicator is a
//! `ratioMetric` of Prometheus queries (`good`, or `bad` subtracted from `total`), inline or
//! by `indicatorRef` to a `kind: SLI` document in the same file. `kind: Service` documents are
//! skipped (they carry nothing hcmon keeps). Everything else is refused, naming the document
//! (counted from 1) and the field.
//!
//! What OpenSLO lacks is kept in `metadata.annotations`: `hcmon.io/warning` (the warning
//! level) and `hcmon.io/selector` (the label matchers of a ratio SLO). `metadata.name` must be
//! a DNS label, which hcmon names (`probe:web:availability`) are not: the hcmon name goes in
//! `metadata.displayName`, and an import takes the display name when it is a valid hcmon name,
//! else `metadata.name`.

use super::definition::{Origin, Sli, SloDefinition, SloName};
use crate::analytics::slo::{Budgeting, CalendarUnit, Period, Zone};
use serde::{Deserialize, Serialize};
use serde_norway::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const API_VERSION: &str = "openslo/v1";
const WARNING: &str = "hcmon.io/warning";
const SELECTOR: &str = "hcmon.io/selector";
/// The `metricSource.type` of hcmon's own SLIs.
const HCMON_SOURCE: &str = "hcmon";
const PROMETHEUS_SOURCE: &str = "Prometheus";
/// The Monday a calendar week is aligned to, also the first of a month, quarter and year.
const CALENDAR_START: &str = "2024-01-01 00:00:00";

/// Why an OpenSLO file cannot be imported: the document (from 1) and the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpenSloError {
    #[error("document {document}: {message}")]
    Yaml { document: usize, message: String },
    #[error("document {document}: {field}: {message}")]
    Field {
        document: usize,
        field: String,
        message: String,
    },
    #[error("no SLO documents found (want apiVersion: {API_VERSION}, kind: SLO)")]
    Empty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    api_version: String,
    kind: String,
    metadata: Metadata,
    #[serde(default)]
    spec: Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SloSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default)]
    service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    indicator: Option<Indicator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    indicator_ref: Option<String>,
    #[serde(default)]
    time_window: Vec<TimeWindow>,
    #[serde(default)]
    budgeting_method: String,
    #[serde(default)]
    objectives: Vec<Objective>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Indicator {
    #[serde(default)]
    metadata: Metadata,
    spec: Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SliSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ratio_metric: Option<RatioMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold_metric: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RatioMetric {
    #[serde(default)]
    counter: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    good: Option<MetricRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bad: Option<MetricRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    total: Option<MetricRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricRef {
    metric_source: MetricSource,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metric_source_ref: Option<String>,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    spec: Value,
}

/// `metricSource.spec` of type `hcmon`: the SLI as hcmon knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HcmonSource {
    sli: Sli,
    #[serde(default)]
    selector: String,
    /// `good` or `total`: which side of the ratio this is.
    events: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimeWindow {
    duration: String,
    #[serde(default)]
    is_rolling: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    calendar: Option<Calendar>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Calendar {
    start_time: String,
    time_zone: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Objective {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_slice_target: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_slice_window: Option<String>,
    /// A threshold objective (`op`, `value`): refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    op: Option<String>,
}

// ---- export ----

/// The SLOs as OpenSLO v1 YAML, one document each; calendar periods are aligned in `zone`.
/// Those OpenSLO cannot express are named in a comment instead.
pub fn export(defs: &[SloDefinition], zone: &Zone) -> String {
    let mut out = String::new();
    let skipped: Vec<&str> = defs
        .iter()
        .filter(|d| !expressible(&d.sli))
        .map(|d| d.name.as_str())
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(
            out,
            "# Not exported (incident response and resolution SLIs have no OpenSLO form): {}",
            skipped.join(", ")
        );
    }
    for def in defs.iter().filter(|d| expressible(&d.sli)) {
        // Serializing plain structs of strings, numbers and maps cannot fail.
        let Ok(text) = serde_norway::to_string(&document(def, zone)) else {
            continue;
        };
        out.push_str("---\n");
        out.push_str(&text);
    }
    out
}

fn expressible(sli: &Sli) -> bool {
    matches!(
        sli,
        Sli::Availability { .. } | Sli::Latency { .. } | Sli::Ratio { .. }
    )
}

fn document(def: &SloDefinition, zone: &Zone) -> Document {
    let mut annotations = BTreeMap::from([(WARNING.to_owned(), def.warning.to_string())]);
    let (good, total) = match &def.sli {
        Sli::Ratio { good, valid } => {
            if !def.selector.is_empty() {
                annotations.insert(SELECTOR.to_owned(), def.selector.clone());
            }
            (prometheus(good), prometheus(valid))
        }
        sli => (
            hcmon(sli, &def.selector, "good"),
            hcmon(sli, &def.selector, "total"),
        ),
    };
    let ratio = RatioMetric {
        counter: false,
        good: Some(good),
        bad: None,
        total: Some(total),
        raw: None,
    };
    let indicator = Indicator {
        metadata: Metadata {
            name: format!("{}-sli", dns_label(def.name.as_str())),
            ..Metadata::default()
        },
        spec: to_value(&SliSpec {
            ratio_metric: Some(ratio),
            threshold_metric: None,
        }),
    };
    let mut objective = Objective {
        display_name: Some(def.name.to_string()),
        target: Some(def.target),
        ..Objective::default()
    };
    let budgeting_method = match def.budgeting {
        Budgeting::Occurrences => "Occurrences",
        Budgeting::Timeslices {
            slice_ms,
            slice_target,
        } => {
            objective.time_slice_target = Some(slice_target);
            objective.time_slice_window = Some(duration_text(slice_ms));
            "Timeslices"
        }
    };
    let spec = SloSpec {
        description: (!def.description.is_empty()).then(|| def.description.clone()),
        service: service(def.name.as_str()),
        indicator: Some(indicator),
        indicator_ref: None,
        time_window: vec![time_window(def.period, zone)],
        budgeting_method: budgeting_method.to_owned(),
        objectives: vec![objective],
    };
    Document {
        api_version: API_VERSION.to_owned(),
        kind: "SLO".to_owned(),
        metadata: Metadata {
            name: dns_label(def.name.as_str()),
            display_name: Some(def.name.to_string()),
            annotations,
        },
        spec: to_value(&spec),
    }
}

fn to_value(value: &impl Serialize) -> Value {
    serde_norway::to_value(value).unwrap_or(Value::Null)
}

fn prometheus(query: &str) -> MetricRef {
    MetricRef {
        metric_source: MetricSource {
            metric_source_ref: None,
            kind: PROMETHEUS_SOURCE.to_owned(),
            spec: Value::Mapping(
                [(Value::from("query"), Value::from(query))]
                    .into_iter()
                    .collect(),
            ),
        },
    }
}

fn hcmon(sli: &Sli, selector: &str, events: &str) -> MetricRef {
    MetricRef {
        metric_source: MetricSource {
            metric_source_ref: None,
            kind: HCMON_SOURCE.to_owned(),
            spec: to_value(&HcmonSource {
                sli: sli.clone(),
                selector: selector.to_owned(),
                events: events.to_owned(),
            }),
        },
    }
}

/// The service an SLO is about, as OpenSLO requires one: the middle of `kind:subject:what`
/// names, else `hcmon`.
fn service(name: &str) -> String {
    let parts: Vec<&str> = name.split(':').collect();
    match parts.as_slice() {
        [_, subject, _] if !subject.is_empty() => dns_label(subject),
        _ => "hcmon".to_owned(),
    }
}

/// A DNS label (RFC 1123) made of a name: lower case, runs of other characters as one `-`.
fn dns_label(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed: String = out.trim_matches('-').chars().take(63).collect();
    match trimmed.trim_end_matches('-') {
        "" => "slo".to_owned(),
        label => label.to_owned(),
    }
}

fn time_window(period: Period, zone: &Zone) -> TimeWindow {
    let calendar = |duration: &str| TimeWindow {
        duration: duration.to_owned(),
        is_rolling: false,
        calendar: Some(Calendar {
            start_time: CALENDAR_START.to_owned(),
            time_zone: zone.name().to_owned(),
        }),
    };
    match period {
        Period::Rolling { days } => TimeWindow {
            duration: format!("{days}d"),
            is_rolling: true,
            calendar: None,
        },
        Period::Calendar(CalendarUnit::Day) => calendar("1d"),
        Period::Calendar(CalendarUnit::Week) => calendar("1w"),
        Period::Calendar(CalendarUnit::Month) => calendar("1M"),
        Period::Calendar(CalendarUnit::Quarter) => calendar("1Q"),
        Period::Calendar(CalendarUnit::Year) => calendar("1Y"),
    }
}

/// A time slice as OpenSLO writes durations: `1m`, `30s`, `1h`.
fn duration_text(ms: i64) -> String {
    match ms {
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

// ---- import ----

/// The SLOs of an OpenSLO v1 file (documents separated by `---`), as API-created SLOs.
/// Calendar periods must be in `zone`, the zone this collector evaluates them in.
pub fn import(yaml: &str, zone: &Zone) -> Result<Vec<SloDefinition>, OpenSloError> {
    let mut documents = Vec::new();
    for (i, part) in serde_norway::Deserializer::from_str(yaml).enumerate() {
        let document = i + 1;
        let value = Value::deserialize(part).map_err(|e| OpenSloError::Yaml {
            document,
            message: e.to_string(),
        })?;
        if value.is_null() {
            continue;
        }
        let parsed: Document = serde_norway::from_value(value).map_err(|e| OpenSloError::Yaml {
            document,
            message: e.to_string(),
        })?;
        documents.push((document, parsed));
    }
    let indicators: BTreeMap<String, (usize, Value)> = documents
        .iter()
        .filter(|(_, d)| d.kind == "SLI")
        .map(|(i, d)| (d.metadata.name.clone(), (*i, d.spec.clone())))
        .collect();
    let mut out = Vec::new();
    for (document, doc) in &documents {
        let document = *document;
        let field = |field: &str, message: String| OpenSloError::Field {
            document,
            field: field.to_owned(),
            message,
        };
        if doc.api_version != API_VERSION {
            return Err(field(
                "apiVersion",
                format!("{:?} is not {API_VERSION}", doc.api_version),
            ));
        }
        match doc.kind.as_str() {
            "SLO" => out.push(slo(document, doc, &indicators, zone)?),
            "SLI" | "Service" => {}
            other => {
                return Err(field(
                    "kind",
                    format!(
                        "{other:?}: hcmon imports SLO documents (and the SLI and Service documents they use)"
                    ),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(OpenSloError::Empty);
    }
    Ok(out)
}

fn slo(
    document: usize,
    doc: &Document,
    indicators: &BTreeMap<String, (usize, Value)>,
    zone: &Zone,
) -> Result<SloDefinition, OpenSloError> {
    let field = |field: &str, message: String| OpenSloError::Field {
        document,
        field: field.to_owned(),
        message,
    };
    let spec: SloSpec =
        serde_norway::from_value(doc.spec.clone()).map_err(|e| field("spec", e.to_string()))?;
    let name = name(&doc.metadata).map_err(|m| field("metadata.name", m))?;
    // Where the indicator is: inline, or a `kind: SLI` document its errors then name.
    let (sli_document, sli_spec, sli_field) = match (&spec.indicator, &spec.indicator_ref) {
        (Some(indicator), None) => (document, indicator.spec.clone(), "spec.indicator.spec"),
        (None, Some(reference)) => match indicators.get(reference) {
            Some((at, spec)) => (*at, spec.clone(), "spec"),
            None => {
                return Err(field(
                    "spec.indicatorRef",
                    format!("no kind: SLI document named {reference:?} in this file"),
                ));
            }
        },
        _ => {
            return Err(field(
                "spec.indicator",
                "give exactly one of indicator and indicatorRef".into(),
            ));
        }
    };
    let sli_error = |field: String, message: String| OpenSloError::Field {
        document: sli_document,
        field,
        message,
    };
    let sli_spec: SliSpec = serde_norway::from_value(sli_spec)
        .map_err(|e| sli_error(sli_field.to_owned(), e.to_string()))?;
    if sli_spec.threshold_metric.is_some() {
        return Err(sli_error(
            format!("{sli_field}.thresholdMetric"),
            "hcmon has no SLI over a single metric's threshold; use a ratioMetric".into(),
        ));
    }
    let ratio_field = format!("{sli_field}.ratioMetric");
    let Some(ratio) = sli_spec.ratio_metric else {
        return Err(sli_error(
            ratio_field,
            "missing: hcmon imports ratioMetric indicators".into(),
        ));
    };
    let (sli, selector) =
        indicator(&ratio, &ratio_field, &doc.metadata).map_err(|(f, m)| sli_error(f, m))?;
    let (target, budgeting) = objective(&spec).map_err(|(f, m)| field(&f, m))?;
    let warning = match doc.metadata.annotations.get(WARNING) {
        Some(text) => text.trim().parse::<f64>().map_err(|_| {
            field(
                &format!("metadata.annotations.{WARNING}"),
                format!("{text:?} is not a number"),
            )
        })?,
        None => DEFAULT_WARNING.min(target),
    };
    let period = period(&spec.time_window, zone).map_err(|(f, m)| field(&f, m))?;
    let def = SloDefinition {
        name,
        description: spec.description.unwrap_or_default(),
        selector,
        sli,
        target,
        warning,
        period,
        budgeting,
        origin: Origin::Api,
    };
    def.validate().map_err(|e| field("spec", e.to_string()))?;
    Ok(def)
}

/// The warning level when a file names none: hcmon's default, or the target if lower.
const DEFAULT_WARNING: f64 = 0.90;

fn name(metadata: &Metadata) -> Result<SloName, String> {
    if let Some(display) = &metadata.display_name
        && let Ok(name) = display.parse::<SloName>()
    {
        return Ok(name);
    }
    metadata.name.parse::<SloName>().map_err(|e| e.to_string())
}

type Refusal = (String, String);

/// The SLI and selector of a ratio indicator.
fn indicator(ratio: &RatioMetric, at: &str, metadata: &Metadata) -> Result<(Sli, String), Refusal> {
    if ratio.raw.is_some() {
        return Err((
            format!("{at}.raw"),
            "a precomputed ratio cannot be counted as events; give good (or bad) and total".into(),
        ));
    }
    let total = ratio.total.as_ref().ok_or_else(|| {
        (
            format!("{at}.total"),
            "missing: a ratio needs a total".to_owned(),
        )
    })?;
    let (side, side_field) = match (&ratio.good, &ratio.bad) {
        (Some(good), None) => (good, "good"),
        (None, Some(bad)) => (bad, "bad"),
        _ => {
            return Err((
                format!("{at}.good"),
                "give exactly one of good and bad".into(),
            ));
        }
    };
    let source_field = |side: &str| format!("{at}.{side}.metricSource");
    let total_source = &total.metric_source;
    let side_source = &side.metric_source;
    if total_source.kind.eq_ignore_ascii_case(HCMON_SOURCE) {
        let parsed: HcmonSource = serde_norway::from_value(total_source.spec.clone())
            .map_err(|e| (format!("{}.spec", source_field("total")), e.to_string()))?;
        return Ok((parsed.sli, parsed.selector));
    }
    let query = |source: &MetricSource, side: &str| -> Result<String, Refusal> {
        if source.metric_source_ref.is_some() {
            return Err((
                format!("{}.metricSourceRef", source_field(side)),
                "data sources by reference are not read; give type Prometheus and spec.query"
                    .into(),
            ));
        }
        if !source.kind.eq_ignore_ascii_case(PROMETHEUS_SOURCE) {
            return Err((
                format!("{}.type", source_field(side)),
                format!(
                    "{:?}: hcmon evaluates Prometheus queries (and its own SLIs, type hcmon)",
                    source.kind
                ),
            ));
        }
        match source.spec.get("query").and_then(Value::as_str) {
            Some(q) if !q.trim().is_empty() => Ok(q.trim().to_owned()),
            _ => Err((
                format!("{}.spec.query", source_field(side)),
                "missing: a PromQL query".into(),
            )),
        }
    };
    let side_query = query(side_source, side_field)?;
    let total_query = query(total_source, "total")?;
    let good = match side_field {
        "good" => side_query,
        _ => format!("({total_query}) - ({side_query})"),
    };
    let selector = metadata
        .annotations
        .get(SELECTOR)
        .cloned()
        .unwrap_or_default();
    Ok((
        Sli::Ratio {
            good,
            valid: total_query,
        },
        selector,
    ))
}

/// The one objective's target and the budgeting method.
fn objective(spec: &SloSpec) -> Result<(f64, Budgeting), Refusal> {
    let [objective] = spec.objectives.as_slice() else {
        return Err((
            "spec.objectives".into(),
            format!(
                "{} objectives: hcmon keeps one target per SLO; split it into one SLO per objective",
                spec.objectives.len()
            ),
        ));
    };
    let at = "spec.objectives[0]";
    if objective.op.is_some() {
        return Err((
            format!("{at}.op"),
            "threshold objectives (op, value) need a thresholdMetric, which hcmon does not import"
                .into(),
        ));
    }
    let target = match (objective.target, objective.target_percent) {
        (Some(t), None) => t,
        (None, Some(p)) => p / 100.0,
        _ => {
            return Err((
                format!("{at}.target"),
                "give exactly one of target and targetPercent".into(),
            ));
        }
    };
    if !(target > 0.0 && target < 1.0) {
        return Err((
            format!("{at}.target"),
            format!("{target} is not between 0 and 1 (exclusive)"),
        ));
    }
    let budgeting = match spec.budgeting_method.as_str() {
        "Occurrences" => Budgeting::Occurrences,
        "Timeslices" => {
            let slice_target = objective.time_slice_target.ok_or_else(|| {
                (
                    format!("{at}.timeSliceTarget"),
                    "missing: Timeslices budgeting needs it".to_owned(),
                )
            })?;
            if !(slice_target > 0.0 && slice_target <= 1.0) {
                return Err((
                    format!("{at}.timeSliceTarget"),
                    format!("{slice_target} is not in (0, 1]"),
                ));
            }
            let window = objective.time_slice_window.as_deref().ok_or_else(|| {
                (
                    format!("{at}.timeSliceWindow"),
                    "missing: Timeslices budgeting needs it".to_owned(),
                )
            })?;
            let slice_ms = parse_duration_ms(window).ok_or_else(|| {
                (
                    format!("{at}.timeSliceWindow"),
                    format!("{window:?} is not a duration like 1m, 30s or 1h"),
                )
            })?;
            Budgeting::Timeslices {
                slice_ms,
                slice_target,
            }
        }
        other => {
            return Err((
                "spec.budgetingMethod".into(),
                format!("{other:?}: hcmon budgets by Occurrences or Timeslices"),
            ));
        }
    };
    Ok((target, budgeting))
}

/// `30s`, `1m`, `1h`, `1d` (and `ms`) in milliseconds; at least a second.
fn parse_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms).filter(|ms| *ms >= 1000)
}

fn period(windows: &[TimeWindow], zone: &Zone) -> Result<Period, Refusal> {
    let [window] = windows else {
        return Err((
            "spec.timeWindow".into(),
            format!("{} time windows: hcmon wants exactly one", windows.len()),
        ));
    };
    let at = "spec.timeWindow[0]";
    let duration = window.duration.trim();
    if window.is_rolling {
        let days = match duration.split_at(duration.len().saturating_sub(1)) {
            (n, "d") => n.parse::<u32>().ok(),
            (n, "w") => n.parse::<u32>().ok().and_then(|w| w.checked_mul(7)),
            _ => None,
        };
        return days
            .and_then(|d| format!("{d}d").parse::<Period>().ok())
            .ok_or_else(|| {
                (
                    format!("{at}.duration"),
                    format!("{duration:?}: rolling windows are whole days (1d to 400d) or weeks"),
                )
            });
    }
    let unit = match duration {
        "1d" => CalendarUnit::Day,
        "1w" => CalendarUnit::Week,
        "1M" => CalendarUnit::Month,
        "1Q" => CalendarUnit::Quarter,
        "1Y" => CalendarUnit::Year,
        _ => {
            return Err((
                format!("{at}.duration"),
                format!("{duration:?}: calendar windows are 1d, 1w, 1M, 1Q or 1Y"),
            ));
        }
    };
    let calendar = window.calendar.as_ref().ok_or_else(|| {
        (
            format!("{at}.calendar"),
            "missing: a window that is not rolling is aligned to the calendar".to_owned(),
        )
    })?;
    if calendar.time_zone != zone.name() {
        return Err((
            format!("{at}.calendar.timeZone"),
            format!(
                "{:?}: this collector aligns calendar periods in {} ([slo] timezone)",
                calendar.time_zone,
                zone.name()
            ),
        ));
    }
    aligned(&calendar.start_time, unit).map_err(|m| (format!("{at}.calendar.startTime"), m))?;
    Ok(Period::Calendar(unit))
}

/// Checks that a calendar window starts where hcmon's do: midnight, weeks on Monday, months
/// on the 1st, quarters in January, April, July or October, years on 1 January.
fn aligned(start: &str, unit: CalendarUnit) -> Result<(), String> {
    let parsed: jiff::civil::DateTime = start
        .trim()
        .replacen(' ', "T", 1)
        .parse()
        .map_err(|_| format!("{start:?} is not a time like {CALENDAR_START:?}"))?;
    let midnight = parsed.time() == jiff::civil::Time::midnight();
    let date = parsed.date();
    let ok = midnight
        && match unit {
            CalendarUnit::Day => true,
            CalendarUnit::Week => date.weekday() == jiff::civil::Weekday::Monday,
            CalendarUnit::Month => date.day() == 1,
            CalendarUnit::Quarter => date.day() == 1 && (date.month() - 1) % 3 == 0,
            CalendarUnit::Year => date.day() == 1 && date.month() == 1,
        };
    match ok {
        true => Ok(()),
        false => Err(format!(
            "{start:?}: hcmon's calendar periods start at midnight, weeks on Monday, months on the 1st, quarters in Jan/Apr/Jul/Oct, years on 1 January"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::definition::AvailabilitySource;

    fn utc() -> Zone {
        Zone::utc()
    }

    /// What hcmon writes for a probe availability SLO over a calendar month, and a ratio SLO
    /// with time slices.
    const EXPORTED: &str = r#"# Not exported (incident response and resolution SLIs have no OpenSLO form): incidents:response
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: probe-web-availability
  displayName: probe:web:availability
  annotations:
    hcmon.io/warning: '0.9'
spec:
  description: web answers
  service: web
  indicator:
    metadata:
      name: probe-web-availability-sli
    spec:
      ratioMetric:
        counter: false
        good:
          metricSource:
            type: hcmon
            spec:
              sli:
                kind: availability
                source: probe
                retries: 1
              selector: '{name="web"}'
              events: good
        total:
          metricSource:
            type: hcmon
            spec:
              sli:
                kind: availability
                source: probe
                retries: 1
              selector: '{name="web"}'
              events: total
  timeWindow:
  - duration: 1M
    isRolling: false
    calendar:
      startTime: 2024-01-01 00:00:00
      timeZone: UTC
  budgetingMethod: Occurrences
  objectives:
  - displayName: probe:web:availability
    target: 0.99
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-errors
  displayName: api-errors
  annotations:
    hcmon.io/selector: '{job="api"}'
    hcmon.io/warning: '0.95'
spec:
  service: hcmon
  indicator:
    metadata:
      name: api-errors-sli
    spec:
      ratioMetric:
        counter: false
        good:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(http_requests_total{code!~"5.."}[1m]))
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(http_requests_total[1m]))
  timeWindow:
  - duration: 28d
    isRolling: true
  budgetingMethod: Timeslices
  objectives:
  - displayName: api-errors
    target: 0.999
    timeSliceTarget: 0.95
    timeSliceWindow: 5m
"#;

    fn definitions() -> Vec<SloDefinition> {
        let web = SloDefinition {
            description: "web answers".into(),
            target: 0.99,
            period: Period::Calendar(CalendarUnit::Month),
            ..SloDefinition::new(
                "probe:web:availability".parse().unwrap(),
                "{name=\"web\"}",
                Sli::Availability {
                    source: AvailabilitySource::Probe,
                    retries: 1,
                },
                Origin::Api,
            )
        };
        let errors = SloDefinition {
            target: 0.999,
            warning: 0.95,
            period: Period::Rolling { days: 28 },
            budgeting: Budgeting::Timeslices {
                slice_ms: 300_000,
                slice_target: 0.95,
            },
            ..SloDefinition::new(
                "api-errors".parse().unwrap(),
                "{job=\"api\"}",
                Sli::Ratio {
                    good: "sum(rate(http_requests_total{code!~\"5..\"}[1m]))".into(),
                    valid: "sum(rate(http_requests_total[1m]))".into(),
                },
                Origin::Api,
            )
        };
        let response = SloDefinition::new(
            "incidents:response".parse().unwrap(),
            "",
            Sli::Response {
                targets: BTreeMap::from([(
                    crate::analytics::slo::IncidentSeverity::Critical,
                    900_000,
                )]),
            },
            Origin::Default,
        );
        vec![web, errors, response]
    }

    #[test]
    fn export_writes_the_fixture_and_import_reads_it_back() {
        let defs = definitions();
        assert_eq!(export(&defs, &utc()), EXPORTED);
        let back = import(EXPORTED, &utc()).unwrap();
        assert_eq!(back, defs[..2].to_vec());
    }

    #[test]
    fn latency_and_rolling_windows_round_trip() {
        let latency = SloDefinition {
            period: Period::Calendar(CalendarUnit::Week),
            ..SloDefinition::new(
                "probe:cache:latency".parse().unwrap(),
                "{name=\"cache\"}",
                Sli::Latency {
                    threshold_ms: 100.0,
                    quantile: 0.95,
                },
                Origin::Api,
            )
        };
        let zone = Zone::parse("Europe/Berlin").unwrap();
        let yaml = export(std::slice::from_ref(&latency), &zone);
        assert!(yaml.contains("timeZone: Europe/Berlin"), "{yaml}");
        assert_eq!(import(&yaml, &zone).unwrap(), vec![latency]);
        // Another zone than the collector's cannot be honoured.
        let e = import(&yaml, &utc()).unwrap_err();
        assert_eq!(
            e,
            OpenSloError::Field {
                document: 1,
                field: "spec.timeWindow[0].calendar.timeZone".into(),
                message: "\"Europe/Berlin\": this collector aligns calendar periods in UTC ([slo] timezone)".into(),
            }
        );
    }

    /// An SLO as another tool writes it: a Service, an SLI document referenced by name, bad
    /// events instead of good, a percentage target.
    const FOREIGN: &str = r#"
apiVersion: openslo/v1
kind: Service
metadata:
  name: checkout
spec:
  description: the shop
---
apiVersion: openslo/v1
kind: SLI
metadata:
  name: checkout-errors
spec:
  ratioMetric:
    counter: true
    bad:
      metricSource:
        type: prometheus
        spec:
          query: sum(increase(checkout_errors_total[1m]))
    total:
      metricSource:
        type: prometheus
        spec:
          query: sum(increase(checkout_requests_total[1m]))
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
  displayName: Checkout availability
  labels:
    team: [shop]
spec:
  service: checkout
  indicatorRef: checkout-errors
  timeWindow:
    - duration: 2w
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: good enough
      targetPercent: 99.5
  alertPolicies: [page-me]
"#;

    #[test]
    fn other_tools_prometheus_ratio_slos_import_as_ratio_slis() {
        let got = import(FOREIGN, &utc()).unwrap();
        let expected = SloDefinition {
            target: 0.995,
            period: Period::Rolling { days: 14 },
            ..SloDefinition::new(
                "checkout-availability".parse().unwrap(),
                "",
                Sli::Ratio {
                    good: "(sum(increase(checkout_requests_total[1m]))) - (sum(increase(checkout_errors_total[1m])))".into(),
                    valid: "sum(increase(checkout_requests_total[1m]))".into(),
                },
                Origin::Api,
            )
        };
        assert_eq!(got, vec![expected]);
    }

    fn refusal(yaml: &str) -> (usize, String) {
        match import(yaml, &utc()).unwrap_err() {
            OpenSloError::Field {
                document, field, ..
            } => (document, field),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn what_hcmon_cannot_express_is_refused_naming_document_and_field() {
        let slo = |spec: &str| {
            format!(
                "apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: x\nspec:\n  service: s\n{spec}"
            )
        };
        let ratio = "  indicator:\n    metadata:\n      name: i\n    spec:\n      ratioMetric:\n        good:\n          metricSource:\n            type: Prometheus\n            spec:\n              query: a\n        total:\n          metricSource:\n            type: Prometheus\n            spec:\n              query: b\n";
        let rolling = "  timeWindow:\n  - duration: 30d\n    isRolling: true\n";
        let one = "  budgetingMethod: Occurrences\n  objectives:\n  - target: 0.9\n";
        // Sanity: the parts make an importable SLO.
        assert_eq!(
            import(&slo(&format!("{ratio}{rolling}{one}")), &utc())
                .unwrap()
                .len(),
            1
        );
        let threshold = "  indicator:\n    metadata:\n      name: i\n    spec:\n      thresholdMetric:\n        metricSource:\n          type: Prometheus\n          spec:\n            query: a\n";
        assert_eq!(
            refusal(&format!(
                "---\n{}\n---\n{}",
                slo(&format!("{ratio}{rolling}{one}")),
                slo(&format!("{threshold}{rolling}{one}"))
            )),
            (2, "spec.indicator.spec.thresholdMetric".into())
        );
        let datadog = ratio.replace("type: Prometheus", "type: Datadog");
        assert_eq!(
            refusal(&slo(&format!("{datadog}{rolling}{one}"))),
            (
                1,
                "spec.indicator.spec.ratioMetric.good.metricSource.type".into()
            )
        );
        let hours = rolling.replace("30d", "12h");
        assert_eq!(
            refusal(&slo(&format!("{ratio}{hours}{one}"))),
            (1, "spec.timeWindow[0].duration".into())
        );
        let two = format!("{one}  - target: 0.8\n");
        assert_eq!(
            refusal(&slo(&format!("{ratio}{rolling}{two}"))),
            (1, "spec.objectives".into())
        );
        let ratio_slices = one.replace("Occurrences", "RatioTimeslices");
        assert_eq!(
            refusal(&slo(&format!("{ratio}{rolling}{ratio_slices}"))),
            (1, "spec.budgetingMethod".into())
        );
        let no_window = one.replace("Occurrences", "Timeslices");
        assert_eq!(
            refusal(&slo(&format!("{ratio}{rolling}{no_window}"))),
            (1, "spec.objectives[0].timeSliceTarget".into())
        );
        let mid_month = "  timeWindow:\n  - duration: 1M\n    calendar:\n      startTime: 2024-01-15 00:00:00\n      timeZone: UTC\n";
        assert_eq!(
            refusal(&slo(&format!("{ratio}{mid_month}{one}"))),
            (1, "spec.timeWindow[0].calendar.startTime".into())
        );
        let alert_policy =
            "apiVersion: openslo/v1\nkind: AlertPolicy\nmetadata:\n  name: p\nspec: {}\n";
        assert_eq!(refusal(alert_policy), (1, "kind".into()));
        let v2 = "apiVersion: openslo/v2alpha\nkind: SLO\nmetadata:\n  name: p\nspec: {}\n";
        assert_eq!(refusal(v2), (1, "apiVersion".into()));
        let bad_name = slo(&format!("{ratio}{rolling}{one}")).replace("name: x", "name: 'a b'");
        assert_eq!(refusal(&bad_name), (1, "metadata.name".into()));
        let high = one.replace("0.9", "1.5");
        assert_eq!(
            refusal(&slo(&format!("{ratio}{rolling}{high}"))),
            (1, "spec.objectives[0].target".into())
        );
    }

    #[test]
    fn broken_yaml_names_the_document_and_line() {
        let service = "apiVersion: openslo/v1\nkind: Service\nmetadata:\n  name: s\n";
        let e = import(&format!("{service}---\nkind: [unclosed\n"), &utc()).unwrap_err();
        match e {
            OpenSloError::Yaml { document, message } => {
                assert_eq!(document, 2);
                assert!(message.contains("line"), "{message}");
            }
            other => panic!("{other}"),
        }
        assert_eq!(import("", &utc()).unwrap_err(), OpenSloError::Empty);
    }
}

//! The stored form of an SLO created through the API (table `slos`, key = its name), apart from
//! [`SloDefinition`] so either can change without the other. Each value is
//! `{"format": 1, "record": …}`; fields added later are `#[serde(default)]`, unknown fields are
//! ignored, and an unknown format is corruption (written by a newer hcmon), as in
//! `storage/records.rs`. Periods, SLI kinds and budgeting are written as their own words here,
//! not through the in-memory types' serde, so a change there cannot change what is on disk.

use super::definition::{AvailabilitySource, Origin, Sli, SloDefinition, SloName};
use crate::analytics::slo::{Budgeting, IncidentSeverity, Period};
use crate::storage::{StoreError, Table};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format this version writes.
const FORMAT: u64 = 1;
const WHAT: &str = "slo";

#[derive(Serialize)]
struct Envelope<'a> {
    format: u64,
    record: &'a SloRecordV1,
}

#[derive(Deserialize)]
struct Marker {
    format: u64,
}

#[derive(Deserialize)]
struct Enveloped {
    record: SloRecordV1,
}

/// An API-created SLO as stored; the name is the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloRecordV1 {
    #[serde(default)]
    description: String,
    #[serde(default)]
    selector: String,
    sli: SliV1,
    target: f64,
    warning: f64,
    /// `day` `week` `month` `quarter` `year` or `<N>d`.
    period: String,
    budgeting: BudgetingV1,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum SliV1 {
    Availability {
        /// `probe` or `node`.
        source: String,
        #[serde(default)]
        retries: u32,
    },
    Latency {
        threshold_ms: f64,
        quantile: f64,
    },
    Ratio {
        good: String,
        valid: String,
    },
    /// Targets in ms by severity word (`critical`, `error`, `warning`).
    Response {
        targets: BTreeMap<String, i64>,
    },
    Resolution {
        targets: BTreeMap<String, i64>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum BudgetingV1 {
    Occurrences,
    Timeslices { slice_ms: i64, slice_target: f64 },
}

fn targets_v1(targets: &BTreeMap<IncidentSeverity, i64>) -> BTreeMap<String, i64> {
    targets
        .iter()
        .map(|(s, ms)| (s.name().to_owned(), *ms))
        .collect()
}

impl SloRecordV1 {
    pub fn of(def: &SloDefinition) -> Self {
        let sli = match &def.sli {
            Sli::Availability { source, retries } => SliV1::Availability {
                source: match source {
                    AvailabilitySource::Probe => "probe",
                    AvailabilitySource::Node => "node",
                }
                .to_owned(),
                retries: *retries,
            },
            Sli::Latency {
                threshold_ms,
                quantile,
            } => SliV1::Latency {
                threshold_ms: *threshold_ms,
                quantile: *quantile,
            },
            Sli::Ratio { good, valid } => SliV1::Ratio {
                good: good.clone(),
                valid: valid.clone(),
            },
            Sli::Response { targets } => SliV1::Response {
                targets: targets_v1(targets),
            },
            Sli::Resolution { targets } => SliV1::Resolution {
                targets: targets_v1(targets),
            },
        };
        let budgeting = match def.budgeting {
            Budgeting::Occurrences => BudgetingV1::Occurrences,
            Budgeting::Timeslices {
                slice_ms,
                slice_target,
            } => BudgetingV1::Timeslices {
                slice_ms,
                slice_target,
            },
        };
        Self {
            description: def.description.clone(),
            selector: def.selector.clone(),
            sli,
            target: def.target,
            warning: def.warning,
            period: def.period.to_string(),
            budgeting,
        }
    }

    /// The definition named `name` (origin API); a value no version wrote is corruption.
    pub fn into_definition(self, name: SloName) -> Result<SloDefinition, StoreError> {
        let corrupt = |detail: String| {
            StoreError::corrupt(Table::Slos, WHAT, format!("slo {name}: {detail}"))
        };
        let targets = |targets: BTreeMap<String, i64>| {
            targets
                .into_iter()
                .map(|(word, ms)| {
                    let severity = word
                        .parse::<IncidentSeverity>()
                        .map_err(|e| corrupt(format!("targets: {e}")))?;
                    Ok((severity, ms))
                })
                .collect::<Result<BTreeMap<_, _>, StoreError>>()
        };
        let sli = match self.sli {
            SliV1::Availability { source, retries } => Sli::Availability {
                source: match source.as_str() {
                    "probe" => AvailabilitySource::Probe,
                    "node" => AvailabilitySource::Node,
                    other => return Err(corrupt(format!("unknown availability source {other:?}"))),
                },
                retries,
            },
            SliV1::Latency {
                threshold_ms,
                quantile,
            } => Sli::Latency {
                threshold_ms,
                quantile,
            },
            SliV1::Ratio { good, valid } => Sli::Ratio { good, valid },
            SliV1::Response { targets: t } => Sli::Response {
                targets: targets(t)?,
            },
            SliV1::Resolution { targets: t } => Sli::Resolution {
                targets: targets(t)?,
            },
        };
        let period: Period = self
            .period
            .parse()
            .map_err(|e| corrupt(format!("period: {e}")))?;
        let budgeting = match self.budgeting {
            BudgetingV1::Occurrences => Budgeting::Occurrences,
            BudgetingV1::Timeslices {
                slice_ms,
                slice_target,
            } => Budgeting::Timeslices {
                slice_ms,
                slice_target,
            },
        };
        Ok(SloDefinition {
            name,
            description: self.description,
            selector: self.selector,
            sli,
            target: self.target,
            warning: self.warning,
            period,
            budgeting,
            origin: Origin::Api,
        })
    }
}

/// The stored value of an API-created SLO.
pub fn encode(def: &SloDefinition) -> Vec<u8> {
    let record = SloRecordV1::of(def);
    serde_json::to_vec(&Envelope {
        format: FORMAT,
        record: &record,
    })
    .expect("records serialize")
}

/// The SLO stored under `key`.
pub fn decode(key: &[u8], value: &[u8]) -> Result<SloDefinition, StoreError> {
    let text = String::from_utf8_lossy(key);
    let corrupt = |detail: String| StoreError::corrupt(Table::Slos, WHAT, detail);
    let name: SloName = text
        .parse()
        .map_err(|e| corrupt(format!("key {text:?} is not an SLO name: {e}")))?;
    let not_json = |e: serde_json::Error| corrupt(format!("slo {name} is not a JSON record: {e}"));
    let marker: Marker = serde_json::from_slice(value).map_err(not_json)?;
    if marker.format != FORMAT {
        return Err(corrupt(format!(
            "slo {name} has format {}, not one this version reads ({FORMAT}); written by a newer hcmon?",
            marker.format
        )));
    }
    let enveloped: Enveloped = serde_json::from_slice(value).map_err(not_json)?;
    enveloped.record.into_definition(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definitions() -> Vec<SloDefinition> {
        let name = |n: &str| n.parse::<SloName>().unwrap();
        vec![
            SloDefinition {
                description: "web answers".into(),
                ..SloDefinition::new(
                    name("web"),
                    "{name=\"web\"}",
                    Sli::Availability {
                        source: AvailabilitySource::Probe,
                        retries: 2,
                    },
                    Origin::Api,
                )
            },
            SloDefinition {
                period: Period::Calendar(crate::analytics::slo::CalendarUnit::Month),
                budgeting: Budgeting::Timeslices {
                    slice_ms: 60_000,
                    slice_target: 0.99,
                },
                ..SloDefinition::new(
                    name("redis:p95"),
                    "",
                    Sli::Latency {
                        threshold_ms: 100.0,
                        quantile: 0.95,
                    },
                    Origin::Api,
                )
            },
            SloDefinition::new(
                name("errors"),
                "",
                Sli::Ratio {
                    good: "sum(ok)".into(),
                    valid: "sum(all)".into(),
                },
                Origin::Api,
            ),
            SloDefinition::new(
                name("mtta"),
                "",
                Sli::Response {
                    targets: BTreeMap::from([(IncidentSeverity::Critical, 900_000)]),
                },
                Origin::Api,
            ),
        ]
    }

    #[test]
    fn definitions_round_trip_through_their_records() {
        for def in definitions() {
            let value = encode(&def);
            let back = decode(def.name.as_str().as_bytes(), &value).unwrap();
            assert_eq!(back, def);
        }
    }

    #[test]
    fn the_stored_form_is_pinned() {
        let value = encode(&definitions()[1]);
        let json: serde_json::Value = serde_json::from_slice(&value).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"format": 1, "record": {
                "description": "", "selector": "",
                "sli": {"kind": "latency", "threshold_ms": 100.0, "quantile": 0.95},
                "target": 0.95, "warning": 0.9, "period": "month",
                "budgeting": {"kind": "timeslices", "slice_ms": 60000, "slice_target": 0.99}
            }})
        );
    }

    #[test]
    fn unknown_formats_and_garbage_are_corruption_naming_the_slo() {
        let newer = br#"{"format": 2, "record": {}}"#;
        let e = decode(b"web", newer).unwrap_err().to_string();
        assert!(e.contains("slo web has format 2"), "{e}");
        let e = decode(b"web", b"not json").unwrap_err().to_string();
        assert!(e.contains("slo web is not a JSON record"), "{e}");
        let e = decode(b"has space", &encode(&definitions()[0]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an SLO name"), "{e}");
        let bad_period = br#"{"format": 1, "record": {"sli": {"kind": "ratio", "good": "a", "valid": "b"},
            "target": 0.9, "warning": 0.8, "period": "fortnight", "budgeting": {"kind": "occurrences"}}}"#;
        let e = decode(b"x", bad_period).unwrap_err().to_string();
        assert!(e.contains("period"), "{e}");
    }
}

//! The stored forms of annotations and experiments, apart from the in-memory types so either
//! can change without the other. Each value is `{"format": 1, "record": …}`; unknown fields
//! are ignored, an unknown format is corruption (written by a newer hcmon), as in
//! `access/store.rs`. The id is the key, not part of the record.

use super::{Annotation, Experiment, Window};
use crate::analytics::compare::{Criterion, Direction, Statistic};
use crate::storage::{StoreError, Table};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The format this version writes.
const FORMAT: u64 = 1;

#[derive(Serialize)]
struct Envelope<'a, T> {
    format: u64,
    record: &'a T,
}

#[derive(Deserialize)]
struct Marker {
    format: u64,
}

#[derive(Deserialize)]
struct Enveloped<T> {
    record: T,
}

#[derive(Debug, Serialize, Deserialize)]
struct AnnotationV1 {
    time_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_ms: Option<i64>,
    text: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    created_by: String,
    created_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct WindowV1 {
    start_ms: i64,
    end_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct CriterionV1 {
    /// `mean`, `median` or `p95`.
    statistic: String,
    /// `decrease` or `increase`.
    direction: String,
    by_percent: f64,
}

#[derive(Debug, Serialize, Deserialize)]
struct ExperimentV1 {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    baseline: WindowV1,
    treatment: WindowV1,
    selectors: Vec<String>,
    criterion: CriterionV1,
    created_by: String,
    created_ms: i64,
}

/// The stored value of `annotation`.
pub fn encode_annotation(a: &Annotation) -> Vec<u8> {
    let record = AnnotationV1 {
        time_ms: a.time_ms,
        end_ms: a.end_ms,
        text: a.text.clone(),
        tags: a.tags.clone(),
        node: a.node.clone(),
        created_by: a.created_by.clone(),
        created_ms: a.created_ms,
    };
    encode(&record)
}

/// The annotation stored under `key`.
pub fn decode_annotation(key: &[u8], value: &[u8]) -> Result<Annotation, StoreError> {
    let id = String::from_utf8_lossy(key).into_owned();
    let r: AnnotationV1 = decode(Table::Annotations, "annotation", &id, value)?;
    Ok(Annotation {
        id,
        time_ms: r.time_ms,
        end_ms: r.end_ms,
        text: r.text,
        tags: r.tags,
        node: r.node,
        created_by: r.created_by,
        created_ms: r.created_ms,
    })
}

/// The stored value of `experiment`.
pub fn encode_experiment(e: &Experiment) -> Vec<u8> {
    let window = |w: &Window| WindowV1 {
        start_ms: w.start_ms,
        end_ms: w.end_ms,
    };
    let record = ExperimentV1 {
        name: e.name.clone(),
        description: e.description.clone(),
        baseline: window(&e.baseline),
        treatment: window(&e.treatment),
        selectors: e.selectors.clone(),
        criterion: CriterionV1 {
            statistic: statistic_word(e.criterion.statistic).to_owned(),
            direction: direction_word(e.criterion.direction).to_owned(),
            by_percent: e.criterion.by_percent,
        },
        created_by: e.created_by.clone(),
        created_ms: e.created_ms,
    };
    encode(&record)
}

/// The experiment stored under `key`.
pub fn decode_experiment(key: &[u8], value: &[u8]) -> Result<Experiment, StoreError> {
    let id = String::from_utf8_lossy(key).into_owned();
    let r: ExperimentV1 = decode(Table::Experiments, "experiment", &id, value)?;
    let corrupt = |detail: String| StoreError::corrupt(Table::Experiments, "experiment", detail);
    let statistic = parse_statistic(&r.criterion.statistic).ok_or_else(|| {
        corrupt(format!(
            "experiment {id} has an unknown statistic {:?}",
            r.criterion.statistic
        ))
    })?;
    let direction = parse_direction(&r.criterion.direction).ok_or_else(|| {
        corrupt(format!(
            "experiment {id} has an unknown direction {:?}",
            r.criterion.direction
        ))
    })?;
    let window = |w: WindowV1| Window {
        start_ms: w.start_ms,
        end_ms: w.end_ms,
    };
    Ok(Experiment {
        id,
        name: r.name,
        description: r.description,
        baseline: window(r.baseline),
        treatment: window(r.treatment),
        selectors: r.selectors,
        criterion: Criterion {
            statistic,
            direction,
            by_percent: r.criterion.by_percent,
        },
        created_by: r.created_by,
        created_ms: r.created_ms,
    })
}

/// The word a statistic is stored (and named in the API) as.
pub fn statistic_word(statistic: Statistic) -> &'static str {
    match statistic {
        Statistic::Mean => "mean",
        Statistic::Median => "median",
        Statistic::P95 => "p95",
    }
}

pub fn parse_statistic(word: &str) -> Option<Statistic> {
    match word {
        "mean" => Some(Statistic::Mean),
        "median" => Some(Statistic::Median),
        "p95" => Some(Statistic::P95),
        _ => None,
    }
}

/// The word a direction is stored (and named in the API) as.
pub fn direction_word(direction: Direction) -> &'static str {
    match direction {
        Direction::Decrease => "decrease",
        Direction::Increase => "increase",
    }
}

pub fn parse_direction(word: &str) -> Option<Direction> {
    match word {
        "decrease" => Some(Direction::Decrease),
        "increase" => Some(Direction::Increase),
        _ => None,
    }
}

fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        format: FORMAT,
        record,
    })
    .expect("records serialize")
}

fn decode<T: DeserializeOwned>(
    table: Table,
    what: &'static str,
    id: &str,
    value: &[u8],
) -> Result<T, StoreError> {
    let corrupt = |detail: String| StoreError::corrupt(table, what, detail);
    let not_json = |e: serde_json::Error| corrupt(format!("{what} {id} is not a JSON record: {e}"));
    let marker: Marker = serde_json::from_slice(value).map_err(not_json)?;
    if marker.format != FORMAT {
        return Err(corrupt(format!(
            "{what} {id} has format {}, not one this version reads ({FORMAT}); written by a newer hcmon?",
            marker.format
        )));
    }
    let enveloped: Enveloped<T> = serde_json::from_slice(value).map_err(not_json)?;
    Ok(enveloped.record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotation() -> Annotation {
        Annotation {
            id: "018bcfe568000a1b2c3d".into(),
            time_ms: 1_700_000_000_000,
            end_ms: Some(1_700_000_600_000),
            text: "deployed v2".into(),
            tags: vec!["deploy".into()],
            node: Some("nas".into()),
            created_by: "admin".into(),
            created_ms: 1_700_000_001_000,
        }
    }

    fn experiment() -> Experiment {
        Experiment {
            id: "018bcfe568000a1b2c3e".into(),
            name: "bigger cache".into(),
            description: None,
            baseline: Window {
                start_ms: 1,
                end_ms: 2,
            },
            treatment: Window {
                start_ms: 3,
                end_ms: 4,
            },
            selectors: vec!["redis_latency_seconds".into()],
            criterion: Criterion {
                statistic: Statistic::P95,
                direction: Direction::Decrease,
                by_percent: 10.0,
            },
            created_by: "ops".into(),
            created_ms: 5,
        }
    }

    #[test]
    fn records_round_trip_and_their_format_is_fixed() {
        let a = annotation();
        let value = encode_annotation(&a);
        assert_eq!(
            String::from_utf8(value.clone()).unwrap(),
            r#"{"format":1,"record":{"time_ms":1700000000000,"end_ms":1700000600000,"text":"deployed v2","tags":["deploy"],"node":"nas","created_by":"admin","created_ms":1700000001000}}"#
        );
        assert_eq!(decode_annotation(a.id.as_bytes(), &value).unwrap(), a);
        let e = experiment();
        let value = encode_experiment(&e);
        assert_eq!(
            String::from_utf8(value.clone()).unwrap(),
            r#"{"format":1,"record":{"name":"bigger cache","baseline":{"start_ms":1,"end_ms":2},"treatment":{"start_ms":3,"end_ms":4},"selectors":["redis_latency_seconds"],"criterion":{"statistic":"p95","direction":"decrease","by_percent":10.0},"created_by":"ops","created_ms":5}}"#
        );
        assert_eq!(decode_experiment(e.id.as_bytes(), &value).unwrap(), e);
    }

    #[test]
    fn unknown_formats_and_words_are_corruption_unknown_fields_are_not() {
        let newer = br#"{"format":2,"record":{}}"#;
        let error = decode_annotation(b"x", newer).unwrap_err().to_string();
        assert!(error.contains("format 2"), "{error}");
        let extra = br#"{"format":1,"later":true,"record":{"time_ms":1,"text":"t","created_by":"a","created_ms":2,"colour":"red"}}"#;
        let a = decode_annotation(b"x", extra).unwrap();
        assert_eq!((a.time_ms, a.end_ms, a.tags.len()), (1, None, 0));
        let bad = String::from_utf8(encode_experiment(&experiment()))
            .unwrap()
            .replace("p95", "p99");
        let error = decode_experiment(b"x", bad.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("unknown statistic"), "{error}");
    }
}

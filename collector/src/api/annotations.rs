//! The annotation API's bodies (`/api/v1/annotations`): marked moments and spans.

use serde::{Deserialize, Serialize};

/// A time as a request gives it: Unix seconds (a number, or its text) or RFC 3339 text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TimeValue {
    Seconds(f64),
    Text(String),
}

/// `POST /api/v1/annotations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAnnotation {
    /// The moment, or the start of the span.
    pub time: TimeValue,
    /// The end of the span; a moment when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<TimeValue>,
    pub text: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The node it is about, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// An annotation, as listed and as made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub id: String,
    /// Unix ms.
    pub time_ms: i64,
    /// Unix ms of the span's end; `null` for a moment.
    pub end_ms: Option<i64>,
    pub text: String,
    pub tags: Vec<String>,
    pub node: Option<String>,
    /// The name of the token that made it.
    pub created_by: String,
}

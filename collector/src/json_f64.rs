//! `f64` in JSON, non-finite values included. JSON has no literal for infinity or NaN, and
//! serde_json writes them as `null`, which reads back as an error for an `f64`: a stored alert
//! record holding a forecast's +Inf ("never reaches the limit") once stopped the collector from
//! starting. Here finite values stay JSON numbers and non-finite ones are the strings
//! Prometheus' API uses: `"+Inf"`, `"-Inf"`, `"NaN"`.
//!
//! Reading takes numbers, those strings (and `"Inf"`, which Prometheus also parses) and `null`,
//! which records written before this module existed hold where the value was not finite. A
//! legacy `null` reads as NaN: serde_json wrote +Inf, -Inf and NaN all as `null`, so which one it
//! was is lost, and NaN is the value that claims nothing. It compares false with every
//! threshold, so an old value can neither fire nor resolve an alert, and it shows as "NaN"
//! (unknown) rather than as a direction it may never have had. (+Inf was the usual case, a
//! forecast no longer heading for its limit, but reading every `null` as +Inf would show a
//! falling series' -Inf or a gap's NaN as "never".) In an `Option<f64>` a `null` stays `None`,
//! as it always read.
//!
//! Use `#[serde(with = "crate::json_f64")]` on an `f64` field, [`option`] on an `Option<f64>`,
//! [`option_pair`] on an `Option<(f64, f64)>`, and [`JsonF64`] for values built with `json!`.

use serde::de::{self, Unexpected};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An `f64` that serializes as a JSON number when finite and as Prometheus' text otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JsonF64(pub f64);

/// How Prometheus writes a non-finite value (`+Inf`, `-Inf`, `NaN`); `None` when `v` is finite.
pub fn non_finite_text(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("+Inf")
    } else if v == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

impl Serialize for JsonF64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match non_finite_text(self.0) {
            Some(text) => serializer.serialize_str(text),
            None => serializer.serialize_f64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for JsonF64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonF64Visitor)
    }
}

struct JsonF64Visitor;

impl de::Visitor<'_> for JsonF64Visitor {
    type Value = JsonF64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, \"+Inf\", \"-Inf\" or \"NaN\"")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsonF64, E> {
        Ok(JsonF64(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsonF64, E> {
        Ok(JsonF64(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonF64, E> {
        Ok(JsonF64(v as f64))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonF64, E> {
        match v {
            "+Inf" | "Inf" => Ok(JsonF64(f64::INFINITY)),
            "-Inf" => Ok(JsonF64(f64::NEG_INFINITY)),
            "NaN" => Ok(JsonF64(f64::NAN)),
            _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
        }
    }

    /// A legacy `null`: see the module header for why NaN.
    fn visit_unit<E: de::Error>(self) -> Result<JsonF64, E> {
        Ok(JsonF64(f64::NAN))
    }
}

pub fn serialize<S: Serializer>(v: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    JsonF64(*v).serialize(serializer)
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    JsonF64::deserialize(deserializer).map(|v| v.0)
}

/// For `Option<f64>` fields; pair it with `#[serde(default)]`, as a field with `with` is no
/// longer optional by itself.
pub mod option {
    use super::JsonF64;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
        v.map(JsonF64).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        Option::<JsonF64>::deserialize(deserializer).map(|v| v.map(|v| v.0))
    }
}

/// For `Option<(f64, f64)>` fields (a range); pair it with `#[serde(default)]`.
pub mod option_pair {
    use super::JsonF64;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        v: &Option<(f64, f64)>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        v.map(|(a, b)| (JsonF64(a), JsonF64(b)))
            .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<(f64, f64)>, D::Error> {
        Option::<(JsonF64, JsonF64)>::deserialize(deserializer).map(|v| v.map(|(a, b)| (a.0, b.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Serialize, Deserialize)]
    struct Record {
        #[serde(with = "super")]
        value: f64,
        #[serde(default, with = "option")]
        threshold: Option<f64>,
        #[serde(default, with = "option_pair")]
        expected: Option<(f64, f64)>,
    }

    /// Writes `value`, checks the JSON, reads it back.
    fn check(value: f64, written: serde_json::Value) {
        let record = Record {
            value,
            threshold: Some(value),
            expected: Some((value, 1.0)),
        };
        let text = serde_json::to_string(&record).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["value"], written, "{text}");
        assert_eq!(json["threshold"], written, "{text}");
        assert_eq!(json["expected"], json!([written, 1.0]), "{text}");
        let back: Record = serde_json::from_str(&text).unwrap();
        for read in [
            back.value,
            back.threshold.unwrap(),
            back.expected.unwrap().0,
        ] {
            assert!(
                read == value || (read.is_nan() && value.is_nan()),
                "{value} came back as {read}"
            );
        }
    }

    #[test]
    fn every_value_round_trips_and_non_finite_ones_are_written_as_prometheus_does() {
        check(0.25, json!(0.25));
        check(-3.0, json!(-3.0));
        check(f64::MAX, json!(f64::MAX));
        check(f64::INFINITY, json!("+Inf"));
        check(f64::NEG_INFINITY, json!("-Inf"));
        check(f64::NAN, json!("NaN"));
    }

    #[test]
    fn legacy_nulls_and_integers_are_read() {
        let old: Record =
            serde_json::from_str(r#"{"value": null, "threshold": null, "expected": [null, 2]}"#)
                .unwrap();
        assert!(old.value.is_nan());
        assert_eq!(old.threshold, None, "an absent threshold stays absent");
        let (low, high) = old.expected.unwrap();
        assert!(low.is_nan() && high == 2.0);
        let short: Record = serde_json::from_str(r#"{"value": 7, "threshold": "Inf"}"#).unwrap();
        assert_eq!((short.value, short.threshold), (7.0, Some(f64::INFINITY)));
        assert_eq!(short.expected, None);
    }

    #[test]
    fn other_strings_are_refused_with_what_is_expected() {
        let error = serde_json::from_str::<Record>(r#"{"value": "lots"}"#).unwrap_err();
        assert!(
            error
                .to_string()
                .contains(r#"a number, "+Inf", "-Inf" or "NaN""#),
            "{error}"
        );
    }
}

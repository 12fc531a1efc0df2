//! The HTTP API's one parameter parser: [`Params`] holds a request's parameters (the query
//! string and, for POST, the form body, as Prometheus reads them) and reads each one as what it
//! must be: a time, a duration, a number, one of some words, a selector.
//!
//! Invariant: every reading is range-checked and answers [`ApiError::BadParam`] naming the
//! parameter for a value it cannot use, huge and negative ones included. Times and durations
//! are at most [`MAX_ABS_TIME_S`] (about 3000 years) in milliseconds, so handlers may add and
//! subtract them without overflow.

use super::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, RawForm, RawQuery};
use axum::http::Method;
use axum::http::request::Parts;
use hcmon_common::Selector;
use std::time::Duration;

/// Times and durations beyond ±3000 years are refused, which keeps all time arithmetic far from
/// overflow: 10¹¹ s is 10¹⁴ ms, and an `i64` holds 9·10¹⁸.
pub const MAX_ABS_TIME_S: f64 = 1e11;

/// The longest duration a parameter may give.
const MAX_DURATION: Duration = Duration::from_secs(MAX_ABS_TIME_S as u64);

/// A request's parameters, in order; a name may repeat (`match[]`).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let method = req.method().clone();
        let query = RawQuery(req.uri().query().map(str::to_owned));
        let form = RawForm::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadParam {
                name: "body",
                message: e.body_text(),
            })?;
        Params::parse(method, query, form)
    }
}

/// The parameters of the query string alone, for requests whose body is something else (JSON)
/// or nothing (DELETE).
#[derive(Debug)]
pub struct QueryParams(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Params::from_query(parts.uri.query()).map(QueryParams)
    }
}

fn bad_encoding(e: serde_urlencoded::de::Error) -> ApiError {
    ApiError::BadParam {
        name: "query string",
        message: e.to_string(),
    }
}

impl Params {
    /// For GET, axum's `RawForm` already holds the query string; for POST it holds the body and
    /// the query string may add more.
    fn parse(method: Method, query: RawQuery, form: RawForm) -> Result<Self, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(q) = query.0.filter(|_| method == Method::POST) {
            pairs.extend(
                serde_urlencoded::from_str::<Vec<(String, String)>>(&q).map_err(bad_encoding)?,
            );
        }
        if !form.0.is_empty() {
            pairs.extend(
                serde_urlencoded::from_bytes::<Vec<(String, String)>>(&form.0)
                    .map_err(bad_encoding)?,
            );
        }
        Ok(Self(pairs))
    }

    fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
            .map_err(bad_encoding)?;
        Ok(Self(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter the request must give.
    pub fn required(&self, name: &'static str) -> Result<&str, ApiError> {
        self.get(name).ok_or(ApiError::MissingParam(name))
    }

    /// `match[]` selectors (at least one).
    pub fn matches(&self) -> Result<Vec<Selector>, ApiError> {
        let selectors = self
            .all("match[]")
            .map(|s| {
                Selector::parse(s).map_err(|e| ApiError::BadParam {
                    name: "match[]",
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if selectors.is_empty() {
            return Err(ApiError::MissingParam("match[]"));
        }
        Ok(selectors)
    }

    /// A time as Unix seconds (fractions allowed) or RFC 3339, in milliseconds.
    pub fn time_ms(&self, name: &'static str) -> Result<Option<i64>, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        parse_time_ms(text)
            .map(Some)
            .ok_or_else(|| ApiError::BadParam {
                name,
                message: format!(
                    "{text:?} is neither Unix seconds (within ±3000 years) nor an RFC 3339 time"
                ),
            })
    }

    /// A positive duration as seconds (fractions allowed) or text such as `15s` or `1h`, at most
    /// about 3000 years.
    pub fn duration(&self, name: &'static str) -> Result<Option<Duration>, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        parse_duration(text)
            .map(Some)
            .ok_or_else(|| ApiError::BadParam {
                name,
                message: format!(
                    "{text:?} is not a positive duration like 15s or 1h (or seconds), at most 3000 years"
                ),
            })
    }

    /// [`duration`](Self::duration), `default` when absent.
    pub fn duration_or(&self, name: &'static str, default: Duration) -> Result<Duration, ApiError> {
        Ok(self.duration(name)?.unwrap_or(default))
    }

    /// A finite number.
    pub fn number(&self, name: &'static str) -> Result<Option<f64>, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        text.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| ApiError::BadParam {
                name,
                message: format!("{text:?} is not a number"),
            })
    }

    /// A whole number that fits an `i64`.
    pub fn integer(&self, name: &'static str) -> Result<Option<i64>, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        text.parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::BadParam {
                name,
                message: format!("{text:?} is not a whole number"),
            })
    }

    /// A count, at most `max`: a larger one (however large) is taken as `max`.
    pub fn count(&self, name: &'static str, max: usize) -> Result<Option<usize>, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Some(text.parse::<usize>().map_or(max, |n| n.min(max))));
        }
        Err(ApiError::BadParam {
            name,
            message: format!("{text:?} is not a count (a whole number from 0)"),
        })
    }

    /// `true` or `false`; `false` when absent.
    pub fn flag(&self, name: &'static str) -> Result<bool, ApiError> {
        Ok(self
            .choice(name, &[("true", true), ("false", false)])?
            .unwrap_or(false))
    }

    /// One of `options`' words, as its value; `None` when absent.
    pub fn choice<T: Copy>(
        &self,
        name: &'static str,
        options: &[(&str, T)],
    ) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|text| chosen(name, text, options))
            .transpose()
    }

    /// Every value a repeated parameter (`collect[]`) gives, each one of `options`' words.
    pub fn choices<T: Copy>(
        &self,
        name: &'static str,
        options: &[(&str, T)],
    ) -> Result<Vec<T>, ApiError> {
        self.all(name)
            .map(|text| chosen(name, text, options))
            .collect()
    }
}

/// The value of `options`' word `text`, or the error naming parameter `name` and the words.
fn chosen<T: Copy>(name: &'static str, text: &str, options: &[(&str, T)]) -> Result<T, ApiError> {
    match options.iter().find(|(word, _)| *word == text) {
        Some((_, value)) => Ok(*value),
        None => Err(ApiError::BadParam {
            name,
            message: format!(
                "{text:?} is not one of {}",
                options
                    .iter()
                    .map(|(word, _)| *word)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// Unix seconds (fractions allowed) or RFC 3339, in milliseconds; `None` beyond ±3000 years.
fn parse_time_ms(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds.abs() <= MAX_ABS_TIME_S).then(|| (seconds * 1000.0).round() as i64);
    }
    let time = humantime::parse_rfc3339_weak(text).ok()?;
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

/// Seconds (fractions allowed) or a duration such as `15s`; `None` unless at least a
/// millisecond and at most [`MAX_DURATION`].
fn parse_duration(text: &str) -> Option<Duration> {
    let duration = match text.parse::<f64>() {
        Ok(seconds) if (0.0..=MAX_ABS_TIME_S).contains(&seconds) => {
            Duration::from_millis((seconds * 1000.0).round() as u64)
        }
        Ok(_) => return None,
        Err(_) => humantime::parse_duration(text).ok()?,
    };
    (duration.as_millis() > 0 && duration <= MAX_DURATION).then_some(duration)
}

/// `duration` in milliseconds; durations from [`Params`] always fit.
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The message of the 400 a reading answers, naming its parameter.
    fn refused<T: std::fmt::Debug>(name: &str, reading: Result<T, ApiError>) -> String {
        match reading {
            Err(e @ ApiError::BadParam { .. }) => {
                assert!(e.to_string().contains(&format!("{name:?}")), "{e}");
                assert_eq!(e.status().0, axum::http::StatusCode::BAD_REQUEST);
                e.to_string()
            }
            other => panic!("{name}: want a 400, got {other:?}"),
        }
    }

    #[test]
    fn parses_times_and_steps_like_prometheus() {
        assert_eq!(parse_time_ms("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_time_ms("1700000000.5"), Some(1_700_000_000_500));
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_time_ms("yesterday"), None);
        let ms = |text| parse_duration(text).map(millis);
        assert_eq!(ms("15"), Some(15_000));
        assert_eq!(ms("1m"), Some(60_000));
        assert_eq!(ms("0.5"), Some(500));
        assert_eq!(ms("0"), None);
        assert_eq!(ms("0.0001"), None, "below a millisecond");
        assert_eq!(ms("-5"), None);
    }

    #[test]
    fn huge_and_negative_times_and_durations_are_refused_naming_the_parameter() {
        let max = i64::MAX.to_string();
        let min = i64::MIN.to_string();
        for text in [
            max.as_str(),
            &min,
            "9223372036854775",
            "1e300",
            "-1e300",
            "inf",
            "NaN",
            "99999-01-01T00:00:00Z",
        ] {
            refused("time", params(&[("time", text)]).time_ms("time"));
        }
        assert_eq!(
            params(&[("time", "-1e11")]).time_ms("time").unwrap(),
            Some(-100_000_000_000_000),
            "3000 years back is still a time"
        );
        for text in [
            max.as_str(),
            &min,
            "1e300",
            "-1",
            "-1e300",
            "inf",
            "NaN",
            "0",
            "5000years",
            "300000000years",
            "99999999999999999999s",
            "-5m",
            "soon",
        ] {
            let message = refused("window", params(&[("window", text)]).duration("window"));
            assert!(message.contains("positive duration"), "{message}");
        }
        assert_eq!(
            params(&[("window", "3000years")])
                .duration("window")
                .unwrap(),
            humantime::parse_duration("3000years").ok()
        );
    }

    #[test]
    fn huge_and_negative_numbers_are_refused_or_capped() {
        let max = i64::MAX.to_string();
        let over = "9223372036854775808";
        let p = params(&[("expires", &max)]);
        assert_eq!(p.integer("expires").unwrap(), Some(i64::MAX));
        for text in [over, "-9223372036854775809", "1e300", "2.5", "", "x"] {
            refused("expires", params(&[("expires", text)]).integer("expires"));
        }
        for text in ["1e309", "-1e309", "inf", "NaN", "ten"] {
            refused("limit", params(&[("limit", text)]).number("limit"));
        }
        assert_eq!(
            params(&[("limit", "1e300")]).number("limit").unwrap(),
            Some(1e300)
        );
        let count = |text| params(&[("limit", text)]).count("limit", 10_000);
        assert_eq!(count("5").unwrap(), Some(5));
        assert_eq!(count("18446744073709551616").unwrap(), Some(10_000));
        assert_eq!(count(&max).unwrap(), Some(10_000));
        for text in ["-1", "1e300", "", "+5"] {
            refused("limit", count(text));
        }
    }

    #[test]
    fn words_must_be_one_of_the_choices() {
        let p = params(&[("bound", "lower"), ("all", "yes")]);
        let options = [("upper", 1), ("lower", 2)];
        assert_eq!(p.choice("bound", &options).unwrap(), Some(2));
        assert_eq!(p.choice("missing", &options).unwrap(), None);
        let message = refused("all", p.flag("all"));
        assert!(
            message.ends_with(r#""yes" is not one of true, false"#),
            "{message}"
        );
        assert!(!params(&[]).flag("all").unwrap());
    }

    #[test]
    fn post_forms_add_the_query_string() {
        let post = Params::parse(
            Method::POST,
            RawQuery(Some("match[]=a".into())),
            RawForm("match[]=b&start=1".into()),
        )
        .unwrap();
        assert_eq!(post.all("match[]").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(post.required("start").unwrap(), "1");
        assert!(matches!(
            post.required("end"),
            Err(ApiError::MissingParam("end"))
        ));
    }
}

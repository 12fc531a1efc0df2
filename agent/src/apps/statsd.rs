//! StatsD and DogStatsD lines: `name:value|type[|@rate][|#tag:value,…]`, one metric a line.
//!
//! Types: `c` counter, `g` gauge (`+N`/`-N` moves it instead of setting it), `ms` timer,
//! `h` histogram, `d` DogStatsD distribution, `s` set. Fields DogStatsD added later (`|c:`
//! container, `|T` timestamp, `|e:` external data) are skipped, as other servers skip what they
//! do not know. Events (`_e{…}`) and service checks (`_sc|…`) are not metrics and are refused.

use std::fmt;

/// What a line records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Counter,
    /// Sets the gauge.
    Gauge,
    /// Moves the gauge by the value (`+N` or `-N`).
    GaugeDelta,
    /// A duration in milliseconds.
    Timer,
    /// `h` and `d`: an observation without a unit.
    Histogram,
    Set,
}

/// One parsed line. Borrowed from the packet: a line costs no allocation until its series is
/// looked up.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    pub name: &'a str,
    pub kind: Kind,
    /// The number; for a set, its value's hash is taken by the caller from `member`.
    pub value: f64,
    /// A set's member, as sent.
    pub member: &'a str,
    /// The client's sample rate in (0, 1]: a counter counts `value / rate`, a timer's
    /// observation weighs `1 / rate`.
    pub rate: f64,
    /// DogStatsD tags as (name, value); a tag without `:` has an empty value.
    pub tags: Vec<(&'a str, &'a str)>,
}

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum LineError {
    Empty,
    NoValue,
    NoType,
    UnknownType(String),
    BadValue(String),
    BadRate(String),
    NotAMetric,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Empty => f.write_str("the metric name is empty"),
            LineError::NoValue => f.write_str("no `:value` after the name"),
            LineError::NoType => f.write_str("no `|type` after the value"),
            LineError::UnknownType(t) => write!(f, "type {t:?} is not one of c, g, ms, h, d, s"),
            LineError::BadValue(v) => write!(f, "value {v:?} is not a finite number"),
            LineError::BadRate(r) => write!(f, "sample rate {r:?} is not a number in (0, 1]"),
            LineError::NotAMetric => {
                f.write_str("DogStatsD events and service checks are not metrics")
            }
        }
    }
}

/// Longest text quoted back in an error.
const QUOTED: usize = 40;

fn quoted(text: &str) -> String {
    let mut end = text.len().min(QUOTED);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Parses one line (without its newline).
pub fn parse(line: &str) -> Result<Line<'_>, LineError> {
    let line = line.trim_end_matches('\r');
    if line.starts_with("_e{") || line.starts_with("_sc|") {
        return Err(LineError::NotAMetric);
    }
    let (name, rest) = line.split_once(':').ok_or(LineError::NoValue)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(LineError::Empty);
    }
    let mut fields = rest.split('|');
    let value_text = fields.next().unwrap_or_default();
    let kind_text = fields.next().ok_or(LineError::NoType)?;
    let kind = match kind_text {
        "c" => Kind::Counter,
        "g" if value_text.starts_with(['+', '-']) => Kind::GaugeDelta,
        "g" => Kind::Gauge,
        "ms" => Kind::Timer,
        "h" | "d" => Kind::Histogram,
        "s" => Kind::Set,
        other => return Err(LineError::UnknownType(quoted(other))),
    };
    let value = match kind {
        Kind::Set => 0.0,
        _ => value_text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| LineError::BadValue(quoted(value_text)))?,
    };
    let mut parsed = Line {
        name,
        kind,
        value,
        member: value_text,
        rate: 1.0,
        tags: Vec::new(),
    };
    for field in fields {
        if let Some(rate) = field.strip_prefix('@') {
            parsed.rate = rate
                .parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0 && *r <= 1.0)
                .ok_or_else(|| LineError::BadRate(quoted(rate)))?;
        } else if let Some(tags) = field.strip_prefix('#') {
            parsed.tags.extend(
                tags.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| t.split_once(':').unwrap_or((t, ""))),
            );
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_type_rate_and_tags() {
        let line = parse("shop.orders:3|c|@0.5|#env:prod,region:eu").unwrap();
        assert_eq!(line.name, "shop.orders");
        assert_eq!(line.kind, Kind::Counter);
        assert_eq!(line.value, 3.0);
        assert_eq!(line.rate, 0.5);
        assert_eq!(line.tags, vec![("env", "prod"), ("region", "eu")]);
        assert_eq!(parse("q:7|g").unwrap().kind, Kind::Gauge);
        let delta = parse("q:-2|g").unwrap();
        assert_eq!((delta.kind, delta.value), (Kind::GaugeDelta, -2.0));
        assert_eq!(parse("t:12.5|ms").unwrap().kind, Kind::Timer);
        assert_eq!(parse("h:1|h").unwrap().kind, Kind::Histogram);
        assert_eq!(parse("d:1|d|#flag").unwrap().tags, vec![("flag", "")]);
        let set = parse("users:alice|s").unwrap();
        assert_eq!((set.kind, set.member), (Kind::Set, "alice"));
        // Newer DogStatsD fields are skipped.
        assert_eq!(parse("x:1|c|c:abc|T1700000000").unwrap().value, 1.0);
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let cases = [
            ("", "no `:value`"),
            (":1|c", "name is empty"),
            ("x:1", "no `|type`"),
            ("x:1|q", "\"q\" is not one of"),
            ("x:abc|c", "\"abc\" is not a finite number"),
            ("x:NaN|g", "not a finite number"),
            ("x:1|c|@2", "sample rate \"2\""),
            ("_e{5,4}:title|text", "events"),
        ];
        for (line, want) in cases {
            let error = parse(line).unwrap_err().to_string();
            assert!(error.contains(want), "{line:?}: {error}");
        }
    }
}

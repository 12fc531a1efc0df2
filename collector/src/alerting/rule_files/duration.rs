//! Prometheus' durations, as rule files write them: units from years down to milliseconds,
//! each at most once and in that order (`1h30m`, `90s`, `500ms`), or a bare `0`. A year is
//! 365 days and a week 7, as in Prometheus. Read by promql-parser's parser, the one PromQL's
//! ranges go through, held to what rule files accept.

use std::time::Duration;

/// A duration that is not Prometheus' format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration (write it as Prometheus does, e.g. 30s, 5m, 1h30m, 1d)")]
pub struct BadDuration(pub String);

/// Parses `text` as Prometheus does.
pub fn parse(text: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration(text.to_owned());
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    // PromQL reads a bare number as seconds; a rule file's durations need their unit.
    if text.parse::<f64>().is_ok() {
        return Err(bad());
    }
    match promql_parser::util::parse_duration(text) {
        Ok(duration) => Ok(duration),
        // The parser refuses zero, which a rule's `for: 0s` means.
        Err(_)
            if text.starts_with('0')
                && text
                    .trim_start_matches(['0', 'y', 'w', 'd', 'h', 'm', 's'])
                    .is_empty() =>
        {
            Ok(Duration::ZERO)
        }
        Err(_) => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected_ms: Option<u64>) {
        assert_eq!(
            parse(text).ok().map(|d| d.as_millis() as u64),
            expected_ms,
            "{text:?}"
        );
    }

    #[test]
    fn prometheus_durations() {
        check("0", Some(0));
        check("0s", Some(0));
        check("30s", Some(30_000));
        check("5m", Some(300_000));
        check("1h30m", Some(5_400_000));
        check("500ms", Some(500));
        check("1m500ms", Some(60_500));
        check("1d", Some(86_400_000));
        check("2w", Some(14 * 86_400_000));
        check("1y", Some(365 * 86_400_000));
        check("", None);
        check("5", None);
        check("m", None);
        check("5 m", None);
        check("30m1h", None);
        check("1m1m", None);
        check("1.5h", None);
        check("-5m", None);
        check("5min", None);
    }
}

//! Times in the alerting API: the range a request may name, checked before any arithmetic on
//! it, and RFC 3339 text that never fails, whatever a stored record holds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2200-01-01T00:00:00Z in Unix ms, the latest time a request may name. No silence or link
/// needs to reach further, and any two times up to it add without overflowing an `i64`.
pub const LATEST_MS: i64 = 7_258_118_400_000;

/// The last millisecond RFC 3339 can write with its four-digit year: 9999-12-31T23:59:59.999Z.
/// humantime's formatter reports an error past it, which `to_string` turns into a panic.
const LAST_WRITABLE_MS: i64 = 253_402_300_799_999;

/// `ms` as a `SystemTime` humantime can format: before 1970 becomes 1970, past year 9999 its
/// last millisecond. Only records stored before requests were range-checked hold such times,
/// and showing them must not fail.
pub fn writable(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.clamp(0, LAST_WRITABLE_MS).unsigned_abs())
}

/// `2026-05-01T12:00:00.000Z`, as Prometheus writes times.
pub fn rfc3339_millis(ms: i64) -> String {
    humantime::format_rfc3339_millis(writable(ms)).to_string()
}

/// A time in a request that cannot be used; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestTimeError {
    #[error("{name} {text:?} must be between 1970 and 2200")]
    OutOfRange { name: &'static str, text: String },
    #[error("{name} {text:?}: {reason} (want RFC 3339, e.g. 2026-05-01T12:00:00Z)")]
    NotRfc3339 {
        name: &'static str,
        text: String,
        reason: String,
    },
    #[error("duration {text:?}: {reason} (want e.g. 2h or 30m)")]
    NotDuration { text: String, reason: String },
    #[error("duration {0:?} ends the silence after 2200; it must end by then")]
    EndsTooLate(String),
}

fn out_of_range(name: &'static str, text: &str) -> RequestTimeError {
    RequestTimeError::OutOfRange {
        name,
        text: text.to_owned(),
    }
}

/// The year an RFC 3339 time starts with.
fn year(text: &str) -> Option<u32> {
    text.get(..4)?.parse().ok()
}

/// A time from a request (RFC 3339) as Unix ms, refused unless between 1970 and 2200.
pub fn parse_request_time(name: &'static str, text: &str) -> Result<i64, RequestTimeError> {
    let at = humantime::parse_rfc3339_weak(text).map_err(|e| match e {
        humantime::TimestampError::OutOfRange if year(text).is_some_and(|y| y < 1970) => {
            out_of_range(name, text)
        }
        e => RequestTimeError::NotRfc3339 {
            name,
            text: text.to_owned(),
            reason: e.to_string(),
        },
    })?;
    at.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .filter(|ms| *ms <= LATEST_MS)
        .ok_or_else(|| out_of_range(name, text))
}

/// Where a request says a silence starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceEnd<'a> {
    /// `ends_at`, RFC 3339.
    At(&'a str),
    /// `duration` after the start, e.g. `2h`.
    After(&'a str),
}

/// A silence's start and end in Unix ms: from `starts_at` (default `now_ms`) to `end`, both
/// between 1970 and 2200. Whether it ends after it starts is the silence's own check.
pub fn silence_window(
    now_ms: i64,
    starts_at: Option<&str>,
    end: SilenceEnd<'_>,
) -> Result<(i64, i64), RequestTimeError> {
    let starts_ms = match starts_at {
        Some(text) => parse_request_time("starts_at", text)?,
        None => now_ms,
    };
    let ends_ms = match end {
        SilenceEnd::At(text) => parse_request_time("ends_at", text)?,
        SilenceEnd::After(text) => {
            let duration =
                humantime::parse_duration(text).map_err(|e| RequestTimeError::NotDuration {
                    text: text.to_owned(),
                    reason: e.to_string(),
                })?;
            i64::try_from(duration.as_millis())
                .ok()
                .and_then(|ms| starts_ms.checked_add(ms))
                .filter(|ms| *ms <= LATEST_MS)
                .ok_or_else(|| RequestTimeError::EndsTooLate(text.to_owned()))?
        }
    };
    Ok((starts_ms, ends_ms))
}

/// Refuses an acknowledge link's `expires` (Unix seconds) unless between 1970 and 2200.
pub fn check_link_expiry(expires_s: i64) -> Result<(), RequestTimeError> {
    match expires_s.checked_mul(1000) {
        Some(ms) if (0..=LATEST_MS).contains(&ms) => Ok(()),
        _ => Err(out_of_range("expires", &expires_s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_777_636_800_000; // 2026-05-01T12:00:00Z

    fn check(starts_at: Option<&str>, end: SilenceEnd<'_>, expected: Result<(i64, i64), &str>) {
        let got = silence_window(NOW, starts_at, end);
        match (&got, expected) {
            (Ok(got), Ok(want)) => assert_eq!(*got, want, "{starts_at:?} {end:?}"),
            (Err(got), Err(want)) => {
                assert!(got.to_string().contains(want), "{got:?} lacks {want:?}")
            }
            _ => panic!("{starts_at:?} {end:?}: got {got:?}, want {expected:?}"),
        }
    }

    #[test]
    fn silence_windows_in_range_are_taken_and_the_rest_refused_with_the_reason() {
        use SilenceEnd::{After, At};
        check(None, After("2h"), Ok((NOW, NOW + 7_200_000)));
        check(
            Some("2026-05-01T13:00:00Z"),
            At("2026-05-01T14:00:00Z"),
            Ok((NOW + 3_600_000, NOW + 7_200_000)),
        );
        check(
            Some("2199-12-31T23:00:00Z"),
            After("1h"),
            Ok((LATEST_MS - 3_600_000, LATEST_MS)),
        );
        // The report: a start in year 9999 and a long duration.
        check(
            Some("9999-01-01T00:00:00Z"),
            After("1000years"),
            Err(r#"starts_at "9999-01-01T00:00:00Z" must be between 1970 and 2200"#),
        );
        check(
            Some("1969-12-31T23:59:59Z"),
            After("1h"),
            Err("must be between 1970 and 2200"),
        );
        check(
            None,
            At("2300-01-01T00:00:00Z"),
            Err(r#"ends_at "2300-01-01T00:00:00Z" must be between 1970 and 2200"#),
        );
        check(None, After("200years"), Err("ends the silence after 2200"));
        // Larger than an i64 of ms, and larger than humantime can count.
        check(None, After("300000000years"), Err("after 2200"));
        check(None, After("99999999999999999999s"), Err("duration"));
        check(Some("tomorrow"), After("1h"), Err("want RFC 3339"));
        check(
            Some("2026-05-01T25:00:00Z"),
            After("1h"),
            Err("want RFC 3339"),
        );
        check(None, After("soon"), Err("want e.g. 2h"));
    }

    #[test]
    fn link_expiries_are_range_checked_without_overflow() {
        assert_eq!(check_link_expiry(2_000_000_000), Ok(()));
        for bad in [i64::MAX, i64::MIN, -1, LATEST_MS / 1000 + 1] {
            let error = check_link_expiry(bad).unwrap_err().to_string();
            assert!(error.contains("between 1970 and 2200"), "{error}");
        }
    }

    #[test]
    fn any_stored_time_is_written_without_failing() {
        assert_eq!(rfc3339_millis(NOW), "2026-05-01T12:00:00.000Z");
        assert_eq!(rfc3339_millis(i64::MIN), "1970-01-01T00:00:00.000Z");
        for far in [i64::MAX, LAST_WRITABLE_MS + 1, 315_537_897_600_000] {
            assert_eq!(rfc3339_millis(far), "9999-12-31T23:59:59.999Z");
        }
    }
}

//! Numbers printed as Prometheus' Go templates print them, so an annotation copied from a
//! community rule set reads the same in hcmon: `$value` as Go's `%v`, `printf`'s float verbs,
//! and Prometheus' `humanize`, `humanize1024`, `humanizePercentage` and `humanizeDuration`.

/// Go's text for the values every format prints the same way: Prometheus' own spelling.
use crate::json_f64::non_finite_text as special;

/// `1.5e3` as Go writes exponents: a sign and at least two digits (`1.5e+03`).
fn go_exponent(rust: &str) -> String {
    let (mantissa, exp) = rust.split_once('e').unwrap_or((rust, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// The decimal exponent of `v` once rounded as `{:e}` with `decimals` rounds it.
fn exponent(v: f64, decimals: Option<usize>) -> i32 {
    let text = match decimals {
        Some(d) => format!("{v:.d$e}"),
        None => format!("{v:e}"),
    };
    text.split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0)
}

fn trim_zeros(text: &str) -> &str {
    match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.'),
        false => text,
    }
}

/// Go's `%v` (and `%g` without a precision): the shortest text that reads back the same, with
/// an exponent below 1e-4 and from 1e6 on (Go prints a million as `1e+06`).
pub fn value(v: f64) -> String {
    if let Some(text) = special(v) {
        return text.to_owned();
    }
    let exp = exponent(v, None);
    if v != 0.0 && !(-4..6).contains(&exp) {
        go_exponent(&format!("{v:e}"))
    } else {
        format!("{v}")
    }
}

/// Go's `%.<precision>g`: `precision` significant digits, an exponent when it is below -4 or
/// at least the precision, no trailing zeros.
pub fn g(v: f64, precision: usize) -> String {
    if let Some(text) = special(v) {
        return text.to_owned();
    }
    let precision = precision.max(1);
    if v == 0.0 {
        return "0".into();
    }
    let exp = exponent(v, Some(precision - 1));
    if exp < -4 || exp >= precision as i32 {
        let text = format!("{v:.prec$e}", prec = precision - 1);
        let (mantissa, e) = text.split_once('e').unwrap_or((&text, "0"));
        go_exponent(&format!("{}e{e}", trim_zeros(mantissa)))
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_owned()
    }
}

/// Go's `%.<precision>f`.
pub fn f(v: f64, precision: usize) -> String {
    match special(v) {
        Some(text) => text.to_owned(),
        None => format!("{v:.precision$}"),
    }
}

/// Go's `%.<precision>e`.
pub fn e(v: f64, precision: usize) -> String {
    match special(v) {
        Some(text) => text.to_owned(),
        None => go_exponent(&format!("{v:.precision$e}")),
    }
}

/// Prometheus' `humanize`: SI prefixes, four significant digits (`1.235M`, `500m`).
pub fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g(v, 4);
    }
    let (scaled, prefix) = scale(v, 1000.0, &["k", "M", "G", "T", "P", "E", "Z", "Y"]);
    format!("{}{prefix}", g(scaled, 4))
}

/// Prometheus' `humanize1024`: binary prefixes (`1ki`, `1.5Mi`), nothing below 1.
pub fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g(v, 4);
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g(v, 4))
}

/// Prometheus' `humanizePercentage`: a ratio as a percentage (`0.1234` → `12.34%`).
pub fn humanize_percentage(v: f64) -> String {
    format!("{}%", g(v * 100.0, 4))
}

/// Prometheus' `humanizeDuration`: seconds as `1d 2h 3m 4s`, or `1.5s`, `250ms`.
pub fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", g(v, 4));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let whole = v as i64;
        let (seconds, minutes) = (whole % 60, (whole / 60) % 60);
        let (hours, days) = ((whole / 3600) % 24, whole / 86_400);
        return match (days, hours, minutes) {
            (0, 0, 0) => format!("{sign}{}s", g(v, 4)),
            (0, 0, _) => format!("{sign}{minutes}m {seconds}s"),
            (0, _, _) => format!("{sign}{hours}h {minutes}m {seconds}s"),
            _ => format!("{sign}{days}d {hours}h {minutes}m {seconds}s"),
        };
    }
    let (scaled, prefix) = scale(v, 1000.0, &[]);
    format!("{}{prefix}s", g(scaled, 4))
}

/// `v` with the prefix that brings it to [1, step): up through `up` for large values, down
/// through milli, micro, … for small ones.
fn scale(v: f64, step: f64, up: &[&'static str]) -> (f64, &'static str) {
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in up {
            if v.abs() < step {
                break;
            }
            prefix = p;
            v /= step;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= step;
        }
    }
    (v, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expected text is what Go (and so Prometheus) prints.
    #[test]
    fn numbers_print_as_go_prints_them() {
        for (v, expected) in [
            (0.5, "0.5"),
            (1.0, "1"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.25, "-2.25"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(value(v), expected, "%v of {v}");
        }
        assert_eq!(g(12345.0, 4), "1.234e+04");
        assert_eq!(g(100.0, 4), "100");
        assert_eq!(g(0.000012345, 3), "1.23e-05");
        assert_eq!(g(1.5, 4), "1.5");
        assert_eq!(f(2.0 / 3.0, 2), "0.67");
        assert_eq!(f(f64::INFINITY, 2), "+Inf");
        assert_eq!(e(1234.5678, 2), "1.23e+03");
    }

    #[test]
    fn humanize_functions_match_prometheus() {
        for (v, expected) in [
            (0.0, "0"),
            (1234567.0, "1.235M"),
            (999.0, "999"),
            (1000.0, "1k"),
            (0.5, "500m"),
            (0.000_002, "2u"),
            (-1500.0, "-1.5k"),
        ] {
            assert_eq!(humanize(v), expected, "humanize {v}");
        }
        assert_eq!(humanize1024(1024.0), "1ki");
        assert_eq!(humanize1024(1536.0 * 1024.0), "1.5Mi");
        assert_eq!(humanize1024(0.5), "0.5");
        assert_eq!(humanize_percentage(0.1234), "12.34%");
        assert_eq!(humanize_percentage(1.0), "100%");
        for (v, expected) in [
            (0.0, "0s"),
            (1.5, "1.5s"),
            (0.25, "250ms"),
            (90.0, "1m 30s"),
            (3661.0, "1h 1m 1s"),
            (90061.0, "1d 1h 1m 1s"),
            (-90.0, "-1m 30s"),
        ] {
            assert_eq!(humanize_duration(v), expected, "humanizeDuration {v}");
        }
    }
}

//! OpenTelemetry names to Prometheus names, the way Prometheus' own OTLP receiver translates
//! them by default (underscore escaping with suffixes), so a dashboard written against
//! Prometheus fed by the same SDK finds the same series here:
//!
//! - a metric name is split into words at every character that is not a letter or a digit and
//!   joined with `_` (`http.server.request.duration` → `http_server_request_duration`);
//! - the unit, without its `{annotations}`, becomes a suffix word unless the name already
//!   carries it (`s` → `_seconds`, `By` → `_bytes`, `By/s` → `_bytes_per_second`); a gauge in
//!   unit `1` ends in `_ratio`;
//! - a monotonic sum (a counter) ends in `_total`, moved to the end if the name had it inside;
//! - a label name keeps letters, digits and `_`, everything else becoming `_`; one that starts
//!   with a digit or a single `_` is prefixed with `key` (`key_`), as `__` names are reserved.

/// What kind of Prometheus family a metric becomes, as far as its name's suffixes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A monotonic sum: `_total`.
    Counter,
    /// A gauge or a non-monotonic sum: `_ratio` for unit `1`.
    Gauge,
    /// Histograms and summaries: the part suffixes (`_bucket`, `_sum`, `_count`) are added by
    /// the caller.
    Distribution,
}

/// The word a unit's main part becomes; `None` for a unit not in the table (it is then kept,
/// cleaned).
fn unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        _ => return None,
    })
}

/// The word the part of a unit after `/` becomes.
fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// A unit part outside the tables, reduced to name characters.
fn cleaned(unit: &str) -> String {
    words(unit).collect::<Vec<_>>().join("_")
}

/// The unit without `{…}` annotations, as (main, per) words; either may be empty.
pub fn unit_words(unit: &str) -> (String, String) {
    let mut plain = String::with_capacity(unit.len());
    let mut depth = 0usize;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let (main, per) = match plain.split_once('/') {
        Some((main, per)) => (main.trim(), per.trim()),
        None => (plain.trim(), ""),
    };
    let main = unit_word(main).map_or_else(|| cleaned(main), str::to_owned);
    let per = per_unit_word(per).map_or_else(|| cleaned(per), str::to_owned);
    (main, per)
}

/// The Prometheus metric name of an OpenTelemetry metric.
pub fn metric_name(name: &str, unit: &str, kind: NameKind) -> String {
    let mut tokens: Vec<String> = words(name).map(str::to_owned).collect();
    if kind == NameKind::Counter {
        tokens.retain(|t| t != "total");
    }
    let (main, per) = unit_words(unit);
    if !main.is_empty() && !tokens.contains(&main) {
        tokens.push(main);
    }
    if !per.is_empty() && !tokens.contains(&per) {
        tokens.push("per".to_owned());
        tokens.push(per);
    }
    match kind {
        NameKind::Counter => tokens.push("total".to_owned()),
        NameKind::Gauge if unit.trim() == "1" && !tokens.iter().any(|t| t == "ratio") => {
            tokens.push("ratio".to_owned())
        }
        _ => {}
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The Prometheus label name of an attribute key; empty for an empty key.
pub fn label_name(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let mut out: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') {
        // `__` names are reserved for the store's own use; a single `_` gets the same prefix.
        out.insert_str(0, "key");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_translation() {
        use NameKind::*;
        let cases = [
            (
                "http.server.request.duration",
                "s",
                Distribution,
                "http_server_request_duration_seconds",
            ),
            (
                "http.server.active_requests",
                "{request}",
                Gauge,
                "http_server_active_requests",
            ),
            (
                "system.network.io",
                "By",
                Counter,
                "system_network_io_bytes_total",
            ),
            ("requests.total", "1", Counter, "requests_total"),
            (
                "processed_total.items",
                "",
                Counter,
                "processed_items_total",
            ),
            ("cpu.utilization", "1", Gauge, "cpu_utilization_ratio"),
            ("throughput", "By/s", Gauge, "throughput_bytes_per_second"),
            ("latency_seconds", "s", Gauge, "latency_seconds"),
            ("queue-depth", "{items}/min", Gauge, "queue_depth_per_min"),
            ("5xx.errors", "", Counter, "_5xx_errors_total"),
            ("temperature", "Cel", Gauge, "temperature_celsius"),
            ("odd", "furlongs", Gauge, "odd_furlongs"),
        ];
        for (name, unit, kind, want) in cases {
            assert_eq!(metric_name(name, unit, kind), want, "{name} [{unit}]");
        }
    }

    #[test]
    fn label_names_are_sanitised() {
        assert_eq!(label_name("http.route"), "http_route");
        assert_eq!(label_name("2xx"), "key_2xx");
        assert_eq!(label_name("_private"), "key_private");
        assert_eq!(label_name("__name__"), "key__name__");
        assert_eq!(label_name("k8s.pod.name"), "k8s_pod_name");
        assert_eq!(label_name(""), "");
    }
}

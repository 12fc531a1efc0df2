//! What to do about a node's failing dimensions, naming the cause the checks found ("node nas:
//! clock 4.2 s ahead of the collector — enable NTP"). Pure.

use super::dimension::Dimension;
use super::evaluate::NodeReport;

/// `HH:MM UTC` of a Unix ms time.
fn clock_time(ms: i64) -> String {
    let minutes = ms.div_euclid(60_000).rem_euclid(24 * 60);
    format!("{:02}:{:02} UTC", minutes / 60, minutes % 60)
}

fn who(report: &NodeReport) -> String {
    if report.node.is_empty() {
        "remote-written series".to_owned()
    } else {
        format!("node {}", report.node)
    }
}

fn example<'a>(report: &'a NodeReport, check: &str) -> Option<&'a str> {
    report
        .checks
        .iter()
        .find(|c| c.check == check && c.failed > 0 && !c.example.is_empty())
        .map(|c| c.example.as_str())
}

fn failed(report: &NodeReport, check: &str) -> u64 {
    report
        .checks
        .iter()
        .find(|c| c.check == check)
        .map_or(0, |c| c.failed)
}

/// One line per problem found, most fundamental first.
pub fn recommendations(report: &NodeReport) -> Vec<String> {
    let who = who(report);
    let mut out = Vec::new();
    if let Some(offset) = report.clock_offset_ms {
        let seconds = offset.unsigned_abs() as f64 / 1000.0;
        if offset > 0 {
            out.push(format!(
                "{who}: clock {seconds:.1} s ahead of the collector — enable NTP (timedatectl set-ntp true)"
            ));
        } else {
            out.push(format!(
                "{who}: batches arrive {seconds:.1} s after their timestamps at best — its clock is behind the collector's (enable NTP) or the path to the collector is slow"
            ));
        }
    }
    let failing = |d: Dimension| report.failing.contains(&d);
    if failing(Dimension::Completeness) && report.expected > 0 {
        let missing = report.expected.saturating_sub(report.received) as f64;
        let share = 100.0 * missing / report.expected as f64;
        let since = report
            .missing_since_ms
            .map(|t| format!(" since {}", clock_time(t)))
            .unwrap_or_default();
        // A probe that misses runs says so by name; otherwise the node's samples are missing.
        let probe = report
            .gaps
            .iter()
            .find_map(|g| {
                g.series
                    .strip_prefix("probe ")
                    .and_then(|r| r.split_once(':'))
            })
            .map(|(name, _)| name.to_owned());
        match probe {
            Some(name) if report.gaps.iter().all(|g| g.series.starts_with("probe ")) => {
                out.push(format!(
                    "probe {name}: {share:.0} % of runs missing{since} — the probe runs late or the agent is overloaded"
                ))
            }
            _ => out.push(format!(
                "{who}: {share:.0} % of expected samples missing{since} — check that its agent runs and reaches the collector"
            )),
        }
    }
    if failing(Dimension::Timeliness)
        && let Some(p99) = report.lag_p99_ms
    {
        out.push(format!(
            "{who}: 99 % of batches arrive within {:.1} s, against a {:.0} s interval — check the network path and the collector's load",
            p99 as f64 / 1000.0,
            report.interval_ms as f64 / 1000.0
        ));
    }
    if failing(Dimension::Consistency) {
        if let Some(series) = example(report, "counter_backwards") {
            out.push(format!(
                "{series}: counter went backwards {} time(s) without a reset — two sources may write this series, or a gauge is declared a counter",
                failed(report, "counter_backwards")
            ));
        }
        if let Some(series) = example(report, "conflicting_duplicates") {
            out.push(format!(
                "{series}: samples with the same timestamp and different values — two senders share one label set; add a label that tells them apart"
            ));
        }
        if let Some(what) = example(report, "values_contradict") {
            out.push(format!(
                "{who}: {what} — the source reports inconsistent figures"
            ));
        }
    }
    if failing(Dimension::Accuracy)
        && let Some(series) = example(report, "impossible_values")
    {
        out.push(format!(
            "{series}: {} impossible value(s) — check the exporter's units and scaling",
            failed(report, "impossible_values")
        ));
    }
    if failing(Dimension::Validity) {
        if let Some(series) = example(report, "labels_outside_schema") {
            out.push(format!(
                "{series}: a label value outside its schema (le and quantile must be numbers, cpu a CPU number)"
            ));
        }
        if failed(report, "refused_at_ingest") > 0 {
            out.push(format!(
                "{who}: {} sample(s) refused at ingest as invalid — see the collector's log and hcmon_collector_rejected_batches_total",
                failed(report, "refused_at_ingest")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::dimension::Scores;
    use crate::quality::evaluate::{Check, SeriesGap};

    fn report() -> NodeReport {
        NodeReport {
            node: "nas".into(),
            scores: Scores::default(),
            overall: 1.0,
            failing: Vec::new(),
            checks: Vec::new(),
            series: 1,
            received: 88,
            expected: 100,
            clock_offset_ms: None,
            lag_p99_ms: Some(250),
            gaps: Vec::new(),
            worst: Vec::new(),
            low_confidence: Vec::new(),
            interval_ms: 10_000,
            missing_since_ms: Some(2 * 3_600_000),
            recommendations: Vec::new(),
        }
    }

    #[test]
    fn names_the_cause() {
        let mut r = report();
        r.clock_offset_ms = Some(4_200);
        assert_eq!(
            recommendations(&r),
            vec![
                "node nas: clock 4.2 s ahead of the collector — enable NTP (timedatectl set-ntp true)"
            ]
        );
        r.clock_offset_ms = None;
        r.failing = vec![Dimension::Completeness];
        r.gaps = vec![SeriesGap {
            series: "probe redis-cache: redis_up{name=\"redis-cache\"}".into(),
            after_ms: 0,
            before_ms: 1,
            missing: 3,
        }];
        assert_eq!(
            recommendations(&r),
            vec![
                "probe redis-cache: 12 % of runs missing since 02:00 UTC — the probe runs late or the agent is overloaded"
            ]
        );
        r.gaps.clear();
        r.failing = vec![Dimension::Consistency];
        r.checks = vec![Check {
            dimension: Dimension::Consistency,
            check: "counter_backwards",
            failed: 3,
            of: 100,
            example: "jobs_total{job=\"x\"}".into(),
        }];
        assert!(
            recommendations(&r)[0]
                .starts_with("jobs_total{job=\"x\"}: counter went backwards 3 time(s)")
        );
    }
}

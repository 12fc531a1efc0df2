//! Scripted histories in an in-memory store against hand-computed figures.

use super::*;
use crate::analytics::slo::slices::tally_of;
use crate::analytics::slo::{IncidentSeverity, Outcome, Period};
use crate::catalog::SeriesCatalog;
use crate::slo::definition::Origin;
use crate::storage::{MemoryKv, MetricKind, Sample, SeriesId, SeriesMeta, StorageConfig, Tsdb};
use hcmon_common::{Labels, Selector};
use std::collections::BTreeMap;
use std::sync::Arc;

const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

fn ms(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// A store holding `series` (name, labels) with `samples(series index) -> (ts, value)`.
fn store(series: &[(&str, &[(&str, &str)])], samples: Vec<(usize, i64, f64)>) -> SloSource {
    let tsdb = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
        .unwrap()
        .tsdb;
    let metas: Vec<SeriesMeta> = series
        .iter()
        .enumerate()
        .map(|(i, (name, labels))| SeriesMeta {
            id: SeriesId(i as u64 + 1),
            labels: Labels::new(
                name,
                labels.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            )
            .unwrap(),
            kind: if name.ends_with("_total") {
                MetricKind::Counter
            } else {
                MetricKind::Gauge
            },
            help: String::new(),
        })
        .collect();
    tsdb.create_series(&metas).unwrap();
    let mut samples: Vec<Sample> = samples
        .into_iter()
        .map(|(i, ts, value)| Sample {
            series: SeriesId(i as u64 + 1),
            timestamp_ms: ts,
            value,
        })
        .collect();
    samples.sort_by_key(|s| (s.timestamp_ms, s.series.0));
    for chunk in samples.chunks(5000) {
        tsdb.append(None, chunk).unwrap();
    }
    let tsdb = Arc::new(tsdb);
    SloSource {
        history: Arc::new(crate::analysis::history::History::local(tsdb.clone())),
        tsdb,
        catalog: Arc::new(SeriesCatalog::new(metas)),
    }
}

fn slo(selector: &str, sli: Sli) -> SloDefinition {
    SloDefinition::new("test".parse().unwrap(), selector, sli, Origin::Config)
}

fn probe_sli(retries: u32) -> Sli {
    Sli::Availability {
        source: AvailabilitySource::Probe,
        retries,
    }
}

fn run(
    source: &SloSource,
    def: &SloDefinition,
    window: Window,
    maintenance: &[MaintenanceWindow],
    zone: &Zone,
) -> SloEvaluation {
    run_at(source, def, window, maintenance, zone, window.end_ms + HOUR)
}

/// Evaluated at `now_ms`, which decides the rollups it is read from (1-minute ones are kept
/// 30 days, 5-minute ones 90 days by default).
fn run_at(
    source: &SloSource,
    def: &SloDefinition,
    window: Window,
    maintenance: &[MaintenanceWindow],
    zone: &Zone,
    now_ms: i64,
) -> SloEvaluation {
    let ctx = EvalContext {
        maintenance,
        incidents: &[],
        zone,
        now_ms,
    };
    let evaluation = evaluate(source, def, window, &ctx, true).unwrap();
    check_reproducible(&evaluation, def);
    evaluation
}

/// The figures are the sum of the intervals, to four decimals, and so are the days.
fn check_reproducible(evaluation: &SloEvaluation, def: &SloDefinition) {
    let tally = evaluation.result.tally;
    let again = tally_of(&evaluation.intervals, &def.budgeting);
    let mut days = Tally::default();
    for (_, t) in &evaluation.result.daily {
        days.merge(t);
    }
    for (a, b) in [
        (tally.good, again.good),
        (tally.bad, again.bad),
        (tally.unknown, again.unknown),
        (tally.excluded, again.excluded),
        (tally.good, days.good),
        (tally.bad, days.bad),
        (tally.unknown, days.unknown),
        (tally.excluded, days.excluded),
    ] {
        assert!((a - b).abs() < 1e-4, "{tally:?} vs {again:?} / {days:?}");
    }
    for pair in evaluation.intervals.windows(2) {
        assert!(pair[0].start_ms <= pair[1].start_ms, "sorted");
    }
}

const WEB: &[(&str, &str)] = &[("name", "web"), ("node", "nas"), ("target", "http://web")];

/// One day of 30-second runs of `web` from `t0`; `down(ts)` says which fail; `missing(ts)`
/// which never happened.
fn web_day(t0: i64, down: impl Fn(i64) -> bool, missing: impl Fn(i64) -> bool) -> SloSource {
    let samples = (0..2880)
        .map(|i| t0 + i * 30 * SEC)
        .filter(|ts| !missing(*ts))
        .map(|ts| (0, ts, if down(ts) { 0.0 } else { 1.0 }))
        .collect();
    store(&[("http_check_up", WEB)], samples)
}

#[test]
fn slo_probe_down_for_a_known_share() {
    let t0 = ms("2026-03-02T00:00:00Z");
    // Down from 10:00:30 to 11:12:30: 144 runs of 2880 (5 %), starting and ending mid-minute.
    let outage = Window::new(
        t0 + 10 * HOUR + 30 * SEC,
        t0 + 11 * HOUR + 12 * MIN + 30 * SEC,
    );
    let source = web_day(t0, |ts| outage.contains(ts), |_| false);
    let def = slo(r#"{name="web"}"#, probe_sli(0));
    let day = Window::new(t0, t0 + DAY);
    let e = run(&source, &def, day, &[], &Zone::utc());
    let r = &e.result;
    assert_eq!(
        r.tally,
        Tally {
            good: 2736.0,
            bad: 144.0,
            unknown: 0.0,
            excluded: 0.0
        }
    );
    assert_eq!(r.compliance, Some(0.95));
    assert_eq!(r.coverage, Some(1.0));
    assert_eq!(r.status, Status::Met);
    assert!((r.budget.allowed - 144.0).abs() < 1e-9);
    assert!(r.budget.remaining.abs() < 1e-9);
    assert_eq!(r.covered, 1);
    assert!((r.burn_rate.unwrap() - 1.0).abs() < 1e-9);
    assert_eq!(r.breaches, vec![outage]);
    assert_eq!(r.daily, vec![(day, r.tally)]);
    assert!(r.policy.describe().contains("unknown, not up"));
    // The intervals: good, bad, good, each run counted once.
    let shape: Vec<(Outcome, f64)> = e.intervals.iter().map(|i| (i.outcome, i.total)).collect();
    assert_eq!(
        shape,
        vec![
            (Outcome::Good, 1201.0),
            (Outcome::Bad, 144.0),
            (Outcome::Good, 1535.0)
        ]
    );
    assert_eq!(
        e.intervals[1].series.as_deref(),
        Some(r#"http_check_up{name="web",node="nas",target="http://web"}"#)
    );

    // Read from 5-minute rollups (the 1-minute ones expired), and from 1-hour ones: the same.
    for later in [40 * DAY, 100 * DAY] {
        let old = run_at(&source, &def, day, &[], &Zone::utc(), day.end_ms + later);
        assert_eq!(old.result.tally, r.tally, "{later}");
        assert_eq!(old.result.breaches.len(), 1);
    }

    // Raw samples and 1-minute rollups gone: mixed 5-minute buckets are split by their sums,
    // exact in counts; the breach's edges move inside the buckets.
    let now = day.end_ms + 40 * DAY;
    source.tsdb.checkpoint(true).unwrap();
    source.tsdb.enforce_retention(now).unwrap();
    assert!(
        source
            .tsdb
            .read_raw(SeriesId(1), t0, t0 + DAY)
            .unwrap()
            .is_empty()
    );
    let old = run_at(&source, &def, day, &[], &Zone::utc(), now);
    assert_eq!(old.result.tally, r.tally);
    assert_eq!(old.result.breaches.len(), 1);
    let source = web_day(t0, |ts| outage.contains(ts), |_| false);

    // A window off the minute grid reads its edges raw: 10:00:10 to 10:10:10 holds runs at
    // 10:00:30 .. 10:10:00, 20 of them, all down.
    let part = Window::new(
        t0 + 10 * HOUR + 10 * SEC,
        t0 + 10 * HOUR + 10 * MIN + 10 * SEC,
    );
    let e = run(&source, &def, part, &[], &Zone::utc());
    assert_eq!((e.result.tally.good, e.result.tally.bad), (0.0, 20.0));
    assert_eq!(e.result.status, Status::Breached);

    // Time slices of 5 minutes, each needing every run up: 10:00 .. 11:15 is bad, 15 slices.
    let sliced = SloDefinition {
        budgeting: Budgeting::Timeslices {
            slice_ms: 5 * MIN,
            slice_target: 1.0,
        },
        ..def.clone()
    };
    let e = run(&source, &sliced, day, &[], &Zone::utc());
    assert_eq!(e.result.tally.bad, (75 * MIN) as f64);
    assert_eq!(e.result.tally.good, (1365 * MIN) as f64);
    assert_eq!(
        e.result.breaches,
        vec![Window::new(t0 + 10 * HOUR, t0 + 11 * HOUR + 15 * MIN)]
    );
    // A selector matching nothing: no data.
    let e = run(
        &source,
        &slo(r#"{name="other"}"#, probe_sli(0)),
        day,
        &[],
        &Zone::utc(),
    );
    assert_eq!(
        (e.result.status, e.result.compliance, e.result.burn_rate),
        (Status::NoData, None, None)
    );
}

#[test]
fn slo_probe_retries_absorb_short_failures() {
    let t0 = ms("2026-03-02T00:00:00Z");
    // One lone failure at 03:00:00, two in a row at 04:00:00 and 04:00:30, three at 05:00.
    let fails = [
        3 * HOUR,
        4 * HOUR,
        4 * HOUR + 30 * SEC,
        5 * HOUR,
        5 * HOUR + 30 * SEC,
        5 * HOUR + MIN,
    ];
    let source = web_day(t0, |ts| fails.contains(&(ts - t0)), |_| false);
    let day = Window::new(t0, t0 + DAY);
    let bad = |retries| {
        run(
            &source,
            &slo("", probe_sli(retries)),
            day,
            &[],
            &Zone::utc(),
        )
        .result
        .tally
        .bad
    };
    assert_eq!(bad(0), 6.0);
    assert_eq!(bad(1), 5.0);
    assert_eq!(bad(2), 3.0);
    assert_eq!(bad(3), 0.0);
}

#[test]
fn slo_maintenance_leaves_the_denominator() {
    let t0 = ms("2026-03-02T00:00:00Z");
    let outage = Window::new(
        t0 + 10 * HOUR + 30 * SEC,
        t0 + 11 * HOUR + 12 * MIN + 30 * SEC,
    );
    let source = web_day(t0, |ts| outage.contains(ts), |_| false);
    let def = slo(r#"{name="web"}"#, probe_sli(0));
    let day = Window::new(t0, t0 + DAY);
    let window = |selector: Option<&str>| MaintenanceWindow {
        start_ms: t0 + 10 * HOUR,
        end_ms: t0 + 11 * HOUR,
        matchers: selector.map(|s| Selector::parse(s).unwrap()),
        reason: "switch upgrade".into(),
    };
    // 120 runs in 10:00 .. 11:00 leave the count; 119 of them were down.
    let e = run(
        &source,
        &def,
        day,
        &[window(Some(r#"{node="nas"}"#))],
        &Zone::utc(),
    );
    assert_eq!(
        e.result.tally,
        Tally {
            good: 2735.0,
            bad: 25.0,
            unknown: 0.0,
            excluded: 120.0
        }
    );
    assert_eq!(e.result.compliance, Some(2735.0 / 2760.0));
    assert_eq!(e.result.coverage, Some(1.0));
    let excluded: Vec<&Interval> = e
        .intervals
        .iter()
        .filter(|i| i.outcome == Outcome::Excluded)
        .collect();
    assert_eq!(excluded.len(), 1);
    assert_eq!(excluded[0].note.as_deref(), Some("switch upgrade"));
    // A window for another node changes nothing.
    let e = run(
        &source,
        &def,
        day,
        &[window(Some(r#"{node="db"}"#))],
        &Zone::utc(),
    );
    assert_eq!(e.result.tally.excluded, 0.0);
    assert_eq!(e.result.tally.bad, 144.0);
}

#[test]
fn slo_unknown_time_is_not_up() {
    let t0 = ms("2026-03-02T00:00:00Z");
    // Nothing stored from 12:00 to 14:00: 240 runs that should have happened.
    let gap = Window::new(t0 + 12 * HOUR, t0 + 14 * HOUR);
    let source = web_day(t0, |_| false, |ts| gap.contains(ts));
    let def = slo(r#"{name="web"}"#, probe_sli(0));
    let e = run(&source, &def, Window::new(t0, t0 + DAY), &[], &Zone::utc());
    let t = e.result.tally;
    assert_eq!((t.good, t.bad), (2640.0, 0.0));
    assert!((t.unknown - 240.0).abs() < 1e-9);
    assert_eq!(e.result.compliance, Some(1.0));
    assert!((e.result.coverage.unwrap() - 2640.0 / 2880.0).abs() < 1e-9);
    let unknown: Vec<Window> = e
        .intervals
        .iter()
        .filter(|i| i.outcome == Outcome::Unknown)
        .map(Interval::window)
        .collect();
    assert_eq!(unknown, vec![Window::new(t0 + 12 * HOUR, t0 + 14 * HOUR)]);
    // 20 minutes missing inside an hour: that hour is read minute by minute, 40 runs unknown.
    let gap = Window::new(t0 + 15 * HOUR + 10 * MIN, t0 + 15 * HOUR + 30 * MIN);
    let source = web_day(t0, |_| false, |ts| gap.contains(ts));
    let e = run(&source, &def, Window::new(t0, t0 + DAY), &[], &Zone::utc());
    assert_eq!(
        (e.result.tally.good, e.result.tally.unknown),
        (2840.0, 40.0)
    );
    // Time after `now` is neither: a window reaching into the future counts up to now.
    let ctx = EvalContext {
        maintenance: &[],
        incidents: &[],
        zone: &Zone::utc(),
        now_ms: t0 + 6 * HOUR,
    };
    let t = tally(&source, &def, Window::new(t0, t0 + DAY), &ctx).unwrap();
    assert_eq!(
        t,
        Tally {
            good: 720.0,
            ..Tally::default()
        }
    );
}

/// `up` every 15 s and the agent's own counter every 10 s over Berlin's 23-hour day.
#[test]
fn slo_node_availability_over_a_dst_day() {
    let zone = Zone::parse("Europe/Berlin").unwrap();
    let day = Period::Calendar(crate::analytics::slo::CalendarUnit::Day)
        .containing(ms("2026-03-29T12:00:00Z"), &zone);
    assert_eq!(day.len_ms(), 23 * HOUR);
    let start = day.start_ms - 2 * HOUR;
    // Agent silent 04:00-05:00 UTC (up = 0); collector down 08:00-08:30 UTC (nothing at all).
    let silent = Window::new(ms("2026-03-29T04:00:00Z"), ms("2026-03-29T05:00:00Z"));
    let dark = Window::new(ms("2026-03-29T08:00:00Z"), ms("2026-03-29T08:30:00Z"));
    let mut samples = Vec::new();
    let mut ts = start;
    let mut counter = 0.0;
    while ts < day.end_ms {
        if !dark.contains(ts) {
            if ts % (10 * SEC) == 0 && !silent.contains(ts) {
                counter += 40.0;
                samples.push((0, ts, counter));
            }
            if ts % (15 * SEC) == 0 {
                samples.push((1, ts, if silent.contains(ts) { 0.0 } else { 1.0 }));
            }
        }
        ts += 5 * SEC;
    }
    let source = store(
        &[
            ("hcmon_agent_samples_total", &[("node", "nas")]),
            (
                "up",
                &[("instance", "nas"), ("job", "node"), ("node", "nas")],
            ),
        ],
        samples,
    );
    let def = slo(
        r#"{node="nas"}"#,
        Sli::Availability {
            source: AvailabilitySource::Node,
            retries: 0,
        },
    );
    assert_eq!(
        def.budgeting,
        Budgeting::Timeslices {
            slice_ms: MIN,
            slice_target: 1.0
        }
    );
    let e = run(&source, &def, day, &[], &zone);
    let r = &e.result;
    assert_eq!(
        r.tally,
        Tally {
            good: (1290 * MIN) as f64,
            bad: HOUR as f64,
            unknown: (30 * MIN) as f64,
            excluded: 0.0
        }
    );
    assert!((r.compliance.unwrap() - 1290.0 / 1350.0).abs() < 1e-12);
    assert!((r.coverage.unwrap() - 1350.0 / 1380.0).abs() < 1e-12);
    assert_eq!(r.covered, 1);
    assert_eq!(r.breaches, vec![silent]);
    assert_eq!(r.daily.len(), 1);

    // Saturday and the DST Sunday: days of 24 h and 23 h, the figures split between them.
    let both = Window::new(day.start_ms - DAY, day.end_ms);
    let e = run(&source, &def, both, &[], &zone);
    let lengths: Vec<i64> = e
        .result
        .daily
        .iter()
        .map(|(w, _)| w.len_ms() / HOUR)
        .collect();
    assert_eq!(lengths, vec![24, 23]);
    // Saturday: only its last 2 hours have data; the rest is unknown.
    let saturday = e.result.daily[0].1;
    assert_eq!(
        (saturday.good, saturday.unknown),
        ((2 * HOUR) as f64, (22 * HOUR) as f64)
    );
    assert_eq!(e.result.daily[1].1, r.tally);

    // Maintenance over the silent hour: out of the denominator.
    let maintenance = [MaintenanceWindow {
        start_ms: silent.start_ms,
        end_ms: silent.end_ms,
        matchers: Some(Selector::parse(r#"{node="nas"}"#).unwrap()),
        reason: "reboot".into(),
    }];
    let e = run(&source, &def, day, &maintenance, &zone);
    assert_eq!(
        (e.result.tally.bad, e.result.tally.excluded),
        (0.0, HOUR as f64)
    );
    assert_eq!(e.result.compliance, Some(1.0));
}

#[test]
fn slo_latency_by_runs_and_by_slice_quantile() {
    let t0 = ms("2026-03-02T00:00:00Z");
    // Two runs a minute for an hour: 50 ms, except 10:20-10:30 where every second run takes
    // 300 ms.
    let samples = (0..120)
        .map(|i| {
            let ts = t0 + i * 30 * SEC;
            let slow = (20..30).contains(&(i / 2)) && i % 2 == 1;
            (0, ts, if slow { 0.3 } else { 0.05 })
        })
        .collect();
    let source = store(
        &[(
            "redis_check_duration_seconds",
            &[("name", "cache"), ("node", "db")],
        )],
        samples,
    );
    let hour = Window::new(t0, t0 + HOUR);
    let by_runs = slo(
        r#"{name="cache"}"#,
        Sli::Latency {
            threshold_ms: 100.0,
            quantile: 0.95,
        },
    );
    let e = run(&source, &by_runs, hour, &[], &Zone::utc());
    assert_eq!((e.result.tally.good, e.result.tally.bad), (110.0, 10.0));
    // Per 1-minute slice the p95 of (50, 300) ms is 287.5 ms: those 10 slices are bad.
    let by_slices = SloDefinition {
        budgeting: Budgeting::Timeslices {
            slice_ms: MIN,
            slice_target: 1.0,
        },
        ..by_runs
    };
    let e = run(&source, &by_slices, hour, &[], &Zone::utc());
    assert_eq!(
        (e.result.tally.good, e.result.tally.bad),
        ((50 * MIN) as f64, (10 * MIN) as f64)
    );
    assert_eq!(
        e.result.breaches,
        vec![Window::new(t0 + 20 * MIN, t0 + 30 * MIN)]
    );
}

#[test]
fn slo_ratio_of_two_queries() {
    let t0 = ms("2026-03-02T00:00:00Z");
    // Per minute 10 valid events; 3 of them bad in 6 of the 60 minutes.
    let mut samples = Vec::new();
    for m in 0..=60 {
        let ts = t0 + m * MIN;
        samples.push((0, ts, if (10..16).contains(&m) { 7.0 } else { 10.0 }));
        samples.push((1, ts, 10.0));
    }
    let source = store(
        &[
            ("good_events", &[("job", "api")]),
            ("valid_events", &[("job", "api")]),
        ],
        samples,
    );
    let def = slo(
        "",
        Sli::Ratio {
            good: "sum(good_events)".into(),
            valid: "sum(valid_events)".into(),
        },
    );
    let e = run(&source, &def, Window::new(t0, t0 + HOUR), &[], &Zone::utc());
    assert_eq!((e.result.tally.good, e.result.tally.bad), (582.0, 18.0));
    assert!((e.result.compliance.unwrap() - 0.97).abs() < 1e-12);
    // Each bad step falls short of the target: one breach of six minutes.
    assert_eq!(
        e.result.breaches,
        vec![Window::new(t0 + 9 * MIN, t0 + 15 * MIN)]
    );
}

#[test]
fn slo_incident_response_against_targets() {
    let t0 = ms("2026-03-02T00:00:00Z");
    let fact = |id: &str, node: &str, severity, started: i64, ack: Option<i64>| IncidentFact {
        id: id.into(),
        alert: "NodeDown".into(),
        labels: BTreeMap::from([("node".to_owned(), node.to_owned())]),
        severity,
        started_ms: t0 + started,
        acknowledged_ms: ack.map(|a| t0 + started + a),
        resolved_ms: None,
    };
    let facts = vec![
        fact("a", "nas", IncidentSeverity::Critical, HOUR, Some(10 * MIN)), // good
        fact(
            "b",
            "nas",
            IncidentSeverity::Critical,
            2 * HOUR,
            Some(20 * MIN),
        ), // bad
        fact(
            "c",
            "db",
            IncidentSeverity::Warning,
            3 * HOUR,
            Some(2 * HOUR),
        ), // good (4 h)
        fact("d", "nas", IncidentSeverity::Critical, 5 * HOUR, None),       // open > 15 min: bad
        fact(
            "e",
            "nas",
            IncidentSeverity::Critical,
            6 * HOUR - 5 * MIN,
            None,
        ), // open, young: not yet
        fact("f", "nas", IncidentSeverity::Critical, 4 * HOUR, Some(HOUR)), // in maintenance
        fact("g", "nas", IncidentSeverity::Critical, DAY + HOUR, None),     // outside the window
    ];
    let maintenance = [MaintenanceWindow {
        start_ms: t0 + 4 * HOUR - MIN,
        end_ms: t0 + 4 * HOUR + MIN,
        matchers: Some(Selector::parse(r#"{alertname="NodeDown"}"#).unwrap()),
        reason: "planned".into(),
    }];
    let targets = BTreeMap::from([
        (IncidentSeverity::Critical, 15 * MIN),
        (IncidentSeverity::Warning, 4 * HOUR),
    ]);
    let def = slo("", Sli::Response { targets });
    let ctx = EvalContext {
        maintenance: &maintenance,
        incidents: &facts,
        zone: &Zone::utc(),
        now_ms: t0 + 6 * HOUR,
    };
    let window = Window::new(t0, t0 + DAY);
    let e = evaluate(&store(&[], vec![]), &def, window, &ctx, true).unwrap();
    check_reproducible(&e, &def);
    assert_eq!(
        e.result.tally,
        Tally {
            good: 2.0,
            bad: 2.0,
            unknown: 0.0,
            excluded: 1.0
        }
    );
    assert_eq!(e.result.covered, 5);
    assert_eq!(e.result.compliance, Some(0.5));
    // Only the nas incidents.
    let nas = SloDefinition {
        selector: r#"{node="nas"}"#.into(),
        ..def
    };
    let t = tally(&store(&[], vec![]), &nas, window, &ctx).unwrap();
    assert_eq!((t.good, t.bad), (1.0, 2.0));
}

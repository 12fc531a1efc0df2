//! Remote-write ingest, 1.0 and 2.0, against an in-memory engine.

use super::*;
use crate::catalog::SeriesCatalog;
use crate::ingest::Admission;
use crate::storage::{MemoryKv, StorageConfig, Tsdb};
use crate::telemetry::CollectorMetrics;
use hcmon_common::Selector;
use hcmon_proto::prometheus::{Label, Sample as WireSample, TimeSeries, WriteRequest};
use prost::Message;
use std::sync::Arc;

const NOW: i64 = 1_700_000_000_000;

fn service() -> Arc<IngestService> {
    let recovered = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default()).unwrap();
    IngestService::new(
        Arc::new(recovered.tsdb),
        Arc::new(SeriesCatalog::new(recovered.series)),
        recovered.nodes,
        Arc::new(CollectorMetrics::new()),
        Admission::default(),
        Arc::new(|| NOW),
        Default::default(),
    )
}

fn series(name: &str, instance: &str, samples: &[(i64, f64)]) -> TimeSeries {
    let label = |n: &str, v: &str| Label {
        name: n.into(),
        value: v.into(),
    };
    TimeSeries {
        labels: vec![
            label("__name__", name),
            label("instance", instance),
            label("job", ""),
        ],
        samples: samples
            .iter()
            .map(|&(timestamp, value)| WireSample { value, timestamp })
            .collect(),
    }
}

fn body(timeseries: Vec<TimeSeries>) -> Vec<u8> {
    let raw = WriteRequest { timeseries }.encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw).unwrap()
}

#[test]
fn stores_series_and_counts_what_it_cannot() {
    let svc = service();
    let req = body(vec![
        series("up", "a:9100", &[(NOW - 1000, 1.0), (NOW, f64::NAN)]),
        series(
            "requests_total",
            "a:9100",
            &[(NOW, 5.0), (NOW + 86_400_000, 6.0)],
        ),
    ]);
    let outcome = svc.remote_write(Protocol::V1, &req).unwrap();
    assert_eq!(
        outcome,
        RemoteWriteOutcome {
            accepted: 2,
            non_finite: 1,
            out_of_range: 1
        }
    );
    svc.remote_write(
        Protocol::V1,
        &body(vec![series("up", "a:9100", &[(NOW, 0.0)])]),
    )
    .unwrap();
    let up = svc
        .catalog
        .select(&Selector::parse(r#"up{instance="a:9100"}"#).unwrap());
    assert_eq!(up.len(), 1);
    assert_eq!(
        up[0].labels.get("job"),
        None,
        "empty label values are absent labels"
    );
    assert_eq!(
        svc.tsdb.read_raw(up[0].id, 0, NOW).unwrap(),
        vec![(NOW - 1000, 1.0), (NOW, 0.0)]
    );
    let total = svc
        .catalog
        .select(&Selector::parse("requests_total").unwrap());
    assert_eq!(total[0].kind, MetricKind::Counter);
}

#[test]
fn the_in_place_reader_sees_what_prost_wrote() {
    let request = WriteRequest {
        timeseries: vec![
            series(
                "ünïcode_is_not_a_valid_name",
                "h:1",
                &[(-5, -0.5), (7, 1e300)],
            ),
            series("empty", "", &[]),
            series("m", "x", &[(i64::MAX, f64::MIN_POSITIVE)]),
        ],
    };
    let bytes = request.encode_to_vec();
    let wire = WireRequest::parse(Protocol::V1, &bytes).unwrap();
    assert_eq!(wire.series.len(), 3);
    for (ts, series) in request.timeseries.iter().zip(&wire.series) {
        let got: Vec<(String, String)> = wire.labels[series.labels.clone()]
            .iter()
            .map(|(n, v)| (text(n).unwrap(), text(v).unwrap()))
            .collect();
        let want: Vec<(String, String)> = ts
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        assert_eq!(got, want);
        let want: Vec<(i64, f64)> = ts.samples.iter().map(|s| (s.timestamp, s.value)).collect();
        assert_eq!(wire.samples[series.samples.clone()].to_vec(), want);
    }
    for cut in [1, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            WireRequest::parse(Protocol::V1, &bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
}

#[test]
fn refuses_garbage_with_a_reason() {
    let svc = service();
    let err = svc
        .remote_write(Protocol::V1, b"not snappy at all")
        .unwrap_err();
    assert!(err.to_string().contains("snappy"), "{err}");
    let not_proto = snap::raw::Encoder::new()
        .compress_vec(b"\xff\xff\xff")
        .unwrap();
    assert!(
        svc.remote_write(Protocol::V1, &not_proto)
            .unwrap_err()
            .to_string()
            .contains("WriteRequest")
    );
    let nameless = body(vec![TimeSeries {
        labels: vec![Label {
            name: "job".into(),
            value: "x".into(),
        }],
        samples: vec![WireSample {
            value: 1.0,
            timestamp: NOW,
        }],
    }]);
    let err = svc.remote_write(Protocol::V1, &nameless).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("1 series (1 samples) were not stored, first series #0 has no __name__"),
        "{err}"
    );
    let bad = body(vec![series("bad-name", "a", &[(NOW, 1.0)])]);
    assert!(
        svc.remote_write(Protocol::V1, &bad)
            .unwrap_err()
            .to_string()
            .contains("bad-name")
    );
}

#[test]
fn series_with_nothing_to_store_are_not_created() {
    let svc = service();
    let mut timeseries: Vec<TimeSeries> = (0..20_000)
        .map(|i| series("empty", &format!("h{i}"), &[]))
        .collect();
    timeseries.push(series("stale", "a", &[(NOW, f64::NAN)]));
    timeseries.push(series("ancient", "a", &[(0, 1.0)]));
    timeseries.push(series("up", "a", &[(NOW, 1.0)]));
    let outcome = svc.remote_write(Protocol::V1, &body(timeseries)).unwrap();
    assert_eq!(
        outcome,
        RemoteWriteOutcome {
            accepted: 1,
            non_finite: 1,
            out_of_range: 1
        }
    );
    let created: Vec<String> = svc
        .catalog
        .all()
        .iter()
        .map(|m| m.labels.to_string())
        .collect();
    assert_eq!(created, vec![r#"up{instance="a"}"#]);
}

/// Appends a `WriteRequest.metadata` entry (field 3), which the proto the tests encode
/// with leaves out.
fn with_metadata(mut raw: Vec<u8>, family: &str, help: &str, unit: &str) -> Vec<u8> {
    let mut metadata = Vec::new();
    for (tag, text) in [(2, family), (4, help), (5, unit)] {
        prost::encoding::string::encode(tag, &text.to_owned(), &mut metadata);
    }
    prost::encoding::bytes::encode(3, &metadata, &mut raw);
    raw
}

fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

#[test]
fn each_series_and_metadata_limit_refuses_the_request_naming_its_key() {
    let long = |n: usize| "x".repeat(n);
    let labelled = |name: &str, labels: Vec<(String, String)>| {
        let timeseries = vec![TimeSeries {
            labels: [("__name__".to_owned(), name.to_owned())]
                .into_iter()
                .chain(labels)
                .map(|(name, value)| Label { name, value })
                .collect(),
            samples: vec![WireSample {
                value: 1.0,
                timestamp: NOW,
            }],
        }];
        WriteRequest { timeseries }.encode_to_vec()
    };
    let many = |n: usize, name_len: usize, value_len: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("l{i:0w$}", w = name_len - 1), long(value_len)))
            .collect()
    };
    let plain = labelled("up", vec![]);
    let cases = [
        (
            "33 labels",
            labelled("m", many(32, 3, 1)),
            "`limits.max_labels_per_series`",
            "too_many_labels",
        ),
        (
            "a 129-byte label name",
            labelled("m", many(1, 129, 1)),
            "`limits.max_label_name_len`",
            "label_name_too_long",
        ),
        (
            "a 1025-byte label value",
            labelled("m", many(1, 3, 1025)),
            "`limits.max_label_value_len`",
            "label_value_too_long",
        ),
        (
            "a 257-byte metric name",
            labelled(&long(257), vec![]),
            "`limits.max_metric_name_len`",
            "metric_name_too_long",
        ),
        (
            "a 257-byte metadata family name",
            with_metadata(plain.clone(), &long(257), "", ""),
            "`limits.max_metric_name_len`",
            "metric_name_too_long",
        ),
        (
            "a 1025-byte help text",
            with_metadata(plain.clone(), "up", &long(1025), ""),
            "`limits.max_help_len`",
            "help_too_long",
        ),
        (
            "a 257-byte unit",
            with_metadata(plain.clone(), "up", "", &long(257)),
            "`limits.max_metric_name_len`",
            "metric_name_too_long",
        ),
    ];
    for (what, raw, key, reason) in cases {
        let svc = service();
        let err = svc
            .remote_write(Protocol::V1, &compress(&raw))
            .expect_err(what);
        assert!(!err.retryable(), "{what}: the sender must not retry");
        assert!(err.to_string().contains(key), "{what}: {err}");
        assert!(err.to_string().len() < 400, "{what}: {err}");
        assert_eq!(svc.catalog.len(), 0, "{what}: nothing is created");
        let counted = svc.metrics.rejected_batches.with_label_values(&[reason]);
        assert_eq!(counted.get(), 1, "{what}: counted as {reason}");
    }

    // Exactly at every limit, the request is stored.
    let svc = service();
    let at_limits = with_metadata(
        labelled(&long(256), many(31, 128, 1024)),
        &long(256),
        &long(1024),
        &long(256),
    );
    assert_eq!(
        svc.remote_write(Protocol::V1, &compress(&at_limits))
            .unwrap()
            .accepted,
        1
    );
}

fn stored_with_markers(svc: &IngestService, selector: &str) -> Vec<(i64, f64)> {
    let series = svc.catalog.select(&Selector::parse(selector).unwrap());
    assert_eq!(series.len(), 1, "{selector}");
    svc.tsdb
        .read_raw_with_markers(series[0].id, 0, NOW + 1000)
        .unwrap()
}

#[test]
fn staleness_markers_end_existing_series_and_create_none() {
    let svc = service();
    let marker = crate::storage::STALE_MARKER;
    svc.remote_write(
        Protocol::V1,
        &body(vec![series("up", "a", &[(NOW - 2000, 1.0)])]),
    )
    .unwrap();
    let outcome = svc
        .remote_write(
            Protocol::V1,
            &body(vec![
                series("up", "a", &[(NOW - 1000, marker)]),
                series("never_seen", "a", &[(NOW, marker)]),
            ]),
        )
        .unwrap();
    assert_eq!(outcome.accepted, 1, "{outcome:?}");
    assert_eq!(outcome.non_finite, 1, "a marker of no series ends nothing");
    let stored = stored_with_markers(&svc, "up");
    assert_eq!(stored.len(), 2);
    assert!(crate::storage::is_stale_marker(stored[1].1));
    let id = svc.catalog.select(&Selector::parse("up").unwrap())[0].id;
    assert_eq!(
        svc.tsdb.read_raw(id, 0, NOW).unwrap(),
        vec![(NOW - 2000, 1.0)]
    );
    assert_eq!(svc.tsdb.latest(id), None, "the series ended");
    assert!(
        svc.catalog
            .select(&Selector::parse("never_seen").unwrap())
            .is_empty()
    );
    // The series comes back with its next sample.
    svc.remote_write(Protocol::V1, &body(vec![series("up", "a", &[(NOW, 1.0)])]))
        .unwrap();
    assert_eq!(svc.tsdb.latest(id), Some((NOW, 1.0)));
}

#[test]
fn a_bad_series_is_refused_alone_and_named() {
    let svc = service();
    let nameless = TimeSeries {
        labels: vec![Label {
            name: "job".into(),
            value: "x".into(),
        }],
        samples: vec![WireSample {
            value: 1.0,
            timestamp: NOW,
        }],
    };
    let err = svc
        .remote_write(
            Protocol::V1,
            &body(vec![
                series("good_one", "a", &[(NOW, 1.0)]),
                nameless,
                series("bad-name", "a", &[(NOW, 2.0), (NOW - 1, 3.0)]),
                series("hcmon_collector_x", "a", &[(NOW, 1.0)]),
                series("bad-two", "a", &[(NOW, 2.0)]),
                series("good_two", "a", &[(NOW, 1.0)]),
            ]),
        )
        .unwrap_err();
    assert!(!err.retryable());
    let text = err.to_string();
    assert!(
        text.starts_with("4 series (5 samples) were not stored, first series #1 has no __name__ label; then series #2 (\"bad-name\"): metric name \"bad-name\" is invalid"),
        "{text}"
    );
    assert!(
        text.contains("; and 1 more; the request's other samples were stored"),
        "{text}"
    );
    let names: Vec<String> = svc
        .catalog
        .all()
        .iter()
        .map(|m| m.labels.metric_name().to_owned())
        .collect();
    assert_eq!(names, ["good_one", "good_two"]);
    let counted = svc
        .metrics
        .rejected_batches
        .with_label_values(&["invalid_series"]);
    assert_eq!(counted.get(), 1);
}

#[test]
fn declared_types_help_and_units_are_kept_instead_of_guessed() {
    let svc = service();
    let raw = with_metadata(
        WriteRequest { timeseries: vec![] }.encode_to_vec(),
        "rpc_duration_seconds",
        "RPC latency.",
        "seconds",
    );
    // `with_metadata` leaves the type out: declare a histogram (type field 1 = 3) by hand.
    let mut typed = raw.clone();
    let mut metadata = Vec::new();
    prost::encoding::int32::encode(1, &3, &mut metadata);
    prost::encoding::string::encode(2, &"rpc_duration_seconds".to_owned(), &mut metadata);
    prost::encoding::string::encode(4, &"RPC latency.".to_owned(), &mut metadata);
    prost::encoding::bytes::encode(3, &metadata, &mut typed);
    // A gauge-looking name declared a counter.
    let mut metadata = Vec::new();
    prost::encoding::int32::encode(1, &1, &mut metadata);
    prost::encoding::string::encode(2, &"jobs_done".to_owned(), &mut metadata);
    prost::encoding::bytes::encode(3, &metadata, &mut typed);
    svc.remote_write(Protocol::V1, &compress(&typed)).unwrap();
    let family = svc.tsdb.family("rpc_duration_seconds").unwrap();
    assert_eq!(
        (family.kind, family.help.as_str(), family.unit.as_str()),
        (FamilyType::Histogram, "RPC latency.", "")
    );
    // The first request declared the unit, the second (typed, no unit) kept the type and
    // help: the newest declaration of a family wins as a whole, except an unknown type.
    svc.remote_write(
        Protocol::V1,
        &body(vec![
            series("rpc_duration_seconds_bucket", "a", &[(NOW, 4.0)]),
            series("rpc_duration_seconds_sum", "a", &[(NOW, 0.5)]),
            series("jobs_done", "a", &[(NOW, 7.0)]),
            series("queue_total", "a", &[(NOW, 7.0)]),
        ]),
    )
    .unwrap();
    let kind = |name: &str| {
        let meta = &svc.catalog.select(&Selector::parse(name).unwrap())[0];
        (meta.kind, meta.help.clone())
    };
    assert_eq!(
        kind("rpc_duration_seconds_bucket"),
        (MetricKind::Counter, "RPC latency.".into())
    );
    assert_eq!(kind("rpc_duration_seconds_sum").0, MetricKind::Counter);
    assert_eq!(
        kind("jobs_done").0,
        MetricKind::Counter,
        "declared, not guessed"
    );
    assert_eq!(
        kind("queue_total").0,
        MetricKind::Counter,
        "guessed from _total"
    );
}

/// One 2.0 series: labels, samples, metadata type and help, and how many native histograms.
type V2Series<'a> = (
    &'a [(&'a str, &'a str)],
    &'a [(i64, f64)],
    i32,
    &'a str,
    u64,
);

/// A 2.0 request: symbols, then series as label pairs with their samples and metadata.
fn v2_body(series: &[V2Series]) -> Vec<u8> {
    use hcmon_proto::prometheus_v2 as v2;
    let mut symbols = vec![String::new()];
    let mut symbol = |s: &str| -> u32 {
        match symbols.iter().position(|x| x == s) {
            Some(i) => i as u32,
            None => {
                symbols.push(s.to_owned());
                (symbols.len() - 1) as u32
            }
        }
    };
    let timeseries = series
        .iter()
        .map(|(labels, samples, kind, help, histograms)| v2::TimeSeries {
            labels_refs: labels
                .iter()
                .flat_map(|(n, v)| [symbol(n), symbol(v)])
                .collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| v2::Sample { value, timestamp })
                .collect(),
            histograms: (0..*histograms)
                .map(|i| v2::Histogram {
                    count_int: 1,
                    sum: 1.0,
                    timestamp: NOW - i as i64,
                })
                .collect(),
            metadata: Some(v2::Metadata {
                r#type: *kind,
                help_ref: symbol(help),
                unit_ref: 0,
            }),
            created_timestamp: 0,
        })
        .collect();
    compress(
        &v2::Request {
            symbols,
            timeseries,
        }
        .encode_to_vec(),
    )
}

#[test]
fn remote_write_2_requests_are_stored_with_their_metadata() {
    let svc = service();
    let body = v2_body(&[
        (
            &[
                ("__name__", "http_requests"),
                ("code", "200"),
                ("job", "api"),
            ],
            &[(NOW - 1000, 1.0), (NOW, 3.0)],
            1,
            "Requests served.",
            0,
        ),
        (
            &[("__name__", "temperature"), ("job", "api")],
            &[(NOW, 21.5)],
            2,
            "",
            0,
        ),
        (&[("__name__", "latency"), ("job", "api")], &[], 3, "", 2),
    ]);
    let err = svc.remote_write(Protocol::V2, &body).unwrap_err();
    assert!(
        err.to_string().contains(
            "1 series (2 samples) were not stored, first series #2 (\"latency\") carries native histogram samples"
        ),
        "{err}"
    );
    let requests = &svc
        .catalog
        .select(&Selector::parse("http_requests").unwrap())[0];
    assert_eq!(requests.kind, MetricKind::Counter, "declared a counter");
    assert_eq!(requests.help, "Requests served.");
    assert_eq!(requests.labels.get("code"), Some("200"));
    assert_eq!(
        svc.tsdb.read_raw(requests.id, 0, NOW).unwrap(),
        vec![(NOW - 1000, 1.0), (NOW, 3.0)]
    );
    assert_eq!(
        svc.tsdb.family("http_requests").map(|f| f.kind),
        Some(FamilyType::Counter)
    );
    assert_eq!(stored_with_markers(&svc, "temperature"), vec![(NOW, 21.5)]);

    // A 1.0 body read as 2.0 holds nothing (2.0 reserves 1.0's field numbers); a reference
    // past the symbol table is refused as unreadable.
    let v1 = self::body(vec![series("up", "a", &[(NOW, 1.0)])]);
    assert_eq!(svc.remote_write(Protocol::V2, &v1).unwrap().accepted, 0);
    let bad = hcmon_proto::prometheus_v2::Request {
        symbols: vec![String::new(), "__name__".into()],
        timeseries: vec![hcmon_proto::prometheus_v2::TimeSeries {
            labels_refs: vec![1, 9],
            ..Default::default()
        }],
    };
    let err = svc
        .remote_write(Protocol::V2, &compress(&bad.encode_to_vec()))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("a reference falls outside the symbol table"),
        "{err}"
    );
}

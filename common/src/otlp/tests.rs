use super::*;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, ResourceMetrics, ScopeMetrics, Sum, metric::Data,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn point(ms: u64, value: f64, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        time_unix_nano: ms * 1_000_000,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn sum(
    name: &str,
    unit: &str,
    delta: bool,
    monotonic: bool,
    points: Vec<NumberDataPoint>,
) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: "help".into(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: if delta {
                AggregationTemporality::Delta
            } else {
                AggregationTemporality::Cumulative
            } as i32,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).into(), (*v).into()))
        .collect()
}

fn find<'a>(t: &'a Translation, name: &str) -> Vec<&'a Series> {
    t.series.iter().filter(|s| s.name == name).collect()
}

#[test]
fn resource_identity_becomes_job_and_instance_and_the_rest_target_info() {
    let req = request(
        vec![
            attr("service.name", "checkout"),
            attr("service.namespace", "shop"),
            attr("service.instance.id", "pod-7"),
            attr("host.name", "nas"),
        ],
        vec![Metric {
            name: "queue.depth".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![point(1_000, 3.0, vec![attr("queue", "orders")])],
            })),
            ..Default::default()
        }],
    );
    let t = translate(&req, &mut DeltaSums::new(10), 0);
    let depth = find(&t, "queue_depth");
    assert_eq!(depth.len(), 1);
    assert_eq!(
        depth[0].labels,
        labels(&[
            ("instance", "pod-7"),
            ("job", "shop/checkout"),
            ("queue", "orders")
        ])
    );
    assert_eq!(depth[0].samples, vec![(1_000, 3.0)]);
    let info = find(&t, TARGET_INFO);
    assert_eq!(info.len(), 1);
    assert_eq!(
        info[0].labels,
        labels(&[
            ("host_name", "nas"),
            ("instance", "pod-7"),
            ("job", "shop/checkout")
        ])
    );
    assert_eq!(info[0].samples, vec![(1_000, 1.0)]);
}

#[test]
fn counters_get_total_and_deltas_are_accumulated() {
    let mut deltas = DeltaSums::new(10);
    let metric = |v| {
        sum(
            "http.requests",
            "{request}",
            true,
            true,
            vec![point(1_000, v, vec![])],
        )
    };
    let first = translate(&request(vec![], vec![metric(3.0)]), &mut deltas, 0);
    let second = translate(&request(vec![], vec![metric(4.0)]), &mut deltas, 0);
    assert_eq!(
        find(&first, "http_requests_total")[0].samples,
        vec![(1_000, 3.0)]
    );
    assert_eq!(
        find(&second, "http_requests_total")[0].samples,
        vec![(1_000, 7.0)]
    );
    assert!(second.series[0].counter);
    assert_eq!(second.families[0].kind, FamilyKind::Counter);
    // An up-down counter's changes add up to a gauge.
    let updown = |v| {
        sum(
            "pool.in_use",
            "",
            true,
            false,
            vec![point(2_000, v, vec![])],
        )
    };
    translate(&request(vec![], vec![updown(5.0)]), &mut deltas, 0);
    let t = translate(&request(vec![], vec![updown(-2.0)]), &mut deltas, 0);
    assert_eq!(find(&t, "pool_in_use")[0].samples, vec![(2_000, 3.0)]);
    assert!(!t.series[0].counter);
}

#[test]
fn unspecified_temporality_and_missing_values_are_reported() {
    let mut m = sum("odd", "", false, true, vec![point(1, 1.0, vec![])]);
    if let Some(Data::Sum(s)) = &mut m.data {
        s.aggregation_temporality = 0;
    }
    let mut empty = point(1, 0.0, vec![]);
    empty.value = None;
    let blank = sum("blank", "", false, false, vec![empty]);
    let t = translate(&request(vec![], vec![m, blank]), &mut DeltaSums::new(10), 0);
    assert!(t.series.is_empty());
    assert_eq!(t.points, 2);
    assert_eq!(t.skipped_points(), 2);
    let message = t.skipped_message();
    assert!(
        message.contains("\"odd\"") && message.contains("temporality"),
        "{message}"
    );
    assert!(message.contains("no value"), "{message}");
}

#[test]
fn no_recorded_value_is_a_staleness_marker() {
    let mut p = point(5_000, 0.0, vec![]);
    p.flags = 1;
    p.value = None;
    let t = translate(
        &request(vec![], vec![sum("g", "", false, false, vec![p])]),
        &mut DeltaSums::new(10),
        0,
    );
    assert_eq!(t.series[0].samples[0].1.to_bits(), STALE_NAN_BITS);
}

/// The OTLP/JSON example of the specification (opentelemetry-proto's
/// examples/metrics.json, abridged), decoded with the protocol crate's serde support.
#[test]
fn otlp_json_histograms_and_summaries_translate() {
    let json = r#"{"resourceMetrics":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"my.service"}}]},
      "scopeMetrics":[{"scope":{"name":"my.library","version":"1.0.0"},"metrics":[
        {"name":"my.histogram","unit":"s","description":"I am a Histogram",
         "histogram":{"aggregationTemporality":2,"dataPoints":[
           {"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000",
            "count":"3","sum":2.5,"bucketCounts":["1","2"],"explicitBounds":[1],
            "attributes":[{"key":"route","value":{"stringValue":"/a"}}]}]}},
        {"name":"my.summary","unit":"ms","summary":{"dataPoints":[
           {"timeUnixNano":"1544712660300000000","count":"4","sum":10,
            "quantileValues":[{"quantile":0.5,"value":2},{"quantile":0.99,"value":5}]}]}},
        {"name":"my.int.gauge","gauge":{"dataPoints":[
           {"timeUnixNano":"1544712660300000000","asInt":"42"}]}}]}]}]}"#;
    let req: ExportMetricsServiceRequest = serde_json::from_str(json).expect("OTLP/JSON");
    let t = translate(&req, &mut DeltaSums::new(10), 0);
    let ts = 1_544_712_660_300;
    let buckets = find(&t, "my_histogram_seconds_bucket");
    let le: Vec<(&str, f64)> = buckets
        .iter()
        .map(|s| {
            let le = s.labels.iter().find(|(n, _)| n == "le").unwrap();
            (le.1.as_str(), s.samples[0].1)
        })
        .collect();
    assert_eq!(le, vec![("1", 1.0), ("+Inf", 3.0)]);
    assert_eq!(
        find(&t, "my_histogram_seconds_sum")[0].samples,
        vec![(ts, 2.5)]
    );
    assert_eq!(
        find(&t, "my_histogram_seconds_count")[0].samples,
        vec![(ts, 3.0)]
    );
    let quantiles = find(&t, "my_summary_milliseconds");
    assert_eq!(quantiles.len(), 2);
    assert_eq!(
        quantiles[1].labels,
        labels(&[("job", "my.service"), ("quantile", "0.99")])
    );
    assert_eq!(
        find(&t, "my_summary_milliseconds_count")[0].samples[0].1,
        4.0
    );
    assert_eq!(find(&t, "my_int_gauge")[0].samples, vec![(ts, 42.0)]);
    let kinds: Vec<(&str, FamilyKind, &str)> = t
        .families
        .iter()
        .map(|f| (f.name.as_str(), f.kind, f.unit.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("my_histogram_seconds", FamilyKind::Histogram, "seconds"),
            (
                "my_summary_milliseconds",
                FamilyKind::Summary,
                "milliseconds"
            ),
            ("my_int_gauge", FamilyKind::Gauge, ""),
        ]
    );
}

#[test]
fn colliding_attribute_names_are_joined() {
    let t = translate(
        &request(
            vec![],
            vec![sum(
                "c",
                "",
                false,
                true,
                vec![point(1, 1.0, vec![attr("a.b", "x"), attr("a_b", "y")])],
            )],
        ),
        &mut DeltaSums::new(10),
        0,
    );
    assert_eq!(t.series[0].labels, labels(&[("a_b", "x;y")]));
}

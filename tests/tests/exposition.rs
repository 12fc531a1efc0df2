//! `/metrics` stays scrapeable whatever is written to the collector: the names it exports for
//! itself are refused on ingest (remote write stores the request's other series; gRPC refuses
//! the batch), and what is stored renders with
//! one HELP and TYPE line per family, which `promtool check metrics` confirms.

use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::node::ScriptedNode;
use hcmon_tests::{Collector, now_s};
use std::time::Duration;

/// Remote-writes one sample of `name{x="1"}` for each name, in one request; the status and
/// body of the answer.
async fn remote_write(collector: &Collector, names: &[&str]) -> anyhow::Result<(u16, String)> {
    let label = |name: &str, value: &str| Label {
        name: name.into(),
        value: value.into(),
    };
    let request = WriteRequest {
        timeseries: names
            .iter()
            .map(|name| TimeSeries {
                labels: vec![label("__name__", name), label("x", "1")],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: (now_s() * 1000.0) as i64,
                }],
            })
            .collect(),
    };
    hcmon_tests::remote_write(&collector.client()?, collector.http, &request).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_collectors_own_names_are_refused_and_metrics_stay_valid() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;

    for (name, reserved_by) in [
        (
            "hcmon_collector_ingested_samples_total",
            "names starting with hcmon_collector_",
        ),
        (
            "process_resident_memory_bytes",
            "names starting with process_",
        ),
        ("hcmon_anomaly_score", "names starting with hcmon_anomaly_"),
        (
            "hcmon_node_anomaly",
            "the collector exports its own metric of that name",
        ),
    ] {
        // Beside an ordinary series, as a Prometheus forwarding its targets' series sends it.
        let beside = format!("app_beside_{}", name.len());
        let (status, body) = remote_write(&collector, &[name, &beside]).await?;
        assert_eq!(status, 400, "{name}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body)?;
        let message = error["error"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!(
                "remote write refused: 1 series (1 samples) were not stored, first metric name \"{name}\" is reserved: {reserved_by}"
            )),
            "{name}: {body}"
        );
        assert!(message.contains("write_relabel_configs"), "{body}");
        assert_eq!(
            collector
                .export(&format!("{beside}{{x=\"1\"}}"))
                .await?
                .len(),
            1,
            "the request's other series is stored"
        );
        assert!(
            collector
                .export(&format!("{name}{{x=\"1\"}}"))
                .await?
                .is_empty()
        );
    }
    // An agent is refused the same names.
    let mut node = ScriptedNode::connect(&collector.grpc_url(), "web1").await?;
    let refused = node
        .send((now_s() * 1000.0) as i64, &[("process_open_fds", &[], 3.0)])
        .await
        .expect_err("a reserved name is refused");
    assert!(
        refused
            .to_string()
            .contains("names starting with process_ belong to the collector's own metrics"),
        "{refused}"
    );

    // Ordinary remote-written series, which arrive without help text, and a series of the
    // agent's own beside the collector's figures.
    for name in ["app_requests_total", "app_queue_depth"] {
        let (status, body) = remote_write(&collector, &[name]).await?;
        assert_eq!(status, 204, "{name}: {body}");
    }
    let mut node = ScriptedNode::connect(&collector.grpc_url(), "web2").await?;
    node.send((now_s() * 1000.0) as i64, &[("node_load1", &[], 0.5)])
        .await?;
    let text = collector
        .wait_for_metrics(Duration::from_secs(30), |t| {
            t.contains("app_queue_depth{x=\"1\"} 1")
                && t.contains("node_load1{instance=\"web2\",job=\"node\",node=\"web2\"}")
        })
        .await?;
    for family in [
        "hcmon_collector_ingested_samples_total",
        "process_resident_memory_bytes",
    ] {
        let types = text
            .lines()
            .filter(|l| l.starts_with(&format!("# TYPE {family} ")))
            .count();
        assert_eq!(types, 1, "{family}:\n{text}");
        assert!(!text.contains(&format!("{family}{{x=\"1\"}}")), "{text}");
    }
    hcmon_tests::promtool_check_metrics(&text)
}

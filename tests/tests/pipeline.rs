//! End-to-end: agents stream to a collector; the series show up in `/metrics`, `query_range`
//! and the CLI; the exposition passes `promtool check metrics`.

use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::{Agent, Collector, bin_path, now_s, points};
use prost::Message;
use std::process::Command;
use std::time::Duration;

const BASIC_SERIES: [&str; 4] = [
    "node_cpu_usage_ratio",
    "node_memory_used_bytes",
    "node_filesystem_size_bytes",
    "node_network_receive_bytes_total",
];

fn has_node_series(text: &str, node: &str) -> bool {
    BASIC_SERIES.iter().all(|name| {
        text.lines()
            .any(|l| l.starts_with(name) && l.contains(&format!("node=\"{node}\"")))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn two_agents_are_visible_in_metrics_query_range_and_cli() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("data"), 0, 0)?;
    let _a = Agent::start(
        &collector.grpc_url(),
        "alpha",
        &dir.path().join("spool-a"),
        "1s",
    );
    let _b = Agent::start(
        &collector.grpc_url(),
        "beta",
        &dir.path().join("spool-b"),
        "1s",
    );

    let text = collector
        .wait_for_metrics(Duration::from_secs(30), |t| {
            has_node_series(t, "alpha")
                && has_node_series(t, "beta")
                && t.contains("hcmon_collector_connected_agents 2")
        })
        .await?;
    assert!(text.contains("# TYPE node_network_receive_bytes_total counter"));
    assert!(
        text.contains("hcmon_collector_connected_agents 2"),
        "{text}"
    );
    assert!(text.contains("hcmon_collector_ingested_samples_total"));

    for node in ["alpha", "beta"] {
        for name in BASIC_SERIES {
            let now = now_s();
            let result = collector
                .get_json(
                    "/api/v1/query_range",
                    &[
                        ("query", format!("{name}{{node=\"{node}\"}}")),
                        ("start", format!("{:.3}", now - 60.0)),
                        ("end", format!("{now:.3}")),
                        ("step", "1".into()),
                    ],
                )
                .await?;
            assert_eq!(result["status"], "success");
            assert_eq!(result["data"]["resultType"], "matrix");
            let series = result["data"]["result"].as_array().expect("result array");
            assert!(!series.is_empty(), "{name} of {node}: {result}");
            for s in series {
                assert_eq!(s["metric"]["node"], node);
                assert_eq!(s["metric"]["__name__"], name);
                let values = s["values"].as_array().expect("values");
                assert!(!values.is_empty());
                let v: f64 = values[0][1].as_str().expect("value string").parse()?;
                assert!(v.is_finite());
            }
        }
    }

    // A bad selector is refused in Prometheus' error shape.
    let err = collector
        .get_json(
            "/api/v1/query_range",
            &[
                ("query", "cpu{node=".into()),
                ("start", "0".into()),
                ("end", "1".into()),
                ("step", "1".into()),
            ],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("400") && err.contains("bad_data"), "{err}");

    // Grafana's "Save & test" asks for `1+1` and wants a scalar back; an unsupported function
    // is refused by name.
    let two = collector
        .get_json(
            "/api/v1/query",
            &[("query", "1+1".into()), ("time", "100".into())],
        )
        .await?;
    assert_eq!(
        two["data"],
        serde_json::json!({"resultType": "scalar", "result": [100.0, "2"]})
    );
    let err = collector
        .get_json("/api/v1/query", &[("query", "sin(up)".into())])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("function `sin` is not supported"), "{err}");

    // Label listing, as Grafana's Prometheus data source asks for it.
    let names = collector
        .get_json("/api/v1/label/__name__/values", &[])
        .await?;
    assert!(
        names["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "node_cpu_usage_ratio"),
        "{names}"
    );
    let labels = collector.get_json("/api/v1/labels", &[]).await?;
    assert!(
        labels["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "mountpoint"),
        "{labels}"
    );

    // Prometheus remote write lands in the same store.
    let now_ms = (now_s() * 1000.0) as i64;
    let request = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "rw_temperature_celsius".into(),
                },
                Label {
                    name: "room".into(),
                    value: "attic".into(),
                },
            ],
            samples: vec![
                Sample {
                    value: 21.5,
                    timestamp: now_ms - 1000,
                },
                Sample {
                    value: 21.75,
                    timestamp: now_ms,
                },
            ],
        }],
    };
    let body = snap::raw::Encoder::new().compress_vec(&request.encode_to_vec())?;
    let response = collector
        .client()?
        .post(format!("http://{}/api/v1/write", collector.http))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status(), 204, "{}", response.text().await?);
    let exported = collector
        .export("rw_temperature_celsius{room=\"attic\"}")
        .await?;
    assert_eq!(
        points(&exported[0]),
        vec![(now_ms - 1000, 21.5), (now_ms, 21.75)]
    );
    let garbage = collector
        .client()?
        .post(format!("http://{}/api/v1/write", collector.http))
        .body("not snappy")
        .send()
        .await?;
    assert_eq!(garbage.status(), 400);
    assert!(garbage.text().await?.contains("snappy"));

    let status = Command::new(bin_path("hcmon"))
        .args(["--url", &format!("http://{}", collector.http), "status"])
        .arg("--data-dir")
        .arg(&collector.data_dir)
        .output()?;
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        out.contains("alpha") && out.contains("beta") && out.contains("connected"),
        "{out}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_exposition_passes_promtool() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("data"), 0, 0)?;
    let _agent = Agent::start(
        &collector.grpc_url(),
        "gamma",
        &dir.path().join("spool"),
        "1s",
    );
    let text = collector
        .wait_for_metrics(Duration::from_secs(30), |t| has_node_series(t, "gamma"))
        .await?;

    hcmon_tests::promtool_check_metrics(&text)
}

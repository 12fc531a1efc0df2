//! Applications pushing their own metrics, with real foreign clients: the OpenTelemetry Python
//! SDK exporting over OTLP/gRPC (the collector's gRPC port) and OTLP/HTTP (`/v1/metrics`),
//! cumulative and delta; each metric then answers `/api/v1/query` with the value the
//! application recorded, named as Prometheus names OTLP metrics.

use hcmon_tests::{Collector, python, python_script};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// The value of an instant query that must select exactly one series.
async fn value(collector: &Collector, query: &str) -> anyhow::Result<Option<f64>> {
    let answer = collector
        .get_json("/api/v1/query", &[("query", query.to_owned())])
        .await?;
    let result = answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    anyhow::ensure!(
        result.len() <= 1,
        "{query} selects {} series: {result:?}",
        result.len()
    );
    Ok(result
        .first()
        .and_then(|s| s["value"][1].as_str())
        .and_then(|v| v.parse().ok()))
}

/// Waits until `query` answers `want`.
async fn expect(collector: &Collector, query: &str, want: f64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = value(collector, query).await?;
        if got.is_some_and(|v| (v - want).abs() < 1e-9) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{query}: want {want}, got {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `otlp_export.py` with `args`; fails with its output if it fails.
fn export(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(python())
        .arg(python_script("otlp_export.py"))
        .args(args)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "otlp_export.py {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The SDK logs a failed export instead of failing: its log must be clean.
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(
        !stderr.contains("Failed to export") && !stderr.contains("rror"),
        "otlp_export.py {args:?} logged: {stderr}"
    );
    Ok(())
}

/// What one round of `otlp_export.py` records, `rounds` times over, for `job`.
async fn expect_rounds(collector: &Collector, job: &str, rounds: f64) -> anyhow::Result<()> {
    let sel = format!("job=\"{job}\"");
    expect(
        collector,
        &format!("orders_placed_total{{{sel},shop=\"eu\",instance=\"worker-1\"}}"),
        5.0 * rounds,
    )
    .await?;
    expect(
        collector,
        &format!("request_duration_seconds_count{{{sel}}}"),
        3.0 * rounds,
    )
    .await?;
    expect(
        collector,
        &format!("request_duration_seconds_sum{{{sel}}}"),
        3.3 * rounds,
    )
    .await?;
    expect(
        collector,
        &format!("request_duration_seconds_bucket{{{sel},le=\"+Inf\"}}"),
        3.0 * rounds,
    )
    .await?;
    expect(collector, &format!("pool_in_use{{{sel}}}"), 2.0 * rounds).await?;
    expect(collector, &format!("queue_depth{{{sel}}}"), 7.0).await?;
    expect(
        collector,
        &format!(
            "target_info{{{sel},deployment_environment=\"test\",telemetry_sdk_language=\"python\"}}"
        ),
        1.0,
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn opentelemetry_sdk_exports_to_the_collector_over_grpc_and_http() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let token = collector.token()?;
    let grpc = format!("http://{}", collector.grpc);
    let http = format!("http://{}/v1/metrics", collector.http);
    let exports = [
        vec![
            "--protocol",
            "grpc",
            "--endpoint",
            &grpc,
            "--service",
            "shop-grpc",
            "--token",
            &token,
        ],
        vec![
            "--protocol",
            "http",
            "--endpoint",
            &http,
            "--service",
            "shop-http",
            "--token",
            &token,
        ],
        vec![
            "--protocol",
            "grpc",
            "--endpoint",
            &grpc,
            "--service",
            "shop-delta",
            "--token",
            &token,
            "--delta",
            "--rounds",
            "3",
        ],
    ];
    for args in &exports {
        tokio::task::block_in_place(|| export(args))?;
    }
    expect_rounds(&collector, "shop-grpc", 1.0).await?;
    expect_rounds(&collector, "shop-http", 1.0).await?;
    // Delta temporality is summed into the cumulative series rate() needs.
    expect_rounds(&collector, "shop-delta", 3.0).await?;

    // Types, help and units reach the metadata API.
    let meta = collector
        .get_json(
            "/api/v1/metadata",
            &[("metric", "request_duration_seconds".to_owned())],
        )
        .await?;
    let entry = &meta["data"]["request_duration_seconds"][0];
    assert_eq!(entry["type"], "histogram", "{meta}");
    assert_eq!(entry["help"], "Time to serve a request.", "{meta}");
    assert_eq!(entry["unit"], "seconds", "{meta}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_http_refusals_say_why() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let url = format!("http://{}/v1/metrics", collector.http);
    let anonymous = reqwest::Client::new();
    let response = anonymous
        .post(&url)
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 401);

    let client = collector.client()?;
    let response = client
        .post(&url)
        .header("Content-Type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 400);
    let body = response.bytes().await?;
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("not an OTLP ExportMetricsServiceRequest"),
        "{text}"
    );

    let response = client
        .post(&url)
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 415);

    // OTLP/JSON as the specification writes it; a delta sum with unspecified temporality is
    // left out and said so in partial_success, the rest stored.
    let now_ns = (hcmon_tests::now_s() * 1e9) as u64;
    let json = format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"json-app"}}}}]}},
        "scopeMetrics":[{{"metrics":[
          {{"name":"jobs.done","sum":{{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{{"timeUnixNano":"{now_ns}","asInt":"12"}}]}}}},
          {{"name":"odd","sum":{{"isMonotonic":true,"dataPoints":[{{"timeUnixNano":"{now_ns}","asInt":"1"}}]}}}}]}}]}}]}}"#
    );
    let response = client
        .post(&url)
        .header("Content-Type", "application/json")
        .body(json)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await?;
    // OTLP/JSON allows an int64 as a number or a string.
    let rejected = &answer["partialSuccess"]["rejectedDataPoints"];
    assert!(rejected == 1 || rejected == "1", "{answer}");
    let message = answer["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("temporality"), "{answer}");
    expect(&collector, "jobs_done_total{job=\"json-app\"}", 12.0).await?;
    Ok(())
}

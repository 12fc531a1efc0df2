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

/// A collector and an agent whose application listeners are on free loopback ports, flushing
/// StatsD every second.
struct AppNode {
    dir: tempfile::TempDir,
    collector: Collector,
    agent: hcmon_tests::Agent,
    statsd: u16,
    otlp_grpc: u16,
    otlp_http: u16,
}

impl AppNode {
    async fn start(extra: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
        let (statsd, otlp_grpc, otlp_http) = (free_port(), free_port(), free_port());
        let config = format!(
            "interval = \"1s\"\n[apps]\ninterval = \"1s\"\nstatsd_listen = \"127.0.0.1:{statsd}\"\notlp_grpc_listen = \"127.0.0.1:{otlp_grpc}\"\notlp_http_listen = \"127.0.0.1:{otlp_http}\"\n{extra}"
        );
        let mut agent = hcmon_tests::Agent::start_with_config(
            &collector.grpc_url(),
            "appnode",
            &dir.path().join("spool"),
            &config,
        )?;
        agent
            .process
            .wait_for_log("otlp_http_listen: listening", Duration::from_secs(20))?;
        Ok(Self {
            dir,
            collector,
            agent,
            statsd,
            otlp_grpc,
            otlp_http,
        })
    }
}

fn free_port() -> u16 {
    hcmon_tests::bench::free_port()
}

#[tokio::test(flavor = "multi_thread")]
async fn applications_push_through_the_agent_with_every_client() -> anyhow::Result<()> {
    let node = AppNode::start("max_series_per_app = 50\n").await?;
    let grpc = format!("http://127.0.0.1:{}", node.otlp_grpc);
    let http = format!("http://127.0.0.1:{}/v1/metrics", node.otlp_http);
    tokio::task::block_in_place(|| {
        export(&[
            "--protocol",
            "grpc",
            "--endpoint",
            &grpc,
            "--service",
            "agent-grpc",
        ])?;
        export(&[
            "--protocol",
            "http",
            "--endpoint",
            &http,
            "--service",
            "agent-http",
            "--delta",
            "--rounds",
            "2",
        ])
    })?;
    let port = node.statsd.to_string();
    let output = Command::new(python())
        .arg(python_script("statsd_send.py"))
        .arg(&port)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "statsd_send.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // StatsD over TCP, as a line sender writes it.
    {
        use std::io::Write;
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", node.statsd))?;
        tcp.write_all(b"tcpapp.jobs:4|c|#service:tcp-app\ntcpapp.jobs:not-a-number|c\n")?;
        // Past its budget of 50 series, the greedy application's new series are refused.
        for i in 0..60 {
            writeln!(tcp, "greedy.hits:1|c|#service:greedy,user:u{i}")?;
        }
    }
    // The repo's Rust client.
    {
        let monitor = hcmon_client::Monitor::builder("rust-app")
            .agent(&format!("127.0.0.1:{}", node.statsd))
            .labels(&["region"])
            .build();
        monitor.record_metric(
            "rust_app.depth",
            3.0,
            &[("region", "eu"), ("request", "r-9")],
        );
        monitor.increment("rust_app.runs", 1.0, &[]);
        drop(monitor.timer("rust_app.step"));
        monitor.flush();
        assert_eq!(monitor.dropped(), 0);
    }

    let c = &node.collector;
    expect_rounds(c, "agent-grpc", 1.0).await?;
    expect_rounds(c, "agent-http", 2.0).await?;
    let expected = [
        // Through the agent, every series carries the node.
        ("queue_depth{job=\"agent-grpc\",node=\"appnode\"}", 7.0),
        ("pyapp_hits_total{job=\"statsd\"}", 3.0),
        ("pyapp_temp{job=\"statsd\"}", 21.5),
        ("pyapp_work_count{job=\"statsd\"}", 1.0),
        ("pyapp_work_sum{job=\"statsd\"}", 0.25),
        ("pyapp_work{job=\"statsd\",quantile=\"0.5\"}", 0.25),
        ("pyclient_queue_depth{job=\"py-client\",region=\"eu\"}", 7.0),
        ("pyclient_orders_total{job=\"py-client\"}", 2.0),
        ("pyclient_work_count{job=\"py-client\"}", 1.0),
        ("tcpapp_jobs_total{job=\"tcp-app\"}", 4.0),
        ("rust_app_depth{job=\"rust-app\",region=\"eu\"}", 3.0),
        ("rust_app_runs_total{job=\"rust-app\"}", 1.0),
        ("rust_app_step_count{job=\"rust-app\"}", 1.0),
        // The bad line is counted; annotations never became labels.
        ("hcmon_agent_statsd_bad_lines_total{node=\"appnode\"}", 1.0),
        (
            "count(pyclient_queue_depth{order_id!=\"\"}) or vector(0)",
            0.0,
        ),
        // The budget: 50 greedy series, 10 refused and said so.
        ("count(greedy_hits_total)", 50.0),
        ("hcmon_agent_app_series{app=\"greedy\"}", 50.0),
        (
            "hcmon_agent_app_refused_samples_total{app=\"greedy\"}",
            10.0,
        ),
    ];
    for (query, want) in expected {
        expect(c, query, want).await?;
    }
    let mut agent = node.agent;
    agent
        .process
        .wait_for_log("past its cardinality budget", Duration::from_secs(10))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn collector_kill9_while_an_application_pushes_through_the_agent_loses_nothing()
-> anyhow::Result<()> {
    let mut node = AppNode::start("").await?;
    let data = node.dir.path().join("collector");
    let (grpc_port, http_port) = (node.collector.grpc.port(), node.collector.http.port());
    let otlp_grpc = node.otlp_grpc;
    // 20 exports, 0.3 s apart, each spooled by the agent before it is answered.
    let rounds = 20;
    let mut app = Command::new(python())
        .arg(python_script("otlp_export.py"))
        .args([
            "--protocol",
            "grpc",
            "--service",
            "pusher-app",
            "--pause",
            "0.3",
        ])
        .args(["--endpoint", &format!("http://127.0.0.1:{otlp_grpc}")])
        .args(["--rounds", &rounds.to_string()])
        .spawn()?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    node.collector.process.kill9();
    tokio::time::sleep(Duration::from_secs(3)).await;
    node.collector = Collector::start(&data, grpc_port, http_port)?;
    let collector = &node.collector;
    let status = tokio::task::block_in_place(|| app.wait())?;
    anyhow::ensure!(status.success(), "the application's exports failed");
    // Every export is stored once: one point per round and one more from the SDK's final
    // export at shutdown, the last one the total of 20 rounds.
    let exports = f64::from(rounds + 1);
    let job = "job=\"pusher-app\",node=\"appnode\"";
    expect(
        collector,
        &format!("orders_placed_total{{{job}}}"),
        5.0 * f64::from(rounds),
    )
    .await?;
    expect(
        collector,
        &format!("count_over_time(orders_placed_total{{{job}}}[10m])"),
        exports,
    )
    .await?;
    expect(
        collector,
        &format!("count_over_time(request_duration_seconds_count{{{job}}}[10m])"),
        exports,
    )
    .await?;
    Ok(())
}

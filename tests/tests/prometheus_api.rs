//! The endpoints a Prometheus client expects, against a real collector: health checks, status,
//! metadata, exemplars, rules, alerts, targets, federation, gzip, and `match[]`/`start`/`end`/
//! `limit` on the label and series listings. Field names are held to Prometheus' documented
//! HTTP API. `/metrics` and `/federate` are checked with `promtool check metrics` after
//! node_exporter-like data (summaries and histograms sent apart, as remote write sends them)
//! has been remote-written in.

use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::node::ScriptedNode;
use hcmon_tests::{Collector, Prometheus, now_s, promtool_check_metrics};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// A remote-written series: name, labels, value.
type Series<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// What node_exporter's own page holds, the collector's colliding `process_` name included,
/// with a summary and a histogram as remote write splits them into series.
const NODE_EXPORTER: &[Series] = &[
    ("process_cpu_seconds_total", &[], 12.5),
    ("go_goroutines", &[], 8.0),
    (
        "node_cpu_seconds_total",
        &[("cpu", "0"), ("mode", "idle")],
        1000.0,
    ),
    (
        "node_cpu_seconds_total",
        &[("cpu", "0"), ("mode", "user")],
        200.0,
    ),
    ("go_gc_duration_seconds", &[("quantile", "0.5")], 0.001),
    ("go_gc_duration_seconds", &[("quantile", "1")], 0.01),
    ("go_gc_duration_seconds_sum", &[], 0.5),
    ("go_gc_duration_seconds_count", &[], 90.0),
    (
        "promhttp_request_duration_seconds_bucket",
        &[("le", "0.1")],
        3.0,
    ),
    (
        "promhttp_request_duration_seconds_bucket",
        &[("le", "+Inf")],
        4.0,
    ),
    ("promhttp_request_duration_seconds_sum", &[], 0.3),
    ("promhttp_request_duration_seconds_count", &[], 4.0),
];

/// HELP and TYPE as node_exporter's Prometheus forwards them (`WriteRequest.metadata`);
/// MetricType: 1 counter, 2 gauge, 3 histogram, 5 summary.
const METADATA: &[(&str, i32, &str)] = &[
    (
        "process_cpu_seconds_total",
        1,
        "Total user and system CPU time spent in seconds.",
    ),
    (
        "go_goroutines",
        2,
        "Number of goroutines that currently exist.",
    ),
    (
        "node_cpu_seconds_total",
        1,
        "Seconds the CPUs spent in each mode.",
    ),
    (
        "go_gc_duration_seconds",
        5,
        "A summary of the pause duration of garbage collection cycles.",
    ),
    (
        "promhttp_request_duration_seconds",
        3,
        "Latency of the metrics handler.",
    ),
];

/// Remote-writes `series` with `metadata`, labelled as a Prometheus scraping node_exporter
/// labels them; the answer's status and body.
async fn remote_write(
    collector: &Collector,
    series: &[Series<'_>],
    metadata: &[(&str, i32, &str)],
) -> anyhow::Result<(u16, String)> {
    let label = |name: &str, value: &str| Label {
        name: name.into(),
        value: value.into(),
    };
    let timestamp = (now_s() * 1000.0) as i64;
    let request = WriteRequest {
        timeseries: series
            .iter()
            .map(|(name, labels, value)| {
                let mut all = vec![
                    label("__name__", name),
                    label("instance", "web1:9100"),
                    label("job", "node"),
                ];
                all.extend(labels.iter().map(|(n, v)| label(n, v)));
                TimeSeries {
                    labels: all,
                    samples: vec![Sample {
                        value: *value,
                        timestamp,
                    }],
                }
            })
            .collect(),
    };
    let mut raw = prost::Message::encode_to_vec(&request);
    // The proto the tests encode with has no metadata: field 3, encoded by hand.
    for (family, kind, help) in metadata {
        let mut entry = Vec::new();
        prost::encoding::int32::encode(1, kind, &mut entry);
        prost::encoding::string::encode(2, &(*family).to_owned(), &mut entry);
        prost::encoding::string::encode(4, &(*help).to_owned(), &mut entry);
        prost::encoding::bytes::encode(3, &entry, &mut raw);
    }
    let body = snap::raw::Encoder::new().compress_vec(&raw)?;
    let response = collector
        .client()?
        .post(format!("http://{}/api/v1/write", collector.http))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// The keys of a JSON object.
fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(items: &[&'a str]) -> BTreeSet<&'a str> {
    items.iter().copied().collect()
}

/// GET `path` with the admin token: status and JSON body.
async fn get(collector: &Collector, path: &str) -> anyhow::Result<(u16, Value)> {
    let response = collector
        .client()?
        .get(format!("http://{}{path}", collector.http))
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    let json = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{path}: {e}: {text}"))?;
    Ok((status, json))
}

/// GET `path` with the admin token, expecting Prometheus' success envelope: its `data`.
async fn data(collector: &Collector, path: &str) -> anyhow::Result<Value> {
    let (status, body) = get(collector, path).await?;
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(body["status"], "success", "{path}: {body}");
    Ok(body["data"].clone())
}

/// How many `# TYPE family ` and `# HELP family ` lines `text` has.
fn declared(text: &str, family: &str) -> (usize, usize) {
    let count = |word: &str| {
        text.lines()
            .filter(|l| l.starts_with(&format!("# {word} {family} ")))
            .count()
    };
    (count("TYPE"), count("HELP"))
}

#[tokio::test(flavor = "multi_thread")]
async fn status_health_and_metadata_endpoints_answer_in_prometheus_shape() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let base = format!("http://{}", collector.http);

    // Health checks need no token, and answer plain text as Prometheus does.
    let anonymous = reqwest::Client::new();
    for (path, word) in [("/-/healthy", "Healthy"), ("/-/ready", "Ready")] {
        let response = anonymous.get(format!("{base}{path}")).send().await?;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert!(response.text().await?.contains(word), "{path}");
    }
    let refused = anonymous
        .get(format!("{base}/api/v1/status/buildinfo"))
        .send()
        .await?;
    assert_eq!(refused.status().as_u16(), 401);

    let build = data(&collector, "/api/v1/status/buildinfo").await?;
    assert_eq!(
        keys(&build),
        set(&[
            "version",
            "revision",
            "branch",
            "buildUser",
            "buildDate",
            "goVersion"
        ])
    );
    assert_eq!(build["version"], env!("CARGO_PKG_VERSION"));

    let runtime = data(&collector, "/api/v1/status/runtimeinfo").await?;
    assert_eq!(
        keys(&runtime),
        set(&[
            "startTime",
            "CWD",
            "reloadConfigSuccess",
            "lastConfigTime",
            "corruptionCount",
            "goroutineCount",
            "GOMAXPROCS",
            "GOMEMLIMIT",
            "GOGC",
            "GODEBUG",
            "storageRetention",
        ])
    );
    let started = runtime["startTime"].as_str().unwrap();
    humantime::parse_rfc3339(started)?;
    assert!(runtime["goroutineCount"].as_u64().unwrap() > 0, "{runtime}");
    assert_eq!(runtime["reloadConfigSuccess"], true);
    let retention = runtime["storageRetention"].as_str().unwrap();
    assert!(
        retention.ends_with('d') || retention.ends_with('w'),
        "{retention}"
    );

    let flags = data(&collector, "/api/v1/status/flags").await?;
    let data_dir = dir.path().join("collector").display().to_string();
    assert_eq!(flags["data-dir"], data_dir.as_str(), "{flags}");

    // An agent, and node_exporter's data remote-written beside it.
    let mut node = ScriptedNode::connect(&collector.grpc_url(), "web2").await?;
    node.send((now_s() * 1000.0) as i64, &[("node_load1", &[], 0.5)])
        .await?;
    let (status, body) = remote_write(&collector, NODE_EXPORTER, METADATA).await?;
    assert!(status == 204 || status == 400, "{status}: {body}");

    let metadata = data(&collector, "/api/v1/metadata").await?;
    for family in ["go_goroutines", "node_cpu_seconds_total", "node_load1"] {
        let entries = metadata[family]
            .as_array()
            .unwrap_or_else(|| panic!("{family}: {metadata}"));
        assert_eq!(
            keys(&entries[0]),
            set(&["type", "help", "unit"]),
            "{family}"
        );
    }
    assert_eq!(metadata["node_cpu_seconds_total"][0]["type"], "counter");
    assert_eq!(metadata["node_load1"][0]["type"], "gauge");
    let one = data(&collector, "/api/v1/metadata?metric=go_goroutines").await?;
    assert_eq!(keys(&one), set(&["go_goroutines"]));
    let limited = data(&collector, "/api/v1/metadata?limit=2").await?;
    assert_eq!(keys(&limited).len(), 2, "{limited}");

    // Exemplars: none stored, but the parameters are checked.
    let exemplars = data(
        &collector,
        "/api/v1/query_exemplars?query=up&start=10&end=20",
    )
    .await?;
    assert_eq!(exemplars, serde_json::json!([]));
    for bad in [
        "/api/v1/query_exemplars",
        "/api/v1/query_exemplars?query=up&start=20&end=10",
        "/api/v1/query_exemplars?query=up&start=yesterday",
    ] {
        let (status, body) = get(&collector, bad).await?;
        assert_eq!(
            (status, &body["errorType"]),
            (400, &Value::from("bad_data")),
            "{bad}"
        );
    }

    // Targets: the agent, up, as node_exporter's job would list it.
    let targets = data(&collector, "/api/v1/targets").await?;
    assert_eq!(
        keys(&targets),
        set(&["activeTargets", "droppedTargets", "droppedTargetCounts"])
    );
    let active = targets["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 1, "remote write is no target: {targets}");
    let target = &active[0];
    assert_eq!(
        keys(target),
        set(&[
            "discoveredLabels",
            "labels",
            "scrapePool",
            "scrapeUrl",
            "globalUrl",
            "lastError",
            "lastScrape",
            "lastScrapeDuration",
            "health",
            "scrapeInterval",
            "scrapeTimeout",
        ])
    );
    assert_eq!(
        target["labels"],
        serde_json::json!({"instance": "web2", "job": "node"})
    );
    assert_eq!(target["health"], "up");
    humantime::parse_rfc3339(target["lastScrape"].as_str().unwrap())?;
    let dropped = data(&collector, "/api/v1/targets?state=dropped").await?;
    assert_eq!(dropped["activeTargets"], serde_json::json!([]));

    // Rules: the shipped alert rules, grouped; no recording rules.
    let rules = data(&collector, "/api/v1/rules").await?;
    let groups = rules["groups"].as_array().unwrap();
    let thresholds = groups
        .iter()
        .find(|g| g["name"] == "thresholds")
        .unwrap_or_else(|| panic!("{rules}"));
    assert_eq!(
        keys(thresholds),
        set(&[
            "name",
            "file",
            "rules",
            "interval",
            "limit",
            "evaluationTime",
            "lastEvaluation"
        ])
    );
    let cpu = thresholds["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "HighCpu")
        .unwrap_or_else(|| panic!("{thresholds}"));
    assert_eq!(
        keys(cpu),
        set(&[
            "state",
            "name",
            "query",
            "duration",
            "keepFiringFor",
            "labels",
            "annotations",
            "alerts",
            "health",
            "lastError",
            "evaluationTime",
            "lastEvaluation",
            "type",
        ])
    );
    assert_eq!(
        (&cpu["type"], &cpu["state"]),
        (&Value::from("alerting"), &Value::from("inactive"))
    );
    let recording = data(&collector, "/api/v1/rules?type=record").await?;
    assert_eq!(recording["groups"], serde_json::json!([]));
    let named = data(&collector, "/api/v1/rules?rule_name[]=HighCpu").await?;
    let named: Vec<&Value> = named["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(named.len(), 1);

    let alerts = data(&collector, "/api/v1/alerts").await?;
    assert_eq!(keys(&alerts), set(&["alerts"]));
    assert!(alerts["alerts"].is_array());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_federation_stay_valid_with_node_exporter_data_and_gzip() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let base = format!("http://{}", collector.http);
    let mut node = ScriptedNode::connect(&collector.grpc_url(), "web2").await?;
    node.send((now_s() * 1000.0) as i64, &[("node_load1", &[], 0.5)])
        .await?;
    // Once without metadata (remote write 1.0 as most senders use it), once with.
    remote_write(&collector, NODE_EXPORTER, &[]).await?;
    let (status, body) = remote_write(&collector, NODE_EXPORTER, METADATA).await?;
    assert!(status == 204 || status == 400, "{status}: {body}");

    let text = collector
        .wait_for_metrics(Duration::from_secs(30), |t| {
            t.contains("go_goroutines{")
                && t.contains("node_load1{instance=\"web2\",job=\"node\",node=\"web2\"}")
        })
        .await?;
    for family in [
        "process_cpu_seconds_total",
        "go_goroutines",
        "node_cpu_seconds_total",
        "go_gc_duration_seconds",
        "promhttp_request_duration_seconds",
    ] {
        assert_eq!(declared(&text, family), (1, 1), "{family}:\n{text}");
    }
    for part in ["_sum", "_count", "_bucket"] {
        let family = format!("promhttp_request_duration_seconds{part}");
        assert_eq!(declared(&text, &family), (0, 0), "{family}:\n{text}");
    }
    assert!(
        text.contains("# TYPE go_gc_duration_seconds summary\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE promhttp_request_duration_seconds histogram\n"),
        "{text}"
    );
    promtool_check_metrics(&text)?;

    // gzip when asked for, as Prometheus asks when it scrapes; plain otherwise.
    let client = collector.client()?;
    let zipped = client
        .get(format!("{base}/metrics"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await?;
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let unzipped = gunzip(&zipped.bytes().await?)?;
    assert!(
        unzipped.contains("# TYPE go_goroutines gauge"),
        "{unzipped}"
    );
    promtool_check_metrics(&unzipped)?;
    let json = client
        .get(format!("{base}/api/v1/labels"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await?;
    assert_eq!(json.headers()["content-encoding"], "gzip");
    let plain = client.get(format!("{base}/metrics")).send().await?;
    assert!(plain.headers().get("content-encoding").is_none());

    // Federation: the matching series' newest samples, with timestamps.
    let federated = client
        .get(format!("{base}/federate"))
        .query(&[("match[]", "{job=\"node\"}"), ("match[]", "node_load1")])
        .send()
        .await?;
    assert_eq!(federated.status().as_u16(), 200);
    let federated = federated.text().await?;
    assert_eq!(
        declared(&federated, "go_gc_duration_seconds"),
        (1, 1),
        "{federated}"
    );
    let load = federated
        .lines()
        .find(|l| l.starts_with("node_load1{"))
        .unwrap_or_else(|| panic!("{federated}"));
    assert_eq!(load.split(' ').count(), 3, "value and timestamp: {load}");
    assert!(!federated.contains("hcmon_collector_"), "{federated}");
    promtool_check_metrics(&federated)?;
    let missing = client.get(format!("{base}/federate")).send().await?;
    assert_eq!(missing.status().as_u16(), 400);
    Ok(())
}

/// `gzip -dc` over `bytes`.
fn gunzip(bytes: &[u8]) -> anyhow::Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut gzip = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    gzip.stdin.take().expect("stdin").write_all(bytes)?;
    let output = gzip.wait_with_output()?;
    anyhow::ensure!(output.status.success(), "gzip -dc failed");
    Ok(String::from_utf8(output.stdout)?)
}

#[tokio::test(flavor = "multi_thread")]
async fn label_and_series_listings_honour_match_time_range_and_limit() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let (status, body) = remote_write(&collector, &NODE_EXPORTER[1..], &[]).await?;
    assert_eq!(status, 204, "{body}");
    let truncated = serde_json::json!(["results truncated due to limit"]);

    let (_, all) = get(&collector, "/api/v1/labels").await?;
    assert!(all["data"].as_array().unwrap().len() > 2, "{all}");
    assert!(all.get("warnings").is_none(), "{all}");
    let (_, two) = get(&collector, "/api/v1/labels?limit=2").await?;
    assert_eq!(two["data"].as_array().unwrap().len(), 2, "{two}");
    assert_eq!(two["warnings"], truncated);

    let cpu = data(&collector, "/api/v1/labels?match[]=node_cpu_seconds_total").await?;
    assert_eq!(
        cpu,
        serde_json::json!(["__name__", "cpu", "instance", "job", "mode"])
    );
    let names = data(
        &collector,
        "/api/v1/label/__name__/values?match[]={__name__=~\"go_.*\"}",
    )
    .await?;
    assert_eq!(
        names,
        serde_json::json!([
            "go_gc_duration_seconds",
            "go_gc_duration_seconds_count",
            "go_gc_duration_seconds_sum",
            "go_goroutines"
        ])
    );
    let (_, one) = get(&collector, "/api/v1/label/mode/values?limit=1").await?;
    assert_eq!(
        (&one["data"], &one["warnings"]),
        (&serde_json::json!(["idle"]), &truncated)
    );

    let (_, series) = get(
        &collector,
        "/api/v1/series?match[]={__name__=~\"go_.*\"}&limit=3",
    )
    .await?;
    assert_eq!(series["data"].as_array().unwrap().len(), 3, "{series}");
    assert_eq!(series["warnings"], truncated);

    // A range before anything was written holds nothing; one around now holds everything.
    let now = now_s() as i64;
    let before = format!("start={}&end={}", now - 7200, now - 3600);
    let around = format!("start={}&end={}", now - 3600, now + 3600);
    let none = data(
        &collector,
        &format!("/api/v1/series?match[]=go_goroutines&{before}"),
    )
    .await?;
    assert_eq!(none, serde_json::json!([]));
    let found = data(
        &collector,
        &format!("/api/v1/series?match[]=go_goroutines&{around}"),
    )
    .await?;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    let labels = data(&collector, &format!("/api/v1/labels?{before}")).await?;
    assert_eq!(labels, serde_json::json!([]));
    let values = data(&collector, &format!("/api/v1/label/job/values?{around}")).await?;
    assert_eq!(values, serde_json::json!(["node"]));
    let (status, body) = get(&collector, "/api/v1/series?match[]=up&start=20&end=10").await?;
    assert_eq!(status, 400, "{body}");
    let (status, body) = get(&collector, "/api/v1/labels?limit=-1").await?;
    assert_eq!(status, 400, "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_metrics_gzipped_and_federates() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let (status, body) = remote_write(&collector, &NODE_EXPORTER[1..], METADATA).await?;
    assert_eq!(status, 204, "{body}");
    let token = dir.path().join("token");
    std::fs::write(&token, collector.token()?)?;
    // Prometheus asks for gzip on every scrape; the federation job reads `/federate` too.
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: hcmon
    authorization:
      credentials_file: {token}
    static_configs:
      - targets: ['{http}']
  - job_name: federate
    metrics_path: /federate
    honor_labels: true
    params:
      'match[]': ['{{job="node"}}']
    authorization:
      credentials_file: {token}
    static_configs:
      - targets: ['{http}']
"#,
        token = token.display(),
        http = collector.http,
    );
    let prometheus = Prometheus::start(dir.path(), &config, &[])?;
    let client = reqwest::Client::new();
    let targets_url = prometheus.url("/api/v1/targets");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let targets: Option<Value> = match client.get(&targets_url).send().await {
            Ok(response) => response.json().await.ok(),
            Err(_) => None,
        };
        let healthy: Vec<(String, String)> = targets
            .iter()
            .flat_map(|t| {
                t["data"]["activeTargets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|t| {
                let job = t["labels"]["job"].as_str().unwrap_or_default().to_owned();
                (job, format!("{} {}", t["health"], t["lastError"]))
            })
            .collect();
        let up = |job: &str| {
            healthy
                .iter()
                .any(|(j, h)| j == job && h.starts_with("\"up\""))
        };
        if up("hcmon") && up("federate") {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "Prometheus never scraped hcmon: {healthy:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // What it scraped and federated is queryable there.
    let query = prometheus.url("/api/v1/query");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer: Value = client
            .get(&query)
            .query(&[("query", "go_goroutines{job=\"node\"}")])
            .send()
            .await?
            .json()
            .await?;
        if answer["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "nothing federated: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

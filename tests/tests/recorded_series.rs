//! The series the collector writes about itself, as Prometheus users expect them, read back
//! through the PromQL API of a collector running in this process: `up` of a scripted agent
//! while it streams and after it disconnects; `ALERTS` of a threshold alert while it fires,
//! gone as soon as it resolves (a staleness marker, not the five-minute lookback); and
//! `/metrics`, which also shows the stored `hcmon_anomalous_series`, still valid for
//! `promtool check metrics`.

use hcmon_collector::Collector;
use hcmon_collector::config::CollectorConfig;
use hcmon_tests::node::ScriptedNode;
use hcmon_tests::now_ms;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Far longer than any of the intervals below, far shorter than PromQL's 5-minute lookback.
const WAIT: Duration = Duration::from_secs(30);

const NODE: &str = "rec-node";

const CONFIG: &str = r#"
[alerting]
default_rules = false

[alerting.missing_data]
agents = false

[[alerting.rules]]
name = "HotDisk"
selector = "test_disk_temperature_celsius"
direction = "above"
warning = 60.0
recovery_margin = 5.0

[recorded]
up_interval = "200ms"
anomaly_interval = "200ms"
silent_after = "1m"
"#;

struct Rig {
    http: SocketAddr,
    grpc: SocketAddr,
    client: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Rig {
    async fn start(data_dir: &std::path::Path) -> anyhow::Result<Self> {
        let mut config: CollectorConfig = toml::from_str(CONFIG)?;
        config.data_dir = data_dir.to_owned();
        config.grpc_listen = "127.0.0.1:0".parse()?;
        config.http_listen = "127.0.0.1:0".parse()?;
        let collector = Collector::open(config, hcmon_collector::clock::system_clock()).await?;
        let (http, grpc) = (collector.http_addr(), collector.grpc_addr());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(collector.run(shutdown.clone(), Duration::from_secs(5)));
        let token = std::fs::read_to_string(data_dir.join("admin.token"))?;
        Ok(Self {
            http,
            grpc,
            client: hcmon_tests::client_with(token.trim())?,
            shutdown,
            task,
        })
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<String> {
        let response = self
            .client
            .get(format!("http://{}{path}", self.http))
            .query(query)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        anyhow::ensure!(status.is_success(), "GET {path}: {status}: {body}");
        Ok(body)
    }

    /// The instant vector `promql` evaluates to now.
    async fn query(&self, promql: &str) -> anyhow::Result<Vec<Value>> {
        let body: Value =
            serde_json::from_str(&self.get("/api/v1/query", &[("query", promql)]).await?)?;
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Polls `promql` until `check` holds for its result; fails with the last result.
    async fn wait_query(
        &self,
        promql: &str,
        check: impl Fn(&[Value]) -> bool,
    ) -> anyhow::Result<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let result = self.query(promql).await?;
            if check(&result) {
                return Ok(result);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{promql} never met the condition; last result: {result:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }
}

fn value(element: &Value) -> &str {
    element["value"][1].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_and_alerts_are_written_as_prometheus_writes_them() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let rig = Rig::start(dir.path()).await?;
    let mut node = ScriptedNode::connect(&format!("http://{}", rig.grpc), NODE).await?;
    let disk = [("device", "sda")];
    node.send(now_ms(), &[("test_disk_temperature_celsius", &disk, 40.0)])
        .await?;

    let up = format!("up{{instance=\"{NODE}\"}}");
    let streaming = rig
        .wait_query(&up, |r| r.len() == 1 && value(&r[0]) == "1")
        .await?;
    let labels = &streaming[0]["metric"];
    assert_eq!(labels["job"], "node", "{labels}");
    assert_eq!(labels["node"], NODE, "{labels}");

    // Hot: the threshold alert fires at once (no `for`).
    node.send(now_ms(), &[("test_disk_temperature_celsius", &disk, 75.0)])
        .await?;
    let firing = rig
        .wait_query(r#"ALERTS{alertstate="firing"}"#, |r| {
            r.iter().any(|a| a["metric"]["alertname"] == "HotDisk")
        })
        .await?;
    let alert = &firing[0]["metric"];
    assert_eq!(alert["node"], NODE, "{alert}");
    assert_eq!(alert["device"], "sda", "{alert}");
    assert_eq!(value(&firing[0]), "1");
    let since = rig
        .wait_query(r#"ALERTS_FOR_STATE{alertname="HotDisk"}"#, |r| r.len() == 1)
        .await?;
    let since_s: f64 = value(&since[0]).parse()?;
    assert!(
        (since_s - hcmon_tests::now_s()).abs() < 600.0,
        "ALERTS_FOR_STATE is Unix seconds: {since_s}"
    );

    // `/metrics` shows the stored series beside the collector's own, and stays valid.
    let deadline = tokio::time::Instant::now() + WAIT;
    let metrics = loop {
        let text = rig.get("/metrics", &[]).await?;
        if text.contains("hcmon_anomalous_series{") && text.contains("ALERTS{") {
            break text;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "/metrics never showed the stored series:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    hcmon_tests::promtool_check_metrics(&metrics)?;
    assert_eq!(
        metrics.matches("# TYPE hcmon_anomalous_series ").count(),
        1,
        "{metrics}"
    );

    // Cool again: the alert resolves, and its ALERTS series ends with a staleness marker
    // instead of lingering for PromQL's five-minute lookback.
    node.send(now_ms(), &[("test_disk_temperature_celsius", &disk, 20.0)])
        .await?;
    rig.wait_query(r#"ALERTS{alertname="HotDisk"}"#, <[Value]>::is_empty)
        .await?;
    rig.wait_query(
        r#"ALERTS_FOR_STATE{alertname="HotDisk"}"#,
        <[Value]>::is_empty,
    )
    .await?;

    // The agent goes away: `up` turns 0 (the node stays registered).
    drop(node);
    rig.wait_query(&format!("{up} == 0"), |r| r.len() == 1)
        .await?;

    rig.stop().await
}

//! A collector running in the test's own process on a clock the test moves: escalations,
//! burn-rate windows and rule durations of hours run in milliseconds, while everything else
//! (timers, stores, deliveries, the real gRPC and HTTP listeners) is what runs in production.

use crate::node::ScriptedNode;
use hcmon_collector::Collector;
use hcmon_collector::config::CollectorConfig;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long [`ClockedCollector::wait_alert`] waits.
const WAIT: Duration = Duration::from_secs(15);

/// A collector running in this process on a clock the test moves.
pub struct ClockedCollector {
    pub clock: Arc<AtomicI64>,
    pub http: SocketAddr,
    /// Sends the admin token the collector wrote to its data folder.
    pub client: reqwest::Client,
    pub data_dir: std::path::PathBuf,
    pub grpc: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl ClockedCollector {
    pub async fn start(data_dir: &Path, toml: &str, clock: Arc<AtomicI64>) -> anyhow::Result<Self> {
        let mut config: CollectorConfig = toml::from_str(toml)?;
        config.data_dir = data_dir.to_owned();
        config.grpc_listen = "127.0.0.1:0".parse()?;
        config.http_listen = "127.0.0.1:0".parse()?;
        config.validate()?;
        let now = clock.clone();
        let collector =
            Collector::open(config, Arc::new(move || now.load(Ordering::SeqCst))).await?;
        let (http, grpc) = (collector.http_addr(), collector.grpc_addr());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(collector.run(shutdown.clone(), Duration::from_secs(5)));
        let token = std::fs::read_to_string(data_dir.join("admin.token"))?;
        let client = crate::client_with(token.trim())?;
        Ok(Self {
            clock,
            http,
            client,
            data_dir: data_dir.to_owned(),
            grpc,
            shutdown,
            task,
        })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }

    pub fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Moves the clock in steps, giving the collector's timers a moment at each.
    pub async fn advance(&self, ms: i64) {
        let step = 60_000.min(ms.max(1));
        let end = self.now() + ms;
        while self.now() < end {
            let next = (self.now() + step).min(end);
            self.clock.store(next, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    pub async fn node(&self, name: &str) -> anyhow::Result<ScriptedNode> {
        ScriptedNode::connect(&format!("http://{}", self.grpc), name).await
    }

    /// The body of `GET path` as text (`/metrics`).
    pub async fn text(&self, path: &str) -> anyhow::Result<String> {
        Ok(self
            .client
            .get(format!("http://{}{path}", self.http))
            .send()
            .await?
            .text()
            .await?)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&self.text(path).await?)?)
    }

    pub async fn alerts(&self) -> anyhow::Result<Vec<Value>> {
        self.list_alerts("/api/v1/alerts").await
    }

    pub async fn list_alerts(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let body = self.get(path).await?;
        Ok(body["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits until the API shows the alert `name` on `node` in hcmon state `state` (resolved
    /// ones included).
    pub async fn wait_alert(&self, name: &str, node: &str, state: &str) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let all = self.list_alerts("/api/v1/alerts?all=true").await?;
            let found = all.into_iter().find(|a| {
                a["labels"]["alertname"] == name
                    && a["labels"]["node"] == node
                    && a["hcmonState"] == state
            });
            if let Some(alert) = found {
                return Ok(alert);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "{name} on {node} never became {state}: {:#?}",
                    self.list_alerts("/api/v1/alerts?all=true").await?
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs the `hcmon` CLI against this collector as the user `carol` (the name the audit
    /// log and acknowledgements record).
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = crate::hcmon_command(self.http, &self.data_dir)
            .args(args)
            .env("USER", "carol")
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "hcmon {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?)
    }

    /// Runs the `hcmon` CLI, expecting it to fail; returns what it said on stderr.
    pub fn cli_refused(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = crate::hcmon_command(self.http, &self.data_dir)
            .args(args)
            .output()?;
        anyhow::ensure!(!output.status.success(), "hcmon {args:?} succeeded");
        Ok(String::from_utf8(output.stderr)?)
    }

    /// POSTs JSON; the status and the answer.
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .client
            .post(format!("http://{}{path}", self.http))
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, serde_json::from_str(&response.text().await?)?))
    }
}

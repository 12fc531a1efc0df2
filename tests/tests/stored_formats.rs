//! A data directory written by an older collector opens with today's: the fixture
//! `tests/fixtures/datadir-v1.tar.gz` was written by commit 44021d0 (see
//! `tests/fixtures/make-datadir.sh`) and holds every kind of stored record. A change to a stored
//! record that breaks existing data directories fails here, through the HTTP API, rather than
//! at an operator's upgrade.

use hcmon_collector::Collector;
use hcmon_collector::config::CollectorConfig;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// When the fixture was written, Unix ms (its silence was made then, for 30 days). The
/// collector runs on a clock just after it, so what was active then is active now.
const FIXTURE_WRITTEN_MS: i64 = 1_796_018_100_000;

/// The collector config the fixture was written with (`make-datadir.sh`), without the paths.
const FIXTURE_CONFIG: &str = r#"
[alerting]
group_window = "1s"
tick = "100ms"
[[alerting.rules]]
name = "FixtureRss"
selector = "hcmon_agent_resident_bytes"
warning = 1.0
critical = 2.0
direction = "above"
for = "0s"
[[alerting.escalation.tiers]]
after = "1s"
recipients = ["on-call"]
[[alerting.escalation.tiers]]
after = "1h"
recipients = ["manager"]
"#;

/// Unpacks the fixture into `dir` with `tar`; returns the data directory.
fn unpack_fixture(dir: &Path) -> anyhow::Result<PathBuf> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/datadir-v1.tar.gz");
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&data)
        .arg("-xzf")
        .arg(&fixture)
        .status()?;
    anyhow::ensure!(status.success(), "tar -xzf {} failed", fixture.display());
    Ok(data)
}

/// The collector, in this process, on the fixture's data directory.
struct Opened {
    http: SocketAddr,
    /// Sends the admin token the collector made (the fixture predates tokens).
    client: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Opened {
    async fn start(data: &Path) -> anyhow::Result<Self> {
        let mut config: CollectorConfig = toml::from_str(FIXTURE_CONFIG)?;
        config.data_dir = data.to_owned();
        config.grpc_listen = "127.0.0.1:0".parse()?;
        config.http_listen = "127.0.0.1:0".parse()?;
        config.validate()?;
        let now = FIXTURE_WRITTEN_MS + 60_000;
        let collector = Collector::open(config, Arc::new(move || now)).await?;
        let http = collector.http_addr();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(collector.run(shutdown.clone(), Duration::from_secs(5)));
        let token = std::fs::read_to_string(data.join("admin.token"))?;
        Ok(Self {
            http,
            client: hcmon_tests::client_with(token.trim())?,
            shutdown,
            task,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }

    async fn text(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("http://{}{path}", self.http);
        let response = self.client.get(url).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        Ok(response.text().await?)
    }

    /// The `data` of a successful API answer.
    async fn data(&self, path: &str) -> anyhow::Result<Value> {
        let body: Value = serde_json::from_str(&self.text(path).await?)?;
        anyhow::ensure!(body["status"] == "success", "GET {path}: {body}");
        Ok(body["data"].clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_written_by_commit_44021d0_opens_with_everything_in_it()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = unpack_fixture(dir.path())?;
    let collector = Opened::start(&data).await?;

    // Nothing was set aside as unreadable.
    let metrics = collector.text("/metrics").await?;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("hcmon_collector_quarantined_records_total"))
    {
        assert!(line.ends_with(" 0"), "{line}");
    }

    // The alert, still firing, acknowledged by the fixture's operator.
    let alerts = collector.data("/api/v1/alerts?all=true").await?;
    let alert = alerts["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["labels"]["alertname"] == "FixtureRss")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no FixtureRss alert: {alerts}"))?;
    assert_eq!(alert["labels"]["node"], "fixture-node", "{alert}");
    assert_eq!(alert["state"], "firing", "{alert}");
    assert_eq!(alert["hcmonState"], "acknowledged", "{alert}");
    assert_eq!(alert["acknowledged"]["by"], "fixture", "{alert}");
    assert_eq!(alert["escalationTiers"], 2, "{alert}");
    assert!(alert["escalationTier"].as_u64() >= Some(1), "{alert}");

    // The silence, active.
    let silences = collector.data("/api/v1/silences").await?;
    let silence = silences
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["matchers"] == r#"{alertname="NeverFires"}"#)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no NeverFires silence: {silences}"))?;
    assert_eq!(silence["status"], "active", "{silence}");
    assert_eq!(silence["createdBy"], "fixture", "{silence}");

    // The incident and its history.
    let incident = alert["incident"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the alert names no incident: {alert}"))?;
    let listed = collector.data("/api/v1/incidents").await?;
    assert!(
        listed
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["id"] == incident),
        "{listed}"
    );
    let history = collector
        .data(&format!("/api/v1/incidents/{incident}"))
        .await?;
    let events: Vec<&str> = history["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for event in ["fired", "queued", "escalated", "acknowledged"] {
        assert!(events.contains(&event), "no {event:?} event: {history}");
    }

    // The stored series, queryable.
    let series = collector
        .data("/api/v1/series?match[]=hcmon_agent_resident_bytes")
        .await?;
    assert!(series.as_array().is_some_and(|s| !s.is_empty()), "{series}");
    collector.stop().await
}

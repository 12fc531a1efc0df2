//! A node's and the collector's life cycle as an operator sees it: a graceful stop with agents
//! streaming, and forgetting a node that no longer reports.

use hcmon_tests::{Agent, Collector, bin_path};
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn a_graceful_stop_closes_agent_streams_instead_of_waiting_out_the_grace()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut collector = Collector::start(&dir.path().join("data"), 0, 0)?;
    let _agent = Agent::start(
        &collector.grpc_url(),
        "steady",
        &dir.path().join("spool"),
        "1s",
    );
    collector
        .wait_for_metrics(Duration::from_secs(30), |t| t.contains("node=\"steady\""))
        .await?;

    let status = Command::new("kill")
        .args(["-TERM", &collector.process.pid().to_string()])
        .status()?;
    assert!(status.success());
    collector
        .process
        .wait_for_log("store flushed; bye", Duration::from_secs(30))?;
    let logs = collector.process.logs();
    assert!(
        !logs.contains("did not drain"),
        "the stop waited for the agent's stream:\n{logs}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn forgetting_a_node_removes_it_and_resolves_its_missing_data_alerts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("data"), 0, 0)?;
    let url = format!("http://{}", collector.http);
    let mut agent = Agent::start(
        &collector.grpc_url(),
        "retired",
        &dir.path().join("spool"),
        "1s",
    );
    collector
        .wait_for_metrics(Duration::from_secs(30), |t| t.contains("node=\"retired\""))
        .await?;

    let forget = |node: &str| {
        Command::new(bin_path("hcmon"))
            .args(["--url", &url, "forget", node])
            .env("HCMON_DATA_DIR", &collector.data_dir)
            .output()
    };
    // While it streams, forgetting it is refused with the reason.
    let refused = forget("retired")?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("streaming"), "{stderr}");

    // Once it is gone for long enough, its missing-data alerts fire.
    agent.process.kill9();
    let missing_data = |alerts: &serde_json::Value| -> Vec<(String, String)> {
        alerts["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["node"] == "retired")
            .filter(|a| {
                let name = &a["labels"]["alertname"];
                name == "AgentSilent" || name == "AgentDisconnected"
            })
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap_or("").to_owned(),
                    a["state"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let alerts = collector.get_json("/api/v1/alerts", &[]).await?;
        let firing = missing_data(&alerts);
        if firing
            .iter()
            .any(|(name, state)| name == "AgentSilent" && state == "firing")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "AgentSilent never fired: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let done = forget("retired")?;
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let agents = collector.get_json("/api/v1/agents", &[]).await?;
    assert!(
        agents["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["node"] != "retired"),
        "{agents}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let alerts = collector.get_json("/api/v1/alerts", &[]).await?;
        if missing_data(&alerts).is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the forgotten node's alerts are still open: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Its series stay queryable.
    let kept = collector
        .export("hcmon_agent_samples_total{node=\"retired\"}")
        .await?;
    assert_eq!(kept.len(), 1);

    // With --delete-series its series go too.
    let mut scrap = Agent::start(
        &collector.grpc_url(),
        "scrap",
        &dir.path().join("scrap"),
        "1s",
    );
    collector
        .wait_for_metrics(Duration::from_secs(30), |t| t.contains("node=\"scrap\""))
        .await?;
    scrap.process.kill9();
    // The stream closes once the collector notices the dead connection.
    let deadline = Instant::now() + Duration::from_secs(30);
    let deleted = loop {
        let out = Command::new(bin_path("hcmon"))
            .args(["--url", &url, "forget", "scrap", "--delete-series"])
            .env("HCMON_DATA_DIR", &collector.data_dir)
            .output()?;
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(deleted.contains("deleted"), "{deleted}");
    assert!(collector.export("{node=\"scrap\"}").await?.is_empty());
    assert_eq!(
        collector
            .export("hcmon_agent_samples_total{node=\"retired\"}")
            .await?
            .len(),
        1,
        "another node's series are untouched"
    );
    // A node already forgotten (series kept) can still have its series deleted.
    let late = Command::new(bin_path("hcmon"))
        .args(["--url", &url, "forget", "retired", "--delete-series"])
        .env("HCMON_DATA_DIR", &collector.data_dir)
        .output()?;
    assert!(
        late.status.success(),
        "{}",
        String::from_utf8_lossy(&late.stderr)
    );
    assert!(collector.export("{node=\"retired\"}").await?.is_empty());

    let unknown = forget("never-seen")?;
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no node named"));
    Ok(())
}

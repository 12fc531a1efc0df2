//! A node's multivariate model raising an alert, as a user sees it: a collector (the real
//! binary) trains its node model on hours of ordinary minutes, the newest minute is busy yet
//! silent on the network, and the shipped `NodeAnomaly` rule fires in `/api/v1/alerts` with each
//! feature's value and share of the anomaly, with either model `method`.

use hcmon_tests::Collector;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Quick training on the written history; node-down alerts off (the node is remote-written).
fn config(method: &str) -> String {
    format!(
        "[analytics.forest]\nretrain_every = \"1s\"\nmin_training_samples = 300\nseed = 7\n\
         method = \"{method}\"\n\n[alerting]\ntick = \"50ms\"\n\n[alerting.missing_data]\n\
         agents = false\n"
    )
}

/// Waits for a firing `NodeAnomaly` alert on nas.
async fn node_alert(collector: &Collector) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = collector.get_json("/api/v1/alerts", &[]).await?;
        let found = listed["data"]["alerts"].as_array().and_then(|alerts| {
            alerts
                .iter()
                .find(|a| {
                    a["labels"]["alertname"] == "NodeAnomaly"
                        && a["labels"]["node"] == "nas"
                        && a["hcmonState"] == "firing"
                })
                .cloned()
        });
        if let Some(alert) = found {
            return Ok(alert);
        }
        anyhow::ensure!(Instant::now() < deadline, "no NodeAnomaly alert: {listed}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The alert as either model raises it: the busy CPU and the silent network leading, each
/// feature with its value and share, and the model named.
async fn fires_with_feature_shares(method: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start_with_config(&dir.path().join("collector"), &config(method))?;
    let last_minute = hcmon_tests::write_busy_silent_node(&collector).await?;
    let alert = node_alert(&collector).await?;
    assert_eq!(alert["labels"]["severity"], "warning", "{alert}");
    assert_eq!(alert["evidence"]["threshold"], 0.7, "{alert}");
    let details: Vec<&str> = alert["evidence"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    // The combination is what is unusual: the two features that broke it lead, each with its
    // value and share.
    let mut top: Vec<&str> = details[..2]
        .iter()
        .map(|d| d.split('=').next().unwrap_or(d))
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["node_cpu_usage_ratio", "node_network_receive_bytes_total"],
        "{alert}"
    );
    assert!(details[..3].iter().all(|d| d.ends_with(" %)")), "{alert}");
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("node_cpu_usage_ratio=0.75 (")),
        "{alert}"
    );
    assert!(
        details
            .last()
            .unwrap()
            .starts_with(&format!("{method} model trained on ")),
        "{alert}"
    );
    let summary = alert["annotations"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("node nas is unlike its usual self: score ")
            && summary.contains("node_network_receive_bytes_total=1000 ("),
        "{summary}"
    );
    let verdicts = collector.get_json("/api/v1/node_anomalies", &[]).await?;
    let verdict = &verdicts["data"][0];
    assert_eq!(verdict["method"], method, "{verdicts}");
    assert_eq!(
        verdict["minute"].as_f64(),
        Some(last_minute as f64 / 1000.0),
        "{verdicts}"
    );
    Ok(())
}

#[tokio::test]
async fn an_isolation_forest_verdict_raises_node_anomaly() -> anyhow::Result<()> {
    fires_with_feature_shares("isolation_forest").await
}

#[tokio::test]
async fn a_one_class_svm_verdict_raises_node_anomaly() -> anyhow::Result<()> {
    fires_with_feature_shares("one_class_svm").await
}

//! Prometheus rule files end to end: the collector binary started with `[alerting] rule_files`,
//! samples written over remote write, and the alerts seen firing in `/api/v1/alerts` and
//! listed under the file's group in `/api/v1/rules`. Also: a bad rule file stops the start
//! with a message naming the file, group and rule, and the shipped rule file passes
//! `promtool check rules`.

use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::Collector;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

const RULES: &str = r#"
groups:
  - name: edge-hosts
    interval: 1s
    rules:
      - alert: EdgeNodeDown
        expr: up{job="edge"} == 0
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.node }} is down"
      - alert: EdgeErrorsHigh
        expr: rate(edge_errors_total[1m]) > 1
        for: 1s
        labels:
          severity: warning
          team: "{{ $labels.node }}-ops"
        annotations:
          description: "{{ $labels.node }} errs {{ printf \"%.0f\" $value }}/s"
"#;

fn series(labels: &[(&str, &str)], samples: Vec<Sample>) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(name, value)| Label {
                name: (*name).into(),
                value: (*value).into(),
            })
            .collect(),
        samples,
    }
}

/// The last two minutes, every 10 s: `up` of edge1 (down) and edge2 (up), and edge1's error
/// counter rising 5 per second.
fn samples() -> WriteRequest {
    let now = (hcmon_tests::now_s() * 1000.0) as i64;
    let at = |f: &dyn Fn(i64) -> f64| -> Vec<Sample> {
        (0..=12)
            .map(|i| Sample {
                timestamp: now - 120_000 + i * 10_000,
                value: f(i),
            })
            .collect()
    };
    WriteRequest {
        timeseries: vec![
            series(
                &[("__name__", "up"), ("job", "edge"), ("node", "edge1")],
                at(&|_| 0.0),
            ),
            series(
                &[("__name__", "up"), ("job", "edge"), ("node", "edge2")],
                at(&|_| 1.0),
            ),
            series(
                &[("__name__", "edge_errors_total"), ("node", "edge1")],
                at(&|i| (i * 50) as f64),
            ),
        ],
    }
}

/// Polls `/api/v1/alerts` until `alertname` is firing.
async fn wait_firing(collector: &Collector, alertname: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let body: Value = serde_json::from_str(&collector.get("/api/v1/alerts").await?)?;
        let alerts = body["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(alert) = alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == alertname && a["state"] == "firing")
        {
            return Ok(alert.clone());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{alertname} never fired: {alerts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn rule_file_alerts_fire_and_are_listed_under_their_group() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir(&rules_dir)?;
    let file = rules_dir.join("edge.rules.yml");
    std::fs::write(&file, RULES)?;
    let toml = format!(
        "[alerting]\nrule_files = [{:?}]\n",
        format!("{}/*.rules.yml", rules_dir.display())
    );
    let collector = Collector::start_with_config(&dir.path().join("data"), &toml)?;
    let (status, body) =
        hcmon_tests::remote_write(&collector.client()?, collector.http, &samples()).await?;
    anyhow::ensure!(status == 204, "remote write: {status} {body}");

    let down = wait_firing(&collector, "EdgeNodeDown").await?;
    assert_eq!(down["labels"]["node"], "edge1");
    assert_eq!(down["labels"]["job"], "edge");
    assert_eq!(down["labels"]["severity"], "critical");
    assert!(down["labels"].get("__name__").is_none(), "{down}");
    assert_eq!(down["annotations"]["summary"], "edge1 is down");
    let errors = wait_firing(&collector, "EdgeErrorsHigh").await?;
    assert_eq!(errors["labels"]["team"], "edge1-ops");
    assert_eq!(errors["labels"]["severity"], "warning");
    assert_eq!(errors["annotations"]["description"], "edge1 errs 5/s");
    let body: Value = serde_json::from_str(&collector.get("/api/v1/alerts").await?)?;
    let down_nodes: Vec<&Value> = body["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["alertname"] == "EdgeNodeDown")
        .map(|a| &a["labels"]["node"])
        .collect();
    assert_eq!(down_nodes, ["edge1"], "edge2 is up");

    let rules: Value = serde_json::from_str(&collector.get("/api/v1/rules").await?)?;
    let groups = rules["data"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let edge = groups
        .iter()
        .find(|g| g["name"] == "edge-hosts")
        .unwrap_or_else(|| panic!("no edge-hosts group: {groups:#?}"));
    assert_eq!(edge["file"], file.display().to_string());
    assert_eq!(edge["interval"], 1.0);
    let rule = &edge["rules"][0];
    assert_eq!(rule["name"], "EdgeNodeDown");
    assert_eq!(rule["query"], "up{job=\"edge\"} == 0");
    assert_eq!(rule["state"], "firing");
    assert_eq!(rule["labels"]["severity"], "critical");
    assert_eq!(rule["annotations"]["summary"], "{{ $labels.node }} is down");
    assert_eq!(rule["alerts"][0]["labels"]["node"], "edge1");
    assert_eq!(edge["rules"][1]["name"], "EdgeErrorsHigh");
    assert_eq!(edge["rules"][1]["duration"], 1.0);
    let only: Value = serde_json::from_str(
        &collector
            .get("/api/v1/rules?rule_group[]=edge-hosts&rule_name[]=EdgeErrorsHigh")
            .await?,
    )?;
    assert_eq!(only["data"]["groups"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        only["data"]["groups"][0]["rules"].as_array().map(Vec::len),
        Some(1)
    );
    Ok(())
}

#[test]
fn a_bad_rule_file_stops_the_start_naming_file_group_and_rule() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bad.yml");
    std::fs::write(
        &file,
        "groups:\n  - name: edge\n    rules:\n      - alert: Fine\n        expr: up == 0\n      - alert: Broken\n        expr: rate(up[5m]\n",
    )?;
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting]\nrule_files = [{:?}]\n",
            file.display().to_string()
        ),
    )?;
    let output = Command::new(hcmon_tests::bin_path("hcmon-collector"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("alerting.rule_files")
            && stderr.contains("bad.yml")
            && stderr.contains("groups[0] \"edge\", rules[1] \"Broken\": expr:"),
        "{stderr}"
    );
    Ok(())
}

/// The shipped rule file is valid Prometheus: Prometheus could load it as it is.
#[test]
fn the_shipped_rule_file_passes_promtool() -> anyhow::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/rules");
    let files: Vec<PathBuf> = std::fs::read_dir(&path)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    assert!(!files.is_empty(), "no rule file in {}", path.display());
    for file in files {
        let output = Command::new("promtool")
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .map_err(|e| {
                anyhow::anyhow!("promtool is required (Debian package `prometheus`): {e}")
            })?;
        anyhow::ensure!(
            output.status.success(),
            "promtool check rules {}:\n{}{}",
            file.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

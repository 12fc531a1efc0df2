//! The engines read history from a remote Prometheus-compatible query API before the
//! collector's own oldest sample: a collector that has held a series for two minutes fits a
//! trend, counts an SLO, fires an alert rule and trains a node model over the days that
//! Debian's VictoriaMetrics, started on loopback, holds.

use hcmon_tests::node::ScriptedNode;
use hcmon_tests::{Collector, VictoriaMetrics, now_ms};
use serde_json::Value;
use std::time::Duration;

const HOUR_MS: i64 = 3_600_000;
const ANALYTICS_OFF: &str = "[analytics]\nenabled = false\n";

/// Debian's VictoriaMetrics, and a collector reading its history from it, with `config` more.
fn start_pair(dir: &std::path::Path, config: &str) -> anyhow::Result<(VictoriaMetrics, Collector)> {
    let vm = VictoriaMetrics::start(&dir.join("vm"), None, &[])?;
    let toml = format!("{config}\n[history]\nremote_url = \"{}\"\n", vm.url(""));
    let collector = Collector::start_with_config(&dir.join("data"), &toml)?;
    Ok((vm, collector))
}

/// The labels (without the name) of the one series `selector` exports, as `k="v",…`: the same
/// series in VictoriaMetrics.
async fn labels_of(collector: &Collector, selector: &str) -> anyhow::Result<String> {
    let exported = collector.export(selector).await?;
    anyhow::ensure!(exported.len() == 1, "one series: {exported:?}");
    Ok(exported[0]["metric"]
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("no labels in {exported:?}"))?
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(","))
}

/// Imports Prometheus text `lines` (millisecond timestamps) into VictoriaMetrics, searchable.
async fn import(vm: &VictoriaMetrics, lines: String) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let imported = http
        .post(vm.url("/api/v1/import/prometheus"))
        .body(lines)
        .send()
        .await?;
    anyhow::ensure!(
        imported.status().is_success(),
        "import: {}",
        imported.status()
    );
    http.get(vm.url("/internal/force_flush")).send().await?;
    Ok(())
}

/// What `find` picks from the collector's answer at `path`, asked until it picks something
/// (at most 30 s).
async fn first_within_30s(
    collector: &Collector,
    path: &str,
    find: impl Fn(&Value) -> Option<Value>,
) -> anyhow::Result<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = collector.get_json(path, &[]).await?;
        if let Some(found) = find(&answer) {
            return Ok(found);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "nothing found at {path} within 30 s: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trend_reaches_back_into_the_remote_history() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut vm, collector) = start_pair(dir.path(), ANALYTICS_OFF)?;

    let now = now_ms();
    let mut node = ScriptedNode::connect(&collector.grpc_url(), "hist").await?;
    for (ago_min, value) in [(2, 50.0), (1, 50.02), (0, 50.03)] {
        node.send(now - ago_min * 60_000, &[("disk_used_percent", &[], value)])
            .await?;
    }
    let labels = labels_of(&collector, r#"disk_used_percent{node="hist"}"#).await?;

    // VictoriaMetrics holds the two days before: one sample an hour, rising by one an hour.
    let first_local = now - 2 * 60_000;
    let lines: String = (1..=48)
        .map(|h| {
            let at = first_local - h * HOUR_MS;
            format!("disk_used_percent{{{labels}}} {} {at}\n", 50 - h)
        })
        .collect();
    import(&vm, lines).await?;

    let client = collector.client()?;
    let trend_url = format!("http://{}/api/v1/trend", collector.http);
    let trend = |window: &'static str| {
        let request = client
            .get(&trend_url)
            .query(&[
                ("match[]", r#"disk_used_percent{node="hist"}"#),
                ("window", window),
            ])
            .timeout(Duration::from_secs(60));
        async move { anyhow::Ok(request.send().await?) }
    };
    let fitted = |answer: reqwest::Response| async move {
        anyhow::ensure!(answer.status().is_success(), "{}", answer.status());
        let body: Value = serde_json::from_str(&answer.text().await?)?;
        anyhow::Ok(body["data"][0].clone())
    };
    // Over the last 150 s the collector holds the whole window: its three samples are fitted.
    let recent = fitted(trend("150s").await?).await?;
    assert_eq!(recent["samples"], 3, "{recent}");
    let two_days = fitted(trend("3d").await?).await?;
    assert_eq!(
        two_days["samples"], 51,
        "48 remote and 3 local samples: {two_days}"
    );
    let slope_per_hour = two_days["slope_per_second"].as_f64().unwrap_or(0.0) * 3600.0;
    assert!(
        (0.9..1.1).contains(&slope_per_hour),
        "the remote history's rise of one an hour dominates the fit: {slope_per_hour}"
    );

    // The remote gone: a clear 503 naming it, not a silently shorter trend. (The window
    // reaches further back than the answer kept from the last one.)
    vm.process.kill9();
    let answer = trend("4d").await?;
    assert_eq!(answer.status(), 503);
    let text = answer.text().await?;
    assert!(text.contains("remote history"), "{text}");
    Ok(())
}

/// SLOs (and the reports built on them) read the remote history too: a collector that has
/// probed a shop for two minutes reports the outage of yesterday that VictoriaMetrics holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_slo_counts_an_outage_only_the_remote_history_holds() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut vm, collector) = start_pair(dir.path(), ANALYTICS_OFF)?;

    let now = now_ms();
    let mut node = ScriptedNode::connect(&collector.grpc_url(), "edge").await?;
    for ago_min in [2, 1, 0] {
        node.send(
            now - ago_min * 60_000,
            &[("http_check_up", &[("name", "shop")], 1.0)],
        )
        .await?;
    }
    let labels = labels_of(&collector, r#"http_check_up{name="shop"}"#).await?;

    // The day before: a check a minute, down for the hour from 24 h before the first local one.
    let first_local = now - 2 * 60_000;
    let outage = (first_local - 24 * HOUR_MS)..(first_local - 23 * HOUR_MS);
    let lines: String = (1..=2 * 24 * 60)
        .map(|m| {
            let at = first_local - m * 60_000;
            let up = u8::from(!outage.contains(&at));
            format!("http_check_up{{{labels}}} {up} {at}\n")
        })
        .collect();
    import(&vm, lines).await?;

    let client = collector.client()?;
    let url = format!(
        "http://{}/api/v1/slos/probe:shop:availability",
        collector.http
    );
    let figures = |from_ms: i64| {
        let request = client
            .get(&url)
            .query(&[
                ("from", format!("{:.3}", from_ms as f64 / 1000.0)),
                ("to", format!("{:.3}", (now + 1) as f64 / 1000.0)),
            ])
            .timeout(Duration::from_secs(60));
        async move { anyhow::Ok(request.send().await?) }
    };
    let tally = |answer: reqwest::Response| async move {
        anyhow::ensure!(answer.status().is_success(), "{}", answer.status());
        let body: Value = serde_json::from_str(&answer.text().await?)?;
        let tally = &body["data"]["tally"];
        anyhow::Ok((
            tally["good"].as_f64().unwrap_or(f64::NAN),
            tally["bad"].as_f64().unwrap_or(f64::NAN),
        ))
    };
    // The last 150 s: the collector's own three checks.
    let (good, bad) = tally(figures(now - 150_000).await?).await?;
    assert_eq!((good, bad), (3.0, 0.0));
    // Two days: the outage's 60 failed checks, from the remote history.
    let (good, bad) = tally(figures(first_local - 2 * 24 * HOUR_MS).await?).await?;
    assert_eq!(bad, 60.0, "the remote outage counts");
    assert_eq!(good, (2 * 24 * 60 - 60 + 3) as f64, "every other check");

    vm.process.kill9();
    let answer = figures(first_local - 3 * 24 * HOUR_MS).await?;
    assert_eq!(answer.status(), 503);
    let text = answer.text().await?;
    assert!(text.contains("remote history"), "{text}");
    Ok(())
}

/// Rule files read the remote history too: a disk that filled over the two days before this
/// collector existed fires a rule over `delta(...[2d])`, which the collector's own two minutes
/// of it never would.
/// The labels a scripted node's series get here.
const STORE: &str = r#"instance="store",job="node",node="store""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_over_two_days_fires_on_the_remote_history() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let rules = dir.path().join("capacity.rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: capacity\n  interval: 1s\n  rules:\n  - alert: DiskFilledFast\n    \
         expr: delta(disk_used_percent[2d]) > 20\n    labels:\n      severity: warning\n",
    )?;
    let config = format!(
        "{ANALYTICS_OFF}\n[alerting]\nrule_files = [{:?}]\n",
        rules.display().to_string()
    );
    let (vm, collector) = start_pair(dir.path(), &config)?;

    // VictoriaMetrics holds the two days before: from 40 % to 89 %, one sample an hour. (Before
    // the series exists here: the collector keeps what the remote answered for a few minutes.)
    let now = now_ms();
    let first_local = now - 2 * 60_000;
    let lines: String = (1..=47)
        .map(|h| {
            let at = first_local - h * HOUR_MS;
            let value = 90.0 - h as f64 * 50.0 / 47.0;
            format!("disk_used_percent{{{STORE}}} {value} {at}\n")
        })
        .collect();
    import(&vm, lines).await?;

    let mut node = ScriptedNode::connect(&collector.grpc_url(), "store").await?;
    for (ago_min, value) in [(2, 90.0), (1, 90.01), (0, 90.02)] {
        node.send(now - ago_min * 60_000, &[("disk_used_percent", &[], value)])
            .await?;
    }
    let labels = labels_of(&collector, r#"disk_used_percent{node="store"}"#).await?;
    assert_eq!(labels, STORE, "the same series in both");

    let alert = first_within_30s(&collector, "/api/v1/alerts", |alerts| {
        alerts["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["labels"]["alertname"] == "DiskFilledFast" && a["state"] == "firing")
            .cloned()
    })
    .await?;
    assert_eq!(alert["labels"]["node"], "store", "{alert}");
    let rise: f64 = alert["value"].as_str().unwrap_or("nan").parse()?;
    assert!(rise > 45.0, "the two days' rise, extrapolated: {alert}");

    // The query API answers from this collector's own store: there the disk barely moved.
    let local = collector
        .get_json(
            "/api/v1/query",
            &[(
                "query",
                r#"delta(disk_used_percent{node="store"}[2d])"#.to_owned(),
            )],
        )
        .await?;
    let local_rise: f64 = local["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or("nan")
        .parse()?;
    assert!(local_rise < 1.0, "{local}");
    Ok(())
}

/// The node models train on the remote history: a collector that has seen a node for three
/// minutes trains its model on the 400 minutes VictoriaMetrics holds from before.
const LAB: &str = r#"instance="lab",job="node",node="lab""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_model_trains_on_the_remote_history() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = "[analytics.forest]\nretrain_every = \"1s\"\nmin_training_samples = 300\n";
    let (vm, collector) = start_pair(dir.path(), config)?;

    let now = now_ms();
    let minute = now - now % 60_000;
    let first_local = minute - 2 * 60_000 + 30_000;
    let wave = |m: i64| 0.4 + 0.2 * ((m % 17) as f64 / 17.0);
    let lines: String = (1..=400)
        .flat_map(|m| {
            let at = first_local - m * 60_000;
            [
                format!("node_cpu_usage_ratio{{{LAB}}} {} {at}\n", wave(m)),
                format!("node_memory_used_ratio{{{LAB}}} {} {at}\n", 0.5),
            ]
        })
        .collect();
    import(&vm, lines).await?;

    let mut node = ScriptedNode::connect(&collector.grpc_url(), "lab").await?;
    for m in 0..3 {
        let at = first_local + m * 60_000;
        node.send(
            at,
            &[
                ("node_cpu_usage_ratio", &[], wave(m)),
                ("node_memory_used_ratio", &[], 0.5),
            ],
        )
        .await?;
    }

    let verdict = first_within_30s(&collector, "/api/v1/node_anomalies", |listed| {
        listed["data"].as_array().and_then(|a| a.first()).cloned()
    })
    .await?;
    assert_eq!(verdict["node"], "lab");
    let rows = verdict["training_rows"].as_u64().unwrap_or(0);
    assert!(
        rows >= 400,
        "trained on the remote minutes and the local ones: {verdict}"
    );
    Ok(())
}

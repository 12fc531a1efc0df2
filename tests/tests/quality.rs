//! Data quality as a person reads it: four nodes streaming for half an hour on the test's
//! clock, one healthy, one whose clock runs 4.2 s ahead, one missing every fifth sample, one
//! sending impossible ratios and a label outside its schema. Each scores as it should in
//! `/api/v1/quality`, with the recommendation naming the cause, in `/metrics` and in the stored
//! history PromQL reads.

use hcmon_tests::clocked::ClockedCollector;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[quality]
window = "1h"
interval = "1s"

# The shipped rule, without its 10 minutes of patience.
[[alerting.quality_rules]]
name = "DataQualityLow"
for = "0s"
"#;

const STEP: i64 = 10_000;

/// The node named `node` in `/api/v1/quality`, once an evaluation has seen `samples` of it.
async fn node_report(rig: &ClockedCollector, node: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = rig.get(&format!("/api/v1/quality?node={node}")).await?;
        if let Some(found) = answer["data"]["nodes"].as_array().and_then(|n| n.first())
            && found["received"].as_u64().unwrap_or(0) > 100
            && answer["data"]["evaluated"].as_f64().unwrap_or(0.0) * 1000.0 >= rig.now() as f64
        {
            return Ok(found.clone());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no evaluation of {node}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn score(report: &Value, dimension: &str) -> f64 {
    report["scores"][dimension].as_f64().unwrap_or(f64::NAN)
}

fn failing(report: &Value) -> Vec<String> {
    report["failing"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn recommendations(report: &Value) -> String {
    report["recommendations"].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_node_scores_for_what_is_wrong_with_its_data_and_says_why() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let start = {
        let now = hcmon_tests::now_s() as i64 * 1000;
        now - now % STEP
    };
    let clock = Arc::new(AtomicI64::new(start));
    let rig = ClockedCollector::start(&dir.path().join("data"), CONFIG, clock.clone()).await?;
    let mut good = rig.node("good").await?;
    let mut nas = rig.node("nas").await?;
    let mut gappy = rig.node("gappy").await?;
    let mut bad = rig.node("bad").await?;
    let cpu0: &[(&str, &str)] = &[("cpu", "0")];
    for i in 0..180 {
        let t = start + i * STEP;
        // Batches arrive half a second after their timestamp.
        clock.store(t + 500, Ordering::SeqCst);
        let healthy = [
            ("node_cpu_usage_ratio", &[][..], 0.25),
            ("node_cpu_core_usage_ratio", cpu0, 0.3),
            ("node_memory_MemAvailable_bytes", &[][..], 6e9),
            ("node_memory_MemTotal_bytes", &[][..], 8e9),
            ("node_memory_used_ratio", &[][..], 0.25),
        ];
        good.send(t, &healthy).await?;
        // Its clock runs 4.2 s ahead of the collector's.
        nas.send(t + 500 + 4_200, &healthy).await?;
        if i % 5 != 4 {
            gappy.send(t, &healthy).await?;
        }
        let broken = [
            (
                "node_cpu_usage_ratio",
                &[][..],
                if i % 2 == 0 { 1.5 } else { 0.5 },
            ),
            ("node_cpu_core_usage_ratio", &[("cpu", "cpu0")][..], 0.3),
            ("node_memory_MemAvailable_bytes", &[][..], 9e9),
            ("node_memory_MemTotal_bytes", &[][..], 8e9),
            (
                "node_filesystem_avail_bytes",
                &[("mountpoint", "/srv")][..],
                30.0,
            ),
            (
                "node_filesystem_size_bytes",
                &[("mountpoint", "/srv")][..],
                100.0,
            ),
            (
                "node_filesystem_used_ratio",
                &[("mountpoint", "/srv")][..],
                0.2,
            ),
        ];
        bad.send(t, &broken).await?;
    }

    let good = node_report(&rig, "good").await?;
    assert!(good["overall"].as_f64().unwrap() > 0.99, "{good}");
    assert!(failing(&good).is_empty(), "{good}");
    assert_eq!(good["recommendations"], serde_json::json!([]), "{good}");
    assert_eq!(good["clock_offset_ms"], Value::Null, "{good}");

    let nas = node_report(&rig, "nas").await?;
    assert_eq!(nas["clock_offset_ms"], 4_200, "{nas}");
    assert!(failing(&nas).contains(&"accuracy".to_owned()), "{nas}");
    assert!(
        recommendations(&nas).contains("node nas: clock 4.2 s ahead of the collector — enable NTP"),
        "{nas}"
    );

    let gappy = node_report(&rig, "gappy").await?;
    let completeness = score(&gappy, "completeness");
    assert!((0.75..0.85).contains(&completeness), "{gappy}");
    assert_eq!(failing(&gappy), vec!["completeness".to_owned()], "{gappy}");
    assert!(!gappy["gaps"].as_array().unwrap().is_empty(), "{gappy}");
    assert!(
        recommendations(&gappy).contains("% of expected samples missing since"),
        "{gappy}"
    );

    let bad = node_report(&rig, "bad").await?;
    let failed = failing(&bad);
    for dimension in ["consistency", "accuracy", "validity"] {
        assert!(failed.contains(&dimension.to_owned()), "{dimension}: {bad}");
    }
    let text = recommendations(&bad);
    assert!(text.contains("node_cpu_usage_ratio"), "{bad}");
    assert!(
        text.contains("node_filesystem_used_ratio (0.2) is not 1 − node_filesystem_avail_bytes ÷ node_filesystem_size_bytes (0.7000) on /srv"),
        "{bad}"
    );
    let contradict = bad["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "values_contradict")
        .unwrap();
    assert_eq!(
        (contradict["failed"].as_u64(), contradict["of"].as_u64()),
        (Some(2), Some(3)),
        "{bad}"
    );
    assert!(text.contains("label value outside its schema"), "{bad}");
    let worst = &bad["worst"][0];
    assert!(worst["overall"].as_f64().unwrap() < 0.9, "{bad}");

    // Per series, with the checks' effects.
    let series = rig
        .get("/api/v1/quality/series?match[]=node_cpu_usage_ratio{node=\"bad\"}")
        .await?;
    let ratio = &series["data"][0];
    assert!((score(ratio, "accuracy") - 0.5).abs() < 0.01, "{series}");

    // /metrics shows the newest scores; PromQL the stored history.
    let metrics = rig.text("/metrics").await?;
    assert!(
        metrics.contains("hcmon_data_quality_score{node=\"gappy\",dimension=\"completeness\"} 0.8"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("data_quality"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        metrics.contains(
            "hcmon_data_quality_series_score{node=\"bad\",series=\"node_cpu_usage_ratio{"
        )
    );
    // What the tracker holds is sized: four nodes' series, a few hundred bytes each.
    let gauge = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(f64::NAN)
    };
    let series = gauge("hcmon_collector_quality_series ");
    assert!((20.0..=40.0).contains(&series), "{series}");
    let bytes = gauge("hcmon_collector_state_bytes{engine=\"quality\"}");
    assert!(
        bytes > series * 100.0 && bytes < series * 1_000.0,
        "{bytes} bytes for {series} series"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let query = format!(
            "/api/v1/query?query=hcmon_data_quality_score{{node=\"good\",dimension=\"overall\"}}&time={}",
            rig.now() as f64 / 1000.0
        );
        let answer = rig.get(&query).await?;
        if let Some(value) = answer["data"]["result"][0]["value"][1].as_str() {
            assert!(value.parse::<f64>()? > 0.99, "{answer}");
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "no stored score: {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A quality drop is an alert, naming the dimension and the cause.
    let alert = rig.wait_alert("DataQualityLow", "gappy", "firing").await?;
    assert_eq!(alert["labels"]["dimension"], "completeness", "{alert}");
    let summary = alert["annotations"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("node gappy: data completeness 0.8")
            && summary.contains("% of expected samples missing"),
        "{alert}"
    );
    let alerts = rig.alerts().await?;
    assert!(
        !alerts
            .iter()
            .any(|a| a["labels"]["node"] == "good" && a["labels"]["alertname"] == "DataQualityLow"),
        "the healthy node has no quality alert: {alerts:?}"
    );

    // Anomaly verdicts on the gappy node's series are low-confidence; the healthy node's are not.
    let verdicts = rig
        .get("/api/v1/anomalies?match[]={__name__=~\"node_.*\"}")
        .await?;
    let low = |node: &str| -> Vec<bool> {
        verdicts["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["metric"]["node"] == node)
            .map(|v| v["low_confidence"].as_bool().unwrap())
            .collect()
    };
    assert!(
        !low("gappy").is_empty() && low("gappy").iter().all(|l| *l),
        "{verdicts}"
    );
    assert!(
        !low("good").is_empty() && low("good").iter().all(|l| !l),
        "{verdicts}"
    );
    rig.stop().await
}

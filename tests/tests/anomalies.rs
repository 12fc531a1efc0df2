//! Live anomaly detection as a user sees it: a series arrives, a spike in it shows up in
//! `/api/v1/anomalies` with its evidence and in `/metrics` as `hcmon_anomaly_score`.

use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::{Collector, now_s};
use prost::Message;

async fn write(collector: &Collector, samples: Vec<Sample>) -> anyhow::Result<()> {
    let request = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "cache_latency_seconds".into(),
                },
                Label {
                    name: "node".into(),
                    value: "nas".into(),
                },
            ],
            samples,
        }],
    };
    let body = snap::raw::Encoder::new().compress_vec(&request.encode_to_vec())?;
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v1/write", collector.http))
        .header("Content-Encoding", "snappy")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(response.status() == 204, "{}", response.text().await?);
    Ok(())
}

#[tokio::test]
async fn a_spike_is_listed_with_evidence_and_exposed_as_a_score() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let now = (now_s() * 1000.0) as i64;
    let start = now - 200 * 10_000;
    // 20 samples: still learning.
    let steady = |i: i64| 0.002 + (i % 4) as f64 * 0.0001;
    let first: Vec<Sample> = (0..20)
        .map(|i| Sample {
            value: steady(i),
            timestamp: start + i * 10_000,
        })
        .collect();
    write(&collector, first).await?;
    let listed = collector.get_json("/api/v1/anomalies", &[]).await?;
    let entry = &listed["data"][0];
    assert_eq!(entry["learning"], true, "{listed}");
    assert_eq!(entry["is_anomaly"], false);

    let rest: Vec<Sample> = (20..150)
        .map(|i| Sample {
            value: steady(i),
            timestamp: start + i * 10_000,
        })
        .chain([Sample {
            value: 0.250,
            timestamp: start + 150 * 10_000,
        }])
        .collect();
    write(&collector, rest).await?;
    let anomalous = collector
        .get_json("/api/v1/anomalies", &[("anomalous", "true".to_owned())])
        .await?;
    let entry = &anomalous["data"][0];
    assert_eq!(
        entry["metric"]["__name__"], "cache_latency_seconds",
        "{anomalous}"
    );
    assert_eq!(entry["is_anomaly"], true);
    assert_eq!(entry["severity"], "critical");
    assert_eq!(entry["value"], 0.25);
    let detectors = entry["detectors"].as_array().unwrap();
    let zscore = detectors
        .iter()
        .find(|d| d["detector"] == "zscore")
        .expect("the z-score detector fired");
    let expected_high = zscore["expected"][1].as_f64().unwrap();
    assert!(expected_high < 0.01, "expected range {zscore}");

    let exposition = collector.get("/metrics").await?;
    let line = exposition
        .lines()
        .find(|l| l.starts_with("hcmon_anomaly_score{metric_name=\"cache_latency_seconds\""))
        .expect("score exposed");
    let score: f64 = line.rsplit(' ').next().unwrap().parse()?;
    assert!(score > 0.9, "{line}");
    assert!(
        exposition.contains(
            "hcmon_anomaly_learning{metric_name=\"cache_latency_seconds\",node=\"nas\"} 0"
        )
    );

    // A selector narrows the list; a bad one is a clear error.
    let none = collector
        .get_json(
            "/api/v1/anomalies",
            &[("match[]", "other_metric".to_owned())],
        )
        .await?;
    assert_eq!(none["data"].as_array().map(Vec::len), Some(0));
    let bad = collector
        .get_json("/api/v1/anomalies", &[("match[]", "{".to_owned())])
        .await;
    assert!(bad.is_err());
    Ok(())
}

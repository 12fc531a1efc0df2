//! The analytics as a user sees them: live anomaly verdicts in `/api/v1/anomalies` and
//! `/metrics`, a filling disk's time to full in `/api/v1/trend`, the series that moved
//! first in `/api/v1/related`, and expensive analyses that neither stall the collector nor
//! outlive their time limit or their client.

use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::node::ScriptedNode;
use hcmon_tests::{Collector, now_s};

async fn write(collector: &Collector, samples: Vec<Sample>) -> anyhow::Result<()> {
    write_series(collector, "cache_latency_seconds", samples).await
}

async fn write_series(
    collector: &Collector,
    name: &str,
    samples: Vec<Sample>,
) -> anyhow::Result<()> {
    write_many(
        collector,
        vec![(name.to_owned(), "nas".to_owned(), samples)],
    )
    .await
}

/// One remote write of several series: (metric name, node, samples).
async fn write_many(
    collector: &Collector,
    series: Vec<(String, String, Vec<Sample>)>,
) -> anyhow::Result<()> {
    let timeseries = series
        .into_iter()
        .map(|(name, node, samples)| TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: name,
                },
                Label {
                    name: "node".into(),
                    value: node,
                },
            ],
            samples,
        })
        .collect();
    let request = WriteRequest { timeseries };
    let (status, body) =
        hcmon_tests::remote_write(&collector.client()?, collector.http, &request).await?;
    anyhow::ensure!(status == 204, "{body}");
    Ok(())
}

/// `/api/v1/anomalies` with `query`, once `ready` holds (the detectors run off the ack path).
async fn eventually(
    collector: &Collector,
    query: &[(&str, &str)],
    ready: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<serde_json::Value> {
    let query: Vec<(&str, String)> = query.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let answer = collector.get_json("/api/v1/anomalies", &query).await?;
        if ready(&answer) {
            return Ok(answer);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "never ready: {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
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
    let listed = eventually(&collector, &[], |v| {
        v["data"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await?;
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
    // Verdicts are computed off the ack path: wait for the worker.
    let anomalous = eventually(&collector, &[("anomalous", "true")], |v| {
        v["data"].as_array().is_some_and(|a| !a.is_empty())
    })
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
        .find(|d| d["detector"] == "level")
        .expect("the level detector fired");
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

#[tokio::test]
async fn trend_says_when_the_disk_is_full_and_related_finds_the_leader() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let now = (now_s() * 1000.0) as i64;
    let now = now - now % 10_000;
    let start = now - 1800 * 1000;
    // A disk filling at 1 MB/s with a little noise; 3.6 GB left at the newest sample.
    let mut seed = 7u64;
    let mut noise = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) as f64 / (1u64 << 31) as f64 - 0.5
    };
    let used: Vec<Sample> = (0..=180)
        .map(|i| Sample {
            value: 5e9 + 1e6 * (i * 10) as f64 + 2e5 * noise(),
            timestamp: start + i * 10_000,
        })
        .collect();
    let full = used.last().unwrap().value + 3.6e9;
    write_series(&collector, "node_filesystem_used_bytes", used).await?;
    let trend = collector
        .get_json(
            "/api/v1/trend",
            &[
                ("match[]", "node_filesystem_used_bytes".to_owned()),
                ("limit", full.to_string()),
                ("window", "30m".to_owned()),
            ],
        )
        .await?;
    let entry = &trend["data"][0];
    let seconds = entry["time_to_limit"]["seconds"]
        .as_f64()
        .expect("a crossing");
    assert!((3400.0..3800.0).contains(&seconds), "{trend}");
    assert!(entry["r2"].as_f64().unwrap() > 0.99);
    assert!((entry["slope_per_second"].as_f64().unwrap() - 1e6).abs() < 2e4);

    // Disk busy time leads cache latency by 40 s.
    let mut busy: Vec<f64> = (0..=180).map(|_| noise()).collect();
    // A burst of disk work 40 s before the newest latency sample: that sample is an anomaly.
    busy[176] += 20.0;
    let smooth: Vec<f64> = (0..busy.len())
        .map(|i| busy[i.saturating_sub(2)..=i].iter().sum::<f64>())
        .collect();
    let at = |i: usize| start + i as i64 * 10_000;
    write_series(
        &collector,
        "node_disk_io_time_seconds",
        (0..smooth.len())
            .map(|i| Sample {
                value: smooth[i],
                timestamp: at(i),
            })
            .collect(),
    )
    .await?;
    write_series(
        &collector,
        "redis_latency_seconds",
        (4..smooth.len())
            .map(|i| Sample {
                value: 0.002 + smooth[i - 4] * 0.001,
                timestamp: at(i),
            })
            .collect(),
    )
    .await?;
    let related = collector
        .get_json(
            "/api/v1/related",
            &[
                ("match[]", "redis_latency_seconds".to_owned()),
                ("time", (now as f64 / 1000.0).to_string()),
            ],
        )
        .await?;
    let first = &related["data"][0];
    assert!(
        first["series"]
            .as_str()
            .unwrap()
            .starts_with("node_disk_io_time_seconds"),
        "{related}"
    );
    assert_eq!(first["lag_seconds"], 40.0, "{related}");
    assert!(first["r"].as_f64().unwrap() > 0.95);
    assert!(
        first["description"]
            .as_str()
            .unwrap()
            .contains("40 s after"),
        "{related}"
    );
    // All pairs on the node: disk busy leads latency by 40 s; the filling disk is unrelated.
    let pairs = collector
        .get_json(
            "/api/v1/correlations",
            &[
                ("match[]", "{node=\"nas\"}".to_owned()),
                ("time", (now as f64 / 1000.0).to_string()),
            ],
        )
        .await?;
    let pair = &pairs["data"][0];
    assert!(
        pair["leader"]
            .as_str()
            .unwrap()
            .starts_with("node_disk_io_time_seconds"),
        "{pairs}"
    );
    assert!(
        pair["follower"]
            .as_str()
            .unwrap()
            .starts_with("redis_latency_seconds")
    );
    assert_eq!(pair["lag_seconds"], 40.0);

    // The anomaly carries the series that moved before it.
    let anomalies = eventually(
        &collector,
        &[("anomalous", "true"), ("related", "true")],
        |v| {
            v["data"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|e| e["metric"]["__name__"] == "redis_latency_seconds")
            })
        },
    )
    .await?;
    let latency = anomalies["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["metric"]["__name__"] == "redis_latency_seconds")
        .unwrap_or_else(|| panic!("latency spike not flagged: {anomalies}"));
    let cause = &latency["related"][0];
    assert!(
        cause["series"]
            .as_str()
            .unwrap()
            .starts_with("node_disk_io_time_seconds"),
        "{latency}"
    );
    assert_eq!(cause["lag_seconds"], 40.0, "{latency}");
    let ambiguous = collector
        .get_json(
            "/api/v1/related",
            &[("match[]", "{node=\"nas\"}".to_owned())],
        )
        .await;
    assert!(
        ambiguous.is_err(),
        "a selector of several series is refused"
    );
    Ok(())
}

/// Busy CPU with no network traffic, when the two always moved together: each value is
/// ordinary on its own, only the node's Isolation Forest sees the combination.
#[tokio::test]
async fn the_node_model_flags_an_unusual_combination() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start_with_config(
        &dir.path().join("collector"),
        "[analytics.forest]\nretrain_every = \"1s\"\nmin_training_samples = 300\nseed = 7\n",
    )?;
    let last_minute = hcmon_tests::write_busy_silent_node(&collector).await?;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let verdict = loop {
        let listed = collector.get_json("/api/v1/node_anomalies", &[]).await?;
        if let Some(v) = listed["data"].as_array().and_then(|a| a.first()).cloned()
            && v["minute"].as_f64() == Some(last_minute as f64 / 1000.0)
        {
            break v;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no verdict: {listed}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert_eq!(verdict["node"], "nas");
    assert_eq!(verdict["is_anomaly"], true, "{verdict}");
    assert!(verdict["training_rows"].as_u64().unwrap() >= 300);
    let top = verdict["features"][0]["feature"].as_str().unwrap();
    assert_eq!(top, "node_network_receive_bytes_total", "{verdict}");
    let exposition = collector.get("/metrics").await?;
    assert!(exposition.contains("hcmon_node_anomaly{node=\"nas\"} 1"));
    Ok(())
}

#[tokio::test]
async fn trend_finds_the_period_of_a_cycling_series() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let now = (now_s() * 1000.0) as i64;
    let start = now - now % 60_000 - 6 * 3_600_000;
    // A 1 h cycle (a cron job's load) sampled every minute for 6 h.
    let load: Vec<Sample> = (0..360)
        .map(|m| Sample {
            value: 1.0 + (m as f64 / 60.0 * std::f64::consts::TAU).sin(),
            timestamp: start + m * 60_000,
        })
        .collect();
    write_series(&collector, "node_load1", load).await?;
    let trend = collector
        .get_json(
            "/api/v1/trend",
            &[
                ("match[]", "node_load1".to_owned()),
                ("window", "7h".to_owned()),
                ("seasonal_step", "5m".to_owned()),
            ],
        )
        .await?;
    let seasonal = &trend["data"][0]["seasonal"];
    assert_eq!(seasonal["period_seconds"], 3600.0, "{trend}");
    let bad = collector
        .get_json(
            "/api/v1/trend",
            &[
                ("match[]", "node_load1".to_owned()),
                ("seasonal_step", "often".to_owned()),
            ],
        )
        .await;
    assert!(bad.is_err());
    Ok(())
}

/// A GET of the HTTP API answered with an error: (status, Prometheus error JSON).
async fn get_error(
    collector: &Collector,
    path: &str,
    query: &[(&str, &str)],
) -> anyhow::Result<(u16, serde_json::Value)> {
    let response = collector
        .client()?
        .get(format!("http://{}{path}", collector.http))
        .query(query)
        .send()
        .await?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await?;
    anyhow::ensure!(body["status"] == "error", "{path} succeeded: {body}");
    Ok((status, body))
}

/// The value of an unlabelled (or fully written out) series on `/metrics`, 0 when absent.
fn exposed(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// 200 series of six hours at one minute: with `seasonal_step=1s` each is resampled to 21,601
/// points, within the limit, and period detection over all of them takes far longer than the
/// analysis time limit, in any build.
async fn write_heavy_history(collector: &Collector) -> anyhow::Result<()> {
    let now = (now_s() * 1000.0) as i64;
    let start = now - now % 60_000 - 6 * 3_600_000;
    let series = (0..200)
        .map(|i| {
            let samples = (0..360)
                .map(|m| Sample {
                    value: (m as f64 / 60.0 * std::f64::consts::TAU).sin() + f64::from(i),
                    timestamp: start + m * 60_000,
                })
                .collect();
            ("load".to_owned(), format!("n{i}"), samples)
        })
        .collect();
    write_many(collector, series).await
}

const HEAVY_TREND: [(&str, &str); 3] = [
    ("match[]", "load"),
    ("window", "6h"),
    ("seasonal_step", "1s"),
];

/// Two analyses that cannot finish within the time limit: `/healthz`, `/metrics` and an agent's
/// batch are answered while they compute, and each analysis is stopped at the limit with an
/// answer that says what to ask for instead.
#[tokio::test(flavor = "multi_thread")]
async fn expensive_analyses_leave_ingest_and_health_answering() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    write_heavy_history(&collector).await?;
    let url = format!("http://{}/api/v1/trend", collector.http);
    let client = collector.client()?;
    let heavy: Vec<_> = (0..2)
        .map(|_| {
            let (url, client) = (url.clone(), client.clone());
            tokio::spawn(async move {
                let response = client
                    .get(url)
                    .query(&HEAVY_TREND)
                    .timeout(std::time::Duration::from_secs(300))
                    .send()
                    .await?;
                let status = response.status().as_u16();
                anyhow::Ok((status, response.json::<serde_json::Value>().await?))
            })
        })
        .collect();
    // `/metrics` answers while they compute, and shows them doing so.
    collector
        .wait_for_metrics(std::time::Duration::from_secs(120), |text| {
            exposed(text, "hcmon_collector_analyses_running") >= 1.0
        })
        .await?;
    let health = collector.get_json("/healthz", &[]).await?;
    assert_eq!(health["status"], "ok", "{health}");
    let mut node = ScriptedNode::connect(&collector.grpc_url(), "web1").await?;
    node.send((now_s() * 1000.0) as i64, &[("node_load1", &[], 0.5)])
        .await?;

    for answer in heavy {
        let (status, body) = answer.await??;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["errorType"], "timeout", "{body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message
                .starts_with("/api/v1/trend stopped at its time limit of 15s: select fewer series"),
            "{body}"
        );
    }
    // The node's batch was stored, not just acknowledged.
    let stored = collector.export("node_load1").await?;
    assert_eq!(stored.len(), 1, "{stored:?}");
    Ok(())
}

/// A client that gives up stops its analysis: the slot is free again long before the time
/// limit would have freed it, and the stop is counted as the client's.
#[tokio::test(flavor = "multi_thread")]
async fn an_analysis_stops_when_its_client_goes_away() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    write_heavy_history(&collector).await?;
    let url = format!("http://{}/api/v1/trend", collector.http);
    let client = collector.client()?;
    let abandoned = tokio::spawn(async move { client.get(url).query(&HEAVY_TREND).send().await });
    collector
        .wait_for_metrics(std::time::Duration::from_secs(120), |text| {
            exposed(text, "hcmon_collector_analyses_running") >= 1.0
        })
        .await?;
    // Dropping the request closes its connection.
    abandoned.abort();
    // `/metrics` gathers the gauge and the counter one after the other, so a scrape can catch
    // the slot freed before the stop is counted: wait for both.
    let text = collector
        .wait_for_metrics(std::time::Duration::from_secs(120), |text| {
            exposed(text, "hcmon_collector_analyses_running") == 0.0
                && exposed(
                    text,
                    "hcmon_collector_analyses_stopped_total{reason=\"client_gone\"}",
                ) + exposed(
                    text,
                    "hcmon_collector_analyses_stopped_total{reason=\"time_limit\"}",
                ) >= 1.0
        })
        .await?;
    assert_eq!(
        exposed(
            &text,
            "hcmon_collector_analyses_stopped_total{reason=\"client_gone\"}"
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        exposed(
            &text,
            "hcmon_collector_analyses_stopped_total{reason=\"time_limit\"}"
        ),
        0.0,
        "{text}"
    );
    Ok(())
}

/// Requests that could not fit their limits are refused before any work, saying which limit
/// and what to change.
#[tokio::test]
async fn analyses_over_their_limits_are_refused_with_the_reason() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    write_heavy_history(&collector).await?;
    let (status, body) = get_error(
        &collector,
        "/api/v1/trend",
        &[
            ("match[]", "load"),
            ("window", "1h"),
            ("seasonal_step", "0.001"),
        ],
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "invalid parameter \"seasonal_step\": seasonal_step=0.001 over window=1h gives up to \
         3,600,001 points per series; the limit is 25,000: raise seasonal_step or shorten window"
    );
    write_series(
        &collector,
        "other_load",
        vec![Sample {
            value: 1.0,
            timestamp: (now_s() * 1000.0) as i64,
        }],
    )
    .await?;
    let (status, body) = get_error(
        &collector,
        "/api/v1/trend",
        &[("match[]", "{__name__=~\".*load\"}")],
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "invalid parameter \"match[]\": selects 201 series; one request analyses at most 200: \
         narrow the selector"
    );
    let (status, body) = get_error(
        &collector,
        "/api/v1/correlations",
        &[("match[]", "load"), ("window", "30d")],
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "invalid parameter \"window\": window=30d gives 259,200 points per series on the 10s \
         correlation grid; the limit is 8,640 (one day): shorten window"
    );
    // A range query at a tiny step is refused as Prometheus refuses it.
    let (status, body) = get_error(
        &collector,
        "/api/v1/query_range",
        &[
            ("query", "load"),
            ("start", "0"),
            ("end", "86400"),
            ("step", "0.001"),
        ],
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("exceeded maximum resolution of 11,000 points per timeseries"),
        "{body}"
    );
    Ok(())
}

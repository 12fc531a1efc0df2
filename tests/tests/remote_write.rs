//! Remote write as senders use it: a real Prometheus forwarding a scrape target (its types,
//! help and units kept; its staleness markers ending the series at once when the target goes
//! away), remote write 2.0 beside 1.0, a bad series refused alone, and formats hcmon cannot
//! read answered with 415.

use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_proto::prometheus_v2 as v2;
use hcmon_tests::now_ms;
use hcmon_tests::{Collector, Prometheus, eventually, now_s};
use prost::Message;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the scrape target serves: a gauge and a histogram with their metadata.
const TARGET_METRICS: &str = "\
# HELP app_queue_depth Jobs waiting in the queue.
# TYPE app_queue_depth gauge
app_queue_depth 7
# HELP app_latency_seconds Time to serve a request.
# TYPE app_latency_seconds histogram
app_latency_seconds_bucket{le=\"0.1\"} 3
app_latency_seconds_bucket{le=\"+Inf\"} 5
app_latency_seconds_sum 0.9
app_latency_seconds_count 5
";

/// A scrape target on loopback serving [`TARGET_METRICS`] until the returned task is aborted.
async fn target() -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{TARGET_METRICS}",
                    TARGET_METRICS.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok((addr, task))
}

/// `data.result` of an instant query at now.
async fn instant(collector: &Collector, query: &str) -> anyhow::Result<Vec<Value>> {
    let answer = collector
        .get_json("/api/v1/query", &[("query", query.to_owned())])
        .await?;
    Ok(answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_forwards_types_and_its_staleness_markers_end_series_at_once()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let token = dir.path().join("token");
    std::fs::write(&token, collector.token()?)?;
    let (target, serving) = target().await?;
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ['{target}']
remote_write:
  - url: http://{http}/api/v1/write
    authorization:
      credentials_file: {token}
    queue_config:
      batch_send_deadline: 1s
    metadata_config:
      send_interval: 1s
"#,
        http = collector.http,
        token = token.display(),
    );
    let _prometheus = Prometheus::start(dir.path(), &config, &[])?;

    // Samples and the families' metadata arrive.
    eventually(Duration::from_secs(60), "forwarded samples", || async {
        Ok(!instant(&collector, "app_queue_depth").await?.is_empty())
    })
    .await?;
    eventually(Duration::from_secs(60), "forwarded metadata", || async {
        let metadata = collector.get_json("/api/v1/metadata", &[]).await?;
        Ok(metadata["data"]["app_latency_seconds"][0]["type"] == "histogram")
    })
    .await?;
    let metadata = collector.get_json("/api/v1/metadata", &[]).await?;
    let latency = &metadata["data"]["app_latency_seconds"];
    assert_eq!(latency[0]["help"], "Time to serve a request.", "{metadata}");
    assert!(
        metadata["data"]["app_latency_seconds_bucket"].is_null(),
        "a histogram is listed as one family: {metadata}"
    );
    assert_eq!(metadata["data"]["app_queue_depth"][0]["type"], "gauge");
    // The histogram's parts are cumulative, so rate() and histogram_quantile() work on them.
    eventually(Duration::from_secs(30), "histogram_quantile", || async {
        let q = "histogram_quantile(0.5, sum by (le) (app_latency_seconds_bucket))";
        Ok(!instant(&collector, q).await?.is_empty())
    })
    .await?;
    let series = collector
        .get_json(
            "/api/v1/series",
            &[("match[]", "app_latency_seconds_bucket".to_owned())],
        )
        .await?;
    assert_eq!(series["data"].as_array().map(Vec::len), Some(2), "{series}");

    // The target goes away: Prometheus writes staleness markers, and the series stop showing
    // at once rather than 5 minutes later (the lookback).
    serving.abort();
    let gone = Instant::now();
    eventually(
        Duration::from_secs(60),
        "series ended by markers",
        || async { Ok(instant(&collector, "app_queue_depth").await?.is_empty()) },
    )
    .await?;
    assert!(
        gone.elapsed() < Duration::from_secs(120),
        "ended by the markers, not the 5-minute lookback"
    );
    // Its history stays: a range query over the last minute still has its points.
    let end = now_s();
    let range = collector
        .get_json(
            "/api/v1/query_range",
            &[
                ("query", "app_queue_depth".to_owned()),
                ("start", format!("{}", end - 60.0)),
                ("end", format!("{end}")),
                ("step", "1".to_owned()),
            ],
        )
        .await?;
    assert_eq!(range["data"]["result"].as_array().map(Vec::len), Some(1));
    Ok(())
}

/// POSTs `body` to `/api/v1/write` with the given content type: status, `Samples-Written`
/// header, body.
async fn post(
    collector: &Collector,
    content_type: &str,
    encoding: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, Option<String>, String)> {
    let response = collector
        .client()?
        .post(format!("http://{}/api/v1/write", collector.http))
        .header("Content-Encoding", encoding)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await?;
    let written = response
        .headers()
        .get("X-Prometheus-Remote-Write-Samples-Written")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((response.status().as_u16(), written, response.text().await?))
}

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .expect("snappy compresses")
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_write_2_beside_1_and_bad_series_refused_alone() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let now = now_ms();

    // 2.0: interned strings, metadata on the series.
    let symbols: Vec<String> = [
        "",
        "__name__",
        "orders_processed",
        "job",
        "shop",
        "Orders processed.",
        "orders",
    ]
    .map(String::from)
    .to_vec();
    let request = v2::Request {
        symbols,
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![
                v2::Sample {
                    value: 10.0,
                    timestamp: now - 1000,
                },
                v2::Sample {
                    value: 12.0,
                    timestamp: now,
                },
            ],
            metadata: Some(v2::Metadata {
                r#type: v2::metadata::MetricType::Counter as i32,
                help_ref: 5,
                unit_ref: 6,
            }),
            ..Default::default()
        }],
    };
    let v2_type = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
    let (status, written, body) = post(
        &collector,
        v2_type,
        "snappy",
        snappy(&request.encode_to_vec()),
    )
    .await?;
    assert_eq!((status, written.as_deref()), (204, Some("2")), "{body}");
    let metadata = collector
        .get_json("/api/v1/metadata", &[("metric", "orders_processed".into())])
        .await?;
    assert_eq!(
        metadata["data"]["orders_processed"][0],
        serde_json::json!({"type": "counter", "help": "Orders processed.", "unit": "orders"})
    );
    let rate = instant(&collector, "increase(orders_processed[1m])").await?;
    assert_eq!(rate.len(), 1, "{rate:?}");

    // Formats hcmon does not read: 415, so a 2.0 sender can fall back.
    for (content_type, encoding, what) in [
        (
            "application/x-protobuf;proto=io.prometheus.write.v3.Request",
            "snappy",
            "io.prometheus.write.v3.request",
        ),
        ("application/json", "snappy", "application/json"),
        ("application/x-protobuf", "zstd", "zstd"),
    ] {
        let (status, _, body) = post(&collector, content_type, encoding, vec![0]).await?;
        assert_eq!(status, 415, "{content_type} {encoding}: {body}");
        assert!(body.contains(what), "{body}");
    }

    // 1.0 with one bad series among good ones: the good ones land, the answer names the bad.
    let series = |name: &str, value: f64| TimeSeries {
        labels: vec![
            Label {
                name: "__name__".into(),
                value: name.into(),
            },
            Label {
                name: "job".into(),
                value: "shop".into(),
            },
        ],
        samples: vec![Sample {
            value,
            timestamp: now,
        }],
    };
    let request = WriteRequest {
        timeseries: vec![
            series("carts_open", 3.0),
            series("carts-abandoned", 1.0),
            series("carts_paid", 2.0),
        ],
    };
    let (status, _, body) = post(
        &collector,
        "application/x-protobuf",
        "snappy",
        snappy(&request.encode_to_vec()),
    )
    .await?;
    assert_eq!(status, 400, "not retried: {body}");
    assert!(
        body.contains(
            "1 series (1 samples) were not stored, first series #1 (\\\"carts-abandoned\\\")"
        ),
        "{body}"
    );
    for stored in ["carts_open", "carts_paid"] {
        assert_eq!(instant(&collector, stored).await?.len(), 1, "{stored}");
    }
    Ok(())
}

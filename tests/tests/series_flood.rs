//! A flood of new series from remote write (the issue: one request of 100 000 new series held
//! ingest for minutes, and a healthy agent fell silent long enough to raise `AgentSilent`) does
//! not keep another agent's batches from being acked while it is stored.

use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::node::ScriptedNode;
use hcmon_tests::now_ms;
use hcmon_tests::{Collector, points};
use prost::Message;
use std::time::Duration;

/// One remote-write body of `count` new series `flood{shard, i}`, one sample each.
fn flood(shard: usize, count: usize, timestamp: i64) -> Vec<u8> {
    let label = |name: &str, value: String| Label {
        name: name.into(),
        value,
    };
    let timeseries = (0..count)
        .map(|i| TimeSeries {
            labels: vec![
                label("__name__", "flood".into()),
                label("i", i.to_string()),
                label("shard", shard.to_string()),
            ],
            samples: vec![Sample {
                value: i as f64,
                timestamp,
            }],
        })
        .collect();
    let raw = WriteRequest { timeseries }.encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn another_agent_is_acked_while_a_flood_of_new_series_is_stored() -> anyhow::Result<()> {
    const SHARDS: usize = 2;
    const PER_REQUEST: usize = 100_000;
    // Generous: only a collector that holds the agent up for the whole flood runs into it.
    const PATIENCE: Duration = Duration::from_secs(60);
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("data"), 0, 0)?;
    let mut healthy = ScriptedNode::connect(&collector.grpc_url(), "healthy").await?;

    // Two requests at once, as Prometheus' shards send them.
    let url = format!("http://{}/api/v1/write", collector.http);
    let client = collector.client()?;
    let writes: Vec<_> = (0..SHARDS)
        .map(|shard| {
            let (url, body) = (url.clone(), flood(shard, PER_REQUEST, now_ms()));
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
            })
        })
        .collect();

    // Wait until the collector is creating the flood's series, then keep the healthy node
    // sending, each batch with a series of its own to create, until every write is answered.
    let started = async {
        loop {
            let found = collector
                .get("/api/v1/series?match[]=flood%7Bi%3D%220%22%7D")
                .await?;
            if found.contains("\"flood\"") {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(PATIENCE, started).await??;
    let flood_started = std::time::Instant::now();
    let (mut sent, mut acked_during_flood) = (0usize, 0usize);
    while writes.iter().any(|w| !w.is_finished()) {
        sent += 1;
        let probe = sent.to_string();
        let labels = [("n", probe.as_str())];
        tokio::time::timeout(
            PATIENCE,
            healthy.send(now_ms(), &[("probe_value", &labels, 1.0)]),
        )
        .await??;
        if writes.iter().any(|w| !w.is_finished()) {
            acked_during_flood += 1;
        }
    }
    // Figures for the record (`--no-capture` shows them); nothing is asserted on time.
    eprintln!(
        "series flood: both 100k-series writes answered {:?} after creation began; the healthy node had {acked_during_flood} of {sent} batches acked meanwhile",
        flood_started.elapsed()
    );
    assert!(
        acked_during_flood > 0,
        "no batch of the healthy node was acked while the flood was stored"
    );

    for write in writes {
        let response = write.await??;
        let status = response.status();
        assert_eq!(status, 204, "{}", response.text().await?);
    }
    // All of it is stored: the flood, and every batch the healthy node had acked.
    for shard in 0..SHARDS {
        let last = format!("flood{{shard=\"{shard}\",i=\"{}\"}}", PER_REQUEST - 1);
        let last = collector.export(&last).await?;
        assert_eq!(last.len(), 1, "shard {shard}");
        assert_eq!(points(&last[0]).len(), 1, "shard {shard}");
    }
    let probes = collector.export("probe_value{node=\"healthy\"}").await?;
    assert_eq!(probes.len(), sent);
    Ok(())
}

//! Sequence numbers, end to end: a stream that jumps ahead, or a spool put back in time, never
//! makes the collector ack a batch it did not store, and the real agent's data keeps arriving.

use hcmon_proto::v1::ingest_client::IngestClient;
use hcmon_proto::v1::{Batch, MetricKind, RegisterRequest, SeriesDef, SeriesSamples};
use hcmon_tests::node::send_one_batch;
use hcmon_tests::now_ms;
use hcmon_tests::{Agent, Collector, points};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Code, Status};

const JUMP: u64 = 1_000_000_000_000_000;
const AGENT_SERIES: &str = "hcmon_agent_samples_total{node=\"real\"}";

/// The spool epoch from an agent's state file: what a peer would need to pass for its spool.
fn spool_state(spool: &Path) -> anyhow::Result<(u64, u64)> {
    let text = std::fs::read_to_string(spool.join("spool.state"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = text.lines().find_map(|l| l.strip_prefix(name));
        Ok(line
            .ok_or_else(|| anyhow::anyhow!("no {name} in {text:?}"))?
            .trim()
            .parse()?)
    };
    Ok((field("epoch ")?, field("next_seq ")?))
}

async fn register(
    client: &mut IngestClient<Channel>,
    node: &str,
    epoch: u64,
) -> Result<String, Status> {
    let reply = client
        .register(RegisterRequest {
            node_name: node.into(),
            spool_epoch: epoch,
            ..Default::default()
        })
        .await?;
    Ok(reply.into_inner().session_id)
}

/// Opens a stream with `session`, sends one batch of one sample, and returns the ack or refusal.
async fn send(
    client: &mut IngestClient<Channel>,
    session: &str,
    seq: u64,
    skipped_from: u64,
) -> Result<u64, Status> {
    let batch = Batch {
        seq,
        new_series: vec![SeriesDef {
            id: 1,
            name: "intruder_value".into(),
            labels: vec![],
            kind: MetricKind::Gauge as i32,
            help: "Sent by a peer posing as the node.".into(),
        }],
        samples: vec![SeriesSamples {
            series_id: 1,
            timestamps_ms: vec![now_ms()],
            values: vec![1.0],
        }],
        skipped_from,
    };
    send_one_batch(client, session, batch).await
}

/// Waits until the real agent has stored samples collected after `since_ms` (plus a margin, so
/// they come from batches spooled after that moment).
async fn wait_for_samples_after(collector: &Collector, since_ms: i64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let series = collector.export(AGENT_SERIES).await?;
        let newest = series
            .first()
            .and_then(|s| points(s).last().map(|&(t, _)| t))
            .unwrap_or(0);
        if newest > since_ms + 3_000 {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "no sample of the real agent collected after {since_ms} was stored (newest {newest}); collector log:\n{}",
                collector.process.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn real_node(collector: &Collector) -> anyhow::Result<Value> {
    let agents: Value = serde_json::from_str(&collector.get("/api/v1/agents").await?)?;
    agents["data"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["node"] == "real").cloned())
        .ok_or_else(|| anyhow::anyhow!("node real missing from {agents}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_jumping_ahead_costs_the_real_agent_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("data"), 0, 0)?;
    let spool = dir.path().join("spool");
    let mut agent = Agent::start(&collector.grpc_url(), "real", &spool, "1s");
    collector
        .wait_for_metrics(Duration::from_secs(60), |t| t.contains("node=\"real\""))
        .await?;
    let agents = collector.get("/api/v1/agents").await?;
    assert!(
        !agents.contains("epoch"),
        "the spool epoch is not published: {agents}"
    );

    // A peer holding the node's name and spool epoch jumps to 10^15: refused, not acked.
    let (epoch, _) = spool_state(&spool)?;
    let mut client = IngestClient::connect(collector.grpc_url()).await?;
    let session = register(&mut client, "real", epoch).await?;
    let status = send(&mut client, &session, JUMP, 0)
        .await
        .expect_err("a gap is refused");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("skipped_from"), "{status:?}");
    // Every batch the agent spools afterwards is stored (they used to be acked as repeats).
    wait_for_samples_after(&collector, now_ms()).await?;

    // A jump that declares the numbers between as skipped is stored, and counted as lost. The
    // agent then finds the collector holding a number its spool never issued, and goes on under
    // a new spool epoch instead of having its batches taken for repeats.
    let session = register(&mut client, "real", epoch).await?;
    assert_eq!(send(&mut client, &session, JUMP, 1).await?, JUMP);
    let jumped_at = now_ms();
    agent.process.wait_for_log(
        "continuing under a new spool epoch",
        Duration::from_secs(60),
    )?;
    wait_for_samples_after(&collector, jumped_at).await?;
    let (new_epoch, _) = spool_state(&spool)?;
    assert_ne!(new_epoch, epoch);
    let node = real_node(&collector).await?;
    assert!(node["lost_batches"].as_u64() > Some(JUMP / 2), "{node}");
    let metrics = collector.get("/metrics").await?;
    assert!(
        metrics.contains("hcmon_collector_lost_batches_total"),
        "{metrics}"
    );
    Ok(())
}

/// Copies a spool folder (its state file and batches), as a VM snapshot would hold it.
fn copy_spool(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to.join("batches"))?;
    std::fs::copy(from.join("spool.state"), to.join("spool.state"))?;
    for entry in std::fs::read_dir(from.join("batches"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join("batches").join(entry.file_name()))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spool_restored_from_a_snapshot_loses_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("data"), 0, 0)?;
    let spool = dir.path().join("spool");
    let snapshot = dir.path().join("snapshot");
    let mut agent = Agent::start(&collector.grpc_url(), "real", &spool, "1s");
    collector
        .wait_for_metrics(Duration::from_secs(60), |t| t.contains("node=\"real\""))
        .await?;
    agent.process.kill9();
    copy_spool(&spool, &snapshot)?;
    let (_, snapshot_next) = spool_state(&snapshot)?;

    // The machine runs on past the snapshot, until the collector holds numbers beyond it.
    let mut agent = Agent::start(&collector.grpc_url(), "real", &spool, "1s");
    let deadline = Instant::now() + Duration::from_secs(90);
    while real_node(&collector).await?["last_durable_seq"].as_u64() < Some(snapshot_next + 2) {
        assert!(
            Instant::now() < deadline,
            "the agent did not get past the snapshot"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    agent.process.kill9();

    // Restored: the spool numbers from `snapshot_next` again, under the same epoch.
    std::fs::remove_dir_all(&spool)?;
    copy_spool(&snapshot, &spool)?;
    let restored_at = now_ms();
    let mut agent = Agent::start(&collector.grpc_url(), "real", &spool, "1s");
    agent.process.wait_for_log(
        "continuing under a new spool epoch",
        Duration::from_secs(60),
    )?;
    wait_for_samples_after(&collector, restored_at).await?;
    let node = real_node(&collector).await?;
    assert_eq!(node["lost_batches"], 0, "{node}");
    Ok(())
}

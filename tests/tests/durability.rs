//! Crash safety: kill -9 the collector or the agent mid-stream; every sample produced is stored
//! exactly once and the outage leaves no gap.

use hcmon_tests::{Agent, Collector, now_s, points};
use serde_json::Value;
use std::time::Duration;

/// Waits until the newest stored `hcmon_agent_samples_total` of `node` is at or after `since_s`.
async fn wait_for_backfill(collector: &Collector, node: &str, since_s: f64) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let series = collector
            .export(&format!("hcmon_agent_samples_total{{node=\"{node}\"}}"))
            .await?;
        let last = series.first().and_then(|s| points(s).last().copied());
        if last.is_some_and(|(ts, _)| ts as f64 / 1000.0 >= since_s) {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no back-fill for {node}; collector log:\n{}",
            collector.process.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Asserts timestamps strictly increase with no step larger than `max_gap_ms`.
fn assert_contiguous(points: &[(i64, f64)], max_gap_ms: i64) {
    for pair in points.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap > 0, "duplicate or unordered timestamps {:?}", pair);
        assert!(gap <= max_gap_ms, "gap of {gap} ms between {:?}", pair);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn collector_kill9_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let mut collector = Collector::start(&data, 0, 0)?;
    let (grpc, http) = (collector.grpc.port(), collector.http.port());
    let _agent = Agent::start(
        &collector.grpc_url(),
        "crash",
        &dir.path().join("spool"),
        "1s",
    );
    collector
        .wait_for_metrics(Duration::from_secs(30), |t| t.contains("node=\"crash\""))
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let killed_at = now_s();
    collector.process.kill9();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let restarted_at = now_s();
    let collector = Collector::start(&data, grpc, http)?;
    wait_for_backfill(&collector, "crash", restarted_at + 2.0).await?;

    let counter = collector
        .export("hcmon_agent_samples_total{node=\"crash\"}")
        .await?;
    let counter = points(&counter[0]);
    // One interval plus scheduling jitter on a busy machine.
    assert_contiguous(&counter, 2_500);
    let covered = |t: f64| {
        counter
            .iter()
            .any(|(ts, _)| (*ts as f64 / 1000.0 - t).abs() < 1.5)
    };
    assert!(counter.first().unwrap().0 as f64 / 1000.0 < killed_at - 2.0);
    for second in 0..5 {
        assert!(
            covered(killed_at + f64::from(second)),
            "no sample near {second} s into the outage"
        );
    }

    // Exactly once: the agent's own count equals what is stored, over every series of the node
    // (batches are stored as an in-order prefix, so a stored count covers every batch before
    // it; see `settled_count` for which one).
    let all: Vec<Value> = collector
        .export(&hcmon_tests::agent_series("crash"))
        .await?;
    let (last_ts, last_count) = hcmon_tests::settled_count(&counter).expect("a settled count");
    let stored: usize = all
        .iter()
        .map(|s| points(s).iter().filter(|(ts, _)| *ts <= last_ts).count())
        .sum();
    assert_eq!(
        stored as f64, last_count,
        "stored samples vs the agent's own count"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_kill9_while_collector_down_resends_its_spool() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let spool = dir.path().join("spool");
    let mut collector = Collector::start(&data, 0, 0)?;
    let (grpc, http) = (collector.grpc.port(), collector.http.port());
    let url = collector.grpc_url();
    let mut agent = Agent::start(&url, "phoenix", &spool, "1s");
    collector
        .wait_for_metrics(Duration::from_secs(30), |t| t.contains("node=\"phoenix\""))
        .await?;

    collector.process.kill9();
    let collector_down = now_s();
    tokio::time::sleep(Duration::from_secs(4)).await;
    agent.process.kill9();
    let agent_down = now_s();
    let spooled = std::fs::read_dir(spool.join("batches"))?.count();
    assert!(
        spooled >= 3,
        "expected batches spooled during the outage, found {spooled}"
    );

    let _agent = Agent::start(&url, "phoenix", &spool, "1s");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let collector = Collector::start(&data, grpc, http)?;
    wait_for_backfill(&collector, "phoenix", now_s()).await?;

    let counter = collector
        .export("hcmon_agent_samples_total{node=\"phoenix\"}")
        .await?;
    let counter = points(&counter[0]);
    let during_outage = counter
        .iter()
        .filter(|(ts, _)| {
            let t = *ts as f64 / 1000.0;
            t > collector_down + 0.5 && t < agent_down - 0.5
        })
        .count();
    assert!(
        during_outage >= 2,
        "batches spooled by the killed agent were not resent: {counter:?}"
    );
    for pair in counter.windows(2) {
        assert!(pair[1].0 > pair[0].0, "duplicate timestamps {:?}", pair);
    }
    // Once everything is acked the spool empties.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(spool.join("batches"))?.count() > 1 {
        assert!(std::time::Instant::now() < deadline, "spool did not drain");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

//! A collector killed with SIGKILL in the middle of an escalation, again and again, on the wall
//! clock (tiers seconds apart) with a real webhook receiver: every tier is delivered, none is
//! skipped, and a tier is repeated only when its delivery was in flight as the process died.

use hcmon_tests::Collector;
use hcmon_tests::node::ScriptedNode;
use hcmon_tests::now_ms;
use hcmon_tests::receivers::HttpReceiver;
use serde_json::Value;
use std::time::{Duration, Instant};

const TIERS: usize = 3;

fn config(pager: &HttpReceiver) -> String {
    format!(
        r#"
[analytics]
enabled = false

[alerting]
default_rules = false
group_window = "0s"
tick = "50ms"

[alerting.missing_data]
agents = false

[alerting.retry]
attempts = 3
initial_backoff = "20ms"
max_backoff = "100ms"

[[alerting.rules]]
name = "HighCpu"
selector = "node_cpu_usage_ratio"
direction = "above"
critical = 0.95

[alerting.escalation]
min_severity = "error"
[[alerting.escalation.tiers]]
after = "2s"
recipients = ["tier1"]
[[alerting.escalation.tiers]]
after = "4s"
recipients = ["tier2"]
[[alerting.escalation.tiers]]
after = "6s"
recipients = ["tier3"]

[alerting.recipients]
tier1 = ["pager:one"]
tier2 = ["pager:two"]
tier3 = ["pager:three"]

[[alerting.channels]]
name = "pager"
escalation_only = true
[alerting.channels.webhook]
url = "{url}"
"#,
        url = pager.url()
    )
}

/// The escalation tier of each notification the pager got, in arrival order.
fn tiers(pager: &HttpReceiver) -> Vec<i64> {
    pager
        .requests()
        .iter()
        .filter_map(|r| r.json().ok())
        .filter_map(|n: Value| n["kind"]["escalation"]["tier"].as_i64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_escalation_loses_no_tier_and_repeats_only_what_was_in_flight()
-> anyhow::Result<()> {
    let pager = HttpReceiver::start().await?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let toml = config(&pager);
    let mut collector = Collector::start_with_config(&data, &toml)?;
    let mut node = ScriptedNode::connect(&collector.grpc_url(), "nas").await?;
    node.send(now_ms(), &[("node_cpu_usage_ratio", &[], 0.99)])
        .await?;
    drop(node);
    let fired = Instant::now();

    // Die just after each tier came due (while its delivery may be in flight) and between
    // tiers; come back at once.
    let mut kills = 0;
    for at in [2_050, 3_000, 4_050, 5_000, 6_050] {
        let at = Duration::from_millis(at);
        tokio::time::sleep(at.saturating_sub(fired.elapsed())).await;
        collector.process.kill9();
        kills += 1;
        collector = Collector::start_with_config(&data, &toml)?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while tiers(&pager)
        .iter()
        .filter(|&&t| t == TIERS as i64 - 1)
        .count()
        == 0
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the last tier never came: {:?}\n{}",
            tiers(&pager),
            collector.process.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Anything still due would arrive within a few ticks.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = tiers(&pager);
    for tier in 0..TIERS as i64 {
        assert!(got.contains(&tier), "tier {tier} was lost: {got:?}");
    }
    let repeats = got.len() - TIERS;
    assert!(
        repeats <= kills,
        "at most the one in-flight notification per kill is repeated: {got:?}"
    );
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, got, "tiers arrive in order: {got:?}");
    Ok(())
}

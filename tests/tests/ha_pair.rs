//! An HA pair of real collectors on loopback, with a real agent shipping to both and a real
//! webhook receiver: each collector holds the agent's whole history across the other's outage,
//! and every page goes out once, across a kill -9 of the leader, its hand-over, and its return.

use hcmon_tests::node::ScriptedNode;
use hcmon_tests::now_ms;
use hcmon_tests::receivers::HttpReceiver;
use hcmon_tests::{Agent, Collector, bin_path, eventually};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// The config of member `member`, whose peer serves HTTP on `peer_http` and keeps its data
/// (and admin token) in `peer_data`.
fn config(member: &str, peer_http: (u16, u16), peer_data: &Path, pager: &HttpReceiver) -> String {
    format!(
        r#"
[analytics]
enabled = false

[slo]
enabled = false

[pair]
member = "{member}"
peer = "http://127.0.0.1:{peer_port}"
peer_token_file = "{token}"
lease = "3s"
hold = "60s"

[alerting]
default_rules = false
group_window = "0s"
tick = "50ms"

[alerting.missing_data]
agents = false

[alerting.recipients]
on-call = ["pager"]
manager = ["pager"]
director = ["pager"]

[[alerting.rules]]
name = "HighCpu"
selector = "node_cpu_usage_ratio"
direction = "above"
critical = 0.95

[[alerting.channels]]
name = "pager"
[alerting.channels.webhook]
url = "{url}"
"#,
        peer_port = peer_http.1,
        token = peer_data.join("admin.token").display(),
        url = pager.url()
    )
}

/// (kind, node) of every page received, in order.
fn pages(pager: &HttpReceiver) -> Vec<(String, String)> {
    pager
        .requests()
        .iter()
        .filter_map(|r| r.json().ok())
        .map(|p: Value| {
            let kind = p["kind"].as_str().unwrap_or("?").to_owned();
            let node = p["alerts"][0]["labels"]["node"]
                .as_str()
                .unwrap_or("?")
                .to_owned();
            (kind, node)
        })
        .collect()
}

fn count(pager: &HttpReceiver, kind: &str, node: &str) -> usize {
    pages(pager)
        .iter()
        .filter(|(k, n)| k == kind && n == node)
        .count()
}

/// The value of the unlabelled metric `name` in the collector's `/metrics`.
async fn metric(collector: &Collector, name: &str) -> anyhow::Result<Option<f64>> {
    let text = collector.get("/metrics").await?;
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok()))
}

/// Starts a collector of the pair on its fixed ports.
fn start(data: &Path, ports: (u16, u16), toml: &str) -> anyhow::Result<Collector> {
    let config = data.with_extension("toml");
    std::fs::write(&config, toml)?;
    let extra = ["--config".to_owned(), config.display().to_string()];
    Collector::start_binary_on(&bin_path("hcmon-collector"), data, ports, &extra)
}

/// The timestamps of the agent's own sample counter the collector holds.
async fn stored(collector: &Collector) -> anyhow::Result<Vec<i64>> {
    let series = collector
        .export("hcmon_agent_samples_total{node=\"edge\"}")
        .await?;
    Ok(series
        .iter()
        .flat_map(|s| hcmon_tests::points(s).into_iter().map(|(t, _)| t))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_pages_once_across_a_leader_kill_and_both_hold_the_whole_history()
-> anyhow::Result<()> {
    let pager = HttpReceiver::start().await?;
    let dir = tempfile::tempdir()?;
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    // A first start of each makes its admin token, which the other reads as its peer token,
    // and fixes the ports the other is told.
    let (ports_a, ports_b) = {
        let (mut a, mut b) = (
            Collector::start(&data_a, 0, 0)?,
            Collector::start(&data_b, 0, 0)?,
        );
        a.token()?;
        b.token()?;
        a.process.terminate();
        b.process.terminate();
        (
            (a.grpc.port(), a.http.port()),
            (b.grpc.port(), b.http.port()),
        )
    };
    let toml_a = config("a", ports_b, &data_b, &pager);
    let toml_b = config("b", ports_a, &data_a, &pager);
    let mut a = start(&data_a, ports_a, &toml_a)?;
    let b = start(&data_b, ports_b, &toml_b)?;

    // The real agent ships to both.
    let spool = dir.path().join("spool");
    let collectors = format!("{},{}", a.grpc_url(), b.grpc_url());
    let spool_arg = spool.display().to_string();
    let mut agent = Agent::start_args(&[
        "--collector",
        &collectors,
        "--node-name",
        "edge",
        "--spool-dir",
        &spool_arg,
        "--interval",
        "1s",
    ]);

    eventually(WAIT, "a leads the pair and b follows", || async {
        Ok(
            metric(&a, "hcmon_collector_pair_leader").await? == Some(1.0)
                && metric(&b, "hcmon_collector_pair_leader").await? == Some(0.0)
                && metric(&b, "hcmon_collector_pair_peer_up").await? == Some(1.0),
        )
    })
    .await?;

    // Both judge the same samples; one page.
    let mut web1_a = ScriptedNode::connect(&a.grpc_url(), "web1").await?;
    let mut web1_b = ScriptedNode::connect(&b.grpc_url(), "web1").await?;
    let t = now_ms();
    web1_a
        .send(t, &[("node_cpu_usage_ratio", &[], 0.99)])
        .await?;
    web1_b
        .send(t, &[("node_cpu_usage_ratio", &[], 0.99)])
        .await?;
    pager.wait_for(1, WAIT).await?;
    eventually(WAIT, "b finds the firing page in a's log", || async {
        let text = b.get("/metrics").await?;
        Ok(text
            .contains("hcmon_collector_pair_notifications_total{outcome=\"delivered_by_peer\"} 1"))
    })
    .await?;
    let t = now_ms();
    web1_a
        .send(t, &[("node_cpu_usage_ratio", &[], 0.2)])
        .await?;
    web1_b
        .send(t, &[("node_cpu_usage_ratio", &[], 0.2)])
        .await?;
    eventually(WAIT, "the resolved page", || async {
        Ok(count(&pager, "resolved", "web1") >= 1)
    })
    .await?;
    eventually(WAIT, "b finds the resolved page in a's log", || async {
        let text = b.get("/metrics").await?;
        Ok(text
            .contains("hcmon_collector_pair_notifications_total{outcome=\"delivered_by_peer\"} 2"))
    })
    .await?;

    // The leader dies. What happens next only b sees: it holds the page until the lease
    // runs out, then leads and sends it.
    a.process.kill9();
    let a_died = now_ms();
    let mut web2_b = ScriptedNode::connect(&b.grpc_url(), "web2").await?;
    web2_b
        .send(now_ms(), &[("node_cpu_usage_ratio", &[], 0.99)])
        .await?;
    eventually(WAIT, "b takes over and pages web2", || async {
        Ok(count(&pager, "firing", "web2") >= 1)
    })
    .await?;
    assert_eq!(metric(&b, "hcmon_collector_pair_leader").await?, Some(1.0));

    // a returns: b keeps the lead, and a sends nothing b sent.
    let a = start(&data_a, ports_a, &toml_a)?;
    let a_back = now_ms();
    eventually(WAIT, "a is back as a follower", || async {
        Ok(
            metric(&a, "hcmon_collector_pair_peer_up").await? == Some(1.0)
                && metric(&a, "hcmon_collector_pair_leader").await? == Some(0.0),
        )
    })
    .await?;
    let mut web3_a = ScriptedNode::connect(&a.grpc_url(), "web3").await?;
    let mut web3_b = ScriptedNode::connect(&b.grpc_url(), "web3").await?;
    let t = now_ms();
    web3_a
        .send(t, &[("node_cpu_usage_ratio", &[], 0.99)])
        .await?;
    web3_b
        .send(t, &[("node_cpu_usage_ratio", &[], 0.99)])
        .await?;
    eventually(WAIT, "web3 is paged", || async {
        Ok(count(&pager, "firing", "web3") >= 1)
    })
    .await?;
    // Anything sent twice would arrive within a few ticks.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (kind, node) in [
        ("firing", "web1"),
        ("resolved", "web1"),
        ("firing", "web2"),
        ("firing", "web3"),
    ] {
        assert_eq!(
            count(&pager, kind, node),
            1,
            "{kind} {node} paged once: {:?}",
            pages(&pager)
        );
    }
    assert_eq!(pages(&pager).len(), 4, "{:?}", pages(&pager));

    // The agent's spool kept what a missed while it was down, and b was not held back by it:
    // both end with the same history, the outage included.
    let until = now_ms();
    eventually(WAIT, "a catches up with b", || async {
        let upto = |mut ts: Vec<i64>| {
            ts.retain(|t| *t <= until);
            ts.sort();
            ts
        };
        let (on_a, on_b) = (upto(stored(&a).await?), upto(stored(&b).await?));
        let in_outage = on_a.iter().filter(|t| (a_died..a_back).contains(t)).count();
        Ok(in_outage > 0 && on_a == on_b)
    })
    .await?;
    agent.process.terminate();
    Ok(())
}

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

/// One node's stream to each collector of the pair, as an agent shipping to both has.
struct BothSides(ScriptedNode, ScriptedNode);

impl BothSides {
    async fn connect(a: &Collector, b: &Collector, node: &str) -> anyhow::Result<Self> {
        Ok(Self(
            ScriptedNode::connect(&a.grpc_url(), node).await?,
            ScriptedNode::connect(&b.grpc_url(), node).await?,
        ))
    }

    /// The same CPU sample to both.
    async fn cpu(&mut self, value: f64) -> anyhow::Result<()> {
        let t = now_ms();
        self.0
            .send(t, &[("node_cpu_usage_ratio", &[], value)])
            .await?;
        self.1
            .send(t, &[("node_cpu_usage_ratio", &[], value)])
            .await?;
        Ok(())
    }
}

/// Two collectors configured as a pair, started: `a` first, so it leads.
struct Members {
    a: Collector,
    b: Collector,
    ports_a: (u16, u16),
    toml_a: String,
}

async fn start_pair(dir: &Path, pager: &HttpReceiver) -> anyhow::Result<Members> {
    let (data_a, data_b) = (dir.join("a"), dir.join("b"));
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
    let toml_a = config("a", ports_b, &data_b, pager);
    let toml_b = config("b", ports_a, &data_a, pager);
    let a = start(&data_a, ports_a, &toml_a)?;
    let b = start(&data_b, ports_b, &toml_b)?;
    eventually(WAIT, "a leads the pair and b follows", || async {
        Ok(
            metric(&a, "hcmon_collector_pair_leader").await? == Some(1.0)
                && metric(&b, "hcmon_collector_pair_leader").await? == Some(0.0)
                && metric(&b, "hcmon_collector_pair_peer_up").await? == Some(1.0),
        )
    })
    .await?;
    Ok(Members {
        a,
        b,
        ports_a,
        toml_a,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_pages_once_across_a_leader_kill_and_both_hold_the_whole_history()
-> anyhow::Result<()> {
    let pager = HttpReceiver::start().await?;
    let dir = tempfile::tempdir()?;
    let Members {
        mut a,
        b,
        ports_a,
        toml_a,
    } = start_pair(dir.path(), &pager).await?;
    let data_a = dir.path().join("a");

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

    // Both judge the same samples; one page.
    let mut web1 = BothSides::connect(&a, &b, "web1").await?;
    web1.cpu(0.99).await?;
    pager.wait_for(1, WAIT).await?;
    eventually(WAIT, "b finds the firing page in a's log", || async {
        let text = b.get("/metrics").await?;
        Ok(text
            .contains("hcmon_collector_pair_notifications_total{outcome=\"delivered_by_peer\"} 1"))
    })
    .await?;
    web1.cpu(0.2).await?;
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
    let mut web3 = BothSides::connect(&a, &b, "web3").await?;
    web3.cpu(0.99).await?;
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

/// The first alert of `node` in a collector's `GET /api/v1/alerts`.
async fn alert_of(collector: &Collector, node: &str) -> anyhow::Result<Option<Value>> {
    let alerts = collector.get_json("/api/v1/alerts", &[]).await?;
    Ok(alerts["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["labels"]["node"] == node)
        .cloned())
}

/// The status of silence `id` in a collector's `GET /api/v1/silences`.
async fn silence_status(collector: &Collector, id: &str) -> anyhow::Result<Option<String>> {
    let silences = collector.get_json("/api/v1/silences", &[]).await?;
    Ok(silences["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["id"] == id)
        .and_then(|s| s["status"].as_str().map(str::to_owned)))
}

/// What an operator tells one collector holds on the other: a silence made on the leader mutes
/// what the follower pages after the leader died, an acknowledgement shows on both, and a
/// silence expired while one was down reaches it when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_and_acknowledgements_made_on_one_hold_on_the_other() -> anyhow::Result<()> {
    let pager = HttpReceiver::start().await?;
    let dir = tempfile::tempdir()?;
    let Members {
        mut a,
        b,
        ports_a,
        toml_a,
    } = start_pair(dir.path(), &pager).await?;
    let data_a = dir.path().join("a");

    // A silence for db1's maintenance, made on a; b lists it.
    let made: Value = a
        .client()?
        .post(format!("http://{}/api/v1/silences", a.http))
        .json(&serde_json::json!({
            "matchers": "{node=\"db1\"}",
            "duration": "2h",
            "created_by": "alice",
            "comment": "disk swap",
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let silence = made["data"]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(silence.len(), 16, "{made}");
    eventually(WAIT, "b lists a's silence", || async {
        Ok(silence_status(&b, &silence).await?.as_deref() == Some("active"))
    })
    .await?;

    // web5 fires on both and is paged once; alice acknowledges it on a; b shows it.
    let mut web5 = BothSides::connect(&a, &b, "web5").await?;
    web5.cpu(0.99).await?;
    pager.wait_for(1, WAIT).await?;
    let id = alert_of(&a, "web5").await?.expect("web5 fires on a")["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    a.client()?
        .post(format!("http://{}/api/v1/alerts/{id}/ack", a.http))
        .json(&serde_json::json!({"by": "alice"}))
        .send()
        .await?
        .error_for_status()?;
    eventually(WAIT, "b shows web5 acknowledged by alice", || async {
        let alert = alert_of(&b, "web5").await?;
        Ok(alert.is_some_and(|a| a["acknowledged"]["by"] == "alice"))
    })
    .await?;

    // The leader dies; db1 overheats, which only b sees. b takes the lead but pages nothing:
    // the silence made on a holds.
    a.process.kill9();
    let mut db1_b = ScriptedNode::connect(&b.grpc_url(), "db1").await?;
    db1_b
        .send(now_ms(), &[("node_cpu_usage_ratio", &[], 0.99)])
        .await?;
    eventually(WAIT, "b leads, with db1 firing and muted", || async {
        let alert = alert_of(&b, "db1").await?;
        Ok(
            metric(&b, "hcmon_collector_pair_leader").await? == Some(1.0)
                && alert.is_some_and(|a| a["muted"].as_str().is_some_and(|m| m.contains(&silence))),
        )
    })
    .await?;

    // The maintenance ends early: expired on b while a is down. a, back, follows.
    b.client()?
        .delete(format!("http://{}/api/v1/silences/{silence}", b.http))
        .send()
        .await?
        .error_for_status()?;
    eventually(WAIT, "b pages db1 once the silence is expired", || async {
        Ok(count(&pager, "firing", "db1") == 1)
    })
    .await?;
    let a = start(&data_a, ports_a, &toml_a)?;
    eventually(WAIT, "a, back, shows the silence expired", || async {
        Ok(silence_status(&a, &silence).await?.as_deref() == Some("expired"))
    })
    .await?;

    // Anything sent twice would arrive within a few ticks.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count(&pager, "firing", "web5"), 1, "{:?}", pages(&pager));
    assert_eq!(count(&pager, "firing", "db1"), 1, "{:?}", pages(&pager));
    assert_eq!(pages(&pager).len(), 2, "{:?}", pages(&pager));
    Ok(())
}

//! SLOs end to end. A real collector and a real agent probing a real HTTP target that the test
//! takes down for a while: the default probe SLOs appear in `hcmon slo list`; an SLO made
//! through the API goes out as OpenSLO YAML, is deleted and comes back by import; the
//! intervals API sums to the figures reported. And a collector in this process, on a test
//! clock, where an outage of a probed target burns the budget fast enough to fire
//! `SloBurnRate` through the normal alerting.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use hcmon_tests::clocked::ClockedCollector;
use hcmon_tests::node::ScriptedNode;
use hcmon_tests::receivers::HttpReceiver;
use hcmon_tests::{Agent, Collector};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// An HTTP target answering 200, or 503 while it is down.
struct Target {
    url: String,
    up: Arc<AtomicBool>,
}

impl Target {
    async fn start() -> anyhow::Result<Self> {
        let up = Arc::new(AtomicBool::new(true));
        let state = up.clone();
        let app = Router::new().route(
            "/",
            get(move || {
                let up = state.load(Ordering::SeqCst);
                async move {
                    match up {
                        true => (StatusCode::OK, "ok"),
                        false => (StatusCode::SERVICE_UNAVAILABLE, "down"),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, up })
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

/// Runs `hcmon` against `collector`; its stdout, or an error with its stderr.
fn hcmon(collector: &Collector, args: &[&str]) -> anyhow::Result<String> {
    let output = hcmon_tests::hcmon_command(collector.http, &collector.data_dir)
        .args(args)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "hcmon {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// Runs `hcmon`, expecting it to fail; its stderr.
fn hcmon_refused(collector: &Collector, args: &[&str]) -> anyhow::Result<String> {
    let output = hcmon_tests::hcmon_command(collector.http, &collector.data_dir)
        .args(args)
        .output()?;
    anyhow::ensure!(!output.status.success(), "hcmon {args:?} succeeded");
    Ok(String::from_utf8(output.stderr)?)
}

/// The `probe:web:availability` figures over `[from, to)` (Unix seconds), and its intervals.
async fn figures_and_intervals(
    collector: &Collector,
    from: f64,
    to: f64,
) -> anyhow::Result<(Value, Value)> {
    let range = [("from", format!("{from:.3}")), ("to", format!("{to:.3}"))];
    let figures = collector
        .get_json("/api/v1/slos/probe:web:availability", &range)
        .await?;
    let intervals = collector
        .get_json("/api/v1/slos/probe:web:availability/intervals", &range)
        .await?;
    Ok((figures["data"].clone(), intervals["data"].clone()))
}

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_probe_slos_appear_and_api_slos_round_trip_through_openslo() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let target = Target::start().await?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let config = format!(
        r#"
interval = "1s"
probe_interval = "1s"

[[probes.http]]
url = "{url}"
name = "web"
"#,
        url = target.url
    );
    let _agent = Agent::start_with_config(
        &collector.grpc_url(),
        "slo-node",
        &dir.path().join("spool"),
        &config,
    )?;

    // The defaults appear once the probe's series exist.
    let deadline = Instant::now() + WAIT;
    let list = loop {
        let list = hcmon(&collector, &["slo", "list"])?;
        if list.contains("probe:web:availability") && list.contains("probe:web:latency") {
            break list;
        }
        anyhow::ensure!(Instant::now() < deadline, "no default probe SLOs:\n{list}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        list.contains("NAME") && list.contains("BUDGET LEFT"),
        "{list}"
    );
    assert!(list.contains("95.000%"), "default target: {list}");

    // Some downtime, so the figures are not all good.
    let from = hcmon_tests::now_s();
    tokio::time::sleep(Duration::from_secs(4)).await;
    target.set_up(false);
    tokio::time::sleep(Duration::from_secs(4)).await;
    target.set_up(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let to = hcmon_tests::now_s();
    let (figures, intervals) = figures_and_intervals(&collector, from, to).await?;
    let tally = &figures["tally"];
    assert!(number(&tally["bad"]) >= 1.0, "the outage counts: {figures}");
    assert!(number(&tally["good"]) >= 1.0, "{figures}");
    assert_eq!(
        intervals["tally"], figures["tally"],
        "one evaluation, two views"
    );
    // Every figure is the sum of its intervals (occurrences: each interval weighs its total).
    let list = intervals["intervals"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for outcome in ["good", "bad", "unknown", "excluded"] {
        let sum: f64 = list
            .iter()
            .filter(|i| i["outcome"] == outcome)
            .map(|i| number(&i["total"]))
            .sum();
        let reported = number(&tally[outcome]);
        assert!(
            (sum - reported).abs() < 1e-4,
            "{outcome}: intervals sum to {sum}, the figures say {reported}"
        );
    }
    let (good, bad) = (number(&tally["good"]), number(&tally["bad"]));
    let compliance = number(&figures["compliance"]);
    assert!(
        (compliance - good / (good + bad)).abs() < 1e-4,
        "{compliance} vs {good}/{}",
        good + bad
    );
    let csv = hcmon(
        &collector,
        &[
            "slo",
            "intervals",
            "probe:web:availability",
            "--from",
            &format!("{from:.3}"),
            "--to",
            &format!("{to:.3}"),
            "--csv",
        ],
    )?;
    assert!(
        csv.starts_with("start_ms,end_ms,outcome,good,total,note") && csv.contains(",bad,"),
        "{csv}"
    );

    // A silence marked as maintenance over the window takes it out of the denominator.
    let start = std::time::UNIX_EPOCH + Duration::from_secs_f64(from);
    let silenced = hcmon(
        &collector,
        &[
            "alerts",
            "silence",
            "{name=\"web\"}",
            "--start",
            &humantime::format_rfc3339_millis(start).to_string(),
            "--for",
            "1h",
            "--maintenance",
        ],
    )?;
    assert!(silenced.starts_with("silence "), "{silenced}");
    let silences = collector.get_json("/api/v1/silences", &[]).await?;
    assert_eq!(silences["data"][0]["maintenance"], true, "{silences}");
    let (maintained, _) = figures_and_intervals(&collector, from, to).await?;
    let excluded = number(&maintained["tally"]["excluded"]);
    assert_eq!(number(&maintained["tally"]["bad"]), 0.0, "{maintained}");
    assert!(excluded >= good + bad, "{maintained}");
    assert!(
        maintained["policy"]
            .as_str()
            .unwrap_or("")
            .contains("maintenance"),
        "{maintained}"
    );

    // An SLO through the API, out as OpenSLO, deleted, back in by import.
    let definition = dir.path().join("web-99.json");
    std::fs::write(
        &definition,
        r#"{"name": "web-99", "description": "web answers", "selector": "{name=\"web\"}",
            "sli": {"kind": "availability", "source": "probe"}, "target": 0.99, "warning": 0.97,
            "period": "week"}"#,
    )?;
    let made = hcmon(
        &collector,
        &["slo", "create", "--file", &definition.display().to_string()],
    )?;
    assert!(made.contains("created SLO web-99 (api)"), "{made}");
    let exported = dir.path().join("slos.yaml");
    hcmon(
        &collector,
        &["slo", "export", "--output", &exported.display().to_string()],
    )?;
    let yaml = std::fs::read_to_string(&exported)?;
    assert!(
        yaml.contains("apiVersion: openslo/v1") && yaml.contains("displayName: web-99"),
        "{yaml}"
    );
    assert!(
        yaml.contains("incidents:response"),
        "named as not exported: {yaml}"
    );
    let deleted = hcmon(&collector, &["slo", "delete", "web-99"])?;
    assert!(deleted.contains("deleted SLO web-99"), "{deleted}");
    let gone = hcmon_refused(&collector, &["slo", "show", "web-99"])?;
    assert!(gone.contains("404") && gone.contains("web-99"), "{gone}");
    let defaults = hcmon_refused(&collector, &["slo", "delete", "probe:web:latency"])?;
    assert!(defaults.contains("409"), "{defaults}");
    let imported = hcmon(
        &collector,
        &["slo", "import", &exported.display().to_string()],
    )?;
    assert!(imported.contains("web-99"), "{imported}");
    let back = collector.get_json("/api/v1/slos", &[]).await?;
    let web = back["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["definition"]["name"] == "web-99")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("web-99 not back: {back}"))?;
    assert_eq!(web["definition"]["target"], 0.99);
    assert_eq!(web["definition"]["warning"], 0.97);
    assert_eq!(web["definition"]["period"], "week");
    assert_eq!(web["definition"]["origin"], "api");
    assert!(web["result"].is_object(), "{web}");

    // Garbage is refused naming what is wrong.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "apiVersion: openslo/v1\nkind: SLO\nmetadata: [\n")?;
    let refused = hcmon_refused(
        &collector,
        &["slo", "import", &broken.display().to_string()],
    )?;
    assert!(
        refused.contains("400") && refused.contains("document 1") && refused.contains("line"),
        "{refused}"
    );
    std::fs::write(
        &definition,
        r#"{"name": "x", "sli": {"kind": "availability"}, "target": 2}"#,
    )?;
    let refused = hcmon_refused(
        &collector,
        &["slo", "create", "--file", &definition.display().to_string()],
    )?;
    assert!(refused.contains("400"), "{refused}");
    Ok(())
}

const MIN: i64 = 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_a_probed_target_fires_slo_burn_rate() -> anyhow::Result<()> {
    let hook = HttpReceiver::start().await?;
    let toml = format!(
        r#"
[analytics]
enabled = false

[alerting]
default_rules = false
evaluation_interval = "200ms"

[alerting.missing_data]
agents = false

[alerting.recipients]
on-call = ["hook"]
manager = ["hook"]
director = ["hook"]

[[alerting.channels]]
name = "hook"
min_severity = "warning"
[alerting.channels.webhook]
url = "{url}"
"#,
        url = hook.url()
    );
    let dir = tempfile::tempdir()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let start = now - now % MIN - 2 * 60 * MIN;
    let clock = Arc::new(AtomicI64::new(start));
    let rig = ClockedCollector::start(&dir.path().join("data"), &toml, clock.clone()).await?;
    let mut node = ScriptedNode::connect(&format!("http://{}", rig.grpc), "shop").await?;
    // An hour of a probe every 10 s: up for 10 minutes, then down for 50. Over the last hour
    // 300 of 360 runs failed: 83 % bad against the 5 % a 0.95 target allows, a burn rate of
    // 16.7, over the 14.4 that pages.
    for i in 0..360 {
        let t = start + i * 10_000;
        clock.store(t, Ordering::SeqCst);
        let up = if i < 60 { 1.0 } else { 0.0 };
        node.send(t, &[("http_check_up", &[("name", "web")], up)])
            .await?;
    }
    clock.store(start + 60 * MIN, Ordering::SeqCst);
    let deadline = Instant::now() + WAIT;
    let fired = loop {
        let alerts = rig.alerts().await?;
        let burning: Vec<Value> = alerts
            .into_iter()
            .filter(|a| {
                a["labels"]["alertname"] == "SloBurnRate"
                    && a["labels"]["slo"] == "probe:web:availability"
                    && a["hcmonState"] == "firing"
            })
            .collect();
        if burning.len() == 3 {
            break burning;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "SloBurnRate did not fire for all three windows: {burning:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let window = |w: &str| {
        fired
            .iter()
            .find(|a| a["labels"]["window"] == w)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(window("1h")["labels"]["severity"], "critical");
    assert_eq!(window("6h")["labels"]["severity"], "critical");
    assert_eq!(window("3d")["labels"]["severity"], "warning");
    let summary = window("1h")["annotations"]["summary"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // The rate when it fired: at least the 14.4 that pages (16.7 once all 360 runs count).
    let rate: f64 = summary
        .split_once(" at ")
        .and_then(|(_, rest)| rest.split_once("x over 1h"))
        .and_then(|(rate, _)| rate.parse().ok())
        .unwrap_or(0.0);
    assert!(
        rate >= 14.4 && summary.contains("budget left, already exhausted"),
        "{summary}"
    );
    // Through the normal lifecycle to the channel, once the group window has passed.
    for _ in 0..12 {
        clock.fetch_add(10_000, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = hook.wait_for(1, WAIT).await?;
    let text = String::from_utf8_lossy(&sent[0].body).to_string();
    assert!(text.contains("SloBurnRate"), "{text}");
    rig.stop().await
}

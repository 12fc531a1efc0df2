//! Alerting end to end: a collector (in this process, on a test clock) receives samples over
//! its real gRPC protocol from scripted nodes and notifies real receivers on loopback: an SMTP
//! server with STARTTLS and AUTH, HTTP receivers for Slack and a signed webhook (the pager), and
//! Debian's Alertmanager. The test clock drives 15/30/60-minute escalations in milliseconds;
//! everything else (timers, stores, deliveries) is what runs in production.

use hcmon_tests::clocked::ClockedCollector as Rig;
use hcmon_tests::receivers::{Alertmanager, HttpReceiver, RecordedRequest, SmtpSink};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const MIN: i64 = 60_000;

/// Sends `(minutes from now, value)` samples of `node_filesystem_used_ratio{node="nas",
/// mountpoint="/"}` by Prometheus remote write.
async fn remote_write_disk(rig: &Rig, samples: &[(i64, f64)]) -> anyhow::Result<()> {
    use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
    let label = |name: &str, value: &str| Label {
        name: name.into(),
        value: value.into(),
    };
    let now = rig.now();
    let request = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                label("__name__", "node_filesystem_used_ratio"),
                label("mountpoint", "/"),
                label("node", "nas"),
            ],
            samples: samples
                .iter()
                .map(|&(minutes, value)| Sample {
                    value,
                    timestamp: now + minutes * MIN,
                })
                .collect(),
        }],
    };
    let (status, body) = hcmon_tests::remote_write(&rig.client, rig.http, &request).await?;
    anyhow::ensure!(status == 204, "{body}");
    Ok(())
}

/// Receivers and the config that points the collector at them.
struct Receivers {
    smtp: SmtpSink,
    slack: HttpReceiver,
    pager: HttpReceiver,
    _ca: tempfile::NamedTempFile,
    toml: String,
}

const RULES: &str = r#"
[analytics]
enabled = false

[alerting]
default_rules = false

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
warning = 0.70
error = 0.85
critical = 0.95
recovery_margin = 0.05

[[alerting.rules]]
name = "HighMemory"
selector = "node_memory_used_ratio"
direction = "above"
warning = 0.75
error = 0.85
critical = 0.95
recovery_margin = 0.05

[[alerting.rules]]
name = "DiskFilling"
selector = "node_filesystem_used_ratio"
direction = "above"
warning = 0.80
error = 0.90
critical = 0.95
recovery_margin = 0.02

[alerting.recipients]
on-call = ["pager:oncall"]
manager = ["pager:manager", "email:boss@example.com"]
director = ["pager:director"]
"#;

impl Receivers {
    async fn start(per_hour: usize, extra: &str) -> anyhow::Result<Self> {
        let smtp = SmtpSink::start(true).await?;
        let slack = HttpReceiver::start().await?;
        let pager = HttpReceiver::start().await?;
        let ca = tempfile::NamedTempFile::new()?;
        std::fs::write(ca.path(), smtp.cert_pem())?;
        let toml = format!(
            r#"{RULES}
{extra}

[[alerting.channels]]
name = "email"
min_severity = "warning"
max_per_hour = {per_hour}
[alerting.channels.email]
host = "localhost"
port = {smtp_port}
tls = "starttls"
username = "hcmon"
password = "s3cret"
from = "hcmon <hcmon@example.com>"
to = ["team@example.com"]
ca_file = "{ca}"

[[alerting.channels]]
name = "slack"
min_severity = "error"
max_per_hour = {per_hour}
[alerting.channels.slack]
url = "{slack}"

[[alerting.channels]]
name = "pager"
escalation_only = true
[alerting.channels.webhook]
url = "{pager}"
secret = "pager-signing-secret"
"#,
            smtp_port = smtp.addr().port(),
            ca = ca.path().display(),
            slack = slack.url(),
            pager = pager.url(),
        );
        Ok(Self {
            smtp,
            slack,
            pager,
            _ca: ca,
            toml,
        })
    }
}

fn clock_at(ms: i64) -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(ms))
}

/// Now, rounded to a minute, so runs are alike.
fn start_time() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    now - now % MIN
}

fn webhook(request: &RecordedRequest) -> Value {
    request.json().expect("the pager gets JSON")
}

/// The pager notifications of kind `kind` (`firing`, `escalation`, `resolved`...).
fn pages(pager: &HttpReceiver) -> Vec<Value> {
    pager.requests().iter().map(webhook).collect()
}

fn names(n: &Value) -> Vec<String> {
    let mut names: Vec<String> = n["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["labels"]["alertname"].as_str().unwrap_or("?").to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_grouped_escalates_through_three_tiers_and_resolves_to_everyone()
-> anyhow::Result<()> {
    let receivers = Receivers::start(10, "").await?;
    let am = Alertmanager::start().await?;
    let toml = format!(
        "{}\n[[alerting.channels]]\nname = \"am\"\n[alerting.channels.alertmanager]\nurl = \"{}\"\n",
        receivers.toml,
        am.url()
    );
    let dir = tempfile::tempdir()?;
    let rig = Rig::start(&dir.path().join("data"), &toml, clock_at(start_time())).await?;
    let mut nas = rig.node("nas").await?;

    // Three resources of one node cross their levels together: one notification per channel.
    let t = rig.now();
    nas.send(
        t,
        &[
            ("node_cpu_usage_ratio", &[], 0.97),
            ("node_memory_used_ratio", &[], 0.90),
            ("node_filesystem_used_ratio", &[("mountpoint", "/")], 0.85),
        ],
    )
    .await?;
    let cpu = rig.wait_alert("HighCpu", "nas", "firing").await?;
    assert_eq!(cpu["state"], "firing");
    assert_eq!(cpu["labels"]["severity"], "critical");
    assert_eq!(cpu["value"], "0.97");
    assert!(
        receivers.smtp.messages().is_empty(),
        "the grouping window is open"
    );
    rig.advance(MIN).await;
    let mails = receivers.smtp.wait_for(1, WAIT).await?;
    assert_eq!(mails.len(), 1, "one email for the burst");
    let mail = &mails[0];
    assert!(
        mail.tls && mail.auth.is_some(),
        "STARTTLS and AUTH were used"
    );
    let subject = mail.header("Subject").unwrap_or_default();
    assert!(
        subject.contains("FIRING:3") && subject.contains("nas"),
        "{subject}"
    );
    let body = mail.body().replace("=\r\n", "");
    for needle in ["HighCpu", "HighMemory", "DiskFilling", "0.97", "critical"] {
        assert!(
            body.contains(needle),
            "{needle} missing from the email:\n{body}"
        );
    }
    let slack = receivers.slack.wait_for(1, WAIT).await?;
    assert_eq!(slack.len(), 1);
    let slack_text = String::from_utf8_lossy(&slack[0].body).to_string();
    assert!(slack_text.contains("HighCpu") && slack_text.contains("HighMemory"));
    assert!(
        !slack_text.contains("DiskFilling"),
        "slack takes error and up; the disk is a warning"
    );
    // Alertmanager's own API lists what was forwarded.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let listed = am.alerts().await?;
        let names: Vec<&str> = listed
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["labels"]["alertname"].as_str())
            .collect();
        if names.contains(&"HighCpu") && names.contains(&"DiskFilling") {
            let cpu = listed
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["labels"]["alertname"] == "HighCpu")
                .expect("listed");
            assert_eq!(cpu["labels"]["node"], "nas");
            assert_eq!(cpu["labels"]["severity"], "critical");
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "Alertmanager lists {listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        receivers.pager.requests().is_empty(),
        "the pager is for escalation"
    );

    // Nobody acknowledges: on-call at 15 min, the manager at 30, the director at 60.
    rig.advance(14 * MIN - MIN / 2).await;
    assert!(receivers.pager.requests().is_empty());
    rig.advance(MIN).await;
    receivers.pager.wait_for(2, WAIT).await?;
    let tier0 = pages(&receivers.pager);
    assert!(
        tier0.iter().all(|p| p["kind"]["escalation"]["tier"] == 0),
        "{tier0:?}"
    );
    assert!(
        tier0
            .iter()
            .all(|p| p["recipients"] == serde_json::json!(["oncall"]))
    );
    let mut escalated: Vec<Vec<String>> = tier0.iter().map(names).collect();
    escalated.sort();
    assert_eq!(
        escalated,
        vec![vec!["HighCpu".to_owned()], vec!["HighMemory".to_owned()]],
        "the warning-level disk alert is not escalated"
    );
    // The pager's webhook is signed.
    let request = &receivers.pager.requests()[0];
    let timestamp = request
        .header("x-hcmon-timestamp")
        .expect("timestamp header");
    let signature = request
        .header("x-hcmon-signature")
        .expect("signature header");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"pager-signing-secret");
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(&request.body);
    let hex: String = ring::hmac::sign(&key, &signed)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(signature, format!("sha256={hex}"));

    rig.advance(15 * MIN).await;
    receivers.pager.wait_for(4, WAIT).await?;
    let boss = receivers
        .smtp
        .wait_for(3, WAIT)
        .await?
        .into_iter()
        .filter(|m| m.to == vec!["boss@example.com".to_owned()])
        .count();
    assert_eq!(
        boss, 2,
        "tier 2 also emails the manager, one mail per alert"
    );
    rig.advance(30 * MIN).await;
    receivers.pager.wait_for(6, WAIT).await?;
    let tiers: Vec<i64> = pages(&receivers.pager)
        .iter()
        .map(|p| p["kind"]["escalation"]["tier"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(tiers, vec![0, 0, 1, 1, 2, 2]);
    let cpu = rig.wait_alert("HighCpu", "nas", "firing").await?;
    assert_eq!(cpu["escalationTier"], 3);
    rig.advance(2 * 60 * MIN).await;
    assert_eq!(receivers.pager.requests().len(), 6, "each tier once");

    // A second node: acknowledged from the signed link in its first page, after tier one.
    let mut pi = rig.node("pi").await?;
    pi.send(rig.now(), &[("node_cpu_usage_ratio", &[], 0.9)])
        .await?;
    rig.advance(16 * MIN).await;
    receivers.pager.wait_for(7, WAIT).await?;
    let page = pages(&receivers.pager).pop().expect("a page");
    assert_eq!(page["alerts"][0]["labels"]["node"], "pi");
    let link = page["alerts"][0]["ack_url"]
        .as_str()
        .expect("an ack link")
        .to_owned();
    assert!(
        link.starts_with(&format!("http://{}/api/v1/alerts/", rig.http)),
        "{link}"
    );
    let answer = reqwest::get(&link).await?;
    assert!(answer.status().is_success());
    assert!(answer.text().await?.contains("Acknowledged"));
    let acked = rig.wait_alert("HighCpu", "pi", "acknowledged").await?;
    assert_eq!(acked["state"], "firing", "Prometheus' view: still firing");
    assert_eq!(acked["acknowledged"]["by"], "on-call");
    let forged = link.replace("by=on-call", "by=mallory");
    assert_eq!(reqwest::get(&forged).await?.status(), 403);
    rig.advance(2 * 60 * MIN).await;
    assert_eq!(
        receivers.pager.requests().len(),
        7,
        "acknowledged: no further tiers"
    );

    // The node recovers: everyone who heard of each alert hears it resolved.
    let pages_before = receivers.pager.requests().len();
    let mails_before = receivers.smtp.messages().len();
    nas.send(
        rig.now(),
        &[
            ("node_cpu_usage_ratio", &[], 0.2),
            ("node_memory_used_ratio", &[], 0.3),
            ("node_filesystem_used_ratio", &[("mountpoint", "/")], 0.5),
        ],
    )
    .await?;
    rig.advance(MIN).await;
    receivers.pager.wait_for(pages_before + 3, WAIT).await?;
    let resolved: Vec<Value> = pages(&receivers.pager)[pages_before..].to_vec();
    let mut recipients: Vec<String> = resolved
        .iter()
        .map(|p| {
            assert_eq!(p["kind"], "resolved");
            p["recipients"][0].as_str().unwrap_or("?").to_owned()
        })
        .collect();
    recipients.sort();
    assert_eq!(recipients, vec!["director", "manager", "oncall"]);
    let mails = receivers.smtp.wait_for(mails_before + 2, WAIT).await?;
    let resolved_mails: Vec<_> = mails[mails_before..]
        .iter()
        .filter(|m| m.header("Subject").is_some_and(|s| s.contains("RESOLVED")))
        .collect();
    assert_eq!(resolved_mails.len(), 2, "the team and the manager");
    assert!(
        rig.alerts()
            .await?
            .iter()
            .all(|a| a["labels"]["node"] != "nas")
    );

    // The incident keeps the whole story.
    let incidents = rig.get("/api/v1/incidents").await?;
    let cpu_incident = incidents["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["labels"]["alertname"] == "HighCpu" && i["labels"]["node"] == "nas")
        .expect("an incident for HighCpu on nas")
        .clone();
    assert!(cpu_incident["resolvedAt"].is_string());
    let id = cpu_incident["id"].as_str().expect("id");
    let story = rig.get(&format!("/api/v1/incidents/{id}")).await?;
    let events: Vec<&str> = story["data"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for event in ["fired", "queued", "delivered", "escalated", "resolved"] {
        assert!(events.contains(&event), "{event} missing from {events:?}");
    }
    rig.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hourly_cap_holds_the_rest_and_sends_one_digest() -> anyhow::Result<()> {
    let receivers = Receivers::start(2, "").await?;
    let dir = tempfile::tempdir()?;
    let rig = Rig::start(
        &dir.path().join("data"),
        &receivers.toml,
        clock_at(start_time()),
    )
    .await?;
    for name in ["n1", "n2", "n3", "n4", "n5"] {
        let mut node = rig.node(name).await?;
        node.send(rig.now(), &[("node_cpu_usage_ratio", &[], 0.9)])
            .await?;
    }
    rig.advance(MIN).await;
    receivers.slack.wait_for(2, WAIT).await?;
    rig.advance(10 * MIN).await;
    assert_eq!(receivers.slack.requests().len(), 2, "capped at two an hour");
    rig.advance(52 * MIN).await;
    let all = receivers.slack.wait_for(3, WAIT).await?;
    let digest = String::from_utf8_lossy(&all[2].body).to_string();
    for node in ["n3", "n4", "n5"] {
        assert!(
            digest.contains(node),
            "{node} missing from the digest: {digest}"
        );
    }
    assert!(digest.to_lowercase().contains("digest"), "{digest}");
    rig.advance(2 * 60 * MIN).await;
    assert_eq!(receivers.slack.requests().len(), 3, "nothing sent twice");
    rig.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_from_the_cli_mute_and_their_expiry_lets_alerts_through() -> anyhow::Result<()> {
    let receivers = Receivers::start(10, "").await?;
    let dir = tempfile::tempdir()?;
    let rig = Rig::start(
        &dir.path().join("data"),
        &receivers.toml,
        clock_at(start_time()),
    )
    .await?;
    let out = rig.cli(&[
        "alerts",
        "silence",
        "{node=\"nas\"}",
        "--for",
        "3h",
        "--comment",
        "disk swap",
    ])?;
    assert!(out.contains("active"), "{out}");
    let silence_id = out.split_whitespace().nth(1).expect("an id").to_owned();
    let bad = std::process::Command::new(hcmon_tests::bin_path("hcmon"))
        .args([
            "--url",
            &format!("http://{}", rig.http),
            "alerts",
            "silence",
            "{node=",
        ])
        .arg("--data-dir")
        .arg(&rig.data_dir)
        .output()?;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("matchers"));

    let mut nas = rig.node("nas").await?;
    nas.send(rig.now(), &[("node_cpu_usage_ratio", &[], 0.99)])
        .await?;
    rig.advance(20 * MIN).await;
    assert!(receivers.slack.requests().is_empty(), "silenced");
    assert!(
        receivers.pager.requests().is_empty(),
        "silenced alerts do not escalate"
    );
    let listed = rig.cli(&["alerts", "list"])?;
    assert!(
        listed.contains("HighCpu") && listed.contains("silenced"),
        "{listed}"
    );

    rig.cli(&["alerts", "unsilence", &silence_id])?;
    let silences = rig.cli(&["alerts", "silences"])?;
    assert!(silences.contains("expired"), "{silences}");
    rig.advance(2 * MIN).await;
    receivers.slack.wait_for(1, WAIT).await?;
    // It missed its first tier while silenced: that tier comes now, once.
    receivers.pager.wait_for(1, WAIT).await?;
    let id = rig.wait_alert("HighCpu", "nas", "firing").await?["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let out = rig.cli(&["alerts", "ack", &id])?;
    assert!(out.contains("carol"), "{out}");
    let alert = rig.wait_alert("HighCpu", "nas", "acknowledged").await?;
    assert_eq!(alert["acknowledged"]["by"], "carol");
    let shown = rig.cli(&["alerts", "show", &id])?;
    assert!(
        shown.contains("acknowledged") && shown.contains("history"),
        "{shown}"
    );
    rig.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_fires_within_a_minute_and_mutes_its_other_alerts() -> anyhow::Result<()> {
    // Missing data is on by default: nothing to configure.
    let receivers = Receivers::start(10, "").await?;
    let toml = receivers
        .toml
        .replace("[alerting.missing_data]\nagents = false\n", "");
    let dir = tempfile::tempdir()?;
    let rig = Rig::start(&dir.path().join("data"), &toml, clock_at(start_time())).await?;
    let mut nas = rig.node("nas").await?;
    let mut pi = rig.node("pi").await?;
    for _ in 0..6 {
        let t = rig.now();
        nas.send(t, &[("node_memory_used_ratio", &[], 0.5)]).await?;
        pi.send(t, &[("node_memory_used_ratio", &[], 0.5)]).await?;
        rig.advance(10_000).await;
    }
    // Its last words: memory is full. Then it is gone.
    nas.send(rig.now(), &[("node_memory_used_ratio", &[], 0.97)])
        .await?;
    drop(nas);
    let died = rig.now();
    for _ in 0..4 {
        rig.advance(10_000).await;
        pi.send(rig.now(), &[("node_memory_used_ratio", &[], 0.5)])
            .await?;
    }
    let silent = rig.wait_alert("AgentSilent", "nas", "firing").await?;
    assert!(rig.now() - died <= MIN, "fired within a minute");
    assert_eq!(silent["labels"]["severity"], "critical");
    rig.wait_alert("AgentDisconnected", "nas", "firing").await?;
    let memory = rig.wait_alert("HighMemory", "nas", "firing").await?;
    assert!(
        memory["muted"].as_str().unwrap_or("").contains("inhibited"),
        "{memory}"
    );
    for _ in 0..6 {
        rig.advance(10_000).await;
        pi.send(rig.now(), &[("node_memory_used_ratio", &[], 0.5)])
            .await?;
    }
    let slack = receivers.slack.wait_for(1, WAIT).await?;
    let text = String::from_utf8_lossy(&slack[0].body).to_string();
    assert!(text.contains("AgentSilent"), "{text}");
    assert!(
        !text.contains("HighMemory"),
        "muted by the node being down: {text}"
    );
    let alerts = rig.alerts().await?;
    assert!(
        alerts.iter().all(|a| a["labels"]["node"] != "pi"),
        "the live node is fine: {:?}",
        alerts
            .iter()
            .map(|a| format!(
                "{} {} {} {}",
                a["labels"]["alertname"], a["labels"]["node"], a["hcmonState"], a["value"]
            ))
            .collect::<Vec<_>>()
    );
    rig.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_alert_is_reported_once() -> anyhow::Result<()> {
    let receivers = Receivers::start(100, "").await?;
    let dir = tempfile::tempdir()?;
    let rig = Rig::start(
        &dir.path().join("data"),
        &receivers.toml,
        clock_at(start_time()),
    )
    .await?;
    let mut nas = rig.node("nas").await?;
    for i in 0..12 {
        let value = if i % 2 == 0 { 0.97 } else { 0.1 };
        nas.send(rig.now(), &[("node_cpu_usage_ratio", &[], value)])
            .await?;
        rig.advance(30_000).await;
    }
    rig.advance(5 * MIN).await;
    let flapping = rig.alerts().await?;
    let sent: Vec<String> = receivers
        .slack
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .collect();
    let notices = sent
        .iter()
        .filter(|s| s.to_lowercase().contains("flapping"))
        .count();
    assert_eq!(notices, 1, "one flapping notice: {sent:#?}\n{flapping:#?}");
    assert!(sent.len() <= 4, "no storm: {sent:#?}");
    rig.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_escalation_neither_repeats_nor_skips() -> anyhow::Result<()> {
    let receivers = Receivers::start(10, "").await?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let clock = clock_at(start_time());
    let rig = Rig::start(&data, &receivers.toml, clock.clone()).await?;
    let mut nas = rig.node("nas").await?;
    nas.send(rig.now(), &[("node_cpu_usage_ratio", &[], 0.99)])
        .await?;
    rig.advance(20 * MIN).await;
    receivers.pager.wait_for(1, WAIT).await?;
    receivers.slack.wait_for(1, WAIT).await?;
    drop(nas);
    rig.stop().await?;

    // Down for 45 minutes: the manager's (30 min) and the director's (60 min) tiers came due.
    clock.fetch_add(45 * MIN, Ordering::SeqCst);
    let rig = Rig::start(&data, &receivers.toml, clock.clone()).await?;
    rig.wait_alert("HighCpu", "nas", "firing").await?;
    receivers.pager.wait_for(3, WAIT).await?;
    rig.advance(2 * 60 * MIN).await;
    let alert = rig.wait_alert("HighCpu", "nas", "firing").await?;
    let tiers: Vec<i64> = pages(&receivers.pager)
        .iter()
        .map(|p| p["kind"]["escalation"]["tier"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(
        tiers,
        vec![0, 1, 2],
        "each tier exactly once across the restart"
    );
    assert_eq!(
        receivers.slack.requests().len(),
        1,
        "the firing notice is not sent again"
    );
    assert_eq!(alert["escalationTier"], 3);
    rig.stop().await
}

/// Only the shipped rules, and a webhook that sees what they notify.
fn forecast_config(hook: &HttpReceiver) -> String {
    format!(
        r#"
[analytics]
enabled = false

[alerting.missing_data]
agents = false

[alerting.recipients]
on-call = ["hook"]
manager = ["hook"]
director = ["hook"]

[[alerting.channels]]
name = "hook"
[alerting.channels.webhook]
url = "{}"
"#,
        hook.url()
    )
}

/// The shipped rules and channel (the collector's log).
const SHIPPED: &str = r#"
[analytics]
enabled = false

[alerting.missing_data]
agents = false
"#;

/// The reported crash loop: a disk forecast alert fires, then resolves with +Inf ("never
/// fills") as its value, and the collector has to start again on that store. The forecast is
/// evaluated when the collector starts (and then every minute of real time), so each step is a
/// restart rather than a minute's wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_disk_forecast_does_not_stop_the_collector_from_starting() -> anyhow::Result<()>
{
    let hook = HttpReceiver::start().await?;
    let toml = forecast_config(&hook);
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let clock = clock_at(start_time());

    // Two hours of a root filesystem filling by 0.3 % a minute: full in about 1.5 h.
    let rig = Rig::start(&data, &toml, clock.clone()).await?;
    let rising: Vec<(i64, f64)> = (-120..=0).map(|m| (m, 0.66 + m as f64 * 0.003)).collect();
    remote_write_disk(&rig, &rising).await?;
    rig.stop().await?;

    let rig = Rig::start(&data, &toml, clock.clone()).await?;
    let fired = rig.wait_alert("DiskWillFill", "nas", "firing").await?;
    assert_eq!(fired["labels"]["mountpoint"], "/");
    rig.advance(MIN).await;
    let firing = hook.wait_for(1, WAIT).await?;
    assert_eq!(webhook(&firing[0])["kind"], "firing");
    // Two hours later the disk was cleaned up and stays at 10 %.
    rig.advance(120 * MIN).await;
    let low: Vec<(i64, f64)> = (-119..=0).map(|m| (m, 0.10)).collect();
    remote_write_disk(&rig, &low).await?;
    rig.stop().await?;

    let rig = Rig::start(&data, &toml, clock.clone()).await?;
    let resolved = rig.wait_alert("DiskWillFill", "nas", "resolved").await?;
    assert_eq!(resolved["value"], "+Inf", "never reaches the limit");
    rig.stop().await?;

    // The start that used to fail: "corrupt alert record in the store".
    let rig = Rig::start(&data, &toml, clock.clone()).await?;
    let alert = rig.wait_alert("DiskWillFill", "nas", "resolved").await?;
    assert_eq!(alert["value"], "+Inf");
    let incident = alert["incident"].as_str().map(str::to_owned);
    let incidents = rig.get("/api/v1/incidents").await?;
    let id = incidents["data"][0]["id"].as_str().expect("an incident");
    assert!(incident.is_none() || incident.as_deref() == Some(id));
    let story = rig.get(&format!("/api/v1/incidents/{id}")).await?;
    let resolved_event = story["data"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["event"] == "resolved")
        .cloned();
    assert_eq!(
        resolved_event.map(|e| e["value"].clone()),
        Some(Value::from("+Inf")),
        "{story}"
    );
    // The resolution, queued before the restart, still reaches the webhook, value and all.
    rig.advance(MIN).await;
    let sent = hook.wait_for(2, WAIT).await?;
    let kinds: Vec<Value> = sent.iter().map(|r| webhook(r)["kind"].clone()).collect();
    assert_eq!(kinds, ["firing", "resolved"]);
    assert_eq!(webhook(&sent[1])["alerts"][0]["value"], "+Inf");
    rig.stop().await
}

/// Opens the store the collector will use and writes raw values into its alerts table.
fn write_raw_alert_records(data: &Path, records: &[(&str, Vec<u8>)]) -> anyhow::Result<()> {
    use hcmon_collector::storage::{Kv, KvBatch, RocksKv, Table};
    std::fs::create_dir_all(data)?;
    let kv = RocksKv::open(data, 8 << 20)?;
    let mut batch = KvBatch::default();
    for (key, value) in records {
        batch.put(Table::Alerts, key.as_bytes().to_vec(), value.clone());
    }
    kv.write(batch, true)?;
    Ok(())
}

/// A store written by the previous version: an alert record whose +Inf value was written as
/// `null`, a silence that starts in year 9999 and lasts 1000 years (the API took it then), and
/// a record that is not even JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_from_older_versions_load_and_an_unreadable_one_is_set_aside() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let now = start_time();
    let legacy_alert = serde_json::json!({
        "id": "0123456789abcdef",
        "alertname": "DiskWillFill",
        "labels": {"mountpoint": "/", "node": "nas"},
        "annotations": {"summary": "disk / on nas is not heading for 0.95"},
        "lifecycle": {"state": {"Resolved": {"at_ms": now}}, "changes": [now - MIN, now], "flapping": false},
        "severity": "warning",
        "value": null,
        "evidence": {"threshold": 0.95, "expected": null, "related": [], "details": []},
        "inhibits_node": false,
        "episode": null,
        "changed_ms": now,
    });
    let year_9999_ms: i64 = 253_370_764_800_000;
    let legacy_silence = serde_json::json!({
        "id": "far",
        "matchers": "{node=\"nas\"}",
        "starts_ms": year_9999_ms,
        "ends_ms": year_9999_ms + 1000 * 31_557_600_000,
        "daily": null,
        "created_by": "mallory",
        "comment": "",
        "created_ms": now,
    });
    write_raw_alert_records(
        &data,
        &[
            ("a/0123456789abcdef", serde_json::to_vec(&legacy_alert)?),
            ("s/far", serde_json::to_vec(&legacy_silence)?),
            ("a/fedcba9876543210", b"\x00\x01 not a record".to_vec()),
        ],
    )?;

    let rig = Rig::start(&data, SHIPPED, clock_at(now)).await?;
    let alert = rig.wait_alert("DiskWillFill", "nas", "resolved").await?;
    assert_eq!(alert["value"], "NaN", "a legacy null is an unknown value");
    let metrics = rig.text("/metrics").await?;
    assert!(
        metrics.contains("hcmon_collector_quarantined_records_total{record=\"alert\"} 1"),
        "{metrics}"
    );
    let silences = rig.get("/api/v1/silences").await?;
    assert_eq!(silences["data"][0]["id"], "far", "{silences}");
    assert_eq!(silences["data"][0]["startsAt"], "9999-01-01T00:00:00.000Z");
    assert_eq!(
        silences["data"][0]["endsAt"], "9999-12-31T23:59:59.999Z",
        "past what RFC 3339 can write: its last instant"
    );
    let listed = rig.cli(&["alerts", "silences"])?;
    assert!(
        listed.contains("far") && listed.contains("pending"),
        "{listed}"
    );
    rig.stop().await?;

    // Set aside, not deleted: the next start has nothing left to set aside.
    let rig = Rig::start(&data, SHIPPED, clock_at(now)).await?;
    let metrics = rig.text("/metrics").await?;
    assert!(
        metrics.contains("hcmon_collector_quarantined_records_total{record=\"alert\"} 0"),
        "{metrics}"
    );
    rig.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_out_of_range_are_refused_with_the_reason() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let rig = Rig::start(&dir.path().join("data"), SHIPPED, clock_at(start_time())).await?;
    let silence = |fields: Value| {
        let mut body = serde_json::json!({"matchers": "{node=\"nas\"}", "created_by": "mallory"});
        for (k, v) in fields.as_object().expect("fields") {
            body[k] = v.clone();
        }
        body
    };
    for (fields, reason) in [
        (
            serde_json::json!({"starts_at": "9999-01-01T00:00:00Z", "duration": "1000years"}),
            "starts_at \"9999-01-01T00:00:00Z\" must be between 1970 and 2200",
        ),
        (
            serde_json::json!({"ends_at": "2300-01-01T00:00:00Z"}),
            "ends_at \"2300-01-01T00:00:00Z\" must be between 1970 and 2200",
        ),
        (
            serde_json::json!({"duration": "300000000years"}),
            "ends the silence after 2200",
        ),
    ] {
        let (status, answer) = rig.post("/api/v1/silences", silence(fields)).await?;
        assert_eq!(status, 400, "{answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{error}");
    }
    let refused = rig.cli_refused(&[
        "alerts",
        "silence",
        "{node=\"nas\"}",
        "--start",
        "9999-01-01T00:00:00Z",
        "--for",
        "1000years",
    ])?;
    assert!(refused.contains("between 1970 and 2200"), "{refused}");
    let listed = rig.get("/api/v1/silences").await?;
    assert_eq!(listed["data"], serde_json::json!([]), "nothing was saved");

    let link = format!(
        "http://{}/api/v1/alerts/0123456789abcdef/ack?by=mallory&expires={}&sig=00",
        rig.http,
        i64::MAX
    );
    let answer = reqwest::get(&link).await?;
    assert_eq!(answer.status(), 400);
    assert!(answer.text().await?.contains("expires"));
    rig.stop().await
}

/// A rule over a function, so every evaluation round runs on the blocking pool.
const FUNCTION_RULE: &str = r#"
[[alerting.rules]]
name = "FastCounter"
selector = "rate(node_network_receive_bytes_total[5m])"
direction = "above"
warning = 1e12
"#;

/// The value of `hcmon_collector_task_panics_total{task}` on `/metrics`.
async fn task_panics(rig: &Rig, task: &str) -> anyhow::Result<f64> {
    let text = rig.text("/metrics").await?;
    let line = format!("hcmon_collector_task_panics_total{{task=\"{task}\"}} ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0.0, |v| v.trim().parse().unwrap_or(0.0)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_rule_evaluation_is_logged_and_counted_and_alerting_goes_on()
-> anyhow::Result<()> {
    let receivers = Receivers::start(100, FUNCTION_RULE).await?;
    let dir = tempfile::tempdir()?;
    // Every round of function-rule evaluation panics from here on.
    fail::cfg("alert-rule-evaluation", "panic").map_err(anyhow::Error::msg)?;
    let rig = Rig::start(
        &dir.path().join("data"),
        &receivers.toml,
        clock_at(start_time()),
    )
    .await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    while task_panics(&rig, "alert-rule-evaluation").await? < 1.0 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no panic counted");
        rig.advance(20_000).await;
    }
    // The loop that owns the alert book still takes samples, fires and notifies.
    let mut nas = rig.node("nas").await?;
    nas.send(rig.now(), &[("node_cpu_usage_ratio", &[], 0.99)])
        .await?;
    rig.wait_alert("HighCpu", "nas", "firing").await?;
    rig.advance(2 * MIN).await; // past the grouping window
    receivers.slack.wait_for(1, WAIT).await?;
    fail::remove("alert-rule-evaluation");
    rig.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_storing_alert_state_stops_the_collector_with_the_reason_and_a_restart_resumes()
-> anyhow::Result<()> {
    let receivers = Receivers::start(100, "").await?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let clock = clock_at(start_time());
    let rig = Rig::start(&data, &receivers.toml, clock.clone()).await?;
    fail::cfg("alert-store-write", "panic").map_err(anyhow::Error::msg)?;
    let mut nas = rig.node("nas").await?;
    nas.send(rig.now(), &[("node_cpu_usage_ratio", &[], 0.99)])
        .await?;
    // The change set that fired the alert could not be stored: the collector stops rather
    // than run on with a book ahead of its store, and says why.
    let ended = tokio::time::timeout(WAIT, rig.task).await??;
    let error = format!(
        "{:#}",
        ended.expect_err("the collector stops with an error")
    );
    assert!(
        error.contains("alert-store-write") && error.contains("restart"),
        "{error}"
    );
    assert!(
        receivers.slack.requests().is_empty(),
        "nothing unstored was sent"
    );
    fail::remove("alert-store-write");
    drop(nas);

    let rig = Rig::start(&data, &receivers.toml, clock).await?;
    let mut nas = rig.node("nas").await?;
    nas.send(rig.now(), &[("node_cpu_usage_ratio", &[], 0.99)])
        .await?;
    rig.wait_alert("HighCpu", "nas", "firing").await?;
    rig.advance(2 * MIN).await; // past the grouping window
    receivers.slack.wait_for(1, WAIT).await?;
    rig.stop().await
}

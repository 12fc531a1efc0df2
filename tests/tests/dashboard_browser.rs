//! The dashboard in a real browser: a collector and two agents (`alpha`, `beta`) collecting
//! this host, an operator and a viewer token, then `tests/browser/dashboard.test.mjs` drives
//! Debian's headless Chromium through playwright-core against them (logging in, the fleet and
//! node pages, a live sample, acknowledging an alert, a CSV export, a comparison, the viewer's
//! page, the WebSocket's authentication, console errors) and screenshots every page into
//! `<target dir>/hcmon-screenshots/`. The checks live in the script, each a named step; this
//! test starts what it runs against and fails with the script's output.
//!
//! Needs `/usr/bin/chromium` (Debian `chromium`), `node` and `tests/browser/node_modules`
//! (`npm ci` there); `deploy/dev.sh test` installs all three. Without them the test is skipped
//! with the reason, except under `CI=true`, where a missing tool fails it.

use hcmon_tests::{Agent, Collector, bin_path, now_s};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// An alert that fires on both agents' first memory sample (no host uses none of its memory),
/// so the Alerts page has something to acknowledge; nothing else alerts.
const CONFIG: &str = r#"
[alerting]
default_rules = false

[alerting.missing_data]
agents = false

[[alerting.rules]]
name = "BrowserTestMemory"
selector = "node_memory_used_ratio"
direction = "above"
warning = 0.0001

[quality]
interval = "1s"
"#;

/// What the script needs: its folder, or why it cannot run here.
fn browser_tests() -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!("{chromium} is missing (Debian package `chromium`)"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node is missing (Debian packages `nodejs npm`)".into());
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Err(format!(
            "{}/node_modules is missing: `npm ci` there (deploy/dev.sh test does)",
            dir.display()
        ));
    }
    Ok(dir)
}

/// `<target dir>/hcmon-screenshots`, beside `debug/` (this test runs from `debug/deps/`).
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable has a path");
    let target = exe.ancestors().nth(3).expect("target/<profile>/deps/<exe>");
    target.join("hcmon-screenshots")
}

/// Makes a token with `role` through the API; its text.
async fn token(collector: &Collector, role: &str) -> anyhow::Result<String> {
    let url = format!("http://{}/api/v1/tokens", collector.http);
    let body = json!({"name": format!("browser-{role}"), "role": role});
    let answer = collector.client()?.post(url).json(&body).send().await?;
    anyhow::ensure!(answer.status() == 200, "{}", answer.text().await?);
    let answer: Value = answer.json().await?;
    Ok(answer["data"]["token"]
        .as_str()
        .expect("the token")
        .to_owned())
}

/// Polls `check` over the collector's API until it holds.
async fn wait_until(
    what: &str,
    collector: &Collector,
    check: impl AsyncFn(&Collector) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if check(collector).await.unwrap_or(false) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what}: not within 60 s; collector log:\n{}",
            collector.process.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_works_in_headless_chromium() -> anyhow::Result<()> {
    let script_dir = match browser_tests() {
        Ok(dir) => dir,
        Err(reason) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: {reason}");
            return Ok(());
        }
        Err(reason) => panic!("the browser tests cannot run under CI: {reason}"),
    };
    let dir = tempfile::tempdir()?;
    let collector = Collector::start_with_config(&dir.path().join("collector"), CONFIG)?;
    let agent = bin_path("hcmon-agent");
    let _agents: Vec<Agent> = ["alpha", "beta"]
        .iter()
        .map(|node| {
            let spool = dir.path().join(format!("spool-{node}"));
            Agent::start_binary(&agent, &collector.grpc_url(), node, &spool)
        })
        .collect();

    let cpu_of_both = async |c: &Collector| -> anyhow::Result<bool> {
        let query = [
            ("query", "count by (node) (node_cpu_usage_ratio)".to_owned()),
            ("time", now_s().to_string()),
        ];
        let answer = c.get_json("/api/v1/query", &query).await?;
        Ok(answer["data"]["result"].as_array().map_or(0, Vec::len) == 2)
    };
    wait_until("CPU samples of alpha and beta", &collector, cpu_of_both).await?;
    let firing = async |c: &Collector| -> anyhow::Result<bool> {
        let answer = c.get_json("/api/v1/alerts", &[]).await?;
        Ok(answer["data"]["alerts"]
            .as_array()
            .is_some_and(|alerts| alerts.iter().any(|a| a["hcmonState"] == "firing")))
    };
    wait_until("a firing BrowserTestMemory alert", &collector, firing).await?;

    // The last run's artefacts only.
    let shots = screenshot_dir();
    let _ = std::fs::remove_dir_all(&shots);
    let output = Command::new("node")
        .arg(script_dir.join("dashboard.test.mjs"))
        .current_dir(&script_dir)
        .env("HCMON_URL", format!("http://{}", collector.http))
        .env("HCMON_ADMIN_TOKEN", collector.token()?)
        .env("HCMON_OPERATOR_TOKEN", token(&collector, "operator").await?)
        .env("HCMON_VIEWER_TOKEN", token(&collector, "viewer").await?)
        .env("HCMON_NODES", "alpha,beta")
        .env("HCMON_SCREENSHOTS", &shots)
        .output()?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        eprintln!("{printed}");
    }
    let logs = collector.process.logs();
    let tail: Vec<&str> = logs.lines().rev().take(40).collect();
    assert!(
        output.status.success(),
        "dashboard.test.mjs failed ({}):\n{printed}\nthe collector's last log lines:\n{}",
        output.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    Ok(())
}

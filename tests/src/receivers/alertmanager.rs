//! Debian's real Alertmanager (`prometheus-alertmanager`) as a child process: a minimal config
//! (every alert routed to one receiver that sends nothing), storage in a temporary directory,
//! clustering off, on a free loopback port. Killed when dropped.

use anyhow::{Context, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const BINARY: &str = "/usr/bin/prometheus-alertmanager";

/// Every alert goes to a receiver without integrations: kept and listed, never sent on.
const CONFIG: &str = "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n";

/// A free port can be taken by someone else between our check and Alertmanager's bind.
const START_TRIES: usize = 3;

pub struct Alertmanager {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager and waits until `/-/ready` answers. Fails, rather than skips, when
    /// the binary is missing.
    pub async fn start() -> anyhow::Result<Self> {
        if !Path::new(BINARY).exists() {
            bail!(
                "{BINARY} is missing: run `deploy/dev.sh test`, which installs the \
                 prometheus-alertmanager package"
            );
        }
        let mut last_error = None;
        for _ in 0..START_TRIES {
            match Self::try_start().await {
                Ok(alertmanager) => return Ok(alertmanager),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("at least one try"))
    }

    async fn try_start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, CONFIG)?;
        let log = dir.path().join("alertmanager.log");
        let log_file = std::fs::File::create(&log)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(BINARY)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Empty disables the gossip cluster (and its UDP/TCP port 9094).
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {BINARY}"))?;
        let mut alertmanager = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        alertmanager.wait_ready(Duration::from_secs(30)).await?;
        Ok(alertmanager)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let ready = format!("{}/-/ready", self.url);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("alertmanager exited ({status}):\n{}", self.logs());
            }
            if reqwest::get(&ready)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "alertmanager not ready within {timeout:?}:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its log output so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /api/v2/alerts`: the alerts Alertmanager holds, as it reports them.
    pub async fn alerts(&self) -> anyhow::Result<Value> {
        let response = reqwest::get(format!("{}/api/v2/alerts", self.url)).await?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            bail!("GET /api/v2/alerts: {status}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        // Already gone is fine; reap it either way so no zombie outlives the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

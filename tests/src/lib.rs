//! Harness for multi-process tests: starts the real `hcmon-collector` and `hcmon-agent`
//! binaries on loopback ports, reads their logs, and talks to the collector's HTTP API.
//!
//! The binaries must be built first (`cargo build --bins`); the README's test command does so.

pub mod bench;
pub mod clocked;
pub mod hostile;
pub mod load;
pub mod node;
pub mod receivers;

use anyhow::{Context, bail};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Path of a workspace binary next to the running test executable (`target/<profile>/`).
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable has a path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test runs from target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` before the tests",
        path.display()
    );
    path
}

/// The Python with the foreign clients of `tests/python/requirements.txt` (the OpenTelemetry
/// SDK, `statsd`), which `deploy/dev.sh test` installs into `tests/python/.venv`.
pub fn python() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/.venv/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run `deploy/dev.sh test` (or `deploy/dev.sh python-deps`) once",
        path.display()
    );
    path
}

/// A script of `tests/python`.
pub fn python_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// The `hcmon` CLI pointed at a collector: its HTTP address and its data folder (where the
/// CLI finds the admin token).
pub fn hcmon_command(http: SocketAddr, data_dir: &Path) -> Command {
    let mut command = Command::new(bin_path("hcmon"));
    command
        .arg("--url")
        .arg(format!("http://{http}"))
        .arg("--data-dir")
        .arg(data_dir);
    command
}

/// Path of a workspace binary beside the running executable: for binaries of this crate (the
/// benchmarks) that run from `target/<profile>/` themselves.
pub fn bin_path_in(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.with_file_name(name)
}

/// Unix time now, in seconds.
pub fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Unix time now, in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// A child process whose stderr is collected; killed (SIGKILL) when dropped.
pub struct Process {
    name: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn spawn(name: &str, command: &mut Command) -> Self {
        let mut child = command
            .env("HCMON_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("log lock").push(line);
            }
        });
        Self {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self
                .log
                .lock()
                .expect("log lock")
                .iter()
                .find(|l| l.contains(needle))
            {
                return Ok(line.clone());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited with {status} before logging {needle:?}:\n{}",
                    self.name,
                    self.logs()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not log {needle:?} within {timeout:?}:\n{}",
                    self.name,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the process logged so far.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    /// SIGTERM, then waits for the process to exit (SIGKILL after 30 s).
    pub fn terminate(&mut self) {
        if !terminate(&mut self.child) {
            self.kill9();
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Debian's Prometheus (`/usr/bin/prometheus`) on a free loopback port, its data in a folder
/// of the caller's; killed when dropped.
pub struct Prometheus {
    pub process: Process,
    pub addr: SocketAddr,
}

impl Prometheus {
    /// Starts Prometheus with `config` (YAML, written to `<dir>/prometheus.yml`), its TSDB in
    /// `<dir>/prometheus`, and `extra` flags; returns once it is ready for queries.
    pub fn start(dir: &Path, config: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Command::new("prometheus")
            .arg("--version")
            .output()
            .context("prometheus is required (Debian package `prometheus`)")?;
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config)?;
        // A free port, released for Prometheus to bind; nothing else binds on loopback between.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut process = Process::spawn(
            "prometheus",
            Command::new("prometheus")
                .arg(format!("--config.file={}", config_file.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("prometheus").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .args(extra),
        );
        process.wait_for_log(
            "Server is ready to receive web requests",
            Duration::from_secs(60),
        )?;
        Ok(Self { process, addr })
    }

    /// The URL of a path of its HTTP API.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Polls `check` every 250 ms until it holds, or fails naming `what` once `patience` runs out.
pub async fn eventually<F, Fut>(patience: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + patience;
    while !check().await? {
        anyhow::ensure!(Instant::now() < deadline, "{what}: not within {patience:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// SIGTERM, then waits up to 30 s for `child` to exit; false if it did not.
pub fn terminate(child: &mut std::process::Child) -> bool {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Debian's VictoriaMetrics single-node server (`/usr/bin/victoria-metrics`) on a loopback
/// port, its data in a folder of the caller's; killed when dropped.
pub struct VictoriaMetrics {
    pub process: Process,
    pub addr: SocketAddr,
}

impl VictoriaMetrics {
    /// Starts it on `addr` (a free port when `None`; the same one to restart it) with `extra`
    /// flags; returns once it serves.
    pub fn start(dir: &Path, addr: Option<SocketAddr>, extra: &[&str]) -> anyhow::Result<Self> {
        Command::new("victoria-metrics")
            .arg("-version")
            .output()
            .context("victoria-metrics is required (Debian package `victoria-metrics`)")?;
        let addr = match addr {
            Some(addr) => addr,
            None => std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?,
        };
        let mut process = Process::spawn(
            "victoria-metrics",
            Command::new("victoria-metrics")
                .arg(format!("-storageDataPath={}", dir.display()))
                .arg(format!("-httpListenAddr={addr}"))
                .arg("-retentionPeriod=100y")
                .args(extra),
        );
        process.wait_for_log("starting http server at", Duration::from_secs(60))?;
        Ok(Self { process, addr })
    }

    /// The URL of a path of its HTTP API.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A running collector.
pub struct Collector {
    pub process: Process,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    /// Its data folder, where it writes its admin token.
    pub data_dir: PathBuf,
}

impl Collector {
    /// Starts a collector on `data_dir`; port 0 picks free ports.
    pub fn start(data_dir: &Path, grpc_port: u16, http_port: u16) -> anyhow::Result<Self> {
        Self::start_with(
            &bin_path("hcmon-collector"),
            data_dir,
            grpc_port,
            http_port,
            &[],
        )
    }

    /// Starts the collector binary at `binary` on free ports.
    pub fn start_binary(binary: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(binary, data_dir, 0, 0, &[])
    }

    /// Starts the collector binary at `binary` on free ports with extra arguments.
    pub fn start_binary_with(
        binary: &Path,
        data_dir: &Path,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        Self::start_with(binary, data_dir, 0, 0, extra)
    }

    /// Starts the collector binary at `binary` on the given loopback ports (0 picks one), so
    /// a restart can come back where its clients look for it.
    pub fn start_binary_on(
        binary: &Path,
        data_dir: &Path,
        ports: (u16, u16),
        extra: &[String],
    ) -> anyhow::Result<Self> {
        Self::start_with(binary, data_dir, ports.0, ports.1, extra)
    }

    /// Starts a collector on free ports with a config file holding `toml` (written beside
    /// `data_dir`).
    pub fn start_with_config(data_dir: &Path, toml: &str) -> anyhow::Result<Self> {
        let config = data_dir.with_extension("toml");
        std::fs::write(&config, toml)?;
        let args = ["--config".to_owned(), config.display().to_string()];
        Self::start_with(&bin_path("hcmon-collector"), data_dir, 0, 0, &args)
    }

    fn start_with(
        binary: &Path,
        data_dir: &Path,
        grpc_port: u16,
        http_port: u16,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let mut process = Process::spawn(
            "hcmon-collector",
            Command::new(binary)
                .args(extra)
                .arg("--data-dir")
                .arg(data_dir)
                .arg("--grpc-listen")
                .arg(format!("127.0.0.1:{grpc_port}"))
                .arg("--http-listen")
                .arg(format!("127.0.0.1:{http_port}")),
        );
        let line = process.wait_for_log("collector ready", Duration::from_secs(60))?;
        let field = |name: &str| -> anyhow::Result<SocketAddr> {
            let value = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .with_context(|| format!("no {name}= in {line:?}"))?;
            Ok(value.parse()?)
        };
        Ok(Self {
            grpc: field("grpc")?,
            http: field("http")?,
            process,
            data_dir: data_dir.to_owned(),
        })
    }

    /// The admin token the collector wrote to `<data dir>/admin.token` (waiting for it a
    /// little, though a ready collector has written it).
    pub fn token(&self) -> anyhow::Result<String> {
        let path = self.data_dir.join("admin.token");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match std::fs::read_to_string(&path) {
                Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(_) => bail!("{} is empty", path.display()),
                Err(e) => bail!("cannot read {}: {e}", path.display()),
            }
        }
    }

    /// A client that sends the admin token with every request.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        client_with(&self.token()?)
    }

    /// The URL agents use.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// GET a path of the HTTP API; fails on non-2xx.
    pub async fn get(&self, path_and_query: &str) -> anyhow::Result<String> {
        let url = format!("http://{}{}", self.http, path_and_query);
        let response = self
            .client()?
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            bail!("GET {url}: {status}: {body}");
        }
        Ok(body)
    }

    /// GET with URL-encoded query parameters, parsed as JSON.
    pub async fn get_json(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let client = self.client()?;
        let url = format!("http://{}{}", self.http, path);
        let response = client.get(&url).query(query).send().await?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            bail!("GET {url}: {status}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// Raw export of every series matching `selector`: one JSON value per series.
    pub async fn export(&self, selector: &str) -> anyhow::Result<Vec<Value>> {
        let client = self.client()?;
        let url = format!("http://{}/api/v1/export", self.http);
        let body = client
            .get(&url)
            .query(&[("match[]", selector)])
            .send()
            .await?
            .text()
            .await?;
        body.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
    }

    /// Polls until `check` holds for the `/metrics` text, or fails with the last text seen.
    pub async fn wait_for_metrics(
        &self,
        timeout: Duration,
        check: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.get("/metrics").await.unwrap_or_default();
            if check(&text) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                bail!(
                    "condition not met on /metrics within {timeout:?}; last scrape:\n{text}\ncollector log:\n{}",
                    self.process.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// A client that sends `token` as `Authorization: Bearer` with every request.
pub fn client_with(token: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse()?,
    );
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}

/// A running agent.
pub struct Agent {
    pub process: Process,
}

impl Agent {
    /// Starts the agent binary at `binary` with its default tiers.
    pub fn start_binary(binary: &Path, collector_url: &str, node: &str, spool_dir: &Path) -> Self {
        let process = Process::spawn(
            "hcmon-agent",
            Command::new(binary)
                .arg("--collector")
                .arg(collector_url)
                .arg("--node-name")
                .arg(node)
                .arg("--spool-dir")
                .arg(spool_dir),
        );
        Self { process }
    }

    /// Starts an agent with a config file holding `toml` (written beside the spool folder).
    pub fn start_with_config(
        collector_url: &str,
        node: &str,
        spool_dir: &Path,
        toml: &str,
    ) -> anyhow::Result<Self> {
        let config = spool_dir.with_extension("toml");
        std::fs::write(&config, toml)?;
        let process = Process::spawn(
            "hcmon-agent",
            Command::new(bin_path("hcmon-agent"))
                .arg("--config")
                .arg(&config)
                .arg("--collector")
                .arg(collector_url)
                .arg("--node-name")
                .arg(node)
                .arg("--spool-dir")
                .arg(spool_dir),
        );
        Ok(Self { process })
    }

    /// Starts the agent binary with exactly `args`.
    pub fn start_args(args: &[&str]) -> Self {
        let process = Process::spawn(
            "hcmon-agent",
            Command::new(bin_path("hcmon-agent")).args(args),
        );
        Self { process }
    }

    /// Starts the agent binary at `binary` with exactly `args` (for benchmarks, which run
    /// beside the binaries rather than from `deps/`).
    pub fn start_binary_args(binary: &Path, args: &[String]) -> Self {
        let process = Process::spawn("hcmon-agent", Command::new(binary).args(args));
        Self { process }
    }

    pub fn start(collector_url: &str, node: &str, spool_dir: &Path, interval: &str) -> Self {
        let process = Process::spawn(
            "hcmon-agent",
            Command::new(bin_path("hcmon-agent"))
                .arg("--collector")
                .arg(collector_url)
                .arg("--node-name")
                .arg(node)
                .arg("--spool-dir")
                .arg(spool_dir)
                .arg("--interval")
                .arg(interval),
        );
        Self { process }
    }
}

/// A selector of what a node's agent sent, leaving out the series the collector writes about
/// the node itself (`up`, its alerts, its anomaly counts: see `collector/src/recorded/`).
pub fn agent_series(node: &str) -> String {
    format!(
        r#"{{node="{node}",__name__!~"up|ALERTS|ALERTS_FOR_STATE|hcmon_anomalous_series|hcmon_node_anomaly_score"}}"#
    )
}

/// The (timestamp ms, value) pairs of one exported series.
pub fn points(series: &Value) -> Vec<(i64, f64)> {
    let ts = series["timestamps"].as_array().cloned().unwrap_or_default();
    let vs = series["values"].as_array().cloned().unwrap_or_default();
    ts.iter()
        .zip(vs.iter())
        .map(|(t, v)| (t.as_i64().unwrap_or(0), v.as_f64().unwrap_or(f64::NAN)))
        .collect()
}

/// `promtool check metrics` over an exposition: Ok when Prometheus could scrape it and promtool
/// finds nothing to lint but node_exporter's own `/proc/meminfo` names (`node_memory_MemTotal_bytes`
/// and the like, which it flags as camelCase and which the agent keeps so node_exporter's
/// dashboards work); else an error with promtool's findings.
pub fn promtool_check_metrics(text: &str) -> anyhow::Result<()> {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("promtool is required (Debian package `prometheus`)")?;
    std::io::Write::write_all(&mut promtool.stdin.take().expect("stdin"), text.as_bytes())?;
    let output = promtool.wait_with_output()?;
    // Exit code 3: lint findings only, the exposition itself parsed.
    let node_exporter_names_only = output.status.code() == Some(3)
        && String::from_utf8_lossy(&output.stdout).lines().all(|line| {
            line.starts_with("node_memory_")
                && line.ends_with("metric names should be written in 'snake_case' not 'camelCase'")
        });
    anyhow::ensure!(
        output.status.success() || node_exporter_names_only,
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// One Prometheus remote-write request (snappy, protobuf) to the collector at `http`: the
/// answer's status and body.
pub async fn remote_write(
    client: &reqwest::Client,
    http: SocketAddr,
    request: &hcmon_proto::prometheus::WriteRequest,
) -> anyhow::Result<(u16, String)> {
    let body = snap::raw::Encoder::new().compress_vec(&prost::Message::encode_to_vec(request))?;
    let response = client
        .post(format!("http://{http}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// The newest point of an agent's `hcmon_agent_samples_total` that can be compared with what is
/// stored at or before its timestamp. The count at a basic batch covers every batch spooled
/// before it; a detailed (1 min) or extended (5 min) batch stamped on the minute is collected
/// for a moment and may be spooled after a later basic batch. Points in the first ten seconds
/// after a minute are skipped, so no such batch is in flight at the chosen one.
pub fn settled_count(counter: &[(i64, f64)]) -> Option<(i64, f64)> {
    counter
        .iter()
        .rev()
        .find(|(ts, _)| ts.rem_euclid(60_000) >= 10_000)
        .copied()
}

/// A WebSocket client of the collector's live stream (`/api/v1/stream`).
pub type StreamSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the live stream of the collector at `http`, sending `header` (`Authorization`,
/// `Cookie`) with the upgrade request when given.
pub async fn open_stream(
    http: SocketAddr,
    header: Option<(&str, String)>,
) -> Result<StreamSocket, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{http}/api/v1/stream").into_client_request()?;
    if let Some((name, value)) = header {
        let name = http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        let value = http::HeaderValue::from_str(&value).expect("a header value");
        request.headers_mut().insert(name, value);
    }
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(socket)
}

/// The next JSON text frame of a live stream within `timeout` (pings and pongs skipped).
pub async fn next_stream_message(
    socket: &mut StreamSocket,
    timeout: Duration,
) -> anyhow::Result<Value> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .context("no stream message in time")?
            .context("the stream ended")??;
        match frame {
            Message::Text(text) => return Ok(serde_json::from_str(text.as_str())?),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            Message::Close(frame) => bail!("the stream was closed: {frame:?}"),
            Message::Binary(_) => bail!("a binary frame on the stream"),
        }
    }
}

/// Sends one JSON text frame on a live stream.
pub async fn send_stream_message(socket: &mut StreamSocket, message: &Value) -> anyhow::Result<()> {
    use futures_util::SinkExt;
    let text = serde_json::to_string(message)?;
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
        .await?;
    Ok(())
}

/// One sample of [`write_request`]: metric name, other labels, Unix ms, value.
pub type WrittenSample<'a> = (&'a str, &'a [(&'a str, &'a str)], i64, f64);

/// A remote-write request of one sample per series.
pub fn write_request(samples: &[WrittenSample]) -> hcmon_proto::prometheus::WriteRequest {
    use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
    let timeseries = samples
        .iter()
        .map(|(name, labels, timestamp, value)| {
            let mut pairs: Vec<(&str, &str)> = vec![("__name__", name)];
            pairs.extend(labels.iter().copied());
            pairs.sort();
            TimeSeries {
                labels: pairs
                    .into_iter()
                    .map(|(name, value)| Label {
                        name: name.to_owned(),
                        value: value.to_owned(),
                    })
                    .collect(),
                samples: vec![Sample {
                    value: *value,
                    timestamp: *timestamp,
                }],
            }
        })
        .collect();
    WriteRequest { timeseries }
}

/// Remote-writes 400 minutes of node "nas" where CPU and received bytes always moved together,
/// the newest minute busy (CPU 0.75) with almost no traffic: each value ordinary on its own,
/// only a node model sees the combination. Returns that minute's start.
pub async fn write_busy_silent_node(collector: &Collector) -> anyhow::Result<i64> {
    let now = (now_s() * 1000.0) as i64;
    let last_minute = now - now % 60_000 - 60_000;
    let minutes = 400;
    let first = last_minute - (minutes - 1) * 60_000;
    let mut seed = 11u64;
    let mut uniform = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut cpu, mut memory, mut network) = (Vec::new(), Vec::new(), Vec::new());
    let mut received = 0.0;
    for m in 0..minutes {
        let load = 0.2 + 0.6 * uniform();
        let last = m == minutes - 1;
        let timestamp = first + m * 60_000 + 30_000;
        let cpu_value = if last { 0.75 } else { load + 0.02 * uniform() };
        let rate = if last {
            1e3
        } else {
            1e6 * load + 1e4 * uniform()
        };
        received += rate * 60.0;
        cpu.push(hcmon_proto::prometheus::Sample {
            value: cpu_value,
            timestamp,
        });
        memory.push(hcmon_proto::prometheus::Sample {
            value: 0.5 + 0.01 * uniform(),
            timestamp,
        });
        network.push(hcmon_proto::prometheus::Sample {
            value: received,
            timestamp,
        });
    }
    let series = [
        ("node_cpu_usage_ratio", cpu),
        ("node_memory_used_ratio", memory),
        ("node_network_receive_bytes_total", network),
    ];
    let request = hcmon_proto::prometheus::WriteRequest {
        timeseries: series
            .into_iter()
            .map(|(name, samples)| hcmon_proto::prometheus::TimeSeries {
                labels: vec![
                    hcmon_proto::prometheus::Label {
                        name: "__name__".into(),
                        value: name.into(),
                    },
                    hcmon_proto::prometheus::Label {
                        name: "node".into(),
                        value: "nas".into(),
                    },
                ],
                samples,
            })
            .collect(),
    };
    let (status, body) = remote_write(&collector.client()?, collector.http, &request).await?;
    anyhow::ensure!(status == 204, "{body}");
    Ok(last_minute)
}

//! Hostile traffic against a TLS collector while a healthy agent streams (issue 13, "Proof"):
//! ten kinds of attack run at once, each from its own task at a bounded rate, for `--seconds`.
//! Meanwhile the collector's RSS and open files are sampled. At the end the healthy agent's data
//! is checked: no gap between stored samples longer than one interval plus jitter, no lost
//! batch, every sample it counted stored, its spool drained.
//!
//! `just hostile` (release build). Prints what each kind sent and how it was answered, the
//! collector's refusal counters, the healthy agent's figures and the memory figures; exits
//! non-zero when the healthy agent suffered or the collector died.
#![allow(clippy::print_stdout)]

use anyhow::{Context, bail};
use clap::Parser;
use hcmon_agent::tls::identity::Identity;
use hcmon_collector::outbound::OutboundClient;
use hcmon_common::enrollment::EnrollmentToken;
use hcmon_tests::hostile::{self, Mallory, Pace, Tally, Target};
use hcmon_tests::{Agent, Collector, bin_path_in, now_s, points};
use http::{HeaderMap, Method};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;

#[derive(Debug, Parser)]
struct Args {
    /// How long the hostile traffic runs.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Connections opened and held idle (half on each listener, half of those with the TLS
    /// handshake done).
    #[arg(long, default_value_t = 2000)]
    idle: usize,
    /// Slowloris connections per listener and kind (ClientHello, headers): four groups.
    #[arg(long, default_value_t = 100)]
    slowloris: usize,
    /// Only these kinds (1 to 10, comma-separated), to find which one hurts; all by default.
    #[arg(long, value_delimiter = ',')]
    kinds: Vec<usize>,
}

/// The healthy agent's collection interval, and the jitter its gaps may add to it.
const INTERVAL: Duration = Duration::from_secs(1);
const JITTER: Duration = Duration::from_millis(1500);

/// The shipped defaults, with TLS on.
const COLLECTOR_CONFIG: &str = "[tls]\nenabled = true\n";

/// The collector's memory and open files, as sampled.
#[derive(Default)]
struct Memory {
    start_rss_kb: AtomicU64,
    peak_rss_kb: AtomicU64,
    last_rss_kb: AtomicU64,
    peak_fds: AtomicU64,
    last_fds: AtomicU64,
    samples: AtomicU64,
}

/// A field of `/proc/<pid>/status`, in kB.
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Whether the process is still running (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_owned();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

fn open_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64)
}

/// Samples RSS every 250 ms and open files every second until `stop`.
async fn watch(pid: u32, memory: Arc<Memory>, stop: Instant) {
    let mut round = 0u64;
    while Instant::now() < stop {
        if let Some(rss) = status_kb(pid, "VmRSS") {
            if round == 0 {
                memory.start_rss_kb.store(rss, Ordering::Relaxed);
            }
            memory.peak_rss_kb.fetch_max(rss, Ordering::Relaxed);
            memory.last_rss_kb.store(rss, Ordering::Relaxed);
            memory.samples.fetch_add(1, Ordering::Relaxed);
        }
        if round.is_multiple_of(4) {
            let fds = open_files(pid);
            memory.peak_fds.fetch_max(fds, Ordering::Relaxed);
            memory.last_fds.store(fds, Ordering::Relaxed);
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct Api {
    client: OutboundClient,
    base: String,
    token: String,
}

impl Api {
    fn new(collector: &Collector, ca_pem: &str) -> anyhow::Result<Self> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        Ok(Self {
            client: OutboundClient::trusting(roots, "hcmon-hostile")?,
            base: format!("https://{}", collector.http),
            token: collector.token()?,
        })
    }

    async fn text(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<String> {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {}", self.token).parse()?);
        headers.insert("content-type", "application/json".parse()?);
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let url = format!("{}{path}", self.base);
        let call = self.client.call(method, &url, headers, body, 512 << 20);
        let answer = tokio::time::timeout(Duration::from_secs(60), call)
            .await
            .with_context(|| format!("{url}: no answer within 60 s"))?
            .with_context(|| url.clone())?;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        if !answer.status.is_success() {
            bail!("{url}: {}: {text}", answer.status);
        }
        Ok(text)
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&self.text(method, path, body).await?)?)
    }

    async fn export(&self, selector: &str) -> anyhow::Result<Vec<Value>> {
        let path = format!("/api/v1/export?match[]={}", encode(selector));
        let text = self.text(Method::GET, &path, None).await?;
        text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
    }

    async fn enroll(&self, dir: &Path, node: &str, target: &Endpoint) -> anyhow::Result<Identity> {
        let token = self.enrollment_token(node).await?;
        let token = EnrollmentToken::parse(&token).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(hcmon_agent::enrollment::enroll(target, &token, node, &dir.join(node)).await?)
    }

    async fn enrollment_token(&self, node: &str) -> anyhow::Result<String> {
        let answer = self
            .json(
                Method::POST,
                "/api/v1/pki/enrollments",
                Some(json!({"node": node, "ttl": "1h"})),
            )
            .await?;
        Ok(answer["data"]["token"]
            .as_str()
            .context("no token in the answer")?
            .to_owned())
    }

    async fn healthy_entry(&self) -> anyhow::Result<Value> {
        let agents = self.json(Method::GET, "/api/v1/agents", None).await?;
        agents["data"]
            .as_array()
            .and_then(|a| a.iter().find(|n| n["node"] == "healthy").cloned())
            .context("healthy is not in /api/v1/agents")
    }
}

/// Percent-encodes a query parameter's value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The largest step between consecutive stored timestamps of any of `series`, and when.
fn largest_gap(series: &[Value]) -> Option<(i64, i64, String)> {
    let mut largest: Option<(i64, i64, String)> = None;
    for s in series {
        let name = s["metric"].to_string();
        for pair in points(s).windows(2) {
            let gap = pair[1].0 - pair[0].0;
            if largest.as_ref().is_none_or(|(g, _, _)| gap > *g) {
                largest = Some((gap, pair[0].0, name.clone()));
            }
        }
    }
    largest
}

fn spool_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "pb"))
            .count()
    })
}

struct Findings {
    problems: Vec<String>,
}

impl Findings {
    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.problems.push(problem());
        }
    }
}

async fn check_healthy(
    api: &Api,
    spool: &Path,
    hostile_from_ms: i64,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    println!(
        "\n== healthy agent (interval {INTERVAL:?}, allowed gap {:?})",
        INTERVAL + JITTER
    );
    // The spool drains: at most the batch in flight remains.
    let batches = spool.join("batches");
    let deadline = Instant::now() + Duration::from_secs(15);
    while spool_files(&batches) > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (pending, rejected) = (spool_files(&batches), spool_files(&spool.join("rejected")));
    println!("spool: {pending} batch file(s) pending, {rejected} set aside as rejected");
    findings.check(pending <= 1, || {
        format!("the healthy agent's spool still holds {pending} batches")
    });
    findings.check(rejected == 0, || {
        format!("the collector rejected {rejected} of the healthy agent's batches")
    });

    let entry = api.healthy_entry().await?;
    let lost = entry["lost_batches"].as_u64().unwrap_or(u64::MAX);
    println!(
        "/api/v1/agents: connected {}, last_durable_seq {}, lost_batches {lost}",
        entry["connected"], entry["last_durable_seq"]
    );
    findings.check(lost == 0, || format!("lost_batches for healthy is {lost}"));
    findings.check(entry["connected"] == true, || {
        "healthy is not connected".into()
    });

    let allowed = (INTERVAL + JITTER).as_millis() as i64;
    for selector in [
        "node_cpu_usage_ratio{node=\"healthy\"}",
        "hcmon_agent_samples_total{node=\"healthy\"}",
    ] {
        let series = api.export(selector).await?;
        let stored: usize = series.iter().map(|s| points(s).len()).sum();
        let during: usize = series
            .iter()
            .map(|s| {
                points(s)
                    .iter()
                    .filter(|(ts, _)| *ts >= hostile_from_ms)
                    .count()
            })
            .sum();
        match largest_gap(&series) {
            Some((gap, at, name)) => {
                println!(
                    "{selector}: {} series, {stored} samples ({during} during the attack), largest gap {gap} ms at {:+.1} s into the attack ({name})",
                    series.len(),
                    (at - hostile_from_ms) as f64 / 1000.0
                );
                findings.check(gap <= allowed, || {
                    format!("{selector}: a gap of {gap} ms (allowed {allowed} ms) at {:+.1} s into the attack", (at - hostile_from_ms) as f64 / 1000.0)
                });
            }
            None => findings
                .problems
                .push(format!("{selector}: no samples stored")),
        }
    }

    // Nothing acked is lost: every sample the agent counted up to a settled point is stored.
    let counter = api
        .export("hcmon_agent_samples_total{node=\"healthy\"}")
        .await?;
    let counter = counter.first().map(points).unwrap_or_default();
    if let Some((last_ts, counted)) = hcmon_tests::settled_count(&counter) {
        let all = api.export("{node=\"healthy\"}").await?;
        let stored: usize = all
            .iter()
            .map(|s| points(s).iter().filter(|(ts, _)| *ts <= last_ts).count())
            .sum();
        println!("samples the agent counted (up to a settled batch): {counted}, stored: {stored}");
        findings.check(stored as f64 == counted, || {
            format!("the healthy agent counted {counted} samples, the collector holds {stored}")
        });
    } else {
        findings
            .problems
            .push("no settled sample count from the healthy agent".into());
    }
    Ok(())
}

/// The collector's refusal counters from `/metrics`.
async fn print_refusals(api: &Api) -> anyhow::Result<()> {
    let text = api.text(Method::GET, "/metrics", None).await?;
    println!("\n== refusal counters (/metrics)");
    for prefix in [
        "hcmon_collector_refused_requests_total{",
        "hcmon_collector_rejected_batches_total{",
        "hcmon_collector_remote_write_requests_total{",
        "hcmon_collector_lost_batches_total",
        "hcmon_collector_series ",
        "hcmon_collector_head_series ",
        "hcmon_collector_connected_agents ",
    ] {
        for line in text.lines().filter(|l| l.starts_with(prefix)) {
            println!("  {line}");
        }
    }
    Ok(())
}

/// An honest node's view during the attack: every 2 s, `newcomer` (enrolled) connects over
/// mutual TLS and registers, as a new or reconnecting agent would. Returns how long each took
/// (None: refused or no answer within the channel's limits).
async fn probe_newcomer(target: Arc<Target>, identity: Identity) -> Vec<Option<Duration>> {
    let mut took = Vec::new();
    let mut pace = Pace::every(Duration::from_secs(2));
    while pace.next(&target).await {
        let started = Instant::now();
        let outcome = target.register(Some(&identity), "newcomer").await;
        took.push((outcome == "registered").then(|| started.elapsed()));
    }
    took
}

fn print_newcomer(took: &[Option<Duration>]) {
    let mut ok: Vec<Duration> = took.iter().flatten().copied().collect();
    ok.sort();
    let failed = took.len() - ok.len();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    println!(
        "\n== an enrolled newcomer registering every 2 s during the attack: {} ok, {failed} failed; connect + register p50 {:.0} ms, max {:.0} ms",
        ok.len(),
        ms(ok.get(ok.len() / 2)),
        ms(ok.last())
    );
}

/// What one kind sent and how it was answered; nothing for a kind left out.
fn print_tally(tally: &Tally) {
    let outcomes = tally.outcomes();
    let sent: u64 = outcomes.values().sum();
    if sent == 0 {
        return;
    }
    println!("\n[{}] {sent} sent", tally.kind);
    for (outcome, n) in &outcomes {
        println!("  {n:>8}  {outcome}");
    }
}

fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

async fn wait_for_data(api: &Api, agent: &Agent) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let series = api
            .export("node_cpu_usage_ratio{node=\"healthy\"}")
            .await
            .unwrap_or_default();
        if series.iter().any(|s| points(s).len() >= 3) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the healthy agent's data did not arrive within 60 s:\n{}",
                agent.process.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One file per held connection, here and in the collector (which inherits the limit).
    let needed = (args.idle + 4 * args.slowloris) as u64 + 512;
    let limit = open_file_limit().unwrap_or(0);
    if limit < needed {
        bail!(
            "the open-file limit is {limit}, this run needs about {needed} (and so does the \
             collector it starts): raise it with `ulimit -n {needed}` (deploy/dev.sh hostile \
             does) or pass a smaller --idle / --slowloris"
        );
    }
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("collector");
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, COLLECTOR_CONFIG)?;
    let collector = Collector::start_binary_with(
        &bin_path_in("hcmon-collector"),
        &data_dir,
        &["--config".to_owned(), config.display().to_string()],
    )?;
    let pid = collector.process.pid();
    let ca_pem = std::fs::read_to_string(data_dir.join("pki/ca.crt"))?;
    let api = Api::new(&collector, &ca_pem)?;
    let ca_pin = hcmon_agent::tls::pinned::pin_of(
        &hcmon_agent::tls::identity::first_certificate(&ca_pem).map_err(anyhow::Error::msg)?,
    );
    println!(
        "collector pid {pid}: gRPC {} HTTP {} (TLS), data in {}",
        collector.grpc,
        collector.http,
        data_dir.display()
    );

    // The healthy agent: enrolled, streaming every second.
    let grpc_url = format!("https://{}", collector.grpc);
    let spool = dir.path().join("healthy-spool");
    let identity_dir = dir.path().join("healthy-identity");
    let enroll_token = api.enrollment_token("healthy").await?;
    let agent_args: Vec<String> = [
        "--collector",
        &grpc_url,
        "--node-name",
        "healthy",
        "--spool-dir",
        &spool.display().to_string(),
        "--identity-dir",
        &identity_dir.display().to_string(),
        "--interval",
        "1s",
        "--enroll-token",
        &enroll_token,
    ]
    .map(str::to_owned)
    .to_vec();
    let agent = Agent::start_binary_args(&bin_path_in("hcmon-agent"), &agent_args);
    wait_for_data(&api, &agent).await?;
    println!("healthy agent streaming");

    // The hostile nodes, enrolled legitimately.
    let endpoint = Endpoint::from_shared(grpc_url.clone())?;
    let identities = dir.path().join("mallory");
    let mallory = Arc::new(Mallory {
        poser: api.enroll(&identities, "mallory", &endpoint).await?,
        bomb: api.enroll(&identities, "mallory-bomb", &endpoint).await?,
        big: api.enroll(&identities, "mallory-big", &endpoint).await?,
        garbage: api
            .enroll(&identities, "mallory-garbage", &endpoint)
            .await?,
    });
    let newcomer = api.enroll(&identities, "newcomer", &endpoint).await?;

    let started = Instant::now();
    let hostile_from_ms = (now_s() * 1000.0) as i64;
    let target = Arc::new(Target {
        grpc: collector.grpc,
        http: collector.http,
        ca_pem: ca_pem.clone(),
        ca_pin,
        token: collector.token()?,
        until: started + Duration::from_secs(args.seconds),
    });
    let memory = Arc::new(Memory::default());
    let watcher = tokio::spawn(watch(
        pid,
        memory.clone(),
        target.until + Duration::from_secs(5),
    ));
    println!(
        "hostile traffic for {} s: {} idle connections, {} slowloris connections",
        args.seconds,
        args.idle,
        4 * args.slowloris
    );

    let tallies: Vec<Arc<Tally>> = [
        "1 no TLS",
        "2 bad certificates",
        "3 wrong node names",
        "4 token guessing",
        "5 slowloris",
        "6 oversized bodies",
        "7 idle connections and streams",
        "8 cardinality bomb",
        "9 malformed protobuf",
        "10 garbage remote write",
    ]
    .into_iter()
    .map(Tally::new)
    .collect();
    let t = |i: usize| tallies[i].clone();
    let attacks: Vec<Pin<Box<dyn Future<Output = ()> + Send>>> = vec![
        Box::pin(hostile::no_tls(target.clone(), t(0))),
        Box::pin(hostile::bad_certificates(target.clone(), t(1))),
        Box::pin(hostile::wrong_names(target.clone(), t(2), mallory.clone())),
        Box::pin(hostile::token_guessing(target.clone(), t(3))),
        Box::pin(hostile::slowloris(target.clone(), t(4), args.slowloris)),
        Box::pin(hostile::oversized(target.clone(), t(5), mallory.clone())),
        Box::pin(hostile::idle_streams(
            target.clone(),
            t(6),
            mallory.clone(),
            args.idle,
        )),
        Box::pin(hostile::cardinality_bomb(
            target.clone(),
            t(7),
            mallory.clone(),
        )),
        Box::pin(hostile::malformed_protobuf(
            target.clone(),
            t(8),
            mallory.clone(),
        )),
        Box::pin(hostile::garbage_remote_write(target.clone(), t(9))),
    ];
    let kinds: Vec<JoinHandle<()>> = attacks
        .into_iter()
        .enumerate()
        .filter(|(i, _)| args.kinds.is_empty() || args.kinds.contains(&(i + 1)))
        .map(|(_, attack)| tokio::spawn(attack))
        .collect();
    let newcomer = tokio::spawn(probe_newcomer(target.clone(), newcomer));
    let mut progress = Pace::every(Duration::from_secs(10));
    while progress.next(&target).await && alive(pid) {
        println!(
            "  {:>4.0} s: RSS {:.1} MB, {} open files",
            started.elapsed().as_secs_f64(),
            memory.last_rss_kb.load(Ordering::Relaxed) as f64 / 1024.0,
            memory.last_fds.load(Ordering::Relaxed)
        );
    }
    let deadline = tokio::time::Instant::from_std(target.until + Duration::from_secs(70));
    for kind in kinds {
        let abort = kind.abort_handle();
        if tokio::time::timeout_at(deadline, kind).await.is_err() {
            abort.abort();
        }
    }
    println!(
        "hostile traffic stopped after {:.0} s; settling for 5 s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = watcher.await;

    let newcomer = newcomer.await.unwrap_or_default();
    println!("\n== what each kind sent and how it was answered");
    for tally in &tallies {
        print_tally(tally);
    }

    print_newcomer(&newcomer);
    let mut findings = Findings {
        problems: Vec::new(),
    };
    if alive(pid) {
        print_refusals(&api).await?;
        check_healthy(&api, &spool, hostile_from_ms, &mut findings).await?;
    } else {
        findings.problems.push(format!(
            "the collector died during the attack; its log:\n{}",
            collector.process.logs()
        ));
    }
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!("\n== collector memory and files");
    println!(
        "RSS at the start of the attack {:.1} MB, peak {:.1} MB (VmHWM {:.1} MB), at the end {:.1} MB ({} samples every 250 ms)",
        mb(memory.start_rss_kb.load(Ordering::Relaxed)),
        mb(memory.peak_rss_kb.load(Ordering::Relaxed)),
        mb(status_kb(pid, "VmHWM").unwrap_or(0)),
        mb(memory.last_rss_kb.load(Ordering::Relaxed)),
        memory.samples.load(Ordering::Relaxed)
    );
    println!(
        "open files: peak {}, at the end {}",
        memory.peak_fds.load(Ordering::Relaxed),
        open_files(pid)
    );
    drop(agent);
    drop(collector);
    if findings.problems.is_empty() {
        println!("\nOK: the healthy agent streamed through the attack without a gap or a loss");
        Ok(())
    } else {
        for problem in &findings.problems {
            println!("FAILED: {problem}");
        }
        bail!("{} check(s) failed", findings.problems.len())
    }
}

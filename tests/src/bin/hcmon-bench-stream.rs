//! `hcmon-bench-stream`: live stream latency, from a sample's arrival at the collector to the
//! dashboard pages that show it.
//!
//! A release collector (default config) gets `--nodes` node-like hosts' samples by remote
//! write, one request every `1 / --rate` s for `--seconds`, each stamped with its own
//! millisecond; beside each host's 16 page series (CPU by mode, memory, filesystem, network,
//! load) go `--noise` series no page shows, which every connection must still route. Meanwhile
//! `--clients` WebSocket clients each subscribe as a node page does, to one host's series.
//! Every point a client receives is timed twice: from just before its request was sent, and
//! from when the request was answered 2xx (the sample stored; a point may arrive before the
//! answer is read, which shows as a negative figure). The report gives p50/p99/max over all
//! clients and points, and the points lost (`lagged`) or missing.
//!
//! Run by `deploy/dev.sh bench-stream` (release build).
// A benchmark's report goes to stdout.
#![allow(clippy::print_stdout)]

use anyhow::{Context, bail};
use futures_util::StreamExt;
use hcmon_tests::bench::{start_collector, wait_http};
use hcmon_tests::{
    StreamSocket, WrittenSample, open_stream, remote_write, send_stream_message, write_request,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

struct Args {
    clients: usize,
    nodes: usize,
    noise: usize,
    rate: f64,
    seconds: u64,
    work: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        clients: 20,
        nodes: 10,
        noise: 200,
        rate: 10.0,
        seconds: 30,
        work: std::env::temp_dir().join("hcmon-bench-stream"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--clients" => args.clients = value()?.parse().context("--clients")?,
            "--nodes" => args.nodes = value()?.parse().context("--nodes")?,
            "--noise" => args.noise = value()?.parse().context("--noise")?,
            "--rate" => args.rate = value()?.parse().context("--rate")?,
            "--seconds" => args.seconds = value()?.parse().context("--seconds")?,
            "--work" => args.work = value()?.into(),
            "--help" => {
                println!(
                    "hcmon-bench-stream [--clients N (20)] [--nodes N (10)] [--noise N (200)]\n\
                     \x20                  [--rate REQUESTS/S (10)] [--seconds N (30)] [--work DIR]\n\
                     Sample → WebSocket latency of the live stream with N open node pages."
                );
                std::process::exit(0);
            }
            other => bail!("unknown flag {other:?} (see --help)"),
        }
    }
    anyhow::ensure!(
        args.clients > 0 && args.nodes > 0 && args.rate > 0.0 && args.seconds > 0,
        "--clients, --nodes, --rate and --seconds must be positive"
    );
    Ok(args)
}

const MODES: [&str; 3] = ["user", "system", "idle"];
const CPUS: [&str; 4] = ["0", "1", "2", "3"];

/// Page series per node: CPU by mode and core, and one each of memory, filesystem, network
/// and load.
const PAGE_SERIES: usize = MODES.len() * CPUS.len() + 4;

/// What a node page subscribes to.
fn page_selectors(node: &str) -> Vec<String> {
    vec![
        format!("{{__name__=~\"node_cpu.*\",node=\"{node}\"}}"),
        format!("node_memory_MemAvailable_bytes{{node=\"{node}\"}}"),
        format!("node_filesystem_avail_bytes{{node=\"{node}\"}}"),
        format!("{{__name__=~\"node_network_.*_bytes_total\",node=\"{node}\"}}"),
        format!("node_load1{{node=\"{node}\"}}"),
    ]
}

/// Series of one request (name, labels), every one of them at one timestamp.
fn series_set(nodes: usize, noise: usize) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let pair = |n: &str, v: &str| (n.to_owned(), v.to_owned());
    for node in 0..nodes {
        let node = format!("node-{node:02}");
        for cpu in CPUS {
            for mode in MODES {
                let labels = vec![pair("node", &node), pair("cpu", cpu), pair("mode", mode)];
                out.push(("node_cpu_seconds_total".to_owned(), labels));
            }
        }
        out.push((
            "node_memory_MemAvailable_bytes".into(),
            vec![pair("node", &node)],
        ));
        let fs = vec![pair("node", &node), pair("mountpoint", "/")];
        out.push(("node_filesystem_avail_bytes".into(), fs));
        let net = vec![pair("node", &node), pair("device", "eth0")];
        out.push(("node_network_receive_bytes_total".into(), net));
        out.push(("node_load1".into(), vec![pair("node", &node)]));
    }
    for i in 0..noise {
        let labels = vec![pair("node", "elsewhere"), pair("i", &i.to_string())];
        out.push(("app_requests_total".to_owned(), labels));
    }
    out
}

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    since.as_millis() as i64
}

/// When each request was sent and answered, by its timestamp.
type Sent = Arc<Mutex<HashMap<i64, (Instant, Instant)>>>;

/// What one client saw: each point's timestamp and arrival, and messages lost.
#[derive(Default)]
struct Seen {
    arrivals: Vec<(i64, Instant)>,
    lagged: u64,
}

/// A client on `node`'s page until `stop`; what it saw.
async fn client(mut socket: StreamSocket, stop: tokio::sync::watch::Receiver<bool>) -> Seen {
    let mut seen = Seen::default();
    let mut stop = stop;
    loop {
        let frame = tokio::select! {
            frame = socket.next() => frame,
            _ = stop.changed() => break,
        };
        let arrived = Instant::now();
        let Some(Ok(Message::Text(text))) = frame else {
            match frame {
                Some(Ok(_)) => continue,
                _ => break,
            }
        };
        let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        match message["type"].as_str() {
            Some("samples") => {
                for series in message["series"].as_array().into_iter().flatten() {
                    for point in series["points"].as_array().into_iter().flatten() {
                        if let Some(ts) = point[0].as_i64() {
                            seen.arrivals.push((ts, arrived));
                        }
                    }
                }
            }
            Some("lagged") => seen.lagged += message["dropped"].as_u64().unwrap_or(0),
            _ => {}
        }
    }
    seen
}

async fn open_page(http: SocketAddr, token: &str, node: &str) -> anyhow::Result<StreamSocket> {
    let bearer = Some(("authorization", format!("Bearer {token}")));
    let mut socket = open_stream(http, bearer).await?;
    let subscribe = json!({"type": "subscribe", "id": "page", "match": page_selectors(node)});
    send_stream_message(&mut socket, &subscribe).await?;
    Ok(socket)
}

/// Sends a request every `1 / rate` s for `seconds`, each at its own millisecond; how many.
async fn write(
    client: &reqwest::Client,
    http: SocketAddr,
    args: &Args,
    seconds: u64,
    sent: &Sent,
) -> anyhow::Result<usize> {
    let series = series_set(args.nodes, args.noise);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    let end = Instant::now() + Duration::from_secs(seconds);
    let (mut last_ts, mut requests) = (0, 0);
    while Instant::now() < end {
        tick.tick().await;
        let ts = now_ms().max(last_ts + 1);
        last_ts = ts;
        let labels: Vec<Vec<(&str, &str)>> = (series.iter())
            .map(|(_, l)| l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect())
            .collect();
        let samples: Vec<WrittenSample> = (series.iter().zip(&labels))
            .enumerate()
            .map(|(i, ((name, _), labels))| (name.as_str(), labels.as_slice(), ts, i as f64))
            .collect();
        let request = write_request(&samples);
        let before = Instant::now();
        let (status, body) = remote_write(client, http, &request).await?;
        let answered = Instant::now();
        anyhow::ensure!(
            (200..300).contains(&status),
            "remote write: {status} {body}"
        );
        sent.lock()
            .expect("not poisoned")
            .insert(ts, (before, answered));
        requests += 1;
    }
    Ok(requests)
}

/// `p` of sorted milliseconds.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(what: &str, mut latencies: Vec<f64>) {
    latencies.sort_by(f64::total_cmp);
    if latencies.is_empty() {
        println!("{what:<48} no points");
        return;
    }
    println!(
        "{what:<48} p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work)?;
    let config = args.work.join("collector.toml");
    std::fs::write(&config, "")?;
    let collector = start_collector(&args.work, "hcmon", &config)?;
    let http: SocketAddr = format!("127.0.0.1:{}", collector.http).parse()?;
    wait_http(&format!("http://{http}/healthz")).await?;
    let token = collector.token.clone();
    let writer = hcmon_tests::client_with(&token)?;

    // Create every series first, so the timed requests measure the stream, not series creation.
    let sent: Sent = Arc::default();
    write(&writer, http, &args, 1, &sent).await?;
    sent.lock().expect("not poisoned").clear();

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut clients = Vec::new();
    for i in 0..args.clients {
        let node = format!("node-{:02}", i % args.nodes);
        let socket = open_page(http, &token, &node).await?;
        clients.push(tokio::spawn(client(socket, stopped.clone())));
    }
    // Let every subscription be taken before the timed writes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "{} clients, {} nodes × {PAGE_SERIES} page series + {} other series, {} requests/s for {} s",
        args.clients, args.nodes, args.noise, args.rate, args.seconds
    );
    let requests = write(&writer, http, &args, args.seconds, &sent).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(true);
    let sent = sent.lock().expect("not poisoned").clone();
    let (mut from_send, mut from_stored) = (Vec::new(), Vec::new());
    let (mut lagged, mut received) = (0, 0);
    for client in clients {
        let seen = client.await?;
        lagged += seen.lagged;
        for (ts, arrived) in seen.arrivals {
            let Some((before, answered)) = sent.get(&ts) else {
                continue; // a warm-up point
            };
            received += 1;
            from_send.push(arrived.duration_since(*before).as_secs_f64() * 1000.0);
            let after_answer = match arrived.checked_duration_since(*answered) {
                Some(later) => later.as_secs_f64(),
                None => -answered.duration_since(arrived).as_secs_f64(),
            };
            from_stored.push(after_answer * 1000.0);
        }
    }
    let expected = requests * args.clients * PAGE_SERIES;
    println!(
        "{requests} requests; {received} of {expected} expected points received, {lagged} messages lagged"
    );
    report("request sent → point on a page", from_send);
    report(
        "request answered 2xx (stored) → point on a page",
        from_stored,
    );
    let server = collector.server;
    println!(
        "collector: {:.1} CPU s, peak RSS {:.0} MiB",
        server.cpu_seconds(),
        server.peak_rss_mib()
    );
    server.stop();
    Ok(())
}

//! Remote write out: a collector forwarding every stored sample to Debian's VictoriaMetrics
//! (deduplicating) and Prometheus (its remote-write receiver on), both started here on
//! loopback. Relabel rules shape what one destination gets; a receiver outage is ridden out
//! from the on-disk backlog; and after the collector is killed with -9 under load and
//! restarted, VictoriaMetrics holds every acknowledged sample exactly once.

use hcmon_tests::{
    Collector, Prometheus, VictoriaMetrics, WrittenSample, eventually, now_s, remote_write,
    write_request,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const HOSTS: usize = 10;

/// Writes step `i` of every series into the collector at `collector`, retrying until it is
/// answered 2xx (as a remote-write sender does): after this returns, the samples are acked.
async fn write_step(
    client: &reqwest::Client,
    collector: &Collector,
    base: i64,
    i: i64,
) -> anyhow::Result<()> {
    let hosts: Vec<String> = (0..HOSTS).map(|h| format!("h{h}")).collect();
    let labels: Vec<[(&str, &str); 1]> = hosts.iter().map(|h| [("host", h.as_str())]).collect();
    let mut samples: Vec<WrittenSample> = labels
        .iter()
        .map(|l| ("fw_load", &l[..], base + i * 1000, i as f64))
        .collect();
    samples.push(("fw_secret", &[], base + i * 1000, 1.0));
    let request = write_request(&samples);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = remote_write(client, collector.http, &request).await;
        if let Ok((status, _)) = &answer
            && *status < 300
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "step {i} not written: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `{series labels → value}` of an instant query's vector at now.
async fn counts(url: String, query: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    let answer: Value = reqwest::Client::new()
        .get(url)
        .query(&[
            ("query", query.to_owned()),
            ("time", format!("{}", now_s())),
        ])
        .send()
        .await?
        .json()
        .await?;
    let mut out = BTreeMap::new();
    for series in answer["data"]["result"].as_array().into_iter().flatten() {
        let value: f64 = series["value"][1].as_str().unwrap_or("0").parse()?;
        out.insert(series["metric"].to_string(), value);
    }
    Ok(out)
}

/// Whether every `fw_load` series holds exactly `expected` samples.
fn all_at(counts: &BTreeMap<String, f64>, expected: i64) -> bool {
    counts.len() == HOSTS && counts.values().all(|&c| c == expected as f64)
}

/// A value of the collector's `/metrics` (0 when absent).
async fn metric(collector: &Collector, series: &str) -> anyhow::Result<f64> {
    let text = collector.get("/metrics").await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_stored_sample_reaches_victoriametrics_and_prometheus_once_across_outages_and_kill_9()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let vm_dir = dir.path().join("vm");
    let mut vm = VictoriaMetrics::start(
        &vm_dir,
        None,
        &["-dedup.minScrapeInterval=1ms", "-search.disableCache"],
    )?;
    let prometheus = Prometheus::start(
        dir.path(),
        "global:\n  scrape_interval: 1m\n",
        &["--web.enable-remote-write-receiver"],
    )?;
    // VictoriaMetrics gets 2.0 first (it answers as a 1.0 receiver, so hcmon falls back), a
    // filter and a rename; Prometheus gets everything as 1.0.
    let config = format!(
        r#"
[[remote_write_out]]
name = "vm"
url = "{vm}"
protocol = "2.0"
max_samples_per_send = 500

[[remote_write_out.relabel]]
action = "drop"
match = 'fw_secret'

[[remote_write_out.relabel]]
action = "rename"
match = '{{__name__=~"fw_.*"}}'
from = "host"
to = "machine"

[[remote_write_out]]
name = "prometheus"
url = "{prom}"
"#,
        vm = vm.url("/api/v1/write"),
        prom = prometheus.url("/api/v1/write"),
    );
    let data = dir.path().join("collector");
    let mut collector = Collector::start_with_config(&data, &config)?;
    let mut client = collector.client()?;
    // Whole seconds half an hour ago: inside Prometheus' head, outside VictoriaMetrics'
    // latency offset.
    let base = ((now_s() as i64) - 1800) * 1000;

    // Steady state: both receivers get everything they should.
    for i in 0..100 {
        write_step(&client, &collector, base, i).await?;
    }
    let vm_counts = || counts(vm.url("/api/v1/query"), "count_over_time(fw_load[2h])");
    let prom_counts = || {
        counts(
            prometheus.url("/api/v1/query"),
            "count_over_time(fw_load[2h])",
        )
    };
    eventually(
        Duration::from_secs(60),
        "100 samples a series in VictoriaMetrics",
        || async {
            let _ = reqwest::get(vm.url("/internal/force_flush")).await;
            Ok(all_at(&vm_counts().await?, 100))
        },
    )
    .await?;
    eventually(
        Duration::from_secs(60),
        "100 samples a series in Prometheus",
        || async { Ok(all_at(&prom_counts().await?, 100)) },
    )
    .await?;
    let vm_series = vm_counts().await?;
    assert!(
        vm_series
            .keys()
            .all(|k| k.contains("\"machine\"") && !k.contains("\"host\"")),
        "renamed for VictoriaMetrics: {vm_series:?}"
    );
    assert!(
        counts(vm.url("/api/v1/query"), "fw_secret")
            .await?
            .is_empty(),
        "filtered"
    );
    assert_eq!(
        counts(
            prometheus.url("/api/v1/query"),
            "count_over_time(fw_secret[2h])"
        )
        .await?
        .values()
        .sum::<f64>(),
        100.0
    );
    assert_eq!(
        metric(
            &collector,
            "hcmon_collector_remote_write_out_filtered_samples_total{destination=\"vm\"}"
        )
        .await?,
        100.0
    );

    // VictoriaMetrics goes away (stopped, so its own unflushed data is not the question): the
    // collector keeps acking, the backlog waits on disk.
    vm.process.terminate();
    for i in 100..200 {
        write_step(&client, &collector, base, i).await?;
    }
    eventually(Duration::from_secs(30), "failures counted, backlog kept", || async {
        let failed = metric(
            &collector,
            "hcmon_collector_remote_write_out_failed_requests_total{destination=\"vm\",reason=\"transport\"}",
        )
        .await?;
        let backlog = metric(
            &collector,
            "hcmon_collector_remote_write_out_backlog_bytes{destination=\"vm\"}",
        )
        .await?;
        Ok(failed > 0.0 && backlog > 0.0)
    })
    .await?;
    // A checkpoint (and compaction) while the receiver is away must keep its records.
    collector
        .client()?
        .post(format!("http://{}/api/v1/admin/compact", collector.http))
        .send()
        .await?
        .error_for_status()?;
    let addr = vm.addr;
    drop(vm);
    let vm = VictoriaMetrics::start(
        &vm_dir,
        Some(addr),
        &["-dedup.minScrapeInterval=1ms", "-search.disableCache"],
    )?;
    let vm_counts = || counts(vm.url("/api/v1/query"), "count_over_time(fw_load[2h])");
    eventually(
        Duration::from_secs(90),
        "the backlog drained into VictoriaMetrics",
        || async {
            let _ = reqwest::get(vm.url("/internal/force_flush")).await;
            Ok(all_at(&vm_counts().await?, 200))
        },
    )
    .await?;
    eventually(
        Duration::from_secs(60),
        "200 samples a series in Prometheus",
        || async { Ok(all_at(&prom_counts().await?, 200)) },
    )
    .await?;

    // kill -9 under load, restart, go on: every acked sample in VictoriaMetrics once.
    for i in 200..300 {
        write_step(&client, &collector, base, i).await?;
    }
    collector.process.kill9();
    collector = Collector::start_with_config(&data, &config)?;
    client = collector.client()?;
    for i in 300..400 {
        write_step(&client, &collector, base, i).await?;
    }
    eventually(
        Duration::from_secs(90),
        "every acked sample in VictoriaMetrics once",
        || async {
            let _ = reqwest::get(vm.url("/internal/force_flush")).await;
            Ok(all_at(&vm_counts().await?, 400))
        },
    )
    .await?;
    let values = counts(vm.url("/api/v1/query"), "sum_over_time(fw_load[2h])").await?;
    // Each value once: 0 + 1 + … + 399.
    assert!(
        values.values().all(|&v| v == (0..400).sum::<i64>() as f64),
        "{values:?}"
    );
    assert_eq!(
        metric(
            &collector,
            "hcmon_collector_remote_write_out_lag_seconds{destination=\"vm\"}"
        )
        .await?,
        0.0
    );
    Ok(())
}

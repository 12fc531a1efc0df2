//! The shipped threshold rules for disk and link saturation, cache memory and HTTP response
//! time, end to end: a collector (in this process, on a test clock) stores what a scripted node
//! sends over the real gRPC protocol, evaluates its default rules (rates and ratios through the
//! PromQL engine on the stored samples) and shows the alerts on its API.

use hcmon_tests::clocked::ClockedCollector;
use hcmon_tests::node::Gauge;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const MIN: i64 = 60_000;
const WAIT: Duration = Duration::from_secs(20);

/// Only the shipped rules; evaluated often so the test clock's minutes are each judged.
const CONFIG: &str = r#"
[analytics]
enabled = false

[alerting]
tick = "20ms"
evaluation_interval = "50ms"

[alerting.missing_data]
agents = false

# The default SLOs' burn-rate alerts would join the count below whenever their round (in the
# background, every evaluation interval) ends before the last threshold alert fires.
[slo]
enabled = false
"#;

/// 1 Gbit/s, as the agent reports a negotiated speed of 1000 Mb/s.
const GIGABIT: f64 = 125_000_000.0;

/// Counters start far from zero, as after days of uptime: no rate is cut short at zero.
const BASE: f64 = 1e12;

/// One sample to send: metric, labels (besides `node`), value.
type Sample = (&'static str, Vec<(&'static str, &'static str)>, f64);

/// What the node sends at minute `i`: counters growing at the rates under test, the link speed
/// of the physical interfaces only (as the agent does), and probe gauges.
fn samples(i: i64) -> Vec<Sample> {
    let counter = |per_second: f64| BASE + per_second * 60.0 * i as f64;
    let device = |d: &'static str| vec![("device", d)];
    let name = |n: &'static str| vec![("name", n)];
    [
        // Disks: sda busy 90 % of the time (error), sdb 10 % (quiet).
        (
            "node_disk_io_time_seconds_total",
            device("sda"),
            counter(0.90),
        ),
        (
            "node_disk_io_time_seconds_total",
            device("sdb"),
            counter(0.10),
        ),
        // eth0 at 1 Gbit/s receives at 97 % (critical) and sends at 77 % (warning).
        ("node_network_speed_bytes", device("eth0"), GIGABIT),
        (
            "node_network_receive_bytes_total",
            device("eth0"),
            counter(0.97 * GIGABIT),
        ),
        (
            "node_network_transmit_bytes_total",
            device("eth0"),
            counter(0.77 * GIGABIT),
        ),
        // eth1 at 1 Gbit/s is nearly idle.
        ("node_network_speed_bytes", device("eth1"), GIGABIT),
        (
            "node_network_receive_bytes_total",
            device("eth1"),
            counter(0.01 * GIGABIT),
        ),
        (
            "node_network_transmit_bytes_total",
            device("eth1"),
            counter(0.01 * GIGABIT),
        ),
        // Loopback carries 10 GB/s but has no speed: nothing to be a share of.
        (
            "node_network_receive_bytes_total",
            device("lo"),
            counter(1e10),
        ),
        (
            "node_network_transmit_bytes_total",
            device("lo"),
            counter(1e10),
        ),
        // Redis "cache" uses 92 % of its maxmemory (error); "store" has no limit, so the
        // probe sends its bytes but no ratio.
        ("redis_memory_used_ratio", name("cache"), 0.92),
        ("redis_memory_used_bytes", name("store"), 8e9),
        // The web page takes 2.5 s (warning), the API 0.3 s (quiet).
        ("http_check_duration_seconds", name("web"), 2.5),
        ("http_check_duration_seconds", name("api"), 0.3),
    ]
    .into()
}

/// The alert `name` whose label `key` is `value`, if any.
fn find<'a>(all: &'a [Value], name: &str, key: &str, value: &str) -> Option<&'a Value> {
    all.iter()
        .find(|a| a["labels"]["alertname"] == name && a["labels"][key] == value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturation_cache_memory_and_slow_http_fire_per_device_at_their_levels()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let start = {
        let now = hcmon_tests::now_s() as i64 * 1000;
        now - now % MIN
    };
    let clock = Arc::new(AtomicI64::new(start));
    let rig = ClockedCollector::start(&dir.path().join("data"), CONFIG, clock.clone()).await?;
    let mut nas = rig.node("nas").await?;

    // A sample a minute for twelve minutes: past the 5-minute rate window and the 2-minute
    // pending duration. Each minute stays on the clock long enough to be evaluated.
    for i in 0..=12 {
        let at = start + i * MIN;
        clock.store(at, Ordering::SeqCst);
        let owned = samples(i);
        let batch: Vec<Gauge<'_>> = owned
            .iter()
            .map(|(metric, labels, value)| (*metric, labels.as_slice(), *value))
            .collect();
        nas.send(at, &batch).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // (alert, label, value, severity): each fires for its own device or probe.
    let expected = [
        ("HighDiskIo", "device", "sda", "error"),
        ("HighNetworkReceive", "device", "eth0", "critical"),
        ("HighNetworkTransmit", "device", "eth0", "warning"),
        ("HighCacheMemory", "name", "cache", "error"),
        ("SlowHttp", "name", "web", "warning"),
    ];
    let deadline = tokio::time::Instant::now() + WAIT;
    let all = loop {
        let all = rig.list_alerts("/api/v1/alerts?all=true").await?;
        let firing = expected.iter().all(|(name, key, value, severity)| {
            find(&all, name, key, value).is_some_and(|a| {
                a["hcmonState"] == "firing" && a["labels"]["severity"] == *severity
            })
        });
        if firing {
            break all;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "not all of {expected:?} fired: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (name, key, value, _) in expected {
        let alert = find(&all, name, key, value).expect("found above");
        assert_eq!(alert["labels"]["node"], "nas", "{alert:#}");
        assert!(alert["labels"].get("__name__").is_none(), "{alert:#}");
    }

    // The idle disk, the idle link and the fast page are judged and stay inactive. The link
    // without a speed and the cache without a limit have no value to judge at all.
    let judged_quiet = [
        ("HighDiskIo", "device", "sdb"),
        ("HighNetworkReceive", "device", "eth1"),
        ("HighNetworkTransmit", "device", "eth1"),
        ("SlowHttp", "name", "api"),
    ];
    for (name, key, value) in judged_quiet {
        let alert = find(&all, name, key, value);
        assert!(
            alert.is_some_and(|a| a["hcmonState"] == "inactive"),
            "{name} on {value}: {alert:#?}"
        );
    }
    let unjudged = [
        ("HighNetworkReceive", "device", "lo"),
        ("HighNetworkTransmit", "device", "lo"),
        ("HighCacheMemory", "name", "store"),
    ];
    for (name, key, value) in unjudged {
        assert!(
            find(&all, name, key, value).is_none(),
            "{name} on {value}: {all:#?}"
        );
    }
    let active: Vec<&Value> = all
        .iter()
        .filter(|a| a["hcmonState"] != "inactive")
        .collect();
    assert_eq!(active.len(), expected.len(), "{active:#?}");

    rig.stop().await
}

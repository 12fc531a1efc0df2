//! The agent's tiers and probes end to end: a real agent with every tier at a short interval and
//! probes against real servers (the collector's own HTTP and gRPC ports) streams to a real
//! collector, and the series arrive with the right kinds.

use hcmon_tests::{Agent, Collector};
use serde_json::Value;
use std::time::{Duration, Instant};

async fn series_names(collector: &Collector) -> anyhow::Result<Vec<Value>> {
    let body = collector
        .get_json(
            "/api/v1/series",
            &[("match[]", "{node=\"tiers\"}".to_owned())],
        )
        .await?;
    Ok(body["data"].as_array().cloned().unwrap_or_default())
}

#[tokio::test]
async fn every_tier_and_probe_reaches_the_collector() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let config = format!(
        r#"
interval = "1s"
detailed_interval = "1s"
extended_interval = "2s"
probe_interval = "1s"

[[probes.http]]
url = "http://{http}/healthz"

[[probes.tcp]]
address = "{grpc}"
"#,
        http = collector.http,
        grpc = collector.grpc,
    );
    let _agent = Agent::start_with_config(
        &collector.grpc_url(),
        "tiers",
        &dir.path().join("spool"),
        &config,
    )?;

    let wanted = [
        "node_cpu_usage_ratio",
        "node_network_receive_drop_total",
        "node_cpu_seconds_total",
        "node_context_switches_total",
        "node_tcp_connection_states",
        "node_network_up",
        "node_boot_time_seconds",
        "node_uname_info",
        "node_memory_MemAvailable_bytes",
        "node_processes_pids",
        "node_process_group_resident_bytes",
        "node_process_group_cpu_ratio",
        "node_processes_state",
        "node_filefd_allocated",
        "hcmon_agent_source_available",
        "hcmon_agent_spool_oldest_age_seconds",
        "hcmon_agent_resident_bytes",
        "http_check_up",
        "tcp_check_up",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let names: Vec<String> = loop {
        let names: Vec<String> = series_names(&collector)
            .await?
            .iter()
            .filter_map(|s| s["__name__"].as_str().map(str::to_owned))
            .collect();
        let missing: Vec<&&str> = wanted
            .iter()
            .filter(|w| !names.iter().any(|n| n == **w))
            .collect();
        if missing.is_empty() {
            break names;
        }
        if Instant::now() > deadline {
            anyhow::bail!("series never arrived: {missing:?}; have {names:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(names.len() > wanted.len());

    // The collector's own listening sockets are in the TCP table the agent read.
    let listen = collector
        .get_json(
            "/api/v1/query",
            &[(
                "query",
                "node_tcp_connection_states{node=\"tiers\",state=\"listen\"}".to_owned(),
            )],
        )
        .await?;
    let listening: f64 = listen["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(listening >= 2.0, "collector listens on 2 ports: {listen}");

    // Every agent series carries job and instance beside node, as a scrape of node_exporter
    // would: the defaults, job "node" and the node name.
    for series in series_names(&collector).await? {
        assert_eq!(
            (series["job"].as_str(), series["instance"].as_str()),
            (Some("node"), Some("tiers")),
            "{series}"
        );
    }

    // The probes saw real servers answer.
    for probe in ["http_check_up", "tcp_check_up"] {
        let up = collector
            .get_json(
                "/api/v1/query",
                &[("query", format!("{probe}{{node=\"tiers\"}}"))],
            )
            .await?;
        assert_eq!(
            up["data"]["result"][0]["value"][1].as_str(),
            Some("1"),
            "{probe}: {up}"
        );
    }

    // Counters are exposed as counters, gauges as gauges.
    let exposition = collector.get("/metrics").await?;
    for (name, kind) in [
        ("node_cpu_seconds_total", "counter"),
        ("node_context_switches_total", "counter"),
        ("node_tcp_connection_states", "gauge"),
        ("node_process_group_resident_bytes", "gauge"),
    ] {
        let line = format!("# TYPE {name} {kind}");
        assert!(exposition.contains(&line), "missing {line:?}");
    }
    // The collector's heap as its allocator sees it: live allocations within the pages held.
    let heap = |kind: &str| -> f64 {
        let name = format!("hcmon_collector_allocator_bytes{{kind=\"{kind}\"}} ");
        exposition
            .lines()
            .find_map(|l| l.strip_prefix(&name)?.trim().parse().ok())
            .unwrap_or(f64::NAN)
    };
    let (allocated, resident) = (heap("allocated"), heap("resident"));
    assert!(
        allocated > 1_048_576.0 && resident >= allocated,
        "allocated {allocated}, resident {resident}"
    );
    Ok(())
}

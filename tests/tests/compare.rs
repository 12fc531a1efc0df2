//! Before/after comparison end to end, on a real collector: two nodes' series are
//! remote-written with a known level shift in one of them, the moment is marked with
//! `hcmon mark`, and `/api/v1/compare` around the mark ranks the shifted series first and
//! significant while the others are not; an experiment over the same windows is met for the
//! shifted series and not for an unshifted one; `hcmon compare` and `hcmon experiment` print
//! the same.

use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::{Collector, bin_path, now_s, remote_write};
use serde_json::{Value, json};
use std::process::Command;

/// Samples per series, 10 s apart: two hours, the mark in the middle.
const POINTS: i64 = 720;
const STEP_MS: i64 = 10_000;
const MARK_INDEX: i64 = 360;

/// Deterministic standard normal noise (xorshift64* and Box–Muller), so the data, and with it
/// the (seeded) statistics, are the same in every run.
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        (bits as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// An autocorrelated gauge (AR(1), coefficient 0.8) around `level`, moved by `shift` from the
/// mark on.
fn gauge(
    noise: &mut Noise,
    name: &str,
    node: &str,
    first_ms: i64,
    level: f64,
    sd: f64,
    shift: f64,
) -> TimeSeries {
    let label = |name: &str, value: &str| Label {
        name: name.into(),
        value: value.into(),
    };
    let mut x = 0.0;
    let samples = (0..POINTS)
        .map(|i| {
            x = 0.8 * x + sd * noise.normal();
            let moved = if i >= MARK_INDEX { shift } else { 0.0 };
            Sample {
                value: level + moved + x,
                timestamp: first_ms + i * STEP_MS,
            }
        })
        .collect();
    TimeSeries {
        labels: vec![label("__name__", name), label("node", node)],
        samples,
    }
}

/// `hcmon` against the collector; its stdout.
fn hcmon(collector: &Collector, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(bin_path("hcmon"))
        .args(["--url", &format!("http://{}", collector.http)])
        .args(["--token", &collector.token()?])
        .args(args)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "hcmon {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

fn name(row: &Value) -> String {
    format!(
        "{}{{node={}}}",
        row["metric"]["__name__"].as_str().unwrap_or("?"),
        row["metric"]["node"]
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_level_shift_at_a_mark_ranks_first_and_meets_its_experiment() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let started = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let collector = &started;
    let client = collector.client()?;
    let first_ms = (now_s() * 1000.0) as i64 - POINTS * STEP_MS - 60_000;
    let first_ms = first_ms - first_ms.rem_euclid(STEP_MS);
    let mark_ms = first_ms + MARK_INDEX * STEP_MS;

    let mut noise = Noise(0x5eed_0015);
    let mut timeseries = Vec::new();
    for node in ["alpha", "beta"] {
        // alpha's latency drops by 40 % at the mark; nothing else moves.
        let shift = if node == "alpha" { -0.08 } else { 0.0 };
        let series = [
            ("app_latency_seconds", 0.2, 0.01, shift),
            ("app_queue_depth", 40.0, 3.0, 0.0),
            ("app_memory_bytes", 5e8, 1e6, 0.0),
        ];
        for (metric, level, sd, shift) in series {
            let made = gauge(&mut noise, metric, node, first_ms, level, sd, shift);
            timeseries.push(made);
        }
    }
    let request = WriteRequest { timeseries };
    let (status, body) = remote_write(&client, collector.http, &request).await?;
    anyhow::ensure!(
        (200..300).contains(&status),
        "remote write: {status} {body}"
    );

    // Marked through the CLI, at the shift.
    let mark_s = format!("{}", mark_ms / 1000);
    let id = hcmon(
        collector,
        &[
            "mark",
            "deployed v2",
            "--at",
            &mark_s,
            "--tag",
            "deploy",
            "--node",
            "alpha",
        ],
    )?;
    let id = id.trim().to_owned();
    let listed = collector
        .get_json("/api/v1/annotations", &[("start", mark_s.clone())])
        .await?;
    let annotation = &listed["data"][0];
    assert_eq!(annotation["id"], id.as_str(), "{listed}");
    assert_eq!(annotation["time_ms"], mark_ms);
    assert_eq!(annotation["end_ms"], Value::Null);
    assert_eq!(annotation["tags"], json!(["deploy"]));
    assert_eq!(annotation["node"], "alpha");
    assert_eq!(annotation["created_by"], "admin");

    // One node's series around the mark.
    let around = |scope: (&'static str, String)| {
        vec![
            scope,
            ("annotation", id.clone()),
            ("window", "1h".to_owned()),
        ]
    };
    let answer = collector
        .get_json("/api/v1/compare", &around(("node", "alpha".into())))
        .await?;
    let data = &answer["data"];
    // Half-open windows: the mark ends the before window and starts the after one.
    assert_eq!(data["before"]["end_ms"], mark_ms, "{data}");
    assert_eq!(data["after"]["start_ms"], mark_ms);
    assert!(data["method"].as_str().unwrap().contains("Mann-Whitney"));
    let rows = data["series"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{data}");
    let top = &rows[0];
    assert_eq!(name(top), "app_latency_seconds{node=\"alpha\"}", "{data}");
    assert_eq!(top["significant"], true, "{top}");
    assert!(top["p_value"].as_f64().unwrap() < 0.01, "{top}");
    assert!(top["effect_size"].as_f64().unwrap() < -0.9, "{top}");
    assert_eq!(top["unit"], "seconds");
    assert_eq!(top["before"]["n"], 360);
    let ci = top["diff_mean_ci"].as_array().unwrap();
    let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
    assert!(lo <= -0.08 && -0.08 <= hi, "CI {lo}..{hi} misses the shift");
    let relative = top["relative_change"].as_f64().unwrap();
    assert!((-0.45..-0.35).contains(&relative), "{top}");
    for row in &rows[1..] {
        assert_eq!(row["significant"], false, "{}: {row}", name(row));
    }

    // Both nodes, by selector and explicit windows: only alpha's latency moved.
    let windows = [
        ("before_start", format!("{}", (mark_ms - 3_600_000) / 1000)),
        ("before_end", format!("{}", (mark_ms - 1) as f64 / 1000.0)),
        ("after_start", mark_s.clone()),
        ("after_end", format!("{}", (mark_ms + 3_600_000) / 1000)),
    ];
    let mut query = vec![("match[]", r#"{__name__=~"app_.*"}"#.to_owned())];
    query.extend(windows.iter().cloned());
    let answer = collector.get_json("/api/v1/compare", &query).await?;
    let rows = answer["data"]["series"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 6);
    assert_eq!(name(&rows[0]), "app_latency_seconds{node=\"alpha\"}");
    let significant: Vec<String> = rows
        .iter()
        .filter(|r| r["significant"] == true)
        .map(name)
        .collect();
    assert_eq!(
        significant,
        ["app_latency_seconds{node=\"alpha\"}"],
        "{rows:?}"
    );

    // The CLI prints the same ranking.
    let table = hcmon(
        collector,
        &[
            "compare",
            "--node",
            "alpha",
            "--annotation",
            &id,
            "--window",
            "1h",
        ],
    )?;
    let first_row = table.lines().nth(2).unwrap_or_default();
    assert!(
        first_row.contains("app_latency_seconds") && first_row.contains("yes"),
        "{table}"
    );

    // Experiments over the same windows: "latency down 20 %" holds for alpha, not for beta.
    let experiment = |node: &str| {
        json!({
            "name": format!("cache for {node}"),
            "baseline": {"start": (mark_ms - 3_600_000) / 1000, "end": (mark_ms - 1) as f64 / 1000.0},
            "treatment": {"start": mark_s, "end": format!("{}", (mark_ms + 3_600_000) / 1000)},
            "match": [format!("app_latency_seconds{{node=\"{node}\"}}")],
            "criterion": {"statistic": "p95", "direction": "decrease", "by_percent": 20.0},
        })
    };
    let url = format!("http://{}/api/v1/experiments", collector.http);
    let mut ids = Vec::new();
    for node in ["alpha", "beta"] {
        let made = client.post(&url).json(&experiment(node)).send().await?;
        anyhow::ensure!(made.status() == 200, "{}", made.text().await?);
        let made: Value = made.json().await?;
        ids.push(made["data"]["id"].as_str().unwrap().to_owned());
    }
    let result = |id: String| async move {
        let shown = collector
            .get_json(&format!("/api/v1/experiments/{id}"), &[])
            .await?;
        anyhow::Ok(shown["data"].clone())
    };
    let alpha = result(ids[0].clone()).await?;
    assert_eq!(alpha["name"], "cache for alpha");
    assert_eq!(alpha["criterion"]["statistic"], "p95");
    assert_eq!(alpha["result"]["met"], true, "{alpha}");
    assert!(alpha["result"]["confidence"].as_f64().unwrap() >= 0.95);
    let change = alpha["result"]["observed_change_percent"].as_f64().unwrap();
    assert!((-50.0..-25.0).contains(&change), "{alpha}");
    let beta = result(ids[1].clone()).await?;
    assert_eq!(beta["result"]["met"], false, "{beta}");
    assert!(
        beta["result"]["confidence"].as_f64().unwrap() < 0.5,
        "{beta}"
    );
    let shown = hcmon(collector, &["experiment", "show", &ids[0]])?;
    assert!(shown.contains("MET:"), "{shown}");
    let listed = hcmon(collector, &["experiment", "list"])?;
    assert!(
        listed.contains("cache for beta") && listed.contains("p95 down 20%"),
        "{listed}"
    );
    hcmon(collector, &["experiment", "delete", &ids[1]])?;
    let all = collector.get_json("/api/v1/experiments", &[]).await?;
    assert_eq!(all["data"].as_array().unwrap().len(), 1);

    // Made and deleted things are in the audit log.
    let audit = collector.get_json("/api/v1/audit", &[]).await?;
    let events: Vec<String> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["route"].as_str().unwrap_or("").to_owned())
        .collect();
    for route in [
        "POST /api/v1/annotations",
        "POST /api/v1/experiments",
        "DELETE /api/v1/experiments/{id}",
    ] {
        assert!(events.iter().any(|e| e == route), "{route}: {events:?}");
    }
    Ok(())
}

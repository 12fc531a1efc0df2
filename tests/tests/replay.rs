//! `hcmon replay` as a user runs it: a CSV in, a CSV out, no collector anywhere.

use hcmon_tests::bin_path;
use std::process::Command;

#[test]
fn replays_a_csv_without_a_collector_and_refuses_bad_rows_by_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.csv");
    let mut csv = String::from("timestamp,value\n");
    for i in 0..300i64 {
        let value = if i == 250 {
            95.0
        } else {
            40.0 + (i % 5) as f64 * 0.5
        };
        // Every accepted timestamp form, irregular spacing.
        let t = 1_700_000_000 + i * 10 + i % 2;
        let stamp = match i % 3 {
            0 => t.to_string(),
            1 => humantime_like(t, 'T') + "Z",
            _ => humantime_like(t, ' '),
        };
        csv.push_str(&format!("{stamp},{value}\n"));
    }
    std::fs::write(&input, &csv)?;
    let run = Command::new(bin_path("hcmon"))
        .args(["--url", "http://127.0.0.1:1", "replay", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()?;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = std::fs::read_to_string(&output)?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 301, "header plus one row per input row");
    assert_eq!(
        lines[0],
        "timestamp,value,anomaly_score,is_anomaly,severity,detectors"
    );
    let flagged: Vec<usize> = lines[1..]
        .iter()
        .enumerate()
        .filter(|(_, l)| l.split(',').nth(3) == Some("true"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(flagged, vec![250], "only the spike");
    let input_rows: Vec<&str> = csv.lines().skip(1).collect();
    for (i, line) in lines[1..].iter().enumerate() {
        assert!(
            line.starts_with(input_rows[i]),
            "row {i} out of order: {line}"
        );
    }

    std::fs::write(&input, "timestamp,value\n1700000000,1\n1700000010,oops\n")?;
    let run = Command::new(bin_path("hcmon"))
        .args(["replay", "--input"])
        .arg(&input)
        .output()?;
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("line 3") && stderr.contains("oops"),
        "{stderr}"
    );
    assert!(run.stdout.is_empty(), "nothing is written for a bad file");
    Ok(())
}

/// `YYYY-MM-DD<sep>HH:MM:SS` in UTC for Unix seconds.
fn humantime_like(unix: i64, sep: char) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix as u64);
    let text = humantime::format_rfc3339_seconds(time).to_string();
    text.trim_end_matches('Z')
        .replacen('T', &sep.to_string(), 1)
}

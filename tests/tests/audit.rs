//! The audit log end to end: state-changing calls are recorded with who, what, target, outcome
//! and client address, listed by the API and `hcmon audit`, and a record tampered with in the
//! data directory is named by `hcmon audit verify`.

use hcmon_collector::storage::{Kv, KvBatch, RocksKv, Table};
use hcmon_tests::{Collector, bin_path};
use serde_json::Value;
use std::process::{Command, Output};

/// Runs `hcmon <args>` against `collector`, beside it (reading its admin token).
fn hcmon(collector: &Collector, args: &[&str]) -> std::io::Result<Output> {
    Command::new(bin_path("hcmon"))
        .args(["--url", &format!("http://{}", collector.http)])
        .arg("--data-dir")
        .arg(&collector.data_dir)
        .args(args)
        .output()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_are_audited_and_a_tampered_record_is_named_by_verify() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let mut collector = Collector::start(&data, 0, 0)?;

    let silenced = hcmon(
        &collector,
        &["alerts", "silence", "{node=\"nas\"}", "--by", "me"],
    )?;
    assert!(silenced.status.success(), "{silenced:?}");
    let silence = stdout(&silenced)
        .split_whitespace()
        .nth(1)
        .expect("silence <id> …")
        .to_owned();
    // An alert that does not exist: refused, and recorded as refused.
    let acked = hcmon(
        &collector,
        &["alerts", "ack", "0123456789abcdef", "--by", "me"],
    )?;
    assert!(!acked.status.success(), "{acked:?}");
    assert!(
        hcmon(&collector, &["alerts", "unsilence", &silence])?
            .status
            .success()
    );
    // Reads are not recorded.
    assert!(hcmon(&collector, &["alerts", "silences"])?.status.success());

    let listed = collector.get_json("/api/v1/audit", &[]).await?;
    let records = listed["data"].as_array().expect("a list of records");
    let seen: Vec<(u64, &str, &Value, u64)> = records
        .iter()
        .map(|r| {
            assert_eq!(
                (&r["who"], &r["role"]),
                (&"admin".into(), &"admin".into()),
                "{r}"
            );
            let client = r["client"].as_str().unwrap_or_default();
            assert!(client.starts_with("127.0.0.1:"), "{r}");
            let seq = r["seq"].as_u64().unwrap();
            let outcome = r["outcome"].as_u64().unwrap();
            (seq, r["route"].as_str().unwrap(), &r["event"], outcome)
        })
        .collect();
    let expected = [
        (
            0,
            "POST /api/v1/silences",
            serde_json::json!({"what": "create_silence", "silence": silence}),
            200,
        ),
        (
            1,
            "POST /api/v1/alerts/{id}/ack",
            serde_json::json!({"what": "ack_alert", "alert": "0123456789abcdef"}),
            404,
        ),
        (
            2,
            "DELETE /api/v1/silences/{id}",
            serde_json::json!({"what": "expire_silence", "silence": silence}),
            200,
        ),
    ];
    let expected: Vec<(u64, &str, &Value, u64)> = expected
        .iter()
        .map(|(seq, route, event, outcome)| (*seq, *route, event, *outcome))
        .collect();
    assert_eq!(seen, expected);

    let table = stdout(&hcmon(&collector, &["audit"])?);
    assert!(table.contains("unsilence"), "{table}");
    assert!(table.contains("0123456789abcdef"), "{table}");
    let lines = stdout(&hcmon(&collector, &["audit", "--json", "--limit", "2"])?);
    let seqs: Vec<u64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [1, 2]);
    let intact = hcmon(&collector, &["audit", "verify"])?;
    assert!(intact.status.success(), "{intact:?}");
    assert!(
        stdout(&intact).contains("audit log intact: 3 records"),
        "{intact:?}"
    );

    // Stopped, record 1 rewritten in place: the alert's outcome made a success.
    collector.process.kill9();
    drop(collector);
    {
        let kv = RocksKv::open(&data, 8 << 20)?;
        let key = 1u64.to_be_bytes();
        let value = kv.get(Table::Audit, &key)?.expect("record 1 is stored");
        let text = String::from_utf8(value)?;
        let forged = text.replace("\"outcome\":404", "\"outcome\":200");
        assert_ne!(forged, text);
        let mut batch = KvBatch::default();
        batch.put(Table::Audit, key, forged.into_bytes());
        kv.write(batch, true)?;
    }

    let collector = Collector::start(&data, 0, 0)?;
    // Appends go on after the restart; the tampered record is still found.
    hcmon(&collector, &["alerts", "unsilence", &silence])?;
    let broken = hcmon(&collector, &["audit", "verify"])?;
    assert!(!broken.status.success(), "{broken:?}");
    let message = String::from_utf8_lossy(&broken.stderr);
    assert!(
        message.contains("record 1: modified (it does not match its hash)"),
        "{message}"
    );
    let listed = collector.get_json("/api/v1/audit", &[]).await?;
    assert_eq!(listed["data"][3]["seq"], 3, "{listed}");
    Ok(())
}

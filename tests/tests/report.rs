//! SLA reports end to end.
//!
//! 1. A real HTTP target that the test takes down for a known share of the time, probed every
//!    500 ms by a real agent: `hcmon report --format json` over exactly that time gives the
//!    probe's availability within one probe interval of the share it was up; `--format pdf`
//!    holds the same figure (read back by poppler's `pdftotext`) and its first page renders
//!    (`pdftoppm`).
//! 2. The scheduled reports: a fresh collector makes the newest daily and weekly ones at start
//!    and mails them through its SMTP channel to the test's SMTP server, HTML with the PDF
//!    attached; `hcmon reports list|get` show and download them; a restart (SIGKILL) neither
//!    makes nor mails them again.

use anyhow::{Context, bail};
use base64::Engine;
use hcmon_tests::now_ms;
use hcmon_tests::receivers::{ReceivedMail, SmtpSink};
use hcmon_tests::{Agent, Collector, bin_path};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

const PROBE_INTERVAL_MS: i64 = 500;

fn hcmon(collector: &Collector, args: &[&str]) -> anyhow::Result<Output> {
    let output = Command::new(bin_path("hcmon"))
        .args(["--url", &format!("http://{}", collector.http)])
        .arg("--data-dir")
        .arg(&collector.data_dir)
        .args(args)
        .output()?;
    if !output.status.success() {
        bail!(
            "hcmon {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// An HTTP server answering 200 while `up` holds, 503 otherwise; runs until the test ends.
fn target(up: Arc<AtomicBool>) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let up = up.clone();
            std::thread::spawn(move || answer(&mut stream, &up));
        }
    });
    Ok(port)
}

/// Reads one request and answers it by `up`.
fn answer(stream: &mut std::net::TcpStream, up: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let status = match up.load(Ordering::SeqCst) {
        true => "200 OK",
        false => "503 Service Unavailable",
    };
    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    let _ = stream.write_all(answer.as_bytes());
}

/// The newest timestamp (ms) of `http_check_up{name="web"}` the collector holds.
async fn newest_probe_ms(collector: &Collector) -> anyhow::Result<Option<i64>> {
    let series = collector.export("http_check_up{name=\"web\"}").await?;
    Ok(series
        .iter()
        .flat_map(|s| hcmon_tests::points(s).into_iter().map(|(t, _)| t))
        .max())
}

#[tokio::test(flavor = "multi_thread")]
async fn availability_in_the_report_matches_the_downtime_and_the_pdf_shows_it() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let up = Arc::new(AtomicBool::new(true));
    let port = target(up.clone())?;
    let config = format!(
        r#"
probe_interval = "{PROBE_INTERVAL_MS}ms"

[[probes.http]]
url = "http://127.0.0.1:{port}/"
name = "web"
# Far above what an answer takes, so a busy test machine delays a run (one fewer counted)
# rather than failing it.
timeout = "3s"
"#
    );
    let _agent = Agent::start_with_config(
        &collector.grpc_url(),
        "web-host",
        &dir.path().join("spool"),
        &config,
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while newest_probe_ms(&collector).await?.is_none() {
        anyhow::ensure!(Instant::now() < deadline, "the probe never reported");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Up 30 s, down 15 s, up 15 s: up three quarters of the time.
    let start = now_ms();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let down_at = now_ms();
    up.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(15)).await;
    up.store(true, Ordering::SeqCst);
    let up_at = now_ms();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let end = now_ms();
    let deadline = Instant::now() + Duration::from_secs(20);
    while newest_probe_ms(&collector).await?.is_none_or(|t| t < end) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the probe's samples stopped arriving"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let expected = 1.0 - (up_at - down_at) as f64 / (end - start) as f64;
    let tolerance = PROBE_INTERVAL_MS as f64 / (end - start) as f64;

    let (from, to) = (
        format!("{:.3}", start as f64 / 1000.0),
        format!("{:.3}", end as f64 / 1000.0),
    );
    let json_path = dir.path().join("report.json");
    let json_file = json_path.to_str().context("UTF-8 path")?;
    let range = ["--from", &from, "--to", &to];
    hcmon(
        &collector,
        &[
            &["report"],
            &range[..],
            &["--format", "json", "--output", json_file],
        ]
        .concat(),
    )?;
    let report: Value = serde_json::from_slice(&std::fs::read(&json_path)?)?;
    let rows = report["compliance"].as_array().context("compliance rows")?;
    let row = rows
        .iter()
        .find(|r| r["name"] == "probe:web:availability")
        .with_context(|| format!("no probe:web:availability row in {rows:?}"))?;
    let availability = row["compliance"].as_f64().context("a compliance figure")?;
    assert!(
        (availability - expected).abs() <= tolerance,
        "availability {availability}, expected {expected} ± {tolerance} (one probe interval)"
    );

    // The PDF holds the figure, and its first page renders.
    let pdf_path = dir.path().join("report.pdf");
    let pdf_file = pdf_path.to_str().context("UTF-8 path")?;
    hcmon(
        &collector,
        &[
            &["report"],
            &range[..],
            &["--format", "pdf", "--output", pdf_file],
        ]
        .concat(),
    )?;
    let text = pdf_text(&pdf_path)?;
    let figure = format!("{:.2} %", availability * 100.0);
    for wanted in ["probe:web:availability", figure.as_str()] {
        assert!(
            text.contains(wanted),
            "{wanted:?} not in the PDF's text:\n{text}"
        );
    }
    let page = dir.path().join("page");
    let rendered = Command::new("pdftoppm")
        .args(["-png", "-r", "50", "-f", "1", "-l", "1"])
        .arg(&pdf_path)
        .arg(&page)
        .output()
        .context("pdftoppm (Debian's poppler-utils) must be installed")?;
    anyhow::ensure!(
        rendered.status.success(),
        "pdftoppm: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let png = std::fs::read_dir(dir.path())?
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("page-"))
        .context("pdftoppm wrote no page")?;
    assert!(std::fs::metadata(png.path())?.len() > 1000);

    // The CSV names it too; a bad range is refused with a clear message.
    let csv = hcmon(
        &collector,
        &[&["report"], &range[..], &["--format", "csv"]].concat(),
    )?;
    assert!(String::from_utf8_lossy(&csv.stdout).contains("probe:web:availability"));
    let backwards = Command::new(bin_path("hcmon"))
        .args(["--url", &format!("http://{}", collector.http)])
        .arg("--data-dir")
        .arg(&collector.data_dir)
        .args(["report", "--from", &to, "--to", &from, "--format", "json"])
        .output()?;
    assert!(!backwards.status.success());
    let stderr = String::from_utf8_lossy(&backwards.stderr);
    assert!(
        stderr.contains("400") && stderr.contains("after from"),
        "{stderr}"
    );
    Ok(())
}

/// The text of a PDF, as `pdftotext` reads it, spaces normalised.
fn pdf_text(path: &Path) -> anyhow::Result<String> {
    let output = Command::new("pdftotext")
        .arg(path)
        .arg("-")
        .output()
        .context("pdftotext (Debian's poppler-utils) must be installed")?;
    anyhow::ensure!(
        output.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).replace('\u{a0}', " "))
}

fn collector_config(smtp_port: u16) -> String {
    format!(
        r#"
[alerting.recipients]
on-call = ["mail"]
manager = ["mail"]
director = ["mail"]
boss = ["mail:boss@example.org"]

[[alerting.channels]]
name = "mail"
[alerting.channels.email]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "hcmon <hcmon@example.org>"
to = ["ops@example.org"]

[reports.daily]
recipients = ["mail"]

[reports.weekly]
recipients = ["boss"]

[reports.monthly]
enabled = false
"#
    )
}

/// The report mails among what the server received.
fn report_mails(sink: &SmtpSink) -> Vec<ReceivedMail> {
    sink.messages()
        .into_iter()
        .filter(|m| m.header("Subject").is_some_and(|s| s.contains("report")))
        .collect()
}

/// The decoded attachment of content type `content_type` in a multipart mail.
fn attachment(mail: &ReceivedMail, content_type: &str) -> anyhow::Result<Vec<u8>> {
    let body = mail.body();
    let at = body
        .find(&format!("Content-Type: {content_type}"))
        .with_context(|| format!("no {content_type} part in:\n{}", mail.data))?;
    let part = &body[at..];
    let (_, rest) = part
        .split_once("\r\n\r\n")
        .context("a part without a body")?;
    let encoded: String = rest
        .split("\r\n")
        .take_while(|line| !line.starts_with("--"))
        .collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(encoded.trim())?)
}

/// `YYYY-MM-DD` of the UTC day `days_back` days before today.
fn utc_date(days_back: i64) -> String {
    let today_ms = now_ms() - now_ms().rem_euclid(86_400_000);
    let ms = (today_ms - days_back * 86_400_000) as u64;
    let text =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string();
    text[..10].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_reports_are_mailed_once_with_the_pdf_attached() -> anyhow::Result<()> {
    let sink = SmtpSink::start(false).await?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("collector");
    let config = collector_config(sink.addr().port());
    let mut collector = Collector::start_with_config(&data, &config)?;

    // The newest daily and weekly reports were due before this collector started.
    let deadline = Instant::now() + Duration::from_secs(60);
    while report_mails(&sink).len() < 2 {
        if Instant::now() > deadline {
            bail!(
                "the reports were not mailed; got {:?}\ncollector log:\n{}",
                sink.messages(),
                collector.process.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mails = report_mails(&sink);
    let yesterday = utc_date(1);
    let daily = mails
        .iter()
        .find(|m| {
            m.header("Subject")
                .is_some_and(|s| s.starts_with("hcmon daily report: "))
        })
        .context("no daily report mail")?;
    let weekly = mails
        .iter()
        .find(|m| {
            m.header("Subject")
                .is_some_and(|s| s.starts_with("hcmon weekly report: week of Monday"))
        })
        .context("no weekly report mail")?;
    assert_eq!(daily.to, ["ops@example.org"]);
    assert_eq!(weekly.to, ["boss@example.org"]);
    let subject = daily.header("Subject").unwrap_or_default();
    assert!(subject.contains("SLO"), "{subject}");
    for mail in [daily, weekly] {
        let content_type = mail.header("Content-Type").unwrap_or_default();
        assert!(
            content_type.starts_with("multipart/mixed"),
            "{content_type}"
        );
        assert!(
            mail.body().contains("Content-Type: text/html"),
            "{}",
            mail.data
        );
    }
    let filename = format!("filename=\"hcmon-daily-{yesterday}.pdf\"");
    assert!(
        daily.body().contains(&filename),
        "{filename} missing:\n{}",
        daily.data
    );
    let pdf = attachment(daily, "application/pdf")?;
    assert!(pdf.starts_with(b"%PDF-"), "the attachment is not a PDF");
    let pdf_path = dir.path().join("mailed.pdf");
    std::fs::write(&pdf_path, &pdf)?;
    let text = pdf_text(&pdf_path)?;
    assert!(!text.trim().is_empty(), "pdftotext read nothing");

    // Listed as mailed, and downloadable. The sink has the mails once the SMTP exchange is
    // over, a moment before the collector records them as sent: wait for that.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let list = loop {
        let list = hcmon(&collector, &["reports", "list"])?;
        let list = String::from_utf8_lossy(&list.stdout).into_owned();
        let all_mailed = list.lines().skip(1).all(|l| l.trim_end().ends_with("yes"));
        if all_mailed || std::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let daily_id = format!("daily-{yesterday}");
    let line = list
        .lines()
        .find(|l| l.starts_with(&daily_id))
        .with_context(|| format!("{daily_id} not listed:\n{list}"))?;
    assert!(line.trim_end().ends_with("yes"), "{line}");
    assert!(list.lines().any(|l| l.starts_with("weekly-")), "{list}");
    assert!(!list.lines().any(|l| l.starts_with("monthly-")), "{list}");
    let json = hcmon(
        &collector,
        &["reports", "get", &daily_id, "--format", "json"],
    )?;
    let report: Value = serde_json::from_slice(&json.stdout)?;
    assert_eq!(report["kind"], "daily");
    let missing = Command::new(bin_path("hcmon"))
        .args(["--url", &format!("http://{}", collector.http)])
        .arg("--data-dir")
        .arg(&collector.data_dir)
        .args(["reports", "get", "daily-1999-01-01"])
        .output()?;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));

    // A crash and restart: the reports are in the store, so nothing is made or mailed again.
    let generated_before = list.clone();
    collector.process.kill9();
    let collector = Collector::start_with_config(&data, &config)?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(report_mails(&sink).len(), 2, "a report was mailed again");
    let list = hcmon(&collector, &["reports", "list"])?;
    assert_eq!(String::from_utf8_lossy(&list.stdout), generated_before);
    let metrics = collector.get("/metrics").await?;
    assert!(
        !metrics.lines().any(
            |l| l.starts_with("hcmon_collector_reports_generated_total{") && !l.ends_with(" 0")
        ),
        "a report was generated again:\n{metrics}"
    );
    Ok(())
}

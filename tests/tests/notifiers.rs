//! Alert delivery end to end against real servers on loopback: the collector's `Channels` send
//! to an SMTP server with STARTTLS and AUTH, to HTTP receivers (Slack payload, signed webhook,
//! retries after failures, a server that is down) and to Debian's Alertmanager.

use hcmon_collector::alerting::ids::AlertId;
use hcmon_collector::alerting::lifecycle::StateKind;
use hcmon_collector::alerting::notify::{
    AlertSummary, AlertmanagerConfig, ChannelConfig, Channels, DeliveryReport, EmailConfig,
    EmailTls, Evidence, Notification, NotificationKind, NotifyMetrics, RetryPolicy, SlackConfig,
    WebhookConfig,
};
use hcmon_collector::alerting::policy::Severity;
use hcmon_common::Secret;
use hcmon_tests::now_ms;
use hcmon_tests::receivers::{Alertmanager, HttpReceiver, SmtpCredentials, SmtpSink};
use prometheus::{Encoder, Registry, TextEncoder};
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// HighCpu firing on `nas` for 12 minutes, with evidence and an ack link.
fn notification(kind: NotificationKind) -> Notification {
    let at_ms = now_ms();
    let alert = AlertSummary {
        id: AlertId::from("a1b2c3"),
        labels: BTreeMap::from([
            ("alertname".to_owned(), "HighCpu".to_owned()),
            ("node".to_owned(), "nas".to_owned()),
            ("severity".to_owned(), "critical".to_owned()),
        ]),
        annotations: BTreeMap::from([("summary".to_owned(), "CPU busy above 90%".to_owned())]),
        severity: Severity::Critical,
        state: StateKind::Firing,
        since_ms: at_ms - 12 * 60_000,
        resolved_ms: None,
        value: 97.5,
        evidence: Evidence {
            threshold: Some(90.0),
            expected: None,
            related: vec!["node_load1{node=\"nas\"} rose with it, r=0.91".to_owned()],
            details: Vec::new(),
        },
        ack_url: Some("https://hcmon.lan/api/v1/alerts/a1b2c3/ack?sig=f00d".to_owned()),
    };
    Notification {
        kind,
        group: "node=\"nas\"".to_owned(),
        alerts: vec![alert],
        recipients: Vec::new(),
        at_ms,
    }
}

fn channel(name: &str) -> ChannelConfig {
    ChannelConfig {
        name: name.to_owned(),
        min_severity: Severity::Warning,
        min_interval: Duration::from_secs(300),
        max_per_hour: 10,
        escalation_only: false,
        email: None,
        slack: None,
        webhook: None,
        log: None,
        alertmanager: None,
    }
}

fn email_channel(
    sink: &SmtpSink,
    tls: EmailTls,
    ca_file: Option<std::path::PathBuf>,
) -> ChannelConfig {
    let mut config = channel("mail");
    let secured = tls != EmailTls::None;
    config.email = Some(EmailConfig {
        host: "127.0.0.1".to_owned(),
        port: sink.addr().port(),
        tls,
        username: secured.then(|| "hcmon".to_owned()),
        password: secured.then(|| Secret::new("s3cret")),
        password_file: None,
        from: "hcmon <hcmon@example.org>".to_owned(),
        to: vec!["ops@example.org".to_owned()],
        ca_file,
        insecure_skip_verify: false,
    });
    config
}

/// Tiny backoffs, so retry tests take milliseconds.
fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    }
}

fn build(configs: &[ChannelConfig], retry: RetryPolicy) -> (Channels, Registry) {
    let registry = Registry::new();
    let channels =
        Channels::new(configs, retry, NotifyMetrics::new(&registry)).expect("valid channels");
    (channels, registry)
}

fn exposition(registry: &Registry) -> String {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .expect("encodes");
    String::from_utf8(out).expect("UTF-8")
}

#[track_caller]
fn assert_delivered(report: &DeliveryReport, attempts: u32) {
    assert!(report.delivered, "{report:?}");
    assert_eq!(report.attempts, attempts, "{report:?}");
}

#[tokio::test]
async fn email_goes_over_starttls_with_auth_and_reads_well() -> anyhow::Result<()> {
    let sink = SmtpSink::start(true).await?;
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sink.cert_pem())?;
    let (channels, _) = build(
        &[email_channel(&sink, EmailTls::Starttls, Some(ca))],
        quick_retry(1),
    );

    assert_delivered(
        &channels
            .deliver("mail", &notification(NotificationKind::Firing))
            .await,
        1,
    );
    let mail = sink.wait_for(1, WAIT).await?.remove(0);
    assert!(mail.tls, "the message went out before STARTTLS");
    assert_eq!(
        mail.auth,
        Some(SmtpCredentials {
            mechanism: "PLAIN".to_owned(),
            username: "hcmon".to_owned(),
            password: "s3cret".to_owned(),
        })
    );
    assert_eq!(mail.from, "hcmon@example.org");
    assert_eq!(mail.to, ["ops@example.org"]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("[FIRING:1] HighCpu on nas (critical)")
    );
    assert_eq!(
        mail.header("From").as_deref(),
        Some("hcmon <hcmon@example.org>")
    );
    assert_eq!(mail.header("To").as_deref(), Some("ops@example.org"));
    assert!(
        mail.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{}",
        mail.data
    );
    let body = mail.body();
    for fact in [
        "HighCpu: CPU busy above 90%",
        "Severity:    critical (firing)",
        "Where:       node nas",
        "UTC (for 12m)",
        "Value:       97.5, threshold 90",
        "node_load1{node=\"nas\"} rose with it, r=0.91",
        "Acknowledge: https://hcmon.lan/api/v1/alerts/a1b2c3/ack?sig=f00d",
        "or run: hcmon alerts ack a1b2c3",
    ] {
        assert!(body.contains(fact), "{fact:?} missing from:\n{body}");
    }

    // An escalation names its own recipients.
    let mut escalation = notification(NotificationKind::Escalation { tier: 1 });
    escalation.recipients = vec!["Alice <alice@example.org>".to_owned()];
    assert_delivered(&channels.deliver("mail", &escalation).await, 1);
    let mail = sink.wait_for(2, WAIT).await?.remove(1);
    assert_eq!(mail.to, ["alice@example.org"]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("[ESCALATION tier 2] HighCpu on nas (critical)")
    );
    Ok(())
}

#[tokio::test]
async fn email_refuses_an_untrusted_certificate_and_a_server_that_requires_tls()
-> anyhow::Result<()> {
    let sink = SmtpSink::start(true).await?;
    // No ca_file: the self-signed certificate is not trusted, and nothing is sent.
    let (channels, _) = build(
        &[email_channel(&sink, EmailTls::Starttls, None)],
        quick_retry(2),
    );
    let report = channels
        .deliver("mail", &notification(NotificationKind::Firing))
        .await;
    assert!(!report.delivered && report.attempts == 2, "{report:?}");
    assert!(
        report.errors.iter().all(|e| e.contains("certificate")),
        "{report:?}"
    );

    // Without TLS the server answers 530 to MAIL: permanent, so no retry.
    let (channels, registry) = build(
        &[email_channel(&sink, EmailTls::None, None)],
        quick_retry(5),
    );
    let report = channels
        .deliver("mail", &notification(NotificationKind::Firing))
        .await;
    assert!(!report.delivered, "{report:?}");
    assert_eq!(report.attempts, 1, "{report:?}");
    assert!(report.errors[0].contains("530"), "{report:?}");
    let metrics = exposition(&registry);
    assert!(
        metrics.contains(
            "hcmon_collector_notifications_total{channel=\"mail\",kind=\"firing\",outcome=\"failed\"} 1"
        ),
        "{metrics}"
    );
    assert!(sink.messages().is_empty());
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn slack_and_signed_webhook_post_json_with_the_facts() -> anyhow::Result<()> {
    let receiver = HttpReceiver::start().await?;
    let mut slack = channel("chat");
    slack.slack = Some(SlackConfig {
        url: Secret::new(format!("{}/services/T0/B0/token", receiver.url())),
        url_file: None,
    });
    let mut webhook = channel("hook");
    webhook.webhook = Some(WebhookConfig {
        url: format!("{}/hooks/hcmon?source=test", receiver.url()),
        secret: Some(Secret::new("shared-secret")),
        secret_file: None,
    });
    let (channels, _) = build(&[slack, webhook], quick_retry(1));
    let firing = notification(NotificationKind::Firing);
    assert_delivered(&channels.deliver("chat", &firing).await, 1);
    assert_delivered(&channels.deliver("hook", &firing).await, 1);
    let requests = receiver.wait_for(2, WAIT).await?;

    let slack = &requests[0];
    assert_eq!(
        (slack.method.as_str(), slack.path.as_str()),
        ("POST", "/services/T0/B0/token")
    );
    assert_eq!(slack.header("content-type"), Some("application/json"));
    let payload = slack.json()?;
    assert_eq!(
        payload["text"].as_str().unwrap_or_default().lines().next(),
        Some("*[FIRING:1] HighCpu on nas (critical)*")
    );
    let attachment = &payload["attachments"][0];
    assert_eq!(attachment["title"], "HighCpu: CPU busy above 90%");
    assert_eq!(attachment["color"], "#d00000");
    let fields = attachment["fields"].to_string();
    for fact in [
        "critical (firing)",
        "node nas",
        "97.5, threshold 90",
        "(for 12m)",
    ] {
        assert!(fields.contains(fact), "{fact:?} missing from {fields}");
    }
    let text = attachment["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("<https://hcmon.lan/api/v1/alerts/a1b2c3/ack?sig=f00d|Acknowledge>")
            && text.contains("`hcmon alerts ack a1b2c3`"),
        "{text}"
    );

    let hook = &requests[1];
    assert_eq!(hook.path, "/hooks/hcmon?source=test");
    let timestamp = hook.header("x-hcmon-timestamp").expect("timestamp header");
    let age_s = now_ms() / 1000 - timestamp.parse::<i64>()?;
    assert!(
        (0..60).contains(&age_s),
        "timestamp {timestamp} is {age_s}s old"
    );
    // Verified as a receiver would: HMAC-SHA256 over "<timestamp>.<raw body>".
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"shared-secret");
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(&hook.body);
    let expected = format!("sha256={}", hex(ring::hmac::sign(&key, &signed).as_ref()));
    assert_eq!(hook.header("x-hcmon-signature"), Some(expected.as_str()));
    let body = hook.json()?;
    assert_eq!(body["version"], 1);
    assert_eq!(body["kind"], "firing");
    assert_eq!(body["alerts"][0]["id"], "a1b2c3");
    assert_eq!(body["alerts"][0]["labels"]["node"], "nas");
    assert_eq!(body["alerts"][0]["evidence"]["threshold"], 90.0);
    Ok(())
}

#[tokio::test]
async fn webhook_is_delivered_on_the_third_try_after_two_failures() -> anyhow::Result<()> {
    let receiver = HttpReceiver::start_failing(2).await?;
    let mut hook = channel("hook");
    hook.webhook = Some(WebhookConfig {
        url: format!("{}/hook", receiver.url()),
        secret: None,
        secret_file: None,
    });
    let (channels, registry) = build(&[hook], quick_retry(5));

    let report = channels
        .deliver("hook", &notification(NotificationKind::Firing))
        .await;
    assert_delivered(&report, 3);
    assert_eq!(report.errors.len(), 2, "{report:?}");
    for error in &report.errors {
        assert!(
            error.contains("HTTP 500 Internal Server Error") && error.contains("simulated failure"),
            "{error}"
        );
    }
    let statuses: Vec<u16> = receiver.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200]);
    assert!(receiver.requests()[0].header("x-hcmon-signature").is_none());

    let metrics = exposition(&registry);
    for line in [
        "hcmon_collector_notification_attempts_total{channel=\"hook\",outcome=\"error\"} 2",
        "hcmon_collector_notification_attempts_total{channel=\"hook\",outcome=\"ok\"} 1",
        "hcmon_collector_notifications_total{channel=\"hook\",kind=\"firing\",outcome=\"sent\"} 1",
        "hcmon_collector_notification_seconds_count{channel=\"hook\"} 3",
    ] {
        assert!(metrics.contains(line), "{line:?} missing from:\n{metrics}");
    }
    Ok(())
}

#[tokio::test]
async fn a_channel_whose_server_is_down_is_not_delivered_after_all_tries() -> anyhow::Result<()> {
    // A port nobody listens on: bound, read, released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut am = channel("am");
    am.alertmanager = Some(AlertmanagerConfig {
        url: format!("http://127.0.0.1:{port}"),
    });
    let (channels, registry) = build(&[am], quick_retry(3));

    let report = channels
        .deliver("am", &notification(NotificationKind::Firing))
        .await;
    assert!(!report.delivered, "{report:?}");
    assert_eq!(report.attempts, 3);
    assert_eq!(report.errors.len(), 3);
    for error in &report.errors {
        assert!(
            error.starts_with(&format!("connect to 127.0.0.1:{port}: ")),
            "{error}"
        );
    }
    let metrics = exposition(&registry);
    assert!(
        metrics.contains(
            "hcmon_collector_notifications_total{channel=\"am\",kind=\"firing\",outcome=\"failed\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "hcmon_collector_notification_attempts_total{channel=\"am\",outcome=\"error\"} 3"
    ));

    let unknown = channels
        .deliver("nope", &notification(NotificationKind::Firing))
        .await;
    assert_eq!((unknown.delivered, unknown.attempts), (false, 0));
    assert_eq!(unknown.errors, ["no channel named \"nope\""]);
    Ok(())
}

#[tokio::test]
async fn alertmanager_lists_a_delivered_alert_and_drops_it_once_resolved() -> anyhow::Result<()> {
    let alertmanager = Alertmanager::start().await?;
    let mut am = channel("am");
    am.alertmanager = Some(AlertmanagerConfig {
        url: format!("{}/", alertmanager.url()),
    });
    let (channels, _) = build(&[am], quick_retry(1));

    let firing = notification(NotificationKind::Firing);
    let report = channels.deliver("am", &firing).await;
    assert!(report.delivered, "{report:?}\n{}", alertmanager.logs());
    let alerts = alertmanager.alerts().await?;
    let listed = alerts.as_array().expect("a list of alerts");
    assert_eq!(listed.len(), 1, "{alerts:#}");
    let alert = &listed[0];
    assert_eq!(alert["labels"]["alertname"], "HighCpu");
    assert_eq!(alert["labels"]["node"], "nas");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["annotations"]["summary"], "CPU busy above 90%");
    assert_eq!(alert["annotations"]["value"], "97.5");
    assert_eq!(alert["annotations"]["threshold"], "90");
    assert_eq!(
        alert["annotations"]["ack_url"],
        "https://hcmon.lan/api/v1/alerts/a1b2c3/ack?sig=f00d"
    );
    assert_eq!(alert["status"]["state"], "active", "{alert:#}");

    let mut resolved = notification(NotificationKind::Resolved);
    resolved.alerts[0].state = StateKind::Resolved;
    resolved.alerts[0].since_ms = firing.alerts[0].since_ms;
    resolved.alerts[0].resolved_ms = Some(now_ms() - 1000);
    resolved.alerts[0].ack_url = None;
    assert_delivered(&channels.deliver("am", &resolved).await, 1);
    let alerts = alertmanager.alerts().await?;
    assert_eq!(
        alerts,
        serde_json::json!([]),
        "resolved alerts are not listed"
    );
    Ok(())
}

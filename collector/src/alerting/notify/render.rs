//! What notifications say, as pure functions of a [`Notification`]: the email subject and text,
//! the Slack payload, the webhook body and its signature, the Alertmanager alert list. No I/O
//! and no clock (times come from the notification), so every word is unit-tested here and the
//! notifiers only move bytes.
//!
//! Every kind of message carries the same facts per alert: what (alert name and summary), where
//! (node and other labels), since when (UTC and for how long), severity and state, the value
//! with its threshold or expected range, related series, details, and how to acknowledge (the
//! signed link and the `hcmon alerts ack <id>` command).

use super::{AlertSummary, Notification, NotificationKind};
use crate::alerting::lifecycle::StateKind;
use crate::alerting::policy::Severity;
use crate::alerting::time::{rfc3339_millis, writable};
use ring::hmac;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fmt::Write;

/// Slack shows at most 100 attachments; a digest can hold more alerts than anyone reads.
const SLACK_MAX_ATTACHMENTS: usize = 20;

pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Warning => "warning",
        Severity::Error => "error",
        Severity::Critical => "critical",
    }
}

/// The metric and log label for a notification kind.
pub fn kind_name(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Firing => "firing",
        NotificationKind::Resolved => "resolved",
        NotificationKind::Flapping => "flapping",
        NotificationKind::StoppedFlapping => "stopped_flapping",
        NotificationKind::Escalation { .. } => "escalation",
        NotificationKind::Digest => "digest",
    }
}

/// One line that says it all: `[FIRING:2] HighCpu, DiskFilling on nas (critical)`.
pub fn subject(n: &Notification) -> String {
    let count = n.alerts.len();
    let prefix = match n.kind {
        NotificationKind::Firing => format!("[FIRING:{count}]"),
        NotificationKind::Resolved => "[RESOLVED]".to_owned(),
        NotificationKind::Flapping => "[FLAPPING]".to_owned(),
        NotificationKind::StoppedFlapping => "[STABLE]".to_owned(),
        // Tiers are numbered from 1 for people; the index is from 0.
        NotificationKind::Escalation { tier } => format!("[ESCALATION tier {}]", tier + 1),
        NotificationKind::Digest => {
            let s = if count == 1 { "" } else { "s" };
            return format!("[DIGEST] {count} held-back notification{s}");
        }
    };
    let mut names: Vec<&str> = Vec::new();
    for alert in &n.alerts {
        if !names.contains(&alert.name()) {
            names.push(alert.name());
        }
    }
    let mut what = names.iter().take(3).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        write!(what, " +{} more", names.len() - 3).expect("write to String");
    }
    let nodes: BTreeSet<&str> = n
        .alerts
        .iter()
        .filter_map(|a| a.labels.get("node").map(String::as_str))
        .collect();
    let mut line = format!("{prefix} {what}");
    match nodes.len() {
        0 => {}
        1 => write!(line, " on {}", nodes.first().expect("one node")).expect("write to String"),
        many => write!(line, " on {many} nodes").expect("write to String"),
    }
    if n.kind != NotificationKind::Resolved
        && let Some(worst) = n.alerts.iter().map(|a| a.severity).max()
    {
        write!(line, " ({})", severity_name(worst)).expect("write to String");
    }
    line
}

/// The sentence that opens the message: why it is sent.
fn intro(n: &Notification) -> String {
    let count = n.alerts.len();
    let alerts = if count == 1 {
        "1 alert".to_owned()
    } else {
        format!("{count} alerts")
    };
    match n.kind {
        NotificationKind::Firing => format!("{alerts} firing in group {}.", n.group),
        NotificationKind::Resolved => format!("{alerts} resolved in group {}.", n.group),
        NotificationKind::Flapping => format!(
            "{alerts} in group {} keep changing state; this one notice replaces the storm until they settle.",
            n.group
        ),
        NotificationKind::StoppedFlapping => {
            format!("{alerts} in group {} stopped flapping.", n.group)
        }
        NotificationKind::Escalation { tier } => format!(
            "Still firing and unacknowledged: escalated to tier {} ({alerts} in group {}).",
            tier + 1,
            n.group
        ),
        NotificationKind::Digest => format!(
            "{count} notification{} held back by this channel's hourly cap:",
            if count == 1 { " was" } else { "s were" }
        ),
    }
}

/// The facts shown for one alert, phrased once for every kind of message.
struct Facts {
    /// Alert name and summary.
    what: String,
    /// Node and the other identifying labels.
    place: String,
    /// Start in UTC and how long, or when it resolved.
    since: String,
    /// Severity and state.
    severity: String,
    /// The value with its threshold or expected range.
    value: String,
    related: Vec<String>,
    details: Vec<String>,
    description: Option<String>,
    /// The ack link, when there is one and the alert still needs it.
    ack_url: Option<String>,
    /// The CLI command that acknowledges, while the alert still needs it.
    ack_command: Option<String>,
}

impl Facts {
    fn of(alert: &AlertSummary, n: &Notification) -> Self {
        let what = match alert.annotations.get("summary") {
            Some(summary) => format!("{}: {summary}", alert.name()),
            None => alert.name().to_owned(),
        };
        let node = alert.labels.get("node");
        // An agent's series carry `job` and `instance` beside `node`; at their defaults they
        // repeat what "node nas" says.
        let default = |k: &str, v: &str| match k {
            "instance" => node.is_some_and(|n| n == v),
            "job" => node.is_some() && v == "node",
            _ => false,
        };
        let others: Vec<String> = alert
            .labels
            .iter()
            .filter(|(k, v)| {
                !matches!(k.as_str(), "alertname" | "node" | "severity") && !default(k, v)
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let place = match (node, others.is_empty()) {
            (Some(node), true) => format!("node {node}"),
            (Some(node), false) => format!("node {node} ({})", others.join(", ")),
            (None, false) => others.join(", "),
            (None, true) => n.group.clone(),
        };
        let since = match alert.resolved_ms {
            Some(end) => format!(
                "{}, resolved {} after {}",
                utc(alert.since_ms),
                utc(end),
                age(end - alert.since_ms)
            ),
            None => format!(
                "{} (for {})",
                utc(alert.since_ms),
                age(n.at_ms - alert.since_ms)
            ),
        };
        let mut value = number(alert.value);
        if let Some(threshold) = alert.evidence.threshold {
            write!(value, ", threshold {}", number(threshold)).expect("write to String");
        }
        if let Some((low, high)) = alert.evidence.expected {
            write!(value, ", expected {} to {}", number(low), number(high))
                .expect("write to String");
        }
        // Only an alert that still fires unacknowledged asks to be acknowledged.
        let needs_ack = alert.state == StateKind::Firing;
        Self {
            what,
            place,
            since,
            severity: format!("{} ({})", severity_name(alert.severity), alert.state),
            value,
            related: alert.evidence.related.clone(),
            details: alert.evidence.details.clone(),
            description: alert.annotations.get("description").cloned(),
            ack_url: alert.ack_url.clone().filter(|_| needs_ack),
            ack_command: needs_ack.then(|| format!("hcmon alerts ack {}", alert.id)),
        }
    }
}

/// The plain-text email body.
pub fn text(n: &Notification) -> String {
    let mut out = format!("{}\n\n{}\n", subject(n), intro(n));
    for (i, alert) in n.alerts.iter().enumerate() {
        let facts = Facts::of(alert, n);
        writeln!(out, "\n{}. {}", i + 1, facts.what).expect("write to String");
        let mut line = |label: &str, value: &str| {
            writeln!(out, "   {label:<12} {value}").expect("write to String");
        };
        line("Severity:", &facts.severity);
        line("Where:", &facts.place);
        line("Since:", &facts.since);
        line("Value:", &facts.value);
        if let Some(description) = &facts.description {
            line("Description:", description);
        }
        for (j, related) in facts.related.iter().enumerate() {
            line(if j == 0 { "Related:" } else { "" }, related);
        }
        for (j, detail) in facts.details.iter().enumerate() {
            line(if j == 0 { "Details:" } else { "" }, detail);
        }
        match (&facts.ack_url, &facts.ack_command) {
            (Some(url), Some(command)) => {
                line("Acknowledge:", url);
                line("", &format!("or run: {command}"));
            }
            (None, Some(command)) => line("Acknowledge:", &format!("run: {command}")),
            _ => {}
        }
    }
    write!(out, "\n-- \nhcmon collector, {}\n", utc(n.at_ms)).expect("write to String");
    out
}

/// Slack's incoming-webhook payload: a fallback `text` and one attachment per alert.
pub fn slack(n: &Notification) -> Value {
    let mut attachments: Vec<Value> = n
        .alerts
        .iter()
        .take(SLACK_MAX_ATTACHMENTS)
        .map(|alert| {
            let facts = Facts::of(alert, n);
            let mut text = Vec::new();
            if let Some(description) = &facts.description {
                text.push(slack_escape(description));
            }
            text.extend(
                facts
                    .related
                    .iter()
                    .map(|r| format!("• related: {}", slack_escape(r))),
            );
            text.extend(facts.details.iter().map(|d| format!("• {}", slack_escape(d))));
            match (&facts.ack_url, &facts.ack_command) {
                (Some(url), Some(command)) => {
                    text.push(format!("<{url}|Acknowledge> or run `{command}`"));
                }
                (None, Some(command)) => text.push(format!("Acknowledge: run `{command}`")),
                _ => {}
            }
            let field = |title: &str, value: &str, short: bool| {
                json!({"title": title, "value": slack_escape(value), "short": short})
            };
            json!({
                "color": color(alert),
                "fallback": format!("{} on {}", facts.what, facts.place),
                "title": slack_escape(&facts.what),
                "text": text.join("\n"),
                "fields": [
                    field("Severity", &facts.severity, true),
                    field("Where", &facts.place, true),
                    field("Value", &facts.value, true),
                    field("Since", &facts.since, false),
                ],
                "footer": format!("hcmon, group {}", slack_escape(&n.group)),
                "ts": alert.since_ms / 1000,
            })
        })
        .collect();
    if n.alerts.len() > SLACK_MAX_ATTACHMENTS {
        attachments.push(json!({
            "text": format!("… and {} more alerts", n.alerts.len() - SLACK_MAX_ATTACHMENTS),
        }));
    }
    json!({
        "text": format!("*{}*\n{}", slack_escape(&subject(n)), slack_escape(&intro(n))),
        "attachments": attachments,
    })
}

/// Green once resolved, else by severity.
fn color(alert: &AlertSummary) -> &'static str {
    if alert.state == StateKind::Resolved {
        return "#2eb886";
    }
    match alert.severity {
        Severity::Warning => "#daa038",
        Severity::Error => "#e8590c",
        Severity::Critical => "#d00000",
    }
}

/// Slack's three control characters in message text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The generic webhook's body: the notification as JSON plus a format version.
pub fn webhook_body(n: &Notification) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        version: u32,
        #[serde(flatten)]
        notification: &'a Notification,
    }
    serde_json::to_vec(&Body {
        version: 1,
        notification: n,
    })
    .expect("a notification serializes")
}

/// `X-Hcmon-Signature`: `sha256=` and the hex HMAC-SHA256, under `secret`, of
/// `"<timestamp>.<body>"` (the timestamp binds the signature to `X-Hcmon-Timestamp`, so a
/// receiver can refuse replays of old requests).
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("sha256={}", hex(context.sign().as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        write!(out, "{b:02x}").expect("write to String");
        out
    })
}

/// Alertmanager's `POST /api/v2/alerts` body. Labels identify the alert (with `alertname` and
/// `severity` always present); the evidence and ack link travel as annotations.
pub fn alertmanager(n: &Notification) -> Value {
    let alerts: Vec<Value> = n
        .alerts
        .iter()
        .map(|alert| {
            let mut labels = alert.labels.clone();
            labels
                .entry("alertname".to_owned())
                .or_insert_with(|| alert.name().to_owned());
            labels
                .entry("severity".to_owned())
                .or_insert_with(|| severity_name(alert.severity).to_owned());
            let mut annotations = alert.annotations.clone();
            let evidence = &alert.evidence;
            let mut annotate = |key: &str, value: String| {
                annotations.insert(key.to_owned(), value);
            };
            annotate("value", number(alert.value));
            annotate("hcmon_id", alert.id.to_string());
            if let Some(threshold) = evidence.threshold {
                annotate("threshold", number(threshold));
            }
            if let Some((low, high)) = evidence.expected {
                annotate("expected", format!("{} to {}", number(low), number(high)));
            }
            if !evidence.related.is_empty() {
                annotate("related", evidence.related.join("\n"));
            }
            if !evidence.details.is_empty() {
                annotate("details", evidence.details.join("\n"));
            }
            if let Some(url) = &alert.ack_url {
                annotate("ack_url", url.clone());
            }
            let mut body = json!({
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339_millis(alert.since_ms),
            });
            if let Some(end) = alert.resolved_ms {
                body["endsAt"] = json!(rfc3339_millis(end));
            }
            body
        })
        .collect();
    Value::Array(alerts)
}

/// `2024-05-01 12:00:00 UTC`.
pub fn utc(ms: i64) -> String {
    let iso = humantime::format_rfc3339_seconds(writable(ms)).to_string();
    format!("{} UTC", iso.trim_end_matches('Z').replacen('T', " ", 1))
}

/// A coarse age for people: `45s`, `12m`, `3h 5m`, `2d 4h`.
fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// A value as people read it: at most three decimals, no trailing zeros, tiny ones in
/// scientific notation rather than rounded to 0.
fn number(v: f64) -> String {
    if let Some(text) = crate::json_f64::non_finite_text(v) {
        return text.to_owned();
    }
    if v != 0.0 && v.abs() < 1e-3 {
        return format!("{v:.2e}");
    }
    let fixed = format!("{v:.3}");
    if fixed.contains('.') {
        fixed.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        fixed
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::Evidence;
    use super::*;
    use crate::alerting::ids::AlertId;
    use std::collections::BTreeMap;

    /// 2024-05-01 12:00:00 UTC.
    const T0: i64 = 1_714_564_800_000;
    const MIN: i64 = 60_000;

    fn alert(name: &str, node: &str, severity: Severity) -> AlertSummary {
        let labels = BTreeMap::from([
            ("alertname".to_owned(), name.to_owned()),
            ("node".to_owned(), node.to_owned()),
            ("severity".to_owned(), severity_name(severity).to_owned()),
        ]);
        AlertSummary {
            id: AlertId::from(format!("{name}-{node}")),
            labels,
            annotations: BTreeMap::from([(
                "summary".to_owned(),
                format!("{name} is above its threshold"),
            )]),
            severity,
            state: StateKind::Firing,
            since_ms: T0,
            resolved_ms: None,
            value: 97.5,
            evidence: Evidence {
                threshold: Some(90.0),
                expected: None,
                related: vec![
                    "rose 40 s after node_disk_io_time_seconds{node=\"nas\"}, r=0.93".to_owned(),
                ],
                details: vec!["forecast reaches 100 in 5h10m".to_owned()],
            },
            ack_url: Some(format!("https://hcmon.lan/ack/{name}-{node}?sig=abc")),
        }
    }

    /// A firing group of two alerts on `nas`, 12 minutes after they fired.
    pub(crate) fn firing() -> Notification {
        let mut disk = alert("DiskFilling", "nas", Severity::Critical);
        disk.labels
            .insert("mountpoint".to_owned(), "/data".to_owned());
        // An agent's defaults, which the place leaves out as saying "node nas" again.
        disk.labels.insert("job".to_owned(), "node".to_owned());
        disk.labels.insert("instance".to_owned(), "nas".to_owned());
        disk.evidence = Evidence {
            threshold: None,
            expected: Some((10.0, 60.0)),
            ..Evidence::default()
        };
        disk.annotations.insert(
            "description".to_owned(),
            "The data volume fills up.".to_owned(),
        );
        Notification {
            kind: NotificationKind::Firing,
            group: "node=\"nas\"".to_owned(),
            alerts: vec![alert("HighCpu", "nas", Severity::Error), disk],
            recipients: Vec::new(),
            at_ms: T0 + 12 * MIN,
        }
    }

    fn resolved() -> Notification {
        let mut n = firing();
        n.kind = NotificationKind::Resolved;
        n.alerts.truncate(1);
        n.alerts[0].state = StateKind::Resolved;
        n.alerts[0].resolved_ms = Some(T0 + 75 * MIN);
        n.alerts[0].ack_url = None;
        n.at_ms = T0 + 75 * MIN;
        n
    }

    #[track_caller]
    fn contains_all(text: &str, parts: &[&str]) {
        for part in parts {
            assert!(text.contains(part), "{part:?} missing from:\n{text}");
        }
    }

    #[track_caller]
    fn contains_none(text: &str, parts: &[&str]) {
        for part in parts {
            assert!(!text.contains(part), "{part:?} unexpected in:\n{text}");
        }
    }

    /// What, where, since, severity, evidence and how to acknowledge, for both alerts.
    const FIRING_FACTS: &[&str] = &[
        "HighCpu: HighCpu is above its threshold",
        "DiskFilling: DiskFilling is above its threshold",
        "node nas",
        "node nas (mountpoint=/data)",
        "2024-05-01 12:00:00 UTC (for 12m)",
        "error (firing)",
        "critical (firing)",
        "97.5, threshold 90",
        "97.5, expected 10 to 60",
        "rose 40 s after node_disk_io_time_seconds",
        "forecast reaches 100 in 5h10m",
        "The data volume fills up.",
        "https://hcmon.lan/ack/HighCpu-nas?sig=abc",
        "hcmon alerts ack HighCpu-nas",
        "hcmon alerts ack DiskFilling-nas",
    ];

    #[test]
    fn subjects() {
        let check = |n: &Notification, expected: &str| assert_eq!(subject(n), expected);
        let mut n = firing();
        check(&n, "[FIRING:2] HighCpu, DiskFilling on nas (critical)");
        check(&resolved(), "[RESOLVED] HighCpu on nas");
        n.kind = NotificationKind::Escalation { tier: 1 };
        check(
            &n,
            "[ESCALATION tier 2] HighCpu, DiskFilling on nas (critical)",
        );
        n.kind = NotificationKind::Flapping;
        check(&n, "[FLAPPING] HighCpu, DiskFilling on nas (critical)");
        n.kind = NotificationKind::Firing;
        n.alerts = ["A", "B", "C", "D", "A"]
            .iter()
            .enumerate()
            .map(|(i, name)| alert(name, &format!("n{i}"), Severity::Warning))
            .collect();
        check(&n, "[FIRING:5] A, B, C +1 more on 5 nodes (warning)");
        n.kind = NotificationKind::Digest;
        check(&n, "[DIGEST] 5 held-back notifications");
        n.alerts.truncate(1);
        check(&n, "[DIGEST] 1 held-back notification");
    }

    #[test]
    fn email_text_has_every_fact() {
        let body = text(&firing());
        contains_all(&body, FIRING_FACTS);
        contains_all(
            &body,
            &[
                "2 alerts firing in group node=\"nas\".",
                "1. HighCpu",
                "2. DiskFilling",
            ],
        );
        assert!(body.is_ascii(), "mail bodies stay 7-bit: {body}");
    }

    #[test]
    fn resolved_text_says_when_and_asks_for_no_ack() {
        let body = text(&resolved());
        contains_all(
            &body,
            &[
                "1 alert resolved in group",
                "2024-05-01 12:00:00 UTC, resolved 2024-05-01 13:15:00 UTC after 1h 15m",
                "error (resolved)",
            ],
        );
        contains_none(&body, &["Acknowledge", "hcmon alerts ack"]);
    }

    #[test]
    fn digest_and_escalation_texts() {
        let mut n = firing();
        n.kind = NotificationKind::Digest;
        contains_all(
            &text(&n),
            &["2 notifications were held back by this channel's hourly cap:"],
        );
        n.kind = NotificationKind::Escalation { tier: 0 };
        contains_all(
            &text(&n),
            &[
                "unacknowledged: escalated to tier 1",
                "hcmon alerts ack HighCpu-nas",
            ],
        );
        n.alerts[0].state = StateKind::Acknowledged;
        contains_none(&text(&n), &["hcmon alerts ack HighCpu-nas"]);
    }

    #[test]
    fn slack_payload_has_every_fact_and_the_ack_link() {
        let payload = slack(&firing());
        let text = payload.to_string();
        let unescaped = text.replace("\\\"", "\"");
        contains_all(
            &unescaped,
            &FIRING_FACTS
                .iter()
                .filter(|f| !f.starts_with("https://"))
                .copied()
                .collect::<Vec<_>>(),
        );
        contains_all(
            &unescaped,
            &["<https://hcmon.lan/ack/HighCpu-nas?sig=abc|Acknowledge>"],
        );
        assert_eq!(payload["attachments"][1]["color"], "#d00000");
        assert_eq!(payload["attachments"][0]["ts"], T0 / 1000);
        let resolved = slack(&resolved());
        assert_eq!(resolved["attachments"][0]["color"], "#2eb886");
        assert!(slack_escape("a<b>&c") == "a&lt;b&gt;&amp;c");
    }

    #[test]
    fn slack_caps_attachments() {
        let mut n = firing();
        n.kind = NotificationKind::Digest;
        n.alerts = (0..25)
            .map(|i| alert("A", &format!("n{i}"), Severity::Warning))
            .collect();
        let payload = slack(&n);
        let attachments = payload["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), SLACK_MAX_ATTACHMENTS + 1);
        assert_eq!(attachments[20]["text"], "… and 5 more alerts");
    }

    #[test]
    fn webhook_body_is_the_notification_with_a_version() {
        let n = firing();
        let body: Value = serde_json::from_slice(&webhook_body(&n)).unwrap();
        assert_eq!(body["version"], 1);
        assert_eq!(body["kind"], "firing");
        assert_eq!(body["group"], "node=\"nas\"");
        assert_eq!(body["alerts"][0]["labels"]["alertname"], "HighCpu");
        assert_eq!(body["alerts"][0]["severity"], "error");
        assert_eq!(
            body["alerts"][1]["evidence"]["expected"],
            json!([10.0, 60.0])
        );
        assert_eq!(body["at_ms"], T0 + 12 * MIN);
    }

    /// RFC 4231 test cases 1 and 2 for HMAC-SHA256, through the same hex encoding.
    #[test]
    fn hmac_matches_rfc_4231() {
        let sign = |key: &[u8], data: &[u8]| {
            hex(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref())
        };
        assert_eq!(
            sign(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The signed message is "<timestamp>.<body>": split as "Jefe"'s test data would be.
        assert_eq!(
            signature(b"Jefe", 1_714_564_800, b"{\"version\":1}"),
            format!("sha256={}", sign(b"Jefe", b"1714564800.{\"version\":1}"))
        );
    }

    #[test]
    fn alertmanager_alerts() {
        let alerts = alertmanager(&firing());
        let disk = &alerts[1];
        assert_eq!(disk["labels"]["alertname"], "DiskFilling");
        assert_eq!(disk["labels"]["node"], "nas");
        assert_eq!(disk["labels"]["severity"], "critical");
        assert_eq!(disk["labels"]["mountpoint"], "/data");
        assert_eq!(disk["annotations"]["expected"], "10 to 60");
        assert_eq!(disk["annotations"]["value"], "97.5");
        assert_eq!(disk["annotations"]["hcmon_id"], "DiskFilling-nas");
        assert_eq!(disk["startsAt"], "2024-05-01T12:00:00.000Z");
        assert!(disk.get("endsAt").is_none());
        assert_eq!(
            alerts[0]["annotations"]["ack_url"],
            "https://hcmon.lan/ack/HighCpu-nas?sig=abc"
        );
        assert_eq!(alerts[0]["annotations"]["threshold"], "90");
        let resolved = alertmanager(&resolved());
        assert_eq!(resolved[0]["endsAt"], "2024-05-01T13:15:00.000Z");
    }

    #[test]
    fn numbers_and_ages() {
        for (v, s) in [
            (97.5, "97.5"),
            (90.0, "90"),
            (0.0, "0"),
            (0.12345, "0.123"),
            (-3.1, "-3.1"),
            (0.00012, "1.20e-4"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(number(v), s);
        }
        for (ms, s) in [
            (45_000, "45s"),
            (12 * MIN, "12m"),
            (120 * MIN, "2h"),
            (185 * MIN, "3h 5m"),
            (52 * 60 * MIN, "2d 4h"),
            (-5, "0s"),
        ] {
            assert_eq!(age(ms), s);
        }
    }
}

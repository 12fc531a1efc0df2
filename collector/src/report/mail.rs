//! Mailing a scheduled report through the email channels of `[alerting]`: the HTML rendering as
//! the body, the PDF attached. Each route (one per email channel) is tried with the alert
//! notifications' retry policy; the report counts as mailed only when every route delivered.
//!
//! The message is built by the pure [`message`]; [`Mailer::send`] only moves it.

use super::config::MailRoute;
use super::model::Report;
use super::schedule::Schedule;
use crate::alerting::config::AlertingConfig;
use crate::alerting::notify::{ChannelError, ChannelMailer, MailFailure, RetryPolicy};
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use std::collections::BTreeMap;

/// What a mail carries: its subject, the HTML body and the PDF with its file name.
pub struct Contents {
    pub subject: String,
    pub html: Vec<u8>,
    pub pdf: Vec<u8>,
    pub filename: String,
}

/// `hcmon monthly report: November 2026 — 2 of 14 SLOs breached`.
pub fn subject(schedule: Schedule, period: &str, report: &Report) -> String {
    let summary = &report.summary;
    let verdict = match (summary.slos, summary.breached) {
        (0, _) => "no SLOs".to_owned(),
        (slos, 0) => format!("none of {slos} SLOs breached"),
        (slos, breached) => format!("{breached} of {slos} SLOs breached"),
    };
    format!("hcmon {schedule} report: {period} — {verdict}")
}

/// The message to `to` from `from`: HTML body (the HTML rendering is self-contained, charts
/// inline), the PDF attached.
pub fn message(from: &Mailbox, to: &[Mailbox], contents: &Contents) -> Result<Message, String> {
    let mut builder = Message::builder()
        .message_id(None)
        .user_agent(concat!("hcmon-collector/", env!("CARGO_PKG_VERSION")).to_owned())
        .from(from.clone())
        .subject(contents.subject.clone());
    for mailbox in to {
        builder = builder.to(mailbox.clone());
    }
    let html = String::from_utf8_lossy(&contents.html).into_owned();
    let pdf_type = ContentType::parse("application/pdf").map_err(|e| e.to_string())?;
    let body = MultiPart::mixed()
        .singlepart(SinglePart::html(html))
        .singlepart(
            Attachment::new(contents.filename.clone()).body(contents.pdf.clone(), pdf_type),
        );
    builder
        .multipart(body)
        .map_err(|e| format!("building the message: {e}"))
}

/// The email channels reports may use, built once.
pub struct Mailer {
    channels: BTreeMap<String, ChannelMailer>,
    retry: RetryPolicy,
}

/// A route that could not deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mailing through channel {channel} failed after {attempts} tries: {last}")]
pub struct MailError {
    pub channel: String,
    pub attempts: u32,
    pub last: String,
    /// The server refused the message or the credentials: trying later cannot help either.
    pub permanent: bool,
}

impl Mailer {
    /// The email channels of `alerting`, with its retry policy.
    pub fn new(alerting: &AlertingConfig) -> Result<Self, ChannelError> {
        let mut channels = BTreeMap::new();
        for channel in alerting.all_channels() {
            if let Some(email) = &channel.email {
                channels.insert(
                    channel.name.clone(),
                    ChannelMailer::new(&channel.name, email)?,
                );
            }
        }
        Ok(Self {
            channels,
            retry: alerting.retry.clone(),
        })
    }

    /// Sends `contents` along every route, each retried with backoff; fails with the first
    /// route that did not deliver (the routes before it did).
    pub async fn send(&self, routes: &[MailRoute], contents: &Contents) -> Result<(), MailError> {
        for route in routes {
            self.send_route(route, contents).await?;
        }
        Ok(())
    }

    async fn send_route(&self, route: &MailRoute, contents: &Contents) -> Result<(), MailError> {
        let failed = |attempts, last: String, permanent| MailError {
            channel: route.channel.clone(),
            attempts,
            last,
            permanent,
        };
        let Some(mailer) = self.channels.get(&route.channel) else {
            let problem = "no such email channel (the config was validated without it)";
            return Err(failed(0, problem.into(), true));
        };
        let to = match route.addresses.is_empty() {
            true => mailer.to().to_vec(),
            false => route
                .addresses
                .iter()
                .map(|a| a.parse::<Mailbox>())
                .collect::<Result<_, _>>()
                .map_err(|e| failed(0, format!("a recipient address: {e}"), true))?,
        };
        let message = message(mailer.from(), &to, contents).map_err(|e| failed(0, e, true))?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match mailer.send(message.clone()).await {
                Ok(()) => return Ok(()),
                Err(MailFailure { permanent, message }) => {
                    tracing::warn!(
                        channel = route.channel,
                        attempt = attempts,
                        error = message,
                        "mailing a report failed"
                    );
                    if permanent || attempts >= self.retry.attempts {
                        return Err(failed(attempts, message, permanent));
                    }
                }
            }
            tokio::time::sleep(self.retry.backoff(attempts)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_carries_html_and_the_pdf() {
        let contents = Contents {
            subject: "hcmon monthly report: November 2026 — 2 of 14 SLOs breached".into(),
            html: b"<html><body><h1>Report</h1></body></html>".to_vec(),
            pdf: b"%PDF-1.7 fake".to_vec(),
            filename: "hcmon-monthly-2026-11.pdf".into(),
        };
        let from: Mailbox = "hcmon <hcmon@example.com>".parse().unwrap();
        let to: Vec<Mailbox> = vec!["ops@example.com".parse().unwrap()];
        let message = message(&from, &to, &contents).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        for part in [
            "Subject: hcmon monthly report: November 2026 =?utf-8?b?4oCU?= 2 of 14 SLOs",
            "To: ops@example.com",
            "Content-Type: multipart/mixed;",
            "Content-Type: text/html; charset=utf-8",
            "<h1>Report</h1>",
            "Content-Disposition: attachment; filename=\"hcmon-monthly-2026-11.pdf\"",
            "Content-Type: application/pdf",
        ] {
            assert!(text.contains(part), "{part:?} missing from:\n{text}");
        }
    }
}

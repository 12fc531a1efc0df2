//! Email over SMTP (lettre on rustls with ring): STARTTLS, implicit TLS or none, AUTH
//! (PLAIN or LOGIN) when a username is set, extra roots from `ca_file`. The transport is built
//! once per channel; each notification opens its own session, since alerts are rare.
//!
//! SMTP 5xx answers (bad recipient, failed AUTH) are permanent and not retried; connection
//! failures and 4xx answers are.

use super::config::{ChannelError, EmailConfig, EmailTls, invalid, parse_mailbox};
use super::{Notification, SendError, render};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub(super) struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// `host:port`, for error messages.
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl SmtpNotifier {
    /// Builds the transport; reads `ca_file`. `at` is the channel's key (`channels.<name>`).
    pub(super) fn new(at: &str, config: &EmailConfig) -> Result<Self, ChannelError> {
        let at = format!("{at}.email");
        let tls = match config.tls {
            EmailTls::None => Tls::None,
            EmailTls::Starttls => Tls::Required(tls_parameters(&at, config)?),
            EmailTls::Tls => Tls::Wrapper(tls_parameters(&at, config)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls);
        if let (Some(username), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(
                username.clone(),
                password.expose().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            server: format!("{}:{}", config.host, config.port),
            from: parse_mailbox(&format!("{at}.from"), &config.from)?,
            to: config
                .to
                .iter()
                .enumerate()
                .map(|(i, to)| parse_mailbox(&format!("{at}.to[{i}]"), to))
                .collect::<Result<_, _>>()?,
        })
    }

    pub(super) async fn send(&self, n: &Notification) -> Result<(), SendError> {
        let to = if n.recipients.is_empty() {
            self.to.clone()
        } else {
            n.recipients
                .iter()
                .map(|r| parse_mailbox("recipient", r))
                .collect::<Result<_, _>>()
                .map_err(|e| SendError::Permanent(e.to_string()))?
        };
        let mut message = Message::builder()
            // A Message-ID from the host name: mail without one looks like spam to filters.
            .message_id(None)
            .user_agent(concat!("hcmon-collector/", env!("CARGO_PKG_VERSION")).to_owned())
            .from(self.from.clone())
            .subject(render::subject(n))
            .header(ContentType::TEXT_PLAIN);
        for mailbox in to {
            message = message.to(mailbox);
        }
        let message = message
            .body(render::text(n))
            .map_err(|e| SendError::Permanent(format!("building the message: {e}")))?;
        self.deliver(message).await
    }

    async fn deliver(&self, message: Message) -> Result<(), SendError> {
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => {
                Err(SendError::Permanent(format!("SMTP {}: {e}", self.server)))
            }
            Err(e) => Err(SendError::Transient(format!("SMTP {}: {e}", self.server))),
        }
    }
}

/// An email channel sending mail that is not an alert notification (the scheduled reports):
/// the channel's transport, TLS, AUTH and `From:`, one try per [`ChannelMailer::send`].
pub struct ChannelMailer(SmtpNotifier);

/// Why one try to send failed; `permanent` when the server refused the message or the
/// credentials, so another try cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MailFailure {
    pub permanent: bool,
    pub message: String,
}

impl ChannelMailer {
    /// The mailer of the email channel `channel` (`config` is its `[email]`); reads `ca_file`.
    pub fn new(channel: &str, config: &EmailConfig) -> Result<Self, ChannelError> {
        SmtpNotifier::new(&format!("channels.{channel}"), config).map(Self)
    }

    /// The channel's `From:`.
    pub fn from(&self) -> &Mailbox {
        &self.0.from
    }

    /// The channel's own `To:` mailboxes.
    pub fn to(&self) -> &[Mailbox] {
        &self.0.to
    }

    /// One try, bounded by the notifications' send timeout.
    pub async fn send(&self, message: Message) -> Result<(), MailFailure> {
        let outcome = tokio::time::timeout(super::SEND_TIMEOUT, self.0.deliver(message)).await;
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(SendError::Permanent(message))) => Err(MailFailure {
                permanent: true,
                message,
            }),
            Ok(Err(SendError::Transient(message))) => Err(MailFailure {
                permanent: false,
                message,
            }),
            Err(_) => Err(MailFailure {
                permanent: false,
                message: format!(
                    "SMTP {}: no answer within {:?}",
                    self.0.server,
                    super::SEND_TIMEOUT
                ),
            }),
        }
    }
}

fn tls_parameters(at: &str, config: &EmailConfig) -> Result<TlsParameters, ChannelError> {
    let mut builder = TlsParameters::builder(config.host.clone())
        .dangerous_accept_invalid_certs(config.insecure_skip_verify);
    if let Some(path) = &config.ca_file {
        let key = format!("{at}.ca_file");
        let pem = std::fs::read(path)
            .map_err(|e| invalid(&key, format!("cannot read {}: {e}", path.display())))?;
        // lettre accepts a file without any certificate and would then trust nothing extra.
        if !pem
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
        {
            return Err(invalid(
                key,
                format!("{} holds no PEM certificate", path.display()),
            ));
        }
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| invalid(&key, format!("{}: {e}", path.display())))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| invalid(at, format!("TLS setup: {e}")))
}

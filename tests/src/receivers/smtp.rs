//! A small real SMTP server (RFC 5321) for tests: EHLO/HELO, STARTTLS (RFC 3207) with a
//! self-signed certificate for `localhost` and `127.0.0.1`, AUTH PLAIN and LOGIN (any
//! credentials are accepted and recorded), MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP,
//! QUIT. It keeps every message it accepts.
//!
//! With `require_tls`, AUTH and MAIL are refused (530) until STARTTLS, as a real submission
//! server does, so a test proves the client encrypted before sending anything that matters.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// Credentials a client authenticated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpCredentials {
    /// `PLAIN` or `LOGIN`.
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The `MAIL FROM` address, without angle brackets.
    pub from: String,
    /// The `RCPT TO` addresses, in order.
    pub to: Vec<String>,
    /// The message as sent (headers and body, CRLF line ends), dot-unstuffed, without the
    /// final `.` line.
    pub data: String,
    /// Whether the session had switched to TLS before the message.
    pub tls: bool,
    /// Who authenticated in this session, if anyone did.
    pub auth: Option<SmtpCredentials>,
}

impl ReceivedMail {
    /// The value of the first header called `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            match &mut value {
                Some(v) if line.starts_with([' ', '\t']) => v.push_str(line),
                Some(_) => break,
                None => {
                    if let Some((key, rest)) = line.split_once(':')
                        && key.eq_ignore_ascii_case(name)
                    {
                        value = Some(rest.trim_start().to_owned());
                    }
                }
            }
        }
        value
    }

    /// Everything after the header block.
    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }
}

/// A running SMTP server on `127.0.0.1`; stops when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    cert_pem: String,
    messages: Arc<Mutex<Vec<ReceivedMail>>>,
    server: JoinHandle<()>,
}

/// What every session shares.
struct Shared {
    acceptor: TlsAcceptor,
    require_tls: bool,
    messages: Arc<Mutex<Vec<ReceivedMail>>>,
}

impl SmtpSink {
    /// Starts on a free port. With `require_tls`, AUTH and MAIL need STARTTLS first.
    pub async fn start(require_tls: bool) -> anyhow::Result<Self> {
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .context("self-signed certificate")?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let messages = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            require_tls,
            messages: messages.clone(),
        });
        Ok(Self {
            addr,
            cert_pem: certified.cert.pem(),
            messages,
            server: tokio::spawn(serve(listener, shared)),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server certificate, PEM: write it to a file for a client's `ca_file`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Messages accepted so far.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.messages.lock().expect("sink lock").clone()
    }

    /// Waits for at least `n` messages and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<ReceivedMail>> {
        super::wait_for(&self.messages, n, timeout, "messages").await
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Accepts connections; the sessions live in a `JoinSet`, so aborting this task ends them too.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        while sessions.try_join_next().is_some() {}
        // A session's I/O error ends that session only; the client sees the broken connection.
        sessions.spawn(session(stream, shared.clone()));
    }
}

/// The state of one SMTP session.
#[derive(Default)]
struct Session {
    tls: bool,
    auth: Option<SmtpCredentials>,
    from: Option<String>,
    to: Vec<String>,
}

/// How a conversation on one stream ended.
enum Next {
    Quit,
    StartTls,
}

async fn session(tcp: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let mut plain = BufReader::new(tcp);
    reply(&mut plain, "220 localhost hcmon test SMTP sink").await?;
    let mut state = Session::default();
    if let Next::StartTls = converse(&mut plain, &mut state, &shared).await? {
        // The client sends nothing after STARTTLS until our 220, so no bytes are buffered.
        let tls = shared.acceptor.accept(plain.into_inner()).await?;
        // RFC 3207: after the handshake the session starts over; nothing before it counts.
        let mut state = Session {
            tls: true,
            ..Session::default()
        };
        converse(&mut BufReader::new(tls), &mut state, &shared).await?;
    }
    Ok(())
}

async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    line: &str,
) -> io::Result<()> {
    let out = io.get_mut();
    out.write_all(line.as_bytes()).await?;
    out.write_all(b"\r\n").await?;
    // TLS streams hold writes until flushed.
    out.flush().await
}

/// One line without its CRLF; `None` at end of stream.
async fn read_line<S: AsyncRead + Unpin>(io: &mut BufReader<S>) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    if io.read_until(b'\n', &mut line).await? == 0 {
        return Ok(None);
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

/// The address inside `FROM:<...>` / `TO:<...>`, ignoring parameters after it.
fn path_argument(argument: &str, prefix: &str) -> Option<String> {
    let rest = argument.get(..prefix.len())?;
    if !rest.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = argument[prefix.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    inner.split_once('>').map(|(address, _)| address.to_owned())
}

fn decode(text: &str) -> Option<String> {
    let bytes = BASE64.decode(text.trim()).ok()?;
    String::from_utf8(bytes).ok()
}

/// Serves commands until QUIT, end of stream, or STARTTLS (which the caller performs).
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    state: &mut Session,
    shared: &Shared,
) -> io::Result<Next> {
    let secured = |state: &Session| state.tls || !shared.require_tls;
    while let Some(line) = read_line(io).await? {
        let (verb, argument) = line.split_once(' ').unwrap_or((&line, ""));
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                state.from = None;
                state.to.clear();
                let mut lines = vec!["250-localhost greets you"];
                if !state.tls {
                    lines.push("250-STARTTLS");
                }
                if secured(state) {
                    lines.push("250-AUTH PLAIN LOGIN");
                }
                lines.push("250 8BITMIME");
                reply(io, &lines.join("\r\n")).await?;
            }
            "HELO" => reply(io, "250 localhost").await?,
            "STARTTLS" if state.tls => reply(io, "503 5.5.1 TLS already active").await?,
            "STARTTLS" => {
                reply(io, "220 2.0.0 Ready to start TLS").await?;
                return Ok(Next::StartTls);
            }
            "AUTH" | "MAIL" if !secured(state) => {
                reply(io, "530 5.7.0 Must issue a STARTTLS command first").await?;
            }
            "AUTH" => {
                let (mechanism, initial) = argument.split_once(' ').unwrap_or((argument, ""));
                let mechanism = mechanism.to_ascii_uppercase();
                let credentials = match mechanism.as_str() {
                    "PLAIN" => {
                        let response = if initial.is_empty() {
                            reply(io, "334 ").await?;
                            read_line(io).await?.unwrap_or_default()
                        } else {
                            initial.to_owned()
                        };
                        // authorization identity NUL user NUL password (RFC 4616)
                        decode(&response).and_then(|text| {
                            let mut parts = text.split('\0');
                            let _authzid = parts.next()?;
                            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
                        })
                    }
                    "LOGIN" => {
                        let username = if initial.is_empty() {
                            reply(io, "334 VXNlcm5hbWU6").await?; // "Username:"
                            read_line(io).await?.unwrap_or_default()
                        } else {
                            initial.to_owned()
                        };
                        reply(io, "334 UGFzc3dvcmQ6").await?; // "Password:"
                        let password = read_line(io).await?.unwrap_or_default();
                        decode(&username).zip(decode(&password))
                    }
                    _ => {
                        reply(io, "504 5.5.4 Unrecognized authentication type").await?;
                        continue;
                    }
                };
                match credentials {
                    Some((username, password)) => {
                        state.auth = Some(SmtpCredentials {
                            mechanism,
                            username,
                            password,
                        });
                        reply(io, "235 2.7.0 Authentication successful").await?;
                    }
                    None => reply(io, "501 5.5.2 Cannot decode response").await?,
                }
            }
            "MAIL" => match path_argument(argument, "FROM:") {
                Some(from) => {
                    state.from = Some(from);
                    state.to.clear();
                    reply(io, "250 2.1.0 OK").await?;
                }
                None => reply(io, "501 5.5.4 Syntax: MAIL FROM:<address>").await?,
            },
            "RCPT" if state.from.is_none() => reply(io, "503 5.5.1 MAIL first").await?,
            "RCPT" => match path_argument(argument, "TO:") {
                Some(to) => {
                    state.to.push(to);
                    reply(io, "250 2.1.5 OK").await?;
                }
                None => reply(io, "501 5.5.4 Syntax: RCPT TO:<address>").await?,
            },
            "DATA" if state.to.is_empty() => reply(io, "503 5.5.1 RCPT first").await?,
            "DATA" => {
                reply(io, "354 End data with <CR><LF>.<CR><LF>").await?;
                let mut lines = Vec::new();
                loop {
                    let Some(line) = read_line(io).await? else {
                        return Ok(Next::Quit);
                    };
                    if line == "." {
                        break;
                    }
                    // RFC 5321 4.5.2: the client doubled every leading dot.
                    lines.push(line.strip_prefix('.').map_or(line.clone(), str::to_owned));
                }
                let mail = ReceivedMail {
                    from: state.from.take().unwrap_or_default(),
                    to: std::mem::take(&mut state.to),
                    data: lines.join("\r\n"),
                    tls: state.tls,
                    auth: state.auth.clone(),
                };
                shared.messages.lock().expect("sink lock").push(mail);
                reply(io, "250 2.0.0 OK queued").await?;
            }
            "RSET" => {
                state.from = None;
                state.to.clear();
                reply(io, "250 2.0.0 OK").await?;
            }
            "NOOP" => reply(io, "250 2.0.0 OK").await?,
            "QUIT" => {
                reply(io, "221 2.0.0 Bye").await?;
                return Ok(Next::Quit);
            }
            _ => reply(io, "502 5.5.2 Command not recognized").await?,
        }
    }
    Ok(Next::Quit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_arguments() {
        assert_eq!(
            path_argument("FROM:<a@b.c> BODY=8BITMIME", "FROM:").as_deref(),
            Some("a@b.c")
        );
        assert_eq!(path_argument("to: <x@y>", "TO:").as_deref(), Some("x@y"));
        assert_eq!(path_argument("FROM:a@b.c", "FROM:"), None);
        assert_eq!(path_argument("TO:<x@y>", "FROM:"), None);
    }

    #[test]
    fn headers_unfold() {
        let mail = ReceivedMail {
            from: String::new(),
            to: Vec::new(),
            data: "Subject: a\r\n b\r\nTo: x@y\r\n\r\nbody\r\n.dot".to_owned(),
            tls: false,
            auth: None,
        };
        assert_eq!(mail.header("subject").as_deref(), Some("a b"));
        assert_eq!(mail.header("TO").as_deref(), Some("x@y"));
        assert_eq!(mail.header("From"), None);
        assert_eq!(mail.body(), "body\r\n.dot");
    }
}

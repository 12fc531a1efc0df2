//! Application probes: Redis, memcached, HTTP(S) and TCP checks of services near the node.
//!
//! # Design
//! - A probe speaks the service's own protocol (RESP, memcached text, HTTP/1.1) over a tokio
//!   connection opened for each run, reads the server's statistics and times a real round trip
//!   (Redis and memcached: write, read back and delete a short-lived probe key). No client
//!   library: the protocols are small, and owning them keeps the agent light.
//! - [`Probes::collect`] runs every probe at once; each run is bounded by its own `timeout`, so
//!   one collection takes at most the longest configured timeout.
//! - A run fills a per-probe sample list before it can fail, so statistics read before a later
//!   step failed (say the server answered `INFO` but refused the write) are still reported, next
//!   to `..._up 0`.
//! - A failed run counts one `hcmon_probe_errors_total{probe, target, name, reason}`. The counters
//!   live in [`Probes`] across runs; every reason a probe kind can fail with is reported from the
//!   first run, at 0, so the first failure is an increase and not a new series.
//! - A target going down is logged at warn once, with the reason, and coming back at info once;
//!   nothing is logged while its state stays the same.
//! - Every sample carries `target` (the address or URL) and `name` (configured, defaulting to the
//!   target), so several probes of one kind never share a series.
//! - The run that does all this is written once, in [`runner`]; a probe kind is its config, its
//!   [`runner::Check`] (one check over its protocol) and its parsers.

mod http;
mod memcached;
mod redis;
mod runner;
mod tcp;

pub use http::HttpCheckConfig;
pub use memcached::MemcachedProbeConfig;
pub use redis::RedisProbeConfig;
pub use tcp::TcpCheckConfig;

use crate::collect::BatchBuilder;
use runner::{AnyProbe, Check, Probe};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Time a probe run may take when the config does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

/// `[probes]` in the agent's TOML: several of each allowed.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbesConfig {
    /// Redis servers, `[[probes.redis]]`.
    pub redis: Vec<RedisProbeConfig>,
    /// memcached servers, `[[probes.memcached]]`.
    pub memcached: Vec<MemcachedProbeConfig>,
    /// HTTP(S) endpoints, `[[probes.http]]`.
    pub http: Vec<HttpCheckConfig>,
    /// TCP ports that should accept connections, `[[probes.tcp]]`.
    pub tcp: Vec<TcpCheckConfig>,
}

impl ProbesConfig {
    /// Checks values the types alone cannot. The message names the offending key, e.g.
    /// `probes.redis[0].address: "foo" is not host:port`.
    pub fn validate(&self) -> Result<(), ProbeConfigError> {
        let mut seen = Seen::default();
        for (i, probe) in self.redis.iter().enumerate() {
            let key = format!("probes.redis[{i}]");
            probe.validate(&key)?;
            seen.check(&key, "redis", &probe.address, probe.name.as_deref())?;
        }
        for (i, probe) in self.memcached.iter().enumerate() {
            let key = format!("probes.memcached[{i}]");
            probe.validate(&key)?;
            seen.check(&key, "memcached", &probe.address, probe.name.as_deref())?;
        }
        for (i, probe) in self.http.iter().enumerate() {
            let key = format!("probes.http[{i}]");
            probe.validate(&key)?;
            seen.check(&key, "http", &probe.url, probe.name.as_deref())?;
        }
        for (i, probe) in self.tcp.iter().enumerate() {
            let key = format!("probes.tcp[{i}]");
            probe.validate(&key)?;
            seen.check(&key, "tcp", &probe.address, probe.name.as_deref())?;
        }
        Ok(())
    }
}

/// A `[[probes.*]]` entry that cannot be used. `key` names the entry (`probes.redis[0]`); the
/// message adds the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeConfigError {
    #[error("{key}.address: {address:?} is not host:port")]
    Address { key: String, address: String },
    #[error("{key}.name: {name:?} must be non-empty text; leave it out to use the target")]
    Name { key: String, name: String },
    #[error("{key}.timeout: must be more than 0")]
    Timeout { key: String },
    #[error("{key}.username: set together with `password`")]
    UsernameWithoutPassword { key: String },
    #[error("{key}.url: {url:?} is not an http:// or https:// URL with a host")]
    Url { key: String, url: String },
    #[error("{key}.method: {method:?} is not an HTTP method")]
    Method { key: String, method: String },
    #[error("{key}.expect_status: {status} is not an HTTP status (100..=599)")]
    ExpectStatus { key: String, status: u16 },
    /// Two entries would write the same series.
    #[error("{key}: same target and name as {first}; give one of them a different `name`")]
    Duplicate { key: String, first: String },
}

/// Probes that would write the same series.
#[derive(Default)]
struct Seen(BTreeMap<(&'static str, String, String), String>);

impl Seen {
    fn check(
        &mut self,
        key: &str,
        kind: &'static str,
        target: &str,
        name: Option<&str>,
    ) -> Result<(), ProbeConfigError> {
        let name = name.unwrap_or(target).to_owned();
        match self
            .0
            .insert((kind, target.to_owned(), name), key.to_owned())
        {
            Some(first) => Err(ProbeConfigError::Duplicate {
                key: key.to_owned(),
                first,
            }),
            None => Ok(()),
        }
    }
}

/// Checks a `host:port` address (`[v6]:port` for IPv6 literals).
fn validate_address(key: &str, address: &str) -> Result<(), ProbeConfigError> {
    let bad = || {
        Err(ProbeConfigError::Address {
            key: key.to_owned(),
            address: address.to_owned(),
        })
    };
    let Some((host, port)) = address.rsplit_once(':') else {
        return bad();
    };
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        }
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 && host_ok => Ok(()),
        _ => bad(),
    }
}

fn validate_timeout(key: &str, timeout: Duration) -> Result<(), ProbeConfigError> {
    if timeout.is_zero() {
        return Err(ProbeConfigError::Timeout {
            key: key.to_owned(),
        });
    }
    Ok(())
}

fn validate_name(key: &str, name: Option<&str>) -> Result<(), ProbeConfigError> {
    match name {
        Some(name) if name.is_empty() || name.contains('\0') => Err(ProbeConfigError::Name {
            key: key.to_owned(),
            name: name.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// The configured probes and what they remember between runs (error counts, up/down state).
pub struct Probes(Vec<Box<dyn AnyProbe>>);

impl Probes {
    /// Builds the probes of a validated config (see [`ProbesConfig::validate`]).
    pub fn new(config: &ProbesConfig) -> Self {
        fn probes<C: Check + Clone>(configs: &[C]) -> impl Iterator<Item = Box<dyn AnyProbe>> {
            configs
                .iter()
                .cloned()
                .map(|config| Box::new(Probe::new(config)) as Box<dyn AnyProbe>)
        }
        Self(
            probes(&config.redis)
                .chain(probes(&config.memcached))
                .chain(probes(&config.http))
                .chain(probes(&config.tcp))
                .collect(),
        )
    }

    /// Whether no probe is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Runs every probe once (concurrently, each bounded by its timeout) and adds the samples to
    /// `out`.
    pub async fn collect(&mut self, out: &mut BatchBuilder) {
        let runs = self.0.iter_mut().map(|probe| probe.run());
        for samples in futures_util::future::join_all(runs).await {
            samples.write_to(out);
        }
    }
}

/// Why a probe run failed: the `reason` label of `hcmon_probe_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reason {
    /// The TCP connection could not be opened (refused, unreachable, name not resolved).
    Connect,
    /// No complete answer within the probe's timeout.
    Timeout,
    /// The connection broke after it was opened.
    Io,
    /// The server refused the credentials, or wants some.
    Auth,
    /// The server answered something that is not its protocol, or not the expected reply.
    Protocol,
    /// The server answered a command with an error.
    Command,
    /// The probe key read back did not hold the value just written.
    Mismatch,
    /// The TLS handshake failed (certificate not trusted, expired, wrong name, ...).
    Tls,
    /// The HTTP status was not the expected one.
    Status,
    /// The probe's configuration cannot be used ([`ProbesConfig::validate`] rejects it).
    Config,
}

impl Reason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Io => "io",
            Self::Auth => "auth",
            Self::Protocol => "protocol",
            Self::Command => "command",
            Self::Mismatch => "mismatch",
            Self::Tls => "tls",
            Self::Status => "status",
            Self::Config => "config",
        }
    }
}

/// A failed probe run: why (the counter's label) and the details (for the log).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProbeError {
    pub reason: Reason,
    pub detail: String,
}

impl ProbeError {
    pub(crate) fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }

    /// An I/O error on an open connection; a timeout there is reported as one.
    pub(crate) fn io(error: &std::io::Error) -> Self {
        let reason = match error.kind() {
            std::io::ErrorKind::TimedOut => Reason::Timeout,
            _ => Reason::Io,
        };
        Self::new(reason, error.to_string())
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.detail)
    }
}

/// Opens a TCP connection, reporting failures as [`Reason::Connect`].
pub(crate) async fn connect(address: &str) -> Result<tokio::net::TcpStream, ProbeError> {
    let stream = tokio::net::TcpStream::connect(address).await.map_err(|e| {
        ProbeError::new(Reason::Connect, format!("cannot connect to {address}: {e}"))
    })?;
    // Requests are small and written whole: do not let Nagle hold them back.
    stream.set_nodelay(true).ok();
    Ok(stream)
}

/// Largest reply a probe buffers; servers' statistics are a few kilobytes.
const MAX_REPLY_BYTES: usize = 16 << 20;

/// A request/reply connection: writes whole requests and reads replies with a pure parser.
pub(crate) struct Connection {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

/// What a reply parser makes of a buffer: `Ok(None)` while it holds no complete reply yet, else
/// the reply and the number of bytes it used.
pub(crate) type Parsed<T> = Result<Option<(T, usize)>, ProbeError>;

/// A reply parser.
pub(crate) type Parse<T> = fn(&[u8]) -> Parsed<T>;

impl Connection {
    pub(crate) fn new(stream: tokio::net::TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends `request` and reads one reply with `parse`.
    pub(crate) async fn call<T>(
        &mut self,
        request: &[u8],
        parse: Parse<T>,
    ) -> Result<T, ProbeError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream
            .write_all(request)
            .await
            .map_err(|e| ProbeError::io(&e))?;
        loop {
            if let Some((reply, used)) = parse(&self.buf)? {
                self.buf.drain(..used);
                return Ok(reply);
            }
            if self.buf.len() > MAX_REPLY_BYTES {
                return Err(ProbeError::new(
                    Reason::Protocol,
                    format!("reply longer than {MAX_REPLY_BYTES} bytes"),
                ));
            }
            let mut chunk = [0; 8192];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| ProbeError::io(&e))?;
            if n == 0 {
                return Err(ProbeError::new(
                    Reason::Io,
                    "server closed the connection before a complete reply",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The first `\r\n`-terminated line at `start`: the line (without `\r\n`) and where the next
/// begins, or `None` when it is not complete yet.
pub(crate) fn line_at(buf: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(start..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], start + end + 2))
}

/// A random token for probe keys and values, so concurrent agents never collide.
pub(crate) fn random_token() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// Reasons any probe over TCP can fail with.
pub(crate) const NETWORK_REASONS: [Reason; 3] = [Reason::Connect, Reason::Timeout, Reason::Io];

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        probes: ProbesConfig,
    }

    fn parse(text: &str) -> ProbesConfig {
        toml::from_str::<File>(text).unwrap().probes
    }

    #[test]
    fn parses_several_probes_of_each_kind_with_defaults() {
        let config = parse(
            r#"
            [[probes.redis]]
            [[probes.redis]]
            address = "cache.lan:6380"
            name = "sessions"
            username = "monitor"
            password = "s3cret"
            db = 2
            timeout = "500ms"

            [[probes.memcached]]

            [[probes.http]]
            url = "https://example.org/health"
            method = "HEAD"
            expect_status = 204
            insecure_skip_verify = true

            [[probes.tcp]]
            address = "127.0.0.1:22"
            timeout = "1s"
            "#,
        );
        assert_eq!(config.redis.len(), 2);
        assert_eq!(config.redis[0], RedisProbeConfig::default());
        assert_eq!(config.redis[0].address, "127.0.0.1:6379");
        assert_eq!(config.redis[0].timeout, Duration::from_secs(2));
        assert_eq!(config.redis[1].name.as_deref(), Some("sessions"));
        assert_eq!(config.redis[1].username.as_deref(), Some("monitor"));
        assert_eq!(config.redis[1].password.as_deref(), Some("s3cret"));
        assert_eq!(config.redis[1].db, 2);
        assert_eq!(config.redis[1].timeout, Duration::from_millis(500));
        assert_eq!(config.memcached[0].address, "127.0.0.1:11211");
        assert_eq!(config.http[0].method, "HEAD");
        assert_eq!(config.http[0].expect_status, Some(204));
        assert!(config.http[0].insecure_skip_verify);
        assert_eq!(config.http[0].timeout, DEFAULT_TIMEOUT);
        assert_eq!(config.tcp[0].timeout, Duration::from_secs(1));
        config.validate().unwrap();
        assert!(!format!("{:?}", config.redis[1]).contains("s3cret"));
    }

    #[test]
    fn rejects_unknown_keys_and_missing_targets() {
        assert!(toml::from_str::<File>("[[probes.redis]]\nadress = \"x:1\"").is_err());
        assert!(toml::from_str::<File>("[[probes.http]]\nmethod = \"GET\"").is_err());
        assert!(toml::from_str::<File>("[[probes.tcp]]\ntimeout = \"1s\"").is_err());
        assert!(toml::from_str::<File>("[probes]\nmysql = []").is_err());
    }

    fn check(text: &str, expected: &str) {
        assert_eq!(
            parse(text).validate().unwrap_err().to_string(),
            expected,
            "{text}"
        );
    }

    #[test]
    fn validation_names_the_key() {
        check(
            "[[probes.redis]]\naddress = \"foo\"",
            "probes.redis[0].address: \"foo\" is not host:port",
        );
        check(
            "[[probes.redis]]\n[[probes.redis]]\naddress = \"a:0\"",
            "probes.redis[1].address: \"a:0\" is not host:port",
        );
        check(
            "[[probes.memcached]]\naddress = \"[::1:11211\"",
            "probes.memcached[0].address: \"[::1:11211\" is not host:port",
        );
        check(
            "[[probes.tcp]]\naddress = \"host:22\"\ntimeout = \"0s\"",
            "probes.tcp[0].timeout: must be more than 0",
        );
        check(
            "[[probes.redis]]\nusername = \"u\"",
            "probes.redis[0].username: set together with `password`",
        );
        check(
            "[[probes.http]]\nurl = \"ftp://example.org/\"",
            "probes.http[0].url: \"ftp://example.org/\" is not an http:// or https:// URL with a host",
        );
        check(
            "[[probes.http]]\nurl = \"http://x/\"\nmethod = \"G T\"",
            "probes.http[0].method: \"G T\" is not an HTTP method",
        );
        check(
            "[[probes.http]]\nurl = \"http://x/\"\nexpect_status = 42",
            "probes.http[0].expect_status: 42 is not an HTTP status (100..=599)",
        );
        check(
            "[[probes.tcp]]\naddress = \"h:1\"\nname = \"\"",
            "probes.tcp[0].name: \"\" must be non-empty text; leave it out to use the target",
        );
        check(
            "[[probes.tcp]]\naddress = \"h:1\"\n[[probes.tcp]]\naddress = \"h:1\"",
            "probes.tcp[1]: same target and name as probes.tcp[0]; give one of them a different `name`",
        );
        let ok = parse(
            "[[probes.tcp]]\naddress = \"h:1\"\n[[probes.tcp]]\naddress = \"h:1\"\nname = \"b\"\n\
             [[probes.tcp]]\naddress = \"[::1]:22\"",
        );
        ok.validate().unwrap();
    }

    #[test]
    fn collection_can_run_on_any_runtime_thread() {
        fn assert_send<T: Send>(_: &T) {}
        let mut probes = Probes::new(&ProbesConfig::default());
        assert!(probes.is_empty());
        let mut batch = BatchBuilder::new(0);
        let collection = probes.collect(&mut batch);
        assert_send(&collection);
    }
}

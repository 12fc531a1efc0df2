//! memcached probe: `stats` and a timed set/get/delete of a short-lived probe key, in the text
//! protocol over one TCP connection per run.
//!
//! `stats` comes first so the probe's own `get` shows up in the hit counter of the next run.
//! memcached has no commands-per-second figure; `memcached_commands_total` (from `cmd_get` and
//! `cmd_set`) gives it as a rate.

use super::runner::{Check, Samples, Target};
use super::{
    Connection, NETWORK_REASONS, Parsed, ProbeConfigError, ProbeError, Reason, connect,
    default_timeout, line_at, random_token, validate_address, validate_name, validate_timeout,
};
use crate::collect::Metric;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const HITS: Metric = Metric::counter(
    "memcached_get_hits_total",
    "get lookups that found the key since memcached started.",
);
const MISSES: Metric = Metric::counter(
    "memcached_get_misses_total",
    "get lookups of missing keys since memcached started.",
);
const HIT_RATIO: Metric = Metric::ratio(
    "memcached_get_hit_ratio",
    "Share of get lookups that found the key since memcached started: hits / (hits + misses).",
);
const MEMORY_USED: Metric = Metric::gauge(
    "memcached_memory_used_bytes",
    "Bytes used to store items (stats bytes).",
);
const MEMORY_LIMIT: Metric = Metric::gauge(
    "memcached_memory_limit_bytes",
    "Bytes memcached may use for storage (stats limit_maxbytes).",
);
const MEMORY_USED_RATIO: Metric = Metric::ratio(
    "memcached_memory_used_ratio",
    "bytes / limit_maxbytes (0..1).",
);
const ITEMS: Metric = Metric::gauge("memcached_items", "Items currently stored.");
const CONNECTIONS: Metric = Metric::gauge(
    "memcached_connections",
    "Connections open (stats curr_connections).",
);
const EVICTIONS: Metric = Metric::counter(
    "memcached_evictions_total",
    "Valid items removed to free memory for new ones since memcached started.",
);
const EXPIRED_UNFETCHED: Metric = Metric::counter(
    "memcached_expired_unfetched_total",
    "Items that expired without ever being read since memcached started.",
);
const RECLAIMED: Metric = Metric::counter(
    "memcached_reclaimed_total",
    "Times an expired item's memory was reused for a new item since memcached started.",
);
const REJECTED: Metric = Metric::counter(
    "memcached_rejected_connections_total",
    "Connections refused because of the connection limit since memcached started.",
);
const COMMANDS: Metric = Metric::counter(
    "memcached_commands_total",
    "Commands served since memcached started, by command (get, set).",
);
const OP_DURATION: Metric = Metric::gauge(
    "memcached_op_duration_seconds",
    "Round trip of one probe command: op=write (set), read (get), delete (delete).",
)
.with_decimals(6);
const CHECK_DURATION: Metric = Metric::gauge(
    "memcached_check_duration_seconds",
    "Time from sending the probe's set to receiving its delete reply.",
)
.with_decimals(6);

/// Largest value a `get` reply may announce; the probe only reads back its own short value.
const MAX_VALUE_BYTES: usize = 64 << 20;

/// Seconds the probe key lives if the run never deletes it.
const PROBE_KEY_TTL_SECONDS: u32 = 10;

fn default_address() -> String {
    "127.0.0.1:11211".into()
}

/// One memcached server to probe, `[[probes.memcached]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemcachedProbeConfig {
    /// `host:port` of the server (`[v6]:port` for IPv6 literals).
    #[serde(default = "default_address")]
    pub address: String,
    /// The `name` label of this probe's series; defaults to `address`.
    #[serde(default)]
    pub name: Option<String>,
    /// Time one run (connect, stats, set, get, delete) may take before it counts as a failure
    /// with reason `timeout`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for MemcachedProbeConfig {
    fn default() -> Self {
        Self {
            address: default_address(),
            name: None,
            timeout: default_timeout(),
        }
    }
}

impl MemcachedProbeConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ProbeConfigError> {
        validate_address(key, &self.address)?;
        validate_name(key, self.name.as_deref())?;
        validate_timeout(key, self.timeout)
    }
}

impl Check for MemcachedProbeConfig {
    const KIND: &'static str = "memcached";
    const UP: Metric = Metric::gauge(
        "memcached_up",
        "1 when the last memcached probe run succeeded (connect, stats, set, get back, delete), else 0.",
    );

    fn target(&self) -> Target {
        Target::new(&self.address, self.name.as_deref())
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn reasons(&self) -> Vec<Reason> {
        [
            &NETWORK_REASONS[..],
            &[Reason::Protocol, Reason::Command, Reason::Mismatch],
        ]
        .concat()
    }

    async fn check(&self, samples: &mut Samples) -> Result<(), ProbeError> {
        let mut conn = Connection::new(connect(&self.address).await?);
        let stats = conn.call(b"stats\r\n", parse_stats).await?;
        report(&stats, samples);

        let key = format!("hcmon:probe:{}", random_token());
        let value = random_token();
        let started = Instant::now();

        let set = format!(
            "set {key} 0 {PROBE_KEY_TTL_SECONDS} {}\r\n{value}\r\n",
            value.len()
        );
        let reply = conn.call(set.as_bytes(), parse_line).await?;
        samples.push_with(
            OP_DURATION,
            &[("op", "write")],
            started.elapsed().as_secs_f64(),
        );
        if reply != "STORED" {
            return Err(ProbeError::new(
                Reason::Command,
                format!("set {key}: {reply}"),
            ));
        }

        let read_at = Instant::now();
        let read = conn
            .call(format!("get {key}\r\n").as_bytes(), parse_get)
            .await?;
        samples.push_with(
            OP_DURATION,
            &[("op", "read")],
            read_at.elapsed().as_secs_f64(),
        );
        match read {
            Some(read) if read == value.as_bytes() => {}
            Some(read) => {
                return Err(ProbeError::new(
                    Reason::Mismatch,
                    format!(
                        "get {key} returned {:?}, not the {value:?} just written",
                        String::from_utf8_lossy(&read)
                    ),
                ));
            }
            None => {
                return Err(ProbeError::new(
                    Reason::Mismatch,
                    format!("get {key} found nothing right after set"),
                ));
            }
        }

        let delete_at = Instant::now();
        let reply = conn
            .call(format!("delete {key}\r\n").as_bytes(), parse_line)
            .await?;
        samples.push_with(
            OP_DURATION,
            &[("op", "delete")],
            delete_at.elapsed().as_secs_f64(),
        );
        match reply.as_str() {
            "DELETED" => {}
            "NOT_FOUND" => {
                return Err(ProbeError::new(
                    Reason::Mismatch,
                    format!("delete {key}: NOT_FOUND right after set"),
                ));
            }
            _ => {
                return Err(ProbeError::new(
                    Reason::Command,
                    format!("delete {key}: {reply}"),
                ));
            }
        }
        samples.push(CHECK_DURATION, started.elapsed().as_secs_f64());
        Ok(())
    }
}

fn report(stats: &BTreeMap<String, String>, samples: &mut Samples) {
    let number = |field: &str| stats.get(field)?.parse::<f64>().ok();
    let mut push = |metric: Metric, field: &str| {
        if let Some(value) = number(field) {
            samples.push(metric, value);
        }
    };
    push(HITS, "get_hits");
    push(MISSES, "get_misses");
    push(MEMORY_USED, "bytes");
    push(MEMORY_LIMIT, "limit_maxbytes");
    push(ITEMS, "curr_items");
    push(CONNECTIONS, "curr_connections");
    push(EVICTIONS, "evictions");
    push(EXPIRED_UNFETCHED, "expired_unfetched");
    push(RECLAIMED, "reclaimed");
    push(REJECTED, "rejected_connections");
    if let (Some(hits), Some(misses)) = (number("get_hits"), number("get_misses"))
        && hits + misses > 0.0
    {
        samples.push(HIT_RATIO, hits / (hits + misses));
    }
    if let (Some(used), Some(limit)) = (number("bytes"), number("limit_maxbytes"))
        && limit > 0.0
    {
        samples.push(MEMORY_USED_RATIO, used / limit);
    }
    for (command, field) in [("get", "cmd_get"), ("set", "cmd_set")] {
        if let Some(value) = number(field) {
            samples.push_with(COMMANDS, &[("command", command)], value);
        }
    }
}

/// An error line (`ERROR`, `CLIENT_ERROR ...`, `SERVER_ERROR ...`) as a failure.
fn error_line(line: &str) -> Option<ProbeError> {
    let is_error =
        line == "ERROR" || line.starts_with("CLIENT_ERROR ") || line.starts_with("SERVER_ERROR ");
    is_error.then(|| ProbeError::new(Reason::Command, line.to_owned()))
}

fn text(line: &[u8]) -> Result<&str, ProbeError> {
    std::str::from_utf8(line)
        .map_err(|_| ProbeError::new(Reason::Protocol, "reply line is not UTF-8"))
}

/// A one-line reply (`STORED`, `DELETED`, `NOT_FOUND`, ...); error lines are failures.
pub(super) fn parse_line(buf: &[u8]) -> Parsed<String> {
    let Some((line, next)) = line_at(buf, 0) else {
        return Ok(None);
    };
    let line = text(line)?;
    match error_line(line) {
        Some(error) => Err(error),
        None => Ok(Some((line.to_owned(), next))),
    }
}

/// The reply to `stats`: `STAT <name> <value>` lines up to `END`.
pub(super) fn parse_stats(buf: &[u8]) -> Parsed<BTreeMap<String, String>> {
    let mut stats = BTreeMap::new();
    let mut at = 0;
    while let Some((line, next)) = line_at(buf, at) {
        let line = text(line)?;
        if line == "END" {
            return Ok(Some((stats, next)));
        }
        if let Some(error) = error_line(line) {
            return Err(error);
        }
        let Some((name, value)) = line
            .strip_prefix("STAT ")
            .and_then(|stat| stat.split_once(' '))
        else {
            return Err(ProbeError::new(
                Reason::Protocol,
                format!("stats: unexpected line {line:?}"),
            ));
        };
        stats.insert(name.to_owned(), value.to_owned());
        at = next;
    }
    Ok(None)
}

/// The reply to a one-key `get`: the value, or `None` when the key is missing.
pub(super) fn parse_get(buf: &[u8]) -> Parsed<Option<Vec<u8>>> {
    let Some((line, next)) = line_at(buf, 0) else {
        return Ok(None);
    };
    let line = text(line)?;
    if line == "END" {
        return Ok(Some((None, next)));
    }
    if let Some(error) = error_line(line) {
        return Err(error);
    }
    let bad = || ProbeError::new(Reason::Protocol, format!("get: unexpected line {line:?}"));
    // VALUE <key> <flags> <bytes> [<cas unique>]
    let mut words = line.split(' ');
    if words.next() != Some("VALUE") {
        return Err(bad());
    }
    let len: usize = words
        .nth(2)
        .and_then(|n| n.parse().ok())
        .filter(|len| *len <= MAX_VALUE_BYTES)
        .ok_or_else(bad)?;
    let end = next + len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ProbeError::new(
            Reason::Protocol,
            format!("get: value not {len} bytes followed by CRLF"),
        ));
    }
    let Some((after, done)) = line_at(buf, end + 2) else {
        return Ok(None);
    };
    if after != b"END" {
        return Err(ProbeError::new(
            Reason::Protocol,
            "get: value not followed by END",
        ));
    }
    Ok(Some((Some(buf[next..end].to_vec()), done)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From memcached 1.6.18 (trimmed).
    const STATS: &str = "STAT pid 4242\r\nSTAT uptime 120\r\nSTAT version 1.6.18\r\n\
        STAT curr_connections 2\r\nSTAT rejected_connections 0\r\nSTAT cmd_get 7\r\n\
        STAT cmd_set 3\r\nSTAT get_hits 6\r\nSTAT get_misses 2\r\nSTAT get_expired 0\r\n\
        STAT bytes 150\r\nSTAT curr_items 2\r\nSTAT evictions 1\r\nSTAT reclaimed 4\r\n\
        STAT expired_unfetched 3\r\nSTAT limit_maxbytes 600\r\nEND\r\n";

    #[test]
    fn parses_stats() {
        let (stats, used) = parse_stats(STATS.as_bytes()).unwrap().unwrap();
        assert_eq!(used, STATS.len());
        assert_eq!(stats["version"], "1.6.18");
        assert_eq!(stats["get_hits"], "6");
        assert_eq!(stats.len(), 16);
    }

    #[test]
    fn reports_stats_as_metrics() {
        let (stats, _) = parse_stats(STATS.as_bytes()).unwrap().unwrap();
        let mut s = Samples::new(Target::new("127.0.0.1:11211", None));
        report(&stats, &mut s);
        assert_eq!(s.get("memcached_get_hits_total", &[]), Some(6.0));
        assert_eq!(s.get("memcached_get_misses_total", &[]), Some(2.0));
        assert_eq!(s.get("memcached_get_hit_ratio", &[]), Some(0.75));
        assert_eq!(s.get("memcached_memory_used_bytes", &[]), Some(150.0));
        assert_eq!(s.get("memcached_memory_limit_bytes", &[]), Some(600.0));
        assert_eq!(s.get("memcached_memory_used_ratio", &[]), Some(0.25));
        assert_eq!(s.get("memcached_items", &[]), Some(2.0));
        assert_eq!(s.get("memcached_connections", &[]), Some(2.0));
        assert_eq!(s.get("memcached_evictions_total", &[]), Some(1.0));
        assert_eq!(s.get("memcached_expired_unfetched_total", &[]), Some(3.0));
        assert_eq!(s.get("memcached_reclaimed_total", &[]), Some(4.0));
        assert_eq!(
            s.get("memcached_rejected_connections_total", &[]),
            Some(0.0)
        );
        assert_eq!(
            s.get("memcached_commands_total", &[("command", "get")]),
            Some(7.0)
        );
        assert_eq!(
            s.get("memcached_commands_total", &[("command", "set")]),
            Some(3.0)
        );
    }

    #[test]
    fn omits_what_stats_does_not_give() {
        let text = "STAT get_hits 0\r\nSTAT get_misses 0\r\nSTAT bytes 0\r\nEND\r\n";
        let (stats, _) = parse_stats(text.as_bytes()).unwrap().unwrap();
        let mut s = Samples::new(Target::new("127.0.0.1:11211", None));
        report(&stats, &mut s);
        assert_eq!(s.get("memcached_get_hit_ratio", &[]), None);
        assert_eq!(s.get("memcached_memory_used_ratio", &[]), None);
        assert_eq!(s.get("memcached_rejected_connections_total", &[]), None);
    }

    #[test]
    fn waits_for_complete_replies() {
        assert_eq!(parse_stats(b"STAT a 1\r\nSTAT b 2\r\nEN").unwrap(), None);
        assert_eq!(parse_get(b"VALUE k 0 5\r\nhel").unwrap(), None);
        assert_eq!(parse_get(b"VALUE k 0 5\r\nhello\r\nEN").unwrap(), None);
        assert_eq!(parse_line(b"STORED").unwrap(), None);
    }

    #[test]
    fn parses_get_replies() {
        assert_eq!(parse_get(b"END\r\n").unwrap(), Some((None, 5)));
        let hit = b"VALUE hcmon:probe:1 0 5\r\nhello\r\nEND\r\n";
        assert_eq!(
            parse_get(hit).unwrap(),
            Some((Some(b"hello".to_vec()), hit.len()))
        );
        // With a CAS unique, and data holding CRLF.
        let cas = b"VALUE k 0 4 99\r\na\r\nb\r\nEND\r\n";
        assert_eq!(
            parse_get(cas).unwrap(),
            Some((Some(b"a\r\nb".to_vec()), cas.len()))
        );
    }

    #[test]
    fn server_errors_and_garbage_are_failures() {
        fn reason<T: std::fmt::Debug>(result: Result<T, ProbeError>) -> Reason {
            result.unwrap_err().reason
        }
        assert_eq!(
            reason(parse_line(b"SERVER_ERROR out of memory\r\n")),
            Reason::Command
        );
        assert_eq!(reason(parse_stats(b"ERROR\r\n")), Reason::Command);
        assert_eq!(
            reason(parse_get(b"CLIENT_ERROR bad data chunk\r\n")),
            Reason::Command
        );
        assert_eq!(reason(parse_stats(b"+OK\r\n")), Reason::Protocol);
        assert_eq!(reason(parse_get(b"VALUE k 0 x\r\n")), Reason::Protocol);
        assert_eq!(
            reason(parse_get(b"VALUE k 0 1\r\nab\r\nEND\r\n")),
            Reason::Protocol
        );
    }
}

//! Redis probe: `INFO` statistics and a timed write/read/delete of a short-lived probe key,
//! spoken in RESP2 over one TCP connection per run.
//!
//! A run: connect, `AUTH` (when a password is set), `INFO`, `SELECT` (when `db` is not 0), then
//! `SET hcmon:probe:<random> <random> PX 10000`, `GET` it back and compare, `DEL` it. `INFO`
//! comes first so the probe's own `GET` shows up in the hit counter of the next run, not this one.
//! The key expires on its own if the run dies before `DEL`.

use super::runner::{Check, Samples, Target};
use super::{
    Connection, NETWORK_REASONS, Parsed, ProbeConfigError, ProbeError, Reason, connect,
    default_timeout, line_at, random_token, validate_address, validate_name, validate_timeout,
};
use crate::collect::Metric;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

const HITS: Metric = Metric::counter(
    "redis_keyspace_hits_total",
    "Successful key lookups since the Redis server started (INFO keyspace_hits).",
);
const MISSES: Metric = Metric::counter(
    "redis_keyspace_misses_total",
    "Lookups of missing keys since the Redis server started (INFO keyspace_misses).",
);
const HIT_RATIO: Metric = Metric::ratio(
    "redis_keyspace_hit_ratio",
    "Share of key lookups that found the key since the server started: hits / (hits + misses).",
);
const MEMORY_USED: Metric = Metric::gauge(
    "redis_memory_used_bytes",
    "Memory Redis has allocated for its data (INFO used_memory).",
);
const MEMORY_MAX: Metric = Metric::gauge(
    "redis_memory_max_bytes",
    "The maxmemory limit; absent when there is none.",
);
const MEMORY_USED_RATIO: Metric = Metric::ratio(
    "redis_memory_used_ratio",
    "used_memory / maxmemory (0..1, may exceed 1 briefly); absent when there is no limit.",
);
const DB_KEYS: Metric = Metric::gauge("redis_db_keys", "Keys in one Redis database.");
const DB_KEYS_EXPIRING: Metric = Metric::gauge(
    "redis_db_keys_expiring",
    "Keys with an expiry in one Redis database.",
);
const DB_AVG_TTL: Metric = Metric::gauge(
    "redis_db_avg_ttl_seconds",
    "Redis' sampled estimate of the average time to live of expiring keys in one database; \
     absent until Redis has estimated it.",
)
.with_decimals(3);
const EVICTED: Metric = Metric::counter(
    "redis_evicted_keys_total",
    "Keys evicted because of the maxmemory limit since the server started.",
);
const EXPIRED: Metric = Metric::counter(
    "redis_expired_keys_total",
    "Keys removed because their expiry passed since the server started.",
);
const CLIENTS: Metric = Metric::gauge(
    "redis_connected_clients",
    "Client connections open (replicas excluded).",
);
const OPS: Metric = Metric::gauge(
    "redis_instantaneous_ops_per_second",
    "Commands per second, Redis' own estimate over its last few samples.",
);
const REJECTED: Metric = Metric::counter(
    "redis_rejected_connections_total",
    "Connections refused because of the maxclients limit since the server started.",
);
const OP_DURATION: Metric = Metric::gauge(
    "redis_op_duration_seconds",
    "Round trip of one probe command: op=write (SET), read (GET), delete (DEL).",
)
.with_decimals(6);
const CHECK_DURATION: Metric = Metric::gauge(
    "redis_check_duration_seconds",
    "Time from sending the probe's SET to receiving its DEL reply.",
)
.with_decimals(6);

/// How long the probe key lives if the run never deletes it.
const PROBE_KEY_TTL_MS: &str = "10000";

fn default_address() -> String {
    "127.0.0.1:6379".into()
}

/// One Redis server to probe, `[[probes.redis]]`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisProbeConfig {
    /// `host:port` of the server (`[v6]:port` for IPv6 literals).
    #[serde(default = "default_address")]
    pub address: String,
    /// The `name` label of this probe's series; defaults to `address`.
    #[serde(default)]
    pub name: Option<String>,
    /// ACL user to authenticate as (Redis 6+); needs `password`. Without it, `password` is
    /// checked against the default user (`requirepass`).
    #[serde(default)]
    pub username: Option<String>,
    /// Password sent with `AUTH` before any other command; no `AUTH` when absent.
    #[serde(default)]
    pub password: Option<String>,
    /// Database the probe key is written to (`SELECT`); `INFO` reports every database.
    #[serde(default)]
    pub db: u32,
    /// Time one run (connect, auth, INFO, write, read, delete) may take before it counts as a
    /// failure with reason `timeout`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for RedisProbeConfig {
    fn default() -> Self {
        Self {
            address: default_address(),
            name: None,
            username: None,
            password: None,
            db: 0,
            timeout: default_timeout(),
        }
    }
}

/// Keeps the password out of logs and panics.
impl fmt::Debug for RedisProbeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisProbeConfig")
            .field("address", &self.address)
            .field("name", &self.name)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisProbeConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ProbeConfigError> {
        validate_address(key, &self.address)?;
        validate_name(key, self.name.as_deref())?;
        validate_timeout(key, self.timeout)?;
        if self.username.is_some() && self.password.is_none() {
            return Err(ProbeConfigError::UsernameWithoutPassword {
                key: key.to_owned(),
            });
        }
        Ok(())
    }
}

impl Check for RedisProbeConfig {
    const KIND: &'static str = "redis";
    const UP: Metric = Metric::gauge(
        "redis_up",
        "1 when the last Redis probe run succeeded (connect, auth, INFO, write, read back, delete), else 0.",
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
            &[
                Reason::Auth,
                Reason::Protocol,
                Reason::Command,
                Reason::Mismatch,
            ],
        ]
        .concat()
    }

    async fn check(&self, samples: &mut Samples) -> Result<(), ProbeError> {
        let mut conn = Connection::new(connect(&self.address).await?);
        if let Some(password) = &self.password {
            let reply = match &self.username {
                Some(user) => call(&mut conn, &["AUTH", user, password]).await?,
                None => call(&mut conn, &["AUTH", password]).await?,
            };
            match reply {
                Reply::Simple(ok) if ok == "OK" => {}
                Reply::Error(message) => {
                    return Err(ProbeError::new(Reason::Auth, format!("AUTH: {message}")));
                }
                other => return Err(unexpected("AUTH", &other)),
            }
        }

        let info = match call(&mut conn, &["INFO"]).await? {
            Reply::Bulk(text) => Info::parse(&String::from_utf8_lossy(&text)),
            Reply::Error(message) => return Err(server_error("INFO", message)),
            other => return Err(unexpected("INFO", &other)),
        };
        info.report(samples);

        if self.db != 0 {
            expect_ok(
                "SELECT",
                call(&mut conn, &["SELECT", &self.db.to_string()]).await?,
            )?;
        }

        let key = format!("hcmon:probe:{}", random_token());
        let value = random_token();
        let started = Instant::now();

        let reply = call(&mut conn, &["SET", &key, &value, "PX", PROBE_KEY_TTL_MS]).await?;
        samples.push_with(
            OP_DURATION,
            &[("op", "write")],
            started.elapsed().as_secs_f64(),
        );
        expect_ok("SET", reply)?;

        let read_at = Instant::now();
        let reply = call(&mut conn, &["GET", &key]).await?;
        samples.push_with(
            OP_DURATION,
            &[("op", "read")],
            read_at.elapsed().as_secs_f64(),
        );
        match reply {
            Reply::Bulk(read) if read == value.as_bytes() => {}
            Reply::Bulk(read) => {
                return Err(ProbeError::new(
                    Reason::Mismatch,
                    format!(
                        "GET {key} returned {:?}, not the {value:?} just written",
                        String::from_utf8_lossy(&read)
                    ),
                ));
            }
            Reply::Nil => {
                return Err(ProbeError::new(
                    Reason::Mismatch,
                    format!("GET {key} found nothing right after SET"),
                ));
            }
            Reply::Error(message) => return Err(server_error("GET", message)),
            other => return Err(unexpected("GET", &other)),
        }

        let delete_at = Instant::now();
        let reply = call(&mut conn, &["DEL", &key]).await?;
        samples.push_with(
            OP_DURATION,
            &[("op", "delete")],
            delete_at.elapsed().as_secs_f64(),
        );
        match reply {
            Reply::Integer(1) => {}
            Reply::Integer(n) => {
                return Err(ProbeError::new(
                    Reason::Mismatch,
                    format!("DEL {key} deleted {n} keys, not the 1 just written"),
                ));
            }
            Reply::Error(message) => return Err(server_error("DEL", message)),
            other => return Err(unexpected("DEL", &other)),
        }
        samples.push(CHECK_DURATION, started.elapsed().as_secs_f64());
        Ok(())
    }
}

async fn call(conn: &mut Connection, args: &[&str]) -> Result<Reply, ProbeError> {
    conn.call(&encode(args), parse_reply).await
}

fn expect_ok(command: &str, reply: Reply) -> Result<(), ProbeError> {
    match reply {
        Reply::Simple(ok) if ok == "OK" => Ok(()),
        Reply::Error(message) => Err(server_error(command, message)),
        other => Err(unexpected(command, &other)),
    }
}

/// An error reply: an authentication problem, or the command failed.
fn server_error(command: &str, message: String) -> ProbeError {
    let auth = ["NOAUTH", "WRONGPASS", "NOPERM"]
        .iter()
        .any(|code| message.starts_with(code));
    let reason = if auth { Reason::Auth } else { Reason::Command };
    ProbeError::new(reason, format!("{command}: {message}"))
}

fn unexpected(command: &str, reply: &Reply) -> ProbeError {
    ProbeError::new(
        Reason::Protocol,
        format!("{command}: unexpected reply {reply:?}"),
    )
}

/// The statistics of one Redis database, from an INFO keyspace line such as
/// `db0:keys=3,expires=1,avg_ttl=99000`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DbKeys {
    pub db: u32,
    pub keys: u64,
    pub expires: u64,
    pub avg_ttl_ms: u64,
}

/// The fields of an INFO reply (all sections) and its keyspace lines.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Info {
    pub fields: BTreeMap<String, String>,
    pub dbs: Vec<DbKeys>,
}

impl Info {
    /// Parses INFO text: `# Section` headers, `field:value` lines, `dbN:keys=..,...` lines.
    /// Unknown and malformed lines are skipped; a field's absence omits its metric.
    pub(super) fn parse(text: &str) -> Self {
        let mut info = Self::default();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.starts_with('#') {
                continue;
            }
            let Some((field, value)) = line.split_once(':') else {
                continue;
            };
            match parse_db(field, value) {
                Some(db) => info.dbs.push(db),
                None => {
                    info.fields.insert(field.to_owned(), value.to_owned());
                }
            }
        }
        info
    }

    fn number(&self, field: &str) -> Option<f64> {
        self.fields.get(field)?.trim().parse::<f64>().ok()
    }

    fn report(&self, samples: &mut Samples) {
        let mut push = |metric: Metric, field: &str| {
            if let Some(value) = self.number(field) {
                samples.push(metric, value);
            }
        };
        push(HITS, "keyspace_hits");
        push(MISSES, "keyspace_misses");
        push(MEMORY_USED, "used_memory");
        push(EVICTED, "evicted_keys");
        push(EXPIRED, "expired_keys");
        push(CLIENTS, "connected_clients");
        push(OPS, "instantaneous_ops_per_sec");
        push(REJECTED, "rejected_connections");
        if let (Some(hits), Some(misses)) =
            (self.number("keyspace_hits"), self.number("keyspace_misses"))
            && hits + misses > 0.0
        {
            samples.push(HIT_RATIO, hits / (hits + misses));
        }
        if let Some(max) = self.number("maxmemory").filter(|max| *max > 0.0) {
            samples.push(MEMORY_MAX, max);
            if let Some(used) = self.number("used_memory") {
                samples.push(MEMORY_USED_RATIO, used / max);
            }
        }
        for db in &self.dbs {
            let label = db.db.to_string();
            let labels = [("db", label.as_str())];
            samples.push_with(DB_KEYS, &labels, db.keys as f64);
            samples.push_with(DB_KEYS_EXPIRING, &labels, db.expires as f64);
            // 0 means Redis has not sampled the expiring keys yet, not that their TTL is 0.
            if db.expires > 0 && db.avg_ttl_ms > 0 {
                samples.push_with(DB_AVG_TTL, &labels, db.avg_ttl_ms as f64 / 1000.0);
            }
        }
    }
}

fn parse_db(field: &str, value: &str) -> Option<DbKeys> {
    let db = field.strip_prefix("db")?.parse().ok()?;
    let mut keys = None;
    let mut expires = 0;
    let mut avg_ttl_ms = 0;
    for pair in value.split(',') {
        let (name, number) = pair.split_once('=')?;
        match name {
            "keys" => keys = Some(number.parse().ok()?),
            "expires" => expires = number.parse().ok()?,
            "avg_ttl" => avg_ttl_ms = number.parse().ok()?,
            _ => {}
        }
    }
    Some(DbKeys {
        db,
        keys: keys?,
        expires,
        avg_ttl_ms,
    })
}

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    /// The null bulk string or null array.
    Nil,
    Array(Vec<Reply>),
}

/// A command as a RESP array of bulk strings.
pub(super) fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

const MAX_BULK: i64 = 64 << 20;
const MAX_ARRAY: i64 = 1 << 20;
const MAX_DEPTH: usize = 8;

/// Parses one reply from the front of `buf`: `Ok(None)` when more bytes are needed.
pub(super) fn parse_reply(buf: &[u8]) -> Parsed<Reply> {
    parse_at(buf, 0, 0)
}

fn parse_at(buf: &[u8], start: usize, depth: usize) -> Parsed<Reply> {
    let bad = |detail: String| ProbeError::new(Reason::Protocol, detail);
    let Some((line, next)) = line_at(buf, start) else {
        return Ok(None);
    };
    let Some((&kind, rest)) = line.split_first() else {
        return Err(bad("empty reply line".into()));
    };
    let text = || String::from_utf8_lossy(rest).into_owned();
    let integer = || {
        std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| bad(format!("{:?} is not an integer", text())))
    };
    match kind {
        b'+' => Ok(Some((Reply::Simple(text()), next))),
        b'-' => Ok(Some((Reply::Error(text()), next))),
        b':' => Ok(Some((Reply::Integer(integer()?), next))),
        b'$' => {
            let len = integer()?;
            if len == -1 {
                return Ok(Some((Reply::Nil, next)));
            }
            if !(0..=MAX_BULK).contains(&len) {
                return Err(bad(format!("bulk string length {len} out of range")));
            }
            let end = next + len as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(bad("bulk string not followed by CRLF".into()));
            }
            Ok(Some((Reply::Bulk(buf[next..end].to_vec()), end + 2)))
        }
        b'*' => {
            let len = integer()?;
            if len == -1 {
                return Ok(Some((Reply::Nil, next)));
            }
            if !(0..=MAX_ARRAY).contains(&len) {
                return Err(bad(format!("array length {len} out of range")));
            }
            if depth >= MAX_DEPTH {
                return Err(bad(format!("arrays nested deeper than {MAX_DEPTH}")));
            }
            let mut items = Vec::new();
            let mut at = next;
            for _ in 0..len {
                let Some((item, after)) = parse_at(buf, at, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                at = after;
            }
            Ok(Some((Reply::Array(items), at)))
        }
        other => Err(bad(format!("unknown reply type {:?}", other as char))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Option<(Reply, usize)> {
        parse_reply(input).unwrap()
    }

    #[test]
    fn encodes_commands_as_bulk_arrays() {
        assert_eq!(
            encode(&["SET", "k", "", "PX", "10000"]),
            b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n$2\r\nPX\r\n$5\r\n10000\r\n"
        );
    }

    #[test]
    fn parses_every_reply_type() {
        assert_eq!(parse(b"+OK\r\n"), Some((Reply::Simple("OK".into()), 5)));
        assert_eq!(
            parse(b"-WRONGPASS invalid username-password pair\r\n"),
            Some((
                Reply::Error("WRONGPASS invalid username-password pair".into()),
                43
            ))
        );
        assert_eq!(parse(b":-12\r\n"), Some((Reply::Integer(-12), 6)));
        assert_eq!(
            parse(b"$5\r\nhello\r\n+X"),
            Some((Reply::Bulk(b"hello".to_vec()), 11))
        );
        assert_eq!(parse(b"$0\r\n\r\n"), Some((Reply::Bulk(Vec::new()), 6)));
        assert_eq!(parse(b"$-1\r\n"), Some((Reply::Nil, 5)));
        assert_eq!(parse(b"*-1\r\n"), Some((Reply::Nil, 5)));
        // Binary-safe: CRLF inside a bulk string is data.
        assert_eq!(
            parse(b"$4\r\na\r\nb\r\n"),
            Some((Reply::Bulk(b"a\r\nb".to_vec()), 10))
        );
        assert_eq!(
            parse(b"*3\r\n:1\r\n$1\r\nx\r\n*1\r\n+y\r\n"),
            Some((
                Reply::Array(vec![
                    Reply::Integer(1),
                    Reply::Bulk(b"x".to_vec()),
                    Reply::Array(vec![Reply::Simple("y".into())]),
                ]),
                23
            ))
        );
    }

    #[test]
    fn waits_for_incomplete_replies() {
        for partial in [
            &b""[..],
            b"+OK",
            b"+OK\r",
            b"$5\r\nhel",
            b"$5\r\nhello",
            b"$5\r\nhello\r",
            b"*2\r\n:1\r\n",
            b"*2\r\n:1\r\n$3\r\nab",
        ] {
            assert_eq!(
                parse(partial),
                None,
                "{:?}",
                String::from_utf8_lossy(partial)
            );
        }
    }

    #[test]
    fn rejects_what_is_not_resp() {
        for bad in [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            b"\r\n",
            b":12a\r\n",
            b"$-5\r\n",
            b"$3\r\nabcd\r\n",
            b"$99999999999\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        ] {
            let error = parse_reply(bad).unwrap_err();
            assert_eq!(error.reason, Reason::Protocol, "{error}");
        }
    }

    const INFO: &str = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n\r\n\
        # Clients\r\nconnected_clients:3\r\n\r\n# Memory\r\nused_memory:1048576\r\n\
        used_memory_human:1.00M\r\nmaxmemory:4194304\r\n\r\n# Stats\r\n\
        instantaneous_ops_per_sec:17\r\nrejected_connections:2\r\nexpired_keys:5\r\n\
        evicted_keys:1\r\nkeyspace_hits:30\r\nkeyspace_misses:10\r\n\r\n\
        # Keyspace\r\ndb0:keys=12,expires=2,avg_ttl=4500\r\n\
        db3:keys=1,expires=0,avg_ttl=0,subexpiry=0\r\n";

    #[test]
    fn parses_info_fields_and_keyspace() {
        let info = Info::parse(INFO);
        assert_eq!(info.fields["redis_version"], "7.0.15");
        assert_eq!(info.fields["used_memory_human"], "1.00M");
        assert_eq!(
            info.dbs,
            vec![
                DbKeys {
                    db: 0,
                    keys: 12,
                    expires: 2,
                    avg_ttl_ms: 4500
                },
                DbKeys {
                    db: 3,
                    keys: 1,
                    expires: 0,
                    avg_ttl_ms: 0
                },
            ]
        );
        assert!(!info.fields.contains_key("db0"));
    }

    fn report(info: &str) -> Samples {
        let mut samples = Samples::new(Target::new("127.0.0.1:6379", None));
        Info::parse(info).report(&mut samples);
        samples
    }

    #[test]
    fn reports_info_as_metrics() {
        let s = report(INFO);
        assert_eq!(s.get("redis_keyspace_hits_total", &[]), Some(30.0));
        assert_eq!(s.get("redis_keyspace_misses_total", &[]), Some(10.0));
        assert_eq!(s.get("redis_keyspace_hit_ratio", &[]), Some(0.75));
        assert_eq!(s.get("redis_memory_used_bytes", &[]), Some(1048576.0));
        assert_eq!(s.get("redis_memory_max_bytes", &[]), Some(4194304.0));
        assert_eq!(s.get("redis_memory_used_ratio", &[]), Some(0.25));
        assert_eq!(s.get("redis_connected_clients", &[]), Some(3.0));
        assert_eq!(s.get("redis_instantaneous_ops_per_second", &[]), Some(17.0));
        assert_eq!(s.get("redis_rejected_connections_total", &[]), Some(2.0));
        assert_eq!(s.get("redis_expired_keys_total", &[]), Some(5.0));
        assert_eq!(s.get("redis_evicted_keys_total", &[]), Some(1.0));
        assert_eq!(s.get("redis_db_keys", &[("db", "0")]), Some(12.0));
        assert_eq!(s.get("redis_db_keys_expiring", &[("db", "0")]), Some(2.0));
        assert_eq!(s.get("redis_db_avg_ttl_seconds", &[("db", "0")]), Some(4.5));
        assert_eq!(s.get("redis_db_keys", &[("db", "3")]), Some(1.0));
        assert_eq!(s.get("redis_db_avg_ttl_seconds", &[("db", "3")]), None);
    }

    #[test]
    fn omits_ratios_without_a_denominator() {
        let s =
            report("keyspace_hits:0\r\nkeyspace_misses:0\r\nused_memory:100\r\nmaxmemory:0\r\n");
        assert_eq!(s.get("redis_keyspace_hits_total", &[]), Some(0.0));
        assert_eq!(s.get("redis_keyspace_hit_ratio", &[]), None);
        assert_eq!(s.get("redis_memory_max_bytes", &[]), None);
        assert_eq!(s.get("redis_memory_used_ratio", &[]), None);
        // Fields a server does not send are absent, not 0.
        assert_eq!(s.get("redis_connected_clients", &[]), None);
    }

    #[test]
    fn classifies_error_replies() {
        let reason = |m: &str| server_error("INFO", m.into()).reason;
        assert_eq!(reason("NOAUTH Authentication required."), Reason::Auth);
        assert_eq!(
            reason("WRONGPASS invalid username-password pair"),
            Reason::Auth
        );
        assert_eq!(reason("NOPERM this user has no permissions"), Reason::Auth);
        assert_eq!(
            reason("READONLY You can't write against a read only replica."),
            Reason::Command
        );
    }
}

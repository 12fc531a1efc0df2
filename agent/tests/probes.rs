//! Application probes against real servers on loopback: `redis-server` and `memcached` started
//! as processes on free ports (Debian packages `redis-server`, `memcached`; a missing binary
//! fails the test), and HTTP/HTTPS servers run in the test with hyper and rustls, the HTTPS
//! certificate made by rcgen at test time.

use hcmon_agent::collect::BatchBuilder;
use hcmon_agent::probe::{
    HttpCheckConfig, MemcachedProbeConfig, Probes, ProbesConfig, RedisProbeConfig, TcpCheckConfig,
};
use hcmon_agent::spool::SpoolRecord;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

// ---- looking at samples ----

/// The value of the series named `name` having every label in `labels`; panics when several
/// series match, so a test never reads the wrong one by accident.
fn value(record: &SpoolRecord, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut matching = record.series.iter().filter(|d| {
        d.name == name
            && labels
                .iter()
                .all(|(n, v)| d.labels.iter().any(|l| l.name == *n && l.value == *v))
    });
    let def = matching.next()?;
    assert!(
        matching.next().is_none(),
        "several series match {name} {labels:?}"
    );
    record
        .samples
        .iter()
        .find(|s| s.series_id == def.id)
        .and_then(|s| s.values.first().copied())
}

fn must(record: &SpoolRecord, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(record, name, labels).unwrap_or_else(|| {
        let present: Vec<_> = record.series.iter().map(|d| &d.name).collect();
        panic!("no {name} {labels:?}; series present: {present:?}")
    })
}

async fn collect(probes: &mut Probes) -> SpoolRecord {
    let mut batch = BatchBuilder::new(1_700_000_000_000);
    probes.collect(&mut batch).await;
    batch.finish()
}

fn probes(config: ProbesConfig) -> Probes {
    config.validate().expect("test config is valid");
    let probes = Probes::new(&config);
    assert!(!probes.is_empty());
    probes
}

fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} is not within {tolerance} of {expected}"
    );
}

// ---- server processes ----

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A server process, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Starts `program` and waits until it accepts connections on `port`.
    async fn start(program: &'static str, package: &str, port: u16, args: &[&str]) -> Self {
        let child = match Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                "`{program}` is not installed, and this test needs a real server: \
                 apt-get install -y {package}"
            ),
            Err(e) => panic!("cannot start {program}: {e}"),
        };
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return server;
            }
            if let Some(status) = server.child.try_wait().expect("poll the server process") {
                let mut stderr = String::new();
                if let Some(mut pipe) = server.child.stderr.take() {
                    std::io::Read::read_to_string(&mut pipe, &mut stderr).ok();
                }
                panic!("{program} exited with {status} before listening: {stderr}");
            }
            assert!(
                Instant::now() < deadline,
                "{program} did not listen on port {port} within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

async fn redis_server(extra: &[&str]) -> Server {
    let port = free_port();
    let port_arg = port.to_string();
    let mut args = vec![
        "--port",
        &port_arg,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ];
    args.extend_from_slice(extra);
    Server::start("redis-server", "redis-server", port, &args).await
}

async fn memcached_server() -> Server {
    let port = free_port();
    let port_arg = port.to_string();
    // -u: memcached refuses to run as root without a user to switch to; ignored otherwise.
    let args = [
        "-l",
        "127.0.0.1",
        "-p",
        &port_arg,
        "-U",
        "0",
        "-m",
        "16",
        "-u",
        "nobody",
    ];
    Server::start("memcached", "memcached", port, &args).await
}

// ---- raw clients, so the probe is checked against a second implementation ----

/// Sends one RESP command and returns the reply: a simple string or error as its text, a bulk
/// string as its data, a nil as `(nil)`, an integer as its digits.
async fn redis_cmd(conn: &mut BufReader<TcpStream>, args: &[&str]) -> String {
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    conn.get_mut().write_all(request.as_bytes()).await.unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).await.unwrap();
    let line = line.trim_end().to_owned();
    match line.strip_prefix('$') {
        Some("-1") => "(nil)".into(),
        Some(len) => {
            let mut data = vec![0; len.parse::<usize>().unwrap() + 2];
            conn.read_exact(&mut data).await.unwrap();
            String::from_utf8(data[..data.len() - 2].to_vec()).unwrap()
        }
        None => line[1..].to_owned(),
    }
}

async fn redis_client(server: &Server) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(server.address()).await.unwrap())
}

/// Sends one memcached text command and returns the reply lines up to the one `until` accepts.
async fn memcached_cmd(
    conn: &mut BufReader<TcpStream>,
    request: &str,
    until: fn(&str) -> bool,
) -> Vec<String> {
    conn.get_mut().write_all(request.as_bytes()).await.unwrap();
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        let line = line.trim_end().to_owned();
        let done = until(&line);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

fn redis_probe(address: String) -> RedisProbeConfig {
    RedisProbeConfig {
        address,
        ..Default::default()
    }
}

// ---- Redis ----

#[tokio::test]
async fn redis_reports_info_and_a_timed_health_check() {
    let mut server = redis_server(&[]).await;
    let address = server.address();
    let mut raw = redis_client(&server).await;
    assert_eq!(redis_cmd(&mut raw, &["SET", "a", "1"]).await, "OK");
    assert_eq!(redis_cmd(&mut raw, &["SET", "b", "2"]).await, "OK");
    assert_eq!(
        redis_cmd(&mut raw, &["SET", "c", "3", "EX", "1000"]).await,
        "OK"
    );
    // Two hits and one miss.
    assert_eq!(redis_cmd(&mut raw, &["GET", "a"]).await, "1");
    assert_eq!(redis_cmd(&mut raw, &["GET", "b"]).await, "2");
    assert_eq!(redis_cmd(&mut raw, &["GET", "missing"]).await, "(nil)");
    assert_eq!(redis_cmd(&mut raw, &["SELECT", "1"]).await, "OK");
    assert_eq!(redis_cmd(&mut raw, &["SET", "d", "4"]).await, "OK");
    // Redis estimates avg_ttl in its expiry cycle (10 times a second): wait for a first estimate.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !redis_cmd(&mut raw, &["INFO", "keyspace"])
        .await
        .contains("avg_ttl=9")
    {
        assert!(Instant::now() < deadline, "Redis never estimated avg_ttl");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut probes = probes(ProbesConfig {
        redis: vec![redis_probe(address.clone())],
        ..Default::default()
    });
    let r = collect(&mut probes).await;
    let target = [("target", address.as_str()), ("name", address.as_str())];
    assert_eq!(must(&r, "redis_up", &target), 1.0);
    assert_eq!(must(&r, "redis_keyspace_hits_total", &target), 2.0);
    assert_eq!(must(&r, "redis_keyspace_misses_total", &target), 1.0);
    assert_close(
        must(&r, "redis_keyspace_hit_ratio", &target),
        2.0 / 3.0,
        1e-6,
        "hit ratio",
    );
    assert_eq!(must(&r, "redis_db_keys", &[("db", "0")]), 3.0);
    assert_eq!(must(&r, "redis_db_keys", &[("db", "1")]), 1.0);
    assert_eq!(must(&r, "redis_db_keys_expiring", &[("db", "0")]), 1.0);
    assert_eq!(must(&r, "redis_db_keys_expiring", &[("db", "1")]), 0.0);
    assert!(value(&r, "redis_db_avg_ttl_seconds", &[("db", "1")]).is_none());
    let ttl = must(&r, "redis_db_avg_ttl_seconds", &[("db", "0")]);
    assert!(ttl > 990.0 && ttl <= 1000.0, "avg ttl {ttl}");
    assert!(must(&r, "redis_memory_used_bytes", &[]) > 0.0);
    assert!(value(&r, "redis_memory_max_bytes", &[]).is_none());
    assert!(value(&r, "redis_memory_used_ratio", &[]).is_none());
    assert!(must(&r, "redis_connected_clients", &[]) >= 2.0);
    assert!(must(&r, "redis_instantaneous_ops_per_second", &[]) >= 0.0);
    assert_eq!(must(&r, "redis_rejected_connections_total", &[]), 0.0);
    assert_eq!(must(&r, "redis_evicted_keys_total", &[]), 0.0);
    assert_eq!(must(&r, "redis_expired_keys_total", &[]), 0.0);
    let mut ops = 0.0;
    for op in ["write", "read", "delete"] {
        let latency = must(&r, "redis_op_duration_seconds", &[("op", op)]);
        assert!(latency > 0.0 && latency < 2.0, "{op} latency {latency}");
        ops += latency;
    }
    let total = must(&r, "redis_check_duration_seconds", &target);
    assert!(total >= ops - 3e-6, "total {total} < sum of ops {ops}");
    for reason in ["connect", "timeout", "auth", "protocol", "mismatch"] {
        let labels = [("probe", "redis"), ("target", &address), ("reason", reason)];
        assert_eq!(
            must(&r, "hcmon_probe_errors_total", &labels),
            0.0,
            "{reason}"
        );
    }

    // The probe key was deleted, and the probe's own GET is a hit in the next run.
    assert_eq!(redis_cmd(&mut raw, &["SELECT", "0"]).await, "OK");
    assert_eq!(redis_cmd(&mut raw, &["DBSIZE"]).await, "3");
    assert_eq!(
        redis_cmd(&mut raw, &["CONFIG", "SET", "maxmemory", "100000000"]).await,
        "OK"
    );
    let r = collect(&mut probes).await;
    assert_eq!(must(&r, "redis_keyspace_hits_total", &[]), 3.0);
    assert_eq!(must(&r, "redis_memory_max_bytes", &[]), 1e8);
    let used = must(&r, "redis_memory_used_bytes", &[]);
    assert_close(
        must(&r, "redis_memory_used_ratio", &[]),
        used / 1e8,
        1e-6,
        "memory ratio",
    );

    // Killed: down, and the connect error counted on every run.
    drop(raw);
    server.kill();
    for expected in [1.0, 2.0] {
        let r = collect(&mut probes).await;
        assert_eq!(must(&r, "redis_up", &target), 0.0);
        let labels = [
            ("probe", "redis"),
            ("target", &address),
            ("reason", "connect"),
        ];
        assert_eq!(must(&r, "hcmon_probe_errors_total", &labels), expected);
        assert!(value(&r, "redis_keyspace_hits_total", &[]).is_none());
        assert!(value(&r, "redis_op_duration_seconds", &[("op", "write")]).is_none());
    }
}

#[tokio::test]
async fn redis_authenticates_and_counts_auth_failures() {
    let server = redis_server(&["--requirepass", "s3cret"]).await;
    let address = server.address();
    let config = |name: &str, username: Option<&str>, password: Option<&str>| RedisProbeConfig {
        address: address.clone(),
        name: Some(name.into()),
        username: username.map(Into::into),
        password: password.map(Into::into),
        db: 2,
        ..Default::default()
    };
    let mut probes = probes(ProbesConfig {
        redis: vec![
            config("right", None, Some("s3cret")),
            config("acl", Some("default"), Some("s3cret")),
            config("wrong", None, Some("nope")),
            config("none", None, None),
        ],
        ..Default::default()
    });
    let r = collect(&mut probes).await;
    for (name, up) in [("right", 1.0), ("acl", 1.0), ("wrong", 0.0), ("none", 0.0)] {
        assert_eq!(must(&r, "redis_up", &[("name", name)]), up, "{name}");
        let auth = [("probe", "redis"), ("name", name), ("reason", "auth")];
        assert_eq!(
            must(&r, "hcmon_probe_errors_total", &auth),
            1.0 - up,
            "{name}"
        );
    }
    // The write went to the configured database and was cleaned up.
    assert!(
        must(
            &r,
            "redis_op_duration_seconds",
            &[("name", "right"), ("op", "delete")]
        ) > 0.0
    );
    let mut raw = redis_client(&server).await;
    assert_eq!(redis_cmd(&mut raw, &["AUTH", "s3cret"]).await, "OK");
    assert_eq!(
        redis_cmd(&mut raw, &["INFO", "keyspace"]).await,
        "# Keyspace\r\n"
    );
}

/// A RESP server that answers INFO from a fixture and GET with a value never written.
async fn lying_redis() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut conn = BufReader::new(stream);
                loop {
                    let mut header = String::new();
                    if conn.read_line(&mut header).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let argc: usize = header.trim_end()[1..].parse().unwrap();
                    let mut args = Vec::new();
                    for _ in 0..argc {
                        let mut len = String::new();
                        conn.read_line(&mut len).await.unwrap();
                        let mut arg = String::new();
                        conn.read_line(&mut arg).await.unwrap();
                        args.push(arg.trim_end().to_owned());
                    }
                    let reply = match args[0].as_str() {
                        "INFO" => {
                            let info = "# Stats\r\nkeyspace_hits:9\r\nkeyspace_misses:1\r\n";
                            format!("${}\r\n{info}\r\n", info.len())
                        }
                        "SET" => "+OK\r\n".into(),
                        "GET" => "$5\r\nstale\r\n".into(),
                        _ => ":1\r\n".into(),
                    };
                    conn.get_mut().write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    address
}

#[tokio::test]
async fn redis_value_mismatch_is_down_but_keeps_what_was_read() {
    let address = lying_redis().await.to_string();
    let mut probes = probes(ProbesConfig {
        redis: vec![redis_probe(address.clone())],
        ..Default::default()
    });
    let r = collect(&mut probes).await;
    assert_eq!(must(&r, "redis_up", &[]), 0.0);
    let mismatch = [("probe", "redis"), ("reason", "mismatch")];
    assert_eq!(must(&r, "hcmon_probe_errors_total", &mismatch), 1.0);
    assert_eq!(must(&r, "redis_keyspace_hit_ratio", &[]), 0.9);
    assert!(must(&r, "redis_op_duration_seconds", &[("op", "read")]) > 0.0);
    assert!(value(&r, "redis_op_duration_seconds", &[("op", "delete")]).is_none());
}

/// Accepts connections and never answers.
async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    address
}

#[tokio::test]
async fn probes_time_out_concurrently() {
    let silent = silent_server().await.to_string();
    let timeout = Duration::from_millis(400);
    let mut probes = probes(ProbesConfig {
        redis: vec![RedisProbeConfig {
            address: silent.clone(),
            timeout,
            ..Default::default()
        }],
        memcached: vec![MemcachedProbeConfig {
            address: silent.clone(),
            timeout,
            ..Default::default()
        }],
        http: vec![HttpCheckConfig {
            timeout,
            ..http_check(&format!("http://{silent}/"))
        }],
        ..Default::default()
    });
    let started = Instant::now();
    let r = collect(&mut probes).await;
    let took = started.elapsed();
    assert!(
        took >= timeout,
        "returned after {took:?}, before the timeout"
    );
    assert!(
        took < timeout * 2,
        "took {took:?}: probes did not run concurrently"
    );
    for (probe, up) in [
        ("redis", "redis_up"),
        ("memcached", "memcached_up"),
        ("http", "http_check_up"),
    ] {
        assert_eq!(must(&r, up, &[]), 0.0, "{probe}");
        let labels = [("probe", probe), ("reason", "timeout")];
        assert_eq!(
            must(&r, "hcmon_probe_errors_total", &labels),
            1.0,
            "{probe}"
        );
    }
}

// ---- memcached ----

#[tokio::test]
async fn memcached_reports_stats_and_a_timed_health_check() {
    let mut server = memcached_server().await;
    let address = server.address();
    let mut raw = BufReader::new(TcpStream::connect(&address).await.unwrap());
    let stored = |l: &str| l == "STORED";
    let end = |l: &str| l == "END";
    assert_eq!(
        memcached_cmd(&mut raw, "set k1 0 0 2\r\nv1\r\n", stored).await,
        ["STORED"]
    );
    assert_eq!(
        memcached_cmd(&mut raw, "set k2 0 0 2\r\nv2\r\n", stored).await,
        ["STORED"]
    );
    // Three hits and one miss.
    for key in ["k1", "k2", "k1"] {
        let reply = memcached_cmd(&mut raw, &format!("get {key}\r\n"), end).await;
        assert_eq!(reply.len(), 3, "{reply:?}");
    }
    assert_eq!(memcached_cmd(&mut raw, "get nope\r\n", end).await, ["END"]);

    let mut probes = probes(ProbesConfig {
        memcached: vec![MemcachedProbeConfig {
            address: address.clone(),
            name: Some("sessions".into()),
            ..Default::default()
        }],
        ..Default::default()
    });
    let r = collect(&mut probes).await;
    let target = [("target", address.as_str()), ("name", "sessions")];
    assert_eq!(must(&r, "memcached_up", &target), 1.0);
    assert_eq!(must(&r, "memcached_get_hits_total", &target), 3.0);
    assert_eq!(must(&r, "memcached_get_misses_total", &target), 1.0);
    assert_eq!(must(&r, "memcached_get_hit_ratio", &target), 0.75);
    assert_eq!(must(&r, "memcached_items", &target), 2.0);
    assert_eq!(
        must(&r, "memcached_memory_limit_bytes", &target),
        16.0 * 1024.0 * 1024.0
    );
    let used = must(&r, "memcached_memory_used_bytes", &target);
    assert!(used > 0.0);
    assert_close(
        must(&r, "memcached_memory_used_ratio", &target),
        used / (16.0 * 1024.0 * 1024.0),
        1e-6,
        "memory ratio",
    );
    assert!(must(&r, "memcached_connections", &target) >= 2.0);
    assert_eq!(must(&r, "memcached_evictions_total", &target), 0.0);
    assert_eq!(must(&r, "memcached_expired_unfetched_total", &target), 0.0);
    assert_eq!(must(&r, "memcached_reclaimed_total", &target), 0.0);
    assert_eq!(
        must(&r, "memcached_rejected_connections_total", &target),
        0.0
    );
    assert_eq!(
        must(&r, "memcached_commands_total", &[("command", "get")]),
        4.0
    );
    assert_eq!(
        must(&r, "memcached_commands_total", &[("command", "set")]),
        2.0
    );
    for op in ["write", "read", "delete"] {
        let latency = must(&r, "memcached_op_duration_seconds", &[("op", op)]);
        assert!(latency > 0.0 && latency < 2.0, "{op} latency {latency}");
    }
    assert!(must(&r, "memcached_check_duration_seconds", &target) > 0.0);
    for reason in ["connect", "timeout", "protocol", "mismatch"] {
        let labels = [
            ("probe", "memcached"),
            ("name", "sessions"),
            ("reason", reason),
        ];
        assert_eq!(
            must(&r, "hcmon_probe_errors_total", &labels),
            0.0,
            "{reason}"
        );
    }

    // The probe key is gone again; its GET is a hit in the next run.
    let r = collect(&mut probes).await;
    assert_eq!(must(&r, "memcached_items", &[]), 2.0);
    assert_eq!(must(&r, "memcached_get_hits_total", &[]), 4.0);

    drop(raw);
    server.kill();
    let r = collect(&mut probes).await;
    assert_eq!(must(&r, "memcached_up", &target), 0.0);
    let labels = [("probe", "memcached"), ("reason", "connect")];
    assert_eq!(must(&r, "hcmon_probe_errors_total", &labels), 1.0);
    assert!(value(&r, "memcached_items", &[]).is_none());
}

// ---- HTTP ----

fn http_check(url: &str) -> HttpCheckConfig {
    HttpCheckConfig {
        url: url.into(),
        name: None,
        method: "GET".into(),
        expect_status: None,
        timeout: Duration::from_secs(2),
        insecure_skip_verify: false,
    }
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (request.method().as_str(), request.uri().path()) {
        (_, "/") => (StatusCode::OK, "ok".to_owned()),
        ("POST", "/submit") => (StatusCode::CREATED, String::new()),
        (_, "/submit") => (StatusCode::METHOD_NOT_ALLOWED, String::new()),
        (_, "/big") => (StatusCode::OK, "x".repeat(1 << 20)),
        (_, "/moved") => (StatusCode::FOUND, String::new()),
        _ => (StatusCode::NOT_FOUND, "not found".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}

/// Serves [`handle`] on loopback, over TLS when an acceptor is given.
async fn http_server(tls: Option<tokio_rustls::TlsAcceptor>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    Some(acceptor) => {
                        // A client that rejects the certificate ends the handshake: not an error.
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let io = TokioIo::new(stream);
                            http.serve_connection(io, service_fn(handle)).await.ok();
                        }
                    }
                    None => {
                        let io = TokioIo::new(stream);
                        http.serve_connection(io, service_fn(handle)).await.ok();
                    }
                }
            });
        }
    });
    address
}

#[tokio::test]
async fn http_checks_status_and_latency() {
    let address = http_server(None).await;
    let base = format!("http://{address}");
    let refused = format!("http://127.0.0.1:{}/", free_port());
    let named = |name: &str, path: &str| HttpCheckConfig {
        name: Some(name.into()),
        ..http_check(&format!("{base}{path}"))
    };
    let mut probes = probes(ProbesConfig {
        http: vec![
            named("root", "/"),
            HttpCheckConfig {
                method: "HEAD".into(),
                ..named("head", "/")
            },
            named("missing", "/missing"),
            HttpCheckConfig {
                expect_status: Some(404),
                ..named("gone", "/missing")
            },
            HttpCheckConfig {
                method: "POST".into(),
                expect_status: Some(201),
                ..named("post", "/submit")
            },
            named("big", "/big"),
            named("moved", "/moved"),
            HttpCheckConfig {
                name: Some("refused".into()),
                ..http_check(&refused)
            },
        ],
        ..Default::default()
    });
    let r = collect(&mut probes).await;
    let root_url = format!("{base}/");
    let root = [("target", root_url.as_str()), ("name", "root")];
    assert_eq!(must(&r, "http_check_up", &root), 1.0);
    assert_eq!(must(&r, "http_check_status_code", &root), 200.0);
    let latency = must(&r, "http_check_duration_seconds", &root);
    assert!(latency > 0.0 && latency < 2.0, "latency {latency}");
    assert!(value(&r, "http_certificate_expiry_days", &root).is_none());

    let check = |name: &str, up: f64, status: Option<f64>| {
        assert_eq!(must(&r, "http_check_up", &[("name", name)]), up, "{name}");
        assert_eq!(
            value(&r, "http_check_status_code", &[("name", name)]),
            status,
            "{name}"
        );
    };
    check("head", 1.0, Some(200.0));
    check("missing", 0.0, Some(404.0));
    check("gone", 1.0, Some(404.0));
    check("post", 1.0, Some(201.0));
    check("big", 1.0, Some(200.0));
    check("moved", 1.0, Some(302.0));
    check("refused", 0.0, None);
    let errors = |name: &str, reason: &str| {
        let labels = [("probe", "http"), ("name", name), ("reason", reason)];
        must(&r, "hcmon_probe_errors_total", &labels)
    };
    assert_eq!(errors("missing", "status"), 1.0);
    assert_eq!(errors("gone", "status"), 0.0);
    assert_eq!(errors("refused", "connect"), 1.0);
    assert!(
        value(
            &r,
            "hcmon_probe_errors_total",
            &[("name", "root"), ("reason", "tls")]
        )
        .is_none()
    );

    let r = collect(&mut probes).await;
    let labels = [("probe", "http"), ("name", "missing"), ("reason", "status")];
    assert_eq!(must(&r, "hcmon_probe_errors_total", &labels), 2.0);
}

/// A TLS acceptor with a self-signed certificate for 127.0.0.1 valid from `not_before` to
/// `not_after` (days from now).
fn self_signed_acceptor(not_before_days: i64, not_after_days: i64) -> tokio_rustls::TlsAcceptor {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(not_before_days);
    params.not_after = now + time::Duration::days(not_after_days);
    let cert = params.self_signed(&key).unwrap();
    let private_key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], private_key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn https_reports_certificate_days_left_even_when_untrusted() {
    let valid = http_server(Some(self_signed_acceptor(-1, 30))).await;
    let expired = http_server(Some(self_signed_acceptor(-10, -3))).await;
    let check = |name: &str, address: SocketAddr, insecure: bool| HttpCheckConfig {
        name: Some(name.into()),
        insecure_skip_verify: insecure,
        ..http_check(&format!("https://{address}/"))
    };
    let mut probes = probes(ProbesConfig {
        http: vec![
            check("insecure", valid, true),
            check("verified", valid, false),
            check("expired", expired, true),
            check("expired-verified", expired, false),
        ],
        ..Default::default()
    });
    for run in 1..=2 {
        let r = collect(&mut probes).await;
        let days = |name: &str| must(&r, "http_certificate_expiry_days", &[("name", name)]);
        let errors = |name: &str, reason: &str| {
            let labels = [("probe", "http"), ("name", name), ("reason", reason)];
            must(&r, "hcmon_probe_errors_total", &labels)
        };

        assert_eq!(must(&r, "http_check_up", &[("name", "insecure")]), 1.0);
        assert_eq!(
            must(&r, "http_check_status_code", &[("name", "insecure")]),
            200.0
        );
        assert_close(days("insecure"), 30.0, 0.01, "days left");
        assert_eq!(errors("insecure", "tls"), 0.0);

        // Self-signed is not trusted by the Mozilla roots: down, yet the days are known.
        assert_eq!(must(&r, "http_check_up", &[("name", "verified")]), 0.0);
        assert!(value(&r, "http_check_status_code", &[("name", "verified")]).is_none());
        assert_close(
            days("verified"),
            30.0,
            0.01,
            "days left of an untrusted certificate",
        );
        assert_eq!(errors("verified", "tls"), f64::from(run));

        assert_eq!(must(&r, "http_check_up", &[("name", "expired")]), 1.0);
        assert_close(days("expired"), -3.0, 0.01, "days since expiry");
        assert_eq!(
            must(&r, "http_check_up", &[("name", "expired-verified")]),
            0.0
        );
        assert_close(days("expired-verified"), -3.0, 0.01, "days since expiry");
    }
}

// ---- TCP ----

#[tokio::test]
async fn tcp_check_reports_up_and_connect_latency() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let closed = format!("127.0.0.1:{}", free_port());
    let mut probes = probes(ProbesConfig {
        tcp: vec![
            TcpCheckConfig {
                address: open.clone(),
                name: None,
                timeout: Duration::from_secs(1),
            },
            TcpCheckConfig {
                address: closed.clone(),
                name: Some("closed".into()),
                timeout: Duration::from_secs(1),
            },
        ],
        ..Default::default()
    });
    let r = collect(&mut probes).await;
    let open_labels = [("target", open.as_str()), ("name", open.as_str())];
    assert_eq!(must(&r, "tcp_check_up", &open_labels), 1.0);
    let latency = must(&r, "tcp_check_connect_duration_seconds", &open_labels);
    assert!(latency > 0.0 && latency < 1.0, "latency {latency}");
    let closed_labels = [("target", closed.as_str()), ("name", "closed")];
    assert_eq!(must(&r, "tcp_check_up", &closed_labels), 0.0);
    assert!(value(&r, "tcp_check_connect_duration_seconds", &closed_labels).is_none());
    let refused = [("probe", "tcp"), ("name", "closed"), ("reason", "connect")];
    assert_eq!(must(&r, "hcmon_probe_errors_total", &refused), 1.0);

    drop(listener);
    let r = collect(&mut probes).await;
    assert_eq!(must(&r, "tcp_check_up", &open_labels), 0.0);
    let refused = [
        ("probe", "tcp"),
        ("target", open.as_str()),
        ("reason", "connect"),
    ];
    assert_eq!(must(&r, "hcmon_probe_errors_total", &refused), 1.0);
}

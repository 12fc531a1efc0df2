//! Record an application's own metrics to the hcmon agent on this node.
//!
//! ```no_run
//! let monitor = hcmon_client::Monitor::new("checkout");
//! monitor.record_metric("queue_depth", 7.0, &[("queue", "orders"), ("order_id", "A-1")]);
//! monitor.increment("orders_placed", 1.0, &[]);
//! {
//!     let _timer = monitor.timer("data_processing_time");
//!     // … the work being timed …
//! } // recorded here, in milliseconds, as a StatsD timer (the agent stores seconds)
//! ```
//!
//! - **Labels and annotations.** `metadata` is split: keys declared as labels
//!   ([`MonitorBuilder::labels`]) become labels of the series, each holding at most
//!   [`MonitorBuilder::max_values_per_label`] distinct values (later ones are sent as `other`),
//!   so a client cannot create unbounded series; every other key is an annotation, free-form
//!   context kept with the monitor ([`Monitor::annotations`]) and never sent as a label.
//! - **Never in the way.** Recording appends a line to a buffer (well under a microsecond,
//!   `cargo bench -p hcmon-client`); the buffer goes out as UDP datagrams to the agent's
//!   StatsD listener (127.0.0.1:8125) when it fills a packet and every 200 ms from a
//!   background thread. A missing agent loses those datagrams (counted in
//!   [`Monitor::dropped`]); nothing blocks, nothing panics.
//! - The application is the `job` label (`service` tag); the agent holds it to its
//!   cardinality budget.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Bytes per datagram: under a 1500-byte Ethernet MTU, as StatsD clients do.
const PACKET_BYTES: usize = 1400;

/// Where the agent's StatsD listener is by default.
pub const DEFAULT_AGENT: &str = "127.0.0.1:8125";

/// The value a label takes once it has seen its allowed number of distinct values.
pub const OVERFLOW_VALUE: &str = "other";

struct Shared {
    socket: Option<UdpSocket>,
    app: String,
    labels: HashSet<String>,
    max_values: usize,
    buffer: Mutex<Vec<u8>>,
    /// Per label, the distinct values seen.
    seen: Mutex<HashMap<String, HashSet<String>>>,
    annotations: Mutex<HashMap<String, Vec<(String, String)>>>,
    dropped: AtomicU64,
    closed: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Sends what the buffer holds; a failed send is counted, never raised.
    fn send(&self, buffer: &mut Vec<u8>) {
        if buffer.is_empty() {
            return;
        }
        let sent = self
            .socket
            .as_ref()
            .is_some_and(|socket| socket.send(buffer).is_ok());
        if !sent {
            let lines = buffer.iter().filter(|&&b| b == b'\n').count() as u64;
            self.dropped.fetch_add(lines, Ordering::Relaxed);
        }
        buffer.clear();
    }
}

/// Builds a [`Monitor`] with other than the defaults.
pub struct MonitorBuilder {
    app: String,
    agent: String,
    labels: Vec<String>,
    max_values: usize,
    flush_every: Duration,
}

impl MonitorBuilder {
    /// The agent's StatsD address (default `127.0.0.1:8125`).
    pub fn agent(mut self, address: &str) -> Self {
        self.agent = address.to_owned();
        self
    }

    /// Metadata keys sent as labels; the rest are annotations.
    pub fn labels(mut self, keys: &[&str]) -> Self {
        self.labels = keys.iter().map(|k| (*k).to_owned()).collect();
        self
    }

    /// Distinct values one label may take before further ones are sent as `other`
    /// (default 100).
    pub fn max_values_per_label(mut self, max: usize) -> Self {
        self.max_values = max;
        self
    }

    /// How often the background thread sends what is buffered (default 200 ms).
    pub fn flush_every(mut self, every: Duration) -> Self {
        self.flush_every = every;
        self
    }

    pub fn build(self) -> Monitor {
        let socket = self.agent.parse::<SocketAddr>().ok().and_then(|agent| {
            let local: SocketAddr = match agent {
                SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
                SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            let socket = UdpSocket::bind(local).ok()?;
            socket.connect(agent).ok()?;
            socket.set_nonblocking(true).ok()?;
            Some(socket)
        });
        let shared = Arc::new(Shared {
            socket,
            app: self.app,
            labels: self.labels.into_iter().collect(),
            max_values: self.max_values,
            buffer: Mutex::new(Vec::with_capacity(PACKET_BYTES * 2)),
            seen: Mutex::new(HashMap::new()),
            annotations: Mutex::new(HashMap::new()),
            dropped: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        let flusher = shared.clone();
        let every = self.flush_every;
        // A thread the monitor can live without: if it cannot start, full packets still go.
        let _ = std::thread::Builder::new()
            .name("hcmon-client".into())
            .spawn(move || {
                while !flusher.closed.load(Ordering::Relaxed) {
                    std::thread::sleep(every);
                    let mut buffer = lock(&flusher.buffer);
                    flusher.send(&mut buffer);
                }
            });
        Monitor { shared }
    }
}

/// The statsd type of a line.
#[derive(Clone, Copy)]
enum Type {
    Gauge,
    Counter,
    Timer,
    Histogram,
}

impl Type {
    fn code(self) -> &'static str {
        match self {
            Type::Gauge => "g",
            Type::Counter => "c",
            Type::Timer => "ms",
            Type::Histogram => "h",
        }
    }
}

/// An application's handle on the local agent. Cheap to share (`&Monitor` from any thread).
pub struct Monitor {
    shared: Arc<Shared>,
}

impl Monitor {
    /// A monitor for application `app` sending to the agent at `127.0.0.1:8125`, with no
    /// labels declared (all metadata is annotations).
    pub fn new(app: &str) -> Self {
        Self::builder(app).build()
    }

    pub fn builder(app: &str) -> MonitorBuilder {
        MonitorBuilder {
            app: app.to_owned(),
            agent: DEFAULT_AGENT.to_owned(),
            labels: Vec::new(),
            max_values: 100,
            flush_every: Duration::from_millis(200),
        }
    }

    /// Records the current value of `name` (a gauge).
    pub fn record_metric(&self, name: &str, value: f64, metadata: &[(&str, &str)]) {
        self.line(name, value, Type::Gauge, metadata);
    }

    /// Adds `by` to the counter `name` (stored as `<name>_total`).
    pub fn increment(&self, name: &str, by: f64, metadata: &[(&str, &str)]) {
        self.line(name, by, Type::Counter, metadata);
    }

    /// Adds one observation to the histogram `name`.
    pub fn observe(&self, name: &str, value: f64, metadata: &[(&str, &str)]) {
        self.line(name, value, Type::Histogram, metadata);
    }

    /// Times until the guard is dropped, then records the duration in milliseconds.
    pub fn timer<'a>(&'a self, name: &'a str) -> Timer<'a> {
        Timer {
            monitor: self,
            name,
            metadata: &[],
            start: Instant::now(),
        }
    }

    /// [`Monitor::timer`] with metadata.
    pub fn timer_with<'a>(
        &'a self,
        name: &'a str,
        metadata: &'a [(&'a str, &'a str)],
    ) -> Timer<'a> {
        Timer {
            monitor: self,
            name,
            metadata,
            start: Instant::now(),
        }
    }

    /// Sends what is buffered now.
    pub fn flush(&self) {
        let mut buffer = lock(&self.shared.buffer);
        self.shared.send(&mut buffer);
    }

    /// Lines that could not be sent (no agent, a full socket buffer).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The annotations of the latest recording of `name` that carried any.
    pub fn annotations(&self, name: &str) -> Vec<(String, String)> {
        lock(&self.shared.annotations)
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    fn line(&self, name: &str, value: f64, kind: Type, metadata: &[(&str, &str)]) {
        if !value.is_finite() {
            return;
        }
        let shared = &*self.shared;
        let mut annotations = Vec::new();
        let mut tags: Vec<(&str, &str)> = Vec::with_capacity(metadata.len());
        for &(key, value) in metadata {
            if shared.labels.contains(key) {
                tags.push((key, self.bounded(key, value)));
            } else {
                annotations.push((key.to_owned(), value.to_owned()));
            }
        }
        if !annotations.is_empty() {
            lock(&shared.annotations).insert(name.to_owned(), annotations);
        }
        let mut buffer = lock(&shared.buffer);
        let start = buffer.len();
        let mut line = String::with_capacity(64);
        let _ = write!(
            line,
            "{}:{}|{}|#service:{}",
            clean(name),
            value,
            kind.code(),
            clean_tag(&shared.app)
        );
        for (key, value) in tags {
            let _ = write!(line, ",{}:{}", clean_tag(key), clean_tag(value));
        }
        line.push('\n');
        if start + line.len() > PACKET_BYTES {
            shared.send(&mut buffer);
        }
        buffer.extend_from_slice(line.as_bytes());
    }

    /// `value` if label `key` may take it, else [`OVERFLOW_VALUE`].
    fn bounded<'v>(&self, key: &str, value: &'v str) -> &'v str {
        let mut seen = lock(&self.shared.seen);
        let values = seen.entry(key.to_owned()).or_default();
        if values.contains(value) {
            return value;
        }
        if values.len() < self.shared.max_values {
            values.insert(value.to_owned());
            return value;
        }
        OVERFLOW_VALUE
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.flush();
        self.shared.closed.store(true, Ordering::Relaxed);
    }
}

/// Characters StatsD gives a meaning to (`:`, `|`, `@`, `#`, `,`, newlines) cannot be in a name.
fn clean(name: &str) -> std::borrow::Cow<'_, str> {
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(
            name.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect(),
        )
    }
}

fn clean_tag(text: &str) -> std::borrow::Cow<'_, str> {
    if text
        .bytes()
        .all(|b| !matches!(b, b':' | b'|' | b'@' | b'#' | b',' | b'\n' | b'\r'))
    {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(
            text.chars()
                .map(|c| {
                    if matches!(c, ':' | '|' | '@' | '#' | ',' | '\n' | '\r') {
                        '_'
                    } else {
                        c
                    }
                })
                .collect(),
        )
    }
}

/// Records the time since it was made when dropped (see [`Monitor::timer`]).
pub struct Timer<'a> {
    monitor: &'a Monitor,
    name: &'a str,
    metadata: &'a [(&'a str, &'a str)],
    start: Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        self.monitor.line(self.name, ms, Type::Timer, self.metadata);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver() -> (UdpSocket, String) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let address = socket.local_addr().unwrap().to_string();
        (socket, address)
    }

    fn received(socket: &UdpSocket) -> String {
        let mut buf = [0u8; 2048];
        let (len, _) = socket.recv_from(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..len]).into_owned()
    }

    #[test]
    fn metadata_is_split_and_labels_stay_bounded() {
        let (socket, address) = receiver();
        let monitor = Monitor::builder("shop")
            .agent(&address)
            .labels(&["region"])
            .max_values_per_label(1)
            .build();
        monitor.record_metric("queue.depth", 7.0, &[("region", "eu"), ("order_id", "A-1")]);
        monitor.record_metric("queue.depth", 8.0, &[("region", "us")]);
        monitor.increment("orders", 2.0, &[]);
        drop(monitor.timer("work"));
        monitor.flush();
        let packet = received(&socket);
        let lines: Vec<&str> = packet.lines().collect();
        assert_eq!(lines[0], "queue.depth:7|g|#service:shop,region:eu");
        assert_eq!(lines[1], "queue.depth:8|g|#service:shop,region:other");
        assert_eq!(lines[2], "orders:2|c|#service:shop");
        assert!(
            lines[3].starts_with("work:") && lines[3].ends_with("|ms|#service:shop"),
            "{packet}"
        );
        assert_eq!(
            monitor.annotations("queue.depth"),
            vec![("order_id".to_owned(), "A-1".to_owned())]
        );
    }

    #[test]
    fn annotations_are_kept_and_reserved_characters_cleaned() {
        let (socket, address) = receiver();
        let monitor = Monitor::builder("a|b")
            .agent(&address)
            .labels(&["k"])
            .build();
        monitor.record_metric("x:y", 1.0, &[("k", "v,w"), ("note", "free text")]);
        monitor.flush();
        assert_eq!(received(&socket), "x_y:1|g|#service:a_b,k:v_w\n");
        assert_eq!(
            monitor.annotations("x:y"),
            vec![("note".to_owned(), "free text".to_owned())]
        );
    }

    #[test]
    fn a_missing_agent_never_fails_the_application() {
        // Nothing listens on this port: sends fail (or vanish) and are counted at most.
        let monitor = Monitor::builder("app").agent("127.0.0.1:9").build();
        for i in 0..10_000 {
            monitor.record_metric("m", f64::from(i), &[]);
        }
        monitor.flush();
        let nowhere = Monitor::builder("app").agent("not an address").build();
        nowhere.record_metric("m", 1.0, &[]);
        nowhere.flush();
        assert_eq!(nowhere.dropped(), 1);
    }
}

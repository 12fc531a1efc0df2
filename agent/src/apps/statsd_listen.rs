//! The StatsD listener: UDP datagrams and TCP streams of newline-separated lines, on the same
//! address (127.0.0.1:8125 by default). UDP is what StatsD clients send by default; TCP is for
//! clients that must not lose lines to a full socket buffer. A bad line is counted and skipped,
//! never the rest of its packet.

use super::aggregate::StatsdAggregator;
use super::statsd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

/// Longest line taken over TCP; a longer one ends its connection.
const MAX_LINE_BYTES: usize = 64 << 10;

/// What the listener shares with the flush loop.
#[derive(Default)]
pub struct StatsdCounts {
    pub bad_lines: AtomicU64,
    /// When a bad line was last logged: at most one warning a minute.
    last_warned: Mutex<Option<Instant>>,
}

impl StatsdCounts {
    fn bad_line(&self, line: &str, error: &statsd::LineError) {
        self.bad_lines.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_warned.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
            *last = Some(Instant::now());
            let mut end = line.len().min(200);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            tracing::warn!(line = &line[..end], %error, "StatsD line skipped (further ones this minute are only counted)");
        }
    }
}

/// Records every line of `packet`.
fn take(packet: &str, aggregator: &Mutex<StatsdAggregator>, counts: &StatsdCounts) {
    let mut aggregator = aggregator.lock().unwrap_or_else(|p| p.into_inner());
    for line in packet.split('\n').filter(|l| !l.trim().is_empty()) {
        match statsd::parse(line) {
            Ok(parsed) => {
                // A refusal by the budget is counted there and reported by the flush loop.
                aggregator.record(&parsed);
            }
            Err(error) => counts.bad_line(line, &error),
        }
    }
}

pub async fn serve_udp(
    socket: UdpSocket,
    aggregator: Arc<Mutex<StatsdAggregator>>,
    counts: Arc<StatsdCounts>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buf) => received,
            _ = shutdown.cancelled() => return,
        };
        match received {
            Ok((len, _)) => take(&String::from_utf8_lossy(&buf[..len]), &aggregator, &counts),
            Err(error) => tracing::debug!(%error, "StatsD/UDP receive failed"),
        }
    }
}

pub async fn serve_tcp(
    listener: TcpListener,
    aggregator: Arc<Mutex<StatsdAggregator>>,
    counts: Arc<StatsdCounts>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (aggregator, counts, shutdown) = (aggregator.clone(), counts.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                let read = tokio::select! {
                    read = read_line(&mut reader, &mut line) => read,
                    _ = shutdown.cancelled() => return,
                };
                match read {
                    Ok(true) => take(&String::from_utf8_lossy(&line), &aggregator, &counts),
                    Ok(false) => return,
                    Err(error) => {
                        tracing::debug!(%error, "StatsD/TCP connection closed");
                        return;
                    }
                }
            }
        });
    }
}

/// Reads one line into `line`, without its newline; false at the end of the stream.
async fn read_line(
    reader: &mut BufReader<tokio::net::TcpStream>,
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(!line.is_empty());
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(end) => {
                line.extend_from_slice(&available[..end]);
                reader.consume(end + 1);
                return Ok(true);
            }
            None => {
                let len = available.len();
                line.extend_from_slice(available);
                reader.consume(len);
            }
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a line longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
    }
}

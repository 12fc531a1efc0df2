//! Real servers on loopback that receive what the collector's notifiers send, for tests of
//! alert delivery: an SMTP server with STARTTLS and AUTH ([`SmtpSink`]), an HTTP server that
//! records requests and can fail on purpose ([`HttpReceiver`]), and Debian's Alertmanager
//! started as a process ([`Alertmanager`]). Each stops when dropped.

mod alertmanager;
mod http;
mod smtp;

pub use alertmanager::Alertmanager;
pub use http::{HttpReceiver, RecordedRequest};
pub use smtp::{ReceivedMail, SmtpCredentials, SmtpSink};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Waits until `items` holds at least `n` entries and returns a copy of them.
async fn wait_for<T: Clone>(
    items: &Arc<Mutex<Vec<T>>>,
    n: usize,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<Vec<T>> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = items.lock().expect("receiver lock").clone();
        if now.len() >= n {
            return Ok(now);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("{} of {n} {what} within {timeout:?}", now.len());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

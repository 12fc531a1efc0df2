//! A real HTTP server (axum) on loopback that records every request, whatever its method and
//! path, and answers 200, or 500 for the first requests when told to, to test retries.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request as received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The raw body bytes, exactly as received (signatures are computed over these).
    pub body: Vec<u8>,
    /// The status this server answered.
    pub status: u16,
}

impl RecordedRequest {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

#[derive(Clone)]
struct Recorder {
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    /// Requests still to be answered 500.
    failures_left: Arc<AtomicUsize>,
}

/// A running receiver on `127.0.0.1`; stops when dropped.
pub struct HttpReceiver {
    url: String,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    server: JoinHandle<()>,
}

impl HttpReceiver {
    /// Starts on a free port; every request is answered 200.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_failing(0).await
    }

    /// Starts on a free port; the first `failures` requests are answered 500, the rest 200.
    pub async fn start_failing(failures: usize) -> anyhow::Result<Self> {
        let recorder = Recorder {
            requests: Arc::new(Mutex::new(Vec::new())),
            failures_left: Arc::new(AtomicUsize::new(failures)),
        };
        let requests = recorder.requests.clone();
        let app = Router::new().fallback(record).with_state(recorder);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            // Serving only ends with the listener; a test sees failures as missing requests.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            requests,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("receiver lock").clone()
    }

    /// Waits for at least `n` requests and returns them all.
    pub async fn wait_for(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<RecordedRequest>> {
        super::wait_for(&self.requests, n, timeout, "requests").await
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record(
    State(recorder): State<Recorder>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let fail = recorder
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let (status, answer) = if fail {
        (StatusCode::INTERNAL_SERVER_ERROR, "simulated failure")
    } else {
        (StatusCode::OK, "ok")
    };
    recorder
        .requests
        .lock()
        .expect("receiver lock")
        .push(RecordedRequest {
            method: method.to_string(),
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), ToString::to_string),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            status: status.as_u16(),
        });
    (status, answer)
}

//! The HTTP listener: serves the router over HTTP/1 through hyper, over TLS when it is on,
//! each connection a task of the collector's [`TaskTree`], each request carrying its client's
//! address (`ConnectInfo`). A client that takes longer than `header_read_timeout` to finish its
//! TLS handshake or to send its headers (slowloris) has its connection closed and counted. At
//! shutdown the listener stops accepting and every connection ends after the request it is
//! serving. A WebSocket upgrade (the live stream, `stream.rs`) hands its connection over to the
//! stream's own task, which closes it at shutdown.

use super::limits::HttpLimits;
use crate::tasks::{Role, TaskTree};
use crate::telemetry::CollectorMetrics;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Serves `router` on `listener` (through `tls` when given) until the tree's shutdown token is
/// cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: &HttpLimits,
    metrics: Arc<CollectorMetrics>,
    tasks: TaskTree,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let shutdown = tasks.shutdown().clone();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    crate::no_delay(&accepted.0);
                    accepted
                }
                Err(error) => {
                    pause_after(error).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        // Each request carries the client's address, for `ConnectInfo` (the audit log).
        let routed = TowerToHyperService::new(router.clone());
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            routed.call(request)
        });
        let (http, tls) = (http.clone(), tls.clone());
        let (shutdown, metrics) = (shutdown.clone(), metrics.clone());
        let handshake_timeout = limits.header_read_timeout;
        tasks.spawn("http-connection", Role::Helper, async move {
            let Some(tls) = tls else {
                drive(&http, TokioIo::new(stream), service, &shutdown, &metrics).await;
                return Ok(());
            };
            match tokio::time::timeout(handshake_timeout, tls.accept(stream)).await {
                Ok(Ok(stream)) => {
                    drive(&http, TokioIo::new(stream), service, &shutdown, &metrics).await
                }
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    refused(&metrics, "tls_handshake");
                }
                Err(_) => refused(&metrics, "tls_handshake"),
            }
            Ok(())
        });
    }
}

/// Serves one connection's requests until it ends, or until shutdown after the request in
/// progress.
async fn drive<I, S>(
    http: &http1::Builder,
    io: I,
    service: S,
    shutdown: &CancellationToken,
    metrics: &CollectorMetrics,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // With upgrades: the live stream (`stream.rs`) takes its connection over as a WebSocket.
    let connection = http.serve_connection(io, service).with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    match ended {
        Err(error) if error.is_timeout() => refused(metrics, "header_read_timeout"),
        Err(error) => tracing::debug!(%error, "HTTP connection ended"),
        Ok(()) => {}
    }
}

fn refused(metrics: &CollectorMetrics, reason: &str) {
    metrics
        .refused_requests
        .with_label_values(&["http", reason])
        .inc();
}

/// After a failed accept: nothing for a connection the peer already gave up, a pause when the
/// process is out of file descriptors or memory, so the loop does not spin.
async fn pause_after(error: std::io::Error) {
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(%error, "cannot accept an HTTP connection; pausing");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

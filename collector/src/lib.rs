//! The hcmon collector: gRPC ingest from agents, durable storage in RocksDB, the Prometheus
//! endpoint and the HTTP API. The `hcmon` operator CLI lives in `src/bin/hcmon.rs`.

pub mod catalog;
pub mod config;
pub mod http;
pub mod ingest;
pub mod query;
pub mod storage;
pub mod telemetry;

use catalog::SeriesCatalog;
use config::CollectorConfig;
use ingest::{Clock, IngestService, grpc::GrpcIngest};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use storage::{RocksStore, Store};
use telemetry::CollectorMetrics;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A collector whose state is loaded and whose listeners are bound, ready to serve.
pub struct Collector {
    config: CollectorConfig,
    store: Arc<dyn Store>,
    catalog: Arc<SeriesCatalog>,
    ingest: Arc<IngestService>,
    metrics: Arc<CollectorMetrics>,
    clock: Clock,
    grpc: TcpListener,
    http: TcpListener,
}

impl Collector {
    /// Opens the store, rebuilds in-memory state and binds both listeners.
    pub async fn open(config: CollectorConfig, clock: Clock) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            anyhow::anyhow!("cannot create data dir {}: {e}", config.data_dir.display())
        })?;
        let store: Arc<dyn Store> = Arc::new(RocksStore::open(&config.data_dir)?);
        let catalog = Arc::new(SeriesCatalog::load(store.as_ref())?);
        let metrics = Arc::new(CollectorMetrics::new());
        let ingest = IngestService::new(
            store.clone(),
            catalog.clone(),
            metrics.clone(),
            config.limits.clone(),
            config.agent_token.clone(),
            clock.clone(),
        )?;
        let grpc = TcpListener::bind(config.grpc_listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen for gRPC on {}: {e}", config.grpc_listen)
        })?;
        let http = TcpListener::bind(config.http_listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen for HTTP on {}: {e}", config.http_listen)
        })?;
        tracing::info!(series = catalog.len(), data_dir = %config.data_dir.display(), "store opened");
        Ok(Self {
            config,
            store,
            catalog,
            ingest,
            metrics,
            clock,
            grpc,
            http,
        })
    }

    /// The bound gRPC address (the real port when configured with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves until `shutdown` is cancelled, then drains for at most `grace` and flushes the store.
    pub async fn run(self, shutdown: CancellationToken, grace: Duration) -> anyhow::Result<()> {
        let Self {
            config,
            store,
            catalog,
            ingest,
            metrics,
            clock,
            grpc,
            http,
        } = self;
        let api = http::router(http::ApiState {
            store: store.clone(),
            catalog,
            ingest: ingest.clone(),
            metrics,
            metrics_staleness: config.metrics_staleness,
            clock,
        });
        let http_shutdown = shutdown.clone();
        let http_task = tokio::spawn(async move {
            axum::serve(http, api)
                .with_graceful_shutdown(http_shutdown.cancelled_owned())
                .await
        });
        let grpc_shutdown = shutdown.clone();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc);
        let grpc_task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .http2_keepalive_interval(Some(Duration::from_secs(30)))
                .add_service(GrpcIngest::server(ingest))
                .serve_with_incoming_shutdown(incoming, grpc_shutdown.cancelled_owned())
                .await
        });

        shutdown.cancelled().await;
        tracing::info!("shutting down");
        match tokio::time::timeout(grace, async { (grpc_task.await, http_task.await) }).await {
            Ok((grpc, http)) => {
                grpc??;
                http??;
            }
            Err(_) => tracing::warn!(?grace, "servers did not drain in time; open streams cut"),
        }
        tokio::task::spawn_blocking(move || store.flush()).await??;
        tracing::info!("store flushed; bye");
        Ok(())
    }
}

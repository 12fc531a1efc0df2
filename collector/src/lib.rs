//! The hcmon collector: gRPC ingest from agents, durable storage in RocksDB, the Prometheus
//! endpoint and the HTTP API. The `hcmon` operator CLI lives in `src/bin/hcmon.rs`.

pub mod alerting;
pub mod analytics;
pub mod anomaly_watch;
pub mod catalog;
pub mod config;
pub mod forget;
pub mod http;
pub mod ingest;
pub mod json_f64;
pub mod node_forest;
pub mod query;
pub mod replay;
pub mod secure_random;
pub mod storage;
pub mod telemetry;

use alerting::service::{AlertService, Alerting, Dependencies};
use anomaly_watch::AnomalyWatch;
use catalog::SeriesCatalog;
use config::CollectorConfig;
use ingest::{Clock, IngestService, grpc::GrpcIngest};
use node_forest::NodeForests;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use storage::{RocksKv, Tsdb};
use telemetry::CollectorMetrics;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A collector whose state is loaded and whose listeners are bound, ready to serve.
pub struct Collector {
    config: CollectorConfig,
    tsdb: Arc<Tsdb>,
    catalog: Arc<SeriesCatalog>,
    ingest: Arc<IngestService>,
    watch: Option<Arc<AnomalyWatch>>,
    forests: Option<Arc<NodeForests>>,
    alerts: Option<(AlertService, Alerting)>,
    metrics: Arc<CollectorMetrics>,
    clock: Clock,
    grpc: TcpListener,
    http: TcpListener,
}

impl Collector {
    /// Opens the store, rebuilds in-memory state and binds both listeners.
    pub async fn open(config: CollectorConfig, clock: Clock) -> anyhow::Result<Self> {
        // Again here, not only in main: embedders and tests build configs by hand.
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            anyhow::anyhow!("cannot create data dir {}: {e}", config.data_dir.display())
        })?;
        let kv = RocksKv::open(&config.data_dir, config.storage.cache_bytes)?;
        let storage::Recovered {
            tsdb,
            series,
            nodes,
        } = Tsdb::open(Box::new(kv), config.storage.clone())?;
        let tsdb = Arc::new(tsdb);
        let catalog = Arc::new(SeriesCatalog::new(series));
        catalog.start_ids_at(tsdb.first_free_series_id());
        let metrics = Arc::new(CollectorMetrics::new());
        let ingest = IngestService::new(
            tsdb.clone(),
            catalog.clone(),
            nodes.clone(),
            metrics.clone(),
            config.limits.clone(),
            config.agent_token.clone(),
            clock.clone(),
        );
        let grpc = TcpListener::bind(config.grpc_listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen for gRPC on {}: {e}", config.grpc_listen)
        })?;
        let http = TcpListener::bind(config.http_listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen for HTTP on {}: {e}", config.http_listen)
        })?;
        let watch = match config.analytics.enabled {
            true => {
                let watch = AnomalyWatch::start(config.analytics.anomaly.clone())
                    .map_err(|e| anyhow::anyhow!("cannot start the anomaly worker: {e}"))?;
                ingest.watch_anomalies(watch.clone());
                Some(watch)
            }
            false => None,
        };
        let forests = config.analytics.enabled.then(|| {
            Arc::new(NodeForests::new(
                config.analytics.forest.clone(),
                tsdb.clone(),
                catalog.clone(),
            ))
        });
        let alerts = match config.alerting.enabled {
            true => {
                let http_addr = http.local_addr()?;
                let deps = Dependencies {
                    tsdb: tsdb.clone(),
                    catalog: catalog.clone(),
                    ingest: ingest.clone(),
                    watch: watch.clone(),
                    nodes,
                    registry: metrics.registry.clone(),
                    clock: clock.clone(),
                    http_url: Some(http_url(http_addr)),
                };
                Some(AlertService::open(config.alerting.clone(), deps)?)
            }
            false => None,
        };
        tracing::info!(series = catalog.len(), data_dir = %config.data_dir.display(), "store opened");
        Ok(Self {
            config,
            tsdb,
            catalog,
            ingest,
            watch,
            forests,
            alerts,
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
            tsdb,
            catalog,
            ingest,
            watch,
            forests,
            alerts,
            metrics,
            clock,
            grpc,
            http,
        } = self;
        let alerting = alerts.map(|(service, handle)| {
            tokio::spawn(service.run(shutdown.clone()));
            handle
        });
        let maintenance = tokio::spawn(maintain(tsdb.clone(), clock.clone(), shutdown.clone()));
        if !config.forget_nodes_after.is_zero() {
            tokio::spawn(forget::forget_idle_nodes(
                ingest.clone(),
                alerting.clone(),
                clock.clone(),
                config.forget_nodes_after,
                shutdown.clone(),
            ));
        }
        if let Some(forests) = &forests {
            tokio::spawn(analyse_nodes(
                forests.clone(),
                clock.clone(),
                shutdown.clone(),
            ));
        }
        let api = http::router(http::ApiState {
            tsdb: tsdb.clone(),
            catalog,
            ingest: ingest.clone(),
            watch,
            forests,
            alerting,
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
                .add_service(GrpcIngest::server(ingest, grpc_shutdown.clone()))
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
        maintenance.await?;
        tokio::task::spawn_blocking(move || tsdb.close()).await??;
        tracing::info!("store flushed; bye");
        Ok(())
    }
}

/// The collector's HTTP address as people reach it: the listen address, or this host's name
/// when it listens on every interface.
fn http_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        format!("http://{host}:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// Background storage upkeep: checkpoints on their interval, retention every ten minutes.
/// Trains the node models at start and every `retrain_every`, and scores every minute; the
/// work runs on the blocking pool, off the async workers and the ingest path.
async fn analyse_nodes(forests: Arc<NodeForests>, clock: Clock, shutdown: CancellationToken) {
    let mut training = tokio::time::interval(forests.config().retrain_every);
    let mut scoring = tokio::time::interval(Duration::from_secs(60));
    loop {
        let train = tokio::select! {
            _ = training.tick() => true,
            _ = scoring.tick() => false,
            _ = shutdown.cancelled() => return,
        };
        let (forests, now) = (forests.clone(), clock());
        let work = tokio::task::spawn_blocking(move || {
            if train {
                let trained = forests.train_all(now)?;
                tracing::debug!(trained, "node models trained");
            }
            forests.score_all(now)
        });
        match work.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "node anomaly models could not read the store")
            }
            Err(error) => tracing::error!(%error, "node anomaly models panicked"),
        }
    }
}

async fn maintain(tsdb: Arc<Tsdb>, clock: Clock, shutdown: CancellationToken) {
    const RETENTION_EVERY: Duration = Duration::from_secs(600);
    let mut checkpoints = tokio::time::interval(tsdb.config().checkpoint_interval);
    let mut retention = tokio::time::interval(RETENTION_EVERY);
    checkpoints.tick().await;
    loop {
        let work: fn(&Tsdb, i64) -> Result<(), storage::StoreError> = tokio::select! {
            _ = checkpoints.tick() => |db, _| db.checkpoint(false),
            _ = retention.tick() => |db, now| db.enforce_retention(now).map(drop),
            _ = shutdown.cancelled() => return,
        };
        let db = tsdb.clone();
        let now = clock();
        let started = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || work(&db, now)).await {
            Ok(Ok(())) => tracing::debug!(elapsed = ?started.elapsed(), "storage upkeep done"),
            Ok(Err(error)) => {
                tracing::error!(%error, "storage upkeep failed; the WAL keeps the data")
            }
            Err(error) => tracing::error!(%error, "storage upkeep panicked"),
        }
    }
}

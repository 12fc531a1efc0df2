//! The hcmon collector: gRPC ingest from agents, durable storage in RocksDB, the Prometheus
//! endpoint and the HTTP API. The `hcmon` operator CLI lives in `src/bin/hcmon/main.rs`.

pub mod access;
pub mod alerting;
pub mod analysis;
pub mod analytics;
pub mod anomaly_watch;
pub mod api;
pub mod audit;
pub mod before_after;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod export;
pub mod forget;
pub mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod heap;
pub mod http;
pub mod ingest;
pub mod json_f64;
pub mod live;
pub mod node_forest;
pub mod outbound;
pub mod pair;
pub mod pki;
pub mod quality;
pub mod query;
pub mod recorded;
pub mod replay;
pub mod report;
pub mod runtime_lag;
pub mod secure_random;
pub mod self_tracing;
pub mod slo;
pub mod storage;
pub mod tasks;
pub mod telemetry;
pub mod upkeep;

use alerting::handle::Alerting;
use alerting::service::{AlertService, Dependencies};
use anomaly_watch::AnomalyWatch;
use catalog::SeriesCatalog;
use clock::Clock;
use config::CollectorConfig;
use ingest::{Admission, BatchObserver, IngestService, Observers, grpc::GrpcIngest};
use node_forest::NodeForests;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;
use std::time::Duration;
use storage::{RocksKv, Tsdb};
use tasks::{Role, TaskTree};
use telemetry::CollectorMetrics;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
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
    /// The SLOs in force; `None` when `[slo] enabled = false`.
    objectives: Option<Arc<slo::objectives::Objectives>>,
    live: Arc<live::LiveHub>,
    /// Data-quality scores; `None` when `[quality] enabled = false`.
    quality: Option<Arc<quality::QualityTracker>>,
    /// `[[remote_write_out]]`, each with its WAL reader open.
    destinations: Vec<forward::Destination>,
    /// This collector's half of an HA pair; `None` outside a pair.
    pair: Option<Arc<pair::Pair>>,
    /// The store's history, and a remote one's before it (`[history]`).
    history: Arc<analysis::history::History>,
    metrics: Arc<CollectorMetrics>,
    access: Arc<access::AccessControl>,
    /// The CA, certificates and TLS of both listeners; `None` when `[tls] enabled = false`.
    trust: Option<pki::Trust>,
    clock: Clock,
    grpc: TcpListener,
    http: TcpListener,
}

impl Collector {
    /// Opens the store, rebuilds in-memory state and binds both listeners.
    pub async fn open(config: CollectorConfig, clock: Clock) -> anyhow::Result<Self> {
        // Again here, not only in main: embedders and tests build configs by hand.
        config.validate()?;
        // 0700: the store's files are nobody else's to read (an existing folder is left as it is).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .map_err(|e| {
                anyhow::anyhow!("cannot create data dir {}: {e}", config.data_dir.display())
            })?;
        let kv = RocksKv::open(&config.data_dir, config.storage.memory_bytes)?;
        let storage::Recovered {
            tsdb,
            series,
            nodes,
        } = Tsdb::open(Box::new(kv), config.storage.clone())?;
        let tsdb = Arc::new(tsdb);
        let trust = match config.tls.enabled {
            true => Some(pki::Trust::open(
                &config.tls,
                &config.data_dir,
                &[config.grpc_listen, config.http_listen],
                tsdb.clone(),
                clock.clone(),
            )?),
            false => None,
        };
        for address in config.plaintext_on_network() {
            tracing::warn!(%address, "listening WITHOUT TLS on a network address (server.insecure_plaintext_on_network): anyone on the network can read this traffic and write as any node");
        }
        let access =
            access::AccessControl::open(tsdb.clone(), &config.data_dir, &config.auth, clock())?;
        let catalog = Arc::new(SeriesCatalog::new(series));
        catalog.start_ids_at(tsdb.first_free_series_id());
        let metrics = Arc::new(CollectorMetrics::new());
        tasks::register(&metrics.registry)?;
        // Each destination's WAL reader is open before anything could checkpoint, so the
        // records it has not sent are kept.
        let destinations = config
            .remote_write_out
            .iter()
            .map(|destination| {
                forward::Destination::open(
                    destination.clone(),
                    tsdb.clone(),
                    catalog.clone(),
                    metrics.clone(),
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let grpc = TcpListener::bind(config.grpc_listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen for gRPC on {}: {e}", config.grpc_listen)
        })?;
        let http = TcpListener::bind(config.http_listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen for HTTP on {}: {e}", config.http_listen)
        })?;
        // Every observer of stored batches exists before ingest does, which gets them all at
        // construction: see `ingest/observer.rs`.
        let mut observers: Vec<Arc<dyn BatchObserver>> = Vec::new();
        let quality = config.quality.enabled.then(|| {
            let tracker = quality::QualityTracker::new(
                catalog.clone(),
                clock.clone(),
                config.quality.window.as_millis() as i64,
                config.quality.worst_series,
            );
            observers.push(tracker.clone());
            tracker
        });
        let watch = match config.analytics.enabled {
            true => {
                let watch = AnomalyWatch::start(
                    config.analytics.anomaly.clone(),
                    config.analytics.backlog_samples,
                    None,
                )
                .map_err(|e| anyhow::anyhow!("cannot start the anomaly workers: {e}"))?;
                observers.push(watch.clone());
                Some(watch)
            }
            false => None,
        };
        let history = Arc::new(analysis::history::History::new(
            tsdb.clone(),
            &config.history,
        )?);
        let forests = config.analytics.enabled.then(|| {
            Arc::new(NodeForests::new(
                config.analytics.forest.clone(),
                history.clone(),
                catalog.clone(),
            ))
        });
        let objectives = match config.slo.enabled {
            true => Some(Arc::new(
                slo::objectives::Objectives::open(
                    config.slo.clone(),
                    alerting::evaluate::latency_warnings(&config.alerting),
                    tsdb.clone(),
                    catalog.clone(),
                )?
                .with_history(history.clone()),
            )),
            false => None,
        };
        let pair = config
            .pair
            .enabled()
            .then(|| pair::Pair::new(&config.pair, clock.clone(), &metrics.registry));
        let alerts = match config.alerting.enabled {
            true => {
                let http_addr = http.local_addr()?;
                let deps = Dependencies {
                    tsdb: tsdb.clone(),
                    catalog: catalog.clone(),
                    history: history.clone(),
                    watch: watch.clone(),
                    forests: forests.clone(),
                    nodes: nodes.clone(),
                    registry: metrics.registry.clone(),
                    clock: clock.clone(),
                    http_url: Some(http_url(http_addr, trust.is_some())),
                    slo: objectives.clone(),
                    quality: quality.clone(),
                    pair: pair.clone(),
                };
                let (service, handle, feed) = AlertService::open(config.alerting.clone(), deps)?;
                observers.push(feed);
                Some((service, handle))
            }
            false => None,
        };
        let live = live::LiveHub::new(catalog.clone());
        observers.push(live.clone());
        let ingest = IngestService::new(
            tsdb.clone(),
            catalog.clone(),
            nodes,
            metrics.clone(),
            Admission {
                limits: config.limits.clone(),
                agent_token: config.agent_token.clone(),
                enrollment: trust.as_ref().map(|t| t.enrollment.clone()),
            },
            clock.clone(),
            Observers::new(observers),
        );
        tracing::info!(series = catalog.len(), data_dir = %config.data_dir.display(), "store opened");
        Ok(Self {
            config,
            tsdb,
            catalog,
            ingest,
            watch,
            forests,
            alerts,
            objectives,
            live,
            quality,
            destinations,
            pair,
            history,
            metrics,
            access: Arc::new(access),
            trust,
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
            objectives,
            live,
            quality,
            destinations,
            pair,
            history,
            metrics,
            access,
            trust,
            clock,
            grpc,
            http,
        } = self;
        let tasks = TaskTree::new(shutdown.clone());
        let alerting = alerts.map(|(service, handle)| {
            let ingest = ingest.clone();
            let tasks_for_alerting = tasks.clone();
            // The book's passes are O(alerts): on the runtime's threads, a fleet's thousands of
            // alerts held one of them for tens of milliseconds at a time.
            tasks.spawn_on_own_thread("alerting", Role::Essential, async move {
                service.run(ingest, tasks_for_alerting).await;
                Ok(())
            });
            handle
        });
        let lag = metrics.runtime_lag_seconds.clone();
        tasks.spawn("runtime-lag", Role::Helper, {
            let shutdown = shutdown.clone();
            async move {
                runtime_lag::probe(lag, shutdown).await;
                Ok(())
            }
        });
        let (db, upkeep_clock, token) = (tsdb.clone(), clock.clone(), shutdown.clone());
        let upkeep_metrics = metrics.clone();
        tasks.spawn("storage-upkeep", Role::Essential, async move {
            upkeep::maintain_storage(db, upkeep_clock, upkeep_metrics, token).await;
            Ok(())
        });
        if let Some(pair) = &pair {
            pair::start(pair.clone(), &tasks)?;
        }
        for destination in destinations {
            let token = shutdown.clone();
            tasks.spawn("remote-write-out", Role::Helper, async move {
                destination.run(token).await;
                Ok(())
            });
        }
        if !config.forget_nodes_after.is_zero() {
            let forgetting = forget::forget_idle_nodes(
                ingest.clone(),
                alerting.clone(),
                clock.clone(),
                config.forget_nodes_after,
                shutdown.clone(),
            );
            tasks.spawn("forget-idle-nodes", Role::Helper, async move {
                forgetting.await;
                Ok(())
            });
        }
        if let Some(forests) = &forests {
            let analysing = upkeep::analyse_nodes(forests.clone(), clock.clone(), shutdown.clone());
            tasks.spawn("node-models", Role::Helper, async move {
                analysing.await;
                Ok(())
            });
        }
        let context = recorded::Context {
            max_series: config.limits.max_series,
            alert_tick: config.alerting.tick,
            alert_evaluation: config.alerting.evaluation_interval,
            staleness: config.metrics_staleness,
            quality_interval: config.quality.interval,
        };
        recorded::start(
            &tasks,
            &config.recorded,
            context,
            recorded::Sources {
                tsdb: tsdb.clone(),
                catalog: catalog.clone(),
                ingest: ingest.clone(),
                alerting: alerting.clone(),
                watch: watch.clone(),
                forests: forests.clone(),
                quality: quality.clone(),
                metrics: metrics.clone(),
                clock: clock.clone(),
            },
        );
        let live_events = live
            .clone()
            .run(alerting.clone(), watch.clone(), shutdown.clone());
        tasks.spawn("live-stream", Role::Helper, async move {
            live_events.await;
            Ok(())
        });
        let reports = objectives
            .as_ref()
            .map(|objectives| report::handle::ReportHandle {
                objectives: objectives.clone(),
                tsdb: tsdb.clone(),
                catalog: catalog.clone(),
                alerting: alerting.clone(),
                store: report::store::ReportStore::new(tsdb.clone(), config.reports.retention()),
                forecast_alerts: config
                    .alerting
                    .all_forecast_rules()
                    .into_iter()
                    .map(|rule| rule.name)
                    .collect(),
            });
        if let Some(handle) = &reports {
            start_reports(&tasks, handle.clone(), &config, clock.clone(), &metrics);
        }
        let http_limits = config.server.http.clone();
        let audit = Arc::new(audit::AuditLog::open(tsdb.clone())?);
        let enrollment = trust.as_ref().map(|t| t.enrollment.clone());
        let api = http::router(
            http::ApiState {
                tsdb: tsdb.clone(),
                catalog,
                ingest: ingest.clone(),
                watch,
                forests,
                alerting,
                metrics: metrics.clone(),
                audit: audit.clone(),
                access: access.clone(),
                enrollment: enrollment.clone(),
                metrics_staleness: config.metrics_staleness,
                clock: clock.clone(),
                runtime: Arc::new(http::Runtime {
                    started_ms: clock(),
                    rules: http::AlertRules::new(&config.alerting),
                }),
                live,
                slo: objectives.clone(),
                reports,
                quality: quality.clone(),
                pair: pair.clone(),
                history: history.clone(),
            },
            http_limits.clone(),
        );
        let (http_tasks, http_tls) = (tasks.clone(), trust.as_ref().map(|t| t.http.clone()));
        let http_metrics = metrics.clone();
        tasks.spawn("http-server", Role::Essential, async move {
            http::serve(http, http_tls, api, &http_limits, http_metrics, http_tasks).await;
            Ok(())
        });
        let grpc_shutdown = shutdown.clone().cancelled_owned();
        let otlp_service = ingest::otlp_grpc::OtlpGrpc::server(
            ingest.clone(),
            access.clone(),
            metrics.clone(),
            clock.clone(),
        );
        let grpc_service = GrpcIngest::server(ingest, tasks.clone());
        let enrollment_service = enrollment
            .map(|enrollment| pki::grpc::EnrollmentService::server(enrollment, audit, clock));
        let grpc_server = config
            .server
            .grpc
            .server()
            .add_service(grpc_service)
            .add_service(otlp_service)
            .add_optional_service(enrollment_service);
        match trust {
            Some(trust) => {
                let incoming = pki::incoming::incoming(
                    grpc,
                    trust.grpc,
                    config.tls.handshake_timeout,
                    pki::incoming::ConnectionCaps {
                        total: config.server.grpc.max_connections,
                        per_address: config.server.grpc.max_connections_per_address,
                    },
                    metrics,
                    tasks.clone(),
                );
                tasks.spawn("grpc-server", Role::Essential, async move {
                    grpc_server
                        .serve_with_incoming_shutdown(incoming, grpc_shutdown)
                        .await?;
                    Ok(())
                });
            }
            None => {
                let incoming =
                    tokio_stream::wrappers::TcpListenerStream::new(grpc).map(|accepted| {
                        // tonic sets TCP_NODELAY only on listeners it binds itself.
                        accepted.inspect(no_delay)
                    });
                tasks.spawn("grpc-server", Role::Essential, async move {
                    grpc_server
                        .serve_with_incoming_shutdown(incoming, grpc_shutdown)
                        .await?;
                    Ok(())
                });
            }
        }

        shutdown.cancelled().await;
        tracing::info!("shutting down");
        let aborted = tasks.drain(grace).await;
        if !aborted.is_empty() {
            tracing::warn!(?grace, tasks = ?aborted, "tasks did not finish in time and were aborted");
        }
        tasks::blocking("store-close", move || tsdb.close()).await??;
        tracing::info!("store flushed; bye");
        match tasks.failure() {
            Some(reason) => Err(anyhow::anyhow!(reason)),
            None => Ok(()),
        }
    }
}

/// Spawns the scheduled reports' task, unless `[reports] enabled = false`. A helper: without
/// it the collector goes on, and on-demand reports still work.
fn start_reports(
    tasks: &TaskTree,
    handle: report::handle::ReportHandle,
    config: &CollectorConfig,
    clock: Clock,
    metrics: &CollectorMetrics,
) {
    let scheduler = report::task::Scheduler::new(
        handle,
        &config.reports,
        &config.alerting,
        clock,
        &metrics.registry,
    );
    match scheduler {
        Ok(Some(scheduler)) => {
            let shutdown = tasks.shutdown().clone();
            tasks.spawn("reports", Role::Helper, async move {
                scheduler.run(shutdown).await;
                Ok(())
            });
        }
        Ok(None) => {}
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "scheduled reports are off: their mail channels cannot be built"
            );
        }
    }
}

/// Turns Nagle's algorithm off on an accepted connection. With it on, an answer written just
/// after another small one waits for the peer's ACK of the first, which the peer may delay by
/// up to 40 ms: an agent's second batch in a row would get its ack that much later.
pub(crate) fn no_delay(stream: &tokio::net::TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY not set on an accepted connection");
    }
}

/// The collector's HTTP address as people reach it: the listen address, or this host's name
/// when it listens on every interface.
fn http_url(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    if addr.ip().is_unspecified() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        format!("{scheme}://{host}:{}", addr.port())
    } else {
        format!("{scheme}://{addr}")
    }
}

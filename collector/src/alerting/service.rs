//! The alerting service: the I/O around the pure [`AlertBook`]. One task owns the book; it
//! takes samples from ingest (through [`AlertFeed`]), operator commands from the API (through
//! [`Alerting`]), delivery reports from the channel workers, and a clock tick; after each it
//! writes what changed to RocksDB in one durable batch, hands the queued notifications to the
//! channel workers, and publishes a fresh [`AlertsView`] for the API.
//!
//! # Invariants
//! - A notification reaches a channel worker only after the batch that queued it (and marked
//!   it sent, or its escalation tier reached) is durable. After a crash the outbox holds exactly
//!   the notifications not yet delivered, and they are delivered on start.
//! - The book sees time only through the injected [`Clock`]; the tick merely says "look at the
//!   clock again", so a test clock drives hour-long escalations in milliseconds.

use super::book::{
    AckLinks, AlertBook, AlertRecord, BookConfig, BookError, ChannelPolicy, Incident,
    IncidentEvent, Outgoing, SilenceRecord,
};
use super::config::AlertingConfig;
use super::evaluate::{RuleSet, SampleRule};
use super::notify::{Channels, NotifyMetrics};
use super::store;
use crate::anomaly_watch::AnomalyWatch;
use crate::catalog::SeriesCatalog;
use crate::ingest::{Clock, IngestService};
use crate::storage::{NodeRecord, Sample, SeriesId, SeriesMeta, StoreError, Tsdb};
use ring::hmac;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// A series that alert rules watch, with the rules that watch it.
struct Watched {
    meta: Arc<SeriesMeta>,
    rules: Vec<SampleRule>,
}

enum Input {
    Batch {
        node: Option<String>,
        arrived: Instant,
        samples: Vec<(Arc<Watched>, i64, f64)>,
    },
}

/// Ingest's side of alerting: picks the samples some rule watches out of each stored batch.
/// Cheap on the ingest path: one cached lookup per run of a series' samples.
pub struct AlertFeed {
    rules: Arc<RuleSet>,
    catalog: Arc<SeriesCatalog>,
    /// Series → the rules watching it (`None`: no rule does).
    watched: RwLock<FxHashMap<SeriesId, Option<Arc<Watched>>>>,
    inputs: mpsc::UnboundedSender<Input>,
    clock: Clock,
    max_lag_ms: i64,
}

impl AlertFeed {
    fn lookup(&self, id: SeriesId) -> Option<Arc<Watched>> {
        if let Some(known) = self
            .watched
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return known.clone();
        }
        let found = self.catalog.get(id).and_then(|meta| {
            let rules = self.rules.sample_rules(&meta.labels);
            (!rules.is_empty()).then(|| Arc::new(Watched { meta, rules }))
        });
        self.watched
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, found.clone());
        found
    }

    /// Takes a batch that was just made durable; `node` is the agent that sent it.
    pub fn observe(&self, node: Option<&str>, samples: &[Sample]) {
        let now = (self.clock)();
        let mut picked = Vec::new();
        for run in samples.chunk_by(|a, b| a.series == b.series) {
            let Some(watched) = self.lookup(run[0].series) else {
                continue;
            };
            for s in run {
                // Back-filled history is stored, not alerted on: alerts are about now.
                if now - s.timestamp_ms <= self.max_lag_ms {
                    picked.push((watched.clone(), s.timestamp_ms, s.value));
                }
            }
        }
        if picked.is_empty() && node.is_none() {
            return;
        }
        let _ = self.inputs.send(Input::Batch {
            node: node.map(str::to_owned),
            arrived: Instant::now(),
            samples: picked,
        });
    }
}

/// Signs and checks acknowledge links (HMAC-SHA256 over alert, person and expiry).
pub struct AckSigner {
    key: hmac::Key,
    base: Option<String>,
}

impl AckSigner {
    pub fn new(secret: &[u8], base: Option<String>) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            base: base.map(|b| b.trim_end_matches('/').to_owned()),
        }
    }

    fn message(alert: &str, by: &str, expires_s: i64) -> String {
        format!("{alert}\n{by}\n{expires_s}")
    }

    pub fn sign(&self, alert: &str, by: &str, expires_s: i64) -> String {
        let tag = hmac::sign(&self.key, Self::message(alert, by, expires_s).as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `signature` is this key's for the link, and the link has not expired.
    pub fn verify(
        &self,
        alert: &str,
        by: &str,
        expires_s: i64,
        signature: &str,
        now_ms: i64,
    ) -> bool {
        // Saturating: `expires` comes from a URL anyone can edit.
        if expires_s.saturating_mul(1000) < now_ms || signature.len() != 64 {
            return false;
        }
        let Some(bytes) = (0..32)
            .map(|i| u8::from_str_radix(signature.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()
        else {
            return false;
        };
        hmac::verify(
            &self.key,
            Self::message(alert, by, expires_s).as_bytes(),
            &bytes,
        )
        .is_ok()
    }
}

fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl AckLinks for AckSigner {
    fn link(&self, alert: &str, by: &str, expires_ms: i64) -> String {
        let expires = expires_ms / 1000;
        format!(
            "{}/api/v1/alerts/{alert}/ack?by={}&expires={expires}&sig={}",
            self.base.as_deref().unwrap_or(""),
            query_escape(by),
            self.sign(alert, by, expires)
        )
    }
}

/// One alert as the API lists it.
#[derive(Debug, Clone)]
pub struct AlertView {
    pub record: AlertRecord,
    /// Why it is not notified now (silenced, inhibited), if so.
    pub muted: Option<String>,
}

/// What the API reads: a snapshot published after every change.
#[derive(Debug, Clone, Default)]
pub struct AlertsView {
    pub alerts: Vec<AlertView>,
    pub silences: Vec<SilenceRecord>,
}

/// Why an operator request failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    #[error(transparent)]
    Book(#[from] BookError),
    #[error("the alerting service has stopped")]
    Stopped,
    #[error("cannot read alerting records: {0}")]
    Store(#[from] StoreError),
}

enum Command {
    Ack {
        id: String,
        by: String,
        reply: oneshot::Sender<Result<(), BookError>>,
    },
    Silence {
        record: SilenceRecord,
        reply: oneshot::Sender<Result<(), BookError>>,
    },
    Expire {
        id: String,
        reply: oneshot::Sender<Result<(), BookError>>,
    },
    ForgetNode {
        node: String,
        reply: oneshot::Sender<Result<(), BookError>>,
    },
}

/// The API's handle on alerting.
#[derive(Clone)]
pub struct Alerting {
    commands: mpsc::Sender<Command>,
    view: Arc<RwLock<Arc<AlertsView>>>,
    signer: Arc<AckSigner>,
    tsdb: Arc<Tsdb>,
    clock: Clock,
}

impl Alerting {
    pub fn view(&self) -> Arc<AlertsView> {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    async fn ask(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), BookError>>) -> Command,
    ) -> Result<(), AlertingError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| AlertingError::Stopped)?;
        Ok(answer.await.map_err(|_| AlertingError::Stopped)??)
    }

    pub async fn acknowledge(&self, id: &str, by: &str) -> Result<(), AlertingError> {
        let (id, by) = (id.to_owned(), by.to_owned());
        self.ask(|reply| Command::Ack { id, by, reply }).await
    }

    /// Stops watching a node ingest forgot: its alerts resolve and go.
    pub async fn forget_node(&self, node: &str) -> Result<(), AlertingError> {
        let node = node.to_owned();
        self.ask(|reply| Command::ForgetNode { node, reply }).await
    }

    /// Checks a signed acknowledge link.
    pub fn verify_link(&self, alert: &str, by: &str, expires_s: i64, signature: &str) -> bool {
        self.signer
            .verify(alert, by, expires_s, signature, self.now_ms())
    }

    /// Creates a silence; its id is made here.
    pub async fn silence(&self, mut record: SilenceRecord) -> Result<SilenceRecord, AlertingError> {
        record.id = format!("{:016x}", fastrand::u64(..));
        record.created_ms = self.now_ms();
        let stored = record.clone();
        self.ask(|reply| Command::Silence { record, reply }).await?;
        Ok(stored)
    }

    pub async fn expire_silence(&self, id: &str) -> Result<(), AlertingError> {
        let id = id.to_owned();
        self.ask(|reply| Command::Expire { id, reply }).await
    }

    /// Incidents, newest first.
    pub async fn incidents(&self, limit: usize) -> Result<Vec<Incident>, AlertingError> {
        let tsdb = self.tsdb.clone();
        Ok(
            tokio::task::spawn_blocking(move || store::incidents(tsdb.kv(), limit))
                .await
                .expect("store read does not panic")?,
        )
    }

    pub async fn incident(
        &self,
        id: &str,
    ) -> Result<Option<(Incident, Vec<IncidentEvent>)>, AlertingError> {
        let (tsdb, id) = (self.tsdb.clone(), id.to_owned());
        Ok(
            tokio::task::spawn_blocking(move || store::incident(tsdb.kv(), &id))
                .await
                .expect("store read does not panic")?,
        )
    }
}

/// A node's recent arrivals, for its usual interval.
#[derive(Debug, Default)]
struct Activity {
    last_ms: i64,
    gaps: VecDeque<i64>,
}

impl Activity {
    fn seen(&mut self, now_ms: i64) {
        if self.last_ms > 0 && now_ms > self.last_ms {
            self.gaps.push_back(now_ms - self.last_ms);
            if self.gaps.len() > 9 {
                self.gaps.pop_front();
            }
        }
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// The median gap between arrivals (an agent's batches of several tiers arrive together
    /// now and then; the median ignores those).
    fn interval_ms(&self) -> i64 {
        let mut gaps: Vec<i64> = self.gaps.iter().copied().collect();
        gaps.sort_unstable();
        gaps.get(gaps.len() / 2).copied().unwrap_or(0)
    }
}

struct Done {
    outgoing: Outgoing,
    attempts: u32,
    errors: Vec<String>,
    delivered: bool,
}

/// Metrics of the alert engine itself.
pub struct AlertMetrics {
    pub alerts: prometheus::IntGaugeVec,
    pub evaluation_delay: prometheus::Histogram,
    pub store_errors: prometheus::IntCounter,
    /// `{record}`: stored values that could not be read at start, set aside (store.rs).
    pub quarantined: prometheus::IntCounterVec,
}

impl AlertMetrics {
    pub fn new(registry: &prometheus::Registry) -> Self {
        let alerts = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "hcmon_collector_alerts",
                "Alerts known to the collector, by state.",
            ),
            &["state"],
        )
        .expect("valid metric");
        let evaluation_delay = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new(
                "hcmon_collector_alert_evaluation_delay_seconds",
                "From a stored batch reaching the alert rules to its verdicts being visible in the API.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        )
        .expect("valid metric");
        let store_errors = prometheus::IntCounter::new(
            "hcmon_collector_alert_store_errors_total",
            "Alerting state that could not be written to the store.",
        )
        .expect("valid metric");
        let quarantined = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "hcmon_collector_quarantined_records_total",
                "Stored alerting records that could not be read at start, moved aside under the q/ prefix of the alerts table (the rest loaded), by kind of record.",
            ),
            &["record"],
        )
        .expect("valid metric");
        // Every kind shows from the start, so an increase is visible as one.
        for kind in store::RecordKind::ALL {
            quarantined.with_label_values(&[kind.name()]);
        }
        for c in [
            Box::new(alerts.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(evaluation_delay.clone()),
            Box::new(store_errors.clone()),
            Box::new(quarantined.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Self {
            alerts,
            evaluation_delay,
            store_errors,
            quarantined,
        }
    }
}

/// Everything the service needs from the rest of the collector.
pub struct Dependencies {
    pub tsdb: Arc<Tsdb>,
    pub catalog: Arc<SeriesCatalog>,
    pub ingest: Arc<IngestService>,
    pub watch: Option<Arc<AnomalyWatch>>,
    pub nodes: Vec<(String, NodeRecord)>,
    pub registry: prometheus::Registry,
    pub clock: Clock,
    /// Used for ack links when `external_url` is not set.
    pub http_url: Option<String>,
}

/// The alerting service before it runs: state loaded, feed attached to ingest.
pub struct AlertService {
    book: AlertBook,
    rules: Arc<RuleSet>,
    config: AlertingConfig,
    deps: Dependencies,
    channels: Arc<Channels>,
    metrics: AlertMetrics,
    inputs: mpsc::UnboundedReceiver<Input>,
    commands: mpsc::Receiver<Command>,
    view: Arc<RwLock<Arc<AlertsView>>>,
    outbox: Vec<Outgoing>,
    nodes: BTreeMap<String, Activity>,
    series: FxHashMap<SeriesId, (Arc<Watched>, Activity)>,
    /// Alerts that just fired on a series, waiting for their related series.
    correlate: Vec<(String, Arc<SeriesMeta>)>,
}

impl AlertService {
    /// Loads the stored state, builds the channels and attaches the feed to ingest.
    pub fn open(config: AlertingConfig, deps: Dependencies) -> anyhow::Result<(Self, Alerting)> {
        let rules = Arc::new(RuleSet::new(&config).map_err(anyhow::Error::msg)?);
        let channel_configs = config.all_channels();
        let channels = Channels::new(
            &channel_configs,
            config.retry.clone(),
            NotifyMetrics::new(&deps.registry),
        )
        .map_err(anyhow::Error::msg)?;
        let kv = deps.tsdb.kv();
        let secret = match &config.ack_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => store::signing_key(kv)?,
        };
        let base = config.external_url.clone().or(deps.http_url.clone());
        let signer = Arc::new(AckSigner::new(&secret, base.clone()));
        let loaded = store::load(kv)?;
        let book_config = BookConfig {
            group_by: config.group_by.clone(),
            group_window_ms: config.group_window.as_millis() as i64,
            channels: channel_configs
                .iter()
                .map(|c| ChannelPolicy {
                    name: c.name.clone(),
                    limits: c.limits(),
                    escalation_only: c.escalation_only,
                })
                .collect(),
            recipients: config.recipients.clone(),
            escalation: config.escalation.policy(),
            escalation_min_severity: config.escalation.min_severity,
            ack_links: base
                .is_some()
                .then(|| Box::new(AckSigner::new(&secret, base.clone())) as Box<dyn AckLinks>),
        };
        let book = AlertBook::restore(
            book_config,
            loaded.alerts,
            loaded.silences,
            loaded.open_incidents,
            loaded.state,
        );
        let (input_tx, inputs) = mpsc::unbounded_channel();
        let (command_tx, commands) = mpsc::channel(64);
        let feed = Arc::new(AlertFeed {
            rules: rules.clone(),
            catalog: deps.catalog.clone(),
            watched: RwLock::default(),
            inputs: input_tx,
            clock: deps.clock.clone(),
            max_lag_ms: config.max_sample_lag.as_millis() as i64,
        });
        deps.ingest.feed_alerts(feed);
        let nodes = deps
            .nodes
            .iter()
            .map(|(name, record)| {
                let activity = Activity {
                    last_ms: record.last_batch_at_ms,
                    gaps: VecDeque::new(),
                };
                (name.clone(), activity)
            })
            .collect();
        let view = Arc::new(RwLock::new(Arc::new(AlertsView::default())));
        let handle = Alerting {
            commands: command_tx,
            view: view.clone(),
            signer,
            tsdb: deps.tsdb.clone(),
            clock: deps.clock.clone(),
        };
        let metrics = AlertMetrics::new(&deps.registry);
        for quarantined in &loaded.quarantined {
            quarantined.emit(&metrics.quarantined);
        }
        if let Some(error) = &loaded.quarantine_failed {
            tracing::error!(%error, "unreadable alerting records not moved aside; left out, moved at the next start");
        }
        if !loaded.outbox.is_empty() {
            tracing::info!(
                queued = loaded.outbox.len(),
                "delivering notifications queued before the restart"
            );
        }
        let service = Self {
            book,
            rules,
            config,
            deps,
            channels: Arc::new(channels),
            metrics,
            inputs,
            commands,
            view,
            outbox: loaded.outbox,
            nodes,
            series: FxHashMap::default(),
            correlate: Vec::new(),
        };
        Ok((service, handle))
    }

    fn now(&self) -> i64 {
        (self.deps.clock)()
    }

    /// Runs until `shutdown`; deliveries in flight are abandoned to the outbox (sent on start).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let (related_tx, mut related_rx) = mpsc::unbounded_channel::<(String, Vec<String>)>();
        let mut workers: BTreeMap<String, mpsc::UnboundedSender<Outgoing>> = BTreeMap::new();
        for config in self.channels.configs() {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(deliver_in_order(
                config.name.clone(),
                self.channels.clone(),
                rx,
                done_tx.clone(),
                shutdown.clone(),
            ));
            workers.insert(config.name.clone(), tx);
        }
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_evaluation: Option<Instant> = None;
        let mut last_forecast: Option<Instant> = None;
        let forecast_every = self.config.evaluation_interval.max(Duration::from_secs(60));
        let mut delivered = Vec::new();
        let mut arrivals = Vec::new();
        let pending = std::mem::take(&mut self.outbox);
        self.dispatch(pending, &workers);
        // The API shows the stored alerts and silences from the start, not from the first
        // change after it.
        self.publish(self.now());
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                Some(input) = self.inputs.recv() => {
                    arrivals.push(self.apply(input));
                    while let Ok(more) = self.inputs.try_recv() {
                        arrivals.push(self.apply(more));
                    }
                }
                Some(command) = self.commands.recv() => self.command(command),
                Some((id, related)) = related_rx.recv() => self.book.set_related(&id, related),
                Some(done) = done_rx.recv() => {
                    let now = self.now();
                    self.book.delivered(&done.outgoing, done.attempts, done.errors, done.delivered, now);
                    delivered.push(done.outgoing.seq);
                }
                _ = tick.tick() => {
                    self.check_silence();
                    self.check_anomalies();
                    if last_evaluation.is_none_or(|t| t.elapsed() >= self.config.evaluation_interval) {
                        last_evaluation = Some(Instant::now());
                        self.evaluate_functions().await;
                    }
                    if last_forecast.is_none_or(|t| t.elapsed() >= forecast_every) {
                        last_forecast = Some(Instant::now());
                        self.evaluate_forecasts().await;
                    }
                }
            }
            let at = self.now();
            for (id, target) in std::mem::take(&mut self.correlate) {
                let (tsdb, catalog, tx) = (
                    self.deps.tsdb.clone(),
                    self.deps.catalog.clone(),
                    related_tx.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    let related = related_series(&tsdb, &catalog, &target, at);
                    let _ = tx.send((id, related));
                });
            }
            let now = self.now();
            let flap = self.rules.flap_rules();
            self.book.tick(now, &flap);
            let changes = self.book.take_changes();
            if !changes.is_empty() || !delivered.is_empty() {
                let state = self.book.state().clone();
                let tsdb = self.deps.tsdb.clone();
                let done = std::mem::take(&mut delivered);
                let changes = Arc::new(changes);
                let write = changes.clone();
                let written = tokio::task::spawn_blocking(move || {
                    store::write(tsdb.kv(), &write, &state, &done)
                })
                .await
                .expect("store write does not panic");
                match written {
                    Ok(()) => {
                        let outbox = Arc::try_unwrap(changes)
                            .map(|c| c.outbox)
                            .unwrap_or_else(|c| c.outbox.clone());
                        self.dispatch(outbox, &workers);
                    }
                    Err(error) => {
                        // Not sent either: what is not durable must not reach anyone, or a
                        // restart would send it again.
                        self.metrics.store_errors.inc();
                        tracing::error!(%error, "alerting state not written; notifications held");
                    }
                }
                self.publish(now);
            } else if !arrivals.is_empty() {
                self.publish(now);
            }
            for arrived in arrivals.drain(..) {
                self.metrics
                    .evaluation_delay
                    .observe(arrived.elapsed().as_secs_f64());
            }
        }
    }

    fn dispatch(
        &self,
        outbox: Vec<Outgoing>,
        workers: &BTreeMap<String, mpsc::UnboundedSender<Outgoing>>,
    ) {
        for outgoing in outbox {
            match workers.get(&outgoing.channel) {
                Some(worker) => {
                    let _ = worker.send(outgoing);
                }
                None => tracing::warn!(
                    channel = %outgoing.channel,
                    "notification for a channel no longer configured; dropped"
                ),
            }
        }
    }

    fn publish(&self, now: i64) {
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        let alerts: Vec<AlertView> = self
            .book
            .alerts()
            .map(|record| {
                *counts.entry(record.lifecycle.state.name()).or_default() += 1;
                AlertView {
                    muted: self.book.muted(&record.id, now),
                    record: record.clone(),
                }
            })
            .collect();
        for state in ["inactive", "pending", "firing", "acknowledged", "resolved"] {
            self.metrics
                .alerts
                .with_label_values(&[state])
                .set(counts.get(state).copied().unwrap_or(0));
        }
        let view = AlertsView {
            alerts,
            silences: self.book.silences().cloned().collect(),
        };
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(view);
    }

    fn apply(&mut self, input: Input) -> Instant {
        let now = self.now();
        let Input::Batch {
            node,
            arrived,
            samples,
        } = input;
        if let Some(node) = node {
            self.nodes.entry(node).or_default().seen(now);
        }
        for (watched, _, value) in samples {
            for rule in &watched.rules {
                match *rule {
                    SampleRule::Threshold(i) => {
                        let obs = self.rules.threshold(i, &watched.meta.labels, value);
                        let id = super::book::alert_id(&obs.alertname, &obs.labels);
                        self.book.observe(obs, now);
                        let fired_now = self
                            .book
                            .alert(&id)
                            .and_then(|a| a.episode.as_ref())
                            .is_some_and(|e| e.fired_ms == now);
                        if fired_now {
                            self.correlate.push((id, watched.meta.clone()));
                        }
                    }
                    SampleRule::MissingSeries(_) => {
                        self.series
                            .entry(watched.meta.id)
                            .or_insert_with(|| (watched.clone(), Activity::default()))
                            .1
                            .seen(now);
                    }
                }
            }
        }
        arrived
    }

    fn command(&mut self, command: Command) {
        let now = self.now();
        match command {
            Command::Ack { id, by, reply } => {
                let _ = reply.send(self.book.acknowledge(&id, &by, now));
            }
            Command::Silence { record, reply } => {
                let _ = reply.send(self.book.silence(record));
            }
            Command::Expire { id, reply } => {
                let _ = reply.send(self.book.expire_silence(&id, now));
            }
            Command::ForgetNode { node, reply } => {
                self.nodes.remove(&node);
                // Its watched series too, or a missing-series rule would fire for them next.
                self.series.retain(|_, (watched, _)| {
                    watched.meta.labels.get("node") != Some(node.as_str())
                });
                let dropped = self.book.forget_node(&node, now);
                tracing::info!(%node, alerts = dropped, "alerts of a forgotten node resolved");
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// Missing data: agents silent or disconnected, watched series silent.
    fn check_silence(&mut self) {
        let now = self.now();
        if self.rules.agents {
            for (node, activity) in &self.nodes {
                let silent = now - activity.last_ms;
                let obs = self
                    .rules
                    .agent_silent(node, silent.max(0), activity.interval_ms());
                self.book.observe(obs, now);
            }
            let disconnected: BTreeMap<String, i64> =
                self.deps.ingest.disconnected_nodes().into_iter().collect();
            for node in self.nodes.keys() {
                let closed = disconnected.get(node).map_or(0, |since| now - since);
                let obs = self.rules.agent_disconnected(node, closed.max(0));
                self.book.observe(obs, now);
            }
        }
        for (watched, activity) in self.series.values() {
            for rule in &watched.rules {
                if let SampleRule::MissingSeries(i) = *rule {
                    let obs = self.rules.series_missing(
                        i,
                        &watched.meta.labels,
                        now - activity.last_ms,
                        activity.interval_ms(),
                    );
                    self.book.observe(obs, now);
                }
            }
        }
    }

    /// Anomaly rules over the newest verdict of each matching series.
    fn check_anomalies(&mut self) {
        let Some(watch) = &self.deps.watch else {
            return;
        };
        let now = self.now();
        for (i, (_, selector)) in self.rules.anomaly.iter().enumerate() {
            for meta in self.deps.catalog.select(selector) {
                if let Some(verdict) = watch.latest(meta.id)
                    && now - verdict.timestamp_ms <= self.config.max_sample_lag.as_millis() as i64
                {
                    let obs = self.rules.anomaly(i, &meta.labels, &verdict);
                    self.book.observe(obs, now);
                }
            }
        }
    }

    /// Threshold rules over functions (`rate(...)`), evaluated at the current time.
    async fn evaluate_functions(&mut self) {
        let functions: Vec<usize> = (0..self.rules.thresholds.len())
            .filter(|&i| self.rules.thresholds[i].plain.is_none())
            .collect();
        if functions.is_empty() {
            return;
        }
        let now = self.now();
        let (tsdb, catalog, rules) = (
            self.deps.tsdb.clone(),
            self.deps.catalog.clone(),
            self.rules.clone(),
        );
        let results = tokio::task::spawn_blocking(move || {
            let source = crate::query::StoreSource { catalog, tsdb };
            functions
                .into_iter()
                .map(|i| {
                    let result =
                        crate::query::evaluate(&source, &rules.thresholds[i].expr, now, now, 1000);
                    (i, result)
                })
                .collect::<Vec<_>>()
        })
        .await
        .expect("rule evaluation does not panic");
        for (i, result) in results {
            match result {
                Ok((series, _)) => {
                    for (labels, points) in series {
                        let Some(&(_, value)) = points.last() else {
                            continue;
                        };
                        let name = labels
                            .get(hcmon_common::METRIC_NAME_LABEL)
                            .cloned()
                            .unwrap_or_else(|| "value".into());
                        let Ok(labels) = hcmon_common::Labels::new(
                            &name,
                            labels
                                .into_iter()
                                .filter(|(k, _)| k != hcmon_common::METRIC_NAME_LABEL),
                        ) else {
                            continue;
                        };
                        let obs = self.rules.threshold(i, &labels, value);
                        self.book.observe(obs, now);
                    }
                }
                Err(error) => tracing::warn!(
                    rule = %self.rules.thresholds[i].rule.name,
                    %error,
                    "alert rule could not be evaluated"
                ),
            }
        }
    }

    /// Forecast rules over each matching series' recent history.
    async fn evaluate_forecasts(&mut self) {
        if self.rules.forecast.is_empty() {
            return;
        }
        let now = self.now();
        let (tsdb, catalog, rules) = (
            self.deps.tsdb.clone(),
            self.deps.catalog.clone(),
            self.rules.clone(),
        );
        let observations = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for (i, (rule, selector)) in rules.forecast.iter().enumerate() {
                let start = now - rule.window.as_millis() as i64;
                for meta in catalog.select(selector) {
                    match tsdb.read_raw(meta.id, start, now) {
                        Ok(samples) => out.extend(rules.forecast(i, &meta.labels, &samples)),
                        Err(error) => {
                            tracing::warn!(rule = %rule.name, %error, "forecast rule could not read history")
                        }
                    }
                }
            }
            out
        })
        .await
        .expect("forecast evaluation does not panic");
        for obs in observations {
            self.book.observe(obs, now);
        }
    }
}

/// The series that moved with `target` over the last 30 minutes, phrased for people, strongest
/// first (at most 3): the same ranking as `/api/v1/related`, the node's own series first.
fn related_series(
    tsdb: &Tsdb,
    catalog: &SeriesCatalog,
    target: &SeriesMeta,
    at: i64,
) -> Vec<String> {
    use crate::analytics::correlation::{CorrelationConfig, SeriesWindow, rank_related};
    let config = CorrelationConfig::default();
    let lag = config.max_lag.as_millis() as i64;
    let start = at - 30 * 60_000 - lag;
    let node = target.labels.get("node").unwrap_or_default();
    let mut candidates: Vec<_> = catalog
        .all()
        .into_iter()
        .filter(|m| m.id != target.id)
        .collect();
    candidates.sort_by_key(|m| m.labels.get("node").unwrap_or_default() != node);
    candidates.truncate(config.max_candidates);
    let read = |meta: &SeriesMeta| match tsdb.read_raw(meta.id, start, at) {
        Ok(samples) => Some(SeriesWindow::new(meta.labels.to_string(), samples)),
        Err(error) => {
            tracing::warn!(%error, "related series could not be read");
            None
        }
    };
    let Some(target_window) = read(target) else {
        return Vec::new();
    };
    let windows: Vec<SeriesWindow> = candidates.iter().filter_map(|m| read(m)).collect();
    rank_related(&target_window, &windows, &config)
        .iter()
        .take(3)
        .map(|r| r.describe())
        .collect()
}

/// Delivers one channel's notifications in the order they were queued.
async fn deliver_in_order(
    channel: String,
    channels: Arc<Channels>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    done: mpsc::UnboundedSender<Done>,
    shutdown: CancellationToken,
) {
    loop {
        let outgoing = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = queue.recv() => match next {
                Some(outgoing) => outgoing,
                None => return,
            },
        };
        let report = tokio::select! {
            _ = shutdown.cancelled() => return,
            report = channels.deliver(&channel, &outgoing.notification) => report,
        };
        let _ = done.send(Done {
            outgoing,
            attempts: report.attempts,
            errors: report.errors,
            delivered: report.delivered,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_links_verify_and_expire_and_cannot_be_altered() {
        let signer = AckSigner::new(b"0123456789abcdef0123", Some("http://mon:9464/".into()));
        let link = signer.link("abc", "on call", 2_000_000);
        assert!(
            link.starts_with(
                "http://mon:9464/api/v1/alerts/abc/ack?by=on%20call&expires=2000&sig="
            )
        );
        let sig = link.rsplit("sig=").next().unwrap();
        assert!(signer.verify("abc", "on call", 2000, sig, 1_000_000));
        assert!(
            !signer.verify("abc", "on call", 2000, sig, 2_000_001),
            "expired"
        );
        assert!(
            !signer.verify("abd", "on call", 2000, sig, 0),
            "other alert"
        );
        assert!(!signer.verify("abc", "boss", 2000, sig, 0), "other person");
        assert!(
            !signer.verify("abc", "on call", 9999, sig, 0),
            "longer life"
        );
        assert!(!signer.verify("abc", "on call", 2000, "zz", 0));
    }
}

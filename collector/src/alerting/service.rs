//! The alerting service: the I/O around the pure [`AlertBook`]. One task owns the book; it
//! takes samples from ingest (through [`AlertFeed`]), operator commands from the API (through
//! [`Alerting`]), delivery reports from the channel workers, and a clock tick (the timed rule
//! rounds); after each it writes what changed to RocksDB in one durable batch, hands the queued
//! notifications to the channel workers, and publishes a fresh [`AlertsView`] for the API.
//!
//! # Invariants
//! - A notification reaches a channel worker only after the batch that queued it (and marked
//!   it sent, or its escalation tier reached) is durable. After a crash the outbox holds exactly
//!   the notifications not yet delivered, and they are delivered on start.
//! - The book sees time only through the injected [`Clock`]; the tick merely says "look at the
//!   clock again", so a test clock drives hour-long escalations in milliseconds.
//! - In an HA pair, the operator state (silences, acknowledgements) is shared both ways
//!   ([`OperatorState`]): this book's is published to the pair after each change, and the
//!   peer's is merged in when it arrives and again each tick (an acknowledgement may arrive
//!   before the alert fires here), going through the same durable change sets as commands.

use super::ack_link::AckSigner;
use super::activity::Arrivals;
use super::book::{
    AckLinks, AlertBook, AlertRecord, BookConfig, Changes, ChannelPolicy, Observation, Outgoing,
    SilenceRecord,
};
use super::config::AlertingConfig;
use super::delivery::{Delivered, Outcome, Workers};
use super::evaluate::{RuleError, RuleSet, SLO_BURN_RATE, SampleRule};
use super::feed::{AlertFeed, Arrival};
use super::handle::Command;
pub use super::handle::{Alerting, AlertingError};
use super::ids::AlertId;
pub use super::metrics::AlertMetrics;
use super::node_rules::NodeRules;
use super::notify::{ChannelError, Channels, NotifyMetrics};
use super::operator_state::OperatorState;
use super::rounds::{BurnRound, FileRuleResult, FileSchedule, Rounds};
use super::rule_files::evaluate::is_open;
use super::store;
pub use super::view::AlertView;
use super::view::{AlertsView, Published};
use crate::analytics::budget::Budget;
use crate::anomaly_watch::AnomalyWatch;
use crate::catalog::SeriesCatalog;
use crate::clock::Clock;
use crate::ingest::IngestService;
use crate::storage::{NodeRecord, SeriesMeta, StoreError, Tsdb};
use crate::tasks::{self, Role, TaskTree};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::Instrument;

/// Everything the service needs from the rest of the collector.
pub struct Dependencies {
    pub tsdb: Arc<Tsdb>,
    pub catalog: Arc<SeriesCatalog>,
    /// The store and the remote history before it, read by rules over long windows.
    pub history: Arc<crate::analysis::history::History>,
    pub watch: Option<Arc<AnomalyWatch>>,
    /// The node models whose verdicts `[[alerting.node_rules]]` judge; `None` with analytics off.
    pub forests: Option<Arc<crate::node_forest::NodeForests>>,
    pub nodes: Vec<(String, NodeRecord)>,
    pub registry: prometheus::Registry,
    pub clock: Clock,
    /// Used for ack links when `external_url` is not set.
    pub http_url: Option<String>,
    /// The SLOs whose burn rates raise `SloBurnRate`; `None` when `[slo] enabled = false`.
    pub slo: Option<Arc<crate::slo::objectives::Objectives>>,
    /// Data-quality scores, judged by `[[alerting.quality_rules]]` and marking anomaly
    /// verdicts low-confidence; `None` when `[quality] enabled = false`.
    pub quality: Option<Arc<crate::quality::QualityTracker>>,
    /// The HA pair that shares out delivery; `None` outside a pair.
    pub pair: Option<Arc<crate::pair::Pair>>,
}

/// Why the alerting service could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Rules(#[from] RuleError),
    #[error(transparent)]
    Channels(#[from] ChannelError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The alerting service before it runs: state loaded, its feed ready to hand to ingest.
pub struct AlertService {
    book: AlertBook,
    rounds: Rounds,
    /// Rule-file groups' rounds.
    schedule: FileSchedule,
    config: AlertingConfig,
    clock: Clock,
    channels: Arc<Channels>,
    metrics: AlertMetrics,
    feed: mpsc::UnboundedReceiver<Arrival>,
    commands: mpsc::Receiver<Command>,
    view: Published,
    /// Stored notifications not delivered before the last stop, sent first.
    outbox: Vec<Outgoing>,
    activity: Arrivals,
    /// Alerts that just fired on a series, waiting for their related series.
    correlate: Vec<(AlertId, Arc<SeriesMeta>)>,
    /// Bounds the related-series searches running at once (see `find_related`).
    related_searches: Arc<tokio::sync::Semaphore>,
    /// When the service started judging node verdicts: the models train and score again
    /// after a restart, so a node without any verdict yet keeps its alert for a while.
    started_ms: i64,
    pair: Option<Arc<crate::pair::Pair>>,
    /// The operator state last published to the pair.
    shared: Option<OperatorState>,
    /// The pair's peer's operator state, as last answered.
    peer_state: Option<OperatorState>,
}

impl AlertService {
    /// Loads the stored state and builds the channels; returns the service, the handle the API
    /// uses, and the feed ingest tells about every stored batch.
    pub fn open(
        config: AlertingConfig,
        deps: Dependencies,
    ) -> Result<(Self, Alerting, Arc<AlertFeed>), OpenError> {
        let rules = Arc::new(RuleSet::new(&config)?);
        let node_rules = NodeRules::new(&config)?;
        let quality_rules = super::quality_rules::QualityRules::new(&config)?;
        let channel_configs = config.all_channels();
        let channels = Channels::new(
            &channel_configs,
            config.retry.clone(),
            NotifyMetrics::new(&deps.registry),
        )?;
        let kv = deps.tsdb.kv();
        let secret = match &config.ack_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => store::signing_key(kv)?,
        };
        let base = config.external_url.clone().or(deps.http_url.clone());
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
        let max_lag_ms = config.max_sample_lag.as_millis() as i64;
        let (arrivals, feed) = mpsc::unbounded_channel();
        let (commands, command_rx) = mpsc::channel(64);
        let alert_feed = Arc::new(AlertFeed::new(
            rules.clone(),
            deps.catalog.clone(),
            arrivals,
            deps.clock.clone(),
            max_lag_ms,
        ));
        let view = Published::default();
        let handle = Alerting::new(
            commands,
            view.clone(),
            Arc::new(AckSigner::new(&secret, base)),
            deps.tsdb.clone(),
            deps.clock.clone(),
        );
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
        let started_ms = (deps.clock)();
        let service = Self {
            book,
            schedule: FileSchedule::new(&rules.files),
            rounds: Rounds {
                rules,
                tsdb: deps.tsdb,
                catalog: deps.catalog,
                history: deps.history,
                watch: deps.watch,
                forests: deps.forests,
                node_rules,
                quality: deps.quality,
                quality_rules,
                slo: deps.slo,
                max_lag_ms,
            },
            config,
            clock: deps.clock,
            channels: Arc::new(channels),
            metrics,
            feed,
            commands: command_rx,
            view,
            outbox: loaded.outbox,
            activity: Arrivals::new(&deps.nodes),
            correlate: Vec::new(),
            related_searches: Arc::new(tokio::sync::Semaphore::new(1)),
            started_ms,
            pair: deps.pair,
            shared: None,
            peer_state: None,
        };
        // The API and the `ALERTS` writer see the stored alerts and silences from the start,
        // not from the first change after it: an empty view would read as every alert resolved.
        service.publish(service.now());
        Ok((service, handle, alert_feed))
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Runs until the tree's shutdown; deliveries in flight are abandoned to the outbox (sent
    /// on start). `ingest` tells which agents have no open stream. A panic while writing a
    /// change set stops the collector (see `tasks.rs`): the book is then ahead of the store,
    /// and only a restart from the stored state is sure to send what it must, once.
    pub async fn run(mut self, ingest: Arc<IngestService>, tasks: TaskTree) {
        let shutdown = tasks.shutdown().clone();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Delivered>();
        let (related_tx, mut related_rx) = mpsc::unbounded_channel::<(AlertId, Vec<String>)>();
        // The SLO burn-rate round runs beside the loop, one at a time, every evaluation
        // interval at most: it reads days of samples per SLO, and the loop must not wait.
        let (burn_tx, mut burn_rx) = mpsc::unbounded_channel::<Option<BurnRound>>();
        let mut burn_running = false;
        let mut last_burn: Option<Instant> = None;
        let workers = Workers::start(&self.channels, self.pair.clone(), &tasks, &done_tx);
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_evaluation: Option<Instant> = None;
        let mut last_forecast: Option<Instant> = None;
        let forecast_every = self.config.evaluation_interval.max(Duration::from_secs(60));
        let mut delivered = Vec::new();
        let mut arrived = Vec::new();
        // The published view costs O(alerts): when only new values arrived (a fleet's samples,
        // no state change), it is made at most every `COALESCE` rather than per arrival.
        let mut last_publish = Instant::now();
        let mut last_timers = Instant::now();
        let mut view_behind = false;
        // Set after the feed is read: it is not read again (nor waited on) before then.
        let mut feed_rest: Option<tokio::time::Instant> = None;
        workers.dispatch(std::mem::take(&mut self.outbox));
        // Outside a pair the peer's state never changes: its sender lives as long as the loop.
        let (_no_peer, mut peer_operator) = tokio::sync::watch::channel(serde_json::Value::Null);
        if let Some(pair) = &self.pair {
            peer_operator = pair.peer_operator();
            // A new receiver counts the current document as seen. The pair's first poll can
            // answer before this loop subscribes (a restarted member's usually does, as its
            // store recovers first): without this, what the peer's operators did while this
            // member was down would wait for their next change.
            let current = peer_operator.borrow_and_update().clone();
            if !current.is_null() {
                self.learn_peer_state(current);
            }
        }
        loop {
            let mut ticked = false;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(COALESCE), if view_behind => {}
                _ = tokio::time::sleep_until(feed_rest.unwrap_or_else(tokio::time::Instant::now)),
                    if feed_rest.is_some() => feed_rest = None,
                Some(arrival) = self.feed.recv(), if feed_rest.is_none() => {
                    arrived.push(self.apply(arrival));
                    while let Ok(more) = self.feed.try_recv() {
                        arrived.push(self.apply(more));
                    }
                    feed_rest = Some(tokio::time::Instant::now() + FEED_PACE);
                }
                Some(command) = self.commands.recv() => {
                    // Arrivals queued while the feed rests come first, as they did before the
                    // command (a node forgotten must not be seen again by its last batch).
                    while let Ok(more) = self.feed.try_recv() {
                        arrived.push(self.apply(more));
                    }
                    self.command(command)
                }
                Ok(()) = peer_operator.changed() => {
                    let document = peer_operator.borrow_and_update().clone();
                    self.learn_peer_state(document);
                }
                Some((id, related)) = related_rx.recv() => self.book.set_related(&id, related),
                Some(found) = burn_rx.recv() => {
                    burn_running = false;
                    if let Some((observations, judged)) = found {
                        self.slo_burn(observations, judged);
                    }
                }
                Some(done) = done_rx.recv() => {
                    let now = self.now();
                    match &done.outcome {
                        Outcome::Here(report) => self.book.delivered(&done.outgoing, report, now),
                        Outcome::HandedToPeer { by_peer } => {
                            self.book.handed_to_peer(&done.outgoing, *by_peer, now)
                        }
                    }
                    delivered.push(done.outgoing.seq);
                }
                _ = tick.tick() => {
                    ticked = true;
                    self.apply_peer_state();
                    // One span per evaluation round (exported with `[traces]`).
                    let round = tracing::info_span!("rule_evaluation");
                    async {
                        let now = self.now();
                        let disconnected = match self.rounds.rules.agents {
                            true => ingest.disconnected_nodes().into_iter().collect(),
                            false => BTreeMap::new(),
                        };
                        let missing = self.rounds.missing_data(&self.activity, &disconnected, now);
                        self.observe(missing, now);
                        self.observe(self.rounds.anomalies(now), now);
                        self.node_verdicts(now);
                        self.quality_scores();
                        if last_evaluation.is_none_or(|t| t.elapsed() >= self.config.evaluation_interval) {
                            last_evaluation = Some(Instant::now());
                            let now = self.now();
                            self.observe(self.rounds.functions(now).await, now);
                        }
                        if !burn_running
                            && last_burn.is_none_or(|t| t.elapsed() >= self.config.evaluation_interval)
                        {
                            last_burn = Some(Instant::now());
                            burn_running = self.start_slo_burn(&tasks, &burn_tx);
                        }
                        let rules = self.rounds.rules.clone();
                        for group in self.schedule.due(&rules.files, Instant::now()) {
                            let now = self.now();
                            let results = self.rounds.file_group(group, now).await;
                            self.file_group(group, results, now);
                        }
                        if last_forecast.is_none_or(|t| t.elapsed() >= forecast_every) {
                            last_forecast = Some(Instant::now());
                            let now = self.now();
                            self.observe(self.rounds.forecasts(now).await, now);
                        }
                    }
                    .instrument(round)
                    .await;
                }
            }
            self.find_related(&tasks, &related_tx);
            let now = self.now();
            // The timers run on the tick, or at once when something changed (an alert that
            // fired is announced without waiting). Not on every fleet arrival: with thousands of
            // alerts known, that was a tenth of the collector's CPU under a back-fill. The
            // select is biased towards arrivals, so a back-fill that always has one ready could
            // starve the tick's branch: a tick's worth of time passed runs them too.
            if ticked || self.book.has_changes() || last_timers.elapsed() >= self.config.tick {
                last_timers = Instant::now();
                self.book.tick(now, &self.rounds.rules.flap_rules());
            }
            let changes = self.book.take_changes();
            if !changes.is_empty() || !delivered.is_empty() {
                let done = std::mem::take(&mut delivered);
                if !self.write(changes, done, &workers, &tasks).await {
                    return;
                }
            } else if arrived.is_empty() && !view_behind {
                continue;
            } else if !ticked && last_publish.elapsed() < COALESCE {
                // Only new values: shown at the next publication, at most `COALESCE` away.
                view_behind = true;
                continue;
            }
            self.publish(now);
            self.share_operator_state(now);
            last_publish = Instant::now();
            view_behind = false;
            for at in arrived.drain(..) {
                self.metrics
                    .evaluation_delay
                    .observe(at.elapsed().as_secs_f64());
            }
        }
    }

    fn observe(&mut self, observations: Vec<Observation>, now: i64) {
        for obs in observations {
            self.book.observe(obs, now);
        }
    }

    /// Starts the SLOs' burn-rate round on a task of its own, its result sent to `found`;
    /// false when there are no SLOs.
    fn start_slo_burn(
        &self,
        tasks: &TaskTree,
        found: &mpsc::UnboundedSender<Option<BurnRound>>,
    ) -> bool {
        let silences = self
            .book
            .silences()
            .filter_map(SilenceRecord::maintenance_span)
            .collect();
        let Some(round) = self.rounds.slo_burn(silences, self.now()) else {
            return false;
        };
        let found = found.clone();
        tasks.spawn("slo-burn-rate-evaluation", Role::Helper, async move {
            let _ = found.send(round.await);
            Ok(())
        });
        true
    }

    /// What a burn-rate round found; open burn-rate alerts of SLOs no longer judged resolve.
    fn slo_burn(&mut self, observations: Vec<Observation>, judged: BTreeSet<String>) {
        let now = self.now();
        self.observe(observations, now);
        let gone: Vec<_> = self
            .book
            .alerts()
            .filter(|a| a.alertname == SLO_BURN_RATE && is_open(a))
            .filter(|a| a.labels.get("slo").is_none_or(|slo| !judged.contains(slo)))
            .map(|a| self.rounds.rules.slo_burn_gone(a.labels.clone()))
            .collect();
        self.observe(gone, now);
    }

    /// Node rules over every node's newest verdict; open node alerts without a fresh verdict
    /// resolve.
    fn node_verdicts(&mut self, now: i64) {
        let verdicts = self.rounds.node_verdicts();
        let observations = self.rounds.node_rules.judge(
            &verdicts,
            self.book.alerts().filter(|a| is_open(a)),
            now,
            self.started_ms,
        );
        self.observe(observations, now);
    }

    /// Quality rules over every node's newest data-quality scores; open quality alerts of
    /// nodes no longer evaluated resolve.
    fn quality_scores(&mut self) {
        let Some(quality) = &self.rounds.quality else {
            return;
        };
        let report = quality.latest();
        if report.evaluated_ms == 0 {
            return;
        }
        let observations = self.rounds.quality_rules.judge(&report, self.book.alerts());
        self.observe(observations, report.evaluated_ms);
    }

    /// Feeds one round of rule-file group `group` to the book: each rule's result with the
    /// alerts of that rule still open, so those gone from the result resolve.
    fn file_group(&mut self, group: usize, results: Vec<FileRuleResult>, now: i64) {
        let rules = self.rounds.rules.clone();
        let compiled = &rules.files[group];
        let flap = rules.flap_rules();
        for (i, (rule, result)) in compiled.rules.iter().zip(results).enumerate() {
            let result = match result {
                Ok(result) => result,
                Err(error) => {
                    tracing::warn!(
                        rule = %rule.rule.alert,
                        group = %compiled.name,
                        %error,
                        "alert rule could not be evaluated"
                    );
                    continue;
                }
            };
            let open: Vec<&AlertRecord> = self
                .book
                .alerts()
                .filter(|a| a.alertname == rule.rule.alert && is_open(a))
                .collect();
            let observations = rule.observe(flap, result, &open, self.schedule.kept(group, i), now);
            self.observe(observations, now);
        }
    }

    /// Judges one stored batch's watched samples; returns when the feed saw it.
    fn apply(&mut self, arrival: Arrival) -> Instant {
        let now = self.now();
        if let Some(node) = arrival.node {
            self.activity.node_seen(node, now);
        }
        for (watched, _, value) in arrival.samples {
            for rule in &watched.rules {
                match *rule {
                    SampleRule::Threshold(i) => {
                        let obs = self.rounds.rules.threshold(i, &watched.meta.labels, value);
                        let id = AlertId::of(&obs.alertname, &obs.labels);
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
                    SampleRule::MissingSeries(_) => self.activity.series_seen(&watched, now),
                }
            }
        }
        arrival.at
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
                self.activity.forget_node(&node);
                let dropped = self.book.forget_node(&node, now);
                tracing::info!(%node, alerts = dropped, "alerts of a forgotten node resolved");
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// Takes the peer's operator state from the pair's poll and merges it in.
    fn learn_peer_state(&mut self, document: serde_json::Value) {
        match serde_json::from_value::<OperatorState>(document) {
            Ok(state) => {
                self.peer_state = Some(state);
                self.apply_peer_state();
            }
            Err(error) => tracing::warn!(
                %error,
                "the other collector of the pair shares silences and acknowledgements in a form this one cannot read (another version?); they are not applied here"
            ),
        }
    }

    fn apply_peer_state(&mut self) {
        let now = self.now();
        let Some(peer) = &self.peer_state else { return };
        let applied = peer.apply_to(&mut self.book, now);
        if applied != Default::default() {
            tracing::info!(
                silences_added = applied.silences_added,
                silences_expired = applied.silences_expired,
                acknowledged = applied.acknowledged,
                "applied what operators told the other collector of the pair"
            );
        }
    }

    /// Publishes this book's operator state to the pair, when it changed.
    fn share_operator_state(&mut self, now: i64) {
        let Some(pair) = &self.pair else { return };
        let state = OperatorState::of(&self.book, now);
        if self.shared.as_ref() == Some(&state) {
            return;
        }
        match serde_json::to_value(&state) {
            Ok(document) => pair.set_operator(document),
            Err(error) => tracing::error!(%error, "cannot share the operator state with the pair"),
        }
        self.shared = Some(state);
    }

    /// Looks, on the blocking pool, for the series that moved with each alert that just fired;
    /// what is found comes back through `found` and joins the alert's evidence.
    fn find_related(
        &mut self,
        tasks: &TaskTree,
        found: &mpsc::UnboundedSender<(AlertId, Vec<String>)>,
    ) {
        let at = self.now();
        for (id, target) in std::mem::take(&mut self.correlate) {
            let (tsdb, catalog, found, permits) = (
                self.rounds.tsdb.clone(),
                self.rounds.catalog.clone(),
                found.clone(),
                self.related_searches.clone(),
            );
            tasks.spawn("alert-related-series", Role::Helper, async move {
                // One search at a time: a storm of alerts queues here instead of taking
                // every blocking thread and core at once.
                let Ok(_permit) = permits.acquire_owned().await else {
                    return Ok(());
                };
                let related = tasks::blocking("alert-related-series", move || {
                    related_series(tsdb, &catalog, &target, at)
                })
                .await?;
                let _ = found.send((id, related));
                Ok(())
            });
        }
    }

    /// Writes a change set and the deliveries done since the last one in one durable batch,
    /// then hands its notifications to the workers. False when the write panicked: the
    /// collector is stopping (see [`AlertService::run`]).
    async fn write(
        &self,
        changes: Changes,
        delivered: Vec<u64>,
        workers: &Workers,
        tasks: &TaskTree,
    ) -> bool {
        let state = self.book.state().clone();
        let tsdb = self.rounds.tsdb.clone();
        let changes = Arc::new(changes);
        let write = changes.clone();
        let written = tasks::blocking("alert-store-write", move || {
            fail::fail_point!("alert-store-write");
            store::write(tsdb.kv(), &write, &state, &delivered)
        })
        .await;
        match written {
            Err(panicked) => {
                tasks.fail(format!(
                    "alerting stopped: {panicked}; its state on disk is intact, restart the collector"
                ));
                false
            }
            Ok(Ok(())) => {
                let outbox = Arc::try_unwrap(changes)
                    .map(|c| c.outbox)
                    .unwrap_or_else(|c| c.outbox.clone());
                workers.dispatch(outbox);
                true
            }
            Ok(Err(error)) => {
                // Not sent either: what is not durable must not reach anyone, or a restart
                // would send it again.
                self.metrics.store_errors.inc();
                tracing::error!(%error, "alerting state not written; notifications held");
                true
            }
        }
    }

    fn publish(&self, now: i64) {
        let view = AlertsView::of(&self.book, now);
        self.metrics.count(&view);
        self.view.set(view);
    }
}

/// Longest new values wait to be published when nothing changed state (see `run`).
const COALESCE: Duration = Duration::from_millis(200);

/// Least time between two readings of the arrivals. While the loop rests it does not wait on
/// the feed, so ingest's sends wake nobody: under load a reading takes the batches of
/// `FEED_PACE` at once, where each batch's send woke this thread (its wake-ups were 2% of the
/// collector's CPU under a back-fill). An arrival waits for its evaluation at most this long.
const FEED_PACE: Duration = Duration::from_millis(10);

/// How far back an alert's related series are looked for.
const RELATED_WINDOW: Duration = Duration::from_secs(30 * 60);
/// Most related series an alert's evidence names.
const RELATED_SHOWN: usize = 3;

/// The series that moved with `target` before `at`, phrased for people, strongest first: the
/// ranking `/api/v1/related` answers with, the node's own series first.
fn related_series(
    tsdb: Arc<Tsdb>,
    catalog: &SeriesCatalog,
    target: &SeriesMeta,
    at: i64,
) -> Vec<String> {
    let budget = Budget::UNLIMITED;
    let history = crate::analysis::history::History::local(tsdb);
    match crate::analysis::related::related_series(
        &history,
        catalog,
        target,
        at,
        RELATED_WINDOW,
        &budget,
    ) {
        Ok(related) => related
            .iter()
            .take(RELATED_SHOWN)
            .map(|r| r.describe())
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "related series could not be read");
            Vec::new()
        }
    }
}

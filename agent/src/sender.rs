//! Delivery: registers with the collector, streams spooled batches in order, deletes them on ack,
//! and after any failure reconnects with backoff and resends everything unacked.
//!
//! Collection never waits for this task: it only appends to the spool and pokes [`Notify`].
//!
//! With an `https://` collector each connection loads the node's identity afresh (so a renewed
//! certificate is used from the next connection on), enrolling the node first when it has none.

use crate::enrollment::{self, EnrollError, with_causes};
use crate::spool::{ReaderId, Spool, SpoolError, SpoolRecord, lock};
use crate::tls::{self, Identity, IdentityError, TlsConfigError};
use hcmon_common::enrollment::EnrollmentToken;
use hcmon_proto::v1::ingest_client::IngestClient;
use hcmon_proto::v1::{
    AgentMessage, Batch, CollectorMessage, HostFacts, MAX_HOST_FACT_BYTES,
    REJECTED_SEQ_METADATA_KEY, RegisterRequest, RegisterResponse, SESSION_METADATA_KEY, SeriesDef,
    SeriesSamples, agent_message, collector_message,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

/// Batches in flight before waiting for acks.
const WINDOW: u64 = 32;
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Sender {
    pub collector_url: String,
    pub node_name: String,
    /// The `job` and `instance` labels asked for at registration (empty: the collector's
    /// defaults).
    pub job: String,
    pub instance: String,
    pub token: String,
    pub host: HostFacts,
    pub spool: Arc<Mutex<Spool>>,
    /// This collector's cursor in the spool.
    pub reader: ReaderId,
    /// Woken when a batch is spooled (through [`SenderWakers`]).
    pub new_batch: Arc<Notify>,
    /// How long to wait after a wake-up before shipping ([`ship_delay`]).
    pub ship_delay: Duration,
    pub shutdown: CancellationToken,
    /// Set for an `https://` collector.
    pub tls: Option<SenderTls>,
}

/// How long a node's sender waits, once a batch is spooled, before shipping it: a share of the
/// collection interval fixed per node by a hash of its name, under a fifth of the interval and
/// at most 2 s. Every agent collects on the same wall-clock grid (see `next_collection`), so
/// shipping at once would land a fleet's batches on the collector in one burst at each grid
/// point; spread like this (as Prometheus spreads its scrapes by a hash of the target), the
/// same batches arrive over two seconds, each with the grid's timestamp. Only an idle sender
/// waits: a backlog is sent without pause.
pub fn ship_delay(node: &str, interval: Duration) -> Duration {
    let spread_ms = (interval.as_millis() / 5).min(2_000) as u64;
    if spread_ms == 0 {
        return Duration::ZERO;
    }
    // FNV-1a: stable across builds and platforms, so a node keeps its place in the spread.
    let hash = node.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Duration::from_millis(hash % spread_ms)
}

/// Wakes every sender (one per collector) when a batch is spooled. Each has its own [`Notify`]:
/// one shared would wake only one of them.
#[derive(Default)]
pub struct SenderWakers(Vec<Arc<Notify>>);

impl SenderWakers {
    /// A new sender's wake-up.
    pub fn add(&mut self) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        self.0.push(notify.clone());
        notify
    }

    pub fn wake(&self) {
        for notify in &self.0 {
            notify.notify_one();
        }
    }
}

/// How the sender authenticates to an `https://` collector. The senders of an HA pair share one
/// (cloned): one identity, enrolled once.
#[derive(Clone)]
pub struct SenderTls {
    /// Where the node's key and certificates are stored.
    pub identity_dir: PathBuf,
    /// A CA certificate to trust instead of the one stored at enrollment.
    pub ca_file: Option<PathBuf>,
    /// Used only while the node has no identity.
    pub enroll_token: Option<EnrollmentToken>,
    /// Signalled once the sender has enrolled the node.
    pub enrolled: Arc<Notify>,
    /// Held while enrolling, so the senders of a pair do not both spend the one-time token.
    pub enrolling: Arc<tokio::sync::Mutex<()>>,
}

/// What a node with an `https://` collector and no certificate is told.
pub const NOT_ENROLLED: &str = "this node has no certificate yet: start the agent with --enroll-token (run `hcmon enroll <node>` on the collector)";

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("invalid collector URL {url:?}: {source}")]
    Url {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("cannot connect to the collector: {}", with_causes(.0))]
    Connect(tonic::transport::Error),
    #[error("{NOT_ENROLLED}")]
    NotEnrolled,
    #[error("cannot enroll this node: {0}")]
    Enroll(#[from] EnrollError),
    #[error("this node's identity is not usable: {0}")]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error(
        "this node's certificate names {certified:?}, but the agent runs as {node:?}: set node_name to {certified:?}, or remove {} and enroll again",
        dir.display()
    )]
    NameMismatch {
        certified: String,
        node: String,
        dir: PathBuf,
    },
    #[error("collector answered with an error: {0}")]
    Status(#[from] Status),
    #[error("collector did not answer the registration within {0:?}")]
    RegisterTimeout(Duration),
    #[error(
        "the collector holds sequence number {held} of this spool even under a new epoch, but the spool has issued only numbers below {next_seq}; nothing is sent that it could take for a repeat"
    )]
    NumberingAhead { held: u64, next_seq: u64 },
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

enum SessionEnd {
    Shutdown,
    /// The stream ended after it was established: reconnect without waiting long.
    Closed,
}

/// Gives each series a small id the first time it is sent on a stream.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    fn batch(&mut self, seq: u64, record: SpoolRecord) -> Batch {
        let mut wire_ids = Vec::with_capacity(record.series.len());
        let mut new_series = Vec::new();
        for def in record.series {
            let mut key = def.name.clone();
            for label in &def.labels {
                key.push('\0');
                key.push_str(&label.name);
                key.push('\0');
                key.push_str(&label.value);
            }
            let next = self.ids.len() as u32 + 1;
            let id = *self.ids.entry(key).or_insert_with(|| {
                new_series.push(SeriesDef { id: next, ..def });
                next
            });
            wire_ids.push(id);
        }
        let samples = record
            .samples
            .into_iter()
            .filter_map(|s| {
                let id = *wire_ids.get(s.series_id as usize)?;
                Some(SeriesSamples { series_id: id, ..s })
            })
            .collect();
        Batch {
            seq,
            new_series,
            samples,
            skipped_from: 0,
        }
    }
}

/// The collector's gRPC endpoint with the agent's timeouts and keep-alives.
pub fn collector_endpoint(url: &str) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10)))
}

/// Host facts as the collector accepts them (each string bounded, no control characters): an
/// odd `/etc/os-release` must not keep the node from registering.
fn within_limits(mut host: HostFacts) -> HostFacts {
    for fact in [
        &mut host.hostname,
        &mut host.os_name,
        &mut host.os_version,
        &mut host.kernel_version,
        &mut host.arch,
    ] {
        let mut fitted = String::with_capacity(fact.len().min(MAX_HOST_FACT_BYTES));
        for c in fact.chars().map(|c| if c.is_control() { ' ' } else { c }) {
            if fitted.len() + c.len_utf8() > MAX_HOST_FACT_BYTES {
                break;
            }
            fitted.push(c);
        }
        *fact = fitted;
    }
    host
}

impl Sender {
    pub async fn run(self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.session(&mut backoff).await {
                Ok(SessionEnd::Shutdown) => return,
                Ok(SessionEnd::Closed) => {
                    tracing::info!("collector closed the stream; reconnecting")
                }
                Err(error) if self.needs_admin(&error) => {
                    backoff = BACKOFF_MAX;
                    tracing::error!(%error, retry_in = ?backoff, "delivery stopped; batches stay spooled");
                }
                Err(SendError::Status(status))
                    if self.tls.is_some() && status.code() == Code::PermissionDenied =>
                {
                    backoff = BACKOFF_MAX;
                    tracing::error!(
                        reason = status.message(),
                        retry_in = ?backoff,
                        "the collector revoked this node's certificate (or refused its name): it needs enrolling again (run `hcmon enroll <node>` on the collector, remove the identity directory and start the agent with --enroll-token); batches stay spooled"
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "delivery interrupted; batches stay spooled");
                }
            }
            // Equal jitter (half fixed, half random) keeps a fleet from reconnecting in lockstep
            // after a collector restart.
            let delay = backoff.mul_f64(0.5 + fastrand::f64() * 0.5);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Errors that retrying alone will not cure: someone has to act.
    fn needs_admin(&self, error: &SendError) -> bool {
        matches!(
            error,
            SendError::NotEnrolled
                | SendError::NameMismatch { .. }
                | SendError::Identity(_)
                | SendError::Tls(_)
                | SendError::Enroll(EnrollError::Revoked(_))
        )
    }

    /// One connection: register, then stream until something ends it. `backoff` is reset once
    /// the collector has answered, so refusals of single batches do not slow delivery down.
    async fn session(&self, backoff: &mut Duration) -> Result<SessionEnd, SendError> {
        let endpoint =
            collector_endpoint(&self.collector_url).map_err(|source| SendError::Url {
                url: self.collector_url.clone(),
                source,
            })?;
        let channel = tokio::select! {
            channel = self.connect(&endpoint) => channel?,
            _ = self.shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
        };
        let mut client = IngestClient::new(channel);
        let Some(mut registration) = self.register(&mut client).await? else {
            return Ok(SessionEnd::Shutdown);
        };
        *backoff = BACKOFF_MIN;
        let next_seq = lock(&self.spool).next_seq();
        if registration.last_durable_seq >= next_seq {
            // The collector holds numbers this spool has not issued: the spool went back in time
            // (a restored VM snapshot) and would reuse them, and the collector would take the new
            // batches for repeats. Under a new epoch nothing is taken for anything else.
            let epoch = lock(&self.spool).start_new_epoch()?;
            tracing::warn!(
                collector_holds = registration.last_durable_seq,
                next_seq,
                new_epoch = epoch,
                "the collector holds sequence numbers this spool never issued (restored from a snapshot?); continuing under a new spool epoch"
            );
            let Some(again) = self.register(&mut client).await? else {
                return Ok(SessionEnd::Shutdown);
            };
            registration = again;
            if registration.last_durable_seq >= next_seq {
                return Err(SendError::NumberingAhead {
                    held: registration.last_durable_seq,
                    next_seq,
                });
            }
        }
        // Batches the collector already holds (their acks were lost) need not be resent.
        lock(&self.spool).ack(self.reader, registration.last_durable_seq)?;

        let (tx, rx) = mpsc::channel::<AgentMessage>(WINDOW as usize);
        let mut request = Request::new(ReceiverStream::new(rx));
        let session = registration.session_id.parse().map_err(|_| {
            Status::internal("collector sent a session id that is not valid metadata")
        })?;
        request.metadata_mut().insert(SESSION_METADATA_KEY, session);
        let mut inbound = client.stream(request).await?.into_inner();
        let pending = lock(&self.spool).stats().batches;
        tracing::info!(
            collector = %self.collector_url,
            last_durable_seq = registration.last_durable_seq,
            pending,
            "streaming to collector"
        );

        let mut interner = Interner::default();
        let mut last_sent = registration.last_durable_seq;
        let mut last_acked = registration.last_durable_seq;
        loop {
            while last_sent.saturating_sub(last_acked) < WINDOW {
                let next = {
                    let spool = lock(&self.spool);
                    let next = spool.first_after(last_sent);
                    next.map(|seq| spool.read(seq).map(|record| (seq, record)))
                };
                let Some(next) = next else { break };
                let (seq, record) = next?;
                let mut batch = interner.batch(seq, record);
                if seq - last_sent > 1 {
                    // The numbers between were dropped, set aside or never written: the
                    // collector refuses a gap it is not told about.
                    batch.skipped_from = last_sent + 1;
                }
                let message = AgentMessage {
                    kind: Some(agent_message::Kind::Batch(batch)),
                };
                if tx.send(message).await.is_err() {
                    break; // the stream is gone; the inbound side says why
                }
                last_sent = seq;
            }
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(CollectorMessage { kind: Some(collector_message::Kind::Ack(ack)) })) => {
                        // Never delete what was not sent, whatever the collector says.
                        let acked = ack.seq.min(last_sent);
                        lock(&self.spool).ack(self.reader, acked)?;
                        last_acked = last_acked.max(acked);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return Ok(SessionEnd::Closed),
                    Err(status) => {
                        self.handle_refusal(&status, last_acked)?;
                        return Err(status.into());
                    }
                },
                _ = self.new_batch.notified() => {
                    tokio::select! {
                        _ = tokio::time::sleep(self.ship_delay) => {}
                        _ = self.shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
                    }
                }
                _ = self.shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
            }
        }
    }

    /// A channel to the collector: plaintext for `http://`, else mutual TLS with the stored
    /// identity, enrolling the node first if it has none.
    async fn connect(&self, endpoint: &Endpoint) -> Result<Channel, SendError> {
        let Some(settings) = &self.tls else {
            return endpoint.connect().await.map_err(SendError::Connect);
        };
        let identity = match Identity::load(&settings.identity_dir)? {
            Some(identity) => identity,
            None => {
                let _enrolling = settings.enrolling.lock().await;
                match Identity::load(&settings.identity_dir)? {
                    // The other sender of a pair enrolled the node meanwhile.
                    Some(identity) => identity,
                    None => self.enroll(endpoint, settings).await?,
                }
            }
        };
        if identity.node_name != self.node_name {
            return Err(SendError::NameMismatch {
                certified: identity.node_name,
                node: self.node_name.clone(),
                dir: settings.identity_dir.clone(),
            });
        }
        let config = tls::mutual_config(&identity, settings.ca_file.as_deref())?;
        tls::connect(endpoint, config)
            .await
            .map_err(SendError::Connect)
    }

    /// Enrolls the node with the one-time token, storing its identity.
    async fn enroll(
        &self,
        endpoint: &Endpoint,
        settings: &SenderTls,
    ) -> Result<Identity, SendError> {
        let token = settings
            .enroll_token
            .as_ref()
            .ok_or(SendError::NotEnrolled)?;
        let identity =
            enrollment::enroll(endpoint, token, &self.node_name, &settings.identity_dir).await?;
        tracing::info!(
            node = %identity.node_name,
            expires = %humantime::format_rfc3339_seconds(identity.not_after),
            identity_dir = %settings.identity_dir.display(),
            "enrolled: this node's certificate is stored and the token is no longer needed"
        );
        settings.enrolled.notify_one();
        Ok(identity)
    }

    /// Registers the node and its spool; `None` on shutdown.
    async fn register(
        &self,
        client: &mut IngestClient<Channel>,
    ) -> Result<Option<RegisterResponse>, SendError> {
        let (spool_epoch, first_seq) = {
            let spool = lock(&self.spool);
            (spool.epoch(), spool.first_seq())
        };
        let register = client.register(RegisterRequest {
            node_name: self.node_name.clone(),
            spool_epoch,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            host: Some(within_limits(self.host.clone())),
            token: self.token.clone(),
            first_seq,
            job: self.job.clone(),
            instance: self.instance.clone(),
        });
        tokio::select! {
            answer = tokio::time::timeout(REGISTER_TIMEOUT, register) => {
                let answer = answer.map_err(|_| SendError::RegisterTimeout(REGISTER_TIMEOUT))??;
                Ok(Some(answer.into_inner()))
            }
            _ = self.shutdown.cancelled() => Ok(None),
        }
    }

    /// A batch refused as invalid or over limits would be refused forever: set it aside. The
    /// status names it; if not, it is the oldest unacked one, as the collector works in order.
    fn handle_refusal(&self, status: &Status, last_acked: u64) -> Result<(), SpoolError> {
        if !matches!(
            status.code(),
            Code::InvalidArgument | Code::ResourceExhausted
        ) {
            return Ok(());
        }
        let named = status
            .metadata()
            .get(REJECTED_SEQ_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut spool = lock(&self.spool);
        if let Some(seq) = named.or_else(|| spool.first_after(last_acked)) {
            tracing::error!(
                seq,
                reason = status.message(),
                "collector refused a batch; moved to the spool's rejected/ folder"
            );
            spool.set_aside(seq)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_pki::{PeerName, fake_ca, serve_grpc};
    use hcmon_proto::v1::enrollment_server::EnrollmentServer;
    use hcmon_proto::v1::ingest_server::{Ingest, IngestServer};
    use hcmon_proto::v1::{Ack, Label};
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic::service::Routes;
    use tonic::{Response, Streaming};

    /// A collector stand-in: answers `Register` with what it holds for the spool epoch (one below
    /// `first_seq` for an epoch it does not know, as the collector does), acks every batch and
    /// records what it was sent.
    #[derive(Clone, Default)]
    struct FakeCollector {
        held: Arc<Mutex<HashMap<u64, u64>>>,
        registrations: Arc<Mutex<Vec<(u64, u64)>>>,
        /// (spool epoch, seq, skipped_from) of every batch received.
        batches: Arc<Mutex<Vec<(u64, u64, u64)>>>,
        received: Arc<Notify>,
        /// The client certificate's name behind each registration (over TLS).
        peers: Arc<Mutex<Vec<Option<String>>>>,
    }

    #[tonic::async_trait]
    impl Ingest for FakeCollector {
        async fn register(
            &self,
            request: Request<RegisterRequest>,
        ) -> Result<Response<RegisterResponse>, Status> {
            let peer = request.extensions().get::<PeerName>().map(|p| p.0.clone());
            self.peers.lock().unwrap().push(peer);
            let req = request.into_inner();
            let held = self.held.lock().unwrap().get(&req.spool_epoch).copied();
            self.registrations
                .lock()
                .unwrap()
                .push((req.spool_epoch, req.first_seq));
            Ok(Response::new(RegisterResponse {
                session_id: req.spool_epoch.to_string(),
                last_durable_seq: held.unwrap_or(req.first_seq.saturating_sub(1)),
                limits: None,
            }))
        }

        type StreamStream = ReceiverStream<Result<CollectorMessage, Status>>;

        async fn stream(
            &self,
            request: Request<Streaming<AgentMessage>>,
        ) -> Result<Response<Self::StreamStream>, Status> {
            let epoch: u64 = request
                .metadata()
                .get(SESSION_METADATA_KEY)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| Status::unauthenticated("no session"))?;
            let mut inbound = request.into_inner();
            let (tx, rx) = mpsc::channel(64);
            let fake = self.clone();
            tokio::spawn(async move {
                while let Ok(Some(message)) = inbound.message().await {
                    let Some(agent_message::Kind::Batch(batch)) = message.kind else {
                        continue;
                    };
                    let record = (epoch, batch.seq, batch.skipped_from);
                    fake.batches.lock().unwrap().push(record);
                    fake.received.notify_one();
                    let ack = CollectorMessage {
                        kind: Some(collector_message::Kind::Ack(Ack { seq: batch.seq })),
                    };
                    if tx.send(Ok(ack)).await.is_err() {
                        break;
                    }
                }
            });
            Ok(Response::new(ReceiverStream::new(rx)))
        }
    }

    /// Runs a sender for `spool` against `fake` until the fake has received `batches` batches.
    async fn deliver(fake: &FakeCollector, spool: Arc<Mutex<Spool>>, batches: usize) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tonic::transport::Server::builder()
            .add_service(IngestServer::new(fake.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener));
        let server = tokio::spawn(server);
        run_until(fake, sender(url, spool, None), batches).await;
        server.abort();
    }

    fn sender(url: String, spool: Arc<Mutex<Spool>>, tls: Option<SenderTls>) -> Sender {
        let reader = lock(&spool).add_reader();
        Sender {
            collector_url: url,
            node_name: "nas".into(),
            job: "node".into(),
            instance: String::new(),
            token: String::new(),
            host: HostFacts::default(),
            spool,
            reader,
            new_batch: Arc::new(Notify::new()),
            ship_delay: Duration::ZERO,
            shutdown: CancellationToken::new(),
            tls,
        }
    }

    /// Runs `sender` until `fake` has received `batches` batches in all.
    async fn run_until(fake: &FakeCollector, sender: Sender, batches: usize) {
        let shutdown = sender.shutdown.clone();
        let sender = tokio::spawn(sender.run());
        while fake.batches.lock().unwrap().len() < batches {
            tokio::time::timeout(Duration::from_secs(60), fake.received.notified())
                .await
                .expect("the sender delivers");
        }
        shutdown.cancel();
        sender.await.unwrap();
    }

    #[test]
    fn a_fleet_ships_spread_over_a_fifth_of_the_interval_at_most_two_seconds() {
        let basic = Duration::from_secs(10);
        let delays: Vec<Duration> = (0..1000)
            .map(|i| ship_delay(&format!("node-{i}"), basic))
            .collect();
        assert!(delays.iter().all(|d| *d < Duration::from_secs(2)));
        // Spread, not bunched: each fifth of the spread holds roughly a fifth of the fleet.
        for fifth in 0..5u64 {
            let range =
                Duration::from_millis(fifth * 400)..Duration::from_millis((fifth + 1) * 400);
            let here = delays.iter().filter(|d| range.contains(*d)).count();
            assert!((150..250).contains(&here), "{here} in {range:?}");
        }
        assert_eq!(ship_delay("nas", basic), ship_delay("nas", basic), "stable");
        assert!(ship_delay("nas", Duration::from_secs(1)) < Duration::from_millis(200));
        assert_eq!(ship_delay("nas", Duration::from_millis(4)), Duration::ZERO);
    }

    #[tokio::test]
    async fn an_https_collector_enrolls_the_node_once_then_streams_over_mutual_tls() {
        let (ca, token) = fake_ca(Duration::from_secs(3600));
        let fake = FakeCollector::default();
        let routes = Routes::new(IngestServer::new(fake.clone()))
            .add_service(EnrollmentServer::from_arc(ca.clone()));
        let addr = serve_grpc(ca.pki.server_config(), routes).await;
        let url = format!("https://localhost:{}", addr.port());
        let tmp = tempfile::tempdir().unwrap();
        let identity_dir = tmp.path().join("identity");
        let spool = Arc::new(Mutex::new(spooled(&tmp.path().join("spool"), u64::MAX, 1)));
        let tls = |enroll_token| SenderTls {
            identity_dir: identity_dir.clone(),
            ca_file: None,
            enroll_token,
            enrolled: Arc::new(Notify::new()),
            enrolling: Default::default(),
        };

        let lonely = sender(url.clone(), spool.clone(), Some(tls(None)));
        let endpoint = collector_endpoint(&url).unwrap();
        let err = lonely.connect(&endpoint).await.unwrap_err();
        assert_eq!(err.to_string(), NOT_ENROLLED);

        let enrolling = sender(url.clone(), spool.clone(), Some(tls(Some(token))));
        run_until(&fake, enrolling, 1).await;
        assert_eq!(ca.issued.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(Identity::load(&identity_dir).unwrap().is_some());

        // The next start needs no token and enrolls nothing.
        lock(&spool)
            .append(&record(vec![def(0, "u", "1")]))
            .unwrap();
        run_until(&fake, sender(url, spool, Some(tls(None))), 2).await;
        assert_eq!(ca.issued.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(
            *fake.peers.lock().unwrap(),
            [Some("nas".to_owned()), Some("nas".to_owned())],
            "the collector saw the node's certificate at each registration"
        );
    }

    fn spooled(dir: &std::path::Path, max_bytes: u64, count: u32) -> Spool {
        let mut spool = Spool::open(dir, max_bytes).unwrap();
        for i in 0..count {
            spool
                .append(&record(vec![def(0, "u", &i.to_string())]))
                .unwrap();
        }
        spool
    }

    #[tokio::test]
    async fn numbers_the_spool_no_longer_holds_are_declared_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let one = prost::Message::encoded_len(&record(vec![def(0, "u", "0")])) as u64;
        // A full spool dropped batches 1 and 2; batch 4 was refused and set aside.
        let mut spool = spooled(dir.path(), 3 * one, 5);
        spool.set_aside(4).unwrap();
        let epoch = spool.epoch();
        let fake = FakeCollector::default();
        fake.held.lock().unwrap().insert(epoch, 1);

        deliver(&fake, Arc::new(Mutex::new(spool)), 2).await;
        assert_eq!(
            *fake.batches.lock().unwrap(),
            [(epoch, 3, 2), (epoch, 5, 4)],
            "each batch after a hole says where the hole starts"
        );
    }

    #[tokio::test]
    async fn a_spool_whose_numbering_went_back_continues_under_a_new_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = spooled(dir.path(), u64::MAX, 3);
        let earlier = spool.add_reader();
        spool.ack(earlier, 1).unwrap();
        let old = spool.epoch();
        let fake = FakeCollector::default();
        // The collector holds batch 10 of this epoch: the spool was restored from a snapshot
        // taken when it had issued 3. Its batches 2 and 3 must not be acked as repeats.
        fake.held.lock().unwrap().insert(old, 10);
        let spool = Arc::new(Mutex::new(spool));

        deliver(&fake, spool.clone(), 2).await;
        let new = lock(&spool).epoch();
        assert_ne!(new, old);
        assert_eq!(*fake.registrations.lock().unwrap(), [(old, 2), (new, 2)]);
        assert_eq!(*fake.batches.lock().unwrap(), [(new, 2, 0), (new, 3, 0)]);
    }

    /// Runs `sender` until its collector has acknowledged everything in `spool`.
    async fn run_until_acked(sender: Sender, spool: &Arc<Mutex<Spool>>) {
        let (shutdown, reader) = (sender.shutdown.clone(), sender.reader);
        let running = tokio::spawn(sender.run());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while lock(spool).pending_for(reader) > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the sender delivers"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.cancel();
        running.await.unwrap();
    }

    #[tokio::test]
    async fn each_collector_of_a_pair_gets_every_batch_at_its_own_pace() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(Mutex::new(spooled(dir.path(), u64::MAX, 3)));
        let (first, second) = (FakeCollector::default(), FakeCollector::default());
        let serve = |fake: &FakeCollector| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let server = tonic::transport::Server::builder()
                .add_service(IngestServer::new(fake.clone()))
                .serve_with_incoming(TcpListenerStream::new(listener));
            (url, tokio::spawn(server))
        };
        let (first_url, first_server) = serve(&first);
        let (second_url, second_server) = serve(&second);
        // Both senders exist from the start, as in the agent; the second collector is down
        // while the first takes everything.
        let to_first = sender(first_url, spool.clone(), None);
        let to_second = sender(second_url, spool.clone(), None);
        let second_reader = to_second.reader;
        run_until_acked(to_first, &spool).await;
        assert_eq!(lock(&spool).stats().batches, 3, "kept for the second");
        assert_eq!(lock(&spool).pending_for(second_reader), 3);

        run_until_acked(to_second, &spool).await;
        assert_eq!(lock(&spool).stats().batches, 0, "both hold them: deleted");
        let seqs = |fake: &FakeCollector| -> Vec<u64> {
            fake.batches.lock().unwrap().iter().map(|b| b.1).collect()
        };
        assert_eq!(
            (seqs(&first), seqs(&second)),
            (vec![1, 2, 3], vec![1, 2, 3])
        );
        first_server.abort();
        second_server.abort();
    }

    #[test]
    fn host_facts_are_fitted_to_the_collector_limits() {
        let host = within_limits(HostFacts {
            hostname: "h".repeat(1000),
            os_name: "Some\nOS".into(),
            kernel_version: "\u{e9}".repeat(200),
            arch: "x86_64".into(),
            ..Default::default()
        });
        assert_eq!(host.hostname.len(), MAX_HOST_FACT_BYTES);
        assert_eq!(host.os_name, "Some OS");
        assert_eq!(host.kernel_version, "\u{e9}".repeat(128));
        assert_eq!(host.arch, "x86_64");
    }

    fn def(local: u32, name: &str, cpu: &str) -> SeriesDef {
        SeriesDef {
            id: local,
            name: name.into(),
            labels: vec![Label {
                name: "cpu".into(),
                value: cpu.into(),
            }],
            kind: 1,
            help: String::new(),
        }
    }

    fn record(defs: Vec<SeriesDef>) -> SpoolRecord {
        let samples = (0..defs.len() as u32)
            .map(|i| SeriesSamples {
                series_id: i,
                timestamps_ms: vec![1],
                values: vec![i as f64],
            })
            .collect();
        SpoolRecord {
            series: defs,
            samples,
        }
    }

    #[test]
    fn defines_each_series_once_per_stream() {
        let mut interner = Interner::default();
        let first = interner.batch(1, record(vec![def(0, "u", "0"), def(1, "u", "1")]));
        assert_eq!(
            first.new_series.iter().map(|d| d.id).collect::<Vec<_>>(),
            vec![1, 2]
        );
        let second = interner.batch(2, record(vec![def(0, "u", "1"), def(1, "v", "0")]));
        assert_eq!(
            second.new_series.len(),
            1,
            "only the unseen series is defined"
        );
        assert_eq!(second.new_series[0].name, "v");
        assert_eq!(
            second
                .samples
                .iter()
                .map(|s| s.series_id)
                .collect::<Vec<_>>(),
            vec![2, 3]
        );
    }
}

//! Delivery: registers with the collector, streams spooled batches in order, deletes them on ack,
//! and after any failure reconnects with backoff and resends everything unacked.
//!
//! Collection never waits for this task: it only appends to the spool and pokes [`Notify`].

use crate::spool::{Spool, SpoolError, SpoolRecord, lock};
use hcmon_proto::v1::ingest_client::IngestClient;
use hcmon_proto::v1::{
    AgentMessage, Batch, CollectorMessage, HostFacts, REJECTED_SEQ_METADATA_KEY, RegisterRequest,
    SESSION_METADATA_KEY, SeriesDef, SeriesSamples, agent_message, collector_message,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;
use tonic::{Code, Request, Status};

/// Batches in flight before waiting for acks.
const WINDOW: u64 = 32;
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Sender {
    pub collector_url: String,
    pub node_name: String,
    pub token: String,
    pub host: HostFacts,
    pub spool: Arc<Mutex<Spool>>,
    pub new_batch: Arc<Notify>,
    pub shutdown: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("invalid collector URL {url:?}: {source}")]
    Url {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("cannot connect to the collector: {0}")]
    Connect(tonic::transport::Error),
    #[error("collector answered with an error: {0}")]
    Status(#[from] Status),
    #[error("collector did not answer the registration within {0:?}")]
    RegisterTimeout(Duration),
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
        }
    }
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

    /// One connection: register, then stream until something ends it. `backoff` is reset once
    /// the collector has answered, so refusals of single batches do not slow delivery down.
    async fn session(&self, backoff: &mut Duration) -> Result<SessionEnd, SendError> {
        let endpoint = Endpoint::from_shared(self.collector_url.clone())
            .map_err(|source| SendError::Url {
                url: self.collector_url.clone(),
                source,
            })?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10));
        let channel = tokio::select! {
            channel = endpoint.connect() => channel.map_err(SendError::Connect)?,
            _ = self.shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
        };
        let mut client = IngestClient::new(channel);
        let spool_epoch = lock(&self.spool).epoch();
        let register = client.register(RegisterRequest {
            node_name: self.node_name.clone(),
            spool_epoch,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            host: Some(self.host.clone()),
            token: self.token.clone(),
        });
        let registration = tokio::select! {
            answer = tokio::time::timeout(REGISTER_TIMEOUT, register) => {
                answer.map_err(|_| SendError::RegisterTimeout(REGISTER_TIMEOUT))??.into_inner()
            }
            _ = self.shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
        };
        *backoff = BACKOFF_MIN;
        // Batches the collector already holds (their acks were lost) need not be resent.
        lock(&self.spool).ack(registration.last_durable_seq)?;

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
                let message = AgentMessage {
                    kind: Some(agent_message::Kind::Batch(interner.batch(seq, record))),
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
                        lock(&self.spool).ack(acked)?;
                        last_acked = last_acked.max(acked);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return Ok(SessionEnd::Closed),
                    Err(status) => {
                        self.handle_refusal(&status, last_acked)?;
                        return Err(status.into());
                    }
                },
                _ = self.new_batch.notified() => {}
                _ = self.shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
            }
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
    use hcmon_proto::v1::Label;

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

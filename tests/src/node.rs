//! A scripted node for alerting tests: registers over the real gRPC protocol, defines series
//! as it first sends them and waits for each batch's ack, with timestamps the test chooses
//! (a test clock's). Dropping it closes its stream, as a node that dies does.

use hcmon_proto::v1::ingest_client::IngestClient;
use hcmon_proto::v1::{
    AgentMessage, Batch, Label, MetricKind, RegisterRequest, SESSION_METADATA_KEY, SeriesDef,
    SeriesSamples, agent_message, collector_message,
};
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// One gauge sample to send: metric name, labels (besides `node`), value.
pub type Gauge<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

pub struct ScriptedNode {
    node: String,
    outbound: mpsc::Sender<AgentMessage>,
    inbound: tonic::Streaming<hcmon_proto::v1::CollectorMessage>,
    seq: u64,
    /// (metric, labels) → wire id.
    defined: HashMap<(String, Vec<(String, String)>), u32>,
}

impl ScriptedNode {
    pub async fn connect(url: &str, node: &str) -> anyhow::Result<Self> {
        let mut client = IngestClient::connect(url.to_owned()).await?;
        let registration = client
            .register(RegisterRequest {
                node_name: node.to_owned(),
                spool_epoch: fastrand_epoch(node),
                ..Default::default()
            })
            .await?
            .into_inner();
        let (outbound, rx) = mpsc::channel(16);
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        request
            .metadata_mut()
            .insert(SESSION_METADATA_KEY, registration.session_id.parse()?);
        let inbound = client.stream(request).await?.into_inner();
        Ok(Self {
            node: node.to_owned(),
            outbound,
            inbound,
            seq: registration.last_durable_seq,
            defined: HashMap::new(),
        })
    }

    pub fn name(&self) -> &str {
        &self.node
    }

    /// Sends one gauge sample per entry at `timestamp_ms` and waits until it is durable.
    pub async fn send(&mut self, timestamp_ms: i64, samples: &[Gauge<'_>]) -> anyhow::Result<()> {
        self.seq += 1;
        let mut new_series = Vec::new();
        let mut series = Vec::new();
        for (metric, labels, value) in samples {
            // The collector adds `node` itself, from the registration.
            let labels: Vec<(String, String)> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let key = (metric.to_string(), labels.clone());
            let next = self.defined.len() as u32 + 1;
            let id = *self.defined.entry(key).or_insert_with(|| {
                new_series.push(SeriesDef {
                    id: next,
                    name: metric.to_string(),
                    labels: labels
                        .iter()
                        .map(|(name, value)| Label {
                            name: name.clone(),
                            value: value.clone(),
                        })
                        .collect(),
                    kind: MetricKind::Gauge as i32,
                    help: "Scripted by a test.".into(),
                });
                next
            });
            series.push(SeriesSamples {
                series_id: id,
                timestamps_ms: vec![timestamp_ms],
                values: vec![*value],
            });
        }
        let batch = Batch {
            seq: self.seq,
            new_series,
            samples: series,
            skipped_from: 0,
        };
        self.outbound
            .send(AgentMessage {
                kind: Some(agent_message::Kind::Batch(batch)),
            })
            .await?;
        loop {
            let Some(message) = self.inbound.message().await? else {
                anyhow::bail!("collector closed the stream of {}", self.node);
            };
            match message.kind {
                Some(collector_message::Kind::Ack(ack)) if ack.seq >= self.seq => return Ok(()),
                Some(collector_message::Kind::Ack(_)) => {}
                other => anyhow::bail!("unexpected answer to batch {}: {other:?}", self.seq),
            }
        }
    }
}

/// A stable spool epoch per node name (odd, never 0).
fn fastrand_epoch(node: &str) -> u64 {
    node.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) | 1
}

/// Opens a stream with `session` (none when empty), sends `batch` alone, and returns the ack or
/// the refusal: for tests that script the protocol a message at a time.
pub async fn send_one_batch(
    client: &mut IngestClient<tonic::transport::Channel>,
    session: &str,
    batch: Batch,
) -> Result<u64, tonic::Status> {
    let message = AgentMessage {
        kind: Some(agent_message::Kind::Batch(batch)),
    };
    let mut request = tonic::Request::new(tokio_stream::iter(vec![message]));
    if !session.is_empty() {
        let value = session
            .parse()
            .map_err(|_| tonic::Status::invalid_argument("session is not ASCII"))?;
        request.metadata_mut().insert(SESSION_METADATA_KEY, value);
    }
    let mut inbound = client.stream(request).await?.into_inner();
    match inbound.message().await? {
        Some(reply) => match reply.kind {
            Some(collector_message::Kind::Ack(ack)) => Ok(ack.seq),
            None => Err(tonic::Status::unknown("empty reply")),
        },
        None => Err(tonic::Status::unknown("stream closed without a reply")),
    }
}

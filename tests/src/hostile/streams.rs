//! The kinds that attack ingest from enrolled nodes over gRPC streams: a cardinality bomb and
//! malformed protobuf; and the stream helpers the others share.

use super::raw_codec::RawCodec;
use super::{Mallory, Pace, Rng, Tally, Target, cause, status_outcome};
use crate::now_s;
use hcmon_agent::tls::identity::Identity;
use hcmon_proto::prometheus::{Label as PromLabel, Sample, TimeSeries, WriteRequest};
use hcmon_proto::v1::ingest_client::IngestClient;
use hcmon_proto::v1::{
    AgentMessage, Batch, CollectorMessage, HostFacts, Label, MetricKind, RegisterRequest,
    SESSION_METADATA_KEY, SeriesDef, SeriesSamples, agent_message, collector_message,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// A batch `seq` defining `series` (ids from 1) named `name`, one sample each at now.
pub(crate) fn batch(seq: u64, name: &str, first_label: u64, series: u32) -> Batch {
    let now_ms = (now_s() * 1000.0) as i64;
    Batch {
        seq,
        new_series: (0..series)
            .map(|i| SeriesDef {
                id: i + 1,
                name: name.into(),
                labels: vec![Label {
                    name: "n".into(),
                    value: (first_label + u64::from(i)).to_string(),
                }],
                kind: MetricKind::Gauge as i32,
                help: "Hostile.".into(),
            })
            .collect(),
        samples: (0..series)
            .map(|i| SeriesSamples {
                series_id: i + 1,
                timestamps_ms: vec![now_ms],
                values: vec![1.0],
            })
            .collect(),
        skipped_from: 0,
    }
}

/// An open stream of `node`: registered over mutual TLS with `identity`.
struct Stream {
    tx: mpsc::Sender<AgentMessage>,
    inbound: tonic::Streaming<CollectorMessage>,
    next_seq: u64,
    /// Kept open with the stream.
    _channel: Channel,
}

async fn open_stream(target: &Target, identity: &Identity) -> Result<Stream, String> {
    let channel = target.channel(Some(identity)).await?;
    let mut client = IngestClient::new(channel.clone());
    let registration = client
        .register(RegisterRequest {
            node_name: identity.node_name.clone(),
            spool_epoch: 1,
            agent_version: "hostile".into(),
            host: Some(HostFacts::default()),
            ..Default::default()
        })
        .await
        .map_err(|s| format!("register: {}", status_outcome(&s)))?
        .into_inner();
    let (tx, rx) = mpsc::channel(16);
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    request.metadata_mut().insert(
        SESSION_METADATA_KEY,
        registration
            .session_id
            .parse()
            .map_err(|_| "an unusable session id".to_owned())?,
    );
    let answer = tokio::time::timeout(Duration::from_secs(5), client.stream(request)).await;
    let inbound = match answer {
        Ok(Ok(response)) => response.into_inner(),
        Ok(Err(status)) => return Err(format!("stream: {}", status_outcome(&status))),
        Err(_) => return Err("stream: no answer within 5 s".into()),
    };
    Ok(Stream {
        tx,
        inbound,
        next_seq: registration.last_durable_seq + 1,
        _channel: channel,
    })
}

/// Sends `batch` on a fresh stream of `identity` and waits for its ack or the refusal.
pub(crate) async fn send_one(
    target: &Target,
    identity: &Identity,
    batch: impl FnOnce(u64) -> Batch,
) -> String {
    let mut stream = match open_stream(target, identity).await {
        Ok(stream) => stream,
        Err(e) => return e,
    };
    let message = AgentMessage {
        kind: Some(agent_message::Kind::Batch(batch(stream.next_seq))),
    };
    if stream.tx.send(message).await.is_err() {
        return "the stream closed before the batch went".into();
    }
    match tokio::time::timeout(Duration::from_secs(20), stream.inbound.message()).await {
        Ok(Ok(Some(_))) => "acked".into(),
        Ok(Ok(None)) => "the stream ended without an answer".into(),
        Ok(Err(status)) => status_outcome(&status),
        Err(_) => "no answer within 20 s".into(),
    }
}

/// Opens one more stream under `mallory`'s registration (registering first if needed).
pub(crate) async fn extra_stream(
    target: &Target,
    identity: &Identity,
    registered: &mut Option<(String, u64)>,
) -> Result<
    (
        mpsc::Sender<AgentMessage>,
        tonic::Streaming<CollectorMessage>,
        Channel,
    ),
    String,
> {
    let channel = target.channel(Some(identity)).await?;
    let mut client = IngestClient::new(channel.clone());
    let session = match registered {
        Some((session, _)) => session.clone(),
        None => {
            let registration = client
                .register(RegisterRequest {
                    node_name: identity.node_name.clone(),
                    spool_epoch: 1,
                    agent_version: "hostile".into(),
                    host: Some(HostFacts::default()),
                    ..Default::default()
                })
                .await
                .map_err(|s| format!("register: {}", status_outcome(&s)))?
                .into_inner();
            *registered = Some((
                registration.session_id.clone(),
                registration.last_durable_seq,
            ));
            registration.session_id
        }
    };
    let (tx, rx) = mpsc::channel(1);
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    request.metadata_mut().insert(
        SESSION_METADATA_KEY,
        session
            .parse()
            .map_err(|_| "an unusable session id".to_owned())?,
    );
    match tokio::time::timeout(Duration::from_secs(5), client.stream(request)).await {
        Ok(Ok(response)) => {
            let mut inbound = response.into_inner();
            // A refusal may come as the stream's first message rather than its headers.
            match tokio::time::timeout(Duration::from_millis(500), inbound.message()).await {
                Ok(Err(status)) => Err(status_outcome(&status)),
                Ok(Ok(None)) => Err("the stream ended at once".into()),
                _ => Ok((tx, inbound, channel)),
            }
        }
        Ok(Err(status)) => Err(status_outcome(&status)),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

/// (8) A cardinality bomb: `mallory-bomb` streams batches of ever-new series; remote writes
/// with ever-new label values.
pub async fn cardinality_bomb(target: Arc<Target>, tally: Arc<Tally>, mallory: Arc<Mallory>) {
    let remote = {
        let target = target.clone();
        let tally = tally.clone();
        tokio::spawn(async move {
            let mut pace = Pace::every(Duration::from_millis(250));
            let mut next_label = 0u64;
            while pace.next(&target).await {
                let now_ms = (now_s() * 1000.0) as i64;
                let request = WriteRequest {
                    timeseries: (0..500)
                        .map(|i| TimeSeries {
                            labels: vec![
                                PromLabel {
                                    name: "__name__".into(),
                                    value: "hostile_bomb_remote".into(),
                                },
                                PromLabel {
                                    name: "n".into(),
                                    value: (next_label + i).to_string(),
                                },
                            ],
                            samples: vec![Sample {
                                value: 1.0,
                                timestamp: now_ms,
                            }],
                        })
                        .collect(),
                };
                next_label += 500;
                let body = snap::raw::Encoder::new()
                    .compress_vec(&prost::Message::encode_to_vec(&request))
                    .expect("snappy");
                let outcome = target.remote_write(&body).await;
                tally.add("remote write of 500 new series", outcome);
            }
        })
    };
    let mut next_label = 0u64;
    while target.running() {
        let mut stream = match open_stream(&target, &mallory.bomb).await {
            Ok(stream) => stream,
            Err(e) => {
                tally.add("mallory-bomb: open a stream", e);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut pace = Pace::every(Duration::from_millis(100));
        let mut series_in_stream = 0u32;
        let ended = loop {
            tokio::select! {
                running = pace.next(&target) => {
                    if !running {
                        break None;
                    }
                    // 500 new series a batch, ids fresh within the stream.
                    let mut batch = batch(stream.next_seq, "hostile_bomb", next_label, 500);
                    for def in &mut batch.new_series {
                        def.id += series_in_stream;
                    }
                    for samples in &mut batch.samples {
                        samples.series_id += series_in_stream;
                    }
                    series_in_stream += 500;
                    next_label += 500;
                    stream.next_seq += 1;
                    let message = AgentMessage { kind: Some(agent_message::Kind::Batch(batch)) };
                    if stream.tx.send(message).await.is_err() {
                        break Some("the stream closed".to_owned());
                    }
                    tally.add("mallory-bomb: batch of 500 new series", "sent");
                }
                message = stream.inbound.message() => match message {
                    Ok(Some(message)) => {
                        if let Some(collector_message::Kind::Ack(_)) = message.kind {
                            tally.add("mallory-bomb: answers", "ack");
                        }
                    }
                    Ok(None) => break Some("the stream ended".to_owned()),
                    Err(status) => break Some(status_outcome(&status)),
                },
            }
        };
        if let Some(ended) = ended {
            tally.add("mallory-bomb: stream ended", ended);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let _ = remote.await;
}

/// (9) Garbage where protobuf belongs: Register bodies, and frames on an open stream.
pub async fn malformed_protobuf(target: Arc<Target>, tally: Arc<Tally>, mallory: Arc<Mallory>) {
    let mut rng = Rng::new();
    let mut pace = Pace::every(Duration::from_millis(200));
    let mut round = 0u64;
    while pace.next(&target).await {
        round += 1;
        let channel = match target.channel(Some(&mallory.garbage)).await {
            Ok(channel) => channel,
            Err(e) => {
                tally.add("connect", e);
                continue;
            }
        };
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        if let Err(e) = grpc.ready().await {
            tally.add("connect", format!("not ready: {}", cause(&e)));
            continue;
        }
        let len = 16 + (rng.next_u64() % 4096) as usize;
        let garbage = rng.bytes(len);
        if round.is_multiple_of(2) {
            let path = http::uri::PathAndQuery::from_static("/hcmon.v1.Ingest/Register");
            let outcome = match grpc
                .unary(tonic::Request::new(garbage), path, RawCodec)
                .await
            {
                Ok(_) => "registered".to_owned(),
                Err(status) => status_outcome(&status),
            };
            tally.add("garbage Register body", outcome);
            continue;
        }
        let registration = IngestClient::new(channel)
            .register(RegisterRequest {
                node_name: "mallory-garbage".into(),
                spool_epoch: 1,
                ..Default::default()
            })
            .await;
        let session = match registration {
            Ok(answer) => answer.into_inner().session_id,
            Err(status) => {
                tally.add("register", status_outcome(&status));
                continue;
            }
        };
        let frames = vec![garbage, rng.bytes(64), rng.bytes(1)];
        let mut request = tonic::Request::new(tokio_stream::iter(frames));
        if let Ok(value) = session.parse() {
            request.metadata_mut().insert(SESSION_METADATA_KEY, value);
        }
        let path = http::uri::PathAndQuery::from_static("/hcmon.v1.Ingest/Stream");
        let outcome = match grpc.streaming(request, path, RawCodec).await {
            Ok(response) => {
                let mut inbound = response.into_inner();
                match tokio::time::timeout(Duration::from_secs(10), inbound.message()).await {
                    Ok(Ok(Some(_))) => "answered with a message".to_owned(),
                    Ok(Ok(None)) => "stream ended without a status".to_owned(),
                    Ok(Err(status)) => status_outcome(&status),
                    Err(_) => "no answer within 10 s".to_owned(),
                }
            }
            Err(status) => status_outcome(&status),
        };
        tally.add("garbage frames on a stream", outcome);
    }
}
